/* cl_layers.h: the execution plan of a fully-connected layer on an OpenCL device, chosen once
 * (trainer_create, through the back-end's plan_layer) from the layer's shape, its input, the
 * device's kind and limits and --gemm / --kernels, out of one table per device kind (the way
 * CLBlast keeps one database entry per device). backend_cl.c only carries a plan out.
 * Plain C: this module calls no OpenCL function, so its choices are testable anywhere. */
#ifndef CLTRAIN_CL_LAYERS_H
#define CLTRAIN_CL_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

/* How one product of a layer runs. */
typedef enum {
    LP_SPARSE,      /* kernels/sparse.cl over the nonzero pixels (first layer, blank-heavy images) */
    LP_FUSED,       /* kernels/layers.cl: CPU-shaped, one launch per product, no local memory */
    LP_TILED,       /* kernels/gemm.cl with tiles fitted to the shape, element-wise kernels around */
    LP_CLBLAST,     /* CLBlast's sgemm, element-wise kernels around */
} layer_path;

/* Tiles of gemm.cl (its -D parameters): a TSM x TSN tile of C per work-group, TSK of the inner
 * dimension per local-memory step, WPTM x WPTN outputs per work-item. */
typedef struct {
    int tsm, tsn, tsk, wptm, wptn;
} gemm_tiles;

/* One product on the tiled path: C[m x n] += over k, split into `split` slices of k (each a
 * layer of work-groups writing a partial C) summed by a second pass when split > 1. */
typedef struct {
    gemm_tiles t;
    int split;
} gemm_plan;

/* What the plan needs to know of the device. */
typedef struct {
    bool cpu;                   /* CL_DEVICE_TYPE_CPU: work-items run as loops over SIMD lanes */
    size_t max_wg;              /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    size_t local_mem;           /* CL_DEVICE_LOCAL_MEM_SIZE, bytes */
    unsigned compute_units;
    gemm_kind gemm;             /* --gemm */
    kernel_family family;       /* --kernels */
    step_choice step;           /* --step */
} cl_device_traits;

/* The fused kernels' register blocks (layers.cl's RM, RN, RV) and weight-gradient slices. */
typedef struct {
    int fwd_rm, fwd_rn;         /* linear_forward: rows x outputs per work-item */
    int wgt_rn, wgt_rv;         /* linear_weights: outputs, vectors of VW inputs per work-item */
    int inp_rm, inp_rv;         /* linear_input: rows, vectors of VW inputs per work-item */
    int slice_rows;             /* linear_weights: rows one slice sums before the second pass */
} fused_plan;

/* sparse.cl's blocks: CB 16-float vectors of outputs per work-item, RB rows per work-item
 * (forward), rows per slice of the weight gradient; csc: the weight gradient from the pixels'
 * blocked CSC copy, each pixel column of a block of images summed in registers (rows read in
 * order only: an index picks rows the blocks do not follow), else scattered into slices. */
typedef struct {
    int cb, rb, slice_rows;
    bool csc;
} sparse_plan;

struct layer_plan {
    layer_shape shape;
    const char *table;          /* the row of the table: "CPU" or "GPU" */
    bool serial_items;          /* sparse.cl, layers.cl: one work-item per work-group (CPU row) */
    layer_path fwd, wgt, inp;   /* forward, weight gradient, input gradient */
    fused_plan fused;
    sparse_plan sparse;
    gemm_plan g_fwd, g_wgt, g_inp;   /* tiled: out = X W^T (nt), dW = dZ^T X (tn), dA = dZ W (nn) */
    int cs_cols, cs_rows;       /* tiled and CLBlast: the bias gradient's column-sum work-group */
    bool output_step;           /* the output layer's training passes in output_step.cl */
    bool sparse_step;           /* the first layer trains with the output layer in sparse_step.cl */
    bool forward_only;          /* a fused step trains the network: only evaluation's kernels */
};

/* The plan of a whole mini-batch step (backend.h's plan_step, kernels/fused_step.cl): two
 * launches, one for the forward and backward passes of blocks of rows, one for every layer's
 * gradient with the optimizer's update, or (fused false) the per-layer path, for `why`. */
struct step_plan {
    bool fused;
    const char *why;            /* fused: what made the choice; else why not */
    int block_rows;             /* step_forward_backward: rows per work-group */
    int wg;                     /* and its work-group size */
    int vw;                     /* vector width, a divisor of every layer's input count */
    int rn, rv;                 /* step_update: outputs, VW-vectors of inputs per tile */
    int tiles;                  /* step_update's work-items over all layers */
    int n_layers;
    /* The CPU row, where the images have a sparse copy (write_images): the first layer from
     * the nonzero pixels (fused_step.cl's SPARSE0), SB vectors of 16 outputs per item, layer
     * 0's update tiles PR pixels wide; tiles_sparse counts step_update's items then. */
    bool sparse_first;
    int sb, pr, tiles_sparse;
};

/* Every width of a network on the fused step is at most this. */
#define CL_STEP_MAX_WIDTH 1024
/* The plan's fused step takes batches of at most this many rows (--step fused: any batch). */
#define CL_STEP_MAX_BATCH 1024

/* Whether output_step.cl runs the output layer of k hidden inputs and n classes on d: the
 * CPU row with the built-in kernels, k and n at most 16. */
bool cl_output_step_fits(const cl_device_traits *d, int k, int n);

/* Fills *p for a network of shape s on device d. */
void cl_step_plan_choose(const cl_device_traits *d, const step_shape *s, step_plan *p);
/* Tiles of step_update for layer l (k inputs, n outputs) under plan p. */
int cl_step_layer_tiles(const step_plan *p, int k, int n);
/* Tiles of step_update for the first layer (k pixels, n outputs) read sparsely (SPARSE0). */
int cl_step_sparse_tiles(const step_plan *p, int k, int n);
/* One line (no newline): "fused step, 2 launches: ..." or "per-layer path: <why>". */
void cl_step_plan_describe(const step_plan *p, char *buf, size_t len);

/* Images whose share of nonzero pixels is at most this take the sparse path. */
#define CL_SPARSE_MAX_DENSITY 0.5
/* Images per block of the pixels' blocked CSC copy (csc plans): one block's dZ rows (10
 * outputs: 80 KB) stay in a core's L2 while its columns are summed. */
#define CL_SPARSE_BLOCK_ROWS 2048

/* Fills *p for shape s on device d. */
void cl_layer_plan_choose(const cl_device_traits *d, const layer_shape *s, layer_plan *p);

/* The tiles and split for C[m x n] over k on device d, from the table of its family. */
gemm_plan cl_layer_gemm_plan(const cl_device_traits *d, int m, int n, int k);
/* Whether device d runs the CPU row's kernels (--kernels cpu, or auto on a CPU). */
bool cl_layer_cpu_family(const cl_device_traits *d);
/* Whether images of this density are worth a sparse copy on device d (its plans use one). */
bool cl_layer_sparse_wanted(const cl_device_traits *d, double density);

/* One line (no newline) saying what the plan runs, e.g.
 * "784->10 relu: sparse (CB 1, RB 16) | fused input (RM 4 RV 2)". */
void cl_layer_plan_describe(const layer_plan *p, char *buf, size_t len);

const char *layer_path_name(layer_path p);

#endif
