"""Benchmark the fast interior-point solver against cvxpy + Clarabel / SCS / MOSEK and GD-PGD.

Every solver sees the same instances with the same sampled patterns: the adversarial hinge
program (15) with eps = 10 on the 0-255 pixel scale (``--eps``; 0 gives Algorithm 1's program (8))
and beta = 1e-4 (section VII-D), on the CIFAR-10 pair downsampled to s x s x 3 (d = 12, 48, 147,
3072 for s = 2, 4, 7, 32): from n = 100, d = 12 up to the paper's n = 600, d = 147, P_s = 36, then
the whole two-class training set, n = 10,000, with d = 147 and d = 3,072 (fast solver alone: an
interior-point solve through cvxpy would take hours). Peers:

* ``clarabel``: cvxpy + Clarabel after this package's exact presolve (what solver="clarabel" does);
* ``clarabel-plain``: cvxpy + Clarabel on the whole program, as a user would write it;
* ``scs``, ``mosek`` (MOSEK only with a working licence);
* ``gd``: training the width-72 network by GD-PGD on the same data (the usual alternative; up to
  n = 10,000 with d = 147).

Pattern sweep (``--patterns 4,8,16,24,36``): the paper's size (n = 600, d = 147) with the robust
sampler, whose patterns all survive the presolve, so the solve time is measured against the number
of surviving patterns P' (the size of the Newton systems): fast vs Clarabel after the presolve (not
run again for larger P' once it took longer than ``--peer-limit`` seconds, and stopped there by
Clarabel's own time limit) vs GD-PGD (independent of P'; one training, drawn as a line). Writes
``bench_patterns.{csv,png}``. ``--replot-patterns A.csv B.csv ...`` draws that figure from saved sweeps
instead (a CPU and a GPU run, say; a later file's rows replace an earlier one's for the same solver,
device and P').

Data: ``--data FILE ...`` npz files with arrays X (n, 3 s^2), y (made by the Snakemake rule
``solver_benchmark_data``); an instance of dimension d uses the file whose X has d columns
(balanced subset of n rows), else synthetic pixel-like data. Prints a table and writes
``bench_solvers.csv``, ``bench_solvers.md`` and ``bench_solvers.png`` to ``--out-dir``.

    python benchmarks/bench_solvers.py --sizes quick --out-dir results/benchmark
    snakemake --cores 2 solver_benchmark        # the same through the pipeline (config: benchmark)
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import time

import numpy as np

from convexadv.data import balanced_indices
from convexadv.patterns import sample_patterns
from convexadv.programs import ConvexProgram, ConvexSolveError

SIZES = {
    "quick": [(100, 12, 8), (300, 48, 16)],
    "paper": [(100, 12, 8), (300, 48, 16), (600, 147, 36)],
    "full": [(100, 12, 8), (300, 48, 16), (600, 147, 36), (10_000, 147, 36), (10_000, 3072, 36)],
}
CVXPY_SOLVERS = ("clarabel", "clarabel-plain", "scs", "mosek")
#: cvxpy solvers are skipped above this n * d (an interior-point solve through cvxpy would take hours)
CVXPY_MAX_ND = 600 * 147
#: GD-PGD (200 epochs, 40-step PGD per batch) is skipped above this n * d (it would take about an hour)
GD_MAX_ND = 10_000 * 147
BETA = 1e-4


def pixel_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic images on the 0-255 scale: per-image brightness plus pixel noise, labels
    from a random ReLU teacher on the standardised pixels."""
    rng = np.random.default_rng(seed)
    X = np.clip(rng.uniform(0, 255, (n, 1)) + rng.normal(0, 40, (n, d)), 0, 255)
    Z = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12)
    score = np.maximum(Z @ rng.standard_normal((d, 8)), 0) @ rng.standard_normal(8)
    return X, np.where(score > np.median(score), 1.0, -1.0)


def load_data(files: list[str], n: int, d: int, seed: int):
    """A balanced subset of n rows of the data file with d features (synthetic data if none)."""
    for path in files:
        with np.load(path) as arrays:
            X, y = np.asarray(arrays["X"], dtype=np.float64), np.asarray(arrays["y"], dtype=np.float64)
        if X.shape[1] == d:
            if X.shape[0] < n:
                raise ValueError(f"{path} has {X.shape[0]} rows, the benchmark needs n = {n}")
            idx = balanced_indices(y, n, seed)
            return X[idx], y[idx], os.path.basename(path)
    return (*pixel_data(n, d, seed), "synthetic")


def run_cvxpy(program, name, time_limit=None):
    from convexadv.solvers.cvxpy_backend import solve_with_cvxpy

    options = {} if time_limit is None or not name.startswith("clarabel") else {"time_limit": time_limit}
    start = time.perf_counter()
    try:
        sol = solve_with_cvxpy(program, solver=name.removesuffix("-plain"), presolve=not name.endswith("-plain"),
                               **options)
    except ConvexSolveError as err:  # e.g. MOSEK without a licence
        return {"status": f"error: {str(err).splitlines()[0][:80]}", "time": time.perf_counter() - start}
    return {"status": sol.status, "time": time.perf_counter() - start, "objective": sol.objective,
            "max_violation": sol.max_violation}


def run_fast(program, args):
    from convexadv.solvers.fast import solve_fast

    start = time.perf_counter()
    sol = solve_fast(program, tol=args.tol, time_limit=args.time_limit, device=args.device)
    return {"status": sol.status, "time": time.perf_counter() - start, "objective": sol.objective,
            "max_violation": sol.max_violation, "lower_bound": sol.lower_bound, "gap": sol.relative_gap,
            "iterations": sol.iterations, "patterns_kept": sol.info["patterns_kept"]}


def run_gd(X, y, eps):
    from convexadv.baselines import train_gd

    start = time.perf_counter()
    # the settings of config.yaml's cifar.gd: Adam, 200 epochs of batches of 60, 40 PGD steps of eps / 30
    train_gd(X, y, method="pgd", eps=eps, width=72, beta=BETA, loss="hinge", epochs=200, batch_size=60,
             lr=1e-3, pgd_steps=40, seed=0)
    return {"status": "trained", "time": time.perf_counter() - start}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", choices=sorted(SIZES), default="quick")
    parser.add_argument("--out-dir", default="benchmark_results")
    parser.add_argument("--solvers", default="fast,clarabel",
                        help="comma list from fast, clarabel, clarabel-plain, scs, mosek, gd")
    parser.add_argument("--data", nargs="*", default=[], help="npz files with arrays X, y (0-255 scale)")
    parser.add_argument("--tol", type=float, default=1e-4, help="certified relative gap of the fast solver")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds, fast solver")
    parser.add_argument("--device", default="cpu", help="torch device of the fast solver (cpu, cuda)")
    parser.add_argument("--eps", type=float, default=10.0,
                        help="perturbation radius on the 0-255 scale (0: Algorithm 1, program (8))")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patterns", default="",
                        help="comma list of P_s: run the pattern sweep (n = 600, d = 147, robust sampler) instead")
    parser.add_argument("--peer-limit", type=float, default=900.0,
                        help="seconds: a cvxpy peer is not run for larger P_s once it took longer (pattern sweep)")
    parser.add_argument("--replot-patterns", nargs="+", default=[], metavar="CSV",
                        help="draw bench_patterns.png from saved pattern-sweep CSVs (e.g. a CPU and a GPU run) "
                             "instead of running anything")
    args = parser.parse_args(argv)
    if not args.eps >= 0:
        parser.error(f"--eps must be >= 0, got {args.eps}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    solvers = [s.strip().lower() for s in args.solvers.split(",") if s.strip()]
    unknown = set(solvers) - {"fast", "gd", *CVXPY_SOLVERS}
    if unknown:
        parser.error(f"unknown solvers {sorted(unknown)}")
    os.makedirs(args.out_dir, exist_ok=True)
    if args.replot_patterns:
        rows, gd_time, eps = merge_sweeps(args.replot_patterns)
        if eps is None:
            parser.error("none of the --replot-patterns files has an eps column")
        _plot_patterns(rows, gd_time, eps, os.path.join(args.out_dir, "bench_patterns.png"))
        return
    if args.patterns:
        pattern_sweep(args, solvers, [int(p) for p in args.patterns.split(",")])
        return

    rows = []
    for n, d, P in SIZES[args.sizes]:
        X, y, source = load_data(args.data, n, d, args.seed)
        patterns = sample_patterns(X, P, eps=args.eps, rng=args.seed + 1, sampler="paper")
        program = ConvexProgram.from_data(X, y, patterns, loss="hinge", eps=args.eps, beta=BETA)
        results = {}
        for name in solvers:
            if (name in CVXPY_SOLVERS and n * d > CVXPY_MAX_ND) or (name == "gd" and n * d > GD_MAX_ND):
                continue
            if name == "fast":
                results[name] = run_fast(program, args)
            elif name == "gd":
                results[name] = run_gd(X, y, args.eps)
            else:
                results[name] = run_cvxpy(program, name)
        reference = results.get("clarabel", {}).get("objective")
        fast_time = results.get("fast", {}).get("time")
        for name, r in results.items():
            obj = r.get("objective", np.nan)
            rows.append({
                "n": n, "d": d, "P": program.n_patterns, "eps": args.eps, "data": source, "solver": name,
                "device": args.device if name == "fast" else "cpu", "status": r["status"], "time_s": r["time"],
                "objective": obj, "lower_bound": r.get("lower_bound", np.nan), "certified_gap": r.get("gap", np.nan),
                "rel_obj_diff_vs_clarabel": (obj - reference) / abs(reference) if reference else np.nan,
                "max_violation": r.get("max_violation", np.nan), "iterations": r.get("iterations", np.nan),
                "patterns_kept": r.get("patterns_kept", np.nan),
                "time_over_fast": r["time"] / fast_time if fast_time else np.nan,
            })
            print(_format(rows[-1]), flush=True)

    _write_csv(rows, os.path.join(args.out_dir, "bench_solvers.csv"))
    _markdown(rows, os.path.join(args.out_dir, "bench_solvers.md"))
    _plot(rows, args.eps, os.path.join(args.out_dir, "bench_solvers.png"))


def pattern_sweep(args, solvers, pattern_counts):
    """Solve time against the number of surviving patterns (see the module docstring)."""
    n, d = 600, 147
    X, y, source = load_data(args.data, n, d, args.seed)
    rows, slow = [], set()
    gd_time = run_gd(X, y, args.eps)["time"] if "gd" in solvers else None
    for P in pattern_counts:
        patterns = sample_patterns(X, P, eps=args.eps, rng=args.seed + 1, sampler="robust", y=y)
        program = ConvexProgram.from_data(X, y, patterns, loss="hinge", eps=args.eps, beta=BETA)
        results = {}
        for name in solvers:
            if name == "fast":
                results[name] = run_fast(program, args)
            elif name in CVXPY_SOLVERS and name not in slow:
                results[name] = run_cvxpy(program, name, time_limit=args.peer_limit)
                if results[name]["time"] > args.peer_limit:
                    slow.add(name)
        fast = results.get("fast", {})
        for name, r in results.items():
            rows.append({"n": n, "d": d, "P": program.n_patterns, "eps": args.eps,
                         "patterns_kept": fast.get("patterns_kept", np.nan),
                         "data": source, "solver": name, "device": args.device if name == "fast" else "cpu",
                         "status": r["status"], "time_s": r["time"],
                         "objective": r.get("objective", np.nan), "certified_gap": r.get("gap", np.nan),
                         "iterations": r.get("iterations", np.nan),
                         "time_over_fast": r["time"] / fast["time"] if fast else np.nan,
                         "gd_pgd_time_s": gd_time if gd_time is not None else np.nan})
            print({k: v for k, v in rows[-1].items() if k not in ("n", "d", "data")}, flush=True)
    _write_csv(rows, os.path.join(args.out_dir, "bench_patterns.csv"))
    _plot_patterns(rows, gd_time, args.eps, os.path.join(args.out_dir, "bench_patterns.png"))


def merge_sweeps(paths):
    """The rows of saved pattern sweeps, a later file's rows replacing an earlier one's for the same
    solver, device and P', with the GD-PGD time and eps of the last file that records them (None if none)."""
    latest, gd_time, eps = {}, None, None
    for path in paths:
        rows = _read_csv(path)
        latest.update({(r["solver"], r["device"], r["patterns_kept"]): r for r in rows})
        gd_time = next((r["gd_pgd_time_s"] for r in rows if not np.isnan(r.get("gd_pgd_time_s", np.nan))), gd_time)
        eps = next((r["eps"] for r in rows if "eps" in r), eps)
    return list(latest.values()), gd_time, eps


def _write_csv(rows, path):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


def _read_csv(path):
    """Rows of a CSV written by :func:`_write_csv`, numbers as floats; runs from before the device column
    was written get ``device = "cpu"`` (the fast solver ran there unless ``--device`` said otherwise)."""
    def value(text):
        try:
            return float(text) if text else np.nan
        except ValueError:
            return text

    with open(path, newline="") as fh:
        return [{"device": "cpu", **{k: value(v) for k, v in row.items()}} for row in csv.DictReader(fh)]


def _format(row) -> str:
    return (f"n={row['n']:>6} d={row['d']:>5} P={row['P']:>3} {row['solver']:>14} {row['status']:>10} "
            f"time {row['time_s']:9.2f}s  obj {row['objective']:.8g}  gap {row['certified_gap']:.1e}  "
            f"rel diff {row['rel_obj_diff_vs_clarabel']:+.1e}  viol {row['max_violation']:.1e}  "
            f"time/fast {row['time_over_fast']:.1f}x")


def _markdown(rows, path):
    head = ["n", "d", "P", "solver", "status", "time (s)", "objective", "certified gap", "rel. diff vs Clarabel",
            "max violation", "time / fast"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def cell(value, fmt):
        return "" if isinstance(value, float) and np.isnan(value) else format(value, fmt)

    for r in rows:
        cells = [r["n"], r["d"], r["P"], r["solver"], r["status"], cell(r["time_s"], ".1f"),
                 cell(r["objective"], ".8g"), cell(r["certified_gap"], ".1e"),
                 cell(r["rel_obj_diff_vs_clarabel"], "+.1e"), cell(r["max_violation"], ".1e"),
                 cell(r["time_over_fast"], ".1f") + ("x" if not np.isnan(r["time_over_fast"]) else "")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def _plot(rows, eps, path):
    fig, ax = _new_axes()
    for name in sorted({r["solver"] for r in rows}):
        pts = sorted((r["n"] * r["d"], r["time_s"]) for r in rows if r["solver"] == name)
        ax.loglog(*zip(*pts), marker="o", label=name)
    _save(fig, ax, "n * d", f"{_program_name(eps)}, beta={BETA:g}, P_s <= 36", path)


def _plot_patterns(rows, gd_time, eps, path):
    """Solve time against surviving patterns P' (log scale), one line per solver and device, GD-PGD as a line."""
    fig, ax = _new_axes()
    for name, device in sorted({(r["solver"], r["device"]) for r in rows}):
        points = sorted((r["patterns_kept"], r["time_s"], r["status"]) for r in rows
                        if r["solver"] == name and r["device"] == device)
        ax.semilogy([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{name} ({device})")
        for kept, seconds, status in points:
            if status != "optimal":  # e.g. "error: solver 'clarabel' returned status 'optimal_inaccurate' ..."
                reported = re.search(r"status '(\w+)'", status)
                ax.annotate(reported.group(1) if reported else status.split(":")[0], (kept, seconds), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
    if gd_time is not None:
        ax.axhline(gd_time, color="grey", linestyle="--", label="GD-PGD training")
    _save(fig, ax, "surviving patterns P' (robust sampler, all survive the presolve)",
          f"{_program_name(eps)}, n=600, d=147, beta={BETA:g}", path)


def _program_name(eps: float) -> str:
    return f"adversarial hinge (15), eps={eps:g}" if eps > 0 else "hinge (8), Algorithm 1"


def _new_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.5, 4.2))


def _save(fig, ax, xlabel, title, path):
    ax.set_xlabel(xlabel)
    ax.set_ylabel("wall time (s)")
    ax.set_title(title)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
