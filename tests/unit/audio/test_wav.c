/* test_wav.c — WAV headers we publish and the ones we refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "spacecast/wav.h"

static size_t make(uint8_t *b, int fmt, int ch, int rate, int bits, uint32_t data_len, int extra_chunk)
{
    size_t o = 0;
    memcpy(b, "RIFF\0\0\0\0WAVE", 12);
    o = 12;
    if (extra_chunk) { /* a LIST chunk of odd size before fmt: padding must be honoured */
        memcpy(b + o, "LIST\x03\0\0\0abc\0", 12);
        o += 12;
    }
    memcpy(b + o, "fmt \x10\0\0\0", 8);
    o += 8;
    b[o] = (uint8_t)fmt;
    b[o + 1] = 0;
    b[o + 2] = (uint8_t)ch;
    b[o + 3] = 0;
    memcpy(b + o + 4, &rate, 4);
    uint32_t br = (uint32_t)(rate * ch * bits / 8);
    memcpy(b + o + 8, &br, 4);
    b[o + 12] = (uint8_t)(ch * bits / 8);
    b[o + 13] = 0;
    b[o + 14] = (uint8_t)bits;
    b[o + 15] = 0;
    o += 16;
    memcpy(b + o, "data", 4);
    memcpy(b + o + 4, &data_len, 4);
    return o + 8;
}

static void test_accepts(void **state)
{
    (void)state;
    uint8_t b[128];
    sc_wav_info_t w;
    const char *why;
    size_t n = make(b, 1, 1, 48000, 16, 960, 0);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), 0);
    assert_int_equal(w.rate, 48000);
    assert_int_equal(w.data_off, n);
    n = make(b, 1, 2, 16000, 24, 600, 1);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), 0);
    assert_int_equal(w.channels, 2);
    assert_int_equal(w.bits, 24);
    n = make(b, 3, 1, 24000, 32, 400, 0);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), 0);
    assert_int_equal(w.format, 3);
}

static void test_refuses(void **state)
{
    (void)state;
    uint8_t b[128];
    sc_wav_info_t w;
    const char *why;
    size_t n = make(b, 1, 1, 44100, 16, 960, 0);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), -1);
    assert_non_null(strstr(why, "rate"));
    n = make(b, 1, 6, 48000, 16, 960, 0);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), -1);
    n = make(b, 1, 1, 48000, 8, 960, 0);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), -1);
    n = make(b, 1, 1, 48000, 16, 960, 0);
    assert_int_equal(sc_wav_parse(b, 20, &w, &why), -1); /* truncated */
    memcpy(b, "RIFX", 4);
    assert_int_equal(sc_wav_parse(b, n, &w, &why), -1);
    n = make(b, 1, 1, 48000, 16, 960, 0);
    memcpy(b + 16, "\xff\xff\xff\xff", 4); /* a huge fmt chunk size */
    assert_int_equal(sc_wav_parse(b, n, &w, &why), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_accepts), cmocka_unit_test(test_refuses) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
