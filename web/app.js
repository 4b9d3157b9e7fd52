/* spacecast web app: the Space list, a Space's page for listeners, and host controls when the
 * URL fragment holds a token (#token=…; fragments never reach the server's logs). Plain JS. */
"use strict";
/* global scRms -- from player.js, loaded first; ScReactions, ScPin, ScReplay, ScHostExtras, ScStats: #19's files */
const $ = (sel, el = document) => el.querySelector(sel);
const app = $("#app");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
/* What the token says about us (its payload is readable; only the server can check it):
 * "v1|space|role|name|generation|expires", base64url. */
const me = (() => {
  try {
    const b = atob(token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/"));
    const f = new TextDecoder().decode(Uint8Array.from(b, (c) => c.charCodeAt(0))).split("|");
    return { role: f[2], name: f[3] };
  } catch (e) { return null; }
})();
const RANK = { listener: 0, speaker: 1, cohost: 2, host: 3 };
const atLeast = (role) => !!me && RANK[me.role] >= RANK[role];

/* The Icecast source command for a speaker, with this server's real address: 20 ms Ogg pages
 * (ffmpeg's default of one page a second adds a second of delay) and a bit rate (#20.7); over
 * TLS when this page came over HTTPS (the port it names speaks only TLS). */
function sourceCommand(id, token) {
  const tls = location.protocol === "https:" ? "-tls 1 " : "";
  return `ffmpeg -re -i talk.wav -c:a libopus -b:a 32k -page_duration 20000 ${tls}-content_type audio/ogg -f ogg icecast://source:${token}@${location.host}/spaces/${id}/source`;
}

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

/* ---- words for when, how long and who (#20.9) ---------------------------------------- */
/* In the reader's own locale and time zone; the year only when it is not this year. */
function fmtDay(t) {
  const o = { weekday: "short", day: "numeric", month: "short" };
  if (t.getFullYear() !== new Date().getFullYear()) o.year = "numeric";
  return t.toLocaleDateString(undefined, o);
}
const fmtTime = (t) => t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
const fmtWhen = (t) => `${fmtDay(t)} at ${fmtTime(t)}`;
function fmtDuration(s) {
  if (s < 60) return `${Math.max(0, Math.round(s))} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}
function fmtCountdown(s) {
  if (s >= 2 * 86400) return `in ${Math.round(s / 86400)} days`;
  if (s >= 3600) return `in ${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
  return `in ${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}
/* When an ended Space ran: "Tue 1 Dec, 14:02–14:44 · 42 min" (both days if it ran past midnight). */
function fmtRan(d) {
  const a = new Date(d.started_at * 1000), b = new Date(d.ended_at * 1000);
  if (d.ended_at - d.started_at < 1) return `${fmtWhen(b)} · it did not go live`;
  const span = fmtDay(a) === fmtDay(b) ? `${fmtDay(a)}, ${fmtTime(a)}–${fmtTime(b)}` : `${fmtWhen(a)} – ${fmtWhen(b)}`;
  return `${span} · ${fmtDuration(d.ended_at - d.started_at)}`;
}
/* The chip and the line under the title for a Space's state. */
function stateWords(d) {
  if (d.state === "live") return { chip: "Live now", line: d.started_at ? `Live since ${fmtTime(new Date(d.started_at * 1000))}` : "" };
  if (d.state === "ended") return { chip: "Ended", line: d.started_at && d.ended_at ? fmtRan(d) : "" };
  if (!d.scheduled_start) return { chip: "Not started", line: "Waiting for the host to start" };
  const when = new Date(d.scheduled_start * 1000), left = Math.round((when - Date.now()) / 1000);
  return left > 0 ? { chip: "Scheduled", line: `Starts ${fmtWhen(when)} — ${fmtCountdown(left)}` }
                  : { chip: "Not started", line: `Was due ${fmtWhen(when)} — waiting for the host to start` };
}
/* The audience: live numbers while it runs, what it had once it is over. */
function tallyHtml(d) {
  if (d.state !== "ended") return `<span id="tally">${d.listeners}</span> listening · peak <span id="peak">${d.peak}</span>`;
  if (!d.peak) return "Nobody listened live.";
  return `At most ${d.peak} listened at once · ${d.total_joins} ${d.total_joins === 1 ? "join" : "joins"} in all.`;
}
/* A speaker as the page lists them: invited but not sending audio is said, not hidden. */
function speakerHtml(s, d) {
  const away = d.state !== "ended" && !s.connected;
  const role = s.role === "host" ? "host" : s.role === "cohost" ? "co-host" : "";
  return `<li class="${s.speaking ? "speaking" : ""}${away ? " away" : ""}"${away ? ' title="Invited; their audio is not connected"' : ""}>${esc(s.name)}
    ${role ? `<small>(${role})</small>` : ""}${s.muted ? " <small>(muted)</small>" : ""}${away ? " <small>· not connected</small>" : ""}</li>`;
}

/* ---- list ---------------------------------------------------------------------------- */
/* A live or upcoming Space in the list: its state in words, host, audience or start time. */
function listCard(s) {
  const w = stateWords(s);
  const what = s.state === "live" ? `${s.listeners} listening` : esc(w.line);
  return `<div class="card"><span class="state ${s.state}">${esc(w.chip)}</span>
    <a href="/s/${s.id}"><strong>${esc(s.title)}</strong></a> · <span class="notice">hosted by ${esc(s.host)}</span><br>${what}</div>`;
}
/* An ended Space: when it ran, and its replay (its page has the player) if it was recorded. */
function replayCard(s) {
  return `<div class="card replay"><a href="/s/${s.id}"><strong>${esc(s.title)}</strong></a> · <span class="notice">hosted by ${esc(s.host)}</span>
    <br><span class="notice">${esc(stateWords(s).line)}</span>
    ${s.record && s.ended_at > s.started_at ? `<br><a href="/s/${s.id}">▶ Listen to the replay</a>` : '<br><span class="notice">No recording</span>'}</div>`;
}

async function listPage() {
  let attempt = 0;
  app.innerHTML = `<h1>Spaces</h1><div id="list" class="notice">Loading…</div>
    <section id="replaysection" hidden><h2>Ended — replays</h2><div id="replays"></div></section>
    <details class="card"><summary>Create a Space</summary>
      <form id="create" class="row"><label>Admin key <input id="key" type="password" autocomplete="off"></label>
      <label>Title <input id="title" required maxlength="256"></label>
      <label>Host's name <input id="hostname" maxlength="64" placeholder="host"></label>
      <label>Starts <input id="when" type="datetime-local"></label><button>Create</button></form>
      <p id="created" class="notice"></p></details>`;
  $("#key").value = sessionStorage.getItem("adminKey") || "";
  $("#create").onsubmit = async (ev) => {
    ev.preventDefault();
    const key = $("#key").value; sessionStorage.setItem("adminKey", key);
    const body = { title: $("#title").value };
    if ($("#hostname").value.trim()) body.host_name = $("#hostname").value.trim();
    if ($("#when").value) body.scheduled_start = Math.floor(new Date($("#when").value).getTime() / 1000);
    try {
      const j = await api("POST", "/api/spaces", body, key);
      $("#created").innerHTML = `Created. Host link (keep it private): <a href="/s/${j.id}#token=${esc(j.host_token)}">/s/${j.id}#token=…</a>`;
    } catch (e) { $("#created").textContent = "Could not create: " + e.message; }
  };
  const refresh = async () => {
    try {
      /* a page of live (by audience) then upcoming Spaces, and a page of the latest ended ones */
      const [j, e] = await Promise.all([api("GET", "/api/spaces?limit=100"), api("GET", "/api/spaces?state=ended&limit=20")]);
      attempt = 0;
      const spaces = j.spaces.filter((s) => s.state !== "ended");
      $("#list").innerHTML = spaces.length ? spaces.map(listCard).join("") : "No live or upcoming Spaces.";
      const ended = e.spaces;
      $("#replays").innerHTML = ended.map(replayCard).join("");
      $("#replaysection").hidden = !ended.length;
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
  let details = null, playing = false, attempt = 0, es = null, retryTimer = null, viaHls = false, replay = null;
  const startT = +new URLSearchParams(location.search).get("t") || 0; /* a shared moment: /s/{id}?t=… */
  app.innerHTML = `<div id="head"><p class="notice">Loading the Space…</p></div><div id="pin" hidden></div>
    <div class="card"><div class="row"><button id="play" class="big">▶ Play</button><span id="status" class="notice" role="status"></span></div>
      <audio id="audio" preload="none"></audio><div id="alt"></div></div><div id="reactions" hidden></div><div id="replaybox"></div>
    <div class="card"><h2>Speakers</h2><ul id="speakers" class="speakers"></ul>
      <p id="tallyline"><span id="tally">–</span> listening · peak <span id="peak">–</span></p>
      <form id="ask" class="row"><label>Your name <input id="askname" maxlength="64" required></label><button>Request to speak</button></form>
      <p id="asked" class="notice"></p></div>
    <div id="stage"></div><div id="host"></div><div id="hostextras" hidden></div>`;
  ScReactions.mount($("#reactions"), id, { host: atLeast("cohost") });
  const audio = $("#audio"), status = $("#status");
  window.__level = 0;

  function render() {
    const d = details;
    const w = stateWords(d);
    $("#head").innerHTML = `<span class="state ${d.state}">${esc(w.chip)}</span><h1>${esc(d.title)}</h1>
      <p class="notice">Hosted by ${esc(d.host)}${w.line ? `<br><span id="when">${esc(w.line)}</span>` : ""}</p>`;
    $("#speakers").innerHTML = d.speakers.map((s) => speakerHtml(s, d)).join("");
    $("#tallyline").innerHTML = tallyHtml(d);
    if (!playing) $("#play").textContent = playLabel();
    else if (/^Playing/.test(status.textContent)) status.textContent = playingWords();
    /* asking to speak is for listeners of a Space that is not over */
    $("#ask").hidden = d.state === "ended" || atLeast("speaker");
    if (d.state === "ended") {
      $("#asked").textContent = "";
      if (playing) stopPlaying();
      $("#play").hidden = true;
      status.innerHTML = `This Space has ended. <a href="${d.urls.replay}">Listen to the replay</a>`;
    }
    renderExtras(d);
    if (atLeast("speaker")) renderStage();
    if (atLeast("cohost")) renderHost();
  }

  /* #19: the pinned link, reactions while live, the replay (ended; or from the beginning while
   * live), the host's mark and numbers. Their own files; here only where they go. */
  function renderExtras(d) {
    ScPin.render($("#pin"), d, atLeast("cohost") ? token : null);
    ScReactions.show(d.state === "live");
    ScHostExtras.render($("#hostextras"), d, atLeast("cohost") ? token : null, atLeast("host"));
    if (d.state === "ended" && d.record && !replay) replay = ScReplay.mount($("#replaybox"), id, { live: false, t: startT });
    else if (d.state === "ended" && replay) replay.setLive(false);
    else if (d.state === "live" && !replay && d.record && (startT || !$("#frombeginning"))) {
      if (startT) replay = ScReplay.mount($("#replaybox"), id, { live: true, t: startT });
      else {
        $("#replaybox").innerHTML = `<p class="card"><button id="frombeginning">⏮ Joined late? Play from the beginning</button></p>`;
        $("#frombeginning").onclick = () => { if (playing) stopPlaying(); replay = ScReplay.mount($("#replaybox"), id, { live: true, t: 0, play: true }); };
      }
    }
  }

  async function load() {
    try {
      details = await api("GET", "/api/spaces/" + id);
      attempt = 0; render();
      if (details.state !== "ended") subscribe(); /* an ended Space's stream is its snapshot, then the end */
    } catch (e) {
      const wait = backoffMs(attempt++, e.retryAfter);
      $("#head").innerHTML = `<p class="warn">${e.status === 404 ? "There is no such Space." :
        "The Space's details could not be loaded (" + esc(e.message) + ")."} ${e.status === 404 ? "" : "Trying again in " + Math.round(wait / 1000) + " s."}</p>`;
      if (e.status !== 404) setTimeout(load, wait);
    }
  }

  function subscribe() {
    if (es) return;
    /* hosts and cohosts get the requests to speak on their stream */
    es = new EventSource(`/api/spaces/${id}/events` + (atLeast("cohost") ? "?token=" + encodeURIComponent(token) : ""));
    es.addEventListener("space", (ev) => { details = JSON.parse(ev.data); render(); if (details.state === "ended") es.close(); });
    /* the last event: the server closes the stream after it, and EventSource must not reconnect */
    es.addEventListener("state", (ev) => { if (JSON.parse(ev.data).state === "ended") { es.close(); load(); } });
    es.addEventListener("tally", (ev) => {
      const t = JSON.parse(ev.data);
      Object.assign(details, { listeners: t.listeners, peak: t.peak, total_joins: t.total_joins });
      $("#tallyline").innerHTML = tallyHtml(details);
    });
    es.addEventListener("request", (ev) => { const r = JSON.parse(ev.data); addRequest(r.name); });
    /* the open requests when the stream (re)starts, and each that is invited, dismissed or lapses */
    es.addEventListener("requests", (ev) => { requests.clear(); JSON.parse(ev.data).requests.forEach((r) => requests.add(r.name)); renderHost(); });
    es.addEventListener("request_closed", (ev) => { requests.delete(JSON.parse(ev.data).name); renderHost(); });
    es.addEventListener("reactions", (ev) => ScReactions.onEvent(JSON.parse(ev.data)));
  }

  /* The player: reconnects by itself, honouring Retry-After, and says what is happening. */
  /* WebCodecs where the browser has it (starts at the live edge at once); else <audio> */
  /* ?lid: this browser's random id, so the host's unique-listener count can tell people apart */
  const liveUrl = `/spaces/${id}/live.ogg?lid=${encodeURIComponent(ScReactions.listener)}`;
  const player = window.LivePlayer && LivePlayer.supported() ? new LivePlayer(liveUrl) : null;
  async function start() {
    clearTimeout(retryTimer);
    status.textContent = "Connecting…";
    const url = liveUrl;
    try {
      if (player) {
        await player.start((why) => {
          if (!playing) return;
          if (why === "ended") { stopPlaying(); load(); return; } /* the page turns to the replay */
          status.textContent = "Connection lost — reconnecting…";
          retryTimer = setTimeout(start, backoffMs(attempt++, 0));
        });
      } else {
        /* HEAD gets the same answer as GET for the limits (full, ended) without taking a
         * listener's place, and an <audio> element cannot tell us a status or Retry-After */
        const probe = await fetch(url, { method: "HEAD", cache: "no-store" });
        if (!probe.ok) {
          const err = new Error("HTTP " + probe.status);
          err.status = probe.status; err.retryAfter = +probe.headers.get("Retry-After") || 0;
          err.body = details ? { alternatives: { hls: details.urls.hls, replay: details.urls.replay } } : null;
          throw err;
        }
        audio.src = url + "&t=" + Date.now();
        await audio.play();
      }
      if (viaHls) { viaHls = false; if (player) stopHls(); }
      attempt = 0; status.textContent = playingWords(); $("#alt").textContent = "";
    } catch (e) {
      if (!playing) return;
      if (e.status === 409) { stopPlaying(); load(); return; }
      const wait = backoffMs(attempt++, e.retryAfter);
      const full = e.status === 503;
      const alt = e.body && e.body.alternatives;
      /* Overflow: a full live stream that names an HLS alternative is played from HLS at once
       * (hls.js, or natively without MSE: playHls), while the live stream is tried again. */
      if (full && alt && alt.hls && !viaHls && (hasMse() || audio.canPlayType("application/vnd.apple.mpegurl"))) {
        viaHls = true;
        playHls(alt.hls).catch(() => { viaHls = false; stopHls(); });
      }
      let left = Math.ceil(wait / 1000);
      const say = () => {
        status.textContent = viaHls ? `The live stream is full — playing via HLS, a few seconds behind. Trying the live stream again in ${left} s`
          : (full ? "This Space is full" : "Connection lost") + ` — trying again in ${left} s`;
      };
      say();
      const tick = setInterval(() => { if (--left <= 0 || !playing) clearInterval(tick); else say(); }, 1000);
      $("#alt").innerHTML = alt && !viaHls ? `<p class="notice">Meanwhile: ${alt.hls ? `<a href="${esc(alt.hls)}">listen via HLS</a> · ` : ""}${alt.replay ? `<a href="${esc(alt.replay)}">listen to the replay</a>` : ""}</p>` : "";
      retryTimer = setTimeout(start, wait);
    }
  }
  /* Before the start the stream is the lobby's waiting music, and the Space follows in the same
   * stream when the host starts it: the button and the status say so. */
  const lobby = () => details && details.state === "scheduled";
  const playLabel = () => (lobby() ? "▶ Play the waiting music" : "▶ Play");
  const playingWords = () => (lobby() ? "Playing the waiting music — the Space starts right here when the host starts it" : "Playing");
  function stopPlaying() {
    playing = false;
    $("#play").textContent = playLabel();
    if (player) player.stop();
    stopHls(); viaHls = false;
    status.textContent = ""; clearTimeout(retryTimer);
  }
  /* HLS in the <audio> element: with hls.js wherever Media Source Extensions exist (spacecast
   * serves it; the page loads it only now, it is ~390 KB), natively only without them (older
   * iPhones). Not native first: Chromium's own HLS player (156 here) gives up with "Segment queue
   * never had any data" on a live playlist only a few segments long, which is what a Space
   * that has just started, or a server that has just restarted, has (docs/webapp.md). */
  const hasMse = () => !!(window.MediaSource || window.ManagedMediaSource);
  let hls = null;
  function loadScript(src) {
    return new Promise((ok, fail) => { const el = document.createElement("script"); el.src = src; el.onload = ok; el.onerror = fail; document.head.append(el); });
  }
  async function playHls(url) {
    /* hls.js missing (a build without npm) or unsupported: the browser's own player, if any */
    if (hasMse() && !window.Hls) await loadScript("/web/vendor/hls.js").catch(() => {});
    if (!window.Hls || !Hls.isSupported()) {
      if (!audio.canPlayType("application/vnd.apple.mpegurl")) throw new Error("no HLS player");
      audio.src = url;
      return audio.play();
    }
    hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_ev, data) => { if (data.fatal) audio.dispatchEvent(new Event("error")); });
    hls.loadSource(url);
    hls.attachMedia(audio);
    return audio.play();
  }
  function stopHls() {
    if (hls) { hls.destroy(); hls = null; }
    audio.pause(); audio.removeAttribute("src");
  }
  /* the element plays the direct stream (no WebCodecs) or the HLS overflow */
  audio.addEventListener("error", () => {
    if (!playing || (player && !viaHls) || !(audio.getAttribute("src") || hls)) return;
    viaHls = false; stopHls(); status.textContent = "Reconnecting…";
    clearTimeout(retryTimer); retryTimer = setTimeout(start, backoffMs(attempt++, 0));
  });
  audio.addEventListener("ended", () => { if (playing && (!player || viaHls)) load(); });
  $("#play").onclick = () => {
    if (playing) { stopPlaying(); return; }
    playing = true;
    $("#play").textContent = "❚❚ Stop";
    meter(); /* inside the click: an AudioContext made here may play */
    start();
  };
  let meterTimer = null, analyser = null;
  function meter() { /* a level meter, also exposed for tests as window.__level */
    if (meterTimer) return;
    try { /* the <audio> element's sound goes through Web Audio to be measured */
      const c = new AudioContext(); analyser = c.createAnalyser();
      c.createMediaElementSource(audio).connect(analyser); analyser.connect(c.destination);
    } catch (e) { analyser = null; /* no Web Audio: play without a meter */ }
    const buf = new Float32Array(2048);
    meterTimer = setInterval(() => {
      if (player && !viaHls) { window.__level = player.level; return; }
      if (!analyser) return;
      analyser.getFloatTimeDomainData(buf);
      window.__level = scRms(buf);
    }, 50);
  }
  $("#ask").onsubmit = async (ev) => {
    ev.preventDefault();
    try { await api("POST", `/api/spaces/${id}/requests`, { name: $("#askname").value }); $("#asked").textContent = "The host has been asked."; }
    catch (e) { $("#asked").textContent = "Could not ask: " + e.message; }
  };

  /* Host and cohost controls. */
  const requests = new Set();
  let hostNote = "";
  function addRequest(name) { requests.add(name); renderHost(); }
  function renderHost() {
    const d = details; if (!d) return;
    const el = $("#host");
    const host = atLeast("host");
    el.className = "card";
    el.innerHTML = `<h2>${host ? "Host" : "Co-host"} controls</h2><div class="row">
      ${host && d.state === "scheduled" ? '<button id="start">Start the Space</button>' : ""}
      ${host && d.state !== "ended" ? '<button id="end">End the Space</button>' : ""}</div>
      <h3>Requests to speak</h3><ul id="reqs">${[...requests].map((n) => `<li>${esc(n)} <button data-invite="${esc(n)}">Invite to speak</button> <button data-dismiss="${esc(n)}">Dismiss</button></li>`).join("") || "<li class=notice>None yet</li>"}</ul>
      <form id="inviteform" class="row"><label>Invite <input id="invname" maxlength="64" required placeholder="name"></label>
        <label>as <select id="invrole"><option value="speaker">speaker</option>${host ? '<option value="cohost">co-host</option>' : ""}</select></label>
        <button>Invite</button></form>
      <p id="invited" class="notice" role="status">${hostNote}</p>
      <h3>Invited speakers</h3><ul id="stagelist">${d.speakers.filter((s) => s.role !== "host").map((s) => `<li>${esc(s.name)}
        ${s.role === "cohost" ? "<small>(co-host)</small>" : ""}${!s.connected && d.state !== "ended" ? " <small>· not connected</small>" : ""}
        <button data-mute="${esc(s.name)}" data-muted="${s.muted}" aria-label="${s.muted ? "Unmute" : "Mute"} ${esc(s.name)}">${s.muted ? "Unmute" : "Mute"}</button>
        <button data-remove="${esc(s.name)}" aria-label="Remove ${esc(s.name)}">Remove</button></li>`).join("") || "<li class=notice>Nobody yet</li>"}</ul>
      <p class="notice">Speakers can also publish from a terminal, with the token of their invitation:
        <code id="srchint">${esc(sourceCommand(id, "TOKEN"))}</code> (any Icecast source client works: Opus, Vorbis, FLAC, MP3, AAC), or <code>spacecast speak</code>.</p>`;
    /* the host card is redrawn on every change of the Space: its last message is kept apart */
    const note = (html) => { hostNote = html; $("#invited").innerHTML = html; };
    const act = async (fn) => { try { await fn(); } catch (e) { note(esc(e.message)); } };
    const invite = (name, role) => act(async () => {
      const j = await api("POST", `/api/spaces/${id}/speakers`, { name, role }, token);
      requests.delete(name); renderHost();
      const link = `${location.origin}/s/${id}#token=${j.token}`;
      note(`Invited ${esc(j.name)} as ${esc(j.role)}. Send them this link (it is their key; keep it private): <a id="invitelink" href="${esc(link)}">${esc(link.slice(0, 60))}…</a>
        or this command: <code id="invitecmd">${esc(sourceCommand(id, j.token))}</code>`);
    });
    if ($("#start")) $("#start").onclick = () => act(() => api("POST", `/api/spaces/${id}/start`, null, token));
    if ($("#end")) $("#end").onclick = () => act(() => api("POST", `/api/spaces/${id}/end`, null, token));
    el.querySelectorAll("[data-invite]").forEach((b) => (b.onclick = () => invite(b.dataset.invite, "speaker")));
    el.querySelectorAll("[data-dismiss]").forEach((b) => (b.onclick = () => act(() =>
      api("DELETE", `/api/spaces/${id}/requests/${encodeURIComponent(b.dataset.dismiss)}`, null, token))));
    $("#inviteform").onsubmit = (ev) => { ev.preventDefault(); invite($("#invname").value, $("#invrole").value); };
    el.querySelectorAll("[data-mute]").forEach((b) => (b.onclick = () => act(() =>
      api("PATCH", `/api/spaces/${id}/speakers/${encodeURIComponent(b.dataset.mute)}`, { muted: b.dataset.muted !== "true" }, token))));
    el.querySelectorAll("[data-remove]").forEach((b) => (b.onclick = () => act(() =>
      api("DELETE", `/api/spaces/${id}/speakers/${encodeURIComponent(b.dataset.remove)}`, null, token))));
  }

  /* The stage: this browser's microphone in the Space over the WebSocket speaker link, and the
   * others heard through this speaker's mix-minus. Built once; only its words change. */
  let link = null;
  function renderStage() {
    const el = $("#stage");
    if (!el.firstChild) {
      el.className = "card";
      el.innerHTML = `<h2>Your microphone</h2><p class="notice">You are <strong>${esc(me.name)}</strong> (${esc(me.role)}).</p>
        <div class="row"><button id="mic">Join the stage</button><button id="mute" hidden>Mute</button>
        <span id="stagestatus" class="notice" role="status"></span></div>
        <p><label>Microphone <meter id="miclevel" min="0" max="0.1" value="0"></meter></label>
           <label>The others <meter id="mixlevel" min="0" max="0.1" value="0"></meter></label></p>`;
      if (!(window.SpeakerLink && SpeakerLink.supported()) && !(window.RtcSpeakerLink && RtcSpeakerLink.supported())) {
        $("#mic").disabled = true;
        $("#stagestatus").textContent = "This browser cannot send audio (it lacks WebRTC and WebCodecs); use ffmpeg or spacecast speak.";
        return;
      }
      const offStage = () => {
        link = null; window.__speaker = null;
        $("#mic").textContent = "Join the stage"; $("#mute").hidden = true; $("#play").hidden = details.state === "ended";
      };
      const showMute = () => { $("#mute").textContent = link.muted ? "Unmute" : "Mute"; $("#mute").setAttribute("aria-pressed", String(link.muted)); };
      /* WebRTC (WHIP/WHEP) first: UDP rides out loss that stalls a TCP link; the WebSocket link
       * when WebRTC is missing, refused or cannot get through (a firewall that drops UDP).
       * ?link=ws forces the WebSocket link. */
      const wantRtc = window.RtcSpeakerLink && RtcSpeakerLink.supported() && new URLSearchParams(location.search).get("link") !== "ws";
      const newLink = (Kind) => {
        const l = new Kind(id, token, (state, words) => {
          $("#stagestatus").textContent = words;
          if (state === "stopped" && link === l) offStage();
        }, () => { if (link === l) showMute(); });
        link = l; window.__speaker = l;
        return l;
      };
      $("#mic").onclick = async () => {
        if (link) { link.stop(); offStage(); $("#stagestatus").textContent = "Microphone off."; return; }
        $("#stagestatus").textContent = "Asking for the microphone…";
        let l = newLink(wantRtc ? RtcSpeakerLink : SpeakerLink);
        try { await l.start(); }
        catch (e) {
          l.stop();
          if (!(l instanceof RtcSpeakerLink) || !(e instanceof RtcFallback)) {
            if (link === l) offStage();
            $("#stagestatus").textContent = e.final ? e.message : "No microphone: " + e.message;
            return;
          }
          if (!SpeakerLink.supported()) {
            offStage();
            $("#stagestatus").textContent = "WebRTC cannot get through from here, and this browser lacks WebCodecs for the other link.";
            return;
          }
          l = newLink(SpeakerLink); /* WebRTC could not connect from here */
          try { await l.start(); }
          catch (e2) { l.stop(); if (link === l) offStage(); $("#stagestatus").textContent = "No microphone: " + e2.message; return; }
        }
        if (link !== l) return; /* stopped meanwhile */
        if (l instanceof RtcSpeakerLink) {
          l.onFallback = async () => {
            if (link !== l) return;
            const ws = newLink(SpeakerLink);
            try { await ws.start(); } catch (e) { ws.stop(); if (link === ws) offStage(); $("#stagestatus").textContent = "No microphone: " + e.message; }
          };
        }
        if (playing) stopPlaying(); /* on stage the others come through the mix-minus */
        $("#play").hidden = true;
        $("#mic").textContent = "Leave the stage"; $("#mute").hidden = false;
      };
      $("#mute").onclick = () => { if (link) { link.setMuted(!link.muted); showMute(); } };
      setInterval(() => { if (link) { $("#miclevel").value = link.muted ? 0 : link.micLevel; $("#mixlevel").value = link.mixLevel; } }, 100);
    }
  }
  setInterval(() => { if (details && details.state === "scheduled") render(); }, 1000);
  load();
}

const m = location.pathname.match(/^\/s\/([A-Za-z0-9_-]{1,32})(\/stats)?$/);
if (m && m[2]) ScStats.page(app, m[1], token); else if (m) spacePage(m[1]); else listPage();
