/* augment_cl.h: the launch of kernels/augment.cl on a cl_runtime context, kept out of
 * backend_cl.c (which only unwraps its tensors and calls augment_cl_run). */
#ifndef CLTRAIN_AUGMENT_CL_H
#define CLTRAIN_AUGMENT_CL_H

#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "cl_runtime.h"

typedef struct augment_cl augment_cl;

augment_cl *augment_cl_create(clrt_ctx *ctx);
void augment_cl_free(augment_cl *a);

/* dst[m x w*h] (uint8) = images of src (src_rows of w*h uint8) resampled as augment.h says:
 * image i is row idx[idx_off + i] (idx non-NULL, uint32) or row idx_off + i. Enqueued, not waited for. */
void augment_cl_run(augment_cl *a, const clrt_buf *src, size_t src_rows, const clrt_buf *idx,
                    size_t idx_off, int m, int width, int height, const augment_spec *s,
                    uint64_t seed, uint64_t stream, uint64_t pos0, clrt_buf *dst);

#endif
