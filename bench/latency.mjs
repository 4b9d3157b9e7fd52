/* Speaker "mouth-to-ear" latency on loopback, WebRTC (RtcSpeakerLink: WHIP up, WHEP mix-minus
 * down) and the WebSocket link (SpeakerLink) side by side, in one run against one server and one
 * live Space. Goals (issue): speaker → speaker ≤ 150 ms, speaker → live listener ≤ 400 ms.
 *
 * Method
 *  - MOUTH: speaker A's page gets a fake microphone: navigator.mediaDevices.getUserMedia returns
 *    the stream of a MediaStreamAudioDestinationNode fed by a 1 kHz oscillator through a gain
 *    stepped to 0.25 for 60 ms per beep, scheduled on that AudioContext's clock at irregular
 *    intervals of 1.0-1.6 s (irregular so that a received beep cannot be pinned on the wrong sent
 *    one, see match()). The stream goes to the page's own link class (app.js, #mic) untouched
 *    (no echo cancellation/noise suppression/AGC: those belong to a real capture device).
 *  - Every "ear" and the mouth are measured by the same detector: an AudioWorklet tap that
 *    computes the RMS over 5 ms windows and reports an onset when a window reaches THR after
 *    ≥ 300 ms of quiet windows; the onset is the first sample in the last 10 ms with |x| ≥ THR.
 *    An onset's sample frame is turned into wall-clock time (performance.timeOrigin + now(), the
 *    same clock as Node's, same machine) through the block messages the tap posts every 128
 *    frames: offset = arrival - frame/rate, taking the minimum over the last second (message
 *    delays are never negative, so the minimum is the least delayed: the moment the audio
 *    thread rendered that block). So every tap stamps when the sample went through its audio
 *    graph: the mouth when it entered the microphone track, an ear when it left the jitter
 *    buffer for the loudspeaker.
 *      mouth   : the fake microphone's gain node, in the fake microphone's own AudioContext
 *      speaker : speaker B's page (its own token, a silent fake microphone, same transport as A);
 *                WebRTC: the WHEP stream its <audio> element plays, through a
 *                MediaStreamSource in the link's AudioContext; WebSocket: the output of the
 *                link's "sc-play" jitter buffer (decoded by WebCodecs) in the link's context
 *      ffmpeg  : `ffmpeg -i live.ogg -f s16le -` in Node, same detector; the onset is stamped
 *                with the arrival time of the stdout chunk that holds it (the first moment a
 *                player could play it; the samples of a chunk are not back-dated, as a 100 ms Ogg
 *                page arrives all at once and its first sample cannot be heard earlier)
 *      web     : a listener page (no token) playing the Space with the web app's LivePlayer
 *                (live.ogg, WebCodecs, a 300 ms "sc-play" cushion): its output, as above
 *  - Where the time goes (a line under the table): the microphone as the link's own
 *    AudioContext sees it (speaker A; the WebSocket link captures there), speaker B's decoded
 *    packets before its jitter buffer (WebSocket: PCM out of the AudioDecoder, stamped on
 *    arrival), and NetEq's average jitter-buffer delay on B's WHEP stream (WebRTC, getStats).
 *  - Each received onset is matched to the latest sent onset before it, or the one j beeps
 *    earlier if that fits all beeps far better (latency over a beep interval); p50/p95/max per
 *    path and transport over DURATION seconds (default 20, ~15 beeps) per transport.
 * Systematic error, stated: (1) the audio devices' own latency is outside the measurement (a
 * real microphone's capture buffer, and each context's baseLatency+outputLatency, printed below,
 * before the loudspeaker); (2) render-time stamps are as coarse as the fake audio device's
 * callback (~10 ms in headless Chromium), on both ends; (3) ffmpeg's decoding and pipe add a
 * millisecond or two to the ffmpeg path; (4) Opus pre-echo can put the detected onset a few ms
 * early. Within a run the spread is small; between runs it is not (the speaker → speaker p50 has
 * ranged 134-341 ms): the jitter buffers (the server's per-speaker one, which only catches up
 * above target + 200 ms, and the pages') keep whatever standing delay they settled on at join,
 * and each run samples one join per transport. Compare runs, not one run. A path on which fewer than MIN_BEEPS (10) beeps are matched fails the run (exit 1).
 *
 * Run: bash bench/latency.sh   (env: OUT=file for the table, default bench/results/latency.md;
 *      DURATION=seconds per transport; SPACECAST_BIN; CHROMIUM). Bounded to 170 s in all. */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, SOURCE_DIR, Server, sleep, until } from "../tests/browser/lib.mjs";

const { chromium } = createRequire(path.join(SOURCE_DIR, "tests", "browser", "package.json"))("playwright-core");
const here = path.dirname(fileURLToPath(import.meta.url));
const OUT = process.env.OUT || path.join(here, "results", "latency.md");
const DURATION = +(process.env.DURATION || 20);
const MIN_BEEPS = 10, THR = 0.02, AMP = 0.25, RATE = 48000;
const DEADLINE_MS = 170000;
const GOALS = { speaker: 150, ffmpeg: 400, web: 400 };
const now = () => performance.timeOrigin + performance.now();

/* ---- in the pages (addInitScript): the tap, the fake microphone, the sc-play hook ---------- */
function pageInit(cfg) {
  const TAP = `class LatTap extends AudioWorkletProcessor {
    constructor(o) { super(); const p = o.processorOptions; this.thr = p.thr; this.need = p.quiet;
      this.ring = new Float32Array(512); this.acc = 0; this.n = 0; this.q = 0; }
    process(inputs) {
      const ch = inputs[0] && inputs[0][0], f0 = currentFrame; let on = -1;
      for (let i = 0; i < 128; i++) {
        const x = ch ? ch[i] : 0, fr = f0 + i;
        this.ring[fr & 511] = x; this.acc += x * x;
        if (++this.n === 240) { /* 5 ms */
          const rms = Math.sqrt(this.acc / 240); this.acc = 0; this.n = 0;
          if (rms >= this.thr) {
            if (this.q >= this.need && on < 0) { let k = fr - 479; while (k < fr && Math.abs(this.ring[k & 511]) < this.thr) k++; on = k; }
            this.q = 0;
          } else this.q++;
        }
      }
      this.port.postMessage({ f: f0 + 128, on });
      return true;
    }
  }
  registerProcessor("lat-tap", LatTap);`;
  const lat = (window.__lat = { taps: {}, mods: new WeakSet(), play: [] });
  const AWN = window.AudioWorkletNode;
  lat.tap = async (name, ctx, node) => {
    if (!lat.mods.has(ctx)) {
      await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([TAP], { type: "text/javascript" })));
      lat.mods.add(ctx);
    }
    const t = (lat.taps[name] = { onsets: [], offs: [], blocks: 0, base: ctx.baseLatency || 0, out: ctx.outputLatency || 0, state: ctx.state });
    const w = new AWN(ctx, "lat-tap", { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1,
      channelCountMode: "explicit", processorOptions: { thr: cfg.thr, quiet: 60 } });
    node.connect(w);
    t.node = w;
    w.port.onmessage = (ev) => {
      const a = performance.timeOrigin + performance.now();
      t.offs.push([a, a - (ev.data.f * 1000) / ctx.sampleRate]);
      while (t.offs[0][0] < a - 1000) t.offs.shift();
      t.blocks++; t.out = ctx.outputLatency || t.out;
      if (ev.data.on >= 0) {
        let m = Infinity;
        for (const o of t.offs) m = Math.min(m, o[1]);
        t.onsets.push((ev.data.on * 1000) / ctx.sampleRate + m);
      }
    };
  };
  /* the same detector on the main thread, for PCM handed over whole (decoded packets): an onset
   * is stamped with the time its samples arrived */
  lat.pcmTap = (name) => {
    const t = (lat.taps[name] = { onsets: [], blocks: 0, base: 0, out: 0 });
    let acc = 0, n = 0, q = 0;
    return (pcm) => {
      const a = performance.timeOrigin + performance.now();
      for (let i = 0; i < pcm.length; i++) {
        acc += pcm[i] * pcm[i];
        if (++n === 240) { const rms = Math.sqrt(acc / 240); acc = 0; n = 0;
          if (rms >= cfg.thr) { if (q >= 60) t.onsets.push(a); q = 0; } else q++; }
      }
      t.blocks++;
    };
  };
  lat.read = (name) => { const t = lat.taps[name]; return t && { onsets: t.onsets, blocks: t.blocks, base: t.base, out: t.out }; };
  /* the web app's jitter buffers ("sc-play"), to tap a listener page's LivePlayer */
  window.AudioWorkletNode = class extends AWN {
    constructor(ctx, name, opts) { super(ctx, name, opts); if (name === "sc-play") lat.play.push(this); }
  };
  if (navigator.mediaDevices) navigator.mediaDevices.getUserMedia = async () => {
    if (lat.mic) lat.mic.close().catch(() => {});
    const ctx = (lat.mic = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" }));
    await ctx.resume();
    const dest = ctx.createMediaStreamDestination();
    dest.channelCount = 1;
    /* the silent microphone too is an oscillator behind a closed gate: a destination node with
     * no input gives its track no samples at all, and WebRTC then sends no packets */
    const osc = ctx.createOscillator(), g = ctx.createGain();
    osc.frequency.value = 1000; g.gain.value = 0;
    osc.connect(g).connect(dest);
    osc.start();
    if (cfg.beep) {
      await lat.tap("mouth", ctx, g);
      let t = ctx.currentTime + 0.5;
      for (let k = 0; k < 200; k++) {
        g.gain.setValueAtTime(cfg.amp, t); g.gain.setValueAtTime(0, t + 0.06);
        t += 1 + ((k * 119) % 600) / 1000; /* 1.0-1.6 s, irregular */
      }
    }
    return dest.stream;
  };
}

/* ---- Node: the same detector on ffmpeg's decoded live.ogg ---------------------------------- */
class Detector {
  constructor() { this.ring = new Float32Array(512); this.frame = 0; this.acc = 0; this.n = 0; this.q = 0; this.onsets = []; }
  push(buf, arrival) {
    const s = new Int16Array(buf.buffer, buf.byteOffset, buf.length >> 1);
    for (let i = 0; i < s.length; i++) {
      const x = s[i] / 32768, fr = this.frame++;
      this.ring[fr & 511] = x; this.acc += x * x;
      if (++this.n === 240) {
        const rms = Math.sqrt(this.acc / 240); this.acc = 0; this.n = 0;
        if (rms >= THR) { if (this.q >= 60) this.onsets.push(arrival); this.q = 0; } else this.q++;
      }
    }
  }
}

function ffmpegListener(url) {
  const det = new Detector();
  let rest = Buffer.alloc(0);
  const p = spawn("ffmpeg", ["-nostdin", "-v", "error", "-fflags", "nobuffer", "-probesize", "32",
    "-analyzeduration", "0", "-i", url, "-f", "s16le", "-ac", "1", "-ar", String(RATE),
    "-flush_packets", "1", "-"], { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout.on("data", (d) => {
    const a = now();
    const b = rest.length ? Buffer.concat([rest, d]) : d;
    const even = b.length & ~1;
    det.push(b.subarray(0, even), a);
    rest = Buffer.from(b.subarray(even));
  });
  let err = "";
  p.stderr.on("data", (d) => { err = (err + d).slice(-2000); });
  return { proc: p, det, err: () => err };
}

/* ---- matching and statistics ----------------------------------------------------------------- */
function match(sent, recv) {
  /* j = 0: the latest sent beep before the received one; j = 1, 2: one or two beeps earlier.
   * The beep intervals are irregular, so only the right j gives consistent latencies: the j with
   * the smallest median absolute deviation wins (j > 0 only when latency exceeds an interval). */
  let best = null;
  for (let j = 0; j <= 2; j++) {
    const lat = [];
    for (const r of recv) {
      let k = -1;
      while (k + 1 < sent.length && sent[k + 1] <= r) k++;
      k -= j;
      if (k >= 0 && (j > 0 || r - sent[k] <= 1000)) lat.push(r - sent[k]);
    }
    if (lat.length < 3) continue;
    const med = pct(lat, 50), mad = pct(lat.map((x) => Math.abs(x - med)), 50);
    if (!best || mad < best.mad * 0.5) best = { j, lat, mad };
  }
  return best || { j: 0, lat: [], mad: 0 };
}
function pct(a, p) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/* ---- the run ---------------------------------------------------------------------------------- */
const started = { srv: null, browser: null, ff: null };
let cleaning = null;
function cleanup() {
  cleaning ||= (async () => {
    if (started.ff && started.ff.proc.exitCode === null) started.ff.proc.kill("SIGKILL");
    if (started.browser) await Promise.race([started.browser.close().catch(() => {}), sleep(10000)]);
    if (started.srv) {
      await started.srv.stop().catch(() => {});
      try { fs.rmSync(started.srv.data, { recursive: true, force: true }); } catch (e) { /* gone */ }
    }
  })();
  return cleaning;
}
function die(msg) { console.error("latency: " + msg); cleanup().finally(() => process.exit(1)); }
setTimeout(() => die(`did not finish within ${DEADLINE_MS / 1000} s`), DEADLINE_MS).unref();
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => die("interrupted"));

async function stagePage(browser, srv, id, token, transport, beep) {
  const ctx = await browser.newContext();
  await ctx.addInitScript(pageInit, { beep, amp: AMP, thr: THR });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => console.error(`[page ${beep ? "A" : "B"}] ${e.message}`));
  await page.goto(`${srv.base}/s/${id}${transport === "websocket" ? "?link=ws" : ""}#token=${encodeURIComponent(token)}`);
  await until("the stage button", () => page.locator("#mic").count());
  await page.click("#mic");
  await until("on stage", async () => /on stage/.test(await page.locator("#stagestatus").innerText()), 20000);
  await until("packets going up", () => page.evaluate(() => window.__speaker && window.__speaker.sent > 25), 10000)
    .catch(async (e) => { throw new Error(e.message + " " + await page.evaluate(() => JSON.stringify({ t: window.__speaker && window.__speaker.transport,
      sent: window.__speaker && window.__speaker.sent, st: document.querySelector("#stagestatus").textContent,
      mic: window.__lat.mic && [window.__lat.mic.state, window.__lat.mic.currentTime], tr: window.__speaker.track && [window.__speaker.track.readyState, window.__speaker.track.muted, window.__speaker.track.enabled], pcs: window.__speaker.pcs && window.__speaker.pcs.map(p => p.connectionState) }))); });
  const got = await page.evaluate(() => window.__speaker.transport);
  if (got !== transport) throw new Error(`the page took the ${got} link, not ${transport}`);
  return page;
}

async function main() {
  const t0 = Date.now();
  const srv = (started.srv = await new Server(["--log-level", "warn"]).start());
  const sp = await srv.createSpace({ title: "latency bench" });
  await srv.api("POST", `/api/spaces/${sp.id}/start`, null, sp.host_token);
  const tokA = (await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "mouth", role: "speaker" }, sp.host_token)).token;
  const tokB = (await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "ears", role: "speaker" }, sp.host_token)).token;

  const browser = (started.browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection"],
  }));
  const ff = (started.ff = ffmpegListener(`${srv.base}/spaces/${sp.id}/live.ogg`));

  /* the web listener: the Space page without a token, Play */
  const lctx = await browser.newContext();
  await lctx.addInitScript(pageInit, { beep: false, amp: 0, thr: THR });
  const lpage = await lctx.newPage();
  await lpage.goto(`${srv.base}/s/${sp.id}`);
  await until("the play button", () => lpage.locator("#play").isVisible());
  await lpage.click("#play");
  await until("the web player", () => lpage.evaluate(() => window.__lat.play.length > 0));
  await lpage.evaluate(() => { const n = window.__lat.play[0]; return window.__lat.tap("web", n.context, n); });

  const runs = {};
  for (const transport of ["webrtc", "websocket"]) {
    const A = await stagePage(browser, srv, sp.id, tokA, transport, true);
    const B = await stagePage(browser, srv, sp.id, tokB, transport, false);
    await until("B's received stream", () => B.evaluate(() => {
      const l = window.__speaker;
      return l.transport === "webrtc" ? !!(l.audio && l.audio.srcObject) : !!l.player;
    }));
    await B.evaluate(() => {
      const l = window.__speaker;
      if (l.transport === "websocket") { /* the decoded packets, before the page's jitter buffer */
        const tap = window.__lat.pcmTap("decoded"), play = l.playDecoded.bind(l);
        l.playDecoded = (data) => { const pcm = new Float32Array(data.numberOfFrames);
          data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" }); tap(pcm); play(data); };
      }
      const node = l.transport === "webrtc" ? l.ctx.createMediaStreamSource(l.audio.srcObject) : l.player;
      return window.__lat.tap("speaker", l.ctx, node);
    });
    /* the microphone as the link's own AudioContext sees it (the WebSocket link captures there) */
    await A.evaluate(() => { const l = window.__speaker; return window.__lat.tap("miclink", l.ctx, l.ctx.createMediaStreamSource(l.stream)); });
    await sleep(2000); /* settle: jitter buffers filled, the first beeps through */
    const from = now();
    await sleep(DURATION * 1000);
    const to = now();
    await sleep(1200); /* the last beeps' way through */
    const mouth = await A.evaluate(() => window.__lat.read("mouth"));
    const ears = await B.evaluate(() => window.__lat.read("speaker"));
    const web = await lpage.evaluate(() => window.__lat.read("web"));
    const miclink = await A.evaluate(() => window.__lat.read("miclink"));
    const decoded = await B.evaluate(() => window.__lat.read("decoded"));
    /* WebRTC: NetEq's own average delay (jitter buffer) on B's WHEP stream, from getStats */
    const neteq = await B.evaluate(async () => {
      const l = window.__speaker; let r = null;
      for (const pc of l.pcs || []) (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio" && s.jitterBufferEmittedCount)
          r = { avg: (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount, target: (1000 * s.jitterBufferTargetDelay) / s.jitterBufferEmittedCount };
      });
      return r;
    });
    const sent = mouth.onsets.filter((t) => t < to);
    const inWin = (l) => l.filter((t) => t >= from && t < to + 1000);
    runs[transport] = {
      sentN: sent.filter((t) => t >= from - 1000).length,
      speaker: match(sent, inWin(ears.onsets)),
      ffmpeg: match(sent, inWin(ff.det.onsets)),
      web: match(sent, inWin(web.onsets)),
      devices: { mouth, speaker: ears, web },
      miclink: match(sent, inWin(miclink.onsets)),
      decoded: decoded ? match(sent, inWin(decoded.onsets)) : null,
      neteq,
    };
    for (const p of [A, B]) {
      await p.click("#mic").catch(() => {}); /* leave the stage */
      await p.evaluate(() => window.__lat.mic && window.__lat.mic.close()).catch(() => {});
      await p.context().close();
    }
    await sleep(1000);
  }
  if (!ff.det.onsets.length && ff.proc.exitCode !== null) throw new Error("ffmpeg exited: " + ff.err());

  /* ---- report ---- */
  const paths = [
    ["speaker", "speaker → other speaker (its page's received mix-minus)"],
    ["ffmpeg", "speaker → live listener (live.ogg → ffmpeg, at arrival)"],
    ["web", "speaker → web listener (LivePlayer, 300 ms cushion)"],
  ];
  const ms = (x) => (Number.isFinite(x) ? String(Math.round(x)) : "–");
  const lines = [
    `Speaker mouth-to-ear latency on loopback (ms; ${DURATION} s of 60 ms beeps per transport, one server and Space; ` +
      `Chromium ${browser.version()}, ${new Date().toISOString().slice(0, 10)})`, "",
    "| path | goal | WebRTC p50 | p95 | max | WebSocket p50 | p95 | max | beeps heard (WebRTC / WebSocket) |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  const bad = [], notes = [];
  for (const [k, name] of paths) {
    const r = runs.webrtc[k], w = runs.websocket[k];
    lines.push(`| ${name} | ≤ ${GOALS[k]} | ${ms(pct(r.lat, 50))} | ${ms(pct(r.lat, 95))} | ${ms(Math.max(...r.lat))} | ` +
      `${ms(pct(w.lat, 50))} | ${ms(pct(w.lat, 95))} | ${ms(Math.max(...w.lat))} | ` +
      `${r.lat.length}/${runs.webrtc.sentN} / ${w.lat.length}/${runs.websocket.sentN} |`);
    for (const [t, x] of [["WebRTC", r], ["WebSocket", w]]) {
      if (x.lat.length < MIN_BEEPS) bad.push(`${t}, ${name}: only ${x.lat.length} beeps matched (need ${MIN_BEEPS})`);
      if (x.j) notes.push(`${t}, ${name}: the latency exceeds a beep interval (matched ${x.j} beep(s) back).`);
    }
  }
  if (notes.length) lines.push("", ...notes);
  const dev = (d) => `${Math.round(1000 * (d.base + d.out))} ms`;
  lines.push("", `Not included (audio devices): each receiving AudioContext's baseLatency+outputLatency — ` +
    `WebRTC speaker ${dev(runs.webrtc.devices.speaker)}, WebSocket speaker ${dev(runs.websocket.devices.speaker)}, ` +
    `web listener ${dev(runs.websocket.devices.web)} (headless Chromium's fake output); a real microphone's capture buffer.`,
);
  const med = (x) => (x && x.lat.length ? ms(pct(x.lat, 50)) : "–");
  lines.push("", "Where the time goes (p50, ms): the microphone in the link's AudioContext " +
    `${med(runs.webrtc.miclink)} (WebRTC run) / ${med(runs.websocket.miclink)} (WebSocket run); ` +
    `WebSocket: B's decoded packets, before its 60 ms jitter buffer, ${med(runs.websocket.decoded)}; ` +
    `WebRTC: NetEq's average delay on B's stream ${runs.webrtc.neteq ? ms(runs.webrtc.neteq.avg) + " (target " + ms(runs.webrtc.neteq.target) + ")" : "–"}.`);
  lines.push("", "Command: `bash bench/latency.sh`" + (process.env.DURATION ? ` (DURATION=${DURATION})` : "") +
    ` (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  const text = lines.join("\n") + "\n";
  if (bad.length) { /* what was seen goes to stderr, for diagnosis; no table is reported */
    process.stderr.write(text);
    throw new Error("the bench cannot see its signal, no numbers reported:\n  " + bad.join("\n  "));
  }
  process.stdout.write(text);
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, text);
  console.log(`(written to ${path.relative(process.cwd(), OUT) || OUT})`);
}

main().then(() => cleanup()).then(() => process.exit(0), (e) => die(e.stack || String(e)));
