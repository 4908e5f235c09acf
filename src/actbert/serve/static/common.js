// Shared helpers of the actbert pages. Everything that comes from the index (names, transcripts, steps) is
// put in the page with textContent or attributes set by the DOM API, never parsed as HTML.
"use strict";

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, String(v));
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function fmtTime(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return "?";
  const m = Math.floor(s / 60), r = s - 60 * m;
  return `${m}:${r.toFixed(1).padStart(4, "0")}`;
}

async function api(url, options) {
  const resp = await fetch(url, options);
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    let msg = body && body.detail !== undefined ? body.detail : `HTTP ${resp.status}`;
    if (typeof msg !== "string") msg = JSON.stringify(msg);
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function postJSON(url, data) {
  return api(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)});
}

function newRequestId() {
  const a = new Uint8Array(8);
  crypto.getRandomValues(a);
  return Array.from(a, b => b.toString(16).padStart(2, "0")).join("");
}

// Runs `work(requestId)` while showing its progress (queue position, elapsed time) in `statusNode`.
async function withProgress(statusNode, label, work) {
  const id = newRequestId(), began = performance.now();
  let state = "sending", finished = false;
  statusNode.className = "busy";
  const show = () => {
    if (finished) return;  // a progress poll answered after the result: the caller's text stands
    const secs = ((performance.now() - began) / 1000).toFixed(1);
    statusNode.textContent = `${label}… ${state} (${secs} s)`;
  };
  show();
  const timer = setInterval(async () => {
    try {
      const p = await api(`/api/progress/${id}`);
      if (p.state === "queued") state = `waiting for the model, ${p.ahead} request(s) ahead`;
      else if (p.state === "running") state = "the model is working";
    } catch (e) { /* progress is a nicety: the answer itself reports errors */ }
    show();
  }, 300);
  try {
    return await work(id);
  } finally {
    finished = true;
    clearInterval(timer);
    statusNode.className = "";
  }
}

async function showServing() {
  const node = document.getElementById("serving");
  try {
    const info = await api("/api/info");
    node.textContent = `serving ${info.address}` + (info.local_only ? " (this computer only)" : " (reachable from other hosts)");
    return info;
  } catch (e) {
    node.textContent = `server not reachable: ${e.message}`;
    node.className = "error";
    return null;
  }
}
