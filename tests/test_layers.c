/* test_layers.c: the layer products (linear_forward, linear_weights, linear_input) of both
 * back-ends, every path of the OpenCL plans (sparse, fused, tiled, CLBlast, through
 * --kernels cpu|gpu and --gemm clblast), against float64 sums computed here, on awkward
 * shapes, dense and sparse images, read in order or through a row index, outputs poisoned
 * with NaN first; and the plans themselves. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_layers.h"
#include "cl_runtime.h"
#include "rng.h"
#include "clblast_check.h"
#include "support.h"
#include "util.h"

/* m rows, k inputs, n outputs; density of nonzero pixels (1 = dense, 0.2 = MNIST-like);
 * holes: every third image and every fifth pixel column blank (the sparse copies' empty rows
 * and columns). */
typedef struct { int m, k, n; double density; bool use_idx; activation act; bool holes; } shape;
static const shape shapes[] = {
    {1, 1, 1, 0.2, false, ACT_RELU, false},      {3, 17, 10, 0.2, true, ACT_SIGMOID, false},
    {17, 784, 10, 0.2, false, ACT_RELU, false},  {255, 25, 3, 1.0, true, ACT_NONE, false},
    {1000, 784, 33, 0.2, true, ACT_RELU, false}, {70, 1000, 17, 0.9, false, ACT_SIGMOID, false},
    {5000, 49, 7, 0.3, false, ACT_RELU, false},  {66000, 3, 2, 0.5, true, ACT_RELU, false},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

/* CLTRAIN_TEST_QUICK=1 (make test-oclgrind, a simulator thousands of times slower): the first
 * four shapes only (every path, awkward sizes, with and without the index), no CLBlast. */
static bool quick(void) { return test_quick(); }


/* Whether the device under test is a CPU (its auto family is then the CPU one). */
typedef struct {
    uint8_t *px;          /* rows_total x k */
    float *xf, *w, *b, *dz, *aprev;
    uint32_t *idx;
    int rows_total;
} inputs;

static void make_inputs(const shape *s, inputs *in, int seed)
{
    in->rows_total = s->m + 5;
    size_t px = (size_t)in->rows_total * (size_t)s->k;
    in->px = xmalloc(px, "px");
    in->xf = xmalloc(px * sizeof(float), "xf");
    for (size_t i = 0; i < px; i++) {
        bool on = rng_uniform((uint64_t)seed, 1, i) < s->density;
        in->px[i] = on ? (uint8_t)(1 + rng_below((uint64_t)seed, 2, i, 255)) : 0;
        in->xf[i] = rng_uniform((uint64_t)seed, 3, i) * 2.0f - 1.0f;
        if (s->holes && ((i / (size_t)s->k) % 3 == 1 || (i % (size_t)s->k) % 5 == 2)) in->px[i] = 0;
    }
    size_t nk = (size_t)s->n * (size_t)s->k, mn = (size_t)s->m * (size_t)s->n, mk = (size_t)s->m * (size_t)s->k;
    in->w = xmalloc(nk * sizeof(float), "w");
    for (size_t i = 0; i < nk; i++) in->w[i] = rng_uniform((uint64_t)seed, 4, i) - 0.5f;
    in->b = xmalloc((size_t)s->n * sizeof(float), "b");
    for (int i = 0; i < s->n; i++) in->b[i] = rng_uniform((uint64_t)seed, 5, (uint64_t)i) - 0.5f;
    in->dz = xmalloc(mn * sizeof(float), "dz");
    for (size_t i = 0; i < mn; i++) in->dz[i] = rng_uniform((uint64_t)seed, 6, i) - 0.5f;
    in->aprev = xmalloc(mk * sizeof(float), "aprev");
    for (size_t i = 0; i < mk; i++) {
        float u = rng_uniform((uint64_t)seed, 7, i);
        in->aprev[i] = s->act == ACT_SIGMOID ? u : u - 0.5f;   /* relu: half the units off */
    }
    in->idx = xmalloc((size_t)s->m * sizeof(uint32_t), "idx");
    for (int r = 0; r < s->m; r++) in->idx[r] = rng_below((uint64_t)seed, 8, (uint64_t)r, (uint32_t)in->rows_total);
}

static void free_inputs(inputs *in)
{
    free(in->px); free(in->xf); free(in->w); free(in->b); free(in->dz); free(in->aprev); free(in->idx);
}

static tensor *upload(backend *be, dtype t, size_t n, const void *src)
{
    tensor *x = be->ops->alloc(be, t, n, "test");
    be->ops->write(be, x, 0, n, src);
    return x;
}

static tensor *poisoned(backend *be, size_t n)
{
    float *nan = xmalloc(n * sizeof(float), "nan");
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    tensor *t = upload(be, DT_F32, n, nan);
    free(nan);
    return t;
}

/* Elements allocated past every output and poisoned with it: a write past the end shows. */
#define GUARD 17

static float *download(backend *be, tensor *t, size_t n)
{
    float *out = xmalloc(n * sizeof(float), "out");
    be->ops->read(be, t, 0, n, out);
    return out;
}

/* Fails unless the GUARD elements after the first n of t still hold NaN. */
static void check_guard(backend *be, tensor *t, size_t n, const char *what)
{
    float *v = download(be, t, n + GUARD);
    for (size_t i = n; i < n + GUARD; i++)
        ck_assert_msg(isnan(v[i]), "%s (%s) wrote past its end: element %zu = %g", what,
                      be->ops->name, i, (double)v[i]);
    free(v);
}

/* |got - want| <= * scale elementwise, scale the sum of |terms| of each output (float32
 * accumulation over k terms errs by at most ~k * 6e-8 of it; 1e-5 covers k up to ~150 with a
 * margin, and for longer sums the error grows like sqrt(k) in practice). */
static void check_close(const char *what, const float *got, const double *want, const double *scale,
                        size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        ck_assert_msg(err <= tol * (scale[i] + 1e-6), "%s[%zu]: %.9g, want %.9g (scale %.3g)", what, i,
                      (double)got[i], want[i], scale[i]);
    }
}

static double act_of(double z, activation a)
{
    return a == ACT_RELU ? (z > 0 ? z : 0) : a == ACT_SIGMOID ? 1.0 / (1.0 + exp(-z)) : z;
}

/* Runs the three products on one back-end for shape s, with pixels (u8) or floats as X,
 * under `plan` (NULL: the back-end plans each call). */
static void check_plan(backend *be, const shape *s, bool pixels, const layer_plan *plan)
{
    inputs in;
    make_inputs(s, &in, 11 + s->m);
    const int m = s->m, k = s->k, n = s->n;
    size_t px = (size_t)in.rows_total * (size_t)k;
    tensor *x;
    if (pixels) {   /* as the trainer uploads images: their sparse copy from these pixels */
        x = be->ops->alloc(be, DT_U8, px, "test");
        be->ops->write_images(be, x, k, in.px);
    } else {
        x = upload(be, DT_F32, px, in.xf);
    }
    tensor *w = upload(be, DT_F32, (size_t)n * (size_t)k, in.w), *b = upload(be, DT_F32, (size_t)n, in.b);
    tensor *idx = upload(be, DT_U32, (size_t)m, in.idx);
    tensor *dz = upload(be, DT_F32, (size_t)m * (size_t)n, in.dz);
    tensor *ap = upload(be, DT_F32, (size_t)m * (size_t)k, in.aprev);
    const size_t row_off = 2;   /* without the index, rows start at row 2 of x */
    float alpha = pixels ? 1.0f / 255.0f : 1.0f;
    double *want = xmalloc(sizeof(double) * (size_t)(m > n ? m : n) * (size_t)(k > n ? k : n), "want");
    double *scale = xmalloc(sizeof(double) * (size_t)(m > n ? m : n) * (size_t)(k > n ? k : n), "scale");

    /* forward */
    tensor *out = poisoned(be, (size_t)m * (size_t)n + GUARD);
    linear_forward_args fa = {.plan = plan, .m = m, .k = k, .n = n, .x = x, .x_off = s->use_idx ? 0 : row_off * (size_t)k,
                              .idx = s->use_idx ? idx : NULL, .alpha = alpha, .w = w, .b = b,
                              .act = s->act, .out = out};
    be->ops->linear_forward(be, &fa);
    float *got = download(be, out, (size_t)m * (size_t)n);
    for (int r = 0; r < m; r++) {
        size_t row = s->use_idx ? in.idx[r] : row_off + (size_t)r;
        for (int j = 0; j < n; j++) {
            double acc = 0, mag = 0;
            for (int p = 0; p < k; p++) {
                double xv = pixels ? in.px[row * (size_t)k + (size_t)p] * (double)alpha : in.xf[row * (size_t)k + (size_t)p];
                acc += xv * in.w[(size_t)j * (size_t)k + (size_t)p];
                mag += fabs(xv * in.w[(size_t)j * (size_t)k + (size_t)p]);
            }
            want[(size_t)r * (size_t)n + (size_t)j] = act_of(acc + in.b[j], s->act);
            scale[(size_t)r * (size_t)n + (size_t)j] = mag + fabs(in.b[j]);
        }
    }
    check_close("forward", got, want, scale, (size_t)m * (size_t)n, 1e-5);
    check_guard(be, out, (size_t)m * (size_t)n, "linear_forward");
    free(got);
    be->ops->release(be, out);

    /* weight and bias gradients */
    tensor *dw = poisoned(be, (size_t)n * (size_t)k + GUARD), *db = poisoned(be, (size_t)n + 3 + GUARD);
    linear_weights_args wa = {.plan = plan, .m = m, .k = k, .n = n, .dz = dz, .x = x,
                              .x_off = s->use_idx ? 0 : row_off * (size_t)k, .idx = s->use_idx ? idx : NULL,
                              .alpha = alpha, .dw = dw, .db = db, .db_off = 3};
    be->ops->linear_weights(be, &wa);
    got = download(be, dw, (size_t)n * (size_t)k);
    for (int j = 0; j < n; j++)
        for (int p = 0; p < k; p++) {
            double acc = 0, mag = 0;
            for (int r = 0; r < m; r++) {
                size_t row = s->use_idx ? in.idx[r] : row_off + (size_t)r;
                double xv = pixels ? in.px[row * (size_t)k + (size_t)p] * (double)alpha : in.xf[row * (size_t)k + (size_t)p];
                acc += in.dz[(size_t)r * (size_t)n + (size_t)j] * xv;
                mag += fabs(in.dz[(size_t)r * (size_t)n + (size_t)j] * xv);
            }
            want[(size_t)j * (size_t)k + (size_t)p] = acc;
            scale[(size_t)j * (size_t)k + (size_t)p] = mag;
        }
    check_close("dW", got, want, scale, (size_t)n * (size_t)k, 1e-5);
    check_guard(be, dw, (size_t)n * (size_t)k, "linear_weights dW");
    check_guard(be, db, (size_t)n + 3, "linear_weights db");
    free(got);
    float *gb = download(be, db, (size_t)n + 3);
    for (int j = 0; j < n; j++) {
        double acc = 0, mag = 0;
        for (int r = 0; r < m; r++) {
            acc += in.dz[(size_t)r * (size_t)n + (size_t)j];
            mag += fabs(in.dz[(size_t)r * (size_t)n + (size_t)j]);
        }
        want[j] = acc;
        scale[j] = mag;
    }
    check_close("db", gb + 3, want, scale, (size_t)n, 1e-5);
    ck_assert_msg(isnan(gb[0]) && isnan(gb[1]) && isnan(gb[2]), "db wrote before its offset");
    free(gb);
    be->ops->release(be, dw);
    be->ops->release(be, db);

    /* input gradient, with and without dropout's scale */
    float a_scale = s->act == ACT_SIGMOID ? 0.75f : 1.0f;
    tensor *da = poisoned(be, (size_t)m * (size_t)k + GUARD);
    linear_input_args ia = {.plan = plan, .m = m, .k = k, .n = n, .dz = dz, .w = w, .a_prev = ap, .act = s->act,
                            .a_scale = a_scale, .da = da};
    be->ops->linear_input(be, &ia);
    got = download(be, da, (size_t)m * (size_t)k);
    for (int r = 0; r < m; r++)
        for (int p = 0; p < k; p++) {
            double acc = 0, mag = 0;
            for (int j = 0; j < n; j++) {
                acc += (double)in.dz[(size_t)r * (size_t)n + (size_t)j] * in.w[(size_t)j * (size_t)k + (size_t)p];
                mag += fabs((double)in.dz[(size_t)r * (size_t)n + (size_t)j] * in.w[(size_t)j * (size_t)k + (size_t)p]);
            }
            double a = (double)(a_scale * in.aprev[(size_t)r * (size_t)k + (size_t)p]);
            double g = s->act == ACT_RELU ? (a > 0 ? 1.0 : 0.0) : s->act == ACT_SIGMOID ? a * (1 - a) : 1.0;
            want[(size_t)r * (size_t)k + (size_t)p] = acc * g;
            scale[(size_t)r * (size_t)k + (size_t)p] = mag * fabs(g);
        }
    check_close("dA", got, want, scale, (size_t)m * (size_t)k, 1e-5);
    check_guard(be, da, (size_t)m * (size_t)k, "linear_input");
    free(got);
    be->ops->release(be, da);

    tensor *all[] = {x, w, b, idx, dz, ap};
    for (size_t i = 0; i < 6; i++) be->ops->release(be, all[i]);
    free(want);
    free(scale);
    free_inputs(&in);
}

static void check_backend(backend *be, const shape *s, bool pixels)
{
    check_plan(be, s, pixels, NULL);
}

START_TEST(test_device_layers_pixels)
{
    backend *be = test_cl_backend(GEMM_BUILTIN);
    check_backend(be, &shapes[_i], true);
    backend_destroy(be);
}
END_TEST

START_TEST(test_device_layers_floats)
{
    backend *be = test_cl_backend(GEMM_BUILTIN);
    check_backend(be, &shapes[_i], false);
    backend_destroy(be);
}
END_TEST

/* --gemm clblast: CLBlast's SGEMM with the element-wise kernels around it (also the path of
 * GPUs with the builtin gemm). */
START_TEST(test_device_layers_clblast)
{
    backend *be = test_clblast_backend();
    check_backend(be, &shapes[_i], true);
    check_backend(be, &shapes[_i], false);
    assert_clblast_ran(be);
    backend_destroy(be);
}
END_TEST

/* --kernels gpu: gemm.cl's shape-fitted tiles with the element-wise kernels (the default path
 * of GPUs), on whatever device runs the suite. */
START_TEST(test_device_layers_gpu)
{
    backend *be = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_GPU);
    check_backend(be, &shapes[_i], true);
    check_backend(be, &shapes[_i], false);
    backend_destroy(be);
}
END_TEST

/* --kernels cpu forced, on whatever device runs the suite (on a CPU, the default path again). */
START_TEST(test_device_layers_cpu)
{
    backend *be = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    check_backend(be, &shapes[_i], true);
    check_backend(be, &shapes[_i], false);
    backend_destroy(be);
}
END_TEST

/* The CPU family's weight gradient from the blocked CSC copy (rows in order), on awkward
 * sizes: blank images and pixel columns, all images blank, ranges that start and end inside
 * a block of CL_SPARSE_BLOCK_ROWS images or span whole ones, outputs not a multiple of 16
 * (33: three vectors per work-item). The profile proves the CSC kernel ran. */
START_TEST(test_device_layers_csc)
{
    static const shape csc_shapes[] = {
        {19, 30, 7, 0.25, false, ACT_NONE, true},    {5, 17, 17, 0.2, false, ACT_RELU, true},
        {9, 40, 3, 0.0, false, ACT_NONE, false}   ,  {2100, 100, 33, 0.3, false, ACT_RELU, true},
        {4500, 50, 10, 0.2, false, ACT_RELU, true},  {37, 784, 40, 0.0, false, ACT_RELU, false},
    };
    const shape *s = &csc_shapes[_i];
    const char *d = getenv("CLTRAIN_TEST_DEVICE");
    backend_cl_options o = {.gemm = GEMM_BUILTIN, .kernels = KERNELS_CPU, .profiling = true};
    backend *be = backend_cl_create(d && *d ? atoi(d) : 0, &o);
    check_backend(be, s, true);
    assert_kernel_ran(be, "sparse_weights_csc", "no CSC weight gradient ran");
    backend_destroy(be);
}
END_TEST

/* A big GPU's traits: the plans a many-core device gets (split-K on the batch). */
static cl_device_traits big_gpu(void)
{
    cl_device_traits d = {.cpu = false, .max_wg = 1024, .local_mem = 48 * 1024,
                          .compute_units = 132, .gemm = GEMM_BUILTIN, .family = KERNELS_AUTO};
    return d;
}

/* The plan of a big GPU, carried out on this device: the weight gradient split over slices of
 * the batch and summed by the second pass. Shapes whose batch allows a split only. */
START_TEST(test_device_layers_split_k)
{
    static const shape split_shapes[] = {
        {5000, 49, 7, 0.3, false, ACT_RELU, false}, {3000, 784, 10, 0.2, true, ACT_SIGMOID, false},
        {1100, 17, 3, 1.0, false, ACT_NONE, false},
    };
    const shape *s = &split_shapes[_i];
    cl_device_traits d = big_gpu();
    backend *be = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_GPU);
    for (int pixels = 0; pixels < 2; pixels++) {
        layer_shape ls = {.rows = s->m, .k = s->k, .n = s->n, .input = pixels ? DT_U8 : DT_F32,
                          .density = s->density, .indexed = s->use_idx, .act = s->act};
        layer_plan p;
        cl_layer_plan_choose(&d, &ls, &p);
        if (!pixels && s->use_idx) continue;   /* float rows through an index: fused, tested above */
        ck_assert_int_eq(p.wgt, LP_TILED);
        ck_assert_msg(p.g_wgt.split > 1, "%dx%d over %d rows: split %d", s->n, s->k, s->m, p.g_wgt.split);
        check_plan(be, s, pixels, &p);
    }
    backend_destroy(be);
}
END_TEST

/* The plans: thin products get thin tiles, the full batch's weight gradient is split on a big
 * GPU, a CPU gets the sparse first layer, --gemm clblast means CLBlast everywhere. */
START_TEST(test_plans)
{
    cl_device_traits gpu = big_gpu();
    layer_shape first = {.rows = 60000, .k = 784, .n = 10, .input = DT_U8, .density = 0.19,
                         .act = ACT_RELU};
    layer_plan p;
    cl_layer_plan_choose(&gpu, &first, &p);
    ck_assert_int_eq(p.fwd, LP_TILED);
    ck_assert_msg(p.g_fwd.t.tsn <= 16, "10 outputs in a %d-wide tile", p.g_fwd.t.tsn);
    ck_assert_msg(p.g_wgt.t.tsm <= 16, "10 outputs in a %d-row tile", p.g_wgt.t.tsm);
    long groups = (long)((10 + p.g_wgt.t.tsm - 1) / p.g_wgt.t.tsm) *
                  ((784 + p.g_wgt.t.tsn - 1) / p.g_wgt.t.tsn) * p.g_wgt.split;
    ck_assert_msg(groups >= 132, "the full batch's weight gradient runs %ld work-groups", groups);
    ck_assert_int_le(p.cs_cols, 16);

    layer_shape thin = {.rows = 37, .k = 784, .n = 7, .input = DT_U8, .density = 0.19,
                        .indexed = true, .act = ACT_SIGMOID};
    cl_layer_plan_choose(&gpu, &thin, &p);
    ck_assert_msg(p.g_fwd.t.tsm <= 64 && p.g_fwd.t.tsn <= 8, "37x7 in a %dx%d tile", p.g_fwd.t.tsm,
                  p.g_fwd.t.tsn);
    ck_assert_int_eq(p.g_wgt.split, 1);   /* 37 rows: nothing to split */

    cl_device_traits cpu = {.cpu = true, .max_wg = 4096, .local_mem = 1 << 20, .compute_units = 2,
                            .gemm = GEMM_BUILTIN, .family = KERNELS_AUTO};
    cl_layer_plan_choose(&cpu, &first, &p);
    ck_assert_int_eq(p.fwd, LP_SPARSE);
    ck_assert_int_eq(p.wgt, LP_SPARSE);
    ck_assert(p.sparse.csc);   /* the full batch reads its rows in order */
    first.indexed = true;
    cl_layer_plan_choose(&cpu, &first, &p);
    ck_assert(!p.sparse.csc);  /* shuffled rows: the blocks do not follow them */
    first.indexed = false;
    first.density = 0.9;
    cl_layer_plan_choose(&cpu, &first, &p);
    ck_assert_int_eq(p.fwd, LP_FUSED);
    cpu.family = KERNELS_GPU;
    cl_layer_plan_choose(&cpu, &first, &p);
    ck_assert_int_eq(p.fwd, LP_TILED);
    cpu.gemm = GEMM_CLBLAST;
    cl_layer_plan_choose(&cpu, &first, &p);
    ck_assert_int_eq(p.fwd, LP_CLBLAST);
    ck_assert_int_eq(p.inp, LP_CLBLAST);

    /* A device that runs 64 work-items and has 8 KiB of local memory gets tiles that fit. */
    cl_device_traits small = {.cpu = false, .max_wg = 64, .local_mem = 8192, .compute_units = 4,
                              .gemm = GEMM_BUILTIN, .family = KERNELS_AUTO};
    gemm_plan g = cl_layer_gemm_plan(&small, 4096, 4096, 4096);
    ck_assert_int_le((g.t.tsm / g.t.wptm) * (g.t.tsn / g.t.wptn), 64);
    ck_assert_int_le(g.t.tsk * (g.t.tsm + g.t.tsn + 2) * 4, 8192);

    char line[512];
    cl_layer_plan_describe(&p, line, sizeof line);
    ck_assert_msg(strstr(line, "784->10") && strstr(line, "clblast"), "%s", line);
}
END_TEST

START_TEST(test_host_layers)
{
    backend *be = backend_host_create();
    check_backend(be, &shapes[_i], true);
    check_backend(be, &shapes[_i], false);
    backend_destroy(be);
}
END_TEST

Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("fused");
    tcase_set_timeout(tc, 300);
    /* Quick mode (Oclgrind, tests/support.h): the first four shapes, the last split, no
     * CLBlast; tests that do not run are not registered rather than passed. */
    int shapes_run = quick() ? 4 : N_SHAPES;
    tcase_add_loop_test(tc, test_device_layers_pixels, 0, shapes_run);
    tcase_add_loop_test(tc, test_device_layers_floats, 0, shapes_run);
    if (!quick()) tcase_add_loop_test(tc, test_device_layers_clblast, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_device_layers_gpu, 0, shapes_run);
    tcase_add_loop_test(tc, test_device_layers_cpu, 0, shapes_run);
    tcase_add_loop_test(tc, test_device_layers_split_k, quick() ? 2 : 0, 3);
    tcase_add_loop_test(tc, test_device_layers_csc, 0, quick() ? 3 : 6);
    tcase_add_test(tc, test_plans);
    tcase_add_loop_test(tc, test_host_layers, 0, shapes_run);
    suite_add_tcase(s, tc);
    return s;
}
