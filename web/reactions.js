/* spacecast reactions: the emoji bar a listener taps, the emoji floating up on every page as the
 * server's once-a-second sums arrive (the `reactions` event), and for the host the rate. The
 * server sends sums, never one event per reaction; this draws at most a few dozen of each sum so
 * a storm of thousands stays a few dozen DOM nodes. Plain JS, no dependencies. */
"use strict";
const ScReactions = (() => {
  const EMOJI = ["👏", "❤️", "😂", "🔥", "💯", "🙌", "😮", "👍"];
  const MAX_FLOATS = 24;   /* per second drawn, whatever the sum */
  const RATE_WINDOW = 5;   /* seconds the host's rate is averaged over */
  /* a random id per browser: the server holds each listener to its own rate with it */
  const listener = (() => {
    try {
      let id = localStorage.getItem("scListener");
      if (!id) { id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => (b % 36).toString(36)).join(""); localStorage.setItem("scListener", id); }
      return id;
    } catch (e) { return "anon" + Math.floor(Math.random() * 1e9); }
  })();
  const seen = { totals: {}, events: 0, sent: 0, refused: 0 }; /* for tests: window.__reactions */
  window.__reactions = seen;
  let bar = null, overlay = null, rateEl = null, spaceId = null, cooldownUntil = 0;
  const history = []; /* [time s, total] of the last seconds */

  function mount(el, id, opts) {
    spaceId = id;
    el.className = "card reactions";
    el.innerHTML = `<div class="row" role="group" aria-label="React">${EMOJI.map((e, i) =>
      `<button class="emoji" data-i="${i}" aria-label="React ${e}">${e}</button>`).join("")}</div>
      <p class="notice" id="reactnote" role="status"></p>${opts && opts.host ? '<p id="reactrate" class="notice">Reactions: –</p>' : ""}`;
    bar = el;
    rateEl = el.querySelector("#reactrate");
    if (!overlay) { overlay = document.createElement("div"); overlay.className = "floats"; overlay.setAttribute("aria-hidden", "true"); document.body.append(overlay); }
    el.querySelectorAll("button.emoji").forEach((b) => (b.onclick = () => send(EMOJI[+b.dataset.i])));
  }

  /* Shown only while the Space is live. */
  function show(live) { if (bar) bar.hidden = !live; }

  async function send(emoji) {
    const note = bar.querySelector("#reactnote");
    if (Date.now() < cooldownUntil) return;
    float(emoji, 1, true); /* your own tap shows at once; the sums bring everyone's */
    try {
      const r = await fetch(`/api/spaces/${spaceId}/reactions`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ emoji, listener }) });
      if (r.status === 429) {
        seen.refused++;
        const wait = (+r.headers.get("Retry-After") || 1) * 1000;
        cooldownUntil = Date.now() + wait;
        note.textContent = "Easy there — you can react again in a moment.";
        setTimeout(() => { if (Date.now() >= cooldownUntil) note.textContent = ""; }, wait);
      } else if (r.ok) { seen.sent++; }
    } catch (e) { /* a lost reaction is not worth a word */ }
  }

  function float(emoji, n, mine) {
    if (!overlay || document.hidden) return;
    for (let i = 0; i < n; i++) {
      const s = document.createElement("span");
      s.className = "float" + (mine ? " mine" : "");
      s.textContent = emoji;
      s.style.left = (mine ? 50 + Math.random() * 20 : 5 + Math.random() * 85) + "%";
      s.style.animationDelay = (mine ? 0 : Math.random() * 900) + "ms";
      s.addEventListener("animationend", () => s.remove());
      overlay.append(s);
    }
  }

  /* The server's `reactions` event: {counts: {emoji: n} this second, total, totals: {emoji: n}}. */
  function onEvent(d) {
    seen.events++;
    seen.totals = d.totals || seen.totals;
    const total = d.total || 0;
    const draw = Math.min(MAX_FLOATS, total);
    for (const [e, n] of Object.entries(d.counts || {})) float(e, Math.max(1, Math.round(draw * n / total)), false);
    history.push([Date.now() / 1000, total]);
    showRate();
  }

  function showRate() {
    if (!rateEl) return;
    const now = Date.now() / 1000;
    while (history.length && history[0][0] < now - RATE_WINDOW) history.shift();
    const rate = history.reduce((a, [, n]) => a + n, 0) / RATE_WINDOW;
    const all = Object.values(seen.totals).reduce((a, n) => a + n, 0);
    const top = Object.entries(seen.totals).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([e, n]) => `${e} ${n}`).join(" · ");
    rateEl.textContent = `Reactions: ${rate.toFixed(1)}/s now · ${all} in all${top ? " · " + top : ""}`;
  }
  setInterval(showRate, 1000); /* the rate falls back to 0 when nobody reacts (no event then) */

  return { mount, show, onEvent, listener };
})();
