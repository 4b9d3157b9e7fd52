/* api_clip.c — GET /spaces/{id}/clip.ogg?start=S&end=E: up to 60 s of the recording as an Ogg/Opus
 * file of its own (audio/clip.c: page copies, no decoding). A clip that lasts what was asked
 * never changes: it is kept in memory and any cache may keep it for a year. One cut short by
 * the end of a live recording is answered fresh each time. An edge passes the origin's on. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/clip.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/pagecache.h"
#include "spacecast/recorder.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLIP_FOREVER "public, max-age=31536000, immutable"
#define CLIP_KEEP_MS (24ull * 3600 * 1000) /* in this server's memory: a day, if the budget allows */

static void fmt_time(int64_t ms, char *out, size_t outsz)
{
    int64_t s = ms / 1000;
    if (s >= 3600)
        snprintf(out, outsz, "%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60), (int)(s % 60));
    else
        snprintf(out, outsz, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

void sc_api_clip_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    int64_t start, end;
    const char *bad;
    if (sc_api_clip_range(r->http->query, &start, &end, &bad) != 0) {
        sc_http_error(r, 400, "invalid", bad);
        return;
    }
    char key[128];
    snprintf(key, sizeof key, "clip:%s:%" PRId64 ":%" PRId64, s->id, start, end);
    if (sc_api_from_origin(s)) {
        char path[192];
        snprintf(path, sizeof path, "/spaces/%s/clip.ogg?start=%" PRId64 ".%03d&end=%" PRId64 ".%03d", s->id,
                 start / 1000, (int)(start % 1000), end / 1000, (int)(end % 1000));
        sc_api_proxy(r, key, path);
        return;
    }
    char range[64];
    sc_api_range_of(r, range, sizeof range);
    sc_cached_t hit;
    if (sc_pagecache_get(sc_api_cache(), key, sc_now_ms(), &hit)) {
        sc_api_respond_body(r, range, hit.page, hit.ctype, hit.cache_control);
        return;
    }
    if (!s->record) {
        sc_http_error(r, 404, "not_recorded", "this Space is not recorded");
        return;
    }
    char path[600];
    sc_recorder_path(sc_config()->data, s->id, path, sizeof path);
    /* read before the size: a recording that has ended and has its end-of-stream page will not
     * grow (the state turns ended a moment before the recorder writes its last pages) */
    int ended = s->state == SC_SPACE_ENDED && sc_recorder_complete(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        if (s->state == SC_SPACE_SCHEDULED)
            sc_http_error(r, 409, "not_started", "the recording starts when the Space goes live");
        else
            sc_http_error(r, 404, "not_found", "no recording");
        return;
    }
    char a[24], b[24], title[SC_SPACE_TITLE_MAX + 1 + 64];
    fmt_time(start, a, sizeof a);
    fmt_time(end, b, sizeof b);
    snprintf(title, sizeof title, "%s (%s-%s)", s->title, a, b);
    sc_clip_t clip;
    sc_clip_rc_t rc = sc_clip_cut(fd, (uint64_t)st.st_size, start, end, title, &clip);
    int64_t length = rc == SC_CLIP_ERANGE ? sc_clip_recording_ms(fd, (uint64_t)st.st_size) : -1;
    close(fd);
    if (rc == SC_CLIP_ERANGE) {
        char msg[128];
        snprintf(msg, sizeof msg, "the recording is %" PRId64 ".%03d s long: start within it", SC_MAX(length, 0) / 1000,
                 (int)(SC_MAX(length, 0) % 1000));
        sc_http_error(r, ended ? 400 : 409, ended ? "out_of_range" : "not_yet", msg);
        return;
    }
    if (rc != SC_CLIP_OK) {
        sc_http_error(r, 500, "unreadable", "the recording could not be read");
        return;
    }
    sc_page_t *p = sc_page_from(clip.data, clip.len);
    free(clip.data);
    /* whole, or cut short by a recording that will not grow: the same bytes for every request */
    int fixed = clip.complete || ended;
    if (fixed)
        sc_pagecache_put(sc_api_cache(), key, p, "audio/ogg", CLIP_FOREVER, sc_now_ms() + CLIP_KEEP_MS);
    sc_api_respond_body(r, range, p, "audio/ogg", fixed ? CLIP_FOREVER : "no-cache");
}
