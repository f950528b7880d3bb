/* predict_cmd.c: `cltrain predict --load MODEL [--grid OUT.png] [IMAGE...]`: the digit in each
 * image file (PNG, JPEG or PGM of any size, prepared as MNIST's were), or with --grid alone a
 * picture of the first 100 test images with their predicted and true labels. Also the model
 * loading and probabilities that eval shares (predict.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "image_io.h"
#include "predict.h"
#include "session.h"
#include "trainer.h"
#include "util.h"

/* Test images drawn by --grid without image files. */
#define GRID_IMAGES 100

void predict_load_model(const options *o, int inputs, int classes, model_file *m)
{
    if (!o->load) die(EXIT_USAGE, "this command needs --load MODEL (a file written by --save); see 'cltrain --help'");
    char err[1024];
    if (model_load(o->load, m, err, sizeof err) != 0) die(EXIT_USAGE, "%s", err);
    const model_arch *a = &m->arch;
    if (a->sizes[0] != inputs || a->sizes[a->n_layers] != classes)
        die(EXIT_USAGE, "%s: the model takes %d inputs and gives %d classes; the images have %d pixels and %d classes",
            o->load, a->sizes[0], a->sizes[a->n_layers], inputs, classes);
}

int predict_argmax(const float *p, int n)
{
    int best = 0;
    for (int k = 1; k < n; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* logits (n x classes) -> probabilities (n x classes), in place; softmax with the maximum
 * subtracted so that large logits do not overflow. */
static void softmax_rows(float *z, size_t n, int classes)
{
    for (size_t i = 0; i < n; i++) {
        float *r = z + i * (size_t)classes;
        float top = r[predict_argmax(r, classes)];
        double sum = 0.0;
        for (int k = 0; k < classes; k++) sum += exp((double)r[k] - top);
        for (int k = 0; k < classes; k++) r[k] = (float)(exp((double)r[k] - top) / sum);
    }
}

float *predict_probabilities(const options *o, const model_file *m, const dataset *d)
{
    int classes = m->arch.sizes[m->arch.n_layers];
    train_config cfg = {.arch = m->arch, .seed = m->seed, .optimizer = OPT_SGD, .lr = 0.0f};
    backend *be = session_open_backend(o);
    /* d as the "test" set: the trainer sizes its activation buffers for it, so the logits come
     * in a few large chunks; there is no training set. */
    trainer *t = trainer_create(be, &cfg, NULL, d, NULL, m->params);
    float *p = xmalloc(d->n * (size_t)classes * sizeof(float), "predictions");
    trainer_logits(t, d->pixels, d->n, p);
    trainer_destroy(t);
    backend_destroy(be);
    softmax_rows(p, d->n, classes);
    return p;
}

/* Draws the images of d with their predictions (and true labels when `truth`) into path. */
static void write_grid(const char *path, const dataset *d, const float *probs, int classes, bool truth)
{
    uint8_t *pred = xmalloc(d->n ? d->n : 1, "predicted labels");
    for (size_t i = 0; i < d->n; i++) pred[i] = (uint8_t)predict_argmax(probs + i * (size_t)classes, classes);
    int w, h;
    uint8_t *rgb = image_prediction_grid(d->pixels, d->cols, d->n, pred, truth ? d->labels : NULL, &w, &h);
    char err[1024];
    if (image_write_png(path, rgb, w, h, 3, err, sizeof err) != 0) die(EXIT_RUNTIME, "--grid %s", err);
    free(rgb);
    free(pred);
}

/* --grid without image files: the first GRID_IMAGES test images of --data. */
static int grid_of_test_images(const options *o)
{
    session_data sd;
    session_load_data(o, &sd);
    dataset *te = &sd.data.test;
    if (te->rows != MNIST_SIDE || te->cols != MNIST_SIDE)
        die(EXIT_USAGE, "--grid draws %dx%d images; %s has %dx%d", MNIST_SIDE, MNIST_SIDE,
            sd.data.source, te->rows, te->cols);
    if (te->n == 0) die(EXIT_USAGE, "%s has no test images to draw", sd.data.source);
    if (te->n > GRID_IMAGES) dataset_truncate(te, GRID_IMAGES);
    model_file m;
    predict_load_model(o, te->rows * te->cols, te->classes, &m);
    float *probs = predict_probabilities(o, &m, te);
    int classes = te->classes;
    size_t right = 0;
    for (size_t i = 0; i < te->n; i++)
        right += predict_argmax(probs + i * (size_t)classes, classes) == te->labels[i];
    write_grid(o->grid, te, probs, classes, true);
    printf("%s: %zu test images, %zu predicted right, %zu wrong (red)\n", o->grid, te->n, right, te->n - right);
    free(probs);
    model_file_free(&m);
    session_free_data(&sd);
    return EXIT_OK;
}

int command_predict(const options *o)
{
    if (o->n_positional == 0 && !o->grid)
        die(EXIT_USAGE, "predict needs image files (PNG, JPEG or PGM) or --grid OUT.png; see 'cltrain --help'");
    if (o->n_positional == 0) return grid_of_test_images(o);

    /* Every image is read before anything is printed or written: a bad one stops the run. */
    size_t n = (size_t)o->n_positional, px = MNIST_SIDE * MNIST_SIDE;
    dataset d = {.n = n, .rows = MNIST_SIDE, .cols = MNIST_SIDE, .classes = 10};
    d.pixels = xmalloc(n * px, "images");
    d.labels = xcalloc(n, 1, "labels");
    model_file m;
    predict_load_model(o, (int)px, d.classes, &m);
    char err[1024];
    for (size_t i = 0; i < n; i++)
        if (image_load_digit(o->positional[i], d.pixels + i * px, err, sizeof err) != 0)
            die(EXIT_USAGE, "%s", err);
    float *probs = predict_probabilities(o, &m, &d);
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * (size_t)d.classes;
        printf("%s: %d  p=[", o->positional[i], predict_argmax(p, d.classes));
        for (int k = 0; k < d.classes; k++) printf(k ? " %.4f" : "%.4f", (double)p[k]);
        printf("]\n");
    }
    fflush(stdout);
    if (o->grid) write_grid(o->grid, &d, probs, d.classes, false);
    free(probs);
    model_file_free(&m);
    dataset_free(&d);
    return EXIT_OK;
}
