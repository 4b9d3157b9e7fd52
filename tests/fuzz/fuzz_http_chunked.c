/* fuzz_http_chunked.c — libFuzzer target for sc_http_decode_chunked: the body fed whole and
 * fed in pieces (split sizes taken from the first input byte) must decode to the same bytes,
 * stop at the same place and fail alike; every piece is an exactly sized heap copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = data[0] * 2654435761u + 1;
    data++;
    size--;

    sc_http_chunked_t d;
    sc_http_chunked_init(&d);
    char *whole = malloc(size ? size : 1);
    memcpy(whole, data, size);
    size_t wlen = size;
    ssize_t want = sc_http_decode_chunked(&d, whole, &wlen);
    if (want != -1 && want != SC_INCOMPLETE && (want < 0 || wlen + (size_t)want > size))
        abort();
    if (want != -1 && wlen > size)
        abort();

    char *out = malloc(size ? size : 1);
    size_t outlen = 0, off = 0;
    ssize_t r = SC_INCOMPLETE;
    sc_http_chunked_init(&d);
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % 24;
        if (piece > size - off)
            piece = size - off;
        char *buf = malloc(piece);
        memcpy(buf, data + off, piece);
        size_t len = piece;
        r = sc_http_decode_chunked(&d, buf, &len);
        if (r == -1) {
            free(buf);
            break;
        }
        if (len > piece || (r >= 0 && len + (size_t)r > piece))
            abort();
        memcpy(out + outlen, buf, len);
        outlen += len;
        off += piece;
        if (r >= 0) {
            if (memcmp(buf + len, data + off - (size_t)r, (size_t)r) != 0)
                abort(); /* the leftover must be the untouched next bytes */
            off -= (size_t)r;
            free(buf);
            break;
        }
        free(buf);
    }
    if (size == 0)
        r = want;
    if ((r == -1) != (want == -1) || (r == SC_INCOMPLETE) != (want == SC_INCOMPLETE))
        abort();
    if (want >= 0 && (size - off != (size_t)want))
        abort();
    if (want != -1 && (outlen != wlen || memcmp(out, whole, wlen) != 0))
        abort();
    free(out);
    free(whole);
    return 0;
}
