/* support.h: helpers shared by the suites: synthetic data, the real MNIST, back-ends. */
#ifndef CLTRAIN_TEST_SUPPORT_H
#define CLTRAIN_TEST_SUPPORT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "dataset.h"
#include "trainer.h"

/* n images of side x side random pixels (about half blank, as in MNIST) and random labels
 * 0..9, from a fixed seed. */
void synthetic_dataset(dataset *d, size_t n, int side, uint64_t seed);
/* The real MNIST (CLTRAIN_DATA, default data/mnist); fails the test when it is missing. */
void mnist_load(dataset_pair *p);
/* A training configuration for arch a: SGD at rate lr, seed 1, a constant schedule over 10
 * epochs, PyTorch's defaults for the other optimizers' constants, no dropout. */
train_config test_train_config(const model_arch *a, long batch, float lr);
/* The OpenCL back-end under test: device CLTRAIN_TEST_DEVICE (default 0). */
backend *test_cl_backend(gemm_kind gemm);
/* CLTRAIN_TEST_QUICK set and not 0: the suites' small sizes (make test-oclgrind). */
bool test_quick(void);
/* The parameters of the model file at path (the test fails if it does not load), malloc'd;
 * *n gets their count. */
float *test_model_params(const char *path, size_t *n);
/* The same with the layer kernels of one family forced (--kernels). */
backend *test_cl_backend_kernels(gemm_kind gemm, kernel_family kernels);
/* The same with options o (any of --gemm, --kernels, --step, profiling). */
backend *test_cl_backend_with(const backend_cl_options *o);
/* max |a - b| / max |b| over n floats (b the reference; 1e-30 floor on the denominator). */
double rel_err(const float *a, const float *b, size_t n);
/* Path of the real binary (CLTRAIN_BIN, default build/cltrain). */
const char *cltrain_bin(void);
/* Absolute path of the MNIST folder (CLTRAIN_DATA, default data/mnist). */
const char *mnist_dir(void);

/* Runs `ENV cltrain ARGS` through sh in dir (ENV: assignments or "" / NULL), stdout and stderr
 * captured into *out and *err (freed and replaced); returns the exit status. Fails the test
 * when the binary dies from a signal (a crash, or a sanitizer's abort). */
int run_cltrain(const char *dir, const char *env, const char *args, char **out, char **err);

/* A fresh folder /tmp/cltrain-TAG-XXXXXX for a test's files, and its removal with everything
 * in it, folders a test made unreadable included ("" is left alone). */
void work_dir_make(char *dir, size_t len, const char *tag);
void work_dir_remove(const char *dir);

/* The harness of a test case that drives the binary: bin_fixture adds the checked fixture
 * that gives each test a fresh work_dir (bin_dir()) and removes it after the test; bin_run
 * runs `cltrain ARGS` there (bin_run_env: with ENV assignments first) and returns its exit
 * status, its stdout and stderr kept in bin_out() and bin_err() until the next run. */
void bin_fixture(TCase *tc);
const char *bin_dir(void);
int bin_run(const char *args);
int bin_run_env(const char *env, const char *args);
const char *bin_out(void);
const char *bin_err(void);

/* Fails the test unless path is a PNG file (its signature, and a header stb_image reads) of
 * w x h pixels; w <= 0: of any size. */
void assert_png(const char *path, int w, int h);

#endif
