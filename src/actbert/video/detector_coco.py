"""COCO-style box annotations (plain json, no pycocotools), mAP@0.5, and a synthetic shapes set.

`read_coco` turns a COCO detection json into per-image pixel boxes with contiguous labels 1..C
(0 is the background, torchvision's convention). Bad items are skipped and counted, never fatal
unless nothing usable is left: a missing or unreadable image file, an annotation pointing at an
unknown image or category, a crowd box, a box that is degenerate after clipping to its image.
`evaluate_detections` is a small VOC-style (all-point interpolated) AP at one IoU threshold.
`make_shapes_coco` writes the kind of data the project's demo world renders (coloured shapes on
noise), used by the tests and the benchmark.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["CocoImage", "CocoSet", "read_coco", "load_image", "average_precision", "evaluate_detections",
           "make_shapes_coco"]


@dataclass
class CocoImage:
    path: Path
    height: int
    width: int
    boxes: np.ndarray   # [N, 4] float32 x1 y1 x2 y2 pixels
    labels: np.ndarray  # [N] int64 in 1..C


@dataclass
class CocoSet:
    source: Path
    images: list[CocoImage]
    class_names: list[str]            # index 0 is "__background__"
    category_ids: list[int]           # COCO category id of labels 1..C
    skipped: Counter = field(default_factory=Counter)


def load_image(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3; an unreadable file raises ValueError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Exception as exc:
        raise ValueError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from exc


def read_coco(json_path: str | Path) -> CocoSet:
    """Read a COCO detection json; `file_name`s are relative to the json's folder (or absolute)."""
    from PIL import Image

    path = Path(json_path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"annotation file {path} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"annotation file {path} is not valid json: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not data.get("categories"):
        raise ValueError(f"annotation file {path} needs 'images' and non-empty 'categories' lists (COCO format)")
    cats = sorted(data["categories"], key=lambda c: c["id"])
    cat_to_label = {c["id"]: i + 1 for i, c in enumerate(cats)}
    names = ["__background__"] + [str(c.get("name", c["id"])) for c in cats]
    skipped: Counter = Counter()

    entries: dict[object, dict] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise ValueError(f"{path}: images[{i}] needs 'id' and 'file_name'")
        file = path.parent / img["file_name"]
        try:
            with Image.open(file) as im:  # header only: catches missing, empty and non-image files early
                w, h = im.size
        except Exception:
            skipped["missing_or_unreadable_image"] += 1
            continue
        entries[img["id"]] = {"path": file, "h": h, "w": w, "boxes": [], "labels": []}

    for j, ann in enumerate(data.get("annotations") or []):
        entry = entries.get(ann.get("image_id"))
        if entry is None:
            skipped["annotation_unknown_or_skipped_image"] += 1
            continue
        if ann.get("category_id") not in cat_to_label:
            skipped["annotation_unknown_category"] += 1
            continue
        if ann.get("iscrowd", 0):
            skipped["crowd_annotation"] += 1
            continue
        bbox = ann.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in bbox):
            raise ValueError(f"{path}: annotations[{j}] (id {ann.get('id')}) has bbox {bbox!r}; expected [x, y, w, h]")
        x, y, bw, bh = (float(v) for v in bbox)
        x1, y1 = max(0.0, x), max(0.0, y)
        x2, y2 = min(float(entry["w"]), x + bw), min(float(entry["h"]), y + bh)
        if x2 - x1 < 1 or y2 - y1 < 1:
            skipped["box_empty_or_outside_image"] += 1
            continue
        if (x1, y1, x2, y2) != (x, y, x + bw, y + bh):
            skipped["box_clipped_to_image(kept)"] += 1
        entry["boxes"].append([x1, y1, x2, y2])
        entry["labels"].append(cat_to_label[ann["category_id"]])

    images = [CocoImage(e["path"], e["h"], e["w"], np.asarray(e["boxes"], np.float32).reshape(-1, 4),
                        np.asarray(e["labels"], np.int64)) for e in entries.values()]
    if not images:
        raise ValueError(f"annotation file {path} has no usable images (skipped: {dict(skipped)})")
    return CocoSet(path, images, names, [c["id"] for c in cats], skipped)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [N, 4] and [M, 4] x1y1x2y2 boxes."""
    import torch
    from torchvision.ops import box_iou

    return box_iou(torch.as_tensor(a, dtype=torch.float32).reshape(-1, 4),
                   torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4)).numpy()


def average_precision(scores: Sequence[float], is_tp: Sequence[bool], num_gt: int) -> float:
    """All-point interpolated AP (VOC 2010+): area under the precision envelope over recall.

    `scores` / `is_tp` describe every detection of one class (all images); `num_gt` is the number of
    ground-truth boxes of that class. NaN when there is no ground truth.
    """
    if num_gt <= 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    tp = np.asarray(is_tp, dtype=np.float64)[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = ctp / num_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope: best precision at recall >= r
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def evaluate_detections(predictions: Sequence[dict], ground_truth: Sequence[CocoImage], class_names: Sequence[str],
                        iou_thresh: float = 0.5, recall_score_thresh: float = 0.5) -> dict:
    """mAP@iou_thresh and per-class AP / recall.

    predictions[i]: {"boxes" [D,4], "labels" [D], "scores" [D]} for ground_truth[i]. Matching is greedy
    by decreasing score, each ground-truth box matched at most once (duplicates are false positives).
    Recall counts ground truth found by a detection of score >= `recall_score_thresh` (a usable
    operating point; recall over all low-score detections would be near 1 and say little).
    mAP averages the classes that have ground truth.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truth)} images")
    per_class = {c: {"scores": [], "tp": [], "num_gt": 0, "found": 0} for c in range(1, len(class_names))}
    for pred, gt in zip(predictions, ground_truth):
        for c, acc in per_class.items():
            g = gt.boxes[gt.labels == c]
            sel = np.asarray(pred["labels"]) == c
            d, s = np.asarray(pred["boxes"], np.float32)[sel].reshape(-1, 4), np.asarray(pred["scores"])[sel]
            acc["num_gt"] += len(g)
            order = np.argsort(-s, kind="stable")
            d, s = d[order], s[order]
            ious = iou_matrix(d, g) if len(d) and len(g) else np.zeros((len(d), len(g)))
            taken = np.zeros(len(g), bool)
            found = np.zeros(len(g), bool)
            for k in range(len(d)):
                cand = np.where(~taken & (ious[k] >= iou_thresh))[0] if len(g) else []
                hit = len(cand) > 0
                if hit:
                    best = cand[np.argmax(ious[k, cand])]
                    taken[best] = True
                    found[best] |= s[k] >= recall_score_thresh
                acc["scores"].append(float(s[k]))
                acc["tp"].append(hit)
            acc["found"] += int(found.sum())
    ap = {class_names[c]: average_precision(a["scores"], a["tp"], a["num_gt"]) for c, a in per_class.items()}
    recall = {class_names[c]: (a["found"] / a["num_gt"] if a["num_gt"] else float("nan")) for c, a in per_class.items()}
    valid = [v for v in ap.values() if not math.isnan(v)]
    return {"map50" if iou_thresh == 0.5 else f"map{int(iou_thresh * 100)}": float(np.mean(valid)) if valid else 0.0,
            "ap_per_class": ap, "recall_per_class": recall,
            "num_gt_per_class": {class_names[c]: a["num_gt"] for c, a in per_class.items()},
            "iou_thresh": iou_thresh, "recall_score_thresh": recall_score_thresh}


SHAPE_CLASSES = [("red_square", (220, 40, 40)), ("green_circle", (40, 200, 60)), ("blue_bar", (50, 80, 230))]


def make_shapes_coco(directory: str | Path, num_images: int = 300, size: int = 112, seed: int = 0,
                     max_objects: int = 3) -> Path:
    """Write `num_images` PNG frames of coloured shapes on noise + `annotations.json`; returns the json path.

    Three classes (square, circle, horizontal bar) of distinct colours, 14-40 px, 0..max_objects per
    frame (some frames are empty: negatives matter for detection).
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    d = Path(directory)
    (d / "images").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    images, anns = [], []
    for i in range(num_images):
        img = rng.integers(0, 110, size=(size, size, 3)).astype(np.int16)
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(0, max_objects + 1))):
            c = int(rng.integers(0, len(SHAPE_CLASSES)))
            s = int(rng.integers(14, 41))
            w, h = (s, max(8, s // 3)) if c == 2 else (s, s)
            for _try in range(20):  # no overlaps, so every annotated box is fully visible
                x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                if all(x + w <= px or px + pw <= x or y + h <= py or py + ph <= y for px, py, pw, ph in placed):
                    break
            else:
                continue
            placed.append((x, y, w, h))
            colour = np.array(SHAPE_CLASSES[c][1]) + rng.integers(-25, 26, size=3)
            if c == 1:
                mask = (xx - x - w / 2 + 0.5) ** 2 + (yy - y - h / 2 + 0.5) ** 2 <= (w / 2) ** 2
            else:
                mask = (xx >= x) & (xx < x + w) & (yy >= y) & (yy < y + h)
            img[mask] = colour
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": c + 1, "bbox": [x, y, w, h],
                         "area": float(w * h), "iscrowd": 0})
        name = f"images/{i:05d}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / name)
        images.append({"id": i, "file_name": name, "width": size, "height": size})
    cats = [{"id": k + 1, "name": n} for k, (n, _) in enumerate(SHAPE_CLASSES)]
    out = d / "annotations.json"
    out.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}), encoding="utf-8")
    return out
