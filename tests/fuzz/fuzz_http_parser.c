/* fuzz_http_parser.c — libFuzzer target for sc_http_parse_request: no over-read (each parse
 * sees an exactly sized heap copy, so ASan catches one byte past), slices inside the head,
 * and feeding the same bytes in pieces with last_len ends exactly as one whole parse does;
 * then the body framing decision (sc_http_request_framing) of every head that parses, and the
 * Space list's query (sc_dir_query_parse: state, limit, cursor) of its target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/directory.h"
#include "spacecast/http_parser.h"

static void check_slice(sc_slice_t s, const char *buf, int headlen)
{
    if (s.len == 0)
        return;
    if (s.base < buf || s.base + s.len > buf + headlen)
        abort();
    if (memchr(s.base, '\r', s.len) || memchr(s.base, '\n', s.len))
        abort();
}

static void check_request(const sc_http_request_t *req, const char *buf, size_t len, int r)
{
    if (r == -1 || r == SC_INCOMPLETE)
        return;
    if (r <= 0 || (size_t)r > len)
        abort();
    if (req->method.len == 0 || req->target.len == 0 || req->num_headers > SC_HTTP_MAX_HEADERS)
        abort();
    if (req->minor_version != 0 && req->minor_version != 1)
        abort();
    check_slice(req->method, buf, r);
    check_slice(req->target, buf, r);
    check_slice(req->path, buf, r);
    check_slice(req->query, buf, r);
    if (req->path.base != req->target.base || req->path.len > req->target.len)
        abort();
    if (req->query.len && req->query.base != req->path.base + req->path.len + 1)
        abort();
    for (size_t i = 0; i < req->num_headers; i++) {
        const sc_http_header_t *h = &req->headers[i];
        if (h->name.len == 0)
            abort();
        check_slice(h->name, buf, r);
        check_slice(h->value, buf, r);
        if (h->value.len && (h->value.base[0] == ' ' || h->value.base[h->value.len - 1] == '\t'))
            abort();
        if (sc_http_find_header(req, "host"))
            (void)sc_http_header_has_token(h->value, "keep-alive");
    }
    uint64_t length = UINT64_MAX;
    const char *why = NULL;
    int f = sc_http_request_framing(req, &length, &why);
    if (f == -1 ? why == NULL : (f < SC_HTTP_FRAMING_NONE || f > SC_HTTP_FRAMING_CHUNKED))
        abort();
    /* one framing only: chunked never with a length, and never on HTTP/1.0 */
    if (f == SC_HTTP_FRAMING_CHUNKED && (req->minor_version == 0 || sc_http_find_header(req, "content-length")))
        abort();
    if (f == SC_HTTP_FRAMING_LENGTH && (length == 0 || length >= 1000000000000000ull))
        abort();
    if (f >= 0 && req->minor_version == 1 && !sc_http_find_header(req, "host"))
        abort();
    sc_dir_query_t q;
    if (!sc_dir_query_parse(req->query, &q) &&
        (q.limit < 1 || q.limit > SC_DIR_LIMIT_MAX || (q.has_cursor && (!strchr("lse", q.section) || !q.id[0]))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_http_request_t req;
    char *whole = malloc(size ? size : 1);
    memcpy(whole, data, size);
    int want = sc_http_parse_request(whole, size, 0, &req);
    check_request(&req, whole, size, want);
    free(whole);

    /* The same bytes arriving in pieces; the step sizes come from the data itself. */
    size_t last = 0, len = 0, k = 0;
    int r = SC_INCOMPLETE;
    while (len < size && r == SC_INCOMPLETE) {
        len += 1 + data[k++ % size] % 17;
        if (len > size)
            len = size;
        char *part = malloc(len);
        memcpy(part, data, len);
        r = sc_http_parse_request(part, len, last, &req);
        check_request(&req, part, len, r);
        free(part);
        if (r != SC_INCOMPLETE && r != want)
            abort();
        last = len;
    }
    if (size && r != want)
        abort();
    return 0;
}
