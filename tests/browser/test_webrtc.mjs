/* Speakers over WebRTC in Chromium (docs/webrtc.md): a speaker page publishes a 440 Hz fake
 * microphone over WHIP and ffmpeg finds the tone in live.ogg; another speaker (1000 Hz, from
 * `spacecast speak`) is heard on the page through WHEP while the page's own voice is not; a
 * removed speaker's page is told at once; with 10 % of the speaker's RTP packets dropped by a
 * lossy UDP relay in front of the server, Chromium's RED copies bring them back and the mix has
 * no gap longer than 60 ms (in-band FEC and concealment for the rest); when UDP stops getting
 * through mid-call, when it does not get through at
 * all, or when the server has WebRTC off, the page falls back to the WebSocket link and is heard
 * all the same.
 * Run: node tests/browser/test_webrtc.mjs (ctest label "browser"). */
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BIN, Results, Server, freePort, hasTone, launch, record, sleep, toneLevel, toneWav, until } from "./lib.mjs";

const HZ = 440, OTHER_HZ = 1000;
const SOUND = 0.004; /* RMS of a tone as a page hears it; silence and Opus noise stay below 0.001 */
const res = new Results();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sc-rtc-"));
const servers = [], procs = [];
let browser = null, relay = null;

/** A UDP relay in front of the server's media port: each browser address gets its own upstream
 * socket (so the server sees distinct peers); browser→server RTP (not RTCP, STUN or DTLS) is
 * dropped by `drop(n)` for the n-th packet; `blackhole` drops everything (a UDP firewall). */
class LossyRelay {
  constructor(target) { this.target = target; this.ups = new Map(); this.rtp = 0; this.dropped = 0; this.blackhole = false; this.drop = () => false; }
  start() {
    this.sock = dgram.createSocket("udp4");
    this.sock.on("message", (msg, from) => {
      if (this.blackhole) return;
      const key = `${from.address}:${from.port}`;
      let up = this.ups.get(key);
      if (!up) {
        up = dgram.createSocket("udp4");
        up.on("message", (m) => { if (!this.blackhole) this.sock.send(m, from.port, from.address); });
        this.ups.set(key, up);
      }
      const pt = msg[1] & 0x7f;
      if (msg[0] >= 128 && msg[0] <= 191 && !(pt >= 64 && pt <= 95) && this.drop(++this.rtp)) { this.dropped++; return; }
      up.send(msg, this.target, "127.0.0.1");
    });
    return new Promise((r) => this.sock.bind(0, "127.0.0.1", () => { this.port = this.sock.address().port; r(this); }));
  }
  stop() { for (const u of this.ups.values()) u.close(); this.sock.close(); }
}

/** 10 ms windows of a recording, against their median RMS: a gap is a run of windows under a
 * quarter of it (-12 dB: clearly audible), a hole a window under 2 % (-34 dB: silence, what a
 * lost packet leaves when nothing conceals it). libopus' CELT concealment of a steady tone dips
 * to 10-30 % for a frame or two; only silence is a hole. */
function gaps(samples, skip = 48000) {
  const w = 480, rms = [];
  for (let i = skip; i + w <= samples.length; i += w) {
    let s = 0;
    for (let j = i; j < i + w; j++) s += samples[j] * samples[j];
    rms.push(Math.sqrt(s / w));
  }
  const med = [...rms].sort((a, b) => a - b)[rms.length >> 1];
  let run = 0, longest = 0, low = 0, holes = 0;
  for (const r of rms) {
    if (r < med * 0.02) holes++;
    if (r < med / 4) { low++; run++; longest = Math.max(longest, run); } else run = 0;
  }
  return { windows: rms.length, low, holes, longestMs: longest * 10, median: med };
}

async function stagePage(srv, sp, token, query = "") {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${srv.base}/s/${sp.id}${query}#token=${encodeURIComponent(token)}`);
  await until("the stage button", () => page.locator("#mic").count());
  await page.click("#mic");
  await until("on stage", async () => /on stage/.test(await page.locator("#stagestatus").innerText()), 20000);
  await until("packets going up", () => page.evaluate(() => window.__speaker && window.__speaker.sent > 25));
  return page;
}

const transport = (page) => page.evaluate(() => window.__speaker && window.__speaker.transport);
const metric = async (srv, name) => {
  const m = (await (await fetch(srv.base + "/metrics")).text()).match(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m"));
  return m ? +m[1] : 0;
};

try {
  browser = await launch(toneWav(tmp, HZ, 60));
  const srv = await new Server().start();
  servers.push(srv);
  const sp = await srv.createSpace({ title: "Over WebRTC" });
  await srv.api("POST", `/api/spaces/${sp.id}/start`, null, sp.host_token);
  let page;

  await res.step("a speaker page publishes over WHIP; ffmpeg finds its tone in live.ogg", async () => {
    page = await stagePage(srv, sp, sp.host_token);
    res.check(await transport(page) === "webrtc", `the page went on stage over ${await transport(page)}`);
    res.check(await metric(srv, "spacecast_rtc_sessions_connected") === 2, "not one WHIP and one WHEP session up");
    const a = await record(`${srv.base}/spaces/${sp.id}/live.ogg`, 3);
    res.check(hasTone(a, HZ), "no 440 Hz from the WebRTC speaker in live.ogg");
    /* its mix-minus is everyone but itself: nothing while it speaks alone */
    const own = await page.evaluate(() => [window.__speaker.received, window.__speaker.mixLevel]);
    res.check(own[0] > 25 && own[1] < 0.002, `the WHEP mix-minus is not silent while the speaker is alone: ${own}`);
  });

  await res.step("the speaker hears another speaker's tone through WHEP", async () => {
    const bob = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "bob", role: "speaker" }, sp.host_token);
    const p = spawn(BIN, ["speak", `${srv.base}/spaces/${sp.id}`, "--token", bob.token, toneWav(tmp, OTHER_HZ, 30)], { stdio: "ignore" });
    procs.push(p);
    await until("the page hears bob", () => page.evaluate((t) => window.__speaker.mixLevel > t, SOUND), 10000);
    const a = await record(`${srv.base}/spaces/${sp.id}/live.ogg`, 3);
    res.check(hasTone(a, OTHER_HZ) && hasTone(a, HZ), "live.ogg lacks one of the two speakers");
    p.kill("SIGTERM");
  });

  await res.step("a removed speaker's page is told at once and its sessions end", async () => {
    const dan = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "dan", role: "speaker" }, sp.host_token);
    const dp = await stagePage(srv, sp, dan.token);
    res.check(await transport(dp) === "webrtc", "dan is not on WebRTC");
    const before = await metric(srv, "spacecast_rtc_sessions");
    await srv.api("DELETE", `/api/spaces/${sp.id}/speakers/dan`, null, sp.host_token);
    await until("dan told", async () => /removed you/.test(await dp.locator("#stagestatus").innerText()), 3000);
    await until("dan's two sessions gone", async () => await metric(srv, "spacecast_rtc_sessions") === before - 2, 3000);
    await dp.context().close();
  });
  await page.context().close();

  let lossy = null, s2 = null, p2 = null;
  await res.step("10 % of the speaker's RTP lost on the way: no gap over 60 ms in the mix", async () => {
    lossy = new Server(); /* its own server: the relay is the candidate it announces */
    lossy.port = await freePort();
    relay = await new LossyRelay(lossy.port).start();
    lossy.flags = ["--rtc-candidate", `127.0.0.1:${relay.port}`];
    servers.push(await lossy.start());
    s2 = await lossy.createSpace({ title: "A lossy network" });
    await lossy.api("POST", `/api/spaces/${s2.id}/start`, null, s2.host_token);
    relay.drop = (n) => n % 10 === 5; /* every tenth packet, isolated losses: what FEC is for */
    p2 = await stagePage(lossy, s2, s2.host_token);
    res.check(await transport(p2) === "webrtc", "not on WebRTC through the relay");
    await sleep(2000); /* our receiver reports tell the browser's encoder about the loss; FEC follows */
    const a = await record(`${lossy.base}/spaces/${s2.id}/live.ogg`, 8);
    const g = gaps(a);
    console.log(`     relay dropped ${relay.dropped} of ${relay.rtp} RTP packets; 10 ms windows: ${g.windows}, ` +
                `under a quarter of the median: ${g.low}, silent: ${g.holes}, longest gap ${g.longestMs} ms`);
    res.check(relay.dropped >= relay.rtp / 10 - 1 && relay.rtp > 300, `the relay did not drop 10 %: ${relay.dropped}/${relay.rtp}`);
    res.check(hasTone(a, HZ), "no tone through the lossy network: levels at 300/440/1000/1700 Hz " + [300, 440, 1000, 1700].map((f) => toneLevel(a, f).toFixed(1)).join(" "));
    res.check(g.longestMs <= 60, `a gap of ${g.longestMs} ms in the mix`);
    /* without concealment every lost packet would leave 20 ms of silence: 10 % of the windows */
    res.check(g.holes <= g.windows * 0.005, `${g.holes} of ${g.windows} windows are silent: losses were not concealed`);
  });

  await res.step("UDP stops getting through mid-call: the page moves to the WebSocket link by itself and is heard", async () => {
    res.check(p2, "no lossy page from the step before");
    const dropped = relay.dropped;
    relay.blackhole = true; /* ICE goes "disconnected"; after 5 s and three reconnections that fail, the WebSocket link */
    /* the WebRTC session ends (the page's DELETE or 10 s of silence): the mix reports how it
     * filled the losses of the step before. Chromium sends RED (RFC 2198) when the answer lists
     * it first, as ours does: each packet carries a copy of the one before, so an isolated loss
     * comes back whole with the next packet; what does not is filled with in-band FEC where the
     * packet after carried it (SILK), with the decoder's concealment otherwise (a steady tone
     * makes Opus choose CELT). A packet whose turn came while the buffer was already
     * concealing, waiting for a late one, is covered by that concealment: "lost" counts it, and
     * "concealed" does not (under load, before RED, only 32 of 55 were counted as filled) */
    const left = await until("the speaker's loss report", () => lossy.log().match(/event=speaker_left .*concealed=(\d+) fec_recovered=(\d+) lost=(\d+)/), 30000);
    const red = +(lossy.log().match(/event=rtc_closed kind=whip .*red_recovered=(\d+)/) || [0, 0])[1];
    console.log(`     of ${dropped} dropped: ${red} came back in RED copies; the mix lost ${left[3]} (concealed ${left[1]}, ` +
                `recovered ${left[2]} from FEC, the rest while concealing already)`);
    res.check(red >= dropped * 0.9, `Chromium's RED copies brought back only ${red} of ${dropped} lost packets`);
    res.check(red + +left[3] >= dropped * 0.95, `only ${red + +left[3]} of ${dropped} losses were brought back or concealed`);
    await until("the page on the WebSocket link", async () => await transport(p2) === "websocket", 90000);
    await until("on stage again", async () => /on stage/.test(await p2.locator("#stagestatus").innerText()), 10000);
    const b = await record(`${lossy.base}/spaces/${s2.id}/live.ogg`, 3);
    res.check(hasTone(b, HZ), "the speaker is not heard after moving to the WebSocket link");
    await p2.context().close();
  });

  await res.step("a page that joins while UDP is blocked takes the WebSocket link within 8 s and is heard", async () => {
    res.check(relay && relay.blackhole, "no blocked relay from the steps before");
    const p3 = await stagePage(lossy, s2, s2.host_token);
    res.check(await transport(p3) === "websocket", `with UDP blocked the page is on ${await transport(p3)}`);
    const b = await record(`${lossy.base}/spaces/${s2.id}/live.ogg`, 3);
    res.check(hasTone(b, HZ), "the fallback speaker is not heard");
    await p3.context().close();
  });

  await res.step("WebRTC off on the server: the page takes the WebSocket link at once and is heard", async () => {
    const off = await new Server(["--rtc-listen", "off"]).start();
    servers.push(off);
    const s3 = await off.createSpace({ title: "No UDP here" });
    await off.api("POST", `/api/spaces/${s3.id}/start`, null, s3.host_token);
    const t0 = Date.now();
    const p = await stagePage(off, s3, s3.host_token);
    res.check(await transport(p) === "websocket", "not on the WebSocket link");
    res.check(Date.now() - t0 < 8000, `the fallback took ${Date.now() - t0} ms`);
    const a = await record(`${off.base}/spaces/${s3.id}/live.ogg`, 3);
    res.check(hasTone(a, HZ), "the WebSocket speaker is not heard");
    await p.context().close();
  });
} catch (e) {
  res.failed++;
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  procs.forEach((p) => p.exitCode === null && p.kill("SIGKILL"));
  if (browser) await browser.close();
  if (relay) relay.stop();
  for (const s of servers) {
    await s.stop();
    if (res.failed) console.log(s.log().split("\n").filter((l) => /rtc|speak|error|warn/.test(l)).slice(0, 60).join("\n"));
    else fs.rmSync(s.data, { recursive: true, force: true });
  }
  console.log(`${res.passed} passed, ${res.failed} failed`);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(res.failed ? 1 : 0);
}
