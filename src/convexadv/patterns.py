"""Sampling the ReLU activation patterns D_i (Algorithms 1 and 2) and Theorem 2.

A pattern is the diagonal of D_i = diag([X a_i >= 0]), stored as a column of an
(n, P) boolean array.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .programs import perturbable_columns, validate_eps, validate_inputs, with_bias_column

#: how many candidate directions a_i are drawn per requested pattern before giving up
_MAX_DRAWS_PER_PATTERN = 50


def sample_patterns(
    X,
    n_patterns: int,
    *,
    eps: float = 0.0,
    n_perturbations: int = 4,
    bias: bool = False,
    rng=None,
) -> np.ndarray:
    """Sample ``n_patterns`` distinct activation patterns of X.

    eps == 0: Algorithm 1, D_i = diag([X a_i >= 0]) with a_i ~ N(0, I_d).
    eps > 0:  Algorithm 2, each direction a_i also gives the patterns of
    ``n_perturbations - 1`` randomly perturbed copies X + eps * sgn(R_ij)
    (S = ``n_perturbations`` in the paper; the bias column is never perturbed).

    Repeated patterns are discarded, keeping the order in which they were first
    drawn. If fewer than ``n_patterns`` distinct patterns turn up within
    50 * n_patterns directions, all that were found are returned with a warning.
    The result is deterministic for a given ``rng`` (seed or Generator).

    Returns a boolean array of shape (n, P).
    """
    X = with_bias_column(validate_inputs(X), bias)
    eps = validate_eps(eps)
    if int(n_patterns) != n_patterns or n_patterns < 1:
        raise ValueError(f"n_patterns must be a positive integer, got {n_patterns!r}")
    n_patterns = int(n_patterns)
    if int(n_perturbations) != n_perturbations or n_perturbations < 1:
        raise ValueError(f"n_perturbations must be a positive integer, got {n_perturbations!r}")
    copies = 1 if eps == 0 else int(n_perturbations)
    rng = np.random.default_rng(rng)
    n, d = X.shape
    perturbable = perturbable_columns(d, bias)

    seen: set[bytes] = set()
    found: list[np.ndarray] = []
    max_directions = _MAX_DRAWS_PER_PATTERN * n_patterns
    drawn = 0
    while len(found) < n_patterns and drawn < max_directions:
        batch = min(max(2 * (n_patterns - len(found)), 16), max_directions - drawn)
        A = rng.standard_normal((d, batch))
        # candidates[j] holds the patterns of copy j (j = 0: clean data) for all directions
        candidates = [X @ A >= 0]
        for _ in range(copies - 1):
            noise = np.sign(rng.standard_normal((n, d))) * perturbable
            candidates.append((X + eps * noise) @ A >= 0)
        drawn += batch
        for i in range(batch):  # Algorithm 2's order: direction i, then its copies j
            for copy in candidates:
                key = np.packbits(copy[:, i]).tobytes()
                if key not in seen:
                    seen.add(key)
                    found.append(copy[:, i])
                    if len(found) == n_patterns:
                        break
            if len(found) == n_patterns:
                break
    if len(found) < n_patterns:
        warnings.warn(
            f"only {len(found)} distinct activation patterns found in {drawn} random directions "
            f"(asked for {n_patterns}); using those",
            RuntimeWarning,
            stacklevel=2,
        )
    return np.stack(found, axis=1)


def patterns_needed(n: int, psi: float, xi: float) -> int:
    """Smallest P_s with P_s >= (n + 1) / (psi * xi) - 1 (Theorem 2)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    for name, value in (("psi", psi), ("xi", xi)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value}")
    return max(1, math.ceil((n + 1) / (psi * xi) - 1 - 1e-12))


def confidence_level(n: int, n_patterns: int) -> float:
    """The product psi * xi that Theorem 2 guarantees for P_s patterns: (n + 1) / (P_s + 1).

    For n = 40 and P_s = 128 this is 0.318, the value quoted in section VII-A.
    """
    if n < 1 or n_patterns < 1:
        raise ValueError(f"n and n_patterns must be >= 1, got n={n}, n_patterns={n_patterns}")
    return (n + 1) / (n_patterns + 1)
