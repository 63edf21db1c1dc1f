"""Exact robustness verification (convexadv.verify) against independent answers.

Independent answers: in 2-D the exact optimum over every vertex of the box's arrangement of
neuron lines (plus a fine grid); in higher dimension a second MILP (big-M on every neuron with a
loose global M, no interval bounds, no relaxation shortcuts, solved by scipy's ``milp``); attacks
that must never beat the verified bound; and Theorem 4's closed form where it is exact.
"""

import itertools

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.stats import binomtest

from conftest import make_classification
from convexadv import ReLUNetwork, certified_linear_region, pgd_restarts, robust_loss_terms
from convexadv.verify import METHODS, binomial_interval, exact_robustness


def random_network(d, m, *, bias, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return ReLUNetwork(U=rng.standard_normal((d + int(bias), m)) / scale, alpha=rng.standard_normal(m), bias=bias)


def labelled(network, X):
    """Labels that make roughly half the points robust: the network's own sign."""
    return np.where(network.forward(X) > 0, 1.0, -1.0)


def arrangement_points(network, x, eps, grid=201):
    """Every vertex of the eps-box cut by the neuron lines around x (d = 2), and a grid."""
    W, b = network.U[:2], (network.U[2] if network.bias else np.zeros(network.width))
    s = x @ W + b
    points = [np.array(v) * eps for v in itertools.product((-1.0, 1.0), repeat=2)]
    for j in range(network.width):
        for axis, side in itertools.product((0, 1), (-eps, eps)):  # line j meets an edge of the box
            other = 1 - axis
            if W[other, j] != 0:
                delta = np.empty(2)
                delta[axis] = side
                delta[other] = -(s[j] + W[axis, j] * side) / W[other, j]
                points.append(delta)
    for i, j in itertools.combinations(range(network.width), 2):  # two lines cross
        A = np.array([W[:, i], W[:, j]])
        if abs(np.linalg.det(A)) > 1e-12:
            points.append(np.linalg.solve(A, -np.array([s[i], s[j]])))
    points = np.array(points)
    points = points[np.all(np.abs(points) <= eps * (1 + 1e-12), axis=1)]
    g = np.linspace(-eps, eps, grid)
    return np.vstack([points, np.array(list(itertools.product(g, g)))])


def big_m_reference(network, x, label, eps):
    """min_delta label * yhat(x + delta) by a plain big-M MILP on every neuron (scipy.optimize.milp)."""
    d, m = network.n_features, network.width
    W = network.U[:d]
    b = network.U[d] if network.bias else np.zeros(m)
    M = np.abs(W).sum(axis=0) * (np.abs(x).max() + eps) + np.abs(b) + 1.0  # loose, valid for any point
    # variables [delta (d), h (m), a (m)]; h_j = relu(z_j) exactly for every feasible point
    cost = np.concatenate([np.zeros(d), label * network.alpha, np.zeros(m)])
    I, Z = np.eye(m), np.zeros((m, m))
    rows = [
        (np.hstack([-W.T, I, Z]), x @ W + b, np.inf),  # h >= z
        (np.hstack([-W.T, I, np.diag(M)]), -np.inf, x @ W + b + M),  # h <= z + M (1 - a)
        (np.hstack([np.zeros((m, d)), I, -np.diag(M)]), -np.inf, 0.0),  # h <= M a
    ]
    constraints = [LinearConstraint(A, lo, hi) for A, lo, hi in rows]
    bounds = Bounds(np.concatenate([-eps * np.ones(d), np.zeros(2 * m)]),
                    np.concatenate([eps * np.ones(d), np.full(m, np.inf), np.ones(m)]))
    integrality = np.concatenate([np.zeros(d + m), np.ones(m)])
    res = milp(cost, constraints=constraints, bounds=bounds, integrality=integrality,
               options={"mip_rel_gap": 1e-9, "presolve": False})
    assert res.status == 0, res.message
    return res.fun


def output_scale(network, X, eps):
    """sum_j |alpha_j| max(r_j, 0): the unit of the verifier's gap tolerance."""
    Xb = np.hstack([X, np.ones((X.shape[0], 1))]) if network.bias else X
    radius = eps * np.abs(network.U[:network.n_features]).sum(axis=0)
    return np.maximum(Xb @ network.U + radius, 0.0) @ np.abs(network.alpha)


def check_delta_reproduces(network, X, y, result):
    assert result.delta.shape == X.shape
    assert np.all(np.abs(result.delta) <= result.eps * (1 + 1e-12))
    yhat = network.forward(X + result.delta)
    attained = y * yhat if result.loss == "hinge" else np.abs(yhat - y)
    assert np.allclose(attained, result.value, rtol=0, atol=1e-10 * (1 + output_scale(network, X, result.eps)).max())
    assert np.all(result.lower <= result.upper)


@pytest.mark.parametrize("bias", [False, True])
def test_2d_margin_equals_arrangement_enumeration(bias):
    network = random_network(2, 7, bias=bias, seed=1)
    X = np.random.default_rng(2).uniform(-1, 1, size=(25, 2))
    y, eps = labelled(network, X), 0.3
    result = exact_robustness(network, X, y, eps)
    check_delta_reproduces(network, X, y, result)
    tol = 1e-6 * output_scale(network, X, eps)
    brute = np.array([(y[k] * network.forward(X[k] + arrangement_points(network, X[k], eps))).min()
                      for k in range(len(X))])
    assert result.exact.all() and result.n_undecided == 0
    assert np.all(np.abs(result.margin - brute) <= tol)
    assert np.all(result.lower <= brute + tol)
    assert set(result.method) <= set(METHODS)
    assert (result.method == "milp").any()  # the case is not settled by attacks and bounds alone


@pytest.mark.parametrize("bias", [False, True])
def test_2d_worst_error_equals_arrangement_enumeration(bias):
    network = random_network(2, 6, bias=bias, seed=3)
    X = np.random.default_rng(4).uniform(-1, 1, size=(20, 2))
    y = network.forward(X) + 0.2 * np.random.default_rng(5).standard_normal(20)
    eps = 0.25
    result = exact_robustness(network, X, y, eps, loss="squared")
    check_delta_reproduces(network, X, y, result)
    brute = np.array([np.abs(network.forward(X[k] + arrangement_points(network, X[k], eps)) - y[k]).max()
                      for k in range(len(X))])
    tol = 1e-6 * output_scale(network, X, eps)
    assert (result.status == "exact").all()
    assert np.all(np.abs(result.worst_error - brute) <= tol)
    assert np.all(result.upper >= brute - tol)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_agrees_with_independent_big_m_milp(bias, loss):
    d = 6
    network = random_network(d, 12, bias=bias, seed=7)
    X = np.random.default_rng(8).standard_normal((12, d))
    eps = 0.2
    if loss == "hinge":
        y = labelled(network, X)
        reference = np.array([big_m_reference(network, X[k], y[k], eps) for k in range(len(X))])
    else:
        y = network.forward(X)
        highest = -np.array([big_m_reference(network, X[k], -1.0, eps) for k in range(len(X))])
        lowest = np.array([big_m_reference(network, X[k], 1.0, eps) for k in range(len(X))])
        reference = np.maximum(highest - y, y - lowest)
    result = exact_robustness(network, X, y, eps, loss=loss)
    check_delta_reproduces(network, X, y, result)
    assert result.exact.all()
    assert np.allclose(result.value, reference, rtol=0, atol=1e-6 * output_scale(network, X, eps).max())


def test_no_attack_beats_the_verified_bound():
    d = 8
    network = random_network(d, 16, bias=True, seed=11)
    X = np.random.default_rng(12).standard_normal((30, d))
    y, eps = labelled(network, X), 0.25
    result = exact_robustness(network, X, y, eps)
    tol = 1e-7 * output_scale(network, X, eps)
    rng = np.random.default_rng(13)
    for seed in range(3):
        X_adv = pgd_restarts(network, X, y, eps, n_restarts=8, n_steps=80, seed=100 + seed)
        assert np.all(y * network.forward(X_adv) >= result.lower - tol)
    for _ in range(200):  # random vertices and interior points of every box
        vertex = eps * rng.choice([-1.0, 1.0], size=X.shape)
        inside = eps * rng.uniform(-1, 1, size=X.shape)
        for delta in (vertex, inside):
            assert np.all(y * network.forward(X + delta) >= result.lower - tol)


def test_status_follows_the_sign_of_the_margin_and_decide_only_agrees():
    X, y = make_classification(40, 5, seed=21)
    network = random_network(5, 10, bias=True, seed=22)
    y = labelled(network, X) * np.where(np.arange(40) % 7 == 0, -1.0, 1.0)  # a few misclassified points
    eps = 0.15
    exact = exact_robustness(network, X, y, eps)
    robust, not_robust = exact.status == "robust", exact.status == "not_robust"
    assert robust.any() and not_robust.any() and exact.n_undecided == 0
    assert np.all(exact.margin[robust] > 0) and np.all(exact.lower[robust] > 0)
    assert np.all(exact.lower[not_robust] <= 0)
    assert np.all(exact.margin[not_robust] <= 1e-6 * output_scale(network, X, eps)[not_robust])
    assert exact.robust_accuracy == pytest.approx(np.mean(exact.margin > 0))
    decided = exact_robustness(network, X, y, eps, decide_only=True)
    check_delta_reproduces(network, X, y, decided)
    again = exact_robustness(network, X, y, eps, decide_only=True)  # same inputs and seed: same numbers
    for field in ("value", "lower", "delta", "status", "method"):
        assert np.array_equal(getattr(again, field), getattr(decided, field))
    assert np.array_equal(decided.status, exact.status)
    assert decided.robust_accuracy == exact.robust_accuracy
    assert np.all(decided.lower <= exact.margin + 1e-9) and np.all(decided.margin >= exact.margin - 1e-9)
    # no LP or MILP for what attacks and closed-form bounds decide
    assert decided.summary()["settled_by"]["milp"] <= exact.summary()["settled_by"]["milp"]


def test_undecided_points_are_never_counted_robust():
    d = 10
    network = random_network(d, 24, bias=False, seed=31)
    X = np.random.default_rng(32).standard_normal((30, d))
    y, eps = labelled(network, X), 0.3
    exact = exact_robustness(network, X, y, eps)
    rushed = exact_robustness(network, X, y, eps, time_limit=1e-9)
    undecided = rushed.status == "undecided"
    assert undecided.any() and rushed.n_undecided == undecided.sum()
    assert np.all(np.isin(rushed.method[undecided], ("lp", "milp")))
    assert np.all(rushed.lower[rushed.status == "robust"] > 0)
    assert np.all(exact.margin[rushed.status == "robust"] > 0)
    assert np.all(rushed.margin[rushed.status == "not_robust"] <= 1e-6 * output_scale(network, X, eps).max())
    assert rushed.robust_accuracy == pytest.approx(np.mean(rushed.status == "robust"))
    assert rushed.robust_accuracy <= exact.robust_accuracy <= rushed.robust_accuracy_upper
    assert rushed.robust_accuracy < rushed.robust_accuracy_upper
    squared = exact_robustness(network, X, network.forward(X), eps, loss="squared", time_limit=1e-9)
    assert (squared.status == "undecided").any()
    assert np.all(squared.upper >= squared.worst_error)


def test_lp_budget_stops_the_same_points_whatever_the_time_and_never_claims_robustness():
    """lp_limit is a budget of LP solves per point: the points it stops are undecided (never robust), the same
    ones with any time limit that does not bind, fewer with a larger budget; without it they are decided."""
    d = 10
    network = random_network(d, 24, bias=False, seed=31)
    X = np.random.default_rng(32).standard_normal((30, d))
    y, eps = labelled(network, X), 0.3
    exact = exact_robustness(network, X, y, eps, decide_only=True)
    assert exact.summary()["settled_by"]["milp"] > 0 and exact.n_undecided == 0
    budgets = {}
    for lp_limit in (1, 3, 10**6):
        runs = [exact_robustness(network, X, y, eps, decide_only=True, lp_limit=lp_limit, time_limit=limit)
                for limit in (100.0, 1000.0)]
        assert np.array_equal(runs[0].status, runs[1].status) and np.array_equal(runs[0].lower, runs[1].lower)
        budgets[lp_limit] = runs[0]
        assert np.all(exact.status[runs[0].status == "robust"] == "robust")
    assert budgets[1].n_undecided > budgets[3].n_undecided >= budgets[10**6].n_undecided == 0
    assert np.array_equal(budgets[10**6].status, exact.status)
    with pytest.raises(ValueError, match="lp_limit"):
        exact_robustness(network, X, y, eps, lp_limit=0)


def test_results_do_not_depend_on_units():
    d = 5
    network = random_network(d, 12, bias=True, seed=41)
    X = np.random.default_rng(42).standard_normal((20, d))
    y, eps = labelled(network, X), 0.3
    base = exact_robustness(network, X, y, eps)
    for factor in (1e-3, 255.0, 1e3):
        U = network.U.copy()
        U[:d] /= factor  # inputs in other units: same pre-activations
        scaled = ReLUNetwork(U=U, alpha=network.alpha * 7.0, bias=True)
        other = exact_robustness(scaled, X * factor, y, eps * factor)
        assert np.array_equal(other.status, base.status)
        tolerance = 1e-9 * output_scale(scaled, X * factor, eps * factor).max()
        assert np.allclose(other.margin, 7.0 * base.margin, rtol=1e-6, atol=tolerance)


def test_theorem4_closed_form_where_the_network_is_linear_on_the_box():
    d = 4
    network = random_network(d, 6, bias=False, seed=51)
    X = 3 * np.random.default_rng(52).standard_normal((60, d))
    y, eps = labelled(network, X), 0.05
    certified = certified_linear_region(network, X, eps)
    assert certified.sum() > 10
    result = exact_robustness(network, X, y, eps)
    terms, _ = robust_loss_terms(network, X, y, eps)  # (1 - worst margin)_+ where certified
    shown = certified & (terms > 0)
    assert np.allclose(1 - result.margin[shown], terms[shown], atol=1e-9)
    assert np.all(result.method[certified] != "milp")


def test_eps_zero_is_the_clean_margin():
    network = random_network(3, 5, bias=True, seed=61)
    X = np.random.default_rng(62).standard_normal((10, 3))
    y = np.where(np.arange(10) % 2, 1.0, -1.0)
    result = exact_robustness(network, X, y, 0.0)
    assert np.allclose(result.margin, y * network.forward(X))
    assert np.all(result.delta == 0) and result.exact.all()
    assert np.array_equal(result.status == "robust", y * network.forward(X) > 0)


def test_bad_input_is_rejected_with_clear_errors():
    network = random_network(3, 4, bias=False, seed=71)
    X, y = np.zeros((4, 3)), np.array([1.0, -1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="labels in"):
        exact_robustness(network, X, np.array([0.0, 1.0, 1.0, -1.0]), 0.1)
    with pytest.raises(ValueError, match="features"):
        exact_robustness(network, np.zeros((4, 2)), y, 0.1)
    with pytest.raises(ValueError, match="eps"):
        exact_robustness(network, X, y, -1.0)
    with pytest.raises(ValueError, match="decide_only"):
        exact_robustness(network, X, y, 0.1, loss="squared", decide_only=True)
    with pytest.raises(ValueError, match="time_limit"):
        exact_robustness(network, X, y, 0.1, time_limit=0)
    with pytest.raises(ValueError, match="loss"):
        exact_robustness(network, X, y, 0.1, loss="logistic")
    with pytest.raises(TypeError, match="ReLUNetwork"):
        exact_robustness(object(), X, y, 0.1)
    with pytest.raises(AttributeError, match="worst_error"):
        exact_robustness(network, X, y, 0.1).worst_error


def test_binomial_interval_is_wilsons():
    for successes, n in ((0, 10), (3, 10), (250, 500), (499, 500), (1000, 2000)):
        low, high = binomial_interval(successes, n)
        reference = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-12)
        assert low <= successes / n <= high
    assert np.diff(binomial_interval(250, 500, 0.99)) > np.diff(binomial_interval(250, 500, 0.95))
    with pytest.raises(ValueError, match="successes"):
        binomial_interval(11, 10)


def test_zero_width_network_is_reported_not_robust():
    network = ReLUNetwork(U=np.zeros((3, 0)), alpha=np.zeros(0))
    X, y = np.random.default_rng(0).standard_normal((5, 3)), np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    result = exact_robustness(network, X, y, 0.1)
    assert np.all(result.margin == 0) and np.all(result.status == "not_robust") and result.robust_accuracy == 0
