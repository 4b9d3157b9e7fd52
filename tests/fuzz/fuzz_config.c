/* fuzz_config.c — the INI configuration reader (inih + our table), then flags. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    sc_config_t c;
    char err[256];
    sc_config_defaults(&c);
    if (sc_config_load_string(&c, text, err, sizeof err) == 0) {
        /* whatever was accepted is within the table's bounds */
        if (c.max_header_bytes < 1024 || c.max_header_bytes > 65536 || c.page_ms < 20 || c.bitrate < 6000)
            __builtin_trap();
        if (memchr(c.listen, '\0', sizeof c.listen) == NULL)
            __builtin_trap();
    }
    /* the same bytes as a flag: --key=value */
    int used;
    char *line = strtok(text, "\n");
    if (line) {
        char flag[300];
        strncpy(flag, line, sizeof flag - 1);
        flag[sizeof flag - 1] = '\0';
        sc_config_apply_flag(&c, flag, "1", &used, err, sizeof err);
    }
    free(text);
    return 0;
}
