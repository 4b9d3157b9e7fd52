/* cmd.h — the subcommands of the spacecast binary. Each returns the process exit status. */
#ifndef SC_CMD_H
#define SC_CMD_H

#include "spacecast/space.h"

int sc_cmd_serve(int argc, char **argv);
int sc_cmd_speak(int argc, char **argv);
int sc_cmd_loadtest(int argc, char **argv);

/* demo.c: the synthetic speaker of `serve --demo` */
/** Invite "demo-bot" into s (live) and feed it a voice-like buzz every tick. 0 or -1. */
int sc_demo_speaker_start(sc_space_t *s);
/** Stop feeding it (before the engine stops). */
void sc_demo_speaker_stop(void);

#endif
