/* test_cli.c: the real binary: help, version, devices, flag errors, bad data, a whole small
 * training run with its log, model and export, and --load. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "util.h"

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static const char *data_dir(void) { return mnist_dir(); }

START_TEST(test_help_and_version)
{
    ck_assert_int_eq(bin_run("--help"), 0);
    ck_assert(strstr(bin_out(), "--epochs") && strstr(bin_out(), "--device") && strstr(bin_out(), "examples"));
    ck_assert_int_eq(bin_run("--version"), 0);
    ck_assert(strncmp(bin_out(), "cltrain ", 8) == 0);
}
END_TEST

START_TEST(test_list_devices_shows_pocl)
{
    ck_assert_int_eq(bin_run("--list-devices"), 0);
    ck_assert_msg(strstr(bin_out(), "Portable Computing Language") != NULL, "%s", bin_out());
}
END_TEST

/* Each bad invocation: exit 2, one line on stderr naming the problem and pointing at --help. */
static const struct { const char *args, *needle; } bad_flags[] = {
    {"--frobnicate", "unknown option '--frobnicate'"},
    {"--lr abc", "--lr takes a number"},
    {"--lr -1", "--lr value '-1' is out of range"},
    {"--lr nan", "--lr takes a number"},
    {"--epochs", "--epochs needs a value"},
    {"--epochs 2.5", "--epochs takes a whole number"},
    {"--hidden 0", "--hidden takes widths"},
    {"--hidden 10,", "--hidden"},
    {"--hidden 2000000", "--hidden takes widths"},
    {"--activation tanh", "--activation must be one of"},
    {"--device gpu", "--device takes a device index"},
    {"--gemm fast", "--gemm must be builtin or clblast"},
    {"--batch -3", "--batch value '-3' is out of range"},
    {"--quiet=1", "--quiet takes no value"},
    {"frobnicate", "unknown command 'frobnicate'"},
};

START_TEST(test_bad_flags_exit_2)
{
    ck_assert_int_eq(bin_run(bad_flags[_i].args), 2);
    ck_assert_msg(strstr(bin_err(), bad_flags[_i].needle) != NULL, "'%s': stderr was: %s",
                  bad_flags[_i].args, bin_err());
    ck_assert_msg(strstr(bin_err(), "--help") != NULL, "no pointer to --help: %s", bin_err());
    ck_assert_int_eq(count_lines(bin_err()), 1);
    ck_assert_int_eq(bin_out()[0], 0);
}
END_TEST

/* No OpenCL platform at all (an empty vendors folder for the ICD loader): --list-devices and
 * training on a device both print the one message, saying how to install a driver, and exit 1. */
START_TEST(test_no_platform_says_how_to_install)
{
    char env[128], args[512];
    snprintf(env, sizeof env, "OCL_ICD_VENDORS=%s", bin_dir());   /* a folder with no .icd file */
    ck_assert_int_eq(bin_run_env(env, "--list-devices"), 1);
    ck_assert_msg(strstr(bin_err(), "no OpenCL platform or device found") &&
                  strstr(bin_err(), "apt-get install pocl-opencl-icd") &&
                  strstr(bin_err(), "--device host"), "%s", bin_err());
    ck_assert_int_eq(count_lines(bin_err()), 1);
    char *listed = xstrdup(bin_err());
    snprintf(args, sizeof args, "--data %s --device 0 --epochs 1 --train-limit 100", data_dir());
    ck_assert_int_eq(bin_run_env(env, args), 1);
    ck_assert_str_eq(bin_err(), listed);
    free(listed);
}
END_TEST

/* A device index past the last one: one line naming it and the devices there are, exit 2. */
START_TEST(test_missing_device_names_the_devices)
{
    char args[512];
    snprintf(args, sizeof args, "--data %s --device 99 --epochs 1", data_dir());
    ck_assert_int_eq(bin_run(args), 2);
    ck_assert_msg(strstr(bin_err(), "there is no OpenCL device 99: ") &&
                  (strstr(bin_err(), "the only one is device 0") || strstr(bin_err(), "the devices are 0 to ")) &&
                  strstr(bin_err(), "--list-devices"), "%s", bin_err());
    ck_assert_int_eq(count_lines(bin_err()), 1);
}
END_TEST

START_TEST(test_truncated_data_exits_2)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/trunc && cp %s/t10k-* %s/train-labels-idx1-ubyte %s/trunc/ && head -c 5000 %s/train-images-idx3-ubyte > %s/trunc/train-images-idx3-ubyte",
             bin_dir(), data_dir(), data_dir(), bin_dir(), data_dir(), bin_dir());
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(bin_run("--data trunc --epochs 1"), 2);
    ck_assert_msg(strstr(bin_err(), "train-images-idx3-ubyte") != NULL, "%s", bin_err());
    ck_assert_int_eq(count_lines(bin_err()), 1);
    ck_assert_int_eq(bin_run("--data no-such-folder --epochs 1"), 2);
    ck_assert_msg(strstr(bin_err(), "no-such-folder") != NULL, "%s", bin_err());
}
END_TEST

/* A small run end to end: table, CSV log with the exact header, model, npy export; then --load
 * with --epochs 0 reports the same test accuracy. */
START_TEST(test_train_log_save_load_export)
{
    char args[1024];
    snprintf(args, sizeof args, "--data %s --train-limit 3000 --test-limit 700 --hidden 32 --epochs 4 "
             "--batch 100 --init he --log run.csv --save run.model --export-npy npy", data_dir());
    ck_assert_msg(bin_run(args) == 0, "stderr: %s", bin_err());
    const char *final = strstr(bin_out(), "test accuracy: ");
    ck_assert_msg(final != NULL, "%s", bin_out());
    double acc = atof(final + 15);
    ck_assert_msg(acc > 0.8, "4 epochs on 3000 images reach only %.4f", acc);
    char p[256];
    size_t len;
    snprintf(p, sizeof p, "%s/run.csv", bin_dir());
    char *csv = (char *)read_file(p, &len);
    ck_assert_ptr_nonnull(csv);
    ck_assert(strncmp(csv, "epoch,loss,mse,train_acc,test_acc,seconds\n", 42) == 0);
    ck_assert_int_eq(count_lines(csv), 5);
    /* The last row's test accuracy has at least 4 decimals and equals the final line's. */
    char *last = strrchr(csv, '\n');
    *last = 0;
    last = strrchr(csv, '\n') + 1;
    ck_assert(strncmp(last, "4,", 2) == 0);
    double row_acc;
    ck_assert_int_eq(sscanf(last, "%*[^,],%*[^,],%*[^,],%*[^,],%lf", &row_acc), 1);
    ck_assert(row_acc > acc - 1e-4 && row_acc < acc + 1e-4);
    free(csv);
    snprintf(p, sizeof p, "%s/npy/W1.npy", bin_dir());
    ck_assert_int_eq(access(p, R_OK), 0);
    snprintf(p, sizeof p, "%s/npy/b2.npy", bin_dir());
    ck_assert_int_eq(access(p, R_OK), 0);
    snprintf(args, sizeof args, "--data %s --test-limit 700 --load run.model --epochs 0", data_dir());
    ck_assert_msg(bin_run(args) == 0, "stderr: %s", bin_err());
    final = strstr(bin_out(), "test accuracy: ");
    ck_assert_ptr_nonnull(final);
    ck_assert_msg(atof(final + 15) > acc - 1e-4 && atof(final + 15) < acc + 1e-4,
                  "loaded model scores %s, trained %.4f", final, acc);
}
END_TEST

/* --plot without --log: the log goes to DIR/log.csv and both charts are PNG files. */
START_TEST(test_plot_flag_draws_charts)
{
    char args[512];
    snprintf(args, sizeof args, "--data %s --train-limit 800 --test-limit 200 --hidden 16 --epochs 3 --plot charts", data_dir());
    ck_assert_msg(bin_run(args) == 0, "stderr: %s", bin_err());
    const char *charts[] = {"accuracy.png", "mse.png"};
    char p[256];
    snprintf(p, sizeof p, "%s/charts/log.csv", bin_dir());
    ck_assert_msg(access(p, R_OK) == 0, "%s missing", p);
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/charts/%s", bin_dir(), charts[i]);
        assert_png(p, 0, 0);
    }
}
END_TEST

START_TEST(test_host_device_runs)
{
    char args[512];
    snprintf(args, sizeof args, "--data %s --device host --train-limit 500 --test-limit 100 --epochs 2", data_dir());
    ck_assert_msg(bin_run(args) == 0, "stderr: %s", bin_err());
    ck_assert(strstr(bin_out(), "host (plain C)") && strstr(bin_out(), "test accuracy: "));
}
END_TEST

START_TEST(test_kaggle_csv_trains)
{
    ck_assert_int_eq(bin_run("--version"), 0);
    char p[128];
    snprintf(p, sizeof p, "%s/train.csv", bin_dir());
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("label", f);
    for (int i = 0; i < 784; i++) fprintf(f, ",pixel%d", i);
    fputc('\n', f);
    for (int r = 0; r < 60; r++) {
        fprintf(f, "%d", r % 10);
        for (int i = 0; i < 784; i++) fprintf(f, ",%d", (i * 7 + r * 13) % 256 * (i % 10 == r % 10));
        fputc('\n', f);
    }
    fclose(f);
    ck_assert_msg(bin_run("--data train.csv --test-split 20 --epochs 3") == 0, "stderr: %s", bin_err());
    ck_assert_msg(strstr(bin_out(), "40 training, 20 test") != NULL, "%s", bin_out());
}
END_TEST

Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("binary");
    bin_fixture(tc);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_list_devices_shows_pocl);
    tcase_add_loop_test(tc, test_bad_flags_exit_2, 0, (int)(sizeof bad_flags / sizeof bad_flags[0]));
    tcase_add_test(tc, test_missing_device_names_the_devices);
    tcase_add_test(tc, test_no_platform_says_how_to_install);
    tcase_add_test(tc, test_truncated_data_exits_2);
    tcase_add_test(tc, test_train_log_save_load_export);
    tcase_add_test(tc, test_host_device_runs);
    tcase_add_test(tc, test_plot_flag_draws_charts);
    tcase_add_test(tc, test_kaggle_csv_trains);
    suite_add_tcase(s, tc);
    return s;
}
