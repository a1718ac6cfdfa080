"""Safe loading of a course-network state dict from a file.

The file is read once, hashed, and unpickled with ``torch.load(..., weights_only=True)`` passed
explicitly (so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn it off); a refused file is never
retried unsafely. Keys and shapes are checked before ``load_state_dict`` so a bad file cannot leave
a half-overwritten model behind, and every error names the offending key.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from cam.errors import CheckpointError
from cam.network import PotPlantGAP

MAX_CHECKPOINT_BYTES = 10 * 1024 * 1024  # the course file is ~98 KB; anything huge is not it


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
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or head.startswith(b"{"):
        kind = "a JSON document" if head.startswith(b"{") else "an HTML page"
        raise CheckpointError(
            f"Checkpoint {path.name!r} is {kind}, not PyTorch weights (an error or login page saved "
            "as .pth?). Download the file again."
        )
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Checkpoint {path.name!r} was refused by the weights-only loader: it contains objects "
            "other than tensors (possibly code). It was not executed. Use a plain state dict saved "
            f"with torch.save(model.state_dict(), path). Detail: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as exc:
        raise CheckpointError(
            f"Checkpoint {path.name!r} is not a readable PyTorch file (truncated or corrupt?): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. Download it again."
        ) from exc
    state = _unwrap(obj, path.name)
    validate_state_dict(state, path.name)
    return CheckpointFile(path=path, sha256=sha, size=size, state_dict=state)


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
        if missing:
            parts.append(f"missing key {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(
                f"unexpected key {unexpected[0]!r}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            )
        raise CheckpointError(
            f"{name!r} does not fit the course network: {'; '.join(parts)}. Expected keys: "
            f"{', '.join(expected)}."
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
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{name!r}: key {key!r} contains NaN or infinite values.")


def build_module(state: Mapping[str, torch.Tensor]) -> PotPlantGAP:
    """A fresh course network in eval mode with ``state`` loaded strictly (validated first)."""
    validate_state_dict(state)
    module = PotPlantGAP()
    module.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return module.eval()
