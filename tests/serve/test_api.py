"""`actbert serve` JSON API and media routes: same ranking as `actbert search`, range requests, only listed files
(traversal, symlinks, encodings -> 404), bad input -> 4xx with a sentence, bounded model work, progress."""
from __future__ import annotations

import io
import json
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from actbert.cli.main import main
from tests.serve.conftest import TRANSCRIPT_V0, XSS_NAME, caption_of


def key(h):
    return h["video"], h["start"], h["end"]


def test_search_ranks_like_the_cli(client, serve_world, capsys):
    q = caption_of(1, 1)
    api = client.get("/api/search", params={"q": q, "k": 6, "rerank": 3}).json()
    assert len(api["hits"]) == 6
    assert main(["search", q, "--index", str(serve_world["index"]), "--top-k", "6", "--rerank", "3", "--json"]) == 0
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [key(h) for h in api["hits"]] == [key(h) for h in cli]
    np.testing.assert_allclose([h["first_stage_score"] for h in api["hits"]],
                               [h["first_stage_score"] for h in cli], atol=1e-5)
    np.testing.assert_allclose([h["score"] for h in api["hits"][:3]], [h["score"] for h in cli[:3]], atol=1e-5)
    assert [h["reranked"] for h in api["hits"]] == [True] * 3 + [False] * 3
    top = client.get("/api/search", params={"q": q, "k": 1, "rerank": 0}).json()["hits"][0]
    assert (top["video"], top["start"], top["end"]) == (XSS_NAME, 8.0, 16.0)  # the first stage finds the known clip
    assert top["name"] == XSS_NAME + ".mp4" and not top["reranked"]
    assert top["video_url"] == "/media/video/" + quote(XSS_NAME, safe="") and top["available"] is True
    post = client.post("/api/search", json={"q": q, "k": 6, "rerank": 3}).json()
    assert [key(h) for h in post["hits"]] == [key(h) for h in api["hits"]]
    default = client.get("/api/search", params={"q": q}).json()
    assert (default["k"], default["rerank"], len(default["hits"])) == (10, 50, 10)


@pytest.mark.parametrize("query", ["日本語の料理 café crème", "🍅 " * 50, " ".join(["slice"] * 10_000)])
def test_unusual_queries_get_an_answer(client, query):
    r = client.post("/api/search", json={"q": query, "k": 3, "rerank": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["hits"]) == 3


@pytest.mark.parametrize("params, status, words", [
    ({"q": ""}, 400, "empty query"),
    ({"q": "   "}, 400, "empty query"),
    ({"q": "cut", "k": 0}, 400, "k must be"),
    ({"q": "cut", "k": 5000}, 400, "k must be"),
    ({"q": "cut", "rerank": -1}, 400, "rerank"),
    ({"q": "cut", "k": "ten"}, 422, "int"),
    ({"q": "x" * 100_001}, 400, "characters"),
])
def test_bad_queries_are_clear_4xx(client, params, status, words):
    r = client.post("/api/search", json=params)
    assert r.status_code == status, r.text
    assert words in json.dumps(r.json()["detail"])


def test_video_file_supports_range_requests(client, serve_world):
    data = (serve_world["videos"] / "v0.mp4").read_bytes()
    full = client.get("/media/video/v0")
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "video/mp4"
    part = client.get("/media/video/v0", headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == data[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(data)}"
    tail = client.get("/media/video/" + quote(XSS_NAME, safe=""), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == (serve_world["videos"] / f"{XSS_NAME}.mp4").read_bytes()[-10:]


def test_only_files_the_index_lists_are_served(client, serve_world):
    root = serve_world["root"]
    absolute = quote(str(serve_world["videos"] / "v0.mp4"), safe="")
    for url in ["/media/video/..%2F..%2F..%2Fetc%2Fpasswd", "/media/video/%2Fetc%2Fpasswd",
                "/media/video/%2e%2e%2fstore%2fstore.json", "/media/video/..%252F..%252Fetc%252Fpasswd",
                "/media/video/" + absolute, "/media/video/v0.mp4", "/media/video/v0%00", "/media/video/v0%2f..",
                "/media/thumb/..%2F..%2Fetc%2Fpasswd?t=0", "/static/..%2fapp.py", "/static/%2e%2e/service.py",
                "/static/%2e%2e%2f%2e%2e%2fapi%2findex.py", "/media/video/linked", "/media/thumb/linked?t=1",
                "/api/videos/..%2F..%2Fetc%2Fpasswd", "/media/video/gone", "/media/thumb/gone?t=1"]:
        r = client.get(url)
        assert r.status_code == 404, (url, r.status_code)
        assert b"root:" not in r.content and b"ShardCorrupt" not in r.content
    assert "links out of its folder" in client.get("/media/video/linked").json()["detail"]
    assert "no longer exists" in client.get("/media/video/gone").json()["detail"]
    assert (root / "outside" / "secret.mp4").is_file()  # the symlink's target exists: refused for where it is
    assert client.get("/media/video/" + quote("café ü", safe="")).status_code == 200
    assert client.get("/static/common.js").status_code == 200


def test_vanished_video_is_reported_not_failed(client):
    hits = client.get("/api/search", params={"q": caption_of(3, 0), "k": 10, "rerank": 4}).json()["hits"]
    gone = [h for h in hits if h["video"] == "gone"]
    assert gone and all(h["available"] is False and h["video_url"] is None for h in gone)
    v = client.get("/api/videos/gone").json()
    assert v["available"] is False and "no longer exists" in v["problem"]
    loc = client.post("/api/videos/gone/localize", json={"steps": [caption_of(3, 0)]})
    assert loc.status_code == 200  # its features are still in the store


def test_video_details_and_transcript(client):
    v = client.get("/api/videos/v0").json()
    assert v["transcript"] == TRANSCRIPT_V0 and v["transcript_source"] == "narration.json"
    assert v["duration"] == 16.0 and v["available"] and v["timeline"] == {"segment": False, "localize": True}
    x = client.get("/api/videos/" + quote(XSS_NAME, safe="")).json()
    assert x["name"] == XSS_NAME + ".mp4" and x["transcript"] is None
    assert client.get("/api/videos/nope").status_code == 404
    c = client.get("/api/videos/" + quote("café ü", safe="")).json()  # a sidecar subtitle file
    assert c["transcript_source"] == "café ü.srt" and [(x["start"], x["end"]) for x in c["transcript"]] == [(2.0, 4.5)]
    assert "mélange" in c["transcript"][0]["text"]


def test_thumbnails_are_frames_of_the_clip(client):
    from PIL import Image

    a, b = client.get("/media/thumb/v0?t=0"), client.get("/media/thumb/v0?t=9")
    assert a.status_code == b.status_code == 200 and a.headers["content-type"] == "image/jpeg"
    ia, ib = (np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), np.float32) for r in (a, b))
    assert ia.shape == (96, 160, 3)  # never enlarged (a large video is shrunk to 240 px wide)
    assert abs(ib[..., 1].mean() - ia[..., 1].mean() - 9 * 15) < 12  # each second has its own green level
    assert client.get("/media/thumb/v0?t=-1").status_code == 422
    assert client.get("/media/thumb/v0?t=1e9").status_code == 422


def test_localize_and_segments(client, service, serve_world):
    import actbert
    from actbert.serve import SearchService, create_app

    r = client.post("/api/videos/v0/localize", json={"steps": [caption_of(0, 0), caption_of(0, 1)]}).json()
    secs = [s["second"] for s in r["steps"]]
    assert secs == sorted(secs) and 0 <= secs[0] and secs[-1] < 16
    assert client.post("/api/videos/v0/localize", json={"steps": ["a"] * 40}).status_code == 400
    assert client.post("/api/videos/v0/localize", json={"steps": ["x"] * 20}).status_code == 400  # 20 steps > 16 s
    assert client.post("/api/videos/v0/localize", json={"steps": [" "]}).status_code == 400
    assert client.post("/api/videos/nope/localize", json={"steps": ["a"]}).status_code == 404
    seg = client.get("/api/videos/v0/segments")
    assert seg.status_code == 404 and "--segmenter" in seg.json()["detail"]
    # with a segmentation head (any object with .predict(video) -> labels per second)
    labels = [0, 0, 3, 3, 3, 0, 5, 5] + [0] * 8

    class Head:
        def predict(self, video):
            assert video.video_id == "v0"
            return labels

    pipe = serve_world["pipe"]
    seg_pipe = actbert.Pipeline(pipe.model, tokenizer=pipe.tokenizer, segmenter=Head())
    from fastapi.testclient import TestClient

    c = TestClient(create_app(SearchService(serve_world["index"], pipeline=seg_pipe), allowed_hosts=["testserver"]))
    assert c.get("/api/videos/v0/segments").json()["segments"] == [
        {"start": 2.0, "end": 5.0, "label": "step 3"}, {"start": 6.0, "end": 8.0, "label": "step 5"}]
    assert c.get("/api/info").json()["timeline"]["segment"] is True


def test_missing_or_corrupt_index(serve_world, tmp_path, capsys):
    from fastapi.testclient import TestClient

    import actbert
    from actbert.serve import SearchService, create_app

    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "not a clip index" in capsys.readouterr().err
    bad = tmp_path / "bad"
    shutil.copytree(serve_world["index"], bad)
    (bad / "index.json").write_text("{ not json", encoding="utf-8")
    assert main(["serve", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["serve", str(serve_world["index"]), "--segmenter", str(tmp_path / "no-head")]) == 2
    assert "segmenter folder" in capsys.readouterr().err
    # damaged while serving: a clear 409, not a 500
    later = tmp_path / "later"
    shutil.copytree(serve_world["index"], later)
    pipe = serve_world["pipe"]
    c = TestClient(create_app(SearchService(later, pipeline=actbert.Pipeline(pipe.model, tokenizer=pipe.tokenizer)),
                              allowed_hosts=["testserver"]))
    assert c.get("/api/search", params={"q": "cut"}).status_code == 200
    (later / "emb-00000.npy").write_bytes(b"\x93NUMPY garbage")
    r = c.get("/api/search", params={"q": "cut"})
    assert r.status_code == 409 and "rebuild it" in r.json()["detail"]
    (later / "emb-00000.npy").unlink()
    r = c.get("/api/search", params={"q": "cut"})
    assert r.status_code == 409 and "emb-00000.npy" in r.json()["detail"]


def test_model_work_is_bounded_and_reports_progress(service, serve_world):
    import actbert
    from fastapi.testclient import TestClient

    from actbert.serve import SearchService, ServeOptions, create_app

    pipe = serve_world["pipe"]
    svc = SearchService(serve_world["index"], pipeline=actbert.Pipeline(pipe.model, tokenizer=pipe.tokenizer),
                        options=ServeOptions(max_concurrent=1, max_queue=1))
    c = TestClient(create_app(svc, allowed_hosts=["testserver"]))
    release, results = threading.Event(), {}
    holder_in = threading.Event()

    def hold():
        with svc.gate.slot("holder", "test"):
            holder_in.set()
            release.wait(30)

    def queued():
        results["queued"] = c.get("/api/search", params={"q": "cut", "request_id": "mine"})

    t1 = threading.Thread(target=hold)
    t1.start()
    holder_in.wait(10)
    t2 = threading.Thread(target=queued)
    t2.start()
    deadline = time.monotonic() + 10
    while c.get("/api/progress/mine").json()["state"] != "queued" and time.monotonic() < deadline:
        time.sleep(0.02)
    p = c.get("/api/progress/mine").json()
    assert p["state"] == "queued" and p["ahead"] == 1 and p["what"] == "search"
    assert c.get("/api/progress/holder").json()["state"] == "running"
    assert c.get("/api/info").json()["load"] == {"running": 1, "queued": 1, "max_queue": 1}
    over = c.get("/api/search", params={"q": "cut"})  # the queue is full: refused at once
    assert over.status_code == 503 and over.headers["retry-after"] == "2" and "wait" in over.json()["detail"]
    release.set()
    t1.join(10)
    t2.join(30)
    assert results["queued"].status_code == 200
    assert c.get("/api/progress/mine").json()["state"] == "done"
    assert c.get("/api/progress/never-seen").json() == {"state": "unknown"}


def test_security_headers_and_host_check(service):
    from fastapi.testclient import TestClient

    from actbert.serve import create_app

    local = TestClient(create_app(service, "127.0.0.1", 8000), base_url="http://127.0.0.1:8000")
    page = local.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    info = local.get("/api/info").json()
    assert info["address"] == "http://127.0.0.1:8000" and info["local_only"] is True
    # a page on another site that rebinds its DNS name to 127.0.0.1 sends its own Host: refused
    assert local.get("/api/info", headers={"Host": "evil.example:8000"}).status_code == 400
    anywhere = TestClient(create_app(service, "0.0.0.0", 8000), base_url="http://example.org")
    assert anywhere.get("/api/info").json()["local_only"] is False


def test_cli_serves_on_loopback_and_answers_curl(serve_world):
    """`actbert serve INDEX --port 0` as a user runs it: the printed address answers /api/search and the page."""
    import os
    import subprocess
    import sys
    import urllib.request

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", "from actbert.cli.main import main; main()", "serve",
                             str(serve_world["index"]), "--port", "0", "--rerank", "2", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "this computer only" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split("open ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        q = "+".join(["slice"] * 10_000)  # a 10,000-word query in a URL (~60 kB) is answered
        status, body = _get(url + "api/search?k=3&q=" + q)
        assert status == 200 and len(json.loads(body)["hits"]) == 3
        status, body = _get(url + "api/search?q=cut&k=2")
        hits = json.loads(body)["hits"]
        assert status == 200 and len(hits) == 2 and [h["reranked"] for h in hits] == [True, True]
        assert b"actbert search" in urllib.request.urlopen(url, timeout=30).read()
    finally:
        proc.terminate()
        proc.wait(30)


def _get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
