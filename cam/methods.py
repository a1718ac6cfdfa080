"""CAM-family methods as pure tensor functions.

Hook plumbing lives in ``cam.capture``; here every method receives tensors already captured and
returns raw maps. Most methods only differ in how they weight the channels of the activations
A (torchcam's ``_get_weights``), then share one weighted sum:

    M_c(x, y) = sum_k alpha_k^c A^k(x, y)

Shapes used throughout: B images, T target classes per image, K channels, h x w feature map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MethodInputs:
    """Everything a method may use, captured by one forward pass at one layer."""

    activations: torch.Tensor  # (B, K, h, w)  A, the layer's output
    targets: torch.Tensor  # (B, T) long    class index of each map to compute
    fc_weight: torch.Tensor  # (C, K)         w, the linear layer after GAP
    gradients: torch.Tensor | None = None  # (B, T, K, h, w)  dy_c/dA for each target, when needed
    # For perturbation methods: logits of a batch of inputs, (N, 3, H, W) -> (N, C), and the input.
    score_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    inputs: torch.Tensor | None = None  # (B, 3, H, W)


MethodFn = Callable[[MethodInputs], torch.Tensor]  # returns (B, T, h, w) raw maps


@dataclass(frozen=True)
class MethodSpec:
    """A method, its requirements and where it comes from."""

    name: str
    fn: MethodFn
    needs_gradients: bool
    gap_only: bool  # CAM is defined only at the layer whose output GAP averages
    needs_model: bool  # perturbation methods run extra forward passes
    class_specific: bool
    reference: str


def weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """sum_k weights[..., k] * A^k.

    Args:
        weights: (B, T, K) channel weights, or (B, T, K, h, w) pixel-wise weights.
        activations: (B, K, h, w).

    Returns:
        (B, T, h, w).
    """
    if weights.dim() == 3:
        return torch.einsum("btk,bkhw->bthw", weights, activations)
    return (weights * activations.unsqueeze(1)).sum(dim=2)


def _require_gradients(inputs: MethodInputs, name: str) -> torch.Tensor:
    if inputs.gradients is None:
        raise ValueError(f"{name} needs gradients; the caller must capture them")
    return inputs.gradients


def cam(inputs: MethodInputs) -> torch.Tensor:
    """CAM (Zhou et al., 2016, "Learning Deep Features for Discriminative Localization").

        M_c = sum_k w_k^c A^k

    with w^c the row of the linear layer after GAP. Since y_c = sum_k w_k^c mean(A^k) + b_c,
    mean(M_c) + b_c = y_c exactly.
    """
    w = inputs.fc_weight[inputs.targets]  # (B, T, K)
    return weighted_sum(w, inputs.activations)


def gradcam(inputs: MethodInputs) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017), before its ReLU:

        alpha_k^c = mean_{x,y} dy_c/dA^k(x, y),    M_c = sum_k alpha_k^c A^k

    At the GAP layer dy_c/dA^k(x, y) = w_k^c / (h w) everywhere, so Grad-CAM = CAM / (h w).
    """
    grads = _require_gradients(inputs, "gradcam")  # (B, T, K, h, w)
    alpha = grads.mean(dim=(-2, -1))  # (B, T, K)
    return weighted_sum(alpha, inputs.activations)


METHODS: dict[str, MethodSpec] = {
    "cam": MethodSpec(
        name="cam",
        fn=cam,
        needs_gradients=False,
        gap_only=True,
        needs_model=False,
        class_specific=True,
        reference="Zhou et al. 2016, Learning Deep Features for Discriminative Localization",
    ),
    "gradcam": MethodSpec(
        name="gradcam",
        fn=gradcam,
        needs_gradients=True,
        gap_only=False,
        needs_model=False,
        class_specific=True,
        reference="Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks",
    ),
}
