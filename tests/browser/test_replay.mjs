/* #19 in Chromium, as listeners and hosts see it: two listeners tap reactions and each sees the
 * other's in the totals (and they float up); the host's page shows the rate; a pinned link shows
 * as text, not markup; a late joiner plays the live Space from the beginning; after the show the
 * replay page lists chapters naming the speakers (two ffmpeg speakers with different tones),
 * "next speaker" jumps to the second one, 2× plays faster, "clip the last 30 s" gives a clip
 * whose <audio> duration is what was asked within a page and whose decoded sound is the right
 * speaker's tone, a share link opens the page at its moment; the host's numbers page draws the
 * audience curve. Run: node tests/browser/test_replay.mjs (ctest label "browser"). */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS, Results, Server, launch, rawListener, sleep, toneWav, until } from "./lib.mjs";

const res = new Results();
fs.mkdirSync(ARTIFACTS, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sc-replay-"));
const srv = await new Server().start();
let browser = null;
const held = [];
const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, name + ".png"), fullPage: true });

/* ffmpeg speaks a tone into the Space for `seconds` (Icecast ingest), resolves when done */
function speak(id, token, freq, seconds) {
  return new Promise((resolve) => {
    const p = spawn("ffmpeg", ["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", `sine=f=${freq}:d=${seconds}`,
      "-c:a", "libopus", "-b:a", "32k", "-page_duration", "20000", "-content_type", "audio/ogg", "-f", "ogg",
      `icecast://source:${token}@127.0.0.1:${srv.port}/spaces/${id}/source`], { stdio: "ignore" });
    p.on("exit", resolve);
  });
}

/* In the page: Chromium decodes url (decodeAudioData) and measures two tones (Goertzel). */
const tonesIn = (page, url, f1, f2) => page.evaluate(async ([url, f1, f2]) => {
  const buf = await (await fetch(url)).arrayBuffer();
  const ctx = new OfflineAudioContext(1, 48000, 48000);
  const audio = await ctx.decodeAudioData(buf);
  const x = audio.getChannelData(0);
  const g = (f) => {
    const c = 2 * Math.cos(2 * Math.PI * f / audio.sampleRate);
    let s1 = 0, s2 = 0;
    for (let i = 0; i < x.length; i++) { const s = x[i] + c * s1 - s2; s2 = s1; s1 = s; }
    return Math.sqrt(Math.max(s1 * s1 + s2 * s2 - c * s1 * s2, 0)) / x.length;
  };
  return { a: g(f1), b: g(f2), seconds: audio.duration };
}, [url, f1, f2]);

try {
  browser = await launch(toneWav(tmp, 440, 2));
  const sp = await srv.createSpace({ title: "Turns and cheers" });
  await srv.api("POST", `/api/spaces/${sp.id}/start`, null, sp.host_token);
  const t0 = Date.now(); /* the recording's time 0, give or take a tick */
  const window_ = {};
  const alice = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "alice" }, sp.host_token);
  const bob = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "bob" }, sp.host_token);
  const pages = [];
  for (let i = 0; i < 2; i++) pages.push(await (await browser.newContext()).newPage());
  const host = await (await browser.newContext()).newPage();
  for (const p of pages) await p.goto(`${srv.base}/s/${sp.id}`);
  await host.goto(`${srv.base}/s/${sp.id}#token=${sp.host_token}`);
  /* when each began, in the recording's time */
  const at = {};
  at.alice = (Date.now() - t0) / 1000;
  const talking = speak(sp.id, alice.token, 440, 6).then(() => { at.bob = (Date.now() - t0) / 1000; return speak(sp.id, bob.token, 1000, 6); });

  await res.step("two Chromium listeners react; each sees the other's in the totals; the host sees the rate", async () => {
    await until("the emoji bar", () => pages[0].locator("#reactions button.emoji").first().isVisible());
    for (let i = 0; i < 3; i++) await pages[0].click('#reactions button[aria-label="React 👏"]');
    for (let i = 0; i < 2; i++) await pages[1].click('#reactions button[aria-label="React 🔥"]');
    for (const p of pages) {
      await until("both listeners' reactions in the totals", () =>
        p.evaluate(() => window.__reactions.totals["👏"] === 3 && window.__reactions.totals["🔥"] === 2));
      res.check(await p.evaluate(() => window.__reactions.events) <= 3, "one event a second, not one per reaction");
    }
    await until("floating emoji", () => pages[1].locator(".floats .float").count());
    await until("the host's rate", async () => /Reactions: \d+\.\d\/s now · 5 in all/.test(await host.locator("#reactrate").innerText()));
    await shot(pages[1], "replay-1-reactions");
  });

  await res.step("the pinned link shows as text and a link, never as markup", async () => {
    await srv.api("PUT", `/api/spaces/${sp.id}/pin`, { url: "https://example.com/read?a=1&b=2", text: "<b>Read</b> this" }, sp.host_token);
    await until("the pin on the listener's page", () => pages[0].locator("#pinlink").count());
    res.check(await pages[0].locator("#pinlink").innerText() === "<b>Read</b> this", "pin text altered");
    res.check(await pages[0].locator("#pin b").count() === 0, "the pin's text became markup");
    res.check(await pages[0].locator("#pinlink").getAttribute("href") === "https://example.com/read?a=1&b=2", "pin href");
  });

  await res.step("a late joiner plays the live Space from the beginning", async () => {
    await sleep(4000);
    const late = await (await browser.newContext()).newPage();
    await late.goto(`${srv.base}/s/${sp.id}`);
    await late.click("#frombeginning");
    await until("the replay playing from the start", () => late.evaluate(() => {
      const a = window.__replay && window.__replay.audio;
      return a && !a.paused && a.currentTime > 0.5 && a.currentTime < 4;
    }), 15000);
    await late.close();
  });

  await talking;
  await sleep(1000);
  await srv.api("POST", `/api/spaces/${sp.id}/end`, null, sp.host_token);
  const page = pages[0];

  await res.step("after the show: chapters name the speakers; next speaker; 2×", async () => {
    await until("the replay's chapters", async () => /alice[\s\S]*bob/.test(await page.locator("#chapters").innerText()), 15000);
    const chapters = await page.evaluate(() => window.__replay.chapters);
    const bobStart = chapters.find((c) => c.speaker === "bob").startTime;
    const aliceStart = chapters.find((c) => c.speaker === "alice").startTime;
    /* alice spoke 6 s, then bob: his chapter begins 6 s after hers begins at the latest (hers
     * opens the recording at 0, before she was heard) */
    res.check(bobStart - aliceStart >= 5.5 && bobStart <= at.bob + 1.5 && bobStart >= at.bob - 0.5,
      `bob's chapter starts at ${bobStart}, he began at ${at.bob.toFixed(2)}`);
    window_.bobStart = bobStart;
    await page.evaluate(() => { window.__replay.audio.muted = true; window.__replay.audio.currentTime = 1; return window.__replay.audio.play(); });
    await page.click("#nextspeaker");
    await until("the jump to bob", () => page.evaluate((t) => Math.abs(window.__replay.audio.currentTime - t) < 1, bobStart));
    await page.click('button[data-speed="2"]');
    const t0 = await page.evaluate(() => window.__replay.audio.currentTime);
    await sleep(2000);
    const t1 = await page.evaluate(() => window.__replay.audio.currentTime);
    res.check(await page.evaluate(() => window.__replay.audio.playbackRate) === 2, "not at 2×");
    res.check(t1 - t0 > 3, `2× played ${(t1 - t0).toFixed(2)} s in 2 s`);
    await shot(page, "replay-2-chapters");
  });

  await res.step("clip the last 30 s: Chromium's <audio> has the asked duration within a page, bob's tone", async () => {
    const to = window_.bobStart + 4.5;
    await page.evaluate((t) => { window.__replay.audio.pause(); window.__replay.audio.currentTime = t; }, to);
    await until("the seek", () => page.evaluate((t) => Math.abs(window.__replay.audio.currentTime - t) < 0.2, to));
    await page.click("#clip30");
    const href = await until("the clip link", () => page.locator("#cliplink").getAttribute("href"));
    const m = href.match(/start=([\d.]+)&end=([\d.]+)/);
    const asked = +m[2] - +m[1];
    const dur = await until("the clip's duration in <audio>", () => page.evaluate(() => {
      const a = document.querySelector("#clipaudio");
      return a && isFinite(a.duration) && a.duration > 0 && a.duration;
    }));
    res.check(Math.abs(dur - asked) <= 0.1 + 0.03, `clip of ${asked.toFixed(2)} s lasts ${dur} s in <audio>`);
    /* the last 3.5 s of it are bob's (1000 Hz); the 6 s before, alice's (440 Hz) */
    const bobPart = await tonesIn(page, `/spaces/${sp.id}/clip.ogg?start=${(+m[2] - 3.5).toFixed(3)}&end=${m[2]}`, 1000, 440);
    res.check(bobPart.a > 10 * bobPart.b && bobPart.a > 0.01, "no 1000 Hz in bob's part: " + JSON.stringify(bobPart));
    const alicePart = await tonesIn(page, `/spaces/${sp.id}/clip.ogg?start=${(at.alice + 1.5).toFixed(3)}&end=${(at.alice + 4.5).toFixed(3)}`, 440, 1000);
    res.check(alicePart.a > 10 * alicePart.b, "no 440 Hz in alice's part: " + JSON.stringify(alicePart));
    const share = await page.locator("#clipshare").inputValue();
    res.check(share.endsWith(`/s/${sp.id}?t=${Math.floor(+m[1])}`), "share link " + share);
  });

  await res.step("a shared link opens the replay at its moment", async () => {
    const p = await (await browser.newContext()).newPage();
    await p.goto(`${srv.base}/s/${sp.id}?t=8`);
    await until("the replay at 8 s", () => p.evaluate(() => {
      const a = window.__replay && window.__replay.audio;
      return a && a.currentTime >= 7.9 && a.currentTime < 11;
    }), 15000);
    await p.close();
  });

  await res.step("the host's numbers page draws the audience curve", async () => {
    await host.goto(`${srv.base}/s/${sp.id}/stats#token=${sp.host_token}`);
    await until("the numbers", () => host.evaluate(() => !!window.__stats));
    const j = await host.evaluate(() => window.__stats);
    res.check(j.reactions.total === 5 && j.total_joins >= 0, "numbers: " + JSON.stringify(j.reactions));
    res.check(await host.locator("svg.chart polyline").count() >= 3, "no curve");
    res.check(/≈ \d+/.test(await host.locator("#unique").innerText()), "unique listeners");
    await shot(host, "replay-3-stats");
    const p = await (await browser.newContext()).newPage(); /* without the host's token: nothing */
    await p.goto(`${srv.base}/s/${sp.id}/stats`);
    res.check(/for the host/.test(await p.locator("#app").innerText()), "numbers shown without a token");
    await p.close();
  });
} catch (e) {
  res.failed++;
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  held.forEach((s) => s.destroy());
  if (browser) await browser.close();
  await srv.stop();
  if (res.failed) console.log(srv.log().split("\n").slice(-40).join("\n"));
  console.log(`${res.passed} passed, ${res.failed} failed; screenshots in ${ARTIFACTS}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (!res.failed) fs.rmSync(srv.data, { recursive: true, force: true });
  process.exit(res.failed ? 1 : 0);
}
