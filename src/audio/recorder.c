/* recorder.c — recordings on disk. The engine thread only pages the mix and queues each page
 * (a reference, no copy); the recorder thread writes every recording's queue in batches, one
 * writev per recording every SC_REC_BATCH_MS (a page is 100 ms of audio: 2 a batch), and
 * fdatasyncs twice a second. So the engine makes no system call for recordings and a slow disk
 * never delays the mix, and a thousand recordings cost ~5,000 writes a second, not 10,000
 * on the engine thread. A disk that stalls longer than the queue (SC_REC_QUEUE pages) loses the
 * pages it could not take, marked as a gap like a failed write.
 *
 * A write that fails (a full disk) leaves the file at its last whole page and the recording
 * waiting: a page every second is tried again, and the pages in between are left out, so
 * the file says where the gap is the way Ogg says it (the page sequence skips, the granule
 * jumps). A finished recording whose end-of-stream page could not be written is repaired by
 * the sync thread as soon as the disk takes it. */
#include "spacecast/recorder.h"
#include "spacecast/common.h"
#include "spacecast/pager.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SC_REC_RETRY_MS 1000 /* a failing recording tries one batch this often */
#define SC_REC_BATCH_MS 200  /* the recorder thread writes what was queued this often */
#define SC_REC_SYNC_MS 500   /* and fdatasyncs this often: a crash loses well under a second */
#define SC_REC_QUEUE 64      /* pages queued at most per recording (6.4 s at 100 ms a page) */

struct sc_recorder {
    int fd;
    atomic_int failed;        /* the disk refused a page and has not taken one since (the engine sets it,
                               * the sync thread reads it) */
    off_t good;               /* the file's length after its last whole page */
    uint64_t retry_ms;        /* failing: the next page to try is the first after this */
    uint64_t gap_from_ms;
    uint64_t lost_pages;      /* pages left out in the current gap */
    uint16_t preskip;
    sc_pager_t pager;         /* the engine's (pushes) */
    pthread_mutex_t qmu;      /* the queue, between the engine and the recorder thread */
    int nq;
    uint64_t dropped;         /* pages the full queue left out since the last batch */
    sc_page_t *q[SC_REC_QUEUE];
    char path[600];
    struct sc_recorder *next; /* sync list */
};

static pthread_mutex_t sc_rec_mu = PTHREAD_MUTEX_INITIALIZER;
static sc_recorder_t *sc_rec_list;
static struct pending {       /* finished recordings still without their end-of-stream page */
    struct pending *next;
    char path[];
} *sc_rec_pending;
static pthread_t sc_rec_thread;
static atomic_int sc_rec_running;
static _Atomic uint64_t sc_rec_failed;

uint64_t sc_recorder_failures(void) { return atomic_load(&sc_rec_failed); }

void sc_recorder_path(const char *data_dir, const char *space_id, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/recordings/%s.ogg", data_dir, space_id);
}

static _Atomic uint64_t sc_rec_gaps;

/* The disk refused a page: back to the last whole page, wait, try again later. */
static void rec_fail(sc_recorder_t *r, int err)
{
    if (ftruncate(r->fd, r->good) < 0) {
        /* then the next page lands after a torn one: the repair at the end (or the next start)
         * cuts the file back to its whole pages */
    }
    r->retry_ms = sc_now_ms() + SC_REC_RETRY_MS;
    if (r->failed)
        return;
    r->failed = 1;
    r->gap_from_ms = sc_now_ms();
    r->lost_pages = 0;
    atomic_fetch_add(&sc_rec_failed, 1);
    sc_log_error("event=recording_failed path=%s err=\"%s\" note=\"live audio continues; retried every second\"",
                 r->path, strerror(-err));
}

/* Write pages in one writev (fewer when a short write leaves some); the write state (good,
 * failed, retry) belongs to whoever writes: the recorder thread while the recording is listed,
 * its closer once unlisted, its opener before. Takes the pages' references. */
static void rec_write_pages(sc_recorder_t *r, sc_page_t **pages, int n)
{
    if (n <= 0)
        return;
    if (r->failed && sc_now_ms() < r->retry_ms) {
        r->lost_pages += (uint64_t)n; /* left out: the gap the next whole page shows */
    } else {
        struct iovec iov[SC_REC_QUEUE + 2];
        size_t total = 0;
        for (int i = 0; i < n; i++) {
            iov[i] = (struct iovec){ pages[i]->data, pages[i]->len };
            total += pages[i]->len;
        }
        int e = 0, k = 0;
        for (size_t left = total; left && !e;) {
            ssize_t w = writev(r->fd, iov + k, n - k);
            if (w < 0) {
                if (errno != EINTR)
                    e = -errno;
                continue;
            }
            left -= (size_t)w;
            for (; k < n && (size_t)w >= iov[k].iov_len; k++)
                w -= (ssize_t)iov[k].iov_len;
            if (k < n) { /* a short write within a page: go on from there */
                iov[k].iov_base = (uint8_t *)iov[k].iov_base + w;
                iov[k].iov_len -= (size_t)w;
            }
        }
        if (e < 0) {
            rec_fail(r, e); /* back to the last whole page: the whole batch is left out */
            r->lost_pages += (uint64_t)n;
        } else {
            r->good += (off_t)total;
            if (r->failed) {
                r->failed = 0;
                atomic_fetch_add(&sc_rec_gaps, 1);
                sc_log_warn("event=recording_resumed_after_gap path=%s gap_ms=%llu lost_pages=%llu", r->path,
                            (unsigned long long)(sc_now_ms() - r->gap_from_ms), (unsigned long long)r->lost_pages);
            }
        }
    }
    for (int i = 0; i < n; i++)
        sc_page_unref(pages[i]);
}

static void rec_write_page(sc_recorder_t *r, sc_page_t *pg)
{
    if (pg)
        rec_write_pages(r, &pg, 1);
}

/* Write what the engine queued (the recorder thread, or the closer once the recording is off
 * the list). */
static void rec_drain(sc_recorder_t *r)
{
    sc_page_t *pages[SC_REC_QUEUE];
    pthread_mutex_lock(&r->qmu);
    int n = r->nq;
    memcpy(pages, r->q, (size_t)n * sizeof *pages);
    r->nq = 0;
    uint64_t dropped = r->dropped;
    r->dropped = 0;
    pthread_mutex_unlock(&r->qmu);
    if (dropped) {
        sc_log_warn("event=recording_pages_dropped path=%s pages=%llu queued_max=%d note=\"the disk took nothing for "
                    "that long: a gap\"",
                    r->path, (unsigned long long)dropped, SC_REC_QUEUE);
        if (!r->failed) /* the page sequence shows the gap, as after a failed write */
            atomic_fetch_add(&sc_rec_gaps, 1);
    }
    rec_write_pages(r, pages, n);
}

static int write_all_at(int fd, const uint8_t *p, size_t n, off_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Scan whole, CRC-valid pages; return the length of the valid prefix and the last page's
 * sequence, granule and flags. */
static off_t scan_valid(int fd, uint32_t *last_seq, int64_t *last_granule, uint32_t *serial, int *last_flags)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    uint8_t *buf = sc_malloc((size_t)st.st_size + 1);
    ssize_t got = pread(fd, buf, (size_t)st.st_size, 0);
    off_t valid = 0;
    size_t off = 0;
    while (got > 0 && off + 27 <= (size_t)got) {
        if (memcmp(buf + off, "OggS", 4) != 0)
            break;
        size_t nseg = buf[off + 26];
        if (off + 27 + nseg > (size_t)got)
            break;
        size_t body = 0;
        for (size_t i = 0; i < nseg; i++)
            body += buf[off + 27 + i];
        size_t plen = 27 + nseg + body;
        if (off + plen > (size_t)got)
            break;
        /* verify CRC by rewriting the sequence with its own value (recomputes the CRC) */
        uint8_t *copy = sc_malloc(plen);
        memcpy(copy, buf + off, plen);
        uint32_t seq = (uint32_t)copy[18] | (uint32_t)copy[19] << 8 | (uint32_t)copy[20] << 16 |
                       (uint32_t)copy[21] << 24;
        sc_ogg_page_set_seq(copy, plen, seq);
        int ok = memcmp(copy + 22, buf + off + 22, 4) == 0;
        free(copy);
        if (!ok)
            break;
        *last_seq = seq;
        int64_t g = 0;
        for (int i = 7; i >= 0; i--)
            g = (g << 8) | buf[off + 6 + i];
        *last_granule = g;
        *serial = (uint32_t)buf[off + 14] | (uint32_t)buf[off + 15] << 8 | (uint32_t)buf[off + 16] << 16 |
                  (uint32_t)buf[off + 17] << 24;
        *last_flags = buf[off + 5];
        off += plen;
        valid = (off_t)off;
    }
    free(buf);
    return valid;
}

int sc_recorder_repair(const char *path, int add_eos)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    uint32_t seq = 0, serial = 0;
    int64_t granule = 0;
    int flags = 0;
    off_t valid = scan_valid(fd, &seq, &granule, &serial, &flags);
    struct stat st;
    fstat(fd, &st);
    if (valid >= 0 && valid < st.st_size) {
        sc_log_warn("event=recording_repaired path=%s torn_bytes=%lld", path, (long long)(st.st_size - valid));
        if (ftruncate(fd, valid) < 0) {
            close(fd);
            return -1;
        }
    }
    if (add_eos && valid > 0 && !(flags & SC_OGG_EOS)) {
        sc_pager_t p;
        sc_pager_init(&p, serial, 1);
        p.ogg.page_seq = seq + 1;
        p.granule = granule;
        sc_pager_add(&p, sc_opus_silence, SC_OPUS_SILENCE_LEN, SC_FRAME);
        sc_page_t *pg = sc_pager_flush(&p, SC_OGG_EOS);
        int rc = pg ? write_all_at(fd, pg->data, pg->len, valid) : -1;
        sc_page_unref(pg);
        if (rc < 0) {
            if (ftruncate(fd, valid) < 0) {
                /* a torn EOS page is cut by the next repair's scan */
            }
            close(fd);
            return -1; /* the disk is still full: tried again later */
        }
        sc_log_info("event=recording_finished_by_repair path=%s", path);
    }
    fdatasync(fd);
    close(fd);
    return 0;
}

sc_recorder_t *sc_recorder_open(const char *data_dir, const char *space_id, int channels, uint16_t preskip,
                                const char *title, int frames_per_page, int resume)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/recordings", data_dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        sc_log_error("event=recording_failed dir=%s err=\"%s\"", dir, strerror(errno));
        return NULL;
    }
    sc_recorder_t *r = sc_calloc(1, sizeof *r);
    pthread_mutex_init(&r->qmu, NULL);
    sc_recorder_path(data_dir, space_id, r->path, sizeof r->path);
    r->preskip = preskip;
    uint32_t serial = (uint32_t)sc_now_ns() ^ 0xa5a5a5a5u;
    struct stat st;
    if (resume && stat(r->path, &st) == 0 && st.st_size > 0) {
        sc_recorder_repair(r->path, 0);
        r->fd = open(r->path, O_RDWR | O_APPEND | O_CLOEXEC);
        uint32_t seq = 0;
        int64_t granule = 0;
        int flags = 0;
        off_t valid = r->fd >= 0 ? scan_valid(r->fd, &seq, &granule, &serial, &flags) : -1;
        if (valid > 0) {
            sc_pager_init(&r->pager, serial, frames_per_page);
            r->pager.ogg.page_seq = seq + 1;
            r->pager.granule = granule;
            r->good = valid;
            sc_log_info("event=recording_resumed path=%s bytes=%lld", r->path, (long long)valid);
            goto listed;
        }
        if (r->fd >= 0)
            close(r->fd);
    }
    r->fd = open(r->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (r->fd < 0) {
        sc_log_error("event=recording_failed path=%s err=\"%s\"", r->path, strerror(errno));
        pthread_mutex_destroy(&r->qmu);
        free(r);
        return NULL;
    }
    sc_pager_init(&r->pager, serial, frames_per_page);
    r->good = 0;
    rec_write_page(r, sc_pager_headers(serial, 0, channels, preskip, title));
listed:
    pthread_mutex_lock(&sc_rec_mu);
    r->next = sc_rec_list;
    sc_rec_list = r;
    pthread_mutex_unlock(&sc_rec_mu);
    return r;
}

int64_t sc_recorder_position_ms(const sc_recorder_t *r)
{
    int64_t g = r->pager.granule - r->preskip;
    return g > 0 ? g / (SC_RATE / 1000) : 0;
}

/* Hand a page to the recorder thread (a full queue while it runs: the disk has taken nothing
 * for seconds; the page is left out, and the sequence number it took marks the gap). */
static void rec_queue(sc_recorder_t *r, sc_page_t *pg)
{
    if (!pg)
        return;
    pthread_mutex_lock(&r->qmu);
    if (r->nq == SC_REC_QUEUE && !atomic_load(&sc_rec_running)) {
        /* no recorder thread (a tool, a test, shutdown): this thread writes the batch itself */
        pthread_mutex_unlock(&r->qmu);
        sc_recorder_drain(r);
        pthread_mutex_lock(&r->qmu);
    }
    if (r->nq < SC_REC_QUEUE) {
        r->q[r->nq++] = pg;
        pg = NULL;
    } else {
        r->dropped++;
    }
    pthread_mutex_unlock(&r->qmu);
    sc_page_unref(pg);
}

void sc_recorder_push(sc_recorder_t *r, const uint8_t *pkt, size_t len, int samples)
{
    if (sc_pager_add(&r->pager, pkt, len, samples))
        rec_queue(r, sc_pager_flush(&r->pager, 0));
}

void sc_recorder_drain(sc_recorder_t *r)
{
    pthread_mutex_lock(&sc_rec_mu); /* the recorder thread writes under it */
    rec_drain(r);
    pthread_mutex_unlock(&sc_rec_mu);
}

static void unlist(sc_recorder_t *r)
{
    pthread_mutex_lock(&sc_rec_mu);
    for (sc_recorder_t **pp = &sc_rec_list; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&sc_rec_mu);
}

void sc_recorder_close(sc_recorder_t *r)
{
    if (!r)
        return;
    unlist(r); /* the recorder thread writes it no more: what is queued is this thread's to write */
    rec_drain(r);
    rec_write_page(r, sc_pager_flush(&r->pager, 0)); /* not queued: a full queue would drop it */
    if (fdatasync(r->fd) < 0 && !r->failed)
        rec_fail(r, -errno);
    close(r->fd);
    pthread_mutex_destroy(&r->qmu);
    free(r);
}

void sc_recorder_finish(sc_recorder_t *r)
{
    if (!r)
        return;
    unlist(r); /* from here this thread writes it (sc_recorder_close unlists again: no-op) */
    if (r->pager.n == 0) {
        sc_pager_add(&r->pager, sc_opus_silence, SC_OPUS_SILENCE_LEN, SC_FRAME);
    }
    r->retry_ms = 0; /* the end is always tried */
    rec_drain(r);
    rec_write_page(r, sc_pager_flush(&r->pager, SC_OGG_EOS)); /* never dropped by a full queue */
    if (r->failed) {
        /* no end-of-stream page yet: the sync thread adds one once the disk takes it */
        pthread_mutex_lock(&sc_rec_mu);
        size_t n = strlen(r->path) + 1;
        struct pending *p = sc_malloc(sizeof *p + n);
        memcpy(p->path, r->path, n);
        p->next = sc_rec_pending;
        sc_rec_pending = p;
        pthread_mutex_unlock(&sc_rec_mu);
    }
    sc_recorder_close(r);
}

static void *sync_main(void *arg)
{
    (void)arg;
    uint64_t synced = sc_now_ms();
    while (atomic_load(&sc_rec_running)) {
        usleep(SC_REC_BATCH_MS * 1000);
        int sync = sc_now_ms() - synced >= SC_REC_SYNC_MS;
        if (sync)
            synced = sc_now_ms();
        pthread_mutex_lock(&sc_rec_mu);
        for (sc_recorder_t *r = sc_rec_list; r; r = r->next) {
            rec_drain(r);
            if (sync && !r->failed)
                fdatasync(r->fd);
        }
        for (struct pending **pp = &sc_rec_pending; *pp;) {
            struct pending *p = *pp;
            if (sc_recorder_repair(p->path, 1) == 0) {
                *pp = p->next;
                free(p);
            } else {
                pp = &p->next;
            }
        }
        pthread_mutex_unlock(&sc_rec_mu);
    }
    return NULL;
}

static void recorder_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_recording_failures_total Recordings that hit a write error (disk full).\n"
                         "# TYPE spacecast_recording_failures_total counter\nspacecast_recording_failures_total %llu\n",
                      (unsigned long long)sc_recorder_failures());
    sc_metrics_printf(b, "# HELP spacecast_recording_gaps_total Recordings that went on after a write error (a gap).\n"
                         "# TYPE spacecast_recording_gaps_total counter\nspacecast_recording_gaps_total %llu\n",
                      (unsigned long long)atomic_load(&sc_rec_gaps));
}

void sc_recorder_sync_start(void)
{
    sc_metrics_register("recorder", recorder_metrics, NULL);
    atomic_store(&sc_rec_running, 1);
    pthread_create(&sc_rec_thread, NULL, sync_main, NULL);
}

void sc_recorder_sync_stop(void)
{
    sc_metrics_unregister(recorder_metrics, NULL);
    if (!atomic_exchange(&sc_rec_running, 0))
        return;
    pthread_join(sc_rec_thread, NULL);
    pthread_mutex_lock(&sc_rec_mu);
    while (sc_rec_pending) { /* left for the repair at the next start (the replay checks) */
        struct pending *p = sc_rec_pending;
        sc_rec_pending = p->next;
        free(p);
    }
    pthread_mutex_unlock(&sc_rec_mu);
}

/* Does buf (the file's last got bytes) end with a whole end-of-stream page? 1 yes, -1 it ends
 * with another page, 0 no page end found in it. */
static int tail_ends_with_eos(const uint8_t *buf, ssize_t got)
{
    for (ssize_t i = got - 27; i >= 0; i--) {
        if (memcmp(buf + i, "OggS", 4) != 0)
            continue;
        size_t nseg = buf[i + 26], body = 0;
        if ((size_t)i + 27 + nseg > (size_t)got)
            continue;
        for (size_t k = 0; k < nseg; k++)
            body += buf[i + 27 + k];
        if ((size_t)i + 27 + nseg + body == (size_t)got)
            return (buf[i + 5] & SC_OGG_EOS) ? 1 : -1;
    }
    return 0;
}

int sc_recorder_complete(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 27) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    /* the last page must end the file and carry end-of-stream: ours are a few hundred bytes,
     * so a small tail is read first, then the largest a page can be (65,307 bytes) */
    static const size_t tails[] = { 4096, 65307 + 27 };
    int r = 0;
    uint8_t *buf = sc_malloc(tails[1]);
    for (size_t k = 0; k < SC_ARRAY_LEN(tails) && r == 0; k++) {
        size_t tail = (size_t)SC_MIN((off_t)tails[k], st.st_size);
        ssize_t got = pread(fd, buf, tail, st.st_size - (off_t)tail);
        r = got > 0 ? tail_ends_with_eos(buf, got) : -1;
        if ((off_t)tail == st.st_size)
            break;
    }
    free(buf);
    close(fd);
    return r == 1;
}
