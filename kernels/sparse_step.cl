/* sparse_step.cl: the training pass of a network with one hidden layer (K pixels -> H hidden
 * -> N classes, H and N at most 16) over images stored sparsely (sparse.cl's CSR), forward and
 * backward from each image's nonzeros (backend.h's sparse_step). The per-layer path reads them
 * from two copies (sparse_forward, then the weight gradient from a CSC copy) and its rows'
 * activations and gradients go through memory between five launches; here a block of rows'
 * hidden units, logits, dZ and dH stay in registers and private arrays.
 *
 * sparse_step: NDRange (slices), one work-item per slice of rows_per_slice rows, in row order:
 *   reads  the images: row r is image idx[idx_off + r] when use_idx, else r0 + r;
 *          wt[K x 16] = W1^T, zero past H (sparse_step_sum's or the host's), b1[H] at b1, W2[N x H]
 *          at w2, b2[N] at b2, labels[l_off + r]
 *   writes stats[(stat_row0 + r) * 3 + {0, 1, 2}] as softmax_xent.cl defines them,
 *          part1[s][K + 1][16]: rows 0..K-1 the slice's X^T dH (X the raw pixel values: the
 *          sum applies alpha), row K its column sums of dH, zeros where nothing adds; after
 *          the slices' slabs, each slice's ROW_BLOCK rows of 16 floats hold the dH of its
 *          current block of rows; and part2[s][N * H + N]: the slice's dW2 = dZ^T A and db2,
 *   with A = act(alpha X W1^T + b1) after dropout, dZ = (softmax(A W2^T + b2) - onehot) *
 *   scale, dH = (dZ W2) * g'(a_scale A), then dropout's mask again.
 *   A slice takes its rows ROW_BLOCK at a time: the forward pass and dH of the block (16 rows
 *   at a time for the output layer, a row in each lane), then dH into the slab from the
 *   block's nonzeros again. One pass over the rows switched between wt's and the slab's
 *   50 KB for every row, which does not fit a 48 KB L1 (the seed's full batch on PoCL, 2
 *   cores: cltrain's epoch 9.0 ms so, 8.1 in blocks).
 *   With backward 0 (an evaluation), the forward pass alone: only the statistics, nothing
 *   of part1 or part2 (p_drop 0 for no dropout, use_idx 0, scale 1).
 * sparse_step_sum: NDRange (K + 1 + N * H + N): the gradient, summed over the slices in slice
 *   order (deterministic): item k < K the column k of dW1[H x K] (at dw1, times alpha), item
 *   K db1 (at db1), then one element of dW2 (at dw2) and db2 (at db2) each, in part2's order.
 *   With opt < 0 it writes them into grads; with opt >= 0 (optimizer.cl's kind) it applies
 *   that optimizer's step to p (and s1, s2 as update.cl says) at the same offsets instead,
 *   the gradients never written, and item k < K writes the new column k into wt[k] (zero past
 *   H): the next pass's W1^T without a transposition.
 * Dropout as activation.cl's dropout kernel draws it: element (r, c) of the m x H block is kept
 * (times keep_scale) when rng_uniform(seed, stream, r * H + c) >= p_drop, in both passes.
 * Built with -DK, -DH, -DN, -DACT (0 none, 1 relu, 2 sigmoid) and -DROW_BLOCK (the host sizes
 * part1 by it). The file includes reduce.cl and update.cl, whose
 * reduce_stats (and, where the update is apart, under mpirun, update) kernels a training
 * launches beside these: one program is then all the seed's training builds (on PoCL a
 * program costs about 0.2 s to build past the first, and 50-80 ms to take from its cache). */
#if !defined(K) || !defined(H) || !defined(N) || !defined(ACT) || !defined(ROW_BLOCK)
#error "build with -DK=<pixels> -DH=<hidden> -DN=<classes> -DACT=<0|1|2> -DROW_BLOCK=<rows>"
#endif
#define OUT_K H
#define OUT_N N

#include "activate.cl"
#include "rng.cl"
#include "output_row.cl"
#include "reduce.cl"
#include "update.cl"
#include "transpose.cl"

/* A pixel's value as a float, from a table: converting it and broadcasting the register take
 * the port that AVX-512's multiply-adds need (PoCL), a broadcast from memory is a load. */
#define PIXEL_VALUES4(i) (float)(i), (float)((i) + 1), (float)((i) + 2), (float)((i) + 3)
#define PIXEL_VALUES16(i) PIXEL_VALUES4(i), PIXEL_VALUES4((i) + 4), PIXEL_VALUES4((i) + 8), PIXEL_VALUES4((i) + 12)
#define PIXEL_VALUES64(i) PIXEL_VALUES16(i), PIXEL_VALUES16((i) + 16), PIXEL_VALUES16((i) + 32), PIXEL_VALUES16((i) + 48)
__constant float pixel_value[256] = {PIXEL_VALUES64(0), PIXEL_VALUES64(64), PIXEL_VALUES64(128),
                                     PIXEL_VALUES64(192)};

/* The row's hidden pre-activations, alpha x its nonzeros' rows of wt summed, plus b1: four
 * quarters of the nonzeros read two at a time (one 8-byte load; the pass issues more
 * instructions than its loads allow for, perf), eight chains of multiply-adds. wt and the
 * slab are read as float16 arrays, whose loads are single aligned ones (PoCL, 2 cores, 60,000
 * images: 27.8 ms a step through vload16, 23.5 so). The seed's full batch, sparse_step's mean
 * call of training and evaluation on a faster VM: 5.6-6.1 ms with two chains and converted
 * values, 5.1-5.2 with four, 4.6-4.8 with four and the table; the epoch with its evaluation on
 * this session's VM 9.1-9.9 ms with single loads, 9.0 so, forward and scatter (either alone
 * 9.1-9.9). */
static inline float16 hidden_sum(__global const uint *nz, const uint begin, const uint end,
                                 __global const float16 *wt, const float alpha, const float16 b1)
{
    float16 a0 = (float16)0.0f, a1 = (float16)0.0f, a2 = (float16)0.0f, a3 = (float16)0.0f;
    float16 c0 = (float16)0.0f, c1 = (float16)0.0f, c2 = (float16)0.0f, c3 = (float16)0.0f;
    const uint n4 = (end - begin) / 8;   /* pairs per quarter */
    for (uint i = 0; i < n4; i++) {
        const uint2 p = vload2(0, nz + begin + 2 * i), q = vload2(0, nz + begin + 2 * (i + n4));
        const uint2 u = vload2(0, nz + begin + 2 * (i + 2 * n4)), v = vload2(0, nz + begin + 2 * (i + 3 * n4));
        a0 = fma((float16)pixel_value[p.x & 255u], wt[p.x >> 8], a0);
        c0 = fma((float16)pixel_value[p.y & 255u], wt[p.y >> 8], c0);
        a1 = fma((float16)pixel_value[q.x & 255u], wt[q.x >> 8], a1);
        c1 = fma((float16)pixel_value[q.y & 255u], wt[q.y >> 8], c1);
        a2 = fma((float16)pixel_value[u.x & 255u], wt[u.x >> 8], a2);
        c2 = fma((float16)pixel_value[u.y & 255u], wt[u.y >> 8], c2);
        a3 = fma((float16)pixel_value[v.x & 255u], wt[v.x >> 8], a3);
        c3 = fma((float16)pixel_value[v.y & 255u], wt[v.y >> 8], c3);
    }
    for (uint e = begin + 8 * n4; e < end; e++) {
        const uint p = nz[e];
        a0 = fma((float16)pixel_value[p & 255u], wt[p >> 8], a0);
    }
    return alpha * (((a0 + c0) + (a1 + c1)) + ((a2 + c2) + (a3 + c3))) + b1;
}

/* The hidden activations of image img (lanes from H on 0) into hv. */
static inline void hidden_row(__global const uint *row_ptr, __global const uint *nz, const uint img,
                              __global const float16 *wt, const float alpha, const float16 b1,
                              float hv[16])
{
    vstore16(hidden_sum(nz, row_ptr[img], row_ptr[img + 1], wt, alpha, b1), 0, hv);
    for (int c = 0; c < 16; c++) hv[c] = c < H ? activate(hv[c], ACT) : 0.0f;
}

/* b1[H] at params + b1, zero past H. */
static inline float16 hidden_bias(__global const float *params, const ulong b1)
{
    float bl[16];
    for (int c = 0; c < 16; c++) bl[c] = c < H ? params[b1 + c] : 0.0f;
    return vload16(0, bl);
}

/* Rows go 16 at a time: each one's hidden units from its nonzeros, then the output layer,
 * softmax and dH of the 16 at once, a row in each lane (output_row.cl's block functions), then
 * each row's gradients and its dH into the slab. Row by row, the ten-deep chains of
 * multiply-adds of the logits and of dH and the row's exp and log took a third of the pass
 * (perf, the seed's full batch). */
__kernel void sparse_step(const int backward, __global const uint *row_ptr, __global const uint *nz,
                          __global const uint *idx, const ulong idx_off, const int use_idx,
                          const uint r0, const int m, const int rows_per_slice, const float alpha,
                          __global const float16 *wt, __global const float *params,
                          const ulong b1, const ulong w2, const ulong b2,
                          __global const uchar *labels, const ulong l_off, const float scale,
                          __global float *stats, const ulong stat_row0, const float p_drop,
                          const float keep_scale, const float a_scale, const ulong seed,
                          const ulong stream, __global float16 *part1, __global float *part2)
{
    const int s = get_global_id(0);
    const int rb = s * rows_per_slice, re = min(m, rb + rows_per_slice);
    if (rb >= m) return;
    __global float16 *slab = part1 + (ulong)s * (K + 1);
    if (backward)
        for (int k = 0; k < K; k++) slab[k] = (float16)0.0f;
    float w2s[N * H], b2s[N];
    for (int e = 0; e < N * H; e++) w2s[e] = params[w2 + e];
    for (int j = 0; j < N; j++) b2s[j] = params[b2 + j];
    const float16 bias1 = hidden_bias(params, b1);
    float16 acc[H], bacc = (float16)0.0f, hacc = (float16)0.0f;
    for (int c = 0; c < H; c++) acc[c] = (float16)0.0f;
    /* part1's slabs, then each slice's dH of its current block of rows */
    __global float16 *dh = part1 + (ulong)get_global_size(0) * (K + 1) + (ulong)s * ROW_BLOCK;
    for (int rblock = rb; rblock < re; rblock += ROW_BLOCK) {
        const int rblock_end = min(re, rblock + ROW_BLOCK);
        for (int rq = rblock; rq < rblock_end; rq += 16) {
            const int nr = min(16, rblock_end - rq);
            float16 hrow[16], hc[16], d[16], g[16];
            int labs[16];
            for (int i = 0; i < 16; i++) {
                labs[i] = i < nr ? (int)labels[l_off + (ulong)(rq + i)] : 0;
                if (i >= nr) {
                    hrow[i] = (float16)0.0f;
                    continue;
                }
                const int r = rq + i;
                float hv[16];
                hidden_row(row_ptr, nz, use_idx ? idx[idx_off + r] : r0 + (uint)r, wt, alpha, bias1, hv);
                if (p_drop > 0.0f)
                    for (int c = 0; c < H; c++)
                        hv[c] = rng_dropout(hv[c], p_drop, keep_scale, seed, stream, (ulong)r * H + c);
                hrow[i] = vload16(0, hv);
            }
            for (int i = 0; i < 16; i++) hc[i] = hrow[i];
            transpose16(hc);   /* hc[c]: unit c of the 16 rows */
            output_block(hc, vload16(0, labs), w2s, b2s, nr, scale, stats + (stat_row0 + (ulong)rq) * 3, d);
            if (!backward) continue;
            output_block_input_grad(d, hc, w2s, a_scale, g);
            transpose16(d);   /* d[i]: row i's dZ (lane j) */
            transpose16(g);   /* g[i]: row i's dH (lane c) */
            for (int i = 0; i < nr; i++) {
                const int r = rq + i;
                float hv[16];
                vstore16(hrow[i], 0, hv);
                bacc += d[i];
                for (int c = 0; c < H; c++) acc[c] = fma((float16)hv[c], d[i], acc[c]);
                float16 gi = g[i];
                if (p_drop > 0.0f) {
                    float gl[16];
                    vstore16(gi, 0, gl);
                    for (int c = 0; c < H; c++)
                        gl[c] = rng_dropout(gl[c], p_drop, keep_scale, seed, stream, (ulong)r * H + c);
                    gi = vload16(0, gl);
                }
                hacc += gi;
                dh[r - rblock] = gi;
            }
        }
        if (!backward) continue;
        /* dH into the slice's rows of X^T dH, two nonzeros a load: an image's pixels are
         * distinct, so no two updates of one row depend on each other. */
        for (int r = rblock; r < rblock_end; r++) {
            const uint img = use_idx ? idx[idx_off + r] : r0 + (uint)r;
            const float16 gi = dh[r - rblock];
            const uint begin = row_ptr[img], end = row_ptr[img + 1], n2 = (end - begin) / 2;
            for (uint i = 0; i < n2; i++) {
                const uint2 p = vload2(0, nz + begin + 2 * i);
                slab[p.x >> 8] = fma((float16)pixel_value[p.x & 255u], gi, slab[p.x >> 8]);
                slab[p.y >> 8] = fma((float16)pixel_value[p.y & 255u], gi, slab[p.y >> 8]);
            }
            if ((end - begin) & 1u) {
                const uint p = nz[end - 1];
                slab[p >> 8] = fma((float16)pixel_value[p & 255u], gi, slab[p >> 8]);
            }
        }
    }
    if (!backward) return;
    slab[K] = hacc;
    __global float *out = part2 + (ulong)s * (N * H + N);
    output_grads_store(acc, bacc, out, out + N * H);
}

__kernel void sparse_step_sum(__global const float16 *part1, __global const float *part2,
                              const int slices, const float alpha, __global float *grads,
                              const ulong dw1, const ulong db1, const ulong dw2, const ulong db2,
                              const int opt, __global float *p, __global float *s1,
                              __global float *s2, __global float16 *wt, const float lr,
                              const float mu, const float b1, const float b2, const float eps,
                              const float wd, const float bc1, const float bc2)
{
    const int i = get_global_id(0);
    float lanes[16];
    ulong at[16];
    int count = 0;
    if (i <= K) {
        float16 acc = part1[i];
        for (int s = 1; s < slices; s++) acc += part1[(ulong)s * (K + 1) + i];
        vstore16(acc, 0, lanes);
        for (int c = 0; c < H; c++) {
            if (i < K) lanes[c] *= alpha;
            at[c] = i < K ? dw1 + (ulong)c * K + i : db1 + c;
        }
        count = H;
    } else {
        const int e = i - (K + 1);
        if (e >= N * H + N) return;
        float sum = 0.0f;
        for (int s = 0; s < slices; s++) sum += part2[(ulong)s * (N * H + N) + e];
        lanes[0] = sum;
        at[0] = e < N * H ? dw2 + e : db2 + e - N * H;
        count = 1;
    }
    if (opt < 0) {   /* the gradients alone */
        for (int c = 0; c < count; c++) grads[at[c]] = lanes[c];
        return;
    }
    /* The update in place of the write (the arrays' offsets are the gradients'), and column i
     * of the new W1 into wt, which the next pass reads. */
    for (int c = 0; c < count; c++)
        optimizer_step(opt, at[c], lanes[c], p, s1, s2, lr, mu, b1, b2, eps, wd, bc1, bc2);
    if (i < K) {
        float col[16];
        for (int c = 0; c < 16; c++) col[c] = c < H ? p[at[c]] : 0.0f;
        wt[i] = vload16(0, col);
    }
}
