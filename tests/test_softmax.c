/* test_softmax.c: the host's softmax (softmax.h) against long double on awkward rows: one
 * class, odd counts, logits of +-800 (exp of them overflows a double unless the maximum is
 * subtracted first), ties (the first maximum is the argmax), and a row whose probabilities,
 * p_j = exp(z_j - lse), sum to 1.
 *
 * Tolerance: the result is a sum of at most 257 exponentials in double and one log, a few
 * ulp of double each; 1e-12 relative to (1 + |lse|) is a thousand times that and still far
 * below the 1e-7 a float-precision sum or a missed term would miss it by. */
#include <check.h>
#include <math.h>

#include "rng.h"
#include "softmax.h"

#define MAX_CLASSES 257

static long double reference_lse(const float *z, int classes)
{
    long double mx = z[0], sum = 0.0L;
    for (int c = 1; c < classes; c++) if (z[c] > mx) mx = z[c];
    for (int c = 0; c < classes; c++) sum += expl((long double)z[c] - mx);
    return mx + logl(sum);
}

START_TEST(test_lse_and_argmax)
{
    static const int counts[] = {1, 2, 3, 10, 17, MAX_CLASSES};
    static const float scales[] = {1.0f, 8.0f, 800.0f};
    float z[MAX_CLASSES];
    for (int ci = 0; ci < 6; ci++) {
        for (int si = 0; si < 3; si++) {
            const int classes = counts[ci];
            for (int c = 0; c < classes; c++)
                z[c] = scales[si] * (2.0f * rng_uniform(77, (uint64_t)(ci * 3 + si), (uint64_t)c) - 1.0f);
            int want = 0;
            for (int c = 1; c < classes; c++) if (z[c] > z[want]) want = c;
            if (classes > 2) z[classes - 1] = z[want];   /* a tie after the first maximum */
            int arg = -1;
            const double lse = softmax_lse(z, classes, &arg);
            const long double ref = reference_lse(z, classes);
            ck_assert_msg(isfinite(lse) && fabsl((long double)lse - ref) <= 1e-12L * (1.0L + fabsl(ref)),
                          "%d classes, logits up to %g: lse %.17g, reference %.17Lg", classes,
                          (double)scales[si], lse, ref);
            ck_assert_msg(arg == want, "%d classes: argmax %d, the first maximum is %d",
                          classes, arg, want);
            double sum = 0.0;
            for (int c = 0; c < classes; c++) sum += exp((double)z[c] - lse);
            ck_assert_msg(fabs(sum - 1.0) <= 1e-12 * classes,
                          "%d classes: the probabilities sum to %.17g", classes, sum);
        }
    }
}
END_TEST

Suite *softmax_suite(void)
{
    Suite *s = suite_create("softmax");
    TCase *tc = tcase_create("rows");
    tcase_add_test(tc, test_lse_and_argmax);
    suite_add_tcase(s, tc);
    return s;
}
