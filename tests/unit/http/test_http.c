/* test_http.c — HTTP on a real connection: one end of a socketpair is a connection of a worker
 * loop running on its own thread, speaking sc_http_proto against a stub route table handed
 * over with sc_http_set_router; the test writes requests on the other end and reads what comes
 * back. Framing (Content-Length, chunked, pipelining, 100-continue), keep-alive, the answers
 * nobody's handler gives (404, 405, 400, 413, the API-port refusal), HEAD, and the request's
 * hold released once its handler returns; a turn's reactions (SC_ROUTE_LATER) answered after its other
 * requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spacecast/config.h"
#include "spacecast/http.h"
#include "spacecast/worker-t.h"

/* --- the stub application --------------------------------------------------------------------- */

static atomic_int held, released, early; /* early: a release before its handler returned */

static void h_hello(sc_req_t *r) { sc_http_respond(r, 200, "text/plain", "hi", 2, NULL); }
static void h_echo(sc_req_t *r) { sc_http_respond(r, 200, "application/octet-stream", r->body.base, r->body.len, NULL); }
static void h_item(sc_req_t *r)
{
    char body[160];
    int n = snprintf(body, sizeof body, "[%.*s]", (int)r->args[0].len, r->args[0].base);
    sc_http_respond(r, 200, "text/plain", body, (size_t)n, NULL);
}
static void h_public(sc_req_t *r) { sc_http_respond(r, 200, "text/plain", "pub", 3, NULL); }
static void let_go(void *arg)
{
    (void)arg;
    atomic_fetch_add(&released, 1);
}
static void h_hold(sc_req_t *r)
{
    atomic_fetch_add(&held, 1);
    sc_http_hold(r, let_go, NULL);
    if (atomic_load(&released) != atomic_load(&held) - 1) /* (the loop's thread: no cmocka asserts here) */
        atomic_store(&early, 1);
    sc_http_respond(r, 204, NULL, NULL, 0, NULL);
}
static void h_silent(sc_req_t *r) { (void)r; } /* answers nothing: HTTP must */

/* The order handlers ran in (the loop's thread writes, the test reads once all is answered). */
static char dispatched[64][16];
static atomic_int ndispatched;
static void note(const char *what, sc_slice_t arg)
{
    int i = atomic_fetch_add(&ndispatched, 1);
    if (i < 64)
        snprintf(dispatched[i], sizeof dispatched[i], "%s%.*s", what, (int)arg.len, arg.base);
}
static void h_react(sc_req_t *r)
{
    note("react", r->args[0]);
    sc_http_respond(r, 204, NULL, NULL, 0, NULL);
}
static void h_details(sc_req_t *r)
{
    note("details", r->args[0]);
    sc_http_respond(r, 200, "text/plain", "details", 7, NULL);
}

static const sc_route_t routes[] = {
    { "GET", "/hello", h_hello, 0, "hello" },       { "POST", "/echo", h_echo, 0, "echo" },
    { "GET", "/items/{}", h_item, 0, "item" },      { "GET", "/public", h_public, SC_ROUTE_PUBLIC, "public" },
    { "GET", "/hold", h_hold, 0, "hold" },          { "GET", "/silent", h_silent, 0, "silent" },
    { "POST", "/react/{}", h_react, SC_ROUTE_LATER, "react" },
    { "GET", "/details/{}", h_details, 0, "details" },
};
static const sc_router_t router = { routes, sizeof routes / sizeof routes[0] };

/* --- a worker loop on its own thread ----------------------------------------------------------- */

static sc_worker_t w;
static sc_listener_t lis_public, lis_api;
static pthread_t loop_thread;

static void *loop_main(void *arg)
{
    (void)arg;
    sc_loop_run(w.loop);
    return NULL;
}

typedef struct adopt {
    int fd;
    const sc_listener_t *l;
} adopt_t;

static void adopt_task(sc_loop_t *l, void *arg)
{
    (void)l;
    adopt_t *a = arg;
    struct sockaddr_in6 peer = { .sin6_family = AF_INET6 };
    if (!sc_conn_new(&w, a->l, a->fd, &peer))
        close(a->fd);
    free(a);
}

/* Several connections adopted in one task: their requests, already written, are all ready in
 * the loop's next turn, in the order given (epoll's ready list keeps the order of EPOLL_CTL_ADD). */
typedef struct adopt_many {
    int n, fds[32];
} adopt_many_t;

static void adopt_many_task(sc_loop_t *l, void *arg)
{
    (void)l;
    adopt_many_t *a = arg;
    struct sockaddr_in6 peer = { .sin6_family = AF_INET6 };
    for (int i = 0; i < a->n; i++)
        if (!sc_conn_new(&w, &lis_public, a->fds[i], &peer))
            close(a->fds[i]);
    free(a);
}

/* A connection of the loop (its protocol HTTP, from listener l); returns the client's end. */
static int connect_to(const sc_listener_t *l)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    adopt_t *a = malloc(sizeof *a);
    a->fd = sv[0];
    a->l = l;
    sc_loop_post(w.loop, adopt_task, a);
    return sv[1];
}

static void close_all_task(sc_loop_t *l, void *arg)
{
    (void)arg;
    sc_conn_close_all(&w);
    sc_loop_stop(l);
}

static int setup(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.max_body_bytes = 2048;
    cfg.header_timeout_ms = 2000;
    sc_config_publish(&cfg);
    sc_http_set_router(&router);
    memset(&w, 0, sizeof w);
    w.loop = sc_loop_new();
    sc_loop_set_data(w.loop, &w);
    lis_public = (sc_listener_t){ .proto = &sc_http_proto };
    lis_api = (sc_listener_t){ .proto = &sc_http_proto, .api_port = 1 };
    pthread_create(&loop_thread, NULL, loop_main, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sc_loop_post(w.loop, close_all_task, NULL);
    pthread_join(loop_thread, NULL);
    sc_loop_free(w.loop);
    sc_http_set_router(NULL);
    sc_config_release_all();
    return 0;
}

/* --- the client's side ------------------------------------------------------------------------- */

static void send_str(int fd, const char *s) { assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s)); }

typedef struct answer {
    int status;
    char head[2048];
    char body[4096];
    size_t body_len;
} answer_t;

/* Read one response (head, then Content-Length bytes of body unless it answers a HEAD). 0, or
 * -1 on EOF/timeout. */
static int read_answer_to(int fd, answer_t *a, char *carry, size_t *carried, int head_only)
{
    char buf[8192];
    size_t n = *carried;
    memcpy(buf, carry, n);
    int head = SC_INCOMPLETE;
    sc_http_response_t res;
    size_t need = 0;
    for (;;) {
        if (head == SC_INCOMPLETE && n)
            head = sc_http_parse_response(buf, n, 0, &res);
        if (head > 0 && !need) {
            const sc_slice_t *cl = sc_http_response_header(&res, "Content-Length");
            need = (size_t)head + (cl && !head_only ? strtoul(cl->base, NULL, 10) : 0);
        }
        if (head > 0 && n >= need)
            break;
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 3000) != 1)
            return -1;
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    a->status = res.status;
    snprintf(a->head, sizeof a->head, "%.*s", head, buf);
    a->body_len = need - (size_t)head;
    memcpy(a->body, buf + head, a->body_len);
    a->body[a->body_len] = '\0';
    *carried = n - need; /* a pipelined answer's first bytes */
    memmove(carry, buf + need, *carried);
    return 0;
}

static int read_answer(int fd, answer_t *a, char *carry, size_t *carried)
{
    return read_answer_to(fd, a, carry, carried, 0);
}

static answer_t ask(int fd, const char *req)
{
    static char carry[8192];
    size_t carried = 0;
    answer_t a;
    send_str(fd, req);
    assert_int_equal(read_answer_to(fd, &a, carry, &carried, !strncmp(req, "HEAD ", 5)), 0);
    assert_int_equal(carried, 0); /* nothing more than asked for (a HEAD answer has no body) */
    return a;
}

/* The peer closed: read returns 0 within a few seconds. */
static int closed_by_peer(int fd)
{
    char b[256];
    for (int i = 0; i < 50; i++) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 100) == 1) {
            ssize_t r = read(fd, b, sizeof b);
            if (r == 0)
                return 1;
            if (r < 0)
                return 0;
        }
    }
    return 0;
}

/* --- the cases --------------------------------------------------------------------------------- */

static void test_get_keepalive(void **state)
{
    (void)state;
    int fd = connect_to(&lis_public);
    answer_t a = ask(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "hi");
    assert_non_null(strstr(a.head, "Connection: keep-alive"));
    a = ask(fd, "GET /items/abc HTTP/1.1\r\nHost: x\r\n\r\n"); /* the same connection, again */
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "[abc]");
    a = ask(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.head, "Content-Length: 2"));
    close(fd);
}

static void test_pipelined(void **state)
{
    (void)state;
    int fd = connect_to(&lis_public);
    send_str(fd, "GET /items/one HTTP/1.1\r\nHost: x\r\n\r\nGET /items/two HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /items/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char carry[8192];
    size_t carried = 0;
    static const char *const want[] = { "[one]", "[two]", "[three]" };
    for (int i = 0; i < 3; i++) {
        answer_t a;
        assert_int_equal(read_answer(fd, &a, carry, &carried), 0);
        assert_int_equal(a.status, 200);
        assert_string_equal(a.body, want[i]); /* in the order asked */
    }
    assert_true(closed_by_peer(fd)); /* Connection: close honoured after the last */
    close(fd);
}

static void test_no_handler(void **state)
{
    (void)state;
    int fd = connect_to(&lis_public);
    answer_t a = ask(fd, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 404);
    assert_non_null(strstr(a.body, "{\"error\":{\"code\":\"not_found\""));
    a = ask(fd, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 405);
    assert_non_null(strstr(a.body, "\"code\":\"method_not_allowed\""));
    a = ask(fd, "GET /silent HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 500); /* a handler that answers nothing still gets an answer out */
    close(fd);
}

static void test_bodies(void **state)
{
    (void)state;
    int fd = connect_to(&lis_public);
    answer_t a = ask(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "hello");
    a = ask(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "abcdefg");
    /* Expect: 100-continue: the interim answer first, then the body is read */
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    char carry[8192];
    size_t carried = 0;
    assert_int_equal(read_answer(fd, &a, carry, &carried), 0);
    assert_int_equal(a.status, 100);
    send_str(fd, "wxyz");
    assert_int_equal(read_answer(fd, &a, carry, &carried), 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "wxyz");
    /* a head whose body comes in a later read (parsed again then), and a whole request with a
     * capture right behind a whole body in one read (parsed and routed once): both answered */
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n");
    usleep(20000);
    send_str(fd, "late");
    assert_int_equal(read_answer(fd, &a, carry, &carried), 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "late");
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /items/after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_answer(fd, &a, carry, &carried), 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ok");
    assert_int_equal(read_answer(fd, &a, carry, &carried), 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "[after]");
    close(fd);
}

static void test_refusals(void **state)
{
    (void)state;
    int fd = connect_to(&lis_public);
    answer_t a = ask(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n");
    assert_int_equal(a.status, 413);
    assert_non_null(strstr(a.body, "\"code\":\"too_large\""));
    assert_true(closed_by_peer(fd)); /* answered, counted, closed */
    close(fd);
    fd = connect_to(&lis_public);
    a = ask(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
    assert_int_equal(a.status, 400);
    assert_true(closed_by_peer(fd));
    close(fd);
    /* listener routes are refused on the API-only port, the rest answered */
    fd = connect_to(&lis_api);
    a = ask(fd, "GET /public HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 404);
    a = ask(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 200);
    close(fd);
    fd = connect_to(&lis_public);
    a = ask(fd, "GET /public HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(a.status, 200);
    close(fd);
}

static void test_hold_released(void **state)
{
    (void)state;
    int fd = connect_to(&lis_public);
    for (int i = 0; i < 3; i++) {
        answer_t a = ask(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(a.status, 204);
    }
    assert_int_equal(atomic_load(&held), 3);
    /* each request lets go of what it held once its handler returned: after its answer was
     * written, so a moment after the client read it */
    for (int i = 0; i < 200 && atomic_load(&released) < 3; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&released), 3);
    assert_int_equal(atomic_load(&early), 0); /* and not before */
    close(fd);
}

/* SPEC "Priority": a details request read in the same loop turn as a storm of reactions is
 * answered before them, though it was read after them all; one connection's pipelined requests
 * still in the order sent (its reaction before its details, the answers in that order). */
static void test_reads_before_reactions(void **state)
{
    (void)state;
    enum { N = 20 };
    int clients[N + 2];
    adopt_many_t *a = calloc(1, sizeof *a);
    atomic_store(&ndispatched, 0);
    for (int i = 0; i < N + 2; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        a->fds[a->n++] = sv[0];
        clients[i] = sv[1];
        char req[256];
        if (i < N) /* the storm */
            snprintf(req, sizeof req, "POST /react/%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", i);
        else if (i == N) /* one that pipelines a reaction and a details request */
            snprintf(req, sizeof req, "POST /react/p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                                      "GET /details/p HTTP/1.1\r\nHost: x\r\n\r\n");
        else /* the details, read last of the turn */
            snprintf(req, sizeof req, "GET /details/d HTTP/1.1\r\nHost: x\r\n\r\n");
        send_str(sv[1], req);
    }
    sc_loop_post(w.loop, adopt_many_task, a);
    char carry[8192];
    size_t carried = 0;
    for (int i = 0; i < N + 2; i++) {
        answer_t ans;
        carried = 0;
        assert_int_equal(read_answer(clients[i], &ans, carry, &carried), 0);
        assert_int_equal(ans.status, i <= N ? 204 : 200);
        if (i == N) { /* then its details */
            assert_int_equal(read_answer(clients[i], &ans, carry, &carried), 0);
            assert_int_equal(ans.status, 200);
            assert_string_equal(ans.body, "details");
        }
    }
    assert_int_equal(atomic_load(&ndispatched), N + 3);
    assert_string_equal(dispatched[0], "detailsd"); /* ahead of every reaction of its turn */
    int react_p = -1, details_p = -1;
    for (int i = 0; i < N + 3; i++) {
        if (!strcmp(dispatched[i], "reactp"))
            react_p = i;
        if (!strcmp(dispatched[i], "detailsp"))
            details_p = i;
    }
    assert_true(react_p > 0 && details_p > react_p); /* one connection: in the order sent */
    for (int i = 0; i < N; i++) { /* the storm in the order it came */
        char want[16];
        snprintf(want, sizeof want, "react%d", i);
        assert_string_equal(dispatched[1 + i], want);
    }
    for (int i = 0; i < N + 2; i++)
        close(clients[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_keepalive), cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_no_handler),    cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_refusals),      cmocka_unit_test(test_hold_released),
        cmocka_unit_test(test_reads_before_reactions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
