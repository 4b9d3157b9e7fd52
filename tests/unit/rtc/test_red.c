/* test_red.c — RFC 2198 redundancy: a payload as Chromium builds it (one copy, then the primary)
 * split back into its blocks; our sender's payloads (0-3 copies, the first packets with fewer,
 * copies too long or too old for the header fields left out) read back by our own parser;
 * which copies can be placed (back to back from the primary: not across a DTX gap, not another
 * codec); and every malformed payload refused, never read past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "spacecast/red.h"

/* What Chromium sends: a 40-byte copy of the packet before (offset 960) and a 50-byte primary. */
static void test_parse_chromium(void **state)
{
    (void)state;
    uint8_t p[5 + 40 + 50];
    p[0] = 0x80 | 111;
    p[1] = 960 >> 6;
    p[2] = (uint8_t)((960 & 0x3F) << 2 | 0);
    p[3] = 40;
    p[4] = 111;
    memset(p + 5, 0xAA, 40);
    memset(p + 45, 0xBB, 50);
    sc_red_block_t b[SC_RED_MAX_BLOCKS];
    assert_int_equal(sc_red_parse(p, sizeof p, b, SC_RED_MAX_BLOCKS), 2);
    assert_int_equal(b[0].pt, 111);
    assert_int_equal(b[0].ts_offset, 960);
    assert_int_equal(b[0].len, 40);
    assert_ptr_equal(b[0].data, p + 5);
    assert_int_equal(b[1].pt, 111);
    assert_int_equal(b[1].ts_offset, 0);
    assert_int_equal(b[1].len, 50);
    assert_ptr_equal(b[1].data, p + 45);
    /* a primary alone (Chromium's first packet) */
    assert_int_equal(sc_red_parse(p + 4, sizeof p - 4, b, SC_RED_MAX_BLOCKS), 1);
    assert_int_equal(b[0].len, sizeof p - 5);
}

static void test_parse_malformed(void **state)
{
    (void)state;
    sc_red_block_t b[SC_RED_MAX_BLOCKS];
    uint8_t p[64] = { 0 };
    assert_int_equal(sc_red_parse(p, 0, b, SC_RED_MAX_BLOCKS), -1); /* nothing */
    p[0] = 0x80 | 111;                                               /* a redundant header cut short */
    for (size_t n = 1; n <= 4; n++)
        assert_int_equal(sc_red_parse(p, n, b, SC_RED_MAX_BLOCKS), -1);
    p[3] = 10; /* a 10-byte copy, a primary header, and only 9 bytes left */
    p[4] = 111;
    assert_int_equal(sc_red_parse(p, 5 + 9, b, SC_RED_MAX_BLOCKS), -1);
    assert_int_equal(sc_red_parse(p, 5 + 10, b, SC_RED_MAX_BLOCKS), 2); /* the primary empty */
    assert_int_equal(b[1].len, 0);
    /* more blocks than asked for, or than we ever take */
    uint8_t many[4 * 20 + 1];
    for (int i = 0; i < 20; i++) {
        many[4 * i] = 0x80 | 111;
        many[4 * i + 1] = many[4 * i + 2] = many[4 * i + 3] = 0;
    }
    many[80] = 111;
    assert_int_equal(sc_red_parse(many, sizeof many, b, 2), -1);
    assert_int_equal(sc_red_parse(many, sizeof many, b, SC_RED_MAX_BLOCKS), -1);
    assert_int_equal(sc_red_parse(many + 4 * 5, sizeof many - 4 * 5, b, SC_RED_MAX_BLOCKS), 16);
    /* the biggest lengths and offsets the fields hold */
    uint8_t *big = malloc(5 + 1023 + 1);
    big[0] = 0x80 | 5;
    big[1] = 0xFF;
    big[2] = 0xFF;
    big[3] = 0xFF;
    big[4] = 5;
    assert_int_equal(sc_red_parse(big, 5 + 1023 + 1, b, SC_RED_MAX_BLOCKS), 2);
    assert_int_equal(b[0].ts_offset, 16383);
    assert_int_equal(b[0].len, 1023);
    assert_int_equal(b[1].len, 1);
    assert_int_equal(sc_red_parse(big, 5 + 1022, b, SC_RED_MAX_BLOCKS), -1);
    free(big);
}

/* Our sender, read back: depth copies once that many packets went before. */
static void test_sender_roundtrip(void **state)
{
    (void)state;
    for (int depth = 0; depth <= SC_RED_MAX_DEPTH + 1; depth++) {
        sc_red_enc_t e;
        sc_red_enc_init(&e, depth);
        int want_depth = depth > SC_RED_MAX_DEPTH ? SC_RED_MAX_DEPTH : depth;
        for (int k = 0; k < 6; k++) {
            uint8_t pkt[100], out[1200];
            size_t len = 20 + (size_t)k;
            memset(pkt, k + 1, len);
            ssize_t n = sc_red_enc_packet(&e, 111, 1000 + 960 * (uint32_t)k, pkt, len, out, sizeof out);
            assert_true(n > 0);
            sc_red_block_t b[SC_RED_MAX_BLOCKS];
            int nb = sc_red_parse(out, (size_t)n, b, SC_RED_MAX_BLOCKS);
            int copies = k < want_depth ? k : want_depth;
            assert_int_equal(nb, copies + 1);
            for (int i = 0; i < nb; i++) {
                int from = k - (nb - 1 - i); /* the packet this block is a copy of */
                assert_int_equal(b[i].pt, 111);
                assert_int_equal(b[i].len, 20 + from);
                assert_int_equal(b[i].ts_offset, 960 * (uint32_t)(k - from));
                assert_int_equal(b[i].data[0], from + 1);
                b[i].samples = 960;
            }
            assert_int_equal(sc_red_usable(b, nb, 111), copies);
        }
    }
}

/* Copies that do not fit are left out, the oldest first; an unfit one ends the run. */
static void test_sender_limits(void **state)
{
    (void)state;
    sc_red_enc_t e;
    sc_red_enc_init(&e, 2);
    uint8_t pkt[1100], out[1200];
    sc_red_block_t b[SC_RED_MAX_BLOCKS];
    memset(pkt, 7, sizeof pkt);
    assert_true(sc_red_enc_packet(&e, 111, 0, pkt, 500, out, sizeof out) > 0);
    assert_true(sc_red_enc_packet(&e, 111, 960, pkt, 500, out, sizeof out) > 0);
    /* 500 + 500 + 500 and the headers do not fit in 1200: only the newest copy goes */
    ssize_t n = sc_red_enc_packet(&e, 111, 1920, pkt, 500, out, sizeof out);
    assert_int_equal(sc_red_parse(out, (size_t)n, b, SC_RED_MAX_BLOCKS), 2);
    assert_int_equal(b[0].ts_offset, 960);
    /* a packet longer than a block's length field is never a copy, and blocks those before it */
    n = sc_red_enc_packet(&e, 111, 2880, pkt, 1100, out, sizeof out);
    assert_int_equal(sc_red_parse(out, (size_t)n, b, SC_RED_MAX_BLOCKS), 1); /* too big for copies with it */
    n = sc_red_enc_packet(&e, 111, 3840, pkt, 30, out, sizeof out);
    assert_int_equal(sc_red_parse(out, (size_t)n, b, SC_RED_MAX_BLOCKS), 1);
    n = sc_red_enc_packet(&e, 111, 4800, pkt, 30, out, sizeof out);
    assert_int_equal(sc_red_parse(out, (size_t)n, b, SC_RED_MAX_BLOCKS), 2);
    /* after a gap longer than the offset field (DTX), no copy */
    n = sc_red_enc_packet(&e, 111, 4800 + 16384, pkt, 30, out, sizeof out);
    assert_int_equal(sc_red_parse(out, (size_t)n, b, SC_RED_MAX_BLOCKS), 1);
    /* not even the packet fits */
    assert_int_equal(sc_red_enc_packet(&e, 111, 30000, pkt, 30, out, 30), -1);
}

/* Which copies stand for seq-1, seq-2...: only those back to back with the primary. */
static void test_usable(void **state)
{
    (void)state;
    sc_red_block_t b[4] = {
        { .pt = 111, .ts_offset = 2880, .len = 10, .samples = 960 },
        { .pt = 111, .ts_offset = 1920, .len = 10, .samples = 960 },
        { .pt = 111, .ts_offset = 960, .len = 10, .samples = 960 },
        { .pt = 111, .ts_offset = 0, .len = 10, .samples = 960 },
    };
    assert_int_equal(sc_red_usable(b, 4, 111), 3);
    assert_int_equal(sc_red_usable(b, 1, 111), 0);
    assert_int_equal(sc_red_usable(b, 4, 96), 0); /* not the Opus PT */
    b[0].ts_offset = 2880 + 960;                 /* a DTX gap before the newest two: they still count */
    assert_int_equal(sc_red_usable(b, 4, 111), 2);
    b[1].pt = 13; /* comfort noise in the middle: the run ends there */
    assert_int_equal(sc_red_usable(b, 4, 111), 1);
    b[2].samples = 0; /* not a valid Opus packet (the caller could not read its duration) */
    assert_int_equal(sc_red_usable(b, 4, 111), 0);
    b[2].samples = 1920; /* 40 ms packets, offsets in step */
    b[2].ts_offset = 1920;
    assert_int_equal(sc_red_usable(b, 4, 111), 1);
    b[2].len = 0;
    assert_int_equal(sc_red_usable(b, 4, 111), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_chromium),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_sender_roundtrip),
        cmocka_unit_test(test_sender_limits),
        cmocka_unit_test(test_usable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
