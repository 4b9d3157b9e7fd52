/* loadtest.c — placeholder until `spacecast loadtest` lands. */
#include "spacecast/cmd.h"

#include <stdio.h>

int sc_cmd_loadtest(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spacecast loadtest: not implemented yet\n");
    return 2;
}
