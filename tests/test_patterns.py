import numpy as np
import pytest

from convexadv import confidence_level, patterns_needed, sample_patterns


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
    robust = sample_patterns(X, 200, eps=0.3, n_perturbations=4, rng=0)
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
