"""The iterations of the fast solver for (8), (15) and (18): :func:`solve_fast`.

The program (after the exact presolve of :mod:`..presolve` drops the patterns whose robust
cone (11) is {0}) is written with auxiliary variables

* per sample k: rho_k (hinge: rho_k >= 0 and rho_k >= 1 - y_k yhat_k + eps 1^T a_k; squared:
  rho_k >= |yhat_k - y_k| + eps 1^T a_k) and, when eps > 0, a_k >= |g_k| (the l1 norms of (15), (18));
* per column j of U = [V, W]: tau_j >= ||u_j||_2 (a second-order cone) and, when eps > 0,
  b_j >= |u~_j|, so that (11) reads s_k x_k^T u_j - eps 1^T b_j >= 0;

objective f0 = sum_k rho_k / n (hinge) or sum_k rho_k^2 / 2 (squared) + beta sum_j tau_j. It is
solved by a primal-dual path-following method with Mehrotra's predictor-corrector and
Nesterov-Todd scaling of the cones (Vandenberghe, "The CVXOPT linear and quadratic cone
program solvers", 2010), plus Gondzio's centrality correctors where a factorisation is costly
(Gondzio, "Multiple centrality corrections in a primal-dual method for linear programming", 1996),
started from a strictly feasible point built from the presolve's interior directions. Each family of
rows, and the cones, is centred at sigma times its own mean complementarity product kept within [1, 10]
times mu (:func:`_centring_targets`: a lagging family is not asked to catch up in one step). Every
iterate stays strictly feasible, so the returned network satisfies (11) and Theorem 4's certificate
holds for it. Step sizes come from the ratio test.

Newton systems: :mod:`.newton` (exact, by their structure), every direction refined against the
exact product; an iteration whose refined residual stays above FALLBACK_RESIDUAL refactors
its system in the stable forms of :func:`.newton.stable_forms` (:class:`_NewtonSystem`). Where
:func:`.newton.single_precision_pays`, the first iterations factor the dense delta system in float32 and
refine to the same residual (mixed precision), until a refinement step contracts too little.
Variables and rows: :mod:`.structure`; starting point: :mod:`.start`.

Certificate (:mod:`.certificate`). The multipliers z of the constraints give a point of the Lagrange dual of
(8) / (15) / (18); it is projected onto the simple dual constraints and scaled until every
column satisfies dist(-l_j, eps M_j B_inf) <= beta exactly, so its value is a valid lower bound
(weak duality). The solver stops when objective - bound <= tol_abs * f(0) + tol * |objective|. Once the
interior-point gap mu * degree is below that target but the bound is not, the multipliers of (11) are
refitted by nonnegative least squares before the bound is taken (:func:`.certificate.refit_cone_multipliers`);
after STALL_ITERATIONS such iterations the solve stops "stalled" with its best point and bound.

Units. The iterations run on an exactly equivalent program in internal units (X and eps divided by
a power of two near max |x|, y for the squared loss by one near ||y|| / sqrt(2)), so data on the
0-1 and the 0-255 scale take the same iterations.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ...programs import ConvexProgram, ConvexSolution
from ...threads import numpy_blas_single_threaded
from ..presolve import PresolveTimeoutError, cone_margins
from .certificate import certified_lower_bound, refit_cone_multipliers
from .cones import (NTScaling, cone_det, cone_identity, cone_step, jordan, jordan_solve, ratio_step, reflect,
                    spectral_clamp)
from .newton import (available_memory, factor, factor_work, memory_needed, newton_product, single_precision_pays,
                     stable_forms)
from .start import start_point
from .structure import ROWS, Point, Structure

log = logging.getLogger(__name__)

#: the default absolute tolerance per loss, a fraction of the zero network's objective f(0) (see solve_fast)
TOL_ABS = {"hinge": 1e-7, "squared": 1e-14}
#: fraction of the step to the boundary of the cones taken by each iteration
TO_BOUNDARY = 0.99
#: iterative-refinement steps for every Newton direction, at most
REFINEMENTS = 2
#: a Newton direction with a smaller relative residual is not refined further
REFINED_RESIDUAL = 1e-8
#: further refinement steps allowed for a direction from a float32 factor (newton.single_precision_pays), whose
#: first solve leaves a relative residual of about 1e-5 (CIFAR eps = 2, first iterations) where float64 leaves 1e-9
SINGLE_EXTRA_REFINEMENTS = 4
#: a refinement step from a float32 factor that shrinks the residual by less than this factor sends the following
#: iterations back to float64: float32 is near its limit there, and the next factorisation would fail or need many
#: steps. Measured on two cores (CIFAR eps = 2, 24 patterns: with 0.03 / 0.1 / 0.3 float32 served 8 / 10 / 13 of
#: 38 iterations, 0.3 also failing once, at its 14th; the Gaussian program with 36 patterns 24 / 26 / 27 of 29)
SINGLE_CONTRACTION = 0.1
#: a step shorter than this means the Newton systems are exhausted (status "stalled")
MIN_STEP = 1e-6
#: a refined Newton direction with a larger relative residual makes the iteration refactor in the stable form
FALLBACK_RESIDUAL = 1e-6
#: the iterations drive the mean complementarity s^T z / degree down to this fraction of tol * |objective|
TARGET_FRACTION = 0.05
#: status "stalled" also after this many iterations whose interior-point gap mu * degree was already
#: below the target while the certified gap was not (rounding errors keep the bound from following)
STALL_ITERATIONS = 20
#: Gondzio's centrality correctors per iteration, at most (:func:`_iterate`), where a factorisation is
#: worth them (:data:`CORRECTOR_MIN_WORK`)
CENTRALITY_CORRECTORS = 2
#: the correctors aim every complementarity product into [0.1, 10] times its family's target (:func:`_centring_targets`)
CENTRED_RANGE = (0.1, 10.0)
#: a family of rows (or the cones) is centred at sigma times its own mean product, but at most this many times
#: sigma mu (:func:`_centring_targets`). Measured, iterations to a certified 1e-4 summed over 88 + 87 random
#: programs (seeds 100-189 and 300-389 of five data kinds at scales 1e-3 to 1e3, both losses, eps = 0 and > 0,
#: bias on and off; those that ended optimal both ways): 2301 + 2390 with every family at sigma mu, 2102 + 2141
#: with 10, 2133 (second set) with 30, 2170 (first set) with 3; unbounded, two of the first set stalled
CENTRING_WEIGHT_MAX = 10.0
#: a corrector aims at the step min(1, 1.5 alpha + 0.1) from the step alpha of the direction it corrects
STEP_AIM = (1.5, 0.1)
#: and is kept when it lengthens the step by at least this share of the increase aimed at
STEP_GAIN = 0.1
#: correctors only where a factorisation costs at least this many multiply-adds (newton.factor_work).
#: Measured on one core: above it every program gained (CIFAR Algorithm 1, 2.9e9: 25 % less time; CIFAR
#: Algorithm 2 with 10 patterns, 1.3e9: 6 %; Gaussian programs with 16 / 36 patterns: 20 / 21 %); from 1e8 to
#: 1e9 it was mixed (digits Algorithm 1, 2.2e8: 7 % gained; CIFAR Algorithm 2 / robust sampler with 8
#: patterns, 7.5e8: from 12 % gained to 14 % lost, 65 % lost on one, where they led to more refactorings);
#: below 1e8 (diabetes, d = 11; one pattern) a corrector's solve, mostly fixed costs, cost more than it saved
CORRECTOR_MIN_WORK = 1e9


def _power_of_two(value: float) -> float:
    """The power of two nearest to value (> 0) on a log scale; 1 for 0."""
    return 2.0 ** round(math.log2(value)) if value > 0 else 1.0


def internal_units(program: ConvexProgram) -> tuple[float, float]:
    """(s, s_y): the data's scale max |x~_kj| and, for the squared loss, the targets' scale
    ||y|| / sqrt(2), each rounded to a power of two so that dividing by them is exact."""
    s = _power_of_two(float(np.abs(program.X[:, program.perturbable]).max(initial=0.0)))
    s_y = 1.0 if program.loss == "hinge" else _power_of_two(float(np.linalg.norm(program.y)) / math.sqrt(2))
    return s, s_y


@numpy_blas_single_threaded
def solve_fast(program: ConvexProgram, *, tol: float = 1e-4, tol_abs: float | None = None, max_iter: int = 200,
               time_limit: float | None = None, device: str = "cpu", dtype=torch.float64,
               warm_start: ConvexSolution | None = None, progress: bool = False) -> ConvexSolution:
    """Solve (8), (15) or (18) to a certified duality gap with the structured interior-point method.

    Parameters
    ----------
    program : the program to solve (any loss, eps >= 0, with or without bias).
    tol, tol_abs : stop "optimal" once objective - lower_bound <= tol_abs * f(0) + tol * |objective|,
        f(0) the objective of the zero network (1 for the hinge loss, ||y||^2 / 2 for the squared
        loss). ``tol_abs`` reads in the loss's own units: a program whose optimum is nearly pure
        regulariser (separable data, objective ~1e-4) ends optimal instead of chasing a relative
        gap that rounding cannot certify. Default (None): TOL_ABS[loss], 1e-7 for the hinge loss (a
        mean over the samples) and 1e-14 for the squared loss (a sum, whose optimum can be 1e-10 of
        f(0) where the network nearly interpolates the targets: with 1e-7 such solves had stopped
        "optimal" at up to 40 times the optimum, with 1e-12 one 0.3 % above it; 1e-14 is still about
        50 times the rounding error of f(0) itself).
    max_iter, time_limit : stop early after this many iterations / seconds, presolve included
        (status "iteration_limit" / "time_limit"; the bound returned is still valid). A time limit
        that passes inside the presolve returns the zero network with the bound 0.
    device, dtype : where and in which precision to compute (float64 by default, also on a GPU:
        interior-point Newton systems need it). The returned objective and violation are
        recomputed in float64 on the CPU; the bound is computed in the working precision.
    warm_start : a solution of a program with the same data and patterns (e.g. another beta or
        eps, for sweeps): the iterations start near it (about 20 % fewer of them at the paper's size).
    progress : show a progress bar (one tick per iteration) and log every iteration.

    The solver works in internal units X / s, y / s_y, eps / s, beta / (s s_y) (s, s_y powers of two,
    see :func:`internal_units`): an exactly equivalent program, so the iterations do not depend on
    the data's units. The returned point is strictly feasible for (8) / (11) (every iterate is), so
    ``max_violation`` is zero up to rounding. ``info`` holds the gap, the number of iterations, the
    number of patterns the presolve kept, the internal units, ``fallback_iterations``
    (iterations whose Newton system was refactored in a stable form for accuracy, see :class:`_NewtonSystem`),
    ``single_precision_iterations`` (iterations whose directions came from a float32 factor, refined in float64:
    :func:`.newton.single_precision_pays`) and ``centrality_correctors`` (Gondzio's correctors kept, see
    :func:`_iterate`).
    Status "stalled" means rounding errors stopped progress before the gap was reached: a step below
    MIN_STEP, or STALL_ITERATIONS iterations whose interior-point gap was below the target while the
    certified one was not (the best point and bound are still valid).
    Samples x_k = 0 (eps = 0, no bias) are left out of the iterations (their rows of (8) are 0 >= 0 and
    their loss is a constant; ``info["zero_samples"]`` counts them), exactly.
    Raises MemoryError, before any iteration (for eps = 0 before the presolve), when the Newton
    systems (:func:`.newton.memory_needed`) would not fit in the device's free memory.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if tol_abs is None:
        tol_abs = TOL_ABS[program.loss]
    if not tol_abs >= 0:
        raise ValueError(f"tol_abs must be >= 0, got {tol_abs}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if time_limit is not None and not time_limit >= 0:
        raise ValueError(f"time_limit must be >= 0 seconds or None, got {time_limit}")
    if warm_start is not None and (warm_start.V.shape != (program.d, program.n_patterns)
                                   or not np.array_equal(warm_start.patterns, program.patterns)):
        raise ValueError("warm_start must be a solution for the same data dimension and the same patterns")
    zero_rows = ~np.any(program.X != 0, axis=1)
    if program.eps == 0 and zero_rows.any():
        return _without_zero_rows(program, zero_rows, tol=tol, tol_abs=tol_abs, max_iter=max_iter,
                                  time_limit=time_limit, device=device, dtype=dtype, warm_start=warm_start,
                                  progress=progress)
    if program.eps == 0:  # every pattern is kept: the memory is known before the presolve
        _require_memory(program, program.n_patterns, device, dtype)
    start_time = time.perf_counter()
    deadline = None if time_limit is None else start_time + time_limit
    V = np.zeros((program.d, program.n_patterns))
    W = np.zeros_like(V)
    info = {"device": str(device), "dtype": str(dtype).replace("torch.", "")}
    try:
        trivial, interior = cone_margins(program, deadline=deadline)
    except PresolveTimeoutError as err:
        return _solution(program, V, W, program.zero_network_objective(), 0.0, "time_limit", 0, start_time,
                         {**info, "patterns_kept": None, "message": f"time limit: {err}"})
    keep = ~trivial
    info["patterns_kept"] = int(keep.sum())
    has_interior = np.linalg.norm(interior[:, keep], axis=0) > 0
    if not has_interior.all():
        bad = np.flatnonzero(keep)[~has_interior].tolist()
        raise ValueError(f"the cones (11) of patterns {bad} have an empty interior (margin equal to eps); "
                         "the interior-point method needs a strictly feasible point: use solver='clarabel'")
    f_zero = program.zero_network_objective()
    if not keep.any() or f_zero == 0:  # U = 0 is the only feasible point, or attains the bound 0
        message = ("every robust cone (11) is {0}; U = 0 is optimal" if not keep.any()
                   else "y = 0: U = 0 attains the lower bound 0")
        return _solution(program, V, W, f_zero, f_zero if not keep.any() else 0.0, "optimal", 0, start_time,
                         {**info, "message": message})
    s, s_y = internal_units(program)
    info["units"] = {"X": s, "y": s_y}
    kept = program.with_patterns(program.patterns[:, keep])
    internal = replace(kept, X=kept.X / s, y=kept.y / s_y, eps=kept.eps / s, beta=kept.beta / (s * s_y))
    if program.eps > 0:
        _require_memory(program, int(keep.sum()), device, dtype)
    structure = Structure(internal, torch.device(device), dtype)
    structure.factor_in_single = single_precision_pays(structure)
    previous = None
    if warm_start is not None:
        previous = np.hstack([warm_start.V[:, keep], warm_start.W[:, keep]]) * (s / s_y)
    x = start_point(structure, interior[:, keep], previous)
    status, lower_bound, iterations = "iteration_limit", -math.inf, 0
    fallback_count = corrector_count = single_count = 0
    correctors = CENTRALITY_CORRECTORS if factor_work(structure) >= CORRECTOR_MIN_WORK else 0
    lagging = 0  # iterations with the interior-point gap below the target, the certified gap above it
    best_U, best_objective = None, math.inf
    last_duration = 0.0

    def gap_target(objective: float) -> float:
        return tol_abs * f_zero + tol * abs(objective)

    with torch.no_grad():
        rows = structure.rows(x)
        cones = structure.cones(x)
        mu0 = max(structure.objective_f0(x), 1e-12) / structure.n
        z = {key: mu0 / slack for key, slack in rows.items()}
        z_cone = mu0 * reflect(cones) / cone_det(cones)[:, None]
        bar = tqdm(total=max_iter, desc=f"interior point {program.equation}", unit="it", disable=not progress,
                   leave=False)
        while True:
            tick = time.perf_counter()
            # every iterate is feasible: keep the best one; every bound is valid: keep the largest
            U_np = _columns(x, keep, program) * (s_y / s)
            objective = program.objective(U_np[:, : program.n_patterns], U_np[:, program.n_patterns:])
            if objective < best_objective:
                best_U, best_objective = U_np, objective
            mu = _mean_complementarity(structure, rows, z, cones, z_cone)
            bound = certified_lower_bound(structure, z) * s_y ** 2
            if (best_objective - max(bound, lower_bound) > gap_target(best_objective)
                    and mu * structure.degree * s_y ** 2 <= gap_target(best_objective)):
                # the interior-point gap is small enough, the certificate lags: refit the multipliers of (11)
                lagging += 1
                refitted = refit_cone_multipliers(structure, z)
                if refitted is not None:
                    bound = max(bound, certified_lower_bound(structure, refitted) * s_y ** 2)
            lower_bound = max(lower_bound, bound)
            gap = best_objective - lower_bound
            bar.set_postfix(gap=f"{gap / max(abs(best_objective), 1e-300):.1e}")
            if progress:
                log.info("interior point: iteration %d, objective %.10g, bound %.10g, gap %.2e",
                         iterations, objective, lower_bound, gap)
            if gap <= gap_target(best_objective):
                status = "optimal"
                break
            if iterations >= max_iter:
                break
            if lagging >= STALL_ITERATIONS:
                status = "stalled"
                break
            # no iteration starts that the previous one's duration says would end past the deadline
            if deadline is not None and tick + last_duration > deadline:
                status = "time_limit"
                break
            # aim the complementarity at a fraction of the gap asked for, not below: slacks of active
            # rows then stay large enough for accurate Newton directions and dual residuals
            mu_floor = TARGET_FRACTION * gap_target(best_objective) / s_y ** 2 / structure.degree
            step = _iterate(structure, x, rows, cones, z, z_cone, mu, mu_floor, correctors)
            if step is None or step[3] < MIN_STEP:  # rounding errors dominate the Newton systems
                status = "stalled"
                break
            x, z, z_cone, _, used_fallback, kept_correctors, used_single = step
            fallback_count += used_fallback
            single_count += used_single
            corrector_count += kept_correctors
            rows, cones = structure.rows(x), structure.cones(x)
            iterations += 1
            bar.update(1)
            last_duration = time.perf_counter() - tick
        bar.close()
    V, W = best_U[:, : program.n_patterns], best_U[:, program.n_patterns:]
    info.update(absolute_gap=gap, relative_gap=gap / max(abs(best_objective), 1e-300),
                fallback_iterations=fallback_count, single_precision_iterations=single_count,
                centrality_correctors=corrector_count,
                message=f"{status} after {iterations} iterations (gap {gap:.2e}, target {tol_abs:.0e} * "
                        f"{f_zero:.3g} + {tol:.0e} * |objective|)")
    return _solution(program, V, W, best_objective, lower_bound, status, iterations, start_time, info)


def _without_zero_rows(program: ConvexProgram, zero_rows: np.ndarray, **options) -> ConvexSolution:
    """eps = 0 with samples x_k = 0 (no bias): their rows of (8), 0 >= 0, leave no strictly feasible
    point, and their outputs are 0 whatever U, so their loss is a constant (hinge 1 / n each, squared
    y_k^2 / 2). Solve the program without them (the hinge's beta times n / n', since its loss is a mean),
    then return U with the full program's objective and the bound mapped back; the stopping rule of the
    reduced solve implies the full program's. With no other sample, U = 0 is optimal."""
    keep = ~zero_rows
    if not keep.any():
        start_time = time.perf_counter()
        zeros = np.zeros((program.d, program.n_patterns))
        f_zero = program.zero_network_objective()
        return _solution(program, zeros, zeros, f_zero, f_zero, "optimal", 0, start_time,
                         {"message": "every sample is 0: every output is 0 and U = 0 is optimal",
                          "patterns_kept": 0, "zero_samples": program.n})
    n_kept = int(keep.sum())
    beta = program.beta * program.n / n_kept if program.loss == "hinge" else program.beta
    reduced = replace(program, X=program.X[keep], y=program.y[keep], patterns=program.patterns[keep], beta=beta)
    solution = solve_fast(reduced, **options)
    constant = (float(zero_rows.sum()) / program.n if program.loss == "hinge"
                else 0.5 * float((program.y[zero_rows] ** 2).sum()))
    share = n_kept / program.n if program.loss == "hinge" else 1.0
    objective = program.objective(solution.V, solution.W)
    lower_bound = share * solution.lower_bound + constant
    gaps = {}
    if "absolute_gap" in solution.info:  # the reduced solve's gaps, restated for the full program
        gaps = {"absolute_gap": objective - lower_bound,
                "relative_gap": (objective - lower_bound) / max(abs(objective), 1e-300)}
    return replace(solution, objective=objective, lower_bound=lower_bound, patterns=program.patterns,
                   max_violation=program.max_violation(solution.V, solution.W),
                   info={**solution.info, **gaps, "zero_samples": int(zero_rows.sum())})


def _require_memory(program: ConvexProgram, n_patterns: int, device, dtype) -> None:
    """Raise MemoryError, naming the sizes, when the Newton systems of ``program`` with ``n_patterns``
    patterns kept would not fit in the free memory of ``device``."""
    element_size = torch.empty(0, dtype=dtype).element_size()
    needed = memory_needed(program.n, program.d, n_patterns, program.eps > 0, element_size)
    available = available_memory(torch.device(device))
    if available is not None and needed > available:
        raise MemoryError(
            f"the fast solver's Newton systems need about {needed / 2 ** 30:.1f} GiB for this program (n = "
            f"{program.n}, d = {program.d}, {n_patterns} patterns kept, eps {'> 0' if program.eps > 0 else '= 0'}); "
            f"{available / 2 ** 30:.1f} GiB are free on {device}. Use a device with more memory (a GPU: "
            "device='cuda'), or fewer samples or patterns")


def _iterate(structure: Structure, x: Point, rows: dict, cones, z: dict, z_cone, mu: float, mu_floor: float,
             correctors: int):
    """One Mehrotra predictor-corrector step from the point with mean complementarity ``mu``, centring each
    family of rows and the cones at sigma times the family's own mean product clipped to [mu,
    CENTRING_WEIGHT_MAX mu] (:func:`_centring_targets`), sigma no less than ``mu_floor`` / mu, with up to
    ``correctors`` of Gondzio's centrality correctors: each solves the factored system once more for a
    direction whose products s_k z_k (and the cones' Jordan products, by their two spectral values) at a
    longer trial step lie in CENTRED_RANGE times their family's target, and is kept only when it
    lengthens the step (a well-centred point takes long steps: fewer
    iterations, measured 30 -> 23 on CIFAR Algorithm 1, 43 -> 32 on a Gaussian program with 16
    patterns). Returns (x, z, z_cone, step, fallback used, correctors kept, float32 factor used); None when the
    Newton system cannot be factored."""
    w = {k: z[k] / rows[k] for k in ROWS}
    scaling = NTScaling(cones, z_cone)
    lam = scaling.lam
    try:
        newton = _NewtonSystem(structure, w, scaling)
    except torch.linalg.LinAlgError:
        return None
    # dual residual r_d = grad f0 - A^T z - E^T z_cone
    r_d = structure.objective_gradient(x).minus(structure.adjoint(z)).plus_cones(-z_cone)

    def direction(rc: dict, rc_cone, fallback: bool = True):
        # (P + A^T D A + E^T W^-2 E) dx = -r_d + A^T (rc / s) + E^T W^-1 (lam \\ rc_cone)
        cone_part = scaling.apply_inverse(jordan_solve(lam, rc_cone))
        rhs = structure.adjoint({k: rc[k] / rows[k] for k in ROWS}).minus(r_d).plus_cones(cone_part)
        dx = newton.solve(rhs, fallback)
        if dx is None:
            return None
        ds = structure.rows(dx, constant=False)
        dz = {k: (rc[k] - z[k] * ds[k]) / rows[k] for k in ROWS}
        ds_cone = structure.cones(dx)
        dz_cone = cone_part - scaling.apply_inverse_squared(ds_cone)
        return dx, ds, dz, ds_cone, dz_cone

    def max_steps(ds, dz, ds_cone, dz_cone) -> tuple[float, float]:
        """Largest primal and dual steps to the boundary; equal for the squared loss, whose
        quadratic objective couples them."""
        primal = min(min(ratio_step(rows[k], ds[k]) for k in ROWS), cone_step(cones, ds_cone))
        dual = min(min(ratio_step(z[k], dz[k]) for k in ROWS), cone_step(z_cone, dz_cone))
        if not structure.hinge:
            primal = dual = min(primal, dual)
        return min(1.0, primal), min(1.0, dual)

    # predictor (affine scaling)
    rc = {k: -rows[k] * z[k] for k in ROWS}
    rc_cone = -jordan(lam, lam)
    dx, ds, dz, ds_cone, dz_cone = direction(rc, rc_cone)
    a_p, a_d = max_steps(ds, dz, ds_cone, dz_cone)
    mu_aff = _mean_complementarity(structure, {k: rows[k] + a_p * ds[k] for k in ROWS},
                                   {k: z[k] + a_d * dz[k] for k in ROWS}, cones + a_p * ds_cone,
                                   z_cone + a_d * dz_cone)
    sigma = min(1.0, max((mu_aff / mu) ** 3, mu_floor / mu))
    # corrector: centring plus the second-order term of the predictor
    scaled_ds = scaling.apply_inverse(ds_cone)
    scaled_dz = scaling.apply(dz_cone)
    target = {family: sigma * value for family, value in _centring_targets(rows, z, cones, z_cone, mu).items()}
    rc = {k: -rows[k] * z[k] - ds[k] * dz[k] + target[k] for k in ROWS}
    rc_cone = -jordan(lam, lam) - jordan(scaled_ds, scaled_dz) + target["cones"] * cone_identity(lam)
    found = direction(rc, rc_cone)
    steps = max_steps(*found[1:])
    # Gondzio's centrality correctors (Gondzio 1996; Colombo and Gondzio 2008): at a longer trial step,
    # push the complementarity products outside CENTRED_RANGE times their family's target back to its edges,
    # through the same factors
    low = {family: CENTRED_RANGE[0] * value for family, value in target.items()}
    high = {family: CENTRED_RANGE[1] * value for family, value in target.items()}
    accepted = 0
    while accepted < correctors and min(steps) < 1.0:
        aim_p, aim_d = (min(1.0, STEP_AIM[0] * a + STEP_AIM[1]) for a in steps)
        _, ds, dz, ds_cone, dz_cone = found
        products = {k: (rows[k] + aim_p * ds[k]) * (z[k] + aim_d * dz[k]) for k in ROWS}
        trial_rc = {k: rc[k] + (products[k].clamp(low[k], high[k]) - products[k]).clamp(min=-high[k])
                    for k in ROWS}
        cone_products = jordan(lam + aim_p * scaling.apply_inverse(ds_cone), lam + aim_d * scaling.apply(dz_cone))
        trial_rc_cone = rc_cone + spectral_clamp(cone_products, low["cones"], high["cones"]) - cone_products
        candidate = direction(trial_rc, trial_rc_cone, fallback=False)
        if candidate is None:  # the structured factors were not accurate enough for it: no refactoring
            break
        candidate_steps = max_steps(*candidate[1:])
        if min(candidate_steps) < min(steps) + STEP_GAIN * (min(aim_p, aim_d) - min(steps)):
            break
        found, steps, rc, rc_cone = candidate, candidate_steps, trial_rc, trial_rc_cone
        accepted += 1
    dx, ds, dz, ds_cone, dz_cone = found
    a_p, a_d = (TO_BOUNDARY * a for a in steps)
    x = x.step(dx, a_p)
    z = {k: z[k] + a_d * dz[k] for k in ROWS}
    return x, z, z_cone + a_d * dz_cone, min(a_p, a_d), newton.fallback, accepted, newton.single


class _NewtonSystem:
    """The Newton system of one iteration: factored by its structure (:func:`.newton.factor`), every
    direction refined against the exact matrix-vector product. Where that leaves a relative residual
    above FALLBACK_RESIDUAL (the harmonic means of B_V and B_W lose accuracy late in some solves),
    it is refactored in the next of the stable forms of :func:`.newton.stable_forms` (eps = 0:
    Woodbury over the 2P columns, then one dense Cholesky in U; eps > 0: the dense delta system where
    the structured form was Woodbury over the mask rows, then the dense Cholesky in U) until a
    direction is accurate, for the rest of the iteration; the most accurate direction found is used
    (one factorisation is held at a time). ``fallback`` says whether a stable form was factored. Where the
    structured factor is the float32 one of :func:`.newton.single_precision_pays` (``single``), the first
    refactorisation is the structured form in float64, which the rest of the solve then keeps."""

    def __init__(self, structure: Structure, w: dict, scaling: NTScaling):
        self.structure, self.w, self.scaling = structure, w, scaling
        self._stable_forms = iter(stable_forms(structure))
        self.fallback = self.single = False
        try:
            self._solve = factor(structure, w, scaling)
        except torch.linalg.LinAlgError:  # a harmonic mean not numerically positive definite
            if not self._next_form():
                raise
        self.single = structure.factor_in_single and not self.fallback

    def _next_form(self) -> bool:
        """Refactor in the next form that factors (the structured one in float64 after a float32 factor, then the
        stable forms); False when none is left."""
        if self.single:
            self.single = self.structure.factor_in_single = False
            try:
                self._solve = factor(self.structure, self.w, self.scaling)
                return True
            except torch.linalg.LinAlgError:
                pass
        for form in self._stable_forms:
            try:
                self._solve = factor(self.structure, self.w, self.scaling, form=form)
            except torch.linalg.LinAlgError:
                continue
            self.fallback = True
            return True
        return False

    def solve(self, rhs: Point, fallback: bool = True) -> Point | None:
        dx, residual = self._refined(rhs)
        if not residual <= FALLBACK_RESIDUAL and not fallback:  # (also a residual that is not a number)
            return None
        while not residual <= FALLBACK_RESIDUAL and self._next_form():
            candidate, candidate_residual = self._refined(rhs)
            if candidate_residual < residual or math.isnan(residual):
                dx, residual = candidate, candidate_residual
        return dx

    def _refined(self, rhs: Point) -> tuple[Point, float]:
        """The direction after at most REFINEMENTS steps of iterative refinement (REFINEMENTS +
        SINGLE_EXTRA_REFINEMENTS from a float32 factor; fewer once its relative residual is below
        REFINED_RESIDUAL), and its relative residual. A float32 factor whose refinement step shrinks the
        residual by less than SINGLE_CONTRACTION is not used after this iteration."""
        def residual_of(dx):
            return rhs.minus(newton_product(self.structure, self.w, self.scaling, dx))

        scale = max(_norm(rhs), 1e-300)
        dx = self._solve(rhs)
        residual = residual_of(dx)
        norm = _norm(residual)
        for _ in range(REFINEMENTS + (SINGLE_EXTRA_REFINEMENTS if self.single else 0)):
            if norm <= REFINED_RESIDUAL * scale:
                break
            dx = dx.step(self._solve(residual), 1.0)
            residual = residual_of(dx)
            previous, norm = norm, _norm(residual)
            if self.single and not norm <= SINGLE_CONTRACTION * previous:
                self.structure.factor_in_single = False
        return dx, norm / scale


def _norm(point: Point) -> float:
    """The Euclidean norm of all of a point's variables together."""
    return math.sqrt(sum(float((f ** 2).sum()) for f in point.fields()))


def _centring_targets(rows: dict, z: dict, cones, z_cone, mu: float) -> dict:
    """Per family of rows (keys of ROWS) and for the cones ("cones"): the value the corrector's centring term
    scales by sigma, the family's own mean complementarity product (a cone counts once, as in the degree)
    clipped to [mu, CENTRING_WEIGHT_MAX mu]; mu for an empty family.

    Where one family lags far behind the rest (the loss rows R of samples still inside their margin, while
    the many l1 rows a >= |g| set mu), centring it at sigma mu asks its slacks to shrink by orders of magnitude
    at once and the ratio test cuts every step short; centred near its own mean it follows at the rate sigma.
    The targets are those of a weighted central path, s_k z_k = t omega_k with weights omega_k in [1,
    CENTRING_WEIGHT_MAX], constant over a family and updated every iteration: every product still goes to 0
    with t. The bound keeps a family from being pushed up by more than that factor (unbounded, the cones of
    two of 90 random programs were centred 90-120 times above mu after a poor first step, the
    complementarity grew more than 1,000-fold and the solves stalled)."""
    def target(products):
        if products.numel() == 0:
            return mu
        return min(max(mu, float(products.mean())), CENTRING_WEIGHT_MAX * mu)

    targets = {k: target(rows[k] * z[k]) for k in ROWS}
    targets["cones"] = target((cones * z_cone).sum(dim=1))
    return targets


def _mean_complementarity(structure: Structure, rows: dict, z: dict, cones, z_cone) -> float:
    """(s^T z summed over the rows and the cones) / degree: the barrier parameter mu."""
    total = sum(float((rows[k] * z[k]).sum()) for k in ROWS) + float((cones * z_cone).sum())
    return total / structure.degree


def _columns(x: Point, keep: np.ndarray, program: ConvexProgram) -> np.ndarray:
    """U = [V, W] of the full program (zeros for the dropped patterns), float64 on the CPU."""
    P = program.n_patterns
    U = np.zeros((program.d, 2 * P))
    cols = np.concatenate([np.flatnonzero(keep), P + np.flatnonzero(keep)])
    U[:, cols] = x.U.double().cpu().numpy()
    return U


def _solution(program, V, W, objective, lower_bound, status, steps, start_time, info) -> ConvexSolution:
    return ConvexSolution(
        V=V, W=W, objective=objective, status=status, solver="fast",
        solve_time=time.perf_counter() - start_time, max_violation=program.max_violation(V, W),
        loss=program.loss, eps=program.eps, beta=program.beta, bias=program.bias,
        patterns=program.patterns, lower_bound=lower_bound, iterations=steps, info=info,
    )
