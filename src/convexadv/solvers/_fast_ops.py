"""Linear operator, proximal maps and dual certificate behind :mod:`convexadv.solvers.fast`.

The programs (8), (15) and (18) are written as one saddle-point problem

    min_{Z >= 0}  max_{y}  <K Z, y> - F*(y) + beta * sum_j ||z_j||_2

over the *lifted* primal Z = (P, Q) >= 0, U = P - Q = [V, W] (d x 2P). The l1 norms
of the robust constraints (11) become the linear terms 1^T (p_j + q_j) over the
perturbable coordinates, and ||z_j||_2 = ||[p_j; q_j]||_2 replaces ||u_j||_2.
Both substitutions are exact at an optimum (p_j and q_j then have disjoint
supports), so the lifted problem has the optimal value of the original one.

K Z is kept as the triple (XU, G, t):

* XU = X U (n x 2P), which gives the predictions yhat = rowsum(M o XU) with the
  signed masks M = [D, -D], and the constraint margins S o XU, S = [2D - 1, 2D - 1];
* G = D (V - W)^T on the perturbable coordinates (n x d'), the rows are the g_k of
  (15) / (18);
* t_j = kappa^T (p_j + q_j), kappa = eps on perturbable coordinates (0 on a bias).

The dual y = (lam, tau, mu) pairs with the three blocks
b1 = a o yhat (a = -y for the hinge, 1 for the squared loss), b2 = G and
b3 = t - S o XU (the constraints (11) are b3 <= 0, mu >= 0):

* hinge (15): F*(lam, tau) = -sum(lam) on {0 <= lam_k <= 1/n, ||tau_k||_inf <= eps lam_k},
  since (1/n)(1 - y_k yhat_k + eps ||g_k||_1)_+ = max lam_k (1 + b1_k) + <tau_k, g_k>;
* squared (18): F*(nu, tau) = sum(nu y) + 1/2 sum Lam_k^2, Lam_k = max(|nu_k|, ||tau_k||_inf / eps),
  since 1/2 z^2 = max_Lam (Lam z - Lam^2 / 2) with z_k = |yhat_k - y_k| + eps ||g_k||_1.

Nothing here forms [D_1 X ... D_P X]; every product is a GEMM of size n * d * P.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..programs import ConvexProgram

#: Newton steps allowed for the one-dimensional problem inside the dual proximal map
_NEWTON_STEPS = 60


@dataclass
class Operator:
    """The data of one program on one device, and K, K^T and the proximal maps."""

    X: torch.Tensor  # n x d
    D: torch.Tensor  # n x P, 0/1
    S: torch.Tensor  # n x P, +-1
    y: torch.Tensor  # n
    a: torch.Tensor  # n, the sign of block 1 (-y for the hinge, 1 for the squared loss)
    kappa: torch.Tensor  # d, coefficient of p + q in the constraint l1 terms
    pert: torch.Tensor  # d', indices of the perturbable coordinates (all when no bias)
    loss: str
    eps: float
    beta: float

    @classmethod
    def build(cls, program: ConvexProgram, device, dtype) -> "Operator":
        def tensor(a):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        D = program.patterns.astype(np.float64)
        y = program.y
        kappa = program.eps * program.perturbable.astype(np.float64)
        pert = np.flatnonzero(program.perturbable) if program.eps > 0 else np.zeros(0, dtype=np.int64)
        return cls(
            X=tensor(program.X), D=tensor(D), S=tensor(2.0 * D - 1.0), y=tensor(y),
            a=tensor(-y if program.loss == "hinge" else np.ones_like(y)), kappa=tensor(kappa),
            pert=torch.as_tensor(pert, device=device), loss=program.loss, eps=float(program.eps),
            beta=float(program.beta),
        )

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def n_patterns(self) -> int:
        return self.D.shape[1]

    # ----- K and K^T -----
    def forward(self, Z: torch.Tensor):
        """K Z as (XU, G, t) for the lifted Z = (P, Q) of shape (2, d, 2P)."""
        P = self.n_patterns
        U = Z[0] - Z[1]
        XU = self.X @ U
        G = self.D @ (U[self.pert, :P] - U[self.pert, P:]).T
        t = self.kappa @ (Z[0] + Z[1])
        return XU, G, t

    def predictions(self, XU: torch.Tensor) -> torch.Tensor:
        """yhat = rowsum(M o XU) with M = [D, -D]."""
        P = self.n_patterns
        return (self.D * (XU[:, :P] - XU[:, P:])).sum(dim=1)

    def blocks(self, Kz):
        """The three dual-paired blocks (b1, b2, b3) of K Z."""
        XU, G, t = Kz
        b3 = t - XU * torch.cat([self.S, self.S], dim=1)
        return self.a * self.predictions(XU), G, b3

    def adjoint(self, lam: torch.Tensor, tau: torch.Tensor, mu: torch.Tensor):
        """K^T y as (gU, msum): gU is the coefficient of U, msum the one of t."""
        P = self.n_patterns
        w = (self.a * lam)[:, None] * self.D
        Y = torch.cat([w, -w], dim=1) - mu * torch.cat([self.S, self.S], dim=1)
        gU = self.X.T @ Y
        if tau.shape[1]:
            TD = tau.T @ self.D
            gU[self.pert, :P] += TD
            gU[self.pert, P:] -= TD
        return gU, mu.sum(dim=0)

    def lifted_gradient(self, KTy) -> torch.Tensor:
        """K^T y in the coordinates of Z = (P, Q)."""
        gU, msum = KTy
        shift = self.kappa[:, None] * msum[None, :]
        return torch.stack([gU + shift, shift - gU])

    # ----- diagonal preconditioner (Pock and Chambolle, alpha = 1) -----
    def preconditioner(self):
        """Primal steps per column of U (2P,) and dual steps per sample for each block (n,)."""
        Xa = self.X.abs()
        kap = self.kappa[None, :]
        nD = self.D.sum(dim=1)
        ones = torch.ones_like(self.D)
        col1 = Xa.T @ self.D + (self.kappa > 0).to(self.X.dtype)[:, None] * self.D.sum(dim=0)[None, :]
        lo, hi = (self.X - kap).abs(), (self.X + kap).abs()
        col3 = torch.maximum(lo.T @ self.D + hi.T @ (ones - self.D), hi.T @ self.D + lo.T @ (ones - self.D))
        col = (col1 + col3).amax(dim=0)
        row1 = 4.0 * nD * Xa.sum(dim=1)
        row2 = 4.0 * nD
        row3 = 2.0 * torch.maximum(Xa, kap.expand_as(Xa)).sum(dim=1)
        return _inverse(col).repeat(2), _inverse(row1), _inverse(row2), _inverse(row3)

    # ----- proximal maps -----
    def primal_prox(self, Z: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """prox of beta * sum_j ||z_j||_2 + indicator(Z >= 0) with one step per column."""
        Z = Z.clamp_min(0.0)
        norms = torch.sqrt((Z * Z).sum(dim=(0, 1), keepdim=True))
        shrink = (1.0 - self.beta * step / torch.clamp(norms, min=torch.finfo(Z.dtype).tiny)).clamp_min(0.0)
        return Z * shrink

    def dual_prox(self, lam0, tau0, mu0, s1, s2, bound_guess):
        """prox of F* (block 1 and 2) and projection onto mu >= 0 (block 3).

        lam0, tau0, mu0 are y + Sigma (K zbar) without the linear part of F*;
        returns (lam, tau, mu, bound) where bound is lam (hinge) or Lam (squared),
        the common bound ||tau_k||_inf <= eps * bound_k.
        """
        mu = mu0.clamp_min(0.0)
        if self.loss == "hinge":
            # min (l - l0)^2 / (2 s1) + sum_j (tau_j - tau0_j)^2 / (2 s2), |tau_j| <= eps l, 0 <= l <= 1/n
            lam0 = lam0 + s1
            bound = _one_dim_prox(1.0 / s1, lam0 / s1, None, None, tau0.abs(), 1.0 / s2, self.eps,
                                  1.0 / self.n, bound_guess)
            lam = bound
        else:
            # min Lam^2 / 2 + (|nu0| - Lam)_+^2 / (2 s1) + sum_j (|tau0_j| - eps Lam)_+^2 / (2 s2)
            nu0 = lam0 - s1 * self.y
            bound = _one_dim_prox(torch.ones_like(s1), torch.zeros_like(s1), nu0.abs(), 1.0 / s1,
                                  tau0.abs(), 1.0 / s2, self.eps, None, bound_guess)
            lam = torch.maximum(torch.minimum(nu0, bound), -bound)
        limit = (self.eps * bound)[:, None]
        tau = torch.maximum(torch.minimum(tau0, limit), -limit)
        return lam, tau, mu, bound

    def dual_from_primal(self, Kz, fallback=None, threshold: float = 1e-7):
        """The loss multipliers that are optimal for the primal point behind ``Kz``.

        For the squared loss they are unique wherever g_k has no zero entry
        (nu_k = z_k sgn(yhat_k - y_k), tau_k = eps z_k sgn(g_k)); for the hinge,
        lam_k = 1/n or 0 away from the kink. Where the primal does not decide
        (|hinge| or |g_ki| below ``threshold`` relative), the ``fallback`` dual
        (lam, tau) is used, clipped to the bounds. mu is zero (callers add it).
        Used to start the iterations and as a second, often much tighter,
        candidate for the lower bound.
        """
        XU, G, _ = Kz
        yhat = self.predictions(XU)
        has_tau = G.shape[1] > 0
        l1 = self.eps * G.abs().sum(dim=1) if has_tau else torch.zeros_like(yhat)
        if self.loss == "hinge":
            h = 1.0 - self.y * yhat + l1
            lam = (h > 0).to(XU.dtype) / self.n
            if fallback is not None:
                lam = torch.where(h.abs() <= threshold, fallback[0].clamp(0.0, 1.0 / self.n), lam)
            bound = lam
        else:
            z = (yhat - self.y).abs() + l1
            lam = z * torch.sign(yhat - self.y)
            bound = z
        tau = self.eps * bound[:, None] * torch.sign(G)
        if fallback is not None and has_tau:
            limit = (self.eps * bound)[:, None]
            small = G.abs() <= threshold * G.abs().amax(dim=1, keepdim=True).clamp_min(1e-300)
            tau = torch.where(small, torch.maximum(torch.minimum(fallback[1], limit), -limit), tau)
        return lam, tau, torch.zeros_like(XU), bound

    # ----- certificates -----
    def objective(self, Z: torch.Tensor, Kz) -> torch.Tensor:
        """The exact objective of (8) / (15) / (18) at U = P - Q."""
        XU, G, _ = Kz
        yhat = self.predictions(XU)
        l1 = self.eps * G.abs().sum(dim=1) if G.shape[1] else 0.0
        if self.loss == "hinge":
            data = (1.0 - self.y * yhat + l1).clamp_min(0.0).sum() / self.n
        else:
            data = 0.5 * (((yhat - self.y).abs() + l1) ** 2).sum()
        U = Z[0] - Z[1]
        return data + self.beta * torch.linalg.vector_norm(U, dim=0).sum()

    def violation(self, Z: torch.Tensor, Kz):
        """(max violation of the constraints of (8) / (11) at U = P - Q, its scale max|X| max_j ||u_j||_1)."""
        XU = Kz[0]
        U = Z[0] - Z[1]
        l1 = U[self.pert].abs().sum(dim=0)
        slack = XU * torch.cat([self.S, self.S], dim=1) - self.eps * l1[None, :]
        scale = self.X.abs().max() * U.abs().sum(dim=0).max()
        return (-slack.min()).clamp_min(0.0), scale

    def lower_bound(self, lam, tau, KTy) -> torch.Tensor:
        """Dual objective at the feasible rescaling of y (weak duality: a lower bound).

        The coefficient of u_j in the Lagrangian is c_j = gU_j + sigma_j with the
        multiplier sigma_j of the l1 terms of (11), |sigma_j| <= eps * sum_k mu_jk;
        choosing sigma_j optimally soft-thresholds gU_j on the perturbable
        coordinates. The dual needs ||c_j||_2 <= beta; scaling every multiplier by
        theta = min(1, beta / max_j ||c_j||) makes y feasible.
        """
        gU, msum = KTy
        c = gU.clone()
        if self.pert.numel():
            g = gU[self.pert]
            c[self.pert] = torch.sign(g) * (g.abs() - self.eps * msum[None, :]).clamp_min(0.0)
        cmax = torch.linalg.vector_norm(c, dim=0).max()
        theta = torch.clamp(self.beta / torch.clamp(cmax, min=torch.finfo(c.dtype).tiny), max=1.0)
        if self.loss == "hinge":
            return theta * lam.sum()
        bound = lam.abs()
        if tau.shape[1]:
            bound = torch.maximum(bound, tau.abs().amax(dim=1) / self.eps)
        linear = -(lam * self.y).sum()
        quad = (bound * bound).sum()
        best = torch.clamp(linear / torch.clamp(quad, min=torch.finfo(c.dtype).tiny), min=0.0)
        best = torch.minimum(best, theta)
        return best * linear - 0.5 * best * best * quad


def _inverse(v: torch.Tensor) -> torch.Tensor:
    """1 / v, with rows or columns that are identically zero given the largest step of the others."""
    positive = v > 0
    floor = v[positive].min() if positive.any() else torch.ones((), dtype=v.dtype, device=v.device)
    return 1.0 / torch.where(positive, v, floor)


def _one_dim_prox(A, B, a_nu, w_nu, a_tau, w_tau, eps, upper, guess):
    """Minimise, for every row k, the convex piecewise quadratic in l >= 0 (and <= upper)

        A l^2 / 2 - B l + w_nu (a_nu - l)_+^2 / 2 + w_tau sum_j (a_tau_j - eps l)_+^2 / 2

    by Newton's method on its derivative, which is increasing, concave and
    piecewise linear: started anywhere, one step lands left of the root and from
    there the iterates increase monotonically to it, exactly after finitely many
    steps (a change of active set each). ``guess`` (the previous bound) makes that
    one or two steps in practice.
    """
    lam = guess.clone()
    has_tau = a_tau.shape[1] > 0
    for _ in range(_NEWTON_STEPS):
        grad = A * lam - B
        hess = A.clone()
        if a_nu is not None:
            active = a_nu > lam
            grad = grad - w_nu * (a_nu - lam) * active
            hess = hess + w_nu * active
        if has_tau:
            gap = a_tau - eps * lam[:, None]
            active = gap > 0
            grad = grad - eps * w_tau * (gap * active).sum(dim=1)
            hess = hess + eps * eps * w_tau * active.sum(dim=1)
        new = (lam - grad / hess).clamp_min(0.0)
        if upper is not None:
            new = new.clamp_max(upper)
        done = bool(((new - lam).abs() <= 1e-14 * new.abs()).all())
        lam = new
        if done:
            break
    return lam
