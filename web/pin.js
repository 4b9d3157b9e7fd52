/* spacecast pinned link: shown on every listener's page as text and a link, never as markup (the
 * server keeps only http(s) links; the page checks again before it makes one clickable); the host
 * and co-hosts pin and unpin it. */
"use strict";
const ScPin = (() => {
  const safeUrl = (u) => (/^https?:\/\//i.test(u) ? u : null);
  let formOpen = false, drawn = "";

  /* el: the pin's card; d: the Space's details; token: a co-host's or the host's, else null. */
  function render(el, d, token) {
    const pin = d.pin;
    const canPin = !!token && d.state !== "ended";
    /* redrawn only when the pin or the right to pin changed: a link being typed is not wiped by
     * the many `space` events of a Space in which people talk */
    const key = JSON.stringify([pin, canPin, formOpen]);
    if (key === drawn) return;
    drawn = key;
    el.hidden = !pin && !canPin;
    if (el.hidden) return;
    el.className = "card pin";
    el.textContent = "";
    if (pin && safeUrl(pin.url)) {
      const p = document.createElement("p");
      p.className = "pinned";
      const label = document.createElement("span");
      label.className = "notice";
      label.textContent = "📌 Pinned ";
      const a = document.createElement("a");
      a.href = safeUrl(pin.url);
      a.rel = "noopener noreferrer nofollow ugc";
      a.target = "_blank";
      a.textContent = pin.text || pin.url; /* text, not HTML: whatever the host typed */
      a.id = "pinlink";
      p.append(label, a);
      let host = "";
      try { host = new URL(pin.url).host; } catch (e) { /* shown without its host */ }
      if (pin.text && host) { const u = document.createElement("small"); u.className = "notice"; u.textContent = " " + host; p.append(u); }
      el.append(p);
    }
    if (!canPin) return;
    const form = document.createElement("form");
    form.className = "row";
    form.id = "pinform";
    form.hidden = !formOpen && !!pin;
    form.innerHTML = `<label>Link <input id="pinurl" type="url" required maxlength="512" placeholder="https://…"></label>
      <label>Text <input id="pintext" maxlength="280" placeholder="what it is"></label><button>Pin</button>`;
    const row = document.createElement("div");
    row.className = "row";
    if (pin) {
      const change = document.createElement("button"); change.type = "button"; change.textContent = "Change pin";
      change.onclick = () => { formOpen = true; drawn = JSON.stringify([pin, canPin, formOpen]); form.hidden = false; };
      const unpin = document.createElement("button"); unpin.type = "button"; unpin.textContent = "Unpin"; unpin.id = "unpin";
      unpin.onclick = () => call("DELETE", d.id, null, token, el);
      row.append(change, unpin);
    }
    const note = document.createElement("p"); note.className = "notice"; note.id = "pinnote"; note.setAttribute("role", "status");
    form.onsubmit = (ev) => {
      ev.preventDefault();
      formOpen = false;
      call("PUT", d.id, { url: form.querySelector("#pinurl").value.trim(), text: form.querySelector("#pintext").value }, token, el);
    };
    el.append(row, form, note);
  }

  async function call(method, id, body, token, el) {
    const r = await fetch(`/api/spaces/${id}/pin`, { method, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined }).catch(() => null);
    const note = el.querySelector("#pinnote");
    if (!r || !r.ok) {
      let msg = r ? "HTTP " + r.status : "no connection";
      try { msg = (await r.json()).error.message; } catch (e) { /* keep the status */ }
      if (note) note.textContent = "Could not pin: " + msg;
    } /* on success the Space's `space` event redraws the card everywhere */
  }

  return { render, safeUrl };
})();
