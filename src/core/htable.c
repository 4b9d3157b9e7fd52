/* htable.c — see htable.h. */
#include "spacecast/htable.h"
#include "spacecast/common.h"

#include <stdlib.h>

uint32_t sc_hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* Rehash every node into twice the buckets: the stored hash says where, no key is read. */
static void grow(sc_htable_t *t)
{
    size_t nb = t->nb ? t->nb * 2 : SC_HTABLE_MIN;
    sc_hnode_t **b = sc_calloc(nb, sizeof *b);
    for (size_t i = 0; i < t->nb; i++) {
        for (sc_hnode_t *x = t->b[i], *next; x; x = next) {
            next = x->next;
            size_t k = x->hash & (nb - 1);
            x->next = b[k];
            b[k] = x;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

void sc_htable_insert(sc_htable_t *t, sc_hnode_t *node, uint32_t hash)
{
    if (t->n >= t->nb)
        grow(t);
    size_t k = hash & (t->nb - 1);
    node->hash = hash;
    node->next = t->b[k];
    t->b[k] = node;
    t->n++;
}

sc_hnode_t *sc_htable_find(const sc_htable_t *t, uint32_t hash, sc_hnode_eq_fn eq, const void *key)
{
    if (!t->nb)
        return NULL;
    for (sc_hnode_t *x = t->b[hash & (t->nb - 1)]; x; x = x->next)
        if (x->hash == hash && eq(x, key))
            return x;
    return NULL;
}

int sc_htable_remove(sc_htable_t *t, sc_hnode_t *node)
{
    if (!t->nb)
        return 0;
    for (sc_hnode_t **pp = &t->b[node->hash & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            node->next = NULL;
            t->n--;
            return 1;
        }
    }
    return 0;
}

void sc_htable_each(const sc_htable_t *t, void (*fn)(sc_hnode_t *node, void *arg), void *arg)
{
    for (size_t i = 0; i < t->nb; i++)
        for (sc_hnode_t *x = t->b[i], *next; x; x = next) {
            next = x->next;
            fn(x, arg);
        }
}

void sc_htable_clear(sc_htable_t *t)
{
    free(t->b);
    t->b = NULL;
    t->nb = t->n = 0;
}
