/* timeline.c — see timeline.h. */
#include "spacecast/timeline.h"
#include "spacecast/common.h"
#include "spacecast/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct sc_timeline {
    int fd;
    int failed;
    int resumed;     /* the file had lines before: say so with the first line of this run */
    size_t n;        /* audible now */
    char names[SC_TIMELINE_MAX_SPEAKERS][SC_TIMELINE_NAME_MAX + 1];
    char path[600];
};

void sc_timeline_path(const char *data_dir, const char *space_id, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/recordings/%s.timeline", data_dir, space_id);
}

/* --- writing ------------------------------------------------------------------------------- */

static int put_line(sc_timeline_t *t, json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!txt)
        return -1;
    size_t len = strlen(txt);
    txt[len] = '\n'; /* over the NUL: written by length */
    int rc = 0;
    if (!t->failed) {
        ssize_t w = write(t->fd, txt, len + 1);
        if (w != (ssize_t)(len + 1)) {
            /* a torn line is skipped by the reader; what follows it is lost, said once */
            t->failed = 1;
            sc_log_error("event=timeline_failed path=%s err=\"%s\"", t->path, w < 0 ? strerror(errno) : "short write");
        }
    }
    rc = t->failed ? -1 : 0;
    free(txt);
    return rc;
}

static void resume_line(sc_timeline_t *t, int64_t ms)
{
    if (t->resumed) {
        t->resumed = 0;
        put_line(t, json_pack("{s:I,s:b}", "ms", (json_int_t)ms, "resume", 1));
    }
}

sc_timeline_t *sc_timeline_open(const char *data_dir, const char *space_id)
{
    sc_timeline_t *t = sc_calloc(1, sizeof *t);
    sc_timeline_path(data_dir, space_id, t->path, sizeof t->path);
    t->fd = open(t->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        sc_log_error("event=timeline_failed path=%s err=\"%s\"", t->path, strerror(errno));
        free(t);
        return NULL;
    }
    struct stat st;
    t->resumed = fstat(t->fd, &st) == 0 && st.st_size > 0;
    return t;
}

static int audible(const sc_timeline_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], name))
            return 1;
    return 0;
}

void sc_timeline_speaking(sc_timeline_t *t, int64_t ms, const char *const *names, size_t n)
{
    if (!t)
        return;
    n = SC_MIN(n, (size_t)SC_TIMELINE_MAX_SPEAKERS);
    for (size_t i = 0; i < t->n; i++) { /* who fell silent */
        size_t k = 0;
        while (k < n && strcmp(names[k], t->names[i]))
            k++;
        if (k == n) {
            resume_line(t, ms);
            put_line(t, json_pack("{s:I,s:s}", "ms", (json_int_t)ms, "off", t->names[i]));
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (!audible(t, names[k])) {
            resume_line(t, ms);
            put_line(t, json_pack("{s:I,s:s}", "ms", (json_int_t)ms, "on", names[k]));
        }
    }
    for (size_t k = 0; k < n; k++)
        snprintf(t->names[k], sizeof t->names[k], "%s", names[k]);
    t->n = n;
}

int sc_timeline_mark(sc_timeline_t *t, int64_t ms, const char *title)
{
    if (!t)
        return -1;
    resume_line(t, ms);
    if (put_line(t, json_pack("{s:I,s:s}", "ms", (json_int_t)ms, "mark", title)) != 0)
        return -1;
    fdatasync(t->fd); /* a mark is what the host asked for by hand: it is on disk when acknowledged */
    return 0;
}

void sc_timeline_close(sc_timeline_t *t, int64_t ms)
{
    if (!t)
        return;
    if (ms >= 0)
        sc_timeline_speaking(t, ms, NULL, 0);
    fdatasync(t->fd);
    close(t->fd);
    free(t);
}

/* --- chapters ----------------------------------------------------------------------------- */

typedef struct span {
    int spk;
    int64_t a, b; /* [a, b) ms */
} span_t;

typedef struct chapter {
    int64_t start;
    const char *title;
    int spk; /* -1 for a mark */
} chapter_t;

typedef struct parsed {
    char **names;
    size_t nnames;
    int64_t *open;   /* per name: audible since, or -1 */
    span_t *spans;
    size_t nspans, capspans;
    chapter_t *marks;
    size_t nmarks, capmarks;
    int64_t last;
} parsed_t;

static int name_index(parsed_t *p, const char *name)
{
    for (size_t i = 0; i < p->nnames; i++)
        if (!strcmp(p->names[i], name))
            return (int)i;
    p->names = sc_realloc(p->names, (p->nnames + 1) * sizeof *p->names);
    p->open = sc_realloc(p->open, (p->nnames + 1) * sizeof *p->open);
    p->names[p->nnames] = sc_strndup(name, strlen(name));
    p->open[p->nnames] = -1;
    return (int)p->nnames++;
}

static void add_span(parsed_t *p, int spk, int64_t a, int64_t b)
{
    if (b <= a)
        return;
    if (p->nspans == p->capspans) {
        p->capspans = p->capspans ? p->capspans * 2 : 64;
        p->spans = sc_realloc(p->spans, p->capspans * sizeof *p->spans);
    }
    p->spans[p->nspans++] = (span_t){ spk, a, b };
}

static void close_all(parsed_t *p, int64_t ms)
{
    for (size_t i = 0; i < p->nnames; i++) {
        if (p->open[i] >= 0)
            add_span(p, (int)i, p->open[i], ms);
        p->open[i] = -1;
    }
}

static void parse_line(parsed_t *p, const char *line, size_t len)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    json_t *ms = json_object_get(o, "ms");
    if (!json_is_integer(ms) || json_integer_value(ms) < 0 || json_integer_value(ms) > (json_int_t)1 << 50) {
        json_decref(o);
        return;
    }
    int64_t t = json_integer_value(ms);
    /* lines come in time order; one that goes back (a foreign edit) is read as now */
    t = SC_MAX(t, p->last);
    p->last = t;
    const char *on = json_string_value(json_object_get(o, "on"));
    const char *off = json_string_value(json_object_get(o, "off"));
    const char *mark = json_string_value(json_object_get(o, "mark"));
    if (on && strlen(on) <= SC_TIMELINE_NAME_MAX) {
        int i = name_index(p, on);
        if (p->open[i] < 0)
            p->open[i] = t;
    } else if (off && strlen(off) <= SC_TIMELINE_NAME_MAX) {
        int i = name_index(p, off);
        if (p->open[i] >= 0)
            add_span(p, i, p->open[i], t);
        p->open[i] = -1;
    } else if (mark && strlen(mark) <= SC_TIMELINE_TITLE_MAX) {
        if (p->nmarks == p->capmarks) {
            p->capmarks = p->capmarks ? p->capmarks * 2 : 16;
            p->marks = sc_realloc(p->marks, p->capmarks * sizeof *p->marks);
        }
        p->marks[p->nmarks++] = (chapter_t){ t, sc_strndup(mark, strlen(mark)), -1 };
    } else if (json_is_true(json_object_get(o, "resume"))) {
        close_all(p, t); /* the server restarted: nobody is audible until the mixer says so */
    }
    json_decref(o);
}

static int by_speaker_then_start(const void *x, const void *y)
{
    const span_t *a = x, *b = y;
    if (a->spk != b->spk)
        return a->spk < b->spk ? -1 : 1;
    return a->a < b->a ? -1 : a->a > b->a;
}

static int by_start(const void *x, const void *y)
{
    const span_t *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

static int chapter_order(const void *x, const void *y)
{
    const chapter_t *a = x, *b = y;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return (a->spk >= 0) - (b->spk >= 0); /* a mark before the speaker chapter at the same time */
}

/* One speaker's spans closer than the merge gap become one turn; returns the turns' count. */
static size_t merge_turns(span_t *s, size_t n)
{
    if (n == 0)
        return 0;
    qsort(s, n, sizeof *s, by_speaker_then_start);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i].spk == s[out].spk && s[i].a - s[out].b < SC_TIMELINE_MERGE_GAP_MS)
            s[out].b = SC_MAX(s[out].b, s[i].b);
        else
            s[++out] = s[i];
    }
    n = out + 1;
    qsort(s, n, sizeof *s, by_start);
    return n;
}

static int by_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* Who holds the floor, turn by turn: the holder keeps it while audible; when they are not, the
 * audible speaker of the earliest long-enough turn takes it from that turn's start. Turns are
 * sorted by start; one speaker's turns never overlap, so at most nspk are audible at once. */
static size_t speaker_chapters(const span_t *turns, size_t n, size_t nspk, chapter_t *out)
{
    size_t nch = 0, next = 0, nact = 0;
    int holder = -1;
    int64_t last_start = 0;
    int64_t *times = sc_malloc((2 * n + 1) * sizeof *times);
    const span_t **act = sc_malloc((nspk + 1) * sizeof *act);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        times[nt++] = turns[i].a;
        times[nt++] = turns[i].b;
    }
    qsort(times, nt, sizeof *times, by_i64);
    for (size_t k = 0; k < nt; k++) {
        int64_t t = times[k];
        if (k > 0 && t == times[k - 1])
            continue;
        size_t keep = 0; /* what is over leaves, what begins joins */
        for (size_t i = 0; i < nact; i++)
            if (act[i]->b > t)
                act[keep++] = act[i];
        nact = keep;
        while (next < n && turns[next].a <= t) {
            if (turns[next].b > t && nact < nspk + 1)
                act[nact++] = &turns[next];
            next++;
        }
        const span_t *best = NULL;
        int holder_audible = 0;
        for (size_t i = 0; i < nact; i++) {
            const span_t *s = act[i];
            holder_audible |= s->spk == holder;
            if (s->b - s->a >= SC_TIMELINE_MIN_TURN_MS &&
                (!best || s->a < best->a || (s->a == best->a && s->b > best->b)))
                best = s;
        }
        if (holder_audible || !best || best->spk == holder)
            continue;
        int64_t start = nch == 0 ? 0 : SC_MAX(best->a, last_start);
        out[nch++] = (chapter_t){ start, NULL, best->spk };
        last_start = start;
        holder = best->spk;
    }
    if (nch == 0 && n > 0) /* only short turns: the first speaker opens the recording */
        out[nch++] = (chapter_t){ 0, NULL, turns[0].spk };
    free(act);
    free(times);
    return nch;
}

static json_t *seconds(int64_t ms) { return json_real((double)ms / 1000.0); }

json_t *sc_timeline_chapters(const char *text, size_t len, int64_t duration_ms, const char *title,
                             const char *file_name)
{
    parsed_t p = { 0 };
    for (size_t off = 0; off < len;) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t l = nl ? (size_t)(nl - (text + off)) : len - off;
        if (nl) /* a last line without its newline is torn: skipped */
            parse_line(&p, text + off, l);
        off += l + 1;
    }
    int64_t end = SC_MAX(duration_ms, p.last);
    close_all(&p, end);
    size_t nturns = merge_turns(p.spans, p.nspans);
    chapter_t *ch = sc_malloc((2 * nturns + p.nmarks + 1) * sizeof *ch);
    size_t n = speaker_chapters(p.spans, nturns, p.nnames, ch);
    for (size_t i = 0; i < p.nmarks; i++)
        ch[n++] = p.marks[i];
    qsort(ch, n, sizeof *ch, chapter_order);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        int64_t stop = end;
        for (size_t k = i + 1; k < n; k++) {
            if (ch[k].start > ch[i].start) {
                stop = ch[k].start;
                break;
            }
        }
        json_t *c = json_object();
        json_object_set_new(c, "startTime", seconds(ch[i].start));
        json_object_set_new(c, "endTime", seconds(SC_MAX(stop, ch[i].start)));
        if (ch[i].spk >= 0) {
            json_object_set_new(c, "title", json_string(p.names[ch[i].spk]));
            json_object_set_new(c, "speaker", json_string(p.names[ch[i].spk]));
        } else {
            json_object_set_new(c, "title", json_string(ch[i].title));
        }
        json_array_append_new(arr, c);
    }
    json_t *o = json_pack("{s:s,s:o}", "version", "1.2.0", "chapters", arr);
    if (title)
        json_object_set_new(o, "title", json_string(title));
    if (file_name)
        json_object_set_new(o, "fileName", json_string(file_name));
    free(ch);
    for (size_t i = 0; i < p.nmarks; i++)
        free((char *)p.marks[i].title);
    for (size_t i = 0; i < p.nnames; i++)
        free(p.names[i]);
    free(p.names);
    free(p.open);
    free(p.spans);
    free(p.marks);
    return o;
}
