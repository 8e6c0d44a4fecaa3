"""The baseline: what a user would write with onnxruntime, numpy and Pillow alone.

No edgesam code is used here. Sessions get onnxruntime's default options, as a
plain ``InferenceSession(path, providers=[...])`` does, so a ratio below 1.0
against it means edgesam's session options beat the defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from PIL import Image

__all__ = ["BareSam", "bare_preprocess", "bare_prompt"]

_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def bare_preprocess(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """Resize (long side 1024, Pillow bilinear), normalise, zero-pad: 1x3x1024x1024."""
    height, width = rgb.shape[:2]
    scale = 1024 / max(height, width)
    new_h, new_w = int(height * scale + 0.5), int(width * scale + 0.5)
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR))
    image = np.zeros((1, 3, 1024, 1024), dtype=np.float32)
    image[0, :, :new_h, :new_w] = ((resized - _MEAN) / _STD).transpose(2, 0, 1)
    return image, (new_h, new_w)


def bare_prompt(
    points: NDArray[np.float32] | None,
    labels: NDArray[np.float32] | None,
    box: NDArray[np.float32] | None,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Decoder ``point_coords`` (1, N, 2) and ``point_labels`` (1, N) in the 1024 frame."""
    scale = np.array(
        [input_size[1] / original_size[1], input_size[0] / original_size[0]], dtype=np.float32
    )
    coords: list[NDArray[np.float32]] = []
    names: list[NDArray[np.float32]] = []
    if points is not None and labels is not None:
        coords.append(points.reshape(-1, 2).astype(np.float32) * scale)
        names.append(labels.reshape(-1).astype(np.float32))
    if box is not None:
        coords.append(box.reshape(2, 2).astype(np.float32) * scale)
        names.append(np.array([2.0, 3.0], dtype=np.float32))
    else:
        coords.append(np.zeros((1, 2), dtype=np.float32))
        names.append(np.array([-1.0], dtype=np.float32))
    return np.concatenate(coords)[None], np.concatenate(names)[None]


class BareSam:
    """Two default ``InferenceSession`` objects over the same files as the SDK."""

    def __init__(self, encoder: Path, decoder: Path, providers: list[str]) -> None:
        self.encoder = ort.InferenceSession(str(encoder), providers=providers)
        self.decoder = ort.InferenceSession(str(decoder), providers=providers)
        self.decoder_inputs = [node.name for node in self.decoder.get_inputs()]

    def encode(self, image: NDArray[np.float32]) -> NDArray[np.float32]:
        (embedding,) = self.encoder.run(None, {"image": image})
        return np.asarray(embedding)

    def decode(
        self,
        embedding: NDArray[np.float32],
        coords: NDArray[np.float32],
        labels: NDArray[np.float32],
        mask_input: NDArray[np.float32] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """One decoder run; a "full" decoder also gets its mask inputs."""
        feeds = {"image_embeddings": embedding, "point_coords": coords, "point_labels": labels}
        if "mask_input" in self.decoder_inputs:
            batch = coords.shape[0]
            if mask_input is None:
                feeds["mask_input"] = np.zeros((batch, 1, 256, 256), dtype=np.float32)
                feeds["has_mask_input"] = np.zeros((batch,), dtype=np.float32)
            else:
                feeds["mask_input"] = mask_input
                feeds["has_mask_input"] = np.ones((batch,), dtype=np.float32)
        scores, masks = self.decoder.run(None, feeds)
        return np.asarray(scores), np.asarray(masks)
