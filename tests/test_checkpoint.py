"""cam.checkpoint: every bad file is a CheckpointError that names the problem, nothing is executed, and a
refused state dict never half-overwrites a module."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch

from cam.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    build_module,
    expected_shapes,
    load_weights,
    read_checkpoint,
    validate_state_dict,
)
from cam.errors import CheckpointError
from cam.network import PotPlantGAP
from tests.conftest import make_state_dict
from tests.fakehub import HTML, malicious_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]


def _save(tmp_path: Path, obj: object, name: str = "model.pth") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_valid_checkpoint_is_read_hashed_and_equal(checkpoint_path: Path, state_dict: dict) -> None:
    ckpt = read_checkpoint(checkpoint_path)
    data = checkpoint_path.read_bytes()
    assert ckpt.sha256 == hashlib.sha256(data).hexdigest()
    assert ckpt.size == len(data)
    assert ckpt.state_dict.keys() == state_dict.keys()
    for k, v in state_dict.items():
        assert torch.equal(ckpt.state_dict[k], v)


def test_nested_state_dict_is_unwrapped(tmp_path: Path, state_dict: dict) -> None:
    ckpt = read_checkpoint(_save(tmp_path, {"state_dict": state_dict, "epoch": 50}))
    assert torch.equal(ckpt.state_dict["fc.1.weight"], state_dict["fc.1.weight"])


def test_missing_and_unexpected_keys_are_named(tmp_path: Path, state_dict: dict) -> None:
    renamed = dict(state_dict)
    renamed["fc.1.kernel"] = renamed.pop("fc.1.weight")
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(_save(tmp_path, renamed))
    msg = str(err.value)
    assert "missing key 'fc.1.weight'" in msg
    assert "unexpected key 'fc.1.kernel'" in msg
    assert "'model.pth' does not fit the course network" in msg


def test_all_keys_renamed_counts_the_rest(tmp_path: Path, state_dict: dict) -> None:
    state = {"module." + k: v for k, v in state_dict.items()}  # a DataParallel checkpoint
    with pytest.raises(
        CheckpointError,
        match=r"missing key 'conv_layers\.0\.weight' \(\+7 more\); "
        r"unexpected key 'module\.conv_layers\.0\.weight' \(\+7 more\)",
    ):
        read_checkpoint(_save(tmp_path, state))


@pytest.mark.parametrize("key", sorted(expected_shapes()))
def test_wrong_shape_names_key_and_shapes(tmp_path: Path, state_dict: dict, key: str) -> None:
    state = dict(state_dict)
    good = tuple(state[key].shape)
    bad = (good[0] + 1, *good[1:])
    state[key] = torch.zeros(bad)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(_save(tmp_path, state))
    assert f"key {key!r} has shape {bad}, the course network needs {good}" in str(err.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (torch.zeros(4, dtype=torch.int64), "has dtype torch.int64, expected floating point"),
        (torch.tensor([0.0, float("nan"), 0.0, 0.0]), "contains NaN or infinite values"),
        (torch.tensor([0.0, float("inf"), 0.0, 0.0]), "contains NaN or infinite values"),
        ([0.0, 0.0, 0.0, 0.0], "holds a list, not a tensor"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, state_dict: dict, value: object, expected: str) -> None:
    state: dict[str, object] = dict(state_dict)
    state["fc.1.bias"] = value
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(_save(tmp_path, state))
    assert f"key 'fc.1.bias' {expected}" in str(err.value)


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999])
def test_truncated_file_is_refused(tmp_path: Path, checkpoint_path: Path, fraction: float) -> None:
    data = checkpoint_path.read_bytes()
    cut = max(1, int(len(data) * fraction))
    path = tmp_path / "model.pth"
    path.write_bytes(data[:cut])
    with pytest.raises(
        CheckpointError,
        match=r"'model\.pth' is not a readable PyTorch file \(truncated or "
        r"corrupt\): \w+",
    ) as err:
        read_checkpoint(path)
    assert err.value.__cause__ is not None  # the original error is chained for debugging


@pytest.mark.parametrize("cut_from_end", [1, 2, 22, 100])
def test_file_missing_its_last_bytes_is_refused(tmp_path: Path, checkpoint_path: Path, cut_from_end: int) -> None:
    data = checkpoint_path.read_bytes()
    path = tmp_path / "model.pth"
    path.write_bytes(data[:-cut_from_end])  # the zip's central directory sits at the end
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(path)


def test_html_saved_as_pth(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(b"\n  " + HTML)
    with pytest.raises(CheckpointError, match=r"'model\.pth' is an HTML page, not PyTorch weights"):
        read_checkpoint(path)


def test_json_error_saved_as_pth(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_text(json.dumps({"error": "Repository not found"}))
    with pytest.raises(CheckpointError, match=r"'model\.pth' is a JSON document, not PyTorch weights"):
        read_checkpoint(path)


def test_git_lfs_pointer(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 98280\n")
    with pytest.raises(CheckpointError, match=r"is a Git LFS pointer file .* Run `git lfs pull`"):
        read_checkpoint(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"'model\.pth' is empty \(0 bytes\)"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    ("obj", "kind"),
    [([1.0, 2.0], "list"), (torch.zeros(3), "Tensor"), (42, "int"), ("weights", "str")],
)
def test_non_dict_pickle(tmp_path: Path, obj: object, kind: str) -> None:
    with pytest.raises(CheckpointError, match=rf"'model\.pth' holds a {kind}, not a state dict"):
        read_checkpoint(_save(tmp_path, obj))


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"cannot be read: No such file or directory\. Check the path"):
        read_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match=r"cannot be read: Is a directory\. Check the path"):
        read_checkpoint(tmp_path)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    with path.open("wb") as f:  # sparse: costs no disk
        f.truncate(MAX_CHECKPOINT_BYTES + 1)
    with pytest.raises(CheckpointError, match=r"is 10\.5 MB, far larger than"):
        read_checkpoint(path)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / "model.pth"
    path.write_bytes(malicious_bytes(marker))
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    msg = str(err.value)
    assert "refused by the weights-only loader (Unsupported global: GLOBAL io.open)" in msg
    assert "was not executed" in msg
    assert "weights_only=False" not in msg  # torch's own advice to disable the check is not passed on
    assert not marker.exists()


def test_forced_unsafe_torch_load_env_cannot_run_the_payload(tmp_path: Path) -> None:
    """With TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 a bare torch.load runs the payload (the control proves the
    payload and the variable are live); read_checkpoint and load_model still refuse it."""
    ours, control = tmp_path / "RAN_IN_CAM", tmp_path / "RAN_IN_BARE_TORCH_LOAD"
    evil_ours, evil_control = tmp_path / "a.pth", tmp_path / "b.pth"
    evil_ours.write_bytes(malicious_bytes(ours))
    evil_control.write_bytes(malicious_bytes(control))
    script = textwrap.dedent(f"""
        import torch
        from cam import load_model
        from cam.checkpoint import read_checkpoint
        from cam.errors import CheckpointError
        for call in (read_checkpoint, load_model):
            try:
                call({str(evil_ours)!r})
            except CheckpointError as exc:
                print("REFUSED", call.__name__, "weights-only loader" in str(exc))
        torch.load({str(evil_control)!r})  # the default weights_only, overridden by the variable
    """)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["REFUSED read_checkpoint True", "REFUSED load_model True"]
    assert control.exists(), "control: the payload should run under a bare torch.load with the variable set"
    assert not ours.exists()


def test_load_weights_is_all_or_nothing(state_dict: dict) -> None:
    module = build_module(state_dict)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    bad = make_state_dict(1)
    bad["fc.1.bias"] = torch.zeros(5)  # the last key: every other tensor fits
    with pytest.raises(CheckpointError, match=r"key 'fc\.1\.bias' has shape \(5,\), the course network needs \(4,\)"):
        load_weights(module, bad, "bad.pth")
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    # Why the check matters: torch's own strict load copies what fits before it raises.
    raw = build_module(state_dict)
    with pytest.raises(RuntimeError, match=r"size mismatch for fc\.1\.bias"):
        raw.load_state_dict(bad, strict=True)
    assert not torch.equal(raw.state_dict()["conv_layers.0.weight"], before["conv_layers.0.weight"])


def test_build_module_is_fresh_in_eval_mode_and_casts_half(state_dict: dict) -> None:
    half = {k: v.half() for k, v in state_dict.items()}
    module = build_module(half)
    assert isinstance(module, PotPlantGAP)
    assert not module.training
    for k, v in module.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, half[k].float())


def test_validate_accepts_the_course_layout(state_dict: dict) -> None:
    validate_state_dict(state_dict)  # raises on any problem
    assert list(expected_shapes()) == list(PotPlantGAP().state_dict())
    assert sum(int(torch.tensor(s).prod()) for s in expected_shapes().values()) == 23_844


# ---------------------------------------------------------------------------------------------- float32 range


def test_float64_values_beyond_float32_are_refused(tmp_path: Path, state_dict: dict) -> None:
    """1e300 is finite as float64 (the old check passed it) and infinite once cast to float32, which the
    network serves: refused, naming the key."""
    state = dict(state_dict)
    state["fc.1.bias"] = torch.tensor([0.0, 1e300, 0.0, 0.0], dtype=torch.float64)
    assert torch.isfinite(state["fc.1.bias"]).all() and not torch.isfinite(state["fc.1.bias"].float()).all()
    with pytest.raises(CheckpointError, match=r"key 'fc\.1\.bias' contains NaN or infinite values \(as float32"):
        read_checkpoint(_save(tmp_path, state))
    module = build_module(state_dict)
    with pytest.raises(CheckpointError, match="as float32"):
        load_weights(module, state)
    state["fc.1.bias"] = torch.tensor([0.0, 3e38, -3e38, 0.0], dtype=torch.float64)  # in float32's range
    validate_state_dict(state)


# ---------------------------------------------------------------------------------------------- zip archive


def _rezip(data: bytes, extra: dict[str, tuple[bytes, int]] | None = None, drop: str | None = None) -> bytes:
    """The checkpoint's zip archive rewritten entry by entry, plus ``extra`` {name: (data, compression)}."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != drop:
                dst.writestr(info, src.read(info), compress_type=zipfile.ZIP_STORED)
        for name, (body, method) in (extra or {}).items():
            dst.writestr(name, body, compress_type=method)
    return out.getvalue()


def _patch_central(data: bytes, name: str, *, file_size: int) -> bytes:
    """Rewrite one entry's declared uncompressed size in the central directory (what zip readers trust)."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        (length,) = struct.unpack("<H", out[pos + 28 : pos + 30])
        if out[pos + 46 : pos + 46 + length].decode() == name:
            out[pos + 24 : pos + 28] = struct.pack("<I", file_size)
            return bytes(out)
        pos = out.find(b"PK\x01\x02", pos + 46)
    raise KeyError(name)


def _no_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("torch.load reached: the archive should have been refused from its directory")

    monkeypatch.setattr(torch, "load", forbidden)


def test_deflate_bomb_is_refused_before_torch_load(
    tmp_path: Path, checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 48 KB archive whose storage record inflates to 48 MB (the issue's: 3.6 MB -> 3.7 GB)."""
    data = checkpoint_path.read_bytes()
    name = next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.endswith("data/4"))
    bomb = _rezip(data, {name: (bytes(48 << 20), zipfile.ZIP_DEFLATED)}, drop=name)
    assert len(bomb) < 200_000
    path = tmp_path / "model.pth"
    path.write_bytes(bomb)
    _no_torch_load(monkeypatch)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"'model\.pth' would unpack to 48\.\d MB \(the limit is 16 MB"):
        read_checkpoint(path)
    assert time.perf_counter() - t0 < 0.5


def test_a_repacked_deflated_checkpoint_under_the_budget_still_loads(tmp_path: Path, checkpoint_path: Path) -> None:
    data = checkpoint_path.read_bytes()
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:  # as `zip -r` would
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    path = tmp_path / "model.pth"
    path.write_bytes(out.getvalue())
    assert read_checkpoint(path).state_dict.keys() == read_checkpoint(checkpoint_path).state_dict.keys()


@pytest.mark.parametrize("what", ["stored grows", "deflate past its ratio"])
def test_inconsistent_declared_sizes_are_refused(
    tmp_path: Path, checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    data = checkpoint_path.read_bytes()
    if what == "stored grows":  # a stored (uncompressed) entry cannot unpack to more than it stores
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        name = next(n for n in names if n.endswith("data/4"))
        bad = _patch_central(data, name, file_size=2_000_000)
    else:
        name = "archive/extra"
        packed = _rezip(data, {name: (bytes(1000), zipfile.ZIP_DEFLATED)})
        size = zipfile.ZipFile(io.BytesIO(packed)).getinfo(name).compress_size
        bad = _patch_central(packed, name, file_size=size * 5000)
    path = tmp_path / "model.pth"
    path.write_bytes(bad)
    _no_torch_load(monkeypatch)
    with pytest.raises(CheckpointError, match=rf"inconsistent zip archive: entry '{name}' declares"):
        read_checkpoint(path)


def test_archives_with_many_entries_are_refused(
    tmp_path: Path, checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = checkpoint_path.read_bytes()
    path = tmp_path / "model.pth"
    path.write_bytes(_rezip(data, {f"archive/junk/{k}": (b"x", zipfile.ZIP_STORED) for k in range(1500)}))
    _no_torch_load(monkeypatch)
    with pytest.raises(CheckpointError, match=r"zip archive of 1,514 entries"):
        read_checkpoint(path)
    # The end record's count is read before zipfile builds an object per entry: a forged one is enough.
    end = data.rfind(b"PK\x05\x06")
    forged = data[: end + 8] + struct.pack("<HH", 60_000, 60_000) + data[end + 12 :]
    path.write_bytes(forged)
    with pytest.raises(CheckpointError, match=r"zip archive of 60,000 entries"):
        read_checkpoint(path)
