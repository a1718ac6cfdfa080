"""The Space starts ready: the course checkpoint preloaded into the Hugging Face cache (README's
``preload_from_hub``) is served at once with the Hub unreachable, and agents see the API as MCP tools."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import httpx
import pytest
import torch
from gradio_client import Client, handle_file
from huggingface_hub import constants

import app
from cam import hub, load_model
from explorer.banner import banner_html
from explorer.explorer import Explorer
from tests.conftest import make_state_dict

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def place_in_cache(cache: Path, data: bytes) -> Path:
    """The layout `hf_hub_download` leaves (and Spaces' build-time preload): blob named by sha256,
    snapshot link, ref."""
    repo = cache / f"models--{hub.REPO_ID.replace('/', '--')}"
    sha = hashlib.sha256(data).hexdigest()
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / sha).write_bytes(data)
    snap = repo / "snapshots" / COMMIT / hub.FILENAME
    snap.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(repo / "blobs" / sha, snap.parent), snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snap


def test_readme_header_preloads_the_course_checkpoint() -> None:
    header = (ROOT / "README.md").read_text(encoding="utf-8").split("---")[1]
    assert re.search(rf"preload_from_hub:\s*\n\s*- {re.escape(hub.REPO_ID)} {re.escape(hub.FILENAME)}\s*\n", header)


@pytest.fixture(scope="module")
def preloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The course-shaped checkpoint in a Hugging Face cache, and the Hub unreachable."""
    tmp_path = tmp_path_factory.mktemp("preload")
    ckpt = tmp_path / "model.pth"
    torch.save(make_state_dict(3), ckpt)
    cache = tmp_path / "hf-cache"
    place_in_cache(cache, ckpt.read_bytes())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_CACHE", str(cache))
        mp.setattr(constants, "HF_HUB_OFFLINE", True)
        mp.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
        yield cache


def test_auto_serves_the_preloaded_checkpoint_in_under_a_second(preloaded: Path) -> None:
    start = time.perf_counter()
    model = load_model("auto")
    elapsed = time.perf_counter() - start
    p = model.provenance
    assert (p.source, p.repo_id, p.filename, p.commit) == ("cache", hub.REPO_ID, hub.FILENAME, COMMIT)
    assert not p.is_demo_model
    assert elapsed < 1.0, f"loading the preloaded checkpoint took {elapsed:.2f} s"
    banner = banner_html(p)
    assert "course's GAP pot-plant classifier" in banner and hub.REPO_ID in banner and COMMIT[:12] in banner
    assert "demo model" not in banner.lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def course_app(preloaded: Path) -> Iterator[str]:
    explorer = Explorer(load_model("auto"), ROOT / "examples", Path(gr.utils.get_upload_folder()))
    demo = app.build_demo(explorer)
    demo.queue(api_open=False)
    port = _free_port()
    demo.launch(prevent_thread_lock=True, quiet=True, server_port=port, **app.launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.mark.slow
def test_explain_json_says_it_is_the_course_model_and_has_no_caveat(course_app: str) -> None:
    client = Client(course_app, verbose=False)
    _, summary, _ = client.predict(
        handle_file(str(ROOT / "examples" / "greg_1.jpg")), "predicted", "cam", "conv3", api_name="/explain"
    )
    assert summary["model"]["source"] == "cache" and summary["model"]["is_demo_model"] is False
    assert summary["model"]["commit"] == COMMIT
    assert summary["caveat"] is None


@pytest.mark.slow
def test_mcp_lists_the_api_endpoints_as_documented_tools(course_app: str) -> None:
    tools = httpx.get(course_app + "gradio_api/mcp/schema", timeout=30).json()
    by_name = {t["name"]: t for t in tools}
    for name in ("explain", "channels", "sanity", "hide"):
        assert any(k.endswith(name) for k in by_name), sorted(by_name)
    explain = next(t for k, t in by_name.items() if k.endswith("explain"))
    assert "Explain one photo" in explain["description"]
    props = explain["inputSchema"]["properties"]
    assert {"image", "target", "method", "layer"} <= set(props)
    assert "conv3" in props["layer"]["description"]
