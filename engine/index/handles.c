/*
 * handles.c - the virtual object handle index of one virtual token:
 * lookups (the hot path) and the changes calls make. How entries are kept
 * is entries.c's; how the index learns objects, learn.c's.
 *
 * Every object an application sees has a virtual handle, unique across
 * the token's layers even when backends' handles collide. A token object
 * has an identity: a BLAKE2b digest of its layer (id and expanded token
 * label) and its identifying attributes (class, CKA_ID, CKA_LABEL, key
 * type, certificate type, serial number, issuer), with an ordinal
 * appended so that duplicates inside one layer differ (the first one met
 * gets 0, the next 1, ...). The catalog maps identities to stable handles
 * (1 upwards), so a token object keeps its handle across processes.
 * Session objects get handles from HANDLES_SESSION_BASE upwards, never
 * reused in the process, and die with the session that made them.
 *
 * The index lives in memory: by virtual handle (the hot path of C_Sign and
 * C_GetAttributeValue: one lookup, no SQL), by (layer, backend handle) and
 * by identity. It is primed once from the catalog (storage_objects_load);
 * an entry learns its backend handle when a search meets the object. A
 * backend handle belongs to one generation of its module; after a cycle
 * the entry is re-resolved by identity on the next search. Whether an
 * entry is hidden in a view (whiteout, shadowing, rules, as the view's
 * last search or change judged it) is a bit of the entry for the first 64
 * views, and a pair in a set kept only for hidden pairs for the others.
 *
 * Locks: H (index) guards the three tables and is held only for memory
 * work; the learn lock serialises teaching the index new objects (backend
 * reads and the catalog write happen under it, never under H).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "entries.h"

/* ---------------------------------------------------------------------
 * Resolving a virtual handle (the hot path)
 * ------------------------------------------------------------------ */

/* See index.h. Copies what ref needs from the entry of handle. Takes H. */
handles_lookup_result handles_lookup(engine_token *token, CK_OBJECT_HANDLE handle, size_t view,
                                     object_ref *ref, bool *hidden)
{
    engine_handles *index = token->handles;
    handles_lookup_result result = HANDLES_MISSING;
    uint32_t n;

    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0) {
        const handle_entry *e = entry_at(index, n);
        result = HANDLES_UNMET;
        if (e->layer != 0 && (e->flags & ENTRY_IN_BACKEND)) {
            ref->handle = handle;
            ref->layer = entry_layer(token, e);
            ref->backend = e->backend;
            ref->token_object = (e->flags & ENTRY_TOKEN) != 0;
            memcpy(ref->identity, e->identity, HANDLES_IDENTITY_LEN);
            *hidden = entry_hidden(index, e, n, view);
            result =
                e->generation == backend_generation(ref->layer) ? HANDLES_FOUND : HANDLES_UNMET;
        }
    }
    engine_mutex_unlock(index->lock);
    return result;
}

/* ---------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------ */

void handles_set_hidden(engine_token *token, CK_OBJECT_HANDLE handle, size_t view, bool hidden)
{
    engine_handles *index = token->handles;
    uint32_t n;

    if (index == NULL || view > UINT32_MAX) {
        return;
    }
    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0 && view >= MASK_VIEWS) {
        far_set(index, n, (uint32_t)view, hidden);
    } else if (n != 0) {
        handle_entry *e = entry_at(index, n);
        if (hidden) {
            e->hidden |= (uint64_t)1 << view;
        } else {
            e->hidden &= ~((uint64_t)1 << view);
        }
    }
    engine_mutex_unlock(index->lock);
}

/* Forgets a destroyed object, and its identity in the catalog (a new
 * object with the same identity later gets a new handle). */
void handles_forget(engine_token *token, CK_OBJECT_HANDLE handle)
{
    engine_handles *index = token->handles;
    unsigned char identity[HANDLES_IDENTITY_LEN];
    const engine_layer *layer = NULL;
    uint32_t n;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->learn_lock);
    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0) {
        const handle_entry *e = entry_at(index, n);
        if ((e->flags & ENTRY_TOKEN) && e->handle < HANDLES_SESSION_BASE) {
            layer = entry_layer(token, e);
            memcpy(identity, e->identity, sizeof(identity));
        }
        drop(index, n);
    }
    engine_mutex_unlock(index->lock);
    if (layer != NULL && engine_lib.catalog != NULL) {
        storage_object_forget(engine_lib.catalog, token->def->label, layer->def->id, identity,
                              sizeof(identity));
    }
    engine_mutex_unlock(index->learn_lock);
}

/* Calls fn on every entry in use. Expects H. */
static void each_entry(engine_handles *index, void (*fn)(engine_handles *, uint32_t, const void *),
                       const void *arg)
{
    for (uint32_t n = 1; n <= index->n_entries; n++) {
        if (entry_at(index, n)->flags & ENTRY_USED) {
            fn(index, n, arg);
        }
    }
}

static void drop_if_owned(engine_handles *index, uint32_t n, const void *arg)
{
    const handle_entry *e = entry_at(index, n);

    if (!(e->flags & ENTRY_TOKEN) && e->owner == *(const CK_SESSION_HANDLE *)arg) {
        drop(index, n);
    }
}

/* Forgets the session objects made through session (they died with its
 * backend sessions). Walks the index: session closes are rare. */
void handles_drop_session(engine_token *token, CK_SESSION_HANDLE session)
{
    engine_handles *index = token->handles;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->lock);
    each_entry(index, drop_if_owned, &session);
    engine_mutex_unlock(index->lock);
}

void handles_touch(engine_token *token, CK_OBJECT_HANDLE handle)
{
    engine_handles *index = token->handles;
    uint32_t n;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0) {
        entry_at(index, n)->shadow_types = NULL;
    }
    engine_mutex_unlock(index->lock);
}

static void unbind_token(engine_handles *index, uint32_t n, const void *arg)
{
    (void)arg;
    if (entry_at(index, n)->flags & ENTRY_TOKEN) {
        unbind(index, n);
    }
}

/* See index.h. Takes the learn lock, then H. */
void handles_unbind(engine_token *token)
{
    engine_handles *index = token->handles;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->learn_lock);
    engine_mutex_lock(index->lock);
    each_entry(index, unbind_token, NULL);
    engine_mutex_unlock(index->lock);
    engine_mutex_unlock(index->learn_lock);
}
