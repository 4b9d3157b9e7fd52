/* fuzz_json_body.c — API request bodies: JSON parsing (jansson, as the server calls it) and
 * the create-Space validation, including time strings and the host's name; the same bytes as
 * a source's Content-Type value (sc_api_source_codec reads exactly the value, no further). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "spacecast/api_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sc_slice_t ct = sc_slice((const char *)data, size);
    int codec = sc_api_source_codec(&ct);
    if (codec < -1 || codec > SC_CODEC_AAC)
        __builtin_trap();
    json_error_t err;
    json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return 0;
    if (json_is_object(o)) {
        sc_space_params_t p;
        const char *why;
        if (sc_api_space_params(o, 18000, 1, &p, &why) == 0) {
            if (p.max_listeners < 1 || p.max_listeners > 18000 || p.title == NULL || p.scheduled_start < 0 ||
                (p.host_name && !sc_token_valid_name(sc_slice_cstr(p.host_name))))
                __builtin_trap();
        } else if (!why) {
            __builtin_trap();
        }
    }
    json_decref(o);
    return 0;
}
