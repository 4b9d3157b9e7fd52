/* recorder.h — the unedited recording of a Space: the mix's packets, paged into one
 * Ogg/Opus file of its own (granules from zero), synced to disk at least every second. */
#ifndef SC_RECORDER_H
#define SC_RECORDER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_recorder sc_recorder_t;

/** Open DATA/recordings/ID.ogg: create it with header pages, or (resume) repair a torn tail
 * left by a crash and continue after its last whole page. NULL on error (logged). */
sc_recorder_t *sc_recorder_open(const char *data_dir, const char *space_id, int channels, uint16_t preskip,
                                const char *title, int frames_per_page, int resume);
/** Add one packet (engine thread): paged, and each page queued for the recorder thread, which
 * writes the queues in batches (no system call here). A write error (disk full) is logged and
 * counted; the file stays at its last whole page and a batch a second is tried until the disk
 * takes one again (the pages between are left out: a gap in the page sequence and the
 * granules). Live audio is not affected. */
void sc_recorder_push(sc_recorder_t *r, const uint8_t *pkt, size_t len, int samples);
/** Write what is queued now rather than at the recorder thread's next batch (tests; any thread). */
void sc_recorder_drain(sc_recorder_t *r);
/** Where the recording is now: ms of audio from its first sample through the last packet
 *  pushed (the time base of chapters and clips). Caller serialises with push. */
int64_t sc_recorder_position_ms(const sc_recorder_t *r);
/** Write what is queued and the end-of-stream page, sync and close. */
void sc_recorder_finish(sc_recorder_t *r);
/** Close without an end-of-stream page (shutdown of a Space that is still live). */
void sc_recorder_close(sc_recorder_t *r);
/** Path of a Space's recording into out. */
void sc_recorder_path(const char *data_dir, const char *space_id, char *out, size_t outsz);
/** Cut a recording back to its whole pages and (add_eos) make sure it ends with an end-of-stream
 *  page (after a crash, or a disk that was full at the end). 0, or -1 (e.g. still no space). */
int sc_recorder_repair(const char *path, int add_eos);
/** Does the recording end with a whole end-of-stream page (finished, nothing torn)? 1 or 0. */
int sc_recorder_complete(const char *path);
/** Start/stop the recorder thread: it writes the queued pages every 200 ms and fdatasyncs every
 *  open recording twice a second. */
void sc_recorder_sync_start(void);
void sc_recorder_sync_stop(void);
/** Recordings that failed (disk full, I/O error) since start, for metrics. */
uint64_t sc_recorder_failures(void);

#endif
