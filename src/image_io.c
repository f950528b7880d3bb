/* image_io.c: digit images to MNIST's format, the prediction grid, PNG output (image_io.h). */
#include "image_io.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "util.h"

/* Larger images are refused rather than decoded (a 256-megapixel photo is not a digit). */
#define MAX_PIXELS (64L * 1024 * 1024)

/* grey+alpha (2 channels, n pixels) into grey: the transparent parts take the colour that
 * contrasts with the opaque ink (white behind dark ink, black behind light ink). */
static void flatten_alpha(const uint8_t *ga, size_t n, uint8_t *grey)
{
    double sum = 0.0;
    size_t opaque = 0;
    bool any_transparent = false;
    for (size_t i = 0; i < n; i++) {
        if (ga[2 * i + 1] >= 128) { sum += ga[2 * i]; opaque++; }
        if (ga[2 * i + 1] < 255) any_transparent = true;
    }
    int bg = 0;
    if (any_transparent) bg = (opaque == 0 || sum / (double)opaque < 128.0) ? 255 : 0;
    for (size_t i = 0; i < n; i++) {
        int g = ga[2 * i], a = ga[2 * i + 1];
        grey[i] = (uint8_t)((g * a + bg * (255 - a) + 127) / 255);
    }
}

/* Whether the n bytes of s occur in the last `tail` bytes of data. */
static bool ends_with_marker(const unsigned char *data, size_t len, const char *s, size_t n, size_t tail)
{
    size_t from = len > tail ? len - tail : 0;
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > from;)
        if (memcmp(data + i, s, n) == 0) return true;
    return false;
}

/* stb_image decodes what it has of a cut-off file; its end marker says whether it is whole:
 * IEND for PNG, EOI (FF D9) for JPEG, allowing for a little trailing junk. */
/* Binary PGM/PPM (P5/P6): the pixel bytes its header promises, or 0 when the header does not
 * parse. stb_image does not check the length of the pixel data, so a short file would give
 * uninitialised pixels. Header: magic, width, height, maxval, each after white space or
 * '#' comments, then one white-space byte. */
static size_t pnm_payload(const unsigned char *d, size_t len, size_t *data_start)
{
    if (len < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return 0;
    size_t pos = 2;
    unsigned long v[3];
    for (int t = 0; t < 3; t++) {
        for (;;) {
            while (pos < len && (d[pos] == ' ' || d[pos] == '\t' || d[pos] == '\r' || d[pos] == '\n')) pos++;
            if (pos < len && d[pos] == '#') {
                while (pos < len && d[pos] != '\n') pos++;
                continue;
            }
            break;
        }
        if (pos >= len || d[pos] < '0' || d[pos] > '9') return 0;
        v[t] = 0;
        while (pos < len && d[pos] >= '0' && d[pos] <= '9') {
            if (v[t] > 100000000UL) return 0;
            v[t] = v[t] * 10 + (unsigned long)(d[pos++] - '0');
        }
    }
    pos++;   /* the single white-space byte before the pixels */
    *data_start = pos;
    return (size_t)v[0] * (size_t)v[1] * (d[1] == '6' ? 3u : 1u) * (v[2] > 255 ? 2u : 1u);
}

static bool looks_truncated(const unsigned char *data, size_t len)
{
    size_t start = 0, need = pnm_payload(data, len, &start);
    if (need) return start > len || len - start < need;
    if (len >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        return !ends_with_marker(data, len, "IEND", 4, 4096);
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return !ends_with_marker(data, len, "\xFF\xD9", 2, 4096);
    return false;
}

uint8_t *image_load_grey(const char *path, int *w, int *h, char *err, size_t errlen)
{
    size_t len = 0;
    unsigned char *bytes = read_file(path, &len);
    if (!bytes) {
        snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return NULL;
    }
    int iw, ih, comp;
    if (len == 0 || len > INT_MAX || !stbi_info_from_memory(bytes, (int)len, &iw, &ih, &comp)) {
        snprintf(err, errlen, "%s: not a PNG, JPEG or PGM image (%s)", path,
                 len == 0 ? "the file is empty" : stbi_failure_reason());
        free(bytes);
        return NULL;
    }
    if (iw <= 0 || ih <= 0 || (long)iw * (long)ih > MAX_PIXELS) {
        snprintf(err, errlen, "%s: %d x %d pixels is too large for a digit image (at most %ld pixels)",
                 path, iw, ih, MAX_PIXELS);
        free(bytes);
        return NULL;
    }
    if (looks_truncated(bytes, len)) {
        snprintf(err, errlen, "%s: the image is truncated (its end marker is missing)", path);
        free(bytes);
        return NULL;
    }
    bool alpha = comp == 2 || comp == 4;
    unsigned char *px = stbi_load_from_memory(bytes, (int)len, &iw, &ih, &comp, alpha ? 2 : 1);
    free(bytes);
    if (!px) {
        snprintf(err, errlen, "%s: the image is damaged or truncated (%s)", path, stbi_failure_reason());
        return NULL;
    }
    size_t n = (size_t)iw * (size_t)ih;
    uint8_t *grey = xmalloc(n, "image pixels");
    if (alpha) flatten_alpha(px, n, grey);
    else memcpy(grey, px, n);
    stbi_image_free(px);
    *w = iw;
    *h = ih;
    return grey;
}

/* src (sw x sh floats) resampled to dst (dw x dh): the area average of the source pixels each
 * destination pixel covers when shrinking, bilinear when growing. */
static void resample(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int oy = 0; oy < dh; oy++) {
        for (int ox = 0; ox < dw; ox++) {
            double v = 0.0;
            if (sx >= 1.0 && sy >= 1.0) {
                double x0 = ox * sx, x1 = (ox + 1) * sx, y0 = oy * sy, y1 = (oy + 1) * sy;
                int iy1 = (int)ceil(y1), ix1 = (int)ceil(x1);
                if (iy1 > sh) iy1 = sh;
                if (ix1 > sw) ix1 = sw;
                for (int iy = (int)y0; iy < iy1; iy++) {
                    double wy = fmin(y1, iy + 1.0) - fmax(y0, (double)iy);
                    for (int ix = (int)x0; ix < ix1; ix++) {
                        double wx = fmin(x1, ix + 1.0) - fmax(x0, (double)ix);
                        v += wx * wy * src[(size_t)iy * (size_t)sw + (size_t)ix];
                    }
                }
                v /= sx * sy;
            } else {
                double fx = (ox + 0.5) * sx - 0.5, fy = (oy + 0.5) * sy - 0.5;
                fx = fmin(fmax(fx, 0.0), sw - 1.0);
                fy = fmin(fmax(fy, 0.0), sh - 1.0);
                int x0 = (int)fx, y0 = (int)fy;
                int x1 = x0 + 1 < sw ? x0 + 1 : x0, y1 = y0 + 1 < sh ? y0 + 1 : y0;
                double ax = fx - x0, ay = fy - y0;
                const float *r0 = src + (size_t)y0 * (size_t)sw, *r1 = src + (size_t)y1 * (size_t)sw;
                v = (1 - ay) * ((1 - ax) * r0[x0] + ax * r0[x1]) + ay * ((1 - ax) * r1[x0] + ax * r1[x1]);
            }
            dst[(size_t)oy * (size_t)dw + (size_t)ox] = (float)v;
        }
    }
}

/* Pixels at or below this share of the brightest ink are background (JPEG noise, paper). */
#define INK_FLOOR 0.10

int image_to_mnist(const uint8_t *grey, int w, int h, uint8_t *out)
{
    size_t n = (size_t)w * (size_t)h;
    memset(out, 0, MNIST_SIDE * MNIST_SIDE);
    if (n == 0) return -1;
    /* Ink is bright, as in MNIST: invert a mostly light (dark-on-light) image. */
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) mean += grey[i];
    mean /= (double)n;
    bool invert = mean > 127.5;
    /* The background level is the median; ink is what rises above it. */
    size_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) hist[invert ? 255 - grey[i] : grey[i]]++;
    int bg = 0;
    for (size_t seen = 0; bg < 255 && (seen += hist[bg]) < (n + 1) / 2; bg++) {}
    float *ink = xmalloc(n * sizeof(float), "image pixels");
    float top = 0.0f;
    for (size_t i = 0; i < n; i++) {
        int v = (invert ? 255 - grey[i] : grey[i]) - bg;
        ink[i] = v > 0 ? (float)v : 0.0f;
        if (ink[i] > top) top = ink[i];
    }
    if (top < 16.0f) { free(ink); return -1; }
    /* Stretch to 0..255, drop the noise floor, and find the box around the ink. */
    int bx0 = w, by0 = h, bx1 = -1, by1 = -1;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float *p = &ink[(size_t)y * (size_t)w + (size_t)x];
            *p = *p * 255.0f / top;
            if (*p <= 255.0f * INK_FLOOR) { *p = 0.0f; continue; }
            if (x < bx0) bx0 = x;
            if (x > bx1) bx1 = x;
            if (y < by0) by0 = y;
            if (y > by1) by1 = y;
        }
    }
    int bw = bx1 - bx0 + 1, bh = by1 - by0 + 1;
    float *crop = xmalloc((size_t)bw * (size_t)bh * sizeof(float), "image pixels");
    for (int y = 0; y < bh; y++)
        memcpy(crop + (size_t)y * (size_t)bw, ink + (size_t)(by0 + y) * (size_t)w + (size_t)bx0,
               (size_t)bw * sizeof(float));
    free(ink);
    /* Longest side to MNIST_BOX pixels, keeping the aspect ratio. */
    int longest = bw > bh ? bw : bh;
    int nw = (int)lround((double)bw * MNIST_BOX / longest), nh = (int)lround((double)bh * MNIST_BOX / longest);
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    float box[MNIST_BOX * MNIST_BOX];
    resample(crop, bw, bh, box, nw, nh);
    free(crop);
    /* Thin strokes of a large image fade when shrunk: bring the brightest back to 255. */
    float peak = 0.0f;
    double mass = 0.0, mx = 0.0, my = 0.0;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            float v = box[y * nw + x];
            if (v > peak) peak = v;
            mass += v;
            mx += v * x;
            my += v * y;
        }
    if (peak <= 0.0f || mass <= 0.0) return -1;
    /* Centre of mass onto the canvas centre, keeping the whole box inside. */
    double centre = MNIST_SIDE / 2.0;   /* where MNIST's centres of mass lie (pixel 14, 0-based) */
    int ox = (int)lround(centre - mx / mass), oy = (int)lround(centre - my / mass);
    if (ox < 0) ox = 0;
    if (ox > MNIST_SIDE - nw) ox = MNIST_SIDE - nw;
    if (oy < 0) oy = 0;
    if (oy > MNIST_SIDE - nh) oy = MNIST_SIDE - nh;
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) {
            long v = lround(box[y * nw + x] * 255.0f / peak);
            out[(oy + y) * MNIST_SIDE + ox + x] = (uint8_t)(v > 255 ? 255 : v < 0 ? 0 : v);
        }
    return 0;
}

int image_load_digit(const char *path, uint8_t *out, char *err, size_t errlen)
{
    int w, h;
    uint8_t *grey = image_load_grey(path, &w, &h, err, errlen);
    if (!grey) return -1;
    int rc = image_to_mnist(grey, w, h, out);
    free(grey);
    if (rc != 0)
        snprintf(err, errlen, "%s: no digit found: the image is blank or has too little contrast", path);
    return rc;
}

int image_write_png(const char *path, const uint8_t *px, int w, int h, int comp, char *err,
                    size_t errlen)
{
    size_t len = strlen(path) + 32;
    char *tmp = xmalloc(len, "a file name");
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    if (!stbi_write_png(tmp, w, h, comp, px, w * comp)) {
        int e = errno;
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot write the PNG: %s", path, e ? strerror(e) : "stb_image_write failed");
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot write the PNG: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* --- the grid ------------------------------------------------------------------------------- */

/* A 3 x 5 pixel font: digits, A-Z (lower case drawn as upper case), then - / . space _ : and
 * ? for anything else. Each glyph is 5 rows of 3 bits, top row first. */
static const uint8_t font[43][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
    {2, 5, 7, 5, 5}, {6, 5, 6, 5, 6}, {3, 4, 4, 4, 3}, {6, 5, 5, 5, 6}, {7, 4, 6, 4, 7},
    {7, 4, 6, 4, 4}, {3, 4, 5, 5, 3}, {5, 5, 7, 5, 5}, {7, 2, 2, 2, 7}, {1, 1, 1, 5, 2},
    {5, 5, 6, 5, 5}, {4, 4, 4, 4, 7}, {5, 7, 7, 5, 5}, {6, 5, 5, 5, 5}, {2, 5, 5, 5, 2},
    {7, 5, 7, 4, 4}, {2, 5, 5, 6, 3}, {6, 5, 6, 5, 5}, {3, 4, 2, 1, 6}, {7, 2, 2, 2, 2},
    {5, 5, 5, 5, 7}, {5, 5, 5, 5, 2}, {5, 5, 7, 7, 5}, {5, 5, 2, 5, 5}, {5, 5, 2, 2, 2},
    {7, 1, 2, 4, 7}, {0, 0, 7, 0, 0}, {1, 1, 2, 4, 4}, {0, 0, 0, 0, 2}, {0, 0, 0, 0, 0},
    {0, 0, 0, 0, 7}, {0, 2, 0, 2, 0}, {6, 1, 2, 0, 2},
};
enum { FONT_SCALE = 2, GLYPH_ADVANCE = 4 * FONT_SCALE };

static int glyph_of(char ch)
{
    static const char extra[] = "-/. _:";
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'Z') return 10 + (ch - 'A');
    if (ch >= 'a' && ch <= 'z') return 10 + (ch - 'a');
    const char *e = ch ? strchr(extra, ch) : NULL;
    return e ? 36 + (int)(e - extra) : 42;
}

static void fill_rect(uint8_t *rgb, int w, int x0, int y0, int rw, int rh, const uint8_t c[3])
{
    for (int y = y0; y < y0 + rh; y++)
        for (int x = x0; x < x0 + rw; x++) memcpy(rgb + ((size_t)y * (size_t)w + (size_t)x) * 3, c, 3);
}

/* One glyph with its top-left corner at (x, y); returns the x of the next one. */
static int draw_glyph(uint8_t *rgb, int w, int x, int y, int glyph, const uint8_t c[3])
{
    for (int r = 0; r < 5; r++)
        for (int b = 0; b < 3; b++)
            if (font[glyph][r] & (4 >> b))
                fill_rect(rgb, w, x + b * FONT_SCALE, y + r * FONT_SCALE, FONT_SCALE, FONT_SCALE, c);
    return x + GLYPH_ADVANCE;
}

/* `prefix` (P or T) and class k's label, its name or else its number, cut to what fits in a
 * cell from x. */
static void draw_label(uint8_t *rgb, int w, int x, int y, char prefix, int k,
                       const char *const *names, const uint8_t c[3])
{
    char num[8];
    snprintf(num, sizeof num, "%d", k);
    const char *label = names ? names[k] : num;
    int room = (GRID_CELL_W - (x % GRID_CELL_W) - 3 * FONT_SCALE) / GLYPH_ADVANCE;
    x = draw_glyph(rgb, w, x, y, glyph_of(prefix), c);
    for (int i = 0; label[i] && i < room; i++) x = draw_glyph(rgb, w, x, y, glyph_of(label[i]), c);
}

void image_grid_size(size_t n, int *w, int *h)
{
    size_t rows = n == 0 ? 1 : (n + GRID_COLS - 1) / GRID_COLS;
    *w = GRID_COLS * GRID_CELL_W;
    *h = (int)rows * GRID_CELL_H;
}

uint8_t *image_prediction_grid(const uint8_t *pixels, int side, size_t n, const uint8_t *pred,
                               const uint8_t *truth, const char *const *names, int *w, int *h)
{
    static const uint8_t bg[3] = {40, 40, 40}, red[3] = {230, 40, 40}, green[3] = {90, 210, 90},
                         grey[3] = {170, 170, 170};
    image_grid_size(n, w, h);
    uint8_t *rgb = xmalloc((size_t)*w * (size_t)*h * 3, "the grid image");
    fill_rect(rgb, *w, 0, 0, *w, *h, bg);
    int img = side * GRID_SCALE, pad = (GRID_CELL_W - img) / 2;
    for (size_t i = 0; i < n; i++) {
        int cx = (int)(i % GRID_COLS) * GRID_CELL_W, cy = (int)(i / GRID_COLS) * GRID_CELL_H;
        bool wrong = truth && truth[i] != pred[i];
        if (wrong) fill_rect(rgb, *w, cx + pad - 2, cy + pad - 2, img + 4, img + 4, red);
        const uint8_t *src = pixels + i * (size_t)side * (size_t)side;
        for (int y = 0; y < img; y++)
            for (int x = 0; x < img; x++) {
                uint8_t v = src[(y / GRID_SCALE) * side + x / GRID_SCALE];
                uint8_t c[3] = {v, v, v};
                memcpy(rgb + ((size_t)(cy + pad + y) * (size_t)*w + (size_t)(cx + pad + x)) * 3, c, 3);
            }
        int tx = cx + pad, ty = cy + pad + img + 6;
        const uint8_t *pc = wrong ? red : truth ? green : grey;
        draw_label(rgb, *w, tx, ty, 'P', pred[i], names, pc);
        if (truth) draw_label(rgb, *w, tx, ty + 7 * FONT_SCALE, 'T', truth[i], names, grey);
    }
    return rgb;
}
