"""Every code block of README.md and docs/*.md runs as written, or says why not.

A ```python or ```bash block runs, in page order, in a folder that holds what the pages name: `demo_out/`
laid out as `make demo` leaves it (a tiny trained model, its feature store, fine-tuned caption and
segmentation heads), and `runs/pretrain`, `nets/`, `my_videos/`, `runs/cap`, `runs/seg` for the pages on
your own videos. Python blocks of a page share one scope; `actbert ...` lines of bash blocks run through
`actbert.cli.main.main` in-process and must exit 0. A block preceded by `<!-- not run: REASON -->` is
not run (the 10-minute demo, real datasets, signature lists); its `actbert` lines must still parse with
the current flags, so a renamed flag cannot linger in the docs.
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from actbert.cli.main import COMMANDS, command_parser, main
from tests.api.conftest import world  # noqa: F401 - the session fixture: a trained tiny model + store

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- not run: (?P<why>[^>]*?) -->\n)?```(?P<lang>python|bash|sh)\n(?P<code>.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    return [(m["lang"], m["code"], m["why"]) for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    return [shlex.split(line, comments=True) for line in code.replace("\\\n", " ").splitlines()
            if shlex.split(line, comments=True)]


def _tiny_heads(model, tokenizer, cap_dir: Path, seg_dir: Path, step_names: dict[int, str]) -> None:
    from actbert.tasks.caption_decoder import CaptionHeadConfig
    from actbert.tasks.captioning import Captioner
    from actbert.tasks.segmentation import SegmentHeadConfig, Segmenter

    torch.manual_seed(0)
    head = CaptionHeadConfig(num_layers=1, max_len=3, beam_size=1).resolve(model.config, tokenizer)
    Captioner(model.actbert, head, tokenizer).save(cap_dir)
    seg = SegmentHeadConfig(num_classes=1 + len(step_names), window=8, stride=4, max_regions=4,
                            cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    Segmenter(model.actbert, seg, step_names).save(seg_dir)


def _tiny_nets_and_model(root: Path) -> tuple[Path, Path]:
    """`(root/runs/pretrain/model, root/nets)`: an untrained tiny model sized for tiny action / region
    networks (nets/action, nets/detector) and two 3-second videos (nets/clip.mp4, nets/clip2.mp4)."""
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining, get_preset
    from actbert.video.action_net import build_action_net, save_action_net
    from actbert.video.detector import RegionExtractor, build_detector, save_region_extractor
    from tests.video.test_decode import moving_square_frames, write_video

    torch.manual_seed(0)
    net = build_action_net("tiny3d", num_classes=3, clip_frames=4, fps=4.0, resize=36, crop=32).eval()
    det = RegionExtractor(build_detector("tiny", num_classes=4), top_k=4, backbone="tiny")
    save_action_net(net, root / "nets" / "action")
    save_region_extractor(det, root / "nets" / "detector")
    for i, name in enumerate(("clip", "clip2")):
        write_video(root / "nets" / f"{name}.mp4", moving_square_frames(30, seed=i), fps=10)
    tok = WordPieceTokenizer.train(["cut the tomato someone cuts a dog runs on beach add salt"] * 3,
                                   vocab_size=80, min_frequency=1)
    cfg = get_preset("tiny", vocab_size=tok.vocab_size, action_feat_dim=net.feature_dim,
                     region_feat_dim=det.feature_dim, num_region_classes=det.num_classes, max_actions=4,
                     max_regions=8, max_text_len=10)
    return ActBERTForPretraining(cfg).save_pretrained(root / "runs" / "pretrain" / "model", tokenizer=tok), \
        root / "nets"


@pytest.fixture(scope="module")
def docs_folder(world, tmp_path_factory):  # noqa: F811
    """A folder holding everything the pages' paths name (see the module docstring)."""
    from actbert.data.tokenizer import WordPieceTokenizer
    from actbert.model import ActBERTForPretraining

    root = tmp_path_factory.mktemp("docs")
    # demo_out/ as `make demo` leaves it: runs/actbert/{model,captioning,segmentation}, store/
    ckpt, store = world
    shutil.copytree(ckpt, root / "demo_out" / "runs" / "actbert" / "model")
    shutil.copytree(store, root / "demo_out" / "store")
    demo_model = ActBERTForPretraining.from_pretrained(ckpt)
    demo_tok = WordPieceTokenizer.from_pretrained(ckpt)
    _tiny_heads(demo_model, demo_tok, root / "demo_out" / "runs" / "actbert" / "captioning",
                root / "demo_out" / "runs" / "actbert" / "segmentation", {1: "cut the tomato", 2: "fry the egg"})
    # your own videos: networks, two videos, a pre-training run, fine-tuned heads in run folders
    model_dir, nets = _tiny_nets_and_model(root)
    (root / "my_videos").mkdir()
    for name in ("cooking", "salad"):
        shutil.copy(nets / ("clip.mp4" if name == "cooking" else "clip2.mp4"), root / "my_videos" / f"{name}.mp4")
    model, tok = ActBERTForPretraining.from_pretrained(model_dir), WordPieceTokenizer.from_pretrained(model_dir)
    _tiny_heads(model, tok, root / "runs" / "cap" / "model", root / "runs" / "seg" / "model",
                {1: "cut tomato", 2: "add salt"})
    return root


RUNNABLE = [p for p in PAGES if any(why is None for *_, why in blocks(p))]


def test_the_newcomer_pages_have_runnable_examples():
    assert {ROOT / "README.md", ROOT / "docs" / "api.md"} <= set(RUNNABLE)


@pytest.mark.filterwarnings("error::actbert.api.pipeline.UnknownWordsWarning")  # the pages' queries are sensible
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs_as_written(page, docs_folder, tmp_path, monkeypatch):
    to_run = [(lang, code) for lang, code, why in blocks(page) if why is None]
    folder = tmp_path / "here"
    shutil.copytree(docs_folder, folder)
    monkeypatch.chdir(folder)
    scope: dict = {"__name__": "__docs__"}
    for n, (lang, code) in enumerate(to_run):
        if lang == "python":
            exec(compile(code, f"{page.name}[{n}]", "exec"), scope)
            continue
        for argv in shell_commands(code):
            assert argv[0] == "actbert", f"{page.name}[{n}]: only `actbert` commands run here: {argv}"
            assert main(argv[1:]) == 0, f"{page.name}[{n}]: {shlex.join(argv)}"


def test_blocks_that_do_not_run_still_use_current_flags():
    """`actbert` lines of not-run blocks parse with today's parsers (placeholders "..." aside)."""
    from actbert.cli.evaluate import task_parser
    from actbert.tasks.registry import ZERO_SHOT, load_task

    checked = 0
    for page in PAGES:
        for lang, code, why in blocks(page):
            assert why is None or why.strip(), f"{page.name}: a not-run block must say why"
            if why is None or lang == "python":
                continue
            for argv in shell_commands(code):
                i = argv.index("actbert") if "actbert" in argv else (
                    argv.index("actbert.cli.main") if "actbert.cli.main" in argv else None)
                if i is None or "..." in argv or len(argv) <= i + 1 or argv[i + 1] not in COMMANDS:
                    continue
                # optional parts in [...] parse too; a placeholder (N, STORE, $SLURM_ARRAY_TASK_ID) stands for a value
                args = ["1" if re.fullmatch(r"\$?[A-Z][A-Z_0-9]*", a.strip("[]")) else a.strip("[]") for a in argv[i + 2:]]
                name = argv[i + 1]
                if name == "bench" or (name == "finetune" and args[0] in ZERO_SHOT):
                    continue  # a benchmark's own parser is built inside its main()
                if name in ("evaluate", "finetune"):
                    parser, args = task_parser(load_task(args[0]), args[0], name), args[1:]
                else:
                    parser = command_parser(name)[1]
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    try:
                        parser.parse_args(args)
                    except SystemExit:
                        pytest.fail(f"{page.name}: `{shlex.join(argv)}` does not parse: {err.getvalue()}")
                assert "deprecated" not in err.getvalue(), f"{page.name}: {err.getvalue()}"
                checked += 1
    assert checked >= 3

