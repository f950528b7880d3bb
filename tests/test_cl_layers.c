/* test_cl_layers.c: every family of layer plans (cl_layers.c) trains the seed's network
 * (784-10-10 ReLU, full-batch gradient descent, lr 0.1, uniform init) on the OpenCL device to
 * the host back-end's accuracy and weights; and the binary, on the device against
 * --device host, prints one plan line per layer at start-up and under --profile.
 *
 * CLTRAIN_TEST_QUICK=1 (make test-oclgrind: the suite under a simulated GPU that checks every
 * access, thousands of times slower) trains fewer images for fewer epochs and leaves out
 * CLBlast, whose kernels are not ours. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "model.h"
#include "support.h"
#include "trainer.h"
#include "util.h"

static bool quick(void) { return test_quick(); }

typedef struct {
    size_t train, test;
    long epochs;
} run_size;

/* 6000 images for 60 epochs: past the first epochs' fast changes, where the sums' rounding
 * order (the families differ in it) could not yet be told from a real error. */
static run_size sizes(void)
{
    run_size s = {6000, 1000, 60};
    if (quick()) s = (run_size){200, 100, 3};
    return s;
}

/* Trains the seed's network on be; params and test accuracy out. */
static void train_seed(backend *be, const dataset_pair *p, const run_size *s, float *params,
                       double *test_acc)
{
    model_arch a;
    int hidden[1] = {10};
    ck_assert_int_eq(model_arch_init(&a, 784, hidden, 1, 10, ACT_RELU), 0);
    train_config c = {0};
    c.arch = a;
    c.batch = 0;
    c.seed = 1;
    c.optimizer = OPT_SGD;
    c.lr = 0.1f;
    c.schedule = SCHED_CONSTANT;
    c.total_epochs = s->epochs;
    model_init_params(&a, INIT_UNIFORM, 1, params);
    dataset tr = p->train, te = p->test;
    tr.n = s->train;
    te.n = s->test;
    trainer *t = trainer_create(be, &c, &tr, &te, NULL, params);
    epoch_metrics m;
    for (long e = 1; e <= s->epochs; e++) trainer_epoch(t, e, &m);
    trainer_read_params(t, params);
    *test_acc = m.test_acc;
    trainer_destroy(t);
}

static void check_family(kernel_family fam, gemm_kind gemm)
{
    dataset_pair p;
    mnist_load(&p);
    run_size s = sizes();
    model_arch a;
    int hidden[1] = {10};
    ck_assert_int_eq(model_arch_init(&a, 784, hidden, 1, 10, ACT_RELU), 0);
    float *want = xmalloc(a.n_params * sizeof(float), "host parameters");
    float *got = xmalloc(a.n_params * sizeof(float), "device parameters");
    double want_acc, got_acc;
    backend *host = backend_host_create();
    train_seed(host, &p, &s, want, &want_acc);
    backend_destroy(host);
    backend *dev = test_cl_backend_kernels(gemm, fam);
    train_seed(dev, &p, &s, got, &got_acc);
    backend_destroy(dev);
    /* The device sums in float32 in its own order, the host in float64: each step's products
     * agree to ~1e-6 relative (test_layers), and 60 steps of gradient descent at lr 0.1 on a
     * network this small amplify that to ~1e-4 (measured 2e-5 to 6e-5 over the families);
     * 1e-3 of the largest weight leaves room for that and catches any wrong product, which
     * errs by O(1) within a step. One test image in a thousand may flip on a near tie. */
    double err = rel_err(got, want, a.n_params);
    ck_assert_msg(err < 1e-3, "weights differ from the host's by %g (relative to the largest)", err);
    ck_assert_msg(fabs(got_acc - want_acc) <= 1.0 / (double)s.test + 1e-9,
                  "test accuracy %.4f, host %.4f", got_acc, want_acc);
    ck_assert_msg(quick() || want_acc > 0.4, "the host reached only %.4f", want_acc);   /* chance: 0.1 */
    free(want);
    free(got);
    dataset_pair_free(&p);
}

START_TEST(test_seed_cpu_family) { check_family(KERNELS_CPU, GEMM_BUILTIN); }
END_TEST

START_TEST(test_seed_gpu_family) { check_family(KERNELS_GPU, GEMM_BUILTIN); }
END_TEST

START_TEST(test_seed_clblast)
{
    check_family(KERNELS_AUTO, GEMM_CLBLAST);
}
END_TEST

/* Parameters of a model file written by the binary. */
static float *saved_params(const char *path, size_t *n) { return test_model_params(path, n); }

/* The run (784-7-5-10 sigmoid, Adam, dropout, batches of 37 with a short last one)
 * through the binary on device 0 with its default plans, against --device host. */
START_TEST(test_binary_device_against_host)
{
    char dir[256];
    work_dir_make(dir, sizeof dir, "plans");
    char *out = NULL, *err = NULL, args[2048];
    const char *common = "--train-limit 150 --test-limit 50 --hidden 7,5 --activation sigmoid "
                         "--optimizer adam --lr 0.01 --dropout 0.2 --batch 37 --epochs 2";
    snprintf(args, sizeof args, "--device host --data %s %s --save host.model", mnist_dir(), common);
    int rc = run_cltrain(dir, NULL, args, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    const char *dev = getenv("CLTRAIN_TEST_DEVICE");
    snprintf(args, sizeof args, "--device %s --data %s %s --save dev.model --profile",
             dev && *dev ? dev : "0", mnist_dir(), common);
    rc = run_cltrain(dir, NULL, args, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    /* Under make test-oclgrind the binary runs on the simulator too: its reports (each kernel
     * error names its kernel on a line "\tKernel: ", API errors start "Oclgrind - ") fail. */
    ck_assert_msg(!strstr(err, "\tKernel: ") && !strstr(err, "Oclgrind - "), "Oclgrind reported:\n%s", err);
    /* One plan line per layer at start-up and again in the profile. */
    for (int l = 1; l <= 3; l++) {
        char tag[32];
        snprintf(tag, sizeof tag, "layer %d: ", l);
        const char *first = strstr(out, tag);
        ck_assert_msg(first && strstr(first + 1, tag), "no two '%s' lines in:\n%s", tag, out);
    }
    ck_assert_msg(strstr(out, "layer 1: 784->7 (uint8") && strstr(out, "layer 3: 5->10 (float32"),
                  "%s", out);
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/host.model", dir);
    snprintf(p2, sizeof p2, "%s/dev.model", dir);
    size_t n1, n2;
    float *h = saved_params(p1, &n1), *d = saved_params(p2, &n2);
    ck_assert_uint_eq(n1, n2);
    /* 10 Adam steps: float32 sums in another order differ by ~1e-6 per step (the issue saw
     * 6e-6 on Oclgrind); 1e-4 of the largest weight. */
    double e = rel_err(d, h, n1);
    ck_assert_msg(e < 1e-4, "device weights differ from the host's by %g", e);
    free(h);
    free(d);
    free(out);
    free(err);
    work_dir_remove(dir);
}
END_TEST

Suite *cl_layers_suite(void)
{
    Suite *s = suite_create("cl_layers");
    TCase *tc = tcase_create("families");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_seed_cpu_family);
    tcase_add_test(tc, test_seed_gpu_family);
    if (!quick()) tcase_add_test(tc, test_seed_clblast);   /* CLBlast does not run on Oclgrind */
    tcase_add_test(tc, test_binary_device_against_host);
    suite_add_tcase(s, tc);
    return s;
}
