/* engine.h — the audio thread: one drift-free 20 ms clock for every Space (never a
 * thread per Space or per speaker). Each tick it mixes each live Space once, plays the
 * lobby audio for scheduled ones, pages the result into the live stream and recorder,
 * then wakes the workers once. */
#ifndef SC_ENGINE_H
#define SC_ENGINE_H

#include "spacecast/space.h"

/** Start the audio thread. 0 or -1. */
int sc_engine_start(void);
/** Stop and join it. */
void sc_engine_stop(void);
/** Give a Space its audio state (live stream, mixer; recorder if it is live). At create and load. */
void sc_engine_space_init(sc_space_t *s);
/** Called with the Space's state just changed to live / ended (takes audio_mu): opens the
 * recording, or finishes the live stream and the recording (end-of-stream pages, fsync). */
void sc_engine_space_started(sc_space_t *s);
void sc_engine_space_ended(sc_space_t *s);
/** Speaker slot changes, forwarded to the mixer. */
void sc_engine_speaker_muted(sc_space_t *s, int index, int muted);
void sc_engine_speaker_removed(sc_space_t *s, int index);
/** Add the built-in synthetic speaker ("demo-bot") to a live Space (for --demo). */
void sc_engine_demo_speaker(sc_space_t *s);

#endif
