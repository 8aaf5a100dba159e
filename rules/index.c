/*
 * index.c - lookup tables of the policy: names to positions.
 *
 * A policy may hold tens of thousands of views, and the loader and the
 * engine look elements up by id once per view or per layer of a view. A
 * rules_index maps each name of an array (module ids, layer ids, token
 * labels, the views of a token, the words of one layer list) to the
 * position of the element that bears it: entries sorted by name, then by
 * position, searched by bisection. A name borne by several elements (a
 * duplicate id, reported by semantics.c) finds the first of them, as the
 * linear scans it replaces did. Names are borrowed from the model, which
 * outlives its tables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

typedef struct {
    const char *name; /* borrowed from the indexed element */
    size_t pos;       /* position of the element in its array */
} index_entry;

struct rules_index {
    index_entry *entries; /* sorted by name, then pos, once sorted */
    size_t n;
    size_t cap; /* entries allocated */
};

/* An empty table with room for cap entries, or NULL on OOM. */
rules_index *loader_index_new(size_t cap)
{
    rules_index *ix = calloc(1, sizeof(*ix));

    if (ix == NULL) {
        return NULL;
    }
    ix->entries = calloc(cap + 1, sizeof(index_entry));
    if (ix->entries == NULL) {
        free(ix);
        return NULL;
    }
    ix->cap = cap;
    return ix;
}

void loader_index_free(rules_index *ix)
{
    if (ix != NULL) {
        free(ix->entries);
        free(ix);
    }
}

/* Empties ix, keeping its room. */
void loader_index_clear(rules_index *ix)
{
    ix->n = 0;
}

/* Adds name at pos. A NULL name is not added; neither is an entry beyond
 * the room the table was made with (callers size it for every entry). */
void loader_index_add(rules_index *ix, const char *name, size_t pos)
{
    if (name != NULL && ix->n < ix->cap) {
        ix->entries[ix->n++] = (index_entry){.name = name, .pos = pos};
    }
}

static int compare_entries(const void *a, const void *b)
{
    const index_entry *x = a;
    const index_entry *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0) {
        return c;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorts the entries added so far; lookups need it. */
void loader_index_sort(rules_index *ix)
{
    qsort(ix->entries, ix->n, sizeof(index_entry), compare_entries);
}

/* Returns true with *pos the smallest position bearing name, or false
 * when no entry has that name (or ix or name is NULL). */
bool loader_index_find(const rules_index *ix, const char *name, size_t *pos)
{
    size_t lo = 0;
    size_t hi = 0;

    if (ix == NULL || name == NULL) {
        return false;
    }
    /* The first entry whose name is not below name. */
    for (hi = ix->n; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->entries[mid].name, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == ix->n || strcmp(ix->entries[lo].name, name) != 0) {
        return false;
    }
    *pos = ix->entries[lo].pos;
    return true;
}

/* The name of element i of an array of elements of stride bytes whose
 * name (a char *) is at offset. */
static const char *name_at(const void *array, size_t stride, size_t offset, size_t i)
{
    const char *element = (const char *)array + i * stride;
    const char *name;

    memcpy(&name, element + offset, sizeof(name));
    return name;
}

/* A sorted table of the n elements of array (see name_at), or NULL on
 * OOM. */
rules_index *loader_index_build(const void *array, size_t n, size_t stride, size_t offset)
{
    rules_index *ix = loader_index_new(n);

    for (size_t i = 0; ix != NULL && i < n; i++) {
        loader_index_add(ix, name_at(array, stride, offset, i), i);
    }
    if (ix != NULL) {
        loader_index_sort(ix);
    }
    return ix;
}

/* The position of the first element of array (see name_at) named name:
 * through ix when there is one, else by a scan (a policy not made by the
 * loader). Returns n when there is none or name is NULL. */
size_t loader_index_lookup(const rules_index *ix, const void *array, size_t n, size_t stride,
                           size_t offset, const char *name)
{
    size_t pos = n;

    if (name == NULL) {
        return n;
    }
    if (ix != NULL) {
        return loader_index_find(ix, name, &pos) ? pos : n;
    }
    for (size_t i = 0; i < n; i++) {
        const char *other = name_at(array, stride, offset, i);
        if (other != NULL && strcmp(other, name) == 0) {
            return i;
        }
    }
    return n;
}

/* Builds the policy's tables: modules and layers by id, tokens by label,
 * and each token's views by id. Returns 0, or -1 on OOM (the tables made
 * so far stay, for rules_policy_free). */
int loader_index_policy(rules_policy *policy)
{
    policy->modules_by_id = loader_index_build(policy->modules, policy->n_modules,
                                               sizeof(rules_module), offsetof(rules_module, id));
    policy->layers_by_id = loader_index_build(policy->layers, policy->n_layers, sizeof(rules_layer),
                                              offsetof(rules_layer, id));
    policy->tokens_by_label = loader_index_build(policy->tokens, policy->n_tokens,
                                                 sizeof(rules_token), offsetof(rules_token, label));
    if (policy->modules_by_id == NULL || policy->layers_by_id == NULL ||
        policy->tokens_by_label == NULL) {
        return -1;
    }
    for (size_t t = 0; t < policy->n_tokens; t++) {
        rules_token *token = &policy->tokens[t];
        token->views_by_id = loader_index_build(token->views, token->n_views, sizeof(rules_view),
                                                offsetof(rules_view, id));
        if (token->views_by_id == NULL) {
            return -1;
        }
    }
    return 0;
}
