"""Second-order-cone algebra of the interior-point method: Jordan products, step lengths to the
boundary of the cones and Nesterov-Todd scaling (Vandenberghe, "The CVXOPT linear and quadratic
cone program solvers", 2010). Every function works on a batch of cones, one per row."""

from __future__ import annotations

import math

import torch


def jordan(x, y):
    """Jordan product of second-order-cone vectors (batched over the first axis)."""
    return torch.cat([(x * y).sum(dim=1, keepdim=True), x[:, :1] * y[:, 1:] + y[:, :1] * x[:, 1:]], dim=1)


def jordan_solve(lam, v):
    """u with lam o u = v (lam in the interior of the cone)."""
    det = cone_det(lam)
    u0 = (lam[:, 0] * v[:, 0] - (lam[:, 1:] * v[:, 1:]).sum(dim=1)) / det
    u1 = (v[:, 1:] - u0[:, None] * lam[:, 1:]) / lam[:, :1]
    return torch.cat([u0[:, None], u1], dim=1)


def cone_det(x):
    """x_0^2 - ||x_1||^2, computed as a product to keep its relative accuracy near the boundary."""
    norm1 = torch.linalg.norm(x[:, 1:], dim=1)
    return (x[:, 0] - norm1) * (x[:, 0] + norm1)


def cone_step(x, dx) -> float:
    """Largest t with x + t dx in the second-order cone (x in its interior)."""
    qa = dx[:, 0] ** 2 - (dx[:, 1:] ** 2).sum(dim=1)
    qb = 2 * (x[:, 0] * dx[:, 0] - (x[:, 1:] * dx[:, 1:]).sum(dim=1))
    qc = cone_det(x)
    steps = [math.inf]
    for a, b, c, x0, d0 in zip(qa.tolist(), qb.tolist(), qc.tolist(), x[:, 0].tolist(), dx[:, 0].tolist()):
        if d0 < 0:
            steps.append(-x0 / d0)
        if abs(a) < 1e-300:
            if b < 0:
                steps.append(-c / b)
            continue
        disc = b * b - 4 * a * c
        if disc < 0:
            continue
        root = math.sqrt(disc)
        for t in ((-b - root) / (2 * a), (-b + root) / (2 * a)):
            if t > 0:
                steps.append(t)
    return min(steps)


def ratio_step(x, dx) -> float:
    """Largest t with x + t dx >= 0 (x > 0)."""
    neg = dx < 0
    return float((-x[neg] / dx[neg]).min()) if bool(neg.any()) else math.inf


def nt_scaling(s, z):
    """Nesterov-Todd scaling of second-order-cone pairs (s, z), one per row: returns W^-1 and W
    (J, q, q) with W z = W^-1 s, the scaled point lambda = W z, W^-2, and the Schur complement of
    W^-2 on its trailing block (u), computed as a projector plus a rank-one term (stable near the
    boundary of the cone)."""
    sd, zd = cone_det(s), cone_det(z)
    s_bar, z_bar = s / sd.sqrt()[:, None], z / zd.sqrt()[:, None]
    gamma = ((1 + (z_bar * s_bar).sum(dim=1)) / 2).sqrt()
    J_zbar = torch.cat([z_bar[:, :1], -z_bar[:, 1:]], dim=1)
    w_bar = (s_bar + J_zbar) / (2 * gamma[:, None])  # the scaling point, P(w_bar) z_bar = s_bar
    eta = (sd / zd) ** 0.25
    # its square root in the Jordan algebra: W = eta P(v) = eta (2 v v^T - J), v^T J v = 1
    v = w_bar.clone()
    v[:, 0] += 1
    v = v / (2 * (w_bar[:, :1] + 1)).sqrt()
    q = torch.cat([v[:, :1], -v[:, 1:]], dim=1)  # J v
    sign = torch.ones(s.shape[1]).to(s)
    sign[1:] = -1
    eye_J = torch.diag_embed(sign.expand_as(s))
    W_inv = (2 * q[:, :, None] * q[:, None, :] - eye_J) / eta[:, None, None]
    W = eta[:, None, None] * (2 * v[:, :, None] * v[:, None, :] - eye_J)
    lam = torch.einsum("jab,jb->ja", W, z)
    inv2 = W_inv @ W_inv
    # Schur complement of W^-2 on u = ((W^2)_uu)^-1 = (1 / eta^2) [I + 4 (1 + |v|^2) v1 v1^T]^-1
    v1 = v[:, 1:]
    n1 = (v1 ** 2).sum(dim=1)
    unit = v1 / n1.sqrt().clamp(min=1e-300)[:, None]
    along = unit[:, :, None] * unit[:, None, :]
    eye = torch.eye(v1.shape[1]).to(s)
    spread = 1 + 4 * (1 + (v ** 2).sum(dim=1)) * n1
    schur = ((eye - along) + along / spread[:, None, None]) / (eta ** 2)[:, None, None]
    return W_inv, W, lam, inv2, schur
