/* dial.h — blocking connections for our own clients (the edge's origin fetches, `spacecast
 * speak`, the WHIP client, the load tester): URLs, TCP dials, and a stream that is a plain socket or TLS
 * over one (verified: tls.h). */
#ifndef SC_DIAL_H
#define SC_DIAL_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/** A parsed http:// or https:// URL. */
typedef struct sc_url {
    int tls;            /* https */
    char host[256];     /* name or address, IPv6 without its brackets */
    char port[8];       /* as given, else 80 or 443 */
    char path[1024];    /* from the first '/' on (query included); "/" if none */
} sc_url_t;

/** Parse http(s)://HOST[:PORT][/PATH]. 0, or -1 if it is not such a URL (or too long). */
int sc_url_parse(const char *url, sc_url_t *u);
/** "host:port" as it belongs in a Host header ([v6]:port). Returns out. */
const char *sc_url_authority(const sc_url_t *u, char *out, size_t outsz);

/** Connect to host:port (each address getaddrinfo gives, in order; family AF_UNSPEC or one
 *  family), with send/receive timeouts if timeout_ms > 0. A blocking fd, or -1. */
int sc_dial(const char *host, const char *port, int family, int timeout_ms);

/** A blocking byte stream: a socket, with TLS on it when ssl is set. */
typedef struct sc_stream {
    int fd;
    SSL *ssl;
    SSL_SESSION **resume;   /* the caller's session slot, refreshed at close */
} sc_stream_t;

/** Dial host:port and, when tls is given, complete a handshake that verifies the server's
 *  certificate and name (tls.h), resuming *resume if set (resume may be NULL; the slot is the
 *  caller's, one per thread, and gets the newest session at sc_stream_close). 0, or -1 with a
 *  reason for a user in err (nothing to close). */
int sc_stream_open(sc_stream_t *s, const char *host, const char *port, SSL_CTX *tls, SSL_SESSION **resume,
                   int family, int timeout_ms, char *err, size_t errsz);
/** Read what is there: bytes, 0 at the end, -1 on an error or a receive timeout. */
ssize_t sc_stream_read(sc_stream_t *s, void *buf, size_t len);
/** Write all of p. 0 or -1. */
int sc_stream_write(sc_stream_t *s, const void *p, size_t n);
/** close_notify (TLS; keeps the session resumable), close the socket. Safe on a stream that
 *  failed to open. */
void sc_stream_close(sc_stream_t *s);

#endif
