"""Benchmark the fast first-order solver against cvxpy + Clarabel / SCS / MOSEK.

Every solver sees the same instances with the same sampled patterns: the
adversarial hinge program (15) with eps = 10 on a 0-255 pixel scale and
beta = 1e-4 (section VII-D), from n = 100, d = 10 up to the paper's size
n = 600, d = 147, P_s = 36, then n = 10,000 with d = 147 and d = 3,072 (fast solver
only). Data: ``--data path.npz`` (arrays X, y; e.g. the CIFAR-10 pair at 7x7x3),
otherwise synthetic pixel-like data. Prints a table and writes
``bench_solvers.csv`` and ``bench_solvers.png`` to ``--out-dir``.

    python benchmarks/bench_solvers.py --sizes quick --out-dir results/bench
    python benchmarks/bench_solvers.py --sizes paper --solvers fast,clarabel --data cifar.npz
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import logging
import os
import time

import numpy as np

from convexadv.patterns import sample_patterns
from convexadv.programs import ConvexProgram, ConvexSolveError
from convexadv.solvers.fast import solve_fast

SIZES = {
    "quick": [(100, 10, 8), (300, 50, 16)],
    "paper": [(100, 10, 8), (300, 50, 16), (600, 147, 36)],
    "full": [(100, 10, 8), (300, 50, 16), (600, 147, 36), (10_000, 147, 36), (10_000, 3072, 36)],
}
#: cvxpy solvers are skipped above this n * d (an interior-point solve would take hours)
CVXPY_MAX_ND = 600 * 147
EPS, BETA = 10.0, 1e-4


def pixel_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic images on the 0-255 scale: per-image brightness plus pixel noise, labels
    from a random ReLU teacher on the standardised pixels."""
    rng = np.random.default_rng(seed)
    X = np.clip(rng.uniform(0, 255, (n, 1)) + rng.normal(0, 40, (n, d)), 0, 255)
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12)
    score = np.maximum(Z @ rng.standard_normal((d, 8)), 0) @ rng.standard_normal(8)
    return X, np.where(score > np.median(score), 1.0, -1.0)


def load_data(path: str | None, n: int, d: int, seed: int):
    if path is not None:
        arrays = np.load(path)
        X, y = np.asarray(arrays["X"], dtype=np.float64), np.asarray(arrays["y"], dtype=np.float64)
        if X.shape[0] >= n and X.shape[1] >= d:
            return X[:n, :d], y[:n], os.path.basename(path)
    return (*pixel_data(n, d, seed), "synthetic")


def run_cvxpy(program, name):
    from convexadv.solvers.cvxpy_backend import solve_with_cvxpy

    start = time.perf_counter()
    try:
        sol = solve_with_cvxpy(program, solver=name)
    except ConvexSolveError as err:  # e.g. MOSEK without a licence
        return {"status": f"error: {str(err).splitlines()[0][:80]}", "time": time.perf_counter() - start}
    return {"status": sol.status, "time": time.perf_counter() - start, "objective": sol.objective,
            "max_violation": sol.max_violation, "lower_bound": np.nan, "iterations": np.nan}


def run_fast(program, args):
    start = time.perf_counter()
    sol = solve_fast(program, tol=args.tol, time_limit=args.time_limit, max_iter=args.max_iter)
    return {"status": sol.status, "time": time.perf_counter() - start, "objective": sol.objective,
            "max_violation": sol.max_violation, "lower_bound": sol.lower_bound,
            "iterations": sol.iterations, "patterns_kept": sol.info["patterns_kept"]}


def run_gd(X, y, args):
    from convexadv.baselines import train_gd

    start = time.perf_counter()
    train_gd(X, y, method="pgd", eps=EPS, width=72, beta=BETA, loss="hinge", seed=0)
    return {"status": "trained", "time": time.perf_counter() - start}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", choices=sorted(SIZES), default="quick")
    parser.add_argument("--out-dir", default="benchmark_results")
    parser.add_argument("--solvers", default="fast,clarabel",
                        help="comma list from fast, clarabel, scs, mosek, gd (GD-PGD training)")
    parser.add_argument("--data", default=None, help="npz file with arrays X, y (0-255 pixel scale)")
    parser.add_argument("--tol", type=float, default=1e-4, help="relative gap for the fast solver")
    parser.add_argument("--max-iter", type=int, default=100_000)
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds, fast solver")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    solvers = [s.strip().lower() for s in args.solvers.split(",") if s.strip()]
    if "gd" in solvers and importlib.util.find_spec("convexadv.baselines") is None:
        solvers.remove("gd")
    os.makedirs(args.out_dir, exist_ok=True)

    rows = []
    for n, d, P in SIZES[args.sizes]:
        X, y, source = load_data(args.data, n, d, args.seed)
        patterns = sample_patterns(X, P, eps=EPS, rng=args.seed + 1)
        program = ConvexProgram.from_data(X, y, patterns, loss="hinge", eps=EPS, beta=BETA)
        results = {}
        for name in solvers:
            if name in ("clarabel", "scs", "mosek") and n * d > CVXPY_MAX_ND:
                continue
            if name == "fast":
                results[name] = run_fast(program, args)
            elif name == "gd":
                results[name] = run_gd(X, y, args)
            else:
                results[name] = run_cvxpy(program, name)
        reference = results.get("clarabel", {}).get("objective")
        fast_time = results.get("fast", {}).get("time")
        for name, r in results.items():
            obj = r.get("objective", np.nan)
            rows.append({
                "n": n, "d": d, "P": program.n_patterns, "data": source, "solver": name, "status": r["status"],
                "time_s": r["time"], "objective": obj, "lower_bound": r.get("lower_bound", np.nan),
                "rel_obj_diff_vs_clarabel": (obj - reference) / abs(reference) if reference else np.nan,
                "max_violation": r.get("max_violation", np.nan), "iterations": r.get("iterations", np.nan),
                "patterns_kept": r.get("patterns_kept", np.nan),
                "speedup_vs_fast": r["time"] / fast_time if fast_time else np.nan,
            })
            print(_format(rows[-1]), flush=True)

    path = os.path.join(args.out_dir, "bench_solvers.csv")
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, os.path.join(args.out_dir, "bench_solvers.png"))
    print(f"wrote {path}")


def _format(row) -> str:
    return (f"n={row['n']:>6} d={row['d']:>5} P={row['P']:>3} {row['solver']:>9} {row['status']:>16} "
            f"time {row['time_s']:9.2f}s  obj {row['objective']:.8g}  lb {row['lower_bound']:.8g}  "
            f"rel diff {row['rel_obj_diff_vs_clarabel']:+.1e}  viol {row['max_violation']:.1e}  "
            f"time/fast {row['speedup_vs_fast']:.1f}x")


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({r["solver"] for r in rows}):
        pts = sorted((r["n"] * r["d"], r["time_s"]) for r in rows if r["solver"] == name)
        ax.loglog(*zip(*pts), marker="o", label=name)
    ax.set_xlabel("n * d")
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"adversarial hinge (15), eps={EPS:g}, beta={BETA:g}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
