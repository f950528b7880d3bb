/* test_rng.c: the counter-based generator (rng.h). Determinism and independence of its three
 * inputs, the ranges and moments of the uniform, bounded and normal draws, permutations that
 * are permutations and uniformly distributed, and kernels/rng.cl agreeing with rng.c to the bit
 * (through the device's dropout, whose mask is rng_uniform >= p).
 *
 * Statistical bounds are five standard errors or a chi-square far in its tail, so a correct
 * generator fails with probability under 1e-6 per check (and the draws are fixed: it passes or
 * fails the same way every time); a broken one (a constant, a lost input, a biased range, an
 * off-by-one in the shuffle) misses them by orders of magnitude. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rng.h"
#include "support.h"
#include "util.h"

START_TEST(test_bits_depend_on_every_input)
{
    const uint64_t a = rng_bits(1, 2, 3);
    ck_assert(a == rng_bits(1, 2, 3));
    ck_assert(a != rng_bits(2, 2, 3) && a != rng_bits(1, 3, 3) && a != rng_bits(1, 2, 4));
    /* Swapped inputs give other values: the three are not mixed symmetrically. */
    ck_assert(rng_bits(1, 2, 3) != rng_bits(3, 2, 1) && rng_bits(1, 2, 3) != rng_bits(2, 1, 3));
    /* Avalanche: one input bit flips about half of the 64 output bits (mean 32, sd 4 per
     * draw, so the mean of 3 x 64 flips has sd 0.29; +-2 is seven of those). */
    double flips = 0;
    int n = 0;
    for (int bit = 0; bit < 64; bit++) {
        uint64_t base = rng_bits(12345, 6, 789);
        flips += __builtin_popcountll(base ^ rng_bits(12345 ^ (1ULL << bit), 6, 789));
        flips += __builtin_popcountll(base ^ rng_bits(12345, 6 ^ (1ULL << bit), 789));
        flips += __builtin_popcountll(base ^ rng_bits(12345, 6, 789 ^ (1ULL << bit)));
        n += 3;
    }
    ck_assert_msg(fabs(flips / n - 32) < 2, "a flipped input bit flips %.2f output bits", flips / n);
}
END_TEST

START_TEST(test_uniform_range_and_moments)
{
    const int n = 200000;
    double sum = 0, sq = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(9, 1, (uint64_t)i);
        ck_assert_msg(u >= 0.0f && u < 1.0f, "uniform %d = %.9g outside [0, 1)", i, (double)u);
        sum += u;
        sq += (double)u * u;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    /* Mean 1/2 (standard error 0.29 / sqrt(n) = 6.5e-4), variance 1/12 (se 4.2e-4). */
    double mean = sum / n, var = sq / n - mean * mean;
    ck_assert_msg(fabs(mean - 0.5) < 5 * 6.5e-4, "mean %.5f", mean);
    ck_assert_msg(fabs(var - 1.0 / 12) < 5 * 4.2e-4, "variance %.5f", var);
    ck_assert(lo < 1e-4 && hi > 1 - 1e-4);   /* both ends are reached */
}
END_TEST

START_TEST(test_below_is_in_range_and_even)
{
    static const uint32_t bounds[] = {1, 2, 3, 10, 1000, 4000000000u};
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
        for (uint64_t i = 0; i < 20000; i++)
            ck_assert(rng_below(3, 4, i, bounds[b]) < bounds[b]);
    /* Chi-square over 10 cells of 100,000 draws: 9 degrees of freedom, P(chi2 > 40) ~ 7e-6. */
    long cells[10] = {0};
    const int n = 100000;
    for (int i = 0; i < n; i++) cells[rng_below(5, 8, (uint64_t)i, 10)]++;
    double chi2 = 0;
    for (int c = 0; c < 10; c++) chi2 += pow(cells[c] - n / 10.0, 2) / (n / 10.0);
    ck_assert_msg(chi2 < 40, "rng_below(10) chi-square %.1f", chi2);
    /* A large bound reaches its top half as often as its bottom half. */
    long top = 0;
    for (int i = 0; i < n; i++) top += rng_below(5, 9, (uint64_t)i, 4000000000u) >= 2000000000u;
    ck_assert_msg(labs(top - n / 2) < 5 * 158, "top half %ld of %d", top, n);
}
END_TEST

START_TEST(test_normal_moments)
{
    const int n = 200000;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    long beyond2 = 0;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(21, 1, (uint64_t)i);
        ck_assert(isfinite(z));
        s1 += z; s2 += z * z; s3 += z * z * z; s4 += z * z * z * z;
        beyond2 += fabs(z) > 2;
    }
    /* Standard errors: mean 1/sqrt(n) = 2.2e-3, E z^2 sqrt(2/n) = 3.2e-3, E z^3 sqrt(15/n) =
     * 8.7e-3, E z^4 sqrt(96/n) = 2.2e-2; P(|z| > 2) = 0.0455, se 4.7e-4. */
    ck_assert_msg(fabs(s1 / n) < 5 * 2.2e-3, "mean %.4f", s1 / n);
    ck_assert_msg(fabs(s2 / n - 1) < 5 * 3.2e-3, "E z^2 = %.4f", s2 / n);
    ck_assert_msg(fabs(s3 / n) < 5 * 8.7e-3, "E z^3 = %.4f", s3 / n);
    ck_assert_msg(fabs(s4 / n - 3) < 5 * 2.2e-2, "E z^4 = %.4f", s4 / n);
    ck_assert_msg(fabs((double)beyond2 / n - 0.0455) < 5 * 4.7e-4, "P(|z| > 2) = %.4f", (double)beyond2 / n);
    /* Counters 2c and 2c + 1 feed one draw: neighbours differ. */
    ck_assert(rng_normal(21, 1, 0) != rng_normal(21, 1, 1));
}
END_TEST

START_TEST(test_permutation_is_a_uniform_permutation)
{
    static const uint32_t sizes[] = {0, 1, 2, 17, 1000, 60000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = sizes[s];
        uint32_t *p = xmalloc((n ? n : 1) * sizeof *p, "perm");
        unsigned char *seen = xcalloc(n ? n : 1, 1, "seen");
        rng_permutation(4, RNG_STREAM_SHUFFLE, p, n);
        size_t fixed = 0;
        for (uint32_t i = 0; i < n; i++) {
            ck_assert_msg(p[i] < n && !seen[p[i]], "n %u: %u at %u is out of range or repeated", n, p[i], i);
            seen[p[i]] = 1;
            fixed += p[i] == i;
        }
        /* Fixed points of a uniform permutation: Poisson(1). */
        if (n >= 1000) ck_assert_msg(fixed < 10, "n %u: %zu fixed points", n, fixed);
        if (n >= 17) {   /* another stream (epoch) gives another order */
            uint32_t *q = xmalloc(n * sizeof *q, "perm");
            rng_permutation(4, RNG_STREAM_SHUFFLE + 16, q, n);
            ck_assert(memcmp(p, q, n * sizeof *p) != 0);
            rng_permutation(5, RNG_STREAM_SHUFFLE, q, n);   /* and another seed */
            ck_assert(memcmp(p, q, n * sizeof *p) != 0);
            free(q);
        }
        free(p);
        free(seen);
    }
    /* All 24 orders of 4 elements equally often over 48,000 streams: chi-square with 23
     * degrees of freedom, P(chi2 > 65) ~ 6e-6. Fisher-Yates with an off-by-one (j < i - 1,
     * Sattolo's cycles only) reaches 6 of them. */
    long count[256] = {0};
    const int draws = 48000;
    for (int d = 0; d < draws; d++) {
        uint32_t p[4];
        rng_permutation(8, (uint64_t)d, p, 4);
        count[p[0] * 64 + p[1] * 16 + p[2] * 4 + p[3]]++;
    }
    double chi2 = 0;
    int orders = 0;
    for (int k = 0; k < 256; k++)
        if (count[k]) { orders++; chi2 += pow(count[k] - draws / 24.0, 2) / (draws / 24.0); }
    ck_assert_int_eq(orders, 24);
    ck_assert_msg(chi2 < 65, "permutations of 4: chi-square %.1f", chi2);
}
END_TEST

/* kernels/rng.cl against rng.c: the device's dropout of ones keeps element i exactly when
 * rng_uniform(seed, stream, i) >= p, for 100,003 elements and a seed and stream with high bits
 * set (64-bit arithmetic on the device). */
START_TEST(test_device_generator_matches_host)
{
    backend *be = test_cl_backend(GEMM_BUILTIN);
    const size_t n = 100003;
    const uint64_t seed = 0xfedcba9876543210ULL, stream = 0x8000000000000003ULL;
    const float p = 0.37f;
    float *ones = xmalloc(n * sizeof *ones, "ones");
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    tensor *x = be->ops->alloc(be, DT_F32, n, "ones");
    be->ops->write(be, x, 0, n, ones);
    be->ops->dropout(be, x, 0, n, p, dropout_scale(p), seed, stream);
    be->ops->read(be, x, 0, n, ones);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bool want = rng_uniform(seed, stream, i) >= p;
        ck_assert_msg((ones[i] != 0.0f) == want, "element %zu: device %s, host %s", i,
                      ones[i] != 0.0f ? "kept" : "dropped", want ? "kept" : "dropped");
        kept += want;
    }
    ck_assert(kept > n / 2 && kept < n);   /* the premise: a real mixture of both */
    be->ops->release(be, x);
    free(ones);
    backend_destroy(be);
}
END_TEST

Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("draws");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bits_depend_on_every_input);
    tcase_add_test(tc, test_uniform_range_and_moments);
    tcase_add_test(tc, test_below_is_in_range_and_even);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_permutation_is_a_uniform_permutation);
    tcase_add_test(tc, test_device_generator_matches_host);
    suite_add_tcase(s, tc);
    return s;
}
