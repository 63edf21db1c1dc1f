"""PGD with restarts and AutoAttack (torchattacks) against scalar one-hidden-layer networks."""

import numpy as np
import pytest

from conftest import make_classification, make_regression
from convexadv import (
    AUTOATTACK_ATTACKS,
    ReLUNetwork,
    accuracy,
    autoattack,
    autoattack_accuracy,
    certified_linear_region,
    fgsm,
    pgd,
    pgd_restarts,
    worst_case_perturbation,
)
from convexadv.network import local_gradients
from convexadv.verify import exact_robustness


def pixel_problem(n=40, seed=0):
    """Pixel-like data on 0-255 (many pixels at 0 and 255) and a network that classifies most of it."""
    rng = np.random.default_rng(seed)
    X = np.clip(rng.normal(128, 110, size=(n, 12)), 0, 255).round()
    U = rng.standard_normal((13, 10)) / 255
    U[12] = -(X.mean(axis=0) @ U[:12]) + rng.standard_normal(10) * 0.1  # centre the neurons on the data
    network = ReLUNetwork(U=U, alpha=rng.standard_normal(10), bias=True)
    return network, X, np.where(network.forward(X) > 0, 1.0, -1.0)


def margins(network, X, y):
    return y * network.forward(X)


@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_pgd_restarts_stays_in_the_box_and_never_loses_ground(loss):
    X, y = (make_classification if loss == "hinge" else make_regression)(40, 4, seed=1)
    rng = np.random.default_rng(2)
    network = ReLUNetwork(U=rng.standard_normal((4, 12)), alpha=rng.standard_normal(12))
    eps = 0.2
    X_adv = pgd_restarts(network, X, y, eps, n_restarts=5, n_steps=30, loss=loss, seed=3)
    assert np.all(np.abs(X_adv - X) <= eps * (1 + 1e-12))
    again = pgd_restarts(network, X, y, eps, n_restarts=5, n_steps=30, loss=loss, seed=3)
    assert np.array_equal(X_adv, again)  # seeded, deterministic on CPU
    if loss == "hinge":
        assert np.all(margins(network, X_adv, y) <= margins(network, X, y))
        # not guaranteed point by point, but on average the restarts beat the paper's fixed-step PGD
        paper = pgd(network, X, y, eps, n_steps=30)
        assert margins(network, X_adv, y).mean() <= margins(network, paper, y).mean()
    else:
        err = np.abs(network.forward(X_adv) - y)
        assert np.all(err >= np.abs(network.forward(X) - y))


@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_closed_form_attacks_equal_autograd_on_a_generic_torch_module(loss):
    """FGSM, PGD and PGD with restarts differentiate a ReLUNetwork in closed form and any other torch
    module by autograd: on the same network, written as torch.nn.Sequential, they return the same points."""
    import torch

    X, y = (make_classification if loss == "hinge" else make_regression)(30, 5, seed=4)
    rng = np.random.default_rng(6)
    network = ReLUNetwork(U=rng.standard_normal((6, 9)), alpha=rng.standard_normal(9), bias=True)
    generic = torch.nn.Sequential(torch.nn.Linear(5, 9).double(), torch.nn.ReLU(),
                                  torch.nn.Linear(9, 1, bias=False).double(), torch.nn.Flatten(0))
    with torch.no_grad():
        generic[0].weight.copy_(torch.as_tensor(network.U[:5].T))
        generic[0].bias.copy_(torch.as_tensor(network.U[5]))
        generic[2].weight.copy_(torch.as_tensor(network.alpha[None, :]))
    eps = 0.3
    for attack in (lambda m: fgsm(m, X, y, eps, loss=loss), lambda m: pgd(m, X, y, eps, n_steps=20, loss=loss),
                   lambda m: pgd_restarts(m, X, y, eps, n_restarts=3, n_steps=20, loss=loss, seed=1)):
        closed_form, autograd = attack(network), attack(generic)
        assert np.abs(closed_form - X).max() > 0
        np.testing.assert_allclose(closed_form, autograd, rtol=0, atol=1e-12)
    assert accuracy(network, X, np.sign(y)) == accuracy(generic, X, np.sign(y))


def test_pgd_restarts_reaches_theorem4_where_exact_and_never_beats_the_verifier():
    rng = np.random.default_rng(5)
    network = ReLUNetwork(U=rng.standard_normal((5, 8)), alpha=rng.standard_normal(8), bias=False)
    X = 3 * rng.standard_normal((50, 5))
    y = np.where(network.forward(X) > 0, 1.0, -1.0)
    eps = 0.05
    X_adv = pgd_restarts(network, X, y, eps, n_restarts=3, n_steps=40, seed=0)
    certified = certified_linear_region(network, X, eps)
    assert certified.sum() > 10
    closed_form = margins(network, X + worst_case_perturbation(network, X, y, eps), y)
    assert np.allclose(margins(network, X_adv, y)[certified], closed_form[certified], rtol=0, atol=1e-9)
    exact = exact_robustness(network, X, y, eps)
    assert np.all(margins(network, X_adv, y) >= exact.lower - 1e-9)


@pytest.mark.parametrize("bias", [False, True])
def test_gradients_and_attacks_check_the_number_of_features(bias):
    """The closed-form input gradient g_k matches central differences, with and without a bias input, and
    the gradient and the attacks (which prepare the network once per call) refuse inputs with another
    number of features, naming it."""
    rng = np.random.default_rng(3)
    network = ReLUNetwork(U=rng.standard_normal((4 + bias, 6)), alpha=rng.standard_normal(6), bias=bias)
    X, y = make_classification(20, 4, seed=2)
    h = 1e-6
    central = np.stack([(network.forward(X + h * e) - network.forward(X - h * e)) / (2 * h) for e in np.eye(4)],
                       axis=1)
    np.testing.assert_allclose(local_gradients(network, X), central, rtol=0, atol=1e-6)
    for call in (lambda Z: local_gradients(network, Z), lambda Z: fgsm(network, Z, y, 0.1),
                 lambda Z: pgd(network, Z, y, 0.1), lambda Z: pgd_restarts(network, Z, y, 0.1)):
        with pytest.raises(ValueError, match="X has 5 features, the network expects 4"):
            call(np.hstack([X, X[:, :1]]))


def test_pgd_restarts_rejects_bad_arguments():
    X, y = make_classification(6, 3, seed=0)
    network = ReLUNetwork(U=np.ones((3, 2)), alpha=np.ones(2))
    with pytest.raises(ValueError, match="n_restarts"):
        pgd_restarts(network, X, y, 0.1, n_restarts=0)
    with pytest.raises(ValueError, match="n_steps"):
        pgd_restarts(network, X, y, 0.1, n_steps=2.5)
    with pytest.raises(ValueError, match="loss"):
        pgd_restarts(network, X, y, 0.1, loss="logistic")
    with pytest.raises(ValueError, match="eps"):
        pgd_restarts(network, X, y, np.nan)


def test_autoattack_on_pixel_data_stays_in_the_ball_and_the_clamp_never_binds():
    pytest.importorskip("torchattacks")
    network, X, y = pixel_problem()
    eps = 10.0
    adversarial = autoattack(network, X, y, eps, seed=0, image_shape=(3, 2, 2), n_steps=20, n_queries=200)
    assert set(adversarial) == set(AUTOATTACK_ATTACKS) | {"autoattack"}
    clean = margins(network, X, y)
    for name, X_adv in adversarial.items():
        assert X_adv.shape == X.shape
        assert np.all(np.abs(X_adv - X) <= eps * (1 + 1e-12)), name
        assert np.all(margins(network, X_adv, y)[clean <= 0] == clean[clean <= 0])  # untouched
    worst = adversarial["autoattack"]
    assert np.all(margins(network, worst, y) <= np.min([margins(network, adversarial[a], y)
                                                        for a in AUTOATTACK_ATTACKS], axis=0))
    assert accuracy(network, worst, y) < accuracy(network, X, y)
    # the affine map keeps every eps-ball inside [0, 1]: perturbations leave the pixel range [0, 255]
    apgd = adversarial["apgd-ce"]
    assert (apgd < 0).any() and (apgd > 255).any()
    # no attack beats the exact worst case
    exact = exact_robustness(network, X, y, eps, decide_only=True)
    assert accuracy(network, worst, y) >= exact.robust_accuracy


def test_autoattack_accuracy_runs_the_attacks_as_a_cascade():
    pytest.importorskip("torchattacks")
    network, X, y = pixel_problem(seed=1)
    X = X / 255.0 * 4 - 2  # other units: standardised-like features
    network = ReLUNetwork(U=np.vstack([network.U[:12] * 255 / 4, network.U[12:] + network.U[:12].sum(0) * 255 / 2]),
                          alpha=network.alpha, bias=True)
    eps = 10.0 * 4 / 255
    report = autoattack_accuracy(network, X, y, eps, seed=1, n_steps=10, n_queries=100)
    assert report["clean_accuracy"] == accuracy(network, X, y)
    previous = report["clean_accuracy"]
    for name in AUTOATTACK_ATTACKS:  # the cascade: each attack only adds broken points
        assert report["autoattack_accuracy"] <= report[f"{name}_accuracy"] <= previous
        assert report["seconds"][name] >= 0
        previous = report[f"{name}_accuracy"]
    assert report["autoattack_accuracy"] == report["square_accuracy"] < report["clean_accuracy"]
    # seeded: the same adversarial inputs again
    first, again = (autoattack(network, X, y, eps, attacks=("apgd-ce", "square"), seed=1, n_steps=10, n_queries=100)
                    for _ in range(2))
    assert all(np.array_equal(first[name], again[name]) for name in first)


def test_autoattack_accuracy_skips_points_proven_robust_without_changing_any_accuracy():
    pytest.importorskip("torchattacks")
    network, X, y = pixel_problem(n=60, seed=2)
    y[:5] = -y[:5]  # five misclassified points
    eps = 4.0
    exact = exact_robustness(network, X, y, eps, decide_only=True)
    proven = exact.status == "robust"
    assert 0 < proven.sum() < np.sum(margins(network, X, y) > 0)  # some proven, some left to the attacks
    options = dict(seed=3, n_steps=10, n_queries=100, image_shape=(3, 2, 2))
    plain = autoattack_accuracy(network, X, y, eps, **options)
    skipping = autoattack_accuracy(network, X, y, eps, proven_robust=proven, **options)
    nothing_proven = autoattack_accuracy(network, X, y, eps, proven_robust=np.zeros(60, dtype=bool), **options)
    assert skipping["attacked_points"] == np.sum(margins(network, X, y) > 0) - proven.sum()
    assert {k: v for k, v in nothing_proven.items() if k != "seconds"} == {
        k: v for k, v in plain.items() if k != "seconds"}
    for name in (*AUTOATTACK_ATTACKS, "autoattack"):
        # an attack never breaks a proven point, and the exact accuracy bounds every attack's from below
        assert exact.robust_accuracy <= skipping[f"{name}_accuracy"] <= skipping["clean_accuracy"]
    assert skipping["clean_accuracy"] == plain["clean_accuracy"]
    with pytest.raises(ValueError, match="misclassifies"):
        autoattack_accuracy(network, X, y, eps, proven_robust=np.ones(60, dtype=bool), **options)
    with pytest.raises(ValueError, match="boolean mask"):
        autoattack_accuracy(network, X, y, eps, proven_robust=proven[:10], **options)


def test_autoattack_rejects_bad_arguments():
    network, X, y = pixel_problem(n=6)
    with pytest.raises(ValueError, match="attacks"):
        autoattack(network, X, y, 10.0, attacks=("apgd-ce", "cw"))
    with pytest.raises(ValueError, match="image_shape"):
        autoattack(network, X, y, 10.0, image_shape=(3, 3, 3))
    with pytest.raises(ValueError, match="labels"):
        autoattack(network, X, np.zeros(6), 10.0)
