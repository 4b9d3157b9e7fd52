/* test_jitter.c — ordering, loss, bursts, drift and bounds of the jitter buffer, with
 * fake packets whose first two bytes carry their sequence number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spacecast/jitter.h"

#include <pthread.h>
#include <stdatomic.h>

static sc_jitter_out_t out; /* 4 KB: keep it off the test's stack */
static _Atomic int64_t now = 1000000; /* a fake clock in 48 kHz samples: a pop is a 20 ms tick; the
                                      * concurrent-push test reads it on another thread */

static int push(sc_jitter_t *j, int32_t seq, int fec)
{
    uint8_t pkt[40] = { 0 };
    pkt[0] = (uint8_t)(seq >> 8);
    pkt[1] = (uint8_t)seq;
    return sc_jitter_push(j, seq, pkt, sizeof pkt, 960, fec ? SC_JITTER_F_FEC : 0, now);
}

static void pop_(sc_jitter_t *j)
{
    sc_jitter_pop(j, &out, now);
    now += 960;
}

static int out_seq(void) { return (out.data[0] << 8) | out.data[1]; }

static sc_jitter_stats_t stats(sc_jitter_t *j)
{
    sc_jitter_stats_t st;
    sc_jitter_stats(j, &st);
    return st;
}

static void expect_packet(sc_jitter_t *j, int seq)
{
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_PACKET);
    assert_int_equal(out_seq(), seq);
    assert_int_equal(out.seq, seq);
    assert_int_equal(out.samples, 960);
}

static void test_in_order_waits_for_target(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_NONE);
    push(j, 10, 0);
    push(j, 11, 0);
    pop_(j); /* 40 ms stored, target 60 ms: still buffering */
    assert_int_equal(out.kind, SC_JITTER_NONE);
    push(j, 12, 0);
    for (int s = 10; s <= 12; s++)
        expect_packet(j, s);
    assert_int_equal(stats(j).played, 3);
    sc_jitter_free(j);
}

static void test_reorder(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    int order[] = { 3, 1, 2, 5, 4, 7, 6 };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        assert_int_equal(push(j, order[i], 0), 0);
    for (int s = 1; s <= 7; s++)
        expect_packet(j, s);
    sc_jitter_stats_t st = stats(j);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.late, 0);
    sc_jitter_free(j);
}

static void test_wraparound(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    int order[] = { 65533, 65534, 0, 65535, 1, 3, 2, 4 };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        push(j, order[i], 0);
    int want[] = { 65533, 65534, 65535, 0, 1, 2, 3, 4 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        expect_packet(j, want[i]);
    assert_int_equal(stats(j).lost, 0);
    /* a long run across the wrap in real time keeps working */
    for (int k = 5; k < 400; k++) {
        push(j, k, 0);
        expect_packet(j, k);
    }
    sc_jitter_free(j);
}

static void test_loss_fec_and_plc(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    /* 4 is lost and 5 carries FEC; 7 is lost and 8 does not */
    for (int s = 1; s <= 9; s++)
        if (s != 4 && s != 7)
            push(j, s, s == 5);
    for (int s = 1; s <= 3; s++)
        expect_packet(j, s);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_FEC);
    assert_int_equal(out.seq, 4);
    assert_int_equal(out_seq(), 5); /* the successor's bytes, to decode with decode_fec=1 */
    assert_int_equal(out.samples, 960);
    expect_packet(j, 5);
    expect_packet(j, 6);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_PLC);
    assert_int_equal(out.seq, 7);
    expect_packet(j, 8);
    expect_packet(j, 9);
    assert_int_equal(stats(j).lost, 2);
    sc_jitter_free(j);
}

static void test_underrun_conceals_then_absent_then_refills(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    for (int s = 1; s <= 3; s++)
        push(j, s, 0);
    for (int s = 1; s <= 3; s++)
        expect_packet(j, s);
    pop_(j); /* dry: 4 is late, not known lost */
    assert_int_equal(out.kind, SC_JITTER_PLC);
    push(j, 4, 0);
    expect_packet(j, 4); /* it plays when it arrives: nothing skipped */
    int plc = 0;
    for (int i = 0; i < 20; i++) {
        pop_(j);
        if (out.kind == SC_JITTER_PLC)
            plc++;
        else
            assert_int_equal(out.kind, SC_JITTER_NONE);
    }
    assert_int_equal(plc, 10); /* 200 ms of concealment, then absent */
    assert_int_equal(stats(j).playing, 0);
    push(j, 5, 0);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_NONE); /* refilling to target first */
    push(j, 6, 0);
    push(j, 7, 0);
    for (int s = 5; s <= 7; s++)
        expect_packet(j, s);
    sc_jitter_free(j);
}

static void test_tcp_burst_plays_one_per_pop(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    uint8_t pkt[40] = { 0 };
    for (int i = 0; i < 30; i++) {
        pkt[0] = (uint8_t)(i >> 8);
        pkt[1] = (uint8_t)i;
        assert_int_equal(sc_jitter_push(j, -1, pkt, sizeof pkt, 960, 0, now), 0); /* Ogg over TCP: no seq */
    }
    for (int i = 0; i < 30; i++)
        expect_packet(j, i);
    sc_jitter_stats_t st = stats(j);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.played, 30);
    sc_jitter_free(j);
}

static void test_fast_sender_is_bounded(void **state)
{
    (void)state;
    /* twice real time: bounded by duration (5 s), the oldest go */
    sc_jitter_t *j = sc_jitter_new(0, 0);
    int seq = 0, max_depth = 0;
    for (int t = 0; t < 600; t++) {
        push(j, seq++, 0);
        push(j, seq++, 0);
        pop_(j);
        if (t > 0) /* the first pop still buffers: 40 ms < 60 ms target */
            assert_int_equal(out.kind, SC_JITTER_PACKET);
        if (stats(j).depth_samples > max_depth)
            max_depth = stats(j).depth_samples;
    }
    assert_true(max_depth <= SC_JITTER_MAX_SAMPLES);
    assert_true(stats(j).dropped > 300);
    sc_jitter_free(j);
}

/* darkice: 10 ms packets, a page of 52 every ~0.5 s, pages in bursts of ~2 s. Nothing may be
 * dropped (the old 64-slot ring held 640 ms of them and lost two thirds). */
static void test_darkice_bursts_of_10ms_packets(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    uint8_t pkt[40] = { 0 };
    int sent = 0, played = 0, expanded = 0;
    for (int burst = 0; burst < 6; burst++) {
        for (int i = 0; i < 208; i++, sent++) { /* 4 pages of 52: 2.08 s at once */
            pkt[0] = (uint8_t)(sent >> 8);
            pkt[1] = (uint8_t)sent;
            assert_int_equal(sc_jitter_push(j, -1, pkt, sizeof pkt, 480, 0, now), 0);
        }
        for (int tick = 0; tick < 104; tick++) { /* 2.08 s of 10 ms pops, two per 20 ms tick */
            for (int k = 0; k < 2; k++) {
                sc_jitter_pop(j, &out, now);
                played += out.kind == SC_JITTER_PACKET;
                expanded += out.kind == SC_JITTER_PLC;
            }
            now += 960;
        }
    }
    sc_jitter_stats_t st = stats(j);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.lost, 0);
    assert_true(played > sent - 220); /* all but what is still buffered */
    assert_true(st.target_samples >= 2 * 48000); /* the target learned the bursts */
    sc_jitter_free(j);
}

/* Paced arrivals with a stall every 5 s (held back, then all at once): the target rises to
 * cover the stall at the first one and stays while they recur; 16 s after the last it is back
 * at the base. A stall longer than 200 ms makes the speaker "absent" first: its backlog still
 * counts as lateness (unlike a pause, below). */
static void stalls(int held)
{
    sc_jitter_t *j = sc_jitter_new(0, 0);
    int seq = 0, backlog = 0, dry = 0;
    for (int t = 0; t < 1500; t++) { /* 30 s */
        int stalled = t < 750 && t % 250 >= 240 - held && t % 250 < 240;
        if (stalled) {
            backlog++;
        } else {
            for (; backlog >= 0; backlog--)
                push(j, seq++, 0);
            backlog = 0;
        }
        pop_(j);
        dry += out.kind == SC_JITTER_PLC && out.dry;
        if (t == 300 || t == 700)
            assert_true(stats(j).target_samples >= held * 960);
    }
    print_message("stall of %d ms: %d dry pops\n", held * 20, dry);
    assert_true(dry >= 5 && dry <= (held < 10 ? held + 1 : 11)); /* only the first stall ran dry */
    assert_int_equal(stats(j).lost, 0);
    assert_int_equal(stats(j).target_samples, 2880);
    sc_jitter_free(j);
}

static void test_target_learns_stalls_and_forgets_slowly(void **state)
{
    (void)state;
    stalls(7);  /* 140 ms */
    stalls(15); /* 300 ms: absent after 200 */
}

/* A packet that comes after its predecessor was concealed as lost could have filled it with
 * its FEC, had playout waited a frame longer than it took: the target learns that frame too
 * (a RED copy at the end of a burst carries the FEC for the packet before it). */
static void late_after_loss(int fec, int *target)
{
    sc_jitter_t *j = sc_jitter_new(1920, 960);
    for (int s = 1; s <= 10; s++)
        if (s < 6 || s > 8) /* 6, 7, 8 lost */
            push(j, s, 0);
    for (int s = 1; s <= 5; s++)
        expect_packet(j, s);
    for (int s = 6; s <= 8; s++) {
        pop_(j);
        assert_int_equal(out.kind, SC_JITTER_PLC);
        assert_false(out.dry);
    }
    push(j, 8, fec); /* a copy of 8, too late to play (its lateness teaches either way) */
    assert_int_equal(stats(j).late, 1);
    *target = stats(j).target_samples;
    sc_jitter_free(j);
}

static void test_fec_after_a_loss_teaches_a_frame_more(void **state)
{
    (void)state;
    int plain, with_fec;
    late_after_loss(0, &plain);
    late_after_loss(1, &with_fec);
    /* pushed at once at T0, so 10 set the least transit; 8 came 8 ticks later: 8 + 2 frames late */
    assert_int_equal(plain, (8 + 2) * 960 + 960);
    assert_int_equal(with_fec, plain + 960);
}

/* A speaker who stops sending for a second and goes on at real time was silent, not late: the
 * target does not grow by the pause. */
static void test_pause_is_not_delay(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    int seq = 0;
    for (int t = 0; t < 100; t++) {
        push(j, seq++, 0);
        pop_(j);
    }
    for (int t = 0; t < 50; t++) /* a second without packets; the sequence goes on where it was */
        pop_(j);
    for (int t = 0; t < 100; t++) {
        push(j, seq++, 0);
        pop_(j);
    }
    assert_int_equal(stats(j).target_samples, 2880);
    sc_jitter_free(j);
}

/* Lost at the tail of the buffer: time concealed while it looked dry counts against the hole
 * once later packets show it, so nothing is inserted and nothing received skipped. */
static void test_tail_loss_conceals_once(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(1920, 0);
    for (int s = 1; s <= 2; s++)
        push(j, s, 0);
    expect_packet(j, 1);
    expect_packet(j, 2);
    pop_(j); /* 3, 4 and 5 are lost, nothing else there yet: conceal (dry) */
    assert_int_equal(out.kind, SC_JITTER_PLC);
    assert_true(out.dry);
    push(j, 6, 1); /* 6 arrives, carrying FEC for 5 */
    push(j, 7, 0);
    pop_(j); /* 3 was what the dry concealment stood for; 4 is concealed now */
    assert_int_equal(out.kind, SC_JITTER_PLC);
    assert_int_equal(out.seq, 4);
    assert_false(out.dry);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_FEC);
    assert_int_equal(out.seq, 5);
    expect_packet(j, 6);
    expect_packet(j, 7);
    assert_int_equal(stats(j).lost, 3);
    sc_jitter_free(j);
}

/* A speaker who leaves: everything stored plays (a hole concealed), then drained, never a
 * dry concealment at the end. */
static void test_finish_plays_out(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    push(j, 1, 0);
    sc_jitter_finish(j); /* left before playout even started: still plays */
    expect_packet(j, 1);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_NONE);
    assert_true(out.drained);
    sc_jitter_free(j);

    j = sc_jitter_new(0, 0);
    for (int s = 1; s <= 6; s++)
        if (s != 4)
            push(j, s, 0);
    expect_packet(j, 1);
    sc_jitter_finish(j);
    expect_packet(j, 2);
    expect_packet(j, 3);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_PLC);
    expect_packet(j, 5);
    expect_packet(j, 6);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_NONE);
    assert_true(out.drained);
    sc_jitter_free(j);
}

static void test_late_duplicate_invalid(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    for (int s = 100; s < 104; s++)
        push(j, s, 0);
    push(j, 101, 0);
    assert_int_equal(stats(j).duplicates, 1);
    expect_packet(j, 100);
    expect_packet(j, 101);
    push(j, 100, 0); /* its turn has passed */
    assert_int_equal(stats(j).late, 1);
    expect_packet(j, 102);
    expect_packet(j, 103);
    uint8_t big[SC_JITTER_MAX_PACKET + 1] = { 0 };
    assert_int_equal(sc_jitter_push(j, 104, big, 0, 960, 0, now), -1);
    assert_int_equal(sc_jitter_push(j, 104, big, sizeof big, 960, 0, now), -1);
    assert_int_equal(sc_jitter_push(j, 104, big, 10, 0, 0, now), -1);
    assert_int_equal(sc_jitter_push(j, 104, big, 10, 6000, 0, now), -1);
    assert_int_equal(sc_jitter_push(j, 104, big, SC_JITTER_MAX_PACKET, 960, 0, now), 0);
    sc_jitter_free(j);
}

static void test_byte_bound_and_resync(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    static uint8_t big[SC_JITTER_MAX_PACKET];
    for (int s = 0; s < 600; s++) /* 2.5 ms packets of 4000 bytes: the byte bound comes first */
        sc_jitter_push(j, s, big, sizeof big, 120, 0, now);
    sc_jitter_stats_t st = stats(j);
    assert_true(st.depth_packets * SC_JITTER_MAX_PACKET <= SC_JITTER_MAX_BYTES);
    assert_true(st.dropped > 0);
    assert_int_equal(st.dropped, 600 - st.depth_packets);
    pop_(j);
    assert_int_equal(out.kind, SC_JITTER_PACKET);
    assert_int_equal(out.seq, 600 - st.depth_packets); /* the newest were kept */

    /* a jump of 20000 is a new stream, not 20000 lost packets */
    for (int s = 20000; s < 20003; s++)
        push(j, s, 0);
    expect_packet(j, 20000);
    assert_int_equal(stats(j).lost, 0);
    sc_jitter_free(j);
}

static void test_reset_and_restarted_numbering(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    for (int s = 500; s < 510; s++)
        push(j, s, 0);
    expect_packet(j, 500);
    uint32_t gen = out.generation;
    sc_jitter_reset(j);
    assert_int_equal(stats(j).depth_packets, 0);
    for (int s = 7; s < 10; s++)
        push(j, s, 0);
    expect_packet(j, 7);
    assert_int_equal(out.generation, gen + 1);
    sc_jitter_free(j);

    /* a sender that restarts from a lower number without a reset is followed after a while */
    j = sc_jitter_new(0, 0);
    for (int s = 1000; s < 1003; s++)
        push(j, s, 0);
    for (int s = 1000; s < 1003; s++)
        expect_packet(j, s);
    for (int s = 0; s < 60; s++)
        push(j, s, 0);
    pop_(j);
    int played = 0;
    for (int i = 0; i < 40; i++) {
        pop_(j);
        played += out.kind == SC_JITTER_PACKET;
    }
    assert_true(played >= 5);
    sc_jitter_free(j);
}

static void *pusher(void *arg)
{
    sc_jitter_t *j = arg;
    for (int s = 0; s < 20000; s++)
        push(j, s, 0);
    return NULL;
}

static void test_concurrent_push(void **state)
{
    (void)state;
    sc_jitter_t *j = sc_jitter_new(0, 0);
    pthread_t th;
    pthread_create(&th, NULL, pusher, j);
    int last = -1, packets = 0;
    for (int i = 0; i < 20000; i++) {
        pop_(j);
        if (out.kind == SC_JITTER_PACKET) {
            assert_true(out_seq() > last); /* never backwards, never twice */
            last = out_seq();
            packets++;
        }
    }
    pthread_join(th, NULL);
    sc_jitter_stats_t st = stats(j);
    assert_int_equal(st.received + st.late + st.duplicates, 20000); /* every push accounted for */
    assert_int_equal(st.played, (uint64_t)packets);
    assert_true(st.played + st.dropped <= st.received);
    sc_jitter_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_waits_for_target),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_loss_fec_and_plc),
        cmocka_unit_test(test_underrun_conceals_then_absent_then_refills),
        cmocka_unit_test(test_tcp_burst_plays_one_per_pop),
        cmocka_unit_test(test_fast_sender_is_bounded),
        cmocka_unit_test(test_darkice_bursts_of_10ms_packets),
        cmocka_unit_test(test_target_learns_stalls_and_forgets_slowly),
        cmocka_unit_test(test_fec_after_a_loss_teaches_a_frame_more),
        cmocka_unit_test(test_pause_is_not_delay),
        cmocka_unit_test(test_tail_loss_conceals_once),
        cmocka_unit_test(test_finish_plays_out),
        cmocka_unit_test(test_late_duplicate_invalid),
        cmocka_unit_test(test_byte_bound_and_resync),
        cmocka_unit_test(test_reset_and_restarted_numbering),
        cmocka_unit_test(test_concurrent_push),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
