/* test_classes.c: any number of classes, batch prediction, class names, colliding outputs.
 * The data is written here: separable synthetic sets (each class a random prototype image,
 * each sample that prototype plus noise) with 2, 26 and 47 classes as IDX folders, and a
 * Kaggle-shaped train.csv / test.csv pair of 28 x 28 images. In-process: the host and the
 * OpenCL back-end train the same steps to the same parameters with each class count; the
 * model file keeps class names and still loads a version 1 file. Through the real binary:
 * train, eval and predict agree on a 26-class set; the Kaggle loop writes a right submission;
 * names flow from a file or the data folder into the model, eval, predict and the grid;
 * colliding output paths and mismatched widths exit 2. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "image_io.h"
#include "rng.h"
#include "support.h"
#include "test_suites.h"
#include "trainer.h"
#include "util.h"

static char dir[64];
static char *out_text, *err_text;

static void make_dir(void) { work_dir_make(dir, sizeof dir, "classes"); }
static void remove_dir(void) { work_dir_remove(dir); }

static const char *in_dir(const char *name)
{
    static char p[2][256];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static int run(const char *fmt, ...) CLT_PRINTF(1, 2);
static int run(const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run_cltrain(dir, NULL, args, &out_text, &err_text);
}

static void put_file(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(in_dir(name), "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static char *slurp(const char *name)
{
    size_t len;
    char *t = (char *)read_file(in_dir(name), &len);
    ck_assert_msg(t != NULL, "cannot read %s", name);
    return t;
}

/* n samples of a `classes`-class set of side x side images: label i % classes (so every class
 * is there), pixels its class's prototype (about half blank, like MNIST) plus noise of +-24.
 * Prototypes depend on the seed only; `stream` draws the noise. */
static void separable_set(dataset *d, size_t n, int side, int classes, uint64_t seed, uint64_t stream)
{
    size_t px = (size_t)side * (size_t)side;
    d->n = n;
    d->rows = d->cols = side;
    d->classes = classes;
    d->pixels = xmalloc(n * px, "pixels");
    d->labels = xmalloc(n, "labels");
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)classes);
        d->labels[i] = (uint8_t)c;
        for (size_t k = 0; k < px; k++) {
            uint32_t proto = rng_below(seed, 100, (uint64_t)c * px + k, 512);
            int v = proto < 256 ? 0 : (int)proto - 256;
            v += (int)rng_below(seed, stream, i * px + k, 49) - 24;
            d->pixels[i * px + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* d as PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte in folder sub. */
static void write_idx(const char *sub, const char *prefix, const dataset *d)
{
    size_t px = (size_t)d->rows * (size_t)d->cols;
    unsigned char *b = xmalloc(16 + d->n * px, "IDX");
    put_be32(b, 0x803);
    put_be32(b + 4, (uint32_t)d->n);
    put_be32(b + 8, (uint32_t)d->rows);
    put_be32(b + 12, (uint32_t)d->cols);
    memcpy(b + 16, d->pixels, d->n * px);
    char name[256];
    snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte", sub, prefix);
    put_file(name, b, 16 + d->n * px);
    put_be32(b, 0x801);
    memcpy(b + 8, d->labels, d->n);
    snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte", sub, prefix);
    put_file(name, b, 8 + d->n);
    free(b);
}

/* A folder `sub` of the four IDX files: n_train and n_test samples of `classes` classes. */
static void write_folder(const char *sub, int classes, size_t n_train, size_t n_test, int side)
{
    mkdir(in_dir(sub), 0755);
    dataset tr, te;
    separable_set(&tr, n_train, side, classes, (uint64_t)classes, 1);
    separable_set(&te, n_test, side, classes, (uint64_t)classes, 2);
    write_idx(sub, "train", &tr);
    write_idx(sub, "t10k", &te);
    dataset_free(&tr);
    dataset_free(&te);
}

/* "test accuracy: A (R of N)" from eval's or train's output. */
static double parse_accuracy(const char *text, const char *key, long *right, long *total)
{
    const char *p = strstr(text, key);
    ck_assert_msg(p != NULL, "no '%s' in: %s", key, text);
    double a;
    ck_assert_int_eq(sscanf(p + strlen(key), " %lf (%ld of %ld)", &a, right, total), 3);
    return a;
}

/* ---- in process: both back-ends, the model file -------------------------------------- */

/* One full-batch SGD epoch and one mini-batch Adam epoch on the host and on OpenCL from the
 * same parameters give the same parameters and metrics with 2, 26 and 47 classes. */
START_TEST(test_backends_agree_on_class_counts)
{
    static const int counts[] = {2, 26, 47};
    for (int ci = 0; ci < 3; ci++) {
        int classes = counts[ci], hidden = 19;
        dataset tr, te;
        separable_set(&tr, 333, 7, classes, 5, 1);
        separable_set(&te, 101, 7, classes, 5, 2);
        for (int mode = 0; mode < 2; mode++) {
            train_config cfg = {.batch = mode ? 50 : 0, .seed = 3, .optimizer = mode ? OPT_ADAM : OPT_SGD,
                                .lr = mode ? 0.01f : 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                .total_epochs = 2};
            ck_assert_int_eq(model_arch_init(&cfg.arch, 49, &hidden, 1, classes, ACT_RELU), 0);
            size_t np = cfg.arch.n_params;
            float *p0 = xmalloc(np * sizeof(float), "params");
            model_init_params(&cfg.arch, INIT_HE, 9, p0);
            float *res[2];
            epoch_metrics m[2];
            for (int b = 0; b < 2; b++) {
                backend *be = b ? test_cl_backend(GEMM_BUILTIN) : backend_host_create();
                trainer *t = trainer_create(be, &cfg, &tr, &te, NULL, p0);
                trainer_epoch(t, 1, &m[b]);
                trainer_epoch(t, 2, &m[b]);
                res[b] = xmalloc(np * sizeof(float), "params");
                for (size_t i = 0; i < np; i++) res[b][i] = NAN;   /* poisoned before the read */
                trainer_read_params(t, res[b]);
                trainer_destroy(t);
                backend_destroy(be);
            }
            /* float32 sums in another order (work-group reductions against a sequential
             * loop) differ by a few ulps per product; two epochs of updates keep that near
             * 1e-6 of the largest parameter. 1e-4 leaves room, yet a wrong class stride or a
             * softmax over the wrong width moves parameters by far more. */
            double e = rel_err(res[1], res[0], np);
            ck_assert_msg(e < 1e-4, "%d classes, %s: parameters differ by %.3g", classes,
                          mode ? "adam" : "sgd", e);
            ck_assert_msg(fabs(m[1].loss - m[0].loss) <= 1e-4 * fabs(m[0].loss) + 1e-6,
                          "%d classes: loss %.6f on OpenCL, %.6f on the host", classes, m[1].loss, m[0].loss);
            ck_assert(fabs(m[1].test_acc - m[0].test_acc) <= 1.0 / 101 + 1e-9);   /* a tie at most */
            free(res[0]);
            free(res[1]);
            free(p0);
        }
        dataset_free(&tr);
        dataset_free(&te);
    }
}
END_TEST

/* Version 2 keeps the class names; a version 1 file (the fuzz corpus' valid-4-3-2-sgd, written
 * before names existed) still loads, without names. */
START_TEST(test_model_file_names_and_version_1)
{
    model_file m;
    memset(&m, 0, sizeof m);
    int hidden = 3;
    ck_assert_int_eq(model_arch_init(&m.arch, 4, &hidden, 1, 3, ACT_RELU), 0);
    m.params = xcalloc(m.arch.n_params, sizeof(float), "params");
    char *names[3] = {"cat", "T-shirt/top", "Ankle boot"};
    m.class_names = names;
    char err[1024];
    ck_assert_msg(model_save(in_dir("n.model"), &m, err, sizeof err) == 0, "%s", err);
    m.class_names = NULL;
    model_file_free(&m);
    ck_assert_msg(model_load(in_dir("n.model"), &m, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(m.class_names);
    for (int c = 0; c < 3; c++) ck_assert_str_eq(m.class_names[c], names[c]);
    model_file_free(&m);

    char path[4096];
    snprintf(path, sizeof path, "tests/fuzz/corpus_model/valid-4-3-2-sgd");
    if (access(path, R_OK) != 0) {   /* run from elsewhere: beside the binary's build folder */
        snprintf(path, sizeof path, "%s", cltrain_bin());
        *strrchr(path, '/') = 0;
        *strrchr(path, '/') = 0;
        strcat(path, "/tests/fuzz/corpus_model/valid-4-3-2-sgd");
    }
    size_t len;
    unsigned char *v1 = read_file(path, &len);
    ck_assert_msg(v1 != NULL, "cannot read %s", path);
    ck_assert_uint_eq(v1[1 + 8], 1);   /* after the harness's flag byte: version 1 */
    put_file("v1.model", v1 + 1, len - 1);
    free(v1);
    ck_assert_msg(model_load(in_dir("v1.model"), &m, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(m.arch.sizes[0], 4);
    ck_assert_int_eq(m.arch.sizes[m.arch.n_layers], 2);
    ck_assert_ptr_null(m.class_names);
    model_file_free(&m);
    /* Through the binary: the old model predicts a 2x2 CSV. */
    static const char four[] = "pixel0,pixel1,pixel2,pixel3\n0,255,3,4\n9,9,9,9\n";
    put_file("four.csv", four, strlen(four));
    ck_assert_msg(run("predict --load v1.model --data four.csv --out v1.csv --device host") == 0, "%s", err_text);
    char *csv = slurp("v1.csv");
    ck_assert_msg(strncmp(csv, "ImageId,Label\n1,", 16) == 0 && strstr(csv, "\n2,"), "%s", csv);
    free(csv);
}
END_TEST

/* The grid labels a cell with the class's full number or its name, cut to the cell. */
START_TEST(test_grid_labels)
{
    enum { SIDE = 28, PX = SIDE * SIDE };
    static uint8_t px[2 * PX];
    int w, h;
    uint8_t *g[4];   /* every grid is w x h: two cells */
    const uint8_t p2[2] = {2, 0}, p25[2] = {25, 0}, p46[2] = {46, 0};
    char *names[47];
    char buf[47][80];
    for (int c = 0; c < 47; c++) {
        snprintf(buf[c], sizeof buf[c], c == 46 ? "AVERYLONGCLASSNAMETHATDOESNOTFIT%d" : "N%d", c);
        names[c] = buf[c];
    }
    g[0] = image_prediction_grid(px, SIDE, 2, p2, NULL, NULL, &w, &h);
    g[1] = image_prediction_grid(px, SIDE, 2, p25, NULL, NULL, &w, &h);
    g[2] = image_prediction_grid(px, SIDE, 2, p25, NULL, (const char *const *)names, &w, &h);
    g[3] = image_prediction_grid(px, SIDE, 2, p46, NULL, (const char *const *)names, &w, &h);
    size_t bytes = (size_t)w * (size_t)h * 3;
    ck_assert_msg(memcmp(g[0], g[1], bytes) != 0, "class 25 is drawn as class 2");
    ck_assert_msg(memcmp(g[1], g[2], bytes) != 0, "the name is not drawn");
    /* The long name stays in its cell: cell 1 (class 0, "N0") is the same in g[2] and g[3]. */
    for (int y = 0; y < h; y++)
        ck_assert_msg(memcmp(g[2] + ((size_t)y * (size_t)w + GRID_CELL_W) * 3,
                             g[3] + ((size_t)y * (size_t)w + GRID_CELL_W) * 3, GRID_CELL_W * 3) == 0,
                      "row %d of the second cell changed", y);
    for (int i = 0; i < 4; i++) free(g[i]);
}
END_TEST

/* ---- through the binary ------------------------------------------------------------------ */

#define FAST "--hidden 48 --batch 32 --optimizer adam --lr 0.01 --init he --quiet"

/* A 26-class set trains on both back-ends, eval reports 26 classes with a 26 x 26 confusion
 * matrix, and predict --data writes a submission whose accuracy is eval's. */
START_TEST(test_26_classes_train_eval_predict)
{
    /* 7 x 7 images and 19 hidden units: the shapes of the in-process test above, so OpenCL
     * reuses its compiled kernels. */
    write_folder("c26", 26, 1300, 260, 7);
    for (int b = 0; b < 2; b++) {
        const char *dev = b ? "0" : "host";
        ck_assert_msg(run("--data c26 " FAST " --hidden 19 --epochs 5 --device %s --save m26.model", dev) == 0,
                      "%s: %s", dev, err_text);
        long right, total;
        double a = parse_accuracy(out_text, "test accuracy:", &right, &total);
        ck_assert_int_eq(total, 260);
        ck_assert_msg(a > 0.9, "26 classes on %s: test accuracy %.4f", dev, a);
    }
    model_file m;
    char err[1024];
    ck_assert_msg(model_load(in_dir("m26.model"), &m, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(m.arch.sizes[m.arch.n_layers], 26);
    model_file_free(&m);

    ck_assert_msg(run("eval --load m26.model --data c26") == 0, "%s", err_text);
    ck_assert_msg(strstr(out_text, "classes: 26\n") != NULL, "%s", out_text);
    long right, total;
    double acc = parse_accuracy(out_text, "test accuracy:", &right, &total);
    const char *cm = strstr(out_text, "true\\pred");
    ck_assert_ptr_nonnull(cm);
    ck_assert_msg(strstr(cm, "     25   total\n") != NULL, "%.400s", cm);
    int rows = 0;
    for (const char *l = strchr(cm, '\n') + 1; strncmp(l + strspn(l, " "), "total", 5) != 0;
         l = strchr(l, '\n') + 1)
        rows++;
    ck_assert_int_eq(rows, 26);

    ck_assert_msg(run("predict --load m26.model --data c26 --out p.csv") == 0, "%s", err_text);
    long pr, pt;
    double pacc = parse_accuracy(out_text, "accuracy:", &pr, &pt);
    ck_assert_int_eq(pr, right);
    ck_assert_int_eq(pt, total);
    ck_assert(fabs(pacc - acc) < 1e-9);
    /* The file against the labels written above: the same count right. */
    dataset te;
    separable_set(&te, 260, 7, 26, 26, 2);
    char *csv = slurp("p.csv");
    ck_assert(strncmp(csv, "ImageId,Label\n", 14) == 0);
    const char *l = csv + 14;
    long n = 0, ok = 0;
    for (; *l; l = strchr(l, '\n') + 1) {
        long id, label;
        ck_assert_int_eq(sscanf(l, "%ld,%ld", &id, &label), 2);
        ck_assert_int_eq(id, n + 1);
        ok += label == te.labels[n];
        n++;
    }
    ck_assert_int_eq(n, 260);
    ck_assert_int_eq(ok, right);
    free(csv);
    dataset_free(&te);

    /* Without --out: one line an image, the last one's id is the count. */
    ck_assert_msg(run("predict --load m26.model --data c26/t10k-images-idx3-ubyte --device host") == 0, "%s", err_text);
    ck_assert_msg(strstr(out_text, "\n260: ") != NULL && !strstr(out_text, "accuracy"), "%s", out_text);

    /* --test-limit N: the first N images only, and the accuracy over them; more than there
     * are is a usage error naming the count. */
    ck_assert_msg(run("predict --load m26.model --data c26 --test-limit 37 --device host") == 0, "%s", err_text);
    ck_assert_msg(strstr(out_text, "\n37: ") != NULL && !strstr(out_text, "\n38: "), "%s", out_text);
    parse_accuracy(out_text, "accuracy:", &pr, &pt);
    ck_assert_int_eq(pt, 37);
    ck_assert_int_eq(run("predict --load m26.model --data c26 --test-limit 261 --device host"), 2);
    ck_assert_msg(strstr(err_text, "--test-limit 261 is more than the 260 images") != NULL, "%s", err_text);
}
END_TEST

/* 2 and 47 classes through the binary (the host: the in-process test has shown OpenCL gives
 * the same); --classes above the labels makes a wider output layer, below them it exits 2
 * naming the file, the index and the value. */
START_TEST(test_2_and_47_classes)
{
    write_folder("c2", 2, 400, 100, 6);
    write_folder("c47", 47, 2350, 470, 8);
    ck_assert_msg(run("--data c2 " FAST " --epochs 3 --device host") == 0, "%s", err_text);
    long r, t;
    ck_assert_msg(parse_accuracy(out_text, "test accuracy:", &r, &t) > 0.95, "%s", out_text);
    ck_assert_msg(run("--data c47 " FAST " --epochs 5 --device host --save m47.model") == 0, "%s", err_text);
    double a = parse_accuracy(out_text, "test accuracy:", &r, &t);
    ck_assert_msg(a > 0.9, "47 classes: %.4f", a);
    ck_assert_msg(run("eval --load m47.model --data c47 --device host") == 0, "%s", err_text);
    ck_assert_msg(strstr(out_text, "classes: 47\n") != NULL, "%s", out_text);
    ck_assert_msg(run("--data c2 " FAST " --epochs 1 --classes 5 --device host --save m5.model") == 0, "%s", err_text);
    model_file m;
    char err[1024];
    ck_assert_msg(model_load(in_dir("m5.model"), &m, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(m.arch.sizes[m.arch.n_layers], 5);
    model_file_free(&m);
    /* Label 46 first appears at index 46 of the training labels. */
    ck_assert_int_eq(run("--data c47 " FAST " --epochs 1 --classes 40 --device host"), 2);
    ck_assert_msg(strstr(err_text, "c47/train-labels-idx1-ubyte: label 40 at index 40 is outside 0..39 (40 classes)"),
                  "%s", err_text);
    /* A model's class count is the data's: --classes that disagrees, labels beyond it. */
    ck_assert_int_eq(run("eval --load m5.model --data c2 --classes 2 --device host"), 2);
    ck_assert_msg(strstr(err_text, "m5.model has 5 classes"), "%s", err_text);
    ck_assert_int_eq(run("eval --load m5.model --data c47 --device host"), 2);
    ck_assert_msg(strstr(err_text, "outside 0..4") && strstr(err_text, "m5.model"), "%s", err_text);
}
END_TEST

/* Kaggle's loop: train.csv with labels, test.csv without (header pixel0..pixel783); the
 * submission has the header, one row per image, ImageIds from 1; against the known labels its
 * accuracy is eval's on the same images (the held-out rows of train.csv). */
START_TEST(test_kaggle_submission)
{
    dataset all;
    separable_set(&all, 1200, 28, 10, 77, 3);
    const size_t held = 200, px = 784;
    FILE *tr = fopen(in_dir("train.csv"), "w"), *te = fopen(in_dir("test.csv"), "w"),
         *narrow = fopen(in_dir("narrow.csv"), "w");
    ck_assert(tr && te && narrow);
    fputs("label", tr);
    for (size_t k = 0; k < px; k++) {
        fprintf(tr, ",pixel%zu", k);
        fprintf(te, k ? ",pixel%zu" : "pixel%zu", k);
        if (k < px - 1) fprintf(narrow, k ? ",pixel%zu" : "pixel%zu", k);
    }
    fputs("\n", tr); fputs("\r\n", te); fputs("\n", narrow);
    for (size_t i = 0; i < all.n; i++) {
        const uint8_t *p = all.pixels + i * px;
        fprintf(tr, "%u", all.labels[i]);
        for (size_t k = 0; k < px; k++) fprintf(tr, ",%u", p[k]);
        fputs("\n", tr);
        if (i >= all.n - held) {
            for (size_t k = 0; k < px; k++) fprintf(te, k ? ",%u" : "%u", p[k]);
            fputs("\r\n", te);
            if (i < all.n - held + 3) {
                for (size_t k = 0; k < px - 1; k++) fprintf(narrow, k ? ",%u" : "%u", p[k]);
                fputs("\n", narrow);
            }
        }
    }
    ck_assert(fclose(tr) == 0 && fclose(te) == 0 && fclose(narrow) == 0);

    /* The host throughout: OpenCL's chunked prediction is checked on the 26-class set. */
    ck_assert_msg(run("--data train.csv --test-split %zu " FAST " --epochs 3 --save k.model --device host", held) == 0, "%s", err_text);
    ck_assert_msg(run("eval --load k.model --data train.csv --test-split %zu --device host", held) == 0, "%s", err_text);
    long right, total;
    parse_accuracy(out_text, "test accuracy:", &right, &total);
    ck_assert_int_eq(total, (long)held);
    ck_assert_msg(right > 150, "the Kaggle-shaped model gets %ld of %zu", right, held);

    ck_assert_msg(run("predict --load k.model --data test.csv --out submission.csv --device host") == 0, "%s", err_text);
    ck_assert_msg(!strstr(out_text, "accuracy"), "test.csv has no labels: %s", out_text);
    char *csv = slurp("submission.csv");
    ck_assert_msg(strncmp(csv, "ImageId,Label\n", 14) == 0, "%.40s", csv);
    long n = 0, ok = 0;
    for (const char *l = csv + 14; *l; l = strchr(l, '\n') + 1) {
        long id, label;
        int used = 0;
        ck_assert_int_eq(sscanf(l, "%ld,%ld%n", &id, &label, &used), 2);
        ck_assert(l[used] == '\n');
        ck_assert_int_eq(id, n + 1);
        ok += label == all.labels[all.n - held + (size_t)n];
        n++;
    }
    ck_assert_int_eq(n, (long)held);
    ck_assert_int_eq(ok, right);
    free(csv);

    /* --probs: one column per class, 4 or more decimals, each row sums to 1, its largest
     * is the label. */
    ck_assert_msg(run("predict --load k.model --data test.csv --out probs.csv --probs --device host") == 0, "%s", err_text);
    csv = slurp("probs.csv");
    static const char probs_header[] = "ImageId,Label,p_0,p_1,p_2,p_3,p_4,p_5,p_6,p_7,p_8,p_9\n";
    ck_assert_msg(strncmp(csv, probs_header, strlen(probs_header)) == 0, "%.80s", csv);
    const char *l = strchr(csv, '\n') + 1;
    for (int r = 0; r < 5; r++, l = strchr(l, '\n') + 1) {
        long id, label;
        int used;
        ck_assert_int_eq(sscanf(l, "%ld,%ld%n", &id, &label, &used), 2);
        const char *q = l + used;
        double sum = 0, best = -1;
        int arg = -1;
        for (int c = 0; c < 10; c++) {
            ck_assert(*q == ',');
            char *end;
            double v = strtod(q + 1, &end);
            const char *dot = strchr(q + 1, '.');
            ck_assert(dot && end - dot - 1 >= 4);
            sum += v;
            if (v > best) { best = v; arg = c; }
            q = end;
        }
        ck_assert(*q == '\n');
        ck_assert_msg(fabs(sum - 1.0) < 1e-4, "row %d sums to %.6f", r, sum);   /* 10 x 5e-7 rounding */
        ck_assert_int_eq(arg, label);
    }
    free(csv);

    /* A labelled CSV: the accuracy is printed, and equals eval's on those rows. */
    ck_assert_msg(run("predict --load k.model --data train.csv --device host --out all.csv") == 0, "%s", err_text);
    long r2, t2;
    parse_accuracy(out_text, "accuracy:", &r2, &t2);
    ck_assert_int_eq(t2, 1200);

    ck_assert_int_eq(run("predict --load k.model --data narrow.csv --out x.csv --device host"), 2);
    ck_assert_msg(strstr(err_text, "narrow.csv") && strstr(err_text, "783") && strstr(err_text, "784"), "%s", err_text);
    ck_assert_int_ne(access(in_dir("x.csv"), F_OK), 0);
    ck_assert_int_eq(run("predict --load k.model --out x.csv"), 2);
    ck_assert_msg(strstr(err_text, "--out needs --data"), "%s", err_text);
    dataset_free(&all);
}
END_TEST

/* --class-names into the model, then eval, predict and the grid use them; a data folder's
 * class-names.txt is picked up; a wrong count or a bad name exits 2. */
START_TEST(test_class_names)
{
    write_folder("c3", 3, 300, 60, 28);
    put_file("names.txt", "Alpha\r\nBeta gamma\nT-shirt/top\n\n", 31);
    ck_assert_msg(run("--data c3 " FAST " --epochs 2 --class-names names.txt --save n.model --device host") == 0, "%s", err_text);
    ck_assert_msg(run("eval --load n.model --data c3 --device host") == 0, "%s", err_text);
    ck_assert_msg(strstr(out_text, "classes: 3 (0 Alpha, 1 Beta gamma, 2 T-shirt/top)"), "%s", out_text);
    ck_assert_msg(strstr(out_text, "  T-shirt/top\n"), "%s", out_text);
    ck_assert_msg(run("predict --load n.model --data c3 --out p.csv --probs --grid g.png --device host") == 0, "%s", err_text);
    char *csv = slurp("p.csv");
    static const char names_header[] = "ImageId,Label,Name,p_Alpha,p_Beta gamma,p_T-shirt/top\n";
    ck_assert_msg(strncmp(csv, names_header, strlen(names_header)) == 0, "%.80s", csv);
    ck_assert_msg(strstr(csv, "\n1,0,Alpha,") && strstr(csv, "\n3,2,T-shirt/top,"), "%.300s", csv);
    free(csv);
    struct stat st;
    ck_assert_int_eq(stat(in_dir("g.png"), &st), 0);

    /* Beside the data: picked up by training, kept by the model. */
    put_file("c3/class-names.txt", "x\ny\nz\n", 6);
    ck_assert_msg(run("--data c3 " FAST " --epochs 2 --save d.model --device host") == 0, "%s", err_text);
    ck_assert_msg(run("predict --load d.model --data c3/t10k-images-idx3-ubyte --device host") == 0, "%s", err_text);
    ck_assert_msg(strstr(out_text, "\n3: 2 z  p=[") != NULL, "%s", out_text);

    put_file("two.txt", "a\nb\n", 4);
    ck_assert_int_eq(run("--data c3 " FAST " --epochs 1 --class-names two.txt --device host"), 2);
    ck_assert_msg(strstr(err_text, "two.txt has 2 class names, the data has 3 classes"), "%s", err_text);
    put_file("comma.txt", "a\nb,c\nd\n", 8);
    ck_assert_int_eq(run("eval --load n.model --data c3 --class-names comma.txt --device host"), 2);
    ck_assert_msg(strstr(err_text, "comma.txt:2") && strstr(err_text, "comma"), "%s", err_text);
}
END_TEST

/* Two outputs naming one file exit 2 before anything is read or written (the data named
 * here does not exist: the collision is found first). */
START_TEST(test_colliding_paths)
{
    static const char *const cases[][2] = {
        {"--save out.bin --log out.bin", "--save out.bin and --log out.bin"},
        {"--save m.model --checkpoint ./m.model", "--save m.model and --checkpoint ./m.model"},
        {"--checkpoint c.bin --log sub/../c.bin", "name the same file"},
        {"--export-npy d --plot ./d/", "--export-npy d and --plot ./d/"},
        {"--log run.csv --plot charts --save run.csv", "--save run.csv and --log run.csv"},
        {"--plot charts --save charts/log.csv", "--save charts/log.csv and --plot's log charts/log.csv"},
    };
    mkdir(in_dir("sub"), 0755);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(run("--data absent %s --epochs 1", cases[i][0]), 2);
        ck_assert_msg(strstr(err_text, cases[i][1]) && !strstr(err_text, "absent"), "%s: %s", cases[i][0], err_text);
    }
    ck_assert_int_ne(access(in_dir("out.bin"), F_OK), 0);
    ck_assert_int_ne(access(in_dir("m.model"), F_OK), 0);
    /* A link to the same file collides too. */
    put_file("real.csv", "x", 1);
    ck_assert_int_eq(symlink("real.csv", in_dir("link.csv")), 0);
    ck_assert_int_eq(run("--data absent --log real.csv --save link.csv"), 2);
    ck_assert_msg(strstr(err_text, "name the same file"), "%s", err_text);
    ck_assert_int_eq(run("predict --load absent.model --data absent.csv --out g.png --grid ./g.png"), 2);
    ck_assert_msg(strstr(err_text, "--out g.png and --grid ./g.png"), "%s", err_text);
    /* Different files, and --resume from the checkpoint being written, are fine. */
    ck_assert_int_eq(run("--data absent --log a.csv --save a.model --checkpoint a.ckpt --resume a.ckpt"), 2);
    ck_assert_msg(strstr(err_text, "a.ckpt") && !strstr(err_text, "same file"), "%s", err_text);
}
END_TEST

Suite *classes_suite(void)
{
    Suite *s = suite_create("classes");
    TCase *tc = tcase_create("classes");
    tcase_add_unchecked_fixture(tc, make_dir, remove_dir);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_backends_agree_on_class_counts);
    tcase_add_test(tc, test_model_file_names_and_version_1);
    tcase_add_test(tc, test_grid_labels);
    tcase_add_test(tc, test_26_classes_train_eval_predict);
    tcase_add_test(tc, test_2_and_47_classes);
    tcase_add_test(tc, test_kaggle_submission);
    tcase_add_test(tc, test_class_names);
    tcase_add_test(tc, test_colliding_paths);
    suite_add_tcase(s, tc);
    return s;
}
