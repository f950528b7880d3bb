/* test_cl_runtime.c: the OpenCL runtime against plain C on PoCL: error names, enumeration,
 * buffers and launches (kernels/selftest.cl scale_add), the program-binary cache (miss, hit,
 * corrupt entry; left to PoCL's own cache unless that is off), #include substitution, build failures and launch limits (exit status 1 with
 * a message naming the problem), profiling and CLBlast SGEMM.
 * Contexts are created only inside the test functions: Check forks each test. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cl_runtime.h"
#include "kernel_select.h"
#include "kernels_embedded.h"
#include "support.h"
#include "test_suites.h"
#include "util.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t test_rng = 0x9e3779b97f4a7c15ULL;

/* Uniform in [-1, 1). */
static float frand(void)
{
    test_rng = test_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((test_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static void write_text(const char *dir, const char *file, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Number of *.bin entries in dir; the path of the last one into path (if any). */
static int cache_entries(const char *dir, char *path, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".bin") == 0) {
            n++;
            if (path) snprintf(path, len, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Under CK_FORK=no, OpenCL is already running in this process when a test forks, and PoCL's
 * threads do not survive fork: the tests that fork skip themselves. */
static bool cannot_fork(void)
{
    const char *f = getenv("CK_FORK");
    if (f && strcmp(f, "no") == 0) {
        fprintf(stderr, "test_cl_runtime: skipping a forking test under CK_FORK=no\n");
        return true;
    }
    return false;
}

/* Runs fn in a child with stderr captured; returns its exit status and the text in err.
 * The caller must not have used OpenCL before (see cannot_fork). */
static int run_captured(void (*fn)(void), char *err, size_t len)
{
    char path[] = "/tmp/cltrain-stderr-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, 2);
        fn();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    size_t n = 0;
    unsigned char *text = read_file(path, &n);
    close(fd);
    unlink(path);
    snprintf(err, len, "%s", text ? (char *)text : "");
    free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The PoCL device's global index. */
static int pocl_index(void)
{
    clrt_device_desc *d = NULL;
    int n = clrt_list_devices(&d), found = -1;
    for (int i = 0; i < n && found < 0; i++)
        if (strstr(d[i].platform, "Portable Computing Language")) found = d[i].index;
    free(d);
    ck_assert_msg(found >= 0, "no PoCL device");
    return found;
}

static clrt_ctx *open_pocl(bool profiling, bool no_cache)
{
    clrt_options opt = {.profiling = profiling, .no_cache = no_cache};
    return clrt_open(pocl_index(), &opt);
}

/* Runs scale_add (y = a*x + b*y) on n random elements and compares with plain C.
 * Tolerance: the device may fuse a*x + b*y into fma(a, x, b*y) or not; either way each of the
 * (at most) three roundings errs by u = 2^-24 relative, so |y - exact| <= 3u (|a x| + |b y|)
 * ~ 1.8e-7 (|a x| + |b y|); we allow 1e-6 of that scale. The elements past n stay NaN: the
 * rounded-up work-items are guarded. */
static void check_scale_add(clrt_ctx *ctx, clrt_kernel *k, int n)
{
    const int pad = 67;
    size_t total = (size_t)n + (size_t)pad;
    float *x = xmalloc(total * sizeof *x, "x"), *y = xmalloc(total * sizeof *y, "y");
    float *out = xmalloc(total * sizeof *out, "out");
    for (int i = 0; i < n; i++) { x[i] = frand(); y[i] = frand(); }
    float a = 1.5f + frand(), b = -0.75f + frand();

    clrt_buf *bx = clrt_alloc(ctx, (size_t)n * sizeof(float), "x");
    clrt_buf *by = clrt_alloc(ctx, total * sizeof(float), "y");
    clrt_fill32(ctx, by, 0, total * sizeof(float), 0x7fc00000u);
    clrt_write(ctx, bx, 0, (size_t)n * sizeof(float), x);
    clrt_write(ctx, by, 0, (size_t)n * sizeof(float), y);
    size_t global = (size_t)n, local = 64;
    clrt_arg args[] = {clrt_arg_buf(by), clrt_arg_buf(bx), clrt_arg_float(a), clrt_arg_float(b),
                       clrt_arg_int(n)};
    clrt_launch(ctx, k, 1, &global, &local, 5, args);
    clrt_read(ctx, by, 0, total * sizeof(float), out);

    for (int i = 0; i < n; i++) {
        double exact = (double)a * x[i] + (double)b * y[i];
        double scale = fabs((double)a * x[i]) + fabs((double)b * y[i]);
        ck_assert_msg(fabs(out[i] - exact) <= 1e-6 * scale + 1e-30,
                      "n=%d i=%d: got %.9g want %.9g", n, i, out[i], exact);
    }
    for (size_t i = (size_t)n; i < total; i++) ck_assert_msg(isnan(out[i]), "n=%d: y[%zu] written", n, i);
    clrt_free(bx);
    clrt_free(by);
    free(x);
    free(y);
    free(out);
}

/* ---- tests ------------------------------------------------------------------------------ */

START_TEST(test_error_names)
{
    ck_assert_str_eq(clrt_error_name(0), "CL_SUCCESS");
    ck_assert_str_eq(clrt_error_name(-5), "CL_OUT_OF_RESOURCES");
    ck_assert_str_eq(clrt_error_name(-11), "CL_BUILD_PROGRAM_FAILURE");
    ck_assert_str_eq(clrt_error_name(-30), "CL_INVALID_VALUE");
    ck_assert_str_eq(clrt_error_name(-52), "CL_INVALID_KERNEL_ARGS");
    ck_assert_str_eq(clrt_error_name(-72), "CL_MAX_SIZE_RESTRICTION_EXCEEDED");
    ck_assert_str_eq(clrt_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    ck_assert_str_eq(clrt_error_name(-12345), "CL_UNKNOWN_ERROR(-12345)");
    ck_assert_str_eq(clrt_error_name(-25), "CL_UNKNOWN_ERROR(-25)");
}
END_TEST

START_TEST(test_enumerate)
{
    clrt_device_desc *d = NULL;
    int n = clrt_list_devices(&d);
    ck_assert_int_ge(n, 1);
    int pocl = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(d[i].index, i);
        ck_assert_uint_gt(d[i].compute_units, 0);
        ck_assert_uint_gt(d[i].global_mem, 0);
        ck_assert_uint_gt(d[i].max_alloc, 0);
        ck_assert_uint_ge(d[i].max_work_group, 1);
        ck_assert(strlen(d[i].name) > 0);
        if (strstr(d[i].platform, "Portable Computing Language")) pocl++;
    }
    ck_assert_int_ge(pocl, 1);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    clrt_print_devices(f, d, n);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "Portable Computing Language"));
    ck_assert_ptr_nonnull(strstr(text, d[0].name));
    ck_assert_ptr_nonnull(strstr(text, "max alloc"));
    free(text);
    free(d);
}
END_TEST

START_TEST(test_scale_add)
{
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
    ck_assert_ptr_eq(clrt_kernel_get(ctx, "selftest.cl", "", "scale_add"), k);
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_REUSED_IN_MEMORY);
    ck_assert_uint_ge(clrt_kernel_max_wg(ctx, k), 64);
    static const int sizes[] = {1, 7, 1000, 65537};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) check_scale_add(ctx, k, sizes[i]);
    clrt_close(ctx);
}
END_TEST

START_TEST(test_buffers)
{
    clrt_ctx *ctx = open_pocl(false, true);
    uint32_t host[256], back[256];
    for (int i = 0; i < 256; i++) host[i] = (uint32_t)i * 2654435761u;
    clrt_buf *a = clrt_alloc(ctx, sizeof host, "a");
    clrt_buf *b = clrt_alloc(ctx, sizeof host, "b");
    clrt_buf *z = clrt_alloc(ctx, 0, "empty");
    ck_assert_uint_eq(clrt_buf_size(a), sizeof host);
    ck_assert_uint_eq(clrt_buf_size(z), 0);
    /* New buffers are zero. */
    clrt_read(ctx, b, 0, sizeof back, back);
    for (int i = 0; i < 256; i++) ck_assert_uint_eq(back[i], 0);
    clrt_write(ctx, a, 0, sizeof host, host);
    clrt_fill32(ctx, b, 0, sizeof host, 0xdeadbeefu);
    clrt_copy(ctx, a, 40 * 4, b, 100 * 4, 50 * 4);
    clrt_read(ctx, b, 0, sizeof back, back);
    for (int i = 0; i < 256; i++)
        ck_assert_uint_eq(back[i], i >= 100 && i < 150 ? host[i - 60] : 0xdeadbeefu);
    clrt_read(ctx, a, 8, 12, back);
    ck_assert_uint_eq(back[0], host[2]);
    ck_assert_uint_eq(back[2], host[4]);
    clrt_finish(ctx);
    clrt_free(a);
    clrt_free(b);
    clrt_free(z);
    clrt_close(ctx);
}
END_TEST

/* PoCL keeps the kernels it compiles in its own cache (under XDG_CACHE_HOME/pocl), so
 * cltrain's cache stays out of the way there: nothing written, nothing read, and the kernel
 * still right. */
START_TEST(test_binary_cache_left_to_pocl)
{
    char xdg[64];
    work_dir_make(xdg, sizeof xdg, "clrt");
    setenv("XDG_CACHE_HOME", xdg, 1);
    unsetenv("POCL_KERNEL_CACHE");
    char dir[600], pocl[600];
    snprintf(dir, sizeof dir, "%s/cltrain", xdg);
    snprintf(pocl, sizeof pocl, "%s/pocl", xdg);
    for (int run = 0; run < 2; run++) {
        clrt_ctx *ctx = open_pocl(false, false);
        clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
        ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
        check_scale_add(ctx, k, 1000);
        clrt_close(ctx);
        ck_assert_int_eq(cache_entries(dir, NULL, 0), 0);
    }
    struct stat st;
    ck_assert_msg(stat(pocl, &st) == 0 && S_ISDIR(st.st_mode), "PoCL wrote no cache in %s", pocl);
    unsetenv("XDG_CACHE_HOME");
    work_dir_remove(xdg);
}
END_TEST

/* cltrain's own cache, as it runs where the driver keeps no kernels of its own: here PoCL
 * with its cache off. */
START_TEST(test_binary_cache)
{
    char xdg[64];
    work_dir_make(xdg, sizeof xdg, "clrt");
    setenv("XDG_CACHE_HOME", xdg, 1);
    setenv("POCL_KERNEL_CACHE", "0", 1);
    char dir[600], entry[1200];
    snprintf(dir, sizeof dir, "%s/cltrain", xdg);

    /* Miss: built from source, one entry written. */
    clrt_ctx *ctx = open_pocl(false, false);
    clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
    ck_assert_int_eq(cache_entries(dir, entry, sizeof entry), 1);
    long size = file_size(entry);
    ck_assert_int_gt(size, 32);
    check_scale_add(ctx, k, 1000);
    clrt_close(ctx);

    /* Hit, in a new context. */
    ctx = open_pocl(false, false);
    k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_LOADED_FROM_CACHE);
    check_scale_add(ctx, k, 1000);
    /* Other options: another entry. */
    clrt_kernel_get(ctx, "selftest.cl", "-DUNUSED=1", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
    ck_assert_int_eq(cache_entries(dir, NULL, 0), 2);
    clrt_close(ctx);

    /* Corrupt entries: truncated, a flipped byte in the binary, a flipped byte in the header.
     * Each falls back to the source, still computes the right thing and is rewritten. */
    for (int mode = 0; mode < 3; mode++) {
        size_t n = 0;
        unsigned char *data = read_file(entry, &n);
        ck_assert_ptr_nonnull(data);
        if (mode == 0) n /= 2;
        else if (mode == 1) data[n / 2] ^= 0x5a;
        else data[3] ^= 0x01;
        ck_assert_int_eq(write_file_atomic(entry, data, n), 0);
        free(data);

        ctx = open_pocl(false, false);
        k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
        ck_assert_msg(clrt_last_build_source(ctx) == CLRT_BUILT_FROM_SOURCE, "mode %d", mode);
        check_scale_add(ctx, k, 65537);
        clrt_close(ctx);
        /* Rewritten whole (PoCL's binary may differ in size from run to run: it bundles
         * PoCL's own kernel cache), and the next context loads it. */
        ck_assert_int_gt(file_size(entry), 32);

        ctx = open_pocl(false, false);
        clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
        ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_LOADED_FROM_CACHE);
        clrt_close(ctx);
    }

    /* no_cache neither reads nor writes. */
    ctx = open_pocl(false, true);
    clrt_kernel_get(ctx, "selftest.cl", "-DOTHER=2", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
    clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
    ck_assert_int_eq(cache_entries(dir, NULL, 0), 2);
    clrt_close(ctx);

    unsetenv("POCL_KERNEL_CACHE");
    unsetenv("XDG_CACHE_HOME");
    work_dir_remove(xdg);
}
END_TEST

START_TEST(test_include)
{
    char kdir[64];
    work_dir_make(kdir, sizeof kdir, "clrt");
    write_text(kdir, "helper.cl", "inline float twice(float v) { return 2.0f * v; }\n");
    write_text(kdir, "main.cl",
               "/* y[i] = twice(x[i]) + OFFSET */\n"
               "  #include \"helper.cl\"  \n"
               "__kernel void apply(__global float *y, __global const float *x, int n)\n"
               "{\n"
               "    int i = (int)get_global_id(0);\n"
               "    if (i < n) y[i] = twice(x[i]) + OFFSET;\n"
               "}\n");
    setenv("CLTRAIN_KERNEL_DIR", kdir, 1);
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_kernel *k = clrt_kernel_get(ctx, "main.cl", "-DOFFSET=0.5f", "apply");
    enum { N = 100 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)i;
    clrt_buf *bx = clrt_alloc(ctx, sizeof x, "x"), *by = clrt_alloc(ctx, sizeof y, "y");
    clrt_write(ctx, bx, 0, sizeof x, x);
    size_t global = N;
    clrt_arg args[] = {clrt_arg_buf(by), clrt_arg_buf(bx), clrt_arg_int(N)};
    clrt_launch(ctx, k, 1, &global, NULL, 3, args);
    clrt_read(ctx, by, 0, sizeof y, y);
    for (int i = 0; i < N; i++) ck_assert_float_eq(y[i], 2.0f * (float)i + 0.5f);
    clrt_free(bx);
    clrt_free(by);
    clrt_close(ctx);
    unsetenv("CLTRAIN_KERNEL_DIR");
    work_dir_remove(kdir);
}
END_TEST

/* Every kernel of every file of kernels/ gets a program holding it alone (with the options a
 * file must have), and gemm.cl's macro-made variants one each through GEMM_ONLY. */
START_TEST(test_one_kernel_per_program)
{
    clrt_ctx *ctx = open_pocl(false, true);
    char names[1024];
    int programs = 0;
    for (const embedded_kernel *e = embedded_kernels; e->name; e++) {
        kernel_span sp[64];
        int n = kernel_spans(e->source, sp, 64);
        ck_assert_int_ge(n, 0);
        const char *opts = strcmp(e->name, "gemm.cl") == 0      ? "-DGEMM_NONE"
                           : strcmp(e->name, "layers.cl") == 0 ? "-DK=6 -DN=3"
                           : strcmp(e->name, "sparse.cl") == 0 ? "-DK=6 -DN=3"
                           : strcmp(e->name, "softmax_xent.cl") == 0 ? "-DCLASSES=3"
                           : strcmp(e->name, "output_step.cl") == 0 ? "-DK=6 -DN=3 -DACT=1"
                           : strcmp(e->name, "sparse_step.cl") == 0 ? "-DK=6 -DH=3 -DN=2 -DACT=1 -DROW_BLOCK=16"
                           : strcmp(e->name, "fused_step.cl") == 0
                               ? "-DNL=1 -DSIZES=6,3 -DWOFFS=0 -DBOFFS=18 -DTSTARTS=0,1 -DACT=1 "
                                 "-DOPT=0 -DVW=2 -DRN=8 -DRV=2 -DCLASSES=3 -DSPARSE0=1 -DSB=1 -DPR=32"
                                                                : "";
        for (int i = 0; i < n; i++) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)sp[i].name_len, e->source + sp[i].name);
            clrt_kernel *k = clrt_kernel_get(ctx, e->name, opts, name);
            ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
            clrt_program_kernel_names(ctx, k, names, sizeof names);
            ck_assert_msg(strcmp(names, name) == 0, "%s: the program of %s holds %s", e->name, name,
                          names);
            programs++;
        }
    }
    ck_assert_int_ge(programs, 30);
    clrt_kernel *k = clrt_kernel_get(ctx, "gemm.cl",
                                     "-DGEMM_ONLY=gemm_tn_uf -DGEMM_A_T=uchar -DGEMM_A_LOAD=gemm_load_tile_u "
                                     "-DGEMM_A_TRANS=1 -DGEMM_B_T=float -DGEMM_B_LOAD=gemm_load_tile_f "
                                     "-DGEMM_B_TRANS=0", "gemm_tn_uf");
    clrt_program_kernel_names(ctx, k, names, sizeof names);
    ck_assert_str_eq(names, "gemm_tn_uf");
    /* A family: both in one program, and the second is found in it, not rebuilt. */
    k = clrt_kernel_get_with(ctx, "update.cl", "-DFAMILY", "update_adam", "update_adamw");
    clrt_program_kernel_names(ctx, k, names, sizeof names);
    ck_assert_msg(strcmp(names, "update_adam;update_adamw") == 0 ||
                  strcmp(names, "update_adamw;update_adam") == 0, "%s", names);
    clrt_kernel_get(ctx, "update.cl", "-DFAMILY", "update_adamw");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_REUSED_IN_MEMORY);
    clrt_close(ctx);
}
END_TEST

/* layers.cl without -DK fails (#error): ahead quietly, then again, loudly, when asked for. */
static void prefetch_bad_kernel(void)
{
    clrt_ctx *ctx = open_pocl(false, true);
    const clrt_program_spec bad = {"layers.cl", "", "linear_forward"};
    clrt_prefetch(ctx, 1, &bad);
    clrt_kernel_get(ctx, "layers.cl", "", "linear_forward");
}

START_TEST(test_prefetch)
{
    if (cannot_fork()) return;
    char err[8192];
    ck_assert_int_eq(run_captured(prefetch_bad_kernel, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "clBuildProgram: CL_BUILD_PROGRAM_FAILURE") != NULL, "%.1500s", err);
    ck_assert_msg(strstr(err, "build with -DK=") != NULL, "no build log in: %.1500s", err);

    clrt_ctx *ctx = open_pocl(false, true);
    const clrt_program_spec specs[] = {
        {"selftest.cl", "-DPREFETCHED=1", "scale_add"},
        {"layers.cl", "", "linear_forward"},   /* fails, quietly: nobody asks for it */
    };
    clrt_prefetch(ctx, 2, specs);
    clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "-DPREFETCHED=1", "scale_add");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_REUSED_IN_MEMORY);   /* built ahead */
    check_scale_add(ctx, k, 1000);
    clrt_close(ctx);
}
END_TEST

static void build_bad_kernel(void)
{
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_kernel_get(ctx, "bad.cl", "-DTS=16", "broken");
}

START_TEST(test_build_failure)
{
    if (cannot_fork()) return;
    char kdir[64];
    work_dir_make(kdir, sizeof kdir, "clrt");
    write_text(kdir, "bad.cl",
               "__kernel void fine(__global float *y) { y[0] = 1.0f; }\n"
               "__kernel void broken(__global float *y)\n"
               "{\n"
               "    y[0] = undeclared_thing_42;\n"
               "}\n");
    setenv("CLTRAIN_KERNEL_DIR", kdir, 1);
    char err[8192];
    int status = run_captured(build_bad_kernel, err, sizeof err);
    ck_assert_int_eq(status, 1);
    ck_assert_msg(strstr(err, "CL_BUILD_PROGRAM_FAILURE") != NULL, "stderr: %.1500s", err);
    ck_assert_msg(strstr(err, "undeclared_thing_42") != NULL, "no build log in: %.1500s", err);
    ck_assert_msg(strstr(err, "bad.cl") != NULL, "stderr: %.1500s", err);
    ck_assert_msg(strstr(err, "-DTS=16") != NULL, "stderr: %.1500s", err);
    ck_assert_msg(strstr(err, ":4:") != NULL, "the log names not line 4: %.1500s", err);
    /* The other kernel of the file builds alone: the broken one is left out of its program. */
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_kernel_get(ctx, "bad.cl", "-DTS=16", "fine");
    ck_assert_int_eq(clrt_last_build_source(ctx), CLRT_BUILT_FROM_SOURCE);
    clrt_close(ctx);
    unsetenv("CLTRAIN_KERNEL_DIR");
    work_dir_remove(kdir);
}
END_TEST

static void launch_too_wide(void)
{
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    clrt_buf *b = clrt_alloc(ctx, 16, "y");
    size_t local = clrt_kernel_max_wg(ctx, k) * 2, global = local;
    clrt_arg args[] = {clrt_arg_buf(b), clrt_arg_buf(b), clrt_arg_float(1), clrt_arg_float(1),
                       clrt_arg_int(4)};
    clrt_launch(ctx, k, 1, &global, &local, 5, args);
}

static void launch_wrong_args(void)
{
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    clrt_buf *b = clrt_alloc(ctx, 16, "y");
    size_t global = 4;
    clrt_arg args[] = {clrt_arg_buf(b), clrt_arg_buf(b), clrt_arg_float(1)};
    clrt_launch(ctx, k, 1, &global, NULL, 3, args);
}

static void alloc_too_big(void)
{
    clrt_ctx *ctx = open_pocl(false, true);
    clrt_alloc(ctx, (size_t)clrt_device(ctx)->max_alloc + 4096, "activations");
}

START_TEST(test_launch_errors)
{
    if (cannot_fork()) return;
    char err[4096];
    ck_assert_int_eq(run_captured(launch_too_wide, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "scale_add") && strstr(err, "work-group size"), "%.1500s", err);
    ck_assert_int_eq(run_captured(launch_wrong_args, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "scale_add") && strstr(err, "takes 5 arguments"), "%.1500s", err);
    ck_assert_int_eq(run_captured(alloc_too_big, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "'activations'") && strstr(err, "--batch") &&
                  strstr(err, "CL_DEVICE_MAX_MEM_ALLOC_SIZE"), "%.1500s", err);
}
END_TEST

START_TEST(test_profile)
{
    clrt_ctx *ctx = open_pocl(true, true);
    clrt_kernel *k = clrt_kernel_get(ctx, "selftest.cl", "", "scale_add");
    enum { N = 4096 };
    float *x = xcalloc(N, sizeof *x, "x");
    clrt_buf *bx = clrt_alloc(ctx, N * sizeof *x, "x"), *by = clrt_alloc(ctx, N * sizeof *x, "y");
    clrt_write(ctx, bx, 0, N * sizeof *x, x);
    size_t global = N, local = 64;
    clrt_arg args[] = {clrt_arg_buf(by), clrt_arg_buf(bx), clrt_arg_float(1), clrt_arg_float(1),
                       clrt_arg_int(N)};
    for (int i = 0; i < 1100; i++) clrt_launch(ctx, k, 1, &global, &local, 5, args); /* > 1024 */
    clrt_read(ctx, by, 0, N * sizeof *x, x);
    clrt_finish(ctx);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    clrt_print_profile(ctx, f);
    fclose(f);
    ck_assert_msg(strstr(text, "scale_add") && strstr(text, " 1100 "), "%s", text);
    ck_assert_msg(strstr(text, "transfers: 2,"), "%s", text);
    free(text);
    free(x);
    clrt_free(bx);
    clrt_free(by);
    clrt_close(ctx);
}
END_TEST

/* C = alpha op(A) op(B) + beta C against plain C, with offsets and every transposition.
 * Tolerance: a sum of k products in float errs by at most about k u sum|a b| (u = 2^-24);
 * for k = 37 that is 2.2e-6 of sum|a b| + |beta c|, and we allow 1e-5. */
START_TEST(test_clblast_sgemm)
{
    clrt_ctx *ctx = open_pocl(true, true);
    enum { M = 13, N = 9, K = 37, OFF = 5 };
    const size_t m = M, n = N, k = K, off = OFF;
    float a[OFF + K * M], b[OFF + K * N], c[OFF + M * N], c0[OFF + M * N], out[OFF + M * N];
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) a[i] = frand();
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) b[i] = frand();
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) c0[i] = frand();
    clrt_buf *ba = clrt_alloc(ctx, sizeof a, "A"), *bb = clrt_alloc(ctx, sizeof b, "B");
    clrt_buf *bc = clrt_alloc(ctx, sizeof c, "C");
    clrt_write(ctx, ba, 0, sizeof a, a);
    clrt_write(ctx, bb, 0, sizeof b, b);
    const float alpha = 0.75f, beta = -0.5f;
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        size_t lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
        memcpy(c, c0, sizeof c);
        clrt_write(ctx, bc, 0, sizeof c, c);
        bool ok = clrt_clblast_sgemm(ctx, ta, tb, m, n, k, alpha, ba, off, lda, bb, off, ldb, beta,
                                     bc, off, ldc);
        ck_assert(ok);
        clrt_read(ctx, bc, 0, sizeof out, out);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0, mag = 0;
                for (size_t p = 0; p < k; p++) {
                    double av = a[off + (ta ? p * lda + i : i * lda + p)];
                    double bv = b[off + (tb ? j * ldb + p : p * ldb + j)];
                    s += av * bv;
                    mag += fabs(av * bv);
                }
                double want = alpha * s + beta * c0[off + i * ldc + j];
                double scale = fabs(alpha) * mag + fabs(beta * c0[off + i * ldc + j]);
                ck_assert_msg(fabs(out[off + i * ldc + j] - want) <= 1e-5 * scale + 1e-30,
                              "t=%d (%zu,%zu): %g vs %g", t, i, j, out[off + i * ldc + j], want);
            }
        for (size_t i = 0; i < off; i++) ck_assert_float_eq(out[i], c0[i]);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    clrt_print_profile(ctx, f);
    fclose(f);
    ck_assert_msg(strstr(text, "clblast_sgemm"), "%s", text);
    free(text);
    clrt_free(ba);
    clrt_free(bb);
    clrt_free(bc);
    clrt_close(ctx);
}
END_TEST

Suite *cl_runtime_suite(void)
{
    Suite *s = suite_create("cl_runtime");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_error_names);
    tcase_add_test(tc, test_enumerate);
    tcase_add_test(tc, test_scale_add);
    tcase_add_test(tc, test_buffers);
    tcase_add_test(tc, test_binary_cache);
    tcase_add_test(tc, test_binary_cache_left_to_pocl);
    tcase_add_test(tc, test_include);
    tcase_add_test(tc, test_build_failure);
    tcase_add_test(tc, test_one_kernel_per_program);
    tcase_add_test(tc, test_prefetch);
    tcase_add_test(tc, test_launch_errors);
    tcase_add_test(tc, test_profile);
    tcase_add_test(tc, test_clblast_sgemm);
    suite_add_tcase(s, tc);
    return s;
}
