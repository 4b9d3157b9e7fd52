/* serve.c — `spacecast serve` and the program's composition root (Redis main()/initServer):
 * settings (defaults, then the INI file, then flags), the store and the keys, then each
 * layer started bottom-up — the Space model, HTTP with the application's routes, the
 * sockets, the audio engine, WebRTC, the edge relay — and stopped in the reverse order.
 * No module below reaches for another by name to wire itself: they are wired here. */
#include "spacecast/api.h"
#include "spacecast/api_util.h"
#include "spacecast/cmd.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/engine.h"
#include "spacecast/http.h"
#include "spacecast/log.h"
#include "spacecast/hls.h"
#include "spacecast/relay.h"
#include "spacecast/rtc.h"
#include "spacecast/server.h"
#include "spacecast/space.h"
#include "spacecast/store.h"
#include "spacecast/tls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: spacecast serve [-c FILE] [--listen HOST:PORT] [--data DIR] [--demo] [options]\n\n"
                 "Runs the spacecast server. Settings come from the embedded defaults, then the INI\n"
                 "file given with -c (sections [server], [tls], [rtc], [limits], [audio]), then these flags.\n"
                 "SIGTERM stops gracefully; SIGHUP reloads [limits] from the file (flags still win) and\n"
                 "the TLS certificate.\n\n"
                 "  -c, --config FILE            INI configuration file\n");
    sc_config_print_help(out);
}

/* A key given as a flag is readable in /proc/PID/cmdline (ps) by every local user: blank it
 * there once it is copied (as MySQL does with -p), so it shows only for the moment of start. */
static void hide_secret(char **arg, int used)
{
    static const char flag[] = "--admin-key";
    size_t fl = sizeof flag - 1;
    if (strncmp(arg[0], flag, fl) != 0 || (arg[0][fl] != '\0' && arg[0][fl] != '='))
        return;
    char *v = arg[0][fl] == '=' ? arg[0] + fl + 1 : used > 1 ? arg[1] : NULL;
    if (v)
        memset(v, 'x', strlen(v));
}

/* Every flag but -c over cfg. 0, or -1 with a message printed. */
static int apply_flags(sc_config_t *cfg, int argc, char **argv)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        int used = 0;
        int r = sc_config_apply_flag(cfg, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &used, err, sizeof err);
        if (r == 0)
            hide_secret(argv + i, used);
        if (r < 0) {
            fprintf(stderr, "spacecast: %s\n", err);
            return -1;
        }
        if (r > 0) {
            fprintf(stderr, "spacecast: unknown option '%s' (see spacecast serve --help)\n", argv[i]);
            return -1;
        }
        i += used - 1;
    }
    return 0;
}

/* The admin key: the flag or file, else SPACECAST_ADMIN_KEY, else DATA/admin.key (made once). */
static int resolve_admin_key(sc_config_t *cfg)
{
    const char *env_key = getenv("SPACECAST_ADMIN_KEY");
    const char *from = "setting";
    if (cfg->admin_key[0]) {
        /* given */
    } else if (env_key && *env_key) {
        snprintf(cfg->admin_key, sizeof cfg->admin_key, "%s", env_key);
        from = "environment";
    } else {
        int created = 0;
        if (sc_store_admin_key(cfg->data, cfg->admin_key, sizeof cfg->admin_key, &created) != 0) {
            sc_log_error("event=admin_key_failed data=%s", cfg->data);
            return -1;
        }
        from = "file";
        if (created) {
            /* printed once, at creation (SPEC §1), on stdout: never into the log stream
             * (stderr), which is shipped and kept; later starts only read the file */
            sc_log_info("event=admin_key_created file=%s/admin.key", cfg->data);
            printf("admin key (kept in %s/admin.key): %s\n", cfg->data, cfg->admin_key);
            fflush(stdout);
        }
    }
    /* failed guesses are limited per address, but a short key is within reach of a patient
     * botnet: refuse to serve with one */
    if (strlen(cfg->admin_key) < SC_ADMIN_KEY_MIN) {
        sc_log_error("event=admin_key_too_short from=%s min_length=%d", from, SC_ADMIN_KEY_MIN);
        return -1;
    }
    return 0;
}

/* Demo: a live Space with a synthetic speaker, so `make run` has something to hear. */
static void start_demo(void)
{
    sc_space_t *s = NULL;
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    for (size_t i = 0; i < n && !s; i++)
        if (!strcmp(all[i]->title, "spacecast demo") && all[i]->state != SC_SPACE_ENDED)
            s = sc_space_ref(all[i]);
    sc_spaces_release(all, n);
    if (!s)
        s = sc_space_create("spacecast demo", NULL, 0, 1, sc_config()->max_listeners_per_space);
    if (!s)
        return;
    if (s->state == SC_SPACE_SCHEDULED)
        sc_space_start(s);
    char token[SC_TOKEN_MAX];
    sc_space_host_token(s, token, sizeof token);
    sc_demo_speaker_start(s);
    const char *base = sc_config()->public_url;
    printf("\nspacecast demo Space is live:\n"
           "  open in a browser:  %s/s/%s\n"
           "  listen:             ffplay %s/spaces/%s/live.ogg\n"
           "  host page:          %s/s/%s#token=%s\n"
           "  host token:         %s\n"
           "  admin key:          %s   (creates Spaces: POST /api/spaces; also in %s/admin.key)\n\n",
           base, s->id, base, s->id, base, s->id, token, token, sc_config()->admin_key, sc_config()->data);
    fflush(stdout);
    sc_space_unref(s);
}

#define SC_TLS_CHECK_MS 60000 /* the certificate files are looked at once a minute */

static sc_tls_server_t *sc_tls; /* HTTPS: certificates and handshakes; NULL without tls_cert */
static char sc_https_base[256]; /* where tls_redirect sends plain requests */

/* SIGHUP: the TLS certificate and key again (new handshakes take them; a bad pair changes
 * nothing); [limits] from the file again, then the flags over it (a flag wins over the file),
 * then the descriptor clamp; published whole, so no worker sees half of it. */
static void reload(const char *config_path, int argc, char **argv)
{
    char err[512], q[600];
    if (sc_tls && sc_tls_server_reload(sc_tls, err, sizeof err) != 0)
        sc_log_error("event=tls_reload_failed trigger=sighup err=%s note=\"the previous certificate stays in use\"",
                     sc_log_quote(err, q, sizeof q));
    if (!config_path) {
        sc_log_info("event=reload skipped=no_config_file");
        return;
    }
    sc_config_t next = *sc_config();
    if (sc_config_reload_limits(&next, config_path, err, sizeof err) != 0) {
        sc_log_error("event=reload_failed err=\"%s\"", err);
        return;
    }
    if (apply_flags(&next, argc, argv) != 0)
        return;
    /* the flag's key was blanked in argv at start: keep the one in use */
    snprintf(next.admin_key, sizeof next.admin_key, "%s", sc_config()->admin_key);
    next.max_connections = sc_server_fd_limit(next.max_connections);
    sc_config_publish(&next);
    sc_log_info("event=reload file=%s", config_path);
}

/* The certificate, when there is one (a bad one stops the start, naming the file). 0 or -1. */
static int tls_init(const sc_config_t *cfg)
{
    char err[512], q[600];
    if (!cfg->tls_cert[0] && !cfg->tls_key[0]) {
        if (!cfg->listen_tls[0] && !cfg->tls_redirect)
            return 0;
        sc_log_error("event=tls_config_error err=\"listen_tls and tls_redirect need tls_cert and tls_key\"");
        return -1;
    }
    if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
        sc_log_error("event=tls_config_error err=\"tls_cert and tls_key go together\"");
        return -1;
    }
    if (!(sc_tls = sc_tls_server_new(cfg->tls_cert, cfg->tls_key, err, sizeof err))) {
        sc_log_error("event=tls_config_error err=%s", sc_log_quote(err, q, sizeof q));
        return -1;
    }
    /* beside the store's other secrets: a restart keeps returning listeners' resumptions */
    char keys[600];
    snprintf(keys, sizeof keys, "%s/tls_ticket_keys", cfg->data);
    if (sc_tls_server_keep_ticket_keys(sc_tls, keys) != 0)
        sc_log_warn("event=tls_ticket_keys_memory_only path=%s note=\"a restart costs every returning client "
                    "a full handshake\"", keys);
    return 0;
}

/* The https base a plain port redirects to: the public URL when it is https (a redirect must
 * never point back at plain HTTP), else listen_tls. */
static void tls_redirect_base(const sc_config_t *cfg)
{
    if (!sc_tls)
        return;
    if (!strncmp(cfg->public_url, "https://", 8))
        snprintf(sc_https_base, sizeof sc_https_base, "%.255s", cfg->public_url);
    else
        snprintf(sc_https_base, sizeof sc_https_base, "https://%s", cfg->listen_tls[0] ? cfg->listen_tls : cfg->listen);
    sc_https_base[strcspn(sc_https_base, "?#")] = '\0';
    for (size_t n = strlen(sc_https_base); n > 8 && sc_https_base[n - 1] == '/'; n--)
        sc_https_base[n - 1] = '\0';
}

/* Everything from the store to the sockets, nothing running yet. 0 or -1 (logged). */
static int serve_init(sc_config_t *cfg, sc_store_t **store)
{
    int lvl = sc_log_level_parse(cfg->log_level);
    sc_log_set_level(lvl < 0 ? SC_LOG_INFO : (sc_log_level_t)lvl);
    cfg->max_connections = sc_server_fd_limit(cfg->max_connections);
    char err[256];
    if (resolve_admin_key(cfg) != 0) /* before the store: a refused key leaves nothing open */
        return -1;
    *store = sc_store_open(cfg->data, err, sizeof err);
    if (!*store) {
        sc_log_error("event=store_open_failed data=%s err=\"%s\"", cfg->data, err);
        return -1;
    }
    uint8_t token_key[SC_TOKEN_KEY_LEN];
    if (sc_store_secret(*store, "token_key", token_key) != 0) {
        sc_log_error("event=secret_failed");
        return -1;
    }
    if (tls_init(cfg) != 0)
        return -1;
    if (!cfg->public_url[0])
        snprintf(cfg->public_url, sizeof cfg->public_url, "%s://%s", sc_tls ? "https" : "http",
                 sc_tls && cfg->listen_tls[0] ? cfg->listen_tls : cfg->listen);
    tls_redirect_base(cfg);
    sc_config_publish(cfg);

    sc_engine_init(); /* the lobby, before the rooms the Spaces load with */
    sc_spaces_init(*store, token_key);
    sc_http_set_router(&sc_api_router);
    sc_http_set_gate(sc_api_gate); /* credentials are checked before a body is asked for */
    sc_api_live_metrics_register();
    sc_space_extras_start(); /* reactions, numbers, the speaker timeline: before Spaces load */
    sc_api_reactions_start();
    sc_api_proxy_start(); /* the answer cache (clips), and an edge's fetches from its origin */
    if (sc_server_init(&sc_http_proto, sc_tls, sc_https_base[0] && cfg->tls_redirect ? sc_https_base : NULL) != 0)
        return -1;
    if (sc_spaces_load() != 0) {
        sc_log_error("event=load_failed");
        return -1;
    }
    return 0;
}

/* Run until SIGTERM/SIGINT, then stop in the reverse order of starting. */
static int serve_run(const sigset_t *signals, const char *config_path, int argc, char **argv)
{
    const sc_config_t *cfg = sc_config();
    sc_hls_set_aac_idle_ms(cfg->hls_aac_idle_s * 1000);
    if (sc_engine_start() != 0)
        return -1;
    if (!cfg->relay_from[0] && sc_rtc_start(cfg) < 0) /* speakers publish at the origin */
        return -1;
    if (cfg->relay_from[0] && sc_relay_start(cfg->relay_from, cfg->relay_ca_file) != 0)
        return -1;
    sc_server_start();
    if (sc_tls) {
        sc_tls_log_fanout();
        if (sc_tls_server_start(sc_tls, SC_TLS_CHECK_MS) != 0)
            return -1;
    }
    /* the main thread waits for signals and, once a second, keeps the Space model's house
     * (stores what a full disk refused, retires Spaces that ended a while ago) */
    for (;;) {
        struct timespec second = { 1, 0 };
        int sig = sigtimedwait(signals, NULL, &second);
        if (sig < 0) {
            sc_spaces_housekeeping();
            continue;
        }
        if (sig != SIGHUP)
            break;
        reload(config_path, argc, argv);
    }
    sc_log_info("event=shutdown phase=stop_accepting");
    sc_server_stop_accepting();
    sc_relay_stop();
    sc_api_proxy_stop(); /* before the workers: its answers are posted to their loops */
    sc_rtc_stop();    /* speakers' sessions first: they hold ingest slots of the engine's Spaces */
    sc_demo_speaker_stop();
    sc_engine_stop(); /* flushes and syncs recordings */
    sc_server_stop(); /* each worker closes its connections on its own thread */
    sc_tls_server_free(sc_tls); /* after the connections: the last references on its contexts */
    sc_tls = NULL;
    sc_spaces_flush(); /* then the numbers (those listeners' time included) and timelines */
    return 0;
}

int sc_cmd_serve(int argc, char **argv)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    const char *config_path = NULL;
    char err[256];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            serve_usage(stdout);
            return 0;
        }
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            config_path = argv[++i];
    }
    if (config_path && sc_config_load_file(&cfg, config_path, err, sizeof err) < 0) {
        fprintf(stderr, "spacecast: %s\n", err);
        return 2;
    }
    if (apply_flags(&cfg, argc, argv) != 0)
        return 2;
    if (mkdir(cfg.data, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "spacecast: cannot create data directory %s: %s\n", cfg.data, strerror(errno));
        return 1;
    }
    /* before anything touches the data (the store, recordings' repair, a second socket on
     * the same port): two servers on one data directory would interleave their writes */
    if (sc_store_lock_dir(cfg.data, err, sizeof err) < 0) {
        fprintf(stderr, "spacecast: %s\n", err);
        return 1;
    }
    /* before any thread exists (the HLS thread may start while Spaces load): every thread
     * inherits the mask, and only sigwait below sees these signals */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    sc_store_t *store = NULL;
    if (serve_init(&cfg, &store) != 0) {
        fprintf(stderr, "spacecast: could not start (see the log line above)\n");
        sc_store_t *held = sc_spaces_detach_store(); /* the model's, if it got that far */
        sc_store_close(held ? held : store);
        return 1;
    }
    if (cfg.demo)
        start_demo();
    int rc = serve_run(&signals, config_path, argc, argv);
    sc_store_close(sc_spaces_detach_store());
    sc_log_info("event=shutdown phase=done");
    return rc == 0 ? 0 : 1;
}
