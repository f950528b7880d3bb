/* plot.c: `cltrain plot LOG.csv DIR` and plot_log (plot.h): accuracy and MSE per epoch from a
 * training log, as PNG charts drawn by gnuplot from a generated script. */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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
} log_columns;

/* Splits a line in place at commas into at most max fields, trimming blanks; returns the count. */
static int split_csv(char *line, char **field, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
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

#define MAX_FIELDS 64

/* Checks that csv_path is a cltrain log and finds its columns. */
static int read_log(const char *csv_path, log_columns *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
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

static void put_plot(FILE *f, const char *csv, int x, int y, const char *style, const char *title, bool first)
{
    fputs(first ? "plot " : ", \\\n     ", f);
    if (first) put_quoted(f, csv);
    else fputs("''", f);
    fprintf(f, " skip 1 using %d:%d %s title ", x, y, style);
    put_quoted(f, title);
}

/* The gnuplot script drawing both charts into acc_out and mse_out. */
static void write_script(FILE *f, const char *csv, const log_columns *c, const char *title,
                         const char *acc_out, const char *mse_out)
{
    const char *style = c->rows <= POINTS_UP_TO ? "with linespoints lw 2 pt 7 ps 0.7" : "with lines lw 2";
    char buf[1024];
    fputs("set encoding utf8\n"
          "set terminal pngcairo size 900,600 noenhanced font 'sans,11'\n"
          "set datafile separator comma\n"
          "set grid\n"
          "set xlabel 'epoch'\n", f);
    /* Whole epochs on the axis of a short run; one epoch is a point in the middle. */
    if (c->last_epoch - c->first_epoch <= 20) fputs("set xtics 1\n", f);
    if (c->rows == 1) fputs("set offsets 0.5, 0.5, 0, 0\n", f);
    else fputs("set offsets 0, 0, graph 0.03, graph 0.03\n", f);

    fputs("set output ", f);
    put_quoted(f, acc_out);
    snprintf(buf, sizeof buf, "accuracy per epoch: %s", title);
    fputs("\nset title ", f);
    put_quoted(f, buf);
    fputs("\nset ylabel 'accuracy'\nset key bottom right\nset format y '%.3f'\n", f);
    put_plot(f, csv, c->epoch, c->train_acc, style, "train", true);
    put_plot(f, csv, c->epoch, c->test_acc, style, "test", false);
    if (c->val_acc) put_plot(f, csv, c->epoch, c->val_acc, style, "validation", false);

    fputs("\nset output ", f);
    put_quoted(f, mse_out);
    snprintf(buf, sizeof buf, "mean squared error per epoch: %s", title);
    fputs("\nset title ", f);
    put_quoted(f, buf);
    fputs("\nset ylabel 'MSE'\nset key top right\nset format y '%g'\n", f);
    put_plot(f, csv, c->epoch, c->mse, style, "MSE (training set)", true);
    fputs("\nunset output\n", f);
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
        die(EXIT_USAGE, "plot takes a log and a folder: cltrain plot LOG.csv DIR (got %d arguments)", o->n_positional);
    const char *csv = o->positional[0], *dir = o->positional[1];
    char title[512], err[2048];
    title_from_path(csv, title, sizeof title);
    int status = plot_log(csv, dir, title, err, sizeof err);
    if (status) die(status, "%s", err);
    if (!o->quiet) printf("wrote %s/accuracy.png and %s/mse.png\n", dir, dir);
    return EXIT_OK;
}
