/* spacecast speaker link over WebRTC (docs/webrtc.md): the microphone goes up with WHIP, the
 * speaker's mix-minus comes back with WHEP, both to an ICE-lite server on one UDP port.
 * Over UDP the browser's own jitter buffer, Opus in-band FEC and loss concealment keep a
 * conversation natural where a TCP link would stall. A WebSocket link with ?media=none
 * carries only the control events (hello, muted, removed, ended) and the mute button.
 * The same interface as SpeakerLink (speaker.js), which the page falls back to when WebRTC
 * cannot connect. Plain JS, no build step. */
"use strict";
/* global scRms -- from player.js, loaded first */

class RtcFallback extends Error {}

class RtcSpeakerLink {
  /* onState(state, words): state is connecting | connected | reconnecting | stopped */
  constructor(spaceId, token, onState, onControl) {
    this.id = spaceId; this.token = token; this.transport = "webrtc";
    this.onState = onState || (() => {}); this.onControl = onControl || (() => {});
    this.muted = false; this.stopped = false; this.attempt = 0; this.everConnected = false;
    this.sent = 0; this.received = 0; this.pcs = []; this.resources = []; this.gen = 0; this.failures = 0;
    this.onFallback = null; /* set by the page: called when WebRTC stops getting through mid-call */
  }

  static supported() {
    return typeof RTCPeerConnection === "function" && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  /* Resolves once WebRTC media flows; rejects with RtcFallback when it cannot (the page then
   * uses the WebSocket link), or with another error when the token itself is refused. */
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.track = this.stream.getAudioTracks()[0];
    this.ctx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    this.micMeter = this.meter(this.stream);
    this.openControl();
    this.statsTimer = setInterval(() => this.readStats(), 500);
    /* a closing tab hangs up properly (DELETE goes out with keepalive), not by going silent */
    this.onPageHide = () => this.stop();
    addEventListener("pagehide", this.onPageHide);
    await this.connect();
  }

  /* A level meter on a stream: RMS of the last ~40 ms, read when the page asks. */
  meter(stream) {
    const a = this.ctx.createAnalyser();
    a.fftSize = 2048;
    this.ctx.createMediaStreamSource(stream).connect(a);
    const buf = new Float32Array(a.fftSize);
    return () => { a.getFloatTimeDomainData(buf); return scRms(buf); };
  }
  get micLevel() { return this.micMeter && !this.muted ? this.micMeter() : 0; }
  get mixLevel() { return this.mixMeter ? this.mixMeter() : 0; }

  /* --- the media: one WHIP and one WHEP session ------------------------------------------- */

  async connect() {
    if (this.stopped) return;
    this.onState("connecting", this.attempt ? "Reconnecting to the Space…" : "Connecting your microphone…");
    const gen = ++this.gen;
    try {
      const up = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
      up.addTransceiver(this.track, { direction: "sendonly", streams: [this.stream] });
      const down = new RTCPeerConnection({ bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
      down.addTransceiver("audio", { direction: "recvonly" });
      down.ontrack = (ev) => this.hear(ev.streams[0] || new MediaStream([ev.track]));
      this.pcs = [up, down];
      this.track.enabled = !this.muted;
      await this.negotiate(up, "whip");
      await this.negotiate(down, "whep");
      const connected = new Promise((resolve, reject) => {
        const check = () => {
          if (gen !== this.gen) return;
          const st = up.connectionState;
          if (st === "connected") resolve();
          if (st === "failed" || st === "closed") reject(new RtcFallback("WebRTC " + st));
          this.watch(st, gen);
        };
        up.onconnectionstatechange = check;
        check(); /* ICE-lite on loopback may be done before the WHEP answer came back */
        setTimeout(() => reject(new RtcFallback("WebRTC did not connect in 8 s")), 8000);
      });
      await connected;
      this.attempt = 0; this.failures = 0; this.everConnected = true;
      this.onState("connected", this.stageWords());
    } catch (e) {
      if (gen !== this.gen || this.stopped) return;
      this.teardown();
      if (e instanceof RtcFallback && !this.everConnected) throw e; /* never worked here: the page takes the WebSocket link */
      /* a server that is restarting says nothing about UDP: only failures to connect count */
      if (e instanceof RtcFallback && !e.unreachable && ++this.failures >= 3 && this.onFallback) {
        this.stop(); /* worked before, not any more (a network that drops UDP now): the WebSocket link */
        this.onFallback();
        return;
      }
      if (!(e instanceof RtcFallback) && e.final) { this.stop(); this.onState("stopped", e.message); throw e; }
      this.reconnect();
    }
  }

  async negotiate(pc, kind) {
    /* no waiting for candidates: an ICE-lite server learns our address from our checks */
    await pc.setLocalDescription(await pc.createOffer());
    let res;
    try {
      res = await fetch(`/spaces/${this.id}/${kind}`, {
        method: "POST", body: pc.localDescription.sdp,
        headers: { Authorization: "Bearer " + this.token, "Content-Type": "application/sdp" },
      });
    } catch (e) {
      const err = new RtcFallback("the server is unreachable"); /* restarting, or the network is down */
      err.unreachable = true;
      throw err;
    }
    if (res.status === 401 || res.status === 403 || res.status === 409) {
      const err = new Error(res.status === 409 ? "The Space has ended." : "Your invitation is no longer valid.");
      err.final = true;
      throw err;
    }
    if (res.status !== 201) throw new RtcFallback(`${kind.toUpperCase()} answered ${res.status}`);
    this.resources.push(new URL(res.headers.get("Location"), location.href).href);
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  }

  hear(stream) {
    /* Chromium feeds a remote WebRTC stream into Web Audio only while a media element plays it */
    if (!this.audio) { this.audio = new Audio(); this.audio.autoplay = true; }
    this.audio.srcObject = stream;
    this.audio.play().catch(() => {});
    this.mixMeter = this.meter(stream);
  }

  /* Honest words for a connection that wobbles: ICE "disconnected" often heals by itself
   * within a few seconds; if it has not after 5 s, start over rather than wait for "failed"
   * (which Chromium declares only after its consent checks have gone unanswered for 30 s). */
  watch(st, gen) {
    if (gen !== this.gen || this.stopped || !this.everConnected) return;
    if (st === "disconnected") {
      this.onState("reconnecting", "The connection is unsteady…");
      setTimeout(() => {
        if (gen === this.gen && !this.stopped && this.pcs[0] && this.pcs[0].connectionState === "disconnected") {
          this.teardown();
          this.reconnect();
        }
      }, 5000);
    } else if (st === "connected") this.onState("connected", this.stageWords());
    else if (st === "failed" || st === "closed") { this.teardown(); this.reconnect(); }
  }

  reconnect() {
    if (this.stopped) return;
    const wait = Math.min(15000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.onState("reconnecting", `Connection lost — reconnecting in ${Math.ceil(wait / 1000)} s`);
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.connect().catch(() => this.reconnect()), wait);
  }

  teardown() {
    this.gen++; /* callbacks of the old connections see they are stale */
    const pcs = this.pcs, urls = this.resources;
    this.pcs = []; this.resources = []; this.mixMeter = null;
    /* WHIP's way to hang up is DELETE; the peer connections close once it is answered, so the
     * server is not told twice (DTLS close_notify first would make the DELETE a 404) */
    const gone = urls.map((url) => fetch(url, { method: "DELETE", keepalive: true,
      headers: { Authorization: "Bearer " + this.token } }).catch(() => {}));
    Promise.race([Promise.allSettled(gone), new Promise((r) => setTimeout(r, 2000))])
      .then(() => pcs.forEach((pc) => pc.close()));
  }

  async readStats() {
    for (const pc of this.pcs) {
      const stats = await pc.getStats().catch(() => null);
      if (!stats) continue;
      stats.forEach((s) => {
        if (s.type === "outbound-rtp" && s.kind === "audio") this.sent = s.packetsSent;
        if (s.type === "inbound-rtp" && s.kind === "audio") this.received = s.packetsReceived;
      });
    }
  }

  stageWords() { return this.live === false ? "You are on stage — the Space has not started yet" : "You are on stage"; }

  /* --- control: the WebSocket link without media ------------------------------------------- */

  openControl() {
    if (this.stopped) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/spaces/${this.id}/speak?media=none&token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    ws.onmessage = (ev) => {
      let msg = null;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "hello") { this.controlAttempt = 0; this.live = msg.state === "live"; this.setMuted(msg.muted, false); }
      if (msg.type === "muted") this.setMuted(msg.muted, false);
      this.onControl(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const final = { 4003: "The host removed you from the stage.", 1000: "The Space has ended." }[ev.code];
      if (final && !this.stopped) { this.stop(); this.onState("stopped", final); return; }
      if (this.stopped) return;
      /* The control link and the media go to the same server: when the link drops, the server
       * has most likely restarted and our sessions with it. Chromium would notice only when its
       * consent checks go unanswered (~10 s); start over now. */
      if (this.everConnected && this.pcs.length) {
        this.teardown();
        this.attempt = 0;
        this.reconnect();
      }
      const wait = Math.min(15000, 500 * 2 ** (this.controlAttempt = (this.controlAttempt || 0) + 1));
      this.controlRetry = setTimeout(() => this.openControl(), wait); /* the audio goes on meanwhile */
    };
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => this.sendJSON({ type: "ping" }), 4000); /* idle limit is 10 s */
  }

  sendJSON(obj) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj)); }

  /* Muted: the track sends silence and the server takes us out of the mix (and says so to all). */
  setMuted(m, tell = true) {
    this.muted = m;
    if (this.track) this.track.enabled = !m;
    if (tell) this.sendJSON({ type: "mute", muted: m });
  }

  stop() {
    this.stopped = true;
    if (this.onPageHide) removeEventListener("pagehide", this.onPageHide);
    clearTimeout(this.retry); clearTimeout(this.controlRetry);
    clearInterval(this.keepalive); clearInterval(this.statsTimer);
    this.teardown();
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
    if (this.audio) { this.audio.srcObject = null; this.audio = null; }
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.ctx) this.ctx.close();
  }
}
window.RtcSpeakerLink = RtcSpeakerLink;
window.RtcFallback = RtcFallback;
