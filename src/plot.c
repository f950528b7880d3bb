/* plot.c: `cltrain plot LOG.csv DIR`, plot_log and plot_figures (plot.h): accuracy and MSE per
 * epoch from training logs, as PNG charts drawn by gnuplot from a generated script; a figure
 * list adds numbered figures with shared axes, a contact sheet and titled images. */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stb_image.h>

#include "commands.h"
#include "util.h"

extern char **environ;

#define LOG_HEADER "epoch,loss,mse,train_acc,test_acc[,val_acc],seconds[,lr]"
/* Logs with more epochs than this are drawn as lines only, shorter ones with points too. */
#define POINTS_UP_TO 50

static int fail(int status, char *err, size_t errlen, const char *fmt, ...) CLT_PRINTF(4, 5);
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* 1-based gnuplot column numbers of the fields the charts use; 0 = absent. */
typedef struct {
    int epoch, mse, train_acc, test_acc, val_acc;
    int fields;
    long rows;
    double first_epoch, last_epoch;
    double acc_lo, acc_hi, mse_lo, mse_hi;   /* the ranges of the finite values drawn */
} log_columns;

/* Splits a line in place at sep into at most max fields, trimming blanks; returns the count. */
static int split_fields(char *line, char sep, char **field, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, sep);
        if (comma) *comma = 0;
        while (*p == ' ' || *p == '\t') p++;
        char *end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = 0;
        if (n < max) field[n] = p;
        n++;
        if (!comma) return n;
        p = comma + 1;
    }
}

static int split_csv(char *line, char **field, int max) { return split_fields(line, ',', field, max); }

static void widen(double *lo, double *hi, double v)
{
    if (!isfinite(v)) return;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
}

#define MAX_FIELDS 64

/* Checks that csv_path is a cltrain log and finds its columns. */
static int read_log(const char *csv_path, log_columns *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->acc_lo = c->mse_lo = INFINITY;
    c->acc_hi = c->mse_hi = -INFINITY;
    size_t len;
    char *text = (char *)read_file(csv_path, &len);
    if (!text) return fail(EXIT_USAGE, err, errlen, "%s: cannot read the log: %s", csv_path, strerror(errno));
    if (memchr(text, 0, len)) {
        free(text);
        return fail(EXIT_USAGE, err, errlen, "%s: not a cltrain log (binary data); expected a CSV with the header %s",
                    csv_path, LOG_HEADER);
    }
    int status = 0;
    char *save = NULL, *field[MAX_FIELDS];
    long line_no = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        if (line_no == 1) {
            int n = split_csv(line, field, MAX_FIELDS);
            if (n > MAX_FIELDS) n = MAX_FIELDS;
            c->fields = n;
            for (int k = 0; k < n; k++) {
                int *slot = strcmp(field[k], "epoch") == 0 ? &c->epoch
                          : strcmp(field[k], "mse") == 0 ? &c->mse
                          : strcmp(field[k], "train_acc") == 0 ? &c->train_acc
                          : strcmp(field[k], "test_acc") == 0 ? &c->test_acc
                          : strcmp(field[k], "val_acc") == 0 ? &c->val_acc : NULL;
                if (slot) *slot = k + 1;
            }
            const char *missing = !c->epoch ? "epoch" : !c->mse ? "mse" : !c->train_acc ? "train_acc"
                                : !c->test_acc ? "test_acc" : NULL;
            if (missing) {
                status = fail(EXIT_USAGE, err, errlen,
                              "%s: not a cltrain log: the first line has no '%s' column; expected the header %s (written by --log)",
                              csv_path, missing, LOG_HEADER);
                break;
            }
            continue;
        }
        int n = split_csv(line, field, MAX_FIELDS);
        if (n == 1 && field[0][0] == 0) continue;   /* a blank line */
        if (n != c->fields) {
            status = fail(EXIT_USAGE, err, errlen, "%s:%ld: %d fields where the header has %d",
                          csv_path, line_no, n, c->fields);
            break;
        }
        for (int k = 0; k < n && k < MAX_FIELDS; k++) {
            char *end;
            errno = 0;
            double v = strtod(field[k], &end);
            if (k + 1 == c->epoch) {
                if (c->rows == 0 || v < c->first_epoch) c->first_epoch = v;
                if (c->rows == 0 || v > c->last_epoch) c->last_epoch = v;
            }
            if (end == field[k] || *end || errno == ERANGE) {
                status = fail(EXIT_USAGE, err, errlen, "%s:%ld: field %d is '%s', not a number",
                              csv_path, line_no, k + 1, field[k]);
                break;
            }
            if (k + 1 == c->train_acc || k + 1 == c->test_acc || k + 1 == c->val_acc) widen(&c->acc_lo, &c->acc_hi, v);
            if (k + 1 == c->mse) widen(&c->mse_lo, &c->mse_hi, v);
        }
        if (status) break;
        c->rows++;
    }
    free(text);
    if (status) return status;
    if (line_no == 0)
        return fail(EXIT_USAGE, err, errlen, "%s: the log is empty; expected the header %s and a line per epoch",
                    csv_path, LOG_HEADER);
    if (c->rows == 0)
        return fail(EXIT_USAGE, err, errlen, "%s: the log has a header but no epochs to draw", csv_path);
    return 0;
}

/* s as a gnuplot single-quoted string (no escapes inside; a quote is doubled; no newlines). */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("''", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

/* `set NAME 'value'` and a newline. */
static void put_set(FILE *f, const char *name, const char *value)
{
    fprintf(f, "set %s ", name);
    put_quoted(f, value);
    fputc('\n', f);
}

/* `set title` with title broken at spaces into lines of at most width characters (UTF-8
 * characters counted once), as single-quoted pieces joined by "\n". */
static void put_title(FILE *f, const char *title, int width)
{
    fputs("set title ", f);
    size_t n = strlen(title);
    char *line = xmalloc(n + 1, "a title");
    const char *p = title;
    for (bool first = true; *p; first = false) {
        /* The longest run of whole words that fits, or one word when none does. */
        size_t cut = 0, chars = 0;
        for (size_t i = 0; p[i]; i++) {
            if ((p[i] & 0xC0) != 0x80) chars++;
            if (chars > (size_t)width && cut) break;
            if (p[i + 1] == ' ' || p[i + 1] == 0) cut = i + 1;
        }
        if (!cut) cut = strlen(p);
        memcpy(line, p, cut);
        line[cut] = 0;
        if (!first) fputs(".\"\\n\".", f);
        put_quoted(f, line);
        p += cut;
        while (*p == ' ') p++;
    }
    fputc('\n', f);
    free(line);
}

/* One chart: accuracy (train, test, validation per log) or MSE per epoch of one or more logs,
 * or an image file drawn under a title. */
typedef enum { CHART_ACCURACY, CHART_MSE, CHART_IMAGE } chart_kind;

/* A log drawn in a chart; label tells the logs of one chart apart ("" for a single log). */
typedef struct {
    char *path;
    const char *label;
    log_columns cols;
} chart_series;

#define MAX_SERIES 8

typedef struct {
    chart_kind kind;
    int figure;                 /* the figure number of a figure list */
    char *title;
    const char *axes;           /* charts of one kind with the same axes share their y range */
    chart_series series[MAX_SERIES];
    int n_series;
    bool fixed_y;               /* y_lo..y_hi, else gnuplot's autoscale */
    double y_lo, y_hi;
    char *image;                /* CHART_IMAGE: the PNG, img_w x img_h */
    int img_w, img_h;
} chart;

static void put_series(FILE *f, const chart_series *s, int y, const char *style, const char *title,
                       int color, int dash, bool first)
{
    fputs(first ? "plot " : ", \\\n     ", f);
    put_quoted(f, s->path);
    fprintf(f, " skip 1 using %d:%d %s lc %d dt %d title ", s->cols.epoch, y, style, color, dash);
    put_quoted(f, title);
}

#define KEY_BELOW "below horizontal center height 1"
/* Title lines, in characters: what a 900 px chart at 11 pt and a 600 px panel at 9 pt hold. */
#define TITLE_WIDTH 105
#define SHEET_TITLE_WIDTH 80

/* The commands drawing c into the current output (a PNG, or a multiplot panel). Every setting
 * a chart depends on is set here, so charts can follow each other in one script. */
static void write_chart(FILE *f, const chart *c, int title_width)
{
    long rows = 0;
    double first = 0, last = 0;
    for (int i = 0; i < c->n_series; i++) {
        const log_columns *lc = &c->series[i].cols;
        if (lc->rows > rows) rows = lc->rows;
        if (i == 0 || lc->first_epoch < first) first = lc->first_epoch;
        if (i == 0 || lc->last_epoch > last) last = lc->last_epoch;
    }
    const char *style = rows <= POINTS_UP_TO ? "with linespoints lw 2 pt 7 ps 0.7" : "with lines lw 2";
    fputs("set border\nset tics\nset grid\nset xlabel 'epoch'\nset autoscale x\n", f);
    /* Whole epochs on the axis of a short run; one epoch is a point in the middle. */
    fputs(last - first <= 20 ? "set xtics 1\n" : "set xtics autofreq\n", f);
    if (rows == 1) fputs("set offsets 0.5, 0.5, 0, 0\n", f);
    else fputs("set offsets 0, 0, graph 0.03, graph 0.03\n", f);
    if (c->fixed_y) fprintf(f, "set yrange [%.6g:%.6g]\n", c->y_lo, c->y_hi);
    else fputs("set autoscale y\n", f);
    put_title(f, c->title, title_width);
    bool one = c->n_series == 1;
    char name[256];
    if (c->kind == CHART_ACCURACY) {
        /* Several logs: the legend goes under the chart, where no curve can hide behind it. */
        fprintf(f, "set ylabel 'accuracy'\nset key %s\nset format y '%%.3f'\n", one ? "inside bottom right" : KEY_BELOW);
        for (int i = 0; i < c->n_series; i++) {
            const chart_series *s = &c->series[i];
            /* One log: a colour per curve. Several: a colour per log, train solid, test dashed. */
            snprintf(name, sizeof name, "%s%strain", s->label, *s->label ? " " : "");
            put_series(f, s, s->cols.train_acc, style, name, one ? 1 : i + 1, 1, i == 0);
            snprintf(name, sizeof name, "%s%stest", s->label, *s->label ? " " : "");
            put_series(f, s, s->cols.test_acc, style, name, one ? 2 : i + 1, one ? 1 : 2, false);
            if (s->cols.val_acc) {
                snprintf(name, sizeof name, "%s%svalidation", s->label, *s->label ? " " : "");
                put_series(f, s, s->cols.val_acc, style, name, one ? 3 : i + 1, one ? 1 : 3, false);
            }
        }
    } else {
        fprintf(f, "set ylabel 'MSE'\nset key %s\nset format y '%%g'\n", one ? "inside top right" : KEY_BELOW);
        for (int i = 0; i < c->n_series; i++) {
            const chart_series *s = &c->series[i];
            /* Several logs: the label alone (the caption says what is drawn). */
            snprintf(name, sizeof name, "%s", one && !*s->label ? "MSE (training set)" : s->label);
            put_series(f, s, s->cols.mse, style, name, i + 1, 1, i == 0);
        }
    }
    fputc('\n', f);
}

/* An image chart: img_w x img_h pixels drawn 1:1 under the title, into its own PNG. */
#define IMAGE_MARGIN 20
#define IMAGE_TITLE 70

static void write_image_chart(FILE *f, const chart *c, const char *out)
{
    int w = c->img_w + 2 * IMAGE_MARGIN, h = c->img_h + IMAGE_MARGIN + IMAGE_TITLE;
    fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,11'\n", w, h);
    put_set(f, "output", out);
    fputs("unset border\nunset tics\nunset key\nunset grid\nunset xlabel\nunset ylabel\nset offsets 0, 0, 0, 0\n", f);
    /* About 8 px a character at 11 pt: two or three lines fit the band. */
    put_title(f, c->title, (w - IMAGE_MARGIN) / 8);
    /* The plot area is exactly the image, so its pixels land on the PNG's pixels. */
    fprintf(f, "set lmargin at screen %.6f\nset rmargin at screen %.6f\n", (double)IMAGE_MARGIN / w,
            (double)(IMAGE_MARGIN + c->img_w) / w);
    fprintf(f, "set bmargin at screen %.6f\nset tmargin at screen %.6f\n", (double)IMAGE_MARGIN / h,
            (double)(IMAGE_MARGIN + c->img_h) / h);
    fprintf(f, "set xrange [-0.5:%.1f]\nset yrange [-0.5:%.1f]\n", c->img_w - 0.5, c->img_h - 0.5);
    fputs("plot ", f);
    put_quoted(f, c->image);
    fputs(" binary filetype=png with rgbimage notitle\n", f);
    fputs("unset lmargin\nunset rmargin\nunset bmargin\nunset tmargin\n", f);
}

#define TERMINAL "set terminal pngcairo size 900,600 noenhanced font 'sans,11'\n"

/* The gnuplot script drawing both charts of one log into acc_out and mse_out. */
static void write_script(FILE *f, const char *csv, const log_columns *c, const char *title,
                         const char *acc_out, const char *mse_out)
{
    char buf[1024];
    chart ch = {.n_series = 1, .title = buf};
    ch.series[0] = (chart_series){.path = (char *)csv, .label = "", .cols = *c};
    fputs("set encoding utf8\n" TERMINAL "set datafile separator comma\n", f);
    put_set(f, "output", acc_out);
    snprintf(buf, sizeof buf, "accuracy per epoch: %s", title);
    ch.kind = CHART_ACCURACY;
    write_chart(f, &ch, TITLE_WIDTH);
    put_set(f, "output", mse_out);
    snprintf(buf, sizeof buf, "mean squared error per epoch: %s", title);
    ch.kind = CHART_MSE;
    write_chart(f, &ch, TITLE_WIDTH);
    fputs("unset output\n", f);
}

/* Creates dir and its missing parents. */
static int make_dirs(const char *dir)
{
    char *p = xstrdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) { free(p); return -1; }
        *s = '/';
    }
    int rc = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    if (rc == 0) {
        struct stat st;
        if (stat(dir, &st) != 0) return -1;
        if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    }
    return rc;
}

/* Whether gnuplot is an executable file in a folder of PATH. */
static bool gnuplot_on_path(void)
{
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/bin:/bin";
    char *copy = xstrdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        size_t len = strlen(d) + sizeof "/gnuplot";
        char *exe = xmalloc(len, "a file name");
        snprintf(exe, len, "%s/gnuplot", d);
        found = access(exe, X_OK) == 0;
        free(exe);
    }
    free(copy);
    return found;
}

#define NO_GNUPLOT "gnuplot is not installed (or not on PATH); the charts need it: on Debian 'apt-get install gnuplot-nox'"

/* Runs `gnuplot script`, its output into out_path. Returns 0, or the exit status with err. */
static int run_gnuplot(const char *script, const char *out_path, char *err, size_t errlen)
{
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0) return fail(EXIT_RUNTIME, err, errlen, "%s: cannot write: %s", out_path, strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO);
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out_fd);
    if (rc != 0) {
        if (rc == ENOENT) return fail(EXIT_RUNTIME, err, errlen, NO_GNUPLOT);
        return fail(EXIT_RUNTIME, err, errlen, "cannot run gnuplot: %s", strerror(rc));
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return fail(EXIT_RUNTIME, err, errlen, "waiting for gnuplot: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    /* Its first message line says what went wrong. */
    size_t len;
    char *text = (char *)read_file(out_path, &len), *line = "";
    if (text) {
        for (char *sv = NULL, *s = strtok_r(text, "\n", &sv); s; s = strtok_r(NULL, "\n", &sv))
            if (strspn(s, " \t^") != strlen(s)) { line = s; break; }
    }
    if (WIFEXITED(st))
        fail(EXIT_RUNTIME, err, errlen, "gnuplot failed (exit status %d) on %s: %s", WEXITSTATUS(st), script, line);
    else
        fail(EXIT_RUNTIME, err, errlen, "gnuplot was killed by signal %d", WTERMSIG(st));
    free(text);
    return EXIT_RUNTIME;
}

int plot_log(const char *csv_path, const char *dir, const char *title, char *err, size_t errlen)
{
    log_columns cols;
    int status = read_log(csv_path, &cols, err, errlen);
    if (status) return status;
    if (!gnuplot_on_path()) return fail(EXIT_RUNTIME, err, errlen, NO_GNUPLOT);
    if (make_dirs(dir) != 0)
        return fail(EXIT_RUNTIME, err, errlen, "%s: cannot create the folder for the charts: %s", dir, strerror(errno));

    size_t len = strlen(dir) + 64;
    char *script = xmalloc(len, "a file name"), *out = xmalloc(len, "a file name");
    char *acc_tmp = xmalloc(len, "a file name"), *mse_tmp = xmalloc(len, "a file name");
    char *acc = xmalloc(len, "a file name"), *mse = xmalloc(len, "a file name");
    long pid = (long)getpid();
    snprintf(script, len, "%s/.plot.%ld.gp", dir, pid);
    snprintf(out, len, "%s/.plot.%ld.out", dir, pid);
    snprintf(acc_tmp, len, "%s/.accuracy.png.%ld", dir, pid);
    snprintf(mse_tmp, len, "%s/.mse.png.%ld", dir, pid);
    snprintf(acc, len, "%s/accuracy.png", dir);
    snprintf(mse, len, "%s/mse.png", dir);

    FILE *f = fopen(script, "w");
    if (!f) {
        status = fail(EXIT_RUNTIME, err, errlen, "%s: cannot write the gnuplot script: %s", script, strerror(errno));
    } else {
        write_script(f, csv_path, &cols, title, acc_tmp, mse_tmp);
        if (fclose(f) != 0)
            status = fail(EXIT_RUNTIME, err, errlen, "%s: cannot write the gnuplot script: %s", script, strerror(errno));
    }
    if (!status) status = run_gnuplot(script, out, err, errlen);
    struct stat st;
    if (!status && (stat(acc_tmp, &st) != 0 || st.st_size == 0 || stat(mse_tmp, &st) != 0 || st.st_size == 0))
        status = fail(EXIT_RUNTIME, err, errlen, "gnuplot exited without writing the charts into %s", dir);
    if (!status && (rename(acc_tmp, acc) != 0 || rename(mse_tmp, mse) != 0))
        status = fail(EXIT_RUNTIME, err, errlen, "%s: cannot write the charts: %s", dir, strerror(errno));
    unlink(acc_tmp);
    unlink(mse_tmp);
    unlink(out);
    if (!status) unlink(script);   /* kept on failure, for the message's reference */
    free(script); free(out); free(acc_tmp); free(mse_tmp); free(acc); free(mse);
    return status;
}

/* --- figure lists ------------------------------------------------------------------------ */

#define LIST_HEADER "figure<TAB>chart<TAB>axes<TAB>caption<TAB>log<TAB>label[<TAB>log<TAB>label...]"
#define MAX_FIGURE 9999
/* The contact sheet: two charts a row, each SHEET_W x SHEET_H, under a title band. */
#define SHEET_COLS 2
#define SHEET_W 600
#define SHEET_H 400
#define SHEET_TITLE 60

typedef struct {
    chart *charts;
    int n;
    char *text;                 /* the list's contents; labels and axes point into it */
    char sheet_title[512];
} figure_list;

static void figures_free(figure_list *l)
{
    for (int i = 0; i < l->n; i++) {
        chart *c = &l->charts[i];
        free(c->title);
        free(c->image);
        for (int k = 0; k < c->n_series; k++) free(c->series[k].path);
    }
    free(l->charts);
    free(l->text);
    memset(l, 0, sizeof *l);
}

/* name relative to the folder of list (unchanged when absolute); malloc'd. */
static char *beside(const char *list, const char *name)
{
    const char *slash = strrchr(list, '/');
    size_t dir_len = name[0] == '/' || !slash ? 0 : (size_t)(slash - list) + 1;
    size_t len = dir_len + strlen(name) + 1;
    char *p = xmalloc(len, "a file name");
    snprintf(p, len, "%.*s%s", (int)dir_len, list, name);
    return p;
}

/* Whether path starts with a figure list's header. */
static bool is_figure_list(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char head[8] = {0};
    size_t n = fread(head, 1, 7, f);
    fclose(f);
    return n == 7 && memcmp(head, "figure\t", 7) == 0;
}

/* One row of the list (fields after the figure number) into c. */
static int read_row(const char *list, long line_no, char **field, int n, chart *c, char *err, size_t errlen)
{
    if (strcmp(field[1], "accuracy") == 0) c->kind = CHART_ACCURACY;
    else if (strcmp(field[1], "mse") == 0) c->kind = CHART_MSE;
    else if (strcmp(field[1], "image") == 0) c->kind = CHART_IMAGE;
    else
        return fail(EXIT_USAGE, err, errlen, "%s:%ld: the chart is '%s'; expected accuracy, mse or image",
                    list, line_no, field[1]);
    c->axes = field[2];
    if (!*field[3]) return fail(EXIT_USAGE, err, errlen, "%s:%ld: the caption is empty", list, line_no);
    size_t len = strlen(field[3]) + 32;
    c->title = xmalloc(len, "a title");
    snprintf(c->title, len, "Figure %d: %s", c->figure, field[3]);
    if (c->kind == CHART_IMAGE) {
        if (n != 5)
            return fail(EXIT_USAGE, err, errlen, "%s:%ld: an image figure takes one PNG after the caption (%d fields)",
                        list, line_no, n - 4);
        c->image = beside(list, field[4]);
        int comp;
        if (!stbi_info(c->image, &c->img_w, &c->img_h, &comp))
            return fail(EXIT_USAGE, err, errlen, "%s:%ld: %s: not a readable PNG (%s)", list, line_no, c->image,
                        stbi_failure_reason());
        if (c->img_w > 8192 || c->img_h > 8192)
            return fail(EXIT_USAGE, err, errlen, "%s:%ld: %s is %d x %d; at most 8192 x 8192 is drawn", list,
                        line_no, c->image, c->img_w, c->img_h);
        return 0;
    }
    if (n < 6 || (n - 4) % 2 != 0)
        return fail(EXIT_USAGE, err, errlen, "%s:%ld: after the caption come pairs of a log and its label (%d fields)",
                    list, line_no, n - 4);
    if ((n - 4) / 2 > MAX_SERIES)
        return fail(EXIT_USAGE, err, errlen, "%s:%ld: %d logs in one chart; at most %d", list, line_no,
                    (n - 4) / 2, MAX_SERIES);
    for (int k = 4; k < n; k += 2) {
        chart_series *s = &c->series[c->n_series++];
        s->path = beside(list, field[k]);
        s->label = field[k + 1];
        int status = read_log(s->path, &s->cols, err, errlen);
        if (status) {
            /* The log's own message, and the row that names it. */
            size_t used = strlen(err);
            snprintf(err + used, errlen - used, " (figure %d, %s:%ld)", c->figure, list, line_no);
            return status;
        }
    }
    return 0;
}

/* The y range of every chart: the values of all charts of its kind with the same axes (its
 * own with axes "-"), 5 % of the span added on each side, never below 0. */
static void share_axes(figure_list *l)
{
    for (int i = 0; i < l->n; i++) {
        chart *c = &l->charts[i];
        if (c->kind == CHART_IMAGE) continue;
        double lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < l->n; j++) {
            const chart *o = &l->charts[j];
            bool same = j == i || (o->kind == c->kind && strcmp(c->axes, "-") != 0 && strcmp(o->axes, c->axes) == 0);
            for (int k = 0; same && k < o->n_series; k++) {
                const log_columns *lc = &o->series[k].cols;
                widen(&lo, &hi, c->kind == CHART_ACCURACY ? lc->acc_lo : lc->mse_lo);
                widen(&lo, &hi, c->kind == CHART_ACCURACY ? lc->acc_hi : lc->mse_hi);
            }
        }
        if (lo > hi) continue;   /* no finite value: gnuplot's own range */
        double pad = (hi - lo) * 0.05;
        if (pad < 1e-3 * fabs(hi) || pad == 0) pad = fabs(hi) > 0 ? 0.05 * fabs(hi) : 0.01;
        c->fixed_y = true;
        c->y_lo = lo - pad < 0 ? 0 : lo - pad;
        c->y_hi = hi + pad;
    }
}

static int load_figures(const char *list, figure_list *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    size_t len;
    l->text = (char *)read_file(list, &len);
    if (!l->text) return fail(EXIT_USAGE, err, errlen, "%s: cannot read the figure list: %s", list, strerror(errno));
    if (memchr(l->text, 0, len)) return fail(EXIT_USAGE, err, errlen, "%s: binary data, not a figure list", list);
    int status = 0, cap = 0;
    long line_no = 0;
    char *field[2 * MAX_SERIES + 8];
    const int max = (int)(sizeof field / sizeof field[0]);
    /* Lines are split by hand: strtok_r would skip the empty lines the numbers count. */
    for (char *line = l->text, *next; line && !status; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        if (line_no == 1) {
            if (strncmp(line, "figure\t", 7) != 0)
                status = fail(EXIT_USAGE, err, errlen, "%s: not a figure list; its first line must be %s", list, LIST_HEADER);
            continue;
        }
        if (line[0] == '#' || strspn(line, " \t\r") == strlen(line)) continue;
        int n = split_fields(line, '\t', field, max);
        if (strcmp(field[0], "title") == 0 && n == 2) {
            snprintf(l->sheet_title, sizeof l->sheet_title, "%s", field[1]);
            continue;
        }
        if (n > max) {
            status = fail(EXIT_USAGE, err, errlen, "%s:%ld: %d fields; at most %d", list, line_no, n, max);
            break;
        }
        if (n < 5) {
            status = fail(EXIT_USAGE, err, errlen, "%s:%ld: %d fields; a row is %s", list, line_no, n, LIST_HEADER);
            break;
        }
        char *end;
        errno = 0;
        long fig = strtol(field[0], &end, 10);
        if (end == field[0] || *end || fig < 1 || fig > MAX_FIGURE) {
            status = fail(EXIT_USAGE, err, errlen, "%s:%ld: the figure number is '%s'; expected 1 to %d", list,
                          line_no, field[0], MAX_FIGURE);
            break;
        }
        for (int i = 0; i < l->n && !status; i++)
            if (l->charts[i].figure == fig)
                status = fail(EXIT_USAGE, err, errlen, "%s:%ld: figure %ld is listed twice", list, line_no, fig);
        if (status) break;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 16;
            l->charts = xrealloc(l->charts, (size_t)cap * sizeof *l->charts, "the figure list");
        }
        chart *c = &l->charts[l->n++];
        memset(c, 0, sizeof *c);
        c->figure = (int)fig;
        status = read_row(list, line_no, field, n, c, err, errlen);
    }
    if (!status && l->n == 0) status = fail(EXIT_USAGE, err, errlen, "%s: the figure list has no figures", list);
    if (status) {
        figures_free(l);
        return status;
    }
    share_axes(l);
    return 0;
}

static int sheet_charts(const figure_list *l)
{
    int n = 0;
    for (int i = 0; i < l->n; i++) n += l->charts[i].kind != CHART_IMAGE;
    return n;
}

/* dir/figure-NN.png (suffix "" for the final name, else a temporary one) into buf. */
static void figure_path(char *buf, size_t len, const char *dir, int figure, const char *suffix)
{
    snprintf(buf, len, "%s/%sfigure-%02d.png%s", dir, *suffix ? "." : "", figure, suffix);
}

static void sheet_path(char *buf, size_t len, const char *dir, const char *suffix)
{
    snprintf(buf, len, "%s/%sfigures.png%s", dir, *suffix ? "." : "", suffix);
}

/* The i-th PNG of the list: its figures, then (i == l->n) the contact sheet. */
static void output_path(char *buf, size_t len, const figure_list *l, int i, const char *dir, const char *suffix)
{
    if (i < l->n) figure_path(buf, len, dir, l->charts[i].figure, suffix);
    else sheet_path(buf, len, dir, suffix);
}

/* The whole script: every chart into its PNG, the contact sheet, then the image figures. */
static void write_figures_script(FILE *f, const figure_list *l, const char *dir, const char *suffix)
{
    size_t len = strlen(dir) + 64;
    char *out = xmalloc(len, "a file name");
    fputs("set encoding utf8\nset datafile separator comma\n" TERMINAL, f);
    for (int i = 0; i < l->n; i++) {
        if (l->charts[i].kind == CHART_IMAGE) continue;
        figure_path(out, len, dir, l->charts[i].figure, suffix);
        put_set(f, "output", out);
        write_chart(f, &l->charts[i], TITLE_WIDTH);
    }
    int n = sheet_charts(l);
    if (n > 0) {
        int rows = (n + SHEET_COLS - 1) / SHEET_COLS;
        fprintf(f, "set terminal pngcairo size %d,%d noenhanced font 'sans,9'\n", SHEET_COLS * SHEET_W,
                rows * SHEET_H + SHEET_TITLE);
        sheet_path(out, len, dir, suffix);
        put_set(f, "output", out);
        char title[640];
        int first = 0, last = 0;
        for (int i = 0; i < l->n; i++) {
            if (l->charts[i].kind == CHART_IMAGE) continue;
            if (!first) first = l->charts[i].figure;
            last = l->charts[i].figure;
        }
        if (l->sheet_title[0]) snprintf(title, sizeof title, "%s", l->sheet_title);
        else snprintf(title, sizeof title, "Figures %d to %d", first, last);
        /* gnuplot keeps a band above the panels for the title. */
        fprintf(f, "set multiplot layout %d,%d title ", rows, SHEET_COLS);
        put_quoted(f, title);
        fputs(" font 'sans,14'\n", f);
        for (int i = 0; i < l->n; i++)
            if (l->charts[i].kind != CHART_IMAGE) write_chart(f, &l->charts[i], SHEET_TITLE_WIDTH);
        fputs("unset multiplot\n", f);
    }
    for (int i = 0; i < l->n; i++) {
        if (l->charts[i].kind != CHART_IMAGE) continue;
        figure_path(out, len, dir, l->charts[i].figure, suffix);
        write_image_chart(f, &l->charts[i], out);
    }
    fputs("unset output\n", f);
    free(out);
}

int plot_figures_script(const char *list_path, const char *dir, FILE *out, char *err, size_t errlen)
{
    figure_list l;
    int status = load_figures(list_path, &l, err, errlen);
    if (status) return status;
    write_figures_script(out, &l, dir, "");
    figures_free(&l);
    return 0;
}

int plot_figures(const char *list_path, const char *dir, int *n_written, char *err, size_t errlen)
{
    figure_list l;
    int status = load_figures(list_path, &l, err, errlen);
    if (status) return status;
    if (!gnuplot_on_path()) {
        figures_free(&l);
        return fail(EXIT_RUNTIME, err, errlen, NO_GNUPLOT);
    }
    if (make_dirs(dir) != 0) {
        figures_free(&l);
        return fail(EXIT_RUNTIME, err, errlen, "%s: cannot create the folder for the figures: %s", dir, strerror(errno));
    }
    size_t len = strlen(dir) + 64;
    char *script = xmalloc(len, "a file name"), *log = xmalloc(len, "a file name");
    char *tmp = xmalloc(len, "a file name"), *final = xmalloc(len, "a file name");
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".%ld", (long)getpid());
    snprintf(script, len, "%s/.figures%s.gp", dir, suffix);
    snprintf(log, len, "%s/.figures%s.out", dir, suffix);
    FILE *f = fopen(script, "w");
    if (!f) {
        status = fail(EXIT_RUNTIME, err, errlen, "%s: cannot write the gnuplot script: %s", script, strerror(errno));
    } else {
        write_figures_script(f, &l, dir, suffix);
        if (fclose(f) != 0)
            status = fail(EXIT_RUNTIME, err, errlen, "%s: cannot write the gnuplot script: %s", script, strerror(errno));
    }
    if (!status) status = run_gnuplot(script, log, err, errlen);
    /* Every PNG is checked before any replaces an old one, so a failure leaves the old set. */
    int n = l.n + (sheet_charts(&l) > 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            output_path(tmp, len, &l, i, dir, suffix);
            output_path(final, len, &l, i, dir, "");
            struct stat st;
            if (!status && pass == 0 && (stat(tmp, &st) != 0 || st.st_size == 0))
                status = fail(EXIT_RUNTIME, err, errlen, "gnuplot exited without writing %s", final);
            if (!status && pass == 1 && rename(tmp, final) != 0)
                status = fail(EXIT_RUNTIME, err, errlen, "%s: cannot write: %s", final, strerror(errno));
            if (pass == 1) unlink(tmp);
        }
    }
    unlink(log);
    if (!status) unlink(script);   /* kept on failure, for the message's reference */
    if (!status && n_written) *n_written = n;
    free(script); free(log); free(tmp); free(final);
    figures_free(&l);
    return status;
}

/* "runs/relu-0.1.csv" -> "relu-0.1". */
static void title_from_path(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, len, "%s", base);
    size_t n = strlen(buf);
    if (n > 4 && strcmp(buf + n - 4, ".csv") == 0) buf[n - 4] = 0;
}

int command_plot(const options *o)
{
    if (o->n_positional != 2)
        die(EXIT_USAGE, "plot takes a log (or a figure list) and a folder: cltrain plot LOG.csv DIR (got %d arguments)",
            o->n_positional);
    const char *csv = o->positional[0], *dir = o->positional[1];
    char title[512], err[2048];
    if (is_figure_list(csv)) {
        int n = 0, status = plot_figures(csv, dir, &n, err, sizeof err);
        if (status) die(status, "%s", err);
        if (!o->quiet) printf("wrote %d PNGs into %s (figure-NN.png, figures.png)\n", n, dir);
        return EXIT_OK;
    }
    title_from_path(csv, title, sizeof title);
    int status = plot_log(csv, dir, title, err, sizeof err);
    if (status) die(status, "%s", err);
    if (!o->quiet) printf("wrote %s/accuracy.png and %s/mse.png\n", dir, dir);
    return EXIT_OK;
}
