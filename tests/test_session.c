/* test_session.c: the data and back-end every command starts from (session.h). In-process:
 * --train-limit, --test-limit and --val cut the real MNIST as documented (the validation set is
 * the last N of the limited training images, moved out of it), --device host opens the plain-C
 * back-end. Through the binary: the faults session.c reports exit 2 with one line naming the
 * flag. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "session.h"
#include "support.h"

START_TEST(test_limits_and_validation_split)
{
    dataset_pair full;
    mnist_load(&full);
    options o;
    options_defaults(&o);
    o.data = mnist_dir();
    o.train_limit = 1234;
    o.test_limit = 321;
    o.val = 200;
    session_data sd;
    session_load_data(&o, 0, &sd);
    const size_t px = 784;
    ck_assert_uint_eq(sd.data.train.n, 1034);
    ck_assert_uint_eq(sd.data.test.n, 321);
    ck_assert_uint_eq(sd.val.n, 200);
    ck_assert(sd.val.rows == 28 && sd.val.cols == 28 && sd.val.classes == 10);
    ck_assert(memcmp(sd.data.train.pixels, full.train.pixels, 1034 * px) == 0);
    ck_assert(memcmp(sd.data.train.labels, full.train.labels, 1034) == 0);
    ck_assert(memcmp(sd.val.pixels, full.train.pixels + 1034 * px, 200 * px) == 0);
    ck_assert(memcmp(sd.val.labels, full.train.labels + 1034, 200) == 0);
    ck_assert(memcmp(sd.data.test.pixels, full.test.pixels, 321 * px) == 0);
    session_free_data(&sd);
    /* No limits: everything, and no validation set. */
    options_defaults(&o);
    o.data = mnist_dir();
    session_load_data(&o, 0, &sd);
    ck_assert(sd.data.train.n == full.train.n && sd.data.test.n == full.test.n && sd.val.n == 0);
    session_free_data(&sd);
    dataset_pair_free(&full);
}
END_TEST

START_TEST(test_host_backend)
{
    options o;
    options_defaults(&o);
    o.device_host = true;
    backend *be = session_open_backend(&o);
    ck_assert_str_eq(be->ops->name, "host");
    ck_assert_ptr_null(backend_device_name(be));
    backend_destroy(be);
}
END_TEST

START_TEST(test_faults_exit_2)
{
    static const struct { const char *args, *word; } cases[] = {
        {"--train-limit 70000", "--train-limit 70000"},
        {"--test-limit 20000", "--test-limit 20000"},
        {"--train-limit 100 --val 100", "--val 100"},
        {"--train-limit 100 --batch 101", "--batch 101"},
        {"--device 999", "device 999"},
    };
    char dir[64];
    work_dir_make(dir, sizeof dir, "session");
    char *out = NULL, *err = NULL, args[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "--data %s --epochs 1 %s", mnist_dir(), cases[i].args);
        int rc = run_cltrain(dir, NULL, args, &out, &err);
        ck_assert_msg(rc == 2, "%s: exit %d, want 2: %s", cases[i].args, rc, err);
        ck_assert_msg(strstr(err, cases[i].word) != NULL, "%s: the message does not name it: %s",
                      cases[i].args, err);
    }
    free(out);
    free(err);
    work_dir_remove(dir);
}
END_TEST

Suite *session_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_limits_and_validation_split);
    tcase_add_test(tc, test_host_backend);
    tcase_add_test(tc, test_faults_exit_2);
    suite_add_tcase(s, tc);
    return s;
}
