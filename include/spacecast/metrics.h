/* metrics.h — counters for GET /metrics (Prometheus text format). */
#ifndef SC_METRICS_H
#define SC_METRICS_H

#include <stddef.h>

/** Count one answered request by route index and status code. Thread-safe, lock-free. */
void sc_metrics_request(unsigned route, int status);
/** Render every metric as Prometheus text; caller frees. */
char *sc_metrics_render(size_t *len);

#endif
