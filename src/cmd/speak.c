/* speak.c — `spacecast speak URL --token T FILE`: publish an Ogg/Opus or WAV file into a Space
 * in real time, as a speaker would (bots, tests, pre-recorded intros). It speaks the Icecast
 * ingest protocol (PUT, Basic source:TOKEN, chunked Ogg/Opus), one 20 ms packet per page, or
 * with --whip WebRTC (WHIP, DTLS-SRTP, one packet per RTP datagram: whip_client.h); paced on
 * absolute CLOCK_MONOTONIC deadlines so it never drifts. */
#include "spacecast/cmd.h"
#include "spacecast/common.h"
#include "spacecast/dial.h"
#include "spacecast/http_parser.h"
#include "spacecast/ogg.h"
#include "spacecast/red.h"
#include "spacecast/tls.h"
#include "spacecast/wav.h"
#include "spacecast/whip_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <opus/opus.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SPEAK_LEAD_NS 60000000ll /* at most 60 ms ahead of real time: the server's jitter target */

#define SPEAK_WHIP_LINGER_NS 500000000l /* wait this long after the last packet before the DELETE */
#define SPEAK_FEC_WHIP 5 /* % expected loss for in-band FEC over WebRTC (UDP loses; TCP does not) */
#define SPEAK_RED_WHIP 2 /* RED copies per packet over WebRTC: bursts of 3 (with FEC) cost nothing (docs/webrtc.md) */

static volatile sig_atomic_t sc_speak_stop;
static int sc_speak_fec = -1; /* --fec PERCENT; -1: SPEAK_FEC_WHIP with --whip, none otherwise */
static int sc_speak_red = SPEAK_RED_WHIP; /* --red N: copies of the previous packets in each (--whip) */
static void on_signal(int sig) { (void)sig; sc_speak_stop = 1; }

typedef struct speak {
    sc_stream_t *st;        /* the Icecast PUT's connection (plain or TLS) */
    sc_whip_client_t *whip; /* --whip: packets go as SRTP, not Ogg pages */
    sc_ogg_writer_t ogg;
    int64_t granule;
    struct timespec next;   /* deadline of the next packet */
    uint64_t packets;
    int quiet;
} speak_t;

/* One chunk of the chunked request body, in one write (one TLS record). */
static int send_chunk(sc_stream_t *st, const uint8_t *p, size_t n)
{
    uint8_t buf[SC_OGG_PAGE_MAX + 32];
    int hl = snprintf((char *)buf, sizeof buf, "%zx\r\n", n);
    if (n > sizeof buf - (size_t)hl - 2)
        return -1;
    memcpy(buf + hl, p, n);
    memcpy(buf + hl + n, "\r\n", 2);
    return sc_stream_write(st, buf, (size_t)hl + n + 2);
}

static int send_page(speak_t *s, uint8_t flags, const uint8_t *pkt, size_t len)
{
    uint8_t page[SC_OGG_PAGE_MAX];
    const uint8_t *pk[] = { pkt };
    ssize_t n = sc_ogg_write_page(&s->ogg, flags, s->granule, pk, &len, 1, page, sizeof page);
    return n < 0 ? -1 : send_chunk(s->st, page, (size_t)n);
}

static void ts_add_ns(struct timespec *t, long long ns)
{
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000) {
        t->tv_nsec -= 1000000000;
        t->tv_sec++;
    }
}

/* Send one audio packet of `samples` 48 kHz samples, no earlier than its deadline minus the lead. */
static int speak_packet(speak_t *s, const uint8_t *pkt, size_t len, int samples)
{
    struct timespec wake = s->next;
    ts_add_ns(&wake, -SPEAK_LEAD_NS);
    if (wake.tv_nsec < 0) {
        wake.tv_nsec += 1000000000;
        wake.tv_sec--;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR && !sc_speak_stop)
        ;
    s->granule += samples;
    if (s->whip ? sc_whip_client_send(s->whip, pkt, len, samples) < 0 : send_page(s, 0, pkt, len) < 0)
        return -1;
    s->packets++;
    ts_add_ns(&s->next, (long long)samples * 1000000000ll / SC_RATE);
    return 0;
}

static int send_headers(speak_t *s, int channels, uint16_t preskip)
{
    if (s->whip) { /* RTP carries no Ogg headers: the SDP said what the packets are */
        clock_gettime(CLOCK_MONOTONIC, &s->next);
        return 0;
    }
    uint8_t head[SC_OPUS_HEAD_LEN], tags[256];
    size_t hl = sc_opus_head_build(head, channels, preskip, SC_RATE);
    ssize_t tl = sc_opus_tags_build(tags, sizeof tags, "spacecast speak", NULL, 0);
    if (send_page(s, SC_OGG_BOS, head, hl) < 0 || send_page(s, 0, tags, (size_t)tl) < 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &s->next);
    return 0;
}

/* --- sources ---------------------------------------------------------------------------- */

typedef struct ogg_src {
    speak_t *s;
    int headers_sent;
    int failed;
    const sc_ogg_reader_t *rd;
} ogg_src_t;

static int on_ogg_packet(void *ctx, const uint8_t *pkt, size_t len, int samples)
{
    ogg_src_t *o = ctx;
    if (sc_speak_stop)
        return 1;
    if (!o->headers_sent) {
        const sc_opus_head_t *h = sc_ogg_reader_head(o->rd);
        if (send_headers(o->s, h ? h->channels : 1, h ? h->pre_skip : 312) < 0)
            return o->failed = 1;
        o->headers_sent = 1;
    }
    if (speak_packet(o->s, pkt, len, samples) < 0)
        return o->failed = 1;
    return 0;
}

static int speak_ogg(speak_t *s, const char *path, int loop, double duration)
{
    ogg_src_t o = { .s = s };
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        FILE *f = fopen(path, "rb");
        if (!f)
            return -1;
        sc_ogg_reader_t *rd = sc_ogg_reader_new(on_ogg_packet, &o);
        o.rd = rd;
        uint8_t buf[4096];
        size_t n;
        int rc = 0;
        while (rc == 0 && !sc_speak_stop && (n = fread(buf, 1, sizeof buf, f)) > 0) {
            rc = sc_ogg_reader_feed(rd, buf, n);
            if (duration > 0 && (double)s->granule / SC_RATE >= duration)
                sc_speak_stop = 1;
        }
        if (rc != 0 && !o.failed && !sc_speak_stop)
            fprintf(stderr, "speak: %s: %s\n", path, sc_ogg_reader_error(rd));
        sc_ogg_reader_free(rd);
        fclose(f);
        if (o.failed || (rc != 0 && !sc_speak_stop))
            return -1;
    } while (loop && !sc_speak_stop);
    return 0;
}

static int speak_wav(speak_t *s, const char *path, int loop, double duration)
{
    sc_wav_t *w = sc_wav_open(path);
    if (!w)
        return -1;
    int rate = sc_wav_rate(w), err;
    OpusEncoder *enc = opus_encoder_create(rate, 1, OPUS_APPLICATION_VOIP, &err);
    if (!enc) {
        sc_wav_close(w);
        return -1;
    }
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    int fec = sc_speak_fec >= 0 ? sc_speak_fec : s->whip ? SPEAK_FEC_WHIP : 0;
    if (fec > 0) { /* each packet carries a coarse copy of the one before: one loss costs nothing */
        opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(fec));
    }
    opus_int32 lookahead = 312;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
    int frame = rate / 50; /* 20 ms at the file's rate */
    float pcm[SC_FRAME];
    uint8_t pkt[1500];
    int rc = send_headers(s, 1, (uint16_t)(lookahead * (SC_RATE / rate)));
    while (rc == 0 && !sc_speak_stop) {
        int got = sc_wav_read_mono(w, pcm, frame);
        if (got < frame) {
            if (!loop && got <= 0)
                break;
            memset(pcm + (got > 0 ? got : 0), 0, sizeof(float) * (size_t)(frame - (got > 0 ? got : 0)));
            if (loop)
                sc_wav_rewind(w);
        }
        int len = opus_encode_float(enc, pcm, frame, pkt, sizeof pkt);
        if (len < 0 || speak_packet(s, pkt, (size_t)len, SC_FRAME) < 0)
            rc = -1;
        if (duration > 0 && (double)s->granule / SC_RATE >= duration)
            break;
        if (!loop && got < frame)
            break;
    }
    if (rc == 0 && !sc_speak_stop) { /* the encoder still holds its lookahead: the last words */
        memset(pcm, 0, sizeof pcm);
        int len = opus_encode_float(enc, pcm, frame, pkt, sizeof pkt);
        if (len < 0 || speak_packet(s, pkt, (size_t)len, SC_FRAME) < 0)
            rc = -1;
    }
    opus_encoder_destroy(enc);
    sc_wav_close(w);
    return rc;
}

/* --- the connection ---------------------------------------------------------------------- */

/* http(s)://HOST[:PORT]/{spaces|s}/ID[/...] → u (the server) and the Space's id. */
static int parse_url(const char *url, sc_url_t *u, char *id, size_t isz)
{
    if (sc_url_parse(url, u) < 0)
        return -1;
    const char *p = u->path;
    const char *sp = !strncmp(p, "/spaces/", 8) ? p + 8 : !strncmp(p, "/s/", 3) ? p + 3 : NULL;
    if (!sp)
        return -1;
    size_t il = strcspn(sp, "/?#");
    if (il == 0 || il >= isz)
        return -1;
    memcpy(id, sp, il);
    id[il] = '\0';
    return 0;
}

/* Read a response head; print the server's error message if it is not `want`. */
static int read_status(sc_stream_t *st, int want)
{
    char buf[4096];
    size_t n = 0;
    struct timeval tv = { 10, 0 };
    setsockopt(st->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t last = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = sc_stream_read(st, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        sc_http_response_t res;
        int head = sc_http_parse_response(buf, n, last, &res);
        if (head == SC_INCOMPLETE) {
            last = n;
            continue;
        }
        int status = head > 0 ? res.status : 0;
        if (status == want)
            return 0;
        char *msg = head > 0 ? strstr(buf + head, "\"message\":\"") : NULL;
        if (head > 0 && !msg && n < sizeof buf - 1) { /* the body may follow in the next read */
            ssize_t r2 = sc_stream_read(st, buf + n, sizeof buf - 1 - n);
            if (r2 > 0) {
                n += (size_t)r2;
                buf[n] = '\0';
            }
            msg = strstr(buf + head, "\"message\":\"");
        }
        if (msg) {
            msg += 11;
            char *q = strchr(msg, '"');
            fprintf(stderr, "speak: the server refused (%d): %.*s\n", status, q ? (int)(q - msg) : 200, msg);
        } else {
            fprintf(stderr, "speak: the server answered %d\n", status);
        }
        return -1;
    }
    fprintf(stderr, "speak: no answer from the server\n");
    return -1;
}

static int speak_whip(const sc_url_t *u, SSL_CTX *tls, const char *id, const char *token, const char *file,
                      int is_ogg, int loop, double duration, int quiet)
{
    char err[512];
    speak_t s = { .quiet = quiet };
    s.whip = sc_whip_client_open(u->host, u->port, tls, id, token, sc_speak_red, err, sizeof err);
    if (!s.whip) {
        fprintf(stderr, "speak: %s\n", err);
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "event=speak_start space=%s file=%s format=%s transport=whip red=%d\n", id, file,
                is_ogg ? "ogg" : "wav", sc_whip_client_red(s.whip));
    int rc = is_ogg ? speak_ogg(&s, file, loop, duration) : speak_wav(&s, file, loop, duration);
    if (rc != 0)
        fprintf(stderr, "speak: the WebRTC session ended (removed, replaced, or the Space ended)\n");
    if (!quiet)
        fprintf(stderr, "event=speak_done packets=%llu seconds=%.2f receiver_reports=%llu\n",
                (unsigned long long)s.packets, (double)s.granule / SC_RATE,
                (unsigned long long)sc_whip_client_reports(s.whip));
    if (rc == 0 && !sc_speak_stop) /* the last packets may still be on their way: DELETE ends the session */
        nanosleep(&(struct timespec){ 0, SPEAK_WHIP_LINGER_NS }, NULL);
    sc_whip_client_close(s.whip);
    return rc == 0 ? 0 : 1;
}

/* The Icecast PUT (or, with whip, WHIP) to the server u; the file is already checked. */
static int speak_stream(const sc_url_t *u, SSL_CTX *tls, const char *id, const char *token, const char *file,
                        int is_ogg, int whip, int loop, double duration, int quiet)
{
    if (whip)
        return speak_whip(u, tls, id, token, file, is_ogg, loop, duration, quiet);
    char err[512];
    sc_stream_t st;
    if (sc_stream_open(&st, u->host, u->port, tls, NULL, AF_UNSPEC, 0, err, sizeof err) < 0) {
        fprintf(stderr, "speak: %s\n", err);
        return 1;
    }
    /* Basic auth: base64("source:" TOKEN) */
    char cred[600], b64[820];
    int cl = snprintf(cred, sizeof cred, "source:%s", token);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (int i = 0; i < cl; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)cred[i] << 16 | (i + 1 < cl ? (uint32_t)(uint8_t)cred[i + 1] << 8 : 0) |
                     (i + 2 < cl ? (uint8_t)cred[i + 2] : 0);
        b64[o++] = tbl[v >> 18 & 63];
        b64[o++] = tbl[v >> 12 & 63];
        b64[o++] = i + 1 < cl ? tbl[v >> 6 & 63] : '=';
        b64[o++] = i + 2 < cl ? tbl[v & 63] : '=';
    }
    b64[o] = '\0';
    char req[1200], auth[300];
    int rl = snprintf(req, sizeof req,
                      "PUT /spaces/%s/source HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n"
                      "Content-Type: audio/ogg\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
                      "User-Agent: spacecast-speak/" SC_VERSION "\r\n\r\n",
                      id, sc_url_authority(u, auth, sizeof auth), b64);
    if (sc_stream_write(&st, req, (size_t)rl) < 0 || read_status(&st, 100) < 0) {
        sc_stream_close(&st);
        return 1;
    }
    speak_t s = { .st = &st, .quiet = quiet };
    sc_ogg_writer_init(&s.ogg, (uint32_t)sc_now_ns());
    if (!quiet)
        fprintf(stderr, "event=speak_start space=%s file=%s format=%s\n", id, file, is_ogg ? "ogg" : "wav");
    int rc = is_ogg ? speak_ogg(&s, file, loop, duration) : speak_wav(&s, file, loop, duration);
    if (rc == 0) { /* end of stream: an EOS page, the terminal chunk, and the server's answer */
        s.granule += SC_FRAME;
        if (send_page(&s, SC_OGG_EOS, sc_opus_silence, SC_OPUS_SILENCE_LEN) < 0 || sc_stream_write(&st, "0\r\n\r\n", 5) < 0 ||
            read_status(&st, 200) < 0)
            rc = -1;
    } else {
        fprintf(stderr, "speak: the connection to the server was lost\n");
    }
    sc_stream_close(&st);
    if (!quiet)
        fprintf(stderr, "event=speak_done packets=%llu seconds=%.2f\n", (unsigned long long)s.packets,
                (double)s.granule / SC_RATE);
    return rc == 0 ? 0 : 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: spacecast speak URL --token TOKEN [--whip] [--fec PERCENT] [--red N] [--ca-file PEM]\n"
                 "                       [--loop] [--duration S] [--quiet] FILE\n\n"
                 "Publishes FILE (Ogg/Opus or WAV: 16/24-bit or float PCM at 8, 12, 16, 24 or 48 kHz) into a\n"
                 "Space in real time as a speaker. URL is the Space (http(s)://HOST[:PORT]/spaces/ID or /s/ID).\n"
                 "The token is the speaker's (or $SPACECAST_TOKEN). --whip publishes over WebRTC (WHIP) instead\n"
                 "of the "
                 "Icecast protocol. A WAV file is encoded at 32 kbit/s; with --whip its packets carry in-band\n"
                 "FEC for 5 %% loss (--fec PERCENT to change, 0 for none), and each RTP packet carries copies\n"
                 "of the 2 before it (RFC 2198 RED, when the server takes it; --red N for 0-3 copies): a burst\n"
                 "of 3 lost packets costs nothing, for 3x the bitrate. Over https the server's certificate\n"
                 "and name are verified against the system's CAs, or --ca-file (or $SPACECAST_CA_FILE).\n");
}

int sc_cmd_speak(int argc, char **argv)
{
    const char *url = NULL, *file = NULL, *token = getenv("SPACECAST_TOKEN"), *ca_file = getenv("SPACECAST_CA_FILE");
    int loop = 0, quiet = 0, whip = 0;
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--token") && i + 1 < argc) {
            token = argv[++i];
        } else if (!strcmp(argv[i], "--ca-file") && i + 1 < argc) {
            ca_file = argv[++i];
        } else if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
            duration = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--loop")) {
            loop = 1;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--whip")) {
            whip = 1;
        } else if (!strcmp(argv[i], "--fec") && i + 1 < argc) {
            sc_speak_fec = atoi(argv[++i]);
            if (sc_speak_fec < 0 || sc_speak_fec > 100) {
                fprintf(stderr, "speak: --fec wants a loss percentage 0-100\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--red") && i + 1 < argc) {
            sc_speak_red = atoi(argv[++i]);
            if (sc_speak_red < 0 || sc_speak_red > SC_RED_MAX_DEPTH) {
                fprintf(stderr, "speak: --red wants 0-%d copies\n", SC_RED_MAX_DEPTH);
                return 2;
            }
        } else if (argv[i][0] != '-' && !url) {
            url = argv[i];
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            fprintf(stderr, "speak: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char id[64];
    sc_url_t u;
    if (!url || !file || !token || parse_url(url, &u, id, sizeof id) < 0) {
        usage(stderr);
        return 2;
    }
    FILE *f = fopen(file, "rb");
    char magic[4] = { 0 };
    if (!f || fread(magic, 1, 4, f) != 4) {
        fprintf(stderr, "speak: cannot read %s\n", file);
        if (f)
            fclose(f);
        return 2;
    }
    fclose(f);
    int is_ogg = !memcmp(magic, "OggS", 4), is_wav = !memcmp(magic, "RIFF", 4);
    if (!is_ogg && !is_wav) {
        fprintf(stderr, "speak: %s is neither Ogg/Opus nor WAV\n", file);
        return 2;
    }
    if (is_wav) { /* a WAV we cannot encode is said before the server is bothered (sc_wav_open says why) */
        sc_wav_t *w = sc_wav_open(file);
        if (!w)
            return 2;
        sc_wav_close(w);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    SSL_CTX *tls = NULL;
    if (u.tls && !(tls = sc_tls_client_ctx(ca_file, err, sizeof err))) {
        fprintf(stderr, "speak: %s\n", err);
        return 2;
    }
    int rc = speak_stream(&u, tls, id, token, file, is_ogg, whip, loop, duration, quiet);
    SSL_CTX_free(tls);
    return rc;
}
