/* loadtest.h — `spacecast loadtest`: options, the per-listener record children send to the
 * parent, the worker (one forked process, one epoll loop) that plays many listeners, and the
 * many-Spaces mode: Spaces created and started over the API, their speakers publishing Ogg/Opus
 * from one process, HLS pollers (loadtest_setup.c, loadtest_speakers.c). */
#ifndef SC_LOADTEST_H
#define SC_LOADTEST_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>

enum { SC_LT_RETRY_NONE = 0, SC_LT_RETRY_NAIVE, SC_LT_RETRY_BACKOFF };

typedef struct sc_lt_opts {
    struct sockaddr_in target;   /* loopback, or --allow-host */
    char host[128];
    char live_path[256];         /* /spaces/ID/live.ogg */
    char api_path[256];          /* /api/spaces/ID */
    int listeners, procs, source_addrs;
    uint32_t source_base;        /* first source address, host order: 127.x.y.2 (see loadtest.c) */
    int join_rate, storm;
    int duration_s, timeout_s, stall_ms;
    int retry;
    int flood, slowloris, garbage_rate, oversized_rate, hammer_rate;
    int quiet;
    uint64_t window_ms;          /* bytes are compared from here (all joins done) to the end */
    /* many Spaces (--spaces): listener i listens to Space i % nspaces */
    int nspaces, speakers, per_space, hls_per_space;
    int scheduled, no_record, api_conns, create_rate, page_ms;
    int settle_ms;               /* listeners start this long after the speakers */
    char admin_key[128];
    const char *ids_in, *ids_out;
    const char *icecast_pw;      /* --icecast: Space i is the mount /lt<PID>x<i>.ogg, this its source password */
    struct sc_lt_space *spaces; /* set up by the parent before it forks: children read it */
    /* TLS (https URL or --tls): each listener's handshake is timed; --tls-resume makes every
     * listener a returning one (a session from one full handshake per process) */
    int tls, tls_resume, insecure;
    char ca_file[512];           /* verify against these CAs; "" = the system's */
} sc_lt_opts_t;

#define SC_LT_TOKEN 256 /* a token as the server signs it (SC_TOKEN_MAX) */
#define SC_LT_MAX_SPEAKERS 15 /* per Space: every speaker slot but the host's */

/** One Space of the many-Spaces mode, as the setup left it. */
typedef struct sc_lt_space {
    char id[33];
    int ok;                  /* created (and started, speakers invited) */
    char host[SC_LT_TOKEN];
    char (*tokens)[SC_LT_TOKEN]; /* speakers' tokens (o->speakers of them) */
} sc_lt_space_t;

/** What the setup measured: creations and their latency. */
typedef struct sc_lt_setup_stats {
    size_t created, failed, requests, retried;
    double create_per_s;
    float create_p50_ms, create_p99_ms, create_max_ms;
} sc_lt_setup_stats_t;

/** One listener's outcome, written by a child to the parent's pipe. */
typedef struct sc_lt_result {
    int32_t status;        /* last HTTP status; 0 if never answered */
    int32_t attempts;
    float join_ms;         /* first attempt → first body byte; < 0 if never joined */
    float whole_hold;      /* 1 if connected through the whole common window */
    uint64_t bytes;
    uint64_t window_bytes; /* bytes inside the common window, for the spread check */
    uint32_t stalls;
    uint8_t ogg_ok;        /* the body started with "OggS" */
    uint8_t redirected;    /* redirects followed (a full origin sending us to an edge), capped */
    uint8_t resumed;       /* TLS: the last handshake resumed a session */
    uint8_t pad;
    float hs_ms;           /* TLS: connect → handshake done, of the first handshake; < 0 if none */
    int32_t space;         /* which Space (many-Spaces mode), else 0 */
} sc_lt_result_t;

/** Counters every child updates in shared memory, for the progress line. */
typedef struct sc_lt_progress {
    atomic_int connected, refused, failed;
    atomic_uint_least64_t bytes, stalls;
    atomic_int details_n;
    /* many-Spaces mode: the speaker and HLS process */
    atomic_int speakers_up, speaker_refused, speaker_reconnects;
    atomic_uint_least64_t speaker_pages, speaker_late, speaker_dropped;
    atomic_uint_least64_t hls_playlists, hls_segments, hls_failed;
    atomic_int handshakes, hs_failed;  /* TLS handshakes done / failed (every attempt) */
    atomic_int tls_error_set;
    char tls_error[200];               /* the first handshake failure's reason */
} sc_lt_progress_t;

/** Details latency samples from the hammer (ms), written by the attack child. */
#define SC_LT_MAX_DETAILS 200000

/** The Location of a redirect in a response head (NUL-terminated): "Location: http(s)://A.B.C.D[:PORT]/path".
 *  Accepted only if the address is loopback or *target (the rule for the URL given); fills *to and
 *  path (NUL-terminated, starts with '/'). Returns 1 (http), 2 (https), or 0 if there is none or
 *  it is not acceptable. */
int sc_lt_parse_location(const char *head, const struct in_addr *target, struct sockaddr_in *to, char *path,
                         size_t pathcap);

/** The path listener idx asks for: the URL's stream, or its Space's in the many-Spaces mode. */
const char *sc_lt_live_path(const sc_lt_opts_t *o, int idx, char *buf, size_t cap);

/** Many-Spaces mode, in the parent before it forks: read --ids FILE, or create o->nspaces Spaces
 *  over the API (started unless --scheduled, with o->speakers speakers invited), write --ids-out.
 *  Fills o->spaces. 0, or -1 (said on stderr) when nothing usable came of it. */
int sc_lt_setup(sc_lt_opts_t *o, sc_lt_setup_stats_t *st);
/** The speakers (o->speakers per Space, each an Ogg/Opus tone over the Icecast ingest, paced in
 *  real time) and the HLS pollers, all in this process until t_end_ms. Returns exit status. */
int sc_lt_speakers(const sc_lt_opts_t *o, sc_lt_progress_t *prog, uint64_t t_end_ms);

/** Run listeners [first, first+count) in this process; results go to fd. Returns exit status. */
int sc_lt_worker(const sc_lt_opts_t *o, int first, int count, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms);
/** Run the attack modes and the metadata hammer; details latencies go to fd as floats. */
int sc_lt_attacker(const sc_lt_opts_t *o, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms);

#endif
