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


def reflect(x):
    """J x with J = diag(1, -1, ..., -1): the reflection that leaves the cone's axis fixed."""
    return torch.cat([x[:, :1], -x[:, 1:]], dim=1)


def cone_identity(like):
    """e = (1, 0, ..., 0) per row, the identity of the Jordan product, shaped and typed like ``like``."""
    e = torch.zeros_like(like)
    e[:, 0] = 1
    return e


def cone_det(x):
    """x_0^2 - ||x_1||^2, computed as a product to keep its relative accuracy near the boundary."""
    norm1 = torch.linalg.norm(x[:, 1:], dim=1)
    return (x[:, 0] - norm1) * (x[:, 0] + norm1)


def spectral_clamp(x, low: float, high: float):
    """x with its two spectral values x_0 +- ||x_1|| clamped to [low, high] (their directions kept),
    one cone per row."""
    norm1 = torch.linalg.norm(x[:, 1:], dim=1)
    upper = (x[:, 0] + norm1).clamp(low, high)
    lower = (x[:, 0] - norm1).clamp(low, high)
    direction = x[:, 1:] / norm1.clamp(min=1e-300)[:, None]
    return torch.cat([((upper + lower) / 2)[:, None], ((upper - lower) / 2)[:, None] * direction], dim=1)


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
    """Largest t with x + t dx >= 0 (x > 0): 1 / max(-dx / x), inf where no entry decreases."""
    smallest = float((dx / x).min()) if x.numel() else 0.0
    return -1 / smallest if smallest < 0 else math.inf


class NTScaling:
    """Nesterov-Todd scaling of second-order-cone pairs (s, z), one per row, kept in its
    low-rank form: W = eta (2 v v^T - J) and W^-1 = (2 q q^T - J) / eta with J = diag(1, -1, ..., -1),
    q = J v, v^T J v = 1 (Vandenberghe 2010). W z = W^-1 s = lam, the scaled point.

    Only eta and the vectors v, q are stored: every product costs O(J q) and no (J, q, q) array exists
    except the Schur complement of W^-2 that the Newton systems start their d x d blocks from
    (:meth:`schur`)."""

    def __init__(self, s, z):
        sd, zd = cone_det(s), cone_det(z)
        s_bar, z_bar = s / sd.sqrt()[:, None], z / zd.sqrt()[:, None]
        gamma = ((1 + (z_bar * s_bar).sum(dim=1)) / 2).sqrt()
        w_bar = (s_bar + reflect(z_bar)) / (2 * gamma[:, None])  # the scaling point, P(w_bar) z_bar = s_bar
        self.eta = (sd / zd) ** 0.25
        # its square root in the Jordan algebra: W = eta P(v) = eta (2 v v^T - J), v^T J v = 1
        v = w_bar.clone()
        v[:, 0] += 1
        self.v = v / (2 * (w_bar[:, :1] + 1)).sqrt()
        self.q = reflect(self.v)
        self.lam = self.apply(z)

    def apply(self, x):
        """W x, one cone per row."""
        return self.eta[:, None] * (2 * self.v * (self.v * x).sum(dim=1, keepdim=True) - reflect(x))

    def apply_inverse(self, x):
        """W^-1 x, one cone per row."""
        return (2 * self.q * (self.q * x).sum(dim=1, keepdim=True) - reflect(x)) / self.eta[:, None]

    def apply_inverse_squared(self, x):
        """W^-2 x, one cone per row (the cones' block of the Newton matrix)."""
        return self.apply_inverse(self.apply_inverse(x))

    def inverse_squared_first_column(self):
        """W^-2 e_0 (J, q): its entry 0 is the (tau, tau) curvature, the rest the (u, tau) coupling."""
        return self.apply_inverse_squared(cone_identity(self.v))

    def schur(self):
        """The Schur complement of W^-2 on its trailing block (u), (J, d, d), a fresh array:
        ((W^2)_uu)^-1 = (1 / eta^2) [I + 4 (1 + |v|^2) v1 v1^T]^-1 = (1 / eta^2) [I - c v1 v1^T],
        c = 4 (1 + |v|^2) / spread, spread = 1 + 4 (1 + |v|^2) |v1|^2 (Sherman-Morrison, one
        (J, d, d) allocation)."""
        v1 = self.v[:, 1:]
        growth = 4 * (1 + (self.v ** 2).sum(dim=1))
        spread = 1 + growth * (v1 ** 2).sum(dim=1)
        out = v1[:, :, None] * (-growth / spread / self.eta ** 2)[:, None, None]
        out = out * v1[:, None, :]
        out.diagonal(dim1=1, dim2=2).add_((1 / self.eta ** 2)[:, None])
        return out
