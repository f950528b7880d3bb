/* export_cmd.c: `cltrain export --load MODEL --onnx FILE`: a saved model as an ONNX file
 * (src/onnx_export.c). No data and no device are needed. */
#include <stdio.h>

#include "checkpoint.h"
#include "commands.h"
#include "onnx_export.h"
#include "util.h"

int command_export(const options *o)
{
    if (o->n_positional > 0)
        die(EXIT_USAGE, "export takes no file arguments ('%s'); name the output with --onnx FILE", o->positional[0]);
    if (!o->load) die(EXIT_USAGE, "export needs --load MODEL (a file written by --save); see 'cltrain --help'");
    if (!o->onnx) die(EXIT_USAGE, "export needs --onnx FILE, the ONNX model to write; see 'cltrain --help'");
    char err[1024];
    model_file m;
    if (model_load(o->load, &m, err, sizeof err) != 0) die(EXIT_USAGE, "%s", err);
    if (export_onnx(o->onnx, &m.arch, m.params, err, sizeof err) != 0) {
        model_file_free(&m);
        die(EXIT_RUNTIME, "%s", err);
    }
    if (!o->quiet) {
        char arch[256];
        model_describe(&m.arch, arch, sizeof arch);
        printf("%s: ONNX (IR %d, opset %d) of %s from %s: input %s float32 [N, %d], pixels in [0, 1]; "
               "output %s [N, %d]\n", o->onnx, ONNX_IR_VERSION, ONNX_OPSET, arch, o->load, ONNX_INPUT_NAME,
               m.arch.sizes[0], ONNX_OUTPUT_NAME, m.arch.sizes[m.arch.n_layers]);
    }
    model_file_free(&m);
    return EXIT_OK;
}
