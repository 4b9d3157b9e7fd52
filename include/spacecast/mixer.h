/* mixer.h — one Space's audio mixer: per-speaker playout (jitter buffer, decoder, time-scale
 * control: playout.h), a float sum through a limiter, encoded once per 20 ms for every
 * listener, plus a mix-minus (everyone but themself) encoded per speaker who asks for one.
 * When exactly one speaker is audible, listeners get that speaker's own Opus packets
 * (forwarded: no decode, no encode); a Space nobody talks in gets a constant silence packet.
 * Listeners hear each frame one tick after it is played out, on both paths alike, so the
 * two paths agree sample for sample and switching between them is seamless.
 *
 * No threads here: one audio thread calls sc_mixer_tick() every 20 ms for every Space;
 * network threads call sc_mixer_push() concurrently. Everything but tick and free is
 * safe from any thread. Design notes: docs/internals/mixer.md. */
#ifndef SC_MIXER_H
#define SC_MIXER_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/common.h"

#define SC_MIXER_MAX_SPEAKERS 16
#define SC_MIXER_RATE SC_RATE
#define SC_MIXER_FRAME SC_FRAME     /* samples per channel per tick: 20 ms */
#define SC_MIXER_MAX_PACKET 4000    /* largest Opus packet accepted from a speaker */
#define SC_MIXER_SPEAKING_DB (-45.0f)
#define SC_MIXER_QUIET_DB (-50.0f)   /* quieter than this, a speaker's mix-minus is the listener mix */

/* Zeros pick the defaults: 1 channel, 32000 bit/s, complexity 5, 60 ms jitter target. */
typedef struct sc_mixer_config {
    int channels;         /* 1 or 2 */
    int bitrate;          /* bit/s for the listener mix and each mix-minus */
    int complexity;       /* Opus encoder complexity 0..10 */
    int jitter_target_ms; /* least delay a speaker's playout keeps (the network may ask for more) */
    int no_forward;       /* always mix, never forward a lone speaker's packets (benchmarks) */
    const char *name;     /* for log lines (the Space id); copied */
    int64_t (*clock)(void); /* time in 48 kHz samples; NULL = sc_jitter_clock (tests drive their own) */
} sc_mixer_config_t;

typedef struct sc_mixer sc_mixer_t;

/** New mixer (NULL when the config is invalid, e.g. channels 3); the caller owns it. */
sc_mixer_t *sc_mixer_new(const sc_mixer_config_t *cfg);
/** Free the mixer and every speaker; no other call may be running on it. NULL-safe. */
void sc_mixer_free(sc_mixer_t *m);

/** Add a speaker slot (id chosen by caller, unique); want_mix_minus allocates its own encoder. Returns 0, or -1 when full (16) or id exists. Thread-safe. */
int sc_mixer_add_speaker(sc_mixer_t *m, uint32_t id, int want_mix_minus);
/** Remove a speaker; its audio is gone from the next tick (a host removed them). Thread-safe. */
void sc_mixer_remove_speaker(sc_mixer_t *m, uint32_t id);
/** The speaker has left (disconnected): play out what it sent, then remove it. Its id is free
 *  at once for a new connection. Thread-safe. */
void sc_mixer_finish_speaker(sc_mixer_t *m, uint32_t id);
/** Give one speaker its own least jitter target and slack (ms; playout later than target +
 *  slack is sped up), e.g. a smoothly paced RTP sender. 0 or -1. */
int sc_mixer_set_jitter(sc_mixer_t *m, uint32_t id, int target_ms, int slack_ms);
/** Mute or unmute; takes effect at the next tick. Thread-safe. */
void sc_mixer_set_muted(sc_mixer_t *m, uint32_t id, int muted);
/** Set up a new stream (e.g. a reconnect or a new Ogg logical stream): reset the speaker's decoder and jitter buffer. Thread-safe. */
void sc_mixer_reset_speaker(sc_mixer_t *m, uint32_t id);
/** Push one Opus packet from a network thread. seq < 0 means "no sequence numbers: next in order". Copies the bytes. Returns 0 or -1 (unknown id, packet too big, malformed TOC). */
int sc_mixer_push(sc_mixer_t *m, uint32_t id, int32_t seq, const uint8_t *opus, size_t len);

typedef enum sc_mixer_route {
    SC_MIXER_SILENT = 0, /* nobody audible: a constant silence packet, no codec work */
    SC_MIXER_FORWARDED,  /* one audible speaker: their own packet, untouched */
    SC_MIXER_MIXED,      /* decoded, summed, limited, encoded */
} sc_mixer_route_t;

/** Push decoded audio for a speaker whose source the server decodes itself (Vorbis, FLAC, MP3,
 * AAC): `frames` 48 kHz frames of the mixer's channel count, interleaved, any number; copied.
 * It goes through the same playout as Opus (jitter target, time-scale catch-up, play-out when
 * the speaker leaves) and is always mixed, never forwarded. Thread-safe. 0, or -1 for an
 * unknown id. */
int sc_mixer_push_pcm(sc_mixer_t *m, uint32_t id, const float *pcm, int frames);

typedef struct sc_mixer_frame {
    const uint8_t *mix;
    size_t mix_len;  /* the listener packet for this 20 ms, owned by the mixer until the next tick */
    float mix_peak;  /* largest absolute sample after the limiter when mixed (tests, metrics); else 0 */
    int speaking;    /* speakers heard in this frame */
    sc_mixer_route_t route;
    uint32_t forwarded; /* SC_MIXER_FORWARDED: whose packet it is */
} sc_mixer_frame_t;

/** Mix-minus callback per speaker with want_mix_minus, called inside tick; pkt is valid only during the call. */
typedef void (*sc_mixer_minus_cb)(void *ctx, uint32_t speaker_id, const uint8_t *pkt, size_t len);

/** Produce one 20 ms frame. Always yields a packet (silence when nobody speaks: still a valid Opus packet so the stream's timeline never stops). Returns SC_OK or SC_ERR (encoder failure). */
int sc_mixer_tick(sc_mixer_t *m, sc_mixer_frame_t *out, sc_mixer_minus_cb cb, void *ctx);

typedef struct sc_mixer_speaker_state {
    uint32_t id;
    int present;   /* audio is flowing (playing or concealing); 0 while buffering or absent */
    int muted, speaking;
    float level_db; /* smoothed RMS of the last frames, dBFS (-100 for silence) */
    uint64_t packets, concealed, fec_recovered, dropped;
    uint64_t late;  /* arrived after their turn had been concealed */
    uint64_t lost;  /* their turn came without them: concealed or FEC'd then, or covered by
                     * concealment played while the buffer waited (which concealed does not count) */
    int buffered_ms; /* jitter buffer depth now */
    int target_ms;   /* the delay the network asks for (jitter buffer target) */
    uint64_t accelerated_ms, expanded_ms, concealed_ms, fec_ms; /* playout decisions, in audio time */
} sc_mixer_speaker_state_t;

/** Process-wide totals of every mixer since start (for /metrics). */
typedef struct sc_mixer_totals {
    uint64_t accelerated_ms, expanded_ms, concealed_ms, fec_ms; /* playout decisions, audio time */
    uint64_t frames[3];       /* listener frames by sc_mixer_route_t */
    uint64_t decoded, encoded; /* Opus packets decoded and encoded (codec work done) */
} sc_mixer_totals_t;

/** Totals over every mixer (thread-safe). */
void sc_mixer_totals(sc_mixer_totals_t *out);

/** Register the mixers' /metrics collector (the totals above), once however often called: at start-up, with no lock held. */
void sc_mixer_metrics_register(void);

/** Snapshot of every speaker (for details JSON and metrics). Returns count. Thread-safe. */
size_t sc_mixer_speakers(sc_mixer_t *m, sc_mixer_speaker_state_t *out, size_t max);
/** Encoder pre-skip in 48 kHz samples (for the OpusHead of the live stream). */
int sc_mixer_preskip(const sc_mixer_t *m);
/** Optionally inject raw PCM (mono float 960 samples) as the "bed" for this tick instead of speakers: used for lobby/waiting audio generated in-process. NULL = none. Copied; consumed by the next tick. */
void sc_mixer_set_bed(sc_mixer_t *m, const float *pcm960);
/** Output channel count (1 or 2), for the OpusHead. */
int sc_mixer_channels(const sc_mixer_t *m);

#endif
