/* dist.c: the only file that calls MPI (see dist.h). CLTRAIN_MPI is defined by the Makefile
 * where Open MPI's development files are installed. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef CLTRAIN_MPI
#include <mpi.h>
#endif

static int rank_, size_ = 1, local_rank_;
static dist_stats stats;
static int split_wait;
static char prefix[48];

/* Set by every launcher we know of: Open MPI's mpirun (OMPI_*, PMIX_*), MPICH's and Slurm's
 * PMI. Without one of them this process was not started by mpirun. */
static long launcher_size(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return strtol(v, NULL, 10);
    }
    return getenv("PMIX_RANK") ? 2 : 0;   /* PMIx without a size: assume a real job */
}

/* Ranks other than 0 print errors only, each naming its rank. */
static void quiet_other_ranks(void)
{
    if (rank_ == 0) return;
    snprintf(prefix, sizeof prefix, "cltrain[rank %d]", rank_);
    die_set_prefix(prefix);
    fflush(stdout);
    if (!freopen("/dev/null", "w", stdout)) die(EXIT_RUNTIME, "cannot silence stdout: /dev/null");
}

#ifdef CLTRAIN_MPI
static int joined;

static void check_mpi(int rc, const char *call)
{
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    die(EXIT_RUNTIME, "%s failed on rank %d of %d: %s (another rank has probably failed; see its message)",
        call, rank_, size_, msg);
}

void dist_init(int *argc, char ***argv)
{
    if (launcher_size() <= 0) return;
    check_mpi(MPI_Init(argc, argv), "MPI_Init");
    joined = 1;
    /* Errors come back to check_mpi, which names the rank and the call, instead of aborting. */
    check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    MPI_Comm node;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    check_mpi(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank");
    MPI_Comm_free(&node);
    quiet_other_ranks();
}

void dist_finalize(void)
{
    if (!joined) return;
    joined = 0;
    fflush(stdout);
    MPI_Finalize();
}

const char *dist_describe(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS) return "MPI";
    v[strcspn(v, ",\n")] = 0;   /* "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4" */
    return v;
}

void dist_allreduce_sum(float *buf, size_t n)
{
    if (size_ == 1) return;
    double t0 = now_seconds();
    if (split_wait) {
        check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
        double t1 = now_seconds();
        stats.wait_seconds += t1 - t0;
        t0 = t1;
    }
    /* MPI counts are int: large buffers go in chunks, summed in the same order every time. */
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        check_mpi(MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)len, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                  "MPI_Allreduce");
    }
    stats.sum_seconds += now_seconds() - t0;
    stats.calls++;
}

int dist_max_int(int v)
{
    if (size_ == 1) return v;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return v;
}

void dist_broadcast(void *buf, size_t bytes)
{
    if (size_ == 1) return;
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        check_mpi(MPI_Bcast((char *)buf + off, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    }
}

void dist_check_same(uint64_t value, const char *what)
{
    if (size_ == 1) return;
    uint64_t *all = xcalloc((size_t)size_, sizeof *all, "values of every rank");
    unsigned long long v = value;
    check_mpi(MPI_Allgather(&v, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD),
              "MPI_Allgather");
    int differ = 0;
    for (int r = 1; r < size_; r++) differ |= all[r] != all[0];
    if (!differ) { free(all); return; }
    if (rank_ == 0) {
        fprintf(stderr, "cltrain: the ranks disagree on %s:", what);
        for (int r = 0; r < size_ && r < 16; r++)
            fprintf(stderr, "%s rank %d has %llu", r ? "," : "", r, (unsigned long long)all[r]);
        fprintf(stderr, "%s; every rank must read the same data and model files\n", size_ > 16 ? ", ..." : "");
    }
    free(all);
    exit(EXIT_USAGE);
}

#else /* no MPI: one process */

void dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    long n = launcher_size();
    if (n > 1) {
        const char *r = getenv("OMPI_COMM_WORLD_RANK");
        if (!r) r = getenv("PMI_RANK");
        rank_ = r ? (int)strtol(r, NULL, 10) : 0;
        quiet_other_ranks();
        die(EXIT_USAGE, "launched by mpirun as one of %ld processes, but this cltrain was built without "
            "MPI; install Open MPI (Debian: apt-get install libopenmpi-dev openmpi-bin) and rebuild "
            "with 'make', or run it without mpirun", n);
    }
}

void dist_finalize(void) {}
const char *dist_describe(void) { return "built without MPI"; }
void dist_allreduce_sum(float *buf, size_t n) { (void)buf; (void)n; }
int dist_max_int(int v) { return v; }
void dist_broadcast(void *buf, size_t bytes) { (void)buf; (void)bytes; }
void dist_check_same(uint64_t value, const char *what) { (void)value; (void)what; }

#endif

int dist_rank(void) { return rank_; }
int dist_size(void) { return size_; }
int dist_local_rank(void) { return local_rank_; }

void dist_split_wait(int split) { split_wait = split; }
dist_stats dist_allreduce_stats(void) { return stats; }
