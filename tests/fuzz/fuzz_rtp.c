/* fuzz_rtp.c — the RTP header parser and the compound RTCP walk on the same arbitrary
 * datagram (as a muxed port would see it): an accepted RTP packet's payload lies inside it
 * after the 12-byte header and rebuilds to the same fixed header; an accepted RTCP compound
 * has at least one packet and at most 4 stored blocks; the demux tests agree with each other.
 * The datagram's bytes also drive a receiver's statistics (RFC 3550 A.1/A.3/A.8) to let
 * UBSan look at the sequence and jitter arithmetic. Exactly sized heap copy for ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/rtp.h"

static void check_rtp(const uint8_t *pkt, size_t size)
{
    sc_rtp_hdr_t h;
    if (sc_rtp_parse(pkt, size, &h) != 0)
        return;
    if (size < SC_RTP_HEADER || pkt[0] >> 6 != 2)
        __builtin_trap();
    if (h.payload < pkt + SC_RTP_HEADER || h.payload > pkt + size || h.payload_len > (size_t)(pkt + size - h.payload))
        __builtin_trap();
    uint8_t hdr[SC_RTP_HEADER];
    sc_rtp_write_header(hdr, h.marker, h.pt, h.seq, h.ts, h.ssrc);
    if (memcmp(hdr + 1, pkt + 1, SC_RTP_HEADER - 1) != 0)
        __builtin_trap();
}

static void check_rtcp(const uint8_t *pkt, size_t size)
{
    sc_rtcp_info_t info;
    if (sc_rtcp_parse(pkt, size, &info) != 0)
        return;
    if (size < 4 || size % 4 || info.packets < 1 || (size_t)info.packets > size / 4 || info.nblocks < 0 ||
        info.nblocks > 4)
        __builtin_trap();
}

/* Two bytes of seq and two of jitter per packet; a report every 16. */
static void drive_stats(const uint8_t *p, size_t size)
{
    sc_rtp_rx_t rx;
    memset(&rx, 0, sizeof rx);
    sc_rtcp_block_t b;
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint16_t seq = (uint16_t)(p[i] << 8 | p[i + 1]);
        uint32_t ts = (uint32_t)(i / 4) * 960;
        sc_rtp_rx_update(&rx, seq, ts, ts + (uint32_t)(p[i + 2] << 8 | p[i + 3]) * 4099u);
        if (i % 64 == 60)
            sc_rtp_rx_block(&rx, 1, i, &b);
        if (i % 256 == 128)
            sc_rtp_rx_sr(&rx, (uint32_t)i, i / 2);
    }
    sc_rtp_rx_block(&rx, 1, size, &b);
    uint8_t rr[64];
    size_t n = sc_rtcp_write_rr(rr, sizeof rr, 2, &b);
    sc_rtcp_info_t info;
    if (n != 32 || sc_rtcp_parse(rr, n, &info) != 0 || info.nblocks != 1 ||
        info.blocks[0].fraction_lost != b.fraction_lost || info.blocks[0].highest_seq != b.highest_seq)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *pkt = malloc(size ? size : 1);
    memcpy(pkt, data, size);
    if (sc_rtp_is_rtcp(pkt, size) && !sc_rtp_is_rtp_or_rtcp(pkt, size))
        __builtin_trap();
    check_rtp(pkt, size);
    check_rtcp(pkt, size);
    drive_stats(pkt, size);
    free(pkt);
    return 0;
}
