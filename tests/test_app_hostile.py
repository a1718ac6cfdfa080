"""The hostile image corpus (tests/hostile/corpus.py) through every way into the app: the Explorer
(what the page's events call), a gradio_client upload, and a raw API call with a data: URL (which
skips Gradio's upload route and its size limit). Each file gives a correct result or its clear
message, and the server answers the next request."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from cam import CamError
from cam.capture import hook_count
from cam.model import CamModel
from explorer.api import Api
from explorer.explorer import Explorer, Settings, Who
from tests.hostile.corpus import OVERSIZE_NAME, Case, make_corpus

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore:.*(no_silent_downcasting|copy keyword).*"
)
WHO = Who("hostile", "127.0.0.1")
UPLOAD_LIMIT = r"(?i)exceeds the maximum|413|too large"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return make_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def client(served_app: str) -> Client:
    return Client(served_app, verbose=False)


_SUMMARIES: dict[str, dict[str, Any]] = {}


def expected_summary(explorer: Explorer, case: Case) -> dict[str, Any]:
    """What the /explain endpoint answers for this file when called in-process (computed once)."""
    if case.name not in _SUMMARIES:
        _SUMMARIES[case.name] = Api(explorer).explain(str(case.path), "predicted", "cam", "conv3")[1]
    return _SUMMARIES[case.name]


@pytest.mark.slow
def test_every_file_through_the_explorer(explorer: Explorer, fixture_model: CamModel, corpus: list[Case]) -> None:
    for case in corpus:
        if case.expect == "ok":
            image = explorer.image(WHO, str(case.path))
            assert image.original_size == case.size, case.name
            err = np.abs(image.model_input.astype(float) - case.expected_model_input().astype(float)).mean()
            assert err <= case.tolerance, f"{case.name}: mean error {err:.2f} > {case.tolerance}"
            assert image.display is not None and max(image.display.size) <= 1024, case.name
            r = explorer.explanation(WHO, str(case.path), "conv3")
            assert set(r.probabilities) == set(explorer.class_names), case.name
        else:
            with pytest.raises(CamError) as info:
                explorer.main_view(WHO, str(case.path), Settings())
            assert case.error and case.error in str(info.value), f"{case.name}: {info.value!r}"
    # One large, rotated photo all the way to the rendered page.
    big = next(c for c in corpus if c.name == "jpeg_exif6_3000x2000")
    view = explorer.main_view(WHO, str(big.path), Settings())
    assert view.heading.startswith("### Explaining ") and Path(view.cam_slider[1]).is_file()
    assert hook_count(fixture_model.module) == 0


def healthy(client: Client, corpus: list[Case]) -> None:
    ok = next(c for c in corpus if c.expect == "ok")
    _, summary, _ = client.predict(handle_file(str(ok.path)), "predicted", "cam", "conv3", api_name="/explain")
    assert summary["method"] == "cam", "the server still answers"


def in_parallel(url: str, corpus: list[Case], call: Any, threads: int = 4) -> dict[str, Any]:
    """case name -> call(client, case) (or the exception it raised), over a few clients at once."""

    def run(cases: list[Case]) -> list[tuple[str, Any]]:
        client = Client(url, verbose=False, httpx_kwargs={"timeout": 120})
        out: list[tuple[str, Any]] = []
        for case in cases:
            try:
                out.append((case.name, call(client, case)))
            except Exception as exc:  # judged by the caller
                out.append((case.name, exc))
        return out

    with ThreadPoolExecutor(threads) as pool:
        return dict(pair for chunk in pool.map(run, [corpus[i::threads] for i in range(threads)]) for pair in chunk)


@pytest.mark.slow
def test_every_file_as_a_gradio_client_upload(explorer: Explorer, served_app: str, client: Client,
                                              corpus: list[Case]) -> None:  # fmt: skip
    def upload(c: Client, case: Case) -> Any:
        return c.predict(handle_file(str(case.path)), "predicted", "cam", "conv3", api_name="/explain")[1]

    answers = in_parallel(served_app, corpus, upload)
    for case in corpus:
        got = answers[case.name]
        if case.name == OVERSIZE_NAME:  # the server's 10 MB upload limit answers first
            assert isinstance(got, Exception) and re.search(UPLOAD_LIMIT, str(got)), got
        elif case.expect == "ok":
            assert got == expected_summary(explorer, case), case.name
        else:
            assert isinstance(got, AppError), f"{case.name}: {got!r}"
            assert case.error and case.error in str(got), f"{case.name}: {got}"
    healthy(client, corpus)


def data_url_call(url: str, data: bytes) -> tuple[str, Any]:
    """POST to /explain with the image as a data: URL; returns (event, payload)."""
    image = {
        "path": None,
        "url": "data:application/octet-stream;base64," + base64.b64encode(data).decode(),
        "meta": {"_type": "gradio.FileData"},
    }
    r = httpx.post(f"{url}gradio_api/call/explain", json={"data": [image, "predicted", "cam", "conv3"]}, timeout=60)
    if r.status_code == 413:  # the request-body limit (explorer/guard.py) answers before Gradio
        return "413", None
    r.raise_for_status()
    event_id = r.json()["event_id"]
    with httpx.stream("GET", f"{url}gradio_api/call/explain/{event_id}", timeout=60) as stream:
        text = stream.read().decode()
    event: str | None = None
    payload: Any = None
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            payload = json.loads(line.split(":", 1)[1])
    assert event is not None, text
    return event, payload


@pytest.mark.slow
def test_every_file_as_a_raw_data_url(explorer: Explorer, served_app: str, client: Client,
                                      corpus: list[Case]) -> None:  # fmt: skip
    answers = in_parallel(served_app, corpus, lambda _c, case: data_url_call(served_app, case.path.read_bytes()))
    for case in corpus:
        event, data = answers[case.name]
        if case.expect == "ok":
            assert event == "complete", f"{case.name}: {data}"
            assert data[1] == expected_summary(explorer, case), case.name
        elif case.name == OVERSIZE_NAME:
            assert event == "413" or "MB limit" in data["error"], (event, data)
        else:
            assert event == "error", case.name
            expected = "holds no data" if case.name == "zero_bytes" else case.error
            assert expected and data["error"] and expected in data["error"], f"{case.name}: {data}"
    healthy(client, corpus)
