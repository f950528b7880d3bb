/* eval_cmd.c: `cltrain eval --load MODEL [--data DIR] [--device N]`: the test accuracy of a
 * saved model, its confusion matrix (rows the true class, columns the predicted one) and each
 * class's precision and recall; --predictions FILE.csv adds every image's probabilities. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "predict.h"
#include "session.h"
#include "util.h"

/* Classes the tables are printed for: labels are bytes. */
#define MAX_CLASSES 256

static void print_confusion(const size_t *cm, int classes)
{
    printf("confusion matrix (rows: true class, columns: predicted class)\n");
    printf("%10s", "true\\pred");
    for (int k = 0; k < classes; k++) printf(" %6d", k);
    printf(" %7s\n", "total");
    size_t col_total[MAX_CLASSES] = {0}, all = 0;
    for (int r = 0; r < classes; r++) {
        size_t row = 0;
        printf("%10d", r);
        for (int k = 0; k < classes; k++) {
            size_t v = cm[(size_t)r * (size_t)classes + (size_t)k];
            printf(" %6zu", v);
            row += v;
            col_total[k] += v;
        }
        printf(" %7zu\n", row);
        all += row;
    }
    printf("%10s", "total");
    for (int k = 0; k < classes; k++) printf(" %6zu", col_total[k]);
    printf(" %7zu\n", all);
}

/* Precision: right among those predicted as the class; recall: right among the class's own. */
static void print_per_class(const size_t *cm, int classes, char *const *names)
{
    printf("%5s %10s %8s %8s%s\n", "class", "precision", "recall", "support", names ? "  name" : "");
    for (int c = 0; c < classes; c++) {
        size_t tp = cm[(size_t)c * (size_t)classes + (size_t)c], predicted = 0, actual = 0;
        for (int k = 0; k < classes; k++) {
            predicted += cm[(size_t)k * (size_t)classes + (size_t)c];
            actual += cm[(size_t)c * (size_t)classes + (size_t)k];
        }
        printf("%5d", c);
        if (predicted) printf(" %10.4f", (double)tp / (double)predicted);
        else printf(" %10s", "-");
        if (actual) printf(" %8.4f", (double)tp / (double)actual);
        else printf(" %8s", "-");
        printf(" %8zu", actual);
        if (names) printf("  %s", names[c]);
        printf("\n");
    }
}

/* --predictions: one row per test image, its label, the predicted class and every class's
 * probability with float32's 9 significant digits, so another runtime can be compared with it. */
static void write_predictions(const char *path, const dataset *te, const float *probs, int classes)
{
    size_t cap = 64 + (size_t)classes * 8 + te->n * (32 + (size_t)classes * 17), len = 0;
    char *buf = xmalloc(cap, "the predictions file");
    len += (size_t)snprintf(buf + len, cap - len, "index,label,predicted");
    for (int k = 0; k < classes; k++) len += (size_t)snprintf(buf + len, cap - len, ",p%d", k);
    len += (size_t)snprintf(buf + len, cap - len, "\n");
    for (size_t i = 0; i < te->n; i++) {
        const float *p = probs + i * (size_t)classes;
        len += (size_t)snprintf(buf + len, cap - len, "%zu,%d,%d", i, te->labels[i], predict_argmax(p, classes));
        for (int k = 0; k < classes; k++) len += (size_t)snprintf(buf + len, cap - len, ",%.8e", (double)p[k]);
        len += (size_t)snprintf(buf + len, cap - len, "\n");
    }
    if (write_file_atomic(path, buf, len) != 0)
        die(EXIT_RUNTIME, "--predictions %s: cannot write: %s", path, strerror(errno));
    free(buf);
}

int command_eval(const options *o)
{
    if (o->n_positional > 0)
        die(EXIT_USAGE, "eval takes no file arguments ('%s'); the test set comes from --data", o->positional[0]);
    model_file m;
    predict_load_model(o, &m);
    int classes = predict_classes(&m);
    if (classes < 1 || classes > MAX_CLASSES)
        die(EXIT_USAGE, "%s has %d classes; eval prints tables for 1 to %d", o->load, classes, MAX_CLASSES);
    session_data sd;
    session_load_data(o, classes, &sd);
    const dataset *te = &sd.data.test;
    if (te->n == 0) die(EXIT_USAGE, "%s has no test images", sd.data.source);
    predict_check_inputs(o, &m, te->rows * te->cols, sd.data.source);
    char **names = session_class_names(o, classes, m.class_names);
    float *probs = predict_probabilities(o, &m, te);

    size_t *cm = xcalloc((size_t)classes * (size_t)classes, sizeof(size_t), "confusion matrix");
    size_t right = 0;
    for (size_t i = 0; i < te->n; i++) {
        int p = predict_argmax(probs + i * (size_t)classes, classes), t = te->labels[i];
        cm[(size_t)t * (size_t)classes + (size_t)p]++;
        right += p == t;
    }
    char arch[256];
    model_describe(&m.arch, arch, sizeof arch);
    printf("model: %s (%s)\n", arch, o->load);
    printf("data: %zu test images from %s\n", te->n, sd.data.source);
    printf("classes: %d", classes);
    for (int c = 0; names && c < classes; c++) printf("%s%d %s", c ? ", " : " (", c, names[c]);
    printf("%s\n", names ? ")" : "");
    printf("test accuracy: %.4f (%zu of %zu)\n\n", (double)right / (double)te->n, right, te->n);
    print_confusion(cm, classes);
    printf("\n");
    print_per_class(cm, classes, names);
    if (o->predictions) {
        write_predictions(o->predictions, te, probs, classes);
        printf("\npredictions: %s (%zu rows)\n", o->predictions, te->n);
    }

    free(cm);
    free(probs);
    class_names_free(names, classes);
    model_file_free(&m);
    session_free_data(&sd);
    return EXIT_OK;
}
