"""Section VII-A: Algorithm 1 (hinge) on the n = 40 set for one P_s, repeated with fresh pattern draws."""

import numpy as np
from _common import done, start
from tqdm.auto import tqdm

from convexadv.data import Dataset
from convexadv.io import atomic_savez
from convexadv.network import recover_network
from convexadv.patterns import confidence_level, sample_patterns
from convexadv.solvers import solve_convex

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
n = train.X.shape[0]
rows = {k: [] for k in ("objective", "lower_bound", "max_violation", "solve_time", "n_found")}
best = None
for r in tqdm(range(p.repeats), desc=f"P_s = {p.n_patterns}", mininterval=5):
    rng = np.random.default_rng([p.seed, 1000 + r])
    patterns = sample_patterns(train.X, p.n_patterns, bias=p.bias, rng=rng)
    sol = solve_convex(train.X, train.y, patterns, loss=p.loss, eps=0.0, beta=p.beta, bias=p.bias,
                       solver=p.solver, **dict(p.solver_options))
    rows["objective"].append(sol.objective)
    rows["lower_bound"].append(np.nan if sol.lower_bound is None else sol.lower_bound)
    rows["max_violation"].append(sol.max_violation)
    rows["solve_time"].append(sol.solve_time)
    rows["n_found"].append(patterns.shape[1])
    log.info("repeat %d: %d distinct patterns (Theorem 2 psi*xi = %.3f), solver %s, objective %.6g, "
             "lower bound %s, max violation %.2e, %.2fs", r, patterns.shape[1], confidence_level(n, patterns.shape[1]),
             sol.solver, sol.objective, sol.lower_bound, sol.max_violation, sol.solve_time)
    if best is None or sol.objective < best.objective:
        best = sol
network = recover_network(best)
obj = np.asarray(rows["objective"])
log.info("P_s = %d: objective mean %.6g, best %.6g, worst %.6g over %d repeats", p.n_patterns, obj.mean(),
         obj.min(), obj.max(), p.repeats)
atomic_savez(snakemake.output[0], n_patterns=np.int64(p.n_patterns), solver=np.str_(best.solver),
             U=network.U, alpha=network.alpha, bias=np.bool_(network.bias),
             **{k: np.asarray(v) for k, v in rows.items()})
done(log, snakemake.output)
