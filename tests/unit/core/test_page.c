/* test_page.c — shared pages and chains: readers keep alive exactly what they have yet to
 * send, the chain frees its head as readers move on, and threads can follow one writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/common.h"
#include "spacecast/pager.h"
#include "spacecast/page.h"

static sc_page_t *numbered(uint32_t n, uint32_t flags)
{
    sc_page_t *p = sc_page_from(&n, sizeof n);
    p->flags = flags;
    return p;
}

static void test_chain_and_refcounts(void **state)
{
    (void)state;
    size_t base = sc_page_bytes_live();
    sc_chain_t c;
    sc_chain_init(&c);
    assert_null(sc_chain_start(&c, 0));
    sc_chain_append(&c, numbered(1, SC_PAGE_SYNC));
    sc_page_t *reader = sc_chain_start(&c, 0); /* a listener joins at page 1 */
    for (uint32_t i = 2; i <= 100; i++)
        sc_chain_append(&c, numbered(i, i % 10 == 0 ? SC_PAGE_SYNC : 0));
    assert_int_equal(sc_chain_tail_seq(&c), 100);
    /* the reader holds the whole chain from page 1 */
    assert_true(sc_page_bytes_live() - base >= 100 * sizeof(uint32_t));
    sc_page_t *sync = sc_chain_start(&c, 1);
    assert_int_equal(sync->seq, 100);
    sc_page_unref(sync);
    /* walk to the end, dropping as we go */
    uint32_t expect = 1;
    while (reader) {
        uint32_t v;
        memcpy(&v, reader->data, sizeof v);
        assert_int_equal(v, expect++);
        sc_page_t *next = sc_page_ref(sc_page_next(reader));
        sc_page_unref(reader);
        reader = next;
    }
    assert_int_equal(expect, 101);
    sc_chain_destroy(&c);
    assert_int_equal(sc_page_bytes_live(), base); /* nothing leaked, nothing freed twice */
}

/* A long chain released at once is freed iteratively (no recursion, no stack overflow). */
static void test_long_chain_release(void **state)
{
    (void)state;
    size_t base = sc_page_bytes_live();
    sc_chain_t c;
    sc_chain_init(&c);
    sc_chain_append(&c, numbered(0, SC_PAGE_SYNC));
    sc_page_t *head = sc_chain_start(&c, 0);
    for (uint32_t i = 1; i < 500000; i++)
        sc_chain_append(&c, numbered(i, 0));
    sc_chain_destroy(&c);
    sc_page_unref(head);
    assert_int_equal(sc_page_bytes_live(), base);
}

typedef struct follower {
    sc_chain_t *c;
    sc_page_t *start;
    uint32_t count;
    int ok;
} follower_t;

static void *follow(void *arg)
{
    follower_t *f = arg;
    sc_page_t *p = f->start;
    uint32_t expect;
    memcpy(&expect, p->data, sizeof expect);
    f->ok = 1;
    for (;;) {
        uint32_t v;
        memcpy(&v, p->data, sizeof v);
        if (v != expect++)
            f->ok = 0;
        f->count++;
        if (p->flags & SC_PAGE_END)
            break;
        sc_page_t *n;
        while (!(n = sc_page_next(p)))
            ; /* spin: the writer publishes soon */
        sc_page_ref(n);
        sc_page_unref(p);
        p = n;
    }
    sc_page_unref(p);
    return NULL;
}

static void test_threads_follow_writer(void **state)
{
    (void)state;
    size_t base = sc_page_bytes_live();
    sc_chain_t c;
    sc_chain_init(&c);
    sc_chain_append(&c, numbered(0, SC_PAGE_SYNC));
    follower_t f[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        f[i] = (follower_t){ .c = &c, .start = sc_chain_start(&c, 0) };
        pthread_create(&th[i], NULL, follow, &f[i]);
    }
    for (uint32_t i = 1; i <= 20000; i++)
        sc_chain_append(&c, numbered(i, i == 20000 ? SC_PAGE_END : 0));
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(f[i].ok);
        assert_int_equal(f[i].count, 20001);
    }
    assert_true(c.ended);
    sc_chain_destroy(&c);
    assert_int_equal(sc_page_bytes_live(), base);
}

/* The pager's pages carry Ogg sequence numbers from 2; the header pages are 0 and 1 (what
 * libogg in VLC and MPlayer needs), padded to SC_PAGER_HEADER_BYTES (what probing players
 * read before they decode), with a valid OpusTags packet. */
static void test_pager_numbering(void **state)
{
    (void)state;
    sc_pager_t *pg = malloc(sizeof *pg);
    sc_pager_init(pg, 1234, 5);
    static const uint8_t pkt[] = { 0xf8, 0xff, 0xfe };
    int due = 0;
    for (int i = 0; i < 5; i++)
        due = sc_pager_add(pg, pkt, sizeof pkt, 960);
    assert_true(due);
    sc_page_t *p = sc_pager_flush(pg, 0);
    assert_non_null(p);
    assert_int_equal(p->aux, 2); /* 0 and 1 are the headers */
    assert_int_equal(p->granule, 5 * 960);
    assert_memory_equal(p->data, "OggS", 4);
    sc_page_t *h = sc_pager_headers(1234, 0, 1, 312, "title");
    uint32_t seq0 = h->data[18] | h->data[19] << 8 | h->data[20] << 16 | (uint32_t)h->data[21] << 24;
    assert_int_equal(seq0, 0);
    assert_int_equal(h->data[5], 0x02); /* BOS */
    assert_int_equal(h->len, SC_PAGER_HEADER_BYTES);
    size_t second = 27 + 1 + SC_OPUS_HEAD_LEN;
    uint32_t seq1 = h->data[second + 18] | h->data[second + 19] << 8 | h->data[second + 20] << 16 |
                    (uint32_t)h->data[second + 21] << 24;
    assert_int_equal(seq1, 1);
    /* headers, a jump to page 2's real number, audio: the strict reader takes it all */
    sc_ogg_reader_t *rd = sc_ogg_reader_new(NULL, NULL);
    assert_int_equal(sc_ogg_reader_feed(rd, h->data, h->len), SC_OK);
    sc_ogg_page_set_seq(p->data, p->len, 14575);
    assert_int_equal(sc_ogg_reader_feed(rd, p->data, p->len), SC_OK);
    sc_ogg_reader_free(rd);
    sc_page_unref(h);
    sc_page_unref(p);
    free(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_and_refcounts),
        cmocka_unit_test(test_long_chain_release),
        cmocka_unit_test(test_threads_follow_writer),
        cmocka_unit_test(test_pager_numbering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
