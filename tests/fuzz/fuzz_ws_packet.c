/* fuzz_ws_packet.c — the speaker link's 8-byte packet header parser (sc_ws_pkt_parse) on
 * arbitrary binary messages: accepted ones have 1..1275 Opus bytes inside the message, no
 * reserved flag bit, and rebuild to the same header; rejected ones really break a rule.
 * The message is an exactly sized heap copy, so ASan sees any over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/websocket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *msg = malloc(size ? size : 1);
    memcpy(msg, data, size);
    sc_ws_pkt_t p;
    int rc = sc_ws_pkt_parse(msg, size, &p);
    int valid = size >= SC_WS_PKT_HEADER + 1 && size <= SC_WS_PKT_HEADER + SC_WS_PKT_MAX_OPUS &&
                ((data[2] << 8 | data[3]) & ~SC_WS_PKT_FEC) == 0;
    if ((rc == 0) != valid)
        __builtin_trap();
    if (rc == 0) {
        if (p.opus != msg + SC_WS_PKT_HEADER || p.opus_len != size - SC_WS_PKT_HEADER)
            __builtin_trap();
        if (p.opus_len < 1 || p.opus_len > SC_WS_PKT_MAX_OPUS || (p.flags & ~SC_WS_PKT_FEC))
            __builtin_trap();
        uint8_t hdr[SC_WS_PKT_HEADER];
        sc_ws_pkt_header(hdr, p.seq, p.flags, p.timestamp);
        if (memcmp(hdr, data, SC_WS_PKT_HEADER) != 0)
            __builtin_trap();
    }
    free(msg);
    return 0;
}
