/* kernels_embedded.h: the kernels/ folder compiled into the binary (build/kernels_embedded.c). */
#ifndef CLTRAIN_KERNELS_EMBEDDED_H
#define CLTRAIN_KERNELS_EMBEDDED_H

#include <stddef.h>

typedef struct {
    const char *name;     /* "gemm.cl" */
    const char *source;   /* NUL-terminated */
    size_t length;
} embedded_kernel;

/* Terminated by an entry with name == NULL. */
extern const embedded_kernel embedded_kernels[];

#endif
