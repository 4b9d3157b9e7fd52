/* What the web app's pages say, in Chromium (#20.9): a scheduled Space gives its date and time
 * and says that Play plays the waiting music; the host's name, not "host"; an invited speaker who
 * is not sending audio is shown as not connected; empty level meters look empty; an ended Space
 * gives when it ran and how long, and its audience as it was, not "0 listening"; the home page
 * lists ended Spaces with their replays; the host page's source command publishes as written, over
 * HTTPS too (#20.7). The page runs in en-GB and UTC, so the words are known.
 * Run: node tests/browser/test_webapp_words.mjs (ctest label "browser"). */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ARTIFACTS, Results, Server, freePort, hasTone, launch, rawListener, record, sleep, toneWav, until } from "./lib.mjs";

const SOUND = 0.004; /* as test_webapp.mjs: what a page playing a tone or the lobby reaches */
const WD = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n) => String(n).padStart(2, "0");
/* en-GB in UTC, as the page writes it: "Tue 1 Dec", "14:30" */
const day = (t) => `${WD[t.getUTCDay()]} ${t.getUTCDate()} ${MON[t.getUTCMonth()]}`;
const hm = (t) => `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}`;
const re = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const res = new Results();
fs.mkdirSync(ARTIFACTS, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sc-words-"));
const srv = await new Server().start();
let browser = null, ffmpeg = null, tlsBrowser = null, tlsSrv = null;
const held = [];
const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, "words-" + name + ".png"), fullPage: true });
const text = (page, sel) => page.locator(sel).innerText();

/* Mean brightness (0-255) of an element as drawn: its screenshot, decoded to grey by ffmpeg. */
async function brightness(page, sel) {
  const png = await page.locator(sel).screenshot();
  const p = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-f", "png_pipe", "-i", "-", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
    { input: png, maxBuffer: 1 << 24 });
  if (p.status !== 0 || !p.stdout.length) throw new Error("ffmpeg could not read the screenshot: " + p.stderr);
  let sum = 0;
  for (const v of p.stdout) sum += v;
  return sum / p.stdout.length;
}

try {
  browser = await launch(toneWav(tmp, 440));
  const ctx = await browser.newContext({ locale: "en-GB", timezoneId: "UTC", viewport: { width: 800, height: 900 } });
  const page = await ctx.newPage();
  const startAt = new Date((Math.floor(Date.now() / 1000) + 3 * 3600) * 1000);
  const sp = await srv.createSpace({ title: "Words", host_name: "Ada Lovelace", scheduled_start: startAt / 1000 });

  await res.step("scheduled: the date and time, the host's name, and Play says it plays the waiting music", async () => {
    await page.goto(`${srv.base}/s/${sp.id}`);
    const want = new RegExp(`Starts ${re(day(startAt))} at ${hm(startAt)} — in (2h 59m|3h 0m)`);
    await until("the start's date and time", async () => want.test(await text(page, "#head")));
    res.check(/Hosted by Ada Lovelace/.test(await text(page, "#head")), "not hosted by Ada: " + await text(page, "#head"));
    res.check(/waiting music/.test(await text(page, "#play")), "the Play button does not say what it plays: " + await text(page, "#play"));
    await page.click("#play");
    await until("the words for the lobby", async () => /^Playing the waiting music/.test(await text(page, "#status")));
    await until("the waiting music heard", () => page.evaluate((t) => window.__level > t, SOUND));
    await shot(page, "1-scheduled");
    await srv.api("POST", `/api/spaces/${sp.id}/start`, null, sp.host_token);
    await until("Live now, and plain Playing", async () => /Live now/.test(await text(page, "#head")) && (await text(page, "#status")) === "Playing");
    await page.click("#play"); /* stop */
    await until("the plain Play button", async () => (await text(page, "#play")) === "▶ Play");
  });

  let bob;
  await res.step("speakers: the host by name; one invited who never connected shown as not connected, one sending as connected", async () => {
    bob = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "bob" }, sp.host_token);
    const carol = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "carol" }, sp.host_token);
    ffmpeg = spawn("ffmpeg", ["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i", "sine=f=440:d=60", "-c:a", "libopus",
      "-b:a", "32k", "-page_duration", "20000", "-content_type", "audio/ogg", "-f", "ogg",
      `icecast://source:${carol.token}@127.0.0.1:${srv.port}/spaces/${sp.id}/source`], { stdio: "ignore" });
    const li = (name) => page.locator("#speakers li", { hasText: name });
    await until("carol connected, bob not", async () =>
      (await li("carol").getAttribute("class")).split(" ").indexOf("away") < 0 && !/not connected/.test(await li("carol").innerText()) &&
      /\baway\b/.test(await li("bob").getAttribute("class")) && /not connected/.test(await li("bob").innerText()));
    res.check(/Ada Lovelace \(host\)/.test(await li("Ada Lovelace").innerText()), "the host is not listed by name");
    res.check(!(await page.locator("#speakers li", { hasText: /^host\b/ }).count()), "a speaker called 'host' is listed");
    await shot(page, "2-speakers");
  });

  await res.step("level meters: empty ones look empty (dark), full ones lit", async () => {
    const bobPage = await ctx.newPage();
    try {
      await bobPage.goto(`${srv.base}/s/${sp.id}#token=${bob.token}`);
      await until("bob's microphone card", () => bobPage.locator("#miclevel").count());
      for (const m of ["#miclevel", "#mixlevel"]) {
        const empty = await brightness(bobPage, m);
        await bobPage.evaluate((sel) => { document.querySelector(sel).value = 0.1; }, m);
        const full = await brightness(bobPage, m);
        await bobPage.evaluate((sel) => { document.querySelector(sel).value = 0; }, m);
        console.log(`     ${m}: brightness ${empty.toFixed(0)} empty, ${full.toFixed(0)} full`);
        res.check(empty < 60, `${m} at 0 is drawn bright (${empty.toFixed(0)} of 255): it looks full`);
        res.check(full > empty + 40, `${m} full (${full.toFixed(0)}) looks like empty (${empty.toFixed(0)})`);
      }
      await shot(bobPage, "3-meters");
    } finally {
      await bobPage.close();
    }
  });

  await res.step("ended: when it ran and for how long; the audience it had, not '0 listening'", async () => {
    held.push(await rawListener(srv.port, sp.id), await rawListener(srv.port, sp.id));
    await until("2 listening", async () => /^2 listening/.test(await text(page, "#tallyline")));
    held.splice(0).forEach((s) => s.destroy());
    await sleep(1200); /* a Space that ran a few seconds */
    ffmpeg.kill();
    const d = await srv.api("POST", `/api/spaces/${sp.id}/end`, null, sp.host_token);
    const a = new Date(d.started_at * 1000), b = new Date(d.ended_at * 1000);
    const when = day(a) === day(b) ? `${day(a)}, ${hm(a)}–${hm(b)}` : `${day(a)} at ${hm(a)} – ${day(b)} at ${hm(b)}`;
    const want = `${when} · ${d.ended_at - d.started_at} s`;
    await until("the ended words", async () => (await text(page, "#head")).includes(want));
    await until("the audience it had", async () => /^At most 2 listened at once · [2-9]\d* joins in all\.$/.test(await text(page, "#tallyline")));
    res.check(!/listening/.test(await text(page, "#tallyline")), "still 'listening' once ended");
    res.check(!/not connected/.test(await text(page, "#speakers")), "'not connected' on a Space that is over");
    await shot(page, "4-ended");
  });

  await res.step("home: the upcoming Space with its time, ended ones with their replays", async () => {
    const next = new Date((Math.floor(Date.now() / 1000) + 86400) * 1000);
    await srv.createSpace({ title: "Tomorrow", host_name: "Grace", scheduled_start: next / 1000 });
    await page.goto(srv.base + "/");
    await until("the upcoming Space", async () => new RegExp(`Tomorrow · hosted by Grace\\s+Starts ${re(day(next))} at ${hm(next)}`).test(await text(page, "#list")));
    await until("the replay listed", async () => /Words · hosted by Ada Lovelace/.test(await text(page, "#replays")));
    const link = page.locator("#replays a", { hasText: "Listen to the replay" });
    res.check(await link.count() === 1, "no replay link for the ended Space");
    await shot(page, "5-home");
    await link.click();
    await until("the replay player on its page", () => page.locator("#replay").count());
  });

  await res.step("the command the host page gives a speaker publishes as it is, on the plain and the HTTPS port", async () => {
    /* a server with listen_tls beside listen, a self-signed certificate (ffmpeg does not verify
     * by default; Chromium is told to accept it) */
    const cert = path.join(tmp, "cert.pem"), key = path.join(tmp, "key.pem");
    const o = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert]);
    res.check(o.status === 0, "openssl: " + o.stderr);
    const tlsPort = await freePort();
    tlsSrv = await new Server(["--listen-tls", `127.0.0.1:${tlsPort}`, "--tls-cert", cert, "--tls-key", key]).start();
    tlsBrowser = await launch(toneWav(tmp, 440), ["--ignore-certificate-errors"]);
    const s = await tlsSrv.createSpace({ title: "Command" });
    await tlsSrv.api("POST", `/api/spaces/${s.id}/start`, null, s.host_token);
    const wav = toneWav(tmp, 660, 30);
    for (const [base, tls] of [[tlsSrv.base, false], [`https://127.0.0.1:${tlsPort}`, true]]) {
      const hp = await tlsBrowser.newPage();
      let pub = null;
      try {
        await hp.goto(`${base}/s/${s.id}#token=${s.host_token}`);
        await hp.fill("#invname", tls ? "over-tls" : "plain");
        await hp.click("#inviteform button");
        const cmd = await until("the command with the token", () => hp.locator("#invitecmd").innerText());
        const port = new URL(base).port;
        res.check(cmd.includes(`@127.0.0.1:${port}/spaces/${s.id}/source`) && cmd.includes("-tls 1") === tls,
          `the command for ${base} is wrong: ${cmd}`);
        pub = spawn("sh", ["-c", "exec " + cmd.replace("talk.wav", wav) + " -v error"], { stdio: "ignore" });
        await sleep(2500);
        const a = await record(`${tlsSrv.base}/spaces/${s.id}/live.ogg`, 2);
        res.check(hasTone(a, 660), `the command from ${base}'s page is not heard: ${cmd}`);
      } finally {
        if (pub && pub.exitCode === null) pub.kill();
        await hp.close();
      }
      await sleep(500); /* the first source's last audio played out */
    }
  });
} catch (e) {
  res.failed++;
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  held.forEach((s) => s.destroy());
  if (ffmpeg && ffmpeg.exitCode === null) ffmpeg.kill();
  if (browser) await browser.close();
  if (tlsBrowser) await tlsBrowser.close();
  if (tlsSrv) await tlsSrv.stop();
  await srv.stop();
  if (res.failed) console.log(srv.log().split("\n").slice(-30).join("\n"));
  console.log(`${res.passed} passed, ${res.failed} failed; screenshots in ${ARTIFACTS}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  if (!res.failed) for (const s of [srv, tlsSrv]) if (s) fs.rmSync(s.data, { recursive: true, force: true });
  process.exit(res.failed ? 1 : 0);
}
