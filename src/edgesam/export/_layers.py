"""Layers that the encoder, the prompt encoder and the mask decoder share."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

__all__ = ["MLP", "LayerNorm2d"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW tensor, at every pixel.

    Mean and biased variance over ``C``, ``eps`` inside the square root, then a
    per-channel affine transform (``weight``, ``bias``).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        variance = centred.pow(2).mean(dim=1, keepdim=True)
        normalised = centred / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * normalised + self.bias[:, None, None]


class MLP(nn.Module):
    """``depth`` linear layers (``layers.0`` ... ``layers.{depth-1}``), ReLU between them."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, depth: int) -> None:
        super().__init__()
        widths = [in_dim] + [hidden_dim] * (depth - 1) + [out_dim]
        self.layers = nn.ModuleList(
            nn.Linear(width_in, width_out) for width_in, width_out in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = torch.relu(x)
        return x
