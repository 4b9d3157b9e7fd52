/* serve.c — `spacecast serve`: defaults, then the INI file, then flags; then run. */
#include "spacecast/api.h"
#include "spacecast/cmd.h"
#include "spacecast/common.h"
#include "spacecast/config.h"
#include "spacecast/log.h"
#include "spacecast/server.h"
#include "spacecast/space.h"
#include "spacecast/engine.h"

#include <stdio.h>
#include <errno.h>
#include <sys/stat.h>

static void serve_usage(FILE *out)
{
    fprintf(out, "usage: spacecast serve [-c FILE] [--listen HOST:PORT] [--data DIR] [--demo] [options]\n\n"
                 "Runs the spacecast server. Settings come from the embedded defaults, then the INI\n"
                 "file given with -c (sections [server], [limits], [audio]), then these flags.\n"
                 "SIGTERM stops gracefully; SIGHUP reloads [limits] from the file.\n\n"
                 "  -c, --config FILE            INI configuration file\n");
    sc_config_print_help(out);
}

/* Demo: a live Space with a synthetic speaker, so `make run` has something to hear. */
static void start_demo(void)
{
    sc_space_t *s = NULL;
    size_t n;
    sc_space_t **all = sc_spaces_all(&n);
    for (size_t i = 0; i < n && !s; i++)
        if (!strcmp(all[i]->title, "spacecast demo") && all[i]->state != SC_SPACE_ENDED)
            s = all[i];
    free(all);
    if (!s)
        s = sc_space_create("spacecast demo", 0, 1, sc_server()->cfg.max_listeners_per_space);
    if (s->state == SC_SPACE_SCHEDULED)
        sc_space_start(s);
    char token[SC_TOKEN_MAX];
    sc_space_host_token(s, token, sizeof token);
    sc_engine_demo_speaker(s);
    const char *base = sc_server()->public_url;
    printf("\nspacecast demo Space is live:\n"
           "  open in a browser:  %s/s/%s\n"
           "  listen:             ffplay %s/spaces/%s/live.ogg\n"
           "  host page:          %s/s/%s#token=%s\n"
           "  host token:         %s\n"
           "  admin key:          %s   (creates Spaces: POST /api/spaces; also in %s/admin.key)\n\n",
           base, s->id, base, s->id, base, s->id, token, token, sc_server()->admin_key, sc_server()->cfg.data);
    fflush(stdout);
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
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        int used = 0;
        int r = sc_config_apply_flag(&cfg, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &used, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "spacecast: %s\n", err);
            return 2;
        }
        if (r > 0) {
            fprintf(stderr, "spacecast: unknown option '%s' (see spacecast serve --help)\n", argv[i]);
            return 2;
        }
        i += used - 1;
    }
    if (mkdir(cfg.data, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "spacecast: cannot create data directory %s: %s\n", cfg.data, strerror(errno));
        return 1;
    }
    sc_http_set_router(&sc_api_router);
    if (sc_server_init(&cfg, config_path) != 0) {
        fprintf(stderr, "spacecast: could not start (see the log line above)\n");
        return 1;
    }
    if (cfg.demo)
        start_demo();
    return sc_server_run() == 0 ? 0 : 1;
}
