"""Solving the convex programs: one front door, one module per backend.

``solve_convex`` builds the program (8), (15) or (18) from data and sampled
patterns and hands it to a backend:

* ``"fast"``: the structured, certified interior-point solver in torch (:mod:`.fast`), CPU or GPU;
* ``"clarabel"``, ``"scs"``, ``"mosek"``: interior-point / conic solvers through cvxpy;
* ``"auto"``: MOSEK when its licence works, Clarabel otherwise (said once in the log).
"""

from __future__ import annotations

import logging

from ..programs import ConvexProgram, ConvexSolution, ConvexSolveError, DegenerateSolutionError, degenerate_reason

log = logging.getLogger("convexadv")

#: the backends reached through cvxpy (:mod:`.cvxpy_backend`, imported only when one is used: cvxpy
#: takes about 2 s to import, which every pipeline job would otherwise pay), and their cvxpy names
CVXPY_SOLVERS = {"clarabel": "CLARABEL", "scs": "SCS", "mosek": "MOSEK"}

SOLVERS = ("auto", "fast", *CVXPY_SOLVERS)
_auto_choice: str | None = None


def resolve_solver(solver: str) -> str:
    """Map a user's solver name to a concrete backend, explaining "auto" once."""
    global _auto_choice
    key = str(solver).lower()
    if key not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose from {list(SOLVERS)}")
    if key != "auto":
        return key
    if _auto_choice is None:
        from .cvxpy_backend import mosek_licence_problem

        reason = mosek_licence_problem()
        if reason is None:
            _auto_choice = "mosek"
            log.warning("solver='auto': using MOSEK (licence found)")
        else:
            _auto_choice = "clarabel"
            log.warning("solver='auto': using the open solver Clarabel because %s", reason)
    return _auto_choice


def solve_program(program: ConvexProgram, *, solver: str = "auto", verbose: bool = False,
                  **options) -> ConvexSolution:
    """Solve an already built :class:`ConvexProgram`; see :func:`solve_convex`."""
    key = resolve_solver(solver)
    if key == "fast":
        from .fast import solve_fast

        solution = solve_fast(program, progress=verbose, **options)
    else:
        from .cvxpy_backend import solve_with_cvxpy

        solution = solve_with_cvxpy(program, solver=key, verbose=verbose, **options)
    if solution.status != "optimal":
        advice = (_stall_advice(program) if solution.status == "stalled"
                  else "raise its iteration / time limit or loosen tol")
        error = ConvexSolveError(
            f"solver {key!r} stopped with status {solution.status!r} on {program.equation} "
            f"(relative gap {solution.relative_gap}, max violation {solution.max_violation:.3g}); {advice}"
        )
        error.solution = solution
        raise error
    reason = degenerate_reason(program, solution.V, solution.W)
    if reason is not None:
        raise DegenerateSolutionError(
            f"solver {key!r} solved {program.equation}, but its optimum is a degenerate network, {reason}",
            reason=reason, solution=solution)
    log.info("%s solved %s: objective %.6g, lower bound %s, max violation %.2e, %.2fs",
             key, program.equation, solution.objective, solution.lower_bound,
             solution.max_violation, solution.solve_time)
    return solution


def _stall_advice(program: ConvexProgram) -> str:
    """What to do when rounding errors stopped the fast solver: the inputs' scale, named."""
    return (f"rounding errors stopped its progress: the inputs (here {program.input_scale()}) make the Newton "
            "systems ill-conditioned; standardise the features (centre and scale them), or loosen tol")


def solve_convex(X, y, patterns, *, loss: str = "hinge", eps: float = 0.0, beta: float = 1e-4,
                 bias: bool = False, solver: str = "auto", verbose: bool = False,
                 **options) -> ConvexSolution:
    """Solve the paper's convex training program for data (X, y) and sampled patterns.

    eps == 0 gives (8) (Algorithm 1); eps > 0 gives (15) for ``loss="hinge"`` or
    (18) for ``loss="squared"``, both with the robust constraints (11)
    (Algorithm 2). ``bias=True`` appends a never-perturbed column of ones to X
    (the patterns must then have been sampled with ``bias=True`` too). Extra
    keyword ``options`` go to the backend (e.g. ``tol``, ``max_iter``,
    ``device``, ``warm_start`` for ``solver="fast"``).

    Raises ConvexSolveError (with the partial solution as ``.solution``) when
    the solver does not reach an optimal, accurate solution, and its subclass
    DegenerateSolutionError (with ``.solution`` and ``.reason``) when the optimum
    is a degenerate network: zero or (hinge) constant output on every training
    point, or no better than the zero network
    (:func:`convexadv.programs.degenerate_reason`).
    """
    program = ConvexProgram.from_data(X, y, patterns, loss=loss, eps=eps, beta=beta, bias=bias)
    return solve_program(program, solver=solver, verbose=verbose, **options)


__all__ = ["SOLVERS", "resolve_solver", "solve_convex", "solve_program"]
