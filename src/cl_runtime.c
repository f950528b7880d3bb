/* cl_runtime.c: contexts, buffers and transfers, the launch helper and profiling (see
 * cl_runtime.h). The rest of the runtime: cl_errors.c, cl_device.c, cl_program.c, cl_blast.c
 * (cl_internal.h says what each does). */
#include "cl_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- contexts ----------------------------------------------------------------------------- */

const clrt_device_desc *clrt_device(const clrt_ctx *ctx)
{
    return &ctx->desc;
}

/* Whether the driver keeps the kernels it compiles on disk and finds them again when the same
 * source is built, so that cltrain's binary cache would only slow the cold start: PoCL's
 * kernel cache, on unless POCL_KERNEL_CACHE says otherwise (PoCL reads it as on when it
 * begins with 1). PoCL hands out a program's binary only after compiling a generic
 * work-group function of each of its kernels, which no launch runs (a launch compiles its own
 * for its sizes): about 1.6 s of a 3.4 s cold start of the seed's network. */
static bool driver_caches_kernels(const clrt_ctx *ctx)
{
    if (strcmp(ctx->desc.platform, "Portable Computing Language") != 0) return false;
    const char *v = getenv("POCL_KERNEL_CACHE");
    return !v || v[0] == '1';
}

clrt_ctx *clrt_open(int index, const clrt_options *opt)
{
    clrt_ctx *ctx = xcalloc(1, sizeof *ctx, "the OpenCL context");
    clrt_device_lookup(index, &ctx->desc, &ctx->platform, &ctx->device);
    if (opt) ctx->opt = *opt;

    clrt_device_info(ctx->device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof ctx->max_dims,
                &ctx->max_dims, "CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS");
    size_t items[16] = {0};
    clrt_device_info(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES,
                sizeof items[0] * (ctx->max_dims < 16 ? ctx->max_dims : 16), items,
                "CL_DEVICE_MAX_WORK_ITEM_SIZES");
    for (int d = 0; d < 3; d++) ctx->max_item[d] = (cl_uint)d < ctx->max_dims ? items[d] : 1;

    cl_int err;
    cl_context_properties cprops[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    ctx->context = clCreateContext(cprops, 1, &ctx->device, NULL, NULL, &err);
    clrt_check(ctx, err, "clCreateContext");

    char version[64];
    clrt_platform_string(ctx->platform, CL_PLATFORM_VERSION, version, sizeof version);
    cl_command_queue_properties qp = ctx->opt.profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
    if (strncmp(version, "OpenCL 1.", 9) == 0) {
        ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, qp, &err);
        clrt_check(ctx, err, "clCreateCommandQueue");
    } else {
        cl_queue_properties props[] = {CL_QUEUE_PROPERTIES, qp, 0};
        ctx->queue = clCreateCommandQueueWithProperties(ctx->context, ctx->device, props, &err);
        clrt_check(ctx, err, "clCreateCommandQueueWithProperties");
    }
    ctx->driver_cache = driver_caches_kernels(ctx);
    if (!ctx->opt.no_cache && !ctx->driver_cache) ctx->cache_dir = clrt_cache_dir_open();
    return ctx;
}

static void harvest(clrt_ctx *ctx);

void clrt_close(clrt_ctx *ctx)
{
    if (!ctx) return;
    clFinish(ctx->queue);
    harvest(ctx);
    clrt_programs_release(ctx);
    clReleaseCommandQueue(ctx->queue);
    clReleaseContext(ctx->context);
    free(ctx->stats);
    free(ctx->cache_dir);
    free(ctx);
}

/* ---- profiling ---------------------------------------------------------------------------- */

int clrt_stat_index(clrt_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->nstats; i++)
        if (strcmp(ctx->stats[i].name, name) == 0) return i;
    ctx->stats = xrealloc(ctx->stats, (size_t)(ctx->nstats + 1) * sizeof *ctx->stats, "the profile");
    kernel_stat *s = &ctx->stats[ctx->nstats];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return ctx->nstats++;
}

void clrt_track(clrt_ctx *ctx, cl_event ev, int stat)
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
    if (err != CL_SUCCESS) clrt_fail(ctx, err, "clWaitForEvents", "profiled commands");
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
    clrt_print_programs(ctx, f);
}

void clrt_finish(clrt_ctx *ctx)
{
    clrt_check(ctx, clFinish(ctx->queue), "clFinish");
    harvest(ctx);
}

/* ---- buffers ------------------------------------------------------------------------------ */

/* Dies for a failed allocation (or the first use that made it real), naming the buffer. */
CLT_NORETURN static void alloc_failed(const clrt_ctx *ctx, cl_int err, const char *call,
                                      const char *name, size_t bytes)
{
    char h[32], used[32], total[32];
    die(EXIT_RUNTIME, "%s: %s allocating buffer '%s' (%s) on %s, with %s already allocated of %s%s",
        call, clrt_error_name(err), name, clrt_human_bytes(bytes, h, sizeof h), ctx->desc.name,
        clrt_human_bytes(ctx->allocated, used, sizeof used),
        clrt_human_bytes(ctx->desc.global_mem, total, sizeof total),
        clrt_memory_hint(clrt_is_memory_error(err)));
}

clrt_buf *clrt_alloc(clrt_ctx *ctx, size_t bytes, const char *name)
{
    size_t alloc = bytes < 4 ? 4 : bytes + (4 - bytes % 4) % 4;
    if (alloc < bytes || alloc > ctx->desc.max_alloc) {
        char h[32], m[32];
        die(EXIT_RUNTIME, "buffer '%s' needs %s but the largest single buffer on %s is %s "
            "(CL_DEVICE_MAX_MEM_ALLOC_SIZE); try a smaller --batch or --hidden", name,
            clrt_human_bytes(bytes, h, sizeof h), ctx->desc.name, clrt_human_bytes(ctx->desc.max_alloc, m, sizeof m));
    }
    /* Some drivers (PoCL) never refuse: the host would swap or be killed. Stay within the
     * memory the device reports. */
    if (ctx->allocated + alloc > ctx->desc.global_mem) {
        char h[32], used[32], total[32];
        die(EXIT_RUNTIME, "out of device memory allocating buffer '%s' (%s) on %s: %s already "
            "allocated of %s (CL_DEVICE_GLOBAL_MEM_SIZE); try a smaller --batch or --hidden", name,
            clrt_human_bytes(alloc, h, sizeof h), ctx->desc.name,
            clrt_human_bytes(ctx->allocated, used, sizeof used),
            clrt_human_bytes(ctx->desc.global_mem, total, sizeof total));
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
    snprintf(what, sizeof what, "buffer '%s' of %s", b->name, clrt_human_bytes(b->alloc, h, sizeof h));
    clrt_fail(ctx, err, call, what);
}

/* With profiling, the event of a blocking transfer is complete: account it at once. */
static void account_transfer(clrt_ctx *ctx, cl_event ev, size_t bytes)
{
    if (!ev) return;
    ctx->xfer_count++;
    ctx->xfer_bytes += bytes;
    clrt_track(ctx, ev, STAT_TRANSFER);
}

/* One blocking transfer between b and host memory: from src when writing, else into dst. */
static void transfer(clrt_ctx *ctx, const clrt_buf *b, size_t offset, size_t bytes, bool write,
                     const void *src, void *dst)
{
    check_range(b, offset, bytes, write ? "write" : "read");
    if (bytes == 0) return;
    cl_event ev = NULL, *evp = ctx->opt.profiling ? &ev : NULL;
    cl_int err = write ? clEnqueueWriteBuffer(ctx->queue, b->mem, CL_TRUE, offset, bytes, src, 0, NULL, evp)
                       : clEnqueueReadBuffer(ctx->queue, b->mem, CL_TRUE, offset, bytes, dst, 0, NULL, evp);
    if (err != CL_SUCCESS)
        buf_failed(ctx, err, write ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer", b);
    account_transfer(ctx, ev, bytes);
}

void *clrt_map(clrt_ctx *ctx, const clrt_buf *b, size_t offset, size_t bytes, bool write)
{
    check_range(b, offset, bytes, write ? "map for writing" : "map for reading");
    if (bytes == 0) die(EXIT_RUNTIME, "BUG: map of 0 bytes of buffer '%s'", b->name);
    cl_event ev = NULL, *evp = ctx->opt.profiling ? &ev : NULL;
    cl_int err;
    void *p = clEnqueueMapBuffer(ctx->queue, b->mem, CL_TRUE,
                                 write ? CL_MAP_WRITE_INVALIDATE_REGION : CL_MAP_READ, offset, bytes,
                                 0, NULL, evp, &err);
    if (err != CL_SUCCESS) buf_failed(ctx, err, "clEnqueueMapBuffer", b);
    account_transfer(ctx, ev, write ? 0 : bytes);
    return p;
}

void clrt_unmap(clrt_ctx *ctx, const clrt_buf *b, void *ptr)
{
    cl_int err = clEnqueueUnmapMemObject(ctx->queue, b->mem, ptr, 0, NULL, NULL);
    if (err != CL_SUCCESS) buf_failed(ctx, err, "clEnqueueUnmapMemObject", b);
}

void clrt_write(clrt_ctx *ctx, clrt_buf *b, size_t offset, size_t bytes, const void *src)
{
    transfer(ctx, b, offset, bytes, true, src, NULL);
}

void clrt_read(clrt_ctx *ctx, const clrt_buf *b, size_t offset, size_t bytes, void *dst)
{
    transfer(ctx, b, offset, bytes, false, NULL, dst);
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
    if (ev) clrt_track(ctx, ev, clrt_stat_index(ctx, "[fill]"));
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
    if (ev) clrt_track(ctx, ev, clrt_stat_index(ctx, "[copy]"));
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
            clrt_fail(ctx, err, "clSetKernelArg", what);
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
            k->name, clrt_human_bytes(k->static_local + local_args, need, sizeof need), ctx->desc.name,
            clrt_human_bytes(ctx->desc.local_mem, have, sizeof have));
    }

    cl_event ev = NULL;
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, k->kernel, (cl_uint)dims, NULL, g,
                                        local ? l : NULL, 0, NULL, ctx->opt.profiling ? &ev : NULL);
    if (err != CL_SUCCESS) {
        char what[300];
        snprintf(what, sizeof what, "kernel '%s', global %s, local %s", k->name,
                 dims_text(dims, g, gt, sizeof gt), dims_text(dims, local ? l : NULL, lt, sizeof lt));
        clrt_fail(ctx, err, "clEnqueueNDRangeKernel", what);
    }
    ctx->launches++;
    if (ev) clrt_track(ctx, ev, k->stat);
}

uint64_t clrt_launch_count(const clrt_ctx *ctx) { return ctx->launches; }
