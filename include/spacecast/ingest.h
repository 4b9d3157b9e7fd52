/* ingest.h — a speaker's audio into a Space's mixer: the shared part of every ingest
 * (Icecast PUT/SOURCE, WebSocket, WHIP): claiming the speaker slot, replacing an older
 * connection of the same speaker, and letting go. */
#ifndef SC_INGEST_H
#define SC_INGEST_H

#include <stdint.h>

#include "spacecast/space.h"

#define SC_INGEST_BUSY_MS 3000 /* a source silent on the wire this long may be replaced */

typedef struct sc_ingest_slot {
    sc_space_t *space;
    struct sc_room *room; /* the Space's room, used (sc_space_room_use) from claim to release */
    int index;          /* speaker slot = mixer id */
    uint32_t gen;       /* the speaker's ingest_gen when this connection claimed it */
    uint32_t token_gen; /* the token's generation: removal revokes */
} sc_ingest_slot_t;

/** Claim the speaker's slot for a new connection (an older one steps aside), add it to the
 * mixer (with a mix-minus encoder if wanted; jitter_ms its jitter target, 0 = the mixer's;
 * a target of its own comes with half of it as slack: a paced sender needs little).
 * 0, or -1 if the speaker was removed meanwhile. */
int sc_ingest_claim(sc_ingest_slot_t *slot, sc_space_t *s, int index, uint32_t token_gen, int want_mix_minus,
                    int jitter_ms);
/** Is this connection still the speaker's current one (not replaced, not removed)? */
int sc_ingest_current(const sc_ingest_slot_t *slot);
/** Push one Opus packet (seq < 0: in order). */
int sc_ingest_push(const sc_ingest_slot_t *slot, int32_t seq, const uint8_t *pkt, size_t len);
/** Push decoded 48 kHz PCM (sc_ingest_channels() interleaved channels) for a source the server
 *  decodes itself: the speaker is mixed from PCM from now on. */
int sc_ingest_push_pcm(const sc_ingest_slot_t *slot, const float *pcm, int frames);
/** Audio a sender may have waiting in the mix, in ms, at least, before it is read no further
 *  (a source faster than real time is paced by TCP instead of having its excess dropped). */
#define SC_INGEST_AHEAD_MS 60
/** Does the speaker's buffer in the mix already hold its playout target (at least
 *  SC_INGEST_AHEAD_MS) while it plays? Then a sender that can wait (a TCP source) should
 *  wait: more would only be dropped or sped through. Thread-safe. */
int sc_ingest_ahead(const sc_ingest_slot_t *slot);
/** Channels of the Space's mix (what sc_ingest_push_pcm takes). */
int sc_ingest_channels(const sc_ingest_slot_t *slot);
/** Is a source connected for this speaker that delivered audio in the last SC_INGEST_BUSY_MS?
 *  (Icecast's "Mountpoint in use": a second source is refused, not swapped in.) */
int sc_ingest_busy(sc_space_t *s, int index);
/** The connection ends: if it is still current, the speaker leaves the mix. The slot's
 *  reference on the Space (taken by sc_ingest_claim) goes. */
void sc_ingest_release(sc_ingest_slot_t *slot);

#endif
