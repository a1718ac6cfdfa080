"""Drawing internals of `cam.synthetic`: layout, plant and pot textures, background, distractors and
camera effects. Split from `cam.synthetic` to keep each module small; `cam.synthetic` is the public
API (`draw_scene`, `SceneSpec`, `make_dataset`) and the only caller of these functions.

Colours are float RGB in [0, 1] until `camera` (or the plain path of `draw_scene`) converts to uint8.
Every function draws from the generator it is given, in a fixed order, so a seed gives one image.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

_REF = 256.0  # geometry and texture periods are defined on a 256-pixel canvas

# ---------------------------------------------------------------------------------------------
# Small helpers. Colours are float RGB in [0, 1] until the final conversion to uint8.


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx) pixel coordinates divided by ``size``, float32 (S, S) each; cached, read-only."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


@functools.lru_cache(maxsize=4)
def _noise_pool(size: int) -> np.ndarray:
    """(2S, 2S, 3) float32 standard normal noise from a fixed seed; cached, read-only."""
    pool = np.random.default_rng(20240101).standard_normal(size=(2 * size, 2 * size, 3), dtype=np.float32)
    pool.setflags(write=False)
    return pool


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] of ``shape`` (h, w), with about ``cells`` blobs per side."""
    h, w = shape
    coarse = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A uniform draw as a Python float, which never promotes float32 arrays to float64."""
    return float(rng.uniform(lo, hi))


def _jitter(rng: np.random.Generator, colour: Sequence[float], amount: float) -> np.ndarray:
    c = np.asarray(colour, dtype=np.float32) * (1.0 + _u(rng, -amount, amount))  # brightness
    c = c + rng.uniform(-amount / 2, amount / 2, size=3).astype(np.float32)  # hue / tint
    return c.clip(0.0, 1.0)


def _random_colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
    hsv = np.array([[[_u(rng, 0, 180), _u(rng, *sat) * 255, _u(rng, *val) * 255]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------
# Layout: pot and leaf geometry.


@dataclass(frozen=True)
class _Leaf:
    base: tuple[float, float]  # (x, y) where the leaf starts
    angle: float  # radians, direction base -> tip (0 = right, -pi/2 = up)
    length: float
    half_width: float
    a: float  # widest point at u = 0.5 ** (1 / a)
    p: float  # fullness of the outline
    stem_from: tuple[float, float] | None  # stem start, or None for leaves rising from the soil


@dataclass(frozen=True)
class Layout:
    cx: float
    bottom: float
    top: float
    top_w: float
    bottom_w: float
    rim_h: float
    leaves: tuple[_Leaf, ...]


def layout(rng: np.random.Generator, species: int, size: int) -> Layout:
    s = size / _REF
    top_w = _u(rng, 0.16, 0.30) * size
    pot_h = top_w * _u(rng, 0.75, 1.05)
    cx = _u(rng, 0.3, 0.7) * size
    bottom = _u(rng, 0.74, 0.96) * size
    top = bottom - pot_h
    bottom_w = top_w * _u(rng, 0.68, 0.85)
    rim_h = pot_h * _u(rng, 0.12, 0.2)
    height = min(pot_h * _u(rng, 1.4, 2.5), top - 0.03 * size)  # plant above the soil
    height = max(height, 30 * s)
    soil = (cx, top + 2 * s)
    leaves: list[_Leaf] = []
    if species == 0:  # rudo: strap leaves straight from the soil
        for _ in range(int(rng.integers(5, 10))):
            length = height * _u(rng, 0.6, 1.0)
            base = (cx + _u(rng, -0.3, 0.3) * top_w, top + 3 * s)
            ang = -np.pi / 2 + _u(rng, -0.45, 0.45)
            leaves.append(_Leaf(base, ang, length, length * _u(rng, 0.07, 0.1), 1.0, 0.55, None))
    elif species == 1:  # baya: oval leaves on stems
        for _ in range(int(rng.integers(7, 13))):
            ang = -np.pi / 2 + _u(rng, -1.2, 1.2)
            stem = height * _u(rng, 0.2, 0.6)
            base = (soil[0] + np.cos(ang) * stem, soil[1] + np.sin(ang) * stem)
            length = height * _u(rng, 0.28, 0.42)
            la = ang + _u(rng, -0.4, 0.4)
            leaves.append(_Leaf(base, la, length, length * _u(rng, 0.28, 0.34), 1.0, 0.8, soil))
    elif species == 2:  # greg: ovate leaves on stems
        for _ in range(int(rng.integers(6, 11))):
            ang = -np.pi / 2 + _u(rng, -1.1, 1.1)
            stem = height * _u(rng, 0.25, 0.6)
            base = (soil[0] + np.cos(ang) * stem, soil[1] + np.sin(ang) * stem)
            length = height * _u(rng, 0.3, 0.45)
            la = ang + _u(rng, -0.5, 0.5)
            leaves.append(_Leaf(base, la, length, length * _u(rng, 0.3, 0.4), 0.65, 0.7, soil))
    else:  # yuki: arching lanceolate leaves from the soil
        for _ in range(int(rng.integers(8, 14))):
            ang = -np.pi / 2 + _u(rng, -1.0, 1.0)
            length = height * _u(rng, 0.55, 0.85)
            base = (cx + _u(rng, -0.2, 0.2) * top_w, top + 3 * s)
            leaves.append(_Leaf(base, ang, length, length * _u(rng, 0.07, 0.1), 0.9, 0.8, None))
    return Layout(cx, bottom, top, top_w, bottom_w, rim_h, tuple(leaves))


def _leaf_polygon(leaf: _Leaf, n: int = 28) -> np.ndarray:
    u = np.linspace(0.0, 1.0, n)
    w = leaf.half_width * np.sin(np.pi * u**leaf.a) ** leaf.p
    d = np.array([np.cos(leaf.angle), np.sin(leaf.angle)])
    nrm = np.array([-d[1], d[0]])
    centre = np.asarray(leaf.base)[None, :] + (u * leaf.length)[:, None] * d[None, :]
    left = centre + w[:, None] * nrm[None, :]
    right = centre - w[:, None] * nrm[None, :]
    pts = np.concatenate([left, right[::-1]])
    return np.round(pts * 16).astype(np.int32)  # 4 fractional bits for cv2's shift=4


# ---------------------------------------------------------------------------------------------
# Plant texture: per species, as a function of leaf-local coordinates.


def render_plant(
    rng: np.random.Generator,
    species: int,
    layout: Layout,
    size: int,
    marked: np.ndarray | None = None,
    plain_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(colour (S, S, 3) float32, mask (S, S) bool) of the plant alone."""
    s = size / _REF
    label = np.zeros((size, size), np.int16)
    n = len(layout.leaves)
    stem_id = n + 1
    thick = max(1, round(2 * s))
    for leaf in layout.leaves:
        if leaf.stem_from is not None:
            p0 = tuple(round(v * 16) for v in leaf.stem_from)
            p1 = tuple(round(v * 16) for v in leaf.base)
            cv2.line(label, p0, p1, stem_id, thickness=thick, lineType=cv2.LINE_8, shift=4)
    for i, leaf in enumerate(layout.leaves):
        cv2.fillPoly(label, [_leaf_polygon(leaf)], i + 1, lineType=cv2.LINE_8, shift=4)
    mask = label > 0
    colour = np.zeros((size, size, 3), np.float32)
    ys, xs = np.nonzero(mask)
    lab = label[ys, xs]
    is_leaf = lab <= n
    idx = np.clip(lab - 1, 0, n - 1)

    bx = np.array([lf.base[0] for lf in layout.leaves], np.float32)[idx]
    by = np.array([lf.base[1] for lf in layout.leaves], np.float32)[idx]
    ang = np.array([lf.angle for lf in layout.leaves], np.float32)[idx]
    length = np.array([lf.length for lf in layout.leaves], np.float32)[idx]
    hw = np.array([lf.half_width for lf in layout.leaves], np.float32)[idx]
    la = np.array([lf.a for lf in layout.leaves], np.float32)[idx]
    lp = np.array([lf.p for lf in layout.leaves], np.float32)[idx]
    dx, dy = xs - bx, ys - by
    ca, sa = np.cos(ang), np.sin(ang)
    along = dx * ca + dy * sa  # pixels from the base along the leaf
    across = -dx * sa + dy * ca  # signed pixels from the midrib
    u = np.clip(along / length, 0.0, 1.0)
    half = hw * np.sin(np.pi * u**la) ** lp  # half-width of the outline at u, pixels
    from_edge = half - np.abs(across)  # pixels inside the outline
    leaf_gain = (1.0 + rng.uniform(-0.12, 0.12, size=n).astype(np.float32))[idx]

    if species == 0:  # rudo
        base = _jitter(rng, (0.12, 0.33, 0.14), 0.12)
        band = _jitter(rng, (0.48, 0.62, 0.36), 0.1)
        margin = _jitter(rng, (0.86, 0.80, 0.22), 0.1)
        period = _u(rng, 5.0, 7.5) * s
        zig = 1.8 * np.abs(((across / (2.2 * s)) % 2.0) - 1.0) * s  # zig-zag phase across the leaf
        stripe = np.sin(2 * np.pi * (along + zig) / period) > 0.35
        col = np.where(stripe[:, None], band, base)
        col = np.where((from_edge < 1.8 * s)[:, None], margin, col)
        stem = base
    elif species == 1:  # baya
        base = _jitter(rng, (0.46, 0.72, 0.20), 0.12)
        cream = _jitter(rng, (0.93, 0.92, 0.72), 0.06)
        field = _smooth_noise(rng, (size, size), int(rng.integers(18, 28)))[ys, xs]
        col = np.where((field > _u(rng, 0.55, 0.65))[:, None], cream, base)
        col = np.where((np.abs(across) < 0.9 * s)[:, None], cream * 0.95, col)  # pale midrib
        stem = _jitter(rng, (0.55, 0.75, 0.3), 0.1)
    elif species == 2:  # greg
        base = _jitter(rng, (0.10, 0.30, 0.13), 0.12)
        spot = _jitter(rng, (0.95, 0.38, 0.55), 0.08)
        cell = _u(rng, 4.5, 6.0) * s
        gx, gy = np.floor(xs / cell).astype(np.int64), np.floor(ys / cell).astype(np.int64)
        k = int(np.ceil(size / cell)) + 1
        offx = rng.uniform(0.25, 0.75, size=(k, k)).astype(np.float32)
        offy = rng.uniform(0.25, 0.75, size=(k, k)).astype(np.float32)
        rad = rng.uniform(1.0, 1.9, size=(k, k)).astype(np.float32) * s
        ddx = xs - (gx + offx[gy, gx]) * cell
        ddy = ys - (gy + offy[gy, gx]) * cell
        dots = ddx * ddx + ddy * ddy < rad[gy, gx] ** 2
        col = np.where(dots[:, None], spot, base)
        col = np.where((np.abs(across) < 0.8 * s)[:, None], spot * 0.7, col)  # red midrib
        stem = _jitter(rng, (0.45, 0.2, 0.15), 0.1)
    else:  # yuki
        base = _jitter(rng, (0.42, 0.55, 0.48), 0.1)
        silver = _jitter(rng, (0.88, 0.92, 0.90), 0.05)
        margin = _jitter(rng, (0.45, 0.16, 0.42), 0.1)
        period = _u(rng, 3.5, 4.8) * s
        stripe = np.sin(2 * np.pi * across / period) > 0.2
        col = np.where(stripe[:, None], silver, base)
        col = np.where((from_edge < 1.5 * s)[:, None], margin, col)
        stem = base
    # Leaves darken towards the margin (curvature) and differ slightly from one another.
    shade = (0.8 + 0.2 * np.clip(from_edge / np.maximum(half, 1.0), 0.0, 1.0)) * leaf_gain
    col = col * shade[:, None]
    if marked is not None and plain_rng is not None and not marked.all():
        # Unmarked leaves are a plain green that every species shares: only the marked ones tell
        # the species apart, so the pot becomes a competing cue.
        plain_green = _jitter(plain_rng, (0.24, 0.44, 0.2), 0.15)
        plain_col = plain_green[None, :] * shade[:, None]
        col = np.where(marked[idx][:, None], col, plain_col)
    col = np.where(is_leaf[:, None], col, np.asarray(stem, np.float32))
    colour[ys, xs] = col
    return colour, mask


# ---------------------------------------------------------------------------------------------
# Pot.


def render_pot(rng: np.random.Generator, style: int, layout: Layout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(colour (S, S, 3) float32, mask (S, S) bool) of the pot, rim and soil."""
    s = size / _REF
    lo = layout
    body = np.array(
        [
            (lo.cx - lo.top_w / 2, lo.top + lo.rim_h),
            (lo.cx + lo.top_w / 2, lo.top + lo.rim_h),
            (lo.cx + lo.bottom_w / 2, lo.bottom),
            (lo.cx - lo.bottom_w / 2, lo.bottom),
        ]
    )
    rim_w = lo.top_w * 1.08
    rim = np.array(
        [
            (lo.cx - rim_w / 2, lo.top),
            (lo.cx + rim_w / 2, lo.top),
            (lo.cx + rim_w / 2, lo.top + lo.rim_h),
            (lo.cx - rim_w / 2, lo.top + lo.rim_h),
        ]
    )
    part = np.zeros((size, size), np.uint8)  # 1 body, 2 rim, 3 soil
    cv2.fillPoly(part, [np.round(body * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    cv2.fillPoly(part, [np.round(rim * 16).astype(np.int32)], 2, lineType=cv2.LINE_8, shift=4)
    soil_c = (round(lo.cx * 16), round((lo.top + 1.5 * s) * 16))
    soil_ax = (round(rim_w * 0.46 * 16), round(max(2.0, lo.rim_h * 0.35) * 16))
    cv2.ellipse(part, soil_c, soil_ax, 0, 0, 360, 3, thickness=-1, lineType=cv2.LINE_8, shift=4)
    mask = part > 0
    ys, xs = np.nonzero(mask)
    kind = part[ys, xs]
    xn = (xs - lo.cx) / (rim_w / 2)  # -1 .. 1 across the pot
    cyl = (0.72 + 0.35 * np.cos(np.clip(xn, -1, 1) * 1.3)).astype(np.float32)  # round-body shading
    if style == 0:  # terracotta, mottled
        body_c = _jitter(rng, (0.74, 0.39, 0.22), 0.08)
        mottle = _smooth_noise(rng, (size, size), 40)[ys, xs]
        col = body_c[None, :] * (0.85 + 0.3 * mottle)[:, None]
        rim_c = body_c * 0.82
    elif style == 1:  # white glossy ceramic with a specular highlight
        body_c = _jitter(rng, (0.90, 0.90, 0.88), 0.05)
        hl = np.exp(-(((xn + 0.35) / 0.12) ** 2)).astype(np.float32)
        col = body_c[None, :] * (1.0 - 0.1 * np.abs(xn))[:, None] + 0.25 * hl[:, None]
        rim_c = body_c
    elif style == 2:  # blue glaze with pale horizontal bands
        body_c = _jitter(rng, (0.14, 0.30, 0.66), 0.08)
        band_c = _jitter(rng, (0.55, 0.72, 0.92), 0.06)
        period = _u(rng, 6.0, 9.0) * s
        bands = np.sin(2 * np.pi * (ys - lo.top) / period) > 0.5
        col = np.where(bands[:, None], band_c, body_c)
        rim_c = band_c
    else:  # charcoal concrete with speckles
        body_c = _jitter(rng, (0.26, 0.26, 0.28), 0.1)
        sp = rng.random(len(ys)).astype(np.float32)
        col = np.tile(body_c, (len(ys), 1))
        col = np.where((sp < 0.07)[:, None], body_c * 2.6, col)
        col = np.where((sp > 0.95)[:, None], body_c * 0.35, col)
        rim_c = body_c * 1.15
    col = np.where((kind == 2)[:, None], rim_c, col) * cyl[:, None]
    soil_c_rgb = _jitter(rng, (0.25, 0.17, 0.1), 0.15)
    grain = rng.uniform(0.7, 1.2, size=len(ys)).astype(np.float32)
    col = np.where((kind == 3)[:, None], soil_c_rgb[None, :] * grain[:, None], col)
    colour = np.zeros((size, size, 3), np.float32)
    colour[ys, xs] = col.clip(0.0, 1.0)
    return colour, mask


# ---------------------------------------------------------------------------------------------
# Background and distractors.


def background(rng: np.random.Generator, layout: Layout, size: int) -> np.ndarray:
    s = size / _REF
    yy, xx = _grid(size)
    c1 = _random_colour(rng, (0.0, 0.35), (0.35, 0.95))
    c2 = _random_colour(rng, (0.0, 0.45), (0.3, 0.95))
    kind = int(rng.integers(0, 5))
    if kind == 0:  # plain wall, faint plaster texture
        img = np.broadcast_to(c1, (size, size, 3)) * (0.92 + 0.16 * _smooth_noise(rng, (size, size), 12))[..., None]
    elif kind == 1:  # gradient
        a = _u(rng, 0, 2 * np.pi)
        t = ((xx - 0.5) * np.cos(a) + (yy - 0.5) * np.sin(a) + 0.7) / 1.4
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 2:  # wallpaper stripes
        period = _u(rng, 10, 36) * s
        stripes = (np.sin(2 * np.pi * xx * size / period) > _u(rng, -0.5, 0.5))[..., None]
        img = np.where(stripes, c1, c1 * 0.6 + c2 * 0.4)
    elif kind == 3:  # bricks / tiles
        bh, bw = _u(rng, 10, 22) * s, _u(rng, 24, 48) * s
        row = np.floor(yy * size / bh)
        xs_ = xx * size + (row % 2) * bw / 2
        joint = ((yy * size) % bh < 1.6 * s) | (xs_ % bw < 1.6 * s)
        img = np.where(joint[..., None], c2 * 0.5 + 0.4, c1)
    else:  # window behind the plant
        img = np.broadcast_to(c1, (size, size, 3)).copy()
        x0, x1 = sorted(rng.uniform(0.05, 0.95, size=2) * size)
        y0, y1 = sorted(rng.uniform(0.02, 0.7, size=2) * size)
        x1, y1 = max(x1, x0 + 40 * s), max(y1, y0 + 40 * s)
        sky_top = np.array([0.55, 0.72, 0.95], np.float32) * _u(rng, 0.85, 1.1)
        sky = sky_top + (np.array([0.95, 0.95, 0.98], np.float32) - sky_top) * yy[..., None]
        inside = (xx * size > x0) & (xx * size < x1) & (yy * size > y0) & (yy * size < y1)
        img[inside] = sky[inside]
        frame = _random_colour(rng, (0.0, 0.3), (0.3, 1.0))
        fw = _u(rng, 2.5, 6) * s
        on_frame = inside & (
            (np.abs(xx * size - (x0 + x1) / 2) < fw / 2)
            | (np.abs(yy * size - (y0 + y1) / 2) < fw / 2)
            | (xx * size - x0 < fw)
            | (x1 - xx * size < fw)
            | (yy * size - y0 < fw)
            | (y1 - yy * size < fw)
        )
        img[on_frame] = frame
    img = np.array(img, np.float32)
    if rng.random() < 0.75:  # a table or shelf the pot stands on
        edge = layout.bottom - _u(rng, 0.0, 0.06) * size
        wood = rng.random() < 0.6
        top_c = _random_colour(rng, (0.3, 0.7), (0.3, 0.8)) if not wood else _jitter(rng, (0.55, 0.38, 0.22), 0.2)
        below = yy * size >= edge
        if wood:  # wood grain: stretched noise along x
            k = int(rng.integers(4, 8))
            grain = cv2.resize(rng.random((k * 8, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
            surf = top_c * (0.8 + 0.35 * grain[..., None].clip(0, 1))
        else:
            surf = np.broadcast_to(top_c, (size, size, 3))
        img = np.where(below[..., None], surf, img)
    return img.astype(np.float32)


def distractors(rng: np.random.Generator, img: np.ndarray, keep_out: np.ndarray, size: int) -> None:
    """Draw 0-3 objects (books, mugs, frames, balls, vases) in place, never touching ``keep_out``."""
    s = size / _REF
    for _ in range(int(rng.integers(0, 4))):
        kind = int(rng.integers(0, 5))
        colour = _random_colour(rng, (0.2, 0.9), (0.25, 0.95))
        colour2 = _random_colour(rng, (0.1, 0.9), (0.2, 0.95))
        for _attempt in range(6):
            m = np.zeros((size, size), np.uint8)
            cx, cy = _u(rng, 0.05, 0.95) * size, _u(rng, 0.1, 0.95) * size
            w, h = _u(rng, 14, 50) * s, _u(rng, 14, 50) * s
            pts = np.array(
                [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2), (cx - w / 2, cy + h / 2)]
            )
            if kind == 3:  # ball
                cv2.circle(m, (int(cx), int(cy)), int(w / 2), 1, -1)
            elif kind == 4:  # vase: tapered body
                pts[2, 0] -= w * 0.25
                pts[3, 0] += w * 0.25
                cv2.fillPoly(m, [pts.astype(np.int32)], 1)
            else:
                cv2.fillPoly(m, [pts.astype(np.int32)], 1)
                if kind == 1:  # mug handle
                    cv2.ellipse(
                        m,
                        (int(cx + w / 2), int(cy)),
                        (int(w / 4) + 1, int(h / 4) + 1),
                        0,
                        -90,
                        90,
                        1,
                        max(1, int(3 * s)),
                    )
            region = m.astype(bool)
            if region.any() and not (region & keep_out).any():
                break
        else:
            continue
        if kind == 0:  # book stack: horizontal stripes of two colours
            yy = np.nonzero(region)[0]
            alt = ((yy - yy.min()) // max(2, int(_u(rng, 4, 9) * s))) % 2 == 0
            img[region] = np.where(alt[:, None], colour, colour2)
        elif kind == 2:  # picture frame: border around a second colour
            inner = cv2.erode(m, np.ones((3, 3), np.uint8), iterations=max(1, int(3 * s))).astype(bool)
            img[region] = colour
            img[inner] = colour2
        else:
            img[region] = colour
        keep_out |= region  # later distractors do not cover this one either


# ---------------------------------------------------------------------------------------------
# Camera effects.


def camera(rng: np.random.Generator, img: np.ndarray, size: int) -> np.ndarray:
    """Light, noise, blur and JPEG on a float image in [0, 1]; returns uint8."""
    yy, xx = _grid(size)
    gain = (_u(rng, 0.7, 1.25) * rng.uniform(0.9, 1.1, size=3)).astype(np.float32)  # exposure, tint
    a = _u(rng, 0, 2 * np.pi)
    slope = np.float32(_u(rng, -0.25, 0.25) * 2)
    ramp = 1.0 + slope * ((xx - 0.5) * np.float32(np.cos(a)) + (yy - 0.5) * np.float32(np.sin(a)))  # (S, S)
    contrast = np.float32(_u(rng, 0.8, 1.15))
    # out = 255 * ((img * gain * ramp - 0.5) * contrast + 0.5) + noise, all float32
    out = img * (gain * (255.0 * contrast))[None, None, :]
    out *= ramp[..., None]
    out += np.float32(127.5 * (1.0 - contrast))
    sigma = _u(rng, 0, 6)
    pool = _noise_pool(size)  # a random window of a fixed noise field: 10x cheaper than fresh draws
    oy, ox = (int(v) for v in rng.integers(0, size, size=2))
    out += pool[oy : oy + size, ox : ox + size] * np.float32(sigma)
    out8 = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        out8 = cv2.GaussianBlur(out8, (3, 3), _u(rng, 0.4, 0.9))
    if rng.random() < 0.8:
        q = int(rng.integers(35, 96))
        ok, buf = cv2.imencode(".jpg", out8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out8 = decoded[..., ::-1]
    return np.ascontiguousarray(out8)
