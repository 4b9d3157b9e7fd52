/* spacecast web app: the Space list, a Space's page for listeners, and host controls when the
 * URL fragment holds a token (#token=…; fragments never reach the server's logs). Plain JS. */
"use strict";
const $ = (sel, el = document) => el.querySelector(sel);
const app = $("#app");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const token = new URLSearchParams(location.hash.slice(1)).get("token");

/* Exponential backoff with full jitter, never earlier than the server's Retry-After. */
function backoffMs(attempt, retryAfterS) {
  const cap = Math.min(30000, 500 * 2 ** attempt);
  const jitter = Math.random() * cap;
  return Math.max(jitter, (retryAfterS || 0) * 1000 + Math.random() * 1000);
}

async function api(method, path, body, auth) {
  const headers = {};
  if (auth) headers.Authorization = "Bearer " + auth;
  if (body) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  let j = null;
  try { j = await r.json(); } catch (e) { /* empty body */ }
  if (!r.ok) {
    const err = new Error((j && j.error && j.error.message) || "HTTP " + r.status);
    err.status = r.status; err.retryAfter = +r.headers.get("Retry-After") || 0; err.body = j;
    throw err;
  }
  return j;
}

/* ---- list ---------------------------------------------------------------------------- */
async function listPage() {
  let attempt = 0;
  app.innerHTML = `<h1>Spaces</h1><div id="list" class="notice">Loading…</div>
    <details class="card"><summary>Create a Space</summary>
      <form id="create" class="row"><label>Admin key <input id="key" type="password" autocomplete="off"></label>
      <label>Title <input id="title" required maxlength="256"></label>
      <label>Starts <input id="when" type="datetime-local"></label><button>Create</button></form>
      <p id="created" class="notice"></p></details>`;
  $("#key").value = sessionStorage.getItem("adminKey") || "";
  $("#create").onsubmit = async (ev) => {
    ev.preventDefault();
    const key = $("#key").value; sessionStorage.setItem("adminKey", key);
    const body = { title: $("#title").value };
    if ($("#when").value) body.scheduled_start = Math.floor(new Date($("#when").value).getTime() / 1000);
    try {
      const j = await api("POST", "/api/spaces", body, key);
      $("#created").innerHTML = `Created. Host link (keep it private): <a href="/s/${j.id}#token=${esc(j.host_token)}">/s/${j.id}#token=…</a>`;
    } catch (e) { $("#created").textContent = "Could not create: " + e.message; }
  };
  const refresh = async () => {
    try {
      const j = await api("GET", "/api/spaces");
      attempt = 0;
      const spaces = j.spaces.filter((s) => s.state !== "ended");
      $("#list").innerHTML = spaces.length ? spaces.map((s) => `<div class="card"><span class="state ${s.state}">${s.state}</span>
        <a href="/s/${s.id}"><strong>${esc(s.title)}</strong></a> · ${s.listeners} listening</div>`).join("")
        : "No live or upcoming Spaces.";
      setTimeout(refresh, 5000);
    } catch (e) {
      const wait = backoffMs(attempt++, e.retryAfter);
      $("#list").textContent = `Could not load the list (${e.message}). Trying again in ${Math.round(wait / 1000)} s.`;
      setTimeout(refresh, wait);
    }
  };
  refresh();
}

/* ---- a Space --------------------------------------------------------------------------- */
function spacePage(id) {
  let details = null, playing = false, attempt = 0, es = null, retryTimer = null;
  app.innerHTML = `<div id="head"><p class="notice">Loading the Space…</p></div>
    <div class="card"><div class="row"><button id="play" class="big">▶ Play</button><span id="status" class="notice"></span></div>
      <audio id="audio" preload="none"></audio><div id="alt"></div></div>
    <div class="card"><h2>Speakers</h2><ul id="speakers" class="speakers"></ul>
      <p><span id="tally">–</span> listening · peak <span id="peak">–</span></p>
      <form id="ask" class="row"><label>Your name <input id="askname" maxlength="64" required></label><button>Request to speak</button></form>
      <p id="asked" class="notice"></p></div>
    <div id="host"></div>`;
  const audio = $("#audio"), status = $("#status");
  window.__level = 0;

  function render() {
    const d = details;
    const when = d.scheduled_start ? new Date(d.scheduled_start * 1000) : null;
    let words = { scheduled: "Scheduled", live: "Live now", ended: "Ended" }[d.state];
    if (d.state === "scheduled") {
      const left = when ? Math.round((when - Date.now()) / 1000) : 0;
      words = left > 0 ? `Starts in ${Math.floor(left / 3600)}h ${Math.floor(left / 60) % 60}m ${left % 60}s`
                       : "Waiting for the host to start — waiting music is playing";
    }
    $("#head").innerHTML = `<span class="state ${d.state}">${esc(words)}</span><h1>${esc(d.title)}</h1>
      <p class="notice">Hosted by ${esc(d.host)}</p>`;
    $("#speakers").innerHTML = d.speakers.map((s) => `<li class="${s.speaking ? "speaking" : ""}">${esc(s.name)}
      ${s.role !== "speaker" ? `<small>(${s.role})</small>` : ""}${s.muted ? " 🔇" : ""}</li>`).join("");
    $("#tally").textContent = d.listeners; $("#peak").textContent = d.peak;
    if (d.state === "ended") {
      $("#play").hidden = true;
      status.innerHTML = `This Space has ended. <a href="${d.urls.replay}">Listen to the replay</a>`;
      if (!$("#replay")) $("#alt").innerHTML = `<audio id="replay" controls src="${d.urls.replay}"></audio>`;
    }
    if (token) renderHost();
  }

  async function load() {
    try {
      details = await api("GET", "/api/spaces/" + id);
      attempt = 0; render(); subscribe();
    } catch (e) {
      const wait = backoffMs(attempt++, e.retryAfter);
      $("#head").innerHTML = `<p class="warn">${e.status === 404 ? "There is no such Space." :
        "The Space's details could not be loaded (" + esc(e.message) + ")."} ${e.status === 404 ? "" : "Trying again in " + Math.round(wait / 1000) + " s."}</p>`;
      if (e.status !== 404) setTimeout(load, wait);
    }
  }

  function subscribe() {
    if (es) return;
    es = new EventSource(`/api/spaces/${id}/events` + (token ? "?token=" + encodeURIComponent(token) : ""));
    es.addEventListener("space", (ev) => { details = JSON.parse(ev.data); render(); });
    es.addEventListener("tally", (ev) => { const t = JSON.parse(ev.data); $("#tally").textContent = t.listeners; $("#peak").textContent = t.peak; });
    es.addEventListener("request", (ev) => { const r = JSON.parse(ev.data); addRequest(r.name); });
  }

  /* The player: reconnects by itself, honouring Retry-After, and says what is happening. */
  async function start() {
    clearTimeout(retryTimer);
    status.textContent = "Connecting…";
    const url = `/spaces/${id}/live.ogg`;
    try {
      const probe = await fetch(url, { method: "HEAD" });
      if (!probe.ok) {
        let body = null;
        try { body = await (await fetch(url)).json(); } catch (e) { /* no body */ }
        const err = new Error(body && body.error ? body.error.message : "HTTP " + probe.status);
        err.status = probe.status; err.retryAfter = +probe.headers.get("Retry-After") || (body && body.error && body.error.retry_after) || 0;
        err.body = body; throw err;
      }
      audio.src = url + "?t=" + Date.now();
      await audio.play();
      attempt = 0; status.textContent = "Playing"; $("#alt").textContent = "";
    } catch (e) {
      if (!playing) return;
      if (e.status === 409) { status.innerHTML = `This Space has ended. <a href="/spaces/${id}/replay.ogg">Listen to the replay</a>`; return; }
      const wait = backoffMs(attempt++, e.retryAfter);
      const full = e.status === 503;
      status.textContent = (full ? "This Space is full" : "Connection lost") + ` — trying again in ${Math.ceil(wait / 1000)} s`;
      const alt = e.body && e.body.alternatives;
      $("#alt").innerHTML = alt ? `<p class="notice">Meanwhile: ${alt.hls ? `<a href="${alt.hls}">listen via HLS</a> · ` : ""}${alt.replay ? `<a href="${alt.replay}">listen to the replay</a>` : ""}</p>` : "";
      retryTimer = setTimeout(start, wait);
    }
  }
  audio.addEventListener("error", () => { if (playing) { status.textContent = "Reconnecting…"; retryTimer = setTimeout(start, backoffMs(attempt++, 0)); } });
  audio.addEventListener("ended", () => { if (playing) load(); });
  $("#play").onclick = () => {
    playing = !playing;
    $("#play").textContent = playing ? "❚❚ Stop" : "▶ Play";
    if (playing) { meter(); start(); } else { audio.pause(); audio.removeAttribute("src"); status.textContent = ""; clearTimeout(retryTimer); }
  };
  let ctx = null;
  function meter() { /* a level meter, also exposed for tests as window.__level */
    if (ctx) return;
    try {
      ctx = new AudioContext(); const an = ctx.createAnalyser(); const buf = new Float32Array(2048);
      ctx.createMediaElementSource(audio).connect(an); an.connect(ctx.destination);
      (function tick() { an.getFloatTimeDomainData(buf); let s = 0; for (const v of buf) s += v * v;
        window.__level = Math.sqrt(s / buf.length); requestAnimationFrame(tick); })();
    } catch (e) { /* no Web Audio: play without a meter */ }
  }
  $("#ask").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("POST", `/api/spaces/${id}/requests`, { name: $("#askname").value }); $("#asked").textContent = "The host has been asked."; }
    catch (e) { $("#asked").textContent = "Could not ask: " + e.message; }
  };

  /* Host and cohost controls. */
  const requests = new Set();
  function addRequest(name) { requests.add(name); renderHost(); }
  function renderHost() {
    const d = details; if (!d) return;
    const el = $("#host");
    el.className = "card";
    el.innerHTML = `<h2>Host controls</h2><div class="row">
      ${d.state === "scheduled" ? '<button id="start">Start the Space</button>' : ""}
      ${d.state !== "ended" ? '<button id="end">End the Space</button>' : ""}</div>
      <p class="notice">Publish your voice with <code>ffmpeg … icecast://source:TOKEN@host/spaces/${id}/source</code> or <code>spacecast speak</code>.</p>
      <h3>Requests to speak</h3><ul id="reqs">${[...requests].map((n) => `<li>${esc(n)} <button data-invite="${esc(n)}">Invite</button></li>`).join("") || "<li class=notice>None yet</li>"}</ul>
      <p id="invited" class="notice"></p>
      <h3>Speakers</h3><ul>${d.speakers.filter((s) => s.role !== "host").map((s) => `<li>${esc(s.name)}
        <button data-mute="${esc(s.name)}" data-muted="${s.muted}">${s.muted ? "Unmute" : "Mute"}</button>
        <button data-remove="${esc(s.name)}">Remove</button></li>`).join("")}</ul>`;
    const act = async (fn) => { try { await fn(); } catch (e) { $("#invited").textContent = e.message; } };
    if ($("#start")) $("#start").onclick = () => act(() => api("POST", `/api/spaces/${id}/start`, null, token));
    if ($("#end")) $("#end").onclick = () => act(() => api("POST", `/api/spaces/${id}/end`, null, token));
    el.querySelectorAll("[data-invite]").forEach((b) => (b.onclick = () => act(async () => {
      const j = await api("POST", `/api/spaces/${id}/speakers`, { name: b.dataset.invite, role: "speaker" }, token);
      requests.delete(b.dataset.invite);
      $("#invited").innerHTML = `Send ${esc(j.name)} this link: <code>${location.origin}/s/${id}#token=${esc(j.token)}</code>`;
    })));
    el.querySelectorAll("[data-mute]").forEach((b) => (b.onclick = () => act(() =>
      api("PATCH", `/api/spaces/${id}/speakers/${encodeURIComponent(b.dataset.mute)}`, { muted: b.dataset.muted !== "true" }, token))));
    el.querySelectorAll("[data-remove]").forEach((b) => (b.onclick = () => act(() =>
      api("DELETE", `/api/spaces/${id}/speakers/${encodeURIComponent(b.dataset.remove)}`, null, token))));
  }
  setInterval(() => { if (details && details.state === "scheduled") render(); }, 1000);
  load();
}

const m = location.pathname.match(/^\/s\/([A-Za-z0-9_-]{1,32})$/);
if (m) spacePage(m[1]); else listPage();
