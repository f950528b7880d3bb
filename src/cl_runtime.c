/* cl_runtime.c: the only file that calls OpenCL (see cl_runtime.h).
 *
 * Layout, top to bottom: error names and the checked-call helpers; device enumeration and the
 * device table; contexts; kernel sources (embedded or $CLTRAIN_KERNEL_DIR, #include "x.cl"
 * substitution); the on-disk program-binary cache; program and kernel builds; buffers and
 * transfers; the launch helper; profiling; CLBlast. */
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS /* clCreateCommandQueue for OpenCL 1.x platforms */
#include "cl_runtime.h"

#include <CL/opencl.h>
#include <clblast_c.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "kernels_embedded.h"
#include "util.h"

/* ---- error names ---------------------------------------------------------------------- */

/* Every error code of the OpenCL 3.0 headers (CL/cl.h and the extension headers). Where two
 * extensions share a number, the KHR name is listed. */
static const struct { int code; const char *name; } error_names[] = {
    {0, "CL_SUCCESS"},
    {-1, "CL_DEVICE_NOT_FOUND"},
    {-2, "CL_DEVICE_NOT_AVAILABLE"},
    {-3, "CL_COMPILER_NOT_AVAILABLE"},
    {-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
    {-5, "CL_OUT_OF_RESOURCES"},
    {-6, "CL_OUT_OF_HOST_MEMORY"},
    {-7, "CL_PROFILING_INFO_NOT_AVAILABLE"},
    {-8, "CL_MEM_COPY_OVERLAP"},
    {-9, "CL_IMAGE_FORMAT_MISMATCH"},
    {-10, "CL_IMAGE_FORMAT_NOT_SUPPORTED"},
    {-11, "CL_BUILD_PROGRAM_FAILURE"},
    {-12, "CL_MAP_FAILURE"},
    {-13, "CL_MISALIGNED_SUB_BUFFER_OFFSET"},
    {-14, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
    {-15, "CL_COMPILE_PROGRAM_FAILURE"},
    {-16, "CL_LINKER_NOT_AVAILABLE"},
    {-17, "CL_LINK_PROGRAM_FAILURE"},
    {-18, "CL_DEVICE_PARTITION_FAILED"},
    {-19, "CL_KERNEL_ARG_INFO_NOT_AVAILABLE"},
    {-30, "CL_INVALID_VALUE"},
    {-31, "CL_INVALID_DEVICE_TYPE"},
    {-32, "CL_INVALID_PLATFORM"},
    {-33, "CL_INVALID_DEVICE"},
    {-34, "CL_INVALID_CONTEXT"},
    {-35, "CL_INVALID_QUEUE_PROPERTIES"},
    {-36, "CL_INVALID_COMMAND_QUEUE"},
    {-37, "CL_INVALID_HOST_PTR"},
    {-38, "CL_INVALID_MEM_OBJECT"},
    {-39, "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR"},
    {-40, "CL_INVALID_IMAGE_SIZE"},
    {-41, "CL_INVALID_SAMPLER"},
    {-42, "CL_INVALID_BINARY"},
    {-43, "CL_INVALID_BUILD_OPTIONS"},
    {-44, "CL_INVALID_PROGRAM"},
    {-45, "CL_INVALID_PROGRAM_EXECUTABLE"},
    {-46, "CL_INVALID_KERNEL_NAME"},
    {-47, "CL_INVALID_KERNEL_DEFINITION"},
    {-48, "CL_INVALID_KERNEL"},
    {-49, "CL_INVALID_ARG_INDEX"},
    {-50, "CL_INVALID_ARG_VALUE"},
    {-51, "CL_INVALID_ARG_SIZE"},
    {-52, "CL_INVALID_KERNEL_ARGS"},
    {-53, "CL_INVALID_WORK_DIMENSION"},
    {-54, "CL_INVALID_WORK_GROUP_SIZE"},
    {-55, "CL_INVALID_WORK_ITEM_SIZE"},
    {-56, "CL_INVALID_GLOBAL_OFFSET"},
    {-57, "CL_INVALID_EVENT_WAIT_LIST"},
    {-58, "CL_INVALID_EVENT"},
    {-59, "CL_INVALID_OPERATION"},
    {-60, "CL_INVALID_GL_OBJECT"},
    {-61, "CL_INVALID_BUFFER_SIZE"},
    {-62, "CL_INVALID_MIP_LEVEL"},
    {-63, "CL_INVALID_GLOBAL_WORK_SIZE"},
    {-64, "CL_INVALID_PROPERTY"},
    {-65, "CL_INVALID_IMAGE_DESCRIPTOR"},
    {-66, "CL_INVALID_COMPILER_OPTIONS"},
    {-67, "CL_INVALID_LINKER_OPTIONS"},
    {-68, "CL_INVALID_DEVICE_PARTITION_COUNT"},
    {-69, "CL_INVALID_PIPE_SIZE"},
    {-70, "CL_INVALID_DEVICE_QUEUE"},
    {-71, "CL_INVALID_SPEC_ID"},
    {-72, "CL_MAX_SIZE_RESTRICTION_EXCEEDED"},
    {-1000, "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR"},
    {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
    {-1002, "CL_INVALID_D3D10_DEVICE_KHR"},
    {-1003, "CL_INVALID_D3D10_RESOURCE_KHR"},
    {-1004, "CL_D3D10_RESOURCE_ALREADY_ACQUIRED_KHR"},
    {-1005, "CL_D3D10_RESOURCE_NOT_ACQUIRED_KHR"},
    {-1006, "CL_INVALID_D3D11_DEVICE_KHR"},
    {-1007, "CL_INVALID_D3D11_RESOURCE_KHR"},
    {-1008, "CL_D3D11_RESOURCE_ALREADY_ACQUIRED_KHR"},
    {-1009, "CL_D3D11_RESOURCE_NOT_ACQUIRED_KHR"},
    {-1010, "CL_INVALID_DX9_MEDIA_ADAPTER_KHR"},
    {-1011, "CL_INVALID_DX9_MEDIA_SURFACE_KHR"},
    {-1012, "CL_DX9_MEDIA_SURFACE_ALREADY_ACQUIRED_KHR"},
    {-1013, "CL_DX9_MEDIA_SURFACE_NOT_ACQUIRED_KHR"},
    {-1057, "CL_DEVICE_PARTITION_FAILED_EXT"},
    {-1058, "CL_INVALID_PARTITION_COUNT_EXT"},
    {-1059, "CL_INVALID_PARTITION_NAME_EXT"},
    {-1092, "CL_EGL_RESOURCE_NOT_ACQUIRED_KHR"},
    {-1093, "CL_INVALID_EGL_OBJECT_KHR"},
    {-1094, "CL_INVALID_ACCELERATOR_INTEL"},
    {-1095, "CL_INVALID_ACCELERATOR_TYPE_INTEL"},
    {-1096, "CL_INVALID_ACCELERATOR_DESCRIPTOR_INTEL"},
    {-1097, "CL_ACCELERATOR_TYPE_NOT_SUPPORTED_INTEL"},
    {-1098, "CL_INVALID_VA_API_MEDIA_ADAPTER_INTEL"},
    {-1099, "CL_INVALID_VA_API_MEDIA_SURFACE_INTEL"},
    {-1100, "CL_VA_API_MEDIA_SURFACE_ALREADY_ACQUIRED_INTEL"},
    {-1101, "CL_VA_API_MEDIA_SURFACE_NOT_ACQUIRED_INTEL"},
    {-1108, "CL_COMMAND_TERMINATED_ITSELF_WITH_FAILURE_ARM"},
    {-1121, "CL_CONTEXT_TERMINATED_KHR"},
    {-1138, "CL_INVALID_COMMAND_BUFFER_KHR"},
    {-1139, "CL_INVALID_SYNC_POINT_WAIT_LIST_KHR"},
    {-1140, "CL_INCOMPATIBLE_COMMAND_QUEUE_KHR"},
    {-1141, "CL_INVALID_MUTABLE_COMMAND_KHR"},
    {-1142, "CL_INVALID_SEMAPHORE_KHR"},
};

const char *clrt_error_name(int code)
{
    static _Thread_local char unknown[40];
    for (size_t i = 0; i < sizeof error_names / sizeof error_names[0]; i++)
        if (error_names[i].code == code) return error_names[i].name;
    snprintf(unknown, sizeof unknown, "CL_UNKNOWN_ERROR(%d)", code);
    return unknown;
}

/* "512 B", "1.5 KiB", "24 MiB", "1.2 GiB" into buf. */
static const char *human_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 5) { v /= 1024.0; u++; }
    if (u == 0) snprintf(buf, len, "%u B", (unsigned)n);
    else if (v < 10.0) snprintf(buf, len, "%.1f %s", v, units[u]);
    else snprintf(buf, len, "%.0f %s", v, units[u]);
    return buf;
}

static bool is_memory_error(cl_int err)
{
    return err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
           err == CL_OUT_OF_HOST_MEMORY;
}

static const char memory_hint[] = "; the device is out of memory: try a smaller --batch or --hidden";

/* ---- devices ---------------------------------------------------------------------------- */

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
} device_handle;

static void device_info(cl_device_id d, cl_device_info what, size_t size, void *out,
                        const char *what_name)
{
    cl_int err = clGetDeviceInfo(d, what, size, out, NULL);
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetDeviceInfo(%s): %s", what_name, clrt_error_name(err));
}

/* Copies a string property (trimmed of the padding some drivers add) into out[size]. */
static void trimmed_copy(char *out, size_t size, const char *s)
{
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n')) n--;
    if (n >= size) n = size - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

static void device_string(cl_device_id d, cl_device_info what, char *out, size_t size,
                          const char *what_name)
{
    size_t need = 0;
    cl_int err = clGetDeviceInfo(d, what, 0, NULL, &need);
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetDeviceInfo(%s): %s", what_name, clrt_error_name(err));
    char *tmp = xmalloc(need + 1, "a device property");
    device_info(d, what, need, tmp, what_name);
    tmp[need] = 0;
    trimmed_copy(out, size, tmp);
    free(tmp);
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *out, size_t size)
{
    size_t need = 0;
    cl_int err = clGetPlatformInfo(p, what, 0, NULL, &need);
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetPlatformInfo: %s", clrt_error_name(err));
    char *tmp = xmalloc(need + 1, "a platform property");
    err = clGetPlatformInfo(p, what, need, tmp, NULL);
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetPlatformInfo: %s", clrt_error_name(err));
    tmp[need] = 0;
    trimmed_copy(out, size, tmp);
    free(tmp);
}

static void describe_device(cl_platform_id p, cl_device_id d, int index, clrt_device_desc *o)
{
    memset(o, 0, sizeof *o);
    o->index = index;
    platform_string(p, CL_PLATFORM_NAME, o->platform, sizeof o->platform);
    device_string(d, CL_DEVICE_NAME, o->name, sizeof o->name, "CL_DEVICE_NAME");
    cl_device_type type = 0;
    device_info(d, CL_DEVICE_TYPE, sizeof type, &type, "CL_DEVICE_TYPE");
    const char *t = (type & CL_DEVICE_TYPE_GPU) ? "GPU"
                    : (type & CL_DEVICE_TYPE_CPU) ? "CPU"
                    : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator" : "other";
    snprintf(o->type, sizeof o->type, "%s", t);
    cl_uint u = 0;
    device_info(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u, &u, "CL_DEVICE_MAX_COMPUTE_UNITS");
    o->compute_units = u;
    device_info(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof u, &u, "CL_DEVICE_MAX_CLOCK_FREQUENCY");
    o->clock_mhz = u;
    cl_ulong ul = 0;
    device_info(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, "CL_DEVICE_GLOBAL_MEM_SIZE");
    o->global_mem = ul;
    device_info(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, "CL_DEVICE_MAX_MEM_ALLOC_SIZE");
    o->max_alloc = ul;
    device_info(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, "CL_DEVICE_LOCAL_MEM_SIZE");
    o->local_mem = ul;
    size_t wg = 0;
    device_info(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, "CL_DEVICE_MAX_WORK_GROUP_SIZE");
    o->max_work_group = wg;
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, o->opencl_c, sizeof o->opencl_c,
                  "CL_DEVICE_OPENCL_C_VERSION");
    device_string(d, CL_DRIVER_VERSION, o->driver, sizeof o->driver, "CL_DRIVER_VERSION");
}

/* All devices of all platforms, in platform order. Returns the count; *desc and *handles are
 * malloc'd (NULL when there are none). */
static int enumerate(clrt_device_desc **desc, device_handle **handles)
{
    *desc = NULL;
    if (handles) *handles = NULL;
    cl_uint nplat = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &nplat);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && nplat == 0)) return 0;
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetPlatformIDs: %s", clrt_error_name(err));
    cl_platform_id *plats = xcalloc(nplat, sizeof *plats, "the platform list");
    err = clGetPlatformIDs(nplat, plats, NULL);
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetPlatformIDs: %s", clrt_error_name(err));

    int n = 0, cap = 0;
    for (cl_uint p = 0; p < nplat; p++) {
        cl_uint ndev = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev);
        if (err == CL_DEVICE_NOT_FOUND || ndev == 0) continue;
        if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetDeviceIDs: %s", clrt_error_name(err));
        cl_device_id *devs = xcalloc(ndev, sizeof *devs, "the device list");
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, ndev, devs, NULL);
        if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetDeviceIDs: %s", clrt_error_name(err));
        for (cl_uint i = 0; i < ndev; i++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 4;
                *desc = xrealloc(*desc, (size_t)cap * sizeof **desc, "the device list");
                if (handles) *handles = xrealloc(*handles, (size_t)cap * sizeof **handles, "the device list");
            }
            describe_device(plats[p], devs[i], n, &(*desc)[n]);
            if (handles) (*handles)[n] = (device_handle){plats[p], devs[i]};
            n++;
        }
        free(devs);
    }
    free(plats);
    return n;
}

int clrt_list_devices(clrt_device_desc **out)
{
    return enumerate(out, NULL);
}

void clrt_print_devices(FILE *f, const clrt_device_desc *d, int n)
{
    enum { NCOL = 12 };
    static const char *const head[NCOL] = {"#", "platform", "device", "type", "CUs", "MHz",
                                           "global mem", "max alloc", "local mem", "max WG",
                                           "OpenCL C", "driver"};
    static const bool right[NCOL] = {true, false, false, false, true, true,
                                     true, true, true, true, false, false};
    char (*cell)[NCOL][128] = xcalloc((size_t)n + 1, sizeof *cell, "the device table");
    for (int c = 0; c < NCOL; c++) snprintf(cell[0][c], 128, "%s", head[c]);
    for (int i = 0; i < n; i++) {
        char (*r)[128] = cell[i + 1];
        snprintf(r[0], 128, "%d", d[i].index);
        snprintf(r[1], 128, "%s", d[i].platform);
        snprintf(r[2], 128, "%s", d[i].name);
        snprintf(r[3], 128, "%s", d[i].type);
        snprintf(r[4], 128, "%u", d[i].compute_units);
        snprintf(r[5], 128, "%u", d[i].clock_mhz);
        human_bytes(d[i].global_mem, r[6], 128);
        human_bytes(d[i].max_alloc, r[7], 128);
        human_bytes(d[i].local_mem, r[8], 128);
        snprintf(r[9], 128, "%zu", d[i].max_work_group);
        snprintf(r[10], 128, "%s", d[i].opencl_c);
        snprintf(r[11], 128, "%s", d[i].driver);
    }
    int width[NCOL] = {0};
    for (int i = 0; i <= n; i++)
        for (int c = 0; c < NCOL; c++) {
            int w = (int)strlen(cell[i][c]);
            if (w > width[c]) width[c] = w;
        }
    for (int i = 0; i <= n; i++) {
        for (int c = 0; c < NCOL; c++) {
            const char *sep = c + 1 < NCOL ? "  " : "\n";
            if (c + 1 == NCOL) fprintf(f, "%s%s", cell[i][c], sep);
            else if (right[c]) fprintf(f, "%*s%s", width[c], cell[i][c], sep);
            else fprintf(f, "%-*s%s", width[c], cell[i][c], sep);
        }
    }
    free(cell);
}

/* ---- contexts ----------------------------------------------------------------------------- */

typedef struct {
    char *file, *options;
    cl_program program;
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
    char *cache_dir;        /* NULL: no binary cache */
    bool cache_warned;
    bool clblast_unusable;

    kernel_stat *stats;
    int nstats;
    cl_event pending[PENDING_MAX];
    int pending_stat[PENDING_MAX];
    int npending;
    uint64_t xfer_count, xfer_bytes, xfer_ns;
};

/* Dies naming the failing call, its error, what it worked on and the device. */
CLT_NORETURN static void fail(const clrt_ctx *ctx, cl_int err, const char *call, const char *what)
{
    die(EXIT_RUNTIME, "%s: %s (%s%sdevice %s)%s", call, clrt_error_name(err), what ? what : "",
        what ? ", " : "", ctx->desc.name, is_memory_error(err) ? memory_hint : "");
}

static void check(const clrt_ctx *ctx, cl_int err, const char *call)
{
    if (err != CL_SUCCESS) fail(ctx, err, call, NULL);
}

const clrt_device_desc *clrt_device(const clrt_ctx *ctx)
{
    return &ctx->desc;
}

clrt_build_source clrt_last_build_source(const clrt_ctx *ctx)
{
    return ctx->last_source;
}

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

/* $XDG_CACHE_HOME/cltrain or ~/.cache/cltrain, created; NULL when neither can be used. */
static char *open_cache_dir(void)
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

clrt_ctx *clrt_open(int index, const clrt_options *opt)
{
    clrt_device_desc *descs;
    device_handle *handles;
    int n = enumerate(&descs, &handles);
    if (index < 0 || index >= n)
        die(EXIT_USAGE, "no OpenCL device %d (%d found; see --list-devices)", index, n);

    clrt_ctx *ctx = xcalloc(1, sizeof *ctx, "the OpenCL context");
    ctx->desc = descs[index];
    ctx->platform = handles[index].platform;
    ctx->device = handles[index].device;
    free(descs);
    free(handles);
    if (opt) ctx->opt = *opt;

    device_info(ctx->device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof ctx->max_dims,
                &ctx->max_dims, "CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS");
    size_t items[16] = {0};
    device_info(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES,
                sizeof items[0] * (ctx->max_dims < 16 ? ctx->max_dims : 16), items,
                "CL_DEVICE_MAX_WORK_ITEM_SIZES");
    for (int d = 0; d < 3; d++) ctx->max_item[d] = (cl_uint)d < ctx->max_dims ? items[d] : 1;

    cl_int err;
    cl_context_properties cprops[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    ctx->context = clCreateContext(cprops, 1, &ctx->device, NULL, NULL, &err);
    check(ctx, err, "clCreateContext");

    char version[64];
    platform_string(ctx->platform, CL_PLATFORM_VERSION, version, sizeof version);
    cl_command_queue_properties qp = ctx->opt.profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
    if (strncmp(version, "OpenCL 1.", 9) == 0) {
        ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, qp, &err);
        check(ctx, err, "clCreateCommandQueue");
    } else {
        cl_queue_properties props[] = {CL_QUEUE_PROPERTIES, qp, 0};
        ctx->queue = clCreateCommandQueueWithProperties(ctx->context, ctx->device, props, &err);
        check(ctx, err, "clCreateCommandQueueWithProperties");
    }
    if (!ctx->opt.no_cache) ctx->cache_dir = open_cache_dir();
    return ctx;
}

static void harvest(clrt_ctx *ctx);

void clrt_close(clrt_ctx *ctx)
{
    if (!ctx) return;
    clFinish(ctx->queue);
    harvest(ctx);
    for (int i = 0; i < ctx->nkernels; i++) {
        clReleaseKernel(ctx->kernels[i]->kernel);
        free(ctx->kernels[i]->name);
        free(ctx->kernels[i]);
    }
    for (int i = 0; i < ctx->nprograms; i++) {
        clReleaseProgram(ctx->programs[i].program);
        free(ctx->programs[i].file);
        free(ctx->programs[i].options);
    }
    clReleaseCommandQueue(ctx->queue);
    clReleaseContext(ctx->context);
    free(ctx->kernels);
    free(ctx->programs);
    free(ctx->stats);
    free(ctx->cache_dir);
    free(ctx);
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

static cl_program build_from_source(clrt_ctx *ctx, const char *file, const char *source,
                                    const char *options)
{
    cl_int err;
    size_t len = strlen(source);
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &source, &len, &err);
    char what[320];
    snprintf(what, sizeof what, "building %s", file);
    if (err != CL_SUCCESS) fail(ctx, err, "clCreateProgramWithSource", what);
    err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
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

static int find_program(const clrt_ctx *ctx, const char *file, const char *options)
{
    for (int i = 0; i < ctx->nprograms; i++)
        if (strcmp(ctx->programs[i].file, file) == 0 && strcmp(ctx->programs[i].options, options) == 0)
            return i;
    return -1;
}

static int add_program(clrt_ctx *ctx, const char *file, const char *options)
{
    char *source = load_source(file, 0);
    cl_program prog = NULL;
    uint64_t key = 0;
    if (ctx->cache_dir) {
        key = cache_key(ctx, source, options);
        prog = cache_load(ctx, key, options);
    }
    if (prog) {
        ctx->last_source = CLRT_LOADED_FROM_CACHE;
    } else {
        prog = build_from_source(ctx, file, source, options);
        ctx->last_source = CLRT_BUILT_FROM_SOURCE;
        if (ctx->cache_dir) cache_store(ctx, key, prog);
    }
    free(source);
    ctx->programs = xrealloc(ctx->programs, (size_t)(ctx->nprograms + 1) * sizeof *ctx->programs,
                             "the program list");
    ctx->programs[ctx->nprograms] = (program_entry){xstrdup(file), xstrdup(options), prog};
    return ctx->nprograms++;
}

static int stat_index(clrt_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->nstats; i++)
        if (strcmp(ctx->stats[i].name, name) == 0) return i;
    ctx->stats = xrealloc(ctx->stats, (size_t)(ctx->nstats + 1) * sizeof *ctx->stats, "the profile");
    kernel_stat *s = &ctx->stats[ctx->nstats];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return ctx->nstats++;
}

clrt_kernel *clrt_kernel_get(clrt_ctx *ctx, const char *file, const char *options, const char *name)
{
    if (!options) options = "";
    int p = find_program(ctx, file, options);
    if (p >= 0) {
        ctx->last_source = CLRT_REUSED_IN_MEMORY;
        for (int i = 0; i < ctx->nkernels; i++)
            if (ctx->kernels[i]->program == p && strcmp(ctx->kernels[i]->name, name) == 0)
                return ctx->kernels[i];
    } else {
        p = add_program(ctx, file, options);
    }

    cl_int err;
    cl_kernel kernel = clCreateKernel(ctx->programs[p].program, name, &err);
    if (err != CL_SUCCESS) {
        char what[320];
        snprintf(what, sizeof what, "kernel '%s' in %s", name, file);
        fail(ctx, err, "clCreateKernel", what);
    }
    clrt_kernel *k = xcalloc(1, sizeof *k, "a kernel");
    k->kernel = kernel;
    k->name = xstrdup(name);
    k->program = p;
    char what[320];
    snprintf(what, sizeof what, "kernel '%s'", name);
    err = clGetKernelInfo(kernel, CL_KERNEL_NUM_ARGS, sizeof k->num_args, &k->num_args, NULL);
    if (err != CL_SUCCESS) fail(ctx, err, "clGetKernelInfo", what);
    err = clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof k->max_wg,
                                   &k->max_wg, NULL);
    if (err != CL_SUCCESS) fail(ctx, err, "clGetKernelWorkGroupInfo", what);
    if (k->max_wg > ctx->desc.max_work_group) k->max_wg = ctx->desc.max_work_group;
    cl_ulong local = 0;
    err = clGetKernelWorkGroupInfo(kernel, ctx->device, CL_KERNEL_LOCAL_MEM_SIZE, sizeof local,
                                   &local, NULL);
    if (err != CL_SUCCESS) fail(ctx, err, "clGetKernelWorkGroupInfo", what);
    k->static_local = local;
    k->stat = ctx->opt.profiling ? stat_index(ctx, name) : -1;

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

/* ---- profiling ---------------------------------------------------------------------------- */

/* Keeps an event for later accounting under stats[stat] (STAT_TRANSFER: transfers). */
static void track(clrt_ctx *ctx, cl_event ev, int stat)
{
    if (ctx->npending == PENDING_MAX) harvest(ctx);
    ctx->pending[ctx->npending] = ev;
    ctx->pending_stat[ctx->npending] = stat;
    ctx->npending++;
}

/* Waits for the pending events, adds their device times to the statistics, releases them. */
static void harvest(clrt_ctx *ctx)
{
    if (ctx->npending == 0) return;
    cl_int err = clWaitForEvents((cl_uint)ctx->npending, ctx->pending);
    if (err != CL_SUCCESS) fail(ctx, err, "clWaitForEvents", "profiled commands");
    for (int i = 0; i < ctx->npending; i++) {
        cl_ulong start = 0, end = 0;
        if (clGetEventProfilingInfo(ctx->pending[i], CL_PROFILING_COMMAND_START, sizeof start,
                                    &start, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(ctx->pending[i], CL_PROFILING_COMMAND_END, sizeof end, &end,
                                    NULL) == CL_SUCCESS &&
            end >= start) {
            int s = ctx->pending_stat[i];
            if (s == STAT_TRANSFER) ctx->xfer_ns += end - start;
            else { ctx->stats[s].calls++; ctx->stats[s].ns += end - start; }
        }
        clReleaseEvent(ctx->pending[i]);
    }
    ctx->npending = 0;
}

static int cmp_stat(const void *a, const void *b)
{
    const kernel_stat *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : strcmp(x->name, y->name);
}

void clrt_print_profile(clrt_ctx *ctx, FILE *f)
{
    if (!ctx->opt.profiling) {
        fprintf(f, "profile: not collected (the context was opened without profiling)\n");
        return;
    }
    clFinish(ctx->queue);
    harvest(ctx);
    kernel_stat *s = xcalloc((size_t)ctx->nstats + 1, sizeof *s, "the profile");
    int n = 0;
    uint64_t total = 0;
    for (int i = 0; i < ctx->nstats; i++)
        if (ctx->stats[i].calls > 0) { s[n++] = ctx->stats[i]; total += ctx->stats[i].ns; }
    qsort(s, (size_t)n, sizeof *s, cmp_stat);
    int w = 6;
    for (int i = 0; i < n; i++) if ((int)strlen(s[i].name) > w) w = (int)strlen(s[i].name);
    fprintf(f, "%-*s  %10s  %12s  %10s  %8s\n", w, "kernel", "calls", "total ms", "mean us",
            "% device");
    for (int i = 0; i < n; i++)
        fprintf(f, "%-*s  %10llu  %12.3f  %10.2f  %8.1f\n", w, s[i].name,
                (unsigned long long)s[i].calls, (double)s[i].ns * 1e-6,
                (double)s[i].ns * 1e-3 / (double)s[i].calls,
                total ? 100.0 * (double)s[i].ns / (double)total : 0.0);
    fprintf(f, "%-*s  %10s  %12.3f\n", w, "all kernels", "", (double)total * 1e-6);
    fprintf(f, "transfers: %llu, %.3f MB, %.3f ms\n", (unsigned long long)ctx->xfer_count,
            (double)ctx->xfer_bytes * 1e-6, (double)ctx->xfer_ns * 1e-6);
    free(s);
}

void clrt_finish(clrt_ctx *ctx)
{
    check(ctx, clFinish(ctx->queue), "clFinish");
    harvest(ctx);
}

/* ---- buffers ------------------------------------------------------------------------------ */

/* Dies for a failed allocation (or the first use that made it real), naming the buffer. */
CLT_NORETURN static void alloc_failed(const clrt_ctx *ctx, cl_int err, const char *call,
                                      const char *name, size_t bytes)
{
    char h[32], used[32], total[32];
    die(EXIT_RUNTIME, "%s: %s allocating buffer '%s' (%s) on %s, with %s already allocated of %s%s",
        call, clrt_error_name(err), name, human_bytes(bytes, h, sizeof h), ctx->desc.name,
        human_bytes(ctx->allocated, used, sizeof used),
        human_bytes(ctx->desc.global_mem, total, sizeof total),
        is_memory_error(err) ? memory_hint : "");
}

clrt_buf *clrt_alloc(clrt_ctx *ctx, size_t bytes, const char *name)
{
    size_t alloc = bytes < 4 ? 4 : bytes + (4 - bytes % 4) % 4;
    if (alloc < bytes || alloc > ctx->desc.max_alloc) {
        char h[32], m[32];
        die(EXIT_RUNTIME, "buffer '%s' needs %s but the largest single buffer on %s is %s "
            "(CL_DEVICE_MAX_MEM_ALLOC_SIZE); try a smaller --batch or --hidden", name,
            human_bytes(bytes, h, sizeof h), ctx->desc.name, human_bytes(ctx->desc.max_alloc, m, sizeof m));
    }
    /* Some drivers (PoCL) never refuse: the host would swap or be killed. Stay within the
     * memory the device reports. */
    if (ctx->allocated + alloc > ctx->desc.global_mem) {
        char h[32], used[32], total[32];
        die(EXIT_RUNTIME, "out of device memory allocating buffer '%s' (%s) on %s: %s already "
            "allocated of %s (CL_DEVICE_GLOBAL_MEM_SIZE); try a smaller --batch or --hidden", name,
            human_bytes(alloc, h, sizeof h), ctx->desc.name,
            human_bytes(ctx->allocated, used, sizeof used),
            human_bytes(ctx->desc.global_mem, total, sizeof total));
    }
    cl_int err;
    cl_mem mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, alloc, NULL, &err);
    if (err != CL_SUCCESS) alloc_failed(ctx, err, "clCreateBuffer", name, alloc);
    /* Zero it now: drivers that allocate lazily then fail here, where the buffer has a name. */
    cl_uint zero = 0;
    err = clEnqueueFillBuffer(ctx->queue, mem, &zero, sizeof zero, 0, alloc, 0, NULL, NULL);
    if (err != CL_SUCCESS) alloc_failed(ctx, err, "clEnqueueFillBuffer", name, alloc);
    err = clFinish(ctx->queue);
    if (err != CL_SUCCESS) alloc_failed(ctx, err, "clFinish", name, alloc);

    clrt_buf *b = xcalloc(1, sizeof *b, "a buffer");
    b->ctx = ctx;
    b->mem = mem;
    b->bytes = bytes;
    b->alloc = alloc;
    snprintf(b->name, sizeof b->name, "%s", name ? name : "unnamed");
    ctx->allocated += alloc;
    return b;
}

void clrt_free(clrt_buf *b)
{
    if (!b) return;
    b->ctx->allocated -= b->alloc;
    clReleaseMemObject(b->mem);
    free(b);
}

size_t clrt_buf_size(const clrt_buf *b)
{
    return b->bytes;
}

static void check_range(const clrt_buf *b, size_t offset, size_t bytes, const char *op)
{
    if (offset > b->bytes || bytes > b->bytes - offset)
        die(EXIT_RUNTIME, "%s of %zu bytes at offset %zu is outside buffer '%s' (%zu bytes)", op,
            bytes, offset, b->name, b->bytes);
}

/* Dies for a failed command on buffer b, naming it. */
CLT_NORETURN static void buf_failed(const clrt_ctx *ctx, cl_int err, const char *call, const clrt_buf *b)
{
    char what[128], h[32];
    snprintf(what, sizeof what, "buffer '%s' of %s", b->name, human_bytes(b->alloc, h, sizeof h));
    fail(ctx, err, call, what);
}

/* With profiling, the event of a blocking transfer is complete: account it at once. */
static void account_transfer(clrt_ctx *ctx, cl_event ev, size_t bytes)
{
    if (!ev) return;
    ctx->xfer_count++;
    ctx->xfer_bytes += bytes;
    track(ctx, ev, STAT_TRANSFER);
}

void clrt_write(clrt_ctx *ctx, clrt_buf *b, size_t offset, size_t bytes, const void *src)
{
    check_range(b, offset, bytes, "write");
    if (bytes == 0) return;
    cl_event ev = NULL;
    cl_int err = clEnqueueWriteBuffer(ctx->queue, b->mem, CL_TRUE, offset, bytes, src, 0, NULL,
                                      ctx->opt.profiling ? &ev : NULL);
    if (err != CL_SUCCESS) buf_failed(ctx, err, "clEnqueueWriteBuffer", b);
    account_transfer(ctx, ev, bytes);
}

void clrt_read(clrt_ctx *ctx, const clrt_buf *b, size_t offset, size_t bytes, void *dst)
{
    check_range(b, offset, bytes, "read");
    if (bytes == 0) return;
    cl_event ev = NULL;
    cl_int err = clEnqueueReadBuffer(ctx->queue, b->mem, CL_TRUE, offset, bytes, dst, 0, NULL,
                                     ctx->opt.profiling ? &ev : NULL);
    if (err != CL_SUCCESS) buf_failed(ctx, err, "clEnqueueReadBuffer", b);
    account_transfer(ctx, ev, bytes);
}

void clrt_fill32(clrt_ctx *ctx, clrt_buf *b, size_t offset, size_t bytes, uint32_t pattern)
{
    check_range(b, offset, bytes, "fill");
    if (offset % 4 || bytes % 4)
        die(EXIT_RUNTIME, "fill of buffer '%s': offset %zu and size %zu must be multiples of 4",
            b->name, offset, bytes);
    if (bytes == 0) return;
    cl_event ev = NULL;
    cl_uint pat = pattern;
    cl_int err = clEnqueueFillBuffer(ctx->queue, b->mem, &pat, sizeof pat, offset, bytes, 0, NULL,
                                     ctx->opt.profiling ? &ev : NULL);
    if (err != CL_SUCCESS) buf_failed(ctx, err, "clEnqueueFillBuffer", b);
    if (ev) track(ctx, ev, stat_index(ctx, "[fill]"));
}

void clrt_copy(clrt_ctx *ctx, const clrt_buf *src, size_t src_off, clrt_buf *dst, size_t dst_off,
               size_t bytes)
{
    check_range(src, src_off, bytes, "copy");
    check_range(dst, dst_off, bytes, "copy");
    if (bytes == 0) return;
    cl_event ev = NULL;
    cl_int err = clEnqueueCopyBuffer(ctx->queue, src->mem, dst->mem, src_off, dst_off, bytes, 0,
                                     NULL, ctx->opt.profiling ? &ev : NULL);
    if (err != CL_SUCCESS) buf_failed(ctx, err, "clEnqueueCopyBuffer", dst);
    if (ev) track(ctx, ev, stat_index(ctx, "[copy]"));
}

/* ---- launch ------------------------------------------------------------------------------- */

static const char *dims_text(int dims, const size_t *v, char *buf, size_t len)
{
    if (!v) { snprintf(buf, len, "driver's choice"); return buf; }
    if (dims == 1) snprintf(buf, len, "%zu", v[0]);
    else if (dims == 2) snprintf(buf, len, "%zux%zu", v[0], v[1]);
    else snprintf(buf, len, "%zux%zux%zu", v[0], v[1], v[2]);
    return buf;
}

void clrt_launch(clrt_ctx *ctx, clrt_kernel *k, int dims, const size_t *global, const size_t *local,
                 int nargs, const clrt_arg *args)
{
    if (dims < 1 || dims > 3 || (cl_uint)dims > ctx->max_dims)
        die(EXIT_RUNTIME, "kernel '%s': %d dimensions (the device supports 1 to %u)", k->name,
            dims, ctx->max_dims < 3 ? ctx->max_dims : 3);
    if (nargs < 0 || (cl_uint)nargs != k->num_args)
        die(EXIT_RUNTIME, "kernel '%s' takes %u arguments but was launched with %d", k->name,
            k->num_args, nargs);

    uint64_t local_args = 0;
    for (int i = 0; i < nargs; i++) {
        const clrt_arg *a = &args[i];
        cl_int err;
        switch (a->kind) {
        case CLRT_ARG_BUF: err = clSetKernelArg(k->kernel, (cl_uint)i, sizeof(cl_mem), &a->v.buf->mem); break;
        case CLRT_ARG_INT: { cl_int v = a->v.i; err = clSetKernelArg(k->kernel, (cl_uint)i, sizeof v, &v); break; }
        case CLRT_ARG_UINT: { cl_uint v = a->v.u; err = clSetKernelArg(k->kernel, (cl_uint)i, sizeof v, &v); break; }
        case CLRT_ARG_FLOAT: { cl_float v = a->v.f; err = clSetKernelArg(k->kernel, (cl_uint)i, sizeof v, &v); break; }
        case CLRT_ARG_ULONG: { cl_ulong v = a->v.ul; err = clSetKernelArg(k->kernel, (cl_uint)i, sizeof v, &v); break; }
        case CLRT_ARG_LOCAL:
            err = clSetKernelArg(k->kernel, (cl_uint)i, a->v.local, NULL);
            local_args += a->v.local;
            break;
        default: die(EXIT_RUNTIME, "kernel '%s': argument %d has an unknown kind", k->name, i);
        }
        if (err != CL_SUCCESS) {
            char what[160];
            snprintf(what, sizeof what, "kernel '%s', argument %d", k->name, i);
            fail(ctx, err, "clSetKernelArg", what);
        }
    }

    size_t g[3], l[3];
    char gt[64], lt[64];
    for (int d = 0; d < dims; d++) {
        if (global[d] == 0) return; /* nothing to do */
        g[d] = global[d];
    }
    if (local) {
        size_t wg = 1;
        for (int d = 0; d < dims; d++) {
            if (local[d] == 0 || local[d] > ctx->max_item[d])
                die(EXIT_RUNTIME, "kernel '%s': work-group size %s: dimension %d must be 1 to %zu on %s "
                    "(CL_DEVICE_MAX_WORK_ITEM_SIZES)", k->name, dims_text(dims, local, lt, sizeof lt),
                    d, ctx->max_item[d], ctx->desc.name);
            wg *= local[d];
            l[d] = local[d];
            g[d] = (global[d] + local[d] - 1) / local[d] * local[d];
        }
        if (wg > k->max_wg)
            die(EXIT_RUNTIME, "kernel '%s': work-group size %s = %zu exceeds its limit of %zu on %s "
                "(CL_KERNEL_WORK_GROUP_SIZE)", k->name, dims_text(dims, local, lt, sizeof lt), wg,
                k->max_wg, ctx->desc.name);
    }
    if (k->static_local + local_args > ctx->desc.local_mem) {
        char need[32], have[32];
        die(EXIT_RUNTIME, "kernel '%s' needs %s of local memory but %s has %s (CL_DEVICE_LOCAL_MEM_SIZE)",
            k->name, human_bytes(k->static_local + local_args, need, sizeof need), ctx->desc.name,
            human_bytes(ctx->desc.local_mem, have, sizeof have));
    }

    cl_event ev = NULL;
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, k->kernel, (cl_uint)dims, NULL, g,
                                        local ? l : NULL, 0, NULL, ctx->opt.profiling ? &ev : NULL);
    if (err != CL_SUCCESS) {
        char what[300];
        snprintf(what, sizeof what, "kernel '%s', global %s, local %s", k->name,
                 dims_text(dims, g, gt, sizeof gt), dims_text(dims, local ? l : NULL, lt, sizeof lt));
        fail(ctx, err, "clEnqueueNDRangeKernel", what);
    }
    if (ev) track(ctx, ev, k->stat);
}

/* ---- CLBlast ------------------------------------------------------------------------------ */

static const char *clblast_status_name(CLBlastStatusCode s)
{
    switch (s) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
    case CLBlastNoDoublePrecision: return "CLBlastNoDoublePrecision";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    case CLBlastTempBufferAllocFailure: return "CLBlastTempBufferAllocFailure";
    default: return (int)s > -1000 ? clrt_error_name((int)s) : "CLBlast error";
    }
}

bool clrt_clblast_sgemm(clrt_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                        float alpha, const clrt_buf *a, size_t a_off, size_t lda,
                        const clrt_buf *b, size_t b_off, size_t ldb, float beta,
                        clrt_buf *c, size_t c_off, size_t ldc)
{
    if (ctx->clblast_unusable) return false;
    if (m == 0 || n == 0) return true;
    if (k == 0) return false; /* C = beta*C: CLBlast rejects it, the builtin kernels do it */
    cl_event ev = NULL;
    CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor,
                                       trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                       trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k,
                                       alpha, a->mem, a_off, lda, b->mem, b_off, ldb, beta, c->mem,
                                       c_off, ldc, &ctx->queue, ctx->opt.profiling ? &ev : NULL);
    if (s == CLBlastNotImplemented || s == CLBlastNoHalfPrecision || s == CLBlastNoDoublePrecision ||
        s == CLBlastInvalidLocalMemUsage) {
        ctx->clblast_unusable = true;
        return false;
    }
    if (s != CLBlastSuccess) {
        bool mem = s == CLBlastTempBufferAllocFailure || s == CLBlastOpenCLOutOfResources ||
                   s == CLBlastOpenCLOutOfHostMemory;
        die(EXIT_RUNTIME, "CLBlastSgemm: status %d (%s) for %zux%zux%zu%s%s (C is '%s'; device %s)%s",
            (int)s, clblast_status_name(s), m, n, k, trans_a ? ", A transposed" : "",
            trans_b ? ", B transposed" : "", c->name, ctx->desc.name, mem ? memory_hint : "");
    }
    if (ev) track(ctx, ev, stat_index(ctx, "clblast_sgemm"));
    return true;
}
