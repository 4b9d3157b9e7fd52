"""WHIP/WHEP signalling and the ICE-lite media port as a client on the wire sees them
(docs/webrtc.md): an offer gets 201 + Location + ETag + an ICE-lite answer with our candidate;
bad offers (not SDP, no Opus, no fingerprint, no token, a listener's token) are refused with the
right status and counted; OPTIONS answers CORS, PATCH 501, DELETE ends the session. On the UDP
port a STUN binding request with the right MESSAGE-INTEGRITY is answered with our own address
in XOR-MAPPED-ADDRESS; a wrong integrity, an unknown username, DTLS and an RTP flood from
addresses ICE never verified get no answer and are counted, while the API keeps answering; a
speaker's sessions die at once when the host removes them. The media path end to end with our
own WHIP client, `spacecast speak --whip` (ICE, DTLS, SRTP Opus, RTCP): its tone is in live.ogg,
receiver reports come back, and removal ends it at once; under the sanitizer build this is
where the server's DTLS/SRTP path runs. Chromium's side: tests/browser/test_webrtc.mjs."""
import hashlib
import hmac
import os
import re
import shutil
import socket
import struct
import time
import zlib

import subprocess
import tempfile

from sclib import BIN, Results, Server, api, capture, create_space, has_tone, invite, start_space

R = Results()

FP = ":".join("%02X" % b for b in hashlib.sha256(b"not a real certificate").digest())


def offer(ufrag="cliU", pwd="clientpasswordclientpw", audio=True, fingerprint=True, codec="opus/48000/2",
          direction="sendonly"):
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
             "a=extmap-allow-mixed", "a=msid-semantic: WMS stream"]
    kind = "audio" if audio else "video"
    lines += ["m=%s 9 UDP/TLS/RTP/SAVPF 111 0" % kind, "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
              "a=ice-ufrag:" + ufrag, "a=ice-pwd:" + pwd, "a=ice-options:trickle"]
    if fingerprint:
        lines.append("a=fingerprint:sha-256 " + FP)
    lines += ["a=setup:actpass", "a=mid:0", "a=" + direction, "a=rtcp-mux",
              "a=rtpmap:111 " + codec, "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:0 PCMU/8000",
              "a=ssrc:1234 cname:test"]
    return ("\r\n".join(lines) + "\r\n").encode()


def post(srv, sid, token, body, kind="whip", ctype="application/sdp"):
    return api(srv, "POST", "/spaces/%s/%s" % (sid, kind), body, token=token, headers={"Content-Type": ctype})


def metric(srv, name):
    st, raw, _ = api(srv, "GET", "/metrics")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else 0


def rejected(srv, reason):
    return metric(srv, 'spacecast_rtc_rejected_total{reason="%s"}' % reason)


# --- a few STUN bytes (RFC 8489), enough to play the browser's side of ICE ----------------------

def stun_request(username, key, txid, controlling=True):
    attrs = b""

    def attr(t, v):
        return struct.pack(">HH", t, len(v)) + v + b"\0" * (-len(v) % 4)
    attrs += attr(0x0006, username.encode())
    attrs += attr(0x0024, struct.pack(">I", 0x6E7F1EFF))
    attrs += attr(0x802A if controlling else 0x8029, os.urandom(8))
    attrs += attr(0x0025, b"")
    # MESSAGE-INTEGRITY over the message with the length counting it
    head = struct.pack(">HHI", 0x0001, len(attrs) + 24, 0x2112A442) + txid
    mac = hmac.new(key.encode(), head + attrs, hashlib.sha1).digest()
    attrs += attr(0x0008, mac)
    head = struct.pack(">HHI", 0x0001, len(attrs) + 8, 0x2112A442) + txid
    crc = (zlib.crc32(head + attrs) ^ 0x5354554E) & 0xFFFFFFFF
    attrs += attr(0x8028, struct.pack(">I", crc))
    return struct.pack(">HHI", 0x0001, len(attrs), 0x2112A442) + txid + attrs


def stun_mapped(msg, txid):
    """The XOR-MAPPED-ADDRESS of a success response, as (ip, port)."""
    typ, length, cookie = struct.unpack(">HHI", msg[:8])
    assert typ == 0x0101 and cookie == 0x2112A442 and msg[8:20] == txid, msg[:20].hex()
    i = 20
    while i + 4 <= 20 + length:
        t, n = struct.unpack(">HH", msg[i:i + 4])
        v = msg[i + 4:i + 4 + n]
        if t == 0x0020 and v[1] == 1:
            port = struct.unpack(">H", v[2:4])[0] ^ 0x2112
            ip = bytes(a ^ b for a, b in zip(v[4:8], struct.pack(">I", 0x2112A442)))
            return socket.inet_ntoa(ip), port
        i += 4 + n + (-n % 4)
    raise AssertionError("no XOR-MAPPED-ADDRESS")


def answer_fields(sdp):
    text = sdp.decode() if isinstance(sdp, bytes) else sdp
    f = {}
    for line in text.split("\r\n"):
        for key in ("ice-ufrag", "ice-pwd", "fingerprint", "setup", "mid", "rtpmap", "fmtp"):
            if line.startswith("a=%s:" % key):
                f.setdefault(key, line.split(":", 1)[1])
        if line.startswith("a=candidate:"):
            p = line.split()
            f["candidate"] = (p[4], int(p[5]), p[7])
        for flag in ("ice-lite", "recvonly", "sendonly", "rtcp-mux"):
            if line == "a=" + flag:
                f[flag] = True
    return f


def main():
    tmp = tempfile.mkdtemp(prefix="sc-whip-")
    srv = Server().start()
    try:
        sid, host = create_space(srv, "webrtc")
        start_space(srv, sid, host)
        alice = invite(srv, sid, host, "alice")
        session = {}

        def whip_answer():
            st, body, h = post(srv, sid, alice, offer())
            assert st == 201, (st, body)
            assert h["Content-Type"] == "application/sdp", h["Content-Type"]
            loc = h["Location"]
            assert re.fullmatch(r"/spaces/%s/whip/[0-9a-f]{32}" % sid, loc), loc
            assert h["ETag"], "no ETag"
            assert "Location" in h.get("Access-Control-Expose-Headers", ""), "Location not exposed to browsers"
            f = answer_fields(body)
            assert f.get("ice-lite") and f.get("recvonly") and f.get("rtcp-mux"), f
            assert f["setup"] == "passive" and f["mid"] == "0", f
            assert f["rtpmap"] == "111 opus/48000/2" and "useinbandfec=1" in f["fmtp"], f
            assert f["fingerprint"].startswith("sha-256 ") and len(f["fingerprint"]) == 8 + 95, f["fingerprint"]
            assert f["candidate"] == ("127.0.0.1", srv.port, "host"), f["candidate"]
            assert len(f["ice-pwd"]) >= 22, "ice-pwd shorter than RFC 8839 allows"
            session.update(f, location=loc)
        R.case("a WHIP offer gets 201, Location, ETag and an ICE-lite recvonly Opus answer", whip_answer)

        def whep_answer():
            st, body, h = post(srv, sid, alice, offer(direction="recvonly"), kind="whep")
            assert st == 201, (st, body)
            f = answer_fields(body)
            assert f.get("sendonly") and "a=ssrc:" in body.decode(), body
            assert re.fullmatch(r"/spaces/%s/whep/[0-9a-f]{32}" % sid, h["Location"]), h["Location"]
        R.case("a WHEP offer gets a sendonly answer with our SSRC", whep_answer)

        def bad_offers():
            before = rejected(srv, "bad_sdp")
            cases = [
                (post(srv, sid, alice, b"hello"), 400, "not SDP"),
                (post(srv, sid, alice, offer(audio=False)), 400, "video only"),
                (post(srv, sid, alice, offer(codec="PCMU/8000")), 400, "no Opus"),
                (post(srv, sid, alice, offer(fingerprint=False)), 400, "no fingerprint"),
                (post(srv, sid, alice, offer(direction="recvonly")), 400, "a WHIP offer that does not send"),
            ]
            for (st, body, _), want, what in cases:
                assert st == want, (what, st, body)
                assert body["error"]["code"] == "bad_sdp", (what, body)
            assert rejected(srv, "bad_sdp") >= before + len(cases), "bad offers not counted"
            st, body, _ = post(srv, sid, alice, offer(), ctype="application/json")
            assert st == 415, (st, body)
            st, body, _ = post(srv, sid, None, offer())
            assert st == 401, (st, body)
            st, body, _ = post(srv, sid, "not-a-token", offer())
            assert st == 401, (st, body)
            st, body, _ = post(srv, sid, alice, b"v=0\r\n" + b"a=x:" + b"y" * 20000 + b"\r\n")
            assert st in (400, 413), (st, body)
        R.case("bad offers: not SDP, no Opus, no fingerprint, wrong direction, no token → refused and counted",
               bad_offers)

        def cors_patch_delete():
            st, _, h = api(srv, "OPTIONS", "/spaces/%s/whip" % sid)
            assert st == 204, st
            assert "POST" in h["Access-Control-Allow-Methods"] and "Authorization" in h["Access-Control-Allow-Headers"]
            st, body, _ = api(srv, "PATCH", session["location"], b"a=ice-ufrag:x\r\n", token=alice,
                              headers={"Content-Type": "application/trickle-ice-sdpfrag"})
            assert st == 501, (st, body)
        R.case("OPTIONS answers CORS; PATCH (trickle, ICE restart) is 501", cors_patch_delete)

        def ice_lite():
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            u.settimeout(1.0)
            dest = ("127.0.0.1", srv.port)
            user = "%s:cliU" % session["ice-ufrag"]
            # a wrong password: silence, and a count
            before = rejected(srv, "stun_integrity")
            u.sendto(stun_request(user, "wrong-password-wrong-pw", os.urandom(12)), dest)
            try:
                u.recvfrom(2048)
                raise AssertionError("a request with a wrong MESSAGE-INTEGRITY was answered")
            except socket.timeout:
                pass
            assert rejected(srv, "stun_integrity") == before + 1
            # an unknown username: silence (no reflection), a count
            before = rejected(srv, "stun_unknown_user")
            u.sendto(stun_request("nobody:cliU", session["ice-pwd"], os.urandom(12)), dest)
            try:
                u.recvfrom(2048)
                raise AssertionError("a request for an unknown username was answered")
            except socket.timeout:
                pass
            assert rejected(srv, "stun_unknown_user") == before + 1
            # the right one: a success naming our own address
            txid = os.urandom(12)
            u.sendto(stun_request(user, session["ice-pwd"], txid), dest)
            msg, _ = u.recvfrom(2048)
            assert stun_mapped(msg, txid) == u.getsockname(), (stun_mapped(msg, txid), u.getsockname())
            # a controlled agent talking to an ICE-lite server is a role conflict (487)
            txid = os.urandom(12)
            u.sendto(stun_request(user, session["ice-pwd"], txid, controlling=False), dest)
            msg, _ = u.recvfrom(2048)
            assert struct.unpack(">H", msg[:2])[0] == 0x0111 and b"\x00\x00\x04\x57" in msg, msg.hex()
            # RTP from this verified address before DTLS: refused
            before = rejected(srv, "rtp_before_dtls")
            u.sendto(bytes([0x80, 111]) + os.urandom(30), dest)
            time.sleep(0.2)
            assert rejected(srv, "rtp_before_dtls") == before + 1
            u.close()
        R.case("ICE-lite: the right integrity gets our XOR-MAPPED-ADDRESS; wrong ones get silence and a count",
               ice_lite)

        def floods():
            f = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            f.bind(("127.0.0.2", 0))
            dest = ("127.0.0.1", srv.port)
            rtp0, dtls0 = rejected(srv, "rtp_unknown_source"), rejected(srv, "dtls_unknown_source")
            junk0 = rejected(srv, "unknown_protocol")
            hello = bytes([22, 0xFE, 0xFD]) + b"\0" * 10 + os.urandom(40)  # a DTLS 1.2 handshake record
            t0 = time.time()
            sent = 0
            while sent < 5000 and time.time() - t0 < 5:
                f.sendto(bytes([0x80, 111]) + struct.pack(">HII", sent & 0xFFFF, sent * 960, 99) + os.urandom(60),
                         dest)
                sent += 1
                if sent % 50 == 0:
                    time.sleep(0.001)  # a flood the socket buffer can take: we count what arrives
            f.sendto(hello, dest)
            f.sendto(b"\xff" * 40, dest)
            st, j, _ = api(srv, "GET", "/api/spaces/" + sid, timeout=2)
            assert st == 200, st
            time.sleep(0.5)
            got = rejected(srv, "rtp_unknown_source") - rtp0
            assert got >= sent * 0.9, "counted %d of %d flood packets" % (got, sent)
            assert rejected(srv, "dtls_unknown_source") == dtls0 + 1
            assert rejected(srv, "unknown_protocol") == junk0 + 1
            f.close()
        R.case("an RTP flood, DTLS and junk from unverified addresses: dropped and counted, the API answers",
               floods)

        def delete_ends():
            loc = session["location"]
            bob = invite(srv, sid, host, "bob")
            st, _, _ = api(srv, "DELETE", loc, token=bob)
            assert st == 404, "another speaker's token ended alice's session: %s" % st
            st, _, _ = api(srv, "DELETE", loc, token=alice)
            assert st == 200, st
            time.sleep(0.2)
            st, _, _ = api(srv, "DELETE", loc, token=alice)
            assert st == 404, st
        R.case("DELETE on the Location ends the session (only with the same speaker's token)", delete_ends)

        def removal_kills():
            carol = invite(srv, sid, host, "carol")
            st, _, h = post(srv, sid, carol, offer(ufrag="carU"))
            assert st == 201, st
            before = metric(srv, "spacecast_rtc_sessions")
            st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/carol" % sid, token=host)
            assert st in (200, 204), st
            deadline = time.time() + 2
            while time.time() < deadline and metric(srv, "spacecast_rtc_sessions") != before - 1:
                time.sleep(0.05)
            assert metric(srv, "spacecast_rtc_sessions") == before - 1, "carol's session outlived her removal"
            assert "why=removed" in srv.read_log(), "no removal in the log"
            st, _, _ = post(srv, sid, carol, offer(ufrag="carV"))
            assert st == 401, "a removed speaker's token still opens WHIP: %s" % st
        R.case("a removed speaker's session dies at once and the token opens no new one", removal_kills)

        wav = os.path.join(tmp, "tone.wav")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=4",
                        "-ac", "1", "-ar", "48000", wav], check=True)

        def speak_whip(token, *extra):
            return subprocess.Popen([BIN, "speak", "%s/spaces/%s" % (srv.base, sid), "--token", token, "--whip",
                                     *extra, wav], stderr=subprocess.PIPE, text=True)

        def publish_over_whip():
            dave = invite(srv, sid, host, "dave")
            p = speak_whip(dave, "--duration", "6", "--loop")
            try:
                time.sleep(1.5)
                a, err = capture("%s/spaces/%s/live.ogg" % (srv.base, sid), 3)
                assert has_tone(a, 440), "dave's WHIP tone is not in live.ogg: " + err
                _, out = p.communicate(timeout=20)
            finally:
                if p.poll() is None:
                    p.kill()
            assert p.returncode == 0, out
            m = re.search(r"packets=(\d+) .*receiver_reports=(\d+)", out)
            assert m and int(m.group(1)) >= 290, out
            assert int(m.group(2)) >= 4, "the server sent %s receiver reports in 6 s" % m.group(2)
            deadline = time.time() + 2  # the media thread closes a DELETEd session at its next tick
            while time.time() < deadline and not re.search(r"rtc_closed kind=whip .*speaker=dave .*why=deleted",
                                                          srv.read_log()):
                time.sleep(0.05)
            assert re.search(r"rtc_closed kind=whip .*speaker=dave .*why=deleted", srv.read_log()), "no DELETE"
        R.case("spacecast speak --whip: ICE, DTLS, SRTP Opus in, the tone in live.ogg, receiver reports back",
               publish_over_whip)

        def removal_ends_publisher():
            erin = invite(srv, sid, host, "erin")
            p = speak_whip(erin, "--loop")
            try:
                deadline = time.time() + 5
                while time.time() < deadline and not re.search(r"rtc_connected kind=whip .*speaker=erin",
                                                              srv.read_log()):
                    time.sleep(0.05)
                t0 = time.time()
                st, _, _ = api(srv, "DELETE", "/api/spaces/%s/speakers/erin" % sid, token=host)
                assert st in (200, 204), st
                _, out = p.communicate(timeout=5)  # the server's close_notify ends it
                took = time.time() - t0
            finally:
                if p.poll() is None:
                    p.kill()
            assert p.returncode == 1 and "session ended" in out, out
            assert took < 2, "the removed publisher kept going for %.1f s" % took
        R.case("a removed speaker's WHIP publisher is cut off at once (DTLS close_notify)", removal_ends_publisher)

        def full():
            small = Server("--rtc-max-sessions", "1").start()
            try:
                s2, h2 = create_space(small, "small")
                start_space(small, s2, h2)
                st, _, _ = post(small, s2, h2, offer())
                assert st == 201, st
                other = invite(small, s2, h2, "other")
                st, body, h = post(small, s2, other, offer(ufrag="two"))
                assert st == 503 and h["Retry-After"], (st, body)
                assert rejected(small, "full") == 1
            finally:
                small.cleanup()
            off = Server("--rtc-listen", "off").start()
            try:
                s3, h3 = create_space(off, "off")
                st, body, _ = post(off, s3, h3, offer())
                assert st == 503 and body["error"]["code"] == "webrtc_off", (st, body)
            finally:
                off.cleanup()
        R.case("no room: 503 + Retry-After; WebRTC off: 503 webrtc_off (the page then uses the WebSocket link)",
               full)

        def fair_shares():
            # 12 sessions, 2 Spaces: a share is 6; the quiet Space (one session) keeps 4 free, so
            # the crowded one stops at 12 - 4 = 8 and the quiet one's speakers still get theirs (#16)
            fs = Server("--rtc-max-sessions", "12", "--fair-share-reserve", "4").start()
            try:
                quiet, qh = create_space(fs, "quiet")
                start_space(fs, quiet, qh)
                assert post(fs, quiet, qh, offer(ufrag="q0"))[0] == 201
                crowded, ch = create_space(fs, "crowded")
                start_space(fs, crowded, ch)
                tokens = [ch] + [invite(fs, crowded, ch, "c%d" % i) for i in range(6)]
                got, refusal = 0, None
                for i, tok in enumerate(tokens):
                    for kind, d in (("whip", "sendonly"), ("whep", "recvonly")):
                        st, body, h = post(fs, crowded, tok, offer(ufrag="c%d%s" % (i, kind), direction=d), kind=kind)
                        if st == 201:
                            got += 1
                        else:
                            refusal = (st, body, h)
                assert got == 7, "the crowded Space took %d of 12 sessions (want 7: below its share of 6, then 8 in all)" % got
                st, body, h = refusal
                assert st == 503 and h["Retry-After"] and "share" in str(body), (st, body)
                for i in range(4):
                    tok = invite(fs, quiet, qh, "q%d" % i)
                    st, body, _ = post(fs, quiet, tok, offer(ufrag="q%d" % (i + 1)))
                    assert st == 201, ("the quiet Space's speaker was refused", i, st, body)
            finally:
                fs.cleanup()
        R.case("fair shares: a Space crowding the WebRTC sessions leaves a quiet Space its reserve", fair_shares)

        def one_token_two_sessions():
            # a speaker's new offer replaces its session of that kind: 260 WHEP offers with one
            # token hold one session, and a speaker of another Space still gets in (#14)
            frank = invite(srv, sid, host, "frank")
            codes = [post(srv, sid, frank, offer(ufrag="f%d" % i, direction="recvonly"), kind="whep")[0]
                     for i in range(260)]
            assert codes == [201] * 260, "%d of 260 offers refused" % sum(c != 201 for c in codes)
            s4, h4 = create_space(srv, "elsewhere")
            start_space(srv, s4, h4)
            gina = invite(srv, s4, h4, "gina")
            st, body, _ = post(srv, s4, gina, offer(ufrag="gina"))
            assert st == 201, ("another Space's speaker was refused", st, body)
            deadline = time.time() + 2  # the replaced ones close at the media thread's next tick
            while time.time() < deadline and metric(srv, "spacecast_rtc_sessions") > 10:
                time.sleep(0.05)
            live = metric(srv, "spacecast_rtc_sessions")
            assert live <= 10, "%d sessions open after one token's 260 offers" % live
        R.case("one speaker token holds one session of each kind; a flood of offers takes nobody's room",
               one_token_two_sessions)

        def peer_stays_after_dtls():
            # the token holder knows the ICE password: a nomination with a forged source after
            # DTLS must not aim our media (here: the RTCP receiver reports) at that address (#14)
            key, crt = os.path.join(tmp, "dtls.key"), os.path.join(tmp, "dtls.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=peer"],
                           check=True, capture_output=True)
            der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], capture_output=True,
                                 check=True).stdout
            fp = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
            hank = invite(srv, sid, host, "hank")
            st, ans, _ = post(srv, sid, hank, offer(ufrag="hkU").decode().replace(FP, fp).encode())
            assert st == 201, st
            f = answer_fields(ans)
            dest, user = f["candidate"][:2], f["ice-ufrag"] + ":hkU"
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind(("127.0.0.1", 0))
            port_a = a.getsockname()[1]
            a.settimeout(2)
            a.sendto(stun_request(user, f["ice-pwd"], os.urandom(12)), dest)
            a.recv(2000)
            a.close()  # the DTLS client takes over this address and port
            dtls = subprocess.Popen(["openssl", "s_client", "-dtls1_2", "-bind", "127.0.0.1:%d" % port_a, "-connect",
                                     "%s:%d" % dest, "-cert", crt, "-key", key, "-use_srtp", "SRTP_AES128_CM_SHA1_80",
                                     "-quiet"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 5
                while time.time() < deadline and not re.search(r"rtc_connected kind=whip .*speaker=hank",
                                                              srv.read_log()):
                    time.sleep(0.05)
                assert re.search(r"rtc_connected kind=whip .*speaker=hank", srv.read_log()), "no DTLS"
                b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                b.bind(("127.0.0.2", 0))  # "the victim": a nomination from there
                b.sendto(stun_request(user, f["ice-pwd"], os.urandom(12)), dest)
                b.settimeout(0.2)
                media, end = 0, time.time() + 2.5  # receiver reports go out every second
                while time.time() < end:
                    try:
                        media += 128 <= b.recv(2000)[0] <= 191
                    except socket.timeout:
                        pass
                b.close()
                assert media == 0, "%d RTP/RTCP packets went to a nominated address after DTLS" % media
                assert "rtc_nomination_ignored" in srv.read_log()
            finally:
                dtls.kill()
                dtls.wait()
        R.case("once DTLS began, a nomination from another address does not move the media peer",
               peer_stays_after_dtls)
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    R.finish()


if __name__ == "__main__":
    main()
