/* minus.h — where a speaker's mix-minus goes: sinks keyed by (room owner, speaker index), one
 * per speaker connection that wants to hear the others (the WebSocket link, a WHEP session).
 * The key is whatever the room's owner is (a Space): only compared, never looked into.
 *
 * The engine thread publishes each packet into every matching sink's small bounded ring and,
 * if no delivery is pending, posts one task to the sink's loop; the task hands the packets to
 * the owner there. The engine never touches a socket and never waits on a worker; a loop
 * that falls behind loses the oldest packets (late audio is useless in a conversation).
 * Packets are numbered at publish time, so a drop shows up as a gap in seq/ts. */
#ifndef SC_MINUS_H
#define SC_MINUS_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/loop.h"

#define SC_MINUS_MAX_OPUS 1275 /* one Opus packet */

typedef struct sc_minus_sink sc_minus_sink_t;

/** Called on the sink's loop for each packet, in order; seq counts packets, ts samples (48 kHz). */
typedef void (*sc_minus_deliver_fn)(void *owner, const uint8_t *opus, size_t len, uint16_t seq, uint32_t ts);

/** Start receiving the mix-minus of speaker index of the room whose owner is key (a Space),
 *  delivered on loop to fn(owner, ...). */
sc_minus_sink_t *sc_minus_open(const void *key, uint32_t index, sc_loop_t *loop, sc_minus_deliver_fn fn,
                               void *owner);
/** Stop (on the sink's loop thread): fn is never called again once this returns. Returns the
 *  number of packets the ring dropped because the loop fell behind. */
uint64_t sc_minus_close(sc_minus_sink_t *k);
/** Engine thread: one mix-minus packet of speaker index of the room whose owner is key
 *  (an sc_mixer_minus_cb: the room passes its owner). */
void sc_minus_publish(void *key, uint32_t index, const uint8_t *opus, size_t len);

#endif
