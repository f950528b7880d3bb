/* main.c: runs every Check suite (one per module, listed by scripts/suites.sh) and ends with
 * Check's summary line. Exit status 0 only when every test passed. */
#include <check.h>
#include <stdlib.h>

#include "test_suites.h"

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define X(name) srunner_add_suite(sr, name##_suite());
    ALL_SUITES
#undef X
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
