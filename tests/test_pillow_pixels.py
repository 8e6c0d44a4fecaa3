"""Reading a Pillow image's pixels in place through its Arrow export.

The expected pixels always come from Pillow's own ``tobytes``.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PIL import Image

from edgesam import _pillow_pixels
from edgesam._pillow_pixels import rgbx_pixels

needs_arrow = pytest.mark.skipif(
    not hasattr(Image.Image, "__arrow_c_array__"),
    reason="this Pillow has no Arrow export (added in 11.2); rgbx_pixels copies instead",
)


def _image(height: int, width: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(rgb).convert(mode)


def _tobytes(image: Image.Image) -> np.ndarray:
    width, height = image.size
    return np.frombuffer(image.tobytes("raw", "RGBX"), np.uint8).reshape(height, width, 4)


@pytest.mark.parametrize("mode", ["RGB", "RGBX"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 7), (147, 1024), (683, 512)])
def test_pixels_equal_pillows_own_bytes(mode: str, shape: tuple[int, int]) -> None:
    image = _image(*shape, mode=mode, seed=sum(shape))
    pixels = rgbx_pixels(image)
    assert pixels.shape == (*shape, 4)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[..., :3], _tobytes(image)[..., :3])


@needs_arrow
def test_an_image_in_one_block_is_read_in_place_and_read_only() -> None:
    image = _image(50, 40).resize((30, 20), Image.Resampling.BILINEAR)
    assert _pillow_pixels._exported_buffer(image, 20 * 30 * 4) is not None
    pixels = rgbx_pixels(image)
    assert not pixels.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        pixels[0, 0, 0] = 1


@needs_arrow
def test_the_view_outlives_the_image_it_came_from() -> None:
    # The export holds Pillow's memory: after the image is gone and fresh images of
    # the same size have been made (and could reuse freed blocks), the view still
    # reads the original pixels.
    image = _image(300, 200, seed=5).resize((150, 100), Image.Resampling.BILINEAR)
    expected = _tobytes(image).copy()
    pixels = rgbx_pixels(image)
    del image
    gc.collect()
    others = [Image.new("RGB", (150, 100), (7, 7, 7)) for _ in range(50)]
    np.testing.assert_array_equal(pixels[..., :3], expected[..., :3])
    assert len(others) == 50


def test_an_image_pillow_cannot_export_is_copied() -> None:
    # Pillow stores images over its 16 MiB block size in several blocks, which its
    # Arrow export refuses; the pixels then come from tobytes.
    image = _image(2100, 2100, seed=3)
    assert _pillow_pixels._exported_buffer(image, 2100 * 2100 * 4) is None
    pixels = rgbx_pixels(image)
    assert pixels.shape == (2100, 2100, 4)
    np.testing.assert_array_equal(pixels[..., :3], _tobytes(image)[..., :3])


def test_without_an_arrow_export_the_pixels_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image(20, 30, seed=2)
    monkeypatch.delattr(Image.Image, "__arrow_c_array__", raising=False)
    assert _pillow_pixels._exported_buffer(image, 20 * 30 * 4) is None
    np.testing.assert_array_equal(rgbx_pixels(image)[..., :3], np.asarray(image))


def test_only_rgb_layouts_are_accepted() -> None:
    with pytest.raises(ValueError, match="mode 'L'"):
        rgbx_pixels(Image.new("L", (4, 4)))
