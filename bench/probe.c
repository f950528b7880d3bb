/* probe.c: the floor model's two numbers, measured in the benchmark's own run: how fast the
 * training images can be read (a STREAM-like read of the same bytes), and how many float
 * multiply-adds per second the hardware does. Host: one thread per online core. OpenCL
 * devices: kernels/bench.cl through cl_runtime. Every figure is the best of several
 * repetitions (a floor is a lower bound on time), the median beside it. */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PROBE_X86 1
#endif

#include "cl_runtime.h"
#include "util.h"

#define READ_REPS 9
#define PEAK_SECONDS 0.25

/* ---- host: read bandwidth --------------------------------------------------------------- */

/* Sum of the 64-bit words of p[0..n) (n a multiple of 32), plain C with four chains. */
static uint64_t sum_words_c(const uint8_t *p, size_t n)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, sizeof w);
        s0 += w[0]; s1 += w[1]; s2 += w[2]; s3 += w[3];
    }
    return s0 + s1 + s2 + s3;
}

#ifdef PROBE_X86
/* The same sum with 256-bit loads, four vectors per iteration. */
__attribute__((target("avx2"))) static uint64_t sum_words_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256((const __m256i *)(const void *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)(void *)lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_words_c(p + i, n - i);
}
#endif

static bool have_avx2(void)
{
#ifdef PROBE_X86
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

static uint64_t sum_words(const uint8_t *p, size_t n)
{
#ifdef PROBE_X86
    if (have_avx2()) return sum_words_avx2(p, n);
#endif
    return sum_words_c(p, n);
}

typedef struct {
    const uint8_t *p;
    size_t n;
    uint64_t sum;
    pthread_barrier_t *bar;
    int reps;
} read_job;

/* Each repetition: wait at the barrier, read the slice, wait again (the main thread times
 * between the two barriers). */
static void *read_worker(void *arg)
{
    read_job *j = arg;
    for (int r = 0; r < j->reps; r++) {
        pthread_barrier_wait(j->bar);
        j->sum = sum_words(j->p, j->n);
        pthread_barrier_wait(j->bar);
    }
    return NULL;
}

static int online_cores(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > 256 ? 256 : (int)c;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

stats3 stats_of(const double *v, int n)
{
    stats3 s = {NAN, NAN, NAN};
    if (n <= 0) return s;
    double *c = xmalloc((size_t)n * sizeof *c, "statistics");
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    s.min = c[0];
    s.max = c[n - 1];
    s.median = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return s;
}

/* Threaded read of bytes[0..n): the bytes are split in one 128-byte-aligned slice per core;
 * the tail that does not fill 128 bytes is left out of the timing (at most 127 bytes). */
static void host_read(const uint8_t *bytes, size_t n, floor_probe *out)
{
    int T = online_cores();
    size_t body = n / 128 * 128, per = body / (size_t)T / 128 * 128;
    read_job *jobs = xcalloc((size_t)T, sizeof *jobs, "read probe threads");
    pthread_t *th = xcalloc((size_t)T, sizeof *th, "read probe threads");
    pthread_barrier_t bar;
    if (pthread_barrier_init(&bar, NULL, (unsigned)T) != 0) die(EXIT_RUNTIME, "pthread_barrier_init failed");
    for (int i = 0; i < T; i++) {
        jobs[i].p = bytes + (size_t)i * per;
        jobs[i].n = i == T - 1 ? body - (size_t)i * per : per;
        jobs[i].bar = &bar;
        jobs[i].reps = READ_REPS;
    }
    for (int i = 1; i < T; i++)
        if (pthread_create(&th[i], NULL, read_worker, &jobs[i]) != 0)
            die(EXIT_RUNTIME, "cannot start a read-probe thread");
    double gbs[READ_REPS];
    uint64_t total = 0;
    for (int r = 0; r < READ_REPS; r++) {
        pthread_barrier_wait(&bar);
        double t0 = now_seconds();
        jobs[0].sum = sum_words(jobs[0].p, jobs[0].n);
        pthread_barrier_wait(&bar);
        double dt = now_seconds() - t0;
        gbs[r] = (double)body / dt / 1e9;
        total = 0;
        for (int i = 0; i < T; i++) total += jobs[i].sum;
    }
    for (int i = 1; i < T; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    /* The check: the same words summed in one plain pass. */
    out->checksum_ok = total == sum_words_c(bytes, body);
    stats3 s = stats_of(gbs, READ_REPS);
    out->read_gbs = s.max;
    out->read_gbs_median = s.median;
    snprintf(out->read_method, sizeof out->read_method,
             "%d threads, %s loads, best of %d reads of %.1f MB", T,
             have_avx2() ? "AVX2 256-bit" : "64-bit", READ_REPS, (double)body / 1e6);
    free(jobs);
    free(th);
}

/* ---- host: peak multiply-add throughput -------------------------------------------------- */

/* Each returns a value that depends on every multiply-add, so the loop cannot be dropped;
 * *flop_per_iter receives the FLOP of one iteration. */
static float fma_generic(long iters, float a, float b, double *flop_per_iter)
{
    float x[16];
    for (int c = 0; c < 16; c++) x[c] = (float)c * 0.01f;
    for (long i = 0; i < iters; i++)
        for (int c = 0; c < 16; c++) x[c] = x[c] * a + b;
    *flop_per_iter = 32.0;
    float s = 0.0f;
    for (int c = 0; c < 16; c++) s += x[c];
    return s;
}

#ifdef PROBE_X86
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters, float a, float b,
                                                          double *flop_per_iter)
{
    __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    __m256 x0 = _mm256_set1_ps(0.1f), x1 = _mm256_set1_ps(0.2f), x2 = _mm256_set1_ps(0.3f);
    __m256 x3 = _mm256_set1_ps(0.4f), x4 = _mm256_set1_ps(0.5f), x5 = _mm256_set1_ps(0.6f);
    __m256 x6 = _mm256_set1_ps(0.7f), x7 = _mm256_set1_ps(0.8f), x8 = _mm256_set1_ps(0.9f);
    __m256 x9 = _mm256_set1_ps(1.0f);
    for (long i = 0; i < iters; i++) {
        x0 = _mm256_fmadd_ps(x0, va, vb); x1 = _mm256_fmadd_ps(x1, va, vb);
        x2 = _mm256_fmadd_ps(x2, va, vb); x3 = _mm256_fmadd_ps(x3, va, vb);
        x4 = _mm256_fmadd_ps(x4, va, vb); x5 = _mm256_fmadd_ps(x5, va, vb);
        x6 = _mm256_fmadd_ps(x6, va, vb); x7 = _mm256_fmadd_ps(x7, va, vb);
        x8 = _mm256_fmadd_ps(x8, va, vb); x9 = _mm256_fmadd_ps(x9, va, vb);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                             _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
    s = _mm256_add_ps(s, _mm256_add_ps(x8, x9));
    float lanes[8], sum = 0;
    _mm256_storeu_ps(lanes, s);
    for (int i = 0; i < 8; i++) sum += lanes[i];   /* every lane, or one could be dropped */
    *flop_per_iter = 10 * 8 * 2;
    return sum;
}

__attribute__((target("avx512f"))) static float fma_avx512(long iters, float a, float b,
                                                          double *flop_per_iter)
{
    __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    __m512 x0 = _mm512_set1_ps(0.1f), x1 = _mm512_set1_ps(0.2f), x2 = _mm512_set1_ps(0.3f);
    __m512 x3 = _mm512_set1_ps(0.4f), x4 = _mm512_set1_ps(0.5f), x5 = _mm512_set1_ps(0.6f);
    __m512 x6 = _mm512_set1_ps(0.7f), x7 = _mm512_set1_ps(0.8f), x8 = _mm512_set1_ps(0.9f);
    __m512 x9 = _mm512_set1_ps(1.0f);
    for (long i = 0; i < iters; i++) {
        x0 = _mm512_fmadd_ps(x0, va, vb); x1 = _mm512_fmadd_ps(x1, va, vb);
        x2 = _mm512_fmadd_ps(x2, va, vb); x3 = _mm512_fmadd_ps(x3, va, vb);
        x4 = _mm512_fmadd_ps(x4, va, vb); x5 = _mm512_fmadd_ps(x5, va, vb);
        x6 = _mm512_fmadd_ps(x6, va, vb); x7 = _mm512_fmadd_ps(x7, va, vb);
        x8 = _mm512_fmadd_ps(x8, va, vb); x9 = _mm512_fmadd_ps(x9, va, vb);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3)),
                             _mm512_add_ps(_mm512_add_ps(x4, x5), _mm512_add_ps(x6, x7)));
    s = _mm512_add_ps(s, _mm512_add_ps(x8, x9));
    float lanes[16], sum = 0;
    _mm512_storeu_ps(lanes, s);
    for (int i = 0; i < 16; i++) sum += lanes[i];  /* every lane, or one could be dropped */
    *flop_per_iter = 10 * 16 * 2;
    return sum;
}
#endif

typedef float (*fma_fn)(long iters, float a, float b, double *flop_per_iter);

static fma_fn pick_fma(const char **name)
{
#ifdef PROBE_X86
    if (__builtin_cpu_supports("avx512f")) { *name = "AVX-512 FMA"; return fma_avx512; }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { *name = "AVX2 FMA"; return fma_avx2; }
#endif
    *name = "plain C multiply and add";
    return fma_generic;
}

typedef struct {
    fma_fn fn;
    long iters;
    double flop;
    float result;
    pthread_barrier_t *bar;
} fma_job;

static void *fma_worker(void *arg)
{
    fma_job *j = arg;
    pthread_barrier_wait(j->bar);
    double per = 0;
    j->result = j->fn(j->iters, 0.999999f, 1e-6f, &per);
    j->flop = per * (double)j->iters;
    return NULL;
}

/* All cores at once; returns GFLOP/s. */
static double fma_all_cores(fma_fn fn, long iters, int T, float *sink)
{
    fma_job *jobs = xcalloc((size_t)T, sizeof *jobs, "peak probe threads");
    pthread_t *th = xcalloc((size_t)T, sizeof *th, "peak probe threads");
    pthread_barrier_t bar;
    if (pthread_barrier_init(&bar, NULL, (unsigned)T + 1) != 0) die(EXIT_RUNTIME, "pthread_barrier_init failed");
    for (int i = 0; i < T; i++) {
        jobs[i] = (fma_job){fn, iters, 0, 0, &bar};
        if (pthread_create(&th[i], NULL, fma_worker, &jobs[i]) != 0)
            die(EXIT_RUNTIME, "cannot start a peak-probe thread");
    }
    pthread_barrier_wait(&bar);
    double t0 = now_seconds(), flop = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        flop += jobs[i].flop;
        *sink += jobs[i].result;
    }
    double dt = now_seconds() - t0;
    pthread_barrier_destroy(&bar);
    free(jobs);
    free(th);
    return flop / dt / 1e9;
}

static void host_peak(floor_probe *out)
{
    const char *name;
    fma_fn fn = pick_fma(&name);
    int T = online_cores();
    float sink = 0;
    /* Calibrate the iteration count on one core, then three timed runs on all of them. */
    long iters = 1L << 16;
    for (;;) {
        double per = 0, t0 = now_seconds();
        sink += fn(iters, 0.999999f, 1e-6f, &per);
        double dt = now_seconds() - t0;
        if (dt > 0.02 || iters > (1L << 40)) {
            iters = (long)((double)iters * PEAK_SECONDS / (dt > 1e-6 ? dt : 1e-6));
            break;
        }
        iters *= 4;
    }
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double g = fma_all_cores(fn, iters, T, &sink);
        if (g > best) best = g;
    }
    out->peak_gflops = best;
    snprintf(out->peak_method, sizeof out->peak_method, "%d threads, %s, 10 chains, best of 3%s",
             T, name, isfinite(sink) ? "" : " (non-finite sink)");
}

void probe_host(const uint8_t *bytes, size_t n, floor_probe *out)
{
    memset(out, 0, sizeof *out);
    host_read(bytes, n, out);
    host_peak(out);
}

/* ---- OpenCL devices ---------------------------------------------------------------------- */

/* Seconds per launch of k: batches of `per_batch` launches then a finish, the best and the
 * median batch over `batches`. */
static void time_launches(clrt_ctx *ctx, clrt_kernel *k, size_t global, size_t local, int nargs,
                          const clrt_arg *args, int per_batch, int batches, double *best,
                          double *median)
{
    double *t = xmalloc((size_t)batches * sizeof *t, "probe timings");
    for (int b = 0; b < batches; b++) {
        double t0 = now_seconds();
        for (int i = 0; i < per_batch; i++) clrt_launch(ctx, k, 1, &global, &local, nargs, args);
        clrt_finish(ctx);
        t[b] = (now_seconds() - t0) / per_batch;
    }
    stats3 s = stats_of(t, batches);
    *best = s.min;
    *median = s.median;
    free(t);
}

/* Launches per batch so that one batch takes about 50 ms (one launch is timed first). */
static int launches_for(clrt_ctx *ctx, clrt_kernel *k, size_t global, size_t local, int nargs,
                        const clrt_arg *args)
{
    double best, med;
    time_launches(ctx, k, global, local, nargs, args, 1, 1, &best, &med);
    int n = (int)(0.05 / (best > 1e-7 ? best : 1e-7));
    return n < 1 ? 1 : n > 500 ? 500 : n;
}

void probe_device(int index, const uint8_t *bytes, size_t n, floor_probe *out)
{
    memset(out, 0, sizeof *out);
    clrt_options opt = {.profiling = false, .no_cache = false};
    clrt_ctx *ctx = clrt_open(index, &opt);
    const clrt_device_desc *d = clrt_device(ctx);

    /* The images, padded with zeros to whole uint4 vectors. */
    size_t n16 = (n + 15) / 16, padded = n16 * 16;
    uint8_t *host = xcalloc(padded, 1, "bandwidth probe copy");
    memcpy(host, bytes, n);
    uint32_t want = 0;
    for (size_t i = 0; i < padded; i += 4) {
        uint32_t w;
        memcpy(&w, host + i, 4);
        want += w;
    }
    clrt_buf *src = clrt_alloc(ctx, padded, "bandwidth probe images");
    clrt_write(ctx, src, 0, padded, host);
    free(host);

    /* Read: each kernel in the launch shape it is written for (read_chunked, one item per
     * work-group, is for CPUs and is skipped on GPUs); the fastest that summed right counts. */
    bool gpu = strcmp(d->type, "GPU") == 0;
    size_t cus = d->compute_units ? d->compute_units : 1;
    const char *names[3] = {"read_strided", "read_blocked", "read_chunked"};
    double best_gbs = 0, best_median = 0;
    const char *best_name = "none";
    bool all_ok = true;
    for (int v = 0; v < 3; v++) {
        if (v == 2 && gpu) continue;
        clrt_kernel *k = clrt_kernel_get(ctx, "bench.cl", "", names[v]);
        size_t local = clrt_kernel_max_wg(ctx, k);
        if (local > 256) local = 256;
        if (v == 2) local = 1;
        size_t groups = v == 2 ? cus * 4 : cus * 8;
        size_t global = groups * local;
        clrt_buf *partial = clrt_alloc(ctx, global * sizeof(uint32_t), "bandwidth probe sums");
        uint64_t per_group = (n16 + groups - 1) / groups;
        clrt_arg args[4] = {clrt_arg_buf(src), clrt_arg_ulong(n16), clrt_arg_ulong(per_group),
                            clrt_arg_buf(partial)};
        int nargs = 4;
        if (v == 0) {
            args[2] = clrt_arg_buf(partial);
            nargs = 3;
        }
        int per_batch = launches_for(ctx, k, global, local, nargs, args);
        double best, med;
        time_launches(ctx, k, global, local, nargs, args, per_batch, READ_REPS, &best, &med);
        uint32_t *sums = xmalloc(global * sizeof *sums, "bandwidth probe sums");
        clrt_read(ctx, partial, 0, global * sizeof *sums, sums);
        uint32_t got = 0;
        for (size_t i = 0; i < global; i++) got += sums[i];
        free(sums);
        clrt_free(partial);
        if (got != want) {
            fprintf(stderr, "bench: %s on device %d: sum %u, the host's %u: the probe is wrong\n",
                    names[v], index, (unsigned)got, (unsigned)want);
            all_ok = false;
            continue;
        }
        double gbs = (double)padded / best / 1e9;
        if (gbs > best_gbs) {
            best_gbs = gbs;
            best_median = (double)padded / med / 1e9;
            best_name = names[v];
        }
    }
    clrt_free(src);
    out->read_gbs = best_gbs;
    out->read_gbs_median = best_median;
    out->checksum_ok = all_ok;
    snprintf(out->read_method, sizeof out->read_method,
             "bench.cl %s (fastest of read_strided, read_blocked%s), best of %d, %.1f MB", best_name,
             gpu ? "" : ", read_chunked", READ_REPS, (double)padded / 1e6);

    /* Peak: peak_mad in the GPU shape (many work-items of 256), peak_mad16 with one item per
     * work-group on CPUs (else in the GPU shape); 0.1 s or more per launch, so the launch
     * overhead is a small part of it. */
    const char *pnames[2] = {"peak_mad", "peak_mad16"};
    const double flop_per_iter[2] = {64.0, 256.0};
    double best_gflops = 0;
    char how[96] = "none";
    for (int v = 0; v < 2; v++) {
        clrt_kernel *k = clrt_kernel_get(ctx, "bench.cl", "", pnames[v]);
        size_t local = clrt_kernel_max_wg(ctx, k);
        if (local > 256) local = 256;
        size_t global = cus * local * 16;
        if (v == 1 && !gpu) {
            local = 1;
            global = cus * 4;
        }
        clrt_buf *o = clrt_alloc(ctx, global * sizeof(float), "peak probe output");
        int iters = 16;
        double best = 0, med = 0;
        for (;;) {
            clrt_arg args[4] = {clrt_arg_buf(o), clrt_arg_int(iters), clrt_arg_float(0.999999f),
                                clrt_arg_float(1e-6f)};
            time_launches(ctx, k, global, local, 4, args, 1, 1, &best, &med);
            if (best > 0.1 || iters >= (1 << 24)) break;
            iters *= best < 0.025 ? 4 : 2;
        }
        clrt_arg args[4] = {clrt_arg_buf(o), clrt_arg_int(iters), clrt_arg_float(0.999999f),
                            clrt_arg_float(1e-6f)};
        time_launches(ctx, k, global, local, 4, args, 1, 3, &best, &med);
        float first = 0;
        clrt_read(ctx, o, 0, sizeof first, &first);
        clrt_free(o);
        double g = (double)global * (double)iters * flop_per_iter[v] / best / 1e9;
        if (isfinite(first) && g > best_gflops) {
            best_gflops = g;
            snprintf(how, sizeof how, "%s, %zu work-items in groups of %zu", pnames[v], global, local);
        }
    }
    out->peak_gflops = best_gflops;
    snprintf(out->peak_method, sizeof out->peak_method,
             "bench.cl %s (faster of peak_mad, peak_mad16), best of 3", how);
    clrt_close(ctx);
}

bool probe_clblast(int index)
{
    clrt_options opt = {.profiling = false, .no_cache = false};
    clrt_ctx *ctx = clrt_open(index, &opt);
    enum { M = 64, N = 48, K = 80 };
    float *h = xmalloc(sizeof(float) * K * 64, "CLBlast probe");
    for (int i = 0; i < K * 64; i++) h[i] = (float)(i % 7) * 0.25f;
    clrt_buf *a = clrt_alloc(ctx, sizeof(float) * K * 64, "CLBlast probe A");
    clrt_buf *b = clrt_alloc(ctx, sizeof(float) * K * 64, "CLBlast probe B");
    clrt_buf *c = clrt_alloc(ctx, sizeof(float) * M * 64, "CLBlast probe C");
    clrt_write(ctx, a, 0, sizeof(float) * K * 64, h);
    clrt_write(ctx, b, 0, sizeof(float) * K * 64, h);
    /* The trainer's three layouts: A B^T (forward), A^T B (weight gradient), A B (backward). */
    bool ok = clrt_clblast_sgemm(ctx, false, true, M, N, K, 1.0f, a, 0, K, b, 0, K, 0.0f, c, 0, N) &&
              clrt_clblast_sgemm(ctx, true, false, M, N, K, 1.0f, a, 0, M, b, 0, N, 0.0f, c, 0, N) &&
              clrt_clblast_sgemm(ctx, false, false, M, N, K, 1.0f, a, 0, K, b, 0, N, 0.0f, c, 0, N);
    if (ok) clrt_finish(ctx);
    clrt_free(a); clrt_free(b); clrt_free(c);
    free(h);
    clrt_close(ctx);
    return ok;
}
