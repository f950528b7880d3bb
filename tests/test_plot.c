/* test_plot.c: the charts of a training log (plot_log in-process and `cltrain plot` through
 * the real binary): two 900 x 600 PNGs from a good log; exit 2 and no charts for logs that are
 * not cltrain's; exit 1 without gnuplot. Figure lists: shared y ranges, the numbered PNGs, the
 * contact sheet and an image drawn 1:1, malformed lists refused with their line. And the man page: every flag `cltrain --help` lists
 * is in cltrain.1 (read from $CLTRAIN_SRC_DIR, else the current folder). */
#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stb_image.h>

#include "image_io.h"
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

/* A figure list: two logs whose accuracy ranges differ (0.70-0.88 and 0.10-0.30), charts 6 and
 * 8 sharing axes "a", chart 7 on its own, an image figure of a 50 x 30 PNG. */
static const char low_log[] =
    "epoch,loss,mse,train_acc,test_acc,seconds\n"
    "1,2.30,0.090,0.100,0.120,0.5\n"
    "2,2.10,0.085,0.200,0.250,0.5\n"
    "3,2.00,0.080,0.300,0.290,0.5\n";

static void write_figure_files(void)
{
    write_text("high.csv", good_log);
    write_text("low.csv", low_log);
    unsigned char px[50 * 30 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 7);
    char p[128], err[256];
    path_in(p, sizeof p, "img.png");
    ck_assert_msg(image_write_png(p, px, 50, 30, 3, err, sizeof err) == 0, "%s", err);
    write_text("list.tsv",
               "figure\tchart\taxes\tcaption\tlog\tlabel\n"
               "# a comment, then a blank line\n"
               "\n"
               "title\tthe sheet\n"
               "6\taccuracy\ta\thigh, 'quoted', \xce\xb1 = 0.1\thigh.csv\tα = 0.1\n"
               "7\tmse\t-\tboth logs' MSE\thigh.csv\thigh\tlow.csv\tlow\n"
               "8\taccuracy\ta\tlow\tlow.csv\t\n"
               "34\timage\t-\tthe picture\timg.png\n");
}

/* The y ranges of the script's charts, in order ("set yrange [lo:hi]"), into lo/hi. */
static int yranges(const char *script, double *lo, double *hi, int max)
{
    int n = 0;
    for (const char *p = strstr(script, "set yrange ["); p && n < max; p = strstr(p + 1, "set yrange [")) {
        ck_assert_int_eq(sscanf(p, "set yrange [%lf:%lf]", &lo[n], &hi[n]), 2);
        n++;
    }
    return n;
}

START_TEST(test_figures_share_axes)
{
    write_figure_files();
    char list[128], err[1024];
    path_in(list, sizeof list, "list.tsv");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    int rc = plot_figures_script(list, "out", f, err, sizeof err);
    fclose(f);
    ck_assert_msg(rc == 0, "%s", err);
    /* Three charts drawn twice (their PNG, the contact sheet), then the image: 6 y ranges of
     * charts (the image's comes last and is its pixel range). */
    double lo[16], hi[16];
    int n = yranges(text, lo, hi, 16);
    ck_assert_int_eq(n, 7);
    /* 6 and 8 share one range covering both logs' accuracies, 0.10 to 0.89, with a margin. */
    ck_assert(lo[0] == lo[2] && hi[0] == hi[2]);
    ck_assert(lo[0] < 0.10 && lo[0] >= 0.0 && hi[0] > 0.89 && hi[0] < 0.95);
    /* 7 (MSE, its own axes) covers both logs' MSE, 0.025 to 0.090, and no more than 10 % of
     * the span beyond. */
    ck_assert(lo[1] < 0.025 && lo[1] > 0.025 - 0.0065 && hi[1] > 0.090 && hi[1] < 0.090 + 0.0065);
    /* The sheet draws the same ranges. */
    for (int i = 0; i < 3; i++) ck_assert(lo[i] == lo[3 + i] && hi[i] == hi[3 + i]);
    ck_assert(strstr(text, "Figure 6: high, ''quoted'', \xce\xb1 = 0.1") != NULL);
    ck_assert(strstr(text, "multiplot layout 2,2") && strstr(text, "the sheet"));
    ck_assert(strstr(text, "out/figure-06.png") && strstr(text, "out/figure-34.png") && strstr(text, "out/figures.png"));
    /* Two logs in chart 7: one colour each, the labels in the legend. */
    ck_assert(strstr(text, "lc 2 dt 1 title 'low'") != NULL);
    free(text);
}
END_TEST

START_TEST(test_figures_written)
{
    write_figure_files();
    ck_assert_msg(bin_run("plot list.tsv out") == 0, "%s", bin_err());
    ck_assert_msg(strstr(bin_out(), "5 PNGs") != NULL, "%s", bin_out());
    check_png("out/figure-06.png", 900, 600);
    check_png("out/figure-07.png", 900, 600);
    check_png("out/figure-08.png", 900, 600);
    check_png("out/figure-34.png", 50 + 40, 30 + 90);
    check_png("out/figures.png", 2 * 600, 2 * 400 + 60);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s/out | wc -l) -eq 5", bin_dir());
    ck_assert_msg(system(cmd) == 0, "files other than the five PNGs are left in out/");
    /* The image is drawn 1:1: its top-left pixel lands at (20, 70) of the figure. */
    char p[128];
    path_in(p, sizeof p, "out/figure-34.png");
    int w, h, comp;
    unsigned char *img = stbi_load(p, &w, &h, &comp, 3);
    ck_assert_ptr_nonnull(img);
    /* cairo blends the plot area's outermost pixels with the background: the inner ones. */
    int hits = 0;
    for (int y = 1; y < 29; y++)
        for (int x = 1; x < 49; x++) {
            const unsigned char *got = img + 3 * ((size_t)(70 + y) * (size_t)w + 20 + (size_t)x);
            unsigned char want = (unsigned char)((3 * ((size_t)y * 50 + (size_t)x)) * 7);
            hits += abs(got[0] - want) <= 8;
        }
    stbi_image_free(img);
    ck_assert_msg(hits == 48 * 28, "only %d of %d image pixels are where they belong", hits, 48 * 28);
}
END_TEST

/* Each: exit 2 with the list's name and line, nothing written. */
static const struct { const char *row, *needle; } bad_rows[] = {
    {"6\tbars\ta\tc\thigh.csv\tl\n", ":2: the chart is 'bars'"},
    {"0\taccuracy\ta\tc\thigh.csv\tl\n", ":2: the figure number is '0'"},
    {"x6\taccuracy\ta\tc\thigh.csv\tl\n", ":2: the figure number is 'x6'"},
    {"6\taccuracy\ta\tc\thigh.csv\n", ":2: after the caption come pairs"},
    {"6\taccuracy\ta\t\thigh.csv\tl\n", ":2: the caption is empty"},
    {"6\taccuracy\ta\tc\n", ":2: 4 fields"},
    {"6\taccuracy\ta\tc\thigh.csv\tl\n6\tmse\ta\tc\thigh.csv\tl\n", ":3: figure 6 is listed twice"},
    {"6\tmse\ta\tc\tmissing.csv\tl\n", "missing.csv: cannot read the log"},
    {"6\tmse\ta\tc\tlist.tsv\tl\n", "not a cltrain log"},
    {"6\timage\t-\tc\thigh.csv\n", "high.csv: not a readable PNG"},
    {"# nothing\n", "no figures"},
};

START_TEST(test_figures_bad_lists)
{
    write_figure_files();
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++) {
        char text[512], list[128], out[128], err[1024];
        snprintf(text, sizeof text, "figure\tchart\taxes\tcaption\tlog\tlabel\n%s", bad_rows[i].row);
        write_text("bad.tsv", text);
        path_in(list, sizeof list, "bad.tsv");
        path_in(out, sizeof out, "out");
        int rc = plot_figures(list, out, NULL, err, sizeof err);
        ck_assert_msg(rc == EXIT_USAGE, "list %zu: status %d (%s)", i, rc, err);
        ck_assert_msg(strstr(err, bad_rows[i].needle) && strstr(err, "bad.tsv"), "list %zu: %s", i, err);
        ck_assert(!exists("out"));
    }
    /* Through the binary: exit 2 and one line naming the file and line. */
    write_text("bad.tsv", "figure\tchart\n7\tpie\ta\tc\thigh.csv\tl\n");
    ck_assert_int_eq(bin_run("plot bad.tsv out"), 2);
    ck_assert_msg(strstr(bin_err(), "bad.tsv:2:") && strchr(bin_err(), '\n') == bin_err() + strlen(bin_err()) - 1,
                  "%s", bin_err());
    ck_assert(!exists("out"));
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
    tcase_add_test(tc, test_figures_share_axes);
    tcase_add_test(tc, test_figures_written);
    tcase_add_test(tc, test_figures_bad_lists);
    suite_add_tcase(s, tc);

    tc = tcase_create("manpage");
    bin_fixture(tc);
    tcase_add_test(tc, test_man_page_lists_every_flag);
    suite_add_tcase(s, tc);
    return s;
}
