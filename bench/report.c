/* report.c: the benchmark's reports (see run.h): the Markdown block bench/RESULTS.md holds
 * and the raw figures as JSON. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"
#include "util.h"

/* ---- reports ---------------------------------------------------------------------------------- */

/* x with `decimals` decimals and a suffix, or a dash when it is not a number. */
static void fmt(char *buf, size_t len, double x, int decimals, const char *suffix)
{
    if (isfinite(x)) snprintf(buf, len, "%.*f%s", decimals, x, suffix);
    else snprintf(buf, len, "–");
}

/* x with three significant digits (no exponent below 1e6), or a dash. */
static void sig3(char *buf, size_t len, double x)
{
    if (!isfinite(x)) { snprintf(buf, len, "–"); return; }
    double a = fabs(x);
    int dec = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : a >= 0.01 ? 4 : 5;
    snprintf(buf, len, "%.*f", dec, x);
}

/* The fastest row of a kind on workload w (per image), NULL when none ran. */
static const row *best_of(const bench *b, row_kind kind, int w)
{
    const row *best = NULL;
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        if (r->kind != kind || r->workload != w || !r->ran || r->failed) continue;
        if (!best || r->st.median / (double)r->n_train < best->st.median / (double)best->n_train) best = r;
    }
    return best;
}

/* Which BLAS and kernel each peer ran, in the peers' own words. */
static void peer_configs(const bench *b, FILE *f)
{
    bool any = false;
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        if (r->kind != ROW_NUMPY || !r->ran) continue;
        if (!any) fprintf(f, "\nnumpy peer, one run per OpenBLAS core type this CPU runs (OPENBLAS_CORETYPE and "
                             "OPENBLAS_L2_SIZE removed, then each candidate forced; the fastest, in bold, is the "
                             "table's numpy row and the one *vs numpy* uses):\n\n");
        any = true;
        fprintf(f, "- %s%s: %s, median %.1f ms [%.1f–%.1f] over %d epochs, test acc %.4f, %s%s\n",
                r->peer_best ? "**" : "", r->coretype[0] ? r->coretype : "OpenBLAS's own choice", r->blas,
                r->st.median, r->st.min, r->st.max, r->timed, r->test_acc, r->check, r->peer_best ? "**" : "");
    }
    if (!any && b->blas[0]) fprintf(f, "\nnumpy peer: %s.\n", b->blas);
    if (b->torch_blas[0])
        fprintf(f, "\nPyTorch peer (OPENBLAS_CORETYPE %s): %s. *vs torch* uses the fastest torch row "
                   "of each workload, whatever its thread count.\n",
                b->coretype_best[0] ? b->coretype_best : "unset, OpenBLAS's own choice", b->torch_blas);
    if (b->torch_note[0]) fprintf(f, "\n%s.\n", b->torch_note);
}

/* Time-to-accuracy table (tta.c). */
static void report_tta(const bench *b, FILE *f)
{
    if (!b->ntta) return;
    char rec[512];
    fprintf(f, "\n**Time to %.0f %% test accuracy** (wall time from the start of the `cltrain` process, data "
               "loading and kernel cache included, to the end of the first epoch at %.0f %%, the evaluation of "
               "that epoch included; warm kernel cache; recipe `%s` (the 784-800-10 record's without dropout, cosine over 8 epochs), stopped there; "
               "mean over %d seeds):\n\n", 100 * TTA_TARGET, 100 * TTA_TARGET, tta_recipe(rec, sizeof rec),
            TTA_SEEDS);
    fprintf(f, "| device | mean s | per seed: s (epoch) |\n|---|---|---|\n");
    for (int i = 0; i < b->ntta; i++) {
        const tta_entry *e = &b->tta[i];
        char mean[32];
        fmt(mean, sizeof mean, e->mean, 2, "");
        fprintf(f, "| %s | %s%s | ", e->device, e->ok ? "" : "**not reached** ", mean);
        for (int s = 0; s < e->nseeds; s++) {
            if (isfinite(e->seconds[s])) fprintf(f, "%s%.2f (%ld)", s ? ", " : "", e->seconds[s], e->epoch[s]);
            else fprintf(f, "%snot reached (exit %d, epoch %ld at %.4f)", s ? ", " : "", e->rc[s], e->epoch[s],
                         e->last_acc[s]);
        }
        fprintf(f, " |\n");
    }
}

/* "What it shows", written from this run's figures only: per workload the fastest cltrain row
 * against the fastest peer row, its % of floor, and the start-up and time-to-accuracy figures. */
static void report_summary(const bench *b, FILE *f)
{
    fprintf(f, "\n**What this run shows** (generated from the tables above; ratios within this run):\n\n");
    for (int w = 1; w <= 3; w++) {
        const row *best = NULL, *host = best_of(b, ROW_HOST, w);
        for (int i = 0; i < b->nrows; i++) {
            const row *r = &b->rows[i];
            if (r->kind != ROW_OPENCL || r->workload != w || !r->ran || r->failed) continue;
            if (!best || r->st.median / (double)r->n_train < best->st.median / (double)best->n_train) best = r;
        }
        if (!best) best = host;
        if (!best) continue;
        const workload *wl = workload_get(w);
        fprintf(f, "- Workload %d (%s): fastest cltrain row %s %s, %.1f ms per epoch of %zu images (%.1f ms more "
                   "to evaluate the test set), %.1f %% of its floor",
                w, wl->name, best->device, best->gemm, best->st.median, best->n_train, best->eval_ms, best->pct_floor);
        const row *np = best_of(b, ROW_NUMPY, w), *tr = best_of(b, ROW_TORCH, w);
        if (np && isfinite(best->vs_numpy))
            fprintf(f, "; %.2f× the fastest numpy row (%s, %.1f ms)", best->vs_numpy, np->gemm, np->st.median);
        if (tr && isfinite(best->vs_torch))
            fprintf(f, "; %.2f× the fastest PyTorch row (%s, %.1f ms)", best->vs_torch, tr->gemm, tr->st.median);
        if (host && host != best && best->kind == ROW_OPENCL)
            fprintf(f, "; %.1f× the plain-C host back-end",
                    (host->st.median / (double)host->n_train) / (best->st.median / (double)best->n_train));
        fprintf(f, ".\n");
    }
    const startup_entry *s = &b->startup;
    if (s->ran && !s->cold_rc && !s->warm_rc)
        fprintf(f, "- Start-up to the end of the first epoch of `%s`: %.2f s cold, %.2f s warm (medians of %d).\n",
                s->command, s->cold.median, s->warm.median, STARTUP_RUNS);
    for (int i = 0; i < b->ntta; i++)
        if (b->tta[i].ok)
            fprintf(f, "- Time to %.0f %% on %s: %.2f s (mean of %d seeds).\n", 100 * TTA_TARGET, b->tta[i].device,
                    b->tta[i].mean, b->tta[i].nseeds);
    if (b->failures) fprintf(f, "- %d check(s) failed: this run is not a result.\n", b->failures);
}

void report_markdown(const bench *b, FILE *f)
{
    const bench_opts *o = &b->opt;
    fprintf(f, "<!-- cltrain-bench: paste from here -->\n");
    fprintf(f, "Run: `%s` on %s (%s, %d cores), %s, commit %s%s.\n\n", b->cmdline, b->host, b->cpu,
            b->cores, b->date, b->commit, b->dirty ? " with uncommitted changes" : "");
    fprintf(f, "| # | device | platform | driver | OpenCL C |\n|---|---|---|---|---|\n");
    if (b->want_host) fprintf(f, "| host | host back-end (plain C, one thread) | – | – | – |\n");
    for (int i = 0; i < b->ndev; i++)
        if (b->want_cl[i])
            fprintf(f, "| cl%d | %s | %s | %s | %s |\n", i, b->devs[i].name, b->devs[i].platform,
                    b->devs[i].driver, b->devs[i].opencl_c);
    peer_configs(b, f);

    fprintf(f, "\n**Floor** (measured in this run; floor time = max(image bytes / read bandwidth, "
               "FLOP / peak), the FLOP of the gemms with the first layer's counted over nonzero "
               "pixels only (%.1f%% of them); a CPU device uses the better of its probe and the host's):\n\n",
            100.0 * (double)b->nnz_prefix[b->data.train.n] / ((double)b->data.train.n * (double)b->inputs));
    fprintf(f, "| device | read GB/s best (median) | read probe | peak GFLOP/s | peak probe |\n|---|---|---|---|---|\n");
    for (int i = 0; i < b->nfloors; i++) {
        const floor_entry *e = &b->floors[i];
        fprintf(f, "| %s | %.1f (%.1f)%s | %s | %.1f | %s |\n", e->name, e->read_gbs, e->read_median,
                e->ok ? "" : " **checksum FAIL**", e->read_how, e->peak, e->peak_how);
    }

    fprintf(f, "\n**Steady epochs** (training only: trainer_epoch's own seconds on a trainer without a "
               "test set, %d warm-up then timed epochs, budget %.0f s per row; `cltrain` prints "
               "train + eval per epoch; GFLOP/s counts the dense gemm FLOP, %% of floor = floor / median):\n\n",
            o->warmup, o->budget);
    fprintf(f, "| wl | device | gemm | images | epochs | train ms/epoch median [min–max] | eval ms | GB/s | "
               "GFLOP/s | floor ms | %% of floor | vs numpy | vs torch | test acc | check |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 1; w <= 3; w++) {
        for (int i = 0; i < b->nrows; i++) {
            const row *r = &b->rows[i];
            if (r->workload != w || r->listed_only) continue;
            if (!r->ran) {
                fprintf(f, "| %d | %s | %s | – | – | not run: %s | | | | | | | | | |\n", w, r->device, r->gemm, r->note);
                continue;
            }
            char eval[32], vn[32], vt[32], pct[32], acc[32], gbs[32], gfl[32], flo[32];
            fmt(eval, sizeof eval, r->eval_ms, 1, "");
            fmt(vn, sizeof vn, r->vs_numpy, 2, "×");
            fmt(vt, sizeof vt, r->vs_torch, 2, "×");
            fmt(acc, sizeof acc, r->test_acc, 4, "");
            sig3(pct, sizeof pct, r->pct_floor);
            if (r->over_floor) strcat(pct, " (!)");
            sig3(gbs, sizeof gbs, r->gbs);
            sig3(gfl, sizeof gfl, r->gflops);
            sig3(flo, sizeof flo, r->floor_ms);
            bool subset = r->n_train < b->data.train.n;
            fprintf(f, "| %d | %s | %s | %zu%s | %d+%d | %.1f [%.1f–%.1f] | %s | %s | %s | %s | %s | %s | %s | %s | %s%s%s |\n",
                    w, r->device, r->gemm, r->n_train, subset ? "*" : "", r->warmup, r->timed,
                    r->st.median, r->st.min, r->st.max, eval, gbs, gfl, flo, pct, vn, vt, acc,
                    r->failed ? "**" : "", r->check, r->failed ? "**" : "");
        }
    }
    bool any_note = false;
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        if (r->listed_only || (!r->note[0] && !r->clblast_unused && !r->over_floor)) continue;
        if (!any_note) fprintf(f, "\n");
        any_note = true;
        fprintf(f, "- wl %d, %s, %s: %s%s%s\n", r->workload, r->device, r->gemm, r->note,
                r->note[0] && r->clblast_unused ? "; " : "",
                r->clblast_unused ? "a profiled epoch with --gemm clblast showed no CLBlast call: "
                                    "this row times the same kernels as builtin" : "");
        if (r->over_floor)
            fprintf(f, "- wl %d, %s, %s: (!) faster than the floor: a probe under-measured this "
                       "machine (noise), or the floor model misses something this row does\n",
                    r->workload, r->device, r->gemm);
    }

    if (b->startup.ran || b->nbuilds) {
        fprintf(f, "\n**Start-up** (separate from the steady epochs):\n\n| what | seconds |\n|---|---|\n");
        const startup_entry *s = &b->startup;
        if (s->ran) {
            fprintf(f, "| `%s`, empty XDG_CACHE_HOME (cold: no compiled kernels cached), median [min–max] of %d%s | "
                    "%.2f [%.2f–%.2f] |\n", s->command, STARTUP_RUNS, s->cold_rc ? " **FAILED**" : "",
                    s->cold.median, s->cold.min, s->cold.max);
            fprintf(f, "| same, right after each cold run on the cache it filled (warm)%s | %.2f [%.2f–%.2f] |\n",
                    s->warm_rc ? " **FAILED**" : "", s->warm.median, s->warm.min, s->warm.max);
        }
        for (int i = 0; i < b->nbuilds; i++) {
            const build_entry *e = &b->builds[i];
            const char *g = e->gemm == GEMM_CLBLAST ? "clblast" : "builtin";
            fprintf(f, "| cl%d %s: backend_cl_create | %.3f |\n", e->cl_index, g, e->open_s);
            fprintf(f, "| cl%d %s: kernel builds, in process (first trainer_create+epoch %.3f − second %.3f) | %.3f |\n",
                    e->cl_index, g, e->first_s, e->second_s, e->first_s - e->second_s);
            fprintf(f, "| cl%d %s: loading the cached kernels (new back-end %.3f − second %.3f; on PoCL, PoCL's own cache) | %.3f |\n",
                    e->cl_index, g, e->cached_s, e->second_s, e->cached_s - e->second_s);
        }
    }
    report_tta(b, f);
    report_summary(b, f);
    fprintf(f, "\nChecks failed: %d.\n<!-- cltrain-bench: paste to here -->\n", b->failures);
}

void report_json(const bench *b, const char *path)
{
    char tmp[1500];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) die(EXIT_RUNTIME, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "{\n  \"schema\": \"cltrain-bench/1\",\n  \"command\": ");
    json_put_string(f, b->cmdline);
    fprintf(f, ",\n  \"host\": "); json_put_string(f, b->host);
    fprintf(f, ",\n  \"date\": "); json_put_string(f, b->date);
    fprintf(f, ",\n  \"git_commit\": "); json_put_string(f, b->commit);
    fprintf(f, ",\n  \"git_dirty\": %s", b->dirty ? "true" : "false");
    fprintf(f, ",\n  \"cpu\": "); json_put_string(f, b->cpu);
    fprintf(f, ",\n  \"cores\": %d,\n  \"options\": {\"epochs\": %d, \"warmup\": %d, \"budget_s\": ",
            b->cores, b->opt.epochs, b->opt.warmup);
    json_put_number(f, b->opt.budget);
    fprintf(f, ", \"train_images\": %zu, \"quick\": %s},\n", b->data.train.n, b->opt.quick ? "true" : "false");
    const char *envs[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CLTRAIN_KERNEL_DIR", "POCL_DEVICES",
                          "POCL_MAX_PTHREAD_COUNT", "OCL_ICD_FILENAMES"};
    fprintf(f, "  \"environment\": {");
    int ne = 0;
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        const char *v = getenv(envs[i]);
        if (!v) continue;
        fprintf(f, "%s\"%s\": ", ne++ ? ", " : "", envs[i]);
        json_put_string(f, v);
    }
    fprintf(f, "},\n  \"devices\": [");
    for (int i = 0; i < b->ndev; i++) {
        const clrt_device_desc *d = &b->devs[i];
        fprintf(f, "%s\n    {\"index\": %d, \"selected\": %s, \"name\": ", i ? "," : "", d->index,
                b->want_cl[i] ? "true" : "false");
        json_put_string(f, d->name);
        fprintf(f, ", \"platform\": "); json_put_string(f, d->platform);
        fprintf(f, ", \"type\": "); json_put_string(f, d->type);
        fprintf(f, ", \"driver\": "); json_put_string(f, d->driver);
        fprintf(f, ", \"opencl_c\": "); json_put_string(f, d->opencl_c);
        fprintf(f, ", \"compute_units\": %u, \"clock_mhz\": %u, \"clblast_usable\": %s}", d->compute_units,
                d->clock_mhz, b->clblast_ok[i] ? "true" : "false");
    }
    fprintf(f, "\n  ],\n  \"floor\": [");
    for (int i = 0; i < b->nfloors; i++) {
        const floor_entry *e = &b->floors[i];
        fprintf(f, "%s\n    {\"device\": ", i ? "," : "");
        json_put_string(f, e->name);
        fprintf(f, ", \"read_gbs\": "); json_put_number(f, e->read_gbs);
        fprintf(f, ", \"read_gbs_median\": "); json_put_number(f, e->read_median);
        fprintf(f, ", \"read_checksum_ok\": %s, \"read_probe\": ", e->ok ? "true" : "false");
        json_put_string(f, e->read_how);
        fprintf(f, ", \"peak_gflops\": "); json_put_number(f, e->peak);
        fprintf(f, ", \"peak_probe\": "); json_put_string(f, e->peak_how);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"rows\": [");
    static const char *kinds[] = {"host", "opencl", "numpy", "torch"};
    for (int i = 0; i < b->nrows; i++) {
        const row *r = &b->rows[i];
        fprintf(f, "%s\n    {\"kind\": \"%s\", \"workload\": %d, \"workload_name\": ", i ? "," : "",
                kinds[r->kind], r->workload);
        json_put_string(f, workload_get(r->workload)->name);
        fprintf(f, ", \"device\": "); json_put_string(f, r->device);
        fprintf(f, ", \"opencl_index\": %d, \"gemm\": ", r->cl_index);
        json_put_string(f, r->gemm);
        fprintf(f, ", \"ran\": %s, \"train_images\": %zu, \"warmup\": %d, \"timed\": %d, \"timed_ms\": [",
                r->ran ? "true" : "false", r->n_train, r->warmup, r->timed);
        for (int k = 0; k < r->timed && r->ran; k++) {
            if (k) fputs(", ", f);
            json_put_number(f, r->ms[k]);
        }
        fprintf(f, "]");
        struct { const char *k; double v; } nums[] = {
            {"median_ms", r->st.median}, {"min_ms", r->st.min}, {"max_ms", r->st.max},
            {"estimate_ms", r->estimate_ms}, {"eval_ms", r->eval_ms}, {"gbs", r->gbs},
            {"gflops_dense", r->gflops}, {"floor_gflop", r->floor_gflop}, {"floor_ms", r->floor_ms},
            {"pct_of_floor", r->pct_floor},
            {"speedup_vs_numpy", r->vs_numpy}, {"speedup_vs_torch", r->vs_torch},
            {"test_acc", r->test_acc}, {"train_acc", r->train_acc}, {"train_loss", r->loss},
        };
        if (r->kind == ROW_NUMPY || r->kind == ROW_TORCH) {
            fprintf(f, ", \"openblas_coretype_forced\": ");
            json_put_string(f, r->coretype);
            fprintf(f, ", \"fastest_of_peer\": %s", r->peer_best ? "true" : "false");
        }
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
            fprintf(f, ", \"%s\": ", nums[k].k);
            json_put_number(f, r->ran ? nums[k].v : NAN);
        }
        fprintf(f, ", \"check\": "); json_put_string(f, r->check);
        fprintf(f, ", \"check_failed\": %s, \"clblast_not_called\": %s, \"note\": ", r->failed ? "true" : "false",
                r->clblast_unused ? "true" : "false");
        json_put_string(f, r->note);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"kernel_build\": [");
    for (int i = 0; i < b->nbuilds; i++) {
        const build_entry *e = &b->builds[i];
        fprintf(f, "%s\n    {\"opencl_index\": %d, \"gemm\": \"%s\", \"open_s\": ", i ? "," : "",
                e->cl_index, e->gemm == GEMM_CLBLAST ? "clblast" : "builtin");
        json_put_number(f, e->open_s);
        fprintf(f, ", \"first_create_epoch_s\": "); json_put_number(f, e->first_s);
        fprintf(f, ", \"second_create_epoch_s\": "); json_put_number(f, e->second_s);
        fprintf(f, ", \"cached_create_epoch_s\": "); json_put_number(f, e->cached_s);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"startup\": ");
    const startup_entry *s = &b->startup;
    if (s->ran) {
        fprintf(f, "{\"command\": ");
        json_put_string(f, s->command);
        const double *v[] = {s->cold_s, s->warm_s, s->cold_train_s, s->warm_train_s};
        const char *names[] = {"cold_s", "warm_s", "cold_epoch_s", "warm_epoch_s"};
        for (int k = 0; k < 4; k++) {
            fprintf(f, ", \"%s\": [", names[k]);
            for (int i = 0; i < STARTUP_RUNS; i++) {
                if (i) fputs(", ", f);
                json_put_number(f, v[k][i]);
            }
            fputs("]", f);
        }
        fprintf(f, ", \"cold_exit\": %d, \"warm_exit\": %d}", s->cold_rc, s->warm_rc);
    } else {
        fputs("null", f);
    }
    fprintf(f, ",\n  \"numpy_best_coretype\": ");
    json_put_string(f, b->coretype_best);
    fprintf(f, ",\n  \"torch_blas\": ");
    json_put_string(f, b->torch_blas);
    fprintf(f, ",\n  \"time_to_accuracy\": {\"target\": %.2f, \"recipe\": ", TTA_TARGET);
    char rec[512];
    json_put_string(f, tta_recipe(rec, sizeof rec));
    fprintf(f, ", \"devices\": [");
    for (int i = 0; i < b->ntta; i++) {
        const tta_entry *e = &b->tta[i];
        fprintf(f, "%s\n    {\"device\": ", i ? "," : "");
        json_put_string(f, e->device);
        fprintf(f, ", \"mean_s\": ");
        json_put_number(f, e->mean);
        fprintf(f, ", \"reached\": %s, \"seeds\": [", e->ok ? "true" : "false");
        for (int k = 0; k < e->nseeds; k++) {
            fprintf(f, "%s{\"seed\": %d, \"seconds\": ", k ? ", " : "", k + 1);
            json_put_number(f, e->seconds[k]);
            fprintf(f, ", \"epoch\": %ld, \"last_test_acc\": ", e->epoch[k]);
            json_put_number(f, e->last_acc[k]);
            fprintf(f, ", \"exit\": %d}", e->rc[k]);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "%s]}", b->ntta ? "\n  " : "");
    fprintf(f, ",\n  \"peer_output\": [");
    for (int i = 0; i < b->npeer_lines; i++) fprintf(f, "%s\n    %s", i ? "," : "", b->peer_lines[i]);
    fprintf(f, "\n  ],\n  \"checks_failed\": %d\n}\n", b->failures);
    if (fclose(f) != 0 || rename(tmp, path) != 0) die(EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
}
