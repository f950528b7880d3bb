/* checkpoint.h: the model file (trained parameters, and everything needed to resume) and the
 * NumPy export. Format, all little-endian:
 *   "CLTRAIN\x1a" magic, u32 version, u32 header bytes, header fields (below), float32
 *   parameters, optimizer state arrays, u32 CRC-32 (zlib) of every byte before it.
 * Version 2 ends the header with the class names (u32 count, 0 or one per class, then per name
 * a u32 length and its bytes), the --augment strengths (5 float32: shift, rotate, scale,
 * elastic alpha, sigma) and the process count (u32; a reader stops where the header's byte
 * count says, so fields added later are skipped). Version 1 files still load.
 * Files are written to a temporary name and renamed. */
#ifndef CLTRAIN_CHECKPOINT_H
#define CLTRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"

#define MODEL_FILE_VERSION 2
/* A class name's longest length in bytes. */
#define CLASS_NAME_MAX 64

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
    uint32_t ranks;           /* processes that trained it (mpirun -np); 0 = before the field */
    augment_spec augment;     /* distortions of the training batches (version 2; 0 in version 1) */
    float *params;            /* arch.n_params */
    int n_state;              /* 0, 1 or 2 optimizer state arrays */
    float *state[2];          /* arch.n_params each */
    char **class_names;       /* NULL, or one name per class (sizes[n_layers]), malloc'd */
} model_file;

/* Returns 0, or -1 with a one-line message ("what, where, what to do") in err. */
int model_save(const char *path, const model_file *m, char *err, size_t errlen);
int model_load(const char *path, model_file *m, char *err, size_t errlen);
void model_file_free(model_file *m);

/* NULL when `name` may be a class name (1..CLASS_NAME_MAX bytes, no control character, comma
 * or double quote: they go into CSV headers), else what is wrong with it. */
const char *class_name_fault(const char *name, size_t len);
/* A copy of n names (NULL for NULL), and its release. */
char **class_names_copy(char *const *names, int n);
void class_names_free(char **names, int n);

/* Writes W1.npy (h1 x inputs), b1.npy (h1,), W2.npy, ... into dir (created if missing). */
int export_npy(const char *dir, const model_arch *a, const float *params, char *err,
               size_t errlen);

#endif
