/* reactions.c — see reactions.h. */
#include "spacecast/reactions.h"
#include "spacecast/common.h"

const char *const sc_reaction_emoji[SC_REACTIONS_N] = {
    "\xF0\x9F\x91\x8F",         /* 👏 U+1F44F */
    "\xE2\x9D\xA4\xEF\xB8\x8F", /* ❤️ U+2764 U+FE0F */
    "\xF0\x9F\x98\x82",         /* 😂 U+1F602 */
    "\xF0\x9F\x94\xA5",         /* 🔥 U+1F525 */
    "\xF0\x9F\x92\xAF",         /* 💯 U+1F4AF */
    "\xF0\x9F\x99\x8C",         /* 🙌 U+1F64C */
    "\xF0\x9F\x98\xAE",         /* 😮 U+1F62E */
    "\xF0\x9F\x91\x8D",         /* 👍 U+1F44D */
};
const char *const sc_reaction_names[SC_REACTIONS_N] = { "clap", "heart", "laugh", "fire",
                                                        "hundred", "raised_hands", "wow", "thumbs_up" };

#define VS16 "\xEF\xB8\x8F" /* U+FE0F: "show as emoji", optional after any of them */

int sc_reaction_index(const char *s, size_t len)
{
    if (len >= 3 && memcmp(s + len - 3, VS16, 3) == 0)
        len -= 3;
    for (int i = 0; i < SC_REACTIONS_N; i++) {
        const char *e = sc_reaction_emoji[i];
        size_t el = strlen(e);
        if (el >= 3 && memcmp(e + el - 3, VS16, 3) == 0)
            el -= 3;
        if (el == len && memcmp(e, s, len) == 0)
            return i;
    }
    return -1;
}

void sc_reactions_add(sc_reactions_t *r, int idx, uint32_t n)
{
    if (idx >= 0 && idx < SC_REACTIONS_N && n)
        atomic_fetch_add_explicit(&r->pending[idx], n, memory_order_relaxed);
}

uint64_t sc_reactions_drain(sc_reactions_t *r, uint32_t counts[SC_REACTIONS_N])
{
    uint64_t sum = 0;
    for (int i = 0; i < SC_REACTIONS_N; i++) {
        /* a quick look first: an idle Space's drain writes no shared cache line */
        counts[i] = atomic_load_explicit(&r->pending[i], memory_order_relaxed)
                        ? atomic_exchange_explicit(&r->pending[i], 0, memory_order_relaxed)
                        : 0;
        sum += counts[i];
    }
    return sum;
}

json_t *sc_reactions_json(const uint64_t counts[SC_REACTIONS_N])
{
    json_t *o = json_object();
    for (int i = 0; i < SC_REACTIONS_N; i++)
        if (counts[i])
            json_object_set_new(o, sc_reaction_emoji[i], json_integer((json_int_t)counts[i]));
    return o;
}

int sc_reactions_parse(const json_t *o, uint32_t cap, uint32_t out[SC_REACTIONS_N])
{
    memset(out, 0, SC_REACTIONS_N * sizeof *out);
    if (!json_is_object(o))
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int i = sc_reaction_index(k, strlen(k));
        if (i < 0 || !json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)cap) {
            memset(out, 0, SC_REACTIONS_N * sizeof *out);
            return -1;
        }
        /* "❤" and "❤️" are one emoji: both add up, within the cap */
        uint64_t sum = (uint64_t)out[i] + (uint64_t)json_integer_value(v);
        out[i] = (uint32_t)SC_MIN(sum, (uint64_t)cap);
    }
    return 0;
}
