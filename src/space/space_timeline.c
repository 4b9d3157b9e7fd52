/* space_timeline.c — a recorded Space's speaker timeline (timeline.h) and what is made of it:
 * who became audible or silent, as the mixer's own speaking detection says, and the host's
 * marks, at their place in the recording; chapters.json built from it, cached (for good once
 * the Space has ended). */
#include "spacecast/clip.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/log.h"
#include "spacecast/recorder.h"
#include "spacecast/room.h"
#include "spacecast/space.h"
#include "spacecast/timeline.h"
#include "space-int.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define SC_TIMELINE_READ_MAX (16u << 20) /* a day of 16 speakers flipping every second fits */

int64_t sc_space__recording_ms(sc_space_t *s)
{
    sc_room_t *room = sc_space_room_stable(s); /* recording: live, or ended */
    if (!room)
        return -1;
    pthread_mutex_lock(&room->mu); /* the recorder is the room's, written by its tick */
    int64_t ms = room->rec ? sc_recorder_position_ms(room->rec) : -1;
    pthread_mutex_unlock(&room->mu);
    return ms;
}

void sc_space__timeline_open(sc_space_t *s)
{
    if (!s->record || s->relayed)
        return;
    sc_timeline_t *t = sc_timeline_open(sc_config()->data, s->id);
    pthread_mutex_lock(&s->mu);
    if (!s->timeline) {
        s->timeline = t;
        t = NULL;
    }
    s->chapters_until_ms = 0;
    pthread_mutex_unlock(&s->mu);
    sc_timeline_close(t, -1); /* opened twice: keep the first */
}

void sc_space__timeline_close(sc_space_t *s, int64_t at_ms)
{
    pthread_mutex_lock(&s->mu);
    sc_timeline_t *t = s->timeline;
    s->timeline = NULL;
    s->chapters_until_ms = 0; /* the next chapters.json is the final one */
    pthread_mutex_unlock(&s->mu);
    sc_timeline_close(t, at_ms);
}

void sc_space_timeline_speaking(sc_space_t *s)
{
    pthread_mutex_lock(&s->mu);
    int on = s->timeline != NULL;
    pthread_mutex_unlock(&s->mu);
    if (!on)
        return;
    int64_t at = sc_space__recording_ms(s);
    if (at < 0)
        return;
    const char *names[SC_TIMELINE_MAX_SPEAKERS];
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nspeakers && n < SC_TIMELINE_MAX_SPEAKERS; i++)
        if (s->speakers[i].speaking && !s->speakers[i].removed)
            names[n++] = s->speakers[i].name; /* stable under mu */
    sc_timeline_speaking(s->timeline, at, names, n);
    pthread_mutex_unlock(&s->mu);
}

sc_space_rc_t sc_space_mark(sc_space_t *s, const char *title, int64_t *at_ms)
{
    pthread_mutex_lock(&s->mu);
    int live = s->state == SC_SPACE_LIVE, recorded = s->record;
    pthread_mutex_unlock(&s->mu);
    if (!live)
        return SC_SPACE_ESTATE;
    int64_t at = sc_space__recording_ms(s);
    if (!recorded || at < 0)
        return SC_SPACE_ENOENT;
    pthread_mutex_lock(&s->mu);
    int rc = s->timeline ? sc_timeline_mark(s->timeline, at, title) : -1;
    s->chapters_until_ms = 0;
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        return SC_SPACE_ESTORE;
    *at_ms = at;
    sc_space_event(s, "mark", json_pack("{s:s,s:I}", "title", title, "at_ms", (json_int_t)at), 0);
    sc_log_info("event=mark space=%s at_ms=%lld", s->id, (long long)at);
    return SC_SPACE_OK;
}

/* The whole of a (small) file, or NULL; *len its length. */
static char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    *len = 0;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || st.st_size > SC_TIMELINE_READ_MAX) {
        close(fd);
        return NULL;
    }
    char *buf = sc_malloc((size_t)st.st_size + 1);
    ssize_t n = pread(fd, buf, (size_t)st.st_size, 0);
    close(fd);
    *len = n > 0 ? (size_t)n : 0;
    buf[*len] = '\0';
    return buf;
}

static int64_t recording_length_ms(const char *id)
{
    char path[600];
    sc_recorder_path(sc_config()->data, id, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int64_t ms = -1;
    if (fd >= 0 && fstat(fd, &st) == 0)
        ms = sc_clip_recording_ms(fd, (uint64_t)st.st_size);
    if (fd >= 0)
        close(fd);
    return ms;
}

sc_page_t *sc_space_chapters(sc_space_t *s, int *final)
{
    uint64_t now = sc_now_ms();
    pthread_mutex_lock(&s->mu);
    sc_space_state_t state = s->state;
    if (s->chapters && now < s->chapters_until_ms) {
        sc_page_t *p = sc_page_ref(s->chapters);
        *final = s->chapters_until_ms == UINT64_MAX;
        pthread_mutex_unlock(&s->mu);
        return p;
    }
    char title[SC_SPACE_TITLE_MAX + 1];
    snprintf(title, sizeof title, "%s", s->title);
    pthread_mutex_unlock(&s->mu);
    if (!s->record || state == SC_SPACE_SCHEDULED)
        return NULL;
    int64_t length = recording_length_ms(s->id);
    if (length < 0)
        return NULL;
    char path[600];
    size_t len;
    sc_timeline_path(sc_config()->data, s->id, path, sizeof path);
    char *text = read_all(path, &len); /* none yet: nobody has spoken */
    json_t *ch = sc_timeline_chapters(text ? text : "", len, length, title, "replay.ogg");
    free(text);
    char *txt = json_dumps(ch, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(ch);
    sc_page_t *p = sc_page_from(txt, strlen(txt));
    free(txt);
    pthread_mutex_lock(&s->mu);
    /* final only if built from a closed timeline: the end may have come while we read */
    int done = state == SC_SPACE_ENDED && !s->timeline;
    sc_page_unref(s->chapters);
    s->chapters = sc_page_ref(p);
    s->chapters_until_ms = done ? UINT64_MAX : now + SC_CHAPTERS_LIVE_MS;
    pthread_mutex_unlock(&s->mu);
    *final = done;
    return p;
}
