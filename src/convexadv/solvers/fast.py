"""A fast, certified solver for the convex programs (8), (15) and (18): a structured interior-point method in torch.

The program (after the exact presolve of :mod:`.presolve` drops the patterns whose robust
cone (11) is {0}) is written with auxiliary variables

* per sample k: rho_k (hinge: rho_k >= 0 and rho_k >= 1 - y_k yhat_k + eps 1^T a_k; squared:
  rho_k >= |yhat_k - y_k| + eps 1^T a_k) and, when eps > 0, a_k >= |g_k| (the l1 norms of (15), (18));
* per column j of U = [V, W]: tau_j >= ||u_j||_2 (a second-order cone) and, when eps > 0,
  b_j >= |u~_j|, so that (11) reads s_k x_k^T u_j - eps 1^T b_j >= 0;

objective f0 = sum_k rho_k / n (hinge) or sum_k rho_k^2 / 2 (squared) + beta sum_j tau_j. It is
solved by a primal-dual path-following method with Mehrotra's predictor-corrector and
Nesterov-Todd scaling of the cones (Vandenberghe, "The CVXOPT linear and quadratic cone
program solvers", 2010), started from a strictly feasible point built from the presolve's
interior directions. Every iterate stays strictly feasible, so the returned network satisfies
(11) and Theorem 4's certificate holds for it. Step sizes come from the ratio test; there is
nothing to tune.

Newton systems. The auxiliary variables are eliminated analytically (their blocks are diagonal
plus rank one, written as sums of positive terms so that nothing cancels); what remains is a
system in U only, whose matrix is

    [[B_V + K, -K], [-K, B_W + K]]

with one d x d block B_j per column and K the per-sample part in delta = V - W (P' d x P' d).
eps = 0: K has rank n and the Woodbury identity over the 2P' blocks needs one n x n
factorisation; eps > 0: dense Cholesky of the 2P'd x 2P'd matrix (P' is small after the
presolve). [D_1 X ... D_P X] is never formed: every product is a masked GEMM.

Certificate. The multipliers z of the constraints give a point of the Lagrange dual of
(8) / (15) / (18); it is projected onto the simple dual constraints and scaled until every
column satisfies dist(-l_j, eps M_j B_inf) <= beta exactly, so its value is a valid lower bound
(weak duality). The solver stops when objective - bound <= tol_abs * f(0) + tol * |objective|.

Units. The iterations run on an exactly equivalent program in internal units (X and eps divided by
a power of two near max |x|, y for the squared loss by one near ||y|| / sqrt(2)), so data on the
0-1 and the 0-255 scale take the same iterations.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ..programs import ConvexProgram, ConvexSolution
from .presolve import PresolveTimeoutError, cone_margins

log = logging.getLogger(__name__)

#: fraction of the step to the boundary of the cones taken by each iteration
TO_BOUNDARY = 0.99
#: iterative-refinement steps for every Newton direction
REFINEMENTS = 2
#: a step shorter than this means the Newton systems are exhausted (status "stalled")
MIN_STEP = 1e-6
#: the iterations drive the mean complementarity s^T z / degree down to this fraction of tol * |objective|
TARGET_FRACTION = 0.05
#: share of the cold starting point in a warm start
WARM_BLEND = 0.2
#: relative diagonal shifts tried when a Newton matrix is not numerically positive definite
JITTER = (1e-15, 1e-13, 1e-11, 1e-9)
#: the linear-programming row families (every one is >= 0 at a feasible point)
ROWS = ("R", "am", "ap", "bm", "bp", "p")


@dataclass
class _Point:
    """The primal variables: U (d x J), rho (n), a (n x d'), tau (J), b (d' x J)."""

    U: torch.Tensor
    rho: torch.Tensor
    a: torch.Tensor
    tau: torch.Tensor
    b: torch.Tensor

    def fields(self):
        return (self.U, self.rho, self.a, self.tau, self.b)

    def step(self, direction: "_Point", s: float) -> "_Point":
        return _Point(*(x + s * dx for x, dx in zip(self.fields(), direction.fields())))

    def minus(self, other: "_Point") -> "_Point":
        return _Point(*(x - y for x, y in zip(self.fields(), other.fields())))

    def plus_cones(self, part) -> "_Point":
        """This point plus a vector over the cones' variables (tau_j, u_j), one row per column j
        (the adjoint of :meth:`_Structure.cones`)."""
        return _Point(self.U + part[:, 1:].T, self.rho, self.a, self.tau + part[:, 0], self.b)


def _jordan(x, y):
    """Jordan product of second-order-cone vectors (batched over the first axis)."""
    return torch.cat([(x * y).sum(dim=1, keepdim=True), x[:, :1] * y[:, 1:] + y[:, :1] * x[:, 1:]], dim=1)


def _jordan_solve(lam, v):
    """u with lam o u = v (lam in the interior of the cone)."""
    det = _cone_det(lam)
    u0 = (lam[:, 0] * v[:, 0] - (lam[:, 1:] * v[:, 1:]).sum(dim=1)) / det
    u1 = (v[:, 1:] - u0[:, None] * lam[:, 1:]) / lam[:, :1]
    return torch.cat([u0[:, None], u1], dim=1)


def _cone_det(x):
    """x_0^2 - ||x_1||^2, computed as a product to keep its relative accuracy near the boundary."""
    norm1 = torch.linalg.norm(x[:, 1:], dim=1)
    return (x[:, 0] - norm1) * (x[:, 0] + norm1)


def _cone_step(x, dx) -> float:
    """Largest t with x + t dx in the second-order cone (x in its interior)."""
    qa = dx[:, 0] ** 2 - (dx[:, 1:] ** 2).sum(dim=1)
    qb = 2 * (x[:, 0] * dx[:, 0] - (x[:, 1:] * dx[:, 1:]).sum(dim=1))
    qc = _cone_det(x)
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


def _ratio_step(x, dx) -> float:
    """Largest t with x + t dx >= 0 (x > 0)."""
    neg = dx < 0
    return float((-x[neg] / dx[neg]).min()) if bool(neg.any()) else math.inf


class _Structure:
    """The presolved program in the variables of :class:`_Point`, on one device: its affine
    constraint rows, their adjoint, the Newton systems and the dual certificate."""

    def __init__(self, program: ConvexProgram, device, dtype):
        def tensor(a):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        self.program = program
        self.n, self.d, self.P = program.n, program.d, program.n_patterns
        self.J = 2 * self.P
        self.eps, self.beta = program.eps, program.beta
        self.hinge = program.loss == "hinge"
        self.X = tensor(program.X)
        self.y = tensor(program.y)
        self.pert = torch.as_tensor(np.flatnonzero(program.perturbable), device=device)
        self.pert_mask = torch.as_tensor(program.perturbable, device=device)
        self.dp = int(self.pert.numel()) if self.eps > 0 else 0
        self.M = tensor(program.patterns.astype(np.float64))  # (n, P)
        self.S = 2 * self.M - 1  # signs (2 D_i - I)
        self.SJ = torch.cat([self.S, self.S], dim=1)  # (n, J)
        # loss rows R_a = rho + row_sign_a * yhat - row_eps_a * 1^T a + row_const_a  (a = 0, 1)
        if self.hinge:
            self.row_sign = torch.stack([torch.zeros_like(self.y), self.y], dim=1)
            self.row_eps = torch.tensor([0.0, self.eps]).to(self.X)
            self.row_const = torch.stack([torch.zeros_like(self.y), -torch.ones_like(self.y)], dim=1)
        else:
            self.row_sign = torch.stack([-torch.ones_like(self.y), torch.ones_like(self.y)], dim=1)
            self.row_eps = torch.tensor([self.eps, self.eps]).to(self.X)
            self.row_const = torch.stack([self.y, -self.y], dim=1)
        #: number of linear rows plus number of cones (the degree of the cone of the problem)
        self.degree = 2 * self.n + 2 * self.n * self.dp + 2 * self.J * self.dp + self.n * self.J + self.J

    # ----- linear maps -----
    def outputs(self, U):
        """yhat (n) and g (n x d') at U."""
        delta = U[:, : self.P] - U[:, self.P:]
        yhat = (self.M * (self.X @ delta)).sum(dim=1)
        g = self.M @ delta[self.pert].T if self.dp else self.X.new_zeros(self.n, 0)
        return yhat, g

    def lift(self, coef_yhat, coef_g):
        """The adjoint of U -> (yhat, g): sum_k coef_yhat_k d yhat_k / dU + coef_g_k . d g_k / dU."""
        delta = self.X.T @ (self.M * coef_yhat[:, None])
        if self.dp:
            delta[self.pert] += coef_g.T @ self.M
        return torch.cat([delta, -delta], dim=1)

    def rows(self, x: _Point, constant: bool = True) -> dict:
        """Every linear-programming row at x (their linear part only when ``constant`` is false)."""
        yhat, g = self.outputs(x.U)
        R = x.rho[:, None] + self.row_sign * yhat[:, None] - self.row_eps * x.a.sum(dim=1, keepdim=True)
        if constant:
            R = R + self.row_const
        Ut = x.U[self.pert] if self.dp else x.U.new_zeros(0, self.J)
        p = self.SJ * (self.X @ x.U) - self.eps * x.b.sum(dim=0)[None, :]
        return {"R": R, "am": x.a - g, "ap": x.a + g, "bm": x.b - Ut, "bp": x.b + Ut, "p": p}

    def adjoint(self, z: dict) -> _Point:
        """The adjoint of the linear part of :meth:`rows` applied to multipliers z."""
        coef_g = z["ap"] - z["am"]
        U = self.lift((self.row_sign * z["R"]).sum(dim=1), coef_g) + self.X.T @ (self.SJ * z["p"])
        if self.dp:
            U[self.pert] += z["bp"] - z["bm"]
        a = z["am"] + z["ap"] - (self.row_eps * z["R"]).sum(dim=1, keepdim=True)
        b = z["bm"] + z["bp"] - self.eps * z["p"].sum(dim=0)[None, :]
        return _Point(U, z["R"].sum(dim=1), a, torch.zeros_like(z["p"][0]), b)

    def cone_slack(self, U, signs=None):
        """min_k s_k x_k^T u_j - eps ||u~_j||_1 for every column u_j of U (d x J; d x P with
        ``signs=self.S``): > 0 exactly when u_j is strictly inside its cone (11) (or the cone of (8)
        when eps = 0)."""
        signs = self.SJ if signs is None else signs
        return (signs * (self.X @ U)).min(dim=0).values - self.eps * U[self.pert].abs().sum(dim=0)

    def newton_product(self, w: dict, soc_inv2, dx: _Point) -> _Point:
        """(P + A^T diag(w) A + E^T W^-2 E) dx, the matrix :meth:`factor` factors, computed exactly."""
        out = self.adjoint({k: w[k] * s for k, s in self.rows(dx, constant=False).items()})
        return out.step(self.objective_hessian(dx), 1.0).plus_cones(
            torch.einsum("jab,jb->ja", soc_inv2, self.cones(dx)))

    @staticmethod
    def cones(x: _Point):
        """The second-order-cone variables (tau_j, u_j), one row per column j."""
        return torch.cat([x.tau[:, None], x.U.T], dim=1)

    def objective_f0(self, x: _Point) -> float:
        loss = x.rho.sum() / self.n if self.hinge else 0.5 * (x.rho ** 2).sum()
        return float(loss + self.beta * x.tau.sum())

    def objective_gradient(self, x: _Point) -> _Point:
        rho = torch.full_like(x.rho, 1.0 / self.n) if self.hinge else x.rho
        return _Point(torch.zeros_like(x.U), rho, torch.zeros_like(x.a), torch.full_like(x.tau, self.beta),
                      torch.zeros_like(x.b))

    def objective_hessian(self, dx: _Point) -> _Point:
        rho = torch.zeros_like(dx.rho) if self.hinge else dx.rho
        return _Point(torch.zeros_like(dx.U), rho, torch.zeros_like(dx.a), torch.zeros_like(dx.tau),
                      torch.zeros_like(dx.b))

    # ----- Newton systems -----
    def factor(self, w: dict, soc_inv2, soc_schur):
        """Factor the Newton matrix  P + A^T diag(w) A + E^T W^-2 E  (A: the rows, E: the cones) and
        return a function solving it for a right-hand side given as a :class:`_Point`.

        ``soc_inv2`` holds W^-2 per cone (J, d+1, d+1) and ``soc_schur`` its Schur complement
        on u (J, d, d), computed stably by the caller."""
        n, d, dp, P, J = self.n, self.d, self.dp, self.P, self.J
        eps = self.eps
        # --- per sample: rows R (n, 2), a - g (cm), a + g (cp) ---
        wR, cm, cp = w["R"], w["am"], w["ap"]
        A_s, B_s = cp + cm, cp - cm  # (g_l, a_l) block [[A, B], [B, A]]
        # stage 1: eliminate rho. With the objective's curvature delta as a third row, the
        # remaining quadratic is sum_r omega_r (alpha_r yhat + beta_r 1^T a)^2 over the pairs r
        # of rows (weighted-variance identity: no cancellation)
        delta = torch.zeros_like(wR[:, 0]) if self.hinge else torch.ones_like(wR[:, 0])
        w1, w2 = wR[:, 0], wR[:, 1]
        W_sum = w1 + w2 + delta
        H_ry = (wR * self.row_sign).sum(dim=1)
        H_ra = (wR * self.row_eps).sum(dim=1)  # H_rho,a = -H_ra 1^T
        (s1_, s2_), (e1, e2) = self.row_sign.unbind(dim=1), self.row_eps.tolist()
        omega = torch.stack([w1 * w2, w1 * delta, w2 * delta], dim=1) / W_sum[:, None]
        alpha = torch.stack([s1_ - s2_, s1_, s2_], dim=1)
        beta = torch.tensor([e2 - e1, -e1, -e2]).to(wR)[None, :].expand_as(alpha)
        s_yy = (omega * alpha ** 2).sum(dim=1)
        h_ya = (omega * alpha * beta).sum(dim=1)
        gamma = (omega * beta ** 2).sum(dim=1)
        minors = alpha[:, :, None] * beta[:, None, :] - alpha[:, None, :] * beta[:, :, None]
        cross = 0.5 * (omega[:, :, None] * omega[:, None, :] * minors ** 2).sum(dim=(1, 2))
        # stage 2: eliminate a (H_aa = diag(A) + gamma 11^T, H_ya = h_ya 1^T, H_ga = diag(B))
        iota = 1.0 / A_s
        sum_iota = iota.sum(dim=1)
        zeta = 1 + gamma * sum_iota
        theta = gamma / zeta
        phi = B_s * iota
        E = 4 * cp * cm / A_s
        C11 = (s_yy + sum_iota * cross) / zeta
        C12 = -h_ya / zeta
        C22 = theta

        def solve_aa(v):  # H_aa^-1 v for v (n, d')
            return iota * v - (theta * (iota * v).sum(dim=1))[:, None] * iota

        # --- per column: cone (tau_j, u_j), b -/+ u~ (bm, bp), p ---
        wp, c_bm, c_bp = w["p"], w["bm"], w["bp"]
        A_c, B_c = c_bp + c_bm, c_bp - c_bm  # (u_l, b_l) block [[A, B], [B, A]]
        H_tt = soc_inv2[:, 0, 0]
        H_ut = soc_inv2[:, 1:, 0].T  # (d, J)
        Bcol = soc_schur.clone()
        # eliminate b (H_bb = diag(A_c) + eps^2 sum(w) 11^T, H_ub = Pi diag(B_c) - eps v 1^T); the
        # result is a sum of PSD terms: the centred covariance of the rows s_k x_k, a rank-one
        # term along their weighted mean, and the diagonal of the l1 rows
        v = self.X.T @ (wp * self.SJ)  # (d, J)
        w_sum = wp.sum(dim=0)
        mean = v / w_sum
        centred = self.SJ.T[:, :, None] * self.X[None, :, :] - mean.T[:, None, :]  # (J, n, d)
        Bcol += torch.einsum("kj,jka,jkb->jab", wp, centred, centred)
        iota_c = 1.0 / A_c
        zeta_c = 1 + eps ** 2 * w_sum * iota_c.sum(dim=0)
        theta_c = eps ** 2 * w_sum / zeta_c
        phi_c = torch.zeros_like(v)
        if dp:
            phi_c[self.pert] = B_c * iota_c
            Bcol[:, self.pert, self.pert] += (4 * c_bp * c_bm * iota_c).T
        lifted = mean + eps * phi_c
        Bcol += (w_sum / zeta_c)[:, None, None] * torch.einsum("aj,bj->jab", lifted, lifted)

        def solve_bb(r):  # H_bb^-1 r for r (d', J)
            return iota_c * r - theta_c[None, :] * (iota_c * r).sum(dim=0, keepdim=True) * iota_c

        solve_U = self._factor_reduced(Bcol, E, phi, C11, C12, C22)

        def solve(r: _Point) -> _Point:
            # per sample: reduce the right-hand side to (yhat, g) space
            g1_a = r.a + (H_ra * r.rho / W_sum)[:, None]
            z_a = solve_aa(g1_a)
            g2_y = -H_ry * r.rho / W_sum - h_ya * z_a.sum(dim=1)
            g2_g = -B_s * z_a
            # per column
            rhs = r.U - H_ut * (r.tau / H_tt)[None, :]
            z_b = solve_bb(r.b)
            if dp:
                rhs[self.pert] -= B_c * z_b
            rhs = rhs + eps * v * z_b.sum(dim=0)[None, :] + self.lift(g2_y, g2_g)
            dU = solve_U(rhs)
            # back-substitution
            dyhat, dg = self.outputs(dU)
            da = solve_aa(g1_a - h_ya[:, None] * dyhat[:, None] - B_s * dg)
            drho = (r.rho - H_ry * dyhat + H_ra * da.sum(dim=1)) / W_sum
            dtau = (r.tau - (H_ut * dU).sum(dim=0)) / H_tt
            dUt = dU[self.pert] if dp else dU.new_zeros(0, J)
            db = solve_bb(r.b - B_c * dUt + eps * (v * dU).sum(dim=0)[None, :])
            return _Point(dU, drho, da, dtau, db)

        return solve

    def _factor_reduced(self, Bcol, E, phi, C11, C12, C22):
        """Factor blockdiag(B_j) + [I; -I] K [I, -I] (the Newton matrix in U) and return its solver.

        eps = 0: K = F^T diag(C11) F has rank n, so the Woodbury identity over all 2P columns
        needs only the d x d blocks B_j and one n x n factorisation. eps > 0: dense Cholesky
        of the whole 2 P d x 2 P d matrix. Both avoid harmonic means of the B_j, which lose all
        accuracy late in the iterations.
        """
        P, d, J, n = self.P, self.d, self.J, self.n
        L = _cholesky(Bcol)  # (J, d, d)
        if self.dp == 0:
            root = C11.clamp(min=0).sqrt()
            half = root[:, None, None] * self.M[:, :, None] * self.X[:, None, :]  # (n, P, d)
            G = torch.cat([half, -half], dim=1)  # rows of [F, -F] C^1/2, (n, J, d)
            BinvGt = torch.cholesky_solve(G.permute(1, 2, 0), L)  # (J, d, n)
            G_flat = G.reshape(n, J * d)
            BinvGt_flat = BinvGt.permute(2, 0, 1).reshape(n, J * d)
            small = G_flat @ BinvGt_flat.T
            small = 0.5 * (small + small.T)
            small.diagonal().add_(1.0)
            L_small = _cholesky(small)

            def solve(rhs):
                y0 = torch.cholesky_solve(rhs.T[:, :, None], L)[:, :, 0].reshape(J * d)
                t = torch.cholesky_solve((G_flat @ y0)[:, None], L_small)[:, 0]
                return (y0 - BinvGt_flat.T @ t).reshape(J, d).T

            return solve
        m = P * d
        K = self._dense_sample_hessian(E, phi, C11, C12, C22).reshape(m, m)
        H = torch.cat([torch.cat([K, -K], dim=1), torch.cat([-K, K], dim=1)], dim=0).reshape(J, d, J, d)
        idx = torch.arange(J)
        H[idx, :, idx, :] += Bcol
        L_full = _cholesky(H.reshape(J * d, J * d))

        def solve(rhs):
            return torch.cholesky_solve(rhs.T.reshape(J * d, 1), L_full).reshape(J, d).T

        return solve

    def _dense_sample_hessian(self, E, phi, C11, C12, C22):
        """K[(i, l), (i', l')] = sum_k M_ki M_ki' (Q_k[l, l'] + [l = l' perturbable] E_kl) with
        Q_k = [x_k, phi_k] C_k [x_k, phi_k]^T, as one GEMM: K = F1^T A1 + F2^T A2 where
        F1[k, (i, l)] = M_ki x_kl, F2[k, (i, l)] = M_ki phi_kl, A = C_k applied to (F1, F2)."""
        n, d, P = self.n, self.d, self.P
        phi_full = self.X.new_zeros(n, d)
        phi_full[:, self.pert] = phi
        F1 = (self.M[:, :, None] * self.X[:, None, :]).reshape(n, P * d)
        F2 = (self.M[:, :, None] * phi_full[:, None, :]).reshape(n, P * d)
        A1 = C11[:, None] * F1 + C12[:, None] * F2
        A2 = C12[:, None] * F1 + C22[:, None] * F2
        K = (torch.cat([F1, F2]).T @ torch.cat([A1, A2])).reshape(P, d, P, d)
        Ediag = torch.einsum("kl,ki,kp->lip", E, self.M, self.M)  # (d', P, P)
        idx = self.pert
        K[:, idx, :, idx] += Ediag
        return K

    # ----- certificate -----
    def lower_bound(self, z: dict) -> float:
        """A valid lower bound on the optimum from the multipliers z of the rows (weak duality).

        The Lagrangian of (8) / (15) / (18) with multipliers (coef_y, xi) of the loss and mu >= 0 of
        (11) is bounded below in U exactly when every column j has dist(-l_j, eps M_j B_inf) <= beta,
        l_j = sigma_j sum_k d_ik (coef_y_k x_k + xi_k) - sum_k mu_jk s_jk x_k, M_j = sum_k mu_jk.
        The multipliers are projected onto their simple constraints and scaled by the largest
        c <= 1 (hinge) or the best c (squared) meeting this; the dual value at the scaled point is
        returned."""
        mu = z["p"].clamp(min=0)
        zR = z["R"].clamp(min=0)
        if self.hinge:
            lam = zR[:, 1].clamp(max=1.0 / self.n)
            coef_y = -lam * self.y
            bound_xi = self.eps * lam
        else:
            coef_y = zR[:, 0] - zR[:, 1]
            bound_xi = self.eps * (zR[:, 0] + zR[:, 1])
        xi = (z["am"] - z["ap"]) if self.dp else coef_y.new_zeros(self.n, 0)
        xi = torch.maximum(torch.minimum(xi, bound_xi[:, None]), -bound_xi[:, None])
        ell = self.lift(coef_y, xi) - self.X.T @ (mu * self.SJ)
        excess = torch.where(self.pert_mask[:, None], (ell.abs() - self.eps * mu.sum(dim=0)[None, :]).clamp(min=0),
                             ell.abs())
        dist = float(torch.linalg.norm(excess, dim=0).max())
        c_max = math.inf if dist == 0 else self.beta / dist
        if self.hinge:
            return float(min(1.0, c_max) * lam.sum())
        linear = float(-(coef_y * self.y).sum())
        a_needed = torch.maximum(coef_y.abs(), xi.abs().amax(dim=1) / self.eps) if self.dp else coef_y.abs()
        quad = float((a_needed ** 2).sum())
        c = min(max(linear / quad, 0.0), c_max) if quad > 0 else (c_max if linear > 0 else 0.0)
        return c * linear - 0.5 * c ** 2 * quad

    # ----- starting point -----
    def start(self, interior: np.ndarray, previous: np.ndarray | None = None) -> _Point:
        """A strictly feasible, roughly centred point: v_i = w_i (so yhat = g = 0) along an
        interior direction of cone i, scaled so that every row of (11) has slack at least 1.

        With ``previous`` (d x 2P, a solution of a nearby program, e.g. another beta or eps) the
        point is WARM_BLEND * that start + (1 - WARM_BLEND) * previous, column by column, with a
        larger share of the cold start wherever the previous column violates this program's (11)."""
        E = torch.as_tensor(interior).to(self.X)  # (d, P)
        U = torch.cat([E, E], dim=1) * (2 / self.cone_slack(E, self.S)).repeat(2)[None, :]
        if previous is not None:
            U = self._blend(U, torch.as_tensor(previous).to(self.X))
        slack = self.cone_slack(U)
        if self.dp:
            b = U[self.pert].abs() + (slack / (2 * self.eps * self.dp))[None, :]
            a = U.new_full((self.n, self.dp), 1 / (self.eps * self.dp))
        else:
            b = U.new_zeros(0, self.J)
            a = U.new_zeros(self.n, 0)
        yhat, g = self.outputs(U)
        a = a + g.abs()
        tau = 2 * torch.linalg.norm(U, dim=0)
        rest = self.eps * a.sum(dim=1)
        loss = torch.clamp(1 - self.y * yhat + rest, min=0) if self.hinge else (yhat - self.y).abs() + rest
        return _Point(U, loss + 1, a, tau, b)

    def _blend(self, cold, previous):
        """The warm-start columns: the first share of the cold start in WARM_BLEND, 0.5, 1 that
        leaves every row of (11) strictly satisfied (1 = the cold column itself)."""
        out = cold.clone()
        unsettled = torch.ones(self.J, dtype=torch.bool, device=cold.device)
        for share in (WARM_BLEND, 0.5):
            U = share * cold + (1 - share) * previous
            take = unsettled & (self.cone_slack(U) > 0)
            out[:, take] = U[:, take]
            unsettled &= ~take
        return out


def _nt_scaling(s, z):
    """Nesterov-Todd scaling of second-order-cone pairs (s, z), one per row: returns W^-1 and W
    (J, q, q) with W z = W^-1 s, the scaled point lambda = W z, W^-2, and the Schur complement of
    W^-2 on its trailing block (u), computed as a projector plus a rank-one term (stable near the
    boundary of the cone)."""
    sd, zd = _cone_det(s), _cone_det(z)
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


def _cholesky(A: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of the SPD matrix (or batch) A. Late in the iterations A can hold
    curvatures 1e18 apart and lose definiteness to rounding; then a diagonal shift of
    JITTER[i] * max diagonal (the smallest that works) is added, as interior-point codes do."""
    L, info = torch.linalg.cholesky_ex(A)
    if not bool((info > 0).any()):
        return L
    scale = A.diagonal(dim1=-2, dim2=-1).abs().amax(dim=-1)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    for jitter in JITTER:
        L, info = torch.linalg.cholesky_ex(A + (jitter * scale)[..., None, None] * eye)
        if not bool((info > 0).any()):
            return L
    raise torch.linalg.LinAlgError("Newton system not positive definite even after regularisation")


def _power_of_two(value: float) -> float:
    """The power of two nearest to value (> 0) on a log scale; 1 for 0."""
    return 2.0 ** round(math.log2(value)) if value > 0 else 1.0


def internal_units(program: ConvexProgram) -> tuple[float, float]:
    """(s, s_y): the data's scale max |x~_kj| and, for the squared loss, the targets' scale
    ||y|| / sqrt(2), each rounded to a power of two so that dividing by them is exact."""
    s = _power_of_two(float(np.abs(program.X[:, program.perturbable]).max(initial=0.0)))
    s_y = 1.0 if program.loss == "hinge" else _power_of_two(float(np.linalg.norm(program.y)) / math.sqrt(2))
    return s, s_y


def zero_network_objective(program: ConvexProgram) -> float:
    """f(0), the objective of U = 0 (1 for the hinge loss, ||y||^2 / 2 for the squared loss): the unit of ``tol_abs``."""
    zeros = np.zeros((program.d, program.n_patterns))
    return program.objective(zeros, zeros)


def solve_fast(program: ConvexProgram, *, tol: float = 1e-4, tol_abs: float = 1e-7, max_iter: int = 200,
               time_limit: float | None = None, device: str = "cpu", dtype=torch.float64,
               warm_start: ConvexSolution | None = None, progress: bool = False) -> ConvexSolution:
    """Solve (8), (15) or (18) to a certified duality gap with the structured interior-point method.

    Parameters
    ----------
    program : the program to solve (any loss, eps >= 0, with or without bias).
    tol, tol_abs : stop "optimal" once objective - lower_bound <= tol_abs * f(0) + tol * |objective|,
        f(0) the objective of the zero network (1 for the hinge loss, ||y||^2 / 2 for the squared
        loss). ``tol_abs`` reads in the loss's own units: a program whose optimum is nearly pure
        regulariser (separable data, objective ~1e-4) ends optimal instead of chasing a relative
        gap that rounding cannot certify.
    max_iter, time_limit : stop early after this many iterations / seconds, presolve included
        (status "iteration_limit" / "time_limit"; the bound returned is still valid). A time limit
        that passes inside the presolve returns the zero network with the bound 0.
    device, dtype : where and in which precision to compute (float64 by default, also on a GPU:
        interior-point Newton systems need it). The returned objective and violation are
        recomputed in float64 on the CPU; the bound is computed in the working precision.
    warm_start : a solution of a program with the same data and patterns (e.g. another beta or
        eps, for sweeps): the iterations start near it (about 20 % fewer of them at the paper's size).
    progress : show a progress bar (one tick per iteration) and log every iteration.

    The solver works in internal units X / s, y / s_y, eps / s, beta / (s s_y) (s, s_y powers of two,
    see :func:`internal_units`): an exactly equivalent program, so the iterations do not depend on
    the data's units. The returned point is strictly feasible for (8) / (11) (every iterate is), so
    ``max_violation`` is zero up to rounding. ``info`` holds the gap, the number of iterations, the
    number of patterns the presolve kept and the internal units. Status "stalled" means rounding
    errors stopped progress before the gap was reached (the best point and bound are still valid).
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if not tol_abs >= 0:
        raise ValueError(f"tol_abs must be >= 0, got {tol_abs}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if time_limit is not None and not time_limit >= 0:
        raise ValueError(f"time_limit must be >= 0 seconds or None, got {time_limit}")
    if warm_start is not None and (warm_start.V.shape != (program.d, program.n_patterns)
                                   or not np.array_equal(warm_start.patterns, program.patterns)):
        raise ValueError("warm_start must be a solution for the same data dimension and the same patterns")
    start_time = time.perf_counter()
    deadline = None if time_limit is None else start_time + time_limit
    V = np.zeros((program.d, program.n_patterns))
    W = np.zeros_like(V)
    info = {"device": str(device), "dtype": str(dtype).replace("torch.", "")}
    try:
        trivial, interior = cone_margins(program, deadline=deadline)
    except PresolveTimeoutError as err:
        return _solution(program, V, W, zero_network_objective(program), 0.0, "time_limit", 0, start_time,
                         {**info, "patterns_kept": None, "message": f"time limit: {err}"})
    keep = ~trivial
    info["patterns_kept"] = int(keep.sum())
    has_interior = np.linalg.norm(interior[:, keep], axis=0) > 0
    if not has_interior.all():
        bad = np.flatnonzero(keep)[~has_interior].tolist()
        raise ValueError(f"the cones (11) of patterns {bad} have an empty interior (margin equal to eps); "
                         "the interior-point method needs a strictly feasible point: use solver='clarabel'")
    f_zero = zero_network_objective(program)
    if not keep.any() or f_zero == 0:  # U = 0 is the only feasible point, or attains the bound 0
        message = ("every robust cone (11) is {0}; U = 0 is optimal" if not keep.any()
                   else "y = 0: U = 0 attains the lower bound 0")
        return _solution(program, V, W, f_zero, f_zero if not keep.any() else 0.0, "optimal", 0, start_time,
                         {**info, "message": message})
    s, s_y = internal_units(program)
    info["units"] = {"X": s, "y": s_y}
    kept = program.with_patterns(program.patterns[:, keep])
    internal = replace(kept, X=kept.X / s, y=kept.y / s_y, eps=kept.eps / s, beta=kept.beta / (s * s_y))
    structure = _Structure(internal, torch.device(device), dtype)
    previous = None
    if warm_start is not None:
        previous = np.hstack([warm_start.V[:, keep], warm_start.W[:, keep]]) * (s / s_y)
    x = structure.start(interior[:, keep], previous)
    status, lower_bound, iterations = "iteration_limit", -math.inf, 0
    best_U, best_objective = None, math.inf
    last_duration = 0.0

    def gap_target(objective: float) -> float:
        return tol_abs * f_zero + tol * abs(objective)

    with torch.no_grad():
        rows = structure.rows(x)
        cones = structure.cones(x)
        mu0 = max(structure.objective_f0(x), 1e-12) / structure.n
        z = {key: mu0 / slack for key, slack in rows.items()}
        z_cone = mu0 * torch.cat([cones[:, :1], -cones[:, 1:]], dim=1) / _cone_det(cones)[:, None]
        bar = tqdm(total=max_iter, desc=f"interior point {program.equation}", unit="it", disable=not progress,
                   leave=False)
        while True:
            tick = time.perf_counter()
            # every iterate is feasible: keep the best one; every bound is valid: keep the largest
            U_np = _columns(x, keep, program) * (s_y / s)
            objective = program.objective(U_np[:, : program.n_patterns], U_np[:, program.n_patterns:])
            if objective < best_objective:
                best_U, best_objective = U_np, objective
            lower_bound = max(lower_bound, structure.lower_bound(z) * s_y ** 2)
            gap = best_objective - lower_bound
            bar.set_postfix(gap=f"{gap / max(abs(best_objective), 1e-300):.1e}")
            if progress:
                log.info("interior point: iteration %d, objective %.10g, bound %.10g, gap %.2e",
                         iterations, objective, lower_bound, gap)
            if gap <= gap_target(best_objective):
                status = "optimal"
                break
            if iterations >= max_iter:
                break
            # no iteration starts that the previous one's duration says would end past the deadline
            if deadline is not None and tick + last_duration > deadline:
                status = "time_limit"
                break
            # aim the complementarity at a fraction of the gap asked for, not below: slacks of active
            # rows then stay large enough for accurate Newton directions and dual residuals
            mu_floor = TARGET_FRACTION * gap_target(best_objective) / s_y ** 2 / structure.degree
            step = _iterate(structure, x, rows, cones, z, z_cone, mu_floor)
            if step is None or step[3] < MIN_STEP:  # rounding errors dominate the Newton systems
                status = "stalled"
                break
            x, z, z_cone, _ = step
            rows, cones = structure.rows(x), structure.cones(x)
            iterations += 1
            bar.update(1)
            last_duration = time.perf_counter() - tick
        bar.close()
    V, W = best_U[:, : program.n_patterns], best_U[:, program.n_patterns:]
    info.update(absolute_gap=gap, relative_gap=gap / max(abs(best_objective), 1e-300),
                message=f"{status} after {iterations} iterations (gap {gap:.2e}, target {tol_abs:.0e} * "
                        f"{f_zero:.3g} + {tol:.0e} * |objective|)")
    return _solution(program, V, W, best_objective, lower_bound, status, iterations, start_time, info)


def _iterate(structure: _Structure, x: _Point, rows: dict, cones, z: dict, z_cone, mu_floor: float):
    """One Mehrotra predictor-corrector step, centring towards no less than ``mu_floor``;
    None when the Newton system cannot be factored."""
    mu = _mean_complementarity(structure, rows, z, cones, z_cone)
    w = {k: z[k] / rows[k] for k in ROWS}
    W_inv, W, lam, inv2, schur = _nt_scaling(cones, z_cone)
    try:
        solve = structure.factor(w, inv2, schur)
    except torch.linalg.LinAlgError:
        return None
    # dual residual r_d = grad f0 - A^T z - E^T z_cone
    r_d = structure.objective_gradient(x).minus(structure.adjoint(z)).plus_cones(-z_cone)

    def direction(rc: dict, rc_cone):
        # (P + A^T D A + E^T W^-2 E) dx = -r_d + A^T (rc / s) + E^T W^-1 (lam \\ rc_cone)
        cone_part = torch.einsum("jab,jb->ja", W_inv, _jordan_solve(lam, rc_cone))
        rhs = structure.adjoint({k: rc[k] / rows[k] for k in ROWS}).minus(r_d).plus_cones(cone_part)
        dx = solve(rhs)
        for _ in range(REFINEMENTS):  # iterative refinement against the exact matrix-vector product
            dx = dx.step(solve(rhs.minus(structure.newton_product(w, inv2, dx))), 1.0)
        ds = structure.rows(dx, constant=False)
        dz = {k: (rc[k] - z[k] * ds[k]) / rows[k] for k in ROWS}
        ds_cone = structure.cones(dx)
        dz_cone = cone_part - torch.einsum("jab,jb->ja", inv2, ds_cone)
        return dx, ds, dz, ds_cone, dz_cone

    def max_steps(ds, dz, ds_cone, dz_cone) -> tuple[float, float]:
        """Largest primal and dual steps to the boundary; equal for the squared loss, whose
        quadratic objective couples them."""
        primal = min(min(_ratio_step(rows[k], ds[k]) for k in ROWS), _cone_step(cones, ds_cone))
        dual = min(min(_ratio_step(z[k], dz[k]) for k in ROWS), _cone_step(z_cone, dz_cone))
        if not structure.hinge:
            primal = dual = min(primal, dual)
        return min(1.0, primal), min(1.0, dual)

    # predictor (affine scaling)
    rc = {k: -rows[k] * z[k] for k in ROWS}
    rc_cone = -_jordan(lam, lam)
    dx, ds, dz, ds_cone, dz_cone = direction(rc, rc_cone)
    a_p, a_d = max_steps(ds, dz, ds_cone, dz_cone)
    mu_aff = _mean_complementarity(structure, {k: rows[k] + a_p * ds[k] for k in ROWS},
                                   {k: z[k] + a_d * dz[k] for k in ROWS}, cones + a_p * ds_cone,
                                   z_cone + a_d * dz_cone)
    sigma = min(1.0, max((mu_aff / mu) ** 3, mu_floor / mu))
    # corrector: centring plus the second-order term of the predictor
    e = torch.zeros_like(lam)
    e[:, 0] = 1
    scaled_ds = torch.einsum("jab,jb->ja", W_inv, ds_cone)
    scaled_dz = torch.einsum("jab,jb->ja", W, dz_cone)
    rc = {k: -rows[k] * z[k] - ds[k] * dz[k] + sigma * mu for k in ROWS}
    rc_cone = -_jordan(lam, lam) - _jordan(scaled_ds, scaled_dz) + sigma * mu * e
    dx, ds, dz, ds_cone, dz_cone = direction(rc, rc_cone)
    a_p, a_d = (TO_BOUNDARY * a for a in max_steps(ds, dz, ds_cone, dz_cone))
    x = x.step(dx, a_p)
    z = {k: z[k] + a_d * dz[k] for k in ROWS}
    return x, z, z_cone + a_d * dz_cone, min(a_p, a_d)


def _mean_complementarity(structure: _Structure, rows: dict, z: dict, cones, z_cone) -> float:
    """(s^T z summed over the rows and the cones) / degree: the barrier parameter mu."""
    total = sum(float((rows[k] * z[k]).sum()) for k in ROWS) + float((cones * z_cone).sum())
    return total / structure.degree


def _columns(x: _Point, keep: np.ndarray, program: ConvexProgram) -> np.ndarray:
    """U = [V, W] of the full program (zeros for the dropped patterns), float64 on the CPU."""
    P = program.n_patterns
    U = np.zeros((program.d, 2 * P))
    cols = np.concatenate([np.flatnonzero(keep), P + np.flatnonzero(keep)])
    U[:, cols] = x.U.double().cpu().numpy()
    return U


def _solution(program, V, W, objective, lower_bound, status, steps, start_time, info) -> ConvexSolution:
    return ConvexSolution(
        V=V, W=W, objective=objective, status=status, solver="fast",
        solve_time=time.perf_counter() - start_time, max_violation=program.max_violation(V, W),
        loss=program.loss, eps=program.eps, beta=program.beta, bias=program.bias,
        patterns=program.patterns, lower_bound=lower_bound, iterations=steps, info=info,
    )
