/* fuzz_ogg_reader.c — the Ogg/Opus reader on arbitrary bytes, split at arbitrary points.
 *
 * Each input runs twice: as is (CRC failures, garbage) and with the CRC of every
 * plausible page fixed up, so mutations reach the stream logic behind the CRC check.
 * Every chunk is fed from its own exactly sized allocation so ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>

#include "spacecast/common.h"
#include "spacecast/ogg.h"

static int on_packet(void *ctx, const uint8_t *p, size_t len, int samples)
{
    uint32_t *sum = ctx;
    if (len == 0 || len > SC_OGG_MAX_PACKET || samples < 120 || samples > 5760)
        __builtin_trap();
    if (sc_opus_packet_samples(p, len) != samples)
        __builtin_trap();
    for (size_t i = 0; i < len; i++)
        *sum = *sum * 31 + p[i];
    return len == 3 && p[1] == 0xee; /* sometimes stop, to run that path too */
}

/* Vorbis/FLAC streams (what the Icecast source accepts): every packet within the limit */
static int on_other(void *ctx, int codec, const uint8_t *p, size_t len)
{
    uint32_t *sum = ctx;
    if (len > SC_OGG_MAX_OTHER_PACKET || (codec != SC_OGG_VORBIS && codec != SC_OGG_FLAC))
        __builtin_trap();
    for (size_t i = 0; i < len; i++)
        *sum = *sum * 31 + p[i];
    return 0;
}

static void fix_crcs(uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i + SC_OGG_HEADER_MIN <= n) {
        if (memcmp(p + i, "OggS", 4) != 0 || i + SC_OGG_HEADER_MIN + p[i + 26] > n) {
            i++;
            continue;
        }
        size_t hl = SC_OGG_HEADER_MIN + p[i + 26], bl = 0;
        for (size_t k = 0; k < p[i + 26]; k++)
            bl += p[i + SC_OGG_HEADER_MIN + k];
        if (i + hl + bl > n) {
            i++;
            continue;
        }
        ogg_page og = { p + i, (long)hl, p + i + hl, (long)bl };
        ogg_page_checksum_set(&og);
        i += hl + bl;
    }
}

static void run(const uint8_t *data, size_t size, uint64_t seed)
{
    uint32_t sum = 0;
    sc_ogg_reader_t *r = sc_ogg_reader_new(on_packet, &sum);
    if (seed & 1) /* half the runs as the Icecast source reads: Vorbis and FLAC too */
        sc_ogg_reader_accept_other(r, on_other);
    int failed = 0;
    for (size_t off = 0; off < size;) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t x = (uint32_t)(seed >> 33);
        size_t n = (x & 1) ? 1 + (x >> 1) % 8 : 1 + (x >> 1) % 4096;
        n = SC_MIN(n, size - off);
        uint8_t *chunk = malloc(n);
        memcpy(chunk, data + off, n);
        int rc = sc_ogg_reader_feed(r, chunk, n);
        free(chunk);
        off += n;
        if (failed && rc != -1)
            __builtin_trap(); /* errors are sticky */
        if (rc != SC_OK) {
            if (rc != -1 || !sc_ogg_reader_error(r))
                __builtin_trap();
            failed = 1;
        }
    }
    const sc_opus_head_t *h = sc_ogg_reader_head(r);
    if (h && (h->channels < 1 || h->channels > 2 || h->mapping_family != 0))
        __builtin_trap();
    sc_ogg_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = 14695981039346656037ULL; /* FNV-1a of the input picks the split */
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 1099511628211ULL;
    run(data, size, seed);

    uint8_t *fixed = malloc(size ? size : 1);
    memcpy(fixed, data, size);
    fix_crcs(fixed, size);
    if (memcmp(fixed, data, size) != 0)
        run(fixed, size, seed);
    free(fixed);
    return 0;
}
