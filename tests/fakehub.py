"""A fake Hugging Face Hub on 127.0.0.1, and fixtures that point huggingface_hub at it.

The server speaks the part of the Hub's protocol that ``hf_hub_download`` uses
(checked against huggingface_hub 2.4.0, ``file_download.py``):

* ``HEAD`` and ``GET`` on ``/{prefix}{repo_id}/resolve/{revision}/{filename}``,
  where ``prefix`` is ``spaces/``, ``datasets/``, ``kernels/`` or nothing for models;
* answers carry ``X-Repo-Commit`` (the commit the revision resolves to), an
  ``ETag`` that is the content's sha256 (as for LFS files, so the cache blob is
  named after it) and ``Content-Length``; ``Range: bytes=N-`` gets a 206;
* with ``cdn=True``, ``/resolve/`` answers like the real Hub does for LFS
  files: a 302 to a second server (another origin, like the CDN) carrying
  ``X-Linked-Etag`` and ``X-Linked-Size``; the client then downloads from the
  CDN and must not send it the ``Authorization`` header;
* unknown repositories, revisions and files get a 404 with the Hub's
  ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``),
  which huggingface_hub turns into its specific exceptions.

Knobs: ``fail_status`` (answer every request, or those in ``fail_methods``,
with that status), ``corrupt`` (serve bytes that differ from the advertised
ETag), ``trickle`` (send bodies slowly), ``required_token`` (401 without
``Authorization: Bearer <token>``),
``requests`` / :meth:`FakeHub.count` (what the client asked), :meth:`FakeHub.stop`.

Usage from a test module (binding the fixtures makes pytest find them; importing
them by name would trip ruff's F811 where a test takes them as arguments)::

    import fakehub
    from fakehub import FakeHub

    fake_hub = fakehub.fake_hub

    def test_something(fake_hub: FakeHub) -> None:
        fake_hub.add("chongzhou/EdgeSAM", "weights/x.onnx", b"...", repo_type="space")
        path = fetch_file(spec, spec.encoder, endpoint=fake_hub.url)

``fake_hub`` (and ``hf_sandbox``, its server-less half, or
:func:`isolate_huggingface_hub` for a hub you build yourself) points every
cache, token and endpoint location huggingface_hub knows at ``tmp_path`` and
the fake server, so no test touches the real cache or the network. ``no_retry_sleep`` makes
huggingface_hub's retry back-off instant. Adding ``pytest_plugins = ["fakehub"]``
to ``conftest.py`` makes all three fixtures available everywhere without binding them.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest

__all__ = [
    "FakeHub",
    "HfSandbox",
    "RecordedRequest",
    "commit_hash",
    "fake_hub",
    "hf_sandbox",
    "isolate_huggingface_hub",
    "no_retry_sleep",
    "sha256",
]

FileKey = tuple[str, str, str, str]
"""(repo_id, repo_type, revision, filename)"""

_URL_PREFIXES = {"spaces": "space", "datasets": "dataset", "kernels": "kernel"}
_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def sha256(content: bytes) -> str:
    """Hex sha256 of ``content``."""
    return hashlib.sha256(content).hexdigest()


def commit_hash(repo_id: str, repo_type: str, revision: str) -> str:
    """The fake commit a revision resolves to (a commit hash resolves to itself)."""
    if _COMMIT_HASH.fullmatch(revision):
        return revision
    return hashlib.sha1(f"{repo_type}/{repo_id}@{revision}".encode()).hexdigest()


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake server received."""

    server: str  # "hub" or "cdn"
    method: str
    path: str
    headers: Mapping[str, str]  # names in lower case

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class _Resolved:
    content: bytes
    commit: str


@dataclass
class FakeHub:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) that answers like the Hub.

    Parameters
    ----------
    files : mapping of (repo_id, repo_type, revision, filename) to bytes, optional
        What the server holds; more can be added with :meth:`add`.
    cdn : bool, default False
        Redirect downloads to a second server, as the Hub does for LFS files.
    fail_status : int, optional
        Answer every request whose method is in ``fail_methods`` with this status
        (e.g. 500), on both servers; None serves normally. Can be changed at any time.
    corrupt : bool, default False
        Serve one flipped byte per file while still advertising the genuine ETag.
    trickle : float, optional
        Send bodies 1 KiB at a time, waiting this many seconds after each piece
        (a stalled mirror); None sends them at once. Stops when the hub stops.
    required_token : str, optional
        Answer ``/resolve/`` with 401 (as the Hub does for a private repository)
        unless the request carries ``Authorization: Bearer <required_token>``.
    requests : list of RecordedRequest
        Every request received, in order.
    sandbox : HfSandbox, optional
        Set by the ``fake_hub`` fixture: where huggingface_hub keeps its caches.
    """

    files: dict[FileKey, bytes] = field(default_factory=dict, repr=False)
    cdn: bool = False
    fail_status: int | None = None
    fail_methods: frozenset[str] = frozenset({"HEAD", "GET"})
    corrupt: bool = False
    required_token: str | None = None
    trickle: float | None = None
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    sandbox: HfSandbox | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._hub = _start(self, "hub")
        self._cdn = _start(self, "cdn") if self.cdn else None
        self.stopped = False

    # -- set-up ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint, e.g. ``http://127.0.0.1:54321`` (for ``endpoint=`` / ``HF_ENDPOINT``)."""
        host, port = self._hub.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cdn_url(self) -> str | None:
        if self._cdn is None:
            return None
        host, port = self._cdn.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(
        self,
        repo_id: str,
        filename: str,
        content: bytes,
        *,
        repo_type: str = "model",
        revision: str = "main",
    ) -> str:
        """Serve ``content`` as ``filename``; returns the commit hash it is served at."""
        with self._lock:
            self.files[(repo_id, repo_type, revision, filename)] = content
        return commit_hash(repo_id, repo_type, revision)

    def commit(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> str:
        """The commit hash that ``revision`` resolves to (``X-Repo-Commit``)."""
        return commit_hash(repo_id, repo_type, revision)

    # -- inspection --------------------------------------------------------------------------

    def count(
        self, method: str | None = None, *, server: str | None = None, path_contains: str = ""
    ) -> int:
        """How many requests matched (all when no filter is given)."""
        with self._lock:
            return sum(
                1
                for request in self.requests
                if (method is None or request.method == method)
                and (server is None or request.server == server)
                and path_contains in request.path
            )

    def resolve_requests(self) -> list[RecordedRequest]:
        """The requests made to ``/resolve/`` URLs, in order."""
        with self._lock:
            return [r for r in self.requests if r.server == "hub" and "/resolve/" in r.path]

    # -- life --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop both servers and close their sockets: later connections are refused."""
        if self.stopped:
            return
        self.stopped = True
        for server in (self._hub, self._cdn):
            if server is not None:
                server.shutdown()
                server.server_close()

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what the handler asks ---------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _revision_name(self, repo_id: str, repo_type: str, revision: str) -> str | None:
        """The revision name that ``revision`` (a name or a commit hash) refers to."""
        with self._lock:
            revisions = {key[2] for key in self.files if key[:2] == (repo_id, repo_type)}
        if revision in revisions:
            return revision
        by_commit = {commit_hash(repo_id, repo_type, name): name for name in revisions}
        return by_commit.get(revision)

    def _lookup(
        self, repo_id: str, repo_type: str, revision: str, filename: str
    ) -> _Resolved | str:
        """The file, or the Hub error code explaining why there is none."""
        with self._lock:
            known_repo = any(key[:2] == (repo_id, repo_type) for key in self.files)
        if not known_repo:
            return "RepoNotFound"
        name = self._revision_name(repo_id, repo_type, revision)
        if name is None:
            return "RevisionNotFound"
        with self._lock:
            content = self.files.get((repo_id, repo_type, name, filename))
        if content is None:
            return "EntryNotFound"
        return _Resolved(content, commit_hash(repo_id, repo_type, name))

    def _by_sha256(self, digest: str) -> bytes | None:
        with self._lock:
            return next((c for c in self.files.values() if sha256(c) == digest), None)


def _start(hub: FakeHub, role: str) -> http.server.ThreadingHTTPServer:
    handler = type(f"_{role.title()}Handler", (_Handler,), {"hub": hub, "role": role})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return server


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped server refuses the next request
    # instead of leaving the client a pooled keep-alive socket.
    protocol_version = "HTTP/1.0"
    hub: FakeHub
    role: str

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    # -- routing -------------------------------------------------------------------------------

    def _answer(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        self.hub._record(
            RecordedRequest(
                server=self.role,
                method=self.command,
                path=path,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
        )
        hub = self.hub
        if hub.fail_status is not None and self.command in hub.fail_methods:
            self._error(hub.fail_status, None, "Internal Error", send_body=send_body)
            return
        if self.role == "cdn":
            self._serve_cdn(path, send_body=send_body)
            return
        parsed = _parse_resolve(path)
        if parsed is None:
            self._error(404, None, "Not found", send_body=send_body)
            return
        if hub.required_token is not None and (
            self.headers.get("Authorization") != f"Bearer {hub.required_token}"
        ):
            # The Hub answers 401 + RepoNotFound for private repos without a valid token.
            self._error(401, "RepoNotFound", "Invalid username or password.", send_body=send_body)
            return
        repo_id, repo_type, revision, filename = parsed
        found = hub._lookup(repo_id, repo_type, revision, filename)
        if isinstance(found, str):
            # An EntryNotFound names the commit, which huggingface_hub records in `.no_exist`.
            commit = hub.commit(repo_id, repo_type, revision) if found == "EntryNotFound" else None
            messages = {
                "RepoNotFound": "Repository not found",
                "RevisionNotFound": f"Invalid rev id: {revision}",
                "EntryNotFound": "Entry not found",
            }
            self._error(404, found, messages[found], commit=commit, send_body=send_body)
            return
        etag = sha256(found.content)
        if hub.cdn:
            cdn_url = f"{hub.cdn_url}/cdn/{etag}?signature=fake"
            self.send_response(302)
            self.send_header("Location", cdn_url)
            self.send_header("X-Repo-Commit", found.commit)
            # The redirect's own ETag is the git object's (the LFS pointer); the file's sha256
            # and size ride in the X-Linked-* headers, which the client prefers.
            pointer_sha1 = hashlib.sha1(f"pointer {etag}".encode()).hexdigest()
            self.send_header("ETag", f'"{pointer_sha1}"')
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(found.content)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_content(found.content, etag, commit=found.commit, send_body=send_body)

    def _serve_cdn(self, path: str, *, send_body: bool) -> None:
        match = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
        content = self.hub._by_sha256(match.group(1)) if match else None
        if content is None or match is None:
            self._error(404, None, "NoSuchKey", send_body=send_body)
            return
        self._send_content(content, match.group(1), commit=None, send_body=send_body)

    # -- answers -------------------------------------------------------------------------------

    def _send_content(
        self, content: bytes, etag: str, *, commit: str | None, send_body: bool
    ) -> None:
        if self.hub.corrupt:
            # Same length, different bytes, still advertised under the genuine ETag.
            content = bytes([content[0] ^ 0xFF]) + content[1:] if content else b"\xff"
        start, status = 0, 200
        match = _RANGE.fullmatch(self.headers.get("Range", ""))
        if match is not None and int(match.group(1)) < len(content):
            start, status = int(match.group(1)), 206
            end = int(match.group(2)) + 1 if match.group(2) else len(content)
            body = content[start:end]
        else:
            body = content
        self.send_response(status)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header(
                "Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(content)}"
            )
        self.end_headers()
        if send_body and self.hub.trickle is not None:
            for at in range(0, len(body), 1024):
                if self.hub.stopped:
                    return
                self.wfile.write(body[at : at + 1024])
                self.wfile.flush()
                time.sleep(self.hub.trickle)
        elif send_body:
            self.wfile.write(body)

    def _error(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        commit: str | None = None,
        send_body: bool,
    ) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code is not None:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and self.hub.trickle is not None:
            for at in range(0, len(body), 1024):
                if self.hub.stopped:
                    return
                self.wfile.write(body[at : at + 1024])
                self.wfile.flush()
                time.sleep(self.hub.trickle)
        elif send_body:
            self.wfile.write(body)


def _parse_resolve(path: str) -> FileKey | None:
    """(repo_id, repo_type, revision, filename) of a ``/resolve/`` path, or None."""
    parts = path.lstrip("/").split("/")  # still quoted: a revision may contain %2F
    repo_type = "model"
    if parts and parts[0] in _URL_PREFIXES:
        repo_type = _URL_PREFIXES[parts[0]]
        parts = parts[1:]
    for index in (1, 2):  # repo ids are "name" or "namespace/name"
        if len(parts) > index + 2 and parts[index] == "resolve":
            repo_id = "/".join(unquote(p) for p in parts[:index])
            revision = unquote(parts[index + 1])
            filename = "/".join(unquote(p) for p in parts[index + 2 :])
            return repo_id, repo_type, revision, filename
    return None


# -- huggingface_hub, pointed at tmp_path and the fake server -------------------------------


@dataclass(frozen=True)
class HfSandbox:
    """Where huggingface_hub now keeps its things during a test."""

    home: Path
    hub_cache: Path
    assets_cache: Path


def isolate_huggingface_hub(
    monkeypatch: pytest.MonkeyPatch, root: Path, endpoint: str | None = None
) -> HfSandbox:
    """Point huggingface_hub's caches, token and endpoint at ``root`` and ``endpoint``.

    huggingface_hub reads ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_ENDPOINT``,
    ``HF_HUB_OFFLINE`` and friends **once, at import** (``constants.py``), so
    setting the environment variables in a running test changes nothing by
    itself. This sets them (for subprocesses) *and* patches the constants the
    library reads at call time, which is what an import under those variables
    would have produced. ``HF_TOKEN`` is removed (it is read at call time).
    """
    from huggingface_hub import constants

    home = root / "hf_home"
    hub_cache = home / "hub"
    assets = home / "assets"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_ASSETS_CACHE", str(assets))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(assets))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_XET_CACHE", str(home / "xet"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # No user-agent telemetry: it may fetch {ENDPOINT}/api/agent-harnesses once per process.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    # Where symlinks are unsupported (some Windows runners) huggingface_hub warns once;
    # the suite runs with filterwarnings=error, and the cache then works by copying.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_SYMLINKS_WARNING", True, raising=False)
    if hasattr(constants, "AGENT_HARNESSES_PATH"):
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / "agent_harnesses.json"))
    if endpoint is not None:
        # What HF_ENDPOINT does at import: the default endpoint and the URL template built on it.
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
    return HfSandbox(home=home, hub_cache=hub_cache, assets_cache=assets)


@pytest.fixture
def hf_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HfSandbox:
    """huggingface_hub with its caches and token under ``tmp_path`` (no endpoint change)."""
    return isolate_huggingface_hub(monkeypatch, tmp_path)


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running :class:`FakeHub`, empty, with huggingface_hub sandboxed and pointed at it.

    The hub's ``sandbox`` attribute is the :class:`HfSandbox`. The server is
    stopped at the end of the test.
    """
    hub = FakeHub()
    try:
        hub.sandbox = isolate_huggingface_hub(monkeypatch, tmp_path, hub.url)
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make huggingface_hub's retry back-off instant; returns the sleeps it asked for.

    When nothing is cached, huggingface_hub retries a failed HEAD with exponential
    back-off (1, 2, 4, 8, 8 s) and a broken download every second; the tests
    would wait half a minute per failure otherwise.
    """
    import huggingface_hub.file_download
    import huggingface_hub.utils._http

    slept: list[float] = []
    fake_time = SimpleNamespace(
        sleep=slept.append, time=time.time, monotonic=time.monotonic, perf_counter=time.perf_counter
    )
    monkeypatch.setattr(huggingface_hub.utils._http, "time", fake_time)
    monkeypatch.setattr(huggingface_hub.file_download, "time", fake_time)
    return slept
