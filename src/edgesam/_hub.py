"""Getting model files onto disk: the Hugging Face cache and verification.

``huggingface_hub.hf_hub_download`` owns downloading, the cache layout, offline
mode, endpoints (mirrors), tokens and progress bars. This module passes its
options through under their own names and never overrides its environment
variables (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``,
``HF_TOKEN``). What it adds:

* every file is checked against the registry's pinned size and sha256, and a
  file that differs is refused *and evicted from the cache*, so the next call
  downloads it again instead of trusting it;
* a file is hashed once: a small verification record (size, mtime, inode,
  sha256) lets later loads of the unchanged file skip the hash;
* huggingface_hub's exceptions become edgesam's (:class:`WeightsNotFoundError`
  when a file is not cached and downloading is off, :class:`DownloadError` when
  the Hub or mirror fails), each message saying what to do.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from huggingface_hub import cached_assets_path, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils.tqdm import tqdm as hf_tqdm
from typing_extensions import Unpack

from edgesam._atomic import sha256_file, write_bytes_atomic
from edgesam._config import ENV_DOWNLOAD_TIMEOUT, download_timeout_from_env
from edgesam._files import path_argument, short_repr
from edgesam._network import unreachable_reason
from edgesam._registry import FILE_ROLES, FileRole, FileSpec, ModelSpec
from edgesam._validate import flag
from edgesam.errors import (
    ChecksumMismatchError,
    DownloadError,
    InvalidInputError,
    WeightsError,
    WeightsNotFoundError,
)

__all__ = [
    "HubOptions",
    "cached_path",
    "fetch_file",
    "fetch_model_files",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# Exceptions from these packages are transport failures (refused connection, timeout,
# proxy, broken stream): huggingface_hub lets some escape unwrapped.
_HTTP_CLIENT_PACKAGES = frozenset({"httpx", "httpx2", "requests", "urllib3", "httpcore"})
_LOCAL_ALTERNATIVE = (
    "or load files you already have with SamPredictor.from_files(encoder=..., decoder=...)"
)


class HubOptions(TypedDict, total=False):
    """Options passed through to ``huggingface_hub.hf_hub_download`` under its own names."""

    revision: str | None
    cache_dir: PathLike | None
    token: bool | str | None
    local_files_only: bool
    force_download: bool
    endpoint: str | None


# -- public functions -----------------------------------------------------------------------


def fetch_file(
    model: ModelSpec,
    file: FileSpec,
    *,
    revision: str | None = None,
    cache_dir: PathLike | None = None,
    token: bool | str | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    endpoint: str | None = None,
) -> Path:
    """Download ``file`` of ``model`` into the Hugging Face cache (once) and verify it.

    The file is fetched with ``huggingface_hub.hf_hub_download``: already cached
    files are not downloaded again, ``HF_HUB_OFFLINE=1`` or
    ``local_files_only=True`` use the cache only, ``HF_ENDPOINT`` or
    ``endpoint=`` select a mirror, and a progress bar shows while downloading
    (``HF_HUB_DISABLE_PROGRESS_BARS=1`` hides it). The result is then checked
    against the pinned size and sha256; the hash is computed once per file
    and remembered while the file stays unchanged.

    Parameters
    ----------
    model : ModelSpec
        The model, for its repository (``repo_id``, ``repo_type``) and name.
    file : FileSpec
        The pinned file to fetch (e.g. ``model.encoder``).
    revision : str, optional
        Branch, tag or commit of the repository; None means ``"main"``. Pin a
        commit hash to make downloads reproducible.
    cache_dir : str or os.PathLike, optional
        Hugging Face hub cache folder; None means ``HF_HUB_CACHE``
        (default ``~/.cache/huggingface/hub``, or ``$HF_HOME/hub``).
    token : str or bool, optional
        Hub token, e.g. for a private mirror; None uses ``HF_TOKEN`` or the
        saved login, False sends none.
    local_files_only : bool, default False
        Use the cache only, never the network.
    force_download : bool, default False
        Download again even if the file is cached (e.g. after a corruption).
    endpoint : str, optional
        Hub address, e.g. a mirror; None means ``HF_ENDPOINT`` or https://huggingface.co.

    Returns
    -------
    pathlib.Path
        Path of the verified file in the cache (its snapshot path, which keeps
        the file's name).

    Raises
    ------
    WeightsNotFoundError
        The file is not cached and downloading is disabled
        (``local_files_only=True`` or ``HF_HUB_OFFLINE=1``).
    DownloadError
        The Hub or the mirror failed (HTTP error, unreachable, file, revision
        or repository missing) and the file is not cached.
    ChecksumMismatchError
        The file's size or sha256 differs from the pin. The file is removed
        from the cache so that the next call downloads it afresh.
    InvalidInputError
        ``force_download`` and ``local_files_only`` are both True.
    WeightsError
        The cache folder cannot be written.
    """
    _check_hub_options(
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        endpoint=endpoint,
        local_files_only=local_files_only,
        force_download=force_download,
    )
    if force_download and local_files_only:
        raise InvalidInputError(
            "force_download=True needs the network and local_files_only=True forbids it: "
            "pass one or the other"
        )
    from edgesam import __version__  # late: edgesam/__init__ imports the modules that use this one

    request = _Request(model, file, revision, cache_dir, endpoint, local_files_only, force_download)
    # Fail fast (no retries) when the Hub's host cannot be reached at all; a cached copy
    # is still used, as huggingface_hub would after its retries.
    unreachable = None
    if not local_files_only and not getattr(hf_constants, "HF_HUB_OFFLINE", False):
        unreachable = unreachable_reason(request.endpoint)
        if unreachable is not None and force_download:
            raise _offline(unreachable, request)
    deadline = download_timeout_from_env()
    try:
        downloaded = _download_within(
            deadline,
            model.repo_id,
            file.path,
            repo_type=model.repo_type,
            revision=revision,
            cache_dir=None if cache_dir is None else os.fspath(cache_dir),
            token=token,
            local_files_only=local_files_only or unreachable is not None,
            force_download=force_download,
            endpoint=endpoint,
            library_name="edgesam",
            library_version=__version__,
        )
    except _DeadlinePassed as err:
        raise DownloadError(
            f"cannot download {request.what} from {request.url}: it did not finish within "
            f"{deadline:g} s ({ENV_DOWNLOAD_TIMEOUT}), the server is too slow or stalled, and "
            f"{request.no_fallback}. To fix: try again later or through a faster network or "
            f"mirror (HF_ENDPOINT / endpoint=), or allow more time with {ENV_DOWNLOAD_TIMEOUT}="
            "<seconds> (0 for no limit); a later call resumes the partial download"
        ) from err
    except Exception as err:
        if unreachable is not None and isinstance(err, LocalEntryNotFoundError):
            raise _offline(unreachable, request) from None
        mapped = _translate_hub_error(err, request)
        if mapped is None:
            raise
        raise mapped from err

    path = Path(downloaded)
    try:
        mismatch = _check_file(path, file.size, file.sha256)
    except OSError as err:
        raise WeightsError(
            f"cannot read {request.what} from the cache ({path}): {err}. To fix: check the "
            "cache folder's permissions, or download it again with force_download=True"
        ) from err
    if mismatch is None:
        return path
    removed = _evict(path)
    where = (
        f"It was removed from the cache ({', '.join(map(str, removed))}), so the next call "
        "downloads it again."
        if removed
        else f"It could not be removed from the cache: delete {path} and its target by hand."
    )
    raise ChecksumMismatchError(
        f"{file.path} of model {model.name!r} from {request.source} is not the pinned file: "
        f"expected sha256 {file.sha256} ({file.size} bytes), got sha256 "
        f"{mismatch.sha256} ({mismatch.size} bytes). {where} To fix: call again (or pass "
        f"force_download=True); if it fails again, the server at {request.endpoint} serves a "
        "different file: check HF_ENDPOINT / endpoint= and revision=, or update edgesam if "
        "the authors replaced their weights"
    )


def fetch_model_files(
    spec: ModelSpec,
    *,
    which: Iterable[str] | str = ("encoder", "decoder"),
    **hub_options: Unpack[HubOptions],
) -> dict[str, Path]:
    """Fetch and verify several files of one model (see :func:`fetch_file`).

    Parameters
    ----------
    spec : ModelSpec
        The model.
    which : iterable of {"encoder", "decoder", "checkpoint"}, default ("encoder", "decoder")
        Which files. The checkpoint (``.pth``, 39 MB) is needed only for mask
        input with the official decoder and for exporting.
    **hub_options
        ``revision``, ``cache_dir``, ``token``, ``local_files_only``,
        ``force_download``, ``endpoint``: as in :func:`fetch_file`.

    Returns
    -------
    dict of str to pathlib.Path
        Role → verified path, in the order asked.

    Raises
    ------
    InvalidInputError
        If ``which`` names an unknown role.
    WeightsError
        As :func:`fetch_file`.
    """
    requested: tuple[str, ...] = (which,) if isinstance(which, str) else tuple(which)
    known: dict[str, FileRole] = {role: role for role in FILE_ROLES}
    unknown = [role for role in requested if role not in known]
    if unknown or not requested:
        raise InvalidInputError(
            f"which must list file roles among {', '.join(map(repr, FILE_ROLES))}, "
            f"got {list(requested)!r}"
        )
    files = {role: spec.file(known[role]) for role in dict.fromkeys(requested)}
    return {role: fetch_file(spec, file, **hub_options) for role, file in files.items()}


def cached_path(
    model: ModelSpec,
    file: FileSpec,
    *,
    revision: str | None = None,
    cache_dir: PathLike | None = None,
) -> Path | None:
    """Where ``file`` lies in the Hugging Face cache, or None if it is not cached.

    Looks at the cache only (no network, no hashing): a path returned here is
    verified when :func:`fetch_file` loads it.

    Parameters
    ----------
    model, file
        As in :func:`fetch_file`.
    revision : str, optional
        Branch, tag or commit; None means ``"main"``.
    cache_dir : str or os.PathLike, optional
        Hub cache folder; None means ``HF_HUB_CACHE``.
    """
    found = try_to_load_from_cache(
        model.repo_id,
        file.path,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
        revision=revision,
        repo_type=model.repo_type,
    )
    return Path(found) if isinstance(found, str) else None


def _check_hub_options(
    *,
    revision: object,
    cache_dir: object,
    token: object,
    endpoint: object,
    local_files_only: object,
    force_download: object,
) -> None:
    """Refuse hub options of the wrong type with the package's error, before any I/O."""
    if cache_dir is not None:
        folder = path_argument(cache_dir, "cache_dir", "a folder")
        try:
            folder.expanduser()
        except RuntimeError as err:  # "~user" of an unknown user
            raise InvalidInputError(
                f"cache_dir={os.fspath(folder)!r} starts with a ~ that names no known user's "
                "home folder; pass an absolute path"
            ) from err
    for name, value in (("revision", revision), ("endpoint", endpoint)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(
                f"{name} must be a str or None: got {type(value).__name__} {short_repr(value)}"
            )
    if token is not None and not isinstance(token, bool | str):
        raise InvalidInputError(
            f"token must be a str, True, False or None: got {type(token).__name__}"
        )
    flag(local_files_only, "local_files_only")
    flag(force_download, "force_download")


# -- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Actual:
    size: int
    sha256: str


def _check_file(path: Path, size: int | None, sha256: str) -> _Actual | None:
    """None if the file at ``path`` has ``size`` and ``sha256``, else what it has.

    The hash is skipped when a verification record says this very file (same
    resolved path, size, mtime and inode) already hashed to ``sha256``.
    """
    target = path.resolve()  # the blob behind a cache snapshot link
    stat = target.stat()
    record_file = _record_file(target)
    if record_file is not None and _record_matches(record_file, target, stat, sha256):
        logger.debug("%s: unchanged since verified, sha256 not recomputed", target)
        return None
    actual = sha256_file(target)
    if actual == sha256 and (size is None or stat.st_size == size):
        logger.info("Verified %s (sha256 %s)", path, actual)
        if record_file is not None:
            _write_record(record_file, target, stat, actual)
        return None
    if record_file is not None:
        record_file.unlink(missing_ok=True)
    return _Actual(size=stat.st_size, sha256=actual)


# Verification records live in huggingface_hub's *assets* cache, by default
# ``$HF_HOME/assets/edgesam/verified/sha256/`` (``cached_assets_path``), one small JSON
# file per verified file, named by a hash of the file's resolved (blob) path.
# Why there rather than in the hub cache: the assets cache is huggingface_hub's documented
# place for data a library derives from Hub files; a foreign folder in the hub cache is
# reported as a corrupted repository by ``scan_cache_dir`` (``hf cache ls``), and files
# written beside the blobs would fail on read-only (shared) hub caches. A record is trusted
# only while the file's size, mtime_ns and inode are the recorded ones, so a replaced,
# rewritten or re-downloaded file is hashed again, and a stale record (its blob removed by
# ``hf cache rm``) matches nothing.


def _record_file(target: Path) -> Path | None:
    try:
        folder = cached_assets_path(
            "edgesam",
            namespace="verified",
            subfolder="sha256",
            assets_dir=hf_constants.HF_ASSETS_CACHE,
        )
    except (OSError, ValueError) as err:
        logger.debug("no verification records (%s): files are hashed on every load", err)
        return None
    key = hashlib.sha256(os.fsencode(target)).hexdigest()[:32]
    return Path(folder) / f"{key}.json"


def _stat_fields(target: Path, stat: os.stat_result) -> dict[str, Any]:
    return {
        "path": os.fspath(target),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
    }


def _record_matches(record_file: Path, target: Path, stat: os.stat_result, sha256: str) -> bool:
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record == {**_stat_fields(target, stat), "sha256": sha256}


def _write_record(record_file: Path, target: Path, stat: os.stat_result, sha256: str) -> None:
    record = {**_stat_fields(target, stat), "sha256": sha256}
    try:
        write_bytes_atomic(record_file, json.dumps(record).encode("utf-8"))
    except (OSError, InvalidInputError) as err:
        logger.debug("could not write verification record %s: %s", record_file, err)


def _evict(snapshot_path: Path) -> list[Path]:
    """Remove a cached file: its snapshot link and the blob it points to.

    Both must go: ``hf_hub_download`` returns an existing snapshot link without
    downloading, and re-links an existing blob whose name matches the server's
    ETag. (Without symlinks, huggingface_hub moves a new blob to the snapshot
    path itself, and the two paths are the same.)
    """
    removed: list[Path] = []
    for candidate in dict.fromkeys([snapshot_path, snapshot_path.resolve()]):
        try:
            candidate.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            logger.warning("could not remove %s from the cache: %s", candidate, err)
            continue
        removed.append(candidate)
    return removed


# -- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """What was asked, to explain a failure."""

    model: ModelSpec
    file: FileSpec
    revision: str | None
    cache_dir: PathLike | None
    endpoint_arg: str | None
    local_files_only: bool
    force_download: bool = False

    @property
    def endpoint(self) -> str:
        return (self.endpoint_arg or hf_constants.ENDPOINT).rstrip("/")

    @property
    def source(self) -> str:
        return (
            f"{self.model.repo_type} {self.model.repo_id} "
            f"(revision {self.revision or 'main'}, endpoint {self.endpoint})"
        )

    @property
    def cache(self) -> str:
        return (
            os.fspath(self.cache_dir) if self.cache_dir is not None else hf_constants.HF_HUB_CACHE
        )

    @property
    def url(self) -> str:
        try:
            return hf_hub_url(
                self.model.repo_id,
                self.file.path,
                repo_type=self.model.repo_type,
                revision=self.revision,
                endpoint=self.endpoint_arg,
            )
        except ValueError:
            return f"{self.endpoint} ({self.model.repo_type} {self.model.repo_id})"

    @property
    def what(self) -> str:
        return f"{self.file.path} of model {self.model.name!r}"

    @property
    def no_fallback(self) -> str:
        """Why no cached copy was used instead."""
        if self.force_download:
            return "force_download=True, so no cached copy was used"
        return f"it is not in the cache ({self.cache})"


class _DeadlinePassed(Exception):
    """A download ran past ``EDGESAM_DOWNLOAD_TIMEOUT``."""


class _Abandoned(Exception):
    """Raised inside an abandoned download's thread to stop it at its next chunk."""


def _abortable_progress(abandoned: threading.Event) -> type[hf_tqdm]:
    """huggingface_hub's progress bar, which stops the download once ``abandoned`` is set."""

    class _AbortableProgress(hf_tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            if abandoned.is_set():
                raise _Abandoned("the download ran past its deadline")
            result: bool | None = super().update(n)
            return result

    return _AbortableProgress


def _download_within(deadline: float | None, *args: Any, **kwargs: Any) -> str:
    """``hf_hub_download(*args, **kwargs)``, given up after ``deadline`` seconds in all.

    The download runs in a daemon thread that the caller waits for. Past the
    deadline the caller gets :class:`_DeadlinePassed` at once; the thread is
    told to stop and does so at its next chunk (or when the connection's own
    read timeout fires), leaving huggingface_hub's ``.incomplete`` file for a
    later call to resume. Nothing is ever written to the final cache path
    unless the whole file arrived.
    """
    if deadline is None:
        path: str = hf_hub_download(*args, **kwargs)
        return path
    abandoned = threading.Event()
    outcome: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            outcome.append(
                (True, hf_hub_download(*args, tqdm_class=_abortable_progress(abandoned), **kwargs))
            )
        except BaseException as err:  # handed to the caller's thread below
            outcome.append((False, err))

    worker = threading.Thread(target=work, name="edgesam-download", daemon=True)
    worker.start()
    try:
        worker.join(deadline)
    except BaseException:
        abandoned.set()
        raise
    if worker.is_alive() or not outcome:
        abandoned.set()
        raise _DeadlinePassed
    succeeded, value = outcome[0]
    if succeeded:
        return str(value)
    raise value


_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file is larger than the file system or this process's file-size limit allow",
    errno.EROFS: "the file system is read-only",
    getattr(errno, "EDQUOT", errno.ENOSPC): "the disk quota is used up",
}


def _disk_error(err: BaseException) -> OSError | None:
    """The OSError behind ``err`` that says the disk refused a write, if any."""
    seen: BaseException | None = err
    for _ in range(6):  # the error, and a few levels of its causes
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in _DISK_ERRNOS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _translate_hub_error(err: Exception, request: _Request) -> WeightsError | None:
    """Our exception for one that ``hf_hub_download`` raised, or None to let it through."""
    disk = _disk_error(err)
    if disk is not None:
        return WeightsError(
            f"cannot store {request.what} in the cache at {request.cache}: "
            f"{_DISK_ERRNOS[disk.errno]} ({disk.strerror or disk}). This is not a network "
            "problem. To fix: free space (or lift the limit) there, or point HF_HUB_CACHE "
            "(or cache_dir=) at a writable folder on a disk with room"
        )
    if isinstance(err, LocalEntryNotFoundError):
        # Raised when nothing usable is cached and the Hub was not asked (local_files_only,
        # HF_HUB_OFFLINE) or could not answer; the reason, if any, is its __cause__.
        cause = err.__cause__
        if request.local_files_only or cause is None or isinstance(cause, OfflineModeIsEnabled):
            return _not_cached(request)
        return _unreachable(cause, request)
    if isinstance(err, HfHubHTTPError):
        return _http_failure(err, request)
    if isinstance(err, PermissionError):
        return WeightsError(
            f"cannot store {request.what} in the cache at {request.cache} ({err}). To fix: "
            "make that folder writable, or point HF_HUB_CACHE (or cache_dir=) at a writable one"
        )
    if isinstance(err, ValueError) and err.__cause__ is not None:
        # force_download=True when the Hub cannot be asked: huggingface_hub raises ValueError
        # "from" the reason.
        if isinstance(err.__cause__, OfflineModeIsEnabled):
            return DownloadError(
                f"cannot download {request.what}: force_download=True needs the network, but "
                "offline mode is on (HF_HUB_OFFLINE=1). To fix: unset HF_HUB_OFFLINE, or drop "
                "force_download to use the cached file"
            )
        return _unreachable(err.__cause__, request)
    if isinstance(err, OSError) or _is_transport_error(err):
        return _unreachable(err, request)
    return None


def _not_cached(request: _Request) -> WeightsNotFoundError:
    if request.local_files_only:
        reason = "local_files_only=True forbids downloading it"
    elif getattr(hf_constants, "HF_HUB_OFFLINE", False):
        reason = "offline mode (HF_HUB_OFFLINE=1) forbids downloading it"
    else:
        reason = "the Hub could not be asked for it"
    return WeightsNotFoundError(
        f"{request.what} is not in the Hugging Face cache ({request.cache}) and {reason}. "
        f"To fix: run once with network access (local_files_only=False, HF_HUB_OFFLINE unset) "
        f"so it is downloaded and cached; or run `edgesam download {request.model.name}` where "
        "the Hub can be reached and copy that cache here (HF_HUB_CACHE or cache_dir=); "
        f"{_LOCAL_ALTERNATIVE}"
    )


def _offline(reason: str, request: _Request) -> DownloadError:
    return DownloadError(
        f"cannot download {request.what}: {reason} (endpoint {request.endpoint}), and "
        f"{request.no_fallback}. To work offline: download once where the Hub can be reached "
        f"(`edgesam download {request.model.name}`) and set HF_HUB_OFFLINE=1, "
        f"{_LOCAL_ALTERNATIVE}; otherwise check your network, proxy and HF_ENDPOINT / endpoint="
    )


def _http_failure(err: HfHubHTTPError, request: _Request) -> DownloadError:
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    url = str(getattr(response, "url", None) or request.url)
    head = f"cannot download {request.what}: HTTP {status} from {url}"
    repo = f"{request.model.repo_type} {request.model.repo_id}"
    if isinstance(err, RevisionNotFoundError):
        fix = (
            f"revision {request.revision!r} does not exist in {repo}. To fix: pass an existing "
            "branch, tag or commit hash as revision= (None means 'main')"
        )
    elif isinstance(err, EntryNotFoundError):
        fix = (
            f"{repo} has no file {request.file.path!r} at revision "
            f"{request.revision or 'main'}. To fix: use the default revision, check that the "
            f"mirror at {request.endpoint} (HF_ENDPOINT / endpoint=) has the file, or update "
            "edgesam if the authors moved their files"
        )
    elif isinstance(err, (RepositoryNotFoundError, GatedRepoError)) or status in (401, 403):
        fix = (
            f"{repo} was not found at {request.endpoint}, or needs authorisation. To fix: check "
            "HF_ENDPOINT / endpoint= (a mirror must serve this repository), and for a private "
            "mirror pass token= or set HF_TOKEN"
        )
    else:
        fix = (
            f"the server at {request.endpoint} failed, and {request.no_fallback}. To fix: try "
            "again later; check your network, proxy and HF_ENDPOINT / endpoint=; "
            f"{_LOCAL_ALTERNATIVE}"
        )
    return DownloadError(f"{head}: {fix}")


def _unreachable(cause: BaseException, request: _Request) -> WeightsError:
    if isinstance(cause, HfHubHTTPError):
        return _http_failure(cause, request)
    detail = str(cause).strip() or type(cause).__name__
    return DownloadError(
        f"cannot download {request.what} from {request.url} ({detail}), and "
        f"{request.no_fallback}. To fix: check your network, proxy and HF_ENDPOINT / "
        f"endpoint= ({request.endpoint}); to work offline, download once with network access "
        f"(`edgesam download {request.model.name}`); {_LOCAL_ALTERNATIVE}"
    )


def _is_transport_error(err: BaseException) -> bool:
    return any(
        cls.__module__.partition(".")[0] in _HTTP_CLIENT_PACKAGES for cls in type(err).__mro__
    )
