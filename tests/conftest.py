"""Shared fixtures. Tests never touch the network: these variables are set before anything imports
huggingface_hub or gradio (both read them at import time)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.pop("CAM_MODEL", None)

import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cam.checkpoint import build_module
from cam.model import CamModel, Provenance
from cam.network import LAYER_ALIASES, PotPlantGAP

if TYPE_CHECKING:  # gradio and the app are imported by the fixtures that need them (import gradio: ~2 s)
    import gradio as gr

    from explorer.explorer import Explorer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def make_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A course-shaped state dict with seeded weights (a test fixture, never shown as a model).

    The fc layer gets distinct, partly negative weights and non-zero biases so that classes differ
    and some have no positive evidence on some images.
    """
    g = torch.Generator().manual_seed(seed)
    net = PotPlantGAP()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    for k, v in state.items():
        state[k] = torch.randn(v.shape, generator=g) * (0.3 if v.dim() > 1 else 0.1)
    return state


@pytest.fixture(scope="session")
def state_dict() -> dict[str, torch.Tensor]:
    return make_state_dict(0)


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory: pytest.TempPathFactory, state_dict: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model.pth"
    torch.save(state_dict, path)
    return path


@pytest.fixture(scope="session")
def fixture_model(state_dict: dict[str, torch.Tensor]) -> CamModel:
    """A CamModel on seeded test weights, built without touching disk or the Hub."""
    prov = Provenance(source="file", requested="test", path="<memory>", sha256="0" * 64, size=0)
    return CamModel(module=build_module(state_dict), provenance=prov)


@pytest.fixture(scope="session")
def images() -> list[np.ndarray]:
    """A few seeded RGB uint8 images of different sizes."""
    rng = np.random.default_rng(0)
    out = []
    for h, w in [(256, 256), (300, 200), (120, 480), (512, 512)]:
        base = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
        img = np.kron(base, np.ones((8, 8, 1)))[:h, :w]  # blocky, so maps have structure
        out.append(np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8))
    return out


# ------------------------------------------------------------------------------------------------
# Photos whose predictions are not all ~100 % for the fixture model, so percentages mean something.

# (colour scale of a dark blocky photo) -> the fixture model's verdict, measured: rudo 48 %,
# greg 39 %, yuki 68 %: three different predicted classes, none near 0 or 100 %.
PHOTO_TINTS = {"teal": (0, 40, 40), "blue": (0, 0, 60), "olive": (40, 40, 0)}


def tinted_photo(tint: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A 256x256 RGB photo of 8x8 blocks (the model input as is: no resizing when it is loaded)."""
    rng = np.random.default_rng(seed)
    base = (rng.random(size=(33, 33, 3)) * np.array(tint)).astype(np.float32)
    return np.kron(base, np.ones((8, 8, 1)))[:256, :256].astype(np.uint8)


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> a 256x256 PNG (lossless, model-input size) saved under a temporary folder."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name, tint in PHOTO_TINTS.items():
        out[name] = folder / f"{name}.png"
        Image.fromarray(tinted_photo(tint)).save(out[name])
    return out


# ------------------------------------------------------------------------------------------------
# An independent reference: the fixture network in plain float64 torch, autograd for Grad-CAM.


@dataclass(frozen=True)
class Reference:
    """What the page should show for one photo, computed without `cam` (float64)."""

    logits: np.ndarray  # (C,)
    bias: np.ndarray  # (C,)
    fc: np.ndarray  # (C, K) the fc weights w
    acts: dict[str, np.ndarray]  # layer -> (K, H, W) post-ReLU activations
    alpha: dict[str, np.ndarray]  # layer -> (C, K) mean gradient dy_c / dA^k

    @property
    def probabilities(self) -> np.ndarray:
        z = self.logits - self.logits.max()
        return np.exp(z) / np.exp(z).sum()

    def cam(self, c: int) -> np.ndarray:
        """sum_k w_k^c A^k at conv3, (H, W)."""
        return np.tensordot(self.fc[c], self.acts["conv3"], axes=1)

    def gradcam(self, c: int, layer: str) -> np.ndarray:
        """sum_k alpha_k^c A^k at ``layer``, before ReLU, (H, W)."""
        return np.tensordot(self.alpha[layer][c], self.acts[layer], axes=1)


def reference(module: PotPlantGAP, photo: np.ndarray) -> Reference:
    """Forward the course network by hand (conv-ReLU x3, mean, linear) in float64 for the logits and
    activations, and take every class's gradient with respect to every layer's activations with
    autograd (float32: a float64 backward costs ~7 s here)."""
    x = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None] / 255.0
    convs = [m for m in module.conv_layers if isinstance(m, torch.nn.Conv2d)]
    fc = module.classifier
    layers = list(LAYER_ALIASES)  # conv1, conv2, conv3: the outputs of the three ReLUs

    def forward(dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, acts = x.to(dtype), []
        for conv in convs:
            assert conv.bias is not None
            h = torch.relu(F.conv2d(h, conv.weight.to(dtype), conv.bias.to(dtype), padding=conv.padding))
            acts.append(h)
        return F.linear(h.mean(dim=(2, 3)), fc.weight.to(dtype), fc.bias.to(dtype))[0], acts

    with torch.no_grad():
        logits, acts = forward(torch.float64)
    with torch.enable_grad():
        logits32, acts32 = forward(torch.float32)
        alpha: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
        for c in range(logits32.shape[0]):
            grads = torch.autograd.grad(logits32[c], acts32, retain_graph=True)
            for layer, g in zip(layers, grads, strict=True):
                alpha[layer].append(g[0].double().mean(dim=(1, 2)).numpy())
    return Reference(
        logits=logits.numpy(),
        bias=fc.bias.detach().double().numpy(),
        fc=fc.weight.detach().double().numpy(),
        acts={layer: a[0].numpy() for layer, a in zip(layers, acts, strict=True)},
        alpha={layer: np.stack(v) for layer, v in alpha.items()},
    )


class References(dict[str, Reference]):
    """photo name -> `Reference`, computed on first use (a few seconds each on a busy machine)."""

    def __init__(self, module: PotPlantGAP, photos: dict[str, Path]) -> None:
        super().__init__()
        self.module, self.photos = module, photos

    def __missing__(self, name: str) -> Reference:
        self[name] = reference(self.module, read_png(self.photos[name]))
        return self[name]


@pytest.fixture(scope="session")
def refs(fixture_model: CamModel, photos: dict[str, Path]) -> References:
    """The independent reference of each of `photos`, for the fixture model."""
    return References(fixture_model.module, photos)


def scaled(m: np.ndarray) -> np.ndarray:
    """ReLU then min-max to [0, 1], as the page describes its overlays (written out again here)."""
    r = np.maximum(m, 0)
    return (r - r.min()) / (r.max() - r.min())


def read_png(path: str | Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------------------------------
# The app on the fixture model: an Explorer, the demo built on it, and the demo served.


def make_explorer_for(model: CamModel, **kwargs: Any) -> Explorer:
    """An `Explorer` on ``model`` writing into Gradio's upload folder (where the served app may read)."""
    import gradio as gr

    from explorer.explorer import Explorer

    return Explorer(model, EXAMPLES, Path(gr.utils.get_upload_folder()), **kwargs)


@pytest.fixture(scope="session")
def explorer(fixture_model: CamModel) -> Explorer:
    """One Explorer for the session (its store keeps what earlier tests computed: use `make_explorer`
    for a fresh one when counting network runs). Faithfulness curves with 4 steps: 3 + 7 passes a map."""
    return make_explorer_for(fixture_model, faithfulness_steps=4)


@pytest.fixture
def make_explorer(fixture_model: CamModel) -> Callable[..., Explorer]:
    """A fresh Explorer on the fixture model (or ``model=...``), keyword arguments as `Explorer`'s."""

    def make(model: CamModel | None = None, **kwargs: Any) -> Explorer:
        kwargs.setdefault("faithfulness_steps", 4)
        return make_explorer_for(model or fixture_model, **kwargs)

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(demo: gr.Blocks, **queue: Any) -> Iterator[str]:
    """``demo`` queued and launched as app.py serves it (its launch_kwargs()), on 127.0.0.1 at a free
    port; ``queue`` overrides the queue settings. Yields the URL; closes the server afterwards."""
    import app

    settings = {"max_size": app.QUEUE_MAX_SIZE, "default_concurrency_limit": app.CONCURRENCY_LIMIT, "api_open": False}
    demo.queue(**(settings | queue))
    for attempt in range(5):  # a port free a moment ago may since serve a client connection
        try:
            _, url, _ = demo.launch(
                prevent_thread_lock=True,
                quiet=True,
                server_name="127.0.0.1",
                server_port=free_port(),
                **app.launch_kwargs(),
            )
            break
        except OSError:
            if attempt == 4:
                raise
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="session")
def served_app(explorer: Explorer) -> Iterator[str]:
    """`app.build_demo(explorer)` served for the whole session; yields its URL."""
    import app

    with serve(app.build_demo(explorer)) as url:
        yield url
