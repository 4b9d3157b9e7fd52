/* metrics.h — GET /metrics in Prometheus text format, built from collectors that the
 * modules owning the numbers register (HAProxy stats modules): the core keeps only this
 * registry and the text buffer, and knows no module by name. */
#ifndef SC_METRICS_H
#define SC_METRICS_H

#include <stddef.h>

typedef struct sc_metrics_buf sc_metrics_buf_t;

/** Append text to a scrape (printf format). */
void sc_metrics_printf(sc_metrics_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** A module's part of a scrape: append its metrics to b. Runs on the scraping thread while the
 *  registry lock is held, so it must only read (atomics, or its own locks briefly) and must
 *  not register or unregister anything. */
typedef void (*sc_metrics_fn)(sc_metrics_buf_t *b, void *arg);

/** Add a collector; scrapes render collectors in the order they were registered. Thread-safe,
 *  but call it at start-up with no other lock held: a scrape holds the registry's lock while
 *  collectors take their own, so registering under a lock a collector's owner nests is a circle. */
void sc_metrics_register(const char *name, sc_metrics_fn fn, void *arg);
/** Remove a collector (fn and arg as registered); once this returns it is not running and will
 *  not run again. Thread-safe; a no-op if it is not registered. */
void sc_metrics_unregister(sc_metrics_fn fn, void *arg);
/** Render every collector, then the core's own gauges; caller frees. */
char *sc_metrics_render(size_t *len);

#endif
