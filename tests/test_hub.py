"""cam.hub against a fake Hub on 127.0.0.1: cache first, sha256 against the ETag, eviction, settings,
and error messages that say what happened."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from cam import hub
from cam.hub import FILENAME, REPO_ID, HubFetchError, HubFile
from tests import fakehub
from tests.fakehub import FakeHub, sha256

STORAGE = "models--" + REPO_ID.replace("/", "--")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checkpoint_path: Path) -> Iterator[FakeHub]:
    with fakehub.serving(monkeypatch, tmp_path, bundled=checkpoint_path) as server:
        yield server


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-cache"


def _kept(tmp_path: Path) -> list[str]:
    """Snapshot entries and blobs in the cache (locks, refs and in-flight temp files excluded)."""
    return [
        p.name
        for p in fakehub.cache_files(tmp_path)
        if (p.parent.name == "blobs" and not p.name.endswith(".incomplete")) or "snapshots" in p.parts
    ]


def plant(tmp_path: Path, commit: str, data: bytes, etag: str | None = None, symlink: bool = True) -> Path:
    """Put ``data`` into the cache the way huggingface_hub lays it out: blob named by ETag, snapshot link, ref."""
    storage = _cache(tmp_path) / STORAGE
    entry = storage / "snapshots" / commit / FILENAME
    entry.parent.mkdir(parents=True, exist_ok=True)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    if symlink:
        blob = storage / "blobs" / (etag or sha256(data))
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        entry.symlink_to(os.path.relpath(blob, entry.parent))
    else:
        entry.write_bytes(data)
    return entry


# ------------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(("raw", "value"), [("", 8.0), ("3", 3.0), ("2.5", 2.5), (" 0.25 ", 0.25)])
def test_timeout_setting(monkeypatch: pytest.MonkeyPatch, raw: str, value: float) -> None:
    monkeypatch.setenv("CAM_HUB_TIMEOUT", raw)
    assert hub.timeout_s() == value


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "nan", "inf", "1e9"])
def test_bad_timeout_setting_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CAM_HUB_TIMEOUT", raw)
    with pytest.raises(HubFetchError, match=rf"CAM_HUB_TIMEOUT='{raw}' is not a usable number of seconds") as err:
        hub.timeout_s()
    assert err.value.reason == f"invalid CAM_HUB_TIMEOUT='{raw}'"


def test_revision_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAM_HUB_REVISION", raising=False)
    assert hub.revision() == "main"
    monkeypatch.setenv("CAM_HUB_REVISION", "a" * 40)
    assert hub.revision() == "a" * 40
    for bad in ("../../etc", "main branch", "x" * 201):
        monkeypatch.setenv("CAM_HUB_REVISION", bad)
        with pytest.raises(HubFetchError, match="is not a valid revision name"):
            hub.revision()


def test_preflight_goes_to_the_proxy_when_one_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert hub._connect_target("https://huggingface.co") == ("huggingface.co", 443, False)
    assert hub._connect_target("http://127.0.0.1:8123") == ("127.0.0.1", 8123, False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub._connect_target("https://huggingface.co") == ("proxy.example", 3128, True)
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    assert hub._connect_target("https://huggingface.co") == ("huggingface.co", 443, False)


def test_etag_comparison_sha256_and_git_blob_id() -> None:
    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()
    assert hub._etag_mismatch(data, digest, digest) is None
    assert hub._etag_mismatch(data, digest, digest.upper()) is None
    assert hub._etag_mismatch(data, digest, "0" * 64) == f"sha256 {digest[:12]}…, Hub says {'0' * 12}…"
    # git's id of the empty blob is well known: small non-LFS files carry their git blob id as ETag
    empty = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert hub._etag_mismatch(b"", hashlib.sha256(b"").hexdigest(), empty) is None
    assert str(hub._etag_mismatch(b"x", hashlib.sha256(b"x").hexdigest(), empty)).startswith("git blob id ")
    assert hub._etag_mismatch(data, digest, "not-a-hash") is None  # nothing to compare with


# ------------------------------------------------------------------------------------------ fetch and cache


def test_download_then_cache(fake: FakeHub, tmp_path: Path) -> None:
    first = hub.fetch()
    assert not first.from_cache
    assert first.commit == fake.commit
    assert first.sha256 == first.etag == sha256(fake.good)
    assert first.size == len(fake.good)
    assert first.path == _cache(tmp_path) / STORAGE / "snapshots" / fake.commit / FILENAME
    assert first.path.resolve() == _cache(tmp_path) / STORAGE / "blobs" / sha256(fake.good)
    assert (_cache(tmp_path) / STORAGE / "refs" / "main").read_text() == fake.commit
    assert [m for m, _ in fake.requests] == ["HEAD", "HEAD", "GET"]  # our HEAD, the client's HEAD, the body

    fake.set_mode("refuse")  # the cache is looked at first: no network needed
    second = hub.fetch()
    assert second.from_cache
    assert (second.path, second.commit, second.sha256) == (first.path, first.commit, first.sha256)
    assert len(fake.requests) == 3


def test_cache_is_used_with_hub_offline(fake: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.fetch()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.fetch().from_cache


def test_offline_without_cache_skips_the_hub(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubFetchError, match="Hub access is switched off \\(HF_HUB_OFFLINE=1\\)") as err:
        hub.fetch()
    assert err.value.reason == "Hub access is off (HF_HUB_OFFLINE=1) and the course checkpoint is not cached"
    assert fake.requests == []


def test_pinned_commit(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_HUB_REVISION", fake.commit)
    got = hub.fetch()
    assert (got.revision, got.commit, got.sha256) == (fake.commit, fake.commit, sha256(fake.good))
    assert any(path.endswith(f"/resolve/{fake.commit}/{FILENAME}") for _, path in fake.requests)
    assert hub.fetch().from_cache


def test_unknown_revision(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_HUB_REVISION", "v9")
    with pytest.raises(HubFetchError, match="The Hub has no revision 'v9' of a-data-odyssey/XAI-for-CV-models"):
        hub.fetch()


def test_sha_mismatch_is_refused_and_evicted(fake: FakeHub, tmp_path: Path) -> None:
    fake.set_mode("sha_mismatch")
    with pytest.raises(HubFetchError) as err:
        hub.fetch()
    assert err.value.reason == "the downloaded Hub checkpoint failed its sha256 check"
    announced = sha256(b"not the served file")
    assert f"(sha256 {sha256(fake.good)[:12]}…, Hub says {announced[:12]}…)" in str(err.value)
    assert "It was refused and removed from the cache" in str(err.value)
    assert _kept(tmp_path) == []


def test_corrupt_cached_blob_is_evicted_and_downloaded_again(fake: FakeHub, tmp_path: Path) -> None:
    first = hub.fetch()
    blob = first.path.resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01  # bit rot on disk: same size, so only the hash can tell
    blob.write_bytes(bytes(data))
    again = hub.fetch()
    assert not again.from_cache
    assert again.sha256 == sha256(fake.good)
    assert blob.read_bytes() == fake.good


def test_corrupt_cached_blob_with_hub_down(fake: FakeHub, tmp_path: Path) -> None:
    first = hub.fetch()
    first.path.resolve().write_bytes(b"garbage")
    fake.set_mode("refuse")
    with pytest.raises(HubFetchError) as err:
        hub.fetch()
    port = fake.refused_url.rsplit(":", 1)[1]
    assert err.value.reason == (
        "the cached copy was corrupt and was removed (the cached Hub checkpoint failed its sha256 check); "
        f"Hub unreachable (connection refused at 127.0.0.1:{port})"
    )
    assert _kept(tmp_path) == []


def test_plain_file_snapshot_without_blob_is_served(fake: FakeHub, tmp_path: Path) -> None:
    """Caches on file systems without symlinks hold the file itself: there is no ETag to compare with."""
    entry = plant(tmp_path, fake.commit, fake.good, symlink=False)
    got = hub.fetch()
    assert (got.from_cache, got.path, got.etag, got.sha256) == (True, entry, None, sha256(fake.good))


# ------------------------------------------------------------------------------------------------- evict


def test_evict_removes_snapshot_entry_and_blob(fake: FakeHub, tmp_path: Path) -> None:
    got = hub.fetch()
    blob = got.path.resolve()
    hub.evict(got)
    assert not got.path.exists() and not got.path.is_symlink()
    assert not blob.exists()
    assert hub.cached() is None


def test_evict_plain_file_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(_cache(tmp_path)))
    entry = plant(tmp_path, "c" * 40, b"data", symlink=False)
    hub.evict(
        HubFile(
            path=entry,
            repo_id=REPO_ID,
            filename=FILENAME,
            revision="main",
            commit="c" * 40,
            from_cache=True,
            cache_dir=_cache(tmp_path),
        )
    )
    assert not entry.exists()


def test_evict_never_touches_files_outside_the_cache(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "model.pth"
    outside.parent.mkdir()
    outside.write_bytes(b"precious")
    link_target = tmp_path / "elsewhere" / "blob"
    link_target.write_bytes(b"also precious")
    entry = plant(tmp_path, "d" * 40, b"x", symlink=False)
    entry.unlink()
    entry.symlink_to(link_target)  # a snapshot entry someone pointed outside the cache
    for path in (outside, entry):
        hub.evict(
            HubFile(
                path=path,
                repo_id=REPO_ID,
                filename=FILENAME,
                revision="main",
                commit=None,
                from_cache=True,
                etag="../../../elsewhere/model.pth",
                cache_dir=_cache(tmp_path),
            )
        )
    assert outside.read_bytes() == b"precious"
    assert link_target.read_bytes() == b"also precious"
    assert not entry.is_symlink()  # the link inside the cache is removed, its target outside is not


# --------------------------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("mode", "reason", "message"),
    [
        ("500", "Hub error (HTTP 500)", "The Hugging Face Hub answered HTTP 500 for a-data-odyssey/"),
        (
            "404",
            f"checkpoint not found on the Hub (HTTP 404 for {FILENAME}@main)",
            f"has no file {FILENAME} at revision 'main' (HTTP 404)",
        ),
        ("short", "Hub download arrived incomplete", "arrived incomplete (its size differs from what the Hub"),
    ],
)
def test_http_failures_are_explained(fake: FakeHub, tmp_path: Path, mode: str, reason: str, message: str) -> None:
    fake.set_mode(mode)
    with pytest.raises(HubFetchError) as err:
        hub.fetch()
    assert err.value.reason == reason
    assert message in str(err.value)
    assert "Set CAM_MODEL=bundled for the demo model" in str(err.value)  # what to do
    assert err.value.__cause__ is not None
    assert _kept(tmp_path) == []


def test_refused_connection_is_reported_by_the_preflight(fake: FakeHub) -> None:
    fake.set_mode("refuse")
    with pytest.raises(HubFetchError) as err:
        hub.fetch()
    port = fake.refused_url.rsplit(":", 1)[1]
    assert err.value.reason == f"Hub unreachable (connection refused at 127.0.0.1:{port})"
    assert "offline, or a firewall or proxy blocks it" in str(err.value)


def test_hang_on_head_is_cut_at_the_deadline(fake: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.set_mode("hang_head")
    monkeypatch.setenv("CAM_HUB_TIMEOUT", "0.5")
    with pytest.raises(HubFetchError) as err:
        hub.fetch()
    assert err.value.reason == "Hub did not deliver the checkpoint within 0.5 s"
    assert "raise CAM_HUB_TIMEOUT for a slow link" in str(err.value)


def test_non_hub_server_is_explained() -> None:
    err = hub._explain(hub.FileMetadataError("no X-Repo-Commit"), "http://portal.example", "main")
    assert err.reason == "portal.example does not answer like the Hub"
    assert "a proxy or captive portal intercepted the request" in str(err)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError("read timed out"), "Hub download stalled"),
        (ConnectionError("reset by peer"), "Hub unreachable (reset by peer)"),
        (RuntimeError("odd"), "Hub download failed (RuntimeError)"),
    ],
)
def test_raw_errors_become_hub_errors(exc: BaseException, reason: str) -> None:
    err = hub._explain(exc, "https://huggingface.co", "main")
    assert isinstance(err, HubFetchError) and isinstance(err, OSError)
    assert err.reason == reason
    assert f"{type(exc).__name__}: {exc}" in str(err)
