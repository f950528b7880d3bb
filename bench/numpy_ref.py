#!/usr/bin/python3
"""numpy peer of cltrain-bench: the seed's numpy network (784-10-10 ReLU, softmax, full batch:
one gradient step over all training images per epoch, learning rate 0.1) in float32.

Same math as the library's trainer, in the seed's column layout (features x samples):
    Z1 = W1 X + b1, A1 = relu(Z1), Z2 = W2 A1 + b2, A2 = softmax(Z2)
    dZ2 = (A2 - onehot(Y)) / m, dW2 = dZ2 A1^T, db2 = row sums of dZ2
    dZ1 = (W2^T dZ2) * (A1 > 0), dW1 = dZ1 X^T, db1 = row sums of dZ1
    W -= lr dW, b -= lr db
(The seed's script summed db over the whole matrix; the trainer, and this peer, sum per unit.)

Initial parameters: --params FILE (float32, the library's layout: W1 10x784, b1, W2 10x10, b2,
written by cltrain-bench, so the accuracy can be checked against the C rows), else
U(-0.5, 0.5) from numpy's generator, as the seed did.

Prints one JSON line on stdout (per-epoch milliseconds of the timed epochs, test accuracy, the
BLAS numpy runs, with OpenBLAS's core type); progress goes to stderr. Used by cltrain-bench
with /usr/bin/python3 (Debian's python3-numpy), with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
removed from its environment.
"""
import argparse
import contextlib
import ctypes
import gzip
import io
import json
import math
import os
import sys
import time

import numpy as np


def read_idx(folder, name):
    """An IDX file of the MNIST folder, raw or .gz, as a numpy array."""
    path = os.path.join(folder, name)
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    elif os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            data = f.read()
    else:
        sys.exit(f"numpy_ref: {path} (or .gz) not found; run 'make data'")
    magic = int.from_bytes(data[0:4], "big")
    if magic == 0x803:
        n, rows, cols = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    if magic == 0x801:
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data, dtype=np.uint8, offset=8)[:n]
    sys.exit(f"numpy_ref: {path}: not an IDX image or label file (magic {magic:#x})")


def load_mnist(folder, train_limit=0):
    """(train images n x 784 uint8, train labels, test images, test labels)."""
    xtr = read_idx(folder, "train-images-idx3-ubyte")
    ytr = read_idx(folder, "train-labels-idx1-ubyte")
    xte = read_idx(folder, "t10k-images-idx3-ubyte")
    yte = read_idx(folder, "t10k-labels-idx1-ubyte")
    if train_limit:
        xtr, ytr = xtr[:train_limit], ytr[:train_limit]
    return xtr, ytr, xte, yte


def read_params(path, sizes):
    """The library's parameter buffer (W0 out x in, b0, W1, b1, ...) as [(W, b), ...] float32."""
    flat = np.fromfile(path, dtype="<f4")
    layers, off = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = flat[off:off + fan_in * fan_out].reshape(fan_out, fan_in).copy()
        off += fan_in * fan_out
        b = flat[off:off + fan_out].copy()
        off += fan_out
        layers.append((w, b))
    if off != flat.size:
        sys.exit(f"numpy_ref: {path} holds {flat.size} floats, {'-'.join(map(str, sizes))} needs {off}")
    return layers


def blas_description():
    """Which BLAS numpy runs: OpenBLAS's own words where the library is OpenBLAS."""
    desc = {"numpy": np.__version__}
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path.lower() and path.startswith("/"):
                libs.add(path)
    desc["libraries"] = sorted(libs)
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        # Debian's OpenBLAS names its functions plainly; the one inside numpy's wheels has a
        # scipy_ prefix and a 64_ suffix.
        for pre, suf in (("", ""), ("", "64_"), ("scipy_", "64_"), ("scipy_", "")):
            try:
                core = getattr(lib, f"{pre}openblas_get_corename{suf}")
                config = getattr(lib, f"{pre}openblas_get_config{suf}")
                threads = getattr(lib, f"{pre}openblas_get_num_threads{suf}")
            except AttributeError:
                continue
            core.restype = config.restype = ctypes.c_char_p
            desc["openblas_core"] = core().decode()
            desc["openblas_config"] = config().decode()
            desc["openblas_threads"] = int(threads())
            break
        if "openblas_core" in desc:
            break
    try:
        from threadpoolctl import threadpool_info
        desc["threadpoolctl"] = threadpool_info()
    except ImportError:
        pass
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        np.show_config()
    desc["show_config"] = text.getvalue()
    desc["environment"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                      "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                           if k in os.environ}
    return desc


def blas_summary(desc):
    tp = threadpool_summary(desc)
    tp = f" (threadpoolctl: {tp})" if tp else ""
    if "openblas_config" in desc:
        return (f"numpy {desc['numpy']}, {desc['openblas_config'].split(' NO_')[0]}, "
                f"kernel {desc['openblas_core']}, {desc['openblas_threads']} threads{tp}")
    return f"numpy {desc['numpy']}, BLAS {', '.join(desc['libraries']) or 'unknown'}"


def threadpool_summary(desc):
    """threadpoolctl's view of the BLAS pools ("openblas Cooperlake 2 threads"), where installed."""
    pools = desc.get("threadpoolctl")
    if not pools:
        return ""
    return "; ".join(f"{p.get('internal_api', '?')} {p.get('architecture', '?')} {p.get('num_threads', '?')} threads"
                     for p in pools)


def finite_or_none(x):
    """A float for JSON: NaN and infinities become null (json.dumps would write NaN, not JSON)."""
    return x if isinstance(x, float) and math.isfinite(x) else None


def budget_epochs(epoch_s, warmup, epochs, budget):
    """Timed epochs that fit the budget (the same rule as cltrain-bench: at least 3)."""
    least = min(epochs, 3)
    if budget <= 0 or (warmup + epochs) * epoch_s <= budget:
        return epochs
    return max(least, int(budget / epoch_s) - warmup)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=10, help="timed epochs")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--params", help="initial parameters written by cltrain-bench")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0, help="seconds of epochs (0 = no limit)")
    args = ap.parse_args()

    xtr, ytr, xte, yte = load_mnist(args.data, args.train_limit)
    m = xtr.shape[0]
    # The seed's layout: one column per image, scaled once at load time (so each epoch reads
    # 4 bytes per pixel where the C trainer reads the uint8 pixels).
    X = np.ascontiguousarray(xtr.T, dtype=np.float32) / np.float32(255)
    Xte = np.ascontiguousarray(xte.T, dtype=np.float32) / np.float32(255)
    Y = np.zeros((10, m), dtype=np.float32)
    Y[ytr, np.arange(m)] = 1

    sizes = [784, 10, 10]
    if args.params:
        (W1, b1), (W2, b2) = read_params(args.params, sizes)
        init = "parameters from cltrain-bench (model_init_params, uniform, seed 1)"
    else:
        rng = np.random.default_rng(args.seed)
        W1 = (rng.random((10, 784), dtype=np.float32) - np.float32(0.5))
        b1 = (rng.random(10, dtype=np.float32) - np.float32(0.5))
        W2 = (rng.random((10, 10), dtype=np.float32) - np.float32(0.5))
        b2 = (rng.random(10, dtype=np.float32) - np.float32(0.5))
        init = f"U(-0.5, 0.5) from numpy, seed {args.seed}"
    b1, b2 = b1[:, None], b2[:, None]
    lr = np.float32(args.lr)
    inv_m = np.float32(1.0 / m)

    def forward(x):
        a1 = np.maximum(W1 @ x + b1, 0)
        z2 = W2 @ a1 + b2
        z2 -= z2.max(axis=0, keepdims=True)
        e = np.exp(z2)
        return a1, e / e.sum(axis=0, keepdims=True)

    def step():
        nonlocal W1, b1, W2, b2
        a1, a2 = forward(X)
        dz2 = (a2 - Y) * inv_m
        dW2 = dz2 @ a1.T
        db2 = dz2.sum(axis=1, keepdims=True)
        dz1 = (W2.T @ dz2) * (a1 > 0)
        dW1 = dz1 @ X.T
        db1 = dz1.sum(axis=1, keepdims=True)
        W1 -= lr * dW1
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
        loss = -np.log(np.maximum(a2[ytr, np.arange(m)], np.float32(1e-30))).mean()
        return float(loss)

    all_ms = []
    for _ in range(args.warmup):
        t0 = time.perf_counter()
        step()
        all_ms.append((time.perf_counter() - t0) * 1e3)
    est = (all_ms[-1] / 1e3) if all_ms else 0.0
    if not all_ms:
        t0 = time.perf_counter()
        loss = step()
        est = time.perf_counter() - t0
        all_ms.append(est * 1e3)
        args.warmup = 1
    timed = budget_epochs(est, args.warmup, args.epochs, args.budget)
    timed_ms, loss = [], float("nan")
    for _ in range(timed):
        t0 = time.perf_counter()
        loss = step()
        timed_ms.append((time.perf_counter() - t0) * 1e3)

    t0 = time.perf_counter()
    _, p = forward(Xte)
    acc = float((p.argmax(axis=0) == yte).mean())
    eval_ms = (time.perf_counter() - t0) * 1e3

    desc = blas_description()
    s = sorted(timed_ms)
    median = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    note = "float32, images pre-scaled to float32 at load"
    if timed < args.epochs:
        note += f"; {timed} of {args.epochs} epochs timed (budget {args.budget:.0f} s)"
    out = {
        "peer": "numpy", "workload": 1, "threads": desc.get("openblas_threads", 0),
        "device": "host CPU, numpy", "blas": blas_summary(desc), "kernel": desc.get("openblas_core", ""),
        "n_train": m,
        "warmup": args.warmup, "epochs": timed, "timed_ms": timed_ms, "median_ms": median,
        "min_ms": s[0], "max_ms": s[-1], "eval_ms": eval_ms, "test_acc": finite_or_none(acc),
        "train_loss": finite_or_none(loss), "init": init, "lr": args.lr, "note": note, "blas_detail": desc,
    }
    print(f"numpy_ref: {blas_summary(desc)}; median {median:.1f} ms/epoch, test accuracy {acc:.4f}",
          file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
