/* model.h: a fully-connected network's architecture and the layout of its one parameter
 * buffer: W0 (sizes[1] x sizes[0]), b0 (sizes[1]), W1, b1, ... up to the output layer. */
#ifndef CLTRAIN_MODEL_H
#define CLTRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "backend.h"

#define MODEL_MAX_LAYERS 16   /* weight layers: hidden layers + output */

typedef enum { INIT_UNIFORM, INIT_HE, INIT_XAVIER } init_kind;

typedef struct {
    int n_layers;                       /* weight layers = hidden layers + 1 */
    int sizes[MODEL_MAX_LAYERS + 1];    /* sizes[0] = inputs, sizes[n_layers] = classes */
    activation act;                     /* hidden layers; the output is softmax */
    size_t w_off[MODEL_MAX_LAYERS];     /* element offsets into the parameter buffer */
    size_t b_off[MODEL_MAX_LAYERS];
    size_t n_params;
} model_arch;

/* Fills in offsets and n_params. hidden[] has n_hidden widths. Returns 0, or -1 when the
 * parameter count overflows or the depth exceeds MODEL_MAX_LAYERS. */
int model_arch_init(model_arch *a, int inputs, const int *hidden, int n_hidden, int classes,
                    activation act);

/* Initial parameters on the host, a pure function of (seed, index): uniform U(-0.5, 0.5)
 * for weights and biases (the seed report), He or Xavier normal weights with zero biases. */
void model_init_params(const model_arch *a, init_kind init, uint64_t seed, float *params);

/* "784-10-10 relu" into buf. */
void model_describe(const model_arch *a, char *buf, size_t len);

const char *activation_name(activation act);
const char *init_name(init_kind k);

#endif
