/* uring.c — one io_uring per worker for the listener sweep (see uring.h). */
#include "spacecast/uring.h"
#include "spacecast/common.h"

#include <errno.h>
#include <liburing.h>

struct sc_uring {
    struct io_uring ring;
    unsigned entries;
};

sc_uring_t *sc_uring_new(unsigned entries)
{
    sc_uring_t *u = sc_calloc(1, sizeof *u);
    if (io_uring_queue_init(entries, &u->ring, 0) < 0) {
        free(u);
        return NULL;
    }
    u->entries = entries;
    return u;
}

void sc_uring_free(sc_uring_t *u)
{
    if (!u)
        return;
    io_uring_queue_exit(&u->ring);
    free(u);
}

int sc_uring_sendmsg(sc_uring_t *u, const int *fds, const struct msghdr *msgs, int n, int *results)
{
    if (n <= 0)
        return 0;
    if ((unsigned)n > u->entries || io_uring_sq_space_left(&u->ring) < (unsigned)n)
        return -1; /* nothing queued: the caller sends these itself */
    for (int i = 0; i < n; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        io_uring_prep_sendmsg(sqe, fds[i], &msgs[i], MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
        results[i] = -EIO; /* a completion we never see closes its connection, never resends */
    }
    /* MSG_DONTWAIT: each send runs (or fails with EAGAIN) inside this call, nothing waits on
     * a socket; the wait is only for the completions to be posted */
    int rc;
    do
        rc = io_uring_submit_and_wait(&u->ring, (unsigned)n);
    while (rc == -EINTR);
    if (rc < 0)
        return -1; /* the kernel took none of them: the caller gives up the ring (they stay queued) */
    for (int got = 0; got < n;) {
        struct io_uring_cqe *cqe;
        int w = io_uring_wait_cqe(&u->ring, &cqe);
        if (w == -EINTR)
            continue;
        if (w < 0)
            break;
        uint64_t i = io_uring_cqe_get_data64(cqe);
        if (i < (uint64_t)n)
            results[i] = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        got++;
    }
    return 0;
}
