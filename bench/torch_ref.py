#!/usr/bin/env python3
"""PyTorch (CPU) peer of cltrain-bench: workload 1 (784-10-10 ReLU, full batch) and workload 2
(784-128-10 ReLU, mini-batch 64, shuffled each epoch), SGD at learning rate 0.1, mean
cross-entropy, float32, with 1 thread and with every core.

The initial parameters come from cltrain-bench (--params1, --params2: float32 in the library's
layout), so workload 1 starts where the C rows start; workload 2's shuffle order is PyTorch's
own. Images are converted to float32 and scaled once at load. One JSON line per (workload,
threads) on stdout; progress on stderr. cltrain-bench runs it only when `import torch` works.
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_ref import blas_description, budget_epochs, finite_or_none, load_mnist, read_params  # noqa: E402


def torch_blas():
    """PyTorch's own account of its BLAS (the BLAS lines of torch.__config__.show()) and the
    OpenBLAS kernel its process runs (numpy_ref's probe of the loaded libraries)."""
    show = torch.__config__.show()
    lines = [ln.strip(" -") for ln in show.splitlines()
             if "Build settings" not in ln and any(k in ln for k in ("MKL", "OpenMP", "LAPACK", "CPU capability"))]
    # The build settings line is long (compiler flags): only its BLAS and threading entries.
    for key in ("BLAS_INFO", "LAPACK_INFO", "USE_OPENMP", "USE_MKL", "USE_MKLDNN"):
        m = re.search(rf"\b{key}=([^,\s]+)", show)
        if m:
            lines.append(f"{key}={m.group(1)}")
    desc = blas_description()
    kernel = desc.get("openblas_core", "")
    summary = f"PyTorch {torch.__version__}: " + "; ".join(lines)
    if kernel:
        summary += f"; OpenBLAS kernel {kernel}, {desc.get('openblas_threads', '?')} threads"
    return summary, kernel


def run(workload, threads, params_path, data, args):
    torch.set_num_threads(threads)
    xtr, ytr, xte, yte = data
    hidden, batch = (10, 0) if workload == 1 else (128, 64)
    layers = read_params(params_path, [784, hidden, 10])
    W1, b1 = (torch.from_numpy(a).requires_grad_() for a in layers[0])
    W2, b2 = (torch.from_numpy(a).requires_grad_() for a in layers[1])
    params = [W1, b1, W2, b2]
    X = torch.from_numpy(xtr.astype(np.float32) / np.float32(255))
    Y = torch.from_numpy(ytr.astype(np.int64))
    Xte = torch.from_numpy(xte.astype(np.float32) / np.float32(255))
    Yte = torch.from_numpy(yte.astype(np.int64))
    opt = torch.optim.SGD(params, lr=args.lr)
    gen = torch.Generator().manual_seed(1)
    n = X.shape[0]

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        logits = F.linear(F.relu(F.linear(x, W1, b1)), W2, b2)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        return loss

    def epoch():
        if batch == 0:
            return float(step(X, Y).detach())
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            total += float(step(X[idx], Y[idx]).detach()) * len(idx)
        return total / n

    warm_ms = []
    warmup = max(args.warmup, 1)
    for _ in range(warmup):
        t0 = time.perf_counter()
        epoch()
        warm_ms.append((time.perf_counter() - t0) * 1e3)
    timed = budget_epochs(warm_ms[-1] / 1e3, warmup, args.epochs, args.budget)
    timed_ms, loss = [], float("nan")
    for _ in range(timed):
        t0 = time.perf_counter()
        loss = epoch()
        timed_ms.append((time.perf_counter() - t0) * 1e3)
    with torch.no_grad():
        t0 = time.perf_counter()
        pred = F.linear(F.relu(F.linear(Xte, W1, b1)), W2, b2).argmax(dim=1)
        acc = float((pred == Yte).float().mean())
        eval_ms = (time.perf_counter() - t0) * 1e3
    s = sorted(timed_ms)
    median = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    note = "float32, images pre-scaled at load"
    if workload == 2:
        note += ", PyTorch's own shuffle"
    if timed < args.epochs:
        note += f"; {timed} of {args.epochs} epochs timed (budget {args.budget:.0f} s)"
    summary, kernel = torch_blas()
    summary += f"; torch.get_num_threads() {torch.get_num_threads()}"
    print(f"torch_ref: workload {workload}, {threads} thread(s): median {median:.1f} ms/epoch, "
          f"test accuracy {acc:.4f}", file=sys.stderr)
    return {
        "peer": "torch", "workload": workload, "threads": threads,
        "device": f"host CPU, PyTorch {torch.__version__}", "n_train": n, "warmup": warmup,
        "epochs": timed, "timed_ms": timed_ms, "median_ms": median, "min_ms": s[0],
        "max_ms": s[-1], "eval_ms": eval_ms, "test_acc": finite_or_none(acc),
        "train_loss": finite_or_none(loss),
        "note": note, "kernel": kernel, "blas": summary, "torch_blas": summary,
        "torch_config": torch.__config__.show(), "torch_parallel": torch.__config__.parallel_info(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--params1", required=True)
    ap.add_argument("--params2", required=True)
    ap.add_argument("--workloads", default="1,2")
    ap.add_argument("--threads", default="1,all", help="comma list of counts, 'all' = every core")
    ap.add_argument("--budget", type=float, default=0)
    args = ap.parse_args()
    data = load_mnist(args.data, args.train_limit)
    cores = os.cpu_count() or 1
    counts = []
    for t in args.threads.split(","):
        c = cores if t == "all" else int(t)
        if c not in counts:
            counts.append(c)
    for w in (int(x) for x in args.workloads.split(",") if x):
        for c in counts:
            path = args.params1 if w == 1 else args.params2
            print(json.dumps(run(w, c, path, data, args)), flush=True)


if __name__ == "__main__":
    main()
