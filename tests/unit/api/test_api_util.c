/* test_api_util.c — validation of API JSON bodies (create a Space) and time parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/api_util.h"

static int params(const char *text, sc_space_params_t *p, const char **why)
{
    json_error_t e;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    assert_non_null(o);
    int rc = sc_api_space_params(o, 1000, 1, p, why);
    static char host[80]; /* host_name points into the object, freed here */
    if (rc == 0 && p->host_name) {
        snprintf(host, sizeof host, "%s", p->host_name);
        p->host_name = host;
    }
    json_decref(o);
    return rc;
}

static void test_valid(void **state)
{
    (void)state;
    sc_space_params_t p;
    const char *why;
    assert_int_equal(params("{\"title\":\"Town hall\"}", &p, &why), 0);
    assert_int_equal(p.record, 1);
    assert_int_equal(p.max_listeners, 1000);
    assert_int_equal(p.scheduled_start, 0);
    assert_int_equal(params("{\"title\":\"t\",\"scheduled_start\":\"2026-11-24T20:00:00Z\",\"record\":false,"
                            "\"max_listeners\":5}", &p, &why), 0);
    assert_int_equal(p.scheduled_start, 1795550400);
    assert_int_equal(p.record, 0);
    assert_int_equal(p.max_listeners, 5);
    assert_int_equal(params("{\"title\":\"t\",\"scheduled_start\":1795550400}", &p, &why), 0);
    assert_int_equal(p.scheduled_start, 1795550400);
    assert_int_equal(params("{\"title\":\"t\",\"scheduled_start\":\"2026-11-24T20:00:00.250+00:00\"}", &p, &why), 0);
    assert_null(p.host_name); /* the host is called "host" */
    assert_int_equal(params("{\"title\":\"t\",\"host_name\":\"Ada Lovelace\"}", &p, &why), 0);
    assert_string_equal(p.host_name, "Ada Lovelace");
    assert_int_equal(params("{\"title\":\"t\",\"host_name\":\"Zo\u00eb \u738b\"}", &p, &why), 0);
    assert_string_equal(p.host_name, "Zo\xc3\xab \xe7\x8e\x8b");
    assert_int_equal(params("{\"title\":\"t\",\"host_name\":null}", &p, &why), 0);
    assert_null(p.host_name);
}

static void test_invalid(void **state)
{
    (void)state;
    sc_space_params_t p;
    const char *why;
    static const char *const bad[] = {
        "{}", "{\"title\":5}", "{\"title\":\"\"}", "{\"title\":null}",
        "{\"title\":\"t\",\"record\":\"yes\"}", "{\"title\":\"t\",\"max_listeners\":0}",
        "{\"title\":\"t\",\"max_listeners\":1001}", "{\"title\":\"t\",\"max_listeners\":2.5}",
        "{\"title\":\"t\",\"scheduled_start\":\"tomorrow\"}", "{\"title\":\"t\",\"scheduled_start\":-5}",
        "{\"title\":\"t\",\"scheduled_start\":\"1013-11-24T20:00:00Z\"}",
        "{\"title\":\"t\",\"scheduled_start\":\"2026-11-24T20:00:00+05:00\"}",
        /* a host name follows a speaker name's rules: it is in the host's tokens */
        "{\"title\":\"t\",\"host_name\":\"\"}", "{\"title\":\"t\",\"host_name\":5}",
        "{\"title\":\"t\",\"host_name\":\" Ada\"}", "{\"title\":\"t\",\"host_name\":\"a|b\"}",
        "{\"title\":\"t\",\"host_name\":\"a.b\"}", "{\"title\":\"t\",\"host_name\":\"a\\nb\"}",
        "{\"title\":\"t\",\"host_name\":\"a\\u0001b\"}",
        "{\"title\":\"t\",\"host_name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(params(bad[i], &p, &why), -1);
        assert_non_null(why);
    }
    char big[400] = "{\"title\":\"";
    memset(big + 10, 'a', 300);
    strcpy(big + 310, "\"}");
    assert_int_equal(params(big, &p, &why), -1); /* over 256 bytes */
}

static int ctype(const char *s)
{
    /* an exact-size heap copy: under ASan a read past the header value is caught */
    size_t n = strlen(s);
    char *b = malloc(n ? n : 1);
    memcpy(b, s, n);
    sc_slice_t v = sc_slice(b, n);
    int rc = sc_api_source_codec(&v);
    free(b);
    return rc;
}

static void test_source_codec(void **state)
{
    (void)state;
    assert_int_equal(sc_api_source_codec(NULL), SC_CODEC_NONE); /* no Content-Type: look at the bytes */
    assert_int_equal(ctype("audio/ogg"), SC_CODEC_NONE);
    assert_int_equal(ctype("application/octet-stream"), SC_CODEC_NONE);
    assert_int_equal(ctype("audio/mpeg"), SC_CODEC_MP3);
    assert_int_equal(ctype("AUDIO/AAC"), SC_CODEC_AAC);
    assert_int_equal(ctype("audio/ogg; codecs=opus"), SC_CODEC_NONE);
    assert_int_equal(ctype("audio/ogg ; Codecs=\"Vorbis\""), SC_CODEC_NONE);
    assert_int_equal(ctype("audio/ogg; charset=x"), SC_CODEC_NONE);
    assert_int_equal(ctype("audio/ogg; codecs=speex"), -1);
    assert_int_equal(ctype("audio/webm"), -1);
    assert_int_equal(ctype("video/mp4"), -1);
    assert_int_equal(ctype(""), -1);
    assert_int_equal(ctype("audio/ogg    ;codecs=speex"), -1);
    /* the parameters end where the value ends: blanks before ';' once stretched them past it,
     * here onto the "opus" that follows in memory, which then let speex in */
    static const char buf[] = "audio/ogg    ;codecs=speexopus";
    sc_slice_t v = sc_slice(buf, sizeof buf - 1 - 4);
    assert_int_equal(sc_api_source_codec(&v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_valid), cmocka_unit_test(test_invalid),
                                        cmocka_unit_test(test_source_codec) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
