"""The preprocessing graph against the Pillow path: bit-identical encoder inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from edgesam._device_pipeline import _graph_bytes
from edgesam._device_pre import (
    PRECISION_BITS,
    PassCoefficients,
    pass_coefficients,
    preprocess_feeds,
    vertical_first,
)
from edgesam._transforms import input_size_for, preprocess_image

# (H, W): odd, extreme, portrait and landscape shapes, both of Pillow's pass orders.
ODD_SIZES = [
    (1, 1500),
    (1500, 1),
    (50, 1030),
    (1030, 50),
    (37, 53),
    (3000, 4000),
    (1800, 1200),
    (3000, 700),
    (2000, 30),
    (100, 3000),
    (1024, 1024),
    (1024, 700),
    (1, 1),
]


@pytest.fixture(scope="module")
def graphs() -> dict[bool, ort.InferenceSession]:
    return {
        flag: ort.InferenceSession(
            _graph_bytes(f"preprocess_{'vh' if flag else 'hv'}.onnx"),
            providers=["CPUExecutionProvider"],
        )
        for flag in (False, True)
    }


def _on_graph(graphs: dict[bool, ort.InferenceSession], rgb: np.ndarray) -> np.ndarray:
    feeds, order, _ = preprocess_feeds(rgb)
    (out,) = graphs[order].run(["image_input"], feeds)
    return np.asarray(out)


def _numpy_pass(pixels: np.ndarray, coefficients: PassCoefficients, axis: int) -> np.ndarray:
    taps = np.take(pixels.astype(np.int64), coefficients.index, axis=axis)
    weight = coefficients.weight.astype(np.int64)
    weight = weight[:, :, None, None] if axis == 0 else weight[:, :, None]
    sums = (taps * weight).sum(axis=axis + 1)
    return np.clip((sums + (1 << (PRECISION_BITS - 1))) >> PRECISION_BITS, 0, 255)


@pytest.mark.parametrize("size", [(37, 53), (1500, 400), (300, 1200), (1200, 300), (700, 3000)])
def test_pillow_coefficients_reproduce_pillow_in_either_pass_order(size: tuple[int, int]) -> None:
    rgb = np.random.default_rng(sum(size)).integers(0, 256, (*size, 3), dtype=np.uint8)
    new_h, new_w = input_size_for(size)
    pillow = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR))
    rows, cols = pass_coefficients(size[0], new_h), pass_coefficients(size[1], new_w)
    if vertical_first(size, (new_h, new_w)):
        ours = _numpy_pass(_numpy_pass(rgb, rows, 0), cols, 1)
        other = _numpy_pass(_numpy_pass(rgb, cols, 1), rows, 0)
    else:
        ours = _numpy_pass(_numpy_pass(rgb, cols, 1), rows, 0)
        other = _numpy_pass(_numpy_pass(rgb, rows, 0), cols, 1)
    np.testing.assert_array_equal(ours, pillow)
    # The pass order matters (rounding to 8 bits in between): the other order differs.
    assert (other != pillow).any()


def test_coefficients_are_pillows_fixed_point_and_sum_to_one() -> None:
    coefficients = pass_coefficients(4000, 1024)
    assert coefficients.weight.dtype == np.int32
    assert (coefficients.weight >= 0).all()
    totals = coefficients.weight.astype(np.int64).sum(axis=1)
    # Each row is normalised to 1.0 before rounding every tap to 2**-22.
    assert np.abs(totals - (1 << PRECISION_BITS)).max() <= coefficients.weight.shape[1]
    assert coefficients.index.min() >= 0
    assert coefficients.index.max() <= 3999
    identity = pass_coefficients(700, 700)
    np.testing.assert_array_equal(identity.index[:, 0], np.arange(700))
    assert (identity.weight == 1 << PRECISION_BITS).all()


@pytest.mark.parametrize("size", ODD_SIZES)
def test_graph_equals_the_pillow_path_on_odd_sizes(
    graphs: dict[bool, ort.InferenceSession], size: tuple[int, int]
) -> None:
    rgb = np.random.default_rng(size[0] * 7 + size[1]).integers(0, 256, (*size, 3), dtype=np.uint8)
    expected, input_size = preprocess_image(rgb)
    out = _on_graph(graphs, rgb)
    assert out.shape == (1, 3, 1024, 1024)
    assert out.dtype == np.float32
    assert preprocess_feeds(rgb)[2] == input_size
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "name", ["truck.jpg", "groceries.jpg", "synthetic_480x640.png", "tiny_37x53.png"]
)
def test_graph_equals_the_pillow_path_on_the_reference_images(
    graphs: dict[bool, ort.InferenceSession], reference_dir: Path, name: str
) -> None:
    with Image.open(reference_dir / "images" / name) as image:
        rgb = np.asarray(image.convert("RGB"))
    expected, _ = preprocess_image(rgb)
    np.testing.assert_array_equal(_on_graph(graphs, rgb), expected)


def test_graph_keeps_extreme_pixel_values(graphs: dict[bool, ort.InferenceSession]) -> None:
    # All-255 and checkerboard images push the fixed-point sums to their limits.
    white = np.full((1800, 1200, 3), 255, dtype=np.uint8)
    expected, _ = preprocess_image(white)
    np.testing.assert_array_equal(_on_graph(graphs, white), expected)
    board = (np.indices((613, 97)).sum(axis=0) % 2 * 255).astype(np.uint8)
    board = np.repeat(board[:, :, None], 3, axis=2)
    expected, _ = preprocess_image(board)
    np.testing.assert_array_equal(_on_graph(graphs, board), expected)
