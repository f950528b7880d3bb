/* augment.c: the --augment spec (parse, format) and the plain-C reference of the distortions
 * kernels/augment.cl applies on a device (see augment.h for the transform). */
#include "augment.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "util.h"

static int spec_error(char *err, size_t errlen, const char *fmt, ...) CLT_PRINTF(3, 4);
static int spec_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, "; accepted: %s", AUGMENT_ACCEPTED);
    return -1;
}

/* A finite number in [lo, hi] spanning exactly [s, end). */
static int parse_value(const char *s, const char *end, double lo, double hi, double *out)
{
    if (s == end || end - s > 63) return -1;
    char buf[64];
    memcpy(buf, s, (size_t)(end - s));
    buf[end - s] = 0;
    char *stop;
    errno = 0;
    double v = strtod(buf, &stop);
    if (stop == buf || *stop || errno == ERANGE || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int augment_parse(const char *text, augment_spec *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text) return spec_error(err, errlen, "--augment needs a value");
    if (strcmp(text, "none") == 0) return 0;
    static const char *keys[] = {"shift", "rotate", "scale", "elastic"};
    bool seen[4] = {false, false, false, false};
    for (const char *p = text; *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq) return spec_error(err, errlen, "--augment '%s': '%.*s' is not KEY=VALUE", text, (int)(end - p), p);
        int k = -1;
        for (int i = 0; i < 4; i++)
            if ((size_t)(eq - p) == strlen(keys[i]) && strncmp(p, keys[i], (size_t)(eq - p)) == 0) k = i;
        if (k < 0) return spec_error(err, errlen, "--augment '%s': unknown key '%.*s'", text, (int)(eq - p), p);
        if (seen[k]) return spec_error(err, errlen, "--augment '%s': %s given twice", text, keys[k]);
        seen[k] = true;
        const char *v = eq + 1;
        double a, b;
        if (k == 3) {
            const char *colon = memchr(v, ':', (size_t)(end - v));
            if (!colon || parse_value(v, colon, 0, 1000, &a) || parse_value(colon + 1, end, 0.5, 20, &b))
                return spec_error(err, errlen, "--augment '%s': elastic takes ALPHA:SIGMA, not '%.*s'", text, (int)(end - v), v);
            out->elastic_alpha = (float)a;
            out->elastic_sigma = (float)b;
        } else {
            static const double hi[3] = {64, 180, 0.9};
            if (parse_value(v, end, 0, hi[k], &a))
                return spec_error(err, errlen, "--augment '%s': %s takes a number from 0 to %g, not '%.*s'", text, keys[k], hi[k], (int)(end - v), v);
            float *dst[3] = {&out->shift, &out->rotate, &out->scale};
            *dst[k] = (float)a;
        }
        if (!comma) break;
        p = comma + 1;
        if (!*p) return spec_error(err, errlen, "--augment '%s' has a trailing comma", text);
    }
    return 0;
}

bool augment_active(const augment_spec *s)
{
    return s->shift > 0 || s->rotate > 0 || s->scale > 0 || s->elastic_alpha > 0;
}

bool augment_equal(const augment_spec *a, const augment_spec *b)
{
    return a->shift == b->shift && a->rotate == b->rotate && a->scale == b->scale &&
           a->elastic_alpha == b->elastic_alpha && a->elastic_sigma == b->elastic_sigma;
}

void augment_format(const augment_spec *s, char *buf, size_t len)
{
    if (!augment_active(s)) { snprintf(buf, len, "none"); return; }
    char part[4][64] = {"", "", "", ""};
    if (s->shift > 0) snprintf(part[0], sizeof part[0], ",shift=%g", (double)s->shift);
    if (s->rotate > 0) snprintf(part[1], sizeof part[1], ",rotate=%g", (double)s->rotate);
    if (s->scale > 0) snprintf(part[2], sizeof part[2], ",scale=%g", (double)s->scale);
    if (s->elastic_alpha > 0)
        snprintf(part[3], sizeof part[3], ",elastic=%g:%g", (double)s->elastic_alpha,
                 (double)s->elastic_sigma);
    char all[256];
    snprintf(all, sizeof all, "%s%s%s%s", part[0], part[1], part[2], part[3]);
    snprintf(buf, len, "%s", all + 1);   /* without the first comma */
}

uint64_t augment_counters(int width, int height)
{
    return 4 + 2 * (uint64_t)width * (uint64_t)height;
}

int augment_radius(const augment_spec *s)
{
    return s->elastic_alpha > 0 ? (int)ceilf(3.0f * s->elastic_sigma) : 0;
}

/* Pixel (x, y) of img, 0 outside. */
static double pixel(const uint8_t *img, int w, int h, long x, long y)
{
    return x < 0 || y < 0 || x >= w || y >= h ? 0.0 : (double)img[y * (long)w + x];
}

/* The blurred displacement field of one image, 2 components per pixel, into g (2 w h),
 * through tmp (2 w h). */
static void elastic_field(int w, int h, const augment_spec *s, uint64_t seed, uint64_t stream,
                          uint64_t base, double *g, double *tmp)
{
    int R = augment_radius(s);
    double *k = xmalloc((size_t)(2 * R + 1) * sizeof(double), "Gaussian kernel"), norm = 0.0;
    for (int i = -R; i <= R; i++) {
        k[i + R] = exp(-(double)(i * i) / (2.0 * (double)s->elastic_sigma * (double)s->elastic_sigma));
        norm += k[i + R];
    }
    size_t np = (size_t)w * (size_t)h;
    for (size_t p = 0; p < 2 * np; p++)
        g[p] = 2.0 * (double)rng_uniform(seed, stream, base + 4 + p) - 1.0;
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double acc = 0.0;
                for (int i = -R; i <= R; i++)
                    if (x + i >= 0 && x + i < w) acc += k[i + R] * g[2 * ((size_t)y * (size_t)w + (size_t)(x + i)) + (size_t)c];
                tmp[2 * ((size_t)y * (size_t)w + (size_t)x) + (size_t)c] = acc / norm;
            }
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double acc = 0.0;
                for (int i = -R; i <= R; i++)
                    if (y + i >= 0 && y + i < h) acc += k[i + R] * tmp[2 * ((size_t)(y + i) * (size_t)w + (size_t)x) + (size_t)c];
                g[2 * ((size_t)y * (size_t)w + (size_t)x) + (size_t)c] = (double)s->elastic_alpha * acc / norm;
            }
    free(k);
}

void augment_reference(const uint8_t *src, const uint32_t *idx, int m, int width, int height,
                       const augment_spec *s, uint64_t seed, uint64_t stream, uint64_t pos0,
                       uint8_t *dst)
{
    size_t np = (size_t)width * (size_t)height;
    bool elastic = s->elastic_alpha > 0;
    double *g = elastic ? xmalloc(2 * np * sizeof(double), "displacement field") : NULL;
    double *tmp = elastic ? xmalloc(2 * np * sizeof(double), "displacement field") : NULL;
    double cx = 0.5 * (width - 1), cy = 0.5 * (height - 1);
    for (int i = 0; i < m; i++) {
        const uint8_t *img = src + (size_t)(idx ? idx[i] : (uint32_t)i) * np;
        uint8_t *out = dst + (size_t)i * np;
        uint64_t base = (pos0 + (uint64_t)i) * augment_counters(width, height);
        double u[4];
        for (int k = 0; k < 4; k++) u[k] = 2.0 * (double)rng_uniform(seed, stream, base + (uint64_t)k) - 1.0;
        double tx = s->shift * u[0], ty = s->shift * u[1];
        double th = s->rotate * u[2] * (3.14159265358979323846 / 180.0);
        double sc = 1.0 + s->scale * u[3], ct = cos(th), st = sin(th);
        if (elastic) elastic_field(width, height, s, seed, stream, base, g, tmp);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) {
                double du = x - cx - tx, dv = y - cy - ty;
                double sx = cx + (ct * du + st * dv) / sc, sy = cy + (ct * dv - st * du) / sc;
                if (elastic) {
                    sx += g[2 * ((size_t)y * (size_t)width + (size_t)x)];
                    sy += g[2 * ((size_t)y * (size_t)width + (size_t)x) + 1];
                }
                double fx0 = floor(sx), fy0 = floor(sy), fx = sx - fx0, fy = sy - fy0;
                long x0 = (long)fx0, y0 = (long)fy0;
                double v = (1.0 - fy) * ((1.0 - fx) * pixel(img, width, height, x0, y0) +
                                         fx * pixel(img, width, height, x0 + 1, y0)) +
                           fy * ((1.0 - fx) * pixel(img, width, height, x0, y0 + 1) +
                                 fx * pixel(img, width, height, x0 + 1, y0 + 1));
                v = floor(v + 0.5);
                out[(size_t)y * (size_t)width + (size_t)x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
    free(g);
    free(tmp);
}
