"""Numpy drawing primitives: one flexible filled "blob" plus textures.

Every shape in the world is a super-ellipse in its own rotated frame (power 2 = ellipse, power 8 =
rounded rectangle), optionally tapered (carrot, cup), cut in half (bowl seen from the side), sliced
(pieces after a cut) or partly recoloured by an angular wedge (progressive peeling). Working in the
shape's local, normalised coordinates (u, v in [-1, 1]) lets textures turn with the object and
lets slices/peel wedges follow it, at the cost of a few array operations on the shape's bounding
square only, which keeps a 112x112 frame at well under a millisecond.
"""
from __future__ import annotations

import math

import numpy as np

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


def _texture_mask(name: str, un: np.ndarray, vn: np.ndarray) -> np.ndarray:
    """Where a texture's second colour shows, in normalised local coordinates."""
    if name == "stripes":      # lines along the length (cucumber skin)
        return np.sin(vn * math.pi * 3.0 + 0.0 * un) > 0.55
    if name == "bands":        # rings across the length (carrot)
        return np.sin(un * math.pi * 4.0 + 0.0 * vn) > 0.6
    if name == "dots":         # seeds / pores, staggered grid
        cu = un * 4.0
        cv = vn * 4.0 + 0.5 * np.floor(cu)
        return (np.mod(cu, 1.0) - 0.5) ** 2 + (np.mod(cv, 1.0) - 0.5) ** 2 < 0.035
    if name == "rings":        # onion layers
        return np.sin(np.sqrt(un * un + vn * vn) * math.pi * 5.0) > 0.55
    if name == "rim":          # darker/lighter border (bowl, plate, pan, bread crust)
        return un * un + vn * vn > 0.62
    if name == "grain":        # wood
        return np.sin(vn * math.pi * 5.0 + 1.3 * np.sin(un * math.pi * 1.5)) > 0.55
    if name == "shine":        # a specular highlight
        return (un + 0.35) ** 2 + (vn + 0.4) ** 2 < 0.05
    if name == "check":        # tea towel / tiles
        return (np.floor(un * 3.0) + np.floor(vn * 3.0)) % 2 == 0
    raise ValueError(f"unknown texture {name!r}")


def draw_blob(img: np.ndarray, cx: float, cy: float, rx: float, ry: float, color: Color, *,
              angle: float = 0.0, power: float = 2.0, taper: float = 0.0, half: str | None = None,
              textures: tuple[tuple[str, Color], ...] = (), u_range: tuple[float, float] | None = None,
              slice_axis: str = "u", wedge: float = 0.0, wedge_color: Color | None = None) -> Box | None:
    """Fill a rotated super-ellipse centred at (cx, cy) with half-axes (rx, ry) into `img` (H, W, 3 uint8).

    angle: rotation of the local u axis (radians, clockwise in image coordinates).
    taper: the half-width along u scales by (1 + taper * v), so taper < 0 narrows the top.
    half: "top" or "bottom" keeps only that half (v < 0 is the top).
    u_range: keep only pixels with a <= u < b (a slice of a cut object); `slice_axis="v"` slices along v
        instead (for parts drawn rotated by 90 degrees inside their object).
    wedge: pixels whose polar angle (from +u, turning towards +v) is below `wedge` radians get
        `wedge_color` (peeling progresses around the object).
    Returns the tight pixel box of what was drawn, or None when nothing landed in the image.
    """
    if rx <= 0.3 or ry <= 0.3:
        return None
    h, w = img.shape[:2]
    reach = max(rx, ry) * (1.0 + abs(taper)) + 1.0
    x0, x1 = max(0, int(cx - reach)), min(w, int(math.ceil(cx + reach)) + 1)
    y0, y1 = max(0, int(cy - reach)), min(h, int(math.ceil(cy + reach)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    un = (dx * cos_a + dy * sin_a) / rx
    vn = (-dx * sin_a + dy * cos_a) / ry
    width = 1.0 + taper * vn
    uw = un / np.maximum(width, 1e-3)
    if power == 2.0:  # the common case, without the slower float power
        mask = uw * uw + vn * vn <= 1.0
    else:
        mask = np.abs(uw) ** power + np.abs(vn) ** power <= 1.0
    mask &= width > 0
    if half == "top":
        mask &= vn <= 0
    elif half == "bottom":
        mask &= vn >= 0
    if u_range is not None:
        along = un if slice_axis == "u" else vn
        mask &= (along >= u_range[0]) & (along < u_range[1])
    if not mask.any():
        return None
    region = img[y0:y1, x0:x1]
    region[mask] = color
    for name, tex_color in textures:
        region[mask & _texture_mask(name, un, vn)] = tex_color
    if wedge > 0.0 and wedge_color is not None:
        theta = np.mod(np.arctan2(vn, un), 2.0 * math.pi)
        region[mask & (theta < wedge)] = wedge_color
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)


def draw_dots(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, color: Color, radius: int = 1) -> None:
    """Small square particles (drops, sizzle, peel bits); points outside the image are ignored."""
    h, w = img.shape[:2]
    for ox in range(-radius + 1, radius):
        for oy in range(-radius + 1, radius):
            px = np.round(xs).astype(np.int64) + ox
            py = np.round(ys).astype(np.int64) + oy
            keep = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            img[py[keep], px[keep]] = color


def union(boxes: list[Box | None]) -> Box | None:
    """Smallest box holding all given boxes (None entries ignored)."""
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return (min(b[0] for b in real), min(b[1] for b in real), max(b[2] for b in real), max(b[3] for b in real))


def shade(color: Color, factor: float) -> Color:
    """Scale a colour's brightness, clipped to 0..255."""
    return tuple(int(min(255, max(0, round(c * factor)))) for c in color)  # type: ignore[return-value]


def mix(a: Color, b: Color, t: float) -> Color:
    """Linear blend from a (t=0) to b (t=1)."""
    t = min(1.0, max(0.0, t))
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def make_background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, int]:
    """A wall + counter background with a per-video colour and texture.

    Returns the image and the row where the counter starts (objects rest below it).
    """
    img = np.empty((height, width, 3), dtype=np.uint8)
    counter_y = int(height * rng.uniform(0.36, 0.42))
    wall = rng.integers(60, 230, size=3)
    counter = rng.integers(50, 210, size=3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    style = int(rng.integers(0, 4))
    if style == 0:    # tiles
        tile = max(6, width // int(rng.integers(6, 11)))
        pattern = (((yy // tile) + (xx // tile)) % 2)[..., None] * 0.12 - 0.06
    elif style == 1:  # vertical planks
        pattern = (np.sin(xx / width * math.pi * rng.integers(4, 9)) > 0.9)[..., None] * -0.15
    elif style == 2:  # smooth gradient (light from one side)
        pattern = (xx / width - 0.5)[..., None] * rng.uniform(-0.3, 0.3)
    else:             # fine speckle
        pattern = (np.sin(xx * 1.7 + yy * 2.3) * np.sin(xx * 0.9 - yy * 1.3))[..., None] * 0.08
    img[:counter_y] = np.clip(wall[None, None, :] * (1.0 + pattern[:counter_y]), 0, 255).astype(np.uint8)
    grain = 1.0 + 0.07 * np.sin(yy[counter_y:] * 0.9 + 0.5 * np.sin(xx[counter_y:] * 0.15))[..., None]
    img[counter_y:] = np.clip(counter[None, None, :] * grain, 0, 255).astype(np.uint8)
    img[counter_y:counter_y + max(1, height // 56)] = np.clip(counter * 0.6, 0, 255).astype(np.uint8)  # edge
    return img, counter_y
