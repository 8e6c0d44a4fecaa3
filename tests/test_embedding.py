"""ImageEmbedding: validation, .npz round trips, damaged files, and use with a predictor."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgesam._embedding
from edgesam import EdgeSam, ImageEmbedding, ImageNotSetError, InvalidInputError, SamPredictor
from edgesam._embedding import EMBEDDING_SHAPE
from edgesam._transforms import preprocess_image
from edgesam.errors import InvalidEmbeddingError
from tiny_models import expected_embedding

FINGERPRINT = "ab" * 32


def _array(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=EMBEDDING_SHAPE).astype(np.float32)


def _embedding(seed: int = 0, **overrides: object) -> ImageEmbedding:
    fields: dict[str, object] = {
        "array": _array(seed),
        "original_size": (1200, 1800),
        "input_size": (683, 1024),
        "model_name": "edge_sam_3x",
        "fingerprint": FINGERPRINT,
    }
    fields.update(overrides)
    return ImageEmbedding(**fields)  # type: ignore[arg-type]


def _write_npz(path: Path, array: np.ndarray, meta: object) -> Path:
    np.savez(path, embedding=array, meta=np.array(json.dumps(meta)))
    return path


def _good_meta() -> dict[str, object]:
    return {
        "format_version": 1,
        "original_size": [1200, 1800],
        "input_size": [683, 1024],
        "model_name": "edge_sam_3x",
        "fingerprint": FINGERPRINT,
    }


def _load_refused(path: Path, match: str | None = None, *, leaks: bool = False) -> str:
    """Load ``path``, expect InvalidEmbeddingError, return its message.

    ``leaks``: numpy leaks the file handle when a damaged .npz fails inside
    ``np.load`` (pinned by ``test_damaged_npz_is_closed``); the ResourceWarning this
    produces on collection is silenced here, so that the test checks only the error.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(InvalidEmbeddingError, match=match) as info:
            ImageEmbedding.load(path)
        message = str(info.value)
        assert isinstance(info.value, ValueError)
        if leaks:
            del info
            gc.collect()
    return message


# -- construction ------------------------------------------------------------------------------


def test_fields_and_shape() -> None:
    embedding = _embedding(original_size=[np.int64(1200), 1800.0], input_size=np.array([683, 1024]))
    assert embedding.original_size == (1200, 1800)
    assert embedding.input_size == (683, 1024)
    assert all(type(v) is int for v in (*embedding.original_size, *embedding.input_size))
    assert embedding.shape == (1, 256, 64, 64)
    assert embedding.model_name == "edge_sam_3x"
    assert embedding.fingerprint == FINGERPRINT


def test_is_frozen() -> None:
    embedding = _embedding()
    with pytest.raises(AttributeError):
        embedding.model_name = "other"  # type: ignore[misc]


def test_np_asarray_gives_the_array() -> None:
    embedding = _embedding()
    array = np.asarray(embedding)
    assert array.shape == (1, 256, 64, 64)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, embedding.array)
    as_double = np.asarray(embedding, dtype=np.float64)
    assert as_double.dtype == np.float64
    np.testing.assert_array_equal(as_double, embedding.array)


def test_np_array_copies() -> None:
    # np.array(...) (copy=True) must not hand out the embedding's own storage: writing to
    # the copy would silently change a frozen embedding (and a predictor's image state).
    embedding = _embedding()
    before = embedding.array.copy()
    copied = np.array(embedding)
    copied[...] = 0.0
    np.testing.assert_array_equal(embedding.array, before)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((1, 256, 32, 32), dtype=np.float32),
        np.zeros((256, 64, 64), dtype=np.float32),
        np.zeros((2, 256, 64, 64), dtype=np.float32),
        np.zeros(EMBEDDING_SHAPE, dtype=np.float64),
        np.zeros(EMBEDDING_SHAPE, dtype=np.float16),
        np.zeros(EMBEDDING_SHAPE, dtype=np.int32),
    ],
)
def test_wrong_shape_or_dtype(array: np.ndarray) -> None:
    with pytest.raises(InvalidEmbeddingError, match=r"float32 of shape \(1, 256, 64, 64\)") as info:
        _embedding(array=array)
    assert str(array.shape) in str(info.value)
    assert isinstance(info.value, InvalidInputError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad: float) -> None:
    array = _array()
    array[0, 17, 3, 60] = bad
    with pytest.raises(InvalidEmbeddingError, match="NaN or infinity"):
        _embedding(array=array)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("original_size", (0, 5), "original_size must be positive"),
        ("original_size", (5, -1), "original_size must be positive"),
        ("original_size", (5,), r"original_size must be \(height, width\)"),
        ("original_size", (5, 6, 7), r"original_size must be \(height, width\)"),
        ("original_size", "ab", r"original_size must be \(height, width\)"),
        ("original_size", None, r"original_size must be \(height, width\)"),
        ("original_size", (float("inf"), 5), r"original_size must be \(height, width\)"),
        ("original_size", (float("nan"), 5), r"original_size must be \(height, width\)"),
        ("input_size", (683, 1000), "does not belong to an image of original_size"),
        ("input_size", (1025, 1024), "does not belong to an image of original_size"),
        ("input_size", (0, 1024), "input_size must be positive"),
        ("fingerprint", None, "fingerprint must be a str"),
        ("model_name", 5, "model_name must be a str"),
    ],
)
def test_bad_sizes(field: str, value: object, match: str) -> None:
    with pytest.raises(InvalidEmbeddingError, match=match):
        _embedding(**{field: value})


# -- save / load --------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    embedding = _embedding(seed=3)
    path = embedding.save(tmp_path / "truck.npz")
    assert path == tmp_path / "truck.npz"
    loaded = ImageEmbedding.load(path)
    np.testing.assert_array_equal(loaded.array, embedding.array)
    assert loaded.array.dtype == np.float32
    assert loaded.original_size == (1200, 1800)
    assert loaded.input_size == (683, 1024)
    assert loaded.model_name == "edge_sam_3x"
    assert loaded.fingerprint == FINGERPRINT


def test_round_trip_with_str_path(tmp_path: Path) -> None:
    embedding = _embedding(original_size=(37, 53), input_size=(715, 1024), model_name="tiny")
    path = embedding.save(str(tmp_path / "tiny.npz"))
    loaded = ImageEmbedding.load(str(path))
    assert loaded.original_size == (37, 53)
    assert loaded.input_size == (715, 1024)
    assert loaded.model_name == "tiny"


@pytest.mark.parametrize(
    ("name", "written"),
    [("emb", "emb.npz"), ("emb.npz", "emb.npz"), ("emb.npy", "emb.npy.npz"), ("a.b", "a.b.npz")],
)
def test_npz_suffix_is_added(tmp_path: Path, name: str, written: str) -> None:
    path = _embedding().save(tmp_path / name)
    assert path == tmp_path / written
    assert path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [written]
    ImageEmbedding.load(path)


def test_save_leaves_no_temporary_files_and_overwrites(tmp_path: Path) -> None:
    first = _embedding(seed=1)
    second = _embedding(seed=2)
    first.save(tmp_path / "emb.npz")
    second.save(tmp_path / "emb.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["emb.npz"]
    np.testing.assert_array_equal(ImageEmbedding.load(tmp_path / "emb.npz").array, second.array)


def test_failed_save_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _embedding(seed=1)
    old.save(tmp_path / "emb.npz")

    def broken_savez(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(edgesam._embedding.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        _embedding(seed=2).save(tmp_path / "emb.npz")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["emb.npz"]
    np.testing.assert_array_equal(ImageEmbedding.load(tmp_path / "emb.npz").array, old.array)


def test_saved_file_has_ordinary_permissions(tmp_path: Path) -> None:
    # Embeddings are meant to move between processes; the file should be as readable as
    # any other file this process creates (mode 0o666 minus the umask), not 0o600.
    reference = tmp_path / "reference.bin"
    reference.write_bytes(b"")
    path = _embedding().save(tmp_path / "emb.npz")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_missing_file(tmp_path: Path) -> None:
    message = _load_refused(tmp_path / "nope.npz", "does not exist")
    assert "nope.npz" in message


@pytest.mark.parametrize("path", [None, 3, b"emb.npz"])
def test_load_and_save_need_a_path(path: object) -> None:
    with pytest.raises(InvalidInputError, match=r"path must be the path of an \.npz file") as info:
        ImageEmbedding.load(path)  # type: ignore[arg-type]
    assert type(path).__name__ in str(info.value)
    with pytest.raises(InvalidInputError, match=r"str or os\.PathLike"):
        _embedding().save(path)  # type: ignore[arg-type]


def test_truncated_file(tmp_path: Path) -> None:
    path = _embedding().save(tmp_path / "emb.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _load_refused(path, "not a readable edgesam embedding", leaks=True)


def test_file_truncated_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    path.write_bytes(b"")
    _load_refused(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    path.write_bytes(np.random.default_rng(0).bytes(10_000))
    _load_refused(path, "not a readable edgesam embedding")


def test_a_directory(tmp_path: Path) -> None:
    _load_refused(tmp_path)


def test_plain_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "emb.npy"
    np.save(path, _array())
    _load_refused(path)


def test_npz_without_meta(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    np.savez(path, embedding=_array())
    _load_refused(path, "not a readable edgesam embedding")


def test_npz_with_meta_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    np.savez(path, embedding=_array(), meta=np.array("{not json"))
    _load_refused(path, "not a readable edgesam embedding")


@pytest.mark.parametrize("meta", [[1, 2], "text", {"format_version": 2}, {}])
def test_npz_with_unknown_format(tmp_path: Path, meta: object) -> None:
    path = _write_npz(tmp_path / "emb.npz", _array(), meta)
    _load_refused(path, "is not an edgesam embedding of format")


@pytest.mark.parametrize("missing", ["original_size", "input_size", "model_name", "fingerprint"])
def test_npz_with_incomplete_meta(tmp_path: Path, missing: str) -> None:
    meta = _good_meta()
    del meta[missing]
    path = _write_npz(tmp_path / "emb.npz", _array(), meta)
    _load_refused(path)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_damaged_npz_is_closed(tmp_path: Path) -> None:
    # A truncated .npz makes np.load fail after it opened the file; load must not leave
    # the file open (numpy hands the handle to NpzFile, which raises before owning it).
    path = _embedding().save(tmp_path / "emb.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(InvalidEmbeddingError) as info:
            ImageEmbedding.load(path)
        still_open = [
            os.readlink(f"/proc/self/fd/{fd}")
            for fd in os.listdir("/proc/self/fd")
            if Path(f"/proc/self/fd/{fd}").is_symlink()
        ]
        del info
        gc.collect()
    assert str(path) not in still_open


def test_npz_with_wrong_array(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "emb.npz", np.zeros((1, 256, 64, 64)), _good_meta())  # float64
    with pytest.raises(InvalidEmbeddingError, match="float32"):
        ImageEmbedding.load(path)
    array = _array()
    array[0, 0, 0, 0] = np.nan
    path = _write_npz(tmp_path / "nan.npz", array, _good_meta())
    with pytest.raises(InvalidEmbeddingError, match="NaN"):
        ImageEmbedding.load(path)


def test_npz_with_pickled_object_is_not_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "emb.npz"
    np.savez(path, embedding=np.array([{"a": 1}], dtype=object), meta=np.array("{}"))
    _load_refused(path)


# -- with the tiny model -------------------------------------------------------------------------


def _image(height: int = 300, width: int = 500, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_predictor_embedding_carries_sizes_model_and_fingerprint(
    tiny_model: EdgeSam, tiny_model_files: dict[str, Path]
) -> None:
    predictor = SamPredictor(tiny_model)
    with pytest.raises(ImageNotSetError):
        predictor.get_image_embedding()
    image = _image()
    predictor.set_image(image)
    embedding = predictor.get_image_embedding()
    assert isinstance(embedding, ImageEmbedding)
    assert embedding.original_size == (300, 500)
    assert embedding.input_size == (614, 1024)  # 300 * 1024 / 500 = 614.4
    assert embedding.model_name == "tiny"  # the encoder's stem without "_encoder"
    sha256 = hashlib.sha256(tiny_model_files["encoder"].read_bytes()).hexdigest()
    assert embedding.fingerprint == sha256
    np.testing.assert_allclose(
        np.asarray(embedding), expected_embedding(preprocess_image(image)[0]), atol=1e-5
    )


def test_saved_embedding_predicts_like_the_original(tiny_model: EdgeSam, tmp_path: Path) -> None:
    original = SamPredictor(tiny_model)
    original.set_image(_image(240, 320, seed=4))
    path = original.get_image_embedding().save(tmp_path / "image")
    assert path.name == "image.npz"

    restored = SamPredictor(tiny_model)
    restored.set_image_embedding(ImageEmbedding.load(path))
    assert restored.is_image_set
    assert restored.original_size == (240, 320)
    assert restored.input_size == (768, 1024)
    prompts: list[dict[str, object]] = [
        {"point_coords": [[100, 80]], "point_labels": [1], "num_multimask_outputs": 4},
        {"box": [10, 20, 200, 150], "multimask_output": False},
        {"point_coords": [[50, 60], [200, 100]], "point_labels": [1, 0], "return_logits": True},
    ]
    for prompt in prompts:
        expected = original.predict(**prompt)  # type: ignore[arg-type]
        got = restored.predict(**prompt)  # type: ignore[arg-type]
        for want, have in zip(expected, got, strict=True):
            assert want.dtype == have.dtype
            np.testing.assert_array_equal(have, want)


def test_embedding_from_another_encoder_is_refused(
    tiny_model: EdgeSam, tiny_model_files: dict[str, Path], tmp_path: Path
) -> None:
    # The same network saved with a doc string: a different file, so another fingerprint.
    other_encoder = tmp_path / "other_encoder.onnx"
    model = onnx.load(str(tiny_model_files["encoder"]))
    model.doc_string = "a different build"
    onnx.save(model, str(other_encoder))
    other = EdgeSam.from_files(other_encoder, tiny_model_files["decoder"], providers=["cpu"])
    assert other.fingerprint != tiny_model.fingerprint

    source = SamPredictor(other)
    source.set_image(_image())
    embedding = source.get_image_embedding()
    target = SamPredictor(tiny_model)
    with pytest.raises(InvalidEmbeddingError, match="made by model 'other'") as info:
        target.set_image_embedding(embedding)
    assert "set_image" in str(info.value)
    assert not target.is_image_set


def test_embedding_with_a_foreign_fingerprint_is_refused(tiny_model: EdgeSam) -> None:
    foreign = _embedding(model_name="edge_sam_3x", fingerprint="0" * 64)
    predictor = SamPredictor(tiny_model)
    with pytest.raises(InvalidEmbeddingError, match="edge_sam_3x"):
        predictor.set_image_embedding(foreign)


def test_set_image_embedding_refuses_a_bare_array(tiny_model: EdgeSam) -> None:
    predictor = SamPredictor(tiny_model)
    with pytest.raises(InvalidEmbeddingError, match=r"edgesam\.ImageEmbedding"):
        predictor.set_image_embedding(_array())  # type: ignore[arg-type]
