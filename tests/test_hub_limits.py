"""Downloads: an overall deadline (EDGESAM_DOWNLOAD_TIMEOUT) and disk errors named as such.

Against the fake Hub on 127.0.0.1 (tests/fakehub.py); nothing leaves the machine.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

import huggingface_hub.file_download
import pytest

import fakehub
from edgesam._config import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    ENV_DOWNLOAD_TIMEOUT,
    download_timeout_from_env,
)
from edgesam._hub import fetch_file
from edgesam._registry import FileSpec, ModelSpec
from edgesam.errors import DownloadError, InvalidInputError, WeightsError
from fakehub import FakeHub, sha256

fake_hub = fakehub.fake_hub
hf_sandbox = fakehub.hf_sandbox
no_retry_sleep = fakehub.no_retry_sleep

REPO = "chongzhou/EdgeSAM"
BIG = bytes(range(256)) * 128  # 32 KiB: 32 pieces when trickled
SMALL = b"small file\n" * 10


def _pin(path: str, content: bytes) -> FileSpec:
    return FileSpec(path, len(content), sha256(content))


SPEC = ModelSpec(
    name="edge_sam_limits",
    encoder=_pin("weights/limits_encoder.onnx", BIG),
    decoder=_pin("weights/limits_decoder.onnx", SMALL),
    checkpoint=_pin("weights/limits.pth", SMALL),
)


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    fake_hub.add(REPO, SPEC.encoder.path, BIG, repo_type="space")
    fake_hub.add(REPO, SPEC.decoder.path, SMALL, repo_type="space")
    return fake_hub


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_DOWNLOAD_TIMEOUT),
        ("", DEFAULT_DOWNLOAD_TIMEOUT),
        ("90", 90.0),
        (" 2.5 ", 2.5),
        ("0", None),
        ("none", None),
        ("NONE", None),
    ],
)
def test_download_timeout_is_parsed_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float | None
) -> None:
    if value is None:
        monkeypatch.delenv(ENV_DOWNLOAD_TIMEOUT, raising=False)
    else:
        monkeypatch.setenv(ENV_DOWNLOAD_TIMEOUT, value)
    assert download_timeout_from_env() == expected


@pytest.mark.parametrize("value", ["soon", "-5", "inf", "nan", "1e999"])
def test_a_malformed_download_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(ENV_DOWNLOAD_TIMEOUT, value)
    with pytest.raises(InvalidInputError, match=ENV_DOWNLOAD_TIMEOUT):
        download_timeout_from_env()


def test_a_trickling_mirror_is_abandoned_at_the_deadline(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DOWNLOAD_TIMEOUT, "1")
    hub.trickle = 0.1  # 32 KiB at 10 KiB/s: 3.2 s
    with pytest.raises(DownloadError, match=r"did not finish within 1 s") as caught:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert ENV_DOWNLOAD_TIMEOUT in str(caught.value)
    assert "check your network" not in str(caught.value)
    # The abandoned download stops at its next chunk (huggingface_hub reads 10 MB
    # chunks, so here: when the body is complete) and never lands in the cache.
    for thread in threading.enumerate():
        if thread.name == "edgesam-download":
            thread.join(30)
            assert not thread.is_alive()
    # Nothing half-written where the file belongs.
    assert hub.sandbox is not None
    snapshots = list(hub.sandbox.hub_cache.rglob("limits_encoder.onnx"))
    assert snapshots == []


def test_a_download_within_the_deadline_succeeds(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DOWNLOAD_TIMEOUT, "60")
    path = fetch_file(SPEC, SPEC.decoder, endpoint=hub.url)
    assert path.read_bytes() == SMALL


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EFBIG, "file-size limit"),
        (errno.EROFS, "read-only"),
    ],
    ids=["ENOSPC", "EFBIG", "EROFS"],
)
def test_disk_errors_are_reported_as_cache_folder_errors(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, f"simulated {errno.errorcode[code]}")

    monkeypatch.setattr(huggingface_hub.file_download, "http_get", full_disk)
    with pytest.raises(WeightsError, match=reason) as caught:
        fetch_file(SPEC, SPEC.decoder, endpoint=hub.url)
    message = str(caught.value)
    assert not isinstance(caught.value, DownloadError)
    assert "not a network problem" in message
    assert "check your network" not in message
    assert "HF_HUB_CACHE" in message


def test_a_disk_error_behind_another_error_is_found(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrapped(*args: Any, **kwargs: Any) -> None:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise RuntimeError("copy failed") from err

    monkeypatch.setattr(huggingface_hub.file_download, "http_get", wrapped)
    with pytest.raises(WeightsError, match="the disk is full"):
        fetch_file(SPEC, SPEC.decoder, endpoint=hub.url)


def test_the_deadline_thread_passes_ordinary_errors_through(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, no_retry_sleep: list[float]
) -> None:
    monkeypatch.setenv(ENV_DOWNLOAD_TIMEOUT, "60")
    hub.fail_status = 500
    with pytest.raises(DownloadError, match=r"HTTP 500|failed"):
        fetch_file(SPEC, SPEC.decoder, endpoint=hub.url)
