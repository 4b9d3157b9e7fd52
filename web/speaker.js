/* spacecast speaker link in the browser: the microphone goes up as Opus over the WebSocket
 * speaker link (docs/websocket.md), the speaker's mix-minus comes back and is played.
 *   mic → AudioWorklet (20 ms frames) → WebCodecs AudioEncoder (Opus) → 8-byte header → WebSocket
 *   WebSocket → AudioDecoder → AudioWorklet jitter buffer → speakers
 * It reconnects by itself with backoff, except when the server says the speaker was removed,
 * replaced by a newer connection, or the Space ended. Plain JS, no build step. */
"use strict";
/* global scPcm, scRms -- from player.js, loaded first */

class SpeakerLink {
  /* onState(state, words): state is connecting | connected | reconnecting | stopped */
  constructor(spaceId, token, onState, onControl) {
    this.id = spaceId; this.token = token; this.transport = "websocket";
    this.onState = onState || (() => {}); this.onControl = onControl || (() => {});
    this.ws = null; this.muted = false; this.stopped = false; this.attempt = 0;
    this.seq = 0; this.ts = 0; this.micLevel = 0; this.mixLevel = 0;
    this.sent = 0; this.received = 0;
  }

  static supported() {
    return typeof AudioEncoder === "function" && typeof AudioDecoder === "function" &&
      typeof AudioWorkletNode === "function" && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    /* 48 kHz is Opus's own rate and the server's: no resampling between us and the mix */
    this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    await this.ctx.audioWorklet.addModule("/web/worklet.js");
    const mic = this.ctx.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.ctx, "sc-capture", { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit" });
    mic.connect(this.capture);
    this.player = new AudioWorkletNode(this.ctx, "sc-play", { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    this.player.connect(this.ctx.destination);

    this.encoder = new AudioEncoder({
      output: (chunk) => this.sendPacket(chunk),
      error: (e) => this.onState("reconnecting", "The encoder failed: " + e.message),
    });
    this.encoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1, bitrate: 32000,
                             opus: { frameDuration: 20000, useinbandfec: true, packetlossperc: 5 } });
    this.newDecoder();
    this.capture.port.onmessage = (ev) => this.encodeFrame(ev.data);
    this.keepalive = setInterval(() => this.sendJSON({ type: "ping" }), 4000); /* idle limit is 10 s */
    this.connect();
  }

  newDecoder() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = new AudioDecoder({
      output: (data) => this.playDecoded(data),
      error: () => this.newDecoder(), /* a bad packet: start over with the next one */
    });
    this.decoder.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/spaces/${this.id}/speak?token=${encodeURIComponent(this.token)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.onState("connecting", this.attempt ? "Reconnecting to the Space…" : "Connecting your microphone…");
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") { this.receive(ev.data); return; }
      let msg = null;
      try { msg = JSON.parse(ev.data); } catch (e) { return; /* not ours to understand */ }
      if (msg && typeof msg === "object") this.control(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const final = { 4001: "Your microphone was taken over by another tab or device.",
                      4003: "The host removed you from the stage.", 1000: "The Space has ended." }[ev.code];
      if (final || this.stopped) { this.stop(); this.onState("stopped", final || "Microphone off."); return; }
      const wait = Math.min(15000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.onState("reconnecting", `Connection lost — reconnecting in ${Math.ceil(wait / 1000)} s`);
      this.retry = setTimeout(() => this.connect(), wait);
    };
  }

  control(msg) {
    if (msg.type === "hello") {
      this.attempt = 0; this.muted = msg.muted;
      this.onState("connected", msg.state === "live" ? "You are on stage" : "You are on stage — the Space has not started yet");
    }
    if (msg.type === "muted") this.muted = msg.muted;
    this.onControl(msg);
  }

  encodeFrame(samples) {
    this.micLevel = scRms(samples);
    if (this.encoder.state !== "configured") return;
    const data = new AudioData({ format: "f32-planar", sampleRate: 48000, numberOfFrames: samples.length,
                                 numberOfChannels: 1, timestamp: Math.round(this.ts * 1e6 / 48000), data: samples });
    this.ts += samples.length;
    this.encoder.encode(data);
    data.close();
  }

  sendPacket(chunk) {
    const ws = this.ws;
    /* muted: nothing leaves the browser; a backed-up socket: drop rather than queue (latency) */
    if (!ws || ws.readyState !== WebSocket.OPEN || this.muted || ws.bufferedAmount > 16384) return;
    const msg = new Uint8Array(8 + chunk.byteLength);
    const v = new DataView(msg.buffer);
    v.setUint16(0, this.seq); this.seq = (this.seq + 1) & 0xffff;
    v.setUint16(2, 0);
    v.setUint32(4, Math.round(chunk.timestamp * 48000 / 1e6) >>> 0);
    chunk.copyTo(msg.subarray(8));
    ws.send(msg);
    this.sent++;
  }

  receive(buf) {
    if (buf.byteLength < 9 || this.decoder.state !== "configured") return;
    const v = new DataView(buf);
    const ts = v.getUint32(4);
    this.received++;
    this.decoder.decode(new EncodedAudioChunk({ type: "key", timestamp: Math.round(ts * 1e6 / 48000), data: new Uint8Array(buf, 8) }));
  }

  playDecoded(data) {
    const pcm = scPcm(data);
    this.mixLevel = 0.8 * this.mixLevel + 0.2 * scRms(pcm);
    this.player.port.postMessage(pcm, [pcm.buffer]);
  }

  sendJSON(obj) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj)); }

  setMuted(m) { this.muted = m; this.sendJSON({ type: "mute", muted: m }); }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry); clearInterval(this.keepalive);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
    if (this.encoder && this.encoder.state !== "closed") this.encoder.close();
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.ctx) this.ctx.close();
  }
}
window.SpeakerLink = SpeakerLink;
