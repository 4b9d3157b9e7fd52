/* store.h — SQLite persistence: the server keeps its state in memory, writes each change
 * through to the store, and loads everything back at start.
 *
 * Not thread-safe by itself: one sc_store_t belongs to one thread at a time (the caller
 * serialises), because its prepared statements are cached and reused. Separate processes
 * may share a database; SQLITE_BUSY is retried for up to 2 s and then surfaced as -1.
 */
#ifndef SC_STORE_H
#define SC_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Callers are event loops: a locked database may stall one this long, no more. */
#define SC_STORE_BUSY_MS 250

typedef struct sc_store sc_store_t;

enum { SC_STORE_SCHEDULED = 0, SC_STORE_LIVE = 1, SC_STORE_ENDED = 2 };

typedef struct sc_store_space {
    char id[33];
    char title[257];
    int state; /* 0 scheduled, 1 live, 2 ended */
    int64_t created_at, scheduled_start, started_at, ended_at; /* unix s, 0 = unset */
    int record;
    int max_listeners;
    int64_t peak_listeners, total_joins;
    char pin_url[513];   /* the pinned link, "" when none */
    char pin_text[281];
    int64_t pin_at;      /* when it was pinned (unix s) */
} sc_store_space_t;

typedef struct sc_store_speaker {
    char space_id[33];
    char name[65];
    int role; /* sc_role_t */
    int muted;
    uint32_t generation;
    int removed;
} sc_store_speaker_t;

/** Take DIR for this process alone: an exclusive lock on DIR/spacecast.lock (creating DIR if
 * missing), held until exit, so a second server on the same data never starts; warns if DIR is
 * open to other users. Returns the lock's descriptor (keep it open), or -1 with a one-line
 * reason in err (naming the holder's pid when it is another server). */
int sc_store_lock_dir(const char *dir, char *err, size_t errsz);
/** Open (create) DIR/spacecast.db (mode 0600, and its -wal/-shm too), creating DIR itself if missing, and migrate it. Errors (read-only dir, corrupt file, newer schema) return NULL and write a one-line reason into err. */
sc_store_t *sc_store_open(const char *dir, char *err, size_t errsz);
/** Finalize statements and close the database; NULL is a no-op. */
void sc_store_close(sc_store_t *s);
/** Insert or update a space by id (its speakers are kept). Returns 0 or -1 (logged). */
int sc_store_put_space(sc_store_t *s, const sc_store_space_t *sp);
/** Insert or update a speaker by (space_id, name); the space must already be stored. Returns 0 or -1 (logged). */
int sc_store_put_speaker(sc_store_t *s, const sc_store_speaker_t *sk);
/** Call cb for every space in id order. Returns 0, cb's non-zero return if it stopped early, or -1 on a database error. cb must not call sc_store_each_space. */
int sc_store_each_space(sc_store_t *s, int (*cb)(void *ctx, const sc_store_space_t *), void *ctx);
/** Call cb for every speaker, ordered by (space_id, name); same returns as sc_store_each_space. cb must not call sc_store_each_speaker. */
int sc_store_each_speaker(sc_store_t *s, int (*cb)(void *ctx, const sc_store_speaker_t *), void *ctx);
/** One space by id: 1 with *out filled, 0 if there is none, -1 on a database error. */
int sc_store_get_space(sc_store_t *s, const char *id, sc_store_space_t *out);
/** Call cb for every speaker of one space, by name; returns as sc_store_each_speaker. */
int sc_store_each_speaker_of(sc_store_t *s, const char *space_id, int (*cb)(void *ctx, const sc_store_speaker_t *),
                             void *ctx);
/** Ended Spaces, latest first: up to limit of them that come after (before_ended_at, before_id) in
 *  (ended_at, id) descending order (INT64_MAX and "" for the first page), each with its host's
 *  name ("" if none). Same returns as sc_store_each_space. */
int sc_store_ended_page(sc_store_t *s, int64_t before_ended_at, const char *before_id, int limit,
                        int (*cb)(void *ctx, const sc_store_space_t *, const char *host), void *ctx);
/** Insert or replace a Space's numbers (sc_stats_save's text). Returns 0 or -1 (logged). */
int sc_store_put_stats(sc_store_t *s, const char *space_id, const char *data, int64_t now);
/** A Space's numbers as stored (malloc'd; the caller frees), or NULL when none or on error. */
char *sc_store_get_stats(sc_store_t *s, const char *space_id);
/** Scheduled Spaces, soonest first: up to limit of them after (after_start, after_id) in
 *  (start, id) ascending order, start being scheduled_start or, when none was given,
 *  created_at (INT64_MIN and "" for the first page); each with its host's name. Same returns. */
int sc_store_scheduled_page(sc_store_t *s, int64_t after_start, const char *after_id, int limit,
                            int (*cb)(void *ctx, const sc_store_space_t *, const char *host), void *ctx);
/** Get-or-create the named 32-byte random secret (e.g. the token signing key, so tokens survive a restart). Returns 0 or -1. */
int sc_store_secret(sc_store_t *s, const char *name, uint8_t out[32]);
/** Read DIR/admin.key, or create it (32 hex chars, mode 0600) if missing; *created (may be NULL) says which. out needs >= 33 bytes. Returns 0 or -1 (logged). */
int sc_store_admin_key(const char *dir, char *out, size_t outsz, int *created);

#endif
