"""A video's scene: background, where each object rests, each object's changing state, and drawing.

Layout (fractions of the frame): tools and some distractors hang on the wall; ingredients, bottles
and the other distractors stand in a row at the back of the counter; containers sit at the front
left/right; a cutting board is the work spot in the front middle. Positions, sizes, colours and the
background change per video.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from actbert.world.catalog import OBJECT_BY_NAME, VERB_BY_NAME, ObjectKind
from actbert.world.config import WorldConfig
from actbert.world.draw import Box, Color, draw_blob, make_background, mix, union
from actbert.world.plan import VideoPlan

BROWN: Color = (120, 70, 30)
CONTENT_SCALE = 0.65   # an ingredient inside a container is drawn smaller
WALL_DISTRACTORS = {"clock", "towel"}


@dataclass
class Instance:
    """One object in one video, with the state its steps leave behind."""

    kind: ObjectKind
    home: tuple[float, float]
    scale: float
    angle: float
    colors: list[Color]
    pieces: int = 1            # >1 after cutting
    peeled: float = 0.0        # 0..1
    cooked: float = 0.0        # 0..1, browns the colour
    flat: float = 0.0          # 0..1 after rolling
    location: str | None = None            # the container it lies in, None = at home
    contents: list[str] = field(default_factory=list)  # containers: what lies inside
    liquid: Color | None = None            # containers: colour of what was poured in

    @property
    def name(self) -> str:
        return self.kind.name


class Scene:
    """Background + instances of one video, and the drawing of an instance in any pose/state."""

    def __init__(self, plan: VideoPlan, config: WorldConfig, rng: np.random.Generator):
        self.height, self.width = config.height, config.width
        # sizes in the catalog are pixels of a 112-pixel frame; 1.25 makes objects fill the frame better
        self.unit = 1.25 * min(self.height, self.width) / 112.0
        background, self.counter_y = make_background(rng, self.height, self.width)
        self.brightness = rng.uniform(0.85, 1.1)
        self.background = np.clip(background.astype(np.float32) * self.brightness, 0, 255).astype(np.uint8)
        h, w, u = self.height, self.width, self.unit
        self.work = (w * rng.uniform(0.45, 0.55), h * rng.uniform(0.78, 0.84))
        needed: list[str] = []
        for step in plan.steps:
            tool = VERB_BY_NAME[step.verb].tool
            for name in (step.object, step.target, tool):
                if name and name not in needed:
                    needed.append(name)
        by_role: dict[str, list[str]] = {}
        for name in needed:
            by_role.setdefault(OBJECT_BY_NAME[name].role, []).append(name)
        distractors = [n for n, o in OBJECT_BY_NAME.items() if o.role == "distractor"]
        n_distract = int(rng.integers(config.distractors[0], config.distractors[1] + 1))
        picked = [distractors[i] for i in rng.permutation(len(distractors))[:n_distract]]

        self.instances: dict[str, Instance] = {}
        self._add("cutting_board", (self.work[0], self.work[1] + 2 * u), rng, angle=0.0, jitter=False)
        wall = [w * (0.1 + 0.8 * i / 5) for i in rng.permutation(6)]
        wall_items = by_role.get("tool", []) + [d for d in picked if d in WALL_DISTRACTORS]
        for name, x in zip(wall_items, wall):
            is_tool = OBJECT_BY_NAME[name].role == "tool"
            self._add(name, (x, self.counter_y * (0.52 if is_tool else 0.4)), rng,
                      angle=math.pi / 2 if is_tool else 0.0)
        back = [w * (0.1 + 0.8 * i / 5) for i in rng.permutation(6)]
        row_items = by_role.get("ingredient", []) + by_role.get("bottle", []) + \
            [d for d in picked if d not in WALL_DISTRACTORS]
        for name, x in zip(row_items, back):  # a seventh item would not fit; recipes need at most five
            self._add(name, (x, self.counter_y + 7 * u), rng, angle=0.0)
        fronts = [(w * 0.17, h * 0.8), (w * 0.83, h * 0.8)]
        if rng.random() < 0.5:
            fronts.reverse()
        for name, pos in zip(by_role.get("container", []), fronts):
            self._add(name, pos, rng, angle=0.0)
        missing = [n for n in needed if n not in self.instances]
        if missing:
            raise ValueError(f"{plan.video_id}: no room in the scene for {missing}")

    def _add(self, name: str, home: tuple[float, float], rng: np.random.Generator, *, angle: float,
             jitter: bool = True) -> None:
        kind = OBJECT_BY_NAME[name]
        if jitter:
            home = (home[0] + rng.uniform(-2, 2) * self.unit, home[1] + rng.uniform(-1.5, 1.5) * self.unit)
        shift = rng.integers(-18, 19, size=3)
        colors = [tuple(int(np.clip(c + s, 0, 255)) for c, s in zip(part.color, shift)) for part in kind.parts]
        self.instances[name] = Instance(kind, home, float(rng.uniform(0.9, 1.12)), angle, colors)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- positions
    def rest_position(self, name: str) -> tuple[float, float]:
        """Where an object lies now: home, or its slot inside the container holding it."""
        inst = self.instances[name]
        if inst.location is None:
            return inst.home
        box = self.instances[inst.location]
        i = box.contents.index(name)
        n = len(box.contents)
        return (box.home[0] + (i - (n - 1) / 2) * 6 * self.unit, box.home[1] - 1 * self.unit)

    def rest_scale(self, name: str) -> float:
        return CONTENT_SCALE if self.instances[name].location else 1.0

    def group(self, names: set[str]) -> set[str]:
        """`names` plus the containers holding them and everything inside those containers, so a
        group can be redrawn on its own in the right order."""
        out = set(names)
        changed = True
        while changed:
            changed = False
            for n in list(out):
                inst = self.instances[n]
                extra = set(inst.contents) | ({inst.location} if inst.location else set())
                if not extra <= out:
                    out |= extra
                    changed = True
        return out

    def draw_order(self, names: set[str] | None = None) -> list[str]:
        """Instances in painting order: board, wall, back row, containers each followed by its contents."""
        keep = set(self.instances) if names is None else names
        order: list[str] = []
        for name, inst in self.instances.items():
            if inst.location is None and inst.kind.role != "container" and name in keep:
                order.append(name)
        for name, inst in self.instances.items():
            if inst.kind.role == "container" and name in keep:
                order.append(name)
                order.extend(c for c in inst.contents if c in keep)
        return order

    # ---------------------------------------------------------------- drawing
    def draw(self, img: np.ndarray, name: str, x: float | None = None, y: float | None = None, *,
             scale: float | None = None, angle: float | None = None, sx: float = 1.0, sy: float = 1.0,
             pieces: int | None = None, peeled: float | None = None, cooked: float | None = None,
             flat: float | None = None, liquid: Color | None = None, fill: float = 1.0) -> Box | None:
        """Draw one instance; every argument left as None takes the instance's resting value/state.

        Returns the tight box of the pixels drawn (the COCO box of this object in this frame).
        """
        inst = self.instances[name]
        kind = inst.kind
        if x is None or y is None:
            x, y = self.rest_position(name)
        scale = self.rest_scale(name) if scale is None else scale
        angle = inst.angle if angle is None else angle
        pieces = inst.pieces if pieces is None else pieces
        peeled = inst.peeled if peeled is None else peeled
        cooked = inst.cooked if cooked is None else cooked
        flat = inst.flat if flat is None else flat
        liquid = inst.liquid if liquid is None else liquid
        s = self.unit * inst.scale * scale
        sx *= 1.0 + 0.8 * flat
        sy *= 1.0 - 0.55 * flat
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        boxes = []
        for k, part in enumerate(kind.parts):
            if pieces > 1 and k > 0 and kind.role == "ingredient":
                continue  # a cut object loses its stem/leaves/tips: only the body is sliced
            color = self._light(inst.colors[k])
            if cooked > 0:
                color = mix(color, BROWN, 0.75 * cooked)
            if part.inner and liquid is not None:
                color = mix(color, self._light(liquid), fill)
            rotated = abs(math.sin(part.angle)) > 0.7
            px, py = part.dx * s * sx, part.dy * s * sy
            cx, cy = x + px * cos_a - py * sin_a, y + px * sin_a + py * cos_a
            rx = part.rx * s * (sy if rotated else sx)
            ry = part.ry * s * (sx if rotated else sy)
            common = dict(angle=angle + part.angle, power=part.power, taper=part.taper, half=part.half,
                          textures=tuple((t, self._light(c)) for t, c in part.textures))
            wedge = 2 * math.pi * peeled if (k == 0 and kind.flesh and peeled > 0) else 0.0
            wedge_color = self._light(kind.flesh) if kind.flesh else None
            if pieces > 1 and k == 0:
                gap = 2.6 * self.unit * scale
                for i in range(pieces):
                    off = (i - (pieces - 1) / 2) * gap
                    lo, hi = -1 + 2 * i / pieces, -1 + 2 * (i + 1) / pieces
                    boxes.append(draw_blob(img, cx + off * cos_a, cy + off * sin_a, rx, ry, color,
                                           u_range=(lo, hi), slice_axis="v" if rotated else "u",
                                           wedge=wedge, wedge_color=wedge_color, **common))
            else:
                boxes.append(draw_blob(img, cx, cy, rx, ry, color, wedge=wedge, wedge_color=wedge_color, **common))
        return union(boxes)

    def _light(self, color: Color) -> Color:
        return tuple(int(min(255, c * self.brightness)) for c in color)  # type: ignore[return-value]

    def draw_static(self, exclude: set[str]) -> tuple[np.ndarray, dict[str, Box]]:
        """Background with every instance not in `exclude` at rest; returns the image and its boxes."""
        img = self.background.copy()
        boxes: dict[str, Box] = {}
        for name in self.draw_order(set(self.instances) - exclude):
            box = self.draw(img, name)
            if box is not None:
                boxes[name] = box
        return img, boxes
