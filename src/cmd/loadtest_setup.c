/* loadtest_setup.c — the many-Spaces mode's setup, in the parent before it forks: Spaces
 * created over the API (admin key), started, speakers invited, on a few keep-alive connections
 * at once (poll), with the create latency of each; or the Spaces of an earlier run read from
 * an ids file, so one run can create 100,000 and later runs measure them. */
#include "spacecast/common.h"
#include "spacecast/http_parser.h"
#include "spacecast/loadtest.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define API_CONNS_MAX 64
#define RESP_MAX 16384

/* The steps of one Space: create, start (unless scheduled), invite speaker k = step - 2. */
enum { STEP_CREATE = 0, STEP_START = 1, STEP_INVITE = 2 };

typedef struct api_conn {
    int fd;
    int space;         /* being set up, -1: none */
    int step;
    int busy;          /* a request is out */
    uint64_t t_sent_us;
    uint64_t not_before_ms; /* after a 429/503: honour Retry-After */
    char in[RESP_MAX];
    size_t inlen;
} api_conn_t;

typedef struct setup {
    sc_lt_opts_t *o;
    sc_lt_setup_stats_t *st;
    int next_space;    /* the next Space no connection has taken */
    float *lat;        /* create latencies, ms */
    size_t nlat;
    double credit;     /* --create-rate */
    uint64_t last_ms;
} setup_t;

static int api_connect(const sc_lt_opts_t *o)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&o->target, sizeof o->target) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The request of c's current step. */
static int build_request(const setup_t *su, const api_conn_t *c, char *out, size_t cap)
{
    const sc_lt_opts_t *o = su->o;
    const sc_lt_space_t *sp = &o->spaces[c->space];
    char body[256];
    const char *auth, *path;
    char pathbuf[128];
    int bl;
    if (c->step == STEP_CREATE) {
        char sched[64] = "";
        if (o->scheduled) /* a day ahead: nobody starts them during the run */
            snprintf(sched, sizeof sched, ",\"scheduled_start\":%lld", (long long)sc_wall_s() + 86400);
        bl = snprintf(body, sizeof body, "{\"title\":\"loadtest %d\"%s%s}", c->space, sched,
                      o->no_record ? ",\"record\":false" : "");
        auth = o->admin_key;
        path = "/api/spaces";
    } else if (c->step == STEP_START) {
        bl = 0;
        body[0] = '\0';
        auth = sp->host;
        snprintf(pathbuf, sizeof pathbuf, "/api/spaces/%s/start", sp->id);
        path = pathbuf;
    } else {
        bl = snprintf(body, sizeof body, "{\"name\":\"lt%d\",\"role\":\"speaker\"}", c->step - STEP_INVITE);
        auth = sp->host;
        snprintf(pathbuf, sizeof pathbuf, "/api/spaces/%s/speakers", sp->id);
        path = pathbuf;
    }
    return snprintf(out, cap,
                    "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    path, o->host, auth, bl, body);
}

/* A whole response in c->in? Its status and body (NUL-terminated in place), or 0 if not yet,
 * -1 if it cannot be read. */
static int response(api_conn_t *c, const char **body, int *retry_after)
{
    c->in[c->inlen] = '\0';
    sc_http_response_t res;
    int h = sc_http_parse_response(c->in, c->inlen, 0, &res);
    if (h == SC_INCOMPLETE)
        return c->inlen >= RESP_MAX - 1 ? -1 : 0;
    if (h < 0)
        return -1;
    const sc_slice_t *cl = sc_http_response_header(&res, "Content-Length");
    const sc_slice_t *ra = sc_http_response_header(&res, "Retry-After");
    size_t head = (size_t)h, blen = cl ? (size_t)strtoull(cl->base, NULL, 10) : 0;
    if (head + blen >= RESP_MAX)
        return -1;
    if (c->inlen < head + blen)
        return 0;
    *retry_after = ra ? atoi(ra->base) : -1;
    *body = c->in + head;
    c->in[head + blen] = '\0';
    return res.status;
}

static const char *json_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* c's step answered with status and body: the next step, or the next Space. */
static void step_done(setup_t *su, api_conn_t *c, int status, const char *body, int retry_after)
{
    sc_lt_opts_t *o = su->o;
    sc_lt_space_t *sp = &o->spaces[c->space];
    uint64_t now_us = sc_now_ns() / 1000;
    if (status == 429 || status == 503) { /* the same step again, when the server said */
        su->st->retried++;
        c->not_before_ms = sc_now_ms() + (uint64_t)(retry_after > 0 ? retry_after : 1) * 1000;
        return;
    }
    int want = c->step == STEP_START ? 200 : 201, ok = status == want;
    json_t *j = ok && c->step != STEP_START ? json_loads(body, 0, NULL) : NULL;
    if (ok && c->step == STEP_CREATE) {
        const char *id = json_str(j, "id"), *tok = json_str(j, "host_token");
        ok = id && tok && strlen(id) < sizeof sp->id && strlen(tok) < sizeof sp->host;
        if (ok) {
            snprintf(sp->id, sizeof sp->id, "%s", id);
            snprintf(sp->host, sizeof sp->host, "%s", tok);
            su->lat[su->nlat++] = (float)((double)(now_us - c->t_sent_us) / 1000.0);
        }
    } else if (ok && c->step >= STEP_INVITE) {
        const char *tok = json_str(j, "token");
        ok = tok && strlen(tok) < SC_LT_TOKEN;
        if (ok)
            snprintf(sp->tokens[c->step - STEP_INVITE], SC_LT_TOKEN, "%s", tok);
    }
    json_decref(j);
    if (!ok) {
        if (su->st->failed++ < 5)
            fprintf(stderr, "loadtest: setup of Space %d, step %d: HTTP %d %.200s\n", c->space, c->step, status, body);
        c->space = -1;
        return;
    }
    c->step = c->step == STEP_CREATE && o->scheduled ? STEP_INVITE : c->step + 1;
    if (c->step >= STEP_INVITE + o->speakers) {
        sp->ok = 1;
        su->st->created++;
        c->space = -1;
    }
}

/* Give idle connections work and send what is due. */
static void feed(setup_t *su, api_conn_t *cs, int n)
{
    uint64_t now = sc_now_ms();
    if (su->o->create_rate > 0) {
        su->credit = fmin(su->credit + (double)(now - su->last_ms) * su->o->create_rate / 1000.0, (double)n);
        su->last_ms = now;
    }
    for (int i = 0; i < n; i++) {
        api_conn_t *c = &cs[i];
        if (c->busy || now < c->not_before_ms)
            continue;
        if (c->space < 0) {
            if (su->next_space >= su->o->nspaces || (su->o->create_rate > 0 && su->credit < 1))
                continue;
            su->credit -= 1;
            c->space = su->next_space++;
            c->step = STEP_CREATE;
        }
        if (c->fd < 0 && (c->fd = api_connect(su->o)) < 0) {
            c->not_before_ms = now + 500;
            continue;
        }
        char req[2048];
        int len = build_request(su, c, req, sizeof req);
        c->inlen = 0;
        c->t_sent_us = sc_now_ns() / 1000;
        su->st->requests++;
        if (send_all(c->fd, req, (size_t)len) < 0) {
            close(c->fd);
            c->fd = -1;
            c->not_before_ms = now + 100;
            continue;
        }
        c->busy = 1;
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void alloc_spaces(sc_lt_opts_t *o)
{
    o->spaces = sc_calloc((size_t)o->nspaces, sizeof *o->spaces);
    if (o->speakers > 0) {
        char (*toks)[SC_LT_TOKEN] = sc_calloc((size_t)o->nspaces * (size_t)o->speakers, SC_LT_TOKEN);
        for (int i = 0; i < o->nspaces; i++)
            o->spaces[i].tokens = toks + (size_t)i * (size_t)o->speakers;
    }
}

/* "ID HOST_TOKEN [SPEAKER_TOKEN...]" per line, as --ids-out writes it. */
static int read_ids(sc_lt_opts_t *o)
{
    FILE *f = fopen(o->ids_in, "r");
    if (!f) {
        fprintf(stderr, "loadtest: cannot read %s: %s\n", o->ids_in, strerror(errno));
        return -1;
    }
    int lines = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        lines += ch == '\n';
    rewind(f);
    if (o->nspaces <= 0 || o->nspaces > lines)
        o->nspaces = lines;
    alloc_spaces(o);
    char *line = NULL;
    size_t cap = 0;
    int n = 0;
    while (n < o->nspaces && getline(&line, &cap, f) > 0) {
        sc_lt_space_t *sp = &o->spaces[n];
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        if (!tok || strlen(tok) >= sizeof sp->id)
            continue;
        snprintf(sp->id, sizeof sp->id, "%s", tok);
        if ((tok = strtok_r(NULL, " \n", &save)))
            snprintf(sp->host, sizeof sp->host, "%s", tok);
        int k = 0;
        while (k < o->speakers && (tok = strtok_r(NULL, " \n", &save)))
            snprintf(sp->tokens[k++], SC_LT_TOKEN, "%s", tok);
        sp->ok = k == o->speakers;
        n++;
    }
    free(line);
    fclose(f);
    o->nspaces = n;
    return n > 0 ? 0 : -1;
}

static void write_ids(const sc_lt_opts_t *o)
{
    FILE *f = fopen(o->ids_out, "w");
    if (!f) {
        fprintf(stderr, "loadtest: cannot write %s: %s\n", o->ids_out, strerror(errno));
        return;
    }
    for (int i = 0; i < o->nspaces; i++) {
        const sc_lt_space_t *sp = &o->spaces[i];
        if (!sp->ok)
            continue;
        fprintf(f, "%s %s", sp->id, sp->host);
        for (int k = 0; k < o->speakers; k++)
            fprintf(f, " %s", sp->tokens[k]);
        fputc('\n', f);
    }
    fclose(f);
}

/* Keep only the Spaces that were set up, so listener i % nspaces always has one. */
static void compact(sc_lt_opts_t *o)
{
    int n = 0;
    for (int i = 0; i < o->nspaces; i++) {
        if (!o->spaces[i].ok)
            continue;
        if (n != i) {
            char (*toks)[SC_LT_TOKEN] = o->spaces[n].tokens;
            if (toks)
                memcpy(toks, o->spaces[i].tokens, (size_t)o->speakers * SC_LT_TOKEN);
            o->spaces[n] = o->spaces[i];
            o->spaces[n].tokens = toks;
        }
        n++;
    }
    o->nspaces = n;
}

int sc_lt_setup(sc_lt_opts_t *o, sc_lt_setup_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (o->ids_in)
        return read_ids(o);
    if (o->icecast_pw) { /* mounts exist once their source connects: nothing to create */
        alloc_spaces(o);
        for (int i = 0; i < o->nspaces; i++) {
            /* the run's own names: a storm and a crowd of small mounts may run side by side */
            snprintf(o->spaces[i].id, sizeof o->spaces[i].id, "lt%dx%d", (int)getpid(), i);
            for (int k = 0; k < o->speakers; k++)
                snprintf(o->spaces[i].tokens[k], SC_LT_TOKEN, "%s", o->icecast_pw);
            o->spaces[i].ok = 1;
        }
        return 0;
    }
    if (!o->admin_key[0]) {
        fprintf(stderr, "loadtest: --spaces creates Spaces: it needs --admin-key (or --ids FILE)\n");
        return -1;
    }
    alloc_spaces(o);
    int n = SC_MAX(1, SC_MIN(o->api_conns > 0 ? o->api_conns : 8, API_CONNS_MAX));
    api_conn_t *cs = sc_calloc((size_t)n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        cs[i].fd = -1;
        cs[i].space = -1;
    }
    setup_t su = { .o = o, .st = st, .lat = sc_malloc(((size_t)o->nspaces + 1) * sizeof(float)),
                   .last_ms = sc_now_ms() };
    uint64_t t0 = sc_now_ns(), next_print = sc_now_ms() + 1000;
    for (;;) {
        feed(&su, cs, n);
        struct pollfd pf[API_CONNS_MAX];
        int busy = 0, idle_with_work = 0;
        for (int i = 0; i < n; i++) {
            pf[i] = (struct pollfd){ .fd = cs[i].busy ? cs[i].fd : -1, .events = POLLIN };
            busy += cs[i].busy;
            idle_with_work += !cs[i].busy && cs[i].space >= 0;
        }
        if (!busy && !idle_with_work && su.next_space >= o->nspaces)
            break;
        poll(pf, (nfds_t)n, busy ? 100 : 5);
        for (int i = 0; i < n; i++) {
            api_conn_t *c = &cs[i];
            if (!c->busy || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(c->fd, c->in + c->inlen, RESP_MAX - 1 - c->inlen, 0);
            const char *body = "";
            int retry_after = -1, status = r > 0 ? (c->inlen += (size_t)r, response(c, &body, &retry_after)) : -1;
            if (status == 0)
                continue;
            c->busy = 0;
            if (status < 0) { /* closed or unreadable: the same step on a new connection */
                close(c->fd);
                c->fd = -1;
                c->not_before_ms = sc_now_ms() + 100;
                continue;
            }
            step_done(&su, c, status, body, retry_after);
            if (strcasestr(c->in, "\r\nConnection: close")) {
                close(c->fd);
                c->fd = -1;
            }
        }
        if (!o->quiet && sc_now_ms() >= next_print) {
            fprintf(stderr, "setup: created=%zu failed=%zu of %d\n", st->created, st->failed, o->nspaces);
            next_print = sc_now_ms() + 1000;
        }
    }
    double secs = (double)(sc_now_ns() - t0) / 1e9;
    st->create_per_s = secs > 0 ? (double)st->created / secs : 0;
    qsort(su.lat, su.nlat, sizeof *su.lat, cmp_float);
    if (su.nlat) {
        st->create_p50_ms = su.lat[(su.nlat - 1) / 2];
        st->create_p99_ms = su.lat[(size_t)ceil(0.99 * (double)su.nlat) - 1];
        st->create_max_ms = su.lat[su.nlat - 1];
    }
    free(su.lat);
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    if (o->ids_out)
        write_ids(o);
    compact(o);
    return o->nspaces > 0 ? 0 : -1;
}
