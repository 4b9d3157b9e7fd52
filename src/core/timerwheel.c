/* timerwheel.c — hashed wheel; timers further out than one turn stay in their slot
 * and are skipped until their turn comes (checked by expire time). */
#include "spacecast/timerwheel.h"

#include <stddef.h>

static size_t slot_of(uint64_t ms) { return (size_t)((ms / SC_TW_TICK_MS) & (SC_TW_SLOTS - 1)); }

void sc_timerwheel_init(sc_timerwheel_t *w, uint64_t now_ms)
{
    for (size_t i = 0; i < SC_TW_SLOTS; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    w->last_ms = now_ms;
    w->armed = 0;
}

void sc_timer_init(sc_timer_t *t, sc_timer_cb cb)
{
    t->next = t->prev = NULL;
    t->expire_ms = 0;
    t->cb = cb;
}

void sc_timer_cancel(sc_timerwheel_t *w, sc_timer_t *t)
{
    if (!t->next)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
    w->armed--;
}

void sc_timer_arm(sc_timerwheel_t *w, sc_timer_t *t, uint64_t now_ms, uint64_t after_ms)
{
    sc_timer_cancel(w, t);
    t->expire_ms = now_ms + after_ms;
    /* never file a timer in a slot the wheel has already passed */
    uint64_t at = t->expire_ms < w->last_ms ? w->last_ms : t->expire_ms;
    sc_timer_t *head = &w->slots[slot_of(at)];
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
    w->armed++;
}

size_t sc_timerwheel_run(sc_timerwheel_t *w, uint64_t now_ms)
{
    size_t fired = 0;
    if (now_ms < w->last_ms)
        return 0;
    uint64_t ticks = now_ms / SC_TW_TICK_MS - w->last_ms / SC_TW_TICK_MS;
    if (ticks >= SC_TW_SLOTS)
        ticks = SC_TW_SLOTS - 1; /* one full turn visits every slot */
    uint64_t base = w->last_ms;
    w->last_ms = now_ms;
    for (uint64_t i = 0; i <= ticks; i++) {
        sc_timer_t *head = &w->slots[slot_of(base + i * SC_TW_TICK_MS)];
        /* detach due timers first: callbacks may re-arm into this very slot */
        sc_timer_t due = { .next = &due, .prev = &due };
        for (sc_timer_t *t = head->next, *n; t != head; t = n) {
            n = t->next;
            if (t->expire_ms <= now_ms) {
                t->prev->next = t->next;
                t->next->prev = t->prev;
                t->prev = due.prev;
                t->next = &due;
                due.prev->next = t;
                due.prev = t;
            }
        }
        while (due.next != &due) {
            sc_timer_t *t = due.next;
            due.next = t->next;
            t->next->prev = &due;
            t->next = t->prev = NULL;
            w->armed--;
            fired++;
            t->cb(t);
        }
    }
    return fired;
}

int sc_timerwheel_timeout(const sc_timerwheel_t *w, uint64_t now_ms)
{
    (void)now_ms;
    return w->armed ? SC_TW_TICK_MS : -1;
}
