/* test_pagecache.c — whole answers kept by key: fresh until their expiry, the least recently
 * used dropped first when the byte budget is spent, an answer too big for it never kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "spacecast/pagecache.h"

static sc_page_t *page_of(size_t n)
{
    sc_page_t *p = sc_page_new(n);
    memset(p->data, 'x', n);
    p->len = n;
    return p;
}

static void test_get_put_expire(void **state)
{
    (void)state;
    size_t base = sc_page_bytes_live();
    sc_pagecache_t *c = sc_pagecache_new(10000);
    sc_cached_t got;
    assert_int_equal(sc_pagecache_get(c, "a", 0, &got), 0);
    sc_page_t *p = page_of(100);
    sc_pagecache_put(c, "a", p, "audio/ogg", "public, max-age=60", 1000);
    sc_page_unref(p);
    assert_int_equal(sc_pagecache_get(c, "a", 999, &got), 1);
    assert_int_equal(got.page->len, 100);
    assert_string_equal(got.ctype, "audio/ogg");
    assert_string_equal(got.cache_control, "public, max-age=60");
    sc_page_unref(got.page);
    assert_int_equal(sc_pagecache_get(c, "a", 1000, &got), 0); /* expired: gone */
    size_t bytes, entries;
    uint64_t hits, misses;
    sc_pagecache_stats(c, &bytes, &entries, &hits, &misses);
    assert_int_equal(bytes, 0);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 2);
    sc_pagecache_free(c);
    assert_int_equal(sc_page_bytes_live(), base);
}

static void test_lru(void **state)
{
    (void)state;
    size_t base = sc_page_bytes_live();
    sc_pagecache_t *c = sc_pagecache_new(10000);
    char key[16];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "k%d", i);
        sc_page_t *p = page_of(2500);
        sc_pagecache_put(c, key, p, "t", "", 1000);
        sc_page_unref(p);
    }
    sc_cached_t got;
    assert_int_equal(sc_pagecache_get(c, "k0", 0, &got), 1); /* k0 is now the most recent */
    sc_page_unref(got.page);
    sc_page_t *p = page_of(2500);
    sc_pagecache_put(c, "k4", p, "t", "", 1000); /* over budget: k1, the least recent, goes */
    sc_page_unref(p);
    assert_int_equal(sc_pagecache_get(c, "k1", 0, &got), 0);
    assert_int_equal(sc_pagecache_get(c, "k0", 0, &got), 1);
    sc_page_unref(got.page);
    p = page_of(2501); /* more than a quarter of the budget: not kept */
    sc_pagecache_put(c, "big", p, "t", "", 1000);
    sc_page_unref(p);
    assert_int_equal(sc_pagecache_get(c, "big", 0, &got), 0);
    p = page_of(10);
    sc_pagecache_put(c, "k0", p, "t", "", 1000); /* replaced */
    sc_page_unref(p);
    assert_int_equal(sc_pagecache_get(c, "k0", 0, &got), 1);
    assert_int_equal(got.page->len, 10);
    sc_page_unref(got.page);
    sc_pagecache_free(c);
    assert_int_equal(sc_page_bytes_live(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_get_put_expire), cmocka_unit_test(test_lru) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
