/* loop.h — one epoll event loop per thread (after Redis ae.c): io handles, a timer
 * wheel, and a wake-up eventfd so other threads can post work to this loop. */
#ifndef SC_LOOP_H
#define SC_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#include "spacecast/timerwheel.h"

typedef struct sc_loop sc_loop_t;
struct sc_io;
typedef void (*sc_io_cb)(struct sc_io *io, uint32_t events);

/** An fd watched by a loop; embed it in the object that owns the fd. */
typedef struct sc_io {
    int fd;
    uint32_t events; /* EPOLLIN/EPOLLOUT currently requested */
    sc_io_cb cb;
    sc_loop_t *loop;
} sc_io_t;

typedef void (*sc_loop_task_fn)(sc_loop_t *loop, void *arg);

/** New loop; owned by the caller, freed with sc_loop_free. */
sc_loop_t *sc_loop_new(void);
void sc_loop_free(sc_loop_t *l);
/** Start watching io->fd (edge-free, level-triggered) for events. */
int sc_loop_add(sc_loop_t *l, sc_io_t *io, int fd, uint32_t events, sc_io_cb cb);
/** Change the watched events (no syscall when unchanged). */
int sc_loop_mod(sc_io_t *io, uint32_t events);
/** Stop watching; the caller closes the fd. */
void sc_loop_del(sc_io_t *io);
/** Run until sc_loop_stop. */
void sc_loop_run(sc_loop_t *l);
/** Ask the loop to return from sc_loop_run (thread-safe). */
void sc_loop_stop(sc_loop_t *l);
/** Run fn(loop, arg) on the loop's own thread soon (thread-safe; allocation only). */
void sc_loop_post(sc_loop_t *l, sc_loop_task_fn fn, void *arg);
/** Run fn(loop, arg) at the end of this iteration, on the loop's thread: frees of objects that
 * embed an sc_io_t go here, so a later event of the same epoll batch never touches freed memory. */
void sc_loop_defer(sc_loop_t *l, sc_loop_task_fn fn, void *arg);
/** Work for after an iteration's ready events: the caller's (no allocation per turn). */
typedef struct sc_loop_later {
    struct sc_loop_later *next;
    sc_loop_task_fn fn;
    void *arg;
    int queued;
} sc_loop_later_t;
/** Run t->fn(loop, t->arg) on the loop's thread once this iteration's ready events are all
 *  handled, before its turn hook and timers (FIFO; once however often it is queued in a turn;
 *  queued from outside the events, or by such a task: after the next iteration's events, which
 *  are then polled without blocking). t stays the caller's and must outlive its run. What can wait
 *  behind the turn's other events goes here: HTTP answers its cheap writes (reactions) so. */
void sc_loop_after_events(sc_loop_t *l, sc_loop_later_t *t);
/** Set a hook run once per iteration, after that iteration's ready events and before its
 *  timers, on the loop's thread. While it returns nonzero (work left over), the loop does not
 *  block in its next wait: the hook runs again after whatever else is ready then. */
void sc_loop_set_turn_hook(sc_loop_t *l, int (*hook)(sc_loop_t *, void *), void *arg);
/** Wake the loop from its wait (thread-safe, cheap, coalesces); its turn hook runs then. */
void sc_loop_wake(sc_loop_t *l);
/** How many iterations the loop has begun: tells one iteration from the next (budgets per turn). */
uint64_t sc_loop_turn(sc_loop_t *l);
/** The loop's timer wheel and its cached clock (ms, refreshed each iteration). */
sc_timerwheel_t *sc_loop_timers(sc_loop_t *l);
uint64_t sc_loop_now(sc_loop_t *l);
/** Opaque per-loop user data (the worker that owns it). */
void sc_loop_set_data(sc_loop_t *l, void *data);
void *sc_loop_data(sc_loop_t *l);
/** Longest time one iteration took since the last call, in microseconds (loop-lag metric). */
uint64_t sc_loop_take_max_lag_us(sc_loop_t *l);

#endif
