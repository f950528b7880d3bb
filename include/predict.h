/* predict.h: what predict and eval share: a saved model checked against the data it will see,
 * and class probabilities for a set of images on the back-end chosen by --device. */
#ifndef CLTRAIN_PREDICT_H
#define CLTRAIN_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "dataset.h"
#include "options.h"

/* Loads --load into m; exits 2 with the reason when it is missing or unreadable, or when
 * --classes disagrees with it. */
void predict_load_model(const options *o, model_file *m);
/* The model's class count (its output layer's width). */
int predict_classes(const model_file *m);
/* Exits 2 when the model does not take `inputs` pixels (the images of `data`). */
void predict_check_inputs(const options *o, const model_file *m, int inputs, const char *data);

/* Softmax probabilities of d's images, d->n x classes (malloc'd), computed on --device.
 * d->pixels must hold model inputs per image; the labels are not used. */
float *predict_probabilities(const options *o, const model_file *m, const dataset *d);

/* Index of the largest of the n values. */
int predict_argmax(const float *p, int n);

#endif
