/* config.h — every setting of `spacecast serve`: embedded defaults, then the INI file,
 * then command-line flags (each INI key `a_b` in any section is also the flag `--a-b`). */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SC_ADMIN_KEY_MIN 16 /* characters: a shorter admin key is refused at start */

typedef struct sc_config {
    /* [server] */
    char listen[128];        /* HOST:PORT for everyone */
    char api_listen[128];    /* optional second port: hosts, speakers and the API only */
    char data[512];          /* data dir: SQLite db, recordings, admin.key */
    char admin_key[128];     /* else SPACECAST_ADMIN_KEY, else DATA/admin.key */
    char log_level[16];
    char web_root[512];      /* static web app files; default: the source tree's web/ */
    char relay_from[256];    /* origin URL: run as an edge */
    char relay_ca_file[512]; /* CAs an https origin is verified against; "" = the system's */
    char public_url[256];    /* base URL in API answers; default http://LISTEN */
    int workers;             /* event-loop threads; 0 = one per core */
    int io_uring;            /* batch listener sends with io_uring where the kernel allows */
    int demo;
    int space_retire_s;      /* an ended Space stays in memory this long, then on disk and in the store only */
    /* [tls] */
    char tls_cert[512];      /* PEM: the certificate, then its chain */
    char tls_key[512];       /* PEM private key */
    char listen_tls[128];    /* HOST:PORT for HTTPS; "" with a certificate = listen itself is HTTPS */
    int tls_redirect;        /* the plain port answers 308 to https (but /healthz) */
    int tls_hsts_max_age;    /* s; > 0: HTTPS answers carry Strict-Transport-Security */
    int tls_hsts_subdomains; /* ... with includeSubDomains */
    /* [rtc] */
    char rtc_listen[128];    /* UDP HOST:PORT of WebRTC media; "" = the listen address, "off" = no WebRTC */
    char rtc_candidate[128]; /* IP:PORT peers are told to send to (NAT, relays); "" = the bound address */
    int rtc_max_sessions;    /* WHIP + WHEP sessions, server-wide */
    /* [limits] */
    int max_connections;     /* server-wide open connections */
    int reserved_fds;        /* kept back for speakers, hosts and the API */
    int max_listeners;       /* server-wide direct-stream listeners */
    int max_listeners_per_space;
    int max_conns_per_ip;
    int join_rate;           /* listener joins admitted per second (token bucket) */
    int join_burst;
    int join_rate_per_ip;    /* 0 = join_rate / 4 */
    int join_burst_per_ip;   /* 0 = join_burst / 4 */
    int max_event_streams;   /* 0 = max_connections / 2 (and never more) */
    int fair_share_reserve;  /* fair shares (admit.h): least kept free per Space below its share; 0 = off */
    int max_event_streams_per_space; /* 0 = max_event_streams */
    int max_event_streams_per_ip;
    int request_ttl_s;       /* an open request to speak lapses after this */
    int header_timeout_ms;
    int idle_timeout_ms;
    int max_header_bytes;
    int max_body_bytes;
    int listener_max_lag_ms; /* a listener this far behind is skipped forward */
    int listener_drop_ms;    /* a listener that accepts nothing for this long is dropped */
    int token_ttl_s;
    /* [audio] */
    int bitrate;
    int page_ms;             /* Ogg page duration of the live stream */
    char lobby_file[512];    /* Ogg/Opus waiting audio; empty = built-in pattern */
    int record;              /* record Spaces unless created with record=false */
    int hls_aac_idle_s;      /* AAC HLS stops this long after its last request (hls.h) */
    int lobby_idle_s;        /* a scheduled Space's room goes this long after its lobby emptied */
} sc_config_t;

/** Fill c with the embedded defaults. */
void sc_config_defaults(sc_config_t *c);
/** Load an INI file over c. Returns 0, or -1 with a message in err. */
int sc_config_load_file(sc_config_t *c, const char *path, char *err, size_t errsz);
/** The same from INI text in memory (fuzzed). */
int sc_config_load_string(sc_config_t *c, const char *text, char *err, size_t errsz);
/** Apply one flag `--name[=value]` (value taken from *next when needed; *used tells how many
 * argv entries were consumed). Returns 0, 1 if not a config flag, -1 with err on a bad value. */
int sc_config_apply_flag(sc_config_t *c, const char *arg, const char *next, int *used, char *err, size_t errsz);
/** Print every key with its default and help, for --help. */
void sc_config_print_help(FILE *out);
/** Reload only the [limits] section from path into c (SIGHUP). */
int sc_config_reload_limits(sc_config_t *c, const char *path, char *err, size_t errsz);

/* --- the configuration in force ---------------------------------------------------------------
 * Every thread reads settings through sc_config(): an immutable snapshot, swapped whole by
 * sc_config_publish (SIGHUP), so a reader sees the old or the new one, never a torn mix. */

/** The configuration in force: never NULL (the embedded defaults until one is published).
 *  The snapshot stays valid until sc_config_release_all, so it may be held across calls. */
const sc_config_t *sc_config(void);
/** Publish a copy of c as the configuration in force (thread-safe). Earlier snapshots are
 *  kept (readers hold them without a reference) until sc_config_release_all. */
void sc_config_publish(const sc_config_t *c);
/** Free every snapshot and go back to the defaults; only when no other thread runs (exit, tests). */
void sc_config_release_all(void);

#endif
