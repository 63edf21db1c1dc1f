"""Exact l_inf robustness of one-hidden-layer ReLU networks by mixed-integer linear programming.

For a network yhat(x) = sum_j (x~^T u_j)_+ alpha_j (x~ = [x, 1] when it has a bias input, which
is never perturbed) every quantity here is an optimum over the paper's threat model, the box
{x + delta : ||delta||_inf <= eps} in the data's own units, with no clipping to a pixel range:

* hinge models: the worst margin m*(x, y) = min_delta y yhat(x + delta), the inner problem of
  (13); the point is robust iff m* > 0. Theorem 4 gives it in closed form only where the network
  is linear on the box (:func:`convexadv.network.certified_linear_region`); this module is exact
  everywhere.
* squared-loss models: the worst error e*(x, y) = max_delta |yhat(x + delta) - y|, the inner
  problem of (16) (the square of it is (17)'s worst loss up to the factor 1/2).

Both reduce to  min_delta sum_j c_j (z_j)_+  with z_j = x~^T u_j + delta^T w_j (w_j: the
perturbable part of u_j) and c_j = y alpha_j for the margin, c_j = -alpha_j (max yhat) and
c_j = +alpha_j (min yhat) for the worst error. For one layer the pre-activation bounds
l_j = x~^T u_j - eps ||w_j||_1 <= z_j <= x~^T u_j + eps ||w_j||_1 = r_j are exact. A neuron with
r_j <= 0 contributes nothing, one with l_j >= 0 is linear, and of the unstable ones a term with
c_j > 0 is convex, exact in a linear program through its epigraph t_j >= max(0, z_j); only the
concave terms (c_j < 0) need a binary a_j:  0 <= t_j <= r_j a_j,  t_j <= z_j - l_j (1 - a_j).

The stages, cheapest first, each settle what they can and hand the rest on:

1. ``attack``: the clean point, Theorem 4's vertex Delta*, the box vertex that minimises the
   linear bound of stage 2, and :func:`convexadv.attacks.pgd_restarts` give attained values
   (upper bounds on the minimum), for all points at once;
2. ``bounds``: a closed-form lower bound for all points at once (the better of interval
   arithmetic and a linear relaxation: the chord r_j (z_j - l_j) / (r_j - l_j) for concave terms,
   0 or z_j for convex ones, minimised over the box);
3. ``lp``: per point, the MILP's linear relaxation (a_j in [0, 1]) solved by HiGHS, exact when
   no concave term is unstable, strengthened by :data:`CUT_ROUNDS` rounds of the convex-hull
   cuts of Anderson et al. (2020) (:class:`_ReluHull`);
4. ``milp``: per point, branch and bound on the MILP: best-first on the LP bound, branching on
   the phase of the concave neuron whose relaxation is loosest (a_j = 1: z_j >= 0, t_j = z_j;
   a_j = 0: z_j <= 0, t_j = 0), every node a warm-started HiGHS dual simplex solve, every LP
   minimiser scored on the network as a candidate. (HiGHS' own MIP solver gives the same answers
   but was ten times slower on CIFAR networks of width 72: its root cuts and heuristics cost more
   than the few nodes these problems need.)

In the LP and MILP delta is scaled to the unit box and every z_j by eps ||w_j||_1, so the
programs are the same whatever the data's units. A point's LP and branch and bound share its
``time_limit`` and, where given, its ``lp_limit`` (a number of LP solves: a budget that is the same on
every machine, so a point it stops is undecided on every run); a point whose bounds do not meet within
them is reported "undecided", never robust.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np

from .attacks import validate_count, pgd_restarts
from .network import ReLUNetwork, local_gradients
from .programs import LOSSES, perturbable_columns, validate_eps, validate_training_data

#: how a point was settled, cheapest first
METHODS = ("attack", "bounds", "lp", "milp")


@dataclass(frozen=True)
class RobustnessResult:
    """Per-point exact worst cases of :func:`exact_robustness`, with bounds and how they were found.

    ``value`` is attained by ``delta``: the margin y yhat(x + delta) (hinge) or the error
    |yhat(x + delta) - y| (squared), recomputed from the network. ``lower`` <= exact worst case
    <= ``upper`` always; hinge: ``upper == value``, squared: ``lower == value``. ``exact`` says the
    two bounds meet within ``gap`` (relative to the point's output scale). ``status`` is
    "robust" (lower > tolerance), "not_robust" (value <= tolerance, or exact with lower <= tolerance)
    or "undecided" for hinge models, with tolerance = ``gap`` times the output scale: margins that
    close to 0 certify nothing at the solver's precision and count as 0; "exact" or "undecided"
    for squared-loss models; ``method`` is the stage that settled the point, or the last one tried
    for an undecided point (see :data:`METHODS`); ``seconds`` is the time of the point's LP and
    branch and bound (0 when settled before).
    """

    loss: str
    eps: float
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    delta: np.ndarray
    exact: np.ndarray
    status: np.ndarray
    method: np.ndarray
    seconds: np.ndarray
    total_seconds: float
    decide_only: bool

    @property
    def n(self) -> int:
        return self.value.shape[0]

    @property
    def margin(self) -> np.ndarray:
        """The worst-case margin min_delta y yhat(x + delta) (hinge models)."""
        if self.loss != "hinge":
            raise AttributeError("margin is defined for hinge models; use worst_error")
        return self.value

    @property
    def worst_error(self) -> np.ndarray:
        """The worst-case error max_delta |yhat(x + delta) - y| (squared-loss models)."""
        if self.loss != "squared":
            raise AttributeError("worst_error is defined for squared-loss models; use margin")
        return self.value

    @property
    def n_undecided(self) -> int:
        return int(np.sum(self.status == "undecided"))

    @property
    def robust_accuracy(self) -> float:
        """Fraction of points proven robust; undecided points count as not robust (hinge models)."""
        if self.loss != "hinge":
            raise AttributeError("robust_accuracy is defined for hinge models")
        return float(np.mean(self.status == "robust"))

    @property
    def robust_accuracy_upper(self) -> float:
        """Fraction of points not proven vulnerable: the exact robust accuracy is in [robust_accuracy, this]."""
        if self.loss != "hinge":
            raise AttributeError("robust_accuracy_upper is defined for hinge models")
        return float(np.mean(self.status != "not_robust"))

    def summary(self) -> dict:
        """Counts and summaries, JSON-ready."""
        out = {
            "loss": self.loss, "eps": self.eps, "n": self.n, "decide_only": self.decide_only,
            "n_undecided": self.n_undecided, "n_exact": int(self.exact.sum()),
            "settled_by": {m: int(np.sum(self.method == m)) for m in METHODS},
            "seconds": self.total_seconds, "max_point_seconds": float(self.seconds.max(initial=0.0)),
        }
        if self.loss == "hinge":
            out.update(robust_accuracy=self.robust_accuracy, robust_accuracy_upper=self.robust_accuracy_upper,
                       n_robust=int(np.sum(self.status == "robust")),
                       n_not_robust=int(np.sum(self.status == "not_robust")))
        else:
            out.update(worst_mse=float(np.mean(self.value**2)), worst_mse_upper=float(np.mean(self.upper**2)))
        return out


#: rounds of convex-hull cuts added to a point's LP relaxation before branch and bound
CUT_ROUNDS = 1
#: a cut is added when it is violated by more than this (in units of the neuron's scale eps ||w_j||_1)
CUT_TOLERANCE = 1e-6


class _Rows:
    """Sparse rows lower <= a^T x <= upper, collected one by one (HiGHS' row-wise format)."""

    def __init__(self):
        self.indices, self.values, self.lower, self.upper = [], [], [], []

    def add(self, indices, values, lower: float, upper: float) -> None:
        self.indices.append(np.asarray(indices, dtype=np.int32))
        self.values.append(np.asarray(values, dtype=np.float64))
        self.lower.append(lower)
        self.upper.append(upper)

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def nnz(self) -> int:
        return int(sum(row.size for row in self.indices))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.lower, dtype=np.float64), np.array(self.upper, dtype=np.float64)

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lengths = [row.size for row in self.indices]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
        return starts, np.concatenate(self.indices), np.concatenate(self.values)

    def arrays(self) -> tuple:
        if self.count == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)
        return (*self.bounds(), *self.matrix())


class _ReluHull:
    """The inequalities of Anderson et al. (2020) for t = (s + v^T delta)_+ with delta in [-1, 1]^d, a in {0, 1}.

    For every subset I of the coordinates (||v||_1 = 1 here, so l = s - 1 and r = s + 1):
        t <= sum_{i in I} (v_i delta_i + |v_i| (1 - a)) + (s + sum_{i not in I} |v_i|) a.
    I = all coordinates gives t <= z - l (1 - a), I = {} gives t <= r a; together with t >= 0 and
    t >= z the family describes the convex hull of the neuron's graph over the box (a relaxed to
    [0, 1]), tighter than the triangle relaxation in z. Only the upper inequalities are needed: the concave terms
    c_j t_j (c_j < 0) push t_j up.
    """

    def __init__(self, v: np.ndarray, s: np.ndarray, t_col: np.ndarray, a_col: np.ndarray):
        self.v, self.s, self.t_col, self.a_col = v, s, t_col, a_col
        self.size = np.abs(v)

    def add(self, rows: _Rows, which: np.ndarray, inside: np.ndarray) -> None:
        for i, mask in zip(which, inside):
            I = np.flatnonzero(mask & (self.v[i] != 0))
            inner = self.size[i, I].sum()
            a_coefficient = inner - self.s[i] - (self.size[i].sum() - inner)
            rows.add(np.concatenate([I, [self.t_col[i], self.a_col[i]]]),
                     np.concatenate([-self.v[i, I], [1.0, a_coefficient]]), -np.inf, inner)

    def cuts(self, x: np.ndarray, d: int) -> _Rows:
        """The most violated inequality of every neuron that the point x = [delta, t, a] violates."""
        delta, t, a = x[:d], x[self.t_col], x[self.a_col]
        inner = self.v * delta + self.size * (1 - a)[:, None]
        outer = self.size * a[:, None]
        inside = inner < outer
        violated = np.flatnonzero(t > np.minimum(inner, outer).sum(axis=1) + self.s * a + CUT_TOLERANCE)
        rows = _Rows()
        self.add(rows, violated, inside[violated])
        return rows


class _Objective:
    """min over the eps-box of sum_j c_kj (s_kj + delta^T w_j)_+ for every row k."""

    def __init__(self, network: ReLUNetwork, X: np.ndarray, labels: np.ndarray, eps: float):
        self.eps = eps
        self.s = network._inputs(X) @ network.U  # pre-activations at delta = 0, (n, m)
        self.W = network.U[perturbable_columns(network.U.shape[0], network.bias)]  # (d, m)
        self.radius = eps * np.abs(self.W).sum(axis=0)  # eps ||w_j||_1, (m,)
        self.c = labels[:, None] * network.alpha[None, :]
        self.low, self.high = self.s - self.radius, self.s + self.radius
        # |objective| <= scale: the unit in which gaps and the programs' objectives are measured
        scale = (np.abs(self.c) * np.maximum(self.high, 0.0)).sum(axis=1)
        self.scale = np.where(scale > 0, scale, 1.0)

    def value(self, delta: np.ndarray, rows=slice(None)) -> np.ndarray:
        return (self.c[rows] * np.maximum(self.s[rows] + delta @ self.W, 0.0)).sum(axis=1)

    def linear_bound(self) -> tuple[np.ndarray, np.ndarray]:
        """A closed-form lower bound for every row, and the box vertex minimising its linear part."""
        low, high, c = self.low, self.high, self.c
        interval = np.where(c > 0, c * np.maximum(low, 0.0), c * np.maximum(high, 0.0)).sum(axis=1)
        unstable = (low < 0) & (high > 0)
        width = np.where(unstable, high - low, 1.0)
        chord = np.where(unstable, high / width, 0.0)
        lower_slope = (high >= -low).astype(float)
        slope = np.where(high <= 0, 0.0, np.where(low >= 0, 1.0, np.where(c < 0, chord, lower_slope)))
        offset = np.where(unstable & (c < 0), -chord * low, 0.0)  # the chord's intercept r l / (l - r)
        gradient = (c * slope) @ self.W.T
        linear = (c * (slope * self.s + offset)).sum(axis=1) - self.eps * np.abs(gradient).sum(axis=1)
        return np.maximum(interval, linear), -self.eps * np.sign(gradient)

    def solve(self, k: int, incumbent: np.ndarray, lower: float, threshold: float | None, deadline: float,
              lp_limit: float, gap: float) -> tuple[str, float, np.ndarray, float]:
        """LP relaxation with cuts, then branch and bound, for row k.

        Returns (the last stage run, a lower bound, the best delta found, its value).

        ``incumbent`` is the best delta attained so far and ``lower`` the best bound. The work stops
        when the bounds meet within ``gap`` * scale, when (with ``threshold``) they put the minimum
        on one side of the threshold, or at ``deadline`` or after ``lp_limit`` LP solves.
        """
        import highspy

        s, low, high, c, radius = self.s[k], self.low[k], self.high[k], self.c[k], self.radius
        sigma = self.scale[k]
        active = low >= 0
        unstable = (low < 0) & (high > 0)
        convex, concave = np.flatnonzero(unstable & (c > 0)), np.flatnonzero(unstable & (c < 0))
        d = self.W.shape[0]
        n_t, n_a = convex.size + concave.size, concave.size
        n_col = d + n_t + n_a
        # unit-box delta' = delta / eps; neuron j as z'_j = z_j / radius_j = s'_j + v_j^T delta', ||v_j||_1 = 1
        neurons = np.concatenate([convex, concave])
        v = (self.eps * self.W[:, neurons] / radius[neurons]).T
        s_unit = s[neurons] / radius[neurons]
        cost = np.zeros(n_col)
        cost[:d] = self.eps * (self.W[:, active] @ c[active])
        cost[d:d + n_t] = c[neurons] * radius[neurons]
        t_col, a_col = d + np.arange(n_t), d + n_t + np.arange(n_a)
        hull = _ReluHull(v[convex.size:], s_unit[convex.size:], t_col[convex.size:], a_col)
        # convex terms: t' >= z'; concave terms: the two big-M rows t' <= z' - l' (1 - a), t' <= r' a
        rows = _Rows()
        for i in range(convex.size):
            rows.add(np.append(np.arange(d), t_col[i]), np.append(-v[i], 1.0), s_unit[i], np.inf)
        everything = np.ones((n_a, d), dtype=bool)
        hull.add(rows, np.arange(n_a), everything)
        hull.add(rows, np.arange(n_a), ~everything)
        for i in range(n_a):  # z' <= r' a: a is the phase of the neuron, so a = 0 forces z' <= 0
            rows.add(np.append(np.arange(d), a_col[i]), np.append(v[convex.size + i], -(s_unit[convex.size + i] + 1.0)),
                     -np.inf, -s_unit[convex.size + i])

        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        # small programs, re-solved warm after every bound change: presolving the first solve only costs time
        highs.setOptionValue("presolve", "off")
        highs.passModel(n_col, rows.count, rows.nnz, 2, 1, float(c[active] @ s[active]) / sigma, cost / sigma,
                        np.concatenate([-np.ones(d), np.zeros(n_t + n_a)]),
                        np.concatenate([np.ones(d), s_unit + 1.0, np.ones(n_a)]),
                        *rows.arrays(), np.zeros(n_col, dtype=np.int32))
        best_delta, best_value = incumbent, float(self.value(incumbent[None], [k])[0])
        lp_solves = 0

        def run() -> bool:
            """Run HiGHS until the deadline at most, within the LP budget; whether it ran."""
            nonlocal best_delta, best_value, lp_solves
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or lp_solves >= lp_limit:
                return False
            lp_solves += 1
            highs.setOptionValue("time_limit", highs.getRunTime() + remaining)  # HiGHS' clock adds up over runs
            highs.run()
            info = highs.getInfo()
            if info.primal_solution_status == 2:  # feasible: score the point it found on the network itself
                col_value = np.asarray(highs.getSolution().col_value)
                delta = np.clip(col_value[:d], -1.0, 1.0) * self.eps
                candidate = float(self.value(delta[None], [k])[0])
                if candidate < best_value:
                    best_delta, best_value = delta, candidate
            return True

        def settled() -> bool:
            if best_value - lower <= gap * sigma:
                return True
            return threshold is not None and (lower > threshold or best_value <= threshold)

        for cut_round in range(CUT_ROUNDS + 1):  # LP relaxation, strengthened by cuts of each concave term's hull
            if not run() or highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return "lp", min(lower, best_value), best_delta, best_value
            lower = min(max(lower, highs.getInfo().objective_function_value * sigma), best_value)
            if settled() or n_a == 0:  # without concave terms the LP is the exact problem
                return "lp", lower, best_delta, best_value
            if cut_round == CUT_ROUNDS:
                break
            cuts = hull.cuts(np.asarray(highs.getSolution().col_value), d)
            if cuts.count == 0:
                break
            highs.addRows(cuts.count, *cuts.bounds(), cuts.nnz, *cuts.matrix())

        # branch and bound on the concave neurons' phases: a_i = 1 (z_i >= 0, t_i = z_i), a_i = 0 (z_i <= 0, t_i = 0)
        free = np.full(n_a, -1, dtype=np.int8)
        weight = np.abs(c[concave] * radius[concave])
        open_nodes = [(lower, 0, free, np.asarray(highs.getSolution().col_value))]
        closed = np.inf  # the smallest bound of a region dropped without finding its minimum
        created = 1
        while open_nodes and time.perf_counter() < deadline and lp_solves < lp_limit:
            bound, _, fixed, x = heapq.heappop(open_nodes)
            lower = max(lower, min(bound, closed, best_value))
            if settled():
                break
            z = s_unit[convex.size:] + hull.v @ x[:d]
            slack = np.where(fixed < 0, weight * (x[hull.t_col] - np.maximum(z, 0.0)), 0.0)
            if slack.sum() <= gap * sigma / 2:  # the relaxation is tight here: its minimiser, scored, is that close
                closed = min(closed, bound)
                continue
            branch = int(np.argmax(slack))
            for phase in (1, 0):
                child = fixed.copy()
                child[branch] = phase
                highs.changeColsBounds(n_a, a_col.astype(np.int32), np.where(child < 0, 0.0, child).astype(float),
                                       np.where(child < 0, 1.0, child).astype(float))
                status = highs.getModelStatus() if run() else None
                if status == highspy.HighsModelStatus.kInfeasible:
                    continue
                if status != highspy.HighsModelStatus.kOptimal:
                    closed = min(closed, bound)  # unresolved (deadline or numerical trouble): keep the parent's bound
                    continue
                child_bound = highs.getInfo().objective_function_value * sigma
                if child_bound >= best_value - gap * sigma or (threshold is not None and child_bound > threshold):
                    closed = min(closed, child_bound)
                    continue
                heapq.heappush(open_nodes, (child_bound, created, child, np.asarray(highs.getSolution().col_value)))
                created += 1
        unexplored = min(open_nodes)[0] if open_nodes else np.inf
        lower = max(lower, min(unexplored, closed, best_value))
        return "milp", min(lower, best_value), best_delta, best_value


def _attack_candidates(network: ReLUNetwork, objective: _Objective, X: np.ndarray, labels: np.ndarray,
                       bound_vertex: np.ndarray, restarts: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The best of: no perturbation, Theorem 4's vertex, the linear bound's vertex, PGD with restarts."""
    eps = objective.eps
    candidates = [np.zeros_like(X), -eps * np.sign(labels[:, None] * local_gradients(network, X)), bound_vertex]
    if eps > 0:
        adversarial = pgd_restarts(network, X, labels, eps, n_restarts=restarts, n_steps=steps, loss="hinge", seed=seed)
        candidates.append(np.clip(adversarial - X, -eps, eps))
    values = np.stack([objective.value(delta) for delta in candidates])
    best = values.argmin(axis=0)
    return np.stack(candidates)[best, np.arange(X.shape[0])], values[best, np.arange(X.shape[0])]


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not np.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def exact_robustness(model, X, y, eps: float, *, loss: str = "hinge", decide_only: bool = False,
                     time_limit: float = 10.0, lp_limit: int | None = None, gap: float = 1e-6, attack_restarts: int = 4,
                     attack_steps: int = 50, seed: int = 0, progress: bool = False) -> RobustnessResult:
    """The exact worst case of every row of X over its eps-box, by attack, bounds, LP and MILP.

    ``model`` is a :class:`~convexadv.network.ReLUNetwork` (or its torch twin); ``loss="hinge"``
    gives the worst margin min y yhat(x + delta) and the robust / not-robust decision,
    ``loss="squared"`` the worst error max |yhat(x + delta) - y| (see the module docstring).
    ``decide_only=True`` (hinge only) stops each point's work as soon as the sign of its worst
    margin is known, which is all robust accuracy needs; ``value`` is then an attained margin and
    ``lower`` a bound, not necessarily equal. ``time_limit`` (seconds) bounds each point's LP and
    MILP together; ``lp_limit`` (None: no limit), the number of LP solves each point may use there
    (relaxation, cut rounds and branch-and-bound nodes; 400-500 per second for a width-72 network on
    64 features on one core of the 2-core machine): a budget that stops the same points on every run
    and machine, where the time limit depends on the machine's speed and load. Points either limit stops are
    "undecided" and never counted robust. ``gap`` is the
    tolerance, relative to the point's output scale sum_j |alpha_j| max(r_j, 0), within which
    bounds count as equal. The attack stage runs :func:`convexadv.attacks.pgd_restarts` with
    ``attack_restarts`` starts of ``attack_steps`` steps from ``seed``; with no point stopped by
    the time limit (one stopped by ``lp_limit`` is fine), the result depends only on the inputs and the seed.
    """
    if isinstance(model, ReLUNetwork):
        network = model
    elif hasattr(model, "to_network"):
        network = model.to_network()
    else:
        raise TypeError(f"model must be a ReLUNetwork (or TorchReLUNetwork), got {type(model).__name__}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    X, y = validate_training_data(X, y, loss=loss)
    if X.shape[1] != network.n_features:
        raise ValueError(f"X has {X.shape[1]} features, the network expects {network.n_features}")
    eps = validate_eps(eps)
    if decide_only and loss != "hinge":
        raise ValueError("decide_only needs loss='hinge' (a squared-loss model has no robust / not-robust decision)")
    time_limit = _check_positive("time_limit", time_limit)
    lp_limit = np.inf if lp_limit is None else validate_count("lp_limit", lp_limit)
    gap = _check_positive("gap", gap)
    if gap >= 1:
        raise ValueError(f"gap must be < 1, got {gap}")
    attack_restarts = validate_count("attack_restarts", attack_restarts)
    attack_steps = validate_count("attack_steps", attack_steps)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    n = X.shape[0]
    # sides: the minimisations whose optima make up the answer (hinge: one; squared: max and min of yhat)
    side_labels = [y] if loss == "hinge" else [-np.ones(n), np.ones(n)]
    sides = []
    for labels in side_labels:
        objective = _Objective(network, X, labels, eps)
        lower, bound_vertex = objective.linear_bound()
        delta, value = _attack_candidates(network, objective, X, labels, bound_vertex, attack_restarts,
                                          attack_steps, seed)
        sides.append({"objective": objective, "lower": np.minimum(lower, value), "delta": delta, "value": value,
                      "stage": np.zeros(n, dtype=int)})

    def decided(k: int) -> tuple[bool, int]:
        """Whether point k is settled by the sides' current bounds, and by which stage (index into METHODS)."""
        if loss == "hinge":
            side = sides[0]
            value, lower, stage = side["value"][k], side["lower"][k], side["stage"][k]
            status, exact = _hinge_status(value, lower, gap * side["objective"].scale[k])
            if decide_only and status == "not_robust" and not exact:
                return True, stage  # an attained margin <= 0: by the attack unless a later stage found it
            return bool(exact or (decide_only and status != "undecided")), max(stage, 1)
        attained, bounds = _worst_errors(sides, y, k)
        winner = int(np.argmax(attained))
        tolerance = gap * sides[winner]["objective"].scale[k]
        return bool(bounds.max() - attained.max() <= tolerance), max(max(s["stage"][k] for s in sides), 1)

    method = np.full(n, "", dtype="<U6")
    seconds = np.zeros(n)
    pending = []
    for k in range(n):
        done, stage = decided(k)
        if done:
            method[k] = METHODS[stage]
        else:
            pending.append(k)
    for k in tqdm(pending, desc="exact robustness", disable=not progress):
        point_start = time.perf_counter()
        deadline = point_start + time_limit
        order = [0] if loss == "hinge" else np.argsort(-_worst_errors(sides, y, k)[1])
        for i in order:
            side = sides[i]
            if loss == "squared":
                attained, bounds = _worst_errors(sides, y, k)
                if bounds[i] <= attained.max():
                    continue  # this side cannot beat what the other side already attains
            threshold = gap * side["objective"].scale[k] if decide_only else None
            stage, side["lower"][k], side["delta"][k], side["value"][k] = side["objective"].solve(
                k, side["delta"][k], side["lower"][k], threshold, deadline, lp_limit, gap)
            side["stage"][k] = METHODS.index(stage)
        done, stage = decided(k)
        method[k] = METHODS[max(stage, max(s["stage"][k] for s in sides))]
        seconds[k] = time.perf_counter() - point_start
    return _result(loss, eps, sides, y, method, seconds, time.perf_counter() - start, decide_only, gap)


def binomial_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion: ``successes`` of ``n`` points (e.g. robust of a subset).

    For an accuracy measured on a random subset of a test split; exact robust accuracy on the
    subset is ``successes / n``.
    """
    from scipy.stats import norm

    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(successes, bool) or int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes must be an integer in [0, n = {n}], got {successes!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    z = float(norm.ppf(0.5 + confidence / 2))
    share = successes / n
    centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def _hinge_status(value, lower, tolerance):
    """("robust" / "not_robust" / "undecided", exact) from an attained margin and a lower bound.

    Margins within ``tolerance`` of 0 count as 0: robust needs lower > tolerance; not robust is an
    attained margin <= tolerance, or bounds that meet (exact) with lower <= tolerance.
    """
    exact = value - lower <= tolerance
    not_robust = (value <= tolerance) | exact
    return np.where(lower > tolerance, "robust", np.where(not_robust, "not_robust", "undecided")), exact


def _worst_errors(sides: list, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Attained errors and upper bounds of point k's two sides: max yhat - y and y - min yhat."""
    plus, minus = sides
    attained = np.array([-plus["value"][k] - y[k], y[k] - minus["value"][k]])
    bounds = np.array([-plus["lower"][k] - y[k], y[k] - minus["lower"][k]])
    return attained, bounds


def _result(loss, eps, sides, y, method, seconds, total, decide_only, gap) -> RobustnessResult:
    n = y.shape[0]
    if loss == "hinge":
        side = sides[0]
        value, lower = side["value"], side["lower"]
        upper, delta = value, side["delta"]
        status, exact = _hinge_status(value, lower, gap * side["objective"].scale)
    else:
        plus, minus = sides
        attained = np.stack([-plus["value"] - y, y - minus["value"]])
        bounds = np.stack([-plus["lower"] - y, y - minus["lower"]])
        winner = attained.argmax(axis=0)
        value = attained[winner, np.arange(n)]
        lower, upper = value, bounds.max(axis=0)
        delta = np.where(winner[:, None] == 0, plus["delta"], minus["delta"])
        scale = np.where(winner == 0, plus["objective"].scale, minus["objective"].scale)
        exact = upper - value <= gap * scale
        status = np.where(exact, "exact", "undecided")
    return RobustnessResult(loss=loss, eps=eps, value=value, lower=lower, upper=upper, delta=delta, exact=exact,
                            status=status.astype("<U10"), method=method, seconds=seconds, total_seconds=total,
                            decide_only=decide_only)
