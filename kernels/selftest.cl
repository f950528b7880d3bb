/* selftest.cl: the smallest useful kernel, used by tests/test_cl_runtime.c to prove the runtime
 * (build, cache, buffers, launch, profiling) against plain C.
 *
 * scale_add: y is (n), x is (n); y[i] = a * x[i] + b * y[i] for i < n.
 * One work-item per element; the global size may be rounded up past n (the guard). */
__kernel void scale_add(__global float *y, __global const float *x, float a, float b, int n)
{
    int i = (int)get_global_id(0);
    if (i < n) y[i] = a * x[i] + b * y[i];
}
