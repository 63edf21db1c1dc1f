"""The dual certificate: a valid lower bound on the optimum of (8) / (15) / (18) from the
multipliers of the interior-point iterate (weak duality), exact in floating point up to rounding."""

from __future__ import annotations

import math

import torch

from .structure import Structure


def certified_lower_bound(structure: Structure, z: dict) -> float:
    """A valid lower bound on the optimum from the multipliers z of the rows (weak duality).

    The Lagrangian of (8) / (15) / (18) with multipliers (coef_y, xi) of the loss and mu >= 0 of
    (11) is bounded below in U exactly when every column j has dist(-l_j, eps M_j B_inf) <= beta,
    l_j = sigma_j sum_k d_ik (coef_y_k x_k + xi_k) - sum_k mu_jk s_jk x_k, M_j = sum_k mu_jk.
    The multipliers are projected onto their simple constraints and scaled by the largest
    c <= 1 (hinge) or the best c (squared) meeting this; the dual value at the scaled point is
    returned."""
    mu = z["p"].clamp(min=0)
    zR = z["R"].clamp(min=0)
    if structure.hinge:
        lam = zR[:, 1].clamp(max=1.0 / structure.n)
        coef_y = -lam * structure.y
        bound_xi = structure.eps * lam
    else:
        coef_y = zR[:, 0] - zR[:, 1]
        bound_xi = structure.eps * (zR[:, 0] + zR[:, 1])
    xi = (z["am"] - z["ap"]) if structure.dp else coef_y.new_zeros(structure.n, 0)
    xi = torch.maximum(torch.minimum(xi, bound_xi[:, None]), -bound_xi[:, None])
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
