/* log.h — one line per event, logfmt (key=value) on stderr, with levels. */
#ifndef SC_LOG_H
#define SC_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { SC_LOG_DEBUG = 0, SC_LOG_INFO, SC_LOG_WARN, SC_LOG_ERROR, SC_LOG_FATAL } sc_log_level_t;

/** Set the lowest level printed (default info). */
void sc_log_set_level(sc_log_level_t lvl);
/** 1 if lines of level lvl are printed (to skip building an expensive message). */
int sc_log_enabled(sc_log_level_t lvl);
/** Parse "debug|info|warn|error"; -1 if unknown. */
int sc_log_level_parse(const char *s);
/** Print "ts=... level=L " followed by fmt (already key=value pairs) and a newline, atomically. */
void sc_log(sc_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Copy s into out as a logfmt value: quoted and escaped when needed, cut at outsz. Returns out. */
const char *sc_log_quote(const char *s, char *out, size_t outsz);
/** sc_log_quote into a buffer of the calling thread's own (one of 8, reused in turn): for a
 *  value a client chose (a speaker's name) in a log line, as `speaker=%s` with sc_log_q(name),
 *  so `x level=error` stays one field. At most 200 bytes of it. */
const char *sc_log_q(const char *s);

#define sc_log_debug(...) sc_log(SC_LOG_DEBUG, __VA_ARGS__)
#define sc_log_info(...) sc_log(SC_LOG_INFO, __VA_ARGS__)
#define sc_log_warn(...) sc_log(SC_LOG_WARN, __VA_ARGS__)
#define sc_log_error(...) sc_log(SC_LOG_ERROR, __VA_ARGS__)

#endif
