/* stun.h — the part of STUN (RFC 8489) that ICE (RFC 8445) needs, for an ICE-lite server and
 * for our own test/bench client: binding requests and responses with USERNAME, PRIORITY,
 * ICE-CONTROLLING/CONTROLLED, USE-CANDIDATE, XOR-MAPPED-ADDRESS, short-term
 * MESSAGE-INTEGRITY (HMAC-SHA1 over the ice-pwd) and FINGERPRINT (CRC-32 ^ 0x5354554e).
 * The parser reads network input: it never reads past n, and slices point into the datagram. */
#ifndef SC_STUN_H
#define SC_STUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SC_STUN_HEADER 20
#define SC_STUN_MAGIC 0x2112A442u
#define SC_STUN_BINDING_REQUEST 0x0001
#define SC_STUN_BINDING_INDICATION 0x0011
#define SC_STUN_BINDING_SUCCESS 0x0101
#define SC_STUN_BINDING_ERROR 0x0111
#define SC_STUN_MAX_MSG 548 /* what we build; what we parse is bounded by the datagram */

typedef struct sc_stun_msg {
    uint16_t type;
    uint8_t txid[12];
    const uint8_t *username; /* into the datagram; NULL if absent */
    size_t username_len;
    int has_integrity;       /* MESSAGE-INTEGRITY present (checked by sc_stun_check_integrity) */
    size_t integrity_at;     /* offset of the MESSAGE-INTEGRITY attribute's header */
    int has_fingerprint;     /* present and correct (a wrong one fails the parse) */
    int use_candidate;
    int has_priority;
    uint32_t priority;
    int ice_controlling, ice_controlled;
    uint64_t tiebreaker;
    int has_mapped;          /* XOR-MAPPED-ADDRESS (responses) */
    struct sockaddr_storage mapped;
    int error_code;          /* ERROR-CODE (error responses), else 0 */
} sc_stun_msg_t;

/** n random ICE characters (ufrag, pwd) and a NUL into out (n ≤ 64). ICE allows [A-Za-z0-9+/];
 *  alphanumerics survive any SDP munging. */
void sc_stun_random_ice(char *out, size_t n);

/** Does this datagram look like STUN (RFC 7983: first byte 0..3, the magic cookie, length
 *  a multiple of 4 that fits)? */
int sc_stun_is(const uint8_t *p, size_t n);
/** Parse one message. 0, or -1 if malformed (bad length, an attribute running past the end,
 *  a wrong FINGERPRINT, attributes after FINGERPRINT, unknown comprehension-required
 *  attributes are NOT an error here: the caller answers 420 if it cares). */
int sc_stun_parse(const uint8_t *p, size_t n, sc_stun_msg_t *out);
/** Check MESSAGE-INTEGRITY (RFC 8489 §14.5: HMAC-SHA1 over the message up to the attribute,
 *  with the length field adjusted) with a short-term key. 1 if right, 0 if wrong or absent. */
int sc_stun_check_integrity(const uint8_t *p, size_t n, const sc_stun_msg_t *m, const char *key, size_t keylen);
/** A binding success response to txid: XOR-MAPPED-ADDRESS of peer (IPv4 or IPv6),
 *  MESSAGE-INTEGRITY with key, FINGERPRINT. Length written, or -1 if cap is too small. */
int sc_stun_binding_success(uint8_t *out, size_t cap, const uint8_t txid[12], const struct sockaddr *peer,
                            const char *key, size_t keylen);
/** A binding error response (400 bad request, 401 unauthorized, 487 role conflict) with
 *  ERROR-CODE and FINGERPRINT (and MESSAGE-INTEGRITY if key is not NULL). Length or -1. */
int sc_stun_binding_error(uint8_t *out, size_t cap, const uint8_t txid[12], int code, const char *reason,
                          const char *key, size_t keylen);
/** A binding request as a controlling ICE agent sends it (our client): USERNAME,
 *  PRIORITY, ICE-CONTROLLING with tiebreaker, USE-CANDIDATE if asked, MESSAGE-INTEGRITY, FINGERPRINT. */
int sc_stun_binding_request(uint8_t *out, size_t cap, const uint8_t txid[12], const char *username, const char *key,
                            size_t keylen, uint32_t priority, uint64_t tiebreaker, int use_candidate);

#endif
