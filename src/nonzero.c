/* nonzero.c: see nonzero.h. Sixteen pixels are compared at once with SSE2 where the compiler
 * has it (every x86-64), else eight as one 64-bit word: most of a handwritten digit is blank,
 * and a block is tested at once instead of byte by byte with a branch the CPU mispredicts at
 * every stroke's edge. */
#include "nonzero.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if !defined(__SSE2__)
static uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* The high bit of each byte of w that is not 0, the other bits clear. */
static uint64_t nonzero_bytes(uint64_t w)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
    return (((w & low7) + low7) | w) & ~low7;
}

static int popcount64(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((v * 0x0101010101010101ULL) >> 56);
}
#endif

#if defined(__SSE2__)
/* Sixteen bytes at a time (SSE2 is part of every x86-64): each byte lane of acc counts the
 * zero bytes it saw, up to 255 vectors, then one sum of absolute differences adds the lanes. */
size_t nonzero_count(const uint8_t *px, size_t n)
{
    const __m128i zero = _mm_setzero_si128();
    size_t zeros = 0, i = 0;
    while (n - i >= 16) {
        size_t vectors = (n - i) / 16, end = i + 16 * (vectors < 255 ? vectors : 255);
        __m128i acc = zero;
        for (; i < end; i += 16)
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(px + i)), zero));
        __m128i sums = _mm_sad_epu8(acc, zero);
        zeros += (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
    size_t count = i - zeros;
    for (; i < n; i++) count += px[i] != 0;
    return count;
}
#else
size_t nonzero_count(const uint8_t *px, size_t n)
{
    size_t count = 0, i = 0;
    for (; i + 8 <= n; i += 8) count += (size_t)popcount64(nonzero_bytes(load64(px + i)));
    for (; i < n; i++) count += px[i] != 0;
    return count;
}
#endif

/* The index of the lowest set bit of v (not 0). */
static int lowest_bit(uint64_t v)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(v);   /* one instruction (tzcnt) */
#else
    int i = 0;
    if (!(v & 0xffffffffULL)) { v >>= 32; i += 32; }
    if (!(v & 0xffffULL)) { v >>= 16; i += 16; }
    if (!(v & 0xffULL)) { v >>= 8; i += 8; }
    if (!(v & 0xfULL)) { v >>= 4; i += 4; }
    if (!(v & 0x3ULL)) { v >>= 2; i += 2; }
    return i + !(v & 1);
#endif
}

size_t nonzero_pack(const uint8_t *px, int k, uint32_t *out)
{
    size_t e = 0;
    int p = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    for (; p + 16 <= k; p += 16) {   /* bit j of live: px[p + j] is not 0 */
        __m128i v = _mm_loadu_si128((const __m128i *)(px + p));
        uint64_t live = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)) & 0xffffu;
        for (; live; live &= live - 1) {
            int j = p + lowest_bit(live);
            out[e++] = (uint32_t)j << 8 | px[j];
        }
    }
#else
    for (; p + 8 <= k; p += 8) {
        uint64_t w = load64(px + p);
        if (w == 0) continue;
        /* Little-endian words put px[p + j] in byte j; elsewhere take the bytes in order. */
        const uint16_t probe = 1;
        unsigned char little;
        memcpy(&little, &probe, 1);
        if (!little) {
            for (int j = p; j < p + 8; j++)
                if (px[j]) out[e++] = (uint32_t)j << 8 | px[j];
            continue;
        }
        for (uint64_t m = nonzero_bytes(w); m; m &= m - 1) {   /* one step per nonzero byte */
            int j = p + lowest_bit(m) / 8;
            out[e++] = (uint32_t)j << 8 | px[j];
        }
    }
#endif
    for (; p < k; p++)
        if (px[p]) out[e++] = (uint32_t)p << 8 | px[p];
    return e;
}

double nonzero_share(const uint8_t *px, size_t n)
{
    return n ? (double)nonzero_count(px, n) / (double)n : 1.0;
}
