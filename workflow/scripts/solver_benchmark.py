"""Run benchmarks/bench_solvers.py with the settings of config.yaml's `benchmark` section."""

import os
import runpy
import sys

from _common import done, start

log = start(snakemake)
p = snakemake.params
argv = ["--sizes", p.sizes, "--solvers", p.solvers, "--tol", str(p.tol), "--device", p.device,
        "--out-dir", os.path.dirname(snakemake.output.csv), "--data", *snakemake.input.data]
log.info("bench_solvers.py %s", " ".join(argv))
sys.argv = [p.script, *argv]
runpy.run_path(p.script, run_name="__main__")
done(log, snakemake.output)
