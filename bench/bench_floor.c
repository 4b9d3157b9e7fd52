/* bench_floor.c — the floor for the fan-out benchmark: the kernel's own cost of sending the
 * same bytes to N listeners at the same cadence, one send() each, and nothing else.
 *
 *   bench_floor PORT FILE.ogg PAGE_MS
 *
 * Serves every GET with a 200 head, the file's first two pages (OpusHead, OpusTags), then one
 * of the file's audio pages per PAGE_MS to every connection (looping over the file). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_FDS 65536

typedef struct page {
    const uint8_t *p;
    size_t len;
} page_t;

static uint8_t state[MAX_FDS]; /* 0 closed, 1 reading request, 2 streaming */

static size_t split_pages(const uint8_t *buf, size_t n, page_t *out, size_t max)
{
    size_t off = 0, k = 0;
    while (off + 27 <= n && k < max && memcmp(buf + off, "OggS", 4) == 0) {
        size_t nseg = buf[off + 26], body = 0;
        for (size_t i = 0; i < nseg; i++)
            body += buf[off + 27 + i];
        size_t len = 27 + nseg + body;
        if (off + len > n)
            break;
        out[k++] = (page_t){ buf + off, len };
        off += len;
    }
    return k;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_floor PORT FILE.ogg PAGE_MS\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    FILE *f = fopen(argv[2], "rb");
    if (!f)
        return 1;
    static uint8_t file[8 << 20];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    static page_t pages[100000];
    size_t np = split_pages(file, n, pages, 100000);
    if (np < 3) {
        fprintf(stderr, "need an Ogg file with audio pages\n");
        return 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0)
        return 1;
    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    int ms = atoi(argv[3]);
    struct itimerspec its = { { ms / 1000, (ms % 1000) * 1000000L }, { ms / 1000, (ms % 1000) * 1000000L } };
    timerfd_settime(tfd, 0, &its, NULL);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = tfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: audio/ogg\r\nConnection: close\r\n\r\n";
    size_t cur = 2;
    int maxfd = 0;
    struct epoll_event evs[512];
    for (;;) {
        int k = epoll_wait(ep, evs, 512, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAX_FDS) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    state[c] = 1;
                    if (c > maxfd)
                        maxfd = c;
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
            } else if (fd == tfd) {
                uint64_t x;
                if (read(tfd, &x, sizeof x) < 0)
                    continue;
                const page_t *p = &pages[cur];
                cur = cur + 1 < np ? cur + 1 : 2;
                for (int c = 0; c <= maxfd; c++) /* one send per listener per page: the floor */
                    if (state[c] == 2 && send(c, p->p, p->len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
                        close(c);
                        state[c] = 0;
                    }
            } else {
                char buf[4096];
                ssize_t r = read(fd, buf, sizeof buf);
                if (r <= 0) {
                    close(fd);
                    state[fd] = 0;
                } else if (state[fd] == 1 && memmem(buf, (size_t)r, "\r\n\r\n", 4)) {
                    state[fd] = 2;
                    send(fd, head, sizeof head - 1, MSG_NOSIGNAL);
                    send(fd, pages[0].p, pages[0].len, MSG_NOSIGNAL);
                    send(fd, pages[1].p, pages[1].len, MSG_NOSIGNAL);
                }
            }
        }
    }
}
