"""Back-propagation baselines GD-STD, GD-FGSM and GD-PGD (section VII).

The same architecture and the same regularised objective as the convex
programs: (13) for the hinge loss, (16) for the squared loss, with the inner
maximisation replaced by an FGSM or PGD attack (or by nothing, GD-STD).
The hinge data term is averaged over the mini-batch, as (13) averages over n;
the squared data term is summed and rescaled by n / batch size so that one
epoch's gradients estimate those of (16).

Written in numpy, back-propagation spelled out (:func:`objective_gradients`): a one-hidden-layer
network's gradients are two products, and the jobs that train a baseline then do not import torch
(3 s of each of the pipeline's 42 training jobs, most of a GD-STD job).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .attacks import fgsm, pgd
from .network import ReLUNetwork
from .programs import validate_eps, validate_training_data, with_bias_column
from .threads import numpy_blas_single_threaded

METHODS = ("std", "fgsm", "pgd")


def objective_gradients(network: ReLUNetwork, X: np.ndarray, y: np.ndarray, loss: str, n_total: int,
                        beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradients in U and alpha of the mini-batch objective: the data term (hinge averaged over the batch,
    or squared summed and rescaled by n_total / batch size) plus the regulariser (beta / 2) (||U||^2 +
    ||alpha||^2) of (13) / (16). At the kinks the gradient is torch autograd's: the ReLU's flat side,
    the hinge's sloped one."""
    inputs = with_bias_column(X, network.bias)
    pre_activations = inputs @ network.U
    active = pre_activations > 0
    hidden = np.where(active, pre_activations, 0.0)
    yhat = hidden @ network.alpha
    if loss == "hinge":
        d_yhat = np.where(y * yhat <= 1, -y, 0.0) / y.shape[0]
    else:
        d_yhat = (yhat - y) * (n_total / y.shape[0])
    d_alpha = hidden.T @ d_yhat + beta * network.alpha
    d_U = inputs.T @ (active * (d_yhat[:, None] * network.alpha[None, :])) + beta * network.U
    return d_U, d_alpha


class _Adam:
    """Adam (Kingma and Ba, 2015) with PyTorch's defaults (betas (0.9, 0.999), eps 1e-8, no weight decay,
    no AMSGrad) on numpy arrays, updated in place: torch.optim.Adam's update, equal to it up to rounding (tested)."""

    def __init__(self, params: list[np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = params
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.steps = 0
        self.first_moments = [np.zeros_like(p) for p in params]
        self.second_moments = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.steps += 1
        step_size = self.lr / (1 - self.beta1 ** self.steps)
        second_correction = (1 - self.beta2 ** self.steps) ** 0.5
        for param, grad, first, second in zip(self.params, grads, self.first_moments, self.second_moments):
            first += (1 - self.beta1) * (grad - first)
            second *= self.beta2
            second += (1 - self.beta2) * grad * grad
            param -= step_size * first / (np.sqrt(second) / second_correction + self.eps)


@numpy_blas_single_threaded
def train_gd(
    X,
    y,
    *,
    method: str = "std",
    loss: str = "hinge",
    width: int = 72,
    beta: float = 1e-4,
    eps: float = 0.0,
    bias: bool = False,
    epochs: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    pgd_steps: int = 40,
    pgd_step_size: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ReLUNetwork:
    """Train a width-``width`` one-hidden-layer ReLU network by mini-batch Adam.

    method "std" minimises (4) (clean data), "fgsm" and "pgd" minimise (13) /
    (16) with the inner maximum estimated by FGSM or by ``pgd_steps`` PGD steps
    of size ``pgd_step_size`` (default eps / 30). Weights start from PyTorch's
    default initialisation (uniform on +-1/sqrt(fan-in)), drawn by numpy from ``seed``; the batch
    order is drawn from the same seed, so a run is reproducible.
    """
    X, y = validate_training_data(X, y, loss=loss)
    eps = validate_eps(eps)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "std" and eps == 0:
        raise ValueError(f"method {method!r} is adversarial training and needs eps > 0")
    for name, value in (("width", width), ("epochs", epochs), ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    rng = np.random.default_rng(int(seed))
    fan_in = X.shape[1] + int(bias)
    network = ReLUNetwork(U=rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), size=(fan_in, int(width))),
                          alpha=rng.uniform(-1 / np.sqrt(width), 1 / np.sqrt(width), size=int(width)), bias=bias)
    optimizer = _Adam([network.U, network.alpha], lr=lr)
    n = X.shape[0]
    for _ in tqdm(range(int(epochs)), desc=f"GD-{method.upper()}", disable=not progress):
        order = rng.permutation(n)
        for start in range(0, n, int(batch_size)):
            idx = order[start:start + int(batch_size)]
            xb, yb = X[idx], y[idx]
            if method == "fgsm":
                xb = fgsm(network, xb, yb, eps, loss=loss)
            elif method == "pgd":
                xb = pgd(network, xb, yb, eps, step_size=pgd_step_size, n_steps=pgd_steps, loss=loss)
            optimizer.step(objective_gradients(network, xb, yb, loss, n, beta))
    return ReLUNetwork(U=network.U.copy(), alpha=network.alpha.copy(), bias=bias)
