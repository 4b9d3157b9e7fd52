/* router.h — the route table: method + path pattern → handler. */
#ifndef SC_ROUTER_H
#define SC_ROUTER_H

#include "spacecast/http.h"

enum {
    SC_ROUTE_STREAM_BODY = 1 << 0, /* the handler reads the body itself (ingest) */
    SC_ROUTE_PUBLIC = 1 << 1,      /* listener traffic: refused on the API-only port */
    SC_ROUTE_TOKEN = 1 << 2,       /* needs a token of the Space (or the admin key) */
    SC_ROUTE_ADMIN = 1 << 3,       /* needs the admin key */
};

typedef void (*sc_handler_fn)(sc_req_t *r);

typedef struct sc_route {
    const char *method;   /* "GET", ... ; GET routes also answer HEAD */
    const char *pattern;  /* "/api/spaces/{}/speakers/{}" */
    sc_handler_fn fn;
    unsigned flags;
    const char *name;     /* metrics label */
} sc_route_t;

#define SC_ROUTE_NONE 0 /* metrics index for requests that matched no route */

/** The route a request head would go to (NULL if none), without side effects. */
const sc_route_t *sc_router_peek(const sc_http_request_t *req);
/** The same, with the path captures in args (SC_ROUTE_MAX_ARGS slices). */
const sc_route_t *sc_router_find(const sc_http_request_t *req, sc_slice_t *args);
/** Index of a route of the table (its metrics label). */
size_t sc_router_index(const sc_route_t *rt);
/** Route and run the handler, or answer 404/405. */
void sc_router_dispatch(sc_req_t *r);
/** Number of routes and their names (for metrics; index 0 is "none"). */
size_t sc_router_count(void);
const char *sc_router_name(size_t i);

#endif
