/* fuzz_clip.c — replay navigation inputs: clip.ogg's query (the first byte 0), the clip cutter
 * over any bytes as a recording with any range (1), and the chapters builder over any timeline
 * text (2). A clip that is cut must be whole pages, first BOS, last EOS. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spacecast/api_util.h"
#include "spacecast/clip.h"
#include "spacecast/ogg.h"
#include "spacecast/timeline.h"

static void check_clip(const sc_clip_t *c)
{
    size_t off = 0, len, n = 0;
    while (off < c->len && (len = sc_ogg_page_check(c->data + off, c->len - off)) != 0) {
        if (!!(c->data[off + 5] & SC_OGG_BOS) != (n == 0) || !!(c->data[off + 5] & SC_OGG_EOS) != (off + len == c->len))
            __builtin_trap();
        off += len;
        n++;
    }
    if (off != c->len || n < 3 || c->len > SC_CLIP_MAX_BYTES + SC_OGG_PAGE_MAX + 8192)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        int64_t a, b;
        const char *err;
        if (sc_api_clip_range(sc_slice((const char *)data, size), &a, &b, &err) == 0 &&
            (a < 0 || b <= a || b - a > SC_CLIP_MAX_MS))
            __builtin_trap();
    } else if (mode == 1) {
        if (size < 4)
            return 0;
        int64_t a = (int64_t)(data[0] | data[1] << 8) * 10, d = 1 + (int64_t)(data[2] | data[3] << 8);
        int fd = memfd_create("rec", 0);
        if (fd < 0 || write(fd, data + 4, size - 4) != (ssize_t)(size - 4)) {
            if (fd >= 0)
                close(fd);
            return 0;
        }
        sc_clip_t c;
        if (sc_clip_cut(fd, size - 4, a, a + d, "fuzz", &c) == SC_CLIP_OK) {
            check_clip(&c);
            free(c.data);
        }
        sc_clip_recording_ms(fd, size - 4);
        close(fd);
    } else {
        json_t *c = sc_timeline_chapters((const char *)data, size, 60000, "t", "replay.ogg");
        if (!json_is_array(json_object_get(c, "chapters")))
            __builtin_trap();
        json_decref(c);
    }
    return 0;
}
