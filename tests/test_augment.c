/* test_augment.c: --augment. The OpenCL kernel (kernels/augment.cl, float32) against the
 * plain-C reference (src/augment.c, float64) for each transform alone and all together, on
 * awkward image sizes (28 x 28, 13 x 7, 5 x 31, 1 x 1) and batch sizes (1, 3, 17), through a
 * shuffled index and from a row offset; identity at zero strength on both back-ends, to the
 * bit; determinism; a resumed run bit-identical to an uninterrupted one, mid-epoch (library)
 * and from a checkpoint without --augment on the command line (the binary); the spec parser
 * and its exit 2; version-1 model files (before --augment) still load.
 *
 * Tolerance, device against reference: every pixel within 1 grey level, and at most 1 % of
 * them off by that 1. Both compute the same source position and bilinear value, float32 on the
 * device and float64 here; the positions agree to about 1e-5 pixel (the elastic field, a sum
 * of 25 + 25 float32 products of values below 1, times alpha = 34: 34 * 50 * 2^-24 ~ 1e-4 at
 * worst), which moves a value by at most 255 * 1e-4 ~ 0.03 grey levels; so only values within
 * 0.03 of a half-integer can round to the other neighbour, and never further than 1. A wrong
 * index, tap, sign or counter gives errors of tens of levels over many pixels. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "augment.h"
#include "backend.h"
#include "checkpoint.h"
#include "rng.h"
#include "support.h"
#include "test_suites.h"
#include "trainer.h"
#include "util.h"

static backend *host_be, *cl_be;

static void setup(void)
{
    host_be = backend_host_create();
    cl_be = test_cl_backend(GEMM_BUILTIN);
}

static void teardown(void)
{
    backend_destroy(cl_be);
    backend_destroy(host_be);
    cl_be = host_be = NULL;
}

/* n images of w x h: a bright blob on a blank background with some noise, as digits are:
 * smooth edges and blank borders, so that resampling moves real structure. */
static uint8_t *blob_images(size_t n, int w, int h, uint64_t seed)
{
    uint8_t *px = xmalloc(n * (size_t)w * (size_t)h, "test images");
    for (size_t i = 0; i < n; i++) {
        double bx = w * (0.3 + 0.4 * rng_uniform(seed, 200, 3 * i));
        double by = h * (0.3 + 0.4 * rng_uniform(seed, 200, 3 * i + 1));
        double r = 0.5 + 0.25 * (w < h ? w : h) * rng_uniform(seed, 200, 3 * i + 2);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double d = sqrt((x - bx) * (x - bx) + (y - by) * (y - by)) - r;
                double v = d < 0 ? 255 : d < 2 ? 255 * (1 - d / 2) : 0;
                if (v > 0) v -= 40 * rng_uniform(seed, 201, (i * (size_t)h + (size_t)y) * (size_t)w + (size_t)x);
                px[(i * (size_t)h + (size_t)y) * (size_t)w + (size_t)x] = (uint8_t)(v < 0 ? 0 : v);
            }
    }
    return px;
}

/* Runs the op on be: images of src (n rows) through idx (or from row `off`), into a buffer
 * poisoned with `poison`; returns the m images. */
static uint8_t *run_op(backend *be, const uint8_t *src, size_t n, const uint32_t *idx, size_t off,
                       int m, int w, int h, const augment_spec *s, uint64_t stream, uint64_t pos0,
                       uint8_t poison)
{
    size_t np = (size_t)w * (size_t)h;
    const backend_ops *op = be->ops;
    tensor *ts = op->alloc(be, DT_U8, n * np, "src");
    op->write(be, ts, 0, n * np, src);
    tensor *ti = NULL;
    if (idx) {
        ti = op->alloc(be, DT_U32, off + (size_t)m, "idx");
        op->write(be, ti, 0, off + (size_t)m, idx);
    }
    uint8_t *out = xmalloc((size_t)m * np, "out");
    memset(out, poison, (size_t)m * np);
    tensor *td = op->alloc(be, DT_U8, (size_t)m * np, "dst");
    op->write(be, td, 0, (size_t)m * np, out);
    op->augment(be, ts, ti, off, m, w, h, s, 42, stream, pos0, td);
    op->read(be, td, 0, (size_t)m * np, out);
    op->release(be, ts);
    op->release(be, ti);
    op->release(be, td);
    return out;
}

static const int sizes[][2] = {{28, 28}, {13, 7}, {5, 31}, {1, 1}};
static const int batches[] = {1, 3, 17};
/* Quick mode (Oclgrind, whose simulation of the elastic field costs seconds per image) runs
 * the batches of 1 and 3 only. */
static int batches_run(void) { return test_quick() ? 2 : 3; }
#define N_SPECS 6
static const char *specs[N_SPECS] = {"shift=2.5", "rotate=30", "scale=0.3", "elastic=34:4",
                                     "elastic=8:1.5", "shift=2,rotate=10,scale=0.1,elastic=34:4"};

/* One spec against the reference on w x h images. */
static void check_spec(int si, int w, int h)
{
    augment_spec s;
    char err[512];
    ck_assert_msg(augment_parse(specs[si], &s, err, sizeof err) == 0, "%s", err);
    size_t np = (size_t)w * (size_t)h, n = 40;
    uint8_t *src = blob_images(n, w, h, 5 + (uint64_t)si);
    uint32_t idx[64];
    for (int i = 0; i < 64; i++) idx[i] = (uint32_t)((i * 7 + 3) % (int)n);
    for (int b = 0; b < batches_run(); b++) {
        int m = batches[b];
        for (int use_idx = 0; use_idx < 2; use_idx++) {
            size_t off = use_idx ? 5 : 11;
            uint64_t pos0 = 1000 + (uint64_t)b;
            uint8_t *dev = run_op(cl_be, src, n, use_idx ? idx : NULL, off, m, w, h, &s, 77, pos0, 0x00);
            uint8_t *dev2 = run_op(cl_be, src, n, use_idx ? idx : NULL, off, m, w, h, &s, 77, pos0, 0xff);
            /* Two poisons, one result: every output byte is written, and the same draw twice
             * gives the same bytes (determinism). */
            ck_assert_msg(memcmp(dev, dev2, (size_t)m * np) == 0, "%s %dx%d m=%d: unwritten or nondeterministic output", specs[si], w, h, m);
            uint8_t *ref = run_op(host_be, src, n, use_idx ? idx : NULL, off, m, w, h, &s, 77, pos0, 0x55);
            size_t off1 = 0, changed = 0;
            for (size_t i = 0; i < (size_t)m * np; i++) {
                int d = abs((int)dev[i] - (int)ref[i]);
                ck_assert_msg(d <= 1, "%s %dx%d m=%d idx=%d pixel %zu: device %d, reference %d",
                              specs[si], w, h, m, use_idx, i, dev[i], ref[i]);
                off1 += d == 1;
                size_t img = i / np, row = use_idx ? idx[off + img] : off + img;
                changed += ref[i] != src[row * np + i % np];
            }
            ck_assert_msg(off1 <= 1 + (size_t)m * np / 100, "%s %dx%d m=%d: %zu of %zu pixels off by 1",
                          specs[si], w, h, m, off1, (size_t)m * np);
            /* The transform does something (a 1 x 1 image stays blank-or-not only). */
            if (np > 1 && m >= 3)
                ck_assert_msg(changed * 20 >= (size_t)m * np / 10, "%s %dx%d: only %zu pixels changed", specs[si], w, h, changed);
            free(dev);
            free(dev2);
            free(ref);
        }
    }
    free(src);
}

/* Loop index: the image size; every spec on it. */
START_TEST(test_device_matches_reference)
{
    for (int si = 0; si < N_SPECS; si++) check_spec(si, sizes[_i][0], sizes[_i][1]);
}
END_TEST

/* All strengths zero is the identity on both back-ends, to the bit. */
START_TEST(test_identity_at_zero)
{
    augment_spec zero;
    char err[512];
    ck_assert_int_eq(augment_parse("shift=0,rotate=0,scale=0,elastic=0:4", &zero, err, sizeof err), 0);
    ck_assert(!augment_active(&zero));
    for (int zi = 0; zi < 4; zi++) {
        int w = sizes[zi][0], h = sizes[zi][1];
        size_t np = (size_t)w * (size_t)h, n = 20;
        uint8_t *src = blob_images(n, w, h, 9);
        uint32_t idx[17];
        for (int i = 0; i < 17; i++) idx[i] = (uint32_t)(16 - i);
        for (int k = 0; k < 2; k++) {
            uint8_t *out = run_op(k ? cl_be : host_be, src, n, idx, 0, 17, w, h, &zero, 3, 0, 0xaa);
            for (int i = 0; i < 17; i++)
                ck_assert_msg(memcmp(out + (size_t)i * np, src + (size_t)idx[i] * np, np) == 0,
                              "%s back-end, %dx%d image %d: not the identity", k ? "OpenCL" : "host", w, h, i);
            free(out);
        }
        free(src);
    }
}
END_TEST

/* The draw is a function of (seed, stream, position): another stream or position gives other
 * images, the same ones give the same, on the device and on the host. */
START_TEST(test_determinism)
{
    augment_spec s;
    char err[512];
    ck_assert_int_eq(augment_parse("shift=2,rotate=10,scale=0.1,elastic=34:4", &s, err, sizeof err), 0);
    size_t np = 28 * 28, n = 8;
    uint8_t *src = blob_images(n, 28, 28, 11);
    for (int k = 0; k < 2; k++) {
        backend *be = k ? cl_be : host_be;
        uint8_t *a = run_op(be, src, n, NULL, 0, 8, 28, 28, &s, 5, 0, 0);
        uint8_t *b = run_op(be, src, n, NULL, 0, 8, 28, 28, &s, 5, 0, 0);
        uint8_t *c = run_op(be, src, n, NULL, 0, 8, 28, 28, &s, 6, 0, 0);
        uint8_t *d = run_op(be, src, n, NULL, 0, 8, 28, 28, &s, 5, 8, 0);
        ck_assert(memcmp(a, b, 8 * np) == 0);
        ck_assert(memcmp(a, c, 8 * np) != 0);
        ck_assert(memcmp(a, d, 8 * np) != 0);
        /* Position p of a batch starting at pos0 = 4 is position 4 + p of one starting at 0. */
        uint8_t *e = run_op(be, src, n, NULL, 4, 4, 28, 28, &s, 5, 4, 0);
        ck_assert(memcmp(a + 4 * np, e, 4 * np) == 0);
        free(a); free(b); free(c); free(d); free(e);
    }
    free(src);
}
END_TEST

static int stop_at(void *ctx, size_t done, size_t total)
{
    (void)total;
    return done >= *(size_t *)ctx;
}

/* An epoch stopped after 3 steps and continued by a fresh trainer from the saved parameters,
 * optimizer state and step count ends bit-identical to the uninterrupted epoch. */
START_TEST(test_mid_epoch_resume_on_device)
{
    dataset train, test;
    synthetic_dataset(&train, 300, 28, 1);
    synthetic_dataset(&test, 50, 28, 2);
    train_config cfg = {.batch = 32, .seed = 9, .optimizer = OPT_ADAM, .lr = 0.003f,
                        .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .total_epochs = 2};
    char err[512];
    ck_assert_int_eq(augment_parse("shift=2,rotate=10,scale=0.1,elastic=34:4", &cfg.augment, err, sizeof err), 0);
    int hidden = 16;
    ck_assert_int_eq(model_arch_init(&cfg.arch, 784, &hidden, 1, 10, ACT_RELU), 0);
    size_t np = cfg.arch.n_params;
    float *p0 = xmalloc(np * sizeof(float), "params");
    model_init_params(&cfg.arch, INIT_HE, 9, p0);
    epoch_metrics m;
    trainer *a = trainer_create(cl_be, &cfg, &train, &test, NULL, p0);
    trainer_epoch(a, 1, &m);
    trainer_epoch(a, 2, &m);
    trainer *b = trainer_create(cl_be, &cfg, &train, &test, NULL, p0);
    trainer_epoch(b, 1, &m);
    size_t stop = 3;
    ck_assert_uint_eq(trainer_epoch_from(b, 2, 0, stop_at, &stop, &m), 3);
    float *pb = xmalloc(np * sizeof(float), "params"), *s0 = xmalloc(np * sizeof(float), "state"),
          *s1 = xmalloc(np * sizeof(float), "state");
    trainer_read_params(b, pb);
    trainer_read_state(b, 0, s0);
    trainer_read_state(b, 1, s1);
    trainer *c = trainer_create(cl_be, &cfg, &train, &test, NULL, pb);
    trainer_write_state(c, 0, s0);
    trainer_write_state(c, 1, s1);
    trainer_set_step_count(c, trainer_step_count(b));
    trainer_epoch_from(c, 2, 3, NULL, NULL, &m);
    float *pa = xmalloc(np * sizeof(float), "params"), *pc = xmalloc(np * sizeof(float), "params");
    trainer_read_params(a, pa);
    trainer_read_params(c, pc);
    ck_assert_msg(memcmp(pa, pc, np * sizeof(float)) == 0, "the resumed epoch's weights differ");
    /* And augmentation changed the training: the same run without it ends elsewhere. */
    train_config plain = cfg;
    memset(&plain.augment, 0, sizeof plain.augment);
    trainer *d = trainer_create(cl_be, &plain, &train, &test, NULL, p0);
    trainer_epoch(d, 1, &m);
    trainer_epoch(d, 2, &m);
    trainer_read_params(d, pc);
    ck_assert(memcmp(pa, pc, np * sizeof(float)) != 0);
    trainer_destroy(a); trainer_destroy(b); trainer_destroy(c); trainer_destroy(d);
    free(p0); free(pa); free(pb); free(pc); free(s0); free(s1);
    dataset_free(&train);
    dataset_free(&test);
}
END_TEST

/* ---- the binary ---------------------------------------------------------------------------- */

#define RUN "--train-limit 300 --test-limit 100 --hidden 16 --batch 50 --optimizer adam --lr 0.003 " \
            "--init he --quiet"
#define AUG "--augment shift=2,rotate=10,scale=0.1,elastic=34:4"

static float *params_in(const char *dir, const char *name, augment_spec *aug)
{
    char p[256], err[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    model_file m;
    ck_assert_msg(model_load(p, &m, err, sizeof err) == 0, "%s", err);
    float *out = m.params;
    m.params = NULL;
    if (aug) *aug = m.augment;
    model_file_free(&m);
    return out;
}

/* Three epochs at once against two, checkpointed, then resumed to three without --augment
 * (the checkpoint carries it): the same weights to the bit. */
START_TEST(test_resume_keeps_augmentation)
{
    char dir[64], args[1024], *out = NULL, *err = NULL;
    work_dir_make(dir, sizeof dir, "augment");
    snprintf(args, sizeof args, "--data %s " RUN " " AUG " --epochs 3 --save full.model", mnist_dir());
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    snprintf(args, sizeof args, "--data %s " RUN " " AUG " --epochs 2 --checkpoint ck.model", mnist_dir());
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    snprintf(args, sizeof args, "--data %s " RUN " --epochs 3 --resume ck.model --save res.model", mnist_dir());
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    snprintf(args, sizeof args, "--data %s " RUN " --epochs 3 --save plain.model", mnist_dir());
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    augment_spec sa, sb, want;
    char e[512];
    ck_assert_int_eq(augment_parse("shift=2,rotate=10,scale=0.1,elastic=34:4", &want, e, sizeof e), 0);
    float *a = params_in(dir, "full.model", &sa), *b = params_in(dir, "res.model", &sb);
    float *c = params_in(dir, "plain.model", NULL);
    ck_assert(augment_equal(&sa, &want) && augment_equal(&sb, &want));
    size_t n = 784 * 16 + 16 + 16 * 10 + 10;
    ck_assert_msg(memcmp(a, b, n * sizeof(float)) == 0, "resumed weights differ from the uninterrupted run");
    ck_assert_msg(memcmp(a, c, n * sizeof(float)) != 0, "--augment changed nothing");
    free(a); free(b); free(c);
    free(out); free(err);
    work_dir_remove(dir);
}
END_TEST

/* The host back-end trains with --augment too (it is the reference). */
START_TEST(test_host_device_trains)
{
    char dir[64], args[1024], *out = NULL, *err = NULL;
    work_dir_make(dir, sizeof dir, "augment");
    snprintf(args, sizeof args, "--device host --data %s --train-limit 200 --test-limit 100 "
             "--hidden 8 --batch 50 --epochs 1 --init he --augment rotate=15,elastic=20:3", mnist_dir());
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    ck_assert_msg(strstr(out, "augment: rotate=15,elastic=20:3") != NULL, "%s", out);
    free(out); free(err);
    work_dir_remove(dir);
}
END_TEST

/* A bad spec exits 2 before anything runs, listing what is accepted. */
START_TEST(test_bad_spec_exits_2)
{
    static const char *bad[] = {"shift", "shift=-1", "shift=65", "rotate=abc", "scale=1",
                                "elastic=34", "elastic=34:0.1", "elastic=34:4:1", "zoom=2",
                                "shift=1,shift=2", "shift=1,", ",shift=1", "shift=nan", ""};
    char dir[64], args[512], *out = NULL, *err = NULL;
    work_dir_make(dir, sizeof dir, "augment");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        augment_spec s;
        char e[512];
        ck_assert_msg(augment_parse(bad[i], &s, e, sizeof e) == -1, "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(e, "accepted: shift=") != NULL, "%s", e);
    }
    snprintf(args, sizeof args, "--data %s --augment 'shift=2,zoom=3' --epochs 1", mnist_dir());
    ck_assert_int_eq(run_cltrain(dir, NULL, args, &out, &err), 2);
    ck_assert_msg(strstr(err, "unknown key 'zoom'") && strstr(err, "elastic=ALPHA:SIGMA"), "%s", err);
    free(out); free(err);
    work_dir_remove(dir);
}
END_TEST

START_TEST(test_spec_round_trip)
{
    static const char *good[][2] = {
        {"none", "none"}, {"shift=2", "shift=2"}, {"elastic=34:4,shift=1.5", "shift=1.5,elastic=34:4"},
        {"rotate=10,scale=0.1", "rotate=10,scale=0.1"}, {"shift=0,rotate=5", "rotate=5"},
        {"shift=2,rotate=10,scale=0.1,elastic=34:4", "shift=2,rotate=10,scale=0.1,elastic=34:4"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        augment_spec s, back;
        char e[512], text[160];
        ck_assert_msg(augment_parse(good[i][0], &s, e, sizeof e) == 0, "%s", e);
        augment_format(&s, text, sizeof text);
        ck_assert_str_eq(text, good[i][1]);
        ck_assert_int_eq(augment_parse(text, &back, e, sizeof e), 0);
        ck_assert(augment_equal(&s, &back));
    }
}
END_TEST

/* A version-1 file (written before --augment: no strengths in its header) still loads, with
 * no augmentation; made here from a version-2 file by removing the 20 bytes. */
START_TEST(test_version1_file_loads)
{
    char dir[64], path[128], err[1024];
    work_dir_make(dir, sizeof dir, "augment");
    model_file m;
    memset(&m, 0, sizeof m);
    int hidden = 3;
    ck_assert_int_eq(model_arch_init(&m.arch, 4, &hidden, 1, 2, ACT_RELU), 0);
    m.params = xmalloc(m.arch.n_params * sizeof(float), "params");
    for (size_t i = 0; i < m.arch.n_params; i++) m.params[i] = (float)i * 0.25f;
    m.augment.shift = 2;
    m.augment.elastic_alpha = 34;
    m.augment.elastic_sigma = 4;
    snprintf(path, sizeof path, "%s/v2.model", dir);
    ck_assert_msg(model_save(path, &m, err, sizeof err) == 0, "%s", err);
    model_file back;
    ck_assert_msg(model_load(path, &back, err, sizeof err) == 0, "%s", err);
    ck_assert(augment_equal(&back.augment, &m.augment));
    model_file_free(&back);

    size_t len;
    unsigned char *v2 = read_file(path, &len);
    ck_assert_ptr_nonnull(v2);
    uint32_t hb = (uint32_t)v2[12] | (uint32_t)v2[13] << 8;
    /* Version 2's header ends with what version 1 lacks: the class-name count (no names), the
     * 5 augmentation floats and the process count. */
    const size_t extra = 4 + 20 + 4;
    size_t aug_at = 16 + hb - extra;  /* magic 8, version 4, header bytes 4, then the header */
    unsigned char *v1 = xmalloc(len, "v1 file");
    memcpy(v1, v2, aug_at);
    memcpy(v1 + aug_at, v2 + aug_at + extra, len - 4 - aug_at - extra);
    size_t len1 = len - extra;
    v1[8] = 1;
    v1[12] = (unsigned char)(hb - extra);
    v1[13] = (unsigned char)((hb - extra) >> 8);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), v1, (uInt)(len1 - 4));
    for (int k = 0; k < 4; k++) v1[len1 - 4 + (size_t)k] = (unsigned char)(crc >> (8 * k));
    snprintf(path, sizeof path, "%s/v1.model", dir);
    ck_assert_int_eq(write_file_atomic(path, v1, len1), 0);
    ck_assert_msg(model_load(path, &back, err, sizeof err) == 0, "%s", err);
    ck_assert(!augment_active(&back.augment));
    ck_assert(memcmp(back.params, m.params, m.arch.n_params * sizeof(float)) == 0);
    model_file_free(&back);
    model_file_free(&m);
    free(v1);
    free(v2);
    work_dir_remove(dir);
}
END_TEST

Suite *augment_suite(void)
{
    Suite *s = suite_create("augment");
    TCase *tc = tcase_create("kernel");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_device_matches_reference, 0, 4);
    tcase_add_test(tc, test_identity_at_zero);
    tcase_add_test(tc, test_determinism);
    suite_add_tcase(s, tc);
    /* Under Oclgrind (quick mode) the kernel's cases alone: the trainings below would take
     * minutes there and exercise no other path of the kernel. */
    if (test_quick()) return s;
    tcase_add_test(tc, test_mid_epoch_resume_on_device);
    TCase *tb = tcase_create("binary");
    tcase_set_timeout(tb, 300);
    tcase_add_test(tb, test_resume_keeps_augmentation);
    tcase_add_test(tb, test_host_device_trains);
    tcase_add_test(tb, test_bad_spec_exits_2);
    tcase_add_test(tb, test_spec_round_trip);
    tcase_add_test(tb, test_version1_file_loads);
    suite_add_tcase(s, tb);
    return s;
}
