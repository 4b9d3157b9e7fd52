/* test_admit.c — fair shares of a server-wide budget between Spaces (#16): each one's share,
 * the reserve a Space below its share keeps free (the rest of its share, at most doubling, at
 * least the configured minimum), the limit a Space above its share is held to (never below its
 * share), and the join bucket's last quarter kept from a Space above its share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>

#include "spacecast/admit.h"
#include "spacecast/config.h"
#include "spacecast/join.h"

static void test_share_and_reserve(void **state)
{
    (void)state;
    assert_int_equal(sc_fair_share(2000, 0), 2000); /* nobody counted: all of it */
    assert_int_equal(sc_fair_share(2000, 201), 9);
    assert_int_equal(sc_fair_share(10, 50), 1); /* never 0 */
    /* below its share: the rest of it, but no more than doubling or the minimum */
    assert_int_equal(sc_fair_reserve_of(0, 90, 8), 8);    /* a live Space nobody listens to yet */
    assert_int_equal(sc_fair_reserve_of(5, 90, 8), 8);
    assert_int_equal(sc_fair_reserve_of(30, 90, 8), 30);  /* it may double */
    assert_int_equal(sc_fair_reserve_of(80, 90, 8), 10);  /* up to its share */
    assert_int_equal(sc_fair_reserve_of(90, 90, 8), 0);   /* at its share: nothing kept for it */
    assert_int_equal(sc_fair_reserve_of(500, 90, 8), 0);
    assert_int_equal(sc_fair_reserve_of(5, 90, 0), 0);    /* fair shares off */
}

static void test_limit(void **state)
{
    (void)state;
    sc_fair_t f = { 0 };
    /* alone on the server: a Space may have all of it */
    assert_int_equal(sc_fair_limit(&f, 1500, 2000, 0), 2000);
    /* 201 Spaces, the 200 small ones keeping 8 each */
    sc_fair_set(&f, 201, 200 * 8);
    assert_false(sc_fair_above(&f, 5, 2000, 8));
    assert_int_equal(sc_fair_limit(&f, 5, 2000, 8), 2000);  /* a small one: any free place */
    assert_true(sc_fair_above(&f, 300, 2000, 0));
    assert_int_equal(sc_fair_limit(&f, 300, 2000, 0), 400); /* the crowded one leaves 1,600 free */
    /* counted when it was empty, it kept 8 itself: those are not kept from it */
    sc_fair_set(&f, 201, 201 * 8);
    assert_int_equal(sc_fair_limit(&f, 300, 2000, 8), 400);
    /* a reserve bigger than the server: the crowded Space gets no more places at all */
    sc_fair_set(&f, 201, 5000);
    assert_true(sc_fair_limit(&f, 50, 2000, 0) < 0);
    /* a Space not counted at the last count (own -1) is one more owner, also once it holds
     * places: two Spaces share 2,000 at 1,000 each, not 2,000 for the one counted */
    sc_fair_set(&f, 1, 8);
    assert_false(sc_fair_above(&f, 999, 2000, -1));
    assert_true(sc_fair_above(&f, 1000, 2000, -1));
    assert_int_equal(sc_fair_limit(&f, 1000, 2000, -1), 2000 - 8);
    assert_false(sc_fair_above(&f, 1000, 2000, 0)); /* counted, alone: all of it is its share */
    /* fair shares off: nobody is ever above a share */
    sc_fair_set(&f, 0, 0);
    assert_int_equal(sc_fair_limit(&f, 1999, 2000, -1), 2000);
}

static void test_join_reserve(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.join_rate = 1;
    cfg.join_burst = 8;
    sc_config_publish(&cfg);
    sc_join_init(8);
    /* a Space above its share leaves the bucket's last quarter (2 of 8) */
    int taken = 0;
    while (sc_join_admit(cfg.join_burst / 4) == 0)
        taken++;
    assert_int_equal(taken, 6);
    assert_int_equal(sc_join_admit(0), 0); /* the others still get theirs */
    assert_int_equal(sc_join_admit(0), 0);
    assert_true(sc_join_admit(0) > 0);     /* and then the bucket is empty for everyone */
    sc_config_release_all();
}

static struct in6_addr addr(uint8_t last)
{
    struct in6_addr a = { 0 };
    a.s6_addr[10] = a.s6_addr[11] = 0xff; /* ::ffff:127.0.0.x */
    a.s6_addr[12] = 127;
    a.s6_addr[15] = last;
    return a;
}

static int joins_from(const struct in6_addr *a)
{
    int n = 0, per_addr = 0;
    while (n < 100 && sc_admit_join(a, 0, &per_addr) == 0)
        n++;
    assert_true(per_addr); /* the address's own bucket stopped it, not the server's */
    return n;
}

/* A reload that changes the per-address join limits applies them at once, to the table in
 * use: an address that spent its burst is not handed a fresh one, a new address gets the new
 * burst. (The old code made a new table per change and leaked the old: LSan said so.) */
static void test_join_per_addr_reload(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.join_rate = 1000;
    cfg.join_burst = 1000; /* the server's bucket never the one that refuses here */
    cfg.join_rate_per_ip = 1;
    cfg.join_burst_per_ip = 3;
    sc_config_publish(&cfg);
    sc_join_init(1000);
    struct in6_addr a = addr(1), b = addr(2), c = addr(3);
    assert_int_equal(joins_from(&a), 3);
    cfg.join_burst_per_ip = 5;
    sc_config_publish(&cfg); /* a reload */
    assert_int_equal(joins_from(&b), 5);
    assert_int_equal(joins_from(&a), 0); /* what it spent stays spent */
    cfg.join_burst_per_ip = 2;
    sc_config_publish(&cfg);
    assert_int_equal(joins_from(&c), 2);
    sc_config_release_all();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_share_and_reserve),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_join_reserve),
        cmocka_unit_test(test_join_per_addr_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
