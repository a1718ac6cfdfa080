"""The lesson's weighted sum, opened up: every channel's part in a class score and in its CAM.

At the GAP layer ``conv3`` (K = 64 feature maps A^k of H x W pixels, F^k = mean A^k):

    y_c      = sum_k w_k^c F^k + b_c            (the logit: contributions w_k^c F^k, plus the bias)
    M_c(x,y) = sum_k w_k^c A^k(y, x)            (CAM: pixel terms w_k^c A^k(y, x))
    alpha_k^c = mean_{x,y} dy_c/dA^k = w_k^c / (H W)       (Grad-CAM's channel weight)

`decompose` runs the network once, keeps A and Grad-CAM's alpha for every class, and answers every
question of the "Inside the CAM" view (another class, the top k channels, another pixel) without
running it again:

    d = decompose(model, image, "conv3")
    d.contributions("greg")      # (K,) w_k^c F^k;   d.contributions("greg").sum() + d.bias[c] == logit
    d.partial_cam("greg", 10)    # (H, W) CAM from the 10 largest contributions
    d.pixel_terms("greg", x, y)  # (K,) w_k^c A^k(y, x); they sum to the CAM value at (x, y)
    d.to_json("greg", (x, y))    # the /channels API answer

At ``conv1`` and ``conv2`` no linear layer follows the maps, so there is no w and no CAM: channels are
ranked and summed with Grad-CAM's own weights alpha_k^c instead (terms alpha_k^c F^k and
alpha_k^c A^k(y, x)), and every w-based number is None. Pixel coordinates are model-input pixels
(0..255, x the column, y the row); the feature maps of this network have the input's size.

Thread-safe: activations are captured with `cam.capture.capture`, gradients with
`torch.autograd.grad` on the captured tensor only; the shared model is never modified.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cam.capture import capture
from cam.errors import CamError, LayerError
from cam.explain import Target, resolve_target
from cam.images import ImageSource, LoadedImage, load_image
from cam.model import CamModel
from cam.network import GAP_LAYER, INPUT_SIZE, check_pixel, resolve_layer


class ChannelError(CamError, ValueError):
    """A channel count or channel index is out of range."""


def _frozen(a: np.ndarray) -> np.ndarray:
    """Read-only: a decomposition may be cached and shared between requests, so nobody may edit it."""
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class ChannelDecomposition:
    """One forward pass at one layer, decomposed channel by channel for every class.

    C classes, K channels, H x W feature maps (256 x 256 at every layer of this network).
    """

    class_names: tuple[str, ...]
    layer: str  # alias: "conv1", "conv2" or "conv3"
    logits: np.ndarray  # (C,) float32, the network's logits
    bias: np.ndarray  # (C,) float32, b_c of the linear layer
    activations: np.ndarray  # (K, H, W) float32, A^k at `layer` (post-ReLU, >= 0)
    gap: np.ndarray  # (K,) float64, F^k = mean over pixels of A^k
    weights: np.ndarray | None  # (C, K) float32 fc rows w^c at the GAP layer; None at other layers
    alpha: np.ndarray  # (C, K) float64, Grad-CAM's alpha_k^c = mean over pixels of dy_c/dA^k
    hw: int  # H * W

    # ------------------------------------------------------------------ what the view needs

    @property
    def is_gap_layer(self) -> bool:
        """True at conv3, the only layer with fc weights, contributions and a CAM."""
        return self.weights is not None

    @property
    def n_channels(self) -> int:
        return int(self.activations.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (the activations dominate: 16.8 MB at conv3)."""
        arrays = [self.logits, self.bias, self.activations, self.gap, self.alpha]
        return sum(a.nbytes for a in arrays) + (0 if self.weights is None else self.weights.nbytes)

    def class_index(self, c: Target) -> int:
        """A class name, index or "predicted" -> index (a `TargetError` when unknown)."""
        return resolve_target(c, self.class_names, self.logits)

    def coefficients(self, c: Target) -> np.ndarray:
        """(K,) float64 channel weights of the map: w_k^c at conv3 (CAM), alpha_k^c elsewhere (Grad-CAM)."""
        i = self.class_index(c)
        return self.weights[i].astype(np.float64) if self.weights is not None else self.alpha[i]

    def contributions(self, c: Target) -> np.ndarray | None:
        """(K,) float64 w_k^c F^k, the channels' parts of the logit (they sum to y_c - b_c); None away
        from conv3, where no linear layer turns the maps into the score."""
        if self.weights is None:
            return None
        return self.weights[self.class_index(c)].astype(np.float64) * self.gap

    def channel_terms(self, c: Target) -> np.ndarray:
        """(K,) float64 the ranking key of `order`: w_k^c F^k at conv3; alpha_k^c F^k at conv1/conv2
        (Grad-CAM's own channel terms: they sum to the mean of the Grad-CAM map)."""
        return self.coefficients(c) * self.gap

    def order(self, c: Target) -> np.ndarray:
        """(K,) int64 channel indices, largest term first (ties keep channel order).

        At conv3 the key is the contribution w_k^c F^k; at conv1/conv2, which have no w, it is
        Grad-CAM's channel term alpha_k^c F^k. Reverse it for the channels that speak against the class.
        """
        return np.argsort(-self.channel_terms(c), kind="stable")

    def _top(self, c: Target, k: int) -> np.ndarray:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= int(k) <= self.n_channels:
            raise ChannelError(
                f"Cannot sum the top {k!r} channels: {self.layer} has {self.n_channels}; "
                f"choose an integer from 0 to {self.n_channels}."
            )
        return self.order(c)[: int(k)]

    def partial_cam(self, c: Target, k: int) -> np.ndarray:
        """(H, W) float32 map from the k channels of largest term: sum over them of w_k^c A^k at conv3
        (k = K gives the CAM), of alpha_k^c A^k at conv1/conv2 (k = K gives the raw Grad-CAM map)."""
        top = self._top(c, k)
        coef = self.coefficients(c)[top].astype(np.float32)  # (k,)
        return np.tensordot(coef, self.activations[top], axes=1).astype(np.float32, copy=False)

    def partial_logit(self, c: Target, k: int) -> float:
        """sum of the k largest contributions w_k^c F^k, plus b_c; equals the logit at k = K.

        Only at conv3: elsewhere the logit is not a sum of channel terms (a `LayerError`)."""
        if self.weights is None:
            raise LayerError(
                f"The logit is a sum of channel contributions only at {GAP_LAYER!r}, the layer global "
                f"average pooling feeds into the linear layer; {self.layer!r} has no such weights."
            )
        top = self._top(c, k)
        contrib = self.contributions(c)
        assert contrib is not None
        return float(contrib[top].sum() + float(self.bias[self.class_index(c)]))

    def _pixel(self, x: int, y: int) -> tuple[int, int]:
        """Model-input pixel -> feature-map pixel (the same here: the maps keep the input size)."""
        x, y = check_pixel(x, y)
        h, w = self.activations.shape[1:]
        return x * w // INPUT_SIZE, y * h // INPUT_SIZE

    def pixel_terms(self, c: Target, x: int, y: int) -> np.ndarray:
        """(K,) float64 terms of the map at model-input pixel (x, y): w_k^c A^k(y, x) at conv3 (they
        sum to the CAM value there), alpha_k^c A^k(y, x) at conv1/conv2 (they sum to the raw Grad-CAM)."""
        fx, fy = self._pixel(x, y)
        return self.coefficients(c) * self.activations[:, fy, fx].astype(np.float64)

    def cam_at(self, c: Target, x: int, y: int) -> float | None:
        """The CAM value M_c at (x, y) (the sum of `pixel_terms`); None away from conv3 (no CAM there)."""
        terms = self.pixel_terms(c, x, y)
        return float(terms.sum()) if self.weights is not None else None

    def to_json(self, c: Target, pixel: tuple[int, int] | None = None) -> dict[str, Any]:
        """The ``/channels`` answer (issue 13), JSON-ready::

            {"class": str, "layer": str, "logit": float, "bias": float,
             "channels": [{"k", "weight", "gap", "contribution", "alpha", "alpha_hw"}, ...],  # channel order
             "pixel": None | {"x": int, "y": int, "cam": float | None, "terms": [float] * K}}

        ``weight`` and ``contribution`` are None away from conv3, and so is ``pixel.cam``; there
        ``terms[k]`` is alpha_k^c A^k(y, x). ``alpha_hw`` = alpha_k^c H W (= w_k^c at conv3).
        """
        i = self.class_index(c)
        contrib = self.contributions(i)
        channels = [
            {
                "k": k,
                "weight": None if self.weights is None else float(self.weights[i, k]),
                "gap": float(self.gap[k]),
                "contribution": None if contrib is None else float(contrib[k]),
                "alpha": float(self.alpha[i, k]),
                "alpha_hw": float(self.alpha[i, k] * self.hw),
            }
            for k in range(self.n_channels)
        ]
        point: dict[str, Any] | None = None
        if pixel is not None:
            if not isinstance(pixel, (tuple, list)) or len(pixel) != 2:
                raise ChannelError(f"A pixel is an (x, y) pair of model-input pixels, not {pixel!r}.")
            x, y = check_pixel(*pixel)
            point = {
                "x": x,
                "y": y,
                "cam": self.cam_at(i, x, y),
                "terms": [float(t) for t in self.pixel_terms(i, x, y)],
            }
        return {
            "class": self.class_names[i],
            "layer": self.layer,
            "logit": float(self.logits[i]),
            "bias": float(self.bias[i]),
            "channels": channels,
            "pixel": point,
        }


def decompose(model: CamModel, image: ImageSource | LoadedImage, layer: str = GAP_LAYER) -> ChannelDecomposition:
    """One forward pass at ``layer``: activations, logits and Grad-CAM's alpha for every class.

    Args:
        model: from `cam.load_model`; shared, never modified.
        image: any source `cam.load_image` takes (a `LoadedImage` is used as is).
        layer: "conv1", "conv2", "conv3" (or their module paths).

    The gradients dy_c/dA of all C classes come from ``torch.autograd.grad`` on the captured A: one
    vmapped backward pass at conv3 (only GAP and the linear layer follow), a loop of C passes at
    earlier layers (as `cam.explain` does, the faster choice at each layer). Only their means
    alpha (C, K) are kept; the (C, K, H, W) gradients are dropped before returning. Means are taken in
    float32 (torch's cascaded sum; a float64 sum over 16.8 M values cost ~1.5 forward passes) and
    stored as float64 for the arithmetic on top of them.
    """
    module = model.module
    alias, path = resolve_layer(module, layer)
    loaded = load_image(image)
    x = loaded.tensor()  # (1, 3, 256, 256)
    n_classes = len(model.class_names)
    with capture(module, [path], grad_from=path) as acts:
        logits = module(x)  # (1, C)
        a = acts[path]  # (1, K, H, W), a leaf that requires grad
        hw = int(a.shape[-2] * a.shape[-1])
        if alias == GAP_LAYER:
            seeds = torch.eye(n_classes, dtype=logits.dtype).unsqueeze(1)  # (C, 1, C): one one-hot per class
            (g,) = torch.autograd.grad(logits, a, grad_outputs=seeds, is_grads_batched=True)  # (C, 1, K, H, W)
            alpha = g[:, 0].mean(dim=(-2, -1))  # (C, K)
            del g
        else:
            rows = []
            for c in range(n_classes):
                (g1,) = torch.autograd.grad(logits[0, c], a, retain_graph=c < n_classes - 1)  # (1, K, H, W)
                rows.append(g1[0].mean(dim=(-2, -1)))
            alpha = torch.stack(rows)  # (C, K)
    a0 = a.detach()[0]  # (K, H, W)
    fc = module.classifier
    return ChannelDecomposition(
        class_names=tuple(model.class_names),
        layer=alias,
        logits=_frozen(logits.detach()[0].float().numpy().copy()),
        bias=_frozen(fc.bias.detach().float().numpy().copy()),
        activations=_frozen(a0.float().numpy()),
        gap=_frozen(a0.mean(dim=(-2, -1)).double().numpy()),
        weights=_frozen(fc.weight.detach().float().numpy().copy()) if alias == GAP_LAYER else None,
        alpha=_frozen(alpha.double().numpy()),
        hw=hw,
    )
