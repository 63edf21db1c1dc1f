"""One-hidden-layer ReLU networks: recovery by (7) and the exact robust loss of Theorem 4.

The network is yhat(x) = sum_j (x^T u_j)_+ alpha_j, where x carries a trailing 1
when the network has a bias (the bias input is never perturbed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .io import atomic_savez
from .programs import (ConvexSolution, DegenerateSolutionError, perturbable_columns, validate_eps, validate_inputs,
                       with_bias_column)


@dataclass(frozen=True)
class ReLUNetwork:
    """Weights U (d x m, d counting the bias input) and output weights alpha (m,)."""

    U: np.ndarray
    alpha: np.ndarray
    bias: bool = False

    def __post_init__(self):
        U = np.asarray(self.U, dtype=np.float64)
        alpha = np.asarray(self.alpha, dtype=np.float64).reshape(-1)
        if U.ndim != 2 or U.shape[1] != alpha.shape[0]:
            raise ValueError(f"U must be (d, m) with m = len(alpha) = {alpha.shape[0]}, got shape {U.shape}")
        object.__setattr__(self, "U", U)
        object.__setattr__(self, "alpha", alpha)

    @property
    def width(self) -> int:
        return self.alpha.shape[0]

    @property
    def n_features(self) -> int:
        """Number of raw input features (without the bias input)."""
        return self.U.shape[0] - int(self.bias)

    def _inputs(self, X) -> np.ndarray:
        return with_bias_column(self._check_features(validate_inputs(X)), self.bias)

    def _check_features(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, the network expects {self.n_features}")
        return X

    def forward(self, X) -> np.ndarray:
        """sum_j (X u_j)_+ alpha_j for the rows of X (raw features, no bias column)."""
        return np.maximum(self._inputs(X) @ self.U, 0.0) @ self.alpha

    __call__ = forward

    def regularizer(self, beta: float) -> float:
        """(beta / 2) sum_j (||u_j||_2^2 + alpha_j^2), the regulariser of (4), (13), (16)."""
        return 0.5 * beta * float((self.U**2).sum() + (self.alpha**2).sum())

    def to_torch(self, dtype=None):
        """An equivalent ``torch.nn.Module`` mapping raw inputs (n, d) to outputs (n,)."""
        from .torch_model import TorchReLUNetwork

        return TorchReLUNetwork.from_network(self, dtype=dtype)

    def save(self, path) -> None:
        atomic_savez(path, U=self.U, alpha=self.alpha, bias=np.bool_(self.bias))

    @classmethod
    def load(cls, path) -> "ReLUNetwork":
        if not os.path.exists(path):
            raise FileNotFoundError(f"no saved network at {path}")
        with np.load(path) as data:
            return cls(U=data["U"], alpha=data["alpha"], bias=bool(data["bias"]))


def recover_network(solution: ConvexSolution, *, tol: float = 1e-8) -> ReLUNetwork:
    """Recover (u_j, alpha_j) from (v_i, w_i) by (7).

    Each v_i gives the neuron (v_i / sqrt||v_i||, sqrt||v_i||) and each w_i gives
    (w_i / sqrt||w_i||, -sqrt||w_i||). Columns whose norm is at most ``tol``
    times the largest column norm are dropped. A solution whose columns are all zero
    gives no network: DegenerateSolutionError (zero width).
    """
    columns = np.hstack([solution.V, solution.W])
    signs = np.concatenate([np.ones(solution.V.shape[1]), -np.ones(solution.W.shape[1])])
    norms = np.linalg.norm(columns, axis=0)
    if not norms.max(initial=0.0) > 0:
        reason = "every column of V and W is zero: the recovered network would have zero width"
        raise DegenerateSolutionError(f"cannot recover a network by (7): {reason}", reason=reason, solution=solution)
    keep = norms > tol * norms.max()
    roots = np.sqrt(norms[keep])
    return ReLUNetwork(U=columns[:, keep] / roots, alpha=signs[keep] * roots, bias=solution.bias)


def as_relu_network(network) -> ReLUNetwork:
    """The :class:`ReLUNetwork` itself, or the one a torch twin (:meth:`ReLUNetwork.to_torch`) came from:
    Theorem 4's closed forms read the weights U, alpha. Anything else is a TypeError naming its type."""
    if isinstance(network, ReLUNetwork):
        return network
    if callable(getattr(network, "to_network", None)):
        return network.to_network()
    raise TypeError(f"expected a ReLUNetwork (or its torch twin from ReLUNetwork.to_torch()), got "
                    f"{type(network).__name__}: Theorem 4's closed form needs the weights of a one-hidden-layer "
                    "ReLU network; for other models use exact_robustness or the attacks")


def certified_linear_region(network: ReLUNetwork, X, eps: float) -> np.ndarray:
    """Which rows of X keep every neuron's activation constant on their eps-box.

    Neuron j is constant on the box around x when |x^T u_j| >= eps ||u_j||_1
    (l1 over the perturbable inputs); then the network is linear on the box.
    """
    eps = validate_eps(eps)
    network = as_relu_network(network)
    Xb = network._inputs(X)
    l1 = np.abs(network.U[perturbable_columns(network.U.shape[0], network.bias)]).sum(axis=0)
    return np.all(np.abs(Xb @ network.U) >= eps * l1[None, :], axis=1)


def outputs_and_gradients(network: ReLUNetwork, X) -> tuple[np.ndarray, np.ndarray]:
    """yhat(x_k) and g_k = sum_{j: x_k^T u_j >= 0} alpha_j u_j over the perturbable inputs (the gradient
    of yhat at x_k wherever it exists), shapes (n,) and (n, d), from one product X U."""
    network = as_relu_network(network)
    return outputs_and_gradients_function(network)(validate_inputs(X))


def outputs_and_gradients_function(network: ReLUNetwork) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """:func:`outputs_and_gradients` as a function of inputs already checked (float64, finite, raw features;
    only their number is checked again), with the network's weights prepared once: for loops that call it
    on arrays they made themselves, e.g. each step of an attack (no finiteness scan and no copy of the
    weights per call; the same floating-point operations, so the same results to the bit)."""
    U, alpha, bias = network.U, network.alpha, network.bias
    perturbable_transposed = U[perturbable_columns(U.shape[0], bias)].T

    def evaluate(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H = with_bias_column(network._check_features(X), bias) @ U
        return np.maximum(H, 0.0) @ alpha, ((H >= 0) * alpha[None, :]) @ perturbable_transposed

    return evaluate


def local_gradients(network: ReLUNetwork, X) -> np.ndarray:
    """g_k = sum_{j: x_k^T u_j >= 0} alpha_j u_j over the perturbable inputs, shape (n, d)."""
    return outputs_and_gradients(network, X)[1]


def worst_case_perturbation(network: ReLUNetwork, X, y, eps: float, *, loss: str = "hinge") -> np.ndarray:
    """Theorem 4's closed-form worst case Delta* on the eps-box of each row of X.

    Hinge: Delta*_k = -eps * sgn(y_k g_k). Squared: Delta*_k = eps * sgn((yhat_k - y_k) g_k),
    which moves yhat_k away from y_k (the maximiser of (17) for a network linear on the box).
    Exact wherever :func:`certified_linear_region` holds.
    """
    eps = validate_eps(eps)
    y = np.asarray(y, dtype=np.float64)
    g = local_gradients(network, X)
    if loss == "hinge":
        direction = -np.sign(y[:, None] * g)
    elif loss == "squared":
        residual = network.forward(X) - y
        direction = np.sign(np.where(residual >= 0, 1.0, -1.0)[:, None] * g)
    else:
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    return eps * direction


def robust_loss_terms(network: ReLUNetwork, X, y, eps: float, *, loss: str = "hinge") -> tuple[np.ndarray, np.ndarray]:
    """Exact worst-case loss of each sample over its eps-box (Theorem 4 / (15), (18)).

    Returns (loss, certified): hinge terms (1 - y_k yhat_k + eps ||g_k||_1)_+ or
    squared terms (1/2)(|yhat_k - y_k| + eps ||g_k||_1)^2, and the boolean mask of
    samples where the value is exact because the network is linear on the box.
    Elsewhere the value is the linearised estimate, not a bound.
    """
    y = np.asarray(y, dtype=np.float64)
    network = as_relu_network(network)
    yhat = network.forward(X)
    spread = validate_eps(eps) * np.abs(local_gradients(network, X)).sum(axis=1)
    if loss == "hinge":
        terms = np.maximum(0.0, 1.0 - y * yhat + spread)
    elif loss == "squared":
        terms = 0.5 * (np.abs(yhat - y) + spread) ** 2
    else:
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    return terms, certified_linear_region(network, X, eps)
