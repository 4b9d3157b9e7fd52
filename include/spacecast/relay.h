/* relay.h — `spacecast serve --relay-from URL`: an edge that takes each live Space from an
 * origin once and serves it to its own listeners, reporting its listener counts back.
 *
 * The origin's live.ogg feeds the edge's own mixer as its only "speaker", so a blip at the
 * origin is silence at the edge, never a disconnect: the edge's listeners stay on the edge's
 * own continuous stream while the relay reconnects with backoff. */
#ifndef SC_RELAY_H
#define SC_RELAY_H

#include <stddef.h>

/** Start the relay (poller thread; a fetcher thread per relayed live Space) from an http:// or
 *  https:// origin; an https origin's certificate is verified against ca_file (PEM; NULL or ""
 *  = the system's CAs) and its name. 0 or -1 (logged). */
int sc_relay_start(const char *origin_url, const char *ca_file);
/** Stop and join every relay thread. */
void sc_relay_stop(void);
/** A GET of path from the origin (blocking: call it off the workers), with the admin key: its
 *  status (or -1 when the origin could not be asked, no relay runs, or the body passed
 *  max_body), the body (malloc'd, the caller frees; NUL after it) and its length, and the
 *  origin's Content-Type and Cache-Control ("" when absent). */
int sc_relay_origin_get(const char *path, size_t max_body, char **body, size_t *len, char *ctype, size_t ctype_sz,
                        char *cache, size_t cache_sz);

#endif
