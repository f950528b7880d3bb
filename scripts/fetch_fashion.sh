#!/bin/sh
# Puts Fashion-MNIST (four gzip IDX files, kept compressed: the reader reads .gz) into DIR,
# each checked against data/SHA256SUMS.fashion.
# usage: fetch_fashion.sh DIR
# Source: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist), installed
# here when missing and we are root. When DIR already holds the right files it says so and
# stops. A file that fails its checksum leaves DIR as it was. Either way DIR gets
# class-names.txt, the ten class names (from data/fashion-class-names.txt), which cltrain
# reads when trained on DIR.
set -eu

dir=${1:?usage: fetch_fashion.sh DIR}
sums="$(cd "$(dirname "$0")/.." && pwd)/data/SHA256SUMS.fashion"
names="$(cd "$(dirname "$0")/.." && pwd)/data/fashion-class-names.txt"
src=/usr/share/datasets/fashion-mnist
pkg=dataset-fashion-mnist
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

[ -r "$sums" ] || { echo "fetch_fashion: cannot read $sums" >&2; exit 1; }

# shellcheck disable=SC2034 # read by dataset_lib.sh
name=fetch_fashion
# shellcheck source=scripts/dataset_lib.sh
. "$(dirname "$0")/dataset_lib.sh"

# The names beside the images, written to a temporary name and renamed.
put_names() {
    cp "$names" "$1/class-names.txt.tmp.$$" && mv "$1/class-names.txt.tmp.$$" "$1/class-names.txt"
}

if all_verified "$dir"; then
    put_names "$dir"
    echo "Fashion-MNIST is already in $dir (checksums match); class names in $dir/class-names.txt"
    exit 0
fi

have_src() { for f in $files; do [ -f "$src/$f" ] || return 1; done; }

if ! have_src; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fetch_fashion: Fashion-MNIST comes from the Debian package $pkg; install it as root:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y $pkg" >&2
        exit 1
    fi
    echo "Installing $pkg"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$pkg" || { apt-get update -qq && apt-get install -y -qq "$pkg"; }
    have_src || { echo "fetch_fashion: $pkg is installed but $src lacks the four files" >&2; exit 1; }
fi

# Checked from a private copy, so a file changing under $src cannot slip past the check.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cltrain-fashion.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
for f in $files; do cp "$src/$f" "$tmp/$f"; done
install_verified "$tmp" "$dir"
put_names "$dir"
echo "Fashion-MNIST: 60000 training and 10000 test images in $dir (checksums match), class names in $dir/class-names.txt"
