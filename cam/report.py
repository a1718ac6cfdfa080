"""Everything written about an evaluation: the plain-text table, the Markdown report, the model card.

* `format_table`: what ``python -m cam evaluate`` prints (and the model card quotes).
* `write_report`: ``python -m cam evaluate --report DIR`` writes ``DIR/evaluation.json`` (the full
  result), ``DIR/EVALUATION.md`` and the charts it links: ``accuracy.svg`` (per class, both splits),
  ``energy.svg`` (where each method's positive energy falls), and, when faithfulness was measured,
  ``deletion.svg`` and ``insertion.svg`` (mean curves).
* `card_markdown`: ``cam/assets/MODEL_CARD.md`` from the card dict `cam.train` writes.

`cam.evaluate` computes the numbers; nothing here computes any.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cam.network import CLASS_NAMES
from cam.plots import bar_chart, line_plot


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def report_markdown(result: dict[str, Any]) -> str:
    """EVALUATION.md for an `cam.evaluate.evaluate` result (charts are linked, not inlined)."""
    model = result["model"]
    md = [
        "# Evaluation on fresh synthetic pot plants",
        "",
        f"Model: `{model['source']}` (sha256 `{model['sha256'][:16]}…`). {result['n']} scenes per split, "
        f"seed {result['seed']}, {result['size']}x{result['size']}. Localisation uses the maps of the true class.",
        "",
        "## Accuracy",
        "",
        "![accuracy per class](accuracy.svg)",
        "",
    ]
    rows = []
    for split, acc in result["accuracy"].items():
        p = result["splits"][split]["pot_match_prob"]
        rows.append(
            [f"{split} (pot match {p:.2f})", _pct(acc["overall"]), *(_pct(acc["per_class"][c]) for c in CLASS_NAMES)]
        )
    md += _table(["split", "overall %", *CLASS_NAMES], rows)
    pm = result["pot_mismatch"].get("unbiased", {})
    if pm.get("n"):
        md += [
            "",
            f"Plants in another species' pot (unbiased split, {pm['n']} scenes): accuracy {_pct(pm['accuracy'])} %, "
            f"predicted the pot's species {_pct(pm['predicted_pot_species'])} %. The gap between the splits is how "
            "much the model leans on the pot.",
        ]
    md += ["", "## Localisation: which method finds the plant, which the pot", "", "![energy shares](energy.svg)", ""]
    for split, per_method in result["localisation"].items():
        area = result["area"][split]
        rows = [
            [
                f"`{m}`",
                _pct(loc["pointing_game"]),
                _pct(loc["pointing_plant"]),
                _pct(loc["pointing_pot"]),
                _pct(loc["energy"]["plant"]),
                _pct(loc["energy"]["pot"]),
                _pct(loc["energy"]["background"]),
            ]
            for m, loc in per_method.items()
        ]
        rows.append(["pixel area", "", "", "", _pct(area["plant"]), _pct(area["pot"]), _pct(area["background"])])
        md += [f"**{split}** (% of maps for the pointing game, % of positive map energy per region)", ""]
        md += _table(["method", "pointing", "peak on plant", "peak on pot", "plant", "pot", "background"], rows)
        md.append("")
    faith = result.get("faithfulness")
    if faith:
        s = faith["settings"]
        md += [
            "## Faithfulness",
            "",
            f"{faith['n_images']} in-distribution scenes, {s['n_steps']} steps; deletion to {s['deletion_baseline']}, "
            f"insertion from {s['insertion_baseline']}; tracked: {s['probability']} (target: {s['target']}). "
            "Lower deletion AUC and Average Drop, higher insertion AUC and Increase in Confidence are better; "
            "`random` is a random map, the chance level.",
            "",
            "![deletion curves](deletion.svg) ![insertion curves](insertion.svg)",
            "",
        ]
        rows = [
            [
                f"`{m}`",
                f"{v['deletion_auc']:.3f}",
                f"{v['insertion_auc']:.3f}",
                f"{v['average_drop']:.1f}",
                f"{v['increase_in_confidence']:.1f}",
            ]
            for m, v in faith["methods"].items()
        ]
        md += _table(["method", "deletion AUC ↓", "insertion AUC ↑", "Average Drop % ↓", "Increase in Conf. % ↑"], rows)
        md.append("")
    if result.get("skipped_methods"):
        md += [f"Skipped (slow; `--all-methods` adds them): {', '.join(result['skipped_methods'])}.", ""]
    md.append(f"Computed in {result['seconds']:.1f} s.")
    return "\n".join(md) + "\n"


def write_report(directory: Path, result: dict[str, Any]) -> list[Path]:
    """Write the JSON, the Markdown and the charts; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {
        "evaluation.json": json.dumps(result, indent=2) + "\n",
        "EVALUATION.md": report_markdown(result),
        "accuracy.svg": bar_chart(
            list(CLASS_NAMES),
            {split: [acc["per_class"][c] or 0.0 for c in CLASS_NAMES] for split, acc in result["accuracy"].items()},
            "Accuracy per class",
            "accuracy",
        ),
    }
    split = next(iter(result["localisation"]))
    per_method = result["localisation"][split]
    files["energy.svg"] = bar_chart(
        list(per_method),
        {
            region: [loc["energy"][region] or 0.0 for loc in per_method.values()]
            for region in ("plant", "pot", "background")
        },
        f"Share of positive map energy ({split})",
        "share",
    )
    faith = result.get("faithfulness")
    if faith:
        xs = faith["curves"]["fractions"]
        for kind in ("deletion", "insertion"):
            series = {m: (xs, curves[kind]) for m, curves in faith["curves"]["mean"].items()}
            files[f"{kind}.svg"] = line_plot(
                series,
                f"{kind.capitalize()} curves (mean)",
                "fraction of pixels " + ("removed" if kind == "deletion" else "inserted"),
                "p(target)",
            )
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------- text


def _pct_col(v: float | None) -> str:
    """A percentage in a fixed-width column of the plain-text table."""
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
            f"{label:<34}   {_pct_col(acc['overall'])} "
            + " ".join(f"{_pct_col(acc['per_class'][c]):>6}" for c in CLASS_NAMES)
        )
    pm = result["pot_mismatch"]["unbiased"]
    if pm["n"]:
        lines.append(
            f"Unbiased split, plant in another species' pot: {pm['n']} scenes, accuracy "
            f"{_pct_col(pm['accuracy']).strip()}%, predicted the pot's species "
            f"{_pct_col(pm['predicted_pot_species']).strip()}%"
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
                f"{m:<15} {_pct_col(loc['pointing_game']):>8} {_pct_col(loc['pointing_plant']):>8} "
                f"{_pct_col(loc['pointing_pot']):>8}  {_pct_col(e['plant']):>13} {_pct_col(e['pot']):>8} "
                f"{_pct_col(e['background']):>11}"
            )
        a = result["area"][split]
        lines.append(
            f"{'(pixel area)':<15} {'':>8} {'':>8} {'':>8}  {_pct_col(a['plant']):>13} {_pct_col(a['pot']):>8} "
            f"{_pct_col(a['background']):>11}"
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
                f"- On the in-distribution split, CAM puts {_pct_col(cam_e.get('plant')).strip()}% of its positive "
                f"energy on the plant, {_pct_col(cam_e.get('pot')).strip()}% on the pot and "
                f"{_pct_col(cam_e.get('background')).strip()}% on the background, whose pixels are "
                f"{_pct_col(ev['area']['in_distribution']['background']).strip()}% of the image."
                if cam_e
                else "- No CAM numbers."
            ),
            "- Grad-CAM at the GAP layer equals CAM up to a positive factor 1/(h w), so its numbers match CAM's.",
            "",
        ]
    return "\n".join(lines) + "\n"
