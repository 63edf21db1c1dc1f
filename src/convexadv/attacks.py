"""l_inf attacks (FGSM and PGD (3)) and robustness evaluation, in the input's own units.

For hinge models the hinge is treated as the "leaky hinge" of section VII-D,
max(zeta (1 - y yhat), 1 - y yhat) with zeta -> 0+, so the ascent direction is
sgn(grad_x(-y yhat)) even where the hinge is flat:
    x~ = x - eps * sgn(y * sum_{j: x^T u_j >= 0} u_j alpha_j)          (FGSM)
    x~^{t+1} = Pi_X(x~^t - gamma * sgn(y * grad_x yhat(x~^t)))          (PGD)
For squared-loss models the direction is sgn(grad_x (1/2)(yhat - y)^2).
"""

from __future__ import annotations

import numpy as np
import torch

from .programs import validate_eps, validate_inputs
from .torch_model import as_module, to_tensor


def _ascent_direction(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    yhat = model(x)
    if loss == "hinge":
        objective = -(y * yhat).sum()  # the leaky hinge's gradient direction
    elif loss == "squared":
        objective = 0.5 * ((yhat - y) ** 2).sum()
    else:
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    (grad,) = torch.autograd.grad(objective, x)
    return torch.sign(grad)


def _prepare(model, X, y):
    module = as_module(model)
    X = validate_inputs(X)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} entries")
    x = to_tensor(X, module)
    return module, x, torch.as_tensor(y, dtype=x.dtype, device=x.device)


def fgsm(model, X, y, eps: float, *, loss: str = "hinge") -> np.ndarray:
    """Fast Gradient Sign Method: one step of size eps along the ascent sign."""
    eps = validate_eps(eps)
    module, x, yt = _prepare(model, X, y)
    return (x + eps * _ascent_direction(module, x, yt, loss)).detach().cpu().numpy()


def pgd(model, X, y, eps: float, *, step_size: float | None = None, n_steps: int = 40,
        loss: str = "hinge") -> np.ndarray:
    """Projected gradient ascent (3) on the l_inf ball of radius eps, started at x.

    ``step_size`` (gamma) defaults to eps / 30, the paper's choice.
    """
    eps = validate_eps(eps)
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    gamma = eps / 30 if step_size is None else float(step_size)
    if gamma <= 0 and eps > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    module, x, yt = _prepare(model, X, y)
    x_adv = x.clone()
    for _ in range(int(n_steps)):
        x_adv = x_adv + gamma * _ascent_direction(module, x_adv, yt, loss)
        x_adv = torch.clamp(x_adv, x - eps, x + eps).detach()  # Pi_X: clip each coordinate
    return x_adv.cpu().numpy()


def predict_scores(model, X) -> np.ndarray:
    module = as_module(model)
    with torch.no_grad():
        return module(to_tensor(validate_inputs(X), module)).cpu().numpy()


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
    module = as_module(model)
    X_fgsm = fgsm(module, X, y, eps, loss=loss)
    X_pgd = pgd(module, X, y, eps, step_size=step_size, n_steps=n_steps, loss=loss)
    metric, name = (accuracy, "accuracy") if loss == "hinge" else (squared_error, "mse")
    return {
        f"clean_{name}": metric(module, X, y),
        f"fgsm_{name}": metric(module, X_fgsm, y),
        f"pgd_{name}": metric(module, X_pgd, y),
    }
