/* predict_cmd.c: `cltrain predict --load MODEL [--grid OUT.png] [IMAGE...]`: the class of each
 * image file (PNG, JPEG or PGM of any size, prepared as MNIST's were), or with --grid alone a
 * picture of the first 100 test images with their predicted and true labels; and
 * `cltrain predict --load MODEL --data FILE.csv|DIR [--out FILE.csv] [--probs]`: every image of
 * a data set, as Kaggle's ImageId,Label submission file or one line each. Also the model
 * loading and probabilities that eval shares (predict.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "image_io.h"
#include "output_paths.h"
#include "predict.h"
#include "session.h"
#include "softmax.h"
#include "trainer.h"
#include "util.h"

/* Test images drawn by --grid without image files. */
#define GRID_IMAGES 100
/* Images on the device at once: the trainer evaluates 4096 rows at a time (EVAL_ROWS), so a
 * first chunk of that size sizes its buffers and the rest stream through them. */
#define PREDICT_CHUNK 4096

void predict_load_model(const options *o, model_file *m)
{
    if (!o->load) die(EXIT_USAGE, "this command needs --load MODEL (a file written by --save); see 'cltrain --help'");
    char err[1024];
    if (model_load(o->load, m, err, sizeof err) != 0) die(EXIT_USAGE, "%s", err);
    session_check_classes(o, predict_classes(m), o->load);
}

int predict_classes(const model_file *m)
{
    return m->arch.sizes[m->arch.n_layers];
}

void predict_check_inputs(const options *o, const model_file *m, int inputs, const char *data)
{
    if (m->arch.sizes[0] != inputs)
        die(EXIT_USAGE, "%s: the model takes %d inputs, the images of %s have %d pixels",
            o->load, m->arch.sizes[0], data, inputs);
}

int predict_argmax(const float *p, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* logits (n x classes) -> probabilities (n x classes), in place: the host's softmax. */
static void softmax_rows(float *z, size_t n, int classes)
{
    for (size_t i = 0; i < n; i++) {
        float *r = z + i * (size_t)classes;
        int arg;
        double lse = softmax_lse(r, classes, &arg);
        for (int k = 0; k < classes; k++) r[k] = (float)exp((double)r[k] - lse);
    }
}

float *predict_probabilities(const options *o, const model_file *m, const dataset *d)
{
    int classes = predict_classes(m);
    train_config cfg = {.arch = m->arch, .seed = m->seed, .optimizer = OPT_SGD, .lr = 0.0f};
    backend *be = session_open_backend(o);
    /* The first chunk as the "test" set: the trainer sizes its activation buffers for it, and
     * trainer_logits streams every image through them; there is no training set. */
    dataset first = *d;
    if (first.n > PREDICT_CHUNK) first.n = PREDICT_CHUNK;
    trainer *t = trainer_create(be, &cfg, NULL, &first, NULL, m->params);
    float *p = xmalloc((d->n ? d->n : 1) * (size_t)classes * sizeof(float), "predictions");
    trainer_logits(t, d->pixels, d->n, p);
    trainer_destroy(t);
    backend_destroy(be);
    softmax_rows(p, d->n, classes);
    return p;
}

/* Draws the images of d with their predictions (and true labels when `truth`) into path. */
static void write_grid(const char *path, const dataset *d, const float *probs, int classes, bool truth,
                       char *const *names)
{
    uint8_t *pred = xmalloc(d->n ? d->n : 1, "predicted labels");
    for (size_t i = 0; i < d->n; i++) pred[i] = (uint8_t)predict_argmax(probs + i * (size_t)classes, classes);
    int w, h;
    uint8_t *rgb = image_prediction_grid(d->pixels, d->cols, d->n, pred, truth ? d->labels : NULL,
                                         (const char *const *)names, &w, &h);
    char err[1024];
    if (image_write_png(path, rgb, w, h, 3, err, sizeof err) != 0) die(EXIT_RUNTIME, "--grid %s", err);
    free(rgb);
    free(pred);
}

/* --grid without image files: the first GRID_IMAGES test images of --data. */
static int grid_of_test_images(const options *o)
{
    model_file m;
    predict_load_model(o, &m);
    int classes = predict_classes(&m);
    session_data sd;
    session_load_data(o, classes, &sd);
    dataset *te = &sd.data.test;
    if (te->rows != MNIST_SIDE || te->cols != MNIST_SIDE)
        die(EXIT_USAGE, "--grid draws %dx%d images; %s has %dx%d", MNIST_SIDE, MNIST_SIDE,
            sd.data.source, te->rows, te->cols);
    if (te->n == 0) die(EXIT_USAGE, "%s has no test images to draw", sd.data.source);
    if (te->n > GRID_IMAGES) dataset_truncate(te, GRID_IMAGES);
    predict_check_inputs(o, &m, te->rows * te->cols, sd.data.source);
    char **names = session_class_names(o, classes, m.class_names);
    float *probs = predict_probabilities(o, &m, te);
    size_t right = 0;
    for (size_t i = 0; i < te->n; i++)
        right += predict_argmax(probs + i * (size_t)classes, classes) == te->labels[i];
    write_grid(o->grid, te, probs, classes, true, names);
    printf("%s: %zu test images, %zu predicted right, %zu wrong (red)\n", o->grid, te->n, right, te->n - right);
    free(probs);
    class_names_free(names, classes);
    model_file_free(&m);
    session_free_data(&sd);
    return EXIT_OK;
}

/* A growable text buffer for the CSV, written in one go (atomically) at the end. */
typedef struct { char *p; size_t len, cap; } text;

static void text_printf(text *t, const char *fmt, ...) CLT_PRINTF(2, 3);
static void text_printf(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) die(EXIT_RUNTIME, "cannot format the predictions");
        if (t->p && (size_t)n < t->cap - t->len) { t->len += (size_t)n; return; }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->p = xrealloc(t->p, t->cap, "the predictions file");
    }
}

/* One image's line on stdout: "ID: LABEL [NAME]  p=[...]". */
static void print_prediction(const char *id, const float *p, int classes, char *const *names)
{
    int k = predict_argmax(p, classes);
    printf("%s: %d", id, k);
    if (names) printf(" %s", names[k]);
    printf("  p=[");
    for (int c = 0; c < classes; c++) printf(c ? " %.4f" : "%.4f", (double)p[c]);
    printf("]\n");
}

/* Kaggle's submission: ImageId (from 1),Label; Name when the classes have names; with --probs
 * one column per class (p_NAME, or p_K without names), 6 decimals. */
static void write_predictions_csv(const char *path, const float *probs, size_t n, int classes,
                                  char *const *names, bool with_probs)
{
    text t = {0};
    text_printf(&t, "ImageId,Label%s", names ? ",Name" : "");
    for (int c = 0; with_probs && c < classes; c++) {
        if (names) text_printf(&t, ",p_%s", names[c]);
        else text_printf(&t, ",p_%d", c);
    }
    text_printf(&t, "\n");
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * (size_t)classes;
        int k = predict_argmax(p, classes);
        text_printf(&t, "%zu,%d", i + 1, k);
        if (names) text_printf(&t, ",%s", names[k]);
        for (int c = 0; with_probs && c < classes; c++) text_printf(&t, ",%.6f", (double)p[c]);
        text_printf(&t, "\n");
    }
    if (write_file_atomic(path, t.p, t.len) != 0)
        die(EXIT_RUNTIME, "--out %s: cannot write the predictions: %s (check the folder exists and is writable)",
            path, strerror(errno));
    free(t.p);
}

/* predict --data: every image of a CSV, an IDX images file or a folder's test set (the first
 * --test-limit N of them). */
static int predict_data_set(const options *o)
{
    model_file m;
    predict_load_model(o, &m);
    int classes = predict_classes(&m), labelled;
    dataset d;
    char err[DATASET_ERR_LEN];
    if (dataset_load_images(o->data, &d, &labelled, err, sizeof err) != 0) die(EXIT_USAGE, "%s", err);
    if (o->test_limit > 0) {   /* the images predicted are the test set's: the same limit */
        if ((size_t)o->test_limit > d.n)
            die(EXIT_USAGE, "--test-limit %ld is more than the %zu images in %s", o->test_limit, d.n, o->data);
        dataset_truncate(&d, (size_t)o->test_limit);
    }
    int inputs = d.rows * d.cols;
    if (inputs != m.arch.sizes[0])
        die(EXIT_USAGE, "%s: %s %d pixels, the model %s takes %d inputs", o->data,
            d.rows == 1 ? "its rows have" : "its images have", inputs, o->load, m.arch.sizes[0]);
    for (size_t i = 0; labelled && i < d.n; i++)
        if (d.labels[i] >= classes)
            die(EXIT_USAGE, "%s: label %u at index %zu is outside 0..%d (the model %s gives %d classes)",
                o->data, d.labels[i], i, classes - 1, o->load, classes);
    char **names = session_class_names(o, classes, m.class_names);
    float *probs = predict_probabilities(o, &m, &d);
    size_t right = 0;
    for (size_t i = 0; labelled && i < d.n; i++)
        right += predict_argmax(probs + i * (size_t)classes, classes) == d.labels[i];
    if (o->out) {
        write_predictions_csv(o->out, probs, d.n, classes, names, o->probs);
        printf("%s: %zu predictions (ImageId,Label%s%s)\n", o->out, d.n, names ? ",Name" : "",
               o->probs ? " and each class's probability" : "");
    } else {
        for (size_t i = 0; i < d.n; i++) {
            char id[32];
            snprintf(id, sizeof id, "%zu", i + 1);
            print_prediction(id, probs + i * (size_t)classes, classes, names);
        }
    }
    if (o->grid) {
        if (d.rows != d.cols) die(EXIT_USAGE, "--grid draws square images; %s has %dx%d", o->data, d.rows, d.cols);
        dataset head = d;
        if (head.n > GRID_IMAGES) head.n = GRID_IMAGES;
        write_grid(o->grid, &head, probs, classes, labelled, names);
        printf("%s: the first %zu images with their predictions\n", o->grid, head.n);
    }
    if (labelled)
        printf("accuracy: %.4f (%zu of %zu) on %s\n", (double)right / (double)d.n, right, d.n, o->data);
    fflush(stdout);
    free(probs);
    class_names_free(names, classes);
    model_file_free(&m);
    dataset_free(&d);
    return EXIT_OK;
}

int command_predict(const options *o)
{
    output_paths_check(o);
    if (o->n_positional > 0 && o->data_given)
        die(EXIT_USAGE, "predict takes image files or --data, not both; see 'cltrain --help'");
    if ((o->out || o->probs) && !o->data_given)
        die(EXIT_USAGE, "%s needs --data FILE.csv|DIR (the images to predict)", o->out ? "--out" : "--probs");
    if (o->data_given && (o->out || o->probs || !o->grid)) return predict_data_set(o);
    if (o->n_positional == 0 && !o->grid)
        die(EXIT_USAGE, "predict needs image files (PNG, JPEG or PGM), --data FILE.csv|DIR or --grid OUT.png; see 'cltrain --help'");
    if (o->n_positional == 0) return grid_of_test_images(o);

    /* Every image is read before anything is printed or written: a bad one stops the run. */
    model_file m;
    predict_load_model(o, &m);
    size_t n = (size_t)o->n_positional, px = MNIST_SIDE * MNIST_SIDE;
    int classes = predict_classes(&m);
    dataset d = {.n = n, .rows = MNIST_SIDE, .cols = MNIST_SIDE, .classes = classes};
    predict_check_inputs(o, &m, (int)px, "predict (28x28 after preparation)");
    d.pixels = xmalloc(n * px, "images");
    d.labels = xcalloc(n, 1, "labels");
    char err[1024];
    for (size_t i = 0; i < n; i++)
        if (image_load_digit(o->positional[i], d.pixels + i * px, err, sizeof err) != 0)
            die(EXIT_USAGE, "%s", err);
    char **names = session_class_names(o, classes, m.class_names);
    float *probs = predict_probabilities(o, &m, &d);
    for (size_t i = 0; i < n; i++)
        print_prediction(o->positional[i], probs + i * (size_t)classes, classes, names);
    fflush(stdout);
    if (o->grid) write_grid(o->grid, &d, probs, classes, false, names);
    free(probs);
    class_names_free(names, classes);
    model_file_free(&m);
    dataset_free(&d);
    return EXIT_OK;
}
