/* config.c — one table describes every setting, so the INI file, the flags and --help
 * can never disagree. */
#include "spacecast/config.h"
#include "spacecast/common.h"

#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum { OPT_STR, OPT_INT, OPT_BOOL } opt_type_t;

typedef struct sc_opt {
    const char *section, *key;
    opt_type_t type;
    size_t off, size;
    long min, max;
    const char *help;
} sc_opt_t;

#define S(sec, k, h) { sec, #k, OPT_STR, offsetof(sc_config_t, k), sizeof(((sc_config_t *)0)->k), 0, 0, h }
#define I(sec, k, lo, hi, h) { sec, #k, OPT_INT, offsetof(sc_config_t, k), sizeof(int), lo, hi, h }
#define B(sec, k, h) { sec, #k, OPT_BOOL, offsetof(sc_config_t, k), sizeof(int), 0, 1, h }

static const sc_opt_t sc_opts[] = {
    S("server", listen, "HOST:PORT the server listens on"),
    S("server", api_listen, "optional second HOST:PORT for hosts, speakers and the API only"),
    S("server", data, "data directory (SQLite database, recordings, admin.key)"),
    S("server", admin_key, "admin key for creating Spaces (else $SPACECAST_ADMIN_KEY, else DATA/admin.key)"),
    S("server", log_level, "debug, info, warn or error"),
    S("server", web_root, "directory of the web app's static files"),
    S("server", relay_from, "origin base URL: run as an edge relaying its live Spaces"),
    S("server", relay_ca_file, "PEM file of the CAs an https relay origin is verified against; empty: the system's"),
    S("server", public_url, "base URL used in API answers (default http(s)://LISTEN)"),
    I("server", workers, 0, 64, "event-loop threads (0 = one per core)"),
    B("server", demo, "create a live demo Space with a synthetic speaker"),
    I("server", space_retire_s, 0, 31536000,
      "seconds an ended Space stays in memory; then its replay comes from disk and its details from the store"),
    B("server", io_uring, "send to listeners in batches with io_uring where the kernel allows (else one sendmsg each)"),
    S("tls", tls_cert, "PEM certificate chain (leaf first); with tls_key, every route is served over HTTPS"),
    S("tls", tls_key, "PEM private key of tls_cert (ECDSA P-256 recommended: cheapest handshakes)"),
    S("tls", listen_tls, "HOST:PORT for HTTPS beside listen; empty with a certificate: listen itself is HTTPS"),
    B("tls", tls_redirect, "with listen_tls: the plain port answers every request but /healthz with a 308 to https"),
    I("tls", tls_hsts_max_age, 0, 63072000,
      "seconds browsers must use https only for this host (Strict-Transport-Security on HTTPS answers; 0 = none)"),
    B("tls", tls_hsts_subdomains, "with tls_hsts_max_age: the rule covers every subdomain too (includeSubDomains)"),
    S("rtc", rtc_listen, "UDP HOST:PORT for WebRTC media (WHIP/WHEP); empty = the listen address, off = none"),
    S("rtc", rtc_candidate, "IP:PORT announced to WebRTC peers (behind NAT); empty = the bound address"),
    I("rtc", rtc_max_sessions, 1, 100000,
      "WebRTC sessions (WHIP + WHEP), server-wide (a speaker has one of each; a new one replaces the old)"),
    I("limits", max_connections, 16, 1000000, "open connections, server-wide"),
    I("limits", reserved_fds, 0, 10000, "connections kept back for speakers, hosts and the API"),
    I("limits", max_listeners, 1, 1000000, "direct-stream listeners, server-wide"),
    I("limits", max_listeners_per_space, 1, 1000000, "direct-stream listeners per Space (default for new Spaces)"),
    I("limits", max_conns_per_ip, 0, 1000000,
      "open connections per client address (IPv6: per /64; 0 = a quarter of max_connections)"),
    I("limits", join_rate, 1, 1000000, "listener joins admitted per second"),
    I("limits", join_burst, 1, 1000000, "listener joins admitted at once before join_rate applies"),
    I("limits", join_rate_per_ip, 0, 1000000, "listener joins per second from one address (0 = a quarter of join_rate)"),
    I("limits", join_burst_per_ip, 0, 1000000, "listener joins at once from one address (0 = a quarter of join_burst)"),
    I("limits", max_event_streams, 0, 1000000,
      "event streams (SSE), server-wide (0 = half of max_connections; never more than that)"),
    I("limits", max_event_streams_per_space, 0, 1000000, "event streams of one Space (0 = max_event_streams)"),
    I("limits", max_event_streams_per_ip, 1, 100000, "event streams from one client address"),
    I("limits", fair_share_reserve, 0, 100000,
      "fair shares: places kept free, per Space below its share, against Spaces above theirs (0 = off)"),
    I("limits", request_ttl_s, 5, 86400, "a request to speak nobody acted on lapses after this (it may be made again)"),
    I("limits", header_timeout_ms, 100, 600000, "time for a client to send a complete request head"),
    I("limits", idle_timeout_ms, 100, 3600000, "keep-alive connections idle this long are closed"),
    I("limits", max_header_bytes, 1024, 65536, "largest request head"),
    I("limits", max_body_bytes, 1024, 16777216, "largest API request body"),
    I("limits", listener_max_lag_ms, 200, 60000, "a listener this far behind live is skipped forward"),
    I("limits", listener_drop_ms, 1000, 600000,
      "a listener, or any response, that takes no bytes for this long is dropped"),
    I("limits", token_ttl_s, 60, 31536000, "lifetime of host and speaker tokens"),
    I("audio", bitrate, 6000, 256000, "Opus bitrate of the mix in bit/s"),
    I("audio", page_ms, 20, 1000, "duration of one Ogg page of the live stream"),
    S("audio", lobby_file, "Ogg/Opus file played in the lobby (empty: built-in pattern)"),
    B("audio", record, "record Spaces by default"),
    I("audio", hls_aac_idle_s, 1, 86400, "the AAC rendition of HLS is encoded until nobody asked for it this long"),
    I("audio", lobby_idle_s, 1, 86400, "a scheduled Space's lobby nobody listened to this long gives its audio state up"),
};

void sc_config_defaults(sc_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8000");
    snprintf(c->data, sizeof c->data, "./data");
    snprintf(c->log_level, sizeof c->log_level, "info");
#ifdef SC_WEB_ROOT
    snprintf(c->web_root, sizeof c->web_root, "%s", SC_WEB_ROOT);
#endif
    c->workers = 0;
    c->io_uring = 1;
    c->space_retire_s = 600;
    c->rtc_max_sessions = 256;
    c->max_connections = 19000;
    c->reserved_fds = 200;
    c->max_listeners = 18000;
    c->max_listeners_per_space = 18000;
    c->max_conns_per_ip = 0; /* a quarter of max_connections: one address never takes them all */
    c->max_event_streams_per_ip = 32;
    c->fair_share_reserve = 8;
    c->request_ttl_s = 300;
    c->join_rate = 2000;
    c->join_burst = 6000;
    c->header_timeout_ms = 5000;
    c->idle_timeout_ms = 30000;
    c->max_header_bytes = 8192;
    c->max_body_bytes = 65536;
    c->listener_max_lag_ms = 3000;
    c->listener_drop_ms = 15000;
    c->token_ttl_s = 7 * 24 * 3600;
    c->bitrate = 32000;
    c->page_ms = 100;
    c->record = 1;
    c->hls_aac_idle_s = 60;
    c->lobby_idle_s = 60;
}

static const sc_opt_t *opt_find(const char *section, const char *key)
{
    for (size_t i = 0; i < SC_ARRAY_LEN(sc_opts); i++)
        if ((!section || strcmp(sc_opts[i].section, section) == 0) && strcmp(sc_opts[i].key, key) == 0)
            return &sc_opts[i];
    return NULL;
}

static int opt_set(sc_config_t *c, const sc_opt_t *o, const char *value, char *err, size_t errsz)
{
    char *dst = (char *)c + o->off;
    if (o->type == OPT_STR) {
        if (strlen(value) >= o->size) {
            snprintf(err, errsz, "%s: value too long", o->key);
            return -1;
        }
        snprintf(dst, o->size, "%s", value);
        return 0;
    }
    long v;
    if (o->type == OPT_BOOL && (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))) {
        v = 1;
    } else if (o->type == OPT_BOOL && (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))) {
        v = 0;
    } else {
        char *end;
        errno = 0;
        v = strtol(value, &end, 10);
        if (errno || end == value || *end) {
            snprintf(err, errsz, "%s: not a number: %s", o->key, value);
            return -1;
        }
    }
    if (v < o->min || v > o->max) {
        snprintf(err, errsz, "%s: %ld is outside %ld..%ld", o->key, v, o->min, o->max);
        return -1;
    }
    *(int *)dst = (int)v;
    return 0;
}

typedef struct ini_ctx {
    sc_config_t *c;
    char *err;
    size_t errsz;
    int failed;
    const char *only_section;
} ini_ctx_t;

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx_t *x = user;
    if (x->only_section && strcmp(section, x->only_section) != 0)
        return 1;
    const sc_opt_t *o = opt_find(section, name);
    if (!o) {
        snprintf(x->err, x->errsz, "unknown setting [%s] %s", section, name);
        x->failed = 1;
        return 0;
    }
    /* inih ends a value at " ;" only; a '#' after whitespace starts a comment too, as at the start
     * of a line (docs/configuration.md): a '#' inside a value (a path) stays */
    char buf[1024];
    size_t n = 0;
    while (value[n] && n + 1 < sizeof buf) {
        if (value[n] == '#' && n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
            break;
        buf[n] = value[n];
        n++;
    }
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (value[0] && strlen(value) < sizeof buf)
        value = buf;
    if (opt_set(x->c, o, value, x->err, x->errsz) < 0) {
        x->failed = 1;
        return 0;
    }
    return 1;
}

static int load(sc_config_t *c, const char *path, const char *only, char *err, size_t errsz)
{
    ini_ctx_t x = { c, err, errsz, 0, only };
    int r = ini_parse(path, on_ini, &x);
    if (x.failed)
        return -1;
    if (r < 0) {
        snprintf(err, errsz, "cannot read %s", path);
        return -1;
    }
    if (r > 0) {
        snprintf(err, errsz, "%s:%d: syntax error", path, r);
        return -1;
    }
    return 0;
}

int sc_config_load_string(sc_config_t *c, const char *text, char *err, size_t errsz)
{
    ini_ctx_t x = { c, err, errsz, 0, NULL };
    int r = ini_parse_string(text, on_ini, &x);
    if (x.failed)
        return -1;
    if (r != 0) {
        snprintf(err, errsz, "line %d: syntax error", r);
        return -1;
    }
    return 0;
}

int sc_config_load_file(sc_config_t *c, const char *path, char *err, size_t errsz)
{
    return load(c, path, NULL, err, errsz);
}

int sc_config_reload_limits(sc_config_t *c, const char *path, char *err, size_t errsz)
{
    sc_config_t tmp = *c;
    if (load(&tmp, path, "limits", err, errsz) < 0)
        return -1;
    *c = tmp;
    return 0;
}

int sc_config_apply_flag(sc_config_t *c, const char *arg, const char *next, int *used, char *err, size_t errsz)
{
    *used = 0;
    if (strncmp(arg, "--", 2) != 0)
        return 1;
    char key[64];
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (klen == 0 || klen >= sizeof key)
        return 1;
    for (size_t i = 0; i < klen; i++)
        key[i] = arg[2 + i] == '-' ? '_' : arg[2 + i];
    key[klen] = '\0';
    const sc_opt_t *o = opt_find(NULL, key);
    if (!o)
        return 1;
    const char *value = eq ? eq + 1 : NULL;
    if (!value && o->type == OPT_BOOL) {
        value = "1";
    } else if (!value) {
        if (!next) {
            snprintf(err, errsz, "--%s needs a value", arg + 2);
            return -1;
        }
        value = next;
        *used = 1;
    }
    *used += 1;
    return opt_set(c, o, value, err, errsz) < 0 ? -1 : 0;
}

void sc_config_print_help(FILE *out)
{
    sc_config_t d;
    sc_config_defaults(&d);
    const char *section = "";
    for (size_t i = 0; i < SC_ARRAY_LEN(sc_opts); i++) {
        const sc_opt_t *o = &sc_opts[i];
        if (strcmp(section, o->section) != 0) {
            section = o->section;
            fprintf(out, "\n  [%s]\n", section);
        }
        char flag[64];
        size_t k = 0;
        for (const char *p = o->key; *p && k < sizeof flag - 1; p++)
            flag[k++] = *p == '_' ? '-' : *p;
        flag[k] = '\0';
        const char *dst = (const char *)&d + o->off;
        char def[64];
        if (o->type == OPT_STR)
            snprintf(def, sizeof def, "%s", dst);
        else
            snprintf(def, sizeof def, "%d", *(const int *)dst);
        fprintf(out, "  --%-26s %s (default: %s)\n", flag, o->help, def[0] ? def : "none");
    }
}

/* --- the configuration in force ----------------------------------------------------------- */

typedef struct sc_config_snap {
    sc_config_t cfg;
    struct sc_config_snap *older; /* every snapshot ever published, freed at exit */
} sc_config_snap_t;

static _Atomic(sc_config_snap_t *) sc_cfg_now;
static pthread_mutex_t sc_cfg_mu = PTHREAD_MUTEX_INITIALIZER; /* publishers only */
static pthread_once_t sc_cfg_once = PTHREAD_ONCE_INIT;
static sc_config_snap_t sc_cfg_defaults;

static void defaults_once(void) { sc_config_defaults(&sc_cfg_defaults.cfg); }

const sc_config_t *sc_config(void)
{
    sc_config_snap_t *s = atomic_load_explicit(&sc_cfg_now, memory_order_acquire);
    if (s)
        return &s->cfg;
    pthread_once(&sc_cfg_once, defaults_once);
    return &sc_cfg_defaults.cfg;
}

void sc_config_publish(const sc_config_t *c)
{
    sc_config_snap_t *s = sc_malloc(sizeof *s);
    s->cfg = *c;
    pthread_mutex_lock(&sc_cfg_mu);
    s->older = atomic_load_explicit(&sc_cfg_now, memory_order_relaxed);
    atomic_store_explicit(&sc_cfg_now, s, memory_order_release);
    pthread_mutex_unlock(&sc_cfg_mu);
}

void sc_config_release_all(void)
{
    pthread_mutex_lock(&sc_cfg_mu);
    sc_config_snap_t *s = atomic_exchange(&sc_cfg_now, NULL);
    pthread_mutex_unlock(&sc_cfg_mu);
    while (s) {
        sc_config_snap_t *older = s->older;
        free(s);
        s = older;
    }
}
