/* api_metrics.c — GET /metrics and GET /healthz. */
#include "spacecast/api.h"
#include "spacecast/common.h"
#include "spacecast/metrics.h"

#include <stdlib.h>

void sc_api_metrics(sc_req_t *r)
{
    size_t len;
    char *text = sc_metrics_render(&len);
    sc_http_respond(r, 200, "text/plain; version=0.0.4", text, len, NULL);
    free(text);
}

void sc_api_healthz(sc_req_t *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    sc_http_respond(r, 200, "application/json", ok, sizeof ok - 1, "Cache-Control: no-store\r\n");
}
