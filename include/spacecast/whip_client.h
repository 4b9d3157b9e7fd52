/* whip_client.h — a WHIP publisher (RFC 9725) in C, the browser's side of docs/webrtc.md:
 * POST an offer, play the controlling ICE agent against the server's ICE-lite (binding
 * requests with USE-CANDIDATE), be the DTLS client, then send Opus over SRTP and keep consent
 * fresh; DELETE the session at the end. Used by `spacecast speak --whip` (bots, tests, the
 * sanitizer runs of the media plane). Blocking, one session, IPv4. */
#ifndef SC_WHIP_CLIENT_H
#define SC_WHIP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

typedef struct sc_whip_client sc_whip_client_t;

/** Publish to http://host:port/spaces/id/whip (https:// when tls is a client context, which
 *  the caller keeps until sc_whip_client_close) as the speaker whose token this is. red > 0
 *  offers RFC 2198 redundancy and, if the answer takes it, puts copies of the previous `red`
 *  packets (at most SC_RED_MAX_DEPTH) in each. Returns the client with media ready to flow,
 *  or NULL with a reason in err. */
sc_whip_client_t *sc_whip_client_open(const char *host, const char *port, SSL_CTX *tls, const char *id,
                                      const char *token, int red, char *err, size_t errsz);
/** Send one Opus packet of `samples` (48 kHz) as the next RTP packet; also answers what came
 *  in meanwhile (RTCP, STUN) and refreshes consent. 0, or -1 if the session is dead. */
int sc_whip_client_send(sc_whip_client_t *c, const uint8_t *opus, size_t len, int samples);
/** Copies per packet actually sent (0 when the server did not take RED). */
int sc_whip_client_red(const sc_whip_client_t *c);
/** Receiver reports the server sent so far (the browser's encoder reads loss from them). */
uint64_t sc_whip_client_reports(const sc_whip_client_t *c);
/** DELETE the session, send close_notify, free. NULL-safe. */
void sc_whip_client_close(sc_whip_client_t *c);

/* The response reader, apart for the fuzz target (tests/fuzz/fuzz_whip_response.c). */
/** Status of a whole HTTP/1.1 response held NUL-terminated in resp, or -1; *body (if asked)
 *  points where its body starts (the end of resp if it has none). */
int sc_whip_response_status(char *resp, char **body);
/** The value of header `name` of a response head (case-insensitive), cut to n; "" if absent. */
void sc_whip_header_value(const char *resp, const char *name, char *out, size_t n);

#endif
