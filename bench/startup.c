/* startup.c: the start-up figures of the benchmark (see run.h): the kernel builds in process,
 * per device and gemm, and the real binary's start-up as a child process, cold and warm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "util.h"

/* ---- kernel builds and start-up --------------------------------------------------------------- */

/* Seconds of trainer_create + one epoch (with its evaluation of the test set, as cltrain
 * runs it) + trainer_destroy, workload 1 on n training images. */
static double create_and_epoch(bench *b, backend *be, size_t n)
{
    model_arch a;
    workload_arch(workload_get(1), b->inputs, b->classes, &a);
    float *p = xmalloc(a.n_params * sizeof(float), "initial parameters");
    model_init_params(&a, INIT_UNIFORM, SEED, p);
    train_config cfg = row_config(&a, workload_get(1), 1);
    dataset sub = b->data.train;
    sub.n = n;
    double t0 = now_seconds();
    trainer *t = trainer_create(be, &cfg, &sub, &b->data.test, NULL, p);
    epoch_metrics m;
    trainer_epoch(t, 1, &m);
    trainer_destroy(t);
    double dt = now_seconds() - t0;
    free(p);
    return dt;
}

/* The kernel-build cost of device d with gemm g, in this process (whose kernel caches start
 * empty): a first trainer on a fresh back-end (programs compiled, cache files written), a
 * second on the same back-end (programs reused in memory), a third on a new back-end (programs
 * loaded from the cache: cltrain's, or on PoCL PoCL's own, cl_runtime.c). Returns the last back-end, kept for the rows. */
backend *measure_build(bench *b, int d, gemm_kind g)
{
    size_t n = b->data.train.n < 10000 ? b->data.train.n : 10000;
    backend_cl_options bo = {.gemm = g, .profiling = false, .no_cache = false};
    build_entry *e = &b->builds[b->nbuilds++];
    e->cl_index = d;
    e->gemm = g;
    double t0 = now_seconds();
    backend *be = backend_cl_create(d, &bo);
    e->open_s = now_seconds() - t0;
    e->first_s = create_and_epoch(b, be, n);
    e->second_s = create_and_epoch(b, be, n);
    backend_destroy(be);
    be = backend_cl_create(d, &bo);
    e->cached_s = create_and_epoch(b, be, n);
    fprintf(stderr, "bench: device %d %s: first epoch %.2f s, second %.2f s, new back-end with the kernel cache %.2f s\n",
            d, g == GEMM_CLBLAST ? "clblast" : "builtin", e->first_s, e->second_s, e->cached_s);
    return be;
}

/* "after 1 epochs, 0.92 s" in cltrain --quiet's last line: the training seconds it reports. */
static double reported_seconds(const char *out)
{
    const char *p = out ? strstr(out, " epochs, ") : NULL;
    double s;
    if (p && sscanf(p, " epochs, %lf s", &s) == 1) return s;
    return NAN;
}

void measure_startup(bench *b)
{
    startup_entry *s = &b->startup;
    if (access(b->opt.cltrain, X_OK) != 0) {
        fprintf(stderr, "bench: %s not found: no start-up figures (--cltrain PATH names it)\n", b->opt.cltrain);
        return;
    }
    char cache[600], limit[32];
    char *argv[12];
    int k = 0;
    argv[k++] = (char *)b->opt.cltrain;
    argv[k++] = "--epochs"; argv[k++] = "1"; argv[k++] = "--quiet";
    argv[k++] = "--data"; argv[k++] = (char *)b->opt.data;
    if (b->ndev == 0) { argv[k++] = "--device"; argv[k++] = "host"; }
    if (b->opt.train_limit > 0) {
        snprintf(limit, sizeof limit, "%ld", b->opt.train_limit);
        argv[k++] = "--train-limit"; argv[k++] = limit;
    }
    argv[k] = NULL;
    size_t len = 0;
    s->command[0] = '\0';
    for (int i = 0; i < k; i++)
        len += (size_t)snprintf(s->command + len, len < sizeof s->command ? sizeof s->command - len : 0,
                                "%s%s", i ? " " : "", argv[i]);
    s->cold_rc = s->warm_rc = 0;
    for (int i = 0; i < STARTUP_RUNS; i++) {
        make_temp_dir("cache", cache, sizeof cache);
        env_change env[1] = {{"XDG_CACHE_HOME", cache}};
        char *out = NULL;
        int rc = proc_run(argv, env, 1, &out, &s->cold_s[i], false);
        if (rc != 0) s->cold_rc = rc;
        s->cold_train_s[i] = reported_seconds(out);
        free(out);
        rc = proc_run(argv, env, 1, &out, &s->warm_s[i], false);
        if (rc != 0) s->warm_rc = rc;
        s->warm_train_s[i] = reported_seconds(out);
        free(out);
        remove_tree(cache);
    }
    s->cold = stats_of(s->cold_s, STARTUP_RUNS);
    s->warm = stats_of(s->warm_s, STARTUP_RUNS);
    s->ran = true;
    if (s->cold_rc != 0 || s->warm_rc != 0) {
        fprintf(stderr, "bench: %s failed (exit %d cold, %d warm)\n", s->command, s->cold_rc, s->warm_rc);
        b->failures++;
    }
}
