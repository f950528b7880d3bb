/* support.c: see support.h. */
#include "support.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stb_image.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "rng.h"
#include "util.h"

void synthetic_dataset(dataset *d, size_t n, int side, uint64_t seed)
{
    size_t px = (size_t)side * (size_t)side;
    d->n = n;
    d->rows = d->cols = side;
    d->classes = 10;
    d->pixels = xmalloc(n * px, "test pixels");
    d->labels = xmalloc(n, "test labels");
    for (size_t i = 0; i < n * px; i++) {
        uint32_t r = rng_below(seed, 7, i, 512);
        d->pixels[i] = r < 256 ? 0 : (uint8_t)(r - 256);
    }
    for (size_t i = 0; i < n; i++) d->labels[i] = (uint8_t)rng_below(seed, 8, i, 10);
}

void mnist_load(dataset_pair *p)
{
    char err[DATASET_ERR_LEN];
    if (dataset_load(mnist_dir(), 0, p, err, sizeof err) != 0)
        ck_abort_msg("real MNIST is needed (make data): %s", err);
}

bool test_quick(void)
{
    const char *q = getenv("CLTRAIN_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

train_config test_train_config(const model_arch *a, long batch, float lr)
{
    train_config c = {0};
    c.arch = *a;
    c.batch = batch;
    c.seed = 1;
    c.optimizer = OPT_SGD;
    c.lr = lr;
    c.momentum = 0.9f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.schedule = SCHED_CONSTANT;
    c.total_epochs = 10;
    return c;
}

backend *test_cl_backend(gemm_kind gemm) { return test_cl_backend_kernels(gemm, KERNELS_AUTO); }

backend *test_cl_backend_kernels(gemm_kind gemm, kernel_family kernels)
{
    return test_cl_backend_with(&(backend_cl_options){.gemm = gemm, .kernels = kernels});
}

backend *test_cl_backend_with(const backend_cl_options *o)
{
    const char *d = getenv("CLTRAIN_TEST_DEVICE");
    return backend_cl_create(d && *d ? atoi(d) : 0, o);
}

double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= num)) num = d;   /* NaN propagates as a failure */
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / den;
}

/* An absolute form of a path taken from the environment (tests change folders). */
static const char *absolute(const char *env, const char *fallback, char *buf, size_t len)
{
    const char *p = getenv(env);
    if (!p || !*p) p = fallback;
    if (p[0] == '/') return p;
    char cwd[2048];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(buf, len, "%s/%s", cwd, p);
    return buf;
}

const char *cltrain_bin(void)
{
    static char buf[4096];
    return absolute("CLTRAIN_BIN", "build/cltrain", buf, sizeof buf);
}

const char *mnist_dir(void)
{
    static char buf[4096];
    return absolute("CLTRAIN_DATA", "data/mnist", buf, sizeof buf);
}

int run_cltrain(const char *dir, const char *env, const char *args, char **out, char **err)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd %s && %s exec %s %s >out.txt 2>err.txt", dir, env ? env : "",
             cltrain_bin(), args);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "cltrain %s: killed by signal %d", args,
                  WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    char p[4096];
    size_t len;
    free(*out);
    free(*err);
    snprintf(p, sizeof p, "%s/out.txt", dir);
    *out = (char *)read_file(p, &len);
    snprintf(p, sizeof p, "%s/err.txt", dir);
    *err = (char *)read_file(p, &len);
    ck_assert(*out && *err);
    return WEXITSTATUS(st);
}

void work_dir_make(char *dir, size_t len, const char *tag)
{
    snprintf(dir, len, "/tmp/cltrain-%s-XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

void work_dir_remove(const char *dir)
{
    if (dir[0]) remove_tree(dir);
}

/* The one folder and the last run's texts of bin_fixture's test (each test is its own
 * process). */
static struct {
    char dir[64];
    char *out, *err;
} bin;

static void bin_setup(void) { work_dir_make(bin.dir, sizeof bin.dir, "run"); }

static void bin_teardown(void)
{
    work_dir_remove(bin.dir);
    bin.dir[0] = 0;
    free(bin.out);
    free(bin.err);
    bin.out = bin.err = NULL;
}

void bin_fixture(TCase *tc) { tcase_add_checked_fixture(tc, bin_setup, bin_teardown); }
const char *bin_dir(void) { return bin.dir; }
int bin_run_env(const char *env, const char *args)
{
    return run_cltrain(bin.dir, env, args, &bin.out, &bin.err);
}
int bin_run(const char *args) { return bin_run_env(NULL, args); }
const char *bin_out(void) { return bin.out; }
const char *bin_err(void) { return bin.err; }

void assert_png(const char *path, int w, int h)
{
    size_t len;
    unsigned char *data = read_file(path, &len);
    ck_assert_msg(data != NULL, "%s was not written", path);
    ck_assert_msg(len > 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is not a PNG", path);
    free(data);
    int iw, ih, comp;
    ck_assert_msg(stbi_info(path, &iw, &ih, &comp), "%s: %s", path, stbi_failure_reason());
    if (w > 0) {
        ck_assert_int_eq(iw, w);
        ck_assert_int_eq(ih, h);
    }
}

float *test_model_params(const char *path, size_t *n)
{
    char err[1024];
    model_file m;
    ck_assert_msg(model_load(path, &m, err, sizeof err) == 0, "%s", err);
    float *out = m.params;
    *n = m.arch.n_params;
    m.params = NULL;
    model_file_free(&m);
    return out;
}
