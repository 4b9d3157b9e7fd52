/* loop.c — epoll loop with a timer wheel and a cross-thread task queue. */
#include "spacecast/loop.h"
#include "spacecast/common.h"
#include "spacecast/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SC_LOOP_EVENTS 256

typedef struct sc_task {
    struct sc_task *next;
    sc_loop_task_fn fn;
    void *arg;
} sc_task_t;

struct sc_loop {
    int epfd;
    sc_io_t wake_io;
    atomic_int stop;
    atomic_int wake_pending; /* coalesces eventfd writes */
    pthread_mutex_t tasks_mu;
    sc_task_t *tasks, **tasks_tail;
    int (*turn_hook)(sc_loop_t *, void *);
    void *turn_arg;
    uint64_t turns;
    sc_timerwheel_t timers;
    uint64_t now_ms;
    void *data;
    _Atomic uint64_t max_lag_us;
    sc_task_t *deferred; /* frees that wait until no epoll event can still point at them */
    sc_loop_later_t *after, **after_tail; /* work for once this turn's ready events are handled */
};

static void loop_run_deferred(sc_loop_t *l);
static void loop_run_after_events(sc_loop_t *l);

static void loop_on_wake(sc_io_t *io, uint32_t events)
{
    (void)events;
    sc_loop_t *l = io->loop;
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof v); /* drain; value is irrelevant */
    (void)r;
    atomic_store(&l->wake_pending, 0);
    pthread_mutex_lock(&l->tasks_mu);
    sc_task_t *t = l->tasks;
    l->tasks = NULL;
    l->tasks_tail = &l->tasks;
    pthread_mutex_unlock(&l->tasks_mu);
    while (t) {
        sc_task_t *n = t->next;
        t->fn(l, t->arg);
        free(t);
        t = n;
    }
}

sc_loop_t *sc_loop_new(void)
{
    sc_loop_t *l = sc_calloc(1, sizeof *l);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->tasks_mu, NULL);
    l->tasks_tail = &l->tasks;
    l->after_tail = &l->after;
    l->now_ms = sc_now_ms();
    sc_timerwheel_init(&l->timers, l->now_ms);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0 || sc_loop_add(l, &l->wake_io, efd, EPOLLIN, loop_on_wake) != SC_OK) {
        close(l->epfd);
        free(l);
        return NULL;
    }
    return l;
}

void sc_loop_free(sc_loop_t *l)
{
    if (!l)
        return;
    loop_run_deferred(l);
    sc_task_t *t = l->tasks;
    while (t) {
        sc_task_t *n = t->next;
        free(t);
        t = n;
    }
    close(l->wake_io.fd);
    close(l->epfd);
    pthread_mutex_destroy(&l->tasks_mu);
    free(l);
}

int sc_loop_add(sc_loop_t *l, sc_io_t *io, int fd, uint32_t events, sc_io_cb cb)
{
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->loop = l;
    struct epoll_event ev = { .events = events, .data.ptr = io };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return SC_OK;
}

int sc_loop_mod(sc_io_t *io, uint32_t events)
{
    if (io->events == events)
        return SC_OK;
    io->events = events;
    struct epoll_event ev = { .events = events, .data.ptr = io };
    if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    return SC_OK;
}

void sc_loop_del(sc_io_t *io)
{
    if (io->loop)
        epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->loop = NULL;
}

static void loop_run_deferred(sc_loop_t *l)
{
    while (l->deferred) {
        sc_task_t *t = l->deferred;
        l->deferred = t->next;
        t->fn(l, t->arg);
        free(t);
    }
}

void sc_loop_defer(sc_loop_t *l, sc_loop_task_fn fn, void *arg)
{
    sc_task_t *t = sc_malloc(sizeof *t);
    t->fn = fn;
    t->arg = arg;
    t->next = l->deferred;
    l->deferred = t;
}

/* FIFO, and only what was queued before the pass began: work queued by the pass itself waits
 * for the next turn's events (which the loop then looks for without blocking). */
static void loop_run_after_events(sc_loop_t *l)
{
    sc_loop_later_t *t = l->after;
    l->after = NULL;
    l->after_tail = &l->after;
    while (t) {
        sc_loop_later_t *n = t->next;
        t->next = NULL;
        t->queued = 0; /* it may queue itself again: for the next turn */
        t->fn(l, t->arg);
        t = n;
    }
}

void sc_loop_after_events(sc_loop_t *l, sc_loop_later_t *t)
{
    if (t->queued)
        return;
    t->queued = 1;
    t->next = NULL;
    *l->after_tail = t;
    l->after_tail = &t->next;
}

void sc_loop_run(sc_loop_t *l)
{
    struct epoll_event evs[SC_LOOP_EVENTS];
    int busy = 0; /* the turn hook left work over: look for events without waiting */
    while (!atomic_load(&l->stop)) {
        int timeout = busy || l->after ? 0 : sc_timerwheel_timeout(&l->timers, l->now_ms);
        int n = epoll_wait(l->epfd, evs, SC_LOOP_EVENTS, timeout < 0 ? 1000 : timeout);
        uint64_t t0 = sc_now_ns();
        l->now_ms = t0 / 1000000ull;
        l->turns++;
        if (n < 0 && errno != EINTR) {
            sc_log_error("event=epoll_wait_failed errno=%d", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            sc_io_t *io = evs[i].data.ptr;
            if (io->loop) /* closed earlier in this batch */
                io->cb(io, evs[i].events);
        }
        loop_run_after_events(l);
        /* not a wake-up event: one of those waits behind every ready descriptor of the epoll
         * set (thousands in a storm of handshakes), while this runs every turn */
        busy = l->turn_hook ? l->turn_hook(l, l->turn_arg) : 0;
        sc_timerwheel_run(&l->timers, l->now_ms);
        loop_run_deferred(l);
        uint64_t lag = (sc_now_ns() - t0) / 1000;
        if (lag > atomic_load_explicit(&l->max_lag_us, memory_order_relaxed))
            atomic_store_explicit(&l->max_lag_us, lag, memory_order_relaxed);
    }
    /* still on the loop's thread, whose state (thread-local) the queued work may be */
    loop_run_after_events(l);
}

void sc_loop_stop(sc_loop_t *l)
{
    atomic_store(&l->stop, 1);
    sc_loop_wake(l);
}

void sc_loop_post(sc_loop_t *l, sc_loop_task_fn fn, void *arg)
{
    sc_task_t *t = sc_malloc(sizeof *t);
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&l->tasks_mu);
    *l->tasks_tail = t;
    l->tasks_tail = &t->next;
    pthread_mutex_unlock(&l->tasks_mu);
    sc_loop_wake(l);
}

void sc_loop_set_turn_hook(sc_loop_t *l, int (*hook)(sc_loop_t *, void *), void *arg)
{
    l->turn_hook = hook;
    l->turn_arg = arg;
}

void sc_loop_wake(sc_loop_t *l)
{
    if (atomic_exchange(&l->wake_pending, 1))
        return; /* already pending: one eventfd write wakes it for all */
    uint64_t one = 1;
    ssize_t r = write(l->wake_io.fd, &one, sizeof one);
    (void)r;
}

sc_timerwheel_t *sc_loop_timers(sc_loop_t *l) { return &l->timers; }
uint64_t sc_loop_now(sc_loop_t *l) { return l->now_ms; }
uint64_t sc_loop_turn(sc_loop_t *l) { return l->turns; }
void sc_loop_set_data(sc_loop_t *l, void *data) { l->data = data; }
void *sc_loop_data(sc_loop_t *l) { return l->data; }

uint64_t sc_loop_take_max_lag_us(sc_loop_t *l) { return atomic_exchange(&l->max_lag_us, 0); }
