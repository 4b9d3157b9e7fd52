/* Helpers for the browser tests: the real server on a free loopback port, the API, ffmpeg to
 * make tones and to record live.ogg, a Goertzel tone meter, raw stream listeners, and Debian's
 * Chromium through playwright-core (never a downloaded browser). */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = path.resolve(here, "..", "..");
export const BIN = process.env.SPACECAST_BIN || path.join(SOURCE_DIR, "build", "spacecast");
export const ADMIN_KEY = "browser-test-admin-key";
export const ARTIFACTS = process.env.SC_ARTIFACTS || path.join(here, "artifacts");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on("error", reject);
  });
}

/** A spacecast server of this test's own, stopped by its PID. */
export class Server {
  constructor(flags = []) { this.flags = flags; }
  async start() {
    this.port ||= await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.data ||= fs.mkdtempSync(path.join(os.tmpdir(), "sc-browser-"));
    const log = fs.openSync(path.join(this.data, "server.log"), "a");
    this.proc = spawn(BIN, ["serve", "--listen", `127.0.0.1:${this.port}`, "--data", this.data,
      "--admin-key", ADMIN_KEY, "--web-root", path.join(SOURCE_DIR, "web"), ...this.flags],
      { stdio: ["ignore", log, log] });
    for (let i = 0; i < 100; i++) {
      try { if ((await fetch(this.base + "/healthz")).ok) return this; } catch (e) { /* not up yet */ }
      await sleep(100);
    }
    throw new Error("server did not start; log: " + this.log());
  }
  /** SIGTERM, then the same binary on the same port and data directory. */
  async restart() { await this.stop(); return this.start(); }
  log() { try { return fs.readFileSync(path.join(this.data, "server.log"), "utf8"); } catch (e) { return ""; } }
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await Promise.race([done, sleep(10000)]);
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
  async api(method, p, body, token) {
    const headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(this.base + p, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  createSpace(fields) { return this.api("POST", "/api/spaces", { title: "Browser test", ...fields }, ADMIN_KEY); }
}

/** A WAV file of a sine tone at half of full scale (Chromium's fake microphone loops it). */
export function toneWav(dir, freq, seconds = 20) {
  const f = path.join(dir, `tone${freq}.wav`);
  const p = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
    `sine=frequency=${freq}:sample_rate=48000:duration=${seconds}`, "-af", "volume=4", "-ac", "1", "-c:a", "pcm_s16le", f]);
  if (p.status !== 0) throw new Error("ffmpeg could not make a tone: " + p.stderr);
  return f;
}

/** Decode `seconds` of a live stream with ffmpeg into 48 kHz mono samples (Int16Array);
 *  inputArgs go before -i (an https URL: ["-tls_verify", "1", "-ca_file", CA]). */
export function record(url, seconds, inputArgs = []) {
  return new Promise((resolve, reject) => {
    const p = spawn("ffmpeg", ["-nostdin", "-v", "error", ...inputArgs, "-i", url, "-t", String(seconds),
      "-f", "s16le", "-ac", "1", "-ar", "48000", "-"], { stdio: ["ignore", "pipe", "pipe"] });
    const out = []; let err = "";
    p.stdout.on("data", (d) => out.push(d));
    p.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => p.kill("SIGKILL"), (seconds + 20) * 1000);
    p.on("exit", () => {
      clearTimeout(t);
      const b = Buffer.concat(out);
      const s = new Int16Array(b.buffer, b.byteOffset, Math.floor(b.length / 2));
      if (!s.length) reject(new Error("ffmpeg recorded nothing from " + url + ": " + err)); else resolve(s);
    });
  });
}

/** Goertzel magnitude of freq in samples, per sample (as tests/integration/sclib.py). */
export function toneLevel(samples, freq, rate = 48000) {
  const w = (2 * Math.PI * freq) / rate, c = 2 * Math.cos(w);
  let s1 = 0, s2 = 0;
  for (let i = 0; i < samples.length; i++) { const s = samples[i] + c * s1 - s2; s2 = s1; s1 = s; }
  return Math.sqrt(Math.max(s1 * s1 + s2 * s2 - c * s1 * s2, 0)) / samples.length;
}

/** freq stands well above two reference bins where no test tone and no lobby note lies. */
export function hasTone(samples, freq, others = [300, 1700]) {
  const lv = toneLevel(samples, freq);
  return lv > 20 && others.every((o) => lv > 10 * toneLevel(samples, o));
}

/** A raw live.ogg listener that only holds its place (for the tally and the full Space). */
export function rawListener(port, id) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(`GET /spaces/${id}/live.ogg HTTP/1.1\r\nHost: x\r\n\r\n`));
    let head = "";
    const onData = (d) => {
      head += d.toString("latin1");
      if (head.includes("\r\n\r\n")) {
        s.off("data", onData); s.on("data", () => {});
        if (head.startsWith("HTTP/1.1 200")) resolve(s); else { s.destroy(); reject(new Error(head.split("\r\n")[0])); }
      }
    };
    s.on("data", onData);
    s.on("error", reject);
  });
}

/** Debian's Chromium; `micWav` becomes its (only) microphone; `extra` more flags; `env` its
 *  environment (the TLS test gives one a HOME with an NSS store that trusts the test CA). */
export function launch(micWav, extra = [], env = undefined) {
  return chromium.launch({
    executablePath: CHROMIUM,
    env,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      `--use-file-for-fake-audio-capture=${micWav}`, "--autoplay-policy=no-user-gesture-required",
      "--allow-loopback-in-peer-connection", ...extra], /* WebRTC to the server on 127.0.0.1 */
  });
}

/** Wait until fn() returns something truthy (polled), or fail with what was last seen. */
export async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    await sleep(200);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** Steps that report one line each; the process exits 1 if any failed. */
export class Results {
  constructor() { this.failed = 0; this.passed = 0; }
  async step(name, fn) {
    const t = Date.now();
    try { await fn(); this.passed++; console.log(`ok   ${name} (${Date.now() - t} ms)`); }
    catch (e) { this.failed++; console.log(`FAIL ${name}: ${e.stack || e}`); }
  }
  check(cond, msg) { if (!cond) throw new Error(msg); }
}

/** Send one raw HTTP request; resolves with the status code of the answer. */
export function rawStatus(port, request) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(request));
    let head = "";
    s.on("data", (d) => {
      head += d.toString("latin1");
      const m = head.match(/^HTTP\/1\.1 (\d{3})/);
      if (m) { s.destroy(); resolve(+m[1]); }
    });
    s.on("error", reject);
    s.setTimeout(5000, () => { s.destroy(); reject(new Error("no answer")); });
  });
}
