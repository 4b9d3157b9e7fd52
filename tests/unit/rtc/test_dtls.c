/* test_dtls.c — DTLS-SRTP over memory: certificates, a full handshake between our own
 * server and client, fingerprint refusal, loss and retransmission, garbage, close, and
 * SRTP/SRTCP with the exported keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spacecast/dtls.h"

#define MTU 1200
#define ROUNDS 64

static sc_dtls_cert_t *cert_a, *cert_b;

static int setup(void **state)
{
    (void)state;
    cert_a = sc_dtls_cert_new();
    cert_b = sc_dtls_cert_new();
    return cert_a && cert_b ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sc_dtls_cert_free(cert_a);
    sc_dtls_cert_free(cert_b);
    return 0;
}

/* "AB:CD:..." back to 32 raw bytes, as the SDP layer will do. */
static void fp_bytes(const sc_dtls_cert_t *c, uint8_t out[32])
{
    const char *s = sc_dtls_cert_fingerprint(c);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + i * 3, "%2X", &v), 1);
        out[i] = (uint8_t)v;
    }
}

typedef struct pair {
    sc_dtls_t *srv, *cli;
    int to_srv, to_cli; /* datagrams moved each way */
    int feed_srv, feed_cli; /* last feed results, -1 sticks */
    size_t biggest;
} pair_t;

static void pair_new(pair_t *p, const uint8_t *srv_expects)
{
    uint8_t fa[32], fb[32];
    fp_bytes(cert_a, fa);
    fp_bytes(cert_b, fb);
    memset(p, 0, sizeof *p);
    /* server holds cert_a and expects cert_b's fingerprint, unless told otherwise */
    p->srv = sc_dtls_new(cert_a, 1, srv_expects ? srv_expects : fb, 32);
    p->cli = sc_dtls_new(cert_b, 0, fa, 32);
    assert_non_null(p->srv);
    assert_non_null(p->cli);
}

static void pair_free(pair_t *p)
{
    sc_dtls_free(p->srv);
    sc_dtls_free(p->cli);
}

/* Move every queued datagram from one side to the other; returns how many. */
static int shuttle(sc_dtls_t *from, sc_dtls_t *to, int *result, size_t *biggest)
{
    uint8_t buf[1500];
    int moved = 0, n;
    while ((n = sc_dtls_take(from, buf, sizeof buf)) > 0) {
        if ((size_t)n > *biggest)
            *biggest = (size_t)n;
        int r = sc_dtls_feed(to, buf, (size_t)n);
        if (r < 0)
            *result = -1;
        moved++;
    }
    assert_int_equal(n, 0);
    return moved;
}

static int drop_all(sc_dtls_t *from)
{
    uint8_t buf[1500];
    int dropped = 0;
    while (sc_dtls_take(from, buf, sizeof buf) > 0)
        dropped++;
    return dropped;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Run both sides until both are done, somebody failed, or nothing moves; when nothing
 * moves but a timer runs, wait for it and fire it (what the server's loop does).
 * Returns the number of timer firings. */
static int run(pair_t *p)
{
    int fired = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int moved = shuttle(p->cli, p->srv, &p->feed_srv, &p->biggest);
        p->to_srv += moved;
        int back = shuttle(p->srv, p->cli, &p->feed_cli, &p->biggest);
        p->to_cli += back;
        moved += back;
        if (p->feed_srv < 0 || p->feed_cli < 0)
            return fired;
        if (sc_dtls_done(p->srv) && sc_dtls_done(p->cli) && !moved)
            return fired;
        if (moved)
            continue;
        int ts = sc_dtls_timeout_ms(p->srv), tc = sc_dtls_timeout_ms(p->cli);
        if (ts < 0 && tc < 0)
            return fired;
        int wait = ts < 0 ? tc : tc < 0 ? ts : (ts < tc ? ts : tc);
        assert_true(wait <= 60000);
        sleep_ms(wait + 5);
        if (sc_dtls_timeout_ms(p->srv) == 0) {
            assert_int_equal(sc_dtls_on_timeout(p->srv), 0);
            fired++;
        }
        if (sc_dtls_timeout_ms(p->cli) == 0) {
            assert_int_equal(sc_dtls_on_timeout(p->cli), 0);
            fired++;
        }
    }
    fail_msg("handshake did not settle in %d rounds", ROUNDS);
    return fired;
}

static void assert_keys_crosswise(pair_t *p, uint8_t s_loc[30], uint8_t s_rem[30], uint8_t c_loc[30],
                                  uint8_t c_rem[30])
{
    assert_int_equal(sc_dtls_srtp_keys(p->srv, s_loc, s_rem), 0);
    assert_int_equal(sc_dtls_srtp_keys(p->cli, c_loc, c_rem), 0);
    assert_memory_equal(s_loc, c_rem, SC_SRTP_KEY_SALT);
    assert_memory_equal(s_rem, c_loc, SC_SRTP_KEY_SALT);
    assert_memory_not_equal(s_loc, s_rem, SC_SRTP_KEY_SALT);
}

/* ---- tests ---- */

static void test_cert_fingerprint(void **state)
{
    (void)state;
    const char *a = sc_dtls_cert_fingerprint(cert_a), *b = sc_dtls_cert_fingerprint(cert_b);
    assert_int_equal(strlen(a), 95);
    for (int i = 0; i < 95; i++) {
        if (i % 3 == 2)
            assert_int_equal(a[i], ':');
        else
            assert_true(isxdigit((unsigned char)a[i]) && !islower((unsigned char)a[i]));
    }
    assert_string_not_equal(a, b);
    /* bad fingerprint length: no session */
    uint8_t fp[32] = { 0 };
    assert_null(sc_dtls_new(cert_a, 1, fp, 20));
}

static void build_rtp(uint8_t *pkt, uint16_t seq, uint32_t ts, uint32_t ssrc, size_t payload)
{
    pkt[0] = 0x80;
    pkt[1] = 111;
    pkt[2] = (uint8_t)(seq >> 8), pkt[3] = (uint8_t)seq;
    pkt[4] = (uint8_t)(ts >> 24), pkt[5] = (uint8_t)(ts >> 16), pkt[6] = (uint8_t)(ts >> 8), pkt[7] = (uint8_t)ts;
    pkt[8] = (uint8_t)(ssrc >> 24), pkt[9] = (uint8_t)(ssrc >> 16), pkt[10] = (uint8_t)(ssrc >> 8),
    pkt[11] = (uint8_t)ssrc;
    for (size_t i = 0; i < payload; i++)
        pkt[12 + i] = (uint8_t)(i * 7 + seq);
}

static void check_srtp(const uint8_t s_loc[30], const uint8_t s_rem[30], const uint8_t c_loc[30],
                       const uint8_t c_rem[30])
{
    sc_srtp_t *srv = sc_srtp_new(s_loc, s_rem), *cli = sc_srtp_new(c_loc, c_rem);
    assert_non_null(srv);
    assert_non_null(cli);

    /* server → client, a big buffer */
    uint8_t orig[200], pkt[400];
    build_rtp(orig, 1000, 48000, 0x11223344, 160);
    size_t len = 172;
    memcpy(pkt, orig, len);
    assert_int_equal(sc_srtp_protect(srv, pkt, &len, sizeof pkt), 0);
    assert_int_equal(len, 172 + 10);
    assert_memory_not_equal(pkt + 12, orig + 12, 160); /* payload encrypted */
    uint8_t copy[400];
    size_t copy_len = len;
    memcpy(copy, pkt, len);
    assert_int_equal(sc_srtp_unprotect(cli, pkt, &len), 0);
    assert_int_equal(len, 172);
    assert_memory_equal(pkt, orig, 172);
    /* the same packet again: replay */
    len = copy_len;
    memcpy(pkt, copy, len);
    assert_int_equal(sc_srtp_unprotect(cli, pkt, &len), -1);

    /* client → server with exactly SC_SRTP_TRAILER bytes of room */
    build_rtp(orig, 7, 960, 0xcafe, 60);
    uint8_t tight[72 + SC_SRTP_TRAILER];
    memcpy(tight, orig, 72);
    len = 72;
    assert_int_equal(sc_srtp_protect(cli, tight, &len, 72 + SC_SRTP_TRAILER - 1), -1); /* too little room */
    assert_int_equal(sc_srtp_protect(cli, tight, &len, sizeof tight), 0);
    assert_true(len > 72 && len <= sizeof tight);
    /* a flipped payload byte fails authentication; the untouched one then passes */
    memcpy(copy, tight, len);
    copy_len = len;
    copy[20] ^= 1;
    assert_int_equal(sc_srtp_unprotect(srv, copy, &copy_len), -1);
    assert_int_equal(sc_srtp_unprotect(srv, tight, &len), 0);
    assert_int_equal(len, 72);
    assert_memory_equal(tight, orig, 72);
    /* a packet protected with our own key is not one the peer sends us */
    build_rtp(pkt, 8, 1920, 0xcafe, 20);
    len = 32;
    assert_int_equal(sc_srtp_protect(srv, pkt, &len, sizeof pkt), 0);
    assert_int_equal(sc_srtp_unprotect(srv, pkt, &len), -1);
    /* junk and runts */
    uint8_t junk[5] = { 0x80, 0, 0, 0, 0 };
    len = sizeof junk;
    assert_int_equal(sc_srtp_unprotect(srv, junk, &len), -1);

    /* RTCP: a receiver report (PT 201), client → server */
    uint8_t rr[8] = { 0x80, 201, 0, 1, 0, 0, 0xca, 0xfe }, rtcp[64];
    memcpy(rtcp, rr, sizeof rr);
    len = sizeof rr;
    assert_int_equal(sc_srtp_protect_rtcp(cli, rtcp, &len, sizeof rtcp), 0);
    assert_int_equal(len, sizeof rr + 4 + 10);
    memcpy(copy, rtcp, len);
    copy_len = len;
    assert_int_equal(sc_srtp_unprotect_rtcp(srv, rtcp, &len), 0);
    assert_int_equal(len, sizeof rr);
    assert_memory_equal(rtcp, rr, sizeof rr);
    assert_int_equal(sc_srtp_unprotect_rtcp(srv, copy, &copy_len), -1); /* replay */

    sc_srtp_free(srv);
    sc_srtp_free(cli);
}

static void test_handshake_and_srtp(void **state)
{
    (void)state;
    pair_t p;
    pair_new(&p, NULL);
    assert_int_equal(sc_dtls_timeout_ms(p.srv), -1); /* server waits, no timer */
    assert_int_equal(sc_dtls_start(p.srv), -1);      /* only clients start */
    assert_int_equal(sc_dtls_start(p.cli), 0);
    assert_true(sc_dtls_timeout_ms(p.cli) > 0);
    assert_int_equal(sc_dtls_done(p.cli), 0);
    uint8_t s_loc[30], s_rem[30], c_loc[30], c_rem[30];
    assert_int_equal(sc_dtls_srtp_keys(p.cli, c_loc, c_rem), -1); /* not yet */

    assert_int_equal(run(&p), 0); /* no loss, no timer */
    assert_int_equal(p.feed_srv, 0);
    assert_int_equal(p.feed_cli, 0);
    assert_true(sc_dtls_done(p.srv));
    assert_true(sc_dtls_done(p.cli));
    assert_int_equal(sc_dtls_timeout_ms(p.cli), -1); /* nothing left to retransmit */
    assert_true(p.biggest <= MTU);
    /* ClientHello; then the server's flight; the client's Certificate..Finished; CCS+Finished */
    assert_true(p.to_srv >= 2 && p.to_srv <= 10);
    assert_true(p.to_cli >= 2 && p.to_cli <= 10);
    print_message("handshake: %d datagrams to server, %d to client, biggest %zu bytes\n", p.to_srv, p.to_cli,
                  p.biggest);
    assert_int_equal(sc_dtls_closed(p.srv), 0);
    assert_string_equal(sc_dtls_error(p.srv), "no error");

    assert_keys_crosswise(&p, s_loc, s_rem, c_loc, c_rem);
    check_srtp(s_loc, s_rem, c_loc, c_rem);
    pair_free(&p);
}

static void test_wrong_fingerprint(void **state)
{
    (void)state;
    uint8_t wrong[32];
    fp_bytes(cert_a, wrong); /* the server's own, not the client's */
    pair_t p;
    pair_new(&p, wrong);
    assert_int_equal(sc_dtls_start(p.cli), 0);
    run(&p);
    assert_int_equal(p.feed_srv, -1);
    assert_string_equal(sc_dtls_error(p.srv), "fingerprint mismatch");
    assert_int_equal(sc_dtls_done(p.srv), 0);
    uint8_t a[30], b[30];
    assert_int_equal(sc_dtls_srtp_keys(p.srv, a, b), -1);
    /* dead for good */
    uint8_t junk[20] = { 22 };
    assert_int_equal(sc_dtls_feed(p.srv, junk, sizeof junk), -1);
    assert_int_equal(sc_dtls_on_timeout(p.srv), -1);
    /* the server's alert kills the client too (it never gets Finished anyway) */
    shuttle(p.srv, p.cli, &p.feed_cli, &p.biggest);
    assert_int_equal(sc_dtls_done(p.cli), 0);
    print_message("client saw: %s\n", sc_dtls_error(p.cli));
    pair_free(&p);

    /* the client checks the server too */
    uint8_t fb[32];
    fp_bytes(cert_b, fb);
    sc_dtls_t *srv = sc_dtls_new(cert_a, 1, fb, 32), *cli = sc_dtls_new(cert_b, 0, fb, 32);
    pair_t q = { .srv = srv, .cli = cli };
    assert_int_equal(sc_dtls_start(cli), 0);
    run(&q);
    assert_int_equal(q.feed_cli, -1);
    assert_string_equal(sc_dtls_error(cli), "fingerprint mismatch");
    assert_int_equal(sc_dtls_done(cli), 0);
    assert_int_equal(sc_dtls_done(srv), 0);
    pair_free(&q);
}

static void test_lost_flight(void **state)
{
    (void)state;
    pair_t p;
    pair_new(&p, NULL);
    assert_int_equal(sc_dtls_start(p.cli), 0);
    p.to_srv += shuttle(p.cli, p.srv, &p.feed_srv, &p.biggest); /* ClientHello */
    int lost = drop_all(p.srv);                                 /* ServerHello..ServerHelloDone, lost */
    assert_true(lost >= 1);
    assert_true(sc_dtls_timeout_ms(p.cli) > 0);
    int ms = sc_dtls_timeout_ms(p.cli);
    assert_true(ms <= 1000);
    assert_int_equal(sc_dtls_on_timeout(p.cli), 0); /* not due yet: nothing happens */
    uint8_t buf[1500];
    if (ms > 20) /* OpenSSL calls anything under 15 ms "due" */
        assert_int_equal(sc_dtls_take(p.cli, buf, sizeof buf), 0);
    int fired = run(&p);
    assert_true(fired >= 1);
    print_message("after loss: %d timer firings, %d datagrams to server, %d to client\n", fired, p.to_srv, p.to_cli);
    assert_int_equal(p.feed_srv, 0);
    assert_int_equal(p.feed_cli, 0);
    assert_true(sc_dtls_done(p.srv));
    assert_true(sc_dtls_done(p.cli));
    uint8_t s_loc[30], s_rem[30], c_loc[30], c_rem[30];
    assert_keys_crosswise(&p, s_loc, s_rem, c_loc, c_rem);
    pair_free(&p);
}

static void test_garbage(void **state)
{
    (void)state;
    uint8_t fb[32];
    fp_bytes(cert_b, fb);
    uint8_t buf[1500];
    unsigned seed = 12345;
    for (int i = 0; i < 200; i++) {
        sc_dtls_t *srv = sc_dtls_new(cert_a, 1, fb, 32);
        assert_non_null(srv);
        size_t n = 1 + (size_t)(i * 37 % 1400);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = (uint8_t)(seed >> 16);
        }
        if (i % 2) { /* looks like a DTLS 1.2 handshake record */
            buf[0] = 22;
            if (n > 2)
                buf[1] = 0xfe, buf[2] = 0xfd;
        }
        int r = sc_dtls_feed(srv, buf, n);
        assert_true(r == 0 || r == -1);
        assert_int_equal(sc_dtls_done(srv), 0);
        while (sc_dtls_take(srv, buf, sizeof buf) > 0)
            ;
        sc_dtls_free(srv);
    }
    sc_dtls_free(NULL);
}

static void test_shutdown(void **state)
{
    (void)state;
    pair_t p;
    pair_new(&p, NULL);
    sc_dtls_shutdown(p.cli); /* before the handshake: nothing to say */
    assert_int_equal(sc_dtls_start(p.cli), 0);
    run(&p);
    assert_true(sc_dtls_done(p.srv) && sc_dtls_done(p.cli));

    sc_dtls_shutdown(p.srv);
    uint8_t buf[1500];
    int n = sc_dtls_take(p.srv, buf, 5);
    assert_int_equal(n, -1); /* too small a buffer: the datagram stays */
    n = sc_dtls_take(p.srv, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(sc_dtls_take(p.srv, buf, sizeof buf), 0);
    assert_int_equal(sc_dtls_closed(p.cli), 0);
    assert_int_equal(sc_dtls_feed(p.cli, buf, (size_t)n), 0);
    assert_int_equal(sc_dtls_closed(p.cli), 1);
    assert_int_equal(sc_dtls_closed(p.srv), 0);
    /* after close, more datagrams are ignored */
    assert_int_equal(sc_dtls_feed(p.cli, buf, (size_t)n), 0);
    pair_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_fingerprint), cmocka_unit_test(test_handshake_and_srtp),
        cmocka_unit_test(test_wrong_fingerprint), cmocka_unit_test(test_lost_flight),
        cmocka_unit_test(test_garbage),          cmocka_unit_test(test_shutdown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
