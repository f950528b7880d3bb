/* backend_testing.h: the operations each back-end's layers are built from (a gemm, the bias
 * with its activation, the activation's derivative, the column sum) that the training loop
 * never calls: not in backend.h's table, exposed here so that tests/test_backend.c checks both
 * back-ends' versions against float64. Nothing in src/ outside the two back-ends includes it. */
#ifndef CLTRAIN_BACKEND_TESTING_H
#define CLTRAIN_BACKEND_TESTING_H

#include "backend.h"

/* C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C.
 * op(A) = A (stored m x k, row stride lda) or A^T (A stored k x m). Likewise B.
 * A and B may be DT_U8 (pixels, converted to float; pass alpha = 1/255 to scale them).
 * With beta == 0, C is not read (it may hold NaN). */
typedef struct {
    bool trans_a, trans_b;
    int m, n, k;
    float alpha, beta;
    const tensor *a; size_t a_off; int lda;
    const tensor *b; size_t b_off; int ldb;
    tensor *c; size_t c_off; int ldc;
} gemm_args;

typedef struct {
    void (*gemm)(backend *be, const gemm_args *g);

    /* za[rows x cols] (row stride cols): za = act(za + bias) with bias[cols] broadcast over rows.
     * The activated value replaces the pre-activation: act_backward needs only A. */
    void (*bias_act)(backend *be, tensor *za, size_t za_off, const tensor *bias, size_t b_off,
                     int rows, int cols, activation act);

    /* d[i] *= g'(.) for count elements, from the activated values a: relu a > 0,
     * sigmoid a (1 - a). Turns dA into dZ in place. */
    void (*act_backward)(backend *be, tensor *d, size_t d_off, const tensor *a, size_t a_off,
                         size_t count, activation act);

    /* db[j] = alpha * sum_i dz[i][j] over rows x cols (bias gradient). */
    void (*col_sum)(backend *be, const tensor *dz, size_t dz_off, int rows, int cols,
                    float alpha, tensor *db, size_t db_off);
} backend_test_ops;

extern const backend_test_ops backend_host_testing, backend_cl_testing;

/* The test-only operations of be's back-end. */
static inline const backend_test_ops *backend_testing(const backend *be)
{
    return backend_device_name(be) ? &backend_cl_testing : &backend_host_testing;
}

/* Fused steps of an OpenCL back-end whose first layer read the images' sparse copy (SPARSE0
 * of kernels/fused_step.cl); 0 for the host back-end. */
uint64_t backend_cl_sparse_steps(const backend *be);
/* sparse_step calls of an OpenCL back-end that ran its one-pass kernel (sparse_step.cl); 0 for
 * the host back-end. */
uint64_t backend_cl_sparse_passes(const backend *be);

#endif
