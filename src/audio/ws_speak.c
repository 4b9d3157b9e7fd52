/* ws_speak.c — the WebSocket speaker link `GET /spaces/{id}/speak`: Opus packets in (into the
 * mixer through the shared ingest slot logic), the speaker's mix-minus out, JSON control
 * events both ways. Protocol: docs/websocket.md.
 *
 * Mix-minus crosses threads through a sink per connection: the engine thread finds it in a
 * small table keyed by (Space, speaker index), drops the packet into its bounded ring and, if
 * no delivery is pending, posts one task to the connection's worker loop. The engine never
 * touches a socket and never waits on a worker. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/engine.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"
#include "spacecast/mixer.h"
#include "spacecast/websocket.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define SC_SINK_RING 10          /* 200 ms of mix-minus; a worker further behind loses the oldest */
#define SC_SINK_BUCKETS 1024     /* hash buckets of the (Space, index) → sink table */
#define SC_SPEAK_WATCH_MS 200    /* how soon a replaced, removed or ended speaker is told */
#define SC_SPEAK_MAX_BACKLOG 16384 /* unsent output above which mix-minus packets are skipped */

/* --- the speaker link's packet header ----------------------------------------------------- */

int sc_ws_pkt_parse(const uint8_t *msg, size_t len, sc_ws_pkt_t *out)
{
    if (len < SC_WS_PKT_HEADER + 1 || len > SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS)
        return -1;
    uint16_t flags = (uint16_t)(msg[2] << 8 | msg[3]);
    if (flags & ~SC_WS_PKT_FEC)
        return -1; /* reserved bits: a newer client speaking a protocol we do not know */
    out->seq = (uint16_t)(msg[0] << 8 | msg[1]);
    out->flags = flags;
    out->timestamp = (uint32_t)msg[4] << 24 | (uint32_t)msg[5] << 16 | (uint32_t)msg[6] << 8 | msg[7];
    out->opus = msg + SC_WS_PKT_HEADER;
    out->opus_len = len - SC_WS_PKT_HEADER;
    return 0;
}

void sc_ws_pkt_header(uint8_t out[SC_WS_PKT_HEADER], uint16_t seq, uint16_t flags, uint32_t timestamp)
{
    out[0] = (uint8_t)(seq >> 8);
    out[1] = (uint8_t)seq;
    out[2] = (uint8_t)(flags >> 8);
    out[3] = (uint8_t)flags;
    out[4] = (uint8_t)(timestamp >> 24);
    out[5] = (uint8_t)(timestamp >> 16);
    out[6] = (uint8_t)(timestamp >> 8);
    out[7] = (uint8_t)timestamp;
}

/* --- mix-minus sinks ------------------------------------------------------------------------ */

struct sc_speak;

typedef struct sc_sink_pkt {
    uint16_t len;
    uint8_t data[SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS]; /* header written at push time */
} sc_sink_pkt_t;

typedef struct sc_sink {
    /* set once before registration */
    const sc_space_t *space;
    uint32_t index;
    sc_loop_t *loop;
    struct sc_sink *next;  /* table bucket chain, under sc_sink_mu */
    atomic_int refs;       /* the connection, the table does not count, each posted task */
    pthread_mutex_t mu;    /* the ring and the fields below */
    sc_sink_pkt_t ring[SC_SINK_RING];
    int head, count, scheduled;
    uint16_t seq;          /* numbered at push time, so drops show as gaps to the client */
    uint32_t ts;
    uint64_t dropped;
    struct sc_speak *sp;   /* the connection's state; NULL once it closed (worker thread only) */
} sc_sink_t;

static sc_sink_t *sc_sink_table[SC_SINK_BUCKETS];
static pthread_mutex_t sc_sink_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t sink_bucket(const void *space, uint32_t index)
{
    uint64_t h = (uint64_t)(uintptr_t)space * 0x9E3779B97F4A7C15ull + index * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h >> 40) & (SC_SINK_BUCKETS - 1);
}

static void sink_unref(sc_sink_t *k)
{
    if (atomic_fetch_sub(&k->refs, 1) == 1) {
        pthread_mutex_destroy(&k->mu);
        free(k);
    }
}

/* The newest connection of a speaker takes the entry over; the older one just falls out. */
static void sink_register(sc_sink_t *k)
{
    size_t b = sink_bucket(k->space, k->index);
    pthread_mutex_lock(&sc_sink_mu);
    for (sc_sink_t **pp = &sc_sink_table[b]; *pp; pp = &(*pp)->next) {
        if ((*pp)->space == k->space && (*pp)->index == k->index) {
            *pp = (*pp)->next;
            break;
        }
    }
    k->next = sc_sink_table[b];
    sc_sink_table[b] = k;
    pthread_mutex_unlock(&sc_sink_mu);
}

static void sink_unregister(sc_sink_t *k)
{
    size_t b = sink_bucket(k->space, k->index);
    pthread_mutex_lock(&sc_sink_mu);
    for (sc_sink_t **pp = &sc_sink_table[b]; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    k->next = NULL;
    pthread_mutex_unlock(&sc_sink_mu);
}

static void sink_deliver(sc_loop_t *l, void *arg);

/* Engine thread, inside the Space's tick (audio_mu held): O(1), no I/O, no waiting on workers. */
static void sink_on_minus(void *ctx, uint32_t speaker, const uint8_t *pkt, size_t len)
{
    if (len == 0 || len > SC_WS_PKT_MAX_OPUS)
        return;
    int post = 0;
    sc_loop_t *loop = NULL;
    pthread_mutex_lock(&sc_sink_mu);
    sc_sink_t *k = sc_sink_table[sink_bucket(ctx, speaker)];
    while (k && (k->space != ctx || k->index != speaker))
        k = k->next;
    if (k) {
        pthread_mutex_lock(&k->mu);
        if (k->count == SC_SINK_RING) {
            k->head = (k->head + 1) % SC_SINK_RING; /* the oldest goes: late audio is useless */
            k->count--;
            k->dropped++;
        }
        sc_sink_pkt_t *p = &k->ring[(k->head + k->count++) % SC_SINK_RING];
        sc_ws_pkt_header(p->data, k->seq++, 0, k->ts);
        k->ts += SC_MIXER_FRAME;
        memcpy(p->data + SC_WS_PKT_HEADER, pkt, len);
        p->len = (uint16_t)(SC_WS_PKT_HEADER + len);
        if (!k->scheduled) {
            k->scheduled = post = 1;
            atomic_fetch_add(&k->refs, 1); /* the task's */
            loop = k->loop;
        }
        pthread_mutex_unlock(&k->mu);
    }
    pthread_mutex_unlock(&sc_sink_mu);
    if (post)
        sc_loop_post(loop, sink_deliver, k);
}

static pthread_once_t sc_speak_once = PTHREAD_ONCE_INIT;

static void speak_init(void) { sc_engine_set_minus_sink(sink_on_minus); }

/* --- one speaker connection ----------------------------------------------------------------- */

typedef struct sc_speak {
    sc_ws_t *ws;
    sc_loop_t *loop;
    sc_ingest_slot_t slot;
    sc_sink_t *sink;
    sc_timer_t watch;
    char name[SC_TOKEN_NAME_MAX + 1];
    sc_role_t role;
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

/* Worker thread: send what the engine left in the ring. */
static void sink_deliver(sc_loop_t *l, void *arg)
{
    (void)l;
    sc_sink_t *k = arg;
    sc_sink_pkt_t pkt;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        sc_speak_t *sp = k->sp;
        if (!sp || k->count == 0) {
            k->scheduled = 0;
            k->head = (k->head + k->count) % SC_SINK_RING;
            k->count = 0;
            pthread_mutex_unlock(&k->mu);
            break;
        }
        pkt.len = k->ring[k->head].len;
        memcpy(pkt.data, k->ring[k->head].data, pkt.len);
        k->head = (k->head + 1) % SC_SINK_RING;
        k->count--;
        pthread_mutex_unlock(&k->mu);
        /* a client that does not read its return audio gets gaps, not a growing queue */
        if (!sc_ws_is_open(sp->ws) || sc_ws_pending(sp->ws) > SC_SPEAK_MAX_BACKLOG) {
            sp->skipped++;
            continue;
        }
        if (sc_ws_send(sp->ws, SC_WS_BINARY, pkt.data, pkt.len) == SC_OK)
            sp->packets_out++;
        /* the send may have closed the connection: k->sp is re-read under the lock */
    }
    sink_unref(k);
}

/* Tell the client why it is being let go, then close. */
static void speak_finish(sc_speak_t *sp, const char *type, uint16_t code)
{
    sc_log_info("event=ws_speak_%s space=%s speaker=%s", type, sp->slot.space->id, sp->name);
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
    int replaced = sk->ingest_gen != sp->slot.gen;
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
        sc_log_info("event=ws_speak_idle space=%s speaker=%s", sp->slot.space->id, sp->name);
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
        if (m != sp->muted_seen && sc_space_set_muted(sp->slot.space, sc_slice_cstr(sp->name), m) == 0) {
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
    if (sc_ws_pkt_parse(data, len, &pkt) != 0) {
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
    sink_unregister(sp->sink); /* the engine stops finding it */
    pthread_mutex_lock(&sp->sink->mu);
    sp->sink->sp = NULL;
    uint64_t dropped = sp->sink->dropped;
    pthread_mutex_unlock(&sp->sink->mu);
    sink_unref(sp->sink);
    sc_log_info("event=ws_speak_closed space=%s speaker=%s packets_in=%llu packets_out=%llu skipped=%llu "
                "dropped=%llu peer_code=%u",
                sp->slot.space->id, sp->name, (unsigned long long)sp->packets_in,
                (unsigned long long)sp->packets_out, (unsigned long long)sp->skipped, (unsigned long long)dropped,
                (unsigned)sc_ws_peer_close_code(ws));
    sc_ingest_release(&sp->slot);
    sp->slot.space = NULL;
    sc_loop_defer(sp->loop, speak_free, sp); /* a timer or task of this iteration may still hold sp */
}

static const sc_ws_handler_t sc_speak_handler = { .on_message = speak_on_message, .on_close = speak_on_close };

void sc_ws_speak_handle(sc_req_t *r)
{
    pthread_once(&sc_speak_once, speak_init);
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    char accept[SC_WS_ACCEPT_LEN + 1];
    if (sc_ws_handshake(r, accept) != 0)
        return;
    sc_token_claims_t claims;
    if (sc_space_auth(r, s, SC_ROLE_SPEAKER, &claims) != 0)
        return;
    if (s->state == SC_SPACE_ENDED) {
        sc_http_error(r, 409, "ended", "this Space has ended");
        return;
    }
    pthread_mutex_lock(&s->mu);
    int idx = sc_space_speaker_index(s, &claims);
    pthread_mutex_unlock(&s->mu);
    sc_speak_t *sp = sc_calloc(1, sizeof *sp);
    if (idx < 0 || sc_ingest_claim(&sp->slot, s, idx, claims.generation, 1) != 0) {
        free(sp);
        sc_http_error(r, 401, "unauthorized", "token revoked");
        return;
    }
    sc_conn_t *c = r->conn;
    sp->loop = c->io.loop;
    sp->role = claims.role;
    snprintf(sp->name, sizeof sp->name, "%s", claims.name);
    sc_timer_init(&sp->watch, speak_on_watch);

    sc_sink_t *k = sc_calloc(1, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    atomic_init(&k->refs, 1);
    k->space = s;
    k->index = (uint32_t)idx;
    k->loop = sp->loop;
    k->sp = sp;
    sp->sink = k;
    sink_register(k);

    pthread_mutex_lock(&s->mu);
    sp->muted_seen = s->speakers[idx].muted;
    const char *state = sc_space_state_name(s->state);
    pthread_mutex_unlock(&s->mu);
    int channels = 1;
    pthread_mutex_lock(&s->audio_mu);
    if (s->mixer)
        channels = sc_mixer_channels(s->mixer);
    pthread_mutex_unlock(&s->audio_mu);

    sp->ws = sc_ws_accept(r, accept, &sc_speak_handler, sp);
    speak_send_json(sp, json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:i,s:i,s:i}", "type", "hello", "space", s->id, "name",
                                  sp->name, "role", sc_role_name(sp->role), "muted", sp->muted_seen, "state", state,
                                  "rate", SC_MIXER_RATE, "frame", SC_MIXER_FRAME, "channels", channels));
    sc_log_info("event=ws_speak_connected space=%s speaker=%s", s->id, sp->name);
    /* the watch closes politely at SC_WS_SPEAK_IDLE_MS; the connection timer is the backstop */
    sp->last_msg_ms = sc_loop_now(sp->loop);
    sc_ws_set_idle_timeout(sp->ws, SC_WS_SPEAK_IDLE_MS + SC_WS_CLOSE_WAIT_MS);
    sc_timer_arm(sc_loop_timers(sp->loop), &sp->watch, sc_loop_now(sp->loop), SC_SPEAK_WATCH_MS);
    sc_ws_start(sp->ws); /* from here the connection owns sp through the handler */
}
