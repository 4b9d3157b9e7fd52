/* wav.h — a strict reader for the WAV files `spacecast speak` publishes: PCM 16/24-bit or
 * float32, mono or stereo, at a rate Opus takes as it is (8, 12, 16, 24 or 48 kHz). */
#ifndef SC_WAV_H
#define SC_WAV_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_wav_info {
    int format;          /* 1 PCM, 3 float */
    int channels;
    int rate;
    int bits;
    uint64_t data_off;   /* where the samples start */
    uint64_t data_len;   /* bytes of samples */
} sc_wav_info_t;

/** Parse a RIFF/WAVE header from the first bytes of a file (untrusted; fuzzed). 0 or -1 with *why. */
int sc_wav_parse(const uint8_t *p, size_t len, sc_wav_info_t *out, const char **why);

typedef struct sc_wav sc_wav_t;
/** Open a WAV file; NULL with a message on stderr if it is not one we can publish. */
sc_wav_t *sc_wav_open(const char *path);
int sc_wav_rate(const sc_wav_t *w);
/** Read up to n frames downmixed to mono floats; returns frames read (0 at the end). */
int sc_wav_read_mono(sc_wav_t *w, float *out, int n);
/** Back to the first sample (for --loop). */
void sc_wav_rewind(sc_wav_t *w);
void sc_wav_close(sc_wav_t *w);

#endif
