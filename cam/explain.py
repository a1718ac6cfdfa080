"""`explain`: one forward pass, every requested map.

    r = explain(model, image, target="predicted", methods=("cam", "gradcam"), layer=None)

The pipeline is: load the image -> capture the activations of the needed layers in one forward pass
(`cam.capture`) -> if a method needs them, gradients of the target logits with respect to the
captured activations only (`torch.autograd.grad`) -> the pure method functions (`cam.methods`) ->
raw float32 maps at the model-input resolution, before any ReLU or scaling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from cam.capture import capture
from cam.errors import LayerError, MergeError, MethodError, TargetError
from cam.images import ImageSource, LoadedImage, load_image
from cam.methods import METHODS, MethodInputs, ProgressFn
from cam.model import CamModel
from cam.network import GAP_LAYER, INPUT_SIZE, LAYER_ALIASES, resolve_layer

Target = str | int
LayerSpec = str | None | Mapping[str, str | None]

# Targets that mean "the class the model predicts" (case and surrounding spaces ignored); every part of
# the package that takes a target uses `is_predicted`, so they all accept the same words.
PREDICTED_KEYWORDS: tuple[str, ...] = ("predicted", "pred", "top", "")


@dataclass(frozen=True)
class Explanation:
    """Raw maps and predictions for one image.

    ``class_maps[method]`` holds one (H, W) map per class in ``classes`` (all classes when
    ``explain(..., all_classes=True)``), so `for_target` switches class without the network.
    """

    class_names: tuple[str, ...]
    target_index: int
    logits: np.ndarray  # (C,) float32
    bias: np.ndarray  # (C,) float32, the linear layer's bias b_c
    layers: dict[str, str]  # method -> layer alias it was computed at
    classes: tuple[int, ...]  # class index of each row of class_maps[...]
    class_maps: dict[str, np.ndarray]  # method -> (len(classes), H, W) float32 raw maps
    image: LoadedImage | None = None

    @property
    def target(self) -> str:
        return self.class_names[self.target_index]

    @property
    def predicted_index(self) -> int:
        return int(np.argmax(self.logits))

    @property
    def predicted(self) -> str:
        return self.class_names[self.predicted_index]

    @property
    def probabilities(self) -> dict[str, float]:
        z = self.logits.astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        return {name: float(v) for name, v in zip(self.class_names, p, strict=True)}

    @property
    def maps(self) -> dict[str, np.ndarray]:
        """method -> (H, W) float32 raw map for the target class."""
        row = self.classes.index(self.target_index)
        return {m: v[row] for m, v in self.class_maps.items()}

    def has_positive_evidence(self, method: str) -> bool:
        """False when the map has no positive value: after ReLU it would be blank."""
        return bool(np.any(self.maps[method] > 0))

    def logit_check(self) -> tuple[float, float]:
        """(mean(M_c) + b_c, y_c) for CAM; the two agree up to float rounding."""
        m = self.maps["cam"]
        c = self.target_index
        return float(m.astype(np.float64).mean() + float(self.bias[c])), float(self.logits[c])

    def merge(self, other: Explanation) -> Explanation:
        """This explanation with ``other``'s maps added (``other``'s win for a method both have).

        Both must explain the same image with the same model for the same classes, e.g. CAM and
        Grad-CAM from one call and the other methods from a second call: their logits, biases, class
        names and computed classes must be identical, else a `MergeError`. The target, the image and
        the order of the classes are this explanation's.
        """
        if self.class_names != other.class_names or self.classes != other.classes:
            raise MergeError(
                f"Cannot merge explanations of different classes ({self._classes_text()} and "
                f"{other._classes_text()}); explain both with the same classes (all_classes=True)."
            )
        if not (np.array_equal(self.logits, other.logits) and np.array_equal(self.bias, other.bias)):
            raise MergeError(
                "Cannot merge explanations whose logits differ: they explain different images or come from "
                "different models. Explain the same loaded image with the same model, or keep them apart."
            )
        return replace(self, class_maps={**self.class_maps, **other.class_maps}, layers={**self.layers, **other.layers})

    def _classes_text(self) -> str:
        return ", ".join(self.class_names[c] for c in self.classes)

    def for_target(self, target: Target) -> Explanation:
        """The same explanation for another class, without running the network."""
        index = resolve_target(target, self.class_names, self.logits)
        if index not in self.classes:
            raise TargetError(
                f"Class {self.class_names[index]!r} was not computed; call explain(..., all_classes=True)."
            )
        return replace(self, target_index=index)


def is_predicted(target: Target) -> bool:
    """Whether ``target`` asks for the predicted class (one of `PREDICTED_KEYWORDS`)."""
    return isinstance(target, str) and target.strip().lower() in PREDICTED_KEYWORDS


def resolve_target(target: Target, class_names: Sequence[str], logits: np.ndarray | None = None) -> int:
    """ "predicted" (any of `PREDICTED_KEYWORDS`), a class name (case-insensitive) or an index -> class index."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if 0 <= int(target) < len(class_names):
            return int(target)
        raise TargetError(f"Class index {target} is out of range; valid indices are 0 to {len(class_names) - 1}.")
    if isinstance(target, str):
        key = target.strip().lower()
        if is_predicted(key):
            if logits is None:
                raise TargetError("The predicted class is not known before the forward pass.")
            return int(np.argmax(logits))
        names = [n.lower() for n in class_names]
        if key in names:
            return names.index(key)
        if key.isdigit():
            return resolve_target(int(key), class_names, logits)
    valid = ", ".join(["predicted", *class_names])
    shown = repr(target) if len(repr(target)) <= 40 else repr(target)[:40] + "…"  # never echo a 5 MB value whole
    raise TargetError(f"Unknown target class {shown}. Choose one of: {valid}, or an index.")


def plan_layers(module: torch.nn.Module, methods: Sequence[str], layer: LayerSpec) -> dict[str, tuple[str, str]]:
    """method -> (alias, module path), validating names and the CAM-only-at-GAP rule."""
    if isinstance(methods, str):
        methods = (methods,)
    if not methods:
        raise MethodError(f"No method requested; choose from: {', '.join(METHODS)}.")
    out: dict[str, tuple[str, str]] = {}
    for name in dict.fromkeys(methods):
        spec = METHODS.get(name)
        if spec is None:
            raise MethodError(f"Unknown method {name!r}. Available methods: {', '.join(METHODS)}.")
        wanted = layer.get(name) if isinstance(layer, Mapping) else layer
        alias, path = resolve_layer(module, wanted)
        if spec.gap_only and alias != GAP_LAYER:
            raise LayerError(
                f"{name.upper()} exists only at {GAP_LAYER!r}, the layer whose output global average "
                f"pooling turns into the class scores; {alias!r} is not followed by GAP. Use Grad-CAM "
                f"for earlier layers."
            )
        out[name] = (alias, path)
    return out


def _depth(path: str) -> int:
    order = list(LAYER_ALIASES.values())
    return order.index(path) if path in order else len(order)


def explain(
    model: CamModel,
    image: ImageSource,
    target: Target = "predicted",
    methods: Sequence[str] = ("cam", "gradcam"),
    layer: LayerSpec = None,
    *,
    all_classes: bool = False,
    progress: ProgressFn | None = None,
) -> Explanation:
    """Explain one image.

    Args:
        model: from `cam.load_model`.
        image: a path, bytes, PIL image, numpy array or `LoadedImage`.
        target: "predicted", a class name or a class index.
        methods: names from `cam.methods.METHODS`.
        layer: a layer name for every method (None: the GAP layer ``conv3``), or a mapping
            method -> layer. CAM exists only at the GAP layer.
        all_classes: compute every class's maps (one forward pass) so `Explanation.for_target`
            can switch class for free.
        progress: called as ``progress(done, total)`` while a perturbation method (Score-CAM) runs
            its extra forward passes, so a UI can show progress.
    """
    loaded = load_image(image)
    batch = explain_batch(model, [loaded], target, methods, layer, all_classes=all_classes, progress=progress)
    return batch[0]


def explain_batch(
    model: CamModel,
    images: Sequence[ImageSource],
    target: Target = "predicted",
    methods: Sequence[str] = ("cam", "gradcam"),
    layer: LayerSpec = None,
    *,
    all_classes: bool = False,
    progress: ProgressFn | None = None,
) -> list[Explanation]:
    """`explain` for several images with one batched forward pass."""
    module = model.module
    class_names = tuple(model.class_names)
    plan = plan_layers(module, methods, layer)
    loaded = [load_image(im) for im in images]
    if not loaded:
        return []
    x = loaded[0].tensor() if len(loaded) == 1 else torch.cat([im.tensor() for im in loaded])  # (B, 3, 256, 256)
    fixed_target = None if is_predicted(target) else resolve_target(target, class_names)

    paths = sorted({p for _, p in plan.values()}, key=_depth)
    grad_paths = sorted({p for m, (_, p) in plan.items() if METHODS[m].needs_gradients}, key=_depth)
    fc = module.classifier
    with capture(module, paths, grad_from=grad_paths[0] if grad_paths else None) as acts:
        logits = module(x)  # (B, C)
        logits_np = logits.detach().float().numpy()
        if all_classes:
            targets = torch.arange(len(class_names)).expand(len(loaded), -1)  # (B, C)
        else:
            idx = [fixed_target if fixed_target is not None else int(np.argmax(row)) for row in logits_np]
            targets = torch.tensor(idx).unsqueeze(1)  # (B, 1)
        grads = {p: _gradients(logits, acts, p, targets) for p in grad_paths}

    class_maps: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, (_, path) in plan.items():
            spec = METHODS[name]
            a = acts[path].detach()
            inputs = MethodInputs(
                activations=a,
                targets=targets,
                fc_weight=fc.weight.detach(),
                gradients=grads.get(path),
                score_fn=(lambda batch: module(batch)) if spec.needs_model else None,
                inputs=x if spec.needs_model else None,
                progress=progress if spec.needs_model else None,
            )
            raw = spec.fn(inputs)  # (B, T, h, w)
            if raw.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
                raw = F.interpolate(raw, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
            class_maps[name] = raw.float()

    bias = fc.bias.detach().float().numpy()
    layers = {m: alias for m, (alias, _) in plan.items()}
    out = []
    for i, im in enumerate(loaded):
        rows = tuple(int(t) for t in targets[i])
        if all_classes:  # every class was computed; the target is the asked-for or predicted one
            target_index = fixed_target if fixed_target is not None else int(np.argmax(logits_np[i]))
        else:
            target_index = rows[0]
        out.append(
            Explanation(
                class_names=class_names,
                target_index=target_index,
                logits=logits_np[i],
                bias=bias,
                layers=layers,
                classes=rows,
                class_maps={m: v[i].numpy() for m, v in class_maps.items()},
                image=im,
            )
        )
    return out


def _gradients(
    logits: torch.Tensor, acts: Mapping[str, torch.Tensor], path: str, targets: torch.Tensor
) -> torch.Tensor:
    """dy_t/dA for every target t: (B, T, K, h, w).

    Images in a batch do not interact (eval mode, no batch norm), so summing a target's logit over
    the batch and differentiating once gives every image its own gradient.
    """
    a = acts[path]
    n_targets = targets.shape[1]
    if n_targets == 1:
        (g,) = torch.autograd.grad(logits.gather(1, targets).sum(), a)
        return g.unsqueeze(1)  # a view: copying the (B, K, h, w) gradient cost ~15% of a forward pass
    if path == LAYER_ALIASES[GAP_LAYER]:
        # Only GAP and the linear layer follow: one vmapped backward pass for all targets is ~1.7x
        # faster than a loop (benchmarks/README.md); at earlier layers vmap over the convolutions'
        # backward is slower than the loop, so they keep it. Both give bit-identical gradients.
        seeds = torch.zeros(n_targets, *logits.shape).scatter_(2, targets.T.unsqueeze(2), 1.0)  # (T, B, C)
        (g,) = torch.autograd.grad(logits, a, grad_outputs=seeds, is_grads_batched=True)  # (T, B, K, h, w)
        return g.transpose(0, 1)
    per_target = []
    for j in range(n_targets):
        score = logits.gather(1, targets[:, j : j + 1]).sum()
        (g,) = torch.autograd.grad(score, a, retain_graph=j < n_targets - 1)
        per_target.append(g)
    return torch.stack(per_target, dim=1)
