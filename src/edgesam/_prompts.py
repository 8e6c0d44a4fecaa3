"""Validate prompts and turn them into the decoder's point/label arrays.

A prompt set is any mix of points (with labels) and one box. The decoder sees
all of them as points in the 1024 frame: the caller's points first, then the
box as two corners labelled 2 (top-left) and 3 (bottom-right). When there is no
box, a padding point (0, 0) labelled -1 is appended, as the reference
predictor does; the ONNX graph does not add it itself.

Callers may also give a box in those two other forms: its corners
``[[x0, y0], [x1, y1]]`` as ``box``, or two points labelled 2 and 3 (the ONNX
convention the EdgeSAM authors' ONNX predictor uses). Both become the same
XYXY box as ``box=[x0, y0, x1, y1]``. Torch tensors are converted to numpy on
the way in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edgesam._compat import to_numpy
from edgesam._transforms import apply_coords
from edgesam._validate import finite_float32, finite_float64
from edgesam.errors import InvalidPromptError

__all__ = [
    "LABEL_BOX_BOTTOM_RIGHT",
    "LABEL_BOX_TOP_LEFT",
    "LABEL_PADDING",
    "MASK_INPUT_SIZE",
    "DecoderPrompts",
    "PromptBatch",
    "encode_prompts",
    "validate_prompts",
]

LABEL_PADDING = -1.0
LABEL_BOX_TOP_LEFT = 2.0
LABEL_BOX_BOTTOM_RIGHT = 3.0
MASK_INPUT_SIZE = 256
# The mask encoder's LayerNorms square their inputs: logits near 1e19 overflow
# float32 there. Real logits are within a few hundred.
MASK_INPUT_LIMIT = 1e6


@dataclass(frozen=True)
class PromptBatch:
    """Validated prompts in original-image pixels, always with a leading batch axis.

    Coordinates stay float64 (the caller's integers and floats convert exactly)
    until :func:`encode_prompts` scales them, as segment_anything does.

    Attributes
    ----------
    point_coords : ndarray of float64, shape (B, N, 2), or None
    point_labels : ndarray of float32, shape (B, N), or None
    boxes : ndarray of float64, shape (B, 4), XYXY, or None
    mask_input : ndarray of float32, shape (B, 1, 256, 256), or None
    batched : bool
        Whether the caller passed batched prompts (outputs keep the batch axis).
    """

    point_coords: NDArray[np.float64] | None
    point_labels: NDArray[np.float32] | None
    boxes: NDArray[np.float64] | None
    mask_input: NDArray[np.float32] | None
    batched: bool

    @property
    def size(self) -> int:
        """The number of prompt sets, B."""
        for array in (self.point_coords, self.boxes, self.mask_input):
            if array is not None:
                return int(array.shape[0])
        return 0


@dataclass(frozen=True)
class DecoderPrompts:
    """Points and labels in the 1024 frame, ready for the decoder.

    Attributes
    ----------
    point_coords : ndarray of float32, shape (B, N, 2)
    point_labels : ndarray of float32, shape (B, N)
    """

    point_coords: NDArray[np.float32]
    point_labels: NDArray[np.float32]


def _points(
    point_coords: object, point_labels: object, force_batch: bool
) -> tuple[NDArray[np.float64] | None, NDArray[np.float32] | None, bool]:
    if point_coords is None and point_labels is None:
        return None, None, False
    if point_coords is None:
        raise InvalidPromptError(
            "point_labels was given without point_coords: pass both, or neither",
            argument="point_coords",
        )
    if point_labels is None:
        raise InvalidPromptError(
            "point_coords needs point_labels (1 = foreground, 0 = background), one per point",
            argument="point_labels",
        )
    coords = finite_float64(point_coords, "point_coords")
    labels = finite_float32(point_labels, "point_labels")
    coords_shape, labels_shape = coords.shape, labels.shape
    if coords.ndim == 1 and coords.shape == (2,):
        coords = coords[None, :]
    if labels.ndim == 0:
        labels = labels.reshape(1)
    batched = coords.ndim == 3 or force_batch
    if coords.ndim == 2:
        coords = coords[None]
    if labels.ndim == 1:
        labels = labels[None]
    if coords.ndim != 3 or coords.shape[2] != 2 or coords.shape[1] == 0:
        raise InvalidPromptError(
            "point_coords must have shape (N, 2) or, batched, (B, N, 2), as (x, y) pixels: "
            f"got shape {coords_shape}",
            argument="point_coords",
        )
    if labels.ndim != 2 or labels.shape != coords.shape[:2]:
        raise InvalidPromptError(
            "point_labels must have one entry per point, shape (N,) or (B, N): got "
            f"{coords.shape[1]} points per set in {coords.shape[0]} set(s) and labels of "
            f"shape {labels_shape}",
            argument="point_labels",
        )
    bad = ~np.isin(labels, (0.0, 1.0, LABEL_PADDING, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT))
    if np.any(bad):
        raise InvalidPromptError(
            "point_labels must be 1 (foreground) or 0 (background), -1 for a padding "
            "point that the decoder ignores, or 2 and 3 for a box's top-left and "
            f"bottom-right corners: got {sorted(set(labels[bad].tolist()))}",
            argument="point_labels",
        )
    return coords, labels, batched


def _corner_box(
    coords: NDArray[np.float64], labels: NDArray[np.float32]
) -> tuple[NDArray[np.float64] | None, NDArray[np.float32] | None, NDArray[np.float64] | None]:
    """Take the points labelled 2 and 3 out as one XYXY box per prompt set."""
    top_left = labels == LABEL_BOX_TOP_LEFT
    bottom_right = labels == LABEL_BOX_BOTTOM_RIGHT
    if not (np.any(top_left) or np.any(bottom_right)):
        return coords, labels, None
    if not (np.all(top_left.sum(axis=1) == 1) and np.all(bottom_right.sum(axis=1) == 1)):
        raise InvalidPromptError(
            "point_labels 2 and 3 mark a box's top-left and bottom-right corners: each "
            "prompt set needs exactly one point labelled 2 and one labelled 3, got "
            f"{top_left.sum(axis=1).tolist()} and {bottom_right.sum(axis=1).tolist()} per set. "
            "Or pass the box as box=[x0, y0, x1, y1]",
            argument="point_labels",
        )
    boxes = np.concatenate([coords[top_left], coords[bottom_right]], axis=1)
    rest = ~(top_left | bottom_right)
    batch, count = labels.shape
    if count == 2:
        return None, None, boxes
    return coords[rest].reshape(batch, count - 2, 2), labels[rest].reshape(batch, count - 2), boxes


def _boxes(box: object, box_name: str) -> tuple[NDArray[np.float64] | None, bool]:
    if box is None:
        return None, False
    boxes = finite_float64(box, box_name)
    given_shape = boxes.shape
    # Corners [[x0, y0], [x1, y1]], as segment_anything's apply_boxes reads them.
    if boxes.ndim >= 2 and boxes.shape[-2:] == (2, 2):
        boxes = boxes.reshape(*boxes.shape[:-2], 4)
    # (4,) and segment_anything's habitual (1, 4) are one prompt; (B, 4) with B > 1 a batch.
    batched = boxes.ndim == 2 and boxes.shape[0] > 1
    if boxes.ndim == 1:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.shape[0] == 0:
        raise InvalidPromptError(
            f"{box_name} must have shape (4,) or (B, 4), XYXY in pixels, or corners "
            f"[[x0, y0], [x1, y1]] of shape (2, 2) or (B, 2, 2): got shape {given_shape}",
            argument=box_name,
        )
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if np.any(inverted):
        first = boxes[int(np.argmax(inverted))].tolist()
        raise InvalidPromptError(
            f"box must be XYXY with x1 >= x0 and y1 >= y0: got {first}. "
            "Convert XYWH boxes with [x, y, x + w, y + h]",
            argument=box_name,
        )
    return boxes, batched


def _mask(mask_input: object) -> tuple[NDArray[np.float32] | None, bool]:
    if mask_input is None:
        return None, False
    mask = finite_float32(mask_input, "mask_input")
    # From the extremes: no image-sized |mask| temporary.
    largest = max(-float(mask.min()), float(mask.max())) if mask.size else 0.0
    if largest > MASK_INPUT_LIMIT:
        raise InvalidPromptError(
            "mask_input must be low-resolution logits such as a previous call's "
            f"low_res_logits (tens, at most hundreds): got a value of {largest:.3g}, beyond "
            f"{MASK_INPUT_LIMIT:.0e}, which would overflow float32 in the mask encoder",
            argument="mask_input",
        )
    size = MASK_INPUT_SIZE
    if mask.shape == (1, size, size):
        return mask[None], False
    if mask.ndim == 4 and mask.shape[1:] == (1, size, size) and mask.shape[0] > 0:
        return mask, True
    raise InvalidPromptError(
        f"mask_input must be low-resolution logits of shape (1, {size}, {size}) or, batched, "
        f"(B, 1, {size}, {size}), e.g. low_res_logits[best][None] from a previous predict: "
        f"got shape {mask.shape}",
        argument="mask_input",
    )


def validate_prompts(
    point_coords: object = None,
    point_labels: object = None,
    box: object = None,
    mask_input: object = None,
    *,
    force_batch: bool = False,
    box_name: str = "box",
) -> PromptBatch:
    """Check the caller's prompts and give them a common batch axis.

    Raises
    ------
    InvalidPromptError
        With a message naming the argument, what was received and the fix.
    """
    point_coords, point_labels = to_numpy(point_coords), to_numpy(point_labels)
    coords, labels, points_batched = _points(point_coords, point_labels, force_batch)
    boxes, boxes_batched = _boxes(to_numpy(box), box_name)
    if coords is not None and labels is not None:
        coords, labels, corners = _corner_box(coords, labels)
        if corners is not None:
            if boxes is not None:
                raise InvalidPromptError(
                    "got a box twice: as box and as points labelled 2 and 3 (its corners); "
                    "pass one of them"
                )
            boxes, _ = _boxes(corners, "the box from points labelled 2 and 3")
    mask, mask_batched = _mask(to_numpy(mask_input))
    if coords is None and boxes is None:
        raise InvalidPromptError(
            "predict needs a prompt: point_coords with point_labels, a box, or both "
            "(mask_input alone is not enough for the EdgeSAM decoder)"
        )
    if labels is not None and boxes is None:
        empty = np.all(labels == LABEL_PADDING, axis=1)
        if np.any(empty):
            raise InvalidPromptError(
                f"prompt set {int(np.argmax(empty))} has only padding points (label -1) and "
                "no box: give it at least one point labelled 1 or 0",
                argument="point_labels",
            )
    sizes = {
        name: int(array.shape[0])
        for name, array in (("point_coords", coords), ("box", boxes), ("mask_input", mask))
        if array is not None
    }
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise InvalidPromptError(f"batched prompts must agree on the batch size B: got {detail}")
    return PromptBatch(
        point_coords=coords,
        point_labels=labels,
        boxes=boxes,
        mask_input=mask,
        batched=force_batch or points_batched or boxes_batched or mask_batched,
    )


def encode_prompts(
    prompts: PromptBatch, original_size: tuple[int, int], input_size: tuple[int, int]
) -> DecoderPrompts:
    """Build the decoder's (B, N, 2) points and (B, N) labels in the 1024 frame."""
    batch = prompts.size
    coords_parts: list[NDArray[np.float32]] = []
    label_parts: list[NDArray[np.float32]] = []
    if prompts.point_coords is not None and prompts.point_labels is not None:
        coords_parts.append(apply_coords(prompts.point_coords, original_size, input_size))
        label_parts.append(prompts.point_labels)
    if prompts.boxes is not None:
        corners = prompts.boxes.reshape(batch, 2, 2)
        coords_parts.append(apply_coords(corners, original_size, input_size))
        corner_labels = np.array([LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT], dtype=np.float32)
        label_parts.append(np.broadcast_to(corner_labels, (batch, 2)))
    else:
        coords_parts.append(np.zeros((batch, 1, 2), dtype=np.float32))
        label_parts.append(np.full((batch, 1), LABEL_PADDING, dtype=np.float32))
    return DecoderPrompts(
        point_coords=np.ascontiguousarray(np.concatenate(coords_parts, axis=1), dtype=np.float32),
        point_labels=np.ascontiguousarray(np.concatenate(label_parts, axis=1), dtype=np.float32),
    )
