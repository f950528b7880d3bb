/* cl_layers.c: a layer's execution plan (cl_layers.h), from one table per device kind.
 *
 * The table row is the kernel family: --kernels cpu|gpu, or under auto the device's kind. A
 * row names the path of each product and the tuning values; the shape then picks, among the
 * row's gemm tiles, the one that wastes least (a product with 7 outputs does not run in a
 * 128-wide tile) and splits a long inner dimension (the batch, in the weight gradient) over
 * several slices of work-groups so that a big device has work for every compute unit. */
#include "cl_layers.h"

#include <stdio.h>
#include <string.h>

#define TO_TEXT_(x) #x
#define TO_TEXT(x) TO_TEXT_(x)

/* gemm.cl's tiles, TSM x TSN x TSK / WPTM x WPTN, by decreasing size. The GPU row offers
 * thin tiles for the thin products of these networks (10 outputs, 7-row batches). */
static const gemm_tiles gpu_tiles[] = {
    {128, 128, 16, 8, 8}, {64, 64, 16, 4, 4}, {64, 32, 16, 4, 2}, {32, 64, 16, 2, 4},
    {64, 16, 16, 4, 2},   {16, 64, 16, 2, 4}, {32, 32, 16, 2, 2}, {32, 16, 16, 2, 2},
    {16, 32, 16, 2, 2},   {32, 8, 16, 2, 1},  {8, 32, 16, 1, 2},  {16, 16, 16, 2, 2},
    {16, 8, 16, 2, 1},    {8, 16, 16, 1, 2},  {8, 8, 16, 1, 1},
};
/* On PoCL big register blocks win (128x128 about 4x the speed of 64x64); a middle and a small
 * one remain for small products. Three only: each is one build of gemm.cl, and PoCL's builds
 * are slow. */
static const gemm_tiles cpu_tiles[] = {
    {128, 128, 16, 8, 8}, {32, 32, 16, 4, 4}, {8, 8, 16, 2, 2},
};

typedef struct {
    const char *name;
    bool sparse_first;          /* blank-heavy pixels go through sparse.cl */
    layer_path dense;           /* the path of every other product */
    bool serial_items;          /* one work-item per work-group (loops over SIMD lanes) */
    bool sparse_csc;            /* the sparse weight gradient by pixel column (rows in order) */
    int sparse_rb, sparse_slice_rows, fused_slice_rows;
    const gemm_tiles *tiles;
    size_t n_tiles;
    int groups_per_cu;          /* split-K aims at this many work-groups per compute unit */
    int min_split_k;            /* and gives each slice at least this much of the inner dimension */
    size_t cs_wg;               /* the column sum's work-group size */
} kind_table;

static const kind_table tables[] = {
    {"CPU", true, LP_FUSED, true, true, 16, 4096, 4096, cpu_tiles, sizeof cpu_tiles / sizeof cpu_tiles[0],
     1, 4096, 64},
    {"GPU", false, LP_TILED, false, false, 1, 256, 4096, gpu_tiles, sizeof gpu_tiles / sizeof gpu_tiles[0],
     8, 512, 256},
};

const char *layer_path_name(layer_path p)
{
    switch (p) {
    case LP_SPARSE: return "sparse";
    case LP_FUSED: return "fused";
    case LP_TILED: return "tiled";
    case LP_CLBLAST: return "clblast";
    }
    return "?";
}

static const kind_table *table_of(const cl_device_traits *d)
{
    kernel_family f = d->family;
    if (f == KERNELS_AUTO) f = d->cpu ? KERNELS_CPU : KERNELS_GPU;
    return &tables[f == KERNELS_CPU ? 0 : 1];
}

static size_t tile_local_bytes(const gemm_tiles *t)
{
    /* gemm.cl pads each row of its local tiles by one float (bank conflicts). */
    return (size_t)t->tsk * (size_t)(t->tsm + 1 + t->tsn + 1) * sizeof(float);
}

static size_t tile_items(const gemm_tiles *t)
{
    return (size_t)(t->tsm / t->wptm) * (size_t)(t->tsn / t->wptn);
}

static double round_up(int v, int to) { return (double)((v + to - 1) / to * to); }

/* Work of a tile on C[m x n] over k, in multiply-adds: the padded product, the local-memory
 * reads of the register blocks (fewer with bigger blocks) and the global loads of the tiles
 * (counted four times: they are the slow ones). Smaller is better. */
static double tile_cost(const gemm_tiles *t, int m, int n, int k)
{
    double pm = round_up(m, t->tsm), pn = round_up(n, t->tsn), kk = round_up(k > 0 ? k : 1, t->tsk);
    double macs = pm * pn * kk;
    double local_reads = macs * (1.0 / t->wptm + 1.0 / t->wptn);
    double groups = (pm / t->tsm) * (pn / t->tsn);
    double global_loads = groups * kk * (double)(t->tsm + t->tsn);
    return macs + local_reads + 4.0 * global_loads;
}

static gemm_plan gemm_plan_from(const kind_table *tb, const cl_device_traits *d, int m, int n, int k)
{
    gemm_plan g = {tb->tiles[tb->n_tiles - 1], 1};
    double best = -1.0;
    for (size_t i = 0; i < tb->n_tiles; i++) {
        const gemm_tiles *t = &tb->tiles[i];
        if (tile_items(t) > d->max_wg || tile_local_bytes(t) > d->local_mem) continue;
        double c = tile_cost(t, m, n, k);
        if (best < 0.0 || c < best) {
            best = c;
            g.t = *t;
        }
    }
    long groups = (long)((m + g.t.tsm - 1) / g.t.tsm) * (long)((n + g.t.tsn - 1) / g.t.tsn);
    long target = (long)tb->groups_per_cu * (long)(d->compute_units ? d->compute_units : 1);
    long split = groups < target ? (target + groups - 1) / groups : 1;
    long most = k / tb->min_split_k;
    if (split > most) split = most;
    if (split > 256) split = 256;
    g.split = split > 1 ? (int)split : 1;
    return g;
}

gemm_plan cl_layer_gemm_plan(const cl_device_traits *d, int m, int n, int k)
{
    return gemm_plan_from(table_of(d), d, m, n, k);
}

bool cl_layer_cpu_family(const cl_device_traits *d) { return table_of(d) == &tables[0]; }

bool cl_output_step_fits(const cl_device_traits *d, int k, int n)
{
    return table_of(d)->serial_items && d->gemm != GEMM_CLBLAST && k >= 1 && k <= 16 && n >= 1 &&
           n <= 16;
}

bool cl_layer_sparse_wanted(const cl_device_traits *d, double density)
{
    return table_of(d)->sparse_first && d->gemm != GEMM_CLBLAST &&
           density <= CL_SPARSE_MAX_DENSITY;
}

/* 16-float vectors of outputs per sparse work-item: all of them up to 8, else the largest
 * divisor of their count up to 8 (register pressure). */
static int sparse_cb(int n)
{
    int nv = (n + 15) / 16;
    for (int cb = nv < 8 ? nv : 8; cb > 1; cb--)
        if (nv % cb == 0) return cb;
    return 1;
}

void cl_layer_plan_choose(const cl_device_traits *d, const layer_shape *s, layer_plan *p)
{
    const kind_table *tb = table_of(d);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    p->table = tb->name;
    p->serial_items = tb->serial_items;
    int m = s->rows > 0 ? s->rows : 1, k = s->k, n = s->n;

    bool sparse = tb->sparse_first && s->input == DT_U8 && s->density <= CL_SPARSE_MAX_DENSITY &&
                  k < (1 << 24);
    if (d->gemm == GEMM_CLBLAST) {
        p->fwd = p->wgt = p->inp = LP_CLBLAST;
    } else if (sparse) {
        p->fwd = p->wgt = LP_SPARSE;
        p->inp = tb->dense;
    } else {
        p->fwd = p->wgt = p->inp = tb->dense;
    }
    /* A gemm reads contiguous rows, and gather_rows moves bytes: float rows through an index
     * (tests only; the trainer indexes pixels) stay on the fused kernels, which index in place. */
    if (s->indexed && s->input != DT_U8 && (p->fwd == LP_TILED || p->fwd == LP_CLBLAST))
        p->fwd = p->wgt = LP_FUSED;

    /* Register blocks of layers.cl, measured on PoCL (bench/): a whole row of up to 16
     * outputs per work-item, more rows per item when there are few outputs. Wider layers on
     * the CPU row: 2 rows x 8 outputs (as many accumulators as 4 x 4, half the uint8-to-float
     * conversions per multiply-add: 128 x 784 x 800 on uint8 took a fifth less CPU time). */
    p->fused.fwd_rn = n <= 16 ? n : tb->serial_items ? 8 : 4;
    p->fused.fwd_rm = tb->serial_items ? (n <= 16 ? (n <= 5 ? 4 : 2) : 2) : 1;
    p->fused.wgt_rn = n <= 8 ? n : 8;
    p->fused.wgt_rv = 2;
    p->fused.inp_rm = tb->serial_items ? 4 : 1;
    p->fused.inp_rv = 2;
    p->fused.slice_rows = tb->fused_slice_rows;

    p->sparse.cb = sparse_cb(n);
    p->sparse.rb = tb->sparse_rb;
    p->sparse.slice_rows = tb->sparse_slice_rows;
    p->sparse.csc = tb->sparse_csc && !s->indexed;
    p->output_step = s->output && s->input == DT_F32 && cl_output_step_fits(d, k, n);
    /* One read of the nonzeros a step instead of two (the forward pass, the CSC copy's), and
     * no CSC copy to build. */
    p->sparse_step = sparse && p->fwd == LP_SPARSE && d->step != STEP_LAYERS &&
                     cl_output_step_fits(d, n, s->step_classes);
    p->forward_only = false;

    p->g_fwd = gemm_plan_from(tb, d, m, n, k);       /* out[m x n] = X[m x k] W^T */
    p->g_fwd.split = 1;                              /* k is the layer's width: no split */
    p->g_wgt = gemm_plan_from(tb, d, n, k, m);       /* dW[n x k] = dZ^T[n x m] X[m x k] */
    p->g_inp = gemm_plan_from(tb, d, m, k, n);       /* dA[m x k] = dZ[m x n] W[n x k] */
    p->g_inp.split = 1;

    size_t cols = 1, wg = tb->cs_wg < d->max_wg ? tb->cs_wg : d->max_wg;
    while (cols < (size_t)n && cols < 64 && cols * 2 <= wg) cols *= 2;
    size_t rows = 1;
    while (cols * rows * 2 <= wg) rows *= 2;
    p->cs_cols = (int)cols;
    p->cs_rows = (int)rows;
}

static void describe_gemm(char *buf, size_t len, const char *layout, const gemm_plan *g)
{
    snprintf(buf, len, "%s %dx%dx%d/%dx%d", layout, g->t.tsm, g->t.tsn, g->t.tsk, g->t.wptm,
             g->t.wptn);
    if (g->split > 1) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, " split-K %d", g->split);
    }
}

static void describe_product(const layer_plan *p, layer_path path, int which, char *buf, size_t len)
{
    static const char *layouts[] = {"nt", "tn", "nn"};
    const gemm_plan *g = which == 0 ? &p->g_fwd : which == 1 ? &p->g_wgt : &p->g_inp;
    char tiles[64];
    switch (path) {
    case LP_SPARSE:
        if (which == 1 && p->sparse.csc) snprintf(buf, len, "sparse CSC CB %d", p->sparse.cb);
        else snprintf(buf, len, "sparse CB %d RB %d", p->sparse.cb, which == 0 ? p->sparse.rb : 1);
        break;
    case LP_FUSED:
        if (which == 0) snprintf(buf, len, "fused RM %d RN %d", p->fused.fwd_rm, p->fused.fwd_rn);
        else if (which == 1) snprintf(buf, len, "fused RN %d RV %d", p->fused.wgt_rn, p->fused.wgt_rv);
        else snprintf(buf, len, "fused RM %d RV %d", p->fused.inp_rm, p->fused.inp_rv);
        break;
    case LP_TILED:
        describe_gemm(tiles, sizeof tiles, layouts[which], g);
        snprintf(buf, len, "tiled %s", tiles);
        break;
    case LP_CLBLAST:
        snprintf(buf, len, "clblast %s", layouts[which]);
        break;
    }
    if (which == 1 && (path == LP_TILED || path == LP_CLBLAST)) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, " + col_sum %dx%d", p->cs_cols, p->cs_rows);
    }
}

void cl_layer_plan_describe(const layer_plan *p, char *buf, size_t len)
{
    const layer_shape *s = &p->shape;
    char f[96], w[96], in[96], input[48];
    if (s->input == DT_U8)
        snprintf(input, sizeof input, "uint8, %.0f%% nonzero", 100.0 * s->density);
    else
        snprintf(input, sizeof input, "float32");
    describe_product(p, p->fwd, 0, f, sizeof f);
    describe_product(p, p->wgt, 1, w, sizeof w);
    if (s->input == DT_U8) snprintf(in, sizeof in, "none (pixels)");
    else describe_product(p, p->inp, 2, in, sizeof in);
    if (p->output_step) {   /* training and evaluation run output_step.cl */
        snprintf(f, sizeof f, "output_step (one pass with softmax)");
        snprintf(w, sizeof w, "in output_step");
        snprintf(in, sizeof in, "in output_step");
    }
    if (p->sparse_step) {   /* training and evaluation run sparse_step.cl over both layers */
        snprintf(f, sizeof f, "sparse_step, forward half (one pass with the output layer)");
        snprintf(w, sizeof w, "sparse_step (one pass with the output layer)");
    }
    if (p->forward_only) {   /* the fused step trains the network */
        snprintf(w, sizeof w, "in the fused step");
        if (s->input != DT_U8) snprintf(in, sizeof in, "in the fused step");
    }
    snprintf(buf, len, "%d->%d (%s, %d rows), %s kernels: forward %s; weights %s; input %s",
             s->k, s->n, input, s->rows, p->table, f, w, in);
}

/* ---- the fused step ------------------------------------------------------------------------ */

/* fused_step.cl's rows per register block: blocks of rows are multiples of it. */
#define STEP_RM 4

int cl_step_layer_tiles(const step_plan *p, int k, int n)
{
    int kv = k / p->vw;
    return (n + p->rn - 1) / p->rn * ((kv + p->rv - 1) / p->rv);
}

int cl_step_sparse_tiles(const step_plan *p, int k, int n)
{
    return (k + p->pr - 1) / p->pr * ((n + 15) / 16 / p->sb);
}

/* Why a network of shape s stays on the per-layer path on device d, or NULL. */
static const char *step_fallback(const cl_device_traits *d, const step_shape *s)
{
    if (d->step == STEP_LAYERS) return "--step layers";
    if (s->rows <= 0) return "full batch (the first layer's plan reads every image)";
    if (s->ranks > 1) return "mpirun with several processes (the gradients are summed between backward and update)";
    if (d->gemm == GEMM_CLBLAST) return "--gemm clblast";
    for (int l = 0; l <= s->n_layers; l++)
        if (s->sizes[l] > CL_STEP_MAX_WIDTH) return "a width above " TO_TEXT(CL_STEP_MAX_WIDTH);
    if (d->step == STEP_FUSED) return NULL;
    if (d->family != KERNELS_AUTO) return "--kernels forces a family of layer kernels";
    /* Each update tile of the fused step walks every row of the batch alone, so large batches
     * favour the per-layer gemms: on PoCL (2 cores, MNIST, an epoch with its evaluation)
     * 784-10-10 at batch 2048 took 0.18 s fused against 0.10 s per layer (batch 60000: 0.30
     * against 0.03), 784-800-10 2.5 against 2.0 s; 784-128-10 still won fused at 2048 (0.33
     * against 0.40) and at 1024 all but 784-10-10 did. */
    if (s->rows > CL_STEP_MAX_BATCH) return "a batch above " TO_TEXT(CL_STEP_MAX_BATCH) " rows";
    /* Also for blank-heavy images on a CPU, whose per-layer path reads only the nonzero
     * pixels: measured on PoCL, 784-128-10 batch 64, the fused step's 2 launches took
     * 0.34-0.46 s an epoch against the per-layer path's 10 at 0.48-0.70 s (784-800-10 batch
     * 128: 0.55-0.68 against 0.58-0.76 s); each PoCL launch costs tens of microseconds. */
    return NULL;
}

void cl_step_plan_choose(const cl_device_traits *d, const step_shape *s, step_plan *p)
{
    memset(p, 0, sizeof *p);
    p->n_layers = s->n_layers;
    p->why = step_fallback(d, s);
    if (p->why) return;
    p->fused = true;
    p->why = d->step == STEP_FUSED ? "--step fused" : "widths up to " TO_TEXT(CL_STEP_MAX_WIDTH);
    static const int widths[] = {16, 8, 4, 2, 1};
    p->vw = 1;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        bool all = true;
        for (int l = 0; l < s->n_layers; l++) all = all && s->sizes[l] % widths[i] == 0;
        if (all) { p->vw = widths[i]; break; }
    }
    /* A CPU: one block of rows per compute unit (a work-group runs on one core, and each block
     * reads all the weights once). A GPU: small blocks, many work-groups. */
    int cu = d->compute_units ? (int)d->compute_units : 1;
    int rows = d->cpu ? (s->rows + cu - 1) / cu : STEP_RM;
    p->block_rows = (rows + STEP_RM - 1) / STEP_RM * STEP_RM;
    /* PoCL vectorises a work-group's items into one loop, which turns these kernels' explicit
     * vectors into gathers: on a CPU one item per work-group, its outputs a loop. */
    size_t wg = d->cpu ? 1 : 64;
    while (wg > d->max_wg && wg > 1) wg /= 2;
    p->wg = (int)wg;
    p->rn = d->cpu ? 8 : 4;
    p->rv = d->cpu ? 2 : 1;
    for (int l = 0; l < s->n_layers; l++) p->tiles += cl_step_layer_tiles(p, s->sizes[l], s->sizes[l + 1]);
    /* The CPU row reads the first layer's nonzero pixels only (19 % of MNIST's) where the
     * images have a sparse copy: on PoCL (bench/, 2 cores) 784-128-10 at batch 64 went from
     * 0.40 to 0.31-0.33 s an epoch, 784-800-10 at batch 128 from 1.82 to 0.76 s. 32 pixels
     * per update tile (25 tiles of 784 pixels; 16, 64 and 128 measured no faster), each row's
     * first nonzero in a tile written by the forward pass (a binary search per row and tile
     * took a quarter of the update's time: 0.28 s an epoch of 784-128-10 then, 0.26 s so). */
    const kind_table *tb = table_of(d);
    p->sparse_first = tb->sparse_first && s->sizes[0] < (1 << 24);
    p->sb = sparse_cb(s->sizes[1]);
    p->pr = 32;
    p->tiles_sparse = p->tiles - cl_step_layer_tiles(p, s->sizes[0], s->sizes[1]) +
                      cl_step_sparse_tiles(p, s->sizes[0], s->sizes[1]);
}

void cl_step_plan_describe(const step_plan *p, char *buf, size_t len)
{
    if (!p->fused) {
        snprintf(buf, len, "per-layer path: %s", p->why);
        return;
    }
    snprintf(buf, len, "fused step (%s), 2 launches: forward and backward of every layer in blocks "
             "of %d rows (work-groups of %d, VW %d); gradients and update in %d tiles of %d outputs x %d "
             "vectors", p->why, p->block_rows, p->wg, p->vw, p->tiles, p->rn, p->rv);
    size_t used = strlen(buf);
    if (p->sparse_first && used < len)
        snprintf(buf + used, len - used, "; with sparse images, the first layer from their "
                 "nonzero pixels (%d tiles, %d pixels x %d vectors)", p->tiles_sparse, p->pr, p->sb);
}
