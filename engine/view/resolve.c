/*
 * resolve.c - a virtual handle as a call on the view may use it: the
 * handle index's entry (index/handles.c), found again by one search of
 * the view (find.c) when the catalog knows the handle but this process
 * has not met its object, then the view's rules (verdict.c). The path of
 * every call on an object (C_Sign's C_SignInit, C_GetAttributeValue):
 * one index lookup, and one verdict lookup for a view with rules.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include "view.h"

/* Runs a search over the whole view once per login epoch and per module
 * cycle, so that handles the catalog knows, but this process has not met
 * (or met in a backend generation a reconnect ended), find their objects
 * again by identity. The stamp folds the process's cycle count into the
 * high half of the epoch (the epoch counts logins: it never gets there). */
static void scan_once(engine_session *s, const session_view_state *st)
{
    CK_OBJECT_HANDLE *found = NULL;
    unsigned long stamp = st->epoch ^ ((unsigned long)reconnect_count() << 32);
    size_t n = 0;

    if (s->scanned_view == st->view && s->scanned_epoch == stamp) {
        return;
    }
    s->scanned_view = st->view;
    s->scanned_epoch = stamp;
    if (find_collect(s, st, NULL, 0, &found, &n) == CKR_OK) {
        free(found);
    }
}

/* Whether a backend session of s on layer opens: a handle met before a
 * reconnect that a search could not meet again may live on a layer whose
 * backend is down. Returns CKR_OK, or the code a call on the handle
 * reports meanwhile (CKR_HOST_MEMORY, CKR_DEVICE_MEMORY or
 * CKR_DEVICE_ERROR). Expects S. */
static CK_RV layer_reachable(engine_session *s, const engine_layer *layer)
{
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv = backend_session(s, backend_layer_index(s->token, layer), &fl, &h);

    if (rv == CKR_OK || rv == CKR_HOST_MEMORY || rv == CKR_DEVICE_MEMORY) {
        return rv;
    }
    return CKR_DEVICE_ERROR;
}

/*
 * Translates handle for the view of st. Returns CKR_OK with *ref;
 * CKR_OBJECT_HANDLE_INVALID for every kind of absence alike; or, for a
 * handle whose object was met on a layer of the view whose backend is
 * down now (after a reconnect), the code of layer_reachable. May run one
 * search of the view (backend calls) when the catalog knows the handle
 * but this process has not met its object yet. Expects S.
 */
static CK_RV resolve_handle(engine_session *s, const session_view_state *st,
                            CK_OBJECT_HANDLE handle, object_ref *ref)
{
    engine_token *token = s->token;
    size_t view;
    bool hidden = false;
    handles_lookup_result r;

    if (handle == CK_INVALID_HANDLE || st->view == NULL || token->handles == NULL) {
        return CKR_OBJECT_HANDLE_INVALID;
    }
    view = (size_t)(st->view - token->views);
    ref->layer = NULL;
    handles_prime(token, handle);
    r = handles_lookup(token, handle, view, ref, &hidden);
    if (r == HANDLES_UNMET) {
        scan_once(s, st);
        r = handles_lookup(token, handle, view, ref, &hidden);
    }
    if (r == HANDLES_UNMET && ref->layer != NULL && !hidden &&
        backend_view_has(st->view, ref->layer) && backend_layer_usable(ref->layer)) {
        CK_RV rv = layer_reachable(s, ref->layer);
        if (rv != CKR_OK) {
            return rv; /* not gone: out of reach for now */
        }
    }
    if (r != HANDLES_FOUND || hidden || !backend_view_has(st->view, ref->layer) ||
        !backend_layer_usable(ref->layer)) {
        return CKR_OBJECT_HANDLE_INVALID;
    }
    ref->layer_index = backend_layer_index(token, ref->layer);
    return CKR_OK;
}

/* See view.h. Expects S. */
CK_RV verdict_resolve(engine_session *s, const session_view_state *st, CK_OBJECT_HANDLE handle,
                      object_ref *ref)
{
    const object_rules *r;
    CK_RV rv = resolve_handle(s, st, handle, ref);

    if (rv == CKR_OK && st->sessions_only && ref->token_object) {
        return CKR_OBJECT_HANDLE_INVALID; /* public-view="none" before login */
    }
    if (rv != CKR_OK || st->view->def->rules == NULL) {
        return rv;
    }
    rv = verdict_get(s, st, ref->layer_index, ref->backend, ref->handle, &r);
    if (rv == CKR_OK && r->verdict.hidden) {
        rv = CKR_OBJECT_HANDLE_INVALID;
    }
    return rv;
}
