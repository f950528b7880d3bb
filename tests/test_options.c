/* test_options.c: the flag table and its way into the trainer. In-process: the documented
 * defaults, every training flag parsed into its field, aliases and range errors. Through the
 * binary: every training flag set away from its default, and the saved model's settings and
 * weights equal to an in-process run of the same explicit configuration, to the bit (both on
 * the host back-end, which is deterministic). A flag that is parsed but not passed on, passed
 * to the wrong field or converted wrongly changes one of them. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "options.h"
#include "support.h"
#include "trainer.h"
#include "util.h"

/* Parses a space-separated command line (after the program name) into o; returns the rc. */
static int parse_line(options *o, const char *line)
{
    static char buf[2048];
    static char *argv[128];
    snprintf(buf, sizeof buf, "%s", line);
    int argc = 0;
    argv[argc++] = "cltrain";
    for (char *tok = strtok(buf, " "); tok && argc < 127; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    options_defaults(o);
    return options_parse(o, argc, argv);
}

START_TEST(test_defaults_are_the_documented_ones)
{
    options o;
    options_defaults(&o);
    ck_assert_int_eq(o.command, CMD_TRAIN);
    ck_assert_int_eq(o.n_hidden, 1);
    ck_assert_int_eq(o.hidden[0], 10);
    ck_assert_int_eq(o.act, ACT_RELU);
    ck_assert_int_eq(o.init, INIT_UNIFORM);
    ck_assert_int_eq(o.epochs, -1);
    ck_assert(o.lr == 0.1 && o.batch == 0 && o.seed == 1);
    ck_assert_int_eq(o.optimizer, OPT_SGD);
    ck_assert(o.momentum == 0.9 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8);
    ck_assert(o.weight_decay == 0 && o.warmup == 0 && o.lr_min == 0 && o.dropout == 0);
    ck_assert_int_eq(o.schedule, SCHED_CONSTANT);
    ck_assert_int_eq(o.early_stop, 0);
    ck_assert_int_eq(o.val, 0);
    ck_assert_int_eq(o.checkpoint_every, 1);
    ck_assert_int_eq(o.test_split, 1000);
    ck_assert_str_eq(o.data, "data/mnist");
}
END_TEST

START_TEST(test_every_training_flag_reaches_its_field)
{
    options o;
    ck_assert_int_eq(parse_line(&o, "--hidden 13,7,5 --activation sigmoid --init xavier --epochs 3 "
                                    "--lr 0.02 --batch 37 --seed 18446744073709551615 --optimizer nesterov "
                                    "--momentum 0.7 --beta1 0.8 --beta2 0.95 --eps 1e-6 --weight-decay 0.003 "
                                    "--lr-schedule onecycle --warmup 0.5 --lr-min 0.001 --dropout 0.15 "
                                    "--early-stop 4 --val 40 --train-limit 300 --test-limit 50 "
                                    "--checkpoint-every 2 --device host"), 0);
    ck_assert_int_eq(o.n_hidden, 3);
    ck_assert(o.hidden[0] == 13 && o.hidden[1] == 7 && o.hidden[2] == 5);
    ck_assert_int_eq(o.act, ACT_SIGMOID);
    ck_assert_int_eq(o.init, INIT_XAVIER);
    ck_assert_int_eq(o.epochs, 3);
    ck_assert(o.lr == 0.02 && o.batch == 37);
    ck_assert(o.seed == UINT64_MAX);
    ck_assert_int_eq(o.optimizer, OPT_NESTEROV);
    ck_assert(o.momentum == 0.7 && o.beta1 == 0.8 && o.beta2 == 0.95 && o.eps == 1e-6);
    ck_assert(o.weight_decay == 0.003 && o.warmup == 0.5 && o.lr_min == 0.001 && o.dropout == 0.15);
    ck_assert_int_eq(o.schedule, SCHED_ONECYCLE);
    ck_assert(o.early_stop == 4 && o.val == 40 && o.train_limit == 300 && o.test_limit == 50);
    ck_assert(o.checkpoint_every == 2 && o.device_host);
    options_free(&o);
    /* PyTorch's name, and the choices by their index. */
    ck_assert_int_eq(parse_line(&o, "--batch-size 64 --optimizer adamw --lr-schedule step"), 0);
    ck_assert(o.batch == 64 && o.optimizer == OPT_ADAMW && o.schedule == SCHED_STEP);
    options_free(&o);
    ck_assert_int_eq(parse_line(&o, "--optimizer momentum --lr-schedule cosine --init he --activation relu"), 0);
    ck_assert(o.optimizer == OPT_MOMENTUM && o.schedule == SCHED_COSINE && o.init == INIT_HE && o.act == ACT_RELU);
    options_free(&o);
    ck_assert_int_eq(parse_line(&o, "--optimizer adam --optimizer sgd"), 0);
    ck_assert_int_eq(o.optimizer, OPT_SGD);   /* the last one wins */
    options_free(&o);
}
END_TEST

START_TEST(test_out_of_range_values_are_refused)
{
    static const char *bad[] = {"--dropout 0.96", "--dropout -0.1", "--momentum 1", "--lr 0",
                                "--eps 0", "--weight-decay 2", "--batch -1", "--epochs -2",
                                "--optimizer rmsprop", "--lr-schedule linear", "--lr abc",
                                "--hidden 0", "--early-stop 0", "--beta2 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        options o;
        fflush(stderr);
        int keep = dup(2), null = open("/dev/null", O_WRONLY);   /* the expected messages */
        dup2(null, 2);
        int rc = parse_line(&o, bad[i]);
        fflush(stderr);
        dup2(keep, 2);
        close(keep);
        close(null);
        ck_assert_msg(rc == -1, "'%s' was accepted", bad[i]);
        options_free(&o);
    }
}
END_TEST

/* ---- through the binary ------------------------------------------------------------------- */

typedef struct {
    const char *flags;       /* the training flags, every one away from its default */
    train_config cfg;        /* the same configuration, written out */
    init_kind init;
    long val;
} wiring_case;

static const int wiring_hidden[2] = {13, 7};

static void wiring_cases(wiring_case *w)
{
    model_arch a;
    ck_assert_int_eq(model_arch_init(&a, 784, wiring_hidden, 2, 10, ACT_SIGMOID), 0);
    w[0] = (wiring_case){
        "--hidden 13,7 --activation sigmoid --init xavier --epochs 3 --lr 0.02 --batch 37 --seed 99 "
        "--optimizer nesterov --momentum 0.7 --weight-decay 0.003 --lr-schedule cosine --warmup 0.5 "
        "--lr-min 0.001 --dropout 0.15 --val 40",
        {.arch = a, .batch = 37, .seed = 99, .optimizer = OPT_NESTEROV, .lr = 0.02f, .momentum = 0.7f,
         .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.003f, .schedule = SCHED_COSINE,
         .warmup = 0.5, .lr_min = 0.001, .total_epochs = 3, .dropout = 0.15f},
        INIT_XAVIER, 40};
    ck_assert_int_eq(model_arch_init(&a, 784, wiring_hidden, 2, 10, ACT_RELU), 0);
    w[1] = (wiring_case){
        "--hidden 13,7 --init he --epochs 2 --lr 0.004 --batch-size 23 --seed 7 --optimizer adamw "
        "--beta1 0.8 --beta2 0.95 --eps 1e-6 --weight-decay 0.05 --lr-schedule onecycle --lr-min 0.0002 "
        "--dropout 0.3",
        {.arch = a, .batch = 23, .seed = 7, .optimizer = OPT_ADAMW, .lr = 0.004f, .momentum = 0.9f,
         .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-6f, .weight_decay = 0.05f, .schedule = SCHED_ONECYCLE,
         .lr_min = 0.0002, .total_epochs = 2, .dropout = 0.3f},
        INIT_HE, 0};
}

START_TEST(test_flags_reach_the_trainer)
{
    wiring_case cases[2];
    wiring_cases(cases);
    const wiring_case *w = &cases[_i];
    char dir[64], args[2048], p[128], err[1024];
    work_dir_make(dir, sizeof dir, "options");
    snprintf(args, sizeof args, "--device host --data %s --train-limit 300 --test-limit 50 %s "
             "--save w.model --quiet", mnist_dir(), w->flags);
    char *out = NULL, *errs = NULL;
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &errs) == 0, "%s", errs);
    snprintf(p, sizeof p, "%s/w.model", dir);
    model_file m;
    ck_assert_msg(model_load(p, &m, err, sizeof err) == 0, "%s", err);

    /* The settings the model file keeps. */
    const train_config *c = &w->cfg;
    ck_assert_int_eq(m.arch.n_layers, 3);
    ck_assert(m.arch.sizes[1] == 13 && m.arch.sizes[2] == 7 && m.arch.act == c->arch.act);
    ck_assert_int_eq(m.init, w->init);
    ck_assert_int_eq(m.optimizer, c->optimizer);
    ck_assert(m.lr == c->lr && m.momentum == c->momentum && m.beta1 == c->beta1 && m.beta2 == c->beta2);
    ck_assert(m.eps == c->eps && m.weight_decay == c->weight_decay && m.dropout == c->dropout);
    ck_assert(m.batch == (uint64_t)c->batch && m.seed == c->seed);
    ck_assert_uint_eq(m.epochs_done, (uint64_t)c->total_epochs);
    ck_assert_uint_eq(m.n_train, 300 - (uint64_t)w->val);

    /* The same run in-process: the first 300 training images less the last `val`, the first
     * 50 test images, the same initialisation, epochs 1..total. */
    dataset_pair mn;
    mnist_load(&mn);
    dataset_truncate(&mn.train, 300);
    dataset_truncate(&mn.test, 50);
    dataset val = mn.train;
    size_t keep = 300 - (size_t)w->val;
    val.n = (size_t)w->val;
    val.pixels = mn.train.pixels + keep * 784;
    val.labels = mn.train.labels + keep;
    mn.train.n = keep;
    float *p0 = xmalloc(c->arch.n_params * sizeof(float), "p"), *got = xmalloc(c->arch.n_params * sizeof(float), "p");
    model_init_params(&c->arch, w->init, c->seed, p0);
    backend *be = backend_host_create();
    trainer *t = trainer_create(be, c, &mn.train, &mn.test, w->val ? &val : NULL, p0);
    epoch_metrics em;
    for (long e = 1; e <= c->total_epochs; e++) trainer_epoch(t, e, &em);
    trainer_read_params(t, got);
    ck_assert_msg(memcmp(got, m.params, c->arch.n_params * sizeof(float)) == 0,
                  "case %d: the binary's weights differ from the in-process run (max %g)", _i,
                  rel_err(m.params, got, c->arch.n_params));
    ck_assert_int_eq(m.n_state, trainer_state_count(t));
    ck_assert_uint_eq(m.step, (uint64_t)trainer_step_count(t));
    trainer_destroy(t);
    backend_destroy(be);
    mn.train.n = 300;
    dataset_pair_free(&mn);
    free(p0); free(got);
    model_file_free(&m);
    free(out); free(errs);
    work_dir_remove(dir);
}
END_TEST

Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_defaults_are_the_documented_ones);
    tcase_add_test(tc, test_every_training_flag_reaches_its_field);
    tcase_add_test(tc, test_out_of_range_values_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("wiring");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_flags_reach_the_trainer, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
