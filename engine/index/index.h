/*
 * index.h - the handle index floor: the virtual object handles of each
 * virtual token (handles.c: lookups and changes; learn.c: teaching it the
 * catalog's handles and the backend objects a search meets; entries.c,
 * behind the folder's private entries.h: how entries are kept). Uses the
 * backend floor (backend/backend.h) and core/ only; resolving a handle
 * for a view, which may run a search, is the view floor's (view/resolve.c).
 *
 * Locks: H (the index lock) guards the index's tables and is held only
 * for memory work inside this floor; the learn lock serialises teaching
 * the index new objects (backend reads and the catalog write happen under
 * it, never under H). Callers hold neither; the functions say whether
 * they expect S.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_INDEX_H
#define STRATA_ENGINE_INDEX_H

#include "backend/backend.h"

/* Session objects' virtual handles start here; token objects' handles come
 * from the catalog and stay below. */
#define HANDLES_SESSION_BASE ((CK_OBJECT_HANDLE)0x80000000UL)
#define HANDLES_IDENTITY_LEN 32
#define HANDLES_SHADOW_LEN   16 /* a shadow identity: 128 bits say "the same" well enough */

typedef struct engine_handles engine_handles;

CK_RV handles_new(engine_handles **out);
void handles_free(engine_handles *index);

/* One virtual object as a call uses it. */
typedef struct {
    CK_OBJECT_HANDLE handle; /* virtual */
    engine_layer *layer;
    size_t layer_index;       /* into token->layers */
    CK_OBJECT_HANDLE backend; /* the layer backend's handle */
    bool token_object;
    unsigned char identity[HANDLES_IDENTITY_LEN];
} object_ref;

/* What handles_lookup found. */
typedef enum {
    HANDLES_MISSING, /* no such handle known */
    HANDLES_UNMET,   /* known to the catalog, not met (or stale) in this process */
    HANDLES_FOUND,
} handles_lookup_result;

/* Loads the index's token-object handles from the catalog, once, when
 * handle may be a token object's (below HANDLES_SESSION_BASE) and the
 * index is not primed yet (again at the next call when loading failed).
 * Takes the learn lock; reads the catalog. Expects S. */
void handles_prime(engine_token *token, CK_OBJECT_HANDLE handle);
/* Looks handle up for token->views[view]. On HANDLES_FOUND, and on
 * HANDLES_UNMET for an entry met once (in an older backend generation),
 * fills ref (but its layer_index) and *hidden; ref is left alone
 * otherwise. Takes H only: no backend, no catalog. Expects S. */
handles_lookup_result handles_lookup(engine_token *token, CK_OBJECT_HANDLE handle, size_t view,
                                     object_ref *ref, bool *hidden);

/* What the index knows of one backend object after handles_learn. */
typedef struct {
    CK_OBJECT_HANDLE handle; /* virtual; CK_INVALID_HANDLE when unreadable */
    bool token_object;
    unsigned char identity[HANDLES_IDENTITY_LEN];
    unsigned char shadow[HANDLES_SHADOW_LEN];
} handle_info;

/* More attributes for handles_learn to read in the same backend call as
 * an object's identity: fn gets them (attrs[0..n), the types in order,
 * values as backend_attrs gives them) once the object has its handle. */
typedef struct {
    const CK_ATTRIBUTE_TYPE *types;
    size_t n;
    void (*fn)(void *ctx, CK_OBJECT_HANDLE backend, const handle_info *info,
               const CK_ATTRIBUTE *attrs);
    void *ctx;
} handles_extra;

/* Gives each backend object of layer its virtual handle, learning the
 * ones not seen before (their identity attributes are read from the
 * backend, token objects get their stable handle from the catalog).
 * shadow/n_shadow: the identity attributes for shadowing. owner: the
 * virtual session that created them (session objects die with it), or 0.
 * extra: NULL, or attributes to read along for the objects learned now.
 * Caller holds S. */
CK_RV handles_learn(engine_session *s, size_t layer, const CK_OBJECT_HANDLE *backend, size_t n,
                    const CK_ATTRIBUTE_TYPE *shadow, size_t n_shadow, CK_SESSION_HANDLE owner,
                    const handles_extra *extra, handle_info *out);

/* Marks handle hidden (or visible) in token->views[view]. */
void handles_set_hidden(engine_token *token, CK_OBJECT_HANDLE handle, size_t view, bool hidden);
/* Makes the next search re-read the object's shadow identity (after a
 * C_SetAttributeValue that may change it). */
void handles_touch(engine_token *token, CK_OBJECT_HANDLE handle);
/* After C_SetAttributeValue(templ) through Strata on ref's object: a
 * token object whose identifying attributes changed keeps its handle (its
 * identity moves in the catalog and the index). Caller holds S. */
void handles_reidentify(engine_session *s, const object_ref *ref, const CK_ATTRIBUTE *templ,
                        CK_ULONG count);
/* Forgets a destroyed object. */
void handles_forget(engine_token *token, CK_OBJECT_HANDLE handle);
/* Forgets the session objects created through session. */
void handles_drop_session(engine_token *token, CK_SESSION_HANDLE session);

/* Forgets the backend handles of token's token objects (keeping their
 * virtual handles and identities): after a login or logout a backend may
 * number its private objects anew (SoftHSM2 does), so each re-resolves by
 * identity on its next use. Takes the learn lock and H; expects no H. */
void handles_unbind(engine_token *token);

#endif /* STRATA_ENGINE_INDEX_H */
