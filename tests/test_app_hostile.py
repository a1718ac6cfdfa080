"""The hostile image corpus through every way into the app: the event handler, a gradio_client upload,
and a raw API call with a data: URL (which skips Gradio's upload route and its size limit). Each file
gives a correct result or a clear message, and the server answers the next request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from cam.capture import hook_count
from tests.hostile.corpus import OVERSIZE_NAME, Case, make_corpus
from tests.test_app import DEFAULTS, launched, load_app, out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_app(tmp_path_factory)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return make_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def server(app: ModuleType) -> Iterator[tuple[str, Client]]:
    with launched(app) as url:
        yield url, Client(url, verbose=False)


pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore:.*(no_silent_downcasting|copy keyword).*"
)

_SUMMARIES: dict[str, dict[str, Any]] = {}


def expected_summary(app: ModuleType, case: Case) -> dict[str, Any]:
    """What the /explain handler answers for this file when called directly (computed once)."""
    if case.name not in _SUMMARIES:
        _SUMMARIES[case.name] = app.explain_api(str(case.path), "predicted", "cam", "conv3")[1]
    return _SUMMARIES[case.name]


def data_url_call(url: str, data: bytes) -> tuple[str, Any]:
    """POST to the /explain endpoint with the image as a data: URL; returns (event, payload)."""
    image = {
        "path": None,
        "url": "data:application/octet-stream;base64," + base64.b64encode(data).decode(),
        "meta": {"_type": "gradio.FileData"},
    }
    r = httpx.post(f"{url}gradio_api/call/explain", json={"data": [image, "predicted", "cam", "conv3"]}, timeout=60)
    r.raise_for_status()
    event_id = r.json()["event_id"]
    with httpx.stream("GET", f"{url}gradio_api/call/explain/{event_id}", timeout=60) as stream:
        text = stream.read().decode()
    event = data = None
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = json.loads(line.split(":", 1)[1])
    assert event is not None, text
    return event, data


def healthy(client: Client, case: Case) -> None:
    """The server still answers a plain request after ``case``."""
    ok = next(c for c in CORPUS_OK_PROBE)
    _, summary, _ = client.predict(handle_file(str(ok)), "predicted", "cam", "conv3", api_name="/explain")
    assert summary["method"] == "cam", f"server unhealthy after {case.name}"


CORPUS_OK_PROBE: list[Path] = []
UPLOAD_LIMIT = r"(?i)exceeds the maximum|413|too large"


def test_handler(app: ModuleType, corpus: list[Case]) -> None:
    for case in corpus:
        if case.expect == "ok":
            outputs = app.on_explain(str(case.path), *DEFAULTS, None)
            session = outputs[-1]
            assert out(app, outputs, "prediction") == session.by_layer["conv3"].probabilities, case.name
            assert session.image.original_size == case.size, case.name
            err = np.abs(session.image.model_input.astype(float) - case.expected_model_input().astype(float)).mean()
            assert err <= case.tolerance, f"{case.name}: mean error {err:.2f} > {case.tolerance}"
            assert max(session.image.display.size) <= 1024, case.name
        else:
            with pytest.raises(gr.Error) as info:
                app.on_explain(str(case.path), *DEFAULTS, None)
            assert case.error in info.value.message, f"{case.name}: {info.value.message!r}"
            assert info.value.message != app.GENERIC_ERROR, case.name
    assert hook_count(app.MODEL.module) == 0


def test_gradio_client_upload(app: ModuleType, corpus: list[Case], server: tuple[str, Client]) -> None:
    _, client = server
    CORPUS_OK_PROBE[:] = [next(c.path for c in corpus if c.expect == "ok")]
    for case in corpus:
        if case.name == OVERSIZE_NAME:  # the server's 10 MB upload limit answers first
            with pytest.raises(Exception, match=UPLOAD_LIMIT):
                client.predict(handle_file(str(case.path)), "predicted", "cam", "conv3", api_name="/explain")
        elif case.expect == "ok":
            _, summary, _ = client.predict(
                handle_file(str(case.path)), "predicted", "cam", "conv3", api_name="/explain"
            )
            assert summary == expected_summary(app, case), case.name
        else:
            with pytest.raises(AppError) as info:
                client.predict(handle_file(str(case.path)), "predicted", "cam", "conv3", api_name="/explain")
            assert case.error in str(info.value), f"{case.name}: {info.value}"
    healthy(client, corpus[-1])  # each case's request was answered after the previous one; so is this


def test_raw_data_url(app: ModuleType, corpus: list[Case], server: tuple[str, Client]) -> None:
    url, client = server
    CORPUS_OK_PROBE[:] = [next(c.path for c in corpus if c.expect == "ok")]
    for case in corpus:
        event, data = data_url_call(url, case.path.read_bytes())
        if case.expect == "ok":
            assert event == "complete", f"{case.name}: {data}"
            assert data[1] == expected_summary(app, case), case.name
        else:
            assert event == "error", case.name
            expected = "MB limit" if case.name == OVERSIZE_NAME else case.error
            assert data["error"] and expected in data["error"], f"{case.name}: {data}"
    healthy(client, corpus[-1])
    assert hook_count(app.MODEL.module) == 0
