/* packed.cl: helpers over the packed nonzero pixels of sparse.cl's layouts, entries
 * (key << 8) | value in ascending key order (a pixel in a CSR row, an image in a CSC column),
 * for sparse.cl and fused_step.cl. */
#ifndef CLTRAIN_PACKED_CL
#define CLTRAIN_PACKED_CL

/* First entry of e[lo, hi) whose key is >= key. */
static inline uint first_key_at(__global const uint *e, uint lo, uint hi, const uint key)
{
    while (lo < hi) {
        const uint mid = lo + (hi - lo) / 2;
        if ((e[mid] >> 8) < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* 16 floats from element `at` of an array of `total`, zeros past it. Lanes past a row of dZ
 * read the next row's: they are summed into lanes nobody reads. */
static inline float16 vload16_upto(__global const float *a, const ulong total, const ulong at)
{
    if (at + 16 <= total) return vload16(0, a + at);
    float vals[16];
    for (int l = 0; l < 16; l++) vals[l] = at + l < total ? a[at + l] : 0.0f;
    return vload16(0, vals);
}

#endif
