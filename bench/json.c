/* json.c: the little JSON the benchmark needs. It reads only what its own peers print (one
 * flat object per line, bench/numpy_ref.py and bench/torch_ref.py), so a key lookup is enough;
 * it writes its results file with the two put helpers. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The first character of the value after "key": (spaces skipped), or NULL. */
static const char *value_of(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = text; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
            const char *v = p + 2 + klen;
            while (*v == ' ') v++;
            if (*v != ':') continue;
            v++;
            while (*v == ' ') v++;
            return v;
        }
    }
    return NULL;
}

bool json_number(const char *text, const char *key, double *out)
{
    const char *v = value_of(text, key);
    if (!v) return false;
    char *end;
    double x = strtod(v, &end);
    if (end == v) return false;
    *out = x;
    return true;
}

bool json_string(const char *text, const char *key, char *buf, size_t len)
{
    const char *v = value_of(text, key);
    if (!v || *v != '"' || len == 0) return false;
    size_t k = 0;
    for (v++; *v && *v != '"'; v++) {
        char c = *v;
        if (c == '\\' && v[1]) {
            v++;
            c = *v == 'n' ? ' ' : *v == 't' ? ' ' : *v;
        }
        if (k + 1 < len) buf[k++] = c;
    }
    buf[k] = '\0';
    return true;
}

int json_numbers(const char *text, const char *key, double *v, int cap)
{
    const char *p = value_of(text, key);
    if (!p || *p != '[') return 0;
    int n = 0;
    p++;
    while (*p && *p != ']' && n < cap) {
        char *end;
        double x = strtod(p, &end);
        if (end == p) break;
        v[n++] = x;
        p = end;
        while (*p == ' ' || *p == ',') p++;
    }
    return n;
}

void json_put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void json_put_number(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.6g", x);
    else fputs("null", f);
}
