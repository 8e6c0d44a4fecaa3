"""One image's work: read and hash it, decode and preprocess it, then its masks.

:func:`prepare` is the CPU half (file bytes, sha256, decoding, the resize and
normalisation into the encoder's input) that the local pipeline runs ahead in
threads and Ray runs as CPU tasks; :func:`segment` is the model half (encoder,
decoder, upsampling). Together they give what ``SamPredictor`` /
``predict_batch`` / ``SamAutomaticMaskGenerator`` give for the same image and
prompts, mask for mask.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from edgesam._embedding import ImageEmbedding
from edgesam._image import load_rgb
from edgesam._predictor import SamPredictor
from edgesam._transforms import preprocess_image
from edgesam.amg import (
    SamAutomaticMaskGenerator,
    box_xyxy_to_xywh,
    calculate_stability_score,
    mask_to_coco_rle,
    masks_to_boxes,
)
from edgesam.batch._manifest import Item
from edgesam.errors import InvalidImageError

__all__ = ["MAX_IMAGE_BYTES", "Prepared", "output_row", "prepare", "read_bytes", "segment"]

#: Image files larger than this are refused (an untrusted manifest could name anything).
MAX_IMAGE_BYTES = 512 << 20


@dataclass
class Prepared:
    """An image read, hashed, decoded and (for prompts) preprocessed."""

    item: Item
    sha256: str
    rgb: NDArray[np.uint8]
    image_input: NDArray[np.float32] | None = None
    input_size: tuple[int, int] | None = None


def read_bytes(location: str) -> bytes:
    """The bytes of a local file or (with pyarrow's file systems) a URI such as ``s3://``."""
    if "://" in location:
        try:
            from pyarrow import fs
        except ImportError as err:
            raise InvalidImageError(
                f'{location!r} is a URI; reading URIs needs pyarrow: pip install "edgesam[batch]"'
            ) from err
        try:
            filesystem, path = fs.FileSystem.from_uri(location)
            info = filesystem.get_file_info(path)
            if info.size is not None and info.size > MAX_IMAGE_BYTES:
                raise InvalidImageError(f"{location!r} is larger than {MAX_IMAGE_BYTES} bytes")
            with filesystem.open_input_stream(path) as stream:
                data: bytes = stream.read()
                return data
        except InvalidImageError:
            raise
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...
            raise InvalidImageError(f"{location!r} could not be read: {err}") from err
    path = Path(location)
    if not path.is_file():
        raise InvalidImageError(f"image file {location!r} does not exist or is not a file")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise InvalidImageError(f"image file {location!r} is larger than {MAX_IMAGE_BYTES} bytes")
    return path.read_bytes()


def decode(data: bytes, name: str) -> NDArray[np.uint8]:
    """Decode image bytes upright (EXIF orientation), as ``set_image(path)`` reads a file."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            return load_rgb(upright)
    except Image.DecompressionBombError as err:
        raise InvalidImageError(
            f"image {name!r} is larger than Pillow's safety limit ({err})"
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        if isinstance(err, InvalidImageError):
            raise
        raise InvalidImageError(f"image {name!r} could not be read as an image ({err})") from err


def hash_bytes(data: bytes) -> str:
    """The sha256 of an image file's bytes: with its name, the key of resume."""
    return hashlib.sha256(data).hexdigest()


def prepare(item: Item, data: bytes, sha256: str, *, everything: bool) -> Prepared:
    """Decode an image and, for prompts, preprocess it into the encoder's input."""
    rgb = decode(data, item.name)
    if everything:
        return Prepared(item, sha256, rgb)
    image_input, input_size = preprocess_image(rgb)
    return Prepared(item, sha256, rgb, image_input, input_size)


def _record(mask: NDArray[np.bool_], score: float, stability: float, index: int) -> dict[str, Any]:
    box = box_xyxy_to_xywh(masks_to_boxes(mask[None])[0])
    return {
        "segmentation": dict(mask_to_coco_rle(mask)),
        "score": float(score),
        "stability_score": float(stability),
        "bbox": [float(v) for v in box],
        "area": int(np.count_nonzero(mask)),
        "prompt_index": index,
    }


def segment(
    prepared: Prepared,
    predictor: SamPredictor,
    generator: SamAutomaticMaskGenerator | None = None,
    embedding: NDArray[np.float32] | None = None,
) -> list[dict[str, Any]]:
    """The mask records of one prepared image.

    With a ``generator``, everything in the image; otherwise one record per
    box (``predict_batch(boxes=..., multimask_output=False)``) and one for the
    points, answered as ``edgesam segment`` answers clicks: one click, the most
    stable of the four outputs; several, the single-mask output. ``embedding``
    (1, 256, 64, 64), when given, is the image's, already encoded.
    """
    if generator is not None:
        return [
            {
                "segmentation": dict(record["segmentation"]),
                "score": float(record["predicted_iou"]),
                "stability_score": float(record["stability_score"]),
                "bbox": [float(v) for v in record["bbox"]],
                "area": int(record["area"]),
                "prompt_index": index,
            }
            for index, record in enumerate(generator.generate(prepared.rgb))
        ]
    model = predictor.model
    if prepared.image_input is None or prepared.input_size is None:
        raise ValueError("segment() needs an image prepared with everything=False")
    predictor.set_image_embedding(
        ImageEmbedding(
            array=model.encode(prepared.image_input) if embedding is None else embedding,
            original_size=(int(prepared.rgb.shape[0]), int(prepared.rgb.shape[1])),
            input_size=prepared.input_size,
            model_name=model.name,
            fingerprint=model.fingerprint,
        )
    )
    item = prepared.item
    records = []
    if item.boxes is not None:
        masks, scores, low_res = predictor.predict_batch(boxes=item.boxes, multimask_output=False)
        stability = calculate_stability_score(low_res[:, 0], 0.0, 1.0)
        for index in range(len(item.boxes)):
            records.append(_record(masks[index, 0], scores[index, 0], stability[index], index))
    if item.points is not None:
        single = len(item.points) > 1
        masks, scores, low_res = predictor.predict(
            point_coords=item.points,
            point_labels=item.labels,
            num_multimask_outputs=1 if single else 4,
        )
        stability = calculate_stability_score(low_res, 0.0, 1.0)
        best = 0 if single else int(stability.argmax())
        index = 0 if item.boxes is None else len(item.boxes)
        records.append(_record(masks[best], scores[best], stability[best], index))
    return records


def output_row(prepared: Prepared, masks: list[dict[str, Any]], fingerprint: str) -> dict[str, Any]:
    """The output row of one image: its input columns, then what the run adds."""
    row: dict[str, Any] = dict(prepared.item.columns)
    row.update(
        sha256=prepared.sha256,
        height=int(prepared.rgb.shape[0]),
        width=int(prepared.rgb.shape[1]),
        model_fingerprint=fingerprint,
        masks=masks,
    )
    return row
