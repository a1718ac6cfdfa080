"""The app served for real and called through gradio_client, as an API user would."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from cam import METHODS, explain
from cam.capture import hook_count
from tests.test_app import launched, load_app, save_images

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_app(tmp_path_factory)


@pytest.fixture(scope="module")
def client(app: ModuleType) -> Iterator[Client]:
    with launched(app) as url:
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory, images: list[np.ndarray]) -> list[Path]:
    return save_images(tmp_path_factory.mktemp("client-imgs"), images)


def layer_for(method: str) -> str:
    return "conv3" if METHODS[method].gap_only else "conv2"


def test_api_lists_one_endpoint(client: Client) -> None:
    info = client.view_api(return_format="dict", print_info=False)
    assert set(info["named_endpoints"]) == {"/explain"}
    assert info["unnamed_endpoints"] == {}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_through_the_api(app: ModuleType, client: Client, paths: list[Path], method: str) -> None:
    layer = layer_for(method)
    overlay, summary, npy = client.predict(handle_file(str(paths[0])), "predicted", method, layer, api_name="/explain")
    direct_picture, direct_summary, direct_npy = app.explain_api(str(paths[0]), "predicted", method, layer)
    assert summary == direct_summary  # the served answer is the library's answer, number for number
    assert np.array_equal(np.load(npy), np.load(direct_npy))
    with Image.open(overlay) as im, Image.open(direct_picture) as direct:
        assert im.format == "JPEG" and im.size == direct.size
    assert Path(overlay).read_bytes() == Path(direct_picture).read_bytes()
    assert hook_count(app.MODEL.module) == 0


def test_targets_and_layers(app: ModuleType, client: Client, paths: list[Path]) -> None:
    for name in app.MODEL.class_names:
        _, summary, npy = client.predict(handle_file(str(paths[3])), name, "gradcam", "conv1", api_name="/explain")
        ref = explain(
            app.MODEL, paths[3], target=name, methods=("gradcam", "cam"), layer={"gradcam": "conv1", "cam": "conv3"}
        )
        assert summary["target"] == name and summary["layer"] == "conv1"
        assert np.array_equal(np.load(npy), ref.maps["gradcam"])


def test_every_example_photo(app: ModuleType, client: Client) -> None:
    if not app.EXAMPLES:
        pytest.skip("examples/ holds no photos yet")
    for ex in app.EXAMPLES:
        _, summary, npy = client.predict(handle_file(str(ex.path)), "predicted", "cam", "conv3", api_name="/explain")
        ref = explain(app.MODEL, ex.path, methods=("cam",))
        assert summary["predicted"] == ref.predicted
        assert np.array_equal(np.load(npy), ref.maps["cam"])


def test_user_errors_arrive_as_clear_app_errors(client: Client, paths: list[Path], tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("this is text, not a photo")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(notes)), "predicted", "cam", "conv3", api_name="/explain")
    with pytest.raises(AppError, match="exists only at 'conv3'"):
        client.predict(handle_file(str(paths[0])), "predicted", "cam", "conv1", api_name="/explain")
    with pytest.raises(AppError, match="tulip"):
        client.predict(handle_file(str(paths[0])), "tulip", "cam", "conv3", api_name="/explain")
    # ... and the server still answers.
    _, summary, _ = client.predict(handle_file(str(paths[0])), "predicted", "cam", "conv3", api_name="/explain")
    assert summary["method"] == "cam"


def test_uploads_over_the_size_limit_are_refused(client: Client, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * 1024 * 1024))
    # gradio_client reads max_file_size from the app's config and refuses before uploading ...
    with pytest.raises(ValueError, match="exceeds the maximum file size of 10485760 bytes"):
        client.predict(handle_file(str(big)), "predicted", "cam", "conv3", api_name="/explain")
    # ... and the server itself answers 413 to anyone who uploads anyway.
    with big.open("rb") as f:
        r = httpx.post(f"{client.src}gradio_api/upload", files={"files": ("big.png", f, "image/png")}, timeout=60)
    assert r.status_code == 413


def test_identical_concurrent_requests_each_get_their_own_complete_files(
    app: ModuleType, client: Client, tmp_path: Path
) -> None:
    """The race this app works around: Gradio 6.31 saves array outputs to a content-addressed file
    *in place*, so identical answers rewrite one file while clients download it ("peer closed
    connection without sending complete message body" was seen with 8 clients). Every answer must
    name its own file, and every download must be complete and identical to the others."""
    rng = np.random.default_rng(3)
    photo = tmp_path / "noisy.jpg"  # a big, noisy overlay: long downloads, a wide window for the race
    Image.fromarray(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)).save(photo, quality=95)
    url = client.src

    def one(_: int) -> tuple[str, bytes, int]:
        c = Client(url, verbose=False, download_files=False)
        overlay, _, _ = c.predict(handle_file(str(photo)), "predicted", "cam", "conv3", api_name="/explain")
        with httpx.stream("GET", overlay["url"], timeout=60) as r:  # raises if the body is cut short
            r.raise_for_status()
            body = r.read()
            declared = int(r.headers["content-length"])
        return overlay["path"], body, declared

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    paths = [p for p, _, _ in answers]
    assert len(set(paths)) == 8 and len({Path(p).parent for p in paths}) == 8, "one fresh file per answer"
    bodies = {body for _, body, _ in answers}
    assert len(bodies) == 1 and all(len(body) == declared for _, body, declared in answers)
    with Image.open(io.BytesIO(bodies.pop())) as im:
        im.load()  # a complete JPEG
        assert im.format == "JPEG" and im.size == (1024, 768)
