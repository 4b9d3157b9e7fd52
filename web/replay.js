/* spacecast replay player: the recording (replay.ogg, Range-seekable) with its chapters
 * (chapters.json: speaker turns and the host's marks), "next speaker", 1× / 1.5× / 2×, "clip the
 * last 30 s" (clip.ogg, a file of its own) and a link that opens the page at this moment
 * (/s/{id}?t=…). While the Space is still live the recording grows: at its end the player
 * reloads it and goes on from where it was, so a late joiner can start from the beginning. */
"use strict";
const ScReplay = (() => {
  const SPEEDS = [1, 1.5, 2];
  const CLIP_S = 30;
  const fmt = (s) => {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, x = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${x}` : `${m}:${x}`;
  };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  /* el: where it goes; id: the Space; opts: {live: is the Space still live, t: start here (s),
   * play: start playing now (a click asked for it)}.
   * Returns {setLive(bool), stop()}. */
  function mount(el, id, opts) {
    let live = !!opts.live, chapters = [], refresh = null, resumeAt = null;
    const src = () => `/spaces/${id}/replay.ogg` + (live ? `?r=${Date.now()}` : "");
    el.className = "card replay";
    el.innerHTML = `<h2>${live ? "From the beginning" : "Replay"}</h2>
      <audio id="replay" controls preload="metadata"></audio>
      <div class="row">${SPEEDS.map((s) => `<button class="speed" data-speed="${s}" aria-pressed="${s === 1}">${s}×</button>`).join("")}
        <button id="nextspeaker">Next speaker ⏭</button><button id="clip30">Clip the last 30 s</button>
        <button id="share">Share this moment</button></div>
      <div id="clipbox" class="notice" role="status"></div>
      <h3>Chapters</h3><ol id="chapters" class="chapters"><li class="notice">Loading…</li></ol>`;
    const audio = el.querySelector("#replay"), list = el.querySelector("#chapters"), box = el.querySelector("#clipbox");
    audio.src = src();
    let speed = 1;
    const seek = (t) => {
      if (audio.readyState >= 1) audio.currentTime = t; else resumeAt = t;
      audio.play().catch(() => {});
    };
    audio.addEventListener("loadedmetadata", () => {
      audio.playbackRate = speed;
      if (resumeAt != null) { audio.currentTime = resumeAt; resumeAt = null; }
    });
    if (opts.t > 0) resumeAt = opts.t;
    if (opts.t > 0 || opts.play) audio.play().catch(() => {}); /* a click brought us here, or a shared moment */
    /* a live recording ends where it was when asked for: ask again, go on from there */
    audio.addEventListener("ended", () => {
      if (!live) return;
      resumeAt = audio.currentTime;
      audio.src = src();
      audio.play().catch(() => {});
    });
    el.querySelectorAll(".speed").forEach((b) => (b.onclick = () => {
      speed = +b.dataset.speed;
      audio.playbackRate = speed; /* the browser keeps the pitch */
      el.querySelectorAll(".speed").forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
    }));
    const current = () => {
      let c = null;
      for (const ch of chapters) if (ch.startTime <= audio.currentTime + 0.05) c = ch;
      return c;
    };
    el.querySelector("#nextspeaker").onclick = () => {
      const now = current(), t = audio.currentTime;
      const next = chapters.find((c) => c.speaker && c.startTime > t + 0.25 && (!now || c.speaker !== now.speaker || c.startTime > now.startTime));
      if (next) seek(next.startTime); else box.textContent = "Nobody else speaks after this.";
    };
    el.querySelector("#clip30").onclick = () => {
      const end = audio.currentTime, start = Math.max(0, end - CLIP_S);
      if (end - start < 1) { box.textContent = "Play a little first: the clip is the 30 s before where you are."; return; }
      const url = `/spaces/${id}/clip.ogg?start=${start.toFixed(3)}&end=${end.toFixed(3)}`;
      const share = `${location.origin}/s/${id}?t=${Math.floor(start)}`;
      box.innerHTML = `Clip ${fmt(start)}–${fmt(end)}: <a id="cliplink" href="${esc(url)}" download="clip-${esc(id)}-${Math.floor(start)}.ogg">download</a>
        · share: <input id="clipshare" readonly size="32" value="${esc(share)}"> <audio id="clipaudio" controls preload="metadata" src="${esc(url)}"></audio>`;
    };
    el.querySelector("#share").onclick = async () => {
      const link = `${location.origin}/s/${id}?t=${Math.floor(audio.currentTime)}`;
      box.innerHTML = `Link to ${fmt(audio.currentTime)}: <input id="sharelink" readonly size="36" value="${esc(link)}">`;
      try { await navigator.clipboard.writeText(link); box.append(" (copied)"); } catch (e) { /* the field is there to copy from */ }
    };
    list.onclick = (ev) => { const b = ev.target.closest("[data-t]"); if (b) seek(+b.dataset.t); };
    const highlight = () => {
      const c = current();
      list.querySelectorAll("li").forEach((li, i) => li.classList.toggle("now", chapters[i] === c));
    };
    audio.addEventListener("timeupdate", highlight);
    async function loadChapters() {
      try {
        const r = await fetch(`/spaces/${id}/chapters.json`, { cache: "no-cache" });
        if (!r.ok) throw new Error("HTTP " + r.status);
        chapters = (await r.json()).chapters || [];
        list.innerHTML = chapters.length ? chapters.map((c) => `<li><button data-t="${c.startTime}">${fmt(c.startTime)}</button>
          ${c.speaker ? "🎙 " : "🔖 "}${esc(c.title || "")}</li>`).join("") : `<li class="notice">No chapters yet.</li>`;
        highlight();
      } catch (e) { list.innerHTML = `<li class="notice">Chapters unavailable (${esc(e.message)}).</li>`; }
    }
    loadChapters();
    if (live) refresh = setInterval(loadChapters, 10000); /* a live recording's chapters grow */
    const setLive = (v) => {
      if (v === live) return;
      live = v;
      clearInterval(refresh);
      if (live) refresh = setInterval(loadChapters, 10000); else loadChapters(); /* the final ones */
      el.querySelector("h2").textContent = live ? "From the beginning" : "Replay";
    };
    window.__replay = { audio, get chapters() { return chapters; } };
    return { setLive, stop: () => { clearInterval(refresh); audio.pause(); el.textContent = ""; el.className = ""; } };
  }

  return { mount, fmt };
})();
