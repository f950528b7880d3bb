/* fuzz.h: the fuzz harnesses, shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, `make fuzz`)
 * and the Check test that replays the seed corpora and tests/fuzz/regress/ in the normal suite
 * (tests/test_malformed.c). Each takes one input, writes the file(s) it describes to tmpfs
 * (the readers take paths), calls the reader, checks what the reader promises, and frees.
 * A broken promise aborts, which libFuzzer and Check both report.
 *
 * Input formats (tests/fuzz/README.md):
 *   idx    u32 little-endian k, then min(k, rest) bytes of the images file, then the labels
 *          file: dataset_load_idx(images, labels)
 *   csv    one byte b, then the CSV file: dataset_load_csv(file, test_split = b % 8)
 *   model  one byte b, then the model file: model_load(file); when b is odd the harness first
 *          rewrites the trailing CRC-32 to match, so that the fuzzer reaches the header checks */
#ifndef CLTRAIN_FUZZ_H
#define CLTRAIN_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "dataset.h"

/* Aborts when a reader breaks its contract (a message that does not name the file, a load
 * that returns impossible values). */
static inline void fuzz_require(int ok, const char *what, const char *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz: broken promise: %s (message: %s)\n", what, err ? err : "");
        abort();
    }
}

/* A new file on tmpfs (/dev/shm, else $TMPDIR or /tmp) holding n bytes; its path in path. */
static inline void fuzz_put_file(char *path, size_t len, const void *bytes, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, len, "%s/cltrain-fuzz-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    fuzz_require(fd >= 0, "mkstemp", path);
    const unsigned char *p = bytes;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        fuzz_require(w > 0, "write to tmpfs", path);
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* The reader's one-line message: names the file, one line. */
static inline void fuzz_check_message(const char *err, const char *path)
{
    fuzz_require(strstr(err, path) != NULL, "the message names the file", err);
    fuzz_require(strchr(err, '\n') == NULL, "the message is one line", err);
}

static inline void fuzz_check_dataset(const dataset *d, const char *err)
{
    fuzz_require(d->n > 0 && d->rows > 0 && d->cols > 0 && d->classes >= 2 && d->classes <= 256,
                 "dataset shape", err);
    fuzz_require(d->pixels != NULL && d->labels != NULL, "dataset buffers", err);
    for (size_t i = 0; i < d->n; i++)
        fuzz_require(d->labels[i] < d->classes, "labels below the class count", err);
}

static inline int fuzz_idx_one(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint32_t k = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                 (uint32_t)data[3] << 24;
    data += 4;
    size -= 4;
    size_t ni = k < size ? k : size;
    char images[128], labels[128], err[DATASET_ERR_LEN] = "";
    fuzz_put_file(images, sizeof images, data, ni);
    fuzz_put_file(labels, sizeof labels, data + ni, size - ni);
    dataset d;
    if (dataset_load_idx(images, labels, &d, err, sizeof err) == 0) {
        fuzz_check_dataset(&d, err);
        dataset_free(&d);
    } else {
        fuzz_require(strstr(err, images) || strstr(err, labels), "the message names a file", err);
        fuzz_require(strchr(err, '\n') == NULL, "the message is one line", err);
    }
    unlink(images);
    unlink(labels);
    return 0;
}

static inline int fuzz_csv_one(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t split = data[0] % 8;
    char path[128], err[DATASET_ERR_LEN] = "";
    fuzz_put_file(path, sizeof path, data + 1, size - 1);
    dataset_pair p;
    if (dataset_load_csv(path, split, &p, err, sizeof err) == 0) {
        fuzz_check_dataset(&p.train, err);
        fuzz_check_dataset(&p.test, err);
        fuzz_require(p.test.n == split, "test set of --test-split rows", err);
        dataset_pair_free(&p);
    } else {
        fuzz_check_message(err, path);
    }
    unlink(path);
    return 0;
}

static inline int fuzz_model_one(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fix_crc = data[0] & 1;
    data++;
    size--;
    unsigned char *copy = malloc(size ? size : 1);
    fuzz_require(copy != NULL, "malloc", "");
    memcpy(copy, data, size);
    if (fix_crc && size >= 4) {
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), copy, (uInt)(size - 4));
        for (int i = 0; i < 4; i++) copy[size - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
    }
    char path[128], err[1024] = "";
    fuzz_put_file(path, sizeof path, copy, size);
    free(copy);
    model_file m;
    if (model_load(path, &m, err, sizeof err) == 0) {
        const model_arch *a = &m.arch;
        fuzz_require(a->n_layers >= 1 && a->n_layers <= MODEL_MAX_LAYERS, "layer count", err);
        fuzz_require(m.params != NULL && m.n_state >= 0 && m.n_state <= 2, "parameters", err);
        for (int s = 0; s < m.n_state; s++) fuzz_require(m.state[s] != NULL, "state", err);
        for (int c = 0; m.class_names && c < a->sizes[a->n_layers]; c++)
            fuzz_require(m.class_names[c] != NULL &&
                         !class_name_fault(m.class_names[c], strlen(m.class_names[c])),
                         "class names", err);
        /* Every parameter is readable: ASan reports a short buffer. */
        volatile float sum = 0.0f;
        for (size_t i = 0; i < a->n_params; i++) sum += m.params[i];
        (void)sum;
        model_file_free(&m);
    } else {
        fuzz_check_message(err, path);
    }
    unlink(path);
    return 0;
}

#endif
