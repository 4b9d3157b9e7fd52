/* htable.h — an intrusive chained hash table (the Linux hlist idea, Redis' dict at our size):
 * the caller's objects embed an sc_hnode_t, the table holds only bucket heads, and it doubles
 * its buckets when it holds as many nodes as buckets (load factor 1). Each node keeps its key's
 * hash, so growing never reads a key and one table type serves any node type.
 *
 * Not thread-safe: the caller's lock covers the table and the nodes' links. */
#ifndef SC_HTABLE_H
#define SC_HTABLE_H

#include <stddef.h>
#include <stdint.h>

#define SC_HTABLE_MIN 64 /* buckets at the first insert */

/** The links of one node: embed in the object (find it back with SC_CONTAINER_OF). */
typedef struct sc_hnode {
    struct sc_hnode *next; /* bucket chain */
    uint32_t hash;
} sc_hnode_t;

/** A table; zero-initialised is empty (no buckets until the first insert). */
typedef struct sc_htable {
    sc_hnode_t **b;
    size_t nb, n; /* buckets (a power of two, or 0), nodes */
} sc_htable_t;

/** Does node hold key? (the caller's comparison, given the key it passed to find) */
typedef int (*sc_hnode_eq_fn)(const sc_hnode_t *node, const void *key);

#define SC_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/** FNV-1a over n bytes: the hash callers give with their keys. */
uint32_t sc_hash_bytes(const void *p, size_t n);
/** Link node under hash; the table does not own it (a key already there is not checked). */
void sc_htable_insert(sc_htable_t *t, sc_hnode_t *node, uint32_t hash);
/** The first node under hash for which eq(node, key) holds, or NULL. */
sc_hnode_t *sc_htable_find(const sc_htable_t *t, uint32_t hash, sc_hnode_eq_fn eq, const void *key);
/** Unlink node (by identity). 1 if it was in the table, else 0. */
int sc_htable_remove(sc_htable_t *t, sc_hnode_t *node);
/** Call fn on every node (fn must not insert or remove). */
void sc_htable_each(const sc_htable_t *t, void (*fn)(sc_hnode_t *node, void *arg), void *arg);
/** Free the buckets (not the nodes: they are the caller's); the table is empty again. */
void sc_htable_clear(sc_htable_t *t);

#endif
