"""Hide and see: hide a painted region of the photo and watch the class score.

    r = hide_region(model, image, mask, "greg", saliency=explanation.maps["cam"])
    r.hidden             # (256, 256, 3) uint8: the model input with the region hidden, as the model saw it
    r.logit_before, r.logit_after, r.probability_before, r.probability_after
    r.energy_in_mask     # share of the map's positive evidence inside the region

"The CAM put 60 % of its evidence here; hiding it cut the logit by 3.1."

How a region is hidden. The painted pixels are replaced by a strong Gaussian blur of the photo
(`BLUR_SIGMA` = 8 model pixels, `cam.faithfulness.gaussian_blur`), which removes the local colour and
texture the network reads through its 7x7 receptive field while keeping the region's average colour:
no black hole, no new object. A hard cut from photo to blur would itself be an edge the network could
react to, so the mask edge is **feathered**: the blend weight is the mask blurred by a Gaussian of
`FEATHER_SIGMA` = 1.5 pixels, so the blend fades over about 3 pixels either side of the painted
outline (a pixel on the outline is half blurred; pixels well inside are fully blurred and pixels
well outside are untouched). The blend is rounded to uint8, and the logits "after" are those of that
uint8 image / 255, so an independent forward pass on the returned (lossless PNG) image gives the
same numbers exactly.

The mask. An array (or PIL image) of any size with the photo's aspect ratio, white (> 127; True for
booleans; > 0.5 for floats in [0, 1]) where the region is hidden; RGB(A) masks use the mean of the
colour channels, times alpha when there is one (transparent = not painted). It is scaled to the
256x256 model input like the photo (the photo is squashed, so the mask is too): each model pixel is
hidden when at least half of the mask area it covers is painted (area averaging; nearest-neighbour
would drop thin strokes of a large mask). A mask whose aspect ratio differs from the photo's by more
than `ASPECT_TOLERANCE` (2 %, plus one pixel of rounding) is **refused** with a `HideError`: it was
painted on another image or a cropped view, and stretching it would hide the wrong place.

Energy. With the saliency map s at model-input size (raw, e.g. ``explain(...).maps["cam"]``),
energy_in_mask = sum over hidden pixels of ReLU(s) / sum of ReLU(s), 0 when the map has no positive
value, over the hard (unfeathered) 256x256 mask.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from cam.errors import CamError
from cam.explain import Target, resolve_target
from cam.faithfulness import gaussian_blur
from cam.images import ImageSource, load_image
from cam.model import CamModel
from cam.network import INPUT_SIZE

BLUR_SIGMA = 8.0  # model pixels: wipes out 7x7 texture, keeps the region's mean colour
BLUR_KERNEL = 2 * int(3 * BLUR_SIGMA) + 1  # 49 taps, +-3 sigma
FEATHER_SIGMA = 1.5  # model pixels of soft edge
FEATHER_KERNEL = 2 * int(np.ceil(3 * FEATHER_SIGMA)) + 1  # 11 taps
ASPECT_TOLERANCE = 0.02  # relative aspect-ratio difference between mask and photo that is refused


class HideError(CamError, ValueError):
    """A hide-and-see mask was refused (wrong shape, aspect ratio or type)."""


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z.astype(np.float64) - float(np.max(z)))
    return e / e.sum()


@dataclass(frozen=True)
class HideResult:
    """The photo with a region hidden, and what the network made of it."""

    class_names: tuple[str, ...]
    target_index: int
    hidden: np.ndarray  # (256, 256, 3) uint8, the model input with the region hidden
    mask: np.ndarray  # (256, 256) bool, the hidden region at model-input size (before feathering)
    logits_before: np.ndarray  # (C,) float32, on the unchanged model input
    logits_after: np.ndarray  # (C,) float32, on `hidden` / 255
    energy_in_mask: float | None  # share of the map's positive energy in `mask`; None without a map

    @property
    def target(self) -> str:
        return self.class_names[self.target_index]

    @property
    def logit_before(self) -> float:
        return float(self.logits_before[self.target_index])

    @property
    def logit_after(self) -> float:
        return float(self.logits_after[self.target_index])

    @property
    def probabilities_before(self) -> np.ndarray:
        """(C,) float64 softmax of the logits before hiding."""
        return _softmax(self.logits_before)

    @property
    def probabilities_after(self) -> np.ndarray:
        return _softmax(self.logits_after)

    @property
    def probability_before(self) -> float:
        return float(self.probabilities_before[self.target_index])

    @property
    def probability_after(self) -> float:
        return float(self.probabilities_after[self.target_index])

    @property
    def hidden_fraction(self) -> float:
        """Share of the model input's pixels that were hidden."""
        return float(self.mask.mean())

    def png(self) -> bytes:
        """The hidden model input as a lossless PNG (decoding it gives `hidden` exactly)."""
        buf = io.BytesIO()
        Image.fromarray(self.hidden, "RGB").save(buf, format="PNG")
        return buf.getvalue()

    def to_json(self) -> dict[str, Any]:
        """The ``/hide`` numbers (issue 15)::

        {"class", "logit_before", "logit_after", "probability_before", "probability_after",
         "energy_in_mask" (None without a map), "hidden_fraction"}
        """
        return {
            "class": self.target,
            "logit_before": self.logit_before,
            "logit_after": self.logit_after,
            "probability_before": self.probability_before,
            "probability_after": self.probability_after,
            "energy_in_mask": self.energy_in_mask,
            "hidden_fraction": self.hidden_fraction,
        }


def _mask_values(mask: np.ndarray | Image.Image) -> np.ndarray:
    """Any accepted mask -> (h, w) float32 in [0, 1], 1 = painted."""
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("RGBA") if mask.mode in ("P", "PA", "LA", "La") else mask)
    if not isinstance(mask, np.ndarray):
        raise HideError(f"A mask must be a numpy array or a PIL image, not {type(mask).__name__}.")
    m = mask
    if m.ndim == 3 and m.shape[2] in (1, 3, 4):
        alpha = m[..., 3].astype(np.float32) / (255.0 if m.dtype == np.uint8 else 1.0) if m.shape[2] == 4 else None
        m = m[..., :3].mean(axis=2) if m.shape[2] >= 3 else m[..., 0]
        if alpha is not None:
            m = m * alpha
    if m.ndim != 2 or min(m.shape) < 1:
        raise HideError(
            "A mask must be a 2-D (height, width) array or an RGB(A) image, white where hidden; "
            f"got shape {mask.shape}."
        )
    if mask.dtype == bool:
        return m.astype(np.float32)
    if not np.issubdtype(m.dtype, np.number) or not np.all(np.isfinite(m)):
        raise HideError("A mask must hold finite numbers: 0/black where visible, 255/white where hidden.")
    if np.issubdtype(mask.dtype, np.floating) and float(np.max(m)) <= 1.0:
        return (m > 0.5).astype(np.float32)
    return (m > 127).astype(np.float32)


def model_mask(mask: np.ndarray | Image.Image, photo_size: tuple[int, int]) -> np.ndarray:
    """A painted mask for a photo of ``photo_size`` = (width, height) -> (256, 256) bool model-input mask.

    Refuses (`HideError`) a mask whose aspect ratio is off by more than `ASPECT_TOLERANCE` plus one
    pixel of rounding; see the module docstring for how values and resizing work.
    """
    m = _mask_values(mask)
    mh, mw = m.shape
    pw, ph = photo_size
    photo_aspect, mask_aspect = pw / ph, mw / mh
    slack = ASPECT_TOLERANCE + 1.0 / min(mw, mh)  # a mask drawn at a rounded display size is fine
    if abs(mask_aspect / photo_aspect - 1.0) > slack:
        raise HideError(
            f"The mask is {mw}x{mh} pixels (aspect {mask_aspect:.3f}) but the photo is {pw}x{ph} (aspect "
            f"{photo_aspect:.3f}): it was not painted on this photo. Paint the mask on the photo itself, "
            "at any size with the photo's proportions."
        )
    if (mw, mh) != (INPUT_SIZE, INPUT_SIZE):
        m = cv2.resize(m, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return m >= 0.5


def energy_share(saliency: np.ndarray, mask: np.ndarray) -> float:
    """sum of ReLU(saliency) over ``mask`` / its sum over the map; 0 when the map has no positive value."""
    s = np.asarray(saliency, dtype=np.float64)
    if s.shape != mask.shape:
        raise HideError(
            f"The saliency map is {s.shape} but the mask is {mask.shape}; pass the raw map at the model "
            "input size (256x256), e.g. explain(...).maps['cam']."
        )
    if not np.all(np.isfinite(s)):
        raise HideError("The saliency map contains NaN or infinite values.")
    pos = np.maximum(s, 0.0)
    total = float(pos.sum())
    return float(pos[mask].sum()) / total if total > 0.0 else 0.0


def hide_pixels(model_input: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(256, 256, 3) uint8 input, (256, 256) bool mask -> the input with the region replaced by a
    blur of it, feathered at the edge, rounded to uint8. An empty mask returns an unchanged copy."""
    if not mask.any():
        return model_input.copy()
    x = torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    blurred = gaussian_blur(x, kernel=BLUR_KERNEL, sigma=BLUR_SIGMA)  # (1, 3, H, W), 0..255
    m = torch.from_numpy(mask.astype(np.float32))[None, None]  # (1, 1, H, W)
    soft = gaussian_blur(m, kernel=FEATHER_KERNEL, sigma=FEATHER_SIGMA).clamp_(0.0, 1.0)
    out = x + soft * (blurred - x)  # soft = 0 leaves a pixel exactly as it was
    return out[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy().copy()


def _logits(model: CamModel, pixels: np.ndarray) -> np.ndarray:
    """(256, 256, 3) uint8 -> (C,) float32 logits on pixels / 255, one image per pass (as an
    independent check of the returned image would run it)."""
    x = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)  # as LoadedImage.tensor
    with torch.no_grad():
        return model.module(x)[0].float().numpy().copy()


def hide_region(
    model: CamModel,
    image: ImageSource,
    mask: np.ndarray | Image.Image,
    target: Target = "predicted",
    saliency: np.ndarray | None = None,
    logits_before: np.ndarray | None = None,
) -> HideResult:
    """Hide the painted region of ``image`` and score the result (see the module docstring).

    Args:
        model: the shared model (only forward passes without autograd; nothing is modified).
        image: any source `cam.load_image` takes.
        mask: white where hidden, the photo's aspect ratio, any size.
        target: the class to report ("predicted" = predicted on the unchanged photo).
        saliency: the raw (256, 256) map whose energy share inside the mask to report, or None.
        logits_before: the unchanged photo's (C,) logits when already known (an `Explanation`'s,
            from the same model and input), or None to compute them.

    Two forward passes (before and after); one when ``logits_before`` is given (each new painting).
    """
    loaded = load_image(image)
    region = model_mask(mask, loaded.original_size)
    hidden = hide_pixels(loaded.model_input, region)
    if logits_before is not None and np.shape(logits_before) != (len(model.class_names),):
        raise ValueError(
            f"logits_before must hold {len(model.class_names)} logits, got shape {np.shape(logits_before)}."
        )
    before = (
        _logits(model, np.asarray(loaded.model_input))
        if logits_before is None
        else np.asarray(logits_before, dtype=np.float32).copy()
    )
    after = before.copy() if np.array_equal(hidden, loaded.model_input) else _logits(model, hidden)
    index = resolve_target(target, model.class_names, before)
    energy = None if saliency is None else energy_share(saliency, region)
    hidden.setflags(write=False)
    region.setflags(write=False)
    return HideResult(
        class_names=tuple(model.class_names),
        target_index=index,
        hidden=hidden,
        mask=region,
        logits_before=before,
        logits_after=after,
        energy_in_mask=energy,
    )
