"""A certified first-order solver for the convex programs (8), (15) and (18), in torch.

Algorithm: restarted Halpern PDHG with reflection (Lu and Yang, 2024; the
method of cuPDLPx) on the saddle-point form of the programs described in
:mod:`._fast_ops`, with

* a diagonal Pock--Chambolle preconditioner (one primal step per column u_j,
  one dual step per sample and block) and a step size 0.9 / ||Sigma^1/2 K T^1/2||
  from a power iteration, so there is no step size to tune;
* a primal weight balancing primal and dual steps, updated at every restart
  as in PDLP;
* adaptive restarts on the fixed-point residual (sufficient decay 0.2,
  necessary decay 0.8 without progress, or an artificial restart after 36 % of
  all iterations);
* certificates at every check: the exact objective at U = P - Q, the largest
  violation of the constraints of (8) / (11), and a lower bound from a dual
  feasible point (see :meth:`._fast_ops.Operator.lower_bound`). The solver stops
  when the relative gap (objective - lower bound) / |objective| is at most
  ``tol`` and the point is feasible to min(tol, 1e-6) relative to
  max|X| * max_j ||u_j||_1.

Each iteration costs one product with K and one with K^T: six GEMMs of size
n * d * P and a few passes over n x d arrays, never [D_1 X ... D_P X].
"""

from __future__ import annotations

import contextlib
import logging
import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..programs import ConvexProgram, ConvexSolution
from ._fast_ops import Operator
from .presolve import cone_margins, repair

log = logging.getLogger(__name__)

#: iterations between two evaluations of the certificates and the restart tests
CHECK_EVERY = 32
#: Halpern reflection coefficient (1 = reflected resolvent 2 T - I)
REFLECTION = 1.0
#: restart tests on the fixed-point residual, relative to its value at the last restart
SUFFICIENT_DECAY, NECESSARY_DECAY, ARTIFICIAL_FRACTION = 0.2, 0.8, 0.36
#: feasibility is required to this relative accuracy at most (relative to max|X| max_j ||u_j||_1)
MAX_FEASIBILITY_TOL = 1e-6
#: power iterations for ||Sigma^1/2 K T^1/2|| and the fraction of its inverse used as step
POWER_ITERATIONS, STEP_FRACTION = 60, 0.9
#: below this n * d the iterations run on one CPU thread
SMALL_PROBLEM = 500_000


def solve_fast(program: ConvexProgram, *, tol: float = 1e-6, max_iter: int = 100_000,
               time_limit: float | None = None, device: str = "cpu", dtype=None,
               warm_start: ConvexSolution | None = None, progress: bool = False) -> ConvexSolution:
    """Solve (8), (15) or (18) to relative duality gap ``tol`` with a certified first-order method.

    Parameters
    ----------
    program : the program to solve (any loss, eps >= 0, with or without bias).
    tol : relative gap (objective - lower_bound) / |objective| to reach; the
        point must also satisfy the constraints of (8) / (11) to min(tol, 1e-6)
        relative to max|X| * max_j ||u_j||_1.
    max_iter, time_limit : stop early (status "iteration_limit" / "time_limit").
    device, dtype : where and in which precision to iterate (float64 by default;
        float32 is sensible on a GPU). The returned objective, violation and
        lower bound are always recomputed in float64.
    warm_start : a previous solution with the same patterns (e.g. for another
        beta or eps); its dual variables are reused when it came from this solver.
    progress : show a progress bar and log every check.

    Returns a :class:`ConvexSolution` whose ``lower_bound`` is a valid lower bound
    on the optimum (weak duality) and whose ``info`` holds the gap, the working
    precision, restart counts and the dual point (``info["dual"]``, for warm starts).
    """
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    start = time.perf_counter()
    dtype = torch.float64 if dtype is None else dtype
    feas_tol = min(tol, MAX_FEASIBILITY_TOL)
    n, d, P = program.n, program.d, program.n_patterns
    if warm_start is not None and not np.array_equal(warm_start.patterns, program.patterns):
        raise ValueError("warm_start was solved with different activation patterns")

    # presolve: drop the patterns whose cones (11) are {0} or that are never active
    keep = program.patterns.any(axis=0)
    interior = np.zeros((d, P))
    if program.eps > 0:
        trivial, interior = cone_margins(program)
        keep &= ~trivial
    columns = np.flatnonzero(keep)
    reduced = program.with_patterns(program.patterns[:, columns])
    presolve_time = time.perf_counter() - start
    U = np.zeros((d, 2 * P))
    warm = _warm_state(warm_start, columns, reduced, device, dtype)
    inner_tol, iterations, restarts = tol, 0, 0
    while True:
        if columns.size:
            with _threads_for(program):
                run = _iterate(reduced, tol=inner_tol, feas_tol=feas_tol, max_iter=max_iter - iterations,
                               start=start, time_limit=time_limit, device=device, dtype=dtype,
                               progress=progress, warm=warm)
            Ur = (run["Z"][0] - run["Z"][1]).to(device="cpu", dtype=torch.float64).numpy()
            U[:, columns], U[:, P + columns] = Ur[:, : columns.size], Ur[:, columns.size:]
            lower_bound = _certified_lower_bound(reduced, run["dual"], device)
        else:  # U = 0 is the only point that can matter: its objective is the optimum
            run = {"iterations": 0, "stop": "converged", "restarts": 0, "primal_weight": None,
                   "step_scale": None, "operator_norm": None, "dual": None}
            lower_bound = program.objective(U[:, :P], U[:, P:])
        iterations, restarts = iterations + run["iterations"], restarts + run["restarts"]
        # exact certificates in float64, after an exact repair of tiny violations (section IV)
        Uf, repaired = repair(program, U, interior) if program.eps > 0 else (U, 0)
        objective = program.objective(Uf[:, :P], Uf[:, P:])
        gap = (objective - lower_bound) / max(abs(objective), 1e-300)
        # the repair or float64 may have lost what the iterations reached: go on, asking for more
        if gap <= tol or run["stop"] != "converged" or iterations >= max_iter or inner_tol < tol * 1e-3:
            break
        inner_tol *= 0.3
        warm = (run["Z"], _project_dual(Operator.build(reduced, device, dtype), *run["dual"]),
                run["primal_weight"])
    U = Uf
    V, W = U[:, :P].copy(), U[:, P:].copy()
    max_violation = program.max_violation(V, W)
    scale = float(np.abs(program.X).max() * np.abs(U).sum(axis=0).max())
    feasible = max_violation <= feas_tol * scale
    stop = run["stop"]
    if gap <= tol and feasible:
        status = "optimal"
    elif stop == "converged":  # only possible when iterating in lower precision
        status = "inaccurate"
    else:
        status = stop
    elapsed = time.perf_counter() - start
    message = (f"fast solver on {program.equation} (n={n}, d={d}, P={P}, {columns.size} patterns after "
               f"presolve): {status} after {iterations} iterations, {elapsed:.2f}s; objective "
               f"{objective:.8g}, lower bound {lower_bound:.8g}, relative gap {gap:.2e} (tol {tol:.0e}), "
               f"max violation {max_violation:.2e}")
    (log.info if status == "optimal" else log.warning)(message)
    dual = None
    if run["dual"] is not None:
        dual = {k: t.to(device="cpu", dtype=torch.float64).numpy() for k, t in zip(("lam", "tau", "mu"), run["dual"])}
        dual.update(primal_weight=run["primal_weight"], columns=columns)
    info = {
        "relative_gap": gap, "tol": tol, "feasibility_tol": feas_tol,
        "relative_violation": max_violation / scale if scale > 0 else 0.0,
        "stop_reason": stop, "restarts": restarts, "primal_weight": run["primal_weight"],
        "step_scale": run["step_scale"], "operator_norm": run["operator_norm"],
        "patterns_kept": int(columns.size), "presolve_time": presolve_time, "repaired_columns": repaired,
        "device": str(device), "dtype": str(dtype).replace("torch.", ""), "reached_tol": gap,
        "message": message, "dual": dual,
    }
    return ConvexSolution(
        V=V, W=W, objective=objective, status=status, solver="fast", solve_time=elapsed,
        max_violation=max_violation, loss=program.loss, eps=program.eps, beta=program.beta,
        bias=program.bias, patterns=program.patterns, lower_bound=lower_bound,
        iterations=iterations, info=info,
    )


def _iterate(program: ConvexProgram, *, tol, feas_tol, max_iter, start, time_limit, device, dtype,
             progress, warm) -> dict:
    """Restarted reflected Halpern PDHG on ``program`` (the presolved one)."""
    op = Operator.build(program, device, dtype)
    Z, dual, omega = warm
    Kx = op.forward(Z)
    lam, tau, mu, bound = dual if dual is not None else op.dual_from_primal(Kx)
    KTy = op.adjoint(lam, tau, mu)

    T0, s10, s20, s30 = op.preconditioner()
    norm = _operator_norm(op, T0, s10, s20, s30)
    eta = STEP_FRACTION / norm
    if omega is None:
        omega = _initial_primal_weight(op, T0, s10)

    # the Halpern anchor and the current point, with their images under K and K^T
    point = [Z, lam, tau, mu, *Kx, *KTy]
    anchor = list(point)
    best_lb, best_dual = -math.inf, (lam, tau, mu)
    restart_residual = last_residual = None
    k_restart, restarts, stop, it = 0, 0, "iteration_limit", 0
    bar = tqdm(total=max_iter, disable=not progress, desc=f"fast {program.equation}", unit="it")
    while it < max_iter:
        T = (eta / omega) * T0
        s1, s2, s3 = (eta * omega) * s10, (eta * omega) * s20, (eta * omega) * s30
        Z, lam, tau, mu = point[:4]
        Kx, KTy = tuple(point[4:7]), tuple(point[7:9])
        # one PDHG step: primal prox, then dual prox at the extrapolated point
        Zh = op.primal_prox(Z - T * op.lifted_gradient(KTy), T)
        Kxh = op.forward(Zh)
        b1, b2, b3 = op.blocks(tuple(2.0 * h - c for h, c in zip(Kxh, Kx)))
        lamh, tauh, muh, bound = op.dual_prox(lam + s1 * b1, tau + s2[:, None] * b2,
                                              mu + s3[:, None] * b3, s1, s2, bound)
        KTyh = op.adjoint(lamh, tauh, muh)
        it += 1
        k_restart += 1
        pdhg = [Zh, lamh, tauh, muh, *Kxh, *KTyh]

        if it % CHECK_EVERY == 0 or it == max_iter:
            objective = float(op.objective(Zh, Kxh))
            viol, scale = (float(v) for v in op.violation(Zh, Kxh))
            for cand in _dual_candidates(op, Kxh, lamh, tauh, muh, KTyh):
                lb = float(op.lower_bound(cand[0], cand[1], cand[3]))
                if lb > best_lb:
                    best_lb, best_dual = lb, cand[:3]
            gap = (objective - best_lb) / max(abs(objective), 1e-300)
            residual = _residual(op, point, pdhg, T, s1, s2, s3)
            bar.update(it - bar.n)
            bar.set_postfix(gap=f"{gap:.2e}", viol=f"{viol / max(scale, 1e-300):.1e}", restarts=restarts)
            if progress:
                log.info("it %d: objective %.8g, lower bound %.8g, gap %.2e, violation %.2e, "
                         "residual %.2e, primal weight %.3g", it, objective, best_lb, gap,
                         viol / max(scale, 1e-300), residual, omega)
            if gap <= tol and viol <= feas_tol * scale:
                stop = "converged"
                break
            if time_limit is not None and time.perf_counter() - start > time_limit:
                stop = "time_limit"
                break
            if restart_residual is None:
                restart_residual = last_residual = residual
            elif (residual <= SUFFICIENT_DECAY * restart_residual
                  or (residual <= NECESSARY_DECAY * restart_residual and residual > last_residual)
                  or k_restart >= ARTIFICIAL_FRACTION * it):
                omega = _primal_weight(omega, pdhg, anchor, T0, s10, s20, s30)
                point, anchor = pdhg, list(pdhg)
                restart_residual = last_residual = residual
                k_restart, restarts = 0, restarts + 1
                continue
            else:
                last_residual = residual
        elif time_limit is not None and time.perf_counter() - start > time_limit:
            stop = "time_limit"
            break
        # reflected Halpern step towards the anchor
        w = k_restart / (k_restart + 1.0)
        point = [w * ((1.0 + REFLECTION) * h - REFLECTION * c) + (1.0 - w) * a
                 for h, c, a in zip(pdhg, point, anchor)]
    bar.close()
    return {"Z": Zh, "dual": best_dual, "iterations": it, "stop": stop, "restarts": restarts,
            "primal_weight": omega, "step_scale": eta, "operator_norm": norm}


@contextlib.contextmanager
def _threads_for(program: ConvexProgram):
    """One intra-op thread for small programs: there the iterations are short
    element-wise passes, which only lose from thread synchronisation."""
    previous = torch.get_num_threads()
    if program.n * program.d < SMALL_PROBLEM:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _warm_state(warm_start, columns, program, device, dtype):
    """(Z, dual or None, primal weight or None) to start from: zero, or the lifted
    (max(U, 0), max(-U, 0)) of a warm start on the kept columns, with its dual when
    it came from this solver with the same kept columns."""
    d, Pr = program.d, program.n_patterns
    if warm_start is None:
        return torch.zeros((2, d, 2 * Pr), dtype=dtype, device=device), None, None
    U = np.hstack([warm_start.V[:, columns], warm_start.W[:, columns]])
    U = torch.as_tensor(U, dtype=dtype, device=device)
    Z = torch.stack([U.clamp_min(0.0), (-U).clamp_min(0.0)])
    stored = (warm_start.info or {}).get("dual")
    d_pert = int(program.perturbable.sum()) if program.eps > 0 else 0
    if (stored is None or warm_start.loss != program.loss or not np.array_equal(stored["columns"], columns)
            or stored["tau"].shape != (program.n, d_pert)):
        return Z, None, None
    op = Operator.build(program, device, dtype)
    lam, tau, mu = (torch.as_tensor(stored[k], dtype=dtype, device=device) for k in ("lam", "tau", "mu"))
    return Z, _project_dual(op, lam, tau, mu), float(stored["primal_weight"])


def _project_dual(op: Operator, lam, tau, mu):
    """Make a stored dual point feasible for this program's eps (the dual sets depend on it)."""
    mu = mu.clamp_min(0.0)
    if op.loss == "hinge":
        lam = lam.clamp(0.0, 1.0 / op.n)
        bound = lam
    else:
        bound = lam.abs()
        if tau.shape[1]:
            bound = torch.maximum(bound, tau.abs().amax(dim=1) / op.eps)
    limit = (op.eps * bound)[:, None]
    return lam, torch.maximum(torch.minimum(tau, limit), -limit), mu, bound


def _certified_lower_bound(program, dual, device) -> float:
    """The lower bound of a dual point, recomputed in float64 after re-projecting it."""
    op = Operator.build(program, device, torch.float64)
    lam, tau, mu, _ = _project_dual(op, *(t.to(torch.float64) for t in dual))
    return float(op.lower_bound(lam, tau, op.adjoint(lam, tau, mu)))


def _operator_norm(op: Operator, T0, s1, s2, s3) -> float:
    """||Sigma^1/2 K T^1/2|| by power iteration from a fixed pseudo-random start (deterministic)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    shape = (2, op.X.shape[1], T0.shape[0])
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device=op.X.device, dtype=op.X.dtype)
    x = x / torch.linalg.vector_norm(x)
    root_T = T0.sqrt()
    value = 1.0
    for _ in range(POWER_ITERATIONS):
        b1, b2, b3 = op.blocks(op.forward(root_T * x))
        g = op.lifted_gradient(op.adjoint(s1 * b1, s2[:, None] * b2, s3[:, None] * b3)) * root_T
        value = float(torch.linalg.vector_norm(g))
        if value == 0.0:
            return 1.0
        x = g / value
    return math.sqrt(value)


def _dual_candidates(op: Operator, Kxh, lamh, tauh, muh, KTyh):
    """The PDHG dual, and the loss multipliers read off the primal point with PDHG's mu."""
    yield lamh, tauh, muh, KTyh
    lam, tau, _, _ = op.dual_from_primal(Kxh, fallback=(lamh, tauh))
    yield lam, tau, muh, op.adjoint(lam, tau, muh)


def _residual(op: Operator, point, pdhg, T, s1, s2, s3) -> float:
    """The fixed-point residual ||z - PDHG(z)|| in the PDHG metric (the restart criterion)."""
    dZ, dlam, dtau, dmu = (h - c for h, c in zip(pdhg[:4], point[:4]))
    db1, db2, db3 = op.blocks(tuple(h - c for h, c in zip(pdhg[4:7], point[4:7])))
    value = ((dZ * dZ).sum(dim=(0, 1)) / T).sum() + (dlam * dlam / s1).sum() \
        + ((dtau * dtau).sum(dim=1) / s2).sum() + ((dmu * dmu).sum(dim=1) / s3).sum() \
        - 2.0 * ((dlam * db1).sum() + (dtau * db2).sum() + (dmu * db3).sum())
    return math.sqrt(max(float(value), 0.0))


def _initial_primal_weight(op: Operator, T0, s1) -> float:
    """PDLP's starting primal weight ||c|| / ||b|| in the preconditioned metrics.

    The primal "cost" is beta per column u_j (the slope of the regulariser), the
    dual "right-hand side" the linear part of F*: 1 per sample for the hinge,
    y_k for the squared loss.
    """
    rhs = torch.ones_like(op.y) if op.loss == "hinge" else op.y
    cost = op.beta * math.sqrt(float(T0.sum()))
    scale = math.sqrt(float((s1 * rhs * rhs).sum()))
    return cost / scale if cost > 0 and scale > 0 else 1.0


def _primal_weight(omega, pdhg, anchor, T0, s1, s2, s3) -> float:
    """PDLP's primal weight update: smooth towards ||dy|| / ||dx|| between restarts."""
    dZ = pdhg[0] - anchor[0]
    dx = math.sqrt(float(((dZ * dZ).sum(dim=(0, 1)) / T0).sum()))
    dlam, dtau, dmu = (h - a for h, a in zip(pdhg[1:4], anchor[1:4]))
    dy = math.sqrt(float((dlam * dlam / s1).sum() + ((dtau * dtau).sum(dim=1) / s2).sum()
                         + ((dmu * dmu).sum(dim=1) / s3).sum()))
    if dx > 1e-10 and dy > 1e-10:
        return math.exp(0.5 * math.log(dy / dx) + 0.5 * math.log(omega))
    return omega
