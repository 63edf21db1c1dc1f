import numpy as np
import pytest


def make_classification(n, d, seed):
    """Random points in [-1, 1]^d labelled by a random ReLU teacher, as in section VII-A."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    teacher = np.maximum(X @ rng.standard_normal((d, 3)) + 0.2, 0) @ np.array([1.0, -1.0, 0.7])
    y = np.where(teacher >= np.median(teacher), 1.0, -1.0)
    return X, y


def make_regression(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * X[:, 0] + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.fixture
def classification_2d():
    return make_classification(24, 2, seed=3)
