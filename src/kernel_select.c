/* kernel_select.c: finds the top-level kernels of an OpenCL C source and blanks all but one
 * (see kernel_select.h). A small scanner, not a parser: it knows comments, string and character
 * literals, preprocessor lines, and balanced (), {}; whatever it cannot follow makes it give up,
 * and the caller builds the whole source as before. */
#include "kernel_select.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define BAD ((size_t)-1)

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_word(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* When s[i] starts a comment, a literal or (at a line's start) a preprocessor line: the index
 * just after it (a directive ends before its newline). i when it starts none; BAD when it
 * never ends. Directives are skipped so that a #define's body (which may spell a kernel or an
 * unbalanced brace) is not read as code. */
static size_t skip_noncode(const char *s, size_t i, bool line_start)
{
    if (s[i] == '/' && s[i + 1] == '/') {
        while (s[i] && s[i] != '\n') i++;
        return i;
    }
    if (s[i] == '/' && s[i + 1] == '*') {
        const char *e = strstr(s + i + 2, "*/");
        return e ? (size_t)(e - s) + 2 : BAD;
    }
    if (s[i] == '"' || s[i] == '\'') {
        char q = s[i++];
        while (s[i] && s[i] != q && s[i] != '\n') i += s[i] == '\\' && s[i + 1] ? 2 : 1;
        return s[i] == q ? i + 1 : BAD;
    }
    if (s[i] == '#' && line_start) {
        while (s[i] && s[i] != '\n') i += s[i] == '\\' && s[i + 1] == '\n' ? 2 : 1;
        return i;
    }
    return i;
}

/* A cursor over code: moves past blanks, comments, literals and directives. */
typedef struct {
    const char *s;
    size_t i;
    bool line_start;
} cursor;

/* Moves to the next code character (or the terminating NUL); false when a comment or literal
 * does not end. */
static bool next_code(cursor *c)
{
    for (;;) {
        size_t j = skip_noncode(c->s, c->i, c->line_start);
        if (j == BAD) return false;
        if (j != c->i) { c->i = j; continue; }
        char ch = c->s[c->i];
        if (ch == '\n') { c->line_start = true; c->i++; continue; }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') { c->i++; continue; }
        return true;
    }
}

/* c at `open`: moves just past its matching `close`; false when there is none. */
static bool skip_balanced(cursor *c, char open, char close)
{
    int depth = 0;
    do {
        if (!next_code(c) || !c->s[c->i]) return false;
        char ch = c->s[c->i++];
        c->line_start = false;
        if (ch == open) depth++;
        else if (ch == close) depth--;
    } while (depth > 0);
    return depth == 0;
}

/* c just past an identifier: reads it back into [*at, *at + *len) after moving past it. */
static bool read_ident(cursor *c, size_t *at, size_t *len)
{
    if (!ident_char(c->s[c->i])) return false;
    *at = c->i;
    while (ident_char(c->s[c->i])) c->i++;
    *len = c->i - *at;
    c->line_start = false;
    return true;
}

/* c just past the `__kernel` keyword starting at `start`: reads the declaration. 1 and *k for a
 * definition, 0 for a declaration without a body (c after its ';'), -1 when unreadable. */
static int read_kernel(cursor *c, size_t start, kernel_span *k)
{
    size_t name = 0, name_len = 0;
    for (;;) {   /* qualifiers, attributes, the return type and the name, up to the '(' */
        if (!next_code(c)) return -1;
        size_t at, len;
        if (read_ident(c, &at, &len)) {
            if (is_word(c->s + at, len, "__attribute__")) {
                if (!next_code(c) || c->s[c->i] != '(' || !skip_balanced(c, '(', ')')) return -1;
                continue;
            }
            name = at;
            name_len = len;
            continue;
        }
        if (c->s[c->i] == '(') break;
        if (c->s[c->i] != '*') return -1;   /* only a pointer may stand between type and name */
        c->i++;
    }
    if (name_len == 0 || is_word(c->s + name, name_len, "void") || !skip_balanced(c, '(', ')'))
        return -1;
    for (;;) {   /* attributes after the parameters, then the body or a ';' */
        if (!next_code(c)) return -1;
        size_t at, len;
        if (read_ident(c, &at, &len)) {
            if (!is_word(c->s + at, len, "__attribute__")) return -1;
            if (!next_code(c) || c->s[c->i] != '(' || !skip_balanced(c, '(', ')')) return -1;
            continue;
        }
        break;
    }
    if (c->s[c->i] == ';') { c->i++; return 0; }
    if (c->s[c->i] != '{' || !skip_balanced(c, '{', '}')) return -1;
    *k = (kernel_span){start, c->i, name, name_len};
    return 1;
}

int kernel_spans(const char *source, kernel_span *spans, int max)
{
    cursor c = {source, 0, true};
    int n = 0, depth = 0;
    for (;;) {
        if (!next_code(&c)) return -1;
        char ch = source[c.i];
        if (!ch) break;
        size_t at, len;
        if (read_ident(&c, &at, &len)) {
            if (depth == 0 && (is_word(source + at, len, "__kernel") || is_word(source + at, len, "kernel"))) {
                kernel_span k;
                int r = read_kernel(&c, at, &k);
                if (r < 0) return -1;
                if (r > 0) {
                    if (n < max) spans[n] = k;
                    n++;
                }
            }
            continue;
        }
        c.i++;
        c.line_start = false;
        if (ch == '{') depth++;
        else if (ch == '}' && --depth < 0) return -1;
    }
    if (depth != 0) return -1;
    return n < max ? n : max;
}

/* Whether the space-separated list `set` holds the word s[0..n). */
static bool in_set(const char *set, const char *s, size_t n)
{
    for (const char *p = set; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ' ') e++;
        if ((size_t)(e - p) == n && n > 0 && memcmp(p, s, n) == 0) return true;
        p = e;
    }
    return false;
}

char *kernel_select(const char *source, const char *keep)
{
    enum { MAX_KERNELS = 256 };
    kernel_span spans[MAX_KERNELS];
    int n = kernel_spans(source, spans, MAX_KERNELS);
    if (n < 0 || n == MAX_KERNELS) return NULL;
    size_t len = strlen(source);
    char *out = xmalloc(len + 1, "a kernel source");
    memcpy(out, source, len + 1);
    for (int i = 0; i < n; i++) {
        if (in_set(keep, source + spans[i].name, spans[i].name_len)) continue;
        for (size_t j = spans[i].start; j < spans[i].end; j++)
            if (out[j] != '\n') out[j] = ' ';
    }
    return out;
}
