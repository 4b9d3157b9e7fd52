/* bench/fidelity/neteq_ear.mjs — an "ear" in Chromium for bench/fidelity/neteq.py: a page takes a
 * speaker's WHEP session (the mix-minus: every other speaker; the page publishes silence over
 * WHIP, as the server mixes a mix-minus only for a speaker it hears) and records what Chromium's own
 * WebRTC receiver (NetEq: jitter buffer, time-stretching, PLC, FEC) plays, as float32 mono 48 kHz.
 *
 *   node bench/fidelity/neteq_ear.mjs BASE SPACE_ID TOKEN SECONDS OUT.f32
 *
 * Prints "ready" once the WHEP stream plays (the caller starts the speaker then), records SECONDS
 * more, writes OUT.f32 and prints "done SAMPLES" plus NetEq's own counts from getStats(). */
import fs from "node:fs";
import { launch } from "../../tests/browser/lib.mjs";

const [base, sid, token, seconds, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: neteq_ear.mjs BASE SPACE_ID TOKEN SECONDS OUT.f32");
  process.exit(2);
}
const browser = await launch("/dev/null");
const timer = setTimeout(() => { console.error("neteq_ear: timed out"); process.exit(1); }, (+seconds + 60) * 1000);
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(base + "/healthz"); /* the server's origin: the WHEP POST is same-origin */
  await page.evaluate(async ({ sid, token }) => {
    const negotiate = async (pc, kind) => {
      await pc.setLocalDescription(await pc.createOffer());
      const res = await fetch(`/spaces/${sid}/${kind}`, {
        method: "POST", body: pc.localDescription.sdp,
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/sdp" },
      });
      if (res.status !== 201) throw new Error(`${kind} answered ${res.status}: ${await res.text()}`);
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    };
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.resume();
    /* the server mixes a mix-minus for a speaker it hears: the page publishes silence (WHIP) */
    const quiet = ctx.createMediaStreamDestination();
    const up = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    up.addTransceiver(quiet.stream.getAudioTracks()[0], { direction: "sendonly", streams: [quiet.stream] });
    await negotiate(up, "whip");
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const track = new Promise((resolve) => { pc.ontrack = (ev) => resolve(ev.streams[0] || new MediaStream([ev.track])); });
    await negotiate(pc, "whep");
    const stream = await track;
    /* Chromium feeds a remote stream into Web Audio only while a media element plays it */
    const el = new Audio();
    el.muted = true;
    el.srcObject = stream;
    await el.play().catch(() => {});
    const src = ctx.createMediaStreamSource(stream);
    const tap = ctx.createScriptProcessor(4096, 1, 1);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    window.__chunks = [];
    window.__rec = false;
    tap.onaudioprocess = (ev) => { if (window.__rec) window.__chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0))); };
    src.connect(tap).connect(mute).connect(ctx.destination);
    window.__pc = pc;
    window.__keep = [el, ctx, src, tap, mute, up, quiet];
    for (let i = 0; i < 100 && pc.connectionState !== "connected"; i++) await new Promise((r) => setTimeout(r, 100));
    if (pc.connectionState !== "connected") throw new Error("WHEP did not connect: " + pc.connectionState);
    window.__rec = true;
  }, { sid, token });
  console.log("ready");
  await new Promise((r) => setTimeout(r, +seconds * 1000));
  const got = await page.evaluate(async () => {
    window.__rec = false;
    const n = window.__chunks.reduce((a, c) => a + c.length, 0);
    const all = new Float32Array(n);
    let o = 0;
    for (const c of window.__chunks) { all.set(c, o); o += c.length; }
    let bin = "";
    const b = new Uint8Array(all.buffer);
    for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    const stats = {};
    (await window.__pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio")
        for (const k of ["packetsReceived", "packetsLost", "concealedSamples", "silentConcealedSamples",
          "insertedSamplesForDeceleration", "removedSamplesForAcceleration", "jitterBufferDelay",
          "jitterBufferEmittedCount", "fecPacketsReceived", "totalSamplesReceived"]) stats[k] = s[k];
    });
    return { b64: btoa(bin), stats };
  });
  fs.writeFileSync(out, Buffer.from(got.b64, "base64"));
  const s = got.stats;
  s.jitterBufferDelayMs = s.jitterBufferEmittedCount ? Math.round(s.jitterBufferDelay / s.jitterBufferEmittedCount * 1000) : null;
  console.log("done " + JSON.stringify(s));
} catch (e) {
  console.error("neteq_ear: " + (e.stack || e));
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await browser.close();
}
