"""A deterministic corpus of hostile, awkward and ordinary image files, for every entry point.

    from tests.hostile.corpus import make_corpus
    cases = make_corpus(tmp_path)          # writes the files, returns list[Case] (73, ~1 s CPU)
    for case in cases:
        case.name, case.path               # unique name; the file (extension as a user would have it)
        if case.expect == "ok":
            case.size                      # (width, height) the loader must report as original_size
            case.expected_model_input()    # (256, 256, 3) uint8: the intended content squashed to 256x256
            case.tolerance                 # max mean |model_input - expected| (0-255 scale) for this format
        else:                              # case.expect == "error"
            case.error                     # a substring the ImageError message must contain

API (stable: the app's tests feed the same files through the event handler, gradio_client and a raw
``data:`` URL call):
  * ``make_corpus(directory) -> list[Case]``; ``directory`` must exist; file names are
    ``<case.name><extension>``; the same bytes every run (no randomness without a fixed seed, no
    timestamps).
  * ``Case.rgb`` is the intended content after EXIF orientation and alpha compositing on white
    (``(H, W, 3)`` uint8). For the 6000x4000 JPEG it is the same content at 600x400 (same aspect), so
    always compare after squashing both to 256x256 (``expected_model_input``), never pixel by pixel at
    full size.
  * ``Case.tolerance`` is a *mean* absolute error bound: lossless formats 1.0 (resize rounding),
    lossy formats a few levels. A wrong orientation, channel order, palette or alpha treatment costs
    tens of levels, so these checks catch wrong colours and rotations, not just exceptions.
  * Error substrings name the kind of refusal: "megapixels" (too many pixels, refused from the
    header), "damaged" (truncated or corrupt data), "empty", "not an image", "HTML", "vector" (SVG),
    "HEIC", "MB limit" (file too large), "elongated" (extreme aspect ratio); decode work: "scans",
    "MB of memory to decode" (progressive JPEG), "junk or fill bytes", "metadata segments" (JPEG),
    "chunks" (PNG), "metadata blocks" (GIF), "WebP images are accepted up to", "stored in blocks"
    (TIFF); unsupported variants: "12-bit JPEG", "16-bit lossless JPEG", "hierarchical".
  * ``OVERSIZE_NAME`` is the one large file (``MAX_BYTES + 1`` bytes); callers that upload through a
    server with its own smaller upload limit may skip it by name.

Every other file is under 1 MB (the largest are the 60,000-chunk PNG, 720 KB, and the 6000x4000 JPEG,
about 200 KB; the PNG bomb is 12 KB).
"""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from cam.images import MAX_BYTES

OVERSIZE_NAME = "over_size_limit"
MODEL_SIZE = 256

LOSSLESS = 1.0  # rounding of the shared bilinear resize
JPEG_TOL = 4.0  # quality 90 JPEG of smooth content, including draft-mode decoding


@dataclass(frozen=True)
class Case:
    """One corpus file and what the loader must do with it (see the module docstring)."""

    name: str
    path: Path
    expect: Literal["ok", "error"]
    note: str
    rgb: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) uint8 intended content
    size: tuple[int, int] | None = None  # (width, height) expected original_size
    tolerance: float = LOSSLESS
    error: str | None = None  # substring of the ImageError message

    def expected_model_input(self) -> np.ndarray:
        """The intended content squashed to (256, 256, 3) uint8 with Pillow's bilinear filter."""
        if self.rgb is None:
            raise ValueError(f"case {self.name!r} expects an error, it has no content")
        img = Image.fromarray(self.rgb, "RGB").resize((MODEL_SIZE, MODEL_SIZE), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- content


def scene(w: int, h: int) -> np.ndarray:
    """(h, w, 3) uint8 content that reveals rotations, flips and channel swaps.

    Red rises left to right, green top to bottom, and a blue block fills the top-left quadrant.
    """
    x = np.linspace(30, 225, w, dtype=np.float64)[None, :]
    y = np.linspace(30, 225, h, dtype=np.float64)[:, None]
    out = np.empty((h, w, 3), dtype=np.uint8)
    out[..., 0] = np.broadcast_to(x, (h, w)).round()
    out[..., 1] = np.broadcast_to(y, (h, w)).round()
    out[..., 2] = 40
    out[: (h + 1) // 2, : (w + 1) // 2, 2] = 210
    return out


def smooth(w: int, h: int, seed: int, cells: tuple[int, int] = (6, 4)) -> np.ndarray:
    """(h, w, 3) uint8 smooth colourful content: seeded random cells upsampled bilinearly."""
    return np.asarray(smooth_image(w, h, seed, cells))


def smooth_image(w: int, h: int, seed: int, cells: tuple[int, int] = (6, 4)) -> Image.Image:
    """`smooth` as a PIL image (no numpy copy: the 6000x4000 case stays at one 72 MB buffer)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(20, 236, size=(cells[1], cells[0], 3), dtype=np.uint8)
    return Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BILINEAR)


def gray_scene(w: int, h: int) -> np.ndarray:
    """(h, w) float64 in [0, 1]: a diagonal ramp with a bright top-left block."""
    x = np.linspace(0.0, 0.6, w)[None, :]
    y = np.linspace(0.0, 0.3, h)[:, None]
    g = x + y
    g[: h // 2, : w // 2] = 0.95
    return g


def on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite (H, W, 3) uint8 colour with (H, W) uint8 alpha over white: c*a/255 + 255*(1-a/255)."""
    a = alpha.astype(np.float64)[..., None] / 255.0
    return (rgb.astype(np.float64) * a + 255.0 * (1.0 - a)).round().astype(np.uint8)


def gray3(g: np.ndarray) -> np.ndarray:
    """(H, W) uint8 grey to (H, W, 3)."""
    return np.repeat(g[..., None], 3, axis=2)


# ---------------------------------------------------------------------------------------------- encoders


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(w: int, h: int) -> bytes:
    """A valid 1-bit greyscale PNG of w x h zero pixels: ~12 KB for 10000x10000."""
    row = b"\x00" * (1 + (w + 7) // 8)  # filter byte + packed bits
    idat = zlib.compress(row * h, 9)
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_with_size(data: bytes, w: int, h: int) -> bytes:
    """Rewrite the width and height in a JPEG's SOF0/SOF2 header (the pixels stay small)."""
    i = 2
    while i + 4 <= len(data):
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC2):
            return data[: i + 5] + struct.pack(">HH", h, w) + data[i + 9 :]
        i += 2 + length
    raise ValueError("no SOF marker")


def tiff_with_size(data: bytes, w: int, h: int) -> bytes:
    """Rewrite ImageWidth (256) and ImageLength (257) in a little-endian TIFF's first IFD."""
    out = bytearray(data)
    assert out[:4] == b"II*\x00"
    ifd = struct.unpack("<I", out[4:8])[0]
    (count,) = struct.unpack("<H", out[ifd : ifd + 2])
    for k in range(count):
        e = ifd + 2 + 12 * k
        (tag,) = struct.unpack("<H", out[e : e + 2])
        if tag in (256, 257):
            value = w if tag == 256 else h
            out[e + 2 : e + 4] = struct.pack("<H", 4)  # LONG
            out[e + 8 : e + 12] = struct.pack("<I", value)
    return bytes(out)


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker code, start, end) of each marker segment of a well-formed JPEG, a scan's entropy-coded data
    included in its SOS segment; the last entry is EOI."""
    out, i = [], 2
    while i + 1 < len(data):
        code = data[i + 1]
        if code == 0xD9:
            out.append((code, i, i + 2))
            break
        end = i + 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
        if code == 0xDA:  # entropy-coded data runs to the next marker that is not stuffing or RSTn
            m = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end)
            end = m.start() if m else len(data)
        out.append((code, i, end))
        i = end
    return out


def jpeg_repeat_scan(data: bytes, times: int, which: int | None = None) -> bytes:
    """A progressive JPEG with one of its scans (the shortest by default) repeated ``times`` more times
    right after itself: every copy is a valid refinement-free pass that the decoder runs again."""
    scans = [(s, e) for code, s, e in jpeg_segments(data) if code == 0xDA]
    s, e = scans[which] if which is not None else min(scans, key=lambda se: se[1] - se[0])
    return data[:e] + data[s:e] * times + data[e:]


def jpeg_with_sof(data: bytes, marker: int, precision: int = 8) -> bytes:
    """Rewrite a baseline JPEG's SOF0 marker code and sample precision (only the header changes)."""
    for code, s, _ in jpeg_segments(data):
        if code == 0xC0:
            return data[: s + 1] + bytes([marker]) + data[s + 2 : s + 4] + bytes([precision]) + data[s + 5 :]
    raise ValueError("no SOF0 marker")


def tiff_with_tag(data: bytes, tag: int, value: int) -> bytes:
    """Set a LONG value for an existing tag in a little-endian TIFF's first IFD."""
    out = bytearray(data)
    ifd = struct.unpack("<I", out[4:8])[0]
    (count,) = struct.unpack("<H", out[ifd : ifd + 2])
    for k in range(count):
        e = ifd + 2 + 12 * k
        if struct.unpack("<H", out[e : e + 2])[0] == tag:
            out[e + 2 : e + 8] = struct.pack("<HI", 4, 1)
            out[e + 8 : e + 12] = struct.pack("<I", value)
            return bytes(out)
    raise ValueError(f"tag {tag} not in the first IFD")


def gif_with_blocks(data: bytes, blocks: bytes) -> bytes:
    """Insert extension blocks between a GIF's global colour table and its first block."""
    pos = 13 + ((3 << ((data[10] & 7) + 1)) if data[10] & 0x80 else 0)
    return data[:pos] + blocks + data[pos:]


def png_with_chunks(data: bytes, chunks: bytes) -> bytes:
    """Insert chunks right after a PNG's IHDR."""
    return data[:33] + chunks + data[33:]


# Real files from other encoders, 16x16, content ``_grey16()`` (base64; Pillow cannot write them):
# libjpeg-turbo 3 through imagecodecs (12-bit lossy, 16- and 8-bit lossless) and cjpeg -arithmetic.
_REAL_JPEG = {
    "12bit": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMU"
        "FRUVDA8XGBYUGBIUFRT/wQALDAAQABABAREA/8QAFQABAQAAAAAAAAAAAAAAAAAADA3/xAAbEAAABwEAAAAAAAAAAAAAAAAACQsl"
        "N0NUcv/aAAgBAQAAPwA1+iVElQKwYauRQAESokqBWDDVyB/6JUSVArBhq5FAARKiSoFYMNXI/9k="
    ),
    "lossless16": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/wwALEAAQABABAREA/8QAFgABAQEAAAAAAAAAAAAAAAAADAoP/9oACAEBAAEAAMT/ANgAwAYA"
        "MAGADABgAwAYAMAGADABgAwAYAWAMAGADABgAwAYAMAGADABgAwAYAMAGADACwBgAwAYAMAGADABgAwAYAMAGADABgAwAYAWAMAG"
        "ADABgAwAYAMAGADABgAwAYAMAGADACwBgAwAYAMAGADABgAwAYAMAGADABgAwAYAWAMAGADABgAwAYAMAGADABgAwAYAMAGADACw"
        "BgAwAYAMAGADABgAwAYAMAGADABgAwAYAWAMAGADABgAwAYAMAGADABgAwAYAMAGADACwBgAwAYAMAGADABgAwAYAMAGADABgAwA"
        "YAWAMAGADABgAwAYAMAGADABgAwAYAMAGADACwBgAwAYAMAGADABgAwAYAMAGADABgAwAYAWAMAGADABgAwAYAMAGADABgAwAYAM"
        "AGADACwBgAwAYAMAGADABgAwAYAMAGADABgAwAYAWAMAGADABgAwAYAMAGADABgAwAYAMAGADACwBgAwAYAMAGADABgAwAYAMAGA"
        "DABgAwAYAWAMAGADABgAwAYAMAGADABgAwAYAMAGADAD/9k="
    ),
    "lossless8": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/wwALCAAQABABAREA/8QAFgABAQEAAAAAAAAAAAAAAAAABAIH/9oACAEBAAEAAMTYxjGMYxjG"
        "MYxlsYxjGMYxjGMYy2MYxjGMYxjGMZbGMYxjGMYxjGMtjGMYxjGMYxjGWxjGMYxjGMYxjLYxjGMYxjGMYxlsYxjGMYxjGMYy2MYx"
        "jGMYxjGMZbGMYxjGMYxjGMtjGMYxjGMYxjGWxjGMYxjGMYxjLYxjGMYxjGMYxlsYxjGMYxjGMYy2MYxjGMYxjGMZbGMYxjGMYxjG"
        "M//Z"
    ),
    "arithmetic": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoK"
        "CgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoK"
        "CgoKCgoKCgr/yQARCAAQABADASIAAhEBAxEB/8wACgAQEAUBEBEF/9oADAMBAAIRAxEAPwDSadup0/F+tZuNNGw+QfImK/huUXQh"
        "EyuJfh5GfQT9j2EyyMto/9k="
    ),
    "arithmetic_progressive": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYGCAsICQoK"
        "CgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoK"
        "CgoKCgoKCgr/ygARCAAQABADASIAAhEBAxEB/8wABgAQARD/2gAMAwEAAhADEAAAAdHi8JCUmvgLm0D/zAAEEAX/2gAIAQEAAQUC"
        "Oj0BtB1cwP/MAAQRBf/aAAgBAwEBPwEWpRNhvCr/zAAEEQX/2gAIAQIBAT8BFhWA/8wABBAF/9oACAEBAAY/AsD/zAAEEAX/2gAI"
        "AQEAAT8hp1mJGP/aAAwDAQACAAMAAAAQgP/MAAQRBf/aAAgBAwEBPxCl5ED/zAAEEQX/2gAIAQIBAT8Q1YD/zAAEEAX/2gAIAQEA"
        "AT8QqOV5cIj/2Q=="
    ),
}


def _grey16() -> np.ndarray:
    """The content of the _REAL_JPEG files: (16, 16) uint8, 12 x + 3 y + 20."""
    y, x = np.mgrid[0:16, 0:16]
    return (x * 12 + y * 3 + 20).astype(np.uint8)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


# EXIF orientation -> the transpose that makes the stored pixels display as intended (its inverse
# is applied when writing the file).
_STORE = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # the viewer applies ROTATE_270
    8: Image.Transpose.ROTATE_270,  # the viewer applies ROTATE_90
}


# ---------------------------------------------------------------------------------------------- corpus


def make_corpus(directory: Path) -> list[Case]:
    """Write every corpus file into ``directory`` and return the cases (see the module docstring)."""
    directory = Path(directory)
    cases: list[Case] = []

    def write(name: str, ext: str, data: bytes) -> Path:
        path = directory / f"{name}{ext}"
        path.write_bytes(data)
        return path

    def ok(
        name: str,
        ext: str,
        data: bytes,
        rgb: np.ndarray,
        note: str,
        tol: float = LOSSLESS,
        size: tuple[int, int] | None = None,
    ) -> None:
        path = write(name, ext, data)
        real = size or (rgb.shape[1], rgb.shape[0])
        cases.append(Case(name, path, "ok", note, rgb=rgb, size=real, tolerance=tol))

    def err(name: str, ext: str, data: bytes, error: str, note: str) -> None:
        cases.append(Case(name, write(name, ext, data), "error", note, error=error))

    rgb = scene(96, 64)
    img = Image.fromarray(rgb, "RGB")

    # --- ordinary formats -----------------------------------------------------------------------
    ok("png_rgb", ".png", encode(img, "PNG"), rgb, "plain 8-bit RGB PNG")
    ok("jpeg_rgb", ".jpg", encode(img, "JPEG", quality=95), rgb, "baseline JPEG", JPEG_TOL)
    ok("jpeg_progressive", ".jpg", encode(img, "JPEG", quality=95, progressive=True), rgb, "progressive JPEG", JPEG_TOL)
    ok("bmp_rgb", ".bmp", encode(img, "BMP"), rgb, "24-bit BMP")
    ok("tiff_rgb", ".tif", encode(img, "TIFF", compression="tiff_lzw"), rgb, "LZW TIFF")
    ok("webp_lossless", ".webp", encode(img, "WEBP", lossless=True), rgb, "lossless WebP")
    ok("webp_lossy", ".webp", encode(img, "WEBP", quality=95), rgb, "lossy WebP", JPEG_TOL)
    ok("png_named_jpg", ".jpg", encode(img, "PNG"), rgb, "a PNG with a .jpg name: format from content")
    ok(
        "png_1x1",
        ".png",
        encode(Image.new("RGB", (1, 1), (10, 200, 60)), "PNG"),
        np.array([[[10, 200, 60]]], dtype=np.uint8),
        "one pixel: accepted, upscaled to a flat square",
    )

    # --- every mode -----------------------------------------------------------------------------
    g8 = (gray_scene(80, 60) * 255).round().astype(np.uint8)
    ok("png_gray_L", ".png", encode(Image.fromarray(g8, "L"), "PNG"), gray3(g8), "8-bit greyscale")
    ok("jpeg_gray", ".jpg", encode(Image.fromarray(g8, "L"), "JPEG", quality=95), gray3(g8), "greyscale JPEG", JPEG_TOL)
    g16 = (gray_scene(80, 60) * 65535).round().astype(np.uint16)
    ok(
        "png_gray16",
        ".png",
        encode(Image.fromarray(g16), "PNG"),
        gray3((g16 / 257.0).round().astype(np.uint8)),
        "16-bit greyscale PNG (I;16): value/257, not all white",
    )
    ok(
        "tiff_gray16",
        ".tif",
        encode(Image.fromarray(g16), "TIFF"),
        gray3((g16 / 257.0).round().astype(np.uint8)),
        "16-bit greyscale TIFF (I;16)",
    )
    rgb16 = rgb.astype(np.uint16) * 257
    png16 = _png_rgb16(rgb16)
    ok("png_rgb16", ".png", png16, rgb, "48-bit RGB PNG (16 bits per channel)")
    gf = gray_scene(80, 60).astype(np.float32)
    ok(
        "tiff_float",
        ".tif",
        encode(Image.fromarray(gf, "F"), "TIFF"),
        gray3((gf.astype(np.float64) * 255).round().astype(np.uint8)),
        "32-bit float TIFF (mode F) in [0, 1]",
    )
    cmyk = img.convert("CMYK")
    ok("jpeg_cmyk", ".jpg", encode(cmyk, "JPEG", quality=95), rgb, "CMYK JPEG (Adobe inverted)", JPEG_TOL)
    ok("tiff_cmyk", ".tif", encode(cmyk, "TIFF"), rgb, "CMYK TIFF")
    alpha = np.tile(np.linspace(0, 255, 96).round().astype(np.uint8), (64, 1))  # transparent at the left
    ok(
        "png_rgba",
        ".png",
        encode(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"),
        on_white(rgb, alpha),
        "RGBA PNG: composited on white",
    )
    ok(
        "webp_rgba",
        ".webp",
        encode(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "WEBP", lossless=True),
        on_white(rgb, alpha),
        "RGBA WebP: composited on white",
    )
    la_alpha = alpha[:60, :80]
    ok(
        "png_la",
        ".png",
        encode(Image.fromarray(np.dstack([g8, la_alpha]), "LA"), "PNG"),
        on_white(gray3(g8), la_alpha),
        "grey + alpha (LA) PNG",
    )
    palette_rgb, pal_img = _palette_image()
    ok("png_palette", ".png", encode(pal_img, "PNG"), palette_rgb, "palette (P) PNG")
    pal_t = pal_img.copy()
    pal_t.info["transparency"] = 0  # palette entry 0 (red, the left band) is transparent
    expected_t = palette_rgb.copy()
    expected_t[np.asarray(pal_img) == 0] = 255
    ok(
        "png_palette_transparent",
        ".png",
        encode(pal_t, "PNG", transparency=0),
        expected_t,
        "palette PNG with a transparent entry (tRNS): transparent -> white",
    )
    ok("gif_transparent", ".gif", encode(pal_img, "GIF", transparency=0), expected_t, "GIF with a transparent index")
    bits = np.zeros((40, 64), dtype=bool)
    bits[:20, :32] = True
    bits[30:, 40:] = True
    ok(
        "png_1bit",
        ".png",
        encode(Image.fromarray(bits), "PNG"),
        gray3(bits.astype(np.uint8) * 255),
        "1-bit black and white PNG",
    )

    # --- EXIF orientation -----------------------------------------------------------------------
    tall = scene(64, 96)  # what the viewer should see: portrait
    for o in (3, 6, 8):
        stored = Image.fromarray(tall, "RGB").transpose(_STORE[o])
        ok(
            f"jpeg_exif{o}",
            ".jpg",
            encode(stored, "JPEG", quality=95, exif=exif_bytes(o)),
            tall,
            f"JPEG with EXIF orientation {o}",
            JPEG_TOL,
        )
    stored = Image.fromarray(tall, "RGB").transpose(_STORE[6])
    ok("png_exif6", ".png", encode(stored, "PNG", exif=exif_bytes(6)), tall, "PNG with an eXIf orientation 6")
    big_tall = smooth(2000, 3000, seed=3)
    stored = smooth_image(2000, 3000, seed=3).transpose(_STORE[6])  # stored 3000x2000 landscape
    ok(
        "jpeg_exif6_3000x2000",
        ".jpg",
        encode(stored, "JPEG", quality=90, exif=exif_bytes(6)),
        big_tall[::5, ::5],
        "large rotated JPEG: drafted decode, original_size (2000, 3000)",
        JPEG_TOL,
        size=(2000, 3000),
    )

    # --- multi-frame: frame 0 only ----------------------------------------------------------------
    f0 = Image.fromarray(rgb, "RGB").quantize(colors=16, dither=Image.Dither.NONE)
    f0_rgb = np.asarray(f0.convert("RGB"))
    f1 = Image.new("RGB", (96, 64), (20, 20, 230)).quantize(colors=4)
    gif = encode(f0, "GIF", save_all=True, append_images=[f1, f0], duration=100, loop=0)
    ok("gif_animated", ".gif", gif, f0_rgb, "animated GIF: frame 0")
    gce = [m.start() for m in re.finditer(re.escape(b"\x21\xf9\x04"), gif)]  # one control block per frame
    ok(
        "gif_animated_truncated_frame1",
        ".gif",
        gif[: gce[1] + 30],
        f0_rgb,
        "animated GIF cut inside frame 1: frame 0 is complete and is used (no n_frames/seek)",
    )
    webp = encode(
        img,
        "WEBP",
        save_all=True,
        append_images=[Image.new("RGB", (96, 64), (20, 20, 230))],
        lossless=True,
        duration=100,
        loop=0,
    )
    ok("webp_animated", ".webp", webp, rgb, "animated WebP: frame 0")
    ok(
        "jpeg_huge_6000x4000",
        ".jpg",
        encode(smooth_image(6000, 4000, seed=7), "JPEG", quality=70),
        smooth(600, 400, seed=7),
        "24 MP JPEG under the cap: decoded in draft mode",
        JPEG_TOL,
        size=(6000, 4000),
    )

    # --- refused: too many pixels, from the header --------------------------------------------------
    err(
        "png_bomb_10000x10000",
        ".png",
        png_bomb(10_000, 10_000),
        "megapixels",
        "12 KB PNG declaring 100 MP: refused before decoding",
    )
    err(
        "jpeg_bomb_header_9000x9000",
        ".jpg",
        jpeg_with_size(encode(img, "JPEG"), 9_000, 9_000),
        "megapixels",
        "small JPEG whose header claims 81 MP",
    )
    gif_small = encode(f0, "GIF")
    err(
        "gif_bomb_65535x65535",
        ".gif",
        gif_small[:6] + struct.pack("<HH", 65535, 65535) + gif_small[10:],
        "megapixels",
        "GIF whose logical screen claims 4 gigapixels",
    )
    webp_bomb = bytearray(webp)
    assert webp_bomb[12:16] == b"VP8X"
    webp_bomb[24:30] = (16383).to_bytes(3, "little") * 2  # canvas 16384 x 16384, stored minus one
    err("webp_bomb_16384x16384", ".webp", bytes(webp_bomb), "megapixels", "WebP whose canvas claims 268 MP")

    tif = encode(img, "TIFF")
    err(
        "tiff_header_9000x9000",
        ".tif",
        tiff_with_size(tif, 9_000, 9_000),
        "megapixels",
        "TIFF declaring 81 MP: refused on Pillow's header (no pre-parse for TIFF)",
    )
    err(
        "tiff_header_20000x20000",
        ".tif",
        tiff_with_size(tif, 20_000, 20_000),
        "megapixels",
        "TIFF declaring 400 MP: Pillow's own DecompressionBombError, reworded",
    )

    # --- refused: damaged -----------------------------------------------------------------------
    png = encode(Image.fromarray(smooth(96, 64, seed=1), "RGB"), "PNG")
    err("png_truncated", ".png", png[: len(png) // 2], "damaged", "PNG cut in its IDAT data")
    jpg = encode(Image.fromarray(smooth(96, 64, seed=1), "RGB"), "JPEG")
    err("jpeg_truncated", ".jpg", jpg[: len(jpg) // 2], "damaged", "JPEG cut in its scan data")
    gif1 = encode(Image.fromarray(smooth(96, 64, seed=1), "RGB").quantize(64), "GIF")
    err("gif_truncated", ".gif", gif1[: len(gif1) // 2], "damaged", "GIF cut in its LZW data")
    err("webp_truncated", ".webp", webp[: len(webp) // 2], "damaged", "WebP cut in half")
    bad_crc = bytearray(png)
    bad_crc[20] ^= 0xFF  # inside IHDR: width high byte -> checksum mismatch
    err("png_bad_header_crc", ".png", bytes(bad_crc), "damaged", "PNG whose IHDR checksum fails")
    err("png_header_only", ".png", png[:33], "damaged", "PNG signature and IHDR, no pixel data")

    # --- refused: not an image at all ---------------------------------------------------------------
    err("zero_bytes", ".png", b"", "empty", "an empty file")
    err(
        "text_named_png",
        ".png",
        b"hello, this is a text file, not a picture\n" * 5,
        "not an image",
        "plain text with a .png name",
    )
    html = b"<!DOCTYPE html>\n<html><head><title>Plant</title></head><body><img src='p.png'></body></html>\n"
    err("html_named_png", ".png", html, "HTML", "a web page saved with a .png name")
    svg = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" '
        b'height="64"><rect width="64" height="64" fill="green"/></svg>\n'
    )
    err("vector_svg", ".svg", svg, "vector", "an SVG drawing")
    err("svg_named_png", ".png", svg[39:], "vector", "an SVG without XML prolog, named .png")
    err(
        "heic_named_jpg",
        ".jpg",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
        "HEIC",
        "an iPhone HEIC photo renamed .jpg",
    )
    err(
        "pdf_named_png",
        ".png",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "not an image",
        "a PDF named .png",
    )
    err(
        "psd_unsupported",
        ".psd",
        _psd_header(),
        "not an image",
        "a format Pillow knows but the loader does not accept (PSD)",
    )

    # --- refused: shape and size ------------------------------------------------------------------
    err(
        "strip_8x5000",
        ".png",
        encode(Image.fromarray(scene(8, 5000), "RGB"), "PNG"),
        "elongated",
        "an 8x5000 strip: squashing it to a square would destroy it",
    )
    path = write(OVERSIZE_NAME, ".png", encode(img, "PNG"))
    with path.open("r+b") as f:  # zero-extended (sparse where the file system allows): no 25 MB buffer
        f.truncate(MAX_BYTES + 1)
    cases.append(Case(OVERSIZE_NAME, path, "error", "a valid PNG padded to one byte over MAX_BYTES", error="MB limit"))

    # --- decode work and unsupported variants (cam.jpeg, cam.imagebytes) --------------------------------
    prog = encode(Image.fromarray(g8, "L"), "JPEG", quality=90, progressive=True)
    err("jpeg_scans_1000", ".jpg", jpeg_repeat_scan(prog, 1000), "scans", "progressive JPEG, one scan 1,000 times")
    ok(
        "jpeg_scans_64",
        ".jpg",
        jpeg_repeat_scan(prog, 64 - len([c for c, _, _ in jpeg_segments(prog) if c == 0xDA])),
        gray3(g8),
        "progressive JPEG with exactly 64 scans: at the limit, accepted",
        JPEG_TOL,
    )
    prog444 = encode(Image.fromarray(smooth(64, 48, seed=4), "RGB"), "JPEG", progressive=True, subsampling=0)
    err(
        "jpeg_progressive_444_6000x5000",
        ".jpg",
        jpeg_with_size(prog444, 6000, 5000),
        "MB of memory to decode",
        "progressive 4:4:4 JPEG declaring 30 MP: a 172 MB coefficient buffer",
    )
    base = encode(Image.fromarray(g8, "L"), "JPEG", quality=90)
    err("jpeg_12bit_header", ".jpg", jpeg_with_sof(base, 0xC1, 12), "12-bit JPEG", "SOF1 with 12-bit precision")
    err("jpeg_hierarchical", ".jpg", jpeg_with_sof(base, 0xC5), "hierarchical", "a differential (SOF5) frame")
    real = {k: base64.b64decode(v) for k, v in _REAL_JPEG.items()}
    err("jpeg_12bit", ".jpg", real["12bit"], "12-bit JPEG", "a real 12-bit JPEG (libjpeg-turbo 3)")
    err("jpeg_lossless_16bit", ".jpg", real["lossless16"], "16-bit lossless JPEG", "a real 16-bit lossless JPEG")
    grey16 = gray3(_grey16())
    ok("jpeg_lossless_8bit", ".jpg", real["lossless8"], grey16, "8-bit lossless JPEG (SOF3): libjpeg reads it")
    arith_rgb = np.dstack([_grey16(), 255 - _grey16(), np.full((16, 16), 90, np.uint8)])
    ok("jpeg_arithmetic", ".jpg", real["arithmetic"], arith_rgb, "arithmetic-coded JPEG (SOF9)", JPEG_TOL)
    ok(
        "jpeg_arithmetic_progressive",
        ".jpg",
        real["arithmetic_progressive"],
        arith_rgb,
        "arithmetic-coded progressive JPEG (SOF10)",
        JPEG_TOL,
    )
    err(
        "jpeg_fill_bytes",
        ".jpg",
        base[:2] + b"\xff" * 70_000 + base[2:],
        "junk or fill bytes",
        "70 KB of 0xFF fill before the first marker (Pillow skips them one at a time)",
    )
    err(
        "jpeg_many_segments",
        ".jpg",
        base[:2] + b"\xff\xfe\x00\x02" * 1500 + base[2:],
        "metadata segments",
        "1,500 empty COM segments",
    )
    plain = encode(Image.fromarray(rgb, "RGB"), "PNG")
    icc = png_chunk(b"iCCP", b"big profile\x00\x00" + zlib.compress(bytes(2 * 1024 * 1024), 9))
    ok("png_icc_2mb", ".png", png_with_chunks(plain, icc), rgb, "a 2 MB ICC profile (Pillow reads 1 MB): ignored")
    ztxt = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * 2_000_000, 9))
    ok("png_ztxt_2mb", ".png", png_with_chunks(plain, ztxt), rgb, "compressed text inflating to 2 MB: ignored")
    err(
        "png_60000_chunks",
        ".png",
        png_with_chunks(plain, png_chunk(b"teSt", b"") * 60_000),
        "chunks",
        "60,000 empty ancillary chunks (720 KB)",
    )
    gif_plain = encode(f0, "GIF")
    err(
        "gif_30000_comments",
        ".gif",
        gif_with_blocks(gif_plain, b"\x21\xfe\x00" * 30_000),
        "metadata blocks",
        "30,000 empty comment extensions before the first image",
    )
    webp_big = bytearray(webp)
    webp_big[24:30] = (4999).to_bytes(3, "little") + (3999).to_bytes(3, "little")  # canvas 5000 x 4000
    err("webp_5000x4000", ".webp", bytes(webp_big), "WebP images are accepted up to", "a 20 MP WebP canvas")
    err(
        "tiff_one_strip_6000x4000",
        ".tif",
        tiff_with_tag(tiff_with_size(tif, 6_000, 4_000), 278, 4_000),
        "stored in blocks",
        "RGB TIFF declaring 24 MP in one strip: a 72 MB strip buffer",
    )

    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def _png_rgb16(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one from an array)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def _palette_image() -> tuple[np.ndarray, Image.Image]:
    """A 4-colour palette image (vertical bands) and its RGB content."""
    colours = np.array([[220, 30, 30], [30, 180, 40], [40, 60, 220], [240, 220, 40]], dtype=np.uint8)
    idx = np.repeat(np.repeat(np.arange(4, dtype=np.uint8)[None, :], 24, axis=1), 48, axis=0)  # (48, 96)
    pal = Image.fromarray(idx, "P")
    pal.putpalette(colours.flatten().tolist())
    return colours[idx], pal


def _psd_header() -> bytes:
    """A minimal 8-bit RGB Photoshop file (header, empty sections, raw planes) of 4x4 pixels."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 4, 4, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + b"\x80" * 48


CaseFactory = Callable[[Path], list[Case]]  # the signature other test modules may type against


# ---------------------------------------------------------------------------------------------- mutation fuzz
#
#     stats = run_fuzz(cases=3000, seed=0)    # seeded and bounded; see tests/test_fuzz.py
#     stats.unexpected                        # [(case label, "ExcType: message")]: must be empty
#
# Each case takes one valid seed file (PNG, JPEG, GIF, WebP, BMP, TIFF in several modes), applies one
# to three mutations (byte flips, truncation, header field edits with boundary values, PNG chunk
# drops/duplicates/swaps/splices with valid CRCs, segment splices between seeds, insertions,
# deletions) and calls load_image on the bytes. Only two outcomes are allowed: a LoadedImage of the
# right shape, or an ImageError.


class CaseTimeout(BaseException):
    """Raised by the per-case alarm; a BaseException so that the loader's `except Exception` cannot
    swallow it."""


def fuzz_seeds() -> dict[str, bytes]:
    """Valid files of every format and several modes: the material the mutations start from."""
    rgb = smooth(48, 32, seed=11, cells=(4, 3))
    img = Image.fromarray(rgb, "RGB")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, 48).astype(np.uint8), (32, 1)), "L")
    rgba = img.copy()
    rgba.putalpha(alpha)
    pal = img.quantize(16)
    g16 = Image.fromarray((gray_scene(48, 32) * 65535).astype(np.uint16))
    frame = Image.new("RGB", (48, 32), (20, 20, 230))
    return {
        "png_rgb": encode(img, "PNG"),
        "png_rgba": encode(rgba, "PNG"),
        "png_palette_trns": encode(pal, "PNG", transparency=0),
        "png_gray16": encode(g16, "PNG"),
        "png_exif": encode(img, "PNG", exif=exif_bytes(6)),
        "jpeg": encode(img, "JPEG", quality=80),
        "jpeg_progressive_exif": encode(img, "JPEG", quality=80, progressive=True, exif=exif_bytes(8)),
        "jpeg_cmyk": encode(img.convert("CMYK"), "JPEG"),
        "gif_animated": encode(pal, "GIF", save_all=True, append_images=[frame.quantize(4)], duration=50),
        "webp_lossy": encode(img, "WEBP", quality=80),
        "webp_lossless_alpha": encode(rgba, "WEBP", lossless=True),
        "webp_animated": encode(img, "WEBP", save_all=True, append_images=[frame], duration=50),
        "bmp": encode(img, "BMP"),
        "bmp_palette": encode(pal, "BMP"),
        "tiff_lzw": encode(img, "TIFF", compression="tiff_lzw"),
        "tiff_raw_rgba": encode(rgba, "TIFF"),
        "tiff_float": encode(Image.fromarray(gray_scene(48, 32).astype(np.float32), "F"), "TIFF"),
        "jpeg_arithmetic_progressive": base64.b64decode(_REAL_JPEG["arithmetic_progressive"]),
        "jpeg_lossless": base64.b64decode(_REAL_JPEG["lossless8"]),
        "png_icc_text": png_with_chunks(
            encode(img, "PNG"),
            png_chunk(b"iCCP", b"p\x00\x00" + zlib.compress(bytes(4096))) + png_chunk(b"tEXt", b"a\x00b"),
        ),
    }


_INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def _png_chunks(data: bytes) -> list[bytes] | None:
    """A PNG as a list of whole chunks (length + type + data + crc), or None if it does not parse."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    out, i = [], 8
    while i + 12 <= len(data):
        n = struct.unpack(">I", data[i : i + 4])[0]
        if i + 12 + n > len(data):
            break
        out.append(data[i : i + 12 + n])
        i += 12 + n
    return out


def mutate(data: bytes, rng: np.random.Generator, seeds: list[bytes]) -> tuple[str, bytes]:
    """One to three random mutations of ``data``; returns (what was done, the new bytes)."""
    buf = bytearray(data)
    done: list[str] = []
    for _ in range(int(rng.integers(1, 4))):
        op = str(rng.choice(["flip", "truncate", "field", "chunk", "splice", "insert", "delete", "repeat"]))
        n = len(buf)
        if n == 0:
            break
        if op == "flip":
            for _ in range(int(rng.integers(1, 9))):
                k = int(rng.integers(0, n)) if rng.random() < 0.5 else int(rng.integers(0, min(n, 128)))
                buf[k] ^= 1 << int(rng.integers(0, 8))
        elif op == "truncate":
            buf = buf[: int(rng.integers(0, n))]
        elif op == "field":  # a boundary value in a header field, big or little endian, 1/2/4 bytes
            width = int(rng.choice([1, 2, 4]))
            k = int(rng.integers(0, max(1, min(n, 160) - width)))
            value = int(rng.choice(_INTERESTING)) & ((1 << (8 * width)) - 1)
            buf[k : k + width] = value.to_bytes(width, "big" if rng.random() < 0.5 else "little")
        elif op == "chunk":
            chunks = _png_chunks(bytes(buf))
            if not chunks or len(chunks) < 2:
                op = "chunk(not png)"
            else:
                which = str(rng.choice(["drop", "dup", "swap", "foreign", "rewrite"]))
                op = f"chunk-{which}"
                k = int(rng.integers(0, len(chunks)))
                if which == "drop":
                    del chunks[k]
                elif which == "dup":
                    chunks.insert(k, chunks[k])
                elif which == "swap":
                    j = int(rng.integers(0, len(chunks)))
                    chunks[k], chunks[j] = chunks[j], chunks[k]
                elif which == "foreign":
                    donors = [c for s in seeds for c in (_png_chunks(s) or [])]
                    chunks.insert(k, donors[int(rng.integers(0, len(donors)))])
                else:  # new data with a valid CRC, so it gets past the checksum into the parsers
                    kind = chunks[k][4:8]
                    body = bytearray(chunks[k][8:-4])
                    for _ in range(int(rng.integers(1, 5))):
                        if body:
                            body[int(rng.integers(0, len(body)))] = int(rng.integers(0, 256))
                    chunks[k] = png_chunk(kind, bytes(body))
                buf = bytearray(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))
        elif op == "splice":  # a segment of another seed over a segment of this file
            donor = seeds[int(rng.integers(0, len(seeds)))]
            a = int(rng.integers(0, len(donor)))
            seg = donor[a : a + int(rng.integers(1, 256))]
            k = int(rng.integers(0, n))
            buf[k : k + len(seg)] = seg
        elif op == "insert":
            k = int(rng.integers(0, n))
            buf[k:k] = rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif op == "delete":
            k = int(rng.integers(0, n))
            del buf[k : k + int(rng.integers(1, 64))]
        else:  # repeat a segment: long runs of the same structure
            k = int(rng.integers(0, n))
            seg = bytes(buf[k : k + int(rng.integers(1, 32))])
            buf[k:k] = seg * int(rng.integers(2, 50))
        done.append(op)
    return "+".join(done), bytes(buf)


@dataclass
class FuzzStats:
    cases: int = 0
    loaded: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # kind of refusal -> count
    unexpected: list[tuple[str, str]] = field(default_factory=list)  # (case label, "Type: message")
    timeouts: list[str] = field(default_factory=list)
    max_seconds: float = 0.0
    slowest: str = ""
    total_seconds: float = 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items(), key=lambda kv: -kv[1]))
        return (
            f"{self.cases} cases in {self.total_seconds:.1f} s: {self.loaded} loaded, "
            f"{sum(self.refused.values())} refused ({kinds}); {len(self.unexpected)} unexpected exceptions, "
            f"{len(self.timeouts)} over the time limit; slowest {self.max_seconds * 1000:.0f} ms ({self.slowest})"
        )


_KINDS = (
    "scans",
    "MB of memory to decode",
    "junk or fill",
    "metadata segments",
    "chunks",
    "metadata blocks",
    "stray bytes",
    "WebP images",
    "run-length",
    "stored in blocks",
    "-bit",
    "hierarchical",
    "colour components",
    "megapixels",
    "damaged",
    "no pixels",
    "empty",
    "not an image",
    "HTML",
    "vector",
    "HEIC",
    "MB limit",
    "elongated",
    "memory",
    "NaN",
    "colour mode",
)


def run_fuzz(
    cases: int,
    seed: int,
    *,
    time_limit: float = 10.0,
    max_pixels: int | None = 4_000_000,
    on_case: Callable[[int, str, bytes, BaseException | None], None] | None = None,
) -> FuzzStats:
    """Mutate the seeds ``cases`` times and load each result; classify what happened.

    ``max_pixels`` temporarily lowers cam.images.MAX_PIXELS (None keeps 50 MP) so that mutated
    headers declaring large images are refused cheaply; the same code paths run either way.
    ``time_limit`` seconds per case is a hang guard (SIGALRM, main thread only): a case over it is
    recorded in ``timeouts``. ``on_case(i, label, data, exc)`` is called after every case.
    """
    import signal
    import time
    import warnings

    import cam.images as images
    from cam.errors import ImageError

    rng = np.random.default_rng(seed)
    named = fuzz_seeds()
    seed_names = sorted(named)
    pool = [named[k] for k in seed_names]
    stats = FuzzStats()
    saved_cap = images.MAX_PIXELS

    def alarm(_signum: int, _frame: object) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, alarm)
    quiet = warnings.catch_warnings()  # Pillow warns about every corrupt EXIF/TIFF tag it meets
    quiet.__enter__()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    try:
        if max_pixels is not None:
            images.MAX_PIXELS = max_pixels
        for i in range(cases):
            name = seed_names[int(rng.integers(0, len(seed_names)))]
            what, data = mutate(named[name], rng, pool)
            label = f"#{i} {name} {what}"
            display = None if rng.random() < 0.3 else 1024
            err: BaseException | None = None
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                out = images.load_image(data, display_max_side=display)
                if out.model_input.shape != (256, 256, 3) or out.model_input.dtype != np.uint8:
                    raise AssertionError(f"bad model_input {out.model_input.shape} {out.model_input.dtype}")
                stats.loaded += 1
            except ImageError as exc:
                err = exc
                kind = next((k for k in _KINDS if k in str(exc)), "other")
                stats.refused[kind] = stats.refused.get(kind, 0) + 1
            except CaseTimeout as exc:
                err = exc
                stats.timeouts.append(label)
            except Exception as exc:  # anything else is a loader bug: record it
                err = exc
                stats.unexpected.append((label, f"{type(exc).__name__}: {exc}"))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            dt = time.perf_counter() - t0
            stats.cases += 1
            if dt > stats.max_seconds:
                stats.max_seconds, stats.slowest = dt, label
            if on_case is not None:
                on_case(i, label, data, err)
    finally:
        images.MAX_PIXELS = saved_cap
        signal.signal(signal.SIGALRM, previous)
        quiet.__exit__(None, None, None)
        stats.total_seconds = time.perf_counter() - start
    return stats
