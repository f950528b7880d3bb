/* dataset.c: MNIST-style data sets from IDX files (raw or gzip) and the Kaggle CSV.
 *
 * IDX (http://yann.lecun.com/exdb/mnist/): a big-endian u32 magic 0x000008DD (0x08: unsigned
 * bytes, DD: number of dimensions), DD big-endian u32 sizes, then the bytes. Images are
 * (n, rows, cols), labels are (n).
 *
 * Every header is checked (magic, dimensions, sizes, the file's length) before anything is
 * allocated from it; a gzip file is read into a buffer that grows with the data actually
 * decompressed and never past the size its header implies plus one byte. Every fault is one
 * line in `err`: the file, what is wrong, what was expected. */
#include "dataset.h"

#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Labels are bytes, so at most 256 classes; a data set's own count is its largest label + 1,
 * and never below 2 (a one-class classifier has nothing to learn). */
#define MAX_CLASSES 256
#define MIN_CLASSES 2
#define MAX_SIDE 4096u             /* rows and cols */
#define MAX_IMAGES 100000000u      /* images or labels in one file */
#define IDX_UBYTE 0x08u
#define PATH_LEN 4096


static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The class count that `n` labels imply. */
static int classes_of(const uint8_t *labels, size_t n)
{
    int top = MIN_CLASSES - 1;
    for (size_t i = 0; i < n; i++)
        if (labels[i] > top) top = labels[i];
    return top + 1;
}

/* ---- one input file, raw or gzip ------------------------------------------------------- */

typedef struct {
    char path[PATH_LEN];   /* the file opened: the path given, or path.gz */
    FILE *raw;             /* exactly one of raw and gz is open */
    gzFile gz;
    uintmax_t raw_size;    /* bytes on disk, for a raw file */
} stream;

static void stream_close(stream *s)
{
    if (s->raw) fclose(s->raw);
    if (s->gz) gzclose_r(s->gz);
    s->raw = NULL;
    s->gz = NULL;
}

/* Opens `path`, or `path.gz` when `path` is absent; gzip is recognised by its magic bytes, so
 * the name does not matter. Refuses missing files, folders and anything not a regular file. */
static int stream_open(stream *s, const char *path, const char *what, char *err, size_t errlen)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    if (strlen(path) + 4 >= sizeof s->path)
        return fail_msg(err, errlen, "%s: path is too long (%zu bytes)", path, strlen(path));
    strcpy(s->path, path);
    if (stat(s->path, &st) != 0) {
        int e = errno;
        if (e != ENOENT) return fail_msg(err, errlen, "%s: cannot read: %s", path, strerror(e));
        if (ends_with(path, ".gz")) return fail_msg(err, errlen, "%s: no such file", path);
        snprintf(s->path, sizeof s->path, "%s.gz", path);
        if (stat(s->path, &st) != 0) {
            e = errno;
            if (e == ENOENT)
                return fail_msg(err, errlen, "%s: no such file (nor %s.gz), expected %s", path, path,
                            what);
            return fail_msg(err, errlen, "%s: cannot read: %s", s->path, strerror(e));
        }
    }
    if (S_ISDIR(st.st_mode))
        return fail_msg(err, errlen, "%s: is a directory, expected %s", s->path, what);
    if (!S_ISREG(st.st_mode))
        return fail_msg(err, errlen, "%s: is not a regular file, expected %s", s->path, what);

    s->raw = fopen(s->path, "rb");
    if (!s->raw) return fail_msg(err, errlen, "%s: cannot open: %s", s->path, strerror(errno));
    unsigned char magic[2];
    size_t got = fread(magic, 1, sizeof magic, s->raw);
    if (ferror(s->raw)) {
        int e = errno;
        stream_close(s);
        return fail_msg(err, errlen, "%s: cannot read: %s", s->path, strerror(e));
    }
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        fclose(s->raw);
        s->raw = NULL;
        s->gz = gzopen(s->path, "rb");
        if (!s->gz) return fail_msg(err, errlen, "%s: cannot open: %s", s->path, strerror(errno));
        gzbuffer(s->gz, 1u << 17);
    } else {
        rewind(s->raw);
        s->raw_size = (uintmax_t)st.st_size;
    }
    return 0;
}

/* zlib's messages start with "path: "; keeps the part after it. */
static const char *gz_message(gzFile gz, const char *path, int *errnum)
{
    const char *msg = gzerror(gz, errnum);
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    return msg;
}

/* Reads up to len bytes into buf; *got receives how many (fewer only at the end of the data).
 * Returns -1 on a read error or a corrupt or truncated gzip stream. */
static int stream_read(stream *s, void *buf, size_t len, size_t *got, char *err, size_t errlen)
{
    *got = 0;
    if (s->raw) {
        *got = fread(buf, 1, len, s->raw);
        if (ferror(s->raw))
            return fail_msg(err, errlen, "%s: cannot read: %s", s->path, strerror(errno));
        return 0;
    }
    unsigned char *p = buf;
    while (*got < len) {
        size_t chunk = len - *got;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(s->gz, p + *got, (unsigned)chunk);
        int errnum = Z_OK;
        const char *msg = gz_message(s->gz, s->path, &errnum);
        if (r > 0) *got += (size_t)r;
        if (r < 0 || errnum != Z_OK) {
            if (errnum == Z_BUF_ERROR)
                return fail_msg(err, errlen, "%s: gzip stream is truncated (%s) after %zu bytes, "
                            "expected a complete gzip file", s->path, msg, *got);
            if (errnum == Z_ERRNO)
                return fail_msg(err, errlen, "%s: cannot read: %s", s->path, strerror(errno));
            return fail_msg(err, errlen, "%s: gzip stream is corrupt (%s), expected a valid gzip "
                        "file", s->path, msg);
        }
        if (r == 0) break;
    }
    return 0;
}

/* "file has N bytes" or, for gzip, "decompressed data has N bytes". */
static const char *size_noun(const stream *s)
{
    return s->gz ? "decompressed data" : "file";
}

/* ---- IDX ------------------------------------------------------------------------------- */

/* What an IDX header says: n items of rows*cols bytes (labels: rows = cols = 1). */
typedef struct {
    int dims;              /* 3 for images, 1 for labels */
    size_t n;
    unsigned rows, cols;
    size_t payload;        /* n * rows * cols */
    size_t total;          /* header + payload */
    char desc[128];        /* "60000 images of 28x28 (47040016 bytes)" */
} idx_header;

/* Opens an IDX file of unsigned bytes with `dims` dimensions and checks its header, and, for a
 * raw file, its exact size. Allocates nothing. On success the stream is positioned at the
 * data; on failure it is closed. */
static int idx_open(stream *s, idx_header *h, const char *path, int dims, char *err,
                    size_t errlen)
{
    const char *kind = dims == 3 ? "images" : "labels";
    char what[64];
    snprintf(what, sizeof what, "an IDX %s file", kind);
    memset(h, 0, sizeof *h);
    h->dims = dims;
    if (stream_open(s, path, what, err, errlen) != 0) return -1;

    unsigned char hdr[16];
    size_t hdr_bytes = 4 + 4 * (size_t)dims, got;
    const char *p = s->path;
    int rc = -1;
    if (stream_read(s, hdr, hdr_bytes, &got, err, errlen) != 0) goto out;
    if (got == 0) {
        fail_msg(err, errlen, "%s: file is empty, expected %s", p, what);
        goto out;
    }
    if (got < 4) {
        fail_msg(err, errlen, "%s: file is truncated: an IDX header needs %zu bytes, %s has %zu",
             p, hdr_bytes, size_noun(s), got);
        goto out;
    }
    uint32_t magic = be32(hdr), want = IDX_UBYTE << 8 | (uint32_t)dims;
    if (magic != want) {
        if (hdr[0] == 0 && hdr[1] == 0 && hdr[2] == IDX_UBYTE)
            fail_msg(err, errlen, "%s: wrong number of dimensions: magic number 0x%08X says %u, "
                 "expected %d (%s%s)", p, (unsigned)magic, hdr[3], dims,
                 dims == 3 ? "n, rows, cols" : "n",
                 hdr[3] == 1 ? "; this looks like a labels file" :
                 hdr[3] == 3 ? "; this looks like an images file" : "");
        else
            fail_msg(err, errlen, "%s: wrong magic number 0x%08X, expected 0x%08X (%s of unsigned "
                 "bytes)", p, (unsigned)magic, (unsigned)want, what);
        goto out;
    }
    if (got < hdr_bytes) {
        fail_msg(err, errlen, "%s: file is truncated: an IDX header needs %zu bytes, %s has %zu",
             p, hdr_bytes, size_noun(s), got);
        goto out;
    }

    uint32_t n = be32(hdr + 4);
    h->rows = dims == 3 ? be32(hdr + 8) : 1;
    h->cols = dims == 3 ? be32(hdr + 12) : 1;
    if (n == 0) {
        fail_msg(err, errlen, "%s: header says 0 %s, expected at least 1", p, kind);
        goto out;
    }
    if (n > MAX_IMAGES) {
        fail_msg(err, errlen, "%s: header says %lu %s, more than the limit of %u (corrupt header?)",
             p, (unsigned long)n, kind, MAX_IMAGES);
        goto out;
    }
    if (h->rows == 0 || h->cols == 0 || h->rows > MAX_SIDE || h->cols > MAX_SIDE) {
        fail_msg(err, errlen, "%s: header says images of %ux%u, expected rows and cols in 1..%u",
             p, h->rows, h->cols, MAX_SIDE);
        goto out;
    }
    h->n = n;
    size_t item;
    if (!mul_size(h->rows, h->cols, &item) || !mul_size(h->n, item, &h->payload) ||
        h->payload > SIZE_MAX - hdr_bytes) {
        fail_msg(err, errlen, "%s: header says %zu %s of %ux%u, too many bytes for size_t", p, h->n,
             kind, h->rows, h->cols);
        goto out;
    }
    h->total = h->payload + hdr_bytes;
    if (dims == 3)
        snprintf(h->desc, sizeof h->desc, "%zu images of %ux%u (%zu bytes)", h->n, h->rows,
                 h->cols, h->total);
    else
        snprintf(h->desc, sizeof h->desc, "%zu labels (%zu bytes)", h->n, h->total);

    if (s->raw && s->raw_size < h->total) {
        fail_msg(err, errlen, "%s: file is truncated: header says %s, file has %ju bytes", p,
             h->desc, s->raw_size);
        goto out;
    }
    if (s->raw && s->raw_size > h->total) {
        fail_msg(err, errlen, "%s: file is longer than its header says: header says %s, file has "
             "%ju bytes", p, h->desc, s->raw_size);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) stream_close(s);
    return rc;
}

/* Reads the h->payload bytes after the header into a new buffer, and checks that nothing
 * follows them. A gzip buffer grows with what is decompressed, up to h->payload. Closes the
 * stream either way. */
static int idx_read_payload(stream *s, const idx_header *h, uint8_t **out, char *err,
                            size_t errlen)
{
    size_t hdr_bytes = h->total - h->payload, cap, have = 0, got;
    int rc = -1;
    *out = NULL;
    cap = s->raw || h->payload < (1u << 20) ? h->payload : (size_t)1 << 20;
    uint8_t *buf = xmalloc(cap, "IDX data");
    for (;;) {
        if (stream_read(s, buf + have, cap - have, &got, err, errlen) != 0) goto out;
        have += got;
        if (have < cap || cap == h->payload) break;
        cap = cap > h->payload / 2 ? h->payload : 2 * cap;
        buf = xrealloc(buf, cap, "IDX data");
    }
    if (have < h->payload) {
        fail_msg(err, errlen, "%s: file is truncated: header says %s, %s has %zu bytes", s->path,
             h->desc, size_noun(s), hdr_bytes + have);
        goto out;
    }
    /* One more byte: detects trailing data and, for gzip, reads the stream's end so its CRC
     * and length are checked. */
    unsigned char extra;
    if (stream_read(s, &extra, 1, &got, err, errlen) != 0) goto out;
    if (got != 0) {
        fail_msg(err, errlen, "%s: file is longer than its header says: header says %s, %s has "
             "more", s->path, h->desc, size_noun(s));
        goto out;
    }
    if (s->gz) {
        gzFile gz = s->gz;
        s->gz = NULL;
        int z = gzclose_r(gz);
        if (z != Z_OK) {
            fail_msg(err, errlen, "%s: gzip stream is %s, expected a complete gzip file", s->path,
                 z == Z_BUF_ERROR ? "truncated" : "corrupt");
            goto out;
        }
    }
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    stream_close(s);
    return rc;
}

/* dataset_load_idx, and the label file actually read (path or path.gz) into label_file. */
static int idx_load(const char *images_path, const char *labels_path, dataset *out,
                    char *label_file, size_t label_file_len, char *err, size_t errlen)
{
    stream si, sl;
    idx_header hi, hl;
    memset(out, 0, sizeof *out);
    if (idx_open(&si, &hi, images_path, 3, err, errlen) != 0) return -1;
    if (idx_open(&sl, &hl, labels_path, 1, err, errlen) != 0) {
        stream_close(&si);
        return -1;
    }
    if (hi.n != hl.n) {
        fail_msg(err, errlen, "%s: label count %zu differs from the image count %zu in %s; "
             "expected one label per image", sl.path, hl.n, hi.n, si.path);
        stream_close(&si);
        stream_close(&sl);
        return -1;
    }
    uint8_t *pixels, *labels;
    if (label_file) snprintf(label_file, label_file_len, "%s", sl.path);
    if (idx_read_payload(&si, &hi, &pixels, err, errlen) != 0) {
        stream_close(&sl);
        return -1;
    }
    if (idx_read_payload(&sl, &hl, &labels, err, errlen) != 0) {
        free(pixels);
        return -1;
    }
    out->n = hi.n;
    out->rows = (int)hi.rows;
    out->cols = (int)hi.cols;
    out->classes = classes_of(labels, hl.n);
    out->pixels = pixels;
    out->labels = labels;
    return 0;
}

int dataset_load_idx(const char *images_path, const char *labels_path, dataset *out,
                     char *err, size_t errlen)
{
    return idx_load(images_path, labels_path, out, NULL, 0, err, errlen);
}

/* ---- Kaggle CSV ------------------------------------------------------------------------ */

/* One line of the buffer: [start, end) without the '\n' or a trailing '\r'. */
static const char *next_line(const char *p, const char *end, const char **line_end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    if (e > p && e[-1] == '\r') e--;
    *line_end = e;
    return nl ? nl + 1 : end;
}

static size_t count_fields(const char *p, const char *e)
{
    size_t n = 1;
    for (; p < e; p++) n += *p == ',';
    return n;
}

/* "label" for the label column, "pixelK" for pixel K: the header names Kaggle uses. */
static const char *column_name(size_t f, int labelled, char *buf, size_t len)
{
    if (labelled && f == 0) return "label";
    snprintf(buf, len, "pixel%zu", f - (size_t)labelled);
    return buf;
}

/* Parses one row's `fields` comma-separated integers into label (when `labelled`, the first
 * field) and pixels (the field count is already checked). Returns -1 with the message on a
 * fault. */
static int parse_row(const char *p, const char *e, size_t fields, int labelled, uint8_t *label,
                     uint8_t *pixels, const char *path, size_t line, char *err, size_t errlen)
{
    for (size_t f = 0; f < fields; f++) {
        const char *q = p;
        unsigned v = 0;
        while (q < e && *q >= '0' && *q <= '9') {
            if (v <= 255) v = v * 10 + (unsigned)(*q - '0');
            q++;
        }
        bool is_label = labelled && f == 0;
        unsigned max = is_label ? MAX_CLASSES - 1 : 255;
        if (q == p || (q < e && *q != ',') || v > max) {
            const char *fe = memchr(p, ',', (size_t)(e - p));
            if (!fe) fe = e;
            int shown = fe - p > 20 ? 20 : (int)(fe - p);
            char name[32];
            if (q == p || q != fe)
                return fail_msg(err, errlen, "%s:%zu: column %zu (%s) is '%.*s%s', expected an "
                            "integer in 0..%u", path, line, f + 1,
                            column_name(f, labelled, name, sizeof name), shown, p,
                            fe - p > 20 ? "..." : "", max);
            if (is_label)
                return fail_msg(err, errlen, "%s:%zu: label %.*s is outside 0..%d (labels are "
                            "bytes: at most %d classes)", path, line, shown, p,
                            MAX_CLASSES - 1, MAX_CLASSES);
            return fail_msg(err, errlen, "%s:%zu: column %zu (%s) is %.*s, outside 0..255", path,
                        line, f + 1, column_name(f, labelled, name, sizeof name), shown, p);
        }
        if (is_label) *label = (uint8_t)v;
        else pixels[f - (size_t)labelled] = (uint8_t)v;
        p = q + 1;
    }
    return 0;
}

/* Moves rows [from, from+n) of a CSV load into d, copying. */
static void take_rows(dataset *d, const dataset *all, size_t from, size_t n)
{
    size_t px = (size_t)all->rows * (size_t)all->cols;
    *d = *all;
    d->n = n;
    d->pixels = xmalloc(n * px, "CSV images");
    d->labels = xmalloc(n, "CSV labels");
    memcpy(d->pixels, all->pixels + from * px, n * px);
    memcpy(d->labels, all->labels + from, n);
}

/* The header's first field is "label" (quotes and case aside): Kaggle's train.csv has it,
 * its test.csv starts at pixel0. */
static bool header_has_label(const char *p, const char *e)
{
    const char *fe = memchr(p, ',', (size_t)(e - p));
    if (!fe) fe = e;
    if (fe - p >= 2 && *p == '"' && fe[-1] == '"') { p++; fe--; }
    static const char word[] = "label";
    if (fe - p != (ptrdiff_t)(sizeof word - 1)) return false;
    for (size_t i = 0; i < sizeof word - 1; i++)
        if ((p[i] | 0x20) != word[i]) return false;
    return true;
}

/* Reads a whole CSV into *all: a header line, then one row per image. `need_label`: every
 * row starts with a label and the pixels make a square image (training data). Otherwise the
 * header says whether there is a label column (*labelled) and a non-square row is kept as
 * 1 x pixels. The labels of a label-less file are 0. */
static int csv_read(const char *path, bool need_label, dataset *all, int *labelled, char *err,
                    size_t errlen)
{
    struct stat st;
    memset(all, 0, sizeof *all);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return fail_msg(err, errlen, "%s: no such file, expected a CSV file (header, then "
                        "label,pixel0,...,pixel783 rows)", path);
        return fail_msg(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return fail_msg(err, errlen, "%s: is a directory, expected a CSV file", path);
    if (!S_ISREG(st.st_mode))
        return fail_msg(err, errlen, "%s: is not a regular file, expected a CSV file", path);
    size_t len;
    char *buf = (char *)read_file(path, &len);
    if (!buf) return fail_msg(err, errlen, "%s: cannot read: %s", path, strerror(errno));

    int rc = -1;
    const char *end = buf + len, *p = buf, *e;
    if (len == 0) {
        fail_msg(err, errlen, "%s: file is empty, expected a header line, then "
             "label,pixel0,...,pixel783 rows", path);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        fail_msg(err, errlen, "%s: is a binary file, expected a CSV text file (for IDX files, pass "
             "the folder that holds them)", path);
        goto out;
    }

    /* Line 1, the header, gives the number of fields and so the image size. */
    p = next_line(p, end, &e);
    if (buf[0] >= '0' && buf[0] <= '9') {
        fail_msg(err, errlen, "%s:1: expected a header line (label,pixel0,... or pixel0,...), found "
             "numbers", path);
        goto out;
    }
    *labelled = need_label || header_has_label(buf, e);
    size_t fields = count_fields(buf, e), npx = fields - (size_t)*labelled, side = 0;
    while (side * side < npx) side++;
    if (need_label && (fields < 2 || side * side != npx || side > MAX_SIDE)) {
        fail_msg(err, errlen, "%s:1: header has %zu pixel columns, expected a square number in "
             "1..%u^2 (784 = 28x28 for MNIST)", path, npx, MAX_SIDE);
        goto out;
    }
    if (npx == 0 || npx > (size_t)MAX_SIDE * MAX_SIDE) {
        fail_msg(err, errlen, "%s:1: header has %zu pixel columns, expected 1..%u", path, npx,
             MAX_SIDE * MAX_SIDE);
        goto out;
    }

    /* First pass: count the data rows (blank lines are skipped) and check each one's field
     * count, so that rows * pixels is bounded by the file's size before anything is
     * allocated. */
    size_t rows = 0, line = 1;
    for (const char *q = p; q < end;) {
        const char *start = q;
        q = next_line(q, end, &e);
        line++;
        if (e == start) continue;
        size_t nf = count_fields(start, e);
        if (nf != fields) {
            if (side * side == npx)
                fail_msg(err, errlen, "%s:%zu: row has %zu fields, expected %zu like the header "
                     "(%s%zux%zu pixels)", path, line, nf, fields, *labelled ? "label + " : "",
                     side, side);
            else
                fail_msg(err, errlen, "%s:%zu: row has %zu fields, expected %zu like the header",
                     path, line, nf, fields);
            goto out;
        }
        rows++;
    }
    if (rows == 0) {
        fail_msg(err, errlen, "%s: has a header but no data rows, expected %spixel0,... rows",
             path, *labelled ? "label," : "");
        goto out;
    }
    if (side * side == npx) all->rows = all->cols = (int)side;
    else { all->rows = 1; all->cols = (int)npx; }
    all->pixels = xmalloc(rows * npx, "CSV images");   /* every row has npx - 1 commas: < len */
    all->labels = xcalloc(rows, 1, "CSV labels");

    line = 1;
    for (const char *q = p; q < end;) {
        const char *start = q;
        q = next_line(q, end, &e);
        line++;
        if (e == start) continue;
        if (parse_row(start, e, fields, *labelled, &all->labels[all->n],
                      all->pixels + all->n * npx, path, line, err, errlen) != 0)
            goto out;
        all->n++;
    }
    all->classes = classes_of(all->labels, all->n);
    rc = 0;
out:
    if (rc != 0) dataset_free(all);
    free(buf);
    return rc;
}

int dataset_load_csv(const char *csv_path, size_t test_split, dataset_pair *out,
                     char *err, size_t errlen)
{
    const char *path = csv_path;
    memset(out, 0, sizeof *out);
    dataset all;
    int labelled;
    if (csv_read(path, true, &all, &labelled, err, errlen) != 0) return -1;
    size_t rows = all.n, npx = (size_t)all.rows * (size_t)all.cols;
    int rc = -1;
    if (test_split == 0) {
        fail_msg(err, errlen, "%s: a CSV has no separate test set: use --test-split N to hold out "
             "its last N of %zu rows", path, rows);
        goto out;
    }
    if (test_split >= rows) {
        fail_msg(err, errlen, "%s: --test-split %zu leaves no training rows (the file has %zu); use "
             "--test-split N with N < %zu", path, test_split, rows, rows);
        goto out;
    }
    take_rows(&out->test, &all, rows - test_split, test_split);
    all.n = rows - test_split;
    all.pixels = xrealloc(all.pixels, all.n * npx, "CSV images");
    all.labels = xrealloc(all.labels, all.n, "CSV labels");
    out->train = all;
    all = (dataset){0};
    snprintf(out->source, sizeof out->source, "%s", path);
    snprintf(out->label_file[0], sizeof out->label_file[0], "%s", path);
    snprintf(out->label_file[1], sizeof out->label_file[1], "%s", path);
    out->test_index0 = out->train.n;
    rc = 0;
out:
    dataset_free(&all);
    return rc;
}

int dataset_load_images(const char *path, dataset *out, int *labelled, char *err,
                        size_t errlen)
{
    struct stat st;
    memset(out, 0, sizeof *out);
    *labelled = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* A folder: its test set, as eval sees it. */
        dataset_pair p;
        if (dataset_load(path, 0, &p, err, errlen) != 0) return -1;
        *out = p.test;
        dataset_free(&p.train);
        *labelled = 1;
        return 0;
    }
    if (ends_with(path, ".csv")) return csv_read(path, false, out, labelled, err, errlen);
    /* An IDX images file alone: no labels. */
    stream s;
    idx_header h;
    if (idx_open(&s, &h, path, 3, err, errlen) != 0) {
        if (strstr(err, "magic") && !ends_with(path, ".gz"))
            snprintf(err + strlen(err), errlen - strlen(err), "; a CSV file needs a name "
                     "ending in .csv");
        return -1;
    }
    if (idx_read_payload(&s, &h, &out->pixels, err, errlen) != 0) return -1;
    out->n = h.n;
    out->rows = (int)h.rows;
    out->cols = (int)h.cols;
    out->labels = xcalloc(h.n, 1, "labels");
    out->classes = MIN_CLASSES;
    return 0;
}

int dataset_pair_set_classes(dataset_pair *p, int classes, char *err, size_t errlen)
{
    if (classes == 0) {
        classes = p->train.classes > p->test.classes ? p->train.classes : p->test.classes;
    } else {
        if (classes < MIN_CLASSES || classes > MAX_CLASSES)
            return fail_msg(err, errlen, "%d classes: expected %d..%d (labels are bytes)", classes,
                        MIN_CLASSES, MAX_CLASSES);
        const dataset *set[2] = {&p->train, &p->test};
        for (int s = 0; s < 2; s++)
            for (size_t i = 0; i < set[s]->n; i++)
                if (set[s]->labels[i] >= classes)
                    return fail_msg(err, errlen, "%s: label %u at index %zu is outside 0..%d (%d "
                                "classes)", p->label_file[s][0] ? p->label_file[s] : p->source,
                                set[s]->labels[i], i + (s ? p->test_index0 : 0), classes - 1,
                                classes);
    }
    p->train.classes = p->test.classes = classes;
    return 0;
}

/* ---- either ---------------------------------------------------------------------------- */

int dataset_load(const char *data, size_t test_split, dataset_pair *out,
                 char *err, size_t errlen)
{
    struct stat st;
    memset(out, 0, sizeof *out);
    int exists = stat(data, &st) == 0;
    if (ends_with(data, ".csv") || (exists && !S_ISDIR(st.st_mode))) {
        if (dataset_load_csv(data, test_split, out, err, errlen) != 0) return -1;
        return dataset_pair_set_classes(out, 0, err, errlen);
    }
    if (!exists) {
        if (errno == ENOENT)
            return fail_msg(err, errlen, "%s: no such folder; run `make data` to fetch MNIST into "
                        "data/mnist (or `make data-fashion`), or pass a Kaggle .csv file", data);
        return fail_msg(err, errlen, "%s: cannot read: %s", data, strerror(errno));
    }

    static const char *const names[4] = {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    };
    char paths[4][PATH_LEN];
    for (int i = 0; i < 4; i++) {
        int w = snprintf(paths[i], sizeof paths[i], "%s/%s", data, names[i]);
        if (w < 0 || (size_t)w >= sizeof paths[i])
            return fail_msg(err, errlen, "%s: path is too long", data);
    }
    if (idx_load(paths[0], paths[1], &out->train, out->label_file[0], sizeof out->label_file[0],
                 err, errlen) != 0)
        return -1;
    if (idx_load(paths[2], paths[3], &out->test, out->label_file[1], sizeof out->label_file[1],
                 err, errlen) != 0) {
        dataset_free(&out->train);
        return -1;
    }
    if (out->train.rows != out->test.rows || out->train.cols != out->test.cols) {
        fail_msg(err, errlen, "%s: training images are %dx%d but test images (%s) are %dx%d; "
             "expected the same size", paths[0], out->train.rows, out->train.cols, names[2],
             out->test.rows, out->test.cols);
        dataset_pair_free(out);
        return -1;
    }
    snprintf(out->source, sizeof out->source, "%s", data);
    dataset_pair_set_classes(out, 0, err, errlen);
    return 0;
}

void dataset_truncate(dataset *d, size_t n)
{
    if (n < d->n) d->n = n;
}

static void print_one(const char *name, const dataset *d, FILE *f)
{
    size_t hist[MAX_CLASSES] = {0};
    int classes = d->classes < MAX_CLASSES ? d->classes : MAX_CLASSES;
    for (size_t i = 0; i < d->n; i++)
        if (d->labels[i] < classes) hist[d->labels[i]]++;
    fprintf(f, "  %-5s %6zu images of %dx%d, %d classes, per label:", name, d->n, d->rows,
            d->cols, classes);
    for (int c = 0; c < classes; c++) fprintf(f, " %zu", hist[c]);
    fputc('\n', f);
}

void dataset_print_summary(const dataset_pair *p, FILE *f)
{
    fprintf(f, "data: %s\n", p->source);
    print_one("train", &p->train, f);
    print_one("test", &p->test, f);
}

void dataset_free(dataset *d)
{
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

void dataset_pair_free(dataset_pair *p)
{
    dataset_free(&p->train);
    dataset_free(&p->test);
}
