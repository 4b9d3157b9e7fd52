/* cmd.h — the subcommands of the spacecast binary. Each returns the process exit status. */
#ifndef SC_CMD_H
#define SC_CMD_H

int sc_cmd_serve(int argc, char **argv);
int sc_cmd_speak(int argc, char **argv);
int sc_cmd_loadtest(int argc, char **argv);

#endif
