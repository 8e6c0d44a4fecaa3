"""_validate: the argument checks of the public boundary, each run once per call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgesam import EdgeSam, InvalidInputError, InvalidPromptError, SamPredictor, _model, _validate
from edgesam._validate import (
    binary_mask,
    finite_float32,
    flag,
    integer,
    number,
    numeric_array,
    size_pair,
)
from edgesam.errors import InvalidEmbeddingError


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: flag("False", "return_logits"), "return_logits"),
        (lambda: flag(2, "multimask_output"), "multimask_output"),
        (lambda: integer(True, "points_per_side"), "points_per_side"),
        (lambda: integer(-1, "crop_n_layers", 0), "crop_n_layers"),
        (lambda: integer(1.5, "points_per_batch"), "points_per_batch"),
        (lambda: number(float("nan"), "box_nms_thresh"), "box_nms_thresh"),
        (lambda: number(2, "pred_iou_thresh", (0.0, 1.0)), "pred_iou_thresh"),
        (lambda: numeric_array([[1.0], [1.0, 2.0]], "point_coords"), "point_coords"),
        (lambda: numeric_array(["a"], "box"), "box"),
        (lambda: finite_float32([1e39], "mask_input"), "mask_input"),
        (lambda: number(-1, "tolerance", (0.0, float("inf"))), "tolerance"),
        (lambda: size_pair((5,), "original_size"), "original_size"),
        (lambda: size_pair((0, 5), "input_size"), "input_size"),
        (lambda: size_pair(None, "original_image_size"), "original_image_size"),
        (lambda: binary_mask(np.zeros((2, 3, 4)), "mask"), "mask"),
        (lambda: binary_mask(np.zeros((3, 4)), "masks", ndim=3), "masks"),
        (lambda: binary_mask(np.array([["a"]]), "mask"), "mask"),
        (lambda: binary_mask([[1, 0], [1]], "mask"), "mask"),
    ],
)
def test_each_refusal_names_its_argument(call: Any, argument: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        call()
    assert info.value.argument == argument
    assert str(info.value).startswith(argument)


def test_accepted_values_come_back_converted() -> None:
    assert flag(np.bool_(True), "x") is True
    assert flag(0, "x") is False
    assert integer(np.int64(3), "x") == 3
    assert number(1, "x", (0.0, 1.0)) == 1.0
    assert finite_float32([1, 2], "x").dtype == np.float32


def test_bounds_without_an_upper_end_read_as_a_minimum() -> None:
    with pytest.raises(InvalidInputError, match=r"num_cpus must be a number >= 0: got -1"):
        number(-1, "num_cpus", (0.0, float("inf")))
    assert number(float("1e300"), "num_cpus", (0.0, float("inf"))) == 1e300


def test_size_pair_and_binary_mask_convert_and_raise_the_callers_error() -> None:
    assert size_pair(np.array([480, 640]), "original_size") == (480, 640)
    assert size_pair((np.int64(3), 4.0), "original_size") == (3, 4)
    with pytest.raises(InvalidEmbeddingError, match=r"input_size must be positive"):
        size_pair((0, 1), "input_size", InvalidEmbeddingError)
    masks = binary_mask(np.array([[[0, 2], [0.5, 0]]]), "masks", ndim=3)
    assert masks.dtype == np.bool_
    assert masks.tolist() == [[[False, True], [True, False]]]
    kept = np.array([[True, False]])
    assert binary_mask(kept, "mask") is kept


def test_the_argument_attribute_defaults_to_none_and_survives_pickling() -> None:
    import pickle

    assert InvalidPromptError("no prompt").argument is None
    restored = pickle.loads(pickle.dumps(InvalidPromptError("box bad", argument="box")))
    assert restored.argument == "box"
    assert str(restored) == "box bad"


def test_predict_checks_points_and_mask_input_once(
    tiny_full_model: EdgeSam, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every array check goes through numeric_array, wherever it is called from.
    checked: list[str] = []
    real = _validate.numeric_array

    def counting(value: object, name: str, *args: Any) -> Any:
        checked.append(name)
        return real(value, name, *args)

    monkeypatch.setattr(_validate, "numeric_array", counting)
    monkeypatch.setattr(_model, "numeric_array", counting)
    predictor = SamPredictor(tiny_full_model)
    predictor.set_image(np.zeros((40, 50, 3), dtype=np.uint8))
    predictor.predict(
        point_coords=[[10, 20]],
        point_labels=[1],
        mask_input=np.zeros((1, 256, 256), np.float32),
    )
    assert sorted(checked) == ["mask_input", "point_coords", "point_labels"]
    checked.clear()
    predictor.predict_batch(boxes=[[1, 2, 30, 40], [5, 5, 9, 9]])
    assert checked == ["boxes"]
