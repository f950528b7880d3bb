/* fused_step.cl: a whole mini-batch step of a fully-connected network in two launches (the
 * plan's "fused step", cl_layers.c), for networks whose widths are small enough that a block of
 * rows' activations and gradients are cheap to keep in global scratch:
 *
 * step_forward_backward: NDRange (ceil(m / block_rows) * WG), work-groups of WG items; group g
 *   takes the batch rows [g * block_rows, min(m, (g + 1) * block_rows)) through every layer:
 *   reads  X: row r is x[(use_x_idx ? idx[idx_off + r] : x_row0 + r) * S0 ..] (uint8 pixels,
 *          scaled by 1/255), labels[use_l_idx ? idx[idx_off + r] : l_row0 + r], params
 *   writes x0 (m x S0) = the rows' pixels as floats (unscaled),
 *          act[l] (m x S[l+1] at act + m * COLS(l)) = A_l, the activations after dropout
 *          (the logits' block is replaced by dZ of the output layer, (p - y) * scale),
 *          dz[l] (m x S[l+1] at dz + m * COLS(l), hidden layers) = dZ_l,
 *          stats[(stat_row0 + r) * 3 + {0, 1, 2}] as softmax_xent.cl writes them
 *   Items run along the outputs of each layer (forward: item i takes the RJ outputs from
 *   RJ * i, then RJ * (i + WG), ..., reading their rows of W contiguously in VW-wide vectors) and along VW-vectors of a layer's
 *   inputs (backward), with a barrier between layers: only the group's own rows are touched.
 * step_update: NDRange (TILES), one item per tile of RN outputs x RV VW-vectors of inputs of
 *   one layer (all layers in one NDRange, layer l's tiles from TSTART(l)):
 *   reads  dZ_l and the layer's input (x0 or A_{l-1}) from step_forward_backward's scratch
 *   writes params, s1, s2: the tile's weights (and, for the tile at input vector 0, the biases
 *          of its outputs) updated by optimizer.cl's optimizer_step with the gradient
 *          dW = alpha dZ_l^T X_l, db = column sums of dZ_l, each summed over the m rows in
 *          row order inside one item: no atomics, the same result for any NDRange split.
 *
 * Compile-time network (-D, cl_backend's step plan): NL layers, SIZES (NL + 1 widths),
 * WOFFS and BOFFS (the parameter buffer's offsets, model.h), TSTARTS (NL + 1 tile starts),
 * ACT (hidden activation: 0 none, 1 relu, 2 sigmoid), OPT (optimizer_kind), VW (a vector width
 * dividing every layer's input count), RN and RV (outputs and input vectors per update tile), CLASSES (= the last width,
 * for softmax_xent.cl). Dropout follows the dropout kernel of activation.cl: the element
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

/* Start of the input row r of the first layer. */
static inline __global const uchar *pixel_row(__global const uchar *x, const ulong x_row0,
                                              const int use_x_idx, __global const uint *idx,
                                              const ulong idx_off, const int r)
{
    const ulong row = use_x_idx ? (ulong)idx[idx_off + r] : x_row0 + (ulong)r;
    return x + row * (ulong)S[0];
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
                                    const ulong stream_step)
{
    const int lid = get_local_id(0), wg = get_local_size(0);
    const int r0 = get_group_id(0) * block_rows, r1 = min(m, r0 + block_rows);
    const ulong mm = (ulong)m;

    /* The block's pixels as floats (exact; the 1/255 is applied to the sums, as layers.cl
     * does), read by every output of the first layer and by step_update. */
    for (int r = r0; r < r1; r++) {
        __global const uchar *src = pixel_row(x, x_row0, use_x_idx, idx, idx_off, r);
        for (int p = lid; p < S[0]; p += wg) x0[(ulong)r * S[0] + p] = (float)src[p];
    }
    barrier(CLK_GLOBAL_MEM_FENCE);

    for (int l = 0; l < NL; l++) {
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
                        float v = activate(alpha * sv[i][j] + b[j0 + j], hidden ? ACT : 0);
                        const ulong at = (ulong)(r + i) * (ulong)n + (ulong)(j0 + j);
                        if (hidden && p_drop > 0.0f) v = rng_dropout(v, p_drop, keep_scale, seed, stream, at);
                        out[at] = v;
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

__kernel void step_update(const int m, __global float *params, __global const float *x0,
                          __global const float *act,
                          __global const float *dz, __global float *s1, __global float *s2,
                          const float lr, const float mu, const float b1, const float b2,
                          const float eps, const float wd, const float bc1, const float bc2)
{
    const int t = get_global_id(0);
    if (t >= TSTART[NL]) return;
    int l = 0;
    while (t >= TSTART[l + 1]) l++;
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
