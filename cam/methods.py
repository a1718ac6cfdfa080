"""CAM-family methods as pure tensor functions.

Hook plumbing lives in ``cam.capture``; here every method receives tensors already captured and
returns raw maps. Most methods only differ in how they weight the channels of the activations
A (torchcam's ``_get_weights``), then share one weighted sum:

    M_c(x, y) = sum_k alpha_k^c A^k(x, y)

Shapes used throughout: B images, T target classes per image, K channels, h x w feature map.
Notation: g^k_c(x, y) = dy_c/dA^k(x, y), the gradient of the *logit* y_c (before softmax) with respect
to the activations, computed by `cam.explain` with ``torch.autograd.grad``; S_k = sum_{x,y} A^k(x, y).

Every method returns the raw map, before any ReLU or scaling (`cam.render.scale_map` does that).
All layers of the course network are post-ReLU outputs, so A >= 0 everywhere.

At the GAP layer (``conv3``) g^k_c(x, y) = w_k^c / (h w) for every pixel, hence

    hirescam = xgradcam = gradcam = CAM / (h w)       (equal up to a positive scale)

while gradcam++ and layercam drop channels with w_k^c < 0 and so differ from CAM in general.
At earlier layers the gradient varies with (x, y) and all methods part ways; `cam.compare` checks both
statements on the numbers.

Each method has one display name, `display_name` ("Grad-CAM++"), and one title with its paper's year,
`method_title` ("Grad-CAM++ (2018)"), both read from its `MethodSpec`: every label in the CLI and the
app comes from these two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cam.errors import MethodError, SettingError

ProgressFn = Callable[[int, int], None]  # progress(done, total), e.g. forward passes run so far
# Masked inputs per forward pass, ~40 MB of activations each at 256x256: 4 keeps a Score-CAM request at
# +142 MB peak (8: +295 MB, over the 300 MB a request may take; P9-request), no slower on 2 vCPUs.
SCORECAM_BATCH_SIZE = 4


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
    progress: ProgressFn | None = None  # perturbation methods report (passes done, passes in all)
    batch_size: int = SCORECAM_BATCH_SIZE  # upper bound on inputs per extra forward pass


MethodFn = Callable[[MethodInputs], torch.Tensor]  # returns (B, T, h, w) raw maps


@dataclass(frozen=True)
class MethodSpec:
    """A method, its requirements and where it comes from."""

    key: str  # the identifier callers pass, e.g. "gradcam++"
    name: str  # how readers see it named, e.g. "Grad-CAM++"
    year: int  # of the paper in ``reference``
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
        raise MethodError(f"{name} needs gradients; the caller must capture them (cam.explain does).")
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


def gradcam_pp(inputs: MethodInputs) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al., 2018, "Grad-CAM++: Generalized Gradient-Based Visual
    Explanations for Deep Convolutional Networks"), the paper's closed form (its Eq. 19), before ReLU.

    The paper scores class c with Y^c = exp(y_c), y_c the logit; the derivatives of Y^c are then
    exp(y_c) times powers of g = dy_c/dA, and its alpha becomes:

        a_k^c(x, y) = g^2 / (2 g^2 + S_k g^3)                         (0 where g = 0)
        alpha_k^c   = sum_{x,y} a_k^c(x, y) ReLU(g^k_c(x, y))
        M_c         = sum_k alpha_k^c A^k

    Two exact simplifications, both made by the code:
      * the paper's ReLU(dY^c/dA) = exp(y_c) ReLU(g); the positive factor exp(y_c) is the same for
        every channel and pixel, so it only scales the map and is dropped (it overflows for large logits);
      * only pixels with g > 0 count (the ReLU), and there a_k^c = 1 / (2 + S_k g), so
        a_k^c ReLU(g) = ReLU(g) / (2 + S_k ReLU(g)) at every pixel; the code computes that: no 0/0
        where g^2 underflows in float32. S_k >= 0 (post-ReLU A), so the denominator is >= 2.

    This is the paper's formula, as in pytorch-grad-cam. torchcam 0.5.0 differs: its division by the
    denominator acts on a copy (boolean indexing), so it effectively uses a = g^2.
    At the GAP layer g = w_k^c / (h w): alpha_k^c = h w ReLU(w_k^c / (h w)) / (2 + S_k w_k^c / (h w)),
    which drops negative channels and reweights the rest, so Grad-CAM++ differs from CAM there.
    """
    grads = _require_gradients(inputs, "gradcam++")  # (B, T, K, h, w)
    s = inputs.activations.sum(dim=(-2, -1))[:, None, :, None, None]  # (B, 1, K, 1, 1) S_k
    g_pos = grads.clamp(min=0)  # (B, T, K, h, w) ReLU(g), a new tensor
    den = torch.mul(g_pos, s).add_(2.0)  # 2 + S_k ReLU(g); in place: one (B, T, K, h, w) temporary, not two
    alpha = g_pos.div_(den).sum(dim=(-2, -1))  # (B, T, K)
    return weighted_sum(alpha, inputs.activations)


def hirescam(inputs: MethodInputs) -> torch.Tensor:
    """HiResCAM (Draelos & Carin, 2020, "Use HiResCAM instead of Grad-CAM for faithful explanations
    of convolutional neural networks"): the gradient multiplies the activations pixel by pixel,
    with no averaging over pixels:

        M_c(x, y) = sum_k g^k_c(x, y) A^k(x, y)

    At the GAP layer g^k_c = w_k^c / (h w), so HiResCAM = CAM / (h w) exactly.
    """
    grads = _require_gradients(inputs, "hirescam")  # (B, T, K, h, w)
    return weighted_sum(grads, inputs.activations)


def xgradcam(inputs: MethodInputs) -> torch.Tensor:
    """XGrad-CAM (Fu et al., 2020, "Axiom-based Grad-CAM: Towards Accurate Visualization and
    Explanation of CNNs"), before ReLU:

        alpha_k^c = sum_{x,y} g^k_c(x, y) A^k(x, y) / S_k     (0 where S_k = 0)
        M_c       = sum_k alpha_k^c A^k

    A channel with S_k = 0 is all zero (A >= 0), so it adds nothing to M_c whatever its weight; the
    weight is set to 0 rather than 0/0. At the GAP layer g^k_c = w_k^c / (h w) is constant, so
    alpha_k^c = w_k^c / (h w) for every active channel and XGrad-CAM = CAM / (h w).
    """
    grads = _require_gradients(inputs, "xgradcam")  # (B, T, K, h, w)
    a = inputs.activations
    num = torch.einsum("btkhw,bkhw->btk", grads, a)  # (B, T, K)
    s = a.sum(dim=(-2, -1)).unsqueeze(1).expand_as(num)  # (B, T, K)
    alpha = torch.where(s != 0, num / torch.where(s != 0, s, torch.ones_like(s)), torch.zeros_like(num))
    return weighted_sum(alpha, a)


def layercam(inputs: MethodInputs) -> torch.Tensor:
    """LayerCAM (Jiang et al., 2021, "LayerCAM: Exploring Hierarchical Class Activation Maps for
    Localization"), before its ReLU: positive gradients weight each pixel:

        M_c(x, y) = sum_k ReLU(g^k_c(x, y)) A^k(x, y)

    At the GAP layer this is sum_k ReLU(w_k^c) A^k / (h w): CAM without its negative channels.
    """
    grads = _require_gradients(inputs, "layercam")  # (B, T, K, h, w)
    # weighted_sum's product, in place on the new ReLU(g) tensor: a (B, T, K, h, w) temporary fewer
    return grads.clamp(min=0).mul_(inputs.activations.unsqueeze(1)).sum(dim=2)


def _channel_masks(a: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) activation channels -> (N, 1, H, W) masks in [0, 1]: bilinear upsampling, then
    min-max scaling of each mask; a constant channel gives an all-zero mask."""
    m = a.unsqueeze(1)  # (N, 1, h, w)
    if m.shape[-2:] != size:
        m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
    lo = m.amin(dim=(-2, -1), keepdim=True)
    span = m.amax(dim=(-2, -1), keepdim=True) - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, (m - lo) / safe, torch.zeros_like(m))


def scorecam(inputs: MethodInputs) -> torch.Tensor:
    """Score-CAM (Wang et al., 2020, "Score-CAM: Score-Weighted Visual Explanations for
    Convolutional Neural Networks"), with torchcam 0.5.0's weights (the tests check against it):

        H^k       = (U(A^k) - min U(A^k)) / (max U(A^k) - min U(A^k))   (0 if A^k is constant)
        C_k^c     = y_c(X * H^k) - y_c(X)                               (increase of the logit)
        alpha^c   = softmax_k(C_k^c)
        M_c       = sum_k alpha_k^c A^k

    U is bilinear upsampling to the input size and X * H^k masks the input pixel by pixel. The
    baseline y_c(X) (torchcam's choice; the paper writes a baseline image X_b) is the same for every
    k, so it cancels in the softmax and the code does not compute it. The authors' released code
    weights channel k by the softmax probability p_c(X * H^k) instead, without a softmax over
    channels: a different map. torchcam's form is used so that it can be checked independently.

    One forward pass per channel and image, in batches of at most ``inputs.batch_size``;
    every target class is read from the same passes. ``inputs.progress(done, total)`` is called after
    each batch.
    """
    if inputs.score_fn is None or inputs.inputs is None:
        raise MethodError("scorecam runs the network on masked inputs; the caller must pass score_fn and inputs.")
    if inputs.batch_size < 1:
        raise SettingError(f"scorecam batch_size must be at least 1, got {inputs.batch_size}.")
    a = inputs.activations  # (B, K, h, w)
    x = inputs.inputs  # (B, 3, H, W)
    n_img, k = a.shape[:2]
    size = (int(x.shape[-2]), int(x.shape[-1]))
    total = n_img * k
    scores = torch.empty(n_img, k, inputs.targets.shape[1], dtype=torch.float32)  # (B, K, T)
    for start in range(0, total, inputs.batch_size):
        flat = torch.arange(start, min(start + inputs.batch_size, total))  # flat index b * K + k
        b_idx, k_idx = flat // k, flat % k
        masks = _channel_masks(a[b_idx, k_idx], size)  # (n, 1, H, W)
        logits = inputs.score_fn(masks * x[b_idx])  # (n, C)
        scores[b_idx, k_idx] = logits.gather(1, inputs.targets[b_idx]).float()  # (n, T)
        if inputs.progress is not None:
            inputs.progress(int(flat[-1]) + 1, total)
    alpha = torch.softmax(scores, dim=1).permute(0, 2, 1).to(a.dtype)  # (B, T, K)
    return weighted_sum(alpha, a)


def eigencam(inputs: MethodInputs) -> torch.Tensor:
    """Eigen-CAM (Muhammad & Yeasin, 2020, "Eigen-CAM: Class Activation Map using Principal
    Components"): the activations projected on their first principal direction, as in the paper
    (no mean-centring; pytorch-grad-cam centres first):

        O = A reshaped to (h w, K),   O = U Sigma V^T,   M = O v_1

    v_1 is the top eigenvector of O^T O (the first right singular vector), computed in float64.
    An eigenvector's sign is arbitrary; it is fixed so that sum_{x,y} M(x, y) mean_k A^k(x, y) >= 0,
    i.e. the map agrees with the mean activation. Not class-specific: every target gets the same map.
    """
    a = inputs.activations  # (B, K, h, w)
    n_img, k, h, w = a.shape
    o = a.reshape(n_img, k, h * w).transpose(1, 2).double()  # (B, hw, K)
    gram = o.transpose(1, 2) @ o  # (B, K, K)
    _, vecs = torch.linalg.eigh(gram)  # ascending eigenvalues
    v1 = vecs[..., -1]  # (B, K)
    proj = (o @ v1.unsqueeze(-1)).squeeze(-1)  # (B, hw)
    agreement = (proj * o.mean(dim=2)).sum(dim=1)  # (B,) <M, mean_k A^k>
    proj = proj * torch.where(agreement < 0, -1.0, 1.0).unsqueeze(1)  # fix the sign per image
    maps = proj.reshape(n_img, 1, h, w).to(a.dtype)
    return maps.expand(n_img, inputs.targets.shape[1], h, w).contiguous()


METHODS: dict[str, MethodSpec] = {
    "cam": MethodSpec(
        key="cam",
        name="CAM",
        year=2016,
        fn=cam,
        needs_gradients=False,
        gap_only=True,
        needs_model=False,
        class_specific=True,
        reference="Zhou et al. 2016, Learning Deep Features for Discriminative Localization",
    ),
    "gradcam": MethodSpec(
        key="gradcam",
        name="Grad-CAM",
        year=2017,
        fn=gradcam,
        needs_gradients=True,
        gap_only=False,
        needs_model=False,
        class_specific=True,
        reference="Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks",
    ),
    "gradcam++": MethodSpec(
        key="gradcam++",
        name="Grad-CAM++",
        year=2018,
        fn=gradcam_pp,
        needs_gradients=True,
        gap_only=False,
        needs_model=False,
        class_specific=True,
        reference="Chattopadhay et al. 2018, Grad-CAM++: Generalized Gradient-Based Visual Explanations",
    ),
    "hirescam": MethodSpec(
        key="hirescam",
        name="HiResCAM",
        year=2020,
        fn=hirescam,
        needs_gradients=True,
        gap_only=False,
        needs_model=False,
        class_specific=True,
        reference="Draelos & Carin 2020, Use HiResCAM instead of Grad-CAM for faithful explanations",
    ),
    "xgradcam": MethodSpec(
        key="xgradcam",
        name="XGrad-CAM",
        year=2020,
        fn=xgradcam,
        needs_gradients=True,
        gap_only=False,
        needs_model=False,
        class_specific=True,
        reference="Fu et al. 2020, Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation",
    ),
    "layercam": MethodSpec(
        key="layercam",
        name="LayerCAM",
        year=2021,
        fn=layercam,
        needs_gradients=True,
        gap_only=False,
        needs_model=False,
        class_specific=True,
        reference="Jiang et al. 2021, LayerCAM: Exploring Hierarchical Class Activation Maps",
    ),
    "scorecam": MethodSpec(
        key="scorecam",
        name="Score-CAM",
        year=2020,
        fn=scorecam,
        needs_gradients=False,
        gap_only=False,
        needs_model=True,
        class_specific=True,
        reference="Wang et al. 2020, Score-CAM: Score-Weighted Visual Explanations for CNNs",
    ),
    "eigencam": MethodSpec(
        key="eigencam",
        name="Eigen-CAM",
        year=2020,
        fn=eigencam,
        needs_gradients=False,
        gap_only=False,
        needs_model=False,
        class_specific=False,
        reference="Muhammad & Yeasin 2020, Eigen-CAM: Class Activation Map using Principal Components",
    ),
}


def display_name(method: str) -> str:
    """The name readers see for a method key: ``"gradcam++"`` -> ``"Grad-CAM++"``."""
    return _spec(method).name


def method_title(method: str) -> str:
    """The display name with the paper's year: ``"gradcam++"`` -> ``"Grad-CAM++ (2018)"``."""
    spec = _spec(method)
    return f"{spec.name} ({spec.year})"


def _spec(method: str) -> MethodSpec:
    spec = METHODS.get(method)
    if spec is None:
        raise MethodError(f"Unknown method {method!r}. Available methods: {', '.join(METHODS)}.")
    return spec
