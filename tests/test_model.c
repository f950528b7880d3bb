/* test_model.c: the parameter layout and the initialisations (model.h). Offsets tile the one
 * buffer without gaps or overlap; sizes that overflow or depths past the limit are refused;
 * U(-0.5, 0.5), He and Xavier draws have the documented range or spread (five standard errors,
 * see test_rng.c), zero biases where documented, and depend on (seed, index) only. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "util.h"

START_TEST(test_layout_tiles_the_buffer)
{
    int hidden[3] = {5, 17, 3};
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 11, hidden, 3, 7, ACT_SIGMOID), 0);
    ck_assert_int_eq(a.n_layers, 4);
    ck_assert(a.sizes[0] == 11 && a.sizes[1] == 5 && a.sizes[2] == 17 && a.sizes[3] == 3 && a.sizes[4] == 7);
    ck_assert_int_eq(a.act, ACT_SIGMOID);
    size_t off = 0;
    for (int l = 0; l < a.n_layers; l++) {   /* W_l (out x in) then b_l, one after another */
        ck_assert_uint_eq(a.w_off[l], off);
        off += (size_t)a.sizes[l + 1] * (size_t)a.sizes[l];
        ck_assert_uint_eq(a.b_off[l], off);
        off += (size_t)a.sizes[l + 1];
    }
    ck_assert_uint_eq(a.n_params, off);
    ck_assert_uint_eq(a.n_params, 11 * 5 + 5 + 5 * 17 + 17 + 17 * 3 + 3 + 3 * 7 + 7);
    /* No hidden layer: softmax regression. */
    ck_assert_int_eq(model_arch_init(&a, 4, NULL, 0, 3, ACT_RELU), 0);
    ck_assert(a.n_layers == 1 && a.n_params == 15 && a.b_off[0] == 12);
    char buf[64];
    ck_assert_int_eq(model_arch_init(&a, 784, hidden, 2, 10, ACT_RELU), 0);
    model_describe(&a, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "784-5-17-10") && strstr(buf, "relu"), "%s", buf);
}
END_TEST

START_TEST(test_bad_architectures_are_refused)
{
    model_arch a;
    int hidden[MODEL_MAX_LAYERS + 1];
    for (int i = 0; i <= MODEL_MAX_LAYERS; i++) hidden[i] = 4;
    ck_assert_int_eq(model_arch_init(&a, 8, hidden, MODEL_MAX_LAYERS - 1, 10, ACT_RELU), 0);
    ck_assert_int_eq(model_arch_init(&a, 8, hidden, MODEL_MAX_LAYERS, 10, ACT_RELU), -1);
    int zero[1] = {0}, huge[3] = {INT32_MAX, INT32_MAX, INT32_MAX};
    ck_assert_int_eq(model_arch_init(&a, 8, zero, 1, 10, ACT_RELU), -1);
    ck_assert_int_eq(model_arch_init(&a, 0, hidden, 1, 10, ACT_RELU), -1);
    ck_assert_int_eq(model_arch_init(&a, 8, hidden, 1, 0, ACT_RELU), -1);
    ck_assert_int_eq(model_arch_init(&a, 8, hidden, -1, 10, ACT_RELU), -1);
    if (sizeof(size_t) == 4) ck_assert_int_eq(model_arch_init(&a, INT32_MAX, huge, 1, 10, ACT_RELU), -1);
    (void)huge;
}
END_TEST

/* Mean and standard deviation of n floats. */
static void moments(const float *v, size_t n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (size_t i = 0; i < n; i++) { s += v[i]; q += (double)v[i] * v[i]; }
    *mean = s / (double)n;
    *sd = sqrt(q / (double)n - *mean * *mean);
}

START_TEST(test_initialisations_have_their_spread)
{
    int hidden[1] = {300};
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 784, hidden, 1, 10, ACT_RELU), 0);
    float *p = xmalloc(a.n_params * sizeof(float), "p");
    for (int kind = 0; kind < 3; kind++) {
        model_init_params(&a, (init_kind)kind, 3, p);
        for (int l = 0; l < a.n_layers; l++) {
            size_t fan_in = (size_t)a.sizes[l], fan_out = (size_t)a.sizes[l + 1], nw = fan_in * fan_out;
            const float *w = p + a.w_off[l], *b = p + a.b_off[l];
            double mean, sd, want;
            moments(w, nw, &mean, &sd);
            if (kind == INIT_UNIFORM) {
                want = 1.0 / sqrt(12.0);
                for (size_t i = 0; i < nw; i++) ck_assert(w[i] >= -0.5f && w[i] < 0.5f);
                for (size_t i = 0; i < fan_out; i++) ck_assert(b[i] >= -0.5f && b[i] < 0.5f);
                double bm, bsd;
                moments(b, fan_out, &bm, &bsd);
                ck_assert_msg(bsd > 0.1, "uniform biases are not drawn (sd %.3f)", bsd);
            } else {
                want = kind == INIT_HE ? sqrt(2.0 / (double)fan_in) : sqrt(2.0 / (double)(fan_in + fan_out));
                for (size_t i = 0; i < fan_out; i++) ck_assert_msg(b[i] == 0.0f, "%s bias %zu = %g", init_name((init_kind)kind), i, (double)b[i]);
            }
            /* Standard errors: mean sd / sqrt(nw), sd about sd / sqrt(2 nw) (normal; smaller
             * for the uniform). nw >= 3,000 here. */
            double se = want / sqrt((double)nw);
            ck_assert_msg(fabs(mean) < 5 * se, "%s layer %d: mean %.5f", init_name((init_kind)kind), l, mean);
            ck_assert_msg(fabs(sd - want) < 5 * se / sqrt(2.0), "%s layer %d: sd %.5f, want %.5f",
                          init_name((init_kind)kind), l, sd, want);
        }
    }
    free(p);
}
END_TEST

START_TEST(test_values_depend_on_seed_and_index_only)
{
    int h1[2] = {6, 4}, h2[2] = {6, 9};
    model_arch a, b;
    ck_assert_int_eq(model_arch_init(&a, 20, h1, 2, 10, ACT_RELU), 0);
    ck_assert_int_eq(model_arch_init(&b, 20, h2, 2, 10, ACT_RELU), 0);
    for (int kind = 0; kind < 3; kind++) {
        float *pa = xmalloc(a.n_params * sizeof(float), "p"), *pb = xmalloc(b.n_params * sizeof(float), "p");
        float *pc = xmalloc(a.n_params * sizeof(float), "p");
        model_init_params(&a, (init_kind)kind, 11, pa);
        model_init_params(&b, (init_kind)kind, 11, pb);
        /* The first layer is the same whatever follows it. */
        ck_assert(memcmp(pa, pb, (a.b_off[0] + 6) * sizeof(float)) == 0);
        model_init_params(&a, (init_kind)kind, 11, pc);
        ck_assert(memcmp(pa, pc, a.n_params * sizeof(float)) == 0);
        model_init_params(&a, (init_kind)kind, 12, pc);
        ck_assert(memcmp(pa, pc, a.w_off[1] * sizeof(float)) != 0);
        free(pa); free(pb); free(pc);
    }
}
END_TEST

Suite *model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_layout_tiles_the_buffer);
    tcase_add_test(tc, test_bad_architectures_are_refused);
    tcase_add_test(tc, test_initialisations_have_their_spread);
    tcase_add_test(tc, test_values_depend_on_seed_and_index_only);
    suite_add_tcase(s, tc);
    return s;
}
