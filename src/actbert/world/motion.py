"""The motion signature of each verb: how the objects of a step move, frame by frame.

Each verb has an animator, called for every frame of its step with the time `tau` since the step
began, which draws the step's objects (and the containers holding them) onto the frame, and a
`finish` function that leaves its lasting effect on the scene (pieces, peel, browning, contents).
All verbs share the first/last half second (the object and tool travel to the work spot and back);
what happens in between is specific to the verb, so the verb is decidable from the motion alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from actbert.world.catalog import VERB_BY_NAME
from actbert.world.draw import Box, Color, draw_blob, draw_dots, mix, shade
from actbert.world.plan import PlannedStep
from actbert.world.scene import CONTENT_SCALE, Scene

TRAVEL = 0.5   # seconds to bring objects/tools to the work spot, and to put them back
JUICE: Color = (250, 225, 60)


@dataclass
class Ctx:
    """One frame of one step."""

    scene: Scene
    step: PlannedStep
    tau: float            # seconds since the step started
    dur: float            # step length in seconds
    rng: np.random.Generator
    img: np.ndarray
    boxes: dict[str, Box]

    @property
    def u(self) -> float:
        return self.scene.unit

    @property
    def ramp(self) -> float:
        """0 -> 1 during the first TRAVEL seconds, 1 -> 0 during the last."""
        return _smooth(min(self.tau, self.dur - self.tau) / TRAVEL)

    @property
    def q(self) -> float:
        """Progress of the verb-specific middle part, 0 -> 1."""
        return min(1.0, max(0.0, (self.tau - TRAVEL) / max(1e-6, self.dur - 2 * TRAVEL)))

    def draw(self, name: str, *args, **kwargs) -> None:
        box = self.scene.draw(self.img, name, *args, **kwargs)
        if box is not None:
            self.boxes[name] = box

    def draw_rest(self, moving: set[str], shake: tuple[float, float] = (0.0, 0.0), shaken: str | None = None) -> None:
        """Draw the step's group except the `moving` names, in painting order; `shaken` (a
        container) and its contents are offset by `shake`."""
        sc = self.scene
        group = sc.group({n for n in (self.step.object, self.step.target, self.tool) if n})
        for name in sc.draw_order(group - moving):
            x, y = sc.rest_position(name)
            if shaken and (name == shaken or sc.instances[name].location == shaken):
                x, y = x + shake[0], y + shake[1]
            self.draw(name, x, y)

    @property
    def tool(self) -> str | None:
        return VERB_BY_NAME[self.step.verb].tool

    def draw_tool(self, pos: tuple[float, float], angle: float) -> None:
        """The verb's tool, carried from its wall hook to `pos` and back by `ramp`."""
        inst = self.scene.instances[self.tool]
        a = self.ramp
        self.draw(self.tool, _lerp(inst.home[0], pos[0], a), _lerp(inst.home[1], pos[1], a),
                  angle=_lerp(inst.angle, angle, a))

    def carried(self, dest: tuple[float, float], dest_scale: float) -> tuple[float, float, float]:
        """Position and scale of the step object carried from rest to `dest` by `ramp`."""
        x0, y0 = self.scene.rest_position(self.step.object)
        s0 = self.scene.rest_scale(self.step.object)
        a = self.ramp
        return _lerp(x0, dest[0], a), _lerp(y0, dest[1], a), _lerp(s0, dest_scale, a)

    def inner(self, container: str) -> tuple[float, float, float, float]:
        """Centre and half-axes of a container's inside (where liquids and spoons go)."""
        inst = self.scene.instances[container]
        part = next((p for p in inst.kind.parts if p.inner), inst.kind.parts[0])
        s = self.u * inst.scale
        return inst.home[0] + part.dx * s, inst.home[1] + part.dy * s, part.rx * s, part.ry * s


def _smooth(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _body_radii(ctx: Ctx, name: str, scale: float) -> tuple[float, float]:
    inst = ctx.scene.instances[name]
    part = inst.kind.parts[0]
    s = ctx.u * inst.scale * scale
    rx, ry = part.rx * s, part.ry * s
    return (ry, rx) if abs(math.sin(part.angle)) > 0.7 else (rx, ry)


def _slot_in(scene: Scene, name: str, container: str) -> tuple[float, float]:
    """Where `name` will lie once added to `container`."""
    box = scene.instances[container]
    contents = [c for c in box.contents if c != name] + [name]
    n = len(contents)
    return box.home[0] + (n - 1 - (n - 1) / 2) * 6 * scene.unit, box.home[1] - 1 * scene.unit


def _draw_filling(ctx: Ctx, moving: set[str], liquid: Color, fill: float) -> None:
    """Draw the step's group minus `moving`, with the target container showing `liquid`."""
    target = ctx.step.target
    filling = ctx.scene.group({target})
    ctx.draw_rest(moving | filling)
    for name in ctx.scene.draw_order(filling - moving):
        if name == target:
            ctx.draw(name, liquid=liquid, fill=fill)
        else:
            ctx.draw(name)


def _falling(ctx: Ctx, x: float, y_top: float, y_bottom: float, n: int, speed: float, color: Color,
             spread: float = 1.0) -> None:
    """A stream of n particles falling from y_top to y_bottom (drops, juice, peel bits)."""
    j = np.arange(n, dtype=np.float64)
    dist = max(1.0, y_bottom - y_top)
    ys = y_top + np.mod(ctx.tau * speed * ctx.u + j * dist / n, dist)
    xs = x + np.sin(j * 2.3) * spread * ctx.u
    draw_dots(ctx.img, xs, ys, color, radius=2 if ctx.u >= 0.9 else 1)


# ------------------------------------------------------------------ verbs
def _cut(ctx: Ctx) -> None:
    obj = ctx.step.object
    x, y, s = ctx.carried(ctx.scene.work, 1.3)
    start = ctx.scene.instances[obj].pieces
    pieces = start if start > 1 else min(4, 1 + int(ctx.q * 4)) if ctx.q > 0 else 1
    ctx.draw_rest({obj, "knife"})
    ctx.draw(obj, x, y, scale=s, pieces=pieces)
    rx, ry = _body_radii(ctx, obj, s)
    cut_x = x - rx + 2 * rx * min(pieces, 3.5) / 4
    lift = 7 * ctx.u * abs(math.sin(2 * math.pi * 2.0 * ctx.tau))   # two chops a second
    ctx.draw_tool((cut_x - 3 * ctx.u, y - ry - 3 * ctx.u - lift), -0.25)


def _peel(ctx: Ctx) -> None:
    obj = ctx.step.object
    inst = ctx.scene.instances[obj]
    x, y, s = ctx.carried(ctx.scene.work, 1.3)
    theta = 2 * math.pi * ctx.q
    ctx.draw_rest({obj, "knife"})
    ctx.draw(obj, x, y, scale=s, peeled=inst.peeled + (1 - inst.peeled) * ctx.q)
    rx, ry = _body_radii(ctx, obj, s)
    kx, ky = x + (rx + 2 * ctx.u) * math.cos(theta), y + (ry + 2 * ctx.u) * math.sin(theta)
    ctx.draw_tool((kx, ky), theta + math.pi / 2)
    if 0 < ctx.q < 1:  # peel bits fall from the blade
        _falling(ctx, kx, ky, ky + 12 * ctx.u, 4, 25, shade(inst.colors[0], 0.9), spread=2.0)


def _wash(ctx: Ctx) -> None:
    obj = ctx.step.object
    x, y, s = ctx.carried((ctx.scene.work[0], ctx.scene.work[1] - 4 * ctx.u), 1.2)
    if 0 < ctx.q < 1:  # shaken under the tap
        x, y = x + ctx.rng.normal(0, 1.2) * ctx.u, y + ctx.rng.normal(0, 0.8) * ctx.u
    ctx.draw_rest({obj})
    ctx.draw(obj, x, y, scale=s)
    tap_end = max(4 * ctx.u, y - 18 * ctx.u)
    tx = ctx.scene.work[0]
    draw_blob(ctx.img, tx, tap_end / 2, 2.2 * ctx.u, tap_end / 2, (150, 150, 160), power=8)
    if ctx.ramp > 0.5:
        _falling(ctx, tx, tap_end, y, 12, 55, (60, 120, 255), spread=4.0)


def _add(ctx: Ctx) -> None:
    obj, target = ctx.step.object, ctx.step.target
    x0, y0 = ctx.scene.rest_position(obj)
    s0 = ctx.scene.rest_scale(obj)
    x1, y1 = _slot_in(ctx.scene, obj, target)
    p = _smooth((ctx.tau - 0.2) / max(0.3, ctx.dur - 0.7))
    ctx.draw_rest({obj})
    ctx.draw(obj, _lerp(x0, x1, p), _lerp(y0, y1, p) - math.sin(math.pi * p) * 16 * ctx.u,
             scale=_lerp(s0, CONTENT_SCALE, p))


def _pour(ctx: Ctx) -> None:
    bottle, target = ctx.step.object, ctx.step.target
    cx, cy, crx, cry = ctx.inner(target)
    box = ctx.scene.instances[target]
    new = ctx.scene.instances[bottle].kind.liquid
    fill = _smooth((ctx.tau - 1.1) / max(0.2, ctx.dur - 2.0))
    liquid, amount = (new, fill) if box.liquid is None else (mix(box.liquid, mix(box.liquid, new, 0.5), fill), 1.0)
    _draw_filling(ctx, {bottle}, liquid, amount)
    tilt = 2.1 * _smooth((ctx.tau - 0.6) / 0.5) * _smooth((ctx.dur - 0.5 - ctx.tau) / 0.4)
    x, y, _ = ctx.carried((cx - 9 * ctx.u, cy - 20 * ctx.u), 1.0)
    ctx.draw(bottle, x, y, angle=tilt)
    if tilt > 1.6:  # the stream leaves the bottle's mouth
        s = ctx.u * ctx.scene.instances[bottle].scale
        mx, my = x + 11 * s * math.sin(tilt), y - 11 * s * math.cos(tilt)
        _falling(ctx, mx, my, cy, 10, 45, shade(new, 0.85), spread=0.6)


def _stir(ctx: Ctx) -> None:
    target = ctx.step.object
    cx, cy, crx, cry = ctx.inner(target)
    phi = 2 * math.pi * 1.2 * ctx.tau
    box = ctx.scene.instances[target]
    ctx.draw(target)
    spin = 2 * math.pi * 0.6 * ctx.tau * (ctx.q > 0)
    for name in box.contents:     # contents turn round with the spoon (a flattened circle seen from the side)
        hx, hy = ctx.scene.rest_position(name)
        dx = hx - box.home[0]
        ctx.draw(name, box.home[0] + dx * math.cos(spin), hy + dx * math.sin(spin) * 0.4)
    if box.liquid is not None and ctx.q > 0:  # a swirl highlight on the liquid
        draw_blob(ctx.img, cx - 0.5 * crx * math.cos(phi), cy - 0.4 * cry * math.sin(phi),
                  2.0 * ctx.u, 0.9 * ctx.u, shade(box.liquid, 1.2))
    ctx.draw_tool((cx + 0.55 * crx * math.cos(phi) - 3 * ctx.u, cy + 0.5 * cry * math.sin(phi) - 5 * ctx.u), 1.99)


def _fry(ctx: Ctx) -> None:
    obj, pan = ctx.step.object, ctx.step.target or "pan"
    inst = ctx.scene.instances[obj]
    shake = (1.2 * ctx.u * math.sin(2 * math.pi * 3 * ctx.tau) * (ctx.q > 0), 0.0)
    px, py = ctx.scene.instances[pan].home
    glow = mix((255, 120, 20), (255, 40, 0), 0.5 + 0.5 * math.sin(ctx.tau * 9))
    draw_blob(ctx.img, px + shake[0], py + 3 * ctx.u, 15 * ctx.u, 6.5 * ctx.u, glow)
    ctx.draw_rest({obj}, shake, pan)
    x1, y1 = _slot_in(ctx.scene, obj, pan)
    p = 1.0 if inst.location == pan else _smooth(ctx.tau / 0.6)
    x0, y0 = ctx.scene.rest_position(obj)
    cooked = inst.cooked + (min(1.0, inst.cooked + 0.7) - inst.cooked) * ctx.q
    ctx.draw(obj, _lerp(x0, x1, p) + shake[0], _lerp(y0, y1, p) - math.sin(math.pi * p) * 10 * ctx.u,
             scale=_lerp(ctx.scene.rest_scale(obj), CONTENT_SCALE, p), cooked=cooked)
    if 0 < ctx.q < 1:  # sizzle
        n = 7
        xs = px + ctx.rng.uniform(-10, 10, n) * ctx.u
        ys = py - ctx.rng.uniform(1, 9, n) * ctx.u
        draw_dots(ctx.img, xs, ys, (255, 245, 190), radius=1)


def _flip(ctx: Ctx) -> None:
    obj = ctx.step.object
    inst = ctx.scene.instances[obj]
    pan = inst.location or "pan"
    x, y = _slot_in(ctx.scene, obj, pan) if inst.location != pan else ctx.scene.rest_position(obj)
    ctx.draw_rest({obj, "spatula"})
    t = max(0.0, ctx.tau - TRAVEL) if 0 < ctx.q < 1 else 0.0
    phase, turns = math.modf(t / 1.6)
    height = math.sin(math.pi * phase) * 14 * ctx.u
    side = (int(turns) + (phase >= 0.5)) % 2
    cooked = inst.cooked if side == 0 else min(1.0, inst.cooked + 0.4)
    ctx.draw(obj, x, y - height, scale=CONTENT_SCALE, sy=max(0.12, abs(math.cos(math.pi * phase))), cooked=cooked)
    ctx.draw_tool((x + 4 * ctx.u, y + 2 * ctx.u - 0.6 * height), -0.3)


def _roll(ctx: Ctx) -> None:
    obj = ctx.step.object
    inst = ctx.scene.instances[obj]
    x, y, s = ctx.carried(ctx.scene.work, 1.3)
    ctx.draw_rest({obj, "rolling_pin"})
    ctx.draw(obj, x, y, scale=s, flat=inst.flat + (1 - inst.flat) * ctx.q)
    ctx.draw_tool((x + 9 * ctx.u * math.sin(2 * math.pi * 0.9 * ctx.tau), y - 1 * ctx.u), 0.0)


def _squeeze(ctx: Ctx) -> None:
    obj, target = ctx.step.object, ctx.step.target
    cx, cy, _, _ = ctx.inner(target)
    box = ctx.scene.instances[target]
    juice = JUICE if box.liquid is None else mix(box.liquid, JUICE, 0.5)
    _draw_filling(ctx, {obj}, juice, ctx.q if box.liquid is None else 1.0)
    x, y, s = ctx.carried((cx, cy - 18 * ctx.u), 1.0)
    squash = abs(math.sin(2 * math.pi * 1.4 * ctx.tau)) if 0 < ctx.q < 1 else 0.0
    ctx.draw(obj, x, y, scale=s, sx=1 + 0.35 * squash, sy=1 - 0.3 * squash)
    if 0 < ctx.q < 1:
        _falling(ctx, x, y + 5 * ctx.u, cy, 6, 40, JUICE, spread=1.5)


# ------------------------------------------------------------------ lasting effects
def _put_into(scene: Scene, obj: str, container: str) -> None:
    inst = scene.instances[obj]
    if inst.location == container:
        return
    if inst.location:
        scene.instances[inst.location].contents.remove(obj)
    inst.location = container
    scene.instances[container].contents.append(obj)


def _finish(scene: Scene, step: PlannedStep) -> None:
    inst = scene.instances[step.object]
    if step.verb == "cut":
        inst.pieces = 4
    elif step.verb == "peel":
        inst.peeled = 1.0
    elif step.verb == "roll":
        inst.flat = 1.0
    elif step.verb == "add":
        _put_into(scene, step.object, step.target)
    elif step.verb == "pour":
        box = scene.instances[step.target]
        new = inst.kind.liquid
        box.liquid = new if box.liquid is None else mix(box.liquid, new, 0.5)
    elif step.verb == "squeeze":
        box = scene.instances[step.target]
        box.liquid = JUICE if box.liquid is None else mix(box.liquid, JUICE, 0.5)
    elif step.verb == "stir" and inst.liquid is not None and inst.contents:
        mean = tuple(int(np.mean([scene.instances[c].colors[0][i] for c in inst.contents])) for i in range(3))
        inst.liquid = mix(inst.liquid, mean, 0.3)  # type: ignore[arg-type]
    elif step.verb == "fry":
        _put_into(scene, step.object, step.target or "pan")
        inst.cooked = min(1.0, inst.cooked + 0.7)
    elif step.verb == "flip":
        _put_into(scene, step.object, inst.location or "pan")
        inst.cooked = min(1.0, inst.cooked + 0.2)


ANIMATORS: dict[str, Callable[[Ctx], None]] = {
    "cut": _cut, "peel": _peel, "wash": _wash, "add": _add, "pour": _pour,
    "stir": _stir, "fry": _fry, "flip": _flip, "roll": _roll, "squeeze": _squeeze,
}
assert set(ANIMATORS) == set(VERB_BY_NAME), "every verb needs an animator"


def animate(scene: Scene, step: PlannedStep, tau: float, rng: np.random.Generator, img: np.ndarray) -> dict[str, Box]:
    """Draw the moving part of one frame of `step`; returns the boxes of what it drew."""
    ctx = Ctx(scene, step, tau, step.end - step.start, rng, img, {})
    ANIMATORS[step.verb](ctx)
    return ctx.boxes


def finish(scene: Scene, step: PlannedStep) -> None:
    """Apply the lasting effect of a completed step to the scene's state."""
    _finish(scene, step)
