/* api_util.h — small helpers shared by the API handlers: JSON bodies and Space lookup. */
#ifndef SC_API_UTIL_H
#define SC_API_UTIL_H

#include <jansson.h>

#include "spacecast/http.h"
#include "spacecast/space.h"

/** Parse the request body as a JSON object; on failure answers 400 and returns NULL. */
json_t *sc_api_body_object(sc_req_t *r);
/** The Space named by the first path capture; on failure answers 404 and returns NULL. */
sc_space_t *sc_api_space(sc_req_t *r);
/** Parse a time given as unix seconds (integer) or ISO 8601 UTC text. 0 or -1. */
int sc_api_parse_time(const json_t *v, int64_t *out);

#endif
