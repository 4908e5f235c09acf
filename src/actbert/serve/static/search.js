// Search page: query -> /api/search -> result cards; clicking a card plays that clip in place, start to end.
"use strict";

let activeCard = null;

function stopClip(card) {
  const video = card.querySelector("video.clip-player");
  if (video) { video.pause(); video.removeAttribute("src"); video.load(); video.remove(); }
  const thumb = card.querySelector(".thumb");
  if (thumb) thumb.hidden = false;
  card.classList.remove("playing");
}

function playClip(card, hit) {
  if (!hit.available) return;
  if (activeCard && activeCard !== card) stopClip(activeCard);
  stopClip(card);
  activeCard = card;
  card.classList.add("playing");
  const thumb = card.querySelector(".thumb");
  if (thumb) thumb.hidden = true;
  // the media fragment starts the clip at its start; timeupdate stops it at its end
  const video = el("video", {class: "clip-player", controls: true, muted: true, autoplay: true, playsInline: true,
                             preload: "auto", src: `${hit.video_url}#t=${hit.start},${hit.end}`});
  video.addEventListener("loadedmetadata", () => {
    if (Math.abs(video.currentTime - hit.start) > 0.25) video.currentTime = hit.start;
    video.play().catch(() => {});
  });
  video.addEventListener("timeupdate", () => {
    if (video.currentTime >= hit.end - 0.05 && !video.paused) {
      video.pause();
      video.dataset.stopped = "end";
    }
  });
  card.querySelector(".media").prepend(video);
}

function card(hit) {
  const media = el("div", {class: "media", title: hit.available ? "play this clip" : "the video file is missing"});
  if (hit.available) media.append(el("img", {class: "thumb", src: hit.thumbnail_url, alt: "", loading: "lazy"}));
  else media.append(el("div", {class: "thumb missing", text: "video file missing"}));
  const score = !hit.reranked
    ? `first stage ${hit.first_stage_score.toFixed(4)} (not re-ranked)`
    : `score ${hit.score.toFixed(4)} · first stage ${hit.first_stage_score.toFixed(4)}`;
  const meta = el("div", {class: "meta"},
    el("span", {class: "rank", text: `#${hit.rank}`}),
    el("a", {class: "name", href: hit.page_url, text: hit.name, title: hit.video}),
    el("span", {class: "range", text: `${fmtTime(hit.start)} – ${fmtTime(hit.end)}`}),
    el("span", {class: "score", text: score}));
  const li = el("li", {class: "hit", "data-video": hit.video, "data-start": hit.start, "data-end": hit.end,
                       "data-rank": hit.rank}, media, meta);
  media.addEventListener("click", () => playClip(li, hit));
  return li;
}

async function runSearch(q, k) {
  const status = document.getElementById("status"), results = document.getElementById("results");
  if (!q.trim()) { status.textContent = "Type some words to search for."; status.className = "error"; return; }
  try {
    const res = await withProgress(status, "searching", id => postJSON("/api/search", {q, k, request_id: id}));
    if (activeCard) { stopClip(activeCard); activeCard = null; }
    results.replaceChildren(...res.hits.map(card));
    status.textContent = `${res.hits.length} clip(s) in ${(res.took_ms / 1000).toFixed(2)} s` +
      (res.rerank ? `, the best ${res.rerank} re-scored by the full model` : ", first stage only");
    if (window.firstResultsMs === undefined) window.firstResultsMs = performance.now();
    const url = new URL(location.href);
    url.searchParams.set("q", q);
    history.replaceState(null, "", url);
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const form = document.getElementById("search-form"), qBox = document.getElementById("q");
  const kBox = document.getElementById("k");
  form.addEventListener("submit", ev => { ev.preventDefault(); runSearch(qBox.value, Number(kBox.value) || 10); });
  const info = await showServing();
  if (info) {
    kBox.value = info.defaults.k;
    document.getElementById("index-summary").textContent =
      `${info.clips} clips of ${info.videos} videos (${info.clip_seconds} s each) · model ${info.model}`;
  }
  const q = new URLSearchParams(location.search).get("q");
  if (q) { qBox.value = q; runSearch(q, Number(kBox.value) || 10); }
});
