/* room.h — one Space's audio as the engine sees it: a mixer, the live stream, the recording
 * and the HLS of the mix, and whether it plays the lobby or the mix. The engine ticks rooms
 * (engine.h) and tells their owner what it heard through hooks; it never knows whose room it
 * is (Redis' aeFileProc with its clientData, Icecast's format_plugin_t).
 *
 * Threads: the engine ticks a room under room->mu; network threads push speaker packets into
 * the mixer (thread-safe); listeners read the live stream's chain and the HLS without the
 * lock (the stream is set at creation, the HLS published once with release semantics).
 * Lifetime: the owner creates the room, adds it to the engine while it plays, and frees it
 * after sc_engine_remove_room. */
#ifndef SC_ROOM_H
#define SC_ROOM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spacecast/hls.h"
#include "spacecast/live.h"
#include "spacecast/mixer.h"
#include "spacecast/recorder.h"

typedef enum { SC_ROOM_LOBBY = 0, SC_ROOM_LIVE = 1, SC_ROOM_ENDED = 2 } sc_room_mode_t;

/** What the engine tells a room's owner (on the engine thread; hooks must not add or remove
 *  rooms). Either may be NULL. */
typedef struct sc_room_hooks {
    /** Every SC_ROOM_SPEAKING_TICKS while live: each speaker's state as the mixer heard it. */
    void (*on_speaking)(void *owner, const sc_mixer_speaker_state_t *st, size_t n);
    /** Once a second while the room plays (lobby or live). */
    void (*on_second)(void *owner);
} sc_room_hooks_t;

#define SC_ROOM_SPEAKING_TICKS 10 /* speaking indicators every 200 ms */

/** How a room is made: what names its files and streams, and how it encodes. */
typedef struct sc_room_config {
    const char *id;           /* names the recording and the HLS directory */
    const char *title;        /* OpusTags of the live stream and the recording */
    const char *data_dir;     /* where recordings and the HLS replay go; NULL: not recorded */
    int bitrate;              /* of the mix */
    int frames_per_page;      /* Ogg page duration of the live stream and recording, in frames */
    uint16_t preskip;         /* the live stream's OpusHead pre-skip; 0: the mixer's */
} sc_room_config_t;

typedef struct sc_room {
    pthread_mutex_t mu;        /* the tick, the recorder and mode changes */
    _Atomic int mode;          /* sc_room_mode_t */
    sc_mixer_t *mixer;         /* set at creation, never replaced: use without mu */
    sc_live_t *live;           /* set at creation, never replaced: use without mu */
    sc_recorder_t *rec;        /* under mu */
    _Atomic(sc_hls_t *) hls;   /* published once when live, kept after the end */
    uint32_t lobby_pos;        /* engine thread */
    char id[33];
    char data_dir[512];        /* "" when not recorded */
    char title[257];
    void *owner;
    const sc_room_hooks_t *hooks;
    struct sc_room *next, *prev; /* the engine's list, under its lock */
    int ticking;                 /* on that list */
} sc_room_t;

/** A room in mode (LOBBY, or LIVE for a Space restarted while live: its recording is
 *  continued and HLS numbered from started_at). Its live stream has a page of silence at once,
 *  so a listener arriving before the first tick has a start point. Not ticked until added. */
sc_room_t *sc_room_new(const sc_room_config_t *cfg, sc_room_mode_t mode, int64_t started_at, void *owner,
                       const sc_room_hooks_t *hooks);
/** Free a room that is not (or no longer) ticked: the mixer and the live stream's own
 *  references (listeners keep theirs). NULL-safe. */
void sc_room_free(sc_room_t *r);
/** Lobby → live: the recording opens, HLS starts (numbered from started_at). */
void sc_room_go_live(sc_room_t *r, int64_t started_at);
/** → ended: the live stream's end-of-stream page, the recording finished (synced), HLS cut and
 *  closed (its final playlist stays). The caller removes the room from the engine first. */
void sc_room_end(sc_room_t *r);
/** Close the recording without an end-of-stream page (shutdown of a Space that stays live). */
void sc_room_close_recording(sc_room_t *r);
/** The HLS of the mix, or NULL before the room went live (acquire: safe from any thread). */
static inline sc_hls_t *sc_room_hls(sc_room_t *r)
{
    return atomic_load_explicit(&r->hls, memory_order_acquire);
}
/** Where a newcomer to the live stream starts (a reference, or NULL before the first page):
 *  the live edge, without the room's lock (the chain has its own); with burst_bytes > 0 some
 *  recent pages back (sc_live_start), which reads what the tick writes, so under the lock. */
sc_page_t *sc_room_live_start(sc_room_t *r, size_t burst_bytes, int max_pages);
/** Engine thread: one 20 ms frame. In the lobby, lobby_pkt (the engine's waiting audio) goes
 *  out; live, the mix goes to the live stream, the HLS and the recording, and each speaker's
 *  mix-minus to the sinks keyed by the owner (minus.h). Returns 1 if a page was published. */
int sc_room_tick(sc_room_t *r, const uint8_t *lobby_pkt, size_t lobby_len);

#endif
