import hashlib
import warnings

import cvxpy as cp
import numpy as np
import pytest

from convexadv import NoRobustPatternError, confidence_level, pattern_summary, patterns_needed, sample_patterns


def test_algorithm1_patterns_are_distinct_and_match_hyperplanes():
    X = np.random.default_rng(0).standard_normal((30, 4))
    patterns = sample_patterns(X, 25, rng=1)
    assert patterns.shape == (30, 25) and patterns.dtype == bool
    assert len({p.tobytes() for p in patterns.T}) == 25
    assert np.array_equal(patterns, sample_patterns(X, 25, rng=1))
    assert not np.array_equal(patterns, sample_patterns(X, 25, rng=2))


def test_algorithm1_patterns_are_hyperplane_arrangements():
    X = np.random.default_rng(0).standard_normal((20, 2))
    patterns = sample_patterns(X, 10, rng=0)
    # in d = 2 each pattern splits the points by a line through the origin: the
    # active points occupy one contiguous half of the angular order
    angles = np.arctan2(X[:, 1], X[:, 0])
    order = np.argsort(angles)
    for p in patterns.T:
        ring = p[order].astype(int)
        assert np.count_nonzero(np.diff(np.concatenate([ring, ring[:1]]))) <= 2


def test_algorithm2_finds_patterns_of_perturbed_data():
    X = np.random.default_rng(0).standard_normal((40, 3))
    clean = {p.tobytes() for p in sample_patterns(X, 400, rng=0).T}
    robust = sample_patterns(X, 200, eps=0.3, n_perturbations=4, rng=0, sampler="paper")
    assert robust.shape == (40, 200)
    assert len({p.tobytes() for p in robust.T}) == 200
    assert any(p.tobytes() not in clean for p in robust.T)


def test_bias_column_enters_patterns():
    X = np.random.default_rng(0).uniform(1, 2, size=(20, 2))  # all in one quadrant
    # lines through the origin cut points inside one quadrant into at most 2n = 40 sets
    with pytest.warns(RuntimeWarning, match="distinct"):
        without_bias = sample_patterns(X, 60, rng=0)
    assert without_bias.shape[1] <= 40
    # affine lines (a bias input) realise many more
    assert sample_patterns(X, 60, bias=True, rng=0).shape == (20, 60)


def test_too_few_patterns_warns_and_returns_all_found():
    X = np.array([[1.0], [2.0], [-1.0]])  # d = 1: only two patterns exist
    with pytest.warns(RuntimeWarning, match="only 2 distinct"):
        patterns = sample_patterns(X, 5, rng=0)
    assert patterns.shape == (3, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_patterns=0), "n_patterns"),
        (dict(n_patterns=2.5), "n_patterns"),
        (dict(n_patterns=3, eps=-1.0), "eps"),
        (dict(n_patterns=3, eps=0.1, n_perturbations=0), "n_perturbations"),
    ],
)
def test_bad_arguments(kwargs, message):
    X = np.random.default_rng(0).standard_normal((5, 2))
    with pytest.raises(ValueError, match=message):
        sample_patterns(X, **kwargs)


def test_nonfinite_data_rejected():
    X = np.ones((4, 2))
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_patterns(X, 3)


def test_theorem2_confidence():
    assert confidence_level(40, 128) == pytest.approx(0.318, abs=5e-4)
    for n, psi, xi in [(40, 0.5, 0.5), (600, 0.3, 0.1), (10, 1.0, 1.0)]:
        P = patterns_needed(n, psi, xi)
        assert P >= (n + 1) / (psi * xi) - 1 > P - 1 - 1e-9
        assert confidence_level(n, P) <= psi * xi + 1e-12
    with pytest.raises(ValueError, match="psi"):
        patterns_needed(10, 0.0, 0.5)


# ----------------------------------------------------------------------------- paper sampler: unchanged


def _paper_reference_cases():
    """Data and arguments of the reproduction check (a deterministic data set per case)."""
    gauss = np.random.default_rng(123).standard_normal((50, 6))
    pixels = np.round(np.random.default_rng(123).uniform(0, 255, size=(40, 12)))
    return [
        (gauss, dict(n_patterns=30, rng=0)),
        (gauss, dict(n_patterns=30, eps=0.2, rng=1, sampler="paper")),
        (pixels, dict(n_patterns=25, eps=10.0, n_perturbations=3, bias=True, rng=2, sampler="paper")),
        (pixels, dict(n_patterns=500, eps=10.0, rng=3, sampler="paper")),
        (np.array([[1.0], [2.0], [-1.0]]), dict(n_patterns=5, eps=0.5, rng=4, sampler="paper")),
    ]


# SHA-256 of the outputs of these cases (np.packbits(patterns, axis=0) then str(shape), case by case),
# computed with sample_patterns as of commit 03e889e, before the robust sampler was added: Algorithms 1
# and 2 as printed are the paper's reproduction and must not change.
PAPER_DIGEST = "8c14845a2d69da4fcbe9b24e596d6786f8741c96ebec43af327502c8324e8fcb"


def test_paper_sampler_output_is_unchanged():
    digest = hashlib.sha256()
    for X, kwargs in _paper_reference_cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the d = 1 case finds only 2 patterns
            patterns = sample_patterns(X, **kwargs)
        digest.update(np.packbits(patterns, axis=0).tobytes())
        digest.update(str(patterns.shape).encode())
    assert digest.hexdigest() == PAPER_DIGEST


def test_eps_zero_is_algorithm1_whatever_the_sampler():
    X = np.random.default_rng(1).standard_normal((30, 4))
    reference = sample_patterns(X, 12, rng=5)
    assert np.array_equal(reference, sample_patterns(X, 12, rng=5, sampler="robust"))
    assert np.array_equal(reference, sample_patterns(X, 12, rng=5, sampler="paper"))


# ----------------------------------------------------------------------------- robust sampler


def exact_margin(X, pattern, bias):
    """max t s.t. s_k x_k^T u >= t, ||u~||_1 <= 1 by cvxpy + Clarabel: independent of the presolve's HiGHS LPs."""
    s = np.where(pattern, 1.0, -1.0)
    Xb = np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X
    u, t = cp.Variable(Xb.shape[1]), cp.Variable()
    norm = cp.norm1(u[:-1]) if bias else cp.norm1(u)
    problem = cp.Problem(cp.Maximize(t), [cp.multiply(s, Xb @ u) >= t, norm <= 1, t <= 10 * np.abs(X).max()])
    problem.solve(solver="CLARABEL")
    assert problem.status == cp.OPTIMAL
    return problem.value


def pixel_images(n, d, seed, scale=255.0):
    """Pixel-like data: positive, correlated features on [0, scale] (a brightness plus a few smooth modes)."""
    rng = np.random.default_rng(seed)
    modes = rng.standard_normal((3, d))
    images = rng.uniform(0.25, 0.75, size=(n, 1)) + 0.1 * rng.standard_normal((n, 3)) @ modes
    return np.clip(images + 0.05 * rng.standard_normal((n, d)), 0, 1) * scale


ROBUST_CASES = {
    # name: (X, eps, bias)
    "pixels 0-255": (pixel_images(80, 12, 0), 10.0, False),
    "pixels 0-255, bias": (pixel_images(80, 12, 1), 10.0, True),
    "pixels 0-255, wide": (pixel_images(60, 20, 10), 12.0, False),
    "gaussian": (np.random.default_rng(2).standard_normal((60, 5)), 0.05, False),
    "gaussian x 1e3, bias": (1e3 * np.random.default_rng(3).standard_normal((60, 5)), 40.0, True),
}


@pytest.mark.parametrize("case", sorted(ROBUST_CASES))
def test_robust_patterns_have_nontrivial_cones(case):
    X, eps, bias = ROBUST_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fewer than asked is allowed, and said
        patterns = sample_patterns(X, 12, eps=eps, bias=bias, rng=0)
    assert patterns.shape[0] == X.shape[0] and 1 <= patterns.shape[1] <= 12 and patterns.dtype == bool
    assert len({p.tobytes() for p in patterns.T}) == patterns.shape[1]
    assert patterns.any(axis=0).all()  # no all-inactive pattern
    for p in patterns.T:
        if bias and p.all():
            continue  # the bias direction alone satisfies (11): the margin LP is unbounded
        assert exact_margin(X, p, bias) > eps
    # they split the data: more than the all-active pattern alone
    assert (~patterns.all(axis=0)).sum() >= patterns.shape[1] - 1 >= 1
    # and the presolve keeps every one of them
    summary = pattern_summary(X, patterns, eps=eps, bias=bias)
    assert summary.n_usable == patterns.shape[1]


def test_robust_sampler_is_deterministic_and_default_for_eps():
    X = pixel_images(60, 10, 4)
    first = sample_patterns(X, 10, eps=8.0, rng=3)
    assert np.array_equal(first, sample_patterns(X, 10, eps=8.0, rng=np.random.default_rng(3), sampler="robust"))
    paper = sample_patterns(X, 10, eps=8.0, rng=3, sampler="paper")
    assert pattern_summary(X, first, eps=8.0).n_usable == first.shape[1] > pattern_summary(X, paper, eps=8.0).n_usable


@pytest.mark.parametrize("factor", [1 / 255, 1e-3, 1e3])
@pytest.mark.parametrize("bias", [False, True])
def test_robust_sampler_does_not_depend_on_units(factor, bias):
    X = pixel_images(70, 10, 5)
    reference = sample_patterns(X, 10, eps=9.0, bias=bias, rng=1)
    assert np.array_equal(reference, sample_patterns(factor * X, 10, eps=9.0 * factor, bias=bias, rng=1))


def test_robust_sampler_finds_the_split_between_clusters():
    """Two far-apart clusters: with a bias, the pattern that separates them has a large margin."""
    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(0, 0.3, (25, 3)) + [4, 0, 0], rng.normal(0, 0.3, (25, 3)) - [4, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # few patterns are usable within the clusters
        patterns = sample_patterns(X, 6, eps=0.5, bias=True, rng=0)
    cluster = np.arange(50) < 25
    assert any(np.array_equal(p, cluster) or np.array_equal(p, ~cluster) for p in patterns.T)


def test_no_robust_pattern_because_of_a_dark_point():
    X = pixel_images(40, 8, 7)
    X[13] = np.minimum(X[13], 6.0)  # every pixel of image 13 below eps
    with pytest.raises(NoRobustPatternError, match=r"eps=10.*point 13") as info:
        sample_patterns(X, 8, eps=10.0, rng=0)
    assert info.value.limiting_point == 13 and info.value.best_margin == pytest.approx(X[13].max())
    assert sample_patterns(X, 8, eps=10.0, bias=True, rng=0).shape[1] >= 1  # a bias lifts it


def test_no_robust_pattern_exists_on_a_dense_circle():
    """Points evenly spread on the unit circle, no bias: every line through the origin passes within
    angle pi/n of a point, so |x_k^T u| <= sin(pi/n) ||u||_2 <= sin(pi/n) ||u||_1 for some k: no pattern's
    margin exceeds sin(pi/n) ~ 0.016, although every ||x_k||_inf >= 0.7 > eps."""
    n, eps = 200, 0.1
    angles = 2 * np.pi * np.arange(n) / n + 0.1
    X = np.column_stack([np.cos(angles), np.sin(angles)])
    with pytest.raises(NoRobustPatternError, match="eps=0.1") as info:
        sample_patterns(X, 8, eps=eps, rng=0)
    assert info.value.eps == eps and 0 <= info.value.best_margin <= np.sin(np.pi / n) + 1e-9
    assert 0 <= info.value.limiting_point < n and str(info.value.limiting_point) in str(info.value)
    # with a bias only the all-active pattern survives (its cone holds the bias direction), and a warning says so
    with pytest.warns(RuntimeWarning, match="only 1 activation pattern"):
        patterns = sample_patterns(X, 8, eps=eps, bias=True, rng=0)
    assert patterns.shape == (n, 1) and patterns.all()


def test_pattern_summary_counts_against_the_exact_lp():
    X = pixel_images(50, 6, 8)
    eps = 6.0
    patterns = sample_patterns(X, 20, eps=eps, rng=2, sampler="paper")
    patterns = np.column_stack([patterns, np.ones(50, bool), np.zeros(50, bool)])
    usable = np.array([p.any() and exact_margin(X, p, False) > eps * (1 + 1e-6) for p in patterns.T])
    summary = pattern_summary(X, patterns, eps=eps)
    assert summary == (22, usable.sum(), (usable & ~patterns.all(axis=0)).sum())
    assert 0 < summary.n_usable < 22 and summary.n_splitting < summary.n_usable  # the all-active one is usable
    nonempty, full = patterns.any(axis=0), patterns.all(axis=0)  # eps = 0: every non-empty pattern is usable
    assert pattern_summary(X, patterns, eps=0.0) == (22, nonempty.sum(), (nonempty & ~full).sum())


def test_robust_sampler_bad_arguments():
    X = pixel_images(10, 3, 9)
    with pytest.raises(ValueError, match="sampler"):
        sample_patterns(X, 3, eps=1.0, sampler="gaussian")
    with pytest.raises(ValueError, match="targets"):
        sample_patterns(X, 3, eps=1.0, y=np.ones(9))
