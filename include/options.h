/* options.h: every command-line setting, its default, and the parser. The flag table in
 * src/options.c is the single place a flag is defined (name, type, range, default, help). */
#ifndef CLTRAIN_OPTIONS_H
#define CLTRAIN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"
#include "model.h"

typedef enum { CMD_TRAIN, CMD_PREDICT, CMD_EVAL, CMD_PLOT, CMD_EXPORT } command_kind;
typedef enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE, SCHED_ONECYCLE } schedule_kind;

typedef struct {
    command_kind command;
    bool help, version, list_devices;

    /* device */
    bool device_host;          /* --device host */
    int device;                /* global OpenCL index */
    bool device_given;         /* --device on the command line (else, under mpirun, the local rank's) */
    int gemm;                  /* -1 = pick the faster for the device, else gemm_kind */
    kernel_family kernels;     /* --kernels, KERNELS_AUTO by default */
    step_choice step;          /* --step, STEP_AUTO by default */
    bool profile, no_cache;

    /* data */
    const char *data;
    bool data_given;           /* --data was on the command line (predict's batch mode) */
    long test_split;
    long train_limit, test_limit;   /* 0 = all */
    long val;                       /* validation hold-out, 0 = none */
    long classes;                   /* 0 = from the data (largest label + 1) or the model */
    const char *class_names;        /* one name a line */

    /* network */
    int hidden[MODEL_MAX_LAYERS];
    int n_hidden;
    activation act;
    init_kind init;

    /* training */
    long epochs;               /* -1 = default (500 full batch, 10 mini-batch) */
    double lr;
    long batch;                /* 0 = full batch */
    uint64_t seed;
    optimizer_kind optimizer;
    double momentum, beta1, beta2, eps, weight_decay;
    schedule_kind schedule;
    double warmup, lr_min;
    double dropout;
    long early_stop;
    augment_spec augment;      /* --augment; all zero without it */
    bool augment_given;        /* --augment was on the command line (a resume keeps the file's otherwise) */

    /* files */
    const char *save, *load, *export_npy, *log, *checkpoint, *resume, *plot;
    const char *export_onnx;   /* train: ONNX after training */
    const char *onnx;          /* export: the ONNX file to write */
    const char *predictions;   /* eval: per-image CSV */
    long checkpoint_every;
    bool quiet;

    /* predict / plot */
    const char *grid;
    const char *out;           /* predict --data: ImageId,Label CSV */
    bool probs;                /* predict: add each class's probability */
    char **positional;         /* images for predict; LOG.csv DIR for plot */
    int n_positional;
} options;

/* Fills the defaults. */
void options_defaults(options *o);
/* Parses argv (argv[0] is the program). On a usage error prints one line and a pointer to
 * --help on stderr and returns -1 (the caller exits 2). */
int options_parse(options *o, int argc, char **argv);
/* Releases what options_parse allocated. */
void options_free(options *o);
/* Prints --help. */
void options_print_help(FILE *f);

const char *optimizer_name(optimizer_kind k);
const char *schedule_name(schedule_kind k);

#endif
