"""The exact presolve drops only patterns whose robust cone (11) is {0}, and changes no optimum."""

import time

import cvxpy as cp
import numpy as np
import pytest

from conftest import make_classification
from convexadv import ConvexProgram, sample_patterns
from convexadv.solvers.cvxpy_backend import build_problem, solve_with_cvxpy
from convexadv.solvers.fast import solve_fast
from convexadv.solvers import presolve
from convexadv.solvers.presolve import PresolveTimeoutError, cone_margins, pattern_margin, trivial_patterns


@pytest.mark.parametrize("bias", [False, True])
def test_presolve_keeps_the_optimum(bias):
    X, y = make_classification(30, 3, seed=9)
    X = X + 1.0  # mostly positive data, as pixels: many cones collapse to {0}
    eps = 0.3
    patterns = sample_patterns(X, 30, eps=eps, bias=bias, rng=0, sampler="paper")
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
    patterns = sample_patterns(X, 12, eps=eps, rng=1, sampler="paper")
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
    patterns = sample_patterns(X, 16, eps=0.1, bias=bias, rng=3, sampler="paper")
    program = ConvexProgram.from_data(X, y, patterns, eps=0.1, beta=1e-3, bias=bias)
    bounds, weights = presolve.dual_margin_bounds(program)
    exact = np.array([pattern_margin(program, i)[0] for i in range(program.n_patterns)])
    finite = np.isfinite(exact)  # inf: the bias alone satisfies (11), and the bound says so too
    assert np.all(bounds[~finite] == np.inf)
    assert np.all(bounds[finite] >= exact[finite] - 1e-9 * np.maximum(1, np.abs(exact[finite])))
    assert np.allclose(weights.sum(axis=0)[finite], 1.0) and np.all(weights >= 0)
    assert (bounds < program.eps).sum() > 0


def pixel_images(n, d, seed):
    """Pixel-like data on 0-255: positive, correlated features (a brightness plus a few smooth modes)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.25, 0.75, size=(n, 1)) + 0.1 * rng.standard_normal((n, 3)) @ rng.standard_normal((3, d))
    return np.round(np.clip(images + 0.05 * rng.standard_normal((n, d)), 0, 1) * 255)


def clarabel_margin(program, i):
    """The margin LP of pattern i by cvxpy + Clarabel (independent of HiGHS and of the row generation)."""
    s = np.where(program.patterns[:, i], 1.0, -1.0)
    u, t = cp.Variable(program.d), cp.Variable()
    problem = cp.Problem(cp.Maximize(t), [cp.multiply(s, program.X @ u) >= t,
                                          cp.norm1(u[program.perturbable]) <= 1])
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    return problem.value


@pytest.mark.parametrize("case", ["zero rows", "repeated rows", "one-signed first rows"])
def test_warm_started_row_generation_on_edge_cases(case, monkeypatch):
    """Row generation re-solves one HiGHS model from its previous basis. On data with zero rows (margin
    0), with repeated rows, and with a bias and a first subset of one sign only (the LP is unbounded until
    rows of the other sign come in), its bounds bracket Clarabel's margin and its direction attains it."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((90, 4)) + 0.5
    if case == "zero rows":
        X[::7] = 0.0
    if case == "repeated rows":
        X = np.repeat(X[:30], 3, axis=0)
    bias = case == "one-signed first rows"
    y = np.where(np.arange(90) % 2, 1.0, -1.0)
    program = ConvexProgram.from_data(X, y, sample_patterns(X, 6, bias=bias, rng=0, sampler="paper"),
                                      beta=1e-3, bias=bias)
    monkeypatch.setattr(presolve, "ROW_BLOCK", 10)
    for i in range(program.n_patterns):
        signs = program.patterns[:, i]
        first = np.flatnonzero(signs)[:10] if bias else None
        upper, direction, lower = pattern_margin(program, i, first_rows=first)
        if signs.all() or not signs.any():  # with a bias, the bias alone satisfies every row
            assert bias and upper == lower == np.inf
            continue
        exact = clarabel_margin(program, i)
        assert upper >= exact - 1e-7 and lower <= exact + 1e-7
        if case == "zero rows":  # a row 0 >= t: the margin is exactly 0, attained by u = 0 (lower -inf)
            assert upper == pytest.approx(0.0, abs=1e-9)
            continue
        assert lower == pytest.approx(exact, rel=1e-6, abs=1e-9)
        s = np.where(signs, 1.0, -1.0)
        attained = (s * (program.X @ direction)).min() / np.abs(direction[program.perturbable]).sum()
        assert attained == pytest.approx(lower, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("eps", [0.0, 8.0])
def test_row_generation_on_pixel_data_in_both_units(eps, bias, monkeypatch):
    """0-255 and 0-1 pixels give the same decisions and directions; row generation (40 rows per round)
    agrees with the full LP, and its bounds bracket Clarabel's margin."""
    X = pixel_images(240, 12, 0)
    y = np.where(np.arange(240) % 2, 1.0, -1.0)
    patterns = sample_patterns(X, 10, eps=eps, bias=bias, rng=1, sampler="paper")
    program = ConvexProgram.from_data(X, y, patterns, eps=eps, beta=1e-3, bias=bias)
    unit = ConvexProgram.from_data(X / 255, y, patterns, eps=eps / 255, beta=1e-3, bias=bias)
    full = cone_margins(program)
    monkeypatch.setattr(presolve, "ROW_BLOCK", 40)
    pixels, units = cone_margins(program), cone_margins(unit)
    for trivial, interior in (pixels, units):
        assert np.array_equal(trivial, full[0])
        assert np.array_equal(interior.any(axis=0), full[1].any(axis=0))
    # the same directions in both units: the bias coordinates carry the unit (x^T u scales with it)
    rescaled = units[1].copy()
    rescaled[~program.perturbable] *= 255
    assert np.allclose(rescaled, pixels[1], rtol=1e-6, atol=1e-9 * np.abs(pixels[1]).max())
    assert eps == 0 or 0 < full[0].sum() < full[0].size
    for i in range(program.n_patterns):
        upper, direction, lower = pattern_margin(program, i)
        exact = clarabel_margin(program, i) if np.isfinite(upper) else np.inf
        if np.isfinite(exact):
            assert upper >= exact - 1e-9 * 255 and lower <= exact + 1e-6
            if not full[0][i]:
                assert lower == pytest.approx(exact, rel=1e-6)


def test_row_generation_ends_when_highs_is_loose(monkeypatch):
    """Issue 9: a maximiser that violates rows already in the LP by HiGHS's tolerance must not loop forever.

    The LP's reported value is raised by 1e-6 (internal units) above what its maximiser achieves,
    as a loose solve would; row generation must still end within its bound of n rounds."""
    X = pixel_images(150, 10, 2) / 255
    y = np.where(np.arange(150) % 2, 1.0, -1.0)
    program = ConvexProgram.from_data(X, y, sample_patterns(X, 6, rng=3), beta=1e-3)
    exact = [clarabel_margin(program, i) for i in range(program.n_patterns)]
    monkeypatch.setattr(presolve, "ROW_BLOCK", 8)
    solve = presolve._MarginLP.solve
    calls = []

    def loose(lp, time_limit):
        calls.append(1)
        assert len(calls) <= program.n, "row generation exceeded its bound of n rounds"
        value, u, lam = solve(lp, time_limit)
        return value + 1e-6, u, lam

    monkeypatch.setattr(presolve._MarginLP, "solve", loose)
    for i in range(program.n_patterns):
        calls.clear()
        upper, _, lower = pattern_margin(program, i)
        assert lower <= exact[i] + 1e-9 and upper >= exact[i] - 1e-9  # still valid bounds


def test_deadline_is_honoured():
    X = pixel_images(60, 6, 4)
    y = np.where(np.arange(60) % 2, 1.0, -1.0)
    for eps in (0.0, 5.0):
        program = ConvexProgram.from_data(X, y, sample_patterns(X, 5, eps=eps, rng=0, sampler="paper"), eps=eps)
        past = time.perf_counter() - 1.0
        with pytest.raises(PresolveTimeoutError, match="ran out of time"):
            cone_margins(program, deadline=past)
        with pytest.raises(TimeoutError):
            pattern_margin(program, 0, deadline=past)
        later = cone_margins(program, deadline=time.perf_counter() + 3600)
        now = cone_margins(program)
        assert np.array_equal(later[0], now[0]) and np.array_equal(later[1], now[1])
    with pytest.raises(PresolveTimeoutError):
        trivial_patterns(program, deadline=past)


@pytest.mark.parametrize("bias", [False, True])
def test_least_squares_directions_replace_the_lps_of_algorithm_1(bias, monkeypatch):
    """With eps = 0 above LP_MAX_ENTRIES (here forced to 0) least-squares directions replace the margin
    LPs: no LP at all, every direction strictly inside its cone of (8), and the fast solver certifies
    the same optimum from them."""
    X = pixel_images(120, 10, 5)
    y = np.where(np.arange(120) % 3, 1.0, -1.0)
    patterns = sample_patterns(X, 8, bias=bias, rng=2, sampler="paper")
    program = ConvexProgram.from_data(X, y, patterns, beta=1e-3, bias=bias)
    trivial_lp, interior_lp = cone_margins(program)
    reference = solve_fast(program)
    monkeypatch.setattr(presolve, "LP_MAX_ENTRIES", 0)
    monkeypatch.setattr(presolve._MarginLP, "solve", lambda *args: pytest.fail("an LP was solved"))
    trivial, interior = cone_margins(program)
    assert np.array_equal(trivial, trivial_lp)
    assert np.array_equal(interior.any(axis=0), interior_lp.any(axis=0))
    for i in np.flatnonzero(interior.any(axis=0)):
        slack = program.constraint_slack(interior[:, [i]] * np.ones((1, program.n_patterns)))[:, i]
        assert slack.min() > 0
    solution = solve_fast(program)
    assert solution.status == reference.status == "optimal"
    assert solution.objective >= reference.lower_bound - 1e-12
    assert reference.objective >= solution.lower_bound - 1e-12


@pytest.mark.parametrize("eps", [0.0, 0.01])
def test_parallel_margin_lps_decide_as_one_thread_does(eps, monkeypatch):
    """The patterns' LPs run in threads (HiGHS releases the GIL): the same decisions and directions, to the
    bit, as one after another, and a Snakemake job's OMP_NUM_THREADS caps the threads."""
    X, y = make_classification(120, 6, seed=21)
    patterns = sample_patterns(X, 12, eps=eps, rng=2, sampler="paper")
    program = ConvexProgram.from_data(X, y, patterns, eps=eps, beta=1e-3)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert presolve.lp_threads(12) == 1
    serial = cone_margins(program)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    threads = presolve.lp_threads(12)
    assert 1 <= threads <= 4 and presolve.lp_threads(1) == 1
    parallel = cone_margins(program)
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])
    assert serial[1].any(axis=0).sum() > 0  # interior directions found: the LPs ran


@pytest.mark.parametrize("seed, eps, bias, n_patterns", [(12142, 0.06370512909478879, True, 5),
                                                         (12158, 0.09055657637455276, False, 7)])
def test_margin_lp_left_undecided_by_its_warm_start_is_solved_cold(seed, eps, bias, n_patterns, monkeypatch):
    """A few points repeated with noise 1e-6 (the fuzz family "near-duplicates"): HiGHS's warm-started,
    unscaled dual simplex ends one margin LP with status "Unknown" (the robust sampler raised RuntimeError);
    one retry from scratch with HiGHS's scaling decides it, and the sampler's patterns all have
    non-trivial robust cones (11)."""
    retries = []
    clear = presolve.highspy.Highs.clearSolver
    monkeypatch.setattr(presolve.highspy.Highs, "clearSolver", lambda self: retries.append(1) or clear(self))
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(30, 160)), int(rng.integers(4, 40))
    base = rng.standard_normal((max(3, n // 10), d))
    X = base[rng.integers(0, base.shape[0], n)] + 1e-6 * rng.standard_normal((n, d))
    y = np.where(rng.uniform(size=n) < 0.5, 1.0, -1.0)
    patterns = sample_patterns(X, n_patterns, eps=eps, bias=bias, rng=seed - 12000, sampler="robust", y=y)
    assert retries
    program = ConvexProgram.from_data(X, y, patterns, eps=eps, bias=bias)
    assert not cone_margins(program)[0].any()
