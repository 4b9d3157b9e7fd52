/* fuzz_red.c — the RFC 2198 parser on an arbitrary RTP payload: an accepted payload has 1..16
 * blocks, each inside the input, the primary last with offset 0, headers and blocks adding up
 * to the whole; the copies it would place never exceed the blocks; and our sender, given the
 * blocks as packets in order, writes payloads the parser reads back block for block. Exactly
 * sized heap copy for ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/red.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    sc_red_block_t b[SC_RED_MAX_BLOCKS];
    int n = sc_red_parse(p, size, b, SC_RED_MAX_BLOCKS);
    if (n == 0 || n > SC_RED_MAX_BLOCKS)
        __builtin_trap();
    if (n > 0) {
        const uint8_t *at = p + 4 * (size_t)(n - 1) + 1; /* the blocks follow the headers, in order */
        for (int i = 0; i < n; i++) {
            if (b[i].data != at || b[i].len > (size_t)(p + size - at))
                __builtin_trap();
            if ((p[4 * i] & 0x80) != (i < n - 1 ? 0x80 : 0) || (i == n - 1 && b[i].ts_offset != 0))
                __builtin_trap();
            if ((i < n - 1 && b[i].len > SC_RED_MAX_BLOCK_LEN) || b[i].ts_offset > SC_RED_MAX_OFFSET)
                __builtin_trap();
            at += b[i].len;
            b[i].samples = 960 * (1 + (int)(b[i].len & 1)); /* 20 or 40 ms, to walk the offsets */
        }
        size_t total = (size_t)(at - p);
        if (total != size)
            __builtin_trap();
        int k = sc_red_usable(b, n, b[n - 1].pt);
        if (k < 0 || k > n - 1)
            __builtin_trap();
        /* the blocks, sent in order by our sender, read back the same */
        sc_red_enc_t e;
        sc_red_enc_init(&e, size % (SC_RED_MAX_DEPTH + 1));
        uint8_t out[1200];
        for (int i = 0; i < n; i++) {
            ssize_t w = sc_red_enc_packet(&e, b[i].pt, 960u * (uint32_t)i, b[i].data, b[i].len, out, sizeof out);
            if (w < 0) {
                if (b[i].len + 1 <= sizeof out)
                    __builtin_trap();
                continue;
            }
            sc_red_block_t r[SC_RED_MAX_BLOCKS];
            int m = sc_red_parse(out, (size_t)w, r, SC_RED_MAX_BLOCKS);
            if (m < 1 || m > e.depth + 1 || r[m - 1].len != b[i].len || memcmp(r[m - 1].data, b[i].data, b[i].len))
                __builtin_trap();
        }
    }
    free(p);
    return 0;
}
