/* addr.c — see addr.h. */
#include "spacecast/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

int sc_addr_parse(const char *s, struct sockaddr_in6 *out)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *h = host;
    if (h[0] == '[') { /* [::1]:8000 */
        h++;
        h[strlen(h) - 1] = '\0';
    }
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin6_family = AF_INET6;
    out->sin6_port = htons((uint16_t)port);
    struct in_addr v4;
    if (inet_pton(AF_INET, h, &v4) == 1) {
        out->sin6_addr.s6_addr[10] = 0xff;
        out->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&out->sin6_addr.s6_addr[12], &v4, 4);
        return 0;
    }
    if (!strcmp(h, "localhost")) {
        out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
        out->sin6_addr.s6_addr[12] = 127;
        out->sin6_addr.s6_addr[15] = 1;
        return 0;
    }
    return inet_pton(AF_INET6, h, &out->sin6_addr) == 1 ? 0 : -1;
}

const char *sc_addr_str(const struct in6_addr *a, char *out, size_t outsz)
{
    if (IN6_IS_ADDR_V4MAPPED(a))
        inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)outsz);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)outsz);
    return out;
}
