/* softmax_xent.cl: softmax over each row, cross-entropy against a label, per-row statistics and
 * (optionally) the gradient. Built with the class count (-DCLASSES=10) so that the per-row
 * loops unroll, and RB rows per work-item (a CPU takes many, a GPU one).
 *
 * softmax_xent_rows: NDRange (ceil(rows / RB))
 *   reads  z[rows x CLASSES] (row stride CLASSES) from z + z_off,
 *          labels[rows] (uchar) from labels + l_off
 *   writes stats[(stat_row0 + i) * 3 + {0, 1, 2}] = loss, squared error, correct:
 *            loss = logsumexp(z_i) - z_i[label] (NaN for a label >= CLASSES),
 *            squared error = sum_j (p_j - y_j)^2, correct = 1 if argmax (first maximum) == label
 *          want_grad only: z_i[j] = (p_j - y_j) * scale in place
 * p = softmax(z_i) with the row maximum subtracted first, so large logits do not overflow. */
#ifndef CLASSES
#error "softmax_xent.cl is built with -DCLASSES=<class count>"
#endif
#ifndef RB
#define RB 1
#endif

/* One row, the exponentials computed once (exp dominates: PoCL's is a precise libm). */
static inline void softmax_xent_row(__global float *z, const uint label, const float scale,
                                    __global float *st, const int want_grad)
{
    float zmax = z[0];
    int arg = 0;
    for (int j = 1; j < CLASSES; j++)
        if (z[j] > zmax) { zmax = z[j]; arg = j; }
#if CLASSES <= 16
    /* Up to 16 classes: one vector exp for the row (lanes past CLASSES get exp(-inf) = 0),
     * a tenth of the calls of one exp per class. */
    float e[16];
    for (int j = 0; j < 16; j++) e[j] = j < CLASSES ? z[j] - zmax : -INFINITY;
    vstore16(exp(vload16(0, e)), 0, e);
#else
    float e[CLASSES];
    for (int j = 0; j < CLASSES; j++) e[j] = exp(z[j] - zmax);
#endif
    float sum = 0.0f;
    for (int j = 0; j < CLASSES; j++) sum += e[j];
    const float zl = label < (uint)CLASSES ? z[label] : NAN;
    const float inv = 1.0f / sum;
    float sq = 0.0f;
    for (int j = 0; j < CLASSES; j++) {
        const float d = e[j] * inv - ((uint)j == label ? 1.0f : 0.0f);
        sq += d * d;
        if (want_grad) z[j] = d * scale;
    }
    st[0] = (zmax - zl) + log(sum);   /* >= 0: zmax >= z[label] and sum >= 1 */
    st[1] = sq;
    st[2] = (uint)arg == label ? 1.0f : 0.0f;
}

__kernel void softmax_xent_rows(__global float *z, const ulong z_off, const int rows,
                                __global const uchar *labels, const ulong l_off, const float scale,
                                __global float *stats, const ulong stat_row0, const int want_grad)
{
    const int r0 = get_global_id(0) * RB;
    for (int i = r0; i < min(rows, r0 + RB); i++)
        softmax_xent_row(z + z_off + (size_t)i * CLASSES, labels[l_off + i], scale,
                         stats + (stat_row0 + i) * 3, want_grad);
}
