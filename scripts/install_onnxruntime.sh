#!/bin/sh
# Installs ONNX Runtime for Node (npm's onnxruntime-node, the version pinned with its integrity
# hashes in tests/onnx/package-lock.json) into DIR (build/onnx-node), for the ONNX export tests.
# Nothing is done when DIR already holds that lock file's install. The package ships its CPU
# library; --ignore-scripts skips its postinstall step, which would fetch CUDA libraries from
# outside the npm registry.
set -eu
dir=${1:-build/onnx-node}
src=$(dirname "$0")/../tests/onnx
# npm (with node) is on the project's machines; where it is not, Debian's npm brings both.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    sh "$(dirname "$0")/install_deps.sh" npm
fi
if [ -f "$dir/node_modules/onnxruntime-node/package.json" ] && cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
    exit 0
fi
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
echo "Installing onnxruntime-node into $dir (npm ci)"
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
