/* fuzz_whip_response.c — libFuzzer target for the WHIP client's reader of the server's answer
 * (`spacecast speak --whip`): the status line, where the body starts, the Location header, and
 * the SDP answer in the body, as sc_whip_client_open reads them. The input is an exactly sized,
 * NUL-terminated copy, as the client's receive buffer is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/sdp.h"
#include "spacecast/whip_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *resp = malloc(size + 1);
    memcpy(resp, data, size);
    resp[size] = '\0';
    char *body = NULL;
    int st = sc_whip_response_status(resp, &body);
    if (st >= 0) {
        if (!body || body < resp || body > resp + strlen(resp))
            abort(); /* the body must lie inside the answer */
        char loc[256];
        sc_whip_header_value(resp, "Location", loc, sizeof loc);
        if (strlen(loc) >= sizeof loc || strstr(loc, "\r\n"))
            abort(); /* a header value never runs past its line */
        sc_sdp_t sdp;
        const char *why = NULL;
        (void)sc_sdp_parse(body, strlen(body), &sdp, &why);
    }
    free(resp);
    return 0;
}
