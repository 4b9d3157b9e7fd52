/* metrics.c — the collector registry and the text buffer of a scrape. */
#include "spacecast/metrics.h"
#include "spacecast/common.h"
#include "spacecast/page.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#define SC_METRICS_MAX 32      /* collectors: one per module that owns numbers */
#define SC_METRICS_INIT 8192   /* first size of a scrape's text; it grows as needed */

struct sc_metrics_buf {
    char *p;
    size_t len, cap;
};

typedef struct sc_collector {
    const char *name;
    sc_metrics_fn fn;
    void *arg;
} sc_collector_t;

static struct {
    pthread_mutex_t mu; /* held through a scrape: unregister waits for it */
    sc_collector_t c[SC_METRICS_MAX];
    size_t n;
} sc_metrics = { .mu = PTHREAD_MUTEX_INITIALIZER };

void sc_metrics_printf(sc_metrics_buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = sc_realloc(b->p, b->cap);
    }
}

void sc_metrics_register(const char *name, sc_metrics_fn fn, void *arg)
{
    pthread_mutex_lock(&sc_metrics.mu);
    if (sc_metrics.n < SC_METRICS_MAX)
        sc_metrics.c[sc_metrics.n++] = (sc_collector_t){ name, fn, arg };
    else
        abort(); /* a programming error: raise SC_METRICS_MAX */
    pthread_mutex_unlock(&sc_metrics.mu);
}

void sc_metrics_unregister(sc_metrics_fn fn, void *arg)
{
    pthread_mutex_lock(&sc_metrics.mu);
    for (size_t i = 0; i < sc_metrics.n; i++) {
        if (sc_metrics.c[i].fn == fn && sc_metrics.c[i].arg == arg) {
            memmove(&sc_metrics.c[i], &sc_metrics.c[i + 1], (sc_metrics.n - i - 1) * sizeof sc_metrics.c[0]);
            sc_metrics.n--;
            break;
        }
    }
    pthread_mutex_unlock(&sc_metrics.mu);
}

char *sc_metrics_render(size_t *len)
{
    sc_metrics_buf_t b = { sc_malloc(SC_METRICS_INIT), 0, SC_METRICS_INIT };
    b.p[0] = '\0';
    pthread_mutex_lock(&sc_metrics.mu);
    for (size_t i = 0; i < sc_metrics.n; i++)
        sc_metrics.c[i].fn(&b, sc_metrics.c[i].arg);
    pthread_mutex_unlock(&sc_metrics.mu);
    sc_metrics_printf(&b, "# HELP spacecast_page_bytes Bytes held in shared audio and event pages.\n"
                          "# TYPE spacecast_page_bytes gauge\nspacecast_page_bytes %zu\n",
                      sc_page_bytes_live());
    *len = b.len;
    return b.p;
}
