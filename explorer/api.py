"""The public API: `/explain`, `/channels`, `/sanity` and `/hide` as plain functions with the docstrings
Gradio shows in its API page and gives agents as MCP tool descriptions."""

from __future__ import annotations

from typing import Any

from PIL import Image

from cam import METHODS, CamError, CamModel, explain, load_image, render
from cam.channels import decompose
from cam.errors import MethodError
from cam.hide import hide_region
from cam.network import GAP_LAYER
from cam.sanity import cascading_randomization
from explorer.banner import caveat
from explorer.explorer import LAYERS, Explorer, SettingsError
from explorer.outputs import OutputFiles


def explain_summary(
    model: CamModel, image: str, target: str, method: str, layer: str, files: OutputFiles, is_example: bool
) -> tuple[str, dict[str, Any], str]:
    """(overlay JPEG path, JSON summary, raw map .npy path) for one photo, class, method and layer."""
    if method not in METHODS:
        raise MethodError(f"Unknown method {str(method)[:40]!r}; choose one of {', '.join(METHODS)}.")
    methods = (method,) if method == "cam" else (method, "cam")  # CAM too, for the logit check
    layers = {"cam": layer} if method == "cam" else {method: layer, "cam": GAP_LAYER}
    r = explain(model, image, target=target, methods=methods, layer=layers)
    raw = r.maps[method]
    assert r.image is not None and r.image.display is not None
    evidence = r.has_positive_evidence(method)
    if evidence:
        picture = render.overlay(r.image.display, render.scale_map(raw))
    else:
        picture = render.muted(r.image.display, f"No positive evidence for {r.target}")
    mean_plus_bias, logit = r.logit_check()
    p = model.provenance
    summary: dict[str, Any] = {
        "target": r.target,
        "predicted": r.predicted,
        "probabilities": r.probabilities,
        "caveat": caveat(p, is_example),
        "method": method,
        "layer": r.layers[method],
        "has_positive_evidence": evidence,
        "map_min": float(raw.min()),
        "map_max": float(raw.max()),
        "map_shape": list(raw.shape),
        "logit": logit,
        "mean_cam_plus_bias": mean_plus_bias,
        "image_size": list(r.image.original_size),
        "model": {
            "source": p.source,
            "sha256": p.sha256,
            "is_demo_model": p.is_demo_model,
            "repo_id": p.repo_id,
            "filename": p.filename,
            "commit": p.commit,
        },
    }
    stem = f"{method}_{r.target}_{r.layers[method]}"
    return files.jpeg(picture, f"overlay_{stem}"), summary, files.npy(raw, stem)


def _need(image: str | None, what: str = "image") -> str:
    if not image:
        raise CamError(f"No {what} was sent. Pass handle_file(path) as `{what}`.")
    return image


class Api:
    """The endpoints; every argument arrives already checked by the app's inputs (trusted paths)."""

    def __init__(self, ex: Explorer) -> None:
        self.ex = ex

    def explain(self, image: str | None, target: str, method: str, layer: str) -> tuple[str, dict[str, Any], str]:
        """Explain one photo: (overlay JPEG, JSON summary, raw map as .npy, 256x256 float32 before ReLU).

        Args:
            image: the photo (handle_file(path) in gradio_client).
            target: "predicted" or a class name: rudo, baya, greg, yuki.
            method: cam, gradcam, gradcam++, hirescam, xgradcam, layercam, scorecam or eigencam.
            layer: conv1, conv2 or conv3 (CAM exists only at conv3, the layer GAP averages).
        """
        path = _need(image)
        ex = self.ex
        return explain_summary(ex.model, path, target, method, layer, ex.files(), ex.example_of(path) is not None)

    def channels(self, image: str | None, target: str, layer: str, x: float, y: float) -> dict[str, Any]:
        """The CAM's weighted sum channel by channel, and at one pixel (JSON).

        Args:
            image: the photo (handle_file(path) in gradio_client).
            target: "predicted" or a class name: rudo, baya, greg, yuki.
            layer: conv1, conv2 or conv3. Only conv3 has fc weights (w) and a CAM; elsewhere weight,
                contribution and pixel.cam are null and Grad-CAM's alpha stands in.
            x: column of a pixel of the 256x256 model input (0..255), or -1 for none.
            y: row of that pixel (0..255), or -1 for none.

        Returns {"class", "layer", "logit", "bias", "channels": [{"k", "weight", "gap" (mean of A^k),
        "contribution" (w_k F^k), "alpha" (Grad-CAM's mean gradient), "alpha_hw" (alpha x H x W)}, ...],
        "pixel": null | {"x", "y", "cam", "terms" (terms[k] = w_k A^k(x, y))}}; contributions + bias = logit.
        """
        _check_layer(layer)
        d = decompose(self.ex.model, _need(image), layer)
        return d.to_json(target, None if (int(x), int(y)) == (-1, -1) else (int(x), int(y)))

    def sanity(self, image: str | None, target: str, method: str, layer: str) -> dict[str, Any]:
        """Sanity check by cascading model-parameter randomisation (Adebayo et al. 2018), on a copy of the model.

        Args:
            image: the photo (handle_file(path) in gradio_client).
            target: "predicted" or a class name: rudo, baya, greg, yuki.
            method: a gradient method: cam, gradcam, gradcam++, hirescam, xgradcam, layercam or eigencam.
            layer: conv1, conv2 or conv3 (CAM is always at conv3).

        Returns {"steps": [{"randomized": [layers], "spearman", "ssim"}, ...] (the first step randomises
        nothing: similarity 1), "other_class": {"class", "spearman"}, "verdict": {"passed", ...}}.
        """
        if method not in METHODS or METHODS[method].needs_model:
            raise SettingsError(
                f"Method {str(method)[:40]!r} is not one the sanity check runs; choose one of "
                f"{', '.join(m for m, sp in METHODS.items() if not sp.needs_model)}."
            )
        _check_layer(layer)
        return cascading_randomization(self.ex.model, _need(image), target, [method], layer).to_json(method)

    def hide(self, image: str | None, target: str, mask: str | None) -> tuple[str, dict[str, Any]]:
        """Hide a region from the model (replaced by a blur of the photo, with a feathered edge) and score it.

        Args:
            image: the photo (handle_file(path) in gradio_client).
            target: "predicted" or a class name: rudo, baya, greg, yuki.
            mask: an image with the photo's aspect ratio, white where hidden.

        Returns (the hidden 256x256 input as the model saw it, PNG; {"logit_before", "logit_after",
        "probability_before", "probability_after", "energy_in_mask" (share of CAM's positive evidence)}).
        """
        photo = load_image(_need(image))
        r = explain(self.ex.model, photo, target=target, methods=("cam",))
        res = hide_region(
            self.ex.model, photo, _mask_image(_need(mask, "mask")), r.target_index, saliency=r.maps["cam"]
        )
        return self.ex.files().write(res.png(), "hidden.png"), res.to_json()


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise SettingsError(f"Unknown layer {str(layer)[:40]!r}; choose one of {', '.join(LAYERS)}.")


def _mask_image(path: str) -> Image.Image:
    """A mask file for `/hide`, read with a pixel cap from its header (it is an uploaded image)."""
    with Image.open(path) as img:
        if img.width * img.height > 50_000_000:
            raise SettingsError("The mask is over 50 megapixels; send it at the photo's size or smaller.")
        return img.convert("L").copy()
