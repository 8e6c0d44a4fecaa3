"""load_rgb: every accepted image form becomes HxWx3 uint8 RGB; everything else is refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from edgesam import InvalidImageError, InvalidInputError
from edgesam._image import load_rgb


def _pattern(height: int = 5, width: int = 7) -> np.ndarray:
    """An HxWx3 uint8 image whose three channels all differ."""
    rows, cols = np.mgrid[:height, :width]
    return np.stack([rows * 10, cols * 20, rows + cols + 100], axis=-1).astype(np.uint8)


def _check_rgb(result: np.ndarray, height: int, width: int) -> None:
    assert isinstance(result, np.ndarray)
    assert result.dtype == np.uint8
    assert result.shape == (height, width, 3)
    assert result.flags.c_contiguous


# -- arrays --------------------------------------------------------------------------------


def test_rgb_array_passes_through_unchanged() -> None:
    image = _pattern()
    result = load_rgb(image)
    _check_rgb(result, 5, 7)
    np.testing.assert_array_equal(result, image)


def test_bgr_array_is_reversed() -> None:
    image = _pattern()
    before = image.copy()
    result = load_rgb(image, "BGR")
    _check_rgb(result, 5, 7)
    np.testing.assert_array_equal(result[..., 0], image[..., 2])
    np.testing.assert_array_equal(result[..., 1], image[..., 1])
    np.testing.assert_array_equal(result[..., 2], image[..., 0])
    np.testing.assert_array_equal(image, before)  # the caller's array is untouched


def test_bgra_array_drops_alpha_then_reverses() -> None:
    bgra = np.zeros((2, 3, 4), dtype=np.uint8)
    bgra[...] = (10, 20, 30, 40)  # B, G, R, A
    result = load_rgb(bgra, "BGR")
    _check_rgb(result, 2, 3)
    assert np.all(result == np.array([30, 20, 10], dtype=np.uint8))


def test_non_contiguous_array_comes_back_contiguous() -> None:
    image = _pattern(6, 8)[:, ::2]
    assert not image.flags.c_contiguous
    result = load_rgb(image)
    _check_rgb(result, 6, 4)
    np.testing.assert_array_equal(result, image)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 1)])
def test_grayscale_array_is_expanded(shape: tuple[int, ...]) -> None:
    gray = np.arange(24, dtype=np.uint8).reshape(shape)
    result = load_rgb(gray)
    _check_rgb(result, 4, 6)
    flat = gray.reshape(4, 6)
    for channel in range(3):
        np.testing.assert_array_equal(result[..., channel], flat)


def test_rgba_array_drops_alpha() -> None:
    rgba = np.zeros((3, 2, 4), dtype=np.uint8)
    rgba[..., :3] = _pattern(3, 2)
    rgba[..., 3] = 0  # fully transparent: the colours are still kept, not blended
    result = load_rgb(rgba)
    _check_rgb(result, 3, 2)
    np.testing.assert_array_equal(result, _pattern(3, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int64, np.bool_])
def test_non_uint8_dtype_is_refused_with_a_hint(dtype: type) -> None:
    image = np.zeros((4, 4, 3), dtype=dtype)
    with pytest.raises(InvalidImageError, match="dtype uint8") as info:
        load_rgb(image)
    assert np.dtype(dtype).name in str(info.value)
    assert "astype(np.uint8)" in str(info.value)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (0, 5, 3), (5, 0, 3), (0, 0), (1, 0, 4)])
def test_images_with_fewer_than_two_pixels_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match="at least 2 pixels"):
        load_rgb(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("shape", [(1, 2, 3), (2, 1, 3), (1, 2)])
def test_two_pixel_images_are_accepted(shape: tuple[int, ...]) -> None:
    result = load_rgb(np.full(shape, 9, dtype=np.uint8))
    assert result.shape == (shape[0], shape[1], 3)
    assert np.all(result == 9)


def test_chw_array_is_refused_with_the_transpose_hint() -> None:
    hint = re.escape("np.transpose(image, (1, 2, 0))")
    with pytest.raises(InvalidImageError, match=hint) as info:
        load_rgb(np.zeros((3, 40, 60), dtype=np.uint8))
    assert "(3, 40, 60)" in str(info.value)


@pytest.mark.parametrize("shape", [(4, 4, 2), (4, 4, 5), (1, 4, 4, 3), (12,)])
def test_other_shapes_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match="HxWx3"):
        load_rgb(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("image", [[[1, 2], [3, 4]], b"\x89PNG", 42, None])
def test_unsupported_types_are_refused(image: object) -> None:
    with pytest.raises(InvalidImageError, match=r"numpy array .* PIL\.Image\.Image or a path"):
        load_rgb(image)


@pytest.mark.parametrize("image_format", ["rgb", "BGRA", "", "RGBA"])
def test_unknown_image_format(image_format: str) -> None:
    with pytest.raises(InvalidInputError, match="image_format") as info:
        load_rgb(_pattern(), image_format)
    assert not isinstance(info.value, InvalidImageError)
    assert repr(image_format) in str(info.value)


# -- PIL images ----------------------------------------------------------------------------


def test_pil_rgb() -> None:
    image = _pattern()
    result = load_rgb(Image.fromarray(image, mode="RGB"))
    _check_rgb(result, 5, 7)
    np.testing.assert_array_equal(result, image)


def test_pil_l_is_expanded() -> None:
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    result = load_rgb(Image.fromarray(gray, mode="L"))
    _check_rgb(result, 5, 7)
    for channel in range(3):
        np.testing.assert_array_equal(result[..., channel], gray)


def test_pil_rgba_drops_alpha() -> None:
    rgba = np.zeros((5, 7, 4), dtype=np.uint8)
    rgba[..., :3] = _pattern()
    rgba[..., 3] = 128
    result = load_rgb(Image.fromarray(rgba, mode="RGBA"))
    _check_rgb(result, 5, 7)
    np.testing.assert_array_equal(result, _pattern())


def test_pil_palette_is_looked_up() -> None:
    palette_image = Image.new("P", (3, 2))
    palette = [0, 0, 0, 10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 9)
    palette_image.putpalette(palette)
    palette_image.putdata([0, 1, 2, 2, 1, 0])
    result = load_rgb(palette_image)
    _check_rgb(result, 2, 3)
    expected = np.array(
        [[[0, 0, 0], [10, 20, 30], [200, 100, 50]], [[200, 100, 50], [10, 20, 30], [0, 0, 0]]],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(result, expected)


def test_image_format_is_ignored_for_pil_images() -> None:
    image = _pattern()
    result = load_rgb(Image.fromarray(image, mode="RGB"), "BGR")
    np.testing.assert_array_equal(result, image)


@pytest.mark.parametrize(("mode", "size"), [("RGB", (1, 1)), ("L", (1, 1)), ("RGB", (0, 3))])
def test_pil_images_with_fewer_than_two_pixels_are_refused(
    mode: str, size: tuple[int, int]
) -> None:
    with pytest.raises(InvalidImageError, match="at least 2 pixels"):
        load_rgb(Image.new(mode, size))


@pytest.mark.parametrize(
    ("mode", "hint"), [("I;16", "/ 257"), ("I;16B", "/ 257"), ("I", "/ 257"), ("F", "\\* 255")]
)
def test_pil_images_wider_than_8_bits_are_refused(mode: str, hint: str) -> None:
    # convert("RGB") would clip them: 16-bit photos come out nearly white, [0, 1] floats black
    with pytest.raises(InvalidImageError, match=rf"mode '{re.escape(mode)}'.*{hint}"):
        load_rgb(Image.new(mode, (4, 3)))


def test_pil_mode_without_an_rgb_conversion_is_an_invalid_image() -> None:
    with pytest.raises(InvalidImageError, match="mode 'La' cannot be converted") as info:
        load_rgb(Image.new("La", (4, 3)))
    assert isinstance(info.value.__cause__, ValueError)


# -- paths ---------------------------------------------------------------------------------


def test_png_path_as_str_and_pathlib(tmp_path: Path) -> None:
    image = _pattern(9, 11)
    path = tmp_path / "picture.png"
    Image.fromarray(image, mode="RGB").save(path)
    for argument in (path, str(path)):
        result = load_rgb(argument)
        _check_rgb(result, 9, 11)
        np.testing.assert_array_equal(result, image)


def test_grayscale_png_path_is_expanded(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    result = load_rgb(path)
    _check_rgb(result, 3, 4)
    for channel in range(3):
        np.testing.assert_array_equal(result[..., channel], gray)


def test_image_format_is_ignored_for_paths(tmp_path: Path) -> None:
    image = _pattern()
    path = tmp_path / "picture.png"
    Image.fromarray(image, mode="RGB").save(path)
    np.testing.assert_array_equal(load_rgb(path, "BGR"), image)


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(InvalidImageError, match="does not exist") as info:
        load_rgb(missing)
    assert str(missing) in str(info.value)


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="does not exist or is not a file"):
        load_rgb(tmp_path)


def test_non_image_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(InvalidImageError, match="could not be read as an image") as info:
        load_rgb(path)
    assert info.value.__cause__ is not None


def test_truncated_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "truncated.png"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), mode="RGB").save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError, match="could not be read"):
        load_rgb(path)


def test_16_bit_png_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(path)
    with pytest.raises(InvalidImageError, match="wider than 8 bits"):
        load_rgb(path)


@pytest.mark.parametrize(("orientation", "upright"), [(1, (48, 64)), (6, (64, 48)), (8, (64, 48))])
def test_path_is_read_upright_by_its_exif_orientation(
    tmp_path: Path, orientation: int, upright: tuple[int, int]
) -> None:
    # A phone photo stored 64 wide, 48 high, tagged "rotate 90": viewers show it 48x64.
    stored = np.zeros((48, 64, 3), dtype=np.uint8)
    stored[:, :8] = 255  # a white band on the stored image's left edge
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    Image.fromarray(stored, mode="RGB").save(path, exif=exif)
    result = load_rgb(path)
    assert result.shape[:2] == upright
    with Image.open(path) as opened:
        expected = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    np.testing.assert_array_equal(result, expected)
    if orientation == 6:  # rotated 90 degrees clockwise for display: left edge on top
        assert result[:8].min() == 255
        assert result[8:].max() == 0


def test_pil_image_itself_is_not_rotated() -> None:
    # The caller's own PIL image keeps the caller's pixel coordinates.
    exif = Image.Exif()
    exif[0x0112] = 6
    image = Image.fromarray(np.zeros((48, 64, 3), dtype=np.uint8), mode="RGB")
    image.info["exif"] = exif.tobytes()
    assert load_rgb(image).shape == (48, 64, 3)


def test_decompression_bomb_is_an_invalid_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((40, 50, 3), dtype=np.uint8), mode="RGB").save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 2000 px is over twice the limit
    with pytest.raises(InvalidImageError, match="MAX_IMAGE_PIXELS") as info:
        load_rgb(path)
    assert isinstance(info.value.__cause__, Image.DecompressionBombError)


@pytest.mark.parametrize("url", ["https://example.com/cat.jpg", "HTTP://example.com/a.png"])
def test_urls_are_not_taken_for_paths(url: str) -> None:
    with pytest.raises(InvalidImageError, match="is a URL; edgesam reads local files only"):
        load_rgb(url)
