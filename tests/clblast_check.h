/* clblast_check.h: proof that --gemm clblast really ran CLBlast. The OpenCL back-end falls back
 * to its own gemm when CLBlast fails (after one line on stderr), so a test that only compares
 * results would pass on the fallback; these read the back-end's profile instead. */
#ifndef CLTRAIN_TEST_CLBLAST_CHECK_H
#define CLTRAIN_TEST_CLBLAST_CHECK_H

#include "backend.h"

/* The device under test (CLTRAIN_TEST_DEVICE) with CLBlast's gemm and profiling on. */
backend *test_clblast_backend(void);
/* Fails the test unless be's profile lists CLBlast's sgemm. */
void assert_clblast_ran(backend *be);
/* Fails the test unless be's profile (after its queued work) lists the kernel `name`; `what`
 * says what its absence means. */
void assert_kernel_ran(backend *be, const char *name, const char *what);

#endif
