/* test_resume.c: checkpoints survive a kill and a Ctrl-C: a run stopped and resumed ends with
 * weights bit-identical to an uninterrupted run (same seed, same device). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "support.h"
#include "trainer.h"
#include "util.h"

static char dir[64];

/* The recipe: Adam (state to restore), mini-batches (a shuffle per epoch), dropout (a mask per
 * step), so that any state the checkpoint forgot shows in the weights. */
#define RECIPE "--train-limit 1500 --test-limit 200 --hidden 24 --batch 30 --optimizer adam " \
               "--lr 0.003 --init he --dropout 0.2 --epochs 40 --quiet"

static pid_t start(const char *extra, const char *out_name)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec %s --data %s " RECIPE " %s", cltrain_bin(), mnist_dir(), extra);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(dir) != 0) _exit(127);
        int fd = open(out_name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int finish(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static void wait_for_file(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    for (int i = 0; i < 6000; i++) {
        if (access(p, F_OK) == 0) return;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    ck_abort_msg("%s never appeared", p);
}

static float *params_of(const char *name, size_t *n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return test_model_params(p, n);
}

/* A fresh folder for each test (a checked fixture, in the test's own process). */
static void make_dir(void) { work_dir_make(dir, sizeof dir, "resume"); }
static void remove_dir(void) { work_dir_remove(dir); }

/* The uninterrupted run the resumed ones must reproduce: full.model. */
static void train_full(void)
{
    ck_assert_int_eq(finish(start("--save full.model", "full.txt")), 0);
}

static void check_same_as_full(const char *name)
{
    size_t n1, n2;
    float *a = params_of("full.model", &n1), *b = params_of(name, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, n1 * sizeof(float)) == 0, "resumed weights differ from the uninterrupted run");
    free(a);
    free(b);
}

START_TEST(test_kill_between_checkpoints_then_resume)
{
    train_full();
    pid_t pid = start("--checkpoint ck.model --checkpoint-every 3", "run1.txt");
    wait_for_file("ck.model");
    kill(pid, SIGKILL);
    ck_assert_int_eq(finish(pid), 128 + SIGKILL);
    size_t n;
    free(params_of("ck.model", &n));   /* the checkpoint left by the killed run is whole */
    ck_assert_int_eq(finish(start("--checkpoint ck.model --checkpoint-every 3 --resume ck.model --save res.model", "run2.txt")), 0);
    check_same_as_full("res.model");
}
END_TEST

START_TEST(test_sigint_checkpoints_mid_epoch_then_resume)
{
    train_full();
    pid_t pid = start("--checkpoint ck.model --checkpoint-every 1", "run1.txt");
    wait_for_file("ck.model");
    kill(pid, SIGINT);
    int rc = finish(pid);
    char p[128];
    size_t len;
    snprintf(p, sizeof p, "%s/run1.txt", dir);
    char *text = (char *)read_file(p, &len);
    /* The premise: the signal landed during the run (40 epochs, the first checkpoint after
     * one). A run that ended first proves nothing, and fails rather than passes. */
    ck_assert_msg(rc != 0, "the run ended before SIGINT arrived: nothing was interrupted");
    ck_assert_int_eq(rc, 130);
    ck_assert_msg(strstr(text, "--resume ck.model") != NULL, "%s", text);
    free(text);
    ck_assert_int_eq(finish(start("--checkpoint ck.model --resume ck.model --save res.model", "run2.txt")), 0);
    check_same_as_full("res.model");
}
END_TEST

/* A checkpoint carries the early-stopping state: a run stopped at epoch 7 and resumed stops at
 * the same epoch as the uninterrupted run (epoch 8 with this recipe). */
START_TEST(test_early_stopping_state_survives_resume)
{
    char *out = NULL, *err = NULL, args[1024];
    const char *recipe = "--train-limit 2000 --test-limit 500 --val 500 --hidden 32 --batch 50 "
                         "--lr 0.2 --init he --early-stop 2";
    snprintf(args, sizeof args, "--data %s %s --epochs 30", mnist_dir(), recipe);
    ck_assert_int_eq(run_cltrain(dir, NULL, args, &out, &err), 0);
    const char *stop = strstr(out, "early stop:");
    ck_assert_msg(stop != NULL, "the recipe no longer stops early: %s", out);
    const char *after = strstr(stop, "after ");
    ck_assert_ptr_nonnull(after);
    long uninterrupted = strtol(after + 6, NULL, 10);
    ck_assert_int_lt(uninterrupted, 30);
    snprintf(args, sizeof args, "--data %s %s --epochs %ld --checkpoint ck.model", mnist_dir(), recipe,
             uninterrupted - 1);
    ck_assert_int_eq(run_cltrain(dir, NULL, args, &out, &err), 0);
    snprintf(args, sizeof args, "--data %s %s --epochs 30 --checkpoint ck.model --resume ck.model",
             mnist_dir(), recipe);
    ck_assert_int_eq(run_cltrain(dir, NULL, args, &out, &err), 0);
    stop = strstr(out, "early stop:");
    ck_assert_msg(stop != NULL, "the resumed run did not stop early: %s", out);
    after = strstr(stop, "after ");
    ck_assert_int_eq(strtol(after + 6, NULL, 10), uninterrupted);
    free(out);
    free(err);
}
END_TEST

/* Resuming with another optimizer: a momentum checkpoint continued with Adam. Adam's moments
 * were never in the checkpoint, so Adam starts fresh: zero moments and its own step count from
 * 1 (the bias correction), on the checkpoint's weights. The resumed weights must equal an
 * in-process Adam run from those weights (host back-end, bit for bit); and continuing with
 * nesterov, whose velocity means what momentum's does, keeps the velocity. */
START_TEST(test_resume_with_another_optimizer)
{
    snprintf(dir, sizeof dir, "/tmp/cltrain-resume-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *base = "--device host --train-limit 400 --test-limit 50 --hidden 12 --batch 50 --init he --quiet";
    char args[1024], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "--data %s %s --optimizer momentum --lr 0.05 --epochs 2 --checkpoint ck.model",
             mnist_dir(), base);
    ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    const char *next[] = {"adam --lr 0.002", "nesterov --lr 0.05"};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "--data %s %s --optimizer %s --epochs 3 --resume ck.model --save r%d.model",
                 mnist_dir(), base, next[k], k);
        ck_assert_msg(run_cltrain(dir, NULL, args, &out, &err) == 0, "%s", err);
    }
    char p[128], e[1024];
    snprintf(p, sizeof p, "%s/ck.model", dir);
    model_file ck;
    ck_assert_msg(model_load(p, &ck, e, sizeof e) == 0, "%s", e);
    ck_assert_int_eq(ck.n_state, 1);
    dataset_pair mn;
    mnist_load(&mn);
    dataset_truncate(&mn.train, 400);
    dataset_truncate(&mn.test, 50);
    for (int k = 0; k < 2; k++) {
        train_config c = {.arch = ck.arch, .batch = 50, .seed = 1, .optimizer = k ? OPT_NESTEROV : OPT_ADAM,
                          .lr = k ? 0.05f : 0.002f, .momentum = 0.9f, .beta1 = 0.9f, .beta2 = 0.999f,
                          .eps = 1e-8f, .schedule = SCHED_CONSTANT, .total_epochs = 3};
        backend *be = backend_host_create();
        trainer *t = trainer_create(be, &c, &mn.train, &mn.test, NULL, ck.params);
        if (k) {   /* nesterov: the checkpoint's velocity and step count carry over */
            trainer_write_state(t, 0, ck.state[0]);
            trainer_set_step_count(t, (int64_t)ck.step);
        }
        epoch_metrics m;
        trainer_epoch(t, 3, &m);
        size_t n;
        char name[16];
        snprintf(name, sizeof name, "r%d.model", k);
        float *got = params_of(name, &n), *want = xmalloc(n * sizeof(float), "p");
        ck_assert_uint_eq(n, ck.arch.n_params);
        trainer_read_params(t, want);
        ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                      "resumed with %s: weights differ from a fresh %s from the checkpoint (%g)",
                      next[k], k ? "nesterov with its velocity" : "adam", rel_err(got, want, n));
        free(got); free(want);
        trainer_destroy(t);
        backend_destroy(be);
    }
    dataset_pair_free(&mn);
    model_file_free(&ck);
    free(out); free(err);
    work_dir_remove(dir);
}
END_TEST

Suite *resume_suite(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("interrupt");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_kill_between_checkpoints_then_resume);
    tcase_add_test(tc, test_sigint_checkpoints_mid_epoch_then_resume);
    tcase_add_test(tc, test_early_stopping_state_survives_resume);
    tcase_add_test(tc, test_resume_with_another_optimizer);
    suite_add_tcase(s, tc);
    return s;
}
