/* uring.h — batched sends for the listener sweep: a slice of sendmsg calls submitted to the
 * kernel with one io_uring_enter instead of one system call each. The sockets are
 * non-blocking and every send says MSG_DONTWAIT, so each completes (or fails with EAGAIN)
 * inside the submission: the results are there when the call returns, as sendmsg's would be.
 * The one-send-per-listener floor of the fan-out benchmark is the kernel's cost of N calls;
 * this is how a server goes below it (docs/BENCHMARKS.md). */
#ifndef SC_URING_H
#define SC_URING_H

#include <sys/socket.h>

typedef struct sc_uring sc_uring_t;

/** A ring for up to `entries` sends per batch; NULL if the kernel refuses io_uring (old,
 *  disabled by sysctl or seccomp): the caller then sends one call at a time. */
sc_uring_t *sc_uring_new(unsigned entries);
void sc_uring_free(sc_uring_t *u);
/** sendmsg(fds[i], &msgs[i], MSG_DONTWAIT | MSG_NOSIGNAL) for i < n, in one submission;
 *  results[i] is what each returned (bytes, or -errno; -EIO if its completion was lost). 0, or
 *  -1 if the kernel took none of them: the caller sends them itself and frees the ring (what was
 *  queued must never go out later, behind bytes sent since). */
int sc_uring_sendmsg(sc_uring_t *u, const int *fds, const struct msghdr *msgs, int n, int *results);

#endif
