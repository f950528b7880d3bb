/* test_dist.c: data-parallel training under `mpirun -np 2` (src/dist.c, the trainer's share of
 * the batch and its allreduce): the same answer as one process, bit-identical reruns, one
 * writer, checkpoints across process counts, and faults that end the job within seconds.
 * Both ranks run on PoCL, one thread each (2 cores in CI). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "support.h"
#include "util.h"

/* vader's single-copy path needs ptrace rights that containers often lack; copies through
 * shared memory are as correct. */
#define MPI_ENV "POCL_MAX_PTHREAD_COUNT=1 OMPI_MCA_btl_vader_single_copy_mechanism=none"
#define MPIRUN MPI_ENV " mpirun --allow-run-as-root --oversubscribe -np"
/* A partial last batch (1030 = 22 x 45 + 40) and an odd batch, so the ranks' shares differ
 * (22 and 23 rows; 20 and 20 in the last); momentum, so a wrong sum would also show in the
 * state the next steps use. */
#define RECIPE "--train-limit 1030 --test-limit 300 --hidden 24 --batch 45 --optimizer momentum " \
               "--lr 0.05 --init he --device 0 --quiet"

static char dir[64];

static void setup(void) { work_dir_make(dir, sizeof dir, "dist"); }
static void teardown(void) { work_dir_remove(dir); }

/* Runs `[mpirun -np N] cltrain --data MNIST ARGS` in dir (N = 0: no mpirun), output into
 * NAME.out and NAME.err; returns the exit status. */
static int run_np(int np, const char *name, const char *args)
{
    char cmd[4096], launch[256] = "";
    if (np > 0) snprintf(launch, sizeof launch, MPIRUN " %d", np);
    else snprintf(launch, sizeof launch, "POCL_MAX_PTHREAD_COUNT=1");
    snprintf(cmd, sizeof cmd, "cd %s && %s %s --data %s %s >%s.out 2>%s.err", dir, launch,
             cltrain_bin(), mnist_dir(), args, name, name);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "%s: killed by a signal", cmd);
    return WEXITSTATUS(st);
}

static char *slurp(const char *name)
{
    char p[256];
    size_t len;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *text = (char *)read_file(p, &len);
    ck_assert_msg(text != NULL, "%s is missing", p);
    return text;
}

static float *params_of(const char *name, size_t *n, uint32_t *ranks)
{
    char p[256], err[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    model_file m;
    ck_assert_msg(model_load(p, &m, err, sizeof err) == 0, "%s", err);
    float *out = m.params;
    *n = m.arch.n_params;
    if (ranks) *ranks = m.ranks;
    m.params = NULL;
    model_file_free(&m);
    return out;
}

static void assert_bit_identical(const char *a_name, const char *b_name)
{
    size_t na, nb;
    float *a = params_of(a_name, &na, NULL), *b = params_of(b_name, &nb, NULL);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na * sizeof(float)) == 0, "%s and %s differ", a_name, b_name);
    free(a);
    free(b);
}

/* Two ranks against one process, mini-batches and full batch, then a rerun of each 2-rank
 * run bit for bit. The only difference from one process is the order of the gradient's sum
 * (two float32 partial sums added, against one running sum): about 1e-7 relative per step,
 * grown by the 23-46 steps to the 2e-7..2e-6 measured. 1e-4 leaves room for that and still
 * catches any real fault: a share counted twice or missed, or a mean over the rank's rows
 * instead of the batch, moves the weights by 1e-2 and more. */
static void check_agreement(const char *extra, const char *tag)
{
    char args[1024], n1[64], n2[64], n2b[64];
    snprintf(n1, sizeof n1, "%s-1", tag);
    snprintf(n2, sizeof n2, "%s-2", tag);
    snprintf(n2b, sizeof n2b, "%s-2b", tag);
    snprintf(args, sizeof args, RECIPE " %s --save %s.model", extra, n1);
    ck_assert_int_eq(run_np(0, n1, args), 0);
    snprintf(args, sizeof args, RECIPE " %s --save %s.model", extra, n2);
    ck_assert_int_eq(run_np(2, n2, args), 0);
    snprintf(args, sizeof args, RECIPE " %s --save %s.model", extra, n2b);
    ck_assert_int_eq(run_np(2, n2b, args), 0);

    char m1[80], m2[80], m2b[80];
    snprintf(m1, sizeof m1, "%s.model", n1);
    snprintf(m2, sizeof m2, "%s.model", n2);
    snprintf(m2b, sizeof m2b, "%s.model", n2b);
    size_t na, nb;
    uint32_t r1, r2;
    float *one = params_of(m1, &na, &r1), *two = params_of(m2, &nb, &r2);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(r1, 1);
    ck_assert_uint_eq(r2, 2);
    double e = rel_err(two, one, na);
    ck_assert_msg(e < 1e-4, "%s: 2 ranks differ from 1 process by %g (relative)", tag, e);
    fprintf(stderr, "dist: %s: 2 ranks against 1 process: weights within %.2g (relative)\n", tag, e);
    ck_assert_msg(memcmp(one, two, na * sizeof(float)) != 0 || strstr(extra, "--epochs 0"),
                  "%s: bit-identical to one process: were the ranks really splitting the batch?", tag);
    free(one);
    free(two);
    assert_bit_identical(m2, m2b);
}

START_TEST(test_two_ranks_agree_with_one_mini_batch)
{
    check_agreement("--epochs 2", "mb");
}
END_TEST

START_TEST(test_two_ranks_agree_with_one_full_batch)
{
    check_agreement("--batch 0 --epochs 25 --lr 0.3", "fb");
}
END_TEST

/* Rank 0 alone prints and writes; rank 1 says only which device it took. */
START_TEST(test_one_writer)
{
    ck_assert_int_eq(run_np(2, "w", "--train-limit 600 --test-limit 200 --hidden 16 --batch 100 "
                                    "--epochs 2 --device 0 --log log.csv --checkpoint ck.model"), 0);
    char *out = slurp("w.out"), *err = slurp("w.err"), *log = slurp("log.csv");
    const char *hdr = strstr(out, " epoch ");
    ck_assert_msg(hdr && !strstr(hdr + 1, " epoch "), "not one table: %s", out);
    ck_assert_msg(strstr(out, "test accuracy:") && !strstr(strstr(out, "test accuracy:") + 1, "test accuracy:"),
                  "not one result line: %s", out);
    /* Epoch 2's 6 steps and its metric sums. */
    ck_assert_msg(strstr(out, "allreduce: 2 processes, 7 calls after the first epoch"), "%s", out);
    ck_assert_msg(strstr(err, "cltrain[rank 0]: pid ") && strstr(err, "cltrain[rank 1]: pid "), "%s", err);
    ck_assert_msg(!strstr(err, "cltrain:"), "rank 1 printed more than its device: %s", err);
    int lines = 0;
    for (const char *p = log; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 3);   /* the header and two epochs, written once */
    free(out);
    free(err);
    free(log);
}
END_TEST

/* Early stopping watches rank 0's validation accuracy on every rank (the metrics are summed
 * into one): the ranks stop at the same epoch and the job ends, where ranks deciding apart
 * would leave one waiting in an allreduce until the test's timeout. */
START_TEST(test_early_stop_ends_every_rank)
{
    ck_assert_int_eq(run_np(2, "es", "--train-limit 2000 --test-limit 300 --val 500 --hidden 32 "
                                     "--batch 50 --lr 0.2 --init he --early-stop 2 --epochs 40 --device 0"), 0);
    char *out = slurp("es.out");
    ck_assert_msg(strstr(out, "early stop:"), "the recipe no longer stops early: %s", out);
    free(out);
}
END_TEST

/* A checkpoint of 2 ranks resumed by 2 ranks ends bit-identical to the uninterrupted run; by
 * one process it resumes with a note that the process count differs. */
START_TEST(test_resume_across_process_counts)
{
    ck_assert_int_eq(run_np(2, "full", RECIPE " --epochs 3 --save full.model"), 0);
    ck_assert_int_eq(run_np(2, "a", RECIPE " --epochs 1 --checkpoint ck.model"), 0);
    char cp[256];
    snprintf(cp, sizeof cp, "cp %s/ck.model %s/ck1.model", dir, dir);
    ck_assert_int_eq(system(cp), 0);
    ck_assert_int_eq(run_np(2, "b", RECIPE " --epochs 3 --resume ck.model --save res.model"), 0);
    assert_bit_identical("full.model", "res.model");
    char *err = slurp("b.err");
    ck_assert_msg(!strstr(err, "written by a run of"), "same count, yet a note: %s", err);
    free(err);
    ck_assert_int_eq(run_np(0, "c", RECIPE " --epochs 3 --resume ck1.model --save res1.model"), 0);
    err = slurp("c.err");
    ck_assert_msg(strstr(err, "ck1.model was written by a run of 2 processes and this one has 1"), "%s", err);
    free(err);
    size_t na, nb;
    float *a = params_of("full.model", &na, NULL), *b = params_of("res1.model", &nb, NULL);
    ck_assert_double_lt(rel_err(b, a, na), 1e-4);   /* the same training, summed otherwise */
    free(a);
    free(b);
}
END_TEST

/* Bad data on one node: only rank 1 sees a missing folder. The job ends at once, non-zero,
 * and the message names the rank and the cause. */
START_TEST(test_rank_with_bad_data_ends_the_job)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && " MPIRUN " 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then d=/nonexistent-on-this-node; "
             "else d=%s; fi; exec %s --data $d --train-limit 600 --hidden 16 --batch 50 --epochs 1000 --device 0' "
             ">bad.out 2>bad.err",
             dir, mnist_dir(), cltrain_bin());
    double t0 = now_seconds();
    int st = system(cmd);
    double took = now_seconds() - t0;
    ck_assert(st != -1 && WIFEXITED(st));
    ck_assert_int_ne(WEXITSTATUS(st), 0);
    char *err = slurp("bad.err");
    ck_assert_msg(strstr(err, "cltrain[rank 1]: /nonexistent-on-this-node: no such folder"), "%s", err);
    ck_assert_msg(took < 30, "the job took %.1f s to end", took);
    fprintf(stderr, "dist: bad data on rank 1 ended the job in %.1f s, exit %d\n", took, WEXITSTATUS(st));
    free(err);
}
END_TEST

/* Runs `sh -c cmd` in a child without waiting for it: the job a fault test interrupts. */
static pid_t start_shell(const char *cmd)
{
    pid_t job = fork();
    ck_assert_int_ge(job, 0);
    if (job == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return job;
}

/* kill -9 of rank 1 mid-training: mpirun ends the job within seconds, naming the rank and the
 * signal, and the checkpoint from before the fault resumes. */
START_TEST(test_killed_rank_ends_the_job)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && " MPI_ENV " exec mpirun --allow-run-as-root --oversubscribe -np 2 %s --data %s --train-limit 600 --test-limit 100 "
             "--hidden 16 --batch 50 --epochs 100000 --device 0 --checkpoint ck.model --checkpoint-every 20 "
             ">k.out 2>k.err",
             dir, cltrain_bin(), mnist_dir());
    pid_t job = start_shell(cmd);
    /* Rank 1's pid from its device line, once a checkpoint exists. */
    long victim = 0;
    char ck[128];
    snprintf(ck, sizeof ck, "%s/ck.model", dir);
    for (int i = 0; i < 1200 && (!victim || access(ck, F_OK) != 0); i++) {
        nanosleep(&(struct timespec){0, 50000000}, NULL);
        char *err = slurp("k.err");
        const char *p = strstr(err, "cltrain[rank 1]: pid ");
        if (p) victim = strtol(p + strlen("cltrain[rank 1]: pid "), NULL, 10);
        free(err);
    }
    if (!victim || access(ck, F_OK) != 0) {
        kill(job, SIGKILL);
        waitpid(job, NULL, 0);
        ck_abort_msg("rank 1 never started or no checkpoint was written");
    }
    ck_assert_int_eq(kill((pid_t)victim, SIGKILL), 0);
    double t0 = now_seconds();
    int st = 0;
    pid_t w = 0;
    while ((w = waitpid(job, &st, WNOHANG)) == 0 && now_seconds() - t0 < 30)
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    double took = now_seconds() - t0;
    if (w == 0) {
        kill(job, SIGKILL);
        waitpid(job, NULL, 0);
        ck_abort_msg("the job still ran 30 s after rank 1 was killed");
    }
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    char *err = slurp("k.err");
    ck_assert_msg(strstr(err, "rank 1") && strstr(err, "signal 9"), "%s", err);
    fprintf(stderr, "dist: kill -9 of rank 1 ended the job in %.1f s, exit %d\n", took, WEXITSTATUS(st));
    free(err);
    char path[128], msg[1024], args[512];
    snprintf(path, sizeof path, "%s/ck.model", dir);
    model_file m;
    ck_assert_msg(model_load(path, &m, msg, sizeof msg) == 0, "the checkpoint left by the fault: %s", msg);
    ck_assert_uint_eq(m.ranks, 2);
    snprintf(args, sizeof args, "--train-limit 600 --test-limit 100 --hidden 16 --batch 50 --device 0 "
             "--resume ck.model --epochs %llu", (unsigned long long)m.epochs_done + 1);
    model_file_free(&m);
    ck_assert_int_eq(run_np(2, "r", args), 0);
    char *out = slurp("r.out");
    ck_assert_msg(strstr(out, "test accuracy:"), "%s", out);
    free(out);
}
END_TEST

/* Ctrl-C on mpirun reaches the ranks at different moments; they stop after the same step,
 * rank 0 checkpoints it, and two ranks resume to the weights of the uninterrupted run. */
START_TEST(test_interrupt_stops_the_ranks_together)
{
    /* Long enough that the interrupt lands mid-run: mpirun takes about a second to pass SIGINT
     * on, and 300 epochs (1.6 s on PoCL, 2 cores, once denormals were flushed) often ended
     * first, leaving mpirun's non-zero exit without the ranks' message. */
#define LONG_RUN RECIPE " --epochs 1500"
    ck_assert_int_eq(run_np(2, "full", LONG_RUN " --save full.model"), 0);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && " MPI_ENV " exec mpirun --allow-run-as-root --oversubscribe -np 2 %s "
             "--data %s " LONG_RUN " --checkpoint ck.model --checkpoint-every 10 >int.out 2>int.err",
             dir, cltrain_bin(), mnist_dir());
    pid_t job = start_shell(cmd);
    char ck[128];
    snprintf(ck, sizeof ck, "%s/ck.model", dir);
    for (int i = 0; i < 1200 && access(ck, F_OK) != 0; i++) nanosleep(&(struct timespec){0, 25000000}, NULL);
    kill(job, SIGINT);
    int st;
    ck_assert_int_eq(waitpid(job, &st, 0), job);
    ck_assert(WIFEXITED(st));
    if (WEXITSTATUS(st) == 0) {   /* it ended before the signal landed: nothing to resume */
        fprintf(stderr, "dist: the run ended before SIGINT landed; nothing to resume\n");
        return;
    }
    char *err = slurp("int.err");
    ck_assert_msg(strstr(err, "cltrain: interrupted after epoch") && strstr(err, "--resume ck.model"), "%s", err);
    ck_assert_msg(!strstr(err, "cltrain[rank 1]: interrupted") && !strstr(err, "nothing saved"), "%s", err);
    free(err);
    ck_assert_int_eq(run_np(2, "res", LONG_RUN " --resume ck.model --save res.model"), 0);
    assert_bit_identical("full.model", "res.model");
    fprintf(stderr, "dist: SIGINT to mpirun (exit %d), resumed bit-identically\n", WEXITSTATUS(st));
#undef LONG_RUN
}
END_TEST

Suite *dist_suite(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("mpirun");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_two_ranks_agree_with_one_mini_batch);
    tcase_add_test(tc, test_two_ranks_agree_with_one_full_batch);
    tcase_add_test(tc, test_one_writer);
    tcase_add_test(tc, test_resume_across_process_counts);
    tcase_add_test(tc, test_early_stop_ends_every_rank);
    tcase_add_test(tc, test_interrupt_stops_the_ranks_together);
    tcase_add_test(tc, test_rank_with_bad_data_ends_the_job);
    tcase_add_test(tc, test_killed_rank_ends_the_job);
    suite_add_tcase(s, tc);
    return s;
}
