/* trainer.c: the training loop over the back-end operation table (see trainer.h).
 *
 * Shapes, for a batch of m rows and layer l (0-based) mapping sizes[l] -> sizes[l+1]:
 *   X      m x sizes[0]     uint8 pixels, scaled by 1/255 inside the first gemm
 *   W_l    sizes[l+1] x sizes[l],  b_l sizes[l+1]     slices of one parameter buffer
 *   act[l] m x sizes[l+1]   A_l = g(A_{l-1} W_l^T + b_l); the last holds the logits, then dZ
 *   dW_l = dZ_l^T A_{l-1},  db_l = column sums of dZ_l,  dA_{l-1} = dZ_l W_l */
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "nonzero.h"
#include "rng.h"
#include "util.h"

/* Slots of the sums tensor: 3 stats each for train, test and validation. */
enum { SUM_TRAIN = 0, SUM_TEST = 3, SUM_VAL = 6, SUM_COUNT = 9 };
/* Rows evaluated at once when the training batch is smaller. */
#define EVAL_ROWS 4096
/* Stream spacing, so that (stream kind, index) pairs never collide. */
#define STREAM_STRIDE 16

typedef struct {
    tensor *x, *y;
    size_t n;
} device_set;

struct trainer {
    backend *be;
    train_config cfg;
    int L, in_dim, classes, max_hidden;
    size_t rows_cap;                   /* rows the activation buffers hold */
    device_set train, test, val;
    tensor *params, *grads, *state[2];
    int n_state;
    tensor *perm, *batch_y;            /* mini-batch only */
    tensor *aug_x;                     /* --augment: the distorted images of a step */
    int img_w, img_h;
    uint32_t *perm_host;
    tensor *act[MODEL_MAX_LAYERS];
    tensor *delta[2];
    tensor *train_stats, *eval_stats, *sums;
    const layer_plan *plan[MODEL_MAX_LAYERS];   /* fixed by trainer_create */
    int64_t step;
    float *grad_host;                  /* data parallel: the gradients on their way to MPI */
    const step_plan *step_plan;        /* the back-end's fused step, NULL: per-layer calls */
    char step_desc[320];               /* the step's plan, as trainer_print_plans says it */
    uint64_t step_launches, steps_counted;   /* kernel launches of the training steps */
};

static bool distributed(const trainer *t) { return t->cfg.ranks > 1; }

/* This rank's share [*lo, *lo + return) of m rows: contiguous, in rank order, so the shares
 * of every rank are the single-process batch. */
static size_t rank_share(const trainer *t, size_t m, size_t *lo)
{
    if (!distributed(t)) { *lo = 0; return m; }
    size_t r = (size_t)t->cfg.rank, R = (size_t)t->cfg.ranks;
    *lo = m * r / R;
    return m * (r + 1) / R - *lo;
}

static void upload_set(trainer *t, device_set *s, const dataset *d, const char *name)
{
    s->n = d ? d->n : 0;
    if (s->n == 0) return;
    size_t pixels = s->n * (size_t)t->in_dim;
    char label[64];
    snprintf(label, sizeof label, "%s images", name);
    s->x = t->be->ops->alloc(t->be, DT_U8, pixels, label);
    t->be->ops->write_images(t->be, s->x, t->in_dim, d->pixels);
    snprintf(label, sizeof label, "%s labels", name);
    s->y = t->be->ops->alloc(t->be, DT_U8, s->n, label);
    t->be->ops->write(t->be, s->y, 0, s->n, d->labels);
}

/* Share of nonzero pixels in the training images (the sets the first layer reads most). */
static double pixel_density(const dataset *d, int in_dim)
{
    return d ? nonzero_share(d->pixels, d->n * (size_t)in_dim) : 1.0;
}

layer_shape trainer_layer_shape(const train_config *cfg, int l, int rows, double density)
{
    const model_arch *a = &cfg->arch;
    int L = a->n_layers;
    return (layer_shape){.rows = rows, .k = a->sizes[l], .n = a->sizes[l + 1],
                         .input = l == 0 ? DT_U8 : DT_F32, .density = l == 0 ? density : 1.0,
                         .indexed = l == 0 && cfg->batch > 0,
                         .act = l < L - 1 ? a->act : ACT_NONE, .output = l == L - 1 && l > 0,
                         .step_classes = l == 0 && L == 2 && !augment_active(&cfg->augment)
                                             ? a->sizes[2] : 0};
}

/* Each layer's plan, chosen once for the training batch (evaluation runs the same kernels on
 * blocks of up to EVAL_ROWS rows). */
static void plan_layers(trainer *t, const dataset *train, size_t train_rows)
{
    double density = pixel_density(train, t->in_dim);
    for (int l = 0; l < t->L; l++) {
        layer_shape s = trainer_layer_shape(&t->cfg, l, (int)train_rows, density);
        t->plan[l] = t->be->ops->plan_layer(t->be, &s);
    }
}

void trainer_print_plans(const trainer *t, FILE *f)
{
    for (int l = 0; l < t->L; l++) {
        char line[512];
        t->be->ops->describe_plan(t->be, t->plan[l], line, sizeof line);
        fprintf(f, "layer %d: %s\n", l + 1, line);
    }
    fprintf(f, "step: %s\n", t->step_desc);
}

double trainer_launches_per_step(const trainer *t)
{
    return t->steps_counted ? (double)t->step_launches / (double)t->steps_counted : 0.0;
}

/* The plan of a whole step, next to the layers' (the back-end's fused step, or none). */
step_shape trainer_step_shape(const train_config *cfg, int rows)
{
    const model_arch *a = &cfg->arch;
    return (step_shape){.n_layers = a->n_layers, .sizes = a->sizes, .act = a->act,
                        .optimizer = cfg->optimizer, .rows = cfg->batch > 0 ? rows : 0,
                        .ranks = cfg->ranks > 1 ? cfg->ranks : 1, .dropout = cfg->dropout > 0.0f,
                        .augment = augment_active(&cfg->augment)};
}

static void plan_step(trainer *t, size_t train_rows)
{
    step_shape s = trainer_step_shape(&t->cfg, (int)train_rows);
    t->step_plan = t->be->ops->plan_step(t->be, &s, t->step_desc, sizeof t->step_desc);
}

static int state_arrays(optimizer_kind k)
{
    switch (k) {
    case OPT_MOMENTUM: case OPT_NESTEROV: return 1;
    case OPT_ADAM: case OPT_ADAMW: return 2;
    default: return 0;
    }
}

trainer *trainer_create(backend *be, const train_config *cfg, const dataset *train,
                        const dataset *test, const dataset *val, const float *params)
{
    trainer *t = xcalloc(1, sizeof *t, "trainer");
    const backend_ops *op = be->ops;
    t->be = be;
    t->cfg = *cfg;
    const model_arch *a = &t->cfg.arch;
    t->L = a->n_layers;
    t->in_dim = a->sizes[0];
    t->classes = a->sizes[t->L];
    for (int l = 1; l < t->L; l++)
        if (a->sizes[l] > t->max_hidden) t->max_hidden = a->sizes[l];

    upload_set(t, &t->train, train, "training");
    upload_set(t, &t->test, test, "test");
    upload_set(t, &t->val, val, "validation");

    size_t train_rows = cfg->batch > 0 && (size_t)cfg->batch < t->train.n ? (size_t)cfg->batch : t->train.n;
    size_t share_lo;
    train_rows = rank_share(t, train_rows, &share_lo) + (distributed(t) ? 1 : 0);   /* the larger share */
    size_t eval_n = t->test.n > t->val.n ? t->test.n : t->val.n;
    size_t eval_rows = eval_n < EVAL_ROWS ? eval_n : EVAL_ROWS;
    t->rows_cap = train_rows > eval_rows ? train_rows : eval_rows;
    if (t->rows_cap == 0) t->rows_cap = 1;

    t->params = op->alloc(be, DT_F32, a->n_params, "parameters");
    op->write(be, t->params, 0, a->n_params, params);
    t->grads = op->alloc(be, DT_F32, a->n_params, "gradients");
    t->n_state = state_arrays(cfg->optimizer);
    float *zeros = t->n_state ? xcalloc(a->n_params, sizeof(float), "optimizer state") : NULL;
    for (int s = 0; s < t->n_state; s++) {
        t->state[s] = op->alloc(be, DT_F32, a->n_params, s ? "optimizer second moments" : "optimizer first moments");
        op->write(be, t->state[s], 0, a->n_params, zeros);
    }
    free(zeros);

    for (int l = 0; l < t->L; l++) {
        char name[64];
        snprintf(name, sizeof name, "activations of layer %d", l + 1);
        t->act[l] = op->alloc(be, DT_F32, t->rows_cap * (size_t)a->sizes[l + 1], name);
    }
    if (t->max_hidden > 0)
        for (int k = 0; k < 2; k++)
            t->delta[k] = op->alloc(be, DT_F32, t->rows_cap * (size_t)t->max_hidden, "back-propagated gradients");

    if (cfg->batch > 0 && t->train.n > 0) {
        t->perm = op->alloc(be, DT_U32, t->train.n, "shuffle order");
        t->perm_host = xmalloc(t->train.n * sizeof(uint32_t), "shuffle order");
        t->batch_y = op->alloc(be, DT_U8, train_rows, "mini-batch labels");
    }
    if (augment_active(&cfg->augment) && t->train.n > 0) {
        if (!train || (size_t)train->rows * (size_t)train->cols != (size_t)t->in_dim)
            die(EXIT_USAGE, "--augment needs images (rows x cols pixels) as the network's input");
        t->img_w = train->cols;
        t->img_h = train->rows;
        t->aug_x = op->alloc(be, DT_U8, train_rows * (size_t)t->in_dim, "distorted images");
    }
    size_t stat_floats = (t->train.n ? t->train.n : 1) * STATS_PER_ROW;
    t->train_stats = op->alloc(be, DT_F32, stat_floats, "training statistics");
    /* Zeros, so that a resumed epoch's rows before its first step add nothing. */
    float *zero_stats = xcalloc(stat_floats, sizeof(float), "training statistics");
    op->write(be, t->train_stats, 0, stat_floats, zero_stats);
    free(zero_stats);
    t->eval_stats = op->alloc(be, DT_F32, (eval_n ? eval_n : 1) * STATS_PER_ROW, "evaluation statistics");
    t->sums = op->alloc(be, DT_F32, SUM_COUNT, "metric sums");
    if (distributed(t)) t->grad_host = xmalloc(a->n_params * sizeof(float), "gradients for MPI");
    plan_layers(t, train, train_rows ? train_rows : 1);
    plan_step(t, train_rows);
    return t;
}

void trainer_destroy(trainer *t)
{
    if (!t) return;
    backend *be = t->be;
    tensor *all[] = {t->train.x, t->train.y, t->test.x, t->test.y, t->val.x, t->val.y,
                     t->params, t->grads, t->state[0], t->state[1], t->perm, t->batch_y, t->aug_x, t->delta[0], t->delta[1], t->train_stats, t->eval_stats, t->sums};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) be->ops->release(be, all[i]);
    for (int l = 0; l < t->L; l++) be->ops->release(be, t->act[l]);
    free(t->perm_host);
    free(t->grad_host);
    free(t);
}

/* The rows a pass reads: a block of a set's images, or (idx non-NULL) the shuffled rows
 * idx[idx_off ..] of the training images, read in place. */
typedef struct {
    const tensor *x;
    size_t row0;
    const tensor *idx;
    size_t idx_off;
} batch_rows;

/* The input of layer l: the pixels for l = 0 (alpha folds in the 1/255), else A_{l-1}. */
static void layer_input(trainer *t, int l, const batch_rows *rows, const tensor **in,
                        size_t *in_off, const tensor **idx, size_t *idx_off, float *alpha)
{
    if (l == 0) {
        *in = rows->x;
        *in_off = rows->idx ? 0 : rows->row0 * (size_t)t->in_dim;
        *idx = rows->idx;
        *idx_off = rows->idx_off;
        *alpha = 1.0f / 255.0f;
    } else {
        *in = t->act[l - 1];
        *in_off = 0;
        *idx = NULL;
        *idx_off = 0;
        *alpha = 1.0f;
    }
}

static bool training_dropout(const trainer *t) { return t->cfg.dropout > 0.0f; }

/* Ranks draw independent masks for their rows (rank 0's are the single process's). */
static uint64_t dropout_seed(const trainer *t)
{
    return t->cfg.seed + (uint64_t)t->cfg.rank * UINT64_C(0x9E3779B97F4A7C15);
}

static uint64_t dropout_stream(const trainer *t, int layer)
{
    return RNG_STREAM_DROPOUT + STREAM_STRIDE * ((uint64_t)t->step * MODEL_MAX_LAYERS + (uint64_t)layer);
}

/* Forward pass of m rows through layers [from, to); to the last, it leaves the logits in
 * act[L-1]. */
static void forward_layers(trainer *t, const batch_rows *rows, int m, bool training, int from,
                           int to)
{
    const backend_ops *op = t->be->ops;
    const model_arch *a = &t->cfg.arch;
    for (int l = from; l < to; l++) {
        const tensor *in, *idx;
        size_t in_off, idx_off;
        float alpha;
        layer_input(t, l, rows, &in, &in_off, &idx, &idx_off, &alpha);
        bool hidden = l < t->L - 1;
        linear_forward_args f = {
            .plan = t->plan[l], .m = m, .k = a->sizes[l], .n = a->sizes[l + 1],
            .x = in, .x_off = in_off, .idx = idx, .idx_off = idx_off, .alpha = alpha,
            .w = t->params, .w_off = a->w_off[l], .b = t->params, .b_off = a->b_off[l],
            .act = hidden ? a->act : ACT_NONE, .out = t->act[l],
        };
        op->linear_forward(t->be, &f);
        if (hidden && training && t->cfg.dropout > 0.0f)
            op->dropout(t->be, t->act[l], 0, (size_t)m * (size_t)a->sizes[l + 1], t->cfg.dropout,
                        dropout_scale(t->cfg.dropout), dropout_seed(t), dropout_stream(t, l));
    }
}

static void forward(trainer *t, const batch_rows *rows, int m, bool training)
{
    forward_layers(t, rows, m, training, 0, t->L);
}

/* Backward pass from dZ of layer `top` down to the gradients of every layer below it. */
static void backward_from(trainer *t, const batch_rows *rows, int m, int top, const tensor *dz)
{
    const backend_ops *op = t->be->ops;
    const model_arch *a = &t->cfg.arch;
    bool dropout = training_dropout(t);
    for (int l = top; l >= 0; l--) {
        int out = a->sizes[l + 1], in_w = a->sizes[l];
        const tensor *in, *idx;
        size_t in_off, idx_off;
        float alpha;
        layer_input(t, l, rows, &in, &in_off, &idx, &idx_off, &alpha);
        linear_weights_args w = {
            .plan = t->plan[l], .m = m, .k = in_w, .n = out, .dz = dz,
            .x = in, .x_off = in_off, .idx = idx, .idx_off = idx_off, .alpha = alpha,
            .dw = t->grads, .dw_off = a->w_off[l], .db = t->grads, .db_off = a->b_off[l],
        };
        op->linear_weights(t->be, &w);
        if (l == 0) break;
        tensor *da = t->delta[l % 2];   /* never the buffer dz lives in */
        /* With inverted dropout act[l-1] holds A / (1 - p) where kept: a_scale undoes that. */
        linear_input_args d = {
            .plan = t->plan[l], .m = m, .k = in_w, .n = out, .dz = dz,
            .w = t->params, .w_off = a->w_off[l], .a_prev = t->act[l - 1], .act = a->act,
            .a_scale = dropout ? 1.0f - t->cfg.dropout : 1.0f, .da = da,
        };
        op->linear_input(t->be, &d);
        if (dropout)
            op->dropout(t->be, da, 0, (size_t)m * (size_t)in_w, t->cfg.dropout,
                        dropout_scale(t->cfg.dropout), dropout_seed(t), dropout_stream(t, l - 1));
        dz = da;
    }
}

/* The arguments of the next optimizer step (number t->step + 1) at rate lr. */
static update_args next_update(const trainer *t, float lr)
{
    update_args u = {
        .kind = t->cfg.optimizer, .params = t->params, .grads = t->grads,
        .state1 = t->state[0], .state2 = t->state[1], .n = t->cfg.arch.n_params,
        .lr = lr, .momentum = t->cfg.momentum, .beta1 = t->cfg.beta1, .beta2 = t->cfg.beta2,
        .eps = t->cfg.eps, .weight_decay = t->cfg.weight_decay,
    };
    adam_bias_corrections(&u, t->step + 1);
    return u;
}

static void update(trainer *t, float lr)
{
    update_args u = next_update(t, lr);
    t->step++;
    t->be->ops->update(t->be, &u);
}

/* output_step's arguments for m rows of the output layer: its forward pass and statistics
 * (the evaluation's), the backward part left for the caller. */
static output_step_args output_args(const trainer *t, const tensor *y, size_t y_off, int m,
                                    tensor *stats, size_t stat_row0)
{
    const model_arch *a = &t->cfg.arch;
    int L = t->L;
    return (output_step_args){
        .m = m, .k = a->sizes[L - 1], .n = a->sizes[L], .h = t->act[L - 2],
        .w = t->params, .w_off = a->w_off[L - 1], .b = t->params, .b_off = a->b_off[L - 1],
        .labels = y, .l_off = y_off, .scale = 1.0f, .z = t->act[L - 1], .stats = stats,
        .stat_row0 = stat_row0, .act = a->act, .a_scale = 1.0f,
    };
}

/* The output layer's forward and backward passes as one operation, where the back-end has
 * one for its shape (after the hidden layers' forward pass): its gradients, dZ in act[L-1]
 * and the hidden layer's dA, with its dropout mask, into *da. false: nothing was done. */
static bool output_step(trainer *t, const tensor *y, size_t y_off, int m, size_t stat_row0,
                        size_t batch, const tensor **da_out)
{
    const backend_ops *op = t->be->ops;
    const model_arch *a = &t->cfg.arch;
    int L = t->L;
    if (L < 2 || !op->output_step) return false;
    bool dropout = training_dropout(t);
    tensor *da = t->delta[(L - 1) % 2];
    output_step_args o = output_args(t, y, y_off, m, t->train_stats, stat_row0);
    o.backward = true;
    o.scale = 1.0f / (float)batch;
    o.dw = o.db = t->grads;
    o.dw_off = a->w_off[L - 1];
    o.db_off = a->b_off[L - 1];
    o.a_scale = dropout ? 1.0f - t->cfg.dropout : 1.0f;
    o.da = da;
    if (!op->output_step(t->be, &o)) return false;
    if (dropout)
        op->dropout(t->be, da, 0, (size_t)m * (size_t)a->sizes[L - 1], t->cfg.dropout,
                    dropout_scale(t->cfg.dropout), dropout_seed(t), dropout_stream(t, L - 2));
    *da_out = da;
    return true;
}

/* Both layers of a network of one hidden layer in one pass (training or, without backward,
 * evaluation), where the back-end has one for its shape and images: the statistics at
 * stat_row0 and, training, the gradients, or with u the update they make. false: nothing was
 * done. */
static bool sparse_pass(trainer *t, bool backward, const batch_rows *rows, const tensor *y,
                        size_t y_off, int m, tensor *stats, size_t stat_row0, size_t batch,
                        const update_args *u)
{
    const backend_ops *op = t->be->ops;
    const model_arch *a = &t->cfg.arch;
    if (t->L != 2 || !op->sparse_step) return false;
    bool dropout = backward && training_dropout(t);
    sparse_step_args s = {
        .backward = backward, .plan = t->plan[0], .m = m, .k = a->sizes[0], .h = a->sizes[1],
        .n = a->sizes[2], .params = t->params, .w1_off = a->w_off[0], .b1_off = a->b_off[0],
        .w2_off = a->w_off[1], .b2_off = a->b_off[1], .labels = y, .l_off = y_off,
        .scale = 1.0f / (float)batch, .stats = stats, .stat_row0 = stat_row0,
        .grads = t->grads, .act = a->act, .a_scale = dropout ? 1.0f - t->cfg.dropout : 1.0f,
        .dropout = dropout ? t->cfg.dropout : 0.0f, .keep_scale = dropout_scale(t->cfg.dropout),
        .dropout_seed = dropout_seed(t), .dropout_stream = dropout_stream(t, 0), .update = u,
    };
    layer_input(t, 0, rows, &s.x, &s.x_off, &s.idx, &s.idx_off, &s.alpha);
    return op->sparse_step(t->be, &s);
}

/* One step on m rows of a batch of `batch` (the mean's divisor: more than m when the ranks
 * share the batch): forward, loss and its gradient (stats at stat_row0), backward. */
static void compute_gradients(trainer *t, const batch_rows *rows, const tensor *y,
                              size_t y_off, int m, size_t stat_row0, size_t batch)
{
    const tensor *da = NULL;
    if (sparse_pass(t, true, rows, y, y_off, m, t->train_stats, stat_row0, batch, NULL)) return;
    forward_layers(t, rows, m, true, 0, t->L - 1);
    if (output_step(t, y, y_off, m, stat_row0, batch, &da)) {
        backward_from(t, rows, m, t->L - 2, da);
        return;
    }
    forward_layers(t, rows, m, true, t->L - 1, t->L);
    t->be->ops->softmax_xent(t->be, t->act[t->L - 1], 0, m, t->classes, y, y_off,
                             1.0f / (float)batch, t->train_stats, stat_row0, true);
    backward_from(t, rows, m, t->L - 1, t->act[t->L - 1]);
}

/* Data parallel: the sum of every rank's gradient buffer (all layers, one MPI_Allreduce in
 * host memory) replaces this rank's. A rank with no rows in the batch adds zeros. */
static void sum_gradients(trainer *t, int m)
{
    if (!distributed(t)) return;
    size_t n = t->cfg.arch.n_params;
    if (m > 0) t->be->ops->read(t->be, t->grads, 0, n, t->grad_host);
    else memset(t->grad_host, 0, n * sizeof(float));
    dist_allreduce_sum(t->grad_host, n);
    t->be->ops->write(t->be, t->grads, 0, n, t->grad_host);
}

/* One optimizer step at rate lr on this rank's m rows of a batch (see compute_gradients): the
 * gradients, their sum over the ranks, the update; in one pass where a single process's
 * network goes through sparse_pass (the ranks must sum the gradients between). */
static void gradient_step(trainer *t, const batch_rows *rows, const tensor *y, size_t y_off,
                          int m, size_t stat_row0, size_t batch, float lr)
{
    if (m > 0 && !distributed(t)) {
        update_args u = next_update(t, lr);
        if (sparse_pass(t, true, rows, y, y_off, m, t->train_stats, stat_row0, batch, &u)) {
            t->step++;
            return;
        }
    }
    if (m > 0) compute_gradients(t, rows, y, y_off, m, stat_row0, batch);
    sum_gradients(t, m);
    update(t, lr);
}

/* The output layer's forward pass and statistics as one operation, where the back-end has
 * one for its shape (after the hidden layers' forward pass); false: nothing was done. */
static bool output_eval(trainer *t, const tensor *y, size_t y_off, int m, tensor *stats,
                        size_t stat_row0)
{
    if (t->L < 2 || !t->be->ops->output_step) return false;
    output_step_args o = output_args(t, y, y_off, m, stats, stat_row0);
    return t->be->ops->output_step(t->be, &o);
}

/* Loss statistics of a whole set, in chunks, into sums[slot..slot+2]. */
static void evaluate_set(trainer *t, const device_set *s, tensor *stats, int slot)
{
    for (size_t row0 = 0; row0 < s->n; row0 += t->rows_cap) {
        size_t left = s->n - row0;
        int m = (int)(left < t->rows_cap ? left : t->rows_cap);
        batch_rows rows = {s->x, row0, NULL, 0};
        if (sparse_pass(t, false, &rows, s->y, row0, m, stats, row0, 1, NULL)) continue;
        forward_layers(t, &rows, m, false, 0, t->L - 1);
        if (output_eval(t, s->y, row0, m, stats, row0)) continue;
        forward_layers(t, &rows, m, false, t->L - 1, t->L);
        t->be->ops->softmax_xent(t->be, t->act[t->L - 1], 0, m, t->classes, s->y, row0, 1.0f,
                                 stats, row0, false);
    }
    t->be->ops->reduce_stats(t->be, stats, s->n, t->sums, (size_t)slot);
}

/* Reads the sums (the epoch's only transfer to the host) into metrics. */
static void read_metrics(trainer *t, size_t train_rows, bool combine, epoch_metrics *out)
{
    float s[SUM_COUNT] = {0};
    t->be->ops->read(t->be, t->sums, 0, SUM_COUNT, s);
    /* After an epoch each rank holds the training sums of its rows, rank 0 the held-out ones:
     * one sum gives every rank the same metrics, hence the same early-stopping decisions. */
    if (combine && distributed(t)) {
        if (t->cfg.rank != 0)
            for (int k = SUM_TEST; k < SUM_COUNT; k++) s[k] = 0.0f;
        dist_allreduce_sum(s, SUM_COUNT);
    }
    double n = train_rows ? (double)train_rows : 1.0;
    out->loss = s[SUM_TRAIN] / n;
    out->mse = s[SUM_TRAIN + 1] / (n * t->classes);
    out->train_acc = s[SUM_TRAIN + 2] / n;
    out->test_acc = t->test.n ? s[SUM_TEST + 2] / (double)t->test.n : 0.0;
    out->has_val = t->val.n > 0;
    out->val_acc = t->val.n ? s[SUM_VAL + 2] / (double)t->val.n : 0.0;
}

static void evaluate_held_out(trainer *t)
{
    if (t->test.n) evaluate_set(t, &t->test, t->eval_stats, SUM_TEST);
    if (t->val.n) evaluate_set(t, &t->val, t->eval_stats, SUM_VAL);
}

void trainer_evaluate(trainer *t, epoch_metrics *out)
{
    double t0 = now_seconds();
    memset(out, 0, sizeof *out);
    if (t->train.n) evaluate_set(t, &t->train, t->train_stats, SUM_TRAIN);
    evaluate_held_out(t);
    read_metrics(t, t->train.n, false, out);
    out->lr = schedule_lr(&t->cfg, 0.0);
    out->seconds = now_seconds() - t0;
}

size_t trainer_steps_per_epoch(const trainer *t)
{
    if (t->cfg.batch <= 0) return 1;
    size_t B = (size_t)t->cfg.batch;
    return (t->train.n + B - 1) / B;
}

void trainer_sync(trainer *t) { t->be->ops->finish(t->be); }

/* The rows of a training step: the set's images read in place, or with --augment their
 * distorted copies, drawn for (seed, epoch, position in the epoch). */
static batch_rows training_rows(trainer *t, long epoch, const tensor *idx, size_t row0, int m)
{
    batch_rows rows = {t->train.x, idx ? 0 : row0, idx, idx ? row0 : 0};
    if (!t->aug_x) return rows;
    t->be->ops->augment(t->be, t->train.x, idx, row0, m, t->img_w, t->img_h, &t->cfg.augment,
                        t->cfg.seed, RNG_STREAM_AUGMENT + STREAM_STRIDE * (uint64_t)epoch,
                        row0, t->aug_x);
    batch_rows aug = {t->aug_x, 0, NULL, 0};
    return aug;
}

/* One whole step through the back-end's fused step: m rows of the batch of `batch` from
 * shuffled position row0, the update at rate lr (the per-layer calls' forward, softmax_xent,
 * backward and update, with the same dropout draws and step count). */
static void fused_step(trainer *t, long epoch, size_t row0, int m, size_t batch, float lr)
{
    const model_arch *a = &t->cfg.arch;
    batch_rows rows = training_rows(t, epoch, t->perm, row0, m);
    train_step_args s = {
        .plan = t->step_plan, .n_layers = t->L, .sizes = a->sizes, .w_off = a->w_off,
        .b_off = a->b_off, .act = a->act, .m = m, .scale = 1.0f / (float)batch,
        .x = rows.x, .x_row0 = rows.row0, .x_indexed = rows.idx != NULL,
        .labels = t->train.y, .l_row0 = 0, .labels_indexed = true,
        .idx = t->perm, .idx_off = row0, .stats = t->train_stats, .stat_row0 = row0,
        .dropout = t->cfg.dropout, .dropout_seed = dropout_seed(t),
        .dropout_stream0 = dropout_stream(t, 0),
        .dropout_stream_step = dropout_stream(t, 1) - dropout_stream(t, 0),
    };
    t->step++;
    s.u = (update_args){
        .kind = t->cfg.optimizer, .params = t->params, .state1 = t->state[0],
        .state2 = t->state[1], .n = a->n_params, .lr = lr, .momentum = t->cfg.momentum,
        .beta1 = t->cfg.beta1, .beta2 = t->cfg.beta2, .eps = t->cfg.eps,
        .weight_decay = t->cfg.weight_decay,
    };
    adam_bias_corrections(&s.u, t->step);
    t->be->ops->train_step(t->be, &s);
}

size_t trainer_epoch_from(trainer *t, long epoch, size_t first, step_hook hook, void *ctx,
                          epoch_metrics *out)
{
    double t0 = now_seconds();
    const backend_ops *op = t->be->ops;
    memset(out, 0, sizeof *out);
    double pos = (double)(epoch - 1);
    double lr = schedule_lr(&t->cfg, pos);
    size_t n = t->train.n, steps = trainer_steps_per_epoch(t), done = first;
    if (t->cfg.batch <= 0) {
        if (first == 0) {
            size_t lo, m = rank_share(t, n, &lo);
            batch_rows rows = training_rows(t, epoch, NULL, lo, (int)m);
            gradient_step(t, &rows, t->train.y, lo, (int)m, lo, n, (float)lr);
            done = 1;
        }
    } else {
        size_t B = (size_t)t->cfg.batch;
        /* The order is a function of (seed, epoch): a resumed epoch draws the same one. */
        rng_permutation(t->cfg.seed, RNG_STREAM_SHUFFLE + STREAM_STRIDE * (uint64_t)epoch,
                        t->perm_host, (uint32_t)n);
        op->write(t->be, t->perm, 0, n, t->perm_host);
        for (size_t b = first; b < steps; b++) {
            size_t row0 = b * B;
            size_t batch = n - row0 < B ? n - row0 : B, lo;
            int m = (int)rank_share(t, batch, &lo);
            float step_lr = (float)schedule_lr(&t->cfg, pos + (double)b / (double)steps);
            uint64_t launches0 = backend_launch_count(t->be);
            if (t->step_plan && m > 0) {
                fused_step(t, epoch, row0 + lo, m, batch, step_lr);
            } else {
                batch_rows rows = {0};
                if (m > 0) {
                    op->gather_rows(t->be, t->train.y, 1, t->perm, row0 + lo, m, t->batch_y);
                    rows = training_rows(t, epoch, t->perm, row0 + lo, m);
                }
                gradient_step(t, &rows, t->batch_y, 0, m, row0 + lo, batch, step_lr);
            }
            t->step_launches += backend_launch_count(t->be) - launches0;
            t->steps_counted++;
            done = b + 1;
            if (hook && done < steps && hook(ctx, done, steps)) return done;
        }
    }
    op->reduce_stats(t->be, t->train_stats, n, t->sums, SUM_TRAIN);
    if (t->cfg.rank == 0) evaluate_held_out(t);
    size_t rows_run = t->cfg.batch > 0 ? n - (first * (size_t)t->cfg.batch < n ? first * (size_t)t->cfg.batch : n) : n;
    read_metrics(t, rows_run, true, out);
    out->epoch = epoch;
    out->lr = lr;
    out->seconds = now_seconds() - t0;
    return done;
}

void trainer_epoch(trainer *t, long epoch, epoch_metrics *out)
{
    trainer_epoch_from(t, epoch, 0, NULL, NULL, out);
}

void trainer_gradients(trainer *t, size_t row0, int m)
{
    if ((size_t)m > t->rows_cap) die(EXIT_RUNTIME, "BUG: trainer_gradients on %d rows, capacity %zu", m, t->rows_cap);
    batch_rows rows = {t->train.x, row0, NULL, 0};
    compute_gradients(t, &rows, t->train.y, row0, m, row0, (size_t)m);
    t->be->ops->finish(t->be);
}

void trainer_read_params(trainer *t, float *dst)
{
    t->be->ops->read(t->be, t->params, 0, t->cfg.arch.n_params, dst);
}

void trainer_read_grads(trainer *t, float *dst)
{
    t->be->ops->read(t->be, t->grads, 0, t->cfg.arch.n_params, dst);
}

void trainer_write_params(trainer *t, const float *src)
{
    t->be->ops->write(t->be, t->params, 0, t->cfg.arch.n_params, src);
}

int trainer_state_count(const trainer *t) { return t->n_state; }

void trainer_read_state(trainer *t, int which, float *dst)
{
    t->be->ops->read(t->be, t->state[which], 0, t->cfg.arch.n_params, dst);
}

void trainer_write_state(trainer *t, int which, const float *src)
{
    t->be->ops->write(t->be, t->state[which], 0, t->cfg.arch.n_params, src);
}

int64_t trainer_step_count(const trainer *t) { return t->step; }
void trainer_set_step_count(trainer *t, int64_t step) { t->step = step; }

void trainer_logits(trainer *t, const uint8_t *pixels, size_t n, float *out)
{
    const backend_ops *op = t->be->ops;
    if (n == 0) return;
    size_t chunk = t->rows_cap;
    /* All of them up at once (and their sparse copy built from these pixels), then forward
     * passes over blocks of the rows the activation buffers hold. */
    tensor *x = op->alloc(t->be, DT_U8, n * (size_t)t->in_dim, "images to predict");
    op->write_images(t->be, x, t->in_dim, pixels);
    for (size_t row0 = 0; row0 < n; row0 += chunk) {
        int m = (int)(n - row0 < chunk ? n - row0 : chunk);
        batch_rows rows = {x, row0, NULL, 0};
        forward(t, &rows, m, false);
        op->read(t->be, t->act[t->L - 1], 0, (size_t)m * (size_t)t->classes, out + row0 * (size_t)t->classes);
    }
    op->release(t->be, x);
}

double schedule_lr(const train_config *cfg, double pos)
{
    double lr = cfg->lr, lo = cfg->lr_min, total = cfg->total_epochs > 0 ? (double)cfg->total_epochs : 1.0;
    double frac = pos / total, v = lr;
    switch (cfg->schedule) {
    case SCHED_CONSTANT: v = lr; break;
    case SCHED_STEP:     /* divide by 10 at 50% and 75% of the run */
        v = frac < 0.5 ? lr : frac < 0.75 ? lr * 0.1 : lr * 0.01;
        if (v < lo) v = lo;
        break;
    case SCHED_COSINE:
        v = lo + (lr - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * (frac > 1 ? 1 : frac)));
        break;
    case SCHED_ONECYCLE: { /* up for 30% of the run, then cosine down to lr-min */
        double up = 0.3;
        if (frac < up) v = lo + (lr - lo) * frac / up;
        else v = lo + (lr - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * ((frac > 1 ? 1 : frac) - up) / (1 - up)));
        break;
    }
    }
    if (cfg->warmup > 0 && pos < cfg->warmup) v = lo + (v - lo) * (pos / cfg->warmup);
    return v;
}
