/* fuzz_http_response.c — libFuzzer target for the response-head reader our own clients use
 * (the edge relay, speak, the WHIP client, loadtest): whatever a server (or a man in the middle
 * of a plain connection) sends. Checks that the slices stay inside the head and that reading it
 * in two pieces gives the same answer as reading it whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/http_parser.h"

static void inside(const char *buf, int n, sc_slice_t s)
{
    if (s.len && (s.base < buf || s.base + s.len > buf + n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exactly sized: an over-read is ASan's */
    memcpy(buf, data, size);
    sc_http_response_t whole, split;
    int n = sc_http_parse_response(buf, size, 0, &whole);
    if (n > 0) {
        if ((size_t)n > size || whole.status < 100 || whole.status > 999 || whole.num_headers > SC_HTTP_MAX_HEADERS)
            abort();
        inside(buf, n, whole.reason);
        for (size_t i = 0; i < whole.num_headers; i++) {
            inside(buf, n, whole.headers[i].name);
            inside(buf, n, whole.headers[i].value);
        }
    }
    size_t cut = size ? data[0] % (size + 1) : 0;
    int a = sc_http_parse_response(buf, cut, 0, &split);
    if (a == SC_INCOMPLETE) {
        int b = sc_http_parse_response(buf, size, cut, &split);
        if (b != n || (n > 0 && split.status != whole.status))
            abort();
    }
    free(buf);
    return 0;
}
