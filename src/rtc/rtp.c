/* rtp.c — RTP (RFC 3550) on a port shared with DTLS, STUN and RTCP: the demux tests of
 * RFC 7983 and RFC 5761, a bounds-checked header parser (CSRCs, extension, padding), a walk
 * over compound RTCP that keeps only what our reports need (the SR's NTP middle bits for LSR,
 * report blocks, BYE), and a receiver's statistics straight from RFC 3550's appendix A so
 * the numbers in our RRs mean what a sender expects them to mean. */
#include "spacecast/common.h"
#include "spacecast/rtp.h"

#include <string.h>

#define RTP_SEQ_MOD (1u << 16)
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100
#define RTCP_SR 200
#define RTCP_RR 201
#define RTCP_BYE 203
#define RTCP_BLOCK 24
#define RTCP_SR_LEN 28 /* header, SSRC, sender info */

/* --- RTP --------------------------------------------------------------------------------- */

int sc_rtp_is_rtp_or_rtcp(const uint8_t *p, size_t n) { return p && n >= 1 && p[0] >= 128 && p[0] <= 191; }

int sc_rtp_is_rtcp(const uint8_t *p, size_t n)
{
    if (!sc_rtp_is_rtp_or_rtcp(p, n) || n < 2)
        return 0;
    int pt = p[1] & 0x7F; /* RTCP types 192..223 read as marker + 64..95 */
    return pt >= 64 && pt <= 95;
}

int sc_rtp_parse(const uint8_t *p, size_t n, sc_rtp_hdr_t *out)
{
    memset(out, 0, sizeof *out);
    if (!p || n < SC_RTP_HEADER || p[0] >> 6 != 2)
        return -1;
    size_t off = SC_RTP_HEADER + 4 * (size_t)(p[0] & 0x0F);
    if (off > n)
        return -1;
    if (p[0] & 0x10) {
        if (n - off < 4)
            return -1;
        size_t ext = 4 * (size_t)sc_rd16(p + off + 2); /* in 32-bit words, after its own header */
        if (n - off - 4 < ext)
            return -1;
        off += 4 + ext;
    }
    size_t len = n - off;
    if (p[0] & 0x20) {
        /* the last byte counts the padding, itself included */
        if (len < 1 || p[n - 1] < 1 || p[n - 1] > len)
            return -1;
        len -= p[n - 1];
    }
    out->marker = p[1] >> 7;
    out->pt = p[1] & 0x7F;
    out->seq = sc_rd16(p + 2);
    out->ts = sc_rd32(p + 4);
    out->ssrc = sc_rd32(p + 8);
    out->payload = p + off;
    out->payload_len = len;
    return 0;
}

size_t sc_rtp_write_header(uint8_t *out, int marker, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc)
{
    out[0] = 0x80;
    out[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7F));
    sc_wr16(out + 2, seq);
    sc_wr32(out + 4, ts);
    sc_wr32(out + 8, ssrc);
    return SC_RTP_HEADER;
}

/* --- RTCP -------------------------------------------------------------------------------- */

static void parse_block(const uint8_t *b, sc_rtcp_block_t *o)
{
    o->ssrc = sc_rd32(b);
    o->fraction_lost = b[4];
    uint32_t lost = (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
    o->cumulative_lost = lost & 0x800000 ? (int32_t)lost - 0x1000000 : (int32_t)lost;
    o->highest_seq = sc_rd32(b + 8);
    o->jitter = sc_rd32(b + 12);
    o->lsr = sc_rd32(b + 16);
    o->dlsr = sc_rd32(b + 20);
}

/* The report blocks of one SR or RR: rc of them from b, inside the packet's length. */
static int parse_blocks(const uint8_t *b, size_t room, int rc, sc_rtcp_info_t *out)
{
    if ((size_t)rc * RTCP_BLOCK > room)
        return -1;
    for (int i = 0; i < rc; i++)
        if (out->nblocks < (int)(sizeof out->blocks / sizeof out->blocks[0]))
            parse_block(b + (size_t)i * RTCP_BLOCK, &out->blocks[out->nblocks++]);
    return 0;
}

/* One packet of a compound: p points at its header, len is its whole length. */
static int parse_one(const uint8_t *p, size_t len, sc_rtcp_info_t *out)
{
    int rc = p[0] & 0x1F;
    switch (p[1]) {
    case RTCP_SR:
        if (len < RTCP_SR_LEN)
            return -1;
        if (!out->has_sr) {
            out->has_sr = 1;
            out->sr_ssrc = sc_rd32(p + 4);
            out->sr_ntp_mid = sc_rd32(p + 10); /* low half of the seconds, high half of the fraction */
            out->sr_rtp_ts = sc_rd32(p + 16);
            out->sr_packets = sc_rd32(p + 20);
            out->sr_octets = sc_rd32(p + 24);
        }
        return parse_blocks(p + RTCP_SR_LEN, len - RTCP_SR_LEN, rc, out);
    case RTCP_RR:
        if (len < 8)
            return -1;
        return parse_blocks(p + 8, len - 8, rc, out);
    case RTCP_BYE:
        out->bye = 1;
        return 0;
    default:
        return 0; /* SDES, APP, feedback, XR: not ours to read */
    }
}

int sc_rtcp_parse(const uint8_t *p, size_t n, sc_rtcp_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (!p || n < 4)
        return -1;
    size_t off = 0;
    while (off < n) {
        if (n - off < 4 || p[off] >> 6 != 2)
            return -1;
        size_t len = 4 * ((size_t)sc_rd16(p + off + 2) + 1);
        if (len > n - off)
            return -1;
        if (parse_one(p + off, len, out) < 0)
            return -1;
        out->packets++;
        off += len;
    }
    return 0;
}

/* --- receiver statistics (RFC 3550 A.1, A.3, A.8) ----------------------------------------- */

static void init_seq(sc_rtp_rx_t *rx, uint16_t seq)
{
    rx->base_seq = seq;
    rx->max_seq = seq;
    rx->bad_seq = RTP_SEQ_MOD + 1; /* so seq == bad_seq is false */
    rx->cycles = 0;
    rx->received = 0;
    rx->received_prior = 0;
    rx->expected_prior = 0;
}

/* A.1's update_seq without probation (SRTP has already authenticated the source).
 * 1 if the packet counts, 0 if it is a stray after a large jump. */
static int update_seq(sc_rtp_rx_t *rx, uint16_t seq)
{
    uint16_t udelta = (uint16_t)(seq - rx->max_seq);
    if (udelta < MAX_DROPOUT) {
        if (seq < rx->max_seq)
            rx->cycles += RTP_SEQ_MOD; /* wrapped */
        rx->max_seq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
        /* a large jump: believe it only if the next packet continues from it (the sender
         * restarted), otherwise it is a stray and the old sequence goes on */
        if (seq == rx->bad_seq) {
            init_seq(rx, seq);
        } else {
            rx->bad_seq = (seq + 1u) & (RTP_SEQ_MOD - 1);
            return 0;
        }
    }
    /* else: a duplicate or a reordered packet, counted as A.1 does */
    rx->received++;
    return 1;
}

void sc_rtp_rx_update(sc_rtp_rx_t *rx, uint16_t seq, uint32_t ts, uint32_t arrival_ts)
{
    uint32_t transit = arrival_ts - ts;
    if (!rx->started) {
        rx->started = 1;
        init_seq(rx, seq);
        rx->received = 1;
        rx->transit = transit;
        return;
    }
    if (!update_seq(rx, seq))
        return;
    /* A.8: interarrival jitter, the difference of transit times smoothed by 1/16 */
    int32_t d = (int32_t)(transit - rx->transit);
    rx->transit = transit;
    double ad = d < 0 ? -(double)d : (double)d;
    rx->jitter += (ad - rx->jitter) / 16.0;
}

void sc_rtp_rx_sr(sc_rtp_rx_t *rx, uint32_t ntp_mid, uint64_t now_ms)
{
    rx->last_sr = ntp_mid;
    rx->last_sr_ms = now_ms;
}

void sc_rtp_rx_block(sc_rtp_rx_t *rx, uint32_t ssrc, uint64_t now_ms, sc_rtcp_block_t *out)
{
    memset(out, 0, sizeof *out);
    out->ssrc = ssrc;
    if (rx->started) {
        /* A.3 */
        uint32_t extended_max = rx->cycles + rx->max_seq;
        uint32_t expected = extended_max - rx->base_seq + 1;
        int64_t lost = (int64_t)expected - rx->received;
        if (lost > 0x7FFFFF)
            lost = 0x7FFFFF;
        if (lost < -0x800000)
            lost = -0x800000;
        uint32_t expected_interval = expected - rx->expected_prior;
        rx->expected_prior = expected;
        uint32_t received_interval = rx->received - rx->received_prior;
        rx->received_prior = rx->received;
        int64_t lost_interval = (int64_t)expected_interval - received_interval;
        if (expected_interval != 0 && lost_interval > 0)
            out->fraction_lost = (uint8_t)(((uint64_t)lost_interval << 8) / expected_interval);
        out->cumulative_lost = (int32_t)lost;
        out->highest_seq = extended_max;
        out->jitter = (uint32_t)rx->jitter;
    }
    /* LSR and DLSR (1/65536 s since that SR came); both 0 until an SR has come */
    if (rx->last_sr) {
        out->lsr = rx->last_sr;
        if (now_ms > rx->last_sr_ms) {
            uint64_t d = now_ms - rx->last_sr_ms;
            out->dlsr = d >= 65536000 ? UINT32_MAX : (uint32_t)(d * 65536 / 1000); /* over 18 h: saturate */
        }
    }
}

/* --- writing reports --------------------------------------------------------------------- */

static void write_block(uint8_t *b, const sc_rtcp_block_t *blk)
{
    sc_wr32(b, blk->ssrc);
    int32_t lost = blk->cumulative_lost;
    if (lost > 0x7FFFFF)
        lost = 0x7FFFFF;
    if (lost < -0x800000)
        lost = -0x800000;
    uint32_t l24 = (uint32_t)lost & 0xFFFFFF;
    b[4] = blk->fraction_lost;
    b[5] = (uint8_t)(l24 >> 16);
    b[6] = (uint8_t)(l24 >> 8);
    b[7] = (uint8_t)l24;
    sc_wr32(b + 8, blk->highest_seq);
    sc_wr32(b + 12, blk->jitter);
    sc_wr32(b + 16, blk->lsr);
    sc_wr32(b + 20, blk->dlsr);
}

/* The common header: version 2, no padding, count rc, type pt, length in words minus one. */
static void write_header(uint8_t *out, int rc, uint8_t pt, size_t len)
{
    out[0] = (uint8_t)(0x80 | rc);
    out[1] = pt;
    sc_wr16(out + 2, (uint16_t)(len / 4 - 1));
}

size_t sc_rtcp_write_rr(uint8_t *out, size_t cap, uint32_t ssrc, const sc_rtcp_block_t *blk)
{
    size_t len = 8 + (blk ? RTCP_BLOCK : 0);
    if (!out || cap < len)
        return 0;
    write_header(out, blk ? 1 : 0, RTCP_RR, len);
    sc_wr32(out + 4, ssrc);
    if (blk)
        write_block(out + 8, blk);
    return len;
}

size_t sc_rtcp_write_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t packets,
                        uint32_t octets)
{
    if (!out || cap < RTCP_SR_LEN)
        return 0;
    write_header(out, 0, RTCP_SR, RTCP_SR_LEN);
    sc_wr32(out + 4, ssrc);
    sc_wr32(out + 8, (uint32_t)(ntp >> 32));
    sc_wr32(out + 12, (uint32_t)ntp);
    sc_wr32(out + 16, rtp_ts);
    sc_wr32(out + 20, packets);
    sc_wr32(out + 24, octets);
    return RTCP_SR_LEN;
}
