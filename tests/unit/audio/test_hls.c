/* test_hls.c — the fMP4 writer's boxes nest exactly and point at their data; the HLS
 * pipeline cuts 200 ms parts and 2 s segments from real Opus packets in both renditions,
 * names them uniquely, parks waiters until their part exists (or their deadline), refuses
 * to park far ahead, and ends with EXT-X-ENDLIST; AAC is encoded only while asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <opus/opus.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spacecast/common.h"
#include "spacecast/fmp4.h"
#include "spacecast/hls.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Walk the boxes of [p, p+len) into trace ("moov/trak/..."), checking every size fits its
 * parent exactly. Returns 0, or -1 on a box that overruns. */
static int walk(const uint8_t *p, size_t len, const char *prefix, char *trace, size_t cap)
{
    static const char *containers[] = { "moov", "trak", "mdia", "minf", "dinf", "stbl", "mvex", "moof", "traf" };
    size_t off = 0;
    while (off < len) {
        if (len - off < 8)
            return -1;
        uint32_t size = be32(p + off);
        if (size < 8 || size > len - off)
            return -1;
        char path[256];
        snprintf(path, sizeof path, "%s%.4s", prefix, (const char *)p + off + 4);
        size_t n = strlen(trace);
        snprintf(trace + n, cap - n, "%s ", path);
        size_t skip = 0; /* header bytes before child boxes, for boxes that have children */
        for (size_t i = 0; i < SC_ARRAY_LEN(containers); i++)
            if (!memcmp(p + off + 4, containers[i], 4))
                skip = 8;
        if (!memcmp(p + off + 4, "stsd", 4) || !memcmp(p + off + 4, "dref", 4))
            skip = 16;
        if (!memcmp(p + off + 4, "mp4a", 4) || !memcmp(p + off + 4, "Opus", 4))
            skip = 36;
        if (skip) {
            char sub[260];
            snprintf(sub, sizeof sub, "%s/", path);
            if (walk(p + off + skip, size - skip, sub, trace, cap) != 0)
                return -1;
        }
        off += size;
    }
    return 0;
}

static void test_init_boxes(void **state)
{
    (void)state;
    static const uint8_t asc[2] = { 0x11, 0x88 };
    sc_fmp4_track_t aac = { .codec = SC_FMP4_AAC, .channels = 1, .rate = 48000, .avg_bitrate = 64000,
                            .asc = asc, .asc_len = 2 };
    sc_page_t *p = sc_fmp4_init_page(&aac);
    char trace[2048] = "";
    assert_int_equal(walk(p->data, p->len, "", trace, sizeof trace), 0);
    assert_non_null(strstr(trace, "ftyp moov "));
    assert_non_null(strstr(trace, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds"));
    assert_non_null(strstr(trace, "moov/mvex/trex"));
    assert_non_null(strstr(trace, "moov/trak/mdia/mdhd"));
    /* the AudioSpecificConfig sits inside the DecoderSpecificInfo descriptor */
    assert_non_null(memmem(p->data, p->len, "\x05\x02\x11\x88", 4));
    sc_page_unref(p);

    sc_fmp4_track_t opus = { .codec = SC_FMP4_OPUS, .channels = 1, .rate = 48000, .preskip = 312 };
    p = sc_fmp4_init_page(&opus);
    trace[0] = '\0';
    assert_int_equal(walk(p->data, p->len, "", trace, sizeof trace), 0);
    assert_non_null(strstr(trace, "moov/trak/mdia/minf/stbl/stsd/Opus/dOps"));
    const uint8_t *d = memmem(p->data, p->len, "dOps", 4);
    assert_non_null(d);
    assert_int_equal(d[4], 0);                 /* Version */
    assert_int_equal(d[5], 1);                 /* channels */
    assert_int_equal(d[6] << 8 | d[7], 312);   /* PreSkip */
    assert_int_equal(be32(d + 8), 48000);
    sc_page_unref(p);
}

static void test_fragment_offsets(void **state)
{
    (void)state;
    uint32_t sizes[3] = { 5, 7, 3 }, durs[3] = { 960, 960, 480 };
    const uint8_t data[15] = "aaaaabbbbbbbccc";
    sc_fmp4_buf_t b = { 0 };
    sc_fmp4_write_fragment(&b, 42, 0x123456789ull, sizes, durs, 3, data);
    char trace[1024] = "";
    assert_int_equal(walk(b.data, b.len, "", trace, sizeof trace), 0);
    assert_string_equal(trace, "moof moof/mfhd moof/traf moof/traf/tfhd moof/traf/tfdt moof/traf/trun mdat ");
    uint32_t moof = be32(b.data);
    const uint8_t *trun = memmem(b.data, b.len, "trun", 4);
    assert_int_equal(be32(trun + 8), 3);               /* sample_count */
    assert_int_equal(be32(trun + 12), moof + 8);       /* data_offset: first byte after the mdat header */
    assert_int_equal(be32(trun + 16), 960);
    assert_int_equal(be32(trun + 20), 5);
    assert_memory_equal(b.data + moof + 8, data, 15);
    const uint8_t *tfdt = memmem(b.data, b.len, "tfdt", 4);
    assert_int_equal(tfdt[4], 1); /* version 1: 64-bit decode time */
    assert_int_equal(be32(tfdt + 8), 0x1);
    assert_int_equal(be32(tfdt + 12), 0x23456789);
    assert_int_equal(be32(memmem(b.data, b.len, "mfhd", 4) + 8), 42);
    assert_int_equal(b.len, moof + 8 + 15);
    free(b.data);
}

/* --- the pipeline ----------------------------------------------------------------------- */

static OpusEncoder *enc;
static uint64_t tone_t;
static atomic_int woken;

/* packets of 20 ms of a tone; kick: after each, as the engine does after each tick */
static void queue_tone(sc_hls_t *h, int packets, int kick)
{
    for (int k = 0; k < packets; k++) {
        float pcm[960];
        for (int i = 0; i < 960; i++, tone_t++)
            pcm[i] = 0.3f * (float)sin(2 * M_PI * 440.0 * (double)tone_t / 48000.0);
        uint8_t pkt[400];
        int n = opus_encode_float(enc, pcm, 960, pkt, sizeof pkt);
        assert_true(n > 0);
        sc_hls_push(h, pkt, (size_t)n);
        if (kick)
            sc_hls_kick();
    }
}

static void push_tone(sc_hls_t *h, int packets) { queue_tone(h, packets, 1); }

static void on_wake(sc_hls_wait_t *w)
{
    (void)w;
    atomic_fetch_add(&woken, 1);
}

/* Poll until the playlist of rend contains needle (the HLS thread works asynchronously). */
static char *wait_playlist(sc_hls_t *h, int rend, const char *needle)
{
    for (int i = 0; i < 300; i++) {
        sc_page_t *p = sc_hls_playlist(h, rend);
        if (p) {
            char *s = sc_strndup((const char *)p->data, p->len);
            sc_page_unref(p);
            if (strstr(s, needle))
                return s;
            free(s);
        }
        usleep(10000);
    }
    fail_msg("playlist never contained %s", needle);
    return NULL;
}

static int wait_woken(int n)
{
    for (int i = 0; i < 100 && atomic_load(&woken) < n; i++)
        usleep(10000);
    return atomic_load(&woken);
}

static void test_pipeline(void **state)
{
    (void)state;
    int err;
    enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    sc_hls_t *h = sc_hls_new("unit", NULL, 312, 0);
    sc_hls_wait_t early = { .rend = SC_HLS_OPUS, .msn = 0, .part = -1, .need_playlist = 1,
                            .deadline_ms = sc_now_ms() + 5000, .wake = on_wake };
    assert_int_equal(sc_hls_wait(h, &early), SC_AGAIN); /* nothing yet: a first playlist is worth waiting for */
    push_tone(h, 175); /* 3.5 s */
    char *pl = wait_playlist(h, SC_HLS_OPUS, "-1.6.m4s\""); /* all 175 packets are in */
    assert_int_equal(wait_woken(1), 1);
    assert_int_equal(early.posted, 1);
    assert_int_equal(early.timed_out, 0);
    /* Opus: segment 0 is exactly 2 s of ten 200 ms parts; segment 1 is being built */
    assert_non_null(strstr(pl, "#EXTINF:2.00000,\n"));
    assert_non_null(strstr(pl, "#EXT-X-PART:DURATION=0.20000,URI=\""));
    assert_non_null(strstr(pl, "#EXT-X-MEDIA-SEQUENCE:0\n"));
    assert_non_null(strstr(pl, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""));
    char prefix[32];
    const char *map = strstr(pl, "#EXT-X-MAP:URI=\"");
    assert_non_null(map);
    assert_int_equal(sscanf(map + 16, "%31[^-]", prefix), 1);
    assert_int_equal(prefix[0], 'o');
    free(pl);
    /* AAC too, from the same packets, with 9- or 10-frame parts: once asked for, from the
     * packets kept, so the timeline is the same as if it had run from the start */
    assert_null(sc_hls_playlist(h, SC_HLS_AAC));
    sc_hls_want(h, SC_HLS_AAC);
    pl = wait_playlist(h, SC_HLS_AAC, "#EXTINF:2.00533,\n");
    assert_non_null(strstr(pl, "#EXT-X-MEDIA-SEQUENCE:0\n"));
    assert_true(strstr(pl, "DURATION=0.21333") || strstr(pl, "DURATION=0.19200"));
    free(pl);

    /* lookups by name: the segment is its parts back to back */
    char name[64];
    sc_page_t *seg, *part;
    sc_hls_wait_t w = { 0 };
    snprintf(name, sizeof name, "%s-0.m4s", prefix);
    assert_int_equal(sc_hls_find(h, name, &seg, &w), SC_OK);
    size_t off = 0;
    for (int k = 0; k < SC_HLS_PARTS; k++) {
        snprintf(name, sizeof name, "%s-0.%d.m4s", prefix, k);
        assert_int_equal(sc_hls_find(h, name, &part, &w), SC_OK);
        assert_true(off + part->len <= seg->len);
        assert_memory_equal(seg->data + off, part->data, part->len);
        off += part->len;
        sc_page_unref(part);
    }
    assert_int_equal(off, seg->len);
    sc_page_unref(seg);
    snprintf(name, sizeof name, "%s-init.mp4", prefix);
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_OK);
    sc_page_unref(part);
    snprintf(name, sizeof name, "%s-1.9.m4s", prefix); /* due soon: park on it */
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_AGAIN);
    assert_int_equal(w.msn, 1);
    assert_int_equal(w.part, 9);
    assert_int_equal(sc_hls_find(h, "o0-1.m4s", &part, &w), SC_ERR);  /* another epoch */
    /* the next segment, whole or any of its parts, is waited for too: a player slightly
     * ahead of us behind a cache must not get an uncacheable 404 (#14) */
    snprintf(name, sizeof name, "%s-2.3.m4s", prefix);
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_AGAIN);
    assert_int_equal(w.msn, 2);
    assert_int_equal(w.part, 3);
    snprintf(name, sizeof name, "%s-2.m4s", prefix);
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_AGAIN);
    assert_int_equal(w.part, -1);
    snprintf(name, sizeof name, "%s-3.0.m4s", prefix);
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_ERR);        /* beyond the next segment */
    snprintf(name, sizeof name, "%s-9.m4s", prefix);
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_ERR);        /* far ahead */
    snprintf(name, sizeof name, "%s-0.10.m4s", prefix);
    assert_int_equal(sc_hls_find(h, name, &part, &w), SC_ERR);

    /* blocking: woken exactly when part 8 of segment 1 exists */
    sc_hls_wait_t b = { .rend = SC_HLS_OPUS, .msn = 1, .part = 8, .need_playlist = 1,
                        .deadline_ms = sc_now_ms() + 5000, .wake = on_wake };
    assert_int_equal(sc_hls_wait(h, &b), SC_AGAIN);
    push_tone(h, 10); /* part 7 */
    usleep(100000);
    assert_int_equal(atomic_load(&woken), 1);
    push_tone(h, 10); /* part 8 */
    assert_int_equal(wait_woken(2), 2);
    assert_int_equal(b.timed_out, 0);
    /* too far ahead is refused; what exists is answered at once */
    sc_hls_wait_t far = { .rend = SC_HLS_OPUS, .msn = 3, .part = 0, .wake = on_wake,
                          .deadline_ms = sc_now_ms() + 5000 };
    assert_int_equal(sc_hls_wait(h, &far), SC_ERR);
    sc_hls_wait_t past = { .rend = SC_HLS_OPUS, .msn = 0, .part = 3, .wake = on_wake,
                           .deadline_ms = sc_now_ms() + 5000 };
    assert_int_equal(sc_hls_wait(h, &past), SC_OK);
    /* a deadline wakes a waiter whose part never comes */
    sc_hls_wait_t late = { .rend = SC_HLS_OPUS, .msn = 2, .part = 0, .wake = on_wake,
                           .deadline_ms = sc_now_ms() + 150 };
    assert_int_equal(sc_hls_wait(h, &late), SC_AGAIN);
    assert_int_equal(wait_woken(3), 3);
    assert_int_equal(late.timed_out, 1);
    /* a withdrawn waiter is never woken */
    sc_hls_wait_t gone = { .rend = SC_HLS_OPUS, .msn = 2, .part = 0, .wake = on_wake,
                           .deadline_ms = sc_now_ms() + 100 };
    assert_int_equal(sc_hls_wait(h, &gone), SC_AGAIN);
    assert_int_equal(sc_hls_unwait(h, &gone), 1);
    usleep(300000);
    assert_int_equal(atomic_load(&woken), 3);
    assert_int_equal(sc_hls_unwait(h, &late), 0); /* already woken: the wake's owner frees it */

    /* the end: the last short segment, EXT-X-ENDLIST, no more hints, waiters released */
    sc_hls_wait_t last = { .rend = SC_HLS_AAC, .msn = 1, .part = 9, .wake = on_wake,
                           .deadline_ms = sc_now_ms() + 5000 };
    int parked = sc_hls_wait(h, &last);
    sc_hls_end(h);
    pl = wait_playlist(h, SC_HLS_OPUS, "#EXT-X-ENDLIST\n");
    assert_null(strstr(pl, "PRELOAD-HINT"));
    assert_non_null(strstr(pl, "#EXTINF:1.90000,\n")); /* 195 packets: 3.9 s = 2 s + 1.9 s */
    free(pl);
    assert_int_equal(sc_hls_finished(h), 1);
    if (parked == SC_AGAIN)
        assert_int_equal(wait_woken(4), 4);
    sc_hls_wait_t after = { .rend = SC_HLS_OPUS, .msn = 9, .part = 0, .wake = on_wake };
    assert_int_equal(sc_hls_wait(h, &after), SC_OK); /* nothing more will come: never parked */
    uint64_t segs, dropped, nparked;
    sc_hls_stats(&segs, &dropped, &nparked);
    assert_true(segs >= 4);
    assert_int_equal(dropped, 0);
    assert_int_equal(nparked, 0);
    opus_encoder_destroy(enc);
}

/* A blocking playlist answer may be served by a cache for SC_HLS_BLOCKED_MAX_AGE_S: every part it
 * names must still be served by the origin that long after it stops being listed (#14: a 404
 * is not cached, so each player behind the cache would bring the request back). */
static void test_parts_outlive_cached_playlists(void **state)
{
    (void)state;
    int err;
    enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    sc_hls_t *h = sc_hls_new("keep", NULL, 312, 0);
    push_tone(h, 105); /* 2.1 s: segment 1 is being built, segment 0's parts are listed */
    char *pl = wait_playlist(h, SC_HLS_OPUS, "-1.0.m4s\"");
    char prefix[32], name[64];
    assert_int_equal(sscanf(strstr(pl, "#EXT-X-MAP:URI=\"") + 16, "%31[^-]", prefix), 1);
    assert_non_null(strstr(pl, "-0.9.m4s\"")); /* what a cache may now keep for 6 s */
    free(pl);
    /* 6 s later (three segments): the cached copy is still served; its parts must be too */
    push_tone(h, 300);
    pl = wait_playlist(h, SC_HLS_OPUS, "-4.0.m4s\"");
    assert_null(strstr(pl, "-0.9.m4s\"")); /* no longer listed... */
    free(pl);
    sc_page_t *part;
    sc_hls_wait_t w = { 0 };
    for (int k = 0; k < SC_HLS_PARTS; k++) {
        snprintf(name, sizeof name, "%s-0.%d.m4s", prefix, k);
        assert_int_equal(sc_hls_find(h, name, &part, &w), SC_OK); /* ...but still served */
        sc_page_unref(part);
    }
    sc_hls_end(h);
    free(wait_playlist(h, SC_HLS_OPUS, "#EXT-X-ENDLIST\n"));
    opus_encoder_destroy(enc);
}

/* The AAC rendition costs nothing until asked for; asked, it starts warm (two segments back,
 * listed at once, numbered from the first one it has); a while without a request, it stops. */
static void test_aac_on_demand(void **state)
{
    (void)state;
    int err;
    enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    /* 1 s: the warm start's catch-up counts against it, and takes a quarter of a second
     * under ASan on a busy machine (300 ms once stopped it between two requests 150 ms apart) */
    sc_hls_set_aac_idle_ms(1000);
    sc_hls_t *h = sc_hls_new("demand", NULL, 312, 0);
    push_tone(h, 350); /* 7 s: segments 0-2 complete, 3 being built; the history holds 6.4 s */
    free(wait_playlist(h, SC_HLS_OPUS, "-3.4.m4s\""));
    assert_null(sc_hls_playlist(h, SC_HLS_AAC)); /* nobody asked: never encoded */
    sc_hls_want(h, SC_HLS_AAC);
    char *pl = wait_playlist(h, SC_HLS_AAC, "#EXTINF:");
    /* the history reaches back to segment 1 (6.4 s of 7): it and 2 are listed, 3 has parts */
    assert_non_null(strstr(pl, "#EXT-X-MEDIA-SEQUENCE:1\n"));
    assert_non_null(strstr(pl, "-1.m4s\n"));
    assert_non_null(strstr(pl, "-2.m4s\n"));
    assert_null(strstr(pl, "-0.m4s\n"));
    assert_non_null(strstr(pl, "-3.0.m4s\""));
    free(pl);
    /* asked for within the idle time, it keeps running */
    for (int i = 0; i < 4; i++) {
        usleep(150000);
        sc_hls_want(h, SC_HLS_AAC);
        push_tone(h, 8);
        sc_page_t *p = sc_hls_playlist(h, SC_HLS_AAC);
        assert_non_null(p);
        sc_page_unref(p);
    }
    /* no request for longer: it stops, its pages go */
    int woken0 = atomic_load(&woken);
    sc_hls_wait_t ow = { .rend = SC_HLS_OPUS, .msn = 4, .part = 9, .need_playlist = 1,
                         .deadline_ms = sc_now_ms() + 10000, .wake = on_wake };
    assert_int_equal(sc_hls_wait(h, &ow), SC_AGAIN); /* ~2.2 s of audio away */
    sc_page_t *p = NULL;
    for (int i = 0; i < 300; i++) {
        push_tone(h, 1);
        usleep(20000);
        if (!(p = sc_hls_playlist(h, SC_HLS_AAC)))
            break;
        sc_page_unref(p);
    }
    assert_null(p);
    /* an Opus blocking request is none of the AAC's business: still held, or answered only
     * once its part is there (a playlist without it would be cached for 6 s by an edge) */
    if (atomic_load(&woken) > woken0) {
        p = sc_hls_playlist(h, SC_HLS_OPUS);
        assert_non_null(memmem(p->data, p->len, "-4.9.m4s\"", 9));
        sc_page_unref(p);
    }
    sc_hls_unwait(h, &ow);
    /* and starts again when asked */
    sc_hls_want(h, SC_HLS_AAC);
    free(wait_playlist(h, SC_HLS_AAC, "#EXTINF:"));
    sc_hls_end(h);
    free(wait_playlist(h, SC_HLS_AAC, "#EXT-X-ENDLIST\n"));
    sc_hls_set_aac_idle_ms(60000);
    opus_encoder_destroy(enc);
}

/* A player asking for AAC all along keeps it running, however long the HLS thread spends on
 * a batch of packets. A request stamped after the thread read its clock for the round once
 * made "now - wanted" wrap to an age of centuries: under load the encoder stopped and
 * restarted seconds back, and the blocking reloads parked on it were answered 503 and 400
 * (test_hls's nginx edge went red on one failed request). */
static void test_aac_kept_while_asked(void **state)
{
    (void)state;
    int err;
    enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    sc_hls_t *h = sc_hls_new("asked", NULL, 312, 0);
    push_tone(h, 120); /* 2.4 s: segment 0 complete */
    sc_hls_want(h, SC_HLS_AAC);
    free(wait_playlist(h, SC_HLS_AAC, "#EXTINF:"));
    int gone = 0;
    for (int round = 0; round < 30 && !gone; round++) {
        queue_tone(h, 40, 0); /* 0.8 s of audio, then one kick: a long round */
        sc_hls_kick();
        /* requests keep coming while the thread works through it (as workers' do) */
        for (uint64_t until = sc_now_ms() + 20; sc_now_ms() < until && !gone;) {
            sc_hls_want(h, SC_HLS_AAC);
            sc_page_t *p = sc_hls_playlist(h, SC_HLS_AAC);
            gone = p == NULL;
            sc_page_unref(p);
        }
    }
    assert_int_equal(gone, 0); /* the playlist never went: the encoder never stopped */
    sc_hls_end(h);
    free(wait_playlist(h, SC_HLS_AAC, "#EXT-X-ENDLIST\n"));
    sc_hls_free(h);
    opus_encoder_destroy(enc);
}

/* The end is seen everywhere at once: a player that finds EXT-X-ENDLIST in one live playlist
 * finds it in the other and the HLS finished (replay.m3u8 a VOD). The final playlists were
 * once published one by one before the end was marked, and test_hls, asking for replay.m3u8
 * the moment live.m3u8 ended, sometimes got an EVENT playlist under load. */
static void test_end_seen_at_once(void **state)
{
    (void)state;
    int err, torn = 0;
    enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &err);
    for (int round = 0; round < 20; round++) {
        sc_hls_t *h = sc_hls_new("end", NULL, 312, 0);
        push_tone(h, 120);
        sc_hls_want(h, SC_HLS_AAC);
        free(wait_playlist(h, SC_HLS_AAC, "#EXTINF:"));
        sc_hls_end(h);
        for (uint64_t until = sc_now_ms() + 3000; sc_now_ms() < until;) {
            sc_page_t *p = sc_hls_playlist(h, SC_HLS_AAC);
            int ended = p && memmem(p->data, p->len, "#EXT-X-ENDLIST\n", 15);
            sc_page_unref(p);
            if (!ended)
                continue;
            p = sc_hls_playlist(h, SC_HLS_OPUS);
            torn += !sc_hls_finished(h) || !memmem(p->data, p->len, "#EXT-X-ENDLIST\n", 15);
            sc_page_unref(p);
            break;
        }
        free(wait_playlist(h, SC_HLS_OPUS, "#EXT-X-ENDLIST\n"));
        sc_hls_free(h);
    }
    assert_int_equal(torn, 0);
    opus_encoder_destroy(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_boxes),
        cmocka_unit_test(test_fragment_offsets),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_parts_outlive_cached_playlists),
        cmocka_unit_test(test_aac_on_demand),
        cmocka_unit_test(test_aac_kept_while_asked),
        cmocka_unit_test(test_end_seen_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
