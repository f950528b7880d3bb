/* backend_cl.c: the operation table as OpenCL kernel launches (the .cl files in kernels/).
 * Every buffer, build and launch goes through cl_runtime; this file calls no cl* function.
 * Shapes in the comments are rows x columns, row-major, as in backend.h. */
#include "backend.h"
#include "backend_testing.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "augment_cl.h"
#include "cl_layers.h"
#include "cl_runtime.h"
#include "model.h"
#include "nonzero.h"
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
    struct pixel_csr *csr;  /* images written by write_images for the sparse path: nonzeros */
};

/* The nonzero pixels of a U8 tensor of images, as kernels/sparse.cl reads them, built from the
 * host's pixels by write_images (dropped by any later write into the tensor): by image (CSR)
 * and, for the full-batch weight gradient, by pixel column (CSC: built from the CSR at its
 * first use, so the test set and mini-batch runs never pay for it; never beyond 2^24
 * images, whose index does not fit beside the value). */
typedef struct pixel_csr {
    clrt_buf *row_ptr, *nz;
    clrt_buf *col_ptr, *cnz;
    size_t rows, nnz;
    int k;                  /* pixels per image */
    double density;         /* nonzeros / pixels */
} pixel_csr;

/* The public col_sum's work-group (CS_COLS x CS_ROWS, passed to reduce.cl; a layer's plan
 * picks its own) and the rows one work-group sums before the sums of several are added by
 * col_sum_finish. */
#define CS_COLS 16
#define CS_ROWS 16
#define CS_ROWS_PER_BLOCK 1024
#define STRINGIFY(x) #x
#define TO_STRING(x) STRINGIFY(x)
#define REDUCE_OPTIONS "-DCS_COLS=" TO_STRING(CS_COLS) " -DCS_ROWS=" TO_STRING(CS_ROWS)

/* Kernels other than gemm, fetched on first use. */
enum {
    K_BIAS_NONE, K_BIAS_RELU, K_BIAS_SIGMOID, K_RELU_BACKWARD, K_SIGMOID_BACKWARD, K_DROPOUT,
    K_COL_SUM_ROWS, K_COL_SUM_FINISH, K_REDUCE_STATS,
    K_UPDATE_SGD, K_UPDATE_MOMENTUM, K_UPDATE_NESTEROV, K_UPDATE_ADAM, K_UPDATE_ADAMW,
    K_GATHER_ROWS, K_GATHER_ROWS16, K_U8_TO_F32, K_COUNT
};

static const struct {
    const char *file, *options, *name;
} kernel_names[K_COUNT] = {
    [K_BIAS_NONE] = {"activation.cl", "", "bias_none"},
    [K_BIAS_RELU] = {"activation.cl", "", "bias_relu"},
    [K_BIAS_SIGMOID] = {"activation.cl", "", "bias_sigmoid"},
    [K_RELU_BACKWARD] = {"activation.cl", "", "relu_backward"},
    [K_SIGMOID_BACKWARD] = {"activation.cl", "", "sigmoid_backward"},
    [K_DROPOUT] = {"epoch.cl", REDUCE_OPTIONS, "dropout"},
    [K_COL_SUM_ROWS] = {"reduce.cl", REDUCE_OPTIONS, "col_sum_rows"},
    [K_COL_SUM_FINISH] = {"reduce.cl", REDUCE_OPTIONS, "col_sum_finish"},
    [K_REDUCE_STATS] = {"epoch.cl", REDUCE_OPTIONS, "reduce_stats"},
    [K_UPDATE_SGD] = {"epoch.cl", REDUCE_OPTIONS, "update_sgd"},
    [K_UPDATE_MOMENTUM] = {"epoch.cl", REDUCE_OPTIONS, "update_momentum"},
    [K_UPDATE_NESTEROV] = {"epoch.cl", REDUCE_OPTIONS, "update_nesterov"},
    [K_UPDATE_ADAM] = {"epoch.cl", REDUCE_OPTIONS, "update_adam"},
    [K_UPDATE_ADAMW] = {"epoch.cl", REDUCE_OPTIONS, "update_adamw"},
    [K_GATHER_ROWS] = {"data.cl", "", "gather_rows"},
    [K_GATHER_ROWS16] = {"data.cl", "", "gather_rows16"},
    [K_U8_TO_F32] = {"data.cl", "", "u8_to_f32"},
};

/* Kernels launched one after the other by one operation: each pair is built in one program
 * (a program costs a fixed build time on top of its kernels'; cl_runtime.h). A kernel not
 * listed gets a program of its own. */
static const char *const kernel_families[][2] = {
    {"transpose_pad", "sparse_forward"}, {"sparse_weights_csc", "sparse_weights_sum"},
    {"sparse_weights", "sparse_weights_sum"}, {"linear_weights", "linear_weights_sum"},
    {"col_sum_rows", "col_sum_finish"}, {"step_forward_backward", "step_update"},
};

/* The kernel `name` of file, built with the other kernel of its family if it has one. A
 * kernel of two families (sparse_weights_sum) is always launched after its partner, so the
 * runtime finds it in the partner's program. */
static clrt_kernel *family_kernel(clrt_ctx *ctx, const char *file, const char *opts, const char *name)
{
    for (size_t i = 0; i < sizeof kernel_families / sizeof kernel_families[0]; i++)
        for (int j = 0; j < 2; j++)
            if (strcmp(kernel_families[i][j], name) == 0)
                return clrt_kernel_get_with(ctx, file, opts, name, kernel_families[i][1 - j]);
    return clrt_kernel_get(ctx, file, opts, name);
}

#define FUSED_SPARSE_KERNELS "step_forward_backward step_update wt_to_params"

/* Kernel `name` of file from a program of the kernels `set` names (name among them), or of
 * its family when set is NULL or names it alone. */
static clrt_kernel *set_kernel(clrt_ctx *ctx, const char *file, const char *opts, const char *name,
                               const char *set)
{
    char others[200];
    size_t len = 0, n = strlen(name);
    others[0] = 0;
    for (const char *p = set; p && *p;) {
        while (*p == ' ') p++;
        size_t w = strcspn(p, " ");
        if (w && !(w == n && strncmp(p, name, n) == 0) && len + w + 2 < sizeof others)
            len += (size_t)snprintf(others + len, sizeof others - len, "%s%.*s", len ? " " : "", (int)w, p);
        p += w;
    }
    return len ? clrt_kernel_get_with(ctx, file, opts, name, others) : family_kernel(ctx, file, opts, name);
}

/* Largest work-group of the 1D kernels and of reduce_stats. */
#define WG_1D 256

typedef struct {
    clrt_kernel *k;
    size_t wg;              /* work-group size for 1D launches */
} kernel_slot;

typedef struct plan_node {
    layer_plan plan;
    struct plan_node *next;
} plan_node;

/* A step plan handed out by plan_step, with the program of its network (fused_step.cl built
 * for the shape train_step first brings) and that program's two kernels. */
typedef struct step_node {
    step_plan plan;                        /* first: the pointer handed out is this node's */
    optimizer_kind optimizer;
    activation act;
    int sizes[MODEL_MAX_LAYERS + 1];
    /* [0]: every layer dense; [1]: the first layer from the images' sparse copy (SPARSE0) */
    clrt_kernel *forward_backward[2], *update[2];
    /* SPARSE0's transposed copy of the first layer's weights, made from the params whose
     * version was mirror_version (versions are unique in the back-end, across tensors); when
     * anything but this plan's steps wrote them, a step reads W_0 itself and rewrites it.
     * Except under Adam, the steps update W_0 in wt, and its velocity in st of the same
     * layout (fused_step.cl's W0_IN_WT): params' and the velocity's copies are brought up by
     * to_params (params_current) before any other operation, and when those were written
     * elsewhere (their versions no longer mirror_version and state_version), a step reads
     * them instead. */
    clrt_buf *wt, *st;
    clrt_kernel *to_params;
    uint64_t mirror_version, state_version;
    struct step_node *next;
} step_node;

typedef struct {
    clrt_ctx *ctx;
    gemm_kind gemm;
    cl_device_traits traits;               /* what the layer plans are chosen from */
    kernel_slot kernels[K_COUNT];
    clrt_buf *scratch;                     /* col_sum partial sums, grown as needed */
    clrt_buf *layer_scratch;               /* fused layers: partial sums, transposed weights */
    clrt_buf *split_scratch;               /* split-K gemm: the slices' partial products */
    clrt_buf *dummy;                       /* bound where a kernel argument is unused */
    tensor *gather_scratch;                /* composite layers: rows gathered through an index */
    plan_node *plans;                      /* every plan handed out, freed by destroy */
    step_node *steps;                      /* every step plan handed out, likewise */
    clrt_buf *step_x, *step_act, *step_dz; /* the fused step's inputs, activations and dZ */
    clrt_buf *pass_part1, *pass_part2;     /* sparse_step: its slices' gradients of each layer */
    struct { char key[256]; clrt_kernel *k; } layer_kernels[128];
    uint64_t next_version;
    uint64_t sparse_steps;                 /* fused steps whose first layer read the sparse copy */
    uint64_t sparse_passes;                /* sparse_step calls that ran (not declined) */
    const layer_plan *sparse_home;         /* a plan training through sparse_step: the update and
                                              the statistics sum come from its program */
    struct {                               /* sparse_step's W1^T, padded to 16 lanes, ...     */
        clrt_buf *buf;
        const tensor *params;              /* ... of these parameters at this version and offset */
        uint64_t version;
        size_t w1_off;
        int k, h;
    } sparse_wt;
    augment_cl *augment;                   /* --augment, made at its first use */
    struct {                               /* the fused step whose wt (and st) hold W_0 ... */
        step_node *node;
        const tensor *params, *state;      /* ... newer than these do, or none (NULL node) */
    } ahead;
} cl_backend;

static const backend_ops cl_ops;
static clrt_kernel *layer_kernel(cl_backend *b, const char *file, const char *opts,
                                 const char *name);
static clrt_buf *grown(cl_backend *b, clrt_buf **slot, size_t bytes, const char *name);
/* Rows one work-item of softmax_xent_rows takes on a CPU. */
#define SOFTMAX_ROWS_PER_ITEM 64

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

/* The 1-D work-group of k: the largest power of two up to WG_1D that k allows. */
static size_t wg_1d(cl_backend *b, clrt_kernel *k)
{
    size_t max = clrt_kernel_max_wg(b->ctx, k), wg = 1;
    while (wg * 2 <= max && wg * 2 <= WG_1D) wg *= 2;
    return wg;
}

static clrt_kernel *sparse_program_kernel(cl_backend *b, const char *name);

static kernel_slot *kernel(cl_backend *b, int id)
{
    kernel_slot *s = &b->kernels[id];
    if (!s->k) {
        bool in_sparse = b->sparse_home && !b->sparse_home->forward_only &&
                         (id == K_REDUCE_STATS || (id >= K_UPDATE_SGD && id <= K_UPDATE_ADAMW));
        s->k = in_sparse ? sparse_program_kernel(b, kernel_names[id].name)
                         : family_kernel(b->ctx, kernel_names[id].file, kernel_names[id].options,
                                         kernel_names[id].name);
        s->wg = wg_1d(b, s->k);
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

static void drop_csr(tensor *t)
{
    if (!t->csr) return;
    clrt_free(t->csr->row_ptr);
    clrt_free(t->csr->nz);
    clrt_free(t->csr->col_ptr);
    clrt_free(t->csr->cnz);
    free(t->csr);
    t->csr = NULL;
}

/* Brings W_0's place in the parameters and the optimizer's state up from the fused step's
 * copies where its steps left them ahead (b->ahead): every operation but the steps themselves
 * (and augment, which reads images alone) calls this first, since any of them may read or
 * write those tensors. */
static void params_current(cl_backend *b)
{
    step_node *q = b->ahead.node;
    if (!q) return;
    b->ahead.node = NULL;
    size_t global = (size_t)q->sizes[0] * (size_t)q->sizes[1];
    for (int i = 0; i < 2; i++) {
        const tensor *dst = i == 0 ? b->ahead.params : b->ahead.state;
        if (!dst) continue;
        clrt_arg args[] = {clrt_arg_buf(i == 0 ? q->wt : q->st), clrt_arg_buf(dst->buf)};
        clrt_launch(b->ctx, q->to_params, 1, &global, NULL, 2, args);
    }
}

static void cl_release(backend *be, tensor *t)
{
    cl_backend *b = impl(be);
    if (!t) return;
    if (b->ahead.params == t || b->ahead.state == t) params_current(b);
    drop_csr(t);
    if (t->shadow) clrt_free(t->shadow->buf);
    free(t->shadow);
    clrt_free(t->buf);
    free(t);
}

static void cl_write(backend *be, tensor *t, size_t off, size_t count, const void *src)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!t) bug("write", "tensor is NULL");
    check_tensor("write", "t", t, t->type, off, count);
    size_t es = dtype_size(t->type);
    if (count) clrt_write(b->ctx, t->buf, off * es, count * es, src);
    t->version = ++b->next_version;
    drop_csr(t);
}

/* The same nonzeros as sparse.cl's blocked CSC, from the CSR's arrays (read back once from
 * the device), uploaded into c: blocks of CL_SPARSE_BLOCK_ROWS images, each by pixel column,
 * images ascending in a column; col_ptr[blocks * k + 1], cnz[nnz] = image << 8 | value.
 * Returns false (no CSC) for 2^24 images or more. */
static bool csc_build(cl_backend *b, pixel_csr *c)
{
    if (c->col_ptr) return true;
    size_t rows = c->rows, nnz = c->nnz;
    int k = c->k;
    if (rows >= (1u << 24)) return false;
    size_t br = CL_SPARSE_BLOCK_ROWS, blocks = (rows + br - 1) / br, cols = blocks * (size_t)k;
    uint32_t *col_ptr = xcalloc(cols + 1, sizeof(uint32_t), "sparse images");
    c->col_ptr = clrt_alloc(b->ctx, (cols + 1) * sizeof(uint32_t), "sparse image columns");
    c->cnz = clrt_alloc(b->ctx, (nnz ? nnz : 1) * sizeof(uint32_t), "sparse image column pixels");
    if (nnz) {   /* mapped, not copied: on a CPU device the buffers themselves */
        const uint32_t *row_ptr = clrt_map(b->ctx, c->row_ptr, 0, (rows + 1) * sizeof(uint32_t), false);
        const uint32_t *nz = clrt_map(b->ctx, c->nz, 0, nnz * sizeof(uint32_t), false);
        uint32_t *cnz = clrt_map(b->ctx, c->cnz, 0, nnz * sizeof(uint32_t), true);
        for (size_t r = 0; r < rows; r++)
            for (uint32_t e = row_ptr[r]; e < row_ptr[r + 1]; e++)
                col_ptr[r / br * (size_t)k + (nz[e] >> 8) + 1]++;
        for (size_t i = 0; i < cols; i++) col_ptr[i + 1] += col_ptr[i];
        uint32_t *next = xmalloc((cols ? cols : 1) * sizeof(uint32_t), "sparse images");
        memcpy(next, col_ptr, cols * sizeof(uint32_t));
        for (size_t r = 0; r < rows; r++)
            for (uint32_t e = row_ptr[r]; e < row_ptr[r + 1]; e++)
                cnz[next[r / br * (size_t)k + (nz[e] >> 8)]++] = (uint32_t)r << 8 | (nz[e] & 255u);
        free(next);
        clrt_unmap(b->ctx, c->cnz, cnz);
        clrt_unmap(b->ctx, c->nz, (void *)nz);
        clrt_unmap(b->ctx, c->row_ptr, (void *)row_ptr);
    }
    clrt_write(b->ctx, c->col_ptr, 0, (cols + 1) * sizeof(uint32_t), col_ptr);
    free(col_ptr);
    return true;
}

/* The nonzeros of rows x k host pixels as sparse.cl's CSR, uploaded. */
static pixel_csr *csr_build(cl_backend *b, const uint8_t *px, size_t rows, int k, size_t nnz)
{
    pixel_csr *c = xcalloc(1, sizeof *c, "sparse images");
    uint32_t *row_ptr = xmalloc((rows + 1) * sizeof(uint32_t), "sparse images");
    c->nz = clrt_alloc(b->ctx, (nnz ? nnz : 1) * sizeof(uint32_t), "sparse image pixels");
    /* Packed straight into the mapped buffer: on a CPU device no second copy of 4 bytes per
     * nonzero pixel is made and copied. */
    uint32_t *nz = nnz ? clrt_map(b->ctx, c->nz, 0, nnz * sizeof(uint32_t), true) : NULL;
    size_t e = 0;
    for (size_t r = 0; r < rows; r++) {
        row_ptr[r] = (uint32_t)e;
        if (nnz) e += nonzero_pack(px + r * (size_t)k, k, nz + e);
    }
    row_ptr[rows] = (uint32_t)e;
    if (nz) clrt_unmap(b->ctx, c->nz, nz);
    if (e != nnz) die(EXIT_RUNTIME, "BUG: OpenCL back-end, sparse images: %zu nonzeros packed, %zu counted", e, nnz);
    c->row_ptr = clrt_alloc(b->ctx, (rows + 1) * sizeof(uint32_t), "sparse image rows");
    clrt_write(b->ctx, c->row_ptr, 0, (rows + 1) * sizeof(uint32_t), row_ptr);
    c->rows = rows;
    c->nnz = nnz;
    c->k = k;
    c->density = rows ? (double)nnz / ((double)rows * (double)k) : 1.0;
    free(row_ptr);
    return c;
}

/* The whole tensor from host pixels, and (where this device's plans read images sparsely and
 * these are blank enough) their sparse copy, built from the same host pixels. */
static void cl_write_images(backend *be, tensor *t, int k, const uint8_t *pixels)
{
    cl_backend *b = impl(be);
    if (!t || t->type != DT_U8 || k < 1 || t->count % (size_t)k != 0)
        bug("write_images", "not a uint8 tensor of whole images");
    cl_write(be, t, 0, t->count, pixels);
    size_t rows = t->count / (size_t)k, nnz = 0;
    if (k >= (1 << 24) || rows >= UINT32_MAX || rows == 0) return;   /* sparse.cl's packing */
    nnz = nonzero_count(pixels, t->count);
    double density = (double)nnz / (double)t->count;
    if (cl_layer_sparse_wanted(&b->traits, density)) t->csr = csr_build(b, pixels, rows, k, nnz);
}

static void cl_read(backend *be, const tensor *t, size_t off, size_t count, void *dst)
{
    cl_backend *b = impl(be);
    params_current(b);
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

/* Kernel `name` of gemm.cl with tiles t: "gemm_split_sum", or a variant "gemm_<ta><tb>_<ea><eb>"
 * (layout n or t, element type f or u), which gemm.cl then defines alone (GEMM_ONLY). */
static clrt_kernel *gemm_kernel(cl_backend *b, const gemm_tiles *t, const char *name)
{
    char opts[320];
    int n = snprintf(opts, sizeof opts, "-DTSM=%d -DTSN=%d -DTSK=%d -DWPTM=%d -DWPTN=%d", t->tsm,
                     t->tsn, t->tsk, t->wptm, t->wptn);
    if (strcmp(name, "gemm_split_sum") == 0) {
        snprintf(opts + n, sizeof opts - (size_t)n, " -DGEMM_NONE");
    } else {
        if (strlen(name) != 10) bug("gemm", "not a gemm.cl variant");
        char ta = name[5], tb = name[6], ea = name[8], eb = name[9];
        snprintf(opts + n, sizeof opts - (size_t)n,
                 " -DGEMM_ONLY=%s -DGEMM_A_T=%s -DGEMM_A_LOAD=gemm_load_tile_%c -DGEMM_A_TRANS=%d"
                 " -DGEMM_B_T=%s -DGEMM_B_LOAD=gemm_load_tile_%c -DGEMM_B_TRANS=%d",
                 name, ea == 'u' ? "uchar" : "float", ea, ta == 't', eb == 'u' ? "uchar" : "float",
                 eb, tb == 't');
    }
    return layer_kernel(b, "gemm.cl", opts, name);
}

/* gemm.cl with the tiles and split of gp (a plan's, or chosen for this shape): one launch, or
 * one over split slices of k into the split-K scratch and gemm_split_sum adding them. */
static void gemm_builtin(cl_backend *b, const gemm_plan *plan, const gemm_args *g)
{
    char name[32];
    snprintf(name, sizeof name, "gemm_%c%c_%c%c", g->trans_a ? 't' : 'n', g->trans_b ? 't' : 'n',
             g->a->type == DT_U8 ? 'u' : 'f', g->b->type == DT_U8 ? 'u' : 'f');
    gemm_plan gp = plan ? *plan : cl_layer_gemm_plan(&b->traits, g->m, g->n, g->k);
    clrt_kernel *kern = gemm_kernel(b, &gp.t, name);
    size_t items = (size_t)(gp.t.tsm / gp.t.wptm) * (size_t)(gp.t.tsn / gp.t.wptn);
    size_t kmax = clrt_kernel_max_wg(b->ctx, kern);
    if (kmax < items) {   /* this kernel's registers allow fewer work-items than the device's */
        cl_device_traits d = b->traits;
        d.max_wg = kmax;
        gp.t = cl_layer_gemm_plan(&d, g->m, g->n, g->k).t;
        kern = gemm_kernel(b, &gp.t, name);
    }
    /* Slices of kc (a multiple of TSK), none empty. */
    int split = gp.split > 1 ? gp.split : 1, kc = g->k > 0 ? g->k : 1;
    if (split > 1) {
        kc = (g->k + split - 1) / split;
        kc = (kc + gp.t.tsk - 1) / gp.t.tsk * gp.t.tsk;
        split = (g->k + kc - 1) / kc;
    }
    size_t mn = (size_t)g->m * (size_t)g->n;
    const clrt_buf *c = g->c->buf;
    size_t c_off = g->c_off, c_slice = 0;
    int ldc = g->ldc;
    float alpha = g->alpha, beta = g->beta;
    if (split > 1) {
        c = grown(b, &b->split_scratch, (size_t)split * mn * sizeof(float), "split-K partial products");
        c_off = 0;
        c_slice = mn;
        ldc = g->n;
        alpha = 1.0f;
        beta = 0.0f;
    }
    size_t local[3] = {(size_t)(gp.t.tsn / gp.t.wptn), (size_t)(gp.t.tsm / gp.t.wptm), 1};
    size_t global[3] = {((size_t)g->n + (size_t)gp.t.tsn - 1) / (size_t)gp.t.tsn * local[0],
                        ((size_t)g->m + (size_t)gp.t.tsm - 1) / (size_t)gp.t.tsm * local[1],
                        (size_t)split};
    clrt_arg args[] = {
        clrt_arg_int(g->m), clrt_arg_int(g->n), clrt_arg_int(g->k), clrt_arg_int(kc),
        clrt_arg_float(alpha), clrt_arg_buf(g->a->buf), clrt_arg_ulong(g->a_off),
        clrt_arg_int(g->lda), clrt_arg_buf(g->b->buf), clrt_arg_ulong(g->b_off),
        clrt_arg_int(g->ldb), clrt_arg_float(beta), clrt_arg_buf(c), clrt_arg_ulong(c_off),
        clrt_arg_int(ldc), clrt_arg_ulong(c_slice),
    };
    clrt_launch(b->ctx, kern, 3, global, local, (int)(sizeof args / sizeof args[0]), args);
    if (split > 1) {
        clrt_arg sargs[] = {clrt_arg_buf(c), clrt_arg_int(split), clrt_arg_int(g->m),
                            clrt_arg_int(g->n), clrt_arg_float(g->alpha), clrt_arg_float(g->beta),
                            clrt_arg_buf(g->c->buf), clrt_arg_ulong(g->c_off), clrt_arg_int(g->ldc)};
        clrt_launch(b->ctx, gemm_kernel(b, &gp.t, "gemm_split_sum"), 1, &mn, NULL, 9, sargs);
    }
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

/* C[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C (backend.h), through CLBlast (kind
 * GEMM_CLBLAST) or gemm.cl with the tiles of `plan` (NULL: chosen for this shape). */
static void gemm_run(cl_backend *b, gemm_kind kind, const gemm_plan *plan, const gemm_args *g)
{
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
    if (kind == GEMM_CLBLAST && b->gemm == GEMM_CLBLAST && g->k > 0 && gemm_clblast(b, g)) return;
    gemm_builtin(b, plan, g);
}

static void cl_gemm(backend *be, const gemm_args *g)
{
    params_current(impl(be));
    gemm_run(impl(be), impl(be)->gemm, NULL, g);
}

/* ---- element-wise ------------------------------------------------------------------------- */

/* za[rows x cols] = act(za + bias[cols] broadcast over rows). */
static void cl_bias_act(backend *be, tensor *za, size_t za_off, const tensor *bias, size_t b_off,
                        int rows, int cols, activation act)
{
    cl_backend *b = impl(be);
    params_current(b);
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

/* d[count] *= g'(a_scale * a[count]) (a_scale: see linear_input). */
static void act_backward(cl_backend *b, tensor *d, size_t d_off, const tensor *a, size_t a_off,
                         size_t count, activation act, float a_scale)
{
    if (act == ACT_NONE || count == 0) return;
    check_tensor("act_backward", "d", d, DT_F32, d_off, count);
    check_tensor("act_backward", "a", a, DT_F32, a_off, count);
    if (act == ACT_RELU) {   /* a scale > 0 does not move relu's kink */
        clrt_arg args[] = {clrt_arg_buf(d->buf), clrt_arg_ulong(d_off), clrt_arg_buf(a->buf),
                           clrt_arg_ulong(a_off), clrt_arg_ulong(count)};
        launch_1d(b, K_RELU_BACKWARD, count, 5, args);
        return;
    }
    clrt_arg args[] = {clrt_arg_buf(d->buf), clrt_arg_ulong(d_off), clrt_arg_buf(a->buf),
                       clrt_arg_ulong(a_off), clrt_arg_ulong(count), clrt_arg_float(a_scale)};
    launch_1d(b, K_SIGMOID_BACKWARD, count, 6, args);
}

static void cl_act_backward(backend *be, tensor *d, size_t d_off, const tensor *a, size_t a_off,
                            size_t count, activation act)
{
    params_current(impl(be));
    act_backward(impl(be), d, d_off, a, a_off, count, act, 1.0f);
}

/* x[count] *= keep_i * scale. */
static void cl_dropout(backend *be, tensor *x, size_t off, size_t count, float p, float scale,
                       uint64_t seed, uint64_t stream)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (count == 0) return;
    check_tensor("dropout", "x", x, DT_F32, off, count);
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
    params_current(b);
    if (rows < 0 || classes < 1) bug("softmax_xent", "bad dimensions");
    if (rows == 0) return;
    check_tensor("softmax_xent", "z", z, DT_F32, z_off, (size_t)rows * (size_t)classes);
    check_tensor("softmax_xent", "labels", labels, DT_U8, l_off, (size_t)rows);
    check_tensor("softmax_xent", "stats", stats, DT_F32, stat_row0 * STATS_PER_ROW,
                 (size_t)rows * STATS_PER_ROW);
    /* The class count built in; a CPU takes rows in blocks, a GPU one row per work-item. */
    bool cpu = cl_layer_cpu_family(&b->traits);
    int rb = cpu ? SOFTMAX_ROWS_PER_ITEM : 1;
    char opts[64];
    snprintf(opts, sizeof opts, "-DCLASSES=%d -DRB=%d", classes, rb);
    clrt_kernel *k = layer_kernel(b, "softmax_xent.cl", opts, "softmax_xent_rows");
    size_t g = ((size_t)rows + (size_t)rb - 1) / (size_t)rb, l = cpu ? 1 : wg_1d(b, k);
    clrt_arg args[] = {clrt_arg_buf(z->buf), clrt_arg_ulong(z_off), clrt_arg_int(rows),
                       clrt_arg_buf(labels->buf), clrt_arg_ulong(l_off), clrt_arg_float(scale),
                       clrt_arg_buf(stats->buf), clrt_arg_ulong(stat_row0),
                       clrt_arg_int(want_grad)};
    clrt_launch(b->ctx, k, 1, &g, &l, 9, args);
}

/* The scratch buffer *slot, at least `bytes` long. */
static clrt_buf *grown(cl_backend *b, clrt_buf **slot, size_t bytes, const char *name)
{
    if (!*slot || clrt_buf_size(*slot) < bytes) {
        clrt_free(*slot);   /* released by OpenCL once queued kernels are done with it */
        *slot = clrt_alloc(b->ctx, bytes, name);
    }
    return *slot;
}

/* db[cols] = alpha * column sums of dz[rows x cols]: work-groups of cs_cols x cs_rows
 * work-items (cs_rows a power of two) over CS_ROWS_PER_BLOCK rows each, then (with several)
 * the sum of their partial rows, both in a fixed order. */
static void col_sum(cl_backend *b, const tensor *dz, size_t dz_off, int rows, int cols,
                    float alpha, tensor *db, size_t db_off, int cs_cols, int cs_rows)
{
    if (rows < 0 || cols < 0) bug("col_sum", "negative dimension");
    if (cols == 0) return;
    check_tensor("col_sum", "dz", dz, DT_F32, dz_off, (size_t)rows * (size_t)cols);
    check_tensor("col_sum", "db", db, DT_F32, db_off, (size_t)cols);
    int blocks = rows <= CS_ROWS_PER_BLOCK ? 1 : (rows + CS_ROWS_PER_BLOCK - 1) / CS_ROWS_PER_BLOCK;
    const clrt_buf *out = db->buf;
    size_t out_off = db_off;
    float first_alpha = alpha;
    if (blocks > 1) {
        out = grown(b, &b->scratch, (size_t)blocks * (size_t)cols * sizeof(float), "column-sum scratch");
        out_off = 0;
        first_alpha = 1.0f;
    }
    char opts[64];
    snprintf(opts, sizeof opts, "-DCS_COLS=%d -DCS_ROWS=%d", cs_cols, cs_rows);
    clrt_kernel *k = layer_kernel(b, "reduce.cl", opts, "col_sum_rows");
    size_t local[2] = {(size_t)cs_cols, (size_t)cs_rows};
    size_t global[2] = {((size_t)cols + (size_t)cs_cols - 1) / (size_t)cs_cols * (size_t)cs_cols,
                        (size_t)blocks * (size_t)cs_rows};
    clrt_arg args[] = {clrt_arg_buf(dz->buf), clrt_arg_ulong(dz_off), clrt_arg_int(rows),
                       clrt_arg_int(cols), clrt_arg_int(CS_ROWS_PER_BLOCK),
                       clrt_arg_float(first_alpha), clrt_arg_buf(out), clrt_arg_ulong(out_off)};
    clrt_launch(b->ctx, k, 2, global, local, 8, args);
    if (blocks > 1) {
        clrt_arg fin[] = {clrt_arg_buf(out), clrt_arg_int(blocks), clrt_arg_int(cols),
                          clrt_arg_float(alpha), clrt_arg_buf(db->buf), clrt_arg_ulong(db_off)};
        launch_1d(b, K_COL_SUM_FINISH, (size_t)cols, 6, fin);
    }
}

static void cl_col_sum(backend *be, const tensor *dz, size_t dz_off, int rows, int cols,
                       float alpha, tensor *db, size_t db_off)
{
    params_current(impl(be));
    col_sum(impl(be), dz, dz_off, rows, cols, alpha, db, db_off, CS_COLS, CS_ROWS);
}

/* out[out_off + c] = sum over n rows of stats[r * 3 + c]: one work-group, fixed order. */
static void cl_reduce_stats(backend *be, const tensor *stats, size_t n, tensor *out,
                            size_t out_off)
{
    cl_backend *b = impl(be);
    params_current(b);
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
    params_current(b);
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
    if (rowlen % 16 == 0)   /* 16 bytes per work-item: a sixteenth of the work-items */
        launch_1d(b, K_GATHER_ROWS16, (size_t)m * (size_t)(rowlen / 16), 7, args);
    else
        launch_1d(b, K_GATHER_ROWS, (size_t)m * (size_t)rowlen, 7, args);
    dst->version = ++b->next_version;
}

/* dst[m x w*h] = src's rows (through idx) distorted by kernels/augment.cl. */
static void cl_augment(backend *be, const tensor *src, const tensor *idx, size_t idx_off, int m,
                       int width, int height, const augment_spec *spec, uint64_t seed,
                       uint64_t stream, uint64_t pos0, tensor *dst)
{
    cl_backend *b = impl(be);
    if (m < 0 || width <= 0 || height <= 0) bug("augment", "bad dimension");
    if (m == 0) return;
    size_t np = (size_t)width * (size_t)height;
    check_tensor("augment", "src", src, DT_U8, 0, 0);
    check_tensor("augment", "dst", dst, DT_U8, 0, (size_t)m * np);
    if (idx) check_tensor("augment", "idx", idx, DT_U32, idx_off, (size_t)m);
    else check_tensor("augment", "src", src, DT_U8, idx_off * np, (size_t)m * np);
    if (!b->augment) b->augment = augment_cl_create(b->ctx);
    size_t rows = src->count / np;
    augment_cl_run(b->augment, src->buf, rows, idx ? idx->buf : NULL, idx_off, m, width, height,
                   spec, seed, stream, pos0, dst->buf);
    dst->version = ++b->next_version;
    drop_csr(dst);   /* a kernel wrote it: no sparse copy from host pixels describes it */
}

/* ---- optimizers --------------------------------------------------------------------------- */

/* Dies unless u's parameters and optimizer state hold its n elements (Adam's bias corrections
 * positive): what both update() and sparse_step's update in place read. */
static void check_update(const char *op, const update_args *u)
{
    bool adam = u->kind == OPT_ADAM || u->kind == OPT_ADAMW;
    bool velocity = u->kind == OPT_MOMENTUM || u->kind == OPT_NESTEROV;
    check_tensor(op, "params", u->params, DT_F32, 0, u->n);
    if (adam || velocity) check_tensor(op, "state1", u->state1, DT_F32, 0, u->n);
    if (adam) check_tensor(op, "state2", u->state2, DT_F32, 0, u->n);
    if (adam && !(u->bc1 > 0.0f && u->bc2 > 0.0f))
        bug(op, "Adam's bias corrections must be positive (adam_bias_corrections)");
}

static void cl_update(backend *be, const update_args *u)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!u) bug("update", "no arguments");
    if (u->n == 0) return;
    check_update("update", u);
    check_tensor("update", "grads", u->grads, DT_F32, 0, u->n);
    u->params->version = ++b->next_version;   /* a kernel writes them (a fused step's mirror is stale) */
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
        clrt_arg args[] = {p, g, clrt_arg_buf(u->state1->buf), clrt_arg_buf(u->state2->buf), n,
                           lr, clrt_arg_float(u->beta1), clrt_arg_float(u->beta2),
                           clrt_arg_float(u->eps), wd, clrt_arg_float(u->bc1),
                           clrt_arg_float(u->bc2)};
        launch_1d(b, u->kind == OPT_ADAM ? K_UPDATE_ADAM : K_UPDATE_ADAMW, u->n, 12, args);
        break;
    }
    default: bug("update", "unknown optimizer");
    }
}

/* ---- layers --------------------------------------------------------------------------------
 * The three products of a layer as its plan says (cl_layers.c chose it): the fused kernels of
 * kernels/layers.cl, the first layer over its nonzero pixels (kernels/sparse.cl), or a gemm
 * (gemm.cl's tiles or CLBlast) with the element-wise kernels around it. One program per layer
 * shape, built on first use and cached by the runtime (and on disk). */

/* Kernel `name` of file from the program of the kernels `set` names (space-separated, name
 * among them; NULL: its family's), kept in the back-end's table. */
static clrt_kernel *layer_kernel_of(cl_backend *b, const char *file, const char *opts,
                                    const char *name, const char *set)
{
    char key[256];
    snprintf(key, sizeof key, "%s|%s|%s", file, opts, name);
    size_t n = sizeof b->layer_kernels / sizeof b->layer_kernels[0];
    for (size_t i = 0; i < n; i++) {
        if (b->layer_kernels[i].k && strcmp(b->layer_kernels[i].key, key) == 0)
            return b->layer_kernels[i].k;
        if (!b->layer_kernels[i].k) {
            snprintf(b->layer_kernels[i].key, sizeof b->layer_kernels[i].key, "%s", key);
            b->layer_kernels[i].k = set_kernel(b->ctx, file, opts, name, set);
            return b->layer_kernels[i].k;
        }
    }
    return set_kernel(b->ctx, file, opts, name, set);   /* the table is full: the runtime caches */
}

static clrt_kernel *layer_kernel(cl_backend *b, const char *file, const char *opts,
                                 const char *name)
{
    return layer_kernel_of(b, file, opts, name, NULL);
}

static int vector_width(int k)
{
    static const int widths[] = {16, 8, 4, 2, 1};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        if (k % widths[i] == 0) return widths[i];
    return 1;
}

static void check_idx(const char *op, const tensor *idx, size_t idx_off, int m)
{
    if (idx) check_tensor(op, "idx", idx, DT_U32, idx_off, (size_t)m);
}

/* The plan of a call: the one it carries, else one chosen here for its shape (tests and
 * callers that did not plan) and kept with the others. */
static const layer_plan *plan_for(backend *be, const layer_plan *plan, int m, int k, int n,
                                  const tensor *x, bool indexed, activation act);

/* The sparse copy of x when the plan's path is sparse and x has one (written by write_images)
 * from a row boundary; NULL sends the product to the fused kernels, the CPU row's dense path. */
static pixel_csr *sparse_of(const tensor *x, size_t x_off, int k)
{
    pixel_csr *c = x->csr;
    if (!c || c->k != k || x_off % (size_t)k != 0) return NULL;
    return c;
}

/* sparse.cl's options for a layer under plan p (the weight-gradient kernels ignore RB), and
 * the kernels p launches from it: one program holds the layer's sparse kernels (a program
 * costs a fixed build time on top of its kernels': cl_runtime.h). */
static void sparse_program(const layer_plan *p, int k, int n, char *opts, size_t len, char *set,
                           size_t set_len)
{
    snprintf(opts, len, "-DK=%d -DN=%d -DCB=%d -DRB=%d", k, n, p->sparse.cb, p->sparse.rb);
    /* under sparse_step (sparse_step.cl trains the layer) the forward kernels only */
    bool csc = p->sparse.csc && !p->shape.indexed, wgt = p->wgt == LP_SPARSE && !p->forward_only;
    snprintf(set, set_len, "%s%s%s", p->fwd == LP_SPARSE ? "transpose_pad sparse_forward " : "",
             !wgt || p->sparse_step ? "" : csc ? "sparse_weights_csc " : "sparse_weights ",
             wgt && !p->sparse_step ? "sparse_weights_sum" : "");
    size_t used = strlen(set);
    while (used > 0 && set[used - 1] == ' ') set[--used] = 0;   /* the same set, however made */
}

/* x's rows through idx, gathered into a scratch tensor (the gemm reads contiguous rows). */
static const tensor *gathered(backend *be, const tensor *x, const tensor *idx, size_t idx_off,
                              int m, int k)
{
    if (!idx) return x;
    cl_backend *b = impl(be);
    size_t need = (size_t)m * (size_t)k;
    if (!b->gather_scratch || b->gather_scratch->count < need) {
        cl_release(be, b->gather_scratch);   /* OpenCL keeps it while queued work uses it */
        b->gather_scratch = cl_alloc(be, DT_U8, need, "gathered rows");
    }
    cl_gather_rows(be, x, k, idx, idx_off, m, b->gather_scratch);
    return b->gather_scratch;
}

static gemm_kind gemm_of(layer_path p) { return p == LP_CLBLAST ? GEMM_CLBLAST : GEMM_BUILTIN; }

static void sparse_forward(cl_backend *b, const layer_plan *p, const pixel_csr *c,
                           const linear_forward_args *a)
{
    const clrt_buf *ib = a->idx ? a->idx->buf : b->dummy;
    int k = a->k, n = a->n, cb = p->sparse.cb, np = (n + 15) / 16 * 16, rb = p->sparse.rb;
    char opts[128], set[128];
    sparse_program(p, k, n, opts, sizeof opts, set, sizeof set);
    clrt_buf *wt = grown(b, &b->layer_scratch, (size_t)k * (size_t)np * sizeof(float), "layer scratch");
    size_t tg = (size_t)k;
    clrt_arg targs[] = {clrt_arg_buf(a->w->buf), clrt_arg_ulong(a->w_off), clrt_arg_buf(wt)};
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse.cl", opts, "transpose_pad", set), 1, &tg, NULL, 3, targs);
    size_t g[2] = {(size_t)(np / 16 / cb), ((size_t)a->m + (size_t)rb - 1) / (size_t)rb};
    size_t l[2] = {1, 1};
    clrt_arg args[] = {clrt_arg_buf(c->row_ptr), clrt_arg_buf(c->nz), clrt_arg_buf(ib),
                       clrt_arg_ulong(a->idx_off), clrt_arg_int(a->idx != NULL),
                       clrt_arg_uint((uint32_t)(a->x_off / (size_t)k)), clrt_arg_int(a->m),
                       clrt_arg_float(a->alpha), clrt_arg_buf(wt), clrt_arg_buf(a->b->buf),
                       clrt_arg_ulong(a->b_off), clrt_arg_int((int)a->act), clrt_arg_buf(a->out->buf)};
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse.cl", opts, "sparse_forward", set), 2, g,
                p->serial_items ? l : NULL, 13, args);
}

/* The local size of the fused kernels: one work-item per work-group on the CPU row (PoCL
 * hands work-groups to its threads; left to choose, it made a few big groups of 128 x 784 x
 * 800's forward and ran them on one core), the driver's choice on the GPU row. */
static const size_t *serial_local(const layer_plan *p)
{
    static const size_t ones[3] = {1, 1, 1};
    return p->serial_items ? ones : NULL;
}

/* layers.cl's options for a layer under plan p reading X of type xt, and the kernels p
 * launches from it: one program holds the layer's fused kernels, each with its own block. */
static void fused_program(const layer_plan *p, int k, int n, dtype xt, char *opts, size_t len,
                          char *set, size_t set_len)
{
    const fused_plan *f = &p->fused;
    snprintf(opts, len, "-DK=%d -DN=%d -DVW=%d -DXT=%s -DFWD_RM=%d -DFWD_RN=%d -DWGT_RN=%d "
             "-DWGT_RV=%d -DINP_RM=%d -DINP_RV=%d", k, n, vector_width(k),
             xt == DT_U8 ? "uchar" : "float", f->fwd_rm, f->fwd_rn, f->wgt_rn, f->wgt_rv,
             f->inp_rm, f->inp_rv);
    /* The output layer on output_step.cl: it runs the training and evaluation passes. */
    bool wgt = p->wgt == LP_FUSED && !p->output_step && !p->forward_only;
    bool sum = wgt && p->shape.rows > f->slice_rows;
    snprintf(set, set_len, "%s%s%s%s", p->fwd == LP_FUSED && !p->output_step ? "linear_forward " : "",
             wgt ? "linear_weights " : "", sum ? "linear_weights_sum " : "",
             p->inp == LP_FUSED && p->shape.input != DT_U8 && !p->output_step && !p->forward_only
                 ? "linear_input" : "");
}

static void fused_forward(cl_backend *b, const layer_plan *p, const linear_forward_args *a)
{
    const clrt_buf *ib = a->idx ? a->idx->buf : b->dummy;
    int rn = p->fused.fwd_rn, rm = p->fused.fwd_rm;
    char opts[192], set[128];
    fused_program(p, a->k, a->n, a->x->type, opts, sizeof opts, set, sizeof set);
    size_t g[2] = {((size_t)a->n + (size_t)rn - 1) / (size_t)rn,
                   ((size_t)a->m + (size_t)rm - 1) / (size_t)rm};
    clrt_arg args[] = {clrt_arg_buf(a->x->buf), clrt_arg_ulong(a->x_off), clrt_arg_buf(ib),
                       clrt_arg_ulong(a->idx_off), clrt_arg_int(a->idx != NULL), clrt_arg_int(a->m),
                       clrt_arg_float(a->alpha), clrt_arg_buf(a->w->buf), clrt_arg_ulong(a->w_off),
                       clrt_arg_buf(a->b->buf), clrt_arg_ulong(a->b_off), clrt_arg_int((int)a->act),
                       clrt_arg_buf(a->out->buf)};
    clrt_launch(b->ctx, layer_kernel_of(b, "layers.cl", opts, "linear_forward", set), 2, g,
                serial_local(p), 13, args);
}

static void cl_linear_forward(backend *be, const linear_forward_args *a)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!a || a->m < 0 || a->k < 1 || a->n < 1) bug("linear_forward", "bad dimensions");
    if (a->m == 0) return;
    int m = a->m, k = a->k, n = a->n;
    check_tensor("linear_forward", "w", a->w, DT_F32, a->w_off, (size_t)n * (size_t)k);
    check_tensor("linear_forward", "b", a->b, DT_F32, a->b_off, (size_t)n);
    check_tensor("linear_forward", "out", a->out, DT_F32, 0, (size_t)m * (size_t)n);
    check_idx("linear_forward", a->idx, a->idx_off, m);
    if (!a->x) bug("linear_forward", "tensor x is NULL");
    if (!a->idx) check_tensor("linear_forward", "x", a->x, a->x->type, a->x_off, (size_t)m * (size_t)k);
    const layer_plan *p = plan_for(be, a->plan, m, k, n, a->x, a->idx != NULL, a->act);
    const pixel_csr *c;
    switch (p->fwd) {
    case LP_SPARSE:
        if ((c = sparse_of(a->x, a->x_off, k)) != NULL) {
            sparse_forward(b, p, c, a);
            return;
        }
        fused_forward(b, p, a);   /* images without their sparse copy */
        return;
    case LP_FUSED:
        fused_forward(b, p, a);
        return;
    case LP_TILED:
    case LP_CLBLAST: {
        const tensor *xr = gathered(be, a->x, a->idx, a->idx_off, m, k);
        gemm_args g = {.trans_b = true, .m = m, .n = n, .k = k, .alpha = a->alpha, .beta = 0.0f,
                       .a = xr, .a_off = a->idx ? 0 : a->x_off, .lda = k, .b = a->w,
                       .b_off = a->w_off, .ldb = k, .c = a->out, .c_off = 0, .ldc = n};
        gemm_run(b, gemm_of(p->fwd), &p->g_fwd, &g);
        cl_bias_act(be, a->out, 0, a->b, a->b_off, m, n, a->act);
        return;
    }
    }
    bug("linear_forward", "unknown path");
}

/* dw = alpha x the sum of the slices' partial gradients in part (their bias row last), in
 * slice order: the second pass of both weight-gradient layouts. */
static void sparse_weights_sum(cl_backend *b, const char *opts, const char *set, const clrt_buf *part, int slices,
                               const linear_weights_args *a)
{
    size_t gs = (size_t)a->k + 1;
    clrt_arg sargs[] = {clrt_arg_buf(part), clrt_arg_int(slices), clrt_arg_float(a->alpha),
                        clrt_arg_buf(a->dw->buf), clrt_arg_ulong(a->dw_off), clrt_arg_buf(a->db->buf),
                        clrt_arg_ulong(a->db_off)};
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse.cl", opts, "sparse_weights_sum", set), 1, &gs, NULL, 7, sargs);
}

/* The weight gradient from the blocked CSC copy: one work-item per block of images the rows
 * touch (per CB vectors of outputs) sums each pixel column in registers into its slice of the
 * layer scratch, then sparse_weights_sum adds the slices in order. */
static void sparse_weights_csc(cl_backend *b, const layer_plan *p, const pixel_csr *c,
                               const linear_weights_args *a)
{
    int m = a->m, k = a->k, n = a->n, cb = p->sparse.cb, np = (n + 15) / 16 * 16;
    uint32_t r0 = (uint32_t)(a->x_off / (size_t)k), br = CL_SPARSE_BLOCK_ROWS;
    uint32_t b0 = r0 / br, b1 = m > 0 ? (r0 + (uint32_t)m - 1) / br + 1 : b0 + 1;
    int slices = (int)(b1 - b0);
    char opts[128], set[128];
    sparse_program(p, k, n, opts, sizeof opts, set, sizeof set);
    size_t part_floats = (size_t)slices * ((size_t)k + 1) * (size_t)np;
    clrt_buf *part = grown(b, &b->layer_scratch, part_floats * sizeof(float), "layer scratch");
    size_t g[2] = {(size_t)slices, (size_t)(np / 16 / cb)}, l[2] = {1, 1};
    clrt_arg args[] = {clrt_arg_buf(a->dz->buf), clrt_arg_int(m), clrt_arg_uint(br),
                       clrt_arg_uint(b0), clrt_arg_buf(c->col_ptr), clrt_arg_buf(c->cnz),
                       clrt_arg_uint(r0), clrt_arg_buf(part)};
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse.cl", opts, "sparse_weights_csc", set), 2, g,
                p->serial_items ? l : NULL, 8, args);
    sparse_weights_sum(b, opts, set, part, slices, a);
}

static void sparse_weights(cl_backend *b, const layer_plan *p, pixel_csr *c,
                           const linear_weights_args *a)
{
    if (p->sparse.csc && !a->idx && csc_build(b, c)) {
        sparse_weights_csc(b, p, c, a);
        return;
    }
    const clrt_buf *ib = a->idx ? a->idx->buf : b->dummy;
    int m = a->m, k = a->k, n = a->n, cb = p->sparse.cb, np = (n + 15) / 16 * 16;
    int slices = m > p->sparse.slice_rows ? (m + p->sparse.slice_rows - 1) / p->sparse.slice_rows : 1;
    int rows_per_slice = (m + slices - 1) / slices;
    if (rows_per_slice < 1) rows_per_slice = 1;
    char opts[128], set[128];
    sparse_program(p, k, n, opts, sizeof opts, set, sizeof set);
    size_t part_floats = (size_t)slices * ((size_t)k + 1) * (size_t)np;
    clrt_buf *part = grown(b, &b->layer_scratch, part_floats * sizeof(float), "layer scratch");
    size_t g[2] = {(size_t)(np / 16 / cb), (size_t)slices}, l[2] = {1, 1};
    clrt_arg args[] = {clrt_arg_buf(a->dz->buf), clrt_arg_int(m), clrt_arg_int(rows_per_slice),
                       clrt_arg_buf(c->row_ptr), clrt_arg_buf(c->nz), clrt_arg_buf(ib),
                       clrt_arg_ulong(a->idx_off), clrt_arg_int(a->idx != NULL),
                       clrt_arg_uint((uint32_t)(a->x_off / (size_t)k)), clrt_arg_buf(part)};
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse.cl", opts, "sparse_weights", set), 2, g,
                p->serial_items ? l : NULL, 10, args);
    sparse_weights_sum(b, opts, set, part, slices, a);
}

static void fused_weights(cl_backend *b, const layer_plan *p, const linear_weights_args *a)
{
    const clrt_buf *ib = a->idx ? a->idx->buf : b->dummy;
    int m = a->m, k = a->k, n = a->n;
    int slices = m > p->fused.slice_rows ? (m + p->fused.slice_rows - 1) / p->fused.slice_rows : 1;
    int rows_per_slice = slices > 1 ? (m + slices - 1) / slices : (m > 0 ? m : 1);
    size_t nk = (size_t)n * (size_t)k + (size_t)n;
    int vw = vector_width(k), rn = p->fused.wgt_rn, rv = p->fused.wgt_rv;
    char opts[192], set[128];
    fused_program(p, k, n, a->x->type, opts, sizeof opts, set, sizeof set);
    clrt_buf *part = slices > 1 ? grown(b, &b->layer_scratch, (size_t)slices * nk * sizeof(float),
                                        "layer scratch")
                                : b->dummy;
    size_t kv = (size_t)(k / vw);
    size_t g[3] = {(kv + (size_t)rv - 1) / (size_t)rv, ((size_t)n + (size_t)rn - 1) / (size_t)rn,
                   (size_t)slices};
    clrt_arg args[] = {clrt_arg_buf(a->dz->buf), clrt_arg_int(m), clrt_arg_int(rows_per_slice),
                       clrt_arg_buf(a->x->buf), clrt_arg_ulong(a->x_off), clrt_arg_buf(ib),
                       clrt_arg_ulong(a->idx_off), clrt_arg_int(a->idx != NULL),
                       clrt_arg_float(a->alpha), clrt_arg_buf(a->dw->buf), clrt_arg_ulong(a->dw_off),
                       clrt_arg_buf(a->db->buf), clrt_arg_ulong(a->db_off), clrt_arg_buf(part)};
    clrt_launch(b->ctx, layer_kernel_of(b, "layers.cl", opts, "linear_weights", set), 3, g,
                serial_local(p), 14, args);
    if (slices > 1) {
        size_t gs = nk;
        clrt_arg sargs[] = {clrt_arg_buf(part), clrt_arg_int(slices), clrt_arg_float(a->alpha),
                            clrt_arg_buf(a->dw->buf), clrt_arg_ulong(a->dw_off),
                            clrt_arg_buf(a->db->buf), clrt_arg_ulong(a->db_off)};
        clrt_launch(b->ctx, layer_kernel_of(b, "layers.cl", opts, "linear_weights_sum", set), 1, &gs,
                    NULL, 7, sargs);
    }
}

static void cl_linear_weights(backend *be, const linear_weights_args *a)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!a || a->m < 0 || a->k < 1 || a->n < 1) bug("linear_weights", "bad dimensions");
    int m = a->m, k = a->k, n = a->n;
    check_tensor("linear_weights", "dz", a->dz, DT_F32, 0, (size_t)m * (size_t)n);
    check_tensor("linear_weights", "dw", a->dw, DT_F32, a->dw_off, (size_t)n * (size_t)k);
    check_tensor("linear_weights", "db", a->db, DT_F32, a->db_off, (size_t)n);
    check_idx("linear_weights", a->idx, a->idx_off, m);
    if (!a->x) bug("linear_weights", "tensor x is NULL");
    if (!a->idx) check_tensor("linear_weights", "x", a->x, a->x->type, a->x_off, (size_t)m * (size_t)k);
    const layer_plan *p = plan_for(be, a->plan, m, k, n, a->x, a->idx != NULL, ACT_NONE);
    pixel_csr *c;
    switch (p->wgt) {
    case LP_SPARSE:
        if ((c = sparse_of(a->x, a->x_off, k)) != NULL) {
            sparse_weights(b, p, c, a);
            return;
        }
        fused_weights(b, p, a);   /* images without their sparse copy */
        return;
    case LP_FUSED:
        fused_weights(b, p, a);
        return;
    case LP_TILED:
    case LP_CLBLAST: {
        const tensor *xr = gathered(be, a->x, a->idx, a->idx_off, m, k);
        gemm_args g = {.trans_a = true, .m = n, .n = k, .k = m, .alpha = a->alpha, .beta = 0.0f,
                       .a = a->dz, .a_off = 0, .lda = n, .b = xr, .b_off = a->idx ? 0 : a->x_off,
                       .ldb = k, .c = a->dw, .c_off = a->dw_off, .ldc = k};
        gemm_run(b, gemm_of(p->wgt), &p->g_wgt, &g);
        col_sum(b, a->dz, 0, m, n, 1.0f, a->db, a->db_off, p->cs_cols, p->cs_rows);
        return;
    }
    }
    bug("linear_weights", "unknown path");
}

static void cl_linear_input(backend *be, const linear_input_args *a)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!a || a->m < 0 || a->k < 1 || a->n < 1) bug("linear_input", "bad dimensions");
    if (a->m == 0) return;
    int m = a->m, k = a->k, n = a->n;
    size_t mk = (size_t)m * (size_t)k;
    check_tensor("linear_input", "dz", a->dz, DT_F32, 0, (size_t)m * (size_t)n);
    check_tensor("linear_input", "w", a->w, DT_F32, a->w_off, (size_t)n * (size_t)k);
    check_tensor("linear_input", "da", a->da, DT_F32, 0, mk);
    if (a->act != ACT_NONE) check_tensor("linear_input", "a_prev", a->a_prev, DT_F32, 0, mk);
    const layer_plan *p = plan_for(be, a->plan, m, k, n, NULL, false, a->act);
    if (p->inp == LP_TILED || p->inp == LP_CLBLAST) {
        gemm_args g = {.m = m, .n = k, .k = n, .alpha = 1.0f, .beta = 0.0f, .a = a->dz, .lda = n,
                       .b = a->w, .b_off = a->w_off, .ldb = k, .c = a->da, .ldc = k};
        gemm_run(b, gemm_of(p->inp), &p->g_inp, &g);
        act_backward(b, a->da, 0, a->a_prev, 0, mk, a->act, a->a_scale);
        return;
    }
    int vw = vector_width(k), rm = p->fused.inp_rm, rv = p->fused.inp_rv;
    char opts[192], set[128];
    fused_program(p, k, n, p->shape.input, opts, sizeof opts, set, sizeof set);
    size_t kv = (size_t)(k / vw);
    size_t g[2] = {(kv + (size_t)rv - 1) / (size_t)rv, ((size_t)m + (size_t)rm - 1) / (size_t)rm};
    clrt_arg args[] = {clrt_arg_buf(a->dz->buf), clrt_arg_int(m), clrt_arg_buf(a->w->buf),
                       clrt_arg_ulong(a->w_off),
                       clrt_arg_buf(a->act != ACT_NONE ? a->a_prev->buf : b->dummy),
                       clrt_arg_int((int)a->act), clrt_arg_float(a->a_scale), clrt_arg_buf(a->da->buf)};
    clrt_launch(b->ctx, layer_kernel_of(b, "layers.cl", opts, "linear_input", set), 2, g,
                serial_local(p), 8, args);
}

/* ---- plans -------------------------------------------------------------------------------- */

static const layer_plan *cl_plan_layer(backend *be, const layer_shape *s)
{
    cl_backend *b = impl(be);
    if (!s || s->k < 1 || s->n < 1 || s->rows < 0) bug("plan_layer", "bad shape");
    /* The same shape planned twice gets the same plan (tests plan on every call). */
    for (plan_node *q = b->plans; q; q = q->next) {
        const layer_shape *o = &q->plan.shape;
        if (o->rows == s->rows && o->k == s->k && o->n == s->n && o->input == s->input &&
            o->density == s->density && o->indexed == s->indexed && o->act == s->act &&
            o->output == s->output)
            return &q->plan;
    }
    plan_node *q = xcalloc(1, sizeof *q, "layer plan");
    cl_layer_plan_choose(&b->traits, s, &q->plan);
    q->next = b->plans;
    b->plans = q;
    if (q->plan.sparse_step) b->sparse_home = &q->plan;
    return &q->plan;
}

static const layer_plan *plan_for(backend *be, const layer_plan *plan, int m, int k, int n,
                                  const tensor *x, bool indexed, activation act)
{
    if (plan) return plan;
    layer_shape s = {.rows = m, .k = k, .n = n, .input = x ? x->type : DT_F32,
                     .density = x && x->csr ? x->csr->density : 1.0, .indexed = indexed,
                     .act = act};
    return cl_plan_layer(be, &s);
}

static void cl_describe_plan(const backend *be, const layer_plan *p, char *buf, size_t len)
{
    /* The output layer above a first layer that sparse_step runs: its kernels are that pass. */
    const layer_plan *h = ((const cl_backend *)be->impl)->sparse_home;
    if (h && p != h && p->shape.output && p->shape.rows == h->shape.rows &&
        p->shape.k == h->shape.n && p->shape.n == h->shape.step_classes) {
        snprintf(buf, len, "%d->%d (float32, %d rows): %s layer 1's sparse_step pass", p->shape.k,
                 p->shape.n, p->shape.rows, h->forward_only ? "evaluated in" : "in");
        return;
    }
    cl_layer_plan_describe(p, buf, len);
}

/* ---- the fused step (kernels/fused_step.cl) --------------------------------------------- */

static const step_plan *cl_plan_step(backend *be, const step_shape *s, char *desc, size_t len)
{
    cl_backend *b = impl(be);
    if (!s || s->n_layers < 1 || s->n_layers > MODEL_MAX_LAYERS || !s->sizes)
        bug("plan_step", "bad shape");
    step_node *q = xcalloc(1, sizeof *q, "step plan");
    cl_step_plan_choose(&b->traits, s, &q->plan);
    q->optimizer = s->optimizer;
    q->act = s->act;
    memcpy(q->sizes, s->sizes, (size_t)(s->n_layers + 1) * sizeof(int));
    q->next = b->steps;
    b->steps = q;
    cl_step_plan_describe(&q->plan, desc, len);
    /* Trained by the fused step, the network's layers launch only their forward kernels
     * (evaluation): their programs leave the others out. */
    for (plan_node *p = b->plans; q->plan.fused && p; p = p->next)
        for (int l = 0; l < s->n_layers; l++)
            if (p->plan.shape.rows == s->rows && p->plan.shape.k == s->sizes[l] &&
                p->plan.shape.n == s->sizes[l + 1])
                p->plan.forward_only = true;
    return q->plan.fused ? &q->plan : NULL;
}

/* "a,b,c" of n numbers into buf. */
static void join_numbers(char *buf, size_t len, const size_t *v, int n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", i ? "," : "", v[i]);
}

/* The program of q's network with the parameter layout of a (the first layer sparse or not),
 * and its kernels. */
static void step_kernels(cl_backend *b, step_node *q, const train_step_args *a, bool sparse)
{
    const step_plan *p = &q->plan;
    int L = p->n_layers;
    size_t sizes[MODEL_MAX_LAYERS + 1], tstart[MODEL_MAX_LAYERS + 1];
    tstart[0] = 0;
    for (int l = 0; l <= L; l++) sizes[l] = (size_t)q->sizes[l];
    for (int l = 0; l < L; l++)
        tstart[l + 1] = tstart[l] + (size_t)(sparse && l == 0 ? cl_step_sparse_tiles(p, q->sizes[0], q->sizes[1])
                                                              : cl_step_layer_tiles(p, q->sizes[l], q->sizes[l + 1]));
    char sz[256], wo[512], bo[512], ts[256], opts[1800];
    join_numbers(sz, sizeof sz, sizes, L + 1);
    join_numbers(wo, sizeof wo, a->w_off, L);
    join_numbers(bo, sizeof bo, a->b_off, L);
    join_numbers(ts, sizeof ts, tstart, L + 1);
    int used = snprintf(opts, sizeof opts, "-DNL=%d -DSIZES=%s -DWOFFS=%s -DBOFFS=%s -DTSTARTS=%s "
                        "-DACT=%d -DOPT=%d -DVW=%d -DRN=%d -DRV=%d -DCLASSES=%d", L, sz, wo, bo, ts,
                        (int)q->act, (int)q->optimizer, p->vw, p->rn, p->rv, q->sizes[L]);
    if (sparse && used > 0 && (size_t)used < sizeof opts)
        snprintf(opts + used, sizeof opts - (size_t)used, " -DSPARSE0=1 -DSB=%d -DPR=%d", p->sb, p->pr);
    /* Where the steps keep W_0 in wt (not under Adam), the sparse program holds wt_to_params
     * besides (params_current). */
    bool adam = q->optimizer == OPT_ADAM || q->optimizer == OPT_ADAMW;
    const char *set = sparse && !adam ? FUSED_SPARSE_KERNELS : NULL;
    q->forward_backward[sparse] = set_kernel(b->ctx, "fused_step.cl", opts, "step_forward_backward", set);
    q->update[sparse] = set_kernel(b->ctx, "fused_step.cl", opts, "step_update", set);
    if (set) q->to_params = set_kernel(b->ctx, "fused_step.cl", opts, "wt_to_params", set);
    /* This kernel's registers may allow fewer work-items than the plan's. */
    size_t kmax = clrt_kernel_max_wg(b->ctx, q->forward_backward[sparse]);
    while ((size_t)q->plan.wg > kmax && q->plan.wg > 1) q->plan.wg /= 2;
}

/* sparse_step.cl's ROW_BLOCK: the rows of a slice whose dH part1 keeps between the block's
 * forward pass and its scatter into the slab (64, 256 and 1,024 measured the same). */
#define SPARSE_STEP_ROW_BLOCK 256

/* The options and kernels of sparse_step.cl's program for a network's shape: one place, so that
 * the program built ahead (backend_cl_prefetch_training) is the one launched. */
static void sparse_step_options(int k, int h, int n, activation act, char *buf, size_t len)
{
    snprintf(buf, len, "-DK=%d -DH=%d -DN=%d -DACT=%d -DROW_BLOCK=%d", k, h, n, (int)act,
             SPARSE_STEP_ROW_BLOCK);
}

/* A training's: its pass and sum, and the statistics sum every training launches besides
 * (reduce.cl's, included), so that the seed's network builds one program (on PoCL each costs
 * about 0.2 s past the first); the prefetch adds the optimizer's update (update.cl's). */
#define SPARSE_STEP_KERNELS "sparse_step sparse_step_sum reduce_stats"
/* Where the fused step trains (forward_only plans), the evaluation's alone. */
#define SPARSE_EVAL_KERNELS "sparse_step"

/* Kernel `name` (the statistics sum or an update) from the program of sparse_home's training,
 * or, where none holds it (no prefetch named the update), from one of its own of that file. */
static clrt_kernel *sparse_program_kernel(cl_backend *b, const char *name)
{
    const layer_shape *s = &b->sparse_home->shape;
    char opts[96];
    sparse_step_options(s->k, s->n, s->step_classes, s->act, opts, sizeof opts);
    return family_kernel(b->ctx, "sparse_step.cl", opts, name);
}

/* Slices of m rows for the one-pass kernels (one work-item each): enough for 8 items per
 * compute unit, each at least min_rows rows (*rows gets the rows a slice takes). */
static size_t row_slices(const cl_backend *b, int m, size_t min_rows, size_t *rows)
{
    size_t cu = b->traits.compute_units ? b->traits.compute_units : 1;
    *rows = ((size_t)m + 8 * cu - 1) / (8 * cu);
    if (*rows < min_rows) *rows = min_rows;
    return ((size_t)m + *rows - 1) / *rows;
}

/* Rows per work-item of output_step: one item for a mini-batch, else enough slices for 8 items
 * per compute unit. */
#define OUTPUT_STEP_MIN_SLICE 256

/* The output layer in one pass (kernels/output_step.cl) on the CPU row, for at most 16
 * hidden inputs and 16 classes: the per-layer path's five launches over 10-wide rows (the
 * seed's 784-10-10) spent more on PoCL's per-launch and per-row overheads than on the math. */
static bool cl_output_step(backend *be, const output_step_args *a)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!a || a->m < 1 || a->k < 1 || a->n < 1) bug("output_step", "bad dimensions");
    if (!cl_output_step_fits(&b->traits, a->k, a->n)) return false;
    int m = a->m, k = a->k, n = a->n;
    size_t mk = (size_t)m * (size_t)k, mn = (size_t)m * (size_t)n, nk = (size_t)n * (size_t)k;
    check_tensor("output_step", "h", a->h, DT_F32, 0, mk);
    check_tensor("output_step", "w", a->w, DT_F32, a->w_off, nk);
    check_tensor("output_step", "b", a->b, DT_F32, a->b_off, (size_t)n);
    check_tensor("output_step", "labels", a->labels, DT_U8, a->l_off, (size_t)m);
    check_tensor("output_step", "z", a->z, DT_F32, 0, mn);
    check_tensor("output_step", "stats", a->stats, DT_F32, a->stat_row0 * STATS_PER_ROW,
                 (size_t)m * STATS_PER_ROW);
    if (a->backward) {
        check_tensor("output_step", "dw", a->dw, DT_F32, a->dw_off, nk);
        check_tensor("output_step", "db", a->db, DT_F32, a->db_off, (size_t)n);
        check_tensor("output_step", "da", a->da, DT_F32, 0, mk);
    }
    size_t rows, slices = row_slices(b, m, OUTPUT_STEP_MIN_SLICE, &rows);
    char opts[64];
    snprintf(opts, sizeof opts, "-DK=%d -DN=%d -DACT=%d", k, n, (int)a->act);
    const char *set = a->backward && m > OUTPUT_STEP_MIN_SLICE ? "output_step output_step_sum" : "output_step";
    bool sum = a->backward && slices > 1;
    clrt_buf *part = sum ? grown(b, &b->layer_scratch, slices * (nk + (size_t)n) * sizeof(float),
                                        "layer scratch")
                                : b->dummy;
    const clrt_buf *none = b->dummy;
    clrt_arg args[] = {
        clrt_arg_int(a->backward), clrt_arg_buf(a->h->buf), clrt_arg_int(m), clrt_arg_int((int)rows), clrt_arg_buf(a->w->buf),
        clrt_arg_ulong(a->w_off), clrt_arg_buf(a->b->buf), clrt_arg_ulong(a->b_off),
        clrt_arg_buf(a->labels->buf), clrt_arg_ulong(a->l_off), clrt_arg_float(a->scale),
        clrt_arg_buf(a->z->buf), clrt_arg_buf(a->stats->buf), clrt_arg_ulong(a->stat_row0),
        clrt_arg_float(a->a_scale), clrt_arg_buf(a->backward ? a->da->buf : none),
        clrt_arg_int(slices == 1), clrt_arg_buf(a->backward ? a->dw->buf : none),
        clrt_arg_ulong(a->dw_off), clrt_arg_buf(a->backward ? a->db->buf : none),
        clrt_arg_ulong(a->db_off), clrt_arg_buf(part),
    };
    static const size_t one = 1;
    clrt_launch(b->ctx, layer_kernel_of(b, "output_step.cl", opts, "output_step", set), 1, &slices,
                &one, 22, args);
    if (sum) {
        size_t gs = nk + (size_t)n;
        clrt_arg sargs[] = {clrt_arg_buf(part), clrt_arg_int((int)slices), clrt_arg_buf(a->dw->buf),
                            clrt_arg_ulong(a->dw_off), clrt_arg_buf(a->db->buf), clrt_arg_ulong(a->db_off)};
        clrt_launch(b->ctx, layer_kernel_of(b, "output_step.cl", opts, "output_step_sum", set), 1,
                    &gs, NULL, 6, sargs);
    }
    return true;
}

/* Rows per work-item of sparse_step: at least this many (each slice zeroes and the sum reads
 * its (k + 1) x 16 floats), else enough slices for 8 items per compute unit. */
#define SPARSE_STEP_MIN_SLICE 512

/* W1^T of a's parameters, padded to 16 lanes (sparse_step.cl's wt): the one sparse_step_sum
 * wrote with their last update, else (new parameters, written by the host or updated apart,
 * as under mpirun) transposed here from a read-back: 31 KB for the seed's network, once a
 * training where the pass updates. */
static clrt_buf *sparse_weights_mirror(cl_backend *b, const sparse_step_args *a)
{
    int k = a->k, h = a->h;
    size_t bytes = (size_t)k * 16 * sizeof(float);
    if (!b->sparse_wt.buf || clrt_buf_size(b->sparse_wt.buf) < bytes) {
        clrt_free(b->sparse_wt.buf);
        b->sparse_wt.buf = clrt_alloc(b->ctx, bytes, "sparse_step's transposed weights");
        b->sparse_wt.params = NULL;
    }
    if (b->sparse_wt.params != a->params || b->sparse_wt.version != a->params->version ||
        b->sparse_wt.w1_off != a->w1_off || b->sparse_wt.k != k || b->sparse_wt.h != h) {
        size_t hk = (size_t)h * (size_t)k;
        float *w = xmalloc(hk * sizeof *w, "the first layer's weights");
        float *wt = xcalloc((size_t)k * 16, sizeof *wt, "the first layer's weights");
        clrt_read(b->ctx, a->params->buf, a->w1_off * sizeof(float), hk * sizeof *w, w);
        for (int c = 0; c < h; c++)
            for (int i = 0; i < k; i++) wt[(size_t)i * 16 + (size_t)c] = w[(size_t)c * (size_t)k + (size_t)i];
        clrt_write(b->ctx, b->sparse_wt.buf, 0, bytes, wt);
        free(w);
        free(wt);
        b->sparse_wt.params = a->params;
        b->sparse_wt.version = a->params->version;
        b->sparse_wt.w1_off = a->w1_off;
        b->sparse_wt.k = k;
        b->sparse_wt.h = h;
    }
    return b->sparse_wt.buf;
}

/* A network of one hidden layer over the images' sparse copy in one pass (sparse_step.cl) on
 * the CPU row: the forward pass, softmax, dZ, dH and both weight gradients of a row while its
 * nonzeros are at hand, then the slices' sums with the update: two launches a step where the
 * per-layer path takes seven, reading the nonzeros once, not twice. */
static bool cl_sparse_step(backend *be, const sparse_step_args *a)
{
    cl_backend *b = impl(be);
    params_current(b);
    if (!a || a->m < 1 || a->k < 1 || a->h < 1 || a->n < 1) bug("sparse_step", "bad dimensions");
    const layer_plan *p = a->plan;
    pixel_csr *c = a->x ? sparse_of(a->x, a->x_off, a->k) : NULL;
    if (!p || !p->sparse_step || p->shape.k != a->k || p->shape.n != a->h || !c ||
        (!a->backward && a->idx) || !cl_output_step_fits(&b->traits, a->h, a->n))
        return false;
    int m = a->m, k = a->k, h = a->h, n = a->n;
    size_t hk = (size_t)h * (size_t)k, nh = (size_t)n * (size_t)h;
    check_idx("sparse_step", a->idx, a->idx_off, m);
    check_tensor("sparse_step", "params", a->params, DT_F32, a->w1_off, hk);
    check_tensor("sparse_step", "params", a->params, DT_F32, a->b1_off, (size_t)h);
    check_tensor("sparse_step", "params", a->params, DT_F32, a->w2_off, nh);
    check_tensor("sparse_step", "params", a->params, DT_F32, a->b2_off, (size_t)n);
    const update_args *u = a->update;
    if (u && (!a->backward || u->params != a->params || u->n != a->params->count ||
              u->n != hk + (size_t)h + nh + (size_t)n))
        bug("sparse_step", "an update of other parameters than the pass's");
    if (u) check_update("sparse_step", u);
    if (a->backward && !u) check_tensor("sparse_step", "grads", a->grads, DT_F32, 0, a->params->count);
    check_tensor("sparse_step", "labels", a->labels, DT_U8, a->l_off, (size_t)m);
    check_tensor("sparse_step", "stats", a->stats, DT_F32, a->stat_row0 * STATS_PER_ROW,
                 (size_t)m * STATS_PER_ROW);
    size_t rows, slices = row_slices(b, m, SPARSE_STEP_MIN_SLICE, &rows);
    char opts[96];
    sparse_step_options(k, h, n, a->act, opts, sizeof opts);
    const char *set = p->forward_only ? SPARSE_EVAL_KERNELS : SPARSE_STEP_KERNELS;
    clrt_buf *wt = sparse_weights_mirror(b, a);
    static const size_t one = 1;
    uint32_t r0 = (uint32_t)(a->x_off / (size_t)k);
    /* An evaluation runs the same kernel without its backward half, writing no gradients: one
     * kernel to compile, not two (PoCL spends about 0.3 s on each at its first launch). */
    size_t part1_rows = slices * ((size_t)k + 1 + SPARSE_STEP_ROW_BLOCK);   /* slabs, then dH */
    clrt_buf *part1 = a->backward ? grown(b, &b->pass_part1, part1_rows * 16 * sizeof(float), "sparse_step scratch")
                                  : b->dummy;
    clrt_buf *part2 = a->backward ? grown(b, &b->pass_part2, slices * (nh + (size_t)n) * sizeof(float),
                                          "sparse_step scratch")
                                  : b->dummy;
    const clrt_buf *ib = a->idx ? a->idx->buf : b->dummy;
    clrt_arg args[] = {
        clrt_arg_int(a->backward), clrt_arg_buf(c->row_ptr), clrt_arg_buf(c->nz), clrt_arg_buf(ib),
        clrt_arg_ulong(a->idx_off),
        clrt_arg_int(a->idx != NULL), clrt_arg_uint(r0), clrt_arg_int(m), clrt_arg_int((int)rows),
        clrt_arg_float(a->alpha), clrt_arg_buf(wt), clrt_arg_buf(a->params->buf),
        clrt_arg_ulong(a->b1_off), clrt_arg_ulong(a->w2_off), clrt_arg_ulong(a->b2_off),
        clrt_arg_buf(a->labels->buf), clrt_arg_ulong(a->l_off), clrt_arg_float(a->scale),
        clrt_arg_buf(a->stats->buf), clrt_arg_ulong(a->stat_row0), clrt_arg_float(a->dropout),
        clrt_arg_float(a->keep_scale), clrt_arg_float(a->a_scale), clrt_arg_ulong(a->dropout_seed),
        clrt_arg_ulong(a->dropout_stream), clrt_arg_buf(part1), clrt_arg_buf(part2),
    };
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse_step.cl", opts, "sparse_step", set),
                1, &slices, &one, 27, args);
    if (!a->backward) return true;
    /* The sum, and with an update the step itself: the gradients never go through memory,
     * and the new W1 is written in the layout the next pass reads. */
    const clrt_buf *s1 = u && u->state1 ? u->state1->buf : b->dummy;
    const clrt_buf *s2 = u && u->state2 ? u->state2->buf : b->dummy;
    size_t gs = (size_t)k + 1 + nh + (size_t)n;
    clrt_arg sargs[] = {
        clrt_arg_buf(part1), clrt_arg_buf(part2), clrt_arg_int((int)slices),
        clrt_arg_float(a->alpha), clrt_arg_buf(u ? b->dummy : a->grads->buf),
        clrt_arg_ulong(a->w1_off), clrt_arg_ulong(a->b1_off), clrt_arg_ulong(a->w2_off),
        clrt_arg_ulong(a->b2_off), clrt_arg_int(u ? (int)u->kind : -1),
        clrt_arg_buf(u ? u->params->buf : b->dummy), clrt_arg_buf(s1), clrt_arg_buf(s2),
        clrt_arg_buf(wt), clrt_arg_float(u ? u->lr : 0.0f), clrt_arg_float(u ? u->momentum : 0.0f),
        clrt_arg_float(u ? u->beta1 : 0.0f), clrt_arg_float(u ? u->beta2 : 0.0f),
        clrt_arg_float(u ? u->eps : 0.0f), clrt_arg_float(u ? u->weight_decay : 0.0f),
        clrt_arg_float(u ? u->bc1 : 1.0f), clrt_arg_float(u ? u->bc2 : 1.0f),
    };
    clrt_launch(b->ctx, layer_kernel_of(b, "sparse_step.cl", opts, "sparse_step_sum", set), 1, &gs,
                NULL, 22, sargs);
    if (u) {   /* the parameters changed, and the mirror with them */
        u->params->version = ++b->next_version;
        b->sparse_wt.version = u->params->version;
    }
    b->sparse_passes++;
    return true;
}

/* The fused step's update: one work-item a tile, but on the CPU row, where the tiles are few,
 * four work-items per compute unit each taking every so many tiles (PoCL, 2 cores, --profile:
 * 784-128-10 at batch 64, 33 tiles: 115-118 -> 109-113 us a step_update, 784-256-10, 66
 * tiles: 231-233 -> 194-198 us; 784-800-10 at batch 128, 350 tiles, took 8 % longer so, and
 * keeps one a tile). */
#define STEP_UPDATE_ITEMS_PER_CU 4
#define STEP_UPDATE_FEW_TILES_PER_CU 64

/* A new buffer of bytes zeros. */
static clrt_buf *zeroed(cl_backend *b, size_t bytes, const char *name)
{
    clrt_buf *buf = clrt_alloc(b->ctx, bytes, name);
    clrt_fill32(b->ctx, buf, 0, bytes, 0);
    return buf;
}

static size_t step_update_items(const cl_backend *b, size_t tiles)
{
    size_t cu = b->traits.compute_units ? b->traits.compute_units : 1;
    if (!cl_layer_cpu_family(&b->traits) || tiles > STEP_UPDATE_FEW_TILES_PER_CU * cu) return tiles;
    return tiles < STEP_UPDATE_ITEMS_PER_CU * cu ? tiles : STEP_UPDATE_ITEMS_PER_CU * cu;
}

static void cl_train_step(backend *be, const train_step_args *a)
{
    cl_backend *b = impl(be);
    if (!a || !a->plan || !a->plan->fused) bug("train_step", "no fused step plan");
    step_node *q = NULL;
    for (step_node *s = b->steps; s; s = s->next)
        if (&s->plan == a->plan) q = s;
    if (!q) bug("train_step", "a plan this back-end did not hand out");
    int L = q->plan.n_layers, m = a->m;
    if (a->n_layers != L || m < 1) bug("train_step", "bad dimensions");
    for (int l = 0; l <= L; l++)
        if (a->sizes[l] != q->sizes[l]) bug("train_step", "not the network of the plan");
    const update_args *u = &a->u;
    bool adam = u->kind == OPT_ADAM || u->kind == OPT_ADAMW;
    bool velocity = u->kind == OPT_MOMENTUM || u->kind == OPT_NESTEROV;
    if (u->kind != q->optimizer) bug("train_step", "not the optimizer of the plan");
    if (adam && !(u->bc1 > 0.0f && u->bc2 > 0.0f))
        bug("train_step", "Adam's bias corrections must be positive (adam_bias_corrections)");
    check_tensor("train_step", "params", u->params, DT_F32, 0, u->n);
    if (adam || velocity) check_tensor("train_step", "state1", u->state1, DT_F32, 0, u->n);
    if (adam) check_tensor("train_step", "state2", u->state2, DT_F32, 0, u->n);
    size_t last = a->b_off[L - 1] + (size_t)a->sizes[L];
    if (last > u->n) bug("train_step", "the layers run past the parameters");
    size_t k0 = (size_t)a->sizes[0];
    if (a->x_indexed || a->labels_indexed) check_idx("train_step", a->idx, a->idx_off, m);
    if (!a->x_indexed) check_tensor("train_step", "x", a->x, DT_U8, a->x_row0 * k0, (size_t)m * k0);
    else check_tensor("train_step", "x", a->x, DT_U8, 0, k0);
    if (!a->labels_indexed) check_tensor("train_step", "labels", a->labels, DT_U8, a->l_row0, (size_t)m);
    else check_tensor("train_step", "labels", a->labels, DT_U8, 0, 1);
    check_tensor("train_step", "stats", a->stats, DT_F32, a->stat_row0 * STATS_PER_ROW,
                 (size_t)m * STATS_PER_ROW);
    /* The sparse copy describes every image of x (write_images), whichever rows the step reads. */
    const pixel_csr *csr = q->plan.sparse_first ? a->x->csr : NULL;
    bool sparse = csr && csr->k == a->sizes[0];
    if (!q->forward_backward[sparse]) step_kernels(b, q, a, sparse);
    bool in_wt = sparse && !adam;   /* W0_IN_WT */
    const tensor *state = in_wt && velocity ? u->state1 : NULL;
    if (b->ahead.node != q || b->ahead.params != u->params || b->ahead.state != state || !in_wt)
        params_current(b);
    bool stale = sparse && (q->mirror_version != u->params->version ||
                            (state && state->version != q->state_version));
    size_t wt_bytes = k0 * (((size_t)a->sizes[1] + 15) / 16 * 16) * sizeof(float);
    /* zeros past the layer's outputs, which the kernels never write */
    if (sparse && !q->wt) q->wt = zeroed(b, wt_bytes, "fused step's transposed weights");
    if (state && !q->st) q->st = zeroed(b, wt_bytes, "fused step's transposed velocity");

    size_t cols = 0;
    for (int l = 1; l <= L; l++) cols += (size_t)a->sizes[l];
    size_t bytes = (size_t)m * cols * sizeof(float);
    /* SPARSE0 reads the pixels in place: no float copy of the batch; x0 holds each row's first
     * nonzero of each of step_update's pixel tiles and its end instead (fused_step.cl's PTS). */
    size_t x0_bytes = sparse ? (size_t)m * ((k0 + (size_t)q->plan.pr - 1) / (size_t)q->plan.pr + 1) * sizeof(uint32_t)
                             : (size_t)m * k0 * sizeof(float);
    clrt_buf *x0 = grown(b, &b->step_x, x0_bytes, sparse ? "fused step's tile starts" : "fused step inputs");
    clrt_buf *act = grown(b, &b->step_act, bytes, "fused step activations");
    clrt_buf *dz = grown(b, &b->step_dz, bytes, "fused step gradients");
    const clrt_buf *ib = a->idx ? a->idx->buf : b->dummy;
    const clrt_buf *rows = sparse ? csr->row_ptr : b->dummy, *nzs = sparse ? csr->nz : b->dummy;
    const clrt_buf *wt = sparse ? q->wt : b->dummy;
    const clrt_buf *st = state ? q->st : b->dummy;
    bool drop = a->dropout > 0.0f;
    size_t wg = (size_t)q->plan.wg, blocks = ((size_t)m + (size_t)q->plan.block_rows - 1) / (size_t)q->plan.block_rows;
    size_t g1 = blocks * wg;
    clrt_arg args[] = {
        clrt_arg_buf(a->x->buf), clrt_arg_ulong(a->x_row0), clrt_arg_int(a->x_indexed), clrt_arg_buf(ib),
        clrt_arg_ulong(a->idx_off), clrt_arg_buf(a->labels->buf), clrt_arg_ulong(a->l_row0),
        clrt_arg_int(a->labels_indexed), clrt_arg_int(m), clrt_arg_int(q->plan.block_rows),
        clrt_arg_float(a->scale), clrt_arg_buf(u->params->buf), clrt_arg_buf(x0), clrt_arg_buf(act),
        clrt_arg_buf(dz),
        clrt_arg_buf(a->stats->buf), clrt_arg_ulong(a->stat_row0),
        clrt_arg_float(drop ? a->dropout : 0.0f), clrt_arg_float(drop ? dropout_scale(a->dropout) : 1.0f),
        clrt_arg_float(drop ? 1.0f - a->dropout : 1.0f), clrt_arg_ulong(a->dropout_seed),
        clrt_arg_ulong(a->dropout_stream0), clrt_arg_ulong(a->dropout_stream_step),
        clrt_arg_buf(rows), clrt_arg_buf(nzs), clrt_arg_buf(wt), clrt_arg_int(stale),
    };
    clrt_launch(b->ctx, q->forward_backward[sparse], 1, &g1, &wg, (int)(sizeof args / sizeof args[0]), args);
    size_t g2 = step_update_items(b, (size_t)(sparse ? q->plan.tiles_sparse : q->plan.tiles));
    const clrt_buf *s1 = adam || velocity ? u->state1->buf : b->dummy, *s2 = adam ? u->state2->buf : b->dummy;
    clrt_arg uargs[] = {
        clrt_arg_int(m), clrt_arg_buf(u->params->buf), clrt_arg_buf(x0), clrt_arg_buf(act),
        clrt_arg_buf(dz), clrt_arg_buf(s1), clrt_arg_buf(s2), clrt_arg_float(u->lr),
        clrt_arg_float(u->momentum), clrt_arg_float(u->beta1), clrt_arg_float(u->beta2),
        clrt_arg_float(u->eps), clrt_arg_float(u->weight_decay), clrt_arg_float(u->bc1),
        clrt_arg_float(u->bc2),
        clrt_arg_buf(nzs), clrt_arg_buf(wt), clrt_arg_buf(st), clrt_arg_int(stale),
    };
    /* One tile per work-group on the CPU row, as serial_local: left to choose, PoCL made big
     * groups of these branchy items (372 us a step of 784-128-10, batch 64, against 204). */
    static const size_t one_item = 1;
    clrt_launch(b->ctx, q->update[sparse], 1, &g2, cl_layer_cpu_family(&b->traits) ? &one_item : NULL,
                (int)(sizeof uargs / sizeof uargs[0]), uargs);
    /* The step wrote params: a new version, which the mirror (rewritten with them) matches. */
    u->params->version = ++b->next_version;
    b->sparse_steps += sparse;
    if (sparse) q->mirror_version = u->params->version;
    if (in_wt) {   /* W_0 and its velocity now ahead in wt and st */
        q->state_version = state ? state->version : 0;
        b->ahead.node = q;
        b->ahead.params = u->params;
        b->ahead.state = state;
    }
}

/* ---- the back-end ------------------------------------------------------------------------- */

static void cl_finish(backend *be) { clrt_finish(impl(be)->ctx); }

static void cl_destroy(backend *be)
{
    cl_backend *b = impl(be);
    clrt_free(b->scratch);
    clrt_free(b->layer_scratch);
    clrt_free(b->split_scratch);
    clrt_free(b->pass_part1);
    clrt_free(b->pass_part2);
    clrt_free(b->sparse_wt.buf);
    clrt_free(b->dummy);
    cl_release(be, b->gather_scratch);
    augment_cl_free(b->augment);
    while (b->plans) {
        plan_node *next = b->plans->next;
        free(b->plans);
        b->plans = next;
    }
    while (b->steps) {
        step_node *next = b->steps->next;
        clrt_free(b->steps->wt);
        clrt_free(b->steps->st);
        free(b->steps);
        b->steps = next;
    }
    clrt_free(b->step_x);
    clrt_free(b->step_act);
    clrt_free(b->step_dz);
    clrt_close(b->ctx);
    free(b);
    free(be);
}

const backend_test_ops backend_cl_testing = {
    .gemm = cl_gemm,
    .bias_act = cl_bias_act,
    .act_backward = cl_act_backward,
    .col_sum = cl_col_sum,
};

static const backend_ops cl_ops = {
    .name = "opencl",
    .alloc = cl_alloc,
    .release = cl_release,
    .write = cl_write,
    .read = cl_read,
    .write_images = cl_write_images,
    .softmax_xent = cl_softmax_xent,
    .reduce_stats = cl_reduce_stats,
    .gather_rows = cl_gather_rows,
    .dropout = cl_dropout,
    .update = cl_update,
    .augment = cl_augment,
    .linear_forward = cl_linear_forward,
    .linear_weights = cl_linear_weights,
    .linear_input = cl_linear_input,
    .plan_layer = cl_plan_layer,
    .describe_plan = cl_describe_plan,
    .plan_step = cl_plan_step,
    .train_step = cl_train_step,
    .output_step = cl_output_step,
    .sparse_step = cl_sparse_step,
    .finish = cl_finish,
    .destroy = cl_destroy,
};

backend *backend_cl_create(int device_index, const backend_cl_options *opt)
{
    static const backend_cl_options defaults = {GEMM_BUILTIN, KERNELS_AUTO, false, false, STEP_AUTO};
    if (!opt) opt = &defaults;
    /* clrt_open says, in the one message for each case, when there is no such device. */
    clrt_options copt = {.profiling = opt->profiling, .no_cache = opt->no_cache};
    cl_backend *b = xcalloc(1, sizeof *b, "OpenCL back-end");
    b->ctx = clrt_open(device_index, &copt);
    b->gemm = opt->gemm;
    const clrt_device_desc *dev = clrt_device(b->ctx);
    b->traits = (cl_device_traits){.cpu = strcmp(dev->type, "CPU") == 0,
                                   .max_wg = dev->max_work_group,
                                   .local_mem = (size_t)dev->local_mem,
                                   .compute_units = dev->compute_units, .gemm = opt->gemm,
                                   .family = opt->kernels, .step = opt->step};
    b->dummy = clrt_alloc(b->ctx, 16, "unused argument");
    backend *be = xmalloc(sizeof *be, "OpenCL back-end");
    be->ops = &cl_ops;
    be->impl = b;
    return be;
}

void backend_cl_prefetch_training(backend *be, const step_shape *s, const layer_shape *first)
{
    if (!be || be->ops != &cl_ops || !s) return;
    step_plan plan;   /* the fused step updates and drops out in its own kernels */
    cl_step_plan_choose(&impl(be)->traits, s, &plan);
    static const int update_kernel[] = {
        [OPT_SGD] = K_UPDATE_SGD, [OPT_MOMENTUM] = K_UPDATE_MOMENTUM,
        [OPT_NESTEROV] = K_UPDATE_NESTEROV, [OPT_ADAM] = K_UPDATE_ADAM, [OPT_ADAMW] = K_UPDATE_ADAMW,
    };
    const char *update = !plan.fused && (size_t)s->optimizer < sizeof update_kernel / sizeof update_kernel[0]
                             ? kernel_names[update_kernel[s->optimizer]].name
                             : NULL;
    /* A network of one hidden layer that sparse_step trains and evaluates (the seed's): its
     * program holds the statistics sum too (and the update where it is a launch of its own),
     * and is the only one its training builds. */
    char set[160], popts[96];
    if (!plan.fused && first && first->step_classes > 0) {
        layer_plan p;
        cl_layer_plan_choose(&impl(be)->traits, first, &p);
        if (p.sparse_step) {
            sparse_step_options(first->k, first->n, first->step_classes, first->act, popts, sizeof popts);
            bool apart = s->ranks > 1;   /* the pass updates, except where the ranks sum first */
            snprintf(set, sizeof set, "%s%s%s", SPARSE_STEP_KERNELS, apart && update ? " " : "",
                     apart && update ? update : "");
            clrt_prefetch(impl(be)->ctx, 1, &(clrt_program_spec){"sparse_step.cl", popts, set});
            return;
        }
    }
    /* Otherwise one program (epoch.cl) of the evaluation's statistics sum, the update and
     * dropout. */
    snprintf(set, sizeof set, "%s%s%s%s", kernel_names[K_REDUCE_STATS].name, update ? " " : "",
             update ? update : "", s->dropout && !plan.fused ? " dropout" : "");
    clrt_prefetch(impl(be)->ctx, 1,
                  &(clrt_program_spec){kernel_names[K_REDUCE_STATS].file, kernel_names[K_REDUCE_STATS].options, set});
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

uint64_t backend_cl_sparse_steps(const backend *be)
{
    if (!be || be->ops != &cl_ops) return 0;
    return ((const cl_backend *)be->impl)->sparse_steps;
}

uint64_t backend_cl_sparse_passes(const backend *be)
{
    if (!be || be->ops != &cl_ops) return 0;
    return ((const cl_backend *)be->impl)->sparse_passes;
}

uint64_t backend_launch_count(const backend *be)
{
    if (!be || be->ops != &cl_ops) return 0;
    return clrt_launch_count(((const cl_backend *)be->impl)->ctx);
}
