/* jitter.h — a bounded per-speaker jitter buffer of Opus packets keyed by a 16-bit
 * sequence number (wraparound-safe).
 *
 * Network threads push (copies, one short mutex hold); the audio thread pops once per
 * decoded packet. The buffer knows nothing about Opus beyond what the caller tells it at
 * push time (duration in samples, whether the packet carries in-band FEC). Depth is
 * measured in samples so packets of any Opus duration (10..120 ms) count fairly.
 * Design notes: docs/internals/mixer.md. */
#ifndef SC_JITTER_H
#define SC_JITTER_H

#include <stddef.h>
#include <stdint.h>

#define SC_JITTER_CAPACITY 64         /* slots: a power of two, 1.28 s of 20 ms packets */
#define SC_JITTER_MAX_PACKET 4000     /* bytes; one Opus frame is at most 1275 */
#define SC_JITTER_MAX_BYTES 65536     /* stored bytes: 1 s at Opus' maximum 510 kbit/s */
#define SC_JITTER_RATE 48000
#define SC_JITTER_ABSENT_SAMPLES 9600 /* 200 ms of nothing: the speaker is absent */
#define SC_JITTER_SLACK 1920          /* 40 ms: depth above target never used for a second is cut */

typedef struct sc_jitter sc_jitter_t;

typedef enum sc_jitter_kind {
    SC_JITTER_NONE = 0, /* buffering or absent: play silence, no concealment */
    SC_JITTER_PACKET,   /* the next packet in order: decode it */
    SC_JITTER_FEC,      /* the next one is missing but its successor carries FEC: decode that with decode_fec=1 */
    SC_JITTER_PLC,      /* missing, nothing to recover from: run the decoder's concealment */
} sc_jitter_kind_t;

/** One pop's result; data holds the packet to decode (the successor for FEC). */
typedef struct sc_jitter_out {
    sc_jitter_kind_t kind;
    int samples;         /* samples per channel this pop stands for (the gap's size for FEC/PLC) */
    uint16_t seq;        /* sequence number this pop stands for */
    uint32_t generation; /* bumped by sc_jitter_reset: the consumer resets its decoder when it changes */
    size_t len;
    uint8_t data[SC_JITTER_MAX_PACKET];
} sc_jitter_out_t;

typedef struct sc_jitter_stats {
    uint64_t received;   /* packets accepted */
    uint64_t played;     /* popped as SC_JITTER_PACKET */
    uint64_t late;       /* arrived after their turn (already concealed) */
    uint64_t duplicates;
    uint64_t dropped;    /* discarded to bound depth or memory */
    uint64_t lost;       /* holes popped as FEC or PLC */
    int depth_packets;
    int depth_samples;
    int playing;
} sc_jitter_stats_t;

/** New empty buffer; target_samples is the depth that starts playout (0 = 2880, 60 ms),
 *  max_samples the sustained depth above which the oldest packets are dropped (0 = target +
 *  SC_JITTER_SLACK). */
sc_jitter_t *sc_jitter_new(int target_samples, int max_samples);
/** Change the target and the slack above it (max = target + slack) of a buffer (thread-safe). */
void sc_jitter_set_target(sc_jitter_t *j, int target_samples, int slack_samples);
/** Free the buffer and every packet it holds. NULL-safe. */
void sc_jitter_free(sc_jitter_t *j);
/** Copy one packet in (thread-safe). seq < 0 means "next in order" (ingests without
 *  sequence numbers). samples is its duration at 48 kHz, has_fec whether it carries LBRR.
 *  Returns 0 when taken or harmlessly discarded (late, duplicate), -1 when invalid. */
int sc_jitter_push(sc_jitter_t *j, int32_t seq, const uint8_t *pkt, size_t len, int samples, int has_fec);
/** Take what to play next (audio thread). Fills *out; out->kind says what to do with it. */
void sc_jitter_pop(sc_jitter_t *j, sc_jitter_out_t *out);
/** Forget every packet and start a new stream (thread-safe); bumps the generation. */
void sc_jitter_reset(sc_jitter_t *j);
/** Counters and current depth (thread-safe). */
void sc_jitter_stats(sc_jitter_t *j, sc_jitter_stats_t *out);

#endif
