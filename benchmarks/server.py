"""Launching the app (and the echo app) as the Space does, and talking to it over HTTP.

`Server` runs ``python app.py`` (or ``benchmarks/echo_app.py``) on a free port with the offline
environment and stops it by its pid. `client`/`explain_call` use gradio_client for the ``/explain``
API; `benchmarks.uisession` drives the page's own events the way a browser tab does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.harness import ROOT

APP = ROOT / "app.py"
ECHO_APP = Path(__file__).resolve().parent / "echo_app.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(port: int, workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "GRADIO_TEMP_DIR": str(workdir / "gradio"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def app_env(threads: int | None) -> tuple[dict[str, str], str]:
    """Extra environment for the app and a note saying which model it serves."""
    env: dict[str, str] = {}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads at start (app.py sets none)
    if os.environ.get("CAM_MODEL"):
        return env, f"CAM_MODEL={os.environ['CAM_MODEL']} (from the environment)"
    return env, "bundled demo model (CAM_MODEL unset)"


def app_skip_reason() -> str | None:
    """Why the server rows cannot run here, or None."""
    try:
        import gradio_client  # noqa: F401
    except ImportError as exc:
        return f"gradio_client not importable ({exc})"
    return None


class Server:
    """A Gradio script run as ``python script`` on a free port; stopped (by its pid) on exit."""

    def __init__(self, script: Path, workdir: Path, env_extra: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{script.stem}-{self.port}.log"
        self.started = time.perf_counter()
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=ROOT,
            env=server_env(self.port, workdir, env_extra),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds from launch until the page answers."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.log.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "gradio_api/info", timeout=2):
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{self.log.name} did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 2000) -> str:
        return self.log.read_bytes()[-n:].decode(errors="replace")

    def _status(self, key: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return float("nan")

    def peak_rss_mb(self) -> float:
        """Peak resident set (VmHWM) of the server process since start or the last `reset_peak`."""
        return self._status("VmHWM:")

    def rss_mb(self) -> float:
        return self._status("VmRSS:")

    def reset_peak(self) -> bool:
        try:  # "5" resets VmHWM to the current RSS (Linux >= 4.0, own processes)
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def config(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "config", timeout=30) as r:
            return dict(json.load(r))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False)


def explain_call(c: Any, path: Path) -> Any:
    from gradio_client import handle_file

    return c.predict(handle_file(str(path)), "predicted", "cam", "conv3", api_name="/explain")
