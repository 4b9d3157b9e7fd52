/* speak.c — placeholder until `spacecast speak` lands. */
#include "spacecast/cmd.h"

#include <stdio.h>

int sc_cmd_speak(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spacecast speak: not implemented yet\n");
    return 2;
}
