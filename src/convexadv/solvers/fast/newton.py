"""Newton systems of the interior-point method, solved exactly by their structure.

The auxiliary variables are eliminated analytically (their blocks are diagonal plus rank one,
written as sums of positive terms so that nothing cancels); what remains is a system in U only,

    [[B_V + K, -K], [-K, B_W + K]]

with one d x d block B_j per column and K the per-sample part in delta = V - W (P' d x P' d).
eps = 0: K has rank n and the Woodbury identity needs one n x n factorisation, summed over the P'
patterns through the harmonic means of B_V and B_W; eps > 0: an exact reduction to delta and one
dense Cholesky of order P'd (the harmonic means carry the rest) or, where the patterns have few
distinct mask rows (G of them), the Woodbury identity over those rows (order G d). Where these lose
accuracy late in a solve, the iteration falls back to the stable forms of :func:`stable_forms`: for
eps = 0 the Woodbury sum over the 2P' columns, for eps > 0 after Woodbury the dense delta system,
then (both losses) one dense Cholesky of the whole system (order 2P'd) while that is affordable.
[D_1 X ... D_P X] is never formed: every product is a masked GEMM.
:func:`newton_product` applies the same matrix exactly, for iterative refinement.
"""

from __future__ import annotations

import torch

from .cones import NTScaling
from .structure import Point, Structure

#: relative diagonal shifts tried when a Newton matrix is not numerically positive definite
JITTER = (1e-15, 1e-13, 1e-11, 1e-9)
#: largest order 2 P d of the dense form (order 12,000: about 1.2 GB per copy in float64)
DENSE_FALLBACK_MAX_ORDER = 12_000
#: most numbers in one temporary of the per-column products (2^19: 4 MiB in float64). Small enough to stay in
#: cache and to be reused by the allocator, where larger temporaries are paged in afresh every iteration: measured
#: against 2^25 on two cores, five runs alternated: CIFAR Algorithm 1 (n = 600, d = 147, 36 patterns) 6.5-8.2 ->
#: 4.6-7.8 s (median 7.6 -> 4.7), the (11) rows' covariances of 48 columns 57 -> 24-27 ms in chunks of 1-8 columns;
#: at n d > 2^19 a chunk is one column
CHUNK_ELEMENTS = 2 ** 19
#: most row blocks of the symmetric products of :func:`add_symmetric_product` (4: 5/8 of the full product;
#: measured on one core: n x n Gram of 5,292 rows, n = 600 0.207 -> 0.150 s, n = 2,000 2.42 -> 1.50 s)
SYMMETRIC_BLOCKS = 4
#: fewest rows per block of those products: narrower blocks ran slower than the full product (72 covariances
#: of d = 65 over 250 rows: 13.8 ms full, 14.9 ms in 2 blocks, 16.7 ms in 4; d = 147: 143 -> 117 ms in 4)
MIN_BLOCK_ROWS = 36
#: smallest order P d of the delta system solved by Woodbury over the mask rows (see groups_woodbury_is_cheaper).
#: Measured on two cores, same hour, CIFAR robust-sampler programs (d = 147): order 1,176 (P = 8, G = 5) 10 % slower
#: by Woodbury, 1,764 (P = 12, G = 8-10) 10 % faster, 2,352 (P = 16, G = 12) 10-15 % faster; digits (d = 65, P = 12,
#: G = 8, order 780) the same either way
WOODBURY_MIN_ORDER = 1600
#: smallest order P d of the dense delta system formed and factored in float32 on the CPU
#: (:func:`single_precision_pays`). Measured on two cores against float64, same hour, identical iteration counts:
#: Gaussian programs (n = 600, d = 147, eps = 0.02) with 8 / 16 / 24 / 36 patterns (order 1,176-5,292) 7.4-7.7 ->
#: 5.5 s, 6.5 -> 5.1, 13.4 -> 9.9, 35.4-37.4 -> 24.2-28.0 s; CIFAR eps = 2 (24 patterns) 15.0-16.5 -> 14.3-16.0 s;
#: the CIFAR programs of Table I (eps = 10, 15 patterns kept) and of the robust sampler with 8 patterns, and digits
#: with 5 patterns kept (order 325, threshold lowered), the same within the run-to-run variation
SINGLE_PRECISION_MIN_ORDER = 1000


def newton_product(structure: Structure, w: dict, scaling: NTScaling, dx: Point) -> Point:
    """(P + A^T diag(w) A + E^T W^-2 E) dx, the matrix :func:`factor` factors, computed exactly."""
    out = structure.adjoint({k: w[k] * s for k, s in structure.rows(dx, constant=False).items()})
    return out.step(structure.objective_hessian(dx), 1.0).plus_cones(
        scaling.apply_inverse_squared(structure.cones(dx)))


def factor(structure: Structure, w: dict, scaling: NTScaling, *, form: str = "structured"):
    """Factor the Newton matrix  P + A^T diag(w) A + E^T W^-2 E  (A: the rows, E: the cones, W the
    Nesterov-Todd scaling ``scaling``) and return a function solving it for a right-hand side given
    as a :class:`Point`. ``form``: "structured" (the fastest, through the harmonic means of
    :func:`_harmonic_means`) or one of the stable forms of :func:`stable_forms`, for iterations where
    the harmonic means lose accuracy."""
    if form not in ("structured", *stable_forms(structure)):
        raise ValueError(f"form must be 'structured' or one of {stable_forms(structure)} here, got {form!r}")
    n, d, dp, P, J = structure.n, structure.d, structure.dp, structure.P, structure.J
    eps = structure.eps
    # --- per sample: rows R (n, 2), a - g (cm), a + g (cp) ---
    wR, cm, cp = w["R"], w["am"], w["ap"]
    A_s, B_s = cp + cm, cp - cm  # (g_l, a_l) block [[A, B], [B, A]]
    # stage 1: eliminate rho. With the objective's curvature delta as a third row, the
    # remaining quadratic is sum_r omega_r (alpha_r yhat + beta_r 1^T a)^2 over the pairs r
    # of rows (weighted-variance identity: no cancellation)
    delta = torch.zeros_like(wR[:, 0]) if structure.hinge else torch.ones_like(wR[:, 0])
    w1, w2 = wR[:, 0], wR[:, 1]
    W_sum = w1 + w2 + delta
    H_ry = (wR * structure.row_sign).sum(dim=1)
    H_ra = (wR * structure.row_eps).sum(dim=1)  # H_rho,a = -H_ra 1^T
    (s1_, s2_), (e1, e2) = structure.row_sign.unbind(dim=1), structure.row_eps.tolist()
    omega = torch.stack([w1 * w2, w1 * delta, w2 * delta], dim=1) / W_sum[:, None]
    alpha = torch.stack([s1_ - s2_, s1_, s2_], dim=1)
    beta = wR.new_tensor([e2 - e1, -e1, -e2])[None, :].expand_as(alpha)
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
    head = scaling.inverse_squared_first_column()
    H_tt = head[:, 0]
    H_ut = head[:, 1:].T  # (d, J)
    Bcol = scaling.schur()  # the cone's part of B_j after eliminating tau_j
    # eliminate b (H_bb = diag(A_c) + eps^2 sum(w) 11^T, H_ub = Pi diag(B_c) - eps v 1^T); the
    # result is a sum of PSD terms: the centred covariance of the rows s_k x_k, a rank-one
    # term along their weighted mean, and the diagonal of the l1 rows
    v = structure.X.T @ (wp * structure.SJ)  # (d, J)
    w_sum = wp.sum(dim=0)
    mean = v / w_sum
    for cols in column_chunks(J, n * d):
        centred = structure.SJ.T[cols, :, None] * structure.X[None, :, :] - mean.T[cols, None, :]  # (c, n, d)
        add_symmetric_product(Bcol[cols], (wp[:, cols].T[:, :, None] * centred).mT, centred)
    iota_c = 1.0 / A_c
    zeta_c = 1 + eps ** 2 * w_sum * iota_c.sum(dim=0)
    theta_c = eps ** 2 * w_sum / zeta_c
    phi_c = torch.zeros_like(v)
    if dp:
        phi_c[structure.pert] = B_c * iota_c
        Bcol[:, structure.pert, structure.pert] += (4 * c_bp * c_bm * iota_c).T
    lifted = mean + eps * phi_c
    Bcol.baddbmm_(((w_sum / zeta_c) * lifted).T[:, :, None], lifted.T[:, None, :])  # in place: no (J, d, d) temporary

    def solve_bb(r):  # H_bb^-1 r for r (d', J)
        return iota_c * r - theta_c[None, :] * (iota_c * r).sum(dim=0, keepdim=True) * iota_c

    solve_U = _factor_reduced(structure, Bcol, E, phi, C11, C12, C22, form)

    def solve(r: Point) -> Point:
        # per sample: reduce the right-hand side to (yhat, g) space
        g1_a = r.a + (H_ra * r.rho / W_sum)[:, None]
        z_a = solve_aa(g1_a)
        g2_y = -H_ry * r.rho / W_sum - h_ya * z_a.sum(dim=1)
        g2_g = -B_s * z_a
        # per column
        rhs = r.U - H_ut * (r.tau / H_tt)[None, :]
        z_b = solve_bb(r.b)
        if dp:
            rhs[structure.pert] -= B_c * z_b
        rhs = rhs + eps * v * z_b.sum(dim=0)[None, :] + structure.lift(g2_y, g2_g)
        dU = solve_U(rhs)
        # back-substitution
        dyhat, dg = structure.outputs(dU)
        da = solve_aa(g1_a - h_ya[:, None] * dyhat[:, None] - B_s * dg)
        drho = (r.rho - H_ry * dyhat + H_ra * da.sum(dim=1)) / W_sum
        dtau = (r.tau - (H_ut * dU).sum(dim=0)) / H_tt
        dUt = dU[structure.pert] if dp else dU.new_zeros(0, J)
        db = solve_bb(r.b - B_c * dUt + eps * (v * dU).sum(dim=0)[None, :])
        return Point(dU, drho, da, dtau, db)

    return solve


def _factor_reduced(structure: Structure, Bcol, E, phi, C11, C12, C22, form: str):
    """Factor blockdiag(B_j) + [I; -I] K [I, -I] (the Newton matrix in U) and return its solver, in
    the ``form`` of :func:`factor`: "structured" is Woodbury over the P patterns for eps = 0
    (:func:`_factor_woodbury`) and for eps > 0 the reduction to delta = V - W (:func:`_factor_delta`)
    with the delta system solved by Woodbury over the distinct mask rows where that is cheaper
    (:func:`groups_woodbury_is_cheaper`), else by one dense Cholesky ("delta", also the first stable
    form after Woodbury); "per_column" (eps = 0) is Woodbury over the 2P columns; "dense" one Cholesky
    of the whole matrix (:func:`_factor_dense`); ``form`` is checked by :func:`factor`."""
    if form == "dense":
        return _factor_dense(structure, Bcol, _dense_sample_hessian(structure, E, phi, C11, C12, C22))
    if structure.dp == 0:
        return _factor_woodbury(structure, Bcol, C11, per_column=form == "per_column")
    if form == "structured" and groups_woodbury_is_cheaper(structure):
        left, right = _sample_rows(structure, phi, C11, C12, C22)
        return _factor_delta(structure, Bcol, group_hessians=_group_hessians(structure, left, right, E))
    if form == "structured" and structure.factor_in_single:
        try:
            return _factor_delta(structure, Bcol, K=_dense_sample_hessian(structure, E, phi, C11, C12, C22,
                                                                          dtype=torch.float32))
        except torch.linalg.LinAlgError:  # not positive definite in float32 (or a harmonic mean, which the float64
            structure.factor_in_single = False  # attempt then reports): float64 for the rest of the solve
    return _factor_delta(structure, Bcol, K=_dense_sample_hessian(structure, E, phi, C11, C12, C22))


def _factor_woodbury(structure: Structure, Bcol, C11, per_column: bool = False):
    """eps = 0: K = F^T diag(C11) F has rank n (row k of F: M_k (x) x_k), so the Woodbury identity
    over all 2P columns needs only the d x d blocks B_j and one n x n factorisation of

        I + sum_i G_i (B_Vi^-1 + B_Wi^-1) G_i^T,   G_i = diag(C11^1/2 M_i) X  (n x d, pattern i):

    columns v_i and w_i enter F with opposite signs and the same rows, so each pattern contributes
    once, through the harmonic mean S_i = (B_Vi^-1 + B_Wi^-1)^-1 of :func:`_harmonic_means` (half
    the operations), accumulated as Z_i^T Z_i, Z_i = L_Si^-1 G_i^T. With ``per_column`` (the
    fallback: late in some solves S_i loses accuracy where B_Vi and B_Wi are far apart) the sum runs
    over the 2P columns instead, Z_j = L_j^-1 G_j^T. Both are accumulated over chunks; the n x 2Pd
    matrix [G_1 ... G_2P] and its product with B^-1 are never stored: each solve applies them column
    by column (memory O(P d^2 + n^2 + n d) at any n)."""
    P, d, J, n = structure.P, structure.d, structure.J, structure.n
    L = cholesky(Bcol)  # (J, d, d)
    root = C11.clamp(min=0).sqrt()
    weights = root[:, None] * structure.M  # (n, P): row weights of G_i
    if per_column:  # (factor, row weights) per chunk of columns; column j of V or W has pattern j mod P
        column_weights = weights.T.repeat(2, 1)  # (J, n)
        chunks = ((L[cols], column_weights[cols]) for cols in column_chunks(J, n * d))
    else:  # per chunk of patterns: the factor of S_i
        chunks = ((cholesky(_harmonic_means(Bcol[pats], Bcol[P + pats.start:P + pats.stop])[1]), weights.T[pats])
                  for pats in column_chunks(P, 2 * n * d + 5 * d * d))
    small = structure.X.new_zeros(n, n)
    for chunk_factor, chunk_weights in chunks:
        # Z_j^T = G_j L_j^-T, solved from the right: its transpose Z is then contiguous, so that
        # sum_j Z_j^T Z_j is one Gram product over the stacked rows of Z without a copy
        Zt = torch.linalg.solve_triangular(chunk_factor.mT, chunk_weights[:, :, None] * structure.X[None, :, :],
                                           upper=True, left=False)
        Z = Zt.mT.reshape(-1, n)
        add_symmetric_product(small, Z.T, Z)
    small.diagonal().add_(1.0)
    L_small = cholesky(small)
    signs = torch.cat([torch.ones(P), -torch.ones(P)]).to(C11)  # [F, -F]: W columns enter with -1

    def solve(rhs):
        y0 = cholesky_solve(L, rhs.T[:, :, None])[:, :, 0]  # (J, d): B^-1 rhs, column by column
        G_y0 = (weights * (structure.X @ (y0[:P] - y0[P:]).T)).sum(dim=1)  # [G_V, -G_W] y0
        t = cholesky_solve(L_small, G_y0[:, None])[:, 0]
        Gt_t = signs[:, None] * (structure.X.T @ (weights * t[:, None])).T.repeat(2, 1)  # (J, d)
        return (y0 - cholesky_solve(L, Gt_t[:, :, None])[:, :, 0]).T

    return solve


def add_symmetric_product(out: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                          blocks: int | None = None) -> None:
    """out += left @ right for a product known to be symmetric (a Gram matrix, or a batch of them:
    leading batch axis), computing only its lower block triangle: row block b of ``out`` against
    columns 0 ... end of b, (blocks + 1) / (2 blocks) of the full product's multiply-adds (5/8 with 4
    blocks; torch has no symmetric rank-k update); the blocks above the diagonal are then copied from
    their mirror images below it. ``out`` must be symmetric on entry. ``blocks`` defaults to
    SYMMETRIC_BLOCKS, fewer where blocks would have under MIN_BLOCK_ROWS rows (one: the full product)."""
    n = out.shape[-1]
    if blocks is None:
        blocks = max(1, min(SYMMETRIC_BLOCKS, n // MIN_BLOCK_ROWS))
    step = -(-n // blocks)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = out[..., start:stop, :stop]
        (block.baddbmm_ if out.ndim == 3 else block.addmm_)(left[..., start:stop, :], right[..., :stop])
    for start in range(0, n - step, step):
        stop = start + step
        out[..., start:stop, stop:] = out[..., stop:, start:stop].mT


def _harmonic_means(B_V, B_W):
    """(L_T, S) per pattern: L_T the Cholesky factor of T = B_V + B_W and S = B_V T^-1 B_W =
    (B_V^-1 + B_W^-1)^-1, formed as Y_V^T Y_W with Y = L_T^-1 B (no inverse of a B and no
    subtraction) and symmetrised."""
    L_T = cholesky(B_V + B_W)
    Y_V = torch.linalg.solve_triangular(L_T, B_V, upper=False)
    Y_W = torch.linalg.solve_triangular(L_T, B_W, upper=False)
    harmonic = Y_V.mT @ Y_W
    return L_T, 0.5 * (harmonic + harmonic.mT)


def column_chunks(J: int, per_column: int) -> list[slice]:
    """Slices of the J columns, in chunks whose temporaries hold at most CHUNK_ELEMENTS numbers
    (``per_column`` each, at least one column per chunk): bounds the memory of the per-column
    products at large n and d (slices, so that the blocks of a chunk are updated in place)."""
    size = columns_per_chunk(per_column)
    return [slice(start, min(start + size, J)) for start in range(0, J, size)]


def columns_per_chunk(per_column: int) -> int:
    """Columns in one chunk of :func:`column_chunks`: as many as fit in CHUNK_ELEMENTS numbers, one at least."""
    return max(1, CHUNK_ELEMENTS // max(per_column, 1))


def _factor_delta(structure: Structure, Bcol, *, K=None, group_hessians=None):
    """eps > 0: the system depends on V - W through K (P, d, P, d) only, so it reduces exactly to one
    in delta = V - W,

        (S + K) delta = B_W T^-1 r_V - B_V T^-1 r_W,   S = B_V T^-1 B_W,  T = B_V + B_W

    per pattern (S the harmonic mean of B_V and B_W, :func:`_harmonic_means`), then
    V = T^-1 (r_V + r_W + B_W delta) and
    W = T^-1 (r_V + r_W - B_V delta) (V - W = delta; K delta, which can be a difference of large
    terms, is never formed). The delta system is solved either by one dense Cholesky of order P d
    (given ``K``; not 2 P d: 8 times fewer operations, 4 times less memory; in float32 when ``K`` is, see
    :func:`single_precision_pays`) or, given the
    ``group_hessians`` C_g of :func:`_group_hessians`, by Woodbury over the distinct mask rows
    (:func:`_factor_delta_woodbury`, order G d). Late in some solves S or its inverse loses accuracy
    where B_V and B_W are far apart; the iteration then falls back to the dense delta system and to
    :func:`_factor_dense` (see :func:`stable_forms`)."""
    P, d = structure.P, structure.d
    m = P * d
    B_V, B_W = Bcol[:P], Bcol[P:]
    if group_hessians is None:
        L_T, harmonic = _harmonic_means(B_V, B_W)
        idx = torch.arange(P, device=K.device)
        K[idx, :, idx, :] += harmonic.to(K.dtype)
        L_delta = cholesky(K.reshape(m, m), regularise=K.dtype == Bcol.dtype)

        def solve_delta(r):
            return cholesky_solve(L_delta, r.reshape(m, 1).to(L_delta.dtype)).to(r.dtype).reshape(P, d, 1)
    else:
        L_T = cholesky(B_V + B_W)
        solve_delta = _factor_delta_woodbury(structure, B_V, B_W, group_hessians)

    def solve(rhs):
        r_V, r_W = rhs[:, :P].T[:, :, None], rhs[:, P:].T[:, :, None]  # (P, d, 1)
        delta = solve_delta(B_W @ cholesky_solve(L_T, r_V) - B_V @ cholesky_solve(L_T, r_W))
        V = cholesky_solve(L_T, r_V + r_W + B_W @ delta)
        W = cholesky_solve(L_T, r_V + r_W - B_V @ delta)
        return torch.cat([V, W])[:, :, 0].T

    return solve


def _factor_delta_woodbury(structure: Structure, B_V, B_W, C):
    """The delta system (S + K) delta = r of :func:`_factor_delta` by the Woodbury identity over the G
    distinct mask rows m_g: K = F C F^T with F = [m_g (x) I_d]_g (P d x G d) and C = blockdiag(C_g), so

        (S + K)^-1 = S^-1 - S^-1 F (C^-1 + H)^-1 F^T S^-1,   H = F^T S^-1 F,

    with S_i^-1 = B_Vi^-1 + B_Wi^-1 (a sum of inverses: no harmonic mean is formed),
    H[g, g'] = sum_i M_gi M_g'i S_i^-1 and C_g^-1 from the Cholesky factor of C_g (positive definite: the
    l1 rows' weights E > 0 on every perturbable coordinate, the samples' rows on the rest; where rounding
    leaves it singular, :func:`cholesky`'s shift and the refinement of every direction take over). One
    Cholesky of order G d instead of P d: (G / P)^3 of its operations, plus G inverses of order d; taken where
    that is cheaper (:func:`groups_woodbury_is_cheaper`). (Until the eighteenth session the capacitance was
    I + R^T H R with C = R R^T: its G (G + 1) block products of order d took 115 ms per factorisation of the
    CIFAR robust-sampler program with 36 patterns, G = 25, d = 147, whose solve now takes 20.5-23.5 s instead
    of 24.0-25.0 s, three runs alternated, the same 34 iterations; the same iterations and stable-form
    fallbacks on 30 of 31 random programs that take this form, one iteration more on the other.) Returns the
    solver of the delta system, r as (P, d, 1)."""
    P, d = structure.P, structure.d
    rows = structure.mask_rows  # (G, P): m_g
    G = rows.shape[0]
    S_inv = torch.cholesky_inverse(cholesky(B_V)) + torch.cholesky_inverse(cholesky(B_W))  # (P, d, d)
    capacitance = _block_gram(rows, S_inv, S_inv.new_empty(G, d, G, d))  # H[g, l, g', l'], C^-1 added below
    groups = torch.arange(G, device=C.device)
    capacitance[groups, :, groups, :] += torch.cholesky_inverse(cholesky(0.5 * (C + C.mT)))
    L_cap = cholesky(capacitance.reshape(G * d, G * d))

    def solve_delta(r):
        y = S_inv @ r  # S^-1 r, (P, d, 1)
        t = cholesky_solve(L_cap, (rows @ y[:, :, 0]).reshape(G * d, 1)).reshape(G, d)  # (C^-1 + H)^-1 F^T S^-1 r
        return y - S_inv @ (rows.T @ t)[:, :, None]

    return solve_delta


def groups_woodbury_is_cheaper(structure: Structure) -> bool:
    """Whether the delta system is solved by :func:`_factor_delta_woodbury` (G distinct mask rows)
    rather than by its dense Cholesky: per iteration, in units of d^3 flops, Woodbury costs
    G^3 / 3 (the Cholesky of order G d) + 2 G (G + 1) + 3 P (S^-1 from the factors of B_V and B_W) and the
    dense system P^3 / 3 + 4 P (its Cholesky and the harmonic means). The 2 G (G + 1) are the products of
    the capacitance I + R^T H R of the twelfth to seventeenth sessions, with which this rule was measured;
    the capacitance C^-1 + H of :func:`_factor_delta_woodbury` costs G instead (the inverses of the C_g), so
    the rule now errs towards the dense system, as measured, rather than being moved without measurements.
    Woodbury is taken where it saves at least a fifth: its smaller
    products run slower per flop and its directions take more refinement steps (measured on two cores,
    d = 147: P = 24, G = 18 and P = 36, G = 25 save 16 % and 38 % of a
    factorisation and six solves; P = 16, G = 12 is taken
    too, and solved in 10-15 % less time than by the dense form), and only from order P d =
    WOODBURY_MIN_ORDER on: below it Woodbury's extra calls, each of a few milliseconds, cost more than its
    flops save (d = 11: 3-18 % slower at every P up to 36; d = 147, P = 8, G = 5: 10 % slower). The robust
    sampler's patterns on image data have G ~ 0.7 P; the paper sampler's and random data's have G >= P
    (never taken)."""
    G, P = structure.mask_rows.shape[0], structure.P
    return (structure.dp > 0 and P * structure.d >= WOODBURY_MIN_ORDER
            and G ** 3 / 3 + 2 * G * (G + 1) + 3 * P < 0.8 * (P ** 3 / 3 + 4 * P))


def single_precision_pays(structure: Structure) -> bool:
    """Whether the iterations start with the dense delta system (:func:`_factor_delta`) formed and factored in
    float32, as a preconditioner: every direction is still refined against the exact float64 product
    (:func:`newton_product`) to the same residual, so only the number of refinement steps changes. The iterations
    return to float64 for the rest of the solve once a refinement step contracts too little or the float32
    matrix is not positive definite (late in a solve, where its condition number nears 1 / 6e-8). Taken on the
    CPU in float64 (where forming the sample Hessian K and its Cholesky of order P d dominate an iteration: the
    Cholesky runs about 1.6 times faster in float32, 0.44 against 0.71 s at order 5,292 on two cores, and K's
    products move half the bytes; K then takes half the memory) from order SINGLE_PRECISION_MIN_ORDER on; not
    on a GPU, where it was not measured, nor for Woodbury over the mask rows (its capacitance matrix lost every
    digit in float32 on the CIFAR robust-sampler programs)."""
    return (structure.X.device.type == "cpu" and structure.X.dtype == torch.float64 and structure.dp > 0
            and structure.P * structure.d >= SINGLE_PRECISION_MIN_ORDER and not groups_woodbury_is_cheaper(structure))


def factor_work(structure: Structure) -> float:
    """Multiply-adds of one structured factorisation (:func:`factor`), its leading terms: the per-column
    covariances J n d^2 and, for eps = 0, the Woodbury Gram P n^2 d and its Cholesky n^3 / 3; for
    eps > 0 the delta system's Cholesky, (P d)^3 / 3, or with Woodbury over the G mask rows
    (G d)^3 / 3 + G (G + 1) d^3 (the products of the earlier capacitance I + R^T H R, kept so that the
    corrector threshold decides as it was measured; :func:`_factor_delta_woodbury`'s costs G d^3). (The
    iterations use it to decide whether centrality correctors, one more solve each, are worth their cost.)"""
    n, d, P = structure.n, structure.d, structure.P
    work = structure.J * n * d ** 2
    if structure.dp == 0:
        return work + P * n ** 2 * d + n ** 3 / 3
    if groups_woodbury_is_cheaper(structure):
        G = structure.mask_rows.shape[0]
        return work + (G * d) ** 3 / 3 + G * (G + 1) * d ** 3
    return work + (P * d) ** 3 / 3


def memory_needed(n: int, d: int, n_patterns: int, robust: bool, element_size: int = 8) -> int:
    """Bytes the Newton systems hold at their peak, about, for n samples, dimension d and
    ``n_patterns`` patterns kept: the (J, d, d) blocks B_j and their factors (three such arrays with
    eps = 0, counting the copy of a regularised retry; four with eps > 0, where the delta reduction
    adds the harmonic means), four chunks of the per-column products, the per-sample rows, and the
    Woodbury matrix of order n (eps = 0) or K and its factor of order P d (``robust``: eps > 0).
    The Nesterov-Todd scalings are vectors (:class:`.cones.NTScaling`). The dense form is not
    counted (see :func:`stable_forms`). Measured peaks on CPU (resident memory above the data's), eps = 0:
    1.6 GiB at n = 2,000, d = 2,048, 8 patterns (estimate 2.0); 1.1 GiB at n = 4,000, d = 1,024, 16 patterns
    (1.5); 14.2 GiB at n = 10,000, d = 3,072, 36 patterns (20.7); eps > 0: 0.6 GiB at n = 600, d = 147,
    36 patterns (0.9; the last two measured with chunks of up to 2^25 numbers, the same or more memory)."""
    J = 2 * n_patterns
    chunk = min(J, columns_per_chunk(n * d)) * n * d  # numbers in one chunk of the per-column products
    elements = 10 * n * d + 10 * n * J + 4 * chunk
    if robust:
        elements += 4 * J * d ** 2 + 4 * (n_patterns * d) ** 2
    else:
        elements += 3 * J * d ** 2 + 3 * n ** 2
    return elements * element_size


def available_memory(device: torch.device) -> int | None:
    """Bytes free on the device: torch's count on a GPU, MemAvailable of /proc/meminfo on the CPU;
    None where unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def stable_forms(structure: Structure) -> list[str]:
    """The forms :func:`factor` falls back to, in order, where the structured form's refined direction
    stays inaccurate: for eps = 0 the Woodbury sum over the 2P columns ("per_column", no more memory);
    for eps > 0 where the structured form is Woodbury over the mask rows, the dense delta system
    ("delta"); then for both "dense", one Cholesky of the whole matrix of order 2 P d, while that order
    is at most DENSE_FALLBACK_MAX_ORDER. (Woodbury is exact in exact arithmetic only: with curvatures
    1e18 apart, e.g. a bias column of ones beside features of size 1e3, its per-column sum can leave a
    relative residual of 1e-3 where the dense Cholesky, backward stable, leaves 1e-9.)"""
    dense = ["dense"] if structure.J * structure.d <= DENSE_FALLBACK_MAX_ORDER else []
    if structure.dp == 0:
        return ["per_column"] + dense
    return (["delta"] if groups_woodbury_is_cheaper(structure) else []) + dense


def _factor_dense(structure: Structure, Bcol, K):
    """The stable form "dense": one Cholesky of the whole matrix of order 2 P d, no elimination
    (backward stable in the original variables; for eps > 0 8 times the operations of
    :func:`_factor_delta`)."""
    J, d, P = structure.J, structure.d, structure.P
    K = K.reshape(P * d, P * d)
    H = torch.cat([torch.cat([K, -K], dim=1), torch.cat([-K, K], dim=1)], dim=0).reshape(J, d, J, d)
    idx = torch.arange(J, device=K.device)
    H[idx, :, idx, :] += Bcol
    L_full = cholesky(H.reshape(J * d, J * d))

    def solve(rhs):
        return cholesky_solve(L_full, rhs.T.reshape(J * d, 1)).reshape(J, d).T

    return solve


def _sample_rows(structure: Structure, phi, C11, C12, C22):
    """(left, right), each (rows, d), with Q_k = sum over sample k's rows r of left_r right_r^T:
    Q_k = [x_k, phi_k] C_k [x_k, phi_k]^T, rows k and n + k with eps > 0; C11_k x_k x_k^T, row k, with
    eps = 0 (the dense form: phi = 0, no l1 part)."""
    n, d = structure.n, structure.d
    if not structure.dp:
        return C11[:, None] * structure.X, structure.X
    phi_full = structure.X.new_zeros(n, d)
    phi_full[:, structure.pert] = phi
    left = torch.cat([C11[:, None] * structure.X + C12[:, None] * phi_full,
                      C12[:, None] * structure.X + C22[:, None] * phi_full])  # (2n, d)
    return left, torch.cat([structure.X, phi_full])


def _dense_sample_hessian(structure: Structure, E, phi, C11, C12, C22, dtype=None):
    """K[(i, l), (i', l')] = sum_k M_ki M_ki' (Q_k[l, l'] + [l = l' perturbable] E_kl) with
    Q_k = [x_k, phi_k] C_k [x_k, phi_k]^T, as (P, d, P, d), in whichever of two exact orders of the
    sum costs fewer operations: by pattern (block row i sums over the samples with M_ki = 1 only and
    the blocks below the diagonal are mirrored: one GEMM per pattern, about a quarter of the
    operations of the plain product over all samples and blocks) or, where few distinct rows m_g of
    M occur (G of them; patterns from the robust sampler's lines, on image data: G ~ 0.7 P), by
    those rows: K = sum_g (m_g m_g^T) (x) C_g with C_g of :func:`_group_hessians` (one GEMM per
    distinct row, then per pattern i one batched product written straight into block row i, P G d^2
    multiply-adds each: no transposed copy of K). K is the structure's workspace
    (:meth:`.structure.Structure.workspace`): it is valid until the next call. ``dtype``: that of K (default:
    the structure's), the sums run in it."""
    n, d, P = structure.n, structure.d, structure.P
    left, right = _sample_rows(structure, phi, C11, C12, C22)
    if dtype is not None:
        left, right, E = left.to(dtype), right.to(dtype), E.to(dtype)
    rows_per_sample = left.shape[0] // n  # 2 with eps > 0 (the x and phi rows), 1 without
    G = structure.mask_rows.shape[0]
    by_pattern = rows_per_sample * float((structure.M.sum(dim=0) * torch.arange(P, 0, -1).to(structure.M)).sum())
    K = structure.workspace((P, d, P, d), left.dtype)  # every block is written below
    if rows_per_sample * n + G * P * P < by_pattern:  # operations in units of d^2 multiply-adds
        C = _group_hessians(structure, left, right, E if structure.dp else None)
        return _block_gram(structure.mask_rows.T.to(K.dtype), C, K)  # K[i, l, j, l'] = sum_g m_gi m_gj C_g[l, l']
    mask = structure.M.repeat(rows_per_sample, 1) > 0  # (rows, P): sample k's rows k, n + k share its pattern row
    for i in range(P):
        rows = mask[:, i]
        block = right[rows][:, None, :] * mask[rows, i:, None]  # (r, P - i, d)
        K[i, :, i:, :] = (left[rows].T @ block.reshape(-1, (P - i) * d)).reshape(d, P - i, d)
        K[i + 1:, :, i, :] = K[i, :, i + 1:, :].permute(1, 2, 0)
    if structure.dp:
        M = structure.M.to(K.dtype)
        Ediag = torch.einsum("kl,ki,kp->lip", E, M, M)  # (d', P, P)
        idx = structure.pert
        K[:, idx, :, idx] += Ediag
    return K


def _block_gram(weights, blocks, out):
    """out[a, :, b, :] = sum_c weights[a, c] weights[b, c] blocks[c] for weights (A, C), blocks (C, d, d) and out
    (A, d, A, d), returned: one batched product per block row a, written straight into it (no transposed copy).
    The grouped sample Hessian K (a, b patterns, c mask rows) and the capacitance's H (a, b mask rows, c
    patterns) are both this sum."""
    by_row = blocks.transpose(0, 1).contiguous()  # (d, C, d)
    for a, weights_a in enumerate(weights):
        torch.matmul(weights * weights_a, by_row, out=out[a])
    return out


def _group_hessians(structure: Structure, left, right, E):
    """C_g (G, d, d): the sum over the samples k whose mask row is m_g of Q_k (their rows of left^T right,
    :func:`_sample_rows`) plus diag(E_k) on the perturbable coordinates, when E is given; then
    K = sum_g (m_g m_g^T) (x) C_g. Every term is the same as in the sum by pattern; only the order of the
    additions differs."""
    n, d = structure.n, structure.d
    group = structure.mask_group
    G = structure.mask_rows.shape[0]
    row_group = group.repeat(left.shape[0] // n)  # sample k's rows k, n + k, ... all belong to its group
    order = torch.argsort(row_group, stable=True)
    counts = torch.bincount(row_group, minlength=G).tolist()
    C = left.new_empty(G, d, d)
    for g, members in enumerate(torch.split(order, counts)):  # G GEMMs, 2n rows in all (every group has a sample)
        C[g] = left[members].T @ right[members]
    if E is not None:
        idx = structure.pert
        C[:, idx, idx] += E.new_zeros(G, E.shape[1]).index_add_(0, group, E)
    return C


def cholesky_solve(L: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(L L^T)^-1 b for a Cholesky factor L (or batch): two triangular solves, several times faster
    than torch.cholesky_solve for few right-hand sides."""
    return torch.linalg.solve_triangular(L.mT, torch.linalg.solve_triangular(L, b, upper=False), upper=True)


def cholesky(A: torch.Tensor, regularise: bool = True) -> torch.Tensor:
    """Cholesky factor of the SPD matrix (or batch) A. Late in the iterations A can hold
    curvatures 1e18 apart and lose definiteness to rounding; then a diagonal shift of
    JITTER[i] * max diagonal (the smallest that works) is added, as interior-point codes do. Without
    ``regularise`` (the float32 factors of :func:`single_precision_pays`) LinAlgError is raised instead, also
    where the factor is not finite."""
    L, info = torch.linalg.cholesky_ex(A)
    if not regularise and not (bool((info == 0).all()) and bool(torch.isfinite(L.diagonal(dim1=-2, dim2=-1)).all())):
        raise torch.linalg.LinAlgError("not positive definite in this precision")
    if not bool((info > 0).any()):
        return L
    scale = A.diagonal(dim1=-2, dim2=-1).abs().amax(dim=-1)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    for jitter in JITTER:
        L, info = torch.linalg.cholesky_ex(A + (jitter * scale)[..., None, None] * eye)
        if not bool((info > 0).any()):
            return L
    raise torch.linalg.LinAlgError("Newton system not positive definite even after regularisation")
