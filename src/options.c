/* options.c: the flag table, parsing and validation of every flag, defaults in one place. */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { F_BOOL, F_LONG, F_DOUBLE, F_STRING, F_SEED, F_CHOICE, F_HIDDEN, F_DEVICE, F_GEMM, F_AUGMENT } flag_type;

typedef struct {
    const char *name;       /* "--lr" */
    flag_type type;
    size_t offset;          /* into options */
    double min, max;        /* numeric range, inclusive */
    const char *choices;    /* F_CHOICE: "relu|sigmoid", values are the indices */
    const char *metavar;
    const char *def;        /* default as shown in --help */
    const char *help;
} flag;

#define OFF(field) offsetof(options, field)
#define BIG 1e15

/* One line per flag. */
static const flag flags[] = {
    {"--help", F_BOOL, OFF(help), 0, 0, NULL, NULL, NULL, "show this help and exit"},
    {"--version", F_BOOL, OFF(version), 0, 0, NULL, NULL, NULL, "print the version and exit"},
    {"--list-devices", F_BOOL, OFF(list_devices), 0, 0, NULL, NULL, NULL, "list every OpenCL device of every platform and exit"},
    {"--device", F_DEVICE, OFF(device), 0, 1e6, NULL, "N|host", "0", "OpenCL device index from --list-devices, or host (plain C); under mpirun: the local rank's"},
    {"--gemm", F_GEMM, OFF(gemm), 0, 0, NULL, "builtin|clblast", "auto", "matrix multiply: our kernels or CLBlast (auto: builtin)"},
    {"--kernels", F_CHOICE, OFF(kernels), 0, 0, "auto|cpu|gpu", "auto|cpu|gpu", "auto", "layer kernels: shaped for CPUs, for GPUs, or for the device's kind"},
    {"--step", F_CHOICE, OFF(step), 0, 0, "auto|fused|layers", "auto|fused|layers", "auto", "a mini-batch step: fused kernels (2 launches, widths up to 1024), per-layer kernels, or the plan's choice (fused for batches up to 1024 rows)"},
    {"--profile", F_BOOL, OFF(profile), 0, 0, NULL, NULL, NULL, "print the layers' plans and a per-kernel time profile at the end"},
    {"--no-cache", F_BOOL, OFF(no_cache), 0, 0, NULL, NULL, NULL, "do not use the compiled-kernel cache"},
    {"--data", F_STRING, OFF(data), 0, 0, NULL, "DIR|FILE.csv", "data/mnist", "IDX folder (raw or .gz) or Kaggle CSV"},
    {"--test-split", F_LONG, OFF(test_split), 1, BIG, NULL, "N", "1000", "with a CSV: hold out the last N rows as the test set"},
    {"--train-limit", F_LONG, OFF(train_limit), 1, BIG, NULL, "N", "all", "use the first N training images"},
    {"--test-limit", F_LONG, OFF(test_limit), 1, BIG, NULL, "N", "all", "use the first N test images"},
    {"--classes", F_LONG, OFF(classes), 2, 256, NULL, "N", "largest label + 1", "number of classes; every label must be below it"},
    {"--class-names", F_STRING, OFF(class_names), 0, 0, NULL, "FILE", "DIR/class-names.txt", "one class name a line, kept in the model file"},
    {"--val", F_LONG, OFF(val), 1, BIG, NULL, "N", "0", "hold out the last N training images for validation"},
    {"--hidden", F_HIDDEN, OFF(hidden), 1, 1000000, NULL, "W[,W...]", "10", "hidden layer widths, e.g. 800 or 512,256,128"},
    {"--activation", F_CHOICE, OFF(act), 0, 0, "none|relu|sigmoid", "relu|sigmoid", "relu", "hidden-layer activation"},
    {"--init", F_CHOICE, OFF(init), 0, 0, "uniform|he|xavier", "uniform|he|xavier", "uniform", "initial weights: U(-0.5,0.5) as the seed report, He or Xavier normal"},
    {"--epochs", F_LONG, OFF(epochs), 0, 1e9, NULL, "N", "500 full batch, 10 mini-batch", "total epochs (also after --resume); 0 = initialise, report, export"},
    {"--lr", F_DOUBLE, OFF(lr), 1e-30, 1e6, NULL, "RATE", "0.1", "learning rate alpha"},
    {"--batch", F_LONG, OFF(batch), 0, BIG, NULL, "N", "0", "mini-batch size; 0 = full batch (one step per epoch)"},
    {"--batch-size", F_LONG, OFF(batch), 0, BIG, NULL, "N", "0", "same as --batch (PyTorch's name)"},
    {"--seed", F_SEED, OFF(seed), 0, 0, NULL, "S", "1", "random seed: initial weights, shuffles, dropout"},
    {"--optimizer", F_CHOICE, OFF(optimizer), 0, 0, "sgd|momentum|nesterov|adam|adamw", "NAME", "sgd", "sgd, momentum, nesterov, adam or adamw"},
    {"--momentum", F_DOUBLE, OFF(momentum), 0, 0.999999, NULL, "MU", "0.9", "momentum for momentum/nesterov"},
    {"--beta1", F_DOUBLE, OFF(beta1), 0, 0.999999, NULL, "B1", "0.9", "Adam's first-moment decay"},
    {"--beta2", F_DOUBLE, OFF(beta2), 0, 0.999999999, NULL, "B2", "0.999", "Adam's second-moment decay"},
    {"--eps", F_DOUBLE, OFF(eps), 1e-30, 1, NULL, "EPS", "1e-8", "Adam's epsilon"},
    {"--weight-decay", F_DOUBLE, OFF(weight_decay), 0, 1, NULL, "WD", "0", "L2 penalty (decoupled for adamw)"},
    {"--lr-schedule", F_CHOICE, OFF(schedule), 0, 0, "constant|step|cosine|onecycle", "NAME", "constant", "learning-rate schedule over the epochs"},
    {"--warmup", F_DOUBLE, OFF(warmup), 0, 1e9, NULL, "EPOCHS", "0", "linear warm-up from lr-min to lr over this many epochs"},
    {"--lr-min", F_DOUBLE, OFF(lr_min), 0, 1e6, NULL, "RATE", "0", "lowest rate of the schedule"},
    {"--dropout", F_DOUBLE, OFF(dropout), 0, 0.95, NULL, "P", "0", "drop hidden units with probability P while training"},
    {"--augment", F_AUGMENT, OFF(augment), 0, 0, NULL, "SPEC", "none", "distort every training batch on the device: shift=PIXELS,rotate=DEGREES,scale=FRACTION,elastic=ALPHA:SIGMA (any of them), e.g. shift=2,rotate=10,scale=0.1,elastic=34:4"},
    {"--early-stop", F_LONG, OFF(early_stop), 1, 1e9, NULL, "K", "off", "stop after K epochs without a better validation accuracy"},
    {"--save", F_STRING, OFF(save), 0, 0, NULL, "FILE", NULL, "write the trained model"},
    {"--load", F_STRING, OFF(load), 0, 0, NULL, "FILE", NULL, "start from a saved model"},
    {"--export-npy", F_STRING, OFF(export_npy), 0, 0, NULL, "DIR", NULL, "write W1.npy, b1.npy, ... for numpy.load"},
    {"--export-onnx", F_STRING, OFF(export_onnx), 0, 0, NULL, "FILE", NULL, "write an ONNX model after training (input float32 [N,784], pixel byte/255 in [0,1]; output class probabilities)"},
    {"--onnx", F_STRING, OFF(onnx), 0, 0, NULL, "FILE", NULL, "export: write --load's model as ONNX, as --export-onnx does"},
    {"--predictions", F_STRING, OFF(predictions), 0, 0, NULL, "FILE.csv", NULL, "eval: write each test image's label, prediction and probabilities"},
    {"--log", F_STRING, OFF(log), 0, 0, NULL, "FILE.csv", NULL, "write every epoch's metrics as CSV"},
    {"--checkpoint", F_STRING, OFF(checkpoint), 0, 0, NULL, "FILE", NULL, "write a resumable checkpoint"},
    {"--checkpoint-every", F_LONG, OFF(checkpoint_every), 1, 1e9, NULL, "N", "1", "epochs between checkpoints"},
    {"--resume", F_STRING, OFF(resume), 0, 0, NULL, "FILE", NULL, "continue from a checkpoint up to --epochs in total"},
    {"--plot", F_STRING, OFF(plot), 0, 0, NULL, "DIR", NULL, "write accuracy and MSE charts (PNG) at the end"},
    {"--grid", F_STRING, OFF(grid), 0, 0, NULL, "OUT.png", NULL, "predict: draw test images with their predictions"},
    {"--out", F_STRING, OFF(out), 0, 0, NULL, "FILE.csv", NULL, "predict --data: write ImageId,Label (Kaggle's submission format)"},
    {"--probs", F_BOOL, OFF(probs), 0, 0, NULL, NULL, NULL, "predict: add one probability column per class"},
    {"--quiet", F_BOOL, OFF(quiet), 0, 0, NULL, NULL, NULL, "print only the final result"},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

void options_defaults(options *o)
{
    memset(o, 0, sizeof *o);
    o->command = CMD_TRAIN;
    o->device = 0;
    o->gemm = -1;
    o->data = "data/mnist";
    o->test_split = 1000;
    o->hidden[0] = 10;
    o->n_hidden = 1;
    o->act = ACT_RELU;
    o->init = INIT_UNIFORM;
    o->epochs = -1;
    o->lr = 0.1;
    o->seed = 1;
    o->optimizer = OPT_SGD;
    o->momentum = 0.9;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->schedule = SCHED_CONSTANT;
    o->checkpoint_every = 1;
}

static int usage_error(const char *fmt, ...) CLT_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cltrain: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("; see 'cltrain --help'\n", stderr);
    return -1;
}

/* Index of `value` among "a|b|c", or -1. */
static int choice_index(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncmp(p, value, len) == 0) return idx;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != 0 || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int set_flag(options *o, const flag *f, const char *v)
{
    char *base = (char *)o + f->offset;
    double d;
    switch (f->type) {
    case F_BOOL:
        *(bool *)base = true;
        return 0;
    case F_STRING:
        if (!*v) return usage_error("%s needs a non-empty value%s", f->name, "");
        *(const char **)base = v;
        return 0;
    case F_LONG:
        if (parse_number(v, &d) || d != floor(d))
            return usage_error("%s takes a whole number, not '%s'", f->name, v);
        if (d < f->min || d > f->max)
            return usage_error("%s value '%s' is out of range", f->name, v);
        *(long *)base = (long)d;
        return 0;
    case F_DOUBLE:
        if (parse_number(v, &d)) return usage_error("%s takes a number, not '%s'", f->name, v);
        if (d < f->min || d > f->max) return usage_error("%s value '%s' is out of range", f->name, v);
        *(double *)base = d;
        return 0;
    case F_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (end == v || *end || errno || v[0] == '-')
            return usage_error("%s takes a whole number from 0 to 2^64-1, not '%s'", f->name, v);
        *(uint64_t *)base = (uint64_t)s;
        return 0;
    }
    case F_CHOICE: {
        int i = choice_index(f->choices, v);
        if (i < 0 || (f->offset == OFF(act) && i == ACT_NONE))
            return usage_error("%s must be one of %s", f->name, f->metavar);
        *(int *)base = i;
        return 0;
    }
    case F_GEMM: {
        int i = choice_index("builtin|clblast", v);
        if (i < 0) return usage_error("%s must be builtin or clblast, not '%s'", f->name, v);
        o->gemm = i;
        return 0;
    }
    case F_AUGMENT: {
        char err[768];
        if (augment_parse(v, &o->augment, err, sizeof err) != 0) return usage_error("%s", err);
        o->augment_given = true;
        return 0;
    }
    case F_DEVICE:
        o->device_given = true;
        if (strcmp(v, "host") == 0) { o->device_host = true; return 0; }
        if (parse_number(v, &d) || d != floor(d) || d < 0 || d > f->max)
            return usage_error("%s takes a device index (see --list-devices) or 'host', not '%s'", f->name, v);
        o->device_host = false;
        o->device = (int)d;
        return 0;
    case F_HIDDEN: {
        int n = 0;
        const char *p = v;
        while (*p) {
            char *end;
            errno = 0;
            long w = strtol(p, &end, 10);
            if (end == p || errno || (*end && *end != ',') || w < f->min || w > f->max)
                return usage_error("%s takes widths from 1 to 1000000 separated by commas, not '%s'", f->name, v);
            if (n == MODEL_MAX_LAYERS - 1)
                return usage_error("%s: at most 15 hidden layers, got '%s'", f->name, v);
            o->hidden[n++] = (int)w;
            p = *end ? end + 1 : end;
            if (*end == ',' && !*p) return usage_error("%s has a trailing comma: '%s'", f->name, v);
        }
        if (n == 0) return usage_error("%s needs at least one width%s", f->name, "");
        o->n_hidden = n;
        return 0;
    }
    }
    return -1;
}

int options_parse(options *o, int argc, char **argv)
{
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') {
        static const char *cmds[] = {"train", "predict", "eval", "plot", "export"};
        int c = -1;
        for (int k = 0; k < (int)(sizeof cmds / sizeof cmds[0]); k++)
            if (strcmp(argv[1], cmds[k]) == 0) c = k;
        if (c < 0) return usage_error("unknown command '%s'%s (train, predict, eval, plot, export)", argv[1], "");
        o->command = (command_kind)c;
        i = 2;
    }
    o->positional = xcalloc((size_t)argc, sizeof(char *), "arguments");
    o->n_positional = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == 0) {
            o->positional[o->n_positional++] = argv[i];
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const flag *f = NULL;
        for (size_t k = 0; k < N_FLAGS; k++)
            if (strlen(flags[k].name) == name_len && strncmp(flags[k].name, arg, name_len) == 0)
                f = &flags[k];
        if (!f) return usage_error("unknown option '%s'%s", arg, "");
        const char *value = NULL;
        if (f->type == F_BOOL) {
            if (eq) return usage_error("%s takes no value%s", f->name, "");
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return usage_error("%s needs a value (%s)", f->name, f->metavar);
            value = argv[++i];
        }
        if (set_flag(o, f, value) != 0) return -1;
        if (f->offset == OFF(data)) o->data_given = true;
    }
    if (o->early_stop > 0 && o->val == 0)
        return usage_error("--early-stop needs --val N (the validation set it watches)");
    if (o->onnx && o->command != CMD_EXPORT)
        return usage_error("--onnx is for 'cltrain export --load MODEL --onnx FILE'; after training use --export-onnx%s", "");
    if (o->export_onnx && o->command != CMD_TRAIN)
        return usage_error("--export-onnx writes the model after training; 'cltrain export' takes --onnx FILE%s", "");
    if (o->predictions && o->command != CMD_EVAL)
        return usage_error("--predictions is for 'cltrain eval'%s", "");
    if (o->command == CMD_TRAIN && o->n_positional > 0)
        return usage_error("unexpected argument '%s'%s", o->positional[0], "");
    return 0;
}

void options_free(options *o)
{
    free(o->positional);
    o->positional = NULL;
}

void options_print_help(FILE *f)
{
    fputs("usage: cltrain [train] [OPTIONS]      train a fully-connected network on MNIST-style data\n"
          "       cltrain predict --load MODEL [--grid OUT.png] [IMAGE...]\n"
          "       cltrain predict --load MODEL --data FILE.csv|DIR [--out FILE.csv] [--probs]\n"
          "       cltrain eval --load MODEL [--data DIR] [--predictions FILE.csv]\n"
          "       cltrain plot LOG.csv|FIGURES.tsv DIR\n"
          "       cltrain export --load MODEL --onnx FILE   ONNX: float32 pixels in [0,1] [N,784] -> probabilities\n\n"
          "options:\n", f);
    for (size_t k = 0; k < N_FLAGS; k++) {
        const flag *fl = &flags[k];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", fl->name, fl->metavar ? " " : "",
                 fl->metavar ? fl->metavar : "");
        fprintf(f, "  %-28s %s", left, fl->help);
        if (fl->def) fprintf(f, " [default: %s]", fl->def);
        fputc('\n', f);
    }
    fputs("\nexamples:\n"
          "  cltrain --device 0                          784-10-10 ReLU, full batch, 500 epochs (the seed)\n"
          "  cltrain --hidden 10,10 --activation sigmoid --epochs 100 --lr 0.01 --log run.csv\n"
          "  cltrain --hidden 800 --batch 128 --epochs 20 --save mnist800.model\n"
          "  cltrain --device host --train-limit 1000 --epochs 10\n"
          "  cltrain export --load mnist800.model --onnx mnist800.onnx   for ONNX Runtime and other ONNX tools\n"
          "\nexit status: 0 success, 1 runtime failure (OpenCL, I/O, memory), 2 usage or bad input\n", f);
}

const char *optimizer_name(optimizer_kind k)
{
    static const char *names[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
    return names[k];
}

const char *schedule_name(schedule_kind k)
{
    static const char *names[] = {"constant", "step", "cosine", "onecycle"};
    return names[k];
}
