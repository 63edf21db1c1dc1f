"""The first-order solver of solvers/fast.py against Clarabel (through cvxpy) on small programs."""

import numpy as np
import pytest

from convexadv.patterns import sample_patterns
from convexadv.programs import ConvexProgram
from convexadv.solvers.cvxpy_backend import solve_with_cvxpy
from convexadv.solvers.fast import solve_fast

N, D, P, BETA, TOL = 16, 3, 5, 1e-2, 1e-4


def make_program(loss, eps, bias, *, beta=BETA, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(N, D))
    y = np.where(rng.standard_normal(N) > 0, 1.0, -1.0)
    if loss == "squared":
        y = X @ rng.standard_normal(D) + 0.1 * rng.standard_normal(N)
    patterns = sample_patterns(X, P, eps=eps, bias=bias, rng=seed + 1)
    return ConvexProgram.from_data(X, y, patterns, loss=loss, eps=eps, beta=beta, bias=bias)


def relative_violation(program, sol):
    U = np.hstack([sol.V, sol.W])
    scale = np.abs(program.X).max() * max(np.abs(U).sum(axis=0).max(), 1e-300)
    return sol.max_violation / scale


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("eps", [0.0, 0.03], ids=["eq8", "robust"])
@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_agrees_with_clarabel_and_certifies(loss, eps, bias):
    program = make_program(loss, eps, bias)
    reference = solve_with_cvxpy(program, solver="clarabel")
    sol = solve_fast(program, tol=TOL, max_iter=60_000)
    assert sol.status == "optimal", sol.info["message"]
    assert sol.solver == "fast" and sol.relative_gap <= TOL
    assert abs(sol.objective - reference.objective) <= TOL * abs(reference.objective)
    # weak duality: lower bound <= optimum <= objective of a feasible point (both points are
    # feasible to ~1e-6 relative only, hence the slack on the right)
    assert sol.lower_bound <= reference.objective * (1 + 1e-7) + 1e-12
    assert reference.objective <= sol.objective * (1 + 1e-5)
    assert relative_violation(program, sol) <= 1e-6
    assert sol.objective == program.objective(sol.V, sol.W)


def test_lower_bound_is_valid_even_when_stopped_early():
    program = make_program("hinge", 0.03, False)
    reference = solve_with_cvxpy(program, solver="clarabel")
    sol = solve_fast(program, tol=1e-9, max_iter=64)
    assert sol.status == "iteration_limit"
    assert sol.iterations == 64
    assert sol.lower_bound <= reference.objective * (1 + 1e-7)


def test_time_limit_gives_non_optimal_status():
    program = make_program("squared", 0.03, True)
    sol = solve_fast(program, tol=1e-12, time_limit=0.0)
    assert sol.status == "time_limit"
    assert np.isfinite(sol.objective) and sol.lower_bound <= sol.objective


def test_deterministic_on_cpu():
    program = make_program("hinge", 0.03, True)
    a = solve_fast(program, tol=1e-5, max_iter=3000)
    b = solve_fast(program, tol=1e-5, max_iter=3000)
    assert np.array_equal(a.V, b.V) and np.array_equal(a.W, b.W)
    assert a.objective == b.objective and a.lower_bound == b.lower_bound and a.iterations == b.iterations


def test_warm_start_over_beta_needs_fewer_iterations():
    first = solve_fast(make_program("hinge", 0.0, False, beta=BETA), tol=TOL, max_iter=60_000)
    program = make_program("hinge", 0.0, False, beta=1.1 * BETA)
    cold = solve_fast(program, tol=TOL, max_iter=60_000)
    warm = solve_fast(program, tol=TOL, max_iter=60_000, warm_start=first)
    assert cold.status == warm.status == "optimal"
    assert warm.iterations < cold.iterations
    assert abs(warm.objective - cold.objective) <= 2 * TOL * abs(cold.objective)


def test_warm_start_rejects_other_patterns():
    program = make_program("hinge", 0.0, False)
    other = solve_fast(make_program("hinge", 0.0, False, seed=5), tol=1e-2, max_iter=200)
    with pytest.raises(ValueError, match="patterns"):
        solve_fast(program, warm_start=other)


def test_presolve_drops_trivial_cones_with_a_certificate():
    """Pixel-scale data with a large eps: every robust cone (11) is {0}, so U = 0 is optimal."""
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 255, size=(30, 6))
    y = np.where(rng.standard_normal(30) > 0, 1.0, -1.0)
    patterns = sample_patterns(X, 6, eps=200.0, rng=4)
    program = ConvexProgram.from_data(X, y, patterns, loss="hinge", eps=200.0, beta=1e-4)
    reference = solve_with_cvxpy(program, solver="clarabel")
    sol = solve_fast(program)
    assert sol.status == "optimal" and sol.info["patterns_kept"] == 0
    assert np.all(sol.V == 0) and np.all(sol.W == 0)
    assert sol.objective == pytest.approx(reference.objective, rel=1e-6)
    assert sol.lower_bound == sol.objective
