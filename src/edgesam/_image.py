"""Accept an image from the caller and turn it into an HxWx3 uint8 RGB array.

Accepted: a numpy array (HxWx3 RGB or BGR, HxWx4 with alpha, HxW or HxWx1
grayscale; uint8), a ``PIL.Image.Image`` of any 8-bit mode, or a path to an
image file. Grayscale is expanded to three equal channels and alpha is dropped
(the model was trained on opaque RGB photos); everything else is refused with
a message. A file is turned upright by its EXIF orientation, as photo viewers,
``cv2.imread`` and ``transformers.image_utils.load_image`` show it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from edgesam._files import NotARegularFileError, open_regular_file, short_repr
from edgesam.errors import InvalidImageError, InvalidInputError

__all__ = ["ImageFormat", "ImageLike", "load_rgb"]

logger = logging.getLogger(__name__)

# Modes whose samples are wider than 8 bits: Pillow's convert("RGB") clips them to
# 255 instead of scaling (a 16-bit PNG comes out nearly white, floats in [0, 1] black).
_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")

ImageFormat = Literal["RGB", "BGR"]
ImageLike = NDArray[np.uint8] | Image.Image | str | os.PathLike[str]


def load_rgb(image: object, image_format: str = "RGB") -> NDArray[np.uint8]:
    """Return ``image`` as a C-contiguous HxWx3 uint8 RGB array.

    Parameters
    ----------
    image : ndarray, PIL.Image.Image, str or os.PathLike
        The picture. Arrays must be uint8, HxWx3 (or HxW / HxWx1 grayscale,
        HxWx4 with alpha, which is dropped). PIL images must have 8-bit
        samples. Files are read upright (EXIF orientation applied).
    image_format : {"RGB", "BGR"}
        Channel order of an array ``image``. Ignored for PIL images and paths,
        which are always read as RGB.

    Raises
    ------
    InvalidImageError
        For a type, dtype, shape or size the model cannot take, or a file that
        is not a readable image.
    InvalidInputError
        For an unknown ``image_format``.
    """
    if image_format not in get_args(ImageFormat):
        raise InvalidInputError(
            f"image_format must be one of {get_args(ImageFormat)}: got {image_format!r}"
        )
    if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
        raise InvalidImageError(
            f"image {image!r} is a URL; edgesam reads local files only: download it first "
            "and pass the file's path, a PIL image or an HxWx3 uint8 array"
        )
    if isinstance(image, (str, os.PathLike)):
        return _check_size(_from_pil(_open(Path(image))))
    if isinstance(image, Image.Image):
        return _check_size(_from_pil(image))
    if isinstance(image, np.ndarray):
        rgb = _from_array(image)
        if image_format == "BGR":
            rgb = rgb[..., ::-1]
        return _check_size(np.ascontiguousarray(rgb))
    raise InvalidImageError(
        "image must be a numpy array (HxWx3 uint8), a PIL.Image.Image or a path to an "
        f"image file: got {type(image).__name__}"
    )


def _open(path: Path) -> Image.Image:
    """Open, check the declared size, decode and turn upright the image file at ``path``.

    Whatever Pillow raises on a hostile or damaged file (its parsers raise
    ``SyntaxError``, ``struct.error``, ``NotImplementedError`` and more besides
    ``OSError``) becomes an :class:`InvalidImageError` naming the file.
    """
    try:
        stream = open_regular_file(path)
    except NotARegularFileError as err:
        raise InvalidImageError(
            f"image path {str(path)!r} does not exist or is not a file (it is a {err.kind}); "
            "pass an image file"
        ) from None
    except OSError as err:
        raise InvalidImageError(
            f"image path {str(path)!r} does not exist or is not a file ({err.strerror or err})"
        ) from None
    try:
        with stream, Image.open(stream) as opened:
            _check_declared_size(opened.size, f"image file {str(path)!r}")
            opened.load()
            upright: Image.Image = ImageOps.exif_transpose(opened)
            return upright
    except InvalidImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _too_large(f"image file {str(path)!r}", str(err)) from err
    except Exception as err:  # any failure of Pillow's parsers on the file's bytes
        raise InvalidImageError(
            f"image file {str(path)!r} could not be read as an image "
            f"({type(err).__name__}: {short_repr(str(err), 200)}); "
            "pass a JPEG/PNG/... file, a PIL image or an HxWx3 uint8 array"
        ) from err


def _too_large(what: str, detail: str) -> InvalidImageError:
    return InvalidImageError(
        f"{what} is larger than Pillow's safety limit for untrusted files ({detail}); if "
        "you trust it, raise PIL.Image.MAX_IMAGE_PIXELS first, or downscale it: EdgeSAM "
        "sees every image at 1024 pixels on the long side"
    )


def _check_declared_size(size: tuple[int, int], what: str) -> None:
    """Refuse, before decoding, an image whose header declares more than the pixel limit.

    The limit is ``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 million pixels by
    default; None disables it), at which Pillow itself only warns.
    """
    limit = Image.MAX_IMAGE_PIXELS
    width, height = size
    if limit is not None and width * height > limit:
        raise _too_large(
            what, f"its header declares {width}x{height} = {width * height} pixels, over {limit}"
        )


def _from_pil(image: Image.Image) -> NDArray[np.uint8]:
    try:
        return _pil_to_rgb(image)
    except InvalidImageError:
        raise
    except Exception as err:  # a lazily opened image decodes here: truncated, damaged, ...
        raise InvalidImageError(
            f"the PIL image could not be decoded ({type(err).__name__}: "
            f"{short_repr(str(err), 200)}); if it was opened from a file, the file may be "
            "truncated or damaged: check it, or pass the image's pixels as an array"
        ) from err


def _pil_to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    if image.mode in _WIDE_MODES:
        example = (
            "(np.asarray(image) * 255).round().astype(np.uint8) for floats in [0, 1]"
            if image.mode == "F"
            else "(np.asarray(image) / 257).round().astype(np.uint8) for 16-bit data"
        )
        raise InvalidImageError(
            f"image is a PIL image of mode {image.mode!r}, with samples wider than 8 bits, "
            f"which converting to RGB would clip at 255: scale it to 0..255 first, e.g. {example}"
        )
    if image.mode != "RGB":
        logger.debug("converting a PIL image of mode %s to RGB", image.mode)
        try:
            image = image.convert("RGB")
        except (ValueError, OSError) as err:
            raise InvalidImageError(
                f"a PIL image of mode {image.mode!r} cannot be converted to RGB ({err}); "
                "convert it to 'RGB' or 'L' yourself first"
            ) from err
    return np.asarray(image, dtype=np.uint8)


def _from_array(array: NDArray[Any]) -> NDArray[np.uint8]:
    if array.dtype != np.uint8:
        raise InvalidImageError(
            f"image must have dtype uint8 (values 0..255): got {array.dtype}. "
            "Convert first, e.g. (image * 255).round().astype(np.uint8) for floats in [0, 1]"
        )
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 4:
        logger.debug("dropping the alpha channel of an HxWx4 image")
        return array[:, :, :3]
    if array.ndim == 3 and array.shape[2] == 3:
        return array
    raise InvalidImageError(
        f"image must be an HxWx3 array (HxW, HxWx1 and HxWx4 are converted): got shape "
        f"{array.shape}. A CxHxW array needs np.transpose(image, (1, 2, 0))"
    )


def _check_size(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    if height < 1 or width < 1 or height * width < 2:
        raise InvalidImageError(
            f"image must have at least 2 pixels: got height={height}, width={width}"
        )
    return rgb
