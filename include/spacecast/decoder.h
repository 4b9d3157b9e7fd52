/* decoder.h — sources in codecs other than Opus, decoded with libavcodec into 48 kHz float PCM
 * for the mixer (sc_mixer_push_pcm): Vorbis and FLAC carried in Ogg (packets from the Ogg
 * reader, headers first), MP3 and AAC (ADTS) as raw byte streams framed by libavcodec's parsers.
 * Untrusted input: every failure is an error string, never a crash (fuzz_decoder). */
#ifndef SC_DECODER_H
#define SC_DECODER_H

#include <stddef.h>
#include <stdint.h>

typedef enum sc_codec {
    SC_CODEC_NONE = 0,
    SC_CODEC_OPUS,   /* not decoded here: Opus packets go to the speaker's jitter buffer */
    SC_CODEC_VORBIS, /* Ogg packets */
    SC_CODEC_FLAC,   /* Ogg packets (RFC-less Ogg FLAC mapping 1.0) */
    SC_CODEC_MP3,    /* raw MPEG audio frames (ID3 tags skipped) */
    SC_CODEC_AAC,    /* raw ADTS frames */
} sc_codec_t;

#define SC_DECODER_MAX_HEADER 65536  /* largest codec header packet accepted (Vorbis setup) */
#define SC_DECODER_MAX_UNFRAMED 65536 /* raw bytes with no frame found in them: not that codec */

/** Decoded audio: `frames` 48 kHz frames of the decoder's channel count, interleaved; valid
 *  during the call only. */
typedef void (*sc_decoder_pcm_cb)(void *ctx, const float *pcm, int frames);

typedef struct sc_decoder sc_decoder_t;

/** A decoder for one codec producing `channels` (1 or 2) at 48 kHz; NULL if libavcodec lacks it. */
sc_decoder_t *sc_decoder_new(sc_codec_t codec, int channels, sc_decoder_pcm_cb cb, void *ctx);
/** Ogg codecs: one packet, the codec headers first (a new identification header starts a new
 *  stream: a chained Ogg link). 0, or -1 with sc_decoder_error set (then always -1). */
int sc_decoder_packet(sc_decoder_t *d, const uint8_t *pkt, size_t len);
/** MP3/AAC: bytes of the elementary stream, any split. 0, or -1 with sc_decoder_error set. */
int sc_decoder_feed(sc_decoder_t *d, const uint8_t *data, size_t len);
/** Why it failed (static string), or NULL. */
const char *sc_decoder_error(const sc_decoder_t *d);
/** The codec's name for logs ("vorbis", "mp3"...). */
const char *sc_codec_name(sc_codec_t codec);
/** Free (NULL-safe). */
void sc_decoder_free(sc_decoder_t *d);

/** What the first bytes of a source are: "OggS" -> SC_CODEC_OPUS (Ogg, the reader tells which
 *  codec), an ID3 tag or an MPEG audio sync -> SC_CODEC_MP3, an ADTS sync -> SC_CODEC_AAC;
 *  SC_CODEC_NONE if it cannot tell (yet: fewer than 4 bytes also say NONE). */
sc_codec_t sc_codec_sniff(const uint8_t *p, size_t len);

#endif
