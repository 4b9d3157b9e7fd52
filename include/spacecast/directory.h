/* directory.h — the list of Spaces as a directory shows it (GET /api/spaces): live Spaces by
 * audience, then scheduled ones soonest first, then ended ones latest first; a state filter;
 * pages of at most SC_DIR_LIMIT_MAX with an opaque keyset cursor, so walking the pages costs
 * O(log n + limit) each and never skips or repeats a Space whose position did not change.
 *
 * Live and scheduled Spaces come from sorted snapshots of the registry, rebuilt when a Space
 * is added or changes state and, for live ones (their audience moves), once a second — never
 * more than four times a second, so a creation storm cannot make listing expensive. Ended
 * Spaces come from the store (retired ones included), on its (state, ended_at, id) index. */
#ifndef SC_DIRECTORY_H
#define SC_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "spacecast/common.h"
#include "spacecast/token.h"

#define SC_DIR_LIMIT_MAX 100
#define SC_DIR_LIMIT_DEFAULT 20

/** Which Spaces: all (live, then scheduled, then ended) or one state. */
typedef enum { SC_DIR_ALL = 0, SC_DIR_LIVE, SC_DIR_SCHEDULED, SC_DIR_ENDED } sc_dir_filter_t;

/** A parsed list request. */
typedef struct sc_dir_query {
    sc_dir_filter_t filter;
    int limit;                          /* 1..SC_DIR_LIMIT_MAX */
    int has_cursor;
    char section;                       /* the cursor's section: 'l', 's' or 'e' */
    int64_t key;                        /* the sort key of the last Space seen */
    char id[SC_TOKEN_ID_MAX + 1];       /* and its id */
} sc_dir_query_t;

/** Parse a list request's query (`state`, `limit`, `cursor`; others ignored). NULL when it is
 *  good, else what is wrong with it (a constant string, for the 400). */
const char *sc_dir_query_parse(sc_slice_t query, sc_dir_query_t *q);
/** One page: `{"spaces":[...],"next_cursor":"..."|null}` as NUL-terminated JSON text the
 *  caller frees, its length in *len; NULL when the store could not be read (503). */
char *sc_dir_page(const sc_dir_query_t *q, size_t *len);

#endif
