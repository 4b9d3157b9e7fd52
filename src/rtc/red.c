/* red.c — RFC 2198 redundancy (see red.h). A RED payload is a list of headers, then the blocks
 * in the same order:
 *
 *   redundant block header (4 bytes): |1| PT (7) | timestamp offset (14) | block length (10) |
 *   primary block header   (1 byte):  |0| PT (7) |             (its length is what is left)
 *
 * Senders put the oldest copy first and the packet's own audio (the primary) last. */
#include "spacecast/red.h"
#include "spacecast/common.h"

#include <string.h>

int sc_red_parse(const uint8_t *p, size_t n, sc_red_block_t *out, int max)
{
    if (!p || max < 1)
        return -1;
    if (max > SC_RED_MAX_BLOCKS)
        max = SC_RED_MAX_BLOCKS;
    size_t off = 0, body = 0; /* header bytes read; bytes the redundant blocks claim */
    int count = 0;
    for (;;) {
        if (off >= n || count == max)
            return -1;
        sc_red_block_t *b = &out[count++];
        b->pt = p[off] & 0x7F;
        b->samples = 0;
        if (!(p[off] & 0x80)) { /* the primary: the last header */
            off += 1;
            b->ts_offset = 0;
            if (body > n - off)
                return -1;
            b->len = n - off - body;
            break;
        }
        if (n - off < 4)
            return -1;
        b->ts_offset = (uint32_t)p[off + 1] << 6 | (uint32_t)p[off + 2] >> 2;
        b->len = (size_t)(p[off + 2] & 0x03) << 8 | p[off + 3];
        body += b->len;
        off += 4;
    }
    const uint8_t *d = p + off; /* the blocks, in header order; their lengths fit (checked above) */
    for (int i = 0; i < count; i++) {
        out[i].data = d;
        d += out[i].len;
    }
    return count;
}

int sc_red_usable(const sc_red_block_t *b, int nblocks, uint8_t pt)
{
    uint32_t expect = 0;
    int k = 0;
    for (int i = nblocks - 2; i >= 0; i--) {
        const sc_red_block_t *r = &b[i];
        if (r->pt != pt || r->samples <= 0 || r->len == 0)
            break;
        expect += (uint32_t)r->samples;
        if (r->ts_offset != expect)
            break;
        k++;
    }
    return k;
}

void sc_red_enc_init(sc_red_enc_t *e, int depth)
{
    memset(e, 0, sizeof *e);
    e->depth = SC_MAX(0, SC_MIN(depth, SC_RED_MAX_DEPTH));
}

ssize_t sc_red_enc_packet(sc_red_enc_t *e, uint8_t pt, uint32_t ts, const uint8_t *opus, size_t len, uint8_t *out,
                          size_t cap)
{
    if (len + 1 > cap)
        return -1;
    /* the newest copies that fit, stopping at the first that does not: a receiver places copies
     * only back to back from the primary */
    int use = 0;
    size_t room = cap - len - 1;
    for (int i = e->n - 1; i >= 0 && use < e->depth; i--) {
        uint32_t delta = ts - e->prev[i].ts;
        if (e->prev[i].len == 0 || delta == 0 || delta > SC_RED_MAX_OFFSET || e->prev[i].len + 4 > room)
            break;
        room -= e->prev[i].len + 4;
        use++;
    }
    size_t o = 0;
    for (int i = e->n - use; i < e->n; i++) { /* headers, oldest first */
        uint32_t delta = ts - e->prev[i].ts;
        size_t l = e->prev[i].len;
        out[o++] = (uint8_t)(0x80 | (pt & 0x7F));
        out[o++] = (uint8_t)(delta >> 6);
        out[o++] = (uint8_t)((delta & 0x3F) << 2 | (uint32_t)(l >> 8));
        out[o++] = (uint8_t)(l & 0xFF);
    }
    out[o++] = pt & 0x7F;
    for (int i = e->n - use; i < e->n; i++) {
        memcpy(out + o, e->prev[i].data, e->prev[i].len);
        o += e->prev[i].len;
    }
    memcpy(out + o, opus, len);
    o += len;
    if (e->depth > 0) { /* remember it; one too long for a block's length field is never a copy */
        if (e->n == e->depth) {
            memmove(&e->prev[0], &e->prev[1], sizeof e->prev[0] * (size_t)(e->n - 1));
            e->n--;
        }
        e->prev[e->n].ts = ts;
        e->prev[e->n].len = len <= SC_RED_MAX_BLOCK_LEN ? len : 0;
        if (e->prev[e->n].len)
            memcpy(e->prev[e->n].data, opus, len);
        e->n++;
    }
    return (ssize_t)o;
}
