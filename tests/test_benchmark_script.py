"""The solver benchmark's pattern sweep: its CSV reads back, and saved sweeps (older ones without a
device column, a CPU and a GPU run) merge into one figure."""
import csv
import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_solvers.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_solvers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pattern_sweep_csv_reads_back_and_merges_with_older_sweeps(tmp_path):
    bench = load_script()
    bench.main(["--patterns", "2", "--solvers", "fast", "--out-dir", str(tmp_path / "new")])
    (row,) = bench._read_csv(tmp_path / "new" / "bench_patterns.csv")
    assert row["device"] == "cpu" and row["status"] == "optimal" and row["patterns_kept"] == 2
    assert row["certified_gap"] <= 1e-4 and np.isnan(row["gd_pgd_time_s"])
    # an older sweep: no device or eps column, an empty GD time, a slower fast solve and a Clarabel row
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["patterns_kept", "solver", "status", "time_s", "gd_pgd_time_s"])
        writer.writeheader()
        writer.writerow({"patterns_kept": 2, "solver": "fast", "status": "optimal", "time_s": 1e6,
                         "gd_pgd_time_s": 31.0})
        writer.writerow({"patterns_kept": 2, "solver": "clarabel", "status": "optimal", "time_s": 20.0,
                         "gd_pgd_time_s": ""})
    rows, gd_time, eps = bench.merge_sweeps([old, tmp_path / "new" / "bench_patterns.csv"])
    by_solver = {r["solver"]: r for r in rows}
    assert sorted(by_solver) == ["clarabel", "fast"] and by_solver["clarabel"]["device"] == "cpu"
    assert by_solver["fast"]["time_s"] == row["time_s"]  # the later file's row replaced the older one
    assert gd_time == 31.0 and eps == row["eps"]
    bench.main(["--replot-patterns", str(old), str(tmp_path / "new" / "bench_patterns.csv"),
                "--out-dir", str(tmp_path / "figure")])
    assert (tmp_path / "figure" / "bench_patterns.png").stat().st_size > 0
