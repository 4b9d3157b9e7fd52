/* api_source.c — Icecast-compatible source ingest: `PUT /spaces/{id}/source` (and the legacy
 * SOURCE method) with HTTP Basic `source:TOKEN`; a body that may be chunked, sized, or (ffmpeg)
 * ended by closing. Ogg/Opus packets go straight into the speaker's jitter buffer; Ogg Vorbis,
 * Ogg FLAC, MP3 and AAC (ADTS) are decoded here (audio/decoder.c) and pushed as PCM, so any
 * Icecast source client can speak. The slot logic is space/ingest.c. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/decoder.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"
#include "spacecast/ogg.h"

#include <stdio.h>

#define SC_INGEST_IDLE_MS 10000 /* a speaker silent on the wire this long is gone */
#define SC_SOURCE_SLICE 256     /* body bytes fed between looks at the speaker's buffer in the mix */
#define SC_SOURCE_PACE_MS 20    /* a source held back is looked at again this often (one mix frame) */

typedef struct sc_source {
    sc_ingest_slot_t slot;
    sc_codec_t declared;  /* from Content-Type: SC_CODEC_NONE says "look at the bytes" */
    int started;          /* the first bytes were seen and the format chosen */
    uint8_t sniff[4];
    size_t sniffed;
    sc_ogg_reader_t *ogg; /* Ogg: Opus packets to the jitter buffer, Vorbis/FLAC to dec */
    sc_decoder_t *dec;    /* everything not Opus, decoded to PCM */
    sc_codec_t codec;     /* what is being decoded (or SC_CODEC_OPUS) */
    sc_http_chunked_t chunked;
    int is_chunked;
    uint64_t remaining;  /* Content-Length left, or UINT64_MAX until close */
    uint64_t packets;     /* codec packets: Ogg packets, or MP3/AAC frames decoded */
    int failed;
    uint32_t pending;     /* body bytes at rbuf[0..pending) not fed yet: the mix has enough */
    uint64_t rx_ms;       /* when the peer last sent something */
} sc_source_t;

static int on_packet(void *ctx, const uint8_t *pkt, size_t len, int samples)
{
    (void)samples;
    sc_source_t *src = ctx;
    src->packets++;
    sc_ingest_push(&src->slot, -1, pkt, len);
    return 0;
}

static void on_pcm(void *ctx, const float *pcm, int frames)
{
    sc_source_t *src = ctx;
    if (!src->ogg)
        src->packets++; /* a raw stream's frame (Ogg packets are counted as they come out of Ogg) */
    sc_ingest_push_pcm(&src->slot, pcm, frames);
}

static int new_decoder(sc_source_t *src, sc_codec_t codec)
{
    if (src->dec && src->codec == codec)
        return 0;
    sc_decoder_free(src->dec);
    src->codec = codec;
    src->dec = sc_decoder_new(codec, sc_ingest_channels(&src->slot), on_pcm, src);
    if (src->dec)
        sc_log_info("event=source_decoding space=%s speaker=%d codec=%s", src->slot.space->id, src->slot.index,
                    sc_codec_name(codec));
    return src->dec ? 0 : -1;
}

/* Ogg Vorbis / Ogg FLAC packets (headers included): decoded to PCM. A chained link may change codec. */
static int on_other(void *ctx, int codec, const uint8_t *pkt, size_t len)
{
    sc_source_t *src = ctx;
    sc_codec_t c = codec == SC_OGG_VORBIS ? SC_CODEC_VORBIS : SC_CODEC_FLAC;
    if (new_decoder(src, c) < 0)
        return -1;
    src->packets++;
    return sc_decoder_packet(src->dec, pkt, len);
}

static void source_fail(sc_conn_t *c, int status, const char *code, const char *msg)
{
    sc_source_t *src = c->ctx;
    src->failed = 1;
    char peer[64];
    sc_log_warn("event=source_rejected space=%s peer=%s reason=\"%s\"", src->slot.space ? src->slot.space->id : "-",
                sc_conn_peer_str(c, peer, sizeof peer), msg);
    /* HTTP let go of this connection: the answer is written here, in the same envelope */
    json_t *err = sc_http_error_body(code, msg);
    char *body = json_dumps(err, JSON_COMPACT);
    json_decref(err);
    char resp[768];
    int n = snprintf(resp, sizeof resp,
                     "%s %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     sc_http_version(c), status, sc_http_reason(status), strlen(body), body);
    free(body);
    sc_conn_pause_read(c, 1);
    c->closing = 1;
    sc_conn_write(c, resp, (size_t)SC_MIN((size_t)n, sizeof resp - 1));
}

/* The body's bytes to whichever reader the first bytes chose. NULL, or why the source is refused. */
static const char *feed(sc_source_t *src, const uint8_t *p, size_t len)
{
    if (!src->started) {
        size_t k = SC_MIN(len, sizeof src->sniff - src->sniffed);
        memcpy(src->sniff + src->sniffed, p, k);
        src->sniffed += k;
        if (src->sniffed < sizeof src->sniff)
            return NULL;
        src->started = 1;
        sc_codec_t seen = sc_codec_sniff(src->sniff, src->sniffed);
        sc_codec_t codec = seen != SC_CODEC_NONE ? seen : src->declared;
        if (codec == SC_CODEC_NONE)
            return "unrecognised audio: send Ogg (Opus, Vorbis, FLAC), MP3 or AAC (ADTS)";
        if (codec == SC_CODEC_OPUS) {
            src->ogg = sc_ogg_reader_new(on_packet, src);
            sc_ogg_reader_accept_other(src->ogg, on_other);
        } else if (new_decoder(src, codec) < 0) {
            return "this server cannot decode that codec";
        }
        /* the sniffed bytes first, then the rest of this read */
        const char *why = feed(src, src->sniff, src->sniffed);
        return why ? why : feed(src, p + k, len - k);
    }
    if (src->ogg) {
        if (sc_ogg_reader_feed(src->ogg, p, len) != SC_OK)
            return src->dec && sc_decoder_error(src->dec) ? sc_decoder_error(src->dec) : sc_ogg_reader_error(src->ogg);
        return NULL;
    }
    return sc_decoder_feed(src->dec, p, len) < 0 ? sc_decoder_error(src->dec) : NULL;
}

/* Feed the body bytes waiting at rbuf[0..pending) while the speaker's buffer in the mix has
 * room: a source faster than real time (ffmpeg without -re, a bot uploading a file) is then
 * played in full at real time, held back by TCP, instead of having nearly all of it dropped.
 * 0, or -1 when the source was refused (answered). */
static int feed_paced(sc_conn_t *c)
{
    sc_source_t *src = c->ctx;
    size_t off = 0;
    while (off < src->pending && !sc_ingest_ahead(&src->slot)) {
        size_t k = SC_MIN((size_t)SC_SOURCE_SLICE, src->pending - off);
        const char *why = feed(src, (const uint8_t *)c->rbuf + off, k);
        off += k;
        if (why) {
            src->pending = 0;
            c->rlen = 0;
            source_fail(c, 415, "unsupported_media", why);
            return -1;
        }
    }
    sc_conn_consume(c, off);
    src->pending -= (uint32_t)off;
    return 0;
}

/* After feeding: wait for the mix (reading nothing) or for the peer; answer a finished body. */
static void source_next(sc_conn_t *c)
{
    sc_source_t *src = c->ctx;
    uint64_t now = sc_loop_now(c->io.loop);
    if (src->pending) {
        sc_conn_pause_read(c, 1);
        sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, now, SC_SOURCE_PACE_MS);
        return;
    }
    if ((src->is_chunked && sc_http_chunked_done(&src->chunked)) || src->remaining == 0) {
        char ok[96];
        int n = snprintf(ok, sizeof ok, "%s 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         sc_http_version(c));
        c->closing = 1;
        sc_conn_write(c, ok, (size_t)n);
        return;
    }
    sc_conn_pause_read(c, 0);
    uint64_t quiet = now - src->rx_ms;
    sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, now, quiet < SC_INGEST_IDLE_MS ? SC_INGEST_IDLE_MS - quiet : 0);
}

static int source_on_data(sc_conn_t *c)
{
    sc_source_t *src = c->ctx;
    if (src->failed) {
        c->rlen = 0;
        return SC_OK;
    }
    if (!sc_ingest_current(&src->slot)) {
        sc_log_info("event=source_replaced space=%s speaker=%d", src->slot.space->id, src->slot.index);
        return SC_ERR; /* a newer connection took over, or the speaker was removed */
    }
    src->rx_ms = sc_loop_now(c->io.loop);
    /* what arrived since: rbuf[pending..rlen), decoded in place right behind what waits */
    size_t len = c->rlen - src->pending;
    if (src->is_chunked) {
        ssize_t r = sc_http_decode_chunked(&src->chunked, c->rbuf + src->pending, &len);
        if (r == -1) {
            source_fail(c, 400, "malformed", "bad chunked encoding");
            return SC_OK;
        }
    } else if (src->remaining != UINT64_MAX) {
        if (len > src->remaining)
            len = (size_t)src->remaining; /* anything after a sized body is not ours to play */
        src->remaining -= len;
    }
    src->pending += (uint32_t)len;
    c->rlen = src->pending;
    if (feed_paced(c) == 0)
        source_next(c);
    return SC_OK;
}

/* The connection's timer: a held-back source's next look at the mix, or the idle cut. */
static void source_on_timeout(sc_conn_t *c)
{
    sc_source_t *src = c->ctx;
    if (src->failed || !sc_ingest_current(&src->slot)) {
        sc_conn_close(c, "upgraded_timeout");
        return;
    }
    if (!src->pending && sc_loop_now(c->io.loop) - src->rx_ms >= SC_INGEST_IDLE_MS) {
        sc_conn_close(c, "upgraded_timeout"); /* a speaker silent on the wire is gone */
        return;
    }
    if (feed_paced(c) == 0)
        source_next(c);
}

static void source_on_close(sc_conn_t *c)
{
    sc_source_t *src = c->ctx;
    sc_log_info("event=source_closed space=%s speaker=%d packets=%llu", src->slot.space ? src->slot.space->id : "-",
                src->slot.index, (unsigned long long)src->packets);
    sc_ingest_release(&src->slot);
    sc_ogg_reader_free(src->ogg);
    sc_decoder_free(src->dec);
    free(src);
    c->ctx = NULL;
}

static const sc_proto_t sc_source_proto = { .name = "icecast-source", .on_data = source_on_data,
                                            .on_timeout = source_on_timeout, .on_close = source_on_close };

void sc_api_source_put(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    char user[64], tok[SC_TOKEN_MAX];
    const sc_slice_t *auth = sc_http_find_header(r->http, "Authorization");
    if (auth && sc_http_parse_basic_auth(*auth, user, sizeof user, tok, sizeof tok) == 0) {
        /* Icecast convention: user "source", the password is the speaker's token */
    } else if (sc_http_request_token(r, tok, sizeof tok) != 0) {
        sc_http_no_keepalive(r);
        sc_http_respond_json(r, 401, sc_http_error_body("unauthorized", "source:TOKEN basic auth required"),
                             "WWW-Authenticate: Basic realm=\"spacecast\"\r\n");
        return;
    }
    sc_token_claims_t claims;
    sc_http_no_keepalive(r); /* whatever happens, this connection carries no second request */
    if (sc_api_auth_token(r, s, tok, SC_ROLE_SPEAKER, &claims) != 0)
        return;
    if (s->state == SC_SPACE_ENDED) {
        sc_http_error(r, 409, "ended", "this Space has ended");
        return;
    }
    int declared = sc_api_source_codec(sc_http_find_header(r->http, "Content-Type"));
    if (declared < 0) {
        sc_http_error(r, 415, "unsupported_media",
                      "send Ogg (Opus, Vorbis, FLAC: audio/ogg), MP3 (audio/mpeg) or AAC (audio/aac, ADTS)");
        return;
    }
    pthread_mutex_lock(&s->mu);
    int idx = sc_space_speaker_index(s, &claims);
    pthread_mutex_unlock(&s->mu);
    if (idx >= 0 && sc_ingest_busy(s, idx)) {
        /* two auto-reconnecting clients on one token would replace each other forever: the one
         * sending keeps the slot (Icecast: "Mountpoint in use"); the host and speaker hear why */
        char peer[64];
        sc_log_warn("event=source_refused space=%s speaker=%s peer=%s reason=in_use", s->id, sc_log_q(claims.name),
                    sc_conn_peer_str(r->conn, peer, sizeof peer));
        sc_space_event(s, "source_refused",
                       json_pack("{s:s,s:s}", "name", claims.name, "reason", "another source is sending for this speaker"),
                       0);
        sc_http_error(r, 403, "in_use", "Mountpoint in use: another source is sending for this speaker");
        return;
    }
    sc_source_t *src = sc_calloc(1, sizeof *src);
    if (idx < 0 || sc_ingest_claim(&src->slot, s, idx, claims.generation, 0, 0) != 0) {
        free(src);
        sc_http_error(r, 401, "unauthorized", "token revoked");
        return;
    }
    src->declared = (sc_codec_t)declared;
    int64_t framing = sc_http_body_framing(r);
    src->is_chunked = framing == SC_HTTP_BODY_CHUNKED;
    src->remaining = framing >= 0 ? (uint64_t)framing : UINT64_MAX; /* no length: until the peer closes */
    sc_conn_t *c = r->conn;
    const sc_slice_t *expect = sc_http_find_header(r->http, "Expect");
    int want_continue = expect && sc_slice_eq_nocase(*expect, "100-continue");
    int legacy = sc_slice_eq(r->http->method, "SOURCE");
    sc_log_info("event=source_connected space=%s speaker=%s", s->id, sc_log_q(claims.name));
    sc_http_take_over(r, 200);
    /* upgrade first: from here on, drained output no longer means "response done" */
    sc_conn_upgrade(c, &sc_source_proto, src);
    if (!c->io.loop)
        return;
    if (want_continue && !sc_http_conn_is_10(c)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        sc_conn_write(c, cont, sizeof cont - 1);
    } else if (legacy || sc_http_conn_is_10(c)) {
        static const char ok[] = "HTTP/1.0 200 OK\r\n\r\n"; /* legacy Icecast clients wait for this */
        sc_conn_write(c, ok, sizeof ok - 1);
    }
    if (c->io.loop && !sc_timer_armed(&c->timer)) {
        src->rx_ms = sc_loop_now(c->io.loop);
        sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, src->rx_ms, SC_INGEST_IDLE_MS);
    }
}
