/* log.c — logfmt lines on stderr; one write() per line so threads never interleave. */
#include "spacecast/log.h"
#include "spacecast/common.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile int sc_log_min = SC_LOG_INFO;
static const char *const sc_log_names[] = { "debug", "info", "warn", "error", "fatal" };
_Static_assert(SC_ARRAY_LEN(sc_log_names) == SC_LOG_FATAL + 1, "a name for every log level");

void sc_log_set_level(sc_log_level_t lvl) { sc_log_min = (int)lvl; }

int sc_log_enabled(sc_log_level_t lvl) { return (int)lvl >= sc_log_min; }

int sc_log_level_parse(const char *s)
{
    for (size_t i = 0; i < SC_ARRAY_LEN(sc_log_names); i++)
        if (strcmp(s, sc_log_names[i]) == 0)
            return (int)i;
    return -1;
}

void sc_log(sc_log_level_t lvl, const char *fmt, ...)
{
    if ((int)lvl < sc_log_min)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     sc_log_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* nothing sensible to do if stderr is gone */
}

const char *sc_log_quote(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    int needs = *s == '\0';
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            needs = 1;
    if (outsz < 3) {
        if (outsz)
            out[0] = '\0';
        return out;
    }
    if (needs)
        out[o++] = '"';
    for (const char *p = s; *p && o + 4 < outsz; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            out[o++] = '?'; /* never let a client write a newline into our log */
        } else {
            out[o++] = (char)c;
        }
    }
    if (needs)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

const char *sc_log_q(const char *s)
{
    static __thread char ring[8][208];
    static __thread unsigned next;
    char *out = ring[next++ % 8];
    return sc_log_quote(s ? s : "", out, sizeof ring[0]);
}
