/* relay.h — `spacecast serve --relay-from URL`: an edge that takes each live Space from an
 * origin once and serves it to its own listeners, reporting its listener counts back.
 *
 * The origin's live.ogg feeds the edge's own mixer as its only "speaker", so a blip at the
 * origin is silence at the edge, never a disconnect: the edge's listeners stay on the edge's
 * own continuous stream while the relay reconnects with backoff. */
#ifndef SC_RELAY_H
#define SC_RELAY_H

/** Start the relay (poller thread; a fetcher thread per relayed live Space) from an http:// or
 *  https:// origin; an https origin's certificate is verified against ca_file (PEM; NULL or ""
 *  = the system's CAs) and its name. 0 or -1 (logged). */
int sc_relay_start(const char *origin_url, const char *ca_file);
/** Stop and join every relay thread. */
void sc_relay_stop(void);

#endif
