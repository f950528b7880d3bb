/* ref_mlp.c: float64 forward and backward of the MLP, sample by sample (see ref_mlp.h). */
#include "ref_mlp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double ref_loss_grad(const model_arch *a, const double *params, const uint8_t *pixels,
                     const uint8_t *labels, size_t m, double *grad, uint64_t *relu_pattern)
{
    int L = a->n_layers, widest = 0;
    for (int l = 0; l <= L; l++) if (a->sizes[l] > widest) widest = a->sizes[l];
    /* acts[l] holds the input of layer l (acts[0] = pixels/255), acts[L] the softmax. */
    double *acts = malloc(sizeof(double) * (size_t)(L + 1) * (size_t)widest);
    double *delta = malloc(sizeof(double) * (size_t)widest), *next = malloc(sizeof(double) * (size_t)widest);
    if (grad) memset(grad, 0, sizeof(double) * a->n_params);
    uint64_t pattern = 1469598103934665603ULL;
    double loss = 0.0;
    for (size_t s = 0; s < m; s++) {
        double *in = acts;
        for (int k = 0; k < a->sizes[0]; k++) in[k] = pixels[s * (size_t)a->sizes[0] + (size_t)k] / 255.0;
        for (int l = 0; l < L; l++) {
            const double *W = params + a->w_off[l], *b = params + a->b_off[l];
            double *x = acts + (size_t)l * (size_t)widest, *z = acts + (size_t)(l + 1) * (size_t)widest;
            for (int j = 0; j < a->sizes[l + 1]; j++) {
                double acc = b[j];
                for (int k = 0; k < a->sizes[l]; k++) acc += W[(size_t)j * (size_t)a->sizes[l] + (size_t)k] * x[k];
                if (l < L - 1) {
                    if (a->act == ACT_RELU) {
                        pattern = (pattern ^ (acc > 0)) * 1099511628211ULL;
                        acc = acc > 0 ? acc : 0;
                    } else {
                        acc = 1.0 / (1.0 + exp(-acc));
                    }
                }
                z[j] = acc;
            }
        }
        double *z = acts + (size_t)L * (size_t)widest, mx = z[0], sum = 0.0;
        int C = a->sizes[L], y = labels[s];
        for (int c = 1; c < C; c++) if (z[c] > mx) mx = z[c];
        for (int c = 0; c < C; c++) sum += exp(z[c] - mx);
        loss += mx + log(sum) - z[y];
        if (!grad) continue;
        for (int c = 0; c < C; c++) delta[c] = (exp(z[c] - mx) / sum - (c == y)) / (double)m;
        for (int l = L - 1; l >= 0; l--) {
            const double *x = acts + (size_t)l * (size_t)widest;
            double *gW = grad + a->w_off[l], *gb = grad + a->b_off[l];
            const double *W = params + a->w_off[l];
            int out = a->sizes[l + 1], inw = a->sizes[l];
            for (int j = 0; j < out; j++) {
                gb[j] += delta[j];
                for (int k = 0; k < inw; k++) gW[(size_t)j * (size_t)inw + (size_t)k] += delta[j] * x[k];
            }
            if (l == 0) break;
            for (int k = 0; k < inw; k++) {
                double acc = 0.0;
                for (int j = 0; j < out; j++) acc += W[(size_t)j * (size_t)inw + (size_t)k] * delta[j];
                double av = x[k];
                next[k] = acc * (a->act == ACT_RELU ? (av > 0) : av * (1.0 - av));
            }
            memcpy(delta, next, sizeof(double) * (size_t)inw);
        }
    }
    free(acts);
    free(delta);
    free(next);
    if (relu_pattern) *relu_pattern = pattern;
    return loss / (double)m;
}
