"""The baseline of P5 and P12: a Gradio app with the same ``/explain`` inputs and outputs as app.py,
minus the work, and a page that shows a picture on arrival the way app.py shows its explained example.

It is launched exactly like app.py (``python benchmarks/echo_app.py`` with ``GRADIO_SERVER_PORT``,
``GRADIO_SERVER_NAME``, the same queue and launch settings that matter for a round trip), so
``/explain`` round trip of app.py divided by this one's is what our code adds on top of Gradio itself.

What it keeps, so that only the model and our image handling differ:
  * the input component: ``gr.Image(type="filepath")`` that passes the uploaded path on without
    decoding it (app.py's ``ImageInput`` does the same), and the three dropdowns;
  * the outputs: an RGB picture of the size app.py would return (the photo's long side capped at
    1024 px, read from the header only, never decoded), encoded by Gradio as JPEG; a JSON summary
    with the same keys; a 256x256 float32 ``.npy`` file written to Gradio's upload folder.
  * P12's page: on load, one event fills a photo-vs-overlay `gr.ImageSlider` (``#echo-slider``) with
    two JPEG pictures of an example's display size (512x512), as app.py's load event fills
    ``#cam-slider`` with the default example; the time to that picture is Gradio's own page cost.
  * the hidden echo controls app.py has for the browser rows (``#echo-in``, ``#echo-btn``,
    ``#echo-out``), so the harness can be checked against this app too.

Benchmarks are not part of the ``cam`` package; this file imports gradio only because a Gradio
endpoint is what it stands in for.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import hashlib
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.data_classes import ImageData
from PIL import Image

DISPLAY_MAX_SIDE = 1024  # as cam.images.DISPLAY_MAX_SIDE (not imported: no torch in this process)
MAP_SIDE = 256


def path_image(**kwargs: Any) -> gr.Image:
    """``gr.Image(type="filepath")`` whose preprocessing hands on the uploaded file's path untouched,
    as app.py's ``ImageInput`` does. (An instance override rather than a subclass: Gradio writes a
    ``.pyi`` stub next to the source of every Component subclass.)"""
    image = gr.Image(type="filepath", image_mode=None, format="jpeg", **kwargs)

    def preprocess(payload: ImageData | None) -> str | None:
        if payload is None or payload.path is None:
            raise gr.Error("No image was received.")
        return str(payload.path)

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


@lru_cache(maxsize=16)
def _picture(width: int, height: int) -> np.ndarray:
    """A smooth (H, W, 3) uint8 picture, so the JPEG encoder works about as hard as on an overlay."""
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    rgb = np.stack(
        [
            np.broadcast_to(x, (height, width)),
            np.broadcast_to(y, (height, width)),
            (x + y) / 2 * np.ones((height, width), np.float32),
        ],
        axis=-1,
    )
    out = rgb.astype(np.uint8)
    out.setflags(write=False)
    return out


def _npy_path() -> str:
    buf = io.BytesIO()
    np.save(buf, np.zeros((MAP_SIDE, MAP_SIDE), np.float32))
    data = buf.getvalue()
    folder = Path(gr.utils.get_upload_folder()) / ("echo-" + hashlib.sha256(data).hexdigest()[:32])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "map.npy"
    if not path.exists():
        path.write_bytes(data)
    return str(path)


def echo_api(image: str | None, target: str, method: str, layer: str) -> tuple[np.ndarray, dict[str, Any], str]:
    """Same signature and output kinds as app.explain_api, no network and no decode."""
    if image is None:
        raise gr.Error("No image was sent.")
    with Image.open(image) as im:  # header only
        w, h = im.size
    s = min(1.0, DISPLAY_MAX_SIDE / max(w, h))
    picture = _picture(max(1, round(w * s)), max(1, round(h * s)))
    summary = {
        "target": target,
        "predicted": target,
        "probabilities": {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25},
        "method": method,
        "layer": layer,
        "has_positive_evidence": True,
        "map_min": 0.0,
        "map_max": 1.0,
        "map_shape": [MAP_SIDE, MAP_SIDE],
        "logit": 0.0,
        "mean_cam_plus_bias": 0.0,
        "image_size": [w, h],
        "model": {"source": "echo", "sha256": "0" * 64, "is_demo_model": True},
    }
    return picture, summary, _npy_path()


EXAMPLE_SIDE = 512  # the examples' size (examples/*.jpg), so the picture costs what app.py's does


def on_load() -> tuple[np.ndarray, np.ndarray]:
    """The page's first picture: photo and "overlay" of the example's size, no work."""
    picture = _picture(EXAMPLE_SIDE, EXAMPLE_SIDE)
    return picture, picture[::-1].copy()


with gr.Blocks(title="echo") as demo:
    gr.Markdown("# echo\nThe baseline page of the browser benchmarks.")
    slider = gr.ImageSlider(label="photo and overlay", format="jpeg", elem_id="echo-slider", max_height=520)
    with gr.Column(visible="hidden"):  # rendered (the browser can drive it) but not shown
        echo_in, echo_out = gr.Textbox(elem_id="echo-in"), gr.Textbox(elem_id="echo-out")
        echo_btn = gr.Button("echo", elem_id="echo-btn")
    echo_btn.click(lambda text: text, echo_in, echo_out, queue=False, api_visibility="private")
    demo.load(on_load, None, slider, api_visibility="private")
    with gr.Column(visible=False):
        api_image = path_image(label="image")
        api_target = gr.Dropdown(["predicted", "rudo", "baya", "greg", "yuki"], value="predicted", label="target")
        api_method = gr.Dropdown(["cam", "gradcam"], value="cam", label="method")
        api_layer = gr.Dropdown(["conv1", "conv2", "conv3"], value="conv3", label="layer")
        api_overlay = gr.Image(label="overlay", format="jpeg")
        api_summary = gr.JSON(label="summary")
        api_map = gr.File(label="raw map (.npy)")
        api_button = gr.Button("explain")
    api_button.click(
        echo_api,
        [api_image, api_target, api_method, api_layer],
        [api_overlay, api_summary, api_map],
        api_name="explain",
        concurrency_id="echo",
    )

# Same queue settings as app.py where they affect a round trip (read from the environment so the
# harness can keep the two in step).
demo.queue(max_size=64, default_concurrency_limit=int(os.environ.get("ECHO_CONCURRENCY", "2")), api_open=False)

if __name__ == "__main__":
    # The same theme as app.py: the page fetches the same fonts and styles.
    demo.launch(max_file_size="10mb", show_error=False, ssr_mode=False, quiet=True, theme=gr.themes.Soft())
