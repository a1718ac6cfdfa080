"""`load_model(source)`: choose, fetch and safely load the course network's weights.

Sources (``source`` argument, else the ``CAM_MODEL`` environment variable, else ``"auto"``):

* ``auto``: the Hub file in the local Hugging Face cache, else a download with a hard deadline,
  else the bundled demo model, with the reason recorded in the provenance.
* ``hub``: the cache or the Hub, else a `HubError` that says why.
* ``bundled``: the demo model shipped in the package (trained on synthetic pot plants).
* anything else: a path to a ``.pth`` state dict.
"""

from __future__ import annotations

import os
from pathlib import Path

from cam import hub
from cam.checkpoint import CheckpointFile, build_module, read_checkpoint
from cam.errors import CheckpointError, HubError
from cam.model import CamModel, Provenance

BUNDLED_CHECKPOINT = Path(__file__).parent / "assets" / "pot_plant_gap_synthetic.pth"
BUNDLED_DESCRIPTION = (
    "Offline demo model: the course architecture trained on synthetic pot plants drawn by "
    "cam.synthetic. The course model loads from the Hugging Face Hub when the network allows."
)
HUB_DESCRIPTION = "The XAI-for-CV course's GAP pot-plant classifier from the Hugging Face Hub."


def load_model(source: str | os.PathLike[str] | None = None) -> CamModel:
    """Load the course network from ``source`` (see the module docstring)."""
    if source is None:
        source = os.environ.get("CAM_MODEL", "").strip() or "auto"
    if isinstance(source, str) and source in ("auto", "hub", "bundled"):
        if source == "bundled":
            return _load_bundled(requested="bundled")
        if source == "hub":
            return _load_hub(requested="hub")
        try:
            return _load_hub(requested="auto")
        except (HubError, CheckpointError) as exc:
            return _load_bundled(requested="auto", fallback_reason=str(exc))
    ckpt = read_checkpoint(source)
    return _model(ckpt, Provenance(
        source="file", requested=str(source), path=str(ckpt.path), sha256=ckpt.sha256, size=ckpt.size,
        description=f"Local checkpoint {ckpt.path.name}.",
    ))


def _model(ckpt: CheckpointFile, provenance: Provenance) -> CamModel:
    return CamModel(module=build_module(ckpt.state_dict), provenance=provenance)


def _load_bundled(requested: str, fallback_reason: str | None = None) -> CamModel:
    if not BUNDLED_CHECKPOINT.is_file():
        raise CheckpointError(
            f"The bundled demo checkpoint {BUNDLED_CHECKPOINT} is missing from this installation; "
            "reinstall the package or train it with `python -m cam.train`."
        )
    ckpt = read_checkpoint(BUNDLED_CHECKPOINT)
    return _model(ckpt, Provenance(
        source="bundled", requested=requested, path=str(ckpt.path), sha256=ckpt.sha256, size=ckpt.size,
        fallback_reason=fallback_reason, description=BUNDLED_DESCRIPTION,
    ))


def _load_hub(requested: str) -> CamModel:
    """The Hub checkpoint from the cache, else downloaded within the deadline; validated either way."""
    hub_file = hub.fetch()  # raises HubError; evicts and re-downloads a corrupt cached copy itself
    try:
        ckpt = read_checkpoint(hub_file.path)
    except CheckpointError:
        hub.evict(hub_file)  # a bad file must not poison the next start
        raise
    return _model(ckpt, Provenance(
        source="cache" if hub_file.from_cache else "hub", requested=requested, path=str(ckpt.path),
        sha256=ckpt.sha256, size=ckpt.size, repo_id=hub_file.repo_id, filename=hub_file.filename,
        revision=hub_file.revision, commit=hub_file.commit, description=HUB_DESCRIPTION,
    ))
