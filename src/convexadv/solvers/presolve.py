"""Exact presolve for the robust constraints (11): patterns whose cone is {0}.

For one pattern D_i (signs s = 2 diag(D_i) - 1) the constraints (11) on u = v_i
(or w_i) say that u lies in the polyhedral cone

    C_i = {u : s_k x_k^T u >= eps ||u~||_1 for all k}      (u~: perturbable coordinates).

C_i is {0} exactly when the margin LP

    m_i = max  t   s.t.  s_k x_k^T u >= t for all k,  ||u~||_1 <= 1   (bias coordinate free)

has m_i < eps (and is bounded). Then v_i = w_i = 0 at every feasible point, so the
pattern can be dropped from the program without changing its optimum. With pixel
data and eps = 10 most sampled patterns are of this kind (section VII-D).

Every decision is exact: m_i < eps is proved by a point of the LP's dual (cheap bounds
for all patterns at once) or by the LP over a subset of the rows (row generation, for
large n); m_i > eps by a direction e_i checked against every row. That e_i is an
interior direction of C_i (its robust slack is at least m_i - eps > 0); the
interior-point method of :mod:`.fast` starts from it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..programs import ConvexProgram

#: a cone counts as {0} only when its margin is below eps by this relative amount
MARGIN_SAFETY = 1e-7
#: margin LPs start from this many rows (all of them for smaller n) and add at most this many per round
ROW_BLOCK = 200
#: exponentiated-gradient steps of the dual bounds, and the smoothing of their max (fraction of it)
DUAL_ITERATIONS, DUAL_SMOOTHING = 100, 0.05


def _margin_lp(A: np.ndarray, pert: np.ndarray, i: int) -> tuple[float, np.ndarray] | None:
    """max t s.t. a_k^T u >= t for the given rows a_k = s_k x_k, ||u~||_1 <= 1 (bias free), by HiGHS;
    None when unbounded (every row has the same sign and the bias alone satisfies them)."""
    n, d = A.shape
    free = np.flatnonzero(~pert)
    q = np.flatnonzero(pert)
    # variables: [p (q), m (q), b (free), t];  u~ = p - m,  p, m >= 0
    n_vars = 2 * q.size + free.size + 1
    cost = np.zeros(n_vars)
    cost[-1] = -1.0
    # t - a_k^T u <= 0
    A_ub = np.hstack([-A[:, q], A[:, q], -A[:, free], np.ones((n, 1))])
    norm_row = np.concatenate([np.ones(2 * q.size), np.zeros(free.size + 1)])[None, :]
    A_ub = np.vstack([A_ub, norm_row])
    b_ub = np.concatenate([np.zeros(n), [1.0]])
    bounds = [(0, None)] * (2 * q.size) + [(None, None)] * (free.size + 1)
    result = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if result.status == 3:
        return None
    if result.status != 0:
        raise RuntimeError(f"margin LP for pattern {i} failed: {result.message}")
    u = np.zeros(d)
    u[q] = result.x[: q.size] - result.x[q.size: 2 * q.size]
    u[free] = result.x[2 * q.size: 2 * q.size + free.size]
    return -float(result.fun), u


def pattern_margin(program: ConvexProgram, i: int, first_rows: np.ndarray | None = None
                   ) -> tuple[float, np.ndarray, float]:
    """Bounds on the margin m_i of pattern i's cone: ``(upper, u, lower)`` with upper >= m_i >= lower,
    lower the exact margin of the direction u (||u~||_1 <= 1); upper = lower = inf when the bias alone
    satisfies (11).

    Exact LPs (HiGHS) with row generation: the LP over a subset of the rows can only have a larger
    optimum, so a subset already proves m_i < eps; otherwise the rows its maximiser violates most are
    added until the maximiser satisfies every row (then upper = lower = m_i up to rounding).
    ``first_rows`` (indices) replaces the first subset, ROW_BLOCK random rows."""
    X, pert = program.X, program.perturbable
    s = np.where(program.patterns[:, i], 1.0, -1.0)
    A = s[:, None] * X  # rows s_k x_k
    n = A.shape[0]
    if n <= ROW_BLOCK:
        rows = np.arange(n)
    elif first_rows is None:
        rows = np.sort(np.random.default_rng(i).choice(n, ROW_BLOCK, replace=False))
    else:
        rows = np.unique(first_rows)
    while True:
        solved = _margin_lp(A[rows], pert, i)
        if solved is None:  # the chosen rows all have one sign
            other = np.flatnonzero(s != s[rows[0]])
            if other.size == 0:
                u = np.zeros(X.shape[1])
                u[~pert] = s[0]
                return np.inf, u, np.inf
            rows = np.union1d(rows, other[:ROW_BLOCK])
            continue
        upper, u = solved
        values = A @ u
        lower = float(values.min())
        if upper < program.eps * (1 - MARGIN_SAFETY) or lower >= upper - 1e-9 * abs(upper) or rows.size == n:
            return upper, u, lower
        violated = np.setdiff1d(np.argsort(values)[: 2 * ROW_BLOCK], rows)[:ROW_BLOCK]
        rows = np.union1d(rows, violated)


def dual_margin_bounds(program: ConvexProgram, iterations: int = DUAL_ITERATIONS
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds on every pattern's margin from the LP's dual, and the dual weights (n, P).

    By LP duality m_i = min ||X~^T (s_i * lam)||_inf over lam >= 0 with sum(lam) = 1 (with a
    bias: half the mass on each sign, since the bias coordinate is free), so every such lam
    bounds m_i from above: a value < eps proves C_i = {0} without solving the LP. The weights
    come from exponentiated-gradient steps on a smoothed max (all patterns at once: one GEMM
    with X per step); they also mark the rows that matter for the exact LP."""
    Xp = program.X[:, program.perturbable]
    S = np.where(program.patterns, 1.0, -1.0)
    sides = [S > 0, S < 0] if program.bias else [np.ones_like(S, dtype=bool)]

    def normalise(weights):
        out = np.zeros_like(weights)
        for side in sides:
            total = np.where(side, weights, 0.0).sum(axis=0)
            out += np.where(side, weights / (len(sides) * np.where(total > 0, total, 1.0)), 0.0)
        return out

    weights = normalise(np.ones_like(S))
    scale = max(float(np.abs(Xp).max()), 1e-300)
    best = np.full(S.shape[1], np.inf)
    for _ in range(iterations):
        G = Xp.T @ (S * weights)  # (d', P)
        value = np.abs(G).max(axis=0)
        best = np.minimum(best, value)
        # gradient of the smoothed max  mu log sum_l 2 cosh(G_l / mu),  mu = 5 % of the current value
        Z = np.abs(G) / (DUAL_SMOOTHING * value + 1e-300)
        E = np.exp(Z - Z.max(axis=0)) * np.sign(G)
        weights = normalise(weights * np.exp(-S * (Xp @ (E / np.abs(E).sum(axis=0))) / scale))
    if program.bias:  # a sign missing from a pattern: the bias alone satisfies (11), no bound
        best[~(S > 0).any(axis=0) | ~(S < 0).any(axis=0)] = np.inf
    return best, weights


def cone_margins(program: ConvexProgram) -> tuple[np.ndarray, np.ndarray]:
    """For every pattern: ``trivial`` (P,), True where the cone (11) is {0}, and
    ``interior`` (d, P), an interior direction of the cone where its margin exceeds
    eps, zeros elsewhere. With eps = 0 nothing is trivial (u = 0 has margin 0) and the
    directions are interior points of the cones of (8).

    Dual bounds (:func:`dual_margin_bounds`) settle most {0} cones cheaply; the others get
    the exact LP of :func:`pattern_margin`, started from the rows the dual weights mark."""
    trivial = np.zeros(program.n_patterns, dtype=bool)
    interior = np.zeros((program.d, program.n_patterns))
    weights = None
    if program.eps > 0:
        bounds, weights = dual_margin_bounds(program)
        trivial = bounds < program.eps * (1 - MARGIN_SAFETY)
    for i in np.flatnonzero(~trivial):
        first = None if weights is None else np.argsort(-weights[:, i], kind="stable")[:ROW_BLOCK]
        upper, direction, lower = pattern_margin(program, i, first)
        trivial[i] = upper < program.eps * (1 - MARGIN_SAFETY)
        if lower > program.eps * (1 + MARGIN_SAFETY):
            interior[:, i] = direction
    return trivial, interior


def trivial_patterns(program: ConvexProgram) -> np.ndarray:
    """Boolean mask (P,) of the patterns whose robust cone is {0} (always all False when eps = 0)."""
    if program.eps == 0:
        return np.zeros(program.n_patterns, dtype=bool)
    return cone_margins(program)[0]

