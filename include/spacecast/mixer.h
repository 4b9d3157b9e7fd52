/* mixer.h — one Space's audio mixer: per-speaker jitter buffers and Opus decoders, a
 * float sum through a limiter, encoded once per 20 ms for every listener, plus a
 * mix-minus (everyone but themself) encoded per speaker who asks for one.
 *
 * No threads here: one audio thread calls sc_mixer_tick() every 20 ms for every Space;
 * network threads call sc_mixer_push() concurrently. Everything but tick and free is
 * safe from any thread. Design notes: docs/internals/mixer.md. */
#ifndef SC_MIXER_H
#define SC_MIXER_H

#include <stddef.h>
#include <stdint.h>

#define SC_MIXER_MAX_SPEAKERS 16
#define SC_MIXER_RATE 48000
#define SC_MIXER_FRAME 960          /* samples per channel per tick: 20 ms */
#define SC_MIXER_MAX_PACKET 4000    /* largest Opus packet accepted from a speaker */
#define SC_MIXER_SPEAKING_DB (-45.0f)
#define SC_MIXER_QUIET_DB (-50.0f)   /* quieter than this, a speaker's mix-minus is the listener mix */

/* Zeros pick the defaults: 1 channel, 32000 bit/s, complexity 5, 60 ms jitter target. */
typedef struct sc_mixer_config {
    int channels;         /* 1 or 2 */
    int bitrate;          /* bit/s for the listener mix and each mix-minus */
    int complexity;       /* Opus encoder complexity 0..10 */
    int jitter_target_ms; /* depth a speaker's buffer reaches before playout starts */
} sc_mixer_config_t;

typedef struct sc_mixer sc_mixer_t;

/** New mixer (NULL when the config is invalid, e.g. channels 3); the caller owns it. */
sc_mixer_t *sc_mixer_new(const sc_mixer_config_t *cfg);
/** Free the mixer and every speaker; no other call may be running on it. NULL-safe. */
void sc_mixer_free(sc_mixer_t *m);

/** Add a speaker slot (id chosen by caller, unique); want_mix_minus allocates its own encoder. Returns 0, or -1 when full (16) or id exists. Thread-safe. */
int sc_mixer_add_speaker(sc_mixer_t *m, uint32_t id, int want_mix_minus);
/** Remove a speaker; its audio is gone from the next tick. Thread-safe. */
void sc_mixer_remove_speaker(sc_mixer_t *m, uint32_t id);
/** Give one speaker its own jitter target and slack (ms; depth above target + slack never
 *  used for a second is cut), e.g. a smoothly paced RTP sender. 0 or -1. */
int sc_mixer_set_jitter(sc_mixer_t *m, uint32_t id, int target_ms, int slack_ms);
/** Mute or unmute; takes effect at the next tick. Thread-safe. */
void sc_mixer_set_muted(sc_mixer_t *m, uint32_t id, int muted);
/** Set up a new stream (e.g. a reconnect or a new Ogg logical stream): reset the speaker's decoder and jitter buffer. Thread-safe. */
void sc_mixer_reset_speaker(sc_mixer_t *m, uint32_t id);
/** Push one Opus packet from a network thread. seq < 0 means "no sequence numbers: next in order". Copies the bytes. Returns 0 or -1 (unknown id, packet too big, malformed TOC). */
int sc_mixer_push(sc_mixer_t *m, uint32_t id, int32_t seq, const uint8_t *opus, size_t len);

/** Push decoded audio for a speaker whose source the server decodes itself (Vorbis, FLAC, MP3,
 * AAC): `frames` 48 kHz frames of the mixer's channel count, interleaved; copied. From the first
 * call on, the speaker plays from this PCM (sc_mixer_push's packets are ignored) and is always
 * mixed, never forwarded. Thread-safe. 0, or -1 for an unknown id. */
int sc_mixer_push_pcm(sc_mixer_t *m, uint32_t id, const float *pcm, int frames);

typedef struct sc_mixer_frame {
    const uint8_t *mix;
    size_t mix_len;  /* the listener mix packet for this 20 ms, owned by the mixer until the next tick */
    float mix_peak;  /* largest absolute sample after the limiter (tests, metrics) */
    int speaking;    /* speakers heard in this frame */
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
    int buffered_ms; /* jitter buffer depth now */
} sc_mixer_speaker_state_t;

/** Snapshot of every speaker (for details JSON and metrics). Returns count. Thread-safe. */
size_t sc_mixer_speakers(sc_mixer_t *m, sc_mixer_speaker_state_t *out, size_t max);
/** Encoder pre-skip in 48 kHz samples (for the OpusHead of the live stream). */
int sc_mixer_preskip(const sc_mixer_t *m);
/** Optionally inject raw PCM (mono float 960 samples) as the "bed" for this tick instead of speakers: used for lobby/waiting audio generated in-process. NULL = none. Copied; consumed by the next tick. */
void sc_mixer_set_bed(sc_mixer_t *m, const float *pcm960);
/** Output channel count (1 or 2), for the OpusHead. */
int sc_mixer_channels(const sc_mixer_t *m);

#endif
