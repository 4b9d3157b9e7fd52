/* spacecast audio worklets (loaded with audioWorklet.addModule; they run on the audio thread).
 *   sc-capture: the microphone, cut into 20 ms frames (960 samples at 48 kHz) for the encoder.
 *   sc-play:    decoded frames (a speaker's mix-minus, a listener's live mix) through a jitter buffer. */
"use strict";

const FRAME = 960;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buf = new Float32Array(FRAME);
    this.fill = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true; /* no input yet (the track is starting) */
    let i = 0;
    while (i < ch.length) {
      const n = Math.min(ch.length - i, FRAME - this.fill);
      this.buf.set(ch.subarray(i, i + n), this.fill);
      this.fill += n; i += n;
      if (this.fill === FRAME) { /* hand the frame over without a copy */
        this.port.postMessage(this.buf, [this.buf.buffer]);
        this.buf = new Float32Array(FRAME);
        this.fill = 0;
      }
    }
    return true;
  }
}

/* A ring of decoded samples. Playback starts once `prebuffer` samples wait (60 ms: enough for
 * the network's jitter on a good link); an underrun plays silence and buffers again; more than
 * `maxLag` waiting (both settable as processorOptions) means we fell behind (a stall, a tab in the background): the oldest samples
 * are dropped so the speaker keeps talking to the present, not to 2 s ago. */
class PlayProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.prebuffer = o.prebuffer || 3 * FRAME; this.maxLag = o.maxLag || 12 * FRAME;
    this.ring = new Float32Array(Math.max(48000, 2 * this.maxLag));
    this.r = 0; this.w = 0; this.count = 0;
    this.playing = false;
    this.port.onmessage = (ev) => this.push(ev.data);
  }
  push(samples) {
    const cap = this.ring.length;
    for (let i = 0; i < samples.length; i++) {
      this.ring[this.w] = samples[i];
      this.w = (this.w + 1) % cap;
    }
    this.count = Math.min(cap, this.count + samples.length);
    if (this.count > this.maxLag) { /* skip forward to the present */
      const drop = this.count - this.prebuffer;
      this.r = (this.w - this.prebuffer + cap) % cap;
      this.count -= drop;
    }
  }
  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.count >= this.prebuffer) this.playing = true;
    if (!this.playing || this.count < out.length) { out.fill(0); this.playing = false; return true; }
    const cap = this.ring.length;
    for (let i = 0; i < out.length; i++) {
      out[i] = this.ring[this.r];
      this.r = (this.r + 1) % cap;
    }
    this.count -= out.length;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}

registerProcessor("sc-capture", CaptureProcessor);
registerProcessor("sc-play", PlayProcessor);
