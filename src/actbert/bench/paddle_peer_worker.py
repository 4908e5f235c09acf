"""PaddleVideo's ActBERT training step, run inside the peer's own virtualenv (`.venv-paddle`).

Started by `actbert bench peer-paddle` (bench/peer_paddle.py) as `<venv>/bin/python THIS_FILE ...`; it
imports only paddle, numpy and the standard library, never `actbert` or torch. PaddleVideo's code is
not copied here: it is imported from the `ppvideo==2.3.1` wheel installed in that venv
(`ppvideo/paddlevideo/modeling/backbones/actbert.py`, `losses/actbert_loss.py`, `weight_init.py`).
Only the registry decorators and the checkpoint loader its modules import are stubbed, so that the
wheel's package `__init__`s (which pull in opencv, decord, av ...) never run.

The step is PaddleVideo's `ActBert.train_step` + its training loop for `configs/multimodal/actbert/
actbert.yaml`: backbone forward, `ActBertLoss`, mean, backward, `paddle.optimizer.Adam` with L2 decay
1e-4 (the config's OPTIMIZER), `clear_grad`. fp32 only: Paddle 3.3.1's `amp.auto_cast` is a no-op on CPU ("amp_guard can only be
enabled on CUDAPlace ..."), so the peer has no bf16 step here to compare with.

Protocol (one JSON object per line on stdout): after setup and warm-up it prints
{"ready": ..., "params": N, "shapes": {name: shape}}; then for each stdin line "run STEPS" it prints
{"step_s": [...], "peak_rss_gib": x}; "quit" ends it.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import sys
import time
import types
from pathlib import Path

PREFIX = "_actbert_peer.paddlevideo"


def _package(name: str, path: Path | None) -> types.ModuleType:
    module = types.ModuleType(name)
    if path is not None:
        module.__path__ = [str(path)]  # a package whose __init__ never runs
    sys.modules[name] = module
    return module


def _load(name: str, file: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _Registry:
    """Stand-in for paddlevideo.utils.Registry: `@X.register()` returns the class unchanged."""

    def register(self, *_args, **_kwargs):
        return lambda obj: obj


def load_peer_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """PaddleVideo's actbert backbone and loss modules, from the installed ppvideo wheel."""
    spec = importlib.util.find_spec("ppvideo")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ppvideo is not installed in this interpreter's environment (pip install --no-deps ppvideo==2.3.1)")
    root = Path(next(iter(spec.submodule_search_locations))) / "paddlevideo"
    _package("_actbert_peer", None)
    _package(PREFIX, root)
    _package(f"{PREFIX}.utils", root / "utils")
    save_load = types.ModuleType(f"{PREFIX}.utils.save_load")

    def load_ckpt(*_args, **_kwargs):  # the benchmark trains from random init, as `pretrained: None` does
        raise RuntimeError("checkpoint loading is not part of the benchmark")

    save_load.load_ckpt = load_ckpt
    sys.modules[save_load.__name__] = save_load
    _package(f"{PREFIX}.modeling", root / "modeling")
    registry = types.ModuleType(f"{PREFIX}.modeling.registry")
    registry.BACKBONES = registry.LOSSES = _Registry()
    sys.modules[registry.__name__] = registry
    _load(f"{PREFIX}.modeling.weight_init", root / "modeling" / "weight_init.py")
    _package(f"{PREFIX}.modeling.backbones", root / "modeling" / "backbones")
    _package(f"{PREFIX}.modeling.losses", root / "modeling" / "losses")
    _load(f"{PREFIX}.modeling.losses.base", root / "modeling" / "losses" / "base.py")
    backbone = _load(f"{PREFIX}.modeling.backbones.actbert", root / "modeling" / "backbones" / "actbert.py")
    loss = _load(f"{PREFIX}.modeling.losses.actbert_loss", root / "modeling" / "losses" / "actbert_loss.py")
    return backbone, loss


INPUTS = ("text_ids", "action_feat", "image_feat", "image_loc", "token_type_ids", "text_mask", "image_mask", "action_mask")
TARGETS = ("text_labels", "image_label", "image_target", "action_label", "next_sentence_label")  # ActBertLoss order


def serve(step, warmup: int, info: dict) -> None:
    """Warm up, announce `info`, then time `run STEPS` requests until "quit" (both sides use this loop)."""
    for _ in range(warmup):
        step()
    print(json.dumps({"ready": True, **info}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        times, cpu = [], []
        for _ in range(int(words[1])):
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)  # CPU seconds of all threads: robust to a loaded machine at 1 thread
        print(json.dumps({"step_s": times, "cpu_s": cpu, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}),
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-file", required=True, help=".npz with PaddleVideo's input and target layout")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--a-target-size", type=int, default=700)
    parser.add_argument("--backbone-args", default="{}",
                        help="JSON: BertForMultiModalPreTraining arguments over its defaults (tests use a small model)")
    args = parser.parse_args(argv)

    import numpy as np
    import paddle

    paddle.set_device("cpu")
    if hasattr(paddle, "set_num_threads"):  # also fixed by OMP/MKL_NUM_THREADS in the environment
        paddle.set_num_threads(args.threads)
    paddle.seed(0)
    backbone_module, loss_module = load_peer_modules()
    model = backbone_module.BertForMultiModalPreTraining(  # PaddleVideo's defaults
        **{"a_target_size": args.a_target_size, **json.loads(args.backbone_args)})
    model.init_weights()
    model.train()
    criterion = loss_module.ActBertLoss(vocab_size=model.vocab_size, a_target_size=model.a_target_size)
    # configs/multimodal/actbert/actbert.yaml: Adam, L2 weight decay 1e-4 (learning rate: its first piece)
    optimizer = paddle.optimizer.Adam(learning_rate=2e-4, parameters=model.parameters(),
                                      weight_decay=paddle.regularizer.L2Decay(1e-4))
    data = np.load(args.batch_file)
    tensors = [paddle.to_tensor(data[k]) for k in INPUTS + TARGETS]
    inputs, targets = tensors[:len(INPUTS)], tensors[len(INPUTS):]

    def step() -> float:
        # ActBert.train_step: backbone, ActBertLoss, mean; then PaddleVideo's train loop
        loss = paddle.mean(criterion(*model(*inputs), *targets))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        return float(loss)

    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    serve(step, args.warmup, {"framework": f"paddle {paddle.__version__}", "precision": "fp32",
                              "params": int(sum(int(np.prod(p.shape)) for p in model.parameters())), "shapes": shapes})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
