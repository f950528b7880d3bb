/* checkpoint.h: the model file (trained parameters, and everything needed to resume) and the
 * NumPy export. Format, all little-endian:
 *   "CLTRAIN\x1a" magic, u32 version, u32 header bytes, header fields (below), float32
 *   parameters, optimizer state arrays, u32 CRC-32 (zlib) of every byte before it.
 * Files are written to a temporary name and renamed. */
#ifndef CLTRAIN_CHECKPOINT_H
#define CLTRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"

/* Version 2 appends the --augment strengths (5 float32) to the header; version 1 files (no
 * augmentation) still load. */
#define MODEL_FILE_VERSION 2

typedef struct {
    model_arch arch;
    init_kind init;
    optimizer_kind optimizer;
    float lr, momentum, beta1, beta2, eps, weight_decay, dropout;
    uint64_t batch;
    uint64_t seed;            /* with the counter-based generator, (seed, epoch) is its state */
    uint64_t epochs_done;     /* whole epochs done */
    uint64_t next_step;       /* steps already done in epoch epochs_done + 1 (an interrupted run) */
    uint64_t step;            /* optimizer steps taken (Adam's bias correction) */
    uint64_t n_train;         /* training-set size the shuffles were drawn for */
    float best_val;           /* early stopping: best validation accuracy so far, -1 none */
    uint64_t stale_epochs;    /* early stopping: epochs since the best */
    augment_spec augment;     /* distortions of the training batches (version 2; 0 in version 1) */
    float *params;            /* arch.n_params */
    int n_state;              /* 0, 1 or 2 optimizer state arrays */
    float *state[2];          /* arch.n_params each */
} model_file;

/* Returns 0, or -1 with a one-line message ("what, where, what to do") in err. */
int model_save(const char *path, const model_file *m, char *err, size_t errlen);
int model_load(const char *path, model_file *m, char *err, size_t errlen);
void model_file_free(model_file *m);

/* Writes W1.npy (h1 x inputs), b1.npy (h1,), W2.npy, ... into dir (created if missing). */
int export_npy(const char *dir, const model_arch *a, const float *params, char *err,
               size_t errlen);

#endif
