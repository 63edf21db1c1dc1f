"""Presolve and feasibility repair for the robust constraints (11) of (15) / (18).

For one pattern D_i the constraints (11) on u = v_i (or w_i) say that u lies in the
polyhedral cone

    C_i = {u : s_k x_k^T u >= eps ||u~||_1 for all k},   s = 2 diag(D_i) - 1,

(u~ = the perturbable coordinates). Its margin m_i = max_{||u~||_1 <= 1} min_k s_k x_k^T u
has the dual  m_i = min { ||X~^T (s o mu)||_inf : mu in the simplex, sum_k mu_k s_k = 0 if bias }.

* If some such mu has ||X~^T (s o mu)||_inf < eps, then C_i = {0} (Farkas): v_i = w_i = 0 in
  every feasible point, the columns can be dropped, and in the dual of the program
  their coefficients c_i can be made 0 by adding a multiple of mu to their
  multipliers, so the lower bound of the reduced program is valid for the full one.
  With pixel data and eps = 10 most sampled cones are trivial (section VII-D).
* Otherwise the averaged smoothed best responses give a direction e_i, and if
  e_i has a positive robust margin it is an interior direction of C_i, used to
  repair a slightly infeasible column exactly: slack(u + t e) >= slack(u) + t slack(e)
  because the slack is concave and positively homogeneous.

Both are found by entropic mirror descent on all patterns at once (GEMMs of size
n * d * P), and every claim is re-checked in float64 before it is used.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..programs import ConvexProgram

#: mirror-descent iterations for the cone margins
MARGIN_ITERATIONS = 600


def cone_margins(program: ConvexProgram, device, dtype=torch.float32):
    """For every pattern: (trivial, interior) where ``trivial`` (P,) bool marks cones
    certified to be {0} and ``interior`` (d, P) holds a direction with positive robust
    margin, or zeros where none was found. Only for eps > 0."""
    X = program.X
    pert = program.perturbable
    Xt = X[:, pert]
    scale = float(np.abs(Xt).max()) or 1.0
    eps = program.eps / scale
    n, P = X.shape[0], program.n_patterns
    S = 2.0 * program.patterns.astype(np.float64) - 1.0
    Xs = torch.as_tensor(Xt / scale, dtype=dtype, device=device)
    St = torch.as_tensor(S, dtype=dtype, device=device)
    groups = [St > 0, St < 0] if program.bias else [torch.ones_like(St, dtype=torch.bool)]
    usable = torch.ones(P, dtype=torch.bool, device=device)
    for g in groups:
        usable &= g.any(dim=0)
    mu = torch.zeros_like(St)
    for g in groups:
        mu += g / (g.sum(dim=0, keepdim=True).clamp_min(1) * len(groups))
    width = math.log(2 * Xs.shape[1])
    kappa = 20.0 * width / eps  # the log-sum-exp is within eps / 20 of the max
    best_val = torch.full((P,), math.inf, dtype=dtype, device=device)
    best_mu = mu.clone()
    u_sum = torch.zeros((Xs.shape[1], P), dtype=dtype, device=device)
    for t in range(MARGIN_ITERATIONS):
        grad_g = Xs.T @ (St * mu)  # d' x P
        val = grad_g.abs().amax(dim=0)
        better = val < best_val
        best_val = torch.where(better, val, best_val)
        best_mu = torch.where(better[None, :], mu, best_mu)
        z = kappa * torch.cat([grad_g, -grad_g])
        w = torch.softmax(z, dim=0)
        r = w[: Xs.shape[1]] - w[Xs.shape[1]:]  # smoothed best response, ||r||_1 <= 1
        u_sum += r
        grad_mu = St * (Xs @ r)
        step = 1.0 / math.sqrt(t + 1.0)
        logits = torch.log(mu.clamp_min(1e-300)) - step * grad_mu / grad_mu.abs().amax(dim=0).clamp_min(1e-30)
        mu = torch.zeros_like(mu)
        for g in groups:
            masked = torch.where(g, logits, torch.tensor(-math.inf, dtype=dtype, device=device))
            mu += torch.softmax(masked, dim=0).nan_to_num(0.0) / len(groups)
    # float64 re-checks
    mu64 = best_mu.to(torch.float64).cpu().numpy()
    mu64 /= mu64.sum(axis=0, keepdims=True).clip(min=1e-300)
    if program.bias:  # make sum_k mu_k s_k = 0 exactly
        pos, neg = (mu64 * (S > 0)).sum(axis=0), (mu64 * (S < 0)).sum(axis=0)
        mu64 = np.where(S > 0, mu64 / (2 * np.where(pos > 0, pos, 1)), mu64 / (2 * np.where(neg > 0, neg, 1)))
    trivial = (np.abs(Xt.T @ (S * mu64)).max(axis=0) < program.eps * (1 - 1e-9)) & usable.cpu().numpy()
    interior = np.zeros((X.shape[1], P))
    interior[pert] = u_sum.to(torch.float64).cpu().numpy() / MARGIN_ITERATIONS
    if program.bias:
        interior[~pert] = _best_bias(X[:, pert] @ interior[pert], S)
    slack = (S * (X @ interior)) - program.eps * np.abs(interior[pert]).sum(axis=0)
    interior[:, (slack.min(axis=0) <= 0) | trivial] = 0.0
    return trivial, interior


def _best_bias(A: np.ndarray, S: np.ndarray) -> np.ndarray:
    """The bias b maximising min_k s_k (a_k + b) for each column of A (n x P)."""
    big = np.inf
    lo = np.where(S > 0, A, big).min(axis=0)
    hi = np.where(S < 0, A, -big).max(axis=0)
    b = np.where(np.isfinite(lo) & np.isfinite(hi), -(lo + hi) / 2, np.where(np.isfinite(lo), -lo, -hi))
    return np.where(np.isfinite(b), b, 0.0)


def repair(program: ConvexProgram, U: np.ndarray, interior: np.ndarray) -> tuple[np.ndarray, int]:
    """Add t_j e_j to every violating column u_j that has an interior direction e_j.

    Returns the repaired U (d x 2P, float64) and the number of columns changed.
    """
    P = program.n_patterns
    worst = np.hstack([program.constraint_slack(U[:, :P]), program.constraint_slack(U[:, P:])]).min(axis=0)
    E = np.hstack([interior, interior])
    e_slack = np.tile(program.constraint_slack(interior).min(axis=0), 2)
    fix = (worst < 0) & (e_slack > 0)
    if not fix.any():
        return U, 0
    U = U.copy()
    t = -worst[fix] / e_slack[fix] * (1 + 1e-9)
    U[:, fix] += t[None, :] * E[:, fix]
    return U, int(fix.sum())
