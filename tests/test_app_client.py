"""The app served for real (`app.build_demo` on the fixture model) and called through gradio_client,
as an API user would: `/explain` for every method and `/channels` per issue 13, each checked against
the independent reference of tests/conftest.py; errors; the upload limit; the untrusted-path refusal."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from cam import METHODS, explain
from cam.capture import hook_count
from cam.model import CamModel
from explorer.trusted import UNTRUSTED_PATH_MESSAGE
from tests.conftest import EXAMPLES, References

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")
CLASSES = ("rudo", "baya", "greg", "yuki")


@pytest.fixture(scope="module")
def client(served_app: str) -> Client:
    return Client(served_app, verbose=False)


def layer_for(method: str) -> str:
    if method == "scorecam":
        return "conv1"  # one masked pass per channel: 16 at conv1, 64 at conv3
    return "conv3" if METHODS[method].gap_only else "conv2"


def test_the_api_page_lists_the_public_endpoints(client: Client) -> None:
    info = client.view_api(return_format="dict", print_info=False)
    assert {"/explain", "/channels"} <= set(info["named_endpoints"])
    assert info["unnamed_endpoints"] == {}, "no page event is callable as an API"


@pytest.mark.parametrize(
    "method", [pytest.param(m, marks=pytest.mark.slow) if METHODS[m].needs_model else m for m in METHODS]
)
def test_explain_answers_every_method_with_the_true_map(
    client: Client, fixture_model: CamModel, photos: dict[str, Path], refs: References, method: str
) -> None:
    layer = layer_for(method)
    overlay, summary, npy = client.predict(handle_file(str(photos["teal"])), "predicted", method, layer,
                                           api_name="/explain")  # fmt: skip
    ref = refs["teal"]
    c = int(np.argmax(ref.logits))
    raw = np.load(npy)
    assert raw.dtype == np.float32 and raw.shape == (256, 256)
    if method == "cam":
        np.testing.assert_allclose(raw, ref.cam(c), rtol=1e-5, atol=1e-5 * np.abs(ref.cam(c)).max())
    elif method == "gradcam":
        gc = ref.gradcam(c, layer)
        np.testing.assert_allclose(raw, gc, rtol=1e-4, atol=1e-5 * np.abs(gc).max())
    else:  # the library's own map for this method, served unchanged
        lib = explain(fixture_model, photos["teal"], methods=(method,), layer=layer).maps[method]
        np.testing.assert_allclose(raw, lib, rtol=1e-5, atol=1e-6 * float(np.abs(lib).max()))
    assert summary["target"] == summary["predicted"] == CLASSES[c]
    assert summary["method"] == method and summary["layer"] == layer
    np.testing.assert_allclose([summary["probabilities"][n] for n in CLASSES], ref.probabilities, rtol=1e-5)
    assert summary["logit"] == pytest.approx(float(ref.logits[c]), abs=2e-5)
    assert summary["mean_cam_plus_bias"] == pytest.approx(float(ref.logits[c]), abs=2e-5)
    assert summary["map_min"] == float(raw.min()) and summary["map_max"] == float(raw.max())
    assert summary["has_positive_evidence"] == bool((raw > 0).any())
    assert summary["caveat"] is None, "the fixture model is not the demo model: no caveat"
    assert summary["model"]["source"] == "file" and summary["model"]["is_demo_model"] is False
    with Image.open(overlay) as im:
        assert im.format == "JPEG" and im.size == (256, 256)
    assert hook_count(fixture_model.module) == 0


CHANNEL_KEYS = {"k", "weight", "gap", "contribution", "alpha", "alpha_hw"}


def test_channels_at_conv3_is_the_lesson_s_weighted_sum(client: Client, photos: dict[str, Path],
                                                        refs: References) -> None:  # fmt: skip
    ref = refs["blue"]
    x, y = 200, 31
    gap = ref.acts["conv3"].mean(axis=(1, 2))
    for c, name in enumerate(CLASSES):
        out = client.predict(handle_file(str(photos["blue"])), name, "conv3", x, y, api_name="/channels")
        assert set(out) == {"class", "layer", "logit", "bias", "channels", "pixel"}
        assert (out["class"], out["layer"]) == (name, "conv3")
        assert out["logit"] == pytest.approx(float(ref.logits[c]), abs=2e-5)
        assert out["bias"] == pytest.approx(float(ref.bias[c]), abs=1e-7)
        chans = out["channels"]
        assert [ch["k"] for ch in chans] == list(range(64)) and all(set(ch) == CHANNEL_KEYS for ch in chans)
        w = np.array([ch["weight"] for ch in chans])
        np.testing.assert_allclose(w, ref.fc[c], rtol=1e-7), "weight is the fc row"
        np.testing.assert_allclose([ch["gap"] for ch in chans], gap, rtol=1e-5, atol=1e-7)
        contrib = np.array([ch["contribution"] for ch in chans])
        np.testing.assert_allclose(contrib, ref.fc[c] * gap, rtol=1e-5, atol=1e-7)
        assert contrib.sum() + out["bias"] == pytest.approx(float(ref.logits[c]), abs=2e-5), "sum + b = logit"
        np.testing.assert_allclose([ch["alpha_hw"] for ch in chans], w, rtol=1e-4, atol=1e-7), "alpha x HW = w"
        np.testing.assert_allclose([ch["alpha"] for ch in chans], ref.alpha["conv3"][c], rtol=1e-4, atol=1e-10)
        pixel = out["pixel"]
        assert (pixel["x"], pixel["y"]) == (x, y) and len(pixel["terms"]) == 64
        terms = ref.fc[c] * ref.acts["conv3"][:, y, x]  # row y, column x
        np.testing.assert_allclose(pixel["terms"], terms, rtol=1e-5, atol=1e-6)
        assert sum(pixel["terms"]) == pytest.approx(pixel["cam"], abs=1e-5)
        assert pixel["cam"] == pytest.approx(float(ref.cam(c)[y, x]), abs=5e-5), "the CAM map there"


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_channels_below_conv3_has_no_weights(client: Client, photos: dict[str, Path], refs: References,
                                             layer: str) -> None:  # fmt: skip
    ref = refs["olive"]
    c = 1  # baya
    out = client.predict(handle_file(str(photos["olive"])), "baya", layer, 5, 250, api_name="/channels")
    chans = out["channels"]
    k = {"conv1": 16, "conv2": 32}[layer]
    assert len(chans) == k and out["layer"] == layer
    assert all(ch["weight"] is None and ch["contribution"] is None for ch in chans)
    np.testing.assert_allclose([ch["alpha"] for ch in chans], ref.alpha[layer][c], rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose([ch["alpha_hw"] for ch in chans], ref.alpha[layer][c] * 65536, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose([ch["gap"] for ch in chans], ref.acts[layer].mean(axis=(1, 2)), rtol=1e-5, atol=1e-8)
    assert out["pixel"]["cam"] is None
    np.testing.assert_allclose(out["pixel"]["terms"], ref.alpha[layer][c] * ref.acts[layer][:, 250, 5],
                               rtol=1e-4, atol=1e-9)  # fmt: skip
    none = client.predict(handle_file(str(photos["olive"])), "baya", layer, -1, -1, api_name="/channels")
    assert none["pixel"] is None


def test_clear_errors_arrive_as_app_errors(client: Client, photos: dict[str, Path], tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("this is text, not a photo")
    photo = handle_file(str(photos["teal"]))
    for args, api, message in (
        ((handle_file(str(notes)), "predicted", "cam", "conv3"), "/explain", "not an image"),
        ((photo, "predicted", "cam", "conv1"), "/explain", "exists only at 'conv3'"),
        ((photo, "tulip", "cam", "conv3"), "/explain", "Unknown target class 'tulip'"),
        ((photo, "predicted", "gradcam+++", "conv3"), "/explain", "Unknown method 'gradcam+++'"),
        ((photo, "predicted", "gradcam", "conv9"), "/explain", "Unknown layer 'conv9'"),
        ((photo, "predicted", "conv3", 300, 5), "/channels", "Pixel x=300 is outside the 256x256 model input"),
        ((photo, "predicted", "conv9", 1, 1), "/channels", "Unknown layer 'conv9'"),
    ):
        with pytest.raises(AppError) as info:
            client.predict(*args, api_name=api)
        assert message in str(info.value), (args[1:], str(info.value))
    _, summary, _ = client.predict(photo, "predicted", "cam", "conv3", api_name="/explain")
    assert summary["method"] == "cam", "the server still answers"


def test_a_path_the_server_did_not_receive_is_refused_with_the_fixed_message(client: Client) -> None:
    """A bare ``{"path": ...}`` (no upload): gradio_client sends it as is. The reply is the one fixed
    refusal (test_attacks.py tries the raw-HTTP variants)."""
    for path in ("/etc/hostname", str(EXAMPLES / ".." / "README.md")):
        with pytest.raises(AppError) as info:
            client.predict({"path": path}, "predicted", "cam", "conv3", api_name="/explain")
        assert str(info.value) == UNTRUSTED_PATH_MESSAGE
    # The shipped examples may be named: they are public.
    _, summary, _ = client.predict({"path": str(EXAMPLES / "rudo_1.jpg")}, "predicted", "cam", "conv3",
                                   api_name="/explain")  # fmt: skip
    assert summary["method"] == "cam"


def test_uploads_over_the_size_limit_are_refused(client: Client, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * 1024 * 1024))
    with pytest.raises(ValueError, match="exceeds the maximum file size of 10485760 bytes"):
        client.predict(handle_file(str(big)), "predicted", "cam", "conv3", api_name="/explain")
    with big.open("rb") as f:  # ... and the server itself answers 413 to anyone who uploads anyway
        r = httpx.post(f"{client.src}gradio_api/upload", files={"files": ("big.png", f, "image/png")}, timeout=60)
    assert r.status_code == 413


@pytest.mark.slow
def test_identical_concurrent_requests_each_get_their_own_complete_files(client: Client, tmp_path: Path) -> None:
    """Gradio 6.31 saves array outputs to a content-addressed file *in place*, so identical answers
    would rewrite one file while clients download it. Every answer must name its own file, and
    every download must be complete and identical to the others."""
    rng = np.random.default_rng(3)
    photo = tmp_path / "noisy.jpg"  # a big, noisy overlay: long downloads, a wide window for the race
    Image.fromarray(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)).save(photo, quality=95)

    def one(_: int) -> tuple[str, bytes, int]:
        c = Client(client.src, verbose=False, download_files=False)
        overlay: Any = c.predict(handle_file(str(photo)), "predicted", "cam", "conv3", api_name="/explain")[0]
        with httpx.stream("GET", overlay["url"], timeout=60) as r:  # raises if the body is cut short
            r.raise_for_status()
            body = r.read()
            declared = int(r.headers["content-length"])
        return overlay["path"], body, declared

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    paths = [p for p, _, _ in answers]
    assert len(set(paths)) == 6 and len({Path(p).parent for p in paths}) == 6, "one fresh file per answer"
    bodies = {body for _, body, _ in answers}
    assert len(bodies) == 1 and all(len(body) == declared for _, body, declared in answers)
    with Image.open(io.BytesIO(bodies.pop())) as im:
        im.load()  # a complete JPEG
        assert im.format == "JPEG" and im.size == (1024, 768)
