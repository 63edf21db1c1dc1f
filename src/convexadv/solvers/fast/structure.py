"""The presolved program (8) / (15) / (18) in the interior-point method's variables.

Per sample k: rho_k (the loss rows) and, when eps > 0, a_k >= |g_k| (the l1 norms of (15), (18));
per column j of U = [V, W]: tau_j >= ||u_j||_2 (a second-order cone) and, when eps > 0,
b_j >= |u~_j|, so that (11) reads s_k x_k^T u_j - eps 1^T b_j >= 0. :class:`Structure` holds the
data as tensors and the linear maps between these variables and the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...programs import ConvexProgram

#: the linear-programming row families (every one is >= 0 at a feasible point)
ROWS = ("R", "am", "ap", "bm", "bp", "p")


@dataclass
class Point:
    """The primal variables: U (d x J), rho (n), a (n x d'), tau (J), b (d' x J)."""

    U: torch.Tensor
    rho: torch.Tensor
    a: torch.Tensor
    tau: torch.Tensor
    b: torch.Tensor

    def fields(self):
        return (self.U, self.rho, self.a, self.tau, self.b)

    def step(self, direction: "Point", s: float) -> "Point":
        return Point(*(x + s * dx for x, dx in zip(self.fields(), direction.fields())))

    def minus(self, other: "Point") -> "Point":
        return Point(*(x - y for x, y in zip(self.fields(), other.fields())))

    def plus_cones(self, part) -> "Point":
        """This point plus a vector over the cones' variables (tau_j, u_j), one row per column j
        (the adjoint of :meth:`Structure.cones`)."""
        return Point(self.U + part[:, 1:].T, self.rho, self.a, self.tau + part[:, 0], self.b)


class Structure:
    """The presolved program in the variables of :class:`Point`, on one device: its affine
    constraint rows, their adjoint and the objective (the Newton systems are in :mod:`.newton`,
    the dual certificate in :mod:`.certificate`, the starting point in :mod:`.start`). Two things
    live here for the Newton systems of one solve: the workspace of the dense sample Hessian
    (:meth:`workspace`) and ``factor_in_single``, whether its factorisation runs in float32 (set by the
    iterations from :func:`.newton.single_precision_pays`; switched off for good once float32 stops serving)."""

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
        # the distinct rows m_g of M (G <= n) and each sample's: the sample part of the Newton systems
        # is a sum over samples of (m_k m_k^T) (x) (d x d), so samples with the same row can be summed first
        self.mask_rows, self.mask_group = torch.unique(self.M, dim=0, return_inverse=True)
        self.S = 2 * self.M - 1  # signs (2 D_i - I)
        self.SJ = torch.cat([self.S, self.S], dim=1)  # (n, J)
        # loss rows R_a = rho + row_sign_a * yhat - row_eps_a * 1^T a + row_const_a  (a = 0, 1)
        if self.hinge:
            self.row_sign = torch.stack([torch.zeros_like(self.y), self.y], dim=1)
            self.row_eps = self.X.new_tensor([0.0, self.eps])
            self.row_const = torch.stack([torch.zeros_like(self.y), -torch.ones_like(self.y)], dim=1)
        else:
            self.row_sign = torch.stack([-torch.ones_like(self.y), torch.ones_like(self.y)], dim=1)
            self.row_eps = self.X.new_tensor([self.eps, self.eps])
            self.row_const = torch.stack([self.y, -self.y], dim=1)
        #: number of linear rows plus number of cones (the degree of the cone of the problem)
        self.degree = 2 * self.n + 2 * self.n * self.dp + 2 * self.J * self.dp + self.n * self.J + self.J
        self._workspace = None
        self.factor_in_single = False

    def workspace(self, shape, dtype=None) -> torch.Tensor:
        """An uninitialised tensor of ``shape`` and ``dtype`` (default: the structure's) on the structure's
        device whose memory the next call (the next iteration) gets again: the dense sample Hessian of
        :mod:`.newton`, which its caller overwrites entirely and no longer needs once it is factored. A fresh
        allocation of its 224 MB (P' = 36, d = 147) would be paged in again every iteration, about 50 ms on
        the CPU."""
        shape, dtype = tuple(shape), dtype or self.X.dtype
        if self._workspace is None or self._workspace.shape != shape or self._workspace.dtype != dtype:
            self._workspace = None  # the old buffer is freed before the new one is allocated
            self._workspace = torch.empty(shape, dtype=dtype, device=self.X.device)
        return self._workspace

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

    def rows(self, x: Point, constant: bool = True) -> dict:
        """Every linear-programming row at x (their linear part only when ``constant`` is false)."""
        yhat, g = self.outputs(x.U)
        R = x.rho[:, None] + self.row_sign * yhat[:, None] - self.row_eps * x.a.sum(dim=1, keepdim=True)
        if constant:
            R = R + self.row_const
        Ut = x.U[self.pert] if self.dp else x.U.new_zeros(0, self.J)
        p = self.SJ * (self.X @ x.U) - self.eps * x.b.sum(dim=0)[None, :]
        return {"R": R, "am": x.a - g, "ap": x.a + g, "bm": x.b - Ut, "bp": x.b + Ut, "p": p}

    def adjoint(self, z: dict) -> Point:
        """The adjoint of the linear part of :meth:`rows` applied to multipliers z."""
        coef_g = z["ap"] - z["am"]
        U = self.lift((self.row_sign * z["R"]).sum(dim=1), coef_g) + self.X.T @ (self.SJ * z["p"])
        if self.dp:
            U[self.pert] += z["bp"] - z["bm"]
        a = z["am"] + z["ap"] - (self.row_eps * z["R"]).sum(dim=1, keepdim=True)
        b = z["bm"] + z["bp"] - self.eps * z["p"].sum(dim=0)[None, :]
        return Point(U, z["R"].sum(dim=1), a, torch.zeros_like(z["p"][0]), b)

    def cone_slack(self, U, signs=None):
        """min_k s_k x_k^T u_j - eps ||u~_j||_1 for every column u_j of U (d x J; d x P with
        ``signs=self.S``): > 0 exactly when u_j is strictly inside its cone (11) (or the cone of (8)
        when eps = 0)."""
        signs = self.SJ if signs is None else signs
        return (signs * (self.X @ U)).min(dim=0).values - self.eps * U[self.pert].abs().sum(dim=0)

    @staticmethod
    def cones(x: Point):
        """The second-order-cone variables (tau_j, u_j), one row per column j."""
        return torch.cat([x.tau[:, None], x.U.T], dim=1)

    def objective_f0(self, x: Point) -> float:
        loss = x.rho.sum() / self.n if self.hinge else 0.5 * (x.rho ** 2).sum()
        return float(loss + self.beta * x.tau.sum())

    def objective_gradient(self, x: Point) -> Point:
        rho = torch.full_like(x.rho, 1.0 / self.n) if self.hinge else x.rho
        return Point(torch.zeros_like(x.U), rho, torch.zeros_like(x.a), torch.full_like(x.tau, self.beta),
                      torch.zeros_like(x.b))

    def objective_hessian(self, dx: Point) -> Point:
        rho = torch.zeros_like(dx.rho) if self.hinge else dx.rho
        return Point(torch.zeros_like(dx.U), rho, torch.zeros_like(dx.a), torch.zeros_like(dx.tau),
                      torch.zeros_like(dx.b))
