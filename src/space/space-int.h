/* space-int.h — what the Space model's files share among themselves (space.c, space_audience.c,
 * space_timeline.c); not for anyone else. */
#ifndef SC_SPACE_INT_H
#define SC_SPACE_INT_H

#include "spacecast/space.h"
#include "spacecast/store.h"

/** A write through to the store under its lock: fn(store, arg); -1 (logged, counted) if there
 *  is no store or it failed. */
int sc_space__with_store(const char *what, sc_space_t *s, const void *arg, int (*fn)(sc_store_t *, const void *));
/** A read from the store under its lock: fn(store, arg) (NULL without a store). */
void *sc_space__read_store(void *(*fn)(sc_store_t *, void *), void *arg);
/** Once a second for a Space that is not over: reactions out, the audience into its minute. */
void sc_space__audience_second(sc_space_t *s);
/** Where the recording is now (ms), or -1 when nothing records. */
int64_t sc_space__recording_ms(sc_space_t *s);
/** Open the speaker timeline of a recorded Space going (or still) live. */
void sc_space__timeline_open(sc_space_t *s);
/** Close it at at_ms (everyone falls silent there). */
void sc_space__timeline_close(sc_space_t *s, int64_t at_ms);

#endif
