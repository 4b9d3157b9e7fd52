/* HTTPS in Chromium (docs/tls.md), over a CA made here with the openssl CLI: the page on a
 * non-localhost https origin (spaces.test, mapped to 127.0.0.1) is a secure context and plays
 * live.ogg over TLS; the microphone on that origin goes on stage over WHIP (https signalling)
 * and ffmpeg, verifying the certificate, hears it in live.ogg; with WebRTC off the same page
 * speaks over wss:// and is heard. Chromium trusts the test key only through
 * --ignore-certificate-errors-spki-list. Then a Chromium that trusts the test CA (in an NSS
 * store of its own, no SPKI list) loads the good certificate and refuses an expired one
 * (ERR_CERT_DATE_INVALID) and a wrong-named one (ERR_CERT_COMMON_NAME_INVALID).
 * Run: node tests/browser/test_tls.mjs (ctest label "browser"). */
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { ADMIN_KEY, BIN, Results, SOURCE_DIR, freePort, hasTone, launch, record, sleep, toneWav, until } from "./lib.mjs";

const HZ = 440, OTHER_HZ = 1000, SOUND = 0.004;
const res = new Results();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sc-tls-"));
const servers = [], procs = [], browsers = [];

/* --- a CA of our own (openssl CLI) ------------------------------------------------------------- */

function openssl(...args) {
  const p = spawnSync("openssl", args, { cwd: tmp });
  if (p.status !== 0) throw new Error(`openssl ${args.slice(0, 2).join(" ")}: ${p.stderr}`);
  return p.stdout;
}
const CA = path.join(tmp, "ca.pem"), CA_KEY = path.join(tmp, "ca.key");
fs.writeFileSync(path.join(tmp, "index.txt"), "");
fs.writeFileSync(path.join(tmp, "serial"), "2000\n");
fs.writeFileSync(path.join(tmp, "ca.cnf"), `[ca]\ndefault_ca = t\n[t]\ndir = ${tmp}\ndatabase = $dir/index.txt\n` +
  "serial = $dir/serial\nnew_certs_dir = $dir\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n" +
  "unique_subject = no\n[any]\ncommonName = supplied\n[leaf]\nbasicConstraints = critical,CA:FALSE\n" +
  "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n");
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", CA_KEY,
  "-out", CA, "-days", "30", "-subj", "/CN=spacecast browser test CA",
  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");

/** A leaf (ECDSA P-256, its own key) for names, signed by the CA: [chain, key, SPKI hash]. */
function issue(name, names, when = ["-days", "30"]) {
  const key = path.join(tmp, name + ".key"), csr = path.join(tmp, name + ".csr");
  const crt = path.join(tmp, name + ".crt"), chain = path.join(tmp, name + ".pem");
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
    "-out", csr, "-subj", "/CN=" + names[0].split(":")[1], "-addext", "subjectAltName=" + names.join(","));
  openssl("ca", "-batch", "-notext", "-config", path.join(tmp, "ca.cnf"), "-extensions", "leaf", "-cert", CA,
    "-keyfile", CA_KEY, "-in", csr, "-out", crt, ...when);
  fs.writeFileSync(chain, fs.readFileSync(crt, "utf8") + fs.readFileSync(CA, "utf8"));
  const spki = crypto.createHash("sha256").update(openssl("pkey", "-in", key, "-pubout", "-outform", "DER")).digest("base64");
  return [chain, key, spki];
}
const GOOD = issue("good", ["DNS:spaces.test", "DNS:localhost", "IP:127.0.0.1"]);
const EXPIRED = issue("expired", ["DNS:spaces.test"], ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"]);
const WRONG = issue("wrong", ["DNS:elsewhere.test"]);
const FFMPEG_TLS = ["-tls_verify", "1", "-ca_file", CA];

/* --- a spacecast whose listen port is HTTPS ---------------------------------------------------- */

class TlsServer {
  constructor(cert, flags = []) { this.cert = cert; this.flags = flags; }
  async start() {
    this.port = await freePort();
    this.base = `https://127.0.0.1:${this.port}`;     /* what our clients and ffmpeg use */
    this.origin = `https://spaces.test:${this.port}`; /* what the browser uses: not localhost */
    this.data = fs.mkdtempSync(path.join(os.tmpdir(), "sc-tls-srv-"));
    const log = fs.openSync(path.join(this.data, "server.log"), "a");
    this.proc = spawn(BIN, ["serve", "--listen", `127.0.0.1:${this.port}`, "--data", this.data, "--admin-key", ADMIN_KEY,
      "--web-root", path.join(SOURCE_DIR, "web"), "--tls-cert", this.cert[0], "--tls-key", this.cert[1], ...this.flags],
      { stdio: ["ignore", log, log] });
    for (let i = 0; i < 100; i++) {
      try { if ((await this.request("GET", "/healthz", null, null, false)).status === 200) return this; } catch (e) { /* not yet */ }
      await sleep(100);
    }
    throw new Error("server did not start: " + this.log());
  }
  log() { try { return fs.readFileSync(path.join(this.data, "server.log"), "utf8"); } catch (e) { return ""; } }
  request(method, p, body, token, verify = true) {
    return new Promise((resolve, reject) => {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const data = body ? JSON.stringify(body) : null;
      if (data) Object.assign(headers, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
      const req = https.request({ host: "127.0.0.1", port: this.port, path: p, method, headers, ca: fs.readFileSync(CA),
        rejectUnauthorized: verify }, (r) => {
        let text = "";
        r.on("data", (d) => (text += d));
        r.on("end", () => resolve({ status: r.statusCode, text }));
      });
      req.on("error", reject);
      req.setTimeout(5000, () => req.destroy(new Error("timeout")));
      req.end(data);
    });
  }
  async api(method, p, body, token) {
    const r = await this.request(method, p, body, token);
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.text}`);
    return r.text ? JSON.parse(r.text) : null;
  }
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await Promise.race([done, sleep(10000)]);
    if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
  }
}

async function liveSpace(srv, title) {
  const sp = await srv.api("POST", "/api/spaces", { title }, ADMIN_KEY);
  await srv.api("POST", `/api/spaces/${sp.id}/start`, null, sp.host_token);
  return sp;
}

async function stagePage(browser, srv, sp, token) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${srv.origin}/s/${sp.id}#token=${encodeURIComponent(token)}`);
  await until("the stage button", () => page.locator("#mic").count());
  await page.click("#mic");
  await until("on stage", async () => /on stage/.test(await page.locator("#stagestatus").innerText()), 20000);
  await until("packets going up", () => page.evaluate(() => window.__speaker && window.__speaker.sent > 25));
  return page;
}

try {
  const mic = toneWav(tmp, HZ, 60);
  const srv = await new TlsServer(GOOD).start();
  servers.push(srv);
  const browser = await launch(mic, [`--ignore-certificate-errors-spki-list=${GOOD[2]}`,
    "--host-resolver-rules=MAP spaces.test 127.0.0.1"]);
  browsers.push(browser);
  const sp = await liveSpace(srv, "Over HTTPS");

  await res.step("a listener's page on https://spaces.test (a secure context, not localhost) plays live.ogg", async () => {
    const bob = await srv.api("POST", `/api/spaces/${sp.id}/speakers`, { name: "bob", role: "speaker" }, sp.host_token);
    const p = spawn(BIN, ["speak", `${srv.base}/spaces/${sp.id}`, "--token", bob.token, "--ca-file", CA, "--quiet",
      "--loop", toneWav(tmp, OTHER_HZ, 10)], { stdio: "ignore" });
    procs.push(p);
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${srv.origin}/s/${sp.id}`);
    const where = await page.evaluate(() => [location.protocol, location.hostname, window.isSecureContext]);
    res.check(where[0] === "https:" && where[1] === "spaces.test" && where[2] === true, `not a secure origin: ${where}`);
    await page.click("#play");
    await until("Playing", async () => (await page.locator("#status").innerText()) === "Playing");
    await until("sound in the page", () => page.evaluate((t) => window.__level > t, SOUND));
    await page.context().close();
  });

  await res.step("the microphone on that origin: on stage over WHIP, heard in live.ogg (ffmpeg verifying the certificate)", async () => {
    const page = await stagePage(browser, srv, sp, sp.host_token);
    const t = await page.evaluate(() => window.__speaker.transport);
    res.check(t === "webrtc", `the page went on stage over ${t}`);
    const a = await record(`${srv.base}/spaces/${sp.id}/live.ogg`, 3, FFMPEG_TLS);
    res.check(hasTone(a, HZ, [300, 1700]), "no 440 Hz from the https page's microphone in live.ogg");
    await page.context().close();
  });

  await res.step("WebRTC off: the same page speaks over wss:// and is heard", async () => {
    const off = await new TlsServer(GOOD, ["--rtc-listen", "off"]).start();
    servers.push(off);
    const s3 = await liveSpace(off, "wss only");
    const page = await stagePage(browser, off, s3, s3.host_token);
    const t = await page.evaluate(() => window.__speaker.transport);
    res.check(t === "websocket", `not on the WebSocket link: ${t}`);
    const a = await record(`${off.base}/spaces/${s3.id}/live.ogg`, 3, FFMPEG_TLS);
    res.check(hasTone(a, HZ), "the wss speaker is not heard");
    await page.context().close();
  });

  await res.step("a Chromium trusting the test CA loads the good certificate, refuses an expired and a wrong-named one", async () => {
    const home = path.join(tmp, "home"), db = path.join(home, ".pki", "nssdb");
    fs.mkdirSync(db, { recursive: true });
    for (const args of [["-N", "-d", "sql:" + db, "--empty-password"], ["-A", "-d", "sql:" + db, "-n", "test CA", "-t", "C,,", "-i", CA]]) {
      const p = spawnSync("certutil", args);
      res.check(p.status === 0, `certutil ${args[0]}: ${p.error || p.stderr} (libnss3-tools, scripts/deps.sh)`);
    }
    const strict = await launch(mic, ["--host-resolver-rules=MAP spaces.test 127.0.0.1"], { ...process.env, HOME: home });
    browsers.push(strict);
    const page = await strict.newPage();
    const ok = await page.goto(`${srv.origin}/healthz`);
    res.check(ok.status() === 200, "the good certificate was not accepted through the CA");
    for (const [cert, want] of [[EXPIRED, "ERR_CERT_DATE_INVALID"], [WRONG, "ERR_CERT_COMMON_NAME_INVALID"]]) {
      const bad = await new TlsServer(cert).start();
      servers.push(bad);
      let err = "";
      try { await page.goto(`${bad.origin}/healthz`); } catch (e) { err = e.message; }
      res.check(err.includes(want), `${want} expected, got: ${err.split("\n")[0] || "the page loaded"}`);
    }
  });
} catch (e) {
  res.failed++;
  console.log("FAIL setup: " + (e.stack || e));
} finally {
  procs.forEach((p) => p.exitCode === null && p.kill("SIGKILL"));
  for (const b of browsers) await b.close();
  for (const s of servers) {
    await s.stop();
    if (res.failed) console.log(s.log().split("\n").filter((l) => /tls|rtc|error|warn/.test(l)).slice(0, 40).join("\n"));
    fs.rmSync(s.data, { recursive: true, force: true });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`${res.passed} passed, ${res.failed} failed`);
process.exit(res.failed ? 1 : 0);
