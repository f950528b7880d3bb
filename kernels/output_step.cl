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
/* The sum of a row's 16 lanes, as a halving tree. */
static inline float hsum16(const float16 v)
{
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}

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
    /* wcol[c] lane j and wrow[j] lane c: W[j][c] (for z and for dh, both as FMAs) */
    float16 wcol[K], wrow[N], acc[K], bacc = (float16)0.0f;
    float16 bias = (float16)0.0f;
    for (int c = 0; c < K; c++) {
        float col[16];
        for (int j = 0; j < 16; j++) col[j] = j < N ? w[w_off + (ulong)j * K + c] : 0.0f;
        wcol[c] = vload16(0, col);
        acc[c] = (float16)0.0f;
    }
    for (int j = 0; j < N; j++) {
        float row[16];
        for (int c = 0; c < 16; c++) row[c] = c < K ? w[w_off + (ulong)j * K + c] : 0.0f;
        wrow[j] = vload16(0, row);
    }
    {
        float bv[16];
        for (int j = 0; j < 16; j++) bv[j] = j < N ? b[b_off + j] : -INFINITY;   /* softmax: e = 0 */
        bias = vload16(0, bv);
    }
    for (int r = r0; r < r1; r++) {
        __global const float *hr = h + (ulong)r * K;
        float hv[K];
        float16 zv = bias;
        for (int c = 0; c < K; c++) {
            hv[c] = hr[c];
            zv = fma((float16)hv[c], wcol[c], zv);
        }
        /* softmax_xent.cl's row function on the row in registers: the logits never go
         * through memory on the way to the gradient (PoCL, 60,000 rows: 3.6-3.9 -> 2.8-3.0
         * ms a call, about a quarter less). */
        const uint label = labels[l_off + r];
        float zl16[16], yl[16];
        vstore16(zv, 0, zl16);
        float zmax = zl16[0];
        int arg = 0;
        for (int j = 1; j < N; j++)
            if (zl16[j] > zmax) { zmax = zl16[j]; arg = j; }
        const float16 e = exp(zv - zmax);   /* lanes from N on: exp(-inf) = 0 */
        const float sum = hsum16(e);
        for (int j = 0; j < 16; j++) yl[j] = j < N && (uint)j == label ? 1.0f : 0.0f;
        const float16 d = e * (1.0f / sum) - vload16(0, yl);
        const float zl = label < (uint)N ? zl16[label] : NAN;
        __global float *st = stats + (stat_row0 + (ulong)r) * 3;
        st[0] = (zmax - zl) + log(sum);   /* >= 0: zmax >= z[label] and sum >= 1 */
        st[1] = hsum16(d * d);
        st[2] = (uint)arg == label ? 1.0f : 0.0f;
        const float16 out = backward ? d * scale : zv;
        float lanes[16];
        vstore16(out, 0, lanes);
        __global float *zr = z + (ulong)r * N;
        for (int j = 0; j < N; j++) zr[j] = lanes[j];
        if (!backward) continue;
        float16 g = (float16)0.0f;   /* lane c: (dZ W)[c] */
        for (int j = 0; j < N; j++) g = fma((float16)lanes[j], wrow[j], g);
        bacc += out;
        for (int c = 0; c < K; c++) acc[c] = fma((float16)hv[c], out, acc[c]);
        float hl[16], gl[16];
        for (int c = 0; c < 16; c++) hl[c] = c < K ? hv[c] : 0.0f;
        const float16 a = a_scale * vload16(0, hl);
        if (ACT == 1) g = select((float16)0.0f, g, a > 0.0f);
        else if (ACT == 2) g *= a * (1.0f - a);
        vstore16(g, 0, gl);
        for (int c = 0; c < K; c++) dh[(ulong)r * K + c] = gl[c];
    }
    if (!backward) return;
    __global float *out_w = direct ? dw + dw_off : part + (ulong)s * (N * K + N);
    __global float *out_b = direct ? db + db_off : part + (ulong)s * (N * K + N) + N * K;
    for (int c = 0; c < K; c++) {
        float col[16];
        vstore16(acc[c], 0, col);
        for (int j = 0; j < N; j++) out_w[(ulong)j * K + c] = col[j];
    }
    float bl[16];
    vstore16(bacc, 0, bl);
    for (int j = 0; j < N; j++) out_b[j] = bl[j];
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
