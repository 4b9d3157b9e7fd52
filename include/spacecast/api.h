/* api.h — the route handlers of src/api/ (one file per resource) and the route table that
 * names them (api/routes.c), which the composition root hands to the HTTP layer. */
#ifndef SC_API_H
#define SC_API_H

#include "spacecast/http.h"
#include "spacecast/space.h"
#include "spacecast/router.h"

/** The application's routes, in match order (api/routes.c). */
extern const sc_router_t sc_api_router;

/* api_spaces.c */
void sc_api_spaces_create(sc_req_t *r);
void sc_api_spaces_list(sc_req_t *r);
void sc_api_spaces_get(sc_req_t *r);
void sc_api_spaces_start(sc_req_t *r);
void sc_api_spaces_end(sc_req_t *r);
void sc_api_spaces_host_token(sc_req_t *r);
/* api_speakers.c */
void sc_api_speakers_invite(sc_req_t *r);
void sc_api_speakers_patch(sc_req_t *r);
void sc_api_speakers_delete(sc_req_t *r);
void sc_api_requests_create(sc_req_t *r);
void sc_api_requests_dismiss(sc_req_t *r);
/* api_events.c */
void sc_api_events(sc_req_t *r);
/** A token of s was revoked (speaker removed, host tokens reissued): close the host-view event
 *  streams opened with one, on every worker. */
void sc_api_events_revoked(sc_space_t *s);
/* api_metrics.c */
void sc_api_metrics(sc_req_t *r);
void sc_api_healthz(sc_req_t *r);
/* api_edges.c: an edge relay's report to its origin */
void sc_api_edges_report(sc_req_t *r);
/** May u (an edge's reported base URL) go into a Location header? http(s)://, under 256 bytes,
 *  no controls, spaces, quotes or other characters that could end or bend a header. 1 or 0. */
int sc_api_valid_base_url(const char *u);
/* api_live.c: GET live.ogg, the listener join */
void sc_api_live_get(sc_req_t *r);
/** Register the join counters with the metrics (once, at start). */
void sc_api_live_metrics_register(void);
/* api_replay.c */
void sc_api_replay_get(sc_req_t *r);
/* api_source.c: Icecast PUT/SOURCE ingest */
void sc_api_source_put(sc_req_t *r);
/* api_hls.c */
void sc_api_hls_get(sc_req_t *r);
/* api_speak.c: the WebSocket speaker link */
void sc_api_speak_get(sc_req_t *r);
/* api_reactions.c: listeners' emoji, rate-limited per address and per listener */
void sc_api_reactions_post(sc_req_t *r);
/** Make the rate limiters and register the reaction counters (once, at start). */
void sc_api_reactions_start(void);
/** A client's address as a rate-limit key (IPv4, or its IPv6 /64), keyed with salt. */
uint64_t sc_api_address_key(const sc_conn_t *c, uint64_t salt);
/* api_pin.c */
void sc_api_pin_put(sc_req_t *r);
void sc_api_pin_delete(sc_req_t *r);
/* api_timeline.c: chapter marks and chapters.json */
void sc_api_marks_post(sc_req_t *r);
void sc_api_chapters_get(sc_req_t *r);
/* api_clip.c */
void sc_api_clip_get(sc_req_t *r);
/* api_stats.c: the host's numbers */
void sc_api_stats_get(sc_req_t *r);
/* api_whip.c: WebRTC speakers (WHIP ingest, WHEP mix-minus) */
void sc_api_whip_post(sc_req_t *r);
void sc_api_whep_post(sc_req_t *r);
void sc_api_whip_delete(sc_req_t *r);
void sc_api_whep_delete(sc_req_t *r);
void sc_api_whip_patch(sc_req_t *r);
void sc_api_whip_options(sc_req_t *r);

#endif
