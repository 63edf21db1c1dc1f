"""Run benchmarks/bench_solvers.py (size benchmark or pattern sweep) with the settings of config.yaml's `benchmark` section."""

import os
import runpy
import sys

from _common import done, start

log = start(snakemake)
p = snakemake.params
argv = ["--solvers", p.solvers, "--tol", str(p.tol), "--device", p.device,
        "--out-dir", os.path.dirname(snakemake.output.csv), "--data", *snakemake.input]
# rule solver_benchmark: sizes; rule solver_benchmark_patterns: the pattern sweep
argv += ["--patterns", p.patterns, "--peer-limit", str(p.peer_limit)] if hasattr(p, "patterns") else ["--sizes", p.sizes]
log.info("bench_solvers.py %s", " ".join(argv))
sys.argv = [p.script, *argv]
runpy.run_path(p.script, run_name="__main__")
done(log, snakemake.output)
