"""Many clients at once against `app.build_demo` served with the app's queue settings: every answer
equals the serial answer for its input, byte for byte; the only acceptable error is Gradio's own
"queue is full"; no hooks left behind; a full queue refuses cleanly; uploads and outputs are
cleaned up over time."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

import app
from cam import METHODS
from cam.capture import hook_count
from cam.model import CamModel
from explorer.api import Api
from explorer.explorer import Explorer
from tests.conftest import serve

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]

CLIENTS = 16
REQUESTS = 3  # per client: 48 requests through the app's 2 workers
POOL = 24  # distinct requests
CLEANUP_AGE_S = 3  # delete_cache age in the cleanup test

Request = tuple[str, str, str, str]  # image path, target, method, layer
PATIENT = {"timeout": 120}  # httpx's default 5 s read timeout is too short for 16 clients on 2 busy cores


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory, images: list[np.ndarray]) -> list[Path]:
    folder = tmp_path_factory.mktemp("conc")
    rng = np.random.default_rng(7)
    paths = []
    for i in range(8):  # different content and sizes: the four fixture images and four noisy variants
        base = images[i % len(images)]
        arr = base if i < 4 else np.clip(base.astype(int) + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
        p = folder / f"c{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def plan(class_names: tuple[str, ...], image_files: list[Path]) -> list[list[Request]]:
    """Per client, REQUESTS draws from a pool of different (image, class, method, layer) requests, so
    every client sends different inputs in a different order while the serial reference stays cheap.
    Perturbation methods (Score-CAM) are left out: seconds per call."""
    rng = random.Random(0)
    methods = [m for m, spec in METHODS.items() if not spec.needs_model]
    targets = ["predicted", *class_names]
    pool: list[Request] = []
    for i in range(POOL):
        method = methods[i % len(methods)]
        layer = "conv3" if METHODS[method].gap_only else ("conv1", "conv2", "conv3")[i % 3]
        pool.append((str(image_files[i % len(image_files)]), targets[i % len(targets)], method, layer))
    return [[rng.choice(pool) for _ in range(REQUESTS)] for _ in range(CLIENTS)]


def test_concurrent_clients_get_exactly_the_serial_answers(
    explorer: Explorer, fixture_model: CamModel, served_app: str, image_files: list[Path]
) -> None:
    url = served_app
    per_client = plan(explorer.class_names, image_files)
    distinct = sorted({r for reqs in per_client for r in reqs})
    api = Api(explorer)
    expected = {}
    for req in distinct:  # one at a time, in this process
        _, summary, npy = api.explain(*req)
        expected[req] = (summary, Path(npy).read_bytes())

    def client_run(reqs: list[Request]) -> list[tuple[Request, Any]]:
        client = Client(url, verbose=False, httpx_kwargs=PATIENT)
        results: list[tuple[Request, Any]] = []
        for req in reqs:
            path, target, method, layer = req
            try:
                _, summary, npy = client.predict(handle_file(path), target, method, layer, api_name="/explain")
                results.append((req, (summary, Path(npy).read_bytes())))
            except Exception as exc:  # collected, judged below
                results.append((req, exc))
        return results

    with ThreadPoolExecutor(CLIENTS) as pool:
        all_results = [r for chunk in pool.map(client_run, per_client) for r in chunk]
    assert len(all_results) == CLIENTS * REQUESTS
    errors = [(req, res) for req, res in all_results if isinstance(res, Exception)]
    assert all("queue is full" in str(e).lower() for _, e in errors), errors[:3]
    answered = [(req, res) for req, res in all_results if not isinstance(res, Exception)]
    assert len(answered) >= CLIENTS * REQUESTS // 2
    for req, (summary, npy) in answered:
        want_summary, want_npy = expected[req]
        assert summary == want_summary, req
        assert npy == want_npy, req  # the raw map, byte for byte
    assert hook_count(fixture_model.module) == 0

    client = Client(url, verbose=False, httpx_kwargs=PATIENT)  # the server is alive afterwards
    _, summary, _ = client.predict(handle_file(str(image_files[0])), "predicted", "cam", "conv3", api_name="/explain")
    assert summary["method"] == "cam" and summary["layer"] == "conv3"


def test_uploads_and_outputs_are_deleted_once_old(explorer: Explorer, image_files: list[Path]) -> None:
    """`delete_cache` (here every second, for files older than CLEANUP_AGE_S) removes every upload and
    every output file, through the app's own cleaner (app.py's work-around for Gradio 6.31)."""
    demo = app.build_demo(explorer)
    demo.delete_cache = (1, CLEANUP_AGE_S)  # this instance only (read at launch)
    with serve(demo) as url:
        client = Client(url, verbose=False, httpx_kwargs=PATIENT)
        for i, method in enumerate(("cam", "gradcam", "layercam")):
            client.predict(handle_file(str(image_files[i])), "predicted", method, "conv3", api_name="/explain")
        kept = {f for block in demo.blocks.values() for f in getattr(block, "keep_in_cache", set())}  # examples
        tracked = {f for s in demo.temp_file_sets for f in s} - kept
        outputs = [f for f in tracked if Path(f).parent.name.startswith("cam-")]
        assert len(outputs) == 3 * 2 and len(tracked) > len(outputs), "each answer's overlay and map, the uploads"
        deadline = time.monotonic() + CLEANUP_AGE_S + 15
        while time.monotonic() < deadline and any(Path(f).exists() for f in tracked):
            time.sleep(0.5)
        left = [f for f in tracked if Path(f).exists()]
        assert not left, f"{len(left)} of {len(tracked)} temporary files not deleted, e.g. {left[:2]}"


def test_a_full_queue_refuses_cleanly(explorer: Explorer, image_files: list[Path]) -> None:
    with serve(app.build_demo(explorer), max_size=1) as url:  # so that 12 simultaneous requests overflow it
        clients = [Client(url, verbose=False, httpx_kwargs=PATIENT) for _ in range(12)]
        jobs = [
            c.submit(handle_file(str(image_files[i % 8])), "baya", "gradcam", "conv1", api_name="/explain")
            for i, c in enumerate(clients)
        ]
        outcomes: list[Any] = []
        for job in jobs:
            try:
                outcomes.append(job.result(timeout=120))
            except Exception as exc:
                outcomes.append(exc)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert errors, "12 simultaneous requests against a queue of 1 should overflow it"
        assert all("queue is full" in str(e).lower() for e in errors), errors
        for o in outcomes:
            if not isinstance(o, Exception):
                assert o[1]["target"] == "baya" and o[1]["layer"] == "conv1"
        client = Client(url, verbose=False, httpx_kwargs=PATIENT)
        assert client.predict(handle_file(str(image_files[1])), "predicted", "cam", "conv3", api_name="/explain")[1]
