/* test_kernel_select.c: the kernel selector (src/kernel_select.c) on sources written to trip it
 * (kernels spelled in comments, literals and #defines, attributes before and after the
 * parameters, prototypes, braces in strings) and on every kernel file built into the binary.
 * The OpenCL side (each program holds exactly the kernels asked for) is in test_cl_runtime. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_select.h"
#include "kernels_embedded.h"
#include "test_suites.h"

static const char tricky[] =
    "/* __kernel void in_comment(void) { } */\n"
    "// kernel void in_line_comment() {\n"
    "#define MAKE(N) __kernel void N(__global float *x) { x[0] = 1; }\n"
    "#define BRACE {\n"
    "static inline float helper(float v) { return v > 0 ? v : 0; }\n"
    "__kernel void first(__global float *y)\n"
    "{\n"
    "    const char *s = \"} __kernel void in_string() {\";\n"
    "    if (y) { y[0] = helper(1.0f); }\n"
    "    char c = '}';\n"
    "}\n"
    "__kernel void proto(__global float *y);\n"
    "__kernel __attribute__((reqd_work_group_size(16, 1, 1)))\n"
    "void second(__global float *y) { y[get_global_id(0)] = 2.0f; }\n"
    "kernel void third(global float *y) __attribute__((vec_type_hint(float)))\n"
    "{\n"
    "#if X\n"
    "    y[0] = 3.0f;\n"
    "#endif\n"
    "}\n"
    "MAKE(from_macro)\n";

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void assert_has(const char *text, const char *what, bool yes)
{
    ck_assert_msg((strstr(text, what) != NULL) == yes, "'%s' %s in:\n%s", what,
                  yes ? "missing" : "left", text);
}

START_TEST(test_spans)
{
    kernel_span sp[8];
    int n = kernel_spans(tricky, sp, 8);
    ck_assert_int_eq(n, 3);   /* first, second, third: not the comments, string, #define, proto */
    static const char *const names[] = {"first", "second", "third"};
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(sp[i].name_len, strlen(names[i]));
        ck_assert(memcmp(tricky + sp[i].name, names[i], sp[i].name_len) == 0);
        ck_assert_int_eq(tricky[sp[i].end - 1], '}');
        ck_assert(strncmp(tricky + sp[i].start, "__kernel", 8) == 0 ||
                  strncmp(tricky + sp[i].start, "kernel", 6) == 0);
    }
    ck_assert_int_eq(kernel_spans(tricky, sp, 1), 1);   /* max respected */
}
END_TEST

START_TEST(test_select)
{
    char *s = kernel_select(tricky, "second");
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), strlen(tricky));
    ck_assert_int_eq(lines(s), lines(tricky));   /* build logs keep their line numbers */
    assert_has(s, "void second(", true);
    assert_has(s, "void first(", false);
    assert_has(s, "in_string", false);
    assert_has(s, "void third(", false);
    assert_has(s, "helper(float v)", true);      /* helpers stay; the compiler drops them */
    assert_has(s, "MAKE(from_macro)", true);     /* macro kernels are not seen */
    assert_has(s, "void proto(", true);          /* a prototype is no kernel to build */
    assert_has(s, "in_comment", true);
    free(s);

    s = kernel_select(tricky, "third first");
    ck_assert_ptr_nonnull(s);
    assert_has(s, "void first(", true);
    assert_has(s, "void third(", true);
    assert_has(s, "void second(", false);
    assert_has(s, "#if X", true);
    free(s);

    s = kernel_select(tricky, "fir");   /* names are whole words */
    ck_assert_ptr_nonnull(s);
    assert_has(s, "void first(", false);
    free(s);
}
END_TEST

START_TEST(test_unreadable)
{
    static const char *const bad[] = {
        "__kernel void a() { if (1) { }\n",              /* unclosed body */
        "__kernel void a() { }\n}\n",                    /* a brace too many */
        "__kernel void a() { } /* never closed\n",
        "__kernel void a() { const char *s = \"x; }\n",  /* literal runs to the line's end */
        "__kernel void (int x) { }\n",                   /* no name */
        "__kernel void a(int x { }\n",
    };
    kernel_span sp[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(kernel_spans(bad[i], sp, 4) == -1, "source %zu: %s", i, bad[i]);
        ck_assert_ptr_null(kernel_select(bad[i], "a"));
    }
    ck_assert_int_eq(kernel_spans("", sp, 4), 0);
    ck_assert_int_eq(kernel_spans("static inline int f(void) { return 1; }\n", sp, 4), 0);
}
END_TEST

/* Every file of kernels/ can be read (a file it could not read would be built whole, every
 * kernel compiled, silently), and blanking every kernel leaves none. */
START_TEST(test_embedded_files)
{
    int files = 0, total = 0;
    for (const embedded_kernel *k = embedded_kernels; k->name; k++) {
        kernel_span sp[64];
        int n = kernel_spans(k->source, sp, 64);
        ck_assert_msg(n >= 0, "%s cannot be read by kernel_select.c", k->name);
        total += n;
        files++;
        char *one = n > 0 ? kernel_select(k->source, "no_such_kernel") : NULL;
        if (one) {   /* everything blanked: no kernel keyword at the top level is left */
            ck_assert_int_eq(kernel_spans(one, sp, 64), 0);
            free(one);
        }
    }
    ck_assert_int_ge(files, 12);
    ck_assert_int_ge(total, 30);
}
END_TEST

Suite *kernel_select_suite(void)
{
    Suite *s = suite_create("kernel_select");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_spans);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_unreadable);
    tcase_add_test(tc, test_embedded_files);
    suite_add_tcase(s, tc);
    return s;
}
