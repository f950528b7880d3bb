/* test_backend.c: every operation of both back-ends on random inputs of awkward sizes (1, 3, 17,
 * 255, 1000 and above 65,536 elements), checked against a float64 reference computed here from
 * the same inputs, and the OpenCL results against the host back-end's where the two must agree
 * to the bit (masks, gathers, argmax). The OpenCL device is $CLTRAIN_TEST_DEVICE (default 0).
 * Outputs are poisoned with NaN before each operation, and elements outside an operation's
 * region must still hold that NaN afterwards.
 *
 * Tolerances. Sums of k float32 terms (gemm, col_sum, reduce_stats) are compared elementwise as
 *     |x - ref| <= tol(k) * sum_k |term|,   tol(k) = max(1e-6, 4 * 2^-24 * sqrt(k)),
 * where ref and sum |term| are float64. Float accumulation of k terms has the worst-case bound
 * k * 2^-24 * sum |term|, but the rounding errors of a long sum behave like a random walk
 * (about 2^-24 * sqrt(k) relative to sum |term|, reached when every term has the same sign, as
 * for uint8 x uint8); the factor 4 covers the spread over many outputs. For k = 60,000 that is
 * 5.8e-5, for k <= 3,900 the floor 1e-6 (17 units in the last place). An indexing or guard bug
 * gives errors of order 1. The float64 host back-end passes with room to spare. Element-wise
 * operations use a few units in the last place (stated at each check). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_testing.h"
#include "clblast_check.h"
#include "rng.h"
#include "support.h"
#include "test_suites.h"
#include "util.h"

/* ck_assert_msg without its per-call bookkeeping (Check writes a mark for every passing
 * assertion, which dominates loops over a million elements). */
#define expect(cond, ...)                                                                    \
    do {                                                                                     \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                              \
    } while (0)

/* Both back-ends, made by the checked fixture inside the forked test process. */
static backend *host_be, *cl_be;

/* The clblast case's back-end profiles, so its gemm tests can prove CLBlast ran. */
static bool want_clblast;

static void open_backends(gemm_kind gemm)
{
    host_be = backend_host_create();
    want_clblast = gemm == GEMM_CLBLAST;
    cl_be = want_clblast ? test_clblast_backend() : test_cl_backend(gemm);
}

static void setup(void) { open_backends(GEMM_BUILTIN); }
static void setup_clblast(void) { open_backends(GEMM_CLBLAST); }

static void teardown(void)
{
    backend_destroy(cl_be);
    backend_destroy(host_be);
    cl_be = host_be = NULL;
}

#define N_BACKENDS 2
static backend *backend_at(int i) { return i == 0 ? host_be : cl_be; }

/* ---- inputs ------------------------------------------------------------------------------- */

static float *random_floats(size_t n, float lo, float hi, uint64_t seed)
{
    float *v = xmalloc(n * sizeof *v, "test floats");
    for (size_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * rng_uniform(seed, 100, i);
    return v;
}

static uint8_t *random_bytes(size_t n, uint32_t bound, uint64_t seed)
{
    uint8_t *v = xmalloc(n ? n : 1, "test bytes");
    for (size_t i = 0; i < n; i++) v[i] = (uint8_t)rng_below(seed, 101, i, bound);
    return v;
}

static float *nan_floats(size_t n)
{
    float *v = xmalloc(n * sizeof *v, "test NaNs");
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    return v;
}

static size_t elem_size(dtype t) { return t == DT_U8 ? 1 : 4; }

/* A tensor of `count` elements holding `data`. */
static tensor *upload(backend *be, dtype type, size_t count, const void *data)
{
    tensor *t = be->ops->alloc(be, type, count, "test tensor");
    be->ops->write(be, t, 0, count, data);
    return t;
}

/* All `count` elements of t, in a malloc'd array. */
static void *download(backend *be, const tensor *t, dtype type, size_t count)
{
    void *v = xmalloc(count * elem_size(type), "test read-back");
    be->ops->finish(be);
    be->ops->read(be, t, 0, count, v);
    return v;
}

/* Fails unless every element outside [off, off + len) is still NaN. */
static void check_untouched(const char *what, const float *v, size_t count, size_t off, size_t len,
                            const char *be_name)
{
    for (size_t i = 0; i < count; i++) {
        if (i >= off && i < off + len) continue;
        expect(isnan(v[i]), "%s (%s): element %zu outside the output was written (%g)",
               what, be_name, i, (double)v[i]);
    }
}

static double tol_sum(double k)
{
    double t = 4.0 * 0x1p-24 * sqrt(k);
    return t > 1e-6 ? t : 1e-6;
}

/* ---- gemm --------------------------------------------------------------------------------- */

typedef struct {
    int m, n, k;
} gemm_shape;

/* Awkward sizes around the 64x64x16 tiles, the network's shapes (X[m x 784] W0^T, dW0 with
 * k = batch), an output above 65,536 elements and a long reduction. */
static const gemm_shape gemm_shapes[] = {
    {1, 1, 1},    {3, 17, 1},     {17, 3, 255},  {255, 17, 3},   {1, 1000, 17},
    {64, 64, 16}, {65, 63, 17},   {1000, 10, 784}, {10, 784, 1000}, {128, 255, 100},
    {70000, 3, 1}, {3, 70000, 2}, {3, 5, 60000},
};
#define N_GEMM_SHAPES (int)(sizeof gemm_shapes / sizeof gemm_shapes[0])

/* Element (r, c) of op(X), X stored with row stride ld, as double. */
static double op_elem(const void *x, bool u8, bool trans, int ld, int r, int c)
{
    size_t i = trans ? (size_t)c * (size_t)ld + (size_t)r : (size_t)r * (size_t)ld + (size_t)c;
    return u8 ? (double)((const uint8_t *)x)[i] : (double)((const float *)x)[i];
}

/* One gemm on both back-ends: layout (ta, tb), element types, beta; `pad` > 0 adds row-stride
 * padding and offsets to every operand. */
static void run_gemm(gemm_shape s, bool ta, bool tb, bool a_u8, bool b_u8, float beta, int pad,
                     uint64_t seed)
{
    const int m = s.m, n = s.n, k = s.k;
    const int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    const int lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
    const size_t a_off = (size_t)pad * 3, b_off = (size_t)pad * 5, c_off = (size_t)pad * 7;
    const size_t a_count = a_off + (size_t)a_rows * (size_t)lda;
    const size_t b_count = b_off + (size_t)b_rows * (size_t)ldb;
    const size_t c_count = c_off + (size_t)m * (size_t)ldc + (size_t)pad;
    const float alpha = a_u8 && b_u8 ? 1.0f / 65025.0f : a_u8 || b_u8 ? 1.0f / 255.0f : 0.75f;

    void *a = a_u8 ? (void *)random_bytes(a_count, 256, seed)
                   : (void *)random_floats(a_count, -1.0f, 1.0f, seed);
    void *b = b_u8 ? (void *)random_bytes(b_count, 256, seed + 1)
                   : (void *)random_floats(b_count, -1.0f, 1.0f, seed + 1);
    /* C: NaN everywhere, random values inside the m x n block when beta reads them. */
    float *c0 = nan_floats(c_count);
    if (beta != 0.0f) {
        float *r = random_floats(c_count, -1.0f, 1.0f, seed + 2);
        for (int i = 0; i < m; i++)
            memcpy(c0 + c_off + (size_t)i * (size_t)ldc, r + (size_t)i * (size_t)n,
                   (size_t)n * sizeof(float));
        free(r);
    }

    /* float64 reference and the scale of its rounding: |alpha| sum |a||b| + |beta c0|. */
    double *ref = xmalloc((size_t)m * (size_t)n * sizeof *ref, "gemm reference");
    double *mag = xmalloc((size_t)m * (size_t)n * sizeof *mag, "gemm magnitudes");
    const uint8_t *ab = a;
    const uint8_t *bb = b;
    const void *ap = ab + a_off * (a_u8 ? 1 : 4), *bp = bb + b_off * (b_u8 ? 1 : 4);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0.0, abs_acc = 0.0;
            for (int p = 0; p < k; p++) {
                double t = op_elem(ap, a_u8, ta, lda, i, p) * op_elem(bp, b_u8, tb, ldb, p, j);
                acc += t;
                abs_acc += fabs(t);
            }
            size_t o = (size_t)i * (size_t)n + (size_t)j;
            const size_t ci = c_off + (size_t)i * (size_t)ldc + (size_t)j;
            double cv = beta != 0.0f ? (double)beta * (double)c0[ci] : 0.0;
            ref[o] = (double)alpha * acc + cv;
            mag[o] = fabs((double)alpha) * abs_acc + fabs(cv);
        }
    }

    const double tol = tol_sum((double)k);
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        backend *be = backend_at(bi);
        tensor *ta_ = upload(be, a_u8 ? DT_U8 : DT_F32, a_count, a);
        tensor *tb_ = upload(be, b_u8 ? DT_U8 : DT_F32, b_count, b);
        tensor *tc = upload(be, DT_F32, c_count, c0);
        gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = alpha,
                       .beta = beta, .a = ta_, .a_off = a_off, .lda = lda, .b = tb_,
                       .b_off = b_off, .ldb = ldb, .c = tc, .c_off = c_off, .ldc = ldc};
        backend_testing(be)->gemm(be, &g);
        float *c = download(be, tc, DT_F32, c_count);
        for (size_t i = 0; i < c_count; i++) {
            bool inside = i >= c_off && (i - c_off) / (size_t)ldc < (size_t)m &&
                          (i - c_off) % (size_t)ldc < (size_t)n;
            if (!inside) {
                expect(isnan(c[i]), "gemm %s%s %dx%dx%d (%s): element %zu outside C "
                       "written", ta ? "T" : "N", tb ? "T" : "N", m, n, k,
                       be->ops->name, i);
                continue;
            }
            size_t r = (i - c_off) / (size_t)ldc, col = (i - c_off) % (size_t)ldc;
            size_t o = r * (size_t)n + col;
            double err = fabs((double)c[i] - ref[o]);
            expect(err <= tol * mag[o] + 1e-30,
                   "gemm %s%s %c%c %dx%dx%d beta %g pad %d (%s): C[%zu][%zu] = %.9g, "
                   "reference %.9g, error %.3g > %.3g", ta ? "T" : "N", tb ? "T" : "N",
                   a_u8 ? 'u' : 'f', b_u8 ? 'u' : 'f', m, n, k, (double)beta, pad,
                   be->ops->name, r, col, (double)c[i], ref[o], err, tol * mag[o]);
        }
        free(c);
        be->ops->release(be, ta_);
        be->ops->release(be, tb_);
        be->ops->release(be, tc);
    }
    free(ref);
    free(mag);
    free(a);
    free(b);
    free(c0);
}

/* _i: layout (NN, NT, TN, TT) x element types of A and B (ff, uf, fu, uu). */
static void gemm_case(int i)
{
    const bool ta = (i >> 2 & 2) != 0, tb = (i >> 2 & 1) != 0;
    const bool a_u8 = (i & 1) != 0, b_u8 = (i & 2) != 0;
    for (int s = 0; s < N_GEMM_SHAPES; s++) {
        run_gemm(gemm_shapes[s], ta, tb, a_u8, b_u8, 0.0f, s % 3, (uint64_t)(i * 100 + s));
        run_gemm(gemm_shapes[s], ta, tb, a_u8, b_u8, -0.5f, (s + 1) % 3,
                 (uint64_t)(i * 100 + s + 50));
    }
}

START_TEST(test_gemm)
{
    gemm_case(_i);
    if (want_clblast) assert_clblast_ran(cl_be);
}
END_TEST

/* k = 0: C = beta C (alpha times an empty sum). */
START_TEST(test_gemm_k0)
{
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        backend *be = backend_at(bi);
        float cv[6] = {1, 2, 3, 4, 5, 6}, dummy = 0.0f;
        tensor *a = upload(be, DT_F32, 1, &dummy), *b = upload(be, DT_F32, 1, &dummy);
        tensor *c = upload(be, DT_F32, 6, cv);
        gemm_args g = {.m = 2, .n = 3, .k = 0, .alpha = 1.0f, .beta = 2.0f, .a = a, .lda = 1,
                       .b = b, .ldb = 3, .c = c, .ldc = 3};
        backend_testing(be)->gemm(be, &g);
        float *out = download(be, c, DT_F32, 6);
        for (int i = 0; i < 6; i++) ck_assert_float_eq(out[i], 2.0f * cv[i]);
        free(out);
        be->ops->release(be, a);
        be->ops->release(be, b);
        be->ops->release(be, c);
    }
}
END_TEST

/* The same uint8 tensor multiplied, rewritten, multiplied again: CLBlast's float copy of it
 * must follow the new bytes. */
START_TEST(test_gemm_u8_rewrite)
{
    for (int bi = 0; bi < N_BACKENDS; bi++) {
        backend *be = backend_at(bi);
        uint8_t x1[6] = {1, 2, 3, 4, 5, 6}, x2[6] = {6, 5, 4, 3, 2, 1};
        float w[3] = {1, 10, 100};
        tensor *x = upload(be, DT_U8, 6, x1), *tw = upload(be, DT_F32, 3, w);
        tensor *c = be->ops->alloc(be, DT_F32, 2, "c");
        gemm_args g = {.trans_b = true, .m = 2, .n = 1, .k = 3, .alpha = 1.0f, .beta = 0.0f,
                       .a = x, .lda = 3, .b = tw, .ldb = 3, .c = c, .ldc = 1};
        backend_testing(be)->gemm(be, &g);
        float *out = download(be, c, DT_F32, 2);
        ck_assert_float_eq(out[0], 321.0f);
        ck_assert_float_eq(out[1], 654.0f);
        free(out);
        be->ops->write(be, x, 0, 6, x2);
        backend_testing(be)->gemm(be, &g);
        out = download(be, c, DT_F32, 2);
        ck_assert_float_eq(out[0], 456.0f);
        ck_assert_float_eq(out[1], 123.0f);
        free(out);
        be->ops->release(be, x);
        be->ops->release(be, tw);
        be->ops->release(be, c);
    }
    if (want_clblast) assert_clblast_ran(cl_be);
}
END_TEST

/* ---- bias_act, act_backward, dropout ------------------------------------------------------ */

typedef struct {
    int rows, cols;
} mat_shape;

static const mat_shape ew_shapes[] = {
    {1, 1}, {3, 17}, {17, 3}, {255, 255}, {1000, 10}, {70000, 1}, {1, 70001},
};
#define N_EW_SHAPES (int)(sizeof ew_shapes / sizeof ew_shapes[0])

static const activation acts[] = {ACT_NONE, ACT_RELU, ACT_SIGMOID};

START_TEST(test_bias_act)
{
    const activation act = acts[_i];
    for (int s = 0; s < N_EW_SHAPES; s++) {
        const int rows = ew_shapes[s].rows, cols = ew_shapes[s].cols;
        const size_t count = (size_t)rows * (size_t)cols, z_off = 5, b_off = 2;
        const size_t z_total = z_off + count + 3, b_total = b_off + (size_t)cols;
        float *z = nan_floats(z_total);
        float *r = random_floats(count, -4.0f, 4.0f, (uint64_t)s);
        memcpy(z + z_off, r, count * sizeof *z);
        float *bias = random_floats(b_total, -1.0f, 1.0f, (uint64_t)s + 7);
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            backend *be = backend_at(bi);
            tensor *tz = upload(be, DT_F32, z_total, z), *tb = upload(be, DT_F32, b_total, bias);
            backend_testing(be)->bias_act(be, tz, z_off, tb, b_off, rows, cols, act);
            float *out = download(be, tz, DT_F32, z_total);
            check_untouched("bias_act", out, z_total, z_off, count, be->ops->name);
            for (size_t i = 0; i < count; i++) {
                float v = r[i] + bias[b_off + i % (size_t)cols];   /* one rounding, both sides */
                if (act == ACT_SIGMOID) {
                    /* |error| <= 1e-6 on values in (0, 1): exp and the division, a few ulp. */
                    double ref = 1.0 / (1.0 + exp(-(double)v));
                    expect(fabs(out[z_off + i] - ref) <= 1e-6,
                           "bias_act sigmoid %dx%d (%s): [%zu] = %.9g, reference %.9g",
                           rows, cols, be->ops->name, i, (double)out[z_off + i], ref);
                } else {
                    /* None and ReLU are exact. */
                    float ref = act == ACT_RELU && !(v > 0.0f) ? 0.0f : v;
                    expect(out[z_off + i] == ref,
                           "bias_act %dx%d (%s): [%zu] = %.9g, expected %.9g", rows, cols,
                           be->ops->name, i, (double)out[z_off + i], (double)ref);
                }
            }
            free(out);
            be->ops->release(be, tz);
            be->ops->release(be, tb);
        }
        free(z);
        free(r);
        free(bias);
    }
}
END_TEST

static const size_t counts[] = {1, 3, 17, 255, 1000, 70000};
#define N_COUNTS (int)(sizeof counts / sizeof counts[0])

START_TEST(test_act_backward)
{
    const activation act = acts[_i];
    for (int s = 0; s < N_COUNTS; s++) {
        const size_t count = counts[s], d_off = 3, a_off = 1;
        const size_t d_total = d_off + count + 2, a_total = a_off + count;
        float *d = nan_floats(d_total);
        float *r = random_floats(count, -2.0f, 2.0f, (uint64_t)s + 20);
        memcpy(d + d_off, r, count * sizeof *d);
        /* Activated values: ReLU outputs (with exact zeros) or sigmoid outputs in (0, 1). */
        float *a = random_floats(a_total, act == ACT_SIGMOID ? 0.001f : -1.0f, 0.999f,
                                 (uint64_t)s + 30);
        if (act == ACT_RELU)
            for (size_t i = 0; i < a_total; i++) if (a[i] < 0.0f) a[i] = 0.0f;
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            backend *be = backend_at(bi);
            tensor *td = upload(be, DT_F32, d_total, d), *tA = upload(be, DT_F32, a_total, a);
            backend_testing(be)->act_backward(be, td, d_off, tA, a_off, count, act);
            float *out = download(be, td, DT_F32, d_total);
            check_untouched("act_backward", out, d_total, d_off, count, be->ops->name);
            for (size_t i = 0; i < count; i++) {
                const float av = a[a_off + i], dv = r[i], x = out[d_off + i];
                if (act == ACT_SIGMOID) {
                    /* d a (1 - a): three roundings, |error| <= 1e-6 |d|. */
                    double ref = (double)dv * (double)av * (1.0 - (double)av);
                    expect(fabs(x - ref) <= 1e-6 * fabs(dv),
                           "act_backward sigmoid %zu (%s): [%zu] = %.9g, reference %.9g",
                           count, be->ops->name, i, (double)x, ref);
                } else {
                    float ref = act == ACT_RELU && !(av > 0.0f) ? 0.0f : dv;
                    expect(x == ref, "act_backward %zu (%s): [%zu] = %.9g, expected %.9g",
                           count, be->ops->name, i, (double)x, (double)ref);
                }
            }
            free(out);
            be->ops->release(be, td);
            be->ops->release(be, tA);
        }
        free(d);
        free(r);
        free(a);
    }
}
END_TEST

START_TEST(test_dropout)
{
    static const float ps[] = {0.1f, 0.5f, 0.9f, -1.0f};
    for (int s = 0; s < N_COUNTS; s++) {
        for (int pi = 0; pi < 4; pi++) {
            const size_t count = counts[s], off = 3, total = off + count + 2;
            const uint64_t seed = 1234 + (uint64_t)s;
            const uint64_t stream = RNG_STREAM_DROPOUT + 16 * (uint64_t)pi;
            /* The last p is the uniform of the last element exactly: u >= p keeps it. */
            const float p = ps[pi] >= 0.0f ? ps[pi] : rng_uniform(seed, stream, count - 1);
            float *x = nan_floats(total);
            /* Nonzero inputs, so a zero output means a dropped element. */
            float *r = random_floats(count, 0.5f, 2.0f, (uint64_t)s + 40);
            memcpy(x + off, r, count * sizeof *x);
            float *outs[N_BACKENDS];
            for (int bi = 0; bi < N_BACKENDS; bi++) {
                backend *be = backend_at(bi);
                tensor *t = upload(be, DT_F32, total, x);
                be->ops->dropout(be, t, off, count, p, dropout_scale(p), seed, stream);
                outs[bi] = download(be, t, DT_F32, total);
                check_untouched("dropout", outs[bi], total, off, count, be->ops->name);
                size_t kept = 0;
                for (size_t i = 0; i < count; i++) {
                    const bool keep = rng_uniform(seed, stream, i) >= p;
                    const float v = outs[bi][off + i];
                    expect(keep ? v != 0.0f : v == 0.0f,
                           "dropout %zu p %g (%s): element %zu %s", count, (double)p,
                           be->ops->name, i, keep ? "dropped" : "kept");
                    /* Kept: x / (1 - p), one or two roundings. */
                    double ref = keep ? (double)r[i] / (1.0 - (double)p) : 0.0;
                    expect(fabs(v - ref) <= 1e-6 * fabs(ref),
                           "dropout %zu p %g (%s): [%zu] = %.9g, reference %.9g", count,
                           (double)p, be->ops->name, i, (double)v, ref);
                    kept += keep;
                }
                if (count == 70000 && ps[pi] >= 0.0f) {
                    double frac = (double)kept / (double)count;
                    expect(fabs(frac - (1.0 - p)) < 0.01, "dropout kept %.4f, expected %.2f",
                           frac, 1.0 - (double)p);
                }
                be->ops->release(be, t);
            }
            /* The same mask and values on both back-ends. */
            expect(memcmp(outs[0] + off, outs[1] + off, count * sizeof(float)) == 0,
                   "dropout %zu p %g: back-ends differ", count, (double)p);
            free(outs[0]);
            free(outs[1]);
            free(x);
            free(r);
        }
    }
}
END_TEST

/* ---- softmax_xent ------------------------------------------------------------------------- */

START_TEST(test_softmax_xent)
{
    static const int row_counts[] = {1, 3, 17, 255, 1000, 70000};
    static const int class_counts[] = {1, 3, 10, 17};
    const bool want_grad = _i == 1;
    /* The OpenCL kernel also as a GPU runs it (one row per work-item, --kernels gpu): the
     * device under test may be a CPU, which takes rows in blocks. */
    backend *gpu_family = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_GPU);
    for (int ri = 0; ri < 6; ri++) {
        for (int ci = 0; ci < 4; ci++) {
            const int rows = row_counts[ri], classes = class_counts[ci];
            const size_t count = (size_t)rows * (size_t)classes, z_off = 4, l_off = 2;
            const size_t stat_row0 = 3, z_total = z_off + count + 1;
            const size_t s_total = (stat_row0 + (size_t)rows + 1) * STATS_PER_ROW;
            const float scale = 1.0f / (float)rows;
            const uint64_t seed = (uint64_t)(ri * 10 + ci);
            float *z = nan_floats(z_total);
            float *r = random_floats(count, -8.0f, 8.0f, seed);
            /* Every seventh row has logits up to +-800: exp would overflow without the max. */
            for (int i = 0; i < rows; i += 7)
                for (int j = 0; j < classes; j++)
                    r[(size_t)i * (size_t)classes + (size_t)j] *= 100.0f;
            uint8_t *labels = random_bytes(l_off + (size_t)rows, (uint32_t)classes, seed + 1);
            /* Every fifth row has its maximum twice, first and last: the first one wins, and
             * the label is one or the other. */
            for (int i = 1; classes > 2 && i < rows; i += 5) {
                float *zr = r + (size_t)i * (size_t)classes;
                int arg = 0;
                for (int j = 1; j < classes; j++) if (zr[j] > zr[arg]) arg = j;
                zr[0] = zr[classes - 1] = zr[arg];
                labels[l_off + (size_t)i] = (uint8_t)(i % 2 ? 0 : classes - 1);
            }
            memcpy(z + z_off, r, count * sizeof *z);
            float *stats0 = nan_floats(s_total);

            float *stats_out[N_BACKENDS + 1];
            for (int bi = 0; bi < N_BACKENDS + 1; bi++) {
                backend *be = bi < N_BACKENDS ? backend_at(bi) : gpu_family;
                tensor *tz = upload(be, DT_F32, z_total, z);
                tensor *tl = upload(be, DT_U8, l_off + (size_t)rows, labels);
                tensor *ts = upload(be, DT_F32, s_total, stats0);
                be->ops->softmax_xent(be, tz, z_off, rows, classes, tl, l_off, scale, ts,
                                      stat_row0, want_grad);
                float *zo = download(be, tz, DT_F32, z_total);
                float *st = download(be, ts, DT_F32, s_total);
                check_untouched("softmax_xent z", zo, z_total, z_off, count, be->ops->name);
                check_untouched("softmax_xent stats", st, s_total, stat_row0 * STATS_PER_ROW,
                                (size_t)rows * STATS_PER_ROW, be->ops->name);
                for (int i = 0; i < rows; i++) {
                    const float *zr = r + (size_t)i * (size_t)classes;
                    const int y = labels[l_off + (size_t)i];
                    int arg = 0;
                    for (int j = 1; j < classes; j++) if (zr[j] > zr[arg]) arg = j;
                    double sum = 0.0;
                    for (int j = 0; j < classes; j++) sum += exp((double)zr[j] - (double)zr[arg]);
                    const double lse = (double)zr[arg] + log(sum);
                    double sq = 0.0;
                    const float *sr = st + (stat_row0 + (size_t)i) * STATS_PER_ROW;
                    for (int j = 0; j < classes; j++) {
                        const double d = exp((double)zr[j] - lse) - (j == y ? 1.0 : 0.0);
                        sq += d * d;
                        const float g = zo[z_off + (size_t)i * (size_t)classes + (size_t)j];
                        if (want_grad) {
                            /* p - y from exp, a sum and a division: 1e-6 absolute, scaled. */
                            expect(fabs(g - d * (double)scale) <= 1e-6 * (double)scale,
                                   "softmax grad %dx%d (%s): [%d][%d] = %.9g, reference %.9g",
                                   rows, classes, be->ops->name, i, j, (double)g,
                                   d * (double)scale);
                        } else {
                            expect(g == zr[j], "softmax_xent without grad changed z");
                        }
                    }
                    /* Loss: logsumexp - z[label], rounding relative to its size (1e-5). */
                    const double loss = lse - (double)zr[y];
                    expect(fabs(sr[0] - loss) <= 1e-5 * (1.0 + loss),
                           "softmax loss %dx%d (%s): row %d = %.9g, reference %.9g", rows,
                           classes, be->ops->name, i, (double)sr[0], loss);
                    expect(fabs(sr[1] - sq) <= 1e-5,
                           "softmax squared error %dx%d (%s): row %d = %.9g, reference %.9g",
                           rows, classes, be->ops->name, i, (double)sr[1], sq);
                    expect(sr[2] == (arg == y ? 1.0f : 0.0f),
                           "softmax correct %dx%d (%s): row %d = %g, argmax %d label %d",
                           rows, classes, be->ops->name, i, (double)sr[2], arg, y);
                }
                free(zo);
                stats_out[bi] = st;
                be->ops->release(be, tz);
                be->ops->release(be, tl);
                be->ops->release(be, ts);
            }
            for (int i = 0; i < rows; i++) {
                size_t o = (stat_row0 + (size_t)i) * STATS_PER_ROW + 2;
                expect(stats_out[0][o] == stats_out[1][o] && stats_out[0][o] == stats_out[2][o],
                       "softmax correct differs between back-ends in row %d", i);
            }
            for (int bi = 0; bi < N_BACKENDS + 1; bi++) free(stats_out[bi]);
            free(z);
            free(r);
            free(labels);
            free(stats0);
        }
    }
    backend_destroy(gpu_family);
}
END_TEST

/* ---- col_sum, reduce_stats ---------------------------------------------------------------- */

START_TEST(test_col_sum)
{
    static const mat_shape shapes[] = {
        {1, 1}, {3, 17}, {17, 3}, {255, 255}, {1000, 10}, {1024, 5}, {1025, 7},
        {70000, 3}, {60000, 10}, {3, 70000}, {0, 4},
    };
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        const int rows = shapes[s].rows, cols = shapes[s].cols;
        const size_t count = (size_t)rows * (size_t)cols, dz_off = 2, db_off = 3;
        const size_t db_total = db_off + (size_t)cols + 1;
        /* Every other shape all positive: the worst case for rounding. */
        float *dz = random_floats(dz_off + count, s % 2 ? 0.0f : -1.0f, 1.0f, (uint64_t)s + 60);
        const float alpha = 1.0f / (float)(rows + 1);
        float *db0 = nan_floats(db_total);
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            backend *be = backend_at(bi);
            tensor *tdz = upload(be, DT_F32, dz_off + count, dz);
            tensor *tdb = upload(be, DT_F32, db_total, db0);
            backend_testing(be)->col_sum(be, tdz, dz_off, rows, cols, alpha, tdb, db_off);
            float *db = download(be, tdb, DT_F32, db_total);
            check_untouched("col_sum", db, db_total, db_off, (size_t)cols, be->ops->name);
            for (int j = 0; j < cols; j++) {
                double acc = 0.0, mag = 0.0;
                for (int i = 0; i < rows; i++) {
                    double v = dz[dz_off + (size_t)i * (size_t)cols + (size_t)j];
                    acc += v;
                    mag += fabs(v);
                }
                double ref = (double)alpha * acc, bound = tol_sum(rows) * (double)alpha * mag;
                expect(fabs(db[db_off + (size_t)j] - ref) <= bound + 1e-30,
                       "col_sum %dx%d (%s): [%d] = %.9g, reference %.9g, bound %.3g", rows,
                       cols, be->ops->name, j, (double)db[db_off + (size_t)j], ref, bound);
            }
            free(db);
            be->ops->release(be, tdz);
            be->ops->release(be, tdb);
        }
        free(dz);
        free(db0);
    }
}
END_TEST

START_TEST(test_reduce_stats)
{
    for (int s = 0; s < N_COUNTS; s++) {
        const size_t n = counts[s], out_off = 1, out_total = out_off + STATS_PER_ROW + 1;
        float *st = random_floats(n * STATS_PER_ROW, 0.0f, 2.5f, (uint64_t)s + 80);
        for (size_t i = 0; i < n; i++) st[i * STATS_PER_ROW + 2] = (float)(rng_below(9, 9, i, 2));
        float *out0 = nan_floats(out_total);
        float *outs[N_BACKENDS];
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            backend *be = backend_at(bi);
            tensor *ts = upload(be, DT_F32, n * STATS_PER_ROW, st);
            tensor *to = upload(be, DT_F32, out_total, out0);
            be->ops->reduce_stats(be, ts, n, to, out_off);
            float *out = download(be, to, DT_F32, out_total);
            check_untouched("reduce_stats", out, out_total, out_off, STATS_PER_ROW, be->ops->name);
            for (int c = 0; c < STATS_PER_ROW; c++) {
                double acc = 0.0;
                for (size_t i = 0; i < n; i++) acc += st[i * STATS_PER_ROW + (size_t)c];
                /* Non-negative terms: sum |x| = sum x. Counts of correct rows are exact. */
                double bound = c == 2 ? 0.0 : tol_sum((double)n) * acc;
                expect(fabs(out[out_off + (size_t)c] - acc) <= bound,
                       "reduce_stats n %zu (%s): column %d = %.9g, reference %.9g", n,
                       be->ops->name, c, (double)out[out_off + (size_t)c], acc);
            }
            outs[bi] = out;
            be->ops->release(be, ts);
            be->ops->release(be, to);
        }
        free(outs[0]);
        free(outs[1]);
        free(st);
        free(out0);
    }
}
END_TEST

/* ---- gather_rows -------------------------------------------------------------------------- */

START_TEST(test_gather_rows)
{
    static const int rowlens[] = {1, 3, 17, 784};
    static const int ms[] = {1, 3, 17, 255, 1000};
    const int src_rows = 1000;
    for (int ri = 0; ri < 4; ri++) {
        for (int mi = 0; mi < 5; mi++) {
            const int rowlen = rowlens[ri], m = ms[mi];
            const size_t idx_off = 5, src_count = (size_t)src_rows * (size_t)rowlen;
            const size_t dst_count = (size_t)m * (size_t)rowlen;
            uint8_t *src = random_bytes(src_count, 256, (uint64_t)(ri * 10 + mi));
            uint32_t *idx = xmalloc((idx_off + (size_t)m) * sizeof *idx, "indices");
            for (size_t i = 0; i < idx_off + (size_t)m; i++)
                idx[i] = rng_below(77, 5, i + (size_t)mi * 1000, (uint32_t)src_rows);
            idx[idx_off + (size_t)m - 1] = (uint32_t)src_rows - 1;   /* the last row too */
            /* The destination and GATHER_GUARD bytes past it poisoned with 0xA5: an unwritten
             * row, or one written past the end, shows as that byte. */
            enum { GATHER_GUARD = 19 };
            uint8_t *dst0 = xmalloc(dst_count + GATHER_GUARD, "gather poison");
            memset(dst0, 0xA5, dst_count + GATHER_GUARD);
            for (int bi = 0; bi < N_BACKENDS; bi++) {
                backend *be = backend_at(bi);
                tensor *ts = upload(be, DT_U8, src_count, src);
                tensor *ti = upload(be, DT_U32, idx_off + (size_t)m, idx);
                tensor *td = upload(be, DT_U8, dst_count + GATHER_GUARD, dst0);
                be->ops->gather_rows(be, ts, rowlen, ti, idx_off, m, td);
                uint8_t *dst = download(be, td, DT_U8, dst_count + GATHER_GUARD);
                for (size_t i = dst_count; i < dst_count + GATHER_GUARD; i++)
                    expect(dst[i] == 0xA5, "gather_rows rowlen %d m %d (%s): byte %zu past the "
                           "end written", rowlen, m, be->ops->name, i);
                for (int i = 0; i < m; i++)
                    expect(memcmp(dst + (size_t)i * (size_t)rowlen,
                                         src + (size_t)idx[idx_off + (size_t)i] * (size_t)rowlen,
                                         (size_t)rowlen) == 0,
                           "gather_rows rowlen %d m %d (%s): row %d differs", rowlen, m,
                           be->ops->name, i);
                free(dst);
                be->ops->release(be, ts);
                be->ops->release(be, ti);
                be->ops->release(be, td);
            }
            free(src);
            free(idx);
            free(dst0);
        }
    }
}
END_TEST

/* ---- update ------------------------------------------------------------------------------- */

/* Step t (from 1) of the optimizer in float64 on p, s1, s2 (backend.h's update_args);
 * the bias corrections from t, not from u's float ones. */
static void update_reference(const update_args *u, int t, double *p, const float *g,
                             double *s1, double *s2)
{
    const double lr = u->lr, mu = u->momentum, b1 = u->beta1, b2 = u->beta2, wd = u->weight_decay;
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    for (size_t i = 0; i < u->n; i++) {
        double gi = g[i];
        if (u->kind != OPT_ADAMW) gi += wd * p[i];
        switch (u->kind) {
        case OPT_SGD: p[i] -= lr * gi; break;
        case OPT_MOMENTUM: s1[i] = mu * s1[i] + gi; p[i] -= lr * s1[i]; break;
        case OPT_NESTEROV: s1[i] = mu * s1[i] + gi; p[i] -= lr * (gi + mu * s1[i]); break;
        case OPT_ADAM:
        case OPT_ADAMW: {
            s1[i] = b1 * s1[i] + (1.0 - b1) * gi;
            s2[i] = b2 * s2[i] + (1.0 - b2) * gi * gi;
            double step = (s1[i] / bc1) / (sqrt(s2[i] / bc2) + (double)u->eps);
            double decay = u->kind == OPT_ADAMW ? wd * p[i] : 0.0;
            p[i] -= lr * (step + decay);
            break;
        }
        }
    }
}

/* Fails unless |x - ref| <= 1e-5 (1 + |ref|): float state after three steps, a few ulp each. */
static void check_close(const char *what, const float *x, const double *ref, size_t n,
                        const char *be_name, int step)
{
    for (size_t i = 0; i < n; i++)
        expect(fabs(x[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i])),
               "%s (%s) after step %d: [%zu] = %.9g, reference %.9g", what, be_name, step,
               i, (double)x[i], ref[i]);
}

START_TEST(test_update)
{
    static const optimizer_kind kinds[] = {OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM,
                                           OPT_ADAMW};
    static const char *names[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
    const optimizer_kind kind = kinds[_i / 2];
    const float wd = _i % 2 ? 0.01f : 0.0f;
    for (int s = 0; s < N_COUNTS; s++) {
        const size_t n = counts[s];
        float *p0 = random_floats(n, -1.0f, 1.0f, (uint64_t)s + 200);
        float *zeros = xcalloc(n, sizeof(float), "zeros");
        float *grads[3];
        for (int t = 0; t < 3; t++)
            grads[t] = random_floats(n, -1.0f, 1.0f, (uint64_t)(s * 3 + t) + 300);
        double *p = xmalloc(n * sizeof *p, "p"), *s1 = xcalloc(n, sizeof *s1, "s1");
        double *s2 = xcalloc(n, sizeof *s2, "s2");
        for (size_t i = 0; i < n; i++) p[i] = p0[i];
        float *finals[N_BACKENDS];

        tensor *tp[N_BACKENDS], *tg[N_BACKENDS], *t1[N_BACKENDS], *t2[N_BACKENDS];
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            backend *be = backend_at(bi);
            tp[bi] = upload(be, DT_F32, n, p0);
            tg[bi] = be->ops->alloc(be, DT_F32, n, "grads");
            t1[bi] = upload(be, DT_F32, n, zeros);
            t2[bi] = upload(be, DT_F32, n, zeros);
        }
        for (int step = 1; step <= 3; step++) {
            update_args u = {.kind = kind, .n = n, .lr = 0.05f, .momentum = 0.9f, .beta1 = 0.9f,
                             .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = wd};
            adam_bias_corrections(&u, step);
            update_reference(&u, step, p, grads[step - 1], s1, s2);
            for (int bi = 0; bi < N_BACKENDS; bi++) {
                backend *be = backend_at(bi);
                be->ops->write(be, tg[bi], 0, n, grads[step - 1]);
                u.params = tp[bi];
                u.grads = tg[bi];
                u.state1 = kind == OPT_SGD ? NULL : t1[bi];
                u.state2 = kind == OPT_ADAM || kind == OPT_ADAMW ? t2[bi] : NULL;
                be->ops->update(be, &u);
                float *x = download(be, tp[bi], DT_F32, n);
                check_close(names[_i / 2], x, p, n, be->ops->name, step);
                if (kind != OPT_SGD) {
                    float *v = download(be, t1[bi], DT_F32, n);
                    check_close("first state", v, s1, n, be->ops->name, step);
                    free(v);
                }
                if (kind == OPT_ADAM || kind == OPT_ADAMW) {
                    float *v = download(be, t2[bi], DT_F32, n);
                    check_close("second state", v, s2, n, be->ops->name, step);
                    free(v);
                }
                if (step == 3) finals[bi] = x;
                else free(x);
            }
        }
        /* The two back-ends against each other, to the same tolerance. */
        for (size_t i = 0; i < n; i++)
            expect(fabs(finals[0][i] - finals[1][i]) <= 1e-5 * (1.0 + fabs(p[i])),
                   "%s: host %.9g, OpenCL %.9g at %zu", names[_i / 2],
                   (double)finals[0][i], (double)finals[1][i], i);
        for (int bi = 0; bi < N_BACKENDS; bi++) {
            backend *be = backend_at(bi);
            be->ops->release(be, tp[bi]);
            be->ops->release(be, tg[bi]);
            be->ops->release(be, t1[bi]);
            be->ops->release(be, t2[bi]);
            free(finals[bi]);
        }
        for (int t = 0; t < 3; t++) free(grads[t]);
        free(p0);
        free(zeros);
        free(p);
        free(s1);
        free(s2);
    }
}
END_TEST

/* ---- device name, profile ----------------------------------------------------------------- */

START_TEST(test_device_name)
{
    ck_assert_ptr_null(backend_device_name(host_be));
    const char *name = backend_device_name(cl_be);
    ck_assert_ptr_nonnull(name);
    ck_assert_int_gt((int)strlen(name), 0);
    backend_cl_print_profile(host_be, stderr);   /* a no-op for the host */
}
END_TEST

Suite *backend_suite(void)
{
    Suite *s = suite_create("backend");

    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_gemm, 0, 16);
    tcase_add_test(tc, test_gemm_k0);
    tcase_add_test(tc, test_gemm_u8_rewrite);
    tcase_add_loop_test(tc, test_bias_act, 0, 3);
    tcase_add_loop_test(tc, test_act_backward, 0, 3);
    tcase_add_test(tc, test_dropout);
    tcase_add_loop_test(tc, test_softmax_xent, 0, 2);
    tcase_add_test(tc, test_col_sum);
    tcase_add_test(tc, test_reduce_stats);
    tcase_add_test(tc, test_gather_rows);
    tcase_add_loop_test(tc, test_update, 0, 10);
    tcase_add_test(tc, test_device_name);
    suite_add_tcase(s, tc);

    /* CLBlast for every gemm, uint8 operands through their float32 copies. */
    TCase *tb = tcase_create("clblast");
    tcase_add_checked_fixture(tb, setup_clblast, teardown);
    tcase_set_timeout(tb, 300);
    tcase_add_loop_test(tb, test_gemm, 0, 16);
    tcase_add_test(tb, test_gemm_k0);
    tcase_add_test(tb, test_gemm_u8_rewrite);
    suite_add_tcase(s, tb);
    return s;
}
