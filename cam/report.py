"""The Markdown report of ``python -m cam evaluate --report DIR``: tables plus SVG charts.

Writes ``DIR/evaluation.json`` (the full result), ``DIR/EVALUATION.md`` and the charts it links:
``accuracy.svg`` (per class, both splits), ``energy.svg`` (where each method's positive energy falls),
and, when faithfulness was measured, ``deletion.svg`` and ``insertion.svg`` (mean curves).
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
