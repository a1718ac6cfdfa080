"""Layer geometry derived from the module structure: channels, receptive fields and their boxes,
checked against the network itself (captured activations; gradients of one feature pixel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cam import LayerError
from cam.capture import capture
from cam.model import CamModel
from cam.network import (
    INPUT_SIZE,
    LAYER_ALIASES,
    PixelError,
    PotPlantGAP,
    layer_channels,
    layer_geometry,
    receptive_box,
    receptive_field,
    resolve_layer,
    weights_path,
)


def test_channels_and_receptive_fields_match_the_course_network() -> None:
    assert [layer_channels(lay) for lay in ("conv1", "conv2", "conv3")] == [16, 32, 64]
    assert [receptive_field(lay) for lay in ("conv1", "conv2", "conv3")] == [3, 5, 7]
    for alias, path in LAYER_ALIASES.items():  # module paths work too
        assert layer_geometry(path) == layer_geometry(alias)
        assert layer_geometry(alias).map_side == INPUT_SIZE and layer_geometry(alias).jump == 1


def test_channels_equal_the_captured_activations(fixture_model: CamModel) -> None:
    module = fixture_model.module
    paths = list(LAYER_ALIASES.values())
    with capture(module, paths) as acts:
        module(torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE))
    for alias, path in LAYER_ALIASES.items():
        assert acts[path].shape == (1, layer_channels(alias), INPUT_SIZE, INPUT_SIZE)


def test_geometry_is_read_from_the_modules_not_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network with other kernels gives other numbers: the values are computed, not stored."""
    import cam.network as network

    class Wider(PotPlantGAP):
        def __init__(self) -> None:
            super().__init__()
            self.conv_layers[2] = torch.nn.Conv2d(16, 24, kernel_size=5, padding=2)
            self.conv_layers[4] = torch.nn.Conv2d(24, 64, kernel_size=3, padding=1)

    with torch.device("meta"):
        wider = Wider()
    monkeypatch.setattr(network, "_structure", lambda: wider)
    layer_geometry.cache_clear()
    try:
        assert network.layer_channels("conv2") == 24
        assert network.receptive_field("conv2") == 7 and network.receptive_field("conv3") == 9
        assert network.receptive_box("conv3", 100, 100) == (96, 96, 105, 105)
    finally:
        layer_geometry.cache_clear()


def _all_active_network() -> PotPlantGAP:
    """Positive weights and biases: every ReLU is active on a positive input, so a feature pixel's
    gradient is non-zero exactly on its receptive field."""
    net = PotPlantGAP().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.05)
    return net


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
@pytest.mark.parametrize("xy", [(0, 0), (1, 2), (100, 37), (255, 255), (254, 0), (3, 128)])
def test_receptive_box_is_where_the_gradient_reaches(layer: str, xy: tuple[int, int]) -> None:
    net = _all_active_network()
    _, path = resolve_layer(net, layer)
    x_in = torch.full((1, 3, INPUT_SIZE, INPUT_SIZE), 0.5, requires_grad=True)
    with capture(net, [path]) as acts, torch.enable_grad():
        net(x_in)
    x, y = xy
    (g,) = torch.autograd.grad(acts[path][0, :, y, x].sum(), x_in)
    rows, cols = np.nonzero(g[0].abs().sum(0).numpy())
    expected = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)  # inclusive-exclusive
    assert receptive_box(layer, x, y) == expected


def test_receptive_box_is_clipped_and_inclusive_exclusive() -> None:
    assert receptive_box("conv3", 100, 50) == (97, 47, 104, 54)  # 7x7
    assert receptive_box("conv3", 0, 0) == (0, 0, 4, 4)  # the rest of the window is padding
    assert receptive_box("conv3", 255, 255) == (252, 252, 256, 256)
    assert receptive_box("conv1", 10, 20) == (9, 19, 12, 22)
    assert receptive_box("conv3", np.int64(5), np.int32(6)) == (2, 3, 9, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [(-1, 0), (0, 256), (256, 3), (1.5, 2), (True, 3), ("1", 2)])
def test_receptive_box_refuses_pixels_outside_the_map(bad: tuple[object, object]) -> None:
    with pytest.raises(PixelError, match="from 0 to 255"):
        receptive_box("conv3", *bad)  # type: ignore[arg-type]


def test_unknown_layer_is_a_layer_error() -> None:
    with pytest.raises(LayerError, match="Unknown layer 'conv4'"):
        receptive_field("conv4")
    with pytest.raises(LayerError, match="Unknown layer"):
        layer_channels("conv_layers.4")  # the convolution before the ReLU is not a feature layer


def test_weights_paths_name_the_parameterised_layers() -> None:
    assert [weights_path(n) for n in ("conv1", "conv2", "conv3", "fc")] == [
        "conv_layers.0",
        "conv_layers.2",
        "conv_layers.4",
        "fc.1",
    ]
    net = PotPlantGAP()
    assert net.get_submodule(weights_path("fc")) is net.classifier


def test_structure_does_not_draw_from_the_global_rng() -> None:
    import cam.network as network

    network._structure.cache_clear()
    layer_geometry.cache_clear()
    state = torch.random.get_rng_state()
    assert receptive_field("conv3") == 7
    assert torch.equal(state, torch.random.get_rng_state())
