"""The whole EdgeSAM network in torch: encoder, prompt encoder, mask decoder.

The attribute names (``image_encoder``, ``prompt_encoder``, ``mask_decoder``)
are the checkpoint's key prefixes.
"""

from __future__ import annotations

from torch import Tensor, nn

from edgesam.export._mask_decoder import MaskDecoder
from edgesam.export._prompt_encoder import PromptEncoder
from edgesam.export._repvit import RepViTEncoder, UpsampleMode

__all__ = ["EdgeSamNetwork"]


class EdgeSamNetwork(nn.Module):
    """EdgeSAM: RepViT image encoder + SAM prompt encoder + SAM mask decoder.

    Parameters
    ----------
    upsample_mode : {"bilinear", "bicubic"}
        Upsampling of the coarse encoder features; ``"bilinear"`` is what the
        official ONNX files (and the reference data) use.
    """

    def __init__(self, upsample_mode: UpsampleMode = "bilinear") -> None:
        super().__init__()
        self.image_encoder = RepViTEncoder(upsample_mode)
        self.prompt_encoder = PromptEncoder()
        self.mask_decoder = MaskDecoder()

    def encode(self, image: Tensor) -> Tensor:
        """``(B, 3, 1024, 1024)`` normalised, padded images -> ``(B, 256, 64, 64)``."""
        out: Tensor = self.image_encoder(image)
        return out

    def dense_embedding(self, mask_input: Tensor | None) -> Tensor:
        """``mask_downscaling(mask_input)``, or ``no_mask_embed`` as ``(1, 256, 1, 1)``."""
        if mask_input is None:
            return self.prompt_encoder.no_mask_dense()
        return self.prompt_encoder.embed_masks(mask_input)

    def decode(
        self,
        image_embeddings: Tensor,
        point_coords: Tensor,
        point_labels: Tensor,
        mask_input: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Decode all four masks for a batch of prompt sets on one image.

        Parameters
        ----------
        image_embeddings : Tensor of float, shape (1, 256, 64, 64)
        point_coords : Tensor of float, shape (B, N, 2)
            (x, y) in the 1024 input frame. Boxes are two points labelled 2
            and 3; without a box, callers append the padding point (0, 0)
            with label -1, as the reference predictor does.
        point_labels : Tensor of float, shape (B, N)
        mask_input : Tensor of float, shape (B, 1, 256, 256), optional
            Low-resolution mask logits from a previous prediction.

        Returns
        -------
        masks : Tensor of float, shape (B, 4, 256, 256)
            Low-resolution logits; 0 is the single-mask output, 1..3 the
            multimask outputs.
        iou_predictions : Tensor of float, shape (B, 4)
        """
        sparse = self.prompt_encoder.embed_points(point_coords, point_labels)
        conditioned = image_embeddings + self.dense_embedding(mask_input)
        conditioned = conditioned.expand(sparse.shape[0], -1, -1, -1)
        out: tuple[Tensor, Tensor] = self.mask_decoder(
            conditioned, self.prompt_encoder.image_pe(), sparse
        )
        return out
