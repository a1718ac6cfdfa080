"""load_model against a fake Hub: for every fault `auto` serves the bundled model within its deadline with a
readable reason, `hub` fails clearly, no payload runs, and nothing corrupt is left to poison the next start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import cam.loading
from cam import load_model
from cam.errors import CheckpointError, HubError
from cam.hub import FILENAME, REPO_ID
from cam.model import CamModel
from tests import fakehub
from tests.conftest import make_state_dict
from tests.fakehub import FakeHub, sha256

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVING_BUNDLED = "; serving the bundled demo model."
STORAGE = "models--" + REPO_ID.replace("/", "--")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint_path: Path) -> Iterator[FakeHub]:
    with fakehub.serving(monkeypatch, tmp_path, bundled=checkpoint_path) as server:
        yield server


def _same_weights(model: CamModel, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, state[k]) for k, v in model.module.state_dict().items())


def _stored(tmp_path: Path) -> list[Path]:
    """Every blob, snapshot entry and temporary download in the cache (locks, refs and tags excluded)."""
    return [p for p in fakehub.cache_files(tmp_path) if {"blobs", "snapshots"} & set(p.parts)]


def _settle(hub: FakeHub) -> None:
    """Let downloads abandoned at their deadline finish: hung responses end, a retry meets an HTTP 500."""
    hub.set_mode("500")
    hub.release.set()
    for thread in threading.enumerate():
        if thread.name == "cam-hub-download":
            thread.join(timeout=20)
            assert not thread.is_alive(), "an abandoned download thread did not end"


def _refused_reason(hub: FakeHub) -> str:
    return f"Hub unreachable (connection refused at 127.0.0.1:{hub.refused_url.rsplit(':', 1)[1]})"


# mode -> (start of the fallback reason, error type and words of `hub`'s message)
FAULTS: dict[str, tuple[str, type[Exception], str]] = {
    "refuse": (
        "Hub unreachable (connection refused at 127.0.0.1:",
        HubError,
        "offline, or a firewall or proxy blocks it",
    ),
    "500": ("Hub error (HTTP 500)", HubError, "answered HTTP 500"),
    "404": (
        f"Checkpoint not found on the Hub (HTTP 404 for {FILENAME}@main)",
        HubError,
        f"has no file {FILENAME} at revision 'main' (HTTP 404)",
    ),
    "hang_head": ("Hub did not deliver the checkpoint within 1 s", HubError, "the network or the Hub hangs"),
    "hang_body": ("Hub did not deliver the checkpoint within 1 s", HubError, "the network or the Hub hangs"),
    "truncated": ("Hub did not deliver the checkpoint within 1 s", HubError, "the network or the Hub hangs"),
    "short": ("Hub download arrived incomplete", HubError, "nothing was kept in the cache"),
    "html": (
        "Hub checkpoint refused: 'model.pth' is an HTML page, not PyTorch weights",
        CheckpointError,
        "'model.pth' is an HTML page",
    ),
    "wrong_keys": (
        "Hub checkpoint refused: 'model.pth' does not fit the course network: missing key 'conv_layers.0.weight'",
        CheckpointError,
        "unexpected key 'features.0.weight'",
    ),
    "wrong_shapes": (
        "Hub checkpoint refused: 'model.pth': key 'fc.1.weight' has shape (5, 64), the course network needs (4, 64)",
        CheckpointError,
        "key 'fc.1.weight' has shape (5, 64)",
    ),
    "pickle": (
        "Hub checkpoint refused: 'model.pth' was refused by the weights-only loader (Unsupported "
        "global: GLOBAL io.open)",
        CheckpointError,
        "possibly code, which was not executed",
    ),
    "sha_mismatch": (
        "The downloaded Hub checkpoint failed its sha256 check",
        HubError,
        "does not match the checksum the Hub announced",
    ),
}


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_fault(
    fake: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoint_path: Path, state_dict: dict, mode: str
) -> None:
    reason, error_type, words = FAULTS[mode]
    # Faults that hang must meet the (short) deadline; the others must be reported before a generous one.
    deadline = 1.0 if FAULTS[mode][0].startswith("Hub did not deliver") else 5.0
    monkeypatch.setenv("CAM_HUB_TIMEOUT", f"{deadline:g}")
    fake.set_mode(mode)

    # auto: the bundled model, within the deadline plus loading time, with the reason
    start = time.perf_counter()
    model = load_model("auto")
    elapsed = time.perf_counter() - start
    prov = model.provenance
    assert (prov.source, prov.requested, prov.path) == ("bundled", "auto", str(checkpoint_path))
    assert prov.sha256 == sha256(checkpoint_path.read_bytes())
    assert _same_weights(model, state_dict)
    assert prov.fallback_reason is not None
    assert prov.fallback_reason.startswith(reason), "\n".join([prov.fallback_reason, *fake.log])
    assert prov.fallback_reason.endswith(SERVING_BUNDLED)
    assert elapsed < deadline + 2.0

    # hub: a clear error, no fallback
    with pytest.raises(error_type) as err:
        load_model("hub")
    assert words in str(err.value)
    assert not fake.marker.exists()

    # nothing corrupt stays behind: with the Hub down the next start does not find anything cached ...
    _settle(fake)
    assert _stored(tmp_path) == [], "\n".join(fake.log)
    fake.set_mode("refuse")
    down = load_model("auto")
    assert down.provenance.source == "bundled"
    assert down.provenance.fallback_reason == _refused_reason(fake) + SERVING_BUNDLED
    # ... and with the Hub back the good file is downloaded, then served from the cache
    fake.set_mode("ok")
    up = load_model("auto")
    assert (up.provenance.source, up.provenance.sha256, up.provenance.commit) == ("hub", sha256(fake.good), fake.commit)
    fake.set_mode("refuse")
    cached = load_model()
    assert (cached.provenance.source, cached.provenance.commit) == ("cache", fake.commit)
    assert _same_weights(cached, make_state_dict(1))
    assert not fake.marker.exists()


def test_good_download_is_cached_with_full_provenance(fake: FakeHub, tmp_path: Path) -> None:
    first = load_model("hub").provenance
    snapshot = tmp_path / "hf-cache" / STORAGE / "snapshots" / fake.commit / FILENAME
    expected = {
        "source": "hub",
        "requested": "hub",
        "path": str(snapshot),
        "sha256": sha256(fake.good),
        "size": len(fake.good),
        "repo_id": REPO_ID,
        "filename": FILENAME,
        "revision": "main",
        "commit": fake.commit,
        "fallback_reason": None,
        "description": cam.loading.HUB_DESCRIPTION,
        "is_demo_model": False,
    }
    assert first.to_dict() == expected
    gets = fake.gets()
    fake.set_mode("refuse")
    second = load_model()
    assert second.provenance.to_dict() == {**expected, "source": "cache", "requested": "auto"}
    assert fake.gets() == gets
    assert _same_weights(second, make_state_dict(1))


@pytest.mark.parametrize("hub_up", [True, False])
def test_invalid_cached_file_is_evicted_then_hub_then_bundled(fake: FakeHub, tmp_path: Path, hub_up: bool) -> None:
    """A cached file whose hash matches its name but whose content is refused (e.g. cached from a bad Hub
    upload): evicted, then the Hub is asked, then the bundled model."""
    fake.set_mode("wrong_keys")
    bad = fake.body_and_etag()[0]
    with pytest.raises(CheckpointError):
        load_model("hub")  # downloads it, refuses it, evicts it
    # plant it back by hand, as a cache written by an older client would hold it
    storage = tmp_path / "hf-cache" / STORAGE
    blob = storage / "blobs" / sha256(bad)
    blob.write_bytes(bad)
    entry = storage / "snapshots" / fake.commit / FILENAME
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.symlink_to(os.path.relpath(blob, entry.parent))

    fake.set_mode("ok" if hub_up else "refuse")
    model = load_model("auto")
    assert not blob.exists()
    if hub_up:
        assert (model.provenance.source, model.provenance.sha256) == ("hub", sha256(fake.good))
    else:
        assert model.provenance.source == "bundled"
        assert model.provenance.fallback_reason == (
            "The cached Hub checkpoint was invalid and was removed; " + _refused_reason(fake) + SERVING_BUNDLED
        )
        assert _stored(tmp_path) == []


def test_refused_connection_reaches_bundled_fast(fake: FakeHub) -> None:
    """Default deadline (8 s); a refused connection must not wait for it (nor for the client's 23 s of retries)."""
    fake.set_mode("refuse")
    start = time.perf_counter()
    model = load_model()
    elapsed = time.perf_counter() - start
    assert model.provenance.fallback_reason == _refused_reason(fake) + SERVING_BUNDLED
    assert elapsed < 2.0


def test_default_deadline_holds_on_a_hanging_hub(fake: FakeHub) -> None:
    """The one test with the default deadline: a Hub that never answers costs at most 10 s."""
    fake.set_mode("hang_head")
    start = time.perf_counter()
    model = load_model()
    elapsed = time.perf_counter() - start
    assert model.provenance.fallback_reason == "Hub did not deliver the checkpoint within 8 s" + SERVING_BUNDLED
    assert elapsed < 10.0


def test_offline_skips_the_hub(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = load_model()
    assert model.provenance.fallback_reason == (
        "Hub access is off (HF_HUB_OFFLINE=1) and the course checkpoint is not cached" + SERVING_BUNDLED
    )
    assert fake.requests == []
    with pytest.raises(HubError, match=r"Unset HF_HUB_OFFLINE to download it\. Set CAM_MODEL=bundled"):
        load_model("hub")


def test_source_selection(
    fake: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint_path: Path
) -> None:
    fake.set_mode("refuse")
    assert load_model("bundled").provenance.to_dict()["source"] == "bundled"
    assert load_model(" Bundled ").provenance.fallback_reason is None
    monkeypatch.setenv("CAM_MODEL", "bundled")
    assert load_model().provenance.requested == "bundled"
    monkeypatch.setenv("CAM_MODEL", "hub")
    with pytest.raises(HubError, match="connection refused"):
        load_model()
    local = tmp_path / "mine.pth"
    torch.save(make_state_dict(7), local)
    monkeypatch.setenv("CAM_MODEL", str(local))
    prov = load_model().provenance
    assert (prov.source, prov.path, prov.sha256, prov.repo_id) == ("file", str(local), sha256(local.read_bytes()), None)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_model(tmp_path / "missing.pth")


def test_auto_with_no_bundled_model_says_both_reasons(
    fake: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.set_mode("500")
    monkeypatch.setattr(cam.loading, "BUNDLED_CHECKPOINT", tmp_path / "absent.pth")
    with pytest.raises(CheckpointError) as err:
        load_model("auto")
    assert str(err.value).startswith("No model to serve: Hub error (HTTP 500), and the bundled demo checkpoint ")


def test_unsafe_torch_env_and_import_time_endpoint(fake: FakeHub, tmp_path: Path, checkpoint_path: Path) -> None:
    """A fresh process configured only through the environment, HF_ENDPOINT included (read at import), and
    with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1: the Hub's pickle is refused, its payload never runs."""
    fake.set_mode("pickle")
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        import cam.loading
        from cam import load_model
        from cam.errors import CheckpointError
        cam.loading.BUNDLED_CHECKPOINT = Path({str(checkpoint_path)!r})
        prov = load_model().provenance
        try:
            load_model("hub")
            hub_error = None
        except CheckpointError as exc:
            hub_error = str(exc)
        print(json.dumps({{"source": prov.source, "reason": prov.fallback_reason, "hub_error": hub_error}}))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAM_", "HF_")) and "proxy" not in k.lower()}
    env.update(
        HF_ENDPOINT=fake.url,
        HF_HUB_OFFLINE="0",
        HF_HUB_CACHE=str(tmp_path / "hf-cache"),
        HF_HUB_DISABLE_TELEMETRY="1",
        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
        PYTHONPATH=str(REPO_ROOT),
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["source"] == "bundled"
    assert result["reason"].startswith(FAULTS["pickle"][0])
    assert "which was not executed" in result["hub_error"]
    assert not fake.marker.exists()
    assert [m for m, _ in fake.requests].count("GET") == 2  # it really went to the fake Hub, twice
    assert _stored(tmp_path) == []
