/* test_space.c — the lifecycle of a Space, without HTTP: created (stored, resident, with no
 * room until someone waits in its lobby or it goes live; a lobby's room dropped once idle),
 * found by id through the registry's hash among many, started and ended
 * with the model's own result codes, retired once its grace is over (then read back from the
 * store, transient, with the same details), and freed when its last holder lets go — a holder
 * across the retirement included. Tokens are checked with sc_space_auth_t, events come out in
 * the order of the changes, and a subscriber's snapshot matches its start point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spacecast/config.h"
#include "spacecast/engine.h"
#include "spacecast/log.h"
#include "spacecast/room.h"
#include "spacecast/space.h"
#include "spacecast/store.h"

static char dir[] = "/tmp/sc-test-space-XXXXXX";
static sc_store_t *store;

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    sc_log_set_level(SC_LOG_WARN); /* 300 Spaces' creation lines are no news */
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    snprintf(cfg.data, sizeof cfg.data, "%s", dir);
    cfg.space_retire_s = 0; /* retire at the first housekeeping after the end */
    snprintf(cfg.public_url, sizeof cfg.public_url, "http://unit.test");
    sc_config_publish(&cfg);
    char err[256];
    store = sc_store_open(dir, err, sizeof err);
    if (!store)
        return -1;
    uint8_t key[SC_TOKEN_KEY_LEN] = { 1, 2, 3 };
    sc_engine_init();
    sc_spaces_init(store, key);
    return sc_spaces_load();
}

static int teardown(void **state)
{
    (void)state;
    sc_store_close(sc_spaces_detach_store());
    sc_config_release_all();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static sc_space_t *get(const char *id) { return sc_space_get(sc_slice_cstr(id)); }

static void test_create_find_many(void **state)
{
    (void)state;
    enum { N = 300 }; /* past the hash's first growth (64 buckets) several times */
    static char ids[N][SC_TOKEN_ID_MAX + 1];
    size_t before = sc_engine_rooms();
    for (int i = 0; i < N; i++) {
        char title[32];
        snprintf(title, sizeof title, "space %d", i);
        sc_space_t *s = sc_space_create(title, NULL, 0, 0, 10);
        assert_non_null(s);
        assert_int_equal(s->state, SC_SPACE_SCHEDULED);
        assert_null(s->room); /* no audio until someone arrives at its lobby (#16) */
        snprintf(ids[i], sizeof ids[i], "%s", s->id);
        sc_space_unref(s);
    }
    assert_int_equal(sc_engine_rooms(), before); /* nothing ticks for a Space nobody waits in */
    for (int i = N - 1; i >= 0; i--) {
        sc_space_t *s = get(ids[i]);
        assert_non_null(s);
        char title[32];
        snprintf(title, sizeof title, "space %d", i);
        assert_string_equal(s->title, title);
        sc_space_unref(s);
    }
    assert_null(get("noSuchSpace1"));
    assert_null(get(""));
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    assert_true(n >= N);
    sc_spaces_release(all, n);
}

/* A scheduled Space's lobby: a room only while someone uses it, and for lobby_idle after; a
 * Space that starts gets one whatever, and keeps it. */
static void test_lobby_room(void **state)
{
    (void)state;
    sc_space_t *s = sc_space_create("lobby", NULL, 0, 0, 10);
    size_t before = sc_engine_rooms();
    assert_null(sc_space_room_use(s, 0)); /* only looked for: none is made */
    assert_null(sc_space_room_stable(s));
    sc_room_t *r = sc_space_room_use(s, 1); /* a listener arrives */
    assert_non_null(r);
    assert_ptr_equal(s->room, r);
    assert_non_null(s->src_live.chain);
    assert_int_equal(sc_engine_rooms(), before + 1);
    assert_ptr_equal(sc_space_room_use(s, 1), r); /* a second one: the same room */
    assert_null(sc_space_room_stable(s));         /* a lobby's room may go: not without a count */
    sc_space_room_done(s);
    sc_space_lobby_check(s, sc_now_ms() + 3600 * 1000, 0);
    assert_ptr_equal(s->room, r); /* one still listens: kept, however long */
    uint64_t before_done = sc_now_ms() - 1; /* the housekeeping's clock, read before the last one left */
    sc_space_room_done(s);
    sc_space_lobby_check(s, before_done, 60000);
    assert_ptr_equal(s->room, r); /* idle since after the check's clock: not for long (no wrap) */
    sc_space_lobby_check(s, sc_now_ms(), 60000);
    assert_ptr_equal(s->room, r); /* idle, not yet for long */
    sc_space_lobby_check(s, sc_now_ms() + 60000, 60000);
    assert_null(s->room); /* idle for long: dropped, out of the engine */
    assert_null(s->src_live.chain);
    assert_int_equal(sc_engine_rooms(), before);
    /* going live makes one, and it stays */
    assert_int_equal(sc_space_start(s), SC_SPACE_OK);
    r = sc_space_room_stable(s);
    assert_non_null(r);
    assert_int_equal(atomic_load(&r->mode), SC_ROOM_LIVE);
    assert_int_equal(sc_engine_rooms(), before + 1);
    sc_space_lobby_check(s, sc_now_ms() + 3600 * 1000, 0);
    assert_ptr_equal(sc_space_room_stable(s), r);
    assert_int_equal(sc_space_end(s), SC_SPACE_OK);
    assert_int_equal(sc_engine_rooms(), before);
    sc_space_unref(s);
}

static void test_results_and_tokens(void **state)
{
    (void)state;
    int retry = 0;
    sc_space_t *s = sc_space_create("results", "alice", 0, 0, 10);
    assert_non_null(s);
    assert_string_equal(s->speakers[0].name, "alice");
    char tok[SC_TOKEN_MAX], host[SC_TOKEN_MAX];
    assert_true(sc_space_host_token(s, host, sizeof host) > 0);
    assert_true(sc_space_invite(s, "bob", SC_ROLE_SPEAKER, tok, sizeof tok) > 0);
    assert_int_equal(sc_space_invite(s, "bob", SC_ROLE_SPEAKER, tok, sizeof tok), SC_SPACE_ETAKEN);
    assert_int_equal(sc_space_invite(s, "alice", SC_ROLE_SPEAKER, tok, sizeof tok), SC_SPACE_ETAKEN);
    assert_int_equal(sc_space_invite(s, "x", SC_ROLE_HOST, tok, sizeof tok), SC_SPACE_EINVAL);
    sc_token_claims_t c;
    assert_int_equal(sc_space_check_token(s, host, SC_ROLE_HOST, &c), SC_AUTH_OK);
    assert_int_equal(sc_space_check_token(s, "junk", SC_ROLE_LISTENER, &c), SC_AUTH_INVALID);
    char bob[SC_TOKEN_MAX];
    assert_true(sc_space_invite(s, "carol", SC_ROLE_SPEAKER, bob, sizeof bob) > 0);
    assert_int_equal(sc_space_check_token(s, bob, SC_ROLE_COHOST, &c), SC_AUTH_ROLE);
    assert_int_equal(sc_space_set_muted(s, sc_slice_cstr("carol"), 1), SC_SPACE_OK);
    assert_int_equal(sc_space_set_muted(s, sc_slice_cstr("nobody"), 1), SC_SPACE_ENOENT);
    assert_int_equal(sc_space_remove(s, sc_slice_cstr("carol")), SC_SPACE_OK);
    assert_int_equal(sc_space_check_token(s, bob, SC_ROLE_SPEAKER, &c), SC_AUTH_REVOKED);
    assert_int_equal(sc_space_remove(s, sc_slice_cstr("alice")), SC_SPACE_EPERM);
    sc_space_t *other = sc_space_create("other", NULL, 0, 0, 10);
    char otok[SC_TOKEN_MAX];
    sc_space_host_token(other, otok, sizeof otok);
    assert_int_equal(sc_space_check_token(s, otok, SC_ROLE_LISTENER, &c), SC_AUTH_OTHER_SPACE);
    assert_int_equal(sc_space_start(s), SC_SPACE_OK);
    assert_int_equal(sc_space_start(s), SC_SPACE_ESTATE);
    assert_int_equal(sc_space_request(s, "dave", 1, &retry), SC_SPACE_OK);
    assert_int_equal(sc_space_request(s, "dave", 1, &retry), SC_SPACE_OK); /* asked already: idempotent */
    assert_int_equal(sc_space_end(s), SC_SPACE_OK);
    assert_int_equal(sc_space_end(s), SC_SPACE_ESTATE);
    assert_int_equal(sc_space_request(s, "erin", 1, &retry), SC_SPACE_ESTATE);
    sc_space_unref(other);
    sc_space_unref(s);
}

/* Read a stream of pages from p on: the concatenated text. */
static void chain_text(sc_page_t *p, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (; p; p = sc_page_next(p)) {
        size_t k = SC_MIN(p->len, cap - 1 - n);
        memcpy(out + n, p->data, k);
        n += k;
        out[n] = '\0';
    }
}

static void test_events_in_order(void **state)
{
    (void)state;
    int retry = 0;
    sc_space_t *s = sc_space_create("events", NULL, 0, 0, 10);
    sc_page_t *snap, *start;
    atomic_fetch_add(&s->event_streams, 1); /* admitted (api_events counts it before subscribing) */
    sc_space_subscribe(s, 1, &snap, &start);
    assert_non_null(snap);
    assert_non_null(strstr((const char *)snap->data, "event: space"));
    assert_non_null(start);
    char tok[SC_TOKEN_MAX];
    sc_space_invite(s, "one", SC_ROLE_SPEAKER, tok, sizeof tok);
    sc_space_start(s);
    sc_space_request(s, "two", 1, &retry);
    static char text[1 << 16];
    chain_text(sc_page_next(start), text, sizeof text);
    const char *inv = strstr(text, "\"name\":\"one\""), *live = strstr(text, "event: state\ndata: {\"state\":\"live\"}");
    const char *req = strstr(text, "event: request");
    assert_non_null(inv);
    assert_non_null(live);
    assert_non_null(req);
    assert_true(inv < live && live < req); /* the order of the changes */
    sc_space_end(s);
    /* the streams end with the final state: the last page says so, and nothing follows it */
    sc_page_t *last = start;
    while (sc_page_next(last))
        last = sc_page_next(last);
    assert_true(last->flags & SC_PAGE_END);
    static const char ended[] = "event: state\ndata: {\"state\":\"ended\"";
    assert_non_null(memmem(last->data, last->len, ended, sizeof ended - 1));
    sc_space_event(s, "tally", json_pack("{s:i}", "listeners", 0), 0);
    sc_space_changed(s);
    assert_null(sc_page_next(last));
    sc_page_unref(snap);
    sc_page_unref(start);
    /* a subscriber to the ended Space: the snapshot (ended), then at once the end */
    sc_space_subscribe(s, 0, &snap, &start);
    assert_non_null(strstr((const char *)snap->data, "\"state\":\"ended\""));
    assert_true(start->flags & SC_PAGE_END);
    assert_int_equal(start->len, 0);
    sc_page_unref(snap);
    sc_page_unref(start);
    atomic_fetch_sub(&s->event_streams, 1);
    sc_space_unref(s);
}

/* A Space nobody watches publishes no events and keeps no details page: they are built at the
 * first request after a change, once, and a subscriber's snapshot says what was not published. */
static void test_details_when_asked(void **state)
{
    (void)state;
    sc_space_t *s = sc_space_create("quiet", NULL, 0, 0, 10);
    assert_null(s->details);
    assert_null(s->events.tail);
    char etag[32], etag2[32];
    sc_page_t *d = sc_space_details(s, etag);
    assert_non_null(d);
    assert_ptr_equal(s->details, d); /* kept: the next request sends the same page */
    sc_page_t *d2 = sc_space_details(s, etag2);
    assert_ptr_equal(d2, d);
    assert_string_equal(etag, etag2);
    sc_page_unref(d2);
    char tok[SC_TOKEN_MAX];
    sc_space_invite(s, "newcomer", SC_ROLE_SPEAKER, tok, sizeof tok);
    assert_null(s->details); /* out of date: dropped, not rebuilt for nobody */
    assert_null(s->events.tail);
    d2 = sc_space_details(s, etag2);
    assert_non_null(strstr((const char *)d2->data, "newcomer"));
    assert_string_not_equal(etag, etag2);
    sc_page_unref(d);
    sc_page_unref(d2);
    atomic_fetch_add(&s->event_streams, 1);
    sc_page_t *snap, *start;
    sc_space_subscribe(s, 0, &snap, &start);
    assert_non_null(start); /* a first page to start after, never sent */
    assert_non_null(strstr((const char *)snap->data, "newcomer"));
    sc_space_invite(s, "later", SC_ROLE_SPEAKER, tok, sizeof tok);
    sc_page_t *next = sc_page_next(start);
    assert_non_null(next); /* watched now: published */
    assert_non_null(memmem(next->data, next->len, "later", 5));
    sc_page_unref(snap);
    sc_page_unref(start);
    atomic_fetch_sub(&s->event_streams, 1);
    sc_space_unref(s);
}

static void test_retire_read_back_free(void **state)
{
    (void)state;
    sc_space_t *s = sc_space_create("retiring", "hal", 0, 0, 10);
    char id[SC_TOKEN_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", s->id);
    sc_space_start(s);
    assert_int_equal(sc_space_listener_join(s, 1000), SC_SPACE_OK);
    sc_space_listener_leave(s);
    size_t rooms = sc_engine_rooms();
    assert_int_equal(sc_space_end(s), SC_SPACE_OK);
    assert_int_equal(sc_engine_rooms(), rooms - 1); /* the engine no longer ticks an ended room */
    char etag[32];
    sc_page_t *before = sc_space_details(s, etag);
    /* a holder across the retirement: s stays valid, the registry lets go of its own */
    sc_spaces_housekeeping();
    sc_space_t *back = get(id);
    assert_non_null(back);
    assert_true(back != s); /* read back from the store: a transient of its own */
    assert_true(back->transient);
    assert_null(back->room);
    assert_int_equal(back->state, SC_SPACE_ENDED);
    assert_string_equal(back->title, "retiring");
    assert_string_equal(back->speakers[0].name, "hal");
    assert_int_equal(back->total_joins, 1);
    assert_int_equal(back->started_at, s->started_at);
    assert_int_equal(back->ended_at, s->ended_at);
    char etag2[32];
    sc_page_t *after = sc_space_details(back, etag2);
    /* the same JSON but for what a process does not keep (connected, speaking are false) */
    assert_non_null(strstr((const char *)after->data, "\"state\":\"ended\""));
    assert_non_null(strstr((const char *)before->data, "\"title\":\"retiring\""));
    sc_page_unref(before);
    sc_page_unref(after);
    sc_space_unref(back); /* transient: kept by the cache of retired Spaces, in no registry */
    assert_string_equal(s->id, id); /* still ours */
    sc_space_unref(s);                /* the last reference: freed here (ASan watches) */
    back = get(id);
    assert_non_null(back); /* it is still there, on disk */
    sc_space_unref(back);
}

/* Retired Spaces read back are kept, at most SC_REG_RETIRED_CACHED of them, least recently
 * used first out: a crowd refreshing an ended Space's page costs one store read. */
#define CACHED 256 /* registry.c's SC_REG_RETIRED_CACHED, as docs/spaces.md says */
#define RETIRING (CACHED + 20)

static void test_retired_cache(void **state)
{
    (void)state;
    static char ids[RETIRING][SC_TOKEN_ID_MAX + 1];
    for (int i = 0; i < RETIRING; i++) {
        sc_space_t *s = sc_space_create("over", NULL, 0, 0, 10);
        snprintf(ids[i], sizeof ids[i], "%s", s->id);
        sc_space_end(s);
        sc_space_unref(s);
    }
    sc_spaces_housekeeping(); /* all retired (grace 0) */
    uint64_t reads = sc_space_read_backs();
    sc_space_t *first = get(ids[0]);
    assert_non_null(first);
    assert_int_equal(sc_space_read_backs(), reads + 1);
    for (int i = 0; i < 50; i++) { /* the crowd: the same Space, no more reads */
        sc_space_t *again = get(ids[0]);
        assert_ptr_equal(again, first);
        sc_space_unref(again);
    }
    assert_int_equal(sc_space_read_backs(), reads + 1);
    sc_space_unref(first);
    for (int i = 1; i < RETIRING; i++) /* each read once: the oldest RETIRING - CACHED go out */
        sc_space_unref(get(ids[i]));
    assert_int_equal(sc_space_read_backs(), reads + RETIRING);
    sc_space_unref(get(ids[RETIRING - CACHED])); /* the oldest still kept */
    assert_int_equal(sc_space_read_backs(), reads + RETIRING);
    sc_space_unref(get(ids[RETIRING - CACHED - 1])); /* the last one put out: read again */
    assert_int_equal(sc_space_read_backs(), reads + RETIRING + 1);
    sc_space_unref(get(ids[0]));
    assert_int_equal(sc_space_read_backs(), reads + RETIRING + 2);
}

/* Many workers taking places at once never take one past a limit (the night's "exactly
 * capacity served", which a check-then-add let slip by one under ThreadSanitizer's timing). */
static sc_space_t *race_space;
static atomic_int race_ok;

static void *joiner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        if (sc_space_listener_join(race_space, 1000000) == SC_SPACE_OK)
            atomic_fetch_add(&race_ok, 1);
    return NULL;
}

static void test_places_exact(void **state)
{
    (void)state;
    race_space = sc_space_create("full", NULL, 0, 0, 150);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, joiner, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&race_ok), 150);
    assert_int_equal(atomic_load(&race_space->listeners), 150);
    assert_int_equal(sc_space_listener_join(race_space, 1000000), SC_SPACE_EFULL);
    sc_space_listener_leave(race_space);
    int before = sc_spaces_listeners();
    assert_int_equal(sc_space_listener_join(race_space, before), SC_SPACE_ELIMIT); /* the server's limit */
    assert_int_equal(atomic_load(&race_space->listeners), 149); /* its place given back */
    for (int i = 0; i < 149; i++)
        sc_space_listener_leave(race_space);
    sc_space_end(race_space);
    sc_space_unref(race_space);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_find_many),
        cmocka_unit_test(test_lobby_room),
        cmocka_unit_test(test_results_and_tokens),
        cmocka_unit_test(test_events_in_order),
        cmocka_unit_test(test_details_when_asked),
        cmocka_unit_test(test_retire_read_back_free),
        cmocka_unit_test(test_retired_cache),
        cmocka_unit_test(test_places_exact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
