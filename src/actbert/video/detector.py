"""Region detector: torchvision Faster R-CNN turned into ActBERT's region-feature extractor.

ActBERT's local (region) stream needs, per key frame, the top-K detected boxes with (a) the box head's
RoI feature, (b) the detector's class distribution (the target of masked region classification) and
(c) a 5-D location. This module builds the detector (`build_detector`), loads weights without ever
downloading (`load_detector_weights`), extracts regions (`RegionExtractor`) and saves / loads the
extractor as one folder (`save_region_extractor` / `load_region_extractor`). Training lives in
`actbert.video.detector_train`.

Class convention (torchvision's): `num_classes` counts the background, which is class 0, so a
detector for 3 object kinds has `num_classes=4` and `class_names[0] == "__background__"`.
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.models import detection as tvd
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import MultiScaleRoIAlign, nms

from actbert.errors import ConfigError, InputError, read_json, read_safetensors, torch_load_weights
from actbert.utils import atomic_path, atomic_write_json

__all__ = [
    "BACKBONES", "BackboneSpec", "FrameRegions", "RegionExtractor", "box_location5", "build_detector", "image_tensor",
    "load_detector_weights", "load_region_extractor", "save_region_extractor", "default_class_names",
    "torchvision_weights_path",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "actbert-region-extractor"


class TinyBackbone(nn.Module):
    """A 6-conv CNN with one stride-8 feature map (no FPN).

    Why it exists: the torchvision backbones are too slow to *train* from scratch on a 2-core CPU, and
    no pretrained weights can be downloaded here. The project's synthetic world renders simple coloured
    shapes on 112x112 frames; this backbone learns them in a minute or two, so the whole pipeline
    (world -> detector -> features -> pre-training) runs and is tested end to end on a laptop. It is
    not meant for real video; use a torchvision backbone with COCO weights there.
    GroupNorm instead of BatchNorm: detection batches are small and the statistics would be noisy.
    """

    def __init__(self, width: int = 16, out_channels: int = 64) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(8, cout),
                    nn.ReLU(inplace=True)]

        w = width
        # Downsample early (most of a CPU step is conv backward at high resolution); the shapes are
        # told apart by colour and outline, which survive stride 8 at 112 px.
        self.body = nn.Sequential(*block(3, w, 2), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 1),
                                  *block(2 * w, 4 * w, 2), *block(4 * w, out_channels, 1))
        self.out_channels = out_channels  # FasterRCNN reads this attribute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _build_tiny(num_classes: int, **kwargs) -> tvd.FasterRCNN:
    backbone = TinyBackbone()
    # One feature map, so one tuple of sizes; 16-64 px covers the world's shapes on 112 px frames.
    anchors = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    # One bilinear sample per bin: RoIAlign's backward is single-threaded scatter code on CPU and was
    # over half of a training step with 2x2 samples; the world's objects span only 2-5 feature cells.
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=1)
    box_head = TwoMLPHead(backbone.out_channels * 7 * 7, 256)
    predictor = FastRCNNPredictor(256, num_classes)
    # Smaller sampling budgets than torchvision's defaults (2000 proposals, 512 RoIs): few objects per
    # frame, and on CPU these dominate the step time.
    settings = dict(rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
                    rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128, box_batch_size_per_image=64)
    settings.update(kwargs)
    return tvd.FasterRCNN(backbone, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=pool,
                          box_head=box_head, box_predictor=predictor, **settings)


def _build_tv(fn: Callable[..., tvd.FasterRCNN]) -> Callable[..., tvd.FasterRCNN]:
    def build(num_classes: int, **kwargs) -> tvd.FasterRCNN:
        # weights / weights_backbone stay None: building must never download; weights are loaded after.
        return fn(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)
    return build


@dataclass(frozen=True)
class BackboneSpec:
    build: Callable[..., tvd.FasterRCNN]
    min_size: int
    max_size: int
    weights_enum: object | None  # torchvision COCO weights enum member, None when there is none
    note: str


BACKBONES: dict[str, BackboneSpec] = {
    "tiny": BackboneSpec(_build_tiny, 112, 200, None, "small CNN for the synthetic world; trains on CPU in minutes"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": BackboneSpec(
        _build_tv(tvd.fasterrcnn_mobilenet_v3_large_320_fpn), 320, 640,
        tvd.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1, "CPU default for real video"),
    "fasterrcnn_mobilenet_v3_large_fpn": BackboneSpec(
        _build_tv(tvd.fasterrcnn_mobilenet_v3_large_fpn), 800, 1333,
        tvd.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1, "higher resolution mobilenet"),
    "fasterrcnn_resnet50_fpn_v2": BackboneSpec(
        _build_tv(tvd.fasterrcnn_resnet50_fpn_v2), 800, 1333,
        tvd.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1, "quality; slow on CPU"),
}


def default_class_names(num_classes: int) -> list[str]:
    return ["__background__"] + [f"class_{i}" for i in range(1, num_classes)]


def build_detector(backbone: str, num_classes: int, weights: str | os.PathLike | None = None,
                   min_size: int | None = None, max_size: int | None = None) -> tvd.FasterRCNN:
    """Build a Faster R-CNN with the named backbone (see `BACKBONES`), `num_classes` including background.

    weights: None (random init), a local file (.safetensors, or a torchvision .pth state dict), an
    extractor folder, or "torchvision" (the COCO weights, only if already in the torch hub cache).
    91-class COCO weights with a different `num_classes` load everything but the class-specific predictor.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown detector backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes} must count the background and at least one class")
    spec = BACKBONES[backbone]
    model = spec.build(num_classes, min_size=min_size or spec.min_size, max_size=max_size or spec.max_size)
    if weights is not None:
        load_detector_weights(model, backbone, weights)
    return model


def torchvision_weights_path(backbone: str) -> Path:
    """Where torchvision's COCO weights for `backbone` must be in the local torch hub cache."""
    spec = BACKBONES[backbone]
    if spec.weights_enum is None:
        raise ValueError(f"backbone {backbone!r} has no torchvision weights; train it with `actbert train-detector`")
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(spec.weights_enum.url)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors or a torch .pth (weights_only), naming the file on failure."""
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"detector weights file not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path, "detector weights")
    state = torch_load_weights(path, "detector weights")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # torchvision reference-training checkpoints wrap the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, "does not hold a state dict of tensors")
    return state


def load_detector_weights(model: tvd.FasterRCNN, backbone: str, weights: str | os.PathLike,
                          allow_new_predictor: bool = True) -> dict[str, list[str]]:
    """Load `weights` into `model`; returns {"skipped": keys left at their initialisation}.

    Only the class-specific predictor may differ in shape (and only with `allow_new_predictor`); any
    other mismatch, missing or unexpected key is an error naming the file. BatchNorm's
    `num_batches_tracked` may be missing: torchvision's COCO files store frozen BN without it.
    """
    if str(weights) == "torchvision":
        path = torchvision_weights_path(backbone)
        if not path.is_file():
            raise FileNotFoundError(
                f"torchvision weights for {backbone} are not in the local cache; nothing is downloaded. Put "
                f"{os.path.basename(str(path))} (from {BACKBONES[backbone].weights_enum.url}) at {path}, "
                f"or pass the file path as weights")
    else:
        path = Path(weights)
    state = _read_state_dict(path)
    own = model.state_dict()
    skipped, problems = [], []
    for key, value in state.items():
        if key not in own:
            problems.append(f"unexpected tensor {key}")
        elif own[key].shape != value.shape:
            if allow_new_predictor and key.startswith("roi_heads.box_predictor."):
                skipped.append(key)
            else:
                problems.append(f"{key} has shape {tuple(value.shape)}, model expects {tuple(own[key].shape)}")
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    problems += [f"missing tensor {k}" for k in missing]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(path, f"detector weights do not fit backbone {backbone!r} "
                               f"with {model.roi_heads.box_predictor.cls_score.out_features} classes: {shown}")
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return {"skipped": skipped}


@contextlib.contextmanager
def roi_settings(model: tvd.FasterRCNN, **attrs) -> Iterator[None]:
    """Temporarily set RoI-head post-processing attributes (score_thresh, nms_thresh, detections_per_img)."""
    old = {k: getattr(model.roi_heads, k) for k in attrs}
    try:
        for k, v in attrs.items():
            setattr(model.roi_heads, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(model.roi_heads, k, v)


@dataclass
class FrameRegions:
    """The kept regions of one frame; K <= top_k and K may be 0."""
    boxes: np.ndarray        # [K, 4] float32, x1 y1 x2 y2 in pixels of the input image
    features: np.ndarray     # [K, D] float32, box-head representation of exactly that box
    class_probs: np.ndarray  # [K, C] float32, softmax over all C classes incl. background (sums to 1)
    scores: np.ndarray       # [K] float32, detection score (prob. of the detected class), decreasing


def image_tensor(img: np.ndarray, index: int = 0) -> torch.Tensor:
    """A uint8 HxWx3 frame -> float CHW in [0, 1] (what torchvision detectors take); bad input names `index`."""
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        desc = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"image {index}: expected a uint8 HxWx3 array, got {desc}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image {index}: empty image of shape {img.shape}")
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)


def box_location5(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[K, 4] pixel boxes, (H, W) -> [K, 5] `[x1/W, y1/H, x2/W, y2/H, area/(W*H)]`, clipped to [0, 1]."""
    from actbert.data.windows import region_location  # the one definition, shared with the data layer

    h, w = image_size
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive (H, W), got {image_size}")
    return region_location(boxes, image_size)


class RegionExtractor:
    """Top-K regions per frame with their RoI feature, class distribution and score.

    Pipeline per batch: transform -> backbone -> RPN -> box head -> torchvision's per-class
    post-processing (score_thresh, per-class NMS) -> class-agnostic NMS with `nms_thresh` (so one object
    is not kept twice under two labels) -> top-K by score -> box head and predictor re-run on the
    final boxes, so each feature and class distribution describes its own (refined) box rather than
    the proposal it came from. The class distribution keeps the background (class 0): it is the
    detector's full belief, sums to 1 by construction, and a low-confidence region says so instead
    of being renormalised into a confident wrong object.
    """

    def __init__(self, model: tvd.FasterRCNN, top_k: int = 10, score_thresh: float = 0.0, nms_thresh: float = 0.5,
                 class_names: Sequence[str] | None = None, backbone: str | None = None, batch_size: int = 8) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.model = model.eval()
        self._top_k = int(top_k)
        self.score_thresh = float(score_thresh)
        self.nms_thresh = float(nms_thresh)
        self.batch_size = int(batch_size)
        self.backbone = backbone
        names = list(class_names) if class_names is not None else default_class_names(self.num_classes)
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for a detector with {self.num_classes} classes")
        self._class_names = names

    @property
    def top_k(self) -> int:
        return self._top_k

    @property
    def feature_dim(self) -> int:
        return int(self.model.roi_heads.box_predictor.cls_score.in_features)

    @property
    def num_classes(self) -> int:
        return int(self.model.roi_heads.box_predictor.cls_score.out_features)

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    def extract(self, images: Sequence[np.ndarray]) -> list[FrameRegions]:
        """One `FrameRegions` per image (uint8 HxWx3 arrays, any sizes), computed in batches."""
        tensors = [image_tensor(img, i) for i, img in enumerate(images)]
        out: list[FrameRegions] = []
        for start in range(0, len(tensors), self.batch_size):
            out.extend(self._extract_batch(tensors[start:start + self.batch_size]))
        return out

    @torch.inference_mode()
    def _extract_batch(self, images: list[torch.Tensor]) -> list[FrameRegions]:
        m = self.model
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        image_list, _ = m.transform(images)
        feats = m.backbone(image_list.tensors)
        if isinstance(feats, torch.Tensor):
            feats = OrderedDict([("0", feats)])
        proposals, _ = m.rpn(image_list, feats)
        rh = m.roi_heads
        x = rh.box_head(rh.box_roi_pool(feats, proposals, image_list.image_sizes))
        class_logits, box_regression = rh.box_predictor(x)
        with roi_settings(m, score_thresh=self.score_thresh, detections_per_img=max(100, 4 * self.top_k)):
            boxes, scores, _labels = rh.postprocess_detections(class_logits, box_regression, proposals,
                                                               image_list.image_sizes)
        kept_boxes, kept_scores = [], []
        for b, s in zip(boxes, scores):
            keep = nms(b, s, self.nms_thresh)[: self.top_k]  # nms returns indices by decreasing score
            kept_boxes.append(b[keep])
            kept_scores.append(s[keep])
        counts = [len(b) for b in kept_boxes]
        if sum(counts):
            rep = rh.box_head(rh.box_roi_pool(feats, kept_boxes, image_list.image_sizes))
            probs = torch.softmax(rh.box_predictor(rep)[0], dim=-1)
        else:
            rep = torch.zeros(0, self.feature_dim)
            probs = torch.zeros(0, self.num_classes)
        results = []
        for b, s, r, p, size, orig in zip(kept_boxes, kept_scores, rep.split(counts), probs.split(counts),
                                          image_list.image_sizes, original_sizes):
            b = resize_boxes(b, list(size), list(orig)) if len(b) else b.reshape(0, 4)
            b[:, 0::2] = b[:, 0::2].clamp(0, orig[1])
            b[:, 1::2] = b[:, 1::2].clamp(0, orig[0])
            results.append(FrameRegions(boxes=b.float().numpy().copy(), features=r.float().numpy().copy(),
                                        class_probs=p.float().numpy().copy(), scores=s.float().numpy().copy()))
        return results


def save_region_extractor(extractor: RegionExtractor, directory: str | os.PathLike) -> Path:
    """Write `model.safetensors` + `config.json` into `directory` (each atomically); returns the folder."""
    from safetensors.torch import save_file

    if extractor.backbone not in BACKBONES:
        raise ValueError(f"extractor.backbone must name one of {sorted(BACKBONES)} to be saved, got {extractor.backbone!r}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    m = extractor.model
    state = {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}
    with atomic_path(d / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    config = {
        "format": FORMAT, "version": 1, "backbone": extractor.backbone, "num_classes": extractor.num_classes,
        "class_names": extractor.class_names, "feature_dim": extractor.feature_dim,
        "min_size": int(m.transform.min_size[0]), "max_size": int(m.transform.max_size),
        "top_k": extractor.top_k, "score_thresh": extractor.score_thresh, "nms_thresh": extractor.nms_thresh,
    }
    atomic_write_json(d / CONFIG_FILE, config)
    return d


def load_region_extractor(directory: str | os.PathLike, top_k: int | None = None,
                          score_thresh: float | None = None, nms_thresh: float | None = None) -> RegionExtractor:
    """Rebuild a `RegionExtractor` saved by `save_region_extractor`; the keyword overrides change extraction only."""
    d = Path(directory)
    cfg_path = d / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no region extractor at {d}: {cfg_path} is missing")
    cfg = read_json(cfg_path)
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise ConfigError(f"{cfg_path} is not a region extractor config (format={got!r})")
    backbone, num_classes = cfg.get("backbone"), cfg.get("num_classes")
    if not isinstance(backbone, str) or backbone not in BACKBONES:
        raise ConfigError(f"{cfg_path}: backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= 100_000:
        raise ConfigError(f"{cfg_path}: num_classes must be an integer in [1, 100000], got {num_classes!r}")
    for k, lo, hi in (("min_size", 1, 16384), ("max_size", 1, 16384), ("top_k", 1, 10_000)):
        v = cfg.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi):
            raise ConfigError(f"{cfg_path}: {k} must be an integer in [{lo}, {hi}], got {v!r}")
    for k in ("score_thresh", "nms_thresh"):
        v = cfg.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
            raise ConfigError(f"{cfg_path}: {k} must be a number in [0, 1], got {v!r}")
    model = build_detector(backbone, num_classes, min_size=cfg.get("min_size"), max_size=cfg.get("max_size"))
    load_detector_weights(model, backbone, d / WEIGHTS_FILE, allow_new_predictor=False)
    return RegionExtractor(model, top_k=cfg.get("top_k", 10) if top_k is None else top_k,
                           score_thresh=cfg.get("score_thresh", 0.0) if score_thresh is None else score_thresh,
                           nms_thresh=cfg.get("nms_thresh", 0.5) if nms_thresh is None else nms_thresh,
                           class_names=cfg.get("class_names"), backbone=backbone)

