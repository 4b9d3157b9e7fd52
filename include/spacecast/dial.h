/* dial.h — blocking TCP connections for our own clients (the edge's origin fetches,
 * `spacecast speak`, the WHIP client). */
#ifndef SC_DIAL_H
#define SC_DIAL_H

#include <netinet/in.h>
#include <stddef.h>

/** Connect to host:port (each address getaddrinfo gives, in order; family AF_UNSPEC or one
 *  family), with send/receive timeouts if timeout_ms > 0. A blocking fd, or -1. */
int sc_dial(const char *host, const char *port, int family, int timeout_ms);

#endif
