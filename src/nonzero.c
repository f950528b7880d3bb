/* nonzero.c: see nonzero.h. Eight pixels are read as one 64-bit word: most words of a
 * handwritten digit are blank, and a word is tested at once instead of byte by byte with a
 * branch the CPU mispredicts at every stroke's edge. */
#include "nonzero.h"

#include <string.h>

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

size_t nonzero_count(const uint8_t *px, size_t n)
{
    size_t count = 0, i = 0;
    for (; i + 8 <= n; i += 8) count += (size_t)popcount64(nonzero_bytes(load64(px + i)));
    for (; i < n; i++) count += px[i] != 0;
    return count;
}

size_t nonzero_pack(const uint8_t *px, int k, uint32_t *out)
{
    size_t e = 0;
    int p = 0;
    for (; p + 8 <= k; p += 8) {
        if (load64(px + p) == 0) continue;
        for (int j = p; j < p + 8; j++)
            if (px[j]) out[e++] = (uint32_t)j << 8 | px[j];
    }
    for (; p < k; p++)
        if (px[p]) out[e++] = (uint32_t)p << 8 | px[p];
    return e;
}
