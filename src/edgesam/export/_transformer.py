"""SAM's two-way transformer: prompt tokens and image features attend to each other.

Each of the ``depth`` blocks runs, on tokens (queries) and image features (keys):

1. self-attention of the tokens (the first block skips the positional term),
2. cross-attention tokens -> image,
3. an MLP on the tokens (ReLU),
4. cross-attention image -> tokens,

each followed by a residual sum and LayerNorm. A final token -> image attention
and LayerNorm close the stack. Token positional encodings are the original
prompt embeddings; image positional encodings the dense Fourier grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Attention", "TwoWayTransformer"]


class Attention(nn.Module):
    """Multi-head attention whose projections may shrink the width by ``downsample``."""

    def __init__(self, dim: int, num_heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = dim // downsample
        if inner % num_heads:
            raise ValueError(f"{num_heads} heads do not divide the inner width {inner}")
        self.num_heads = num_heads
        self.scale = 1.0 / math.sqrt(inner // num_heads)
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        heads = x.reshape(batch, length, self.num_heads, width // self.num_heads)
        return heads.transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        queries = self._split(self.q_proj(q))
        keys = self._split(self.k_proj(k))
        values = self._split(self.v_proj(v))
        weights = torch.softmax((queries @ keys.transpose(-2, -1)) * self.scale, dim=-1)
        mixed = (weights @ values).transpose(1, 2)
        batch, length = mixed.shape[0], mixed.shape[1]
        out: Tensor = self.out_proj(mixed.reshape(batch, length, -1))
        return out


class MLPBlock(nn.Module):
    """``lin2(relu(lin1(x)))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.lin2(torch.relu(self.lin1(x)))
        return out


class TwoWayBlock(nn.Module):
    """One block of the two-way transformer (see the module docstring)."""

    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, downsample: int, skip_first_pe: bool
    ) -> None:
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample)
        self.skip_first_pe = skip_first_pe

    def forward(
        self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor
    ) -> tuple[Tensor, Tensor]:
        if self.skip_first_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))

        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        k = keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks and a final token -> image attention.

    Parameters
    ----------
    depth, dim, num_heads, mlp_dim, downsample : int
        EdgeSAM uses 2, 256, 8, 2048 and 2 (cross-attention width 128).
    """

    def __init__(
        self,
        depth: int = 2,
        dim: int = 256,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        downsample: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(dim, num_heads, mlp_dim, downsample, skip_first_pe=index == 0)
            for index in range(depth)
        )
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: Tensor, image_pe: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Run the transformer.

        Parameters
        ----------
        image : Tensor of float, shape (B, C, H, W)
        image_pe : Tensor of float, shape (1 or B, C, H, W)
        tokens : Tensor of float, shape (B, T, C)

        Returns
        -------
        tokens : Tensor of float, shape (B, T, C)
        image : Tensor of float, shape (B, H * W, C)
        """
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        q = queries + tokens
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
