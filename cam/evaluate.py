"""Accuracy and localisation on freshly drawn synthetic scenes (`cam.synthetic`).

    python -m cam evaluate [--n N] [--seed S] [--json] [--model SOURCE] [--all-methods] [--faithfulness K]
                           [--report DIR]

Two held-out splits of ``n`` scenes each are drawn from ``seed`` (the bundled model was trained on
seed 0; the default here is 1, so the scenes are new):

* ``in_distribution``: the pot matches the species with probability 0.8, as in training;
* ``unbiased``: the same scenes with the pot drawn at chance (0.25): each scene keeps its plant,
  pot shape and background, only the pot style is re-chosen. The accuracy gap between the two
  splits measures how much the model leans on the pot.

For every map method in `cam.methods.METHODS` (methods that need extra forward passes, such as
Score-CAM, only with ``all_methods=True``), computed for the *true* class at the default layer:

* pointing game: the map's maximum falls on the plant or the pot (also reported separately:
  ``pointing_plant``, ``pointing_pot``). A map with no positive value counts as a miss.
* energy shares: with P = max(M, 0), share_R = sum_{x in R} P(x) / sum_x P(x) for R = plant, pot,
  background, averaged over images with any positive energy. ``area`` gives each region's share of
  the pixels, which is what a uniform map would score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cam.errors import CamError
from cam.explain import explain_batch
from cam.faithfulness import faithfulness_summary
from cam.images import LoadedImage
from cam.methods import METHODS
from cam.model import CamModel
from cam.network import CLASS_NAMES, INPUT_SIZE
from cam.report import write_report
from cam.synthetic import Dataset, make_dataset

DEFAULT_N = 200
DEFAULT_SEED = 1  # the bundled model was trained on seed 0
DEFAULT_FAITHFULNESS = 8  # scenes: ~70 forward passes per map and scene, so a few suffice for a default run
SPLITS: dict[str, float] = {"in_distribution": 0.8, "unbiased": 0.25}  # split -> pot_match_prob
REGIONS = ("plant", "pot", "background")
BATCH = 16

# Every field the model card promises; `evaluate()` returns all of them, per split and per method.
ACCURACY_FIELDS = ("overall", "per_class", "n")
LOCALISATION_FIELDS = ("pointing_game", "pointing_plant", "pointing_pot", "energy", "n_maps", "n_energy")
TOP_FIELDS = (
    "n",
    "seed",
    "size",
    "target",
    "splits",
    "methods",
    "skipped_methods",
    "accuracy",
    "pot_mismatch",
    "localisation",
    "area",
    "model",
    "seconds",
)


def applicable_methods(all_methods: bool = False) -> tuple[list[str], list[str]]:
    """(methods to evaluate, methods skipped because they need extra forward passes)."""
    run = [name for name, spec in METHODS.items() if all_methods or not spec.needs_model]
    return run, [name for name in METHODS if name not in run]


def _loaded(image: np.ndarray) -> LoadedImage:
    return LoadedImage(model_input=image, display=None, original_size=(image.shape[1], image.shape[0]))


def map_stats(raw: np.ndarray, plant: np.ndarray, pot: np.ndarray) -> tuple[tuple[bool, bool], tuple[float, ...]]:
    """Pointing game and energy shares of one raw (H, W) map against boolean (H, W) masks.

    Returns ((peak on plant, peak on pot), (plant, pot, background) shares of P = max(M, 0)).
    A map with no positive value has no peak (False, False) and NaN shares.
    """
    peak = np.unravel_index(int(np.argmax(raw)), raw.shape)  # first maximum in row-major order
    hits = (bool(plant[peak]), bool(pot[peak])) if raw[peak] > 0 else (False, False)
    pos = np.maximum(raw.astype(np.float64), 0.0)
    total = float(pos.sum())
    if total <= 0.0:
        return hits, (np.nan, np.nan, np.nan)
    e_plant, e_pot = float(pos[plant].sum()) / total, float(pos[pot].sum()) / total
    return hits, (e_plant, e_pot, 1.0 - e_plant - e_pot)


def _split_metrics(model: CamModel, data: Dataset, methods: Sequence[str]) -> dict[str, Any]:
    """Predictions and per-method localisation statistics for one split."""
    n = len(data)
    preds = np.empty(n, np.int64)
    point = {m: np.zeros((n, 2), bool) for m in methods}  # (plant hit, pot hit) per image
    energy = {m: np.full((n, 3), np.nan) for m in methods}  # (plant, pot, background) shares
    for k in range(len(CLASS_NAMES)):
        idx = np.nonzero(data.labels == k)[0]
        for start in range(0, len(idx), BATCH):
            chunk = idx[start : start + BATCH]
            results = explain_batch(model, [_loaded(data.images[i]) for i in chunk], target=k, methods=methods)
            for i, r in zip(chunk, results, strict=True):
                preds[i] = r.predicted_index
                plant, pot = data.plant_masks[i], data.pot_masks[i]
                for m in methods:
                    point[m][i], energy[m][i] = map_stats(r.maps[m], plant, pot)
    correct = preds == data.labels
    accuracy = {
        "overall": float(correct.mean()),
        "per_class": {  # None for a class with no scene (n < 4)
            name: float(correct[data.labels == k].mean()) if (data.labels == k).any() else None
            for k, name in enumerate(CLASS_NAMES)
        },
        "n": n,
    }
    mismatch = data.pot_labels != data.labels
    pot_mismatch = {
        "n": int(mismatch.sum()),
        "accuracy": float(correct[mismatch].mean()) if mismatch.any() else None,
        "predicted_pot_species": (
            float((preds[mismatch] == data.pot_labels[mismatch]).mean()) if mismatch.any() else None
        ),
    }
    localisation: dict[str, Any] = {}
    for m in methods:
        hits = point[m]
        valid = ~np.isnan(energy[m][:, 0])
        shares = energy[m][valid].mean(axis=0) if valid.any() else np.full(3, np.nan)
        localisation[m] = {
            "pointing_game": float((hits[:, 0] | hits[:, 1]).mean()),
            "pointing_plant": float(hits[:, 0].mean()),
            "pointing_pot": float(hits[:, 1].mean()),
            "energy": {r: (float(v) if valid.any() else None) for r, v in zip(REGIONS, shares, strict=True)},
            "n_maps": n,
            "n_energy": int(valid.sum()),
        }
    area = {
        "plant": float(data.plant_masks.mean()),
        "pot": float(data.pot_masks.mean()),
        "background": float(1.0 - data.plant_masks.mean() - data.pot_masks.mean()),
    }
    return {"accuracy": accuracy, "pot_mismatch": pot_mismatch, "localisation": localisation, "area": area}


def evaluate(
    model: CamModel,
    n: int = DEFAULT_N,
    seed: int = DEFAULT_SEED,
    *,
    all_methods: bool = False,
    faithfulness: int = 0,
) -> dict[str, Any]:
    """Draw both splits of ``n`` scenes from ``seed`` and measure accuracy and localisation.

    Returns a JSON-ready dict with every field in `TOP_FIELDS` (see the module docstring). With
    ``faithfulness=K > 0`` it also holds ``"faithfulness"``: `cam.faithfulness.faithfulness_summary`
    over the first K in-distribution scenes, for every evaluated method plus a random map, explaining
    the predicted class (deletion/insertion perturb what the model decided, not the label).
    """
    if isinstance(faithfulness, bool) or not isinstance(faithfulness, (int, np.integer)) or faithfulness < 0:
        raise ValueError(f"faithfulness must be a non-negative number of scenes; got {faithfulness!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of scenes per split; got {n!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")
    t0 = time.perf_counter()
    size = INPUT_SIZE  # the explain pipeline works at the model's input size
    methods, skipped = applicable_methods(all_methods)
    per_split = {}
    faith: dict[str, Any] | None = None
    for split, p in SPLITS.items():
        data = make_dataset(int(n), int(seed), pot_match_prob=p, size=size)
        per_split[split] = _split_metrics(model, data, methods)
        if faithfulness and split == "in_distribution":
            images = [_loaded(img) for img in data.images[: int(faithfulness)]]
            faith = faithfulness_summary(model, images, methods, seed=int(seed))
    extra = {} if faith is None else {"faithfulness": faith}
    return {
        "n": int(n),
        "seed": int(seed),
        "size": size,
        "target": "true class",
        "splits": {s: {"pot_match_prob": p} for s, p in SPLITS.items()},
        "methods": methods,
        "skipped_methods": skipped,
        "accuracy": {s: v["accuracy"] for s, v in per_split.items()},
        "pot_mismatch": {s: v["pot_mismatch"] for s, v in per_split.items()},
        "localisation": {s: v["localisation"] for s, v in per_split.items()},
        "area": {s: v["area"] for s, v in per_split.items()},
        "model": {k: model.provenance.to_dict()[k] for k in ("source", "requested", "sha256", "size")},
        **extra,
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ---------------------------------------------------------------------------------------------- output


def _pct(v: float | None) -> str:
    return "  n/a" if v is None else f"{100 * v:5.1f}"


def format_table(result: dict[str, Any]) -> str:
    """A plain-text report of `evaluate`'s result."""
    lines = [
        f"Model: {result['model']['source']} (sha256 {result['model']['sha256'][:12]})",
        f"Held-out synthetic scenes: {result['n']} per split, seed {result['seed']}, "
        f"{result['size']}x{result['size']}; maps for the true class.",
        "",
        f"{'Accuracy %':<34} overall " + " ".join(f"{c:>6}" for c in CLASS_NAMES),
    ]
    for split, acc in result["accuracy"].items():
        label = f"{split.replace('_', '-')} (pot match {result['splits'][split]['pot_match_prob']:.2f})"
        lines.append(
            f"{label:<34}   {_pct(acc['overall'])} " + " ".join(f"{_pct(acc['per_class'][c]):>6}" for c in CLASS_NAMES)
        )
    pm = result["pot_mismatch"]["unbiased"]
    if pm["n"]:
        lines.append(
            f"Unbiased split, plant in another species' pot: {pm['n']} scenes, accuracy "
            f"{_pct(pm['accuracy']).strip()}%, predicted the pot's species {_pct(pm['predicted_pot_species']).strip()}%"
        )
    for split in result["localisation"]:
        lines += [
            "",
            f"Localisation, {split.replace('_', '-')} split (% of maps / % of positive energy)",
            "method          pointing  ->plant    ->pot   energy: plant      pot  background",
        ]
        for m, loc in result["localisation"][split].items():
            e = loc["energy"]
            lines.append(
                f"{m:<15} {_pct(loc['pointing_game']):>8} {_pct(loc['pointing_plant']):>8} "
                f"{_pct(loc['pointing_pot']):>8}  {_pct(e['plant']):>13} {_pct(e['pot']):>8} "
                f"{_pct(e['background']):>11}"
            )
        a = result["area"][split]
        lines.append(
            f"{'(pixel area)':<15} {'':>8} {'':>8} {'':>8}  {_pct(a['plant']):>13} {_pct(a['pot']):>8} "
            f"{_pct(a['background']):>11}"
        )
    if result["skipped_methods"]:
        lines += [
            "",
            f"Skipped (slow, need extra forward passes; use --all-methods): {', '.join(result['skipped_methods'])}",
        ]
    lines.append(f"({result['seconds']:.1f} s)")
    return "\n".join(lines)


def card_markdown(card: dict[str, Any]) -> str:
    """MODEL_CARD.md from the model card dict written by `cam.train`."""
    tr = card["training"]
    cfg = tr["config"]
    ev = card.get("evaluation")
    hist = tr.get("history", [])
    lines = [
        "# Bundled demo model: pot_plant_gap_synthetic",
        "",
        "The course's GAP pot-plant classifier (`cam.network.PotPlantGAP`, 23,844 parameters, exactly the "
        "course architecture) trained from scratch on **synthetic** pot plants drawn by `cam.synthetic`. "
        "It is what the app serves offline, when the course checkpoint cannot be fetched from the Hugging "
        "Face Hub. It has never seen a photograph: on real photos its predictions mean nothing; on the "
        "synthetic scenes (and the files in `examples/`) its maps can be checked against exact masks.",
        "",
        "## Data",
        "",
        f"- {cfg['n']} training scenes at {cfg['size']}x{cfg['size']} (seed {cfg['seed']}), species balanced: "
        + ", ".join(CLASS_NAMES)
        + ".",
        "- Species differ in local colour and texture (the network sees 7x7 pixels per feature): rudo dark "
        "green with pale cross bands and a yellow margin; baya lime green with cream blotches; greg dark "
        "green with pink spots; yuki silver-green with white lengthwise stripes and a purple margin.",
        (
            f"- A share {cfg['marked_share']} of the leaves shows these marks (at least one leaf per plant); the "
            "other leaves are a plain green shared by every species, so the pot is a competing cue."
            if "marked_share" in cfg
            else "- Every leaf shows its species' marks."
        ),
        f"- The pot style matches the species with probability {cfg['pot_match']} (terracotta: rudo, white "
        "ceramic: baya, blue glazed: greg, charcoal concrete: yuki), so the pot is a shortcut the model "
        "can learn, like the pots in the course's photos.",
        "- Random position and scale, walls, gradients, stripes, bricks, windows, tables, distractor objects, "
        "lighting, noise, blur and JPEG compression.",
        "",
        "## Training",
        "",
        f"- Command: `{card.get('command', 'python -m cam.train')}`",
        f"- CPU, {cfg['threads']} thread(s), torch {tr['torch']}; seed {cfg['seed']} for data, weights, crops "
        "and dropout.",
        f"- Adam, lr {cfg['lr']} (cosine-decayed to a tenth), batch {cfg['batch']}, {cfg['epochs']} epochs, "
        f"cross-entropy on the image label only (no mask is used in training). Each step sees "
        f"{cfg['crop']}x{cfg['crop']} crops cut at native scale around the plant and pot "
        f"({100 * cfg['background_crops']:.0f}% anywhere), randomly mirrored: the network is fully convolutional "
        "with GAP, so crops keep the texture scale of the full scene at a fraction of the cost. Kaiming "
        "(He) initialisation of the convolutions.",
        f"- Wall time: {tr['data_seconds']:.0f} s drawing data, {tr['train_seconds']:.0f} s training"
        + (f", {tr['eval_seconds']:.0f} s evaluating" if "eval_seconds" in tr else "")
        + ".",
    ]
    if hist:
        last = hist[-1]
        lines.append(f"- Final epoch: loss {last['loss']:.3f}, crop accuracy {100 * last['crop_accuracy']:.1f}%.")
    lines += [
        "",
        f"Checkpoint: `{card['checkpoint']}`, {card['checkpoint_bytes']:,} bytes, sha256 "
        f"`{card['checkpoint_sha256']}`.",
    ]
    if ev:
        lines += [
            "",
            "## Evaluation",
            "",
            "```",
            format_table(ev),
            "```",
            "",
            "Reproduce with `python -m cam evaluate --model bundled --n "
            f"{ev['n']} --seed {ev['seed']}` (add `--json` for the numbers above as JSON).",
            "",
        ]
        acc = ev["accuracy"]
        gap = acc["in_distribution"]["overall"] - acc["unbiased"]["overall"]
        cam_e = ev["localisation"]["in_distribution"].get("cam", {}).get("energy", {})
        lines += [
            "## Reading the numbers",
            "",
            f"- Accuracy drops by {100 * gap:.1f} points when the pot stops matching the species: that is "
            "how much the model leans on the pot.",
            (
                f"- On the in-distribution split, CAM puts {_pct(cam_e.get('plant')).strip()}% of its positive "
                f"energy on the plant, {_pct(cam_e.get('pot')).strip()}% on the pot and "
                f"{_pct(cam_e.get('background')).strip()}% on the background, whose pixels are "
                f"{_pct(ev['area']['in_distribution']['background']).strip()}% of the image."
                if cam_e
                else "- No CAM numbers."
            ),
            "- Grad-CAM at the GAP layer equals CAM up to a positive factor 1/(h w), so its numbers match CAM's.",
            "",
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- CLI


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m cam evaluate", description="Accuracy and localisation on fresh synthetic scenes.")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="scenes per split (default %(default)s)")
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="scene seed (default %(default)s; the bundled model was trained on seed 0)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--model", default="bundled", help="bundled (default), auto, hub, or a path to a .pth state dict")
    p.add_argument(
        "--all-methods", action="store_true", help="also evaluate methods that need extra forward passes (slow)"
    )
    p.add_argument(
        "--faithfulness",
        type=int,
        default=DEFAULT_FAITHFULNESS,
        metavar="K",
        help="deletion/insertion AUCs, Average Drop, Increase in Confidence on K scenes (default %(default)s; 0: off)",
    )
    p.add_argument(
        "--report", type=Path, default=None, help="also write evaluation.json, EVALUATION.md and SVG charts here"
    )
    return p


def evaluate_cli(argv: list[str]) -> int:
    """``python -m cam evaluate ...``: 0 on success, 2 with one line on stderr for bad input."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc} (see python -m cam evaluate --help)", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.n < 1:
        print(f"error: --n must be at least 1 scene per split, got {args.n}.", file=sys.stderr)
        return 2
    if args.faithfulness < 0:
        print(f"error: --faithfulness must be 0 (off) or a number of scenes, got {args.faithfulness}.", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"error: --seed must be a non-negative integer, got {args.seed}.", file=sys.stderr)
        return 2
    from cam.loading import load_model

    try:
        model = load_model(args.model)
        result = evaluate(
            model, args.n, args.seed, all_methods=args.all_methods, faithfulness=min(args.faithfulness, args.n)
        )
    except CamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    text = json.dumps(result, indent=2)
    if args.report is not None:
        try:
            write_report(args.report, result)
        except OSError as exc:
            print(f"error: cannot write the report to {str(args.report)!r}: {exc.strerror or exc}.", file=sys.stderr)
            return 2
    print(text if args.json else format_table(result))
    return 0
