/* bench.cl: probes for the benchmark's floor model (bench/probe.c); training never uses them.
 * The read kernels stream the training images once, as the 32-bit words of n16 uint4 vectors,
 * and leave one wrapping sum per work-item, so the host can check that every byte was read.
 * peak_mad and peak_mad16 measure multiply-add throughput. Each probe is launched in the shapes
 * that suit GPUs and CPUs; the host keeps the fastest. */

/* src[n16] (uint4), partial[global size]: grid-stride, consecutive work-items read consecutive
 * vectors (coalesced on GPUs). */
__kernel void read_strided(__global const uint4 *src, ulong n16, __global uint *partial)
{
    size_t gid = get_global_id(0), stride = get_global_size(0);
    uint4 acc = (uint4)(0u);
    for (size_t i = gid; i < n16; i += stride) acc += src[i];
    partial[gid] = acc.x + acc.y + acc.z + acc.w;
}

/* src[n16] (uint4), partial[global size]: work-group g reads the contiguous block
 * [g * per_group, (g + 1) * per_group), its work-items striding by the group size (CPU devices
 * vectorise across work-items, so this is a contiguous stream per thread). */
__kernel void read_blocked(__global const uint4 *src, ulong n16, ulong per_group,
                           __global uint *partial)
{
    ulong begin = (ulong)get_group_id(0) * per_group;
    ulong end = min(begin + per_group, n16);
    uint4 acc = (uint4)(0u);
    for (ulong i = begin + get_local_id(0); i < end; i += get_local_size(0)) acc += src[i];
    partial[get_global_id(0)] = acc.x + acc.y + acc.z + acc.w;
}

/* src[n16] (uint4), partial[global size]: work-item i reads the contiguous block
 * [i * per_item, (i + 1) * per_item) in a plain loop; launched with work-groups of one item, so
 * a CPU compiler vectorises the loop itself. */
__kernel void read_chunked(__global const uint4 *src, ulong n16, ulong per_item,
                           __global uint *partial)
{
    ulong begin = (ulong)get_global_id(0) * per_item;
    ulong end = min(begin + per_item, n16);
    uint4 acc0 = (uint4)(0u), acc1 = (uint4)(0u);
    ulong i = begin;
    for (; i + 1 < end; i += 2) {
        acc0 += src[i];
        acc1 += src[i + 1];
    }
    if (i < end) acc0 += src[i];
    acc0 += acc1;
    partial[get_global_id(0)] = acc0.x + acc0.y + acc0.z + acc0.w;
}

/* out[global size]: 8 independent chains of float4 multiply-adds, iters times per work-item:
 * 64 FLOP per iteration (a multiply-add counts 2). a and b are arguments, so nothing folds. */
__kernel void peak_mad(__global float *out, int iters, float a, float b)
{
    float s = (float)get_global_id(0) * 1e-7f;
    float4 x0 = (float4)(s, s + 0.1f, s + 0.2f, s + 0.3f);
    float4 x1 = x0 + 1.0f, x2 = x0 + 2.0f, x3 = x0 + 3.0f;
    float4 x4 = x0 + 4.0f, x5 = x0 + 5.0f, x6 = x0 + 6.0f, x7 = x0 + 7.0f;
    for (int i = 0; i < iters; i++) {
        x0 = mad(x0, a, b); x1 = mad(x1, a, b); x2 = mad(x2, a, b); x3 = mad(x3, a, b);
        x4 = mad(x4, a, b); x5 = mad(x5, a, b); x6 = mad(x6, a, b); x7 = mad(x7, a, b);
    }
    float4 t = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    out[get_global_id(0)] = t.x + t.y + t.z + t.w;
}

/* The same with float16 chains: 256 FLOP per iteration, for CPU devices run with work-groups
 * of one item (each chain is one 512-bit register where the CPU has them). */
__kernel void peak_mad16(__global float *out, int iters, float a, float b)
{
    float s = (float)get_global_id(0) * 1e-7f;
    float16 x0 = (float16)(s), x1 = x0 + 1.0f, x2 = x0 + 2.0f, x3 = x0 + 3.0f;
    float16 x4 = x0 + 4.0f, x5 = x0 + 5.0f, x6 = x0 + 6.0f, x7 = x0 + 7.0f;
    for (int i = 0; i < iters; i++) {
        x0 = mad(x0, a, b); x1 = mad(x1, a, b); x2 = mad(x2, a, b); x3 = mad(x3, a, b);
        x4 = mad(x4, a, b); x5 = mad(x5, a, b); x6 = mad(x6, a, b); x7 = mad(x7, a, b);
    }
    /* Every lane reaches the output: a lane left out would be dead code, and a compiler drops
     * it (the probe would count FLOP that never ran). */
    float16 t = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    float8 h = t.lo + t.hi;
    float4 q = h.lo + h.hi;
    out[get_global_id(0)] = q.x + q.y + q.z + q.w;
}
