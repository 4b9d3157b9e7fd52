/* test_config.c — defaults, INI file, flags over the file, and clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spacecast/config.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sc_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    sc_config_t c;
    sc_config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8000");
    assert_string_equal(c.data, "./data");
    assert_int_equal(c.max_header_bytes, 8192);
    assert_int_equal(c.bitrate, 32000);
}

static void test_file_then_flags(void **state)
{
    (void)state;
    sc_config_t c;
    char err[256];
    sc_config_defaults(&c);
    char *path = write_tmp("[server]\nlisten = 0.0.0.0:9000\n[limits]\njoin_rate = 50\n[audio]\nrecord = false\n");
    assert_int_equal(sc_config_load_file(&c, path, err, sizeof err), 0);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_int_equal(c.join_rate, 50);
    assert_int_equal(c.record, 0);
    int used;
    assert_int_equal(sc_config_apply_flag(&c, "--join-rate", "75", &used, err, sizeof err), 0);
    assert_int_equal(used, 2);
    assert_int_equal(c.join_rate, 75);
    assert_int_equal(sc_config_apply_flag(&c, "--listen=127.0.0.1:1", NULL, &used, err, sizeof err), 0);
    assert_int_equal(used, 1);
    assert_string_equal(c.listen, "127.0.0.1:1");
    assert_int_equal(sc_config_apply_flag(&c, "--demo", NULL, &used, err, sizeof err), 0);
    assert_int_equal(c.demo, 1);
    unlink(path);
}

/* docs/tls.md and many a hand-written file put a '#' comment after a value, as after a ';' */
static void test_inline_comments(void **state)
{
    (void)state;
    sc_config_t c;
    char err[256];
    sc_config_defaults(&c);
    char *path = write_tmp("[tls]\ntls_cert = /etc/x/full#chain.pem   # the certificate, then its chain\n"
                           "tls_hsts_max_age = 63072000     # optional: 2 years\n"
                           "[limits]\njoin_rate = 50\t# a tab before it\nmax_listeners = 70 ; inih's own\n");
    assert_int_equal(sc_config_load_file(&c, path, err, sizeof err), 0);
    assert_string_equal(c.tls_cert, "/etc/x/full#chain.pem"); /* a '#' inside a value stays */
    assert_int_equal(c.tls_hsts_max_age, 63072000);
    assert_int_equal(c.join_rate, 50);
    assert_int_equal(c.max_listeners, 70);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    sc_config_t c;
    char err[256];
    int used;
    sc_config_defaults(&c);
    char *path = write_tmp("[limits]\nno_such_key = 1\n");
    assert_int_equal(sc_config_load_file(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "no_such_key"));
    unlink(path);
    path = write_tmp("[limits]\njoin_rate = lots\n");
    assert_int_equal(sc_config_load_file(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a number"));
    unlink(path);
    assert_int_equal(sc_config_apply_flag(&c, "--join-rate", "0", &used, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside"));
    assert_int_equal(sc_config_apply_flag(&c, "--listen", NULL, &used, err, sizeof err), -1);
    assert_int_equal(sc_config_apply_flag(&c, "--bogus", "1", &used, err, sizeof err), 1);
    assert_int_equal(sc_config_load_file(&c, "/nonexistent/x.ini", err, sizeof err), -1);
}

static void test_reload_limits_only(void **state)
{
    (void)state;
    sc_config_t c;
    char err[256];
    sc_config_defaults(&c);
    char *path = write_tmp("[server]\nlisten = 0.0.0.0:1\n[limits]\nmax_listeners = 5\n");
    assert_int_equal(sc_config_reload_limits(&c, path, err, sizeof err), 0);
    assert_int_equal(c.max_listeners, 5);
    assert_string_equal(c.listen, "127.0.0.1:8000"); /* [server] needs a restart */
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_then_flags),
        cmocka_unit_test(test_inline_comments),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reload_limits_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
