/* api_source.c — Icecast-compatible source ingest: `PUT /spaces/{id}/source` (and the legacy
 * SOURCE method) with HTTP Basic `source:TOKEN`, an Ogg/Opus body that may be chunked,
 * sized, or (ffmpeg) ended by closing. Packets go straight into the speaker's jitter buffer
 * through the shared slot logic (space/ingest.c). */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"
#include "spacecast/ogg.h"

#include <stdio.h>

#define SC_INGEST_IDLE_MS 10000 /* a speaker silent on the wire this long is gone */

typedef struct sc_source {
    sc_ingest_slot_t slot;
    sc_ogg_reader_t *ogg;
    sc_http_chunked_t chunked;
    int is_chunked;
    uint64_t remaining;  /* Content-Length left, or UINT64_MAX until close */
    uint64_t packets;
    int failed;
} sc_source_t;

static int on_packet(void *ctx, const uint8_t *pkt, size_t len, int samples)
{
    (void)samples;
    sc_source_t *src = ctx;
    src->packets++;
    sc_ingest_push(&src->slot, -1, pkt, len);
    return 0;
}

static void source_fail(sc_conn_t *c, int status, const char *code, const char *msg)
{
    sc_source_t *src = c->ctx;
    src->failed = 1;
    char peer[64];
    sc_log_warn("event=source_rejected space=%s peer=%s reason=\"%s\"", src->slot.space ? src->slot.space->id : "-",
                sc_conn_peer_str(c, peer, sizeof peer), msg);
    char body[256], resp[512];
    int bl = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, sc_http_reason(status), bl, body);
    sc_conn_pause_read(c, 1);
    c->closing = 1;
    sc_conn_write(c, resp, (size_t)n);
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
    sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, sc_loop_now(c->io.loop), SC_INGEST_IDLE_MS);
    size_t len = c->rlen;
    if (src->is_chunked) {
        ssize_t r = sc_http_decode_chunked(&src->chunked, c->rbuf, &len);
        if (r == -1) {
            source_fail(c, 400, "malformed", "bad chunked encoding");
            return SC_OK;
        }
    } else if (src->remaining != UINT64_MAX) {
        if (len > src->remaining)
            len = (size_t)src->remaining;
        src->remaining -= len;
    }
    int rc = sc_ogg_reader_feed(src->ogg, (const uint8_t *)c->rbuf, len);
    c->rlen = 0;
    if (rc != SC_OK) {
        source_fail(c, 415, "unsupported_media", sc_ogg_reader_error(src->ogg));
        return SC_OK;
    }
    if ((src->is_chunked && sc_http_chunked_done(&src->chunked)) || src->remaining == 0) {
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        c->closing = 1;
        sc_conn_write(c, ok, sizeof ok - 1);
    }
    return SC_OK;
}

static void source_on_close(sc_conn_t *c)
{
    sc_source_t *src = c->ctx;
    sc_log_info("event=source_closed space=%s speaker=%d packets=%llu", src->slot.space ? src->slot.space->id : "-",
                src->slot.index, (unsigned long long)src->packets);
    sc_ingest_release(&src->slot);
    sc_ogg_reader_free(src->ogg);
    free(src);
    c->ctx = NULL;
}

static const sc_conn_ops_t sc_source_ops = { .on_data = source_on_data, .on_close = source_on_close };

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
        sc_http_respond(r, 401, "application/json",
                        "{\"error\":{\"code\":\"unauthorized\",\"message\":\"source:TOKEN basic auth required\"}}", 78,
                        "WWW-Authenticate: Basic realm=\"spacecast\"\r\n");
        r->conn->keepalive = 0;
        return;
    }
    sc_token_claims_t claims;
    r->conn->keepalive = 0; /* whatever happens, this connection carries no second request */
    if (sc_space_auth_token(r, s, tok, SC_ROLE_SPEAKER, &claims) != 0)
        return;
    if (s->state == SC_SPACE_ENDED) {
        sc_http_error(r, 409, "ended", "this Space has ended");
        return;
    }
    const sc_slice_t *ct = sc_http_find_header(r->http, "Content-Type");
    if (ct && !sc_slice_eq_nocase(*ct, "audio/ogg") && !sc_slice_eq_nocase(*ct, "application/ogg") &&
        !sc_slice_eq_nocase(*ct, "audio/opus")) {
        sc_http_error(r, 415, "unsupported_media", "only Ogg/Opus (audio/ogg) is accepted");
        return;
    }
    pthread_mutex_lock(&s->mu);
    int idx = sc_space_speaker_index(s, &claims);
    pthread_mutex_unlock(&s->mu);
    sc_source_t *src = sc_calloc(1, sizeof *src);
    if (idx < 0 || sc_ingest_claim(&src->slot, s, idx, claims.generation, 0, 0) != 0) {
        free(src);
        sc_http_error(r, 401, "unauthorized", "token revoked");
        return;
    }
    src->ogg = sc_ogg_reader_new(on_packet, src);
    src->is_chunked = r->conn->body_expected == UINT32_MAX;
    const sc_slice_t *cl = sc_http_find_header(r->http, "Content-Length");
    src->remaining = (!src->is_chunked && cl) ? r->conn->body_expected : UINT64_MAX;
    r->responded = 1;
    sc_conn_t *c = r->conn;
    const sc_slice_t *expect = sc_http_find_header(r->http, "Expect");
    int want_continue = expect && sc_slice_eq_nocase(*expect, "100-continue");
    int legacy = sc_slice_eq(r->http->method, "SOURCE");
    sc_log_info("event=source_connected space=%s speaker=%s", s->id, claims.name);
    sc_conn_consume(c, c->head_len);
    c->head_len = 0;
    /* upgrade first: from here on, drained output no longer means "response done" */
    sc_conn_upgrade(c, &sc_source_ops, src);
    if (!c->io.loop)
        return;
    if (want_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        sc_conn_write(c, cont, sizeof cont - 1);
    } else if (legacy) {
        static const char ok[] = "HTTP/1.0 200 OK\r\n\r\n"; /* legacy Icecast clients wait for this */
        sc_conn_write(c, ok, sizeof ok - 1);
    }
    if (c->io.loop)
        sc_timer_arm(sc_loop_timers(c->io.loop), &c->timer, sc_loop_now(c->io.loop), SC_INGEST_IDLE_MS);
}
