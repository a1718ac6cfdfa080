"""`CamModel`: the network, its class names and where its weights came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cam.network import CLASS_NAMES, PotPlantGAP


@dataclass(frozen=True)
class Provenance:
    """Where the loaded weights came from; shown in the app's banner and by ``python -m cam info``."""

    source: str  # "hub" (downloaded now), "cache" (Hub file already cached), "bundled" or "file"
    requested: str  # what the caller asked for: "auto", "hub", "bundled" or a path
    path: str  # local file that was loaded
    sha256: str
    size: int
    repo_id: str | None = None
    filename: str | None = None
    revision: str | None = None
    commit: str | None = None
    fallback_reason: str | None = None  # why `auto` did not serve the Hub checkpoint
    description: str = ""

    @property
    def is_demo_model(self) -> bool:
        """The bundled model trained on synthetic scenes, not the course's: its maps mean little on photos."""
        return self.source == "bundled"

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``is_demo_model``: JSON-ready (``python -m cam info --json``, the evaluation)."""
        d = asdict(self)
        d["is_demo_model"] = self.is_demo_model
        return d


@dataclass
class CamModel:
    """A loaded course network ready for `cam.explain`.

    ``module`` is in eval mode and must stay so: requests never switch it (dropout would make maps
    random). It is safe to share between threads when used through `cam.explain`.
    """

    module: PotPlantGAP
    provenance: Provenance
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
