"""Writing masks to disk: PNGs + metadata.csv, COCO JSON, overlays.

Three outputs, all written atomically (to a temporary file beside the target,
then :func:`os.replace`), so a reader never sees half a file:

- :func:`write_masks_to_folder`: ``0.png``, ``1.png``, ... (8-bit, 0/255) and a
  ``metadata.csv`` exactly as segment_anything's ``scripts/amg.py`` writes
  them (same header, same columns, same number formatting, no final newline);
  ``metadata.csv`` is written last, so its presence means the folder is complete;
- :func:`write_coco_json`: one COCO-format file (``images``, ``annotations``,
  ``categories``) whose segmentations are COCO compressed RLE, readable by
  ``pycocotools.coco.COCO``;
- :func:`save_overlay`: the masks drawn in distinct colours over the photo.

Records are the dicts that :class:`~edgesam.amg.SamAutomaticMaskGenerator`
returns (or segment_anything's), with ``segmentation`` a binary mask or an RLE.
"""

from __future__ import annotations

import colorsys
import contextlib
import io
import json
import logging
import math
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from edgesam._atomic import check_destination, describe, write_bytes_atomic
from edgesam._files import short_repr
from edgesam._image import load_rgb
from edgesam._polygons import masks_to_polygons
from edgesam._validate import number
from edgesam.amg._rle import area_from_rle, counts_from_string, mask_to_coco_rle, rle_to_mask
from edgesam.errors import InvalidInputError

__all__ = [
    "METADATA_HEADER",
    "records_to_coco",
    "render_overlay",
    "save_binary_mask",
    "save_overlay",
    "write_coco_json",
    "write_masks_to_folder",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: The first line of ``metadata.csv``, as segment_anything's ``scripts/amg.py`` writes it.
METADATA_FILE = "metadata.csv"
METADATA_HEADER = (
    "id,area,bbox_x0,bbox_y0,bbox_w,bbox_h,point_input_x,point_input_y,"
    "predicted_iou,stability_score,crop_box_x0,crop_box_y0,crop_box_w,crop_box_h"
)

_GOLDEN_RATIO_CONJUGATE = 0.618033988749895
# Largest mask an RLE may describe: a small RLE can name billions of pixels, and
# decoding allocates one byte per pixel. Twice Pillow's default image limit.
_MAX_MASK_PIXELS = 2 * 89_478_485


def _png_bytes(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# -- records ------------------------------------------------------------------------------


def _as_list(items: object, name: str, what: str) -> list[Any]:
    """``items`` as a list, refusing None, a string, a single dict or a single 2-D array."""
    if isinstance(items, Mapping):
        raise InvalidInputError(
            f"{name} must be a list of {what}: got a single dict; wrap it in a list ([...])"
        )
    if isinstance(items, np.ndarray) and items.ndim == 2:
        raise InvalidInputError(
            f"{name} must be a list of {what}: got one array of shape {items.shape}; "
            "wrap it in a list ([mask])"
        )
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidInputError(
            f"{name} must be a list of {what}, as SamAutomaticMaskGenerator.generate returns "
            f"them: got {type(items).__name__}"
        )
    return list(items)


@contextlib.contextmanager
def _reading_rle(name: str) -> Iterator[None]:
    """Report numpy's and the RLE decoder's errors as ``name`` not being a valid RLE."""
    try:
        yield
    except InvalidInputError:
        raise
    except (ValueError, TypeError, OverflowError) as err:
        raise InvalidInputError(f"{name} is not a valid RLE ({err})") from err


def _positive_pair(value: object) -> tuple[int, int] | None:
    """``value`` as ``(H, W)`` if it is a list, tuple or array of two positive integers."""
    sides = list(value) if isinstance(value, (list, tuple, np.ndarray)) else []
    if len(sides) != 2 or not all(
        isinstance(side, numbers.Integral) and not isinstance(side, bool) and int(side) > 0
        for side in sides
    ):
        return None
    return int(sides[0]), int(sides[1])


def _rle_size(rle: Mapping[Any, Any], name: str) -> tuple[int, int]:
    """The ``(H, W)`` of an RLE, checked: two positive integers, at most _MAX_MASK_PIXELS."""
    size = rle.get("size")
    pair = _positive_pair(size)
    if pair is None:
        raise InvalidInputError(
            f"{name} is an RLE whose 'size' must be [H, W], two positive integers: got "
            f"{short_repr(size)}"
        )
    height, width = pair
    if height * width > _MAX_MASK_PIXELS:
        raise InvalidInputError(
            f"{name} is an RLE of {height}x{width} pixels, more than the {_MAX_MASK_PIXELS} a "
            "mask may have"
        )
    counts = rle.get("counts")
    if isinstance(counts, bytes):
        try:
            counts.decode("ascii")
        except UnicodeDecodeError as err:
            raise InvalidInputError(
                f"{name} is an RLE whose 'counts' bytes are not a COCO compressed RLE (ASCII "
                f"characters '0' to 'o'): got {short_repr(counts)}"
            ) from err
    elif not isinstance(counts, (str, list, tuple, np.ndarray)):
        raise InvalidInputError(
            f"{name} is an RLE whose 'counts' must be a COCO string or a list of run lengths: "
            f"got {type(counts).__name__}"
        )
    with _reading_rle(name):
        runs = (
            counts_from_string(counts)
            if isinstance(counts, (str, bytes))
            else np.asarray(counts, dtype=np.int64).reshape(-1)
        )
    if runs.size and (runs.min() < 0 or int(runs.sum()) != height * width):
        raise InvalidInputError(
            f"{name} is not a valid RLE: its run lengths must be non-negative and add up to "
            f"H * W = {height * width} pixels"
        )
    return height, width


def _as_binary_mask(mask: object, name: str) -> NDArray[np.bool_]:
    if isinstance(mask, Mapping):
        _rle_size(mask, name)
        with _reading_rle(name):
            return rle_to_mask(mask)
    try:
        array = np.asarray(mask)
    except (ValueError, TypeError) as err:  # ragged nested lists
        raise InvalidInputError(f"{name} must be a mask of shape (H, W) or an RLE ({err})") from err
    if array.ndim != 2:
        raise InvalidInputError(
            f"{name} must be a mask of shape (H, W) or an RLE: got {array.shape}"
        )
    if 0 in array.shape:
        raise InvalidInputError(
            f"{name} must be a mask of at least 1x1 pixels: got shape {array.shape}"
        )
    if np.issubdtype(array.dtype, np.floating):
        # Thresholding floats at 0 would be wrong for probabilities, at 0.5 wrong for logits.
        raise InvalidInputError(
            f"{name} must be a boolean mask: got {array.dtype}. For logits "
            "(predict(..., return_logits=True)) pass logits > 0; for probabilities, probs > 0.5"
        )
    if array.dtype != np.bool_:
        if not np.issubdtype(array.dtype, np.integer):
            raise InvalidInputError(
                f"{name} must be a boolean mask (or integers, non-zero = foreground): "
                f"got {array.dtype}"
            )
        array = array != 0
    return array


def _segmentation(record: Mapping[str, Any], index: int) -> object:
    if not isinstance(record, Mapping) or "segmentation" not in record:
        raise InvalidInputError(
            f"records[{index}] must be a mask record (a dict with 'segmentation', 'area', "
            "'bbox', ...), as SamAutomaticMaskGenerator.generate returns: "
            f"got {type(record).__name__}"
        )
    return record["segmentation"]


def _field(record: Mapping[str, Any], key: str, index: int) -> Any:
    try:
        return record[key]
    except KeyError:
        raise InvalidInputError(
            f"records[{index}] has no {key!r}: records need segmentation, area, bbox, "
            "predicted_iou, point_coords, stability_score and crop_box"
        ) from None


def _finite(value: Any, name: str) -> float | int:
    """``value`` as a finite Python number (bools refused), for CSV and strict JSON."""
    value = _native(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number: got {short_repr(value)}")
    return value


def _finite_list(value: Any, name: str, length: int) -> list[float | int]:
    value = _native(value)
    if not isinstance(value, list) or len(value) != length:
        raise InvalidInputError(
            f"{name} must be a list of {length} numbers: got {short_repr(value)}"
        )
    return [_finite(item, f"{name}[{at}]") for at, item in enumerate(value)]


def _record_numbers(record: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The numeric fields of ``records[index]``, checked and as plain Python numbers."""
    where = f"records[{index}]"
    points = _native(_field(record, "point_coords", index))
    if not isinstance(points, list) or not points:
        raise InvalidInputError(
            f"{where}['point_coords'] must be a list of [x, y] points: got {short_repr(points)}"
        )
    area = _finite(_field(record, "area", index), f"{where}['area']")
    if not (float(area).is_integer() and area >= 0):
        raise InvalidInputError(
            f"{where}['area'] must be a non-negative whole number: got {short_repr(area)}"
        )
    return {
        "area": int(area),
        "bbox": _finite_list(_field(record, "bbox", index), f"{where}['bbox']", 4),
        "point_coords": [
            _finite_list(point, f"{where}['point_coords'][{at}]", 2)
            for at, point in enumerate(points)
        ],
        "predicted_iou": _finite(
            _field(record, "predicted_iou", index), f"{where}['predicted_iou']"
        ),
        "stability_score": _finite(
            _field(record, "stability_score", index), f"{where}['stability_score']"
        ),
        "crop_box": _finite_list(_field(record, "crop_box", index), f"{where}['crop_box']", 4),
    }


def _native(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (str() and JSON as torch's .item())."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_native(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _native(item) for key, item in value.items()}
    return value


def _metadata_row(index: int, record: Mapping[str, Any]) -> str:
    numbers_ = _record_numbers(record, index)
    values = [
        index,
        numbers_["area"],
        *numbers_["bbox"],
        *numbers_["point_coords"][0],
        numbers_["predicted_iou"],
        numbers_["stability_score"],
        *numbers_["crop_box"],
    ]
    return ",".join(str(value) for value in values)


def save_binary_mask(mask: object, path: PathLike) -> Path:
    """Write one binary mask as an 8-bit grayscale PNG (0 and 255).

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W), or an RLE dict
        Integer arrays count non-zero pixels as foreground (0/1 or 0/255
        masks). Float arrays are refused: threshold them yourself, e.g.
        ``logits > 0`` for the output of ``predict(..., return_logits=True)``.
    path : str or os.PathLike
        The file to write. It must end in ``.png``: masks are always PNG,
        because a lossy format (JPEG, WebP) would blur the edges into grey.
        Its folder must exist, as with :meth:`PIL.Image.Image.save`.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InvalidInputError
        For a float or malformed mask, a ``path`` not ending in ``.png``, or a
        folder that does not exist.
    """
    check_mask_path(path, "path")
    binary = _as_binary_mask(mask, "mask")
    return write_bytes_atomic(path, _png_bytes(binary.astype(np.uint8) * np.uint8(255)))


def check_mask_path(path: PathLike, argument: str) -> Path:
    """``path`` as a Path after checking that :func:`save_binary_mask` can write it."""
    target = check_destination(path, argument)
    if target.suffix.lower() != ".png":
        raise InvalidInputError(
            f"{describe(target, argument)}: binary masks are written as PNG (lossless; "
            "JPEG or WebP would blur the 0/255 edges into grey), so the name must end in "
            f".png: e.g. {str(target.with_suffix('.png'))!r}"
        )
    return target


def write_masks_to_folder(records: Sequence[Mapping[str, Any]], folder: PathLike) -> list[Path]:
    """Write one PNG per mask and ``metadata.csv``, as segment_anything's ``scripts/amg.py``.

    Parameters
    ----------
    records : sequence of dict
        Mask records (``segmentation`` as a binary mask or an RLE; ``area``,
        ``bbox``, ``point_coords``, ``predicted_iou``, ``stability_score``,
        ``crop_box``).
    folder : str or os.PathLike
        Created (with parents) if missing. Mask ``i`` goes to ``{i}.png``;
        ``metadata.csv`` (header, then one row per mask: id, area, bbox XYWH,
        point x, y, predicted_iou, stability_score, crop_box XYWH) is written
        last, so its presence marks a complete folder. Existing files of the
        same names are replaced and nothing is deleted: write into a new or
        empty folder (``scripts/amg.py`` insists on a new one), or rely on
        ``metadata.csv`` to say which masks belong to the latest run.

    Returns
    -------
    list of pathlib.Path
        The mask PNGs, then ``metadata.csv``.

    Raises
    ------
    InvalidInputError
        For malformed records, or a ``folder`` that is a file (or lies under one).
    """
    items = _as_list(records, "records", "mask records")
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise InvalidInputError(
            f"folder={str(target)!r} is a file, not a folder: choose a folder path "
            "(it is created if missing)"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        raise InvalidInputError(
            f"folder={str(target)!r} cannot be created: {str(err.filename)!r} on its path is "
            "a file; choose another folder"
        ) from err
    # Every record's fields are checked before the first file is written.
    rows = [METADATA_HEADER, *(_metadata_row(index, record) for index, record in enumerate(items))]
    for index, record in enumerate(items):
        segmentation = _segmentation(record, index)
        name = f"records[{index}]['segmentation']"
        if isinstance(segmentation, Mapping):
            _rle_size(segmentation, name)
        else:
            _as_binary_mask(segmentation, name)
    written = []
    for index, record in enumerate(items):
        mask = _as_binary_mask(_segmentation(record, index), f"records[{index}]['segmentation']")
        written.append(save_binary_mask(mask, target / f"{index}.png"))
    written.append(write_bytes_atomic(target / METADATA_FILE, "\n".join(rows).encode("utf-8")))
    logger.debug("wrote %d mask PNGs and metadata.csv to %s", len(items), target)
    return written


# -- COCO ---------------------------------------------------------------------------------


def records_to_coco(
    records: Sequence[Mapping[str, Any]],
    *,
    image_size: tuple[int, int] | None = None,
    image_id: int = 1,
    file_name: str | None = None,
    category_id: int = 1,
    category_name: str = "object",
    polygons: bool = False,
    polygon_tolerance: float = 0.0,
) -> dict[str, Any]:
    """A COCO-format dict for one image's mask records.

    Parameters
    ----------
    records : sequence of dict
        Mask records; ``segmentation`` may be a binary mask, an uncompressed
        RLE or a COCO compressed RLE.
    image_size : tuple of int, optional
        ``(H, W)``; taken from the masks when omitted (required when there
        are no records).
    image_id : int
        The ``id`` of the image entry, used by every annotation.
    file_name : str, optional
        The image's file name, for the ``images`` entry.
    category_id, category_name
        The single class every mask gets (automatic masks have no class).
    polygons : bool
        Store each mask as polygons from :func:`masks_to_polygons` (what
        annotation tools and some training code expect; exact at the default
        tolerance) instead of COCO compressed RLE (exact, compact).
    polygon_tolerance : float
        ``tolerance`` of :func:`masks_to_polygons`, in pixels, with
        ``polygons=True``; 0 keeps the masks exact.

    Returns
    -------
    dict
        ``{"images": [...], "annotations": [...], "categories": [...]}``. Each
        annotation has ``id`` (from 1), ``image_id``, ``category_id``,
        ``segmentation`` (``{"size": [H, W], "counts": str}``, or with
        ``polygons`` a list of ``[x0, y0, x1, y1, ...]``), ``area`` (the mask's),
        ``bbox`` (the record's XYWH, as segment_anything computes it: width =
        last column - first column), ``iscrowd`` 0, ``score`` (the record's
        ``predicted_iou``, for COCO evaluation), ``predicted_iou``,
        ``stability_score``, ``point_coords`` and ``crop_box``.

    Raises
    ------
    InvalidInputError
        If ``records`` is not a sequence of mask records, a record lacks a
        field, or the masks' sizes differ from each other or ``image_size``.
    """
    items = _as_list(records, "records", "mask records")
    size = None if image_size is None else _image_size(image_size)
    annotations = []
    for index, record in enumerate(items):
        segmentation = _segmentation(record, index)
        name = f"records[{index}]['segmentation']"
        if isinstance(segmentation, Mapping) and isinstance(
            segmentation.get("counts"), (str, bytes)
        ):
            height, width = _rle_size(segmentation, name)
            counts = segmentation["counts"]
            text = counts.decode("ascii") if isinstance(counts, bytes) else counts
            rle = {"size": [height, width], "counts": text}
            # Decoding checks the string and that its runs cover exactly H x W pixels.
            _as_binary_mask(rle, name)
        else:
            rle = dict(mask_to_coco_rle(_as_binary_mask(segmentation, name)))
        stored: object = rle
        if polygons:
            mask = _as_binary_mask(segmentation, name)
            stored = masks_to_polygons(mask, tolerance=polygon_tolerance)
        mask_size = (int(rle["size"][0]), int(rle["size"][1]))
        if size is None:
            size = mask_size
        elif mask_size != size:
            raise InvalidInputError(
                f"records[{index}] has a mask of size {mask_size}, but the image is {size}: "
                "all masks of one COCO image must have the image's size"
            )
        checked = _record_numbers(
            record if "area" in record else {**record, "area": area_from_rle(rle)}, index
        )
        annotations.append(
            {
                "id": index + 1,
                "image_id": image_id,
                "category_id": category_id,
                "segmentation": stored,
                "area": checked["area"],
                "bbox": checked["bbox"],
                "iscrowd": 0,
                "score": checked["predicted_iou"],
                "predicted_iou": checked["predicted_iou"],
                "stability_score": checked["stability_score"],
                "point_coords": checked["point_coords"],
                "crop_box": checked["crop_box"],
            }
        )
    if size is None:
        raise InvalidInputError("image_size=(H, W) is needed when there are no records")
    image: dict[str, Any] = {"id": image_id, "height": size[0], "width": size[1]}
    if file_name is not None:
        image["file_name"] = file_name
    return {
        "images": [image],
        "annotations": annotations,
        "categories": [{"id": category_id, "name": category_name, "supercategory": category_name}],
    }


def _image_size(image_size: object) -> tuple[int, int]:
    pair = _positive_pair(image_size)
    if pair is None:
        raise InvalidInputError(
            f"image_size must be (H, W), two positive integers: got {image_size!r}"
        )
    return pair


def write_coco_json(
    records: Sequence[Mapping[str, Any]],
    path: PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    image_id: int = 1,
    file_name: str | None = None,
    category_id: int = 1,
    category_name: str = "object",
    polygons: bool = False,
    polygon_tolerance: float = 0.0,
) -> Path:
    """Write :func:`records_to_coco` as a JSON file; see there for the parameters.

    The folder of ``path`` must exist, as with :func:`open`.

    Returns
    -------
    pathlib.Path
        The written file, loadable with ``pycocotools.coco.COCO(path)``.

    Raises
    ------
    InvalidInputError
        As :func:`records_to_coco`, or if the folder of ``path`` does not exist.
    """
    check_destination(path, "path")
    document = records_to_coco(
        records,
        image_size=image_size,
        image_id=image_id,
        file_name=file_name,
        category_id=category_id,
        category_name=category_name,
        polygons=polygons,
        polygon_tolerance=polygon_tolerance,
    )
    try:
        text = json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as err:  # a value JSON cannot hold (checked above, so rare)
        raise InvalidInputError(
            f"the COCO document cannot be written as strict JSON ({err}); check the records' "
            "fields and file_name / category_name"
        ) from err
    written = write_bytes_atomic(path, text.encode("utf-8"))
    logger.debug("wrote %d COCO annotations to %s", len(document["annotations"]), written)
    return written


# -- overlay ------------------------------------------------------------------------------


def _palette(count: int) -> NDArray[np.float32]:
    """``count`` distinct, saturated colours (hues spread by the golden ratio), RGB 0..255."""
    colours = [
        colorsys.hsv_to_rgb((index * _GOLDEN_RATIO_CONJUGATE) % 1.0, 0.75, 0.95)
        for index in range(count)
    ]
    return (np.asarray(colours, dtype=np.float32) * 255.0).reshape(count, 3)


def render_overlay(
    image: object,
    masks: Sequence[object],
    *,
    alpha: float = 0.5,
) -> NDArray[np.uint8]:
    """Draw masks in distinct colours over an image.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3); PIL.Image.Image; str or os.PathLike
        The photo (RGB).
    masks : sequence of masks
        Each a bool array (H, W), an RLE dict (uncompressed or COCO), or a
        mask record holding one under ``segmentation``. Larger masks are
        drawn first, so small ones stay visible on top (as segment_anything's
        notebooks show them). Mask ``i`` always gets colour ``i`` of a fixed
        palette.
    alpha : float
        Opacity of the colours, in [0, 1].

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    rgb = load_rgb(image)
    number(alpha, "alpha", (0.0, 1.0))
    height, width = rgb.shape[:2]
    binaries = []
    for index, mask in enumerate(_as_list(masks, "masks", "masks")):
        is_record = isinstance(mask, Mapping) and "segmentation" in mask
        source = mask["segmentation"] if is_record else mask
        binary = _as_binary_mask(source, f"masks[{index}]")
        if binary.shape != (height, width):
            raise InvalidInputError(
                f"masks[{index}] has shape {binary.shape}, the image is {(height, width)}: "
                "masks must have the image's size"
            )
        binaries.append(binary)
    owner = np.full((height, width), -1, dtype=np.int32)
    areas = [int(np.count_nonzero(binary)) for binary in binaries]
    for index in sorted(range(len(binaries)), key=lambda k: -areas[k]):
        owner[binaries[index]] = index
    result: NDArray[np.uint8] = rgb.copy()
    covered = owner >= 0
    if binaries and covered.any():
        colours = _palette(len(binaries))[owner[covered]]
        weight = np.float32(alpha)
        blended = rgb[covered].astype(np.float32) * (np.float32(1.0) - weight) + colours * weight
        result[covered] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return result


def save_overlay(
    image: object,
    masks: Sequence[object],
    path: PathLike,
    *,
    alpha: float = 0.5,
) -> Path:
    """Write :func:`render_overlay` to an image file; see there for the parameters.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, in the format its extension names, as
        :meth:`PIL.Image.Image.save` chooses it (``.png``, ``.jpg``, ``.webp``,
        ...; a lossy format is fine for a picture to look at). Its folder must
        exist.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InvalidInputError
        For bad masks or ``alpha`` (see :func:`render_overlay`), an extension
        Pillow cannot write, or a folder that does not exist.
    """
    target, image_format = check_overlay_path(path, "path")
    overlay = render_overlay(image, masks, alpha=alpha)
    buffer = io.BytesIO()
    Image.fromarray(overlay).save(buffer, format=image_format)
    return write_bytes_atomic(target, buffer.getvalue())


def check_overlay_path(path: PathLike, argument: str) -> tuple[Path, str]:
    """``path`` and the Pillow format its extension names, after checking both."""
    target = check_destination(path, argument)
    image_format = Image.registered_extensions().get(target.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        kind = f"{target.suffix!r} files" if target.suffix else "a name without an extension"
        raise InvalidInputError(
            f"{describe(target, argument)}: Pillow cannot write {kind}; end the name in an image "
            "extension such as .png (lossless) or .jpg"
        )
    return target, image_format
