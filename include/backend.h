/* backend.h: the table of operations the training loop is written against. Two back-ends
 * implement it: "host" (plain C, float32 storage with float64 accumulation, the reference for
 * every test) and "opencl" (kernels in kernels/, launched through cl_runtime). The loop never
 * knows which one it drives; tests run every operation on both and compare (the parts the
 * layer operations are built from, which the loop never calls, through backend_testing.h).
 *
 * Conventions: matrices are row-major; a batch of m samples with f features is an m x f
 * matrix (one sample per row). Offsets and counts are in elements of the tensor's type. */
#ifndef CLTRAIN_BACKEND_H
#define CLTRAIN_BACKEND_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "augment.h"

typedef enum { DT_F32, DT_U8, DT_U32 } dtype;
typedef enum { ACT_NONE, ACT_RELU, ACT_SIGMOID } activation;
typedef enum { GEMM_BUILTIN, GEMM_CLBLAST } gemm_kind;
/* --kernels: the family of layer kernels, auto = the one shaped for the device's kind. */
typedef enum { KERNELS_AUTO, KERNELS_CPU, KERNELS_GPU } kernel_family;
/* --step: a mini-batch step through the back-end's fused step where its plan allows, the
 * per-layer operations always, or the plan's choice (auto). */
typedef enum { STEP_AUTO, STEP_FUSED, STEP_LAYERS } step_choice;
typedef enum { OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM, OPT_ADAMW } optimizer_kind;

/* Floats of per-row statistics written by softmax_xent: loss, squared error, correct. */
#define STATS_PER_ROW 3

typedef struct tensor tensor;     /* defined by each back-end */
typedef struct layer_plan layer_plan;   /* likewise (the OpenCL one in cl_layers.h) */
typedef struct backend backend;

/* What a layer's plan is chosen from: rows is the largest batch it runs (a call may pass
 * fewer), k inputs, n outputs, the input's type (DT_U8 pixels or DT_F32) and, for pixels, the
 * share of nonzeros; indexed: the rows are read through a shuffle index; output: the output
 * layer above a hidden one, whose training passes may go through output_step; step_classes:
 * on the first layer of a network of one hidden layer trained on the set's own images (no
 * --augment), the classes of the layer above, for a pass over both (sparse_step), else 0. */
typedef struct {
    int rows, k, n;
    dtype input;
    double density;
    bool indexed;
    activation act;
    bool output;
    int step_classes;
} layer_shape;

/* The three products of a fully-connected layer, fused with their neighbours where the plan
 * says so. Dimensions are always m (rows), k (inputs), n (outputs). X's row r is row
 * idx[idx_off + r] of x when idx is non-NULL (a shuffled mini-batch read in place), else
 * row r of x starting at element x_off. x is DT_U8 (pixels: pass alpha = 1/255) or DT_F32.
 * plan: from plan_layer for this (k, n, input); NULL lets the back-end plan the call itself.
 *   forward:  out[m x n] = act(alpha X[m x k] W[n x k]^T + b[n])
 *   weights:  dw[n x k] = alpha dZ[m x n]^T X[m x k],  db[n] = sum over rows of dZ
 *   input:    da[m x k] = (dZ[m x n] W[n x k]) * g'(a_scale * a_prev[m x k]), the activation's
 *             derivative from its values (ACT_NONE: no factor); a_scale is 1 - p under
 *             inverted dropout (a_prev holds the scaled values). */
typedef struct {
    const layer_plan *plan;
    int m, k, n;
    const tensor *x; size_t x_off; const tensor *idx; size_t idx_off; float alpha;
    const tensor *w; size_t w_off;
    const tensor *b; size_t b_off;
    activation act;
    tensor *out;
} linear_forward_args;

typedef struct {
    const layer_plan *plan;
    int m, k, n;
    const tensor *dz;
    const tensor *x; size_t x_off; const tensor *idx; size_t idx_off; float alpha;
    tensor *dw; size_t dw_off;
    tensor *db; size_t db_off;
} linear_weights_args;

typedef struct {
    const layer_plan *plan;
    int m, k, n;
    const tensor *dz;
    const tensor *w; size_t w_off;
    const tensor *a_prev; activation act; float a_scale;
    tensor *da;
} linear_input_args;

/* One optimizer step over n parameters, in place. state1/state2 are n floats each where the
 * optimizer needs them (momentum: velocity; Adam: first and second moments), else NULL.
 * weight_decay is L2 (added to the gradient) for sgd/momentum/nesterov/adam and decoupled
 * for adamw. bc1, bc2: Adam's bias corrections 1 - beta1^t and 1 - beta2^t for step t
 * (adam_bias_corrections), computed by the caller so that no two back-ends can differ. */
typedef struct {
    optimizer_kind kind;
    tensor *params; const tensor *grads; tensor *state1; tensor *state2;
    size_t n;
    float lr, momentum, beta1, beta2, eps, weight_decay;
    float bc1, bc2;
} update_args;

/* Fills u->bc1 and u->bc2 for step t >= 1 (counted from 1): in double, rounded to float. */
static inline void adam_bias_corrections(update_args *u, int64_t t)
{
    u->bc1 = (float)(1.0 - pow((double)u->beta1, (double)t));
    u->bc2 = (float)(1.0 - pow((double)u->beta2, (double)t));
}

/* Inverted dropout's scale for the kept elements, 1 / (1 - p): the dropout op's `scale`. */
static inline float dropout_scale(float p) { return 1.0f / (1.0f - p); }

/* A mini-batch step as one operation (train_step), for a back-end that runs it in fewer
 * launches than the per-layer operations. What its plan is chosen from: */
typedef struct {
    int n_layers;
    const int *sizes;           /* n_layers + 1 widths, sizes[0] the inputs */
    activation act;             /* hidden layers */
    optimizer_kind optimizer;
    int rows;                   /* rows of a step (the batch); 0: full batch */
    int ranks;                  /* processes sharing each batch (mpirun); 1 alone */
    bool dropout, augment;
} step_shape;

typedef struct step_plan step_plan;   /* defined by the back-end (the OpenCL one in cl_layers.h) */

/* One training step on m rows of a batch, what the per-layer operations do between two
 * reads of the parameters: the forward pass of every layer (inverted dropout on the hidden
 * layers with p = dropout, the mask of layer l drawn from (dropout_seed, dropout_stream0 +
 * dropout_stream_step * l) as the dropout op draws it), softmax_xent with scale (the mean's
 * 1 / batch) writing stats from stat_row0, the backward pass and the update u (u.grads
 * unused: the gradients need not exist anywhere). Row r's pixels are row idx[idx_off + r]
 * of x when x_indexed, else row x_row0 + r; its label likewise from labels (l_row0). */
typedef struct {
    const step_plan *plan;
    int n_layers;
    const int *sizes;
    const size_t *w_off, *b_off;
    activation act;
    int m;
    float scale;
    const tensor *x; size_t x_row0; bool x_indexed;
    const tensor *labels; size_t l_row0; bool labels_indexed;
    const tensor *idx; size_t idx_off;
    tensor *stats; size_t stat_row0;
    float dropout;
    uint64_t dropout_seed, dropout_stream0, dropout_stream_step;
    update_args u;
} train_step_args;

/* The output layer of a network with a hidden layer below it, forward and backward as one
 * operation (output_step), what these per-layer calls do: linear_forward (no activation) of
 * h[m x k] into z[m x n], softmax_xent with want_grad (labels from l_off, stats from
 * stat_row0, z then holding dZ), linear_weights into dw/db (alpha 1) and linear_input into
 * da[m x k] with the hidden activation act and a_scale. Without backward, the first two only,
 * as an evaluation runs them (softmax_xent without want_grad: z keeps the logits; dw, db and
 * da are not used). */
typedef struct {
    bool backward;
    int m, k, n;
    const tensor *h;
    const tensor *w; size_t w_off;
    const tensor *b; size_t b_off;
    const tensor *labels; size_t l_off;
    float scale;
    tensor *z;
    tensor *stats; size_t stat_row0;
    tensor *dw; size_t dw_off;
    tensor *db; size_t db_off;
    activation act; float a_scale;
    tensor *da;
} output_step_args;

/* A network of one hidden layer (k pixels -> h hidden -> n classes) over uint8 images, its
 * whole training pass as one operation (sparse_step): what linear_forward of the first layer
 * (alpha, act, then dropout at rate `dropout` with keep_scale, seed and stream), output_step
 * with backward (labels from l_off, scale, stats from stat_row0, a_scale), dropout on its dA
 * and linear_weights of the first layer compute, leaving the gradients of all four arrays in
 * grads at the parameters' offsets. X's rows as linear_forward_args says; plan: the first
 * layer's. Without backward (an evaluation) only the statistics, those of the forward pass
 * without dropout (scale, grads, a_scale and the dropout fields unused). With update (its
 * params the pass's, its n all of them, its grads unused), the pass applies that optimizer
 * step to the parameters instead of writing grads: what update() with the gradients does.
 * false: the back-end has no such pass for the shape or the images (nothing done). */
typedef struct {
    bool backward;
    const layer_plan *plan;
    int m, k, h, n;
    const tensor *x; size_t x_off; const tensor *idx; size_t idx_off; float alpha;
    const tensor *params; size_t w1_off, b1_off, w2_off, b2_off;
    const tensor *labels; size_t l_off;
    float scale;
    tensor *stats; size_t stat_row0;
    tensor *grads;
    activation act; float a_scale;
    float dropout, keep_scale; uint64_t dropout_seed, dropout_stream;
    const update_args *update;
} sparse_step_args;

typedef struct {
    const char *name;
    tensor *(*alloc)(backend *be, dtype type, size_t count, const char *name);
    void (*release)(backend *be, tensor *t);
    void (*write)(backend *be, tensor *t, size_t off, size_t count, const void *src);
    void (*read)(backend *be, const tensor *t, size_t off, size_t count, void *dst);
    /* write() of a whole DT_U8 tensor of images, k pixels each, from host memory: a back-end
     * that reads images sparsely builds that copy from these pixels, not from a read-back. */
    void (*write_images)(backend *be, tensor *t, int k, const uint8_t *pixels);

    /* Softmax over each row of z[rows x classes] against labels (DT_U8, one per row).
     * Writes per-row stats[(stat_row0 + i) * 3 + {0,1,2}] = cross-entropy loss,
     * sum over classes of (p - y)^2, and 1 if argmax == label else 0 (first maximum wins).
     * With want_grad, z is replaced by (p - onehot(label)) * scale, the gradient of the mean
     * loss when scale = 1/m. */
    void (*softmax_xent)(backend *be, tensor *z, size_t z_off, int rows, int classes,
                         const tensor *labels, size_t l_off, float scale,
                         tensor *stats, size_t stat_row0, bool want_grad);

    /* out[out_off + c] = sum over rows r < n of stats[r * 3 + c], c < 3, in a fixed order
     * (deterministic). */
    void (*reduce_stats)(backend *be, const tensor *stats, size_t n, tensor *out,
                         size_t out_off);

    /* dst[i][:] = src[idx[idx_off + i]][:] for i < m, rows of rowlen elements (DT_U8). */
    void (*gather_rows)(backend *be, const tensor *src, int rowlen, const tensor *idx,
                        size_t idx_off, int m, tensor *dst);

    /* Inverted dropout: x[i] *= keep_i * scale, keep_i = rng_uniform(seed, stream, i) >= p
     * for count elements, scale = dropout_scale(p) from the caller; the same (seed, stream)
     * reproduces the mask, so the backward pass calls it again on the gradient instead of
     * storing a mask. */
    void (*dropout)(backend *be, tensor *x, size_t off, size_t count, float p, float scale,
                    uint64_t seed, uint64_t stream);

    void (*update)(backend *be, const update_args *u);

    /* dst[m x width*height] (DT_U8) = images of src (DT_U8, rows of width*height pixels)
     * distorted as augment.h says: image i is row idx[idx_off + i] (idx non-NULL) or row
     * idx_off + i, with the transform drawn for epoch position pos0 + i from (seed, stream). */
    void (*augment)(backend *be, const tensor *src, const tensor *idx, size_t idx_off, int m,
                    int width, int height, const augment_spec *spec, uint64_t seed,
                    uint64_t stream, uint64_t pos0, tensor *dst);

    void (*linear_forward)(backend *be, const linear_forward_args *a);
    void (*linear_weights)(backend *be, const linear_weights_args *a);
    void (*linear_input)(backend *be, const linear_input_args *a);

    /* The plan for a layer of shape s, chosen once and kept until destroy; describe writes
     * one line (no newline) saying which kernels it runs and with which tuning values. */
    const layer_plan *(*plan_layer)(backend *be, const layer_shape *s);
    void (*describe_plan)(const backend *be, const layer_plan *p, char *buf, size_t len);

    /* The plan of a whole mini-batch step for a network of shape s, chosen once: NULL where
     * the back-end has none for it (the caller runs the per-layer operations); desc gets one
     * line (no newline) saying which, or why not. train_step runs a step with a plan it gave
     * (NULL in a back-end that never gives one). */
    const step_plan *(*plan_step)(backend *be, const step_shape *s, char *desc, size_t len);
    void (*train_step)(backend *be, const train_step_args *a);
    /* output_step in one pass where the back-end has one for the shape (NULL, or false with
     * nothing done: the caller makes the per-layer calls). */
    bool (*output_step)(backend *be, const output_step_args *a);
    /* sparse_step in one pass where the back-end has one (NULL, or false with nothing done:
     * the caller runs the hidden layer's forward pass and output_step or the per-layer calls). */
    bool (*sparse_step)(backend *be, const sparse_step_args *a);

    /* Waits until everything enqueued has finished (timing, before reads of results). */
    void (*finish)(backend *be);
    void (*destroy)(backend *be);
} backend_ops;

struct backend {
    const backend_ops *ops;
    void *impl;
};

typedef struct {
    gemm_kind gemm;
    kernel_family kernels;
    bool profiling;
    bool no_cache;
    step_choice step;           /* --step (last: initialisers written before it stay valid) */
} backend_cl_options;

backend *backend_host_create(void);
/* Opens OpenCL device `device_index` (global index across platforms). */
backend *backend_cl_create(int device_index, const backend_cl_options *opt);
/* Starts building, in a thread, the programs a training of shape s launches whatever the
 * layers' plans (the evaluation's sums; on the per-layer path the update and dropout's), and
 * sparse_step's where the first layer's plan for shape `first` (trainer_layer_shape; NULL:
 * none) takes it, so that the compiler's start-up and these builds overlap the data upload
 * (OpenCL back-end only; no-op otherwise). */
void backend_cl_prefetch_training(backend *be, const step_shape *s, const layer_shape *first);
/* Prints the per-kernel profile (OpenCL back-end with profiling only; no-op otherwise). */
void backend_cl_print_profile(backend *be, FILE *f);
/* Kernel launches enqueued so far (OpenCL back-end; 0 for the host): the trainer's
 * launches per step, printed by --profile. */
uint64_t backend_launch_count(const backend *be);
/* Device description of an OpenCL back-end, NULL for the host. */
const char *backend_device_name(const backend *be);

static inline void backend_destroy(backend *be) { if (be) be->ops->destroy(be); }

#endif
