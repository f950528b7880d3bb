/* rng.h: the counter-based generator shared by the host and the OpenCL kernels.
 * A value is a pure function of (seed, stream, counter), so the same seed gives the same
 * initial weights, shuffles and dropout masks on every device and on the host path, and a
 * resumed run needs no hidden generator state beyond the seed and the epoch number.
 * kernels/rng.cl implements the same function; tests/test_rng.c checks they agree. */
#ifndef CLTRAIN_RNG_H
#define CLTRAIN_RNG_H

#include <stdint.h>

/* Streams keep the uses apart. */
enum {
    RNG_STREAM_INIT = 1,      /* initial weights: counter = parameter index */
    RNG_STREAM_SHUFFLE = 2,   /* mini-batch order of epoch e (1-based): rng_permutation over
                                 stream 2 + 16 e */
    RNG_STREAM_DROPOUT = 3,   /* dropout mask of hidden layer l (0-based) in the step taken after
                                 s optimizer steps: stream 3 + 16 (16 s + l), counter
                                 row-in-batch * width + unit (kernels/activation.cl) */
    RNG_STREAM_VAL_SPLIT = 4, /* validation hold-out */
    RNG_STREAM_AUGMENT = 5,   /* --augment: stream + epoch, counters in augment.h */
};

/* 64 random bits from (seed, stream, counter): splitmix64 finaliser over a mixed key. */
uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter);
/* Uniform integer in [0, bound) without modulo bias worth measuring (bound < 2^32). */
uint32_t rng_below(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t bound);
/* Standard normal (Box-Muller over two counters 2c and 2c+1). */
float rng_normal(uint64_t seed, uint64_t stream, uint64_t counter);
/* Fisher-Yates permutation of 0..n-1 for one epoch. */
void rng_permutation(uint64_t seed, uint64_t stream, uint32_t *perm, uint32_t n);

#endif
