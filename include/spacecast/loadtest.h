/* loadtest.h — `spacecast loadtest`: options, the per-listener record children send to the
 * parent, and the worker (one forked process, one epoll loop) that plays many listeners. */
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
    /* TLS (https URL or --tls): each listener's handshake is timed; --tls-resume makes every
     * listener a returning one (a session from one full handshake per process) */
    int tls, tls_resume, insecure;
    char ca_file[512];           /* verify against these CAs; "" = the system's */
} sc_lt_opts_t;

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
} sc_lt_result_t;

/** Counters every child updates in shared memory, for the progress line. */
typedef struct sc_lt_progress {
    atomic_int connected, refused, failed;
    atomic_uint_least64_t bytes, stalls;
    atomic_int details_n;
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

/** Run listeners [first, first+count) in this process; results go to fd. Returns exit status. */
int sc_lt_worker(const sc_lt_opts_t *o, int first, int count, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms);
/** Run the attack modes and the metadata hammer; details latencies go to fd as floats. */
int sc_lt_attacker(const sc_lt_opts_t *o, int fd, sc_lt_progress_t *prog, uint64_t t_end_ms);

#endif
