/* bench.c: cltrain-bench. One run measures, on the real MNIST, every selected device (the host
 * back-end and each OpenCL device, both gemm kinds) on three workloads through the library's
 * trainer API, beside the floor of the same machine (read bandwidth of the training images and
 * peak multiply-add rate, bench/probe.c), the numpy and PyTorch peers (bench/numpy_ref.py, bench/torch_ref.py), and the
 * start-up time of the real binary. It prints a Markdown block (the one bench/RESULTS.md holds)
 * and writes the raw figures as JSON under bench/results/.
 *
 * The timed figure of a row is the training part of an epoch: the trainer is created without a
 * test set, so trainer_epoch's own `seconds` covers the steps over the training set and the
 * read-back of the epoch's sums, nothing else. The evaluation that `cltrain` adds to every epoch
 * is timed on its own (trainer_evaluate on the 10,000 test images) and shown beside it; the test
 * accuracy comes from that same library path.
 *
 * This file: the options, the run's description, the floor probes and main; the rest of a run
 * is in rows.c, startup.c, peers.c and report.c (run.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "util.h"

/* ---- options -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: cltrain-bench [OPTIONS]\n"
          "  --workloads LIST    1,2,3 (default all): 1 = 784-10-10 full batch, 2 = 784-128-10\n"
          "                      batch 64, 3 = 784-800-10 batch 128\n"
          "  --devices LIST      all (default), host, opencl, or indices and host: host,0,1\n"
          "  --gemm LIST         builtin,clblast (default both) on OpenCL devices\n"
          "  --epochs N          timed epochs per row (default 10)\n"
          "  --warmup N          warm-up epochs before them (default 2)\n"
          "  --budget S          seconds of epochs per row (default 40; 0 = no limit): a slower\n"
          "                      row gets fewer timed epochs (at least 3), then a training subset\n"
          "  --train-limit N     use the first N training images everywhere\n"
          "  --quick             smoke test: --warmup 1 --epochs 3 --train-limit 6000 --budget 15\n"
          "  --json PATH         results file (default bench/results/HOST-DATE.json)\n"
          "  --data DIR          MNIST folder (default data/mnist)\n"
          "  --cltrain PATH      the binary timed for start-up (default: beside this program)\n"
          "  --python PATH       Python with numpy for the peers (default /usr/bin/python3)\n"
          "  --no-peers, --no-startup, --no-build   leave those parts out\n"
          "  --time-to-accuracy  add the time-to-98%-accuracy rows: cltrain with a 784-800-10\n"
          "                      recipe, 3 seeds per device, stopped at 98% (minutes per PoCL\n"
          "                      device, about 45 min for the host back-end on 2 cores)\n"
          "  --probe             measure the floor only (bandwidth and peak), print it, exit\n", f);
}

static long parse_count(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        die(EXIT_USAGE, "%s takes a whole number from %ld to %ld, not '%s'", flag, lo, hi, v);
    return x;
}

static void parse_options(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->workload[1] = o->workload[2] = o->workload[3] = true;
    o->epochs = 10;
    o->warmup = 2;
    o->budget = 40;
    o->devices = "all";
    o->data = "data/mnist";
    o->python = "/usr/bin/python3";
    o->gemm[GEMM_BUILTIN] = o->gemm[GEMM_CLBLAST] = true;
    o->peers = o->startup = o->build = true;
    bool set_epochs = false, set_warmup = false, set_budget = false, set_limit = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { usage(stdout); exit(EXIT_OK); }
        if (strcmp(a, "--quick") == 0) { o->quick = true; continue; }
        if (strcmp(a, "--no-peers") == 0) { o->peers = false; continue; }
        if (strcmp(a, "--no-startup") == 0) { o->startup = false; continue; }
        if (strcmp(a, "--no-build") == 0) { o->build = false; continue; }
        if (strcmp(a, "--probe") == 0) { o->probe_only = true; continue; }
        if (strcmp(a, "--time-to-accuracy") == 0) { o->tta = true; continue; }
        if (i + 1 >= argc) die(EXIT_USAGE, "unknown option or missing value: '%s' (see --help)", a);
        const char *v = argv[++i];
        if (strcmp(a, "--workloads") == 0) {
            o->workload[1] = o->workload[2] = o->workload[3] = false;
            for (const char *p = v; *p; p++) {
                if (*p >= '1' && *p <= '3') o->workload[*p - '0'] = true;
                else if (*p != ',') die(EXIT_USAGE, "--workloads takes 1, 2, 3 separated by commas, not '%s'", v);
            }
        } else if (strcmp(a, "--devices") == 0) {
            o->devices = v;
        } else if (strcmp(a, "--gemm") == 0) {
            o->gemm[GEMM_BUILTIN] = strstr(v, "builtin") != NULL;
            o->gemm[GEMM_CLBLAST] = strstr(v, "clblast") != NULL;
            if (!o->gemm[0] && !o->gemm[1]) die(EXIT_USAGE, "--gemm takes builtin, clblast or both, not '%s'", v);
        } else if (strcmp(a, "--epochs") == 0) {
            o->epochs = (int)parse_count(a, v, 1, MAX_TIMED);
            set_epochs = true;
        } else if (strcmp(a, "--warmup") == 0) {
            o->warmup = (int)parse_count(a, v, 0, 1000);
            set_warmup = true;
        } else if (strcmp(a, "--budget") == 0) {
            char *end;
            o->budget = strtod(v, &end);
            if (end == v || *end || !(o->budget >= 0)) die(EXIT_USAGE, "--budget takes seconds (0 = no limit), not '%s'", v);
            set_budget = true;
        } else if (strcmp(a, "--train-limit") == 0) {
            o->train_limit = parse_count(a, v, 1, 1L << 40);
            set_limit = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(a, "--data") == 0) {
            o->data = v;
        } else if (strcmp(a, "--cltrain") == 0) {
            o->cltrain = v;
        } else if (strcmp(a, "--python") == 0) {
            o->python = v;
        } else {
            die(EXIT_USAGE, "unknown option '%s' (see --help)", a);
        }
    }
    if (o->quick) {
        if (!set_epochs) o->epochs = 3;
        if (!set_warmup) o->warmup = 1;
        if (!set_limit) o->train_limit = 6000;
        if (!set_budget) o->budget = 15;
    }
}

/* Which devices: host, and OpenCL indices (want_cl[i]). */
static bool parse_devices(const char *spec, int ndev, bool *want_cl)
{
    bool host = false;
    if (strcmp(spec, "all") == 0 || strcmp(spec, "opencl") == 0) {
        for (int i = 0; i < ndev; i++) want_cl[i] = true;
        return strcmp(spec, "all") == 0;
    }
    char *copy = xstrdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "host") == 0) { host = true; continue; }
        long d = parse_count("--devices", tok, 0, MAX_DEVICES - 1);
        clrt_require_device((int)d);
        want_cl[d] = true;
    }
    free(copy);
    return host;
}

/* ---- the run's description --------------------------------------------------------------------- */

static void describe_run(bench *b, int argc, char **argv)
{
    size_t len = 0;
    for (int i = 0; i < argc && len < sizeof b->cmdline; i++)
        len += (size_t)snprintf(b->cmdline + len, sizeof b->cmdline - len, "%s%s", i ? " " : "", argv[i]);
    if (gethostname(b->host, sizeof b->host) != 0) snprintf(b->host, sizeof b->host, "unknown");
    b->host[sizeof b->host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(b->date, sizeof b->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *rev[] = {"git", "rev-parse", "HEAD", NULL};
    if (!proc_line(rev, b->commit, sizeof b->commit)) snprintf(b->commit, sizeof b->commit, "unknown");
    char *st[] = {"git", "status", "--porcelain", "--untracked-files=no", NULL};
    char *out = NULL;
    if (proc_run(st, NULL, 0, &out, NULL, true) == 0 && out && *out) b->dirty = true;
    free(out);
    snprintf(b->cpu, sizeof b->cpu, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c) {
                    c += 2;
                    c[strcspn(c, "\n")] = '\0';
                    snprintf(b->cpu, sizeof b->cpu, "%s", c);
                }
                break;
            }
        fclose(f);
    }
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    b->cores = c > 0 ? (int)c : 1;
}

/* The folder of the Python peers: ./bench when the run starts at the repository root, else beside
 * the program (build/../bench). */
static const char *find_bench_dir(const char *argv0)
{
    if (access("bench/numpy_ref.py", R_OK) == 0) return "bench";
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", argv0);
    char *slash = strrchr(dir, '/');
    if (slash) {
        snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../bench");
        return dir;
    }
    return "bench";
}

static const char *find_cltrain(const char *argv0)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s", argv0);
    char *slash = strrchr(path, '/');
    if (slash) snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "cltrain");
    else snprintf(path, sizeof path, "cltrain");
    return path;
}

static void add_floor(bench *b, const char *name, const floor_probe *fp)
{
    floor_entry *fe = &b->floors[b->nfloors++];
    snprintf(fe->name, sizeof fe->name, "%s", name);
    fe->read_gbs = fp->read_gbs;
    fe->read_median = fp->read_gbs_median;
    fe->peak = fp->peak_gflops;
    fe->ok = fp->checksum_ok;
    snprintf(fe->read_how, sizeof fe->read_how, "%s", fp->read_method);
    snprintf(fe->peak_how, sizeof fe->peak_how, "%s", fp->peak_method);
    if (!fp->checksum_ok) b->failures++;
}

/* Floors of the host and of each selected device; CLBlast's usability on each. */
static void probe_all(bench *b)
{
    size_t bytes = b->data.train.n * (size_t)b->inputs;
    floor_probe fp;
    char name[200];
    fprintf(stderr, "bench: probing the host\n");
    probe_host(b->data.train.pixels, bytes, &fp);
    snprintf(name, sizeof name, "host CPU (%s)", b->cpu);
    add_floor(b, name, &fp);
    for (int d = 0; d < b->ndev; d++) {
        if (!b->want_cl[d]) continue;
        fprintf(stderr, "bench: probing cl%d (%s)\n", d, b->devs[d].name);
        probe_device(d, b->data.train.pixels, bytes, &fp);
        b->slot_of[d] = b->nfloors;
        snprintf(name, sizeof name, "cl%d %s", d, b->devs[d].name);
        add_floor(b, name, &fp);
    }
}

int main(int argc, char **argv)
{
    bench *b = xcalloc(1, sizeof *b, "the benchmark");
    b->rows = xcalloc(MAX_ROWS, sizeof *b->rows, "benchmark rows");
    bench_opts *o = &b->opt;
    parse_options(argc, argv, o);
    if (!o->cltrain) o->cltrain = find_cltrain(argv[0]);
    o->bench_dir = find_bench_dir(argv[0]);
    describe_run(b, argc, argv);

    /* Every kernel cache this process touches (cltrain's binaries, the OpenCL driver's own, such
     * as PoCL's kcache) starts empty, so the in-process build figures are real compilations and
     * no stale binary from another checkout is timed. */
    make_temp_dir("run", b->tmp, sizeof b->tmp);
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", b->tmp);
    if (mkdir(cache, 0700) != 0) die(EXIT_RUNTIME, "cannot make %s: %s", cache, strerror(errno));
    setenv("XDG_CACHE_HOME", cache, 1);

    char err[DATASET_ERR_LEN];
    if (dataset_load(o->data, 1000, &b->data, err, sizeof err) != 0)
        die(EXIT_USAGE, "%s (make data fetches MNIST)", err);
    if (o->train_limit > 0 && (size_t)o->train_limit > b->data.train.n)
        die(EXIT_USAGE, "--train-limit %ld is more than the %zu training images", o->train_limit, b->data.train.n);
    b->inputs = b->data.train.rows * b->data.train.cols;
    b->classes = b->data.train.classes;
    b->nnz_prefix = xmalloc((b->data.train.n + 1) * sizeof *b->nnz_prefix, "pixel counts");
    b->nnz_prefix[0] = 0;
    for (size_t i = 0; i < b->data.train.n; i++) {
        const uint8_t *px = b->data.train.pixels + i * (size_t)b->inputs;
        size_t c = 0;
        for (int j = 0; j < b->inputs; j++) c += px[j] != 0;
        b->nnz_prefix[i + 1] = b->nnz_prefix[i] + c;
    }

    b->ndev = clrt_list_devices(&b->devs);
    if (b->ndev > MAX_DEVICES) b->ndev = MAX_DEVICES;
    b->want_host = parse_devices(o->devices, b->ndev, b->want_cl);

    /* The floor of each device, on all the training images (a subset would fit in a cache and
     * measure the cache). */
    probe_all(b);
    if (o->probe_only) {
        for (int i = 0; i < b->nfloors; i++)
            printf("%s: read %.1f GB/s (median %.1f; %s), peak %.1f GFLOP/s (%s)\n", b->floors[i].name,
                   b->floors[i].read_gbs, b->floors[i].read_median, b->floors[i].read_how,
                   b->floors[i].peak, b->floors[i].peak_how);
        remove_tree(b->tmp);
        return b->failures ? EXIT_RUNTIME : EXIT_OK;
    }
    if (o->train_limit > 0) dataset_truncate(&b->data.train, (size_t)o->train_limit);
    fprintf(stderr, "bench: %zu training images, %d OpenCL device(s), %d+%d epochs per row, budget %.0f s\n",
            b->data.train.n, b->ndev, o->warmup, o->epochs, o->budget);

    if (o->startup) measure_startup(b);

    rows_run(b);

    if (o->peers) run_peers(b);
    rows_derive(b);
    if (o->tta) measure_tta(b);

    /* The block goes out whole before anything else is written to stderr, so a terminal or a
     * log taking both streams never gets a progress line inside it. */
    fflush(stderr);
    report_markdown(b, stdout);
    fflush(stdout);
    char path[1400];
    if (o->json_path) {
        snprintf(path, sizeof path, "%s", o->json_path);
    } else {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/results", o->bench_dir);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) die(EXIT_RUNTIME, "cannot make %s: %s", dir, strerror(errno));
        char stamp[32];
        snprintf(stamp, sizeof stamp, "%s", b->date);
        for (char *p = stamp; *p; p++)
            if (*p == ':') *p = '-';
        snprintf(path, sizeof path, "%s/%s-%s.json", dir, b->host, stamp);
    }
    report_json(b, path);
    fprintf(stderr, "bench: results in %s; %d check(s) failed\n", path, b->failures);

    remove_tree(b->tmp);
    dataset_pair_free(&b->data);
    free(b->devs);
    free(b->rows);
    free(b->nnz_prefix);
    int rc = b->failures ? EXIT_RUNTIME : EXIT_OK;
    free(b);
    return rc;
}

