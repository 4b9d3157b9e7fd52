/* fuzz_json_body.c — API request bodies: JSON parsing (jansson, as the server calls it; and the
 * reaction body's own reader, checked against it) and
 * every body check: create a Space (time strings and the host's name included), a reaction, a
 * pin, a mark, and an edge's report (its reactions and its numbers' delta); also the stored
 * numbers' loader; the same bytes as a source's Content-Type value (sc_api_source_codec reads
 * exactly the value, no further). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spacecast/api_util.h"

static void bodies_of_19(const json_t *o)
{
    const char *a, *b, *why;
    int idx = sc_api_reaction_params(o, &a, &why);
    if (idx >= SC_REACTIONS_N || (idx < 0 && !why))
        __builtin_trap();
    if (sc_api_pin_params(o, &a, &b, &why) == 0 && (!sc_api_valid_pin_url(a) || strlen(b) > SC_PIN_TEXT_MAX))
        __builtin_trap();
    if (sc_api_mark_params(o, &a, &why) == 0 && (strlen(a) == 0 || strlen(a) > SC_TIMELINE_TITLE_MAX))
        __builtin_trap();
    uint32_t counts[SC_REACTIONS_N];
    const json_t *st;
    if (sc_api_edge_extras(o, counts, &st, &why) == 0) {
        for (int i = 0; i < SC_REACTIONS_N; i++)
            if (counts[i] > SC_REACTIONS_EDGE_MAX)
                __builtin_trap();
        if (st) { /* what passed the check merges */
            sc_stats_t *s = sc_stats_new();
            if (sc_stats_edge_merge(s, st) != 0)
                __builtin_trap();
            sc_stats_free(s);
        }
    }
}

/* The reaction body read in place must agree with jansson and sc_api_reaction_params on every
 * body it accepts: the same emoji, the same listener id. */
static void reaction_fast_agrees(const uint8_t *data, size_t size)
{
    const char *l;
    size_t ln;
    int idx = sc_api_reaction_fast((const char *)data, size, &l, &ln);
    if (idx < 0) {
        if (l || ln)
            __builtin_trap();
        return;
    }
    json_error_t err;
    json_t *o = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &err);
    const char *jl, *why;
    if (!o || !json_is_object(o) || sc_api_reaction_params(o, &jl, &why) != idx || (!jl) != (!l) ||
        (jl && (strlen(jl) != ln || memcmp(jl, l, ln) != 0)))
        __builtin_trap();
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reaction_fast_agrees(data, size);
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
        bodies_of_19(o);
    }
    json_decref(o);
    /* the numbers as the store keeps them: a loader that accepts must give back what it read */
    char *text = strndup((const char *)data, size);
    sc_stats_t *s = sc_stats_new();
    if (sc_stats_load(s, text) == 0) {
        char *again = sc_stats_save(s);
        sc_stats_t *t = sc_stats_new();
        if (sc_stats_load(t, again) != 0)
            __builtin_trap();
        sc_stats_free(t);
        free(again);
    }
    sc_stats_free(s);
    free(text);
    return 0;
}
