"""The structured interior-point solver of solvers/fast.py against Clarabel (through cvxpy)."""

import dataclasses

import numpy as np
import pytest
import torch

from convexadv.patterns import sample_patterns
from convexadv.programs import ConvexProgram
from convexadv.solvers import solve_program
from convexadv.solvers.cvxpy_backend import solve_with_cvxpy
from convexadv.solvers.fast import _jordan, _jordan_solve, _nt_scaling, _Structure, solve_fast
from convexadv.solvers.presolve import cone_margins

N, D, P, BETA, TOL = 16, 3, 5, 1e-2, 1e-6


def make_program(loss, eps, bias, *, n=N, d=D, n_patterns=P, beta=BETA, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, d))
    y = np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    if loss == "squared":
        y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    patterns = sample_patterns(X, n_patterns, eps=eps, bias=bias, rng=seed + 1)
    return ConvexProgram.from_data(X, y, patterns, loss=loss, eps=eps, beta=beta, bias=bias)


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("eps", [0.0, 0.03], ids=["eq8", "robust"])
@pytest.mark.parametrize("loss", ["hinge", "squared"])
def test_agrees_with_clarabel_and_certifies(loss, eps, bias):
    program = make_program(loss, eps, bias)
    reference = solve_with_cvxpy(program, solver="clarabel")
    sol = solve_fast(program, tol=TOL)
    assert sol.status == "optimal", sol.info["message"]
    assert sol.solver == "fast" and sol.relative_gap <= TOL
    # weak duality: lower bound <= optimum <= objective of a feasible point
    assert sol.lower_bound <= reference.objective * (1 + 1e-7)
    assert reference.objective <= sol.objective * (1 + 1e-6)
    assert abs(sol.objective - reference.objective) <= 2 * TOL * abs(reference.objective)
    # every iterate is strictly feasible: (8) / (11) hold up to rounding
    U = np.hstack([sol.V, sol.W])
    assert sol.max_violation <= 1e-12 * np.abs(program.X).max() * np.abs(U).sum(axis=0).max()
    assert sol.objective == program.objective(sol.V, sol.W)


def test_larger_robust_program_with_many_patterns():
    program = make_program("hinge", 0.02, True, n=60, d=4, n_patterns=24, beta=1e-3, seed=4)
    reference = solve_with_cvxpy(program, solver="clarabel")
    sol = solve_fast(program, tol=1e-5)
    assert sol.status == "optimal", sol.info["message"]
    assert sol.lower_bound <= reference.objective * (1 + 1e-7) and sol.objective <= reference.objective * (1 + 1e-5)


def test_bound_is_valid_when_stopped_early():
    program = make_program("hinge", 0.03, False)
    reference = solve_with_cvxpy(program, solver="clarabel")
    sol = solve_fast(program, tol=1e-9, max_iter=3)
    assert sol.status == "iteration_limit" and sol.iterations == 3
    assert sol.lower_bound <= reference.objective <= sol.objective
    with pytest.raises(Exception, match="iteration_limit"):
        solve_program(program, solver="fast", tol=1e-9, max_iter=3)


def test_time_limit_gives_non_optimal_status():
    sol = solve_fast(make_program("squared", 0.03, True), tol=1e-12, time_limit=0.0)
    assert sol.status == "time_limit"
    assert np.isfinite(sol.objective) and sol.lower_bound <= sol.objective


def test_deterministic_on_cpu():
    program = make_program("hinge", 0.03, True)
    a, b = solve_fast(program), solve_fast(program)
    assert np.array_equal(a.V, b.V) and np.array_equal(a.W, b.W)
    assert a.objective == b.objective and a.lower_bound == b.lower_bound and a.iterations == b.iterations


def test_warm_start_over_beta_needs_fewer_iterations():
    first = solve_fast(make_program("hinge", 0.03, False), tol=TOL)
    program = make_program("hinge", 0.03, False, beta=1.1 * BETA)
    cold = solve_fast(program, tol=TOL)
    warm = solve_fast(program, tol=TOL, warm_start=first)
    assert cold.status == warm.status == "optimal"
    assert warm.iterations < cold.iterations
    assert abs(warm.objective - cold.objective) <= 2 * TOL * abs(cold.objective)


@pytest.mark.parametrize("new_eps", [0.01, 0.06])
def test_warm_start_from_another_eps(new_eps):
    """A solution for another eps may violate this eps's (11): the start must still be feasible."""
    base = make_program("hinge", 0.03, True)
    first = solve_fast(base, tol=TOL)
    program = dataclasses.replace(base, eps=new_eps)
    reference = solve_with_cvxpy(program, solver="clarabel")
    warm = solve_fast(program, tol=TOL, warm_start=first)
    assert warm.status == "optimal"
    U = np.hstack([warm.V, warm.W])
    assert warm.max_violation <= 1e-12 * np.abs(program.X).max() * np.abs(U).sum(axis=0).max()
    assert warm.lower_bound <= reference.objective * (1 + 1e-7)
    assert abs(warm.objective - reference.objective) <= 2 * TOL * abs(reference.objective)


def test_warm_start_rejects_other_patterns():
    other = solve_fast(make_program("hinge", 0.0, False, seed=5))
    with pytest.raises(ValueError, match="patterns"):
        solve_fast(make_program("hinge", 0.0, False), warm_start=other)


def test_bad_arguments():
    program = make_program("hinge", 0.0, False)
    with pytest.raises(ValueError, match="tol"):
        solve_fast(program, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        solve_fast(program, max_iter=0)


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


@pytest.mark.parametrize("eps", [0.0, 0.03])
def test_newton_system_is_solved_exactly(eps):
    """The structured elimination solves (P + A^T D A + E^T W^-2 E) dx = r, against a dense solve."""
    program = make_program("squared", eps, True)
    trivial, interior = cone_margins(program)
    structure = _Structure(program.with_patterns(program.patterns[:, ~trivial]), torch.device("cpu"),
                           torch.float64)
    x = structure.start(interior[:, ~trivial])
    gen = torch.Generator().manual_seed(0)
    rows = structure.rows(x)
    weights = {k: torch.rand(v.shape, generator=gen, dtype=torch.float64) / v for k, v in rows.items()}
    cones = structure.cones(x)
    z_cone = cones.clone()
    z_cone[:, 0] *= 1.5
    z_cone[:, 1:] *= torch.rand(z_cone[:, 1:].shape, generator=gen, dtype=torch.float64)
    W_inv, W, lam, inv2, schur = _nt_scaling(cones, z_cone)
    assert torch.allclose(lam, torch.einsum("jab,jb->ja", W_inv, cones))  # W z = W^-1 s
    solve = structure.factor(weights, inv2, schur)
    shapes = [f.shape for f in x.fields()]
    sizes = [f.numel() for f in x.fields()]

    def unflatten(v):
        parts = torch.split(v, sizes)
        return type(x)(*(p.reshape(s) for p, s in zip(parts, shapes)))

    def product(v):
        out = structure.newton_product(weights, inv2, unflatten(v))
        return torch.cat([f.reshape(-1) for f in out.fields()])

    H = torch.stack([product(e) for e in torch.eye(sum(sizes), dtype=torch.float64)], dim=1)
    r = torch.randn(sum(sizes), generator=gen, dtype=torch.float64)
    mine = torch.cat([f.reshape(-1) for f in solve(unflatten(r)).fields()])
    assert torch.allclose(mine, torch.linalg.solve(H, r), rtol=1e-9, atol=1e-12)


def test_jordan_algebra_helpers():
    gen = torch.Generator().manual_seed(1)
    lam = torch.rand(4, 5, generator=gen, dtype=torch.float64)
    lam[:, 0] += 3  # interior of the cone
    v = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    assert torch.allclose(_jordan(lam, _jordan_solve(lam, v)), v)
