"""The paper's theorems, checked on small data with a real interior-point solver (Clarabel)."""

import itertools

import numpy as np
import pytest

from conftest import make_classification, make_regression
from convexadv import (
    fgsm,
    pgd,
    recover_network,
    robust_loss_terms,
    sample_patterns,
    solve_convex,
    worst_case_perturbation,
)


def box_vertices(d):
    return np.array(list(itertools.product((-1.0, 1.0), repeat=d)))


def hinge(yhat, y):
    return np.maximum(0.0, 1.0 - y * yhat)


def solve(X, y, *, loss, eps, beta, bias, n_patterns, seed=0):
    patterns = sample_patterns(X, n_patterns, eps=eps, bias=bias, rng=seed)
    return solve_convex(X, y, patterns, loss=loss, eps=eps, beta=beta, bias=bias, solver="clarabel")


@pytest.mark.parametrize("loss", ["hinge", "squared"])
@pytest.mark.parametrize("bias", [False, True])
def test_theorem1_convex_objective_equals_nonconvex_loss(loss, bias):
    X, y = (make_classification if loss == "hinge" else make_regression)(30, 3, seed=1)
    beta = 1e-3
    solution = solve(X, y, loss=loss, eps=0.0, beta=beta, bias=bias, n_patterns=40)
    network = recover_network(solution)
    yhat = network.forward(X)
    data_term = hinge(yhat, y).mean() if loss == "hinge" else 0.5 * np.sum((yhat - y) ** 2)
    nonconvex = data_term + network.regularizer(beta)  # (4)
    assert nonconvex == pytest.approx(solution.objective, rel=1e-5)
    assert solution.max_violation <= 1e-7
    assert network.width <= 2 * solution.patterns.shape[1]


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_theorems3_4_hinge_objective_is_exact_worst_case(d, bias):
    X, y = make_classification(20, d, seed=d)
    eps, beta = 0.08, 1e-3
    solution = solve(X, y, loss="hinge", eps=eps, beta=beta, bias=bias, n_patterns=30)
    network = recover_network(solution)
    # brute force: the worst hinge loss of the recovered network over each eps-box's vertices
    vertex_losses = np.stack([hinge(network.forward(X + eps * v), y) for v in box_vertices(d)])
    brute_force = vertex_losses.max(axis=0).mean() + network.regularizer(beta)
    assert brute_force == pytest.approx(solution.objective, rel=1e-5)
    # the closed-form Delta* of Theorem 4 attains the brute-force maximum
    delta = worst_case_perturbation(network, X, y, eps)
    assert np.allclose(hinge(network.forward(X + delta), y), vertex_losses.max(axis=0), atol=1e-8)
    # ... and the robust loss of every training point is certified exact
    terms, certified = robust_loss_terms(network, X, y, eps)
    assert certified.all()
    assert np.allclose(terms, vertex_losses.max(axis=0), atol=1e-8)
    # no attack beats the certified bound
    for X_adv in (pgd(network, X, y, eps, n_steps=60), fgsm(network, X, y, eps)):
        assert np.all(np.abs(X_adv - X) <= eps + 1e-12)
        attacked = hinge(network.forward(X_adv), y).mean() + network.regularizer(beta)
        assert attacked <= solution.objective * (1 + 1e-7)


def test_eq18_squared_objective_is_exact_worst_case():
    X, y = make_regression(8, 2, seed=5)
    eps, beta = 0.05, 1e-3
    solution = solve(X, y, loss="squared", eps=eps, beta=beta, bias=False, n_patterns=16)
    network = recover_network(solution)
    # the joint worst case over all boxes: 4^8 vertex combinations, separable per sample
    per_vertex = np.stack([(network.forward(X + eps * v) - y) ** 2 for v in box_vertices(2)])
    combos = itertools.product(range(4), repeat=X.shape[0])
    brute_force = max(0.5 * per_vertex[list(c), np.arange(8)].sum() for c in combos)
    assert brute_force + network.regularizer(beta) == pytest.approx(solution.objective, rel=1e-5)
    delta = worst_case_perturbation(network, X, y, eps, loss="squared")
    assert np.allclose((network.forward(X + delta) - y) ** 2, per_vertex.max(axis=0), atol=1e-8)


@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_robust_constraints_hold_on_every_box_vertex(loss):
    X, y = (make_classification if loss == "hinge" else make_regression)(20, 3, seed=7)
    eps = 0.1
    solution = solve(X, y, loss=loss, eps=eps, beta=1e-3, bias=False, n_patterns=30)
    assert solution.max_violation <= 1e-7
    signs = np.where(solution.patterns, 1.0, -1.0)
    scale = np.abs(np.hstack([solution.V, solution.W])).sum()
    for vertex in box_vertices(3):
        for U in (solution.V, solution.W):
            assert (signs * ((X + eps * vertex) @ U)).min() >= -1e-7 * scale


def test_closed_form_worst_case_equals_brute_force_on_random_networks():
    # on points where the network is linear over the box, Delta* is the exact maximiser
    rng = np.random.default_rng(11)
    from convexadv import ReLUNetwork, certified_linear_region

    network = ReLUNetwork(U=rng.standard_normal((3, 5)), alpha=rng.standard_normal(5))
    X = rng.standard_normal((200, 3)) * 3
    y = np.sign(rng.standard_normal(200))
    eps = 0.05
    certified = certified_linear_region(network, X, eps)
    assert certified.sum() > 50
    X, y = X[certified], y[certified]
    delta = worst_case_perturbation(network, X, y, eps)
    brute = np.stack([hinge(network.forward(X + eps * v), y) for v in box_vertices(3)]).max(axis=0)
    assert np.allclose(hinge(network.forward(X + delta), y), brute)


def test_closed_forms_accept_the_torch_twin_and_name_anything_else():
    from convexadv import ReLUNetwork, certified_linear_region

    rng = np.random.default_rng(12)
    network = ReLUNetwork(U=rng.standard_normal((4, 3)), alpha=rng.standard_normal(3), bias=True)
    X, y = rng.standard_normal((20, 3)), np.sign(rng.standard_normal(20))
    twin = network.to_torch()
    for plain, from_twin in [(robust_loss_terms(network, X, y, 0.1), robust_loss_terms(twin, X, y, 0.1)),
                             (certified_linear_region(network, X, 0.1), certified_linear_region(twin, X, 0.1)),
                             (worst_case_perturbation(network, X, y, 0.1), worst_case_perturbation(twin, X, y, 0.1))]:
        assert np.array_equal(np.asarray(plain, dtype=float), np.asarray(from_twin, dtype=float))
    with pytest.raises(TypeError, match="ReLUNetwork .* got dict"):
        robust_loss_terms({"U": network.U}, X, y, 0.1)


def test_pgd_at_least_fgsm_and_large_eps_breaks_everything():
    X, y = make_classification(30, 3, seed=2)
    eps = 0.1
    network = recover_network(solve(X, y, loss="hinge", eps=eps, beta=1e-3, bias=True, n_patterns=30))
    fgsm_loss = hinge(network.forward(fgsm(network, X, y, eps)), y)
    pgd_loss = hinge(network.forward(pgd(network, X, y, eps)), y)
    assert np.all(pgd_loss >= fgsm_loss - 1e-9)
    from convexadv import evaluate_robustness

    metrics = evaluate_robustness(network, X, y, eps=50.0)
    assert metrics["clean_accuracy"] > 0.5
    assert metrics["pgd_accuracy"] == 0.0
