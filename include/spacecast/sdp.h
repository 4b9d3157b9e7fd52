/* sdp.h — just enough SDP (RFC 8866) for WHIP/WHEP audio: read an offer or an answer (ICE
 * credentials, DTLS fingerprint and setup role, the audio m-section's Opus payload type,
 * direction, rtcp-mux, BUNDLE, SSRC), and write the answer or offer of an ICE-lite,
 * BUNDLE-only, rtcp-mux-only Opus endpoint. Every other m-section of an offer is answered
 * rejected (port 0). The parser reads network input: bounded, no allocation, never trusts
 * a length. */
#ifndef SC_SDP_H
#define SC_SDP_H

#include <stddef.h>
#include <stdint.h>

#define SC_SDP_MAX_MEDIA 8
#define SC_SDP_MAX_BYTES 16384 /* longer offers are refused before parsing */

typedef enum sc_sdp_dir { SC_SDP_SENDRECV = 0, SC_SDP_SENDONLY, SC_SDP_RECVONLY, SC_SDP_INACTIVE } sc_sdp_dir_t;

typedef struct sc_sdp_media {
    char kind[16];   /* "audio", "video", "application" */
    char proto[32];  /* "UDP/TLS/RTP/SAVPF" */
    char mid[32];
    int port;        /* 0: rejected/disabled */
    int opus_pt;     /* payload type of opus/48000/2, -1 if none */
    int opus_fec;    /* its fmtp says useinbandfec=1 */
    int red_pt;      /* payload type of red/48000/2 carrying Opus (RFC 2198), -1 if none */
    sc_sdp_dir_t dir;
    int rtcp_mux;
    uint32_t ssrc;   /* first a=ssrc, 0 if none */
    char fmts[128];  /* the m= line's format list, verbatim (for rejecting it in the answer) */
} sc_sdp_media_t;

typedef struct sc_sdp {
    char ice_ufrag[257];  /* session level, or of the first media that has it */
    char ice_pwd[257];
    int ice_lite;
    char fp_alg[16];      /* "sha-256" */
    uint8_t fp[64];       /* the fingerprint's bytes */
    size_t fp_len;
    char setup[16];       /* "actpass", "active", "passive" */
    int bundle;           /* a=group:BUNDLE present */
    char cand_ip[64];     /* first host UDP candidate (answers from ICE-lite servers), "" if none */
    int cand_port;
    int nmedia;
    sc_sdp_media_t media[SC_SDP_MAX_MEDIA];
    int audio;            /* index of the first audio m-section with Opus, -1 if none */
} sc_sdp_t;

/** Parse an SDP. 0, or -1 with *why a static reason ("no ice-ufrag", "no opus", ...):
 *  missing v= line, a line over 4 KB, more than SC_SDP_MAX_MEDIA m-sections, no
 *  ICE credentials, no sha-256 fingerprint, no audio m-section with Opus. */
int sc_sdp_parse(const char *text, size_t len, sc_sdp_t *out, const char **why);

/** What our side puts in an answer or offer. */
typedef struct sc_sdp_local {
    const char *ice_ufrag, *ice_pwd;
    const char *fingerprint;   /* "AB:CD:..." of our certificate, sha-256 */
    const char *setup;         /* "passive" (server answers), "actpass" (client offers) */
    const char *cand_ip;       /* our one host candidate */
    int cand_port;
    sc_sdp_dir_t dir;          /* ours: RECVONLY for WHIP, SENDONLY for WHEP */
    uint32_t ssrc;             /* ours when we send, else 0 */
    uint64_t session_id;
    int ice_lite;
    int red;                   /* answer: take the offer's red/48000/2 (listed first); offer: offer it as PT 63 */
} sc_sdp_local_t;

/** Write the answer to offer: the offer's audio m-section (its Opus PT, useinbandfec=1,
 *  minptime=10, its RED PT first when local->red and it offered one, its mid, rtcp-mux, our
 *  direction), every other one rejected; BUNDLE of the audio mid. Length (excluding NUL), or
 *  -1 if cap is too small. */
int sc_sdp_write_answer(char *out, size_t cap, const sc_sdp_t *offer, const sc_sdp_local_t *local);
/** Write an offer of one audio m-section (mid "0", Opus PT 111, and RED PT 63 first when
 *  local->red) — our client's. */
int sc_sdp_write_offer(char *out, size_t cap, const sc_sdp_local_t *local);
/** "AB:CD:..." of len bytes (out holds 3*len). */
void sc_sdp_fp_hex(const uint8_t *fp, size_t len, char *out);

#endif
