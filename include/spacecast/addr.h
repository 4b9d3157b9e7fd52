/* addr.h — socket addresses as text and back: "HOST:PORT" (IPv4, [IPv6], localhost) into the
 * dual-stack form every socket of ours uses, and an address as text for logs and SDP. */
#ifndef SC_ADDR_H
#define SC_ADDR_H

#include <netinet/in.h>
#include <stddef.h>

/** "HOST:PORT" (IPv4, [IPv6] or localhost) as a dual-stack socket address. 0 or -1. */
int sc_addr_parse(const char *hostport, struct sockaddr_in6 *out);
/** An address as text: a v4-mapped one as plain IPv4. Returns out. */
const char *sc_addr_str(const struct in6_addr *a, char *out, size_t outsz);

#endif
