/* test_plot.c: the charts of a training log (plot_log in-process and `cltrain plot` through
 * the real binary): two 900 x 600 PNGs from a good log; exit 2 and no charts for logs that are
 * not cltrain's; exit 1 without gnuplot. And the man page: every flag `cltrain --help` lists
 * is in cltrain.1 (read from $CLTRAIN_SRC_DIR, else the current folder). */
#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"
#include "support.h"
#include "test_suites.h"
#include "util.h"

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", bin_dir(), name);
}

static void write_text(const char *name, const char *text)
{
    char p[128];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* name (relative to the test's folder) is a PNG of w x h pixels. */
static void check_png(const char *name, int w, int h)
{
    char p[256];
    path_in(p, sizeof p, name);
    assert_png(p, w, h);
}

static bool exists(const char *name)
{
    char p[256];
    path_in(p, sizeof p, name);
    return access(p, F_OK) == 0;
}

static const char good_log[] =
    "epoch,loss,mse,train_acc,test_acc,seconds\n"
    "1,1.20,0.060,0.700,0.710,0.5\n"
    "2,0.80,0.040,0.820,0.815,0.5\n"
    "3,0.60,0.030,0.870,0.860,0.5\n"
    "4,0.50,0.025,0.890,0.880,0.5\n";

START_TEST(test_plot_command_writes_two_pngs)
{
    write_text("run.csv", good_log);
    ck_assert_msg(bin_run("plot run.csv charts") == 0, "%s", bin_err());
    check_png("charts/accuracy.png", 900, 600);
    check_png("charts/mse.png", 900, 600);
    /* Again into the same folder: the charts are replaced, no temporary files stay. */
    ck_assert_msg(bin_run("plot run.csv charts") == 0, "%s", bin_err());
    check_png("charts/accuracy.png", 900, 600);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s/charts | wc -l) -eq 2", bin_dir());
    ck_assert_msg(system(cmd) == 0, "files other than the two charts are left in charts/");
}
END_TEST

/* Validation and learning-rate columns, columns in another order, a title with quotes and
 * an alpha, a folder that does not exist yet. */
START_TEST(test_plot_log_in_process)
{
    write_text("val.csv",
               "epoch,loss,mse,train_acc,test_acc,val_acc,seconds,lr\n"
               "1,1.2,0.06,0.70,0.71,0.72,0.5,0.1\n"
               "2,0.8,0.04,0.82,0.81,0.83,0.5,0.05\n");
    write_text("shuffled.csv",
               "seconds,test_acc,epoch,train_acc,loss,mse\n"
               "0.5,0.71,1,0.70,1.2,0.06\n");
    char csv[128], out[128], err[1024];
    path_in(csv, sizeof csv, "val.csv");
    path_in(out, sizeof out, "new/deeper");
    int rc = plot_log(csv, out, "784-10-10 relu, \xce\xb1 = 0.1 'quoted'", err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    check_png("new/deeper/accuracy.png", 900, 600);
    check_png("new/deeper/mse.png", 900, 600);
    path_in(csv, sizeof csv, "shuffled.csv");
    path_in(out, sizeof out, "one");
    rc = plot_log(csv, out, "one epoch", err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    check_png("one/accuracy.png", 900, 600);
}
END_TEST

/* Each: exit 2 (EXIT_USAGE) with a message naming the file, and no charts. */
static const struct { const char *text, *needle; } bad_logs[] = {
    {"a,b\n1,2\n", "not a cltrain log"},
    {"epoch,loss,mse,train_acc,seconds\n1,1,0.1,0.5,1\n", "'test_acc'"},
    {"epoch,loss,mse,train_acc,test_acc,seconds\n1,1,0.1,0.5,0.5\n", "fields"},
    {"epoch,loss,mse,train_acc,test_acc,seconds\n1,1,0.1,abc,0.5,1\n", "not a number"},
    {"epoch,loss,mse,train_acc,test_acc,seconds\n", "no epochs"},
    {"", "empty"},
    {"\x89PNG\r\n\x1a\n\x00\x00", "not a cltrain log"},
};

START_TEST(test_plot_bad_logs)
{
    for (size_t i = 0; i < sizeof bad_logs / sizeof bad_logs[0]; i++) {
        char name[32], csv[128], out[128], err[1024];
        snprintf(name, sizeof name, "bad%zu.csv", i);
        path_in(csv, sizeof csv, name);
        FILE *f = fopen(csv, "wb");
        ck_assert_ptr_nonnull(f);
        size_t len = i == 6 ? 10 : strlen(bad_logs[i].text);
        fwrite(bad_logs[i].text, 1, len, f);
        fclose(f);
        path_in(out, sizeof out, "charts");
        int rc = plot_log(csv, out, "t", err, sizeof err);
        ck_assert_msg(rc == EXIT_USAGE, "log %zu: status %d (%s)", i, rc, err);
        ck_assert_msg(strstr(err, bad_logs[i].needle) && strstr(err, name), "log %zu: %s", i, err);
        ck_assert(!exists("charts/accuracy.png") && !exists("charts/mse.png"));
    }
    /* Through the binary: exit 2 and one line; a missing file; the wrong number of arguments. */
    ck_assert_int_eq(bin_run("plot bad0.csv charts"), 2);
    ck_assert_msg(strstr(bin_err(), "bad0.csv") && strstr(bin_err(), "not a cltrain log"), "%s", bin_err());
    ck_assert_msg(strchr(bin_err(), '\n') == bin_err() + strlen(bin_err()) - 1, "not one line: %s", bin_err());
    ck_assert_int_eq(bin_run("plot missing.csv charts"), 2);
    ck_assert(strstr(bin_err(), "missing.csv") != NULL);
    ck_assert_int_eq(bin_run("plot bad0.csv"), 2);
    ck_assert(!exists("charts/accuracy.png"));
}
END_TEST

START_TEST(test_plot_without_gnuplot)
{
    write_text("run.csv", good_log);
    ck_assert_int_eq(bin_run_env("PATH=/nonexistent", "plot run.csv charts"), 1);
    ck_assert_msg(strstr(bin_err(), "gnuplot") != NULL, "%s", bin_err());
    ck_assert(!exists("charts"));
}
END_TEST

/* --flag (flag: letters, digits and hyphens) appears in text, followed by no further flag
 * character (so --batch is not found in --batch-size alone). */
static bool has_flag(const char *text, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = strstr(text, flag); p; p = strstr(p + 1, flag)) {
        char next = p[n];
        if (!(isalnum((unsigned char)next) || next == '-')) return true;
    }
    return false;
}

START_TEST(test_man_page_lists_every_flag)
{
    const char *src = getenv("CLTRAIN_SRC_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/cltrain.1", src && *src ? src : ".");
    size_t len;
    char *man = (char *)read_file(path, &len);
    ck_assert_msg(man != NULL, "cannot read %s (set CLTRAIN_SRC_DIR to the source tree)", path);
    /* roff writes a hyphen as \- : drop the backslash. */
    char *w = man;
    for (const char *r = man; *r; r++)
        if (!(r[0] == '\\' && r[1] == '-')) *w++ = *r;
    *w = 0;
    static const char *const sections[] = {".TH ", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION",
                                           ".SH COMMANDS", ".SH OPTIONS", ".SH EXIT STATUS",
                                           ".SH FILES", ".SH EXAMPLES"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        ck_assert_msg(strstr(man, sections[i]) != NULL, "cltrain.1 has no %s", sections[i]);

    ck_assert_int_eq(bin_run("--help"), 0);
    int flags = 0;
    for (const char *p = strstr(bin_out(), "--"); p; p = strstr(p, "--")) {
        size_t n = 2;
        while (isalnum((unsigned char)p[n]) || p[n] == '-') n++;
        if (n > 2) {
            char flag[64];
            snprintf(flag, sizeof flag, "%.*s", (int)n, p);
            ck_assert_msg(has_flag(man, flag), "%s is in --help but not in cltrain.1", flag);
            flags++;
        }
        p += n;
    }
    ck_assert_msg(flags > 30, "only %d flags found in --help", flags);
    free(man);
}
END_TEST

Suite *plot_suite(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("charts");
    bin_fixture(tc);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_plot_command_writes_two_pngs);
    tcase_add_test(tc, test_plot_log_in_process);
    tcase_add_test(tc, test_plot_bad_logs);
    tcase_add_test(tc, test_plot_without_gnuplot);
    suite_add_tcase(s, tc);

    tc = tcase_create("manpage");
    bin_fixture(tc);
    tcase_add_test(tc, test_man_page_lists_every_flag);
    suite_add_tcase(s, tc);
    return s;
}
