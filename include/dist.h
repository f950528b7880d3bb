/* dist.h: data-parallel training over several processes launched by mpirun (Open MPI).
 * src/dist.c is the only file that calls MPI. Built without MPI (no libopenmpi-dev), the same
 * interface runs one process, and a launch by mpirun with more than one process is refused
 * with a message saying how to rebuild. Without mpirun nothing calls MPI at all.
 *
 * No MPI can send OpenCL buffers, so what the ranks exchange goes through host memory. */
#ifndef CLTRAIN_DIST_H
#define CLTRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Joins the job when launched by mpirun (MPI_Init), else does nothing. On ranks other than
 * 0, stdout goes to /dev/null and fatal messages are prefixed "cltrain[rank R]". */
void dist_init(int *argc, char ***argv);
/* Leaves the job after a normal end (MPI_Finalize); a fatal error exits without it, which
 * mpirun takes as a failed rank and ends the whole job. */
void dist_finalize(void);

int dist_rank(void);          /* 0 without mpirun */
int dist_size(void);          /* 1 without mpirun */
int dist_local_rank(void);    /* index among the ranks on this machine */
/* "Open MPI v4.1.4" or "built without MPI", for --version. */
const char *dist_describe(void);

/* Sums n floats over every rank, in place (MPI_Allreduce), timed into dist_allreduce_stats. */
void dist_allreduce_sum(float *buf, size_t n);
/* The largest of every rank's v (a stop request: the ranks stop at the same step). */
int dist_max_int(int v);
/* Copies bytes from rank 0 to every rank. */
void dist_broadcast(void *buf, size_t bytes);
/* Exits 2 on every rank, naming the ranks that differ, when value is not the same everywhere
 * (what: "the number of training images"). */
void dist_check_same(uint64_t value, const char *what);
/* With split on (every rank alike: it adds a barrier), each sum first waits for the slowest
 * rank (MPI_Barrier), so that the time of the sum itself is measured apart from the wait. */
void dist_split_wait(int split);
/* Seconds in dist_allreduce_sum (the wait included unless split), seconds waiting (split
 * only), and the number of calls so far. */
typedef struct { double sum_seconds, wait_seconds; long calls; } dist_stats;
dist_stats dist_allreduce_stats(void);

#endif
