// Video page: player, transcript and a timeline of the model's predicted steps; clicking either seeks.
"use strict";

const params = new URLSearchParams(location.search);
const vid = params.get("id") || "";
let duration = null;

function seek(seconds) {
  const player = document.getElementById("player");
  player.currentTime = seconds;
  player.play().catch(() => {});
}

function updatePlayhead() {
  const player = document.getElementById("player"), head = document.getElementById("playhead");
  const total = duration || player.duration;
  if (head && total) head.style.left = `${Math.min(100, 100 * player.currentTime / total)}%`;
}

function drawTimeline(blocks) {
  const line = document.getElementById("timeline");
  const total = duration || document.getElementById("player").duration || 1;
  line.replaceChildren(el("div", {class: "playhead", id: "playhead"}));
  for (const b of blocks) {
    const width = Math.max(100 * (b.end - b.start) / total, 1.5);
    const block = el("button", {class: "step", type: "button", title: `${fmtTime(b.start)} ${b.label}`,
                                "data-start": b.start, "data-end": b.end},
                     el("span", {text: b.label}));
    block.style.left = `${Math.min(100 * b.start / total, 100 - width)}%`;
    block.style.width = `${width}%`;
    block.addEventListener("click", () => seek(b.start));
    line.append(block);
  }
  updatePlayhead();
}

async function localize(steps) {
  const status = document.getElementById("timeline-status");
  try {
    const res = await withProgress(status, "placing the steps",
      id => postJSON(`/api/videos/${encodeURIComponent(vid)}/localize`, {steps, request_id: id}));
    drawTimeline(res.steps.map(s => ({start: s.second, end: s.second + 1, label: s.step})));
    status.textContent = `${res.steps.length} step(s) placed by the model (one second each, in the given order); click one to jump there.`;
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}

async function segments() {
  const status = document.getElementById("timeline-status");
  try {
    const res = await withProgress(status, "segmenting",
      id => api(`/api/videos/${encodeURIComponent(vid)}/segments?request_id=${id}`));
    drawTimeline(res.segments);
    status.textContent = `${res.segments.length} predicted step segment(s); click one to jump there.`;
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
  }
}

function showTranscript(video) {
  const list = document.getElementById("transcript"), status = document.getElementById("transcript-status");
  if (!video.transcript) { status.textContent = "No transcript for this video."; return; }
  status.textContent = `${video.transcript.length} line(s) from ${video.transcript_source}; click one to jump there.`;
  list.replaceChildren(...video.transcript.map(line => {
    const li = el("li", {class: "line", "data-start": line.start},
                  el("span", {class: "time", text: fmtTime(line.start)}), el("span", {text: line.text}));
    li.addEventListener("click", () => seek(line.start));
    return li;
  }));
}

document.addEventListener("DOMContentLoaded", async () => {
  showServing();
  const q = params.get("q") || "", t = Number(params.get("t") || 0);
  document.getElementById("back").href = q ? `/?q=${encodeURIComponent(q)}` : "/";
  const player = document.getElementById("player");
  for (const ev of ["timeupdate", "seeked", "loadedmetadata"]) player.addEventListener(ev, updatePlayhead);
  let video;
  try {
    video = await api(`/api/videos/${encodeURIComponent(vid)}`);
  } catch (e) {
    const title = document.getElementById("title");
    title.textContent = e.status === 404 ? `video not found: ${vid} (${e.message})` : e.message;
    title.className = "error";
    return;
  }
  duration = video.duration;
  document.getElementById("title").textContent = video.name;
  document.title = `${video.name} · actbert`;
  if (video.available) player.src = `${video.video_url}#t=${t}`;
  else {
    const p = document.getElementById("video-problem");
    p.textContent = video.problem || "the video file is missing";
    p.hidden = false;
  }
  showTranscript(video);
  const stepsBox = document.getElementById("steps");
  stepsBox.value = q;
  document.getElementById("localize-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const steps = stepsBox.value.split("\n").map(s => s.trim()).filter(Boolean);
    if (steps.length) localize(steps);
  });
  if (video.timeline.segment) segments();
  else if (q.trim()) localize([q.trim()]);
  else document.getElementById("timeline-status").textContent = "Type steps below to place them on the timeline.";
});
