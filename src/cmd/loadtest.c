/* loadtest.c — `spacecast loadtest URL [options]`: the operator's load tester (in the manner
 * of redis-benchmark): options, the many-Spaces setup (loadtest_setup.c), fork the listener
 * processes, the attacker and the speakers, a progress line each second, then one key=value
 * summary and a verdict against the thresholds given. */
#include "spacecast/cmd.h"
#include "spacecast/common.h"
#include "spacecast/loadtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SC_LT_PER_PROC 18000
#define SC_LT_PER_SOURCE 100

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spacecast loadtest URL [options]\n\n"
            "URL is a Space (http(s)://HOST:PORT/spaces/ID) or its stream (.../spaces/ID/live.ogg).\n"
            "Only loopback targets unless --allow-host names the address. Every run ends by itself.\n\n"
            "  --listeners N          listeners to run (default 100)\n"
            "  --procs P              processes (default: one per 18,000 listeners)\n"
            "  --source-addrs K       source addresses 127.x.y.2.. (default: one per 100; x.y from the\n"
            "                         low 16 bits of the process ID, so runs side by side differ)\n"
            "  --join-rate R          joins per second (default 1000)\n"
            "  --storm                everyone at once instead\n"
            "  --duration S           seconds to hold after the last scheduled join (default 10)\n"
            "  --timeout S            hard limit for the whole run (default duration + 30)\n"
            "  --stall-ms MS          no data this long while connected is a stall (default 1500)\n"
            "  --retry POLICY         none | naive | backoff (default backoff: exponential, full jitter,\n"
            "                         honouring Retry-After)\n"
            "  --flood N              N idle connections that never send anything\n"
            "  --slowloris N          N request heads sent one byte every 5 s\n"
            "  --garbage R            R connections/s sending 1 KB of random bytes\n"
            "  --oversized R          R requests/s with a 64 KB header\n"
            "  --hammer R             GET /api/spaces/ID at R requests/s (reports details latency)\n"
            "  --allow-host ADDR      permit this non-loopback target address\n"
            "TLS (an https URL, or --tls with an http one): every listener's handshake is timed\n"
            "  --tls                  speak TLS to the URL's port\n"
            "  --tls-resume           returning listeners: each process makes one full handshake, every\n"
            "                         listener then resumes its session (tickets)\n"
            "  --ca-file PEM          verify the server against these CAs (default: the system's)\n"
            "  --insecure             do not verify the server's certificate (peers with their own)\n"
            "  --quiet                no progress line\n"
            "many Spaces (URL is the server, http://HOST:PORT):\n"
            "  --spaces N             create N Spaces (needs --admin-key), started unless --scheduled;\n"
            "                         listener i listens to Space i %% N, --hammer asks for random ones\n"
            "  --admin-key KEY        the server's admin key (creates the Spaces)\n"
            "  --scheduled            leave them scheduled (a day ahead), no speakers\n"
            "  --speakers K           K speakers per Space, each an Opus tone (440, 660 ... Hz) over the\n"
            "                         Icecast ingest, all from one process\n"
            "  --listeners-per-space L  L listeners per Space (sets --listeners)\n"
            "  --hls-per-space H      H HLS players per Space (playlist every 2 s, newest segment)\n"
            "  --page-ms MS           speakers' Ogg page duration (default 100)\n"
            "  --settle-ms MS         listeners start this long after the speakers (default 2000)\n"
            "  --no-record            create them with \"record\": false\n"
            "  --create-rate R        at most R creations per second (default: as fast as answered)\n"
            "  --api-conns C          API connections for the setup (default 8)\n"
            "  --ids-out FILE         write \"ID HOST_TOKEN SPEAKER_TOKEN...\" per Space\n"
            "  --ids FILE             use the Spaces of such a file instead of creating any\n"
            "  --icecast PASSWORD     an icecast2 server instead: Space i is the mount /lt<PID>x<i>.ogg, its one\n"
            "                         speaker the mount's source (user source, this password)\n"
            "thresholds (exit 1 when not met):\n"
            "  --max-stalls N (default 0)  --max-join-p99-ms MS  --min-joined N\n"
            "  --max-details-p99-ms MS     --max-byte-spread PCT\n");
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static float pct(const float *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i ? i - 1 : 0];
}

/* http://HOST:PORT/spaces/ID[/live.ogg] → target, paths. */
static int parse_url(const char *url, const char *allow, sc_lt_opts_t *o)
{
    int https = !strncmp(url, "https://", 8);
    if (strncmp(url, "http://", 7) != 0 && !https)
        return -1;
    if (https)
        o->tls = 1;
    const char *p = url + (https ? 8 : 7), *slash = strchr(p, '/');
    if (!slash && o->nspaces > 0) /* many Spaces: the server alone will do */
        slash = p + strlen(p);
    if (!slash)
        return -1;
    char hostport[128];
    size_t hl = (size_t)(slash - p);
    if (hl >= sizeof hostport)
        return -1;
    memcpy(hostport, p, hl);
    hostport[hl] = '\0';
    char *colon = strrchr(hostport, ':');
    int port = https ? 443 : 80;
    if (colon) {
        *colon = '\0';
        port = atoi(colon + 1);
    }
    snprintf(o->host, sizeof o->host, "%s", hostport);
    struct in_addr a;
    if (!strcmp(hostport, "localhost"))
        inet_pton(AF_INET, "127.0.0.1", &a);
    else if (inet_pton(AF_INET, hostport, &a) != 1)
        return -2;
    int loopback = (ntohl(a.s_addr) >> 24) == 127;
    if (!loopback && !(allow && !strcmp(allow, hostport)))
        return -3;
    o->target = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = a };
    const char *sp = strstr(slash, "/spaces/");
    if (!sp)
        sp = strstr(slash, "/s/");
    if (!sp && o->nspaces > 0) { /* many Spaces: the server is the target */
        o->live_path[0] = o->api_path[0] = '\0';
        return 0;
    }
    if (!sp) { /* any other stream (icecast2, a file server): listen to the path as it is */
        snprintf(o->live_path, sizeof o->live_path, "%s", slash);
        o->api_path[0] = '\0';
        return 0;
    }
    const char *id = strchr(sp + 1, '/') + 1;
    size_t il = strcspn(id, "/?");
    if (il == 0 || il > 64)
        return -1;
    snprintf(o->live_path, sizeof o->live_path, "/spaces/%.*s/live.ogg", (int)il, id);
    snprintf(o->api_path, sizeof o->api_path, "/api/spaces/%.*s", (int)il, id);
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int sc_cmd_loadtest(int argc, char **argv)
{
    sc_lt_opts_t o = { .listeners = 100, .join_rate = 1000, .duration_s = 10, .timeout_s = -1, .stall_ms = 1500,
                       .retry = SC_LT_RETRY_BACKOFF, .page_ms = 100, .settle_ms = -1 };
    const char *url = NULL, *allow = NULL;
    long max_stalls = 0, max_join_p99 = -1, min_joined = -1, max_details_p99 = -1, max_spread = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(flag, dst)                                                                                             \
    if (!strcmp(a, flag)) {                                                                                        \
        if (!v) {                                                                                                  \
            fprintf(stderr, "loadtest: %s needs a value\n", flag);                                                 \
            return 2;                                                                                              \
        }                                                                                                          \
        dst = atol(v);                                                                                             \
        i++;                                                                                                       \
        continue;                                                                                                  \
    }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        NUM("--listeners", o.listeners) NUM("--procs", o.procs) NUM("--source-addrs", o.source_addrs)
        NUM("--join-rate", o.join_rate) NUM("--duration", o.duration_s) NUM("--timeout", o.timeout_s)
        NUM("--stall-ms", o.stall_ms) NUM("--flood", o.flood) NUM("--slowloris", o.slowloris)
        NUM("--garbage", o.garbage_rate) NUM("--oversized", o.oversized_rate) NUM("--hammer", o.hammer_rate)
        NUM("--max-stalls", max_stalls) NUM("--max-join-p99-ms", max_join_p99) NUM("--min-joined", min_joined)
        NUM("--max-details-p99-ms", max_details_p99) NUM("--max-byte-spread", max_spread)
        NUM("--spaces", o.nspaces) NUM("--speakers", o.speakers) NUM("--listeners-per-space", o.per_space)
        NUM("--hls-per-space", o.hls_per_space) NUM("--page-ms", o.page_ms) NUM("--create-rate", o.create_rate)
        NUM("--api-conns", o.api_conns) NUM("--settle-ms", o.settle_ms)
        if (!strcmp(a, "--scheduled")) {
            o.scheduled = 1;
        } else if (!strcmp(a, "--no-record")) {
            o.no_record = 1;
        } else if (!strcmp(a, "--admin-key") && v) {
            snprintf(o.admin_key, sizeof o.admin_key, "%s", v);
            i++;
        } else if (!strcmp(a, "--ids") && v) {
            o.ids_in = v;
            i++;
        } else if (!strcmp(a, "--icecast") && v) {
            o.icecast_pw = v;
            i++;
        } else if (!strcmp(a, "--ids-out") && v) {
            o.ids_out = v;
            i++;
        } else if (!strcmp(a, "--storm")) {
            o.storm = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--tls")) {
            o.tls = 1;
        } else if (!strcmp(a, "--tls-resume")) {
            o.tls = o.tls_resume = 1;
        } else if (!strcmp(a, "--insecure")) {
            o.insecure = 1;
        } else if (!strcmp(a, "--ca-file") && v) {
            snprintf(o.ca_file, sizeof o.ca_file, "%s", v);
            i++;
        } else if (!strcmp(a, "--allow-host") && v) {
            allow = v;
            i++;
        } else if (!strcmp(a, "--retry") && v) {
            o.retry = !strcmp(v, "none") ? SC_LT_RETRY_NONE : !strcmp(v, "naive") ? SC_LT_RETRY_NAIVE
                    : !strcmp(v, "backoff")                                      ? SC_LT_RETRY_BACKOFF
                                                                                 : -1;
            if (o.retry < 0) {
                fprintf(stderr, "loadtest: --retry none|naive|backoff\n");
                return 2;
            }
            i++;
        } else if (a[0] != '-' && !url) {
            url = a;
        } else {
            fprintf(stderr, "loadtest: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
#undef NUM
    if (o.ids_in && o.nspaces <= 0)
        o.nspaces = 1000000; /* as many as the file holds */
    if (o.per_space > 0 && o.nspaces > 0)
        o.listeners = o.per_space * o.nspaces; /* an upper bound with --ids: fixed after the setup */
    if (!url || o.listeners < 0 || o.join_rate < 1 || o.duration_s < 1 || o.listeners > 1000000 ||
        o.nspaces < 0 || o.nspaces > 1000000 || o.speakers < 0 || o.speakers > SC_LT_MAX_SPEAKERS ||
        o.hls_per_space < 0 || o.page_ms < 20 || o.page_ms > 1000) {
        usage(stderr);
        return 2;
    }
    int pr = parse_url(url, allow, &o);
    if (pr == -3) {
        fprintf(stderr, "loadtest: refusing a non-loopback target %s (name it with --allow-host)\n", o.host);
        return 2;
    }
    if (pr < 0) {
        fprintf(stderr, "loadtest: URL must be http(s)://HOST:PORT/spaces/ID[/live.ogg] with a numeric address\n");
        return 2;
    }
    if (o.tls && o.nspaces > 0) {
        fprintf(stderr, "loadtest: --spaces speaks plain HTTP only\n");
        return 2;
    }
    if (o.icecast_pw && (o.speakers > 1 || o.hls_per_space || o.hammer_rate || o.scheduled)) {
        fprintf(stderr, "loadtest: --icecast: one source per mount, no HLS, no API\n");
        return 2;
    }
    if (o.hammer_rate && !o.api_path[0] && o.nspaces <= 0) {
        fprintf(stderr, "loadtest: --hammer needs a spacecast Space URL\n");
        return 2;
    }
    sc_lt_setup_stats_t setup = { 0 };
    if (o.nspaces > 0) {
        if (o.scheduled)
            o.speakers = 0;
        if (sc_lt_setup(&o, &setup) != 0) {
            fprintf(stderr, "loadtest: no Space could be set up\n");
            return 2;
        }
        if (o.per_space > 0)
            o.listeners = o.per_space * o.nspaces;
    }
    int publishers = o.nspaces > 0 && (o.speakers > 0 || o.hls_per_space > 0);
    if (o.procs <= 0)
        o.procs = (o.listeners + SC_LT_PER_PROC - 1) / SC_LT_PER_PROC;
    if (o.procs < 1)
        o.procs = 1;
    /* connect() takes ports of one parity first (the other half is left to bind()): once the
     * ~14,000 of its half on one source address are used, every further connect scans them all
     * in the kernel (__inet_hash_connect), seconds at a time at 14,000, and the whole process
     * stops reading meanwhile. And a crowd comes from many addresses: the server gives one
     * address a quarter of its connections and of its join budget (a client, not an
     * audience). So a source address per 100 listeners (up to 250 of them). */
    if (o.source_addrs <= 0)
        o.source_addrs = (o.listeners + o.nspaces * (o.speakers + o.hls_per_space) + SC_LT_PER_SOURCE - 1) /
                         SC_LT_PER_SOURCE;
    if (o.source_addrs < 1)
        o.source_addrs = 1;
    if (o.source_addrs > 250)
        o.source_addrs = 250;
    /* and a block of them of this run's own: an audience and a storm (or an attack) started as two
     * runs at once would otherwise both count from 127.0.0.2 and meet the same limit together */
    uint32_t pid = (uint32_t)getpid();
    o.source_base = (127u << 24) | ((pid >> 8 & 0xff) << 16) | ((pid & 0xff) << 8) | 2u;
    if (o.timeout_s < 0)
        o.timeout_s = o.duration_s + 30;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    uint64_t t0 = sc_now_ms();
    if (o.settle_ms < 0) /* speakers on air (and an icecast2 mount existing) before anyone listens */
        o.settle_ms = o.nspaces > 0 && o.speakers > 0 ? 2000 : 0;
    uint64_t join_span = (uint64_t)o.settle_ms + (o.storm ? 0 : (uint64_t)o.listeners * 1000 / (uint64_t)o.join_rate);
    uint64_t t_end = t0 + SC_MIN(join_span + (uint64_t)o.duration_s * 1000, (uint64_t)o.timeout_s * 1000);
    /* listeners are compared over the same window: from a second after the last join to the end */
    o.window_ms = SC_MIN(t0 + join_span + 1000, t_end);
    sc_lt_progress_t *prog = mmap(NULL, sizeof *prog, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(prog, 0, sizeof *prog);

    int nchild = o.procs + 1 + publishers; /* listeners..., the attacker, the speakers */
    pid_t *pids = sc_calloc((size_t)nchild, sizeof *pids);
    int *fds = sc_calloc((size_t)nchild, sizeof *fds);
    for (int c = 0; c < nchild; c++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            int rc;
            if (c == o.procs) {
                rc = sc_lt_attacker(&o, p[1], prog, t_end);
            } else if (c > o.procs) {
                rc = sc_lt_speakers(&o, prog, t_end);
            } else {
                int first = (int)((long)o.listeners * c / o.procs), last = (int)((long)o.listeners * (c + 1) / o.procs);
                rc = sc_lt_worker(&o, first, last - first, p[1], prog, t_end);
            }
            _exit(rc);
        }
        close(p[1]);
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        pids[c] = pid;
        fds[c] = p[0];
    }
    /* collect records while printing progress */
    size_t nres = 0, ndet = 0;
    sc_lt_result_t *res = sc_calloc((size_t)o.listeners + 1, sizeof *res);
    float *det = sc_malloc(SC_LT_MAX_DETAILS * sizeof *det);
    size_t *partial = sc_calloc((size_t)nchild, sizeof *partial);
    char (*pbuf)[sizeof(sc_lt_result_t)] = sc_calloc((size_t)nchild, sizeof *pbuf);
    int open_fds = nchild;
    uint64_t next_print = sc_now_ms() + 1000, last_bytes = 0;
    while (open_fds) {
        struct pollfd pf[64];
        int np = 0;
        for (int c = 0; c < nchild && np < 64; c++)
            if (fds[c] >= 0)
                pf[np++] = (struct pollfd){ .fd = fds[c], .events = POLLIN };
        poll(pf, (nfds_t)np, 200);
        for (int c = 0; c < nchild; c++) {
            if (fds[c] < 0)
                continue;
            size_t rec = c == o.procs ? sizeof(float) : sizeof(sc_lt_result_t);
            for (;;) {
                ssize_t r = read(fds[c], pbuf[c] + partial[c], rec - partial[c]);
                if (r > 0) {
                    partial[c] += (size_t)r;
                    if (partial[c] == rec) {
                        partial[c] = 0;
                        if (c == o.procs && ndet < SC_LT_MAX_DETAILS)
                            memcpy(&det[ndet++], pbuf[c], sizeof(float));
                        else if (c != o.procs && nres < (size_t)o.listeners)
                            memcpy(&res[nres++], pbuf[c], sizeof(sc_lt_result_t));
                    }
                    continue;
                }
                if (r == 0) {
                    close(fds[c]);
                    fds[c] = -1;
                    open_fds--;
                }
                break;
            }
        }
        uint64_t now = sc_now_ms();
        if (!o.quiet && now >= next_print) {
            uint64_t b = atomic_load(&prog->bytes);
            fprintf(stderr, "t=%llus connected=%d refused=%d failed=%d stalls=%llu bytes/s=%llu details=%d",
                    (unsigned long long)((now - t0) / 1000), atomic_load(&prog->connected),
                    atomic_load(&prog->refused), atomic_load(&prog->failed),
                    (unsigned long long)atomic_load(&prog->stalls), (unsigned long long)(b - last_bytes),
                    atomic_load(&prog->details_n));
            if (o.nspaces > 0)
                fprintf(stderr, " speakers_up=%d", atomic_load(&prog->speakers_up));
            if (o.tls)
                fprintf(stderr, " handshakes=%d hs_failed=%d", atomic_load(&prog->handshakes),
                        atomic_load(&prog->hs_failed));
            fputc('\n', stderr);
            last_bytes = b;
            next_print = now + 1000;
        }
    }
    for (int c = 0; c < nchild; c++)
        waitpid(pids[c], NULL, 0);

    /* summary */
    size_t joined = 0, r503 = 0, r429 = 0, failed = 0, bad = 0, stalled = 0, heard = 0, nb = 0, redirected = 0;
    uint64_t attempts = 0, stalls = 0;
    float *joins = sc_malloc((nres + 1) * sizeof *joins), *hs = sc_malloc((nres + 1) * sizeof *hs);
    float *hs_audio = sc_malloc((nres + 1) * sizeof *hs_audio); /* handshake done → first audio byte */
    size_t nhs = 0, resumed = 0, nha = 0;
    uint64_t *bytes = sc_malloc((nres + 1) * sizeof *bytes);
    size_t nj = 0;
    for (size_t i = 0; i < nres; i++) {
        const sc_lt_result_t *r = &res[i];
        attempts += (uint64_t)r->attempts;
        redirected += r->redirected > 0;
        if (r->hs_ms >= 0) {
            hs[nhs++] = r->hs_ms;
            resumed += r->resumed;
            if (r->attempts == 1 && r->join_ms >= r->hs_ms) /* both of the same attempt */
                hs_audio[nha++] = r->join_ms - r->hs_ms;
        }
        stalls += r->stalls;
        stalled += r->stalls > 0;
        if (r->join_ms >= 0) {
            joined++;
            joins[nj++] = r->join_ms;
            heard += r->join_ms <= 1000;
            if (!r->ogg_ok)
                bad++;
            if (r->whole_hold)
                bytes[nb++] = r->window_bytes;
        } else if (r->status == 503) {
            r503++;
        } else if (r->status == 429) {
            r429++;
        } else {
            failed++;
        }
    }
    qsort(joins, nj, sizeof *joins, cmp_float);
    qsort(bytes, nb, sizeof *bytes, cmp_u64);
    qsort(det, ndet, sizeof *det, cmp_float);
    qsort(hs, nhs, sizeof *hs, cmp_float);
    qsort(hs_audio, nha, sizeof *hs_audio, cmp_float);
    uint64_t median_b = nb ? bytes[nb / 2] : 0;
    double spread = 0;
    for (size_t i = 0; i < nb && median_b; i++)
        spread = fmax(spread, fabs((double)bytes[i] - (double)median_b) * 100.0 / (double)median_b);
    int pass = (long)stalls <= max_stalls && (max_join_p99 < 0 || pct(joins, nj, 99) <= max_join_p99) &&
               (min_joined < 0 || (long)joined >= min_joined) &&
               (max_details_p99 < 0 || (ndet && pct(det, ndet, 99) <= max_details_p99)) &&
               (max_spread < 0 || spread <= max_spread) && bad == 0 &&
               atomic_load(&prog->speakers_up) == o.nspaces * o.speakers; /* every speaker on air to the end */
    printf("joined=%zu refused_503=%zu refused_429=%zu failed=%zu bad=%zu attempts=%llu redirected=%zu join_p50_ms=%.1f "
           "join_p99_ms=%.1f join_max_ms=%.1f heard_1s_pct=%.1f stalls=%llu stalled_listeners=%zu bytes_min=%llu "
           "bytes_median=%llu byte_spread_pct=%.1f details=%zu details_p50_ms=%.2f details_p99_ms=%.2f "
           "details_max_ms=%.2f ",
           joined, r503, r429, failed, bad, (unsigned long long)attempts, redirected, pct(joins, nj, 50), pct(joins, nj, 99),
           nj ? joins[nj - 1] : 0.0f, nres ? 100.0 * (double)heard / (double)nres : 0.0, (unsigned long long)stalls,
           stalled, (unsigned long long)(nb ? bytes[0] : 0), (unsigned long long)median_b, spread, ndet,
           pct(det, ndet, 50), pct(det, ndet, 99), ndet ? det[ndet - 1] : 0.0f);
    /* hs: TCP connect to handshake done, each listener's first; resumed: of those; hs_audio: from the
     * client's handshake done to the first byte of audio (listeners in on their first attempt): the
     * server finishing the handshake, reading the request, answering with the first pages */
    if (o.tls)
        printf("tls=1 handshakes=%d hs_failed=%d hs_listeners=%zu resumed=%zu hs_p50_ms=%.1f hs_p99_ms=%.1f "
               "hs_max_ms=%.1f hs_audio_p50_ms=%.1f hs_audio_p99_ms=%.1f ",
               atomic_load(&prog->handshakes), atomic_load(&prog->hs_failed), nhs, resumed, pct(hs, nhs, 50),
               pct(hs, nhs, 99), nhs ? hs[nhs - 1] : 0.0f, pct(hs_audio, nha, 50), pct(hs_audio, nha, 99));
    printf("verdict=%s\n", pass ? "pass" : "fail");
    if (o.nspaces > 0) {
        /* the Spaces in which some listener stalled, and those in which some were not admitted */
        int *st = sc_malloc((nres + 1) * sizeof *st), *rf = sc_malloc((nres + 1) * sizeof *rf);
        size_t nst = 0, nrf = 0;
        for (size_t i = 0; i < nres; i++) {
            if (res[i].stalls)
                st[nst++] = res[i].space;
            if (res[i].join_ms < 0)
                rf[nrf++] = res[i].space;
        }
        size_t spaces_stalled = 0, spaces_refused = 0;
        qsort(st, nst, sizeof *st, cmp_int);
        qsort(rf, nrf, sizeof *rf, cmp_int);
        for (size_t i = 0; i < nst; i++)
            spaces_stalled += i == 0 || st[i] != st[i - 1];
        for (size_t i = 0; i < nrf; i++)
            spaces_refused += i == 0 || rf[i] != rf[i - 1];
        free(st);
        free(rf);
        int speakers = o.nspaces * o.speakers, up = atomic_load(&prog->speakers_up);
        printf("spaces=%d created=%zu create_failed=%zu create_per_s=%.1f create_p50_ms=%.2f create_p99_ms=%.2f "
               "create_max_ms=%.2f setup_retried=%zu speakers=%d speakers_up=%d speaker_refused=%d "
               "speaker_reconnects=%d speaker_pages=%llu speaker_late_pages=%llu speaker_dropped_pages=%llu "
               "spaces_stalled=%zu spaces_refused=%zu hls_playlists=%llu hls_segments=%llu hls_failed=%llu\n",
               o.nspaces, setup.created, setup.failed, setup.create_per_s, setup.create_p50_ms, setup.create_p99_ms,
               setup.create_max_ms, setup.retried, speakers, up, atomic_load(&prog->speaker_refused),
               atomic_load(&prog->speaker_reconnects), (unsigned long long)atomic_load(&prog->speaker_pages),
               (unsigned long long)atomic_load(&prog->speaker_late),
               (unsigned long long)atomic_load(&prog->speaker_dropped), spaces_stalled, spaces_refused,
               (unsigned long long)atomic_load(&prog->hls_playlists),
               (unsigned long long)atomic_load(&prog->hls_segments), (unsigned long long)atomic_load(&prog->hls_failed));
    }
    fflush(stdout);
    if (atomic_load(&prog->tls_error_set))
        fprintf(stderr, "loadtest: TLS: %s\n", prog->tls_error);
    free(joins);
    free(hs);
    free(hs_audio);
    free(bytes);
    free(res);
    free(det);
    free(partial);
    free(pbuf);
    free(pids);
    free(fds);
    munmap(prog, sizeof *prog);
    return pass ? 0 : 1;
}
