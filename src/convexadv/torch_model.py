"""The torch twin of :class:`convexadv.network.ReLUNetwork`, used by AutoAttack (and `ReLUNetwork.to_torch`)."""

from __future__ import annotations

import torch


class TorchReLUNetwork(torch.nn.Module):
    """yhat(x) = sum_j (x^T u_j)_+ alpha_j, with an optional never-perturbed bias input.

    ``hidden`` holds U^T (m x d, d counting the bias input) and ``output`` holds alpha (m,).
    """

    def __init__(self, n_features: int, width: int, *, bias: bool = False, dtype=torch.float64):
        super().__init__()
        self.bias = bool(bias)
        self.hidden = torch.nn.Parameter(torch.empty(width, n_features + int(bias), dtype=dtype))
        self.output = torch.nn.Parameter(torch.empty(width, dtype=dtype))

    @classmethod
    def from_network(cls, network, dtype=None) -> "TorchReLUNetwork":
        dtype = dtype or torch.float64
        model = cls(network.n_features, network.width, bias=network.bias, dtype=dtype)
        with torch.no_grad():
            model.hidden.copy_(torch.as_tensor(network.U.T, dtype=dtype))
            model.output.copy_(torch.as_tensor(network.alpha, dtype=dtype))
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias:
            x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
        return torch.relu(x @ self.hidden.T) @ self.output

    def to_network(self):
        from .network import ReLUNetwork

        return ReLUNetwork(
            U=self.hidden.detach().cpu().double().numpy().T.copy(),
            alpha=self.output.detach().cpu().double().numpy().copy(),
            bias=self.bias,
        )

    def regularizer(self, beta: float) -> torch.Tensor:
        """(beta / 2) sum_j (||u_j||^2 + alpha_j^2), as in (13) and (16)."""
        return 0.5 * beta * (self.hidden.pow(2).sum() + self.output.pow(2).sum())


def as_module(model) -> torch.nn.Module:
    """Accept a ReLUNetwork or any torch module mapping (n, d) inputs to (n,) outputs."""
    if isinstance(model, torch.nn.Module):
        return model
    if hasattr(model, "to_torch"):
        return model.to_torch()
    raise TypeError(f"expected a ReLUNetwork or torch.nn.Module, got {type(model).__name__}")

