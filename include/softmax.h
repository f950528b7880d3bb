/* softmax.h: the host's softmax of one row of logits, in float64: the host back-end's loss and
 * gradient and predict's probabilities come from this one formula. (The OpenCL back-end's is
 * kernels/softmax_xent.cl.) */
#ifndef CLTRAIN_SOFTMAX_H
#define CLTRAIN_SOFTMAX_H

/* logsumexp of z[classes] with the row maximum subtracted first (large logits do not
 * overflow); *argmax = the first maximum's index. p_j = exp(z_j - the result). */
double softmax_lse(const float *z, int classes, int *argmax);

#endif
