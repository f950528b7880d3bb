/* activation.cl: bias add fused with the activation, its derivative, and inverted dropout.
 *
 * bias_none, bias_relu, bias_sigmoid: NDRange (rows * cols)
 *   reads  za[rows x cols] (row stride cols) from za + za_off, bias[cols] from bias + b_off
 *   writes za = act(za + bias[col]) in place; relu max(v, 0), sigmoid 1 / (1 + e^-v)
 * relu_backward, sigmoid_backward: NDRange (count)
 *   reads  d[count] from d + d_off, a[count] (activated values) from a + a_off
 *   writes d *= a > 0 (relu) or s (1 - s), s = a_scale * a (sigmoid; a_scale undoes inverted
 *          dropout's scaling, 1 without dropout), in place
 * dropout: NDRange (count)
 *   reads  x[count] from x + off
 *   writes x[i] = keep_i ? x[i] * scale : 0, keep_i = rng_uniform(seed, stream, i) >= p,
 *          scale = 1 / (1 - p) from the host (the counter i starts at 0 at x + off) */
#include "rng.cl"
#include "activate.cl"

/* Written out per kernel rather than through a macro, so that the runtime can build each one
 * alone (src/kernel_select.c reads kernels, not macro expansions). */
static inline void bias_act(__global float *za, const ulong za_off, __global const float *bias,
                            const ulong b_off, const int rows, const int cols, const int act)
{
    const size_t i = get_global_id(0);
    if (i >= (size_t)rows * (size_t)cols) return;
    const int col = (int)(i % (size_t)cols);
    za[za_off + i] = activate(za[za_off + i] + bias[b_off + col], act);
}

__kernel void bias_none(__global float *za, const ulong za_off, __global const float *bias,
                        const ulong b_off, const int rows, const int cols)
{
    bias_act(za, za_off, bias, b_off, rows, cols, 0);
}

__kernel void bias_relu(__global float *za, const ulong za_off, __global const float *bias,
                        const ulong b_off, const int rows, const int cols)
{
    bias_act(za, za_off, bias, b_off, rows, cols, 1);
}

__kernel void bias_sigmoid(__global float *za, const ulong za_off, __global const float *bias,
                           const ulong b_off, const int rows, const int cols)
{
    bias_act(za, za_off, bias, b_off, rows, cols, 2);
}

__kernel void relu_backward(__global float *d, const ulong d_off, __global const float *a,
                            const ulong a_off, const ulong count)
{
    const size_t i = get_global_id(0);
    if (i >= count) return;
    if (!(a[a_off + i] > 0.0f)) d[d_off + i] = 0.0f;
}

__kernel void sigmoid_backward(__global float *d, const ulong d_off, __global const float *a,
                               const ulong a_off, const ulong count, const float a_scale)
{
    const size_t i = get_global_id(0);
    if (i >= count) return;
    const float s = a_scale * a[a_off + i];
    d[d_off + i] *= s * (1.0f - s);
}

__kernel void dropout(__global float *x, const ulong off, const ulong count, const float p,
                      const float scale, const ulong seed, const ulong stream)
{
    const size_t i = get_global_id(0);
    if (i >= count) return;
    x[off + i] = rng_dropout(x[off + i], p, scale, seed, stream, i);
}
