/* pcmbuf.h — a speaker's decoded audio waiting for the mix: 48 kHz float samples from a source
 * the server decodes itself (Vorbis, FLAC, MP3, AAC), bounded by duration.
 *
 * A network thread pushes whatever a decoder produced (TCP sources come in lumps: a page or a
 * burst at a time); the mixer's tick pulls one frame every 20 ms. Playout starts when the depth
 * reaches the target; an underrun goes back to buffering with a target twice as deep (up to
 * SC_PCMBUF_MAX_TARGET), so a source that sends a page a second settles without stutter. */
#ifndef SC_PCMBUF_H
#define SC_PCMBUF_H

#define SC_PCMBUF_SECONDS 4           /* capacity: a 1 s Ogg page arriving late, twice, and more */
#define SC_PCMBUF_TARGET_MS 100       /* first playout depth */
#define SC_PCMBUF_MAX_TARGET_MS 1500  /* deepest target an underrun may grow it to */
#define SC_PCMBUF_SLACK_MS 500        /* depth above target never used for 2 s is dropped */

typedef struct sc_pcmbuf sc_pcmbuf_t;

/** New empty buffer of `channels` interleaved channels at 48 kHz; the caller owns it. */
sc_pcmbuf_t *sc_pcmbuf_new(int channels);
/** Free it (NULL-safe). */
void sc_pcmbuf_free(sc_pcmbuf_t *b);
/** Append frames (thread-safe; copies). When full, the oldest samples go (counted). */
void sc_pcmbuf_push(sc_pcmbuf_t *b, const float *pcm, int frames);
/** Take up to `frames` frames into out, zero-padding what is missing (mixer thread). Returns the
 *  frames that were real audio: 0 while buffering or absent. */
int sc_pcmbuf_pull(sc_pcmbuf_t *b, float *out, int frames);
/** Depth in frames, and samples dropped so far (thread-safe). */
int sc_pcmbuf_depth(sc_pcmbuf_t *b, unsigned long long *dropped);

#endif
