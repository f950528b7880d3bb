/* test_output_step.c: the output layer's one-pass forward and backward (output_step,
 * kernels/output_step.cl) against a float64 reference of what the per-layer calls compute
 * (linear_forward, softmax_xent with its gradient, linear_weights, linear_input), on awkward
 * sizes: one row, rows below and above a slice (the direct write and the slices' sum), 1 to 16
 * hidden inputs and classes, every hidden activation, every tensor at an offset, outputs
 * poisoned with NaN. Also: the shapes and families it declines, leaving everything alone, and
 * a training through the binary that matches the host back-end. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "support.h"
#include "test_suites.h"

static uint64_t state;

static float uniform(float lo, float hi)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (float)((state >> 40) * (1.0 / 16777216.0));
}

static tensor *upload(backend *be, dtype type, size_t count, const void *src)
{
    tensor *t = be->ops->alloc(be, type, count, "test tensor");
    be->ops->write(be, t, 0, count, src);
    return t;
}

static float *download(backend *be, const tensor *t, size_t count)
{
    float *out = malloc(count * sizeof *out);
    ck_assert_ptr_nonnull(out);
    be->ops->read(be, t, 0, count, out);
    return out;
}

static float *nans(size_t n)
{
    float *p = malloc(n * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* |got - want| <= 3e-5 * bound + tiny: bound is the sum of the absolute terms of the value's
 * sum (or its natural size), so the worst case of a float32 sum of up to ~300 terms (a slice,
 * then the slices: gamma_n about 1.8e-5), the logits' rounding and exp's few ulps all fit,
 * while a wrong index, lane or derivative misses by about the bound itself. */
static void expect_near(const char *what, int i, double got, double want, double bound,
                        const char *shape)
{
    ck_assert_msg(fabs(got - want) <= 3e-5 * bound + 1e-9, "%s [%d] of %s: %.9g, float64 %.9g (bound %.3g)",
                  what, i, shape, got, want, bound);
}

typedef struct {
    int m, k, n;
    activation act;
} shape;

static void check_shape(backend *be, const shape *s, uint64_t seed)
{
    const int m = s->m, k = s->k, n = s->n;
    const size_t w_off = 5, b_off = 3, l_off = 2, stat_row0 = 4, dw_off = 7, db_off = 1;
    const size_t mk = (size_t)m * k, mn = (size_t)m * n, nk = (size_t)n * k;
    const float scale = 1.0f / (float)m, a_scale = s->act == ACT_SIGMOID ? 0.75f : 1.0f;
    char name[96];
    snprintf(name, sizeof name, "m %d k %d n %d act %d", m, k, n, (int)s->act);
    state = seed;

    float *h = malloc(mk * sizeof *h), *w = malloc((w_off + nk) * sizeof *w);
    float *b = malloc((b_off + n) * sizeof *b);
    uint8_t *labels = malloc(l_off + (size_t)m);
    ck_assert(h && w && b && labels);
    for (size_t i = 0; i < mk; i++) {   /* activations as the hidden layer leaves them */
        float v = uniform(-1.0f, 1.5f);
        h[i] = s->act == ACT_RELU ? (v > 0.0f ? v : 0.0f)
               : s->act == ACT_SIGMOID ? 1.0f / (1.0f + expf(-3.0f * v)) / a_scale : v;
    }
    for (size_t i = 0; i < w_off + nk; i++) w[i] = uniform(-1.0f, 1.0f);
    for (size_t i = 0; i < b_off + (size_t)n; i++) b[i] = uniform(-0.5f, 0.5f);
    for (size_t i = 0; i < l_off + (size_t)m; i++) labels[i] = (uint8_t)(uniform(0.0f, (float)n - 0.001f));

    tensor *th = upload(be, DT_F32, mk, h), *tw = upload(be, DT_F32, w_off + nk, w);
    tensor *tb = upload(be, DT_F32, b_off + (size_t)n, b);
    tensor *tl = upload(be, DT_U8, l_off + (size_t)m, labels);
    float *poison = nans((stat_row0 + (size_t)m) * STATS_PER_ROW + dw_off + nk + mk + mn);
    tensor *tz = upload(be, DT_F32, mn, poison), *tda = upload(be, DT_F32, mk, poison);
    tensor *ts = upload(be, DT_F32, (stat_row0 + (size_t)m) * STATS_PER_ROW, poison);
    tensor *tdw = upload(be, DT_F32, dw_off + nk, poison), *tdb = upload(be, DT_F32, db_off + n, poison);
    output_step_args o = {
        .backward = true, .m = m, .k = k, .n = n, .h = th, .w = tw, .w_off = w_off, .b = tb, .b_off = b_off,
        .labels = tl, .l_off = l_off, .scale = scale, .z = tz, .stats = ts,
        .stat_row0 = stat_row0, .dw = tdw, .dw_off = dw_off, .db = tdb, .db_off = db_off,
        .act = s->act, .a_scale = a_scale, .da = tda,
    };
    ck_assert_msg(be->ops->output_step(be, &o), "output_step declined %s", name);
    float *z = download(be, tz, mn), *da = download(be, tda, mk);
    float *st = download(be, ts, (stat_row0 + (size_t)m) * STATS_PER_ROW);
    float *dw = download(be, tdw, dw_off + nk), *db = download(be, tdb, db_off + (size_t)n);

    /* The evaluation's pass: logits and statistics only (no gradients to write into). */
    tensor *tz2 = upload(be, DT_F32, mn, poison);
    tensor *ts2 = upload(be, DT_F32, (stat_row0 + (size_t)m) * STATS_PER_ROW, poison);
    output_step_args e = o;
    e.backward = false;
    e.z = tz2;
    e.stats = ts2;
    e.dw = e.db = e.da = NULL;
    ck_assert_msg(be->ops->output_step(be, &e), "output_step (evaluation) declined %s", name);
    float *logits = download(be, tz2, mn), *st2 = download(be, ts2, (stat_row0 + (size_t)m) * STATS_PER_ROW);

    double *dz = calloc(mn, sizeof *dz), *gw = calloc(nk, sizeof *gw), *gw_abs = calloc(nk, sizeof *gw_abs);
    double *gb = calloc((size_t)n, sizeof *gb), *gb_abs = calloc((size_t)n, sizeof *gb_abs);
    ck_assert(dz && gw && gw_abs && gb && gb_abs);
    for (int r = 0; r < m; r++) {
        const float *hr = h + (size_t)r * k;
        double zr[16], zabs[16], zmax = -INFINITY, sum = 0.0;
        int arg = 0, y = labels[l_off + r];
        for (int j = 0; j < n; j++) {
            zr[j] = b[b_off + j];
            zabs[j] = fabs(zr[j]);
            for (int c = 0; c < k; c++) {
                zr[j] += (double)hr[c] * w[w_off + (size_t)j * k + c];
                zabs[j] += fabs((double)hr[c] * w[w_off + (size_t)j * k + c]);
            }
            if (zr[j] > zmax) { zmax = zr[j]; arg = j; }
            expect_near("logit", r * n + j, logits[(size_t)r * n + j], zr[j], zabs[j], name);
        }
        for (int j = 0; j < n; j++) sum += exp(zr[j] - zmax);
        double sq = 0.0, worst = 0.0;
        for (int j = 0; j < n; j++) {
            double d = exp(zr[j] - zmax) / sum - (j == y ? 1.0 : 0.0);
            sq += d * d;
            dz[(size_t)r * n + j] = d * scale;
            if (zabs[j] > worst) worst = zabs[j];
            expect_near("dZ", r * n + j, z[(size_t)r * n + j], d * scale, scale * (1.0 + worst), name);
        }
        const float *sr = st + (stat_row0 + (size_t)r) * STATS_PER_ROW;
        double loss = zmax + log(sum) - zr[y];
        expect_near("loss", r, sr[0], loss, 1.0 + loss + worst, name);
        expect_near("squared error", r, sr[1], sq, 1.0 + worst, name);
        for (int c = 0; c < STATS_PER_ROW; c++)   /* the same row function, the same logits */
            ck_assert_msg(st2[(stat_row0 + (size_t)r) * STATS_PER_ROW + c] == sr[c],
                          "evaluation stats [%d][%d] of %s", r, c, name);
        /* The kernel's argmax of its float logits: a near tie may go either way. */
        double second = -INFINITY;
        for (int j = 0; j < n; j++) if (j != arg && zr[j] > second) second = zr[j];
        if (zmax - second > 1e-4 * (1.0 + worst))
            ck_assert_msg(sr[2] == (arg == y ? 1.0f : 0.0f), "correct [%d] of %s", r, name);
        for (int j = 0; j < n; j++) {
            gb[j] += dz[(size_t)r * n + j];
            gb_abs[j] += fabs(dz[(size_t)r * n + j]);
            for (int c = 0; c < k; c++) {
                gw[(size_t)j * k + c] += dz[(size_t)r * n + j] * hr[c];
                gw_abs[(size_t)j * k + c] += fabs(dz[(size_t)r * n + j] * hr[c]);
            }
        }
        for (int c = 0; c < k; c++) {
            double g = 0.0, gabs = 0.0;
            for (int j = 0; j < n; j++) {
                g += dz[(size_t)r * n + j] * w[w_off + (size_t)j * k + c];
                gabs += fabs(dz[(size_t)r * n + j] * w[w_off + (size_t)j * k + c]);
            }
            double a = (double)a_scale * hr[c];
            double f = s->act == ACT_RELU ? (a > 0.0 ? 1.0 : 0.0) : s->act == ACT_SIGMOID ? a * (1.0 - a) : 1.0;
            expect_near("dA", r * k + c, da[(size_t)r * k + c], g * f, gabs + scale, name);
        }
    }
    for (size_t i = 0; i < nk; i++) expect_near("dW", (int)i, dw[dw_off + i], gw[i], gw_abs[i] + scale, name);
    for (int j = 0; j < n; j++) expect_near("db", j, db[db_off + j], gb[j], gb_abs[j] + scale, name);
    /* And as a whole against the largest value: rounding errors of these sums walk (about
     * sqrt(300) * 6e-8 = 1e-6 of it), so 1e-5 also catches a slightly wrong scale or term. */
    float *want_w = malloc(nk * sizeof *want_w), want_b[16];
    ck_assert_ptr_nonnull(want_w);
    for (size_t i = 0; i < nk; i++) want_w[i] = (float)gw[i];
    for (int j = 0; j < n; j++) want_b[j] = (float)gb[j];
    ck_assert_msg(rel_err(dw + dw_off, want_w, nk) <= 1e-5, "dW of %s: relative error %.3g", name,
                  rel_err(dw + dw_off, want_w, nk));
    ck_assert_msg(rel_err(db + db_off, want_b, (size_t)n) <= 1e-5, "db of %s: relative error %.3g",
                  name, rel_err(db + db_off, want_b, (size_t)n));
    free(want_w);
    /* Nothing outside the outputs' ranges was written. */
    for (size_t i = 0; i < stat_row0 * STATS_PER_ROW; i++) ck_assert_msg(isnan(st[i]), "stats before row0");
    for (size_t i = 0; i < dw_off; i++) ck_assert_msg(isnan(dw[i]), "dw before its offset");
    for (size_t i = 0; i < db_off; i++) ck_assert_msg(isnan(db[i]), "db before its offset");

    tensor *all[] = {th, tw, tb, tl, tz, tda, ts, tdw, tdb, tz2, ts2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) be->ops->release(be, all[i]);
    free(h); free(w); free(b); free(labels); free(poison); free(z); free(da); free(st); free(dw);
    free(db); free(logits); free(st2); free(dz); free(gw); free(gw_abs); free(gb); free(gb_abs);
}

static const shape shapes[] = {
    {1, 1, 1, ACT_RELU},  {7, 10, 10, ACT_RELU},  {255, 3, 2, ACT_SIGMOID},
    {257, 16, 16, ACT_NONE}, {1000, 13, 7, ACT_RELU}, {4097, 10, 10, ACT_SIGMOID},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

START_TEST(test_against_float64)
{
    const shape *s = &shapes[_i];
    if (test_quick() && s->m > 1000) return;   /* Oclgrind: the direct and the sliced paths still run */
    backend *be = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    check_shape(be, s, 0x5eed0000u + (uint64_t)_i);
    backend_destroy(be);
}
END_TEST

/* Over 16 inputs or classes, and on the GPU family, it declines and writes nothing. */
START_TEST(test_declines)
{
    backend *gpu = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_GPU);
    backend *cpu = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    backend *host = backend_host_create();
    const int cases[][3] = {{17, 10, 0}, {10, 17, 0}, {10, 10, 1}};   /* k, n, on the GPU family */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        backend *be = cases[c][2] ? gpu : cpu;
        int m = 5, k = cases[c][0], n = cases[c][1];
        size_t big = (size_t)m * 20 * 20;
        float *poison = nans(big);
        uint8_t labels[5] = {0};
        tensor *t = upload(be, DT_F32, big, poison), *tl = upload(be, DT_U8, 5, labels);
        output_step_args o = {.m = m, .k = k, .n = n, .h = t, .w = t, .b = t, .labels = tl,
                              .scale = 0.2f, .z = t, .stats = t, .dw = t, .db = t,
                              .act = ACT_RELU, .a_scale = 1.0f, .da = t};
        ck_assert_msg(!be->ops->output_step(be, &o), "k %d n %d family %d taken", k, n, cases[c][2]);
        float *back = download(be, t, big);
        for (size_t i = 0; i < big; i++) ck_assert_msg(isnan(back[i]), "declined, yet wrote [%zu]", i);
        free(back);
        free(poison);
        be->ops->release(be, t);
        be->ops->release(be, tl);
    }
    ck_assert_msg(host->ops->output_step == NULL, "the host has an output_step");   /* the reference runs the per-layer calls */
    backend_destroy(host);
    backend_destroy(gpu);
    backend_destroy(cpu);
}
END_TEST

/* Through the binary, the seed's 784-10-10 trains with it on the CPU family (the profile shows
 * its kernel) to the host back-end's accuracy, full batch and with mini-batches and dropout, on
 * the per-layer path (--step layers: by default sparse_step.cl trains and evaluates this net,
 * test_sparse_step.c). */
START_TEST(test_training_matches_host)
{
    static const char *runs[] = {
        "--epochs 3 --train-limit 4000 --test-limit 1000",
        "--epochs 2 --batch 100 --dropout 0.2 --train-limit 3000 --test-limit 1000",
    };
    if (test_quick()) return;   /* Oclgrind: the kernel's cases above are the check there */
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char args[600], acc_cl[64] = "", acc_host[64] = "";
        snprintf(args, sizeof args, "--data %s %s --kernels cpu --step layers --profile", mnist_dir(), runs[i]);
        ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
        ck_assert_msg(strstr(bin_out(), "\noutput_step ") != NULL, "no output_step launch in:\n%s", bin_out());
        const char *p = strstr(bin_out(), "test accuracy: ");
        ck_assert_ptr_nonnull(p);
        sscanf(p, "test accuracy: %63s", acc_cl);
        snprintf(args, sizeof args, "--data %s %s --device host", mnist_dir(), runs[i]);
        ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
        p = strstr(bin_out(), "test accuracy: ");
        ck_assert_ptr_nonnull(p);
        sscanf(p, "test accuracy: %63s", acc_host);
        double a = atof(acc_cl), h = atof(acc_host);
        /* Float sums in another order move a few test images at most. */
        ck_assert_msg(fabs(a - h) <= 0.003, "%s: OpenCL %s, host %s", runs[i], acc_cl, acc_host);
    }
}
END_TEST

Suite *output_step_suite(void)
{
    Suite *s = suite_create("output_step");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_against_float64, 0, N_SHAPES);
    tcase_add_test(tc, test_declines);
    suite_add_tcase(s, tc);
    TCase *bin = tcase_create("binary");
    tcase_set_timeout(bin, 300);
    bin_fixture(bin);
    tcase_add_test(bin, test_training_matches_host);
    suite_add_tcase(s, bin);
    return s;
}
