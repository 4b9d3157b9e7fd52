/* test_api_params.c — what reactions, pin, marks, clips and an edge's report may carry: the
 * emoji set, http(s) links only (no javascript:, no header or markup breakers), titles without
 * control characters, clip ranges of at most 60 s in plain seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "spacecast/api_util.h"

static json_t *J(const char *t)
{
    json_t *o = json_loads(t, JSON_ALLOW_NUL, NULL); /* the check must hold even if a NUL got through */
    assert_non_null(o);
    return o;
}

static void test_reaction(void **state)
{
    (void)state;
    const char *listener, *err;
    json_t *o = J("{\"emoji\":\"\xF0\x9F\x94\xA5\"}");
    assert_int_equal(sc_api_reaction_params(o, &listener, &err), 3);
    assert_null(listener);
    json_decref(o);
    o = J("{\"emoji\":\"\xF0\x9F\x91\x8F\",\"listener\":\"tab-1_A\"}");
    assert_int_equal(sc_api_reaction_params(o, &listener, &err), 0);
    assert_string_equal(listener, "tab-1_A");
    json_decref(o);
    const char *bad[] = { "{}", "{\"emoji\":1}", "{\"emoji\":\"x\"}", "{\"emoji\":\"\xF0\x9F\x91\x8F\",\"listener\":\"a b\"}",
                          "{\"emoji\":\"\xF0\x9F\x91\x8F\",\"listener\":\"\"}",
                          "{\"emoji\":\"\xF0\x9F\x91\x8F\xF0\x9F\x91\x8F\"}" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o = J(bad[i]);
        assert_int_equal(sc_api_reaction_params(o, &listener, &err), -1);
        json_decref(o);
    }
}

/* the reaction body read in place: the shapes clients send, read as jansson would; any other
 * body is left to jansson (-1), never answered differently */
static void test_reaction_fast(void **state)
{
    (void)state;
    const char *l;
    size_t n;
    const char *b = "{\"emoji\":\"\xF0\x9F\x94\xA5\"}";
    assert_int_equal(sc_api_reaction_fast(b, strlen(b), &l, &n), 3);
    assert_null(l);
    b = " {\n \"listener\" : \"tab-1_A\" ,\t\"emoji\":\"\xE2\x9D\xA4\xEF\xB8\x8F\"}\r\n";
    assert_int_equal(sc_api_reaction_fast(b, strlen(b), &l, &n), 1);
    assert_int_equal(n, 7);
    assert_memory_equal(l, "tab-1_A", 7);
    b = "{\"emoji\":\"\xE2\x9D\xA4\"}"; /* the heart without U+FE0F is the same emoji */
    assert_int_equal(sc_api_reaction_fast(b, strlen(b), &l, &n), 1);
    const char *other[] = { "{}", "{\"emoji\":\"\\ud83d\\udc4f\"}" /* escapes: jansson's */, "{\"emoji\":\"x\"}",
                            "{\"emoji\":\"\xF0\x9F\x91\x8F\",\"emoji\":\"\xF0\x9F\x91\x8F\"}",
                            "{\"emoji\":\"\xF0\x9F\x91\x8F\",\"listener\":\"a b\"}",
                            "{\"emoji\":\"\xF0\x9F\x91\x8F\",\"listener\":\"\"}", "{\"emoji\":\"\xF0\x9F\x91\x8F\"} x",
                            "{\"emoji\":\"\xF0\x9F\x91\x8F\",\"n\":1}", "{\"emoji\":\"\xF0\x9F\x91\x8F\",}",
                            "{\"listener\":\"a\"}", "{\"emoji\":\"\xF0\x9F\x91\x8F\"", "[]" };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        l = "x";
        assert_int_equal(sc_api_reaction_fast(other[i], strlen(other[i]), &l, &n), -1);
        assert_null(l);
    }
}

static void test_pin(void **state)
{
    (void)state;
    const char *good[] = { "https://example.com", "http://x.y/a?b=c&d=%20#frag", "https://[::1]:8443/p",
                           "https://example.com/it's(fine)" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(sc_api_valid_pin_url(good[i]), 1);
    const char *bad[] = { "javascript:alert(1)", "data:text/html,x", "ftp://x", "https://", "http:///path",
                          "https://a b", "https://x\"onmouseover=", "https://x<script>", "https://x\r\nSet-Cookie:",
                          "https://ex\xC3\xA4mple.com", "//example.com", "HTTPS://example.com", "https://x/{}" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sc_api_valid_pin_url(bad[i]), 0);
    char longurl[600] = "https://e.com/";
    memset(longurl + 14, 'a', 499);
    longurl[513] = '\0';
    assert_int_equal(sc_api_valid_pin_url(longurl), 0);
    longurl[512] = '\0';
    assert_int_equal(sc_api_valid_pin_url(longurl), 1);
    const char *url, *text, *err;
    json_t *o = J("{\"url\":\"https://e.com\",\"text\":\"<b>Read</b> this\"}");
    assert_int_equal(sc_api_pin_params(o, &url, &text, &err), 0);
    assert_string_equal(text, "<b>Read</b> this"); /* kept as text: the page escapes it */
    json_decref(o);
    o = J("{\"url\":\"https://e.com\"}");
    assert_int_equal(sc_api_pin_params(o, &url, &text, &err), 0);
    assert_string_equal(text, "");
    json_decref(o);
    o = J("{\"url\":\"https://e.com\",\"text\":\"a\\u0000b\"}");
    assert_int_equal(sc_api_pin_params(o, &url, &text, &err), -1);
    json_decref(o);
    o = J("{\"url\":\"https://e.com\",\"text\":\"line\\nbreak\"}");
    assert_int_equal(sc_api_pin_params(o, &url, &text, &err), -1);
    json_decref(o);
}

static void test_mark(void **state)
{
    (void)state;
    const char *title, *err;
    json_t *o = J("{\"title\":\"Q&A \xF0\x9F\x8E\xA4\"}");
    assert_int_equal(sc_api_mark_params(o, &title, &err), 0);
    json_decref(o);
    const char *bad[] = { "{}", "{\"title\":\"\"}", "{\"title\":\"a\\tb\"}", "{\"title\":7}" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o = J(bad[i]);
        assert_int_equal(sc_api_mark_params(o, &title, &err), -1);
        json_decref(o);
    }
}

static void test_clip_range(void **state)
{
    (void)state;
    int64_t a, b;
    const char *err;
    assert_int_equal(sc_api_clip_range(SC_SLICE_LIT("start=90&end=120"), &a, &b, &err), 0);
    assert_int_equal(a, 90000);
    assert_int_equal(b, 120000);
    assert_int_equal(sc_api_clip_range(SC_SLICE_LIT("end=1.5&start=0.125"), &a, &b, &err), 0);
    assert_int_equal(a, 125);
    assert_int_equal(b, 1500);
    assert_int_equal(sc_api_clip_range(SC_SLICE_LIT("start=0&end=60"), &a, &b, &err), 0);
    const char *bad[] = { "start=0&end=60.001", "start=5&end=5", "start=6&end=5", "start=-1&end=5", "start=1e3&end=1001",
                          "start=1.2345&end=3", "start=1.&end=3", "start=.5&end=3", "start=0x10&end=20", "start=1",
                          "", "start=&end=3", "start=99999999999999999999&end=1", "start=1%00&end=3" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sc_api_clip_range(sc_slice_cstr(bad[i]), &a, &b, &err), -1);
}

static void test_edge_extras(void **state)
{
    (void)state;
    uint32_t c[SC_REACTIONS_N];
    const json_t *st;
    const char *err;
    json_t *o = J("{\"edge\":\"e\",\"listeners\":1,\"reactions\":{\"\xF0\x9F\x91\x8F\":7}}");
    assert_int_equal(sc_api_edge_extras(o, c, &st, &err), 0);
    assert_int_equal(c[0], 7);
    assert_null(st);
    json_decref(o);
    o = J("{\"reactions\":{\"\xF0\x9F\x91\x8F\":99999999999}}");
    assert_int_equal(sc_api_edge_extras(o, c, &st, &err), -1);
    json_decref(o);
    o = J("{\"stats\":{\"joins\":1}}");
    assert_int_equal(sc_api_edge_extras(o, c, &st, &err), -1);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reaction),  cmocka_unit_test(test_reaction_fast), cmocka_unit_test(test_pin),         cmocka_unit_test(test_mark),
        cmocka_unit_test(test_clip_range), cmocka_unit_test(test_edge_extras),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
