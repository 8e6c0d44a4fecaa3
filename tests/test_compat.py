"""Code written for segment_anything and for the EdgeSAM authors' predictors runs unchanged.

Each test replays one call pattern (our own code making the same calls as
segment_anything's predictor and ONNX notebooks, and the authors' Gradio demo
with its torch and ONNX predictors), changing only how the predictor is built,
and checks the result against the plain numpy API. The tiny decoder reports
``[number of points, sum of labels, sum of x, mean embedding]`` as scores, so
equal scores mean the decoder saw the same prompts.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgesam import (
    EdgeSam,
    ImageEmbedding,
    ImageNotSetError,
    InvalidImageError,
    InvalidInputError,
    InvalidPromptError,
    SamPredictor,
)
from edgesam._compat import ResizeLongestSide, to_numpy
from edgesam._transforms import apply_coords
from edgesam.errors import InvalidEmbeddingError

HEIGHT, WIDTH = 300, 450


def random_image(height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def predictor(tiny_model: EdgeSam) -> SamPredictor:
    predictor = SamPredictor(tiny_model)
    predictor.set_image(random_image())
    return predictor


def assert_same_prediction(first: tuple, second: tuple) -> None:  # type: ignore[type-arg]
    for a, b in zip(first, second, strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


# -- segment_anything: predictor_example.ipynb -------------------------------------------


def test_sam_model_keyword_and_attributes(tiny_model: EdgeSam) -> None:
    predictor = SamPredictor(sam_model=tiny_model)
    assert predictor.model is tiny_model
    assert not predictor.is_image_set
    assert predictor.features is None
    assert predictor.original_size is None
    assert predictor.model.mask_threshold == 0.0
    assert predictor.model.image_format == "RGB"
    assert predictor.device == "cpu"
    assert isinstance(predictor.transform, ResizeLongestSide)
    assert predictor.transform.target_length == 1024
    with pytest.raises(InvalidInputError, match="both model and sam_model"):
        SamPredictor(tiny_model, sam_model=tiny_model)
    with pytest.raises(InvalidInputError, match=r"model must be an edgesam\.EdgeSam"):
        SamPredictor()


def test_notebook_point_then_mask_input(tiny_full_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_full_model)
    image = random_image()
    predictor.set_image(image)
    assert predictor.is_image_set
    assert predictor.original_size == image.shape[:2]
    input_point = np.array([[200, 150]])
    input_label = np.array([1])
    masks, scores, logits = predictor.predict(
        point_coords=input_point, point_labels=input_label, multimask_output=True
    )
    assert masks.shape == (3, HEIGHT, WIDTH)
    assert scores.shape == (3,)
    assert logits.shape == (3, 256, 256)
    mask_input = logits[np.argmax(scores), :, :]
    masks, _, _ = predictor.predict(
        point_coords=input_point,
        point_labels=input_label,
        mask_input=mask_input[None, :, :],
        multimask_output=False,
    )
    assert masks.shape == (1, HEIGHT, WIDTH)
    assert masks[0, 150, 200]


def test_notebook_box_and_box_with_point(predictor: SamPredictor) -> None:
    input_box = np.array([100, 60, 300, 250])
    masks, scores, _ = predictor.predict(
        point_coords=None, point_labels=None, box=input_box[None, :], multimask_output=False
    )
    assert masks.shape == (1, HEIGHT, WIDTH)
    assert_same_prediction(
        (masks, scores), predictor.predict(box=input_box, multimask_output=False)[:2]
    )
    masks, _, _ = predictor.predict(
        point_coords=np.array([[250, 200]]),
        point_labels=np.array([0]),
        box=input_box,
        multimask_output=False,
    )
    assert masks.shape == (1, HEIGHT, WIDTH)


def test_notebook_batched_boxes_through_predict_torch(predictor: SamPredictor) -> None:
    image = random_image()
    input_boxes = np.array([[20, 30, 200, 150], [250, 100, 440, 290], [5, 5, 60, 60]])
    transformed_boxes = predictor.transform.apply_boxes_torch(input_boxes, image.shape[:2])
    masks, iou, low_res = predictor.predict_torch(
        point_coords=None, point_labels=None, boxes=transformed_boxes, multimask_output=False
    )
    assert masks.shape == (3, 1, HEIGHT, WIDTH)
    assert iou.shape == (3, 1)
    assert low_res.shape == (3, 1, 256, 256)
    # The same boxes in pixels through the numpy API reach the decoder identically.
    assert_same_prediction(
        (masks, iou, low_res), predictor.predict_batch(boxes=input_boxes, multimask_output=False)
    )
    for mask in masks:  # the notebook's show_mask(mask.cpu().numpy()) is show_mask(mask)
        assert mask.shape == (1, HEIGHT, WIDTH)


def test_predict_torch_points_in_the_frame(predictor: SamPredictor) -> None:
    points = np.array([[[100.0, 50.0], [20.0, 280.0]], [[400.0, 10.0], [7.0, 7.0]]])
    labels = np.array([[1, 0], [1, 1]])
    frame_points = predictor.transform.apply_coords(points, (HEIGHT, WIDTH))
    got = predictor.predict_torch(frame_points, labels, num_multimask_outputs=4)
    assert_same_prediction(got, predictor.predict_batch(points, labels, num_multimask_outputs=4))
    # sum of x over the points the decoder saw: the frame coordinates, scaled by exactly 1
    np.testing.assert_allclose(got[1][:, 2], frame_points[..., 0].sum(axis=1), rtol=1e-6)
    masks, _, _ = predictor.predict_torch(frame_points, labels, return_logits=True)
    assert masks.dtype == np.float32
    assert masks.shape == (2, 3, HEIGHT, WIDTH)


def test_return_logits_against_mask_threshold(predictor: SamPredictor) -> None:
    point = np.array([[200, 150]])
    logits, _, _ = predictor.predict(point, np.array([1]), return_logits=True)
    masks, _, _ = predictor.predict(point, np.array([1]))
    np.testing.assert_array_equal(logits > predictor.model.mask_threshold, masks)


# -- segment_anything: onnx_model_example.ipynb -------------------------------------------


def test_onnx_notebook_embedding_and_coordinates(predictor: SamPredictor) -> None:
    image = random_image()
    image_embedding = predictor.get_image_embedding().cpu().numpy()
    assert image_embedding.shape == (1, 256, 64, 64)
    np.testing.assert_array_equal(image_embedding, predictor.features)
    input_point = np.array([[200, 150]])
    input_label = np.array([1])
    onnx_coord = np.concatenate([input_point, np.array([[0.0, 0.0]])], axis=0)[None, :, :]
    onnx_label = np.concatenate([input_label, np.array([-1])], axis=0)[None, :].astype(np.float32)
    onnx_coord = predictor.transform.apply_coords(onnx_coord, image.shape[:2]).astype(np.float32)
    scores, low_res = predictor.model.decode(image_embedding, onnx_coord, onnx_label)
    _, expected_scores, expected_low_res = predictor.predict(
        input_point, input_label, num_multimask_outputs=4
    )
    np.testing.assert_array_equal(scores[0], expected_scores)
    np.testing.assert_array_equal(low_res[0], expected_low_res)


def test_onnx_notebook_box_as_labelled_corners(predictor: SamPredictor) -> None:
    input_box = np.array([100, 60, 300, 250])
    input_point = np.array([[250, 200]])
    onnx_box_coords = input_box.reshape(2, 2)
    onnx_coord = np.concatenate([input_point, onnx_box_coords], axis=0)[None, :, :]
    onnx_label = np.concatenate([np.array([0]), np.array([2, 3])], axis=0)[None, :]
    got = predictor.predict(onnx_coord, onnx_label, num_multimask_outputs=4)
    expected = predictor.predict(input_point, [0], box=input_box, num_multimask_outputs=4)
    assert got[0].shape == (1, 4, HEIGHT, WIDTH)  # batched input, batched output
    assert_same_prediction(tuple(part[0] for part in got), expected)
    assert got[1][0, 0] == 3  # one point and two corners, no padding point


# -- ResizeLongestSide ----------------------------------------------------------------------


def test_transform_matches_the_predictors_own_scaling() -> None:
    transform = ResizeLongestSide(1024)
    coords = np.random.default_rng(1).uniform(0, 450, (5, 7, 2))
    got = transform.apply_coords(coords, (HEIGHT, WIDTH))
    expected = apply_coords(coords, (HEIGHT, WIDTH), transform.get_preprocess_shape(300, 450, 1024))
    np.testing.assert_array_equal(got, expected)
    # scaled in float64 and rounded once: within float32 rounding of the exact value
    np.testing.assert_allclose(got, coords * [1024 / 450, 683 / 300], rtol=1e-7)
    boxes = transform.apply_boxes(np.array([[0, 0, 450, 300], [10, 20, 30, 40]]), (300, 450))
    np.testing.assert_array_equal(boxes[0], [0, 0, 1024, 683])
    assert boxes.shape == (2, 4)
    assert transform.get_preprocess_shape(300, 450, 1024) == (683, 1024)


def test_apply_image_is_the_encoders_resize(predictor: SamPredictor) -> None:
    image = random_image()
    resized = predictor.transform.apply_image(image)
    assert resized.shape == (683, 1024, 3)
    assert resized.dtype == np.uint8
    expected = predictor.get_image_embedding().array.copy()
    predictor.reset_image()
    # segment_anything's set_image body: apply_image, HWC -> 1xCxHxW, set_torch_image
    returned = predictor.set_torch_image(resized.transpose(2, 0, 1)[None, :, :, :], image.shape[:2])
    np.testing.assert_array_equal(predictor.features, expected)
    assert returned is predictor.get_image_embedding()
    assert predictor.input_size == (683, 1024)
    assert predictor.original_size == (HEIGHT, WIDTH)


@pytest.mark.parametrize(
    ("image", "size", "match"),
    [
        (np.zeros((1, 3, 683, 1000)), (300, 450), "must have shape"),
        (np.zeros((3, 683, 1024)), (300, 450), "must have shape"),
        (np.full((1, 3, 683, 1024), np.nan), (300, 450), "NaN"),
        (np.zeros((1, 3, 683, 1024), dtype=object), (300, 450), "dtype"),
        (np.zeros((1, 3, 683, 1024)), (300,), "original_image_size"),
        (np.zeros((1, 3, 683, 1024)), (0, 450), "positive"),
    ],
)
def test_set_torch_image_refuses_bad_input(
    predictor: SamPredictor, image: np.ndarray, size: object, match: str
) -> None:
    with pytest.raises(InvalidImageError, match=match):
        predictor.set_torch_image(image, size)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t: t.apply_coords([[1, 2, 3]], (10, 10)), r"\(\.\.\., 2\)"),
        (lambda t: t.apply_boxes([1, 2, 3], (10, 10)), r"\(\.\.\., 4\)"),
        (lambda t: t.apply_coords([["a", "b"]], (10, 10)), "numeric"),
        (lambda t: t.apply_coords([[1, 2]], (10,)), "original_size"),
        (lambda t: t.apply_coords([[1, 2]], (0, 5)), "positive"),
        (lambda t: t.apply_image(np.zeros((4, 4))), "uint8 of shape"),
        (lambda t: ResizeLongestSide(0), "target_length must be an integer >= 1"),
        (lambda t: ResizeLongestSide(True), "target_length must be an integer >= 1"),
    ],
)
def test_transform_refuses_bad_input(call: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        call(ResizeLongestSide())  # type: ignore[operator]


# -- the EdgeSAM authors' Gradio demo ---------------------------------------------------------


def test_authors_demo_points_with_features(tiny_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_model)
    features = predictor.set_image(random_image())
    assert isinstance(features, ImageEmbedding)
    # what a notebook cell ending in set_image shows: one line, no array
    assert repr(features) == (
        "ImageEmbedding(model_name='tiny', original_size=(300, 450), input_size=(683, 1024))"
    )
    coord_list, label_list = [[200, 150], [50, 40]], [1, 0]
    masks, scores, _logits = predictor.predict(
        features=features,
        point_coords=np.array(coord_list),
        point_labels=np.array(label_list),
        num_multimask_outputs=4,
        use_stability_score=True,
    )
    assert masks.shape == (4, HEIGHT, WIDTH)
    annotations = np.expand_dims(masks[scores.argmax()], axis=0)
    assert annotations.shape == (1, HEIGHT, WIDTH)
    assert_same_prediction(
        (masks, scores),
        predictor.predict(
            coord_list, label_list, num_multimask_outputs=4, use_stability_score=True
        )[:2],
    )


def test_authors_demo_box_as_corners(predictor: SamPredictor) -> None:
    features = predictor.get_image_embedding()
    box = [[300, 250], [100, 60]]
    # the demo's convert_box orders the corners; then np.array(box) is (2, 2)
    box = [[min(box[0][0], box[1][0]), min(box[0][1], box[1][1])],
           [max(box[0][0], box[1][0]), max(box[0][1], box[1][1])]]  # fmt: skip
    masks, scores, _ = predictor.predict(
        features=features, box=np.array(box), num_multimask_outputs=1
    )
    assert masks.shape == (1, HEIGHT, WIDTH)
    assert_same_prediction(
        (masks, scores), predictor.predict(box=[100, 60, 300, 250], num_multimask_outputs=1)[:2]
    )


def test_authors_onnx_demo_points_and_box(predictor: SamPredictor) -> None:
    features = predictor.get_image_embedding()
    coord_np = np.array([[200, 150], [50, 40]])[None]
    label_np = np.array([1, 0])[None]
    masks, scores, _ = predictor.predict(
        features=features, point_coords=coord_np, point_labels=label_np
    )
    masks, scores = masks.squeeze(0), scores.squeeze(0)
    assert masks.shape == (3, HEIGHT, WIDTH)
    assert scores.shape == (3,)
    box_np = np.array([[100, 60], [300, 250]])
    point_coords = box_np.reshape(2, 2)[None]
    point_labels = np.array([2, 3])[None]
    masks, _, _ = predictor.predict(
        features=features, point_coords=point_coords, point_labels=point_labels
    )
    annotations = masks[:, 0, :, :]
    assert annotations.shape == (1, HEIGHT, WIDTH)
    np.testing.assert_array_equal(masks[0], predictor.predict(box=[100, 60, 300, 250])[0])


def test_features_of_an_earlier_image_decode_that_image(tiny_model: EdgeSam) -> None:
    # The demo keeps each session's features while other sessions set other images.
    predictor = SamPredictor(tiny_model)
    first = predictor.set_image(random_image(200, 300, seed=1))
    expected = predictor.predict([[100, 50]], [1])
    predictor.set_image(random_image(500, 400, seed=2))
    got = predictor.predict([[100, 50]], [1], features=first)
    assert_same_prediction(got, expected)
    # a raw array is taken as an embedding of the current image
    current = predictor.get_image_embedding()
    assert_same_prediction(
        predictor.predict([[100, 50]], [1], features=np.array(current)),
        predictor.predict([[100, 50]], [1]),
    )


def test_features_errors(tiny_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_model)
    with pytest.raises(ImageNotSetError, match="ImageEmbedding"):
        predictor.predict([[1, 1]], [1], features=np.zeros((1, 256, 64, 64), np.float32))
    predictor.set_image(random_image())
    with pytest.raises(InvalidEmbeddingError, match="shape"):
        predictor.predict([[1, 1]], [1], features=np.zeros((1, 256, 32, 32), np.float32))
    stranger = ImageEmbedding(
        array=np.zeros((1, 256, 64, 64), np.float32),
        original_size=(10, 10),
        input_size=(1024, 1024),
        model_name="other",
        fingerprint="0" * 64,
    )
    with pytest.raises(InvalidEmbeddingError, match="other"):
        predictor.predict([[1, 1]], [1], features=stranger)


# -- box corners and labels 2/3 -----------------------------------------------------------------


def test_box_corners_batched(predictor: SamPredictor) -> None:
    boxes = np.array([[10, 20, 100, 120], [50, 60, 70, 80]])
    assert_same_prediction(
        predictor.predict(box=boxes.reshape(2, 2, 2)), predictor.predict(box=boxes)
    )
    assert_same_prediction(
        predictor.predict(box=boxes[:1].reshape(1, 2, 2)), predictor.predict(box=boxes[0])
    )


@pytest.mark.parametrize(
    ("coords", "labels", "box", "match"),
    [
        ([[1, 2]], [2], None, "exactly one point labelled 2 and one labelled 3"),
        ([[1, 2], [3, 4], [5, 6]], [2, 3, 3], None, "exactly one"),
        ([[[1, 2], [3, 4]], [[1, 2], [3, 4]]], [[2, 3], [1, 0]], None, "exactly one"),
        ([[1, 2], [3, 4]], [2, 3], [0, 0, 5, 5], "got a box twice"),
        ([[30, 40], [10, 20]], [2, 3], None, "x1 >= x0"),
        ([[1, 2]], [4], None, "2 and 3 for a box"),
    ],
)
def test_corner_labels_refused(
    predictor: SamPredictor, coords: object, labels: object, box: object, match: str
) -> None:
    with pytest.raises(InvalidPromptError, match=match):
        predictor.predict(coords, labels, box=box)


def test_batched_corner_labels_with_points(predictor: SamPredictor) -> None:
    coords = [[[5, 5], [10, 20], [100, 120]], [[60, 70], [50, 60], [70, 80]]]
    labels = [[1, 2, 3], [0, 2, 3]]
    got = predictor.predict(coords, labels, num_multimask_outputs=4)
    expected = predictor.predict_batch(
        [[[5, 5]], [[60, 70]]],
        [[1], [0]],
        boxes=[[10, 20, 100, 120], [50, 60, 70, 80]],
        num_multimask_outputs=4,
    )
    assert_same_prediction(got, expected)


# -- errors are ValueError / RuntimeError where segment_anything asserts --------------------------


def test_errors_are_builtin_families(tiny_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_model)
    with pytest.raises(RuntimeError):
        predictor.predict([[1, 1]], [1])
    with pytest.raises(RuntimeError):
        predictor.get_image_embedding()
    predictor.set_image(random_image())
    with pytest.raises(ValueError, match="point_labels"):
        predictor.predict([[1, 1]], None)
    with pytest.raises(ValueError, match="image_format"):
        predictor.set_image(random_image(), image_format="RGBA")  # type: ignore[arg-type]


# -- torch tensors at the boundary (only when torch happens to be installed) ----------------


@pytest.mark.torch
def test_torch_tensors_are_accepted(predictor: SamPredictor) -> None:
    torch = pytest.importorskip("torch")
    image = random_image()
    input_boxes = torch.tensor([[20, 30, 200, 150], [250, 100, 440, 290]], device=predictor.device)
    transformed = predictor.transform.apply_boxes_torch(input_boxes, image.shape[:2])
    assert isinstance(transformed, np.ndarray)
    masks, _, _ = predictor.predict_torch(
        point_coords=None, point_labels=None, boxes=torch.as_tensor(transformed)
    )
    assert_same_prediction((masks,), (predictor.predict_batch(boxes=input_boxes.numpy())[0],))
    point = torch.tensor([[200.0, 150.0]], requires_grad=True)
    assert_same_prediction(
        predictor.predict(point, torch.tensor([1])), predictor.predict([[200, 150]], [1])
    )
    expected = predictor.get_image_embedding().array.copy()
    input_image = torch.as_tensor(predictor.transform.apply_image(image))
    input_image = input_image.permute(2, 0, 1).contiguous()[None, :, :, :]
    predictor.set_torch_image(input_image, image.shape[:2])
    np.testing.assert_array_equal(predictor.features, expected)
    assert isinstance(to_numpy(torch.zeros(2)), np.ndarray)
