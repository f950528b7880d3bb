/* onnx_export.h: a trained network as an ONNX model (IR version 8, opset 13), written with a
 * small protobuf encoder of our own. The graph:
 *   pixels  float32 [N, sizes[0]], each pixel in [0, 1] (the IDX byte / 255)
 *   per layer l: Gemm(x, W_l [out x in], b_l [out], transB=1), then Relu or Sigmoid on the
 *   hidden layers
 *   probabilities  float32 [N, classes] = Softmax(axis=1) of the last Gemm
 * The class count is the architecture's (sizes[n_layers]), not a fixed 10. */
#ifndef CLTRAIN_ONNX_EXPORT_H
#define CLTRAIN_ONNX_EXPORT_H

#include <stddef.h>

#include "model.h"

#define ONNX_IR_VERSION 8
#define ONNX_OPSET 13
#define ONNX_INPUT_NAME "pixels"
#define ONNX_OUTPUT_NAME "probabilities"

/* The serialized ModelProto (malloc'd, *len bytes), or NULL with a one-line reason in err
 * when the parameters do not fit one protobuf message (2 GiB). */
unsigned char *onnx_encode(const model_arch *a, const float *params, size_t *len, char *err,
                           size_t errlen);

/* Encodes and writes path atomically (temporary name, then rename). Returns 0, or -1 with a
 * one-line message in err. */
int export_onnx(const char *path, const model_arch *a, const float *params, char *err,
                size_t errlen);

#endif
