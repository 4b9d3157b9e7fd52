/* clip.h — a cut of a recording as a file of its own: the recording's pages from the one that
 * holds the start (plus the page before it, decoded and discarded through the pre-skip, so the
 * decoder has settled by the first sample heard) to the page that makes the asked duration,
 * behind fresh OpusHead/OpusTags pages, renumbered, granules rebased to the clip, the last page
 * flagged end-of-stream. No audio is decoded or re-encoded: a clip is a few page copies.
 *
 * The start is rounded down to a page boundary (100 ms pages by default) and the clip lasts the
 * asked duration rounded up to whole pages: within one page of what was asked. Positions are
 * the recording's own time (ms from its first sample), as in chapters.json. */
#ifndef SC_CLIP_H
#define SC_CLIP_H

#include <stddef.h>
#include <stdint.h>

#define SC_CLIP_MAX_MS 60000            /* the longest clip */
#define SC_CLIP_MAX_BYTES (4u << 20)    /* 60 s at the highest bit rate the mix may have, and then some */

typedef enum sc_clip_rc {
    SC_CLIP_OK = 0,
    SC_CLIP_ENOTOGG = -1, /* not a recording of ours (no OpusHead page first) */
    SC_CLIP_ERANGE = -2,  /* the start is at or past the end of the recording */
    SC_CLIP_EIO = -3,     /* reading the file failed */
} sc_clip_rc_t;

typedef struct sc_clip {
    uint8_t *data;       /* the Ogg/Opus file (malloc'd: the caller frees) */
    size_t len;
    int64_t start_ms;    /* what it covers, in recording time */
    int64_t end_ms;
    int complete;        /* it lasts what was asked (else the recording ended, or is not there yet) */
} sc_clip_t;

/** Cut [start_ms, start_ms + (end_ms - start_ms)) of the recording in fd, whose first size bytes
 *  are read (a live recording grows: pass its size now). title goes into the clip's OpusTags. */
sc_clip_rc_t sc_clip_cut(int fd, uint64_t size, int64_t start_ms, int64_t end_ms, const char *title, sc_clip_t *out);
/** The recording's length in ms (its last whole page's granule less the pre-skip), or -1. */
int64_t sc_clip_recording_ms(int fd, uint64_t size);

#endif
