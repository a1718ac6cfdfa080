"""Hide and see: the reported logits are the network's on the returned image, masks of any size,
feathered edges, and the energy share."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cam import explain, load_image, load_model
from cam.capture import hook_count
from cam.hide import (
    BLUR_KERNEL,
    BLUR_SIGMA,
    FEATHER_SIGMA,
    HideError,
    energy_share,
    hide_pixels,
    hide_region,
    model_mask,
)
from cam.model import CamModel

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def bundled() -> CamModel:
    return load_model("bundled")


def independent_logits(model: CamModel, png: bytes) -> torch.Tensor:
    """Decode the PNG and run the network on it: nothing from cam.hide."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255.0
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return model.module(x)[0]


def box_mask(w: int, h: int, box: tuple[float, float, float, float]) -> np.ndarray:
    """A uint8 white-on-black mask of a photo of w x h, the box given in fractions (x0, y0, x1, y1)."""
    m = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = box
    m[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)] = 255
    return m


def test_logits_are_the_networks_on_the_returned_image(bundled: CamModel) -> None:
    path = EXAMPLES / "greg_2.jpg"
    mask = box_mask(512, 512, (0.3, 0.55, 0.75, 0.95))
    r = hide_region(bundled, path, mask, "greg")
    assert r.hidden.shape == (256, 256, 3) and r.hidden.dtype == np.uint8
    after = independent_logits(bundled, r.png())
    assert torch.equal(after, torch.from_numpy(r.logits_after))  # exactly, not approximately
    before = independent_logits(bundled, Image_png(load_image(path).model_input))
    assert torch.equal(before, torch.from_numpy(r.logits_before))
    assert r.logit_after != r.logit_before
    p = torch.softmax(after.double(), 0)[2].item()
    assert r.probability_after == pytest.approx(p, rel=1e-12)
    assert r.to_json()["logit_after"] == float(after[2])


def test_known_logits_save_the_first_pass_and_change_nothing(bundled: CamModel) -> None:
    """The app passes its explanation's logits: one forward pass per painting, the same numbers."""
    from cam import explain

    path = EXAMPLES / "greg_2.jpg"
    mask = box_mask(512, 512, (0.3, 0.55, 0.75, 0.95))
    two = hide_region(bundled, path, mask, "greg")
    passes: list[int] = []
    handle = bundled.module.register_forward_hook(lambda *_: passes.append(1))
    try:
        known = explain(bundled, path, methods=("cam",)).logits
        passes.clear()
        one = hide_region(bundled, path, mask, "greg", logits_before=known)
    finally:
        handle.remove()
    assert passes == [1]
    np.testing.assert_allclose(one.logits_before, two.logits_before, rtol=0, atol=1e-5)
    assert np.array_equal(one.logits_after, two.logits_after) and np.array_equal(one.hidden, two.hidden)
    with pytest.raises(ValueError, match="must hold 4 logits"):
        hide_region(bundled, path, mask, "greg", logits_before=known[:2])


def Image_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).save(buf, format="PNG")
    return buf.getvalue()


def test_empty_mask_changes_nothing(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    img = images[1]  # 200 x 300 (w x h)
    r = hide_region(fixture_model, img, np.zeros(img.shape[:2], np.uint8), 0, saliency=np.ones((256, 256)))
    assert np.array_equal(r.hidden, load_image(img).model_input)
    assert np.array_equal(r.logits_after, r.logits_before)
    assert r.energy_in_mask == 0.0 and r.hidden_fraction == 0.0
    assert torch.equal(independent_logits(fixture_model, r.png()), torch.from_numpy(r.logits_before))


def test_mask_of_another_size_with_the_photos_shape_is_resized(
    fixture_model: CamModel, images: list[np.ndarray]
) -> None:
    img = images[1]
    h, w = img.shape[:2]  # 300 x 200
    box = (0.2, 0.3, 0.7, 0.6)
    at_photo = hide_region(fixture_model, img, box_mask(w, h, box), 0)
    doubled = hide_region(fixture_model, img, np.kron(box_mask(w, h, box), np.ones((2, 2), np.uint8)), 0)
    display = hide_region(fixture_model, img, box_mask(133, 200, box), 0)  # a rounded display size
    assert np.array_equal(at_photo.mask, doubled.mask) and np.array_equal(at_photo.hidden, doubled.hidden)
    assert np.abs(display.mask.astype(int) - at_photo.mask).sum() < 0.03 * at_photo.mask.sum()
    ys, xs = np.nonzero(at_photo.mask)  # the region lands where it was painted, in model pixels
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (51, 77, 179, 154)


@pytest.mark.parametrize("shape", [(300, 300), (200, 300), (100, 120)])
def test_mask_with_another_aspect_ratio_is_refused(
    fixture_model: CamModel, images: list[np.ndarray], shape: tuple[int, int]
) -> None:
    with pytest.raises(HideError, match=r"not painted on this photo.*proportions"):
        hide_region(fixture_model, images[1], np.zeros(shape, np.uint8), 0)


def test_mask_formats(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    size = (256, 256)
    grey = box_mask(256, 256, (0.1, 0.1, 0.5, 0.5))
    expected = grey > 127
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = grey  # an editor layer: white paint, transparent elsewhere
    for m in (
        grey,
        grey > 0,
        grey.astype(np.float32) / 255.0,
        np.repeat(grey[..., None], 3, axis=2),
        rgba,
        Image.fromarray(grey),
        Image.fromarray(rgba),
    ):
        assert np.array_equal(model_mask(m, size), expected), type(m)
    with pytest.raises(HideError, match="2-D"):
        model_mask(np.zeros((4, 4, 2), np.uint8), size)
    with pytest.raises(HideError, match="numpy array or a PIL image"):
        model_mask([[0, 1]], size)  # type: ignore[arg-type]
    with pytest.raises(HideError, match="finite"):
        model_mask(np.full((256, 256), np.nan), size)


def test_hidden_region_is_blurred_and_its_edge_feathered(images: list[np.ndarray]) -> None:
    x = load_image(images[0]).model_input.astype(np.float64)
    mask = np.zeros((256, 256), bool)
    mask[60:160, 80:200] = True
    out = hide_pixels(x.astype(np.uint8), mask).astype(np.float64)
    # An independent blur: OpenCV's Gaussian with the same kernel and reflected borders.
    blur = cv2.GaussianBlur(x, (BLUR_KERNEL, BLUR_KERNEL), BLUR_SIGMA, borderType=cv2.BORDER_REFLECT_101)
    reach = int(np.ceil(3 * FEATHER_SIGMA))  # the feather kernel's radius
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
    far = outside > reach + 1
    assert np.array_equal(out[far], x[far])  # far outside: untouched
    deep = inside > reach + 1
    assert np.abs(out[deep] - blur[deep]).max() <= 1.0  # deep inside: the blur, rounded to nearest ...
    assert abs(float((out[deep] - blur[deep]).mean())) < 0.1  # ... (truncation would be 0.5 low on average)
    assert np.abs(out[deep] - x[deep]).mean() > 10 and out[deep].std() < 0.5 * x[mask].std()  # texture gone
    # The outline is a blend, not a cut: pixels just inside are partly, and just outside slightly, blurred.
    contrast = np.abs(blur - x) > 20
    weight = (out - x) / np.where(contrast, blur - x, 1.0)
    just_in = (mask & (inside <= 1))[..., None] & contrast
    just_out = (~mask & (outside <= 1))[..., None] & contrast
    assert 0.3 < float(weight[just_in].mean()) < 0.9
    assert 0.05 < float(weight[just_out].mean()) < 0.7


def test_energy_share_is_a_direct_sum(bundled: CamModel) -> None:
    path = EXAMPLES / "rudo_1.jpg"
    cam = explain(bundled, path, "rudo", ("cam",)).maps["cam"]
    mask = box_mask(512, 512, (0.0, 0.5, 1.0, 1.0))  # the lower half of the photo
    r = hide_region(bundled, path, mask, "rudo", saliency=cam)
    pos = np.maximum(cam.astype(np.float64), 0)
    assert r.energy_in_mask == pytest.approx(pos[128:].sum() / pos.sum(), rel=1e-12)
    assert energy_share(-np.abs(cam), r.mask) == 0.0  # no positive evidence anywhere
    assert energy_share(np.ones((256, 256)), r.mask) == pytest.approx(0.5)
    with pytest.raises(HideError, match="256x256"):
        hide_region(bundled, path, mask, "rudo", saliency=np.ones((64, 64)))
    out = r.to_json()
    json.dumps(out, allow_nan=False)
    assert set(out) == {
        "class",
        "logit_before",
        "logit_after",
        "probability_before",
        "probability_after",
        "energy_in_mask",
        "hidden_fraction",
    }
    assert out["class"] == "rudo" and out["hidden_fraction"] == pytest.approx(0.5)


def test_predicted_target_and_shared_model(fixture_model: CamModel, images: list[np.ndarray]) -> None:
    before = [t.numpy().tobytes() for t in fixture_model.module.state_dict().values()]
    img = images[0]
    r = hide_region(fixture_model, img, box_mask(256, 256, (0.4, 0.4, 0.6, 0.6)))
    assert r.target_index == int(np.argmax(r.logits_before))
    assert r.energy_in_mask is None and r.to_json()["energy_in_mask"] is None
    assert [t.numpy().tobytes() for t in fixture_model.module.state_dict().values()] == before
    assert hook_count(fixture_model.module) == 0 and not fixture_model.module.training
    with pytest.raises(ValueError):
        r.hidden[0, 0, 0] = 1
