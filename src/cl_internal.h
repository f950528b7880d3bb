/* cl_internal.h: what the OpenCL runtime's files share and nothing else includes. The runtime is
 * split by job: cl_errors.c (error names, failure messages), cl_device.c (enumeration, the
 * device table), cl_program.c (kernel sources, #include, binary cache, builds, kernels),
 * cl_runtime.c (context, buffers, transfers, launch, profiling), cl_blast.c (CLBlast). These
 * are the only files that call OpenCL; the rest of the tree uses include/cl_runtime.h. */
#ifndef CLTRAIN_CL_INTERNAL_H
#define CLTRAIN_CL_INTERNAL_H

#define CL_USE_DEPRECATED_OPENCL_1_2_APIS /* clCreateCommandQueue for OpenCL 1.x platforms */
#include "cl_runtime.h"

#include <CL/opencl.h>

#include "util.h"

typedef struct {
    char *file, *options;
    char *kernels;              /* the kernels it holds, space-separated; NULL: all of file's */
    cl_program program;
    clrt_build_source source;   /* compiled, or loaded from the binary cache */
    double seconds;             /* wall time of that build or load */
} program_entry;

struct clrt_kernel {
    cl_kernel kernel;
    char *name;
    int program;            /* index into ctx->programs */
    cl_uint num_args;
    size_t max_wg;          /* min(CL_KERNEL_WORK_GROUP_SIZE, device limit) */
    uint64_t static_local;  /* CL_KERNEL_LOCAL_MEM_SIZE before any __local argument */
    int stat;               /* index into ctx->stats */
};

struct clrt_buf {
    clrt_ctx *ctx;
    cl_mem mem;
    size_t bytes;           /* as requested */
    size_t alloc;           /* as allocated: rounded up to 4 bytes, at least 4 */
    char name[64];
};

typedef struct {
    char name[64];
    uint64_t calls, ns;
} kernel_stat;

enum { PENDING_MAX = 1024, STAT_TRANSFER = -1 };

struct clrt_ctx {
    clrt_device_desc desc;
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    clrt_options opt;
    cl_uint max_dims;
    size_t max_item[3];
    uint64_t allocated;     /* bytes in live buffers */

    program_entry *programs;
    int nprograms;
    clrt_kernel **kernels;
    int nkernels;
    clrt_build_source last_source;
    struct clrt_prefetch_job *prefetch;   /* clrt_prefetch's thread until joined; NULL: none */
    char *cache_dir;        /* NULL: no binary cache */
    bool driver_cache;      /* the driver keeps compiled kernels itself (PoCL): no binary cache */
    bool cache_warned;
    bool clblast_unusable;

    kernel_stat *stats;
    int nstats;
    cl_event pending[PENDING_MAX];
    int pending_stat[PENDING_MAX];
    int npending;
    uint64_t xfer_count, xfer_bytes, xfer_ns;
    uint64_t launches;      /* kernels enqueued by clrt_launch */
};

/* ---- cl_errors.c ---- */
/* "512 B", "1.5 KiB", "24 MiB", "1.2 GiB" into buf. */
const char *clrt_human_bytes(uint64_t n, char *buf, size_t len);
/* Whether err means the device (or the host under it) ran out of memory. */
bool clrt_is_memory_error(cl_int err);
/* The hint added to a failure when out_of_memory ("" otherwise). */
const char *clrt_memory_hint(bool out_of_memory);
/* Dies naming the failing call, its error, what it worked on (NULL: nothing) and the device. */
CLT_NORETURN void clrt_fail(const clrt_ctx *ctx, cl_int err, const char *call, const char *what);
/* clrt_fail unless err is CL_SUCCESS. */
void clrt_check(const clrt_ctx *ctx, cl_int err, const char *call);

/* ---- cl_device.c ---- */
/* Device `index` (checked by clrt_require_device): its description and handles. */
void clrt_device_lookup(int index, clrt_device_desc *desc, cl_platform_id *platform,
                        cl_device_id *device);
/* clGetDeviceInfo of a fixed-size property; dies naming what_name on failure. */
void clrt_device_info(cl_device_id d, cl_device_info what, size_t size, void *out,
                      const char *what_name);
/* A string property of a platform, trimmed, into out[size]. */
void clrt_platform_string(cl_platform_id p, cl_platform_info what, char *out, size_t size);

/* ---- cl_program.c ---- */
/* $XDG_CACHE_HOME/cltrain or ~/.cache/cltrain, created; NULL when neither can be used. */
char *clrt_cache_dir_open(void);
/* The --profile lines of the context's programs: each one's file, how it came (compiled or
 * from the binary cache), its time and its options. */
void clrt_print_programs(clrt_ctx *ctx, FILE *f);
/* Releases the context's kernels and programs. */
void clrt_programs_release(clrt_ctx *ctx);

/* ---- cl_runtime.c (profiling) ---- */
/* The statistics slot named `name`, created on first use. */
int clrt_stat_index(clrt_ctx *ctx, const char *name);
/* Keeps a profiled command's event for later accounting under stats[stat] (STAT_TRANSFER:
 * transfers). */
void clrt_track(clrt_ctx *ctx, cl_event ev, int stat);

#endif
