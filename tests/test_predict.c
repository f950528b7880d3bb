/* test_predict.c: predict and eval. In-process: MNIST digits survive the image preparation
 * (plain, inverted, enlarged). Through the real binary, with a model trained in the test
 * (`--train-limit 5000 --hidden 64 --batch 50 --epochs 2`): the digits of real MNIST test
 * images written as PNG, PGM and JPEG, dark-on-light and 100 x 100; damaged files; the grid;
 * eval's tables. Everything goes into one mkdtemp folder per test case, removed after it. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stb_image_resize.h>
#include <stb_image_write.h>

#include "checkpoint.h"
#include "image_io.h"
#include "support.h"
#include "test_suites.h"
#include "trainer.h"
#include "util.h"

#define SIDE 28
#define PX (SIDE * SIDE)

/* Made and removed in the parent (an unchecked fixture); files written by one test (the
 * model) stay for the next. */
static char dir[64];
static char *out_text, *err_text;

static void make_dir(void) { work_dir_make(dir, sizeof dir, "predict"); }

static void remove_dir(void)
{
    work_dir_remove(dir);
}

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* Runs `cltrain ARGS` in dir with stdout and stderr captured; returns the exit status. */
static int run(const char *args)
{
    return run_cltrain(dir, NULL, args, &out_text, &err_text);
}

/* The model, trained once per test case by the first test that needs it. */
static void ensure_model(void)
{
    char p[128];
    path_in(p, sizeof p, "m.model");
    if (access(p, R_OK) == 0) return;
    char args[1024];
    snprintf(args, sizeof args, "--data %s --train-limit 5000 --hidden 64 --batch 50 --epochs 2 --init he "
             "--save m.model --quiet", mnist_dir());
    ck_assert_msg(run(args) == 0, "training the test model failed: %s", err_text);
}

static void write_bytes(const char *name, const void *data, size_t len)
{
    char p[128];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_png(const char *name, const uint8_t *px, int w, int h)
{
    char p[128];
    path_in(p, sizeof p, name);
    ck_assert(stbi_write_png(p, w, h, 1, px, w));
}

/* Mean absolute difference per pixel of two 28 x 28 images. */
static double mean_abs_diff(const uint8_t *a, const uint8_t *b)
{
    double s = 0.0;
    for (int i = 0; i < PX; i++) s += fabs((double)a[i] - (double)b[i]);
    return s / PX;
}

/* An MNIST image is already what the preparation makes, so it comes back nearly unchanged:
 * as it is, inverted (dark on light), and enlarged to 100 x 100. A blank image has no digit. */
START_TEST(test_preparation_keeps_mnist_digits)
{
    dataset_pair mn;
    mnist_load(&mn);
    double worst = 0.0, worst_big = 0.0;
    uint8_t out[PX], inv[PX], big[100 * 100];
    for (int i = 0; i < 50; i++) {
        const uint8_t *img = mn.test.pixels + (size_t)i * PX;
        ck_assert_int_eq(image_to_mnist(img, SIDE, SIDE, out), 0);
        double d = mean_abs_diff(out, img);
        if (d > worst) worst = d;
        uint8_t neg[PX];
        for (int k = 0; k < PX; k++) neg[k] = (uint8_t)(255 - img[k]);
        ck_assert_int_eq(image_to_mnist(neg, SIDE, SIDE, inv), 0);
        ck_assert_msg(memcmp(inv, out, PX) == 0, "image %d: the inverted copy prepares differently", i);
        ck_assert(stbir_resize_uint8(img, SIDE, SIDE, 0, big, 100, 100, 0, 1));
        ck_assert_int_eq(image_to_mnist(big, 100, 100, out), 0);
        d = mean_abs_diff(out, img);
        if (d > worst_big) worst_big = d;
    }
    /* Measured: 0.4 and 17.5 grey levels at worst. The enlarged copy's centre of mass moves by
     * a fraction of a pixel, which can round to a one-pixel shift (10 to 20 levels). */
    ck_assert_msg(worst < 2.0, "28x28: mean |difference| up to %.2f grey levels", worst);
    ck_assert_msg(worst_big < 25.0, "100x100: mean |difference| up to %.2f grey levels", worst_big);
    uint8_t blank[PX];
    memset(blank, 200, sizeof blank);
    ck_assert_int_eq(image_to_mnist(blank, SIDE, SIDE, out), -1);
    dataset_pair_free(&mn);
}
END_TEST

/* The ten image files of test_predict_images, from MNIST test images 0..9. */
static const char *const image_names[10] = {
    "d0.png", "d1.png", "d2.png", "d3.png", "d4.png", "d5.png", "d6.pgm", "d7.jpg", "d8-inverted.png", "d9-100px.png",
};

static void write_test_images(const dataset *te)
{
    for (int i = 0; i < 10; i++) {
        const uint8_t *img = te->pixels + (size_t)i * PX;
        char p[128];
        path_in(p, sizeof p, image_names[i]);
        if (i <= 5) {
            write_png(image_names[i], img, SIDE, SIDE);
        } else if (i == 6) {
            char pgm[PX + 32];
            int head = snprintf(pgm, sizeof pgm, "P5\n%d %d\n255\n", SIDE, SIDE);
            memcpy(pgm + head, img, PX);
            write_bytes(image_names[i], pgm, (size_t)head + PX);
        } else if (i == 7) {
            ck_assert(stbi_write_jpg(p, SIDE, SIDE, 1, img, 90));
        } else if (i == 8) {
            uint8_t neg[PX];
            for (int k = 0; k < PX; k++) neg[k] = (uint8_t)(255 - img[k]);
            write_png(image_names[i], neg, SIDE, SIDE);
        } else {
            uint8_t big[100 * 100];
            ck_assert(stbir_resize_uint8(img, SIDE, SIDE, 0, big, 100, 100, 0, 1));
            write_png(image_names[i], big, 100, 100);
        }
    }
}

START_TEST(test_predict_images)
{
    ensure_model();
    dataset_pair mn;
    mnist_load(&mn);
    write_test_images(&mn.test);
    char args[2048] = "predict --load m.model";
    for (int i = 0; i < 10; i++) {
        strcat(args, " ");
        strcat(args, image_names[i]);
    }
    ck_assert_msg(run(args) == 0, "%s", err_text);
    int right = 0;
    char *save = NULL, *line = strtok_r(out_text, "\n", &save);
    for (int i = 0; i < 10; i++, line = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(line != NULL, "only %d lines for 10 images", i);
        size_t nl = strlen(image_names[i]);
        ck_assert_msg(strncmp(line, image_names[i], nl) == 0 && line[nl] == ':', "line %d: %s", i, line);
        char *end;
        long digit = strtol(line + nl + 1, &end, 10);
        ck_assert_msg(end != line + nl + 1 && digit >= 0 && digit <= 9, "line %d: %s", i, line);
        char *p = strstr(end, "p=[");
        ck_assert_msg(p != NULL, "line %d has no probabilities: %s", i, line);
        p += 3;
        double sum = 0.0, best = -1.0;
        int arg = -1;
        for (int k = 0; k < 10; k++) {
            double v = strtod(p, &end);
            ck_assert_msg(end != p && v >= 0.0 && v <= 1.0, "line %d, probability %d: %s", i, k, line);
            sum += v;
            if (v > best) { best = v; arg = k; }
            p = end;
        }
        ck_assert_msg(*p == ']', "line %d: %s", i, line);
        ck_assert_msg(fabs(sum - 1.0) < 1e-3, "line %d: the probabilities sum to %.6f", i, sum);
        ck_assert_msg(arg == digit, "line %d: the digit %ld is not the most probable (%d)", i, digit, arg);
        right += digit == mn.test.labels[i];
    }
    ck_assert_msg(right >= 8, "only %d of 10 images predicted right:\n%s", right, out_text);
    ck_assert_str_eq(err_text, "");
    dataset_pair_free(&mn);
}
END_TEST

/* A damaged image stops the run before anything is printed: exit 2, a line naming it. */
START_TEST(test_predict_bad_images)
{
    ensure_model();
    dataset_pair mn;
    mnist_load(&mn);
    write_png("good.png", mn.test.pixels, SIDE, SIDE);
    char p[128];
    path_in(p, sizeof p, "good.png");
    size_t len;
    unsigned char *png = read_file(p, &len);
    ck_assert_ptr_nonnull(png);
    write_bytes("truncated.png", png, len / 2);
    free(png);
    path_in(p, sizeof p, "whole.jpg");
    ck_assert(stbi_write_jpg(p, SIDE, SIDE, 1, mn.test.pixels, 90));
    unsigned char *jpg = read_file(p, &len);
    ck_assert_ptr_nonnull(jpg);
    write_bytes("truncated.jpg", jpg, len * 3 / 4);
    free(jpg);
    const char text[] = "this is a text file, not an image\n";
    write_bytes("corrupt.png", text, sizeof text - 1);
    write_bytes("empty.jpg", "", 0);
    uint8_t white[PX];
    memset(white, 255, sizeof white);
    write_png("blank.png", white, SIDE, SIDE);
    dataset_pair_free(&mn);

    static const char *const bad[] = {"corrupt.png", "truncated.png", "truncated.jpg", "empty.jpg", "missing.png", "blank.png"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "predict --load m.model good.png %s", bad[i]);
        ck_assert_int_eq(run(args), 2);
        ck_assert_msg(strstr(err_text, bad[i]) != NULL, "%s: the message does not name it: %s", bad[i], err_text);
        ck_assert_msg(strchr(err_text, '\n') == err_text + strlen(err_text) - 1, "%s: not one line: %s", bad[i], err_text);
        ck_assert_msg(out_text[0] == 0, "%s: printed before failing: %s", bad[i], out_text);
    }
}
END_TEST

/* Usage faults and a model that does not take 28 x 28 images: exit 2. */
START_TEST(test_predict_usage)
{
    ensure_model();
    ck_assert_int_eq(run("predict d.png"), 2);
    ck_assert(strstr(err_text, "--load") != NULL);
    ck_assert_int_eq(run("predict --load m.model"), 2);
    ck_assert_int_eq(run("predict --load nothing.model x.png"), 2);
    ck_assert(strstr(err_text, "nothing.model") != NULL);

    model_file mf;
    memset(&mf, 0, sizeof mf);
    int hidden[1] = {8};
    ck_assert_int_eq(model_arch_init(&mf.arch, 100, hidden, 1, 10, ACT_RELU), 0);
    mf.params = xcalloc(mf.arch.n_params, sizeof(float), "parameters");
    mf.best_val = -1.0f;
    char p[128], err[1024];
    path_in(p, sizeof p, "small.model");
    ck_assert_msg(model_save(p, &mf, err, sizeof err) == 0, "%s", err);
    free(mf.params);
    uint8_t img[PX] = {0};
    memset(img + 10 * SIDE, 255, 5 * SIDE);
    write_png("bar.png", img, SIDE, SIDE);
    ck_assert_int_eq(run("predict --load small.model bar.png"), 2);
    ck_assert_msg(strstr(err_text, "100 inputs") != NULL, "%s", err_text);
    char args[1024];
    snprintf(args, sizeof args, "eval --load small.model --data %s", mnist_dir());
    ck_assert_int_eq(run(args), 2);
    ck_assert_msg(strstr(err_text, "100 inputs") != NULL, "%s", err_text);
}
END_TEST

static void check_png_size(const char *name, int w, int h)
{
    char p[128];
    path_in(p, sizeof p, name);
    assert_png(p, w, h);
}

START_TEST(test_predict_grid)
{
    ensure_model();
    char args[1024];
    snprintf(args, sizeof args, "predict --load m.model --grid grid.png --data %s", mnist_dir());
    ck_assert_msg(run(args) == 0, "%s", err_text);
    int w, h;
    image_grid_size(100, &w, &h);
    check_png_size("grid.png", w, h);
    ck_assert_msg(strstr(out_text, "100 test images") != NULL, "%s", out_text);
    /* The grid of given files: their prepared images, predictions only. */
    dataset_pair mn;
    mnist_load(&mn);
    write_png("a.png", mn.test.pixels, SIDE, SIDE);
    write_png("b.png", mn.test.pixels + PX, SIDE, SIDE);
    dataset_pair_free(&mn);
    ck_assert_msg(run("predict --load m.model --grid files.png a.png b.png") == 0, "%s", err_text);
    image_grid_size(2, &w, &h);
    check_png_size("files.png", w, h);
}
END_TEST

/* The in-process grid: right and wrong cells differ where the border goes. */
START_TEST(test_grid_drawing)
{
    uint8_t px[2 * PX] = {0}, pred[2] = {3, 5}, truth[2] = {3, 4};
    int w, h;
    uint8_t *rgb = image_prediction_grid(px, SIDE, 2, pred, truth, NULL, &w, &h);
    int ew, eh;
    image_grid_size(2, &ew, &eh);
    ck_assert_int_eq(w, ew);
    ck_assert_int_eq(h, eh);
    ck_assert_int_eq(w, GRID_COLS * GRID_CELL_W);
    ck_assert_int_eq(h, GRID_CELL_H);
    int pad = (GRID_CELL_W - SIDE * GRID_SCALE) / 2;
    const uint8_t *right = rgb + ((size_t)(pad - 1) * (size_t)w + (size_t)pad) * 3;
    const uint8_t *wrong = rgb + ((size_t)(pad - 1) * (size_t)w + (size_t)(GRID_CELL_W + pad)) * 3;
    ck_assert_msg(wrong[0] > 200 && wrong[1] < 80, "the wrong cell has no red border");
    ck_assert_msg(right[0] < 100, "the right cell has a border");
    free(rgb);
}
END_TEST

/* Parses eval's output: the accuracy line, the matrix, the per-class table. */
START_TEST(test_eval_tables)
{
    ensure_model();
    char args[1024];
    snprintf(args, sizeof args, "eval --load m.model --data %s --test-limit 3000", mnist_dir());
    ck_assert_msg(run(args) == 0, "%s", err_text);
    const char *acc = strstr(out_text, "test accuracy: ");
    ck_assert_ptr_nonnull(acc);
    double a;
    long right, total;
    ck_assert_int_eq(sscanf(acc, "test accuracy: %lf (%ld of %ld)", &a, &right, &total), 3);
    ck_assert_int_eq(total, 3000);
    ck_assert(fabs(a - (double)right / (double)total) < 1e-4);
    ck_assert_msg(a > 0.8, "accuracy %.4f of the test model", a);

    const char *m = strstr(out_text, "true\\pred");
    ck_assert_ptr_nonnull(m);
    m = strchr(m, '\n') + 1;
    long sum = 0, diag = 0;
    for (int r = 0; r < 10; r++) {
        char *end;
        long label = strtol(m, &end, 10);
        ck_assert_int_eq(label, r);
        long row = 0;
        for (int k = 0; k < 10; k++) {
            const char *s = end;
            long v = strtol(s, &end, 10);
            ck_assert(end != s && v >= 0);
            row += v;
            if (k == r) diag += v;
        }
        long t = strtol(end, &end, 10);
        ck_assert_int_eq(t, row);
        ck_assert(*end == '\n');
        sum += row;
        m = end + 1;
    }
    ck_assert_int_eq(sum, 3000);
    ck_assert_int_eq(diag, right);
    ck_assert_msg(strncmp(m + strspn(m, " "), "total", 5) == 0, "no totals row: %s", m);
    const char *pc = strstr(m, "precision");
    ck_assert_ptr_nonnull(pc);
    pc = strchr(pc, '\n') + 1;
    long support = 0;
    for (int c = 0; c < 10; c++) {
        int label;
        double prec, rec;
        long sup;
        ck_assert_int_eq(sscanf(pc, "%d %lf %lf %ld", &label, &prec, &rec, &sup), 4);
        ck_assert_int_eq(label, c);
        ck_assert(prec >= 0 && prec <= 1 && rec >= 0 && rec <= 1);
        support += sup;
        pc = strchr(pc, '\n') + 1;
    }
    ck_assert_int_eq(support, 3000);
}
END_TEST

/* Predicted class of image px under the model, in float64 (first maximum wins). */
static int ref_class(const model_file *m, const uint8_t *px, double *logits_out)
{
    const model_arch *a = &m->arch;
    double x[2][1024];
    for (int k = 0; k < a->sizes[0]; k++) x[0][k] = px[k] / 255.0;
    int cur = 0;
    for (int l = 0; l < a->n_layers; l++) {
        for (int j = 0; j < a->sizes[l + 1]; j++) {
            double z = m->params[a->b_off[l] + (size_t)j];
            for (int k = 0; k < a->sizes[l]; k++)
                z += (double)m->params[a->w_off[l] + (size_t)j * (size_t)a->sizes[l] + (size_t)k] * x[cur][k];
            if (l < a->n_layers - 1) z = a->act == ACT_RELU ? (z > 0 ? z : 0) : 1 / (1 + exp(-z));
            x[1 - cur][j] = z;
        }
        cur = 1 - cur;
    }
    int best = 0, classes = a->sizes[a->n_layers];
    for (int c = 0; c < classes; c++) {
        if (x[cur][c] > x[cur][best]) best = c;
        if (logits_out) logits_out[c] = x[cur][c];
    }
    return best;
}

/* The 10,000 MNIST test images are more than two of the trainer's 4,096-row chunks (the last
 * one partial): the logits of every image, on both back-ends, and the test accuracy of
 * trainer_evaluate, against float64. Logits: float32 sums over 784 + 64 terms, 1e-4 of the
 * largest logit (~50 ulp); a chunk written to the wrong rows errs by O(1). */
START_TEST(test_logits_past_one_chunk)
{
    ensure_model();
    char p[128], err[1024];
    path_in(p, sizeof p, "m.model");
    model_file m;
    ck_assert_msg(model_load(p, &m, err, sizeof err) == 0, "%s", err);
    dataset_pair mn;
    mnist_load(&mn);
    const dataset *te = &mn.test;
    ck_assert_uint_gt(te->n, 2 * 4096);
    size_t n = te->n;
    float *want = xmalloc(n * 10 * sizeof(float), "logits");
    double lg[10];
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        right += ref_class(&m, te->pixels + i * PX, lg) == te->labels[i];
        for (int c = 0; c < 10; c++) want[i * 10 + (size_t)c] = (float)lg[c];
    }
    for (int bi = 0; bi < 2; bi++) {
        backend *be = bi ? test_cl_backend(GEMM_BUILTIN) : backend_host_create();
        train_config cfg = {.arch = m.arch, .seed = 1, .optimizer = OPT_SGD, .total_epochs = 1};
        trainer *t = trainer_create(be, &cfg, NULL, te, NULL, m.params);
        float *got = xmalloc(n * 10 * sizeof(float), "logits");
        for (size_t i = 0; i < n * 10; i++) got[i] = NAN;
        trainer_logits(t, te->pixels, n, got);
        double e = rel_err(got, want, n * 10);
        ck_assert_msg(e < 1e-4, "%s: logits of 10,000 images differ from float64 by %g", be->ops->name, e);
        epoch_metrics em;
        trainer_evaluate(t, &em);
        /* Rounding can flip the argmax of an image whose two best logits nearly tie: 3 of
         * 10,000 allowed, a lost or doubled chunk changes hundreds. */
        ck_assert_msg(fabs(em.test_acc * (double)n - (double)right) <= 3.0,
                      "%s: test accuracy %.4f, float64 %.4f", be->ops->name, em.test_acc, (double)right / (double)n);
        free(got);
        trainer_destroy(t);
        backend_destroy(be);
    }
    /* eval and its default device on the same 10,000 images. */
    char args[1024];
    snprintf(args, sizeof args, "eval --load m.model --data %s", mnist_dir());
    ck_assert_msg(run(args) == 0, "%s", err_text);
    long got_right = -1, total = -1;
    const char *acc = strstr(out_text, "test accuracy: ");
    ck_assert_ptr_nonnull(acc);
    double a;
    ck_assert_int_eq(sscanf(acc, "test accuracy: %lf (%ld of %ld)", &a, &got_right, &total), 3);
    ck_assert_int_eq(total, (long)n);
    ck_assert_msg(labs(got_right - (long)right) <= 3, "eval: %ld right, float64 %zu", got_right, right);
    free(want);
    dataset_pair_free(&mn);
    model_file_free(&m);
}
END_TEST

Suite *predict_suite(void)
{
    Suite *s = suite_create("predict");
    TCase *tc = tcase_create("images");
    tcase_add_test(tc, test_preparation_keeps_mnist_digits);
    tcase_add_test(tc, test_grid_drawing);
    suite_add_tcase(s, tc);

    tc = tcase_create("binary");
    tcase_add_unchecked_fixture(tc, make_dir, remove_dir);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_predict_images);
    tcase_add_test(tc, test_predict_bad_images);
    tcase_add_test(tc, test_predict_usage);
    tcase_add_test(tc, test_predict_grid);
    tcase_add_test(tc, test_eval_tables);
    tcase_add_test(tc, test_logits_past_one_chunk);
    suite_add_tcase(s, tc);
    return s;
}
