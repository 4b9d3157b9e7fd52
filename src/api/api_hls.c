/* api_hls.c — GET /spaces/{id}/hls/{file}: playlists, init segments, segments and parts
 * from memory (shared pages built once by hls.c), the HLS replay from disk, and LL-HLS
 * blocking requests (_HLS_msn/_HLS_part, preload hints) parked off the worker: the
 * connection waits with no thread blocked until the HLS thread posts its wake to the
 * connection's own loop (sc_loop_post), or the deadline passes.
 *
 * Caching: init segments, segments and parts never change (their names carry a per-start
 * epoch), so any cache may keep them for a year; playlists live one second. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/hls.h"
#include "spacecast/room.h"
#include "spacecast/config.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define CORS "Access-Control-Allow-Origin: *\r\n"
#define IMMUTABLE "Cache-Control: public, max-age=31536000, immutable\r\n" CORS
#define SHORT_LIVED "Cache-Control: public, max-age=1\r\n" CORS
/* a blocking answer contains at least the part it was asked for: still right seconds later */
#define BLOCKED "Cache-Control: public, max-age=" SC_STR(SC_HLS_BLOCKED_MAX_AGE_S) "\r\n" CORS
#define FINAL "Cache-Control: public, max-age=3600\r\n" CORS
#define M3U8 "application/vnd.apple.mpegurl"
#define MP4 "audio/mp4"
#define REPLAY_INDEX_MAX (8u << 20) /* 2 s per ~45-byte line: days of audio */

typedef struct parked {
    sc_hls_wait_t w; /* first: the wake callback gets this pointer back */
    sc_hls_t *h;
    sc_space_t *space; /* a reference: h is the Space's, so the Space stays while this waits */
    sc_conn_t *conn; /* NULL once the connection closed while the wake was in flight */
    sc_loop_t *loop;
    int head_only;
    int playlist;    /* answer with the playlist of w.rend, else with file */
    int blocking;
    char file[64];
} parked_t;


/* Letters, digits, '.', '-', '_'; no leading dot: a name, never a path. */
static int name_ok(sc_slice_t s, char *out, size_t outsz)
{
    if (s.len == 0 || s.len >= outsz || s.base[0] == '.')
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.base[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '-' || ch == '_'))
            return 0;
    }
    memcpy(out, s.base, s.len);
    out[s.len] = '\0';
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* HLS exists once live, in a room that is then never replaced */
static sc_hls_t *space_hls(sc_space_t *s)
{
    sc_room_t *room = sc_space_room_stable(s);
    return room ? sc_room_hls(room) : NULL;
}

static void not_live(sc_req_t *r, sc_space_t *s)
{
    if (s->state == SC_SPACE_SCHEDULED)
        sc_http_error(r, 409, "not_started", "HLS starts when the Space goes live");
    else
        sc_http_error(r, 409, "ended", "this Space has ended: its replay is hls/replay.m3u8 and replay.ogg");
}

static parked_t *parked_new(sc_space_t *s)
{
    parked_t *p = sc_calloc(1, sizeof *p);
    p->space = sc_space_ref(s);
    return p;
}

static void parked_free(parked_t *p)
{
    sc_space_unref(p->space);
    free(p);
}

/* --- answers --------------------------------------------------------------------------- */

static void answer(sc_req_t *r, parked_t *p)
{
    if (p->playlist) {
        sc_page_t *pl = sc_hls_playlist(p->h, p->w.rend);
        int finished = sc_hls_finished(p->h);
        if (!pl && finished)
            sc_http_error(r, 409, "ended", "this Space has ended: its replay is hls/replay.m3u8 and replay.ogg");
        else if (!pl || (p->w.timed_out && p->blocking))
            sc_http_error_retry(r, 503, "not_ready", "the part asked for is not there yet", 1, NULL);
        else
            sc_http_respond_page(r, 200, M3U8, sc_page_ref(pl), finished ? FINAL : p->blocking ? BLOCKED : SHORT_LIVED);
        sc_page_unref(pl);
        return;
    }
    sc_page_t *page;
    sc_hls_wait_t again;
    if (sc_hls_find(p->h, p->file, &page, &again) == SC_OK)
        sc_http_respond_page(r, 200, MP4, sc_page_ref(page), IMMUTABLE);
    else if (p->w.timed_out)
        sc_http_error_retry(r, 503, "not_ready", "the part asked for is not there yet", 1, NULL);
    else
        sc_http_error(r, 404, "not_found", "no such segment");
    sc_page_unref(page);
}

/* On the connection's own worker: the HLS thread said the part exists (or time is up). */
static void wake_task(sc_loop_t *loop, void *arg)
{
    (void)loop;
    parked_t *p = arg;
    sc_conn_t *c = p->conn;
    if (c) {
        sc_req_t r = sc_http_unpark(c, p->head_only);
        answer(&r, p);
    }
    parked_free(p);
}

/* HLS thread, under the Space's HLS lock: only hand over. */
static void on_wake(sc_hls_wait_t *w)
{
    parked_t *p = (parked_t *)w;
    sc_loop_post(p->loop, wake_task, p);
}

static void parked_on_close(sc_conn_t *c, void *ctx)
{
    (void)c;
    parked_t *p = ctx;
    if (sc_hls_unwait(p->h, &p->w))
        parked_free(p);
    else
        p->conn = NULL; /* the wake is on its way to this loop: wake_task frees */
}

/* Answer now if what p waits for exists, else park the connection (p is consumed). */
static void park_or_answer(sc_req_t *r, sc_hls_t *h, parked_t *p)
{
    sc_conn_t *c = r->conn;
    p->h = h;
    p->conn = c;
    p->loop = c->io.loop;
    p->head_only = r->head_only;
    p->w.deadline_ms = sc_now_ms() + SC_HLS_WAIT_MS;
    p->w.wake = on_wake;
    int rc = sc_http_parked(c) ? SC_OK : SC_AGAIN; /* never the case for a plain request; do not park then */
    if (rc == SC_AGAIN) {
        sc_http_park(r, parked_on_close, p); /* before parking: a wake may be posted at once */
        rc = sc_hls_wait(h, &p->w);
    }
    if (rc == SC_AGAIN)
        return; /* answered later by wake_task, or closed */
    if (sc_http_parked(c))
        sc_http_unpark(c, r->head_only); /* answered now, on this request */
    if (rc == SC_ERR)
        sc_http_error(r, 400, "too_far_ahead", "_HLS_msn is beyond the next segment");
    else
        answer(r, p);
    parked_free(p);
}

/* --- playlists ------------------------------------------------------------------------- */

static int query_num(sc_req_t *r, const char *key, long long *out)
{
    char v[24];
    ssize_t n = sc_http_query_get(r->http->query, key, v, sizeof v);
    if (n < 0)
        return 0;
    char *end;
    if (n == 0 || v[0] < '0' || v[0] > '9')
        return -1;
    *out = strtoll(v, &end, 10);
    return *end ? -1 : 1;
}

static void media_playlist(sc_req_t *r, sc_space_t *s, sc_hls_t *h, int rend)
{
    if (!h) {
        not_live(r, s);
        return;
    }
    long long msn = 0, part = -1;
    int has_msn = query_num(r, "_HLS_msn", &msn), has_part = query_num(r, "_HLS_part", &part);
    if (has_msn < 0 || has_part < 0 || (has_part > 0 && has_msn <= 0) || part >= SC_HLS_PARTS) {
        sc_http_error(r, 400, "bad_query", "_HLS_msn/_HLS_part must be numbers, _HLS_part with _HLS_msn");
        return;
    }
    parked_t *p = parked_new(s);
    p->w.rend = rend;
    p->w.msn = has_msn > 0 ? (uint64_t)msn : 0; /* plain reload: as soon as a playlist exists */
    p->w.part = has_part > 0 ? (int)part : -1;
    p->w.need_playlist = 1;
    p->playlist = 1;
    p->blocking = has_msn > 0;
    park_or_answer(r, h, p);
}

static void master_playlist(sc_req_t *r, sc_space_t *s, sc_hls_t *h)
{
    if (!h) {
        not_live(r, s);
        return;
    }
    char body[512];
    int opus_bw = sc_config()->bitrate * 23 / 20; /* plus fMP4 overhead */
    int n = snprintf(body, sizeof body,
                     "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                     "#EXT-X-STREAM-INF:BANDWIDTH=72000,AVERAGE-BANDWIDTH=70000,CODECS=\"mp4a.40.2\"\nlive.m3u8\n"
                     "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"opus\"\nopus.m3u8\n",
                     opus_bw, opus_bw);
    sc_http_respond(r, 200, M3U8, body, (size_t)n, SHORT_LIVED);
}

/* The recorded segments as an EVENT playlist while live, VOD once ended. */
static void replay_playlist(sc_req_t *r, sc_space_t *s, sc_hls_t *h)
{
    if (!s->record) {
        sc_http_error(r, 404, "not_recorded", "this Space is not recorded");
        return;
    }
    char path[700];
    sc_hls_dir(sc_config()->data, s->id, path, sizeof path);
    strcat(path, "/index");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size > REPLAY_INDEX_MAX) {
        if (fd >= 0)
            close(fd);
        if (s->state == SC_SPACE_SCHEDULED)
            sc_http_error(r, 409, "not_started", "the recording starts when the Space goes live");
        else
            sc_http_error(r, 404, "not_found", "no HLS recording");
        return;
    }
    size_t len = (size_t)st.st_size;
    char *idx = sc_malloc(len + 1);
    ssize_t got = read(fd, idx, len);
    close(fd);
    len = got > 0 ? (size_t)got : 0;
    idx[len] = '\0';
    /* a Space that ended while the server was down has no end mark, but is complete */
    int ended = !strncmp(idx, "E\n", 2) || strstr(idx, "\nE\n") ||
                (s->state == SC_SPACE_ENDED && (!h || sc_hls_finished(h)));
    size_t cap = len * 2 + 512, n = 0;
    char *out = sc_malloc(cap);
    int maps = 0;
#define OUT(...) (n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__))
    OUT("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:%d\n#EXT-X-PLAYLIST-TYPE:%s\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n",
        SC_HLS_SEGMENT_SAMPLES / SC_HLS_RATE, ended ? "VOD" : "EVENT");
    /* only whole lines: the HLS thread may be appending the next one right now */
    for (char *line = idx, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        char name[64];
        double dur;
        if (line[0] == 'M' && sscanf(line, "M %63s", name) == 1)
            OUT("%s#EXT-X-MAP:URI=\"%s\"\n", maps++ ? "#EXT-X-DISCONTINUITY\n" : "", name);
        else if (line[0] == 'S' && maps && sscanf(line, "S %lf %63s", &dur, name) == 2)
            OUT("#EXTINF:%.5f,\n%s\n", dur, name);
    }
    free(idx);
    if (ended)
        OUT("#EXT-X-ENDLIST\n");
#undef OUT
    sc_http_respond(r, 200, M3U8, out, SC_MIN(n, cap - 1), ended ? "Cache-Control: public, max-age=86400\r\n" CORS
                                                                  : SHORT_LIVED);
    free(out);
}

/* --- media files ------------------------------------------------------------------------- */

static void from_disk(sc_req_t *r, sc_space_t *s, const char *name)
{
    char path[700];
    sc_hls_dir(sc_config()->data, s->id, path, sizeof path);
    size_t n = strlen(path);
    snprintf(path + n, sizeof path - n, "/%s", name);
    int fd = s->record ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        sc_http_error(r, 404, "not_found", "no such segment");
        return;
    }
    sc_http_respond_head(r, 200, MP4, (int64_t)st.st_size, IMMUTABLE);
    if (r->head_only) {
        close(fd);
        return;
    }
    sc_conn_send_file(r->conn, fd, 0, (uint64_t)st.st_size);
}

static void media_file(sc_req_t *r, sc_space_t *s, sc_hls_t *h, const char *name)
{
    if (!ends_with(name, ".m4s") && !ends_with(name, ".mp4")) {
        sc_http_error(r, 404, "not_found", "no such HLS resource");
        return;
    }
    if (h) {
        parked_t *p = parked_new(s);
        sc_page_t *page;
        if (name[0] == 'a') /* an AAC file (its rendition's prefix): a player of it is still there */
            sc_hls_want(h, SC_HLS_AAC);
        int rc = sc_hls_find(h, name, &page, &p->w);
        if (rc == SC_OK) {
            sc_http_respond_page(r, 200, MP4, page, IMMUTABLE); /* shared, not copied */
            parked_free(p);
            return;
        }
        if (rc == SC_AGAIN) { /* the part a preload hint names: held until it exists */
            snprintf(p->file, sizeof p->file, "%s", name);
            park_or_answer(r, h, p);
            return;
        }
        parked_free(p);
    }
    from_disk(r, s, name);
}

void sc_api_hls_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    char name[64];
    if (!name_ok(r->args[1], name, sizeof name)) {
        sc_http_error(r, 404, "not_found", "no such HLS resource");
        return;
    }
    sc_hls_t *h = space_hls(s);
    if (h && s->state == SC_SPACE_LIVE)
        sc_space_hls_request(s); /* the HLS audience, for the host's numbers */
    if (!strcmp(name, "live.m3u8")) {
        sc_hls_want(h, SC_HLS_AAC); /* encoded only while asked for: this starts (or keeps) it */
        media_playlist(r, s, h, SC_HLS_AAC);
    } else if (!strcmp(name, "opus.m3u8"))
        media_playlist(r, s, h, SC_HLS_OPUS);
    else if (!strcmp(name, "master.m3u8"))
        master_playlist(r, s, h);
    else if (!strcmp(name, "replay.m3u8"))
        replay_playlist(r, s, h);
    else
        media_file(r, s, h, name);
}
