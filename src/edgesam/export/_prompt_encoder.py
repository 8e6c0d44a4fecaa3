"""SAM's prompt encoder, as EdgeSAM keeps it: points and masks -> embeddings.

Sparse prompts: each point ``(x, y)`` in the 1024 input frame is shifted to its
pixel centre (+0.5), scaled to [0, 1], and encoded with random Fourier
features (a fixed Gaussian matrix from the checkpoint). A learned vector is
then added according to its label:

====== ==========================================================
label  embedding
====== ==========================================================
-1     padding: positional encoding dropped, ``not_a_point_embed``
0      negative point: ``point_embeddings[0]`` added
1      positive point: ``point_embeddings[1]`` added
2, 3   box top-left / bottom-right: ``point_embeddings[2 / 3]``
-2     positional encoding only (nothing added)
====== ==========================================================

Every label is handled with masks and sums, no in-place indexing, so the same
code exports to ONNX and traces with a dynamic number of points.

Dense prompt: a 256x256 mask of logits through ``mask_downscaling`` (two 2x2
stride-2 convs with LayerNorm2d + GELU, then 1x1 to 256 channels), or the
learned ``no_mask_embed`` everywhere when there is no mask.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from edgesam.export._layers import LayerNorm2d

__all__ = ["PositionalEncoding", "PromptEncoder"]

EMBED_DIM = 256
INPUT_SIZE = 1024
EMBEDDING_SIZE = 64
MASK_IN_CHANNELS = 16
NUM_POINT_EMBEDDINGS = 4
PADDING_LABEL = -1


class PositionalEncoding(nn.Module):
    """Random Fourier features of 2-D coordinates in [0, 1]^2 (256 channels)."""

    positional_encoding_gaussian_matrix: Tensor

    def __init__(self, num_features: int = EMBED_DIM // 2) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_features))

    def encode(self, unit_coords: Tensor) -> Tensor:
        """Encode ``(..., 2)`` coordinates in [0, 1] (x, y) as ``(..., 256)``."""
        projected = (2.0 * unit_coords - 1.0) @ self.positional_encoding_gaussian_matrix
        projected = (2.0 * math.pi) * projected
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def grid(self, size: int = EMBEDDING_SIZE) -> Tensor:
        """Encoding of the centres of a ``size x size`` grid: ``(1, 256, size, size)``."""
        centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")
        encoded = self.encode(torch.stack([xs, ys], dim=-1))
        return encoded.permute(2, 0, 1).unsqueeze(0)


class PromptEncoder(nn.Module):
    """Encode points (sparse) and mask logits (dense) for the mask decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.pe_layer = PositionalEncoding()
        self.point_embeddings = nn.ModuleList(
            nn.Embedding(1, EMBED_DIM) for _ in range(NUM_POINT_EMBEDDINGS)
        )
        self.not_a_point_embed = nn.Embedding(1, EMBED_DIM)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, MASK_IN_CHANNELS // 4, kernel_size=2, stride=2),
            LayerNorm2d(MASK_IN_CHANNELS // 4),
            nn.GELU(),
            nn.Conv2d(MASK_IN_CHANNELS // 4, MASK_IN_CHANNELS, kernel_size=2, stride=2),
            LayerNorm2d(MASK_IN_CHANNELS),
            nn.GELU(),
            nn.Conv2d(MASK_IN_CHANNELS, EMBED_DIM, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, EMBED_DIM)

    def embed_points(self, point_coords: Tensor, point_labels: Tensor) -> Tensor:
        """Sparse embeddings of points.

        Parameters
        ----------
        point_coords : Tensor of float, shape (B, N, 2)
            (x, y) in the 1024 input frame (after the longest-side resize);
            the pixel-centre shift of +0.5 happens here.
        point_labels : Tensor of float, shape (B, N)
            One label per point (see the module docstring).

        Returns
        -------
        Tensor of float, shape (B, N, 256)
        """
        unit = (point_coords + 0.5) / INPUT_SIZE
        encoded = self.pe_layer.encode(unit)
        labels = point_labels.unsqueeze(-1)
        is_padding = (labels == PADDING_LABEL).to(encoded.dtype)
        embedding = encoded * (1.0 - is_padding) + self.not_a_point_embed.weight * is_padding
        for index, module in enumerate(self.point_embeddings):
            learned = cast(nn.Embedding, module).weight
            embedding = embedding + learned * (labels == index).to(encoded.dtype)
        return embedding

    def embed_masks(self, mask_input: Tensor) -> Tensor:
        """Dense embeddings of ``(B, 1, 256, 256)`` mask logits: ``(B, 256, 64, 64)``."""
        out: Tensor = self.mask_downscaling(mask_input)
        return out

    def no_mask_dense(self) -> Tensor:
        """The dense embedding used when there is no mask: ``(1, 256, 1, 1)``."""
        return self.no_mask_embed.weight.reshape(1, EMBED_DIM, 1, 1)

    def image_pe(self) -> Tensor:
        """Positional encoding of the 64x64 embedding grid: ``(1, 256, 64, 64)``."""
        return self.pe_layer.grid(EMBEDDING_SIZE)
