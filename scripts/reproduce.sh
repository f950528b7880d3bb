#!/bin/sh
# make reproduce: the seed report's experiments with cltrain on the default device.
# 1 and 2 hidden layers of 10 units x ReLU and sigmoid x 3, 10 and 100 epochs x lr 0.01 and
# 0.1, full batch, plus one 500-epoch run per activation (the notebook the report follows).
# Each run's CSV log goes to results/seed/, the table to results/seed/SUMMARY.md, the report's
# figures 6-34 to results/seed/figure-NN.png (drawn by `cltrain plot` from figures.tsv) and
# the contact sheet of figures 6-33 to results/seed/figures.png.
# Environment: CLTRAIN (the binary), DEVICE (index or host), OUT (the folder), DATA (the
# MNIST folder); for a quick check MAX_EPOCHS caps every run's epochs and LIMIT the number of
# training and test images (tests/test_reproduce.c runs it so).
set -eu
bin=${CLTRAIN:-build/cltrain}
device=${DEVICE:-0}
out=${OUT:-results/seed}
data=${DATA:-data/mnist}
max_epochs=${MAX_EPOCHS:-0}
limit=${LIMIT:-0}
mkdir -p "$out"
rows="$out/rows.tmp"
list="$out/figures.tsv.tmp"
: > "$rows"

# The report's figure numbers (the mapping SUMMARY.md states): configuration k = 0..11 in the
# order of the loops below (layers, activation, epochs; both learning rates in one chart) has
# its accuracy figure 6 + 2k and its MSE figure 7 + 2k; the 500-epoch runs are figures 30-33;
# the prediction grid of the 500-epoch ReLU model is figure 34.
acc_figure() { echo $((6 + 2 * $1)); }

arch() { [ "$1" = 2 ] && echo 784-10-10-10 || echo 784-10-10; }
act_name() { [ "$1" = relu ] && echo ReLU || echo sigmoid; }
# "figure-06.png" for 6.
png() { printf 'figure-%02d.png' "$1"; }

# Flags for the cut-down check: the first LIMIT training and test images.
limits=""
[ "$limit" -gt 0 ] && limits="--train-limit $limit --test-limit $limit"

# sh has no local variables: the functions' names start with their own letter (r_, f_).
run() { # layers act epochs lr [extra flags]
    r_l=$1 r_a=$2 r_e=$3 r_r=$4
    shift 4
    r_hidden=10; [ "$r_l" = 2 ] && r_hidden=10,10
    r_name="h$r_l-$r_a-e$r_e-lr$r_r"
    r_epochs=$r_e
    [ "$max_epochs" -gt 0 ] && [ "$r_epochs" -gt "$max_epochs" ] && r_epochs=$max_epochs
    # shellcheck disable=SC2086
    "$bin" --device "$device" --data "$data" $limits --hidden "$r_hidden" --activation "$r_a" \
        --epochs "$r_epochs" --lr "$r_r" --log "$out/$r_name.csv" --quiet "$@" > "$out/$r_name.txt"
    # The last CSV row: epoch,loss,mse,train_acc,test_acc,seconds
    tail -n 1 "$out/$r_name.csv" | awk -F, -v l="$r_l" -v a="$r_a" -v e="$r_e" -v r="$r_r" -v f="$figs" \
        '{ printf "| %s | %s | %s | %s | %.4f | %.4f | %.4f | %.4f | %s |\n", l, a, e, r, $4, $5, $3, $2, f }' >> "$rows"
    echo "done: $r_name"
}

# One accuracy and one MSE row of the figure list: both learning rates of a configuration.
# ReLU and sigmoid of one depth and length share the axes "h<layers>-e<epochs>".
figure_rows() { # first-figure layers act epochs lr...
    f_f=$1 f_l=$2 f_a=$3 f_e=$4
    shift 4
    f_logs=""
    for f_r in "$@"; do f_logs="$f_logs	h$f_l-$f_a-e$f_e-lr$f_r.csv	α = $f_r"; done
    f_rates=$(echo "$@" | sed 's/ / and /')
    f_what="$(arch "$f_l") $(act_name "$f_a"), $f_e full-batch epochs, α = $f_rates"
    printf '%s\taccuracy\th%s-e%s\taccuracy per epoch (train, test): %s%s\n' "$f_f" "$f_l" "$f_e" "$f_what" "$f_logs" >> "$list"
    printf '%s\tmse\th%s-e%s\tMSE per epoch (training set): %s%s\n' "$((f_f + 1))" "$f_l" "$f_e" "$f_what" "$f_logs" >> "$list"
}

printf 'figure\tchart\taxes\tcaption\tlog\tlabel...\n' > "$list"
printf "title\tThe seed report's figures 6-33 reproduced by cltrain: accuracy (left) and MSE (right) per epoch\n" >> "$list"
k=0
for layers in 1 2; do
    for act in relu sigmoid; do
        for epochs in 3 10 100; do
            f=$(acc_figure $k)
            figs="[$f]($(png "$f")), [$((f + 1))]($(png $((f + 1))))"
            for lr in 0.01 0.1; do run "$layers" "$act" "$epochs" "$lr"; done
            figure_rows "$f" "$layers" "$act" "$epochs" 0.01 0.1
            k=$((k + 1))
        done
    done
done
figs="[30]($(png 30)), [31]($(png 31)), [34]($(png 34))"
run 1 relu 500 0.1 --save "$out/h1-relu-e500-lr0.1.model"
figs="[32]($(png 32)), [33]($(png 33))"
run 1 sigmoid 500 0.1
figure_rows 30 1 relu 500 0.1
figure_rows 32 1 sigmoid 500 0.1

# Figure 34: the first 100 test images with the 500-epoch ReLU model's predictions.
# shellcheck disable=SC2086
"$bin" predict --device "$device" --data "$data" $limits \
    --load "$out/h1-relu-e500-lr0.1.model" --grid "$out/grid.png" > "$out/grid.txt"
printf '34\timage\t-\tthe first 100 MNIST test images, predicted (P) by the 500-epoch 784-10-10 ReLU model, true label (T); wrong ones in red\tgrid.png\n' >> "$list"
mv "$list" "$out/figures.tsv"
"$bin" plot "$out/figures.tsv" "$out"

device_name=$("$bin" --device "$device" --data "$data" --epochs 0 --train-limit 1 --test-limit 1 | sed -n 's/^cltrain: .* on //p')
# SUMMARY.md's figure section: one table row per figure pair, the charts beside the numbers.
figure_table() {
    echo "| figures | configuration | test acc, α = 0.01 | test acc, α = 0.1 | accuracy | MSE |"
    echo "|---|---|---|---|---|---|"
    awk -F'\t' '$2 == "accuracy" { print $1 "\t" $4 "\t" $5 "\t" $7 }' "$out/figures.tsv" |
    while IFS='	' read -r f caption log1 log2; do
        config=${caption#*: }
        acc1=$(tail -n 1 "$out/$log1" | awk -F, '{ printf "%.4f", $5 }')
        acc2=-
        [ -n "$log2" ] && acc2=$(tail -n 1 "$out/$log2" | awk -F, '{ printf "%.4f", $5 }')
        # The 500-epoch rows hold lr 0.1 alone.
        case "$log1" in *lr0.1.csv) acc2=$acc1; acc1=- ;; esac
        m=$((f + 1))
        echo "| [$f]($(png "$f")), [$m]($(png "$m")) | $config | $acc1 | $acc2 | <img src=\"$(png "$f")\" width=\"360\"> | <img src=\"$(png "$m")\" width=\"360\"> |"
    done
}
{
    echo "# The seed report's experiments, reproduced with cltrain"
    echo
    echo "Generated by \`make reproduce\` on $(date -u +%Y-%m-%d) on device $device, $device_name."
    if [ "$max_epochs" -gt 0 ] || [ "$limit" -gt 0 ]; then
        echo "**Cut down** (a check, not a result): at most $max_epochs epochs a run, $limit training and test images."
    fi
    echo "784 inputs scaled to [0,1], 10 hidden units per layer, softmax output, cross-entropy,"
    echo "full-batch gradient descent (one step per epoch), U(-0.5, 0.5) initialisation, seed 1;"
    echo "train on the 60,000 MNIST training images, test on the 10,000 test images."
    echo "All figures: [the contact sheet](figures.png) (figures 6-33), [figure 34](figure-34.png)."
    echo
    echo "| hidden layers | activation | epochs | lr | train acc | test acc | MSE | loss | figures |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$rows"
    echo
    echo "The report: 88.1 % test accuracy with ReLU and 80.4 % with sigmoid (784-10-10)."
    echo
    echo "Why the figures differ: the report trained on Kaggle's 42,000-image Digit Recognizer CSV"
    echo "and measured on 1,000 held-out rows of it (a 1,000-image test set moves by about 1 %"
    echo "with each 10 images), not on MNIST's 10,000 test images; its initial weights came from"
    echo "another generator (with 10 hidden units the draw alone moves the result by about"
    echo "+-1 %, see tests/test_trainer.c); and its \"epochs\" axis counted the iterations of a"
    echo "notebook loop. Full-batch gradient descent with 10 units needs hundreds of steps: after"
    echo "3, 10 or 100 steps the network is far from converged, so the 500-epoch rows are the"
    echo "comparable ones. \`--data train.csv --test-split 1000\` trains on the Kaggle file itself."
    echo
    echo "## The figures"
    echo
    echo "Assumed numbering (the report is not in the repository): figures 6-29 are, in the order"
    echo "of the table above (1 then 2 hidden layers; ReLU then sigmoid; 3, 10, 100 epochs), an"
    echo "accuracy figure (train solid, test dashed) and an MSE figure for each configuration,"
    echo "both learning rates in one chart (α = 0.01 and 0.1, one colour each); figures 30-33 the"
    echo "500-epoch ReLU and sigmoid runs, accuracy then MSE; figure 34 the prediction grid."
    echo "ReLU and sigmoid of one depth and length share their y axes, so the pair compares at a"
    echo "glance. \`cltrain plot results/seed/figures.tsv results/seed\` redraws them from the logs."
    echo
    figure_table
    echo
    echo "Figure 34: the first 100 test images, the prediction (P) of the 500-epoch ReLU model"
    echo "and the true label (T), wrong ones in red; in this run $(sed -n 's/^[^:]*: //p' "$out/grid.txt")."
    echo
    echo "<img src=\"$(png 34)\" width=\"680\">"
    echo
    echo "## What cltrain's curves do not show"
    echo
    echo "Held against the report's figures 6-34 as the issue describes them (the report itself is"
    echo "not in the repository, so this names what cltrain cannot draw, not a pixel comparison):"
    echo
    # shellcheck disable=SC2016
    echo '- **No test MSE.** cltrain logs the MSE of the training set only (the `mse` column of'
    echo "  \`--log\`), so the MSE figures have one curve per learning rate where the report's had"
    echo "  train and test."
    echo "- **No epoch 0.** The log's first row is after the first step; the untrained network's"
    echo "  accuracy (about 10 %) is not a point on the curves."
    echo "- **3 and 10 epochs are 3 and 10 steps.** One epoch is one full-batch gradient step, so"
    echo "  figures 6-9, 12-15, 18-21 and 24-27 show networks that have barely moved from chance"
    echo "  (10-20 %); the 2-layer sigmoid net answers one digit for every image for its first"
    echo "  steps, a flat line. Where the report's short runs learned more, its \"epoch\" was more"
    echo "  than one step (the notebook counted loop iterations)."
    echo "- **Another test set.** The test curves are measured on MNIST's 10,000 test images, not"
    echo "  on 1,000 Kaggle rows: smoother (1 image is 0.01 %, not 0.1 %), and early on a little"
    echo "  above the training curve, MNIST's test digits being slightly easier."
    echo "- **Another initial draw.** With 10 hidden units the first steps depend on the draw; the"
    echo "  shapes of the 3- and 10-step curves (which of ReLU or sigmoid starts faster) are the"
    echo "  draw's as much as the method's."
    echo "- **Figure 34** shows the first 100 MNIST test images, wrong predictions framed in red;"
    echo "  the report drew its own selection of Kaggle rows."
} > "$out/SUMMARY.md"
rm -f "$rows"
echo "wrote $out/SUMMARY.md, $out/figures.png and $out/figure-06.png to $out/figure-34.png"
