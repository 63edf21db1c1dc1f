"""Back-propagation baselines GD-STD, GD-FGSM and GD-PGD (section VII).

The same architecture and the same regularised objective as the convex
programs: (13) for the hinge loss, (16) for the squared loss, with the inner
maximisation replaced by an FGSM or PGD attack (or by nothing, GD-STD).
The hinge data term is averaged over the mini-batch, as (13) averages over n;
the squared data term is summed and rescaled by n / batch size so that one
epoch's gradients estimate those of (16).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .attacks import fgsm, pgd
from .network import ReLUNetwork
from .programs import validate_eps, validate_training_data
from .threads import numpy_blas_single_threaded
from .torch_model import TorchReLUNetwork

METHODS = ("std", "fgsm", "pgd")


def _data_loss(yhat: torch.Tensor, y: torch.Tensor, loss: str, n_total: int) -> torch.Tensor:
    if loss == "hinge":
        return torch.clamp(1 - y * yhat, min=0).mean()
    return 0.5 * ((yhat - y) ** 2).sum() * (n_total / y.shape[0])


class _Adam:
    """Adam (Kingma and Ba, 2015) with PyTorch's default betas (0.9, 0.999) and eps 1e-8, in the same
    floating-point operations, in the same order, as ``torch.optim.Adam``'s CPU path (no weight decay,
    no AMSGrad), so training gives the same weights to the bit. Written out because constructing
    ``torch.optim.Adam`` imports ``torch._dynamo`` and sympy: about 2 s of every GD training job."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.steps = 0
        self.first_moments = [torch.zeros_like(p) for p in self.params]
        self.second_moments = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        step_size = self.lr / (1 - self.beta1 ** self.steps)
        second_correction = (1 - self.beta2 ** self.steps) ** 0.5
        for param, first, second in zip(self.params, self.first_moments, self.second_moments):
            grad = param.grad
            first.lerp_(grad, 1 - self.beta1)
            second.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            param.addcdiv_(first, (second.sqrt() / second_correction).add_(self.eps), value=-step_size)


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
    default (Kaiming-uniform) initialisation drawn from ``seed``; the batch
    order is drawn from the same seed, so a run is reproducible on CPU.
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

    generator = torch.Generator().manual_seed(int(seed))
    model = TorchReLUNetwork(X.shape[1], int(width), bias=bias)
    with torch.no_grad():
        fan_in = model.hidden.shape[1]
        bound = 1.0 / np.sqrt(fan_in)
        model.hidden.uniform_(-bound, bound, generator=generator)
        model.output.uniform_(-1.0 / np.sqrt(width), 1.0 / np.sqrt(width), generator=generator)
    optimizer = _Adam(model.parameters(), lr=lr)
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y)
    n = X.shape[0]
    for _ in tqdm(range(int(epochs)), desc=f"GD-{method.upper()}", disable=not progress):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, int(batch_size)):
            idx = order[start:start + int(batch_size)]
            xb, yb = Xt[idx], yt[idx]
            if method == "fgsm":
                xb = torch.as_tensor(fgsm(model, xb.numpy(), yb.numpy(), eps, loss=loss))
            elif method == "pgd":
                xb = torch.as_tensor(pgd(model, xb.numpy(), yb.numpy(), eps, step_size=pgd_step_size,
                                         n_steps=pgd_steps, loss=loss))
            optimizer.zero_grad()
            objective = _data_loss(model(xb), yb, loss, n) + model.regularizer(beta)
            objective.backward()
            optimizer.step()
    return model.to_network()
