/* clip.c — see clip.h. The recording is read with pread through one window; the page holding
 * the start is found by bisection over byte offsets (granules only grow along the file), so a
 * clip of a long recording reads a few windows, not the file. */
#include "spacecast/clip.h"
#include "spacecast/common.h"
#include "spacecast/ogg.h"
#include "spacecast/pager.h"

#include <errno.h>
#include <unistd.h>

#define WIN (4 * SC_OGG_PAGE_MAX) /* a window always holds a whole page after any offset in its first half */

typedef struct reader {
    int fd;
    uint64_t size;
    uint8_t *buf;
    uint64_t boff;
    size_t blen;
    int failed;
} reader_t;

typedef struct pg {
    uint64_t off;
    size_t len;
    int64_t granule;
    uint8_t flags;
} pg_t;

/* Bytes from off on (at least a page's worth when the file has them), or NULL past the end. */
static const uint8_t *at(reader_t *r, uint64_t off, size_t *avail)
{
    if (off >= r->size)
        return NULL;
    if (off < r->boff || off + SC_OGG_PAGE_MAX > r->boff + r->blen) {
        if (r->boff + r->blen >= r->size && off >= r->boff && off < r->boff + r->blen)
            goto have; /* the window already reaches the end of the file */
        size_t want = (size_t)SC_MIN((uint64_t)WIN, r->size - off), got = 0;
        while (got < want) {
            ssize_t n = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (got == 0) {
            r->failed = 1;
            return NULL;
        }
        r->boff = off;
        r->blen = got;
    }
have:
    *avail = r->boff + r->blen - off;
    return r->buf + (off - r->boff);
}

static int page_at(reader_t *r, uint64_t off, pg_t *pg)
{
    size_t avail;
    const uint8_t *p = at(r, off, &avail);
    size_t len = p ? sc_ogg_page_check(p, avail) : 0;
    if (!len)
        return -1;
    *pg = (pg_t){ off, len, sc_ogg_page_granule(p), p[5] };
    return 0;
}

/* The first whole page starting in [off, limit). */
static int page_after(reader_t *r, uint64_t off, uint64_t limit, pg_t *pg)
{
    while (off < limit) {
        size_t avail;
        const uint8_t *p = at(r, off, &avail);
        if (!p)
            return -1;
        size_t scan = (size_t)SC_MIN((uint64_t)avail, limit - off);
        const uint8_t *hit = memmem(p, scan, "OggS", 4);
        if (!hit) {
            if (scan <= 3)
                return -1;
            off += scan - 3; /* a capture pattern may straddle the window's end */
            continue;
        }
        off += (uint64_t)(hit - p);
        if (page_at(r, off, pg) == 0)
            return 0;
        off++;
    }
    return -1;
}

/* Samples in the packets of a page (whole packets, as our recordings are paged), or -1. */
static int64_t page_samples(reader_t *r, const pg_t *pg)
{
    size_t avail;
    const uint8_t *p = at(r, pg->off, &avail);
    if (!p || avail < pg->len)
        return -1;
    size_t nseg = p[26];
    const uint8_t *body = p + SC_OGG_HEADER_MIN + nseg;
    int64_t total = 0;
    size_t plen = 0;
    for (size_t i = 0; i < nseg; i++) {
        plen += p[SC_OGG_HEADER_MIN + i];
        if (p[SC_OGG_HEADER_MIN + i] < 255) {
            int n = sc_opus_packet_samples(body, plen);
            if (n < 0)
                return -1;
            total += n;
            body += plen;
            plen = 0;
        }
    }
    return plen ? -1 : total;
}

/* The recording's stream: OpusHead first; its pre-skip, channels, serial; the first audio page. */
static sc_clip_rc_t read_head(reader_t *r, sc_opus_head_t *head, uint32_t *serial, pg_t *first)
{
    pg_t h;
    size_t avail;
    if (page_at(r, 0, &h) != 0 || !(h.flags & SC_OGG_BOS))
        return r->failed ? SC_CLIP_EIO : SC_CLIP_ENOTOGG;
    const uint8_t *p = at(r, 0, &avail);
    size_t hl = SC_OGG_HEADER_MIN + p[26];
    if (sc_opus_head_parse(p + hl, h.len - hl, head) != 0 || head->mapping_family != 0)
        return SC_CLIP_ENOTOGG;
    *serial = (uint32_t)p[14] | (uint32_t)p[15] << 8 | (uint32_t)p[16] << 16 | (uint32_t)p[17] << 24;
    uint64_t off = h.len;
    for (int i = 0; i < 8; i++) { /* OpusTags (granule 0), then audio */
        if (page_at(r, off, first) != 0)
            return r->failed ? SC_CLIP_EIO : SC_CLIP_ERANGE; /* no audio yet */
        if (first->granule > 0)
            return SC_CLIP_OK;
        off += first->len;
    }
    return SC_CLIP_ENOTOGG;
}

static void append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
    if (*len + n > *cap) {
        *cap = SC_MAX(*cap * 2, *len + n);
        *buf = sc_realloc(*buf, *cap);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

sc_clip_rc_t sc_clip_cut(int fd, uint64_t size, int64_t start_ms, int64_t end_ms, const char *title, sc_clip_t *out)
{
    memset(out, 0, sizeof *out);
    if (start_ms < 0 || end_ms <= start_ms)
        return SC_CLIP_ERANGE;
    end_ms = SC_MIN(end_ms, start_ms + SC_CLIP_MAX_MS);
    reader_t r = { .fd = fd, .size = size, .buf = sc_malloc(WIN) };
    sc_opus_head_t head;
    uint32_t serial;
    pg_t first;
    sc_clip_rc_t rc = read_head(&r, &head, &serial, &first);
    if (rc != SC_CLIP_OK) {
        free(r.buf);
        return rc;
    }
    const int64_t per_ms = SC_RATE / 1000, preskip = head.pre_skip;
    int64_t target = start_ms * per_ms + preskip; /* the granule of the first sample asked for */
    /* bisect to a page at or before the start, then walk to the page holding it */
    pg_t lo = first;
    if (lo.granule <= target) {
        uint64_t hi = size;
        while (hi > lo.off + WIN / 2) {
            uint64_t mid = lo.off + (hi - lo.off) / 2;
            pg_t q;
            if (page_after(&r, mid, hi, &q) != 0 || q.granule > target)
                hi = mid;
            else
                lo = q;
        }
    }
    pg_t prev = { 0 }, cur = lo;
    int has_prev = 0;
    while (cur.granule <= target) {
        pg_t next;
        if ((cur.flags & SC_OGG_EOS) || page_at(&r, cur.off + cur.len, &next) != 0) {
            free(r.buf);
            return r.failed ? SC_CLIP_EIO : SC_CLIP_ERANGE;
        }
        prev = cur;
        has_prev = 1;
        cur = next;
    }
    /* the page before the start is decoded and dropped (the pre-skip), so the first sample heard
     * comes from a decoder that has settled; without one (the recording's first page), the
     * recording's own pre-skip */
    pg_t from = cur;
    int64_t base, skip = preskip;
    int64_t cur_samples = page_samples(&r, &cur), prev_samples = has_prev ? page_samples(&r, &prev) : -1;
    if (has_prev && prev_samples > 0 && prev_samples <= 65535 && prev.granule - prev_samples >= 0) {
        from = prev;
        base = prev.granule - prev_samples;
        skip = prev_samples;
    } else {
        base = cur_samples >= 0 ? SC_MAX(cur.granule - cur_samples, 0) : (has_prev ? prev.granule : 0);
        if (base == 0)
            skip = preskip; /* the recording's beginning: its own pre-skip */
    }
    int64_t first_heard = base + skip; /* original granule of the clip's first audible sample */
    int64_t want_end = first_heard + (end_ms - start_ms) * per_ms;

    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    sc_page_t *hdr = sc_pager_headers(serial, 0, head.channels, (uint16_t)skip, title);
    append(&buf, &len, &cap, hdr->data, hdr->len);
    sc_page_unref(hdr);
    uint32_t seq = 2;
    pg_t pg = from;
    size_t last_off = 0, last_len = 0;
    int64_t last_granule = 0;
    for (;;) {
        size_t avail;
        const uint8_t *p = at(&r, pg.off, &avail);
        if (!p || avail < pg.len || len + pg.len > SC_CLIP_MAX_BYTES)
            break;
        last_off = len;
        last_len = pg.len;
        append(&buf, &len, &cap, p, pg.len);
        last_granule = pg.granule;
        sc_ogg_page_restamp(buf + last_off, last_len, 0, pg.granule - base, serial, seq++);
        if (pg.granule >= want_end || (pg.flags & SC_OGG_EOS) || page_at(&r, pg.off + pg.len, &pg) != 0)
            break;
    }
    free(r.buf);
    if (!last_len) {
        free(buf);
        return SC_CLIP_EIO;
    }
    sc_ogg_page_restamp(buf + last_off, last_len, SC_OGG_EOS, last_granule - base, serial, seq - 1);
    out->data = buf;
    out->len = len;
    out->start_ms = SC_MAX(first_heard - preskip, 0) / per_ms;
    out->end_ms = (last_granule - preskip) / per_ms;
    out->complete = last_granule >= want_end;
    return SC_CLIP_OK;
}

int64_t sc_clip_recording_ms(int fd, uint64_t size)
{
    reader_t r = { .fd = fd, .size = size, .buf = sc_malloc(WIN) };
    sc_opus_head_t head;
    uint32_t serial;
    pg_t first, last, q;
    int64_t ms = -1;
    if (read_head(&r, &head, &serial, &first) == SC_CLIP_OK) {
        last = first;
        /* the last whole page: search the file's tail, going back a window at a time */
        for (uint64_t from = size > WIN / 2 ? size - WIN / 2 : 0;; from = from > WIN / 2 ? from - WIN / 2 : 0) {
            uint64_t off = SC_MAX(from, first.off);
            int found = 0;
            while (page_after(&r, off, size, &q) == 0) {
                if (q.granule >= last.granule)
                    last = q;
                found = 1;
                off = q.off + q.len;
            }
            if (found || from <= first.off)
                break;
        }
        ms = SC_MAX(last.granule - (int64_t)head.pre_skip, 0) / (SC_RATE / 1000);
    }
    free(r.buf);
    return ms;
}
