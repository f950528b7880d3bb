/* update.cl: one optimizer step over n parameters, in place. NDRange (n) for every kernel.
 *
 * update_sgd:      reads p, g;        writes p        g' = g + wd p; p -= lr g'
 * update_momentum: reads p, g, v;     writes p, v     v = mu v + g'; p -= lr v
 * update_nesterov: reads p, g, v;     writes p, v     v = mu v + g'; p -= lr (g' + mu v)
 * update_adam:     reads p, g, m, v;  writes p, m, v  m = b1 m + (1 - b1) g';
 *                                                     v = b2 v + (1 - b2) g'^2;
 *                                                     p -= lr (m / bc1) / (sqrt(v / bc2) + eps)
 * update_adamw:    as adam with g' = g, then p -= lr wd p_old (decoupled weight decay)
 * p, g, v, m: n floats each. bc1 = 1 - b1^t and bc2 = 1 - b2^t come from the trainer (computed
 * once in double, backend.h's adam_bias_corrections). wd is the weight decay, 0 for none. */

__kernel void update_sgd(__global float *p, __global const float *g, const ulong n,
                         const float lr, const float wd)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float pi = p[i];
    p[i] = pi - lr * (g[i] + wd * pi);
}

__kernel void update_momentum(__global float *p, __global const float *g, __global float *v,
                              const ulong n, const float lr, const float mu, const float wd)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float pi = p[i];
    const float vi = mu * v[i] + (g[i] + wd * pi);
    v[i] = vi;
    p[i] = pi - lr * vi;
}

__kernel void update_nesterov(__global float *p, __global const float *g, __global float *v,
                              const ulong n, const float lr, const float mu, const float wd)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float pi = p[i];
    const float gi = g[i] + wd * pi;
    const float vi = mu * v[i] + gi;
    v[i] = vi;
    p[i] = pi - lr * (gi + mu * vi);
}

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

__kernel void update_adam(__global float *p, __global const float *g, __global float *m,
                          __global float *v, const ulong n, const float lr, const float b1,
                          const float b2, const float eps, const float wd, const float bc1,
                          const float bc2)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float pi = p[i];
    p[i] = pi - lr * adam_step(g[i] + wd * pi, m, v, i, b1, b2, eps, bc1, bc2);
}

__kernel void update_adamw(__global float *p, __global const float *g, __global float *m,
                           __global float *v, const ulong n, const float lr, const float b1,
                           const float b2, const float eps, const float wd, const float bc1,
                           const float bc2)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float pi = p[i];
    p[i] = pi - lr * adam_step(g[i], m, v, i, b1, b2, eps, bc1, bc2) - lr * wd * pi;
}
