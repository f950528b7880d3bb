/* test_reproduce.c: scripts/reproduce.sh (make reproduce) cut down to 2 epochs a run on 200
 * training and test images on the host device: every figure of the report (6-34) and the
 * contact sheet are PNGs of their size, and SUMMARY.md links each of them and every run's log.
 * The script is read from $CLTRAIN_SRC_DIR, else the current folder. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image_io.h"
#include "support.h"
#include "test_suites.h"
#include "util.h"

static char dir[64];

static void make_dir(void) { work_dir_make(dir, sizeof dir, "reproduce"); }
static void remove_dir(void) { work_dir_remove(dir); }

/* dir/name is a PNG of w x h pixels. */
static void check_png(const char *name, int w, int h)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_png(p, w, h);
}

START_TEST(test_reproduce_cut_down)
{
    const char *src = getenv("CLTRAIN_SRC_DIR");
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && CLTRAIN='%s' DATA='%s' OUT='%s/seed' DEVICE=host MAX_EPOCHS=2 LIMIT=200 "
             "sh scripts/reproduce.sh >'%s/log.txt' 2>&1",
             src && *src ? src : ".", cltrain_bin(), mnist_dir(), dir, dir);
    int st = system(cmd);
    if (!(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        snprintf(cmd, sizeof cmd, "tail -n 20 '%s/log.txt' >&2", dir);
        if (system(cmd) != 0) fprintf(stderr, "no log\n");
        ck_abort_msg("scripts/reproduce.sh failed (status %d); its output is above", st);
    }
    /* 900 x 600 charts; the prediction grid of 100 test images (10 x 10 cells of GRID_CELL_W x GRID_CELL_H) with
     * 20 px margins and a 70 px title band; the sheet: 28 charts, two a row of 600 x 400. */
    char name[64];
    for (int fig = 6; fig <= 33; fig++) {
        snprintf(name, sizeof name, "seed/figure-%02d.png", fig);
        check_png(name, 900, 600);
    }
    check_png("seed/figure-34.png", 10 * GRID_CELL_W + 40, 10 * GRID_CELL_H + 90);
    check_png("seed/figures.png", 2 * 600, 14 * 400 + 60);

    char p[256];
    snprintf(p, sizeof p, "%s/seed/SUMMARY.md", dir);
    size_t len;
    char *md = (char *)read_file(p, &len);
    ck_assert_msg(md != NULL, "SUMMARY.md was not written");
    ck_assert(strstr(md, "Cut down") != NULL);
    ck_assert(strstr(md, "](figures.png)") != NULL);
    for (int fig = 6; fig <= 34; fig++) {
        char link[64], img[64];
        snprintf(link, sizeof link, "](figure-%02d.png)", fig);
        snprintf(img, sizeof img, "<img src=\"figure-%02d.png\"", fig);
        ck_assert_msg(strstr(md, link) && strstr(md, img), "SUMMARY.md neither links nor shows figure %d", fig);
    }
    /* 26 runs: one table row and one log each, the log holding the capped 2 epochs. */
    static const char *const acts[] = {"relu", "sigmoid"};
    int rows = 0;
    for (const char *q = strstr(md, "\n| "); q; q = strstr(q + 1, "\n| "))
        rows += q[3] >= '1' && q[3] <= '2' && q[4] == ' ';
    ck_assert_int_eq(rows, 26);
    for (int l = 1; l <= 2; l++)
        for (int a = 0; a < 2; a++)
            for (int e = 0; e < 4; e++) {
                static const int epochs[] = {3, 10, 100, 500};
                if (epochs[e] == 500 && l == 2) continue;
                for (int r = 0; r < 2; r++) {
                    if (epochs[e] == 500 && r == 0) continue;
                    snprintf(p, sizeof p, "%s/seed/h%d-%s-e%d-lr%s.csv", dir, l, acts[a], epochs[e], r ? "0.1" : "0.01");
                    char *csv = (char *)read_file(p, &len);
                    ck_assert_msg(csv != NULL, "%s was not written", p);
                    ck_assert_msg(strstr(csv, "\n2,") && !strstr(csv, "\n3,"), "%s: not 2 epochs", p);
                    free(csv);
                }
            }
    /* Nothing temporary is left beside the results. */
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s/seed' | grep -e '^\\.' -e tmp)\"", dir);
    ck_assert_msg(system(cmd) == 0, "temporary files are left in the results folder");
    free(md);
}
END_TEST

Suite *reproduce_suite(void)
{
    Suite *s = suite_create("reproduce");
    TCase *tc = tcase_create("cut_down");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    /* About 10 s on a 2-core machine; generous for a loaded one. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reproduce_cut_down);
    suite_add_tcase(s, tc);
    return s;
}
