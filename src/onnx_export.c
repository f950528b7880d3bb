/* onnx_export.c: the network as an ONNX ModelProto (see onnx_export.h), through a protobuf
 * encoder of a few functions: varints, tags, length-delimited fields. Field numbers are those
 * of onnx.proto (ONNX 1.12, IR version 8). */
#include "onnx_export.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* --- the protobuf wire format ------------------------------------------------------------- */

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* A growable buffer holding one message being built. */
typedef byte_buf pb;

static void pb_put(pb *b, const void *src, size_t n) { byte_buf_put(b, src, n, "ONNX model buffer"); }

/* Base-128, least significant group first, the high bit marking "more follows". */
static void pb_varint(pb *b, uint64_t v)
{
    unsigned char out[10];
    size_t n = 0;
    do {
        out[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) out[n] |= 0x80;
        n++;
    } while (v);
    pb_put(b, out, n);
}

static void pb_tag(pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

/* int32, int64 and enum fields; every value written here is non-negative. */
static void pb_int(pb *b, int field, uint64_t v)
{
    pb_tag(b, field, WIRE_VARINT);
    pb_varint(b, v);
}

static void pb_bytes(pb *b, int field, const void *data, size_t n)
{
    pb_tag(b, field, WIRE_LEN);
    pb_varint(b, n);
    pb_put(b, data, n);
}

static void pb_string(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }

/* Appends a finished sub-message as a length-delimited field and releases it. */
static void pb_message(pb *b, int field, pb *sub)
{
    pb_bytes(b, field, sub->p, sub->len);
    free(sub->p);
    *sub = (pb){0};
}

/* --- onnx.proto's messages ---------------------------------------------------------------- */

/* TensorProto.DataType and AttributeProto.AttributeType values. */
enum { ONNX_FLOAT = 1, ATTR_INT = 2 };

/* AttributeProto {name = 1, i = 3, type = 20}: an integer attribute. */
static void attr_int(pb *node, const char *name, uint64_t v)
{
    pb a = {0};
    pb_string(&a, 1, name);
    pb_int(&a, 3, v);
    pb_int(&a, 20, ATTR_INT);
    pb_message(node, 5, &a);
}

/* NodeProto {input = 1, output = 2, name = 3, op_type = 4}; inputs NULL-terminated. */
static void node_begin(pb *node, const char *op, const char *name, const char *const *inputs,
                       const char *output)
{
    for (const char *const *in = inputs; *in; in++) pb_string(node, 1, *in);
    pb_string(node, 2, output);
    pb_string(node, 3, name);
    pb_string(node, 4, op);
}

static void add_node(pb *graph, pb *node) { pb_message(graph, 1, node); }

/* TensorProto {dims = 1, data_type = 2, name = 8, raw_data = 9}: float32, little-endian. */
static void add_initializer(pb *graph, const char *name, const float *data, int rows, int cols)
{
    pb t = {0};
    pb_int(&t, 1, (uint64_t)rows);
    if (cols > 0) pb_int(&t, 1, (uint64_t)cols);
    pb_int(&t, 2, ONNX_FLOAT);
    pb_string(&t, 8, name);
    size_t count = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    pb_tag(&t, 9, WIRE_LEN);
    pb_varint(&t, count * 4);
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                               (unsigned char)(u >> 24)};
        pb_put(&t, le, 4);
    }
    pb_message(graph, 5, &t);
}

/* ValueInfoProto {name = 1, type = 2}: TypeProto {tensor_type = 1}: Tensor {elem_type = 1,
 * shape = 2}: TensorShapeProto {dim = 1}: Dimension {dim_value = 1, dim_param = 2}. The batch
 * dimension is symbolic ("N"), the other fixed. */
static void add_value_info(pb *graph, int field, const char *name, int width)
{
    pb batch = {0}, feat = {0}, shape = {0}, ttype = {0}, type = {0}, vi = {0};
    pb_string(&batch, 2, "N");
    pb_int(&feat, 1, (uint64_t)width);
    pb_message(&shape, 1, &batch);
    pb_message(&shape, 1, &feat);
    pb_int(&ttype, 1, ONNX_FLOAT);
    pb_message(&ttype, 2, &shape);
    pb_message(&type, 1, &ttype);
    pb_string(&vi, 1, name);
    pb_message(&vi, 2, &type);
    pb_message(graph, field, &vi);
}

/* GraphProto {node = 1, name = 2, initializer = 5, doc_string = 10, input = 11, output = 12}. */
static void build_graph(pb *graph, const model_arch *a, const float *params)
{
    char prev[32] = ONNX_INPUT_NAME;
    for (int l = 0; l < a->n_layers; l++) {
        bool last = l == a->n_layers - 1;
        char w[32], bias[32], z[32], gemm[32], act[32], h[32];
        snprintf(w, sizeof w, "W%d", l + 1);
        snprintf(bias, sizeof bias, "b%d", l + 1);
        snprintf(gemm, sizeof gemm, "gemm%d", l + 1);
        if (last) snprintf(z, sizeof z, "logits");
        else snprintf(z, sizeof z, "z%d", l + 1);
        add_initializer(graph, w, params + a->w_off[l], a->sizes[l + 1], a->sizes[l]);
        add_initializer(graph, bias, params + a->b_off[l], a->sizes[l + 1], 0);

        /* Gemm: Y = X * W^T + b, W stored out x in as in the parameter buffer. */
        pb node = {0};
        const char *in[] = {prev, w, bias, NULL};
        node_begin(&node, "Gemm", gemm, in, z);
        attr_int(&node, "transB", 1);
        add_node(graph, &node);
        if (last) break;

        const char *op = a->act == ACT_SIGMOID ? "Sigmoid" : "Relu";
        snprintf(act, sizeof act, "%s%d", a->act == ACT_SIGMOID ? "sigmoid" : "relu", l + 1);
        snprintf(h, sizeof h, "h%d", l + 1);
        const char *zin[] = {z, NULL};
        node_begin(&node, op, act, zin, h);
        add_node(graph, &node);
        snprintf(prev, sizeof prev, "%s", h);
    }
    pb node = {0};
    const char *in[] = {"logits", NULL};
    node_begin(&node, "Softmax", "softmax", in, ONNX_OUTPUT_NAME);
    attr_int(&node, "axis", 1);
    add_node(graph, &node);

    char arch[256], doc[512];
    model_describe(a, arch, sizeof arch);
    snprintf(doc, sizeof doc,
             "cltrain %s. Input " ONNX_INPUT_NAME ": float32 [N, %d], each pixel in [0, 1] "
             "(the IDX byte / 255, 0 the background). Output " ONNX_OUTPUT_NAME
             ": float32 [N, %d], softmax over the classes.",
             arch, a->sizes[0], a->sizes[a->n_layers]);
    pb_string(graph, 2, "cltrain_mlp");
    pb_string(graph, 10, doc);
    add_value_info(graph, 11, ONNX_INPUT_NAME, a->sizes[0]);
    add_value_info(graph, 12, ONNX_OUTPUT_NAME, a->sizes[a->n_layers]);
}


/* Protobuf messages are limited to 2 GiB; the names, shapes and tags take well under 1 MiB. */
#define PB_MAX_BYTES ((size_t)2147483647)
#define PB_OVERHEAD ((size_t)1 << 20)

unsigned char *onnx_encode(const model_arch *a, const float *params, size_t *len, char *err,
                           size_t errlen)
{
    if (a->n_params > (PB_MAX_BYTES - PB_OVERHEAD) / 4) {
        fail_msg(err, errlen, "the model's %zu parameters do not fit one ONNX file (protobuf's 2 GiB "
             "limit); export it with --export-npy instead", a->n_params);
        return NULL;
    }
    pb graph = {0}, opset = {0}, model = {0};
    build_graph(&graph, a, params);

    /* ModelProto {ir_version = 1, producer_name = 2, graph = 7, opset_import = 8}, with
     * OperatorSetIdProto {domain = 1, version = 2}: the default domain "", opset 13. */
    pb_int(&model, 1, ONNX_IR_VERSION);
    pb_string(&model, 2, "cltrain");
    pb_message(&model, 7, &graph);
    pb_string(&opset, 1, "");
    pb_int(&opset, 2, ONNX_OPSET);
    pb_message(&model, 8, &opset);
    *len = model.len;
    return model.p;
}

int export_onnx(const char *path, const model_arch *a, const float *params, char *err,
                size_t errlen)
{
    size_t len;
    unsigned char *bytes = onnx_encode(a, params, &len, err, errlen);
    if (!bytes) return -1;
    int rc = write_file_atomic(path, bytes, len);
    if (rc != 0) fail_msg(err, errlen, "%s: cannot write the ONNX model: %s", path, strerror(errno));
    free(bytes);
    return rc;
}
