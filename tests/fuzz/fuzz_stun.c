/* fuzz_stun.c — the STUN parser (sc_stun_parse) on arbitrary datagrams: accepted messages
 * obey the rules the parser claims to enforce (length field equal to the datagram, FINGERPRINT
 * last, USERNAME inside the datagram and at most 513 bytes), MESSAGE-INTEGRITY can be checked
 * without reading outside it, and a decoded XOR-MAPPED-ADDRESS survives a trip through our
 * own success response. The datagram is an exactly sized heap copy, so ASan sees any over-read. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/stun.h"

static const char key[] = "fuzz-ice-pwd-0123456789";

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* The rules an accepted message must satisfy, from the bytes themselves. */
static void check_accepted(const uint8_t *msg, size_t size, const sc_stun_msg_t *m)
{
    if (size < SC_STUN_HEADER || (size - SC_STUN_HEADER) % 4 || rd16(msg + 2) != size - SC_STUN_HEADER)
        __builtin_trap();
    if (msg[0] & 0xC0 || memcmp(msg + 4, "\x21\x12\xa4\x42", 4) != 0 || memcmp(m->txid, msg + 8, 12) != 0)
        __builtin_trap();
    if (msg[0] <= 3 && !sc_stun_is(msg, size))
        __builtin_trap();
    if (m->has_fingerprint && (size < 28 || rd16(msg + size - 8) != 0x8028))
        __builtin_trap();
    if (m->username && (m->username < msg + SC_STUN_HEADER || m->username_len > 513 ||
                        m->username_len > (size_t)(msg + size - m->username)))
        __builtin_trap();
    if (m->has_integrity) {
        if (m->integrity_at < SC_STUN_HEADER || m->integrity_at + 24 > size || rd16(msg + m->integrity_at) != 0x0008)
            __builtin_trap();
        int ok = sc_stun_check_integrity(msg, size, m, key, sizeof key - 1);
        if (ok != 0 && ok != 1)
            __builtin_trap();
    } else if (sc_stun_check_integrity(msg, size, m, key, sizeof key - 1) != 0) {
        __builtin_trap();
    }
}

/* Whatever address we decoded, our response must carry it back unchanged. */
static void check_mapped_roundtrip(const sc_stun_msg_t *m)
{
    uint8_t out[SC_STUN_MAX_MSG];
    int n = sc_stun_binding_success(out, sizeof out, m->txid, (const struct sockaddr *)&m->mapped, key, sizeof key - 1);
    if (n <= 0)
        __builtin_trap();
    sc_stun_msg_t r;
    if (sc_stun_parse(out, (size_t)n, &r) != 0 || !r.has_mapped || !r.has_fingerprint || !r.has_integrity ||
        sc_stun_check_integrity(out, (size_t)n, &r, key, sizeof key - 1) != 1)
        __builtin_trap();
    size_t alen = m->mapped.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (memcmp(&r.mapped, &m->mapped, alen) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *msg = malloc(size ? size : 1);
    memcpy(msg, data, size);
    sc_stun_msg_t m;
    if (sc_stun_parse(msg, size, &m) == 0) {
        check_accepted(msg, size, &m);
        if (m.has_mapped)
            check_mapped_roundtrip(&m);
    }
    (void)sc_stun_is(msg, size);
    free(msg);
    return 0;
}
