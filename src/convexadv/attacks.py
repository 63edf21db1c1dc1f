"""l_inf attacks (FGSM and PGD (3)) and robustness evaluation, in the input's own units.

For hinge models the hinge is treated as the "leaky hinge" of section VII-D,
max(zeta (1 - y yhat), 1 - y yhat) with zeta -> 0+, so the ascent direction is
sgn(grad_x(-y yhat)) even where the hinge is flat:
    x~ = x - eps * sgn(y * sum_{j: x^T u_j >= 0} u_j alpha_j)          (FGSM)
    x~^{t+1} = Pi_X(x~^t - gamma * sgn(y * grad_x yhat(x~^t)))          (PGD)
For squared-loss models the direction is sgn(grad_x (1/2)(yhat - y)^2).

Stronger attacks beside the paper's: :func:`pgd_restarts` (the margin y * yhat minimised
from random starts with decreasing step sizes, best point kept) and :func:`autoattack`
(APGD-CE, APGD-T, FAB-T and Square of the ``torchattacks`` package on a two-logit wrapper).
The exact worst case is :func:`convexadv.verify.exact_robustness`.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .programs import validate_eps, validate_inputs, validate_training_data
from .torch_model import as_module, to_tensor


def _ascent_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ascent sign of the (leaky hinge or squared) loss at x, and yhat(x)."""
    x = x.detach().requires_grad_(True)
    yhat = model(x)
    if loss == "hinge":
        objective = -(y * yhat).sum()  # the leaky hinge's gradient direction
    elif loss == "squared":
        objective = 0.5 * ((yhat - y) ** 2).sum()
    else:
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    (grad,) = torch.autograd.grad(objective, x)
    return torch.sign(grad), yhat.detach()


def _prepare(model, X, y):
    module = as_module(model)
    X = validate_inputs(X)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} entries")
    x = to_tensor(X, module)
    return module, x, torch.as_tensor(y, dtype=x.dtype, device=x.device)


def validate_count(name: str, value) -> int:
    """A positive integer count (steps, restarts, queries), or a ValueError naming it."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def fgsm(model, X, y, eps: float, *, loss: str = "hinge") -> np.ndarray:
    """Fast Gradient Sign Method: one step of size eps along the ascent sign."""
    eps = validate_eps(eps)
    module, x, yt = _prepare(model, X, y)
    return (x + eps * _ascent_step(module, x, yt, loss)[0]).detach().cpu().numpy()


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
    module, x, yt = _prepare(model, X, y)
    x_adv = x.clone()
    for _ in range(n_steps):
        x_adv = x_adv + gamma * _ascent_step(module, x_adv, yt, loss)[0]
        x_adv = torch.clamp(x_adv, x - eps, x + eps).detach()  # Pi_X: clip each coordinate
    return x_adv.cpu().numpy()


def _attack_score(yhat: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """What an attack minimises: the margin y * yhat (hinge) or -|yhat - y| (squared)."""
    return y * yhat if loss == "hinge" else -(yhat - y).abs()


def pgd_restarts(model, X, y, eps: float, *, n_restarts: int = 10, n_steps: int = 100,
                 loss: str = "hinge", seed: int = 0) -> np.ndarray:
    """PGD (3) from ``n_restarts`` starts, keeping each point's best iterate over all steps and starts.

    Hinge models: minimises the margin y * yhat (the leaky hinge's direction, so it keeps moving
    where the hinge is flat); squared-loss models: maximises |yhat - y|. The first start is x itself,
    the others are uniform in the eps-box, drawn from ``seed`` (deterministic on CPU). Step t of
    ``n_steps`` is a sign step of size 2 eps * 200^(-t / (n_steps - 1)), decreasing geometrically
    from 2 eps (vertex to vertex) to eps / 100, followed by the projection Pi_X onto the box; every
    iterate is scored, so the result is never worse than the clean point or any earlier iterate.
    Returns the adversarial inputs (n, d) in the input's own units.
    """
    eps = validate_eps(eps)
    n_restarts, n_steps = validate_count("n_restarts", n_restarts), validate_count("n_steps", n_steps)
    if loss not in ("hinge", "squared"):
        raise ValueError(f"loss must be 'hinge' or 'squared', got {loss!r}")
    module, x, yt = _prepare(model, X, y)
    n = x.shape[0]
    best = x.clone()
    with torch.no_grad():
        best_score = _attack_score(module(x), yt, loss)
    if eps == 0:
        return best.cpu().numpy()
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    noise = 2 * torch.rand((n_restarts - 1, *x.shape), generator=generator, dtype=x.dtype, device=x.device) - 1
    x_adv = torch.cat([x[None], x[None] + eps * noise]).reshape(n_restarts * n, -1)
    lower, upper = (x - eps).repeat(n_restarts, 1), (x + eps).repeat(n_restarts, 1)
    ys = yt.repeat(n_restarts)
    steps = 2 * eps * 200.0 ** (-np.arange(n_steps) / max(n_steps - 1, 1))

    def keep_best(points: torch.Tensor, yhat: torch.Tensor) -> None:
        scores = _attack_score(yhat, ys, loss).reshape(n_restarts, n)
        restart = scores.argmin(dim=0)
        better = scores[restart, torch.arange(n)] < best_score
        best[better] = points.reshape(n_restarts, n, -1)[restart[better], better]
        best_score[better] = scores[restart[better], better]

    for gamma in steps:
        direction, yhat = _ascent_step(module, x_adv, ys, loss)
        keep_best(x_adv, yhat)
        x_adv = torch.minimum(torch.maximum(x_adv + gamma * direction, lower), upper).detach()
    with torch.no_grad():
        keep_best(x_adv, module(x_adv))
    return best.cpu().numpy()


#: The four attacks of AutoAttack's standard version (Croce and Hein, 2020), in its order.
AUTOATTACK_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")


class _UnitBoxLogits(torch.nn.Module):
    """Logits [-yhat / 2, yhat / 2] (class 1 <-> label +1) of a scalar network, read on [0, 1] inputs.

    The input x01 of shape (n, *image_shape) is mapped back by x = offset + scale * x01 before the
    network sees it. With ``floor`` set, two constant logits ``floor`` are appended (see
    :func:`autoattack`); the network is evaluated in its own dtype, the logits in x01's.
    """

    def __init__(self, network: torch.nn.Module, offset: float, scale: float, floor: float | None = None):
        super().__init__()
        self.network, self.offset, self.scale, self.floor = network, offset, scale, floor

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        dtype = next(self.network.parameters()).dtype
        yhat = self.network(self.offset + self.scale * x01.reshape(x01.shape[0], -1).to(dtype))
        logits = [-yhat / 2, yhat / 2]
        if self.floor is not None:
            logits += [torch.full_like(yhat, self.floor)] * 2
        return torch.stack(logits, dim=1).to(x01.dtype)


def _output_bound(module: torch.nn.Module, low: float, high: float) -> float:
    """An upper bound on |yhat| over the box [low, high]^d, for a TorchReLUNetwork-like module."""
    W = module.hidden.detach().cpu().double().numpy()
    n_perturbable = W.shape[1] - int(getattr(module, "bias", False))
    pert, fixed = W[:, :n_perturbable], W[:, n_perturbable:].sum(axis=1)
    centre, radius = 0.5 * (low + high), 0.5 * (high - low)
    peak = np.maximum(centre * pert.sum(axis=1) + radius * np.abs(pert).sum(axis=1) + fixed, 0.0)
    return float(np.abs(module.output.detach().cpu().double().numpy()) @ peak)


def autoattack(model, X, y, eps: float, *, attacks=AUTOATTACK_ATTACKS, seed: int = 0,
               image_shape: tuple[int, ...] | None = None, n_steps: int = 100,
               n_queries: int = 5000) -> dict[str, np.ndarray]:
    """AutoAttack's attacks (``torchattacks``) against a binary scalar network, in the input's units.

    Each attack in ``attacks`` (a subset of :data:`AUTOATTACK_ATTACKS`: APGD with cross-entropy,
    APGD-T with the targeted DLR loss, FAB-T, Square with ``n_queries`` queries; ``n_steps``
    iterations for the first three, as in AutoAttack's standard version) runs on every point the
    network classifies correctly, on the two-logit classifier [-yhat / 2, yhat / 2] (label +1 is
    class 1). Returns {name: adversarial inputs (n, d)} and, under "autoattack", each point's
    input with the smallest margin y * yhat over the attacks (AutoAttack's worst case).

    Units: torchattacks clamps its inputs to [0, 1], while this package's threat model is the
    unclipped l_inf ball ||delta||_inf <= eps in the data's own units (0-255 pixels, standardised
    features ...). The data are therefore mapped affinely, x01 = (x - lo + eps) / (hi - lo + 2 eps)
    with lo, hi the smallest and largest entry of X, and the attacks get eps01 = eps / (hi - lo + 2 eps);
    every eps-ball then lies inside [0, 1]^d, so the clamp never binds, and the wrapper maps x01
    back before the network sees it. The attacks work in float32 (FAB requires it); results are
    mapped back to the original units and projected onto the eps-ball to undo float32 rounding.

    APGD-T's DLR loss needs at least four logits: for it the wrapper appends two constant logits
    -K, with K twice a bound on |yhat| over the whole box [lo - eps, hi + eps]^d (positive when
    any point is classified correctly); the targeted DLR loss is then -y yhat / (|yhat| / 2 + K),
    a strictly decreasing function of the margin, and the extra classes are never predicted. ``image_shape`` (C, H, W), default (d, 1, 1), only shapes
    Square's windows (CIFAR features are channel-major, so (3, 7, 7) for 7x7 images). The random
    starts are drawn from ``seed``; the global torch random state is left as it was.
    """
    try:
        import torchattacks
    except ImportError as error:
        raise ImportError("autoattack needs the torchattacks package: pip install --no-deps torchattacks==3.5.1 "
                          "(see pyproject.toml, extra 'autoattack')") from error

    X, y = validate_training_data(X, y, loss="hinge")
    eps = validate_eps(eps)
    unknown = [name for name in attacks if name not in AUTOATTACK_ATTACKS]
    if unknown or len(attacks) == 0:
        raise ValueError(f"attacks must be a non-empty subset of {AUTOATTACK_ATTACKS}, got {tuple(attacks)!r}")
    n_steps, n_queries = validate_count("n_steps", n_steps), validate_count("n_queries", n_queries)
    n, d = X.shape
    image_shape = (d, 1, 1) if image_shape is None else tuple(int(k) for k in image_shape)
    if len(image_shape) != 3 or int(np.prod(image_shape)) != d:
        raise ValueError(f"image_shape must be (C, H, W) with C * H * W = {d} features, got {image_shape}")
    module = as_module(model)
    adversarial = {name: X.copy() for name in attacks}
    correct = np.flatnonzero(y * predict_scores(module, X) > 0)
    if eps > 0 and correct.size:
        low, high = float(X.min()) - eps, float(X.max()) + eps
        scale = high - low
        eps01 = eps / scale
        x01 = torch.as_tensor((X[correct] - low) / scale, dtype=torch.float32).reshape(-1, *image_shape)
        classes = torch.as_tensor(y[correct] > 0, dtype=torch.long)
        plain = _UnitBoxLogits(module, low, scale)
        padded = _UnitBoxLogits(module, low, scale, floor=-2.0 * _output_bound(module, low, high))
        builders = {
            "apgd-ce": lambda: torchattacks.APGD(plain, norm="Linf", eps=eps01, steps=n_steps, n_restarts=1,
                                                 seed=seed, loss="ce"),
            "apgd-t": lambda: torchattacks.APGDT(padded, norm="Linf", eps=eps01, steps=n_steps, n_restarts=1,
                                                 seed=seed, n_classes=2),
            "fab-t": lambda: torchattacks.FAB(plain, norm="Linf", eps=eps01, steps=n_steps, n_restarts=1,
                                              seed=seed, multi_targeted=True, n_classes=2),
            "square": lambda: torchattacks.Square(plain, norm="Linf", eps=eps01, n_queries=n_queries,
                                                  n_restarts=1, seed=seed),
        }
        for name in attacks:
            with torch.random.fork_rng(devices=[]):
                x01_adv = builders[name]()(x01, classes)
            X_adv = low + scale * x01_adv.detach().double().reshape(correct.size, d).numpy()
            adversarial[name][correct] = np.clip(X_adv, X[correct] - eps, X[correct] + eps)
    margins = np.stack([y * predict_scores(module, adversarial[name]) for name in attacks])
    worst = margins.argmin(axis=0)
    adversarial["autoattack"] = np.stack([adversarial[name] for name in attacks])[worst, np.arange(n)]
    return adversarial


def autoattack_accuracy(model, X, y, eps: float, *, attacks=AUTOATTACK_ATTACKS, **options) -> dict:
    """Clean accuracy, the accuracy under each attack of :func:`autoattack`, and under all of them.

    Returns {"clean_accuracy", "<attack>_accuracy" for each attack, "autoattack_accuracy" (a point
    counts only if no attack succeeds), "seconds": {attack: seconds}}; ``options`` go to
    :func:`autoattack`. Accuracies are recomputed in float64 on the returned inputs.
    """
    module = as_module(model)
    result, seconds, adversarial = {"clean_accuracy": accuracy(module, X, y)}, {}, []
    for name in attacks:
        start = time.perf_counter()
        adversarial.append(autoattack(module, X, y, eps, attacks=(name,), **options)[name])
        seconds[name] = time.perf_counter() - start
        result[f"{name}_accuracy"] = accuracy(module, adversarial[-1], y)
    robust = np.all([np.asarray(y) * predict_scores(module, X_adv) > 0 for X_adv in adversarial], axis=0)
    result["autoattack_accuracy"] = float(np.mean(robust))
    result["seconds"] = seconds
    return result


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
