"""The exact presolve drops only patterns whose robust cone (11) is {0}, and changes no optimum."""

import cvxpy as cp
import numpy as np
import pytest

from conftest import make_classification
from convexadv import ConvexProgram, sample_patterns
from convexadv.solvers.cvxpy_backend import build_problem, solve_with_cvxpy
from convexadv.solvers import presolve
from convexadv.solvers.presolve import cone_margins, pattern_margin, trivial_patterns


@pytest.mark.parametrize("bias", [False, True])
def test_presolve_keeps_the_optimum(bias):
    X, y = make_classification(30, 3, seed=9)
    X = X + 1.0  # mostly positive data, as pixels: many cones collapse to {0}
    eps = 0.3
    patterns = sample_patterns(X, 30, eps=eps, bias=bias, rng=0)
    program = ConvexProgram.from_data(X, y, patterns, eps=eps, beta=1e-3, bias=bias)
    trivial = trivial_patterns(program)
    assert 0 < trivial.sum() < trivial.size
    presolved = solve_with_cvxpy(program, solver="clarabel")
    assert presolved.info["patterns_dropped_by_presolve"] == trivial.sum()
    problem, V, W = build_problem(program)  # the full program, no presolve
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    assert presolved.objective == pytest.approx(problem.value, rel=1e-6)
    # the full solve puts (numerically) nothing on the dropped patterns
    dropped = np.abs(np.hstack([V.value[:, trivial], W.value[:, trivial]])).max()
    assert dropped <= 1e-6 * np.abs(np.hstack([V.value, W.value])).max()


def test_margin_of_a_known_cone():
    # x_1 = (1, 0), x_2 = (0, 1), both active: max_{||u||_1 <= 1} min(u_1, u_2) = 1/2
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    program = ConvexProgram.from_data(X, np.array([1.0, -1.0]), np.ones((2, 1), bool), eps=0.4)
    upper, direction, lower = pattern_margin(program, 0)
    assert upper == pytest.approx(0.5) and lower == pytest.approx(0.5)
    assert direction == pytest.approx([0.5, 0.5])
    assert not trivial_patterns(program)[0]
    assert trivial_patterns(ConvexProgram.from_data(X, np.array([1.0, -1.0]), np.ones((2, 1), bool), eps=0.6))[0]


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_row_generation_gives_the_full_lp_answer(eps, monkeypatch):
    """Margin LPs over growing row subsets decide exactly as the LP over all rows."""
    X, y = make_classification(200, 3, seed=2)
    X = X + 2.0  # with eps = 0.1: 10 of the 12 cones are {0}, 2 have an interior
    patterns = sample_patterns(X, 12, eps=eps, rng=1)
    program = ConvexProgram.from_data(X, y, patterns, eps=eps, beta=1e-3)
    full = [pattern_margin(program, i) for i in range(program.n_patterns)]
    trivial_full, interior_full = cone_margins(program)
    assert eps == 0 or 0 < trivial_full.sum() < trivial_full.size
    monkeypatch.setattr(presolve, "ROW_BLOCK", 15)
    trivial_rows, interior = cone_margins(program)
    assert np.array_equal(trivial_rows, trivial_full)
    assert np.array_equal(interior.any(axis=0), interior_full.any(axis=0))
    for i, (upper, _, lower) in enumerate(full):
        sub_upper, direction, sub_lower = pattern_margin(program, i)
        assert sub_upper >= upper - 1e-9  # a row subset can only raise the LP's optimum
        if not trivial_full[i]:
            assert sub_lower == pytest.approx(lower, rel=1e-6, abs=1e-9)
        if interior[:, i].any():  # a real interior direction: every row of (11) strictly satisfied
            slack = program.constraint_slack(interior[:, [i]] * np.ones((1, program.n_patterns)))[:, i]
            assert slack.min() > 0


@pytest.mark.parametrize("bias", [False, True])
def test_dual_bounds_are_valid_upper_bounds(bias):
    """Every dual point bounds the margin from above (weak duality), and it settles some {0} cones."""
    X, y = make_classification(80, 3, seed=5)
    X = X + 2.0
    patterns = sample_patterns(X, 16, eps=0.1, bias=bias, rng=3)
    program = ConvexProgram.from_data(X, y, patterns, eps=0.1, beta=1e-3, bias=bias)
    bounds, weights = presolve.dual_margin_bounds(program)
    exact = np.array([pattern_margin(program, i)[0] for i in range(program.n_patterns)])
    finite = np.isfinite(exact)  # inf: the bias alone satisfies (11), and the bound says so too
    assert np.all(bounds[~finite] == np.inf)
    assert np.all(bounds[finite] >= exact[finite] - 1e-9 * np.maximum(1, np.abs(exact[finite])))
    assert np.allclose(weights.sum(axis=0)[finite], 1.0) and np.all(weights >= 0)
    assert (bounds < program.eps).sum() > 0
