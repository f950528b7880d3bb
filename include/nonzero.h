/* nonzero.h: the nonzero bytes of uint8 images, counted and packed eight at a time (the first
 * layer's sparse copy is built from them at every start-up: 47 million MNIST pixels). */
#ifndef CLTRAIN_NONZERO_H
#define CLTRAIN_NONZERO_H

#include <stddef.h>
#include <stdint.h>

/* How many of px[0..n) are not 0. */
size_t nonzero_count(const uint8_t *px, size_t n);
/* The share of the n bytes at px that are not 0 (1 for n = 0). */
double nonzero_share(const uint8_t *px, size_t n);
/* Writes (index << 8 | value) for every nonzero px[i], i < k, in order, to out; returns how
 * many (out must hold that many). */
size_t nonzero_pack(const uint8_t *px, int k, uint32_t *out);

#endif
