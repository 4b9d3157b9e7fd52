/* fuzz_token.c — sc_token_verify on arbitrary bytes with a fixed key.
 * Besides "no crash", it checks two properties: an accepted token names valid claims,
 * and re-signing those claims reproduces the input byte for byte (one spelling per token). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/token.h"

static const uint8_t key[SC_TOKEN_KEY_LEN] = "fuzz-key-fuzz-key-fuzz-key-fuzz-";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* copy into an exact-size heap buffer so ASan catches any read past the slice */
    char *buf = malloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    sc_token_claims_t c;
    int rc = sc_token_verify(key, sc_slice(buf, size), 1700000000, &c);
    if (rc == SC_TOKEN_OK || rc == SC_TOKEN_EXPIRED) {
        char again[SC_TOKEN_MAX];
        if (!sc_token_valid_id(sc_slice_cstr(c.space_id)) || !sc_token_valid_name(sc_slice_cstr(c.name)))
            abort();
        int n = sc_token_sign(key, &c, again, sizeof again);
        if (n < 0 || (size_t)n != size || memcmp(again, buf, size) != 0)
            abort();
    } else if (rc != SC_TOKEN_MALFORMED && rc != SC_TOKEN_BAD_SIGNATURE) {
        abort();
    }
    free(buf);
    return 0;
}
