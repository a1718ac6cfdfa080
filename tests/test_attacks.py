"""Attacks on the running app over raw HTTP, as an outsider would send them (issue 10).

The app runs as ``python app.py`` in a subprocess on 127.0.0.1 (the bundled model, its own upload
folder), so its memory (``/proc/PID/status``) and its log (stdout and stderr, to a file) are its own.
Each attack checks the refusal's message, the time it took and what it cost the server; the last
tests check that the server still serves, and that its cleanup leaves no empty output folders.

Nothing here touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from explorer import guard
from explorer.trusted import UNTRUSTED_PATH_MESSAGE

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
META = {"_type": "gradio.FileData"}
STARTUP_TIMEOUT_S = 180


# -- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    uploads: Path
    http: httpx.Client = field(init=False)
    measurements: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=120)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return proc_status(self.pid)["VmRSS"]

    def hwm(self) -> int:
        return proc_status(self.pid)["VmHWM"]

    def reset_peak(self) -> None:
        """Set VmHWM back to the current RSS (Linux: 5 > clear_refs), so the next peak is this request's."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> bytes:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read()

    def note(self, text: str) -> None:
        self.measurements.append(text)
        print(text)

    # -- Gradio's protocol, by hand --

    def config(self) -> dict[str, Any]:
        r = self.http.get("/config")
        r.raise_for_status()
        config: dict[str, Any] = r.json()
        return config

    def explain_click(self, image: Any, target: str | None = None) -> dict[str, Any]:
        """The page's Explain button, with ``image`` (and ``target``) and the other controls' defaults."""
        fn_index, trigger, data = event_of(self, "explain", "click")
        data[0] = image
        if target is not None:
            data[1] = target
        return self.queue(fn_index, data, trigger)

    def queue(self, fn_index: int, data: list[Any], trigger_id: int | None = None) -> dict[str, Any]:
        """queue/join, then the event's process_completed message from queue/data."""
        session = uuid.uuid4().hex[:11]
        body = {"data": data, "fn_index": fn_index, "session_hash": session, "trigger_id": trigger_id,
                "event_data": None}  # fmt: skip
        r = self.http.post("/gradio_api/queue/join", json=body)
        if r.status_code != 200:
            return {"status": r.status_code, "body": r.text, "success": False, "raw": r.text}
        event_id = r.json()["event_id"]
        raw = []
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                raw.append(line)
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed" and msg.get("event_id") == event_id:
                    return {"status": 200, "success": msg["success"], "output": msg["output"], "raw": line}
        raise AssertionError("the stream ended without process_completed:\n" + "\n".join(raw)[:2000])

    def call(self, api_name: str, data: Any) -> dict[str, Any]:
        """The public API as curl would use it: POST /gradio_api/call/NAME, then GET its events."""
        r = self.http.post(f"/gradio_api/call/{api_name}", json={"data": data})
        if r.status_code != 200:
            return {"status": r.status_code, "event": None, "data": None, "raw": r.text}
        event_id = r.json()["event_id"]
        raw = self.http.get(f"/gradio_api/call/{api_name}/{event_id}").text
        events = [block for block in raw.split("\n\n") if block.startswith("event:")]
        last = events[-1].split("\n", 1)
        return {"status": 200, "event": last[0][7:].strip(), "data": json.loads(last[1][5:]), "raw": events[-1]}

    def upload(self, name: str, data: bytes) -> str:
        r = self.http.post("/gradio_api/upload", files=[("files", (name, data, "image/png"))])
        assert r.status_code == 200, r.text
        path: str = r.json()[0]
        return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("attacked-app")
    port = free_port()
    uploads = tmp / "gradio"
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_TEMP_DIR": str(uploads),
        "CAM_MODEL": "bundled",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SYSTEM", None)  # off Spaces: the queue must hold anyway
    log = tmp / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail("app.py exited at startup:\n" + log.read_text()[-3000:])
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"app.py did not start within {STARTUP_TIMEOUT_S} s:\n" + log.read_text()[-3000:])
        time.sleep(0.5)
    srv = Server(url, process, log, uploads)
    try:
        yield srv
    finally:
        srv.http.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
        print("\n".join(["", "measurements:", *srv.measurements]))


def png_bytes(size: int = 64, color: tuple[int, int, int] = (30, 140, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


# -- point 1: the server reads only images it received ---------------------------------------------


@pytest.fixture(scope="module")
def outside_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, valid photo on the server's disk that no client uploaded."""
    path = tmp_path_factory.mktemp("not-uploaded") / "private.png"
    path.write_bytes(png_bytes(300, (200, 30, 30)))
    return path


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 that serves a photo and records every request it gets."""
    hits: list[str] = []
    photo = png_bytes(100)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(photo)))
            self.end_headers()
            self.wfile.write(photo)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/photo.png", hits
    finally:
        httpd.shutdown()


def hostile_paths(outside: Path, url: str) -> dict[str, str]:
    return {
        "url": url,  # with the meta marker, Gradio itself downloads a URL it is given
        "passwd": "/etc/passwd",
        "traversal": str(ROOT / "examples" / ".." / "README.md"),
        "checkpoint": str(ROOT / "cam" / "assets" / "pot_plant_gap_synthetic.pth"),
        "image outside": str(outside),
        "missing": str(outside.parent / "no-such-photo.png"),
        "folder": str(outside.parent),
        "relative": "cam/assets/pot_plant_gap_synthetic.pth",
    }


SECRETS = [b"root:", b"pot_plant", b"Pot Plant CAM Explorer", b"PK\x03\x04", b"No such file", b"Is a directory",
           b"exist", b"bytes", b"directory", b"size"]  # fmt: skip


def assert_refused_alike(results: dict[str, str | None], raw: dict[str, str]) -> None:
    assert set(results.values()) == {UNTRUSTED_PATH_MESSAGE}, results
    for name, text in raw.items():
        leaked = [s for s in SECRETS if s.decode() in text.replace(UNTRUSTED_PATH_MESSAGE, "")]
        assert not leaked, (name, leaked, text[:500])


@pytest.mark.parametrize("with_meta", [False, True], ids=["bare-path", "with-meta"])
def test_ui_event_reads_no_file_it_did_not_receive(
    server: Server, outside_image: Path, web: tuple[str, list[str]], with_meta: bool
) -> None:
    results: dict[str, str | None] = {}
    raw: dict[str, str] = {}
    for name, path in hostile_paths(outside_image, web[0]).items():
        payload: dict[str, Any] = {"path": path, **({"meta": META} if with_meta else {})}
        t0 = time.perf_counter()
        r = server.explain_click(payload)
        elapsed = time.perf_counter() - t0
        assert not r["success"], (name, r)
        assert elapsed < 5, (name, elapsed)
        results[name] = (r.get("output") or {}).get("error")
        raw[name] = r["raw"]
    assert_refused_alike(results, raw)
    assert web[1] == []  # nothing was fetched


@pytest.mark.parametrize("with_meta", [False, True], ids=["bare-path", "with-meta"])
def test_explain_api_reads_no_file_it_did_not_receive(
    server: Server, outside_image: Path, web: tuple[str, list[str]], with_meta: bool
) -> None:
    results: dict[str, str | None] = {}
    raw: dict[str, str] = {}
    for name, path in hostile_paths(outside_image, web[0]).items():
        payload: dict[str, Any] = {"path": path, **({"meta": META} if with_meta else {})}
        r = server.call("explain", [payload, "predicted", "cam", "conv3"])
        assert r["event"] == "error", (name, r)
        results[name] = error_text(r)
        raw[name] = r["raw"]
    assert_refused_alike(results, raw)
    assert web[1] == []


def test_an_image_outside_the_uploads_never_comes_back(server: Server, outside_image: Path) -> None:
    """The photo itself would be the leak: no output file may be written for it."""
    before = {p for p in server.uploads.rglob("*") if p.is_file()}
    r = server.call("explain", [{"path": str(outside_image)}, "predicted", "cam", "conv3"])
    assert r["event"] == "error"
    after = {p for p in server.uploads.rglob("*") if p.is_file()}
    assert after == before


# -- point 3: bodies are refused while they stream in ----------------------------------------------


def post_timed(server: Server, path: str, **kwargs: Any) -> tuple[httpx.Response, float, int]:
    """(response, seconds, the server's peak RSS during the request minus its RSS before, in bytes)."""
    server.reset_peak()
    rss = server.rss()
    t0 = time.perf_counter()
    r = server.http.post(path, **kwargs)
    return r, time.perf_counter() - t0, server.hwm() - rss


@pytest.mark.slow
def test_150_mb_json_body_with_length_is_refused_at_once(server: Server) -> None:
    body = b'{"data": ["' + b"A" * (150 * MIB) + b'"], "fn_index": 0, "session_hash": "x"}'
    r, seconds, growth = post_timed(server, "/gradio_api/queue/join", content=body,
                                    headers={"content-type": "application/json"})  # fmt: skip
    server.note(f"150 MB JSON, Content-Length: {r.status_code} in {seconds:.2f} s, peak RSS +{growth / MIB:.1f} MB")
    assert r.status_code == 413
    assert r.json()["error"].startswith("Request body over 14 MB: this app accepts images up to 10 MB.")
    assert seconds < 3 and growth < 50 * MIB


@pytest.mark.slow
def test_150_mb_chunked_json_body_is_cut_off(server: Server) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"data": ["'
        for _ in range(150):
            yield b"A" * MIB

    r, seconds, growth = post_timed(server, "/gradio_api/queue/join", content=body(),
                                    headers={"content-type": "application/json"})  # fmt: skip
    server.note(f"150 MB JSON, chunked: {r.status_code} in {seconds:.2f} s, peak RSS +{growth / MIB:.1f} MB")
    assert r.status_code == 413 and "Request body over 14 MB" in r.json()["error"]
    assert seconds < 3 and growth < 50 * MIB


def test_json_of_many_tiny_values_is_refused(server: Server) -> None:
    body = b'{"data": [' + b"[]," * (4 * MIB) + b'0], "fn_index": 0, "session_hash": "x"}'  # 12 MB
    r, seconds, growth = post_timed(server, "/gradio_api/queue/join", content=body,
                                    headers={"content-type": "application/json"})  # fmt: skip
    server.note(f"12 MB of [] values: {r.status_code} in {seconds:.2f} s, peak RSS +{growth / MIB:.1f} MB")
    assert r.status_code == 413 and "JSON values" in r.json()["error"]
    assert seconds < 3 and growth < 50 * MIB  # json.loads of it costs +300 MB and 2 s


@pytest.mark.slow
def test_upload_of_many_files_is_refused(server: Server) -> None:
    before = sum(1 for p in server.uploads.rglob("*") if p.is_file())
    files = [("files", (f"f{i}.png", b"x" * 1024, "image/png")) for i in range(1000)]
    r, seconds, growth = post_timed(server, "/gradio_api/upload", files=files)
    server.note(f"upload of 1000 files: {r.status_code} in {seconds:.2f} s, peak RSS +{growth / MIB:.1f} MB")
    assert r.status_code == 413 and "at most 1 file" in r.json()["error"]
    assert seconds < 3
    assert sum(1 for p in server.uploads.rglob("*") if p.is_file()) == before  # not one file kept


def test_upload_of_two_files_is_refused(server: Server) -> None:
    files = [("files", ("a.png", png_bytes(), "image/png")), ("files", ("b.png", png_bytes(), "image/png"))]
    r = server.http.post("/gradio_api/upload", files=files)
    assert r.status_code == 413 and "at most 1 file" in r.json()["error"]


@pytest.mark.slow
def test_upload_of_one_9_9_mb_file_still_works(server: Server) -> None:
    data = png_bytes() + os.urandom(int(9.9 * 1024 * 1024))  # a PNG with trailing bytes: a 9.9 MB file
    r, seconds, growth = post_timed(server, "/gradio_api/upload", files=[("files", ("big.png", data, "image/png"))])
    server.note(f"upload of one 9.9 MB file: {r.status_code} in {seconds:.2f} s, peak RSS +{growth / MIB:.1f} MB")
    assert r.status_code == 200, r.text
    assert Path(r.json()[0]).stat().st_size == len(data)


def test_oversized_upload_is_refused_unread(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(
            b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: %d\r\n\r\n" % (guard.MAX_UPLOAD_BODY_BYTES + 1)
        )
        s.settimeout(10)
        response = b""
        while b"}" not in response:
            part = s.recv(65536)
            if not part:
                break
            response += part
    assert response.startswith(b"HTTP/1.1 413 ") and b"Upload over 10 MB: this app accepts one image" in response


def test_data_url_over_10_mb_is_refused_with_a_message(server: Server) -> None:
    url = "data:image/png;base64," + "A" * (4 * ((10 * MIB + 3) // 3) + 4)  # just over 10 MB, under 14 MB
    r = server.call("explain", [{"url": url}, "predicted", "cam", "conv3"])
    assert r["event"] == "error"
    message = r["data"] if isinstance(r["data"], str) else (r["data"] or {}).get("error")
    assert message and "over this app's 10 MB limit" in message


# -- point 5: no route around the queue ----------------------------------------------------------


def api_fn_index(server: Server, api_name: str) -> int:
    return next(int(d["id"]) for d in server.config()["dependencies"] if d.get("api_name") == api_name)


DIRECT_ROUTES = ["/gradio_api/run/explain", "/gradio_api/api/explain", "/gradio_api/run/predict",
                 "/gradio_api/api/predict", "/run/explain", "/api/explain", "/api/predict"]  # fmt: skip


@pytest.mark.parametrize("path", DIRECT_ROUTES)
def test_direct_routes_that_skip_the_queue_are_closed(server: Server, path: str) -> None:
    """Off Spaces, Gradio lets these routes run a queued event directly unless api_open=False."""
    upload = server.upload("q.png", png_bytes())
    body = {
        "data": [{"path": upload, "meta": META}, "predicted", "cam", "conv3"],
        "fn_index": api_fn_index(server, "explain"),
    }
    t0 = time.perf_counter()
    r = server.http.post(path, json=body)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
    assert time.perf_counter() - t0 < 2
    assert "data" not in r.json(), r.text[:300]  # nothing was computed


# -- point 8: Gradio's own refusals carry a message --------------------------------------------------


def error_text(r: dict[str, Any]) -> str | None:
    data = r["data"]
    return data if isinstance(data, str) else (data or {}).get("error")


def test_wrong_number_of_inputs_gets_a_message(server: Server) -> None:
    for data in ([], [{"path": "/etc/passwd"}]):
        r = server.call("explain", data)
        message = error_text(r) if r["status"] == 200 else r["raw"]
        assert message, (data, r)
        assert "input" in message.lower(), message


def test_image_sent_as_a_string_gets_a_message(server: Server) -> None:
    r = server.call("explain", ["/etc/passwd", "predicted", "cam", "conv3"])
    message = error_text(r) if r["status"] == 200 else r["raw"]
    assert message, r
    assert "root:" not in r["raw"]


def test_method_as_an_empty_list_gets_a_specific_message(server: Server) -> None:
    upload = server.upload("m.png", png_bytes())
    r = server.call("explain", [{"path": upload, "meta": META}, "predicted", [], "conv3"])
    assert r["event"] == "error"
    message = error_text(r)
    assert message and "Something went wrong" not in message
    assert "method" in message.lower(), message


@pytest.mark.slow
def test_a_5_mb_target_is_echoed_and_logged_truncated(server: Server) -> None:
    upload = server.upload("t.png", png_bytes())
    target = "x" * (5 * MIB)
    offset = server.log_size()
    r = server.call("explain", [{"path": upload, "meta": META}, target, "cam", "conv3"])
    assert r["event"] == "error"
    message = error_text(r) or ""
    assert message and len(message) < 1000 and "x" * 101 not in message, message[:300]
    r = server.explain_click({"path": upload, "meta": META}, target)
    message = (r.get("output") or {}).get("error") or ""
    assert not r["success"] and message and "x" * 101 not in message, message[:300]
    time.sleep(0.5)
    longest = max((len(line) for line in server.log_since(offset).splitlines()), default=0)
    server.note(f"5 MB target: message {len(message)} chars, longest new log line {longest} bytes")
    assert longest < 10_000


# -- sessions: what Gradio keeps per session hash -----------------------------------------------------


def event_of(server: Server, elem_id: str, event: str) -> tuple[int, int, list[Any]]:
    """(fn_index, trigger id, the inputs' default values) of ``event`` on component ``elem_id``, read
    from /config as the page reads it (the page's events are private: no API name)."""
    config = server.config()
    by_id = {c["id"]: c for c in config["components"]}
    (comp,) = [i for i, c in by_id.items() if c.get("props", {}).get("elem_id") == elem_id]
    dep = next(d for d in config["dependencies"] if [comp, event] in [list(t) for t in d["targets"]])
    return int(dep["id"]), comp, [by_id[i].get("props", {}).get("value") for i in dep["inputs"]]


def predict(server: Server, fn_index: int, trigger: int, data: list[Any], session: str) -> httpx.Response:
    """An off-queue event, as the page sends it (run/predict with the page's session hash)."""
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "trigger_id": trigger, "event_data": None}
    return server.http.post("/gradio_api/run/predict", json=body)


def test_deep_link_route_is_closed(server: Server) -> None:
    """Gradio's /gradio_api/deep_link wrote the session's whole page state to a new file on every call
    whose state differed (measured: 20 calls, 20 files, 4.2 MB, ~60 ms of CPU each), never deleted."""
    fn, trigger, _ = event_of(server, "echo-btn", "click")
    session = uuid.uuid4().hex[:11]
    for k in range(3):  # a different state each time: each would have been a new file
        assert predict(server, fn, trigger, [f"state {k}"], session).status_code == 200
        r = server.http.get("/gradio_api/deep_link", params={"session_hash": session})
        assert r.status_code == 404 and r.json()["error"] == "This route is closed in this app."
    assert not list(server.uploads.rglob("deep_links"))


def test_minted_sessions_do_not_pile_up(server: Server) -> None:
    """Every new session hash made Gradio keep a copy of each component's config (~0.26 MB here) for up
    to 10,000 sessions, kept after the tab closed: 1,000 one-request sessions cost ~260 MB. The app keeps
    the last `app.STATE_SESSIONS`; its RSS is read once its memory trimmer (every 2 s) has run."""
    fn, trigger, _ = event_of(server, "echo-btn", "click")
    for k in range(150):  # past the capacity first, so what is measured is the steady state
        predict(server, fn, trigger, ["warm"], f"warm{k}")
    time.sleep(3)
    before = server.rss()
    for k in range(1000):
        assert predict(server, fn, trigger, [f"minted {k}"], f"minted{k}").status_code == 200
    time.sleep(3)
    growth = (server.rss() - before) / MIB
    server.note(f"1,000 minted sessions: RSS +{growth:.0f} MB")
    assert growth < 60, f"RSS grew {growth:.0f} MB over 1,000 one-request sessions"


def test_the_page_s_held_state_is_checked_like_any_input(server: Server) -> None:
    """The open tab and the clicked pixel are held by the page (so losing Gradio's session state loses
    nothing): a client can send anything for them, and gets a message, not a traceback."""
    upload = {"path": server.upload("held.png", png_bytes(200)), "meta": META}
    fn, _, _ = event_of(server, "channels-pixel-image", "select")
    follow = next(d for d in server.config()["dependencies"] if d.get("trigger_after") == fn)
    inputs: list[Any] = [upload, "predicted", "conv3", 0.5, "jet", "inside-the-cam", None]  # ..., tab, pixel
    assert len(follow["inputs"]) == len(inputs)
    pixel_at = len(inputs) - 1
    for pixel, message in (([3, "x"], "The pixel must be [x, y]"), ([-1, 5], "The pixel must be [x, y]"),
                           ([10, 20], None)):  # fmt: skip
        inputs[pixel_at] = pixel
        r = server.queue(int(follow["id"]), inputs)
        if message is None:
            assert r["success"], r["raw"][:500]
        else:
            assert not r["success"] and message in (r["output"].get("error") or ""), r["raw"][:500]
            assert "Traceback" not in r["raw"]
    inputs[5] = "../../etc"
    r = server.queue(int(follow["id"]), inputs)
    assert not r["success"] and "Open tab: '../../etc' is not one of its choices." in (r["output"]["error"] or "")


# -- after the attacks -----------------------------------------------------------------------------


def test_server_still_serves_after_the_attacks(server: Server) -> None:
    upload = server.upload("ok.png", png_bytes(256))
    t0 = time.perf_counter()
    r = server.call("explain", [{"path": upload, "meta": META, "orig_name": "ok.png"}, "predicted", "cam", "conv3"])
    seconds = time.perf_counter() - t0
    assert r["event"] == "complete", r["raw"][:1000]
    overlay, summary, _ = r["data"]
    assert summary["method"] == "cam" and summary["layer"] == "conv3"
    assert server.http.get(overlay["url"].replace(server.url, "")).status_code == 200
    small = "data:image/png;base64," + base64.b64encode(png_bytes(128)).decode()
    r = server.call("explain", [{"url": small}, "predicted", "cam", "conv3"])
    assert r["event"] == "complete", r["raw"][:1000]
    server.note(f"normal /explain after the attacks: {seconds:.2f} s; server RSS {server.rss() / MIB:.0f} MB")


def test_cleanup_leaves_no_empty_output_folders(server: Server) -> None:
    """Point 9: run a few requests, stop the server (its shutdown runs the cache cleanup over every
    file, like the scheduled one over old files), and look for folders the cleanup left empty."""
    upload = server.upload("clean.png", png_bytes(200))
    for method in ("cam", "gradcam"):
        r = server.call("explain", [{"path": upload, "meta": META}, "predicted", method, "conv3"])
        assert r["event"] == "complete"
    assert any(p.is_dir() for p in server.uploads.iterdir())
    server.process.send_signal(signal.SIGINT)
    server.process.wait(60)
    # Gradio's own empty vibe_edit_history/ is made once at start; per-request folders are ours
    # (cam-*) and the uploads' (<sha256>/), and both must go when their files do.
    empty = [p.name for p in server.uploads.iterdir() if p.is_dir() and not any(p.iterdir())]
    assert [name for name in empty if name != "vibe_edit_history"] == []
