"""The exact presolve drops only patterns whose robust cone (11) is {0}, and changes no optimum."""

import cvxpy as cp
import numpy as np
import pytest

from conftest import make_classification
from convexadv import ConvexProgram, sample_patterns
from convexadv.solvers.cvxpy_backend import build_problem, solve_with_cvxpy
from convexadv.solvers.presolve import pattern_margin, trivial_patterns


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
    margin, direction = pattern_margin(program, 0)
    assert margin == pytest.approx(0.5)
    assert direction == pytest.approx([0.5, 0.5])
    assert not trivial_patterns(program)[0]
    assert trivial_patterns(ConvexProgram.from_data(X, np.array([1.0, -1.0]), np.ones((2, 1), bool), eps=0.6))[0]
