/* test_sdp.c — SDP for WHIP/WHEP audio: offers as Chromium and Firefox write them (audio
 * only from a sendonly transceiver; audio and video from sendrecv ones; LF line endings and
 * session-level attributes), the answer we write for them read back by our own parser, the
 * offers we must refuse (no fingerprint, no Opus, too many m-sections, an overlong line,
 * fields that would not fit), and our client's offer read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "spacecast/sdp.h"

#define FP_HEX "12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD"

/* Chromium 12x, a WHIP client: addTransceiver('audio', {direction: 'sendonly'}), gathered. */
static const char chromium_audio[] =
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS 5d3f4c9e-2b1a-4c8d-9e0f-1a2b3c4d5e6f\r\n"
    "m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 192.168.1.10\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:2999745851 1 tcp 1518280447 192.168.1.10 9 typ host tcptype active generation 0 network-id 1\r\n"
    "a=candidate:1467250027 1 udp 2122260223 192.168.1.10 54321 typ host generation 0 network-id 1\r\n"
    "a=candidate:3623372289 1 udp 1686052607 198.51.100.4 54321 typ srflx raddr 192.168.1.10 rport 54321 "
    "generation 0 network-id 1\r\n"
    "a=ice-ufrag:Hh3R\r\n"
    "a=ice-pwd:mKk4tvc5rPq3FZNfDM0VI6qM\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_HEX "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=sendonly\r\n"
    "a=msid:5d3f4c9e-2b1a-4c8d-9e0f-1a2b3c4d5e6f 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:3735928559 cname:yXMrdD7aNp2c8V1s\r\n"
    "a=ssrc:3735928559 msid:5d3f4c9e-2b1a-4c8d-9e0f-1a2b3c4d5e6f 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\r\n";

/* Chromium with a microphone and a camera on sendrecv transceivers (not gathered yet). */
static const char chromium_av[] =
    "v=0\r\n"
    "o=- 8240617046374429172 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS stream0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:9u+/\r\n"
    "a=ice-pwd:Zk1bV0cH8n2qJxR6yTtW4mPa\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_HEX "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=sendrecv\r\n"
    "a=msid:stream0 mic0\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:1001 cname:yXMrdD7aNp2c8V1s\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:9u+/\r\n"
    "a=ice-pwd:Zk1bV0cH8n2qJxR6yTtW4mPa\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " FP_HEX "\r\n"
    "a=setup:actpass\r\n"
    "a=mid:1\r\n"
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
    "a=sendrecv\r\n"
    "a=msid:stream0 cam0\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\n"
    "a=rtpmap:45 AV1/90000\r\n"
    "a=rtpmap:46 rtx/90000\r\n"
    "a=fmtp:46 apt=45\r\n"
    "a=ssrc-group:FID 2001 2002\r\n"
    "a=ssrc:2001 cname:yXMrdD7aNp2c8V1s\r\n"
    "a=ssrc:2002 cname:yXMrdD7aNp2c8V1s\r\n";

/* Firefox: LF endings, the fingerprint at session level, fmtp before rtpmap, OPUS in capitals
 * here to check the codec name is case-insensitive. */
static const char firefox_audio[] =
    "v=0\n"
    "o=mozilla...THIS_IS_SDPARTA-99.0 6418421546113460612 0 IN IP4 0.0.0.0\n"
    "s=-\n"
    "t=0 0\n"
    "a=fingerprint:sha-256 " FP_HEX "\n"
    "a=group:BUNDLE 0\n"
    "a=ice-options:trickle\n"
    "a=msid-semantic:WMS *\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101\n"
    "c=IN IP4 0.0.0.0\n"
    "a=sendonly\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
    "a=fmtp:109 maxplaybackrate=48000;stereo=1; useinbandfec=1\n"
    "a=fmtp:101 0-15\n"
    "a=ice-pwd:4ab1c2d3e4f5a6b7c8d9e0f1a2b3c4d5\n"
    "a=ice-ufrag:8f7e6d5c\n"
    "a=mid:0\n"
    "a=msid:{a1b2c3d4-0000-4000-8000-000000000001} {a1b2c3d4-0000-4000-8000-000000000002}\n"
    "a=rtcp-mux\n"
    "a=rtpmap:109 OPUS/48000/2\n"
    "a=rtpmap:9 G722/8000/1\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=setup:actpass\n"
    "a=ssrc:2882400001 cname:{a1b2c3d4-0000-4000-8000-000000000003}\n";

static const sc_sdp_local_t server = {
    .ice_ufrag = "srvU",
    .ice_pwd = "serverpassword0123456789",
    .fingerprint = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
    .setup = "passive",
    .cand_ip = "192.0.2.10",
    .cand_port = 40000,
    .dir = SC_SDP_RECVONLY,
    .ssrc = 0,
    .session_id = 1234567890123ull,
    .ice_lite = 1,
};

static int parse(const char *sdp, sc_sdp_t *out, const char **why)
{
    return sc_sdp_parse(sdp, strlen(sdp), out, why);
}

/* The SDP without the lines that start with prefix. */
static const char *without(const char *sdp, const char *prefix)
{
    static char buf[SC_SDP_MAX_BYTES];
    size_t len = 0, plen = strlen(prefix);
    for (const char *p = sdp; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (strncmp(p, prefix, plen) != 0) {
            memcpy(buf + len, p, n);
            len += n;
        }
        p += n;
    }
    buf[len] = '\0';
    return buf;
}

/* The SDP with every from replaced by to. */
static const char *replaced(const char *sdp, const char *from, const char *to)
{
    static char buf[SC_SDP_MAX_BYTES * 2];
    size_t len = 0, flen = strlen(from), tlen = strlen(to);
    for (const char *p = sdp; *p;) {
        if (strncmp(p, from, flen) == 0) {
            memcpy(buf + len, to, tlen);
            len += tlen;
            p += flen;
        } else {
            buf[len++] = *p++;
        }
    }
    buf[len] = '\0';
    return buf;
}

/* --- offers ------------------------------------------------------------------------------ */

static void test_parse_chromium_audio(void **state)
{
    (void)state;
    sc_sdp_t s;
    const char *why = NULL;
    assert_int_equal(parse(chromium_audio, &s, &why), 0);
    assert_null(why);
    assert_string_equal(s.ice_ufrag, "Hh3R");
    assert_string_equal(s.ice_pwd, "mKk4tvc5rPq3FZNfDM0VI6qM");
    assert_false(s.ice_lite);
    assert_string_equal(s.fp_alg, "sha-256");
    assert_int_equal(s.fp_len, 32);
    assert_int_equal(s.fp[0], 0x12);
    assert_int_equal(s.fp[31], 0xAD);
    assert_string_equal(s.setup, "actpass");
    assert_true(s.bundle);
    assert_string_equal(s.cand_ip, "192.168.1.10"); /* the UDP host one, not the TCP one */
    assert_int_equal(s.cand_port, 54321);
    assert_int_equal(s.nmedia, 1);
    assert_int_equal(s.audio, 0);
    const sc_sdp_media_t *m = &s.media[0];
    assert_string_equal(m->kind, "audio");
    assert_string_equal(m->proto, "UDP/TLS/RTP/SAVPF");
    assert_string_equal(m->mid, "0");
    assert_int_equal(m->port, 54321);
    assert_int_equal(m->opus_pt, 111);
    assert_true(m->opus_fec);
    assert_int_equal(m->dir, SC_SDP_SENDONLY);
    assert_true(m->rtcp_mux);
    assert_int_equal(m->ssrc, 3735928559u);
    assert_string_equal(m->fmts, "111 63 9 0 8 13 110 126");
    assert_int_equal(m->red_pt, 63); /* red/48000/2 with fmtp 111/111 */
}

/* RED is taken only when its copies are Opus (RFC 2198's fmtp names their payload types). */
static void test_parse_red(void **state)
{
    (void)state;
    sc_sdp_t s;
    const char *why = NULL;
    assert_int_equal(parse(replaced(chromium_audio, "a=fmtp:63 111/111", "a=fmtp:63 111/111/111"), &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, 63);
    assert_int_equal(parse(replaced(chromium_audio, "a=fmtp:63 111/111", "a=fmtp:63 111/9"), &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, -1);
    assert_int_equal(parse(replaced(chromium_audio, "a=fmtp:63 111/111", "a=fmtp:63 111/"), &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, -1);
    assert_int_equal(parse(replaced(chromium_audio, "a=fmtp:63 111/111", "a=x-none:1"), &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, 63); /* no fmtp: nothing says otherwise */
    /* not in the m= line's formats, or another clock: no RED */
    assert_int_equal(parse(replaced(chromium_audio, "111 63 9 0", "111 9 0"), &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, -1);
    assert_int_equal(parse(replaced(chromium_audio, "63 red/48000/2", "63 red/8000"), &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, -1);
    assert_int_equal(parse(firefox_audio, &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, -1);
}

static void test_parse_firefox_lf(void **state)
{
    (void)state;
    sc_sdp_t s;
    const char *why = NULL;
    assert_int_equal(parse(firefox_audio, &s, &why), 0);
    assert_string_equal(s.ice_ufrag, "8f7e6d5c");
    assert_string_equal(s.ice_pwd, "4ab1c2d3e4f5a6b7c8d9e0f1a2b3c4d5");
    assert_int_equal(s.fp_len, 32);
    assert_int_equal(s.media[0].opus_pt, 109);
    assert_true(s.media[0].opus_fec);
    assert_int_equal(s.media[0].dir, SC_SDP_SENDONLY);
    assert_int_equal(s.media[0].ssrc, 2882400001u);
    assert_string_equal(s.cand_ip, "");
    /* without useinbandfec=1 the flag is off */
    assert_int_equal(parse(replaced(firefox_audio, "useinbandfec=1", "useinbandfec=0"), &s, &why), 0);
    assert_false(s.media[0].opus_fec);
}

/* --- answers ----------------------------------------------------------------------------- */

static void test_answer_chromium_audio(void **state)
{
    (void)state;
    sc_sdp_t offer, ans;
    const char *why = NULL;
    assert_int_equal(parse(chromium_audio, &offer, &why), 0);
    char buf[4096];
    int n = sc_sdp_write_answer(buf, sizeof buf, &offer, &server);
    assert_true(n > 0);
    assert_int_equal(strlen(buf), (size_t)n);
    assert_non_null(strstr(buf, "v=0\r\no=- 1234567890123 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"));
    assert_non_null(strstr(buf, "a=group:BUNDLE 0\r\n"));
    assert_non_null(strstr(buf, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")); /* server.red is 0 */
    assert_null(strstr(buf, "red/48000/2"));
    assert_non_null(strstr(buf, "a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
    assert_non_null(strstr(buf, "a=candidate:1 1 udp 2130706431 192.0.2.10 40000 typ host\r\n"));
    assert_null(strstr(buf, "a=ssrc:")); /* we do not send */
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &ans, &why), 0);
    assert_true(ans.ice_lite);
    assert_string_equal(ans.ice_ufrag, "srvU");
    assert_string_equal(ans.ice_pwd, "serverpassword0123456789");
    assert_int_equal(ans.fp_len, 32);
    assert_int_equal(ans.fp[0], 0xAA);
    assert_int_equal(ans.fp[31], 0x99);
    assert_string_equal(ans.setup, "passive");
    assert_true(ans.bundle);
    assert_string_equal(ans.cand_ip, "192.0.2.10");
    assert_int_equal(ans.cand_port, 40000);
    assert_int_equal(ans.nmedia, 1);
    assert_int_equal(ans.audio, 0);
    assert_int_equal(ans.media[0].opus_pt, 111);
    assert_true(ans.media[0].opus_fec);
    assert_string_equal(ans.media[0].mid, "0");
    assert_int_equal(ans.media[0].dir, SC_SDP_RECVONLY);
    assert_true(ans.media[0].rtcp_mux);
    /* every cap short of the whole answer is refused, never truncated */
    for (int cap = 0; cap <= n; cap++)
        assert_int_equal(sc_sdp_write_answer(buf, (size_t)cap, &offer, &server), -1);
    assert_int_equal(sc_sdp_write_answer(buf, (size_t)n + 1, &offer, &server), n);
    /* a WHIP server takes RED, listed first: Chromium sends RED only when the answer prefers it */
    sc_sdp_local_t whip = server;
    whip.red = 1;
    n = sc_sdp_write_answer(buf, sizeof buf, &offer, &whip);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n"));
    assert_non_null(strstr(buf, "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n"));
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &ans, &why), 0);
    assert_int_equal(ans.media[0].opus_pt, 111);
    assert_int_equal(ans.media[0].red_pt, 63);
    /* an offer without RED gets none */
    assert_int_equal(parse(firefox_audio, &offer, &why), 0);
    n = sc_sdp_write_answer(buf, sizeof buf, &offer, &whip);
    assert_true(n > 0);
    assert_null(strstr(buf, "red/"));
}

static void test_answer_audio_video(void **state)
{
    (void)state;
    sc_sdp_t offer, ans;
    const char *why = NULL;
    assert_int_equal(parse(chromium_av, &offer, &why), 0);
    assert_int_equal(offer.nmedia, 2);
    assert_int_equal(offer.audio, 0);
    assert_int_equal(offer.media[0].dir, SC_SDP_SENDRECV);
    assert_string_equal(offer.media[1].kind, "video");
    assert_int_equal(offer.media[1].opus_pt, -1);
    assert_int_equal(offer.media[1].ssrc, 2001);
    sc_sdp_local_t whep = server;
    whep.dir = SC_SDP_SENDONLY;
    whep.ssrc = 0x5EED;
    whep.ice_lite = 0;
    char buf[4096];
    int n = sc_sdp_write_answer(buf, sizeof buf, &offer, &whep);
    assert_true(n > 0);
    assert_null(strstr(buf, "a=ice-lite"));
    assert_non_null(strstr(buf, "a=group:BUNDLE 0\r\n")); /* the rejected video is not bundled */
    assert_non_null(strstr(buf, "m=video 0 UDP/TLS/RTP/SAVPF 96 97 102 103 45 46\r\nc=IN IP4 0.0.0.0\r\n"
                                "a=mid:1\r\na=inactive\r\n"));
    assert_non_null(strstr(buf, "a=ssrc:24301 cname:spacecast\r\na=msid:spacecast audio\r\n"));
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &ans, &why), 0);
    assert_int_equal(ans.nmedia, 2);
    assert_int_equal(ans.audio, 0);
    assert_int_equal(ans.media[0].dir, SC_SDP_SENDONLY);
    assert_int_equal(ans.media[0].ssrc, 0x5EED);
    assert_string_equal(ans.media[1].kind, "video");
    assert_int_equal(ans.media[1].port, 0);
    assert_int_equal(ans.media[1].dir, SC_SDP_INACTIVE);
    assert_string_equal(ans.media[1].mid, "1");
    /* a WHEP player offering sendonly gets an inactive answer, not an invalid one */
    assert_int_equal(parse(replaced(chromium_av, "a=sendrecv", "a=sendonly"), &offer, &why), 0);
    n = sc_sdp_write_answer(buf, sizeof buf, &offer, &whep);
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &ans, &why), 0);
    assert_int_equal(ans.media[0].dir, SC_SDP_INACTIVE);

    /* video first: the audio m-section is the second, and the answer keeps the order */
    static char swapped[SC_SDP_MAX_BYTES];
    const char *vid = strstr(chromium_av, "m=video");
    const char *aud = strstr(chromium_av, "m=audio");
    size_t head = (size_t)(aud - chromium_av), alen = (size_t)(vid - aud);
    snprintf(swapped, sizeof swapped, "%.*s%s%.*s", (int)head, chromium_av, vid, (int)alen, aud);
    assert_int_equal(parse(swapped, &offer, &why), 0);
    assert_int_equal(offer.audio, 1);
    n = sc_sdp_write_answer(buf, sizeof buf, &offer, &whep);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "a=group:BUNDLE 0\r\n"));
    assert_true(strstr(buf, "m=video 0") < strstr(buf, "m=audio 9"));
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &ans, &why), 0);
    assert_int_equal(ans.audio, 1);
}

/* --- refusals ---------------------------------------------------------------------------- */

static void expect_refused(const char *sdp, const char *reason)
{
    sc_sdp_t s;
    const char *why = NULL;
    assert_int_equal(parse(sdp, &s, &why), -1);
    assert_non_null(why);
    assert_string_equal(why, reason);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused(without(chromium_audio, "a=fingerprint"), "no sha-256 fingerprint");
    expect_refused(replaced(chromium_audio, "sha-256", "sha-1"), "no sha-256 fingerprint");
    expect_refused(replaced(chromium_audio, "4A:AD\r\n", "4A:\r\n"), "bad fingerprint");
    expect_refused(replaced(chromium_audio, "4A:AD\r\n", "4A:AZ\r\n"), "bad fingerprint");
    expect_refused(without(chromium_audio, "a=rtpmap:111"), "no opus");
    expect_refused(replaced(chromium_audio, "opus/48000/2", "opus/48000/1"), "no opus");
    expect_refused(replaced(chromium_audio, "m=audio 54321", "m=audio 0"), "no opus");
    expect_refused(replaced(chromium_audio, " 111 63 ", " 112 63 "), "no opus"); /* rtpmap of no fmt */
    expect_refused(without(chromium_audio, "a=ice-ufrag"), "no ice-ufrag");
    expect_refused(without(chromium_audio, "a=ice-pwd"), "no ice-pwd");
    expect_refused(without(chromium_audio, "v=0"), "missing v= line");
    expect_refused("", "missing v= line");
    expect_refused(replaced(chromium_audio, "a=mid:0", "a=mid:0123456789012345678901234567890123456789"),
                   "bad mid");
    expect_refused(replaced(chromium_audio, "s=-", "s=\001"), "control character in SDP");
    expect_refused(replaced(chromium_audio, "m=audio 54321", "m=audio 65536"), "bad m= line");
}

static void test_refuse_limits(void **state)
{
    (void)state;
    static char big[SC_SDP_MAX_BYTES * 2];
    /* nine m-sections */
    size_t len = (size_t)snprintf(big, sizeof big, "%s", chromium_audio);
    for (int i = 1; i < 9; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:%d\r\n", i);
    expect_refused(big, "too many m-sections");
    /* eight are fine */
    char *ninth = strstr(big, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:8");
    *ninth = '\0';
    sc_sdp_t s;
    assert_int_equal(parse(big, &s, NULL), 0);
    assert_int_equal(s.nmedia, 8);
    /* a line of 4097 bytes; 4096 is fine */
    len = (size_t)snprintf(big, sizeof big, "%sa=x-long:", chromium_audio);
    memset(big + len, 'x', 4096 - 9);
    len += 4096 - 9;
    memcpy(big + len, "\r\n", 3);
    assert_int_equal(parse(big, &s, NULL), 0);
    memcpy(big + len, "x\r\n", 4);
    expect_refused(big, "line too long");
    /* more than SC_SDP_MAX_BYTES in all */
    len = (size_t)snprintf(big, sizeof big, "%s", chromium_audio);
    while (len <= SC_SDP_MAX_BYTES)
        len += (size_t)snprintf(big + len, sizeof big - len, "a=x-filler:%0100d\r\n", 0);
    expect_refused(big, "SDP too long");
}

/* --- our offer --------------------------------------------------------------------------- */

static void test_offer_roundtrip(void **state)
{
    (void)state;
    sc_sdp_local_t client = {
        .ice_ufrag = "cliU",
        .ice_pwd = "clientpassword0123456789",
        .fingerprint = FP_HEX,
        .setup = "actpass",
        .cand_ip = "198.51.100.20",
        .cand_port = 50123,
        .dir = SC_SDP_SENDONLY,
        .ssrc = 77,
        .session_id = 42,
    };
    char buf[4096];
    int n = sc_sdp_write_offer(buf, sizeof buf, &client);
    assert_true(n > 0);
    sc_sdp_t s;
    const char *why = NULL;
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &s, &why), 0);
    assert_false(s.ice_lite);
    assert_true(s.bundle);
    assert_string_equal(s.ice_ufrag, "cliU");
    assert_string_equal(s.setup, "actpass");
    assert_int_equal(s.fp[1], 0xDF);
    assert_string_equal(s.cand_ip, "198.51.100.20");
    assert_int_equal(s.cand_port, 50123);
    assert_int_equal(s.nmedia, 1);
    assert_int_equal(s.media[0].opus_pt, 111);
    assert_true(s.media[0].opus_fec);
    assert_string_equal(s.media[0].mid, "0");
    assert_int_equal(s.media[0].dir, SC_SDP_SENDONLY);
    assert_int_equal(s.media[0].ssrc, 77);
    assert_true(s.media[0].rtcp_mux);
    assert_int_equal(s.media[0].red_pt, -1);
    /* and a server answers it */
    int m = sc_sdp_write_answer(buf, sizeof buf, &s, &server);
    assert_true(m > 0);
    assert_int_equal(sc_sdp_parse(buf, (size_t)m, &s, &why), 0);
    assert_int_equal(s.media[0].dir, SC_SDP_RECVONLY);
    /* with RED offered (PT 63 first), a server that takes it answers it */
    client.red = 1;
    n = sc_sdp_write_offer(buf, sizeof buf, &client);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n"));
    assert_int_equal(sc_sdp_parse(buf, (size_t)n, &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, 63);
    sc_sdp_local_t whip = server;
    whip.red = 1;
    m = sc_sdp_write_answer(buf, sizeof buf, &s, &whip);
    assert_true(m > 0);
    assert_int_equal(sc_sdp_parse(buf, (size_t)m, &s, &why), 0);
    assert_int_equal(s.media[0].red_pt, 63);
    client.red = 0;
    /* too small, or a local string that would break a line */
    assert_int_equal(sc_sdp_write_offer(buf, 100, &client), -1);
    assert_string_equal(buf, "");
    client.ice_pwd = "a b";
    assert_int_equal(sc_sdp_write_offer(buf, sizeof buf, &client), -1);
}

static void test_fp_hex(void **state)
{
    (void)state;
    const uint8_t fp[3] = { 0x0A, 0xBC, 0xFF };
    char out[9];
    sc_sdp_fp_hex(fp, 3, out);
    assert_string_equal(out, "0A:BC:FF");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_chromium_audio),
        cmocka_unit_test(test_parse_red),
        cmocka_unit_test(test_parse_firefox_lf),
        cmocka_unit_test(test_answer_chromium_audio),
        cmocka_unit_test(test_answer_audio_video),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_refuse_limits),
        cmocka_unit_test(test_offer_roundtrip),
        cmocka_unit_test(test_fp_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
