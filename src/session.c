/* session.c: data and back-end selection shared by the commands. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "cl_runtime.h"
#include "util.h"

void session_load_data(const options *o, session_data *d)
{
    memset(d, 0, sizeof *d);
    char err[DATASET_ERR_LEN];
    if (dataset_load(o->data, (size_t)o->test_split, &d->data, err, sizeof err) != 0)
        die(EXIT_USAGE, "%s", err);
    dataset *tr = &d->data.train, *te = &d->data.test;
    if (o->train_limit > 0) {
        if ((size_t)o->train_limit > tr->n)
            die(EXIT_USAGE, "--train-limit %ld is more than the %zu training images in %s",
                o->train_limit, tr->n, d->data.source);
        dataset_truncate(tr, (size_t)o->train_limit);
    }
    if (o->test_limit > 0) {
        if ((size_t)o->test_limit > te->n)
            die(EXIT_USAGE, "--test-limit %ld is more than the %zu test images in %s",
                o->test_limit, te->n, d->data.source);
        dataset_truncate(te, (size_t)o->test_limit);
    }
    if (o->val > 0) {
        if ((size_t)o->val >= tr->n)
            die(EXIT_USAGE, "--val %ld leaves no training images (there are %zu)", o->val, tr->n);
        size_t keep = tr->n - (size_t)o->val, px = (size_t)tr->rows * (size_t)tr->cols;
        dataset *v = &d->val;
        *v = *tr;
        v->n = (size_t)o->val;
        v->pixels = xmalloc(v->n * px, "validation images");
        v->labels = xmalloc(v->n, "validation labels");
        memcpy(v->pixels, tr->pixels + keep * px, v->n * px);
        memcpy(v->labels, tr->labels + keep, v->n);
        dataset_truncate(tr, keep);
    }
    if (o->batch > 0 && (size_t)o->batch > tr->n)
        die(EXIT_USAGE, "--batch %ld is larger than the %zu training images", o->batch, tr->n);
}

void session_free_data(session_data *d)
{
    dataset_pair_free(&d->data);
    if (d->val.pixels) dataset_free(&d->val);
}

backend *session_open_backend(const options *o)
{
    if (o->device_host) return backend_host_create();
    clrt_device_desc *devs = NULL;
    int n = clrt_list_devices(&devs);
    if (n == 0)
        die(EXIT_RUNTIME, "no OpenCL platform or device found; on Debian install PoCL with "
                          "'apt-get install pocl-opencl-icd', or use --device host");
    if (o->device < 0 || o->device >= n) {
        fprintf(stderr, "cltrain: --device %d does not exist; the devices are:\n", o->device);
        clrt_print_devices(stderr, devs, n);
        free(devs);
        exit(EXIT_USAGE);
    }
    free(devs);
    backend_cl_options bo = {
        .gemm = o->gemm < 0 ? GEMM_BUILTIN : (gemm_kind)o->gemm,
        .kernels = o->kernels,
        .profiling = o->profile,
        .no_cache = o->no_cache,
    };
    return backend_cl_create(o->device, &bo);
}

int session_list_devices(void)
{
    clrt_device_desc *devs = NULL;
    int n = clrt_list_devices(&devs);
    if (n == 0) {
        fprintf(stderr, "cltrain: no OpenCL platform or device found; on Debian install PoCL with "
                        "'apt-get install pocl-opencl-icd' (or your GPU vendor's OpenCL driver)\n");
        return EXIT_RUNTIME;
    }
    clrt_print_devices(stdout, devs, n);
    free(devs);
    return EXIT_OK;
}
