/* api_whip.c — the HTTP side of WebRTC: WHIP (RFC 9725) `POST /spaces/{id}/whip` and WHEP
 * `POST /spaces/{id}/whep` with the speaker's token as Bearer, an SDP offer in and the answer
 * out (201, Location of the session, ETag); DELETE on the Location ends it; OPTIONS answers
 * CORS preflights; PATCH (trickle ICE, ICE restart) is 501: an ICE-lite server learns the
 * browser's address from its connectivity checks, so it needs no candidates from it.
 * The media itself is rtc.c's. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/addr.h"
#include "spacecast/log.h"
#include "spacecast/rtc.h"
#include "spacecast/sdp.h"

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#define SC_WHIP_CORS                                                                                                  \
    "Access-Control-Allow-Origin: *\r\n"                                                                              \
    "Access-Control-Expose-Headers: Location, ETag, Accept-Patch\r\n"
#define SC_WHIP_ANSWER_MAX 8192

/* The address this request reached us at: the candidate when none is configured, so a
 * server listening on a wildcard still announces an address the client can reach. */
static void local_ip_of(const sc_req_t *r, char *out, size_t n)
{
    struct sockaddr_in6 a;
    socklen_t al = sizeof a;
    snprintf(out, n, "127.0.0.1");
    if (getsockname(r->conn->io.fd, (struct sockaddr *)&a, &al) == 0 && a.sin6_family == AF_INET6)
        sc_addr_str(&a.sin6_addr, out, n);
}

static void rtc_post(sc_req_t *r, sc_rtc_kind_t kind)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    sc_token_claims_t claims;
    if (sc_api_auth(r, s, SC_ROLE_SPEAKER, &claims) != 0)
        return;
    if (s->state == SC_SPACE_ENDED) {
        sc_http_error(r, 409, "ended", "this Space has ended");
        return;
    }
    if (!sc_rtc_enabled()) {
        sc_http_error_retry(r, 503, "webrtc_off", "WebRTC is off on this server; use the WebSocket link", 60, NULL);
        return;
    }
    const sc_slice_t *ct = sc_http_find_header(r->http, "Content-Type");
    if (!ct || !(ct->len >= 15 && sc_slice_eq_nocase(sc_slice(ct->base, 15), "application/sdp"))) {
        sc_http_error(r, 415, "unsupported_media_type", "the offer must be Content-Type: application/sdp");
        return;
    }
    sc_sdp_t offer;
    const char *why = NULL;
    if (r->body.len > SC_SDP_MAX_BYTES || sc_sdp_parse(r->body.base, r->body.len, &offer, &why) != 0) {
        sc_rtc_count_reject(SC_RTC_REJ_BAD_SDP);
        char msg[160];
        snprintf(msg, sizeof msg, "bad SDP offer: %s", why ? why : "too large");
        sc_http_error(r, 400, "bad_sdp", msg);
        return;
    }
    pthread_mutex_lock(&s->mu);
    int idx = sc_space_speaker_index(s, &claims);
    pthread_mutex_unlock(&s->mu);
    if (idx < 0) {
        sc_http_error(r, 401, "unauthorized", "token revoked");
        return;
    }
    char local_ip[INET6_ADDRSTRLEN];
    local_ip_of(r, local_ip, sizeof local_ip);
    char *answer = sc_malloc(SC_WHIP_ANSWER_MAX);
    char id[SC_RTC_ID_LEN + 1];
    int status = 0;
    if (sc_rtc_session_create(kind, s, idx, &claims, &offer, local_ip, answer, SC_WHIP_ANSWER_MAX, id, &status,
                              &why) != 0) {
        if (status == 503)
            sc_http_error_retry(r, 503, "full", why, 5, NULL);
        else
            sc_http_error(r, status, status == 400 ? "bad_sdp" : "internal", why);
        free(answer);
        return;
    }
    const char *k = kind == SC_RTC_WHIP ? "whip" : "whep";
    char hdr[512];
    snprintf(hdr, sizeof hdr, "Location: /spaces/%s/%s/%s\r\nETag: \"%s\"\r\nCache-Control: no-store\r\n" SC_WHIP_CORS,
             s->id, k, id, id);
    sc_http_respond(r, 201, "application/sdp", answer, strlen(answer), hdr);
    free(answer);
}

void sc_api_whip_post(sc_req_t *r) { rtc_post(r, SC_RTC_WHIP); }
void sc_api_whep_post(sc_req_t *r) { rtc_post(r, SC_RTC_WHEP); }

/* DELETE /spaces/{id}/whip/{session}: the same speaker's token ends it. */
static void rtc_delete(sc_req_t *r, sc_rtc_kind_t kind)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    sc_token_claims_t claims;
    if (sc_api_auth(r, s, SC_ROLE_SPEAKER, &claims) != 0)
        return;
    char id[SC_RTC_ID_LEN + 1];
    if (r->args[1].len != SC_RTC_ID_LEN) {
        sc_http_error(r, 404, "not_found", "no such session");
        return;
    }
    memcpy(id, r->args[1].base, SC_RTC_ID_LEN);
    id[SC_RTC_ID_LEN] = '\0';
    if (sc_rtc_session_delete(s, claims.name, kind, id) != 0) {
        sc_http_error(r, 404, "not_found", "no such session");
        return;
    }
    sc_http_respond(r, 200, NULL, NULL, 0, SC_WHIP_CORS);
}

void sc_api_whip_delete(sc_req_t *r) { rtc_delete(r, SC_RTC_WHIP); }
void sc_api_whep_delete(sc_req_t *r) { rtc_delete(r, SC_RTC_WHEP); }

void sc_api_whip_patch(sc_req_t *r)
{
    sc_http_error(r, 501, "not_implemented",
                  "trickle ICE and ICE restarts are not supported: the server is ICE-lite; make a new session");
}

void sc_api_whip_options(sc_req_t *r)
{
    sc_http_respond(r, 204, NULL, NULL, 0,
                    SC_WHIP_CORS "Access-Control-Allow-Methods: POST, DELETE, PATCH, OPTIONS\r\n"
                                 "Access-Control-Allow-Headers: Authorization, Content-Type, If-Match\r\n"
                                 "Access-Control-Max-Age: 86400\r\n");
}
