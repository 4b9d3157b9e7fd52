/* rtc.c — the WebRTC media plane (see rtc.h): the UDP socket, its thread and loop, and the
 * sessions on it. Every session is an ICE-lite, BUNDLE + rtcp-mux, DTLS-SRTP Opus peer:
 *
 *   browser ──STUN binding (USERNAME ours:theirs, MESSAGE-INTEGRITY over our ice-pwd)──▶ us
 *          ◀─success (XOR-MAPPED-ADDRESS): that address is now the session's peer────────
 *          ──DTLS ClientHello … Finished (its certificate must match the SDP fingerprint)─▶
 *          ──SRTP Opus (WHIP) into the speaker's jitter buffer / ◀──SRTP mix-minus (WHEP)──
 *
 * Threads: the HTTP workers only create sessions (under sc_rtc.mu) and post deletions; the
 * media thread owns everything else, so a session needs no lock of its own. Engine packets
 * for WHEP come through a mix-minus sink whose loop is this one. */
#include "spacecast/rtc.h"
#include "spacecast/admit.h"
#include "spacecast/common.h"
#include "spacecast/addr.h"
#include "spacecast/dtls.h"
#include "spacecast/ingest.h"
#include "spacecast/log.h"
#include "spacecast/loop.h"
#include "spacecast/metrics.h"
#include "spacecast/minus.h"
#include "spacecast/red.h"
#include "spacecast/rtp.h"
#include "spacecast/stun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define SC_RTC_TICK_MS 20           /* DTLS retransmissions, consent, removal, RTCP */
#define SC_RTC_CONNECT_MS 30000     /* ICE + DTLS must be done this long after the offer */
#define SC_RTC_CONSENT_MS 30000     /* RFC 7675: no binding request for 30 s, consent is gone */
#define SC_RTC_SILENT_MS 10000      /* nothing at all from the peer (a closed tab sends no goodbye) */
#define SC_RTC_CHECK_MS 200         /* how soon removal, replacement or the end is noticed */
#define SC_RTC_RTCP_MS 1000         /* receiver / sender report interval */
#define SC_RTC_DGRAM 1500
#define SC_RTC_READ_BATCH 256       /* datagrams per readable event, then other work */
#define SC_RTC_JITTER_MS 40         /* RTP comes paced, not in TCP's lumps: two packets of cushion, FEC's next one in hand */
#define SC_RTC_MAX_PAIRS 4          /* browser addresses remembered per session (host, loopback, ...) */
#define SC_RTC_MAX_PER_SPACE (2 * SC_SPACE_MAX_SPEAKERS) /* a WHIP and a WHEP for each speaker */

typedef enum sc_rtc_state {
    SC_RTC_NEW = 0,  /* answer sent, waiting for ICE */
    SC_RTC_ICE,      /* a binding request came: the peer address is known */
    SC_RTC_SECURE,   /* DTLS done, SRTP keyed: media flows */
} sc_rtc_state_t;

typedef struct sc_rtc_session {
    struct sc_rtc_session *next;    /* sc_rtc.sessions, under sc_rtc.mu */
    char id[SC_RTC_ID_LEN + 1];
    sc_rtc_kind_t kind;
    sc_rtc_state_t state;
    atomic_int closing;             /* DELETE asked (an HTTP thread) or BYE: closed at the next tick */
    char ufrag[9], pwd[25];         /* ours */
    char remote_ufrag[257];
    uint8_t remote_fp[32];
    int pt;                         /* the offer's Opus payload type */
    int red_pt;                     /* its RED payload type, answered for WHIP; -1: plain Opus only */
    /* the speaker */
    sc_space_t *space;
    int index;
    uint32_t token_gen;
    char name[SC_TOKEN_NAME_MAX + 1];
    sc_ingest_slot_t slot;          /* WHIP, once SECURE */
    sc_minus_sink_t *sink;          /* WHEP, once SECURE */
    /* transport */
    struct sockaddr_in6 peer;       /* where we send: the pair the browser nominated */
    int have_peer;
    struct sockaddr_in6 verified[SC_RTC_MAX_PAIRS]; /* addresses that passed a check: we accept from these */
    int nverified;
    int move_refused;               /* a late nomination was ignored (logged once) */
    sc_dtls_t *dtls;
    sc_srtp_t *srtp;
    uint64_t created_ms, consent_ms, check_ms, rtcp_ms, heard_ms;
    /* RTP */
    uint32_t remote_ssrc;
    int have_remote_ssrc;
    sc_rtp_rx_t rx;
    int rx_any;                     /* sequence numbers had (as a packet or a RED copy): rx_top and */
    uint16_t rx_top;                /* the 63 before it (bit i: rx_top - i), so a copy of a packet */
    uint64_t rx_bits;               /* that came is never pushed (it would teach the jitter target) */
    uint64_t red_recovered;         /* packets that came only as a RED copy */
    uint32_t ssrc, ts0;             /* ours (WHEP) */
    uint16_t seq0;
    uint32_t sent_packets, sent_octets, last_ts;
    uint64_t packets_in, packets_out;
} sc_rtc_session_t;

static struct {
    int fd;
    sc_io_t io;
    sc_loop_t *loop;
    pthread_t thread;
    atomic_int running;
    sc_timer_t tick;
    sc_dtls_cert_t *cert;
    char candidate_ip[128];         /* configured (rtc_candidate) or from the bound address; "" = ask the request */
    int candidate_port;
    int max_sessions;
    pthread_mutex_t mu;             /* sessions list and nsessions */
    sc_rtc_session_t *sessions;
    int nsessions;
    atomic_int connected;
    _Atomic uint64_t packets_in, packets_out, red_recovered;
    _Atomic uint64_t rejected[SC_RTC_REJ_N];
} sc_rtc = { .fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

static const char *const sc_rtc_reject_names[] = {
    "bad_sdp",          "full",             "stun_malformed",   "stun_unknown_user",   "stun_integrity",
    "dtls_unknown_source", "dtls_failed",   "rtp_unknown_source", "rtp_before_dtls",   "srtp_auth",
    "rtp_malformed",    "rtp_payload_type", "rtp_ssrc",         "unknown_protocol",
};

_Static_assert(SC_ARRAY_LEN(sc_rtc_reject_names) == SC_RTC_REJ_N, "a name for every rejection reason");

const char *sc_rtc_reject_name(sc_rtc_reject_t r) { return r < SC_RTC_REJ_N ? sc_rtc_reject_names[r] : "?"; }
void sc_rtc_count_reject(sc_rtc_reject_t why) { atomic_fetch_add_explicit(&sc_rtc.rejected[why], 1, memory_order_relaxed); }
int sc_rtc_enabled(void) { return sc_rtc.running; }

void sc_rtc_get_stats(sc_rtc_stats_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&sc_rtc.mu);
    out->sessions = sc_rtc.nsessions;
    pthread_mutex_unlock(&sc_rtc.mu);
    out->connected = atomic_load(&sc_rtc.connected);
    out->packets_in = atomic_load(&sc_rtc.packets_in);
    out->packets_out = atomic_load(&sc_rtc.packets_out);
    out->red_recovered = atomic_load(&sc_rtc.red_recovered);
    for (int i = 0; i < SC_RTC_REJ_N; i++)
        out->rejected[i] = atomic_load(&sc_rtc.rejected[i]);
}

static void rtc_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_rtc_stats_t rtc;
    sc_rtc_get_stats(&rtc);
    sc_metrics_printf(b, "# HELP spacecast_rtc_sessions WebRTC (WHIP/WHEP) sessions, and those with media flowing.\n"
                         "# TYPE spacecast_rtc_sessions gauge\nspacecast_rtc_sessions %d\n"
                         "# HELP spacecast_rtc_sessions_connected WebRTC sessions with media flowing.\n"
                      "# TYPE spacecast_rtc_sessions_connected gauge\nspacecast_rtc_sessions_connected %d\n",
                      rtc.sessions, rtc.connected);
    sc_metrics_printf(b, "# HELP spacecast_rtc_packets_total WebRTC media packets, by direction.\n"
                         "# TYPE spacecast_rtc_packets_total counter\nspacecast_rtc_packets_total{dir=\"in\"} %llu\n"
                         "spacecast_rtc_packets_total{dir=\"out\"} %llu\n",
                      (unsigned long long)rtc.packets_in, (unsigned long long)rtc.packets_out);
    sc_metrics_printf(b, "# HELP spacecast_rtc_red_recovered_total WHIP packets lost (or not yet come) and "
                         "filled from a RED copy (RFC 2198) in a later packet.\n"
                         "# TYPE spacecast_rtc_red_recovered_total counter\nspacecast_rtc_red_recovered_total %llu\n",
                      (unsigned long long)rtc.red_recovered);
    sc_metrics_printf(b, "# HELP spacecast_rtc_rejected_total WebRTC offers and datagrams refused, by reason.\n"
                         "# TYPE spacecast_rtc_rejected_total counter\n");
    for (int i = 0; i < SC_RTC_REJ_N; i++)
        sc_metrics_printf(b, "spacecast_rtc_rejected_total{reason=\"%s\"} %llu\n", sc_rtc_reject_names[i],
                          (unsigned long long)rtc.rejected[i]);
}

/* --- small helpers ---------------------------------------------------------------------- */


static void random_hex(char *out, size_t bytes)
{
    uint8_t r[32];
    RAND_bytes(r, (int)bytes);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static int same_addr(const struct sockaddr_in6 *a, const struct sockaddr_in6 *b)
{
    return a->sin6_port == b->sin6_port && !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr);
}

/* STUN reports an IPv4 peer as IPv4, not as the v4-mapped address our dual-stack socket sees. */
static socklen_t plain_addr(const struct sockaddr_in6 *a, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        v4->sin_port = a->sin6_port;
        memcpy(&v4->sin_addr, &a->sin6_addr.s6_addr[12], 4);
        return sizeof *v4;
    }
    memcpy(out, a, sizeof *a);
    return sizeof *a;
}

static void addr_text(const struct sockaddr_in6 *a, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    snprintf(out, n, "%s:%u", sc_addr_str(&a->sin6_addr, ip, sizeof ip), ntohs(a->sin6_port));
}

static void send_to_peer(const sc_rtc_session_t *ss, const uint8_t *p, size_t n)
{
    if (!ss->have_peer)
        return;
    /* UDP: a full socket buffer loses this datagram, as the network could; never block */
    sendto(sc_rtc.fd, p, n, MSG_DONTWAIT, (const struct sockaddr *)&ss->peer, sizeof ss->peer);
}

static void send_dtls_output(sc_rtc_session_t *ss)
{
    uint8_t out[SC_RTC_DGRAM + 64];
    int n;
    while (ss->dtls && (n = sc_dtls_take(ss->dtls, out, sizeof out)) > 0)
        send_to_peer(ss, out, (size_t)n);
}

/* --- session lifetime (media thread) ----------------------------------------------------- */

static const char *kind_name(sc_rtc_kind_t k) { return k == SC_RTC_WHIP ? "whip" : "whep"; }

static void session_free(sc_rtc_session_t *ss)
{
    sc_space_unref(ss->space); /* the session's reference, from sc_rtc_session_create */
    sc_dtls_free(ss->dtls);
    sc_srtp_free(ss->srtp);
    free(ss);
}

/* Let go of everything the session holds and unlink it. */
static void session_close(sc_rtc_session_t *ss, const char *why)
{
    if (ss->dtls && sc_dtls_done(ss->dtls) && !sc_dtls_closed(ss->dtls)) {
        sc_dtls_shutdown(ss->dtls); /* the browser learns at once, not after its consent checks fail */
        send_dtls_output(ss);
    }
    uint64_t dropped = 0;
    if (ss->sink)
        dropped = sc_minus_close(ss->sink);
    if (ss->state == SC_RTC_SECURE)
        atomic_fetch_sub(&sc_rtc.connected, 1);
    if (ss->kind == SC_RTC_WHIP && ss->slot.space)
        sc_ingest_release(&ss->slot);
    pthread_mutex_lock(&sc_rtc.mu);
    for (sc_rtc_session_t **pp = &sc_rtc.sessions; *pp; pp = &(*pp)->next) {
        if (*pp == ss) {
            *pp = ss->next;
            sc_rtc.nsessions--;
            break;
        }
    }
    pthread_mutex_unlock(&sc_rtc.mu);
    sc_log_info("event=rtc_closed kind=%s space=%s speaker=%s session=%s why=%s packets_in=%llu packets_out=%llu "
                "dropped=%llu red_recovered=%llu",
                kind_name(ss->kind), ss->space->id, sc_log_q(ss->name), ss->id, why, (unsigned long long)ss->packets_in,
                (unsigned long long)ss->packets_out, (unsigned long long)dropped, (unsigned long long)ss->red_recovered);
    session_free(ss);
}

/* Is the speaker still allowed here? NULL if so, else why not. */
static const char *session_check(sc_rtc_session_t *ss)
{
    sc_space_t *s = ss->space;
    pthread_mutex_lock(&s->mu);
    const sc_speaker_t *sk = &s->speakers[ss->index];
    const char *why = NULL;
    if (s->state == SC_SPACE_ENDED)
        why = "ended";
    else if (sk->removed || sk->generation != ss->token_gen)
        why = "removed";
    else if (ss->kind == SC_RTC_WHIP && ss->slot.space && sk->ingest_gen != ss->slot.gen)
        why = "replaced";
    pthread_mutex_unlock(&s->mu);
    return why;
}

static void session_on_minus(void *owner, const uint8_t *opus, size_t len, uint16_t seq, uint32_t ts);

/* DTLS finished: key SRTP, then join the mix (WHIP) or start hearing it (WHEP). */
static int session_secure(sc_rtc_session_t *ss)
{
    uint8_t local[SC_SRTP_KEY_SALT], remote[SC_SRTP_KEY_SALT];
    if (sc_dtls_srtp_keys(ss->dtls, local, remote) != 0 || !(ss->srtp = sc_srtp_new(local, remote)))
        return -1;
    OPENSSL_cleanse(local, sizeof local);
    OPENSSL_cleanse(remote, sizeof remote);
    if (session_check(ss))
        return -1;
    if (ss->kind == SC_RTC_WHIP) {
        /* only now does an older link of this speaker (the WebSocket one) step aside */
        if (sc_ingest_claim(&ss->slot, ss->space, ss->index, ss->token_gen, 1, SC_RTC_JITTER_MS) != 0)
            return -1;
    } else {
        ss->sink = sc_minus_open(ss->space, (uint32_t)ss->index, sc_rtc.loop, session_on_minus, ss);
    }
    ss->state = SC_RTC_SECURE;
    atomic_fetch_add(&sc_rtc.connected, 1);
    char peer[80];
    addr_text(&ss->peer, peer, sizeof peer);
    sc_log_info("event=rtc_connected kind=%s space=%s speaker=%s session=%s peer=%s red=%s", kind_name(ss->kind),
                ss->space->id, sc_log_q(ss->name), ss->id, peer, ss->red_pt >= 0 ? "yes" : "no");
    return 0;
}

/* --- datagrams in (media thread) ------------------------------------------------------------ */

static sc_rtc_session_t *find_by_ufrag(const uint8_t *user, size_t n)
{
    /* USERNAME is "ours:theirs" in a request to us */
    const uint8_t *colon = memchr(user, ':', n);
    if (!colon)
        return NULL;
    size_t ours = (size_t)(colon - user);
    pthread_mutex_lock(&sc_rtc.mu);
    sc_rtc_session_t *ss = sc_rtc.sessions;
    while (ss && !(strlen(ss->ufrag) == ours && !memcmp(ss->ufrag, user, ours) &&
                   strlen(ss->remote_ufrag) == n - ours - 1 && !memcmp(ss->remote_ufrag, colon + 1, n - ours - 1)))
        ss = ss->next;
    pthread_mutex_unlock(&sc_rtc.mu);
    return ss;
}

static int is_verified(const sc_rtc_session_t *ss, const struct sockaddr_in6 *from)
{
    for (int i = 0; i < ss->nverified; i++)
        if (same_addr(&ss->verified[i], from))
            return 1;
    return 0;
}

/* Only addresses that passed a connectivity check may speak DTLS or RTP to a session. */
static sc_rtc_session_t *find_by_peer(const struct sockaddr_in6 *from)
{
    pthread_mutex_lock(&sc_rtc.mu);
    sc_rtc_session_t *ss = sc_rtc.sessions;
    while (ss && !is_verified(ss, from))
        ss = ss->next;
    pthread_mutex_unlock(&sc_rtc.mu);
    return ss;
}

static void on_stun(const uint8_t *p, size_t n, const struct sockaddr_in6 *from, uint64_t now)
{
    sc_stun_msg_t m;
    if (sc_stun_parse(p, n, &m) != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_STUN_MALFORMED);
        return;
    }
    if (m.type != SC_STUN_BINDING_REQUEST)
        return; /* indications (keepalives) and stray responses need no answer */
    sc_rtc_session_t *ss = m.username ? find_by_ufrag(m.username, m.username_len) : NULL;
    if (!ss || ss->closing) {
        /* no answer: we would be a reflector for anyone who can spoof a source address */
        sc_rtc_count_reject(SC_RTC_REJ_STUN_UNKNOWN_USER);
        return;
    }
    if (!sc_stun_check_integrity(p, n, &m, ss->pwd, strlen(ss->pwd))) {
        sc_rtc_count_reject(SC_RTC_REJ_STUN_INTEGRITY);
        return;
    }
    uint8_t out[SC_STUN_MAX_MSG];
    struct sockaddr_storage plain;
    plain_addr(from, &plain);
    int len;
    if (m.ice_controlled) /* an ICE-lite agent is always controlled: the peer must control (RFC 8445 §7.3.1.1) */
        len = sc_stun_binding_error(out, sizeof out, m.txid, 487, "Role Conflict", ss->pwd, strlen(ss->pwd));
    else
        len = sc_stun_binding_success(out, sizeof out, m.txid, (const struct sockaddr *)&plain, ss->pwd,
                                      strlen(ss->pwd));
    if (len > 0)
        sendto(sc_rtc.fd, out, (size_t)len, MSG_DONTWAIT, (const struct sockaddr *)from, sizeof *from);
    if (m.ice_controlled)
        return;
    ss->consent_ms = ss->heard_ms = now;
    /* A browser checks from each of its addresses (host, loopback, VPN...) and may send DTLS
     * and media on any pair that checked out before it nominates one: accept from all of them,
     * send to the first until the controlling agent nominates (USE-CANDIDATE), then to that one
     * (RFC 8445 §8.1.1: a lite agent follows the nomination), up to the start of DTLS. */
    pthread_mutex_lock(&sc_rtc.mu); /* find_by_peer reads these; only this thread writes them */
    if (!is_verified(ss, from)) {
        if (ss->nverified < SC_RTC_MAX_PAIRS)
            ss->verified[ss->nverified++] = *from;
        else
            ss->verified[SC_RTC_MAX_PAIRS - 1] = *from; /* a session is not a place to collect addresses */
    }
    /* Once DTLS has begun, the peer is the address the handshake runs with, and it proves
     * itself by completing it (our flights go there and only its answers finish it). A later
     * nomination could come from anyone who holds the session's ICE password (the token
     * holder) with a forged source: following it would aim our media at that address. So the
     * peer moves only before DTLS; a browser whose network changed makes a new session. */
    int refused = 0;
    if (!ss->have_peer || (m.use_candidate && !same_addr(&ss->peer, from))) {
        if (ss->dtls) {
            refused = 1;
        } else {
            ss->peer = *from;
            ss->have_peer = 1;
        }
    }
    pthread_mutex_unlock(&sc_rtc.mu);
    if (refused && !ss->move_refused) {
        char a[80];
        addr_text(from, a, sizeof a);
        sc_log_warn("event=rtc_nomination_ignored session=%s from=%s note=\"the media peer is fixed once DTLS began\"",
                    ss->id, a);
        ss->move_refused = 1;
    }
    if (ss->state == SC_RTC_NEW)
        ss->state = SC_RTC_ICE;
}

static void on_dtls(const uint8_t *p, size_t n, const struct sockaddr_in6 *from, uint64_t now)
{
    sc_rtc_session_t *ss = find_by_peer(from);
    if (!ss || ss->closing) {
        sc_rtc_count_reject(SC_RTC_REJ_DTLS_UNKNOWN_SOURCE);
        return;
    }
    ss->heard_ms = now;
    if (!ss->dtls && !(ss->dtls = sc_dtls_new(sc_rtc.cert, 1, ss->remote_fp, sizeof ss->remote_fp))) {
        ss->closing = 1;
        return;
    }
    int rc = sc_dtls_feed(ss->dtls, p, n);
    send_dtls_output(ss);
    if (rc != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_DTLS_FAILED);
        sc_log_warn("event=rtc_dtls_failed space=%s speaker=%s session=%s err=\"%s\"", ss->space->id, sc_log_q(ss->name),
                    ss->id, sc_dtls_error(ss->dtls));
        session_close(ss, "dtls_failed");
        return;
    }
    if (ss->state != SC_RTC_SECURE && sc_dtls_done(ss->dtls) && session_secure(ss) != 0) {
        session_close(ss, "refused");
        return;
    }
    if (sc_dtls_closed(ss->dtls))
        session_close(ss, "peer_closed");
}

static void on_rtcp(sc_rtc_session_t *ss, uint8_t *p, size_t n, uint64_t now)
{
    if (sc_srtp_unprotect_rtcp(ss->srtp, p, &n) != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_SRTP_AUTH);
        return;
    }
    ss->heard_ms = now;
    sc_rtcp_info_t info;
    if (sc_rtcp_parse(p, n, &info) != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_MALFORMED);
        return;
    }
    if (info.has_sr)
        sc_rtp_rx_sr(&ss->rx, info.sr_ntp_mid, now);
    if (info.bye)
        ss->closing = 1; /* the browser hung up (pc.close()) */
}

/* Note sequence number seq as had; 1 if it is new, 0 if it came before (or is too old to tell:
 * a copy that late is of no use anyway). */
static int rx_mark(sc_rtc_session_t *ss, uint16_t seq)
{
    if (!ss->rx_any) {
        ss->rx_any = 1;
        ss->rx_top = seq;
        ss->rx_bits = 1;
        return 1;
    }
    int d = (int16_t)(uint16_t)(seq - ss->rx_top);
    if (d > 0) {
        ss->rx_bits = d >= 64 ? 1 : ss->rx_bits << d | 1;
        ss->rx_top = seq;
        return 1;
    }
    if (-d >= 64 || (ss->rx_bits >> -d & 1))
        return 0;
    ss->rx_bits |= 1ull << -d;
    return 1;
}

/* A RED packet (RFC 2198): copies of the packets just before it, then its own. A copy goes to
 * the jitter buffer only when its packet never came: in time it fills a loss before its turn
 * (the buffer then has it as if it had come late), too late it teaches the buffer how long
 * to wait for the next burst. Copies that cannot be placed (a gap, another codec) are
 * skipped. */
static void on_red(sc_rtc_session_t *ss, const sc_rtp_hdr_t *h)
{
    sc_red_block_t b[SC_RED_MAX_BLOCKS];
    int n = sc_red_parse(h->payload, h->payload_len, b, SC_RED_MAX_BLOCKS);
    if (n < 0) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_MALFORMED);
        return;
    }
    for (int i = 0; i < n - 1; i++)
        if (b[i].pt == ss->pt && b[i].len > 0)
            b[i].samples = opus_packet_get_nb_samples(b[i].data, (opus_int32)b[i].len, SC_RATE);
    for (int i = sc_red_usable(b, n, (uint8_t)ss->pt); i >= 1; i--) { /* oldest first */
        const sc_red_block_t *c = &b[n - 1 - i];
        uint16_t seq = (uint16_t)(h->seq - i);
        if (!rx_mark(ss, seq))
            continue;
        sc_ingest_push(&ss->slot, seq, c->data, c->len);
        ss->red_recovered++;
        atomic_fetch_add_explicit(&sc_rtc.red_recovered, 1, memory_order_relaxed);
    }
    const sc_red_block_t *primary = &b[n - 1];
    rx_mark(ss, h->seq);
    if (primary->pt == ss->pt && primary->len > 0)
        sc_ingest_push(&ss->slot, h->seq, primary->data, primary->len);
}

static void on_rtp(uint8_t *p, size_t n, const struct sockaddr_in6 *from, uint64_t now)
{
    sc_rtc_session_t *ss = find_by_peer(from);
    if (!ss) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_UNKNOWN_SOURCE);
        return;
    }
    if (ss->state != SC_RTC_SECURE || ss->closing) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_BEFORE_DTLS);
        return;
    }
    if (sc_rtp_is_rtcp(p, n)) {
        on_rtcp(ss, p, n, now);
        return;
    }
    if (sc_srtp_unprotect(ss->srtp, p, &n) != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_SRTP_AUTH);
        return;
    }
    ss->heard_ms = now;
    sc_rtp_hdr_t h;
    if (sc_rtp_parse(p, n, &h) != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_MALFORMED);
        return;
    }
    if (ss->kind != SC_RTC_WHIP)
        return; /* a WHEP session is sendonly on our side: nothing of theirs to play */
    if (h.pt != ss->pt && (ss->red_pt < 0 || h.pt != ss->red_pt)) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_PAYLOAD_TYPE);
        return;
    }
    if (!ss->have_remote_ssrc) {
        ss->remote_ssrc = h.ssrc;
        ss->have_remote_ssrc = 1;
    } else if (h.ssrc != ss->remote_ssrc) {
        sc_rtc_count_reject(SC_RTC_REJ_RTP_SSRC); /* one audio source per WHIP session */
        return;
    }
    sc_rtp_rx_update(&ss->rx, h.seq, h.ts, (uint32_t)(now * 48));
    ss->packets_in++;
    atomic_fetch_add_explicit(&sc_rtc.packets_in, 1, memory_order_relaxed);
    if (h.payload_len == 0)
        return;
    if (h.pt == ss->red_pt) {
        on_red(ss, &h);
        return;
    }
    /* the jitter buffer orders by the RTP sequence number and recovers a lost packet from its
     * successor's in-band FEC (we answered useinbandfec=1) */
    rx_mark(ss, h.seq);
    sc_ingest_push(&ss->slot, h.seq, h.payload, h.payload_len);
}

static void on_datagram(uint8_t *p, size_t n, const struct sockaddr_in6 *from, uint64_t now)
{
    if (n == 0)
        return;
    uint8_t b = p[0]; /* RFC 7983 §7 */
    if (b <= 3 && sc_stun_is(p, n))
        on_stun(p, n, from, now);
    else if (b >= 20 && b <= 63)
        on_dtls(p, n, from, now);
    else if (b >= 128 && b <= 191)
        on_rtp(p, n, from, now);
    else
        sc_rtc_count_reject(SC_RTC_REJ_UNKNOWN_PROTOCOL);
}

static void on_readable(sc_io_t *io, uint32_t events)
{
    (void)events;
    uint8_t buf[SC_RTC_DGRAM + SC_SRTP_TRAILER];
    uint64_t now = sc_loop_now(io->loop);
    for (int i = 0; i < SC_RTC_READ_BATCH; i++) {
        struct sockaddr_in6 from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(io->fd, buf, SC_RTC_DGRAM, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            break; /* EAGAIN, or an ICMP error of an earlier send: nothing to do either way */
        if (from.sin6_family != AF_INET6)
            continue;
        on_datagram(buf, (size_t)n, &from, now);
    }
}

/* --- WHEP: the mix-minus out (media thread) ------------------------------------------------- */

static void session_on_minus(void *owner, const uint8_t *opus, size_t len, uint16_t seq, uint32_t ts)
{
    sc_rtc_session_t *ss = owner;
    if (ss->state != SC_RTC_SECURE || ss->closing)
        return;
    uint8_t pkt[SC_RTP_HEADER + SC_MINUS_MAX_OPUS + SC_SRTP_TRAILER];
    size_t n = sc_rtp_write_header(pkt, 0, (uint8_t)ss->pt, (uint16_t)(ss->seq0 + seq), ss->ts0 + ts, ss->ssrc);
    memcpy(pkt + n, opus, len);
    n += len;
    if (sc_srtp_protect(ss->srtp, pkt, &n, sizeof pkt) != 0)
        return;
    send_to_peer(ss, pkt, n);
    ss->last_ts = ss->ts0 + ts;
    ss->sent_packets++;
    ss->sent_octets += (uint32_t)len;
    ss->packets_out++;
    atomic_fetch_add_explicit(&sc_rtc.packets_out, 1, memory_order_relaxed);
}

/* --- the tick (media thread) ---------------------------------------------------------------- */

static uint64_t ntp_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t sec = (uint64_t)t.tv_sec + 2208988800ull; /* 1900 → 1970 */
    return sec << 32 | (uint64_t)(((double)t.tv_nsec / 1e9) * 4294967296.0);
}

/* RFC 3550 §6.4: the browser's sender needs our receiver report to see loss (its Opus encoder
 * turns in-band FEC up from it); a WHEP sender reports what it sent. */
static void session_rtcp(sc_rtc_session_t *ss, uint64_t now)
{
    uint8_t pkt[128];
    size_t n = 0;
    if (ss->kind == SC_RTC_WHIP) {
        sc_rtcp_block_t blk;
        if (ss->have_remote_ssrc)
            sc_rtp_rx_block(&ss->rx, ss->remote_ssrc, now, &blk);
        n = sc_rtcp_write_rr(pkt, sizeof pkt - SC_SRTP_TRAILER, ss->ssrc, ss->have_remote_ssrc ? &blk : NULL);
    } else if (ss->sent_packets) {
        n = sc_rtcp_write_sr(pkt, sizeof pkt - SC_SRTP_TRAILER, ss->ssrc, ntp_now(), ss->last_ts, ss->sent_packets,
                             ss->sent_octets);
    }
    if (n && sc_srtp_protect_rtcp(ss->srtp, pkt, &n, sizeof pkt) == 0)
        send_to_peer(ss, pkt, n);
}

/* Sessions are made on HTTP threads with sc_now_ms(); this loop's clock is the one cached at
 * the start of its iteration, so it may be a little behind a fresh session's times. */
static uint64_t since(uint64_t now, uint64_t t) { return now > t ? now - t : 0; }

static void session_tick(sc_rtc_session_t *ss, uint64_t now)
{
    if (ss->closing) {
        session_close(ss, "deleted");
        return;
    }
    if (ss->state != SC_RTC_SECURE) {
        if (since(now, ss->created_ms) >= SC_RTC_CONNECT_MS) {
            session_close(ss, ss->state == SC_RTC_NEW ? "ice_timeout" : "dtls_timeout");
            return;
        }
        if (ss->dtls && sc_dtls_timeout_ms(ss->dtls) == 0) {
            if (sc_dtls_on_timeout(ss->dtls) != 0) {
                session_close(ss, "dtls_timeout");
                return;
            }
            send_dtls_output(ss);
        }
    } else if (since(now, ss->consent_ms) >= SC_RTC_CONSENT_MS || since(now, ss->heard_ms) >= SC_RTC_SILENT_MS) {
        /* a browser sends RTCP every few seconds and a consent check every 5 s (RFC 7675) */
        session_close(ss, since(now, ss->heard_ms) >= SC_RTC_SILENT_MS ? "peer_silent" : "consent_expired");
        return;
    }
    if (since(now, ss->check_ms) >= SC_RTC_CHECK_MS) {
        ss->check_ms = now;
        const char *why = session_check(ss);
        if (why) {
            session_close(ss, why);
            return;
        }
    }
    if (ss->state == SC_RTC_SECURE && since(now, ss->rtcp_ms) >= SC_RTC_RTCP_MS) {
        ss->rtcp_ms = now;
        session_rtcp(ss, now);
    }
}

static void on_tick(sc_timer_t *t)
{
    uint64_t now = sc_loop_now(sc_rtc.loop);
    /* only this thread unlinks sessions, so the list can be walked holding next ahead */
    pthread_mutex_lock(&sc_rtc.mu);
    sc_rtc_session_t *ss = sc_rtc.sessions;
    pthread_mutex_unlock(&sc_rtc.mu);
    while (ss) {
        sc_rtc_session_t *next = ss->next;
        session_tick(ss, now);
        ss = next;
    }
    sc_timer_arm(sc_loop_timers(sc_rtc.loop), t, now, SC_RTC_TICK_MS);
}

/* --- made by the HTTP workers ----------------------------------------------------------------- */

/* Fair shares (net/admit.c) of the server's WebRTC sessions between Spaces: the total under
 * which Space s, holding mine of them, may open one more. Counted here, where the sessions are
 * (hundreds: rtc_max_sessions; a linear count per offer); caller holds sc_rtc.mu. */
static int fair_limit(const sc_space_t *s, int mine, int max)
{
    int min = sc_config()->fair_share_reserve;
    if (min <= 0)
        return max;
    struct owner {
        const sc_space_t *space;
        int n;
    } *seen = sc_malloc((sc_rtc.nsessions + 1) * sizeof *seen);
    int nseen = 0;
    for (sc_rtc_session_t *o = sc_rtc.sessions; o; o = o->next) {
        if (atomic_load(&o->closing) || o->space == s)
            continue;
        int k = 0;
        while (k < nseen && seen[k].space != o->space)
            k++;
        if (k == nseen)
            seen[nseen++] = (struct owner){ o->space, 0 };
        seen[k].n++;
    }
    int share = sc_fair_share(max, nseen + 1); /* the others, and s */
    int reserve = 0;
    for (int k = 0; k < nseen && mine >= share; k++)
        reserve += sc_fair_reserve_of(seen[k].n, share, min);
    free(seen);
    return mine < share ? max : max - reserve;
}

int sc_rtc_session_create(sc_rtc_kind_t kind, sc_space_t *s, int index, const sc_token_claims_t *claims,
                          const sc_sdp_t *offer, const char *local_ip, char *answer, size_t answer_cap,
                          char id[SC_RTC_ID_LEN + 1], int *status, const char **why)
{
    const sc_sdp_media_t *m = &offer->media[offer->audio];
    if (!m->rtcp_mux || !offer->bundle) {
        *status = 400;
        *why = "rtcp-mux and BUNDLE are required";
        sc_rtc_count_reject(SC_RTC_REJ_BAD_SDP);
        return -1;
    }
    if (offer->fp_len != 32 || strcmp(offer->fp_alg, "sha-256") != 0) {
        *status = 400;
        *why = "a sha-256 DTLS fingerprint is required";
        sc_rtc_count_reject(SC_RTC_REJ_BAD_SDP);
        return -1;
    }
    if (strcmp(offer->setup, "actpass") && strcmp(offer->setup, "active")) {
        *status = 400;
        *why = "the offerer must be able to be the DTLS client (a=setup:actpass or active)";
        sc_rtc_count_reject(SC_RTC_REJ_BAD_SDP);
        return -1;
    }
    /* WHIP: the browser must send; WHEP: it must receive */
    if ((kind == SC_RTC_WHIP && (m->dir == SC_SDP_RECVONLY || m->dir == SC_SDP_INACTIVE)) ||
        (kind == SC_RTC_WHEP && (m->dir == SC_SDP_SENDONLY || m->dir == SC_SDP_INACTIVE))) {
        *status = 400;
        *why = kind == SC_RTC_WHIP ? "a WHIP offer must send audio" : "a WHEP offer must receive audio";
        sc_rtc_count_reject(SC_RTC_REJ_BAD_SDP);
        return -1;
    }
    sc_rtc_session_t *ss = sc_calloc(1, sizeof *ss);
    ss->kind = kind;
    random_hex(ss->id, SC_RTC_ID_LEN / 2);
    sc_stun_random_ice(ss->ufrag, 8);
    sc_stun_random_ice(ss->pwd, 24);
    snprintf(ss->remote_ufrag, sizeof ss->remote_ufrag, "%s", offer->ice_ufrag);
    memcpy(ss->remote_fp, offer->fp, 32);
    ss->pt = m->opus_pt;
    ss->red_pt = kind == SC_RTC_WHIP ? m->red_pt : -1; /* we take RED in; WHEP sends plain Opus */
    ss->space = sc_space_ref(s);
    ss->index = index;
    ss->token_gen = claims->generation;
    snprintf(ss->name, sizeof ss->name, "%s", claims->name);
    RAND_bytes((uint8_t *)&ss->ssrc, sizeof ss->ssrc);
    RAND_bytes((uint8_t *)&ss->seq0, sizeof ss->seq0);
    RAND_bytes((uint8_t *)&ss->ts0, sizeof ss->ts0);
    ss->created_ms = ss->check_ms = sc_now_ms();

    uint64_t session_id;
    RAND_bytes((uint8_t *)&session_id, sizeof session_id);
    sc_sdp_local_t local = {
        .ice_ufrag = ss->ufrag,
        .ice_pwd = ss->pwd,
        .fingerprint = sc_dtls_cert_fingerprint(sc_rtc.cert),
        .setup = "passive", /* we wait for the browser's ClientHello: it knows when ICE is done */
        .cand_ip = sc_rtc.candidate_ip[0] ? sc_rtc.candidate_ip : local_ip,
        .cand_port = sc_rtc.candidate_port,
        .dir = kind == SC_RTC_WHIP ? SC_SDP_RECVONLY : SC_SDP_SENDONLY,
        .ssrc = kind == SC_RTC_WHEP ? ss->ssrc : 0,
        .session_id = session_id >> 2, /* < 2^63, as SDP wants */
        .ice_lite = 1,
        .red = ss->red_pt >= 0,
    };
    if (sc_sdp_write_answer(answer, answer_cap, offer, &local) < 0) {
        session_free(ss);
        *status = 500;
        *why = "answer too large";
        return -1;
    }
    pthread_mutex_lock(&sc_rtc.mu);
    /* A speaker has one session of each kind: a new offer replaces the one before (a reload,
     * a reconnect), so one token can never hold more than two, whatever it sends. Sessions on
     * their way out are not counted: a flood of offers cannot fill the server with them. */
    int active = 0, in_space = 0;
    for (sc_rtc_session_t *o = sc_rtc.sessions; o; o = o->next) {
        if (atomic_load(&o->closing) || (o->space == s && o->kind == kind && !strcmp(o->name, ss->name)))
            continue; /* on its way out, or about to be replaced by this one */
        active++;
        in_space += o->space == s;
    }
    int limit = fair_limit(s, in_space, sc_rtc.max_sessions);
    if (!sc_rtc.running || active >= limit || in_space >= SC_RTC_MAX_PER_SPACE) {
        pthread_mutex_unlock(&sc_rtc.mu);
        session_free(ss);
        sc_rtc_count_reject(SC_RTC_REJ_FULL);
        *status = 503;
        if (in_space >= SC_RTC_MAX_PER_SPACE)
            *why = "this Space has all the WebRTC sessions it may; use the WebSocket link";
        else if (limit < sc_rtc.max_sessions)
            *why = "this Space has its share of the WebRTC sessions, the rest is kept for other Spaces; "
                   "use the WebSocket link";
        else
            *why = "no room for another WebRTC session; use the WebSocket link";
        return -1;
    }
    for (sc_rtc_session_t *o = sc_rtc.sessions; o; o = o->next)
        if (o->space == s && o->kind == kind && !strcmp(o->name, ss->name))
            atomic_store(&o->closing, 1); /* replaced: the media thread closes it at its next tick */
    ss->next = sc_rtc.sessions;
    sc_rtc.sessions = ss;
    sc_rtc.nsessions++;
    pthread_mutex_unlock(&sc_rtc.mu);
    memcpy(id, ss->id, SC_RTC_ID_LEN + 1);
    sc_log_info("event=rtc_offer kind=%s space=%s speaker=%s session=%s", kind_name(kind), s->id, sc_log_q(ss->name),
                ss->id);
    return 0;
}

int sc_rtc_session_delete(const sc_space_t *s, const char *speaker, sc_rtc_kind_t kind, const char *id)
{
    int found = -1;
    pthread_mutex_lock(&sc_rtc.mu);
    for (sc_rtc_session_t *ss = sc_rtc.sessions; ss; ss = ss->next) {
        if (ss->space == s && ss->kind == kind && !strcmp(ss->id, id) && !strcmp(ss->name, speaker)) {
            atomic_store(&ss->closing, 1); /* the media thread closes it at its next tick */
            found = 0;
            break;
        }
    }
    pthread_mutex_unlock(&sc_rtc.mu);
    return found;
}

/* --- start and stop ---------------------------------------------------------------------- */

static void *rtc_main(void *arg)
{
    (void)arg;
    sc_loop_run(sc_rtc.loop);
    return NULL;
}

static void rtc_stop_loop(sc_loop_t *l, void *arg)
{
    (void)arg;
    sc_loop_stop(l);
}

static void rtc_shutdown(sc_loop_t *l, void *arg)
{
    (void)arg;
    sc_timer_cancel(sc_loop_timers(l), &sc_rtc.tick);
    for (;;) {
        pthread_mutex_lock(&sc_rtc.mu);
        sc_rtc_session_t *ss = sc_rtc.sessions;
        pthread_mutex_unlock(&sc_rtc.mu);
        if (!ss)
            break;
        session_close(ss, "shutdown");
    }
    /* mix-minus deliveries the engine posted before the sinks closed are queued ahead of this
     * task (the queue is FIFO) and let go of their sink references when they run */
    sc_loop_post(l, rtc_stop_loop, NULL);
}

/* "HOST:PORT" → its host part as text, when it is a concrete address (not a wildcard). */
static void concrete_host(const char *hostport, char *out, size_t n)
{
    out[0] = '\0';
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport)
        return;
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    if (!strcmp(h, "localhost"))
        h = "127.0.0.1";
    if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !h[0])
        return; /* the candidate is then the address each offer came to */
    snprintf(out, n, "%s", h);
}

int sc_rtc_start(const sc_config_t *cfg)
{
    sc_metrics_register("rtc", rtc_metrics, NULL); /* zeros when off: the series always exist */
    if (!strcmp(cfg->rtc_listen, "off"))
        return 1;
    const char *listen = cfg->rtc_listen[0] ? cfg->rtc_listen : cfg->listen;
    struct sockaddr_in6 a;
    if (sc_addr_parse(listen, &a) != 0) {
        sc_log_error("event=rtc_bad_address addr=%s", listen);
        return -1;
    }
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int zero = 0, bufsz = 1 << 20;
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        sc_log_error("event=rtc_listen_failed addr=%s errno=%d err=\"%s\"", listen, errno, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    sc_rtc.cert = sc_dtls_cert_new();
    sc_rtc.loop = sc_loop_new();
    if (!sc_rtc.cert || !sc_rtc.loop || sc_loop_add(sc_rtc.loop, &sc_rtc.io, fd, EPOLLIN, on_readable) != SC_OK) {
        close(fd);
        return -1;
    }
    sc_rtc.fd = fd;
    sc_rtc.max_sessions = cfg->rtc_max_sessions;
    sc_rtc.candidate_port = ntohs(a.sin6_port);
    if (cfg->rtc_candidate[0]) { /* behind NAT or a relay: what peers must send to */
        const char *colon = strrchr(cfg->rtc_candidate, ':');
        concrete_host(cfg->rtc_candidate, sc_rtc.candidate_ip, sizeof sc_rtc.candidate_ip);
        int port = colon ? atoi(colon + 1) : 0;
        if (!sc_rtc.candidate_ip[0] || port <= 0 || port > 65535) {
            sc_log_error("event=rtc_bad_candidate candidate=%s want=IP:PORT", cfg->rtc_candidate);
            sc_loop_del(&sc_rtc.io);
            close(fd);
            return -1;
        }
        sc_rtc.candidate_port = port;
    } else {
        concrete_host(listen, sc_rtc.candidate_ip, sizeof sc_rtc.candidate_ip);
    }
    sc_timer_init(&sc_rtc.tick, on_tick);
    sc_timer_arm(sc_loop_timers(sc_rtc.loop), &sc_rtc.tick, sc_loop_now(sc_rtc.loop), SC_RTC_TICK_MS);
    sc_rtc.running = 1;
    pthread_create(&sc_rtc.thread, NULL, rtc_main, NULL);
    sc_log_info("event=rtc_listening addr=%s candidate=%s:%d fingerprint=%s", listen,
                sc_rtc.candidate_ip[0] ? sc_rtc.candidate_ip : "(per request)", sc_rtc.candidate_port,
                sc_dtls_cert_fingerprint(sc_rtc.cert));
    return 0;
}

void sc_rtc_stop(void)
{
    sc_metrics_unregister(rtc_metrics, NULL);
    if (!sc_rtc.running)
        return;
    pthread_mutex_lock(&sc_rtc.mu);
    sc_rtc.running = 0; /* no new sessions */
    pthread_mutex_unlock(&sc_rtc.mu);
    sc_loop_post(sc_rtc.loop, rtc_shutdown, NULL);
    pthread_join(sc_rtc.thread, NULL);
    sc_loop_del(&sc_rtc.io);
    close(sc_rtc.fd);
    sc_rtc.fd = -1;
    sc_loop_free(sc_rtc.loop);
    sc_rtc.loop = NULL;
    sc_dtls_cert_free(sc_rtc.cert);
    sc_rtc.cert = NULL;
}
