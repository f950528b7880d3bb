/* trainer.h: the training loop, written once against the back-end operation table.
 * Data and parameters are uploaded once; an epoch enqueues its steps and the evaluation, then
 * reads back only the few sums it reports. */
#ifndef CLTRAIN_TRAINER_H
#define CLTRAIN_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"
#include "dataset.h"
#include "model.h"
#include "options.h"

typedef struct {
    model_arch arch;
    long batch;                  /* 0 = full batch */
    uint64_t seed;
    optimizer_kind optimizer;
    float lr, momentum, beta1, beta2, eps, weight_decay;
    schedule_kind schedule;
    double warmup, lr_min;       /* schedule: warm-up epochs, lowest rate */
    long total_epochs;           /* schedules need the horizon */
    float dropout;
    /* Data parallel (dist.h): rank of ranks; 0 and 0 (or 1) train alone. Each rank computes the
     * gradient of its contiguous share of every global batch (--batch is the global size), the
     * ranks sum them, and every rank applies the same update. Rank 0 alone evaluates the test
     * and validation sets; the metrics every rank gets are rank 0's. */
    int rank, ranks;
    augment_spec augment;        /* distortions of every training batch (none: all zero) */
} train_config;

typedef struct {
    long epoch;                  /* 1-based; 0 = before training */
    double loss, mse, train_acc, test_acc, val_acc, lr, seconds;
    bool has_val;
} epoch_metrics;

typedef struct trainer trainer;

/* Uploads the data (train, test and optional validation set; val may be NULL or empty) and
 * the initial parameters (arch.n_params floats). */
trainer *trainer_create(backend *be, const train_config *cfg, const dataset *train,
                        const dataset *test, const dataset *val, const float *params);
void trainer_destroy(trainer *t);
/* The shape a training of cfg plans its step from, rows images a step (0: full batch); its
 * sizes point into cfg. trainer_create plans with it, and the start-up's build-ahead thread
 * picks from it the programs to build. */
step_shape trainer_step_shape(const train_config *cfg, int rows);
/* The shape layer l's plan is chosen from, for batches of rows and training images whose
 * share of nonzero pixels is density (the first layer's). */
layer_shape trainer_layer_shape(const train_config *cfg, int l, int rows, double density);
/* One line per layer: the plan trainer_create fixed for it ("layer 1: 784->10 ..."), and one
 * for the whole step ("step: fused step ..." or "step: per-layer path: why"). */
void trainer_print_plans(const trainer *t, FILE *f);
/* Kernel launches per mini-batch step so far (the steps' own: augment, the step, the update;
 * 0 before the first step or on the host). */
double trainer_launches_per_step(const trainer *t);

/* One epoch (1-based number): steps over the training set (one for full batch, shuffled
 * mini-batches otherwise, the last partial batch included), then the evaluation. */
void trainer_epoch(trainer *t, long epoch, epoch_metrics *out);

/* Called between steps with the number of steps done and the epoch's total; returns nonzero
 * to stop after the current step (a signal, say). */
typedef int (*step_hook)(void *ctx, size_t done, size_t total);

/* Steps of an epoch from step `first` on (a resumed checkpoint's position), calling hook after
 * each one. Returns the number of steps done in the epoch; when that is the epoch's total, the
 * evaluation has run and *out holds the metrics (train metrics cover the steps run here). */
size_t trainer_epoch_from(trainer *t, long epoch, size_t first, step_hook hook, void *ctx,
                          epoch_metrics *out);
/* Steps in one epoch. */
size_t trainer_steps_per_epoch(const trainer *t);
/* Waits for the queued work (progress display). */
void trainer_sync(trainer *t);
/* Evaluates the current parameters on every set without training (epoch 0's report). */
void trainer_evaluate(trainer *t, epoch_metrics *out);

/* Forward and backward over training rows [row0, row0 + m) in order, leaving the gradient of
 * the mean loss in the gradient buffer; no update. For tests and gradient checks. */
void trainer_gradients(trainer *t, size_t row0, int m);

void trainer_read_params(trainer *t, float *dst);
void trainer_read_grads(trainer *t, float *dst);
void trainer_write_params(trainer *t, const float *src);
/* Optimizer state: the number of arrays (0-2), and their transfer. */
int trainer_state_count(const trainer *t);
void trainer_read_state(trainer *t, int which, float *dst);
void trainer_write_state(trainer *t, int which, const float *src);
int64_t trainer_step_count(const trainer *t);
void trainer_set_step_count(trainer *t, int64_t step);

/* The learning rate of the schedule at a fractional epoch position (0 = start of epoch 1). */
double schedule_lr(const train_config *cfg, double epoch_pos);

/* Logits of `n` images (uint8 pixels, in_dim each) into out[n x classes]. For predict/eval. */
void trainer_logits(trainer *t, const uint8_t *pixels, size_t n, float *out);

#endif
