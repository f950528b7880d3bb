/* model.c: architecture, parameter layout and initialisation. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"
#include "util.h"

int model_arch_init(model_arch *a, int inputs, const int *hidden, int n_hidden, int classes,
                    activation act)
{
    if (n_hidden < 0 || n_hidden + 1 > MODEL_MAX_LAYERS || inputs < 1 || classes < 1) return -1;
    memset(a, 0, sizeof *a);
    a->n_layers = n_hidden + 1;
    a->act = act;
    a->sizes[0] = inputs;
    for (int i = 0; i < n_hidden; i++) {
        if (hidden[i] < 1) return -1;
        a->sizes[i + 1] = hidden[i];
    }
    a->sizes[a->n_layers] = classes;
    size_t off = 0;
    for (int l = 0; l < a->n_layers; l++) {
        size_t w;
        if (!mul_size((size_t)a->sizes[l + 1], (size_t)a->sizes[l], &w)) return -1;
        a->w_off[l] = off;
        if (off > SIZE_MAX - w - (size_t)a->sizes[l + 1]) return -1;
        off += w;
        a->b_off[l] = off;
        off += (size_t)a->sizes[l + 1];
    }
    a->n_params = off;
    return 0;
}

void model_init_params(const model_arch *a, init_kind init, uint64_t seed, float *params)
{
    for (int l = 0; l < a->n_layers; l++) {
        size_t fan_in = (size_t)a->sizes[l], fan_out = (size_t)a->sizes[l + 1];
        size_t nw = fan_in * fan_out;
        float *w = params + a->w_off[l], *b = params + a->b_off[l];
        /* The counter is the element's index in the whole buffer, so a layer's values do not
         * depend on the sizes of the layers before it being re-derived in another order. */
        if (init == INIT_UNIFORM) {
            for (size_t i = 0; i < nw; i++)
                w[i] = rng_uniform(seed, RNG_STREAM_INIT, a->w_off[l] + i) - 0.5f;
            for (size_t i = 0; i < fan_out; i++)
                b[i] = rng_uniform(seed, RNG_STREAM_INIT, a->b_off[l] + i) - 0.5f;
        } else {
            double sd = init == INIT_HE ? sqrt(2.0 / (double)fan_in)
                                        : sqrt(2.0 / (double)(fan_in + fan_out));
            for (size_t i = 0; i < nw; i++)
                w[i] = (float)(sd * (double)rng_normal(seed, RNG_STREAM_INIT, a->w_off[l] + i));
            memset(b, 0, fan_out * sizeof(float));
        }
    }
}

void model_describe(const model_arch *a, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int l = 0; l <= a->n_layers && used < len; l++) {
        int w = snprintf(buf + used, len - used, l ? "-%d" : "%d", a->sizes[l]);
        if (w < 0) return;
        used += (size_t)w;
    }
    if (used < len) snprintf(buf + used, len - used, " %s", activation_name(a->act));
}

const char *activation_name(activation act)
{
    switch (act) {
    case ACT_RELU: return "relu";
    case ACT_SIGMOID: return "sigmoid";
    default: return "none";
    }
}

const char *init_name(init_kind k)
{
    switch (k) {
    case INIT_HE: return "he";
    case INIT_XAVIER: return "xavier";
    default: return "uniform";
    }
}
