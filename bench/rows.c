/* rows.c: the benchmark's rows (see run.h): each one planned to the budget and run through the
 * library's trainer API, then its derived figures (bandwidth, GFLOP/s, the floor, speed-ups)
 * and its check against a reference row. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "util.h"

/* Training images of the calibration run that sizes a row to the budget. */
#define CALIBRATION_IMAGES 2048
/* Fewest images a row that is cut to the budget keeps. */
#define MIN_SUBSET 2048
/* Accuracy agreement with the reference row (same data, same epochs), absolute. */
#define ACC_TOLERANCE 0.01
/* Mini-batch workloads must reach this after their epochs when no reference row matches. */
#define ACC_SANITY 0.80

/* ---- the workloads -------------------------------------------------------------------------- */

static const workload workloads[3] = {
    {1, "784-10-10 relu, full batch, init uniform", 10, 0, INIT_UNIFORM, 0.1f},
    {2, "784-128-10 relu, batch 64, init he", 128, 64, INIT_HE, 0.1f},
    {3, "784-800-10 relu, batch 128, init he", 800, 128, INIT_HE, 0.1f},
};

const workload *workload_get(int id)
{
    if (id < 1 || id > 3) die(EXIT_RUNTIME, "BUG: no workload %d", id);
    return &workloads[id - 1];
}

void workload_arch(const workload *w, int inputs, int classes, model_arch *a)
{
    int h = w->hidden;
    if (model_arch_init(a, inputs, &h, 1, classes, ACT_RELU) != 0)
        die(EXIT_RUNTIME, "BUG: workload %d does not fit a model", w->id);
}

/* FLOP of the gemms of one training image: per layer l (in -> out), forward 2*in*out, weight
 * gradient 2*in*out, and for l > 0 the back-propagated gradient 2*in*out. Element-wise work
 * (bias, activation, softmax, update) is left out: it is O(out), not O(in*out). */
static double flop_per_image(const model_arch *a)
{
    double f = 0;
    for (int l = 0; l < a->n_layers; l++) {
        double p = (double)a->sizes[l] * (double)a->sizes[l + 1];
        f += 2 * p + 2 * p + (l > 0 ? 2 * p : 0);
    }
    return f;
}

/* The floor's FLOP for n training images holding nnz nonzero pixels: as flop_per_image, but
 * the first layer's two products (forward, weight gradient) count only the nonzero pixels,
 * since an implementation may skip the zeros (about 81% of MNIST's pixels) and a floor must be
 * a lower bound for every implementation. */
static double floor_flop(const model_arch *a, size_t n, size_t nnz)
{
    double f = 4.0 * (double)nnz * (double)a->sizes[1];
    for (int l = 1; l < a->n_layers; l++)
        f += 6.0 * (double)a->sizes[l] * (double)a->sizes[l + 1] * (double)n;
    return f;
}

row *row_new(bench *b, row_kind kind, int w, int slot)
{
    if (b->nrows >= MAX_ROWS) die(EXIT_RUNTIME, "BUG: more than %d benchmark rows", MAX_ROWS);
    row *r = &b->rows[b->nrows++];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->workload = w;
    r->floor_slot = slot;
    r->cl_index = -1;
    r->test_acc = r->eval_ms = r->estimate_ms = NAN;
    r->vs_numpy = r->vs_torch = NAN;
    return r;
}

/* ---- one row through the trainer API -------------------------------------------------------- */

train_config row_config(const model_arch *a, const workload *w, long total_epochs)
{
    train_config c;
    memset(&c, 0, sizeof c);
    c.arch = *a;
    c.batch = w->batch;
    c.seed = SEED;
    c.optimizer = OPT_SGD;
    c.lr = w->lr;
    c.momentum = 0.9f; c.beta1 = 0.9f; c.beta2 = 0.999f; c.eps = 1e-8f;
    c.schedule = SCHED_CONSTANT;
    c.total_epochs = total_epochs;
    return c;
}

/* Seconds of one training epoch on the first n_cal images (the second of two epochs, so the
 * kernel builds of the first are not in it). */
static double calibrate(backend *be, const train_config *cfg, const dataset *train, size_t n_cal,
                        const float *params)
{
    dataset sub = *train;
    sub.n = n_cal;
    trainer *t = trainer_create(be, cfg, &sub, NULL, NULL, params);
    epoch_metrics m;
    trainer_epoch(t, 1, &m);
    trainer_epoch(t, 2, &m);
    trainer_destroy(t);
    return m.seconds;
}

/* Sizes the row to the budget. The choices are coarse, so that rows of one workload on
 * devices of similar speed land on the same (images, epochs) and their accuracies can be
 * compared: the asked timed epochs, else half of them, and so on down to 3 (or the asked
 * number if smaller); when even that does not fit, the first half, quarter, ... of the
 * training images (whole batches, at least MIN_SUBSET). */
static void plan_row(const bench_opts *o, const workload *w, size_t n, double epoch_s, row *r)
{
    int W = o->warmup, N = o->epochs, least = N < 3 ? N : 3;
    r->n_train = n;
    r->warmup = W;
    r->timed = N;
    r->estimate_ms = epoch_s * 1e3;
    if (o->budget <= 0 || (W + N) * epoch_s <= o->budget) return;
    int timed = N;
    while (timed > least && (W + timed) * epoch_s > o->budget) {
        timed /= 2;
        if (timed < least) timed = least;
    }
    r->timed = timed;
    if ((W + timed) * epoch_s <= o->budget) {
        snprintf(r->note, sizeof r->note, "%d of %d epochs timed (budget %.0f s)", timed, N, o->budget);
        return;
    }
    size_t unit = w->batch > 0 ? (size_t)w->batch : 1;
    size_t lo = MIN_SUBSET > 4 * unit ? MIN_SUBSET : 4 * unit;
    size_t keep = n;
    double per = epoch_s;
    while (keep / 2 >= lo && (W + timed) * per > o->budget) {
        keep /= 2;
        per /= 2;
    }
    keep = keep / unit * unit;
    if (keep < lo) keep = lo < n ? lo : n;
    r->n_train = keep;
    snprintf(r->note, sizeof r->note, "first %zu of %zu training images, %d of %d epochs timed (budget %.0f s)",
             keep, n, timed, N, o->budget);
}

/* Plans the row: its estimated epoch on all the training images (a calibration, when there is
 * a budget), then plan_row. */
static void estimate_and_plan(bench *b, backend *be, const workload *w, row *r)
{
    const dataset *train = &b->data.train;
    size_t n = train->n, n_cal = n < CALIBRATION_IMAGES ? n : CALIBRATION_IMAGES;
    double epoch_s = 0;
    if (b->opt.budget > 0) {
        model_arch a;
        workload_arch(w, b->inputs, b->classes, &a);
        float *params = xmalloc(a.n_params * sizeof(float), "initial parameters");
        model_init_params(&a, w->init, SEED, params);
        train_config cc = row_config(&a, w, 2);
        epoch_s = calibrate(be, &cc, train, n_cal, params) * (double)n / (double)n_cal;
        free(params);
    }
    plan_row(&b->opt, w, n, epoch_s, r);
}

/* Trains one planned row (warm-up, timed epochs), then evaluates. *eval_built tells whether
 * this back-end has built its evaluation kernels yet. */
static void run_row(bench *b, backend *be, const workload *w, row *r, bool *eval_built)
{
    const dataset *train = &b->data.train;
    model_arch a;
    workload_arch(w, b->inputs, b->classes, &a);
    float *params = xmalloc(a.n_params * sizeof(float), "initial parameters");
    model_init_params(&a, w->init, SEED, params);
    fprintf(stderr, "bench: workload %d on %s (%s): ~%.0f ms/epoch estimated, %d+%d epochs on %zu images\n",
            w->id, r->device, r->gemm, r->estimate_ms, r->warmup, r->timed, r->n_train);

    train_config cfg = row_config(&a, w, r->warmup + r->timed);
    dataset sub = *train;
    sub.n = r->n_train;
    trainer *t = trainer_create(be, &cfg, &sub, NULL, NULL, params);
    epoch_metrics m;
    memset(&m, 0, sizeof m);
    long e = 1;
    for (int i = 0; i < r->warmup; i++) trainer_epoch(t, e++, &m);
    for (int i = 0; i < r->timed; i++) {
        trainer_epoch(t, e++, &m);
        r->ms[i] = m.seconds * 1e3;
    }
    r->st = stats_of(r->ms, r->timed);
    r->loss = m.loss;
    r->train_acc = m.train_acc;
    trainer_read_params(t, params);
    trainer_destroy(t);

    /* The evaluation `cltrain` adds to each epoch, on its own: a trainer holding the trained
     * parameters, one training image (it must have one) and the whole test set. On an OpenCL
     * back-end a first evaluation, untimed, builds whatever kernels this shape needs. */
    train_config ec = row_config(&a, w, 1);
    ec.batch = 0;
    dataset one = *train;
    one.n = 1;
    trainer *te = trainer_create(be, &ec, &one, &b->data.test, NULL, params);
    if (!*eval_built || r->kind == ROW_OPENCL) trainer_evaluate(te, &m);
    *eval_built = true;
    trainer_evaluate(te, &m);
    r->eval_ms = m.seconds * 1e3;
    r->test_acc = m.test_acc;
    trainer_destroy(te);
    free(params);
    r->ran = true;
}

/* Whether the trainer calls CLBlast at all for workload w on device d with gemm = clblast: one
 * profiled epoch on a few images, and "clblast" among the profiled kernels. (The trainer may
 * use fused layer kernels that do not go through the gemm operation; a "clblast" row would then
 * time the builtin kernels under another name.) */
static bool clblast_called(bench *b, int d, const workload *w)
{
    backend_cl_options bo = {.gemm = GEMM_CLBLAST, .profiling = true, .no_cache = false};
    backend *be = backend_cl_create(d, &bo);
    model_arch a;
    workload_arch(w, b->inputs, b->classes, &a);
    float *p = xmalloc(a.n_params * sizeof(float), "initial parameters");
    model_init_params(&a, w->init, SEED, p);
    train_config cfg = row_config(&a, w, 1);
    dataset sub = b->data.train;
    size_t want = w->batch > 0 ? 4 * (size_t)w->batch : 512;
    if (sub.n > want) sub.n = want;
    trainer *t = trainer_create(be, &cfg, &sub, NULL, NULL, p);
    epoch_metrics m;
    trainer_epoch(t, 1, &m);
    trainer_destroy(t);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) die(EXIT_RUNTIME, "open_memstream: %s", strerror(errno));
    backend_cl_print_profile(be, f);
    fclose(f);
    bool used = text && strstr(text, "clblast") != NULL;
    free(text);
    free(p);
    backend_destroy(be);
    return used;
}

/* Every selected row: the back-ends, created once and kept for every workload (the first of
 * each OpenCL one measures the kernel builds), then per workload its rows planned and run. */
void rows_run(bench *b)
{
    const bench_opts *o = &b->opt;
    backend *host = b->want_host ? backend_host_create() : NULL;
    backend *cl[MAX_DEVICES][2] = {{NULL}};
    bool host_eval = false, cl_eval[MAX_DEVICES][2] = {{false}};
    for (int d = 0; d < b->ndev; d++) {
        if (!b->want_cl[d]) continue;
        for (int g = 0; g < 2; g++) {
            if (!o->gemm[g]) continue;
            backend_cl_options bo = {.gemm = (gemm_kind)g, .profiling = false, .no_cache = false};
            cl[d][g] = o->build ? measure_build(b, d, (gemm_kind)g) : backend_cl_create(d, &bo);
            cl_eval[d][g] = o->build;
        }
        /* After the build figures (CLBlast's probe would have compiled its kernels first). A
         * back-end that cannot use CLBlast falls back to the builtin gemm on its own, so its
         * "clblast" rows would time the builtin kernels: they are left out. */
        if (o->gemm[GEMM_CLBLAST]) {
            b->clblast_ok[d] = probe_clblast(d);
            if (!b->clblast_ok[d]) {
                fprintf(stderr, "bench: CLBlast cannot run on cl%d: its rows are left out\n", d);
                backend_destroy(cl[d][GEMM_CLBLAST]);
                cl[d][GEMM_CLBLAST] = NULL;
                if (o->build && b->nbuilds > 0) b->nbuilds--;
            }
        }
    }

    for (int w = 1; w <= 3; w++) {
        if (!o->workload[w]) continue;
        const workload *wl = workload_get(w);
        int first = b->nrows;
        backend *row_be[MAX_ROWS] = {NULL};
        bool *row_eval[MAX_ROWS] = {NULL};
        if (host) {
            row *r = row_new(b, ROW_HOST, w, 0);
            snprintf(r->device, sizeof r->device, "host");
            snprintf(r->gemm, sizeof r->gemm, "plain C");
            row_be[b->nrows - 1] = host;
            row_eval[b->nrows - 1] = &host_eval;
        }
        for (int d = 0; d < b->ndev; d++) {
            if (!b->want_cl[d]) continue;
            for (int g = 0; g < 2; g++) {
                if (!o->gemm[g]) continue;
                row *r = row_new(b, ROW_OPENCL, w, b->slot_of[d]);
                r->cl_index = d;
                snprintf(r->device, sizeof r->device, "cl%d %s", d, b->devs[d].type);
                snprintf(r->gemm, sizeof r->gemm, "%s", g == GEMM_CLBLAST ? "clblast" : "builtin");
                if (!cl[d][g]) snprintf(r->note, sizeof r->note, "CLBlast cannot run on this device");
                if (cl[d][g] && g == GEMM_CLBLAST && !clblast_called(b, d, wl)) {
                    r->clblast_unused = true;
                    snprintf(r->gemm, sizeof r->gemm, "clblast (not called)");
                    fprintf(stderr, "bench: workload %d on cl%d makes no CLBlast call with --gemm clblast\n", w, d);
                }
                row_be[b->nrows - 1] = cl[d][g];
                row_eval[b->nrows - 1] = &cl_eval[d][g];
            }
        }
        /* Each row is sized to the budget on its own; then every OpenCL row takes the plan of
         * the most restricted one, so that they train the same images for the same epochs
         * (and their accuracies compare). The host row keeps its own plan. */
        const row *tight = NULL;
        for (int i = first; i < b->nrows; i++) {
            row *r = &b->rows[i];
            if (!row_be[i]) continue;
            estimate_and_plan(b, row_be[i], wl, r);
            if (r->kind == ROW_OPENCL &&
                (!tight || r->n_train < tight->n_train ||
                 (r->n_train == tight->n_train && r->timed < tight->timed)))
                tight = r;
        }
        b->plan_n[w] = b->data.train.n;
        b->plan_timed[w] = o->epochs;
        if (tight) {
            b->plan_n[w] = tight->n_train;
            b->plan_timed[w] = tight->timed;
            char note[160];
            snprintf(note, sizeof note, "%.159s", tight->note);
            for (int i = first; i < b->nrows; i++) {
                row *r = &b->rows[i];
                if (r->kind != ROW_OPENCL || !row_be[i]) continue;
                r->n_train = tight->n_train;
                r->timed = tight->timed;
                if (note[0])
                    snprintf(r->note, sizeof r->note, "%s; the plan of the slowest OpenCL row, shared by all of them",
                             note);
            }
        } else if (host) {
            b->plan_n[w] = b->rows[first].n_train;
            b->plan_timed[w] = b->rows[first].timed;
        }
        for (int i = first; i < b->nrows; i++)
            if (row_be[i]) run_row(b, row_be[i], wl, &b->rows[i], row_eval[i]);
    }
    backend_destroy(host);
    for (int d = 0; d < b->ndev; d++)
        for (int g = 0; g < 2; g++) backend_destroy(cl[d][g]);
}

/* ---- derived figures and checks -------------------------------------------------------------- */

static double ms_per_image(const row *r)
{
    return r->ran && r->n_train ? r->st.median / (double)r->n_train : NAN;
}

/* The fastest row of a peer kind on workload w (per training image, over the median): the
 * speed-ups compare with the best the peer did in this run, never with a slower configuration
 * of it (such as a thread count that oversubscribes the cores). */
static const row *fastest_row(const bench *b, row_kind kind, int w)
{
    const row *best = NULL;
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        if (r->kind == kind && r->workload == w && r->ran && !r->failed && isfinite(r->st.median) &&
            (!best || ms_per_image(r) < ms_per_image(best)))
            best = r;
    }
    return best;
}

void rows_derive(bench *b)
{
    for (int i = 0; i < b->nrows; i++) {
        row *r = &b->rows[i];
        if (!r->ran) continue;
        model_arch a;
        workload_arch(workload_get(r->workload), b->inputs, b->classes, &a);
        double bytes = (double)r->n_train * (double)b->inputs;
        double flop = flop_per_image(&a) * (double)r->n_train;
        double s = r->st.median / 1e3;
        r->gbs = bytes / s / 1e9;
        r->gflops = flop / s / 1e9;
        /* A CPU device runs on the host's processor: its floor is the better of its own probe
         * and the host's. */
        const floor_entry *f = &b->floors[r->floor_slot], *h = &b->floors[0];
        bool cpu = r->cl_index >= 0 && strcmp(b->devs[r->cl_index].type, "CPU") == 0;
        double bw = cpu && h->read_gbs > f->read_gbs ? h->read_gbs : f->read_gbs;
        double peak = cpu && h->peak > f->peak ? h->peak : f->peak;
        size_t n_img = r->n_train < b->data.train.n ? r->n_train : b->data.train.n;
        double fflop = floor_flop(&a, r->n_train, b->nnz_prefix[n_img]);
        r->floor_gflop = fflop / 1e9;
        double t_read = bw > 0 ? bytes / (bw * 1e9) : 0;
        double t_flop = peak > 0 ? fflop / (peak * 1e9) : 0;
        r->floor_ms = 1e3 * (t_read > t_flop ? t_read : t_flop);
        r->pct_floor = r->floor_ms > 0 ? 100.0 * r->floor_ms / r->st.median : NAN;
        r->over_floor = r->pct_floor > 100.0;
    }
    /* Checks: a finite loss and accuracy; agreement with the reference row (the host back-end,
     * else numpy) trained on the same images for the same epochs from the same start; without
     * one, a mini-batch workload must reach ACC_SANITY. */
    for (int i = 0; i < b->nrows; i++) {
        row *r = &b->rows[i];
        if (!r->ran) continue;
        if (!isfinite(r->test_acc) || !isfinite(r->loss) || !(r->test_acc > 0)) {
            snprintf(r->check, sizeof r->check, "FAIL: accuracy %.4f, loss %.4g", r->test_acc, r->loss);
            r->failed = true;
            continue;
        }
        /* The reference: the host back-end, else numpy, else any other row of the same plan
         * (the two gemm kinds check each other). */
        const row *ref = NULL;
        for (int pass = 0; pass < 3 && !ref; pass++)
            for (int k = 0; k < b->nrows && !ref; k++) {
                const row *c = &b->rows[k];
                bool kind_ok = pass == 0 ? c->kind == ROW_HOST : pass == 1 ? c->kind == ROW_NUMPY : true;
                if (c != r && c->ran && kind_ok && c->workload == r->workload &&
                    c->n_train == r->n_train && c->warmup + c->timed == r->warmup + r->timed)
                    ref = c;
            }
        if (ref) {
            double d = r->test_acc - ref->test_acc;
            bool ok = fabs(d) <= ACC_TOLERANCE;
            snprintf(r->check, sizeof r->check, "%s (%+.4f vs %s%s%s)", ok ? "ok" : "FAIL", d,
                     ref->kind == ROW_HOST ? "host" : ref->kind == ROW_NUMPY ? "numpy" : ref->device,
                     ref->kind == ROW_OPENCL ? " " : "", ref->kind == ROW_OPENCL ? ref->gemm : "");
            r->failed = !ok;
        } else if (r->kind == ROW_HOST) {
            snprintf(r->check, sizeof r->check, "reference");
        } else if (r->workload > 1) {
            bool ok = r->test_acc >= ACC_SANITY;
            snprintf(r->check, sizeof r->check, "%s (>= %.2f)", ok ? "ok" : "FAIL", ACC_SANITY);
            r->failed = !ok;
        } else {
            snprintf(r->check, sizeof r->check, "unchecked (no row of the same length)");
        }
        /* A forced OpenBLAS core type that computes a different answer is OpenBLAS's fault on
         * this processor, not cltrain's: it is marked and not the yardstick, but no failure. */
        if (r->failed && !(r->kind == ROW_NUMPY && r->coretype[0])) b->failures++;
    }
    for (int i = 0; i < b->nrows; i++) {
        row *r = &b->rows[i];
        if (!r->ran) continue;
        const row *np = fastest_row(b, ROW_NUMPY, r->workload);
        if (np && r->kind != ROW_NUMPY && r->workload == 1) r->vs_numpy = ms_per_image(np) / ms_per_image(r);
        const row *tr = fastest_row(b, ROW_TORCH, r->workload);
        if (tr && r->kind != ROW_TORCH) r->vs_torch = ms_per_image(tr) / ms_per_image(r);
        r->peer_best = (r == np || r == tr);
    }
    /* The numpy rows of the other core types are listed beside the peer's configuration, not
     * in the table: one numpy row per workload, the fastest. */
    for (int i = 0; i < b->nrows; i++) {
        row *r = &b->rows[i];
        r->listed_only = r->kind == ROW_NUMPY && !r->peer_best && fastest_row(b, ROW_NUMPY, r->workload);
    }
}
