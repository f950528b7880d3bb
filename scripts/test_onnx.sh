#!/bin/sh
# The ONNX export against real consumers (`make test-onnx`, part of `make test`): for ReLU and
# sigmoid nets of 1, 2 and 3 hidden layers (awkward widths, trained for a moment on part of
# MNIST), `--export-onnx` and `cltrain export` must write the same bytes, Debian's python3-onnx
# full checker must accept the file (tests/onnx/check_model.py) and ONNX Runtime must give, on
# the 10,000 test images, the predictions of `cltrain eval` and its probabilities within the
# tolerance below (tests/onnx/ort_compare.js).
#   CLTRAIN=build/cltrain DATA=data/mnist ORT=build/onnx-node PYTHON=/usr/bin/python3 sh scripts/test_onnx.sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
CLTRAIN=${CLTRAIN:-$root/build/cltrain}
DATA=${DATA:-$root/data/mnist}
ORT=${ORT:-$root/build/onnx-node}
PYTHON=${PYTHON:-/usr/bin/python3}
work=${WORK:-$root/build/onnx-test}
# Tolerance on each probability: |p_ort - p_cltrain| <= ABS + REL * p_cltrain. Both sides
# compute the logits z in float32, summing in different orders (cltrain's kernels, ONNX
# Runtime's MLAS) over up to 784 terms and 4 layers. A softmax output moves by at most
# 2 p max|dz|, so the error is relative to p: REL 1e-4 allows a logit error of 5e-5, several
# times float32's sqrt(n) u |z| for n = 784 and logits of size ~10-30 (ort_compare prints how
# much of the tolerance was used: about 5 %). ABS 1e-6 covers probabilities so small that the
# float32 rounding of the output and of the CSV's 9 digits dominate.
ABS_TOL=${ABS_TOL:-1e-6}
REL_TOL=${REL_TOL:-1e-4}
images=$DATA/t10k-images-idx3-ubyte
[ -f "$images" ] || images=$images.gz

rm -rf "$work"
mkdir -p "$work"
passed=0
failed=0
for act in relu sigmoid; do
    for hidden in 100 57,31 64,33,17; do
        layers=$(echo "$hidden" | tr ',' '\n' | wc -l)
        name=$act-$(echo "$hidden" | tr ',' '-')
        d=$work/$name
        mkdir -p "$d"
        ok=1
        # Trained on the host (no kernel builds for six new shapes: half this script's time on
        # PoCL with a cold cache), evaluated by `cltrain eval` on the default device (PoCL in CI).
        "$CLTRAIN" --device host --data "$DATA" --hidden "$hidden" --activation "$act" --batch 100 --epochs 2 \
            --train-limit 3000 --optimizer adam --lr 0.01 --init xavier --quiet \
            --save "$d/m.model" --export-onnx "$d/m.onnx" --export-npy "$d/npy" >"$d/train.txt" 2>&1 || ok=0
        [ $ok = 1 ] && { "$CLTRAIN" export --load "$d/m.model" --onnx "$d/export.onnx" --quiet >"$d/export.txt" 2>&1 || ok=0; }
        [ $ok = 1 ] && { cmp "$d/m.onnx" "$d/export.onnx" >"$d/cmp.txt" 2>&1 || { echo "$name: --export-onnx and cltrain export differ" >>"$d/cmp.txt"; ok=0; }; }
        [ $ok = 1 ] && { "$CLTRAIN" eval --data "$DATA" --load "$d/m.model" --predictions "$d/eval.csv" >"$d/eval.txt" 2>&1 || ok=0; }
        [ $ok = 1 ] && { "$PYTHON" "$root/tests/onnx/check_model.py" "$d/m.onnx" "$d/npy" "$act" "$layers" >"$d/check.txt" 2>&1 || ok=0; }
        [ $ok = 1 ] && { NODE_PATH=$ORT/node_modules node "$root/tests/onnx/ort_compare.js" "$d/m.onnx" "$images" \
            "$d/eval.csv" "$ABS_TOL" "$REL_TOL" >"$d/ort.txt" 2>&1 || ok=0; }
        if [ $ok = 1 ]; then
            passed=$((passed + 1))
            echo "ok   $name: $(sed -n 's/^test accuracy: \([0-9.]*\).*/cltrain eval accuracy \1/p' "$d/eval.txt")"
            sed 's/^/       /' "$d/check.txt" "$d/ort.txt"
        else
            failed=$((failed + 1))
            echo "FAIL $name:"
            cat "$d"/*.txt | sed 's/^/       /'
        fi
    done
done
# The comparison must be able to fail: one model's ONNX against another model's predictions.
if NODE_PATH=$ORT/node_modules node "$root/tests/onnx/ort_compare.js" "$work/relu-100/m.onnx" "$images" \
    "$work/sigmoid-100/eval.csv" "$ABS_TOL" "$REL_TOL" >"$work/mismatch.txt" 2>&1; then
    failed=$((failed + 1))
    echo "FAIL ort_compare accepted relu-100's model against sigmoid-100's predictions"
else
    passed=$((passed + 1))
    echo "ok   ort_compare rejects another model's predictions: $(tail -n 1 "$work/mismatch.txt")"
fi
echo "onnx: $passed passed, $failed failed"
[ $failed = 0 ]
