/* augment_cl.c: the --augment kernel on a device (see augment_cl.h, kernels/augment.cl). */
#include "augment_cl.h"

#include <stdlib.h>

#include "util.h"

/* Work-items per image: 784-pixel images take 7 strides of 128. */
#define AUGMENT_WG 128

struct augment_cl {
    clrt_ctx *ctx;
    clrt_kernel *k;
    size_t wg;
    clrt_buf *scratch;      /* elastic fields, m x 4 w*h floats, grown as needed */
    clrt_buf *dummy;        /* bound where an argument is unused */
};

augment_cl *augment_cl_create(clrt_ctx *ctx)
{
    augment_cl *a = xcalloc(1, sizeof *a, "augmentation");
    a->ctx = ctx;
    return a;
}

void augment_cl_free(augment_cl *a)
{
    if (!a) return;
    clrt_free(a->scratch);
    clrt_free(a->dummy);
    free(a);
}

void augment_cl_run(augment_cl *a, const clrt_buf *src, size_t src_rows, const clrt_buf *idx,
                    size_t idx_off, int m, int width, int height, const augment_spec *s,
                    uint64_t seed, uint64_t stream, uint64_t pos0, clrt_buf *dst)
{
    if (m <= 0) return;
    if (!a->k) {
        a->k = clrt_kernel_get(a->ctx, "augment.cl", "", "augment");
        size_t max = clrt_kernel_max_wg(a->ctx, a->k);
        a->wg = 1;
        while (a->wg * 2 <= max && a->wg * 2 <= AUGMENT_WG) a->wg *= 2;
        a->dummy = clrt_alloc(a->ctx, 16, "unused argument");
    }
    size_t np = (size_t)width * (size_t)height;
    bool elastic = s->elastic_alpha > 0;
    if (elastic) {
        size_t bytes;
        if (!mul_size((size_t)m * 4 * sizeof(float), np, &bytes))
            die(EXIT_RUNTIME, "augmentation: the displacement fields of %d images are too large", m);
        if (!a->scratch || clrt_buf_size(a->scratch) < bytes) {
            clrt_free(a->scratch);   /* OpenCL keeps it while queued work uses it */
            a->scratch = clrt_alloc(a->ctx, bytes, "displacement fields");
        }
    }
    uint32_t rows = src_rows > UINT32_MAX ? UINT32_MAX : (uint32_t)src_rows;
    clrt_arg args[] = {
        clrt_arg_buf(src), clrt_arg_uint(rows), clrt_arg_buf(idx ? idx : a->dummy),
        clrt_arg_int(idx != NULL), clrt_arg_ulong(idx_off), clrt_arg_int(width),
        clrt_arg_int(height), clrt_arg_float(s->shift), clrt_arg_float(s->rotate),
        clrt_arg_float(s->scale), clrt_arg_float(s->elastic_alpha),
        clrt_arg_float(elastic ? s->elastic_sigma : 1.0f), clrt_arg_int(augment_radius(s)),
        clrt_arg_ulong(seed), clrt_arg_ulong(stream), clrt_arg_ulong(pos0),
        clrt_arg_buf(elastic ? a->scratch : a->dummy), clrt_arg_buf(dst)};
    size_t global = (size_t)m * a->wg, local = a->wg;
    clrt_launch(a->ctx, a->k, 1, &global, &local, (int)(sizeof args / sizeof args[0]), args);
}
