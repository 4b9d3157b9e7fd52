/* whip_client.c — a WHIP publisher in C (see whip_client.h): the same STUN, SDP, DTLS and RTP
 * modules as the server, from the other side. */
#include "spacecast/whip_client.h"
#include "spacecast/common.h"
#include "spacecast/dial.h"
#include "spacecast/http_parser.h"
#include "spacecast/dtls.h"
#include "spacecast/red.h"
#include "spacecast/rtp.h"
#include "spacecast/sdp.h"
#include "spacecast/stun.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define WC_HTTP_MAX 16384
#define WC_ICE_MS 3000       /* a check answered within this, or the server is not reachable over UDP */
#define WC_DTLS_MS 5000
#define WC_CONSENT_MS 2000   /* binding requests keep consent (and the server's silence timer) fresh */
#define WC_PAYLOAD_MAX 1200  /* RTP payload: a packet and its RED copies stay under a path's MTU */

struct sc_whip_client {
    char host[256], port[16], token[1024], location[256];
    SSL_CTX *tls;           /* https: the signalling is verified TLS (borrowed) */
    int udp;
    struct sockaddr_in server;
    char ufrag[9], pwd[25];
    sc_sdp_t answer;
    sc_dtls_cert_t *cert;
    sc_dtls_t *dtls;
    sc_srtp_t *srtp;
    uint32_t ssrc, ts;
    uint16_t seq;
    int pt, sent;
    int red_pt;             /* the answer took RED: every packet carries copies of the ones before */
    sc_red_enc_t red;
    uint64_t reports, consent_ms;
    uint64_t tiebreaker;
};

/* --- HTTP: one request per connection ------------------------------------------------------ */

/* Send a request, read the whole answer (Connection: close). Status, or -1. */
static int http(sc_whip_client_t *c, const char *method, const char *path, const char *ctype, const char *body,
                char *resp, size_t respsz, char **resp_body)
{
    sc_stream_t st;
    char err[256];
    if (sc_stream_open(&st, c->host, c->port, c->tls, NULL, AF_INET, 10000, err, sizeof err) < 0) { /* IPv4, as our UDP side */
        snprintf(resp, respsz, "%s", err);
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n%s%s%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     method, path, c->host, c->port, c->token, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", blen);
    int ok = n > 0 && (size_t)n < sizeof head && sc_stream_write(&st, head, (size_t)n) == 0 &&
             (!blen || sc_stream_write(&st, body, blen) == 0);
    size_t got = 0;
    ssize_t r;
    while (ok && got + 1 < respsz && (r = sc_stream_read(&st, resp + got, respsz - 1 - got)) > 0)
        got += (size_t)r;
    sc_stream_close(&st);
    resp[got] = '\0';
    return ok ? sc_whip_response_status(resp, resp_body) : -1;
}

/* The head of an answer read to its end (or cut off: then what there is, taken as a whole
 * head). Returns where the body starts, or -1 if it is no HTTP/1.x response. */
static int answer_head(const char *resp, sc_http_response_t *res, char *scratch, size_t cap)
{
    size_t len = strlen(resp);
    int head = sc_http_parse_response(resp, len, 0, res);
    if (head != SC_INCOMPLETE)
        return head;
    /* a cut-off answer (the connection ended inside the head): end it and read that */
    size_t k = len > 0 && resp[len - 1] == '\n' ? 0 : len > 0 && resp[len - 1] == '\r' ? 1 : 2;
    if (len + k + 2 >= cap)
        return -1;
    memcpy(scratch, resp, len);
    memcpy(scratch + len, &"\r\n\r\n"[2 - k], k + 2);
    return sc_http_parse_response(scratch, len + k + 2, 0, res) > 0 ? (int)len : -1;
}

#define SC_WHIP_HEAD_MAX 8192 /* a cut-off head we still read */

int sc_whip_response_status(char *resp, char **body)
{
    sc_http_response_t res;
    static __thread char scratch[SC_WHIP_HEAD_MAX];
    int head = answer_head(resp, &res, scratch, sizeof scratch);
    if (head < 0)
        return -1;
    if (body)
        *body = resp + head;
    return res.status;
}

void sc_whip_header_value(const char *resp, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    sc_http_response_t res;
    static __thread char scratch[SC_WHIP_HEAD_MAX];
    if (answer_head(resp, &res, scratch, sizeof scratch) < 0)
        return;
    const sc_slice_t *v = sc_http_response_header(&res, name);
    if (v)
        snprintf(out, n, "%.*s", (int)v->len, v->base);
}

/* --- UDP ------------------------------------------------------------------------------------ */

static void udp_send(sc_whip_client_t *c, const uint8_t *p, size_t n)
{
    sendto(c->udp, p, n, 0, (struct sockaddr *)&c->server, sizeof c->server);
}

static void send_check(sc_whip_client_t *c, uint8_t txid[12])
{
    char user[600];
    snprintf(user, sizeof user, "%s:%s", c->answer.ice_ufrag, c->ufrag);
    RAND_bytes(txid, 12);
    uint8_t msg[SC_STUN_MAX_MSG];
    int n = sc_stun_binding_request(msg, sizeof msg, txid, user, c->answer.ice_pwd, strlen(c->answer.ice_pwd),
                                    0x6E7F1EFF, c->tiebreaker, 1);
    if (n > 0)
        udp_send(c, msg, (size_t)n);
    c->consent_ms = sc_now_ms();
}

static void send_dtls(sc_whip_client_t *c)
{
    uint8_t out[2048];
    int n;
    while ((n = sc_dtls_take(c->dtls, out, sizeof out)) > 0)
        udp_send(c, out, (size_t)n);
}

static int wait_readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) > 0;
}

/* ICE: our check with USE-CANDIDATE, answered with the right integrity. */
static int ice(sc_whip_client_t *c)
{
    uint64_t end = sc_now_ms() + WC_ICE_MS;
    uint8_t txid[12], buf[2048];
    while (sc_now_ms() < end) {
        send_check(c, txid);
        while (wait_readable(c->udp, 100)) {
            ssize_t n = recv(c->udp, buf, sizeof buf, 0);
            sc_stun_msg_t m;
            if (n > 0 && sc_stun_is(buf, (size_t)n) && sc_stun_parse(buf, (size_t)n, &m) == 0 &&
                m.type == SC_STUN_BINDING_SUCCESS && !memcmp(m.txid, txid, 12) &&
                sc_stun_check_integrity(buf, (size_t)n, &m, c->answer.ice_pwd, strlen(c->answer.ice_pwd)))
                return 0;
        }
    }
    return -1;
}

static int dtls(sc_whip_client_t *c)
{
    c->dtls = sc_dtls_new(c->cert, 0, c->answer.fp, c->answer.fp_len);
    if (!c->dtls || sc_dtls_start(c->dtls) != 0)
        return -1;
    send_dtls(c);
    uint64_t end = sc_now_ms() + WC_DTLS_MS;
    uint8_t buf[2048];
    while (!sc_dtls_done(c->dtls) && sc_now_ms() < end) {
        int t = sc_dtls_timeout_ms(c->dtls);
        if (wait_readable(c->udp, t < 0 || t > 100 ? 100 : t)) {
            ssize_t n = recv(c->udp, buf, sizeof buf, 0);
            if (n > 0 && buf[0] >= 20 && buf[0] <= 63 && sc_dtls_feed(c->dtls, buf, (size_t)n) != 0)
                return -1;
        } else if (sc_dtls_timeout_ms(c->dtls) == 0 && sc_dtls_on_timeout(c->dtls) != 0) {
            return -1;
        }
        send_dtls(c);
    }
    uint8_t local[SC_SRTP_KEY_SALT], remote[SC_SRTP_KEY_SALT];
    if (!sc_dtls_done(c->dtls) || sc_dtls_srtp_keys(c->dtls, local, remote) != 0)
        return -1;
    c->srtp = sc_srtp_new(local, remote);
    return c->srtp ? 0 : -1;
}

sc_whip_client_t *sc_whip_client_open(const char *host, const char *port, SSL_CTX *tls, const char *id,
                                      const char *token, int red, char *err, size_t errsz)
{
    sc_whip_client_t *c = sc_calloc(1, sizeof *c);
    c->tls = tls;
    snprintf(c->host, sizeof c->host, "%s", host);
    snprintf(c->port, sizeof c->port, "%s", port);
    snprintf(c->token, sizeof c->token, "%s", token);
    sc_stun_random_ice(c->ufrag, 8);
    sc_stun_random_ice(c->pwd, 24);
    RAND_bytes((uint8_t *)&c->ssrc, sizeof c->ssrc);
    RAND_bytes((uint8_t *)&c->seq, sizeof c->seq);
    RAND_bytes((uint8_t *)&c->tiebreaker, sizeof c->tiebreaker);
    c->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
    socklen_t ml = sizeof me;
    c->cert = sc_dtls_cert_new();
    if (c->udp < 0 || bind(c->udp, (struct sockaddr *)&me, sizeof me) != 0 ||
        getsockname(c->udp, (struct sockaddr *)&me, &ml) != 0 || !c->cert) {
        snprintf(err, errsz, "no UDP socket or certificate");
        goto fail;
    }
    char offer[4096], path[512], *resp = sc_malloc(WC_HTTP_MAX), *body = NULL;
    sc_sdp_local_t local = {
        .ice_ufrag = c->ufrag, .ice_pwd = c->pwd, .fingerprint = sc_dtls_cert_fingerprint(c->cert),
        .setup = "actpass", .cand_ip = "127.0.0.1", .cand_port = ntohs(me.sin_port),
        .dir = SC_SDP_SENDONLY, .ssrc = c->ssrc, .session_id = 1, .ice_lite = 0, .red = red > 0,
    };
    snprintf(path, sizeof path, "/spaces/%s/whip", id);
    int st = sc_sdp_write_offer(offer, sizeof offer, &local) < 0
                 ? -1
                 : http(c, "POST", path, "application/sdp", offer, resp, WC_HTTP_MAX, &body);
    const char *why = NULL;
    if (st != 201 || sc_sdp_parse(body, strlen(body), &c->answer, &why) != 0 || c->answer.fp_len != 32 ||
        !c->answer.cand_ip[0]) {
        snprintf(err, errsz, "WHIP answered %d: %.200s", st, st == 201 ? (why ? why : "no candidate") : body ? body : resp);
        free(resp);
        goto fail;
    }
    sc_whip_header_value(resp, "Location", c->location, sizeof c->location);
    free(resp);
    c->pt = c->answer.media[c->answer.audio].opus_pt;
    c->red_pt = red > 0 ? c->answer.media[c->answer.audio].red_pt : -1; /* a server without RED answers without it */
    sc_red_enc_init(&c->red, c->red_pt >= 0 ? red : 0);
    c->server.sin_family = AF_INET;
    c->server.sin_port = htons((uint16_t)c->answer.cand_port);
    if (inet_pton(AF_INET, c->answer.cand_ip, &c->server.sin_addr) != 1) {
        snprintf(err, errsz, "candidate %s is not IPv4", c->answer.cand_ip);
        goto fail;
    }
    if (ice(c) != 0) {
        snprintf(err, errsz, "no answer to our connectivity checks at %s:%d (UDP blocked?)", c->answer.cand_ip,
                 c->answer.cand_port);
        goto fail;
    }
    if (dtls(c) != 0) {
        snprintf(err, errsz, "DTLS failed: %s", c->dtls ? sc_dtls_error(c->dtls) : "no memory");
        goto fail;
    }
    return c;
fail:
    sc_whip_client_close(c);
    return NULL;
}

/* What came in: receiver reports, and a close_notify that ends us. */
static int drain(sc_whip_client_t *c)
{
    uint8_t buf[2048];
    ssize_t n;
    while ((n = recv(c->udp, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        size_t len = (size_t)n;
        if (buf[0] >= 20 && buf[0] <= 63) {
            if (sc_dtls_feed(c->dtls, buf, len) != 0 || sc_dtls_closed(c->dtls))
                return -1; /* the server ended the session (removed, replaced, the Space ended) */
        } else if (sc_rtp_is_rtcp(buf, len) && sc_srtp_unprotect_rtcp(c->srtp, buf, &len) == 0) {
            c->reports++;
        }
    }
    return 0;
}

int sc_whip_client_send(sc_whip_client_t *c, const uint8_t *opus, size_t len, int samples)
{
    if (drain(c) != 0)
        return -1;
    if (sc_now_ms() - c->consent_ms >= WC_CONSENT_MS) {
        uint8_t txid[12];
        send_check(c, txid);
    }
    uint8_t pkt[SC_RTP_HEADER + WC_PAYLOAD_MAX + 256];
    if (len > 1500)
        return 0;
    size_t n = sc_rtp_write_header(pkt, c->sent == 0, (uint8_t)(c->red_pt >= 0 ? c->red_pt : c->pt), c->seq++, c->ts,
                                   c->ssrc);
    if (c->red_pt >= 0) {
        ssize_t r = sc_red_enc_packet(&c->red, (uint8_t)c->pt, c->ts, opus, len, pkt + n, WC_PAYLOAD_MAX);
        if (r < 0)
            return 0;
        n += (size_t)r;
    } else {
        memcpy(pkt + n, opus, len);
        n += len;
    }
    c->ts += (uint32_t)samples;
    c->sent++;
    if (sc_srtp_protect(c->srtp, pkt, &n, sizeof pkt) != 0)
        return -1;
    udp_send(c, pkt, n);
    return 0;
}

uint64_t sc_whip_client_reports(const sc_whip_client_t *c) { return c->reports; }

int sc_whip_client_red(const sc_whip_client_t *c) { return c->red.depth; }

void sc_whip_client_close(sc_whip_client_t *c)
{
    if (!c)
        return;
    if (c->location[0]) {
        char resp[1024];
        http(c, "DELETE", c->location, NULL, NULL, resp, sizeof resp, NULL); /* WHIP's goodbye */
    }
    if (c->dtls && sc_dtls_done(c->dtls) && !sc_dtls_closed(c->dtls)) {
        sc_dtls_shutdown(c->dtls);
        send_dtls(c);
    }
    if (c->udp >= 0)
        close(c->udp);
    sc_srtp_free(c->srtp);
    sc_dtls_free(c->dtls);
    sc_dtls_cert_free(c->cert);
    free(c);
}
