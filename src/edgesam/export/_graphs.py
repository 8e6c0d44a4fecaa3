"""The torch modules that become ONNX graphs: what goes in, what comes out.

* :class:`EncoderGraph` - ``image`` -> ``image_embeddings`` (the official encoder).
* :class:`DecoderGraph` - the official decoder contract: one prompt set of
  ``N`` points, no mask input; ``scores`` then ``masks``.
* :class:`FullDecoderGraph` - ``B`` prompt sets against one embedding, each
  with an optional mask input (``has_mask_input`` selects it per row).

Scores are the IoU predictions, or the stability score of each mask when built
with ``stability_score=True``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from edgesam.export._network import EdgeSamNetwork
from edgesam.export._repvit import inference_form

__all__ = ["DecoderGraph", "EncoderGraph", "FullDecoderGraph", "stability_score"]

MASK_THRESHOLD = 0.0
STABILITY_OFFSET = 1.0


def stability_score(masks: Tensor) -> Tensor:
    """``count(logits > 1) / count(logits > -1)`` per mask of ``(B, K, H, W)`` logits.

    A mask that is empty at both thresholds scores 0 (not NaN).
    """
    high = (masks > MASK_THRESHOLD + STABILITY_OFFSET).to(masks.dtype).sum(dim=(-2, -1))
    low = (masks > MASK_THRESHOLD - STABILITY_OFFSET).to(masks.dtype).sum(dim=(-2, -1))
    return high / torch.clamp(low, min=1.0)


class EncoderGraph(nn.Module):
    """``image`` (1, 3, 1024, 1024) -> ``image_embeddings`` (1, 256, 64, 64)."""

    def __init__(self, network: EdgeSamNetwork, *, for_quantisation: bool = False) -> None:
        super().__init__()
        self.image_encoder = (
            inference_form(network.image_encoder) if for_quantisation else network.image_encoder
        )

    def forward(self, image: Tensor) -> Tensor:
        out: Tensor = self.image_encoder(image)
        return out


class _DecoderBase(nn.Module):
    def __init__(self, network: EdgeSamNetwork, stability: bool) -> None:
        super().__init__()
        self.prompt_encoder = network.prompt_encoder
        self.mask_decoder = network.mask_decoder
        self.stability = stability

    def _decode(self, conditioned: Tensor, sparse: Tensor) -> tuple[Tensor, Tensor]:
        masks, iou_predictions = self.mask_decoder(
            conditioned, self.prompt_encoder.image_pe(), sparse
        )
        scores = stability_score(masks) if self.stability else iou_predictions
        return scores, masks


class DecoderGraph(_DecoderBase):
    """The official decoder contract.

    Inputs ``image_embeddings`` (1, 256, 64, 64), ``point_coords`` (1, N, 2) in
    the 1024 frame, ``point_labels`` (1, N); outputs ``scores`` (1, 4) and
    ``masks`` (1, 4, 256, 256) low-res logits.
    """

    def forward(
        self, image_embeddings: Tensor, point_coords: Tensor, point_labels: Tensor
    ) -> tuple[Tensor, Tensor]:
        sparse = self.prompt_encoder.embed_points(point_coords, point_labels)
        conditioned = image_embeddings + self.prompt_encoder.no_mask_dense()
        return self._decode(conditioned, sparse)


class FullDecoderGraph(_DecoderBase):
    """Batched prompts with an optional mask input per prompt set.

    Inputs ``image_embeddings`` (1, 256, 64, 64), ``point_coords`` (B, N, 2),
    ``point_labels`` (B, N), ``mask_input`` (B, 1, 256, 256) and
    ``has_mask_input`` (B,) (1.0: condition row b on its mask; 0.0: no mask,
    the row's ``mask_input`` is ignored, even if it holds NaN); outputs
    ``scores`` (B, 4) and ``masks`` (B, 4, 256, 256).
    """

    def forward(
        self,
        image_embeddings: Tensor,
        point_coords: Tensor,
        point_labels: Tensor,
        mask_input: Tensor,
        has_mask_input: Tensor,
    ) -> tuple[Tensor, Tensor]:
        sparse = self.prompt_encoder.embed_points(point_coords, point_labels)
        from_masks = self.prompt_encoder.embed_masks(mask_input)
        use_mask = (has_mask_input > 0.5).reshape(-1, 1, 1, 1)
        dense = torch.where(use_mask, from_masks, self.prompt_encoder.no_mask_dense())
        return self._decode(image_embeddings + dense, sparse)
