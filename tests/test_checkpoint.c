/* test_checkpoint.c: model files (round trip, corruption, versions) and the npy export. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "support.h"
#include "util.h"

/* A fresh folder for each test (a checked fixture, in the test's own process). */
static char dir[64];

static void make_dir(void) { work_dir_make(dir, sizeof dir, "ckpt"); }
static void remove_dir(void) { work_dir_remove(dir); }

static void sample_model(model_file *m, int n_state)
{
    memset(m, 0, sizeof *m);
    int hidden[2] = {5, 3};
    ck_assert_int_eq(model_arch_init(&m->arch, 12, hidden, 2, 10, ACT_SIGMOID), 0);
    /* Every stored field away from its default and from the others, so that a field that is
     * dropped, swapped with another or read back at the wrong width shows. */
    m->init = INIT_XAVIER;
    m->optimizer = OPT_ADAMW;
    m->lr = 0.0125f; m->momentum = 0.875f; m->beta1 = 0.8125f; m->beta2 = 0.9375f; m->eps = 3e-7f;
    m->weight_decay = 0.0625f; m->dropout = 0.3125f;
    m->batch = 64; m->seed = 1234567890123ULL; m->epochs_done = 7; m->next_step = 11;
    m->step = 6000; m->n_train = 60000; m->best_val = 0.5f; m->stale_epochs = 3;
    m->params = xmalloc(m->arch.n_params * sizeof(float), "p");
    for (size_t i = 0; i < m->arch.n_params; i++) m->params[i] = (float)i * 0.25f - 3.0f;
    m->n_state = n_state;
    for (int s = 0; s < n_state; s++) {
        m->state[s] = xmalloc(m->arch.n_params * sizeof(float), "s");
        for (size_t i = 0; i < m->arch.n_params; i++) m->state[s][i] = (float)(i + 1) * (s ? 1e-3f : -2.0f);
    }
}

static char *path_in_dir(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

START_TEST(test_save_load_round_trip)
{
    model_file m, r;
    sample_model(&m, 2);
    char err[1024];
    const char *p = path_in_dir("m.model");
    ck_assert_int_eq(model_save(p, &m, err, sizeof err), 0);
    ck_assert_int_eq(model_load(p, &r, err, sizeof err), 0);
    ck_assert_int_eq(r.arch.n_layers, 3);
    ck_assert_int_eq(r.arch.act, ACT_SIGMOID);
    ck_assert_uint_eq(r.arch.n_params, m.arch.n_params);
    for (int l = 0; l <= m.arch.n_layers; l++) ck_assert_int_eq(r.arch.sizes[l], m.arch.sizes[l]);
    for (int l = 0; l < m.arch.n_layers; l++) {
        ck_assert_uint_eq(r.arch.w_off[l], m.arch.w_off[l]);
        ck_assert_uint_eq(r.arch.b_off[l], m.arch.b_off[l]);
    }
    ck_assert_int_eq(r.init, m.init);
    ck_assert_int_eq(r.optimizer, m.optimizer);
    /* Floats are stored bit for bit: exact equality. */
    const float fr[] = {r.lr, r.momentum, r.beta1, r.beta2, r.eps, r.weight_decay, r.dropout, r.best_val};
    const float fm[] = {m.lr, m.momentum, m.beta1, m.beta2, m.eps, m.weight_decay, m.dropout, m.best_val};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        ck_assert_msg(fr[i] == fm[i], "float field %zu: %.9g read back, %.9g saved", i, (double)fr[i], (double)fm[i]);
    const uint64_t ur[] = {r.batch, r.seed, r.epochs_done, r.next_step, r.step, r.n_train, r.stale_epochs};
    const uint64_t um[] = {m.batch, m.seed, m.epochs_done, m.next_step, m.step, m.n_train, m.stale_epochs};
    for (size_t i = 0; i < sizeof ur / sizeof ur[0]; i++)
        ck_assert_msg(ur[i] == um[i], "integer field %zu: %llu read back, %llu saved", i,
                      (unsigned long long)ur[i], (unsigned long long)um[i]);
    ck_assert_int_eq(r.n_state, 2);
    ck_assert(memcmp(r.params, m.params, m.arch.n_params * sizeof(float)) == 0);
    for (int k = 0; k < 2; k++)
        ck_assert_msg(memcmp(r.state[k], m.state[k], m.arch.n_params * sizeof(float)) == 0,
                      "optimizer state %d differs", k);
    model_file_free(&m);
    model_file_free(&r);
}
END_TEST

/* Every truncation and every single-bit flip is refused with a message naming the file. */
START_TEST(test_corrupt_files_are_refused)
{
    model_file m, r;
    sample_model(&m, 1);
    char err[1024];
    const char *p = path_in_dir("good.model");
    ck_assert_int_eq(model_save(p, &m, err, sizeof err), 0);
    size_t len;
    unsigned char *good = read_file(p, &len);
    ck_assert_ptr_nonnull(good);
    const char *bad = path_in_dir("bad.model");
    for (int k = 0; k < 16; k++) {
        size_t cut = len * (size_t)k / 16;
        ck_assert_int_eq(write_file_atomic(bad, good, cut), 0);
        ck_assert_int_eq(model_load(bad, &r, err, sizeof err), -1);
        ck_assert_msg(strstr(err, "bad.model") != NULL, "message does not name the file: %s", err);
    }
    for (size_t byte = 0; byte < len; byte += len / 40 + 1) {
        unsigned char *copy = xmalloc(len, "copy");
        memcpy(copy, good, len);
        copy[byte] ^= 0x10;
        ck_assert_int_eq(write_file_atomic(bad, copy, len), 0);
        ck_assert_msg(model_load(bad, &r, err, sizeof err) == -1, "flip at byte %zu accepted", byte);
        free(copy);
    }
    /* A future version is named as such, not as corruption. */
    unsigned char *copy = xmalloc(len, "copy");
    memcpy(copy, good, len);
    copy[8] = 99;
    ck_assert_int_eq(write_file_atomic(bad, copy, len), 0);
    ck_assert_int_eq(model_load(bad, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "version 99") != NULL, "%s", err);
    ck_assert_int_eq(model_load(path_in_dir("missing.model"), &r, err, sizeof err), -1);
    free(copy);
    free(good);
    model_file_free(&m);
}
END_TEST

/* Parses an .npy header (format 1.0) and checks shape and data. */
static void check_npy(const char *path, const char *shape, const float *expect, size_t n)
{
    size_t len;
    unsigned char *b = read_file(path, &len);
    ck_assert_msg(b != NULL, "%s missing", path);
    ck_assert(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0);
    size_t hl = (size_t)b[8] | (size_t)b[9] << 8;
    ck_assert_int_eq((10 + hl) % 64, 0);
    char *header = strndup((char *)b + 10, hl);
    ck_assert_msg(strstr(header, "'descr': '<f4'") && strstr(header, "'fortran_order': False"), "%s", header);
    ck_assert_msg(strstr(header, shape) != NULL, "%s: want shape %s in %s", path, shape, header);
    ck_assert_uint_eq(len, 10 + hl + n * 4);
    ck_assert(memcmp(b + 10 + hl, expect, n * 4) == 0);   /* little-endian host */
    free(header);
    free(b);
}

START_TEST(test_npy_export_reads_back)
{
    model_file m;
    sample_model(&m, 0);
    char err[1024];
    const char *out = path_in_dir("npy");
    ck_assert_int_eq(export_npy(out, &m.arch, m.params, err, sizeof err), 0);
    char p[160];
    snprintf(p, sizeof p, "%s/W1.npy", out);
    check_npy(p, "'shape': (5, 12)", m.params + m.arch.w_off[0], 60);
    snprintf(p, sizeof p, "%s/b1.npy", out);
    check_npy(p, "'shape': (5,)", m.params + m.arch.b_off[0], 5);
    snprintf(p, sizeof p, "%s/W3.npy", out);
    check_npy(p, "'shape': (10, 3)", m.params + m.arch.w_off[2], 30);
    snprintf(p, sizeof p, "%s/b3.npy", out);
    check_npy(p, "'shape': (10,)", m.params + m.arch.b_off[2], 10);
    model_file_free(&m);
}
END_TEST

Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_corrupt_files_are_refused);
    tcase_add_test(tc, test_npy_export_reads_back);
    suite_add_tcase(s, tc);
    return s;
}
