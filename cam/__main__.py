"""Command line: ``python -m cam info | explain | evaluate``.

    python -m cam info [--json]
    python -m cam explain IMAGE|DIR|GLOB... [--method cam] [--target predicted] [--layer conv3] [--out DIR]
    python -m cam evaluate [--n N] [--seed S] [--json] [--report DIR]

One argparse parser with a subcommand each; every refusal, argparse's own included, is one line on
stderr that starts with ``error:`` (no usage dump, no traceback).

Exit status: 0 success; 1 some images of a batch could not be read (each reported, the rest done);
2 bad usage or nothing could be done.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
from PIL import Image

from cam.errors import CamError
from cam.explain import Explanation, explain_batch, plan_layers
from cam.images import LoadedImage, load_image
from cam.loading import load_model
from cam.methods import METHODS
from cam.model import CamModel
from cam.network import GAP_LAYER, LAYER_ALIASES
from cam.render import COLORMAPS, DEFAULT_COLORMAP, overlay, scale_map

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MODEL_HELP = "checkpoint: auto (default, or $CAM_MODEL), hub, bundled, or a path to a .pth state dict"


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UsageError` instead of printing its usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _load(source: str | None) -> CamModel:
    model = load_model(source)
    if model.provenance.is_demo_model:
        note = "Note: using the offline demo model trained on synthetic pot plants"
        if model.provenance.fallback_reason:
            note += f" ({model.provenance.fallback_reason})"
        print(
            note + "; the course model loads from the Hugging Face Hub when the network allows.",
            file=sys.stderr,
        )
    return model


def cmd_info(args: argparse.Namespace) -> int:
    model = _load(args.model)
    info = {
        "provenance": model.provenance.to_dict(),
        "classes": list(model.class_names),
        "layers": {alias: path for alias, path in LAYER_ALIASES.items()},
        "gap_layer": GAP_LAYER,
        "methods": {
            name: {
                "name": spec.name,
                "year": spec.year,
                "reference": spec.reference,
                "needs_gradients": spec.needs_gradients,
                "gap_only": spec.gap_only,
                "class_specific": spec.class_specific,
            }
            for name, spec in METHODS.items()
        },
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    p = model.provenance
    print(f"Model:    {p.description}")
    print(f"Source:   {p.source} (requested {p.requested})")
    if p.repo_id:
        print(f"Hub:      {p.repo_id} / {p.filename} @ {p.revision} (commit {p.commit or 'unknown'})")
    if p.fallback_reason:
        print(f"Fallback: {p.fallback_reason}")
    print(f"File:     {p.path} ({p.size} bytes)")
    print(f"sha256:   {p.sha256}")
    print(f"Classes:  {', '.join(model.class_names)}")
    print("Layers:   " + ", ".join(f"{a} ({path})" for a, path in LAYER_ALIASES.items()) + f"; GAP layer: {GAP_LAYER}")
    print("Methods:")
    for name, spec in METHODS.items():
        where = "GAP layer only" if spec.gap_only else "any layer"
        print(f"  {name:<10} {spec.name:<11} {where:<15} {spec.reference}")
    return 0


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> a de-duplicated list of paths."""
    out: list[Path] = []
    for item in items:
        if glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise UsageError(f"No file matches {item!r}.")
            out.extend(p for p in matches if p.is_file())
        elif Path(item).is_dir():
            found = sorted(p for p in Path(item).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UsageError(f"Folder {item!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
            out.extend(found)
        else:
            out.append(Path(item))  # a missing file is reported per image, like an unreadable one
    return list(dict.fromkeys(out))


def _chunks(seq: Sequence[tuple[Path, LoadedImage]], n: int) -> Iterator[Sequence[tuple[Path, LoadedImage]]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _stem(path: Path, used: set[str]) -> str:
    stem, k = path.stem, 1
    while stem in used:
        k += 1
        stem = f"{path.stem}_{k}"
    used.add(stem)
    return stem


def cmd_explain(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}.")
    methods = [m.strip() for spec in (args.method or ["cam"]) for m in spec.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"Unknown method {unknown[0]!r}; available: {', '.join(METHODS)}.")
    if not 0.0 <= args.opacity <= 1.0:
        raise UsageError(f"--opacity must be between 0 and 1, got {args.opacity}.")
    paths = expand_inputs(args.images)
    out_dir = Path(args.out)
    model = _load(args.model)
    plan_layers(model.module, methods, args.layer)  # a bad method/layer pair fails before any work

    from tqdm import tqdm  # ships with huggingface_hub

    rows: list[dict[str, object]] = []
    failed = 0
    loaded: list[tuple[Path, LoadedImage]] = []
    for path in paths:
        try:
            loaded.append((path, load_image(path)))
        except CamError as exc:
            if len(paths) == 1:
                raise  # one input: its own message is the one line
            failed += 1
            print(f"{path}: {exc}", file=sys.stderr)
            rows.append({"image": str(path), "status": f"error: {exc}"})
    if not loaded:
        raise UsageError(f"none of the {len(paths)} images could be read (see above)")
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    bar = tqdm(
        total=len(loaded),
        unit="img",
        disable=args.quiet or not sys.stderr.isatty(),
        file=sys.stderr,
        desc="explain",
    )
    for chunk in _chunks(loaded, args.batch_size):
        results = explain_batch(model, [im for _, im in chunk], args.target, methods, args.layer)
        for (path, _), r in zip(chunk, results, strict=True):
            stem = _stem(path, used)
            rows.append(_write_outputs(r, path, stem, out_dir, args.opacity, args.colormap))
        bar.update(len(chunk))
    bar.close()
    summary = out_dir / "summary.csv"
    _write_csv(summary, rows, model.class_names, methods)
    done = len(loaded)
    print(
        f"Explained {done} image(s) with {', '.join(methods)}; wrote maps and {summary}"
        + (f"; {failed} image(s) could not be read" if failed else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


def _write_outputs(
    r: Explanation, path: Path, stem: str, out_dir: Path, opacity: float, colormap: str
) -> dict[str, object]:
    row: dict[str, object] = {
        "image": str(path),
        "status": "ok",
        "predicted": r.predicted,
        "target": r.target,
    }
    row.update({f"p_{name}": round(p, 6) for name, p in r.probabilities.items()})
    assert r.image is not None and r.image.display is not None
    for method, raw in r.maps.items():
        np.save(out_dir / f"{stem}.{method}.npy", raw)
        Image.fromarray(overlay(r.image.display, scale_map(raw), opacity, colormap)).save(
            out_dir / f"{stem}.{method}.png"
        )
        peak_y, peak_x = np.unravel_index(int(np.argmax(raw)), raw.shape)
        row.update(
            {
                f"{method}_min": float(raw.min()),
                f"{method}_max": float(raw.max()),
                f"{method}_mean": float(raw.mean()),
                f"{method}_positive_share": float((raw > 0).mean()),
                f"{method}_peak_xy": f"{peak_x / raw.shape[1]:.3f};{peak_y / raw.shape[0]:.3f}",
                f"{method}_layer": r.layers[method],
            }
        )
    return row


def _write_csv(path: Path, rows: list[dict[str, object]], class_names: Sequence[str], methods: Sequence[str]) -> None:
    fields = ["image", "status", "predicted", "target", *[f"p_{c}" for c in class_names]]
    for m in methods:
        fields += [f"{m}_{s}" for s in ("min", "max", "mean", "positive_share", "peak_xy", "layer")]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cam.evaluate import evaluate
    from cam.report import format_table, write_report

    if args.n < 1:
        raise UsageError(f"--n must be at least 1 scene per split, got {args.n}.")
    if args.faithfulness < 0:
        raise UsageError(f"--faithfulness must be 0 (off) or a number of scenes, got {args.faithfulness}.")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}.")
    model = load_model(args.model)
    result = evaluate(
        model, args.n, args.seed, all_methods=args.all_methods, faithfulness=min(args.faithfulness, args.n)
    )
    if args.report is not None:
        try:
            write_report(args.report, result)
        except OSError as exc:
            raise UsageError(f"cannot write the report to {str(args.report)!r}: {exc.strerror or exc}.") from exc
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cam.evaluate import DEFAULT_FAITHFULNESS, DEFAULT_N, DEFAULT_SEED

    parser = _Parser(prog="python -m cam", description="CAM and Grad-CAM for the course's GAP classifier.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p_info = sub.add_parser("info", help="provenance, classes, layers and methods")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.add_argument("--model", default=None, help=MODEL_HELP)
    p_info.set_defaults(run=cmd_info)

    p_exp = sub.add_parser("explain", help="write raw maps (.npy), overlays (.png) and summary.csv")
    p_exp.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    p_exp.add_argument("--method", action="append", help=f"repeat or comma-separate; one of {', '.join(METHODS)}")
    p_exp.add_argument("--target", default="predicted", help="'predicted', a class name or an index")
    p_exp.add_argument(
        "--layer", default=None, help=f"{', '.join(LAYER_ALIASES)} or a module path (default {GAP_LAYER})"
    )
    p_exp.add_argument("--out", default="cam_out", help="output folder (default: cam_out)")
    p_exp.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p_exp.add_argument("--opacity", type=float, default=0.5, help="overlay opacity in [0, 1]")
    p_exp.add_argument("--colormap", default=DEFAULT_COLORMAP, choices=sorted(COLORMAPS))
    p_exp.add_argument("--model", default=None, help=MODEL_HELP)
    p_exp.add_argument("--quiet", action="store_true", help="no progress bar")
    p_exp.set_defaults(run=cmd_explain)

    p_ev = sub.add_parser(
        "evaluate",
        help="accuracy, localisation and faithfulness on fresh synthetic scenes",
        description="Accuracy and localisation on fresh synthetic scenes.",
    )
    p_ev.add_argument("--n", type=int, default=DEFAULT_N, help="scenes per split (default %(default)s)")
    p_ev.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="scene seed (default %(default)s; the bundled model was trained on 0)",
    )
    p_ev.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p_ev.add_argument("--model", default="bundled", help="bundled (default), auto, hub, or a path to a .pth state dict")
    p_ev.add_argument(
        "--all-methods", action="store_true", help="also evaluate methods that need extra forward passes (slow)"
    )
    p_ev.add_argument(
        "--faithfulness",
        type=int,
        default=DEFAULT_FAITHFULNESS,
        metavar="K",
        help="deletion/insertion AUCs, Average Drop, Increase in Confidence on K scenes (default %(default)s; 0: off)",
    )
    p_ev.add_argument(
        "--report", type=Path, default=None, help="also write evaluation.json, EVALUATION.md and SVG charts here"
    )
    p_ev.set_defaults(run=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
        return code
    except SystemExit as exc:  # --help printed its text
        return int(exc.code or 0)
    except (CamError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. an output folder that cannot be written
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _entry() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `python -m cam ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot raise again
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    _entry()
