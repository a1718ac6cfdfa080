"""One image loader for every entry point (library, CLI, app).

Input: a path, bytes, a PIL image, a numpy array, or an already loaded `LoadedImage`.
Output: a `LoadedImage` with
  * ``model_input``: (256, 256, 3) uint8 RGB. The whole photo is *squashed* to 256x256 (no crop, no
    padding), like the course's ``Resize((256, 256))``: every pixel of the photo is seen, and a map
    pixel maps back to the photo by a plain per-axis scale, so resizing a map to the photo's size
    lines it up exactly. The cost is a changed aspect ratio for non-square photos, which a
    7x7-receptive-field texture model tolerates well.
  * ``display``: the photo in RGB with its long side at most ``display_max_side`` (overlays are
    drawn at that size, never at a 12 MP photo's full size), or None when not asked for.
  * ``original_size``: (width, height) after EXIF orientation.

Refusals are `ImageError` (a ValueError) with a message a person understands.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from cam.errors import ImageError
from cam.network import INPUT_SIZE

MAX_PIXELS = 50_000_000  # 50 MP: a 12 MP phone photo passes, a decompression bomb does not
MAX_BYTES = 25 * 1024 * 1024
DISPLAY_MAX_SIDE = 1024

ImageSource = Union[str, os.PathLike[str], bytes, Image.Image, np.ndarray, "LoadedImage"]


@dataclass(frozen=True)
class LoadedImage:
    model_input: np.ndarray  # (256, 256, 3) uint8 RGB
    display: Image.Image | None  # RGB, long side <= display_max_side
    original_size: tuple[int, int]  # (width, height)

    def tensor(self) -> torch.Tensor:
        """(1, 3, 256, 256) float32 in [0, 1]: the course's input format."""
        # (256, 256, 3) uint8 -> (1, 3, 256, 256) float32; copy because the array may be read-only
        return torch.from_numpy(self.model_input.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def _open(src: str | os.PathLike[str] | bytes) -> Image.Image:
    if isinstance(src, bytes):
        data = src
        name = "the uploaded data"
    else:
        path = Path(src)
        name = path.name
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"Cannot read image {name!r}: {exc.strerror or exc}.") from exc
        if size > MAX_BYTES:
            raise ImageError(
                f"{name!r} is {size / 1e6:.1f} MB; images up to {MAX_BYTES / 1e6:.0f} MB are accepted."
            )
        data = path.read_bytes()
    if not data:
        raise ImageError(f"{name} is empty (0 bytes): nothing to explain. Choose a JPEG or PNG photo.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name} is {len(data) / 1e6:.1f} MB; images up to {MAX_BYTES / 1e6:.0f} MB are accepted.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{name} is not an image this app can read (JPEG, PNG, WebP, GIF, BMP or TIFF): {exc}"
        ) from exc
    except Exception as exc:  # Pillow raises many types on malformed headers
        raise ImageError(f"{name} could not be read as an image: {exc}") from exc
    return img


def _check_pixels(img: Image.Image) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"The image has no pixels ({w}x{h}).")
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"The image is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f} "
            "megapixels (larger files are refused before decoding to protect the server). "
            "Resize it and try again."
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Every Pillow mode to 8-bit RGB; transparency is composited on white."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(scaled.round().astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _from_array(arr: np.ndarray) -> Image.Image:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"An image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}.")
    if a.size == 0:
        raise ImageError(f"The image array is empty (shape {a.shape}).")
    if a.dtype == np.uint8:
        out = a
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("The image array contains NaN or infinite values.")
        scale = 255.0 if a.max() <= 1.0 else 1.0  # floats in [0, 1] as the course uses them
        out = np.clip(a * scale, 0, 255).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        hi = 1 if a.dtype == np.bool_ else (65535 if a.max() > 255 else 255)
        out = (a.astype(np.float64) * (255.0 / hi)).round().astype(np.uint8)
    else:
        raise ImageError(f"Unsupported image array dtype {a.dtype}.")
    mode = "L" if out.ndim == 2 else ("RGB" if out.shape[2] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(out), mode)


def load_image(src: ImageSource, *, display_max_side: int | None = DISPLAY_MAX_SIDE) -> LoadedImage:
    """Load any supported image source into the model's input format (see the module docstring)."""
    if isinstance(src, LoadedImage):
        return src
    if isinstance(src, np.ndarray):
        img = _from_array(src)
    elif isinstance(src, Image.Image):
        img = src
    elif isinstance(src, (bytes, str, os.PathLike)):
        img = _open(src)
    else:
        raise ImageError(f"Cannot load an image from a {type(src).__name__}; pass a path, bytes, PIL image or array.")
    _check_pixels(img)
    try:
        if img.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when the photo is much larger than what we need.
            need = display_max_side or INPUT_SIZE
            w, h = img.size
            scale = min(1.0, need / max(w, h)) if display_max_side else INPUT_SIZE / min(w, h)
            img.draft("RGB", (max(1, int(w * min(scale, 1.0))), max(1, int(h * min(scale, 1.0)))))
        img = ImageOps.exif_transpose(img) or img
        rgb = _to_rgb(img)
        rgb.load()
    except ImageError:
        raise
    except Exception as exc:  # truncated data, bad chunks, decoder errors
        raise ImageError(f"The image data is damaged or incomplete and could not be decoded: {exc}") from exc
    original_size = rgb.size if img.format != "JPEG" else _exif_size(img, rgb)
    model = rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    display = None
    if display_max_side:
        display = rgb.copy()
        display.thumbnail((display_max_side, display_max_side), Image.Resampling.BILINEAR)
    return LoadedImage(model_input=np.asarray(model, dtype=np.uint8), display=display, original_size=original_size)


def _exif_size(img: Image.Image, rgb: Image.Image) -> tuple[int, int]:
    return rgb.size


ImageFile.LOAD_TRUNCATED_IMAGES = False
