/* store.c — SQLite write-through persistence for Spaces, speakers and server secrets.
 *
 * WAL with synchronous=NORMAL: a commit is a WAL append without fsync, so kill -9 loses
 * nothing committed (only a power cut can lose the last commits). The schema version is
 * PRAGMA user_version, bumped inside the same transaction as each migration, so a crash
 * mid-migration leaves the previous version intact.
 */
#include "spacecast/store.h"
#include "spacecast/common.h"
#include "spacecast/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#define SC_STORE_SECRET_LEN 32

struct sc_store {
    sqlite3 *db;
    /* prepared once, reused for every call: the reason the store is single-threaded */
    sqlite3_stmt *put_space, *put_speaker, *each_space, *each_speaker, *secret_get, *secret_put, *ended_page,
        *sched_page;
    sqlite3_stmt *get_space, *speakers_of, *put_stats, *get_stats;
    char path[PATH_MAX];
};

/* Migration i brings the schema from version i to i + 1. Append only; never edit a shipped one. */
static const char *const sc_store_migrations[] = {
    "CREATE TABLE spaces ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " title TEXT NOT NULL,"
    " state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 2),"
    " created_at INTEGER NOT NULL DEFAULT 0,"
    " scheduled_start INTEGER NOT NULL DEFAULT 0,"
    " started_at INTEGER NOT NULL DEFAULT 0,"
    " ended_at INTEGER NOT NULL DEFAULT 0,"
    " record INTEGER NOT NULL DEFAULT 0,"
    " max_listeners INTEGER NOT NULL DEFAULT 0,"
    " peak_listeners INTEGER NOT NULL DEFAULT 0,"
    " total_joins INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE speakers ("
    " space_id TEXT NOT NULL REFERENCES spaces(id),"
    " name TEXT NOT NULL,"
    " role INTEGER NOT NULL,"
    " muted INTEGER NOT NULL DEFAULT 0,"
    " generation INTEGER NOT NULL DEFAULT 0,"
    " removed INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (space_id, name)) WITHOUT ROWID;"
    "CREATE TABLE secrets ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value BLOB NOT NULL CHECK (length(value) = 32),"
    " created_at INTEGER NOT NULL);",
    /* 2: the ended Spaces, latest first, page by page (GET /api/spaces?state=ended) */
    "CREATE INDEX spaces_ended ON spaces (state, ended_at, id);",
    /* 3: the pinned link (#19), and each Space's numbers for its host */
    "ALTER TABLE spaces ADD COLUMN pin_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE spaces ADD COLUMN pin_text TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE spaces ADD COLUMN pin_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE space_stats ("
    " space_id TEXT PRIMARY KEY NOT NULL REFERENCES spaces(id),"
    " data TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL) WITHOUT ROWID;",
    /* 4: the scheduled Spaces, soonest first (when none was given: by creation), page by page */
    "CREATE INDEX spaces_scheduled ON spaces (state,"
    " (CASE WHEN scheduled_start > 0 THEN scheduled_start ELSE created_at END), id);",
};

/* Upserts, not INSERT OR REPLACE: REPLACE deletes the old row first, which would trip the
 * speakers' foreign key whenever a space is updated. */
#define SPACE_COLS                                                                                         \
    "id, title, state, created_at, scheduled_start, started_at, ended_at, record, max_listeners, "          \
    "peak_listeners, total_joins, pin_url, pin_text, pin_at"
#define SPACE_NCOLS 14 /* the columns of SPACE_COLS: what a query selects after them comes at this index */
static const char sc_sql_put_space[] =
    "INSERT INTO spaces (" SPACE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    " ON CONFLICT (id) DO UPDATE SET title = excluded.title, state = excluded.state,"
    " created_at = excluded.created_at, scheduled_start = excluded.scheduled_start,"
    " started_at = excluded.started_at, ended_at = excluded.ended_at, record = excluded.record,"
    " max_listeners = excluded.max_listeners, peak_listeners = excluded.peak_listeners,"
    " total_joins = excluded.total_joins, pin_url = excluded.pin_url, pin_text = excluded.pin_text,"
    " pin_at = excluded.pin_at";
static const char sc_sql_put_speaker[] =
    "INSERT INTO speakers (space_id, name, role, muted, generation, removed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT (space_id, name) DO UPDATE SET role = excluded.role, muted = excluded.muted,"
    " generation = excluded.generation, removed = excluded.removed";
static const char sc_sql_each_space[] = "SELECT " SPACE_COLS " FROM spaces ORDER BY id";
static const char sc_sql_each_speaker[] =
    "SELECT space_id, name, role, muted, generation, removed FROM speakers ORDER BY space_id, name";
static const char sc_sql_get_space[] = "SELECT " SPACE_COLS " FROM spaces WHERE id = ?1";
static const char sc_sql_speakers_of[] =
    "SELECT space_id, name, role, muted, generation, removed FROM speakers WHERE space_id = ?1 ORDER BY name";
/* keyset paging: the page after (ended_at, id), on the spaces_ended index */
/* the same, soonest first, on the spaces_scheduled index (the expression must match it) */
#define SCHED_KEY "(CASE WHEN scheduled_start > 0 THEN scheduled_start ELSE created_at END)"
static const char sc_sql_sched_page[] =
    "SELECT " SPACE_COLS ", (SELECT name FROM speakers WHERE space_id = spaces.id AND role = 3 LIMIT 1)"
    " FROM spaces WHERE state = 0 AND (" SCHED_KEY ", id) > (?1, ?2) ORDER BY " SCHED_KEY ", id LIMIT ?3";
static const char sc_sql_ended_page[] =
    "SELECT " SPACE_COLS ", (SELECT name FROM speakers WHERE space_id = spaces.id AND role = 3 LIMIT 1)"
    " FROM spaces WHERE state = 2 AND (ended_at, id) < (?1, ?2) ORDER BY ended_at DESC, id DESC LIMIT ?3";
static const char sc_sql_secret_get[] = "SELECT value FROM secrets WHERE name = ?1";
static const char sc_sql_put_stats[] =
    "INSERT INTO space_stats (space_id, data, updated_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (space_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at";
static const char sc_sql_get_stats[] = "SELECT data FROM space_stats WHERE space_id = ?1";
/* OR IGNORE: if another process created it first, we read theirs back */
static const char sc_sql_secret_put[] = "INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?1, ?2, ?3)";

static void seterr(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
    if (err == NULL || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* One logfmt line with SQLite's own words; the caller returns -1. */
static int store_fail(sc_store_t *s, const char *op, int rc)
{
    char q[512], p[PATH_MAX + 8];
    sc_log_error("msg=\"store %s failed\" err=%s code=%d db=%s", op,
                 sc_log_quote(sqlite3_errmsg(s->db), q, sizeof q), rc, sc_log_quote(s->path, p, sizeof p));
    return -1;
}

/* Create DIR (one level, 0700: it will hold secrets) if missing and check it is a writable directory. */
static int ensure_dir(const char *dir, char *err, size_t errsz)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        seterr(err, errsz, "cannot create data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0) {
        seterr(err, errsz, "cannot stat data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        seterr(err, errsz, "data directory %s is not a directory", dir);
        return -1;
    }
    /* SQLite must create -wal and -shm files next to the database */
    if (access(dir, W_OK | X_OK) != 0) {
        seterr(err, errsz, "data directory %s is not writable: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Each step in its own IMMEDIATE transaction, re-reading the version under the write lock
 * so two processes starting together never apply a migration twice. */
static int migrate(sc_store_t *s, char *err, size_t errsz)
{
    const int latest = (int)SC_ARRAY_LEN(sc_store_migrations);
    for (;;) {
        int v = 0, rc = exec_sql(s->db, "BEGIN IMMEDIATE");
        if (rc == SQLITE_OK)
            rc = user_version(s->db, &v);
        if (rc != SQLITE_OK) {
            seterr(err, errsz, "%s: %s", s->path, sqlite3_errmsg(s->db));
            exec_sql(s->db, "ROLLBACK");
            return -1;
        }
        if (v > latest) {
            exec_sql(s->db, "ROLLBACK");
            seterr(err, errsz, "%s: schema version %d is newer than this spacecast supports (%d); upgrade spacecast",
                   s->path, v, latest);
            return -1;
        }
        if (v == latest) {
            if (exec_sql(s->db, "COMMIT") == SQLITE_OK)
                return 0;
            seterr(err, errsz, "%s: %s", s->path, sqlite3_errmsg(s->db));
            exec_sql(s->db, "ROLLBACK");
            return -1;
        }
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if ((rc = exec_sql(s->db, sc_store_migrations[v])) != SQLITE_OK || (rc = exec_sql(s->db, bump)) != SQLITE_OK ||
            (rc = exec_sql(s->db, "COMMIT")) != SQLITE_OK) {
            seterr(err, errsz, "%s: migration to schema version %d failed: %s", s->path, v + 1,
                   sqlite3_errmsg(s->db));
            exec_sql(s->db, "ROLLBACK");
            return -1;
        }
        sc_log_info("msg=\"store migrated\" version=%d", v + 1);
    }
}

static int set_wal(sc_store_t *s, char *err, size_t errsz)
{
    sqlite3_stmt *st;
    int ok = 0, rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        ok = mode && strcmp((const char *)mode, "wal") == 0;
    }
    if (rc == SQLITE_ROW && !ok)
        seterr(err, errsz, "%s: cannot switch to WAL journal mode", s->path);
    else if (!ok)
        seterr(err, errsz, "%s: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

static int prepare(sc_store_t *s, sqlite3_stmt **st, const char *sql, char *err, size_t errsz)
{
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        seterr(err, errsz, "%s: cannot prepare statement: %s", s->path, sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

/* The database holds the token signing key: it and its -wal and -shm companions are 0600
 * whatever the umask or an older install left (SQLite gives the companions the database
 * file's mode, so the file is made 0600 before SQLite first opens it). */
static int private_files(const char *db, char *err, size_t errsz)
{
    int fd = open(db, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        seterr(err, errsz, "cannot create %s with mode 0600: %s", db, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    static const char *const companions[] = { "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < SC_ARRAY_LEN(companions); i++) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s%s", db, companions[i]);
        if (chmod(p, 0600) != 0 && errno != ENOENT) {
            seterr(err, errsz, "cannot make %s private (0600): %s", p, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int sc_store_lock_dir(const char *dir, char *err, size_t errsz)
{
    if (ensure_dir(dir, err, errsz) != 0)
        return -1;
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/spacecast.lock", dir) >= sizeof path) {
        seterr(err, errsz, "data directory path too long: %s", dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        seterr(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        seterr(err, errsz, "data directory %s is in use by another spacecast (pid %s); one server per data directory",
               dir, pid[0] ? pid : "unknown");
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the pid is only for the message a second server prints: the lock holds without it */
    }
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 007))
        sc_log_warn("msg=\"data directory is open to other users; its secrets are 0600, but chmod 0700 it\" dir=%s "
                    "mode=%03o", dir, (unsigned)(st.st_mode & 0777));
    return fd; /* held (and so locked) until the process exits */
}

sc_store_t *sc_store_open(const char *dir, char *err, size_t errsz)
{
    seterr(err, errsz, "%s", "");
    if (ensure_dir(dir, err, errsz) != 0)
        return NULL;
    sc_store_t *s = sc_calloc(1, sizeof *s);
    if ((size_t)snprintf(s->path, sizeof s->path, "%s/spacecast.db", dir) >= sizeof s->path) {
        seterr(err, errsz, "data directory path too long: %s", dir);
        free(s);
        return NULL;
    }
    if (private_files(s->path, err, errsz) != 0) {
        free(s);
        return NULL;
    }
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        seterr(err, errsz, "cannot open %s: %s", s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, SC_STORE_BUSY_MS);
    /* the first read of the file happens here, so a corrupt or foreign file fails here */
    if (set_wal(s, err, errsz) != 0)
        goto fail;
    if (exec_sql(s->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON") != SQLITE_OK) {
        seterr(err, errsz, "%s: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (migrate(s, err, errsz) != 0)
        goto fail;
    if (prepare(s, &s->put_space, sc_sql_put_space, err, errsz) != 0 ||
        prepare(s, &s->put_speaker, sc_sql_put_speaker, err, errsz) != 0 ||
        prepare(s, &s->each_space, sc_sql_each_space, err, errsz) != 0 ||
        prepare(s, &s->each_speaker, sc_sql_each_speaker, err, errsz) != 0 ||
        prepare(s, &s->secret_get, sc_sql_secret_get, err, errsz) != 0 ||
        prepare(s, &s->secret_put, sc_sql_secret_put, err, errsz) != 0 ||
        prepare(s, &s->ended_page, sc_sql_ended_page, err, errsz) != 0 ||
        prepare(s, &s->sched_page, sc_sql_sched_page, err, errsz) != 0 ||
        prepare(s, &s->get_space, sc_sql_get_space, err, errsz) != 0 ||
        prepare(s, &s->speakers_of, sc_sql_speakers_of, err, errsz) != 0 ||
        prepare(s, &s->put_stats, sc_sql_put_stats, err, errsz) != 0 ||
        prepare(s, &s->get_stats, sc_sql_get_stats, err, errsz) != 0)
        goto fail;
    return s;
fail:
    sc_store_close(s);
    return NULL;
}

void sc_store_close(sc_store_t *s)
{
    if (s == NULL)
        return;
    sqlite3_stmt *all[] = { s->put_space, s->put_speaker, s->each_space, s->each_speaker, s->secret_get,
                            s->secret_put, s->ended_page, s->sched_page, s->get_space, s->speakers_of, s->put_stats, s->get_stats };
    for (size_t i = 0; i < SC_ARRAY_LEN(all); i++)
        sqlite3_finalize(all[i]); /* NULL is a no-op */
    sqlite3_close(s->db);
    free(s);
}

/* Run a bound write statement to completion and leave it ready for the next call. */
static int step_done(sc_store_t *s, sqlite3_stmt *st, const char *op)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : store_fail(s, op, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int valid_text(const char *p, size_t cap, size_t min)
{
    size_t n = strnlen(p, cap);
    return n < cap && n >= min;
}

int sc_store_put_space(sc_store_t *s, const sc_store_space_t *sp)
{
    if (!valid_text(sp->id, sizeof sp->id, 1) || !valid_text(sp->title, sizeof sp->title, 0) ||
        !valid_text(sp->pin_url, sizeof sp->pin_url, 0) || !valid_text(sp->pin_text, sizeof sp->pin_text, 0)) {
        sc_log_error("msg=\"store put_space refused\" reason=\"id, title or pin not terminated\"");
        return -1;
    }
    sqlite3_stmt *st = s->put_space;
    sqlite3_bind_text(st, 1, sp->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sp->title, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, sp->state);
    sqlite3_bind_int64(st, 4, sp->created_at);
    sqlite3_bind_int64(st, 5, sp->scheduled_start);
    sqlite3_bind_int64(st, 6, sp->started_at);
    sqlite3_bind_int64(st, 7, sp->ended_at);
    sqlite3_bind_int(st, 8, sp->record);
    sqlite3_bind_int(st, 9, sp->max_listeners);
    sqlite3_bind_int64(st, 10, sp->peak_listeners);
    sqlite3_bind_int64(st, 11, sp->total_joins);
    sqlite3_bind_text(st, 12, sp->pin_url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, sp->pin_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 14, sp->pin_at);
    return step_done(s, st, "put_space");
}

int sc_store_put_speaker(sc_store_t *s, const sc_store_speaker_t *sk)
{
    if (!valid_text(sk->space_id, sizeof sk->space_id, 1) || !valid_text(sk->name, sizeof sk->name, 1)) {
        sc_log_error("msg=\"store put_speaker refused\" reason=\"space_id or name not terminated\"");
        return -1;
    }
    sqlite3_stmt *st = s->put_speaker;
    sqlite3_bind_text(st, 1, sk->space_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sk->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, sk->role);
    sqlite3_bind_int(st, 4, sk->muted);
    sqlite3_bind_int64(st, 5, sk->generation);
    sqlite3_bind_int(st, 6, sk->removed);
    return step_done(s, st, "put_speaker");
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    n = SC_MIN(n, cap - 1); /* only a hand-edited database can be longer; cut, never overflow */
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

/* The SPACE_COLS of the current row. */
static void col_space(sqlite3_stmt *st, sc_store_space_t *sp)
{
    memset(sp, 0, sizeof *sp);
    col_text(st, 0, sp->id, sizeof sp->id);
    col_text(st, 1, sp->title, sizeof sp->title);
    sp->state = sqlite3_column_int(st, 2);
    sp->created_at = sqlite3_column_int64(st, 3);
    sp->scheduled_start = sqlite3_column_int64(st, 4);
    sp->started_at = sqlite3_column_int64(st, 5);
    sp->ended_at = sqlite3_column_int64(st, 6);
    sp->record = sqlite3_column_int(st, 7);
    sp->max_listeners = sqlite3_column_int(st, 8);
    sp->peak_listeners = sqlite3_column_int64(st, 9);
    sp->total_joins = sqlite3_column_int64(st, 10);
    col_text(st, 11, sp->pin_url, sizeof sp->pin_url);
    col_text(st, 12, sp->pin_text, sizeof sp->pin_text);
    sp->pin_at = sqlite3_column_int64(st, 13);
}

static void speaker_row(sqlite3_stmt *st, sc_store_speaker_t *sk)
{
    memset(sk, 0, sizeof *sk);
    col_text(st, 0, sk->space_id, sizeof sk->space_id);
    col_text(st, 1, sk->name, sizeof sk->name);
    sk->role = sqlite3_column_int(st, 2);
    sk->muted = sqlite3_column_int(st, 3);
    sk->generation = (uint32_t)sqlite3_column_int64(st, 4);
    sk->removed = sqlite3_column_int(st, 5);
}

int sc_store_each_space(sc_store_t *s, int (*cb)(void *ctx, const sc_store_space_t *), void *ctx)
{
    sqlite3_stmt *st = s->each_space;
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sc_store_space_t sp;
        col_space(st, &sp);
        if ((ret = cb(ctx, &sp)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_fail(s, "each_space", rc);
    sqlite3_reset(st);
    return ret;
}

static int each_speaker_of(sc_store_t *s, sqlite3_stmt *st, const char *op,
                           int (*cb)(void *ctx, const sc_store_speaker_t *), void *ctx)
{
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sc_store_speaker_t sk;
        speaker_row(st, &sk);
        if ((ret = cb(ctx, &sk)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_fail(s, op, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int sc_store_each_speaker(sc_store_t *s, int (*cb)(void *ctx, const sc_store_speaker_t *), void *ctx)
{
    return each_speaker_of(s, s->each_speaker, "each_speaker", cb, ctx);
}

int sc_store_get_space(sc_store_t *s, const char *id, sc_store_space_t *out)
{
    sqlite3_stmt *st = s->get_space;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int ret, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_space(st, out);
        ret = 1;
    } else {
        ret = rc == SQLITE_DONE ? 0 : store_fail(s, "get_space", rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int sc_store_each_speaker_of(sc_store_t *s, const char *space_id, int (*cb)(void *ctx, const sc_store_speaker_t *),
                             void *ctx)
{
    sqlite3_bind_text(s->speakers_of, 1, space_id, -1, SQLITE_STATIC);
    return each_speaker_of(s, s->speakers_of, "speakers_of", cb, ctx);
}

/* 1 found (out filled), 0 absent, -1 error. */
static int secret_get(sc_store_t *s, const char *name, uint8_t out[SC_STORE_SECRET_LEN])
{
    sqlite3_stmt *st = s->secret_get;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int ret, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == SC_STORE_SECRET_LEN) {
        memcpy(out, sqlite3_column_blob(st, 0), SC_STORE_SECRET_LEN);
        ret = 1;
    } else if (rc == SQLITE_ROW) {
        sc_log_error("msg=\"store secret has wrong length\" name=%s", name);
        ret = -1;
    } else {
        ret = rc == SQLITE_DONE ? 0 : store_fail(s, "secret_get", rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int sc_store_secret(sc_store_t *s, const char *name, uint8_t out[32])
{
    if (name == NULL || *name == '\0')
        return -1;
    int r = secret_get(s, name, out);
    if (r != 0)
        return r == 1 ? 0 : -1;
    uint8_t fresh[SC_STORE_SECRET_LEN];
    if (RAND_bytes(fresh, sizeof fresh) != 1) {
        sc_log_error("msg=\"RAND_bytes failed\" op=secret");
        return -1;
    }
    sqlite3_stmt *st = s->secret_put;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, fresh, sizeof fresh, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, sc_wall_s());
    r = step_done(s, st, "secret_put");
    OPENSSL_cleanse(fresh, sizeof fresh);
    if (r != 0)
        return -1;
    sc_log_info("msg=\"store secret created\" name=%s", name);
    return secret_get(s, name, out) == 1 ? 0 : -1; /* read back: another process may have won */
}

/* ---- admin key file ---- */

/* 1 read, 0 absent, -1 error. Trailing whitespace is dropped so `echo KEY > admin.key` works. */
static int admin_key_read(const char *path, char *out, size_t outsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        sc_log_error("msg=\"cannot open admin key\" path=%s err=\"%s\"", path, strerror(errno));
        return -1;
    }
    char buf[512];
    struct stat st;
    ssize_t n = read(fd, buf, sizeof buf);
    int mode_open = fstat(fd, &st) == 0 && (st.st_mode & 077) != 0;
    close(fd);
    if (n < 0) {
        sc_log_error("msg=\"cannot read admin key\" path=%s err=\"%s\"", path, strerror(errno));
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    if (n == 0 || (size_t)n >= outsz) {
        sc_log_error("msg=\"admin key file is empty or too long\" path=%s len=%zd", path, n);
        return -1;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] < 0x21 || buf[i] > 0x7e) {
            sc_log_error("msg=\"admin key file holds non-printable bytes\" path=%s", path);
            return -1;
        }
    }
    if (mode_open)
        sc_log_warn("msg=\"admin key file is readable by others; chmod 0600 it\" path=%s", path);
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
    return 1;
}

/* Write a temp file, fsync, then link() it into place: link fails if the name exists, so the
 * key appears whole or not at all, and a concurrent creator's key is never overwritten. */
static int admin_key_create(const char *dir, const char *path, const char *key)
{
    char tmp[PATH_MAX], line[40];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.admin.key.%ld.tmp", dir, (long)getpid()) >= sizeof tmp)
        return -1;
    unlink(tmp); /* left over by a crash of a process with our pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        sc_log_error("msg=\"cannot create admin key\" path=%s err=\"%s\"", tmp, strerror(errno));
        return -1;
    }
    int len = snprintf(line, sizeof line, "%s\n", key);
    int ok = fchmod(fd, 0600) == 0 && write(fd, line, (size_t)len) == len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok) {
        sc_log_error("msg=\"cannot write admin key\" path=%s err=\"%s\"", tmp, strerror(saved));
        unlink(tmp);
        return -1;
    }
    int r = link(tmp, path) == 0 ? 1 : (errno == EEXIST ? 0 : -1);
    saved = errno;
    unlink(tmp);
    if (r < 0) {
        sc_log_error("msg=\"cannot create admin key\" path=%s err=\"%s\"", path, strerror(saved));
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* make the new name durable; best effort */
        close(dfd);
    }
    return r; /* 1 created, 0 someone else created it first */
}

int sc_store_admin_key(const char *dir, char *out, size_t outsz, int *created)
{
    char path[PATH_MAX], err[PATH_MAX + 128];
    if (created)
        *created = 0;
    if (outsz < 33)
        return -1;
    if (ensure_dir(dir, err, sizeof err) != 0) {
        char q[sizeof err + 8];
        sc_log_error("msg=\"cannot use data directory\" err=%s", sc_log_quote(err, q, sizeof q));
        return -1;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/admin.key", dir) >= sizeof path)
        return -1;
    int r = admin_key_read(path, out, outsz);
    if (r != 0)
        return r == 1 ? 0 : -1;

    uint8_t rnd[16];
    char hex[33];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        sc_log_error("msg=\"RAND_bytes failed\" op=admin_key");
        return -1;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    OPENSSL_cleanse(rnd, sizeof rnd);
    r = admin_key_create(dir, path, hex);
    OPENSSL_cleanse(hex, sizeof hex);
    if (r < 0)
        return -1;
    if (r == 1 && created)
        *created = 1;
    return admin_key_read(path, out, outsz) == 1 ? 0 : -1;
}

static int page_query(sc_store_t *s, sqlite3_stmt *st, int64_t key, const char *id, int limit,
                      int (*cb)(void *ctx, const sc_store_space_t *, const char *host), void *ctx)
{
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, limit);
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sc_store_space_t sp;
        char host[65];
        col_space(st, &sp);
        col_text(st, SPACE_NCOLS, host, sizeof host);
        if ((ret = cb(ctx, &sp, host)) != 0)
            break;
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = store_fail(s, "page", rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int sc_store_ended_page(sc_store_t *s, int64_t before_ended_at, const char *before_id, int limit,
                        int (*cb)(void *ctx, const sc_store_space_t *, const char *host), void *ctx)
{
    return page_query(s, s->ended_page, before_ended_at, before_id, limit, cb, ctx);
}

int sc_store_scheduled_page(sc_store_t *s, int64_t after_start, const char *after_id, int limit,
                            int (*cb)(void *ctx, const sc_store_space_t *, const char *host), void *ctx)
{
    return page_query(s, s->sched_page, after_start, after_id, limit, cb, ctx);
}

int sc_store_put_stats(sc_store_t *s, const char *space_id, const char *data, int64_t now)
{
    sqlite3_stmt *st = s->put_stats;
    sqlite3_bind_text(st, 1, space_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, data, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    return step_done(s, st, "put_stats");
}

char *sc_store_get_stats(sc_store_t *s, const char *space_id)
{
    sqlite3_stmt *st = s->get_stats;
    sqlite3_bind_text(st, 1, space_id, -1, SQLITE_STATIC);
    char *out = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t)
            out = sc_strndup((const char *)t, (size_t)sqlite3_column_bytes(st, 0));
    } else if (rc != SQLITE_DONE) {
        store_fail(s, "get_stats", rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return out;
}
