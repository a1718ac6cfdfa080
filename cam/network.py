"""The course's GAP classifier, layer for layer, so its checkpoint loads with ``strict=True``.

    conv_layers: Conv(3,16) ReLU Conv(16,32) ReLU Conv(32,64) ReLU   # 3x3, padding 1, no pooling
    gap:         AdaptiveAvgPool2d(1)                                 # (B, 64, H, W) -> (B, 64, 1, 1)
    fc:          Dropout, Linear(64, 4)

Layers are addressed by name, never by index: ``conv1``, ``conv2`` and ``conv3`` are the post-ReLU
outputs ``conv_layers.1``, ``conv_layers.3`` and ``conv_layers.5``. ``conv3`` is what GAP averages,
so it is the only layer where CAM exists (the course's walk-through hooks ``conv_layers[-2]``, the
convolution *before* the ReLU, which breaks the CAM/Grad-CAM identity).
"""

from __future__ import annotations

import torch
from torch import nn

from cam.errors import LayerError

CLASS_NAMES: tuple[str, ...] = ("rudo", "baya", "greg", "yuki")
INPUT_SIZE = 256  # the course trains and serves at 256x256, RGB in [0, 1], no mean/std normalisation

# Short names shown to readers -> module paths inside the network.
LAYER_ALIASES: dict[str, str] = {
    "conv1": "conv_layers.1",
    "conv2": "conv_layers.3",
    "conv3": "conv_layers.5",
}
GAP_LAYER = "conv3"  # the layer whose output feeds global average pooling


class PotPlantGAP(nn.Module):
    """The course network ``cnn_gap``: 23,844 parameters, state-dict keys as in the course checkpoint."""

    def __init__(self, num_classes: int = len(CLASS_NAMES), dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv_layers(x)  # (B, 64, H, W)
        f = self.gap(a).flatten(1)  # (B, 64)
        return self.fc(f)  # (B, C) logits

    @property
    def classifier(self) -> nn.Linear:
        """The linear layer after GAP; its weight row c is w^c in M_c = sum_k w_k^c A^k."""
        layer = self.fc[1]
        assert isinstance(layer, nn.Linear)
        return layer


def layer_names() -> list[str]:
    """Every accepted layer name: the short aliases, then the module paths they stand for."""
    return [*LAYER_ALIASES, *LAYER_ALIASES.values()]


def resolve_layer(module: nn.Module, name: str | None) -> tuple[str, str]:
    """Map a layer name (alias or module path; ``None`` means the GAP layer) to ``(alias, path)``.

    Only the post-ReLU outputs are accepted: they are the feature maps the network actually uses.
    """
    if name is None:
        name = GAP_LAYER
    by_path = {path: alias for alias, path in LAYER_ALIASES.items()}
    if name in LAYER_ALIASES:
        alias, path = name, LAYER_ALIASES[name]
    elif name in by_path:
        alias, path = by_path[name], name
    else:
        valid = ", ".join(layer_names())
        raise LayerError(
            f"Unknown layer {name!r}. Valid layers are: {valid}. "
            f"Use {GAP_LAYER!r} (the output that feeds global average pooling) for CAM."
        )
    try:
        module.get_submodule(path)
    except AttributeError as exc:  # a module that is not the course network
        raise LayerError(f"Layer {alias!r} ({path}) does not exist in this model: {exc}") from exc
    return alias, path
