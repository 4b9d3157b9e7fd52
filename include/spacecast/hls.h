/* hls.h — a live Space's mix as HLS: fragmented MP4 segments of 2 s (ten 200 ms parts,
 * LL-HLS) in two renditions made from the same Opus mix packets: Opus (the packets as they
 * are, always) and AAC-LC (decoded and re-encoded once per Space, for every player, only while
 * someone asks for it). Every segment, part and playlist is an immutable shared page built
 * once, whatever the audience; recorded Spaces also keep their Opus segments on disk for an
 * HLS replay.
 *
 * Threads: the engine hands over packets (a copy, never blocking on I/O); one HLS thread
 * decodes, encodes, cuts and publishes for every Space; workers look pages up under a
 * short per-Space lock, and park blocking playlist reloads until their part exists. */
#ifndef SC_HLS_H
#define SC_HLS_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/common.h"

#include "spacecast/page.h"

enum { SC_HLS_AAC = 0, SC_HLS_OPUS = 1, SC_HLS_NREND = 2 };

#define SC_HLS_RATE SC_RATE
#define SC_HLS_PARTS 10                                     /* parts per segment */
#define SC_HLS_PART_SAMPLES 9600                            /* 200 ms */
#define SC_HLS_SEGMENT_SAMPLES (SC_HLS_PARTS * SC_HLS_PART_SAMPLES) /* 2 s */
#define SC_HLS_WAIT_MS 6000 /* a blocking request is answered within 3 target durations */
/* How long a cache may keep a blocking playlist answer (it names parts, so those parts must
 * stay in memory at least this long after the playlist stops listing them: hls.c). */
#define SC_HLS_BLOCKED_MAX_AGE_S 6

typedef struct sc_hls sc_hls_t;

/** A parked request waiting for part `part` of segment `msn` of a rendition (part -1: the
 * whole segment). Owned by whoever parked it; between sc_hls_wait and the wake it is on
 * the Space's list. */
typedef struct sc_hls_wait {
    struct sc_hls_wait *next;
    int rend;
    uint64_t msn;
    int part;
    int need_playlist;    /* also wait until the rendition has a playlist at all */
    uint64_t deadline_ms; /* monotonic: answered then even if the part never came */
    int posted;           /* wake was called: the waiter is off the list */
    int timed_out;        /* woken by the deadline, not by the part */
    /** Called once on the HLS thread under the Space's HLS lock: hand the waiter to its own
     * thread (sc_loop_post), never answer from here. */
    void (*wake)(struct sc_hls_wait *w);
} sc_hls_wait_t;

/** Start the HLS thread and register its metrics (once; sc_hls_new does it too). */
void sc_hls_init(void);
/** Start HLS for a Space that is live (its room, under the room's lock). data_dir: keep the Opus
 * segments under DATA/hls/ID/ for the replay, or NULL. started_at: unix seconds the Space
 * went live, so segment numbers keep counting across a restart. Its owner frees it with
 * sc_hls_free once nobody can reach it (no parked request, no worker holding the pointer). */
sc_hls_t *sc_hls_new(const char *space_id, const char *data_dir, uint16_t preskip, int64_t started_at);
/** Let go of h (any thread): freed now, or by the HLS thread once it is done with it (an
 *  unfinished h is ended first). NULL-safe. */
void sc_hls_free(sc_hls_t *h);
/** Engine thread: one 20 ms Opus packet of the mix (copied). Never blocks; dropped and
 * counted if the HLS thread is seconds behind. Taken up at the next sc_hls_kick. */
void sc_hls_push(sc_hls_t *h, const uint8_t *pkt, size_t len);
/** Engine thread, once per tick after every room's push: wake the HLS thread once for all of
 *  them (not once per packet: a thousand live Spaces would wake it 50,000 times a second). */
void sc_hls_kick(void);
/** A request for a rendition (any thread, cheap): the AAC rendition is encoded only while
 *  someone asks for it, so the first request starts it (warm: its first playlist lists the last
 *  two segments) and a minute without one stops it. The Opus rendition always runs. */
void sc_hls_want(sc_hls_t *h, int rend);
/** How long the AAC rendition runs after the last request for it (default 60 s; tests shorten it). */
void sc_hls_set_aac_idle_ms(int ms);
/** Engine thread: the Space ended; the HLS thread cuts the last segment and ends the
 * playlists (EXT-X-ENDLIST). */
void sc_hls_end(sc_hls_t *h);

/** The newest playlist of a rendition (reference for the caller), NULL before its first
 * segment. */
sc_page_t *sc_hls_playlist(sc_hls_t *h, int rend);
/** An init segment, segment or part by file name: SC_OK with a reference in *page; SC_AGAIN
 * when it is the next one due (w's rend/msn/part are set: park on it); SC_ERR when it is not
 * in memory (it may be on disk). */
int sc_hls_find(sc_hls_t *h, const char *name, sc_page_t **page, sc_hls_wait_t *w);
/** Park w until its part exists: SC_AGAIN parked (w->wake will be called), SC_OK it exists
 * already (or the stream ended: nothing to wait for), SC_ERR it is too far ahead (400). */
int sc_hls_wait(sc_hls_t *h, sc_hls_wait_t *w);
/** Take back a parked waiter (its connection closed): 1 if it was still parked (the caller
 * frees it now), 0 if wake was already called (the posted task frees it). */
int sc_hls_unwait(sc_hls_t *h, sc_hls_wait_t *w);
/** 1 once the last segment is out and the playlists carry EXT-X-ENDLIST. */
int sc_hls_finished(sc_hls_t *h);
/** Where a Space's HLS replay lives: DATA/hls/ID. */
void sc_hls_dir(const char *data_dir, const char *space_id, char *out, size_t outsz);
/** Counters for metrics: segments made, packets dropped, requests parked now. */
void sc_hls_stats(uint64_t *segments, uint64_t *dropped, uint64_t *parked);

#endif
