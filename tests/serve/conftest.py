"""Fixtures of the `actbert serve` tests: real H.264 files, a store whose features the trained tiny model of
tests/api knows, an index over it, the service, and a live server on a free loopback port.

Videos (16 s each, 8 s clips): `v0`, `v1` whose file is named like an XSS attack, `café ü` (non-ASCII), `gone`
(its file is deleted after indexing), `linked` (a symlink to a file outside its folder). Their features are
those of videos 0..4 of the tests/api world, so the first stage of `caption_of(i, half)` finds video i's half.
(That fixture's full-model scores are all about log 0.5, so the tests judge re-ranked order only against the CLI.)
"""
from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.api.conftest import D_A, D_R, WORDS, caption_of, make_video, world  # noqa: F401  (fixture)

with warnings.catch_warnings():  # starlette 1.x asks TestClient users to move to httpx2; the lock pins httpx
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

XSS_NAME = "<img src=x onerror=alert(1)>"
VIDEOS = ["v0", XSS_NAME, "café ü", "gone", "linked"]  # ids; video i has the features of tests/api video i
DURATION, FPS = 16, 5
TRANSCRIPT_V0 = [{"start": 1.0, "end": 3.0, "text": caption_of(0, 0)},
                 {"start": 9.0, "end": 11.0, "text": "<script>window.__xss = 1</script> " + XSS_NAME}]


def write_video(path: Path, hue: int, seconds: int = DURATION, fps: int = FPS) -> None:
    """A small H.264 mp4 (as the world renderer writes): each second has its own grey level, so frames differ."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        s.options = {"preset": "ultrafast", "g": str(fps)}  # a key frame every second: cheap exact seeks
        for i in range(seconds * fps):
            img = np.zeros((96, 160, 3), np.uint8)
            img[..., 0], img[..., 1], img[..., 2] = hue, (i // fps) * 15 % 256, 128
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture(scope="session")
def serve_world(world, tmp_path_factory):  # noqa: F811
    """`dict` of paths: ckpt, store, index, videos folder, world folder."""
    import actbert
    from actbert.data.store import StoreWriter

    ckpt, _ = world
    root = tmp_path_factory.mktemp("serve_world")
    vids_dir = root / "world" / "videos"
    protos = np.random.default_rng(0).standard_normal((len(WORDS), D_A + D_R)).astype(np.float32) * 2
    rng = np.random.default_rng(1)
    paths = {}
    for i, vid in enumerate(VIDEOS):
        p = vids_dir / f"{vid}.mp4"
        if vid == "linked":  # a symlink out of the videos folder, to a real video
            target = root / "outside" / "secret.mp4"
            write_video(target, 200)
            p.symlink_to(target)
        else:
            write_video(p, 40 * i)
        paths[vid] = p
    with StoreWriter(root / "store") as w:
        for i, vid in enumerate(VIDEOS):
            v = make_video(i, protos, rng)
            w.add(dataclasses.replace(v, video_id=vid, extra={"path": str(paths[vid])}))
    (vids_dir / "café ü.srt").write_text("1\n00:00:02,000 --> 00:00:04,500\nmélange <b>doux</b>\n", encoding="utf-8")
    (root / "world" / "narration.json").write_text(json.dumps({"v0": {
        "start": [x["start"] for x in TRANSCRIPT_V0], "end": [x["end"] for x in TRANSCRIPT_V0],
        "text": [x["text"] for x in TRANSCRIPT_V0]}}), encoding="utf-8")
    pipe = actbert.Pipeline(str(ckpt), batch_size=8)
    pipe.index(root / "store", out=root / "index", clip_seconds=8.0, progress=False)
    paths["gone"].unlink()
    return {"ckpt": ckpt, "store": root / "store", "index": root / "index", "videos": vids_dir, "root": root,
            "pipe": pipe}


@pytest.fixture(scope="session")
def service(serve_world):
    from actbert.serve import SearchService

    return SearchService(serve_world["index"], pipeline=serve_world["pipe"])


@pytest.fixture(scope="session")
def client(service):
    from actbert.serve import create_app

    return TestClient(create_app(service, allowed_hosts=["testserver", "127.0.0.1"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(service):
    """`http://127.0.0.1:PORT` of the app served by uvicorn in a thread (as `actbert serve` runs it)."""
    import uvicorn

    from actbert.serve import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, "127.0.0.1", port), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
