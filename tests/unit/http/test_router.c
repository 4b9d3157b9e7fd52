/* test_router.c — the router as a pure matcher over a table it is handed: captures, HEAD on
 * GET routes, 404 against 405 (path_known), segment limits, route indexes and names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "spacecast/router.h"

static void h_a(struct sc_req *r) { (void)r; }
static void h_b(struct sc_req *r) { (void)r; }

static const sc_route_t routes[] = {
    { "GET", "/api/spaces", h_a, 0, "list" },
    { "POST", "/api/spaces", h_b, 0, "create" },
    { "GET", "/api/spaces/{}", h_a, 0, "get" },
    { "DELETE", "/api/spaces/{}/speakers/{}", h_b, 0, "remove" },
    { "GET", "/web/{}/{}", h_a, SC_ROUTE_PUBLIC, "web" },
};
static const sc_router_t router = { routes, sizeof routes / sizeof routes[0] };

static const sc_route_t *match(const char *method, const char *path, sc_slice_t *args, int *known)
{
    return sc_router_match(&router, sc_slice_cstr(method), sc_slice_cstr(path), args, known);
}

static void test_captures(void **state)
{
    (void)state;
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    int known;
    const sc_route_t *r = match("DELETE", "/api/spaces/abc/speakers/bob", args, &known);
    assert_ptr_equal(r, &routes[3]);
    assert_true(sc_slice_eq(args[0], "abc"));
    assert_true(sc_slice_eq(args[1], "bob"));
    assert_null(args[2].base); /* unused captures are zeroed */
    r = match("GET", "/api/spaces/abc", args, &known);
    assert_ptr_equal(r, &routes[2]);
    assert_true(sc_slice_eq(args[0], "abc"));
    assert_null(args[1].base);
}

static void test_methods(void **state)
{
    (void)state;
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    int known;
    assert_ptr_equal(match("POST", "/api/spaces", args, &known), &routes[1]);
    assert_ptr_equal(match("HEAD", "/api/spaces", args, &known), &routes[0]); /* GET answers HEAD */
    assert_null(match("PUT", "/api/spaces", args, &known));
    assert_int_equal(known, 1); /* 405, not 404 */
    assert_null(match("HEAD", "/api/spaces/x/speakers/y", args, &known)); /* only DELETE there */
    assert_int_equal(known, 1);
    assert_null(match("GET", "/nowhere", args, &known));
    assert_int_equal(known, 0);
}

/* the literal after a pattern's last capture must end the path (the router's quick refusal) */
static void test_tails(void **state)
{
    (void)state;
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    int known;
    assert_null(match("DELETE", "/api/spaces/abc/speakers/bob/", args, &known));
    assert_null(match("DELETE", "/api/spaces/abc/speakerz/bob", args, &known));
    assert_null(match("GET", "/api/spacesx", args, &known));  /* no capture: the whole path */
    assert_null(match("GET", "/xapi/spaces", args, &known));
    assert_null(match("GET", "/api/space", args, &known));
    assert_ptr_equal(match("GET", "/web/a/b", args, &known), &routes[4]);
    assert_true(sc_slice_eq(args[1], "b"));
    assert_null(match("GET", "/web/a", args, &known));
    assert_null(match("GET", "/web/a/b/c", args, &known));
}

static void test_allow(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(sc_router_allow(&router, sc_slice_cstr("/api/spaces"), out, sizeof out), strlen("GET, HEAD, POST"));
    assert_string_equal(out, "GET, HEAD, POST");
    sc_router_allow(&router, sc_slice_cstr("/api/spaces/x/speakers/y"), out, sizeof out);
    assert_string_equal(out, "DELETE");
    assert_int_equal(sc_router_allow(&router, sc_slice_cstr("/nowhere"), out, sizeof out), 0);
    assert_string_equal(out, "");
    char tiny[6]; /* never past the end: a method that does not fit is left out */
    sc_router_allow(&router, sc_slice_cstr("/api/spaces"), tiny, sizeof tiny);
    assert_string_equal(tiny, "GET");
}

static void test_segments(void **state)
{
    (void)state;
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    int known;
    assert_null(match("GET", "/api/spaces/", args, &known));      /* a capture is never empty */
    assert_null(match("GET", "/api/spaces/a/b", args, &known));   /* nor two segments */
    assert_null(match("GET", "/api/spacesX", args, &known));
    assert_null(match("GET", "/api/space", args, &known));
    char longseg[16 + SC_ROUTE_ARG_MAX + 2] = "/api/spaces/";
    memset(longseg + 12, 'a', SC_ROUTE_ARG_MAX + 1);
    longseg[12 + SC_ROUTE_ARG_MAX + 1] = '\0';
    assert_null(match("GET", longseg, args, &known)); /* no id we issue is that long */
    longseg[12 + SC_ROUTE_ARG_MAX] = '\0';
    assert_ptr_equal(match("GET", longseg, args, &known), &routes[2]);
    assert_ptr_equal(match("GET", "/web/vendor/hls.js", args, &known), &routes[4]);
}

static void test_index_and_name(void **state)
{
    (void)state;
    assert_int_equal(sc_router_index(&router, NULL), SC_ROUTE_NONE);
    assert_int_equal(sc_router_index(&router, &routes[0]), 1);
    assert_int_equal(sc_router_index(&router, &routes[4]), 5);
    assert_string_equal(sc_router_name(&router, 0), "none");
    assert_string_equal(sc_router_name(&router, 3), "get");
    assert_string_equal(sc_router_name(&router, 99), "none");
    sc_slice_t args[SC_ROUTE_MAX_ARGS];
    int known;
    assert_null(sc_router_match(NULL, sc_slice_cstr("GET"), sc_slice_cstr("/api/spaces"), args, &known));
    assert_int_equal(known, 0); /* no table: nothing matches */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures), cmocka_unit_test(test_tails),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_index_and_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
