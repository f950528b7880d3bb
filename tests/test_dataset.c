/* test_dataset.c: the IDX and CSV readers. Every test writes its own files into a fresh
 * mkdtemp folder under /tmp (removed after it, pass or fail): good files
 * with known contents read back exactly, and each fault returns -1 with a message naming the
 * file and the fault. The last case reads the real MNIST from $CLTRAIN_DATA (default
 * data/mnist, `make data`). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset.h"
#include "test_suites.h"
#include "support.h"

/* rootdir: one per test case, made and removed in the parent process (an unchecked fixture,
 * so it goes even when a test fails); tmpdir: a fresh folder inside it for each test. */
static char rootdir[64], tmpdir[128];

static void make_rootdir(void) { work_dir_make(rootdir, sizeof rootdir, "dataset"); }

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/t.XXXXXX", rootdir);
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(void)
{
    work_dir_remove(tmpdir);
    tmpdir[0] = 0;
}

static void remove_rootdir(void)
{
    work_dir_remove(rootdir);
    rootdir[0] = 0;
}

/* tmpdir/name, in one of 8 rotating buffers so a call can take several. */
static const char *tpath(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_raw(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(tpath(name), "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", tpath(name), strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *name, const void *data, size_t len)
{
    gzFile g = gzopen(tpath(name), "wb");
    ck_assert_msg(g != NULL, "gzopen %s", tpath(name));
    if (len > 0) ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

static void write_text(const char *name, const char *text)
{
    write_raw(name, text, strlen(text));
}

static unsigned char *slurp(const char *name, size_t *len)
{
    FILE *f = fopen(tpath(name), "rb");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 1);
    ck_assert(b != NULL);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A known pixel value for image i, position j. */
static unsigned char pixel_at(size_t i, size_t j)
{
    return (unsigned char)((i * 31 + j * 7 + 3) & 0xff);
}

/* An IDX image file in memory: header (magic 0x803, n, rows, cols), then pixel_at values. */
static unsigned char *idx_images(uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t px = (size_t)rows * cols;
    *len = 16 + n * px;
    unsigned char *b = malloc(*len);
    ck_assert(b != NULL);
    put_be32(b, 0x803);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < px; j++) b[16 + i * px + j] = pixel_at(i, j);
    return b;
}

/* An IDX label file in memory: header (magic 0x801, n), then labels (i * 3) % 10. */
static unsigned char *idx_labels(uint32_t n, size_t *len)
{
    *len = 8 + (size_t)n;
    unsigned char *b = malloc(*len);
    ck_assert(b != NULL);
    put_be32(b, 0x801);
    put_be32(b + 4, n);
    for (size_t i = 0; i < n; i++) b[8 + i] = (unsigned char)((i * 3) % 10);
    return b;
}

/* Writes a good image file and a good label file: 5 images of 4x3. */
static void write_good_pair(const char *images, const char *labels, int gz)
{
    size_t li, ll;
    unsigned char *bi = idx_images(5, 4, 3, &li), *bl = idx_labels(5, &ll);
    if (gz) {
        write_gz(images, bi, li);
        write_gz(labels, bl, ll);
    } else {
        write_raw(images, bi, li);
        write_raw(labels, bl, ll);
    }
    free(bi);
    free(bl);
}

static void check_good_set(const dataset *d)
{
    ck_assert_uint_eq(d->n, 5);
    ck_assert_int_eq(d->rows, 4);
    ck_assert_int_eq(d->cols, 3);
    ck_assert_int_eq(d->classes, 10);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_uint_eq(d->labels[i], (i * 3) % 10);
        for (size_t j = 0; j < 12; j++) ck_assert_uint_eq(d->pixels[i * 12 + j], pixel_at(i, j));
    }
}

/* Loads images/labels from tmpdir, expects -1 and a message holding both `file` (a name in
 * tmpdir) and `word`. */
static void expect_idx_fault(const char *images, const char *labels, const char *file,
                             const char *word)
{
    char err[DATASET_ERR_LEN] = "";
    dataset d;
    int rc = dataset_load_idx(tpath(images), tpath(labels), &d, err, sizeof err);
    ck_assert_msg(rc == -1, "expected a fault (%s) for %s, got rc %d", word, file, rc);
    ck_assert_msg(strstr(err, file) != NULL, "message does not name %s: %s", file, err);
    ck_assert_msg(strstr(err, word) != NULL, "message lacks '%s': %s", word, err);
    ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line: %s", err);
    ck_assert_ptr_null(d.pixels);
    ck_assert_ptr_null(d.labels);
}

/* Writes a good labels file "lab" for 5 images, then expects `word` for image bytes `b`. */
static void expect_image_bytes_fault(const unsigned char *b, size_t len, const char *word)
{
    size_t ll;
    unsigned char *bl = idx_labels(5, &ll);
    write_raw("lab", bl, ll);
    free(bl);
    write_raw("img", b, len);
    expect_idx_fault("img", "lab", "img", word);
}

/* ---- IDX: good files ------------------------------------------------------------------- */

START_TEST(idx_raw_round_trip)
{
    write_good_pair("img", "lab", 0);
    char err[DATASET_ERR_LEN] = "";
    dataset d;
    ck_assert_msg(dataset_load_idx(tpath("img"), tpath("lab"), &d, err, sizeof err) == 0, "%s",
                  err);
    check_good_set(&d);
    dataset_truncate(&d, 2);
    ck_assert_uint_eq(d.n, 2);
    dataset_truncate(&d, 9);
    ck_assert_uint_eq(d.n, 2);
    dataset_free(&d);
    ck_assert_ptr_null(d.pixels);
}
END_TEST

START_TEST(idx_gz_round_trip)
{
    write_good_pair("img.gz", "lab.gz", 1);
    char err[DATASET_ERR_LEN] = "";
    dataset d;
    ck_assert_msg(dataset_load_idx(tpath("img.gz"), tpath("lab.gz"), &d, err, sizeof err) == 0,
                  "%s", err);
    check_good_set(&d);
    dataset_free(&d);
    /* The plain name finds name.gz when the plain file is missing. */
    ck_assert_msg(dataset_load_idx(tpath("img"), tpath("lab"), &d, err, sizeof err) == 0, "%s",
                  err);
    check_good_set(&d);
    dataset_free(&d);
}
END_TEST

START_TEST(idx_gz_large)
{
    /* 3000 images of 28x28 (2.4 MB): the gzip buffer grows past its first 1 MiB. */
    size_t li, ll;
    unsigned char *bi = idx_images(3000, 28, 28, &li), *bl = idx_labels(3000, &ll);
    write_gz("img.gz", bi, li);
    write_raw("lab", bl, ll);
    char err[DATASET_ERR_LEN] = "";
    dataset d;
    ck_assert_msg(dataset_load_idx(tpath("img.gz"), tpath("lab"), &d, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_uint_eq(d.n, 3000);
    ck_assert_int_eq(memcmp(d.pixels, bi + 16, li - 16), 0);
    ck_assert_int_eq(memcmp(d.labels, bl + 8, ll - 8), 0);
    dataset_free(&d);
    free(bi);
    free(bl);
}
END_TEST

/* ---- IDX: faults ----------------------------------------------------------------------- */

START_TEST(idx_missing_file)
{
    write_good_pair("img", "lab", 0);
    expect_idx_fault("nope", "lab", "nope", "no such file");
    expect_idx_fault("img", "nolabels", "nolabels", "no such file");
    expect_idx_fault("img", "nolabels.gz", "nolabels.gz", "no such file");
}
END_TEST

START_TEST(idx_directory)
{
    write_good_pair("img", "lab", 0);
    ck_assert_int_eq(mkdir(tpath("adir"), 0700), 0);
    expect_idx_fault("adir", "lab", "adir", "directory");
    expect_idx_fault("img", "adir", "adir", "directory");
}
END_TEST

/* dataset_load_idx(images, labels) in a forked child that, when this process is root, first
 * drops to nobody (65534) and proves that it can no longer read what root can; returns its
 * rc with the message in err. */
static int load_unprivileged(const char *images, const char *labels, char *err, size_t len)
{
    char ip[256], lp[256];
    snprintf(ip, sizeof ip, "%s", tpath(images));
    snprintf(lp, sizeof lp, "%s", tpath(labels));
    /* nobody must reach the files: the mkdtemp folders are 0700. */
    ck_assert_int_eq(chmod(rootdir, 0755), 0);
    ck_assert_int_eq(chmod(tmpdir, 0755), 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        char msg[DATASET_ERR_LEN + 16] = "";
        int code = 0;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            snprintf(msg, sizeof msg, "x cannot drop root: %s", strerror(errno));
        } else if (geteuid() == 0 || access(lp, R_OK) == 0) {
            snprintf(msg, sizeof msg, "x still able to read %s: the premise failed", lp);
        } else {
            dataset d;
            char e[DATASET_ERR_LEN] = "";
            code = dataset_load_idx(ip, lp, &d, e, sizeof e);
            if (code == 0) dataset_free(&d);
            snprintf(msg, sizeof msg, "%d %s", code, e);
        }
        ssize_t w = write(fds[1], msg, strlen(msg) + 1);
        _exit(w > 0 ? 0 : 1);
    }
    close(fds[1]);
    char msg[DATASET_ERR_LEN + 16] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof msg - 1 && (r = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0) got += (size_t)r;
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the unprivileged child failed");
    ck_assert_msg(msg[0] != 'x', "%s", msg + 2);
    char *space = strchr(msg, ' ');
    ck_assert_ptr_nonnull(space);
    snprintf(err, len, "%s", space + 1);
    return atoi(msg);
}

START_TEST(idx_unreadable)
{
    write_good_pair("img", "lab", 0);
    /* A regular file used as a folder: stat fails with ENOTDIR, as root too. */
    expect_idx_fault("img/child", "lab", "img/child", "cannot read");
    /* Root reads mode-000 files: the load runs in a child that drops to nobody when the
     * suite runs as root (CI always does), so the check happens either way. */
    ck_assert_int_eq(chmod(tpath("lab"), 0), 0);
    char err[DATASET_ERR_LEN] = "";
    int rc = load_unprivileged("img", "lab", err, sizeof err);
    ck_assert_msg(rc == -1, "a mode-000 labels file was read (rc %d)", rc);
    ck_assert_msg(strstr(err, "lab") && strstr(err, "cannot open"), "%s", err);
    ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line: %s", err);
}
END_TEST

START_TEST(idx_empty_file)
{
    expect_image_bytes_fault((const unsigned char *)"", 0, "empty");
    write_gz("img.gz", "", 0);
    expect_idx_fault("img.gz", "lab", "img.gz", "empty");
}
END_TEST

START_TEST(idx_wrong_magic)
{
    size_t li;
    unsigned char *bi = idx_images(5, 4, 3, &li);
    put_be32(bi, 0x12345678);
    expect_image_bytes_fault(bi, li, "magic");
    put_be32(bi, 0x00000903);   /* data type 0x09 (signed byte) */
    expect_image_bytes_fault(bi, li, "magic");
    free(bi);
}
END_TEST

START_TEST(idx_wrong_dimensions)
{
    size_t li, ll;
    unsigned char *bi = idx_images(5, 4, 3, &li), *bl = idx_labels(5, &ll);
    /* A labels file where the images belong, and the other way round. */
    expect_image_bytes_fault(bl, ll, "dimensions");
    write_raw("img", bi, li);
    write_raw("lab", bi, li);
    expect_idx_fault("img", "lab", "lab", "dimensions");
    put_be32(bi, 0x802);
    expect_image_bytes_fault(bi, li, "dimensions");
    free(bi);
    free(bl);
}
END_TEST

START_TEST(idx_zero_or_absurd_sizes)
{
    size_t li;
    unsigned char *bi = idx_images(5, 4, 3, &li);
    put_be32(bi + 4, 0);
    expect_image_bytes_fault(bi, li, "0 images");
    put_be32(bi + 4, 200000000);
    expect_image_bytes_fault(bi, li, "limit");
    put_be32(bi + 4, 5);
    put_be32(bi + 8, 0);
    expect_image_bytes_fault(bi, li, "1..4096");
    put_be32(bi + 8, 4);
    put_be32(bi + 12, 5000);
    expect_image_bytes_fault(bi, li, "1..4096");
    put_be32(bi + 12, 0xffffffffu);
    expect_image_bytes_fault(bi, li, "1..4096");
    /* The largest header the limits allow, on a 76-byte file: refused as truncated, without
     * allocating the 1.6 PB it describes. */
    put_be32(bi + 4, 100000000);
    put_be32(bi + 8, 4096);
    put_be32(bi + 12, 4096);
    expect_image_bytes_fault(bi, li, "truncated");
    /* Through gzip the size is only known by decompressing: with a labels file that agrees
     * on the count, the image buffer grows with the data read and stops at its end. */
    write_gz("img.gz", bi, li);
    size_t l5;
    unsigned char *b5 = idx_labels(5, &l5);
    put_be32(b5 + 4, 100000000);
    write_gz("lab.gz", b5, l5);
    free(b5);
    expect_idx_fault("img.gz", "lab.gz", "img.gz", "truncated");
    /* A labels file that says 0 labels. */
    size_t ll;
    unsigned char *bl = idx_labels(5, &ll);
    put_be32(bl + 4, 0);
    free(bi);
    bi = idx_images(5, 4, 3, &li);
    write_raw("img", bi, li);
    write_raw("lab", bl, ll);
    expect_idx_fault("img", "lab", "lab", "0 labels");
    free(bi);
    free(bl);
}
END_TEST

START_TEST(idx_truncated_or_long)
{
    size_t li;
    unsigned char *bi = idx_images(5, 4, 3, &li);
    expect_image_bytes_fault(bi, li - 1, "truncated");
    expect_image_bytes_fault(bi, 10, "truncated");   /* inside the header */
    expect_image_bytes_fault(bi, 3, "truncated");
    expect_image_bytes_fault(bi, li - 1, "(76 bytes), file has 75 bytes");
    unsigned char *longer = malloc(li + 1);
    memcpy(longer, bi, li);
    longer[li] = 0;
    expect_image_bytes_fault(longer, li + 1, "longer");
    /* The same through gzip: the decompressed size is what counts. */
    write_gz("img.gz", bi, li - 1);
    expect_idx_fault("img.gz", "lab", "img.gz", "truncated");
    write_gz("img.gz", longer, li + 1);
    expect_idx_fault("img.gz", "lab", "img.gz", "longer");
    free(longer);
    free(bi);
}
END_TEST

START_TEST(idx_count_mismatch)
{
    size_t li, ll;
    unsigned char *bi = idx_images(5, 4, 3, &li), *bl = idx_labels(4, &ll);
    write_raw("img", bi, li);
    write_raw("lab", bl, ll);
    expect_idx_fault("img", "lab", "lab", "differs");
    expect_idx_fault("img", "lab", "img", "image count 5");
    free(bi);
    free(bl);
}
END_TEST

/* Any byte is a label: the class count is the largest + 1; --classes N (set_classes) refuses a
 * label >= N naming the file, the index and the value. */
START_TEST(idx_label_out_of_range)
{
    size_t li, ll;
    unsigned char *bi = idx_images(5, 4, 3, &li), *bl = idx_labels(5, &ll);
    bl[8 + 3] = 10;
    write_raw("img", bi, li);
    write_raw("lab", bl, ll);
    char err[DATASET_ERR_LEN] = "";
    dataset_pair p = {0};
    ck_assert_msg(dataset_load_idx(tpath("img"), tpath("lab"), &p.train, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(p.train.classes, 11);
    snprintf(p.label_file[0], sizeof p.label_file[0], "%s", tpath("lab"));
    ck_assert_int_eq(dataset_pair_set_classes(&p, 10, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "lab: label 10 at index 3 is outside 0..9 (10 classes)") != NULL, "%s", err);
    ck_assert_int_eq(dataset_pair_set_classes(&p, 11, err, sizeof err), 0);
    ck_assert_int_eq(p.train.classes, 11);
    ck_assert_int_eq(p.test.classes, 11);
    ck_assert_int_eq(dataset_pair_set_classes(&p, 1, err, sizeof err), -1);
    ck_assert_int_eq(dataset_pair_set_classes(&p, 257, err, sizeof err), -1);
    dataset_pair_free(&p);
    bl[8 + 3] = 255;
    write_gz("lab.gz", bl, ll);
    ck_assert_msg(dataset_load_idx(tpath("img"), tpath("lab.gz"), &p.train, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(p.train.classes, 256);
    dataset_free(&p.train);
    /* All labels 0: still two classes. */
    memset(bl + 8, 0, 5);
    write_raw("lab", bl, ll);
    ck_assert_msg(dataset_load_idx(tpath("img"), tpath("lab"), &p.train, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(p.train.classes, 2);
    dataset_free(&p.train);
    free(bi);
    free(bl);
}
END_TEST

START_TEST(idx_gz_corrupt)
{
    write_good_pair("img.gz", "lab.gz", 1);
    write_good_pair("x", "lab", 0);   /* plain labels */
    size_t len;
    unsigned char *g = slurp("img.gz", &len);
    ck_assert_uint_gt(len, 30);
    /* Deflate data that starts with an invalid block type. */
    unsigned char *bad = malloc(len);
    memcpy(bad, g, len);
    memset(bad + 10, 0xff, len - 18);
    write_raw("img.gz", bad, len);
    expect_idx_fault("img.gz", "lab", "img.gz", "corrupt");
    /* A wrong CRC in the trailer: caught by reading one byte past the data. */
    memcpy(bad, g, len);
    bad[len - 8] ^= 0x55;
    write_raw("img.gz", bad, len);
    expect_idx_fault("img.gz", "lab", "img.gz", "corrupt");
    /* Cut in half, and cut just before the trailer. */
    write_raw("img.gz", g, len / 2);
    expect_idx_fault("img.gz", "lab", "img.gz", "truncated");
    write_raw("img.gz", g, len - 8);
    expect_idx_fault("img.gz", "lab", "img.gz", "gzip stream is truncated");
    /* The gzip magic alone. */
    write_raw("img.gz", g, 2);
    expect_idx_fault("img.gz", "lab", "img.gz", "gzip");
    free(bad);
    free(g);
}
END_TEST

/* ---- CSV ------------------------------------------------------------------------------- */

/* Header for 2x2 images, then 5 rows; row r has label r % 10 and pixels r*10+k. */
static const char good_csv[] =
    "label,pixel0,pixel1,pixel2,pixel3\n"
    "0,0,1,2,3\n"
    "1,10,11,12,13\r\n"
    "2,20,21,22,23\n"
    "\n"
    "3,30,31,32,255\n"
    "9,40,41,42,43";

START_TEST(csv_good)
{
    write_text("train.csv", good_csv);
    char err[DATASET_ERR_LEN] = "";
    dataset_pair p;
    ck_assert_msg(dataset_load_csv(tpath("train.csv"), 2, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(p.train.n, 3);
    ck_assert_uint_eq(p.test.n, 2);
    ck_assert_int_eq(p.train.rows, 2);
    ck_assert_int_eq(p.train.cols, 2);
    ck_assert_int_eq(p.test.rows, 2);
    ck_assert_int_eq(p.test.classes, 10);
    for (int r = 0; r < 3; r++) {
        ck_assert_uint_eq(p.train.labels[r], r);
        for (int k = 0; k < 4; k++) ck_assert_uint_eq(p.train.pixels[r * 4 + k], r * 10 + k);
    }
    ck_assert_uint_eq(p.test.labels[0], 3);
    ck_assert_uint_eq(p.test.labels[1], 9);
    ck_assert_uint_eq(p.test.pixels[3], 255);
    ck_assert_uint_eq(p.test.pixels[4], 40);
    ck_assert_str_eq(p.source, tpath("train.csv"));
    dataset_pair_free(&p);

    /* dataset_load picks the CSV reader for a .csv path. */
    ck_assert_msg(dataset_load(tpath("train.csv"), 1, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(p.train.n, 4);
    ck_assert_uint_eq(p.test.n, 1);
    dataset_pair_free(&p);

    /* Label 9 is in the test rows only; both sets get the larger count. A label over
     * --classes is named with its row among the file's data rows. */
    ck_assert_msg(dataset_load(tpath("train.csv"), 2, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(p.train.classes, 10);
    ck_assert_int_eq(p.test.classes, 10);
    ck_assert_int_eq(dataset_pair_set_classes(&p, 5, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "train.csv: label 9 at index 4 is outside 0..4 (5 classes)") != NULL, "%s", err);
    dataset_pair_free(&p);
}
END_TEST

static void expect_csv_fault(const char *text, size_t split, const char *where,
                             const char *word)
{
    write_text("d.csv", text);
    char err[DATASET_ERR_LEN] = "";
    dataset_pair p;
    int rc = dataset_load_csv(tpath("d.csv"), split, &p, err, sizeof err);
    ck_assert_msg(rc == -1, "expected a fault (%s), got rc %d", word, rc);
    ck_assert_msg(strstr(err, where) != NULL, "message does not name %s: %s", where, err);
    ck_assert_msg(strstr(err, word) != NULL, "message lacks '%s': %s", word, err);
    ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line: %s", err);
    ck_assert_ptr_null(p.train.pixels);
    ck_assert_ptr_null(p.test.pixels);
}

START_TEST(csv_faults)
{
    const char *h = "label,pixel0,pixel1,pixel2,pixel3\n";
    char t[256];
    snprintf(t, sizeof t, "%s0,1,2,3,4\n1,1,2,3\n2,1,2,3,4\n", h);
    expect_csv_fault(t, 1, "d.csv:3", "4 fields, expected 5");
    snprintf(t, sizeof t, "%s0,1,2,3,4\n1,1,2,3,4,5\n", h);
    expect_csv_fault(t, 1, "d.csv:3", "6 fields");
    snprintf(t, sizeof t, "%s0,1,2,3,4\n1,1,256,3,4\n", h);
    expect_csv_fault(t, 1, "d.csv:3", "0..255");
    snprintf(t, sizeof t, "%s0,1,2,3,4\n1,1,2,3,99999999999999999999\n", h);
    expect_csv_fault(t, 1, "d.csv:3", "0..255");
    snprintf(t, sizeof t, "%s0,1,2,12a,4\n1,1,2,3,4\n", h);
    expect_csv_fault(t, 1, "d.csv:2", "'12a'");
    snprintf(t, sizeof t, "%s0,1,2,-3,4\n1,1,2,3,4\n", h);
    expect_csv_fault(t, 1, "d.csv:2", "expected an integer");
    snprintf(t, sizeof t, "%s0,1,,3,4\n1,1,2,3,4\n", h);
    expect_csv_fault(t, 1, "d.csv:2", "expected an integer");
    snprintf(t, sizeof t, "%s0,1,2,3,4\n256,1,2,3,4\n", h);
    expect_csv_fault(t, 1, "d.csv:3", "label 256 is outside 0..255");
    expect_csv_fault("label,a,b,c\n0,1,2,3\n1,1,2,3\n", 1, "d.csv:1", "square");
    expect_csv_fault("label\n0\n1\n", 1, "d.csv:1", "square");
    expect_csv_fault("0,1,2,3,4\n1,1,2,3,4\n", 1, "d.csv:1", "header");
    expect_csv_fault(h, 1, "d.csv", "no data rows");
    expect_csv_fault("", 1, "d.csv", "empty");
    snprintf(t, sizeof t, "%s0,1,2,3,4\n1,1,2,3,4\n", h);
    expect_csv_fault(t, 0, "d.csv", "--test-split");
    expect_csv_fault(t, 2, "d.csv", "--test-split");
    write_raw("bin.csv", "\0\0\x08\x03", 4);
    char err[DATASET_ERR_LEN];
    dataset_pair p;
    ck_assert_int_eq(dataset_load_csv(tpath("bin.csv"), 1, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "binary") != NULL, "%s", err);
    ck_assert_int_eq(dataset_load_csv(tpath("none.csv"), 1, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "none.csv: no such file") != NULL, "%s", err);
    ck_assert_int_eq(mkdir(tpath("dir.csv"), 0700), 0);
    ck_assert_int_eq(dataset_load_csv(tpath("dir.csv"), 1, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "directory") != NULL, "%s", err);
}
END_TEST

/* ---- folders --------------------------------------------------------------------------- */

static void write_folder(const char *dir, uint32_t test_rows)
{
    char a[256], b[256];
    size_t li, ll;
    ck_assert_int_eq(mkdir(tpath(dir), 0700), 0);
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", dir);
    unsigned char *bi = idx_images(5, 4, 3, &li), *bl = idx_labels(5, &ll);
    write_raw(a, bi, li);   /* train images raw, labels gzip; test the other way round */
    write_gz(b, bl, ll);
    free(bi);
    free(bl);
    bi = idx_images(2, test_rows, 3, &li);
    bl = idx_labels(2, &ll);
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", dir);
    write_gz(a, bi, li);
    write_raw(b, bl, ll);
    free(bi);
    free(bl);
}

START_TEST(folder_load)
{
    write_folder("set", 4);
    char err[DATASET_ERR_LEN] = "";
    dataset_pair p;
    ck_assert_msg(dataset_load(tpath("set"), 0, &p, err, sizeof err) == 0, "%s", err);
    check_good_set(&p.train);
    ck_assert_uint_eq(p.test.n, 2);
    ck_assert_int_eq(p.test.rows, 4);
    ck_assert_str_eq(p.source, tpath("set"));

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert(f != NULL);
    dataset_print_summary(&p, f);
    fclose(f);
    ck_assert_msg(strstr(text, tpath("set")) != NULL, "%s", text);
    ck_assert_msg(strstr(text, "5 images of 4x3") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "2 images of 4x3") != NULL, "%s", text);
    /* Labels 0 3 6 9 2 (train), 0 3 (test): 10 classes for both. */
    ck_assert_msg(strstr(text, "10 classes, per label: 1 0 1 1 0 0 1 0 0 1\n") != NULL, "%s", text);
    free(text);
    dataset_pair_free(&p);
}
END_TEST

/* predict --data's reader: a label-less Kaggle test.csv, a labelled CSV, a row that is not
 * square, an IDX images file alone, a folder's test set. */
START_TEST(images_for_predict)
{
    char err[DATASET_ERR_LEN] = "";
    dataset d;
    int labelled = -1;
    write_text("test.csv", "pixel0,pixel1,pixel2,pixel3\n0,1,2,3\n\n10,11,12,255\r\n");
    ck_assert_msg(dataset_load_images(tpath("test.csv"), &d, &labelled, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(labelled, 0);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_int_eq(d.rows, 2);
    ck_assert_int_eq(d.cols, 2);
    ck_assert_uint_eq(d.pixels[3], 3);
    ck_assert_uint_eq(d.pixels[7], 255);
    ck_assert_uint_eq(d.labels[0], 0);
    ck_assert_uint_eq(d.labels[1], 0);
    dataset_free(&d);

    write_text("train.csv", "\"Label\",pixel0,pixel1,pixel2\n7,1,2,3\n30,4,5,6\n");
    ck_assert_msg(dataset_load_images(tpath("train.csv"), &d, &labelled, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(labelled, 1);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_int_eq(d.rows, 1);   /* 3 pixels: not square, kept as a row */
    ck_assert_int_eq(d.cols, 3);
    ck_assert_uint_eq(d.labels[1], 30);
    ck_assert_int_eq(d.classes, 31);
    ck_assert_uint_eq(d.pixels[5], 6);
    dataset_free(&d);

    write_text("bad.csv", "pixel0,pixel1\n1,2\n3\n");
    ck_assert_int_eq(dataset_load_images(tpath("bad.csv"), &d, &labelled, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "bad.csv:3") && strstr(err, "1 fields, expected 2"), "%s", err);

    write_good_pair("img", "lab", 0);
    ck_assert_msg(dataset_load_images(tpath("img"), &d, &labelled, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(labelled, 0);
    ck_assert_uint_eq(d.n, 5);
    ck_assert_int_eq(d.rows, 4);
    ck_assert_uint_eq(d.pixels[13], pixel_at(1, 1));
    dataset_free(&d);
    ck_assert_int_eq(dataset_load_images(tpath("lab"), &d, &labelled, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "lab") && strstr(err, "labels file"), "%s", err);

    write_folder("set", 4);
    ck_assert_msg(dataset_load_images(tpath("set"), &d, &labelled, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(labelled, 1);
    ck_assert_uint_eq(d.n, 2);   /* the test set */
    dataset_free(&d);
}
END_TEST

START_TEST(folder_faults)
{
    char err[DATASET_ERR_LEN] = "";
    dataset_pair p;
    ck_assert_int_eq(dataset_load(tpath("absent"), 0, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "absent") && strstr(err, "make data"), "%s", err);

    write_folder("mixed", 5);   /* test images 5x3, train 4x3 */
    ck_assert_int_eq(dataset_load(tpath("mixed"), 0, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "mixed/train-images-idx3-ubyte") && strstr(err, "same size"),
                  "%s", err);
    ck_assert_ptr_null(p.train.pixels);

    ck_assert_int_eq(mkdir(tpath("partial"), 0700), 0);
    ck_assert_int_eq(dataset_load(tpath("partial"), 0, &p, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "partial/train-images-idx3-ubyte") && strstr(err, "no such file"),
                  "%s", err);
}
END_TEST

/* ---- the real MNIST -------------------------------------------------------------------- */

START_TEST(real_mnist)
{
    dataset_pair p;
    mnist_load(&p);   /* CLTRAIN_DATA, default data/mnist */
    ck_assert_uint_eq(p.train.n, 60000);
    ck_assert_uint_eq(p.test.n, 10000);
    ck_assert_int_eq(p.train.rows, 28);
    ck_assert_int_eq(p.train.cols, 28);
    ck_assert_int_eq(p.test.rows, 28);
    ck_assert_int_eq(p.test.cols, 28);
    size_t ones = 0, fives = 0;
    for (size_t i = 0; i < p.train.n; i++) ones += p.train.labels[i] == 1;
    for (size_t i = 0; i < p.test.n; i++) fives += p.test.labels[i] == 5;
    ck_assert_uint_eq(ones, 6742);
    ck_assert_uint_eq(fives, 892);
    ck_assert_uint_eq(p.train.labels[0], 5);
    dataset_pair_free(&p);
}
END_TEST

Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("idx");
    tcase_add_unchecked_fixture(tc, make_rootdir, remove_rootdir);
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, idx_raw_round_trip);
    tcase_add_test(tc, idx_gz_round_trip);
    tcase_add_test(tc, idx_gz_large);
    tcase_add_test(tc, idx_missing_file);
    tcase_add_test(tc, idx_directory);
    tcase_add_test(tc, idx_unreadable);
    tcase_add_test(tc, idx_empty_file);
    tcase_add_test(tc, idx_wrong_magic);
    tcase_add_test(tc, idx_wrong_dimensions);
    tcase_add_test(tc, idx_zero_or_absurd_sizes);
    tcase_add_test(tc, idx_truncated_or_long);
    tcase_add_test(tc, idx_count_mismatch);
    tcase_add_test(tc, idx_label_out_of_range);
    tcase_add_test(tc, idx_gz_corrupt);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_add_unchecked_fixture(tc, make_rootdir, remove_rootdir);
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, csv_good);
    tcase_add_test(tc, csv_faults);
    suite_add_tcase(s, tc);

    tc = tcase_create("folder");
    tcase_add_unchecked_fixture(tc, make_rootdir, remove_rootdir);
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, folder_load);
    tcase_add_test(tc, folder_faults);
    tcase_add_test(tc, images_for_predict);
    tcase_add_test(tc, real_mnist);
    suite_add_tcase(s, tc);
    return s;
}
