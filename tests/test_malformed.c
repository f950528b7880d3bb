/* test_malformed.c: bad input through the real binary. Data files (IDX raw and gzip, the
 * Kaggle CSV), model files for --load/--resume, image files for `predict`, flags out of range,
 * a loss that diverges and a network too large for memory. Every refusal must be exit 2 with
 * one line on stderr naming the file and the fault, and must write nothing (no --save, --log,
 * --checkpoint or --grid file, no stray temporary file). tests/test_dataset.c and
 * tests/test_checkpoint.c test the readers in-process; this suite tests what a user sees.
 *
 * Every invocation is small: a synthetic 28x28 data set of 60 + 20 images written by the
 * fixture, --epochs 1, --hidden 4; faults are found before any device is opened. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "fuzz/fuzz.h"
#include "image_io.h"
#include "support.h"
#include "util.h"

#define N_TRAIN 60
#define N_TEST 20
#define SIDE 28
#define IMG_HDR 16      /* IDX images: magic, n, rows, cols */
#define LBL_HDR 8       /* IDX labels: magic, n */

/* The outputs every training invocation asks for; none may appear after a refusal. */
#define OUTPUTS "--save out.model --log run.csv --checkpoint run.ckpt"
#define TRAIN "--epochs 1 --hidden 4 " OUTPUTS

static char dir[64];
static char *out_text, *err_text;

enum { TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS };
static const char *const idx_name[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};
/* The good files' bytes, as the fixture wrote them into "d". */
static unsigned char *good[4];
static size_t good_len[4];

/* ---- files ---------------------------------------------------------------------------- */

static const char *in_dir(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void sh(const char *fmt, ...) CLT_PRINTF(1, 2);
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2300];
    snprintf(full, sizeof full, "cd %s && %s", dir, cmd);
    ck_assert_msg(system(full) == 0, "failed: %s", full);
}

static void put_file(const char *name, const void *bytes, size_t len)
{
    FILE *f = fopen(in_dir(name), "wb");
    ck_assert_msg(f != NULL, "cannot write %s", in_dir(name));
    ck_assert(len == 0 || fwrite(bytes, 1, len, f) == len);
    ck_assert_int_eq(fclose(f), 0);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* IDX bytes of a data set: images (dims 3) or labels (dims 1). */
static unsigned char *idx_bytes(const dataset *d, int dims, size_t *len)
{
    size_t px = (size_t)d->rows * (size_t)d->cols, hdr = dims == 3 ? IMG_HDR : LBL_HDR;
    *len = hdr + (dims == 3 ? d->n * px : d->n);
    unsigned char *b = xmalloc(*len, "IDX bytes");
    put_be32(b, 0x800u | (uint32_t)dims);
    put_be32(b + 4, (uint32_t)d->n);
    if (dims == 3) {
        put_be32(b + 8, (uint32_t)d->rows);
        put_be32(b + 12, (uint32_t)d->cols);
        memcpy(b + hdr, d->pixels, d->n * px);
    } else {
        memcpy(b + hdr, d->labels, d->n);
    }
    return b;
}

/* Writes a good IDX folder `sub` (N_TRAIN + N_TEST synthetic 28x28 images). */
static void make_data(const char *sub)
{
    ck_assert_int_eq(mkdir(in_dir(sub), 0755), 0);
    for (int k = 0; k < 4; k++) {
        dataset d;
        synthetic_dataset(&d, k < 2 ? N_TRAIN : N_TEST, SIDE, k < 2 ? 11 : 12);
        free(good[k]);
        good[k] = idx_bytes(&d, k % 2 ? 1 : 3, &good_len[k]);
        dataset_free(&d);
        char name[256];
        snprintf(name, sizeof name, "%s/%s", sub, idx_name[k]);
        put_file(name, good[k], good_len[k]);
    }
}

/* Copies the good folder "d" to "bad" with file k replaced by bytes (NULL: removed). */
static void make_bad_data(int k, const void *bytes, size_t len)
{
    sh("rm -rf bad && cp -r d bad && rm -f bad/%s", idx_name[k]);
    if (bytes) {
        char name[256];
        snprintf(name, sizeof name, "bad/%s", idx_name[k]);
        put_file(name, bytes, len);
    }
}

/* The good file k with `len` bytes from it (len may exceed the original: zeros follow). */
static unsigned char *good_copy(int k, size_t len)
{
    unsigned char *b = xcalloc(len ? len : 1, 1, "file copy");
    memcpy(b, good[k], len < good_len[k] ? len : good_len[k]);
    return b;
}

/* gzip of bytes (zlib's compress at level 6, with a gzip wrapper). */
static unsigned char *gzip_bytes(const unsigned char *src, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *out = xmalloc(cap, "gzip bytes");
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

/* ---- running the binary --------------------------------------------------------------- */

static int count_entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n++;
    closedir(d);
    return n;
}

static int entries_before;

/* Runs `cltrain ARGS` in dir with stdout and stderr captured; returns the exit status. Fails
 * the test when the binary dies from a signal (a crash, or a sanitizer's abort). */
static int run(const char *fmt, ...) CLT_PRINTF(1, 2);
static int run(const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    entries_before = count_entries();
    return run_cltrain(dir, NULL, args, &out_text, &err_text);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Whether s holds one of the '|'-separated needles. */
static int has_any(const char *s, const char *needles)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", needles);
    for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
        if (strstr(s, t)) return 1;
    return 0;
}

static int exists(const char *name)
{
    return access(in_dir(name), F_OK) == 0;
}

/* No output file and nothing else new in dir (temporary files, probes). */
static void assert_wrote_nothing(const char *what)
{
    static const char *const outputs[] = {"out.model", "run.csv", "run.ckpt", "grid.png"};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
        ck_assert_msg(!exists(outputs[i]), "%s: %s was written", what, outputs[i]);
    ck_assert_msg(count_entries() == entries_before, "%s: a file appeared in %s", what, dir);
}

/* The last run was a refusal: exit 2, nothing on stdout, one line on stderr that names
 * `file` and holds one of `faults`, nothing written. */
static void assert_refused(int status, const char *what, const char *file, const char *faults)
{
    ck_assert_msg(status == 2, "%s: exit %d, expected 2; stderr: %.1500s", what, status, err_text);
    ck_assert_msg(count_lines(err_text) == 1 && err_text[strlen(err_text) - 1] == '\n',
                  "%s: expected one line on stderr, got: %.1500s", what, err_text);
    ck_assert_msg(strncmp(err_text, "cltrain: ", 9) == 0, "%s: %s", what, err_text);
    ck_assert_msg(strstr(err_text, file) != NULL, "%s: message does not name %s: %s", what,
                  file, err_text);
    ck_assert_msg(has_any(err_text, faults), "%s: message does not say '%s': %s", what, faults,
                  err_text);
    ck_assert_msg(out_text[0] == 0, "%s: printed on stdout: %.500s", what, out_text);
    assert_wrote_nothing(what);
}

static void setup(void)
{
    work_dir_make(dir, sizeof dir, "malformed");
    put_file("out.txt", "", 0);
    put_file("err.txt", "", 0);
    make_data("d");
}

static void teardown(void)
{
    work_dir_remove(dir);
    for (int k = 0; k < 4; k++) {
        free(good[k]);
        good[k] = NULL;
    }
    free(out_text);
    free(err_text);
    out_text = err_text = NULL;
}

/* ---- data files ----------------------------------------------------------------------- */

/* The fixture's data set is good: the host path trains on it (no device needed). */
START_TEST(test_good_data_trains)
{
    int st = run("--data d --device host " TRAIN);
    ck_assert_msg(st == 0, "exit %d: %s", st, err_text);
    ck_assert(exists("out.model") && exists("run.csv") && exists("run.ckpt"));
}
END_TEST

static void refuse_data(int k, const void *bytes, size_t len, const char *faults,
                        const char *what)
{
    make_bad_data(k, bytes, len);
    char label[256];
    snprintf(label, sizeof label, "%s: %s", idx_name[k], what);
    assert_refused(run("--data bad " TRAIN), label, idx_name[k], faults);
}

/* Every header byte boundary, every 1/16th and the last byte: "truncated" ("empty" at 0). */
START_TEST(test_idx_truncated_anywhere)
{
    for (int k = 0; k < 4; k++) {
        size_t hdr = k % 2 ? LBL_HDR : IMG_HDR, len = good_len[k];
        size_t cuts[64], n = 0;
        if (k < 2)
            for (size_t c = 0; c <= hdr; c++) cuts[n++] = c;
        else
            cuts[n++] = 0, cuts[n++] = 4, cuts[n++] = hdr - 1;
        for (size_t j = 1; j < 16; j += k < 2 ? 1 : 5) cuts[n++] = len * j / 16;
        cuts[n++] = len - 1;
        for (size_t i = 0; i < n; i++) {
            char what[64];
            snprintf(what, sizeof what, "cut to %zu of %zu bytes", cuts[i], len);
            refuse_data(k, good[k], cuts[i], cuts[i] == 0 ? "is empty" : "truncated", what);
        }
    }
}
END_TEST

/* Headers that lie: magic numbers, counts, sizes, including the largest the limits allow
 * (its payload, 1.6e15 bytes, must be refused before anything is allocated). */
static const struct {
    int file;
    unsigned at;          /* byte offset of the big-endian u32 to replace */
    uint32_t value;
    const char *faults, *what;
} forged_headers[] = {
    {TRAIN_IMAGES, 0, 0x00000801, "wrong number of dimensions", "labels magic on images"},
    {TRAIN_LABELS, 0, 0x00000803, "wrong number of dimensions", "images magic on labels"},
    {TRAIN_IMAGES, 0, 0x00000D03, "wrong magic number", "int32 element type"},
    {TRAIN_IMAGES, 0, 0x89504E47, "wrong magic number", "a PNG signature"},
    {TEST_LABELS, 0, 0xFFFFFFFF, "wrong magic number", "all ones"},
    {TRAIN_IMAGES, 4, 0, "header says 0 images", "zero images"},
    {TRAIN_LABELS, 4, 0, "header says 0 labels", "zero labels"},
    {TRAIN_IMAGES, 4, 0xFFFFFFFF, "more than the limit", "2^32-1 images"},
    {TRAIN_LABELS, 4, 0x80000000, "more than the limit", "2^31 labels"},
    {TRAIN_IMAGES, 4, 100000000, "truncated", "the most images the limit allows"},
    {TRAIN_IMAGES, 4, N_TRAIN + 1, "truncated", "one image more than the file holds"},
    {TRAIN_IMAGES, 4, N_TRAIN - 1, "longer than its header", "one image fewer"},
    {TRAIN_LABELS, 4, N_TRAIN + 1, "truncated", "one label more than the file holds"},
    {TRAIN_IMAGES, 8, 0, "expected rows and cols", "zero rows"},
    {TRAIN_IMAGES, 12, 0, "expected rows and cols", "zero cols"},
    {TRAIN_IMAGES, 8, 4097, "expected rows and cols", "4097 rows"},
    {TRAIN_IMAGES, 12, 0xFFFFFFFF, "expected rows and cols", "2^32-1 cols"},
    {TEST_IMAGES, 8, 0x80000000, "expected rows and cols", "2^31 rows"},
    {TEST_IMAGES, 8, 14, "longer than its header", "14 rows of the 28 the file holds"},
};

START_TEST(test_idx_forged_header)
{
    int k = forged_headers[_i].file;
    unsigned char *b = good_copy(k, good_len[k]);
    put_be32(b + forged_headers[_i].at, forged_headers[_i].value);
    refuse_data(k, b, good_len[k], forged_headers[_i].faults, forged_headers[_i].what);
    free(b);
}
END_TEST

/* The largest header on every axis: n, rows and cols at their limits (1.7e15 bytes, within
 * size_t on 64 bits, past it on 32), and past them. Refused from the header alone. */
START_TEST(test_idx_counts_overflow_size_t)
{
    static const uint32_t n[] = {100000000, 100000000, 0xFFFFFFFF};
    static const uint32_t side[] = {4096, 0xFFFFFFFF, 0xFFFFFFFF};
    static const char *const faults[] = {"truncated", "expected rows and cols", "more than the limit"};
    for (int i = 0; i < 3; i++) {
        unsigned char *b = good_copy(TRAIN_IMAGES, good_len[TRAIN_IMAGES]);
        put_be32(b + 4, n[i]);
        put_be32(b + 8, side[i]);
        put_be32(b + 12, side[i]);
        refuse_data(TRAIN_IMAGES, b, good_len[TRAIN_IMAGES], faults[i], "huge header");
        free(b);
    }
    /* A labels file with the most labels the limit allows. */
    unsigned char *b = good_copy(TRAIN_LABELS, good_len[TRAIN_LABELS]);
    put_be32(b + 4, 100000000);
    refuse_data(TRAIN_LABELS, b, good_len[TRAIN_LABELS], "truncated", "huge label count");
    free(b);
}
END_TEST

/* Consistent files that disagree: label count, image sizes across train and test. */
START_TEST(test_idx_files_disagree)
{
    /* 59 labels, a well-formed file: the count differs from the images'. */
    unsigned char *b = good_copy(TRAIN_LABELS, good_len[TRAIN_LABELS] - 1);
    put_be32(b + 4, N_TRAIN - 1);
    refuse_data(TRAIN_LABELS, b, good_len[TRAIN_LABELS] - 1, "differs from the image count",
                "59 labels for 60 images");
    free(b);
    /* Test images of 14x56: well-formed, another shape than the training images. */
    b = good_copy(TEST_IMAGES, good_len[TEST_IMAGES]);
    put_be32(b + 8, 14);
    put_be32(b + 12, 56);
    make_bad_data(TEST_IMAGES, b, good_len[TEST_IMAGES]);
    assert_refused(run("--data bad " TRAIN), "14x56 test images", "train-images-idx3-ubyte",
                   "expected the same size");
    free(b);
}
END_TEST

START_TEST(test_idx_label_out_of_range)
{
    static const struct { int file; size_t index; unsigned char value; const char *fault; } c[] = {
        {TRAIN_LABELS, 5, 10, "label 10 at index 5 is outside 0..9 (10 classes)"},
        {TRAIN_LABELS, N_TRAIN - 1, 255, "label 255 at index 59"},
        {TEST_LABELS, 0, 128, "label 128 at index 0"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        unsigned char *b = good_copy(c[i].file, good_len[c[i].file]);
        b[LBL_HDR + c[i].index] = c[i].value;
        /* Any byte is a label without --classes; --classes 10 refuses the others. */
        make_bad_data(c[i].file, b, good_len[c[i].file]);
        char label[256];
        snprintf(label, sizeof label, "%s: label out of range", idx_name[c[i].file]);
        assert_refused(run("--data bad --classes 10 " TRAIN), label, idx_name[c[i].file], c[i].fault);
        free(b);
    }
}
END_TEST

START_TEST(test_idx_trailing_bytes)
{
    static const size_t extra[] = {1, 3, 1000};
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < 3; i++) {
            unsigned char *b = good_copy(k, good_len[k] + extra[i]);
            refuse_data(k, b, good_len[k] + extra[i], "longer than its header", "trailing bytes");
            free(b);
        }
}
END_TEST

/* Replaces file k of "bad" by name.gz holding gz (len bytes). */
static void refuse_gzip(int k, const unsigned char *gz, size_t len, const char *faults,
                        const char *what)
{
    make_bad_data(k, NULL, 0);
    char name[256];
    snprintf(name, sizeof name, "bad/%s.gz", idx_name[k]);
    put_file(name, gz, len);
    char label[256];
    snprintf(label, sizeof label, "%s.gz: %s", idx_name[k], what);
    assert_refused(run("--data bad " TRAIN), label, name + 4, faults);
}

START_TEST(test_idx_corrupt_gzip)
{
    size_t zlen;
    unsigned char *z = gzip_bytes(good[TRAIN_IMAGES], good_len[TRAIN_IMAGES], &zlen);
    /* The good .gz is read: a bad run below is the fault's doing. */
    make_bad_data(TRAIN_IMAGES, NULL, 0);
    put_file("bad/train-images-idx3-ubyte.gz", z, zlen);
    int st = run("--data bad --device host --epochs 0");
    ck_assert_msg(st == 0, "the good gzip file is refused: %s", err_text);

    size_t cuts[] = {2, 10, 11, zlen / 4, zlen / 2, zlen - 8, zlen - 4, zlen - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "cut to %zu of %zu bytes", cuts[i], zlen);
        refuse_gzip(TRAIN_IMAGES, z, cuts[i], "truncated", what);
    }
    unsigned char *b = xmalloc(zlen + 16, "gzip copy");
    /* A damaged deflate stream; what zlib reports depends on where the damage lands. */
    for (size_t at = 20; at < zlen - 8; at += (zlen - 28) / 5 + 1) {
        memcpy(b, z, zlen);
        b[at] ^= 0x55;
        refuse_gzip(TRAIN_IMAGES, b, zlen, "corrupt|truncated|longer than its header",
                    "damaged deflate data");
    }
    memcpy(b, z, zlen);
    b[zlen - 6] ^= 1;   /* CRC-32 of the data */
    refuse_gzip(TRAIN_IMAGES, b, zlen, "corrupt", "wrong CRC-32 in the gzip trailer");
    memcpy(b, z, zlen);
    b[zlen - 3] ^= 1;   /* ISIZE */
    refuse_gzip(TRAIN_IMAGES, b, zlen, "corrupt", "wrong length in the gzip trailer");
    memcpy(b, z, zlen);
    b[3] = 0xE0;        /* reserved flag bits */
    refuse_gzip(TRAIN_IMAGES, b, zlen, "corrupt", "reserved gzip flags");
    free(b);
    free(z);

    /* Well-formed gzip of a bad IDX file: truncated, and with trailing bytes. */
    z = gzip_bytes(good[TRAIN_LABELS], good_len[TRAIN_LABELS] - 7, &zlen);
    refuse_gzip(TRAIN_LABELS, z, zlen, "truncated", "gzip of a truncated file");
    free(z);
    unsigned char *longer = good_copy(TRAIN_LABELS, good_len[TRAIN_LABELS] + 5);
    z = gzip_bytes(longer, good_len[TRAIN_LABELS] + 5, &zlen);
    refuse_gzip(TRAIN_LABELS, z, zlen, "longer than its header", "gzip of a longer file");
    free(z);
    free(longer);
    z = gzip_bytes((const unsigned char *)"", 0, &zlen);
    refuse_gzip(TRAIN_LABELS, z, zlen, "is empty", "gzip of an empty file");
    free(z);
}
END_TEST

START_TEST(test_idx_empty_files)
{
    for (int k = 0; k < 4; k++) refuse_data(k, "", 0, "is empty", "empty file");
}
END_TEST

START_TEST(test_idx_directory_instead_of_file)
{
    for (int k = 0; k < 4; k++) {
        make_bad_data(k, NULL, 0);
        sh("mkdir bad/%s", idx_name[k]);
        assert_refused(run("--data bad " TRAIN), "directory", idx_name[k], "is a directory");
    }
    /* Only name.gz, and it is a directory. */
    make_bad_data(TRAIN_LABELS, NULL, 0);
    sh("mkdir bad/%s.gz", idx_name[TRAIN_LABELS]);
    assert_refused(run("--data bad " TRAIN), "directory .gz", "train-labels-idx1-ubyte.gz",
                   "is a directory");
}
END_TEST

/* Missing, unreadable (permissions when not root; a symlink loop and an I/O error always),
 * not a regular file. */
START_TEST(test_idx_unreadable_files)
{
    make_bad_data(TRAIN_LABELS, NULL, 0);
    assert_refused(run("--data bad " TRAIN), "missing", "train-labels-idx1-ubyte", "no such file");
    make_bad_data(TEST_IMAGES, NULL, 0);
    sh("ln -s %s bad/%s", idx_name[TEST_IMAGES], idx_name[TEST_IMAGES]);
    assert_refused(run("--data bad " TRAIN), "symlink loop", "t10k-images-idx3-ubyte",
                   "cannot read");
    make_bad_data(TRAIN_IMAGES, NULL, 0);
    sh("ln -s /proc/self/mem bad/%s", idx_name[TRAIN_IMAGES]);
    assert_refused(run("--data bad " TRAIN), "read error", "train-images-idx3-ubyte",
                   "cannot read");
    make_bad_data(TRAIN_IMAGES, NULL, 0);
    sh("mkfifo bad/%s", idx_name[TRAIN_IMAGES]);
    assert_refused(run("--data bad " TRAIN), "fifo", "train-images-idx3-ubyte",
                   "not a regular file");
    if (geteuid() != 0) {
        make_bad_data(TRAIN_LABELS, good[TRAIN_LABELS], good_len[TRAIN_LABELS]);
        sh("chmod 000 bad/%s", idx_name[TRAIN_LABELS]);
        assert_refused(run("--data bad " TRAIN), "mode 000", "train-labels-idx1-ubyte",
                       "Permission denied");
    }
    assert_refused(run("--data no-such-folder " TRAIN), "missing folder", "no-such-folder",
                   "no such folder");
    /* An IDX file given as --data is read as a CSV: refused as binary. */
    assert_refused(run("--data d/%s " TRAIN, idx_name[TRAIN_IMAGES]), "IDX file as --data",
                   "train-images-idx3-ubyte", "binary file");
}
END_TEST

/* ---- Kaggle CSV ----------------------------------------------------------------------- */

/* A header for 2x2 images, then rows. */
#define CSV_HEADER "label,pixel0,pixel1,pixel2,pixel3\n"
#define CSV_ROWS "1,0,0,0,0\n2,255,0,1,2\n3,4,5,6,7\n4,0,9,9,9\n"

static const struct { const char *text, *args, *faults; size_t len; } bad_csv[] = {
    {"", "", "is empty", 0},
    {CSV_HEADER, "", "no data rows", 0},
    {"1,0,0,0,0\n" CSV_ROWS, "", "expected a header line", 0},
    {"label,pixel0,pixel1,pixel2\n1,0,0,0\n2,0,0,0\n", "", "square number", 0},
    {"label\n1\n2\n", "", "square number", 0},
    {CSV_HEADER CSV_ROWS "5,1,2,3\n", "", "row has 4 fields", 0},
    {CSV_HEADER CSV_ROWS "5,1,2,3,4,5\n", "", "row has 6 fields", 0},
    {CSV_HEADER CSV_ROWS "5,1,2", "", "row has 3 fields", 0},
    {CSV_HEADER CSV_ROWS "10,1,2,3,4\n", "--test-split 1 --classes 10", "label 10 at index 4 is outside 0..9", 0},
    {CSV_HEADER CSV_ROWS "256,1,2,3,4\n", "", "label 256 is outside 0..255", 0},
    {CSV_HEADER CSV_ROWS "99999999999999999999,1,2,3,4\n", "", "is outside", 0},
    {CSV_HEADER CSV_ROWS "5,1,256,3,4\n", "", "outside 0..255", 0},
    {CSV_HEADER CSV_ROWS "5,1,abc,3,4\n", "", "expected an integer", 0},
    {CSV_HEADER CSV_ROWS "5,1,-1,3,4\n", "", "expected an integer", 0},
    {CSV_HEADER CSV_ROWS "5,1,,3,4\n", "", "expected an integer", 0},
    {CSV_HEADER CSV_ROWS "5,1,2.5,3,4\n", "", "expected an integer", 0},
    {CSV_HEADER CSV_ROWS "5,1, 2,3,4\n", "", "expected an integer", 0},
    {CSV_HEADER "1,0,0\0,0,0\n" CSV_ROWS, "", "binary file",
     sizeof(CSV_HEADER "1,0,0\0,0,0\n" CSV_ROWS) - 1},   /* a NUL inside */
    {CSV_HEADER CSV_ROWS, "--test-split 4", "leaves no training rows", 0},
};

START_TEST(test_csv_malformed)
{
    size_t len = bad_csv[_i].len ? bad_csv[_i].len : strlen(bad_csv[_i].text);
    put_file("x.csv", bad_csv[_i].text, len);
    char what[64];
    snprintf(what, sizeof what, "CSV case %d", _i);
    assert_refused(run("--data x.csv %s " TRAIN, *bad_csv[_i].args ? bad_csv[_i].args : "--test-split 1"),
                   what, "x.csv", bad_csv[_i].faults);
}
END_TEST

START_TEST(test_csv_not_a_file)
{
    sh("mkdir dir.csv");
    assert_refused(run("--data dir.csv --test-split 1 " TRAIN), "directory", "dir.csv",
                   "is a directory");
    assert_refused(run("--data none.csv --test-split 1 " TRAIN), "missing", "none.csv",
                   "no such file");
    put_file("good.csv", CSV_HEADER CSV_ROWS, strlen(CSV_HEADER CSV_ROWS));
    int st = run("--data good.csv --test-split 1 --device host --epochs 1 --hidden 2");
    ck_assert_msg(st == 0, "the good CSV is refused: %s", err_text);
}
END_TEST

/* ---- model files ---------------------------------------------------------------------- */

/* A model file for `inputs` pixels and `classes` classes (784-4-classes relu, Adam state). */
static unsigned char *model_bytes(int inputs, int classes, size_t *len)
{
    model_file m;
    memset(&m, 0, sizeof m);
    int hidden = 4;
    ck_assert_int_eq(model_arch_init(&m.arch, inputs, &hidden, 1, classes, ACT_RELU), 0);
    m.optimizer = OPT_ADAM;
    m.lr = 0.001f; m.beta1 = 0.9f; m.beta2 = 0.999f; m.eps = 1e-8f;
    m.batch = 0; m.seed = 42; m.epochs_done = 0; m.n_train = N_TRAIN; m.best_val = -1.0f;
    m.params = xmalloc(m.arch.n_params * sizeof(float), "params");
    model_init_params(&m.arch, INIT_HE, 42, m.params);
    m.n_state = 2;
    for (int s = 0; s < 2; s++) m.state[s] = xcalloc(m.arch.n_params, sizeof(float), "state");
    char err[1024];
    ck_assert_msg(model_save(in_dir("tmp.model"), &m, err, sizeof err) == 0, "%s", err);
    model_file_free(&m);
    unsigned char *b = read_file(in_dir("tmp.model"), len);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(unlink(in_dir("tmp.model")), 0);
    return b;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Recomputes the trailing CRC-32: a forgery that the CRC does not catch. */
static void fix_crc(unsigned char *b, size_t len)
{
    put_le32(b + len - 4, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(len - 4)));
}

/* Runs training with --load bad.model (and the other ways of loading it) and expects a
 * refusal naming bad.model. */
static void refuse_model(const unsigned char *b, size_t len, const char *faults, const char *what)
{
    put_file("bad.model", b, len);
    assert_refused(run("--data d --load bad.model " TRAIN), what, "bad.model", faults);
}

START_TEST(test_model_good_file_loads)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    put_file("good.model", b, len);
    int st = run("--data d --device host --load good.model --epochs 0");
    ck_assert_msg(st == 0, "the good model is refused: %s", err_text);
    free(b);
}
END_TEST

START_TEST(test_model_truncated)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    for (size_t k = 0; k < 16; k++) {
        char what[64];
        snprintf(what, sizeof what, "cut to %zu/16 (%zu of %zu bytes)", k, len * k / 16, len);
        refuse_model(b, len * k / 16, "not a cltrain model file|corrupt or truncated", what);
    }
    refuse_model(b, len - 1, "corrupt or truncated", "last byte missing");
    free(b);
}
END_TEST

/* One bit flipped in the middle of each section: magic, version, header length, header
 * fields, parameters, the two optimizer states, the CRC. */
START_TEST(test_model_bit_flips)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    size_t header_end = 16 + le32(b + 12), n_params = (len - 4 - header_end) / 12;
    size_t params = header_end, state1 = params + 4 * n_params, state2 = state1 + 4 * n_params;
    ck_assert_uint_eq(state2 + 4 * n_params + 4, len);
    const struct { const char *section; size_t from, to; const char *faults; } s[] = {
        {"magic", 0, 8, "not a cltrain model file"},
        {"version", 8, 12, "model file version|corrupt"},
        {"header length", 12, 16, "corrupt"},
        {"header", 16, header_end, "corrupt"},
        {"parameters", params, state1, "corrupt"},
        {"optimizer state 1", state1, state2, "corrupt"},
        {"optimizer state 2", state2, len - 4, "corrupt"},
        {"CRC", len - 4, len, "corrupt"},
    };
    unsigned char *c = xmalloc(len, "copy");
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        for (int bit = 0; bit < 8; bit += 7) {
            memcpy(c, b, len);
            c[(s[i].from + s[i].to) / 2] ^= (unsigned char)(1u << bit);
            char what[64];
            snprintf(what, sizeof what, "bit %d flipped in the %s", bit, s[i].section);
            refuse_model(c, len, s[i].faults, what);
        }
    free(c);
    free(b);
}
END_TEST

/* Header fields offsets for a one-hidden-layer file (see checkpoint.h). */
#define H_LAYERS 16
#define H_SIZES 20           /* 3 sizes */
#define H_ACT 32
#define H_INIT 36
#define H_OPT 40
#define H_NPARAMS 132        /* after 7 floats, 6 u64, best_val, stale_epochs */
#define H_NSTATE 140
#define H_NAMES 144          /* version 2: the class-name count */
#define H_AUGMENT 148        /* then (no names) shift, rotate, scale, elastic alpha, sigma */
#define H_RANKS 168          /* then the process count */

/* A file written before the header's last field (the process count) existed still loads:
 * the header's byte count says what is there. */
START_TEST(test_model_without_later_fields_loads)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    ck_assert_uint_eq(le32(b + 12), 156);
    unsigned char *c = xmalloc(len, "old model");
    memcpy(c, b, H_RANKS);
    memcpy(c + H_RANKS, b + H_RANKS + 4, len - (H_RANKS + 4));
    put_le32(c + 12, 152);
    fix_crc(c, len - 4);
    put_file("old.model", c, len - 4);
    int st = run("--data d --device host --load old.model --epochs 0");
    ck_assert_msg(st == 0, "a file without the process count is refused: %s", err_text);
    free(c);
    free(b);
}
END_TEST

/* Files with a valid CRC whose contents lie. */
START_TEST(test_model_forged_fields)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    ck_assert_uint_eq(le32(b + 12), 156);   /* the offsets above, the names, augment, ranks */
    ck_assert_uint_eq(le32(b + H_NSTATE), 2);
    ck_assert_uint_eq(le32(b + H_NAMES), 0);
    const struct { size_t at; uint32_t value; const char *faults, *what; } f[] = {
        {8, 3, "model file version 3", "future version"},
        {8, 1, "bytes of parameters", "version 1 over a version-2 header"},
        {H_AUGMENT, 0x7fc00000, "bad augmentation", "shift NaN"},
        {H_AUGMENT + 4, 0xbf800000, "bad augmentation", "rotate -1"},
        {H_AUGMENT + 8, 0x3f800000, "bad augmentation", "scale 1"},
        {H_AUGMENT + 12, 0x447a4000, "bad augmentation", "alpha 1001 (sigma 0)"},
        {8, 0, "model file version 0", "version 0"},
        {8, 0xFFFFFFFF, "model file version", "version 2^32-1"},
        {H_LAYERS, 0, "bad layer count", "0 layers"},
        {H_LAYERS, MODEL_MAX_LAYERS + 1, "bad layer count", "17 layers"},
        {H_LAYERS, 0xFFFFFFFF, "bad layer count", "2^32-1 layers"},
        {H_LAYERS, 3, "inconsistent|bad layer width|unknown", "3 layers, fields shifted"},
        {H_SIZES, 0, "bad layer width", "width 0"},
        {H_SIZES + 4, 0xFFFFFFFF, "bad layer width", "width 2^32-1"},
        {H_SIZES + 4, 100000000, "inconsistent", "width 10^8"},
        {H_ACT, 3, "unknown activation", "activation 3"},
        {H_INIT, 77, "unknown activation, init", "init 77"},
        {H_OPT, 0x80000000, "unknown activation, init or optimizer", "optimizer 2^31"},
        {H_NPARAMS, 1, "inconsistent", "parameter count 1"},
        {H_NPARAMS + 4, 1, "inconsistent", "parameter count + 2^32"},
        {H_NSTATE, 3, "inconsistent", "3 state arrays"},
        {H_NSTATE, 1, "bytes of parameters", "1 state array, 2 stored"},
        {H_NAMES, 9, "9 class names for 10 classes", "9 names"},
        {H_NAMES, 10, "class name 0", "10 names, none stored"},
    };
    unsigned char *c = xmalloc(len + 8, "copy");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        memcpy(c, b, len);
        put_le32(c + f[i].at, f[i].value);
        fix_crc(c, len);
        refuse_model(c, len, f[i].faults, f[i].what);
    }
    /* Four bytes more or fewer of parameters, the CRC right. */
    memcpy(c, b, len);
    memcpy(c + len, b + len - 4, 4);
    fix_crc(c, len + 4);
    refuse_model(c, len + 4, "bytes of parameters", "4 extra bytes");
    memcpy(c, b, len - 8);
    fix_crc(c, len - 4);
    refuse_model(c, len - 4, "bytes of parameters", "4 bytes missing");
    free(c);
    free(b);
}
END_TEST

/* A huge architecture whose parameter count agrees with its header: 784-10^8-10^8-10 needs
 * 4e16 bytes; refused from the file's length, with nothing allocated. */
START_TEST(test_model_huge_architecture)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    size_t hdr_end = 16 + le32(b + 12);
    /* Rebuild: one more layer width before the class count; same fields after it. */
    size_t nlen = hdr_end + 4 + 4;
    unsigned char *c = xcalloc(nlen, 1, "forged model");
    memcpy(c, b, H_SIZES);
    put_le32(c + 12, le32(b + 12) + 4);
    put_le32(c + H_LAYERS, 3);
    put_le32(c + H_SIZES, SIDE * SIDE);
    put_le32(c + H_SIZES + 4, 100000000);
    put_le32(c + H_SIZES + 8, 100000000);
    put_le32(c + H_SIZES + 12, 10);
    memcpy(c + H_SIZES + 16, b + H_ACT, hdr_end - H_ACT);
    model_arch a;
    int widths[2] = {100000000, 100000000};
    ck_assert_int_eq(model_arch_init(&a, SIDE * SIDE, widths, 2, 10, ACT_RELU), 0);
    size_t at = H_NPARAMS + 4;
    put_le32(c + at, (uint32_t)a.n_params);
    put_le32(c + at + 4, (uint32_t)((uint64_t)a.n_params >> 32));
    put_le32(c + at + 8, 0);
    fix_crc(c, nlen);
    refuse_model(c, nlen, "bytes of parameters", "784-1e8-1e8-10 without its parameters");
    free(c);
    free(b);
}
END_TEST

START_TEST(test_model_wrong_kind_of_file)
{
    refuse_model(good[TRAIN_IMAGES], good_len[TRAIN_IMAGES], "not a cltrain model file",
                 "an IDX file");
    refuse_model((const unsigned char *)"CLTRAIN", 7, "not a cltrain model file", "7 bytes");
    refuse_model((const unsigned char *)"CLTRAIN\x1a\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20,
                 "corrupt", "magic and zeros");
    sh("mkdir dir.model");
    assert_refused(run("--data d --load dir.model " TRAIN), "directory", "dir.model",
                   "Is a directory");
    assert_refused(run("--data d --load none.model " TRAIN), "missing", "none.model",
                   "No such file");
    assert_refused(run("--data d --resume dir.model " TRAIN), "--resume directory", "dir.model",
                   "Is a directory");
}
END_TEST

/* Well-formed models for other data: 12 inputs; 784 inputs but 5 classes. */
START_TEST(test_model_architecture_disagrees)
{
    size_t len;
    unsigned char *b = model_bytes(12, 10, &len);
    refuse_model(b, len, "takes 12 inputs", "12-input model on 28x28 data");
    free(b);
    b = model_bytes(SIDE * SIDE, 5, &len);
    refuse_model(b, len, "5 classes", "5-class model on 10-class data");
    assert_refused(run("--data d --resume bad.model " TRAIN), "--resume", "bad.model", "5 classes");
    assert_refused(run("eval --data d --load bad.model"), "eval", "bad.model", "5 classes");
    assert_refused(run("predict --data d --load bad.model --grid grid.png"), "predict",
                   "bad.model", "5 classes");
    assert_refused(run("predict --data d --load bad.model --out p.csv"), "predict --out",
                   "bad.model", "5 classes");
    free(b);
}
END_TEST

/* The other commands refuse a corrupt model the same way. */
START_TEST(test_model_corrupt_in_every_command)
{
    size_t len;
    unsigned char *b = model_bytes(SIDE * SIDE, 10, &len);
    b[len / 2] ^= 4;
    put_file("bad.model", b, len);
    put_file("digit.pgm", "P5 1 1 255\n\x80", 12);
    assert_refused(run("--data d --resume bad.model " TRAIN), "--resume", "bad.model", "corrupt");
    assert_refused(run("eval --data d --load bad.model"), "eval", "bad.model", "corrupt");
    assert_refused(run("predict --load bad.model digit.pgm --grid grid.png"), "predict",
                   "bad.model", "corrupt");
    assert_refused(run("predict --data d --load bad.model --grid grid.png"), "predict --grid",
                   "bad.model", "corrupt");
    free(b);
}
END_TEST

/* ---- images for predict --------------------------------------------------------------- */

/* A 28x28 PNG with a bar in it, as image_write_png writes it. */
static unsigned char *png_bytes(size_t *len)
{
    uint8_t px[SIDE * SIDE] = {0};
    for (int y = 4; y < 24; y++)
        for (int x = 12; x < 16; x++) px[y * SIDE + x] = 255;
    char err[1024];
    ck_assert_msg(image_write_png(in_dir("tmp.png"), px, SIDE, SIDE, 1, err, sizeof err) == 0,
                  "%s", err);
    unsigned char *b = read_file(in_dir("tmp.png"), len);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(unlink(in_dir("tmp.png")), 0);
    return b;
}

static void refuse_image(const char *name, const char *faults, const char *what)
{
    assert_refused(run("predict --load good.model %s --grid grid.png", name), what, name, faults);
    /* Also after a good image: every image is read before anything is printed. */
    assert_refused(run("predict --load good.model digit.png %s --grid grid.png", name), what,
                   name, faults);
}

START_TEST(test_predict_bad_images)
{
    size_t len, plen;
    unsigned char *m = model_bytes(SIDE * SIDE, 10, &len);
    put_file("good.model", m, len);
    free(m);
    unsigned char *png = png_bytes(&plen);
    put_file("digit.png", png, plen);
    int st = run("predict --device host --load good.model digit.png");
    ck_assert_msg(st == 0 && strstr(out_text, "digit.png: "), "the good image is refused: %s",
                  err_text);

    put_file("empty.png", "", 0);
    refuse_image("empty.png", "empty", "empty file");
    for (int k = 1; k < 8; k++) {
        put_file("cut.png", png, plen * (size_t)k / 8);
        char what[64];
        snprintf(what, sizeof what, "PNG cut to %d/8", k);
        refuse_image("cut.png", "truncated|damaged|not a PNG", what);
    }
    put_file("cut.png", png, plen - 12);
    refuse_image("cut.png", "truncated|damaged", "PNG without its IEND chunk");
    unsigned char *flip = xmalloc(plen, "png copy");
    memcpy(flip, png, plen);
    flip[plen / 2] ^= 0x40;
    put_file("flip.png", flip, plen);
    refuse_image("flip.png", "damaged|not a PNG", "PNG with a bit flipped in its data");
    free(flip);
    unsigned char noise[4096];
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)(rand() ^ (int)(i * 131));
    put_file("noise.png", noise, sizeof noise);
    refuse_image("noise.png", "not a PNG, JPEG or PGM", "random bytes");
    put_file("text.jpg", "hello\n", 6);
    refuse_image("text.jpg", "not a PNG, JPEG or PGM", "a text file");
    put_file("huge.pgm", "P5 100000 100000 255\n\0\0\0\0", 25);
    refuse_image("huge.pgm", "too large|truncated|damaged", "PGM header of 10^10 pixels");
    sh("mkdir folder.png");
    refuse_image("folder.png", "Is a directory", "a directory");
    refuse_image("missing.png", "No such file", "a missing file");
    free(png);
}
END_TEST

/* A binary PGM shorter than its header says. stb_image 2.27 ignores the short read and returns
 * the rest of the pixels uninitialised, so this must be caught before stb decodes it. */
START_TEST(test_predict_truncated_pgm)
{
    size_t len;
    unsigned char *m = model_bytes(SIDE * SIDE, 10, &len);
    put_file("good.model", m, len);
    free(m);
    put_file("short.pgm", "P5 28 28 255\n\0\0\0\0", 17);
    assert_refused(run("predict --load good.model short.pgm --grid grid.png"),
                   "PGM with 4 of its 784 pixels", "short.pgm", "truncated|damaged");
    put_file("short.pgm", "P5 28 28 255\n", 13);
    assert_refused(run("predict --load good.model short.pgm --grid grid.png"),
                   "PGM with no pixels", "short.pgm", "truncated|damaged");
}
END_TEST

/* ---- flags out of range --------------------------------------------------------------- */

static const struct { const char *args, *needle; } bad_flags[] = {
    {"--lr 0", "--lr value '0' is out of range"},
    {"--lr -0.5", "--lr value '-0.5' is out of range"},
    {"--lr 1e-40", "--lr value '1e-40' is out of range"},
    {"--lr 2e6", "--lr value '2e6' is out of range"},
    {"--lr inf", "--lr takes a number"},
    {"--lr -inf", "--lr takes a number"},
    {"--lr nan", "--lr takes a number"},
    {"--lr 1e400", "--lr takes a number"},
    {"--lr 0x", "--lr takes a number"},
    {"--hidden 0", "--hidden takes widths"},
    {"--hidden -3", "--hidden takes widths"},
    {"--hidden 1000001", "--hidden takes widths"},
    {"--hidden 4,0", "--hidden takes widths"},
    {"--hidden 99999999999999999999", "--hidden takes widths"},
    {"--hidden 4,,4", "--hidden takes widths"},
    {"--batch 61", "--batch 61 is larger than the 60 training images"},
    {"--batch 1000000", "--batch 1000000 is larger than the 60 training images"},
    {"--train-limit 61", "--train-limit 61 is more than the 60 training images"},
    {"--train-limit 0", "--train-limit value '0' is out of range"},
    {"--test-limit 21", "--test-limit 21 is more than the 20 test images"},
    {"--train-limit 30 --batch 31", "--batch 31 is larger than the 30 training images"},
    {"--val 60", "--val 60 leaves no training images"},
    {"--epochs -1", "--epochs value '-1' is out of range"},
    {"--dropout 1", "--dropout value '1' is out of range"},
    {"--test-split 0", "--test-split value '0' is out of range"},
};

START_TEST(test_flags_out_of_range)
{
    int st = run("--data d %s --epochs 1 " OUTPUTS, bad_flags[_i].args);
    const char *flag = bad_flags[_i].needle;   /* the flag the message names */
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(flag, " "), flag);
    assert_refused(st, bad_flags[_i].args, name, bad_flags[_i].needle);
}
END_TEST

/* ---- runtime faults: divergence, memory ----------------------------------------------- */

/* lr 1e6 on two ReLU layers: the loss overflows to NaN within a few epochs on any device
 * (epoch 3 on PoCL and the host: the weights grow by ~lr per step, the logits by its cube).
 * Exit 1, a message naming the epoch and a smaller --lr, the last good checkpoint kept. */
START_TEST(test_divergence_keeps_last_checkpoint)
{
    int st = run("--data %s --train-limit 100 --test-limit 100 --hidden 16,16 --lr 1e6 "
                 "--epochs 8 --save out.model --checkpoint div.ckpt", mnist_dir());
    ck_assert_msg(st == 1, "exit %d, expected 1: %s", st, err_text);
    ck_assert_msg(count_lines(err_text) == 1, "%s", err_text);
    const char *at = strstr(err_text, "at epoch ");
    ck_assert_msg(at != NULL && strstr(err_text, "smaller --lr") &&
                  has_any(err_text, "nan|inf"), "%s", err_text);
    long epoch = atol(at + 9);
    ck_assert_msg(epoch >= 2 && epoch < 8, "diverged at epoch %ld: %s", epoch, err_text);
    ck_assert_msg(!exists("out.model"), "--save was written after divergence");
    model_file m;
    char err[1024];
    ck_assert_msg(model_load(in_dir("div.ckpt"), &m, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(m.epochs_done, (uint64_t)epoch - 1);
    for (size_t i = 0; i < m.arch.n_params; i++)
        ck_assert_msg(isfinite(m.params[i]), "checkpoint parameter %zu is %g", i, (double)m.params[i]);
    model_file_free(&m);
    st = run("--data %s --test-limit 100 --load div.ckpt --epochs 0", mnist_dir());
    ck_assert_msg(st == 0 && strstr(out_text, "test accuracy: "), "the checkpoint does not load: %s",
                  err_text);
}
END_TEST

/* A network far beyond memory: 784-10^6-10^6-10 (10^12 parameters, 4 TB). The allocation that
 * fails is named with its size, exit 1, no crash. (Under AddressSanitizer the allocator must
 * return NULL rather than abort: allocator_may_return_null=1, added here.) */
START_TEST(test_out_of_memory_is_reported)
{
    const char *old = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%sallocator_may_return_null=1", old ? old : "",
             old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int st = run("--data d --hidden 1000000,1000000 --epochs 1 " OUTPUTS);
    ck_assert_msg(st == 1, "exit %d, expected 1: %s", st, err_text);
    /* Not counted: AddressSanitizer's own "==PID==WARNING: ... failed to allocate" line. */
    int lines = 0;
    for (const char *p = err_text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        lines += strncmp(p, "==", 2) != 0;
    ck_assert_msg(lines == 1, "%s", err_text);
    ck_assert_msg(has_any(err_text, "out of host memory|out of device memory|largest single buffer"),
                  "%s", err_text);
    ck_assert_msg(has_any(err_text, " bytes)|GiB|TiB|MiB"), "no size: %s", err_text);
    ck_assert(!exists("out.model") && !exists("run.ckpt"));
}
END_TEST

/* ---- fuzz inputs ---------------------------------------------------------------------- */

/* Replays every file of tests/fuzz/corpus_KIND/ and every tests/fuzz/regress/KIND-* (inputs
 * that once crashed a reader) through the fuzz harness, in-process: a broken promise or a
 * sanitizer report fails the test. Run from the repository root, as `make test` does. */
static int replay(const char *folder, const char *prefix, int (*one)(const uint8_t *, size_t))
{
    DIR *d = opendir(folder);
    ck_assert_msg(d != NULL, "%s: missing (run the tests from the repository root)", folder);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
        size_t len;
        unsigned char *b = read_file(path, &len);
        ck_assert_msg(b != NULL, "cannot read %s", path);
        if (*prefix) fprintf(stderr, "replaying %s\n", path);   /* names the culprit of a crash */
        one(b, len);
        free(b);
        n++;
    }
    closedir(d);
    return n;
}

static const struct { const char *kind; int (*one)(const uint8_t *, size_t); } harness[] = {
    {"idx", fuzz_idx_one}, {"csv", fuzz_csv_one}, {"model", fuzz_model_one},
};

START_TEST(test_fuzz_corpus_and_regressions)
{
    char folder[64], prefix[16];
    snprintf(folder, sizeof folder, "tests/fuzz/corpus_%s", harness[_i].kind);
    ck_assert_int_gt(replay(folder, "", harness[_i].one), 0);
    snprintf(prefix, sizeof prefix, "%s-", harness[_i].kind);
    replay("tests/fuzz/regress", prefix, harness[_i].one);
}
END_TEST

Suite *malformed_suite(void)
{
    Suite *s = suite_create("malformed");
    TCase *tc = tcase_create("data");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_good_data_trains);
    tcase_add_test(tc, test_idx_truncated_anywhere);
    tcase_add_loop_test(tc, test_idx_forged_header, 0,
                        (int)(sizeof forged_headers / sizeof forged_headers[0]));
    tcase_add_test(tc, test_idx_counts_overflow_size_t);
    tcase_add_test(tc, test_idx_files_disagree);
    tcase_add_test(tc, test_idx_label_out_of_range);
    tcase_add_test(tc, test_idx_trailing_bytes);
    tcase_add_test(tc, test_idx_corrupt_gzip);
    tcase_add_test(tc, test_idx_empty_files);
    tcase_add_test(tc, test_idx_directory_instead_of_file);
    tcase_add_test(tc, test_idx_unreadable_files);
    tcase_add_loop_test(tc, test_csv_malformed, 0, (int)(sizeof bad_csv / sizeof bad_csv[0]));
    tcase_add_test(tc, test_csv_not_a_file);
    suite_add_tcase(s, tc);

    TCase *tm = tcase_create("models and images");
    tcase_add_checked_fixture(tm, setup, teardown);
    tcase_set_timeout(tm, 120);
    tcase_add_test(tm, test_model_good_file_loads);
    tcase_add_test(tm, test_model_truncated);
    tcase_add_test(tm, test_model_bit_flips);
    tcase_add_test(tm, test_model_forged_fields);
    tcase_add_test(tm, test_model_without_later_fields_loads);
    tcase_add_test(tm, test_model_huge_architecture);
    tcase_add_test(tm, test_model_wrong_kind_of_file);
    tcase_add_test(tm, test_model_architecture_disagrees);
    tcase_add_test(tm, test_model_corrupt_in_every_command);
    tcase_add_test(tm, test_predict_bad_images);
    tcase_add_test(tm, test_predict_truncated_pgm);
    suite_add_tcase(s, tm);

    TCase *tf = tcase_create("flags and runtime faults");
    tcase_add_checked_fixture(tf, setup, teardown);
    tcase_set_timeout(tf, 120);
    tcase_add_loop_test(tf, test_flags_out_of_range, 0, (int)(sizeof bad_flags / sizeof bad_flags[0]));
    tcase_add_test(tf, test_divergence_keeps_last_checkpoint);
    tcase_add_test(tf, test_out_of_memory_is_reported);
    suite_add_tcase(s, tf);

    TCase *tz = tcase_create("fuzz inputs");
    tcase_set_timeout(tz, 60);
    tcase_add_loop_test(tz, test_fuzz_corpus_and_regressions, 0,
                        (int)(sizeof harness / sizeof harness[0]));
    suite_add_tcase(s, tz);
    return s;
}
