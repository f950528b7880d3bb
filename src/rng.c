/* rng.c: counter-based random numbers (see rng.h); kernels/rng.cl is the device twin. */
#include "rng.h"

#include <math.h>

/* splitmix64's finaliser: a bijective mix with good avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t counter)
{
    uint64_t key = mix64(seed + 0x9e3779b97f4a7c15ULL * (stream + 1));
    return mix64(key ^ (counter * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL));
}

float rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter)
{
    return (float)(rng_bits(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

uint32_t rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t bound)
{
    /* Lemire's multiply-shift on 32 high bits: bias below 2^-32 * bound, far under anything
     * a shuffle could show. */
    uint64_t r = rng_bits(seed, stream, counter) >> 32;
    return (uint32_t)((r * bound) >> 32);
}

float rng_normal(uint64_t seed, uint64_t stream, uint64_t counter)
{
    double u1 = ((double)(rng_bits(seed, stream, 2 * counter) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(rng_bits(seed, stream, 2 * counter + 1) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rng_permutation(uint64_t seed, uint64_t stream, uint32_t *perm, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_below(seed, stream, i, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
