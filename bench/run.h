/* run.h: what the files of one benchmark run share: the workloads, the options, the rows and
 * the run's record (struct bench), and the parts of a run each file does: rows.c (the rows
 * through the trainer API, their derived figures and checks), startup.c (kernel builds and the
 * binary's start-up), peers.c (numpy and PyTorch), report.c (Markdown and JSON), bench.c
 * (options, the run's description, the floor probes, main). */
#ifndef CLTRAIN_BENCH_RUN_H
#define CLTRAIN_BENCH_RUN_H

#include "backend.h"
#include "bench.h"
#include "cl_runtime.h"
#include "dataset.h"
#include "model.h"
#include "trainer.h"

#define SEED 1
#define MAX_ROWS 128
#define MAX_DEVICES 16
#define MAX_TIMED 1000
#define MAX_PEER_LINES 16

/* ---- the workloads ---- */

typedef struct {
    int id;
    const char *name;
    int hidden;
    long batch;               /* 0 = full batch */
    init_kind init;
    float lr;
} workload;

/* Workload id 1..3. */
const workload *workload_get(int id);
void workload_arch(const workload *w, int inputs, int classes, model_arch *a);
/* The trainer configuration of workload w for total_epochs. */
train_config row_config(const model_arch *a, const workload *w, long total_epochs);

/* ---- options ---- */

typedef struct {
    bool workload[4];
    int epochs, warmup;
    double budget;            /* seconds of warm-up + timed epochs per row; 0 = no limit */
    long train_limit;         /* 0 = all */
    bool quick;
    const char *devices;
    const char *json_path;
    const char *data;
    const char *cltrain;
    const char *python;
    const char *bench_dir;
    bool gemm[2];
    bool peers, startup, build, probe_only;
    bool tta;                 /* the time-to-accuracy rows (tta.c) */
} bench_opts;

/* ---- the run's record ---- */

typedef enum { ROW_HOST, ROW_OPENCL, ROW_NUMPY, ROW_TORCH } row_kind;

typedef struct {
    row_kind kind;
    int workload;             /* 1..3 */
    int floor_slot;           /* index into the floors: 0 host, 1 + k the k-th selected device */
    int cl_index;             /* OpenCL device, -1 otherwise */
    char device[192];
    char gemm[48];
    int threads;              /* peers */
    size_t n_train;
    int warmup, timed;
    double ms[MAX_TIMED];
    stats3 st;
    double eval_ms, test_acc, train_acc, loss, estimate_ms;
    double gbs, gflops, floor_ms, pct_floor, vs_numpy, vs_torch;
    char note[256];
    char check[320];
    bool failed, ran;
    bool clblast_unused;      /* a clblast row whose trainer made no CLBlast call */
    bool over_floor;          /* faster than the floor: the floor model is wrong for it */
    double floor_gflop;       /* the FLOP the floor counts (GFLOP) */
    bool peer_best;           /* the fastest row of its peer: the one vs numpy / vs torch use */
    bool listed_only;         /* a slower numpy core type: in the peer's list, not the table */
    char blas[256];           /* peers: the BLAS and kernel the row ran (the peer's own words) */
    char coretype[32];        /* peers: OPENBLAS_CORETYPE forced for it, "" = OpenBLAS's own pick */
} row;

typedef struct {
    char name[200];
    double read_gbs, read_median, peak;
    bool ok;
    char read_how[128], peak_how[128];
} floor_entry;

typedef struct {
    int cl_index;
    gemm_kind gemm;
    double open_s, first_s, second_s, cached_s;
} build_entry;

/* Cold and warm start-ups timed: a single cold run on this shared machine ranged from 1.7 to
 * 2.4 s at one commit, so the figure is the median of several, each with an empty cache. */
#define STARTUP_RUNS 3

typedef struct {
    bool ran;
    char command[512];
    /* run i: cold with an empty cache, then warm on the cache it filled */
    double cold_s[STARTUP_RUNS], warm_s[STARTUP_RUNS];
    double cold_train_s[STARTUP_RUNS], warm_train_s[STARTUP_RUNS];
    stats3 cold, warm;          /* of cold_s and warm_s */
    int cold_rc, warm_rc;
} startup_entry;

#define TTA_TARGET 0.98
#define TTA_SEEDS 3

typedef struct {
    char device[200];
    int nseeds;
    double seconds[TTA_SEEDS];  /* spawn to the end of the first epoch at TTA_TARGET; NaN: never */
    long epoch[TTA_SEEDS];      /* that epoch (or the last one seen) */
    double last_acc[TTA_SEEDS];
    int rc[TTA_SEEDS];
    double mean;
    bool ok;                    /* every seed reached the target */
} tta_entry;

typedef struct {
    bench_opts opt;
    char cmdline[1024], host[256], date[32], commit[64], cpu[160];
    bool dirty;
    int cores;
    dataset_pair data;
    int inputs, classes;
    clrt_device_desc *devs;
    int ndev;
    bool want_host, want_cl[MAX_DEVICES], clblast_ok[MAX_DEVICES];
    int slot_of[MAX_DEVICES];
    floor_entry floors[MAX_DEVICES + 1];
    size_t *nnz_prefix;       /* nonzero pixels of training images [0, i) */
    int nfloors;
    build_entry builds[2 * MAX_DEVICES];
    int nbuilds;
    startup_entry startup;
    row *rows;
    int nrows;
    char peer_lines[MAX_PEER_LINES][32768];
    int npeer_lines;
    size_t plan_n[4];         /* per workload: the OpenCL rows' shared plan, for the peers */
    int plan_timed[4];
    char blas[256], torch_note[256];
    char torch_blas[1024];    /* torch.__config__.show()'s BLAS lines and its threads */
    char coretype_best[32];   /* the numpy candidate that ran fastest ("" = OpenBLAS's pick) */
    char tmp[512];
    tta_entry tta[MAX_DEVICES + 1];
    int ntta;
    int failures;
} bench;

/* ---- rows.c ---- */
/* A new row (rows[nrows++]) of kind for workload w, measured against floors[slot]. */
row *row_new(bench *b, row_kind kind, int w, int slot);
void rows_run(bench *b);
/* Per row: bandwidth, GFLOP/s, floor, speed-ups; then each row's check. */
void rows_derive(bench *b);

/* ---- startup.c ---- */
backend *measure_build(bench *b, int d, gemm_kind g);
/* `cltrain --epochs 1 --quiet` as a child, cold then warm kernel cache. */
void measure_startup(bench *b);

/* ---- peers.c ---- */
void run_peers(bench *b);

/* ---- tta.c ---- */
/* Time to TTA_TARGET test accuracy, per selected device (the host back-end included). */
void measure_tta(bench *b);
/* The recipe as a command line, for the report. */
const char *tta_recipe(char *buf, size_t len);

/* ---- report.c ---- */
void report_markdown(const bench *b, FILE *f);
/* The raw figures as JSON at path (a temporary name, then renamed). */
void report_json(const bench *b, const char *path);

#endif
