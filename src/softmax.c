/* softmax.c: logsumexp of a row of logits (softmax.h). */
#include "softmax.h"

#include <math.h>

double softmax_lse(const float *z, int classes, int *argmax)
{
    int arg = 0;
    float mx = z[0];
    for (int c = 1; c < classes; c++)
        if (z[c] > mx) { mx = z[c]; arg = c; }
    double sum = 0.0;
    for (int c = 0; c < classes; c++) sum += exp((double)z[c] - (double)mx);
    *argmax = arg;
    return (double)mx + log(sum);
}
