/* train_cmd.c: `cltrain [train]`: builds the network from the options and the data, runs the
 * epochs, prints the table, writes the CSV log, the model, checkpoints and the npy and ONNX exports. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "onnx_export.h"
#include "plot.h"
#include "commands.h"
#include "dist.h"
#include "nonzero.h"
#include "output_paths.h"
#include "session.h"
#include "trainer.h"
#include "util.h"

/* The model file's training settings, from the run's configuration. */
static void fill_model_file(model_file *mf, const options *o, const train_config *cfg,
                            size_t n_train)
{
    memset(mf, 0, sizeof *mf);
    mf->arch = cfg->arch;
    mf->init = o->init;
    mf->optimizer = cfg->optimizer;
    mf->lr = cfg->lr; mf->momentum = cfg->momentum; mf->beta1 = cfg->beta1;
    mf->beta2 = cfg->beta2; mf->eps = cfg->eps; mf->weight_decay = cfg->weight_decay;
    mf->dropout = cfg->dropout;
    mf->batch = (uint64_t)cfg->batch;
    mf->seed = cfg->seed;
    mf->n_train = n_train;
    mf->best_val = -1.0f;
    mf->ranks = (uint32_t)dist_size();
    mf->augment = cfg->augment;
}

/* Writes the current parameters (and the optimizer state, for checkpoints) to path. */
static void save_model(trainer *t, const model_file *settings, const char *path,
                       bool with_state, uint64_t epochs_done, uint64_t next_step)
{
    model_file mf = *settings;
    size_t n = mf.arch.n_params;
    mf.params = xmalloc(n * sizeof(float), "model parameters");
    trainer_read_params(t, mf.params);
    mf.n_state = with_state ? trainer_state_count(t) : 0;
    for (int s = 0; s < mf.n_state; s++) {
        mf.state[s] = xmalloc(n * sizeof(float), "optimizer state");
        trainer_read_state(t, s, mf.state[s]);
    }
    mf.epochs_done = epochs_done;
    mf.next_step = next_step;
    mf.step = (uint64_t)trainer_step_count(t);
    char err[1024];
    int rc = model_save(path, &mf, err, sizeof err);
    mf.class_names = NULL;   /* settings' own */
    model_file_free(&mf);
    if (rc != 0) die(EXIT_RUNTIME, "%s", err);
}

/* Fails before training, not after an hour of it, when an output cannot be written. */
static void check_writable(const char *path, const char *flag)
{
    if (!path) return;
    size_t len = strlen(path) + 32;
    char *probe = xmalloc(len, "a file name");
    snprintf(probe, len, "%s.probe.%ld", path, (long)getpid());
    FILE *f = fopen(probe, "wb");
    if (!f) {
        int e = errno;
        free(probe);   /* die() exits: the leak checker would fail the run */
        die(EXIT_USAGE, "%s %s: cannot write there: %s", flag, path, strerror(e));
    }
    fclose(f);
    remove(probe);
    free(probe);
}

static void print_header_row(bool has_val)
{
    printf("%6s %9s %8s %9s %9s%s %8s\n", "epoch", "loss", "mse", "train_acc", "test_acc",
           has_val ? "   val_acc" : "", "seconds");
}

static void print_row(const epoch_metrics *m)
{
    printf("%6ld %9.4f %8.5f %9.4f %9.4f", m->epoch, m->loss, m->mse, m->train_acc, m->test_acc);
    if (m->has_val) printf(" %9.4f", m->val_acc);
    printf(" %8.3f\n", m->seconds);
    fflush(stdout);
}

static void log_row(FILE *log, const epoch_metrics *m, bool with_lr)
{
    if (!log) return;
    fprintf(log, "%ld,%.6f,%.6f,%.6f,%.6f", m->epoch, m->loss, m->mse, m->train_acc, m->test_acc);
    if (m->has_val) fprintf(log, ",%.6f", m->val_acc);
    fprintf(log, ",%.6f", m->seconds);
    if (with_lr) fprintf(log, ",%.8g", m->lr);
    fputc('\n', log);
    fflush(log);
}

/* SIGINT/SIGTERM: the first asks the loop to stop after the current step (and checkpoint);
 * a second one exits at once, which is safe since every file is written by rename. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (stop_signal) _exit(128 + sig);
    stop_signal = sig;
}

/* Under mpirun the signal may reach the ranks at different steps: they stop together, at the
 * first step after which any of them has it (the largest of one int per rank, every step;
 * nothing without mpirun). */
static int agreed_signal;

static int stop_requested(void)
{
    int sig = dist_max_int(stop_signal);
    if (sig) agreed_signal = sig;
    return sig;
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The progress line on a terminal's stderr, redrawn in place. */
typedef struct {
    trainer *t;
    bool tty;
    long epoch, total, first_epoch;
    double t_start, last_draw;
    epoch_metrics last;      /* the latest finished epoch */
} progress;

static void format_duration(double s, char *buf, size_t len)
{
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, len, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else if (v >= 60) snprintf(buf, len, "%ldm%02lds", v / 60, v % 60);
    else snprintf(buf, len, "%lds", v);
}

static void draw_progress(progress *p, size_t step, size_t steps)
{
    double now = now_seconds(), elapsed = now - p->t_start;
    double done = (double)(p->epoch - 1 - p->first_epoch) + (double)step / (double)steps;
    double left = done > 0 ? elapsed / done * ((double)(p->total - p->first_epoch) - done) : 0;
    char el[32], eta[32], batch[48] = "";
    format_duration(elapsed, el, sizeof el);
    format_duration(left, eta, sizeof eta);
    if (steps > 1) snprintf(batch, sizeof batch, "  batch %zu/%zu", step, steps);
    fprintf(stderr, "\r\033[Kepoch %ld/%ld%s", p->epoch, p->total, batch);
    if (p->last.epoch > 0)
        fprintf(stderr, "  loss %.4f  test %.4f", p->last.loss, p->last.test_acc);
    fprintf(stderr, "  %s elapsed  ETA %s", el, done > 0 ? eta : "?");
    fflush(stderr);
    p->last_draw = now;
}

static void clear_progress(progress *p)
{
    if (p->tty) fputs("\r\033[K", stderr);
}

static int on_step(void *ctx, size_t done, size_t total)
{
    progress *p = ctx;
    if (p->tty && now_seconds() - p->last_draw > 0.25) {
        trainer_sync(p->t);   /* a wait a few times a second, so the line shows real progress */
        draw_progress(p, done, total);
    }
    return stop_requested() != 0;
}

/* --resume or --load, read before the data so that its class count applies to the labels. */
static bool load_starting_model(const options *o, model_file *loaded)
{
    const char *from = o->resume ? o->resume : o->load;
    if (!from) return false;
    char err[1024];
    if (model_load(from, loaded, err, sizeof err) != 0) die(EXIT_USAGE, "%s", err);
    return true;
}

/* Architecture and starting parameters: from --resume/--load, or fresh from the options. */
static float *starting_point(const options *o, const dataset *train, train_config *cfg,
                             model_file *loaded, bool have_loaded)
{
    int inputs = train->rows * train->cols, classes = train->classes;
    const char *from = o->resume ? o->resume : o->load;
    if (have_loaded) {
        const model_arch *a = &loaded->arch;
        if (a->sizes[0] != inputs || a->sizes[a->n_layers] != classes)
            die(EXIT_USAGE, "%s: the model takes %d inputs and %d classes, the data has %d and %d",
                from, a->sizes[0], a->sizes[a->n_layers], inputs, classes);
        cfg->arch = *a;
        float *p = loaded->params;
        loaded->params = NULL;
        return p;
    }
    if (model_arch_init(&cfg->arch, inputs, o->hidden, o->n_hidden, classes, o->act) != 0)
        die(EXIT_USAGE, "--hidden: the network is too large to address");
    float *p = xmalloc(cfg->arch.n_params * sizeof(float), "initial parameters");
    model_init_params(&cfg->arch, o->init, o->seed, p);
    return p;
}

/* After a signal: checkpoint (when configured) at the exact step, say how to resume, exit
 * 128 + the signal (130 for SIGINT, 143 for SIGTERM). */
static void stop_run(trainer *t, const model_file *settings, const options *o, FILE *log,
                     long epochs_done, size_t next_step)
{
    int sig = agreed_signal ? agreed_signal : stop_signal;
    if (log) fclose(log);
    if (dist_rank() != 0) {
        /* Rank 0 checkpoints and says how to resume; the others wait for it, since mpirun
         * ends the job as soon as one of them leaves with this status. */
        dist_max_int(0);
        exit(128 + sig);
    }
    if (o->checkpoint) {
        save_model(t, settings, o->checkpoint, true, (uint64_t)epochs_done, next_step);
        fprintf(stderr, "cltrain: interrupted after epoch %ld%s; checkpoint written to %s\n"
                "cltrain: to continue, rerun the same command with --resume %s\n",
                epochs_done, next_step ? " and part of the next" : "", o->checkpoint, o->checkpoint);
    } else {
        fprintf(stderr, "cltrain: interrupted after epoch %ld; nothing saved (use --checkpoint FILE to be able to resume)\n",
                epochs_done);
    }
    dist_max_int(0);
    exit(128 + sig);
}

/* Under mpirun rank 0 alone writes and prints: the others keep their errors only. */
static const options *this_ranks_options(const options *o, options *copy)
{
    if (dist_rank() == 0) return o;
    *copy = *o;
    copy->save = copy->export_npy = copy->export_onnx = copy->log = copy->checkpoint = copy->plot = NULL;
    copy->quiet = true;
    copy->profile = false;
    return copy;
}

/* The resumed checkpoint's process count against this run's. */
static void check_resumed_ranks(const char *path, uint32_t ranks)
{
    uint32_t now = (uint32_t)dist_size();
    if (dist_rank() != 0 || ranks == now || (ranks == 0 && now == 1)) return;
    fprintf(stderr, "cltrain: %s was written by a run of %s%u process%s and this one has %u: it resumes "
            "the same training, but its gradients are summed in another order, so the weights will "
            "differ (by rounding) from those of an uninterrupted run; use mpirun -np %u to continue it exactly\n",
            path, ranks ? "" : "an unknown number, not ", ranks ? ranks : 1, ranks == 1 ? "" : "es", now,
            ranks ? ranks : 1);
}

/* The allreduce's share of the run, after the first epoch (when there was more than one). */
static void print_allreduce(const dist_stats *before, double seconds, bool split)
{
    dist_stats now = dist_allreduce_stats();
    long calls = now.calls - before->calls;
    double sum = now.sum_seconds - before->sum_seconds, wait = now.wait_seconds - before->wait_seconds;
    printf("allreduce: %d processes, %ld calls%s, %.4f s (%.4f ms each, %.1f %% of the time)",
           dist_size(), calls, before->calls ? " after the first epoch" : "", sum,
           calls ? 1e3 * sum / (double)calls : 0.0, seconds > 0 ? 100.0 * sum / seconds : 0.0);
    if (split) printf(", waiting for the slowest rank before them %.4f s (%.1f %%)", wait,
                      seconds > 0 ? 100.0 * wait / seconds : 0.0);
    else printf(", waiting for the slowest rank included");
    putchar('\n');
}

int command_train(const options *all_ranks)
{
    output_paths_check(all_ranks);
    options own;
    const options *o = this_ranks_options(all_ranks, &own);
    model_file loaded;
    bool have_loaded = load_starting_model(o, &loaded);
    int model_classes = have_loaded ? loaded.arch.sizes[loaded.arch.n_layers] : 0;
    session_data sd;
    session_load_data(o, model_classes, &sd);
    const dataset *train = &sd.data.train, *test = &sd.data.test;
    char **names = session_class_names(o, train->classes, have_loaded ? loaded.class_names : NULL);
    check_writable(o->save, "--save");
    check_writable(o->checkpoint, "--checkpoint");
    check_writable(o->export_onnx, "--export-onnx");

    train_config cfg = {
        .batch = o->batch, .seed = o->seed, .optimizer = o->optimizer, .lr = (float)o->lr,
        .momentum = (float)o->momentum, .beta1 = (float)o->beta1, .beta2 = (float)o->beta2,
        .eps = (float)o->eps, .weight_decay = (float)o->weight_decay, .schedule = o->schedule,
        .warmup = o->warmup, .lr_min = o->lr_min, .dropout = (float)o->dropout,
        .rank = dist_rank(), .ranks = dist_size(),
        .augment = o->augment,
    };
    cfg.total_epochs = o->epochs >= 0 ? o->epochs : (o->batch > 0 ? 10 : 500);
    float *params = starting_point(o, train, &cfg, &loaded, have_loaded);
    long start_epoch = 0;
    uint64_t resume_step = 0;
    if (o->resume) {
        start_epoch = (long)loaded.epochs_done;
        resume_step = loaded.next_step;
        check_resumed_ranks(o->resume, loaded.ranks);
        /* The distortions are part of the run: without --augment the checkpoint's go on. */
        if (!o->augment_given) cfg.augment = loaded.augment;
        else if (!augment_equal(&cfg.augment, &loaded.augment))
            fprintf(stderr, "cltrain: note: --augment differs from the checkpoint's; the resumed run "
                    "is not the one that was interrupted\n");
        if (start_epoch > cfg.total_epochs)
            die(EXIT_USAGE, "%s has %ld epochs done, more than --epochs %ld (the total, not the number to add)",
                o->resume, start_epoch, cfg.total_epochs);
    }

    /* Every rank must train on the same data from the same start: rank 0's parameters. */
    dist_check_same(train->n, "the number of training images");
    dist_check_same(cfg.arch.n_params, "the number of parameters");
    dist_check_same(start_epoch * (uint64_t)1000003 + resume_step, "the resumed position");
    dist_broadcast(params, cfg.arch.n_params * sizeof(float));
    /* The kernels every training needs are built in a thread while the data is uploaded and
     * its sparse copy made (the compiler's first start alone takes most of a second on PoCL).
     * Not earlier: a bad input found while it builds would wait for the build to exit. */
    backend *be = session_open_backend(o);
    if (cfg.total_epochs > start_epoch) {
        size_t rows = cfg.batch > 0 && (size_t)cfg.batch < train->n ? (size_t)cfg.batch : train->n;
        step_shape step = trainer_step_shape(&cfg, (int)rows);
        double density = nonzero_share(train->pixels, train->n * (size_t)cfg.arch.sizes[0]);
        layer_shape first = trainer_layer_shape(&cfg, 0, (int)rows, density);
        backend_cl_prefetch_training(be, &step, &first);
    }
    trainer *t = trainer_create(be, &cfg, train, test, sd.val.n ? &sd.val : NULL, params);
    /* The optimizer state and its step count go together: another optimizer whose state the
     * checkpoint lacks starts fresh, with Adam's bias correction from step 1. */
    if (o->resume && loaded.n_state == trainer_state_count(t)) {
        for (int s = 0; s < loaded.n_state; s++) trainer_write_state(t, s, loaded.state[s]);
        trainer_set_step_count(t, (int64_t)loaded.step);
    }
    double resumed_best_val = -1.0;
    long resumed_stale = 0;
    if (o->resume && o->early_stop > 0 && loaded.best_val >= 0.0f) {
        resumed_best_val = loaded.best_val;
        resumed_stale = (long)loaded.stale_epochs;
        fprintf(stderr, "cltrain: early stopping resumes from the best validation accuracy %.4f; the "
                "parameters of that epoch are not in the checkpoint, so those kept will be the best "
                "after the resume\n", resumed_best_val);
    }
    if (have_loaded) model_file_free(&loaded);

    char arch[256];
    model_describe(&cfg.arch, arch, sizeof arch);
    const char *dev = backend_device_name(be);
    if (!o->quiet) {
        char batch[32];
        if (cfg.batch > 0) snprintf(batch, sizeof batch, "batch %ld", cfg.batch);
        else snprintf(batch, sizeof batch, "full batch");
        printf("cltrain: %s, %s lr %g, %s, %ld epochs, on %s\n", arch, optimizer_name(cfg.optimizer),
               o->lr, batch, cfg.total_epochs, dev ? dev : "host (plain C)");
        if (augment_active(&cfg.augment)) {
            char spec[160];
            augment_format(&cfg.augment, spec, sizeof spec);
            printf("augment: %s (every training batch, on the device)\n", spec);
        }
        printf("data: %zu training, %zu test%s images from %s, %d classes\n", train->n, test->n,
               sd.val.n ? " (+ validation)" : "", sd.data.source, train->classes);
        if (names) {
            printf("class names:");
            for (int c = 0; c < train->classes; c++) printf("%s%s", c ? ", " : " ", names[c]);
            printf("\n");
        }
        trainer_print_plans(t, stdout);
    }
    FILE *log = NULL;
    bool with_lr = o->schedule != SCHED_CONSTANT || o->warmup > 0;
    /* --plot draws from the log: without --log, the log goes to DIR/log.csv. */
    char plot_log_path[4096] = "";
    const char *log_path = o->log;
    if (o->plot && !o->log) {
        if (mkdir(o->plot, 0755) != 0 && errno != EEXIST)
            die(EXIT_USAGE, "--plot %s: cannot create the folder: %s", o->plot, strerror(errno));
        snprintf(plot_log_path, sizeof plot_log_path, "%s/log.csv", o->plot);
        log_path = plot_log_path;
    }
    if (log_path) {
        bool append = o->resume && access(log_path, F_OK) == 0;
        log = fopen(log_path, append ? "a" : "w");
        if (!log) die(EXIT_USAGE, "--log %s: cannot write there: %s", log_path, strerror(errno));
        if (!append)
            fprintf(log, "epoch,loss,mse,train_acc,test_acc%s,seconds%s\n", sd.val.n ? ",val_acc" : "",
                    with_lr ? ",lr" : "");
    }

    model_file settings;
    fill_model_file(&settings, o, &cfg, train->n);
    settings.class_names = names;
    epoch_metrics m = {0};
    long total = cfg.total_epochs, every = total > 100 ? (total + 99) / 100 : 1;
    if (!o->quiet) print_header_row(sd.val.n > 0);
    double t_start = now_seconds();
    if (total == start_epoch) {
        trainer_evaluate(t, &m);
        m.epoch = start_epoch;
        if (!o->quiet) print_row(&m);
        log_row(log, &m, with_lr);
    }
    float *best = NULL;
    double best_val = resumed_best_val;
    long stale = resumed_stale, done = start_epoch;
    size_t first_step = o->resume ? (size_t)resume_step : 0;
    progress prog = {.t = t, .tty = !o->quiet && isatty(STDERR_FILENO), .total = total,
                     .first_epoch = start_epoch, .t_start = t_start};
    install_signal_handlers();
    /* --profile under mpirun: the sums' own time, apart from waiting for the slowest rank. */
    dist_split_wait(all_ranks->profile);
    dist_stats first_epoch_stats = dist_allreduce_stats();
    double first_epoch_seconds = 0.0;
    for (long e = start_epoch + 1; e <= total; e++) {
        prog.epoch = e;
        if (prog.tty) draw_progress(&prog, first_step, trainer_steps_per_epoch(t));
        size_t steps = trainer_epoch_from(t, e, first_step, on_step, &prog, &m);
        first_step = 0;
        if (steps < trainer_steps_per_epoch(t)) {   /* stopped by a signal mid-epoch */
            clear_progress(&prog);
            stop_run(t, &settings, o, log, e - 1, steps);
        }
        done = e;
        if (e == start_epoch + 1 && e < total) {   /* its kernel builds make ranks wait */
            first_epoch_stats = dist_allreduce_stats();
            first_epoch_seconds = now_seconds() - t_start;
        }
        clear_progress(&prog);
        if (!isfinite(m.loss)) {
            if (log) fclose(log);
            die(EXIT_RUNTIME, "the loss became %g at epoch %ld: training diverged; try a smaller --lr (now %g)%s",
                m.loss, e, o->lr, o->checkpoint ? "; the last good checkpoint is kept" : "");
        }
        prog.last = m;
        if (!o->quiet && (e % every == 0 || e == total || e == start_epoch + 1)) print_row(&m);
        log_row(log, &m, with_lr);
        bool stop_early = false;
        if (o->early_stop > 0 && m.has_val) {
            if (m.val_acc > best_val) {
                best_val = m.val_acc;
                stale = 0;
                if (!best) best = xmalloc(cfg.arch.n_params * sizeof(float), "best parameters");
                trainer_read_params(t, best);
            } else if (++stale >= o->early_stop) {
                stop_early = true;
            }
            /* Checkpoints carry the early-stopping state, so a resumed run stops where the
             * uninterrupted one would. */
            settings.best_val = (float)best_val;
            settings.stale_epochs = (uint64_t)stale;
        }
        if (o->checkpoint && (e % o->checkpoint_every == 0 || e == total || stop_early))
            save_model(t, &settings, o->checkpoint, true, (uint64_t)e, 0);
        if (stop_requested()) stop_run(t, &settings, o, log, e, 0);
        if (stop_early) {
            if (!o->quiet)
                printf("early stop: no better validation accuracy for %ld epoch%s\n", stale, stale == 1 ? "" : "s");
            break;
        }
    }
    double elapsed = now_seconds() - t_start;
    if (best) {
        trainer_write_params(t, best);
        trainer_evaluate(t, &m);
        if (!o->quiet) printf("kept the parameters with the best validation accuracy, %.4f\n", best_val);
        free(best);
    }
    if (log) fclose(log);
    printf("test accuracy: %.4f (%ld of %zu) after %ld epochs, %.2f s\n", m.test_acc,
           (long)lround(m.test_acc * (double)test->n), test->n, done, elapsed);

    if (o->save) save_model(t, &settings, o->save, true, (uint64_t)done, 0);
    if (o->export_npy) {
        float *p = xmalloc(cfg.arch.n_params * sizeof(float), "parameters");
        trainer_read_params(t, p);
        char err[1024];
        if (export_npy(o->export_npy, &cfg.arch, p, err, sizeof err) != 0) die(EXIT_RUNTIME, "%s", err);
        free(p);
    }
    if (o->export_onnx) {
        float *p = xmalloc(cfg.arch.n_params * sizeof(float), "parameters");
        trainer_read_params(t, p);
        char err[1024];
        if (export_onnx(o->export_onnx, &cfg.arch, p, err, sizeof err) != 0) die(EXIT_RUNTIME, "%s", err);
        free(p);
    }
    if (o->plot) {
        char title[320], err[1024];
        snprintf(title, sizeof title, "%s, %s, lr %g", arch, optimizer_name(cfg.optimizer), o->lr);
        int rc = plot_log(log_path, o->plot, title, err, sizeof err);
        if (rc != 0) die(rc, "%s", err);
        if (!o->quiet) printf("charts: %s/accuracy.png, %s/mse.png\n", o->plot, o->plot);
    }
    if (dist_size() > 1 && !o->quiet) print_allreduce(&first_epoch_stats, elapsed - first_epoch_seconds, o->profile);
    if (o->profile) {
        trainer_print_plans(t, stdout);
        if (cfg.batch > 0 && backend_device_name(be))
            printf("launches per step: %.2f\n", trainer_launches_per_step(t));
        backend_cl_print_profile(be, stdout);
    }
    trainer_destroy(t);
    backend_destroy(be);
    free(params);
    class_names_free(names, train->classes);
    session_free_data(&sd);
    return EXIT_OK;
}
