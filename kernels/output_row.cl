/* output_row.cl: one row of a narrow output layer in registers (output_step.cl), and the same
 * function on a block of 16 rows with a row in each lane (sparse_step.cl), side by side. OUT_K
 * (at most 16) hidden inputs, OUT_N (at most 16) classes, ACT the hidden activation below them
 * (0 none, 1 relu, 2 sigmoid). A row's logits, softmax and dZ are one float16 (lanes from OUT_N
 * on: logit -inf, so exp 0, dZ 0); its hidden inputs are a float[16], zero from OUT_K on. */
#ifndef CLTRAIN_OUTPUT_ROW_CL
#define CLTRAIN_OUTPUT_ROW_CL

#if OUT_K > 16 || OUT_N > 16
#error "output_row.cl takes at most 16 inputs and 16 classes"
#endif

/* The sum of a row's 16 lanes, as a halving tree. */
static inline float hsum16(const float16 v)
{
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* W[OUT_N x OUT_K] as wcol[c] (lane j: W[j][c], the logits' multiply-adds) and wrow[j]
 * (lane c: W[j][c], dZ W's), and the bias, -inf from OUT_N on. */
typedef struct {
    float16 wcol[OUT_K], wrow[OUT_N], bias;
} output_weights;

static inline void output_weights_load(__global const float *w, __global const float *b,
                                       output_weights *o)
{
    for (int c = 0; c < OUT_K; c++) {
        float col[16];
        for (int j = 0; j < 16; j++) col[j] = j < OUT_N ? w[j * OUT_K + c] : 0.0f;
        o->wcol[c] = vload16(0, col);
    }
    for (int j = 0; j < OUT_N; j++) {
        float row[16];
        for (int c = 0; c < 16; c++) row[c] = c < OUT_K ? w[j * OUT_K + c] : 0.0f;
        o->wrow[j] = vload16(0, row);
    }
    float bv[16];
    for (int j = 0; j < 16; j++) bv[j] = j < OUT_N ? b[j] : -INFINITY;
    o->bias = vload16(0, bv);
}

/* The row's logits h W^T + b. */
static inline float16 output_logits(const output_weights *o, const float hv[16])
{
    float16 z = o->bias;
    for (int c = 0; c < OUT_K; c++) z = fma((float16)hv[c], o->wcol[c], z);
    return z;
}

/* softmax_xent.cl's row function on a row in registers: writes st[0..2] (loss, squared error,
 * correct) and returns softmax(z) - onehot(label), the logits never going through memory
 * (PoCL, 60,000 rows: 3.6-3.9 -> 2.8-3.0 ms an output_step call, about a quarter less). */
static inline float16 output_softmax(const float16 zv, const uint label, __global float *st)
{
    float zl16[16], yl[16];
    vstore16(zv, 0, zl16);
    float zmax = zl16[0];
    int arg = 0;
    for (int j = 1; j < OUT_N; j++)
        if (zl16[j] > zmax) { zmax = zl16[j]; arg = j; }
    const float16 e = exp(zv - zmax);   /* lanes from OUT_N on: exp(-inf) = 0 */
    const float sum = hsum16(e);
    for (int j = 0; j < 16; j++) yl[j] = j < OUT_N && (uint)j == label ? 1.0f : 0.0f;
    const float16 d = e * (1.0f / sum) - vload16(0, yl);
    const float zl = label < (uint)OUT_N ? zl16[label] : NAN;
    st[0] = (zmax - zl) + log(sum);   /* >= 0: zmax >= z[label] and sum >= 1 */
    st[1] = hsum16(d * d);
    st[2] = (uint)arg == label ? 1.0f : 0.0f;
    return d;
}

/* The hidden layer's dA of the row: (dZ W) * g'(a_scale h), lane c for input c (a_scale
 * undoes inverted dropout's scaling of h). */
static inline float16 output_input_grad(const output_weights *o, const float16 dz,
                                        const float hv[16], const float a_scale)
{
    float dl[16];
    vstore16(dz, 0, dl);
    float16 g = (float16)0.0f;
    for (int j = 0; j < OUT_N; j++) g = fma((float16)dl[j], o->wrow[j], g);
    const float16 a = a_scale * vload16(0, hv);
    if (ACT == 1) g = select((float16)0.0f, g, a > 0.0f);
    else if (ACT == 2) g *= a * (1.0f - a);
    return g;
}

/* A slice's dW = dZ^T h (acc[c] lane j: dW[j][c]) and db (bacc) to w[OUT_N x OUT_K], b[OUT_N]. */
static inline void output_grads_store(const float16 *acc, const float16 bacc, __global float *w,
                                      __global float *b)
{
    for (int c = 0; c < OUT_K; c++) {
        float col[16];
        vstore16(acc[c], 0, col);
        for (int j = 0; j < OUT_N; j++) w[j * OUT_K + c] = col[j];
    }
    float bl[16];
    vstore16(bacc, 0, bl);
    for (int j = 0; j < OUT_N; j++) b[j] = bl[j];
}

/* ---- a block of 16 rows, a row in each lane (sparse_step.cl) ------------------------------ */

/* output_logits and output_softmax on 16 rows: their hidden units hc[c] (lane i: row i's unit
 * c, zero from OUT_K on), the labels lab, W and b as w[j * OUT_K + c] and b[j]. Writes st[0..2]
 * of the first nr rows (from stats row 0 at st) and returns in d[j] the rows' dZ of class j,
 * (softmax - onehot) * scale (zero from OUT_N on). The logits' sums run over the inputs in
 * output_logits' order; the softmax's sum runs over the classes in order (not hsum16's tree). */
static inline void output_block(const float16 hc[16], const int16 lab, const float *w,
                                const float *b, const int nr, const float scale,
                                __global float *st, float16 d[16])
{
    float16 z[OUT_N];
    for (int j = 0; j < OUT_N; j++) {
        float16 zj = (float16)b[j];
        for (int c = 0; c < OUT_K; c++) zj = fma(hc[c], (float16)w[j * OUT_K + c], zj);
        z[j] = zj;
    }
    float16 zmax = z[0];
    for (int j = 1; j < OUT_N; j++) zmax = fmax(zmax, z[j]);
    int16 arg = (int16)OUT_N;   /* the first class at the maximum */
    for (int j = OUT_N - 1; j >= 0; j--) arg = select(arg, (int16)j, z[j] == zmax);
    float16 sum = (float16)0.0f, zl = (float16)NAN;   /* NAN: a label past the classes */
    for (int j = 0; j < OUT_N; j++) {
        d[j] = exp(z[j] - zmax);
        sum += d[j];
        zl = select(zl, z[j], lab == (int16)j);
    }
    const float16 inv = 1.0f / sum, loss = (zmax - zl) + log(sum);   /* sum >= 1 */
    float16 sq = (float16)0.0f;
    for (int j = 0; j < 16; j++) {
        if (j >= OUT_N) {
            d[j] = (float16)0.0f;
            continue;
        }
        d[j] = d[j] * inv - select((float16)0.0f, (float16)1.0f, lab == (int16)j);
        sq += d[j] * d[j];
        d[j] *= scale;
    }
    float ls[16], qs[16], cs[16];
    vstore16(loss, 0, ls);
    vstore16(sq, 0, qs);
    vstore16(select((float16)0.0f, (float16)1.0f, arg == lab), 0, cs);
    for (int i = 0; i < nr; i++) {
        st[i * 3] = ls[i];
        st[i * 3 + 1] = qs[i];
        st[i * 3 + 2] = cs[i];
    }
}

/* output_input_grad on a block: g[c] (lane i) = row i's dA of input c, (dZ W) * g'(a_scale h),
 * summed over the classes in its order; zero from OUT_K on. */
static inline void output_block_input_grad(const float16 d[16], const float16 hc[16],
                                           const float *w, const float a_scale, float16 g[16])
{
    for (int c = 0; c < 16; c++) {
        if (c >= OUT_K) {
            g[c] = (float16)0.0f;
            continue;
        }
        float16 gc = (float16)0.0f;
        for (int j = 0; j < OUT_N; j++) gc = fma(d[j], (float16)w[j * OUT_K + c], gc);
        const float16 a = a_scale * hc[c];
        if (ACT == 1) gc = select((float16)0.0f, gc, a > 0.0f);
        else if (ACT == 2) gc *= a * (1.0f - a);
        g[c] = gc;
    }
}

#endif
