/* static.c — the web app's files from web/: `/` and `/s/{id}` are the app shell, `/web/...`
 * its assets. Only names from a fixed character set are served, so no path can leave web/. */
#include "spacecast/static.h"
#include "spacecast/common.h"
#include "spacecast/config.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mime_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (!strcmp(dot, ".html"))
        return "text/html; charset=utf-8";
    if (!strcmp(dot, ".js") || !strcmp(dot, ".mjs"))
        return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (!strcmp(dot, ".svg"))
        return "image/svg+xml";
    if (!strcmp(dot, ".png"))
        return "image/png";
    if (!strcmp(dot, ".ico"))
        return "image/x-icon";
    if (!strcmp(dot, ".json"))
        return "application/json";
    if (!strcmp(dot, ".wasm"))
        return "application/wasm";
    return "application/octet-stream";
}

/* [A-Za-z0-9_-] segments with at most one '.' not at the start: no "..", no hidden files */
static int safe_segment(sc_slice_t s)
{
    if (s.len == 0 || s.len > 100 || s.base[0] == '.')
        return 0;
    int dots = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.base[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return dots <= 2;
}

void sc_static_handle(sc_req_t *r)
{
    const char *root = sc_config()->web_root;
    char rel[256];
    sc_slice_t path = r->http->path;
    if (sc_slice_eq(path, "/") || (path.len > 3 && memcmp(path.base, "/s/", 3) == 0)) {
        snprintf(rel, sizeof rel, "index.html");
    } else {
        for (int i = 0; i < SC_ROUTE_MAX_ARGS && r->args[i].base; i++) {
            if (!safe_segment(r->args[i])) {
                sc_http_error(r, 404, "not_found", "no such file");
                return;
            }
        }
        if (r->args[1].base)
            snprintf(rel, sizeof rel, "%.*s/%.*s", (int)r->args[0].len, r->args[0].base, (int)r->args[1].len,
                     r->args[1].base);
        else
            snprintf(rel, sizeof rel, "%.*s", (int)r->args[0].len, r->args[0].base);
    }
    char full[800];
    snprintf(full, sizeof full, "%s/%s", root, rel);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        sc_http_error(r, 404, "not_found", "no such file");
        return;
    }
    const char *cache = strstr(rel, "vendor/") ? "Cache-Control: public, max-age=86400\r\n"
                                               : "Cache-Control: no-cache\r\n";
    char hdr[256];
    snprintf(hdr, sizeof hdr, "%sX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n", cache);
    sc_http_respond_head(r, 200, mime_of(rel), (int64_t)st.st_size, hdr);
    if (r->head_only || st.st_size == 0) {
        close(fd);
        if (!r->head_only)
            sc_conn_flush(r->conn);
        return;
    }
    sc_conn_send_file(r->conn, fd, 0, (uint64_t)st.st_size);
}
