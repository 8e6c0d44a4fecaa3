"""The torch-free ``.pth`` reader: exact tensors, and no code from the file ever runs.

Most tests build checkpoints by hand, writing the pickle opcodes of ``data.pkl``
directly, so the reader is tested without torch installed. The tests marked
``torch`` compare with ``torch.load`` itself, on files written by ``torch.save``.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from edgesam._checkpoint import read_state_dict
from edgesam.errors import CheckpointError, UnsafeCheckpointError

# -- a tiny pickle writer: the opcodes torch.save emits, with nothing imported ---------------


@dataclass(frozen=True)
class Global:
    """A global reference (``GLOBAL module name``), never resolved here."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """``func(*args)`` as the REDUCE opcode."""

    func: object
    args: tuple[object, ...]


@dataclass(frozen=True)
class Storage:
    """A persistent id ``('storage', torch.<kind>, key, location, numel)``."""

    kind: str
    key: str
    numel: int
    location: str = "cpu"


@dataclass(frozen=True)
class Build:
    """``obj`` followed by ``state`` and the BUILD opcode (``__setstate__``)."""

    obj: object
    state: object


@dataclass(frozen=True)
class Raw:
    """Opcodes spliced in verbatim (from ``pickle.dumps``, header and STOP removed)."""

    opcodes: bytes

    @classmethod
    def of(cls, obj: object) -> Raw:
        return cls(pickle.dumps(obj, protocol=2)[2:-1])


def _emit(obj: object) -> bytes:
    if isinstance(obj, Raw):
        return obj.opcodes
    if isinstance(obj, Global):
        return pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode()
    if isinstance(obj, Call):
        return _emit(obj.func) + _emit(obj.args) + pickle.REDUCE
    if isinstance(obj, Storage):
        pid = ("storage", Global("torch", obj.kind), obj.key, obj.location, obj.numel)
        return _emit(pid) + pickle.BINPERSID
    if isinstance(obj, Build):
        return _emit(obj.obj) + _emit(obj.state) + pickle.BUILD
    if obj is None:
        return pickle.NONE
    if isinstance(obj, bool):
        return pickle.NEWTRUE if obj else pickle.NEWFALSE
    if isinstance(obj, int):
        if -(2**31) <= obj < 2**31:
            return pickle.BININT + struct.pack("<i", obj)
        encoded = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
        return pickle.LONG1 + bytes([len(encoded)]) + encoded
    if isinstance(obj, float):
        return pickle.BINFLOAT + struct.pack(">d", obj)
    if isinstance(obj, str):
        encoded = obj.encode()
        return pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded
    if isinstance(obj, tuple):
        return pickle.MARK + b"".join(_emit(item) for item in obj) + pickle.TUPLE
    if isinstance(obj, list):
        return pickle.EMPTY_LIST + pickle.MARK + b"".join(map(_emit, obj)) + pickle.APPENDS
    if isinstance(obj, dict):
        items = b"".join(_emit(key) + _emit(value) for key, value in obj.items())
        return pickle.EMPTY_DICT + pickle.MARK + items + pickle.SETITEMS
    raise TypeError(f"cannot emit {obj!r}")


def dumps(obj: object) -> bytes:
    """``obj`` as a protocol-2 pickle, the protocol torch.save uses."""
    return pickle.PROTO + b"\x02" + _emit(obj) + pickle.STOP


def ordered_dict(entries: dict[str, object]) -> Build:
    """What a ``state_dict()`` pickles to: OrderedDict(), its items, then ``_metadata`` state."""
    empty = _emit(Call(Global("collections", "OrderedDict"), ()))
    items = b"".join(_emit(key) + _emit(value) for key, value in entries.items())
    return Build(Raw(empty + pickle.MARK + items + pickle.SETITEMS), {"_metadata": {"": {"v": 1}}})


def tensor(storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> Call:
    """torch's pickle of a tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""
    hooks = Call(Global("collections", "OrderedDict"), ())
    return Call(
        Global("torch._utils", "_rebuild_tensor_v2"), (storage, offset, size, stride, False, hooks)
    )


def write_archive(
    path: Path,
    root: object,
    storages: Mapping[str, bytes],
    *,
    prefix: str = "archive",
    byteorder: bytes | None = b"little",
) -> Path:
    """A zip laid out like torch.save's: ``<prefix>/data.pkl``, ``data/<key>``, ..."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", root if isinstance(root, bytes) else dumps(root))
        if byteorder is not None:
            archive.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in storages.items():
            archive.writestr(f"{prefix}/data/{key}", raw)
        archive.writestr(f"{prefix}/version", b"3\n")
    return path


def strided(
    base: NDArray[Any], offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> NDArray[Any]:
    """The tensor ``(offset, size, stride)`` over ``base``, gathered index by index."""
    out = np.empty(size, dtype=base.dtype)
    for index in np.ndindex(*size):
        out[index] = base[offset + sum(i * s for i, s in zip(index, stride, strict=True))]
    return out


BASE = np.arange(24, dtype="<f4") * np.float32(0.5) - np.float32(3.0)


@pytest.fixture
def simple(tmp_path: Path) -> Path:
    """Two float32 tensors on one storage and an int64 vector on another."""
    f32 = Storage("FloatStorage", "0", 24)
    i64 = Storage("LongStorage", "1", 3)
    root = {
        "a.weight": tensor(f32, 0, (4, 6), (6, 1)),
        "a.bias": tensor(f32, 2, (3,), (1,)),
        "steps": tensor(i64, 0, (3,), (1,)),
    }
    storages = {"0": BASE.tobytes(), "1": np.array([7, -1, 2**40], dtype="<i8").tobytes()}
    return write_archive(tmp_path / "simple.pth", root, storages)


# -- reading, without torch -----------------------------------------------------------------


def test_reads_tensors_with_their_values_and_dtypes(simple: Path) -> None:
    state = read_state_dict(simple)
    assert list(state) == ["a.weight", "a.bias", "steps"]
    np.testing.assert_array_equal(state["a.weight"], BASE.reshape(4, 6))
    np.testing.assert_array_equal(state["a.bias"], BASE[2:5])
    np.testing.assert_array_equal(state["steps"], [7, -1, 2**40])
    assert state["a.weight"].dtype == np.float32
    assert state["steps"].dtype == np.int64


def test_arrays_are_independent_writable_copies(simple: Path) -> None:
    state = read_state_dict(simple)
    for array in state.values():
        assert array.flags.c_contiguous
        assert array.flags.writeable
    state["a.weight"][0, 2] = 100.0  # shares a storage with a.bias in the file
    assert state["a.bias"][0] == BASE[2]


@pytest.mark.parametrize(
    ("offset", "size", "stride"),
    [
        (0, (6, 4), (1, 6)),  # a transposed 4x6
        (7, (3, 4), (6, 1)),  # a slice [1:, 1:5] with a storage offset
        (1, (2, 3), (12, 2)),  # steps in both axes
        (2, (2, 2, 3), (1, 8, 2)),  # a permuted 3-d view
        (9, (), ()),  # a 0-d scalar
        (4, (0, 3), (3, 1)),  # empty
    ],
)
def test_views_follow_offset_size_and_stride(
    tmp_path: Path, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    storage = Storage("FloatStorage", "0", 24)
    path = write_archive(
        tmp_path / "views.pth", {"v": tensor(storage, offset, size, stride)}, {"0": BASE.tobytes()}
    )
    array = read_state_dict(path)["v"]
    assert array.shape == size
    assert array.flags.c_contiguous
    np.testing.assert_array_equal(array, strided(BASE, offset, size, stride))


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("FloatStorage", np.array([1.5, -2.25, 3e38], dtype=np.float32)),
        ("HalfStorage", np.array([1.5, -2.25, 65504.0], dtype=np.float16)),
        ("DoubleStorage", np.array([1.5, -2.25, 1e300], dtype=np.float64)),
        ("LongStorage", np.array([1, -2, 2**62], dtype=np.int64)),
        ("IntStorage", np.array([1, -2, 2**30], dtype=np.int32)),
        ("ShortStorage", np.array([1, -2, 2**14], dtype=np.int16)),
        ("CharStorage", np.array([1, -2, 127], dtype=np.int8)),
        ("ByteStorage", np.array([1, 2, 255], dtype=np.uint8)),
        ("BoolStorage", np.array([True, False, True])),
    ],
)
@pytest.mark.parametrize("order", ["little", "big"])
def test_dtypes_in_both_byte_orders(
    tmp_path: Path, kind: str, values: NDArray[Any], order: str
) -> None:
    raw = values.astype(values.dtype.newbyteorder("<" if order == "little" else ">")).tobytes()
    path = write_archive(
        tmp_path / "dtypes.pth",
        {"x": tensor(Storage(kind, "0", 3), 0, (3,), (1,))},
        {"0": raw},
        byteorder=order.encode(),
    )
    array = read_state_dict(path)["x"]
    assert array.dtype == values.dtype
    assert array.dtype.isnative
    np.testing.assert_array_equal(array, values)


def test_bfloat16_is_widened_exactly_to_float32(tmp_path: Path) -> None:
    # bfloat16 bit patterns: the top 16 bits of these float32 values (exactly representable)
    values = np.array([1.0, -2.5, 0.15625, -1.5 * 2.0**100, -0.0], dtype=np.float32)
    top = (values.view(np.uint32) >> 16).astype("<u2")
    path = write_archive(
        tmp_path / "bf16.pth",
        {"x": tensor(Storage("BFloat16Storage", "0", 5), 0, (5,), (1,))},
        {"0": top.tobytes()},
    )
    array = read_state_dict(path)["x"]
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array.view(np.uint32), values.view(np.uint32))


def test_missing_byteorder_record_means_little_endian(tmp_path: Path) -> None:
    path = write_archive(
        tmp_path / "old.pth",
        {"x": tensor(Storage("IntStorage", "0", 2), 0, (2,), (1,))},
        {"0": np.array([1, 258], dtype="<i4").tobytes()},
        byteorder=None,
    )
    np.testing.assert_array_equal(read_state_dict(path)["x"], [1, 258])


def test_state_dict_pickled_as_ordered_dict_with_metadata(tmp_path: Path) -> None:
    storage = Storage("FloatStorage", "0", 24)
    root = ordered_dict({"w": tensor(storage, 0, (2, 3), (3, 1))})
    path = write_archive(tmp_path / "od.pth", root, {"0": BASE.tobytes()})
    np.testing.assert_array_equal(read_state_dict(path)["w"], BASE[:6].reshape(2, 3))


def test_parameters_are_read_as_their_tensors(tmp_path: Path) -> None:
    storage = Storage("FloatStorage", "0", 24)
    hooks = Call(Global("collections", "OrderedDict"), ())
    parameter = Call(
        Global("torch._utils", "_rebuild_parameter"),
        (tensor(storage, 3, (2,), (1,)), True, hooks),
    )
    path = write_archive(tmp_path / "param.pth", {"p": parameter}, {"0": BASE.tobytes()})
    np.testing.assert_array_equal(read_state_dict(path)["p"], BASE[3:5])


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_state_dict_wrapped_in_a_training_checkpoint(tmp_path: Path, wrapper: str) -> None:
    storage = Storage("FloatStorage", "0", 24)
    root = {
        "epoch": 12,
        "optimizer": {"lr": 0.5, "betas": (0.9, 0.99)},
        wrapper: {"w": tensor(storage, 0, (4,), (1,))},
    }
    path = write_archive(tmp_path / "wrapped.pth", root, {"0": BASE.tobytes()})
    state = read_state_dict(path)
    assert list(state) == ["w"]
    np.testing.assert_array_equal(state["w"], BASE[:4])


def test_no_state_dict_found(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "odd.pth", {"epoch": 3, "weights": [1, 2]}, {})
    with pytest.raises(
        CheckpointError, match=r"holds a dict with keys 'epoch', 'weights', not a state dict"
    ):
        read_state_dict(path)


def test_only_requested_keys_are_read(tmp_path: Path) -> None:
    # The archive lacks the bytes of "big": asking only for "small" never touches them.
    root = {
        "small": tensor(Storage("FloatStorage", "0", 24), 1, (2,), (1,)),
        "big": tensor(Storage("FloatStorage", "1", 1000), 0, (1000,), (1,)),
    }
    path = write_archive(tmp_path / "partial.pth", root, {"0": BASE.tobytes()})
    state = read_state_dict(path, keys=["small"])
    assert list(state) == ["small"]
    np.testing.assert_array_equal(state["small"], BASE[1:3])
    with pytest.raises(CheckpointError, match=r"incomplete: it lacks archive/data/1"):
        read_state_dict(path)


def test_missing_keys_are_all_named(simple: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        read_state_dict(simple, keys=["a.weight", "mask.0.weight", "mask.0.bias"])
    message = str(caught.value)
    assert "lacks 2 of the 3 tensors" in message
    assert "mask.0.weight, mask.0.bias" in message
    assert str(simple) in message


def test_keys_as_a_single_string_is_a_type_error(simple: Path) -> None:
    with pytest.raises(TypeError, match="not the string"):
        read_state_dict(simple, keys="a.weight")


# -- damaged and foreign files ----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"not found: .*nothing\.pth is not a file"):
        read_state_dict(tmp_path / "nothing.pth")


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", bytes(range(256)) * 4])
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"junk\.pth is not a PyTorch zip checkpoint"):
        read_state_dict(path)


def test_legacy_pickle_format_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    with pytest.raises(CheckpointError, match=r"legacy .*re-save"):
        read_state_dict(path)


def test_truncated_zip(simple: Path, tmp_path: Path) -> None:
    data = simple.read_bytes()
    for keep in (len(data) // 2, len(data) - 10):
        cut = tmp_path / f"cut{keep}.pth"
        cut.write_bytes(data[:keep])
        with pytest.raises(CheckpointError, match=r"download it again"):
            read_state_dict(cut)


def test_corrupted_storage_bytes_fail_the_crc(tmp_path: Path) -> None:
    marker = np.full(16, 1234.5, dtype="<f4")
    path = write_archive(
        tmp_path / "bitflip.pth",
        {"x": tensor(Storage("FloatStorage", "0", 16), 0, (16,), (1,))},
        {"0": marker.tobytes()},
    )
    data = bytearray(path.read_bytes())
    at = data.index(marker.tobytes())
    data[at + 5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"damaged: reading archive/data/0"):
        read_state_dict(path)


def test_zip_without_data_pkl(tmp_path: Path) -> None:
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/readme.txt", "hi")
    with pytest.raises(CheckpointError, match=r"no data\.pkl"):
        read_state_dict(path)


def test_storage_shorter_than_declared(tmp_path: Path) -> None:
    path = write_archive(
        tmp_path / "short.pth",
        {"x": tensor(Storage("FloatStorage", "0", 24), 0, (24,), (1,))},
        {"0": BASE[:20].tobytes()},
    )
    with pytest.raises(CheckpointError, match=r"has 80 bytes, 96 expected"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("offset", "size", "stride"),
    [(0, (25,), (1,)), (20, (2, 3), (3, 1)), (0, (5, 5), (5, 1)), (23, (2,), (1,))],
)
def test_views_past_the_storage_are_refused(
    tmp_path: Path, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    path = write_archive(
        tmp_path / "oob.pth",
        {"x": tensor(Storage("FloatStorage", "0", 24), offset, size, stride)},
        {"0": BASE.tobytes()},
    )
    with pytest.raises(CheckpointError, match=r"reaches past its storage of 24 items"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "bad",
    [
        ("storage", Global("torch", "FloatStorage"), "0", "cpu"),  # 4 fields
        ("module", Global("torch", "FloatStorage"), "0", "cpu", 24),
        ("storage", "FloatStorage", "0", "cpu", 24),  # a string, not the class
        ("storage", Global("torch", "FloatStorage"), 0, "cpu", 24),  # key not a str
        ("storage", Global("torch", "FloatStorage"), "0", "cpu", -1),
    ],
)
def test_malformed_persistent_ids(tmp_path: Path, bad: tuple[object, ...]) -> None:
    storage = Raw(_emit(bad) + pickle.BINPERSID)
    call = Call(Global("torch._utils", "_rebuild_tensor_v2"), (storage, 0, (2,), (1,), False, None))
    path = write_archive(tmp_path / "pid.pth", {"x": call}, {"0": BASE.tobytes()})
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_state_dict(path)


def test_a_pickle_cannot_rewrite_a_validated_tensor(tmp_path: Path) -> None:
    # BUILD would set the offset far past the storage after the bounds check.
    valid = tensor(Storage("FloatStorage", "0", 24), 0, (4,), (1,))
    tampered = Build(valid, (None, {"offset": 10**9}))
    path = write_archive(tmp_path / "tamper.pth", {"x": tampered}, {"0": BASE.tobytes()})
    with pytest.raises(CheckpointError, match="tries to modify a Tensor"):
        read_state_dict(path)


def test_garbage_pickle(tmp_path: Path) -> None:
    path = write_archive(tmp_path / "garbage.pth", b"\x80\x02}q\x00(X\xff\xff", {})
    with pytest.raises(CheckpointError, match=r"data\.pkl cannot be decoded"):
        read_state_dict(path)


# -- pickled code is refused, and never runs --------------------------------------------------


class _System:
    """Unpickles to ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


class _Touch:
    """Unpickles to ``pathlib.Path(path).touch()`` (no shell needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def _poisoned(tmp_path: Path, payload: object, name: str = "evil.pth") -> Path:
    """A checkpoint with one genuine tensor, then the payload under another key."""
    root = {
        "w": tensor(Storage("FloatStorage", "0", 24), 0, (4,), (1,)),
        "payload": Raw.of(payload),
    }
    return write_archive(tmp_path / name, root, {"0": BASE.tobytes()})


def test_os_system_is_refused_without_running(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = _poisoned(tmp_path, _System(f"touch {sentinel}"))
    with pytest.raises(UnsafeCheckpointError) as caught:
        read_state_dict(path)
    message = str(caught.value)
    assert f"{os.system.__module__}.system" in message  # posix.system on Linux
    assert "refused" in message
    assert str(path) in message
    assert not sentinel.exists()


def test_payload_is_live_but_never_runs_here(tmp_path: Path) -> None:
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Touch(control), protocol=2))  # the payload does work
    assert control.exists()

    sentinel = tmp_path / "pwned"
    path = _poisoned(tmp_path, _Touch(sentinel))
    with pytest.raises(UnsafeCheckpointError, match=r"refused to load .*evil\.pth"):
        read_state_dict(path)
    with pytest.raises(UnsafeCheckpointError):
        read_state_dict(path, keys=["w"])  # asking for safe keys only does not help
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "name",
    [
        Global("builtins", "eval"),
        Global("builtins", "exec"),
        Global("builtins", "getattr"),
        Global("subprocess", "check_output"),
        Global("numpy.core.multiarray", "_reconstruct"),
        Global("torch", "load"),
        Global("torch.serialization", "_get_restore_location"),
        Global("collections", "defaultdict"),
    ],
)
def test_globals_outside_the_allowlist_are_refused(tmp_path: Path, name: Global) -> None:
    root = {"x": Call(name, ("print('pwned')",))}
    path = write_archive(tmp_path / "global.pth", root, {})
    with pytest.raises(UnsafeCheckpointError, match=rf"asks for {name.module}\.{name.name},"):
        read_state_dict(path)


def test_unsupported_tensor_kinds_are_refused_with_an_explanation(tmp_path: Path) -> None:
    root = {"x": tensor(Storage("ComplexFloatStorage", "0", 2), 0, (2,), (1,))}
    path = write_archive(tmp_path / "complex.pth", root, {"0": bytes(16)})
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.ComplexFloatStorage, a kind of"):
        read_state_dict(path)


def test_code_in_the_storage_type_slot_is_refused(tmp_path: Path) -> None:
    bad_pid = ("storage", Call(Global("os", "system"), ("true",)), "0", "cpu", 24)
    storage = Raw(_emit(bad_pid) + pickle.BINPERSID)
    call = Call(Global("torch._utils", "_rebuild_tensor_v2"), (storage, 0, (2,), (1,), False, None))
    path = write_archive(tmp_path / "slot.pth", {"x": call}, {"0": BASE.tobytes()})
    with pytest.raises(UnsafeCheckpointError, match=r"asks for os\.system"):
        read_state_dict(path)


# -- against torch itself ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


@pytest.mark.torch
@pytest.mark.reference
def test_reference_checkpoint_matches_torch_load(torch: Any, reference_dir: Path) -> None:
    path = reference_dir / "edge_sam_random.pth"
    expected = torch.load(path, map_location="cpu", weights_only=True)
    state = read_state_dict(path)
    assert list(state) == list(expected)
    assert len(state) == 821
    for key, value in expected.items():
        array = state[key]
        assert array.dtype == value.numpy().dtype, key
        assert array.shape == tuple(value.shape), key
        np.testing.assert_array_equal(array, value.numpy(), err_msg=key)


@pytest.mark.torch
@pytest.mark.reference
def test_reference_subset_matches_torch_load(torch: Any, reference_dir: Path) -> None:
    path = reference_dir / "edge_sam_random.pth"
    expected = torch.load(path, map_location="cpu", weights_only=True)
    keys = ["prompt_encoder.no_mask_embed.weight", "mask_decoder.iou_token.weight"]
    state = read_state_dict(path, keys=keys)
    assert list(state) == keys
    for key in keys:
        np.testing.assert_array_equal(state[key], expected[key].numpy())


@pytest.mark.torch
def test_torch_save_files_match_torch_load(torch: Any, tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = torch.randn(4, 6)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 2), torch.nn.BatchNorm2d(4))
    tensors = {
        "float32": base,
        "float16": base.half(),
        "bfloat16": base.bfloat16(),
        "float64": base.double(),
        "int64": torch.arange(-3, 9).reshape(3, 4),
        "int32": torch.arange(5, dtype=torch.int32),
        "int16": torch.arange(5, dtype=torch.int16) - 2,
        "int8": torch.arange(5, dtype=torch.int8) - 2,
        "uint8": torch.arange(250, 255, dtype=torch.uint8),
        "bool": base > 0,
        "transposed": base.t(),
        "sliced": base[1:, 2:],  # storage offset
        "stepped": base[::2, 1::2],
        "permuted": torch.randn(2, 3, 4).permute(2, 0, 1),
        "shared_a": base[0],  # same storage as "float32", other offsets
        "shared_b": base[3, 1:4],
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "parameter": torch.nn.Parameter(torch.randn(3)),
        **{f"module.{k}": v for k, v in module.state_dict().items()},
    }
    path = tmp_path / "many.pth"
    torch.save(tensors, path)
    expected = torch.load(path, weights_only=True)
    state = read_state_dict(path)
    assert list(state) == list(expected)
    for key, value in expected.items():
        value = value.detach()
        reference = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
        array = state[key]
        assert array.dtype == reference.dtype, key
        assert array.shape == reference.shape, key
        assert array.flags.c_contiguous, key
        np.testing.assert_array_equal(array, reference, err_msg=key)


@pytest.mark.torch
@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_torch_save_of_a_wrapped_module_state(torch: Any, tmp_path: Path, wrapper: str) -> None:
    module = torch.nn.Linear(3, 2)
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: module.state_dict(), "epoch": 4, "best": 0.5}, path)
    state = read_state_dict(path)
    assert list(state) == ["weight", "bias"]
    np.testing.assert_array_equal(state["weight"], module.weight.detach().numpy())


@pytest.mark.torch
def test_hand_built_archives_are_what_torch_reads(torch: Any, simple: Path) -> None:
    """The writer above produces real torch checkpoints: torch.load agrees with the reader."""
    expected = torch.load(simple, weights_only=True)
    state = read_state_dict(simple)
    assert list(state) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value.numpy())


@pytest.mark.torch
def test_legacy_torch_format_is_explained(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy"):
        read_state_dict(path)


@pytest.mark.torch
def test_torch_saved_payload_is_refused_without_running(torch: Any, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "payload": _System(f"touch {sentinel}")}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"system"):
        read_state_dict(path)
    assert not sentinel.exists()


@pytest.mark.torch
def test_unsupported_torch_dtypes_are_refused(torch: Any, tmp_path: Path) -> None:
    path = tmp_path / "complex.pth"
    torch.save({"z": torch.zeros(2, dtype=torch.complex64)}, path)
    with pytest.raises(UnsafeCheckpointError, match="does not support"):
        read_state_dict(path)
