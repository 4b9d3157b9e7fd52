/* fuzz_opus_head.c — OpusHead parsing, OpusTags building and Opus TOC sample counts.
 * The TOC count is checked against libopus' own packet parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <opus.h>

#include "spacecast/common.h"
#include "spacecast/ogg.h"

static void check_head(const uint8_t *data, size_t size)
{
    sc_opus_head_t h, h2;
    if (sc_opus_head_parse(data, size, &h) != 0)
        return;
    if (h.version < 0 || h.version > 15 || h.channels < 1)
        __builtin_trap();
    if (h.mapping_family == 0 && h.channels > 2)
        __builtin_trap();
    if (h.mapping_family != 0)
        return;
    uint8_t again[SC_OPUS_HEAD_LEN];
    sc_opus_head_build(again, h.channels, h.pre_skip, h.input_rate);
    if (sc_opus_head_parse(again, sizeof(again), &h2) != 0 || h2.channels != h.channels ||
        h2.pre_skip != h.pre_skip || h2.input_rate != h.input_rate || h2.gain != 0)
        __builtin_trap();
}

static void check_toc(const uint8_t *data, size_t size)
{
    if (size > 100000)
        return;
    int ours = sc_opus_packet_samples(data, size);
    const unsigned char *frames[48];
    opus_int16 sizes[48];
    int nf = opus_packet_parse(data, (opus_int32)size, NULL, frames, sizes, NULL);
    int theirs = nf < 0 ? -1 : nf * opus_packet_get_samples_per_frame(data, 48000);
    if (ours != theirs)
        __builtin_trap();
}

/* The input split at NULs: vendor, then comments; built exactly, refused one byte short. */
static void check_tags(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    const char *parts[16];
    size_t n = 0, want = 16;
    for (size_t i = 0; i <= size && n < SC_ARRAY_LEN(parts); i += strlen(s + i) + 1) {
        parts[n++] = s + i;
        want += 4 + strlen(s + i);
    }
    want -= 4; /* the vendor has a length word too, counted in the 16 */
    uint8_t *out = malloc(want);
    if (sc_opus_tags_build(out, want, parts[0], parts + 1, n - 1) != (ssize_t)want)
        __builtin_trap();
    if (memcmp(out, "OpusTags", 8) != 0 || sc_opus_tags_build(out, want - 1, parts[0], parts + 1, n - 1) != -1)
        __builtin_trap();
    free(out);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_head(data, size);
    check_toc(data, size);
    if (size < 4096)
        check_tags(data, size);
    return 0;
}
