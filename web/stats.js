/* spacecast host's numbers: /s/{id}/stats#token=… (the host's token; never sent anywhere but the
 * stats API): peak, joins, unique listeners (approximate, and says how), listening time, the
 * audience minute by minute drawn as an inline SVG curve (direct, through edges, HLS requests),
 * refusals and overflows by reason, reactions per minute. Refreshed while the Space is live. */
"use strict";
const ScStats = (() => {
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const W = 640, H = 180, PAD = 28;
  const clock = (unix) => new Date(unix * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const dur = (s) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`);

  /* A line per series over the minutes: points scaled to the largest value of any. */
  function curve(series, start, label) {
    const n = Math.max(1, ...series.map((s) => s.values.length));
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const x = (i) => PAD + (n === 1 ? 0 : (i * (W - 2 * PAD)) / (n - 1));
    const y = (v) => H - PAD - (v * (H - 2 * PAD)) / max;
    const lines = series.map((s) => {
      /* one minute so far: a level line across, not an invisible point */
      const vals = s.values.length === 1 ? [s.values[0], s.values[0]] : s.values;
      const xs = s.values.length === 1 ? (i) => PAD + i * (W - 2 * PAD) : x;
      const pts = vals.map((v, i) => `${xs(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      return `<polyline fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? 'stroke-dasharray="5 4"' : ""} points="${pts}"><title>${esc(s.name)}</title></polyline>`;
    }).join("");
    const legend = series.map((s, i) => `<text x="${PAD + i * 150}" y="14" fill="${s.color}" font-size="12">— ${esc(s.name)}</text>`).join("");
    const end = start != null ? start + (n - 1) * 60 : null;
    return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">
      <line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="#444"/><line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${H - PAD}" stroke="#444"/>
      <text x="2" y="${PAD + 4}" fill="#9aa3b2" font-size="11">${max}</text><text x="${PAD - 12}" y="${H - PAD + 4}" fill="#9aa3b2" font-size="11">0</text>
      ${start != null ? `<text x="${PAD}" y="${H - 8}" fill="#9aa3b2" font-size="11">${clock(start)}</text>
      <text x="${W - PAD}" y="${H - 8}" fill="#9aa3b2" font-size="11" text-anchor="end">${clock(end)}</text>` : ""}
      ${legend}${lines}</svg>`;
  }

  function bars(values, labels, label) {
    const max = Math.max(1, ...values), bw = (W - 2 * PAD) / Math.max(1, values.length);
    return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">${values.map((v, i) => {
      const h = (v * (H - 2 * PAD)) / max;
      return `<rect x="${(PAD + i * bw + 2).toFixed(1)}" y="${(H - PAD - h).toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="#7c5cff"><title>${esc(labels[i])}: ${v}</title></rect>
        ${labels.length <= 12 ? `<text x="${(PAD + i * bw + bw / 2).toFixed(1)}" y="${H - 10}" fill="#9aa3b2" font-size="11" text-anchor="middle">${esc(labels[i])}</text>` : ""}`;
    }).join("")}<text x="2" y="${PAD + 4}" fill="#9aa3b2" font-size="11">${max}</text></svg>`;
  }

  function render(app, j) {
    const apm = j.audience_per_minute, lt = j.listening_time, u = j.unique_listeners;
    const total = apm.direct.map((v, i) => v + (apm.edges[i] || 0));
    const bucketNames = lt.buckets.map((b, i) => (b.up_to_s == null ? `> ${lt.buckets[i - 1].up_to_s / 60} min` : `≤ ${b.up_to_s / 60} min`));
    const rows = (o) => Object.entries(o).map(([k, v]) => `<tr><td>${esc(k.replace(/_/g, " "))}</td><td id="n-${esc(k)}">${v}</td></tr>`).join("");
    app.innerHTML = `<p><a href="/s/${esc(j.id)}">← the Space</a></p><h1>${esc(j.title)} — the numbers</h1>
      <p class="notice">${esc(j.state)}${j.duration_s != null ? " · " + dur(j.duration_s) : ""}</p>
      <div class="card row stats-top">
        <div><div class="big-number" id="peak">${j.peak}</div><div class="notice">peak at once</div></div>
        <div><div class="big-number" id="joins">${j.total_joins}</div><div class="notice">joins</div></div>
        <div><div class="big-number" id="unique">≈ ${u.estimate}</div><div class="notice" title="${esc(u.method)}">unique listeners (±${Math.round(u.relative_error * 1000) / 10} %)</div></div>
        <div><div class="big-number" id="meanlisten">${dur(lt.mean_s)}</div><div class="notice">average listen</div></div>
        <div><div class="big-number" id="reactiontotal">${j.reactions.total}</div><div class="notice">reactions</div></div></div>
      <div class="card"><h2>Audience per minute</h2>${curve([{ name: "listening (all)", values: total, color: "#3ecf8e" },
        { name: "direct", values: apm.direct, color: "#7c5cff" }, { name: "through edges", values: apm.edges, color: "#ffb224", dash: true }],
        apm.start, "Listeners per minute")}
        <h3>HLS requests per minute</h3>${curve([{ name: "HLS requests", values: apm.hls_requests, color: "#a79bff" }], apm.start, "HLS requests per minute")}</div>
      <div class="card"><h2>How long people listened</h2>${bars(lt.buckets.map((b) => b.sessions), bucketNames, "Listening sessions by length")}
        <p class="notice">${lt.sessions} sessions, ${dur(lt.total_s)} listened in all.</p></div>
      <div class="card"><h2>Reactions per minute</h2>${bars(j.reactions.per_minute, j.reactions.per_minute.map((_, i) => `min ${i + 1}`), "Reactions per minute")}
        <p>${Object.entries(j.reactions.totals).map(([e, n]) => `${esc(e)} ${n}`).join(" · ") || '<span class="notice">None.</span>'}</p></div>
      <div class="card"><h2>Turned away, sent elsewhere</h2><table>${rows(j.refusals)}${rows(Object.fromEntries(Object.entries(j.overflow).map(([k, v]) => ["sent to " + k, v])))}</table></div>
      <p class="notice">Unique listeners: ${esc(u.method)}; the count is an estimate within about ${Math.round(u.relative_error * 100)} %.</p>`;
  }

  async function page(app, id, token) {
    app.innerHTML = `<p class="notice">Loading the numbers…</p>`;
    if (!token) { app.innerHTML = `<p class="warn">The numbers are for the host: open this page from the host's link (#token=…).</p>`; return; }
    const load = async () => {
      const r = await fetch(`/api/spaces/${id}/stats`, { headers: { Authorization: "Bearer " + token }, cache: "no-store" }).catch(() => null);
      let j = null;
      try { j = r && (await r.json()); } catch (e) { /* no body */ }
      if (!r || !r.ok) {
        app.innerHTML = `<p class="warn">The numbers could not be loaded (${esc((j && j.error && j.error.message) || (r ? "HTTP " + r.status : "no connection"))}).</p>`;
        return;
      }
      window.__stats = j;
      render(app, j);
      if (j.state !== "ended") setTimeout(load, 10000);
    };
    load();
  }

  return { page, curve };
})();
