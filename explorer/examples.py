"""The example photos under ``examples/`` and their captions (``captions.json``)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExamplePhoto:
    path: Path
    true_class: str | None
    look_for: str | None
    sha256: str
    scene: dict[str, Any]  # the captions.json entry: seed, size, species, pot style (for redraws)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def alt_text(self) -> str:
        """What a screen reader says for the example's button."""
        cls = f" ({self.true_class})" if self.true_class else ""
        pot = self.scene.get("pot_style")
        return f"Example {self.stem}{cls}" + (f", in a {pot} pot" if pot else "")

    def note(self) -> str:
        """The caption shown under the heading when this example is explained: one line, with what
        to look for folded away (on a phone the picture must stay on the first screen)."""
        line = f"**Example** `{self.path.name}`" + (f", true class **{self.true_class}**." if self.true_class else ".")
        if not self.look_for:
            return line
        return f"{line}\n<details><summary>What to look for</summary>\n\n{self.look_for}\n</details>"


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256, read once per version of the file (its path, size and mtime, the key the
    session store's items already use): every event asks whether the photo is an example, twice."""
    st = os.stat(path)
    return _sha256(os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Examples:
    """Every examples/*.jpg (sorted), found by stem (lesson links) or by content (re-uploads)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.photos: list[ExamplePhoto] = []
        captions: dict[str, Any] = {}
        captions_file = folder / "captions.json"
        if captions_file.is_file():
            try:
                loaded = json.loads(captions_file.read_text(encoding="utf-8"))
                captions = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError) as exc:
                log.warning("Ignoring %s: %s", captions_file, exc)
        if folder.is_dir():
            for path in sorted([*folder.glob("*.jpg"), *folder.glob("*.png")]):
                entry = captions.get(path.name, {})
                entry = entry if isinstance(entry, dict) else {}
                self.photos.append(
                    ExamplePhoto(
                        path=path,
                        true_class=entry.get("class"),
                        look_for=entry.get("look_for"),
                        sha256=file_sha256(path),
                        scene=entry,
                    )
                )
        self._by_stem = {p.stem: p for p in self.photos}
        self._by_sha = {p.sha256: p for p in self.photos}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.photos)

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def stems(self) -> list[str]:
        return list(self._by_stem)

    def by_stem(self, stem: str) -> ExamplePhoto | None:
        return self._by_stem.get(stem)

    def by_content(self, sha256: str) -> ExamplePhoto | None:
        return self._by_sha.get(sha256)

    @property
    def default(self) -> ExamplePhoto | None:
        """The example the page shows on arrival."""
        return self._by_stem.get("rudo_2") or (self.photos[0] if self.photos else None)
