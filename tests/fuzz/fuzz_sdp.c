/* fuzz_sdp.c — the SDP parser (sc_sdp_parse) on arbitrary text: an accepted offer has
 * NUL-terminated fields inside their buffers and an audio m-section with an Opus PT, and the
 * answer we write for it (which must fit a generous buffer) parses back with the same audio
 * PT, mid and m-section count, the rejected ones at port 0. The text is an exactly sized heap
 * copy without a NUL, so ASan sees any read past len. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/sdp.h"

static const sc_sdp_local_t local = {
    .ice_ufrag = "fuzU",
    .ice_pwd = "fuzzpassword0123456789ab",
    .fingerprint = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
    .setup = "passive",
    .cand_ip = "192.0.2.1",
    .cand_port = 9999,
    .dir = SC_SDP_RECVONLY,
    .ssrc = 1234,
    .session_id = 1,
    .ice_lite = 1,
};

#define TERMINATED(f) (strnlen((f), sizeof(f)) < sizeof(f))

static void check_fields(const sc_sdp_t *s)
{
    if (!TERMINATED(s->ice_ufrag) || !TERMINATED(s->ice_pwd) || !TERMINATED(s->fp_alg) || !TERMINATED(s->setup) ||
        !TERMINATED(s->cand_ip) || !s->ice_ufrag[0] || !s->ice_pwd[0] || s->fp_len != 32)
        __builtin_trap();
    if (s->nmedia < 1 || s->nmedia > SC_SDP_MAX_MEDIA || s->audio < 0 || s->audio >= s->nmedia)
        __builtin_trap();
    for (int i = 0; i < s->nmedia; i++) {
        const sc_sdp_media_t *m = &s->media[i];
        if (!TERMINATED(m->kind) || !TERMINATED(m->proto) || !TERMINATED(m->mid) || !TERMINATED(m->fmts) ||
            m->opus_pt < -1 || m->opus_pt > 127 || m->port < 0 || m->port > 65535)
            __builtin_trap();
    }
    const sc_sdp_media_t *a = &s->media[s->audio];
    if (strcmp(a->kind, "audio") != 0 || a->opus_pt < 0 || a->port == 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    sc_sdp_t offer;
    const char *why = NULL;
    int rc = sc_sdp_parse(text, size, &offer, &why);
    if (rc != 0 && !why)
        __builtin_trap();
    if (rc == 0) {
        check_fields(&offer);
        static char answer[SC_SDP_MAX_BYTES];
        int n = sc_sdp_write_answer(answer, sizeof answer, &offer, &local);
        if (n <= 0 || (size_t)n != strlen(answer))
            __builtin_trap();
        static sc_sdp_t back;
        if (sc_sdp_parse(answer, (size_t)n, &back, &why) != 0)
            __builtin_trap();
        const sc_sdp_media_t *a = &offer.media[offer.audio], *b = &back.media[back.audio];
        if (back.nmedia != offer.nmedia || back.audio != offer.audio || b->opus_pt != a->opus_pt ||
            strcmp(b->mid, a->mid) != 0 || !back.ice_lite)
            __builtin_trap();
        /* we only receive: recvonly if they send, else inactive */
        int they_send = a->dir == SC_SDP_SENDRECV || a->dir == SC_SDP_SENDONLY;
        if (b->dir != (they_send ? SC_SDP_RECVONLY : SC_SDP_INACTIVE))
            __builtin_trap();
        for (int i = 0; i < back.nmedia; i++)
            if (i != back.audio && back.media[i].port != 0)
                __builtin_trap();
    }
    free(text);
    return 0;
}
