"""The page's prose, as Markdown files beside this module; `$name` fields are filled by `prose`."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

FOLDER = Path(__file__).resolve().parent


@cache
def _read(name: str) -> str:
    return (FOLDER / f"{name}.md").read_text(encoding="utf-8").strip()


def prose(name: str, **values: object) -> str:
    """The Markdown text ``name``.md with its ``$fields`` filled (a missing field is an error)."""
    text = _read(name)
    return Template(text).substitute({k: str(v) for k, v in values.items()}) if values else text
