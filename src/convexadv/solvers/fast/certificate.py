"""The dual certificate: a valid lower bound on the optimum of (8) / (15) / (18) from the
multipliers of the interior-point iterate (weak duality), exact in floating point up to rounding,
and the refit of the multipliers of (11) that tightens it at the end of ill-conditioned solves."""

from __future__ import annotations

import math

import numpy as np
import torch

from .structure import Structure


def _loss_multipliers(structure: Structure, z: dict):
    """(lam, coef_y, xi): the multipliers of the loss rows projected onto their simple dual constraints
    (hinge: 0 <= lam <= 1 / n, coef_y = -lam y; squared: coef_y the difference of the two rows'; |xi| at
    most eps times the rows' multipliers). lam is None for the squared loss."""
    zR = z["R"].clamp(min=0)
    if structure.hinge:
        lam = zR[:, 1].clamp(max=1.0 / structure.n)
        coef_y = -lam * structure.y
        bound_xi = structure.eps * lam
    else:
        lam = None
        coef_y = zR[:, 0] - zR[:, 1]
        bound_xi = structure.eps * (zR[:, 0] + zR[:, 1])
    xi = (z["am"] - z["ap"]) if structure.dp else coef_y.new_zeros(structure.n, 0)
    return lam, coef_y, torch.maximum(torch.minimum(xi, bound_xi[:, None]), -bound_xi[:, None])


def certified_lower_bound(structure: Structure, z: dict) -> float:
    """A valid lower bound on the optimum from the multipliers z of the rows (weak duality).

    The Lagrangian of (8) / (15) / (18) with multipliers (coef_y, xi) of the loss and mu >= 0 of
    (11) is bounded below in U exactly when every column j has dist(-l_j, eps M_j B_inf) <= beta,
    l_j = sigma_j sum_k d_ik (coef_y_k x_k + xi_k) - sum_k mu_jk s_jk x_k, M_j = sum_k mu_jk.
    The multipliers are projected onto their simple constraints and scaled by the largest
    c <= 1 (hinge) or the best c (squared) meeting this; the dual value at the scaled point is
    returned."""
    mu = z["p"].clamp(min=0)
    lam, coef_y, xi = _loss_multipliers(structure, z)
    ell = structure.lift(coef_y, xi) - structure.X.T @ (mu * structure.SJ)
    shrunk = (ell.abs() - structure.eps * mu.sum(dim=0)[None, :]).clamp(min=0)
    excess = torch.where(structure.pert_mask[:, None], shrunk, ell.abs())
    dist = float(torch.linalg.norm(excess, dim=0).max())
    c_max = math.inf if dist == 0 else structure.beta / dist
    if structure.hinge:
        return float(min(1.0, c_max) * lam.sum())
    linear = float(-(coef_y * structure.y).sum())
    a_needed = torch.maximum(coef_y.abs(), xi.abs().amax(dim=1) / structure.eps) if structure.dp else coef_y.abs()
    quad = float((a_needed ** 2).sum())
    c = min(max(linear / quad, 0.0), c_max) if quad > 0 else (c_max if linear > 0 else 0.0)
    return c * linear - 0.5 * c ** 2 * quad


#: bound on the active-set iterations of each column's refit, per multiplier of the column
NNLS_ITERATIONS = 5
#: the refit is skipped above this operation count (columns x n x d^2, ~1 min on 2 cores): at
#: n = 10,000, d = 3,072 one refit would cost more than an interior-point iteration
REFIT_MAX_OPERATIONS = 1e11


def refit_cone_multipliers(structure: Structure, z: dict) -> dict | None:
    """z with the multipliers mu_j >= 0 of (11) refitted column by column so that l_j (see
    :func:`certified_lower_bound`) is as short as nonnegative least squares over all n rows makes
    it; None when the program is too large for that (REFIT_MAX_OPERATIONS).

    The multipliers of (11) do not enter the dual value, only the constraint dist(-l_j, eps M_j B_inf)
    <= beta, so any mu >= 0 gives a valid bound; where the Newton systems are ill-conditioned (e.g. a
    column of ones beside features of size 1e3) the iterate's mu leave l_j longer than beta and the
    certificate lags the point (rows with multipliers 1e-6 of the column's largest matter there, so every
    row takes part). The refit ignores the eps M_j ball (exact for eps = 0); the caller keeps the larger
    of the two bounds."""
    if structure.J * structure.n * structure.d ** 2 > REFIT_MAX_OPERATIONS:
        return None
    from scipy.optimize import nnls  # here: scipy.optimize takes ~0.6 s to import and most solves never refit

    _, coef_y, xi = _loss_multipliers(structure, z)
    target = structure.lift(coef_y, xi).double().cpu().numpy()  # l_j = target_j - X^T (s_j o mu_j)
    X = structure.X.double().cpu().numpy()
    signs = structure.SJ.double().cpu().numpy()
    refitted = z["p"].clamp(min=0).double().cpu().numpy()
    for j in range(structure.J):
        rows = (X * signs[:, j:j + 1]).T  # (d, n)
        try:
            fitted, residual = nnls(rows, target[:, j], maxiter=NNLS_ITERATIONS * structure.n)
        except RuntimeError:  # the active-set iterations ran out: keep the iterate's multipliers
            continue
        if residual < np.linalg.norm(target[:, j] - rows @ refitted[:, j]):
            refitted[:, j] = fitted
    return {**z, "p": torch.as_tensor(refitted).to(z["p"])}
