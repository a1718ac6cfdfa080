"""`load_model(source)`: choose, fetch and safely load the course network's weights.

Sources (``source`` argument, else the ``CAM_MODEL`` environment variable, else ``"auto"``):

* ``auto``: the Hub file in the local Hugging Face cache, else a download with a hard deadline
  (``CAM_HUB_TIMEOUT``, default 8 s), else the bundled demo model, with the reason recorded in the
  provenance (``fallback_reason``, a sentence for the app's banner).
* ``hub``: the cache or the Hub, else a `HubError` (or a `CheckpointError` for a refused file) that says why.
* ``bundled``: the demo model shipped in the package (trained on synthetic pot plants).
* anything else: a path to a ``.pth`` state dict.

The Hub file is `REPO_ID`/`FILENAME` at revision ``main`` unless ``CAM_HUB_REVISION`` pins one. Every file
is read with ``torch.load(..., weights_only=True)`` and its keys and shapes are checked before loading; a
Hub file that fails any check is evicted from the cache, so a corrupt copy cannot poison the next start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cam import hub
from cam.checkpoint import CheckpointFile, build_module, read_checkpoint
from cam.errors import CheckpointError, HubError
from cam.model import CamModel, Provenance

log = logging.getLogger(__name__)

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
    keyword = source.strip().lower() if isinstance(source, str) else None
    if keyword == "bundled":
        return _load_bundled(requested="bundled")
    if keyword == "hub":
        return _load_hub(requested="hub")
    if keyword == "auto":
        try:
            return _load_hub(requested="auto")
        except (HubError, CheckpointError) as exc:
            reason = fallback_reason(exc)
            log.warning("serving the bundled demo model: %s", exc)
            return _load_bundled(requested="auto", fallback_reason=reason)
    ckpt = read_checkpoint(Path(os.fspath(source)).expanduser())
    return _model(
        ckpt,
        Provenance(
            source="file",
            requested=str(source),
            path=str(ckpt.path),
            sha256=ckpt.sha256,
            size=ckpt.size,
            description=f"Local checkpoint {ckpt.path.name}.",
        ),
    )


def fallback_reason(exc: BaseException) -> str:
    """One readable sentence for the banner, e.g. "Hub unreachable (connection refused at
    huggingface.co:443); serving the bundled demo model." """
    reason = getattr(exc, "reason", None)
    if not isinstance(reason, str) or not reason:
        reason = f"Hub checkpoint refused: {_first_sentence(str(exc)).removeprefix('Checkpoint ')}"
    return f"{reason[:1].upper()}{reason[1:]}; serving the bundled demo model."


def _first_sentence(text: str, limit: int = 150) -> str:
    """The first sentence, shortened at a clause boundary when it is longer than ``limit``."""
    head = text.split(". ", 1)[0].rstrip(".")
    if len(head) <= limit:
        return head
    cut = max(head.rfind(sep, 0, limit) for sep in (": ", ", ", "; ", " ("))
    return head[: cut if cut > limit // 2 else limit].rstrip() + "…"


def _model(ckpt: CheckpointFile, provenance: Provenance) -> CamModel:
    return CamModel(module=build_module(ckpt.state_dict), provenance=provenance)


def _load_bundled(requested: str, fallback_reason: str | None = None) -> CamModel:
    if not BUNDLED_CHECKPOINT.is_file():
        missing = (
            f"the bundled demo checkpoint {BUNDLED_CHECKPOINT} is missing from this installation; "
            "reinstall the package or train it with `python -m cam.train`."
        )
        if fallback_reason:  # auto: say both why the Hub failed and why there is no fallback
            hub_part = fallback_reason.removesuffix("; serving the bundled demo model.")
            raise CheckpointError(f"No model to serve: {hub_part}, and {missing}")
        raise CheckpointError(missing[:1].upper() + missing[1:])
    ckpt = read_checkpoint(BUNDLED_CHECKPOINT)
    return _model(
        ckpt,
        Provenance(
            source="bundled",
            requested=requested,
            path=str(ckpt.path),
            sha256=ckpt.sha256,
            size=ckpt.size,
            fallback_reason=fallback_reason,
            description=BUNDLED_DESCRIPTION,
        ),
    )


def _load_hub(requested: str) -> CamModel:
    """The Hub checkpoint from the cache, else downloaded within the deadline; validated either way.

    A cached copy that fails validation is evicted and the Hub is asked once more; a downloaded copy that
    fails is evicted and the error raised.
    """
    hub_file = hub.fetch()  # raises HubError; evicts a file whose hash does not match its ETag itself
    try:
        return _from_hub_file(hub_file, requested)
    except CheckpointError as exc:
        if not hub_file.from_cache:
            raise
        log.warning("cached Hub checkpoint refused and removed, downloading it again: %s", exc)
    try:
        hub_file = hub.fetch(use_cache=False)
    except hub.HubFetchError as exc:
        exc.reason = f"the cached Hub checkpoint was invalid and was removed; {exc.reason}"
        raise
    return _from_hub_file(hub_file, requested)


def _from_hub_file(hub_file: hub.HubFile, requested: str) -> CamModel:
    """Read and validate a Hub file; evict it from the cache when it is refused."""
    try:
        ckpt = read_checkpoint(hub_file.path)
        if hub_file.sha256 is not None and ckpt.sha256 != hub_file.sha256:
            raise CheckpointError(
                f"Checkpoint {hub_file.path.name!r} changed on disk while it was being loaded (sha256 "
                f"{ckpt.sha256[:12]}…, verified {hub_file.sha256[:12]}…). Start again."
            )
        model = _model(
            ckpt,
            Provenance(
                source="cache" if hub_file.from_cache else "hub",
                requested=requested,
                path=str(ckpt.path),
                sha256=ckpt.sha256,
                size=ckpt.size,
                repo_id=hub_file.repo_id,
                filename=hub_file.filename,
                revision=hub_file.revision,
                commit=hub_file.commit,
                description=HUB_DESCRIPTION,
            ),
        )
    except CheckpointError as exc:
        hub.evict(hub_file)  # a bad file must not poison the next start
        raise CheckpointError(
            f"{exc} (Hub file {hub_file.repo_id}/{hub_file.filename}@{hub_file.commit or hub_file.revision}; "
            "it was removed from the local cache.)"
        ) from exc
    return model
