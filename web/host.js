/* spacecast host's extras (#19): "mark this moment" (a chapter of the replay, for the host and
 * co-hosts while live) and the way to the host's numbers (/s/{id}/stats). Kept apart from the
 * host card in app.js, which is redrawn on every change of the Space. */
"use strict";
const ScHostExtras = (() => {
  let lastNote = "", drawn = "";
  function render(el, d, token, isHost) {
    if (!token) { el.hidden = true; return; }
    /* the Space changes many times a second while people talk: redraw only when what this card
     * shows changed, so a title being typed is not wiped */
    const key = d.state + "|" + d.record;
    if (key === drawn) return;
    drawn = key;
    el.hidden = false;
    el.className = "card";
    const live = d.state === "live";
    el.innerHTML = `<h2>Replay and numbers</h2>
      ${live && d.record ? `<form id="markform" class="row"><label>Mark this moment <input id="marktitle" maxlength="200" required placeholder="Q&amp;A, next topic…"></label><button>Mark</button></form>` : ""}
      <p id="marknote" class="notice" role="status"></p>
      ${isHost ? `<p><a id="statslink" href="/s/${d.id}/stats#token=${encodeURIComponent(token)}">The numbers: audience, listening time, reactions →</a></p>` : ""}`;
    el.querySelector("#marknote").textContent = lastNote;
    const form = el.querySelector("#markform");
    if (form) form.onsubmit = async (ev) => {
      ev.preventDefault();
      const title = el.querySelector("#marktitle").value;
      const r = await fetch(`/api/spaces/${d.id}/marks`, { method: "POST", headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ title }) }).catch(() => null);
      let j = null;
      try { j = r && (await r.json()); } catch (e) { /* none */ }
      lastNote = r && r.ok ? `Marked “${title}” at ${ScReplay.fmt(j.at)} of the recording.` : "Could not mark: " + ((j && j.error && j.error.message) || "no connection");
      el.querySelector("#marknote").textContent = lastNote;
      if (r && r.ok) el.querySelector("#marktitle").value = "";
    };
  }
  return { render };
})();
