"""What the rows measure on: seeded weights, photo-like images, per-client copies and hostile files.

Everything is written once into the work folder (``$CAM_BENCH_DIR``, default ``/tmp/cam-bench``) and
reused by later runs; the same bytes every run (fixed seeds, no timestamps).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cam.checkpoint import build_module
from cam.model import CamModel, Provenance
from cam.network import PotPlantGAP

HOSTILE_SIDE = 7000  # 49 MP: under the loader's 50 MP cap, so these are decoded, not refused from the header
MANY_SCANS = 300  # repeated progressive scans: enough to show the cost, bounded if the loader does not refuse


def seeded_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Course-shaped weights from a fixed seed (speed does not depend on the values)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(v.shape, generator=g) * (0.3 if v.dim() > 1 else 0.1)
        for k, v in PotPlantGAP().state_dict().items()
    }


def bench_model() -> CamModel:
    prov = Provenance(source="file", requested="benchmark", path="<memory>", sha256="0" * 64, size=0)
    return CamModel(module=build_module(seeded_state_dict()), provenance=prov)


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 with smooth shapes plus fine texture: JPEG-compresses like a photo (a few MB
    at 12 MP), unlike pure noise (far larger) or flat colour (far smaller)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    texture = rng.integers(-12, 13, size=(height // 2, width // 2, 1), dtype=np.int16)
    texture = np.repeat(np.repeat(texture, 2, axis=0), 2, axis=1)[:height, :width]
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def image_files(workdir: Path) -> dict[str, Path]:
    """A 4000x3000 JPEG (12 MP, quality 90) and a 256x256 PNG, written once into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    jpeg = workdir / "photo_4000x3000.jpg"
    png = workdir / "photo_256.png"
    if not jpeg.exists():
        Image.fromarray(photo_like(4000, 3000)).save(jpeg, quality=90)
    if not png.exists():
        Image.fromarray(photo_like(256, 256, seed=1)).save(png)
    return {"jpeg12mp": jpeg, "png256": png}


def variant(src: Path, dst: Path, k: int) -> Path:
    """A copy of ``src`` with two pixels changed by ``k``, so that no two users send the same bytes
    (identical uploads would share Gradio's content-addressed cache and the app's per-image caches)."""
    if not dst.exists():
        with Image.open(src) as im:
            arr = np.array(im.convert("RGB"))
        arr[k % arr.shape[0], 0] = (arr[k % arr.shape[0], 0].astype(np.int16) + 97).clip(0, 255).astype(np.uint8)
        arr[0, 0] = (k * 31 % 256, k // 256 % 256, 7)
        if src.suffix == ".jpg":
            Image.fromarray(arr).save(dst, quality=90)
        else:
            Image.fromarray(arr).save(dst)
    return dst


def client_files(workdir: Path, files: dict[str, Path], clients: int) -> list[dict[str, Path]]:
    """Per-client copies of the photos (see `variant`)."""
    return [
        {key: variant(src, workdir / f"{src.stem}_client{k}{src.suffix}", k) for key, src in files.items()}
        for k in range(clients)
    ]


# ------------------------------------------------------------------------------------------------
# Hostile images (issue 10): small files that cost far more than their size once decoded


def _gradient(side: int) -> np.ndarray:
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    return ramp[None, :] * 0.6 + ramp[:, None] * 0.4  # (side, side) in [0, 1], compresses to almost nothing


def grey16_png(side: int = HOSTILE_SIDE) -> bytes:
    """A 16-bit greyscale PNG (mode I;16) at ``side`` x ``side``: ~100 KB on disk."""
    arr = (_gradient(side) * 65535).astype("<u2")
    buf = io.BytesIO()
    Image.frombytes("I;16", (side, side), arr.tobytes()).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def palette_trns_png(side: int = HOSTILE_SIDE) -> bytes:
    """A palette PNG with a transparent entry (tRNS) at ``side`` x ``side``."""
    idx = (_gradient(side) * 15).astype(np.uint8)
    img = Image.fromarray(idx, "L").convert("P")
    img.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 16, 80)])
    img.info["transparency"] = 0
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0, compress_level=9)
    return buf.getvalue()


def many_scans_jpeg(side: int = HOSTILE_SIDE, scans: int = MANY_SCANS) -> bytes:
    """A greyscale progressive JPEG whose last scan is repeated ``scans`` times: each repeat makes the
    decoder walk the whole coefficient buffer again, and nothing in the header tells."""
    buf = io.BytesIO()
    Image.fromarray((_gradient(side) * 255).astype(np.uint8), "L").save(buf, "JPEG", quality=75, progressive=True)
    data = buf.getvalue()
    sos = []  # offsets of the SOS markers (FF DA); entropy-coded data never holds an unescaped FF DA
    i = 2
    while i < len(data) - 1:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xDA:
            sos.append(i)
            i += 2
        elif marker in (0x00, 0xFF) or 0xD0 <= marker <= 0xD7:
            i += 1 if marker == 0xFF else 2
        elif marker == 0xD9:
            break
        elif not sos:  # a marker segment before the first scan: skip its declared length
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            i += 2 + length
        else:
            i += 2
    if not sos or not data.endswith(b"\xff\xd9"):
        raise RuntimeError("Pillow wrote a JPEG without scans or EOI; cannot build the many-scan file")
    last = data[sos[-1] : -2]
    return data[:-2] + last * scans + b"\xff\xd9"


def hostile_files(workdir: Path) -> dict[str, Path]:
    """The issue-10 images, written once: name -> path."""
    workdir.mkdir(parents=True, exist_ok=True)
    makers = {
        "grey16_7000.png": grey16_png,
        "palette_trns_7000.png": palette_trns_png,
        f"progressive_{MANY_SCANS}_scans_7000.jpg": many_scans_jpeg,
    }
    out = {}
    for name, make in makers.items():
        path = workdir / name
        if not path.exists():
            path.write_bytes(make())
        out[name] = path
    return out
