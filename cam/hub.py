"""Placeholder: replaced by the Hub client (cache first, download with a hard deadline)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cam.errors import HubError

REPO_ID = "a-data-odyssey/XAI-for-CV-models"
FILENAME = "models/pot_plant_classifier_gap/model.pth"


@dataclass(frozen=True)
class HubFile:
    path: Path
    repo_id: str
    filename: str
    revision: str
    commit: str | None
    from_cache: bool


def fetch() -> HubFile:
    raise HubError("Hub client not implemented yet")


def evict(hub_file: HubFile) -> None:
    pass
