/* optimizer.cl: one optimizer step for one parameter, the per-element math of every update
 * (update.cl's kernels, one element per work-item, and fused_step.cl's gradient-and-update
 * launch), so that both paths compute the same function. kind follows the host's
 * optimizer_kind: 0 sgd, 1 momentum, 2 nesterov, 3 adam, 4 adamw (see update.cl for each
 * formula). p, s1 (velocity or Adam's first moments) and s2 (Adam's second moments) are read
 * and written at element i; gi is that element's gradient. */
#ifndef CLTRAIN_OPTIMIZER_CL
#define CLTRAIN_OPTIMIZER_CL

/* The step on the element(s) of type T at offset i of p, s1, s2 (float, or a vector of floats
 * in fused_step.cl: the same operators lane by lane), read by LD(q) and written by ST(x, q).
 * gi is their gradient. Written once here so that every path runs the same formulas. */
#define OPTIMIZER_STEP_BODY(T, LD, ST)                                                         \
    {                                                                                          \
        const T pi = LD(p);                                                                    \
        if (kind == 0) {                                                                       \
            ST(pi - lr * (gi + wd * pi), p);                                                   \
        } else if (kind == 1) {                                                                \
            const T vi = mu * LD(s1) + (gi + wd * pi);                                         \
            ST(vi, s1);                                                                        \
            ST(pi - lr * vi, p);                                                               \
        } else if (kind == 2) {                                                                \
            const T gw = gi + wd * pi;                                                         \
            const T vi = mu * LD(s1) + gw;                                                     \
            ST(vi, s1);                                                                        \
            ST(pi - lr * (gw + mu * vi), p);                                                   \
        } else {                                                                               \
            /* Adam takes the L2 term into its gradient; AdamW decays the weight apart. */     \
            const T ga = kind == 3 ? gi + wd * pi : gi;                                        \
            const T mi = b1 * LD(s1) + (1.0f - b1) * ga;                                       \
            const T vi = b2 * LD(s2) + (1.0f - b2) * ga * ga;                                  \
            ST(mi, s1);                                                                        \
            ST(vi, s2);                                                                        \
            const T step = (mi / bc1) / (sqrt(vi / bc2) + eps);                                \
            if (kind == 3) ST(pi - lr * step, p);                                              \
            else ST(pi - lr * step - lr * wd * pi, p);                                         \
        }                                                                                      \
    }

#define OPT_LD1(q) ((q)[i])
#define OPT_ST1(x, q) ((q)[i] = (x))
static inline void optimizer_step(const int kind, const size_t i, const float gi,
                                  __global float *p, __global float *s1, __global float *s2,
                                  const float lr, const float mu, const float b1, const float b2,
                                  const float eps, const float wd, const float bc1,
                                  const float bc2)
OPTIMIZER_STEP_BODY(float, OPT_LD1, OPT_ST1)
#undef OPT_LD1
#undef OPT_ST1

#endif
