/* fused_step.cl: a whole mini-batch step of a fully-connected network in two launches (the
 * plan's "fused step", cl_layers.c), for networks whose widths are small enough that a block of
 * rows' activations and gradients are cheap to keep in global scratch:
 *
 * step_forward_backward: NDRange (ceil(m / block_rows) * WG), work-groups of WG items; group g
 *   takes the batch rows [g * block_rows, min(m, (g + 1) * block_rows)) through every layer:
 *   reads  X: row r is x[(use_x_idx ? idx[idx_off + r] : x_row0 + r) * S0 ..] (uint8 pixels,
 *          scaled by 1/255), labels[use_l_idx ? idx[idx_off + r] : l_row0 + r], params
 *   writes x0 (m x S0) = the rows' pixels as floats (unscaled); with SPARSE0 (below) instead
 *          x0 as uint[m x PTS]: each row's first nonzero of each of layer 0's update tiles,
 *          then the row's end,
 *          act[l] (m x S[l+1] at act + m * COLS(l)) = A_l, the activations after dropout
 *          (the logits' block is replaced by dZ of the output layer, (p - y) * scale),
 *          dz[l] (m x S[l+1] at dz + m * COLS(l), hidden layers) = dZ_l,
 *          stats[(stat_row0 + r) * 3 + {0, 1, 2}] as softmax_xent.cl writes them
 *   Items run along the outputs of each layer (forward: item i takes the RJ outputs from
 *   RJ * i, then RJ * (i + WG), ..., reading their rows of W contiguously in VW-wide vectors) and along VW-vectors of a layer's
 *   inputs (backward), with a barrier between layers: only the group's own rows are touched.
 * step_update: NDRange (at most TILES), item i taking the tiles i, i + size, ... (one each where
 *   the NDRange is TILES), a tile RN outputs x RV VW-vectors of inputs of one layer (all
 *   layers in one NDRange, layer l's tiles from TSTART(l)):
 *   reads  dZ_l and the layer's input (x0 or A_{l-1}; SPARSE0: the nonzeros, from x0's
 *          tile ranges) from step_forward_backward's scratch
 *   writes params, s1, s2: the tile's weights (and, for the tile at input vector 0, the biases
 *          of its outputs) updated by optimizer.cl's optimizer_step with the gradient
 *          dW = alpha dZ_l^T X_l, db = column sums of dZ_l, each summed over the m rows in
 *          row order inside one item: no atomics, the same result for any NDRange split;
 *          with SPARSE0 and W0_IN_WT (below), layer 0's weights and velocity into wt, st1
 * wt_to_params (SPARSE0): NDRange S0 x S1, W_0's place in params (s1) from wt (st1).
 *
 * Compile-time network (-D, cl_backend's step plan): NL layers, SIZES (NL + 1 widths),
 * WOFFS and BOFFS (the parameter buffer's offsets, model.h), TSTARTS (NL + 1 tile starts),
 * ACT (hidden activation: 0 none, 1 relu, 2 sigmoid), OPT (optimizer_kind), VW (a vector width
 * dividing every layer's input count), RN and RV (outputs and input vectors per update tile), CLASSES (= the last width,
 * for softmax_xent.cl). SPARSE0=1 (the CPU row, images with a sparse copy): the first layer
 * reads only the nonzero pixels, from sparse.cl's CSR (row_ptr, nz: (pixel << 8) | value),
 * through a transposed copy of its weights, wt[S0 x NP0] (NP0 = S1 rounded up to 16, zeros
 * past S1), which step_update updates in place (W0_IN_WT, with the velocity in st1 of the same
 * layout), leaving W_0's place in params and s1 behind until wt_to_params, or under Adam
 * rewrites from the updated params (stale: params or s1 changed elsewhere, and both kernels
 * read them instead); SB 16-float
 * vectors of outputs per item (a divisor of NP0 / 16); layer 0's update tiles are PR pixels
 * x SB vectors, in pixel-major order. Dropout follows the dropout kernel of activation.cl: the element
 * (r, j) of layer l's m x n block keeps its value (times keep_scale) when
 * rng_uniform(seed, stream0 + stream_step * l, r * n + j) >= p_drop, in both passes. */
#ifndef NL
#error "build with -DNL=<layers> -DSIZES=... (see the header)"
#endif

#include "vec.cl"
#include "rng.cl"
#include "activate.cl"
#include "optimizer.cl"
#include "softmax_xent.cl"
#include "packed.cl"
#include "transpose.cl"

#define RM 4   /* rows per register block of the forward and backward products */

__constant int S[NL + 1] = {SIZES};
__constant ulong WOFF[NL] = {WOFFS};
__constant ulong BOFF[NL] = {BOFFS};
__constant int TSTART[NL + 1] = {TSTARTS};

/* Columns of the scratch before layer l's block: sum of S[1..l]. */
static inline int cols_before(const int l)
{
    int c = 0;
    for (int i = 0; i < l; i++) c += S[i + 1];
    return c;
}

/* The image of the batch's row r: its row of x (and of the sparse copy). */
static inline ulong image_row(const ulong x_row0, const int use_x_idx, __global const uint *idx,
                              const ulong idx_off, const int r)
{
    return use_x_idx ? (ulong)idx[idx_off + r] : x_row0 + (ulong)r;
}

/* Start of the input row r of the first layer. */
static inline __global const uchar *pixel_row(__global const uchar *x, const ulong x_row0,
                                              const int use_x_idx, __global const uint *idx,
                                              const ulong idx_off, const int r)
{
    return x + image_row(x_row0, use_x_idx, idx, idx_off, r) * (ulong)S[0];
}

/* out[at] = act(alpha * sum + bias), and on a hidden layer its dropout (the forward pass's
 * last step, dense or sparse). */
static inline void store_output(__global float *out, const ulong at, const float sum,
                                const float alpha, const float bias, const int hidden,
                                const float p_drop, const float keep_scale, const ulong seed,
                                const ulong stream)
{
    float v = activate(alpha * sum + bias, hidden ? ACT : 0);
    if (hidden && p_drop > 0.0f) v = rng_dropout(v, p_drop, keep_scale, seed, stream, at);
    out[at] = v;
}

#define RJ 4   /* outputs per work-item of the forward product */

/* acc[i][j] = x_i . w_j over kv vectors for RM rows and RJ weight rows; row vectors whose
 * RM rows are all zero (blank pixels) are skipped: they add nothing. */
static inline void dot_block(__global const float *const x[RM], __global const float *const w[RJ],
                             const int kv, float out[RM][RJ])
{
    floatv acc[RM][RJ];
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < RJ; j++) acc[i][j] = (floatv)0.0f;
    for (int v = 0; v < kv; v++) {
        floatv xv[RM];
        bool live = false;
#pragma unroll
        for (int i = 0; i < RM; i++) {
            xv[i] = LOADF(v, x[i]);
            live = live || ANY_NONZERO(xv[i]);
        }
        if (!live) continue;
#pragma unroll
        for (int j = 0; j < RJ; j++) {
            const floatv wv = LOADF(v, w[j]);
#pragma unroll
            for (int i = 0; i < RM; i++) acc[i][j] = fma(xv[i], wv, acc[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < RJ; j++) out[i][j] = HSUM(acc[i][j]);
}


#ifndef SPARSE0
#define SPARSE0 0
#endif
#if SPARSE0
#define NV0 ((S[1] + 15) / 16)
#define NP0 (NV0 * 16)
#define PT ((S[0] + PR - 1) / PR)   /* layer 0's pixel tiles of step_update */
#define PTS (PT + 1)   /* x0's entries per row: each tile's first nonzero, then the row's end */
/* The forward pass reads the nonzeros of the row this many rows ahead, one load per 64-byte
 * line, before its own: a shuffled batch's rows lie anywhere in the 36 MB of MNIST's CSR, and
 * the loads of each row's first lines stalled the pass (784-128-10, batch 64, perf:
 * step_forward_backward 80-84 -> 71-75 us; 1, 2, 4 and 8 rows measured, 4 kept). */
#define ROWS_AHEAD 4

/* A row's first nonzero at or past each pixel tile's first pixel t * PR, into at[t] (x0's row
 * r when SPARSE0): step_update's tiles start there without a search (one binary search per
 * row and tile took a quarter of its time: 784-128-10, batch 64, perf). Called with each
 * nonzero's pixel q and index e in order as the forward pass reads them, then with q = S[0]
 * and the row's end; *next is the first tile not yet written (in a loop of its own, the
 * merge took a sixth of step_forward_backward's time). */
static inline void mark_tiles(const uint q, const uint e, int *next, __global uint *at)
{
    while (*next < PT && q >= (uint)(*next * PR)) at[(*next)++] = e;
}

/* 16 weights of pixel q for the outputs from j0 read from W_0 itself (wt is not up to date):
 * the values wt holds (zeros past S1). */
static inline float16 first_weights(__global const float *w0, const uint q, const int j0)
{
    float vals[16];
    for (int l = 0; l < 16; l++)
        vals[l] = j0 + l < S[1] ? w0[(ulong)(j0 + l) * (ulong)S[0] + q] : 0.0f;
    return vload16(0, vals);
}

/* The first layer over rows [r0, r1) from the nonzero pixels: out = act(W x / 255 + b) (and
 * dropout), item lid of wg taking SB vectors of outputs at a time. */
static inline void sparse_first_forward(__global const uint *row_ptr, __global const uint *nz,
                                        __global const float *wt, __global const float *w0,
                                        const int wt_stale, __global const float *b,
                                        const ulong x_row0, const int use_x_idx,
                                        __global const uint *idx, const ulong idx_off,
                                        const int r0, const int r1, const int lid, const int wg,
                                        __global float *out, const float p_drop,
                                        const float keep_scale, const ulong seed,
                                        const ulong stream, __global uint *tile_at)
{
    const int n = S[1], hidden = NL > 1;
    uint touched = 0;
    for (int c0 = lid * SB; c0 < NV0; c0 += wg * SB) {
        const bool marks = c0 == 0;   /* the item of the first outputs writes the tile starts */
        for (int r = r0; r < r1; r++) {
            const ulong img = image_row(x_row0, use_x_idx, idx, idx_off, r);
            const uint end = row_ptr[img + 1];
            __global uint *at = tile_at + (ulong)r * PTS;
            if (r + ROWS_AHEAD < r1) {
                const ulong later = image_row(x_row0, use_x_idx, idx, idx_off, r + ROWS_AHEAD);
                const uint lb = row_ptr[later], le = row_ptr[later + 1];
                for (uint e = lb; e < le; e += 16) touched += nz[e];
            }
            int next = 0;
            float16 acc[SB];
#pragma unroll
            for (int s = 0; s < SB; s++) acc[s] = (float16)0.0f;
            if (wt_stale) {
                for (uint e = row_ptr[img]; e < end; e++) {
                    const uint p = nz[e];
                    if (marks) mark_tiles(p >> 8, e, &next, at);
                    const float16 v = (float16)(float)(p & 255u);
                    for (int s = 0; s < SB; s++)
                        acc[s] = fma(v, first_weights(w0, p >> 8, (c0 + s) * 16), acc[s]);
                }
            } else {
                for (uint e = row_ptr[img]; e < end; e++) {
                    const uint p = nz[e];
                    if (marks) mark_tiles(p >> 8, e, &next, at);
                    const float16 v = (float16)(float)(p & 255u);
                    __global const float *w = wt + (ulong)(p >> 8) * NP0 + (ulong)c0 * 16;
#pragma unroll
                    for (int s = 0; s < SB; s++) acc[s] = fma(v, vload16(s, w), acc[s]);
                }
            }
            if (marks) {
                mark_tiles((uint)S[0], end, &next, at);
                at[PT] = end;
            }
            for (int s = 0; s < SB; s++) {
                float vals[16];
                vstore16(acc[s], 0, vals);
                for (int l = 0; l < 16; l++) {
                    const int j = (c0 + s) * 16 + l;
                    if (j >= n) break;
                    store_output(out, (ulong)r * (ulong)n + (ulong)j, vals[l], 1.0f / 255.0f, b[j],
                                 hidden, p_drop, keep_scale, seed, stream);
                }
            }
        }
    }
    if (r1 < 0) out[0] = (float)touched;   /* never (r1 >= 1): keeps the loads ahead */
}

#endif

__kernel void step_forward_backward(__global const uchar *x, const ulong x_row0,
                                    const int use_x_idx, __global const uint *idx,
                                    const ulong idx_off, __global const uchar *labels,
                                    const ulong l_row0, const int use_l_idx, const int m,
                                    const int block_rows, const float scale,
                                    __global const float *params, __global float *x0,
                                    __global float *act,
                                    __global float *dz, __global float *stats,
                                    const ulong stat_row0, const float p_drop,
                                    const float keep_scale, const float a_scale,
                                    const ulong seed, const ulong stream0,
                                    const ulong stream_step, __global const uint *row_ptr,
                                    __global const uint *nz, __global const float *wt,
                                    const int wt_stale)
{
    const int lid = get_local_id(0), wg = get_local_size(0);
    const int r0 = get_group_id(0) * block_rows, r1 = min(m, r0 + block_rows);
    const ulong mm = (ulong)m;

#if SPARSE0
    sparse_first_forward(row_ptr, nz, wt, params + WOFF[0], wt_stale, params + BOFF[0], x_row0,
                         use_x_idx, idx, idx_off, r0, r1, lid, wg, act, p_drop, keep_scale, seed,
                         stream0, (__global uint *)x0);   /* x0: the tile starts when SPARSE0 */
    barrier(CLK_GLOBAL_MEM_FENCE);
    const int l_dense = 1;
#else
    /* The block's pixels as floats (exact; the 1/255 is applied to the sums, as layers.cl
     * does), read by every output of the first layer and by step_update. */
    for (int r = r0; r < r1; r++) {
        __global const uchar *src = pixel_row(x, x_row0, use_x_idx, idx, idx_off, r);
        for (int p = lid; p < S[0]; p += wg) x0[(ulong)r * S[0] + p] = (float)src[p];
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
    const int l_dense = 0;
#endif

    for (int l = l_dense; l < NL; l++) {
        const int k = S[l], n = S[l + 1], kv = k / VW, hidden = l < NL - 1;
        __global const float *w = params + WOFF[l], *b = params + BOFF[l];
        __global const float *in = l == 0 ? x0 : act + mm * (ulong)cols_before(l - 1);
        __global float *out = act + mm * (ulong)cols_before(l);
        const ulong stream = stream0 + stream_step * (ulong)l;
        const float alpha = l == 0 ? 1.0f / 255.0f : 1.0f;
        for (int j0 = lid * RJ; j0 < n; j0 += wg * RJ) {
            __global const float *wr[RJ];
#pragma unroll
            for (int j = 0; j < RJ; j++) wr[j] = w + (ulong)min(j0 + j, n - 1) * (ulong)k;
            for (int r = r0; r < r1; r += RM) {
                __global const float *xr[RM];
#pragma unroll
                for (int i = 0; i < RM; i++) xr[i] = in + (ulong)min(r + i, r1 - 1) * (ulong)k;
                float sv[RM][RJ];
                dot_block(xr, wr, kv, sv);
                for (int i = 0; i < RM && r + i < r1; i++) {
                    for (int j = 0; j < RJ && j0 + j < n; j++) {
                        store_output(out, (ulong)(r + i) * (ulong)n + (ulong)(j0 + j), sv[i][j],
                                     alpha, b[j0 + j], hidden, p_drop, keep_scale, seed, stream);
                    }
                }
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }

    /* Softmax, the statistics and dZ of the output layer, in place of the logits. */
    __global float *z = act + mm * (ulong)cols_before(NL - 1);
    for (int r = r0 + lid; r < r1; r += wg) {
        const ulong row = use_l_idx ? (ulong)idx[idx_off + r] : l_row0 + (ulong)r;
        softmax_xent_row(z + (ulong)r * CLASSES, labels[row], scale,
                         stats + (stat_row0 + (ulong)r) * 3, 1);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);

    /* dZ_{l-1} = (dZ_l W_l) * g'(a_scale A_{l-1}), then the layer's dropout mask. */
    for (int l = NL - 1; l >= 1; l--) {
        const int k = S[l], n = S[l + 1], kv = k / VW;
        __global const float *dzl = (l == NL - 1 ? act : dz) + mm * (ulong)cols_before(l);
        __global const float *w = params + WOFF[l];
        __global const float *a_prev = act + mm * (ulong)cols_before(l - 1);
        __global float *da = dz + mm * (ulong)cols_before(l - 1);
        const ulong stream = stream0 + stream_step * (ulong)(l - 1);
        for (int c = lid; c < kv; c += wg) {
            for (int r = r0; r < r1; r += RM) {
                floatv g[RM];
                const int rc[RM] = {r, min(r + 1, r1 - 1), min(r + 2, r1 - 1), min(r + 3, r1 - 1)};
#pragma unroll
                for (int i = 0; i < RM; i++) g[i] = (floatv)0.0f;
                for (int p = 0; p < n; p++) {
                    const floatv wv = LOADF(c, w + (ulong)p * (ulong)k);
#pragma unroll
                    for (int i = 0; i < RM; i++)
                        g[i] = fma((floatv)dzl[(ulong)rc[i] * n + p], wv, g[i]);
                }
                for (int i = 0; i < RM && r + i < r1; i++) {
                    const ulong at = (ulong)(r + i) * (ulong)kv + (ulong)c;
                    floatv gv = g[i];
                    if (ACT != 0) {
                        const floatv a = a_scale * LOADF(at, a_prev);
                        gv = ACT == 1 ? select((floatv)0.0f, gv, a > 0.0f) : gv * (a * (1.0f - a));
                    }
                    float lanes[VW];
                    STOREF(gv, 0, lanes);
                    for (int e = 0; e < VW; e++) {
                        const ulong el = at * VW + (ulong)e;
                        da[el] = p_drop > 0.0f ? rng_dropout(lanes[e], p_drop, keep_scale, seed, stream, el)
                                               : lanes[e];
                    }
                }
            }
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
}

/* Adds row r's share to a tile: acc[i][v] += d_i x_v, bacc[i] += d_i, d = dr[jc[i]]. */
/* optimizer_step on the VW weights at offset i at once (lane by lane the same math). */
#define OPT_LDV(q) LOADF(0, (q) + i)
#define OPT_STV(x, q) STOREF(x, 0, (q) + i)
static inline void optimizer_step_v(const int kind, const size_t i, const floatv gi,
                                    __global float *p, __global float *s1, __global float *s2,
                                    const float lr, const float mu, const float b1,
                                    const float b2, const float eps, const float wd,
                                    const float bc1, const float bc2)
OPTIMIZER_STEP_BODY(floatv, OPT_LDV, OPT_STV)
#undef OPT_LDV
#undef OPT_STV

#define TILE_ROW(dr, jc)                                                                       \
    do {                                                                                       \
        _Pragma("unroll") for (int i = 0; i < RN; i++) {                                       \
            const float d = (dr)[jc];                                                          \
            bacc[i] += d;                                                                      \
            _Pragma("unroll") for (int v = 0; v < RV; v++) acc[i][v] = fma((floatv)d, xv[v], acc[i][v]); \
        }                                                                                      \
    } while (0)

#if SPARSE0

/* W0_IN_WT (SGD, momentum, nesterov): layer 0's weights and their velocity live in wt's
 * layout during the fused steps: wt and st1 (the same shape) hold them from one step to the
 * next, and the host brings params and s1 up from them (wt_to_params) before anything else
 * reads or writes those. The optimizer's step is made where the tile's gradient already lies:
 * against the optimizer along params' rows and their copy turned into wt, W_0 is written once
 * a step instead of twice, read from wt's contiguous lines instead of params' scattered ones,
 * and no block is turned around (784-128-10, batch 64, PoCL 2 cores, --profile: step_update
 * 111-114 -> 62-65 us under SGD, 166 -> 99 under momentum; step_forward_backward 71-75 ->
 * 65-68 us, fewer of W_0's lines passed between the cores). Adam's step is bound by its
 * divisions and square roots, and ran slower so (397 -> 457 us): Adam and AdamW update
 * params in its layout, then rewrite their part of wt from it. */
#define W0_IN_WT (OPT < 3)
#define HAS_S1 (OPT >= 1)   /* s1: the velocity of momentum and nesterov */

/* optimizer_step on 16 weights, and their velocity, held in registers. */
#define OPT_LDP(q) (*(q))
#define OPT_STP(x, q) (*(q) = (x))
static inline void optimizer_step_private(const int kind, float16 *p, const float16 gi,
                                          float16 *s1, float16 *s2, const float lr,
                                          const float mu, const float b1, const float b2,
                                          const float eps, const float wd, const float bc1,
                                          const float bc2)
OPTIMIZER_STEP_BODY(float16, OPT_LDP, OPT_STP)
#undef OPT_LDP
#undef OPT_STP

/* Pixel q's line of a wt-layout copy (64-byte aligned: NP0 floats a pixel, from a buffer's
 * start) for the outputs jb .. jb + 15. */
static inline __global float16 *wt_line(__global float *w, const int q, const int jb)
{
    return (__global float16 *)(w + (ulong)q * NP0 + (ulong)jb);
}

/* W0_IN_WT's step on pixel q's weights of the outputs jb .. jb + 15, whose gradient summed
 * over the rows is g: the weights and their velocity read from wt and st1, or where anything
 * else wrote params or s1 (stale) from W_0's place in those; lanes past S1 stay zero. */
static inline void first_line_step(const float16 g, const int q, const int jb,
                                   __global const float *params, __global const float *s1,
                                   __global float *wt, __global float *st1, const int stale,
                                   const float lr, const float mu, const float wd)
{
    float16 p, v = (float16)0.0f;
    if (stale) {
        p = first_weights(params + WOFF[0], (uint)q, jb);
        if (HAS_S1) v = first_weights(s1 + WOFF[0], (uint)q, jb);
    } else {
        p = *wt_line(wt, q, jb);
        if (HAS_S1) v = *wt_line(st1, q, jb);
    }
    optimizer_step_private(OPT, &p, g * (1.0f / 255.0f), &v, &v, lr, mu, 0.0f, 0.0f, 0.0f, wd,
                           1.0f, 1.0f);
    const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int16 live = lane < (int16)(S[1] - jb);
    *wt_line(wt, q, jb) = select((float16)0.0f, p, live);
    if (HAS_S1) *wt_line(st1, q, jb) = select((float16)0.0f, v, live);
}

/* The optimizer on the biases of layer 0's outputs jb .. jb + 15 (those below S1), from their
 * gradient g. */
static inline void first_biases_step(const float16 g, const int jb, __global float *params,
                                     __global float *s1, __global float *s2, const float lr,
                                     const float mu, const float b1, const float b2,
                                     const float eps, const float wd, const float bc1,
                                     const float bc2)
{
    float bv[16];
    vstore16(g, 0, bv);
    for (int l = 0; l < min(16, S[1] - jb); l++)
        optimizer_step(OPT, BOFF[0] + (ulong)(jb + l), bv[l], params, s1, s2, lr, mu, b1, b2,
                       eps, wd, bc1, bc2);
}

/* Layer 0's tile lt of step_update from the nonzero pixels: pixels [q0, q0 + PR) x SB vectors
 * of outputs from c0; the gradient summed over the rows in order in acc[pixel][output], then
 * the optimizer on each pixel's line of wt (first_line_step), or under Adam along the pixels
 * (contiguous in params) and the tile's part of wt rewritten. */
static inline void sparse_first_update(const int lt, const int m, __global float *params,
                                       __global const float *dzl, __global float *s1,
                                       __global float *s2, const float lr, const float mu,
                                       const float b1, const float b2, const float eps,
                                       const float wd, const float bc1, const float bc2,
                                       __global const uint *nz, __global const uint *starts,
                                       __global float *wt, __global float *st1, const int stale)
{
    const int k = S[0], n = S[1], nb = NV0 / SB;
    const int q0 = lt / nb * PR, c0 = lt % nb * SB, q1 = min(k, q0 + PR);
    const ulong total = (ulong)m * (ulong)n;
    float16 acc[PR * SB];   /* acc[(q - q0) * SB + s]: pixel q, the outputs of vector c0 + s */
    float16 bacc[SB];
    for (int i = 0; i < PR * SB; i++) acc[i] = (float16)0.0f;
#if !W0_IN_WT
    /* The tile's lines of W_0, read ahead of the optimizer, all at once: its loads of them (a
     * stride of S0 floats, which no prefetcher follows; PoCL's prefetch() does nothing) stalled
     * the update one by one (perf; 784-128-10, batch 64: step_update 136-146 us, 122-131 so). */
    float ahead = 0.0f;
    for (int j = c0 * 16; j < min(n, (c0 + SB) * 16); j++)
        for (int q = q0; q < q1; q += 16) ahead += params[WOFF[0] + (ulong)j * (ulong)k + (ulong)q];
#endif
#pragma unroll
    for (int s = 0; s < SB; s++) bacc[s] = (float16)0.0f;
    for (int r = 0; r < m; r++) {
        float16 d[SB];
#pragma unroll
        for (int s = 0; s < SB; s++) d[s] = vload16_upto(dzl, total, (ulong)r * (ulong)n + (ulong)(c0 + s) * 16);
        if (q0 == 0) {
#pragma unroll
            for (int s = 0; s < SB; s++) bacc[s] += d[s];
        }
        /* The tile's nonzeros of row r: from its start to the next tile's (or the row's end). */
        __global const uint *range = starts + (ulong)r * PTS + (ulong)(q0 / PR);
        const uint end = range[1];
        for (uint e = range[0]; e < end; e++) {
            const uint p = nz[e], q = p >> 8;
            const float16 v = (float16)(float)(p & 255u);
            float16 *a = acc + (q - (uint)q0) * SB;
#pragma unroll
            for (int s = 0; s < SB; s++) a[s] = fma(v, d[s], a[s]);
        }
    }
#if W0_IN_WT
    for (int q = q0; q < q1; q++)
        for (int s = 0; s < SB; s++)
            first_line_step(acc[(q - q0) * SB + s], q, (c0 + s) * 16, params, s1, wt, st1, stale, lr,
                            mu, wd);
    for (int s = 0; s < SB && q0 == 0; s++)
        first_biases_step(bacc[s], (c0 + s) * 16, params, s1, s2, lr, mu, b1, b2, eps, wd, bc1, bc2);
#else
    if (m < 0) params[WOFF[0]] = ahead;   /* never (m >= 1): keeps the loads ahead */
    /* Output j's gradient along the tile's pixels is lane j - (c0 + s) * 16 of acc[. * SB + s]:
     * blocks of 16 pixels x 16 outputs turned around in registers, then VW pixels at a time in
     * the layout of params (VW divides S0 and 16; q0 is a multiple of 16). */
    for (int s = 0; s < SB; s++) {
        const int jb = (c0 + s) * 16, j_end = min(n, jb + 16);
        for (int q = q0; q < q1; q += 16) {
            const int w = min(16, q1 - q);   /* 16, or S0's last VW-multiple of pixels */
            float16 blk[16];
            for (int i = 0; i < 16; i++)
                blk[i] = i < w ? acc[(q + i - q0) * SB + s] : (float16)0.0f;
            transpose16(blk);   /* blk[l]: output jb + l along the pixels q .. q + 15 */
            for (int l = 0; l < j_end - jb; l++) {
                float g[16];
                vstore16(blk[l] * (1.0f / 255.0f), 0, g);
                const ulong at = WOFF[0] + (ulong)(jb + l) * (ulong)k + (ulong)q;
                for (int v = 0; v < w; v += VW)
                    optimizer_step_v(OPT, at + (ulong)v, LOADF(0, g + v), params, s1, s2, lr, mu,
                                     b1, b2, eps, wd, bc1, bc2);
            }
            /* The tile's part of wt, from the weights just written (zeros past S1 stay). */
            for (int l = 0; l < 16; l++) {
                if (jb + l >= j_end) { blk[l] = (float16)0.0f; continue; }
                __global const float *row = params + WOFF[0] + (ulong)(jb + l) * (ulong)k + (ulong)q;
                if (w == 16) blk[l] = vload16(0, row);
                else {
                    float vals[16];
                    for (int i = 0; i < 16; i++) vals[i] = i < w ? row[i] : 0.0f;
                    blk[l] = vload16(0, vals);
                }
            }
            transpose16(blk);   /* blk[i]: pixel q + i's weights of the outputs jb .. jb + 15 */
            for (int i = 0; i < w; i++) vstore16(blk[i], 0, wt + (ulong)(q + i) * NP0 + (ulong)jb);
        }
        if (q0 == 0)
            first_biases_step(bacc[s], jb, params, s1, s2, lr, mu, b1, b2, eps, wd, bc1, bc2);
    }
#endif
}

/* W_0's place in dst (params or s1) from its wt-layout copy src (wt or st1), after
 * the fused steps (launched by the host before anything else reads or writes dst): NDRange
 * S0 x S1, item i = j * S0 + q. */
__kernel void wt_to_params(__global const float *src, __global float *dst)
{
    const int i = get_global_id(0);
    if (i >= S[0] * S[1]) return;
    dst[WOFF[0] + (ulong)i] = src[(ulong)(i % S[0]) * NP0 + (ulong)(i / S[0])];
}
#endif

/* Tile t of step_update. */
static inline void update_tile(const int t, const int m, __global float *params,
                               __global const float *x0, __global const float *act,
                               __global const float *dz, __global float *s1, __global float *s2,
                               const float lr, const float mu, const float b1, const float b2,
                               const float eps, const float wd, const float bc1, const float bc2,
                               __global const uint *nz, __global float *wt, __global float *st1,
                               const int stale)
{
    int l = 0;
    while (t >= TSTART[l + 1]) l++;
#if SPARSE0
    if (l == 0) {
        sparse_first_update(t, m, params, NL == 1 ? act : dz, s1, s2, lr, mu, b1, b2, eps, wd,
                            bc1, bc2, nz, (__global const uint *)x0, wt, st1, stale);
        return;
    }
#endif
    const int k = S[l], n = S[l + 1], kv = k / VW, kb = (kv + RV - 1) / RV, lt = t - TSTART[l];
    const int j0 = lt / kb * RN, c0 = lt % kb * RV;
    const ulong mm = (ulong)m;
    __global const float *dzl = (l == NL - 1 ? act : dz) + mm * (ulong)cols_before(l);
    __global const float *in = l == 0 ? x0 : act + mm * (ulong)cols_before(l - 1);
    floatv acc[RN][RV];
    float bacc[RN];
    int cc[RV];   /* the input vectors read, clamped into the row (the extra ones are not written) */
#pragma unroll
    for (int i = 0; i < RN; i++) {
        bacc[i] = 0.0f;
#pragma unroll
        for (int v = 0; v < RV; v++) acc[i][v] = (floatv)0.0f;
    }
#pragma unroll
    for (int v = 0; v < RV; v++) cc[v] = min(c0 + v, kv - 1);
    const bool whole = j0 + RN <= n;   /* all RN outputs inside the layer: no clamping */
    for (int r = 0; r < m; r++) {
        __global const float *xr = in + (ulong)r * (ulong)k;
        __global const float *dr = dzl + (ulong)r * (ulong)n;
        floatv xv[RV];
        bool live = false;
#pragma unroll
        for (int v = 0; v < RV; v++) {
            xv[v] = LOADF(cc[v], xr);
            live = live || ANY_NONZERO(xv[v]);
        }
        if (!live) {   /* blank pixels (most of an image's border) add nothing but the bias's */
#pragma unroll
            for (int i = 0; i < RN; i++) bacc[i] += dr[min(j0 + i, n - 1)];
            continue;
        }
        if (whole) TILE_ROW(dr + j0, i);
        else TILE_ROW(dr, min(j0 + i, n - 1));
    }
    const float alpha = l == 0 ? 1.0f / 255.0f : 1.0f;
    for (int i = 0; i < RN && j0 + i < n; i++) {
        for (int v = 0; v < RV && c0 + v < kv; v++) {
            const ulong at = WOFF[l] + (ulong)(j0 + i) * (ulong)k + (ulong)(c0 + v) * VW;
            optimizer_step_v(OPT, at, alpha * acc[i][v], params, s1, s2, lr, mu, b1, b2, eps, wd,
                             bc1, bc2);
        }
        if (c0 == 0)
            optimizer_step(OPT, BOFF[l] + (ulong)(j0 + i), bacc[i], params, s1, s2, lr, mu, b1,
                           b2, eps, wd, bc1, bc2);
    }
}

__kernel void step_update(const int m, __global float *params, __global const float *x0,
                          __global const float *act,
                          __global const float *dz, __global float *s1, __global float *s2,
                          const float lr, const float mu, const float b1, const float b2,
                          const float eps, const float wd, const float bc1, const float bc2,
                          __global const uint *nz, __global float *wt, __global float *st1,
                          const int stale)
{
    for (int t = get_global_id(0); t < TSTART[NL]; t += get_global_size(0))
        update_tile(t, m, params, x0, act, dz, s1, s2, lr, mu, b1, b2, eps, wd, bc1, bc2, nz, wt,
                    st1, stale);
}
