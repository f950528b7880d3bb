/* ref_mlp.h: a float64 reference of the network's loss and gradient, written directly from the
 * seed's equations, independent of the back-ends. For gradient checks. */
#ifndef CLTRAIN_REF_MLP_H
#define CLTRAIN_REF_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Mean cross-entropy over m samples (pixels m x sizes[0] uint8, scaled by 1/255). When grad is
 * non-NULL it receives d(loss)/d(params) (n_params doubles). *relu_pattern receives a hash of
 * which ReLU units are active, so callers can skip finite differences that cross a kink. */
double ref_loss_grad(const model_arch *a, const double *params, const uint8_t *pixels,
                     const uint8_t *labels, size_t m, double *grad, uint64_t *relu_pattern);

#endif
