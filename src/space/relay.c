/* relay.c — the edge side of `--relay-from` (the origin's tally endpoint is api/api_edges.c).
 *
 * One poller thread reads the origin's Space list every second, mirrors each Space's state
 * locally and reports this edge's listener counts back. One fetcher thread per live Space
 * holds the origin's live.ogg and pushes its packets into the local mixer. These are plain
 * blocking threads: an edge relays a handful of Spaces, and each thread sleeps in recv(). */
#include "spacecast/relay.h"
#include "spacecast/dial.h"
#include "spacecast/http_parser.h"
#include "spacecast/common.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"
#include "spacecast/ogg.h"
#include "spacecast/config.h"
#include "spacecast/space.h"
#include "spacecast/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SC_RELAY_MAX 256
#define SC_RELAY_BACKOFF_MAX_MS 5000

typedef struct sc_fetcher {
    sc_space_t *space;
    pthread_t thread;
    atomic_int running;
    atomic_int done;
} sc_fetcher_t;

static struct {
    sc_url_t origin;
    char authority[300];     /* Host header */
    SSL_CTX *tls;            /* https origin: verified against relay_ca_file or the system's CAs */
    char edge_name[128];
    pthread_t poller;
    atomic_int running;
    pthread_mutex_t mu;
    sc_fetcher_t *fetchers[SC_RELAY_MAX];
    int report_status;       /* the last tally report's answer (poller), to log changes only */
} sc_rl = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* --- a tiny blocking HTTP/1.1 client for the origin ---------------------------------- */

/* A connection to the origin (TLS verified when it is https); 0 or -1 (logged at debug: the
 * callers say what failed). */
static int origin_connect(sc_stream_t *st, SSL_SESSION **session, int timeout_ms)
{
    char err[512], q[600];
    if (sc_stream_open(st, sc_rl.origin.host, sc_rl.origin.port, sc_rl.tls, session, AF_UNSPEC, timeout_ms, err,
                       sizeof err) == 0)
        return 0;
    sc_log_debug("event=origin_connect_failed err=%s", sc_log_quote(err, q, sizeof q));
    if (sc_rl.tls && !strstr(err, "cannot connect")) /* a certificate problem must not look like an outage */
        sc_log_warn("event=origin_tls_failed err=%s", sc_log_quote(err, q, sizeof q));
    return -1;
}

/* Read the response head into buf; returns the status, with the bytes after the head left
 * at buf[*body_off .. *len). */
static int read_head(sc_stream_t *st, char *buf, size_t cap, size_t *len, size_t *body_off)
{
    *len = 0;
    size_t last = 0;
    while (*len < cap - 1) {
        ssize_t n = sc_stream_read(st, buf + *len, cap - 1 - *len);
        if (n <= 0)
            return -1;
        *len += (size_t)n;
        buf[*len] = '\0';
        sc_http_response_t res;
        int head = sc_http_parse_response(buf, *len, last, &res);
        if (head == SC_INCOMPLETE) {
            last = *len;
            continue;
        }
        if (head < 0)
            return -1;
        *body_off = (size_t)head;
        return res.status;
    }
    return -1;
}

/* The value of header name in a response head (NUL-terminated), copied into out ("" if absent). */
static void head_value(const char *head, size_t head_len, const char *name, char *out, size_t outsz)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = head; p && p < head + head_len;) {
        const char *eol = memmem(p, (size_t)(head + head_len - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t n = SC_MIN((size_t)(eol - v), outsz - 1);
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
        p = eol + 2;
    }
}

/* A request to the origin with its whole answer: status (or -1), the body (malloc'd, NUL after
 * it, at most max_body bytes: more is an error), and two headers the edge passes on. session is
 * the calling thread's own TLS session (resumed on its next request). */
static int origin_exchange(SSL_SESSION **session, const char *method, const char *path, const char *body,
                           size_t max_body, char **out, size_t *out_len, char *ctype, size_t ctype_sz, char *cache,
                           size_t cache_sz)
{
    sc_stream_t st;
    if (origin_connect(&st, session, 3000) < 0)
        return -1;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nAuthorization: Bearer %s\r\n"
                     "User-Agent: spacecast-edge/" SC_VERSION "\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, sc_rl.authority, sc_config()->admin_key, body ? strlen(body) : 0);
    if (n < 0 || (size_t)n >= sizeof req || sc_stream_write(&st, req, (size_t)n) < 0 ||
        (body && sc_stream_write(&st, body, strlen(body)) < 0)) {
        sc_stream_close(&st);
        return -1;
    }
    size_t cap = 1 << 16, len, off;
    char *buf = sc_malloc(cap);
    int status = read_head(&st, buf, cap, &len, &off);
    if (status < 0) {
        free(buf);
        sc_stream_close(&st);
        return -1;
    }
    if (ctype)
        head_value(buf, off, "Content-Type", ctype, ctype_sz);
    if (cache)
        head_value(buf, off, "Cache-Control", cache, cache_sz);
    size_t blen = len - off;
    memmove(buf, buf + off, blen);
    for (;;) { /* Connection: close: the body ends with the connection */
        if (blen + 4096 > cap) {
            if (cap > max_body + 4096) {
                status = -1; /* more than any answer we asked for may be */
                break;
            }
            cap *= 2;
            buf = sc_realloc(buf, cap);
        }
        ssize_t r = sc_stream_read(&st, buf + blen, cap - blen - 1);
        if (r <= 0)
            break;
        blen += (size_t)r;
    }
    buf[blen] = '\0';
    sc_stream_close(&st);
    if (out && status >= 0) {
        *out = buf;
        if (out_len)
            *out_len = blen;
    } else {
        free(buf);
    }
    return status;
}

/* A small request/response (API): body into a malloc'd string. Returns status or -1. The poller
 * alone calls it: its TLS session (resumed on the next request) is its own. */
static int origin_request(const char *method, const char *path, const char *body, char **out)
{
    static SSL_SESSION *session;
    return origin_exchange(&session, method, path, body, 16u << 20, out, NULL, NULL, 0, NULL, 0);
}

int sc_relay_origin_get(const char *path, size_t max_body, char **body, size_t *len, char *ctype, size_t ctype_sz,
                        char *cache, size_t cache_sz)
{
    if (!atomic_load(&sc_rl.running))
        return -1;
    /* no session to resume: several threads fetch, and these requests are rare (once per answer) */
    return origin_exchange(NULL, "GET", path, NULL, max_body, body, len, ctype, ctype_sz, cache, cache_sz);
}

/* --- fetcher: origin live.ogg → local mixer -------------------------------------------- */

static int on_relay_packet(void *ctx, const uint8_t *pkt, size_t len, int samples)
{
    (void)samples;
    sc_ingest_push(ctx, -1, pkt, len);
    return 0;
}

static int space_live(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    int live = s->state == SC_SPACE_LIVE;
    pthread_mutex_unlock(&s->mu);
    return live;
}

static void *fetcher_main(void *arg)
{
    sc_fetcher_t *f = arg;
    sc_space_t *s = f->space;
    SSL_SESSION *session = NULL; /* this thread's, for resumed reconnections */
    int backoff = 250;
    while (atomic_load(&f->running) && space_live(s)) {
        sc_stream_t st;
        int fed = 0;
        if (origin_connect(&st, &session, 3000) == 0) {
            char req[768];
            /* the admin key tells the origin this is an edge, not one more listener */
            int n = snprintf(req, sizeof req, "GET /spaces/%s/live.ogg HTTP/1.1\r\nHost: %s\r\n"
                                              "User-Agent: spacecast-edge/" SC_VERSION "\r\n"
                                              "Authorization: Bearer %s\r\n\r\n",
                             s->id, sc_rl.authority, sc_config()->admin_key);
            char buf[16384];
            size_t len, off;
            int status = sc_stream_write(&st, req, (size_t)n) == 0 ? read_head(&st, buf, sizeof buf, &len, &off) : -1;
            if (status == 200) {
                sc_ingest_slot_t slot = { 0 };
                pthread_mutex_lock(&s->mu);
                uint32_t gen = s->speakers[0].generation;
                pthread_mutex_unlock(&s->mu);
                if (sc_ingest_claim(&slot, s, 0, gen, 0, 0) == 0) {
                    sc_log_info("event=relay_connected space=%s origin=%s tls=%d", s->id, sc_rl.authority,
                                sc_rl.tls != NULL);
                    sc_ogg_reader_t *rd = sc_ogg_reader_new(on_relay_packet, &slot);
                    int rc = sc_ogg_reader_feed(rd, (uint8_t *)buf + off, len - off);
                    while (rc == SC_OK && atomic_load(&f->running)) {
                        ssize_t r = sc_stream_read(&st, buf, sizeof buf);
                        if (r <= 0)
                            break;
                        fed = 1;
                        rc = sc_ogg_reader_feed(rd, (uint8_t *)buf, (size_t)r);
                    }
                    sc_log_warn("event=relay_disconnected space=%s reason=\"%s\"", s->id,
                                rc == SC_OK ? "origin closed" : sc_ogg_reader_error(rd));
                    sc_ogg_reader_free(rd);
                    sc_ingest_release(&slot);
                }
            } else if (status == 409) {
                sc_stream_close(&st);
                break; /* ended at the origin: the poller ends it here */
            }
            sc_stream_close(&st);
        }
        if (fed)
            backoff = 250;
        /* full jitter, so a restarted origin is not hit by every edge at the same instant */
        int sleep_ms = backoff / 2 + (int)(sc_rand32() % (uint32_t)(backoff / 2 + 1));
        for (int t = 0; t < sleep_ms && atomic_load(&f->running); t += 50)
            usleep(50000);
        backoff = SC_MIN(backoff * 2, SC_RELAY_BACKOFF_MAX_MS);
    }
    SSL_SESSION_free(session);
    atomic_store(&f->done, 1);
    return NULL;
}

static void ensure_fetcher(sc_space_t *s)
{
    pthread_mutex_lock(&sc_rl.mu);
    int free_slot = -1;
    for (int i = 0; i < SC_RELAY_MAX; i++) {
        sc_fetcher_t *f = sc_rl.fetchers[i];
        if (f && f->space == s && !atomic_load(&f->done)) {
            pthread_mutex_unlock(&sc_rl.mu);
            return;
        }
        if (f && atomic_load(&f->done)) { /* reap a finished one */
            pthread_join(f->thread, NULL);
            sc_space_unref(f->space);
            free(f);
            sc_rl.fetchers[i] = NULL;
        }
        if (!sc_rl.fetchers[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) {
        sc_fetcher_t *f = sc_calloc(1, sizeof *f);
        f->space = sc_space_ref(s); /* the fetcher's, let go when it is reaped */
        atomic_store(&f->running, 1);
        sc_rl.fetchers[free_slot] = f;
        pthread_create(&f->thread, NULL, fetcher_main, f);
    }
    pthread_mutex_unlock(&sc_rl.mu);
}

/* --- poller: mirror states, report tallies --------------------------------------------- */

static void mirror(json_t *o)
{
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *title = json_string_value(json_object_get(o, "title"));
    const char *state = json_string_value(json_object_get(o, "state"));
    json_t *sched = json_object_get(o, "scheduled_start");
    if (!id || !title || !state || !sc_token_valid_id(sc_slice_cstr(id)))
        return;
    sc_space_t *s = sc_space_get(sc_slice_cstr(id));
    if (!s) {
        if (!strcmp(state, "ended"))
            return; /* nothing to relay */
        /* the host's name is shown on the edge's pages too (add_host checks it) */
        s = sc_space_create_mirror(id, title, json_string_value(json_object_get(o, "host")),
                                   json_is_integer(sched) ? (int64_t)json_integer_value(sched) : 0);
        if (!s)
            return; /* the store refused it: the next poll tries again */
    }
    if (!atomic_load(&s->relayed)) /* a mirror loaded from the store at a restart */
        atomic_store(&s->relayed, 1);
    json_t *pin = json_object_get(o, "pin"); /* the origin's pinned link, shown here too */
    const char *pin_url = json_string_value(json_object_get(pin, "url"));
    const char *pin_text = json_string_value(json_object_get(pin, "text"));
    if (!pin_url || strlen(pin_url) <= SC_PIN_URL_MAX)
        sc_space_set_pin(s, pin_url ? pin_url : "", pin_text && strlen(pin_text) <= SC_PIN_TEXT_MAX ? pin_text : "");
    if (!strcmp(state, "live")) {
        if (s->state == SC_SPACE_SCHEDULED)
            sc_space_start(s);
        if (s->state == SC_SPACE_LIVE)
            ensure_fetcher(s);
    } else if (!strcmp(state, "ended") && s->state != SC_SPACE_ENDED) {
        sc_space_end(s);
    }
    sc_space_unref(s);
}

static void report_tallies(void)
{
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    for (size_t i = 0; i < n; i++) {
        sc_space_t *s = all[i];
        if (!s->relayed || s->state == SC_SPACE_ENDED)
            continue;
        /* room: how many more listeners of this Space we would admit, so the origin can send
         * its overflow here (see sc_space_edge_take) */
        const sc_config_t *cfg = sc_config();
        int here = atomic_load(&s->listeners);
        int room = SC_MIN(s->max_listeners - here, cfg->max_listeners - sc_spaces_listeners());
        json_t *j = json_pack("{s:s,s:i,s:s,s:i}", "edge", sc_rl.edge_name, "listeners", here, "url",
                              cfg->public_url, "room", room > 0 ? room : 0);
        /* this edge's listeners' reactions and numbers go with the tally: the origin's work is
         * one report per edge per second, whatever the crowd here */
        uint32_t counts[SC_REACTIONS_N];
        json_t *delta = sc_space_edge_take_extras(s, counts);
        uint64_t c64[SC_REACTIONS_N];
        for (int k = 0; k < SC_REACTIONS_N; k++)
            c64[k] = counts[k];
        json_object_set_new(j, "reactions", sc_reactions_json(c64));
        if (delta)
            json_object_set(j, "stats", delta);
        char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        char path[128];
        snprintf(path, sizeof path, "/api/spaces/%s/edges", s->id);
        char *answer = NULL;
        int status = body ? origin_request("POST", path, body, &answer) : -1;
        int ok = status == 200 || status == 204;
        sc_space_edge_report_done(s, ok, counts, delta);
        json_decref(delta);
        if (!ok && status != sc_rl.report_status) {
            /* said once per change, loudly when the origin refuses us: this edge's listeners
             * are then missing from the origin's tally (a wrong or missing admin key) */
            if (status == 401 || status == 403 || status == 429)
                sc_log_error("event=relay_report_refused space=%s status=%d note=\"the origin's tally misses this "
                             "edge's listeners: start the edge with the origin's admin key\"", s->id, status);
            else
                sc_log_warn("event=relay_report_failed space=%s status=%d", s->id, status);
        } else if (ok && sc_rl.report_status > 0 && sc_rl.report_status != 200 && sc_rl.report_status != 204) {
            sc_log_info("event=relay_report_ok space=%s", s->id);
        }
        sc_rl.report_status = status;
        json_t *a = ok && answer ? json_loads(answer, 0, NULL) : NULL;
        json_t *last = json_object_get(a, "reactions");
        if (json_is_object(last)) /* the origin's sums: shown to this edge's listeners */
            sc_space_reactions_from_origin(s, last);
        json_decref(a);
        free(answer);
        free(body);
    }
    sc_spaces_release(all, n);
}

static void *poller_main(void *arg)
{
    (void)arg;
    while (atomic_load(&sc_rl.running)) {
        uint64_t t0 = sc_now_ms();
        char *body = NULL;
        int status = origin_request("GET", "/api/spaces", NULL, &body);
        if (status == 200 && body) {
            json_t *j = json_loads(body, 0, NULL);
            json_t *arr = json_object_get(j, "spaces");
            size_t i;
            json_t *o;
            json_array_foreach(arr, i, o) mirror(o);
            json_decref(j);
        } else {
            sc_log_warn("event=origin_unreachable origin=%s status=%d", sc_rl.authority, status);
        }
        free(body);
        report_tallies();
        uint64_t spent = sc_now_ms() - t0;
        for (uint64_t t = spent; t < 1000 && atomic_load(&sc_rl.running); t += 50)
            usleep(50000);
    }
    return NULL;
}

int sc_relay_start(const char *origin_url, const char *ca_file)
{
    if (sc_url_parse(origin_url, &sc_rl.origin) < 0) {
        sc_log_error("event=relay_bad_url url=%s note=\"http(s)://HOST[:PORT]\"", origin_url);
        return -1;
    }
    sc_url_authority(&sc_rl.origin, sc_rl.authority, sizeof sc_rl.authority);
    char err[512], q[600];
    if (sc_rl.origin.tls && !(sc_rl.tls = sc_tls_client_ctx(ca_file, err, sizeof err))) {
        sc_log_error("event=relay_tls_failed err=%s", sc_log_quote(err, q, sizeof q));
        return -1;
    }
    snprintf(sc_rl.edge_name, sizeof sc_rl.edge_name, "%s", sc_config()->listen);
    atomic_store(&sc_rl.running, 1);
    sc_log_info("event=relay_started origin=%s tls=%d ca_file=%s edge=%s", sc_rl.authority, sc_rl.tls != NULL,
                ca_file && *ca_file ? ca_file : "system", sc_rl.edge_name);
    return pthread_create(&sc_rl.poller, NULL, poller_main, NULL) == 0 ? 0 : -1;
}

void sc_relay_stop(void)
{
    if (!atomic_exchange(&sc_rl.running, 0))
        return;
    pthread_join(sc_rl.poller, NULL);
    pthread_mutex_lock(&sc_rl.mu);
    for (int i = 0; i < SC_RELAY_MAX; i++)
        if (sc_rl.fetchers[i])
            atomic_store(&sc_rl.fetchers[i]->running, 0);
    pthread_mutex_unlock(&sc_rl.mu);
    for (int i = 0; i < SC_RELAY_MAX; i++) {
        sc_fetcher_t *f = sc_rl.fetchers[i];
        if (f) {
            pthread_join(f->thread, NULL); /* recv() wakes within its 3 s timeout */
            sc_space_unref(f->space);
            free(f);
            sc_rl.fetchers[i] = NULL;
        }
    }
    SSL_CTX_free(sc_rl.tls);
    sc_rl.tls = NULL;
}
