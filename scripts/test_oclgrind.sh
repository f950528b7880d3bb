#!/bin/sh
# make test-oclgrind: the OpenCL path on Oclgrind, a simulated GPU that checks every memory
# access and barrier, with its data-race detector on (--data-races; --uninitialized is left
# off: Oclgrind 21.10 aborts on LLVM's freeze instruction). Runs the suites of the layer
# kernels and plans (layers: every path against float64; cl_layers: every family trains the
# seed's network against the host back-end, and the binary's short training against
# --device host; fused_step: the fused mini-batch step's two kernels, work-groups of 64 items
# with barriers between the layers, against the host; augment: the distortion kernel against
# its float64 reference, every transform, on 28 x 28 and awkward image sizes; output_step: the
# output layer's one-pass kernel against float64, one slice and several; sparse_step: the
# one-hidden-layer pass over the nonzero pixels, its evaluation and sums, against float64 and
# the host, with dropout and through the shuffle index) in their quick sizes
# (CLTRAIN_TEST_QUICK=1).
#
# Oclgrind reports an invalid access, a data race or a divergent barrier on stderr and leaves
# the exit status alone, so the status alone proves nothing: every report names its kernel on
# a line "<tab>Kernel: NAME", API errors start with "Oclgrind - ", and any of them fails the
# run (the binary's own stderr is checked by the cl_layers suite the same way).
# The suites' timeouts are tripled (CK_TIMEOUT_MULTIPLIER): they are wall-clock limits, and a
# busy machine stretches the simulator's minutes of CPU time.
# Usage: sh scripts/test_oclgrind.sh BUILD_DIR DATA_DIR
set -u
build=$1
data=$2
out=$build/oclgrind
mkdir -p "$out"
tab=$(printf '\t')
rc=0
for suite in layers cl_layers fused_step augment output_step sparse_step; do
    start=$(date +%s)
    status=0
    CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-3} CLTRAIN_TEST_QUICK=1 CK_RUN_SUITE=$suite CLTRAIN_BIN="$PWD/$build/cltrain" \
        CLTRAIN_DATA="$data" CLTRAIN_KERNEL_DIR= CLTRAIN_TEST_DEVICE=0 \
        oclgrind --data-races "$build/cltrain-tests" >"$out/$suite.log" 2>&1 || status=$?
    reports=$(grep -c -e "^${tab}Kernel: " -e "Oclgrind - " "$out/$suite.log")
    echo "oclgrind: suite $suite: exit $status, $reports Oclgrind reports, $(($(date +%s) - start)) s"
    tail -n 3 "$out/$suite.log" | sed 's/^/    /'
    if [ "$status" -ne 0 ] || [ "$reports" -ne 0 ]; then
        grep -B 2 -A 6 -e "^${tab}Kernel: " -e "Oclgrind - " "$out/$suite.log" | head -n 60
        echo "oclgrind: suite $suite FAILED (the whole log: $out/$suite.log)"
        rc=1
    fi
done
exit $rc
