"""Files a response hands to the page: a fresh folder per response, never shared.

Every picture a handler returns is written here and returned as a path. Handing Gradio 6.31 an array
instead makes it write ``<cache>/<hash of the bytes>/image.<fmt>`` in place, so two requests that
produce the same picture rewrite one file while it is being served (a client got a truncated body).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

FOLDER_PREFIX = "cam-"
JPEG_QUALITY = 90  # photos and overlays; figures with text and colour bars are PNG (lossless)


def _pil(a: Image.Image | np.ndarray) -> Image.Image:
    return a.convert("RGB") if isinstance(a, Image.Image) else Image.fromarray(np.asarray(a, dtype=np.uint8))


def png_bytes(a: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    _pil(a).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def jpeg_bytes(a: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    _pil(a).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


class OutputFiles:
    """One response's output files, in a fresh folder under ``root`` (Gradio's cache folder)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=root))

    def write(self, data: bytes, name: str) -> str:
        self.folder.mkdir(exist_ok=True)  # the cache cleaner may have removed it while still empty
        path = self.folder / name
        if path.exists():
            raise FileExistsError(f"Output {name!r} was already written for this response; names must be unique.")
        path.write_bytes(data)
        return str(path)

    def jpeg(self, image: Image.Image | np.ndarray, name: str) -> str:
        return self.write(jpeg_bytes(image), f"{name}.jpg")

    def png(self, image: Image.Image | np.ndarray, name: str) -> str:
        return self.write(png_bytes(image), f"{name}.png")

    def npy(self, a: np.ndarray, name: str) -> str:
        return self.write(npy_bytes(a), f"{name}.npy")


def delete_old_files(temp_sets: Iterable[set[str]], keep: set[str], age: float | None, root: Path) -> None:
    """Delete the files in ``temp_sets`` (the app's uploads and outputs) older than ``age`` seconds
    (all of them when None), except ``keep``; drop them from their set, then the emptied folders
    under ``root``. Each set is read from a snapshot: request threads add to it meanwhile."""
    for temp_set in temp_sets:
        removed = set()
        for file in list(temp_set):
            try:
                if file not in keep and (age is None or time.time() - Path(file).lstat().st_ctime > age):
                    os.remove(file)
                    removed.add(file)
            except FileNotFoundError:
                removed.add(file)
        temp_set -= removed
    remove_empty_folders(root, min_age_s=0 if age is None else 60)


UPLOAD_FOLDER = re.compile(r"[0-9a-f]{64}")  # Gradio's folder per uploaded file: <sha256>/<name>


def remove_empty_folders(root: Path, min_age_s: float = 0.0) -> int:
    """Remove emptied folders of responses (``cam-*``) and of uploads (Gradio's ``<sha256>/``), once
    untouched for ``min_age_s``: a folder made a moment ago is about to be written to. Returns how many."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(FOLDER_PREFIX) or UPLOAD_FOLDER.fullmatch(entry.name)):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
            os.rmdir(entry.path)  # fails (and is skipped) unless the folder is empty
            removed += 1
        except OSError:
            pass
    return removed
