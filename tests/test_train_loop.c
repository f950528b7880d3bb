/* test_train_loop.c: the whole training loop against a float64 reference written here from
 * the equations and the documented conventions (include/rng.h: the shuffle's and the dropout
 * masks' streams; backend.h: inverted dropout; cltrain.1: the optimizers, weight decay and the
 * schedules), not from trainer.c. The device-versus-host checks elsewhere run the same loop on
 * both sides, so a bug in the loop itself (how batches are cut and scaled, what the shuffle
 * depends on, where dropout acts in the backward pass, how the rate moves per step) passes
 * them; here it does not.
 *
 * Each case trains a 64-12-9-10 network for two epochs on 103 images (batch 16: six full
 * batches and a last one of 7) with every optimizer, each under a different schedule, plus a
 * full-batch run, on MNIST-like images (20 % of the pixels set, under the sparse first-layer
 * cut-off of backend_cl.c) or dense ones (90 %), ReLU or sigmoid, with or without dropout, on
 * the host and the OpenCL back-ends. Compared: the parameters after the two epochs, the step
 * count, the last epoch's training loss and accuracy (under dropout, as trained) and the test
 * accuracy on 300 held-out images (without dropout). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_runtime.h"
#include "model.h"
#include "rng.h"
#include "support.h"
#include "trainer.h"
#include "util.h"

enum { IN = 64, H1 = 12, H2 = 9, CLASSES = 10, N_TRAIN = 103, N_TEST = 300, BATCH = 16, EPOCHS = 2 };

/* ---- the reference ------------------------------------------------------------------------ */

/* The documented streams (include/rng.h). */
static uint64_t shuffle_stream(long epoch) { return 2 + 16 * (uint64_t)epoch; }
static uint64_t dropout_stream(int64_t step, int layer)
{
    return 3 + 16 * ((uint64_t)step * 16 + (uint64_t)layer);
}

/* The rate at a fractional epoch position pos (0 = start of epoch 1), from cltrain.1. */
static double ref_rate(const train_config *c, double pos)
{
    double hi = c->lr, lo = c->lr_min, f = pos / (double)c->total_epochs, v = hi;
    const double pi = 3.14159265358979323846;
    if (f > 1) f = 1;
    if (c->schedule == SCHED_STEP) v = fmax(lo, f < 0.5 ? hi : f < 0.75 ? hi / 10 : hi / 100);
    if (c->schedule == SCHED_COSINE) v = lo + (hi - lo) * (1 + cos(pi * f)) / 2;
    if (c->schedule == SCHED_ONECYCLE)
        v = f < 0.3 ? lo + (hi - lo) * f / 0.3 : lo + (hi - lo) * (1 + cos(pi * (f - 0.3) / 0.7)) / 2;
    if (c->warmup > 0 && pos < c->warmup) v = lo + (v - lo) * pos / c->warmup;
    return v;
}

typedef struct {
    const model_arch *a;
    const train_config *c;
    const dataset *d;
    double *p, *g, *s1, *s2;     /* parameters, gradient, optimizer state */
    int64_t step;                /* optimizer steps done */
    double loss_sum, correct;    /* this epoch's training statistics */
} ref_run;

static double act_fn(activation act, double z)
{
    return act == ACT_RELU ? (z > 0 ? z : 0) : 1.0 / (1.0 + exp(-z));
}

static double act_grad(activation act, double a)   /* from the activated value */
{
    return act == ACT_RELU ? (a > 0) : a * (1 - a);
}

/* Forward and backward of one sample (row r of the batch), adding its gradient of the mean
 * loss over m rows into g. Dropout: hidden unit j of layer l is kept when
 * rng_uniform(seed, dropout_stream(step, l), r * width + j) >= p, and scaled by 1 / (1 - p);
 * its gradient passes through the same mask and scale. */
static void ref_sample(ref_run *R, const uint8_t *px, int label, int r, int m)
{
    const model_arch *a = R->a;
    int L = a->n_layers;
    double x[MODEL_MAX_LAYERS + 1][IN], keep[MODEL_MAX_LAYERS][IN], delta[IN], next[IN];
    float p = R->c->dropout;
    for (int k = 0; k < a->sizes[0]; k++) x[0][k] = px[k] / 255.0;
    for (int l = 0; l < L; l++) {
        const double *W = R->p + a->w_off[l], *b = R->p + a->b_off[l];
        for (int j = 0; j < a->sizes[l + 1]; j++) {
            double z = b[j];
            for (int k = 0; k < a->sizes[l]; k++) z += W[(size_t)j * (size_t)a->sizes[l] + (size_t)k] * x[l][k];
            keep[l][j] = 1.0;
            if (l < L - 1) {
                if (p > 0.0f)
                    keep[l][j] = rng_uniform(R->c->seed, dropout_stream(R->step, l),
                                             (uint64_t)r * (uint64_t)a->sizes[l + 1] + (uint64_t)j) >= p
                                     ? 1.0 / (1.0 - (double)p) : 0.0;
                z = act_fn(a->act, z);
            }
            x[l + 1][j] = z * keep[l][j];
        }
    }
    const double *z = x[L];
    double mx = z[0], sum = 0;
    int arg = 0;
    for (int c = 1; c < CLASSES; c++) if (z[c] > mx) { mx = z[c]; arg = c; }
    for (int c = 0; c < CLASSES; c++) sum += exp(z[c] - mx);
    R->loss_sum += mx + log(sum) - z[label];
    R->correct += arg == label;
    for (int c = 0; c < CLASSES; c++) delta[c] = (exp(z[c] - mx) / sum - (c == label)) / m;
    for (int l = L - 1; l >= 0; l--) {
        int out = a->sizes[l + 1], in = a->sizes[l];
        const double *W = R->p + a->w_off[l];
        for (int j = 0; j < out; j++) {
            R->g[a->b_off[l] + (size_t)j] += delta[j];
            for (int k = 0; k < in; k++) R->g[a->w_off[l] + (size_t)j * (size_t)in + (size_t)k] += delta[j] * x[l][k];
        }
        if (l == 0) break;
        for (int k = 0; k < in; k++) {
            double s = 0;
            for (int j = 0; j < out; j++) s += W[(size_t)j * (size_t)in + (size_t)k] * delta[j];
            double kp = keep[l - 1][k];
            next[k] = kp == 0 ? 0 : s * kp * act_grad(a->act, x[l][k] / kp);
        }
        memcpy(delta, next, sizeof(double) * (size_t)in);
    }
}

/* Test accuracy of the current parameters: a plain forward pass, no dropout. */
static double ref_accuracy(const ref_run *R, const dataset *d)
{
    const model_arch *a = R->a;
    size_t right = 0;
    for (size_t s = 0; s < d->n; s++) {
        double x[2][IN];
        int cur = 0;
        for (int k = 0; k < a->sizes[0]; k++) x[0][k] = d->pixels[s * (size_t)a->sizes[0] + (size_t)k] / 255.0;
        for (int l = 0; l < a->n_layers; l++, cur = 1 - cur)
            for (int j = 0; j < a->sizes[l + 1]; j++) {
                double z = R->p[a->b_off[l] + (size_t)j];
                for (int k = 0; k < a->sizes[l]; k++) z += R->p[a->w_off[l] + (size_t)j * (size_t)a->sizes[l] + (size_t)k] * x[cur][k];
                x[1 - cur][j] = l < a->n_layers - 1 ? act_fn(a->act, z) : z;
            }
        int arg = 0;
        for (int c = 1; c < CLASSES; c++) if (x[cur][c] > x[cur][arg]) arg = c;
        right += arg == d->labels[s];
    }
    return (double)right / (double)d->n;
}

/* One optimizer step with rate lr (PyTorch's definitions; weight decay as an L2 term added to
 * the gradient, decoupled for adamw). */
static void ref_update(ref_run *R, double lr)
{
    const train_config *c = R->c;
    R->step++;
    double t = (double)R->step, b1 = c->beta1, b2 = c->beta2, mu = c->momentum, wd = c->weight_decay;
    for (size_t i = 0; i < R->a->n_params; i++) {
        double g = R->g[i] + (c->optimizer == OPT_ADAMW ? 0 : wd * R->p[i]);
        switch (c->optimizer) {
        case OPT_SGD: R->p[i] -= lr * g; break;
        case OPT_MOMENTUM: R->s1[i] = mu * R->s1[i] + g; R->p[i] -= lr * R->s1[i]; break;
        case OPT_NESTEROV: R->s1[i] = mu * R->s1[i] + g; R->p[i] -= lr * (g + mu * R->s1[i]); break;
        case OPT_ADAM: case OPT_ADAMW:
            if (c->optimizer == OPT_ADAMW) R->p[i] -= lr * wd * R->p[i];
            R->s1[i] = b1 * R->s1[i] + (1 - b1) * g;
            R->s2[i] = b2 * R->s2[i] + (1 - b2) * g * g;
            R->p[i] -= lr * (R->s1[i] / (1 - pow(b1, t))) / (sqrt(R->s2[i] / (1 - pow(b2, t))) + c->eps);
            break;
        }
    }
}

/* One epoch: full batch (rows in order, one step at the epoch's starting rate), or the
 * documented shuffle cut into batches of c->batch, the last one partial, each step at the
 * rate of its own position in the epoch. */
static void ref_epoch(ref_run *R, long epoch)
{
    size_t n = R->d->n, B = R->c->batch > 0 ? (size_t)R->c->batch : n, steps = (n + B - 1) / B;
    size_t in = (size_t)R->a->sizes[0];
    uint32_t *order = xmalloc(n * sizeof *order, "order");
    if (R->c->batch > 0) rng_permutation(R->c->seed, shuffle_stream(epoch), order, (uint32_t)n);
    else for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    R->loss_sum = R->correct = 0;
    for (size_t s = 0; s < steps; s++) {
        size_t row0 = s * B, m = n - row0 < B ? n - row0 : B;
        memset(R->g, 0, R->a->n_params * sizeof(double));
        for (size_t r = 0; r < m; r++) {
            size_t row = order[row0 + r];
            ref_sample(R, R->d->pixels + row * in, R->d->labels[row], (int)r, (int)m);
        }
        ref_update(R, ref_rate(R->c, (double)(epoch - 1) + (double)s / (double)steps));
    }
    free(order);
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* n images of IN pixels, each set with probability `density` to a value in 1..255. */
static void make_images(dataset *d, size_t n, double density, uint64_t seed)
{
    d->n = n;
    d->rows = d->cols = 8;
    d->classes = CLASSES;
    d->pixels = xmalloc(n * IN, "pixels");
    d->labels = xmalloc(n, "labels");
    for (size_t i = 0; i < n * IN; i++)
        d->pixels[i] = rng_uniform(seed, 5, i) < density ? (uint8_t)(1 + rng_below(seed, 6, i, 255)) : 0;
    for (size_t i = 0; i < n; i++) d->labels[i] = (uint8_t)rng_below(seed, 7, i, CLASSES);
}

/* One run per optimizer, each under another schedule so that every schedule moves per step,
 * and a full-batch run. The rates keep two epochs well away from divergence. */
typedef struct { optimizer_kind opt; schedule_kind sched; double warmup; float lr, wd; long batch; } run_spec;
static const run_spec runs[] = {
    {OPT_SGD, SCHED_ONECYCLE, 0.0, 0.5f, 0.01f, BATCH},
    {OPT_MOMENTUM, SCHED_STEP, 0.0, 0.1f, 0.02f, BATCH},
    {OPT_NESTEROV, SCHED_COSINE, 0.7, 0.1f, 0.01f, BATCH},
    {OPT_ADAM, SCHED_COSINE, 0.0, 0.01f, 0.05f, BATCH},
    {OPT_ADAMW, SCHED_CONSTANT, 1.3, 0.01f, 0.1f, BATCH},
    {OPT_SGD, SCHED_CONSTANT, 0.0, 0.5f, 0.01f, 0},
};
#define N_RUNS (int)(sizeof runs / sizeof runs[0])

static train_config run_config(const model_arch *a, const run_spec *r, float dropout)
{
    train_config c = {0};
    c.arch = *a;
    c.batch = r->batch;
    c.seed = 77;
    c.optimizer = r->opt;
    c.lr = r->lr;
    c.momentum = 0.8f;
    c.beta1 = 0.85f;
    c.beta2 = 0.99f;
    c.eps = 1e-7f;
    c.weight_decay = r->wd;
    c.schedule = r->sched;
    c.warmup = r->warmup;
    c.lr_min = r->lr / 20;
    c.total_epochs = EPOCHS;
    c.dropout = dropout;
    return c;
}

/* The device under test with profiling on: its profile names the kernels that ran. */
static backend *profiled_cl_backend(step_choice step)
{
    const char *d = getenv("CLTRAIN_TEST_DEVICE");
    backend_cl_options o = {.gemm = GEMM_BUILTIN, .profiling = true, .no_cache = false, .step = step};
    return backend_cl_create(d && *d ? atoi(d) : 0, &o);
}

static bool device_is_cpu(void)
{
    const char *d = getenv("CLTRAIN_TEST_DEVICE");
    int want = d && *d ? atoi(d) : 0;
    clrt_device_desc *devs = NULL;
    int n = clrt_list_devices(&devs);
    bool cpu = false;
    for (int i = 0; i < n; i++)
        if (devs[i].index == want) cpu = strcmp(devs[i].type, "CPU") == 0;
    free(devs);
    return cpu;
}

/* Case i: bit 0 sigmoid, bit 1 dropout 0.25, bit 2 dense images, bit 3 the OpenCL back-end;
 * cases 16 to 23 are 8 to 15 on the OpenCL back-end's per-layer path (--step layers): where
 * its plan takes the fused step for mini-batches, the per-layer kernels (the update, dropout,
 * the sparse scatter) are checked here too. */
static void check_case(int i)
{
    bool per_layer = i >= 16;
    if (per_layer) i = (i - 16) | 8;
    activation act = i & 1 ? ACT_SIGMOID : ACT_RELU;
    float dropout = i & 2 ? 0.25f : 0.0f;
    bool dense = i & 4, device = i & 8;
    int hidden[2] = {H1, H2};
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, IN, hidden, 2, CLASSES, act), 0);
    dataset tr, te;
    make_images(&tr, N_TRAIN, dense ? 0.9 : 0.2, 31);
    make_images(&te, N_TEST, dense ? 0.9 : 0.2, 32);
    backend *be = device ? profiled_cl_backend(per_layer ? STEP_LAYERS : STEP_AUTO) : backend_host_create();
    size_t np = a.n_params;
    float *p0 = xmalloc(np * sizeof(float), "p0"), *got = xmalloc(np * sizeof(float), "p");
    double *mem = xcalloc(4 * np, sizeof(double), "reference");
    for (int k = 0; k < N_RUNS; k++) {
        const run_spec *rs = &runs[k];
        train_config c = run_config(&a, rs, dropout);
        model_init_params(&a, INIT_HE, 5 + (uint64_t)k, p0);
        for (size_t j = 0; j < np; j++) p0[j] += 0.05f * (float)((int)(j % 5) - 2);  /* biases too */
        trainer *t = trainer_create(be, &c, &tr, &te, NULL, p0);
        ref_run R = {&a, &c, &tr, mem, mem + np, mem + 2 * np, mem + 3 * np, 0, 0, 0};
        memset(mem, 0, 4 * np * sizeof(double));
        for (size_t j = 0; j < np; j++) R.p[j] = p0[j];
        epoch_metrics m;
        for (long e = 1; e <= EPOCHS; e++) {
            trainer_epoch(t, e, &m);
            ref_epoch(&R, e);
        }
        trainer_read_params(t, got);
        ck_assert_int_eq(trainer_step_count(t), R.step);
        trainer_destroy(t);
        /* Error relative to how far training moved the parameters. Float32 storage rounds
         * each stored value by 6e-8 relative; measured over the 96 runs here the error is at most
         * 7e-5 of the movement (Adam under ReLU with dropout, where a ReLU input rounding across
         * zero changes one row's share of a gradient), 5e-6 elsewhere: 1e-3 leaves a 15-fold
         * margin. The loop bugs tried against it move the parameters by 1e-2 of their movement
         * or more (tests/MUTATIONS.md). */
        double num = 0, den = 1e-30;
        for (size_t j = 0; j < np; j++) {
            double d = fabs((double)got[j] - R.p[j]);
            if (!(d <= num)) num = d;
            den = fmax(den, fabs(R.p[j] - (double)p0[j]));
        }
        double err = num / den;
        const char *what[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
        ck_assert_msg(err < 1e-3, "%s%s, %s, dropout %.2f, %s images, %s batch %ld: parameters "
                      "differ from the float64 loop by %.3g of their movement",
                      be->ops->name, per_layer ? " (per-layer)" : "", act == ACT_RELU ? "relu" : "sigmoid", (double)dropout,
                      dense ? "dense" : "sparse", what[rs->opt], rs->batch, err);
        /* The last epoch's training loss and accuracy are the mean over its rows, as trained
         * (with the dropout masks); measured within 5e-8 relative, allowed 1e-5. */
        double ref_loss = R.loss_sum / N_TRAIN, ref_acc = R.correct / N_TRAIN;
        ck_assert_msg(fabs(m.loss - ref_loss) <= 1e-5 * fabs(ref_loss),
                      "%s %s: epoch loss %.6f, float64 loop %.6f", be->ops->name, what[rs->opt], m.loss, ref_loss);
        /* Held-out accuracy after training, without dropout: an argmax can flip only where two
         * logits nearly tie under float32 rounding, one image of 300 allowed. */
        double ref_test = ref_accuracy(&R, &te);
        ck_assert_msg(fabs(m.test_acc - ref_test) <= 1.5 / N_TEST,
                      "%s %s: test accuracy %.4f, float64 loop %.4f", be->ops->name, what[rs->opt], m.test_acc, ref_test);
        ck_assert_msg(fabs(m.train_acc - ref_acc) <= 1.5 / N_TRAIN,
                      "%s %s: train accuracy %.4f, float64 loop %.4f", be->ops->name, what[rs->opt], m.train_acc, ref_acc);
    }
    /* The premise of the sparse cases: the device ran the sparse first layer, forward and
     * backward (and the dense cases did not). Only CPU devices take that path; other devices
     * run every layer as a gemm (backend_cl.c, composite_path). */
    if (device && device_is_cpu()) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ck_assert_ptr_nonnull(f);
        backend_cl_print_profile(be, f);
        fclose(f);
        bool ran = strstr(text, "sparse_forward") && strstr(text, "sparse_weights");
        ck_assert_msg(ran == !dense, "%s images: the sparse first layer %s:\n%s", dense ? "dense" : "sparse",
                      ran ? "ran" : "did not run", text);
        free(text);
    }
    free(p0); free(got); free(mem);
    backend_destroy(be);
    dataset_free(&tr); dataset_free(&te);
}

START_TEST(test_loop_matches_float64)
{
    check_case(_i);
}
END_TEST

Suite *train_loop_suite(void)
{
    Suite *s = suite_create("train_loop");
    TCase *tc = tcase_create("float64");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_loop_matches_float64, 0, 24);
    suite_add_tcase(s, tc);
    return s;
}
