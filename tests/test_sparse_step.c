/* test_sparse_step.c: a network of one hidden layer trained in one pass over the images'
 * sparse copy (sparse_step, kernels/sparse_step.cl). Its gradients and loss against the
 * float64 reference on real MNIST rows of awkward counts (one row, rows not a multiple of a
 * slice, many slices), hidden widths and classes not a multiple of 16, both activations; with
 * dropout against the host back-end's per-layer calls (the same masks); mini-batches through
 * the shuffle index and every optimizer against the host; the shapes and plans it declines,
 * writing nothing; and through the binary, its profile, the host's accuracy and a resumed run
 * bit-identical to an uninterrupted one. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_testing.h"
#include "model.h"
#include "ref_mlp.h"
#include "support.h"
#include "trainer.h"
#include "util.h"

static train_config config(const model_arch *a, long batch, float lr, optimizer_kind opt,
                           float dropout)
{
    train_config c = test_train_config(a, batch, lr);
    c.seed = 7;
    c.optimizer = opt;
    c.dropout = dropout;
    return c;
}

/* The first m training images of MNIST, labels taken modulo `classes`, and 1,037 test images
 * (the evaluation's slices take at least 512 rows: two whole and a partial one). */
static void load_rows(dataset_pair *mn, size_t m, int classes)
{
    mnist_load(mn);
    dataset_truncate(&mn->train, m);
    dataset_truncate(&mn->test, 1037);
    for (size_t i = 0; i < mn->train.n; i++) mn->train.labels[i] = (uint8_t)(mn->train.labels[i] % classes);
    for (size_t i = 0; i < mn->test.n; i++) mn->test.labels[i] = (uint8_t)(mn->test.labels[i] % classes);
    mn->train.classes = mn->test.classes = classes;
}

/* One epoch at learning rate 0 (the parameters stay) and its metrics; then the gradient at
 * those parameters into grads (n_params floats: the epoch's pass updates in place and writes
 * none), and an evaluation of both sets into *ev; *passes gets the epoch's sparse_step calls. */
static void epoch_gradient(backend *be, const model_arch *a, const dataset_pair *mn, long batch,
                           float dropout, const float *params, float *grads, epoch_metrics *m,
                           epoch_metrics *ev, uint64_t *passes)
{
    train_config cfg = config(a, batch, 0.0f, OPT_SGD, dropout);
    uint64_t before = backend_cl_sparse_passes(be);
    trainer *t = trainer_create(be, &cfg, &mn->train, &mn->test, NULL, params);
    trainer_epoch(t, 1, m);
    *passes = backend_cl_sparse_passes(be) - before;
    trainer_gradients(t, 0, (int)mn->train.n);
    trainer_read_grads(t, grads);
    trainer_evaluate(t, ev);
    trainer_destroy(t);
}

typedef struct {
    int m, hidden, classes;
    activation act;
} net_shape;

/* Slices take at least 512 rows (backend_cl.c): 513 and 1100 rows end in a partial one, 4097
 * rows make several on any machine. */
static const net_shape shapes[] = {
    {1, 1, 2, ACT_RELU},   {37, 10, 10, ACT_RELU},     {513, 13, 7, ACT_SIGMOID},
    {1100, 16, 16, ACT_RELU}, {4097, 10, 10, ACT_SIGMOID}, {4097, 5, 3, ACT_RELU},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

START_TEST(test_against_float64)
{
    const net_shape *s = &shapes[_i];
    if (test_quick() && s->m > 1100) return;   /* Oclgrind: the partial and sliced cases still run */
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 784, &s->hidden, 1, s->classes, s->act), 0);
    dataset_pair mn;
    load_rows(&mn, (size_t)s->m, s->classes);
    float *p = xmalloc(a.n_params * sizeof(float), "p"), *g = xmalloc(a.n_params * sizeof(float), "g");
    model_init_params(&a, INIT_UNIFORM, 3 + (uint64_t)_i, p);
    for (size_t i = 0; i < a.n_params; i++) g[i] = NAN;
    backend *be = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    epoch_metrics met, ev;
    uint64_t passes;
    epoch_gradient(be, &a, &mn, 0, 0.0f, p, g, &met, &ev, &passes);
    ck_assert_msg(passes == 1, "sparse_step ran %llu times for one full-batch step", (unsigned long long)passes);

    double *pd = xmalloc(a.n_params * sizeof(double), "p"), *gd = xmalloc(a.n_params * sizeof(double), "g");
    for (size_t i = 0; i < a.n_params; i++) pd[i] = p[i];
    double loss = ref_loss_grad(&a, pd, mn.train.pixels, mn.train.labels, mn.train.n, gd, NULL);
    float *gref = xmalloc(a.n_params * sizeof(float), "g");
    for (size_t i = 0; i < a.n_params; i++) gref[i] = (float)gd[i];
    /* float32 sums of at most 512 rows a slice, then the slices (and up to ~300 nonzeros a
     * row): worst case about 8e-5 of the sum of the terms' sizes, typically sqrt of that
     * count times 6e-8; 1e-4 of the largest gradient while a wrong row, lane, scale or mask
     * errs by O(1). */
    double err = rel_err(g, gref, a.n_params);
    ck_assert_msg(err < 1e-4, "m %d %d-%d act %d: gradient differs from float64 by %g", s->m,
                  s->hidden, s->classes, (int)s->act, err);
    ck_assert_msg(fabs(met.loss - loss) <= 1e-5 * (1.0 + loss), "loss %.9g, float64 %.9g", met.loss, loss);
    /* The evaluation (sparse_step without its backward half) computes the training pass's
     * forward: the same rows. */
    ck_assert_msg(fabs(ev.loss - loss) <= 1e-5 * (1.0 + loss), "evaluated loss %.9g, float64 %.9g", ev.loss, loss);
    ck_assert_msg(ev.train_acc == met.train_acc, "evaluated accuracy %.6f, trained %.6f", ev.train_acc, met.train_acc);
    backend_destroy(be);
    free(p); free(g); free(pd); free(gd); free(gref);
    dataset_pair_free(&mn);
}
END_TEST

/* With dropout the reference is the host back-end: the same (seed, stream) draws the same
 * masks, in the forward pass and on dA. */
START_TEST(test_dropout_matches_host)
{
    const int hidden = 11, m = test_quick() ? 600 : 2000;
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 784, &hidden, 1, 10, _i ? ACT_SIGMOID : ACT_RELU), 0);
    dataset_pair mn;
    load_rows(&mn, (size_t)m, 10);
    float *p = xmalloc(a.n_params * sizeof(float), "p");
    float *gh = xmalloc(a.n_params * sizeof(float), "g"), *gc = xmalloc(a.n_params * sizeof(float), "g");
    model_init_params(&a, INIT_HE, 5, p);
    backend *host = backend_host_create(), *cl = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    epoch_metrics mh, mc, eh, ec;
    uint64_t passes;
    epoch_gradient(host, &a, &mn, 0, 0.3f, p, gh, &mh, &eh, &passes);
    epoch_gradient(cl, &a, &mn, 0, 0.3f, p, gc, &mc, &ec, &passes);
    ck_assert_msg(passes == 1, "sparse_step did not run");
    double err = rel_err(gc, gh, a.n_params);
    ck_assert_msg(err < 1e-4, "dropout: gradient differs from the host by %g", err);
    ck_assert_msg(fabs(mc.loss - mh.loss) <= 1e-5 * (1.0 + mh.loss), "loss %.9g, host %.9g", mc.loss, mh.loss);
    /* The evaluations, without dropout: a near tie may move one image. */
    ck_assert_msg(fabs(ec.loss - eh.loss) <= 1e-5 * (1.0 + eh.loss), "evaluated loss %.9g, host %.9g", ec.loss, eh.loss);
    ck_assert_msg(fabs(ec.test_acc - eh.test_acc) <= 1.0 / 1037 + 1e-9, "test accuracy %.6f, host %.6f",
                  ec.test_acc, eh.test_acc);
    /* Without the mask the gradient is another one: the check above can fail. */
    float *g0 = xmalloc(a.n_params * sizeof(float), "g");
    epoch_gradient(cl, &a, &mn, 0, 0.0f, p, g0, &mc, &ec, &passes);
    ck_assert_msg(rel_err(g0, gh, a.n_params) > 1e-2, "dropout changed nothing");
    backend_destroy(host);
    backend_destroy(cl);
    free(p); free(gh); free(gc); free(g0);
    dataset_pair_free(&mn);
}
END_TEST

/* Trains with a back-end and returns the parameters. */
static float *train(backend *be, const model_arch *a, const dataset_pair *mn, long batch,
                    long epochs, float lr, optimizer_kind opt, float dropout)
{
    float *p = xmalloc(a->n_params * sizeof(float), "p");
    model_init_params(a, INIT_HE, 1, p);
    train_config cfg = config(a, batch, lr, opt, dropout);
    trainer *t = trainer_create(be, &cfg, &mn->train, &mn->test, NULL, p);
    epoch_metrics m;
    for (long e = 1; e <= epochs; e++) trainer_epoch(t, e, &m);
    ck_assert(isfinite(m.loss));
    trainer_read_params(t, p);
    trainer_destroy(t);
    return p;
}

/* Every optimizer, full batch; and mini-batches above the fused step's 1,024 rows, whose rows
 * sparse_step reads through the shuffle index (labels gathered beside them). sparse_step_sum
 * applies the update itself, with the formulas of the host's (optimizer.cl), and writes the
 * next step's transposed W1, so every step after the first checks that copy too; the
 * parameters differ only by the gradients' rounding. */
START_TEST(test_optimizers_and_minibatches_match_host)
{
    static const optimizer_kind opts[] = {OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM, OPT_ADAMW};
    const optimizer_kind opt = opts[_i];
    const int hidden = 10;
    const size_t m = test_quick() ? 1200 : 3000;
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 784, &hidden, 1, 10, ACT_RELU), 0);
    dataset_pair mn;
    load_rows(&mn, m, 10);
    float lr = opt == OPT_ADAM || opt == OPT_ADAMW ? 0.002f : 0.1f;
    backend *host = backend_host_create(), *cl = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    for (int mini = 0; mini < 2; mini++) {
        long batch = mini ? 1100 : 0, epochs = mini ? 2 : 3;
        uint64_t before = backend_cl_sparse_passes(cl);
        float *ph = train(host, &a, &mn, batch, epochs, lr, opt, mini ? 0.2f : 0.0f);
        float *pc = train(cl, &a, &mn, batch, epochs, lr, opt, mini ? 0.2f : 0.0f);
        uint64_t steps = (uint64_t)epochs * (batch ? (m + (size_t)batch - 1) / (size_t)batch : 1);
        ck_assert_msg(backend_cl_sparse_passes(cl) - before == steps, "optimizer %d batch %ld: %llu of %llu steps in sparse_step",
                      (int)opt, batch, (unsigned long long)(backend_cl_sparse_passes(cl) - before),
                      (unsigned long long)steps);
        /* A few steps of float32 gradients differing by ~1e-6 relative: Adam's normalised
         * step turns that into at most a few ulps of the rate per step. */
        double err = rel_err(pc, ph, a.n_params);
        ck_assert_msg(err < 1e-4, "optimizer %d batch %ld: parameters differ from the host by %g",
                      (int)opt, batch, err);
        free(ph);
        free(pc);
    }
    backend_destroy(host);
    backend_destroy(cl);
    dataset_pair_free(&mn);
}
END_TEST

/* Two hidden layers, a hidden width or class count over 16, the GPU family or --step layers:
 * the trainer keeps the per-layer path, and the operation, asked anyway, writes nothing. */
START_TEST(test_declines)
{
    dataset_pair mn;
    load_rows(&mn, 300, 10);
    struct { int hidden[2], n_hidden, classes; kernel_family fam; step_choice step; } cases[] = {
        {{10, 10}, 2, 10, KERNELS_CPU, STEP_AUTO}, {{17, 0}, 1, 10, KERNELS_CPU, STEP_AUTO},
        {{10, 0}, 1, 10, KERNELS_GPU, STEP_AUTO}, {{10, 0}, 1, 10, KERNELS_CPU, STEP_LAYERS},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        backend *be = test_cl_backend_with(&(backend_cl_options){
            .gemm = GEMM_BUILTIN, .kernels = cases[c].fam, .step = cases[c].step});
        model_arch a;
        ck_assert_int_eq(model_arch_init(&a, 784, cases[c].hidden, cases[c].n_hidden, cases[c].classes, ACT_RELU), 0);
        float *p = train(be, &a, &mn, 0, 1, 0.1f, OPT_SGD, 0.0f);
        ck_assert_msg(backend_cl_sparse_passes(be) == 0, "case %zu took sparse_step", c);
        free(p);
        backend_destroy(be);
    }
    /* Asked directly with a plan that is not its own (no step_classes), or a width over 16. */
    backend *be = test_cl_backend_kernels(GEMM_BUILTIN, KERNELS_CPU);
    size_t big = 784 * 20 + 500;
    float *poison = xmalloc(big * sizeof(float), "poison");
    for (size_t i = 0; i < big; i++) poison[i] = NAN;
    tensor *t = be->ops->alloc(be, DT_F32, big, "t"), *tl = be->ops->alloc(be, DT_U8, 300, "labels");
    tensor *x = be->ops->alloc(be, DT_U8, 300 * 784, "images");
    be->ops->write(be, t, 0, big, poison);
    be->ops->write(be, tl, 0, 300, mn.train.labels);
    be->ops->write_images(be, x, 784, mn.train.pixels);
    for (int w = 0; w < 2; w++) {
        layer_shape s = {.rows = 300, .k = 784, .n = w ? 17 : 10, .input = DT_U8, .density = 0.19,
                         .act = ACT_RELU, .step_classes = w ? 10 : 0};
        sparse_step_args sa = {.plan = be->ops->plan_layer(be, &s), .m = 300, .k = 784, .h = s.n,
                               .n = 10, .x = x, .alpha = 1.0f / 255.0f, .params = t, .w2_off = 784 * 17,
                               .b2_off = 784 * 17 + 170, .labels = tl, .scale = 1.0f / 300,
                               .stats = t, .grads = t, .act = ACT_RELU, .a_scale = 1.0f};
        ck_assert_msg(!be->ops->sparse_step(be, &sa), "hidden %d taken", s.n);
    }
    float *back = xmalloc(big * sizeof(float), "back");
    be->ops->read(be, t, 0, big, back);
    for (size_t i = 0; i < big; i++) ck_assert_msg(isnan(back[i]), "declined, yet wrote [%zu]", i);
    backend *host = backend_host_create();
    ck_assert_msg(host->ops->sparse_step == NULL, "the host has a sparse_step");   /* the reference */
    backend_destroy(host);
    be->ops->release(be, t);
    be->ops->release(be, tl);
    be->ops->release(be, x);
    backend_destroy(be);
    free(poison);
    free(back);
    dataset_pair_free(&mn);
}
END_TEST

/* Through the binary: the profile shows the kernel, the accuracy is the host's, and a run
 * stopped after 3 epochs and resumed to 6 ends bit-identical to 6 straight (Adam's state,
 * dropout's per-step masks). */
START_TEST(test_binary_profile_accuracy_resume)
{
    if (test_quick()) return;   /* Oclgrind: the kernel's cases above are the check there */
    char args[700], acc_cl[64] = "", acc_host[64] = "";
    const char *run = "--epochs 4 --train-limit 5000 --test-limit 1000 --dropout 0.1";
    snprintf(args, sizeof args, "--data %s %s --kernels cpu --profile", mnist_dir(), run);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    ck_assert_msg(strstr(bin_out(), "\nsparse_step ") != NULL, "no sparse_step launch in:\n%s", bin_out());
    ck_assert_msg(strstr(bin_out(), "sparse_weights_csc") == NULL, "the CSC kernel ran:\n%s", bin_out());
    /* Two launches a step: the update is sparse_step_sum's, and W1's transposed copy too. */
    ck_assert_msg(strstr(bin_out(), "\nupdate_") == NULL && strstr(bin_out(), "transpose") == NULL,
                  "an update or a transposition of its own ran:\n%s", bin_out());
    const char *sum = strstr(bin_out(), "\nsparse_step_sum ");
    ck_assert_msg(sum && atoi(sum + strlen("\nsparse_step_sum ")) == 4, "not one sum a step:\n%s", bin_out());
    const char *p = strstr(bin_out(), "test accuracy: ");
    ck_assert_ptr_nonnull(p);
    sscanf(p, "test accuracy: %63s", acc_cl);
    snprintf(args, sizeof args, "--data %s %s --device host", mnist_dir(), run);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    p = strstr(bin_out(), "test accuracy: ");
    ck_assert_ptr_nonnull(p);
    sscanf(p, "test accuracy: %63s", acc_host);
    ck_assert_msg(fabs(atof(acc_cl) - atof(acc_host)) <= 0.003, "OpenCL %s, host %s", acc_cl, acc_host);

    const char *recipe = "--train-limit 3000 --test-limit 300 --optimizer adam --lr 0.01 --dropout 0.2 --quiet";
    snprintf(args, sizeof args, "--data %s %s --epochs 6 --save full.model", mnist_dir(), recipe);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    snprintf(args, sizeof args, "--data %s %s --epochs 3 --checkpoint ck.model", mnist_dir(), recipe);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    snprintf(args, sizeof args, "--data %s %s --epochs 6 --checkpoint ck.model --resume ck.model --save res.model",
             mnist_dir(), recipe);
    ck_assert_msg(bin_run(args) == 0, "%s", bin_err());
    char fa[600], fb[600];
    snprintf(fa, sizeof fa, "%s/full.model", bin_dir());
    snprintf(fb, sizeof fb, "%s/res.model", bin_dir());
    size_t n1, n2;
    float *a = test_model_params(fa, &n1), *b = test_model_params(fb, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, n1 * sizeof(float)) == 0, "resumed weights differ from the uninterrupted run");
    free(a);
    free(b);
}
END_TEST

Suite *sparse_step_suite(void)
{
    Suite *s = suite_create("sparse_step");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_against_float64, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_dropout_matches_host, 0, 2);
    tcase_add_loop_test(tc, test_optimizers_and_minibatches_match_host, 0, 5);
    tcase_add_test(tc, test_declines);
    suite_add_tcase(s, tc);
    TCase *bin = tcase_create("binary");
    tcase_set_timeout(bin, 300);
    bin_fixture(bin);
    tcase_add_test(bin, test_binary_profile_accuracy_resume);
    suite_add_tcase(s, bin);
    return s;
}
