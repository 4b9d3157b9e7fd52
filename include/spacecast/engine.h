/* engine.h — the audio thread: one drift-free 20 ms clock for every room (never a thread per
 * Space or per speaker). Each tick it plays the lobby audio in rooms that wait and mixes
 * each live room once (room.h), then wakes the workers once. It knows rooms, not Spaces:
 * what a room's owner wants to hear about comes back through the room's hooks. */
#ifndef SC_ENGINE_H
#define SC_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/room.h"

/** Prepare the lobby audio (the built-in pattern, or lobby_file): before rooms are made, so
 *  every live stream's OpusHead carries the lobby's pre-skip. sc_engine_start does it if not. */
void sc_engine_init(void);
/** Start the audio thread (and the recorder's sync thread, the HLS thread). 0 or -1. */
int sc_engine_start(void);
/** Stop and join it; recordings of rooms still live are closed without an end (they resume). */
void sc_engine_stop(void);
/** Tick r from the next tick on (lobby or live). Thread-safe; not from a room hook. */
void sc_engine_add_room(sc_room_t *r);
/** Stop ticking r; once this returns no tick touches it (a tick under way is waited for).
 *  Thread-safe; not from a room hook. */
void sc_engine_remove_room(sc_room_t *r);
/** Rooms ticked now (metrics, tests). */
size_t sc_engine_rooms(void);
/** Call fn(arg) on the engine thread at each tick before the rooms are mixed (a synthetic
 *  speaker: cmd/serve.c's demo bot). NULL to stop. */
void sc_engine_set_tick_hook(void (*fn)(void *arg), void *arg);
/** The lobby encoder's pre-skip, for a room's live stream (0 before sc_engine_init). */
uint16_t sc_engine_lobby_preskip(void);

#endif
