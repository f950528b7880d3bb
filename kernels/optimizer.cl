/* optimizer.cl: one optimizer step for one parameter, the per-element math of every update
 * (update.cl's kernels, one element per work-item, and fused_step.cl's gradient-and-update
 * launch), so that both paths compute the same function. kind follows the host's
 * optimizer_kind: 0 sgd, 1 momentum, 2 nesterov, 3 adam, 4 adamw (see update.cl for each
 * formula). p, s1 (velocity or Adam's first moments) and s2 (Adam's second moments) are read
 * and written at element i; gi is that element's gradient. */
#ifndef CLTRAIN_OPTIMIZER_CL
#define CLTRAIN_OPTIMIZER_CL

/* m and v updated in place; returns the Adam step mhat / (sqrt(vhat) + eps). */
static inline float adam_step(const float gi, __global float *m, __global float *v,
                              const size_t i, const float b1, const float b2, const float eps,
                              const float bc1, const float bc2)
{
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    return (mi / bc1) / (sqrt(vi / bc2) + eps);
}

static inline void optimizer_step(const int kind, const size_t i, const float gi,
                                  __global float *p, __global float *s1, __global float *s2,
                                  const float lr, const float mu, const float b1, const float b2,
                                  const float eps, const float wd, const float bc1,
                                  const float bc2)
{
    const float pi = p[i];
    if (kind == 0) {
        p[i] = pi - lr * (gi + wd * pi);
    } else if (kind == 1) {
        const float vi = mu * s1[i] + (gi + wd * pi);
        s1[i] = vi;
        p[i] = pi - lr * vi;
    } else if (kind == 2) {
        const float gw = gi + wd * pi;
        const float vi = mu * s1[i] + gw;
        s1[i] = vi;
        p[i] = pi - lr * (gw + mu * vi);
    } else if (kind == 3) {
        p[i] = pi - lr * adam_step(gi + wd * pi, s1, s2, i, b1, b2, eps, bc1, bc2);
    } else {
        p[i] = pi - lr * adam_step(gi, s1, s2, i, b1, b2, eps, bc1, bc2) - lr * wd * pi;
    }
}

#endif
