/* cl_program.c: kernel programs (see cl_runtime.h): their sources (embedded, or
 * $CLTRAIN_KERNEL_DIR, with #include "x.cl" substituted, each program's unlaunched kernels left
 * out by kernel_select.c), the on-disk program-binary cache, builds with the build log on
 * failure, the thread that builds programs ahead, and the kernels taken from them. */
#include "cl_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "kernel_select.h"
#include "kernels_embedded.h"

/* mkdir -p; returns 0 or -1 with errno set. */
static int make_dirs(const char *path)
{
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) { int e = errno; free(p); errno = e; return -1; }
            *s = c;
            if (c == 0) break;
        }
    }
    free(p);
    return 0;
}

char *clrt_cache_dir_open(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *dir;
    if (xdg && *xdg) {
        dir = xmalloc(strlen(xdg) + 16, "the cache path");
        sprintf(dir, "%s/cltrain", xdg);
    } else if (home && *home) {
        dir = xmalloc(strlen(home) + 24, "the cache path");
        sprintf(dir, "%s/.cache/cltrain", home);
    } else {
        return NULL;
    }
    if (make_dirs(dir) != 0) { free(dir); return NULL; }
    return dir;
}

/* ---- kernel sources ----------------------------------------------------------------------- */

/* The text of kernels/<file>: $CLTRAIN_KERNEL_DIR/<file> when that is set, else the copy built
 * into the binary. malloc'd and NUL-terminated. */
static char *read_kernel_file(const char *file, size_t *len)
{
    const char *dir = getenv("CLTRAIN_KERNEL_DIR");
    if (dir && *dir) {
        char *path = xmalloc(strlen(dir) + strlen(file) + 2, "a kernel path");
        sprintf(path, "%s/%s", dir, file);
        char *text = (char *)read_file(path, len);
        if (!text)
            die(EXIT_RUNTIME, "cannot read kernel source %s: %s (CLTRAIN_KERNEL_DIR is set)", path,
                strerror(errno));
        free(path);
        return text;
    }
    for (const embedded_kernel *k = embedded_kernels; k->name; k++)
        if (strcmp(k->name, file) == 0) {
            char *text = xmalloc(k->length + 1, "a kernel source");
            memcpy(text, k->source, k->length);
            text[k->length] = 0;
            *len = k->length;
            return text;
        }
    die(EXIT_RUNTIME, "no kernel file '%s' is built into this binary (expected kernels/%s)", file, file);
}

typedef struct {
    char *p;
    size_t n, cap;
} strbuf;

static void sb_add(strbuf *s, const char *text, size_t n)
{
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = xrealloc(s->p, s->cap, "a kernel source");
    }
    memcpy(s->p + s->n, text, n);
    s->n += n;
    s->p[s->n] = 0;
}

static void sb_str(strbuf *s, const char *text) { sb_add(s, text, strlen(text)); }

/* If line[0..n) is `#include "X"` (spaces allowed), copies X into name and returns true. */
static bool parse_include(const char *line, size_t n, char *name, size_t name_size)
{
    const char *p = line, *end = line + n;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end || *p++ != '#') return false;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if ((size_t)(end - p) < 8 || strncmp(p, "include", 7) != 0) return false;
    p += 7;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p == end || *p++ != '"') return false;
    const char *q = p;
    while (q < end && *q != '"') q++;
    if (q == end || q == p || (size_t)(q - p) >= name_size) return false;
    memcpy(name, p, (size_t)(q - p));
    name[q - p] = 0;
    for (q++; q < end; q++)
        if (*q != ' ' && *q != '\t' && *q != '\r') return false;
    return true;
}

/* kernels/<file> with every `#include "X.cl"` line replaced by the text of X.cl (looked up the
 * same way), wrapped in #line directives so build logs name the right file and line. */
static char *load_source(const char *file, int depth)
{
    size_t len;
    char *text = read_kernel_file(file, &len);
    if (!strstr(text, "#include") && !strstr(text, "# include")) return text;
    if (depth >= 8) die(EXIT_RUNTIME, "kernel %s: #include nested too deeply (a cycle?)", file);

    strbuf out = {0};
    char directive[300], name[256];
    int nlines = 0;
    snprintf(directive, sizeof directive, "#line 1 \"%s\"\n", file);
    sb_str(&out, directive);
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        nlines++;
        if (parse_include(line, n, name, sizeof name)) {
            char *inc = load_source(name, depth + 1);
            snprintf(directive, sizeof directive, "#line 1 \"%s\"\n", name);
            sb_str(&out, directive);
            sb_str(&out, inc);
            if (out.n > 0 && out.p[out.n - 1] != '\n') sb_str(&out, "\n");
            snprintf(directive, sizeof directive, "#line %d \"%s\"\n", nlines + 1, file);
            sb_str(&out, directive);
            free(inc);
        } else {
            sb_add(&out, line, n);
            sb_str(&out, "\n");
        }
        line += n + (nl ? 1 : 0);
    }
    free(text);
    return out.p;
}

/* ---- program-binary cache ------------------------------------------------------------------
 * One file per program: <dir>/<key>.bin = magic "CLTRBIN1", key, binary length, FNV-1a of the
 * binary (each a little-endian u64), then the binary of clGetProgramInfo(CL_PROGRAM_BINARIES).
 * The key hashes the platform, device, driver, options and the final source, so any change
 * misses. Bad entries are ignored and rewritten; writes are atomic (tmp file + rename). */

enum { CACHE_HEADER = 32 };
static const char cache_magic[8] = {'C', 'L', 'T', 'R', 'B', 'I', 'N', '1'};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s)
{
    return fnv1a(h, s, strlen(s) + 1); /* the NUL separates fields */
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t cache_key(const clrt_ctx *ctx, const char *source, const char *options)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a_str(h, "cltrain program cache 1");
    h = fnv1a_str(h, ctx->desc.platform);
    h = fnv1a_str(h, ctx->desc.name);
    h = fnv1a_str(h, ctx->desc.driver);
    h = fnv1a_str(h, options);
    return fnv1a_str(h, source);
}

static char *cache_path(const clrt_ctx *ctx, uint64_t key)
{
    char *path = xmalloc(strlen(ctx->cache_dir) + 32, "the cache path");
    sprintf(path, "%s/%016llx.bin", ctx->cache_dir, (unsigned long long)key);
    return path;
}

/* The program from the cache entry, built; NULL when absent or unusable. */
static cl_program cache_load(clrt_ctx *ctx, uint64_t key, const char *options)
{
    char *path = cache_path(ctx, key);
    size_t len = 0;
    unsigned char *data = read_file(path, &len);
    free(path);
    if (!data) return NULL;
    cl_program prog = NULL;
    if (len > CACHE_HEADER && memcmp(data, cache_magic, 8) == 0 && get_u64(data + 8) == key &&
        get_u64(data + 16) == len - CACHE_HEADER &&
        get_u64(data + 24) == fnv1a(0xcbf29ce484222325ULL, data + CACHE_HEADER, len - CACHE_HEADER)) {
        const unsigned char *bin = data + CACHE_HEADER;
        size_t bin_len = len - CACHE_HEADER;
        cl_int status = CL_SUCCESS, err;
        prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &bin_len, &bin, &status, &err);
        if (err != CL_SUCCESS || status != CL_SUCCESS) {
            if (err == CL_SUCCESS) clReleaseProgram(prog);
            prog = NULL;
        } else if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
            clReleaseProgram(prog);
            prog = NULL;
        }
    }
    free(data);
    return prog;
}

static void cache_warn(clrt_ctx *ctx, const char *path, const char *why)
{
    if (!ctx->cache_warned)
        fprintf(stderr, "cltrain: warning: cannot write the program cache %s: %s\n", path, why);
    ctx->cache_warned = true;
}

static void cache_store(clrt_ctx *ctx, uint64_t key, cl_program prog)
{
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
        size == 0)
        return;
    unsigned char *data = xmalloc(CACHE_HEADER + size, "a program binary");
    unsigned char *bin = data + CACHE_HEADER;
    char *path = cache_path(ctx, key);
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS) {
        memcpy(data, cache_magic, 8);
        put_u64(data + 8, key);
        put_u64(data + 16, size);
        put_u64(data + 24, fnv1a(0xcbf29ce484222325ULL, bin, size));
        if (write_file_atomic(path, data, CACHE_HEADER + size) != 0)
            cache_warn(ctx, path, strerror(errno));
    }
    free(path);
    free(data);
}

/* ---- programs and kernels ---------------------------------------------------------------- */

/* The program built from source; on failure NULL when `quiet` (the prefetch thread: the main
 * thread builds it again when it is asked for, and reports), else the build log and exit 1. */
static cl_program build_from_source(clrt_ctx *ctx, const char *file, const char *source,
                                    const char *options, bool quiet)
{
    cl_int err;
    size_t len = strlen(source);
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &source, &len, &err);
    char what[320];
    snprintf(what, sizeof what, "building %s", file);
    if (err != CL_SUCCESS) {
        if (quiet) return NULL;
        clrt_fail(ctx, err, "clCreateProgramWithSource", what);
    }
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS && quiet) {
        clReleaseProgram(prog);
        return NULL;
    }
    if (err != CL_SUCCESS) {
        size_t n = 0;
        if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) == CL_SUCCESS &&
            n > 0) {
            char *log = xmalloc(n + 1, "the build log");
            if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) == CL_SUCCESS) {
                log[n] = 0;
                fflush(stdout);
                fprintf(stderr, "cltrain: build log of %s (options \"%s\") on %s:\n%s\n", file,
                        options, ctx->desc.name, log);
            }
            free(log);
        }
        die(EXIT_RUNTIME, "clBuildProgram: %s building %s with options \"%s\" (device %s)",
            clrt_error_name(err), file, options, ctx->desc.name);
    }
    return prog;
}

/* Whether the space-separated list `set` names `name`. */
static bool set_has(const char *set, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = set; (p = strstr(p, name)) != NULL; p += n)
        if ((p == set || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return true;
    return false;
}

/* The program holding kernel `name` of file built with options: one built for it (alone or
 * with its family), or the whole file's. */
static int find_program(const clrt_ctx *ctx, const char *file, const char *options, const char *name)
{
    for (int i = 0; i < ctx->nprograms; i++) {
        const program_entry *p = &ctx->programs[i];
        if (strcmp(p->file, file) == 0 && strcmp(p->options, options) == 0 &&
            (!p->kernels || set_has(p->kernels, name)))
            return i;
    }
    return -1;
}

/* A program of the kernels `set` names and no others (the file's other kernels blanked: PoCL
 * compiles every kernel of a program when the cache takes its binary, and each costs start-up
 * time), or of the whole file when kernel_select cannot single them out: loaded from the
 * cache or built (and stored). false, with nothing made, only when `quiet` and the build
 * failed. */
/* Every program's besides its own options: denormal floats flushed to zero. Gradients and
 * optimizer state that decay into the denormal range otherwise take the CPU's slow microcode
 * path (784-800-10, nesterov, cosine schedule, PoCL 2 cores: epochs from the third on
 * 1.10-1.13 s, 0.68 s so); a float32 below 1.2e-38 adds nothing a training keeps. */
#define CLRT_BUILD_FLAGS "-cl-denorms-are-zero"

static bool make_program(clrt_ctx *ctx, const char *file, const char *options, const char *set,
                         bool quiet, program_entry *out)
{
    double t0 = now_seconds();
    char *source = load_source(file, 0);
    char *some = kernel_select(source, set);
    if (some) { free(source); source = some; }
    size_t len = strlen(options) + sizeof " " CLRT_BUILD_FLAGS;
    char *full = xmalloc(len, "build options");
    snprintf(full, len, "%s%s%s", options, *options ? " " : "", CLRT_BUILD_FLAGS);
    cl_program prog = NULL;
    uint64_t key = 0;
    clrt_build_source from = CLRT_LOADED_FROM_CACHE;
    if (ctx->cache_dir) {
        key = cache_key(ctx, source, full);
        prog = cache_load(ctx, key, full);
    }
    if (!prog) {
        from = CLRT_BUILT_FROM_SOURCE;
        prog = build_from_source(ctx, file, source, full, quiet);
        if (prog && ctx->cache_dir) cache_store(ctx, key, prog);
    }
    free(full);
    free(source);
    if (!prog) return false;
    *out = (program_entry){xstrdup(file), xstrdup(options), some ? xstrdup(set) : NULL, prog, from,
                           now_seconds() - t0};
    return true;
}

static int add_entry(clrt_ctx *ctx, const program_entry *e)
{
    ctx->programs = xrealloc(ctx->programs, (size_t)(ctx->nprograms + 1) * sizeof *ctx->programs,
                             "the program list");
    ctx->programs[ctx->nprograms] = *e;
    return ctx->nprograms++;
}

static void free_entry(program_entry *e)
{
    clReleaseProgram(e->program);
    free(e->file);
    free(e->options);
    free(e->kernels);
}

/* ---- building ahead -----------------------------------------------------------------------
 * clrt_prefetch's thread builds programs while the caller does other work (reads the data);
 * the first clrt_kernel_get (or clrt_close) waits for it and takes its programs. It never
 * dies: a program it cannot build is left for the main thread, which builds it again when it
 * is asked for and reports the failure as always. OpenCL calls are thread-safe; the thread
 * touches only its own list and the cache files until it is joined. */

struct clrt_prefetch_job {
    pthread_t thread;
    clrt_ctx *ctx;
    int n, done;
    atomic_bool stop;       /* set at exit: build no further program */
    bool joined;
    struct { char *file, *options, *kernels; } *specs;   /* the caller's, copied */
    program_entry *made;
};

/* A process that exits (bad input found while the thread builds: exit 2) must not tear the
 * driver down under the thread: exit waits for the program being built, and no other starts. */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct clrt_prefetch_job *running;   /* the job exit waits for; NULL: none */

static void prefetch_at_exit(void)
{
    pthread_mutex_lock(&running_lock);
    if (running && !running->joined && !pthread_equal(running->thread, pthread_self())) {
        atomic_store(&running->stop, true);
        pthread_join(running->thread, NULL);
        running->joined = true;   /* still reachable from `running`: no leak reported */
    }
    pthread_mutex_unlock(&running_lock);
}

static void *prefetch_main(void *arg)
{
    struct clrt_prefetch_job *job = arg;
    for (int i = 0; i < job->n && !atomic_load(&job->stop); i++) {
        if (make_program(job->ctx, job->specs[i].file, job->specs[i].options, job->specs[i].kernels,
                         true, &job->made[job->done]))
            job->done++;
    }
    return NULL;
}

/* Takes the programs the job made into the context and frees the job. */
static void prefetch_take(clrt_ctx *ctx, struct clrt_prefetch_job *job)
{
    for (int i = 0; i < job->done; i++) add_entry(ctx, &job->made[i]);
    for (int i = 0; i < job->n; i++) {
        free(job->specs[i].file);
        free(job->specs[i].options);
        free(job->specs[i].kernels);
    }
    free(job->specs);
    free(job->made);
    free(job);
}

static void prefetch_join(clrt_ctx *ctx)
{
    struct clrt_prefetch_job *job = ctx->prefetch;
    if (!job) return;
    ctx->prefetch = NULL;
    pthread_mutex_lock(&running_lock);
    if (running == job) running = NULL;
    if (!job->joined) pthread_join(job->thread, NULL);
    pthread_mutex_unlock(&running_lock);
    prefetch_take(ctx, job);
}

void clrt_prefetch(clrt_ctx *ctx, int n, const clrt_program_spec *specs)
{
    prefetch_join(ctx);
    const char *dir = getenv("CLTRAIN_KERNEL_DIR");
    if (n <= 0 || (dir && *dir)) return;   /* sources from disk: build when asked, and report */
    for (int i = 0; i < n; i++) {
        bool embedded = false;
        for (const embedded_kernel *k = embedded_kernels; k->name; k++)
            embedded = embedded || strcmp(k->name, specs[i].file) == 0;
        if (!embedded) return;   /* load_source would die in the thread */
    }
    struct clrt_prefetch_job *job = xcalloc(1, sizeof *job, "the build thread");
    job->ctx = ctx;
    job->n = n;
    job->specs = xcalloc((size_t)n, sizeof *job->specs, "the build thread");
    job->made = xcalloc((size_t)n, sizeof *job->made, "the build thread");
    for (int i = 0; i < n; i++) {
        job->specs[i].file = xstrdup(specs[i].file);
        job->specs[i].options = xstrdup(specs[i].options ? specs[i].options : "");
        job->specs[i].kernels = xstrdup(specs[i].kernels);
    }
    static bool at_exit_set;
    pthread_mutex_lock(&running_lock);
    if (!at_exit_set) at_exit_set = atexit(prefetch_at_exit) == 0;
    bool started = at_exit_set && !running &&
                   pthread_create(&job->thread, NULL, prefetch_main, job) == 0;
    if (started) running = job;
    pthread_mutex_unlock(&running_lock);
    if (!started) {   /* no thread (or another context's still runs): build them now */
        prefetch_main(job);
        prefetch_take(ctx, job);
        return;
    }
    ctx->prefetch = job;
}

clrt_kernel *clrt_kernel_get(clrt_ctx *ctx, const char *file, const char *options, const char *name)
{
    return clrt_kernel_get_with(ctx, file, options, name, NULL);
}

clrt_kernel *clrt_kernel_get_with(clrt_ctx *ctx, const char *file, const char *options,
                                  const char *name, const char *together)
{
    if (!options) options = "";
    prefetch_join(ctx);
    int p = find_program(ctx, file, options, name);
    if (p >= 0) {
        ctx->last_source = CLRT_REUSED_IN_MEMORY;
        for (int i = 0; i < ctx->nkernels; i++)
            if (ctx->kernels[i]->program == p && strcmp(ctx->kernels[i]->name, name) == 0)
                return ctx->kernels[i];
    } else {
        char *set = xmalloc(strlen(name) + (together ? strlen(together) : 0) + 2, "a kernel list");
        sprintf(set, "%s%s%s", name, together ? " " : "", together ? together : "");
        program_entry e;
        make_program(ctx, file, options, set, false, &e);
        free(set);
        ctx->last_source = e.source;
        p = add_entry(ctx, &e);
    }

    cl_int err;
    cl_kernel kernel = clCreateKernel(ctx->programs[p].program, name, &err);
    if (err != CL_SUCCESS) {
        char what[320];
        snprintf(what, sizeof what, "kernel '%s' in %s", name, file);
        clrt_fail(ctx, err, "clCreateKernel", what);
    }
    clrt_kernel *k = xcalloc(1, sizeof *k, "a kernel");
    k->kernel = kernel;
    k->name = xstrdup(name);
    k->program = p;
    char what[320];
    snprintf(what, sizeof what, "kernel '%s'", name);
    err = clGetKernelInfo(kernel, CL_KERNEL_NUM_ARGS, sizeof k->num_args, &k->num_args, NULL);
    if (err != CL_SUCCESS) clrt_fail(ctx, err, "clGetKernelInfo", what);
    err = clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof k->max_wg,
                                   &k->max_wg, NULL);
    if (err != CL_SUCCESS) clrt_fail(ctx, err, "clGetKernelWorkGroupInfo", what);
    if (k->max_wg > ctx->desc.max_work_group) k->max_wg = ctx->desc.max_work_group;
    cl_ulong local = 0;
    err = clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local,
                                   &local, NULL);
    if (err != CL_SUCCESS) clrt_fail(ctx, err, "clGetKernelWorkGroupInfo", what);
    k->static_local = local;
    k->stat = ctx->opt.profiling ? clrt_stat_index(ctx, name) : -1;

    ctx->kernels = xrealloc(ctx->kernels, (size_t)(ctx->nkernels + 1) * sizeof *ctx->kernels,
                            "the kernel list");
    ctx->kernels[ctx->nkernels++] = k;
    return k;
}

size_t clrt_kernel_max_wg(clrt_ctx *ctx, clrt_kernel *k)
{
    (void)ctx;
    return k->max_wg;
}

void clrt_program_kernel_names(clrt_ctx *ctx, const clrt_kernel *k, char *names, size_t len)
{
    size_t n = 0;
    cl_program prog = ctx->programs[k->program].program;
    clrt_check(ctx, clGetProgramInfo(prog, CL_PROGRAM_KERNEL_NAMES, 0, NULL, &n), "clGetProgramInfo");
    char *all = xmalloc(n + 1, "kernel names");
    clrt_check(ctx, clGetProgramInfo(prog, CL_PROGRAM_KERNEL_NAMES, n, all, NULL), "clGetProgramInfo");
    all[n] = 0;
    snprintf(names, len, "%s", all);
    free(all);
}

clrt_build_source clrt_last_build_source(const clrt_ctx *ctx)
{
    return ctx->last_source;
}

void clrt_print_programs(clrt_ctx *ctx, FILE *f)
{
    prefetch_join(ctx);
    int built = 0;
    double total = 0;
    for (int i = 0; i < ctx->nprograms; i++) {
        built += ctx->programs[i].source == CLRT_BUILT_FROM_SOURCE;
        total += ctx->programs[i].seconds;
    }
    fprintf(f, "programs: %d (%d compiled, %d from the cache), %.3f s%s\n", ctx->nprograms, built,
            ctx->nprograms - built, total,
            ctx->driver_cache ? "; kernels cached by PoCL itself (POCL_KERNEL_CACHE=0: by cltrain)" : "");
    for (int i = 0; i < ctx->nprograms; i++) {
        const program_entry *p = &ctx->programs[i];
        fprintf(f, "  %-16s %-8s %9.3f ms  [%s]  %s\n", p->file,
                p->source == CLRT_BUILT_FROM_SOURCE ? "compiled" : "cached", p->seconds * 1e3,
                p->kernels ? p->kernels : "every kernel", p->options);
    }
}

void clrt_programs_release(clrt_ctx *ctx)
{
    prefetch_join(ctx);
    for (int i = 0; i < ctx->nkernels; i++) {
        clReleaseKernel(ctx->kernels[i]->kernel);
        free(ctx->kernels[i]->name);
        free(ctx->kernels[i]);
    }
    for (int i = 0; i < ctx->nprograms; i++) free_entry(&ctx->programs[i]);
    free(ctx->kernels);
    free(ctx->programs);
}
