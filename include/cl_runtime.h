/* cl_runtime.h: the only module that calls OpenCL (src/cl_*.c: cl_internal.h says which file
 * does what). Devices across all platforms, one context
 * and in-order queue, program builds (embedded kernels or CLTRAIN_KERNEL_DIR, -D options,
 * build log on failure, binary cache), buffers, one checked launch helper, profiling, and the
 * CLBlast SGEMM call. Every failing call is reported by name: "clBuildProgram:
 * CL_BUILD_PROGRAM_FAILURE". Runtime failures print one line and exit 1. */
#ifndef CLTRAIN_CL_RUNTIME_H
#define CLTRAIN_CL_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), covering every code in the OpenCL 3.0
 * headers; "CL_UNKNOWN_ERROR(<n>)" style text for others (in a static per-thread buffer). */
const char *clrt_error_name(int code);

/* One device, with its global index across all platforms. */
typedef struct {
    int index;
    char platform[128];
    char name[128];
    char type[16];          /* "CPU", "GPU", "accelerator", "other" */
    unsigned compute_units;
    unsigned clock_mhz;
    uint64_t global_mem;
    uint64_t max_alloc;
    uint64_t local_mem;
    size_t max_work_group;
    char opencl_c[64];      /* CL_DEVICE_OPENCL_C_VERSION */
    char driver[64];        /* CL_DRIVER_VERSION */
} clrt_device_desc;

/* Every device of every platform, enumerated once per process (later calls answer from the
 * first). Returns the count (0 when there is no platform or device) and a malloc'd copy in
 * *out (NULL when 0). */
int clrt_list_devices(clrt_device_desc **out);
/* Returns when device `index` exists; else dies with the one message for "no OpenCL device at
 * all" (exit 1) or for "no device <index>" (exit 2). clrt_open calls it too. */
void clrt_require_device(int index);
/* Prints the table of `cltrain --list-devices`. */
void clrt_print_devices(FILE *f, const clrt_device_desc *d, int n);

typedef struct clrt_ctx clrt_ctx;
typedef struct clrt_buf clrt_buf;
typedef struct clrt_kernel clrt_kernel;

typedef struct {
    bool profiling;      /* CL_QUEUE_PROFILING_ENABLE and per-kernel statistics */
    bool no_cache;       /* do not read or write the program-binary cache (on PoCL with its
                          * own kernel cache on, cltrain's is not used anyway: cl_runtime.c) */
} clrt_options;

/* Opens device `index` (global index; clrt_require_device's message when it does not exist). */
clrt_ctx *clrt_open(int index, const clrt_options *opt);
void clrt_close(clrt_ctx *ctx);
const clrt_device_desc *clrt_device(const clrt_ctx *ctx);

/* Builds kernel `name` of kernels/<file> (embedded copy, or $CLTRAIN_KERNEL_DIR/<file>) with
 * `options` (e.g. "-DTS=16") in a program of its own: the file's other kernels are left out
 * (src/kernel_select.c; a file it cannot read that way is built whole). Programs are cached
 * per context by (file, options, kernels): a second call returns the same kernel without
 * rebuilding. */
clrt_kernel *clrt_kernel_get(clrt_ctx *ctx, const char *file, const char *options,
                             const char *name);
/* The same, building `name` together with the kernels `together` names (space-separated,
 * NULL: none) when its program is made: kernels launched together share one program, as each
 * program costs a fixed build time (about 0.15 s in PoCL's front end). */
clrt_kernel *clrt_kernel_get_with(clrt_ctx *ctx, const char *file, const char *options,
                                  const char *name, const char *together);

/* Builds (or loads from the binary cache) these programs in a thread while the caller goes on
 * (reads the data, fills buffers): the first clrt_kernel_get waits for it and finds them
 * there. Each spec names the kernels its program holds, as clrt_kernel_get_with would build
 * them. Best effort: a failure is left for clrt_kernel_get to repeat and report. Nothing is
 * built ahead for sources from $CLTRAIN_KERNEL_DIR. */
typedef struct {
    const char *file, *options;
    const char *kernels;    /* space-separated */
} clrt_program_spec;
void clrt_prefetch(clrt_ctx *ctx, int n, const clrt_program_spec *specs);

/* Where the program of the last clrt_kernel_get came from: compiled from source, loaded from
 * the on-disk binary cache ($XDG_CACHE_HOME/cltrain or ~/.cache/cltrain; off with no_cache),
 * or reused from this context's programs. For tests and start-up diagnostics. */
typedef enum {
    CLRT_BUILT_FROM_SOURCE = 0,
    CLRT_LOADED_FROM_CACHE = 1,
    CLRT_REUSED_IN_MEMORY = 2
} clrt_build_source;
clrt_build_source clrt_last_build_source(const clrt_ctx *ctx);
/* The kernels the program of k holds, ';'-separated as CL_PROGRAM_KERNEL_NAMES gives them, into
 * names[len] (for tests: a program holds only what is launched). */
void clrt_program_kernel_names(clrt_ctx *ctx, const clrt_kernel *k, char *names, size_t len);

/* Device buffers. `name` appears in error messages ("out of device memory allocating
 * 'activations' (1.2 GiB)"). */
clrt_buf *clrt_alloc(clrt_ctx *ctx, size_t bytes, const char *name);
void clrt_free(clrt_buf *b);
size_t clrt_buf_size(const clrt_buf *b);
/* Blocking transfers, byte offsets. */
void clrt_write(clrt_ctx *ctx, clrt_buf *b, size_t offset, size_t bytes, const void *src);
void clrt_read(clrt_ctx *ctx, const clrt_buf *b, size_t offset, size_t bytes, void *dst);
/* Blocking maps of bytes at offset into host memory, released by clrt_unmap (and used no
 * later): with `write`, for writing every byte (the old contents are not read back), else for
 * reading. On a CPU device the pointer is the buffer itself: no copy. */
void *clrt_map(clrt_ctx *ctx, const clrt_buf *b, size_t offset, size_t bytes, bool write);
void clrt_unmap(clrt_ctx *ctx, const clrt_buf *b, void *ptr);
/* Fills a buffer with a 4-byte pattern (e.g. a NaN for poisoning). */
void clrt_fill32(clrt_ctx *ctx, clrt_buf *b, size_t offset, size_t bytes, uint32_t pattern);
void clrt_copy(clrt_ctx *ctx, const clrt_buf *src, size_t src_off, clrt_buf *dst, size_t dst_off,
               size_t bytes);

/* Kernel arguments, built with the helpers below. */
typedef struct {
    enum { CLRT_ARG_BUF, CLRT_ARG_INT, CLRT_ARG_UINT, CLRT_ARG_FLOAT, CLRT_ARG_ULONG,
           CLRT_ARG_LOCAL } kind;
    union { const clrt_buf *buf; int32_t i; uint32_t u; float f; uint64_t ul; size_t local; } v;
} clrt_arg;
static inline clrt_arg clrt_arg_buf(const clrt_buf *b) { clrt_arg a; a.kind = CLRT_ARG_BUF; a.v.buf = b; return a; }
static inline clrt_arg clrt_arg_int(int32_t x) { clrt_arg a; a.kind = CLRT_ARG_INT; a.v.i = x; return a; }
static inline clrt_arg clrt_arg_uint(uint32_t x) { clrt_arg a; a.kind = CLRT_ARG_UINT; a.v.u = x; return a; }
static inline clrt_arg clrt_arg_float(float x) { clrt_arg a; a.kind = CLRT_ARG_FLOAT; a.v.f = x; return a; }
static inline clrt_arg clrt_arg_ulong(uint64_t x) { clrt_arg a; a.kind = CLRT_ARG_ULONG; a.v.ul = x; return a; }
static inline clrt_arg clrt_arg_local(size_t bytes) { clrt_arg a; a.kind = CLRT_ARG_LOCAL; a.v.local = bytes; return a; }

/* Sets the arguments and enqueues an NDRange of `dims` dimensions. `global` is rounded up to a
 * multiple of `local` (kernels guard their bounds); `local` may be NULL to let the driver pick.
 * Checks the work-group size against the kernel's and the device's limits first. */
void clrt_launch(clrt_ctx *ctx, clrt_kernel *k, int dims, const size_t *global,
                 const size_t *local, int nargs, const clrt_arg *args);
/* Kernels enqueued through clrt_launch since the context was opened. */
uint64_t clrt_launch_count(const clrt_ctx *ctx);
/* Waits for the queue. */
void clrt_finish(clrt_ctx *ctx);
/* Largest work-group size this kernel can run with on this device. */
size_t clrt_kernel_max_wg(clrt_ctx *ctx, clrt_kernel *k);

/* C = alpha*op(A)*op(B) + beta*C with CLBlast, row-major, element offsets. Returns false
 * when CLBlast is not usable on this device (the caller falls back to the builtin kernels). */
bool clrt_clblast_sgemm(clrt_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                        float alpha, const clrt_buf *a, size_t a_off, size_t lda,
                        const clrt_buf *b, size_t b_off, size_t ldb, float beta,
                        clrt_buf *c, size_t c_off, size_t ldc);

/* Profiling (when opened with profiling): per-kernel calls and device time from events,
 * transfer time, printed as a table by clrt_print_profile. */
void clrt_print_profile(clrt_ctx *ctx, FILE *f);

#endif
