"""`BodyLimit`: an ASGI middleware that refuses oversized request bodies while they stream in.

Neither Gradio 6.31 nor uvicorn caps a request body: a JSON body is read whole and parsed before any
handler runs (eight 150 MB bodies took the app from 2.5 to 5.7 GB), and one upload request could carry
1,000 files. This middleware sits in front of every route:

- a body whose ``Content-Length`` is over the limit is answered 413 at once, unread;
- otherwise the ``http.request`` messages are counted as they arrive (chunked bodies too) and the
  request is aborted with 413 when the count crosses the limit: the chunk that crosses it is never
  passed on, and the handler's own reply to the abort is replaced by ours;
- a multipart body may hold at most ``max_upload_files`` parts (counted by their delimiters, across
  chunk boundaries), on every route;
- a JSON body may hold at most ``max_json_commas`` commas: 14 MB of ``[],[],...`` costs +378 MB and
  2 s of event-loop time in ``json.loads`` (measured), while a real request (a few controls and at
  most one data URL, whose base64 holds no commas) has a few dozen;
- at most ``max_large_bodies`` JSON bodies over ``large_body_bytes`` stream in at once (others get
  503 and ``Retry-After``), so many clients sending 14 MB data URLs together cannot add up;
- ``closed_paths`` answer 404: Gradio's ``/gradio_api/process_recording`` runs ffmpeg, without a
  time limit, on any video anyone posts, and this app never records its screen; its
  ``/gradio_api/deep_link`` writes the session's whole page state (~200 KB here, ~60 ms of CPU) to a
  new file for every call whose state differs, never deleted (20 calls: 20 files, 4.2 MB), and this
  app's lesson links live in the URL instead (`explorer.links`).

A refused upload's partial file is removed: the abort is raised inside the body stream as a
Starlette `MultiPartException`, which Gradio's multipart parser catches to delete its temp files
(a client that disconnects mid-upload is turned into the same abort, for the same reason).

Normal requests pay a header scan and, per body chunk, a length and a ``bytes.count`` (C speed);
bodies are never copied.

Installing it with Gradio 6.31 (proved in tests/test_guard.py::test_gradio_launch_installs_guard):
``launch(app_kwargs=...)`` reaches the ``FastAPI`` constructor, and Gradio adds its own CORS and
Brotli middleware with ``add_middleware`` afterwards, which keeps ours::

    from explorer import guard

    demo.launch(..., ssr_mode=False, app_kwargs={"middleware": guard.middleware()})

``middleware(**limits)`` returns ``[starlette.middleware.Middleware(BodyLimit, **limits)]``; pass it
wherever a FastAPI app is built for the demo (``gr.mount_gradio_app(app, demo, "/", app_kwargs=...)``
too). Build the dict per launch: Gradio writes its lifespan handler into the ``app_kwargs`` it is
given, so a dict reused for a second launch nests the first app's handler inside the second's. Keep
``ssr_mode=False``: with SSR, Node fronts Python and ``GRADIO_NUM_WORKERS`` static-worker processes
may serve uploads, which do not pass through this middleware.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024
MAX_IMAGE_BYTES = 10 * MIB  # the app's max_file_size ("10mb" is 10 MiB in Gradio) and data-URL cap
# JSON bodies: a 10 MiB image as a base64 data URL is 4 * ceil(10 MiB / 3) = 13.33 MiB; 14 MiB leaves
# ~680 KB for the JSON around it (a few hundred bytes in practice) and nothing like a second image.
MAX_BODY_BYTES = 14 * MIB
# Files per upload request. The page's image input uploads one file per request, and gradio_client
# uploads each file in a request of its own (`Client._upload_file`): more than one is never needed.
# Raise it only together with an input that takes several files (`gr.File(file_count="multiple")`).
MAX_UPLOAD_FILES = 1
MULTIPART_ALLOWANCE_BYTES = 64 * 1024  # delimiters and part headers around the files
MAX_UPLOAD_BODY_BYTES = MAX_UPLOAD_FILES * MAX_IMAGE_BYTES + MULTIPART_ALLOWANCE_BYTES
MAX_JSON_COMMAS = 10_000  # bounds json.loads to ~10k values (<= ~1 MB of Python objects)
LARGE_BODY_BYTES = 1 * MIB  # a JSON body above this is "large": only a data URL makes one
MAX_LARGE_BODIES = 4  # large JSON bodies streaming in at once, all clients together
UPLOAD_PATHS = ("/gradio_api/upload",)  # matched as a suffix, so a mount under a prefix works too
CLOSED_PATHS = ("/gradio_api/process_recording", "/gradio_api/deep_link")
RETRY_AFTER_S = 5


def _mb(n: int) -> str:
    return f"{n / MIB:g} MB"


def limits() -> dict[str, int]:
    """The enforced limits under stable names (README's "Limits" section states these)."""
    return {
        "max_body_bytes": MAX_BODY_BYTES,
        "max_upload_body_bytes": MAX_UPLOAD_BODY_BYTES,
        "max_upload_files": MAX_UPLOAD_FILES,
        "max_image_bytes": MAX_IMAGE_BYTES,
        "max_json_commas": MAX_JSON_COMMAS,
        "large_body_bytes": LARGE_BODY_BYTES,
        "max_large_bodies": MAX_LARGE_BODIES,
    }


class BodyRefused(MultiPartException):
    """Raised inside the body stream to abort a request. A `MultiPartException`, because Gradio's
    multipart parser deletes its partial temp files only for that (and python-multipart's) errors."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of a header, as Starlette's `Headers.get` would read it."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class _Counter:
    """Counts multipart parts and JSON commas in a body, chunk by chunk, without copying it.

    A part opens at each delimiter ``--boundary`` that is not the closing ``--boundary--``. The
    delimiter is counted without the CRLF before it: python-multipart also accepts a first delimiter
    after any preamble that starts with a newline, and counting the shorter pattern can only find
    more delimiters than the parser, never fewer. Counts that straddle two chunks are found in a small
    window (the last bytes of one chunk and the first of the next).
    """

    def __init__(self, boundary: bytes | None, count_commas: bool) -> None:
        self.opener = b"--" + boundary if boundary else b""
        self.closer = self.opener + b"-"  # `--boundary-` is a closing delimiter or a parse error
        self.tail = b""  # the last len(closer) - 1 bytes of the body so far
        self.openers = 0
        self.closers = 0
        self.count_commas = count_commas
        self.commas = 0

    def feed(self, chunk: bytes) -> None:
        if self.count_commas:
            self.commas += chunk.count(b",")
        if not self.opener or not chunk:
            return
        self.openers += self._count(self.opener, chunk)
        self.closers += self._count(self.closer, chunk)
        keep = len(self.closer) - 1
        self.tail = (self.tail + chunk)[-keep:] if len(chunk) < keep else chunk[-keep:]

    def _count(self, pattern: bytes, chunk: bytes) -> int:
        # The window is shorter than two patterns and made of the ends of two pieces each shorter
        # than one, so every match in it straddles them and none is also counted in `chunk`.
        n = len(pattern) - 1
        window = self.tail[-n:] + chunk[:n]
        return chunk.count(pattern) + window.count(pattern)

    @property
    def parts(self) -> int:
        """Parts opened so far. A delimiter at the very end of the body so far may still become
        ``--boundary--`` with the next byte: it is left out until that byte arrives."""
        pending = 1 if self.opener and self.tail.endswith(self.opener) else 0
        return self.openers - self.closers - pending


class BodyLimit:
    """ASGI middleware: refuse request bodies over the limits, while they stream in, on every route.

    Args:
        app: the ASGI app to protect (Gradio's FastAPI app).
        max_body_bytes: any body, except on ``upload_paths``.
        max_upload_bytes: a body on ``upload_paths`` (Gradio's upload route).
        max_upload_files: parts of a multipart body, on every route.
        upload_paths: paths (matched as suffixes) that get ``max_upload_bytes``.
        max_json_commas: commas in a JSON (or untyped) body; ``None`` for no limit.
        large_body_bytes, max_large_bodies: at most this many JSON bodies over that size at once;
            ``max_large_bodies=None`` for no limit.
        closed_paths: paths (matched as suffixes) answered 404 whatever the method.
        max_image_bytes: only quoted in messages (the app's per-image limit).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_upload_bytes: int = MAX_UPLOAD_BODY_BYTES,
        max_upload_files: int = MAX_UPLOAD_FILES,
        upload_paths: Collection[str] = UPLOAD_PATHS,
        max_json_commas: int | None = MAX_JSON_COMMAS,
        large_body_bytes: int = LARGE_BODY_BYTES,
        max_large_bodies: int | None = MAX_LARGE_BODIES,
        closed_paths: Collection[str] = CLOSED_PATHS,
        max_image_bytes: int = MAX_IMAGE_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_files = max_upload_files
        self.upload_paths = tuple(p.rstrip("/") for p in upload_paths)
        self.max_json_commas = max_json_commas
        self.large_body_bytes = large_body_bytes
        self.max_large_bodies = max_large_bodies
        self.large_in_flight = 0  # one event loop: plain int, no lock needed
        self.closed_paths = tuple(p.rstrip("/") for p in closed_paths)
        self.max_image_bytes = max_image_bytes

    # -- messages --------------------------------------------------------------------------------

    def _too_large(self, upload: bool) -> str:
        if upload:
            return (  # the body limit is the image limit plus the multipart framing around it
                f"Upload over {_mb(self.max_image_bytes)}: this app accepts one image of up to "
                f"{_mb(self.max_image_bytes)} per upload. Send a smaller file (a photo of 1-2 MB is plenty: "
                "the model sees 256x256 pixels)."
            )
        return (
            f"Request body over {_mb(self.max_body_bytes)}: this app accepts images up to "
            f"{_mb(self.max_image_bytes)}. Send a smaller image, or upload it (in Python: "
            "gradio_client.handle_file(path)) instead of sending it inline."
        )

    def _too_many_files(self) -> str:
        n = self.max_upload_files
        return (
            f"Too many files in one upload request: this app takes at most {n} file{'s' if n != 1 else ''} "
            "per request. Upload one image per request."
        )

    def _too_many_values(self) -> str:
        return (
            f"Request body has over {self.max_json_commas:,} JSON values: this app's requests hold a few "
            "controls and at most one image. Send only the inputs the endpoint takes."
        )

    def _busy(self) -> str:
        return (
            f"The server is receiving {self.max_large_bodies} large requests already. Try again in a few "
            "seconds, or upload the image (gradio_client.handle_file(path)) instead of sending it inline."
        )

    # -- ASGI --------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).rstrip("/")
        if path.endswith(self.closed_paths):
            await _reply(send, 404, "This route is closed in this app.")
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        upload = path.endswith(self.upload_paths)
        limit = self.max_upload_bytes if upload else self.max_body_bytes

        declared = _header(headers, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = None  # uvicorn's HTTP parser refuses these first; let the app say so
            if length is not None and length > limit:
                await _reply(send, 413, self._too_large(upload), close=True)
                return
        else:
            length = None

        media_type, options = parse_options_header(_header(headers, b"content-type") or b"")
        multipart = media_type == b"multipart/form-data"
        boundary = options.get(b"boundary") if multipart else None
        # FastAPI parses a body as JSON when it says so or says nothing.
        json_like = not media_type or media_type.endswith(b"json")
        counter = _Counter(boundary, json_like and self.max_json_commas is not None)
        large = self.max_large_bodies is not None and json_like

        state = _State()
        if large and length is not None and length > self.large_body_bytes and not self._take_large(state):
            await _reply(send, 503, self._busy(), close=True, retry_after=True)
            return

        async def guarded_receive() -> Message:
            if state.refusal is not None:
                raise state.refusal
            message = await receive()
            if message["type"] == "http.disconnect":
                if state.body_open:
                    # Gradio's multipart parser deletes its partial temp files only for a MultiPartException.
                    state.refusal = BodyRefused(400, "The client disconnected before the request body was complete.")
                    state.client_gone = True
                    raise state.refusal
                return message
            if message["type"] != "http.request":
                return message
            chunk: bytes = message.get("body", b"")
            state.received += len(chunk)
            state.body_open = bool(message.get("more_body", False))
            refusal = self._check(state, counter, chunk, limit, upload, large)
            if refusal is not None:
                state.refusal = refusal
                raise refusal
            return message

        async def guarded_send(message: Message) -> None:
            if state.refusal is not None:
                return  # the handler's reply to our abort (a 400 or 500 of its own) is replaced
            if message["type"] == "http.response.start":
                state.response_started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if state.refusal is None:
                raise
        finally:
            self._release_large(state)
        refusal = state.refusal
        if refusal is not None and not state.response_started and not state.client_gone:
            await _reply(send, refusal.status, refusal.message, close=True, retry_after=refusal.status == 503)

    def _check(
        self, state: _State, counter: _Counter, chunk: bytes, limit: int, upload: bool, large: bool
    ) -> BodyRefused | None:
        if state.received > limit:
            return BodyRefused(413, self._too_large(upload))
        counter.feed(chunk)
        if counter.parts > self.max_upload_files:
            return BodyRefused(413, self._too_many_files())
        if self.max_json_commas is not None and counter.commas > self.max_json_commas:
            return BodyRefused(413, self._too_many_values())
        if large and state.received > self.large_body_bytes and not self._take_large(state):
            return BodyRefused(503, self._busy())
        return None

    def _take_large(self, state: _State) -> bool:
        if state.holds_large:
            return True
        if self.max_large_bodies is not None and self.large_in_flight >= self.max_large_bodies:
            return False
        self.large_in_flight += 1
        state.holds_large = True
        return True

    def _release_large(self, state: _State) -> None:
        if state.holds_large:
            self.large_in_flight -= 1
            state.holds_large = False


class _State:
    __slots__ = ("body_open", "client_gone", "holds_large", "received", "refusal", "response_started")

    def __init__(self) -> None:
        self.received = 0
        self.body_open = True  # until an http.request message without more_body
        self.refusal: BodyRefused | None = None
        self.response_started = False
        self.client_gone = False
        self.holds_large = False


async def _reply(send: Send, status: int, message: str, close: bool = False, retry_after: bool = False) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        # The rest of the body is not read: the connection cannot carry another request.
        headers.append((b"connection", b"close"))
    if retry_after:
        headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def middleware(**overrides: Any) -> list[Middleware]:
    """``app_kwargs={"middleware": middleware()}`` for `gradio.Blocks.launch` (see the module doc)."""
    return [Middleware(BodyLimit, **overrides)]


__all__ = [
    "CLOSED_PATHS",
    "MAX_BODY_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_JSON_COMMAS",
    "MAX_LARGE_BODIES",
    "MAX_UPLOAD_BODY_BYTES",
    "MAX_UPLOAD_FILES",
    "UPLOAD_PATHS",
    "BodyLimit",
    "BodyRefused",
    "limits",
    "middleware",
]
