#!/bin/sh
# bench/mpi_scaling.sh: data-parallel scaling of cltrain under mpirun (make bench-mpi).
# Workloads 2 (784-128-10, batch 64) and 3 (784-800-10, batch 128) of bench/README.md, each at
# 1 process without mpirun, 1 rank and 2 ranks under mpirun; every rank on its own PoCL device
# limited to one core (POCL_MAX_PTHREAD_COUNT=1), the global batch the same in every row.
#   steps/s     training steps per second: steps of an epoch / median epoch time (epochs 2..E;
#               the first builds the kernels), from the run's --log; the test set is 1 image
#   efficiency  (steps/s at N ranks) / (N x steps/s at 1 rank)
#   allreduce   ms per MPI_Allreduce on rank 0 after the first epoch (the gradient sum and the
#               epoch's metric sums) and its share of that time; --profile puts a barrier before
#               each, so the wait for the slower rank is measured apart (column "waiting")
# Usage: sh bench/mpi_scaling.sh [BIN]   (env: TRAIN_LIMIT, default 12800; EPOCHS, default 4)
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-build/cltrain}
TRAIN_LIMIT=${TRAIN_LIMIT:-12800}
EPOCHS=${EPOCHS:-4}
DATA=${DATA:-data/mnist}
work=$(mktemp -d /tmp/cltrain-mpibench-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
# Open MPI's shared-memory copies use CMA (one system call per message) where ptrace is
# allowed; where a container forbids it, run with OMPI_MCA_btl_vader_single_copy_mechanism=none
# (copies through shared-memory fragments: on a loaded machine 10-70x slower for workload 3).
export POCL_MAX_PTHREAD_COUNT=1
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none"

if ! "$BIN" --version | grep -q "MPI v"; then
    echo "bench/mpi_scaling.sh: $BIN was built without MPI; install libopenmpi-dev and rebuild" >&2
    exit 1
fi

# run TAG NP FLAGS...: NP 0 = no mpirun. Prints "steps/s allreduce_ms allreduce_pct".
run() {
    tag=$1 np=$2; shift 2
    log="$work/$tag.csv"
    if [ "$np" = 0 ]; then launch=""; else launch="$MPIRUN -np $np"; fi
    # shellcheck disable=SC2086
    $launch "$BIN" --data "$DATA" --train-limit "$TRAIN_LIMIT" --test-limit 1 --epochs "$EPOCHS" \
        --device 0 --profile --log "$log" "$@" >"$work/$tag.out" 2>"$work/$tag.err" || {
        echo "bench/mpi_scaling.sh: $tag failed:" >&2; cat "$work/$tag.err" >&2; exit 1; }
    steps=$(( (TRAIN_LIMIT + batch - 1) / batch ))
    med=$(awk -F, 'NR > 2 { print $NF }' "$log" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    ar=$(sed -n 's/^allreduce: .* (\([0-9.]*\) ms each, \([0-9.]*\) % of the time), waiting .* (\([0-9.]*\) %)$/\1 \2 \3/p' "$work/$tag.out")
    [ -n "$ar" ] || ar="- - -"
    awk -v s="$steps" -v m="$med" -v ar="$ar" 'BEGIN { printf "%.2f %s\n", s / m, ar }'
}

echo "MPI scaling on $(nproc) cores, $(mpirun --version 2>&1 | head -n 1), $(date -u +%Y-%m-%dT%H:%MZ)," \
     "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $TRAIN_LIMIT images, $EPOCHS epochs"
echo
echo "| workload | processes | steps/s | speed-up | efficiency | allreduce ms/call | allreduce % of time | waiting % of time |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for w in 2 3; do
    if [ "$w" = 2 ]; then batch=64; flags="--hidden 128 --batch 64 --lr 0.1 --init he"
    else batch=128; flags="--hidden 800 --batch 128 --lr 0.1 --init he"; fi
    # shellcheck disable=SC2086
    r0=$(run "w$w-plain" 0 $flags) || exit 1
    # shellcheck disable=SC2086
    r1=$(run "w$w-np1" 1 $flags) || exit 1
    # shellcheck disable=SC2086
    r2=$(run "w$w-np2" 2 $flags) || exit 1
    # shellcheck disable=SC2086
    set -- $r0 $r1 $r2
    plain=$1 one=$5 two=$9 two_ms=${10} two_pct=${11} two_wait=${12}
    awk -v w="$w" -v p="$plain" -v o="$one" -v t="$two" -v tm="$two_ms" -v tp="$two_pct" -v tw="$two_wait" 'BEGIN {
        printf "| %s | 1, no mpirun | %.2f | | | | | |\n", w, p
        printf "| %s | 1 rank | %.2f | 1.00 | 1.00 | - | - | - |\n", w, o
        printf "| %s | 2 ranks | %.2f | %.2f | %.2f | %s | %s | %s |\n", w, t, t / o, t / (2 * o), tm, tp, tw }'
done
echo
echo "One rank under mpirun takes no allreduce (nothing to sum). The machine may be shared:"
echo "timings are noisy; rerun on a quiet machine before quoting them."
