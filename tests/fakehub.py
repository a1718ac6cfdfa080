"""A fake Hugging Face Hub on 127.0.0.1 for fault tests of `cam.hub` and `cam.loading`.

It answers ``HEAD``/``GET /{repo_id}/resolve/{revision}/{path}`` the way ``huggingface_hub`` 2.4.0 needs
(``X-Repo-Commit`` with 40 hex digits, ``ETag``, ``Content-Length``; no ``X-Xet-Hash``, so the client uses
plain HTTP) and can misbehave in one of `MODES`. `serving` points the client at it: ``HF_ENDPOINT`` is read
when huggingface_hub is imported, so the module constants the client reads at call time are patched:
``ENDPOINT`` and ``HUGGINGFACE_CO_URL_TEMPLATE`` (used by ``hf_hub_url``), ``HF_HUB_OFFLINE`` (checked by
the request hook) and ``HF_HUB_CACHE`` (the default cache folder).
"""

from __future__ import annotations

import builtins
import hashlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants

import cam.loading
from cam.hub import FILENAME, REPO_ID
from tests.conftest import make_state_dict

MODES = (
    "ok",  # serves the good checkpoint
    "refuse",  # the endpoint is a port that refuses connections
    "500",  # HEAD and GET answer HTTP 500
    "404",  # the file does not exist at this revision
    "hang_head",  # HEAD never answers
    "hang_body",  # GET sends its headers, never the body
    "truncated",  # GET announces the full length, sends half and closes the connection
    "short",  # GET announces and sends half of the file (HEAD announced the full size)
    "html",  # an HTML page instead of weights (its ETag matches it: only the content check catches it)
    "wrong_keys",  # a state dict with renamed keys
    "wrong_shapes",  # a state dict with 5 classes instead of 4
    "pickle",  # a pickle whose __reduce__ would create the marker file
    "sha_mismatch",  # the good file, but the ETag announces another sha256
)
HANG_MODES = ("hang_head", "hang_body")
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Captive portal</body></html>\n"


def _torch_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class Payload:
    """Creates ``marker`` when unpickled without ``weights_only=True``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (builtins.open, (self.marker, "w"))


def good_bytes() -> bytes:
    """The checkpoint the fake Hub serves: seed 1, distinct from the bundled fixture (seed 0)."""
    return _torch_bytes(make_state_dict(1))


def malicious_bytes(marker: Path) -> bytes:
    state: dict[str, object] = dict(make_state_dict(1))
    state["fc.1.bias"] = Payload(marker)
    return _torch_bytes(state)


def wrong_keys_bytes() -> bytes:
    return _torch_bytes({k.replace("conv_layers", "features"): v for k, v in make_state_dict(1).items()})


def wrong_shapes_bytes() -> bytes:
    state = make_state_dict(1)
    state["fc.1.weight"] = torch.zeros(5, 64)
    state["fc.1.bias"] = torch.zeros(5)
    return _torch_bytes(state)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeHub:
    """The fake Hub server. ``mode`` may be changed while it runs (use `set_mode` under `serving`)."""

    def __init__(self, marker: Path, mode: str = "ok") -> None:
        self.marker = marker
        self.mode = mode
        self.commit = hashlib.sha1(b"fake commit 1").hexdigest()  # 40 hex digits
        self.good = good_bytes()
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.log: list[str] = []  # one line per request with the mode it met, for failure messages
        self.release = threading.Event()  # set on stop: hanging handlers return
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        # A bound socket that never listens: connecting to its port is refused at once, and holding it keeps
        # the port from being reused by anything else during the test.
        self._refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refusing.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._monkeypatch: pytest.MonkeyPatch | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def refused_url(self) -> str:
        return f"http://127.0.0.1:{self._refusing.getsockname()[1]}"

    @property
    def endpoint(self) -> str:
        return self.refused_url if self.mode == "refuse" else self.url

    def body_and_etag(self, mode: str | None = None) -> tuple[bytes, str]:
        """What GET serves in ``mode`` (default: the current one) and the ETag HEAD announces for it."""
        mode = self.mode if mode is None else mode
        body = {
            "html": lambda: HTML,
            "wrong_keys": wrong_keys_bytes,
            "wrong_shapes": wrong_shapes_bytes,
            "pickle": lambda: malicious_bytes(self.marker),
        }.get(mode, lambda: self.good)()
        etag = sha256(b"not the served file") if mode == "sha_mismatch" else sha256(body)
        return body, etag

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._refusing.close()

    def set_mode(self, mode: str) -> None:
        """Switch the misbehaviour; re-points the client when the endpoint changes (``refuse``)."""
        assert mode in MODES, mode
        self.mode = mode
        if self._monkeypatch is not None:
            point_client_at(self._monkeypatch, self.endpoint)

    def gets(self) -> int:
        return sum(1 for method, _ in self.requests if method == "GET")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        hub: FakeHub = self.server.hub  # type: ignore[attr-defined]
        mode = hub.mode  # read once: a test may switch modes while this request is being answered
        hub.requests.append((self.command, self.path))
        hub.log.append(f"{time.monotonic():.3f} {self.command} mode={mode} range={self.headers.get('Range')}")
        prefix = f"/{REPO_ID}/resolve/"
        revision, _, filename = self.path.removeprefix(prefix).partition("/")
        if not self.path.startswith(prefix) or filename != FILENAME:
            return self._empty(404, {"X-Error-Code": "RepoNotFound"})
        if revision not in ("main", hub.commit):
            return self._empty(404, {"X-Error-Code": "RevisionNotFound"})
        if mode == "500":
            return self._empty(500, {})
        if mode == "404":
            return self._empty(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": hub.commit})
        if mode == "hang_head" and head:
            hub.release.wait(60)
            self.close_connection = True
            return None
        body, etag = hub.body_and_etag(mode)
        length = len(body) // 2 if mode == "short" and not head else len(body)
        self.send_response(200)
        self.send_header("X-Repo-Commit", hub.commit)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", "text/html" if mode == "html" else "application/octet-stream")
        self.end_headers()
        if head:
            return None
        if mode == "hang_body":
            self.wfile.flush()
            hub.release.wait(60)
            self.close_connection = True
            return None
        if mode == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True  # closes before Content-Length bytes arrived
            return None
        self.wfile.write(body[:length])
        return None

    def _empty(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()


def point_client_at(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")


@contextmanager
def serving(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bundled: Path, mode: str = "ok") -> Iterator[FakeHub]:
    """Run a fake Hub and point ``huggingface_hub`` and `cam.loading` at it and at a fresh cache.

    The bundled checkpoint is replaced by ``bundled`` (the real one may not exist yet), and the
    ``CAM_*`` and proxy variables are cleared so that only what a test sets applies.
    """
    hub = FakeHub(marker=tmp_path / "PAYLOAD_RAN", mode=mode).start()
    hub._monkeypatch = monkeypatch
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(cam.loading, "BUNDLED_CHECKPOINT", bundled)
    for name in (
        "CAM_MODEL",
        "CAM_HUB_TIMEOUT",
        "CAM_HUB_REVISION",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    point_client_at(monkeypatch, hub.endpoint)
    try:
        yield hub
    finally:
        hub.stop()


def cache_files(tmp_path: Path) -> list[Path]:
    """Every file (and link) under the test's Hugging Face cache, for asserting what was kept."""
    root = tmp_path / "hf-cache"
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()) if root.exists() else []
