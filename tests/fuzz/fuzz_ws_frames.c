/* fuzz_ws_frames.c — a detached server-side WebSocket session (websocket.c over wslay) fed
 * arbitrary client bytes, split into pieces of a size the input chooses.
 *
 * Checked: no message over 64 KB reaches the handler (and nothing near a huge length field is
 * allocated: libFuzzer's malloc limit would report it), text messages are valid UTF-8, the
 * handler's on_close runs exactly once, and everything the server writes is a well-formed,
 * unmasked frame sequence. Each piece is fed from its own exactly sized copy (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/websocket.h"

typedef struct fz {
    int closes;
    uint64_t sum;
} fz_t;

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. */
static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void on_message(sc_ws_t *ws, int opcode, const uint8_t *data, size_t len)
{
    fz_t *f = sc_ws_user(ws);
    if (len > SC_WS_MAX_MESSAGE || (opcode != SC_WS_TEXT && opcode != SC_WS_BINARY))
        __builtin_trap();
    if (opcode == SC_WS_TEXT && !utf8_valid(data, len))
        __builtin_trap();
    for (size_t i = 0; i < len; i++)
        f->sum = f->sum * 31 + data[i];
    /* reach the send and close paths from inside wslay_event_recv too */
    if (len && data[0] == 'E')
        sc_ws_send(ws, opcode, data, len);
    else if (len && data[0] == 'C')
        sc_ws_close(ws, 4000 + (uint16_t)(len % 1000), "fuzz");
}

static void on_close(sc_ws_t *ws)
{
    fz_t *f = sc_ws_user(ws);
    if (++f->closes != 1)
        __builtin_trap();
}

static const sc_ws_handler_t handler = { on_message, on_close };

/* Server frames: unmasked, known opcodes, control frames short and final, lengths that add up. */
static void check_output(sc_slice_t o)
{
    const uint8_t *p = (const uint8_t *)o.base;
    size_t i = 0;
    while (i < o.len) {
        if (o.len - i < 2)
            __builtin_trap();
        uint8_t op = p[i] & 0x0f;
        int fin = p[i] >> 7;
        if ((p[i] & 0x70) || (p[i + 1] & 0x80))
            __builtin_trap();
        uint64_t len = p[i + 1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (o.len - i < 4)
                __builtin_trap();
            len = (uint64_t)p[i + 2] << 8 | p[i + 3];
            hl = 4;
        } else if (len == 127) {
            if (o.len - i < 10)
                __builtin_trap();
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | p[i + 2 + k];
            hl = 10;
        }
        if (op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
            __builtin_trap();
        if (op >= 8 && (len > 125 || !fin))
            __builtin_trap();
        if (len > o.len - i - hl)
            __builtin_trap();
        i += hl + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1; /* piece size: 1..256 bytes */
    data++, size--;
    fz_t f = { 0 };
    sc_ws_t *ws = sc_ws_new_detached(&handler, &f);
    int open = 1;
    for (size_t off = 0; off < size && open; off += step) {
        size_t n = size - off < step ? size - off : step;
        uint8_t *piece = malloc(n);
        memcpy(piece, data + off, n);
        open = sc_ws_feed(ws, piece, n) == SC_OK;
        free(piece);
        if (open && f.closes)
            __builtin_trap(); /* on_close only when the session ends */
    }
    check_output(sc_ws_output(ws));
    sc_ws_free(ws);
    if (f.closes != 1)
        __builtin_trap();
    return 0;
}
