/* rtc.h — the WebRTC media plane for speakers: WHIP ingest (RFC 9725) and WHEP playback of
 * the speaker's mix-minus, as an ICE-lite endpoint with DTLS-SRTP and Opus RTP.
 *
 * One UDP socket and one thread of its own (so a listener flood on the HTTP workers cannot
 * delay a conversation) carry every session; datagrams are told apart by their first byte
 * (RFC 7983: STUN, DTLS, RTP/RTCP), STUN by its USERNAME, the rest by the peer address ICE
 * selected. Sessions are made by the HTTP handlers (api/api_whip.c) and from then on live on the
 * media thread. Protocol and limits: docs/webrtc.md. */
#ifndef SC_RTC_H
#define SC_RTC_H

#include <stdint.h>

#include "spacecast/config.h"
#include "spacecast/sdp.h"
#include "spacecast/space.h"
#include "spacecast/token.h"

#define SC_RTC_ID_LEN 32 /* hex characters of a session id (128 random bits): its Location */

typedef enum sc_rtc_kind { SC_RTC_WHIP = 0, SC_RTC_WHEP } sc_rtc_kind_t;

/** Reasons a datagram or a session was refused (metrics: spacecast_rtc_rejected_total). */
typedef enum sc_rtc_reject {
    SC_RTC_REJ_BAD_SDP = 0,
    SC_RTC_REJ_FULL,
    SC_RTC_REJ_STUN_MALFORMED,
    SC_RTC_REJ_STUN_UNKNOWN_USER,
    SC_RTC_REJ_STUN_INTEGRITY,
    SC_RTC_REJ_DTLS_UNKNOWN_SOURCE,
    SC_RTC_REJ_DTLS_FAILED,
    SC_RTC_REJ_RTP_UNKNOWN_SOURCE,
    SC_RTC_REJ_RTP_BEFORE_DTLS,
    SC_RTC_REJ_SRTP_AUTH,
    SC_RTC_REJ_RTP_MALFORMED,
    SC_RTC_REJ_RTP_PAYLOAD_TYPE,
    SC_RTC_REJ_RTP_SSRC,
    SC_RTC_REJ_UNKNOWN_PROTOCOL,
    SC_RTC_REJ_N
} sc_rtc_reject_t;

typedef struct sc_rtc_stats {
    int sessions;             /* open now */
    int connected;            /* of which with SRTP up */
    uint64_t packets_in, packets_out;
    uint64_t red_recovered; /* WHIP packets filled from a RED copy */
    uint64_t rejected[SC_RTC_REJ_N];
} sc_rtc_stats_t;

/** Bind the UDP socket (cfg->rtc_listen, default the HTTP listen address) and start the media
 *  thread. 0, 1 if WebRTC is off (rtc_listen = "off"), -1 on failure. */
int sc_rtc_start(const sc_config_t *cfg);
/** Close every session (DTLS close_notify) and stop the thread. */
void sc_rtc_stop(void);
/** Is the media plane running? */
int sc_rtc_enabled(void);

/** A new session for speaker index of s (claims verified by the caller), from a parsed offer.
 *  Writes the SDP answer into answer and the session id into id. 0, or -1 with an HTTP status
 *  in *status (400 bad offer, 503 full) and a reason in *why. local_ip is the address the
 *  offer reached us at (the candidate when rtc_candidate is not set). */
int sc_rtc_session_create(sc_rtc_kind_t kind, sc_space_t *s, int index, const sc_token_claims_t *claims,
                          const sc_sdp_t *offer, const char *local_ip, char *answer, size_t answer_cap,
                          char id[SC_RTC_ID_LEN + 1], int *status, const char **why);
/** End a session (DELETE on its Location) if it belongs to this Space and speaker. 0, or -1 if
 *  there is no such session. */
int sc_rtc_session_delete(const sc_space_t *s, const char *speaker, sc_rtc_kind_t kind, const char *id);
/** Count a refusal made outside the media thread (bad SDP). */
void sc_rtc_count_reject(sc_rtc_reject_t why);
void sc_rtc_get_stats(sc_rtc_stats_t *out);
const char *sc_rtc_reject_name(sc_rtc_reject_t r);

#endif
