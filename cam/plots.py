"""Tiny dependency-free SVG charts for the evaluation report (a browser or any Markdown viewer shows them).

Only what the report needs: line plots (deletion/insertion curves) and grouped bar charts
(per-class accuracy, energy shares). Values are escaped; sizes are fixed so reports diff cleanly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]
W, H = 560, 340
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 34, 44


def _frame(title: str, xlabel: str, ylabel: str, y_ticks: Sequence[float], y_max: float) -> list[str]:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text transform="translate(14 {TOP + ph / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>',
    ]
    for t in y_ticks:
        y = TOP + ph * (1 - t / y_max)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = TOP + 14 + 18 * i
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{W - RIGHT + 12}" y="{y - 9}" width="12" height="10" fill="{colour}"/>')
        out.append(f'<text x="{W - RIGHT + 30}" y="{y}">{escape(name)}</text>')
    return out


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    y_max: float = 1.0,
) -> str:
    """One polyline per series; x and y are expected in [0, 1] and [0, y_max]."""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = _frame(title, xlabel, ylabel, [y_max * k / 4 for k in range(5)], y_max)
    for i, (xs, ys) in enumerate(series.values()):
        pts = " ".join(
            f"{LEFT + pw * min(max(x, 0.0), 1.0):.1f},{TOP + ph * (1 - min(max(y / y_max, 0.0), 1.0)):.1f}"
            for x, y in zip(xs, ys, strict=True)
        )
        out.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="2"/>')
    for k in range(5):
        x = LEFT + pw * k / 4
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{k / 4:g}</text>')
    out += _legend(list(series))
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    groups: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str, y_max: float = 1.0
) -> str:
    """Grouped bars: one group per label in ``groups``, one bar per series within a group."""
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out = _frame(title, "", ylabel, [y_max * k / 4 for k in range(5)], y_max)
    n = max(len(series), 1)
    gw = pw / max(len(groups), 1)
    bw = gw * 0.8 / n
    for gi, group in enumerate(groups):
        x0 = LEFT + gi * gw + gw * 0.1
        cx, ty = LEFT + (gi + 0.5) * gw, TOP + ph + 16
        # Many groups: angle the labels so long method names do not run into each other.
        turn = (
            f' transform="rotate(-25 {cx:.1f} {ty})" text-anchor="end"' if len(groups) > 5 else ' text-anchor="middle"'
        )
        out.append(f'<text x="{cx:.1f}" y="{ty}"{turn}>{escape(group)}</text>')
        for si, values in enumerate(series.values()):
            v = min(max(float(values[gi]), 0.0), y_max)
            h = ph * v / y_max
            out.append(
                f'<rect x="{x0 + si * bw:.1f}" y="{TOP + ph - h:.1f}" width="{bw * 0.95:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{escape(str(round(float(values[gi]), 4)))}</title></rect>'
            )
    out += _legend(list(series))
    out.append("</svg>")
    return "\n".join(out)
