/* bench.c: cltrain-bench. One run measures, on the real MNIST, every selected device (the host
 * back-end and each OpenCL device, both gemm kinds) on three workloads through the library's
 * trainer API, beside the floor of the same machine (read bandwidth of the training images and
 * peak multiply-add rate, bench/probe.c), the numpy and PyTorch peers (bench/numpy_ref.py, bench/torch_ref.py), and the
 * start-up time of the real binary. It prints a Markdown block (the one bench/RESULTS.md holds)
 * and writes the raw figures as JSON under bench/results/.
 *
 * The timed figure of a row is the training part of an epoch: the trainer is created without a
 * test set, so trainer_epoch's own `seconds` covers the steps over the training set and the
 * read-back of the epoch's sums, nothing else. The evaluation that `cltrain` adds to every epoch
 * is timed on its own (trainer_evaluate on the 10,000 test images) and shown beside it; the test
 * accuracy comes from that same library path. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "bench.h"
#include "cl_runtime.h"
#include "dataset.h"
#include "model.h"
#include "trainer.h"
#include "util.h"

#define SEED 1
#define MAX_ROWS 128
#define MAX_DEVICES 16
#define MAX_TIMED 1000
#define MAX_PEER_LINES 16
/* Training images of the calibration run that sizes a row to the budget. */
#define CALIBRATION_IMAGES 2048
/* Fewest images a row that is cut to the budget keeps. */
#define MIN_SUBSET 2048
/* Accuracy agreement with the reference row (same data, same epochs), absolute. */
#define ACC_TOLERANCE 0.01
/* Mini-batch workloads must reach this after their epochs when no reference row matches. */
#define ACC_SANITY 0.80

/* ---- the workloads -------------------------------------------------------------------------- */

typedef struct {
    int id;
    const char *name;
    int hidden;
    long batch;               /* 0 = full batch */
    init_kind init;
    float lr;
} workload;

static const workload workloads[3] = {
    {1, "784-10-10 relu, full batch, init uniform", 10, 0, INIT_UNIFORM, 0.1f},
    {2, "784-128-10 relu, batch 64, init he", 128, 64, INIT_HE, 0.1f},
    {3, "784-800-10 relu, batch 128, init he", 800, 128, INIT_HE, 0.1f},
};

static void workload_arch(const workload *w, int inputs, int classes, model_arch *a)
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

/* ---- options -------------------------------------------------------------------------------- */

typedef struct {
    bool workload[4];
    int epochs, warmup;
    double budget;            /* seconds of warm-up + timed epochs per row; 0 = no limit */
    long train_limit;         /* 0 = all */
    bool quick;
    const char *devices;
    const char *json_path;
    const char *data;
    const char *cltrain;
    const char *python;
    const char *bench_dir;
    bool gemm[2];
    bool peers, startup, build, probe_only;
} bench_opts;

static void usage(FILE *f)
{
    fputs("usage: cltrain-bench [OPTIONS]\n"
          "  --workloads LIST    1,2,3 (default all): 1 = 784-10-10 full batch, 2 = 784-128-10\n"
          "                      batch 64, 3 = 784-800-10 batch 128\n"
          "  --devices LIST      all (default), host, opencl, or indices and host: host,0,1\n"
          "  --gemm LIST         builtin,clblast (default both) on OpenCL devices\n"
          "  --epochs N          timed epochs per row (default 10)\n"
          "  --warmup N          warm-up epochs before them (default 2)\n"
          "  --budget S          seconds of epochs per row (default 40; 0 = no limit): a slower\n"
          "                      row gets fewer timed epochs (at least 3), then a training subset\n"
          "  --train-limit N     use the first N training images everywhere\n"
          "  --quick             smoke test: --warmup 1 --epochs 3 --train-limit 6000 --budget 15\n"
          "  --json PATH         results file (default bench/results/HOST-DATE.json)\n"
          "  --data DIR          MNIST folder (default data/mnist)\n"
          "  --cltrain PATH      the binary timed for start-up (default: beside this program)\n"
          "  --python PATH       Python with numpy for the peers (default /usr/bin/python3)\n"
          "  --no-peers, --no-startup, --no-build   leave those parts out\n"
          "  --probe             measure the floor only (bandwidth and peak), print it, exit\n", f);
}

static long parse_count(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        die(EXIT_USAGE, "%s takes a whole number from %ld to %ld, not '%s'", flag, lo, hi, v);
    return x;
}

static void parse_options(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->workload[1] = o->workload[2] = o->workload[3] = true;
    o->epochs = 10;
    o->warmup = 2;
    o->budget = 40;
    o->devices = "all";
    o->data = "data/mnist";
    o->python = "/usr/bin/python3";
    o->gemm[GEMM_BUILTIN] = o->gemm[GEMM_CLBLAST] = true;
    o->peers = o->startup = o->build = true;
    bool set_epochs = false, set_warmup = false, set_budget = false, set_limit = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); exit(EXIT_OK); }
        if (strcmp(a, "--quick") == 0) { o->quick = true; continue; }
        if (strcmp(a, "--no-peers") == 0) { o->peers = false; continue; }
        if (strcmp(a, "--no-startup") == 0) { o->startup = false; continue; }
        if (strcmp(a, "--no-build") == 0) { o->build = false; continue; }
        if (strcmp(a, "--probe") == 0) { o->probe_only = true; continue; }
        if (i + 1 >= argc) die(EXIT_USAGE, "unknown option or missing value: '%s' (see --help)", a);
        const char *v = argv[++i];
        if (strcmp(a, "--workloads") == 0) {
            o->workload[1] = o->workload[2] = o->workload[3] = false;
            for (const char *p = v; *p; p++) {
                if (*p >= '1' && *p <= '3') o->workload[*p - '0'] = true;
                else if (*p != ',') die(EXIT_USAGE, "--workloads takes 1, 2, 3 separated by commas, not '%s'", v);
            }
        } else if (strcmp(a, "--devices") == 0) {
            o->devices = v;
        } else if (strcmp(a, "--gemm") == 0) {
            o->gemm[GEMM_BUILTIN] = strstr(v, "builtin") != NULL;
            o->gemm[GEMM_CLBLAST] = strstr(v, "clblast") != NULL;
            if (!o->gemm[0] && !o->gemm[1]) die(EXIT_USAGE, "--gemm takes builtin, clblast or both, not '%s'", v);
        } else if (strcmp(a, "--epochs") == 0) {
            o->epochs = (int)parse_count(a, v, 1, MAX_TIMED);
            set_epochs = true;
        } else if (strcmp(a, "--warmup") == 0) {
            o->warmup = (int)parse_count(a, v, 0, 1000);
            set_warmup = true;
        } else if (strcmp(a, "--budget") == 0) {
            char *end;
            o->budget = strtod(v, &end);
            if (end == v || *end || !(o->budget >= 0)) die(EXIT_USAGE, "--budget takes seconds (0 = no limit), not '%s'", v);
            set_budget = true;
        } else if (strcmp(a, "--train-limit") == 0) {
            o->train_limit = parse_count(a, v, 1, 1L << 40);
            set_limit = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--data") == 0) {
            o->data = v;
        } else if (strcmp(a, "--cltrain") == 0) {
            o->cltrain = v;
        } else if (strcmp(a, "--python") == 0) {
            o->python = v;
        } else {
            die(EXIT_USAGE, "unknown option '%s' (see --help)", a);
        }
    }
    if (o->quick) {
        if (!set_epochs) o->epochs = 3;
        if (!set_warmup) o->warmup = 1;
        if (!set_limit) o->train_limit = 6000;
        if (!set_budget) o->budget = 15;
    }
}

/* Which devices: host, and OpenCL indices (want_cl[i]). */
static bool parse_devices(const char *spec, int ndev, bool *want_cl)
{
    bool host = false;
    if (strcmp(spec, "all") == 0 || strcmp(spec, "opencl") == 0) {
        for (int i = 0; i < ndev; i++) want_cl[i] = true;
        return strcmp(spec, "all") == 0;
    }
    char *copy = xstrdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "host") == 0) { host = true; continue; }
        long d = parse_count("--devices", tok, 0, MAX_DEVICES - 1);
        if (d >= ndev) die(EXIT_USAGE, "--devices: there is no OpenCL device %ld (%d found)", d, ndev);
        want_cl[d] = true;
    }
    free(copy);
    return host;
}

/* ---- results -------------------------------------------------------------------------------- */

typedef enum { ROW_HOST, ROW_OPENCL, ROW_NUMPY, ROW_TORCH } row_kind;

typedef struct {
    row_kind kind;
    int workload;             /* 1..3 */
    int floor_slot;           /* index into the floors: 0 host, 1 + k the k-th selected device */
    int cl_index;             /* OpenCL device, -1 otherwise */
    char device[192];
    char gemm[48];
    int threads;              /* peers */
    size_t n_train;
    int warmup, timed;
    double ms[MAX_TIMED];
    stats3 st;
    double eval_ms, test_acc, train_acc, loss, estimate_ms;
    double gbs, gflops, floor_ms, pct_floor, vs_numpy, vs_torch;
    char note[256];
    char check[320];
    bool failed, ran;
    bool clblast_unused;      /* a clblast row whose trainer made no CLBlast call */
    bool over_floor;          /* faster than the floor: the floor model is wrong for it */
    double floor_gflop;       /* the FLOP the floor counts (GFLOP) */
} row;

typedef struct {
    char name[200];
    double read_gbs, read_median, peak;
    bool ok;
    char read_how[128], peak_how[128];
} floor_entry;

typedef struct {
    int cl_index;
    gemm_kind gemm;
    double open_s, first_s, second_s, cached_s;
} build_entry;

typedef struct {
    bool ran;
    char command[512];
    double cold_s, warm_s[2], cold_train_s, warm_train_s;
    int cold_rc, warm_rc;
} startup_entry;

typedef struct {
    bench_opts opt;
    char cmdline[1024], host[256], date[32], commit[64], cpu[160];
    bool dirty;
    int cores;
    dataset_pair data;
    int inputs, classes;
    clrt_device_desc *devs;
    int ndev;
    bool want_host, want_cl[MAX_DEVICES], clblast_ok[MAX_DEVICES];
    int slot_of[MAX_DEVICES];
    floor_entry floors[MAX_DEVICES + 1];
    size_t *nnz_prefix;       /* nonzero pixels of training images [0, i) */
    int nfloors;
    build_entry builds[2 * MAX_DEVICES];
    int nbuilds;
    startup_entry startup;
    row *rows;
    int nrows;
    char peer_lines[MAX_PEER_LINES][32768];
    int npeer_lines;
    size_t plan_n[4];         /* per workload: the OpenCL rows' shared plan, for the peers */
    int plan_timed[4];
    char blas[256], torch_note[256];
    char tmp[512];
    int failures;
} bench;

static row *new_row(bench *b, row_kind kind, int w, int slot)
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

static train_config row_config(const model_arch *a, const workload *w, long total_epochs)
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

/* ---- kernel builds and start-up --------------------------------------------------------------- */

/* Seconds of trainer_create + one epoch (with its evaluation of the test set, as cltrain
 * runs it) + trainer_destroy, workload 1 on n training images. */
static double create_and_epoch(bench *b, backend *be, size_t n)
{
    model_arch a;
    workload_arch(&workloads[0], b->inputs, b->classes, &a);
    float *p = xmalloc(a.n_params * sizeof(float), "initial parameters");
    model_init_params(&a, INIT_UNIFORM, SEED, p);
    train_config cfg = row_config(&a, &workloads[0], 1);
    dataset sub = b->data.train;
    sub.n = n;
    double t0 = now_seconds();
    trainer *t = trainer_create(be, &cfg, &sub, &b->data.test, NULL, p);
    epoch_metrics m;
    trainer_epoch(t, 1, &m);
    trainer_destroy(t);
    double dt = now_seconds() - t0;
    free(p);
    return dt;
}

/* The kernel-build cost of device d with gemm g, in this process (whose kernel caches start
 * empty): a first trainer on a fresh back-end (programs compiled, cache files written), a
 * second on the same back-end (programs reused in memory), a third on a new back-end (programs
 * loaded from the cache). Returns the last back-end, kept for the rows. */
static backend *measure_build(bench *b, int d, gemm_kind g)
{
    size_t n = b->data.train.n < 10000 ? b->data.train.n : 10000;
    backend_cl_options bo = {.gemm = g, .profiling = false, .no_cache = false};
    build_entry *e = &b->builds[b->nbuilds++];
    e->cl_index = d;
    e->gemm = g;
    double t0 = now_seconds();
    backend *be = backend_cl_create(d, &bo);
    e->open_s = now_seconds() - t0;
    e->first_s = create_and_epoch(b, be, n);
    e->second_s = create_and_epoch(b, be, n);
    backend_destroy(be);
    be = backend_cl_create(d, &bo);
    e->cached_s = create_and_epoch(b, be, n);
    fprintf(stderr, "bench: device %d %s: first epoch %.2f s, second %.2f s, new back-end with the cache %.2f s\n",
            d, g == GEMM_CLBLAST ? "clblast" : "builtin", e->first_s, e->second_s, e->cached_s);
    return be;
}

/* "after 1 epochs, 0.92 s" in cltrain --quiet's last line: the training seconds it reports. */
static double reported_seconds(const char *out)
{
    const char *p = out ? strstr(out, " epochs, ") : NULL;
    double s;
    if (p && sscanf(p, " epochs, %lf s", &s) == 1) return s;
    return NAN;
}

static void measure_startup(bench *b)
{
    startup_entry *s = &b->startup;
    if (access(b->opt.cltrain, X_OK) != 0) {
        fprintf(stderr, "bench: %s not found: no start-up figures (--cltrain PATH names it)\n", b->opt.cltrain);
        return;
    }
    char cache[600], limit[32];
    make_temp_dir("cache", cache, sizeof cache);
    char *argv[12];
    int k = 0;
    argv[k++] = (char *)b->opt.cltrain;
    argv[k++] = "--epochs"; argv[k++] = "1"; argv[k++] = "--quiet";
    argv[k++] = "--data"; argv[k++] = (char *)b->opt.data;
    if (b->ndev == 0) { argv[k++] = "--device"; argv[k++] = "host"; }
    if (b->opt.train_limit > 0) {
        snprintf(limit, sizeof limit, "%ld", b->opt.train_limit);
        argv[k++] = "--train-limit"; argv[k++] = limit;
    }
    argv[k] = NULL;
    size_t len = 0;
    s->command[0] = '\0';
    for (int i = 0; i < k; i++)
        len += (size_t)snprintf(s->command + len, len < sizeof s->command ? sizeof s->command - len : 0,
                                "%s%s", i ? " " : "", argv[i]);
    env_change env[1] = {{"XDG_CACHE_HOME", cache}};
    char *out = NULL;
    s->cold_rc = proc_run(argv, env, 1, &out, &s->cold_s, false);
    s->cold_train_s = reported_seconds(out);
    free(out);
    s->warm_rc = 0;
    for (int i = 0; i < 2; i++) {
        int rc = proc_run(argv, env, 1, &out, &s->warm_s[i], false);
        if (rc != 0) s->warm_rc = rc;
        if (i == 1) s->warm_train_s = reported_seconds(out);
        free(out);
    }
    remove_tree(cache);
    s->ran = true;
    if (s->cold_rc != 0 || s->warm_rc != 0) {
        fprintf(stderr, "bench: %s failed (exit %d cold, %d warm)\n", s->command, s->cold_rc, s->warm_rc);
        b->failures++;
    }
}

/* ---- the peers --------------------------------------------------------------------------------- */

static void write_params(const char *path, const workload *w, const bench *b)
{
    model_arch a;
    workload_arch(w, b->inputs, b->classes, &a);
    float *p = xmalloc(a.n_params * sizeof(float), "initial parameters");
    model_init_params(&a, w->init, SEED, p);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof(float), a.n_params, f) != a.n_params || fclose(f) != 0)
        die(EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    free(p);
}

/* A row from one JSON line of a peer. */
static void peer_row(bench *b, const char *line)
{
    double w = 0, v;
    if (!json_number(line, "workload", &w) || w < 1 || w > 3) return;
    char peer[32] = "", dev[160] = "", blas[160] = "", note[200] = "";
    json_string(line, "peer", peer, sizeof peer);
    row *r = new_row(b, strcmp(peer, "torch") == 0 ? ROW_TORCH : ROW_NUMPY, (int)w, 0);
    r->loss = NAN;            /* a null or missing loss fails the check */
    json_string(line, "device", dev, sizeof dev);
    json_string(line, "blas", blas, sizeof blas);
    json_string(line, "note", note, sizeof note);
    if (json_number(line, "threads", &v)) r->threads = (int)v;
    snprintf(r->device, sizeof r->device, "%s", dev[0] ? dev : peer);
    snprintf(r->gemm, sizeof r->gemm, "%s, %d thr", r->kind == ROW_TORCH ? "torch" : "numpy", r->threads);
    snprintf(r->note, sizeof r->note, "%s", note);
    if (json_number(line, "n_train", &v)) r->n_train = (size_t)v;
    if (json_number(line, "warmup", &v)) r->warmup = (int)v;
    r->timed = json_numbers(line, "timed_ms", r->ms, MAX_TIMED);
    r->st = stats_of(r->ms, r->timed);
    if (json_number(line, "eval_ms", &v)) r->eval_ms = v;
    if (json_number(line, "test_acc", &v)) r->test_acc = v;
    if (json_number(line, "train_loss", &v)) r->loss = v;
    r->ran = r->timed > 0;
    if (r->kind == ROW_NUMPY && blas[0]) snprintf(b->blas, sizeof b->blas, "%s", blas);
    if (b->npeer_lines < MAX_PEER_LINES && line[0] == '{' && strlen(line) < sizeof b->peer_lines[0])
        snprintf(b->peer_lines[b->npeer_lines++], sizeof b->peer_lines[0], "%s", line);
}

static void peer_output(bench *b, const char *out)
{
    const char *p = out;
    while (p && *p) {
        size_t len = strcspn(p, "\n");
        if (*p == '{') {
            char *line = xmalloc(len + 1, "peer output");
            memcpy(line, p, len);
            line[len] = '\0';
            peer_row(b, line);
            free(line);
        }
        p += len;
        if (*p) p++;
    }
}

/* A program named by path (checked) or by a bare name (left to the PATH search). */
static bool runnable(const char *prog)
{
    return !strchr(prog, '/') || access(prog, X_OK) == 0;
}

static bool python_has(const char *python, const char *module)
{
    if (!runnable(python)) return false;
    char code[64];
    snprintf(code, sizeof code, "import %s", module);
    char *argv[] = {(char *)python, "-c", code, NULL};
    env_change quiet[1] = {{"PYTHONWARNINGS", "ignore"}};
    char *out = NULL;
    int rc = proc_run(argv, quiet, 1, &out, NULL, true);
    free(out);
    return rc == 0;
}

static void run_peers(bench *b)
{
    const bench_opts *o = &b->opt;
    if (!b->opt.workload[1] && !b->opt.workload[2]) return;
    char p1[600], p2[600], ep[16], wu[16], lim[32], bud[32], script[600];
    snprintf(p1, sizeof p1, "%s/params-w1.f32", b->tmp);
    snprintf(p2, sizeof p2, "%s/params-w2.f32", b->tmp);
    write_params(p1, &workloads[0], b);
    write_params(p2, &workloads[1], b);
    /* The peers train what the OpenCL rows trained (the same images and epochs), so their
     * times and accuracies compare; numpy is fast enough not to need a budget. */
    snprintf(wu, sizeof wu, "%d", o->warmup);
    snprintf(bud, sizeof bud, "%g", o->budget);
    snprintf(ep, sizeof ep, "%d", b->plan_timed[1]);
    snprintf(lim, sizeof lim, "%zu", b->plan_n[1]);

    if (!python_has(o->python, "numpy")) {
        fprintf(stderr, "bench: %s with numpy not found: no numpy peer (make bench installs python3-numpy)\n", o->python);
    } else if (o->workload[1]) {
        snprintf(script, sizeof script, "%s/numpy_ref.py", o->bench_dir);
        char *argv[] = {(char *)o->python, script, "--data", (char *)o->data, "--epochs", ep,
                        "--warmup", wu, "--train-limit", lim, "--params", p1, "--budget", "0", NULL};
        /* OpenBLAS picks its kernels itself in the peer's process: an inherited core type or
         * cache size would make it someone else's numpy. */
        env_change env[2] = {{"OPENBLAS_CORETYPE", NULL}, {"OPENBLAS_L2_SIZE", NULL}};
        fprintf(stderr, "bench: numpy peer (workload 1)\n");
        char *out = NULL;
        int rc = proc_run(argv, env, 2, &out, NULL, false);
        if (rc != 0) {
            fprintf(stderr, "bench: the numpy peer failed (exit %d)\n", rc);
            b->failures++;
        }
        peer_output(b, out);
        free(out);
    }

    /* PyTorch: the Debian Python first, then whichever python3 is first on PATH. */
    const char *cands[2] = {o->python, "python3"};
    const char *torch_py = NULL;
    for (int i = 0; i < 2 && !torch_py; i++)
        if (python_has(cands[i], "torch")) torch_py = cands[i];
    if (!torch_py) {
        snprintf(b->torch_note, sizeof b->torch_note, "PyTorch not importable by %s or python3: no torch peer", o->python);
        fprintf(stderr, "bench: %s\n", b->torch_note);
        return;
    }
    snprintf(script, sizeof script, "%s/torch_ref.py", o->bench_dir);
    for (int w = 1; w <= 2; w++) {
        if (!o->workload[w]) continue;
        char wl[4];
        snprintf(wl, sizeof wl, "%d", w);
        snprintf(ep, sizeof ep, "%d", b->plan_timed[w]);
        snprintf(lim, sizeof lim, "%zu", b->plan_n[w]);
        char *argv[] = {(char *)torch_py, script, "--data", (char *)o->data, "--epochs", ep,
                        "--warmup", wu, "--train-limit", lim, "--params1", p1, "--params2", p2,
                        "--workloads", wl, "--budget", bud, NULL};
        fprintf(stderr, "bench: torch peer (%s, workload %d)\n", torch_py, w);
        char *out = NULL;
        int rc = proc_run(argv, NULL, 0, &out, NULL, false);
        if (rc != 0) {
            fprintf(stderr, "bench: the torch peer failed (exit %d)\n", rc);
            b->failures++;
        }
        peer_output(b, out);
        free(out);
    }
}

/* ---- derived figures and checks -------------------------------------------------------------- */

static double ms_per_image(const row *r)
{
    return r->ran && r->n_train ? r->st.median / (double)r->n_train : NAN;
}

static const row *find_row(const bench *b, row_kind kind, int w, int threads_at_least)
{
    const row *best = NULL;
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        if (r->kind == kind && r->workload == w && r->ran && r->threads >= threads_at_least &&
            (!best || r->threads > best->threads))
            best = r;
    }
    return best;
}

static void derive(bench *b)
{
    for (int i = 0; i < b->nrows; i++) {
        row *r = &b->rows[i];
        if (!r->ran) continue;
        model_arch a;
        workload_arch(&workloads[r->workload - 1], b->inputs, b->classes, &a);
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
        const row *np = find_row(b, ROW_NUMPY, r->workload, 0);
        if (np && r->kind != ROW_NUMPY && r->workload == 1) r->vs_numpy = ms_per_image(np) / ms_per_image(r);
        const row *tr = find_row(b, ROW_TORCH, r->workload, 0);
        if (tr && r->kind != ROW_TORCH) r->vs_torch = ms_per_image(tr) / ms_per_image(r);
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
        if (r->failed) b->failures++;
    }
}

/* ---- reports ---------------------------------------------------------------------------------- */

/* x with `decimals` decimals and a suffix, or a dash when it is not a number. */
static void fmt(char *buf, size_t len, double x, int decimals, const char *suffix)
{
    if (isfinite(x)) snprintf(buf, len, "%.*f%s", decimals, x, suffix);
    else snprintf(buf, len, "–");
}

/* x with three significant digits (no exponent below 1e6), or a dash. */
static void sig3(char *buf, size_t len, double x)
{
    if (!isfinite(x)) { snprintf(buf, len, "–"); return; }
    double a = fabs(x);
    int dec = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : a >= 0.01 ? 4 : 5;
    snprintf(buf, len, "%.*f", dec, x);
}

static void print_markdown(const bench *b, FILE *f)
{
    const bench_opts *o = &b->opt;
    fprintf(f, "<!-- cltrain-bench: paste from here -->\n");
    fprintf(f, "Run: `%s` on %s (%s, %d cores), %s, commit %s%s.\n\n", b->cmdline, b->host, b->cpu,
            b->cores, b->date, b->commit, b->dirty ? " with uncommitted changes" : "");
    fprintf(f, "| # | device | platform | driver | OpenCL C |\n|---|---|---|---|---|\n");
    if (b->want_host) fprintf(f, "| host | host back-end (plain C, one thread) | – | – | – |\n");
    for (int i = 0; i < b->ndev; i++)
        if (b->want_cl[i])
            fprintf(f, "| cl%d | %s | %s | %s | %s |\n", i, b->devs[i].name, b->devs[i].platform,
                    b->devs[i].driver, b->devs[i].opencl_c);
    if (b->blas[0]) fprintf(f, "\nnumpy peer: %s.\n", b->blas);
    if (b->torch_note[0]) fprintf(f, "\n%s.\n", b->torch_note);

    fprintf(f, "\n**Floor** (measured in this run; floor time = max(image bytes / read bandwidth, "
               "FLOP / peak), the FLOP of the gemms with the first layer's counted over nonzero "
               "pixels only (%.1f%% of them); a CPU device uses the better of its probe and the host's):\n\n",
            100.0 * (double)b->nnz_prefix[b->data.train.n] / ((double)b->data.train.n * (double)b->inputs));
    fprintf(f, "| device | read GB/s best (median) | read probe | peak GFLOP/s | peak probe |\n|---|---|---|---|---|\n");
    for (int i = 0; i < b->nfloors; i++) {
        const floor_entry *e = &b->floors[i];
        fprintf(f, "| %s | %.1f (%.1f)%s | %s | %.1f | %s |\n", e->name, e->read_gbs, e->read_median,
                e->ok ? "" : " **checksum FAIL**", e->read_how, e->peak, e->peak_how);
    }

    fprintf(f, "\n**Steady epochs** (training only: trainer_epoch's own seconds on a trainer without a "
               "test set, %d warm-up then timed epochs, budget %.0f s per row; `cltrain` prints "
               "train + eval per epoch; GFLOP/s counts the dense gemm FLOP, %% of floor = floor / median):\n\n",
            o->warmup, o->budget);
    fprintf(f, "| wl | device | gemm | images | epochs | train ms/epoch median [min–max] | eval ms | GB/s | "
               "GFLOP/s | floor ms | %% of floor | vs numpy | vs torch | test acc | check |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 1; w <= 3; w++) {
        for (int i = 0; i < b->nrows; i++) {
            const row *r = &b->rows[i];
            if (r->workload != w) continue;
            if (!r->ran) {
                fprintf(f, "| %d | %s | %s | – | – | not run: %s | | | | | | | | | |\n", w, r->device, r->gemm, r->note);
                continue;
            }
            char eval[32], vn[32], vt[32], pct[32], acc[32], gbs[32], gfl[32], flo[32];
            fmt(eval, sizeof eval, r->eval_ms, 1, "");
            fmt(vn, sizeof vn, r->vs_numpy, 2, "×");
            fmt(vt, sizeof vt, r->vs_torch, 2, "×");
            fmt(acc, sizeof acc, r->test_acc, 4, "");
            sig3(pct, sizeof pct, r->pct_floor);
            if (r->over_floor) strcat(pct, " (!)");
            sig3(gbs, sizeof gbs, r->gbs);
            sig3(gfl, sizeof gfl, r->gflops);
            sig3(flo, sizeof flo, r->floor_ms);
            bool subset = r->n_train < b->data.train.n;
            fprintf(f, "| %d | %s | %s | %zu%s | %d+%d | %.1f [%.1f–%.1f] | %s | %s | %s | %s | %s | %s | %s | %s | %s%s%s |\n",
                    w, r->device, r->gemm, r->n_train, subset ? "*" : "", r->warmup, r->timed,
                    r->st.median, r->st.min, r->st.max, eval, gbs, gfl, flo, pct, vn, vt, acc,
                    r->failed ? "**" : "", r->check, r->failed ? "**" : "");
        }
    }
    bool any_note = false;
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        if (!r->note[0] && !r->clblast_unused && !r->over_floor) continue;
        if (!any_note) fprintf(f, "\n");
        any_note = true;
        fprintf(f, "- wl %d, %s, %s: %s%s%s\n", r->workload, r->device, r->gemm, r->note,
                r->note[0] && r->clblast_unused ? "; " : "",
                r->clblast_unused ? "a profiled epoch with --gemm clblast showed no CLBlast call: "
                                    "this row times the same kernels as builtin" : "");
        if (r->over_floor)
            fprintf(f, "- wl %d, %s, %s: (!) faster than the floor: a probe under-measured this "
                       "machine (noise), or the floor model misses something this row does\n",
                    r->workload, r->device, r->gemm);
    }

    if (b->startup.ran || b->nbuilds) {
        fprintf(f, "\n**Start-up** (separate from the steady epochs):\n\n| what | seconds |\n|---|---|\n");
        const startup_entry *s = &b->startup;
        if (s->ran) {
            fprintf(f, "| `%s`, empty XDG_CACHE_HOME (cold: no kernel binaries cached)%s | %.2f (its epoch: %.2f) |\n",
                    s->command, s->cold_rc ? " **FAILED**" : "", s->cold_s, s->cold_train_s);
            fprintf(f, "| same, cache filled by the cold run (warm), best of 2%s | %.2f (its epoch: %.2f) |\n",
                    s->warm_rc ? " **FAILED**" : "", fmin(s->warm_s[0], s->warm_s[1]), s->warm_train_s);
        }
        for (int i = 0; i < b->nbuilds; i++) {
            const build_entry *e = &b->builds[i];
            const char *g = e->gemm == GEMM_CLBLAST ? "clblast" : "builtin";
            fprintf(f, "| cl%d %s: backend_cl_create | %.3f |\n", e->cl_index, g, e->open_s);
            fprintf(f, "| cl%d %s: kernel builds, in process (first trainer_create+epoch %.3f − second %.3f) | %.3f |\n",
                    e->cl_index, g, e->first_s, e->second_s, e->first_s - e->second_s);
            fprintf(f, "| cl%d %s: loading the cached binaries (new back-end %.3f − second %.3f) | %.3f |\n",
                    e->cl_index, g, e->cached_s, e->second_s, e->cached_s - e->second_s);
        }
    }
    fprintf(f, "\nChecks failed: %d.\n<!-- cltrain-bench: paste to here -->\n", b->failures);
}

static void write_json(const bench *b, const char *path)
{
    char tmp[1500];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) die(EXIT_RUNTIME, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "{\n  \"schema\": \"cltrain-bench/1\",\n  \"command\": ");
    json_put_string(f, b->cmdline);
    fprintf(f, ",\n  \"host\": "); json_put_string(f, b->host);
    fprintf(f, ",\n  \"date\": "); json_put_string(f, b->date);
    fprintf(f, ",\n  \"git_commit\": "); json_put_string(f, b->commit);
    fprintf(f, ",\n  \"git_dirty\": %s", b->dirty ? "true" : "false");
    fprintf(f, ",\n  \"cpu\": "); json_put_string(f, b->cpu);
    fprintf(f, ",\n  \"cores\": %d,\n  \"options\": {\"epochs\": %d, \"warmup\": %d, \"budget_s\": ",
            b->cores, b->opt.epochs, b->opt.warmup);
    json_put_number(f, b->opt.budget);
    fprintf(f, ", \"train_images\": %zu, \"quick\": %s},\n", b->data.train.n, b->opt.quick ? "true" : "false");
    const char *envs[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CLTRAIN_KERNEL_DIR", "POCL_DEVICES",
                          "POCL_MAX_PTHREAD_COUNT", "OCL_ICD_FILENAMES"};
    fprintf(f, "  \"environment\": {");
    int ne = 0;
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        const char *v = getenv(envs[i]);
        if (!v) continue;
        fprintf(f, "%s\"%s\": ", ne++ ? ", " : "", envs[i]);
        json_put_string(f, v);
    }
    fprintf(f, "},\n  \"devices\": [");
    for (int i = 0; i < b->ndev; i++) {
        const clrt_device_desc *d = &b->devs[i];
        fprintf(f, "%s\n    {\"index\": %d, \"selected\": %s, \"name\": ", i ? "," : "", d->index,
                b->want_cl[i] ? "true" : "false");
        json_put_string(f, d->name);
        fprintf(f, ", \"platform\": "); json_put_string(f, d->platform);
        fprintf(f, ", \"type\": "); json_put_string(f, d->type);
        fprintf(f, ", \"driver\": "); json_put_string(f, d->driver);
        fprintf(f, ", \"opencl_c\": "); json_put_string(f, d->opencl_c);
        fprintf(f, ", \"compute_units\": %u, \"clock_mhz\": %u, \"clblast_usable\": %s}", d->compute_units,
                d->clock_mhz, b->clblast_ok[i] ? "true" : "false");
    }
    fprintf(f, "\n  ],\n  \"floor\": [");
    for (int i = 0; i < b->nfloors; i++) {
        const floor_entry *e = &b->floors[i];
        fprintf(f, "%s\n    {\"device\": ", i ? "," : "");
        json_put_string(f, e->name);
        fprintf(f, ", \"read_gbs\": "); json_put_number(f, e->read_gbs);
        fprintf(f, ", \"read_gbs_median\": "); json_put_number(f, e->read_median);
        fprintf(f, ", \"read_checksum_ok\": %s, \"read_probe\": ", e->ok ? "true" : "false");
        json_put_string(f, e->read_how);
        fprintf(f, ", \"peak_gflops\": "); json_put_number(f, e->peak);
        fprintf(f, ", \"peak_probe\": "); json_put_string(f, e->peak_how);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"rows\": [");
    static const char *kinds[] = {"host", "opencl", "numpy", "torch"};
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        fprintf(f, "%s\n    {\"kind\": \"%s\", \"workload\": %d, \"workload_name\": ", i ? "," : "",
                kinds[r->kind], r->workload);
        json_put_string(f, workloads[r->workload - 1].name);
        fprintf(f, ", \"device\": "); json_put_string(f, r->device);
        fprintf(f, ", \"opencl_index\": %d, \"gemm\": ", r->cl_index);
        json_put_string(f, r->gemm);
        fprintf(f, ", \"ran\": %s, \"train_images\": %zu, \"warmup\": %d, \"timed\": %d, \"timed_ms\": [",
                r->ran ? "true" : "false", r->n_train, r->warmup, r->timed);
        for (int k = 0; k < r->timed && r->ran; k++) {
            if (k) fputs(", ", f);
            json_put_number(f, r->ms[k]);
        }
        fprintf(f, "]");
        struct { const char *k; double v; } nums[] = {
            {"median_ms", r->st.median}, {"min_ms", r->st.min}, {"max_ms", r->st.max},
            {"estimate_ms", r->estimate_ms}, {"eval_ms", r->eval_ms}, {"gbs", r->gbs},
            {"gflops_dense", r->gflops}, {"floor_gflop", r->floor_gflop}, {"floor_ms", r->floor_ms},
            {"pct_of_floor", r->pct_floor},
            {"speedup_vs_numpy", r->vs_numpy}, {"speedup_vs_torch", r->vs_torch},
            {"test_acc", r->test_acc}, {"train_acc", r->train_acc}, {"train_loss", r->loss},
        };
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
            fprintf(f, ", \"%s\": ", nums[k].k);
            json_put_number(f, r->ran ? nums[k].v : NAN);
        }
        fprintf(f, ", \"check\": "); json_put_string(f, r->check);
        fprintf(f, ", \"check_failed\": %s, \"clblast_not_called\": %s, \"note\": ", r->failed ? "true" : "false",
                r->clblast_unused ? "true" : "false");
        json_put_string(f, r->note);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"kernel_build\": [");
    for (int i = 0; i < b->nbuilds; i++) {
        const build_entry *e = &b->builds[i];
        fprintf(f, "%s\n    {\"opencl_index\": %d, \"gemm\": \"%s\", \"open_s\": ", i ? "," : "",
                e->cl_index, e->gemm == GEMM_CLBLAST ? "clblast" : "builtin");
        json_put_number(f, e->open_s);
        fprintf(f, ", \"first_create_epoch_s\": "); json_put_number(f, e->first_s);
        fprintf(f, ", \"second_create_epoch_s\": "); json_put_number(f, e->second_s);
        fprintf(f, ", \"cached_create_epoch_s\": "); json_put_number(f, e->cached_s);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"startup\": ");
    const startup_entry *s = &b->startup;
    if (s->ran) {
        fprintf(f, "{\"command\": ");
        json_put_string(f, s->command);
        fprintf(f, ", \"cold_s\": "); json_put_number(f, s->cold_s);
        fprintf(f, ", \"warm_s\": ["); json_put_number(f, s->warm_s[0]); fputs(", ", f);
        json_put_number(f, s->warm_s[1]);
        fprintf(f, "], \"cold_epoch_s\": "); json_put_number(f, s->cold_train_s);
        fprintf(f, ", \"warm_epoch_s\": "); json_put_number(f, s->warm_train_s);
        fprintf(f, ", \"cold_exit\": %d, \"warm_exit\": %d}", s->cold_rc, s->warm_rc);
    } else {
        fputs("null", f);
    }
    fprintf(f, ",\n  \"peer_output\": [");
    for (int i = 0; i < b->npeer_lines; i++) fprintf(f, "%s\n    %s", i ? "," : "", b->peer_lines[i]);
    fprintf(f, "\n  ],\n  \"checks_failed\": %d\n}\n", b->failures);
    if (fclose(f) != 0 || rename(tmp, path) != 0) die(EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
}

/* ---- the run's description --------------------------------------------------------------------- */

static void describe_run(bench *b, int argc, char **argv)
{
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof b->cmdline; i++)
        len += (size_t)snprintf(b->cmdline + len, sizeof b->cmdline - len, "%s%s", i ? " " : "", argv[i]);
    if (gethostname(b->host, sizeof b->host) != 0) snprintf(b->host, sizeof b->host, "unknown");
    b->host[sizeof b->host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(b->date, sizeof b->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *rev[] = {"git", "rev-parse", "HEAD", NULL};
    if (!proc_line(rev, b->commit, sizeof b->commit)) snprintf(b->commit, sizeof b->commit, "unknown");
    char *st[] = {"git", "status", "--porcelain", "--untracked-files=no", NULL};
    char *out = NULL;
    if (proc_run(st, NULL, 0, &out, NULL, true) == 0 && out && *out) b->dirty = true;
    free(out);
    snprintf(b->cpu, sizeof b->cpu, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c += 2;
                    c[strcspn(c, "\n")] = '\0';
                    snprintf(b->cpu, sizeof b->cpu, "%s", c);
                }
                break;
            }
        fclose(f);
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    b->cores = c > 0 ? (int)c : 1;
}

/* The folder of the Python peers: ./bench when the run starts at the repository root, else beside
 * the program (build/../bench). */
static const char *find_bench_dir(const char *argv0)
{
    if (access("bench/numpy_ref.py", R_OK) == 0) return "bench";
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", argv0);
    char *slash = strrchr(dir, '/');
    if (slash) {
        snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../bench");
        return dir;
    }
    return "bench";
}

static const char *find_cltrain(const char *argv0)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s", argv0);
    char *slash = strrchr(path, '/');
    if (slash) snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "cltrain");
    else snprintf(path, sizeof path, "cltrain");
    return path;
}

static void add_floor(bench *b, const char *name, const floor_probe *fp)
{
    floor_entry *fe = &b->floors[b->nfloors++];
    snprintf(fe->name, sizeof fe->name, "%s", name);
    fe->read_gbs = fp->read_gbs;
    fe->read_median = fp->read_gbs_median;
    fe->peak = fp->peak_gflops;
    fe->ok = fp->checksum_ok;
    snprintf(fe->read_how, sizeof fe->read_how, "%s", fp->read_method);
    snprintf(fe->peak_how, sizeof fe->peak_how, "%s", fp->peak_method);
    if (!fp->checksum_ok) b->failures++;
}

/* Floors of the host and of each selected device; CLBlast's usability on each. */
static void probe_all(bench *b)
{
    size_t bytes = b->data.train.n * (size_t)b->inputs;
    floor_probe fp;
    char name[200];
    fprintf(stderr, "bench: probing the host\n");
    probe_host(b->data.train.pixels, bytes, &fp);
    snprintf(name, sizeof name, "host CPU (%s)", b->cpu);
    add_floor(b, name, &fp);
    for (int d = 0; d < b->ndev; d++) {
        if (!b->want_cl[d]) continue;
        fprintf(stderr, "bench: probing cl%d (%s)\n", d, b->devs[d].name);
        probe_device(d, b->data.train.pixels, bytes, &fp);
        b->slot_of[d] = b->nfloors;
        snprintf(name, sizeof name, "cl%d %s", d, b->devs[d].name);
        add_floor(b, name, &fp);
    }
}

int main(int argc, char **argv)
{
    bench *b = xcalloc(1, sizeof *b, "the benchmark");
    b->rows = xcalloc(MAX_ROWS, sizeof *b->rows, "benchmark rows");
    bench_opts *o = &b->opt;
    parse_options(argc, argv, o);
    if (!o->cltrain) o->cltrain = find_cltrain(argv[0]);
    o->bench_dir = find_bench_dir(argv[0]);
    describe_run(b, argc, argv);

    /* Every kernel cache this process touches (cltrain's binaries, the OpenCL driver's own, such
     * as PoCL's kcache) starts empty, so the in-process build figures are real compilations and
     * no stale binary from another checkout is timed. */
    make_temp_dir("run", b->tmp, sizeof b->tmp);
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", b->tmp);
    if (mkdir(cache, 0700) != 0) die(EXIT_RUNTIME, "cannot make %s: %s", cache, strerror(errno));
    setenv("XDG_CACHE_HOME", cache, 1);

    char err[DATASET_ERR_LEN];
    if (dataset_load(o->data, 1000, &b->data, err, sizeof err) != 0)
        die(EXIT_USAGE, "%s (make data fetches MNIST)", err);
    if (o->train_limit > 0 && (size_t)o->train_limit > b->data.train.n)
        die(EXIT_USAGE, "--train-limit %ld is more than the %zu training images", o->train_limit, b->data.train.n);
    b->inputs = b->data.train.rows * b->data.train.cols;
    b->classes = b->data.train.classes;
    b->nnz_prefix = xmalloc((b->data.train.n + 1) * sizeof *b->nnz_prefix, "pixel counts");
    b->nnz_prefix[0] = 0;
    for (size_t i = 0; i < b->data.train.n; i++) {
        const uint8_t *px = b->data.train.pixels + i * (size_t)b->inputs;
        size_t c = 0;
        for (int j = 0; j < b->inputs; j++) c += px[j] != 0;
        b->nnz_prefix[i + 1] = b->nnz_prefix[i] + c;
    }

    b->ndev = clrt_list_devices(&b->devs);
    if (b->ndev > MAX_DEVICES) b->ndev = MAX_DEVICES;
    b->want_host = parse_devices(o->devices, b->ndev, b->want_cl);

    /* The floor of each device, on all the training images (a subset would fit in a cache and
     * measure the cache). */
    probe_all(b);
    if (o->probe_only) {
        for (int i = 0; i < b->nfloors; i++)
            printf("%s: read %.1f GB/s (median %.1f; %s), peak %.1f GFLOP/s (%s)\n", b->floors[i].name,
                   b->floors[i].read_gbs, b->floors[i].read_median, b->floors[i].read_how,
                   b->floors[i].peak, b->floors[i].peak_how);
        remove_tree(b->tmp);
        return b->failures ? EXIT_RUNTIME : EXIT_OK;
    }
    if (o->train_limit > 0) dataset_truncate(&b->data.train, (size_t)o->train_limit);
    fprintf(stderr, "bench: %zu training images, %d OpenCL device(s), %d+%d epochs per row, budget %.0f s\n",
            b->data.train.n, b->ndev, o->warmup, o->epochs, o->budget);

    if (o->startup) measure_startup(b);

    /* The back-ends, created once and kept for every workload; the first of each OpenCL one
     * measures the kernel builds. */
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
        const workload *wl = &workloads[w - 1];
        int first = b->nrows;
        backend *row_be[MAX_ROWS] = {NULL};
        bool *row_eval[MAX_ROWS] = {NULL};
        if (host) {
            row *r = new_row(b, ROW_HOST, w, 0);
            snprintf(r->device, sizeof r->device, "host");
            snprintf(r->gemm, sizeof r->gemm, "plain C");
            row_be[b->nrows - 1] = host;
            row_eval[b->nrows - 1] = &host_eval;
        }
        for (int d = 0; d < b->ndev; d++) {
            if (!b->want_cl[d]) continue;
            for (int g = 0; g < 2; g++) {
                if (!o->gemm[g]) continue;
                row *r = new_row(b, ROW_OPENCL, w, b->slot_of[d]);
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

    if (o->peers) run_peers(b);
    derive(b);

    print_markdown(b, stdout);
    char path[1400];
    if (o->json_path) {
        snprintf(path, sizeof path, "%s", o->json_path);
    } else {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/results", o->bench_dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) die(EXIT_RUNTIME, "cannot make %s: %s", dir, strerror(errno));
        char stamp[32];
        snprintf(stamp, sizeof stamp, "%s", b->date);
        for (char *p = stamp; *p; p++)
            if (*p == ':') *p = '-';
        snprintf(path, sizeof path, "%s/%s-%s.json", dir, b->host, stamp);
    }
    write_json(b, path);
    fprintf(stderr, "bench: results in %s; %d check(s) failed\n", path, b->failures);

    remove_tree(b->tmp);
    dataset_pair_free(&b->data);
    free(b->devs);
    free(b->rows);
    free(b->nnz_prefix);
    int rc = b->failures ? EXIT_RUNTIME : EXIT_OK;
    free(b);
    return rc;
}
