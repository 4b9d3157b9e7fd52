/* spacecast live player: live.ogg read with fetch(), its Ogg pages split into Opus packets here,
 * decoded by WebCodecs and played through the AudioWorklet jitter buffer (web/worklet.js).
 *
 * Why not just <audio src=live.ogg>: Chromium's media stack reads a progressive stream in
 * 32 KB blocks, which at 32 kbps is 8 s of audio: it starts 7.5 s after Play, plays ~5 s behind
 * the live edge and stalls when a block is late (measured; docs/webapp.md). The server sends a
 * newcomer the live edge at once, so this player starts in well under a second and stays there.
 * It also sees the HTTP status, Retry-After and the alternatives of a refusal, which an <audio>
 * element hides. Browsers without WebCodecs use <audio> (app.js). */
"use strict";

/* Shared with speaker.js (loaded after this file): a decoded frame as one mono Float32Array
 * (the AudioData is closed), and the RMS level of samples (every 4th is enough for a meter). */
function scPcm(data) {
  const pcm = new Float32Array(data.numberOfFrames);
  data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
  data.close();
  return pcm;
}
function scRms(x) {
  let s = 0;
  for (let i = 0; i < x.length; i += 4) s += x[i] * x[i];
  return Math.sqrt(s / Math.ceil(x.length / 4));
}

class LivePlayer {
  static supported() {
    return typeof AudioDecoder === "function" && typeof AudioWorkletNode === "function" &&
      typeof ReadableStream === "function";
  }

  constructor(url) {
    this.url = url; this.level = 0; this.packets = 0; this.abort = null; this.ctx = null;
  }

  /* Opens the stream. Resolves once audio flows; rejects with err.status, err.retryAfter and
   * err.body (the server's JSON) when refused. `onEnd(reason)` is called when the stream stops
   * later: "ended" (the Space ended: Ogg end-of-stream) or "lost" (network). */
  async start(onEnd) {
    if (!this.ctx) {
      this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: "playback" });
      await this.ctx.audioWorklet.addModule("/web/worklet.js");
      /* 300 ms of cushion against network jitter, never more than 1 s behind */
      this.node = new AudioWorkletNode(this.ctx, "sc-play", { numberOfInputs: 0, outputChannelCount: [1],
        processorOptions: { prebuffer: 14400, maxLag: 48000 } });
      this.node.connect(this.ctx.destination);
    }
    await this.ctx.resume();
    this.abort = new AbortController();
    const r = await fetch(this.url, { signal: this.abort.signal, cache: "no-store" });
    if (!r.ok) {
      const err = new Error("HTTP " + r.status);
      err.status = r.status; err.retryAfter = +r.headers.get("Retry-After") || 0;
      try { err.body = await r.json(); } catch (e) { /* not JSON */ }
      if (err.body && err.body.error) { err.message = err.body.error.message; err.retryAfter ||= err.body.error.retry_after; }
      throw err;
    }
    this.newDecoder();
    this.pump(r.body.getReader(), onEnd);
  }

  newDecoder() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = new AudioDecoder({ output: (d) => this.play(d), error: () => this.newDecoder() });
    this.decoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
  }

  async pump(reader, onEnd) {
    let buf = new Uint8Array(0), eos = false, headers = 0, ts = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const joined = new Uint8Array(buf.length + value.length);
        joined.set(buf); joined.set(value, buf.length);
        buf = joined;
        /* whole pages: "OggS", 27-byte header, lacing table, then the packets it describes */
        let off = 0;
        while (buf.length - off >= 27) {
          if (buf[off] !== 0x4f || buf[off + 1] !== 0x67 || buf[off + 2] !== 0x67 || buf[off + 3] !== 0x53)
            throw new Error("not an Ogg stream");
          const nseg = buf[off + 26];
          if (buf.length - off < 27 + nseg) break;
          let body = 0;
          for (let i = 0; i < nseg; i++) body += buf[off + 27 + i];
          if (buf.length - off < 27 + nseg + body) break;
          const flags = buf[off + 5];
          let p = off + 27 + nseg, start = p;
          for (let i = 0; i < nseg; i++) {
            p += buf[off + 27 + i];
            if (buf[off + 27 + i] < 255) { /* a packet ends here */
              if (headers < 2) headers++; /* OpusHead, OpusTags */
              else if (this.decoder.state === "configured") {
                this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: ts, data: buf.subarray(start, p) }));
                ts += 20000; this.packets++;
              }
              start = p;
            }
          }
          if (flags & 4) eos = true;
          off += 27 + nseg + body;
        }
        buf = buf.slice(off);
        if (eos) break;
      }
    } catch (e) {
      if (this.abort && this.abort.signal.aborted) return; /* stopped by us */
    }
    if (this.abort && this.abort.signal.aborted) return;
    onEnd(eos ? "ended" : "lost");
  }

  play(data) {
    const pcm = scPcm(data);
    this.level = 0.8 * this.level + 0.2 * scRms(pcm);
    this.node.port.postMessage(pcm, [pcm.buffer]);
  }

  stop() {
    if (this.abort) this.abort.abort();
    this.abort = null;
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    if (this.ctx) this.ctx.suspend();
    this.level = 0;
  }
}
window.LivePlayer = LivePlayer;
