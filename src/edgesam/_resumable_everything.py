"""Segment everything in many images, resumably: the engine of ``edgesam everything``.

Each image gets a folder ``OUTPUT/<file name>/`` (``photo.jpg/``: the full
name, so ``a.jpg`` and ``a.png`` stay apart) with its masks and a
``done.json`` written last; an image whose ``done.json`` exists is skipped, so
an interrupted run picks up where it stopped.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgesam._formats import METADATA_FILE, save_overlay, write_coco_json, write_masks_to_folder
from edgesam._image import load_rgb
from edgesam._predictor import SamPredictor
from edgesam.errors import InvalidImageError, InvalidInputError

__all__ = ["IMAGE_SUFFIXES", "EverythingSummary", "find_images", "segment_everything"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
DONE_MARKER = "done.json"
COCO_FILE = "annotations.json"
POLYGONS_FILE = "polygons.json"
# The file each output format writes into an image's folder.
FORMAT_FILES = {"png": METADATA_FILE, "coco-rle": COCO_FILE, "coco-polygons": POLYGONS_FILE}


@dataclass
class EverythingSummary:
    """What a run did: images segmented, skipped as done, and unreadable; masks written."""

    segmented: list[Path] = field(default_factory=list)
    already_done: list[Path] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    masks: int = 0


def done_options(folder: Path) -> dict[str, object] | None:
    """The generator options recorded in ``folder``'s ``done.json`` (None: not recorded)."""
    try:
        recorded = json.loads((folder / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    options = recorded.get("options") if isinstance(recorded, dict) else None
    return options if isinstance(options, dict) else None


def find_images(inputs: Sequence[Path]) -> list[Path]:
    """Expand files and directories (not recursive) into a sorted list of files.

    Files given by name are kept whatever their suffix; in directories, files
    with an image suffix are taken.
    """
    found: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found.extend(
                sorted(
                    path
                    for path in item.iterdir()
                    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        elif item.is_file():
            found.append(item)
        else:
            raise InvalidInputError(f"input {str(item)!r} is neither an image file nor a directory")
    names: dict[str, Path] = {}
    for path in found:
        if path.name in names and names[path.name] != path:
            raise InvalidInputError(
                f"two inputs share the file name {path.name!r} ({names[path.name]} and {path}); "
                "their results would go to the same output folder: run them separately"
            )
        names[path.name] = path
    return list(dict.fromkeys(found))


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise InvalidInputError(
            f"--output {str(output)!r} is a file, not a directory: choose a directory path"
        )
    output.mkdir(parents=True, exist_ok=True)


def segment_everything(
    predictor: SamPredictor,
    images: Iterable[Path],
    output: Path,
    *,
    output_format: str = "png",
    overlay: bool = False,
    polygon_tolerance: float = 0.0,
    progress: Callable[[Path, int, int], None] | None = None,
    **generator_options: object,
) -> EverythingSummary:
    """Run the automatic mask generator over ``images`` and write results under ``output``.

    Parameters
    ----------
    predictor : SamPredictor
        The predictor to use (its image is replaced).
    images : iterable of Path
        Image files (wrap them in a progress bar to show progress). Those that
        cannot be read, or that the predictor refuses while segmenting them
        (``InvalidImageError``), are skipped with a warning and counted.
    output : Path
        Output directory; one sub-folder per image.
    output_format : {"png", "coco-rle", "coco-polygons"}
        ``png``: one PNG per mask plus ``metadata.csv``; ``coco-rle``: one
        COCO-style ``annotations.json``; ``coco-polygons``: the same with
        polygon segmentations, as ``polygons.json``.
    polygon_tolerance : float
        For ``coco-polygons``: simplification in pixels (0, the default, is
        exact); see :func:`edgesam.formats.masks_to_polygons`.
    overlay : bool
        Also write ``overlay.png``, the masks drawn over the image.
    progress : callable, optional
        ``progress(path, done, total)`` after each decoder batch of an image:
        grid points decoded so far and in all for that image.
    **generator_options
        Options of :class:`edgesam.amg.SamAutomaticMaskGenerator`.
    """
    from edgesam.amg import SamAutomaticMaskGenerator

    if output_format not in FORMAT_FILES:
        raise InvalidInputError(
            f"output_format must be one of {', '.join(map(repr, FORMAT_FILES))}: got "
            f"{output_format!r}"
        )
    _check_output(output)
    mode: Literal["binary_mask", "coco_rle"] = (
        "binary_mask" if output_format == "png" else "coco_rle"
    )
    generator = SamAutomaticMaskGenerator(
        predictor,
        output_mode=mode,
        **generator_options,  # type: ignore[arg-type]
    )
    # Scalars only: enough to tell a resumed run's settings apart, always JSON.
    recorded_options = {
        name: value
        for name, value in generator_options.items()
        if value is None or isinstance(value, (bool, int, float, str))
    }
    summary = EverythingSummary()
    for path in images:
        folder = output / path.name
        if (folder / DONE_MARKER).is_file():
            summary.already_done.append(path)
            continue
        try:
            rgb = load_rgb(path)
            within = None if progress is None else functools.partial(progress, path)
            records = generator.generate(rgb, progress=within)
        except InvalidImageError as err:  # unreadable, or refused while it is segmented
            logger.warning("skipping %s: %s", path, err)
            summary.unreadable.append(path)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        if output_format == "png":
            write_masks_to_folder(records, folder)
        else:
            write_coco_json(
                records,
                folder / FORMAT_FILES[output_format],
                image_size=(int(rgb.shape[0]), int(rgb.shape[1])),
                file_name=path.name,
                polygons=output_format == "coco-polygons",
                polygon_tolerance=polygon_tolerance,
            )
        if overlay:
            masks = [record["segmentation"] for record in records]
            save_overlay(rgb, masks, folder / "overlay.png")
        marker = folder / f".{DONE_MARKER}.tmp"
        record = {"image": str(path), "masks": len(records), "options": recorded_options}
        marker.write_text(json.dumps(record))
        os.replace(marker, folder / DONE_MARKER)
        summary.segmented.append(path)
        summary.masks += len(records)
    return summary
