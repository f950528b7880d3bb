/* bench.h: the pieces the benchmark program's files share (the C files of bench/). Not part of the library:
 * the benchmark drives the library only through its public headers. */
#ifndef CLTRAIN_BENCH_H
#define CLTRAIN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- probe.c: the two numbers of the floor model ---------------------------------------- */

typedef struct {
    double read_gbs;          /* best read bandwidth of the training images, GB/s (1e9 B/s) */
    double read_gbs_median;   /* median of the repetitions */
    double peak_gflops;       /* best multiply-add throughput, GFLOP/s; 0 = not measured */
    bool checksum_ok;         /* the read kernel's sum matched the host's */
    char read_method[128];
    char peak_method[128];
} floor_probe;

/* Host: a threaded read of bytes[n] (one thread per online core) and an FMA loop per core. */
void probe_host(const uint8_t *bytes, size_t n, floor_probe *out);
/* OpenCL device `index`: kernels/bench.cl's read kernels over the same bytes, and its
 * multiply-add kernel. Opens and closes its own context. */
void probe_device(int index, const uint8_t *bytes, size_t n, floor_probe *out);
/* True when CLBlast runs an SGEMM of the trainer's three layouts on device `index`
 * (else the back-end would fall back to its builtin gemm, silently for the timings). */
bool probe_clblast(int index);

/* ---- proc.c: child processes ------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *value;        /* NULL: remove the variable from the child's environment */
} env_change;

/* Runs argv (argv[0] searched in PATH) with the environment changed by env[0..n_env), waits
 * for it. With out != NULL its stdout is captured into a malloc'd NUL-terminated *out. Its
 * stderr is passed through, or thrown away when quiet. *seconds gets the wall time from spawn
 * to exit. Returns the exit status, or -1 when it could not be started or was killed by a
 * signal. */
int proc_run(char *const argv[], const env_change *env, int n_env, char **out, double *seconds,
             bool quiet);
/* Runs argv with stdout read line by line (stderr thrown away): on_line gets each line and the
 * seconds since the spawn; when it returns true the child is sent SIGTERM and not waited for
 * further output. *seconds: spawn to exit. Returns 0 when stopped by on_line, else the exit
 * status (-1: not started or killed). */
int proc_watch(char *const argv[], bool (*on_line)(void *ctx, const char *line, double seconds),
               void *ctx, double *seconds);
/* The first line of a command's stdout (trailing newline removed) into buf; false on failure. */
bool proc_line(char *const argv[], char *buf, size_t len);
/* A fresh empty folder under $TMPDIR (or /tmp) into buf; dies on failure. */
void make_temp_dir(const char *tag, char *buf, size_t len);

/* ---- json.c: the little JSON the benchmark reads and writes ----------------------------- */

/* The number after "key": in text (the first occurrence); false when absent or not a number. */
bool json_number(const char *text, const char *key, double *out);
/* The string after "key": into buf (escapes \" \\ \n \t \/ kept simple); false when absent. */
bool json_string(const char *text, const char *key, char *buf, size_t len);
/* The numbers of the array after "key": into v[0..cap); returns the count (0 when absent). */
int json_numbers(const char *text, const char *key, double *v, int cap);
/* Writes s as a JSON string literal, quoted and escaped. */
void json_put_string(FILE *f, const char *s);
/* Writes a number, or null for NaN and infinities. */
void json_put_number(FILE *f, double x);

/* ---- stats ------------------------------------------------------------------------------- */

typedef struct {
    double median, min, max;
} stats3;

/* Median, minimum and maximum of v[0..n); all NaN when n == 0. */
stats3 stats_of(const double *v, int n);

#endif
