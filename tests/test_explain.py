"""The maths of CAM and Grad-CAM on the course network, and the hygiene of the hook plumbing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torchcam.methods import CAM, GradCAM

from cam import LayerError, MethodError, TargetError, explain, explain_batch
from cam.capture import capture, hook_count
from cam.checkpoint import build_module
from cam.model import CamModel
from cam.network import CLASS_NAMES, INPUT_SIZE, resolve_layer
from cam.render import scale_map

HW = INPUT_SIZE * INPUT_SIZE


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def test_cam_equals_gradcam_times_hw_for_every_class(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    for img in images:
        r = explain(fixture_model, img, all_classes=True)
        for c in range(len(CLASS_NAMES)):
            rc = r.for_target(c)
            cam, gc = rc.maps["cam"], rc.maps["gradcam"]
            assert cam.shape == (INPUT_SIZE, INPUT_SIZE) and cam.dtype == np.float32
            assert rel_err(gc * HW, cam) < 1e-5
            # Identical after ReLU and min-max scaling: what a reader sees.
            assert np.abs(scale_map(cam) - scale_map(gc)).max() < 1e-5


def test_mean_cam_plus_bias_is_the_logit(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    for img in images:
        r = explain(fixture_model, img, all_classes=True)
        for c in range(len(CLASS_NAMES)):
            got, logit = r.for_target(c).logit_check()
            assert got == pytest.approx(logit, rel=1e-5, abs=1e-5)
        # and against an independent forward pass of the module
        with torch.no_grad():
            logits = fixture_model.module(r.image.tensor())[0].numpy()  # type: ignore[union-attr]
        np.testing.assert_allclose(r.logits, logits, rtol=1e-6, atol=1e-6)


def test_probabilities_and_predicted_target(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    r = explain(fixture_model, images[0])
    probs = r.probabilities
    assert list(probs) == list(CLASS_NAMES)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert r.target == max(probs, key=probs.__getitem__) == r.predicted


@pytest.mark.parametrize("target", ["baya", "BAYA", 1, "1"])
def test_target_by_name_or_index(fixture_model: CamModel, images: list[np.ndarray], target: str | int) -> None:
    r = explain(fixture_model, images[1], target=target)
    assert r.target == "baya" and r.target_index == 1


def test_earlier_layers_have_gradcam_that_differs_from_cam(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    cam = explain(fixture_model, images[0], methods=("cam",)).maps["cam"]
    for layer, path in [("conv1", "conv_layers.1"), ("conv2", "conv_layers.3")]:
        r = explain(fixture_model, images[0], methods=("gradcam",), layer=layer)
        by_path = explain(fixture_model, images[0], methods=("gradcam",), layer=path)
        assert r.layers == {"gradcam": layer}
        np.testing.assert_array_equal(r.maps["gradcam"], by_path.maps["gradcam"])
        assert np.abs(scale_map(r.maps["gradcam"]) - scale_map(cam)).max() > 0.05


def test_mixed_layers_in_one_call_match_separate_calls(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    both = explain(fixture_model, images[2], methods=("cam", "gradcam"), layer={"gradcam": "conv1"})
    cam = explain(fixture_model, images[2], methods=("cam",))
    gc = explain(fixture_model, images[2], methods=("gradcam",), layer="conv1")
    np.testing.assert_allclose(both.maps["cam"], cam.maps["cam"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(both.maps["gradcam"], gc.maps["gradcam"], rtol=1e-5, atol=1e-9)
    assert both.layers == {"cam": "conv3", "gradcam": "conv1"}


def test_gradient_shortcut_equals_full_graph_gradient(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    """capture(grad_from=...) cuts autograd before the layer; dy/dA must equal the full-graph value."""
    module = fixture_model.module
    x = explain(fixture_model, images[0]).image.tensor()  # type: ignore[union-attr]
    for path in ["conv_layers.1", "conv_layers.3", "conv_layers.5"]:
        with capture(module, [path], grad_from=path) as acts:
            y = module(x)
            (g_fast,) = torch.autograd.grad(y[0, 2], acts[path])
        # reference: everything recorded, input requires grad
        full: dict[str, torch.Tensor] = {}

        def keep(_m: torch.nn.Module, _i: object, out: torch.Tensor, full: dict[str, torch.Tensor] = full) -> None:
            full["a"] = out

        handle = module.get_submodule(path).register_forward_hook(keep)
        try:
            y_ref = module(x.clone().requires_grad_(True))
            (g_ref,) = torch.autograd.grad(y_ref[0, 2], full["a"])
        finally:
            handle.remove()
        torch.testing.assert_close(g_fast, g_ref)
    assert not any(p.grad is not None for p in module.parameters())


def test_matches_torchcam_on_the_same_weights(
    state_dict: dict[str, torch.Tensor], fixture_model: CamModel, images: list[np.ndarray]
) -> None:
    ref_module = build_module(state_dict)  # torchcam registers hooks: give it its own copy
    for img in images[:3]:
        r = explain(fixture_model, img, all_classes=True)
        x = r.image.tensor()  # type: ignore[union-attr]
        for c in range(len(CLASS_NAMES)):
            rc = r.for_target(c)
            with CAM(ref_module, target_layer="conv_layers.5", fc_layer="fc.1", input_shape=(3, 256, 256)) as ex:
                with torch.no_grad():
                    scores = ref_module(x)
                ref_cam = ex(class_idx=c, scores=scores, normalized=False)[0][0].numpy()
            assert rel_err(rc.maps["cam"], ref_cam) < 1e-5
            with GradCAM(ref_module, target_layer="conv_layers.5", input_shape=(3, 256, 256)) as ex:
                scores = ref_module(x)
                ref_gc = ex(class_idx=c, scores=scores, normalized=False)[0][0].numpy()
            # torchcam applies ReLU to Grad-CAM; compare the same thing
            assert rel_err(np.maximum(rc.maps["gradcam"], 0), ref_gc) < 1e-5
            ref_module.zero_grad(set_to_none=True)  # torchcam's backward wrote .grad on its own copy


def test_no_hooks_no_grads_no_mode_change_after_success_and_failure(
    fixture_model: CamModel, images: list[np.ndarray]
) -> None:
    module = fixture_model.module
    assert hook_count(module) == 0 and not module.training
    explain(fixture_model, images[0], methods=("cam", "gradcam"), layer={"gradcam": "conv2"}, all_classes=True)
    assert hook_count(module) == 0
    with (
        pytest.raises(RuntimeError, match="boom"),
        capture(module, ["conv_layers.5"], grad_from="conv_layers.5"),
    ):
        module(torch.rand(1, 3, 32, 32))
        raise RuntimeError("boom")
    assert hook_count(module) == 0
    assert torch.is_grad_enabled()
    assert all(p.grad is None for p in module.parameters())
    assert not module.training


def test_constant_map_scales_to_zero_not_nan() -> None:
    assert np.array_equal(scale_map(np.full((4, 4), 3.0, np.float32)), np.zeros((4, 4), np.float32))
    assert np.array_equal(scale_map(np.full((4, 4), -3.0, np.float32)), np.zeros((4, 4), np.float32))
    out = scale_map(np.array([[-1.0, 0.0], [1.0, 3.0]], np.float32))
    np.testing.assert_allclose(out, [[0, 0], [1 / 3, 1]], rtol=1e-6)


def test_no_positive_evidence_is_reported(state_dict: dict[str, torch.Tensor], images: list[np.ndarray]) -> None:
    sd = {k: v.clone() for k, v in state_dict.items()}
    sd["fc.1.weight"][3] = -sd["fc.1.weight"][3].abs()  # class 3: every channel counts against it
    model = CamModel(module=build_module(sd), provenance=None)  # type: ignore[arg-type]
    r = explain(model, images[0], target=3)
    assert not r.has_positive_evidence("cam") and not r.has_positive_evidence("gradcam")
    assert np.array_equal(scale_map(r.maps["cam"]), np.zeros_like(r.maps["cam"]))
    sd["fc.1.weight"][0] = sd["fc.1.weight"][0].abs()
    model = CamModel(module=build_module(sd), provenance=None)  # type: ignore[arg-type]
    assert explain(model, images[0], target=0).has_positive_evidence("cam")


def test_clear_errors(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    with pytest.raises(LayerError, match=r"Valid layers are: conv1, conv2, conv3, conv_layers.1"):
        explain(fixture_model, images[0], layer="conv_layers[-2]")
    with pytest.raises(LayerError, match="exists only at 'conv3'"):
        explain(fixture_model, images[0], methods=("cam",), layer="conv2")
    with pytest.raises(MethodError, match="Unknown method 'gradcamm'"):
        explain(fixture_model, images[0], methods=("gradcamm",))
    with pytest.raises(TargetError, match=r"Unknown target class 'rose'.*rudo, baya, greg, yuki"):
        explain(fixture_model, images[0], target="rose")
    with pytest.raises(TargetError, match="out of range"):
        explain(fixture_model, images[0], target=7)
    with pytest.raises(TargetError, match="not computed"):
        explain(fixture_model, images[0], target=0).for_target(1)
    assert resolve_layer(fixture_model.module, None) == ("conv3", "conv_layers.5")


def test_batch_equals_single_calls(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    batch = explain_batch(fixture_model, images, methods=("cam", "gradcam"))
    for img, rb in zip(images, batch, strict=True):
        rs = explain(fixture_model, img)
        assert rb.target == rs.target
        for m in ("cam", "gradcam"):
            np.testing.assert_allclose(rb.maps[m], rs.maps[m], rtol=1e-4, atol=1e-6 * np.abs(rs.maps[m]).max())


THREADS_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np, torch
    sys.path.insert(0, {root!r})
    from tests.conftest import make_state_dict
    from cam.checkpoint import build_module
    from cam.model import CamModel
    from cam.capture import hook_count
    from cam import explain

    model = CamModel(module=build_module(make_state_dict(0)), provenance=None)
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (64 + 16 * i, 96, 3), dtype=np.uint8) for i in range(8)]
    combos = [("cam", "gradcam"), ("gradcam",), ("cam",)]
    layers = [None, "conv1", "conv2", "conv3"]
    calls = []
    for t in range(8):
        for j in range(25):
            methods = combos[(t + j) % 3]
            layer = None if "cam" in methods else layers[(t * 25 + j) % 4]
            calls.append((t, imgs[(t + j) % 8], ["predicted", "baya", 3][j % 3], methods, layer))
    def run(call):
        _, img, target, methods, layer = call
        r = explain(model, img, target=target, methods=methods, layer=layer)
        return r.target, r.logits.copy(), {{m: v.copy() for m, v in r.maps.items()}}
    serial = [run(c) for c in calls]
    results = [None] * len(calls)
    errors = []
    def worker(t):
        try:
            for i, c in enumerate(calls):
                if c[0] == t:
                    results[i] = run(c)
        except BaseException as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads: th.start()
    for th in threads: th.join()
    assert not errors, errors
    bad = 0
    for s, r in zip(serial, results):
        same_maps = all(np.array_equal(s[2][m], r[2][m]) for m in s[2])
        if s[0] != r[0] or not np.array_equal(s[1], r[1]) or not same_maps:
            bad += 1
    assert bad == 0, f"{{bad}} of {{len(calls)}} concurrent results differ from serial"
    assert hook_count(model.module) == 0
    assert all(p.grad is None for p in model.module.parameters())
    print("OK", len(calls))
    """
)


def test_threads_equal_serial_in_a_subprocess() -> None:
    """8 threads x 25 mixed calls on one shared model; a subprocess so that a segfault fails the test."""
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", THREADS_SCRIPT.format(root=root)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"},
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "OK 200" in proc.stdout


@pytest.mark.parametrize("keyword", ["predicted", "PRED", " top ", ""])
def test_one_set_of_predicted_keywords(fixture_model: CamModel, images: list[np.ndarray], keyword: str) -> None:
    """Every target-taking function accepts the same words for "the predicted class"."""
    from cam import PREDICTED_KEYWORDS
    from cam.explain import is_predicted
    from cam.faithfulness import evaluate_maps

    assert is_predicted(keyword) and keyword.strip().lower() in PREDICTED_KEYWORDS
    r = explain(fixture_model, images[3], target=keyword, all_classes=True)
    assert r.target_index == r.predicted_index == int(np.argmax(r.logits))
    assert r.for_target(keyword).target_index == r.predicted_index
    f = evaluate_maps(fixture_model, r.image, {"cam": r.maps["cam"]}, keyword, n_steps=2, random_seed=None)  # type: ignore[arg-type]
    assert f.target_index == r.predicted_index
    assert not is_predicted("baya") and not is_predicted(0)


def test_capture_refuses_a_gradient_layer_it_does_not_capture(fixture_model: CamModel) -> None:
    with (
        pytest.raises(LayerError, match="must be one of the captured paths"),
        capture(fixture_model.module, ["conv_layers.1"], grad_from="conv_layers.5"),
    ):
        pass  # pragma: no cover - the block is never entered
    assert hook_count(fixture_model.module) == 0
