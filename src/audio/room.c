/* room.c — see room.h. */
#include "spacecast/room.h"
#include "spacecast/common.h"
#include "spacecast/minus.h"
#include "spacecast/ogg.h"

#include <stdio.h>

#define SC_ROOM_COMPLEXITY 5 /* Opus encoder complexity of the mix: room for many rooms per core */

/* Recording and HLS of a room that (just) went live; caller holds mu. */
static void open_outputs_locked(sc_room_t *r, int resume, int64_t started_at)
{
    const char *dir = r->data_dir[0] ? r->data_dir : NULL;
    int fpp = r->live->pager.frames_per_page;
    if (dir && !r->rec)
        r->rec = sc_recorder_open(dir, r->id, sc_mixer_channels(r->mixer), r->live->preskip, r->title, fpp, resume);
    if (!sc_room_hls(r))
        atomic_store_explicit(&r->hls, sc_hls_new(r->id, dir, r->live->preskip, started_at), memory_order_release);
}

sc_room_t *sc_room_new(const sc_room_config_t *cfg, sc_room_mode_t mode, int64_t started_at, void *owner,
                       const sc_room_hooks_t *hooks)
{
    sc_mixer_config_t mc = { .channels = 1, .bitrate = cfg->bitrate, .complexity = SC_ROOM_COMPLEXITY, .name = cfg->id };
    sc_mixer_t *m = sc_mixer_new(&mc);
    if (!m)
        return NULL;
    sc_room_t *r = sc_calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->mode, mode);
    r->mixer = m;
    r->owner = owner;
    r->hooks = hooks;
    snprintf(r->id, sizeof r->id, "%s", cfg->id);
    snprintf(r->title, sizeof r->title, "%s", cfg->title);
    snprintf(r->data_dir, sizeof r->data_dir, "%s", cfg->data_dir ? cfg->data_dir : "");
    uint16_t preskip = cfg->preskip ? cfg->preskip : (uint16_t)sc_mixer_preskip(m);
    r->live = sc_live_new(sc_mixer_channels(m), preskip, cfg->frames_per_page, r->title);
    /* one page of silence now: a listener arriving before the first tick gets a start point
     * instead of a refusal */
    for (int i = 0; i < cfg->frames_per_page; i++)
        sc_live_push(r->live, sc_opus_silence, SC_OPUS_SILENCE_LEN, SC_FRAME);
    if (mode == SC_ROOM_LIVE) { /* restarted while live: continue the same recording */
        pthread_mutex_lock(&r->mu);
        open_outputs_locked(r, 1, started_at);
        pthread_mutex_unlock(&r->mu);
    }
    return r;
}

void sc_room_free(sc_room_t *r)
{
    if (!r)
        return;
    sc_recorder_close(r->rec);
    sc_mixer_free(r->mixer);
    sc_live_free(r->live);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void sc_room_go_live(sc_room_t *r, int64_t started_at)
{
    pthread_mutex_lock(&r->mu);
    if (atomic_load(&r->mode) == SC_ROOM_LOBBY) {
        open_outputs_locked(r, 0, started_at);
        atomic_store(&r->mode, SC_ROOM_LIVE);
    }
    pthread_mutex_unlock(&r->mu);
}

void sc_room_end(sc_room_t *r)
{
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->mode, SC_ROOM_ENDED);
    sc_live_end(r->live); /* listeners get the end-of-stream page, then are closed */
    sc_recorder_t *rec = r->rec;
    r->rec = NULL; /* the tick pushes to it no more: finished outside mu, which the tick takes */
    sc_hls_end(sc_room_hls(r)); /* kept: the final playlist (EXT-X-ENDLIST) is still served */
    pthread_mutex_unlock(&r->mu);
    sc_recorder_finish(rec); /* disk writes and a sync: never under the lock a tick waits for */
}

void sc_room_close_recording(sc_room_t *r)
{
    pthread_mutex_lock(&r->mu);
    sc_recorder_t *rec = r->rec;
    r->rec = NULL;
    pthread_mutex_unlock(&r->mu);
    sc_recorder_close(rec);
}

sc_page_t *sc_room_live_start(sc_room_t *r, size_t burst_bytes, int max_pages)
{
    if (!burst_bytes)
        return sc_live_start(r->live, 0, max_pages); /* the chain's own lock: never waits on a mix */
    pthread_mutex_lock(&r->mu);
    sc_page_t *p = sc_live_start(r->live, burst_bytes, max_pages);
    pthread_mutex_unlock(&r->mu);
    return p;
}

int sc_room_tick(sc_room_t *r, const uint8_t *lobby_pkt, size_t lobby_len)
{
    int published = 0;
    pthread_mutex_lock(&r->mu);
    int mode = atomic_load_explicit(&r->mode, memory_order_relaxed);
    if (mode == SC_ROOM_LOBBY && lobby_pkt) {
        published = sc_live_push(r->live, lobby_pkt, lobby_len, SC_FRAME);
    } else if (mode == SC_ROOM_LIVE) {
        sc_mixer_frame_t fr;
        if (sc_mixer_tick(r->mixer, &fr, sc_minus_publish, r->owner) == SC_OK && fr.mix_len) {
            published = sc_live_push(r->live, fr.mix, fr.mix_len, SC_FRAME);
            sc_hls_push(sc_room_hls(r), fr.mix, fr.mix_len);
            if (r->rec)
                sc_recorder_push(r->rec, fr.mix, fr.mix_len, SC_FRAME);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return published;
}
