/*
 * entries.c - how the handle index keeps its entries (handles.c's file
 * comment says what an entry is): in chunks that never move, found by
 * virtual handle, by (layer, backend handle) and by identity through
 * three idtables, with the hidden flags of views beyond the first 64 in a
 * set of (entry, view) pairs. Memory work only: all expect H but
 * handles_new and handles_free.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "entries.h"

CK_RV handles_new(engine_handles **out)
{
    engine_handles *index = calloc(1, sizeof(*index));
    CK_RV rv = CKR_HOST_MEMORY;

    if (index == NULL) {
        goto out;
    }
    rv = engine_mutex_new(&index->lock);
    if (rv == CKR_OK) {
        rv = engine_mutex_new(&index->learn_lock);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    *out = index;
    index = NULL;
out:
    handles_free(index);
    return rv;
}

void handles_free(engine_handles *index)
{
    if (index == NULL) {
        return;
    }
    for (size_t i = 0; i < index->n_chunks; i++) {
        free(index->chunks[i]);
    }
    free(index->chunks);
    idtable_clear(&index->by_handle);
    idtable_clear(&index->by_backend);
    idtable_clear(&index->by_identity);
    idtable_clear(&index->far_hidden);
    free(index->pairs);
    if (index->lock != NULL) {
        engine_mutex_free(index->lock);
    }
    if (index->learn_lock != NULL) {
        engine_mutex_free(index->learn_lock);
    }
    free(index);
}

/* ---------------------------------------------------------------------
 * Entries and table keys (all expect H)
 * ------------------------------------------------------------------ */

handle_entry *entry_at(const engine_handles *index, uint32_t n)
{
    return &index->chunks[(n - 1) >> CHUNK_SHIFT][(n - 1) & (CHUNK_ENTRIES - 1)];
}

/* The number of a zeroed entry in use, reusing a dropped one first; 0
 * when memory (or the numbering) ran out. */
uint32_t entry_new(engine_handles *index)
{
    uint32_t n = index->free_first;

    if (n != 0) {
        index->free_first = (uint32_t)entry_at(index, n)->backend;
    } else {
        if (index->n_entries == MAX_ENTRIES) {
            return 0;
        }
        if ((index->n_entries & (CHUNK_ENTRIES - 1)) == 0) {
            handle_entry **chunks = realloc(index->chunks, (index->n_chunks + 1) * sizeof(*chunks));
            if (chunks == NULL) {
                return 0;
            }
            index->chunks = chunks;
            chunks[index->n_chunks] = malloc(CHUNK_ENTRIES * sizeof(handle_entry));
            if (chunks[index->n_chunks] == NULL) {
                return 0;
            }
            index->n_chunks++;
        }
        n = ++index->n_entries;
    }
    memset(entry_at(index, n), 0, sizeof(handle_entry));
    entry_at(index, n)->flags = ENTRY_USED;
    return n;
}

engine_layer *entry_layer(const engine_token *token, const handle_entry *e)
{
    return e->layer == 0 ? NULL : &token->layers[e->layer - 1];
}

static uint64_t handle_key(CK_OBJECT_HANDLE handle)
{
    return table_hash_u64(handle, 1);
}

static uint64_t backend_key(uint16_t layer, CK_OBJECT_HANDLE backend)
{
    return table_hash_u64(layer, backend);
}

uint64_t identity_key(const unsigned char *identity)
{
    uint64_t k;

    memcpy(&k, identity, sizeof(k)); /* already a digest */
    return k;
}

static uint64_t rehash_handle(const void *owner, uint32_t n)
{
    return handle_key(entry_at(owner, n)->handle);
}

static uint64_t rehash_backend(const void *owner, uint32_t n)
{
    const handle_entry *e = entry_at(owner, n);

    return backend_key(e->layer, e->backend);
}

uint64_t rehash_identity(const void *owner, uint32_t n)
{
    return identity_key(entry_at(owner, n)->identity);
}

/* The number of the entry of handle, or 0. */
uint32_t by_handle(const engine_handles *index, CK_OBJECT_HANDLE handle)
{
    size_t c = idtable_begin(&index->by_handle, handle_key(handle));
    uint32_t n;

    while ((n = idtable_next(&index->by_handle, &c)) != 0 && entry_at(index, n)->handle != handle) {
    }
    return n;
}

/* The number of the entry of (layer, backend), or 0. */
uint32_t by_backend(const engine_handles *index, uint16_t layer, CK_OBJECT_HANDLE backend)
{
    size_t c = idtable_begin(&index->by_backend, backend_key(layer, backend));
    uint32_t n;

    while ((n = idtable_next(&index->by_backend, &c)) != 0) {
        const handle_entry *e = entry_at(index, n);
        if (e->layer == layer && e->backend == backend) {
            break;
        }
    }
    return n;
}

/* The number of the entry of identity, or 0. */
uint32_t by_identity(const engine_handles *index, const unsigned char *identity)
{
    size_t c = idtable_begin(&index->by_identity, identity_key(identity));
    uint32_t n;

    while ((n = idtable_next(&index->by_identity, &c)) != 0 &&
           memcmp(entry_at(index, n)->identity, identity, HANDLES_IDENTITY_LEN) != 0) {
    }
    return n;
}

/* A random session-range handle no entry holds: [HANDLES_SESSION_BASE,
 * 0xffffffff], so that it says nothing of other sessions' objects.
 * Expects H. */
CK_OBJECT_HANDLE session_handle_new(const engine_handles *index)
{
    CK_OBJECT_HANDLE h;

    do {
        h = HANDLES_SESSION_BASE + (CK_OBJECT_HANDLE)randombytes_uniform(0x80000000U);
    } while (by_handle(index, h) != 0);
    return h;
}

CK_RV add_handle(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);
    CK_RV rv = idtable_add(&index->by_handle, n, handle_key(e->handle), rehash_handle, index);

    e->flags |= rv == CKR_OK ? ENTRY_IN_HANDLE : 0;
    return rv;
}

CK_RV add_backend(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);
    CK_RV rv = idtable_add(&index->by_backend, n, backend_key(e->layer, e->backend), rehash_backend,
                           index);

    e->flags |= rv == CKR_OK ? ENTRY_IN_BACKEND : 0;
    return rv;
}

CK_RV add_identity(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);
    CK_RV rv =
        idtable_add(&index->by_identity, n, identity_key(e->identity), rehash_identity, index);

    e->flags |= rv == CKR_OK ? ENTRY_IN_IDENTITY : 0;
    return rv;
}

/* Takes entry n out of by_backend (its backend handle is stale). */
void unbind(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);

    if (e->flags & ENTRY_IN_BACKEND) {
        idtable_remove(&index->by_backend, n, backend_key(e->layer, e->backend), rehash_backend,
                       index);
        e->flags &= (uint8_t)~ENTRY_IN_BACKEND;
    }
}

/* ---------------------------------------------------------------------
 * Hidden flags of views from MASK_VIEWS on (all expect H)
 * ------------------------------------------------------------------ */

static uint64_t pair_key(uint32_t entry, uint32_t view)
{
    return table_hash_u64(entry, ((uint64_t)view << 1) | 1);
}

static uint64_t rehash_pair(const void *owner, uint32_t p)
{
    const hidden_pair *pair = &((const engine_handles *)owner)->pairs[p - 1];

    return pair_key(pair->entry, pair->view);
}

/* The number of the pair (entry n, view), or 0. */
static uint32_t pair_find(const engine_handles *index, uint32_t n, uint32_t view)
{
    size_t c = idtable_begin(&index->far_hidden, pair_key(n, view));
    uint32_t p;

    while ((p = idtable_next(&index->far_hidden, &c)) != 0) {
        const hidden_pair *pair = &index->pairs[p - 1];
        if (pair->entry == n && pair->view == view) {
            break;
        }
    }
    return p;
}

/* A free pair record numbered *p, set to (n, view). CKR_HOST_MEMORY when
 * the records cannot grow. */
static CK_RV pair_new(engine_handles *index, uint32_t n, uint32_t view, uint32_t *p)
{
    if (index->free_pair != 0) {
        *p = index->free_pair;
        index->free_pair = index->pairs[*p - 1].view;
    } else {
        if (index->n_pairs == index->cap_pairs) {
            uint32_t cap = index->cap_pairs == 0 ? 64 : index->cap_pairs * 2;
            hidden_pair *bigger;
            if (cap <= index->cap_pairs ||
                (bigger = realloc(index->pairs, (size_t)cap * sizeof(*bigger))) == NULL) {
                return CKR_HOST_MEMORY;
            }
            index->pairs = bigger;
            index->cap_pairs = cap;
        }
        *p = ++index->n_pairs;
    }
    index->pairs[*p - 1].entry = n;
    index->pairs[*p - 1].view = view;
    return CKR_OK;
}

static void pair_free(engine_handles *index, uint32_t p)
{
    hidden_pair *pair = &index->pairs[p - 1];

    idtable_remove(&index->far_hidden, p, pair_key(pair->entry, pair->view), rehash_pair, index);
    pair->entry = 0;
    pair->view = index->free_pair;
    index->free_pair = p;
}

/* Marks entry n hidden or visible in view (>= MASK_VIEWS). A pair that
 * cannot be recorded (no memory) leaves the entry hidden in every far
 * view for the rest of the process: failing closed. */
void far_set(engine_handles *index, uint32_t n, uint32_t view, bool hidden)
{
    handle_entry *e = entry_at(index, n);
    uint32_t p = (e->flags & ENTRY_FAR_HIDDEN) ? pair_find(index, n, view) : 0;

    if (!hidden && p != 0) {
        pair_free(index, p);
    } else if (hidden && p == 0) {
        e->flags |= ENTRY_FAR_HIDDEN;
        if (pair_new(index, n, view, &p) != CKR_OK) {
            e->flags |= ENTRY_FAR_ALL;
        } else if (idtable_add(&index->far_hidden, p, pair_key(n, view), rehash_pair, index) !=
                   CKR_OK) {
            index->pairs[p - 1].view = index->free_pair;
            index->pairs[p - 1].entry = 0;
            index->free_pair = p;
            e->flags |= ENTRY_FAR_ALL;
        }
    }
}

/* Whether entry e (number n) is hidden in view. */
bool entry_hidden(const engine_handles *index, const handle_entry *e, uint32_t n, size_t view)
{
    if (view < MASK_VIEWS) {
        return (e->hidden & ((uint64_t)1 << view)) != 0;
    }
    if (e->flags & ENTRY_FAR_ALL) {
        return true; /* see far_set */
    }
    return (e->flags & ENTRY_FAR_HIDDEN) && pair_find(index, n, (uint32_t)view) != 0;
}

/* Forgets every far pair of entry n (it is being dropped). Walks the
 * records: drops of entries hidden in far views are rare. */
static void far_forget(engine_handles *index, uint32_t n)
{
    for (uint32_t p = 1; p <= index->n_pairs; p++) {
        if (index->pairs[p - 1].entry == n) {
            pair_free(index, p);
        }
    }
}

/* Takes entry n out of every table and puts it on the free list. */
void drop(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);

    if (e->flags & ENTRY_FAR_HIDDEN) {
        far_forget(index, n);
    }
    if (e->flags & ENTRY_IN_HANDLE) {
        idtable_remove(&index->by_handle, n, handle_key(e->handle), rehash_handle, index);
    }
    unbind(index, n);
    if (e->flags & ENTRY_IN_IDENTITY) {
        idtable_remove(&index->by_identity, n, identity_key(e->identity), rehash_identity, index);
    }
    memset(e, 0, sizeof(*e));
    e->backend = index->free_first;
    index->free_first = n;
}
