/* nonzero.h: the nonzero bytes of uint8 images, counted and packed eight at a time (the first
 * layer's sparse copy is built from them at every start-up: 47 million MNIST pixels). */
#ifndef CLTRAIN_NONZERO_H
#define CLTRAIN_NONZERO_H

#include <stddef.h>
#include <stdint.h>

/* How many of px[0..n) are not 0. */
size_t nonzero_count(const uint8_t *px, size_t n);
/* Writes (index << 8 | value) for every nonzero px[i], i < k, in order, to out; returns how
 * many (out must hold that many). */
size_t nonzero_pack(const uint8_t *px, int k, uint32_t *out);

#endif
