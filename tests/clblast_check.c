/* clblast_check.c: see clblast_check.h. */
#include "clblast_check.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

backend *test_clblast_backend(void)
{
    const char *d = getenv("CLTRAIN_TEST_DEVICE");
    backend_cl_options o = {.gemm = GEMM_CLBLAST, .profiling = true, .no_cache = false};
    return backend_cl_create(d && *d ? atoi(d) : 0, &o);
}

void assert_kernel_ran(backend *be, const char *name, const char *what)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    be->ops->finish(be);
    backend_cl_print_profile(be, f);
    fclose(f);
    ck_assert_msg(text && strstr(text, name), "%s (no %s in the profile):\n%s", what, name,
                  text ? text : "");
    free(text);
}

void assert_clblast_ran(backend *be)
{
    assert_kernel_ran(be, "clblast_sgemm", "--gemm clblast fell back to the built-in gemm");
}
