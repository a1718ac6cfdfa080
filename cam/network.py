"""The course's GAP classifier, layer for layer, so its checkpoint loads with ``strict=True``.

    conv_layers: Conv(3,16) ReLU Conv(16,32) ReLU Conv(32,64) ReLU   # 3x3, padding 1, no pooling
    gap:         AdaptiveAvgPool2d(1)                                 # (B, 64, H, W) -> (B, 64, 1, 1)
    fc:          Dropout, Linear(64, 4)

Layers are addressed by name, never by index: ``conv1``, ``conv2`` and ``conv3`` are the post-ReLU
outputs ``conv_layers.1``, ``conv_layers.3`` and ``conv_layers.5``. ``conv3`` is what GAP averages,
so it is the only layer where CAM exists (the course's walk-through hooks ``conv_layers[-2]``, the
convolution *before* the ReLU, which breaks the CAM/Grad-CAM identity).

Layer geometry is computed from the modules (kernel sizes, strides, padding), never from a table:
`layer_channels` (16, 32, 64), `receptive_field` (3, 5, 7) and `receptive_box`, the input pixels one
feature pixel sees, inclusive-exclusive and clipped to the 256x256 input.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from cam.errors import CamError, LayerError

CLASS_NAMES: tuple[str, ...] = ("rudo", "baya", "greg", "yuki")
INPUT_SIZE = 256  # the course trains and serves at 256x256, RGB in [0, 1], no mean/std normalisation

# Short names shown to readers -> module paths inside the network.
LAYER_ALIASES: dict[str, str] = {
    "conv1": "conv_layers.1",
    "conv2": "conv_layers.3",
    "conv3": "conv_layers.5",
}
GAP_LAYER = "conv3"  # the layer whose output feeds global average pooling
CLASSIFIER = "fc"  # short name of the linear layer after GAP (module path: `PotPlantGAP.classifier`)


class PixelError(CamError, ValueError):
    """A pixel coordinate lies outside the model input (or the feature map)."""


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


# ---------------------------------------------------------------------------------------------
# Geometry of the layers, derived from the module structure (never a table of numbers): the channel
# count is the out_channels of the last convolution up to the layer, the receptive field and its
# offset follow from every kernel, stride, padding and dilation on the way.


@functools.cache
def _structure() -> PotPlantGAP:
    """A parameter-free copy of the network's structure (meta tensors: no memory, no RNG draws)."""
    with torch.device("meta"):
        return PotPlantGAP()


def _modules_up_to(layer: str) -> list[tuple[str, nn.Module]]:
    """(path, module) of every leaf module the input passes through up to ``layer``'s output, in order.

    The feature extractor is a plain chain (`nn.Sequential`), so registration order is forward order.
    """
    _, path = resolve_layer(_structure(), layer)
    chain: list[tuple[str, nn.Module]] = []
    for name, mod in _structure().conv_layers.named_children():
        chain.append((f"conv_layers.{name}", mod))
        if chain[-1][0] == path:
            return chain
    raise LayerError(f"Layer {layer!r} ({path}) is not in the feature extractor.")  # pragma: no cover


def _pair(v: int | tuple[int, ...] | str) -> int:
    """The one value of a square kernel/stride/padding (this network has only square ones)."""
    if isinstance(v, str):
        raise LayerError(f"String padding {v!r} is not supported by the receptive-field arithmetic.")
    values = (v, v) if isinstance(v, int) else tuple(v)
    if len(set(values)) != 1:
        raise LayerError(f"Non-square kernel geometry {values} is not supported.")
    return int(values[0])


@dataclass(frozen=True)
class LayerGeometry:
    """How one feature-map pixel of a layer sees the input.

    Feature pixel i (along either axis) covers input pixels ``i * jump - offset`` up to
    ``i * jump - offset + size - 1`` (before clipping to the image).
    """

    channels: int  # K, feature maps at this layer
    size: int  # receptive field side, input pixels
    jump: int  # input pixels between neighbouring feature pixels (product of strides)
    offset: int  # input pixels the window starts before i * jump (accumulated padding)
    map_side: int  # feature-map side for the INPUT_SIZE x INPUT_SIZE input


@functools.cache
def layer_geometry(layer: str) -> LayerGeometry:
    """Channels, receptive field and stride of ``layer`` (alias or module path), from its kernels.

    The usual recurrence over the chain: size += (k - 1) * dilation * jump; offset += padding * jump;
    jump *= stride; side = (side + 2 padding - dilation (k - 1) - 1) // stride + 1.
    """
    size, jump, offset, side, channels = 1, 1, 0, INPUT_SIZE, 3
    for _, mod in _modules_up_to(layer):
        if isinstance(mod, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.padding)
            d = _pair(mod.dilation) if isinstance(mod, (nn.Conv2d, nn.MaxPool2d)) else 1
            size += (k - 1) * d * jump
            offset += p * jump
            jump *= s
            side = (side + 2 * p - d * (k - 1) - 1) // s + 1
            if isinstance(mod, nn.Conv2d):
                channels = mod.out_channels
    return LayerGeometry(channels=channels, size=size, jump=jump, offset=offset, map_side=side)


def layer_channels(layer: str) -> int:
    """K, the number of feature maps at ``layer``: 16, 32 and 64 for conv1, conv2 and conv3."""
    return layer_geometry(layer).channels


def receptive_field(layer: str) -> int:
    """Side of the square of input pixels one feature-map pixel of ``layer`` depends on.

    3, 5 and 7 for conv1, conv2 and conv3 (three 3x3 stride-1 convolutions: 1 + 2 + 2 + 2).
    """
    return layer_geometry(layer).size


def receptive_box(layer: str, x: int, y: int) -> tuple[int, int, int, int]:
    """The input pixels feature pixel (x, y) of ``layer`` sees, as ``(x0, y0, x1, y1)``.

    Coordinates are pixels of the INPUT_SIZE x INPUT_SIZE model input (for this network the feature
    maps have the same size, so (x, y) is also an input pixel). The box is **inclusive-exclusive**
    (pixels x0 <= u < x1, y0 <= v < y1, as a numpy slice ``[y0:y1, x0:x1]``) and clipped to the
    image: at conv3 an interior pixel gives a 7x7 box, a corner pixel a 4x4 one (the rest of its
    window is zero padding).
    """
    geo = layer_geometry(layer)
    x, y = check_pixel(x, y, geo.map_side, what=f"feature map of {layer!r}")
    x0, y0 = x * geo.jump - geo.offset, y * geo.jump - geo.offset
    return _clip(x0), _clip(y0), _clip(x0 + geo.size), _clip(y0 + geo.size)


def _clip(v: int) -> int:
    return min(max(v, 0), INPUT_SIZE)


def check_pixel(x: object, y: object, side: int = INPUT_SIZE, what: str = "model input") -> tuple[int, int]:
    """(x, y) as ints after checking 0 <= x, y < side; a `PixelError` that says the valid range otherwise.

    x is the column and y the row, as in a click on the image (numpy indexing is ``[y, x]``).
    """
    out = []
    for name, v in (("x", x), ("y", y)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= int(v) < side:
            raise PixelError(
                f"Pixel {name}={v!r} is outside the {side}x{side} {what}; use integers from 0 to {side - 1} "
                "(pixels of the model input, which is the photo squashed to that size)."
            )
        out.append(int(v))
    return out[0], out[1]


def weights_path(layer: str) -> str:
    """Module path of the layer whose parameters produce ``layer``: the convolution before a ReLU
    output (``conv3`` -> ``conv_layers.4``), or ``fc.1`` for ``fc``. Used to randomise one layer."""
    if layer == CLASSIFIER:
        for name, mod in _structure().named_modules():
            if mod is _structure().classifier:
                return name
    convs = [path for path, mod in _modules_up_to(layer) if isinstance(mod, nn.Conv2d)]
    return convs[-1]
