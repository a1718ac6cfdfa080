"""Shared fixtures. Tests never touch the network: these variables are set before anything imports
huggingface_hub or gradio (both read them at import time)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.pop("CAM_MODEL", None)

from pathlib import Path

import numpy as np
import pytest
import torch

from cam.checkpoint import build_module
from cam.model import CamModel, Provenance
from cam.network import PotPlantGAP


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
