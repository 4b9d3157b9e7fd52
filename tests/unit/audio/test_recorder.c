/* test_recorder.c — a recording through a disk that fills up and frees again (#14 item 6).
 * The "disk" is RLIMIT_FSIZE: a write past it fails (EFBIG) at an exact byte, which a tmpfs
 * (whole blocks) cannot give. The recording must stay at whole pages, go on after the gap by
 * itself, mark the gap the Ogg way, and get its end-of-stream page once there is room. The
 * engine's pushes write nothing themselves: the pages are queued and written in batches by the
 * recorder thread (#16), and a disk that takes nothing for longer than the queue loses pages
 * with the gap marked the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spacecast/common.h"
#include "spacecast/ogg.h"

#include "../../../src/audio/recorder.c" /* to play a recorder thread stuck on the disk */

typedef struct page_info {
    int flags;
    int64_t granule;
    uint32_t seq;
} page_info_t;

/* The whole pages of an Ogg file; *trailing: bytes after the last whole one. */
static int read_pages(const char *path, page_info_t *out, int max, int *trailing)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t b[1 << 20];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    size_t i = 0;
    int k = 0;
    while (i + 27 <= n && !memcmp(b + i, "OggS", 4) && k < max) {
        size_t nseg = b[i + 26], body = 0;
        if (i + 27 + nseg > n)
            break;
        for (size_t s = 0; s < nseg; s++)
            body += b[i + 27 + s];
        if (i + 27 + nseg + body > n)
            break;
        int64_t g = 0;
        for (int s = 7; s >= 0; s--)
            g = (g << 8) | b[i + 6 + s];
        out[k++] = (page_info_t){ b[i + 5], g, (uint32_t)b[i + 18] | (uint32_t)b[i + 19] << 8 |
                                                   (uint32_t)b[i + 20] << 16 | (uint32_t)b[i + 21] << 24 };
        i += 27 + nseg + body;
    }
    *trailing = i != n;
    return k;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void disk_limit(rlim_t bytes)
{
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = bytes;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* Packets for a while, in real time steps (the recorder retries by the clock). */
static void push_for(sc_recorder_t *r, int packets, int sleep_us)
{
    for (int i = 0; i < packets; i++) {
        sc_recorder_push(r, sc_opus_silence, SC_OPUS_SILENCE_LEN, SC_FRAME);
        if (sleep_us)
            usleep((useconds_t)sleep_us);
    }
}

static void test_full_then_free(void **state)
{
    (void)state;
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG instead */
    char dir[] = "/tmp/sc-rec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    sc_recorder_path(dir, "u", path, sizeof path);
    sc_recorder_t *r = sc_recorder_open(dir, "u", 1, 312, "unit", 5, 0);
    assert_non_null(r);
    off_t headers = file_size(path);
    push_for(r, 100, 0); /* 2 s: 20 pages, queued: the engine thread wrote nothing */
    assert_int_equal(file_size(path), headers);
    sc_recorder_drain(r); /* one batch */
    off_t before = file_size(path);
    page_info_t pg[512];
    int trailing;
    assert_int_equal(read_pages(path, pg, 512, &trailing), 2 + 20);
    sc_recorder_sync_start();

    /* the disk is full: the file stays at its whole pages, however long it lasts */
    disk_limit((rlim_t)before + 40); /* room for a part of a page only */
    push_for(r, 75, 20000);          /* 1.5 s: every batch fails, one is retried after a second */
    sc_recorder_drain(r);
    int n = read_pages(path, pg, 512, &trailing);
    assert_false(trailing);
    assert_int_equal(file_size(path), before);

    /* room again: the recording goes on by itself, after a gap the page sequence shows */
    disk_limit(RLIM_INFINITY);
    push_for(r, 75, 20000);
    sc_recorder_drain(r);
    n = read_pages(path, pg, 512, &trailing);
    assert_false(trailing);
    int gap = 0;
    for (int i = 1; i < n; i++) {
        assert_true(pg[i].granule >= pg[i - 1].granule);
        if (pg[i].seq > pg[i - 1].seq + 1) {
            gap = 1;
            assert_true(pg[i].granule - pg[i - 1].granule > 5 * SC_FRAME); /* the left-out time */
        }
    }
    assert_true(gap);
    assert_true(n > 22);

    /* full at the end: no end-of-stream page yet, so not complete (the replay is not final) */
    disk_limit((rlim_t)file_size(path));
    sc_recorder_finish(r);
    n = read_pages(path, pg, 512, &trailing);
    assert_false(trailing);
    assert_false(pg[n - 1].flags & SC_OGG_EOS);
    assert_int_equal(sc_recorder_complete(path), 0);

    /* room again: the sync thread adds it */
    disk_limit(RLIM_INFINITY);
    for (int i = 0; i < 30 && !sc_recorder_complete(path); i++)
        usleep(100000);
    assert_int_equal(sc_recorder_complete(path), 1);
    n = read_pages(path, pg, 512, &trailing);
    assert_true(pg[n - 1].flags & SC_OGG_EOS);
    assert_false(trailing);
    sc_recorder_sync_stop();
    unlink(path);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/recordings", dir);
    rmdir(sub);
    rmdir(dir);
}

/* A disk that takes nothing for longer than the queue (a recorder thread stuck in a write): the
 * pages past it are left out, the page sequence and granules show the gap, and the rest is
 * written whole. With no recorder thread at all (a tool) nothing is left out. */
static void test_queue_overflow(void **state)
{
    (void)state;
    char dir[] = "/tmp/sc-rec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    sc_recorder_path(dir, "q", path, sizeof path);
    sc_recorder_t *r = sc_recorder_open(dir, "q", 1, 312, "unit", 5, 0);
    assert_non_null(r);
    atomic_store(&sc_rec_running, 1); /* "running", but never draining: stuck on the disk */
    push_for(r, 5 * 70, 0);           /* 70 pages: 6 more than the queue holds */
    atomic_store(&sc_rec_running, 0);
    sc_recorder_drain(r);
    atomic_store(&sc_rec_running, 1);
    push_for(r, 5 * 66, 0); /* full again as the Space ends: its end-of-stream page is not dropped */
    sc_recorder_finish(r);
    atomic_store(&sc_rec_running, 0);
    page_info_t pg[512];
    int trailing;
    int n = read_pages(path, pg, 512, &trailing);
    assert_false(trailing);
    assert_int_equal(n, 2 + 64 + 64 + 1); /* headers, the queue, the queue again, the end */
    assert_int_equal(pg[2 + 64].seq, pg[2 + 63].seq + 1 + 6);
    assert_int_equal(pg[2 + 64].granule - pg[2 + 63].granule, 7 * 5 * SC_FRAME);
    assert_int_equal(pg[n - 1].seq, pg[n - 2].seq + 1 + 2);
    assert_true(pg[n - 1].flags & SC_OGG_EOS);
    assert_int_equal(sc_recorder_complete(path), 1);
    unlink(path);

    /* no recorder thread: the pusher writes a full queue itself, every page kept */
    r = sc_recorder_open(dir, "q", 1, 312, "unit", 5, 0);
    assert_non_null(r);
    push_for(r, 5 * 150, 0);
    sc_recorder_finish(r);
    n = read_pages(path, pg, 512, &trailing);
    assert_int_equal(n, 2 + 150 + 1);
    for (int i = 1; i < n; i++)
        assert_int_equal(pg[i].seq, pg[i - 1].seq + 1);
    unlink(path);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/recordings", dir);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_then_free),
        cmocka_unit_test(test_queue_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
