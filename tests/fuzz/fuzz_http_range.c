/* fuzz_http_range.c — libFuzzer target for sc_http_parse_range (the first 8 bytes pick the
 * resource size) and, on the same bytes, the small decoders that read request input:
 * url decode, query lookup, base64, Basic and Bearer. Each sees an exactly sized copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t rsize = 0;
    if (size >= 8) {
        memcpy(&rsize, data, 8);
        data += 8;
        size -= 8;
        /* mostly small sizes, where the edge cases are, sometimes huge ones */
        if (!(rsize & 1))
            rsize = (rsize >> 1) % 4096;
    }
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    sc_slice_t v = sc_slice(buf, size);

    uint64_t start = 0, end = 0;
    int rc = sc_http_parse_range(v, rsize, &start, &end);
    if (rc != -1 && rc != 0 && rc != 1)
        abort();
    if (rc == 0 && (start > end || end >= rsize))
        abort();

    char out[128];
    ssize_t n = sc_http_url_decode(v, out, sizeof(out));
    if (n >= 0 && ((size_t)n >= sizeof(out) || out[n] != '\0' || strlen(out) != (size_t)n || (size_t)n > size))
        abort();
    n = sc_http_query_get(v, "token", out, sizeof(out));
    if (n >= 0 && ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n))
        abort();

    unsigned char bin[96];
    n = sc_http_base64_decode(v, bin, sizeof(bin));
    if (n > (ssize_t)sizeof(bin) || (n >= 0 && (size_t)n > size))
        abort();

    char user[32], pass[32];
    if (sc_http_parse_basic_auth(v, user, sizeof(user), pass, sizeof(pass)) == 0 &&
        (strlen(user) >= sizeof(user) || strlen(pass) >= sizeof(pass)))
        abort();
    sc_slice_t tok;
    if (sc_http_parse_bearer(v, &tok) == 0 && (tok.len == 0 || tok.base < buf || tok.base + tok.len > buf + size))
        abort();
    free(buf);
    return 0;
}
