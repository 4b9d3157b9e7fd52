/* dial.c — see dial.h. */
#include "spacecast/dial.h"
#include "spacecast/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

int sc_url_parse(const char *url, sc_url_t *u)
{
    memset(u, 0, sizeof *u);
    const char *p;
    if (!strncmp(url, "http://", 7)) {
        p = url + 7;
    } else if (!strncmp(url, "https://", 8)) {
        p = url + 8;
        u->tls = 1;
    } else {
        return -1;
    }
    size_t alen = strcspn(p, "/?#");
    const char *end = p + alen, *colon = NULL, *h = p, *he;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', alen);
        if (!rb)
            return -1;
        h = p + 1;
        he = rb;
        if (rb + 1 < end && rb[1] == ':')
            colon = rb + 1;
        else if (rb + 1 != end)
            return -1;
    } else {
        colon = memchr(p, ':', alen);
        he = colon ? colon : end;
    }
    if (he == h || (size_t)(he - h) >= sizeof u->host || memchr(p, '@', alen))
        return -1;
    memcpy(u->host, h, (size_t)(he - h));
    if (colon) {
        size_t pl = (size_t)(end - colon - 1);
        if (pl == 0 || pl >= sizeof u->port || strspn(colon + 1, "0123456789") < pl)
            return -1;
        memcpy(u->port, colon + 1, pl);
    } else {
        snprintf(u->port, sizeof u->port, "%s", u->tls ? "443" : "80");
    }
    int port = atoi(u->port);
    if (port < 1 || port > 65535)
        return -1;
    const char *path = *end == '/' ? end : "/";
    if (strlen(path) >= sizeof u->path)
        return -1;
    snprintf(u->path, sizeof u->path, "%s", path);
    return 0;
}

const char *sc_url_authority(const sc_url_t *u, char *out, size_t outsz)
{
    snprintf(out, outsz, strchr(u->host, ':') ? "[%s]:%s" : "%s:%s", u->host, u->port);
    return out;
}

int sc_dial(const char *host, const char *port, int family, int timeout_ms)
{
    struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM }, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (timeout_ms > 0) {
            struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}


/* --- streams ---------------------------------------------------------------------------- */

int sc_stream_open(sc_stream_t *s, const char *host, const char *port, SSL_CTX *tls, SSL_SESSION **resume,
                   int family, int timeout_ms, char *err, size_t errsz)
{
    s->ssl = NULL;
    s->resume = resume;
    s->fd = sc_dial(host, port, family, timeout_ms);
    if (s->fd < 0) {
        snprintf(err, errsz, "cannot connect to %s:%s", host, port);
        return -1;
    }
    if (!tls)
        return 0;
    s->ssl = sc_tls_client_new(tls, s->fd, host);
    if (s->ssl && resume && *resume)
        SSL_set_session(s->ssl, *resume);
    if (!s->ssl || SSL_connect(s->ssl) != 1) {
        char why[300];
        snprintf(err, errsz, "%s:%s: %s", host, port, sc_tls_client_error(s->ssl, why, sizeof why));
        SSL_free(s->ssl); /* no close_notify after a failed handshake */
        s->ssl = NULL;
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    return 0;
}

ssize_t sc_stream_read(sc_stream_t *s, void *buf, size_t len)
{
    if (!s->ssl) {
        ssize_t n;
        while ((n = recv(s->fd, buf, len, 0)) < 0 && errno == EINTR)
            ;
        return n < 0 ? -1 : n;
    }
    size_t n = 0;
    if (SSL_read_ex(s->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int e = SSL_get_error(s->ssl, 0);
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

int sc_stream_write(sc_stream_t *s, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w;
        if (s->ssl) {
            size_t done = 0;
            w = SSL_write_ex(s->ssl, c, n, &done) == 1 ? (ssize_t)done : -1;
            if (w < 0)
                ERR_clear_error();
        } else {
            w = send(s->fd, c, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

void sc_stream_close(sc_stream_t *s)
{
    if (s->ssl && s->resume && SSL_is_init_finished(s->ssl)) {
        SSL_shutdown(s->ssl); /* before SSL_get1_session: a session freed unshut is marked spent */
        SSL_SESSION *sess = SSL_get1_session(s->ssl);
        if (sess && SSL_SESSION_is_resumable(sess)) {
            SSL_SESSION_free(*s->resume);
            *s->resume = sess;
        } else {
            SSL_SESSION_free(sess);
        }
    }
    sc_tls_close(s->ssl);
    s->ssl = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
