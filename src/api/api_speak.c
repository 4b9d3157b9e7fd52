/* api_speak.c — the WebSocket speaker link `GET /spaces/{id}/speak`: Opus packets in (into the
 * mixer through the shared ingest slot logic), the speaker's mix-minus out, JSON control
 * events both ways. Protocol: docs/websocket.md.
 *
 * Mix-minus crosses threads through a sink per connection (minus.h): the engine never
 * touches a socket and never waits on a worker. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"
#include "spacecast/minus.h"
#include "spacecast/mixer.h"
#include "spacecast/room.h"
#include "spacecast/websocket.h"

#include <stdio.h>

#define SC_SPEAK_WATCH_MS 200    /* how soon a replaced, removed or ended speaker is told */
#define SC_SPEAK_MAX_BACKLOG 16384 /* unsent output above which mix-minus packets are skipped */

/* --- one speaker connection ----------------------------------------------------------------- */

typedef struct sc_speak {
    sc_ws_t *ws;
    sc_loop_t *loop;
    sc_ingest_slot_t slot;
    sc_minus_sink_t *sink;
    sc_timer_t watch;
    char name[SC_TOKEN_NAME_MAX + 1];
    sc_role_t role;
    int control_only;      /* ?media=none: events and mute only, the audio goes over WebRTC */
    int muted_seen;
    uint64_t last_msg_ms;  /* loop clock of the last text or binary message */
    uint64_t packets_in, packets_out, skipped;
} sc_speak_t;

#define speak_of_watch(t) ((sc_speak_t *)((char *)(t) - offsetof(sc_speak_t, watch)))

static void speak_send_json(sc_speak_t *sp, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (s)
        sc_ws_send_text(sp->ws, s);
    free(s);
}

/* Worker thread: one mix-minus packet for this speaker. */
static void speak_on_minus(void *owner, const uint8_t *opus, size_t len, uint16_t seq, uint32_t ts)
{
    sc_speak_t *sp = owner;
    /* a client that does not read its return audio gets gaps, not a growing queue */
    if (len > SC_WS_PKT_MAX_OPUS || !sc_ws_is_open(sp->ws) || sc_ws_pending(sp->ws) > SC_SPEAK_MAX_BACKLOG) {
        sp->skipped++;
        return;
    }
    uint8_t pkt[SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS];
    sc_ws_pkt_header(pkt, seq, 0, ts);
    memcpy(pkt + SC_WS_PKT_HEADER, opus, len);
    if (sc_ws_send(sp->ws, SC_WS_BINARY, pkt, SC_WS_PKT_HEADER + len) == SC_OK)
        sp->packets_out++;
}

/* Tell the client why it is being let go, then close. */
static void speak_finish(sc_speak_t *sp, const char *type, uint16_t code)
{
    sc_log_info("event=ws_speak_%s space=%s speaker=%s", type, sp->slot.space->id, sc_log_q(sp->name));
    speak_send_json(sp, json_pack("{s:s}", "type", type));
    sc_ws_close(sp->ws, code, type);
}

/* Is this connection still the speaker's? Tells and closes if not. Returns 1 while it is. */
static int speak_check(sc_speak_t *sp)
{
    if (!sc_ws_is_open(sp->ws))
        return 0;
    sc_space_t *s = sp->slot.space;
    pthread_mutex_lock(&s->mu);
    const sc_speaker_t *sk = &s->speakers[sp->slot.index];
    int ended = s->state == SC_SPACE_ENDED;
    int removed = sk->removed || sk->generation != sp->slot.token_gen;
    int replaced = !sp->control_only && sk->ingest_gen != sp->slot.gen;
    int muted = sk->muted;
    pthread_mutex_unlock(&s->mu);
    if (ended)
        speak_finish(sp, "ended", SC_WS_CLOSE_NORMAL);
    else if (removed)
        speak_finish(sp, "removed", SC_WS_CLOSE_REMOVED);
    else if (replaced)
        speak_finish(sp, "replaced", SC_WS_CLOSE_REPLACED);
    else if (muted != sp->muted_seen) {
        sp->muted_seen = muted; /* the host muted or unmuted them */
        speak_send_json(sp, json_pack("{s:s,s:b}", "type", "muted", "muted", muted));
    }
    return sc_ws_is_open(sp->ws);
}

static void speak_on_watch(sc_timer_t *t)
{
    sc_speak_t *sp = speak_of_watch(t);
    if (sc_ws_is_open(sp->ws) && sc_loop_now(sp->loop) - sp->last_msg_ms >= SC_WS_SPEAK_IDLE_MS) {
        sc_log_info("event=ws_speak_idle space=%s speaker=%s", sp->slot.space->id, sc_log_q(sp->name));
        sc_ws_close(sp->ws, SC_WS_CLOSE_GOING_AWAY, "idle"); /* a reason for the browser, not just a reset */
        return;
    }
    if (speak_check(sp))
        sc_timer_arm(sc_loop_timers(sp->loop), &sp->watch, sc_loop_now(sp->loop), SC_SPEAK_WATCH_MS);
}

static void speak_on_text(sc_speak_t *sp, const uint8_t *data, size_t len)
{
    json_error_t err;
    json_t *msg = json_loadb((const char *)data, len, 0, &err);
    if (!msg) {
        sc_ws_close(sp->ws, SC_WS_CLOSE_INVALID_DATA, "malformed JSON");
        return;
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    json_t *muted = json_object_get(msg, "muted");
    if (type && !strcmp(type, "ping")) {
        speak_send_json(sp, json_pack("{s:s}", "type", "pong"));
    } else if (type && !strcmp(type, "mute") && json_is_boolean(muted) && speak_check(sp)) {
        int m = json_is_true(muted);
        sc_space_rc_t rc = m != sp->muted_seen ? sc_space_set_muted(sp->slot.space, sc_slice_cstr(sp->name), m)
                                               : SC_SPACE_ENOENT;
        if (rc == SC_SPACE_OK || rc == SC_SPACE_ESTORE) { /* ESTORE: in effect now, stored later */
            sp->muted_seen = m;
            speak_send_json(sp, json_pack("{s:s,s:b}", "type", "muted", "muted", m));
        }
    }
    /* anything else: a newer client's message this server does not know; ignored */
    json_decref(msg);
}

static void speak_on_message(sc_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    sc_speak_t *sp = sc_ws_user(ws);
    sp->last_msg_ms = sc_loop_now(sp->loop);
    if (opcode == SC_WS_TEXT) {
        speak_on_text(sp, data, len);
        return;
    }
    sc_ws_pkt_t pkt;
    if (sp->control_only || sc_ws_pkt_parse(data, len, &pkt) != 0) {
        sc_ws_close(ws, SC_WS_CLOSE_INVALID_DATA, "bad audio packet");
        return;
    }
    if (!sc_ingest_current(&sp->slot)) {
        speak_check(sp); /* replaced, removed or ended: say so now rather than at the next watch */
        return;
    }
    sp->packets_in++;
    sc_ingest_push(&sp->slot, pkt.seq, pkt.opus, pkt.opus_len); /* the jitter buffer reorders by seq */
}

static void speak_free(sc_loop_t *l, void *arg)
{
    (void)l;
    free(arg);
}

static void speak_on_close(sc_ws_t *ws)
{
    sc_speak_t *sp = sc_ws_user(ws);
    sc_timer_cancel(sc_loop_timers(sp->loop), &sp->watch);
    uint64_t dropped = sp->sink ? sc_minus_close(sp->sink) : 0; /* the engine stops finding it */
    sc_log_info("event=ws_speak_closed space=%s speaker=%s packets_in=%llu packets_out=%llu skipped=%llu "
                "dropped=%llu peer_code=%u",
                sp->slot.space->id, sc_log_q(sp->name), (unsigned long long)sp->packets_in,
                (unsigned long long)sp->packets_out, (unsigned long long)sp->skipped, (unsigned long long)dropped,
                (unsigned)sc_ws_peer_close_code(ws));
    if (!sp->control_only)
        sc_ingest_release(&sp->slot); /* with the slot's reference */
    else
        sc_space_unref(sp->slot.space); /* the watching link's own */
    sp->slot.space = NULL;
    sc_loop_defer(sp->loop, speak_free, sp); /* a timer or task of this iteration may still hold sp */
}

static const sc_ws_handler_t sc_speak_handler = { .on_message = speak_on_message, .on_close = speak_on_close };

void sc_api_speak_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    char accept[SC_WS_ACCEPT_LEN + 1];
    if (sc_ws_handshake(r, accept) != 0)
        return;
    sc_token_claims_t claims;
    if (sc_api_auth(r, s, SC_ROLE_SPEAKER, &claims) != 0)
        return;
    if (s->state == SC_SPACE_ENDED) {
        sc_http_error(r, 409, "ended", "this Space has ended");
        return;
    }
    pthread_mutex_lock(&s->mu);
    int idx = sc_space_speaker_index(s, &claims);
    pthread_mutex_unlock(&s->mu);
    sc_speak_t *sp = sc_calloc(1, sizeof *sp);
    char media[8] = "";
    sc_http_query_get(r->http->query, "media", media, sizeof media);
    sp->control_only = !strcmp(media, "none");
    if (sp->control_only && idx >= 0) {
        /* the speaker's audio comes over WHIP: this link only watches (removed, ended, muted) */
        sp->slot = (sc_ingest_slot_t){ .space = sc_space_ref(s), .index = idx, .token_gen = claims.generation };
    } else if (idx < 0 || sc_ingest_claim(&sp->slot, s, idx, claims.generation, 1, 0) != 0) {
        free(sp);
        sc_http_error(r, 401, "unauthorized", "token revoked");
        return;
    }
    sc_conn_t *c = r->conn;
    sp->loop = c->io.loop;
    sp->role = claims.role;
    snprintf(sp->name, sizeof sp->name, "%s", claims.name);
    sc_timer_init(&sp->watch, speak_on_watch);

    if (!sp->control_only)
        sp->sink = sc_minus_open(s, (uint32_t)idx, sp->loop, speak_on_minus, sp);

    pthread_mutex_lock(&s->mu);
    sp->muted_seen = s->speakers[idx].muted;
    const char *state = sc_space_state_name(s->state);
    pthread_mutex_unlock(&s->mu);
    int channels = sp->slot.room ? sc_mixer_channels(sp->slot.room->mixer) : 1;

    sp->ws = sc_ws_accept(r, accept, &sc_speak_handler, sp);
    speak_send_json(sp, json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:i,s:i,s:i}", "type", "hello", "space", s->id, "name",
                                  sp->name, "role", sc_role_name(sp->role), "muted", sp->muted_seen, "state", state,
                                  "rate", SC_RATE, "frame", SC_FRAME, "channels", channels));
    sc_log_info("event=ws_speak_connected space=%s speaker=%s", s->id, sc_log_q(sp->name));
    /* the watch closes politely at SC_WS_SPEAK_IDLE_MS; the connection timer is the backstop */
    sp->last_msg_ms = sc_loop_now(sp->loop);
    sc_ws_set_idle_timeout(sp->ws, SC_WS_SPEAK_IDLE_MS + SC_WS_CLOSE_WAIT_MS);
    sc_timer_arm(sc_loop_timers(sp->loop), &sp->watch, sc_loop_now(sp->loop), SC_SPEAK_WATCH_MS);
    sc_ws_start(sp->ws); /* from here the connection owns sp through the handler */
}
