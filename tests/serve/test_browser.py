"""`actbert serve` in a real headless Chromium (Debian's, driven by Playwright): type a query, see results, play
a clip from its start to its end, seek with the timeline and the transcript, and an XSS file name stays text.

Screenshots go to the test's tmp folder, or to $ACTBERT_SCREENSHOTS when set (docs/serve-*.png were made so).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.serve.conftest import XSS_NAME, caption_of

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    env = os.environ.get("ACTBERT_CHROMIUM")
    return env or next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        why = "no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(why)  # the bootstrap should have provided it: a skip would hide that
        pytest.skip(why)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by make test")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900}, base_url=live_server)
    pg = ctx.new_page()
    pg.dialogs, pg.errors = [], []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.set_default_timeout(20_000)
    yield pg
    ctx.close()


def shot(pg, tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("ACTBERT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"serve-{name}.png"
    pg.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 5000
    return out


def assert_inert(pg):
    """No dialog, no page error, no element built from the file name or the transcript's markup."""
    assert pg.dialogs == [] and pg.errors == []
    assert pg.evaluate("() => document.querySelectorAll('img[src=\"x\"], script:not([src])').length") == 0
    assert pg.evaluate("() => window.__xss") is None


def test_search_page_plays_the_clip_from_start_to_end(page, client, tmp_path):
    q = caption_of(1, 1)
    page.goto("/")
    page.wait_for_function("() => document.getElementById('serving').textContent.startsWith('serving http://127.0.0.1:')")
    assert "this computer only" in page.text_content("#serving")
    page.fill("#k", "6")
    page.fill("#q", q)
    page.press("#q", "Enter")
    page.wait_for_selector("li.hit")
    assert page.url.endswith("?q=" + q.replace(" ", "+"))  # no reload: the URL was only rewritten
    cards = page.eval_on_selector_all("li.hit", "els => els.map(e => [e.dataset.video, +e.dataset.start, "
                                                "+e.dataset.end])")
    api = client.post("/api/search", json={"q": q, "k": 6}).json()["hits"]
    assert cards == [[h["video"], h["start"], h["end"]] for h in api]  # the page shows the API's ranking
    names = page.eval_on_selector_all("li.hit .name", "els => els.map(e => e.textContent)")
    assert XSS_NAME + ".mp4" in names  # shown as text
    page.wait_for_function("() => [...document.querySelectorAll('li.hit img.thumb')].every(i => i.complete "
                           "&& i.naturalWidth > 0)")
    assert_inert(page)
    shot(page, tmp_path, "search")
    # play the XSS-named video's second half (8-16 s) in place
    card = page.locator(f"li.hit[data-video='{XSS_NAME}'][data-start='8']")
    card.locator(".media").click()
    video = card.locator("video.clip-player")
    video.wait_for()
    page.wait_for_function("v => !v.paused && v.currentTime > 0", arg=video.element_handle())
    t0 = video.evaluate("v => v.currentTime")
    assert 8.0 <= t0 < 9.5, t0  # it starts at the clip's start, not at 0
    assert video.evaluate("v => v.src").endswith("/media/video/" + quote(XSS_NAME, safe="") + "#t=8,16")
    page.wait_for_function("v => v.paused && v.currentTime >= 15.5", arg=video.element_handle(), timeout=20_000)
    assert video.evaluate("v => v.currentTime") <= 16.05  # and stops at its end
    assert_inert(page)


def test_video_page_timeline_and_transcript_seek(page, tmp_path):
    q = caption_of(0, 1)
    page.goto(f"/video?id=v0&t=8&q={quote(q)}")
    page.wait_for_selector("#transcript li.line")
    lines = page.eval_on_selector_all("#transcript li.line", "els => els.map(e => e.textContent)")
    assert len(lines) == 2 and "<script>window.__xss = 1</script>" in lines[1] and XSS_NAME in lines[1]
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    assert abs(page.evaluate("() => document.getElementById('player').currentTime") - 8) < 0.5  # ?t=8
    step = page.locator("#timeline .step").first  # the query, placed on the timeline by the model (localize)
    step.wait_for()
    assert step.text_content() == q
    second = float(step.get_attribute("data-start"))
    page.click("#transcript li.line >> nth=1")  # transcript line at 9 s
    page.wait_for_function("() => Math.abs(document.getElementById('player').currentTime - 9) < 0.5")
    step.click()
    page.wait_for_function(f"() => Math.abs(document.getElementById('player').currentTime - {second}) < 0.5")
    # typed steps replace the timeline: one block per step, in order
    page.fill("#steps", f"{caption_of(0, 0)}\n{caption_of(0, 1)}")
    page.click("#localize")
    page.wait_for_function("() => document.querySelectorAll('#timeline .step').length === 2")
    starts = page.eval_on_selector_all("#timeline .step", "els => els.map(e => +e.dataset.start)")
    assert starts == sorted(starts) and all(0 <= s < 16 for s in starts)
    assert_inert(page)
    shot(page, tmp_path, "video")


def test_xss_video_page_and_missing_video(page):
    page.goto("/video?id=" + quote(XSS_NAME, safe=""))
    page.wait_for_function("() => document.getElementById('title').textContent.endsWith('.mp4')")
    assert page.text_content("#title") == XSS_NAME + ".mp4"
    assert "No transcript" in page.text_content("#transcript-status")
    assert_inert(page)
    page.goto("/video?id=gone")
    page.wait_for_selector("#video-problem:not([hidden])")
    assert "no longer exists" in page.text_content("#video-problem")
    page.goto("/video?id=" + quote("../../etc/passwd", safe=""))
    page.wait_for_selector("#title.error")
    assert page.text_content("#title").startswith("video not found: ../../etc/passwd")


def test_empty_and_failing_queries_show_a_message(page):
    page.goto("/")
    page.press("#q", "Enter")
    assert "Type some words" in page.text_content("#status")
    page.fill("#q", "x" * 100_001)
    page.press("#q", "Enter")
    page.wait_for_selector("#status.error")
    assert "characters" in page.text_content("#status")
    assert page.locator("li.hit").count() == 0
