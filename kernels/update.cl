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
 * once in double, backend.h's adam_bias_corrections). wd is the weight decay, 0 for none.
 * The per-element math is optimizer.cl's optimizer_step, shared with fused_step.cl. */
#include "optimizer.cl"

__kernel void update_sgd(__global float *p, __global const float *g, const ulong n,
                         const float lr, const float wd)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    optimizer_step(0, i, g[i], p, p, p, lr, 0.0f, 0.0f, 0.0f, 0.0f, wd, 1.0f, 1.0f);
}

__kernel void update_momentum(__global float *p, __global const float *g, __global float *v,
                              const ulong n, const float lr, const float mu, const float wd)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    optimizer_step(1, i, g[i], p, v, v, lr, mu, 0.0f, 0.0f, 0.0f, wd, 1.0f, 1.0f);
}

__kernel void update_nesterov(__global float *p, __global const float *g, __global float *v,
                              const ulong n, const float lr, const float mu, const float wd)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    optimizer_step(2, i, g[i], p, v, v, lr, mu, 0.0f, 0.0f, 0.0f, wd, 1.0f, 1.0f);
}

__kernel void update_adam(__global float *p, __global const float *g, __global float *m,
                          __global float *v, const ulong n, const float lr, const float b1,
                          const float b2, const float eps, const float wd, const float bc1,
                          const float bc2)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    optimizer_step(3, i, g[i], p, m, v, lr, 0.0f, b1, b2, eps, wd, bc1, bc2);
}

__kernel void update_adamw(__global float *p, __global const float *g, __global float *m,
                           __global float *v, const ulong n, const float lr, const float b1,
                           const float b2, const float eps, const float wd, const float bc1,
                           const float bc2)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    optimizer_step(4, i, g[i], p, m, v, lr, 0.0f, b1, b2, eps, wd, bc1, bc2);
}
