/* main.c — `spacecast COMMAND ...`: dispatches to src/cmd/. */
#include <stdio.h>
#include <string.h>

#include "spacecast/cmd.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: spacecast COMMAND [options]\n\n"
                 "commands:\n"
                 "  serve     run the server (spacecast serve --help)\n"
                 "  speak     publish an audio file into a Space as a speaker\n"
                 "  loadtest  load-test a server: listeners, join storms, attacks\n\n"
                 "  spacecast --version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("spacecast %s\n", SC_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "serve"))
        return sc_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "speak"))
        return sc_cmd_speak(argc - 1, argv + 1);
    if (!strcmp(cmd, "loadtest"))
        return sc_cmd_loadtest(argc - 1, argv + 1);
    fprintf(stderr, "spacecast: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
