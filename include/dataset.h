/* dataset.h: MNIST-style data sets from IDX files (raw or gzip) or the Kaggle CSV.
 * Every reader validates before it allocates; any fault is reported as one line naming the
 * file, what is wrong and what was expected, and the caller exits with status 2. */
#ifndef CLTRAIN_DATASET_H
#define CLTRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* n images of rows*cols uint8 pixels (row-major, one image after another: an n x (rows*cols)
 * matrix), and n labels in 0..classes-1. */
typedef struct {
    size_t n;
    int rows, cols;      /* 28 x 28 for MNIST */
    int classes;         /* 2..256: the largest label + 1 (at least 2), or --classes */
    uint8_t *pixels;     /* n * rows * cols */
    uint8_t *labels;     /* n */
} dataset;

typedef struct {
    dataset train;
    dataset test;
    char source[512];    /* folder or CSV path, for the summary */
    char label_file[2][4096];   /* the files train's and test's labels came from, for messages */
    size_t test_index0;  /* index in label_file[1] of test's first label (a CSV: after train) */
} dataset_pair;

/* Size of the buffer for error messages. */
#define DATASET_ERR_LEN 1024

/* Loads an IDX image file (magic 0x00000803) and an IDX label file (0x00000801). Each path
 * may name the raw file or, if absent, `path.gz` is tried (and a path ending in .gz is read
 * with zlib). Returns 0, or -1 with a one-line message in err. */
int dataset_load_idx(const char *images_path, const char *labels_path, dataset *out,
                     char *err, size_t errlen);

/* Loads the Kaggle "Digit Recognizer" CSV: a header line, then label,pixel0..pixel783 per row
 * (labels and pixels 0-255). The last `test_split` rows become the test set. */
int dataset_load_csv(const char *csv_path, size_t test_split, dataset_pair *out,
                     char *err, size_t errlen);

/* `data` is a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each raw or .gz), or a .csv file.
 * Checks that train and test images have the same size. */
int dataset_load(const char *data, size_t test_split, dataset_pair *out,
                 char *err, size_t errlen);

/* Both sets' class count: `classes`, after checking that every label is below it (a label
 * outside is an error naming the file, the index and the value), or with classes == 0 the
 * larger of the two sets' own counts. dataset_load has done the latter. */
int dataset_pair_set_classes(dataset_pair *p, int classes, char *err, size_t errlen);

/* Images to predict: a CSV (Kaggle's test.csv header pixel0,...,pixelN-1, or a labelled
 * train.csv whose header starts with "label"), an IDX images file (raw or .gz), or a folder
 * of the four IDX files (its test set). *labelled says whether labels came with the images;
 * when not, out->labels are 0. A CSV row that is not square is kept as 1 x N pixels. */
int dataset_load_images(const char *path, dataset *out, int *labelled, char *err,
                        size_t errlen);

/* Keeps the first n images (n <= d->n). */
void dataset_truncate(dataset *d, size_t n);

/* Prints counts, image size and the label histogram. */
void dataset_print_summary(const dataset_pair *p, FILE *f);

void dataset_free(dataset *d);
void dataset_pair_free(dataset_pair *p);

#endif
