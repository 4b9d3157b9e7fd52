/* api.h — route handlers (one file per resource in src/api/, audio routes in src/audio/). */
#ifndef SC_API_H
#define SC_API_H

#include "spacecast/http.h"

/* api/api_spaces.c */
void sc_api_spaces_create(sc_req_t *r);
void sc_api_spaces_list(sc_req_t *r);
void sc_api_spaces_get(sc_req_t *r);
void sc_api_spaces_start(sc_req_t *r);
void sc_api_spaces_end(sc_req_t *r);
void sc_api_spaces_host_token(sc_req_t *r);
/* api/api_speakers.c */
void sc_api_speakers_invite(sc_req_t *r);
void sc_api_speakers_patch(sc_req_t *r);
void sc_api_speakers_delete(sc_req_t *r);
void sc_api_requests_create(sc_req_t *r);
/* api/api_events.c */
void sc_api_events(sc_req_t *r);
/* api/api_metrics.c */
void sc_api_metrics(sc_req_t *r);
void sc_api_healthz(sc_req_t *r);
/* audio/live.c, audio/replay.c, audio/ingest.c */
void sc_live_handle_get(sc_req_t *r);
void sc_replay_handle_get(sc_req_t *r);
void sc_ingest_handle(sc_req_t *r);
/* audio/hls_http.c */
void sc_hls_handle_get(sc_req_t *r);
/* audio/ws_speak.c: the WebSocket speaker link */
void sc_ws_speak_handle(sc_req_t *r);
/* whip.c: WebRTC speakers (WHIP ingest, WHEP mix-minus) */
void sc_whip_post(sc_req_t *r);
void sc_whep_post(sc_req_t *r);
void sc_whip_delete(sc_req_t *r);
void sc_whep_delete(sc_req_t *r);
void sc_whip_patch(sc_req_t *r);
void sc_whip_options(sc_req_t *r);
/* http/static.c */
void sc_static_handle(sc_req_t *r);

#endif
