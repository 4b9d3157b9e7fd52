/* test_engine.c — the engine with a fake room owner: the engine knows rooms, not Spaces. A room
 * in the lobby gets the lobby's pages and its owner's second; live, it is mixed and its owner
 * hears about speaking every 200 ms; removed, it is never ticked again; ended, its live stream's
 * last page says so. The tick hook runs once a tick. Real time, about four seconds; the counts
 * asked for are loose lower bounds (how fast the clock runs is a benchmark's question). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "spacecast/config.h"
#include "spacecast/engine.h"

typedef struct owner {
    atomic_int seconds, speaking;
} owner_t;

static void on_speaking(void *o, const sc_mixer_speaker_state_t *st, size_t n)
{
    (void)st;
    (void)n;
    atomic_fetch_add(&((owner_t *)o)->speaking, 1);
}
static void on_second(void *o) { atomic_fetch_add(&((owner_t *)o)->seconds, 1); }
static const sc_room_hooks_t hooks = { .on_speaking = on_speaking, .on_second = on_second };

static atomic_int ticks;
static void tick_hook(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ticks, 1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_config_publish(&cfg);
    sc_engine_init();
    return sc_engine_start();
}

static int teardown(void **state)
{
    (void)state;
    sc_engine_stop();
    sc_config_release_all();
    return 0;
}

static sc_room_t *new_room(owner_t *o, sc_room_mode_t mode)
{
    sc_room_config_t rc = { .id = "unit", .title = "unit", .bitrate = 32000, .frames_per_page = 5,
                            .preskip = sc_engine_lobby_preskip() };
    sc_room_t *r = sc_room_new(&rc, mode, 0, o, &hooks);
    assert_non_null(r);
    assert_true(sc_chain_tail_seq(&r->live->chain) >= 1); /* a start point before the first tick */
    return r;
}

static void room_free(sc_room_t *r)
{
    sc_hls_free(sc_room_hls(r));
    sc_room_free(r);
}

static void test_lobby_live_removed(void **state)
{
    (void)state;
    owner_t o = { 0 };
    sc_room_t *r = new_room(&o, SC_ROOM_LOBBY);
    uint64_t seq0 = sc_chain_tail_seq(&r->live->chain);
    sc_engine_add_room(r);
    assert_int_equal(sc_engine_rooms(), 1);
    sleep_ms(1300);
    uint64_t lobby_pages = sc_chain_tail_seq(&r->live->chain) - seq0;
    assert_true(lobby_pages >= 3); /* the lobby's 100 ms pages (about 13; a loaded machine, fewer) */
    assert_true(atomic_load(&o.seconds) >= 1);
    assert_int_equal(atomic_load(&o.speaking), 0); /* nothing to say about speakers in the lobby */
    assert_null(sc_room_hls(r));

    sc_room_go_live(r, time(NULL));
    assert_non_null(sc_room_hls(r));
    sleep_ms(600);
    assert_true(atomic_load(&o.speaking) >= 2); /* every 200 ms while live */

    sc_engine_remove_room(r);
    assert_int_equal(sc_engine_rooms(), 0);
    uint64_t seq = sc_chain_tail_seq(&r->live->chain);
    int sp = atomic_load(&o.speaking), sec = atomic_load(&o.seconds);
    sleep_ms(1100);
    assert_int_equal(sc_chain_tail_seq(&r->live->chain), seq); /* never ticked again */
    assert_int_equal(atomic_load(&o.speaking), sp);
    assert_int_equal(atomic_load(&o.seconds), sec);

    sc_room_end(r);
    assert_true(r->live->chain.tail->flags & SC_PAGE_END); /* listeners learn it is over */
    room_free(r);
}

static void test_tick_hook(void **state)
{
    (void)state;
    atomic_store(&ticks, 0);
    sc_engine_set_tick_hook(tick_hook, NULL);
    sleep_ms(500);
    sc_engine_set_tick_hook(NULL, NULL); /* waits for a tick under way */
    int n = atomic_load(&ticks);
    assert_true(n >= 5); /* about 25 ticks of 20 ms: the clock runs (its drift is a benchmark's business) */
    sleep_ms(100);
    assert_int_equal(atomic_load(&ticks), n);
}

static void test_two_rooms(void **state)
{
    (void)state;
    owner_t a = { 0 }, b = { 0 };
    sc_room_t *ra = new_room(&a, SC_ROOM_LIVE), *rb = new_room(&b, SC_ROOM_LOBBY);
    sc_engine_add_room(ra);
    sc_engine_add_room(rb);
    sc_engine_add_room(ra); /* twice: still once on the list */
    assert_int_equal(sc_engine_rooms(), 2);
    sleep_ms(1100);
    assert_true(atomic_load(&a.speaking) > 0);
    assert_int_equal(atomic_load(&b.speaking), 0);
    assert_true(atomic_load(&a.seconds) >= 1 && atomic_load(&b.seconds) >= 1);
    sc_engine_remove_room(ra);
    sc_engine_remove_room(rb);
    sc_engine_remove_room(rb); /* twice: harmless */
    assert_int_equal(sc_engine_rooms(), 0);
    sc_room_end(ra);
    sc_room_end(rb);
    room_free(ra);
    room_free(rb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lobby_live_removed),
        cmocka_unit_test(test_tick_hook),
        cmocka_unit_test(test_two_rooms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
