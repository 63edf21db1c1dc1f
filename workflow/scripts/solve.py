"""Stage 3: solve the convex program (8) / (15) / (18) and save the solution with its certificate.

A program whose optimum is the zero network (e.g. every sampled robust cone (11) is {0}) is not an error of
the pipeline but a result of the method: it is saved with status "degenerate" and the library's reason, and
every later stage reports it as such (never as a 0 % accuracy row)."""

import numpy as np
from _common import done, start

from convexadv.data import Dataset
from convexadv.io import atomic_savez, atomic_write_json
from convexadv.programs import DegenerateSolutionError
from convexadv.solvers import solve_convex

log = start(snakemake)
p = snakemake.params
train = Dataset.load(snakemake.input.train)
with np.load(snakemake.input.patterns) as f:
    patterns, n_usable, n_splitting = f["patterns"], int(f["n_usable"]), int(f["n_splitting"])
log.info("solving %s-loss program with eps = %g, beta = %g, bias = %s: n = %d, d = %d, P = %d (%d usable under "
         "(11)), solver %s %s", p.loss, p.eps, p.beta, p.bias, train.X.shape[0], train.X.shape[1], patterns.shape[1],
         n_usable, p.solver, dict(p.solver_options))
degenerate_reason = None
try:
    solution = solve_convex(train.X, train.y, patterns, loss=p.loss, eps=p.eps, beta=p.beta, bias=p.bias,
                            solver=p.solver, verbose=True, **dict(p.solver_options))
except DegenerateSolutionError as error:
    solution, degenerate_reason = error.solution, error.reason
    log.warning("degenerate result: %s", degenerate_reason)
gap = solution.relative_gap
certificate = {
    "solver": solution.solver,
    "status": "degenerate" if degenerate_reason else solution.status,
    "degenerate_reason": degenerate_reason,
    "loss": solution.loss,
    "eps": solution.eps,
    "beta": solution.beta,
    "bias": solution.bias,
    "n": int(train.X.shape[0]),
    "d": int(train.X.shape[1]),
    "n_patterns": int(patterns.shape[1]),
    "patterns_usable": n_usable,
    "patterns_splitting": n_splitting,
    "objective": solution.objective,
    "lower_bound": solution.lower_bound,
    "relative_gap": gap,
    "max_violation": solution.max_violation,
    "solve_time": solution.solve_time,
    "iterations": solution.iterations,
    # scalar diagnostics only
    "info": {k: v for k, v in solution.info.items() if isinstance(v, (bool, int, float, str, type(None)))},
}
log.info("certificate: solver %s, status %s, objective %.6g, lower bound %s, relative gap %s, "
         "max violation %.2e, %.2fs, %s iterations", solution.solver, certificate["status"], solution.objective,
         "n/a" if solution.lower_bound is None else f"{solution.lower_bound:.6g}",
         "n/a" if gap is None else f"{gap:.2e}", solution.max_violation, solution.solve_time, solution.iterations)
atomic_savez(snakemake.output.solution, **solution.to_arrays())
atomic_write_json(snakemake.output.certificate, certificate)
done(log, snakemake.output)
