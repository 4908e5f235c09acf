"""What exists in the world: object kinds (how each is drawn), verbs (with synonyms) and recipes.

Sizes are in pixels of a 112x112 frame and scale with the frame. Every object kind is a COCO
category (ids 1.. in `OBJECTS` order), including tools, containers and distractors, so the region
detector learns all of them; only ingredients, bottles and containers are step objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from actbert.world.draw import Color


@dataclass(frozen=True)
class Part:
    """One super-ellipse of an object, in the object's own frame (see `draw.draw_blob`)."""

    dx: float
    dy: float
    rx: float
    ry: float
    color: Color
    power: float = 2.0
    taper: float = 0.0
    half: str | None = None
    angle: float = 0.0
    textures: tuple[tuple[str, Color], ...] = ()
    inner: bool = False   # the inside of a container: takes the colour of poured liquid


@dataclass(frozen=True)
class ObjectKind:
    """A category: its role in recipes and its drawing."""

    name: str
    role: str                    # ingredient | bottle | container | tool | surface | distractor
    parts: tuple[Part, ...]
    flesh: Color | None = None   # colour revealed by peeling / cutting
    liquid: Color | None = None  # bottles: colour of what they pour

    @property
    def noun(self) -> str:
        return self.name.replace("_", " ")


def _p(*args, **kw) -> Part:
    return Part(*args, **kw)


OBJECTS: tuple[ObjectKind, ...] = (
    # ingredients
    ObjectKind("tomato", "ingredient", (_p(0, 0, 7, 6.5, (210, 35, 30), textures=(("shine", (250, 160, 150)),)),
                                        _p(0, -6, 2.5, 1.3, (40, 130, 40))), flesh=(240, 110, 90)),
    ObjectKind("cucumber", "ingredient", (_p(0, 0, 13, 4, (40, 125, 50), power=2.5,
                                             textures=(("stripes", (20, 85, 30)),)),), flesh=(175, 225, 150)),
    ObjectKind("carrot", "ingredient", (_p(0, 0, 4, 12, (240, 120, 20), taper=0.6, angle=math.pi / 2,
                                           textures=(("bands", (205, 95, 15)),)),
                                        _p(13, 0, 3, 1.5, (50, 150, 40))), flesh=(250, 175, 90)),
    ObjectKind("lemon", "ingredient", (_p(0, 0, 7, 5.5, (245, 215, 40), textures=(("dots", (215, 180, 20)),)),
                                       _p(7, 0, 1.5, 1.3, (225, 195, 30)), _p(-7, 0, 1.5, 1.3, (225, 195, 30))),
               flesh=(250, 245, 175)),
    ObjectKind("bread", "ingredient", (_p(0, 0, 9, 8, (225, 185, 120), power=5, textures=(("rim", (150, 90, 40)),)),),
               flesh=(240, 215, 160)),
    ObjectKind("egg", "ingredient", (_p(0, 0, 5, 6.5, (245, 240, 225), taper=0.15,
                                        textures=(("shine", (255, 255, 255)),)),), flesh=(250, 200, 40)),
    ObjectKind("onion", "ingredient", (_p(0, 0, 7, 7, (150, 60, 120), textures=(("rings", (190, 120, 170)),)),
                                       _p(0, -7, 1.5, 2.5, (120, 90, 60))), flesh=(235, 220, 235)),
    ObjectKind("potato", "ingredient", (_p(0, 0, 8, 6, (170, 130, 80), textures=(("dots", (120, 90, 50)),)),),
               flesh=(240, 225, 160)),
    ObjectKind("dough", "ingredient", (_p(0, 0, 8, 6, (240, 222, 185), power=2.2,
                                          textures=(("shine", (252, 245, 225)),)),), flesh=(240, 222, 185)),
    # bottles: what they pour has the `liquid` colour
    ObjectKind("oil", "bottle", (_p(0, 2, 3.5, 8, (225, 185, 40), power=6),
                                 _p(0, -8, 1.5, 3, (205, 165, 30), power=6),
                                 _p(0, -11, 1.8, 1, (60, 60, 60), power=6)), liquid=(235, 195, 50)),
    ObjectKind("milk", "bottle", (_p(0, 1, 5, 8.5, (248, 248, 248), power=8),
                                  _p(0, 2, 5, 2, (60, 110, 200), power=8),
                                  _p(0, -8.5, 4, 1.5, (200, 200, 210), power=8)), liquid=(250, 250, 250)),
    ObjectKind("water", "bottle", (_p(0, 2, 3.5, 9, (130, 185, 240), power=6, textures=(("bands", (100, 160, 225)),)),
                                   _p(0, -8, 1.6, 2.5, (30, 80, 200), power=6)), liquid=(90, 150, 255)),
    # containers
    ObjectKind("bowl", "container", (_p(0, 2, 13, 7, (232, 226, 210), half="bottom"),
                                     _p(0, 0, 13, 4.5, (200, 190, 175)),
                                     _p(0, 0, 11, 3.3, (150, 140, 130), inner=True))),
    ObjectKind("pan", "container", (_p(19, 0, 8, 1.6, (35, 35, 35), power=8),
                                    _p(0, 0, 13, 5, (50, 50, 55)),
                                    _p(0, 0, 11, 4, (85, 85, 90), inner=True))),
    ObjectKind("plate", "container", (_p(0, 0, 13, 5, (245, 245, 245), textures=(("rim", (210, 210, 220)),)),)),
    ObjectKind("cup", "container", (_p(6, 0, 2.2, 3.5, (70, 120, 200)),
                                    _p(0, 0, 5, 7, (70, 120, 200), power=6, taper=-0.2),
                                    _p(0, -6, 4.8, 1.4, (40, 70, 120), inner=True))),
    # tools (drawn hanging on the wall; brought to the work spot by the verbs that need them)
    ObjectKind("knife", "tool", (_p(3, 0, 9, 2.2, (195, 195, 205), power=4),
                                 _p(-10, 0, 5, 1.8, (45, 30, 25), power=6))),
    ObjectKind("spoon", "tool", (_p(7, 0, 3.2, 2.3, (205, 205, 215)), _p(-3, 0, 8, 0.9, (205, 205, 215), power=6))),
    ObjectKind("rolling_pin", "tool", (_p(0, 0, 12, 2.8, (205, 165, 115), power=8, textures=(("grain", (180, 140, 90)),)),
                                       _p(15, 0, 3, 1.3, (150, 110, 70), power=4),
                                       _p(-15, 0, 3, 1.3, (150, 110, 70), power=4))),
    ObjectKind("spatula", "tool", (_p(6, 0, 4, 3, (60, 60, 60), power=8), _p(-6, 0, 7, 1, (130, 85, 45), power=6))),
    ObjectKind("cutting_board", "surface", (_p(0, 0, 18, 8, (185, 135, 85), power=8,
                                               textures=(("grain", (155, 108, 62)),)),)),
    # distractors: never part of a step
    ObjectKind("plant", "distractor", (_p(0, 5, 5, 5, (180, 90, 50), power=6, taper=-0.3),
                                       _p(0, -4, 7, 5.5, (40, 150, 60), textures=(("dots", (20, 110, 40)),)))),
    ObjectKind("salt", "distractor", (_p(0, 1, 2.6, 5, (235, 235, 240), power=6),
                                      _p(0, -5, 2.6, 1.3, (150, 150, 165), power=6))),
    ObjectKind("jar", "distractor", (_p(0, 1, 5, 6, (200, 120, 60), power=6, textures=(("check", (170, 95, 45)),)),
                                     _p(0, -6, 5.2, 1.5, (200, 40, 40), power=8))),
    ObjectKind("clock", "distractor", (_p(0, 0, 6.5, 6.5, (250, 250, 250), textures=(("rim", (40, 40, 40)),)),
                                       _p(0, -2, 0.7, 3, (10, 10, 10), power=4))),
    ObjectKind("towel", "distractor", (_p(0, 0, 6, 9, (215, 60, 60), power=8, textures=(("check", (240, 240, 240)),)),)),
)
OBJECT_BY_NAME: dict[str, ObjectKind] = {o.name: o for o in OBJECTS}
CATEGORY_ID: dict[str, int] = {o.name: i + 1 for i, o in enumerate(OBJECTS)}


@dataclass(frozen=True)
class Verb:
    """An action class. `synonyms` are what narrators also say; `tool` is brought in to do it."""

    name: str
    synonyms: tuple[str, ...]
    template: str                # clean description; {o} object, {t} target container
    tool: str | None = None
    motion: str = ""             # what the motion looks like (documentation, shown in world.json)


VERBS: tuple[Verb, ...] = (
    Verb("cut", ("slice", "chop", "dice"), "cut the {o}", "knife",
         "a knife chops up and down across the object on the board; the object splits into pieces"),
    Verb("peel", ("skin", "strip"), "peel the {o}", "knife",
         "a knife circles the object; its colour changes progressively around it; peel bits fall"),
    Verb("wash", ("rinse", "clean"), "wash the {o}", None,
         "blue drops fall from a tap onto the object, which jitters"),
    Verb("add", ("put", "place", "drop"), "add the {o} to the {t}", None,
         "the object travels along an arc into the container and shrinks into it"),
    Verb("pour", ("drizzle", "splash"), "pour the {o} into the {t}", None,
         "a bottle moves over the container, tilts, and a stream of particles falls; the container fills"),
    Verb("stir", ("mix", "whisk"), "stir everything in the {o}", "spoon",
         "a spoon circles inside the container and its contents turn round"),
    Verb("fry", ("cook", "saute", "brown"), "fry the {o} in the {t}", None,
         "the object sits in the pan over a glowing burner; it browns; sizzle particles pop; the pan shakes"),
    Verb("flip", ("turn", "toss"), "flip the {o}", "spatula",
         "the object jumps out of the pan, squashes vertically as it turns over and shows its other side"),
    Verb("roll", ("flatten",), "roll out the {o}", "rolling_pin",
         "a rolling pin moves left and right over the object, which gets wider and thinner"),
    Verb("squeeze", ("press", "juice"), "squeeze the {o} into the {t}", None,
         "the object, held over the container, squashes rhythmically and yellow drops fall"),
)
VERB_BY_NAME: dict[str, Verb] = {v.name: v for v in VERBS}


@dataclass(frozen=True)
class RecipeStep:
    """A step of a recipe: verb + object (+ target container), possibly optional."""

    verb: str
    object: str
    target: str | None = None
    optional: bool = False

    @property
    def description(self) -> str:
        return VERB_BY_NAME[self.verb].template.format(o=OBJECT_BY_NAME[self.object].noun,
                                                       t=OBJECT_BY_NAME[self.target].noun if self.target else "")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.verb, self.object, self.target)


@dataclass(frozen=True)
class Recipe:
    """A task: an ordered list of steps. `task_id` is the numeric id used in every benchmark file."""

    recipe_id: str
    task_id: int
    title: str      # as narrated: "today we are making <title>"
    steps: tuple[RecipeStep, ...]


def _s(verb: str, obj: str, target: str | None = None, optional: bool = False) -> RecipeStep:
    return RecipeStep(verb, obj, target, optional)


RECIPES: tuple[Recipe, ...] = (
    Recipe("tomato_salad", 101, "a tomato salad", (
        _s("wash", "tomato", optional=True), _s("cut", "tomato"), _s("cut", "cucumber", optional=True),
        _s("add", "tomato", "bowl"), _s("pour", "oil", "bowl"), _s("stir", "bowl"))),
    Recipe("fried_egg", 102, "a fried egg", (
        _s("pour", "oil", "pan"), _s("add", "egg", "pan"), _s("fry", "egg", "pan"),
        _s("flip", "egg", optional=True), _s("add", "egg", "plate"))),
    Recipe("lemonade", 103, "lemonade", (
        _s("wash", "lemon", optional=True), _s("cut", "lemon"), _s("squeeze", "lemon", "cup"),
        _s("pour", "water", "cup"), _s("stir", "cup"))),
    Recipe("french_toast", 104, "french toast", (
        _s("pour", "milk", "bowl"), _s("add", "egg", "bowl"), _s("stir", "bowl"),
        _s("fry", "bread", "pan"), _s("flip", "bread", optional=True))),
    Recipe("carrot_soup", 105, "carrot soup", (
        _s("wash", "carrot", optional=True), _s("peel", "carrot"), _s("cut", "carrot"),
        _s("add", "carrot", "pan"), _s("pour", "water", "pan"), _s("stir", "pan"))),
    Recipe("fried_potatoes", 106, "fried potatoes", (
        _s("peel", "potato"), _s("cut", "potato"), _s("pour", "oil", "pan"),
        _s("fry", "potato", "pan"), _s("add", "potato", "plate", optional=True))),
    Recipe("flatbread", 107, "flatbread", (
        _s("roll", "dough"), _s("pour", "oil", "pan", optional=True), _s("fry", "dough", "pan"),
        _s("flip", "dough"), _s("add", "dough", "plate", optional=True))),
    Recipe("fried_onions", 108, "fried onions", (
        _s("peel", "onion"), _s("cut", "onion"), _s("pour", "oil", "pan", optional=True),
        _s("fry", "onion", "pan"), _s("stir", "pan"))),
    Recipe("lemon_dressing", 109, "a lemon dressing", (
        _s("cut", "lemon"), _s("squeeze", "lemon", "bowl"), _s("pour", "oil", "bowl"), _s("stir", "bowl"))),
)
RECIPE_BY_ID: dict[str, Recipe] = {r.recipe_id: r for r in RECIPES}


def global_step_ids() -> dict[tuple[str, str, str | None], int]:
    """1-based ids of the distinct steps (verb, object, target), in order of first appearance.

    Identical-looking steps of different recipes ("pour the oil into the pan") share one id, so a
    segmentation model is never asked to tell apart two classes that look exactly the same.
    """
    ids: dict[tuple[str, str, str | None], int] = {}
    for recipe in RECIPES:
        for step in recipe.steps:
            ids.setdefault(step.key, len(ids) + 1)
    return ids


def catalog_json() -> dict:
    """The catalog as written into world.json."""
    step_ids = global_step_ids()
    return {
        "objects": [{"name": o.name, "category_id": CATEGORY_ID[o.name], "role": o.role} for o in OBJECTS],
        "verbs": [{"name": v.name, "synonyms": list(v.synonyms), "tool": v.tool, "motion": v.motion} for v in VERBS],
        "recipes": [{"recipe_id": r.recipe_id, "task_id": r.task_id, "title": r.title,
                     "steps": [{"step_index": i, "verb": s.verb, "object": s.object, "target": s.target,
                                "optional": s.optional, "description": s.description,
                                "global_step_id": step_ids[s.key]} for i, s in enumerate(r.steps)]}
                    for r in RECIPES],
    }
