"""Downloading, caching and verifying model files, end to end through hf_hub_download.

Every test runs huggingface_hub for real against :class:`fakehub.FakeHub` on
127.0.0.1, with every cache under ``tmp_path`` (the ``fake_hub`` fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

import edgesam
import fakehub
from edgesam import _hub
from edgesam._hub import _Request, _translate_hub_error, cached_path, fetch_file
from edgesam._registry import FileSpec, ModelSpec
from edgesam.errors import (
    ChecksumMismatchError,
    DownloadError,
    InvalidInputError,
    WeightsError,
    WeightsNotFoundError,
)
from fakehub import FakeHub, isolate_huggingface_hub, sha256

# The fixtures live in fakehub.py; binding them here makes pytest find them.
fake_hub = fakehub.fake_hub
hf_sandbox = fakehub.hf_sandbox
no_retry_sleep = fakehub.no_retry_sleep

REPO = "chongzhou/EdgeSAM"
REPO_FOLDER = "spaces--chongzhou--EdgeSAM"
ENCODER = b"tiny encoder bytes\n" * 64
DECODER = b"tiny decoder bytes\n" * 32
CHECKPOINT = b"tiny checkpoint\n" * 16


def _pin(path: str, content: bytes) -> FileSpec:
    return FileSpec(path, len(content), sha256(content))


SPEC = ModelSpec(
    name="edge_sam_test",
    encoder=_pin("weights/edge_sam_test_encoder.onnx", ENCODER),
    decoder=_pin("weights/edge_sam_test_decoder.onnx", DECODER),
    checkpoint=_pin("weights/edge_sam_test.pth", CHECKPOINT),
)
CONTENTS = {SPEC.encoder: ENCODER, SPEC.decoder: DECODER, SPEC.checkpoint: CHECKPOINT}


@pytest.fixture(autouse=True)
def _no_real_cache(hf_sandbox: fakehub.HfSandbox) -> None:
    """Even tests without a server keep huggingface_hub's caches (and our records) in tmp_path."""


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    """The fake Hub serving SPEC's three files from the Space at revision main."""
    for file, content in CONTENTS.items():
        fake_hub.add(REPO, file.path, content, repo_type="space")
    return fake_hub


def _cache(hub: FakeHub) -> Path:
    assert hub.sandbox is not None
    return hub.sandbox.hub_cache


def _snapshot(hub: FakeHub, file: FileSpec, revision: str = "main") -> Path:
    commit = hub.commit(REPO, "space", revision)
    return _cache(hub) / REPO_FOLDER / "snapshots" / commit / Path(*file.path.split("/"))


def _blob(hub: FakeHub, digest: str) -> Path:
    return _cache(hub) / REPO_FOLDER / "blobs" / digest


def _corrupted(content: bytes) -> bytes:
    return bytes([content[0] ^ 0xFF]) + content[1:]


def _set_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub 2.4.0 reads HF_HUB_OFFLINE once, at import, into
    # constants.HF_HUB_OFFLINE; constants.is_offline_mode() and the request hook that
    # refuses every HTTP call read that constant at call time. Setting the environment
    # variable now would change nothing, so patch the constant: the same state an import
    # under HF_HUB_OFFLINE=1 produces. (test_environment_variables_in_a_fresh_process sets
    # the real variable.)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


# -- downloading and the cache ---------------------------------------------------------------


def test_first_download_lands_in_the_hf_cache_and_is_verified(hub: FakeHub) -> None:
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)

    assert path == _snapshot(hub, SPEC.encoder)  # default cache_dir: HF_HUB_CACHE
    assert path.read_bytes() == ENCODER
    assert path.resolve() == _blob(hub, SPEC.encoder.sha256)
    requests = hub.resolve_requests()
    assert [r.method for r in requests] == ["HEAD", "GET"]
    assert {r.path for r in requests} == {
        "/spaces/chongzhou/EdgeSAM/resolve/main/weights/edge_sam_test_encoder.onnx"
    }
    assert requests[0].headers["user-agent"].startswith(f"edgesam/{edgesam.__version__};")


def test_cache_dir_argument_is_used(hub: FakeHub, tmp_path: Path) -> None:
    cache = tmp_path / "elsewhere"
    path = fetch_file(SPEC, SPEC.decoder, endpoint=hub.url, cache_dir=cache)
    assert path.is_relative_to(cache / REPO_FOLDER / "snapshots")
    assert path.read_bytes() == DECODER
    assert not (_cache(hub) / REPO_FOLDER).exists()


def test_endpoint_defaults_to_what_hf_endpoint_configured(hub: FakeHub) -> None:
    # The sandbox set constants.ENDPOINT as an import under HF_ENDPOINT=<fake hub> would;
    # fetch_file must not replace it with an endpoint of its own.
    path = fetch_file(SPEC, SPEC.encoder)
    assert path.read_bytes() == ENCODER
    assert hub.count("GET", path_contains="/resolve/") == 1


def test_cached_file_loads_with_the_server_stopped(
    hub: FakeHub, no_retry_sleep: list[float]
) -> None:
    first = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    hub.stop()
    second = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert second == first
    assert second.read_bytes() == ENCODER
    assert no_retry_sleep == []  # fell back to the cache at once


def test_server_error_with_a_cached_file_uses_the_cache(hub: FakeHub) -> None:
    first = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    hub.fail_status = 500
    assert fetch_file(SPEC, SPEC.encoder, endpoint=hub.url) == first


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "local_files_only"])
def test_offline_with_a_cached_file_makes_no_request(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    first = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    before = hub.count()
    if how == "HF_HUB_OFFLINE":
        _set_offline(monkeypatch)
    second = fetch_file(
        SPEC, SPEC.encoder, endpoint=hub.url, local_files_only=how == "local_files_only"
    )
    assert second == first
    assert hub.count() == before


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("HF_HUB_OFFLINE", "offline mode (HF_HUB_OFFLINE=1) forbids downloading it"),
        ("local_files_only", "local_files_only=True forbids downloading it"),
    ],
)
def test_offline_without_the_file_is_weights_not_found(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, how: str, reason: str
) -> None:
    if how == "HF_HUB_OFFLINE":
        _set_offline(monkeypatch)
    with pytest.raises(WeightsNotFoundError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, local_files_only=how == "local_files_only")
    message = str(info.value)
    assert "weights/edge_sam_test_encoder.onnx of model 'edge_sam_test'" in message
    assert f"is not in the Hugging Face cache ({_cache(hub)})" in message
    assert reason in message
    assert "`edgesam download edge_sam_test`" in message
    assert "SamPredictor.from_files(encoder=..., decoder=...)" in message
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value.__cause__, LocalEntryNotFoundError)
    assert hub.count() == 0


def test_force_download_fetches_again_and_verifies(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = _count_hashing(monkeypatch)
    first = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    second = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, force_download=True)
    assert second == first
    assert hub.count("GET", path_contains="/resolve/") == 2
    assert len(hashed) == 2  # a new blob is hashed again


def test_force_download_with_the_server_down_says_the_cache_was_not_used(hub: FakeHub) -> None:
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    hub.fail_status = 503
    with pytest.raises(DownloadError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, force_download=True)
    assert "HTTP 503" in str(info.value)
    assert "force_download=True, so no cached copy was used" in str(info.value)


def test_force_download_and_local_files_only_conflict(hub: FakeHub) -> None:
    with pytest.raises(InvalidInputError, match="pass one or the other"):
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, force_download=True, local_files_only=True)
    assert hub.count() == 0


def test_revision_is_passed_through(hub: FakeHub) -> None:
    hub.add(REPO, SPEC.encoder.path, ENCODER, repo_type="space", revision="v1.0")
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, revision="v1.0")

    assert path == _snapshot(hub, SPEC.encoder, revision="v1.0")
    assert {r.path for r in hub.resolve_requests()} == {
        "/spaces/chongzhou/EdgeSAM/resolve/v1.0/weights/edge_sam_test_encoder.onnx"
    }


def test_commit_hash_revision_is_served_from_the_cache_without_asking(hub: FakeHub) -> None:
    commit = hub.commit(REPO, "space", "main")
    first = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, revision=commit)
    assert f"/resolve/{commit}/" in hub.resolve_requests()[0].path
    before = hub.count()
    assert fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, revision=commit) == first
    assert hub.count() == before


def test_token_is_sent_to_the_hub(hub: FakeHub) -> None:
    hub.required_token = "hf_secret"
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, token="hf_secret")
    assert path.read_bytes() == ENCODER
    assert {r.authorization for r in hub.resolve_requests()} == {"Bearer hf_secret"}


def test_token_from_hf_token_is_used(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.required_token = "hf_from_env"
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")  # huggingface_hub reads it at call time
    assert fetch_file(SPEC, SPEC.encoder, endpoint=hub.url).read_bytes() == ENCODER


def test_missing_token_for_a_private_mirror_is_explained(hub: FakeHub) -> None:
    hub.required_token = "hf_secret"
    with pytest.raises(DownloadError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    message = str(info.value)
    assert "HTTP 401" in message
    assert "pass token= or set HF_TOKEN" in message


def test_cdn_redirect_downloads_without_leaking_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub(cdn=True) as hub:
        isolate_huggingface_hub(monkeypatch, tmp_path, hub.url)
        hub.add(REPO, SPEC.encoder.path, ENCODER, repo_type="space")
        path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, token="hf_secret")

        assert path.read_bytes() == ENCODER
        assert path.resolve().name == SPEC.encoder.sha256  # named by X-Linked-Etag
        cdn_gets = [r for r in hub.requests if r.server == "cdn"]
        assert [r.method for r in cdn_gets] == ["GET"]
        assert cdn_gets[0].authorization is None
        assert hub.resolve_requests()[0].authorization == "Bearer hf_secret"


def test_range_requests_are_answered(fake_hub: FakeHub) -> None:
    # huggingface_hub resumes an interrupted download with "Range: bytes=N-".
    fake_hub.add(REPO, "weights/x.bin", b"0123456789", repo_type="space")
    url = f"{fake_hub.url}/spaces/{REPO}/resolve/main/weights/x.bin"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=4-"})) as r:
        assert r.status == 206
        assert r.read() == b"456789"
        assert r.headers["Content-Range"] == "bytes 4-9/10"


# -- verification ----------------------------------------------------------------------------


def _count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real: Callable[[Path], str] = _hub.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(_hub, "sha256_file", counting)
    return calls


def test_corrupted_download_is_refused_evicted_and_fetched_again(hub: FakeHub) -> None:
    hub.corrupt = True
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    message = str(info.value)
    assert "weights/edge_sam_test_encoder.onnx of model 'edge_sam_test'" in message
    assert f"expected sha256 {SPEC.encoder.sha256}" in message
    assert f"got sha256 {sha256(_corrupted(ENCODER))}" in message
    assert "removed from the cache" in message
    assert "call again" in message
    snapshot = _snapshot(hub, SPEC.encoder)
    assert not snapshot.exists()
    assert not snapshot.is_symlink()
    assert not _blob(hub, SPEC.encoder.sha256).exists()
    assert cached_path(SPEC, SPEC.encoder) is None

    hub.corrupt = False
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert path.read_bytes() == ENCODER
    assert hub.count("GET", path_contains="/resolve/") == 2


def test_a_file_that_differs_from_the_pin_is_never_trusted(hub: FakeHub) -> None:
    other = b"the authors replaced this file"
    hub.add(REPO, SPEC.encoder.path, other, repo_type="space")
    for attempt in (1, 2):
        with pytest.raises(ChecksumMismatchError) as info:
            fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
        assert f"got sha256 {sha256(other)} ({len(other)} bytes)" in str(info.value)
        assert hub.count("GET", path_contains="/resolve/") == attempt  # downloaded afresh


def test_cached_file_changed_on_disk_is_hashed_again_and_refused(hub: FakeHub) -> None:
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    blob = path.resolve()
    stat = blob.stat()
    blob.write_bytes(_corrupted(ENCODER))  # same size
    os.utime(blob, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))

    with pytest.raises(ChecksumMismatchError):
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, local_files_only=True)
    assert not blob.exists()
    assert fetch_file(SPEC, SPEC.encoder, endpoint=hub.url).read_bytes() == ENCODER


def test_unchanged_file_is_hashed_once(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = _count_hashing(monkeypatch)
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, local_files_only=True)
    assert hashed == [path.resolve()]

    assert hub.sandbox is not None
    records = list((hub.sandbox.assets_cache / "edgesam" / "verified" / "sha256").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text(encoding="utf-8"))
    assert record["path"] == str(path.resolve())
    assert record["sha256"] == SPEC.encoder.sha256

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert len(hashed) == 2


def test_a_damaged_verification_record_means_hashing_again(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = _count_hashing(monkeypatch)
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert hub.sandbox is not None
    (record,) = (hub.sandbox.assets_cache / "edgesam" / "verified" / "sha256").glob("*.json")
    record.write_text("{not json", encoding="utf-8")
    fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert len(hashed) == 2


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("methods", [{"HEAD", "GET"}, {"GET"}])
def test_server_error_is_a_download_error(
    hub: FakeHub, no_retry_sleep: list[float], methods: set[str]
) -> None:
    hub.fail_status = 500
    hub.fail_methods = frozenset(methods)
    with pytest.raises(DownloadError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    message = str(info.value)
    assert "HTTP 500" in message
    assert f"{hub.url}/spaces/chongzhou/EdgeSAM/resolve/main/weights/" in message
    assert "try again later" in message
    assert f"it is not in the cache ({_cache(hub)})" in message
    assert not isinstance(info.value, WeightsNotFoundError)
    assert info.value.__cause__ is not None
    assert cached_path(SPEC, SPEC.encoder) is None


def test_unreachable_server_fails_fast_in_one_line(
    hub: FakeHub, no_retry_sleep: list[float]
) -> None:
    hub.stop()
    with pytest.raises(DownloadError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    message = str(info.value)
    what = "weights/edge_sam_test_encoder.onnx of model 'edge_sam_test'"
    assert message.startswith(f"cannot download {what}: connection to 127.0.0.1:")
    assert "refused" in message
    assert f"not in the cache ({_cache(hub)})" in message
    assert "HF_HUB_OFFLINE=1" in message
    assert "from_files(encoder=..., decoder=...)" in message
    assert "\n" not in message
    assert no_retry_sleep == []  # no back-off: the host refused the connection


def test_unresolvable_name_fails_fast(
    hub: FakeHub, no_retry_sleep: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def no_dns(host: str, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    # As offline: every look-up fails (whatever this machine's resolver does with .invalid).
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError) as info:
        fetch_file(SPEC, SPEC.encoder, endpoint="http://edgesam-no-such-host.invalid")
    assert "cannot resolve the name edgesam-no-such-host.invalid" in str(info.value)
    assert no_retry_sleep == []


def test_unreachable_server_still_serves_the_cached_copy(
    hub: FakeHub, no_retry_sleep: list[float]
) -> None:
    first = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    hub.stop()
    assert fetch_file(SPEC, SPEC.encoder, endpoint=hub.url) == first
    with pytest.raises(DownloadError, match="force_download=True, so no cached copy"):
        fetch_file(SPEC, SPEC.encoder, endpoint=hub.url, force_download=True)
    assert no_retry_sleep == []


def test_reachability_probe_defers_when_unsure(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesam._network import unreachable_reason

    assert unreachable_reason("file:///tmp") is None
    assert unreachable_reason("not a url") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # Behind a proxy the name need not resolve here: huggingface_hub decides.
    assert unreachable_reason("https://edgesam-no-such-host.invalid") is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("file", "has no file 'weights/missing.onnx' at revision main"),
        ("revision", "revision 'v9' does not exist in space chongzhou/EdgeSAM"),
        ("repo", "space someone/Nothing was not found at"),
    ],
)
def test_not_found_is_reported_clearly(hub: FakeHub, change: str, expected: str) -> None:
    spec, file, revision = SPEC, SPEC.encoder, None
    if change == "file":
        file = FileSpec("weights/missing.onnx", 1, "0" * 64)
    elif change == "revision":
        revision = "v9"
    else:
        spec = ModelSpec(
            name="other", repo_id="someone/Nothing", encoder=file, decoder=file, checkpoint=file
        )
    with pytest.raises(DownloadError) as info:
        fetch_file(spec, file, endpoint=hub.url, revision=revision)
    message = str(info.value)
    assert "HTTP 404" in message
    assert expected in message


REQUEST = _Request(
    model=SPEC,
    file=SPEC.encoder,
    revision=None,
    cache_dir="/cache",
    endpoint_arg="http://mirror.test",
    local_files_only=False,
)


def _raised(error: Exception, cause: BaseException | None) -> Exception:
    try:
        raise error from cause
    except Exception as raised:
        return raised


def test_errors_that_escape_hf_hub_download_are_translated() -> None:
    httpx2 = pytest.importorskip("httpx2", reason="huggingface_hub < 1.0 uses requests")
    offline_force = _raised(
        ValueError("Cannot pass 'force_download=True' when offline mode is enabled."),
        OfflineModeIsEnabled("offline"),
    )
    cases: list[tuple[Exception, type[Exception], str]] = [
        (PermissionError(13, "Permission denied"), WeightsError, "make that folder writable"),
        (httpx2.ConnectError("connection reset"), DownloadError, "connection reset"),
        (OSError("Consistency check failed"), DownloadError, "Consistency check failed"),
        (offline_force, DownloadError, "force_download=True needs the network"),
    ]
    for error, expected_type, text in cases:
        translated = _translate_hub_error(error, REQUEST)
        assert type(translated) is expected_type, error
        assert text in str(translated)
    assert _translate_hub_error(TypeError("a bug"), REQUEST) is None
    assert _translate_hub_error(ValueError("Invalid repo type"), REQUEST) is None


# -- several files, cache look-up ------------------------------------------------------------


def test_fetch_model_files(hub: FakeHub) -> None:
    paths = _hub.fetch_model_files(SPEC, endpoint=hub.url)
    assert list(paths) == ["encoder", "decoder"]
    assert paths["decoder"].read_bytes() == DECODER
    both = _hub.fetch_model_files(SPEC, which=("checkpoint", "encoder"), endpoint=hub.url)
    assert list(both) == ["checkpoint", "encoder"]
    assert both["checkpoint"].read_bytes() == CHECKPOINT
    assert list(_hub.fetch_model_files(SPEC, which="decoder", endpoint=hub.url)) == ["decoder"]


@pytest.mark.parametrize("which", [("mask_decoder",), (), ("encoder", "weights")])
def test_fetch_model_files_checks_roles(hub: FakeHub, which: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInputError, match="which must list file roles"):
        _hub.fetch_model_files(SPEC, which=which, endpoint=hub.url)
    assert hub.count() == 0


def test_cached_path(hub: FakeHub, tmp_path: Path) -> None:
    assert cached_path(SPEC, SPEC.encoder) is None
    path = fetch_file(SPEC, SPEC.encoder, endpoint=hub.url)
    assert cached_path(SPEC, SPEC.encoder) == path
    assert cached_path(SPEC, SPEC.decoder) is None
    assert cached_path(SPEC, SPEC.encoder, cache_dir=tmp_path / "empty") is None


# -- real environment variables, in a fresh interpreter --------------------------------------

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from edgesam._hub import fetch_file
    from edgesam._registry import FileSpec, ModelSpec

    pins = json.loads(sys.argv[1])
    files = {role: FileSpec(*pin) for role, pin in pins.items()}
    spec = ModelSpec(name="edge_sam_test", **files)
    results = {}
    for role in sys.argv[2:]:
        try:
            results[role] = {"path": str(fetch_file(spec, files[role]))}
        except Exception as err:
            results[role] = {"error": type(err).__name__, "message": str(err)}
    print(json.dumps(results))
    """
)


def _run_fresh(env: dict[str, str], *roles: str) -> dict[str, dict[str, str]]:
    pins = {
        role: [file.path, file.size, file.sha256]
        for role, file in (
            ("encoder", SPEC.encoder),
            ("decoder", SPEC.decoder),
            ("checkpoint", SPEC.checkpoint),
        )
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(pins), *roles],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, dict[str, str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_environment_variables_in_a_fresh_process(hub: FakeHub, tmp_path: Path) -> None:
    home = tmp_path / "fresh_home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_"))
    }
    src = Path(edgesam.__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    env.update(
        HF_HOME=str(home),
        HF_ENDPOINT=hub.url,
        HF_TOKEN="hf_from_env",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    online = _run_fresh(env, "encoder")
    encoder = Path(online["encoder"]["path"])
    assert encoder.is_relative_to(home / "hub" / REPO_FOLDER / "snapshots")
    assert encoder.read_bytes() == ENCODER
    assert {r.authorization for r in hub.resolve_requests()} == {"Bearer hf_from_env"}

    hub.stop()
    offline = _run_fresh({**env, "HF_HUB_OFFLINE": "1"}, "encoder", "decoder")
    assert offline["encoder"] == {"path": str(encoder)}
    assert offline["decoder"]["error"] == "WeightsNotFoundError"
    assert "HF_HUB_OFFLINE=1" in offline["decoder"]["message"]
    assert str(home / "hub") in offline["decoder"]["message"]
