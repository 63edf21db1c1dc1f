"""Exact robust accuracy (MILP, convexadv.verify) of one network at several radii eps, on a fixed random subset
of the test split (the same for every model); undecided points count as not robust."""

import numpy as np
from _common import done, start

from convexadv.data import Dataset
from convexadv.io import atomic_write_json
from convexadv.network import ReLUNetwork
from convexadv.verify import exact_robustness

log = start(snakemake)
p = snakemake.params
network = ReLUNetwork.load(snakemake.input.network)
test = Dataset.load(snakemake.input.test)
n = test.X.shape[0]
rows = np.arange(n) if p.points >= n else np.sort(np.random.default_rng(0).choice(n, p.points, replace=False))
curve = {"eps": list(p.eps_values), "points": int(rows.size), "degenerate": network.width == 0,
         "exact_robust_accuracy": [], "undecided": []}
if curve["degenerate"]:
    log.warning("degenerate model (width 0): no curve")
for eps in [] if curve["degenerate"] else p.eps_values:
    verified = exact_robustness(network, test.X[rows], test.y[rows], eps, decide_only=True, time_limit=p.time_limit,
                                lp_limit=p.lp_limit)
    curve["exact_robust_accuracy"].append(verified.robust_accuracy)
    curve["undecided"].append(verified.n_undecided)
    log.info("eps = %g: exact robust accuracy %.4f (%d undecided), %.1fs", eps, verified.robust_accuracy,
             verified.n_undecided, verified.total_seconds)
atomic_write_json(snakemake.output[0], curve)
done(log, snakemake.output)
