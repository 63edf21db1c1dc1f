"""The programs (8), (15) and (18) written in cvxpy and solved by an interior-point solver.

MOSEK (the paper's solver) is used only when a licence actually works; Clarabel
is the open default; SCS is available for comparison.
"""

from __future__ import annotations

import functools
import logging
import time

import cvxpy as cp
import numpy as np

from ..programs import ConvexProgram, ConvexSolution, ConvexSolveError
from . import CVXPY_SOLVERS
from .presolve import trivial_patterns

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def mosek_licence_problem() -> str | None:
    """None when MOSEK is installed and its licence works, else the reason it cannot be used."""
    if "MOSEK" not in cp.installed_solvers():
        return "the mosek package is not installed"
    x = cp.Variable()
    try:
        cp.Problem(cp.Minimize(x), [x >= 1]).solve(solver="MOSEK")
    except Exception as err:  # MOSEK raises its own error types for licence problems
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"MOSEK is installed but cannot solve ({first_line})"
    return None


def _robust_l1(U, program: ConvexProgram):
    """eps * ||u_i||_1 over the perturbable coordinates, one entry per column of U."""
    return program.eps * cp.sum(cp.abs(U[np.flatnonzero(program.perturbable), :]), axis=0)


def build_problem(program: ConvexProgram):
    """The cvxpy problem for ``program`` and its variables (V, W)."""
    n, d, P = program.n, program.d, program.n_patterns
    X, y = program.X, program.y
    masks = program.patterns.astype(np.float64)
    signs = 2.0 * masks - 1.0
    V = cp.Variable((d, P), name="V")
    W = cp.Variable((d, P), name="W")
    ones_n = np.ones((n, 1))

    constraints = []
    for U in (V, W):
        margins = cp.multiply(signs, X @ U)
        if program.eps > 0:  # (11)
            constraints.append(margins >= ones_n @ cp.reshape(_robust_l1(U, program), (1, P), order="C"))
        else:  # the constraints of (8)
            constraints.append(margins >= 0)

    yhat = cp.sum(cp.multiply(masks, X @ (V - W)), axis=1)
    if program.eps > 0:
        # g_k depends on k only through row k of the patterns: build each distinct g once
        rows, group = np.unique(masks, axis=0, return_inverse=True)
        G = rows @ (V - W)[np.flatnonzero(program.perturbable), :].T
        spread = program.eps * cp.sum(cp.abs(G), axis=1)[group.reshape(-1)]
    else:
        spread = 0
    regularizer = program.beta * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))

    if program.loss == "hinge":  # (8) / (15)
        data_term = cp.sum(cp.pos(1 - cp.multiply(y, yhat) + spread)) / n
    else:  # (8) / (18), with the auxiliary variables a and z of Theorem 5
        a = cp.Variable(name="a")
        z = cp.Variable(n + 1, name="z")
        constraints += [
            z[:n] >= cp.abs(yhat - y) + spread,
            z[n] >= cp.abs(2 * a - 0.25),
            cp.norm(z, 2) <= 2 * a + 0.25,
        ]
        data_term = a
    return cp.Problem(cp.Minimize(data_term + regularizer), constraints), V, W


def solve_with_cvxpy(program: ConvexProgram, *, solver: str = "clarabel", verbose: bool = False,
                     presolve: bool = True, **solver_options) -> ConvexSolution:
    """Solve ``program`` with an interior-point (or SCS) solver through cvxpy.

    ``presolve=False`` hands the whole program to the solver, without first dropping the
    patterns whose robust cone (11) is {0} (as a user writing the program in cvxpy would).
    Raises ConvexSolveError unless the solver reports an optimal solution.
    """
    key = solver.lower()
    if key not in CVXPY_SOLVERS:
        raise ValueError(f"unknown cvxpy solver {solver!r}; choose from {sorted(CVXPY_SOLVERS)}")
    if key == "mosek" and (reason := mosek_licence_problem()) is not None:
        raise ConvexSolveError(f"solver 'mosek' requested but {reason}")
    start = time.perf_counter()
    # patterns whose robust cone is {0} carry v_i = w_i = 0 at every feasible point
    keep = ~trivial_patterns(program) if presolve else np.ones(program.n_patterns, dtype=bool)
    Vv = np.zeros((program.d, program.n_patterns))
    Wv = np.zeros((program.d, program.n_patterns))
    info = {"patterns_dropped_by_presolve": int((~keep).sum())}
    if keep.any():
        problem, V, W = build_problem(program.with_patterns(program.patterns[:, keep]))
        try:
            problem.solve(solver=CVXPY_SOLVERS[key], verbose=verbose, **solver_options)
        except cp.error.SolverError as err:
            raise ConvexSolveError(f"solver {key!r} failed on {program.equation}: {err}") from err
        if problem.status != cp.OPTIMAL:
            raise ConvexSolveError(
                f"solver {key!r} returned status {problem.status!r} on {program.equation} "
                f"(n={program.n}, d={program.d}, P={program.n_patterns}); no accurate solution. Inputs of very "
                f"different sizes or with a large offset (here {program.input_scale()}) make interior-point solves "
                "through cvxpy inaccurate: try solver='fast' (internal units, a certified gap), or standardise the data"
            )
        Vv[:, keep], Wv[:, keep] = V.value, W.value
        info.update(cvxpy_objective=float(problem.value), solver_time=problem.solver_stats.solve_time)
    elapsed = time.perf_counter() - start
    return ConvexSolution(
        V=Vv, W=Wv, objective=program.objective(Vv, Wv), status="optimal", solver=key,
        solve_time=elapsed, max_violation=program.max_violation(Vv, Wv), loss=program.loss,
        eps=program.eps, beta=program.beta, bias=program.bias, patterns=program.patterns, info=info,
    )
