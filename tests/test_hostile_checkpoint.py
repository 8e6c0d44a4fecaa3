"""Crafted ``.pth`` files: each is refused with a CheckpointError, in bounded time and memory.

Every file is parsed in a child process limited in time and address space
(``sandbox.run_limited``), so a crash, hang or memory bomb fails its test
rather than the session.
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sandbox import run_limited

PROTO = b"\x80\x02"


def _archive(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", b"little")
        for key, raw in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def _read(path: Path, *, keys: list[str] | None = None) -> str:
    return run_limited(
        f"""
        from edgesam._checkpoint import read_state_dict
        _report(lambda: read_state_dict({str(path)!r}, keys={keys!r}))
        """,
        seconds=60,
        memory_bytes=1024 * 1024 * 1024,
    )


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def _tensor(
    key: str, numel: int, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> bytes:
    def ints(values: tuple[int, ...]) -> bytes:
        return (
            pickle.MARK
            + b"".join(pickle.BININT + struct.pack("<i", v) for v in values)
            + pickle.TUPLE
        )

    pid = (
        pickle.MARK
        + _unicode("storage")
        + pickle.GLOBAL
        + b"torch\nFloatStorage\n"
        + _unicode(key)
        + _unicode("cpu")
        + pickle.BININT
        + struct.pack("<i", numel)
        + pickle.TUPLE
        + pickle.BINPERSID
    )
    return (
        pickle.GLOBAL
        + b"torch._utils\n_rebuild_tensor\n"
        + pickle.MARK
        + pid
        + pickle.BININT
        + struct.pack("<i", offset)
        + ints(size)
        + ints(stride)
        + pickle.TUPLE
        + pickle.REDUCE
    )


def _state(entries: dict[str, bytes]) -> bytes:
    items = b"".join(_unicode(k) + v for k, v in entries.items())
    return PROTO + pickle.EMPTY_DICT + pickle.MARK + items + pickle.SETITEMS + pickle.STOP


def test_a_valid_file_reads_in_the_sandbox(tmp_path: Path) -> None:
    # The control: the same machinery on a good file prints OK.
    data = np.arange(6, dtype="<f4").tobytes()
    path = _archive(
        tmp_path / "ok.pth", _state({"w": _tensor("0", 6, 0, (2, 3), (3, 1))}), {"0": data}
    )
    assert _read(path) == "OK"


def test_a_million_nested_tuples_are_refused_before_unpickling(tmp_path: Path) -> None:
    pickled = PROTO + pickle.BININT1 + b"\x01" + pickle.TUPLE1 * 1_000_000 + pickle.STOP
    result = _read(_archive(tmp_path / "deep.pth", pickled))
    assert result.startswith("RAISED CheckpointError"), result
    assert "nests more than" in result


def test_a_million_nested_marks_are_refused(tmp_path: Path) -> None:
    pickled = PROTO + pickle.MARK * 1_000_000 + pickle.STOP
    result = _read(_archive(tmp_path / "marks.pth", pickled))
    assert result.startswith("RAISED CheckpointError"), result


def test_a_shared_reference_dag_is_refused_in_bounded_time(tmp_path: Path) -> None:
    # Node i is a list holding node i-1 twice: 2**60 leaves when walked, 1 KB on disk.
    body = pickle.EMPTY_LIST + pickle.BINPUT + b"\x00"
    for node in range(1, 61):
        body += (
            pickle.EMPTY_LIST
            + pickle.MARK
            + pickle.BINGET
            + bytes([node - 1])
            + pickle.BINGET
            + bytes([node - 1])
            + pickle.APPENDS
            + pickle.BINPUT
            + bytes([node])
        )
    pickled = PROTO + pickle.EMPTY_DICT + _unicode("x") + body + pickle.SETITEM + pickle.STOP
    assert len(pickled) < 2048
    result = _read(_archive(tmp_path / "dag.pth", pickled))
    assert result.startswith("RAISED CheckpointError"), result
    assert "shared" in result


def test_a_duplicated_container_is_refused(tmp_path: Path) -> None:
    pickled = PROTO + pickle.EMPTY_LIST + pickle.DUP + pickle.APPEND + pickle.STOP
    result = _read(_archive(tmp_path / "dup.pth", pickled))
    assert result.startswith("RAISED CheckpointError"), result


def test_too_many_opcodes_are_refused(tmp_path: Path) -> None:
    pickled = PROTO + (pickle.NONE + pickle.POP) * 2_500_000 + pickle.NONE + pickle.STOP
    result = _read(_archive(tmp_path / "long.pth", pickled))
    assert result.startswith("RAISED CheckpointError"), result
    assert "opcodes" in result


def test_a_zero_stride_tensor_with_a_huge_shape_is_refused(tmp_path: Path) -> None:
    tensor = _tensor("0", 1, 0, (65536, 16384), (0, 0))
    path = _archive(tmp_path / "stride.pth", _state({"w": tensor}), {"0": bytes(4)})
    result = _read(path)
    assert result.startswith("RAISED CheckpointError"), result
    assert "zero stride" in result


def test_overlapping_strides_cannot_exceed_the_storage(tmp_path: Path) -> None:
    # Stride (1, 1) stays inside 2N-1 items but names N*N elements.
    tensor = _tensor("0", 2000, 0, (1000, 1000), (1, 1))
    path = _archive(tmp_path / "overlap.pth", _state({"w": tensor}), {"0": bytes(8000)})
    result = _read(path)
    assert result.startswith("RAISED CheckpointError"), result
    assert "more than its storage" in result


def test_a_storage_declared_larger_than_its_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    tensor = _tensor("0", 2**30, 0, (2**30,), (1,))
    path = _archive(tmp_path / "big.pth", _state({"w": tensor}), {"0": bytes(16)})
    result = _read(path)
    assert result.startswith("RAISED CheckpointError"), result
    assert "expected" in result


def test_only_the_needed_bytes_of_a_deflated_storage_are_inflated(tmp_path: Path) -> None:
    # 600 MiB of zeros compress to under 1 MiB; the tensor needs 16 bytes of them.
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", _state({"w": _tensor("0", 4, 0, (4,), (1,))}))
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            chunk = bytes(16 * 1024 * 1024)
            for _ in range(600 // 16):
                member.write(chunk)
    result = run_limited(
        f"""
        from edgesam._checkpoint import read_state_dict
        _report(lambda: print(read_state_dict({str(path)!r})["w"].tolist()))
        """,
        memory_bytes=512 * 1024 * 1024,
    )
    assert result == "OK"


def test_a_zip_bombed_data_pkl_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    path = tmp_path / "pklbomb.pth"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("archive/data.pkl", "w", force_zip64=True) as member,
    ):
        member.write(PROTO)
        chunk = (pickle.NONE + pickle.POP) * (8 * 1024 * 1024)
        for _ in range(5):
            member.write(chunk)
        member.write(pickle.NONE + pickle.STOP)
    result = _read(path)
    assert result.startswith("RAISED CheckpointError"), result
    assert "more than the" in result


def _patch_all_headers(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            if flag is not None:
                old = struct.unpack_from("<H", data, at + flag_at)[0]
                struct.pack_into("<H", data, at + flag_at, old | flag)
            if method is not None:
                struct.pack_into("<H", data, at + method_at, method)
            start = at + 4
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("patch", "expected"),
    [({"flag": 0x1}, "encrypted"), ({"method": 9}, "compression method 9")],
    ids=["encrypted", "deflate64"],
)
def test_encrypted_and_unsupported_members_are_checkpoint_errors(
    tmp_path: Path, patch: dict[str, int], expected: str
) -> None:
    data = np.arange(4, dtype="<f4").tobytes()
    path = _archive(
        tmp_path / "odd.pth", _state({"w": _tensor("0", 4, 0, (4,), (1,))}), {"0": data}
    )
    _patch_all_headers(path, **patch)
    result = _read(path)
    assert result.startswith("RAISED CheckpointError"), result
    assert expected in result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pth"
    os.mkfifo(fifo)
    result = run_limited(
        f"""
        from edgesam._checkpoint import read_state_dict
        _report(lambda: read_state_dict({str(fifo)!r}))
        """,
        seconds=30,
    )
    assert result.startswith("RAISED CheckpointError"), result
    assert "FIFO" in result


def test_a_huge_integer_in_the_pickle_is_reported_briefly(tmp_path: Path) -> None:
    huge = (10**20000).to_bytes(8400, "little")
    offset = pickle.LONG4 + struct.pack("<i", len(huge)) + huge
    pid = _tensor("0", 4, 0, (4,), (1,))
    # Replace the offset BININT of the tensor with the huge integer.
    tensor = pid.replace(
        pickle.BININT + struct.pack("<i", 0) + pickle.MARK, offset + pickle.MARK, 1
    )
    path = _archive(tmp_path / "int.pth", _state({"w": tensor}), {"0": bytes(16)})
    result = _read(path)
    assert result.startswith("RAISED CheckpointError"), result
    assert "bit integer" in result
    assert len(result) < 600


def test_a_pickle_the_walk_cannot_follow_is_refused_not_skipped(tmp_path: Path) -> None:
    # POP on an empty frame pops the MARK in the unpickler; a walk that stopped there
    # would leave the deep nesting after it unchecked.
    pickled = (
        PROTO
        + pickle.MARK
        + pickle.POP
        + pickle.BININT1
        + b"\x01"
        + pickle.TUPLE1 * 1_000_000
        + pickle.STOP
    )
    result = _read(_archive(tmp_path / "popmark.pth", pickled))
    assert result.startswith("RAISED CheckpointError"), result
