"""Exact presolve for the robust constraints (11): patterns whose cone is {0}.

For one pattern D_i (signs s = 2 diag(D_i) - 1) the constraints (11) on u = v_i
(or w_i) say that u lies in the polyhedral cone

    C_i = {u : s_k x_k^T u >= eps ||u~||_1 for all k}      (u~: perturbable coordinates).

C_i is {0} exactly when the margin LP

    m_i = max  t   s.t.  s_k x_k^T u >= t for all k,  ||u~||_1 <= 1   (bias coordinate free)

has m_i < eps (and is bounded). Then v_i = w_i = 0 at every feasible point, so the
pattern can be dropped from the program without changing its optimum. With pixel
data and eps = 10 most sampled patterns are of this kind (section VII-D).

When m_i > eps the LP's maximiser e_i is an interior direction of C_i (its robust
slack is at least m_i - eps > 0); the barrier method of :mod:`.fast` starts from it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..programs import ConvexProgram

#: a cone counts as {0} only when its margin is below eps by this relative amount
MARGIN_SAFETY = 1e-7


def pattern_margin(program: ConvexProgram, i: int) -> tuple[float, np.ndarray]:
    """The margin m_i of pattern i's cone and the LP's maximiser u (inf and the bias
    direction when the LP is unbounded), by an exact LP (HiGHS)."""
    X = program.X
    pert = program.perturbable
    s = np.where(program.patterns[:, i], 1.0, -1.0)
    A = s[:, None] * X  # rows s_k x_k
    n, d = X.shape
    free = np.flatnonzero(~pert)
    q = np.flatnonzero(pert)
    # variables: [p (q), m (q), b (free), t];  u~ = p - m,  p, m >= 0
    n_vars = 2 * q.size + free.size + 1
    cost = np.zeros(n_vars)
    cost[-1] = -1.0
    # t - s_k x_k^T u <= 0
    A_ub = np.hstack([-A[:, q], A[:, q], -A[:, free], np.ones((n, 1))])
    norm_row = np.concatenate([np.ones(2 * q.size), np.zeros(free.size + 1)])[None, :]
    A_ub = np.vstack([A_ub, norm_row])
    b_ub = np.concatenate([np.zeros(n), [1.0]])
    bounds = [(0, None)] * (2 * q.size) + [(None, None)] * (free.size + 1)
    result = linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    u = np.zeros(d)
    if result.status == 3:  # unbounded: every s_k has one sign and the bias alone satisfies (11)
        u[free] = s[0]
        return np.inf, u
    if result.status != 0:
        raise RuntimeError(f"margin LP for pattern {i} failed: {result.message}")
    u[q] = result.x[: q.size] - result.x[q.size: 2 * q.size]
    u[free] = result.x[2 * q.size: 2 * q.size + free.size]
    return -float(result.fun), u


def cone_margins(program: ConvexProgram) -> tuple[np.ndarray, np.ndarray]:
    """For every pattern: ``trivial`` (P,), True where the cone (11) is {0}, and
    ``interior`` (d, P), an interior direction of the cone where its margin exceeds
    eps, zeros elsewhere. With eps = 0 nothing is trivial (u = 0 has margin 0) and the
    directions are interior points of the cones of (8)."""
    trivial = np.zeros(program.n_patterns, dtype=bool)
    interior = np.zeros((program.d, program.n_patterns))
    for i in range(program.n_patterns):
        margin, direction = pattern_margin(program, i)
        trivial[i] = margin < program.eps * (1 - MARGIN_SAFETY)
        if margin > program.eps * (1 + MARGIN_SAFETY):
            interior[:, i] = direction
    return trivial, interior


def trivial_patterns(program: ConvexProgram) -> np.ndarray:
    """Boolean mask (P,) of the patterns whose robust cone is {0} (always all False when eps = 0)."""
    if program.eps == 0:
        return np.zeros(program.n_patterns, dtype=bool)
    return cone_margins(program)[0]

