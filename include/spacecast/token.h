/* token.h — signed capability tokens (HMAC-SHA256): checking one needs no database read. */
#ifndef SC_TOKEN_H
#define SC_TOKEN_H

#include "spacecast/common.h"

#include <stddef.h>
#include <stdint.h>

/* Ordered by power: a check "at least cohost" is `role >= SC_ROLE_COHOST`. */
typedef enum { SC_ROLE_LISTENER = 0, SC_ROLE_SPEAKER, SC_ROLE_COHOST, SC_ROLE_HOST } sc_role_t;

/** Lower-case name of a role ("listener", "speaker", "cohost", "host"); "unknown" if out of range. */
const char *sc_role_name(sc_role_t r);
/** Parse an exact, lower-case role name into *out. Returns 0, or -1 if s names no role. */
int sc_role_parse(sc_slice_t s, sc_role_t *out);

#define SC_TOKEN_KEY_LEN 32
#define SC_TOKEN_MAX 256 /* max encoded token length incl NUL */
#define SC_TOKEN_ID_MAX 32
#define SC_TOKEN_NAME_MAX 64

/* sc_token_verify results; every non-zero value means "refuse". */
enum {
    SC_TOKEN_OK = 0,
    SC_TOKEN_MALFORMED = -1,     /* not a token of ours at all: 400/401 */
    SC_TOKEN_BAD_SIGNATURE = -2, /* well-formed but not signed by this key (forged, edited, other server) */
    SC_TOKEN_EXPIRED = -3,       /* authentic but past its expiry */
};

typedef struct sc_token_claims {
    char space_id[33];   /* ids are [A-Za-z0-9_-]{1,32} */
    sc_role_t role;
    char name[65];       /* speaker name: UTF-8 printable, no '.', '|' or control chars, 1..64 bytes */
    uint32_t generation; /* bumped when a speaker is removed so older tokens die */
    int64_t expires;     /* unix seconds; the token is valid while now < expires */
} sc_token_claims_t;

/** Sign claims into out (NUL-terminated, base64url(payload) "." base64url(hmac)). Returns length or -1 (invalid claims, outsz too small). */
int sc_token_sign(const uint8_t key[SC_TOKEN_KEY_LEN], const sc_token_claims_t *c, char *out, size_t outsz);
/** Verify a token: strict shape, constant-time MAC, strict payload, expiry vs now. Returns SC_TOKEN_*; out (may be NULL) is filled on OK and EXPIRED, zeroed otherwise. */
int sc_token_verify(const uint8_t key[SC_TOKEN_KEY_LEN], sc_slice_t token, int64_t now, sc_token_claims_t *out);
/** Short stable name of a sc_token_verify result ("ok", "malformed", "bad_signature", "expired"). */
const char *sc_token_result_name(int rc);
/** Fill key with random bytes (RAND_bytes). Returns 0, or -1 if the CSPRNG failed. */
int sc_token_key_generate(uint8_t key[SC_TOKEN_KEY_LEN]);
/** Write a random URL-safe id of n chars into out (n + 1 bytes, NUL-terminated); n <= 32 gives a valid Space id. Aborts if the CSPRNG fails. */
void sc_token_random_id(char *out, size_t n);
/** Is s a valid Space id ([A-Za-z0-9_-]{1,32})? Returns 1 or 0. */
int sc_token_valid_id(sc_slice_t s);
/** Is s a valid speaker name (1..64 bytes of well-formed UTF-8, no controls, no '.' or '|')? Returns 1 or 0. */
int sc_token_valid_name(sc_slice_t s);

#endif
