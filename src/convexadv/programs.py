"""The convex training programs of the paper, independent of any solver.

Notation follows the paper. ``X`` is the n x d data matrix (with a trailing
column of ones when a bias is used), ``patterns`` is the n x P boolean matrix
whose column i is the diagonal of D_i, and the variables are V = [v_1 ... v_P]
and W = [w_1 ... w_P], both d x P.

* eq. (8)  (Algorithm 1, ``eps == 0``):
  min  l(sum_i D_i X (v_i - w_i), y) + beta * sum_i (||v_i||_2 + ||w_i||_2)
  s.t. (2 D_i - I) X v_i >= 0,  (2 D_i - I) X w_i >= 0
* eq. (15) (hinge, ``eps > 0``):
  min (1/n) sum_k (1 - y_k yhat_k + eps ||g_k||_1)_+ + beta * sum_i (...)
* eq. (18) (squared, ``eps > 0``), written without its auxiliary variables a, z:
  min (1/2) sum_k (|yhat_k - y_k| + eps ||g_k||_1)^2 + beta * sum_i (...)
  (the second-order cone constraints of (18) say exactly a >= ||z||^2 / 2
  with z_k >= |yhat_k - y_k| + eps ||g_k||_1)

with yhat_k = sum_i d_ik x_k^T (v_i - w_i), g_k = sum_i d_ik (v_i - w_i)
restricted to the perturbable coordinates, and the robust constraints (11):
  (2 D_i - I) X v_i >= eps ||v_i||_1,  (2 D_i - I) X w_i >= eps ||w_i||_1.
The hinge loss is averaged over n, the squared loss is summed, as in the paper.
A bias column is never perturbed, so it is left out of every l1 norm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

LOSSES = ("hinge", "squared")


class ConvexSolveError(RuntimeError):
    """A solver did not return an optimal, accurate solution."""


class DegenerateSolutionError(ConvexSolveError):
    """The program was solved, but its optimum is a degenerate network: zero width, zero output on
    every training point, one constant output (hinge loss), or no better than the zero network (see
    :func:`degenerate_reason`). ``solution`` holds the solution and
    ``reason`` says why the optimum is degenerate."""

    def __init__(self, message: str, *, reason: str, solution=None):
        super().__init__(message)
        self.reason = reason
        self.solution = solution


#: a network whose outputs on the training data all stay below this fraction of the targets'
#: scale (1 for the hinge loss's labels +-1, max |y| for the squared loss), or (hinge) vary by less,
#: or whose objective is not below the zero network's by this fraction, is degenerate
DEGENERATE_OUTPUT = 1e-6


def validate_training_data(X, y, *, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Check X (n x d) and y (n,) once at the boundary and return float64 copies."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    X = validate_inputs(X)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array, got shape {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} entries")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    if loss == "hinge" and not np.all(np.isin(y, (-1.0, 1.0))):
        bad = np.unique(y[~np.isin(y, (-1.0, 1.0))])[:5]
        raise ValueError(f"the hinge loss needs labels in {{-1, +1}}; y contains {bad.tolist()}")
    return X, y


def validate_inputs(X) -> np.ndarray:
    """Check a 2-D finite input matrix and return it as float64."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n samples x d features), got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have at least one row and one column, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    return X


def validate_eps(eps) -> float:
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    return eps


def with_bias_column(X: np.ndarray, bias: bool) -> np.ndarray:
    """Append the never-perturbed column of ones used for a bias (section VII-B)."""
    if not bias:
        return X
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


def perturbable_columns(n_columns: int, bias: bool) -> np.ndarray:
    """Boolean mask of the columns an adversary may perturb (all but the bias)."""
    mask = np.ones(n_columns, dtype=bool)
    if bias:
        mask[-1] = False
    return mask


@dataclass(frozen=True)
class ConvexProgram:
    """One instance of (8), (15) or (18): data, sampled patterns and parameters.

    ``X`` already holds the bias column when ``bias`` is true. Build it with
    :meth:`from_data`, which validates everything.
    """

    X: np.ndarray
    y: np.ndarray
    patterns: np.ndarray
    loss: str
    eps: float
    beta: float
    bias: bool = False

    @classmethod
    def from_data(cls, X, y, patterns, *, loss="hinge", eps=0.0, beta=1e-4, bias=False):
        X, y = validate_training_data(X, y, loss=loss)
        eps = validate_eps(eps)
        beta = float(beta)
        if not np.isfinite(beta) or beta <= 0:
            raise ValueError(f"beta must be a finite number > 0, got {beta}")
        patterns = np.asarray(patterns)
        if patterns.ndim != 2 or patterns.shape[0] != X.shape[0]:
            raise ValueError(
                f"patterns must be an (n, P) boolean array with n = {X.shape[0]}, got shape {patterns.shape}"
            )
        if patterns.shape[1] < 1:
            raise ValueError("patterns must hold at least one activation pattern")
        if patterns.dtype != bool:
            if not np.all(np.isin(patterns, (0, 1))):
                raise ValueError("patterns must be boolean (or 0/1)")
            patterns = patterns.astype(bool)
        Xb = with_bias_column(X, bias)
        return cls(X=Xb, y=y, patterns=patterns, loss=loss, eps=eps, beta=beta, bias=bool(bias))

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def n_patterns(self) -> int:
        return self.patterns.shape[1]

    @property
    def perturbable(self) -> np.ndarray:
        return perturbable_columns(self.d, self.bias)

    @property
    def equation(self) -> str:
        if self.eps == 0:
            return "(8)"
        return "(15)" if self.loss == "hinge" else "(18)"

    def with_patterns(self, patterns: np.ndarray) -> "ConvexProgram":
        """The same program over another (already validated) set of patterns."""
        return dataclasses.replace(self, patterns=patterns)

    # ----- evaluation of the program at a point (V, W) -----
    def predictions(self, V: np.ndarray, W: np.ndarray) -> np.ndarray:
        """yhat = sum_i D_i X (v_i - w_i), without forming D_i X."""
        return np.einsum("np,np->n", self.patterns, self.X @ (V - W))

    def robust_gradients(self, V: np.ndarray, W: np.ndarray) -> np.ndarray:
        """g_k = sum_i d_ik (v_i - w_i) on the perturbable coordinates, as an (n, d') array."""
        return self.patterns.astype(np.float64) @ (V - W)[self.perturbable].T

    def loss_terms(self, V: np.ndarray, W: np.ndarray) -> np.ndarray:
        """Per-sample robust loss: the summands of (15) / (18) (of (8) when eps = 0)."""
        margin = self.predictions(V, W)
        spread = self.eps * np.abs(self.robust_gradients(V, W)).sum(axis=1) if self.eps > 0 else 0.0
        if self.loss == "hinge":
            return np.maximum(0.0, 1.0 - self.y * margin + spread) / self.n
        return 0.5 * (np.abs(margin - self.y) + spread) ** 2

    def regularizer(self, V: np.ndarray, W: np.ndarray) -> float:
        return self.beta * float(np.linalg.norm(V, axis=0).sum() + np.linalg.norm(W, axis=0).sum())

    def objective(self, V: np.ndarray, W: np.ndarray) -> float:
        """The exact objective value of (8), (15) or (18) at (V, W)."""
        return float(self.loss_terms(V, W).sum()) + self.regularizer(V, W)

    def zero_network_objective(self) -> float:
        """f(0), the objective of U = 0 (1 for the hinge loss, ||y||^2 / 2 for the squared loss)."""
        zeros = np.zeros((self.d, self.n_patterns))
        return self.objective(zeros, zeros)

    def input_scale(self) -> str:
        """The inputs' sizes, for error messages on ill-conditioned solves: max |x| (a bias column of
        ones beside it), the features' spread around their means when it is below 1 % of their size
        (median over the columns of std / (|mean| + std): features such as 1000 + N(0, 1) hold their
        information in their last digits, which stalled 4 of 24 solves (all squared loss) in a scan where
        offsets of 10 and 100 stalled none) and, for the squared loss, max |y|."""
        parts = [f"max |x| = {np.abs(self.X).max():.3g}"]
        features = self.X[:, self.perturbable]
        spread = features.std(axis=0)
        size = np.abs(features.mean(axis=0)) + spread
        relative_spread = float(np.median(spread[size > 0] / size[size > 0])) if (size > 0).any() else 1.0
        if relative_spread < 0.01:
            parts.append(f"features that vary by only {100 * relative_spread:.2g} % of their size around their means")
        if self.bias:
            parts.append("a bias column of ones beside them")
        if self.loss == "squared":
            parts.append(f"max |y| = {np.abs(self.y).max():.3g}")
        return ", ".join(parts)

    def constraint_slack(self, U: np.ndarray) -> np.ndarray:
        """(2 D_i - I) X u_i - eps ||u_i||_1 for every sample and pattern, shape (n, P).

        Nonnegative everywhere exactly when U satisfies (11) (or the constraints
        of (8) when eps = 0)."""
        signs = np.where(self.patterns, 1.0, -1.0)
        l1 = np.abs(U[self.perturbable]).sum(axis=0)
        return signs * (self.X @ U) - self.eps * l1[None, :]

    def max_violation(self, V: np.ndarray, W: np.ndarray) -> float:
        """Largest violation of the (robust) constraints, 0 when feasible."""
        worst = min(self.constraint_slack(V).min(), self.constraint_slack(W).min())
        return float(max(0.0, -worst))


@dataclass
class ConvexSolution:
    """What every solver returns: the point, its exact objective and certificate."""

    V: np.ndarray
    W: np.ndarray
    objective: float
    status: str
    solver: str
    solve_time: float
    max_violation: float
    loss: str
    eps: float
    beta: float
    bias: bool
    patterns: np.ndarray
    lower_bound: float | None = None
    iterations: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def relative_gap(self) -> float | None:
        if self.lower_bound is None:
            return None
        return (self.objective - self.lower_bound) / max(abs(self.objective), 1e-12)

    def to_arrays(self) -> dict:
        """Flat dict of arrays and scalars suitable for ``np.savez``."""
        out = {k: getattr(self, k) for k in ("V", "W", "patterns")}
        for k in ("objective", "solve_time", "max_violation", "eps", "beta"):
            out[k] = np.float64(getattr(self, k))
        out["lower_bound"] = np.float64(np.nan if self.lower_bound is None else self.lower_bound)
        out["iterations"] = np.int64(-1 if self.iterations is None else self.iterations)
        out["bias"] = np.bool_(self.bias)
        for k in ("status", "solver", "loss"):
            out[k] = np.str_(getattr(self, k))
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "ConvexSolution":
        lb = float(arrays["lower_bound"])
        it = int(arrays["iterations"])
        return cls(
            V=np.asarray(arrays["V"]), W=np.asarray(arrays["W"]), patterns=np.asarray(arrays["patterns"]),
            objective=float(arrays["objective"]), solve_time=float(arrays["solve_time"]),
            max_violation=float(arrays["max_violation"]), eps=float(arrays["eps"]),
            beta=float(arrays["beta"]), bias=bool(arrays["bias"]), status=str(arrays["status"]),
            solver=str(arrays["solver"]), loss=str(arrays["loss"]),
            lower_bound=None if np.isnan(lb) else lb, iterations=None if it < 0 else it,
        )


def degenerate_reason(program: ConvexProgram, V: np.ndarray, W: np.ndarray) -> str | None:
    """Why the network of (V, W) is degenerate, or None when it is not.

    Degenerate, while the targets are not all zero:

    * every training output sum_i D_i X (v_i - w_i) is at most DEGENERATE_OUTPUT times the targets'
      scale (zero width included);
    * hinge loss: the outputs are the same on every training point up to that tolerance (a bias-only
      network: it ignores its input and predicts one class);
    * its objective is not below the zero network's by DEGENERATE_OUTPUT relatively (a solve of a
      program whose optimum is the zero network ends within its gap of f(0), on either side).

    The reason says which, then names the cause: with eps > 0 and no pattern whose robust cone (11)
    is non-trivial (and not all-inactive), no neuron can be robust (exact presolve); otherwise the
    regulariser beta (with the robust penalty eps ||g_k||_1 of (15) / (18)) outweighs what any neuron
    gains on the loss."""
    scale = 1.0 if program.loss == "hinge" else float(np.abs(program.y).max())
    if scale == 0:
        return None
    outputs = program.predictions(V, W)
    zero_objective = program.zero_network_objective()
    objective = program.objective(V, W)
    if np.abs(outputs).max() <= DEGENERATE_OUTPUT * scale:
        what = "zero output on every training point"
    elif program.loss == "hinge" and np.ptp(outputs) <= DEGENERATE_OUTPUT * scale:
        what = f"the same output {outputs.mean():.3g} on every training point (it ignores its input)"
    elif zero_objective - objective <= DEGENERATE_OUTPUT * abs(zero_objective):
        what = f"objective {objective:.8g}, no better than the zero network's {zero_objective:.8g}"
    else:
        return None
    if program.eps > 0:
        from .solvers.presolve import trivial_patterns  # the solvers build on this module

        usable = ~trivial_patterns(program) & program.patterns.any(axis=0)
        if not usable.any():
            return (f"{what}: every robust cone (11) of the {program.n_patterns} patterns is {{0}} (or "
                    f"all-inactive) at eps={program.eps:g}, so every neuron is forced to zero: sample the patterns "
                    "with sampler='robust', or use a smaller eps")
        return (f"{what}: {int(usable.sum())} patterns can carry a robust neuron, but at beta={program.beta:g} "
                f"and eps={program.eps:g} the regulariser and the robust penalty outweigh what any of them gains "
                "on the loss: use a smaller beta or eps")
    return (f"{what}: beta={program.beta:g} is too large: the regulariser outweighs what any neuron gains on the loss; "
            "use a smaller beta")
