/* peers.c: the numpy and PyTorch peers of the benchmark (see run.h): their initial parameters
 * written for them, the scripts run as child processes, their JSON lines read back as rows. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"
#include "util.h"

/* ---- the peers --------------------------------------------------------------------------------- */

static void write_params(const char *path, const workload *w, const bench *b)
{
    model_arch a;
    workload_arch(w, b->inputs, b->classes, &a);
    float *p = xmalloc(a.n_params * sizeof(float), "initial parameters");
    model_init_params(&a, w->init, SEED, p);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof(float), a.n_params, f) != a.n_params || fclose(f) != 0)
        die(EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    free(p);
}

/* A row from one JSON line of a peer; coretype: the OPENBLAS_CORETYPE it ran with ("" none). */
static void peer_row(bench *b, const char *line, const char *coretype)
{
    double w = 0, v;
    if (!json_number(line, "workload", &w) || w < 1 || w > 3) return;
    char peer[32] = "", dev[160] = "", blas[256] = "", note[200] = "", kernel[32] = "";
    json_string(line, "peer", peer, sizeof peer);
    row *r = row_new(b, strcmp(peer, "torch") == 0 ? ROW_TORCH : ROW_NUMPY, (int)w, 0);
    r->loss = NAN;            /* a null or missing loss fails the check */
    json_string(line, "device", dev, sizeof dev);
    json_string(line, "blas", blas, sizeof blas);
    json_string(line, "note", note, sizeof note);
    json_string(line, "kernel", kernel, sizeof kernel);
    if (json_number(line, "threads", &v)) r->threads = (int)v;
    snprintf(r->device, sizeof r->device, "%s", dev[0] ? dev : peer);
    snprintf(r->gemm, sizeof r->gemm, "%s%s%s, %d thr", r->kind == ROW_TORCH ? "torch" : "numpy",
             kernel[0] ? " " : "", kernel, r->threads);
    snprintf(r->blas, sizeof r->blas, "%s", blas);
    snprintf(r->coretype, sizeof r->coretype, "%s", coretype);
    if (coretype[0]) snprintf(r->note, sizeof r->note, "%s; OPENBLAS_CORETYPE=%s", note, coretype);
    else snprintf(r->note, sizeof r->note, "%s; OpenBLAS's own kernel choice", note);
    if (json_number(line, "n_train", &v)) r->n_train = (size_t)v;
    if (json_number(line, "warmup", &v)) r->warmup = (int)v;
    r->timed = json_numbers(line, "timed_ms", r->ms, MAX_TIMED);
    r->st = stats_of(r->ms, r->timed);
    if (json_number(line, "eval_ms", &v)) r->eval_ms = v;
    if (json_number(line, "test_acc", &v)) r->test_acc = v;
    if (json_number(line, "train_loss", &v)) r->loss = v;
    r->ran = r->timed > 0;
    if (r->kind == ROW_NUMPY && blas[0] && !coretype[0]) snprintf(b->blas, sizeof b->blas, "%s", blas);
    if (r->kind == ROW_TORCH && !b->torch_blas[0]) json_string(line, "torch_blas", b->torch_blas, sizeof b->torch_blas);
    if (b->npeer_lines < MAX_PEER_LINES && line[0] == '{' && strlen(line) < sizeof b->peer_lines[0])
        snprintf(b->peer_lines[b->npeer_lines++], sizeof b->peer_lines[0], "%s", line);
}

static void peer_output(bench *b, const char *out, const char *coretype)
{
    const char *p = out;
    while (p && *p) {
        size_t len = strcspn(p, "\n");
        if (*p == '{') {
            char *line = xmalloc(len + 1, "peer output");
            memcpy(line, p, len);
            line[len] = '\0';
            peer_row(b, line, coretype);
            free(line);
        }
        p += len;
        if (*p) p++;
    }
}

/* Runs one peer and reads its rows; a failed run counts as a failed check, except for a forced
 * OpenBLAS core type tried as a candidate (one the library may not run here). Returns the exit
 * status. */
static int run_peer(bench *b, const char *name, char *const argv[], const env_change *env, int n_env,
                    const char *coretype, bool candidate)
{
    char *out = NULL;
    int rc = proc_run(argv, env, n_env, &out, NULL, false);
    if (rc != 0) {
        fprintf(stderr, "bench: the %s peer failed (exit %d)%s%s\n", name, rc,
                coretype[0] ? " with OPENBLAS_CORETYPE=" : "", coretype);
        if (!candidate) b->failures++;
    }
    peer_output(b, out, coretype);
    free(out);
    return rc;
}

/* OpenBLAS core types worth trying on this processor, from the flags of /proc/cpuinfo: ""
 * (OpenBLAS's own pick) first, then each x86-64 kernel family whose instructions the CPU has,
 * newest first. Prescott (SSE3) runs on every x86-64 processor. Returns the count. */
static int coretype_candidates(const char *out[], int max)
{
    int n = 0;
    out[n++] = "";
    char flags[8192] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "flags", 5) == 0) {
                snprintf(flags, sizeof flags, " %s", strchr(line, ':') ? strchr(line, ':') + 1 : "");
                flags[strcspn(flags, "\n")] = ' ';
                break;
            }
        fclose(f);
    }
#if defined(__x86_64__)
    struct { const char *core; const char *need[5]; } fam[] = {
        {"Cooperlake", {" avx512_bf16 ", " avx512f ", " avx512bw ", " avx512vl ", " avx512dq "}},
        {"SkylakeX", {" avx512f ", " avx512bw ", " avx512vl ", " avx512dq ", " avx2 "}},
        {"Haswell", {" avx2 ", " fma ", " avx ", NULL, NULL}},
        {"Sandybridge", {" avx ", NULL, NULL, NULL, NULL}},
        {"Prescott", {" pni ", NULL, NULL, NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof fam / sizeof fam[0] && n < max; i++) {
        bool ok = true;
        for (int k = 0; k < 5 && fam[i].need[k]; k++) ok = ok && strstr(flags, fam[i].need[k]);
        if (ok) out[n++] = fam[i].core;
    }
#endif
    return n;
}

/* A program named by path (checked) or by a bare name (left to the PATH search). */
static bool runnable(const char *prog)
{
    return !strchr(prog, '/') || access(prog, X_OK) == 0;
}

static bool python_has(const char *python, const char *module)
{
    if (!runnable(python)) return false;
    char code[64];
    snprintf(code, sizeof code, "import %s", module);
    char *argv[] = {(char *)python, "-c", code, NULL};
    env_change quiet[1] = {{"PYTHONWARNINGS", "ignore"}};
    char *out = NULL;
    int rc = proc_run(argv, quiet, 1, &out, NULL, true);
    free(out);
    return rc == 0;
}

void run_peers(bench *b)
{
    const bench_opts *o = &b->opt;
    if (!b->opt.workload[1] && !b->opt.workload[2]) return;
    char p1[600], p2[600], ep[16], wu[16], lim[32], bud[32], script[600];
    snprintf(p1, sizeof p1, "%s/params-w1.f32", b->tmp);
    snprintf(p2, sizeof p2, "%s/params-w2.f32", b->tmp);
    write_params(p1, workload_get(1), b);
    write_params(p2, workload_get(2), b);
    /* The peers train what the OpenCL rows trained (the same images and epochs), so their
     * times and accuracies compare; numpy is fast enough not to need a budget. */
    snprintf(wu, sizeof wu, "%d", o->warmup);
    snprintf(bud, sizeof bud, "%g", o->budget);
    snprintf(ep, sizeof ep, "%d", b->plan_timed[1]);
    snprintf(lim, sizeof lim, "%zu", b->plan_n[1]);

    if (!python_has(o->python, "numpy")) {
        fprintf(stderr, "bench: %s with numpy not found: no numpy peer (make bench installs python3-numpy)\n", o->python);
    } else if (o->workload[1]) {
        snprintf(script, sizeof script, "%s/numpy_ref.py", o->bench_dir);
        char *argv[] = {(char *)o->python, script, "--data", (char *)o->data, "--epochs", ep,
                        "--warmup", wu, "--train-limit", lim, "--params", p1, "--budget", "0", NULL};
        /* OpenBLAS picks its kernels itself in the peer's process: an inherited core type or
         * cache size would make it someone else's numpy. Its own pick can be a slow one (an
         * OpenBLAS older than the processor falls back to Prescott), so every core type the
         * processor runs is tried too, and the fastest row is the one the speed-ups use. */
        const char *cands[8];
        int nc = coretype_candidates(cands, 8);
        double best = INFINITY;
        for (int c = 0; c < nc; c++) {
            env_change env[2] = {{"OPENBLAS_CORETYPE", cands[c][0] ? cands[c] : NULL}, {"OPENBLAS_L2_SIZE", NULL}};
            fprintf(stderr, "bench: numpy peer (workload 1, %s)\n", cands[c][0] ? cands[c] : "OpenBLAS's own kernel");
            int before = b->nrows;
            if (run_peer(b, "numpy", argv, env, 2, cands[c], cands[c][0] != '\0') != 0) continue;
            for (int i = before; i < b->nrows; i++) {
                const row *r = &b->rows[i];
                if (r->ran && r->st.median < best) {
                    best = r->st.median;
                    snprintf(b->coretype_best, sizeof b->coretype_best, "%s", cands[c]);
                }
            }
        }
    }

    /* PyTorch: the Debian Python first, then whichever python3 is first on PATH. */
    const char *cands[2] = {o->python, "python3"};
    const char *torch_py = NULL;
    for (int i = 0; i < 2 && !torch_py; i++)
        if (python_has(cands[i], "torch")) torch_py = cands[i];
    if (!torch_py) {
        snprintf(b->torch_note, sizeof b->torch_note, "PyTorch not importable by %s or python3: no torch peer", o->python);
        fprintf(stderr, "bench: %s\n", b->torch_note);
        return;
    }
    snprintf(script, sizeof script, "%s/torch_ref.py", o->bench_dir);
    for (int w = 1; w <= 2; w++) {
        if (!o->workload[w]) continue;
        char wl[4];
        snprintf(wl, sizeof wl, "%d", w);
        snprintf(ep, sizeof ep, "%d", b->plan_timed[w]);
        snprintf(lim, sizeof lim, "%zu", b->plan_n[w]);
        char *argv[] = {(char *)torch_py, script, "--data", (char *)o->data, "--epochs", ep,
                        "--warmup", wu, "--train-limit", lim, "--params1", p1, "--params2", p2,
                        "--workloads", wl, "--budget", bud, NULL};
        /* PyTorch's BLAS is the same OpenBLAS: it runs with numpy's fastest core type. */
        env_change env[2] = {{"OPENBLAS_CORETYPE", b->coretype_best[0] ? b->coretype_best : NULL},
                             {"OPENBLAS_L2_SIZE", NULL}};
        fprintf(stderr, "bench: torch peer (%s, workload %d, %s)\n", torch_py, w,
                b->coretype_best[0] ? b->coretype_best : "OpenBLAS's own kernel");
        run_peer(b, "torch", argv, env, 2, b->coretype_best, false);
    }
}
