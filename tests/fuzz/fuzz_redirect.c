/* fuzz_redirect.c — libFuzzer target for the two places a redirect's URL is read from the
 * network: sc_lt_parse_location (loadtest reading a server's response head) and
 * sc_api_valid_base_url (the origin checking the URL an edge reports, which becomes a
 * Location header). Each sees an exactly sized, NUL-terminated copy. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/loadtest.h"
#include "spacecast/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';

    struct in_addr target;
    inet_pton(AF_INET, "10.0.0.1", &target);
    struct sockaddr_in to;
    char path[128];
    if (sc_lt_parse_location(buf, &target, &to, path, sizeof path)) {
        size_t n = strlen(path);
        if (path[0] != '/' || n >= sizeof path || strchr(path, '\r'))
            abort();
        if ((ntohl(to.sin_addr.s_addr) >> 24) != 127 && to.sin_addr.s_addr != target.s_addr)
            abort(); /* never to a third address */
        if (to.sin_port == 0)
            abort();
    }
    if (sc_api_valid_base_url(buf)) {
        if (strlen(buf) >= 256 || strpbrk(buf, "\r\n \"<>"))
            abort(); /* could end or bend a header */
    }
    free(buf);
    return 0;
}
