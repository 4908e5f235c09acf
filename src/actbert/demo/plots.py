"""The demo's figures: retrieval rank histogram, segmentation timeline, action->region attention on a frame.

All drawn on matplotlib's Agg canvas directly (no pyplot), so a caller's backend is left alone. The
pre-training curves come from the training library (`curves.png` of the run) and are only copied.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from actbert.utils import atomic_path


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def copy_curves(out: Path, variant: str, path: Path) -> Path | None:
    src = out / "runs" / variant / "curves.png"
    if not src.is_file():
        return None
    shutil.copyfile(src, path)
    return path


def rank_histogram(ranks: dict[str, list[float]], n: int, path: Path) -> Path:
    """Histogram of the true video's rank per text query, one series per model, with the uniform expectation."""
    fig = _figure((7, 3.4))
    ax = fig.add_subplot()
    bins = np.linspace(0.5, n + 0.5, min(n, 20) + 1)
    for name, r in ranks.items():
        ax.hist(np.asarray(r), bins=bins, histtype="step", linewidth=2, label=name)
    ax.axhline(len(next(iter(ranks.values()))) / (len(bins) - 1), color="grey", linestyle="--",
               label="chance (uniform)")
    ax.set_xlabel(f"rank of the true video among {n} (1 = best)")
    ax.set_ylabel("text queries")
    ax.set_title("zero-shot text->video retrieval on the test videos")
    ax.legend(fontsize=8)
    return _save(fig, path)


def timeline(pred, truth, step_names: dict, path: Path, title: str) -> Path:
    from actbert.tasks.segmentation import plot_timeline

    return plot_timeline(np.asarray(pred), np.asarray(truth), step_names, path, title)


def _keyframe(video_path: Path, t: float, every: float) -> np.ndarray:
    """The key frame at time `t`, decoded from the mp4 the way extraction decoded it."""
    from actbert.video.decode import DecodeSpec, KeyFrame, stream_video

    best = None
    for item in stream_video(video_path, DecodeSpec(fps=8, clip_frames=1, resize=16, crop=16, keyframe_every_s=every)):
        if isinstance(item, KeyFrame) and (best is None or abs(item.time - t) < abs(best.time - t)):
            best = item
    if best is None:
        raise ValueError(f"{video_path}: no key frame decoded")
    return best.image


@torch.no_grad()
def attention_on_frame(model, tok, store, clip, video_path: Path, keyframe_every: float, path: Path,
                       class_names: list[str] | None = None) -> dict:
    """Draw the [ACT] token's attention over the regions (last TNT block, heads averaged) on a key frame,
    each box labelled with its detected class (`class_names`, the detector's) and weight.

    `attentions[i].action_to_region` is [B, heads, 1 + A, 1 + N] with the global region first; row 0 is
    the [ACT] token. Its weights sum to 1 over the global token and the regions of every key frame of the
    window; the frame drawn is the one whose boxes receive the most, so its boxes sum to less than 1 (the
    figure says how much goes elsewhere).
    """
    from actbert.tasks import scoring as S

    c = model.config
    v = store[clip.video_id]
    item = S.window_inputs(v, clip.start, clip.end, c.max_actions, c.max_regions, c.max_region_frames,
                           region_classes=True)
    n_r = item["region"].shape[0]
    vb = S.collate_windows([item], max(1, item["action"].shape[0]), max(1, n_r))
    ids, mask = S.tokenize(tok, [clip.text], c.max_text_len)
    enc = model.actbert
    o = enc.fuse(enc.encode_text(ids, mask), enc.encode_video(vb["action_feats"], vb["action_mask"],
                 vb["region_feats"], vb["region_loc"], vb["region_mask"], vb["region_frame"]), output_attentions=True)
    att = o.attentions[-1].action_to_region[0].float().mean(0)[0]  # [1 + N]
    w_global, w = float(att[0]), att[1:1 + n_r].numpy()
    frames = item["region_frame"]
    best = int(np.bincount(frames, weights=w).argmax()) if n_r else 0
    ft = np.asarray(v.frame_times, dtype=np.float64)
    lo = clip.start if clip.start is not None else 0.0
    hi = clip.end if clip.end is not None else float(v.duration)
    in_window = np.flatnonzero((ft >= lo) & (ft <= hi))
    t = float(ft[in_window[best]] if len(in_window) > best else ft[np.argmin(np.abs(ft - (lo + hi) / 2))])
    image = _keyframe(video_path, t, keyframe_every)
    from matplotlib.patches import Rectangle

    H, W = image.shape[:2]
    fig = _figure((5.2, 6.2))
    ax = fig.add_subplot()
    ax.imshow(image)
    sel = np.flatnonzero(frames == best)
    top = w[sel].max() if len(sel) else 1.0
    boxes = []
    for k in sel:
        x1, y1, x2, y2 = item["region_loc"][k, :4] * [W, H, W, H]
        share = float(w[k] / max(top, 1e-9))
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=True, facecolor=(1, 0.2, 0, 0.35 * share),
                               edgecolor=(1, 0.1, 0, 0.3 + 0.7 * share), linewidth=0.5 + 3 * share))
        dist = item["region_cls"][k]
        # the most likely object class: torchvision detectors put "__background__" first, which is not a label
        skip = 1 if class_names and class_names[0] == "__background__" and len(dist) > 1 else 0
        cls = skip + int(np.argmax(dist[skip:]))
        name = class_names[cls] if class_names and cls < len(class_names) else f"class {cls}"
        ax.text(x1, y1 - 1, f"{name} {w[k]:.2f}", color="yellow", fontsize=7, va="bottom",
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "linewidth": 0})
        boxes.append({"box": [float(x1), float(y1), float(x2), float(y2)], "weight": float(w[k]), "class": name})
    ax.set_axis_off()
    here = float(w[sel].sum())
    ax.set_title(f"[ACT] -> region attention, {clip.video_id} t={t:.0f}s\n\"{clip.text}\"", fontsize=8)
    fig.text(0.5, 0.01, f"Weights: share of the action token's attention (last block, heads averaged).\n"
             f"They sum to 1 over all the window's key frames: this frame's boxes get {here:.2f}, the\n"
             f"global region token {w_global:.2f}, the boxes of the other key frames {max(0.0, 1 - here - w_global):.2f}.",
             ha="center", va="bottom", fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return {"video_id": clip.video_id, "time": t, "caption": clip.text, "global_weight": w_global,
            "frame_weight": here, "boxes": boxes}
