"""The course checkpoint from the Hugging Face Hub: local cache first, else a download with a hard deadline.

Why not a bare ``hf_hub_download``: with no network it takes ~23 s to fail (retries), on a network that
hangs more than 300 s (its retries use a fixed 60 s timeout), stalled transfers raise raw HTTP-library
errors, and it checks only the size of what it downloaded. So this module

1. looks in the local cache first (``try_to_load_from_cache``, no network) and checks the cached file's
   sha256 against the blob's name, which is the Hub's ETag (the sha256 of an LFS file);
2. returns at once with ``HF_HUB_OFFLINE=1``;
3. otherwise runs, in a daemon thread the caller waits on for at most ``CAM_HUB_TIMEOUT`` seconds
   (default 8): a TCP connect to the endpoint (or proxy) so that a refused connection is reported in
   milliseconds, a HEAD request (so an HTTP error is reported without the client's retries), then
   ``hf_hub_download``;
4. compares the downloaded file's hash with the ETag the Hub announced and refuses a mismatch;
5. turns every failure into a `HubFetchError` whose message says what happened, why and what to do,
   and whose ``reason`` is a short phrase for the app's banner.

A file that fails any check is evicted (snapshot entry and blob) so that it cannot poison the next start.
The endpoint, cache folder and offline flag are read from ``huggingface_hub.constants`` at call time
(``HF_ENDPOINT``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are parsed there when the library is imported).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import (
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from cam.errors import HubError

log = logging.getLogger(__name__)

REPO_ID = "a-data-odyssey/XAI-for-CV-models"
FILENAME = "models/pot_plant_classifier_gap/model.pth"
DEFAULT_REVISION = "main"
DEFAULT_TIMEOUT_S = 8.0  # leaves ~2 s of the promised 10 s for loading the bundled model afterwards
PREFLIGHT_TIMEOUT_S = 3.0  # a TCP handshake that takes longer than this is a network that hangs
REVISION_ENV = "CAM_HUB_REVISION"
TIMEOUT_ENV = "CAM_HUB_TIMEOUT"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
_REVISION = re.compile(r"[A-Za-z0-9._\-/]{1,200}")
_SUGGEST = "Set CAM_MODEL=bundled for the demo model, or CAM_MODEL=/path/to/model.pth for a local copy."


class HubFetchError(HubError):
    """A `HubError` that also carries ``reason``, a short phrase such as
    "Hub unreachable (connection refused at huggingface.co:443)" for the app's banner."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class HubFile:
    """A Hub checkpoint on local disk whose hash matched what the Hub announced (when it announced one)."""

    path: Path  # the snapshot entry: <cache>/models--.../snapshots/<commit>/<filename>
    repo_id: str
    filename: str
    revision: str  # what was asked for ("main" or a pinned branch, tag or commit)
    commit: str | None  # the commit the file belongs to
    from_cache: bool  # True: found in the local cache; False: downloaded now
    etag: str | None = None  # the Hub's ETag: sha256 for an LFS file, git blob sha1 otherwise
    sha256: str | None = None
    size: int | None = None
    cache_dir: Path | None = None


class _Unreachable(Exception):
    """Raised in the download thread when the TCP preflight fails; ``str()`` is the short reason."""


# --------------------------------------------------------------------------------------------- settings


def revision() -> str:
    """The revision to serve: ``CAM_HUB_REVISION`` if set (a branch, tag or commit), else ``main``."""
    value = os.environ.get(REVISION_ENV, "").strip() or DEFAULT_REVISION
    if not _REVISION.fullmatch(value) or ".." in value.split("/"):
        raise HubFetchError(
            f"{REVISION_ENV}={value!r} is not a valid revision name. Set it to a branch, tag or 40-character "
            "commit hash of the model repository, or unset it to follow 'main'.",
            reason=f"invalid {REVISION_ENV}",
        )
    return value


def timeout_s() -> float:
    """The download deadline in seconds: ``CAM_HUB_TIMEOUT`` (integer or float), else 8."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (0 < value < 3600):  # also refuses nan and inf
        raise HubFetchError(
            f"{TIMEOUT_ENV}={raw!r} is not a usable number of seconds. Set it to a positive number such "
            f"as 8 or 2.5 (the default is {DEFAULT_TIMEOUT_S:g}), or unset it.",
            reason=f"invalid {TIMEOUT_ENV}={raw!r}",
        )
    return value


def cache_dir() -> Path:
    """The Hugging Face cache folder in use (``HF_HUB_CACHE``, read by the library at import)."""
    return Path(constants.HF_HUB_CACHE).expanduser()


def _storage_folder(cache: Path) -> Path:
    return cache / ("models--" + REPO_ID.replace("/", "--"))


# ------------------------------------------------------------------------------------------------ fetch


def fetch(*, use_cache: bool = True, timeout: float | None = None) -> HubFile:
    """The course checkpoint, verified, from the local cache or else downloaded within ``timeout`` seconds.

    Raises `HubFetchError` (a `HubError`) on any failure, at the latest ``timeout`` seconds (default:
    ``CAM_HUB_TIMEOUT`` or 8) after the download started. A cached or downloaded file whose hash does not
    match the Hub's ETag is evicted first. The checkpoint's contents are validated by the caller
    (`cam.checkpoint.read_checkpoint`), which should `evict` a file it refuses.
    """
    rev = revision()
    cache = cache_dir()
    note = ""
    if use_cache:
        try:
            hit = cached(rev, cache)
        except HubFetchError as exc:  # a corrupt cached copy, already evicted: go on to the Hub
            log.warning("%s", exc)
            hit, note = None, f"the cached copy was corrupt and was removed ({exc.reason}); "
        if hit is not None:
            return hit
    if constants.HF_HUB_OFFLINE:
        raise HubFetchError(
            f"The course checkpoint {REPO_ID}/{FILENAME}@{rev} is not in the local Hugging Face cache "
            f"({cache}) and Hub access is switched off (HF_HUB_OFFLINE=1), so it was not downloaded. "
            f"Unset HF_HUB_OFFLINE to download it. {_SUGGEST}",
            reason=f"{note}Hub access is off (HF_HUB_OFFLINE=1) and the course checkpoint is not cached",
        )
    deadline = timeout_s() if timeout is None else timeout
    try:
        return _download_with_deadline(rev, cache, deadline)
    except HubFetchError as exc:
        if note:
            exc.reason = note + exc.reason
        raise


def cached(rev: str | None = None, cache: Path | None = None) -> HubFile | None:
    """The verified checkpoint from the local cache, or None when it is not there (never touches the network).

    Raises `HubFetchError` when the cached file's hash does not match its ETag; the file is evicted first.
    """
    rev = revision() if rev is None else rev
    cache = cache_dir() if cache is None else cache
    found = try_to_load_from_cache(REPO_ID, FILENAME, cache_dir=str(cache), revision=rev)
    if not isinstance(found, str):  # None, or the library's "known not to exist" marker: ask the Hub instead
        return None
    return _verified(Path(found), rev, cache, from_cache=True, announced_etag=None)


def _download_with_deadline(rev: str, cache: Path, deadline: float) -> HubFile:
    endpoint = constants.ENDPOINT.rstrip("/")
    results: list[tuple[str, str | None]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            results.append(_download(endpoint, rev, cache, deadline))
        except BaseException as exc:  # reported to the waiting caller, never raised in the thread
            errors.append(exc)
        finally:
            done.set()

    # A daemon thread: if the network hangs, the caller leaves at the deadline and the process can still
    # exit; the thread ends on its own when the library's timeouts fire.
    threading.Thread(target=work, name="cam-hub-download", daemon=True).start()
    if not done.wait(deadline):
        raise HubFetchError(
            f"The Hugging Face Hub ({endpoint}) did not deliver {REPO_ID}/{FILENAME}@{rev} within "
            f"{deadline:g} s: the network or the Hub hangs. Check the connection, raise {TIMEOUT_ENV} "
            f"for a slow link, or pre-download the file into the cache. {_SUGGEST}",
            reason=f"Hub did not deliver the checkpoint within {deadline:g} s",
        )
    if errors:
        raise _explain(errors[0], endpoint, rev) from errors[0]
    path, announced = results[0]
    return _verified(Path(path), rev, cache, from_cache=False, announced_etag=announced)


def _download(endpoint: str, rev: str, cache: Path, deadline: float) -> tuple[str, str | None]:
    """Runs in the download thread: preflight, HEAD, download. Returns (snapshot path, announced ETag)."""
    # At most half the deadline: a handshake that never completes is then reported by the preflight
    # ("no answer from host:port"), not in a race with the deadline.
    _preflight(endpoint, min(PREFLIGHT_TIMEOUT_S, deadline / 2))
    # One HEAD without retries first: an HTTP error (500, 404) is reported now rather than after the
    # download's backoff (23 s). It also gives the announced ETag when the cache cannot store symlinks.
    url = hf_hub_url(REPO_ID, FILENAME, revision=rev, endpoint=endpoint)
    meta = get_hf_file_metadata(url, timeout=deadline, endpoint=endpoint)
    if meta.commit_hash is None or meta.etag is None:
        raise FileMetadataError(f"{url} answered without the X-Repo-Commit or ETag header")
    path = hf_hub_download(
        REPO_ID, FILENAME, revision=rev, cache_dir=str(cache), endpoint=endpoint, etag_timeout=deadline
    )
    return str(path), meta.etag


def _preflight(endpoint: str, timeout: float) -> None:
    """Open and close a TCP connection to the endpoint (or to the proxy that would carry the request)."""
    host, port, via = _connect_target(endpoint)
    where = f"{host}:{port}" + (" (proxy)" if via else "")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError as exc:
        raise _Unreachable(f"connection refused at {where}") from exc
    except socket.gaierror as exc:
        raise _Unreachable(f"cannot resolve {host}") from exc
    except TimeoutError as exc:
        raise _Unreachable(f"no answer from {where} within {timeout:g} s") from exc
    except OSError as exc:
        raise _Unreachable(f"{(exc.strerror or str(exc)).lower()} at {where}") from exc


def _connect_target(endpoint: str) -> tuple[str, int, bool]:
    """(host, port, via_proxy) that the HTTP client will connect to for ``endpoint``."""
    parts = urlsplit(endpoint)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]
        p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        if p.hostname:
            return p.hostname, p.port or (443 if p.scheme == "https" else 80), True
    return host, port, False


# ---------------------------------------------------------------------------------- verify and evict


def _verified(path: Path, rev: str, cache: Path, *, from_cache: bool, announced_etag: str | None) -> HubFile:
    """Hash the file and compare with its ETag: the blob's name in the cache, else what the HEAD announced."""
    blob = _blob_of(path)
    etag = blob.name if blob is not None else announced_etag
    hub_file = HubFile(
        path=path,
        repo_id=REPO_ID,
        filename=FILENAME,
        revision=rev,
        commit=_commit_of(path, cache),
        from_cache=from_cache,
        etag=etag,
        cache_dir=cache,
    )
    try:
        data = path.read_bytes()
    except OSError as exc:
        evict(hub_file)
        where = "cached" if from_cache else "downloaded"
        raise HubFetchError(
            f"The {where} course checkpoint {path} cannot be read ({exc.strerror or exc}); it was removed "
            "from the cache. Check the cache folder's permissions and disk, then start again.",
            reason=f"the {where} Hub checkpoint cannot be read",
        ) from exc
    sha = hashlib.sha256(data).hexdigest()
    problem = _etag_mismatch(data, sha, etag)
    if problem is not None:
        evict(hub_file)
        where = "cached" if from_cache else "downloaded"
        raise HubFetchError(
            f"The {where} course checkpoint does not match the checksum the Hub announced ({problem}): "
            "the file was corrupted in transfer or on disk, or something between here and the Hub altered "
            f"it. It was refused and removed from the cache ({cache}). Start again to download a fresh copy. "
            f"{_SUGGEST}",
            reason=f"the {where} Hub checkpoint failed its sha256 check",
        )
    if etag is None or not (_SHA256.fullmatch(etag) or _GIT_SHA1.fullmatch(etag)):
        log.warning("%s: ETag %r is not a sha256 or git sha1; hash not verified", path, etag)
    return HubFile(
        path=path,
        repo_id=REPO_ID,
        filename=FILENAME,
        revision=rev,
        commit=hub_file.commit,
        from_cache=from_cache,
        etag=etag,
        sha256=sha,
        size=len(data),
        cache_dir=cache,
    )


def _etag_mismatch(data: bytes, sha256: str, etag: str | None) -> str | None:
    """A description of the mismatch, or None when the hash matches (or the ETag is not a hash)."""
    if etag is None:
        return None
    etag = etag.lower()
    if _SHA256.fullmatch(etag):  # an LFS file: the ETag is the sha256 of its content
        return None if sha256 == etag else f"sha256 {sha256[:12]}…, Hub says {etag[:12]}…"
    if _GIT_SHA1.fullmatch(etag):  # a small file stored in git: the ETag is the git blob id
        git = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
        return None if git == etag else f"git blob id {git[:12]}…, Hub says {etag[:12]}…"
    return None


def _blob_of(path: Path) -> Path | None:
    """The blob a snapshot entry links to (its name is the ETag), or None if the entry is a plain file."""
    if not path.is_symlink():
        return None
    try:
        return Path(os.path.realpath(path))
    except OSError:
        return None


def _commit_of(path: Path, cache: Path) -> str | None:
    try:
        rel = path.relative_to(_storage_folder(cache) / "snapshots")
    except ValueError:
        return None
    return rel.parts[0] if rel.parts else None


def evict(hub_file: HubFile) -> None:
    """Remove a refused file from the cache: its snapshot entry and the blob it links to.

    Only paths inside this repository's cache folder are removed. The ``refs`` pointer is kept: with the
    snapshot entry gone the cache lookup misses, and the next start downloads the file again.
    """
    cache = hub_file.cache_dir or cache_dir()
    storage = Path(os.path.realpath(_storage_folder(cache)))
    targets: list[Path] = []
    blob = _blob_of(hub_file.path)
    if blob is not None:
        targets.append(blob)
    if hub_file.etag:
        targets.append(storage / "blobs" / hub_file.etag)
    for target in (*targets, hub_file.path):
        try:
            resolved = Path(os.path.realpath(target.parent)) / target.name
            if storage not in resolved.parents:
                log.warning("not evicting %s: outside the cache folder %s", target, storage)
                continue
            resolved.unlink(missing_ok=True)
        except OSError as exc:  # eviction is best effort; the next start re-validates anyway
            log.warning("could not remove %s from the cache: %s", target, exc)


# ------------------------------------------------------------------------------------------ messages


def _explain(exc: BaseException, endpoint: str, rev: str) -> HubFetchError:
    """Turn whatever the download raised into a `HubFetchError` that says what, why and what to do."""
    what = f"{REPO_ID}/{FILENAME}@{rev}"
    if isinstance(exc, _Unreachable):
        return HubFetchError(
            f"Could not reach the Hugging Face Hub ({endpoint}) to download {what}: {exc}. This machine is "
            f"offline, or a firewall or proxy blocks it. Check the network and proxy settings. {_SUGGEST}",
            reason=f"Hub unreachable ({exc})",
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return HubFetchError(
            f"Hub access is switched off (HF_HUB_OFFLINE=1), so {what} was not downloaded. Unset "
            f"HF_HUB_OFFLINE to download it. {_SUGGEST}",
            reason="Hub access is off (HF_HUB_OFFLINE=1)",
        )
    if isinstance(exc, RevisionNotFoundError):
        return HubFetchError(
            f"The Hub has no revision {rev!r} of {REPO_ID}. Set {REVISION_ENV} to an existing branch, tag or "
            f"commit, or unset it to follow 'main'. {_SUGGEST}",
            reason=f"revision {rev!r} not found on the Hub",
        )
    if isinstance(exc, (RepositoryNotFoundError, GatedRepoError)):
        return HubFetchError(
            f"The Hub repository {REPO_ID} was not found or is not accessible (HTTP {_status(exc)}): it may "
            f"have been renamed, deleted or made private. {_SUGGEST}",
            reason=f"Hub repository not found (HTTP {_status(exc)})",
        )
    status = _status(exc)
    if status == 404:
        return HubFetchError(
            f"The Hub repository {REPO_ID} has no file {FILENAME} at revision {rev!r} (HTTP 404): it may "
            f"have been moved or renamed. Pin a revision that has it with {REVISION_ENV}. {_SUGGEST}",
            reason=f"checkpoint not found on the Hub (HTTP 404 for {FILENAME}@{rev})",
        )
    if isinstance(exc, HfHubHTTPError) and status is not None:
        return HubFetchError(
            f"The Hugging Face Hub answered HTTP {status} for {what}: the Hub or a proxy in between has a "
            f"problem. Try again later. {_SUGGEST}",
            reason=f"Hub error (HTTP {status})",
        )
    if isinstance(exc, FileMetadataError):
        return HubFetchError(
            f"{endpoint} answered like a web server but not like the Hugging Face Hub (no X-Repo-Commit or "
            "ETag header): HF_ENDPOINT points elsewhere, or a proxy or captive portal intercepted the "
            f"request. Check HF_ENDPOINT and the proxy settings. {_SUGGEST}",
            reason=f"{urlsplit(endpoint).hostname} does not answer like the Hub",
        )
    names = {cls.__name__ for cls in type(exc).__mro__}
    detail = f"{type(exc).__name__}: {_first_line(exc)}"
    if any("Timeout" in n for n in names):
        return HubFetchError(
            f"The download of {what} from {endpoint} stalled ({detail}): the network or the Hub is too slow "
            f"or hangs. Try again, or raise {TIMEOUT_ENV} for a slow link. {_SUGGEST}",
            reason="Hub download stalled",
        )
    if names & {"ConnectError", "ConnectionError"}:
        return HubFetchError(
            f"Could not connect to the Hugging Face Hub ({endpoint}) for {what} ({detail}). Check the "
            f"network and proxy settings. {_SUGGEST}",
            reason=f"Hub unreachable ({_first_line(exc)[:80]})",
        )
    if names & {"RemoteProtocolError", "ProtocolError", "ChunkedEncodingError", "IncompleteRead"}:
        return HubFetchError(
            f"The connection dropped while downloading {what} from {endpoint} ({detail}); nothing was kept "
            f"in the cache. Try again. {_SUGGEST}",
            reason="Hub download interrupted",
        )
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return HubFetchError(
            f"The download of {what} from {endpoint} arrived incomplete (its size differs from what the Hub "
            f"announced); nothing was kept in the cache. Try again. {_SUGGEST}",
            reason="Hub download arrived incomplete",
        )
    if exc.__cause__ is not None and exc.__cause__ is not exc:  # LocalEntryNotFoundError wraps the cause
        return _explain(exc.__cause__, endpoint, rev)
    return HubFetchError(
        f"Downloading {what} from {endpoint} failed ({detail}). Try again; if it persists, check the "
        f"network and the Hub's status. {_SUGGEST}",
        reason=f"Hub download failed ({type(exc).__name__})",
    )


def _status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""
