/*
 * table.c - hash tables: an intrusive chained one keyed by a 64-bit hash
 * (table_*), and an open-addressing one of 32-bit ids (idtable_*).
 *
 * table: callers embed a table_node in their records and compare the full
 * key themselves (several nodes may share one hash). idtable: see core.h.
 * No locking: the owner of a table says which lock guards it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define TABLE_FIRST_BUCKETS 64

static size_t bucket_of(const table *t, uint64_t hash)
{
    return (size_t)(hash & (t->n_buckets - 1));
}

/* Doubles the bucket array; on allocation failure keeps the old one. */
static void grow(table *t)
{
    size_t n = t->n_buckets * 2, i;
    table_node **b = calloc(n, sizeof(*b));

    if (b == NULL) {
        return;
    }
    for (i = 0; i < t->n_buckets; i++) {
        table_node *node = t->buckets[i];
        while (node != NULL) {
            table_node *next = node->next;
            size_t j = (size_t)(node->hash & (n - 1));
            node->next = b[j];
            b[j] = node;
            node = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
}

CK_RV table_insert(table *t, table_node *node, uint64_t hash)
{
    size_t i;

    if (t->buckets == NULL) {
        t->buckets = calloc(TABLE_FIRST_BUCKETS, sizeof(*t->buckets));
        if (t->buckets == NULL) {
            return CKR_HOST_MEMORY;
        }
        t->n_buckets = TABLE_FIRST_BUCKETS;
    }
    if (t->count >= t->n_buckets * 2) {
        grow(t);
    }
    node->hash = hash;
    i = bucket_of(t, hash);
    node->next = t->buckets[i];
    t->buckets[i] = node;
    t->count++;
    return CKR_OK;
}

void table_remove(table *t, table_node *node)
{
    table_node **p;

    if (t->buckets == NULL) {
        return;
    }
    for (p = &t->buckets[bucket_of(t, node->hash)]; *p != NULL; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            t->count--;
            return;
        }
    }
}

table_node *table_first(const table *t, uint64_t hash)
{
    table_node *node;

    if (t->buckets == NULL) {
        return NULL;
    }
    for (node = t->buckets[bucket_of(t, hash)]; node != NULL; node = node->next) {
        if (node->hash == hash) {
            return node;
        }
    }
    return NULL;
}

table_node *table_next(const table_node *node)
{
    uint64_t hash = node->hash;

    for (node = node->next; node != NULL; node = node->next) {
        if (node->hash == hash) {
            return (table_node *)node;
        }
    }
    return NULL;
}

table_node *table_walk(const table *t, size_t *cursor, table_node *prev)
{
    if (prev != NULL && prev->next != NULL) {
        return prev->next;
    }
    if (prev != NULL) {
        (*cursor)++;
    }
    for (; t->buckets != NULL && *cursor < t->n_buckets; (*cursor)++) {
        if (t->buckets[*cursor] != NULL) {
            return t->buckets[*cursor];
        }
    }
    return NULL;
}

void table_clear(table *t)
{
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------------
 * idtable
 * ------------------------------------------------------------------ */

#define IDTABLE_FIRST_SLOTS 64

/* Puts id in the first empty slot of its probe sequence. Expects room. */
static void id_place(uint32_t *slots, size_t mask, uint32_t id, uint64_t hash)
{
    size_t i = (size_t)hash & mask;

    while (slots[i] != 0) {
        i = (i + 1) & mask;
    }
    slots[i] = id;
}

/* Rehashes into twice the slots (or the first ones). CKR_HOST_MEMORY
 * leaves the table as it was. */
static CK_RV id_grow(idtable *t, idtable_hash_fn rehash, const void *owner)
{
    size_t cap = t->slots == NULL ? IDTABLE_FIRST_SLOTS : (t->mask + 1) * 2;
    uint32_t *slots;

    if (cap > SIZE_MAX / sizeof(*slots) || (slots = calloc(cap, sizeof(*slots))) == NULL) {
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; t->slots != NULL && i <= t->mask; i++) {
        if (t->slots[i] != 0) {
            id_place(slots, cap - 1, t->slots[i], rehash(owner, t->slots[i]));
        }
    }
    free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
    return CKR_OK;
}

CK_RV idtable_add(idtable *t, uint32_t id, uint64_t hash, idtable_hash_fn rehash, const void *owner)
{
    if (t->slots == NULL || (t->count + 1) * 4 > (t->mask + 1) * 3) {
        CK_RV rv = id_grow(t, rehash, owner);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    id_place(t->slots, t->mask, id, hash);
    t->count++;
    return CKR_OK;
}

/* Whether home, the slot a key hashes to, lies cyclically in (gap, at]:
 * then the entry at `at` must stay where it is when `gap` empties. */
static bool id_stays(size_t home, size_t gap, size_t at)
{
    if (gap <= at) {
        return gap < home && home <= at;
    }
    return gap < home || home <= at;
}

/* Backward-shift removal: later entries of the run move up into the gap,
 * so probe sequences never meet a hole before their key. */
void idtable_remove(idtable *t, uint32_t id, uint64_t hash, idtable_hash_fn rehash,
                    const void *owner)
{
    size_t gap, at;

    if (t->slots == NULL) {
        return;
    }
    for (gap = (size_t)hash & t->mask; t->slots[gap] != id; gap = (gap + 1) & t->mask) {
        if (t->slots[gap] == 0) {
            return;
        }
    }
    for (at = (gap + 1) & t->mask; t->slots[at] != 0; at = (at + 1) & t->mask) {
        size_t home = (size_t)rehash(owner, t->slots[at]) & t->mask;
        if (!id_stays(home, gap, at)) {
            t->slots[gap] = t->slots[at];
            gap = at;
        }
    }
    t->slots[gap] = 0;
    t->count--;
}

size_t idtable_begin(const idtable *t, uint64_t hash)
{
    return (size_t)hash & t->mask;
}

uint32_t idtable_next(const idtable *t, size_t *cursor)
{
    uint32_t id;

    if (t->slots == NULL) {
        return 0;
    }
    id = t->slots[*cursor];
    *cursor = (*cursor + 1) & t->mask;
    return id;
}

void idtable_clear(idtable *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* FNV-1a, then a final mix so that low bits (the bucket) depend on all. */
uint64_t table_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return table_hash_u64(h, 0);
}

/* splitmix64 over a ^ rotated b. */
uint64_t table_hash_u64(uint64_t a, uint64_t b)
{
    uint64_t z = a ^ ((b << 29) | (b >> 35)) ^ (b * 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
