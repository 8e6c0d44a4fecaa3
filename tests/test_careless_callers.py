"""Public entry points given careless arguments: a package error (or a valid result), nothing else.

The first half pins the cases the hardening issue found raising raw builtin
errors; the second half fuzzes the same entry points with hypothesis.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesam import EdgeSam, ImageEmbedding, SamAutomaticMaskGenerator, SamPredictor
from edgesam.errors import (
    EdgeSamError,
    InferenceError,
    InvalidInputError,
    WeightsNotFoundError,
)

IMAGE = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
_lock = threading.Lock()


@pytest.fixture(scope="module")
def predictor(tiny_model: EdgeSam) -> SamPredictor:
    predictor = SamPredictor(tiny_model)
    predictor.set_image(IMAGE)
    return predictor


# -- the cases the issue lists -------------------------------------------------------------


@pytest.mark.parametrize("value", [[3], "3", 3.0, 2, None.__class__, {"n": 3}])
def test_num_multimask_outputs_of_the_wrong_kind(predictor: SamPredictor, value: object) -> None:
    with pytest.raises(InvalidInputError, match="num_multimask_outputs must be 1, 3 or 4"):
        predictor.predict(point_coords=[[5, 5]], point_labels=[1], num_multimask_outputs=value)  # type: ignore[arg-type]


def test_num_multimask_outputs_accepts_numpy_integers(predictor: SamPredictor) -> None:
    masks, _, _ = predictor.predict(
        point_coords=[[5, 5]], point_labels=[1], num_multimask_outputs=np.int64(4)
    )
    assert masks.shape == (4, 48, 64)


@pytest.mark.parametrize(
    "logits",
    [
        [np.zeros((256, 256)), np.zeros((3, 256))],  # ragged
        np.full((1, 256, 256), np.nan, dtype=np.float32),
        np.full((2, 256, 256), np.inf, dtype=np.float32),
        "logits",
    ],
    ids=["ragged", "nan", "inf", "string"],
)
def test_upsample_refuses_ragged_and_non_finite_logits(
    predictor: SamPredictor, logits: object
) -> None:
    with pytest.raises(InvalidInputError, match="low_res_logits"):
        predictor.upsample(logits)


def test_upsample_of_predicted_logits_still_works(predictor: SamPredictor) -> None:
    masks, _, logits = predictor.predict(point_coords=[[5, 5]], point_labels=[1])
    np.testing.assert_array_equal(predictor.upsample(logits), masks)


def test_non_finite_decoder_outputs_are_an_inference_error(
    tiny_model: EdgeSam, monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = SamPredictor(tiny_model)
    predictor.set_image(IMAGE)
    decode = type(tiny_model)._decode

    def nan_scores(self: EdgeSam, *args: Any, **kwargs: Any) -> Any:
        scores, logits = decode(self, *args, **kwargs)
        return np.full_like(scores, np.nan), logits

    monkeypatch.setattr(type(tiny_model), "_decode", nan_scores)
    with pytest.raises(InferenceError, match="NaN or infinite scores"):
        predictor.predict(point_coords=[[5, 5]], point_labels=[1])

    def nan_logits(self: EdgeSam, *args: Any, **kwargs: Any) -> Any:
        scores, logits = decode(self, *args, **kwargs)
        logits = logits.copy()
        logits[..., 7, 7] = np.nan
        return scores, logits

    monkeypatch.setattr(type(tiny_model), "_decode", nan_logits)
    with pytest.raises(InferenceError, match="mask logits"):
        predictor.predict_low_res(point_coords=[[5, 5]], point_labels=[1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"points_per_side": 100_000}, r"points_per_side must be an integer in \[1, 1024\]"),
        ({"points_per_side": 0}, "points_per_side must be an integer"),
        ({"points_per_side": 4.5}, "points_per_side must be an integer"),
        ({"crop_n_layers": 40}, r"crop_n_layers must be an integer in \[0, 5\]"),
        ({"points_per_side": None, "point_grids": 5}, "point_grids must be a list"),
        ({"points_per_side": None, "point_grids": "ab"}, "point_grids must be a list"),
        (
            {"points_per_side": None, "point_grids": [[[0.1, 0.2], [0.3]]]},
            r"point_grids\[0\] must be an \(N, 2\) array",
        ),
        (
            {"points_per_side": None, "point_grids": [[["a", "b"]]]},
            r"point_grids\[0\] must be an \(N, 2\) array",
        ),
        (
            {"points_per_side": None, "point_grids": [np.full((3, 2), np.nan)]},
            r"point_grids\[0\] must be normalised",
        ),
        (
            {"points_per_side": None, "point_grids": [np.zeros((1025 * 1025, 2))]},
            "more than the 1048576",
        ),
    ],
)
def test_mask_generator_bounds(
    tiny_model: EdgeSam, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        SamAutomaticMaskGenerator(tiny_model, **options)  # type: ignore[arg-type]


def test_mask_generator_accepts_the_bounds(tiny_model: EdgeSam) -> None:
    generator = SamAutomaticMaskGenerator(tiny_model, points_per_side=1024, crop_n_layers=5)
    assert generator.point_grids[0].shape == (1024 * 1024, 2)
    assert len(generator.point_grids) == 6


def test_from_pretrained_with_a_number_as_cache_dir(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cache_dir must be the path of a folder"):
        EdgeSam.from_pretrained(cache_dir=5, local_files_only=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["revision", "endpoint"])
def test_from_pretrained_with_a_number_as_a_string_option(option: str) -> None:
    with pytest.raises(InvalidInputError, match=f"{option} must be a str or None"):
        EdgeSam.from_pretrained(local_files_only=True, **{option: 5})  # type: ignore[arg-type]


def test_from_files_with_an_unknown_users_home() -> None:
    with pytest.raises(WeightsNotFoundError, match="names no known user"):
        EdgeSam.from_files("~nouser-edgesam-test/x.onnx", "~nouser-edgesam-test/y.onnx")


@pytest.mark.parametrize("path", ["", "."])
def test_embedding_save_to_an_empty_path_or_a_folder(
    predictor: SamPredictor, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match=r"path must name an \.npz file"):
        predictor.get_image_embedding().save(path)
    assert list(tmp_path.iterdir()) == []


# -- property tests: a package error or a valid result, nothing else -----------------------

_any_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner),
    max_leaves=12,
)
_coords = st.one_of(
    _any_value,
    st.lists(
        st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=3),
        min_size=0,
        max_size=4,
    ),
)
_labels = st.one_of(_any_value, st.lists(st.integers(-3, 3), max_size=4))
_box = st.one_of(_any_value, st.lists(st.floats(-100, 200) | st.just(float("nan")), max_size=5))
_fuzz = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _valid_prediction(result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    masks, scores, logits = result
    assert masks.shape[-2:] == (48, 64)
    assert masks.dtype == np.bool_
    assert logits.shape[-2:] == (256, 256)
    assert scores.shape == logits.shape[:-2] == masks.shape[:-2]
    assert np.isfinite(scores).all()


@_fuzz
@given(
    coords=_coords,
    labels=_labels,
    box=_box,
    multimask=st.one_of(st.booleans(), _any_value),
    outputs=st.one_of(st.none(), st.sampled_from([1, 3, 4]), _any_value),
)
def test_predict_gives_a_package_error_or_a_valid_result(
    predictor: SamPredictor,
    coords: object,
    labels: object,
    box: object,
    multimask: object,
    outputs: object,
) -> None:
    try:
        result = predictor.predict(
            point_coords=coords,
            point_labels=labels,
            box=box,
            multimask_output=multimask,  # type: ignore[arg-type]
            num_multimask_outputs=outputs,  # type: ignore[arg-type]
        )
    except EdgeSamError:
        return
    _valid_prediction(result)


@_fuzz
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
    dtype=st.sampled_from(["uint8", "float32", "int16", "bool", "float64"]),
    image_format=st.one_of(st.sampled_from(["RGB", "BGR"]), st.text(max_size=4)),
)
def test_set_image_gives_a_package_error_or_a_valid_state(
    tiny_model: EdgeSam, shape: list[int], dtype: str, image_format: str
) -> None:
    predictor = SamPredictor(tiny_model)
    image = np.zeros(tuple(shape), dtype=dtype)
    try:
        predictor.set_image(image, image_format)  # type: ignore[arg-type]
    except EdgeSamError:
        assert not predictor.is_image_set
        return
    assert predictor.is_image_set
    assert predictor.original_size == tuple(shape[:2])


@_fuzz
@given(
    points_per_side=st.one_of(st.integers(-5, 2000), _any_value),
    crop_n_layers=st.one_of(st.integers(-2, 50), _any_value),
    thresholds=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4),
)
def test_mask_generator_options_give_a_package_error_or_a_generator(
    tiny_model: EdgeSam, points_per_side: object, crop_n_layers: object, thresholds: list[float]
) -> None:
    iou, stability, box_nms, overlap = thresholds
    try:
        generator = SamAutomaticMaskGenerator(
            tiny_model,
            points_per_side=points_per_side,  # type: ignore[arg-type]
            crop_n_layers=crop_n_layers,  # type: ignore[arg-type]
            pred_iou_thresh=iou,
            stability_score_thresh=stability,
            box_nms_thresh=box_nms,
            crop_overlap_ratio=overlap,
        )
    except EdgeSamError:
        return
    assert 0 <= generator.crop_n_layers <= 5
    assert all(len(grid) <= 1024 * 1024 for grid in generator.point_grids)


@_fuzz
@given(
    original=st.one_of(st.tuples(st.integers(-5, 10**6), st.integers(-5, 10**6)), _any_value),
    name=_any_value,
)
def test_image_embedding_gives_a_package_error_or_an_embedding(
    original: object, name: object
) -> None:
    array = np.zeros((1, 256, 64, 64), dtype=np.float32)
    try:
        embedding = ImageEmbedding(array, original, (1024, 1024), name, "f")  # type: ignore[arg-type]
    except EdgeSamError:
        return
    assert embedding.shape == (1, 256, 64, 64)
