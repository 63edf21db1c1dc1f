"""The strictly feasible starting point of the interior-point method (cold, or warm from a nearby solution)."""

from __future__ import annotations

import numpy as np
import torch

from .structure import Point, Structure

#: share of the cold starting point in a warm start
WARM_BLEND = 0.2


def start_point(structure: Structure, interior: np.ndarray, previous: np.ndarray | None = None) -> Point:
    """A strictly feasible, roughly centred point: v_i = w_i (so yhat = g = 0) along an
    interior direction of cone i, scaled so that every row of (11) has slack at least 1.

    With ``previous`` (d x 2P, a solution of a nearby program, e.g. another beta or eps) the
    point is WARM_BLEND * that start + (1 - WARM_BLEND) * previous, column by column, with a
    larger share of the cold start wherever the previous column violates this program's (11)."""
    E = torch.as_tensor(interior).to(structure.X)  # (d, P)
    U = torch.cat([E, E], dim=1) * (2 / structure.cone_slack(E, structure.S)).repeat(2)[None, :]
    if previous is not None:
        U = _blend(structure, U, torch.as_tensor(previous).to(structure.X))
    slack = structure.cone_slack(U)
    if structure.dp:
        b = U[structure.pert].abs() + (slack / (2 * structure.eps * structure.dp))[None, :]
        a = U.new_full((structure.n, structure.dp), 1 / (structure.eps * structure.dp))
    else:
        b = U.new_zeros(0, structure.J)
        a = U.new_zeros(structure.n, 0)
    yhat, g = structure.outputs(U)
    a = a + g.abs()
    tau = 2 * torch.linalg.norm(U, dim=0)
    rest = structure.eps * a.sum(dim=1)
    loss = torch.clamp(1 - structure.y * yhat + rest, min=0) if structure.hinge else (yhat - structure.y).abs() + rest
    return Point(U, loss + 1, a, tau, b)


def _blend(structure: Structure, cold, previous):
    """The warm-start columns: the first share of the cold start in WARM_BLEND, 0.5, 1 that
    leaves every row of (11) strictly satisfied (1 = the cold column itself)."""
    out = cold.clone()
    unsettled = torch.ones(structure.J, dtype=torch.bool, device=cold.device)
    for share in (WARM_BLEND, 0.5):
        U = share * cold + (1 - share) * previous
        take = unsettled & (structure.cone_slack(U) > 0)
        out[:, take] = U[:, take]
        unsettled &= ~take
    return out
