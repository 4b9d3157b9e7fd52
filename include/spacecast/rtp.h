/* rtp.h — RTP (RFC 3550) and RTCP headers for Opus over WebRTC (RFC 7587, rtcp-mux per
 * RFC 5761): parse a packet's fixed header, CSRCs, header extension and padding; tell RTCP
 * from RTP on a muxed port; write our 12-byte header; walk a compound RTCP packet; keep a
 * receiver's statistics (RFC 3550 A.1, A.3, A.8) and write receiver and sender reports.
 * The parsers read network input: they never read past n. */
#ifndef SC_RTP_H
#define SC_RTP_H

#include <stddef.h>
#include <stdint.h>

#define SC_RTP_HEADER 12

typedef struct sc_rtp_hdr {
    int marker;
    uint8_t pt;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    const uint8_t *payload; /* after CSRCs and the extension, before padding */
    size_t payload_len;
} sc_rtp_hdr_t;

/** Is this datagram RTP or RTCP by RFC 7983 (first byte 128..191)? */
int sc_rtp_is_rtp_or_rtcp(const uint8_t *p, size_t n);
/** RTCP rather than RTP on a muxed port (RFC 5761 §4: payload type 64..95 after the marker bit)? */
int sc_rtp_is_rtcp(const uint8_t *p, size_t n);
/** Parse an RTP packet. 0, or -1 (version not 2, too short for its CSRCs/extension, padding
 *  longer than the payload). */
int sc_rtp_parse(const uint8_t *p, size_t n, sc_rtp_hdr_t *out);
/** Write a 12-byte header (version 2, no CSRC, no extension). Returns 12. */
size_t sc_rtp_write_header(uint8_t *out, int marker, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc);

typedef struct sc_rtcp_block {
    uint32_t ssrc;          /* source this block is about */
    uint8_t fraction_lost;  /* fixed point /256 */
    int32_t cumulative_lost;/* 24-bit signed */
    uint32_t highest_seq;   /* extended */
    uint32_t jitter;        /* in timestamp units */
    uint32_t lsr, dlsr;
} sc_rtcp_block_t;

/** What a compound RTCP packet said (the parts we use). */
typedef struct sc_rtcp_info {
    int packets;            /* RTCP packets in the compound */
    int has_sr;
    uint32_t sr_ssrc;
    uint32_t sr_ntp_mid;    /* middle 32 bits of the NTP timestamp (for LSR) */
    uint32_t sr_rtp_ts;
    uint32_t sr_packets, sr_octets;
    int nblocks;
    sc_rtcp_block_t blocks[4]; /* the first report blocks of SR/RR */
    int bye;
} sc_rtcp_info_t;

/** Walk a compound RTCP packet. 0, or -1 if any packet's version or length is wrong. */
int sc_rtcp_parse(const uint8_t *p, size_t n, sc_rtcp_info_t *out);

/** A receiver's view of one source (RFC 3550 A.1/A.3/A.8). */
typedef struct sc_rtp_rx {
    int started;
    uint16_t max_seq;
    uint32_t cycles;        /* seq wraps, counted in units of 65536 (A.1's "shifted count") */
    uint32_t base_seq;
    uint32_t bad_seq;       /* A.1: the seq after a large jump; the next one resyncs */
    uint32_t received, expected_prior, received_prior;
    uint32_t transit;       /* for jitter */
    double jitter;
    uint32_t last_sr;       /* middle NTP bits of the last SR, and when it came (ms) */
    uint64_t last_sr_ms;
} sc_rtp_rx_t;

/** Count one packet: seq, its RTP timestamp, arrival in RTP units (48 kHz clock). */
void sc_rtp_rx_update(sc_rtp_rx_t *rx, uint16_t seq, uint32_t ts, uint32_t arrival_ts);
/** Note an SR from this source: the middle 32 bits of its NTP time, and when it came. */
void sc_rtp_rx_sr(sc_rtp_rx_t *rx, uint32_t ntp_mid, uint64_t now_ms);
/** Fill a report block for ssrc as of now_ms (advances the "prior" counters). */
void sc_rtp_rx_block(sc_rtp_rx_t *rx, uint32_t ssrc, uint64_t now_ms, sc_rtcp_block_t *out);
/** Write an RR (one block, or none if blk is NULL). Length, or 0 if cap is too small. */
size_t sc_rtcp_write_rr(uint8_t *out, size_t cap, uint32_t ssrc, const sc_rtcp_block_t *blk);
/** Write an SR without blocks. Length, or 0. */
size_t sc_rtcp_write_sr(uint8_t *out, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t packets,
                        uint32_t octets);

#endif
