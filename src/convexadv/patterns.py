"""Sampling the ReLU activation patterns D_i (Algorithms 1 and 2), their robust cones (11), and Theorem 2.

A pattern is the diagonal of D_i = diag([X a_i >= 0]), stored as a column of an
(n, P) boolean array.

Two samplers for eps > 0:

* ``"paper"``: Algorithm 2 as printed (Gaussian directions on randomly perturbed copies of X).
  On image data most of its patterns have a robust cone (11) equal to {0}: their neurons are
  forced to zero, and on some data sets every one is (the zero network).
* ``"robust"`` (the default for eps > 0): a seeded, bounded search for patterns whose cone (11)
  is proved non-trivial, preferring patterns that split the data (:func:`sample_patterns`).

A direction u proves its own pattern [X u >= 0] usable when min_k |x_k^T u| >= eps ||u~||_1
(u then lies in the cone); the margin LP of :mod:`.solvers.presolve` gives the best such margin
of a fixed pattern and a direction attaining it.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from .programs import perturbable_columns, validate_eps, validate_inputs, with_bias_column
from .solvers.presolve import MARGIN_SAFETY, ConeRows, decide_cones, sign_margin

SAMPLERS = ("paper", "robust")
#: how many candidate directions a_i are drawn per requested pattern before giving up (paper sampler)
_MAX_DRAWS_PER_PATTERN = 50
#: the robust sampler keeps a pattern only when a direction proves its margin above the presolve's
#: threshold eps (1 + MARGIN_SAFETY) by this much, in internal units (largest |x~_kj| = 1): more than
#: HiGHS's feasibility tolerance (1e-7), so the presolve's own LP keeps it with an interior direction
CLEARANCE = 1e-6
#: the robust search stops once it has CHOICE_FACTOR * n_patterns usable patterns to choose from, or
#: after LPS_PER_PATTERN * n_patterns + LP_BASE margin LPs, or when its candidates run out
CHOICE_FACTOR, LPS_PER_PATTERN, LP_BASE = 2, 3, 16
#: tilt directions of the search: principal directions of the data seen from the base direction,
#: and N_RANDOM_TILTS + n_patterns random ones; random bases tried when the all-active pattern is not usable
N_PRINCIPAL, N_RANDOM_TILTS, N_RANDOM_BASES = 8, 8, 8
#: Gaussian directions per requested pattern checked when the all-active pattern is not usable
RANDOM_DIRECTIONS = 8
#: local ascent from a random base: flips of its ASCENT_WIDTH limiting points, at most ASCENT_STEPS rounds
ASCENT_WIDTH, ASCENT_STEPS = 4, 8
#: a cut's margin LP starts from the flipped points and this many rows on each side of them
FIRST_ROWS = 32
#: cuts of a line whose middle direction is checked (no LP): the first GAP_CUTS and the GAP_CUTS widest gaps;
#: the LINE_LPS of them whose middle directions have the largest margins get their margin LPs
GAP_CUTS, LINE_LPS = 32, 2


class NoRobustPatternError(ValueError):
    """No activation pattern with a non-trivial robust cone (11) exists or was found at this eps.

    ``eps`` (input units), ``best_margin`` (the largest robust margin any direction reached, input
    units) and ``limiting_point`` (the index of the training point that limits it)."""

    def __init__(self, message: str, *, eps: float, best_margin: float, limiting_point: int):
        super().__init__(message)
        self.eps, self.best_margin, self.limiting_point = eps, best_margin, limiting_point


class PatternSummary(NamedTuple):
    """How many patterns can carry a neuron under (11): ``n_patterns``; ``n_usable``, those whose
    cone is not {0} and that are not all-inactive (D_i = 0 adds nothing); ``n_splitting``, the usable
    ones that are not all-active either (the neurons that make the network more than linear on X)."""

    n_patterns: int
    n_usable: int
    n_splitting: int


def sample_patterns(
    X,
    n_patterns: int,
    *,
    eps: float = 0.0,
    n_perturbations: int = 4,
    bias: bool = False,
    rng=None,
    sampler: str | None = None,
    y=None,
) -> np.ndarray:
    """Sample up to ``n_patterns`` distinct activation patterns of X; a boolean array (n, P).

    eps == 0: Algorithm 1, D_i = diag([X a_i >= 0]) with a_i ~ N(0, I_d), whatever ``sampler`` says.

    eps > 0, ``sampler="paper"``: Algorithm 2, each direction a_i also gives the patterns of
    ``n_perturbations - 1`` randomly perturbed copies X + eps * sgn(R_ij) (S = ``n_perturbations``
    in the paper; the bias column is never perturbed). Repeated patterns are discarded, keeping the
    order in which they were first drawn; if fewer than ``n_patterns`` distinct patterns turn up
    within 50 * n_patterns directions, those found are returned with a RuntimeWarning.

    eps > 0, ``sampler="robust"`` (the default for eps > 0): only patterns whose robust cone (11)
    is proved non-trivial (a direction with margin above eps; the presolve keeps every one) and
    that are not all-inactive. The search, in units where the largest |x~_kj| is 1 (so X and eps
    may be rescaled together without changing the result):

    1. without a bias, a point with ||x_k||_inf < eps makes every cone {0}: NoRobustPatternError
       names it. The all-active pattern's margin LP (with a bias its cone always holds the bias
       direction) gives the base direction. If it is not usable, 8 * n_patterns Gaussian
       directions (Algorithm 1's) prove their own patterns when their margins are large enough,
       and the 8 with the largest margins, improved by local ascent (margin LP, then flips of the
       points that limit it), give the base directions;
    2. from each base direction v, lines u = v + t w along tilt directions w (class-mean difference
       of ``y`` when given, 8 principal directions of the data seen from v, 8 + n_patterns Gaussian
       ones, each both ways). "Cut j" is the pattern once the first j points have crossed the hyperplane.
       The directions in the middle of the first 32 and of the 32 widest gaps between crossings
       prove their own patterns when their margins are large enough (wide gaps: splits along
       clusters); the two of those cuts with the largest such margins, then cuts j = 1, 2, 4, ...
       get their margin LPs (the LP's maximiser is the proof) until one fails, and bisection
       between the last success and the failure finds the largest split the line allows;
    3. every usable pattern also gives its complement (direction -u, the same margin).

    It stops after 2 * n_patterns usable patterns, 3 * n_patterns + 16 margin LPs, or when the
    lines run out, and keeps the all-active pattern and then the patterns that split the data
    most evenly (``n_perturbations`` is not used: a usable direction has the same pattern on every
    perturbed copy). Fewer than ``n_patterns`` found: those are returned with a RuntimeWarning;
    none: NoRobustPatternError with eps, the largest robust margin found and the point limiting it.

    ``y`` (optional, length n): training targets, used only by the robust sampler's class direction.
    The result is deterministic for a given ``rng`` (seed or Generator).
    """
    X = with_bias_column(validate_inputs(X), bias)
    eps = validate_eps(eps)
    if int(n_patterns) != n_patterns or n_patterns < 1:
        raise ValueError(f"n_patterns must be a positive integer, got {n_patterns!r}")
    n_patterns = int(n_patterns)
    if int(n_perturbations) != n_perturbations or n_perturbations < 1:
        raise ValueError(f"n_perturbations must be a positive integer, got {n_perturbations!r}")
    if sampler is None:
        sampler = "robust" if eps > 0 else "paper"
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if y is not None:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.shape[0] != X.shape[0] or not np.all(np.isfinite(y)):
            raise ValueError(f"y must hold {X.shape[0]} finite targets, got shape {y.shape}")
    rng = np.random.default_rng(rng)
    perturbable = perturbable_columns(X.shape[1], bias)
    if eps == 0 or sampler == "paper":
        return _paper_patterns(X, n_patterns, eps, n_perturbations, perturbable, rng)
    return _RobustSearch(ConeRows.from_inputs(X, perturbable), eps, n_patterns, rng).run(y)


def _paper_patterns(X: np.ndarray, n_patterns: int, eps: float, n_perturbations: int,
                    perturbable: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Algorithms 1 (eps = 0) and 2 as printed; see :func:`sample_patterns`."""
    copies = 1 if eps == 0 else int(n_perturbations)
    n, d = X.shape
    seen: set[bytes] = set()
    found: list[np.ndarray] = []
    max_directions = _MAX_DRAWS_PER_PATTERN * n_patterns
    drawn = 0
    while len(found) < n_patterns and drawn < max_directions:
        batch = min(max(2 * (n_patterns - len(found)), 16), max_directions - drawn)
        A = rng.standard_normal((d, batch))
        # candidates[j] holds the patterns of copy j (j = 0: clean data) for all directions
        candidates = [X @ A >= 0]
        for _ in range(copies - 1):
            noise = np.sign(rng.standard_normal((n, d))) * perturbable
            candidates.append((X + eps * noise) @ A >= 0)
        drawn += batch
        for i in range(batch):  # Algorithm 2's order: direction i, then its copies j
            for copy in candidates:
                key = np.packbits(copy[:, i]).tobytes()
                if key not in seen:
                    seen.add(key)
                    found.append(copy[:, i])
                    if len(found) == n_patterns:
                        break
            if len(found) == n_patterns:
                break
    if len(found) < n_patterns:
        warnings.warn(
            f"only {len(found)} distinct activation patterns found in {drawn} random directions "
            f"(asked for {n_patterns}); using those",
            RuntimeWarning,
            stacklevel=3,
        )
    return np.stack(found, axis=1)


class _RobustSearch:
    """The robust sampler of :func:`sample_patterns`, in the internal units of ``rows``."""

    def __init__(self, rows: ConeRows, eps: float, n_patterns: int, rng: np.random.Generator):
        self.rows, self.eps, self.n_patterns, self.rng = rows, eps, n_patterns, rng
        #: a proved margin at least this large makes a pattern usable (internal units)
        self.need = eps / rows.scale * (1 + MARGIN_SAFETY) + CLEARANCE
        self.lp_budget = LPS_PER_PATTERN * n_patterns + LP_BASE
        self.lps = 0
        self.tried: dict[bytes, tuple[float, np.ndarray]] = {}  # pattern -> (best margin proved, its direction)
        self.found: dict[bytes, np.ndarray] = {}  # usable patterns in the order found
        self.best: tuple[float, np.ndarray, np.ndarray] | None = None  # (margin, direction, pattern)

    @property
    def done(self) -> bool:
        return len(self.found) >= CHOICE_FACTOR * self.n_patterns or self.lps >= self.lp_budget

    def run(self, y: np.ndarray | None) -> np.ndarray:
        X = self.rows.X
        if not self.rows.bias:
            self._check_reach()
        bases = []
        all_active = self._try(np.ones(X.shape[0], dtype=bool))
        if all_active is not None:
            bases.append(all_active)
        else:  # no direction is positive on every point: start from Gaussian directions
            for pattern in self._random_directions():
                if self.done:
                    break
                base = self._ascend(pattern)
                if base is not None:
                    bases.append(base)
        for base in bases:
            for tilt in self._tilts(base, y):
                if self.done:
                    return self._select()
                self._line(base, tilt)
        return self._select()

    def _check_reach(self) -> None:
        """Without a bias, |x_k^T u| <= ||x~_k||_inf ||u||_1 bounds every margin (the dual point e_k)."""
        reach = np.abs(self.rows.X).max(axis=1)
        k = int(np.argmin(reach))
        if reach[k] < self.eps / self.rows.scale * (1 - MARGIN_SAFETY):
            value = reach[k] * self.rows.scale
            raise NoRobustPatternError(
                f"no activation pattern can satisfy the robust constraints (11) at eps={self.eps:g}: training "
                f"point {k} has ||x_k||_inf = {value:.4g} < eps, so |x_k^T u| < eps ||u||_1 for every u and every "
                "cone is {0} (the zero network). Use bias=True, a smaller eps, or remove that point",
                eps=self.eps, best_margin=value, limiting_point=k)

    def _record(self, pattern: np.ndarray, margin: float, direction: np.ndarray) -> None:
        """Remember a pattern's proved margin and direction; keep it and its complement (direction -u,
        the same margin) when the margin makes them usable and they are not all-inactive."""
        key = np.packbits(pattern).tobytes()
        self.tried[key] = (margin, direction)
        if self.best is None or margin > self.best[0]:
            self.best = (margin, direction, pattern)
        if margin >= self.need:
            self.tried[np.packbits(~pattern).tobytes()] = (margin, -direction)
            for member in (pattern, ~pattern):
                if member.any():  # an all-inactive pattern carries no neuron
                    self.found.setdefault(np.packbits(member).tobytes(), member)

    def _try(self, pattern: np.ndarray, first_rows: np.ndarray | None = None) -> np.ndarray | None:
        """The margin LP of one pattern (at most once per pattern, within the LP budget): its
        maximiser when that proves the pattern usable, else None."""
        key = np.packbits(pattern).tobytes()
        if key not in self.tried:  # (only margin LPs record margins below the threshold)
            if self.lps >= self.lp_budget:
                return None
            self.lps += 1
            _, direction, margin = sign_margin(self.rows, pattern, first_rows=first_rows, stop_below=self.need)
            self._record(pattern, margin, direction)
        margin, direction = self.tried[key]
        return direction if margin >= self.need else None

    def _random_directions(self) -> list[np.ndarray]:
        """RANDOM_DIRECTIONS * n_patterns Gaussian directions (Algorithm 1's), drawn in blocks of 64: each
        proves its own pattern usable when its margin is large enough (no LP). Returns the patterns of
        the N_RANDOM_BASES directions with the largest margins (distinct), best first."""
        X = self.rows.X
        margins, patterns = [], []
        for start in range(0, RANDOM_DIRECTIONS * self.n_patterns, 64):
            directions = self.rng.standard_normal((X.shape[1], 64))
            for margin, direction in zip(self.rows.margins(directions), directions.T):
                pattern = X @ direction >= 0
                if margin >= self.need:
                    self._record(pattern, margin, direction)
                margins.append(margin)
                patterns.append(pattern)
        chosen, keys = [], set()
        for i in np.argsort(-np.asarray(margins), kind="stable"):
            key = np.packbits(patterns[i]).tobytes()
            if key not in keys and len(chosen) < N_RANDOM_BASES:
                keys.add(key)
                chosen.append(patterns[i])
        return chosen

    def _ascend(self, pattern: np.ndarray) -> np.ndarray | None:
        """Local ascent from a pattern: its margin LP, then repeatedly the best of the patterns with
        one of its ASCENT_WIDTH limiting points (smallest s_k x_k^T u) flipped, while the margin grows
        (at most ASCENT_STEPS rounds). The first usable pattern's direction, or None."""
        for _ in range(ASCENT_STEPS + 1):
            proof = self._try(pattern)
            key = np.packbits(pattern).tobytes()
            if proof is not None or key not in self.tried or self.done:
                return proof
            margin, direction = self.tried[key]
            limiting = np.argsort(np.where(pattern, 1.0, -1.0) * (self.rows.X @ direction), kind="stable")
            best_margin, best_pattern = margin, None
            for k in limiting[:ASCENT_WIDTH]:
                flipped = pattern.copy()
                flipped[k] = ~flipped[k]
                proof = self._try(flipped)
                if proof is not None:
                    return proof
                flipped_margin = self.tried.get(np.packbits(flipped).tobytes(), (-np.inf, None))[0]
                if flipped_margin > best_margin:
                    best_margin, best_pattern = flipped_margin, flipped
            if best_pattern is None:  # no flip raises the margin: a local maximum
                return None
            pattern = best_pattern
        return None

    def _tilts(self, base: np.ndarray, y: np.ndarray | None):
        """Tilt directions w for lines from ``base`` (zero on the bias coordinate), each both ways:
        class-mean difference, principal directions and Gaussian directions of the data seen from
        the base, x~_k / |x_k^T base| (the order in which points cross a tilted hyperplane)."""
        perturbable = self.rows.perturbable
        seen = self.rows.X[:, perturbable] / np.abs(self.rows.X @ base)[:, None]
        centred = seen - seen.mean(axis=0)
        directions = []
        if y is not None and np.ptp(y) > 0:
            directions.append(centred.T @ (y - y.mean()))
        directions.extend(_principal_directions(centred, N_PRINCIPAL, self.rng))
        directions.extend(self.rng.standard_normal((N_RANDOM_TILTS + self.n_patterns, centred.shape[1])))
        for w in directions:
            norm = np.linalg.norm(w)
            if norm > 0:
                tilt = np.zeros(self.rows.X.shape[1])
                tilt[perturbable] = w / norm
                yield tilt
                yield -tilt

    def _line(self, base: np.ndarray, tilt: np.ndarray) -> None:
        """Patterns along u = base + t tilt, t > 0, the base pattern with its first j crossing points
        flipped ("cut j"): first the directions in the middle of some gaps between crossings (their own
        margins, no LP), the margin LPs of the LINE_LPS most promising of those cuts, then the margin
        LPs of cuts j = 1, 2, 4, ... until one is not usable, and bisection between the last usable j
        and that one."""
        values, slopes = self.rows.X @ base, self.rows.X @ tilt
        start = values >= 0
        crossing = np.flatnonzero(np.where(start, slopes < 0, slopes > 0))
        order = crossing[np.argsort(-values[crossing] / slopes[crossing], kind="stable")]
        limit = min(order.size, self.rows.X.shape[0] // 2)
        nearest = np.argsort(np.abs(values), kind="stable")[:FIRST_ROWS]
        crossings = -values[order] / slopes[order]  # ascending: point order[j] crosses at t = crossings[j]
        following = np.append(crossings[1:], np.inf)
        # the direction in the middle of a gap between crossings (in 1 / t, where the crossing points
        # are evenly spaced when the base is the bias) proves its own pattern usable when its margin
        # is large enough (no LP): cuts j <= GAP_CUTS, and the GAP_CUTS widest gaps
        widest = 1 + np.argsort(-(following - crossings)[:limit], kind="stable")[:GAP_CUTS]
        cuts = np.union1d(np.arange(1, min(limit, GAP_CUTS) + 1), widest).astype(int)
        middles = 2 / (1 / crossings[cuts - 1] + 1 / following[cuts - 1])
        directions = base[:, None] + tilt[:, None] * middles[None, :]
        margins = self.rows.margins(directions)
        for margin, direction in zip(margins, directions.T):
            if margin >= self.need:
                pattern = self.rows.X @ direction >= 0  # its own pattern (cut j, unless crossings tie)
                if margin > self.tried.get(np.packbits(pattern).tobytes(), (-np.inf,))[0]:
                    self._record(pattern, margin, direction)

        def usable(j: int) -> bool:
            pattern = start.copy()
            pattern[order[:j]] = ~pattern[order[:j]]
            first = np.union1d(nearest, order[max(0, j - FIRST_ROWS): j + FIRST_ROWS])
            return self._try(pattern, first) is not None

        # the margin LPs of the LINE_LPS cuts whose middle directions came closest
        for j in cuts[np.argsort(-margins, kind="stable")][:LINE_LPS]:
            if self.done:
                return
            usable(j)
        # then cuts j = 1, 2, 4, ... and bisection
        good, bad, j = 0, limit + 1, 1
        while j <= limit and not self.done:  # exponential search: at most log2(n) + 1 steps
            if not usable(j):
                bad = j
                break
            good, j = j, 2 * j
        while bad - good > 1 and bad <= limit and not self.done:  # bisection: at most log2(n) steps
            middle = (good + bad) // 2
            good, bad = (middle, bad) if usable(middle) else (good, middle)

    def _select(self) -> np.ndarray:
        """The all-active pattern first, then the patterns that split the data most evenly (ties: in
        the order found), returned in the order found; a warning when fewer than asked, an error if none."""
        patterns = list(self.found.values())
        if not patterns:
            margin, direction, pattern = self.best
            limiting = int(np.argmin(np.where(pattern, 1.0, -1.0) * (self.rows.X @ direction)))
            raise NoRobustPatternError(
                f"no activation pattern with a non-trivial robust cone (11) found at eps={self.eps:g} "
                f"({self.lps} margin LPs): the largest robust margin reached is {margin * self.rows.scale:.4g}, "
                f"limited by training point {limiting}; every neuron would be forced to zero. "
                "Use a smaller eps or bias=True",
                eps=self.eps, best_margin=margin * self.rows.scale, limiting_point=limiting)
        n = self.rows.X.shape[0]
        active = [int(p.sum()) for p in patterns]
        priority = sorted(range(len(patterns)), key=lambda i: (active[i] < n, -min(active[i], n - active[i]), i))
        chosen = sorted(priority[: self.n_patterns])
        if len(chosen) < self.n_patterns:
            warnings.warn(
                f"only {len(chosen)} activation patterns with a non-trivial robust cone (11) found at "
                f"eps={self.eps:g} in {self.lps} margin LPs (asked for {self.n_patterns}); using those",
                RuntimeWarning,
                stacklevel=4,
            )
        return np.stack([patterns[i] for i in chosen], axis=1)


def _principal_directions(M: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The top-k right singular vectors of M (rows), by a seeded randomized range finder: O(n d k)."""
    k = min(k, *M.shape)
    Q = np.linalg.qr(M @ rng.standard_normal((M.shape[1], k + 4)))[0]
    for _ in range(2):  # subspace iterations
        Q = np.linalg.qr(M @ (M.T @ Q))[0]
    return np.linalg.svd(Q.T @ M, full_matrices=False)[2][:k]


def pattern_summary(X, patterns, *, eps: float, bias: bool = False, deadline: float | None = None
                    ) -> PatternSummary:
    """Count the patterns (n, P) of X that can carry a neuron under (11) at ``eps`` (see
    :class:`PatternSummary`), with the exact presolve of :mod:`.solvers.presolve`; ``bias`` as in
    :func:`sample_patterns`, ``deadline`` as in :func:`.solvers.presolve.cone_margins`."""
    X = with_bias_column(validate_inputs(X), bias)
    eps = validate_eps(eps)
    patterns = np.asarray(patterns)
    if patterns.ndim != 2 or patterns.shape[0] != X.shape[0] or not np.all(np.isin(patterns, (0, 1))):
        raise ValueError(f"patterns must be an (n, P) boolean array with n = {X.shape[0]}, got shape {patterns.shape}")
    patterns = patterns.astype(bool)
    trivial = np.zeros(patterns.shape[1], dtype=bool)
    if eps > 0:
        rows = ConeRows.from_inputs(X, perturbable_columns(X.shape[1], bias))
        trivial = decide_cones(rows, patterns, eps / rows.scale, deadline=deadline)[0]
    usable = ~trivial & patterns.any(axis=0)
    return PatternSummary(n_patterns=patterns.shape[1], n_usable=int(usable.sum()),
                          n_splitting=int((usable & ~patterns.all(axis=0)).sum()))


def patterns_needed(n: int, psi: float, xi: float) -> int:
    """Smallest P_s with P_s >= (n + 1) / (psi * xi) - 1 (Theorem 2)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    for name, value in (("psi", psi), ("xi", xi)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return max(1, math.ceil((n + 1) / (psi * xi) - 1 - 1e-12))


def confidence_level(n: int, n_patterns: int) -> float:
    """The product psi * xi that Theorem 2 guarantees for P_s patterns: (n + 1) / (P_s + 1).

    For n = 40 and P_s = 128 this is 0.318, the value quoted in section VII-A.
    """
    if n < 1 or n_patterns < 1:
        raise ValueError(f"n and n_patterns must be >= 1, got n={n}, n_patterns={n_patterns}")
    return (n + 1) / (n_patterns + 1)
