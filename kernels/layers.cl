/* layers.cl: the three products of a fully-connected layer, each fused with what surrounds it
 * in the training loop, written for devices that run work-items as loops over wide SIMD lanes
 * (CPUs under PoCL): no local memory, no barriers, explicit VW-wide vectors along the
 * contiguous dimension and a register block of outputs per work-item.
 *
 * Compile-time shape (the host builds one program per layer shape, cached):
 *   K       inputs of the layer (row length of X and of W)
 *   N       outputs of the layer
 *   VW      vector width, a divisor of K (16, 8, 4, 2 or 1)
 *   XT      element type of X: uchar (pixels, scaled through alpha) or float
 *   RM, RN  register block: rows x outputs per work-item (forward), outputs per work-item
 *           (weights); RV vectors of VW columns per work-item (weights, input gradient);
 *           FWD_RM, FWD_RN, WGT_RN, WGT_RV, INP_RM, INP_RV set one kernel's alone
 *
 * linear_forward: NDRange (ceil(N / RN), ceil(m / RM))
 *   reads  X rows (row r is x[x_off + idx[idx_off + r] * K .. + K] when use_idx, else row
 *          x_off / K + r), W[N x K] at w + w_off, b[N] at b + b_off
 *   writes out[m x N] = act(alpha * X W^T + b), act 0 none, 1 relu, 2 sigmoid
 * linear_weights: NDRange (ceil(K / (VW * RV)), ceil(N / RN), slices)
 *   reads  dZ[m x N], X rows as above
 *   writes slice s of the rows [s * rows_per_slice, ...): its partial
 *          dW[N x K] = alpha * dZ^T X and db[N] = sum over rows of dZ, either straight into
 *          dw/db (one slice) or into part[s] (N x K + N floats) for linear_weights_sum
 * linear_weights_sum: NDRange (N * K + N)
 *   writes dw[i] / db[i] = the sum over slices of part[s][i], in slice order (deterministic)
 * linear_input: NDRange (ceil(K / (VW * RV)), ceil(m / RM))
 *   reads  dZ[m x N], W[N x K], a_prev[m x K] (activated values of the layer below)
 *   writes da[m x K] = (dZ W) * g'(a_scale * a_prev), g' of relu: a > 0, sigmoid: a (1 - a),
 *          none: 1 (a_scale undoes inverted dropout's scaling for sigmoid)
 * Accumulation is float, in a fixed order: results do not depend on the NDRange split. */

#ifndef K
#error "build with -DK=<inputs>"
#endif
#ifndef N
#error "build with -DN=<outputs>"
#endif
#ifndef VW
#define VW 1
#endif
#ifndef XT
#define XT float
#endif
#ifndef RM
#define RM 2
#endif
#ifndef RN
#define RN 4
#endif
#ifndef RV
#define RV 2
#endif
/* Each kernel's own register block (the host sets these, so that one program holds a layer's
 * three kernels, each blocked its own way); RM, RN and RV stand for any left unset. */
#ifndef FWD_RM
#define FWD_RM RM
#endif
#ifndef FWD_RN
#define FWD_RN RN
#endif
#ifndef WGT_RN
#define WGT_RN RN
#endif
#ifndef WGT_RV
#define WGT_RV RV
#endif
#ifndef INP_RM
#define INP_RM RM
#endif
#ifndef INP_RV
#define INP_RV RV
#endif

#if K % VW != 0
#error "VW must divide K"
#endif

#include "vec.cl"

#define KV (K / VW)   /* vectors per row */

/* Start of row r of X. */
static inline __global const XT *x_row(__global const XT *x, const ulong x_off,
                                __global const uint *idx, const ulong idx_off, const int use_idx,
                                const int r)
{
    const ulong row = use_idx ? (ulong)idx[idx_off + r] : (ulong)r;
    return x + x_off + row * (ulong)K;
}

#include "activate.cl"

__kernel void linear_forward(__global const XT *x, const ulong x_off, __global const uint *idx,
                             const ulong idx_off, const int use_idx, const int m,
                             const float alpha, __global const float *w, const ulong w_off,
                             __global const float *b, const ulong b_off, const int act,
                             __global float *out)
{
    const int j0 = get_global_id(0) * FWD_RN, r0 = get_global_id(1) * FWD_RM;
    if (j0 >= N || r0 >= m) return;
    __global const XT *xr[FWD_RM];
    __global const float *wr[FWD_RN];
    for (int i = 0; i < FWD_RM; i++) xr[i] = x_row(x, x_off, idx, idx_off, use_idx, min(r0 + i, m - 1));
    for (int j = 0; j < FWD_RN; j++) wr[j] = w + w_off + (ulong)min(j0 + j, N - 1) * K;
    floatv acc[FWD_RM][FWD_RN];
    for (int i = 0; i < FWD_RM; i++)
        for (int j = 0; j < FWD_RN; j++) acc[i][j] = (floatv)0.0f;
    for (int v = 0; v < KV; v++) {
        floatv xv[FWD_RM];
        for (int i = 0; i < FWD_RM; i++) xv[i] = LOADX(v, xr[i]);
        for (int j = 0; j < FWD_RN; j++) {
            const floatv wv = LOADF(v, wr[j]);
            for (int i = 0; i < FWD_RM; i++) acc[i][j] = fma(xv[i], wv, acc[i][j]);
        }
    }
    for (int i = 0; i < FWD_RM; i++) {
        if (r0 + i >= m) break;
        for (int j = 0; j < FWD_RN; j++) {
            if (j0 + j >= N) break;
            out[(ulong)(r0 + i) * N + j0 + j] = activate(alpha * HSUM(acc[i][j]) + b[b_off + j0 + j], act);
        }
    }
}

__kernel void linear_weights(__global const float *dz, const int m, const int rows_per_slice,
                             __global const XT *x, const ulong x_off, __global const uint *idx,
                             const ulong idx_off, const int use_idx, const float alpha,
                             __global float *dw, const ulong dw_off, __global float *db,
                             const ulong db_off, __global float *part)
{
    const int c0 = get_global_id(0) * WGT_RV, i0 = get_global_id(1) * WGT_RN, s = get_global_id(2);
    if (c0 >= KV || i0 >= N) return;
    const int r_begin = s * rows_per_slice, r_end = min(m, r_begin + rows_per_slice);
    floatv acc[WGT_RN][WGT_RV];
    float bacc[WGT_RN];
    for (int i = 0; i < WGT_RN; i++) {
        bacc[i] = 0.0f;
        for (int v = 0; v < WGT_RV; v++) acc[i][v] = (floatv)0.0f;
    }
    for (int r = r_begin; r < r_end; r++) {
        __global const XT *xr = x_row(x, x_off, idx, idx_off, use_idx, r);
        floatv xv[WGT_RV];
        for (int v = 0; v < WGT_RV; v++) xv[v] = LOADX(min(c0 + v, KV - 1), xr);
        for (int i = 0; i < WGT_RN; i++) {
            const float d = dz[(ulong)r * N + min(i0 + i, N - 1)];
            bacc[i] += d;
            for (int v = 0; v < WGT_RV; v++) acc[i][v] = fma((floatv)d, xv[v], acc[i][v]);
        }
    }
    const int sliced = get_global_size(2) > 1;
    __global float *wdst = sliced ? part + (ulong)s * (N * K + N) : dw + dw_off;
    __global float *bdst = sliced ? part + (ulong)s * (N * K + N) + N * K : db + db_off;
    const float scale = sliced ? 1.0f : alpha;
    for (int i = 0; i < WGT_RN; i++) {
        if (i0 + i >= N) break;
        for (int v = 0; v < WGT_RV; v++)
            if (c0 + v < KV) STOREF(scale * acc[i][v], (ulong)(i0 + i) * KV + c0 + v, wdst);
        if (c0 == 0) bdst[i0 + i] = bacc[i];
    }
}

__kernel void linear_weights_sum(__global const float *part, const int slices, const float alpha,
                                 __global float *dw, const ulong dw_off, __global float *db,
                                 const ulong db_off)
{
    const int e = get_global_id(0);
    if (e >= N * K + N) return;
    float acc = 0.0f;
    for (int s = 0; s < slices; s++) acc += part[(ulong)s * (N * K + N) + e];
    if (e < N * K) dw[dw_off + e] = alpha * acc;
    else db[db_off + e - N * K] = acc;
}

__kernel void linear_input(__global const float *dz, const int m, __global const float *w,
                           const ulong w_off, __global const float *a_prev, const int act,
                           const float a_scale, __global float *da)
{
    const int c0 = get_global_id(0) * INP_RV, r0 = get_global_id(1) * INP_RM;
    if (c0 >= KV || r0 >= m) return;
    floatv acc[INP_RM][INP_RV];
    for (int i = 0; i < INP_RM; i++)
        for (int v = 0; v < INP_RV; v++) acc[i][v] = (floatv)0.0f;
    for (int p = 0; p < N; p++) {
        __global const float *wr = w + w_off + (ulong)p * K;
        floatv wv[INP_RV];
        for (int v = 0; v < INP_RV; v++) wv[v] = LOADF(min(c0 + v, KV - 1), wr);
        for (int i = 0; i < INP_RM; i++) {
            const float d = dz[(ulong)min(r0 + i, m - 1) * N + p];
            for (int v = 0; v < INP_RV; v++) acc[i][v] = fma((floatv)d, wv[v], acc[i][v]);
        }
    }
    for (int i = 0; i < INP_RM; i++) {
        if (r0 + i >= m) break;
        for (int v = 0; v < INP_RV; v++) {
            if (c0 + v >= KV) break;
            const ulong at = (ulong)(r0 + i) * KV + c0 + v;
            floatv g = acc[i][v];
            if (act != 0) {
                const floatv a = a_scale * LOADF(at, a_prev);
                g = act == 1 ? select((floatv)0.0f, g, a > 0.0f) : g * (a * (1.0f - a));
            }
            STOREF(g, at, da);
        }
    }
}
