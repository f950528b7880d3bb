/* sparse.cl: the first layer's two products over images stored sparsely. Four pixels in five
 * of MNIST are blank; skipping them skips exact zeros (the sums are the same up to the order
 * of rounding) and reads a third of the bytes. The images are kept as CSR:
 *   row_ptr[n + 1] (uint): the nonzeros of image r are nz[row_ptr[r] .. row_ptr[r + 1])
 *   nz[] (uint): (pixel index << 8) | pixel value
 * An image's row r of a batch is image idx[idx_off + r] when use_idx, else image r0 + r.
 *
 * Compile-time shape: K inputs (pixels), N outputs, NP = N rounded up to a multiple of 16,
 * CB = 16-float vectors of outputs per work-item (NP / 16 divisible into blocks of CB).
 *
 * transpose_pad: NDRange (K): one row of wt per work-item
 *   reads W[N x K] at w + w_off; writes wt[K x NP] = W^T, zero in columns N..NP-1
 * sparse_forward: NDRange (NP / 16 / CB, ceil(m / RB))
 *   reads the images, wt[K x NP], b[N] at b + b_off
 *   writes out[m x N] = act(alpha * X W^T + b), act 0 none, 1 relu, 2 sigmoid
 * sparse_weights: NDRange (NP / 16 / CB, slices)
 *   reads dZ[m x N] and the images of rows [s * rows_per_slice, ...) of slice s
 *   writes part[s][K + 1][NP]: rows 0..K-1 the slice's dZ^T X transposed (X^T dZ), row K its
 *          column sums of dZ (the bias gradient), all of it (zeros where nothing adds)
 * sparse_weights_sum: NDRange (K + 1): one pixel (or, for k = K, the bias) per work-item
 *   writes dw[j * K + k] = alpha * sum_s part[s][k][j], db[j] = sum_s part[s][K][j], slices in
 *          order (deterministic)
 * sparse_weights_csc: NDRange (blocks, NV / CB): one block of images (the blocks the rows
 *          r0 .. r0 + m - 1 touch, from b0) and CB vectors of outputs per work-item; each pixel
 *          column's sum over the block in registers, stored once
 *   reads dZ[m x N] and the images in blocked CSC: images by blocks of block_rows, within a
 *          block by pixel column: column k of block b is cnz[col_ptr[b * K + k] ..
 *          col_ptr[b * K + k + 1]), each (image << 8) | value, images ascending
 *   writes part[s][K + 1][NP] as sparse_weights does (s = the block's place from b0), for
 *          sparse_weights_sum */

#ifndef K
#error "build with -DK=<inputs>"
#endif
#ifndef N
#error "build with -DN=<outputs>"
#endif
#define NP ((N + 15) / 16 * 16)
#define NV (NP / 16)
#ifndef CB
#define CB 1
#endif
#ifndef RB
#define RB 16
#endif

#include "activate.cl"
#include "packed.cl"

static inline uint image_of(__global const uint *idx, const ulong idx_off, const int use_idx,
                     const uint r0, const int r)
{
    return use_idx ? idx[idx_off + r] : r0 + (uint)r;
}

__kernel void transpose_pad(__global const float *w, const ulong w_off, __global float *wt)
{
    const int k = get_global_id(0);
    if (k >= K) return;
    __global float *row = wt + (ulong)k * NP;
    for (int j = 0; j < N; j++) row[j] = w[w_off + (ulong)j * K + k];
    for (int j = N; j < NP; j++) row[j] = 0.0f;
}

__kernel void sparse_forward(__global const uint *row_ptr, __global const uint *nz,
                             __global const uint *idx, const ulong idx_off, const int use_idx,
                             const uint r0, const int m, const float alpha,
                             __global const float *wt, __global const float *b,
                             const ulong b_off, const int act, __global float *out)
{
    const int c0 = get_global_id(0) * CB, rb = get_global_id(1) * RB;
    if (c0 >= NV) return;
    for (int r = rb; r < min(m, rb + RB); r++) {
        const uint img = image_of(idx, idx_off, use_idx, r0, r);
        /* Two halves of the row's nonzeros in two accumulators: two independent chains of
         * fused multiply-adds hide their latency. */
        float16 acc[CB], acc2[CB];
        for (int c = 0; c < CB; c++) acc[c] = acc2[c] = (float16)0.0f;
        const uint begin = row_ptr[img], end = row_ptr[img + 1], n_half = (end - begin) / 2;
        for (uint e = begin; e < begin + n_half; e++) {
            const uint p = nz[e], q = nz[e + n_half];
            __global const float *w = wt + (ulong)(p >> 8) * NP;
            __global const float *w2 = wt + (ulong)(q >> 8) * NP;
            for (int c = 0; c < CB; c++) {
                acc[c] = fma((float16)(float)(p & 255u), vload16(c0 + c, w), acc[c]);
                acc2[c] = fma((float16)(float)(q & 255u), vload16(c0 + c, w2), acc2[c]);
            }
        }
        if ((end - begin) % 2) {
            const uint p = nz[end - 1];
            __global const float *w = wt + (ulong)(p >> 8) * NP;
            for (int c = 0; c < CB; c++) acc[c] = fma((float16)(float)(p & 255u), vload16(c0 + c, w), acc[c]);
        }
        for (int c = 0; c < CB; c++) acc[c] += acc2[c];
        for (int c = 0; c < CB; c++) {
            float vals[16];
            vstore16(acc[c], 0, vals);
            for (int l = 0; l < 16; l++) {
                const int j = (c0 + c) * 16 + l;
                if (j < N) out[(ulong)r * N + j] = activate(alpha * vals[l] + b[b_off + j], act);
            }
        }
    }
}

__kernel void sparse_weights(__global const float *dz, const int m, const int rows_per_slice,
                             __global const uint *row_ptr, __global const uint *nz,
                             __global const uint *idx, const ulong idx_off, const int use_idx,
                             const uint r0, __global float *part)
{
    const int c0 = get_global_id(0) * CB, s = get_global_id(1);
    if (c0 >= NV) return;
    __global float *acc = part + (ulong)s * (K + 1) * NP;
    for (int k = 0; k <= K; k++)
        for (int c = 0; c < CB; c++) vstore16((float16)0.0f, 0, acc + (ulong)k * NP + (c0 + c) * 16);
    const int r_end = min(m, (s + 1) * rows_per_slice);
    for (int r = s * rows_per_slice; r < r_end; r++) {
        float16 d[CB];
        for (int c = 0; c < CB; c++) {
            float vals[16];
            for (int l = 0; l < 16; l++) {
                const int j = (c0 + c) * 16 + l;
                vals[l] = j < N ? dz[(ulong)r * N + j] : 0.0f;
            }
            d[c] = vload16(0, vals);
            __global float *brow = acc + (ulong)K * NP + (c0 + c) * 16;
            vstore16(vload16(0, brow) + d[c], 0, brow);
        }
        const uint img = image_of(idx, idx_off, use_idx, r0, r);
        const uint end = row_ptr[img + 1];
        for (uint e = row_ptr[img]; e < end; e++) {
            const uint p = nz[e];
            const float v = (float)(p & 255u);
            __global float *row = acc + (ulong)(p >> 8) * NP + c0 * 16;
            for (int c = 0; c < CB; c++) vstore16(fma((float16)v, d[c], vload16(c, row)), c, row);
        }
    }
}

__kernel void sparse_weights_sum(__global const float *part, const int slices, const float alpha,
                                 __global float *dw, const ulong dw_off, __global float *db,
                                 const ulong db_off)
{
    const int k = get_global_id(0);
    if (k > K) return;
    for (int v = 0; v < NV; v++) {
        float16 acc = vload16(0, part + (ulong)k * NP + v * 16);
        for (int s = 1; s < slices; s++) acc += vload16(0, part + ((ulong)s * (K + 1) + k) * NP + v * 16);
        float vals[16];
        vstore16(acc, 0, vals);
        for (int l = 0; l < 16; l++) {
            const int j = v * 16 + l;
            if (j >= N) break;
            if (k < K) dw[dw_off + (ulong)j * K + k] = alpha * vals[l];
            else db[db_off + j] = vals[l];
        }
    }
}

__kernel void sparse_weights_csc(__global const float *dz, const int m, const uint block_rows,
                                 const uint b0, __global const uint *col_ptr,
                                 __global const uint *cnz, const uint r0, __global float *part)
{
    const int s = get_global_id(0), c0 = get_global_id(1) * CB;
    if (c0 >= NV) return;
    const uint b = b0 + (uint)s, lo = max(r0, b * block_rows);
    const uint hi = min(r0 + (uint)m, (b + 1) * block_rows);
    const int whole = lo == b * block_rows && hi == (b + 1) * block_rows;
    const ulong total = (ulong)m * N;
    __global float *out = part + (ulong)s * (K + 1) * NP;
    for (int k = 0; k < K; k++) {
        uint e = col_ptr[(ulong)b * K + k], end = col_ptr[(ulong)b * K + k + 1];
        if (!whole) {   /* the first or last block of a range: its images in [lo, hi) */
            e = first_key_at(cnz, e, end, lo);
            end = first_key_at(cnz, e, end, hi);
        }
        /* Two accumulators (even and odd entries): two independent chains of multiply-adds. */
        float16 acc[CB], acc2[CB];
        for (int c = 0; c < CB; c++) acc[c] = acc2[c] = (float16)0.0f;
        for (; e + 1 < end; e += 2) {
            const uint p = cnz[e], q = cnz[e + 1];
            const ulong rp = (ulong)((p >> 8) - r0) * N, rq = (ulong)((q >> 8) - r0) * N;
            for (int c = 0; c < CB; c++) {
                acc[c] = fma((float16)(float)(p & 255u), vload16_upto(dz, total, rp + (c0 + c) * 16), acc[c]);
                acc2[c] = fma((float16)(float)(q & 255u), vload16_upto(dz, total, rq + (c0 + c) * 16), acc2[c]);
            }
        }
        if (e < end) {
            const uint p = cnz[e];
            const ulong rp = (ulong)((p >> 8) - r0) * N;
            for (int c = 0; c < CB; c++)
                acc[c] = fma((float16)(float)(p & 255u), vload16_upto(dz, total, rp + (c0 + c) * 16), acc[c]);
        }
        for (int c = 0; c < CB; c++) vstore16(acc[c] + acc2[c], 0, out + (ulong)k * NP + (c0 + c) * 16);
    }
    float16 acc[CB];   /* the bias: dZ's rows of the block, in order */
    for (int c = 0; c < CB; c++) acc[c] = (float16)0.0f;
    for (uint img = lo; img < hi; img++)
        for (int c = 0; c < CB; c++) acc[c] += vload16_upto(dz, total, (ulong)(img - r0) * N + (c0 + c) * 16);
    for (int c = 0; c < CB; c++) vstore16(acc[c], 0, out + (ulong)K * NP + (c0 + c) * 16);
}
