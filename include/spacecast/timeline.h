/* timeline.h — the speaker timeline of a recording: who became audible and who fell silent,
 * and the host's marks, each at its position in the recording (ms from its first sample), as
 * JSON lines in DATA/recordings/ID.timeline next to ID.ogg. From it, chapters in the
 * Podcasting 2.0 JSON chapters format: a chapter each time the floor passes to another
 * speaker (a turn of at least SC_TIMELINE_MIN_TURN_MS; pauses and short interjections do not
 * start one), and one per mark.
 *
 * Not thread-safe: the caller serialises (the Space's lock). Appends go to the page cache;
 * a mark and the close are synced, speaking changes ride on the next sync. */
#ifndef SC_TIMELINE_H
#define SC_TIMELINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SC_TIMELINE_MAX_SPEAKERS 16
#define SC_TIMELINE_NAME_MAX 64
#define SC_TIMELINE_TITLE_MAX 200       /* bytes of a mark's title */
#define SC_TIMELINE_MIN_TURN_MS 2000    /* shorter, a turn takes no chapter of its own */
#define SC_TIMELINE_MERGE_GAP_MS 1500   /* one speaker's pauses shorter than this are one turn */

typedef struct sc_timeline sc_timeline_t;

/** Path of a Space's timeline into out. */
void sc_timeline_path(const char *data_dir, const char *space_id, char *out, size_t outsz);
/** Open (create, or continue after a restart: a "resume" line closes what was open) for
 *  appending. NULL on error (logged): the Space goes on without a timeline. */
sc_timeline_t *sc_timeline_open(const char *data_dir, const char *space_id);
/** The speakers audible at ms (names; n <= SC_TIMELINE_MAX_SPEAKERS): lines for who started and
 *  who stopped since the last call. */
void sc_timeline_speaking(sc_timeline_t *t, int64_t ms, const char *const *names, size_t n);
/** A host's mark at ms. 0, or -1 when it could not be written (disk). */
int sc_timeline_mark(sc_timeline_t *t, int64_t ms, const char *title);
/** Everyone falls silent at ms (ms < 0: left to the next run's resume line); synced and
 *  closed; t is freed. NULL-safe. */
void sc_timeline_close(sc_timeline_t *t, int64_t ms);

/** Chapters from a timeline's text (Podcasting 2.0: {"version","title","fileName","chapters":
 *  [{"startTime","endTime","title"[,"speaker"]}]}); intervals still open end at duration_ms
 *  (or at the last line's time when that is later). A torn or foreign line is skipped. A new
 *  object; pure: fuzzed. */
json_t *sc_timeline_chapters(const char *text, size_t len, int64_t duration_ms, const char *title,
                             const char *file_name);

#endif
