"""AutoAttack (Croce and Hein, 2020) against binary scalar one-hidden-layer networks, through ``torchattacks``:
APGD with cross-entropy, APGD-T, FAB-T and Square on a two-logit wrapper, in the input's own units.
The package's other attacks (FGSM, PGD, PGD with restarts) are in :mod:`convexadv.attacks`, the exact
worst case in :mod:`convexadv.verify`."""

from __future__ import annotations

import time

import numpy as np
import torch

from .attacks import predict_scores, validate_count
from .programs import validate_eps, validate_training_data
from .torch_model import as_module


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
    a strictly decreasing function of the margin, and the extra classes are never predicted.
    ``image_shape`` (C, H, W), default (d, 1, 1), only shapes Square's windows (CIFAR features are
    channel-major, so (3, 7, 7) for 7x7 images). The random starts are drawn from ``seed``; the
    global torch random state is left as it was.
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


def autoattack_accuracy(model, X, y, eps: float, *, attacks=AUTOATTACK_ATTACKS, proven_robust=None,
                        **options) -> dict:
    """Clean accuracy and the accuracy under AutoAttack's cascade of the attacks of :func:`autoattack`.

    As in AutoAttack's standard version, each attack runs only on the points that the network
    classifies correctly and that no earlier attack in ``attacks`` broke. ``proven_robust`` (a boolean
    mask of the rows of X, e.g. ``exact_robustness(...).status == "robust"``) marks points whose worst
    margin over the whole eps-ball is proven positive: no attack can break them, so they count as
    robust under every attack without being attacked (the accuracies are the same, the attacks run
    on fewer points). Returns {"clean_accuracy", "<attack>_accuracy" for each attack (the accuracy
    after that attack and the ones before it), "autoattack_accuracy" (a point counts only if no
    attack succeeds), "attacked_points" (the points the first attack ran on), "seconds": {attack:
    seconds}}; ``options`` go to :func:`autoattack`. Margins are recomputed in float64 on the
    returned inputs.
    """
    X, y = validate_training_data(X, y, loss="hinge")
    module = as_module(model)
    correct = y * predict_scores(module, X) > 0
    proven = np.zeros(X.shape[0], dtype=bool) if proven_robust is None else np.asarray(proven_robust)
    if proven.dtype != bool or proven.shape != correct.shape:
        raise ValueError(f"proven_robust must be a boolean mask of shape {correct.shape}, "
                         f"got {proven.dtype} of shape {proven.shape}")
    if np.any(proven & ~correct):
        raise ValueError(f"proven_robust marks {int(np.sum(proven & ~correct))} points that the network "
                         "misclassifies even unperturbed: they cannot be robust")
    robust, n_proven = np.flatnonzero(correct & ~proven), int(proven.sum())
    result, seconds = {"clean_accuracy": float(np.mean(correct)), "attacked_points": int(robust.size)}, {}
    for name in attacks:
        start = time.perf_counter()
        if robust.size:
            X_adv = autoattack(module, X[robust], y[robust], eps, attacks=(name,), **options)[name]
            robust = robust[y[robust] * predict_scores(module, X_adv) > 0]
        seconds[name] = time.perf_counter() - start
        result[f"{name}_accuracy"] = (robust.size + n_proven) / X.shape[0]
    result["autoattack_accuracy"] = (robust.size + n_proven) / X.shape[0]
    result["seconds"] = seconds
    return result
