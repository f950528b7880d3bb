/* kernel_select.h: one kernel out of an OpenCL C source, so that a program holds only what is
 * launched. PoCL compiles every kernel of a program when its binary is taken for the cache and
 * again at each kernel's first enqueue; kernels that never run cost start-up time for nothing. */
#ifndef CLTRAIN_KERNEL_SELECT_H
#define CLTRAIN_KERNEL_SELECT_H

#include <stddef.h>

/* The kernels defined at the top level of `source` (`__kernel` or `kernel`, attributes
 * allowed, outside comments, literals and preprocessor lines), as byte ranges. Returns how many
 * were found, up to max; -1 when the source cannot be read that way (unbalanced braces or
 * parentheses, an unterminated comment), in which case nothing may be removed. */
typedef struct {
    size_t start, end;      /* [start, end): from the keyword to the closing brace */
    size_t name, name_len;  /* the kernel's name within source */
} kernel_span;
int kernel_spans(const char *source, kernel_span *spans, int max);

/* A copy of `source` in which every top-level kernel that `keep` (space-separated names) does
 * not name is blanked: each of its characters but newlines becomes a space, so line numbers in
 * build logs stay right. Kernels a macro expands to are not seen and stay (a file selects those
 * with -D options, as gemm.cl does). NULL when the source cannot be read that way (the caller
 * then builds all of it). A name defined nowhere is the compiler's to report
 * (CL_INVALID_KERNEL_NAME). malloc'd. */
char *kernel_select(const char *source, const char *keep);

#endif
