"""l_inf attacks (FGSM and PGD (3)) and robustness evaluation, in the input's own units.

For hinge models the hinge is treated as the "leaky hinge" of section VII-D,
max(zeta (1 - y yhat), 1 - y yhat) with zeta -> 0+, so the ascent direction is
sgn(grad_x(-y yhat)) even where the hinge is flat:
    x~ = x - eps * sgn(y * sum_{j: x^T u_j >= 0} u_j alpha_j)          (FGSM)
    x~^{t+1} = Pi_X(x~^t - gamma * sgn(y * grad_x yhat(x~^t)))          (PGD)
For squared-loss models the direction is sgn(grad_x (1/2)(yhat - y)^2).

The attacks run in numpy (float64). A one-hidden-layer ReLU network (:class:`~convexadv.network.ReLUNetwork`,
or its torch twin, e.g. during GD training) is differentiated in closed form, the gradient above;
any other torch module (n, d) -> (n,) by torch's autograd. Only the latter imports torch, so the
pipeline's evaluation jobs do not pay torch's import (3-4 s per job).

Stronger attacks beside the paper's: :func:`pgd_restarts` (the margin y * yhat minimised
from random starts with decreasing step sizes, best point kept) and, in :mod:`convexadv.torchattacks_adapter`,
AutoAttack (APGD-CE, APGD-T, FAB-T and Square of the ``torchattacks`` package).
The exact worst case is :func:`convexadv.verify.exact_robustness`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .network import ReLUNetwork, as_relu_network, outputs_and_gradients_function
from .programs import validate_eps, validate_inputs

class _Model(NamedTuple):
    """A model on float64 arrays X (n, d): its outputs yhat (n,), and those with their input gradients (n, d)."""

    outputs: Callable[[np.ndarray], np.ndarray]
    outputs_and_gradients: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _differentiable(model) -> _Model:
    """``model`` as a :class:`_Model`: in closed form for a :class:`ReLUNetwork` or anything with
    ``to_network()`` (its torch twin), by torch (autograd for the gradients) for any other torch module,
    evaluated in its own dtype and device."""
    if isinstance(model, ReLUNetwork) or callable(getattr(model, "to_network", None)):
        network = as_relu_network(model)
        return _Model(network.forward, outputs_and_gradients_function(network))
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a ReLUNetwork or torch.nn.Module, got {type(model).__name__}")
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float64
    device = param.device if param is not None else "cpu"

    def outputs(X):
        with torch.no_grad():
            return model(torch.as_tensor(X, dtype=dtype, device=device)).double().cpu().numpy()

    def autograd(X):
        x = torch.as_tensor(X, dtype=dtype, device=device).requires_grad_(True)
        yhat = model(x)
        (grad,) = torch.autograd.grad(yhat.sum(), x)
        return yhat.detach().double().cpu().numpy(), grad.double().cpu().numpy()

    return _Model(outputs, autograd)


def _ascent_sign(model: _Model, x: np.ndarray, y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """The ascent sign of the (leaky hinge or squared) loss at x, and yhat(x)."""
    yhat, grad = model.outputs_and_gradients(x)
    if loss == "hinge":
        weight = -y  # the leaky hinge's gradient direction: that of -y yhat
    elif loss == "squared":
        weight = yhat - y
    else:
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    return np.sign(weight[:, None] * grad), yhat


def _prepare(model, X, y) -> tuple[_Model, np.ndarray, np.ndarray]:
    X = validate_inputs(X)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} entries")
    return _differentiable(model), X, y


def validate_count(name: str, value) -> int:
    """A positive integer count (steps, restarts, queries), or a ValueError naming it."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def fgsm(model, X, y, eps: float, *, loss: str = "hinge") -> np.ndarray:
    """Fast Gradient Sign Method: one step of size eps along the ascent sign."""
    eps = validate_eps(eps)
    differentiable, x, y = _prepare(model, X, y)
    return x + eps * _ascent_sign(differentiable, x, y, loss)[0]


def pgd(model, X, y, eps: float, *, step_size: float | None = None, n_steps: int = 40,
        loss: str = "hinge") -> np.ndarray:
    """Projected gradient ascent (3) on the l_inf ball of radius eps, started at x.

    ``step_size`` (gamma) defaults to eps / 30, the paper's choice.
    """
    eps = validate_eps(eps)
    n_steps = validate_count("n_steps", n_steps)
    gamma = eps / 30 if step_size is None else float(step_size)
    if gamma <= 0 and eps > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    differentiable, x, y = _prepare(model, X, y)
    x_adv, lower, upper = x.copy(), x - eps, x + eps
    for _ in range(n_steps):
        step = x_adv + gamma * _ascent_sign(differentiable, x_adv, y, loss)[0]
        x_adv = np.minimum(np.maximum(step, lower), upper)  # Pi_X (np.clip's result, at half its overhead)
    return x_adv


def _attack_score(yhat: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """What an attack minimises: the margin y * yhat (hinge) or -|yhat - y| (squared)."""
    return y * yhat if loss == "hinge" else -np.abs(yhat - y)


def pgd_restarts(model, X, y, eps: float, *, n_restarts: int = 10, n_steps: int = 100,
                 loss: str = "hinge", seed: int = 0) -> np.ndarray:
    """PGD (3) from ``n_restarts`` starts, keeping each point's best iterate over all steps and starts.

    Hinge models: minimises the margin y * yhat (the leaky hinge's direction, so it keeps moving
    where the hinge is flat); squared-loss models: maximises |yhat - y|. The first start is x itself,
    the others are uniform in the eps-box, drawn from ``seed`` (numpy's default generator). Step t of
    ``n_steps`` is a sign step of size 2 eps * 200^(-t / (n_steps - 1)), decreasing geometrically
    from 2 eps (vertex to vertex) to eps / 100, followed by the projection Pi_X onto the box; every
    iterate is scored, so the result is never worse than the clean point or any earlier iterate.
    Returns the adversarial inputs (n, d) in the input's own units.
    """
    eps = validate_eps(eps)
    n_restarts, n_steps = validate_count("n_restarts", n_restarts), validate_count("n_steps", n_steps)
    if loss not in ("hinge", "squared"):
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    differentiable, x, y = _prepare(model, X, y)
    n = x.shape[0]
    best = x.copy()
    best_score = _attack_score(differentiable.outputs(x), y, loss)
    if eps == 0:
        return best
    noise = 2 * np.random.default_rng(seed).random((n_restarts - 1, *x.shape)) - 1
    x_adv = np.concatenate([x[None], x[None] + eps * noise]).reshape(n_restarts * n, -1)
    lower, upper = np.tile(x - eps, (n_restarts, 1)), np.tile(x + eps, (n_restarts, 1))
    ys = np.tile(y, n_restarts)
    steps = 2 * eps * 200.0 ** (-np.arange(n_steps) / max(n_steps - 1, 1))

    def keep_best(points: np.ndarray, yhat: np.ndarray) -> None:
        scores = _attack_score(yhat, ys, loss).reshape(n_restarts, n)
        restart = scores.argmin(axis=0)
        better = scores[restart, np.arange(n)] < best_score
        best[better] = points.reshape(n_restarts, n, -1)[restart[better], better]
        best_score[better] = scores[restart[better], better]

    for gamma in steps:
        direction, yhat = _ascent_sign(differentiable, x_adv, ys, loss)
        keep_best(x_adv, yhat)
        x_adv = np.minimum(np.maximum(x_adv + gamma * direction, lower), upper)
    keep_best(x_adv, differentiable.outputs(x_adv))
    return best


def predict_scores(model, X) -> np.ndarray:
    """The outputs yhat (n,) of ``model`` at the rows of X, float64."""
    return _differentiable(model).outputs(validate_inputs(X))


def accuracy(model, X, y) -> float:
    """Fraction of samples with y * yhat > 0 (labels in {-1, +1})."""
    return float(np.mean(np.asarray(y) * predict_scores(model, X) > 0))


def squared_error(model, X, y) -> float:
    """Mean squared error (yhat - y)^2."""
    return float(np.mean((predict_scores(model, X) - np.asarray(y)) ** 2))


def evaluate_robustness(model, X, y, eps: float, *, step_size: float | None = None, n_steps: int = 40,
                        loss: str = "hinge") -> dict:
    """Clean, FGSM and PGD performance of ``model`` at radius eps.

    Hinge models report accuracies (``clean_accuracy``, ``fgsm_accuracy``,
    ``pgd_accuracy``); squared-loss models report mean squared errors
    (``clean_mse``, ``fgsm_mse``, ``pgd_mse``).
    """
    X_fgsm = fgsm(model, X, y, eps, loss=loss)
    X_pgd = pgd(model, X, y, eps, step_size=step_size, n_steps=n_steps, loss=loss)
    metric, name = (accuracy, "accuracy") if loss == "hinge" else (squared_error, "mse")
    return {
        f"clean_{name}": metric(model, X, y),
        f"fgsm_{name}": metric(model, X_fgsm, y),
        f"pgd_{name}": metric(model, X_pgd, y),
    }
