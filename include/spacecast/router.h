/* router.h — a pure matcher: method + path against a route table someone else owns (the
 * application's, api/routes.c), as Redis looks commands up in a table that is data. It
 * answers nothing: what to do with no match (404, 405) is http.c's. */
#ifndef SC_ROUTER_H
#define SC_ROUTER_H

#include <stddef.h>

#include "spacecast/common.h"

#define SC_ROUTE_MAX_ARGS 3    /* path captures per pattern */
#define SC_ROUTE_ARG_MAX 128   /* a longer segment is no id we ever issued: no match */
#define SC_ROUTE_NONE 0        /* route index of a request that matched no route */

enum {
    SC_ROUTE_STREAM_BODY = 1 << 0, /* the handler reads the body itself (ingest) */
    SC_ROUTE_PUBLIC = 1 << 1,      /* listener traffic: refused on the API-only port */
    SC_ROUTE_TOKEN = 1 << 2,       /* needs a token of the Space (or the admin key) */
    SC_ROUTE_ADMIN = 1 << 3,       /* needs the admin key */
    SC_ROUTE_LATER = 1 << 4,       /* a cheap write in a storm (reactions): answered after the
                                      loop turn's other requests (SPEC "Priority"; http.c) */
};

struct sc_req;
typedef void (*sc_handler_fn)(struct sc_req *r);

typedef struct sc_route {
    const char *method;   /* "GET", ... ; GET routes also answer HEAD */
    const char *pattern;  /* "/api/spaces/{}/speakers/{}": {} captures one non-empty segment */
    sc_handler_fn fn;
    unsigned flags;
    const char *name;     /* metrics label */
} sc_route_t;

/** A route table: n routes, borrowed (static data of the application). */
typedef struct sc_router {
    const sc_route_t *routes;
    size_t n;
} sc_router_t;

/** The first route whose method and pattern match (GET patterns also match HEAD), or NULL;
 *  captures go to args[0..SC_ROUTE_MAX_ARGS) (unused ones zeroed); *path_known is 1 if some
 *  route has this path under another method (the caller answers 405, not 404). */
const sc_route_t *sc_router_match(const sc_router_t *rt, sc_slice_t method, sc_slice_t path, sc_slice_t *args,
                                  int *path_known);
/** The methods some route has for path, as an Allow header value ("GET, HEAD, POST": a GET
 *  route adds HEAD; each method once, in table order) written to out; returns its length. */
size_t sc_router_allow(const sc_router_t *rt, sc_slice_t path, char *out, size_t outsz);
/** Index of a route for per-route counters: 1..n, SC_ROUTE_NONE (0) for NULL. */
size_t sc_router_index(const sc_router_t *rt, const sc_route_t *route);
/** Metrics label of route index i (0 and out of range: "none"). */
const char *sc_router_name(const sc_router_t *rt, size_t i);

#endif
