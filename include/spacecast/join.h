/* join.h — the join-rate limit: a token bucket of join_rate per second, join_burst deep,
 * that every listener join (and every TLS handshake, which costs as much) must take a token
 * from, so a storm is smoothed into a rate instead of collapsing the server. */
#ifndef SC_JOIN_H
#define SC_JOIN_H

/** Fill the bucket (at start). */
void sc_join_init(int burst);
/** Take one token, if more than reserve are left (the tokens a join above its fair share may
 *  not take): 0 admitted, else the seconds to wait for one. Thread-safe. */
int sc_join_admit(int reserve);

#endif
