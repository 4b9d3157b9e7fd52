/* engine.c — the audio thread. A timerfd fires every 20 ms on an absolute schedule, so
 * the timeline never drifts; missed ticks (a stalled machine) are caught up, not skipped,
 * so granule positions stay true to the wall clock. Each tick walks the rooms that play
 * (lobby or live; ended ones left the list) and tells their owners through hooks. */
#include "spacecast/engine.h"
#include "spacecast/hls.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/log.h"
#include "spacecast/metrics.h"
#include "spacecast/ogg.h"
#include "spacecast/server.h"

#include <math.h>
#include <opus/opus.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define SC_LOBBY_SECONDS 4                           /* the built-in pattern's loop */
#define SC_LOBBY_MAX_FRAMES (600 * SC_TICKS_PER_S)   /* ten minutes of a lobby file is plenty */
#define SC_LOBBY_MAX_PACKET 400                      /* bytes of one lobby frame */
#define SC_STALL_TICKS SC_TICKS_PER_S                /* behind by more: do not burst it all out */

typedef struct sc_packet {
    uint8_t data[SC_LOBBY_MAX_PACKET];
    uint16_t len;
} sc_packet_t;

static struct {
    pthread_t thread;
    atomic_int running;
    int tfd;
    sc_packet_t *lobby;
    size_t nlobby;
    uint16_t preskip;
    pthread_mutex_t rooms_mu;   /* the list; held through a tick (adds and removes wait for it) */
    sc_room_t *rooms;
    size_t nrooms;
    void (*tick_hook)(void *);  /* before each tick's mix (the demo bot) */
    void *tick_arg;
    uint64_t ticks;             /* engine thread */
    _Atomic uint64_t busy_ns;   /* time spent ticking (what the engine costs, for /metrics) */
} sc_eng = { .rooms_mu = PTHREAD_MUTEX_INITIALIZER };

/* --- lobby audio: encoded once at start, looped by every scheduled Space -------------- */

static void lobby_pattern(void)
{
    int err;
    OpusEncoder *enc = opus_encoder_create(SC_RATE, 1, OPUS_APPLICATION_AUDIO, &err);
    if (!enc) {
        sc_log_error("event=lobby_encoder_failed err=%d", err);
        return;
    }
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(sc_config()->bitrate));
    sc_eng.nlobby = SC_LOBBY_SECONDS * SC_TICKS_PER_S;
    sc_eng.lobby = sc_calloc(sc_eng.nlobby, sizeof *sc_eng.lobby);
    /* a soft two-note chime each second: calm, unmistakably "waiting", never silence */
    static const float notes[] = { 523.25f, 659.25f, 587.33f, 392.0f };
    float pcm[SC_FRAME];
    for (size_t f = 0; f < sc_eng.nlobby; f++) {
        for (int i = 0; i < SC_FRAME; i++) {
            size_t n = f * SC_FRAME + (size_t)i;
            double t = (double)(n % SC_RATE) / SC_RATE;
            float freq = notes[(n / SC_RATE) % 4];
            double env = exp(-3.0 * t) * (1.0 - exp(-60.0 * t));
            pcm[i] = (float)(0.2 * env * sin(2 * M_PI * freq * (double)n / SC_RATE));
        }
        int len = opus_encode_float(enc, pcm, SC_FRAME, sc_eng.lobby[f].data, sizeof sc_eng.lobby[f].data);
        sc_eng.lobby[f].len = len > 0 ? (uint16_t)len : 0;
    }
    opus_int32 la = 0;
    opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&la));
    sc_eng.preskip = (uint16_t)la;
    opus_encoder_destroy(enc);
}

typedef struct lobby_load {
    sc_packet_t *p;
    size_t n, cap;
} lobby_load_t;

static int lobby_packet(void *ctx, const uint8_t *pkt, size_t len, int samples)
{
    lobby_load_t *l = ctx;
    if (samples != SC_FRAME || len > sizeof l->p->data)
        return 0; /* only 20 ms packets loop cleanly; others are skipped */
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->p = sc_realloc(l->p, l->cap * sizeof *l->p);
    }
    memcpy(l->p[l->n].data, pkt, len);
    l->p[l->n++].len = (uint16_t)len;
    return l->n > SC_LOBBY_MAX_FRAMES; /* plenty for a loop */
}

static int lobby_from_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    lobby_load_t l = { 0 };
    sc_ogg_reader_t *rd = sc_ogg_reader_new(lobby_packet, &l);
    uint8_t buf[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = sc_ogg_reader_feed(rd, buf, n);
    fclose(f);
    const sc_opus_head_t *h = sc_ogg_reader_head(rd);
    if (h && h->channels != 1)
        l.n = 0; /* the mix is mono */
    sc_ogg_reader_free(rd);
    if (l.n < 10) {
        free(l.p);
        return -1;
    }
    free(sc_eng.lobby);
    sc_eng.lobby = l.p;
    sc_eng.nlobby = l.n;
    return 0;
}

/* --- rooms ---------------------------------------------------------------------------- */

void sc_engine_add_room(sc_room_t *r)
{
    pthread_mutex_lock(&sc_eng.rooms_mu);
    if (!r->ticking) {
        r->prev = NULL;
        r->next = sc_eng.rooms;
        if (sc_eng.rooms)
            sc_eng.rooms->prev = r;
        sc_eng.rooms = r;
        r->ticking = 1;
        sc_eng.nrooms++;
    }
    pthread_mutex_unlock(&sc_eng.rooms_mu);
}

void sc_engine_remove_room(sc_room_t *r)
{
    pthread_mutex_lock(&sc_eng.rooms_mu);
    if (r->ticking) {
        if (r->prev)
            r->prev->next = r->next;
        else
            sc_eng.rooms = r->next;
        if (r->next)
            r->next->prev = r->prev;
        r->next = r->prev = NULL;
        r->ticking = 0;
        sc_eng.nrooms--;
    }
    pthread_mutex_unlock(&sc_eng.rooms_mu);
}

size_t sc_engine_rooms(void)
{
    pthread_mutex_lock(&sc_eng.rooms_mu);
    size_t n = sc_eng.nrooms;
    pthread_mutex_unlock(&sc_eng.rooms_mu);
    return n;
}

void sc_engine_set_tick_hook(void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&sc_eng.rooms_mu);
    sc_eng.tick_hook = fn;
    sc_eng.tick_arg = arg;
    pthread_mutex_unlock(&sc_eng.rooms_mu);
}

uint16_t sc_engine_lobby_preskip(void) { return sc_eng.preskip; }

/* --- the tick ----------------------------------------------------------------------- */

static void tick_all(void)
{
    uint64_t t0 = sc_now_ns();
    int published = 0;
    sc_eng.ticks++;
    int speaking_due = sc_eng.ticks % SC_ROOM_SPEAKING_TICKS == 0;
    int second_due = sc_eng.ticks % SC_TICKS_PER_S == 0;
    pthread_mutex_lock(&sc_eng.rooms_mu);
    if (sc_eng.tick_hook)
        sc_eng.tick_hook(sc_eng.tick_arg);
    for (sc_room_t *r = sc_eng.rooms; r; r = r->next) {
        const sc_packet_t *lp = sc_eng.nlobby ? &sc_eng.lobby[r->lobby_pos++ % sc_eng.nlobby] : NULL;
        published |= sc_room_tick(r, lp ? lp->data : NULL, lp ? lp->len : 0);
    }
    sc_hls_kick(); /* the mix packets just queued for HLS, all at once */
    for (sc_room_t *r = sc_eng.rooms; r; r = r->next) {
        int live = atomic_load(&r->mode) == SC_ROOM_LIVE;
        if (speaking_due && live && r->hooks && r->hooks->on_speaking) {
            sc_mixer_speaker_state_t st[SC_MIXER_MAX_SPEAKERS];
            size_t n = sc_mixer_speakers(r->mixer, st, SC_MIXER_MAX_SPEAKERS);
            r->hooks->on_speaking(r->owner, st, n);
        }
        if (second_due && r->hooks && r->hooks->on_second)
            r->hooks->on_second(r->owner);
    }
    pthread_mutex_unlock(&sc_eng.rooms_mu);
    if (published || second_due)
        sc_server_wake_workers(); /* one wake per worker per page, not per listener */
    atomic_fetch_add_explicit(&sc_eng.busy_ns, sc_now_ns() - t0, memory_order_relaxed);
}

static void engine_metrics(sc_metrics_buf_t *b, void *arg)
{
    (void)arg;
    sc_metrics_printf(b, "# HELP spacecast_engine_rooms Rooms the engine ticks: live Spaces and lobbies someone waits in.\n"
                         "# TYPE spacecast_engine_rooms gauge\nspacecast_engine_rooms %zu\n",
                      sc_engine_rooms());
    sc_metrics_printf(b, "# HELP spacecast_engine_busy_seconds_total Time the engine spent ticking rooms.\n"
                         "# TYPE spacecast_engine_busy_seconds_total counter\nspacecast_engine_busy_seconds_total %.6f\n",
                      (double)atomic_load(&sc_eng.busy_ns) / 1e9);
}

static void *engine_main(void *arg)
{
    (void)arg;
    while (atomic_load(&sc_eng.running)) {
        uint64_t expirations = 0;
        if (read(sc_eng.tfd, &expirations, sizeof expirations) != sizeof expirations)
            continue;
        if (expirations > SC_STALL_TICKS) { /* stalled over a second: do not burst a second of audio at once */
            sc_log_warn("event=engine_stall ticks_missed=%llu", (unsigned long long)expirations);
            expirations = 1;
        }
        for (uint64_t i = 0; i < expirations; i++)
            tick_all();
    }
    return NULL;
}

void sc_engine_init(void)
{
    const char *lobby = sc_config()->lobby_file;
    sc_mixer_metrics_register(); /* the series exist before the first Space */
    lobby_pattern();
    if (lobby[0] && lobby_from_file(lobby) != 0)
        sc_log_warn("event=lobby_file_unusable file=%s using=built_in", lobby);
}

int sc_engine_start(void)
{
    if (!sc_eng.lobby)
        sc_engine_init();
    sc_eng.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec its = { .it_interval = { 0, SC_FRAME_MS * 1000000L }, .it_value = { 0, SC_FRAME_MS * 1000000L } };
    if (sc_eng.tfd < 0 || timerfd_settime(sc_eng.tfd, 0, &its, NULL) < 0)
        return -1;
    sc_recorder_sync_start();
    sc_metrics_register("engine", engine_metrics, NULL);
    sc_hls_init();
    atomic_store(&sc_eng.running, 1);
    return pthread_create(&sc_eng.thread, NULL, engine_main, NULL) == 0 ? 0 : -1;
}

void sc_engine_stop(void)
{
    if (!atomic_exchange(&sc_eng.running, 0))
        return;
    pthread_join(sc_eng.thread, NULL);
    sc_metrics_unregister(engine_metrics, NULL);
    close(sc_eng.tfd);
    sc_recorder_sync_stop();
    /* Spaces still live stay live across a restart: close their recordings without EOS */
    pthread_mutex_lock(&sc_eng.rooms_mu);
    for (sc_room_t *r = sc_eng.rooms; r; r = r->next)
        sc_room_close_recording(r);
    pthread_mutex_unlock(&sc_eng.rooms_mu);
}
