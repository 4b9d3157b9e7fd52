/* test_htable.c — the intrusive chained table: insert, find, remove, and growth under many
 * keys (every node still found after each doubling, none found after its removal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/htable.h"

typedef struct item {
    int payload; /* before the node: SC_CONTAINER_OF must find the object's start */
    sc_hnode_t hnode;
    char key[16];
} item_t;

static int item_is(const sc_hnode_t *n, const void *key)
{
    return strcmp(SC_CONTAINER_OF(n, const item_t, hnode)->key, key) == 0;
}

static uint32_t h(const char *key) { return sc_hash_bytes(key, strlen(key)); }

static item_t *find(const sc_htable_t *t, const char *key)
{
    sc_hnode_t *n = sc_htable_find(t, h(key), item_is, key);
    return n ? SC_CONTAINER_OF(n, item_t, hnode) : NULL;
}

static void test_insert_find_remove(void **state)
{
    (void)state;
    sc_htable_t t = { 0 };
    assert_null(find(&t, "a")); /* an empty table has no buckets: find must not touch them */
    item_t a = { .payload = 1, .key = "a" }, b = { .payload = 2, .key = "b" };
    sc_htable_insert(&t, &a.hnode, h(a.key));
    sc_htable_insert(&t, &b.hnode, h(b.key));
    assert_int_equal(t.n, 2);
    assert_ptr_equal(find(&t, "a"), &a);
    assert_int_equal(find(&t, "b")->payload, 2);
    assert_null(find(&t, "c"));
    assert_int_equal(sc_htable_remove(&t, &a.hnode), 1);
    assert_int_equal(sc_htable_remove(&t, &a.hnode), 0); /* not there any more */
    assert_null(find(&t, "a"));
    assert_ptr_equal(find(&t, "b"), &b);
    assert_int_equal(t.n, 1);
    sc_htable_clear(&t);
    assert_int_equal(t.nb, 0);
}

/* Keys that share a bucket (one hash for all) are told apart by eq, and each is removable. */
static void test_collisions(void **state)
{
    (void)state;
    sc_htable_t t = { 0 };
    item_t it[5];
    for (int i = 0; i < 5; i++) {
        memset(&it[i], 0, sizeof it[i]);
        snprintf(it[i].key, sizeof it[i].key, "k%d", i);
        sc_htable_insert(&t, &it[i].hnode, 7);
    }
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(SC_CONTAINER_OF(sc_htable_find(&t, 7, item_is, it[i].key), item_t, hnode), &it[i]);
    assert_int_equal(sc_htable_remove(&t, &it[2].hnode), 1); /* from the middle of the chain */
    assert_null(sc_htable_find(&t, 7, item_is, "k2"));
    assert_non_null(sc_htable_find(&t, 7, item_is, "k4"));
    assert_non_null(sc_htable_find(&t, 7, item_is, "k0"));
    sc_htable_clear(&t);
}

static void count_one(sc_hnode_t *n, void *arg)
{
    (void)n;
    ++*(size_t *)arg;
}

#define MANY 20000

static void test_grow_under_many_keys(void **state)
{
    (void)state;
    sc_htable_t t = { 0 };
    item_t *it = calloc(MANY, sizeof *it);
    for (int i = 0; i < MANY; i++) {
        snprintf(it[i].key, sizeof it[i].key, "space-%d", i);
        it[i].payload = i;
        size_t nb = t.nb;
        sc_htable_insert(&t, &it[i].hnode, h(it[i].key));
        if (t.nb != nb) { /* it just doubled: everything inserted so far is still found */
            assert_int_equal(t.nb, nb ? nb * 2 : SC_HTABLE_MIN);
            for (int j = 0; j <= i; j++)
                assert_int_equal(find(&t, it[j].key)->payload, j);
        }
    }
    assert_int_equal(t.n, MANY);
    assert_true(t.nb >= MANY && t.nb < 2 * MANY); /* load factor at most 1, never more than twice */
    size_t seen = 0;
    sc_htable_each(&t, count_one, &seen);
    assert_int_equal(seen, MANY);
    for (int i = 0; i < MANY; i += 2)
        assert_int_equal(sc_htable_remove(&t, &it[i].hnode), 1);
    assert_int_equal(t.n, MANY / 2);
    for (int i = 0; i < MANY; i++) {
        item_t *f = find(&t, it[i].key);
        if (i % 2)
            assert_ptr_equal(f, &it[i]);
        else
            assert_null(f);
    }
    sc_htable_clear(&t);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_grow_under_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
