/* epoch.cl: the kernels a training launches whatever its layers, in one file so that one
 * program holds them: the sum of an evaluation's statistics (reduce.cl's reduce_stats), the
 * optimizer's update (update.cl) and dropout (activation.cl). A program costs a fixed build
 * time on top of its kernels' (about 0.1 s in PoCL, cl_runtime.h), and every training builds
 * the first two. The kernels and their NDRanges are those of the files included. */
#include "reduce.cl"
#include "update.cl"
#include "activation.cl"
