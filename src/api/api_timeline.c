/* api_timeline.c — POST /api/spaces/{id}/marks (host, cohost): a chapter mark at this moment of
 * the recording; GET /spaces/{id}/chapters.json: the Podcasting 2.0 chapters of the recording
 * (speaker turns and marks), from memory while fresh, for good once the Space has ended. An
 * edge passes the origin's on, cached as the origin says. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"

#include <stdio.h>

#define CHAPTERS_TYPE "application/json+chapters" /* what the Podcasting 2.0 format asks for */

void sc_api_marks_post(sc_req_t *r)
{
    sc_space_t *s;
    json_t *b = sc_api_change_body(r, SC_ROLE_COHOST, &s);
    if (!b)
        return;
    const char *title, *bad;
    if (sc_api_mark_params(b, &title, &bad) != 0) {
        json_decref(b);
        sc_http_error(r, 400, "invalid", bad);
        return;
    }
    int64_t at = 0;
    sc_space_rc_t rc = sc_space_mark(s, title, &at);
    if (rc == SC_SPACE_ESTATE)
        sc_http_error(r, 409, "not_live", "marks are set while the Space is live");
    else if (rc == SC_SPACE_ENOENT)
        sc_http_error(r, 409, "not_recorded", "this Space is not recorded: there is nothing to mark");
    else if (rc == SC_SPACE_ESTORE)
        sc_api_not_stored(r, "the mark could not be written: try again");
    else {
        /* seconds as chapters.json has them (12.293, not 12.292999999999999) */
        json_t *o = json_pack("{s:s,s:f,s:I}", "title", title, "at", (double)at / 1000.0, "at_ms", (json_int_t)at);
        char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        json_decref(o);
        sc_http_respond(r, 201, "application/json", txt, strlen(txt), NULL);
        free(txt);
    }
    json_decref(b);
}

void sc_api_chapters_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    if (sc_api_from_origin(s)) {
        char key[96], path[128];
        snprintf(key, sizeof key, "chapters:%s", s->id);
        snprintf(path, sizeof path, "/spaces/%s/chapters.json", s->id);
        sc_api_proxy(r, key, path);
        return;
    }
    int final = 0;
    sc_page_t *p = sc_space_chapters(s, &final);
    if (!p) {
        if (!s->record)
            sc_http_error(r, 404, "not_recorded", "this Space is not recorded");
        else if (s->state == SC_SPACE_SCHEDULED)
            sc_http_error(r, 409, "not_started", "chapters begin when the Space goes live");
        else
            sc_http_error(r, 404, "not_found", "no recording");
        return;
    }
    /* a live Space's chapters grow: caches keep them as long as we do */
    sc_http_respond_page(r, 200, CHAPTERS_TYPE, p,
                         final ? "Cache-Control: public, max-age=86400\r\nAccess-Control-Allow-Origin: *\r\n"
                               : "Cache-Control: public, max-age=2\r\nAccess-Control-Allow-Origin: *\r\n");
}
