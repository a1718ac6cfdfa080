"""Safe loading of a course-network state dict from a file.

The file is read once and hashed. A zip archive (torch.save's format) has its central directory checked
before anything is unpacked (`_check_archive`: entry count, declared sizes within `MAX_UNPACKED_BYTES`,
sizes a real archive can have). It is then unpickled with ``torch.load(..., weights_only=True)`` passed
explicitly (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn it off); a refused file is never
retried unsafely. Keys and shapes are checked before ``load_state_dict`` so a bad file cannot leave
a half-overwritten model behind, and every error names the offending key. Values are checked for
NaN and infinity after the cast to float32 that loading applies (1e300 in a float64 tensor is finite
until then).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from cam.errors import CheckpointError
from cam.network import PotPlantGAP

MAX_CHECKPOINT_BYTES = 10 * 1024 * 1024  # the course file is ~98 KB; anything huge is not it
# What torch.load may unpack from the zip archive: the course file's 14 entries hold ~97 KB, stored
# uncompressed as torch.save writes them. A deflated archive can unpack ~1000x its size (3.6 MB -> 3.7 GB).
MAX_UNPACKED_BYTES = 16 * 1024 * 1024
MAX_ARCHIVE_ENTRIES = 1000  # the course file has 14; a central directory is parsed per entry in Python
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than ~1032:1; a larger declared size is a lie


@dataclass(frozen=True)
class CheckpointFile:
    path: Path
    sha256: str
    size: int
    state_dict: dict[str, torch.Tensor]


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of the course network."""
    return {k: tuple(v.shape) for k, v in PotPlantGAP().state_dict().items()}


def read_checkpoint(path: str | Path) -> CheckpointFile:
    """Read, hash, safely unpickle and validate a state-dict checkpoint."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(
            f"Checkpoint {str(path)!r} cannot be read: {exc.strerror or exc}. Check the path."
        ) from exc
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"Checkpoint {path.name!r} is {size / 1e6:.1f} MB, far larger than the course network's "
            f"~0.1 MB state dict; refusing to load it. Point to the course's model.pth."
        )
    if size == 0:
        raise CheckpointError(
            f"Checkpoint {path.name!r} is empty (0 bytes): an interrupted download or copy. Download the file again."
        )
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CHECKPOINT_BYTES + 1)  # bounded even if the file grew since stat()
    except OSError as exc:
        raise CheckpointError(
            f"Checkpoint {str(path)!r} cannot be read: {exc.strerror or exc}. Check the path."
        ) from exc
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"Checkpoint {path.name!r} grew past {MAX_CHECKPOINT_BYTES / 1e6:.1f} MB while it was read; "
            "refusing to load it. Point to the course's model.pth."
        )
    size = len(data)
    sha = hashlib.sha256(data).hexdigest()
    _refuse_non_weights(data, path.name)
    if data.startswith(b"PK\x03\x04"):  # torch.save's zip format (the legacy format is a bare pickle)
        _check_archive(data, path.name)
    obj = _safe_unpickle(data, path.name)
    state = _unwrap(obj, path.name)
    validate_state_dict(state, path.name)
    return CheckpointFile(path=path, sha256=sha, size=size, state_dict=state)


def _refuse_non_weights(data: bytes, name: str) -> None:
    """Recognise the usual impostors saved under a .pth name before any unpickling."""
    head = data[:512].lstrip().lower()
    if head.startswith(b"version https://git-lfs"):
        raise CheckpointError(
            f"Checkpoint {name!r} is a Git LFS pointer file ({len(data)} bytes), not the weights: the "
            "repository was cloned without Git LFS. Run `git lfs pull` or download the file from the Hub."
        )
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or head.startswith(b"{"):
        kind = "a JSON document" if head.startswith(b"{") else "an HTML page"
        raise CheckpointError(
            f"Checkpoint {name!r} is {kind}, not PyTorch weights (an error or login page saved "
            "as .pth?). Download the file again."
        )


def _check_archive(data: bytes, name: str) -> None:
    """Refuse a zip checkpoint before torch.load inflates it: too many entries, declared sizes over
    MAX_UNPACKED_BYTES, or sizes that no real archive has (stored entries that change size, deflated ones
    past deflate's maximum ratio, unknown compression). torch's reader allocates each entry's declared
    size, so the declared sizes bound what loading can cost."""
    entries = _declared_entries(data)
    if entries is not None and entries > MAX_ARCHIVE_ENTRIES:
        raise CheckpointError(
            f"Checkpoint {name!r} is a zip archive of {entries:,} entries (a state dict has a few dozen); "
            "refusing to load it. Point to the course's model.pth."
        )
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise CheckpointError(_corrupt_message(name, exc)) from exc
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise CheckpointError(
            f"Checkpoint {name!r} is a zip archive of {len(infos):,} entries (a state dict has a few dozen); "
            "refusing to load it. Point to the course's model.pth."
        )
    total = 0
    for info in infos:
        total += info.file_size
        stored = info.compress_type == zipfile.ZIP_STORED and info.compress_size == info.file_size
        deflated = (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size <= info.compress_size * _DEFLATE_MAX_RATIO + 1024
        )
        if not (stored or deflated):
            raise CheckpointError(
                f"Checkpoint {name!r} is an inconsistent zip archive: entry {info.filename[:80]!r} declares "
                f"{info.file_size:,} bytes from {info.compress_size:,} (compression method "
                f"{info.compress_type}), which no archive written by torch.save has. Download the file again."
            )
    if total > MAX_UNPACKED_BYTES:
        raise CheckpointError(
            f"Checkpoint {name!r} would unpack to {total / 2**20:,.1f} MB (the limit is "
            f"{MAX_UNPACKED_BYTES / 2**20:.0f} MB; the course network's weights are ~0.1 MB): refusing to "
            "load it. Point to the course's model.pth."
        )


def _declared_entries(data: bytes) -> int | None:
    """The entry count in the zip's end-of-central-directory record (zip64 too), read before zipfile
    builds one object per entry; None if the record is not found (zipfile then reports the archive)."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return None
    (count,) = struct.unpack("<H", data[end + 10 : end + 12])
    locator = end - 20
    if count != 0xFFFF or locator < 0 or data[locator : locator + 4] != b"PK\x06\x07":
        return count
    (record,) = struct.unpack("<Q", data[locator + 8 : locator + 16])
    if data[record : record + 4] != b"PK\x06\x06" or record + 40 > len(data):
        return None
    (count64,) = struct.unpack("<Q", data[record + 32 : record + 40])
    return int(count64)


def _safe_unpickle(data: bytes, name: str) -> object:
    """``torch.load`` with ``weights_only=True`` passed explicitly; any failure is a `CheckpointError`.

    Passing the argument explicitly matters: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` only overrides the
    default, never an explicit value. A refused file is never retried with ``weights_only=False``.
    """
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        refused = _REFUSED_GLOBAL.search(text)
        if refused or "Weights only load failed" in text:
            # torch's own message advises weights_only=False; we deliberately do not repeat that advice.
            detail = refused.group(1).strip() if refused else "objects other than tensors"
            raise CheckpointError(
                f"Checkpoint {name!r} was refused by the weights-only loader ({detail}): it holds "
                "objects other than tensors, possibly code, which was not executed. Use a plain state "
                "dict saved with torch.save(model.state_dict(), path)."
            ) from exc
        raise CheckpointError(_corrupt_message(name, exc)) from exc
    except Exception as exc:  # truncation and corruption surface as many types (see the field notes)
        raise CheckpointError(_corrupt_message(name, exc)) from exc


_REFUSED_GLOBAL = re.compile(r"WeightsUnpickler error: (.*?)(?: was not an allowed global| Please|\n|$)")


def _corrupt_message(name: str, exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
    return f"Checkpoint {name!r} is not a readable PyTorch file (truncated or corrupt): {detail}. Download it again."


def _unwrap(obj: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"Checkpoint {name!r} holds a {type(obj).__name__}, not a state dict (a mapping of "
            "parameter names to tensors)."
        )
    return dict(obj)


def validate_state_dict(state: Mapping[str, object], name: str = "checkpoint") -> None:
    """Raise `CheckpointError` naming the first missing, unexpected or misshapen key."""
    expected = expected_shapes()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                more = f" (+{len(keys) - 1} more)" if len(keys) > 1 else ""
                parts.append(f"{label} key {keys[0]!r}{more}")
        raise CheckpointError(
            f"{name!r} does not fit the course network: {'; '.join(parts)}. Expected keys: {', '.join(expected)}."
        )
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{name!r}: key {key!r} holds a {type(value).__name__}, not a tensor.")
        if tuple(value.shape) != shape:
            raise CheckpointError(
                f"{name!r}: key {key!r} has shape {tuple(value.shape)}, the course network needs {shape}."
            )
        if not value.is_floating_point():
            raise CheckpointError(f"{name!r}: key {key!r} has dtype {value.dtype}, expected floating point.")
        if not torch.isfinite(value.float()).all():  # after the cast loading applies: 1e300 -> inf
            raise CheckpointError(
                f"{name!r}: key {key!r} contains NaN or infinite values (as float32, which the network "
                "uses: float64 values beyond ~3.4e38 become infinite)."
            )


def load_weights(module: PotPlantGAP, state: Mapping[str, torch.Tensor], name: str = "checkpoint") -> None:
    """Load ``state`` into ``module`` all or nothing.

    ``load_state_dict`` copies every tensor that fits before it raises about the ones that do not, so
    the whole state is validated first: a refused state leaves ``module`` exactly as it was.
    """
    validate_state_dict(state, name)
    module.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def build_module(state: Mapping[str, torch.Tensor]) -> PotPlantGAP:
    """A fresh course network in eval mode with ``state`` loaded strictly (validated first)."""
    module = PotPlantGAP()
    load_weights(module, state)
    return module.eval()
