/* timerwheel.h — a hashed timer wheel with intrusive entries (after h2o's timerwheel):
 * O(1) arm and cancel, so 100k header/idle timeouts cost nothing while they don't fire. */
#ifndef SC_TIMERWHEEL_H
#define SC_TIMERWHEEL_H

#include <stddef.h>
#include <stdint.h>

#define SC_TW_SLOTS 1024   /* power of two */
#define SC_TW_TICK_MS 16   /* resolution: timeouts are seconds, 16 ms is plenty */

struct sc_timer;
typedef void (*sc_timer_cb)(struct sc_timer *t);

/** An intrusive timer: embed it in the object it times. */
typedef struct sc_timer {
    struct sc_timer *next, *prev; /* slot list; NULL when not armed */
    uint64_t expire_ms;
    sc_timer_cb cb;
} sc_timer_t;

typedef struct sc_timerwheel {
    sc_timer_t slots[SC_TW_SLOTS]; /* list heads */
    uint64_t last_ms;              /* everything before this has been run */
    size_t armed;
} sc_timerwheel_t;

void sc_timerwheel_init(sc_timerwheel_t *w, uint64_t now_ms);
/** Set the callback once; a timer starts unarmed. */
void sc_timer_init(sc_timer_t *t, sc_timer_cb cb);
/** (Re)arm t to fire at now_ms + after_ms. */
void sc_timer_arm(sc_timerwheel_t *w, sc_timer_t *t, uint64_t now_ms, uint64_t after_ms);
/** Disarm; safe on an unarmed timer. */
void sc_timer_cancel(sc_timerwheel_t *w, sc_timer_t *t);
static inline int sc_timer_armed(const sc_timer_t *t) { return t->next != 0; }
/** Run every timer due by now_ms; callbacks may re-arm or cancel any timer. Returns how many fired. */
size_t sc_timerwheel_run(sc_timerwheel_t *w, uint64_t now_ms);
/** Milliseconds until the next slot that holds a timer might be due (for epoll_wait), or -1 if none armed. */
int sc_timerwheel_timeout(const sc_timerwheel_t *w, uint64_t now_ms);

#endif
