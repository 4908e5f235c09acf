"""Side by side: our training step and PaddleVideo's ActBERT training step, in turns (A B A B), and the ratio.

`actbert bench peer-paddle [--setup] --batch 8 --rounds 4`

Our step is `actbert bench train-step`'s (`build_step`: forward, the four losses, backward, clipping,
fused AdamW) at the `--preset` sizes. The peer is PaddleVideo's `BertForMultiModalPreTraining` with its
default arguments and `ActBertLoss`, trained as its `actbert.yaml` says (Adam, L2 decay), run by
bench/paddle_peer_worker.py inside a separate virtualenv (default `.venv-paddle`, git-ignored) that holds
`paddlepaddle` and the `ppvideo` wheel (PaddleVideo's code; nothing of it is copied into this package, and
the package does not depend on Paddle). `--setup` creates that venv with the pinned versions below.

Both steps see the same synthetic masked batch (ours converted to PaddleVideo's input layout). Each side
runs in its own process, warmed up once, then the two take turns: every round times `--steps` steps of
ours, then `--steps` of the peer, so a slow spell of a shared machine hits both. The ratio is reported
per round and as the median. Before timing, the peer's parameter shapes are checked against our
`paddlevideo` preset through the converter's mapping (interop/paddlevideo.py): the peer is the model
that preset reproduces, module for module.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from actbert.errors import ActbertError

PEER_VENV = ".venv-paddle"
# The peer's environment, pinned. ppvideo is installed without its dependencies (opencv, decord, av ...):
# the worker imports only the ActBERT backbone, loss and weight-init modules, which need paddle, numpy, scipy.
PEER_PACKAGES = ["paddlepaddle==3.3.1", "scipy==1.17.1"]
PEER_NO_DEPS = ["ppvideo==2.3.1"]
WORKER = Path(__file__).with_name("paddle_peer_worker.py")


class PeerSetupError(ActbertError):
    """The peer cannot run (no venv, a worker died, another model): `actbert bench` reports it in one line."""


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """This process's environment with every thread-pool size set to `threads` (both sides, every worker)."""
    return {**os.environ, **{k: str(threads) for k in THREAD_VARIABLES}}


def ours_command(preset: str, batch: int, precision: str, threads: int, warmup: int, in_backward: bool) -> list[str]:
    """The command of a worker timing our step (`serve_ours`); peer-paddle and train-step-ab start it."""
    return [sys.executable, "-m", "actbert.bench.peer_paddle", "--serve-ours", "--preset", preset, "--batch", str(batch),
            "--precision", precision, "--threads", str(threads), "--warmup", str(warmup),
            *(["--optimizer-in-backward"] if in_backward else [])]


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def setup_venv(venv: Path) -> None:
    """Create the peer's virtualenv with the pinned packages (PyPI through pip; a few hundred MB)."""
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PEER_PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", *PEER_NO_DEPS], check=True)


def check_venv(venv: Path) -> None:
    python = venv_python(venv)
    if not python.exists():
        raise PeerSetupError(f"{venv}: no peer virtualenv; create it with `actbert bench peer-paddle --setup`")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u, sys; "
                            "sys.exit(0 if u.find_spec('paddle') and u.find_spec('ppvideo') else 1)"])
    if probe.returncode:
        raise PeerSetupError(f"{venv}: paddle or ppvideo is missing; rerun with --setup")


def peer_inputs(batch: dict) -> dict:
    """Our masked batch in PaddleVideo's backbone + ActBertLoss layout (numpy)."""
    import torch

    from actbert.model.losses import IGNORE

    region_mask = batch["region_mask"].bool()
    weights = region_mask.float().unsqueeze(-1)
    global_feat = (batch["region_feats"] * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    b = region_mask.shape[0]
    whole = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]).expand(b, 1, 5)
    ones = torch.ones(b, 1, dtype=torch.long)
    arrays = {
        "text_ids": batch["text_ids"],
        "action_feat": batch["action_feats"],
        "image_feat": torch.cat([global_feat[:, None], batch["region_feats"]], 1),
        "image_loc": torch.cat([whole, batch["region_loc"]], 1),
        "token_type_ids": torch.zeros_like(batch["text_ids"]),
        "text_mask": batch["text_mask"].long(),
        "image_mask": torch.cat([ones, region_mask.long()], 1),
        "action_mask": batch["action_mask"].long(),
        "text_labels": batch["mlm_labels"].masked_fill(batch["mlm_labels"] == IGNORE, -1),
        "image_label": batch["region_target_mask"].long(),  # regions only: the loss drops the global token
        "image_target": batch["region_cls"],
        "action_label": batch["action_target"].masked_fill(batch["action_target"] == IGNORE, -1),
        "next_sentence_label": 1 - batch["match_labels"],  # PaddleVideo: 0 = matched
    }
    return {k: v.numpy() for k, v in arrays.items()}


def shape_mismatches(shapes: dict[str, list[int]], config=None) -> list[str]:
    """Peer tensors whose shape differs from `config`'s (default: our `paddlevideo` preset), through the
    converter's mapping."""
    import numpy as np
    import torch

    from actbert.interop.paddlevideo import build_mapping
    from actbert.model import ActBERTForPretraining, get_preset

    config = config or get_preset("paddlevideo")
    with torch.device("meta"):
        ours = ActBERTForPretraining(config).state_dict()
    problems = []
    for name, (paddle_name, transform) in build_mapping(config).pairs.items():
        if paddle_name not in shapes:
            problems.append(f"{paddle_name} missing in the peer")
            continue
        got = transform(np.broadcast_to(np.float32(0), shapes[paddle_name])).shape  # a view: no memory
        if tuple(got) != tuple(ours[name].shape):
            problems.append(f"{paddle_name} {shapes[paddle_name]} vs our {name} {list(ours[name].shape)}")
    return problems


class Worker:
    """A benchmark process that warms up, says it is ready, then times `run STEPS` on request."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.log = log.open("w")
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.log.flush()
        lines = Path(self.log.name).read_text(errors="replace").strip().splitlines() or ["(empty)"]
        raise PeerSetupError(f"{self.name} worker exited with {self.proc.wait()}: {lines[-1]} (log: {self.log.name})")

    def run(self, steps: int) -> dict:
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        self.log.close()


def serve_ours(args: argparse.Namespace) -> int:
    """The worker side of our step (the same loop as paddle_peer_worker.py's)."""
    import torch

    from actbert.bench.paddle_peer_worker import serve
    from actbert.bench.train_step import build_step

    step, model, _batch, _config = build_step(args.preset, args.batch, args.precision, args.threads, args.optimizer_in_backward)
    serve(step, args.warmup, {"framework": f"torch {torch.__version__}", "precision": args.precision,
                              "params": sum(p.numel() for p in model.parameters())})
    return 0


def load_average() -> float:
    return os.getloadavg()[0]


def compare(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from actbert.bench.train_step import masked_batch
    from actbert.model import get_preset

    venv = Path(args.venv)
    if args.setup:
        setup_venv(venv)
    check_venv(venv)
    env = thread_env(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="actbert-peer-"))
    # the peer gets exactly our masked batch (same masks, lengths and targets)
    config = get_preset(args.preset)
    peer_sizes = {"vocab_size": 30522, "region_feat_dim": 2048, "action_feat_dim": 2048, "num_region_classes": 1601}
    differ = {k: getattr(config, k) for k, v in peer_sizes.items() if getattr(config, k) != v}
    if differ:
        raise PeerSetupError(f"preset {args.preset!r} has {differ}; the peer (PaddleVideo's defaults) needs {peer_sizes}: "
                             "use base or paddlevideo")
    np.savez(workdir / "batch.npz", **peer_inputs(masked_batch(config, args.batch)))
    ours_cmd = ours_command(args.preset, args.batch, args.precision, args.threads, args.warmup, args.optimizer_in_backward)
    peer_cmd = [str(venv_python(venv)), str(WORKER), "--batch-file", str(workdir / "batch.npz"), "--threads",
                str(args.threads), "--warmup", str(args.warmup), "--a-target-size", str(config.num_action_classes)]
    load_before = os.getloadavg()
    # one at a time: each warms up alone, so neither setup competes with the other's timing
    peer = Worker("peer", peer_cmd, env, workdir / "peer.log")
    mismatches = shape_mismatches(peer.info["shapes"])
    if mismatches:
        peer.close()
        raise PeerSetupError("the peer is not the model our `paddlevideo` preset describes: " + "; ".join(mismatches[:5]))
    ours = Worker("ours", ours_cmd, env, workdir / "ours.log")
    rounds = []
    try:
        for r in range(args.rounds):
            a = ours.run(args.steps)
            b = peer.run(args.steps)
            ours_sps = args.batch / statistics.median(a["step_s"])
            peer_sps = args.batch / statistics.median(b["step_s"])
            rounds.append({"ours_samples_per_s": ours_sps, "peer_samples_per_s": peer_sps, "ratio": ours_sps / peer_sps,
                           "ours_peak_rss_gib": a["peak_rss_gib"], "peer_peak_rss_gib": b["peak_rss_gib"],
                           "load_average": load_average()})
            if not args.json:
                print(f"round {r + 1}: ours {ours_sps:.2f}  peer {peer_sps:.2f} samples/s  ratio {ours_sps / peer_sps:.2f}"
                      f"  (load {rounds[-1]['load_average']:.1f})", flush=True)
    finally:
        ours.close()
        peer.close()
    from actbert.model import ActBERTForPretraining

    with torch.device("meta"):
        paddlevideo_params = sum(p.numel() for p in ActBERTForPretraining(get_preset("paddlevideo")).parameters())
    return {
        "preset": args.preset, "batch": args.batch, "threads": args.threads, "steps_per_round": args.steps,
        "ours": {"framework": ours.info["framework"], "precision": args.precision, "params_m": ours.info["params"] / 1e6,
                 "optimizer": "fused AdamW in backward" if args.optimizer_in_backward else "fused AdamW, clip 1.0"},
        "peer": {"framework": peer.info["framework"], "precision": "fp32", "params_m": peer.info["params"] / 1e6,
                 "optimizer": "Adam + L2Decay(1e-4)", "shapes_match_paddlevideo_preset": True,
                 "paddlevideo_preset_params_m": paddlevideo_params / 1e6},
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="base", help="our model preset: base (default, the paper's sizes) or paddlevideo (the peer's own layout, "
                             "for a same-model comparison)")
    parser.add_argument("--batch", type=int, default=8, help="samples per training step, both sides")
    parser.add_argument("--rounds", type=int, default=4, help="A-B turns (ours, then the peer)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per side per round (the median counts)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps each side runs first")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for each side (torch / OMP / MKL)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="our side: fp32 or bf16 autocast (the peer is always fp32: Paddle's CPU autocast is a no-op)")
    parser.add_argument("--optimizer-in-backward", action="store_true",
                        help="our side steps the optimizer inside backward (as `actbert pretrain --optimizer-in-backward`)")
    parser.add_argument("--venv", default=PEER_VENV, help=f"the peer's virtualenv (default: {PEER_VENV})")
    parser.add_argument("--setup", action="store_true",
                        help=f"create/update the peer's virtualenv first: {', '.join(PEER_PACKAGES + PEER_NO_DEPS)}")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--serve-ours", action="store_true", help=argparse.SUPPRESS)  # the worker side


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="actbert bench peer-paddle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.serve_ours:
        return serve_ours(args)
    result = compare(args)  # a PeerSetupError is one line through `actbert bench` (cli.main)
    if args.json:
        print(json.dumps(result))
        return 0
    o, p = result["ours"], result["peer"]
    print(f"ours: {o['framework']}, preset {result['preset']}, {o['params_m']:.1f} M parameters, {o['precision']}, {o['optimizer']}")
    print(f"peer: PaddleVideo ActBERT on {p['framework']}, {p['params_m']:.1f} M parameters (= our paddlevideo preset's "
          f"{p['paddlevideo_preset_params_m']:.1f} M, shapes checked), {p['precision']}, {p['optimizer']}")
    peak_o = max(r["ours_peak_rss_gib"] for r in result["rounds"])
    peak_p = max(r["peer_peak_rss_gib"] for r in result["rounds"])
    print(f"batch {result['batch']}, {result['threads']} threads: median ratio {result['median_ratio']:.2f} "
          f"(ours / peer samples/s); peak RSS ours {peak_o:.2f} GiB, peer {peak_p:.2f} GiB; "
          f"load average {result['load_average_before'][0]:.1f} -> {result['load_average_after'][0]:.1f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
