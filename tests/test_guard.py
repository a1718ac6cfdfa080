"""`explorer.guard.BodyLimit`: bodies refused while they stream in, driven over ASGI and over sockets.

Most tests call the middleware directly with hand-made ASGI messages, so they can count how many
body chunks were pulled from the client and how many reached the app. A few run it under uvicorn
(the server Gradio uses) on 127.0.0.1, and one launches a Gradio app the way app.py does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from python_multipart.multipart import MultipartParser
from starlette.types import Message, Receive, Scope, Send

from cam.errors import CamError, ImageError
from explorer import guard
from explorer.guard import BodyLimit, BodyRefused, _Counter
from explorer.trusted import (
    UNTRUSTED_PATH_MESSAGE,
    DataUrlError,
    UntrustedPathError,
    decode_data_url,
    encoded_length_limit,
    trusted_image_path,
)

MIB = 1024 * 1024
LIMIT = guard.MAX_BODY_BYTES
UPLOAD_LIMIT = guard.MAX_UPLOAD_BODY_BYTES
BOUNDARY = b"----cam-test-boundary-7f3a"


# -- a tiny ASGI app and a driver --------------------------------------------------------------


class Echo:
    """Reads the whole body, answers 200 with its length; remembers what it was given."""

    def __init__(self, respond_on_error: bool = True) -> None:
        self.calls = 0
        self.received = 0
        self.messages: list[Message] = []
        self.respond_on_error = respond_on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if scope["type"] != "http":
            return
        try:
            while True:
                message = await receive()
                self.messages.append(message)
                self.received += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except Exception:
            if not self.respond_on_error:
                raise
            # What FastAPI does when reading the body fails: its own 400.
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b'{"detail":"There was an error parsing the body"}'})
            return
        body = str(self.received).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", b"1")]})
        await send({"type": "http.response.body", "body": body})


class Result:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.pulled = 0  # body messages the middleware took from the client

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))
        return body


def http_scope(path: str = "/gradio_api/queue/join", headers: dict[str, str] | None = None) -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": path, "headers": raw, "client": ("127.0.0.1", 5000)}


def drive(app: Any, scope: dict[str, Any], chunks: list[bytes], disconnect_after: bool = False) -> Result:
    """Run one request through ``app``: the body arrives as ``chunks`` (the last without more_body)."""
    result = Result()
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    if not messages:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]
    if disconnect_after:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        if result.pulled < len(messages):
            result.pulled += 1
            return messages[result.pulled - 1]
        await asyncio.sleep(3600)  # a client that sends nothing more
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        result.sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=30))
    return result


def split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def multipart(n_files: int, size: int = 10, boundary: bytes = BOUNDARY, field: str = "files") -> bytes:
    parts = []
    for i in range(n_files):
        disposition = f'Content-Disposition: form-data; name="{field}"; filename="f{i}.png"\r\n'.encode()
        parts.append(b"--" + boundary + b"\r\n" + disposition + b"Content-Type: image/png\r\n\r\n")
        parts.append(bytes([i % 256]) * size + b"\r\n")
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


MULTIPART_HEADERS = {"content-type": f"multipart/form-data; boundary={BOUNDARY.decode()}"}


# -- size limits -------------------------------------------------------------------------------


def test_content_length_over_the_limit_is_refused_unread() -> None:
    echo = Echo()
    r = drive(BodyLimit(echo), http_scope(headers={"content-length": str(150 * MIB)}), [b"x" * MIB] * 3)
    assert r.status == 413
    assert r.pulled == 0 and echo.calls == 0  # not one byte was read, the app never ran
    assert r.json["error"].startswith("Request body over 14 MB: this app accepts images up to 10 MB.")
    assert r.headers[b"connection"] == b"close"
    assert r.headers[b"content-type"] == b"application/json"


def test_chunked_body_over_the_limit_is_refused_while_streaming() -> None:
    echo = Echo()
    chunks = [b" " * MIB] * 150  # no Content-Length: chunked transfer encoding
    r = drive(BodyLimit(echo), http_scope(headers={"content-type": "application/json"}), chunks)
    assert r.status == 413 and "Request body over 14 MB" in r.json["error"]
    assert r.pulled == LIMIT // MIB + 1  # stopped at the chunk that crossed the limit...
    assert echo.received <= LIMIT  # ...which the app never saw
    assert len(r.sent) == 2  # the app's own 400 was replaced, not sent after ours


def test_body_exactly_at_the_limit_passes_and_one_byte_more_does_not() -> None:
    body = b" " * LIMIT
    r = drive(BodyLimit(Echo()), http_scope(headers={"content-length": str(LIMIT)}), split(body, 64 * 1024))
    assert r.status == 200 and r.sent[1]["body"] == str(LIMIT).encode()
    r = drive(BodyLimit(Echo()), http_scope(), split(body + b" ", 64 * 1024))  # no Content-Length
    assert r.status == 413
    r = drive(BodyLimit(Echo()), http_scope(headers={"content-length": str(LIMIT + 1)}), [body + b" "])
    assert r.status == 413 and r.pulled == 0


def test_a_lying_content_length_does_not_raise_the_limit() -> None:
    # uvicorn stops at Content-Length, but an ASGI server that does not must not get past the limit either.
    r = drive(BodyLimit(Echo()), http_scope(headers={"content-length": "10"}), [b" " * MIB] * 20)
    assert r.status == 413


def test_upload_route_has_its_own_limit() -> None:
    body = multipart(1, size=10 * MIB)
    assert len(body) < UPLOAD_LIMIT  # one 10 MB image fits
    r = drive(BodyLimit(Echo()), http_scope("/gradio_api/upload", MULTIPART_HEADERS), split(body, 64 * 1024))
    assert r.status == 200
    over = {**MULTIPART_HEADERS, "content-length": str(UPLOAD_LIMIT + 1)}
    r = drive(BodyLimit(Echo()), http_scope("/gradio_api/upload", over), [b""])
    assert r.status == 413 and r.json["error"].startswith("Upload over 10 MB: this app accepts one image")


def test_a_data_url_of_a_10_mb_image_fits_in_a_json_body() -> None:
    url = "data:image/png;base64," + "A" * encoded_length_limit(guard.MAX_IMAGE_BYTES)  # 10 MiB, encoded
    payload = {"data": [{"url": url, "meta": {"_type": "gradio.FileData"}}, "predicted", "cam", "conv3"]}
    body = json.dumps({**payload, "fn_index": 12, "session_hash": "abcdefghij"}).encode()
    r = drive(BodyLimit(Echo()), http_scope(headers={"content-length": str(len(body))}), split(body, 64 * 1024))
    assert r.status == 200


# -- multipart parts ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_files", [2, 3, 1000])
def test_upload_with_more_than_one_file_is_refused(n_files: int) -> None:
    echo = Echo()
    body = multipart(n_files)
    r = drive(BodyLimit(echo), http_scope("/gradio_api/upload", MULTIPART_HEADERS), split(body, 100))
    assert r.status == 413
    assert r.json["error"].startswith("Too many files in one upload request: this app takes at most 1 file")
    # Refused when the second part opened: the rest of the body was never pulled.
    assert r.pulled <= body.index(b"--" + BOUNDARY, 10) // 100 + 1


def test_one_file_passes_whatever_the_chunking() -> None:
    body = multipart(1, size=300)
    for size in [1, 2, 3, 7, len(BOUNDARY) + 1, len(BOUNDARY) + 3, len(BOUNDARY) + 4, 64, len(body)]:
        r = drive(BodyLimit(Echo()), http_scope("/gradio_api/upload", MULTIPART_HEADERS), split(body, size))
        assert r.status == 200, size


def test_parts_are_limited_on_every_route_and_with_any_field_name() -> None:
    body = multipart(2, field="video")
    r = drive(BodyLimit(Echo()), http_scope("/gradio_api/anything", MULTIPART_HEADERS), [body])
    assert r.status == 413


def test_quoted_boundary_is_read_like_the_parser_reads_it() -> None:
    headers = {"content-type": f'multipart/form-data; boundary="{BOUNDARY.decode()}"'}
    r = drive(BodyLimit(Echo()), http_scope("/gradio_api/upload", headers), [multipart(2)])
    assert r.status == 413


def parser_parts(body: bytes, chunks: list[bytes]) -> list[int]:
    """Parts python-multipart (Gradio's parser) has begun after each chunk."""
    begun = [0]
    parser = MultipartParser(BOUNDARY, {"on_part_begin": lambda: begun.__setitem__(0, begun[0] + 1)})
    out = []
    for c in chunks:
        parser.write(c)
        out.append(begun[0])
    return out


def random_chunks(body: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(body):
        n = rng.choice([1, 2, 3, len(BOUNDARY) - 1, len(BOUNDARY) + 2, len(BOUNDARY) + 4, 50, 4096])
        out.append(body[i : i + n])
        i += n
    return out


def test_part_counter_never_counts_fewer_parts_than_the_parser() -> None:
    rng = random.Random(0)
    tricky = [  # (body, whether the counter should agree exactly at the end)
        (multipart(1), True),
        (multipart(3), True),
        (multipart(2, size=0), True),
        (b"\r\n\r\n" + multipart(2), True),  # leading newlines, which the parser skips
        (b"\nany preamble at all " + multipart(2), True),  # ...and then anything up to the next '-'
        (multipart(2).replace(BOUNDARY + b"\r\nContent-D", BOUNDARY + b" \t\r\nContent-D"), True),  # padding
        (multipart(1).replace(b"--\r\n", b"--") + b"--" + BOUNDARY + b"\r\n", False),  # epilogue like a part
        (multipart(1, size=40).replace(b"\0" * 20, b"\0" * 10 + b"--" + BOUNDARY + b"\0" * 10, 1), False),  # in data
    ]
    for body, exact in tricky:
        for _ in range(50):
            chunks = random_chunks(body, rng)
            try:
                expected = parser_parts(body, chunks)
            except Exception:
                continue  # a chunking the parser refuses anyway
            counter = _Counter(BOUNDARY, count_commas=False)
            for chunk, begun in zip(chunks, expected, strict=True):
                counter.feed(chunk)
                assert counter.parts >= begun, (body, chunks)
            if exact:
                assert counter.parts == expected[-1], (body, chunks)


# -- JSON values and large bodies at once ------------------------------------------------------


def test_json_with_too_many_values_is_refused() -> None:
    n = guard.MAX_JSON_COMMAS
    ok = b'{"data":[' + b"[]," * n + b'0],"fn_index":0,"session_hash":"x"}'  # n + 2 commas: over by two
    r = drive(BodyLimit(Echo()), http_scope(headers={"content-type": "application/json"}), split(ok, 4096))
    assert r.status == 413 and "JSON values" in r.json["error"]
    small = b'{"data":[' + b"[]," * (n - 10) + b'0],"fn_index":0,"session_hash":"x"}'
    r = drive(BodyLimit(Echo()), http_scope(), split(small, 4096))  # no content type: FastAPI parses JSON too
    assert r.status == 200
    r = drive(BodyLimit(Echo()), http_scope("/login", {"content-type": "application/x-www-form-urlencoded"}), [ok])
    assert r.status == 200  # not JSON: Starlette's form parser has its own field limit


def test_only_a_few_large_json_bodies_stream_in_at_once() -> None:
    limiter = BodyLimit(Echo(), max_large_bodies=2)
    chunk = b" " * (guard.LARGE_BODY_BYTES + 1)

    async def scenario() -> list[int]:
        gate = asyncio.Event()
        statuses: list[int] = []

        async def one(hold: bool) -> None:
            sent: list[Message] = []
            parts: list[Message] = [
                {"type": "http.request", "body": chunk, "more_body": True},
                {"type": "http.request", "body": b""},
            ]

            async def receive() -> Message:
                if len(parts) == 1 and hold:
                    await gate.wait()
                return parts.pop(0)

            async def send(m: Message) -> None:
                sent.append(m)

            await limiter(http_scope(), receive, send)
            statuses.append(sent[0]["status"])

        held = [asyncio.create_task(one(True)) for _ in range(2)]
        await asyncio.sleep(0.05)
        await one(False)  # a third while two are still streaming: refused
        gate.set()
        await asyncio.gather(*held)
        await one(False)  # and accepted once they are done
        return statuses

    statuses = asyncio.run(scenario())
    assert statuses == [503, 200, 200, 200]
    assert limiter.large_in_flight == 0


def test_busy_answer_says_when_to_retry() -> None:
    limiter = BodyLimit(Echo(), max_large_bodies=0)
    r = drive(limiter, http_scope(headers={"content-length": str(2 * MIB)}), [b" " * 2 * MIB])
    assert r.status == 503 and r.headers[b"retry-after"] == b"5" and "Try again" in r.json["error"]


# -- everything else passes untouched ----------------------------------------------------------


def test_small_requests_pass_untouched() -> None:
    echo = Echo()
    chunks = [b'{"data": ["a"], ', b'"fn_index": 0}']
    r = drive(BodyLimit(echo), http_scope(headers={"content-type": "application/json"}), chunks)
    assert r.status == 200 and r.headers == {b"x-echo": b"1"}  # the app's own response, unchanged
    assert [m["body"] for m in echo.messages] == chunks
    assert all(a is b for a, b in zip([m["body"] for m in echo.messages], chunks, strict=True))  # not copied


def test_other_scopes_pass_through() -> None:
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def ignore(message: Message) -> None:
        return None

    for kind in ["lifespan", "websocket"]:
        asyncio.run(BodyLimit(app)({"type": kind, "path": "/gradio_api/upload"}, nothing, ignore))
    assert seen == ["lifespan", "websocket"]


def test_closed_paths_answer_404() -> None:
    echo = Echo()
    r = drive(BodyLimit(echo), http_scope("/gradio_api/process_recording/", MULTIPART_HEADERS), [multipart(1)])
    assert r.status == 404 and echo.calls == 0


def test_disconnect_mid_body_aborts_inside_the_stream() -> None:
    """Gradio deletes a partial upload's temp file only when the parser raises a MultiPartException."""
    seen: list[BaseException] = []

    async def parser(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive()).get("more_body"):
                pass
        except BaseException as exc:
            seen.append(exc)
            raise

    r = drive(BodyLimit(parser), http_scope("/gradio_api/upload", MULTIPART_HEADERS), [b"--" + BOUNDARY], True)
    assert len(seen) == 1 and isinstance(seen[0], BodyRefused)
    assert r.sent == []  # nobody is there to answer


def test_an_app_that_responds_before_reading_keeps_its_response() -> None:
    async def early(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    r = drive(BodyLimit(early), http_scope(), [b" " * MIB] * 20)
    assert r.status == 200 and len(r.sent) == 2


def test_unrelated_errors_of_the_app_still_raise() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        drive(BodyLimit(broken), http_scope(), [b"{}"])


# -- over real sockets, under uvicorn ----------------------------------------------------------


@contextmanager
def serve(app: Any) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def read_response(s: socket.socket, timeout: float = 5) -> bytes:
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        part = s.recv(65536)
        if not part:
            break
        data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    fields = dict(h.split(b": ", 1) for h in head.split(b"\r\n")[1:])
    length = int(next(v for k, v in fields.items() if k.lower() == b"content-length"))
    while len(rest) < length:
        rest += s.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_uvicorn_answers_413_before_the_body_is_sent() -> None:
    with serve(BodyLimit(Echo())) as port, socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        s.sendall(
            b"POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 157286400\r\n\r\n"
        )
        response = read_response(s)
        elapsed = time.perf_counter() - t0
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b"Request body over 14 MB" in response
    assert elapsed < 1.0


def test_uvicorn_chunked_body_is_cut_off() -> None:
    def body() -> Iterator[bytes]:
        for _ in range(150):
            yield b" " * MIB

    with serve(BodyLimit(Echo())) as port:
        t0 = time.perf_counter()
        r = httpx.post(f"http://127.0.0.1:{port}/gradio_api/queue/join", content=body(), timeout=30)
        elapsed = time.perf_counter() - t0
    assert r.status_code == 413 and "Request body over 14 MB" in r.json()["error"]
    assert elapsed < 5


# -- installed in Gradio, as app.py does it ----------------------------------------------------


def upload_leftovers(folder: Path) -> list[Path]:
    """Files in Gradio's upload folder that are not in a <sha256>/ folder of a finished upload."""
    return [p for p in folder.iterdir() if p.is_file()] if folder.exists() else []


@pytest.fixture(scope="module")
def gradio_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    import gradio as gr

    uploads = tmp_path_factory.mktemp("uploads")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)  # read when the app is created
    with gr.Blocks() as demo:
        text = gr.Textbox()
        out = gr.Textbox()
        text.submit(lambda s: s, text, out, api_name="echo")
    demo.queue(api_open=False)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, quiet=True, ssr_mode=False, max_file_size="10mb",
        app_kwargs={"middleware": guard.middleware()},
    )  # fmt: skip
    try:
        yield url.rstrip("/"), uploads
    finally:
        demo.close()
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old


def test_gradio_launch_installs_guard(gradio_app: tuple[str, Path]) -> None:
    url, _ = gradio_app
    big = b'{"data": ["' + b"a" * (15 * MIB) + b'"]}'
    r = httpx.post(f"{url}/gradio_api/queue/join", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"].startswith("Request body over 14 MB")
    files = [("files", ("a.png", b"a")), ("files", ("b.png", b"b"))]
    r = httpx.post(f"{url}/gradio_api/upload", files=files)
    assert r.status_code == 413 and "at most 1 file" in r.json()["error"]
    r = httpx.post(f"{url}/gradio_api/upload", files=files[:1])
    assert r.status_code == 200 and len(r.json()) == 1
    r = httpx.post(f"{url}/gradio_api/process_recording", files=files[:1])
    assert r.status_code == 404


def test_refused_uploads_leave_no_partial_files(gradio_app: tuple[str, Path]) -> None:
    url, uploads = gradio_app
    port = int(url.rsplit(":", 1)[1])
    head = (
        b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n"
    )
    part = multipart(1, size=0).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    # 1. Over the size limit, streamed without a length: refused, and the temp file is gone.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + chunk(part))
        try:
            for _ in range(12):
                s.sendall(chunk(b"\0" * MIB))
        except OSError:
            pass  # the server may close while we are still sending
        assert b" 413 " in read_response(s).split(b"\r\n", 1)[0]
    # 2. A client that hangs up halfway through a file.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + chunk(part) + chunk(b"\0" * MIB))
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while upload_leftovers(uploads) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upload_leftovers(uploads) == []


# -- explorer.trusted: which files a client may name ---------------------------------------------


@pytest.fixture()
def roots(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(upload root, examples root, a folder outside both) with one real image in each."""
    uploads, examples, outside = tmp_path / "gradio", tmp_path / "examples", tmp_path / "elsewhere"
    for folder in (uploads / ("a" * 64), examples, outside):
        folder.mkdir(parents=True)
    png = bytes.fromhex("89504e470d0a1a0a")  # enough to be "an image" for these tests
    (uploads / ("a" * 64) / "photo.png").write_bytes(png)
    (examples / "rudo.png").write_bytes(png)
    (outside / "secret.png").write_bytes(png)
    (tmp_path / "gradio2").mkdir()  # a sibling whose name starts like the root's
    (tmp_path / "gradio2" / "x.png").write_bytes(png)
    return uploads, examples, outside


def refused(path: object, allowed: list[Path]) -> str:
    with pytest.raises(UntrustedPathError) as info:
        trusted_image_path(path, allowed)
    assert isinstance(info.value, CamError) and isinstance(info.value, ValueError)
    return str(info.value)


def test_uploads_and_examples_are_trusted(roots: tuple[Path, Path, Path]) -> None:
    uploads, examples, _ = roots
    photo = uploads / ("a" * 64) / "photo.png"
    assert trusted_image_path(str(photo), [uploads, examples]) == photo.resolve()
    assert trusted_image_path(str(examples / "rudo.png"), [uploads, examples]) == (examples / "rudo.png").resolve()
    # A path that wanders and comes back is the same file: resolved, it is inside.
    wander = f"{uploads}/../gradio/{'a' * 64}/./photo.png"
    assert trusted_image_path(wander, [uploads]) == photo.resolve()


def test_every_refusal_has_the_same_message(roots: tuple[Path, Path, Path], tmp_path: Path) -> None:
    uploads, examples, outside = roots
    allowed = [uploads, examples]
    (uploads / "link-out.png").symlink_to(outside / "secret.png")  # inside the root, pointing out
    (uploads / "dangling.png").symlink_to(tmp_path / "nothing-here.png")
    (uploads / "link-dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(uploads / "fifo.png")
    attempts: list[object] = [
        "/etc/passwd",  # exists, outside
        "/etc/no-such-file",  # does not exist, outside
        "/etc",  # a folder, outside
        str(outside / "secret.png"),  # a real image, outside
        f"{examples}/../elsewhere/secret.png",  # ../ traversal out of a root
        f"{uploads}/{'a' * 64}/../../elsewhere/secret.png",
        str(uploads / "link-out.png"),  # symlink out
        str(uploads / "link-dir" / "secret.png"),  # through a symlinked folder
        str(uploads / "dangling.png"),
        str(uploads / "missing.png"),  # inside, does not exist
        str(uploads / ("a" * 64)),  # inside, a folder
        str(uploads),  # the root itself
        str(uploads / "fifo.png"),  # inside, not a regular file
        str(tmp_path / "gradio2" / "x.png"),  # a sibling folder named like the root
        "",
        ".",
        "x" * 5000,  # too long for the OS
        "/etc/passwd\0.png",  # NUL byte
        None,
        42,
        {"path": "/etc/passwd"},
        b"/etc/passwd",
    ]
    messages = {refused(p, allowed) for p in attempts}
    assert messages == {UNTRUSTED_PATH_MESSAGE}
    assert "upload" in UNTRUSTED_PATH_MESSAGE.lower() and "handle_file" in UNTRUSTED_PATH_MESSAGE
    assert refused(str(uploads / ("a" * 64) / "photo.png"), []) == UNTRUSTED_PATH_MESSAGE  # no roots: nothing


def test_relative_paths_are_taken_from_the_working_directory(
    roots: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads, examples, _ = roots
    monkeypatch.chdir(examples.parent)
    assert trusted_image_path("examples/rudo.png", [examples]) == (examples / "rudo.png").resolve()
    refused("elsewhere/secret.png", [uploads, examples])


def test_a_refusal_does_not_stat_a_path_outside_the_roots(
    roots: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the roots, nothing looks at the file itself: no size, type or existence to time."""
    uploads, _, outside = roots
    calls: list[str] = []
    real_stat = os.stat

    def spy(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        calls.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", spy)
    refused(str(outside / "secret.png"), [uploads])
    refused("/etc/passwd", [uploads])
    assert calls == []


# -- explorer.trusted: data: URLs ----------------------------------------------------------------


def test_data_url_is_decoded() -> None:
    data = bytes(range(256)) * 10
    assert decode_data_url("data:image/png;base64," + base64.b64encode(data).decode(), len(data)) == data
    assert decode_data_url("data:;BASE64," + base64.b64encode(b"ab").decode(), 2) == b"ab"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/png,rawbytes", "not base64-encoded"),
        ("data:image/png;base64", "not base64-encoded"),
        ("data:image/png;base64,", "holds no data"),
        ("data:image/png;base64,@@@@", "not valid base64"),
        ("data:image/png;base64,QUJD\nREVG", "not valid base64"),
        ("http://example.com/x.png", "not a data: URL"),
    ],
)
def test_data_url_refusals_say_what_to_do(url: str, words: str) -> None:
    with pytest.raises(DataUrlError, match=words) as info:
        decode_data_url(url, 1000)
    assert isinstance(info.value, ImageError)


def test_data_url_size_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 10 * MIB
    url = "data:image/png;base64," + "A" * (encoded_length_limit(limit) + 4)

    def no_decode(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("decoded an oversized data: URL")

    monkeypatch.setattr(base64, "b64decode", no_decode)
    with pytest.raises(DataUrlError, match=r"about 10\.0 MB, over this app's 10 MB limit"):
        decode_data_url(url, limit)


def test_data_url_exactly_at_the_limit_passes() -> None:
    for n in (9, 10, 11):  # all three remainders mod 3
        data = b"\xff" * n
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        assert decode_data_url(url, n) == data
        with pytest.raises(DataUrlError, match="over this app's"):
            decode_data_url(url, n - 1)
