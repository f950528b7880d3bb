/* test_fused_step.c: the fused mini-batch step (kernels/fused_step.cl, chosen by the step plan
 * of cl_layers.c) against the host back-end's per-layer step on awkward networks: batches
 * whose rows are not a multiple of the block, a last partial batch, widths that are not
 * multiples of 16, one to three hidden layers, every optimizer, relu and sigmoid, dropout and
 * --augment (the trained weights and, more finely, the updates they made), each also on images
 * with blank borders, whose first layer the CPU row reads from their sparse copy (counted:
 * every step, or none where the plan or the images say dense), and on 27 x 27 images;
 * that it really runs (two launches a step, three with --augment); that its runs
 * are deterministic and a resumed run through the binary is bit-identical to an uninterrupted
 * one; and that the plan keeps the per-layer path where the fused step cannot apply.
 *
 * CLTRAIN_TEST_QUICK=1 (make test-oclgrind: a GPU-like device, work-groups of 64 items with
 * barriers between the layers) runs one network on fewer rows, again under --kernels cpu on
 * blank-bordered images (the sparse first layer), and the plan. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_testing.h"
#include "checkpoint.h"
#include "cl_layers.h"
#include "model.h"
#include "support.h"
#include "trainer.h"
#include "util.h"

/* 100 images in batches of 30: three whole batches and a last one of 10. On a 2-unit CPU a
 * batch is two blocks of 16 rows, the second 14 long: never a multiple of the block (a GPU's
 * blocks are 4 rows: 7 and a half). Quick (Oclgrind): 38 images in batches of 15, one epoch,
 * three steps, the last of 8 rows. */
typedef struct {
    size_t train, test;
    long batch, epochs;
} run_size;

static run_size sizes(void)
{
    run_size s = {100, 40, 30, 2};
    if (test_quick()) s = (run_size){38, 10, 15, 1};
    return s;
}

typedef struct {
    int hidden[3], n_hidden;
    activation act;
    optimizer_kind opt;
    float dropout, weight_decay;
    bool augment;
} net_case;

static const net_case cases[] = {
    {{37, 13}, 2, ACT_RELU, OPT_SGD, 0.0f, 0.0f, false},          /* VW 1: no width % 16 */
    {{37}, 1, ACT_SIGMOID, OPT_MOMENTUM, 0.0f, 0.01f, false},
    {{32}, 1, ACT_RELU, OPT_NESTEROV, 0.0f, 0.0f, false},         /* VW 16 */
    {{20, 24, 12}, 3, ACT_RELU, OPT_ADAM, 0.0f, 0.01f, false},    /* VW 4, three hidden layers */
    {{40}, 1, ACT_RELU, OPT_ADAMW, 0.0f, 0.1f, false},
    {{37, 13}, 2, ACT_RELU, OPT_SGD, 0.3f, 0.0f, false},          /* dropout */
    {{24}, 1, ACT_SIGMOID, OPT_ADAM, 0.2f, 0.0f, false},          /* dropout, sigmoid */
    {{32}, 1, ACT_RELU, OPT_MOMENTUM, 0.0f, 0.0f, true},          /* --augment */
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static backend *family_backend(step_choice step, kernel_family family)
{
    const char *d = getenv("CLTRAIN_TEST_DEVICE");
    backend_cl_options o = {.gemm = GEMM_BUILTIN, .kernels = family, .step = step};
    return backend_cl_create(d && *d ? atoi(d) : 0, &o);
}

static backend *fused_backend(step_choice step) { return family_backend(step, KERNELS_AUTO); }

/* Case c's training on images of side x side pixels. */
static train_config case_config(const net_case *c, model_arch *a, int side)
{
    ck_assert_int_eq(model_arch_init(a, side * side, c->hidden, c->n_hidden, 10, c->act), 0);
    train_config cfg = {0};
    cfg.arch = *a;
    cfg.batch = sizes().batch;
    cfg.seed = 7;
    cfg.optimizer = c->opt;
    cfg.lr = c->opt == OPT_ADAM || c->opt == OPT_ADAMW ? 0.003f : 0.05f;
    cfg.momentum = 0.9f;
    cfg.beta1 = 0.9f;
    cfg.beta2 = 0.999f;
    cfg.eps = 1e-8f;
    cfg.weight_decay = c->weight_decay;
    cfg.schedule = SCHED_CONSTANT;
    cfg.total_epochs = sizes().epochs;
    cfg.dropout = c->dropout;
    if (c->augment) {
        char err[256];
        ck_assert_msg(augment_parse("shift=2,rotate=10", &cfg.augment, err, sizeof err) == 0, "%s", err);
    }
    return cfg;
}

typedef struct {
    float *params;
    epoch_metrics last;
    double launches_per_step;
    int64_t steps;
    uint64_t sparse_steps;   /* of them, with the first layer from the sparse copy */
    char plans[2048];
} run_result;

/* Blank rows and columns 6 pixels wide around the middle, as MNIST's borders are (28 x 28: a
 * quarter of the pixels nonzero), so that the device keeps a sparse copy (half of them are
 * otherwise). */
static void blank_borders(dataset *d)
{
    for (size_t i = 0; i < d->n; i++)
        for (int y = 0; y < d->rows; y++)
            for (int x = 0; x < d->cols; x++)
                if (y < 6 || y >= d->rows - 6 || x < 6 || x >= d->cols - 6)
                    d->pixels[(i * (size_t)d->rows + (size_t)y) * (size_t)d->cols + (size_t)x] = 0;
}

/* EPOCHS epochs of case c on be, from He-initialised weights, on images of side x side
 * pixels with MNIST-like blank borders or not. */
static run_result run_case_on(backend *be, const net_case *c, bool borders, int side)
{
    model_arch a;
    train_config cfg = case_config(c, &a, side);
    dataset tr, te;
    run_size z = sizes();
    synthetic_dataset(&tr, z.train, side, 11);
    synthetic_dataset(&te, z.test, side, 12);
    if (borders) {
        blank_borders(&tr);
        blank_borders(&te);
    }
    run_result r = {0};
    r.params = xmalloc(a.n_params * sizeof(float), "parameters");
    model_init_params(&a, INIT_HE, 3, r.params);
    trainer *t = trainer_create(be, &cfg, &tr, &te, NULL, r.params);
    for (long e = 1; e <= z.epochs; e++) trainer_epoch(t, e, &r.last);
    trainer_read_params(t, r.params);
    r.launches_per_step = trainer_launches_per_step(t);
    r.steps = trainer_step_count(t);
    r.sparse_steps = backend_cl_sparse_steps(be);
    FILE *f = fmemopen(r.plans, sizeof r.plans - 1, "w");
    ck_assert(f != NULL);
    trainer_print_plans(t, f);
    fclose(f);
    trainer_destroy(t);
    dataset_free(&tr);
    dataset_free(&te);
    return r;
}

static run_result run_case(backend *be, const net_case *c) { return run_case_on(be, c, false, 28); }

/* Tolerance: the device sums in float32 in its own order, the host in float64, so each
 * step's gradients agree to ~1e-6 relative (test_layers); 8 steps compound that, and Adam
 * divides by sqrt(v), which amplifies the relative error of gradients near zero, as in
 * test_optim's trainer comparison (5e-5 there for 24 steps). Measured on PoCL: 4e-8 to 1.2e-7
 * for sgd, momentum and nesterov, 3.2e-7 for AdamW; 0 against the device's per-layer step
 * (the same sums in the same order). A wrong gradient, mask, update or row errs by 6e-3 and
 * more (a dropped row, a mask of the wrong layer, a missing gradient: tests/MUTATIONS.md). */
#define FUSED_TOL 5e-5

/* The same runs' updates (trained weights minus the initial ones) against the reference's:
 * float32 sums against float64 over 8 steps, each update a few thousandths of the weights, so
 * the weights' rounding (~6e-9) is a few 1e-6 of an update. Measured on PoCL: 0 to 1.0e-5
 * over the 16 cases, the most for AdamW (1 / sqrt(v) amplifies small gradients' errors); a
 * first-layer gradient 0.2 % off (1/255.5 for the pixels' 1/255) errs by 1.3e-3 and more
 * where the weights' tolerance lets it through (tests/MUTATIONS.md). */
#define UPDATE_TOL 1e-3

static double update_err(const model_arch *a, const float *got, const float *want)
{
    float *init = xmalloc(a->n_params * sizeof(float), "parameters");
    float *dg = xmalloc(a->n_params * sizeof(float), "updates");
    float *dw = xmalloc(a->n_params * sizeof(float), "updates");
    model_init_params(a, INIT_HE, 3, init);
    for (size_t i = 0; i < a->n_params; i++) {
        dg[i] = got[i] - init[i];
        dw[i] = want[i] - init[i];
    }
    double e = rel_err(dg, dw, a->n_params);
    free(init);
    free(dg);
    free(dw);
    return e;
}

/* Case _i % N_CASES; from N_CASES on, on images with blank borders, whose first layer the CPU
 * row's fused step reads from their sparse copy (SPARSE0: the nonzero pixels, a transposed
 * copy of W1 rewritten by every step); from 2 * N_CASES on, those of 27 x 27 pixels, whose
 * last update tile ends in a block of 9 pixels (729 = 45 x 16 + 9; VW 1); quick (Oclgrind),
 * under --kernels cpu, whose plans are the CPU row's. */
static void fused_matches_host(int i, kernel_family family)
{
    const net_case *c = &cases[i % N_CASES];
    bool borders = i >= N_CASES;
    int side = i >= 2 * N_CASES ? 27 : 28;
    model_arch a;
    (void)case_config(c, &a, side);
    /* With --augment the reference is the device's per-layer step: the device's distortions
     * round their interpolation apart from the host's (a pixel one level off here and there,
     * 5e-5 on the weights after 8 steps), which is the augment kernel's business, not this
     * path's. */
    backend *host = c->augment ? fused_backend(STEP_LAYERS) : backend_host_create();
    run_result want = run_case_on(host, c, borders, side);
    backend_destroy(host);
    backend *dev = family_backend(STEP_FUSED, family);
    run_result got = run_case_on(dev, c, borders, side);
    backend_destroy(dev);

    ck_assert_msg(strstr(got.plans, "step: fused step") != NULL, "the fused step was not planned:\n%s", got.plans);
    /* Sparse where the plan says so and the images are blank enough to have a sparse copy
     * (augmented batches are written by a kernel: none). */
    bool planned_sparse = strstr(got.plans, "with sparse images") != NULL;
    uint64_t want_sparse = borders && planned_sparse && !c->augment ? (uint64_t)got.steps : 0;
    ck_assert_msg(got.sparse_steps == want_sparse, "%llu of %lld steps read the sparse copy, want %llu:\n%s",
                  (unsigned long long)got.sparse_steps, (long long)got.steps,
                  (unsigned long long)want_sparse, got.plans);
    if (family == KERNELS_CPU) ck_assert_msg(want_sparse > 0, "no sparse step under --kernels cpu");
    double launches = c->augment ? 3.0 : 2.0;
    ck_assert_msg(got.launches_per_step == launches, "%.3f launches per step, want %.0f",
                  got.launches_per_step, launches);
    double err = rel_err(got.params, want.params, a.n_params);
    ck_assert_msg(err < FUSED_TOL, "case %d: weights differ from the reference's by %g (tolerance %g)", i,
                  err, FUSED_TOL);
    /* What training changed, against the reference's change (the weights alone hide an
     * error of a fraction of a percent in 8 small updates). */
    double derr = update_err(&a, got.params, want.params);
    ck_assert_msg(derr < UPDATE_TOL, "case %d: the updates differ from the reference's by %g (tolerance %g)",
                  i, derr, UPDATE_TOL);
    /* The per-row statistics come from the fused kernel: the same sums to rounding (float32
     * against float64 over 100 rows), the same count of correct rows but for a near tie. */
    ck_assert_msg(fabs(got.last.loss - want.last.loss) <= 1e-4 * fabs(want.last.loss),
                  "training loss %.6f, host %.6f", got.last.loss, want.last.loss);
    ck_assert_msg(fabs(got.last.mse - want.last.mse) <= 1e-4 * fabs(want.last.mse),
                  "training MSE %.6f, host %.6f", got.last.mse, want.last.mse);
    ck_assert_msg(fabs(got.last.train_acc - want.last.train_acc) <= 1.0 / (double)sizes().train + 1e-9,
                  "training accuracy %.4f, host %.4f", got.last.train_acc, want.last.train_acc);
    free(want.params);
    free(got.params);
}

START_TEST(test_fused_matches_host) { fused_matches_host(_i, KERNELS_AUTO); }
END_TEST

START_TEST(test_fused_cpu_kernels_match_host) { fused_matches_host(_i, KERNELS_CPU); }
END_TEST

/* No atomics, sums in row order: two runs give the same bits, and the per-layer path on the
 * same device the same result to rounding (its sums run in another order). */
START_TEST(test_fused_deterministic)
{
    const net_case *c = &cases[5];
    model_arch a;
    (void)case_config(c, &a, 28);
    backend *b1 = fused_backend(STEP_FUSED);
    run_result r1 = run_case(b1, c);
    backend_destroy(b1);
    backend *b2 = fused_backend(STEP_FUSED);
    run_result r2 = run_case(b2, c);
    backend_destroy(b2);
    ck_assert_msg(memcmp(r1.params, r2.params, a.n_params * sizeof(float)) == 0,
                  "two fused runs differ");
    backend *b3 = fused_backend(STEP_LAYERS);
    run_result r3 = run_case(b3, c);
    backend_destroy(b3);
    ck_assert_msg(strstr(r3.plans, "step: per-layer path: --step layers") != NULL, "%s", r3.plans);
    ck_assert_msg(r3.launches_per_step > 2.0, "the per-layer path took %.2f launches a step",
                  r3.launches_per_step);
    double err = rel_err(r1.params, r3.params, a.n_params);
    ck_assert_msg(err < FUSED_TOL, "fused and per-layer steps differ by %g", err);
    free(r1.params);
    free(r2.params);
    free(r3.params);
}
END_TEST

/* The plan in plain C: where the fused step cannot apply it says why, and --step overrides
 * the choice only where the kernels can run. */
START_TEST(test_step_plan_fallbacks)
{
    int fits[] = {784, 128, 10}, wide[] = {784, 1025, 10}, awkward[] = {784, 37, 13, 10};
    cl_device_traits cpu = {.cpu = true, .max_wg = 4096, .local_mem = 1 << 20, .compute_units = 2,
                            .gemm = GEMM_BUILTIN, .family = KERNELS_AUTO, .step = STEP_FUSED};
    step_shape s = {.n_layers = 2, .sizes = fits, .act = ACT_RELU, .optimizer = OPT_SGD,
                    .rows = 64, .ranks = 1};
    step_plan p;
    cl_step_plan_choose(&cpu, &s, &p);
    ck_assert(p.fused);
    ck_assert_int_eq(p.vw, 16);
    ck_assert_int_eq(p.block_rows, 32);   /* one block per compute unit */
    ck_assert_int_eq(p.tiles, cl_step_layer_tiles(&p, 784, 128) + cl_step_layer_tiles(&p, 128, 10));
    ck_assert_int_eq(cl_step_layer_tiles(&p, 784, 128), 128 / 8 * 25);   /* 49 vectors in pairs */

    step_shape aw = s;
    aw.n_layers = 3;
    aw.sizes = awkward;
    aw.rows = 30;
    cl_step_plan_choose(&cpu, &aw, &p);
    ck_assert(p.fused);
    ck_assert_int_eq(p.vw, 1);
    ck_assert_int_eq(p.block_rows, 16);

    struct { const char *why; step_shape s; cl_device_traits d; } no[] = {
        {"full batch", s, cpu},
        {"mpirun", s, cpu},
        {"a width above 1024", s, cpu},
        {"--gemm clblast", s, cpu},
        {"--step layers", s, cpu},
        {"--kernels forces", s, cpu},
    };
    no[0].s.rows = 0;
    no[1].s.ranks = 2;
    no[2].s.sizes = wide;
    no[3].d.gemm = GEMM_CLBLAST;
    no[4].d.step = STEP_LAYERS;
    no[5].d.step = STEP_AUTO;
    no[5].d.family = KERNELS_CPU;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        cl_step_plan_choose(&no[i].d, &no[i].s, &p);
        ck_assert_msg(!p.fused, "case %zu: fused", i);
        char line[512];
        cl_step_plan_describe(&p, line, sizeof line);
        ck_assert_msg(strstr(line, "per-layer path: ") && strstr(line, no[i].why), "case %zu: %s", i, line);
    }
    /* auto: the fused step on a CPU whatever the images' ink (blank-heavy MNIST too: measured
     * faster on PoCL than the per-layer path's sparse first layer), with and without --augment. */
    cl_device_traits autod = cpu;
    autod.step = STEP_AUTO;
    step_shape mnist = s;
    cl_step_plan_choose(&autod, &mnist, &p);
    ck_assert(p.fused);
    mnist.augment = true;
    cl_step_plan_choose(&autod, &mnist, &p);
    ck_assert(p.fused);
    mnist.augment = false;
    cl_step_plan_choose(&autod, &mnist, &p);
    ck_assert(p.fused);
    /* Large batches go to the per-layer gemms; the limit itself stays fused. */
    mnist.rows = CL_STEP_MAX_BATCH;
    cl_step_plan_choose(&autod, &mnist, &p);
    ck_assert(p.fused);
    mnist.rows = CL_STEP_MAX_BATCH + 1;
    cl_step_plan_choose(&autod, &mnist, &p);
    ck_assert(!p.fused);
    char why[512];
    cl_step_plan_describe(&p, why, sizeof why);
    ck_assert_msg(strstr(why, "per-layer path: a batch above 1024 rows") != NULL, "%s", why);
    mnist.rows = 64;
    cl_device_traits gpu = autod;
    gpu.cpu = false;
    cl_step_plan_choose(&gpu, &mnist, &p);
    ck_assert(p.fused);
    ck_assert_int_eq(p.block_rows, 4);
    ck_assert_int_eq(p.wg, 64);

    /* --step fused runs the fused kernels also under a forced layer family. */
    cl_device_traits forced = cpu;
    forced.family = KERNELS_GPU;
    cl_step_plan_choose(&forced, &s, &p);
    ck_assert(p.fused);
}
END_TEST

/* The host has no fused step: it says so, and trains with its per-layer calls. */
START_TEST(test_host_keeps_per_layer_step)
{
    backend *host = backend_host_create();
    run_result r = run_case(host, &cases[0]);
    backend_destroy(host);
    ck_assert_msg(strstr(r.plans, "step: per-layer operations (host back-end)") != NULL, "%s", r.plans);
    ck_assert(r.launches_per_step == 0.0);
    free(r.params);
}
END_TEST

/* ---- through the binary ----------------------------------------------------------------- */

#define BIN_RECIPE "--train-limit 300 --test-limit 100 --hidden 37,13 --batch 30 --init he " \
                   "--dropout 0.2 --step fused --quiet"

static float *model_params(const char *name, size_t *n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", bin_dir(), name);
    return test_model_params(p, n);
}

/* Adam's state (updated in params' layout) or momentum's velocity (kept beside the transposed
 * weights, fused_step.cl's W0_IN_WT), the shuffle and the dropout masks all continue: a run
 * stopped after epoch 2 and resumed to epoch 4 ends with the uninterrupted run's bits. */
static const char *const resume_optimizers[] = {"--optimizer adam --lr 0.003",
                                                "--optimizer momentum --lr 0.05"};

START_TEST(test_binary_resume_bit_identical)
{
    const char *opt = resume_optimizers[_i];
    char args[1024];
    snprintf(args, sizeof args, "--data %s " BIN_RECIPE " %s --epochs 4 --save full.model", mnist_dir(), opt);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    snprintf(args, sizeof args, "--data %s " BIN_RECIPE " %s --epochs 2 --checkpoint run.ckpt", mnist_dir(), opt);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    snprintf(args, sizeof args, "--data %s " BIN_RECIPE " %s --epochs 4 --resume run.ckpt --save resumed.model",
             mnist_dir(), opt);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    size_t n1, n2;
    float *a = model_params("full.model", &n1), *b = model_params("resumed.model", &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, n1 * sizeof(float)) == 0, "%s: the resumed run differs from the uninterrupted one", opt);
    free(a);
    free(b);
}
END_TEST

/* --profile says which step ran and how many launches a step took. */
START_TEST(test_binary_profile_launches)
{
    char args[1024];
    snprintf(args, sizeof args, "--data %s --train-limit 200 --test-limit 50 --hidden 37 --batch 50 "
             "--epochs 1 --step fused --profile", mnist_dir());
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    ck_assert_msg(strstr(bin_out(), "step: fused step") != NULL, "%s", bin_out());
    ck_assert_msg(strstr(bin_out(), "launches per step: 2.00") != NULL, "%s", bin_out());
    ck_assert_msg(strstr(bin_out(), "step_forward_backward") != NULL, "%s", bin_out());
    snprintf(args, sizeof args, "--data %s --train-limit 200 --test-limit 50 --hidden 37 --batch 50 "
             "--epochs 1 --step layers --profile", mnist_dir());
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    ck_assert_msg(strstr(bin_out(), "step: per-layer path: --step layers") != NULL, "%s", bin_out());
    ck_assert_msg(strstr(bin_out(), "launches per step: 2.00") == NULL, "%s", bin_out());
    ck_assert_msg(bin_run("--step sideways --epochs 0") == 2, "%s", bin_err());
    ck_assert_msg(strstr(bin_err(), "--step") != NULL, "%s", bin_err());
}
END_TEST

Suite *fused_step_suite(void)
{
    Suite *s = suite_create("fused_step");
    TCase *tc = tcase_create("fused_step");
    tcase_set_timeout(tc, 300);
    bool quick = test_quick();
    tcase_add_test(tc, test_step_plan_fallbacks);
    if (quick) {
        tcase_add_loop_test(tc, test_fused_matches_host, 5, 6);   /* VW 1, two hidden layers, dropout */
        /* The same on blank-bordered images with the CPU row's plan: the sparse first layer. */
        tcase_add_loop_test(tc, test_fused_cpu_kernels_match_host, N_CASES + 5, N_CASES + 6);
        /* momentum and weight decay: the velocity kept beside wt (fused_step.cl's W0_IN_WT) */
        tcase_add_loop_test(tc, test_fused_cpu_kernels_match_host, N_CASES + 1, N_CASES + 2);
    } else {
        tcase_add_loop_test(tc, test_fused_matches_host, 0, 3 * N_CASES);
        tcase_add_test(tc, test_fused_deterministic);
        tcase_add_test(tc, test_host_keeps_per_layer_step);
    }
    suite_add_tcase(s, tc);
    if (!quick) {
        TCase *bin = tcase_create("binary");
        tcase_set_timeout(bin, 300);
        bin_fixture(bin);
        tcase_add_loop_test(bin, test_binary_resume_bit_identical, 0,
                            (int)(sizeof resume_optimizers / sizeof resume_optimizers[0]));
        tcase_add_test(bin, test_binary_profile_launches);
        suite_add_tcase(s, bin);
    }
    return s;
}
