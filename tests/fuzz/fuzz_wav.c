/* fuzz_wav.c — the WAV header parser `spacecast speak` uses on files it is handed. */
#include <stddef.h>
#include <stdint.h>

#include "spacecast/wav.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_wav_info_t info;
    const char *why;
    if (sc_wav_parse(data, size, &info, &why) == 0) {
        if (info.data_off > size || info.channels < 1 || info.channels > 2)
            __builtin_trap();
    } else if (!why) {
        __builtin_trap();
    }
    return 0;
}
