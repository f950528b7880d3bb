#!/bin/sh
# Puts Fashion-MNIST (four gzip IDX files, kept compressed: the reader reads .gz) into DIR,
# each checked against data/SHA256SUMS.fashion.
# usage: fetch_fashion.sh DIR
# Source: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist), installed
# here when missing and we are root. When DIR already holds the right files it says so and
# stops. A file that fails its checksum leaves DIR as it was.
set -eu

dir=${1:?usage: fetch_fashion.sh DIR}
sums="$(cd "$(dirname "$0")/.." && pwd)/data/SHA256SUMS.fashion"
src=/usr/share/datasets/fashion-mnist
pkg=dataset-fashion-mnist
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

[ -r "$sums" ] || { echo "fetch_fashion: cannot read $sums" >&2; exit 1; }

# verify FILE: 0 when FILE exists and its SHA-256 is the one the sums file lists for its name.
verify() {
    [ -f "$1" ] || return 1
    want=$(awk -v f="$(basename "$1")" '$2 == f { print $1 }' "$sums")
    [ -n "$want" ] || return 1
    have=$(sha256sum < "$1" | cut -d' ' -f1)
    [ "$have" = "$want" ]
}

ok=1
for f in $files; do verify "$dir/$f" || { ok=0; break; }; done
if [ "$ok" = 1 ]; then
    echo "Fashion-MNIST is already in $dir (checksums match)"
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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cltrain-fashion.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

for f in $files; do
    cp "$src/$f" "$tmp/$f"
    if ! verify "$tmp/$f"; then
        echo "fetch_fashion: $src/$f: checksum mismatch (expected the SHA-256 in" \
             "data/SHA256SUMS.fashion); $dir left untouched" >&2
        exit 1
    fi
done

mkdir -p "$dir"
for f in $files; do
    cp "$tmp/$f" "$dir/.$f.part"
    mv -f "$dir/.$f.part" "$dir/$f"
done
echo "Fashion-MNIST: 60000 training and 10000 test images in $dir (checksums match)"
