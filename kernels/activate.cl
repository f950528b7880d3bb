/* activate.cl: the hidden-layer activations, included by every kernel family that applies
 * them (activation.cl's element-wise kernels, layers.cl, sparse.cl), so all compute the same
 * function. act follows the host's enum: 0 none, 1 relu, 2 sigmoid. */
#ifndef CLTRAIN_ACTIVATE_CL
#define CLTRAIN_ACTIVATE_CL

static inline float activate(const float z, const int act)
{
    if (act == 1) return fmax(z, 0.0f);
    if (act == 2) return 1.0f / (1.0f + exp(-z));
    return z;
}

#endif
