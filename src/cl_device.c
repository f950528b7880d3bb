/* cl_device.c: device enumeration, done once per process, and the device table (see
 * cl_runtime.h). `--list-devices`, `--device N`, the back-end and the bench all ask here, so
 * the devices are enumerated once and a missing device is reported with one message. */
#include "cl_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
} device_handle;

void clrt_device_info(cl_device_id d, cl_device_info what, size_t size, void *out,
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
    clrt_device_info(d, what, need, tmp, what_name);
    tmp[need] = 0;
    trimmed_copy(out, size, tmp);
    free(tmp);
}

void clrt_platform_string(cl_platform_id p, cl_platform_info what, char *out, size_t size)
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

/* Scalar properties; NAMED(P) passes P and its name for the message when the call fails. */
#define NAMED(what) (what), #what

static cl_uint device_uint(cl_device_id d, cl_device_info what, const char *what_name)
{
    cl_uint v = 0;
    clrt_device_info(d, what, sizeof v, &v, what_name);
    return v;
}

static cl_ulong device_ulong(cl_device_id d, cl_device_info what, const char *what_name)
{
    cl_ulong v = 0;
    clrt_device_info(d, what, sizeof v, &v, what_name);
    return v;
}

static void describe_device(cl_platform_id p, cl_device_id d, int index, clrt_device_desc *o)
{
    memset(o, 0, sizeof *o);
    o->index = index;
    clrt_platform_string(p, CL_PLATFORM_NAME, o->platform, sizeof o->platform);
    device_string(d, CL_DEVICE_NAME, o->name, sizeof o->name, "CL_DEVICE_NAME");
    cl_device_type type = 0;
    clrt_device_info(d, CL_DEVICE_TYPE, sizeof type, &type, "CL_DEVICE_TYPE");
    const char *t = (type & CL_DEVICE_TYPE_GPU) ? "GPU"
                    : (type & CL_DEVICE_TYPE_CPU) ? "CPU"
                    : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator" : "other";
    snprintf(o->type, sizeof o->type, "%s", t);
    o->compute_units = device_uint(d, NAMED(CL_DEVICE_MAX_COMPUTE_UNITS));
    o->clock_mhz = device_uint(d, NAMED(CL_DEVICE_MAX_CLOCK_FREQUENCY));
    o->global_mem = device_ulong(d, NAMED(CL_DEVICE_GLOBAL_MEM_SIZE));
    o->max_alloc = device_ulong(d, NAMED(CL_DEVICE_MAX_MEM_ALLOC_SIZE));
    o->local_mem = device_ulong(d, NAMED(CL_DEVICE_LOCAL_MEM_SIZE));
    size_t wg = 0;
    clrt_device_info(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, "CL_DEVICE_MAX_WORK_GROUP_SIZE");
    o->max_work_group = wg;
    device_string(d, CL_DEVICE_OPENCL_C_VERSION, o->opencl_c, sizeof o->opencl_c,
                  "CL_DEVICE_OPENCL_C_VERSION");
    device_string(d, CL_DRIVER_VERSION, o->driver, sizeof o->driver, "CL_DRIVER_VERSION");
}

/* ---- the enumeration, once per process ------------------------------------------------------ */

static struct {
    bool done;
    int n;
    clrt_device_desc *desc;
    device_handle *handles;
} found;

/* All devices of all platforms, in platform order, enumerated on the first call. */
static void enumerate_once(void)
{
    if (found.done) return;
    found.done = true;
    cl_uint nplat = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &nplat);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && nplat == 0)) return;
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetPlatformIDs: %s", clrt_error_name(err));
    cl_platform_id *plats = xcalloc(nplat, sizeof *plats, "the platform list");
    err = clGetPlatformIDs(nplat, plats, NULL);
    if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetPlatformIDs: %s", clrt_error_name(err));

    int cap = 0;
    for (cl_uint p = 0; p < nplat; p++) {
        cl_uint ndev = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev);
        if (err == CL_DEVICE_NOT_FOUND || ndev == 0) continue;
        if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetDeviceIDs: %s", clrt_error_name(err));
        cl_device_id *devs = xcalloc(ndev, sizeof *devs, "the device list");
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, ndev, devs, NULL);
        if (err != CL_SUCCESS) die(EXIT_RUNTIME, "clGetDeviceIDs: %s", clrt_error_name(err));
        for (cl_uint i = 0; i < ndev; i++) {
            if (found.n == cap) {
                cap = cap ? 2 * cap : 4;
                found.desc = xrealloc(found.desc, (size_t)cap * sizeof *found.desc, "the device list");
                found.handles = xrealloc(found.handles, (size_t)cap * sizeof *found.handles,
                                         "the device list");
            }
            describe_device(plats[p], devs[i], found.n, &found.desc[found.n]);
            found.handles[found.n] = (device_handle){plats[p], devs[i]};
            found.n++;
        }
        free(devs);
    }
    free(plats);
}

int clrt_list_devices(clrt_device_desc **out)
{
    enumerate_once();
    *out = NULL;
    if (found.n == 0) return 0;
    *out = xcalloc((size_t)found.n, sizeof **out, "the device list");
    memcpy(*out, found.desc, (size_t)found.n * sizeof **out);
    return found.n;
}

void clrt_require_device(int index)
{
    enumerate_once();
    if (found.n == 0)
        die(EXIT_RUNTIME, "no OpenCL platform or device found: install an OpenCL driver (on Debian, "
            "PoCL for CPUs: 'apt-get install pocl-opencl-icd'; for a GPU, its vendor's), or use "
            "the plain-C back-end: --device host");
    if (index < 0 || index >= found.n) {
        if (found.n == 1)
            die(EXIT_USAGE, "there is no OpenCL device %d: the only one is device 0 (see "
                "--list-devices)", index);
        die(EXIT_USAGE, "there is no OpenCL device %d: the devices are 0 to %d (see "
            "--list-devices)", index, found.n - 1);
    }
}

void clrt_device_lookup(int index, clrt_device_desc *desc, cl_platform_id *platform,
                        cl_device_id *device)
{
    clrt_require_device(index);
    *desc = found.desc[index];
    *platform = found.handles[index].platform;
    *device = found.handles[index].device;
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
        clrt_human_bytes(d[i].global_mem, r[6], 128);
        clrt_human_bytes(d[i].max_alloc, r[7], 128);
        clrt_human_bytes(d[i].local_mem, r[8], 128);
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
