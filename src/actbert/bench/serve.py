"""`actbert bench serve`: latency of `/api/search` over HTTP, and the time from page load to first results.

The app runs as `actbert serve` runs it (uvicorn, loopback, model loaded once); queries go over real HTTP
one after another (p50 / p95 of the wall time per request, as a user's browser sees it). Two indexes:

* `--index DIR`: an index made by `actbert index` (e.g. over the demo world), searched with the index's
  own model and re-ranking depth `--rerank`;
* `--synthetic N`: N random unit embeddings (the same generator as `actbert bench search`) stamped with
  the model's fingerprint, so the server accepts them. They have no feature store behind them, so only
  the first stage runs (`rerank` 0); that is the part whose cost grows with N.

`--browser` also loads the search page in headless Chromium with `?q=...` and reports the time from
navigation start to the first rendered results (median of 5 loads).
"""
from __future__ import annotations

import argparse
import http.client
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

QUERIES = ["cut the tomato", "crack an egg into the bowl", "stir the pasta", "pour water", "slice the onion",
           "add salt", "mix the flour and the eggs", "peel the garlic", "fry the meat", "whisk the cream"]


def _serve(service):
    """Start the app on a free loopback port in a thread; returns (server, port)."""
    import socket

    import uvicorn

    from actbert.serve import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service, "127.0.0.1", port), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, port


def http_latencies(port: int, queries: list[str], rounds: int, k: int, rerank: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    out = []
    for r in range(rounds):
        for q in queries:
            began = time.perf_counter()
            conn.request("GET", "/api/search?" + urlencode({"q": q, "k": k, "rerank": rerank}))
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"/api/search answered {resp.status}: {body[:200]!r}")
            if r or rounds == 1:  # the first round warms caches (page cache, faiss build): not counted
                out.append(time.perf_counter() - began)
    return out


def page_to_results(port: int, query: str, loads: int = 5) -> list[float]:
    """Seconds from navigation start to the first rendered results, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install chromium)")
    out = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        for _ in range(loads):
            ctx = b.new_context()
            pg = ctx.new_page()
            pg.goto(f"http://127.0.0.1:{port}/?" + urlencode({"q": query}))
            pg.wait_for_function("() => window.firstResultsMs !== undefined || "
                                 "document.getElementById('status').className === 'error'", timeout=600_000)
            if pg.evaluate("() => window.firstResultsMs") is None:
                raise RuntimeError(f"the search page showed an error: {pg.text_content('#status')}")
            out.append(pg.evaluate("() => window.firstResultsMs") / 1000)
            ctx.close()
        b.close()
    return out


def screenshots(port: int, query: str, out: Path) -> list[Path]:
    """`serve-search.png` (results, the first clip playing) and `serve-video.png` (its video page) in `out`."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                              headless=True, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        pg = b.new_page(viewport={"width": 1200, "height": 820})
        pg.goto(f"http://127.0.0.1:{port}/?" + urlencode({"q": query}))
        pg.wait_for_selector("li.hit", timeout=600_000)
        pg.wait_for_function("() => [...document.querySelectorAll('li.hit img.thumb')].every(i => i.complete)")
        pg.click("li.hit .media >> nth=0")
        pg.wait_for_function("() => { const v = document.querySelector('video.clip-player'); "
                             "return v && !v.paused && v.currentTime > 0.5 + +v.closest('li').dataset.start; }")
        pg.screenshot(path=str(out / "serve-search.png"))
        pg.goto(f"http://127.0.0.1:{port}" + pg.get_attribute("li.hit a.name >> nth=0", "href"))
        pg.wait_for_selector("#timeline .step", timeout=600_000)
        pg.wait_for_function("() => document.getElementById('player').readyState >= 2")
        pg.screenshot(path=str(out / "serve-video.png"), full_page=True)
        b.close()
    return [out / "serve-search.png", out / "serve-video.png"]


def synthetic_index(out: Path, n: int, pipe) -> Path:
    """`actbert bench search`'s random index, stamped with `pipe`'s model so the server accepts it."""
    from actbert.api.index import INDEX_JSON, _atomic_json
    from actbert.bench.search import write_synthetic_index

    write_synthetic_index(out, n, pipe.model.config.contrastive_dim, dtype="float32")
    info = json.loads((out / INDEX_JSON).read_text(encoding="utf-8"))
    info.update(pipe.fingerprint.as_dict())
    _atomic_json(out / INDEX_JSON, info)
    return out


def stats(xs: list[float]) -> dict:
    a = np.asarray(xs) * 1000
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1), "max_ms": round(float(a.max()), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="actbert bench serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default=None, help="index folder (actbert index) to serve")
    parser.add_argument("--synthetic", type=int, default=0, help="also serve a synthetic index of this many clips")
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the one the index records; "
                                                       "needed with --synthetic alone)")
    parser.add_argument("--rerank", type=int, default=50, help="re-ranking depth for --index (as actbert search)")
    parser.add_argument("--k", type=int, default=10, help="hits per query")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 10 queries (the first is warm-up)")
    parser.add_argument("--browser", action="store_true", help="also time page load -> first results in Chromium")
    parser.add_argument("--screenshots", default=None,
                        help="save serve-search.png and serve-video.png of --index here (docs/ holds the demo's)")
    parser.add_argument("--screenshot-query", default="cut the potato", help="query of the screenshots")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not args.index and not args.synthetic:
        parser.error("give --index DIR and/or --synthetic N")

    import torch

    from actbert.api import ClipIndex
    from actbert.api.pipeline import pipeline_for_index
    from actbert.serve import SearchService, ServeOptions

    results: dict = {"threads": torch.get_num_threads()}
    pipe = pipeline_for_index(ClipIndex(args.index), args.model) if args.index else None
    runs = []
    if args.index:
        runs.append(("index", Path(args.index), args.rerank))
    tmp = Path(tempfile.mkdtemp(prefix="actbert-bench-serve-"))
    try:
        if args.synthetic:
            if pipe is None:
                from actbert.api import Pipeline

                if not args.model:
                    parser.error("--synthetic without --index needs --model")
                pipe = Pipeline(args.model, device="cpu")
            began = time.perf_counter()
            runs.append((f"synthetic-{args.synthetic}", synthetic_index(tmp / "synthetic", args.synthetic, pipe), 0))
            results["synthetic_build_s"] = round(time.perf_counter() - began, 1)
        for name, path, rerank in runs:
            service = SearchService(path, pipeline=pipe, options=ServeOptions(top_k=args.k, rerank=rerank))
            server, port = _serve(service)
            try:
                lat = http_latencies(port, QUERIES, args.rounds, args.k, rerank)
                row = {"index": str(path), "clips": service.index.n_clips, "rerank": rerank, "k": args.k,
                       **stats(lat)}
                if args.screenshots and name == "index":
                    print("screenshots:", *screenshots(port, args.screenshot_query, Path(args.screenshots)))
                if args.browser:
                    row["page_to_first_results_s"] = round(float(np.median(page_to_results(port, QUERIES[0]))), 3)
            finally:
                server.should_exit = True
            results[name] = row
            print(f"{name:>18}: {row['clips']:>7} clips, rerank {rerank:>3}: /api/search p50 {row['p50_ms']:.1f} ms, "
                  f"p95 {row['p95_ms']:.1f} ms (n={row['n']})"
                  + (f"; page load -> first results {row['page_to_first_results_s']:.2f} s" if args.browser else ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
