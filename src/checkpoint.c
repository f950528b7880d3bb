/* checkpoint.c: model file format (see checkpoint.h), CRC-checked load, atomic save, npy export. */
#include "checkpoint.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util.h"

static const unsigned char MAGIC[8] = {'C', 'L', 'T', 'R', 'A', 'I', 'N', 0x1a};

/* The model file's little-endian writer, over util's growable buffer. */
typedef byte_buf wbuf;

static void put(wbuf *w, const void *src, size_t n) { byte_buf_put(w, src, n, "model file buffer"); }
static void put_u32(wbuf *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(w, b, 4);
}
static void put_u64(wbuf *w, uint64_t v) { put_u32(w, (uint32_t)v); put_u32(w, (uint32_t)(v >> 32)); }
static void put_f32(wbuf *w, float f) { uint32_t u; memcpy(&u, &f, 4); put_u32(w, u); }
static void put_f32s(wbuf *w, const float *f, size_t n) { for (size_t i = 0; i < n; i++) put_f32(w, f[i]); }

/* A bounds-checked reader: every get fails softly once past the end. */
typedef struct { const unsigned char *p; size_t len, pos; int bad; } rbuf;

static uint32_t get_u32(rbuf *r)
{
    if (r->bad || r->len - r->pos < 4) { r->bad = 1; return 0; }
    const unsigned char *b = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t get_u64(rbuf *r) { uint64_t lo = get_u32(r); return lo | (uint64_t)get_u32(r) << 32; }
static float get_f32(rbuf *r) { uint32_t u = get_u32(r); float f; memcpy(&f, &u, 4); return f; }


const char *class_name_fault(const char *name, size_t len)
{
    if (len == 0) return "is empty";
    if (len > CLASS_NAME_MAX) return "is longer than 64 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) return "holds a control character";
        if (c == ',' || c == '"') return "holds a comma or a double quote (names go into CSV headers)";
    }
    return NULL;
}

char **class_names_copy(char *const *names, int n)
{
    if (!names) return NULL;
    char **c = xcalloc((size_t)n, sizeof *c, "class names");
    for (int i = 0; i < n; i++) c[i] = xstrdup(names[i]);
    return c;
}

void class_names_free(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Version 2's names: a count (0 or the class count), then length-prefixed names. */
static int read_class_names(rbuf *r, model_file *m, const char *path, char *err, size_t errlen)
{
    int classes = m->arch.sizes[m->arch.n_layers];
    uint32_t count = get_u32(r);
    if (r->bad || (count != 0 && count != (uint32_t)classes))
        return fail_msg(err, errlen, "%s: model file has %u class names for %d classes (corrupt header?)",
                    path, count, classes);
    if (count == 0) return 0;
    m->class_names = xcalloc((size_t)classes, sizeof(char *), "class names");
    for (int c = 0; c < classes; c++) {
        uint32_t n = get_u32(r);
        if (r->bad || n > CLASS_NAME_MAX || r->len - r->pos < n)
            return fail_msg(err, errlen, "%s: class name %d in the model file is truncated or too long", path, c);
        const char *why = class_name_fault((const char *)r->p + r->pos, n);
        if (why) return fail_msg(err, errlen, "%s: class name %d in the model file %s", path, c, why);
        m->class_names[c] = xmalloc(n + 1, "a class name");
        memcpy(m->class_names[c], r->p + r->pos, n);
        m->class_names[c][n] = 0;
        r->pos += n;
    }
    return 0;
}

int model_save(const char *path, const model_file *m, char *err, size_t errlen)
{
    wbuf w = {0};
    const model_arch *a = &m->arch;
    put(&w, MAGIC, sizeof MAGIC);
    put_u32(&w, MODEL_FILE_VERSION);
    size_t header_at = w.len;
    put_u32(&w, 0); /* header bytes, patched below */
    size_t header_start = w.len;
    put_u32(&w, (uint32_t)a->n_layers);
    for (int l = 0; l <= a->n_layers; l++) put_u32(&w, (uint32_t)a->sizes[l]);
    put_u32(&w, (uint32_t)a->act);
    put_u32(&w, (uint32_t)m->init);
    put_u32(&w, (uint32_t)m->optimizer);
    put_f32(&w, m->lr); put_f32(&w, m->momentum); put_f32(&w, m->beta1); put_f32(&w, m->beta2);
    put_f32(&w, m->eps); put_f32(&w, m->weight_decay); put_f32(&w, m->dropout);
    put_u64(&w, m->batch); put_u64(&w, m->seed); put_u64(&w, m->epochs_done); put_u64(&w, m->next_step); put_u64(&w, m->step);
    put_u64(&w, m->n_train); put_f32(&w, m->best_val); put_u64(&w, m->stale_epochs);
    put_u64(&w, (uint64_t)a->n_params);
    put_u32(&w, (uint32_t)m->n_state);
    int classes = a->sizes[a->n_layers];
    put_u32(&w, m->class_names ? (uint32_t)classes : 0);
    for (int c = 0; m->class_names && c < classes; c++) {
        size_t n = strlen(m->class_names[c]);
        put_u32(&w, (uint32_t)n);
        put(&w, m->class_names[c], n);
    }
    put_f32(&w, m->augment.shift); put_f32(&w, m->augment.rotate); put_f32(&w, m->augment.scale);
    put_f32(&w, m->augment.elastic_alpha); put_f32(&w, m->augment.elastic_sigma);
    put_u32(&w, m->ranks ? m->ranks : 1);   /* after the names; readers skip what they do not know */
    uint32_t hb = (uint32_t)(w.len - header_start);
    memcpy(w.p + header_at, (unsigned char[4]){(unsigned char)hb, (unsigned char)(hb >> 8),
                                               (unsigned char)(hb >> 16), (unsigned char)(hb >> 24)}, 4);
    put_f32s(&w, m->params, a->n_params);
    for (int s = 0; s < m->n_state; s++) put_f32s(&w, m->state[s], a->n_params);
    put_u32(&w, (uint32_t)crc32(crc32(0L, Z_NULL, 0), w.p, (uInt)w.len));
    int rc = 0;
    if (write_file_atomic(path, w.p, w.len) != 0)
        rc = fail_msg(err, errlen, "%s: cannot write the model file: %s (check the folder exists and is writable)",
                  path, strerror(errno));
    free(w.p);
    return rc;
}

int model_load(const char *path, model_file *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    size_t len;
    unsigned char *data = read_file(path, &len);
    if (!data) return fail_msg(err, errlen, "%s: cannot read the model file: %s", path, strerror(errno));
    int rc = -1;
    if (len < sizeof MAGIC + 12 || memcmp(data, MAGIC, sizeof MAGIC) != 0) {
        fail_msg(err, errlen, "%s: not a cltrain model file (wrong magic; expected one written by --save or --checkpoint)", path);
        goto out;
    }
    /* The CRC over everything before the last four bytes; zlib's crc32 takes uInt lengths. */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t done = 0; done < len - 4;) {
        size_t chunk = len - 4 - done > (1u << 30) ? (1u << 30) : len - 4 - done;
        crc = crc32(crc, data + done, (uInt)chunk);
        done += chunk;
    }
    rbuf r = {data, len, sizeof MAGIC, 0};
    uint32_t version = get_u32(&r);
    if (version < 1 || version > MODEL_FILE_VERSION) {
        fail_msg(err, errlen, "%s: model file version %u, this cltrain reads versions 1 to %d (retrain, or use the cltrain that wrote it)",
             path, version, MODEL_FILE_VERSION);
        goto out;
    }
    rbuf tail = {data, len, len - 4, 0};
    if (get_u32(&tail) != (uint32_t)crc) {
        fail_msg(err, errlen, "%s: model file is corrupt or truncated (CRC-32 mismatch); use another copy or retrain", path);
        goto out;
    }
    uint32_t header_bytes = get_u32(&r);   /* fields are read one by one below */
    size_t header_start = r.pos;
    uint32_t n_layers = get_u32(&r);
    if (r.bad || n_layers < 1 || n_layers > MODEL_MAX_LAYERS) {
        fail_msg(err, errlen, "%s: bad layer count %u in the model file", path, n_layers);
        goto out;
    }
    int sizes[MODEL_MAX_LAYERS + 1];
    for (uint32_t l = 0; l <= n_layers; l++) {
        uint32_t s = get_u32(&r);
        if (s < 1 || s > 100000000) { fail_msg(err, errlen, "%s: bad layer width %u in the model file", path, s); goto out; }
        sizes[l] = (int)s;
    }
    uint32_t act = get_u32(&r), init = get_u32(&r), opt = get_u32(&r);
    if (act > ACT_SIGMOID || init > INIT_XAVIER || opt > OPT_ADAMW) {
        fail_msg(err, errlen, "%s: unknown activation, init or optimizer code in the model file", path);
        goto out;
    }
    if (model_arch_init(&m->arch, sizes[0], sizes + 1, (int)n_layers - 1, sizes[n_layers], (activation)act) != 0) {
        fail_msg(err, errlen, "%s: the architecture in the model file is too large", path);
        goto out;
    }
    m->init = (init_kind)init;
    m->optimizer = (optimizer_kind)opt;
    m->lr = get_f32(&r); m->momentum = get_f32(&r); m->beta1 = get_f32(&r); m->beta2 = get_f32(&r);
    m->eps = get_f32(&r); m->weight_decay = get_f32(&r); m->dropout = get_f32(&r);
    m->batch = get_u64(&r); m->seed = get_u64(&r); m->epochs_done = get_u64(&r); m->next_step = get_u64(&r); m->step = get_u64(&r);
    m->n_train = get_u64(&r); m->best_val = get_f32(&r); m->stale_epochs = get_u64(&r);
    uint64_t n_params = get_u64(&r);
    uint32_t n_state = get_u32(&r);
    if (r.bad || n_params != m->arch.n_params || n_state > 2) {
        fail_msg(err, errlen, "%s: model file header is inconsistent (parameter count or state)", path);
        goto out;
    }
    if (version >= 2 && read_class_names(&r, m, path, err, errlen) != 0) goto out;
    if (version >= 2) {
        augment_spec *g = &m->augment;
        g->shift = get_f32(&r); g->rotate = get_f32(&r); g->scale = get_f32(&r);
        g->elastic_alpha = get_f32(&r); g->elastic_sigma = get_f32(&r);
        char text[160], aerr[512];
        augment_format(g, text, sizeof text);
        augment_spec back;
        /* The strengths must be ones --augment accepts (a forged header is bad input). */
        if (!r.bad && (augment_parse(text, &back, aerr, sizeof aerr) != 0 || !(g->shift >= 0) ||
                       !(g->rotate >= 0) || !(g->scale >= 0) || !(g->elastic_alpha >= 0))) {
            fail_msg(err, errlen, "%s: bad augmentation settings in the model file", path);
            goto out;
        }
    }
    /* Version 2's later fields sit at the end of its header: files written before them lack
     * them, and fields added after them are skipped. Version 1's header is all read above. */
    if (version >= 2 && !r.bad && header_bytes >= r.pos - header_start + 4) m->ranks = get_u32(&r);
    if (version >= 2 && !r.bad && header_bytes > r.pos - header_start &&
        header_bytes <= len - 4 - header_start)
        r.pos = header_start + header_bytes;
    size_t arrays = 1 + n_state, bytes;
    if (!mul_size(m->arch.n_params, 4 * arrays, &bytes) || len - 4 - r.pos != bytes) {
        fail_msg(err, errlen, "%s: model file has %zu bytes of parameters, its header needs %zu",
             path, len - 4 - r.pos, bytes);
        goto out;
    }
    m->n_state = (int)n_state;
    float **dst[3] = {&m->params, &m->state[0], &m->state[1]};
    for (size_t s = 0; s < arrays; s++) {
        *dst[s] = xmalloc(m->arch.n_params * sizeof(float), "model parameters");
        for (size_t i = 0; i < m->arch.n_params; i++) (*dst[s])[i] = get_f32(&r);
    }
    rc = 0;
out:
    free(data);
    if (rc != 0) model_file_free(m);
    return rc;
}

void model_file_free(model_file *m)
{
    class_names_free(m->class_names, m->arch.sizes[m->arch.n_layers]);
    m->class_names = NULL;
    free(m->params);
    free(m->state[0]);
    free(m->state[1]);
    m->params = m->state[0] = m->state[1] = NULL;
}

/* One .npy file (format 1.0): magic, header dict padded to a multiple of 64, float32 data. */
static int write_npy(const char *path, const float *data, int rows, int cols)
{
    char header[128];
    int hl = cols > 0
        ? snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols)
        : snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", rows);
    size_t total = 10 + (size_t)hl + 1, pad = (64 - total % 64) % 64;
    size_t count = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    wbuf w = {0};
    put(&w, "\x93NUMPY\x01\x00", 8);
    uint16_t hlen = (uint16_t)((size_t)hl + pad + 1);
    unsigned char hb[2] = {(unsigned char)hlen, (unsigned char)(hlen >> 8)};
    put(&w, hb, 2);
    put(&w, header, (size_t)hl);
    for (size_t i = 0; i < pad; i++) put(&w, " ", 1);
    put(&w, "\n", 1);
    put_f32s(&w, data, count);
    int rc = write_file_atomic(path, w.p, w.len);
    free(w.p);
    return rc;
}

int export_npy(const char *dir, const model_arch *a, const float *params, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fail_msg(err, errlen, "%s: cannot create the export folder: %s", dir, strerror(errno));
    size_t plen = strlen(dir) + 32;
    char *path = xmalloc(plen, "a file name");
    int rc = 0;
    for (int l = 0; l < a->n_layers && rc == 0; l++) {
        snprintf(path, plen, "%s/W%d.npy", dir, l + 1);
        if (write_npy(path, params + a->w_off[l], a->sizes[l + 1], a->sizes[l]) != 0) rc = -1;
        if (rc == 0) {
            snprintf(path, plen, "%s/b%d.npy", dir, l + 1);
            if (write_npy(path, params + a->b_off[l], a->sizes[l + 1], 0) != 0) rc = -1;
        }
    }
    if (rc != 0) fail_msg(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    free(path);
    return rc;
}
