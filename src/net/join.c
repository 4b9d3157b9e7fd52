/* join.c — the listener join bucket (see join.h). */
#include "spacecast/join.h"
#include "spacecast/common.h"
#include "spacecast/config.h"

#include <pthread.h>

static struct {
    pthread_mutex_t mu;
    double tokens;
    uint64_t refill_ms;
} sc_join = { .mu = PTHREAD_MUTEX_INITIALIZER };

void sc_join_init(int burst)
{
    pthread_mutex_lock(&sc_join.mu);
    sc_join.tokens = burst;
    sc_join.refill_ms = sc_now_ms();
    pthread_mutex_unlock(&sc_join.mu);
}

int sc_join_admit(int reserve)
{
    const sc_config_t *cfg = sc_config();
    int wait = 0;
    pthread_mutex_lock(&sc_join.mu);
    uint64_t now = sc_now_ms();
    sc_join.tokens += (double)(now - sc_join.refill_ms) * cfg->join_rate / 1000.0;
    if (sc_join.tokens > cfg->join_burst)
        sc_join.tokens = cfg->join_burst;
    sc_join.refill_ms = now;
    double need = 1.0 + (reserve > 0 ? reserve : 0);
    if (sc_join.tokens >= need)
        sc_join.tokens -= 1.0;
    else
        wait = 1 + (int)((need - sc_join.tokens) / cfg->join_rate);
    pthread_mutex_unlock(&sc_join.mu);
    return wait;
}
