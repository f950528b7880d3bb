/* backend_host.c: the operation table in plain C, float32 storage with float64 accumulation.
 * The reference for every test and the CPU baseline of the benchmark (`--device host`). */
#include "backend.h"
#include "backend_testing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "softmax.h"
#include "util.h"

struct tensor {
    dtype type;
    size_t count;
    void *data;
};

static size_t dtype_size(dtype t) { return t == DT_U8 ? 1 : 4; }

static float *F(const tensor *t, size_t off) { return (float *)t->data + off; }

static tensor *host_alloc(backend *be, dtype type, size_t count, const char *name)
{
    (void)be;
    size_t bytes;
    if (!mul_size(count, dtype_size(type), &bytes))
        die(EXIT_RUNTIME, "tensor '%s' is too large (%zu elements)", name, count);
    tensor *t = xmalloc(sizeof *t, name);
    t->type = type;
    t->count = count;
    t->data = xmalloc(bytes, name);
    return t;
}

static void host_release(backend *be, tensor *t)
{
    (void)be;
    if (!t) return;
    free(t->data);
    free(t);
}

static void host_write(backend *be, tensor *t, size_t off, size_t count, const void *src)
{
    (void)be;
    size_t es = dtype_size(t->type);
    memcpy((char *)t->data + off * es, src, count * es);
}

static void host_read(backend *be, const tensor *t, size_t off, size_t count, void *dst)
{
    (void)be;
    size_t es = dtype_size(t->type);
    memcpy(dst, (const char *)t->data + off * es, count * es);
}

/* Element (r, c) of op(X) where X is stored with row stride ld, as float. */
static inline float elem(const tensor *x, size_t off, int ld, bool trans, int r, int c)
{
    size_t i = trans ? (size_t)c * (size_t)ld + (size_t)r : (size_t)r * (size_t)ld + (size_t)c;
    if (x->type == DT_U8) return (float)((const uint8_t *)x->data)[off + i];
    return ((const float *)x->data)[off + i];
}

/* C[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C, one output row at a time:
 * acc[:] += op(A)(i,p) * op(B)(p,:) in double, so the inner loop runs along a contiguous row of
 * op(B) (packed to float when B is transposed). Zero entries of op(A) (ReLU outputs, blank
 * pixels) add nothing and are skipped. */
static void host_gemm(backend *be, const gemm_args *g)
{
    (void)be;
    const size_t n = (size_t)g->n;
    float *packed = NULL;
    if (g->trans_b) {
        packed = xmalloc((size_t)g->k * n * sizeof(float), "gemm panel");
        for (int p = 0; p < g->k; p++)
            for (int j = 0; j < g->n; j++)
                packed[(size_t)p * n + (size_t)j] = elem(g->b, g->b_off, g->ldb, true, p, j);
    }
    double *acc = xmalloc(n * sizeof(double), "gemm accumulator");
    for (int i = 0; i < g->m; i++) {
        memset(acc, 0, n * sizeof(double));
        for (int p = 0; p < g->k; p++) {
            double a = (double)elem(g->a, g->a_off, g->lda, g->trans_a, i, p);
            if (a == 0.0) continue;
            if (packed) {
                const float *brow = packed + (size_t)p * n;
                for (size_t j = 0; j < n; j++) acc[j] += a * (double)brow[j];
            } else if (g->b->type == DT_U8) {
                const uint8_t *brow = (const uint8_t *)g->b->data + g->b_off + (size_t)p * (size_t)g->ldb;
                for (size_t j = 0; j < n; j++) acc[j] += a * (double)brow[j];
            } else {
                const float *brow = F(g->b, g->b_off + (size_t)p * (size_t)g->ldb);
                for (size_t j = 0; j < n; j++) acc[j] += a * (double)brow[j];
            }
        }
        float *crow = F(g->c, g->c_off + (size_t)i * (size_t)g->ldc);
        for (size_t j = 0; j < n; j++) {
            double v = (double)g->alpha * acc[j];
            if (g->beta != 0.0f) v += (double)g->beta * (double)crow[j];
            crow[j] = (float)v;
        }
    }
    free(acc);
    free(packed);
}

static inline float activate(float z, activation act)
{
    switch (act) {
    case ACT_RELU: return z > 0.0f ? z : 0.0f;
    case ACT_SIGMOID: return (float)(1.0 / (1.0 + exp(-(double)z)));
    default: return z;
    }
}

static void host_bias_act(backend *be, tensor *za, size_t za_off, const tensor *bias,
                          size_t b_off, int rows, int cols, activation act)
{
    (void)be;
    const float *b = F(bias, b_off);
    for (int r = 0; r < rows; r++) {
        float *z = F(za, za_off + (size_t)r * (size_t)cols);
        for (int c = 0; c < cols; c++) z[c] = activate(z[c] + b[c], act);
    }
}

static void host_act_backward(backend *be, tensor *d, size_t d_off, const tensor *a,
                              size_t a_off, size_t count, activation act)
{
    (void)be;
    float *dd = F(d, d_off);
    const float *aa = F(a, a_off);
    for (size_t i = 0; i < count; i++) {
        if (act == ACT_RELU) dd[i] = aa[i] > 0.0f ? dd[i] : 0.0f;
        else if (act == ACT_SIGMOID) dd[i] = dd[i] * (aa[i] * (1.0f - aa[i]));
    }
}

static void host_softmax_xent(backend *be, tensor *z, size_t z_off, int rows, int classes,
                              const tensor *labels, size_t l_off, float scale, tensor *stats,
                              size_t stat_row0, bool want_grad)
{
    (void)be;
    const uint8_t *lab = (const uint8_t *)labels->data + l_off;
    float *st = F(stats, stat_row0 * STATS_PER_ROW);
    for (int r = 0; r < rows; r++) {
        float *zr = F(z, z_off + (size_t)r * (size_t)classes);
        int y = lab[r], arg;
        double lse = softmax_lse(zr, classes, &arg);
        double sq = 0.0;
        st[(size_t)r * STATS_PER_ROW + 0] = (float)(lse - (double)zr[y]);
        for (int c = 0; c < classes; c++) {
            double p = exp((double)zr[c] - lse);
            double e = p - (c == y ? 1.0 : 0.0);
            sq += e * e;
            if (want_grad) zr[c] = (float)(e * (double)scale);
        }
        st[(size_t)r * STATS_PER_ROW + 1] = (float)sq;
        st[(size_t)r * STATS_PER_ROW + 2] = arg == y ? 1.0f : 0.0f;
    }
}

static void host_col_sum(backend *be, const tensor *dz, size_t dz_off, int rows, int cols,
                         float alpha, tensor *db, size_t db_off)
{
    (void)be;
    for (int c = 0; c < cols; c++) {
        double acc = 0.0;
        for (int r = 0; r < rows; r++) acc += (double)F(dz, dz_off)[(size_t)r * (size_t)cols + (size_t)c];
        F(db, db_off)[c] = (float)((double)alpha * acc);
    }
}

static void host_reduce_stats(backend *be, const tensor *stats, size_t n, tensor *out,
                              size_t out_off)
{
    (void)be;
    for (int c = 0; c < STATS_PER_ROW; c++) {
        double acc = 0.0;
        for (size_t r = 0; r < n; r++) acc += (double)F(stats, 0)[r * STATS_PER_ROW + (size_t)c];
        F(out, out_off)[c] = (float)acc;
    }
}

static void host_gather_rows(backend *be, const tensor *src, int rowlen, const tensor *idx,
                             size_t idx_off, int m, tensor *dst)
{
    (void)be;
    const uint32_t *ix = (const uint32_t *)idx->data + idx_off;
    for (int i = 0; i < m; i++)
        memcpy((uint8_t *)dst->data + (size_t)i * (size_t)rowlen,
               (const uint8_t *)src->data + (size_t)ix[i] * (size_t)rowlen, (size_t)rowlen);
}

static void host_dropout(backend *be, tensor *x, size_t off, size_t count, float p,
                         float scale, uint64_t seed, uint64_t stream)
{
    (void)be;
    float *v = F(x, off);
    for (size_t i = 0; i < count; i++)
        v[i] = rng_uniform(seed, stream, i) >= p ? v[i] * scale : 0.0f;
}

static void host_augment(backend *be, const tensor *src, const tensor *idx, size_t idx_off,
                         int m, int width, int height, const augment_spec *spec, uint64_t seed,
                         uint64_t stream, uint64_t pos0, tensor *dst)
{
    (void)be;
    size_t np = (size_t)width * (size_t)height;
    const uint8_t *px = (const uint8_t *)src->data;
    if (!idx) px += idx_off * np;
    augment_reference(px, idx ? (const uint32_t *)idx->data + idx_off : NULL, m, width, height,
                      spec, seed, stream, pos0, (uint8_t *)dst->data);
}

static void host_update(backend *be, const update_args *u)
{
    (void)be;
    float *p = F(u->params, 0), *s1 = u->state1 ? F(u->state1, 0) : NULL;
    float *s2 = u->state2 ? F(u->state2, 0) : NULL;
    const float *g = F(u->grads, 0);
    if ((u->kind == OPT_ADAM || u->kind == OPT_ADAMW) && !(u->bc1 > 0.0f && u->bc2 > 0.0f))
        die(EXIT_RUNTIME, "BUG: host back-end, update: Adam's bias corrections must be positive "
            "(adam_bias_corrections)");
    for (size_t i = 0; i < u->n; i++) {
        float gi = g[i];
        if (u->kind != OPT_ADAMW) gi += u->weight_decay * p[i];
        switch (u->kind) {
        case OPT_SGD: p[i] -= u->lr * gi; break;
        case OPT_MOMENTUM: s1[i] = u->momentum * s1[i] + gi; p[i] -= u->lr * s1[i]; break;
        case OPT_NESTEROV:
            s1[i] = u->momentum * s1[i] + gi;
            p[i] -= u->lr * (gi + u->momentum * s1[i]);
            break;
        case OPT_ADAM:
        case OPT_ADAMW: {
            if (u->kind == OPT_ADAMW) p[i] -= u->lr * u->weight_decay * p[i];
            s1[i] = u->beta1 * s1[i] + (1.0f - u->beta1) * gi;
            s2[i] = u->beta2 * s2[i] + (1.0f - u->beta2) * gi * gi;
            float mhat = s1[i] / u->bc1, vhat = s2[i] / u->bc2;
            p[i] -= u->lr * mhat / (sqrtf(vhat) + u->eps);
            break;
        }
        }
    }
}

/* Pixel or float at element i of x. */
static inline double xval(const tensor *x, size_t i)
{
    return x->type == DT_U8 ? (double)((const uint8_t *)x->data)[i] : (double)F(x, 0)[i];
}

/* Element offset of X's row r (through the index when there is one). */
static inline size_t x_row_off(const tensor *idx, size_t idx_off, size_t x_off, int r, int k)
{
    size_t row = idx ? ((const uint32_t *)idx->data)[idx_off + (size_t)r] : (size_t)r;
    return x_off + row * (size_t)k;
}

/* Dies unless t is a `type` tensor holding elements [off, off + count): the OpenCL back-end's
 * checks, so that a caller's mistake fails the same way on both. */
static void check_tensor(const char *op, const char *arg, const tensor *t, dtype type, size_t off,
                         size_t count)
{
    if (!t) die(EXIT_RUNTIME, "BUG: host back-end, %s: tensor %s is NULL", op, arg);
    if (t->type != type) die(EXIT_RUNTIME, "BUG: host back-end, %s: tensor %s has the wrong type", op, arg);
    if (off > t->count || count > t->count - off)
        die(EXIT_RUNTIME, "BUG: host back-end, %s: elements [%zu, %zu + %zu) of tensor %s (%zu elements)",
            op, off, off, count, arg, t->count);
}

/* The rows of X a layer product reads: through the index, or [x_off, x_off + m k). */
static void check_rows(const char *op, const tensor *x, size_t x_off, const tensor *idx,
                       size_t idx_off, int m, int k)
{
    if (m < 0 || k < 1) die(EXIT_RUNTIME, "BUG: host back-end, %s: bad dimensions", op);
    if (!x) die(EXIT_RUNTIME, "BUG: host back-end, %s: tensor x is NULL", op);
    if (x->type != DT_U8 && x->type != DT_F32)
        die(EXIT_RUNTIME, "BUG: host back-end, %s: x is neither pixels nor floats", op);
    if (!idx) {
        check_tensor(op, "x", x, x->type, x_off, (size_t)m * (size_t)k);
        return;
    }
    check_tensor(op, "idx", idx, DT_U32, idx_off, (size_t)m);
    size_t rows = x->count / (size_t)k;
    for (int r = 0; r < m; r++)
        if (((const uint32_t *)idx->data)[idx_off + (size_t)r] >= rows)
            die(EXIT_RUNTIME, "BUG: host back-end, %s: row index %d is past x's %zu rows", op, r, rows);
}

static void host_linear_forward(backend *be, const linear_forward_args *a)
{
    (void)be;
    const tensor *x = a->x, *idx = a->idx, *w = a->w, *b = a->b;
    size_t x_off = a->x_off, idx_off = a->idx_off, w_off = a->w_off, b_off = a->b_off;
    int m = a->m, k = a->k, n = a->n;
    float alpha = a->alpha;
    activation act = a->act;
    tensor *out = a->out;
    check_rows("linear_forward", x, x_off, idx, idx_off, m, k);
    if (n < 1) die(EXIT_RUNTIME, "BUG: host back-end, linear_forward: bad dimensions");
    check_tensor("linear_forward", "w", w, DT_F32, w_off, (size_t)n * (size_t)k);
    check_tensor("linear_forward", "b", b, DT_F32, b_off, (size_t)n);
    check_tensor("linear_forward", "out", out, DT_F32, 0, (size_t)m * (size_t)n);
    double *xr = xmalloc((size_t)k * sizeof(double), "row");
    for (int r = 0; r < m; r++) {
        size_t xo = x_row_off(idx, idx_off, x_off, r, k);
        for (int p = 0; p < k; p++) xr[p] = xval(x, xo + (size_t)p);
        for (int j = 0; j < n; j++) {
            const float *wj = F(w, w_off + (size_t)j * (size_t)k);
            double acc = 0.0;
            for (int p = 0; p < k; p++) acc += xr[p] * (double)wj[p];
            F(out, 0)[(size_t)r * (size_t)n + (size_t)j] =
                activate((float)((double)alpha * acc + (double)F(b, b_off)[j]), act);
        }
    }
    free(xr);
}

static void host_linear_weights(backend *be, const linear_weights_args *a)
{
    (void)be;
    const tensor *dz = a->dz, *x = a->x, *idx = a->idx;
    size_t x_off = a->x_off, idx_off = a->idx_off, dw_off = a->dw_off, db_off = a->db_off;
    int m = a->m, k = a->k, n = a->n;
    float alpha = a->alpha;
    tensor *dw = a->dw, *db = a->db;
    check_rows("linear_weights", x, x_off, idx, idx_off, m, k);
    if (n < 1) die(EXIT_RUNTIME, "BUG: host back-end, linear_weights: bad dimensions");
    check_tensor("linear_weights", "dz", dz, DT_F32, 0, (size_t)m * (size_t)n);
    check_tensor("linear_weights", "dw", dw, DT_F32, dw_off, (size_t)n * (size_t)k);
    check_tensor("linear_weights", "db", db, DT_F32, db_off, (size_t)n);
    size_t nk = (size_t)n * (size_t)k;
    double *acc = xcalloc(nk, sizeof(double), "weight gradient"), *bacc = xcalloc((size_t)n, sizeof(double), "bias gradient");
    for (int r = 0; r < m; r++) {
        size_t xo = x_row_off(idx, idx_off, x_off, r, k);
        for (int i = 0; i < n; i++) {
            double d = (double)F(dz, 0)[(size_t)r * (size_t)n + (size_t)i];
            bacc[i] += d;
            if (d == 0.0) continue;
            double *row = acc + (size_t)i * (size_t)k;
            for (int p = 0; p < k; p++) row[p] += d * xval(x, xo + (size_t)p);
        }
    }
    for (size_t e = 0; e < nk; e++) F(dw, dw_off)[e] = (float)((double)alpha * acc[e]);
    for (int i = 0; i < n; i++) F(db, db_off)[i] = (float)bacc[i];
    free(acc);
    free(bacc);
}

static void host_linear_input(backend *be, const linear_input_args *a)
{
    (void)be;
    const tensor *dz = a->dz, *w = a->w, *a_prev = a->a_prev;
    size_t w_off = a->w_off;
    int m = a->m, k = a->k, n = a->n;
    activation act = a->act;
    float a_scale = a->a_scale;
    tensor *da = a->da;
    if (m < 0 || k < 1 || n < 1) die(EXIT_RUNTIME, "BUG: host back-end, linear_input: bad dimensions");
    size_t mk = (size_t)m * (size_t)k;
    check_tensor("linear_input", "dz", dz, DT_F32, 0, (size_t)m * (size_t)n);
    check_tensor("linear_input", "w", w, DT_F32, w_off, (size_t)n * (size_t)k);
    check_tensor("linear_input", "da", da, DT_F32, 0, mk);
    if (act != ACT_NONE) check_tensor("linear_input", "a_prev", a_prev, DT_F32, 0, mk);
    double *acc = xmalloc((size_t)k * sizeof(double), "row");
    for (int r = 0; r < m; r++) {
        memset(acc, 0, (size_t)k * sizeof(double));
        for (int p = 0; p < n; p++) {
            double d = (double)F(dz, 0)[(size_t)r * (size_t)n + (size_t)p];
            const float *wp = F(w, w_off + (size_t)p * (size_t)k);
            for (int c = 0; c < k; c++) acc[c] += d * (double)wp[c];
        }
        for (int c = 0; c < k; c++) {
            size_t at = (size_t)r * (size_t)k + (size_t)c;
            float g = (float)acc[c];
            if (act != ACT_NONE) {
                float av = a_scale * F(a_prev, 0)[at];
                g = act == ACT_RELU ? (av > 0.0f ? g : 0.0f) : g * (av * (1.0f - av));
            }
            F(da, 0)[at] = g;
        }
    }
    free(acc);
}

/* Every layer runs the same loops here: one plan for all. */
struct layer_plan {
    const char *what;
};
static const layer_plan host_plan = {"host loops (float64 accumulation)"};

static const layer_plan *host_plan_layer(backend *be, const layer_shape *s)
{
    (void)be;
    if (!s || s->k < 1 || s->n < 1) die(EXIT_RUNTIME, "BUG: host back-end, plan_layer: bad shape");
    return &host_plan;
}

static void host_describe_plan(const backend *be, const layer_plan *p, char *buf, size_t len)
{
    (void)be;
    snprintf(buf, len, "%s", p ? p->what : "?");
}

/* No fused step here: the trainer's per-layer calls are the host's step. */
static const step_plan *host_plan_step(backend *be, const step_shape *s, char *desc, size_t len)
{
    (void)be;
    (void)s;
    snprintf(desc, len, "per-layer operations (host back-end)");
    return NULL;
}

static void host_train_step(backend *be, const train_step_args *a)
{
    (void)be;
    (void)a;
    die(EXIT_RUNTIME, "BUG: host back-end, train_step: plan_step gives no plan");
}

static void host_write_images(backend *be, tensor *t, int k, const uint8_t *pixels)
{
    if (!t || t->type != DT_U8 || k < 1 || t->count % (size_t)k != 0)
        die(EXIT_RUNTIME, "BUG: host back-end, write_images: not a uint8 tensor of whole images");
    host_write(be, t, 0, t->count, pixels);
}

static void host_finish(backend *be) { (void)be; }

static void host_destroy(backend *be) { free(be); }

const backend_test_ops backend_host_testing = {
    .gemm = host_gemm,
    .bias_act = host_bias_act,
    .act_backward = host_act_backward,
    .col_sum = host_col_sum,
};

static const backend_ops host_ops = {
    .name = "host",
    .alloc = host_alloc,
    .release = host_release,
    .write = host_write,
    .read = host_read,
    .write_images = host_write_images,
    .softmax_xent = host_softmax_xent,
    .reduce_stats = host_reduce_stats,
    .gather_rows = host_gather_rows,
    .dropout = host_dropout,
    .update = host_update,
    .augment = host_augment,
    .linear_forward = host_linear_forward,
    .linear_weights = host_linear_weights,
    .linear_input = host_linear_input,
    .plan_layer = host_plan_layer,
    .describe_plan = host_describe_plan,
    .plan_step = host_plan_step,
    .train_step = host_train_step,
    .finish = host_finish,
    .destroy = host_destroy,
};

backend *backend_host_create(void)
{
    backend *be = xmalloc(sizeof *be, "host back-end");
    be->ops = &host_ops;
    be->impl = NULL;
    return be;
}
