/*
 * table.c - an intrusive chained hash table keyed by a 64-bit hash.
 *
 * Callers embed a table_node in their records and compare the full key
 * themselves (several nodes may share one hash). No locking: the owner of
 * the table says which lock guards it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "stack.h"

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
