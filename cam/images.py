"""One image loader for every entry point (library, CLI, app), safe on hostile files.

    loaded = load_image(src)                          # path, bytes, PIL image, numpy array, LoadedImage
    loaded.model_input                                # (256, 256, 3) uint8 RGB
    loaded.display                                    # PIL RGB, long side <= 1024 (None if not asked)
    loaded.original_size                              # (width, height) of the photo as a person sees it

Resize choice. The whole photo is *squashed* to 256x256 (no crop, no padding), like the course's
``Resize((256, 256))`` with Pillow's antialiased bilinear filter: every pixel of the photo is seen, and
a map pixel maps back to the photo by a plain per-axis scale, so resizing a map to the photo's size
lines it up exactly. The cost is a changed aspect ratio for non-square photos, which a texture model
with small receptive fields tolerates well up to a point; beyond ``MAX_ASPECT`` (20:1, e.g. an 8x5000
strip) the squashed input would be meaningless, so such images are refused with a message. A 1x1
image is accepted (it becomes a flat square).

Outputs.
  * ``model_input``: (256, 256, 3) uint8 RGB, the network's input before scaling to [0, 1].
  * ``display``: RGB, long side at most ``display_max_side`` (overlays are drawn at that size, never
    at a 12 MP photo's full size); ``display_max_side=None`` skips it and is the fastest path (large
    JPEGs are then decoded at 1/8 scale). ``model_input`` can differ by a level or two between the two
    settings for large JPEGs, because the JPEG decoder downscales by a different power of two.
  * ``original_size``: the true (width, height) after EXIF orientation, even when the JPEG was decoded
    at a reduced scale.

Limits, all checked before any pixel is decoded (a 12 KB PNG can declare 10000x10000 pixels):
  * ``MAX_BYTES`` (25 MiB) per file or bytes object; only that much of a file is ever read.
  * ``MAX_PIXELS`` (50 MP, a 48 MP phone photo passes) from the header, parsed here for PNG, JPEG,
    GIF, WebP and BMP before Pillow sees the data, and checked again on Pillow's header for all.
  * ``MAX_ASPECT`` long side / short side.
  * Formats: JPEG (and MPO), PNG, GIF, WebP, BMP, TIFF only (``FORMATS``); Pillow's other plugins
    (EPS runs Ghostscript, PSD, ICNS, ...) are never tried. Multi-frame files (GIF, WebP, TIFF, MPO)
    give frame 0; ``is_animated``/``n_frames``/``seek`` are never called, because they parse every
    frame of an untrusted file.
  * Truncated files are refused: this module never sets ``ImageFile.LOAD_TRUNCATED_IMAGES`` (it must
    stay False, its default) and a decoder that runs out of data raises.
  * Decode work, from the structure in the bytes (`cam.jpeg`, `cam.imagebytes`): JPEG scans (at most
    64, and scans x pixels), progressive JPEG coefficient memory, marker segments and junk; PNG chunk
    count; GIF blocks before the first image; WebP pixels (16 MP, decoded whole); run-length BMP size;
    TIFF strip and tile size. 12- and 16-bit JPEGs and hierarchical JPEGs are refused by name.
    PNG colour profiles and text other than XMP are dropped unread (Pillow refuses large ones).
  * Memory: only the decoded image exists at full size (at most 4 bytes a pixel, 200 MB at 50 MP);
    every conversion runs on a reduced image or strip by strip (`_small_rgb`), whatever the mode.

Colour modes become 8-bit RGB: transparency (RGBA, LA, PA, P or L with tRNS) is composited on white
as ``(c*a + 255*(255 - a) + 127) // 255``; 16-bit grey (I;16*) is ``round(v / 257)``; 32-bit integer
(I) and float (F) images are read as 8-bit when in [0, 255], as 16-bit when integers in [0, 65535],
as [0, 1] floats when in [0, 1], and otherwise min-max stretched; CMYK, YCbCr, 1-bit, grey and palette
use Pillow's conversions. EXIF orientation (also from XMP) is applied; an unreadable EXIF block is
ignored rather than refused, since the pixels are fine.

Every refusal is an `ImageError` (a ValueError) whose message says what happened, why, and what to do;
every exception Pillow or numpy may raise on bad data (OSError, SyntaxError, struct.error, EOFError,
ValueError, DecompressionBombError, MemoryError, ...) is turned into one.
"""

from __future__ import annotations

import io
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from cam import imagebytes, jpeg
from cam.errors import ImageError
from cam.network import INPUT_SIZE

MAX_PIXELS = 50_000_000  # 50 MP
MAX_BYTES = 25 * 1024 * 1024  # 25 MiB
MAX_ASPECT = 20  # long side / short side
DISPLAY_MAX_SIDE = 1024
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # Pillow plugin names tried, in this order
ACCEPTED = imagebytes.ACCEPTED

ImageSource = Union[str, os.PathLike[str], bytes, bytearray, memoryview, Image.Image, np.ndarray, "LoadedImage"]

_MB = 1024 * 1024
# Modes that Image.reduce averages in place (LA and RGBA it first copies whole to premultiplied form) and
# whose conversion commutes with averaging (CMYK's and YCbCr's clip, so they are converted in strips).
_DIRECT = frozenset({"L", "RGB", "RGBX", "I", "F"})
_STRIP_PIXELS = 1 << 20  # a strip converted at a time: ~30 MB of numpy temporaries at most
_TRANSPOSE = {  # EXIF orientation -> the transpose that shows the photo upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class LoadedImage:
    model_input: np.ndarray  # (256, 256, 3) uint8 RGB
    display: Image.Image | None  # RGB, long side <= display_max_side
    original_size: tuple[int, int]  # (width, height) after EXIF orientation

    def tensor(self) -> torch.Tensor:
        """(1, 3, 256, 256) float32 in [0, 1]: the course's input format."""
        # (256, 256, 3) uint8 -> (1, 3, 256, 256) float32; copy because the array may be read-only
        return torch.from_numpy(self.model_input.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def load_image(src: ImageSource, *, display_max_side: int | None = DISPLAY_MAX_SIDE) -> LoadedImage:
    """Load any supported image source into the model's input format (see the module docstring)."""
    if isinstance(src, LoadedImage):
        return src
    if display_max_side is not None and (not isinstance(display_max_side, int) or display_max_side < 1):
        raise ValueError(f"display_max_side must be a positive int or None, got {display_max_side!r}")
    if isinstance(src, np.ndarray):
        rgb = _from_array(src)
        _check_shape("The image array", *rgb.size)
        return _finish(rgb, rgb.size, display_max_side)
    if isinstance(src, Image.Image):
        return _load_pil(src, "The image", display_max_side, owned=False)
    if isinstance(src, (bytes, bytearray, memoryview, str, os.PathLike)):
        data, name = _read(src)
        return _load_pil(_open(data, name), name, display_max_side, owned=True)
    raise ImageError(
        f"Cannot load an image from a {type(src).__name__}: the loader takes a file path, bytes, a PIL "
        "image or a numpy array. Pass one of those."
    )


# ---------------------------------------------------------------------------------------------- reading


def _read(src: str | os.PathLike[str] | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    """The file's bytes (at most MAX_BYTES + 1 are read) and a name for messages."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        name = "The uploaded data"
    else:
        try:
            path = Path(os.fspath(src))
            name = repr(_shown(path.name or str(path)))
            st = path.stat()
        except FileNotFoundError:
            raise ImageError(f"No file at {_shown(os.fspath(src))!r}: check the path and try again.") from None
        except (OSError, ValueError) as exc:  # permissions, embedded NUL, name too long
            why = getattr(exc, "strerror", None) or str(exc)[:200]  # not str(exc): it repeats the whole path
            raise ImageError(f"Cannot read the file {_shown(os.fspath(src))!r} ({why}). Check the path.") from exc
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"{name} is a folder, not an image file. Choose an image file inside it.")
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise ImageError(f"{name} is not a regular file (a device or pipe). Choose an image file.")
        _check_bytes(name, st.st_size)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_BYTES + 1)  # the file may have grown since stat
        except OSError as exc:
            raise ImageError(f"Cannot read {name} ({exc.strerror or exc}). Check the file's permissions.") from exc
    _check_bytes(name, len(data))
    if not data:
        raise ImageError(f"{name} is empty (0 bytes): there is no picture in it. Choose a JPEG or PNG photo.")
    return data, name


def _shown(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, keeping its end (the extension): for echoing user input."""
    return text if len(text) <= limit else f"{text[: limit - 20]}...{text[-17:]}"


def _check_bytes(name: str, size: int) -> None:
    if size > MAX_BYTES:
        raise ImageError(
            f"{name} is {size / _MB:.2f} MB ({size:,} bytes), over the {MAX_BYTES / _MB:.0f} MB limit "
            "for images. "
            "Save it as a JPEG or at a smaller size (a phone photo is 2-8 MB) and try again."
        )


def _open(data: bytes, name: str) -> Image.Image:
    """Identify the format and read the header; refuse non-images and oversized headers."""
    kind = imagebytes.foreign(data)
    if kind is not None:
        raise ImageError(kind.format(name=name))
    layout = jpeg.read_layout(data) if data[:3] == b"\xff\xd8\xff" else None
    declared = imagebytes.header_size(data, layout)
    if declared is not None:
        _check_shape(name, *declared)
    if layout is not None:
        jpeg.check_layout(layout, name)  # scans, decode memory, segments, unsupported variants
    data = imagebytes.prepare(data, name)  # PNG and GIF structure limits; PNG metadata Pillow may refuse
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise ImageError(imagebytes.unidentified(data, name)) from None
    except Image.DecompressionBombError:
        raise _bomb(name) from None
    except MemoryError:
        raise _memory_error(name) from None
    except Exception as exc:  # Pillow raises many types on malformed headers
        raise _damaged(name, imagebytes.format_of(data), exc) from exc
    return img


# ---------------------------------------------------------------------------------------------- checks


def _check_shape(name: str, w: int, h: int) -> None:
    if w < 1 or h < 1:
        raise ImageError(
            f"{name} has no pixels ({w}x{h}): the image is empty or its header is damaged. Choose another image."
        )
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels, checked before decoding because a small file can declare "
            "a huge image. Resize it (the model only sees 256x256) and try again."
        )
    ratio = max(w, h) / min(w, h)
    if ratio > MAX_ASPECT:
        raise ImageError(
            f"{name} is {w}x{h} pixels, a {ratio:.0f}:1 strip; it is too elongated: the model sees a "
            f"256x256 square, and squashing such a strip into it destroys its content. Crop it to at most "
            f"{MAX_ASPECT}:1 around the plant and try again."
        )


def _damaged(name: str, fmt: str | None, exc: BaseException) -> ImageError:
    detail = _shown(str(exc).strip(), 200) or type(exc).__name__
    what = f"its {fmt} data" if fmt else "its data"
    return ImageError(
        f"{name} is damaged or incomplete: {what} could not be decoded ({detail}). The file may be cut off "
        "by an interrupted download or upload; re-save or re-export it and try again."
    )


def _bomb(name: str) -> ImageError:
    """Pillow's own DecompressionBombError (over twice Image.MAX_IMAGE_PIXELS), reworded."""
    return ImageError(
        f"{name} declares an image of more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels; "
        f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels, checked before decoding because a small file "
        "can declare a huge image. Resize the image and try again."
    )


def _memory_error(name: str) -> ImageError:
    return ImageError(
        f"{name} is too large to decode with the memory available. Resize it to a few megapixels and try again."
    )


# ---------------------------------------------------------------------------------------------- decoding


def _needed(w: int, h: int, display_max_side: int | None) -> tuple[int, int]:
    """The smallest (w, h) that still gives full quality for the model input and the display."""
    s = min(1.0, display_max_side / max(w, h)) if display_max_side else 0.0
    return min(w, max(INPUT_SIZE, math.ceil(w * s))), min(h, max(INPUT_SIZE, math.ceil(h * s)))


def _load_pil(img: Image.Image, name: str, display_max_side: int | None, *, owned: bool) -> LoadedImage:
    """Decode frame 0 of ``img`` (header already read) into a LoadedImage.

    ``owned``: the loader opened ``img`` itself, so it may switch the JPEG decoder to draft mode (which
    changes the object); a caller's image is never changed.
    """
    fmt = img.format
    try:
        w, h = img.size
        _check_shape(name, w, h)
        if owned:
            imagebytes.check_tiff(img, name)  # before load(): its strip buffers are allocated there
        if owned and isinstance(img, JpegImagePlugin.JpegImageFile):
            # Decode at 1/2, 1/4 or 1/8 scale in the DCT: the result is at least _needed() on each side.
            img.draft(img.mode, _needed(w, h, display_max_side))
        img.load()
        orientation = _orientation(img)
        rgb = _small_rgb(img, name, display_max_side)
        if orientation in _TRANSPOSE:
            rgb = rgb.transpose(_TRANSPOSE[orientation])
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise _bomb(name) from None
    except MemoryError:
        raise _memory_error(name) from None
    except Exception as exc:  # truncated data, bad chunks, decoder errors of every type
        raise _damaged(name, fmt, exc) from exc
    original_size = (h, w) if orientation in _SWAPS_AXES else (w, h)
    return _finish(rgb, original_size, display_max_side, copy=not owned)


def _orientation(img: Image.Image) -> int:
    """EXIF (or XMP) orientation 1-8; 1 when absent or unreadable (the pixels are still fine)."""
    try:
        value = img.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and value in _TRANSPOSE else 1
    except Exception:  # a malformed EXIF block must not cost the user the photo
        return 1


def _small_rgb(img: Image.Image, name: str, display_max_side: int | None) -> Image.Image:
    """``img`` as 8-bit RGB, box-averaged by the largest integer factor that keeps both sides at least what
    the outputs need (`_needed`). No mode is converted at full size: those that ``Image.reduce`` averages
    in place are reduced first; every other one (P, 1, I;16, LA, RGBA, colour keys, ...) strip by strip,
    each strip turned into a mode that reduces in place (`_reducible`) and reduced before the next. So
    any accepted image costs its decoded size (at most 4 bytes a pixel) plus one strip's temporaries."""
    w, h = img.size
    tw, th = _needed(w, h, display_max_side)
    factor = max(1, min(w // tw, h // th))
    if img.mode in _DIRECT and not (img.mode in ("L", "RGB") and "transparency" in img.info):
        return _to_rgb(img.reduce(factor) if factor > 1 else img, name)
    rows = max(1, _STRIP_PIXELS // (w * factor)) * factor  # a multiple of factor: strips reduce exactly
    parts = []
    for top in range(0, h, rows):
        part = _reducible(img.crop((0, top, w, min(h, top + rows))), name)
        parts.append((part.reduce(factor) if factor > 1 else part, (0, top // factor)))
    out = Image.new(parts[0][0].mode, (-(-w // factor), -(-h // factor)))
    for part, at in parts:
        out.paste(part, at)
    return _to_rgb(out, name)


def _reducible(img: Image.Image, name: str) -> Image.Image:
    """A strip in a mode that ``Image.reduce`` averages in place: premultiplied RGBa for anything with
    alpha (averaging premultiplied colour and then compositing on white equals compositing and then
    averaging), L for 16-bit grey (round(v / 257)), RGB for the rest."""
    mode = img.mode
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or ("transparency" in img.info and mode in ("P", "L", "RGB", "1")):
        return _premultiplied(img)
    if mode.startswith("I;16"):
        return Image.fromarray(np.round(np.asarray(img, dtype=np.float64) / 257.0).astype(np.uint8), "L")
    return _to_rgb(img, name)


def _premultiplied(img: Image.Image) -> Image.Image:
    """RGBa (colour premultiplied by alpha, round(c * a / 255)); colour keys and palette alpha applied."""
    if img.mode == "RGBa":
        return img
    if img.mode == "La":
        img = img.convert("LA")
    return (img if img.mode == "RGBA" else img.convert("RGBA")).convert("RGBa")


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    """Every Pillow mode to 8-bit RGB (rules in the module docstring); called on reduced images only."""
    mode = img.mode
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or ("transparency" in img.info and mode in ("P", "L", "RGB", "1")):
        p = np.asarray(_premultiplied(img)).astype(np.uint16)
        # round(c * a / 255) + 255 - a == (c*a + 255*(255 - a) + 127) // 255: compositing on white
        on_white = np.minimum(p[..., :3] + (255 - p[..., 3:4]), 255).astype(np.uint8)
        return Image.fromarray(on_white, "RGB")
    if mode == "RGB":
        return img
    if mode.startswith("I;16"):
        return _gray_to_rgb(np.asarray(img).astype(np.float64) / 257.0)
    if mode in ("I", "F"):
        return _gray_to_rgb(_scale_wide(np.asarray(img, dtype=np.float64), name, is_float=mode == "F"))
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(
            f"{name} uses the colour mode {mode!r}, which cannot be converted to RGB ({exc}). "
            "Save it as an ordinary RGB JPEG or PNG and try again."
        ) from exc


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8: (c*a + 255*(255 - a) + 127) // 255, exact in uint16."""
    c = rgba[..., :3].astype(np.uint16)
    a = rgba[..., 3:4].astype(np.uint16)
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def _scale_wide(arr: np.ndarray, name: str, *, is_float: bool) -> np.ndarray:
    """(H, W) float64 of a 32-bit int (I) or float (F) image -> (H, W) float64 on the 8-bit scale."""
    if not np.isfinite(arr).all():
        raise ImageError(
            f"{name} contains NaN or infinite values, so it has no defined colours. Save it as an ordinary "
            "8-bit image and try again."
        )
    lo, hi = float(arr.min()), float(arr.max())
    if is_float and lo >= 0.0 and hi <= 1.0:
        return arr * 255.0  # floats in [0, 1]
    if lo >= 0.0 and hi <= 255.0:
        return arr
    if not is_float and lo >= 0.0 and hi <= 65535.0:
        return arr / 257.0  # 16-bit values in a 32-bit image
    # min-max stretch; a span so small that 255 / span overflows (denormals) counts as flat
    span = hi - lo
    scale = 255.0 / span if span > 0 else math.inf
    return np.zeros_like(arr) if not math.isfinite(scale) else (arr - lo) * scale


def _gray_to_rgb(arr: np.ndarray) -> Image.Image:
    """(H, W) float64 on the 8-bit scale -> RGB."""
    grey = np.clip(arr, 0.0, 255.0).round().astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")


def _from_array(arr: np.ndarray) -> Image.Image:
    """A numpy image to RGB. Accepted: (H, W), (H, W, 1), (H, W, 3), (H, W, 4) of bool, uint8, uint16
    (value / 257), other integers in [0, 255], or floats in [0, 1] or [0, 255]."""
    a = arr
    shape = a.shape
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        hint = ""
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] > 4:
            hint = " It looks channels-first (C, H, W): transpose it to (H, W, C)."
        elif a.ndim == 4 and a.shape[0] == 1:
            hint = " It looks like a batch of one: pass arr[0]."
        raise ImageError(f"An image array must have shape (H, W), (H, W, 3) or (H, W, 4); got {shape}.{hint}")
    if a.size == 0:
        raise ImageError(f"The image array is empty (shape {shape}): there is no picture in it.")
    _check_shape("The image array", a.shape[1], a.shape[0])
    kind = a.dtype.kind
    if a.dtype == np.bool_:
        out = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        out = a
    elif a.dtype == np.uint16:
        out = (a / 257.0).round().astype(np.uint8)
    elif kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ImageError(
                f"The image array ({a.dtype}) has values from {lo} to {hi}; integer images must be in "
                "[0, 255] (or uint16 for 16-bit). Convert it to uint8 and try again."
            )
        out = a.astype(np.uint8)
    elif kind == "f":
        f = a.astype(np.float64)
        if not np.isfinite(f).all():
            raise ImageError("The image array contains NaN or infinite values; replace them and try again.")
        flo, fhi = float(f.min()), float(f.max())
        if flo < 0.0 or fhi > 255.0:
            raise ImageError(
                f"The image array has float values from {flo:.3g} to {fhi:.3g}; floats must be in [0, 1] "
                "(or [0, 255]). If it was normalised with a mean and std, undo that first."
            )
        out = (f * (255.0 if fhi <= 1.0 else 1.0)).round().astype(np.uint8)  # floats in [0, 1] as the course
    else:
        raise ImageError(f"Unsupported image array dtype {a.dtype}: use uint8, uint16, bool, or floats in [0, 1].")
    out = np.ascontiguousarray(out)
    if out.ndim == 2:
        return Image.fromarray(np.repeat(out[..., None], 3, axis=2), "RGB")
    if out.shape[2] == 4:
        return Image.fromarray(_on_white(out), "RGB")
    return Image.fromarray(out, "RGB")


def _finish(
    rgb: Image.Image, original_size: tuple[int, int], display_max_side: int | None, *, copy: bool = False
) -> LoadedImage:
    model = rgb.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    display: Image.Image | None = None
    if display_max_side:
        w, h = rgb.size
        s = min(1.0, display_max_side / max(w, h))
        if s < 1.0:
            display = rgb.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
        else:
            display = rgb.copy() if copy else rgb  # never hand back (and let callers mutate) their own image
    model_input = np.asarray(model, dtype=np.uint8)
    model_input.setflags(write=False)
    return LoadedImage(model_input=model_input, display=display, original_size=original_size)
