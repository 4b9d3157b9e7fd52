/* red.h — RFC 2198 redundant audio for Opus over WebRTC ("red/48000/2", as Chromium, Janus and
 * LiveKit speak it): each RTP payload carries copies of the previous one or two Opus packets
 * before its own, so a burst of losses is filled from the packet after it. Split a RED payload
 * into its blocks, tell which blocks stand for which earlier packets, and build one from the
 * packets sent before. The parser reads network input: bounded, never reads past n, never
 * allocates. Design notes: docs/webrtc.md ("Redundancy"). */
#ifndef SC_RED_H
#define SC_RED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SC_RED_MAX_BLOCKS 16       /* a primary and up to 15 copies; NetEq clamps at 32 */
#define SC_RED_MAX_BLOCK_LEN 1023  /* a block's length has 10 bits */
#define SC_RED_MAX_OFFSET 16383    /* a block's timestamp offset has 14 bits (341 ms at 48 kHz) */
#define SC_RED_MAX_DEPTH 3         /* copies our sender may carry */

typedef struct sc_red_block {
    uint8_t pt;          /* the block's payload type (the Opus PT for every block we use) */
    uint32_t ts_offset;  /* how far before the RTP packet's timestamp it starts (0: the primary) */
    const uint8_t *data; /* inside the parsed payload */
    size_t len;
    int samples;         /* filled by the caller (the block's duration) for sc_red_usable */
} sc_red_block_t;

/** Split a RED payload p[0..n) into blocks, oldest first, the primary (offset 0) last.
 *  Returns the number of blocks (>= 1), or -1 when a header or a block runs past n or there
 *  are more than max (at most SC_RED_MAX_BLOCKS) blocks. */
int sc_red_parse(const uint8_t *p, size_t n, sc_red_block_t *out, int max);

/** How many redundant blocks, counted back from the primary, are copies of the packets just
 *  before it: block nblocks-1-i stands for sequence number seq-i (i = 1..result) while each
 *  one has payload type pt, a positive duration (samples, set by the caller) and an offset
 *  equal to the durations from it to the primary — a sender's packets back to back. A gap
 *  (Opus DTX) or a sender that skipped one ends the run: what is left cannot be placed. */
int sc_red_usable(const sc_red_block_t *b, int nblocks, uint8_t pt);

/** A RED sender: the last packets sent, for copies in the next ones. */
typedef struct sc_red_enc {
    int depth; /* copies per packet, 0..SC_RED_MAX_DEPTH */
    int n;     /* packets remembered, newest last */
    struct {
        uint32_t ts;
        size_t len;
        uint8_t data[SC_RED_MAX_BLOCK_LEN];
    } prev[SC_RED_MAX_DEPTH];
} sc_red_enc_t;

/** Start a sender with depth copies per packet (clamped to 0..SC_RED_MAX_DEPTH). */
void sc_red_enc_init(sc_red_enc_t *e, int depth);
/** The RED payload for the Opus packet opus[0..len) of payload type pt at RTP timestamp ts:
 *  the remembered packets that fit (offset and length fields, cap) as copies, then it; and
 *  remember it. Returns the payload's length, or -1 when even the packet alone does not fit. */
ssize_t sc_red_enc_packet(sc_red_enc_t *e, uint8_t pt, uint32_t ts, const uint8_t *opus, size_t len, uint8_t *out,
                          size_t cap);

#endif
