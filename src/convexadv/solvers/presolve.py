"""Exact presolve for the robust constraints (11): patterns whose cone is {0}.

For one pattern D_i (signs s = 2 diag(D_i) - 1) the constraints (11) on u = v_i
(or w_i) say that u lies in the polyhedral cone

    C_i = {u : s_k x_k^T u >= eps ||u~||_1 for all k}      (u~: perturbable coordinates).

C_i is {0} exactly when the margin LP

    m_i = max  t   s.t.  s_k x_k^T u >= t for all k,  ||u~||_1 <= 1   (bias coordinate free)

has m_i < eps (and is bounded). Then v_i = w_i = 0 at every feasible point, so the
pattern can be dropped from the program without changing its optimum. With pixel
data and eps = 10 most patterns of Algorithm 2 are of this kind (section VII-D).

Every decision is exact: m_i < eps is proved by a point of the LP's dual (LP duality:
m_i = min ||X~^T (s * lam)||_inf over lam >= 0, sum(lam) = 1, and with a bias half of the
mass on each sign), evaluated in floating point from HiGHS's multipliers or from cheap
bounds for all patterns at once; m_i > eps by a direction e_i checked against every row.
That e_i is an interior direction of C_i (its robust slack is at least m_i - eps > 0); the
interior-point method of :mod:`.fast` starts from it. The LPs use row generation for large n
(every round adds at least one row, so it ends), each round re-solving one HiGHS model from its
previous basis (:class:`_MarginLP`); with eps = 0 and large n x d a least-squares direction is tried
before any LP (a dense LP at d = 1,024 takes minutes), and all comparisons are made in internal
units (:class:`ConeRows`): 0-1 and 0-255 data give the same decisions. The patterns' LPs are
independent and HiGHS releases the GIL while it solves, so they run in parallel threads
(:func:`lp_threads`), with the same results as one after another.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import highspy
import numpy as np

from ..programs import ConvexProgram

#: a cone counts as {0} only when its margin is below eps by this relative amount, and as
#: having an interior only when a direction's margin is above eps by it (floating-point rounding)
MARGIN_SAFETY = 1e-7
#: margin LPs start from this many rows (all of them for smaller n) and add at most this many per round
ROW_BLOCK = 200
#: internal units (largest |x~_kj| = 1): a row outside an LP's subset is violated when it is below
#: the LP's value by more than this (HiGHS's default feasibility tolerance)
ROW_TOLERANCE = 1e-7
#: exponentiated-gradient steps of the dual bounds, and the smoothing of their max (fraction of it)
DUAL_ITERATIONS, DUAL_SMOOTHING = 100, 0.05
#: above this many entries of X (n x d) a margin LP costs minutes (dense simplex: 50 s for 1,000 rows
#: at d = 1,024): with eps = 0 least-squares directions (:func:`least_squares_directions`) are tried first
LP_MAX_ENTRIES = 2 ** 19
#: Ho-Kashyap steps, then centring refits, of the least-squares directions
SEPARATION_ITERATIONS, CENTRING_ITERATIONS = 500, 200


class PresolveTimeoutError(TimeoutError):
    """The presolve's deadline passed before every pattern was decided (nothing is returned
    undecided: a caller with a time limit reports that limit instead of a result)."""


@dataclass(frozen=True)
class ConeRows:
    """The rows x_k of (11) in internal units: the perturbable columns of X divided by ``scale``
    (their largest |x_kj|), the bias column (if any) left as ones.

    The cones are unchanged by the rescaling: (u~, b) lies in C_i for (X, eps) exactly when
    (u~, b / scale) does for the internal rows and eps / scale. So a margin in internal units is
    the margin in input units divided by ``scale``, and :meth:`to_inputs` maps a direction back.
    """

    X: np.ndarray
    perturbable: np.ndarray
    scale: float

    @classmethod
    def from_inputs(cls, X: np.ndarray, perturbable: np.ndarray) -> "ConeRows":
        scale = float(np.abs(X[:, perturbable]).max(initial=0.0))
        if not scale > 0:  # no perturbable signal at all: nothing to rescale
            scale = 1.0
        internal = np.array(X, dtype=np.float64, copy=True)
        internal[:, perturbable] /= scale
        return cls(X=internal, perturbable=np.asarray(perturbable, dtype=bool), scale=scale)

    @classmethod
    def of(cls, program: ConvexProgram) -> "ConeRows":
        return cls.from_inputs(program.X, program.perturbable)

    @property
    def bias(self) -> bool:
        return not self.perturbable.all()

    def to_inputs(self, U: np.ndarray) -> np.ndarray:
        """Directions (columns of U, internal units) in input units: the bias coordinates times ``scale``."""
        out = np.array(U, dtype=np.float64, copy=True)
        out[~self.perturbable] *= self.scale
        return out

    def margins(self, U: np.ndarray, signs: np.ndarray | None = None, *, products: np.ndarray | None = None
                ) -> np.ndarray:
        """The exact margin min_k s_k x_k^T u / ||u~||_1 of every column u of U (d, m) for the signs
        (n, m) (default: each direction's own pattern [X u >= 0], i.e. min_k |x_k^T u| / ||u~||_1);
        ``products``: X U, when the caller has it already.

        u lies in the cone (11) of those signs for every eps up to its margin. A direction
        with u~ = 0 has margin inf when it satisfies every row strictly, -inf otherwise."""
        U = np.asarray(U, dtype=np.float64).reshape(self.X.shape[1], -1)
        values = self.X @ U if products is None else products.reshape(self.X.shape[0], -1)
        values = np.abs(values) if signs is None else np.asarray(signs).reshape(values.shape) * values
        worst = values.min(axis=0)
        l1 = np.abs(U[self.perturbable]).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(l1 > 0, worst / np.where(l1 > 0, l1, 1.0), np.where(worst > 0, np.inf, -np.inf))


def _remaining(deadline: float | None, what: str) -> float | None:
    """Seconds left before ``deadline`` (None: no deadline); raises once it has passed."""
    if deadline is None:
        return None
    left = deadline - time.perf_counter()
    if left <= 0:
        raise PresolveTimeoutError(f"presolve of the robust cones (11) ran out of time {what}")
    return left


#: the HiGHS statuses a margin LP can end with that decide it (anything else is retried once from scratch)
_MARGIN_LP_DECIDED = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kUnbounded,
                      highspy.HighsModelStatus.kUnboundedOrInfeasible, highspy.HighsModelStatus.kTimeLimit)


class _MarginLP:
    """max t s.t. a_k^T u >= t for the rows a_k of A added so far (indices ``rows``, in the order they
    were added), ||u~||_1 <= 1 (bias free), in one HiGHS model: row generation adds rows to it and
    re-solves from the previous basis (the dual simplex's warm start) instead of solving every round
    from scratch.

    Variables [p (q), m (q), b (free), t] with u~ = p - m, p, m >= 0; row 0 is the norm row
    1^T (p + m) <= 1, the others t - a_k^T u <= 0, one per entry of ``rows``."""

    #: HiGHS's default simplex scaling, used for the one cold retry of a margin LP whose warm start ended undecided
    DEFAULT_SCALING = 2

    def __init__(self, A: np.ndarray, perturbable: np.ndarray):
        self.A = A
        self.rows = np.zeros(0, dtype=np.int64)
        self.perturbable = np.asarray(perturbable, dtype=bool)
        self.q, self.free = np.flatnonzero(self.perturbable), np.flatnonzero(~self.perturbable)
        self.n_vars = 2 * self.q.size + self.free.size + 1
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("presolve", "off")  # a warm start skips it anyway; off, unbounded is never ambiguous
        # the rows are in internal units (entries at most 1) and row 0 is all ones: HiGHS's own scaling of the
        # simplex only adds pivots (same decisions, directions equal to 1e-11; CIFAR n = 10,000, d = 3,072,
        # eps = 10: 158 -> 124 s, Gaussian n = 600, 36 patterns 7.8 -> 6.1 s, columns in units 1e-3..1e3 3.4 -> 0.9 s)
        self.highs.setOptionValue("simplex_scale_strategy", 0)
        inf = highspy.kHighsInf
        lower = np.concatenate([np.zeros(2 * self.q.size), np.full(self.free.size + 1, -inf)])
        self.highs.addVars(self.n_vars, lower, np.full(self.n_vars, inf))
        self.highs.changeColCost(self.n_vars - 1, -1.0)
        norm = np.arange(2 * self.q.size, dtype=np.int32)
        self.highs.addRow(-inf, 1.0, norm.size, norm, np.ones(norm.size))

    def add_rows(self, indices: np.ndarray) -> None:
        """Add the rows t - a_k^T u <= 0 for the rows a_k of A at ``indices``."""
        A, m = self.A[indices], len(indices)
        self.rows = np.concatenate([self.rows, indices])
        block = np.hstack([-A[:, self.q], A[:, self.q], -A[:, self.free], np.ones((m, 1))])
        starts = np.arange(m, dtype=np.int32) * self.n_vars
        columns = np.tile(np.arange(self.n_vars, dtype=np.int32), m)
        self.highs.addRows(m, np.full(m, -highspy.kHighsInf), np.zeros(m), block.size, starts, columns,
                           block.ravel())

    def solve(self, time_limit: float | None) -> tuple[float, np.ndarray, np.ndarray] | None:
        """(value, u, lam) with lam >= 0 HiGHS's multipliers of the rows ``rows`` (a dual point), or None
        when the LP is unbounded (every row has the same sign and the bias alone satisfies them)."""
        highs = self.highs
        if time_limit is not None:  # HiGHS's clock adds up over the runs of one model
            highs.setOptionValue("time_limit", highs.getRunTime() + max(time_limit, 1e-3))
        highs.run()
        status = highs.getModelStatus()
        if status not in _MARGIN_LP_DECIDED:
            # e.g. "Unknown" on near-duplicate rows (noise 1e-6): once more from scratch with HiGHS's scaling,
            # which this model keeps for its later warm starts (the dual bound checks every answer anyway)
            highs.clearSolver()
            highs.setOptionValue("simplex_scale_strategy", self.DEFAULT_SCALING)
            highs.run()
            status = highs.getModelStatus()
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return None  # the LP is feasible (u = 0, t = 0)
        if status == highspy.HighsModelStatus.kTimeLimit:
            raise PresolveTimeoutError("presolve of the robust cones (11) ran out of time inside a margin LP")
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"margin LP failed: HiGHS ended with status {highs.modelStatusToString(status)!r}, "
                               "also from a cold start with its scaling")
        solution = highs.getSolution()
        x = np.asarray(solution.col_value)
        u = np.zeros(self.perturbable.size)
        u[self.q] = x[: self.q.size] - x[self.q.size: 2 * self.q.size]
        u[self.free] = x[2 * self.q.size: 2 * self.q.size + self.free.size]
        return float(x[-1]), u, np.maximum(-np.asarray(solution.row_dual)[1:], 0.0)


def _dual_bound(A: np.ndarray, s: np.ndarray, lam: np.ndarray, perturbable: np.ndarray) -> float:
    """The upper bound ||A~^T lam||_inf on the margin from a dual point lam >= 0 of the rows A (signs s),
    after normalising lam to the dual's constraints (sum 1; with a bias, 1/2 on each sign);
    inf when lam cannot be normalised (no mass on a side)."""
    sides = [s > 0, s < 0] if not perturbable.all() else [np.ones(s.shape, dtype=bool)]
    weights = np.zeros_like(lam)
    for side in sides:
        total = lam[side].sum()
        if not total > 0:
            return np.inf
        weights[side] = lam[side] / (len(sides) * total)
    return float(np.abs(A[:, perturbable].T @ weights).max(initial=0.0))


def sign_margin(rows: ConeRows, signs: np.ndarray, *, first_rows: np.ndarray | None = None,
                stop_below: float = -np.inf, seed: int = 0, deadline: float | None = None
                ) -> tuple[float, np.ndarray, float]:
    """Bounds on the margin m of the cone (11) of the signs s (n,), internal units: ``(upper, u, lower)``
    with upper >= m >= lower, lower the exact margin of the direction u (||u~||_1 <= 1); upper = lower = inf
    when the bias alone satisfies (11).

    upper comes from a dual point (exact up to floating-point rounding, not HiGHS's tolerances).
    Row generation: the LP over a subset of the rows can only have a larger optimum, so a subset
    whose dual bound is below ``stop_below`` ends the search; otherwise the rows the LP's maximiser
    violates most are added until it violates none outside the subset (every round adds at least
    one row, so at most n rounds). ``first_rows`` (indices) replaces the first subset, ROW_BLOCK rows
    drawn with ``seed``. ``deadline`` (a ``time.perf_counter()`` value) raises PresolveTimeoutError."""
    s = np.where(np.asarray(signs) > 0, 1.0, -1.0)
    A = s[:, None] * rows.X  # rows s_k x_k
    n = A.shape[0]
    if n <= ROW_BLOCK:
        first = np.arange(n)
    elif first_rows is None:
        first = np.sort(np.random.default_rng(seed).choice(n, ROW_BLOCK, replace=False))
    else:
        first = np.unique(first_rows)
    lp = _MarginLP(A, rows.perturbable)
    lp.add_rows(first)
    while True:  # bounded: every pass adds at least one new row or returns
        solved = lp.solve(_remaining(deadline, "in a margin LP"))
        subset = lp.rows
        if solved is None:  # the chosen rows all have one sign (and a bias): add rows of the other sign
            other = np.flatnonzero(s != s[subset[0]])
            if other.size == 0:  # the bias alone satisfies every row
                u = np.zeros(rows.X.shape[1])
                u[~rows.perturbable] = s[0]
                return np.inf, u, np.inf
            new = np.setdiff1d(other, subset)[:ROW_BLOCK]
            if new.size == 0:  # cannot happen in exact arithmetic: rows of both signs bound t
                raise RuntimeError("margin LP reported unbounded with rows of both signs in it")
            lp.add_rows(new)
            continue
        value, u, lam = solved
        upper = _dual_bound(A[subset], s[subset], lam, rows.perturbable)
        if not np.isfinite(upper):  # HiGHS gave no usable multipliers: its value is the bound
            upper = value
        values = A @ u
        lower = _signed_margin(values, u, rows)
        if upper < stop_below or subset.size == n:
            return upper, u, lower
        outside = np.setdiff1d(np.flatnonzero(values < value - ROW_TOLERANCE), subset)
        if outside.size == 0:  # the subset's maximiser satisfies every row: it is the full LP's
            return upper, u, lower
        lp.add_rows(outside[np.argsort(values[outside], kind="stable")[:ROW_BLOCK]])


def _signed_margin(values: np.ndarray, u: np.ndarray, rows: ConeRows) -> float:
    """min_k a_k^T u / ||u~||_1 from the row values a_k^T u (inf / -inf when u~ = 0)."""
    worst = float(values.min())
    l1 = float(np.abs(u[rows.perturbable]).sum())
    if l1 > 0:
        return worst / l1
    return np.inf if worst > 0 else -np.inf


def sign_dual_bounds(rows: ConeRows, signs: np.ndarray, iterations: int = DUAL_ITERATIONS, *,
                     deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds (internal units) on the margins of the sign patterns S (n, P) from the LP's dual,
    and the dual weights (n, P).

    By LP duality m_i = min ||X~^T (s_i * lam)||_inf over lam >= 0 with sum(lam) = 1 (with a
    bias: half the mass on each sign, since the bias coordinate is free), so every such lam
    bounds m_i from above: a value < eps proves C_i = {0} without solving the LP. The weights
    come from exponentiated-gradient steps on a smoothed max (all patterns at once: one GEMM
    with X per step); they also mark the rows that matter for the exact LP."""
    Xp = rows.X[:, rows.perturbable]
    S = np.where(np.asarray(signs) > 0, 1.0, -1.0)
    sides = [S > 0, S < 0] if rows.bias else [np.ones_like(S, dtype=bool)]

    def normalise(weights):
        out = np.zeros_like(weights)
        for side in sides:
            total = np.where(side, weights, 0.0).sum(axis=0)
            out += np.where(side, weights / (len(sides) * np.where(total > 0, total, 1.0)), 0.0)
        return out

    weights = normalise(np.ones_like(S))
    best = np.full(S.shape[1], np.inf)
    for _ in range(iterations):
        _remaining(deadline, "in the dual bounds")
        G = Xp.T @ (S * weights)  # (d', P)
        value = np.abs(G).max(axis=0)
        best = np.minimum(best, value)
        # gradient of the smoothed max  mu log sum_l 2 cosh(G_l / mu),  mu = 5 % of the current value
        Z = np.abs(G) / (DUAL_SMOOTHING * value + 1e-300)
        E = np.exp(Z - Z.max(axis=0)) * np.sign(G)
        weights = normalise(weights * np.exp(-S * (Xp @ (E / np.abs(E).sum(axis=0)))))
    if rows.bias:  # a sign missing from a pattern: the bias alone satisfies (11), no bound
        best[~(S > 0).any(axis=0) | ~(S < 0).any(axis=0)] = np.inf
    return best, weights


def least_squares_directions(rows: ConeRows, signs: np.ndarray, *, deadline: float | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate interior directions (d, P) (internal units) of the cones of the sign patterns S (n, P)
    and their exact margins (P,) (:meth:`ConeRows.margins`),
    by least squares instead of LPs: Ho-Kashyap's procedure (u = X_s^+ b for targets b > 0, raised
    where the fit X_s u exceeds them) for at most SEPARATION_ITERATIONS steps or until every row of
    every pattern has s_k x_k^T u > 0, then CENTRING_ITERATIONS refits with the rows below half the
    median row raised to it, keeping each pattern's direction of largest exact margin. One
    pseudo-inverse serves every pattern (X_s^+ = X^+ diag(s)); each step costs two products with X.
    Nothing is claimed about the directions: the caller decides by their margins."""
    S = np.where(np.asarray(signs) > 0, 1.0, -1.0)
    pinv = _pseudo_inverse(rows.X)
    targets = np.ones_like(S)
    for _ in range(SEPARATION_ITERATIONS):
        _remaining(deadline, "in the least-squares directions")
        U = pinv @ (S * targets)
        products = rows.X @ U
        fit = S * products
        if (fit.min(axis=0) > 0).all():
            break
        excess = fit - targets
        targets = targets + excess + np.abs(excess)
    best, best_margin = U, rows.margins(U, S, products=products)
    for _ in range(CENTRING_ITERATIONS):
        _remaining(deadline, "in the least-squares directions")
        U = pinv @ (S * np.maximum(fit, 0.5 * np.median(fit, axis=0)))
        products = rows.X @ U
        fit = S * products
        margin = rows.margins(U, S, products=products)
        better = margin > best_margin
        best[:, better], best_margin[better] = U[:, better], margin[better]
    return best, best_margin


def _pseudo_inverse(X: np.ndarray) -> np.ndarray:
    """X^+ (d, n) from the eigendecomposition of the smaller Gram matrix (X^T X or X X^T): a few
    seconds at n = 10,000, d = 3,072, where an SVD takes a minute. Eigenvalues below
    max(n, d) * machine eps * the largest count as zero (the pseudo-inverse's usual cut, squared)."""
    tall = X.shape[0] >= X.shape[1]
    gram = X.T @ X if tall else X @ X.T
    values, vectors = np.linalg.eigh(gram)
    keep = values > max(X.shape) * np.finfo(X.dtype).eps * values.max(initial=0.0)
    inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return inverse @ X.T if tall else X.T @ inverse


def decide_cones(rows: ConeRows, patterns: np.ndarray, eps: float, *, deadline: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cone_margins` for internal rows and eps (internal units); directions in internal units."""
    patterns = np.asarray(patterns, dtype=bool)
    n_patterns = patterns.shape[1]
    trivial = np.zeros(n_patterns, dtype=bool)
    interior = np.zeros((rows.X.shape[1], n_patterns))
    weights = None
    if eps > 0:
        bounds, weights = sign_dual_bounds(rows, patterns, deadline=deadline)
        trivial = bounds < eps * (1 - MARGIN_SAFETY)
    undecided = np.flatnonzero(~trivial)
    if eps == 0 and undecided.size and rows.X.size > LP_MAX_ENTRIES:  # Algorithm 1: no LP at all
        candidates, margins = least_squares_directions(rows, patterns[:, undecided], deadline=deadline)
        found = margins > eps * (1 + MARGIN_SAFETY)
        interior[:, undecided[found]] = candidates[:, found]
        undecided = undecided[~found]
    if undecided.size and weights is None:  # eps = 0: the dual weights only choose the LPs' first rows
        weights = sign_dual_bounds(rows, patterns, deadline=deadline)[1]

    def margin(i):
        first = np.argsort(-weights[:, i], kind="stable")[:ROW_BLOCK]
        return sign_margin(rows, patterns[:, i], first_rows=first, seed=i, stop_below=eps * (1 - MARGIN_SAFETY),
                           deadline=deadline)

    pool = ThreadPoolExecutor(lp_threads(undecided.size))
    try:
        for i, (upper, direction, lower) in zip(undecided, pool.map(margin, undecided)):
            trivial[i] = upper < eps * (1 - MARGIN_SAFETY)
            if lower > eps * (1 + MARGIN_SAFETY):
                interior[:, i] = direction
    finally:  # an LP's error (or an interrupt) cancels the LPs not yet started and waits for the running ones
        pool.shutdown(cancel_futures=True)
    return trivial, interior


def lp_threads(n_lps: int) -> int:
    """Threads for ``n_lps`` independent margin LPs: the CPUs this process may use, at most
    OMP_NUM_THREADS where that is set (a Snakemake job's threads), at most one per LP. Measured on the
    2-core machine (tenth session): the 36 LPs of the Gaussian program (n = 600, d = 147) 5.6 s on one
    thread, 2.8 s on two, the same directions to the bit."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) > 0:
        available = min(available, int(limit))
    return max(1, min(available, n_lps))


def pattern_margin(program: ConvexProgram, i: int, first_rows: np.ndarray | None = None, *,
                   deadline: float | None = None) -> tuple[float, np.ndarray, float]:
    """Bounds on the margin m_i of pattern i's cone, in input units: ``(upper, u, lower)`` with
    upper >= m_i >= lower, lower the exact margin of the direction u; upper = lower = inf when the
    bias alone satisfies (11). See :func:`sign_margin` (row generation stops early once upper < eps)."""
    rows = ConeRows.of(program)
    eps = program.eps / rows.scale
    upper, u, lower = sign_margin(rows, program.patterns[:, i], first_rows=first_rows, seed=i,
                                  stop_below=eps * (1 - MARGIN_SAFETY), deadline=deadline)
    return upper * rows.scale, rows.to_inputs(u), lower * rows.scale


def dual_margin_bounds(program: ConvexProgram, iterations: int = DUAL_ITERATIONS
                       ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sign_dual_bounds` for the program's patterns, bounds in input units."""
    rows = ConeRows.of(program)
    bounds, weights = sign_dual_bounds(rows, program.patterns, iterations)
    return bounds * rows.scale, weights


def cone_margins(program: ConvexProgram, *, deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For every pattern: ``trivial`` (P,), True where the cone (11) is {0}, and
    ``interior`` (d, P), an interior direction of the cone where its margin exceeds
    eps, zeros elsewhere. With eps = 0 nothing is trivial (u = 0 has margin 0) and the
    directions are interior points of the cones of (8).

    Dual bounds (:func:`sign_dual_bounds`) settle most {0} cones cheaply; with eps = 0 and X of more
    than LP_MAX_ENTRIES entries a least-squares direction (:func:`least_squares_directions`) with a
    positive exact margin gives the interior direction (Algorithm 1 at full scale: no LP at all); the
    others get the exact LP of :func:`sign_margin`, started from the rows the dual weights mark.
    A pattern whose margin lies within MARGIN_SAFETY of eps is kept, with no interior direction.
    ``deadline`` (a ``time.perf_counter()`` value) raises PresolveTimeoutError once passed."""
    rows = ConeRows.of(program)
    trivial, interior = decide_cones(rows, program.patterns, program.eps / rows.scale, deadline=deadline)
    return trivial, rows.to_inputs(interior)


def trivial_patterns(program: ConvexProgram, *, deadline: float | None = None) -> np.ndarray:
    """Boolean mask (P,) of the patterns whose robust cone is {0} (always all False when eps = 0)."""
    if program.eps == 0:
        return np.zeros(program.n_patterns, dtype=bool)
    return cone_margins(program, deadline=deadline)[0]
