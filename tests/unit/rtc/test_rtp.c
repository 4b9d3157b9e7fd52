/* test_rtp.c — RTP and RTCP on a muxed WebRTC port: header parsing with CSRCs, an extension
 * and padding, the malformed packets it must refuse, the RFC 7983 / RFC 5761 demux tests,
 * SR and RR written and read back, and a receiver's statistics (RFC 3550 A.1/A.3/A.8):
 * 10% loss reads as 25/256, a wrap of the sequence number counts a cycle, LSR/DLSR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "spacecast/rtp.h"

/* --- RTP --------------------------------------------------------------------------------- */

static void test_parse_plain(void **state)
{
    (void)state;
    uint8_t pkt[12 + 3];
    assert_int_equal(sc_rtp_write_header(pkt, 1, 111, 0xBEEF, 0x01020304, 0xCAFEBABE), 12);
    memcpy(pkt + 12, "abc", 3);
    sc_rtp_hdr_t h;
    assert_int_equal(sc_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(h.marker, 1);
    assert_int_equal(h.pt, 111);
    assert_int_equal(h.seq, 0xBEEF);
    assert_int_equal(h.ts, 0x01020304);
    assert_int_equal(h.ssrc, 0xCAFEBABE);
    assert_ptr_equal(h.payload, pkt + 12);
    assert_int_equal(h.payload_len, 3);
    /* a bare header is a packet with an empty payload */
    assert_int_equal(sc_rtp_parse(pkt, 12, &h), 0);
    assert_int_equal(h.payload_len, 0);
}

static void test_parse_csrc_ext_padding(void **state)
{
    (void)state;
    /* V=2 P=1 X=1 CC=2, two CSRCs, a one-word extension, 4 payload bytes, 3 padding bytes */
    uint8_t pkt[] = {
        0xB2, 0x6F, 0x00, 0x07, 0, 0, 0x03, 0xC0, 0x11, 0x22, 0x33, 0x44, /* header */
        0, 0, 0, 1, 0, 0, 0, 2,                                           /* CSRCs */
        0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00,                   /* extension */
        'o', 'p', 'u', 's',                                               /* payload */
        0, 0, 3,                                                          /* padding */
    };
    sc_rtp_hdr_t h;
    assert_int_equal(sc_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(h.marker, 0);
    assert_int_equal(h.pt, 111);
    assert_int_equal(h.seq, 7);
    assert_int_equal(h.ts, 960);
    assert_ptr_equal(h.payload, pkt + 28);
    assert_int_equal(h.payload_len, 4);
    assert_memory_equal(h.payload, "opus", 4);
    /* padding of the whole payload leaves nothing, which is allowed */
    pkt[sizeof pkt - 1] = 7;
    assert_int_equal(sc_rtp_parse(pkt, sizeof pkt, &h), 0);
    assert_int_equal(h.payload_len, 0);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    uint8_t pkt[40] = { 0x80, 111 };
    sc_rtp_hdr_t h;
    assert_int_equal(sc_rtp_parse(pkt, 11, &h), -1);           /* shorter than the header */
    pkt[0] = 0x40;
    assert_int_equal(sc_rtp_parse(pkt, 20, &h), -1);           /* version 1 */
    pkt[0] = 0x83;
    assert_int_equal(sc_rtp_parse(pkt, 20, &h), -1);           /* 3 CSRCs need 24 bytes */
    assert_int_equal(sc_rtp_parse(pkt, 24, &h), 0);
    pkt[0] = 0x90;
    assert_int_equal(sc_rtp_parse(pkt, 14, &h), -1);           /* no room for the extension header */
    pkt[14] = 0;
    pkt[15] = 2;                                               /* two words of extension */
    assert_int_equal(sc_rtp_parse(pkt, 23, &h), -1);
    assert_int_equal(sc_rtp_parse(pkt, 24, &h), 0);
    pkt[0] = 0xA0;                                             /* padding */
    pkt[19] = 0;
    assert_int_equal(sc_rtp_parse(pkt, 20, &h), -1);           /* a pad count of 0 */
    pkt[19] = 9;
    assert_int_equal(sc_rtp_parse(pkt, 20, &h), -1);           /* more than the 8 payload bytes */
    pkt[19] = 8;
    assert_int_equal(sc_rtp_parse(pkt, 20, &h), 0);
    assert_int_equal(sc_rtp_parse(pkt, 12, &h), -1);           /* padding flag and no payload */
}

static void test_demux(void **state)
{
    (void)state;
    uint8_t rtp[12], rtcp[8] = { 0x81, 201, 0, 1 };
    sc_rtp_write_header(rtp, 0, 111, 1, 2, 3);
    assert_true(sc_rtp_is_rtp_or_rtcp(rtp, sizeof rtp));
    assert_false(sc_rtp_is_rtcp(rtp, sizeof rtp));
    sc_rtp_write_header(rtp, 1, 111, 1, 2, 3); /* the marker does not make it RTCP */
    assert_false(sc_rtp_is_rtcp(rtp, sizeof rtp));
    assert_true(sc_rtp_is_rtp_or_rtcp(rtcp, sizeof rtcp));
    assert_true(sc_rtp_is_rtcp(rtcp, sizeof rtcp));
    for (int pt = 192; pt <= 223; pt++) {
        rtcp[1] = (uint8_t)pt;
        assert_true(sc_rtp_is_rtcp(rtcp, sizeof rtcp));
    }
    rtcp[1] = 191;
    assert_false(sc_rtp_is_rtcp(rtcp, sizeof rtcp));
    rtcp[1] = 224;
    assert_false(sc_rtp_is_rtcp(rtcp, sizeof rtcp));
    /* STUN (0..3), DTLS (20..63) and empty datagrams are neither */
    uint8_t stun[] = { 0x00, 0x01 }, dtls[] = { 22, 0xFE };
    assert_false(sc_rtp_is_rtp_or_rtcp(stun, sizeof stun));
    assert_false(sc_rtp_is_rtp_or_rtcp(dtls, sizeof dtls));
    assert_false(sc_rtp_is_rtp_or_rtcp(rtp, 0));
    uint8_t hi[] = { 192, 200 };
    assert_false(sc_rtp_is_rtp_or_rtcp(hi, sizeof hi));
    assert_false(sc_rtp_is_rtcp(hi, sizeof hi));
}

/* --- RTCP -------------------------------------------------------------------------------- */

static void test_sr_rr_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sc_rtcp_write_sr(buf, sizeof buf, 0x11111111, 0xAABBCCDDEEFF0011ull, 48000, 50, 4000);
    assert_int_equal(n, 28);
    sc_rtcp_block_t blk = { .ssrc = 0x22222222, .fraction_lost = 25, .cumulative_lost = -3,
                            .highest_seq = 0x1FFFF, .jitter = 120, .lsr = 0xCCDDEEFF, .dlsr = 65536 };
    size_t m = sc_rtcp_write_rr(buf + n, sizeof buf - n, 0x33333333, &blk);
    assert_int_equal(m, 32);
    /* a BYE to end the compound */
    uint8_t bye[] = { 0x81, 203, 0, 1, 0x11, 0x11, 0x11, 0x11 };
    memcpy(buf + n + m, bye, sizeof bye);
    sc_rtcp_info_t info;
    assert_int_equal(sc_rtcp_parse(buf, n + m + sizeof bye, &info), 0);
    assert_int_equal(info.packets, 3);
    assert_true(info.has_sr);
    assert_int_equal(info.sr_ssrc, 0x11111111);
    assert_int_equal(info.sr_ntp_mid, 0xCCDDEEFF);
    assert_int_equal(info.sr_rtp_ts, 48000);
    assert_int_equal(info.sr_packets, 50);
    assert_int_equal(info.sr_octets, 4000);
    assert_int_equal(info.nblocks, 1);
    assert_int_equal(info.blocks[0].ssrc, 0x22222222);
    assert_int_equal(info.blocks[0].fraction_lost, 25);
    assert_int_equal(info.blocks[0].cumulative_lost, -3);
    assert_int_equal(info.blocks[0].highest_seq, 0x1FFFF);
    assert_int_equal(info.blocks[0].jitter, 120);
    assert_int_equal(info.blocks[0].lsr, 0xCCDDEEFF);
    assert_int_equal(info.blocks[0].dlsr, 65536);
    assert_true(info.bye);
    /* an RR without blocks; and caps too small write nothing */
    assert_int_equal(sc_rtcp_write_rr(buf, sizeof buf, 7, NULL), 8);
    assert_int_equal(sc_rtcp_parse(buf, 8, &info), 0);
    assert_int_equal(info.nblocks, 0);
    assert_false(info.has_sr);
    assert_int_equal(sc_rtcp_write_rr(buf, 31, 7, &blk), 0);
    assert_int_equal(sc_rtcp_write_sr(buf, 27, 7, 0, 0, 0, 0), 0);
}

static void test_rtcp_refusals(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = sc_rtcp_write_sr(buf, sizeof buf, 1, 2, 3, 4, 5);
    sc_rtcp_info_t info;
    assert_int_equal(sc_rtcp_parse(buf, n - 1, &info), -1); /* length runs past the end */
    assert_int_equal(sc_rtcp_parse(buf, n + 2, &info), -1); /* a 2-byte tail is no packet */
    assert_int_equal(sc_rtcp_parse(buf, 0, &info), -1);
    buf[0] = 0x40;
    assert_int_equal(sc_rtcp_parse(buf, n, &info), -1);     /* version 1 */
    buf[0] = 0x81;                                          /* one block claimed, none there */
    assert_int_equal(sc_rtcp_parse(buf, n, &info), -1);
    uint8_t rr[] = { 0x81, 201, 0, 1, 0, 0, 0, 1 };         /* RR: the same */
    assert_int_equal(sc_rtcp_parse(rr, sizeof rr, &info), -1);
    uint8_t short_sr[] = { 0x80, 200, 0, 1, 0, 0, 0, 1 };   /* an SR without sender info */
    assert_int_equal(sc_rtcp_parse(short_sr, sizeof short_sr, &info), -1);
    /* unknown types (here a transport-wide feedback) are skipped, not refused */
    uint8_t fb[] = { 0x8F, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2 };
    assert_int_equal(sc_rtcp_parse(fb, sizeof fb, &info), 0);
    assert_int_equal(info.packets, 1);
}

/* --- receiver statistics ----------------------------------------------------------------- */

static void test_rx_loss_fraction(void **state)
{
    (void)state;
    sc_rtp_rx_t rx;
    memset(&rx, 0, sizeof rx);
    /* 1000 packets sent, every tenth lost, 20 ms apart with no jitter */
    for (uint32_t i = 0; i < 1000; i++)
        if (i % 10 != 5)
            sc_rtp_rx_update(&rx, (uint16_t)(100 + i), i * 960, 5000 + i * 960);
    sc_rtcp_block_t b;
    sc_rtp_rx_block(&rx, 42, 1000, &b);
    assert_int_equal(b.ssrc, 42);
    assert_int_equal(b.fraction_lost, 25); /* 100/1000 * 256 = 25.6 */
    assert_int_equal(b.cumulative_lost, 100);
    assert_int_equal(b.highest_seq, 100 + 999);
    assert_int_equal(b.jitter, 0);
    assert_int_equal(b.lsr, 0);
    assert_int_equal(b.dlsr, 0);
    /* the next interval has no loss: the fraction is per interval, the total is not */
    for (uint32_t i = 1000; i < 1100; i++)
        sc_rtp_rx_update(&rx, (uint16_t)(100 + i), i * 960, 5000 + i * 960);
    sc_rtp_rx_block(&rx, 42, 2000, &b);
    assert_int_equal(b.fraction_lost, 0);
    assert_int_equal(b.cumulative_lost, 100);
}

static void test_rx_wraparound_and_jitter(void **state)
{
    (void)state;
    sc_rtp_rx_t rx;
    memset(&rx, 0, sizeof rx);
    /* every other arrival is 10 ms late: |D| is 480 each time */
    for (uint32_t i = 0; i < 110; i++) {
        uint16_t seq = (uint16_t)(65436 + i); /* wraps after 100 packets */
        uint32_t jitter = i % 2 ? 480 : 0;
        sc_rtp_rx_update(&rx, seq, i * 960, 7 + i * 960 + jitter);
    }
    assert_int_equal(rx.cycles, 65536);
    sc_rtcp_block_t b;
    sc_rtp_rx_block(&rx, 1, 0, &b);
    assert_int_equal(b.highest_seq, 65536 + 9);
    assert_int_equal(b.cumulative_lost, 0);
    assert_int_equal(b.fraction_lost, 0);
    /* A.8's estimate converges towards |D| = 480 */
    assert_true(b.jitter > 400 && b.jitter <= 480);

    /* a reordered packet from before the wrap does not count another cycle */
    sc_rtp_rx_update(&rx, 65535, 0, 0);
    assert_int_equal(rx.cycles, 65536);
    /* a stray far jump is ignored; two in a row restart the sequence */
    uint32_t received = rx.received;
    sc_rtp_rx_update(&rx, 30000, 0, 0);
    assert_int_equal(rx.received, received);
    sc_rtp_rx_update(&rx, 30001, 0, 0);
    assert_int_equal(rx.received, 1);
    sc_rtp_rx_block(&rx, 1, 0, &b);
    assert_int_equal(b.highest_seq, 30001);
}

static void test_rx_lsr_dlsr(void **state)
{
    (void)state;
    sc_rtp_rx_t rx;
    memset(&rx, 0, sizeof rx);
    sc_rtp_rx_update(&rx, 1, 0, 0);
    sc_rtp_rx_sr(&rx, 0x12345678, 10000);
    sc_rtcp_block_t b;
    sc_rtp_rx_block(&rx, 1, 10500, &b);
    assert_int_equal(b.lsr, 0x12345678);
    assert_int_equal(b.dlsr, 32768); /* half a second */
    sc_rtp_rx_block(&rx, 1, 10000, &b);
    assert_int_equal(b.dlsr, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_plain),
        cmocka_unit_test(test_parse_csrc_ext_padding),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_demux),
        cmocka_unit_test(test_sr_rr_roundtrip),
        cmocka_unit_test(test_rtcp_refusals),
        cmocka_unit_test(test_rx_loss_fraction),
        cmocka_unit_test(test_rx_wraparound_and_jitter),
        cmocka_unit_test(test_rx_lsr_dlsr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
