/* static.h — the web app's files (web/): `/` and `/s/{id}` are the app shell, `/web/...` its
 * assets; a route handler the application puts in its table. */
#ifndef SC_STATIC_H
#define SC_STATIC_H

#include "spacecast/http.h"

/** GET a web app file: 200 with the file (sendfile), or 404. */
void sc_static_handle(sc_req_t *r);

#endif
