/* fuzz_decoder.c — the non-Opus source decoders (audio/decoder.c) on arbitrary input: the first
 * byte picks the codec; MP3 and AAC get the rest as a raw stream in pieces, Vorbis and FLAC as
 * packets (each prefixed by a 2-byte length), the way the Ogg reader hands them. Every piece is
 * its own exactly sized allocation so ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/decoder.h"

static void on_pcm(void *ctx, const float *pcm, int frames)
{
    int *channels = ctx;
    if (frames <= 0)
        __builtin_trap();
    volatile float sink = 0;
    for (int i = 0; i < frames * *channels; i++)
        sink += pcm[i]; /* every sample written must be readable */
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const sc_codec_t codecs[] = { SC_CODEC_VORBIS, SC_CODEC_FLAC, SC_CODEC_MP3, SC_CODEC_AAC };
    sc_codec_t codec = codecs[data[0] & 3];
    int channels = (data[0] & 4) ? 2 : 1;
    sc_decoder_t *d = sc_decoder_new(codec, channels, on_pcm, &channels);
    if (!d)
        return 0;
    data++, size--;
    while (size > 0) {
        size_t n;
        if (codec == SC_CODEC_MP3 || codec == SC_CODEC_AAC) {
            n = size < 1 ? size : 1 + data[0] * 16u;
            data++, size--;
        } else {
            if (size < 2)
                break;
            n = (size_t)data[0] << 8 | data[1];
            data += 2, size -= 2;
        }
        if (n > size)
            n = size;
        uint8_t *piece = malloc(n ? n : 1);
        memcpy(piece, data, n);
        int rc = codec == SC_CODEC_MP3 || codec == SC_CODEC_AAC ? sc_decoder_feed(d, piece, n)
                                                                : sc_decoder_packet(d, piece, n);
        free(piece);
        data += n, size -= n;
        if (rc < 0 && !sc_decoder_error(d))
            __builtin_trap(); /* a failure always says why */
        if (rc < 0)
            break;
    }
    sc_decoder_free(d);
    return 0;
}
