/* playout.h — one speaker's playout: its jitter buffer, its Opus decoder, and the control
 * that keeps playout as late as the network needs and no later (NetEq's DecisionLogic):
 * catch up by time-scale modification (tsm.h), fill a stall by concealment, never skip a
 * block of received speech. Yields one 20 ms frame per tick.
 *
 * A frame that is exactly one received 20 ms packet, untouched, is kept as that packet and
 * decoded only if someone asks for its samples (sc_playout_pcm): a lone speaker can be
 * forwarded to listeners as it is, with no codec work at all.
 *
 * Threads: push/finish/reset from any thread (they go to the jitter buffer); everything
 * else from the audio thread alone. Design notes: docs/internals/mixer.md. */
#ifndef SC_PLAYOUT_H
#define SC_PLAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/jitter.h"

#define SC_PLAYOUT_FRAME 960     /* samples per channel per tick: 20 ms at 48 kHz */
#define SC_PLAYOUT_HISTORY 8     /* frames kept: a frame may be forwarded a tick later, primed 3 back */
#define SC_PLAYOUT_MAX_KEEP 1500 /* bytes of a packet kept as a frame; larger ones are decoded at once */

typedef enum sc_playout_kind {
    SC_PLAYOUT_NONE = 0, /* nothing: buffering, absent or drained (silence, not present) */
    SC_PLAYOUT_PACKET,   /* exactly one received 20 ms packet, untouched (pkt; pcm on demand) */
    SC_PLAYOUT_PCM,      /* decoded audio that is not one packet: stretched, concealed, mixed sizes */
} sc_playout_kind_t;

typedef struct sc_playout_frame {
    uint64_t index;  /* tick number */
    int kind;        /* sc_playout_kind_t */
    int active;      /* voice in it: the packet's VAD flag, or a loud decoded level */
    int has_pcm;
    int channels;    /* PACKET: channels coded in the packet */
    size_t len;      /* PACKET: bytes of pkt */
    uint8_t pkt[SC_PLAYOUT_MAX_KEEP];
    float *pcm;      /* SC_PLAYOUT_FRAME * channels floats, valid when has_pcm */
} sc_playout_frame_t;

/** What the playout did (monotonic counters): samples at 48 kHz, but for the two packet counts. */
typedef struct sc_playout_stats {
    uint64_t accelerated; /* removed by time-scale modification (silence first, then whole pitch periods) */
    uint64_t expanded;    /* inserted: concealment while the buffer was dry, and stretching */
    uint64_t concealed;   /* in place of packets lost for good, concealed by the decoder */
    uint64_t fec;         /* in place of packets lost, recovered from their successor's in-band FEC */
    uint64_t decoded;     /* packets decoded (0 while a lone speaker is only forwarded) */
    uint64_t dropped_silent; /* packets the encoder called silence, dropped inside a pause (their samples in accelerated) */
} sc_playout_stats_t;

typedef struct sc_playout sc_playout_t;

/** New playout for channels (1 or 2) with a base jitter target in samples (0 = 60 ms); NULL
 *  when the decoder cannot be made. The caller owns it. */
sc_playout_t *sc_playout_new(int channels, int target_samples);
/** Free it and every packet it holds. NULL-safe. */
void sc_playout_free(sc_playout_t *p);
/** The jitter buffer (for targets, stats, finish and reset; thread-safe calls only). */
sc_jitter_t *sc_playout_jitter(sc_playout_t *p);
/** Validate one Opus packet and push it, arrived at now (any thread). 0 or -1 (malformed). */
int sc_playout_push(sc_playout_t *p, int32_t seq, const uint8_t *opus, size_t len, int64_t now);
/** Push decoded PCM (interleaved floats at 48 kHz, the playout's channels, at most a frame)
 *  from a source that is not Opus (any thread). 0 or -1. */
int sc_playout_push_pcm(sc_playout_t *p, const float *pcm, int frames, int64_t now);
/** Produce the next 20 ms frame (audio thread), at now (sc_jitter_clock). */
void sc_playout_tick(sc_playout_t *p, int64_t now);
/** This tick's frame (back 0) or an earlier one (back < SC_PLAYOUT_HISTORY); owned by p. */
const sc_playout_frame_t *sc_playout_frame(sc_playout_t *p, int back);
/** The samples of that frame, decoding them now if it was kept as a packet (zeros for NONE).
 *  Ask for older frames first: the decoder only goes forward. Valid until the next tick. */
const float *sc_playout_pcm(sc_playout_t *p, int back);
/** A finished speaker (sc_jitter_finish) has played everything. */
int sc_playout_drained(const sc_playout_t *p);
/** Counters (audio thread, or any thread with the caller's own lock around ticks). */
void sc_playout_stats(const sc_playout_t *p, sc_playout_stats_t *out);

/** Voice activity of an Opus packet without decoding it: the SILK VAD flag of any of its
 *  frames, or for a CELT-only packet a size above digital silence. */
int sc_playout_packet_vad(const uint8_t *pkt, size_t len);
/** Does the packet's first SILK frame carry LBRR (in-band FEC for the packet before it)? */
int sc_playout_packet_lbrr(const uint8_t *pkt, size_t len);

#endif
