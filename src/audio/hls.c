/* hls.c — the HLS pipeline: the engine's Opus mix packets → one HLS thread that, per live
 * Space, wraps the packets as they are into Opus fragments and, while someone asks for AAC,
 * decodes them once into an AAC-LC encoder; both renditions are cut on the same 200 ms part /
 * 2 s segment timeline,
 * published as shared pages with a playlist rebuilt once per part, and parked blocking
 * requests are woken when their part exists. HTTP is api/api_hls.c; boxes are fmp4.c.
 *
 * Timeline: part p of a rendition ends at the first frame boundary at or after
 * (p + 1) * 200 ms, so Opus parts are exactly 200 ms and AAC parts 9 or 10 frames of 1024;
 * segment n is parts 10n..10n+9 of both renditions, whatever their frame sizes. */
#include "spacecast/hls.h"
#include "spacecast/common.h"
#include "spacecast/fmp4.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEEP 10         /* segments kept in memory per rendition: 20 s behind the edge */
#define LIST 6          /* segments listed in a live playlist: 12 s */
#define PART_LIST 2     /* complete segments whose parts are still listed (LL-HLS) */
/* Complete segments whose parts are still served: a playlist that listed them may be served
 * by a cache for SC_HLS_BLOCKED_MAX_AGE_S more (three segments), and its player may take one
 * more to ask. A part a cached playlist names must never be a 404 (a cache does not keep a
 * 404, so every player behind it would bring that request back to the origin). */
#define PART_KEEP (PART_LIST + SC_HLS_BLOCKED_MAX_AGE_S * SC_HLS_RATE / SC_HLS_SEGMENT_SAMPLES + 1)
_Static_assert(PART_KEEP + 1 < KEEP, "a segment whose parts are served is still in memory");
#define QUEUE_MAX 250   /* packets (5 s) waiting for the HLS thread before new ones are dropped */
#define MAX_FRAMES 96   /* frames per part: 10 normally; 80 if a sender used 2.5 ms Opus frames */
#define PKT_MAX 1500
#define AAC_BITRATE 64000
#define AAC_FRAME 1024
#define PCM_MAX 5760    /* samples of the longest Opus packet (120 ms) */
#define RETIRE_MS 60000 /* an ended Space's last segments stay in memory this long, then only on disk */
/* The AAC rendition is encoded only while someone asks for it: it starts at the first request
 * and stops after AAC_IDLE_MS without one. It starts warm: the last HIST_PKTS mix packets (6.4 s)
 * are kept, so a new AAC run begins two segments back and its first playlist lists them at once. */
#define AAC_IDLE_MS 60000 /* the default of sc_hls_set_aac_idle_ms */
#define HIST_PKTS 320
#define AAC_BACK 2      /* complete segments a new AAC run begins with, when the history holds them */

typedef struct qpkt {
    struct qpkt *next;
    uint64_t t;          /* HLS thread: the Opus rendition's time of its first sample */
    uint16_t len;
    uint8_t data[];
} qpkt_t;

typedef struct part {
    sc_page_t *page;
    uint32_t samples;
} part_t;

typedef struct seg {
    uint64_t msn;        /* UINT64_MAX: slot never used */
    uint64_t t0;         /* rendition time of its first sample */
    uint32_t samples;
    int nparts;
    part_t parts[SC_HLS_PARTS];
    sc_page_t *page;     /* the whole segment, once complete */
} seg_t;

typedef struct rend {
    int kind;
    int enabled;         /* may run at all (AAC: libavcodec has an encoder) */
    int running;         /* HLS thread: being cut now (Opus from the first packet; AAC on demand) */
    uint64_t first_msn;  /* the first segment of this run: playlists never list earlier ones */
    char name[24];       /* file prefix: a kind letter and the epoch, unique per process start */
    const char *codecs;
    double part_target;
    /* the part being built (HLS thread only) */
    uint64_t t;          /* samples produced so far */
    uint64_t part_no;    /* parts closed so far: index of the one being built */
    uint64_t part_t0;
    uint32_t seq;        /* moof sequence number */
    uint32_t sizes[MAX_FRAMES], durs[MAX_FRAMES];
    size_t n;
    uint8_t *buf;
    size_t len, cap;
    /* published (h->mu); the HLS thread, their only writer, may read them unlocked */
    sc_page_t *init;
    sc_page_t *playlist;
    seg_t segs[KEEP];
    uint64_t cur_msn;    /* the segment being built */
} rend_t;

struct sc_hls {
    struct sc_hls *next; /* g.active */
    int in_active;       /* on g.active (g.mu): only the HLS thread takes it off */
    int free_req;        /* sc_hls_free was called while on g.active (g.mu): the HLS thread frees */
    char id[64];
    char dir[600];
    uint64_t msn0;
    uint16_t preskip;
    /* engine → HLS thread (g.mu) */
    qpkt_t *qhead, *qtail;
    int qlen;
    int end_req;
    int64_t wall0_ms;    /* wall clock of the first packet: EXT-X-PROGRAM-DATE-TIME */
    int aac_start_req;   /* a request wants AAC and it is not running (g.mu) */
    _Atomic uint64_t aac_wanted_ms; /* the last request for the AAC rendition (sc_now_ms) */
    atomic_int aac_on;   /* the AAC rendition is running (the fast path of sc_hls_want) */
    /* HLS thread only */
    qpkt_t *work;
    qpkt_t *hist, *hist_tail; /* the last HIST_PKTS packets processed, oldest first */
    int nhist;
    int ending, started, want_aac;
    int aac_warming;     /* encoding the history of a new AAC run: not published yet */
    OpusDecoder *dec;
    AVCodecContext *aac;
    AVFrame *frame;
    AVPacket *pkt;
    float fifo[AAC_FRAME];
    int nfifo;
    int64_t aac_pts;
    int index_fd;
    /* published */
    pthread_mutex_t mu;
    rend_t r[SC_HLS_NREND];
    int finished;
    uint64_t retire_ms;  /* HLS thread: when to drop the pages of an ended Space */
    sc_hls_wait_t *waiters;
};

static struct {
    pthread_once_t once;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    sc_hls_t *active;
    int kicked;          /* work is queued for the HLS thread (under mu) */
    atomic_ullong segments, dropped, parked;
    atomic_ullong aac_starts;
    atomic_int aac_running;
    atomic_int aac_idle_ms;
} g = { .once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .aac_idle_ms = AAC_IDLE_MS };

void sc_hls_set_aac_idle_ms(int ms) { atomic_store(&g.aac_idle_ms, ms); }

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static seg_t *slot(rend_t *r, uint64_t msn) { return &r->segs[msn % KEEP]; }

/* --- waiters (under h->mu) ------------------------------------------------------------ */

static int ready(sc_hls_t *h, const sc_hls_wait_t *w)
{
    rend_t *r = &h->r[w->rend];
    if (w->need_playlist && !r->playlist)
        return 0;
    if (w->msn < r->cur_msn)
        return 1;
    if (w->msn > r->cur_msn || w->part < 0)
        return 0;
    const seg_t *s = slot(r, w->msn);
    return s->msn == w->msn && w->part < s->nparts;
}

#define WAKE_AAC (1u << SC_HLS_AAC)
#define WAKE_ALL ((1u << SC_HLS_NREND) - 1)

/* Answer the waiters whose part is there or whose time is up, and every waiter of the
 * renditions in `all` (a bit per rendition): the ones that stopped or ended, and no others
 * (an Opus waiter answered when the AAC stops would get a playlist without its part, which a
 * cache keeps for its max-age). */
static void wake_ready(sc_hls_t *h, unsigned all)
{
    uint64_t now = sc_now_ms();
    for (sc_hls_wait_t **pp = &h->waiters; *pp;) {
        sc_hls_wait_t *w = *pp;
        int ok = (all >> w->rend & 1u) || ready(h, w);
        if (!ok && now < w->deadline_ms) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->next = NULL;
        w->posted = 1;
        w->timed_out = !ok;
        atomic_fetch_sub(&g.parked, 1);
        w->wake(w);
    }
}

int sc_hls_wait(sc_hls_t *h, sc_hls_wait_t *w)
{
    if (w->rend < 0 || w->rend >= SC_HLS_NREND)
        return SC_ERR;
    pthread_mutex_lock(&h->mu);
    rend_t *r = &h->r[w->rend];
    int rc = SC_AGAIN;
    if (h->finished || !r->enabled || ready(h, w))
        rc = SC_OK;
    else if (w->msn > r->cur_msn + 1) /* beyond the last segment + 2: the spec's 400 */
        rc = SC_ERR;
    if (rc == SC_AGAIN) {
        w->posted = w->timed_out = 0;
        w->next = h->waiters;
        h->waiters = w;
        atomic_fetch_add(&g.parked, 1);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int sc_hls_unwait(sc_hls_t *h, sc_hls_wait_t *w)
{
    int was_parked = 0;
    pthread_mutex_lock(&h->mu);
    if (!w->posted) {
        for (sc_hls_wait_t **pp = &h->waiters; *pp; pp = &(*pp)->next) {
            if (*pp == w) {
                *pp = w->next;
                atomic_fetch_sub(&g.parked, 1);
                break;
            }
        }
        was_parked = 1;
    }
    pthread_mutex_unlock(&h->mu);
    return was_parked;
}

/* --- lookups (workers) ---------------------------------------------------------------- */

sc_page_t *sc_hls_playlist(sc_hls_t *h, int rend)
{
    if (rend < 0 || rend >= SC_HLS_NREND)
        return NULL;
    pthread_mutex_lock(&h->mu);
    sc_page_t *p = sc_page_ref(h->r[rend].playlist);
    pthread_mutex_unlock(&h->mu);
    return p;
}

int sc_hls_finished(sc_hls_t *h)
{
    pthread_mutex_lock(&h->mu);
    int f = h->finished;
    pthread_mutex_unlock(&h->mu);
    return f;
}

/* "<msn>.m4s" or "<msn>.<part>.m4s"; 0 or -1. */
static int parse_media(const char *p, uint64_t *msn, int *part)
{
    char *end;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    *msn = strtoull(p, &end, 10);
    *part = -1;
    if (errno || *end != '.')
        return -1;
    if (end[1] >= '0' && end[1] <= '9') {
        unsigned long k = strtoul(end + 1, &end, 10);
        if (k >= SC_HLS_PARTS || *end != '.')
            return -1;
        *part = (int)k;
    }
    return strcmp(end, ".m4s") == 0 ? 0 : -1;
}

int sc_hls_find(sc_hls_t *h, const char *name, sc_page_t **page, sc_hls_wait_t *w)
{
    *page = NULL;
    for (int k = 0; k < SC_HLS_NREND; k++) {
        rend_t *r = &h->r[k];
        size_t pl = strlen(r->name);
        if (strncmp(name, r->name, pl) != 0 || name[pl] != '-')
            continue;
        const char *p = name + pl + 1;
        uint64_t msn;
        int part, rc = SC_ERR;
        pthread_mutex_lock(&h->mu);
        if (!strcmp(p, "init.mp4")) {
            *page = sc_page_ref(r->init);
        } else if (parse_media(p, &msn, &part) == 0) {
            seg_t *s = slot(r, msn);
            if (s->msn == msn)
                *page = sc_page_ref(part < 0 ? s->page : part < s->nparts ? s->parts[part].page : NULL);
            /* Anything of the segment being built or the next one is worth waiting for: the
             * preload hint's part, and whatever a player a little ahead of our clock asks. A
             * 404 for it would not be cached, so every player behind an edge cache would
             * bring the same request back (RFC 8216bis holds blocking requests up to two
             * segments ahead likewise); further ahead is no player's. */
            if (!*page && !h->finished && r->enabled && msn >= r->cur_msn && msn <= r->cur_msn + 1) {
                w->rend = k;
                w->msn = msn;
                w->part = part;
                w->need_playlist = 0;
                rc = SC_AGAIN;
            }
        }
        pthread_mutex_unlock(&h->mu);
        return *page ? SC_OK : rc;
    }
    return SC_ERR;
}

/* --- playlists ------------------------------------------------------------------------ */

static size_t pdt(char *out, size_t cap, int64_t ms)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    return (size_t)snprintf(out, cap, "#EXT-X-PROGRAM-DATE-TIME:%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\n",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                            (int)(ms % 1000));
}

/* The live media playlist of r as it is now (HLS thread; reads what only it writes). */
static sc_page_t *render(sc_hls_t *h, rend_t *r, int finished)
{
    size_t cap = 16384, n = 0;
    char *b = sc_malloc(cap);
#define OUT(...) (n += (size_t)snprintf(b + n, n < cap ? cap - n : 0, __VA_ARGS__))
    uint64_t cur = r->cur_msn, lo = cur > h->msn0 + LIST ? cur - LIST : h->msn0;
    if (lo < r->first_msn) /* an AAC run started later: its first segment opens the list */
        lo = r->first_msn;
    OUT("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:%d\n", SC_HLS_SEGMENT_SAMPLES / SC_HLS_RATE);
    OUT("#EXT-X-PART-INF:PART-TARGET=%.5f\n", r->part_target);
    OUT("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.5f\n", 3 * r->part_target);
    OUT("#EXT-X-MEDIA-SEQUENCE:%llu\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"%s-init.mp4\"\n",
        (unsigned long long)lo, r->name);
    for (uint64_t msn = lo; msn <= cur; msn++) {
        seg_t *s = slot(r, msn);
        if (s->msn != msn || (!s->page && !s->nparts))
            continue;
        if (n < cap)
            n += pdt(b + n, cap - n, h->wall0_ms + (int64_t)(s->t0 * 1000 / SC_HLS_RATE));
        if (!finished && msn + PART_LIST >= cur)
            for (int k = 0; k < s->nparts && s->parts[k].page; k++)
                OUT("#EXT-X-PART:DURATION=%.5f,URI=\"%s-%llu.%d.m4s\",INDEPENDENT=YES\n",
                    (double)s->parts[k].samples / SC_HLS_RATE, r->name, (unsigned long long)msn, k);
        if (s->page)
            OUT("#EXTINF:%.5f,\n%s-%llu.m4s\n", (double)s->samples / SC_HLS_RATE, r->name, (unsigned long long)msn);
    }
    if (finished) {
        OUT("#EXT-X-ENDLIST\n");
    } else {
        seg_t *s = slot(r, cur);
        OUT("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s-%llu.%d.m4s\"\n", r->name, (unsigned long long)cur,
            s->msn == cur ? s->nparts : 0);
    }
#undef OUT
    sc_page_t *p = sc_page_from(b, SC_MIN(n, cap - 1));
    free(b);
    return p;
}

/* Swap in a new live playlist and wake whoever waited for what was just published (the final
 * ones go all at once: finish). */
static void publish(sc_hls_t *h, rend_t *r)
{
    if (h->aac_warming && r->kind == SC_HLS_AAC)
        return; /* a starting AAC run is published once, whole (aac_start) */
    sc_page_t *pl = r->cur_msn > h->msn0 ? render(h, r, 0) : NULL, *old;
    pthread_mutex_lock(&h->mu);
    old = r->playlist;
    if (pl)
        r->playlist = pl;
    else
        old = NULL;
    wake_ready(h, 0);
    pthread_mutex_unlock(&h->mu);
    sc_page_unref(old);
}

/* --- disk: the AAC segments of a recorded Space, for replay.m3u8 ----------------------- */

void sc_hls_dir(const char *data_dir, const char *space_id, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/hls/%s", data_dir, space_id);
}

static void disk_fail(sc_hls_t *h, const char *what)
{
    sc_log_warn("event=hls_disk_error space=%s op=%s err=\"%s\"", h->id, what, strerror(errno));
    if (h->index_fd >= 0)
        close(h->index_fd);
    h->index_fd = -1;
    h->dir[0] = '\0'; /* the live HLS goes on without the replay copy */
}

/* Write a small file whole (tmp + rename: a reader never sees half of it). */
static void disk_write(sc_hls_t *h, const char *name, const void *data, size_t len)
{
    char path[700], tmp[710];
    snprintf(path, sizeof path, "%s/%s", h->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0 || rename(tmp, path) != 0) {
        disk_fail(h, "write");
        return;
    }
}

static void disk_index(sc_hls_t *h, const char *line)
{
    size_t len = strlen(line);
    if (h->index_fd >= 0 && write(h->index_fd, line, len) != (ssize_t)len)
        disk_fail(h, "index");
}

static void disk_start(sc_hls_t *h)
{
    if (!h->dir[0] || !h->r[SC_HLS_OPUS].init)
        return;
    char parent[600];
    snprintf(parent, sizeof parent, "%s", h->dir);
    char *slash = strrchr(parent, '/');
    if (slash)
        *slash = '\0';
    if ((mkdir(parent, 0755) < 0 && errno != EEXIST) || (mkdir(h->dir, 0755) < 0 && errno != EEXIST)) {
        disk_fail(h, "mkdir");
        return;
    }
    char path[700], line[128];
    snprintf(path, sizeof path, "%s/index", h->dir);
    h->index_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (h->index_fd < 0) {
        disk_fail(h, "open");
        return;
    }
    snprintf(line, sizeof line, "%s-init.mp4", h->r[SC_HLS_OPUS].name);
    disk_write(h, line, h->r[SC_HLS_OPUS].init->data, h->r[SC_HLS_OPUS].init->len);
    snprintf(line, sizeof line, "M %s-init.mp4\n", h->r[SC_HLS_OPUS].name);
    disk_index(h, line);
}

/* --- cutting parts and segments (HLS thread) -------------------------------------------- */

static void seg_reset(seg_t *s, uint64_t msn, uint64_t t0)
{
    for (int k = 0; k < s->nparts; k++)
        sc_page_unref(s->parts[k].page);
    sc_page_unref(s->page);
    memset(s, 0, sizeof *s);
    s->msn = msn;
    s->t0 = t0;
}

static void seg_complete(sc_hls_t *h, rend_t *r, seg_t *s)
{
    size_t total = 0;
    for (int k = 0; k < s->nparts; k++)
        total += s->parts[k].page->len;
    sc_page_t *page = sc_page_new(total);
    total = 0;
    for (int k = 0; k < s->nparts; k++) {
        memcpy(page->data + total, s->parts[k].page->data, s->parts[k].page->len);
        total += s->parts[k].page->len;
    }
    pthread_mutex_lock(&h->mu);
    s->page = page;
    r->cur_msn = s->msn + 1;
    /* parts no playlist a cache may still hold names: keep only the whole segment */
    seg_t *old = slot(r, s->msn - PART_KEEP - 1);
    if (s->msn >= h->msn0 + PART_KEEP + 1 && old->msn == s->msn - PART_KEEP - 1) {
        for (int k = 0; k < old->nparts; k++) {
            sc_page_unref(old->parts[k].page);
            old->parts[k].page = NULL;
        }
    }
    pthread_mutex_unlock(&h->mu);
    atomic_fetch_add(&g.segments, 1);
    /* the replay copy is the Opus rendition: always cut, from the very packets of the recording */
    if (r->kind == SC_HLS_OPUS && h->dir[0] && h->index_fd >= 0) {
        char name[64], line[128];
        snprintf(name, sizeof name, "%s-%llu.m4s", r->name, (unsigned long long)s->msn);
        disk_write(h, name, page->data, page->len);
        snprintf(line, sizeof line, "S %.5f %s\n", (double)s->samples / SC_HLS_RATE, name);
        disk_index(h, line);
    }
}

/* Close the part being built (and its segment after the tenth part, or at the end). */
static void close_part(sc_hls_t *h, rend_t *r, int final)
{
    uint64_t msn = h->msn0 + r->part_no / SC_HLS_PARTS;
    int k = (int)(r->part_no % SC_HLS_PARTS);
    seg_t *s = slot(r, msn);
    if (r->n) {
        sc_fmp4_buf_t b = { 0 };
        sc_fmp4_write_fragment(&b, ++r->seq, h->msn0 * SC_HLS_SEGMENT_SAMPLES + r->part_t0, r->sizes, r->durs, r->n,
                               r->buf);
        sc_page_t *page = sc_page_from(b.data, b.len);
        free(b.data);
        pthread_mutex_lock(&h->mu);
        if (k == 0)
            seg_reset(s, msn, r->part_t0);
        s->parts[k] = (part_t){ page, (uint32_t)(r->t - r->part_t0) };
        s->nparts = k + 1;
        s->samples += s->parts[k].samples;
        pthread_mutex_unlock(&h->mu);
        r->n = r->len = 0;
        r->part_t0 = r->t;
        r->part_no++;
        if (k == SC_HLS_PARTS - 1 || final)
            seg_complete(h, r, s);
    } else if (final && s->msn == msn && s->nparts && !s->page) {
        seg_complete(h, r, s);
    }
    publish(h, r);
}

static void add_frame(sc_hls_t *h, rend_t *r, const uint8_t *data, size_t len, uint32_t dur)
{
    if (r->len + len > r->cap) {
        r->cap = SC_MAX(r->cap * 2, r->len + len + 4096);
        r->buf = sc_realloc(r->buf, r->cap);
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->sizes[r->n] = (uint32_t)len;
    r->durs[r->n++] = dur;
    r->t += dur;
    if (r->t >= (r->part_no + 1) * SC_HLS_PART_SAMPLES || r->n == MAX_FRAMES)
        close_part(h, r, 0);
}

/* --- AAC ------------------------------------------------------------------------------ */

static int aac_open(sc_hls_t *h)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("aac");
    if (!codec || !(h->aac = avcodec_alloc_context3(codec)))
        return -1;
    h->aac->sample_rate = SC_HLS_RATE;
    h->aac->sample_fmt = AV_SAMPLE_FMT_FLTP;
    av_channel_layout_default(&h->aac->ch_layout, 1);
    h->aac->bit_rate = AAC_BITRATE;
    h->aac->time_base = (AVRational){ 1, SC_HLS_RATE };
    h->aac->profile = FF_PROFILE_AAC_LOW;
    if (avcodec_open2(h->aac, codec, NULL) < 0 || !h->aac->extradata_size)
        return -1;
    h->frame = av_frame_alloc();
    h->pkt = av_packet_alloc();
    h->frame->nb_samples = AAC_FRAME;
    h->frame->format = AV_SAMPLE_FMT_FLTP;
    h->frame->sample_rate = SC_HLS_RATE;
    av_channel_layout_default(&h->frame->ch_layout, 1);
    return av_frame_get_buffer(h->frame, 0) < 0 ? -1 : 0;
}

static void aac_drain(sc_hls_t *h)
{
    while (avcodec_receive_packet(h->aac, h->pkt) == 0) {
        add_frame(h, &h->r[SC_HLS_AAC], h->pkt->data, (size_t)h->pkt->size, AAC_FRAME);
        av_packet_unref(h->pkt);
    }
}

static void aac_encode(sc_hls_t *h, int nb)
{
    if (av_frame_make_writable(h->frame) < 0)
        return;
    h->frame->nb_samples = nb;
    memcpy(h->frame->data[0], h->fifo, (size_t)nb * sizeof(float));
    h->frame->pts = h->aac_pts;
    h->aac_pts += nb;
    if (avcodec_send_frame(h->aac, h->frame) == 0)
        aac_drain(h);
    h->nfifo = 0;
}

static void aac_feed(sc_hls_t *h, const float *pcm, int n)
{
    while (n > 0) {
        int k = SC_MIN(n, AAC_FRAME - h->nfifo);
        memcpy(h->fifo + h->nfifo, pcm, (size_t)k * sizeof *pcm);
        h->nfifo += k;
        pcm += k;
        n -= k;
        if (h->nfifo == AAC_FRAME)
            aac_encode(h, AAC_FRAME);
    }
}

static void aac_codecs_free(sc_hls_t *h)
{
    avcodec_free_context(&h->aac);
    av_frame_free(&h->frame);
    av_packet_free(&h->pkt);
    if (h->dec)
        opus_decoder_destroy(h->dec);
    h->dec = NULL;
}

static void codecs_free(sc_hls_t *h)
{
    aac_codecs_free(h);
    for (int k = 0; k < SC_HLS_NREND; k++) {
        free(h->r[k].buf);
        h->r[k].buf = NULL;
        h->r[k].cap = 0;
    }
    for (qpkt_t *q = h->hist, *nq; q; q = nq) {
        nq = q->next;
        free(q);
    }
    h->hist = h->hist_tail = NULL;
    h->nhist = 0;
}

/* A rendition's published pages go (a run that stopped, or an ended Space later); under h->mu. */
static void rend_clear_locked(rend_t *r)
{
    sc_page_unref(r->init);
    sc_page_unref(r->playlist);
    r->init = r->playlist = NULL;
    for (int i = 0; i < KEEP; i++)
        seg_reset(&r->segs[i], UINT64_MAX, 0);
}

/* --- the HLS thread ----------------------------------------------------------------------- */

static void start(sc_hls_t *h)
{
    h->started = 1;
    sc_fmp4_track_t opus = { .codec = SC_FMP4_OPUS, .channels = 1, .rate = SC_HLS_RATE, .preskip = h->preskip };
    sc_page_t *oinit = sc_fmp4_init_page(&opus);
    pthread_mutex_lock(&h->mu);
    h->r[SC_HLS_OPUS].init = oinit;
    h->r[SC_HLS_OPUS].running = 1;
    pthread_mutex_unlock(&h->mu);
    disk_start(h);
}

static void aac_decode(sc_hls_t *h, const qpkt_t *q)
{
    float pcm[PCM_MAX];
    int got = opus_decode_float(h->dec, q->data, (opus_int32)q->len, pcm, PCM_MAX, 0);
    if (got > 0)
        aac_feed(h, pcm, got);
}

/* Start the AAC rendition: a fresh encoder, its timeline set to the start of the oldest segment
 * (at most AAC_BACK back) whose packets are all in the history, and that history encoded now. */
static void aac_start(sc_hls_t *h)
{
    rend_t *o = &h->r[SC_HLS_OPUS], *a = &h->r[SC_HLS_AAC];
    int err;
    h->dec = opus_decoder_create(SC_HLS_RATE, 1, &err);
    if (!h->dec || aac_open(h) != 0) {
        sc_log_error("event=hls_aac_unavailable space=%s", h->id); /* Opus HLS still works */
        aac_codecs_free(h);
        pthread_mutex_lock(&h->mu);
        a->enabled = 0;
        wake_ready(h, WAKE_AAC);
        pthread_mutex_unlock(&h->mu);
        return;
    }
    sc_fmp4_track_t aac = { .codec = SC_FMP4_AAC, .channels = 1, .rate = SC_HLS_RATE, .avg_bitrate = AAC_BITRATE,
                            .asc = h->aac->extradata, .asc_len = (size_t)h->aac->extradata_size };
    sc_page_t *ainit = sc_fmp4_init_page(&aac);
    /* the segment being built starts with its first part: closed already, or the one being built */
    const seg_t *cur = slot(o, o->cur_msn);
    uint64_t oldest = h->hist ? h->hist->t : o->t, m = o->cur_msn, t0 = cur->msn == m ? cur->t0 : o->part_t0;
    for (uint64_t back = 1; back <= AAC_BACK && m > h->msn0; back++) {
        const seg_t *s = slot(o, m - 1);
        if (s->msn != m - 1 || s->t0 < oldest)
            break;
        m--;
        t0 = s->t0;
    }
    if (t0 < oldest) /* the history does not reach that far (it always does, unless packets were lost) */
        t0 = oldest;
    pthread_mutex_lock(&h->mu);
    rend_clear_locked(a);
    a->init = ainit;
    a->first_msn = a->cur_msn = m;
    a->running = 1;
    pthread_mutex_unlock(&h->mu);
    a->t = a->part_t0 = t0;
    a->part_no = (m - h->msn0) * SC_HLS_PARTS;
    a->n = a->len = 0;
    h->nfifo = 0;
    h->aac_pts = (int64_t)t0;
    uint64_t c0 = sc_now_ns();
    h->aac_warming = 1;
    for (qpkt_t *q = h->hist; q; q = q->next)
        if (q->t >= t0)
            aac_decode(h, q);
    h->aac_warming = 0;
    atomic_store(&h->aac_on, 1); /* counted before anyone is answered from it */
    atomic_fetch_add(&g.aac_starts, 1);
    atomic_fetch_add(&g.aac_running, 1);
    publish(h, a);
    sc_log_info("event=hls_aac_started space=%s from_msn=%llu warm_ms=%llu cpu_us=%llu", h->id, (unsigned long long)m,
                (unsigned long long)((o->t - t0) * 1000 / SC_HLS_RATE),
                (unsigned long long)((sc_now_ns() - c0) / 1000));
}

/* Nobody asked for AAC for a minute: the encoder goes, and so do its pages. */
static void aac_stop(sc_hls_t *h)
{
    aac_codecs_free(h);
    rend_t *a = &h->r[SC_HLS_AAC];
    pthread_mutex_lock(&h->mu);
    a->running = 0;
    rend_clear_locked(a);
    wake_ready(h, WAKE_AAC); /* a blocking request parked on it is answered (not there: retry) */
    pthread_mutex_unlock(&h->mu);
    atomic_store(&h->aac_on, 0);
    atomic_fetch_sub(&g.aac_running, 1);
    sc_log_info("event=hls_aac_stopped space=%s idle_ms=%d", h->id, atomic_load(&g.aac_idle_ms));
}

/* Nobody asked for AAC for idle ms. Workers stamp aac_wanted_ms at any moment, so it may be
 * later than now (read before this round's packets): that is a request just made, and an
 * unsigned "now - wanted" would wrap into an age of centuries. It did, under load: the
 * encoder stopped while asked for, restarted seconds back, and the blocking reloads parked
 * on it were answered 503 (playlist gone) and 400 (beyond the restarted run's last segment). */
static int aac_idle(sc_hls_t *h, uint64_t now, uint64_t idle)
{
    uint64_t wanted = atomic_load(&h->aac_wanted_ms);
    return now > wanted && now - wanted > idle;
}

/* One mix packet (q is taken over: it joins the history). */
static void process(sc_hls_t *h, qpkt_t *q)
{
    int n = opus_packet_get_nb_samples(q->data, (opus_int32)q->len, SC_HLS_RATE);
    if (n <= 0 || n > PCM_MAX) {
        free(q);
        return;
    }
    if (!h->started)
        start(h);
    q->t = h->r[SC_HLS_OPUS].t;
    add_frame(h, &h->r[SC_HLS_OPUS], q->data, q->len, (uint32_t)n);
    if (h->aac && h->dec)
        aac_decode(h, q);
    q->next = NULL;
    if (h->hist_tail)
        h->hist_tail->next = q;
    else
        h->hist = q;
    h->hist_tail = q;
    if (++h->nhist > HIST_PKTS) {
        qpkt_t *old = h->hist;
        h->hist = old->next;
        h->nhist--;
        free(old);
    }
}

static void finish(sc_hls_t *h)
{
    rend_t *a = &h->r[SC_HLS_AAC];
    if (h->aac) {
        if (h->nfifo)
            aac_encode(h, h->nfifo); /* a short last frame is allowed */
        if (avcodec_send_frame(h->aac, NULL) == 0)
            aac_drain(h);
    }
    for (int k = 0; k < SC_HLS_NREND; k++)
        if (h->r[k].running)
            close_part(h, &h->r[k], 1);
    /* The end is seen everywhere at once: the replay's index (its last segment is written) says
     * so first, then both final playlists, "finished" and the wake-up go in one step. Published
     * one by one, a player that found EXT-X-ENDLIST in live.m3u8 could still get an EVENT
     * replay.m3u8, or an opus.m3u8 without the end. */
    disk_index(h, "E\n");
    if (h->index_fd >= 0)
        close(h->index_fd);
    h->index_fd = -1;
    sc_page_t *pl[SC_HLS_NREND] = { 0 };
    for (int k = 0; k < SC_HLS_NREND; k++)
        if (h->r[k].running && h->r[k].cur_msn > h->msn0)
            pl[k] = render(h, &h->r[k], 1);
    if (a->running) {
        atomic_store(&h->aac_on, 0);
        atomic_fetch_sub(&g.aac_running, 1);
    }
    pthread_mutex_lock(&h->mu);
    for (int k = 0; k < SC_HLS_NREND; k++) {
        if (pl[k]) {
            sc_page_t *old = h->r[k].playlist;
            h->r[k].playlist = pl[k];
            pl[k] = old; /* let go of below, outside the lock */
        }
    }
    h->finished = 1;
    wake_ready(h, WAKE_ALL);
    pthread_mutex_unlock(&h->mu);
    for (int k = 0; k < SC_HLS_NREND; k++)
        sc_page_unref(pl[k]);
    codecs_free(h);
    h->retire_ms = sc_now_ms() + RETIRE_MS;
    sc_log_info("event=hls_finished space=%s", h->id);
}

/* An ended Space a while later: its pages go (recorded segments stay on disk); the handle
 * stays, answering "ended". */
static void retire(sc_hls_t *h)
{
    pthread_mutex_lock(&h->mu);
    for (int k = 0; k < SC_HLS_NREND; k++)
        rend_clear_locked(&h->r[k]);
    pthread_mutex_unlock(&h->mu);
}

/* The handle's own memory; nobody else holds it any more (sc_hls_free). */
static void hls_destroy(sc_hls_t *h)
{
    retire(h);
    codecs_free(h);
    for (qpkt_t *q = h->qhead, *nq; q; q = nq) {
        nq = q->next;
        free(q);
    }
    if (h->index_fd >= 0)
        close(h->index_fd);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void *hls_main(void *arg)
{
    (void)arg;
    uint64_t next_deadlines = 0;
    pthread_mutex_lock(&g.mu);
    for (;;) {
        if (!g.kicked) { /* a kick: the engine's tick queued packets, or a request wants something */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 100 * 1000000L; /* parked requests time out even when no audio flows */
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g.cond, &g.mu, &ts);
        }
        g.kicked = 0;
        /* take every queue at once; nodes leave the list only on this thread */
        sc_hls_t *head = g.active;
        for (sc_hls_t *h = head; h; h = h->next) {
            h->work = h->qhead;
            h->qhead = h->qtail = NULL;
            h->qlen = 0;
            h->ending = h->end_req;
            h->want_aac |= h->aac_start_req; /* kept until the first packet has come, if need be */
            h->aac_start_req = 0;
        }
        pthread_mutex_unlock(&g.mu);
        uint64_t now = sc_now_ms();
        int deadlines = now >= next_deadlines;
        if (deadlines)
            next_deadlines = now + 100;
        uint64_t idle = (uint64_t)atomic_load(&g.aac_idle_ms);
        for (sc_hls_t *h = head; h; h = h->next) {
            for (qpkt_t *q = h->work, *nq; q; q = nq) {
                nq = q->next;
                process(h, q);
            }
            h->work = NULL;
            rend_t *a = &h->r[SC_HLS_AAC];
            if (h->want_aac && (h->started || h->ending)) {
                if (!h->ending && !h->finished && a->enabled && !a->running)
                    aac_start(h);
                h->want_aac = 0;
            } else if (a->running && !h->ending && aac_idle(h, now, idle)) {
                aac_stop(h);
            }
            if (h->ending && !h->finished)
                finish(h);
            if (deadlines) { /* parts wake their waiters as they come; this is for the deadlines */
                pthread_mutex_lock(&h->mu);
                wake_ready(h, 0);
                pthread_mutex_unlock(&h->mu);
            }
        }
        pthread_mutex_lock(&g.mu);
        for (sc_hls_t **pp = &g.active; deadlines && *pp;) {
            sc_hls_t *h = *pp;
            if (h->finished && (now >= h->retire_ms || h->free_req)) {
                *pp = h->next;
                h->in_active = 0;
                if (h->free_req)
                    hls_destroy(h); /* its owner let go while we still had it */
                else
                    retire(h);
            } else {
                pp = &h->next;
            }
        }
    }
    return NULL;
}

static void hls_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    uint64_t segments, dropped, parked;
    sc_hls_stats(&segments, &dropped, &parked);
    sc_metrics_printf(b, "# HELP spacecast_hls_segments_total HLS segments cut.\n# TYPE spacecast_hls_segments_total counter\n"
                         "spacecast_hls_segments_total %llu\n",
                      (unsigned long long)segments);
    sc_metrics_printf(b, "# HELP spacecast_hls_dropped_total Mix packets the HLS thread could not take in time.\n"
                         "# TYPE spacecast_hls_dropped_total counter\nspacecast_hls_dropped_total %llu\n",
                      (unsigned long long)dropped);
    sc_metrics_printf(b, "# HELP spacecast_hls_parked Blocking playlist reloads waiting for their part.\n"
                         "# TYPE spacecast_hls_parked gauge\nspacecast_hls_parked %llu\n",
                      (unsigned long long)parked);
    sc_metrics_printf(b, "# HELP spacecast_hls_aac_running Live Spaces whose AAC rendition is being encoded (asked for in the last minute).\n"
                         "# TYPE spacecast_hls_aac_running gauge\nspacecast_hls_aac_running %d\n"
                         "# HELP spacecast_hls_aac_starts_total AAC renditions started on a request.\n"
                         "# TYPE spacecast_hls_aac_starts_total counter\nspacecast_hls_aac_starts_total %llu\n",
                      atomic_load(&g.aac_running), (unsigned long long)atomic_load(&g.aac_starts));
}

static void hls_init_once(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cond, &ca);
    pthread_condattr_destroy(&ca);
    av_log_set_level(AV_LOG_ERROR);
    /* one thread for every Space, for the life of the process */
    if (pthread_create(&g.thread, NULL, hls_main, NULL) == 0)
        pthread_detach(g.thread);
    else
        sc_log_error("event=hls_thread_failed");
    sc_metrics_register("hls", hls_metrics, NULL);
}

void sc_hls_init(void) { pthread_once(&g.once, hls_init_once); }

/* --- engine side ------------------------------------------------------------------------ */

static void epoch36(char *out, size_t cap, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while (v && n < sizeof tmp);
    size_t i = 0;
    for (; i < n && i + 1 < cap; i++)
        out[i] = tmp[n - 1 - i];
    out[i] = '\0';
}

sc_hls_t *sc_hls_new(const char *space_id, const char *data_dir, uint16_t preskip, int64_t started_at)
{
    pthread_once(&g.once, hls_init_once);
    sc_hls_t *h = sc_calloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    snprintf(h->id, sizeof h->id, "%s", space_id);
    if (data_dir)
        sc_hls_dir(data_dir, space_id, h->dir, sizeof h->dir);
    h->index_fd = -1;
    h->preskip = preskip;
    int64_t now = wall_ms();
    /* numbered by time since the Space went live, so a restart never reuses a number */
    if (started_at > 0 && now > started_at * 1000)
        h->msn0 = (uint64_t)(now - started_at * 1000) / (SC_HLS_SEGMENT_SAMPLES / (SC_HLS_RATE / 1000));
    char epoch[16];
    epoch36(epoch, sizeof epoch, (uint64_t)now);
    for (int k = 0; k < SC_HLS_NREND; k++) {
        rend_t *r = &h->r[k];
        r->kind = k;
        r->enabled = 1;
        r->cur_msn = h->msn0;
        /* the epoch in every name: an immutable URL never means two different files */
        snprintf(r->name, sizeof r->name, "%c%s", k == SC_HLS_AAC ? 'a' : 'o', epoch);
        /* ten AAC frames (213.3 ms) is the longest AAC part */
        r->part_target = k == SC_HLS_AAC ? 0.21334 : 0.2;
        for (int i = 0; i < KEEP; i++)
            r->segs[i].msn = UINT64_MAX;
    }
    pthread_mutex_lock(&g.mu);
    h->next = g.active;
    g.active = h;
    h->in_active = 1;
    pthread_mutex_unlock(&g.mu);
    return h;
}

void sc_hls_free(sc_hls_t *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&g.mu);
    int active = h->in_active;
    if (active) { /* the HLS thread may be working on it: it ends it, then frees it */
        h->free_req = 1;
        h->end_req = 1;
        pthread_cond_signal(&g.cond);
    }
    pthread_mutex_unlock(&g.mu);
    if (!active)
        hls_destroy(h);
}

void sc_hls_push(sc_hls_t *h, const uint8_t *pkt, size_t len)
{
    if (!h || !len || len > PKT_MAX)
        return;
    qpkt_t *q = sc_malloc(sizeof *q + len);
    q->next = NULL;
    q->len = (uint16_t)len;
    memcpy(q->data, pkt, len);
    pthread_mutex_lock(&g.mu);
    if (h->end_req || h->qlen >= QUEUE_MAX) {
        pthread_mutex_unlock(&g.mu);
        free(q);
        atomic_fetch_add(&g.dropped, 1);
        return;
    }
    if (!h->wall0_ms)
        h->wall0_ms = wall_ms() - 20; /* the packet's first sample was mixed one frame ago */
    if (h->qtail)
        h->qtail->next = q;
    else
        h->qhead = q;
    h->qtail = q;
    h->qlen++;
    pthread_mutex_unlock(&g.mu); /* the engine kicks the HLS thread once per tick (sc_hls_kick) */
}

void sc_hls_kick(void)
{
    pthread_mutex_lock(&g.mu);
    if (g.active) {
        g.kicked = 1;
        pthread_cond_signal(&g.cond);
    }
    pthread_mutex_unlock(&g.mu);
}

void sc_hls_want(sc_hls_t *h, int rend)
{
    if (!h || rend != SC_HLS_AAC)
        return; /* the Opus rendition is always cut: it costs no codec work */
    atomic_store_explicit(&h->aac_wanted_ms, sc_now_ms(), memory_order_relaxed);
    if (atomic_load_explicit(&h->aac_on, memory_order_relaxed))
        return;
    pthread_mutex_lock(&g.mu);
    if (!h->end_req) {
        h->aac_start_req = 1;
        g.kicked = 1;
        pthread_cond_signal(&g.cond);
    }
    pthread_mutex_unlock(&g.mu);
}

void sc_hls_end(sc_hls_t *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&g.mu);
    h->end_req = 1;
    g.kicked = 1;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.mu);
}

void sc_hls_stats(uint64_t *segments, uint64_t *dropped, uint64_t *parked)
{
    *segments = atomic_load(&g.segments);
    *dropped = atomic_load(&g.dropped);
    *parked = atomic_load(&g.parked);
}
