"""SAM's mask decoder: tokens + image embedding -> 4 low-res masks and IoU guesses.

An IoU token and 4 mask tokens are prepended to the prompt tokens; the
two-way transformer mixes them with the (prompt-conditioned) image embedding;
the image side is upscaled 4x by two transposed convolutions; each mask token
goes through its own 3-layer MLP ("hypernetwork") to 32 weights, and a mask is
the dot product of those weights with the upscaled features at every pixel.
Mask 0 is the single-mask output, masks 1..3 the multimask outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgesam.export._layers import MLP, LayerNorm2d
from edgesam.export._transformer import TwoWayTransformer

__all__ = ["NUM_MASK_TOKENS", "MaskDecoder"]

NUM_MASK_TOKENS = 4
EMBED_DIM = 256
UPSCALED_DIM = EMBED_DIM // 8


class MaskDecoder(nn.Module):
    """Predict mask logits ``(B, 4, 256, 256)`` and IoU predictions ``(B, 4)``."""

    def __init__(self) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer()
        self.iou_token = nn.Embedding(1, EMBED_DIM)
        self.mask_tokens = nn.Embedding(NUM_MASK_TOKENS, EMBED_DIM)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(EMBED_DIM, EMBED_DIM // 4, kernel_size=2, stride=2),
            LayerNorm2d(EMBED_DIM // 4),
            nn.GELU(),
            nn.ConvTranspose2d(EMBED_DIM // 4, UPSCALED_DIM, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(EMBED_DIM, EMBED_DIM, UPSCALED_DIM, 3) for _ in range(NUM_MASK_TOKENS)
        )
        self.iou_prediction_head = MLP(EMBED_DIM, 256, NUM_MASK_TOKENS, 3)

    def forward(
        self, conditioned_image: Tensor, image_pe: Tensor, sparse: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Decode masks.

        Parameters
        ----------
        conditioned_image : Tensor of float, shape (B, 256, 64, 64)
            The image embedding plus the dense prompt embedding.
        image_pe : Tensor of float, shape (1, 256, 64, 64)
            Positional encoding of the embedding grid.
        sparse : Tensor of float, shape (B, N, 256)
            Point embeddings.

        Returns
        -------
        masks : Tensor of float, shape (B, 4, 256, 256)
            Low-resolution mask logits.
        iou_predictions : Tensor of float, shape (B, 4)
        """
        batch = sparse.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)

        height, width = conditioned_image.shape[2], conditioned_image.shape[3]
        hidden, image = self.transformer(conditioned_image, image_pe, tokens)
        iou_out = hidden[:, 0, :]
        mask_out = hidden[:, 1 : 1 + NUM_MASK_TOKENS, :]

        image = image.transpose(1, 2).reshape(batch, EMBED_DIM, height, width)
        upscaled = self.output_upscaling(image)
        weights = torch.stack(
            [
                mlp(mask_out[:, index, :])
                for index, mlp in enumerate(self.output_hypernetworks_mlps)
            ],
            dim=1,
        )
        up_h, up_w = upscaled.shape[2], upscaled.shape[3]
        masks = (weights @ upscaled.reshape(batch, UPSCALED_DIM, up_h * up_w)).reshape(
            batch, NUM_MASK_TOKENS, up_h, up_w
        )
        iou_predictions: Tensor = self.iou_prediction_head(iou_out)
        return masks, iou_predictions
