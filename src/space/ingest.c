/* ingest.c — a speaker's audio into a Space's mixer, the part every ingest shares (the
 * Icecast source api/api_source.c, the WebSocket link api/api_speak.c, WHIP rtc/rtc.c, the
 * edge relay relay.c): claiming the speaker slot, replacing an older connection of the same
 * speaker, pushing packets, and letting go. */
#include "spacecast/ingest.h"
#include "spacecast/common.h"
#include "spacecast/log.h"
#include "spacecast/mixer.h"
#include "spacecast/room.h"

#include <stdio.h>

int sc_ingest_claim(sc_ingest_slot_t *slot, sc_space_t *s, int index, uint32_t token_gen, int want_mix_minus,
                    int jitter_ms)
{
    pthread_mutex_lock(&s->mu);
    sc_speaker_t *sk = &s->speakers[index];
    if (sk->removed || sk->generation != token_gen) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    slot->space = sc_space_ref(s); /* the slot's reference, until sc_ingest_release */
    slot->index = index;
    slot->token_gen = token_gen;
    slot->gen = ++sk->ingest_gen; /* the previous connection sees the change and leaves */
    sk->connected = 1;
    int muted = sk->muted;
    pthread_mutex_unlock(&s->mu);
    /* a speaker early in the lobby makes its room: the mixer holds the speaker for the start */
    sc_room_t *r = slot->room = sc_space_room_use(s, 1);
    if (r) { /* the room's lock makes the replacement one step for a tick and a rival claim */
        sc_mixer_t *m = r->mixer;
        pthread_mutex_lock(&r->mu);
        sc_mixer_remove_speaker(m, (uint32_t)index);
        sc_mixer_add_speaker(m, (uint32_t)index, want_mix_minus);
        if (jitter_ms)
            sc_mixer_set_jitter(m, (uint32_t)index, jitter_ms, SC_MAX(jitter_ms / 2, SC_FRAME_MS));
        sc_mixer_set_muted(m, (uint32_t)index, muted);
        pthread_mutex_unlock(&r->mu);
    }
    sc_space_changed(s);
    return 0;
}

int sc_ingest_current(const sc_ingest_slot_t *slot)
{
    sc_space_t *s = slot->space;
    pthread_mutex_lock(&s->mu);
    const sc_speaker_t *sk = &s->speakers[slot->index];
    int ok = !sk->removed && sk->ingest_gen == slot->gen && sk->generation == slot->token_gen &&
             s->state != SC_SPACE_ENDED;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

int sc_ingest_push(const sc_ingest_slot_t *slot, int32_t seq, const uint8_t *pkt, size_t len)
{
    sc_space_t *s = slot->space;
    atomic_store_explicit(&s->speakers[slot->index].ingest_rx_ms, sc_now_ms(), memory_order_relaxed);
    /* the slot uses the room (sc_space_room_use): it stays while the slot does, no lock */
    return slot->room ? sc_mixer_push(slot->room->mixer, (uint32_t)slot->index, seq, pkt, len) : -1;
}

int sc_ingest_push_pcm(const sc_ingest_slot_t *slot, const float *pcm, int frames)
{
    sc_space_t *s = slot->space;
    atomic_store_explicit(&s->speakers[slot->index].ingest_rx_ms, sc_now_ms(), memory_order_relaxed);
    return slot->room ? sc_mixer_push_pcm(slot->room->mixer, (uint32_t)slot->index, pcm, frames) : -1;
}

int sc_ingest_channels(const sc_ingest_slot_t *slot)
{
    return slot->room ? sc_mixer_channels(slot->room->mixer) : 1;
}

int sc_ingest_ahead(const sc_ingest_slot_t *slot)
{
    if (!slot->room)
        return 0;
    sc_mixer_speaker_state_t st[SC_MIXER_MAX_SPEAKERS];
    size_t n = sc_mixer_speakers(slot->room->mixer, st, SC_ARRAY_LEN(st));
    for (size_t i = 0; i < n; i++)
        if (st[i].id == (uint32_t)slot->index)
            /* only while the mix plays it: one still filling its buffer (or a Space not live,
             * whose mixer is not ticked) is never held back, or it would never start */
            return st[i].present && st[i].buffered_ms >= SC_MAX(st[i].target_ms, SC_INGEST_AHEAD_MS);
    return 0;
}

int sc_ingest_busy(sc_space_t *s, int index)
{
    pthread_mutex_lock(&s->mu);
    int connected = s->speakers[index].connected;
    pthread_mutex_unlock(&s->mu);
    uint64_t rx = atomic_load_explicit(&s->speakers[index].ingest_rx_ms, memory_order_relaxed);
    return connected && rx && sc_now_ms() - rx < SC_INGEST_BUSY_MS;
}

void sc_ingest_release(sc_ingest_slot_t *slot)
{
    sc_space_t *s = slot->space;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    sc_speaker_t *sk = &s->speakers[slot->index];
    int current = sk->ingest_gen == slot->gen;
    if (current) {
        sk->connected = 0;
        sk->speaking = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (current) {
        sc_mixer_speaker_state_t st[SC_MIXER_MAX_SPEAKERS];
        size_t n = 0;
        sc_room_t *r = slot->room;
        if (r) {
            pthread_mutex_lock(&r->mu);
            n = sc_mixer_speakers(r->mixer, st, SC_ARRAY_LEN(st));
            sc_mixer_finish_speaker(r->mixer, (uint32_t)slot->index); /* their last words still play */
            pthread_mutex_unlock(&r->mu);
        }
        /* what the network did to this speaker, as the mix saw it */
        for (size_t i = 0; i < n; i++)
            if (st[i].id == (uint32_t)slot->index)
                sc_log_info("event=speaker_left space=%s speaker=%d packets=%llu concealed=%llu fec_recovered=%llu "
                            "lost=%llu late=%llu dropped=%llu target_ms=%d accelerated_ms=%llu expanded_ms=%llu "
                            "concealed_ms=%llu buffered_ms=%d",
                            s->id, slot->index, (unsigned long long)st[i].packets, (unsigned long long)st[i].concealed,
                            (unsigned long long)st[i].fec_recovered, (unsigned long long)st[i].lost,
                            (unsigned long long)st[i].late,
                            (unsigned long long)st[i].dropped, st[i].target_ms,
                            (unsigned long long)st[i].accelerated_ms, (unsigned long long)st[i].expanded_ms,
                            (unsigned long long)st[i].concealed_ms, st[i].buffered_ms);
        sc_space_changed(s);
    }
    if (slot->room)
        sc_space_room_done(s);
    slot->room = NULL;
    slot->space = NULL;
    sc_space_unref(s);
}
