/* backend_cl.c: the operation table as OpenCL kernel launches (the .cl files in kernels/).
 * Every buffer, build and launch goes through cl_runtime; this file calls no cl* function.
 * Shapes in the comments are rows x columns, row-major, as in backend.h. */
#include "backend.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "cl_runtime.h"
#include "util.h"

/* A float32 copy of a U8 tensor for CLBlast (which multiplies floats only), converted by the
 * u8_to_f32 kernel when the bytes changed since the last conversion. */
typedef struct {
    clrt_buf *buf;          /* NULL until the first gemm needs it */
    uint64_t version;       /* the tensor's version it was converted from; 0: never */
} f32_shadow;

struct tensor {
    clrt_buf *buf;
    dtype type;
    size_t count;
    uint64_t version;       /* bumped by every write into the tensor (write, gather_rows) */
    f32_shadow *shadow;     /* U8 tensors under GEMM_CLBLAST only */
};

/* Tile shapes of the builtin gemm (the -D parameters of gemm.cl). */
typedef struct {
    int tsm, tsn, tsk, wptm, wptn;
} gemm_tiles;

/* 64x64 tiles, 4x4 per work-item, 256 work-items; the small one (64 work-items) for devices or
 * kernels that cannot run 256. */
static const gemm_tiles tiles_big = {64, 64, 16, 4, 4};
static const gemm_tiles tiles_small = {32, 32, 16, 4, 4};

/* Kernels other than gemm, fetched on first use. */
enum {
    K_BIAS_NONE, K_BIAS_RELU, K_BIAS_SIGMOID, K_RELU_BACKWARD, K_SIGMOID_BACKWARD, K_DROPOUT,
    K_SOFTMAX_XENT_GRAD, K_SOFTMAX_XENT_EVAL, K_COL_SUM_ROWS, K_COL_SUM_FINISH, K_REDUCE_STATS,
    K_UPDATE_SGD, K_UPDATE_MOMENTUM, K_UPDATE_NESTEROV, K_UPDATE_ADAM, K_UPDATE_ADAMW,
    K_GATHER_ROWS, K_U8_TO_F32, K_COUNT
};

static const struct {
    const char *file, *name;
} kernel_names[K_COUNT] = {
    [K_BIAS_NONE] = {"activation.cl", "bias_none"},
    [K_BIAS_RELU] = {"activation.cl", "bias_relu"},
    [K_BIAS_SIGMOID] = {"activation.cl", "bias_sigmoid"},
    [K_RELU_BACKWARD] = {"activation.cl", "relu_backward"},
    [K_SIGMOID_BACKWARD] = {"activation.cl", "sigmoid_backward"},
    [K_DROPOUT] = {"activation.cl", "dropout"},
    [K_SOFTMAX_XENT_GRAD] = {"softmax_xent.cl", "softmax_xent_grad"},
    [K_SOFTMAX_XENT_EVAL] = {"softmax_xent.cl", "softmax_xent_eval"},
    [K_COL_SUM_ROWS] = {"reduce.cl", "col_sum_rows"},
    [K_COL_SUM_FINISH] = {"reduce.cl", "col_sum_finish"},
    [K_REDUCE_STATS] = {"reduce.cl", "reduce_stats"},
    [K_UPDATE_SGD] = {"update.cl", "update_sgd"},
    [K_UPDATE_MOMENTUM] = {"update.cl", "update_momentum"},
    [K_UPDATE_NESTEROV] = {"update.cl", "update_nesterov"},
    [K_UPDATE_ADAM] = {"update.cl", "update_adam"},
    [K_UPDATE_ADAMW] = {"update.cl", "update_adamw"},
    [K_GATHER_ROWS] = {"data.cl", "gather_rows"},
    [K_U8_TO_F32] = {"data.cl", "u8_to_f32"},
};

/* col_sum_rows work-group (CS_COLS x CS_ROWS in reduce.cl's defaults) and the rows one
 * work-group sums before the sums of several are added by col_sum_finish. */
#define CS_COLS 16
#define CS_ROWS 16
#define CS_ROWS_PER_BLOCK 1024
/* Largest work-group of the 1D kernels and of reduce_stats. */
#define WG_1D 256

typedef struct {
    clrt_kernel *k;
    size_t wg;              /* work-group size for 1D launches */
} kernel_slot;

typedef struct {
    clrt_kernel *k;
    const gemm_tiles *t;
} gemm_slot;

typedef struct {
    clrt_ctx *ctx;
    gemm_kind gemm;
    const gemm_tiles *tiles;               /* the device's first choice */
    kernel_slot kernels[K_COUNT];
    gemm_slot gemms[2][2][2][2];           /* [trans_a][trans_b][a is U8][b is U8] */
    clrt_buf *scratch;                     /* col_sum partial sums, grown as needed */
    uint64_t next_version;
} cl_backend;

static const backend_ops cl_ops;

CLT_NORETURN static void bug(const char *op, const char *what)
{
    die(EXIT_RUNTIME, "BUG: OpenCL back-end, %s: %s", op, what);
}

static cl_backend *impl(backend *be) { return be->impl; }

static size_t dtype_size(dtype t) { return t == DT_U8 ? 1 : 4; }

static const char *dtype_name(dtype t)
{
    return t == DT_F32 ? "float32" : t == DT_U8 ? "uint8" : "uint32";
}

/* Dies unless t is of type `type` and holds elements [off, off + count). */
static void check_tensor(const char *op, const char *arg, const tensor *t, dtype type, size_t off,
                         size_t count)
{
    char msg[200];
    if (!t) {
        snprintf(msg, sizeof msg, "tensor %s is NULL", arg);
        bug(op, msg);
    }
    if (t->type != type) {
        snprintf(msg, sizeof msg, "tensor %s is %s, expected %s", arg, dtype_name(t->type),
                 dtype_name(type));
        bug(op, msg);
    }
    if (off > t->count || count > t->count - off) {
        snprintf(msg, sizeof msg, "elements [%zu, %zu + %zu) of tensor %s (%zu elements)", off, off,
                 count, arg, t->count);
        bug(op, msg);
    }
}

static kernel_slot *kernel(cl_backend *b, int id)
{
    kernel_slot *s = &b->kernels[id];
    if (!s->k) {
        s->k = clrt_kernel_get(b->ctx, kernel_names[id].file, "", kernel_names[id].name);
        size_t max = clrt_kernel_max_wg(b->ctx, s->k);
        s->wg = 1;
        while (s->wg * 2 <= max && s->wg * 2 <= WG_1D) s->wg *= 2;
    }
    return s;
}

/* One work-item per element, `count` of them. */
static void launch_1d(cl_backend *b, int id, size_t count, int nargs, const clrt_arg *args)
{
    if (count == 0) return;
    kernel_slot *s = kernel(b, id);
    size_t global = count, local = s->wg;
    clrt_launch(b->ctx, s->k, 1, &global, &local, nargs, args);
}

/* ---- tensors ------------------------------------------------------------------------------ */

static tensor *cl_alloc(backend *be, dtype type, size_t count, const char *name)
{
    cl_backend *b = impl(be);
    size_t bytes;
    if (!mul_size(count, dtype_size(type), &bytes))
        die(EXIT_RUNTIME, "tensor '%s' is too large (%zu elements)", name, count);
    tensor *t = xcalloc(1, sizeof *t, name);
    t->buf = clrt_alloc(b->ctx, bytes, name);
    t->type = type;
    t->count = count;
    t->version = ++b->next_version;
    if (type == DT_U8 && b->gemm == GEMM_CLBLAST) t->shadow = xcalloc(1, sizeof *t->shadow, name);
    return t;
}

static void cl_release(backend *be, tensor *t)
{
    (void)be;
    if (!t) return;
    if (t->shadow) clrt_free(t->shadow->buf);
    free(t->shadow);
    clrt_free(t->buf);
    free(t);
}

static void cl_write(backend *be, tensor *t, size_t off, size_t count, const void *src)
{
    cl_backend *b = impl(be);
    if (!t) bug("write", "tensor is NULL");
    check_tensor("write", "t", t, t->type, off, count);
    size_t es = dtype_size(t->type);
    if (count) clrt_write(b->ctx, t->buf, off * es, count * es, src);
    t->version = ++b->next_version;
}

static void cl_read(backend *be, const tensor *t, size_t off, size_t count, void *dst)
{
    cl_backend *b = impl(be);
    if (!t) bug("read", "tensor is NULL");
    check_tensor("read", "t", t, t->type, off, count);
    size_t es = dtype_size(t->type);
    if (count) clrt_read(b->ctx, t->buf, off * es, count * es, dst);
}

/* ---- gemm --------------------------------------------------------------------------------- */

/* Checks that the stored matrix behind op(X) (rows x cols as stored, row stride ld) lies
 * inside X, and that its span fits the int offsets of gemm.cl. */
static void check_operand(const char *name, const tensor *x, bool c_operand, size_t off, int rows,
                          int cols, int ld)
{
    char msg[200];
    if (!x) {
        snprintf(msg, sizeof msg, "operand %s is NULL", name);
        bug("gemm", msg);
    }
    if (c_operand ? x->type != DT_F32 : (x->type != DT_F32 && x->type != DT_U8)) {
        snprintf(msg, sizeof msg, "operand %s is %s", name, dtype_name(x->type));
        bug("gemm", msg);
    }
    if (ld < cols) {
        snprintf(msg, sizeof msg, "operand %s: row stride %d < %d columns", name, ld, cols);
        bug("gemm", msg);
    }
    size_t span = (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
    if (span > (size_t)INT_MAX) {
        snprintf(msg, sizeof msg, "operand %s spans %zu elements (2^31 at most)", name, span);
        bug("gemm", msg);
    }
    check_tensor("gemm", name, x, x->type, off, span);
}

static clrt_kernel *gemm_build(cl_backend *b, const gemm_tiles *t, const char *name)
{
    char opts[96];
    snprintf(opts, sizeof opts, "-DTSM=%d -DTSN=%d -DTSK=%d -DWPTM=%d -DWPTN=%d", t->tsm, t->tsn,
             t->tsk, t->wptm, t->wptn);
    return clrt_kernel_get(b->ctx, "gemm.cl", opts, name);
}

static gemm_slot *gemm_kernel(cl_backend *b, bool ta, bool tb, bool a_u8, bool b_u8)
{
    gemm_slot *s = &b->gemms[ta][tb][a_u8][b_u8];
    if (s->k) return s;
    char name[32];
    snprintf(name, sizeof name, "gemm_%c%c_%c%c", ta ? 't' : 'n', tb ? 't' : 'n', a_u8 ? 'u' : 'f',
             b_u8 ? 'u' : 'f');
    s->t = b->tiles;
    s->k = gemm_build(b, s->t, name);
    size_t need = (size_t)(s->t->tsm / s->t->wptm) * (size_t)(s->t->tsn / s->t->wptn);
    if (clrt_kernel_max_wg(b->ctx, s->k) < need && s->t != &tiles_small) {
        s->t = &tiles_small;
        s->k = gemm_build(b, s->t, name);
    }
    return s;
}

static void gemm_builtin(cl_backend *b, const gemm_args *g)
{
    gemm_slot *s = gemm_kernel(b, g->trans_a, g->trans_b, g->a->type == DT_U8,
                               g->b->type == DT_U8);
    const gemm_tiles *t = s->t;
    size_t local[2] = {(size_t)(t->tsn / t->wptn), (size_t)(t->tsm / t->wptm)};
    size_t global[2] = {((size_t)g->n + (size_t)t->tsn - 1) / (size_t)t->tsn * local[0],
                        ((size_t)g->m + (size_t)t->tsm - 1) / (size_t)t->tsm * local[1]};
    clrt_arg args[] = {
        clrt_arg_int(g->m), clrt_arg_int(g->n), clrt_arg_int(g->k), clrt_arg_float(g->alpha),
        clrt_arg_buf(g->a->buf), clrt_arg_ulong(g->a_off), clrt_arg_int(g->lda),
        clrt_arg_buf(g->b->buf), clrt_arg_ulong(g->b_off), clrt_arg_int(g->ldb),
        clrt_arg_float(g->beta), clrt_arg_buf(g->c->buf), clrt_arg_ulong(g->c_off),
        clrt_arg_int(g->ldc),
    };
    clrt_launch(b->ctx, s->k, 2, global, local, (int)(sizeof args / sizeof args[0]), args);
}

/* The float32 buffer CLBlast reads for x: x itself, or its shadow brought up to date. */
static const clrt_buf *float_view(cl_backend *b, const tensor *x)
{
    if (x->type == DT_F32) return x->buf;
    f32_shadow *sh = x->shadow;
    if (!sh) bug("gemm", "a uint8 operand without its float32 copy");
    if (!sh->buf) sh->buf = clrt_alloc(b->ctx, x->count * sizeof(float), "float32 copy of pixels");
    if (sh->version != x->version) {
        clrt_arg args[] = {clrt_arg_buf(x->buf), clrt_arg_buf(sh->buf), clrt_arg_ulong(x->count)};
        launch_1d(b, K_U8_TO_F32, x->count, 3, args);
        sh->version = x->version;
    }
    return sh->buf;
}

/* Returns false (after a one-line note, once) when CLBlast cannot run on this device. */
static bool gemm_clblast(cl_backend *b, const gemm_args *g)
{
    const clrt_buf *a = float_view(b, g->a), *bb = float_view(b, g->b);
    if (clrt_clblast_sgemm(b->ctx, g->trans_a, g->trans_b, (size_t)g->m, (size_t)g->n,
                           (size_t)g->k, g->alpha, a, g->a_off, (size_t)g->lda, bb, g->b_off,
                           (size_t)g->ldb, g->beta, g->c->buf, g->c_off, (size_t)g->ldc))
        return true;
    fprintf(stderr, "cltrain: CLBlast cannot run on %s; using the built-in gemm kernels\n",
            clrt_device(b->ctx)->name);
    b->gemm = GEMM_BUILTIN;
    return false;
}

/* C[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C (backend.h). */
static void cl_gemm(backend *be, const gemm_args *g)
{
    cl_backend *b = impl(be);
    if (!g || g->m < 0 || g->n < 0 || g->k < 0) bug("gemm", "negative dimension");
    if (g->m == 0 || g->n == 0) return;
    check_operand("C", g->c, true, g->c_off, g->m, g->n, g->ldc);
    if (g->k > 0) {
        check_operand("A", g->a, false, g->a_off, g->trans_a ? g->k : g->m,
                      g->trans_a ? g->m : g->k, g->lda);
        check_operand("B", g->b, false, g->b_off, g->trans_b ? g->n : g->k,
                      g->trans_b ? g->k : g->n, g->ldb);
    } else if (!g->a || !g->b) {
        bug("gemm", "operand A or B is NULL");
    }
    /* k == 0 (C = beta C) is left to the builtin kernels: CLBlast rejects it. */
    if (b->gemm == GEMM_CLBLAST && g->k > 0 && gemm_clblast(b, g)) return;
    gemm_builtin(b, g);
}

/* ---- element-wise ------------------------------------------------------------------------- */

/* za[rows x cols] = act(za + bias[cols] broadcast over rows). */
static void cl_bias_act(backend *be, tensor *za, size_t za_off, const tensor *bias, size_t b_off,
                        int rows, int cols, activation act)
{
    cl_backend *b = impl(be);
    if (rows < 0 || cols < 0) bug("bias_act", "negative dimension");
    size_t count = (size_t)rows * (size_t)cols;
    if (count == 0) return;
    check_tensor("bias_act", "za", za, DT_F32, za_off, count);
    check_tensor("bias_act", "bias", bias, DT_F32, b_off, (size_t)cols);
    int id = act == ACT_RELU ? K_BIAS_RELU : act == ACT_SIGMOID ? K_BIAS_SIGMOID : K_BIAS_NONE;
    clrt_arg args[] = {clrt_arg_buf(za->buf), clrt_arg_ulong(za_off), clrt_arg_buf(bias->buf),
                       clrt_arg_ulong(b_off), clrt_arg_int(rows), clrt_arg_int(cols)};
    launch_1d(b, id, count, 6, args);
}

/* d[count] *= g'(a[count]). */
static void cl_act_backward(backend *be, tensor *d, size_t d_off, const tensor *a, size_t a_off,
                            size_t count, activation act)
{
    cl_backend *b = impl(be);
    if (act == ACT_NONE || count == 0) return;
    check_tensor("act_backward", "d", d, DT_F32, d_off, count);
    check_tensor("act_backward", "a", a, DT_F32, a_off, count);
    clrt_arg args[] = {clrt_arg_buf(d->buf), clrt_arg_ulong(d_off), clrt_arg_buf(a->buf),
                       clrt_arg_ulong(a_off), clrt_arg_ulong(count)};
    launch_1d(b, act == ACT_RELU ? K_RELU_BACKWARD : K_SIGMOID_BACKWARD, count, 5, args);
}

/* x[count] *= keep_i / (1 - p). */
static void cl_dropout(backend *be, tensor *x, size_t off, size_t count, float p, uint64_t seed,
                       uint64_t stream)
{
    cl_backend *b = impl(be);
    if (count == 0) return;
    check_tensor("dropout", "x", x, DT_F32, off, count);
    /* The host back-end's scale, to the bit. */
    float scale = 1.0f / (1.0f - p);
    clrt_arg args[] = {clrt_arg_buf(x->buf), clrt_arg_ulong(off), clrt_arg_ulong(count),
                       clrt_arg_float(p), clrt_arg_float(scale), clrt_arg_ulong(seed),
                       clrt_arg_ulong(stream)};
    launch_1d(b, K_DROPOUT, count, 7, args);
}

/* ---- softmax and reductions --------------------------------------------------------------- */

/* z[rows x classes], labels[rows] -> stats[rows x 3] from row stat_row0, grad into z. */
static void cl_softmax_xent(backend *be, tensor *z, size_t z_off, int rows, int classes,
                            const tensor *labels, size_t l_off, float scale, tensor *stats,
                            size_t stat_row0, bool want_grad)
{
    cl_backend *b = impl(be);
    if (rows < 0 || classes < 1) bug("softmax_xent", "bad dimensions");
    if (rows == 0) return;
    check_tensor("softmax_xent", "z", z, DT_F32, z_off, (size_t)rows * (size_t)classes);
    check_tensor("softmax_xent", "labels", labels, DT_U8, l_off, (size_t)rows);
    check_tensor("softmax_xent", "stats", stats, DT_F32, stat_row0 * STATS_PER_ROW,
                 (size_t)rows * STATS_PER_ROW);
    clrt_arg args[] = {clrt_arg_buf(z->buf), clrt_arg_ulong(z_off), clrt_arg_int(rows),
                       clrt_arg_int(classes), clrt_arg_buf(labels->buf), clrt_arg_ulong(l_off),
                       clrt_arg_float(scale), clrt_arg_buf(stats->buf),
                       clrt_arg_ulong(stat_row0)};
    launch_1d(b, want_grad ? K_SOFTMAX_XENT_GRAD : K_SOFTMAX_XENT_EVAL, (size_t)rows, 9, args);
}

/* The scratch buffer, at least `bytes` long. */
static clrt_buf *scratch(cl_backend *b, size_t bytes)
{
    if (!b->scratch || clrt_buf_size(b->scratch) < bytes) {
        clrt_free(b->scratch);   /* released by OpenCL once queued kernels are done with it */
        b->scratch = clrt_alloc(b->ctx, bytes, "column-sum scratch");
    }
    return b->scratch;
}

/* db[cols] = alpha * column sums of dz[rows x cols]: work-groups of CS_ROWS_PER_BLOCK rows,
 * then (with several) the sum of their partial rows, both in a fixed order. */
static void cl_col_sum(backend *be, const tensor *dz, size_t dz_off, int rows, int cols,
                       float alpha, tensor *db, size_t db_off)
{
    cl_backend *b = impl(be);
    if (rows < 0 || cols < 0) bug("col_sum", "negative dimension");
    if (cols == 0) return;
    check_tensor("col_sum", "dz", dz, DT_F32, dz_off, (size_t)rows * (size_t)cols);
    check_tensor("col_sum", "db", db, DT_F32, db_off, (size_t)cols);
    int blocks = rows <= CS_ROWS_PER_BLOCK ? 1 : (rows + CS_ROWS_PER_BLOCK - 1) / CS_ROWS_PER_BLOCK;
    const clrt_buf *out = db->buf;
    size_t out_off = db_off;
    float first_alpha = alpha;
    if (blocks > 1) {
        out = scratch(b, (size_t)blocks * (size_t)cols * sizeof(float));
        out_off = 0;
        first_alpha = 1.0f;
    }
    kernel_slot *s = kernel(b, K_COL_SUM_ROWS);
    size_t local[2] = {CS_COLS, CS_ROWS};
    size_t global[2] = {(size_t)cols, (size_t)blocks * CS_ROWS};
    clrt_arg args[] = {clrt_arg_buf(dz->buf), clrt_arg_ulong(dz_off), clrt_arg_int(rows),
                       clrt_arg_int(cols), clrt_arg_int(CS_ROWS_PER_BLOCK),
                       clrt_arg_float(first_alpha), clrt_arg_buf(out), clrt_arg_ulong(out_off)};
    clrt_launch(b->ctx, s->k, 2, global, local, 8, args);
    if (blocks > 1) {
        clrt_arg fin[] = {clrt_arg_buf(out), clrt_arg_int(blocks), clrt_arg_int(cols),
                          clrt_arg_float(alpha), clrt_arg_buf(db->buf), clrt_arg_ulong(db_off)};
        launch_1d(b, K_COL_SUM_FINISH, (size_t)cols, 6, fin);
    }
}

/* out[out_off + c] = sum over n rows of stats[r * 3 + c]: one work-group, fixed order. */
static void cl_reduce_stats(backend *be, const tensor *stats, size_t n, tensor *out,
                            size_t out_off)
{
    cl_backend *b = impl(be);
    check_tensor("reduce_stats", "stats", stats, DT_F32, 0, n * STATS_PER_ROW);
    check_tensor("reduce_stats", "out", out, DT_F32, out_off, STATS_PER_ROW);
    kernel_slot *s = kernel(b, K_REDUCE_STATS);
    size_t wg = s->wg;
    clrt_arg args[] = {clrt_arg_buf(stats->buf), clrt_arg_ulong(n), clrt_arg_buf(out->buf),
                       clrt_arg_ulong(out_off), clrt_arg_local(STATS_PER_ROW * wg * sizeof(float))};
    clrt_launch(b->ctx, s->k, 1, &wg, &wg, 5, args);
}

/* ---- data --------------------------------------------------------------------------------- */

/* dst[m x rowlen] = rows idx[idx_off + i] of src (uint8). */
static void cl_gather_rows(backend *be, const tensor *src, int rowlen, const tensor *idx,
                           size_t idx_off, int m, tensor *dst)
{
    cl_backend *b = impl(be);
    if (rowlen < 0 || m < 0) bug("gather_rows", "negative dimension");
    if (rowlen == 0 || m == 0) return;
    check_tensor("gather_rows", "src", src, DT_U8, 0, 0);
    check_tensor("gather_rows", "idx", idx, DT_U32, idx_off, (size_t)m);
    check_tensor("gather_rows", "dst", dst, DT_U8, 0, (size_t)m * (size_t)rowlen);
    size_t src_rows = src->count / (size_t)rowlen;
    if (src_rows > UINT32_MAX) src_rows = UINT32_MAX;
    clrt_arg args[] = {clrt_arg_buf(src->buf), clrt_arg_uint((uint32_t)src_rows),
                       clrt_arg_uint((uint32_t)rowlen), clrt_arg_buf(idx->buf),
                       clrt_arg_ulong(idx_off), clrt_arg_uint((uint32_t)m), clrt_arg_buf(dst->buf)};
    launch_1d(b, K_GATHER_ROWS, (size_t)m * (size_t)rowlen, 7, args);
    dst->version = ++b->next_version;
}

/* ---- optimizers --------------------------------------------------------------------------- */

static void cl_update(backend *be, const update_args *u)
{
    cl_backend *b = impl(be);
    if (!u) bug("update", "no arguments");
    if (u->n == 0) return;
    bool adam = u->kind == OPT_ADAM || u->kind == OPT_ADAMW;
    bool velocity = u->kind == OPT_MOMENTUM || u->kind == OPT_NESTEROV;
    check_tensor("update", "params", u->params, DT_F32, 0, u->n);
    check_tensor("update", "grads", u->grads, DT_F32, 0, u->n);
    if (adam || velocity) check_tensor("update", "state1", u->state1, DT_F32, 0, u->n);
    if (adam) check_tensor("update", "state2", u->state2, DT_F32, 0, u->n);
    clrt_arg p = clrt_arg_buf(u->params->buf), g = clrt_arg_buf(u->grads->buf);
    clrt_arg n = clrt_arg_ulong(u->n), lr = clrt_arg_float(u->lr);
    clrt_arg wd = clrt_arg_float(u->weight_decay);
    switch (u->kind) {
    case OPT_SGD: {
        clrt_arg args[] = {p, g, n, lr, wd};
        launch_1d(b, K_UPDATE_SGD, u->n, 5, args);
        break;
    }
    case OPT_MOMENTUM:
    case OPT_NESTEROV: {
        clrt_arg args[] = {p, g, clrt_arg_buf(u->state1->buf), n, lr,
                           clrt_arg_float(u->momentum), wd};
        launch_1d(b, u->kind == OPT_MOMENTUM ? K_UPDATE_MOMENTUM : K_UPDATE_NESTEROV, u->n, 7,
                  args);
        break;
    }
    case OPT_ADAM:
    case OPT_ADAMW: {
        if (u->step < 1) bug("update", "Adam's step counts from 1");
        /* Bias corrections in double, rounded to float as the host back-end does. */
        float bc1 = (float)(1.0 - pow((double)u->beta1, (double)u->step));
        float bc2 = (float)(1.0 - pow((double)u->beta2, (double)u->step));
        clrt_arg args[] = {p, g, clrt_arg_buf(u->state1->buf), clrt_arg_buf(u->state2->buf), n,
                           lr, clrt_arg_float(u->beta1), clrt_arg_float(u->beta2),
                           clrt_arg_float(u->eps), wd, clrt_arg_float(bc1),
                           clrt_arg_float(bc2)};
        launch_1d(b, u->kind == OPT_ADAM ? K_UPDATE_ADAM : K_UPDATE_ADAMW, u->n, 12, args);
        break;
    }
    default: bug("update", "unknown optimizer");
    }
}

/* ---- the back-end ------------------------------------------------------------------------- */

static void cl_finish(backend *be) { clrt_finish(impl(be)->ctx); }

static void cl_destroy(backend *be)
{
    cl_backend *b = impl(be);
    clrt_free(b->scratch);
    clrt_close(b->ctx);
    free(b);
    free(be);
}

static const backend_ops cl_ops = {
    .name = "opencl",
    .alloc = cl_alloc,
    .release = cl_release,
    .write = cl_write,
    .read = cl_read,
    .gemm = cl_gemm,
    .bias_act = cl_bias_act,
    .act_backward = cl_act_backward,
    .softmax_xent = cl_softmax_xent,
    .col_sum = cl_col_sum,
    .reduce_stats = cl_reduce_stats,
    .gather_rows = cl_gather_rows,
    .dropout = cl_dropout,
    .update = cl_update,
    .finish = cl_finish,
    .destroy = cl_destroy,
};

backend *backend_cl_create(int device_index, const backend_cl_options *opt)
{
    static const backend_cl_options defaults = {GEMM_BUILTIN, false, false};
    if (!opt) opt = &defaults;
    clrt_device_desc *devs = NULL;
    int ndev = clrt_list_devices(&devs);
    free(devs);
    if (ndev == 0)
        die(EXIT_RUNTIME, "no OpenCL device found: install an OpenCL driver (PoCL for CPUs: "
            "pocl-opencl-icd), or train with --device host");
    if (device_index < 0 || device_index >= ndev)
        die(EXIT_USAGE, "there is no OpenCL device %d (devices 0 to %d; see --list-devices)",
            device_index, ndev - 1);

    clrt_options copt = {.profiling = opt->profiling, .no_cache = opt->no_cache};
    cl_backend *b = xcalloc(1, sizeof *b, "OpenCL back-end");
    b->ctx = clrt_open(device_index, &copt);
    b->gemm = opt->gemm;
    b->tiles = clrt_device(b->ctx)->max_work_group >= 256 ? &tiles_big : &tiles_small;
    backend *be = xmalloc(sizeof *be, "OpenCL back-end");
    be->ops = &cl_ops;
    be->impl = b;
    return be;
}

void backend_cl_print_profile(backend *be, FILE *f)
{
    if (!be || be->ops != &cl_ops) return;
    clrt_print_profile(impl(be)->ctx, f);
}

const char *backend_device_name(const backend *be)
{
    if (!be || be->ops != &cl_ops) return NULL;
    return clrt_device(((const cl_backend *)be->impl)->ctx)->name;
}
