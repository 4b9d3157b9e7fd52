/* jitter.h — a bounded per-speaker jitter buffer of Opus packets keyed by a 16-bit
 * sequence number (wraparound-safe), with the arrival history that sets its target delay.
 *
 * Network threads push (copies, one short mutex hold); the audio thread pops once per
 * packet it plays. The buffer knows nothing about Opus beyond what the caller tells it at
 * push time (duration in samples, flags). It is bounded by duration (SC_JITTER_MAX_SAMPLES)
 * and bytes, not by a packet count, so 2.5 ms packets and 60 ms packets are held alike.
 *
 * It never throws received audio away to catch up: it reports how late playout runs
 * (sc_jitter_delay) and the caller time-scales the decoded audio (playout.c, tsm.c).
 * Design notes: docs/internals/mixer.md. */
#ifndef SC_JITTER_H
#define SC_JITTER_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/common.h"

#define SC_JITTER_CAPACITY 1024       /* slots, a power of two: 2.56 s of 2.5 ms packets */
#define SC_JITTER_MAX_PACKET 4000     /* bytes; one Opus frame is at most 1275 */
#define SC_JITTER_MAX_BYTES (2 * 1024 * 1024) /* stored bytes: 5 s of stereo float PCM (decoded sources) */
#define SC_JITTER_RATE SC_RATE
#define SC_JITTER_MAX_SAMPLES (5 * SC_JITTER_RATE) /* stored duration: darkice's 2 s bursts fit twice */
#define SC_JITTER_ABSENT_SAMPLES 9600 /* 200 ms of nothing: the speaker is absent */
#define SC_JITTER_SLACK 960           /* 20 ms: playout this far behind target is worth a time-scale step */

/* push flags */
#define SC_JITTER_F_FEC 1u  /* the packet carries in-band FEC (LBRR) for its predecessor */
#define SC_JITTER_F_VAD 2u  /* the packet carries voice (the encoder's VAD flag, or a non-silent size) */
#define SC_JITTER_F_PCM 4u  /* the bytes are float PCM, not Opus (sources decoded upstream) */

typedef struct sc_jitter sc_jitter_t;

typedef enum sc_jitter_kind {
    SC_JITTER_NONE = 0, /* buffering, absent or drained: play silence, no concealment */
    SC_JITTER_PACKET,   /* the next packet in order: decode it */
    SC_JITTER_FEC,      /* the next one is missing but its successor carries FEC: decode that with decode_fec=1 */
    SC_JITTER_PLC,      /* missing (dry: late, or a hole: lost): run the decoder's concealment */
} sc_jitter_kind_t;

/** One pop's result; data holds the packet to decode (the successor for FEC). */
typedef struct sc_jitter_out {
    sc_jitter_kind_t kind;
    int samples;         /* samples per channel this pop stands for (the gap's size for FEC/PLC) */
    int dry;             /* PLC because nothing had arrived yet: time inserted, not a packet lost */
    int drained;         /* NONE because a finished speaker has played everything */
    unsigned flags;      /* SC_JITTER_F_* of the packet (PACKET and FEC) */
    uint16_t seq;        /* sequence number this pop stands for */
    uint32_t generation; /* bumped by sc_jitter_reset: the consumer resets its decoder when it changes */
    size_t len;
    uint8_t data[SC_JITTER_MAX_PACKET];
} sc_jitter_out_t;

/** How late playout runs, in samples (48 kHz). */
typedef struct sc_jitter_delay {
    int target;     /* the delay the arrival history asks for: its largest lateness + a frame, >= the base */
    int head_delay; /* how long after its on-time arrival the next packet to pop is being played */
    int depth;      /* samples stored */
    int draining;   /* the speaker has left (sc_jitter_finish): nothing more will come */
} sc_jitter_delay_t;

typedef struct sc_jitter_stats {
    uint64_t received;   /* packets accepted */
    uint64_t played;     /* popped as SC_JITTER_PACKET */
    uint64_t late;       /* arrived after their turn (already concealed) */
    uint64_t duplicates;
    uint64_t dropped;    /* discarded to bound duration or memory (a sender far faster than real time) */
    uint64_t lost;       /* holes popped as FEC or PLC, or covered by concealment already played */
    int depth_packets;
    int depth_samples;
    int target_samples;
    int playing;
} sc_jitter_stats_t;

/** New empty buffer; target_samples is the least delay playout keeps (0 = 2880, 60 ms);
 *  slack_samples how far above its target playout may run before it is sped up (0 = SC_JITTER_SLACK). */
sc_jitter_t *sc_jitter_new(int target_samples, int slack_samples);
/** Change the base target and the slack of a buffer (thread-safe). */
void sc_jitter_set_target(sc_jitter_t *j, int target_samples, int slack_samples);
/** The slack set for this buffer, in samples (thread-safe). */
int sc_jitter_slack(sc_jitter_t *j);
/** Free the buffer and every packet it holds. NULL-safe. */
void sc_jitter_free(sc_jitter_t *j);
/** Monotonic clock in 48 kHz samples: the time base of push and pop. */
int64_t sc_jitter_clock(void);
/** Copy one packet in (thread-safe), arrived at now (sc_jitter_clock). seq < 0 means "next in
 *  order" (ingests without sequence numbers). samples is its duration at 48 kHz, flags
 *  SC_JITTER_F_*. Returns 0 when taken or harmlessly discarded (late, duplicate), -1 when invalid. */
int sc_jitter_push(sc_jitter_t *j, int32_t seq, const uint8_t *pkt, size_t len, int samples, unsigned flags,
                   int64_t now);
/** Take what to play next (audio thread) at now. Fills *out; out->kind says what to do with it. */
void sc_jitter_pop(sc_jitter_t *j, sc_jitter_out_t *out, int64_t now);
/** Is the next packet to play stored (playing, no hole)? (thread-safe) */
int sc_jitter_has_next(sc_jitter_t *j);
/** SC_JITTER_F_* of the next packet to play, or -1 when it is not stored (thread-safe). */
int sc_jitter_peek_flags(sc_jitter_t *j);
/** Target and current lateness of playout at now (audio thread; thread-safe). */
void sc_jitter_delay(sc_jitter_t *j, int64_t now, sc_jitter_delay_t *out);
/** The speaker has gone: play what is stored (holes concealed), then pop drained NONE. */
void sc_jitter_finish(sc_jitter_t *j);
/** Forget every packet and start a new stream (thread-safe); bumps the generation. */
void sc_jitter_reset(sc_jitter_t *j);
/** Counters and current depth (thread-safe). */
void sc_jitter_stats(sc_jitter_t *j, sc_jitter_stats_t *out);

#endif
