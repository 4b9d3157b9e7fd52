/* The web app in Chromium, as its users see it: the host creates a Space on the list page; a
 * listener waits through the countdown and the lobby; the host starts the Space and speaks (a
 * 440 Hz tone from a fake microphone, over WebRTC) and the listener hears it; the tally and speaker list move
 * live; a listener asks to speak, the host invites, the new speaker (1000 Hz, on the WebSocket link) is heard, is
 * silent when muted and is cut off when removed; a server restart is ridden out by the
 * microphone link and the player; a full Space says so and recovers by itself; the end shows the
 * replay. A screenshot of every state goes to $SC_ARTIFACTS (tests/browser/artifacts/).
 * Run: node tests/browser/test_webapp.mjs (ctest label "browser"). */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ADMIN_KEY, ARTIFACTS, Results, Server, hasTone, launch, rawListener, rawStatus, record, sleep, toneWav, until } from "./lib.mjs";

const HOST_HZ = 440, GUEST_HZ = 1000;
const SOUND = 0.004; /* RMS of what a page plays: a tone; silence and Opus noise stay below 0.001 */
const res = new Results();
fs.mkdirSync(ARTIFACTS, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sc-tones-"));
const srv = await new Server().start();
let hostBrowser = null, guestBrowser = null; /* launched inside the try: the server is stopped whatever fails */
const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, name + ".png"), fullPage: true });
const text = (page, sel) => page.locator(sel).innerText();
const held = [];

try {
  hostBrowser = await launch(toneWav(tmp, HOST_HZ));
  guestBrowser = await launch(toneWav(tmp, GUEST_HZ));
  const listenerCtx = await guestBrowser.newContext({ viewport: { width: 390, height: 844 } }); /* a phone */
  const listener = await listenerCtx.newPage();
  const hostCtx = await hostBrowser.newContext();
  const host = await hostCtx.newPage();
  let sp, hostToken;
  /* a live Space with room for one, started now so that its HLS has segments by the time the
   * "full" step needs them (a native HLS player holds back about three) */
  const small = await srv.createSpace({ title: "A small room", max_listeners: 1 });
  await srv.api("POST", `/api/spaces/${small.id}/start`, null, small.host_token);

  await res.step("the page loads under 100 KB before audio", async () => {
    let bytes = 0;
    for (const f of ["/", "/web/app.js", "/web/app.css", "/web/player.js", "/web/speaker.js", "/web/rtc.js", "/web/worklet.js",
      "/web/reactions.js", "/web/pin.js", "/web/replay.js", "/web/host.js", "/web/stats.js"])
      bytes += (await (await fetch(srv.base + f)).arrayBuffer()).byteLength;
    res.check(bytes < 100 * 1024, `the app weighs ${bytes} bytes`);
  });

  await res.step("scheduled: a countdown to the start", async () => {
    const s = await srv.createSpace({ title: "Tomorrow's Space", scheduled_start: Math.floor(Date.now() / 1000) + 3 * 3600 });
    await listener.goto(`${srv.base}/s/${s.id}`);
    await until("a countdown", async () => /Starts .* — in (2h 59m|3h 0m)/.test(await text(listener, "#head")));
    await shot(listener, "1-scheduled");
  });

  await res.step("the host creates a Space from the list page with the admin key", async () => {
    await host.goto(srv.base + "/");
    await host.click("summary");
    await host.fill("#key", ADMIN_KEY);
    await host.fill("#title", "The night itself");
    await host.click("#create button");
    const href = await until("the host link", () => host.locator("#created a").getAttribute("href"));
    const m = href.match(/^\/s\/([A-Za-z0-9_-]+)#token=(.+)$/);
    res.check(m, "not a host link: " + href);
    sp = { id: m[1] }; hostToken = m[2];
    await host.click("#created a");
    await until("host controls", () => host.locator("#start").count());
  });

  await res.step("lobby: a listener finds it in the list, presses Play and hears the waiting audio", async () => {
    await listener.goto(srv.base + "/");
    await until("the Space in the list", async () => /The night itself/.test(await text(listener, "#list")));
    res.check(/Tomorrow's Space/.test(await text(listener, "#list")), "the scheduled Space is not listed");
    await listener.click("text=The night itself");
    await until("the lobby words", async () => /Waiting for the host/.test(await text(listener, "#head")));
    await listener.focus("#play");
    await listener.keyboard.press("Enter"); /* the player works from the keyboard */
    await until("Playing the waiting music", async () => /^Playing the waiting music/.test(await text(listener, "#status")));
    await until("sound in the listener's page", () => listener.evaluate((t) => window.__level > t, SOUND));
    await shot(listener, "2-lobby");
  });

  await res.step("live: the host starts the Space and speaks; the listener hears the tone", async () => {
    await host.click("#start");
    await until("Live now on the listener's page", async () => /Live now/.test(await text(listener, "#head")));
    await host.click("#mic");
    await until("the host on stage", async () => /on stage/.test(await text(host, "#stagestatus")));
    await until("the host's packets going up", () => host.evaluate(() => window.__speaker && window.__speaker.sent > 50));
    const how = await host.evaluate(() => window.__speaker.transport);
    res.check(how === "webrtc", `the host's page went on stage over ${how}, not WebRTC (WHIP/WHEP)`);
    const a = await record(`${srv.base}/spaces/${sp.id}/live.ogg`, 3);
    res.check(hasTone(a, HOST_HZ), "no 440 Hz in live.ogg while the host speaks");
    await until("sound in the listener's page", () => listener.evaluate((t) => window.__level > t, SOUND));
    /* the host's mix-minus is everyone but the host: silence while the host talks alone */
    const own = await host.evaluate(() => [window.__speaker.received, window.__speaker.mixLevel]);
    res.check(own[0] > 50 && own[1] < 0.002, `the host hears itself in its mix-minus: ${own}`);
    await until("the host shown speaking", async () => /host/.test(await text(listener, "#speakers li.speaking")));
    await shot(listener, "3-live");
    await shot(host, "3-live-host");
  });

  await res.step("the tally moves live on the listener's page", async () => {
    /* the page shows what the server counts, within the second the tally event takes */
    const shown = (want) => async () => {
      const n = (await srv.api("GET", `/api/spaces/${sp.id}`)).listeners;
      return +(await text(listener, "#tally")) === n && want(n);
    };
    for (let i = 0; i < 3; i++) held.push(await rawListener(srv.port, sp.id));
    await until("the 3 newcomers counted on the page", shown((n) => n >= 4));
    held.splice(0).forEach((s) => s.destroy());
    await until("the tally back down on the page", shown((n) => n <= 2));
  });

  let guestLink;
  await res.step("a request to speak reaches the host, who invites; the speaker list updates", async () => {
    await listener.fill("#askname", "carol");
    await listener.click("#ask button");
    await until("the request on the host page", async () => /carol/.test(await text(host, "#reqs")));
    await host.click('[data-invite="carol"]');
    guestLink = await until("the invite link", () => host.locator("#invitelink").getAttribute("href"));
    await until("carol in the listener's speaker list", async () => /carol/.test(await text(listener, "#speakers")));
  });

  const guestPage = await guestBrowser.newPage();
  await res.step("the invited speaker joins from the browser and is heard, with the host", async () => {
    await guestPage.goto(guestLink.replace("#", "?link=ws#")); /* carol on the WebSocket link, the host on WebRTC */
    await guestPage.click("#mic");
    await until("carol on stage", async () => /on stage/.test(await text(guestPage, "#stagestatus")));
    await until("carol's packets going up", () => guestPage.evaluate(() => window.__speaker && window.__speaker.sent > 50));
    res.check(await guestPage.evaluate(() => window.__speaker.transport) === "websocket", "?link=ws did not give the WebSocket link");
    const a = await record(`${srv.base}/spaces/${sp.id}/live.ogg`, 3);
    res.check(hasTone(a, GUEST_HZ, [300, 1700]), "no 1000 Hz from carol in live.ogg");
    res.check(hasTone(a, HOST_HZ, [300, 1700]), "no 440 Hz from the host next to carol");
    /* each hears the other through the mix-minus */
    await until("the host hears carol", () => host.evaluate((t) => window.__speaker.mixLevel > t, SOUND));
    await until("carol hears the host", () => guestPage.evaluate((t) => window.__speaker.mixLevel > t, SOUND));
    await shot(guestPage, "4-speaker");
  });

  await res.step("the host mutes carol: she drops out of the mix, the host stays", async () => {
    await host.click('[data-mute="carol"]');
    await until("carol told she is muted", async () => (await text(guestPage, "#mute")) === "Unmute");
    await sleep(300);
    const a = await record(`${srv.base}/spaces/${sp.id}/live.ogg`, 2);
    res.check(!hasTone(a, GUEST_HZ, [300, 1700]), "carol still heard after the host muted her");
    res.check(hasTone(a, HOST_HZ), "the host was lost when carol was muted");
  });

  await res.step("the host removes carol: her page says so and she leaves the speaker list", async () => {
    await host.click('[data-remove="carol"]');
    await until("carol told", async () => /removed you/.test(await text(guestPage, "#stagestatus")));
    await until("carol gone from the list", async () => !/carol/.test(await text(listener, "#speakers")));
    const dead = new URL(guestLink).hash.slice("#token=".length);
    const st = await rawStatus(srv.port, `GET /spaces/${sp.id}/speak?token=${dead} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    res.check(st === 401, `carol's dead token still opens the speaker link: ${st}`);
  });

  await res.step("the server restarts: the host's microphone and the listener's player come back by themselves", async () => {
    /* every word the status line shows, however briefly (the reconnect may take 100 ms) */
    await listener.evaluate(() => {
      const el = document.querySelector("#status");
      window.__said = [];
      new MutationObserver(() => window.__said.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await srv.restart();
    await until("the listener told", () => listener.evaluate(() => window.__said.some((w) => /Connection lost|Connecting/.test(w))), 5000);
    await until("the host back on stage", async () => /on stage/.test(await text(host, "#stagestatus")), 20000);
    await until("the listener playing again", async () => (await text(listener, "#status")) === "Playing", 20000);
    await until("the host heard again", () => listener.evaluate((t) => window.__level > t, SOUND));
  });

  await res.step("full: the page says so, plays the HLS overflow (hls.js, from spacecast) meanwhile, and gets in by itself when room frees", async () => {
    const page = await listenerCtx.newPage();
    const fetched = [];
    page.on("request", (r) => fetched.push(r.url()));
    try {
      /* the server restarted a moment ago: the small Space's HLS playlist is only a few
       * segments long, which is what a Space that has just started has too */
      held.push(await rawListener(srv.port, small.id));
      await page.goto(`${srv.base}/s/${small.id}`);
      await page.click("#play");
      await until("the full message", async () => /The live stream is full — playing via HLS.*Trying the live stream again in \d+ s/.test(await text(page, "#status")));
      await until("hls.js playing in the page", () => page.evaluate(() => !!window.Hls && document.querySelector("#audio").currentTime > 1), 30000);
      res.check(fetched.some((u) => u === `${srv.base}/web/vendor/hls.js`), "hls.js was not loaded from spacecast");
      res.check(fetched.every((u) => u.startsWith(srv.base) || u.startsWith("blob:") || u.startsWith("data:")), "a request left the server: " + fetched.filter((u) => !u.startsWith(srv.base)));
      await shot(page, "5-full");
      held.splice(0).forEach((s) => s.destroy());
      await until("Playing the live stream after the retry", async () => (await text(page, "#status")) === "Playing", 40000);
      res.check(!(await page.evaluate(() => document.querySelector("#audio").getAttribute("src"))), "HLS still playing next to the live stream");
    } finally {
      held.splice(0).forEach((s) => s.destroy());
      await page.close();
    }
  });

  await res.step("full, in a browser without Media Source Extensions (an older iPhone): the page plays the overflow natively", async () => {
    const ctx = await guestBrowser.newContext();
    await ctx.addInitScript(() => { delete window.MediaSource; delete window.ManagedMediaSource; });
    const page = await ctx.newPage();
    const fetched = [];
    page.on("request", (r) => fetched.push(r.url()));
    try {
      /* Chromium's native HLS player needs a live playlist of several segments (it gives up
       * on one a Space has just started: the reason the page prefers hls.js); Safari's does not */
      await until("a full HLS window (6 segments)", async () =>
        ((await (await fetch(`${srv.base}/spaces/${small.id}/hls/live.m3u8`)).text()).match(/#EXTINF/g) || []).length >= 6, 20000);
      held.push(await rawListener(srv.port, small.id));
      await page.goto(`${srv.base}/s/${small.id}`);
      await page.click("#play");
      await until("the HLS words", async () => /playing via HLS/.test(await text(page, "#status")));
      await until("native HLS playing in the page", () => page.evaluate(() => { const a = document.querySelector("#audio"); return /m3u8$/.test(a.src) && a.currentTime > 1; }), 30000);
      res.check(!fetched.some((u) => /hls\.js/.test(u)), "hls.js loaded where the browser plays HLS itself");
    } finally {
      held.splice(0).forEach((s) => s.destroy());
      await ctx.close();
    }
  });

  await res.step("ended: the host ends it, the listener is offered the replay with the host's voice", async () => {
    await host.click("#end");
    await until("the end on the listener's page", async () => /ended/.test(await text(listener, "#status")));
    await until("the replay player", () => listener.locator("#replay").count());
    await shot(listener, "6-ended");
    const a = await record(`${srv.base}/spaces/${sp.id}/replay.ogg`, 600);
    res.check(hasTone(a, HOST_HZ), "no 440 Hz in the replay");
      });
} catch (e) {
  res.failed++;
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  held.forEach((s) => s.destroy());
  if (hostBrowser) await hostBrowser.close();
  if (guestBrowser) await guestBrowser.close();
  await srv.stop();
  if (res.failed) console.log(srv.log().split("\n").slice(-40).join("\n"));
  console.log(`${res.passed} passed, ${res.failed} failed; screenshots in ${ARTIFACTS}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (!res.failed) fs.rmSync(srv.data, { recursive: true, force: true });
  process.exit(res.failed ? 1 : 0);
}
