/* http_parser.h — zero-copy, resumable HTTP/1.1 request- and response-head parsers (picohttpparser's
 * shape: slices into the caller's buffer, SC_INCOMPLETE "need more", -1 malformed), an in-place
 * chunked-body decoder, and small helpers for Range, query strings and auth headers. */
#ifndef SC_HTTP_PARSER_H
#define SC_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spacecast/common.h"

#define SC_HTTP_MAX_HEADERS 64

/* Limits of the chunked decoder; anything larger is an attack, not a client. */
#define SC_HTTP_CHUNK_MAX_SIZE (1ull << 40)
#define SC_HTTP_CHUNK_MAX_EXT 1024
#define SC_HTTP_CHUNK_MAX_TRAILER 8192

typedef struct sc_http_header {
    sc_slice_t name, value;
} sc_http_header_t;

typedef struct sc_http_request {
    sc_slice_t method; /* e.g. "GET", "PUT", "SOURCE" */
    sc_slice_t target; /* raw request-target */
    sc_slice_t path;   /* target up to '?' (not decoded) */
    sc_slice_t query;  /* after '?', empty if none */
    int minor_version; /* HTTP/1.x: 0 or 1 */
    size_t num_headers;
    sc_http_header_t headers[SC_HTTP_MAX_HEADERS];
} sc_http_request_t;

/** Parse a request head in buf[0..len); last_len is len at the previous call that returned
 * SC_INCOMPLETE (0 the first time) so the end-of-head search never rescans. Returns the head
 * length (>0), SC_INCOMPLETE or -1 if malformed. Slices in req point into buf. */
int sc_http_parse_request(const char *buf, size_t len, size_t last_len, sc_http_request_t *req);

/** A response head, as our own clients read it (the edge relay, speak, the WHIP client,
 *  loadtest): slices into the caller's buffer. */
typedef struct sc_http_response {
    int minor_version; /* HTTP/1.x */
    int status;        /* 100..999 */
    sc_slice_t reason; /* may be empty */
    size_t num_headers;
    sc_http_header_t headers[SC_HTTP_MAX_HEADERS];
} sc_http_response_t;

/** Parse a response head in buf[0..len), resumable as sc_http_parse_request (last_len: len at
 *  the previous SC_INCOMPLETE). Returns the head length (the body starts there), SC_INCOMPLETE,
 *  or -1 if it is no HTTP/1.x response head. Fuzzed (fuzz_http_response). */
int sc_http_parse_response(const char *buf, size_t len, size_t last_len, sc_http_response_t *res);
/** First header of a response named name (case-insensitive), or NULL. */
const sc_slice_t *sc_http_response_header(const sc_http_response_t *res, const char *name);

/** First header named name (case-insensitive), or NULL; the slice points into req's buffer. */
const sc_slice_t *sc_http_find_header(const sc_http_request_t *req, const char *name);

/** Does a comma-separated header value hold token (case-insensitive)? 1 or 0. */
int sc_http_header_has_token(sc_slice_t value, const char *token);

/** How a request's body is framed (RFC 9112 §6). */
typedef enum {
    SC_HTTP_FRAMING_NONE = 0, /* no body */
    SC_HTTP_FRAMING_LENGTH, /* Content-Length bytes */
    SC_HTTP_FRAMING_CHUNKED /* Transfer-Encoding: chunked */
} sc_http_framing_t;

/** Decide a parsed request's body framing, refusing what RFC 9112 says a server must not
 * guess at: a missing Host (HTTP/1.1) or more than one Host, Content-Length values that
 * disagree or are not digits, Transfer-Encoding on HTTP/1.0, more than one Transfer-Encoding
 * field, a coding other than chunked, or Transfer-Encoding with Content-Length. Returns an
 * sc_http_framing_t (*length set for SC_HTTP_FRAMING_LENGTH), or -1 with a static reason in *why.
 * Pure: fuzzed with the parser. */
int sc_http_request_framing(const sc_http_request_t *req, uint64_t *length, const char **why);

/* Chunked decoder states (internal, but the struct lives on the caller's side). */
enum {
    SC_CHUNK_SIZE_FIRST = 0,
    SC_CHUNK_SIZE,
    SC_CHUNK_SIZE_WS,
    SC_CHUNK_EXT,
    SC_CHUNK_SIZE_LF,
    SC_CHUNK_DATA,
    SC_CHUNK_DATA_CR,
    SC_CHUNK_DATA_LF,
    SC_CHUNK_TRAILER_START,
    SC_CHUNK_TRAILER_LINE,
    SC_CHUNK_TRAILER_LF,
    SC_CHUNK_END_LF,
    SC_CHUNK_DONE,
    SC_CHUNK_ERROR
};

/** Chunked decoder state; zero it (or sc_http_chunked_init) before the first call. */
typedef struct sc_http_chunked {
    uint64_t remaining;   /* chunk-size being read, then data bytes left in this chunk */
    size_t ext_len;       /* bytes of the current chunk extension */
    size_t trailer_len;   /* bytes of the whole trailer section so far */
    int state;
} sc_http_chunked_t;

/** Reset a chunked decoder for a new body. */
void sc_http_chunked_init(sc_http_chunked_t *d);

/** Decode a chunked body in place: every byte of buf[0..*len) is consumed, the decoded data is
 * moved to the front and *len becomes its length. Returns SC_INCOMPLETE until the last chunk and
 * trailers are seen, then the count (>= 0) of bytes after the body left at buf[*len..], or -1. */
ssize_t sc_http_decode_chunked(sc_http_chunked_t *d, char *buf, size_t *len);

/** Has the decoder seen the whole body (last chunk and trailers)? */
static inline int sc_http_chunked_done(const sc_http_chunked_t *d) { return d->state == SC_CHUNK_DONE; }

/** Parse a Range value against size bytes: 0 and inclusive [*start, *end] if satisfiable,
 * 1 if it must be ignored (send 200), -1 if unsatisfiable (416). */
int sc_http_parse_range(sc_slice_t value, uint64_t size, uint64_t *start, uint64_t *end);

/** Percent-decode src into out (outsz includes the NUL); '+' stays '+'. Returns the decoded
 * length, or -1 on a bad escape, a NUL byte or if out is too small. */
ssize_t sc_http_url_decode(sc_slice_t src, char *out, size_t outsz);

/** Find key=value in a query (a=1&b=2), percent-decoded into out (NUL-terminated). Returns the
 * value length, or -1 if absent or invalid. A bare "key" has an empty value. */
ssize_t sc_http_query_get(sc_slice_t query, const char *key, char *out, size_t outsz);

/** Base64 decode (standard alphabet, padding optional) into out; decoded length or -1. */
ssize_t sc_http_base64_decode(sc_slice_t src, unsigned char *out, size_t outsz);

/** Parse an Authorization "Basic <b64>" value into NUL-terminated user and pass; 0 or -1. */
int sc_http_parse_basic_auth(sc_slice_t value, char *user, size_t usersz, char *pass, size_t passsz);

/** Parse an Authorization "Bearer <token>" value; *token points into value. 0 or -1. */
int sc_http_parse_bearer(sc_slice_t value, sc_slice_t *token);

#endif
