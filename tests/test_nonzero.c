/* test_nonzero.c: the vector-at-a-time nonzero counting and packing (src/nonzero.c) against a
 * byte-by-byte loop, on lengths that are not multiples of the 8-byte word, unaligned starts,
 * blank and full rows, and every byte value (0x80 and 0x7f sit on the bit trick's edges). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nonzero.h"
#include "test_suites.h"

static uint64_t state = 0x243f6a8885a308d3ULL;

static uint32_t next(void)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(state >> 33);
}

/* Pixels like a digit's: runs of zeros, strokes of any value, some 0x80 and 0x7f. */
static void fill(uint8_t *px, size_t n, int density_pct)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = next();
        px[i] = (int)(r % 100) < density_pct ? (uint8_t)(1 + (r >> 8) % 255) : 0;
        if (px[i] && (r >> 20) % 7 == 0) px[i] = (r >> 24) & 1 ? 0x80 : 0x7f;
    }
}

START_TEST(test_count_and_pack)
{
    static const int ks[] = {1, 7, 8, 9, 15, 16, 17, 63, 784, 785};
    static const int dens[] = {0, 3, 19, 50, 100};
    uint8_t buf[800 + 8];
    uint32_t got[800], want[800];
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
        for (size_t d = 0; d < sizeof dens / sizeof dens[0]; d++)
            for (int off = 0; off < 3; off++) {   /* unaligned starts */
                int k = ks[a];
                uint8_t *px = buf + off;
                fill(px, (size_t)k, dens[d]);
                size_t nw = 0;
                for (int p = 0; p < k; p++)
                    if (px[p]) want[nw++] = (uint32_t)p << 8 | px[p];
                ck_assert_uint_eq(nonzero_count(px, (size_t)k), nw);
                memset(got, 0xff, sizeof got);
                ck_assert_uint_eq(nonzero_pack(px, k, got), nw);
                ck_assert_msg(memcmp(got, want, nw * sizeof *got) == 0, "k %d density %d", k, dens[d]);
                if (nw < 800) ck_assert_uint_eq(got[nw], 0xffffffffu);   /* nothing past the end */
            }
    ck_assert_uint_eq(nonzero_count(buf, 0), 0);
}
END_TEST

START_TEST(test_every_value)
{
    uint8_t px[256];
    for (int i = 0; i < 256; i++) px[i] = (uint8_t)i;
    ck_assert_uint_eq(nonzero_count(px, 256), 255);
    for (int i = 0; i < 256; i++) {   /* one nonzero byte in each place of a word */
        uint8_t one[16] = {0};
        one[i % 16] = (uint8_t)(i ? i : 1);
        ck_assert_uint_eq(nonzero_count(one, 16), 1);
    }
}
END_TEST

/* Long runs: the SSE2 count sums its byte lanes every 255 vectors (4,080 bytes), so lengths
 * around and past that, all nonzero (a lane at its limit) and digit-like, from odd starts. */
START_TEST(test_long_counts)
{
    static const size_t ns[] = {4079, 4080, 4081, 4096, 8161, 100003};
    uint8_t *buf = malloc(100003 + 3);
    ck_assert_ptr_nonnull(buf);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (int d = 0; d < 2; d++) {
            size_t n = ns[a], want = 0;
            uint8_t *px = buf + 1 + a % 3;
            fill(px, n, d ? 100 : 19);
            for (size_t i = 0; i < n; i++) want += px[i] != 0;
            ck_assert_uint_eq(nonzero_count(px, n), want);
        }
    free(buf);
}
END_TEST

Suite *nonzero_suite(void)
{
    Suite *s = suite_create("nonzero");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_count_and_pack);
    tcase_add_test(tc, test_every_value);
    tcase_add_test(tc, test_long_counts);
    suite_add_tcase(s, tc);
    return s;
}
