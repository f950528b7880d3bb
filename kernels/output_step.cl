/* output_step.cl: the output layer of a narrow network, forward and backward, in one pass over
 * its rows (backend.h's output_step; the per-layer path runs it as five launches that each
 * re-read the rows). For N <= 16 classes a row's logits, softmax and dZ are one float16 (lanes
 * from N on stay 0), and for K <= 16 hidden inputs W's columns and the slice's dW stay in
 * registers.
 *
 * output_step: NDRange (slices), one work-item per slice of rows_per_slice rows, in row order:
 *   reads  h[m x K] (the hidden activations, after dropout), W[N x K] at w + w_off, b[N] at
 *          b + b_off, labels[l_off + r]
 *   writes z[m x N] = dZ = (softmax(h W^T + b) - onehot) * scale, stats[(stat_row0 + r) * 3
 *          + {0, 1, 2}] as softmax_xent.cl defines them (a row's softmax here in registers),
 *          dh[m x K] = (dZ W) * g'(a_scale * h) (ACT: 0 none, 1 relu,
 *          2 sigmoid), and the slice's dW = dZ^T h (N x K) and db = its column sums of dZ:
 *          into dw/db when there is one slice (direct = 1), else into part[s] (N * K + N
 *          floats) for output_step_sum
 * output_step_sum: NDRange (N * K + N): dw/db = the sum over slices of part[s], in slice
 *   order (deterministic).
 * With backward = 0 (an evaluation) only z = the logits and the statistics are written.
 * Built with -DK, -DN and -DACT. */
#ifndef K
#error "build with -DK=<hidden inputs> -DN=<classes> -DACT=<0|1|2>"
#endif
#if K > 16 || N > 16
#error "output_step.cl takes at most 16 inputs and 16 classes"
#endif
#define OUT_K K
#define OUT_N N
#include "output_row.cl"

__kernel void output_step(const int backward, __global const float *h, const int m,
                          const int rows_per_slice,
                          __global const float *w, const ulong w_off, __global const float *b,
                          const ulong b_off, __global const uchar *labels, const ulong l_off,
                          const float scale, __global float *z, __global float *stats,
                          const ulong stat_row0, const float a_scale, __global float *dh,
                          const int direct, __global float *dw, const ulong dw_off,
                          __global float *db, const ulong db_off, __global float *part)
{
    const int s = get_global_id(0);
    const int r0 = s * rows_per_slice, r1 = min(m, r0 + rows_per_slice);
    if (r0 >= m) return;
    output_weights o;
    output_weights_load(w + w_off, b + b_off, &o);
    float16 acc[K], bacc = (float16)0.0f;
    for (int c = 0; c < K; c++) acc[c] = (float16)0.0f;
    for (int r = r0; r < r1; r++) {
        __global const float *hr = h + (ulong)r * K;
        float hv[16];
        for (int c = 0; c < 16; c++) hv[c] = c < K ? hr[c] : 0.0f;
        const float16 zv = output_logits(&o, hv);
        const float16 d = output_softmax(zv, labels[l_off + r], stats + (stat_row0 + (ulong)r) * 3);
        const float16 out = backward ? d * scale : zv;
        float lanes[16];
        vstore16(out, 0, lanes);
        __global float *zr = z + (ulong)r * N;
        for (int j = 0; j < N; j++) zr[j] = lanes[j];
        if (!backward) continue;
        bacc += out;
        for (int c = 0; c < K; c++) acc[c] = fma((float16)hv[c], out, acc[c]);
        float gl[16];
        vstore16(output_input_grad(&o, out, hv, a_scale), 0, gl);
        for (int c = 0; c < K; c++) dh[(ulong)r * K + c] = gl[c];
    }
    if (!backward) return;
    __global float *out_w = direct ? dw + dw_off : part + (ulong)s * (N * K + N);
    __global float *out_b = direct ? db + db_off : part + (ulong)s * (N * K + N) + N * K;
    output_grads_store(acc, bacc, out_w, out_b);
}

__kernel void output_step_sum(__global const float *part, const int slices, __global float *dw,
                              const ulong dw_off, __global float *db, const ulong db_off)
{
    const int e = get_global_id(0);
    if (e >= N * K + N) return;
    float sum = 0.0f;
    for (int s = 0; s < slices; s++) sum += part[(ulong)s * (N * K + N) + e];
    if (e < N * K) dw[dw_off + e] = sum;
    else db[db_off + e - N * K] = sum;
}
