/* api_replay.c — GET /spaces/{id}/replay.ogg: the recording file with Range support, sent
 * with sendfile(). While the Space is live the file grows; each request sees its size then. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/common.h"
#include "spacecast/recorder.h"
#include "spacecast/config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

void sc_api_replay_get(sc_req_t *r)
{
    sc_space_t *s = sc_api_space(r);
    if (!s)
        return;
    char path[600];
    sc_recorder_path(sc_config()->data, s->id, path, sizeof path);
    /* an ended Space's recording is final, and cacheable for a day, only once it ends with its
     * end-of-stream page: one cut short (the disk was full at the end, or a crash) is repaired
     * first (by the recorder's sync thread; here, for a Space that ended before this process
     * started, whose file nothing else touches), and until then answered no-cache */
    int complete = s->state == SC_SPACE_ENDED && sc_recorder_complete(path);
    if (s->state == SC_SPACE_ENDED && !complete && !sc_space_room_stable(s) && sc_recorder_repair(path, 1) == 0)
        complete = sc_recorder_complete(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        if (!s->record)
            sc_http_error(r, 404, "not_recorded", "this Space is not recorded");
        else if (s->state == SC_SPACE_SCHEDULED)
            sc_http_error(r, 409, "not_started", "the recording starts when the Space goes live");
        else
            sc_http_error(r, 404, "not_found", "no recording");
        return;
    }
    uint64_t size = (uint64_t)st.st_size, start = 0, end = size ? size - 1 : 0;
    int status = 200;
    const sc_slice_t *range = sc_http_find_header(r->http, "Range");
    if (range) {
        int rc = sc_http_parse_range(*range, size, &start, &end);
        if (rc < 0) {
            close(fd);
            char hdr[96];
            snprintf(hdr, sizeof hdr, "Content-Range: bytes */%" PRIu64 "\r\nAccept-Ranges: bytes\r\n", size);
            static const char body[] = "{\"error\":{\"code\":\"range\",\"message\":\"range not satisfiable\"}}";
            sc_http_respond(r, 416, "application/json", body, sizeof body - 1, hdr);
            return;
        }
        if (rc == 0)
            status = 206;
    }
    uint64_t len = size ? end - start + 1 : 0;
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "Accept-Ranges: bytes\r\nAccess-Control-Allow-Origin: *\r\nCache-Control: %s\r\n",
                     complete ? "public, max-age=86400" : "no-cache");
    if (status == 206)
        snprintf(hdr + n, sizeof hdr - (size_t)n, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", start,
                 end, size);
    sc_http_respond_head(r, status, "audio/ogg", (int64_t)len, hdr);
    if (r->head_only || len == 0) {
        close(fd);
        if (!r->head_only)
            sc_conn_flush(r->conn);
        return;
    }
    sc_conn_send_file(r->conn, fd, start, start + len);
}
