/*
 * object.c - objects across layers: create, copy, destroy, attributes.
 * (The search is in find.c, the handle index in handles.c.)
 *
 * Every object call translates its virtual handle (handles_resolve: an
 * in-memory lookup) to (layer, backend handle) and forwards to the
 * layer's backend session for this virtual session. Backend codes pass
 * through unchanged, except where the stack gives them a meaning:
 *   - an object the view does not show: CKR_OBJECT_HANDLE_INVALID, alike
 *     for every reason;
 *   - a write to an object of a read-only layer: CKR_ACTION_PROHIBITED
 *     (the v2.40 code for an object the token's policy will not let
 *     change); C_DestroyObject on such an object records a whiteout
 *     instead when the view allows it;
 *   - a new object goes to the top writable layer of the view (or where a
 *     route rule sends it); with none: CKR_TOKEN_WRITE_PROTECTED. A new
 *     session object may go to a read-only layer when no layer is
 *     writable (it never touches the token);
 *   - a view's rules (verdict.c): a hidden object does not resolve;
 *     readonly, deny destroy/set-attribute/copy and deny create give
 *     CKR_ACTION_PROHIBITED; the attributes set and readonly rules rewrite
 *     read their rewritten values (docs/strata-rules.7, RETURN CODES);
 *   - C_CopyObject (copy.c) makes the copy where new objects go, copying
 *     it up from another layer when needed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---------------------------------------------------------------------
 * Helpers shared with keys.c
 * ------------------------------------------------------------------ */

CK_RV object_check_template(const CK_ATTRIBUTE *templ, CK_ULONG count)
{
    if (templ == NULL && count > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    for (CK_ULONG i = 0; i < count; i++) {
        if (templ[i].pValue == NULL && templ[i].ulValueLen > 0) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
    }
    return CKR_OK;
}

bool object_template_token(const CK_ATTRIBUTE *templ, CK_ULONG count, bool dflt)
{
    for (CK_ULONG i = 0; templ != NULL && i < count; i++) {
        if (templ[i].type == CKA_TOKEN && templ[i].pValue != NULL &&
            templ[i].ulValueLen == sizeof(CK_BBOOL)) {
            return *(const CK_BBOOL *)templ[i].pValue == CK_TRUE;
        }
    }
    return dflt;
}

/* The layer of view with id, or NULL. */
static engine_layer *view_layer(const engine_view *view, const char *id)
{
    for (size_t i = 0; i < view->n_layers; i++) {
        if (strcmp(view->layers[i]->def->id, id) == 0) {
            return view->layers[i];
        }
    }
    return NULL;
}

/* The default layer for a new object made with mechanism (or
 * CK_UNAVAILABLE_INFORMATION) in the login state st: the top writable
 * layer that serves and whose token offers the mechanism, else (session
 * objects only) the top one that serves and offers it; NULL when none.
 * The view offers the union of its layers' mechanisms, so a key
 * generation goes where it can be done. */
static engine_layer *default_layer(const session_view_state *st, bool token_object,
                                   CK_MECHANISM_TYPE mechanism)
{
    const engine_view *view = st->view;

    for (size_t i = 0; i < view->n_layers; i++) {
        if (!view->layers[i]->read_only && backend_layer_serves(st, view->layers[i]) &&
            slot_layer_offers(view->layers[i], mechanism)) {
            return view->layers[i];
        }
    }
    for (size_t i = 0; !token_object && i < view->n_layers; i++) {
        if (backend_layer_serves(st, view->layers[i]) &&
            slot_layer_offers(view->layers[i], mechanism)) {
            return view->layers[i];
        }
    }
    return NULL;
}

/* The layer for a new object no route rule places: default_layer. Returns
 * CKR_OK with *target; CKR_MECHANISM_INVALID when a layer could take the
 * object but none offers mechanism; CKR_TOKEN_WRITE_PROTECTED when no
 * layer could. */
static CK_RV unrouted_layer(const session_view_state *st, bool token_object,
                            CK_MECHANISM_TYPE mechanism, engine_layer **target)
{
    *target = default_layer(st, token_object, mechanism);
    if (*target != NULL) {
        return CKR_OK;
    }
    if (default_layer(st, token_object, CK_UNAVAILABLE_INFORMATION) != NULL) {
        return CKR_MECHANISM_INVALID;
    }
    return CKR_TOKEN_WRITE_PROTECTED;
}

/* CKR_OK when the routed layer target offers mechanism, else
 * CKR_MECHANISM_INVALID, logged with the layer's name (the rule, not the
 * application, is what to fix). */
static CK_RV routed_mechanism(engine_session *s, const engine_view *view, engine_layer *target,
                              CK_MECHANISM_TYPE mechanism)
{
    const char *name;

    if (slot_layer_offers(target, mechanism)) {
        return CKR_OK;
    }
    name = rules_mechanism_name(mechanism);
    engine_log(ENGINE_LOG_WARNING,
               "token \"%s\": view \"%s\": a route rule sends the new object to layer \"%s\", "
               "whose token does not offer mechanism %s (0x%lx): CKR_MECHANISM_INVALID",
               s->token->def->label, view->def->id, target->def->id, name != NULL ? name : "?",
               (unsigned long)mechanism);
    return CKR_MECHANISM_INVALID;
}

/* The routed layer for a template the rules read: CKR_OK with *target
 * (NULL when no route rule matches); CKR_DEVICE_ERROR when the routed
 * layer is down; CKR_TOKEN_WRITE_PROTECTED for a token object routed to a
 * read-only layer. */
static CK_RV routed_layer(const session_view_state *st, const rules_object *obj, bool token_object,
                          engine_layer **target)
{
    const char *route = rules_route(st->view->def->rules, obj);

    *target = NULL;
    if (route == NULL) {
        return CKR_OK;
    }
    *target = view_layer(st->view, route);
    if (*target == NULL || !backend_layer_serves(st, *target)) {
        return CKR_DEVICE_ERROR;
    }
    return token_object && (*target)->read_only ? CKR_TOKEN_WRITE_PROTECTED : CKR_OK;
}

/* See ops.h. Expects S. */
CK_RV object_target_layer(engine_session *s, const session_view_state *st,
                          const CK_ATTRIBUTE *templ, CK_ULONG count, CK_MECHANISM_TYPE mechanism,
                          size_t fixed, size_t *layer)
{
    const engine_view *view = st->view;
    bool token_object = object_template_token(templ, count, false);
    rules_object obj = {.layer = "",
                        .token = s->token->def->label,
                        .attrs = count > 0 ? templ : NULL,
                        .n_attrs = count};
    engine_layer *target = NULL;
    rules_verdict probe;
    CK_RV rv = CKR_OK;

    if (view == NULL || (token_object && st->sessions_only)) {
        return CKR_TOKEN_WRITE_PROTECTED; /* no view, or public-view="none" before login */
    }
    obj.view = view->def->id;
    if (view->def->rules != NULL) {
        if (rules_eval(view->def->rules, &obj, &probe) != 0) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        rv = routed_layer(st, &obj, token_object, &target);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    if (fixed != SIZE_MAX) {
        if (target != NULL && backend_layer_index(s->token, target) != fixed) {
            return CKR_ACTION_PROHIBITED; /* the backend holding the key must make it */
        }
        target = &s->token->layers[fixed];
    } else if (target != NULL) {
        rv = routed_mechanism(s, view, target, mechanism);
    } else {
        rv = unrouted_layer(st, token_object, mechanism, &target);
    }
    if (rv != CKR_OK) {
        return rv;
    }
    obj.layer = target->def->id;
    if (view->def->rules != NULL &&
        rules_denies(view->def->rules, &obj, RULES_OP_CREATE, mechanism)) {
        return CKR_ACTION_PROHIBITED;
    }
    *layer = backend_layer_index(s->token, target);
    return CKR_OK;
}

/* True when the view's rules hide a new object (or cannot read it): it
 * is then made, but its handle is invalid like any hidden object's. */
static bool hidden_by_rules(engine_session *s, const engine_view *view, size_t layer,
                            CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle)
{
    session_view_state st;
    const object_rules *r;

    if (view->def->rules == NULL) {
        return false;
    }
    session_view(s, &st);
    if (st.view != view) {
        return false; /* the login state changed meanwhile: the next search decides */
    }
    return verdict_get(s, &st, layer, backend, handle, &r) != CKR_OK || r->verdict.hidden;
}

/*
 * Gives a backend object just made through s its virtual handle. Returns
 * CKR_OK with *handle; CKR_HOST_MEMORY; CKR_GENERAL_ERROR when the
 * backend will not describe the object it just made; the catalog's
 * failure for a token object (see handles_learn: the caller destroys the
 * object again). Expects S.
 */
static CK_RV object_register(engine_session *s, const engine_view *view, size_t layer,
                             CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE *handle)
{
    const CK_ATTRIBUTE_TYPE *shadow;
    size_t n_shadow = find_shadow_types(view, &shadow);
    handle_info info;
    CK_RV rv;

    memset(&info, 0, sizeof(info));
    rv = handles_learn(s, layer, &backend, 1, shadow, n_shadow, s->handle, NULL, &info);
    if (rv != CKR_OK) {
        return rv;
    }
    if (info.handle == CK_INVALID_HANDLE) {
        return CKR_GENERAL_ERROR;
    }
    *handle = info.handle;
    handles_set_hidden(s->token, info.handle, (size_t)(view - s->token->views),
                       hidden_by_rules(s, view, layer, backend, info.handle));
    return CKR_OK;
}

/* Takes L for s when its backend session on layer is still the one just
 * opened and the login state is still st's; else returns false holding
 * nothing. Waiting for L drops the shared gate hold (gate_lock_login). */
static bool lock_login_unchanged(engine_session *s, const session_view_state *st, size_t layer)
{
    session_view_state now;

    gate_lock_login(s->token);
    session_view(s, &now);
    /* and no module cycle while L was awaited: a reopened backend session
     * would replay the login under L (self-deadlock) */
    if (now.epoch == st->epoch && s->backends[layer].open &&
        s->backends[layer].generation == backend_generation(&s->token->layers[layer])) {
        return true;
    }
    engine_mutex_unlock(s->token->login_lock);
    return false;
}

/* See ops.h. The backend session opens before L is taken: opening it
 * replays the login, which takes L. */
CK_RV object_make(engine_session *s, const session_view_state *st, size_t layer,
                  const object_maker *make, CK_OBJECT_HANDLE *made)
{
    engine_layer *l = &s->token->layers[layer];
    CK_OBJECT_HANDLE backend[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    size_t registered = 0;
    CK_RV rv;

    rv = backend_session(s, layer, &fl, &h);
    if (rv != CKR_OK) {
        return rv;
    }
    if (!lock_login_unchanged(s, st, layer)) {
        return OBJECT_AGAIN;
    }
    backend_store_write(l);
    rv = make->call(fl, h, make->arg, make->n > 0 ? backend : NULL);
    backend_store_done(l);
    rv = backend_rv(s, layer, rv);
    if (rv == CKR_OK) {
        while (rv == CKR_OK && registered < make->n) {
            rv = object_register(s, st->view, layer, backend[registered], &made[registered]);
            registered += rv == CKR_OK ? 1 : 0;
        }
        for (size_t i = 0; rv != CKR_OK && i < make->n; i++) {
            /* the application sees no object: leave none */
            if (i < registered) {
                handles_forget(s->token, made[i]);
            }
            fl->C_DestroyObject(h, backend[i]);
        }
    }
    engine_mutex_unlock(s->token->login_lock);
    return rv;
}

/* See ops.h. */
CK_RV object_make_new(engine_session *s, const CK_ATTRIBUTE *templ, CK_ULONG count,
                      CK_MECHANISM_TYPE mechanism, const object_maker *make, CK_OBJECT_HANDLE *made)
{
    session_view_state st;
    size_t layer = 0;
    CK_RV rv = object_check_template(templ, count);

    if (rv != CKR_OK) {
        return rv;
    }
    if (object_template_token(templ, count, false) && !session_is_rw(s)) {
        return CKR_SESSION_READ_ONLY;
    }
    do { /* a login change while L was awaited: the layer is chosen again */
        session_view(s, &st);
        rv = object_target_layer(s, &st, templ, count, mechanism, SIZE_MAX, &layer);
        if (rv == CKR_OK) {
            rv = object_make(s, &st, layer, make, made);
        }
    } while (rv == OBJECT_AGAIN);
    return rv;
}

/* See ops.h. */
bool object_denied(engine_session *s, const session_view_state *st, const object_ref *ref,
                   rules_op op)
{
    const object_rules *r;

    if (st->view->def->rules == NULL) {
        return false;
    }
    if (verdict_denies(s, st, ref, op, CK_UNAVAILABLE_INFORMATION)) {
        return true;
    }
    if (op != RULES_OP_SET_ATTRIBUTE && op != RULES_OP_DESTROY) {
        return false;
    }
    return verdict_get(s, st, ref->layer_index, ref->backend, ref->handle, &r) != CKR_OK ||
           r->verdict.readonly;
}

/* Acquires session and resolves object for its view (hidden objects do
 * not resolve): the common start of the per-object calls. On failure
 * the session is released. */
static CK_RV begin(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, engine_session **s,
                   session_view_state *st, object_ref *ref)
{
    CK_RV rv = session_acquire(session, s);

    if (rv != CKR_OK) {
        return rv;
    }
    session_view(*s, st);
    rv = verdict_resolve(*s, st, object, ref);
    if (rv != CKR_OK) {
        session_release(*s);
    }
    return rv;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------ */

/* C_CreateObject's arguments, for object_make. */
typedef struct {
    CK_ATTRIBUTE_PTR templ;
    CK_ULONG count;
} create_args;

static CK_RV call_create(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                         CK_OBJECT_HANDLE *made)
{
    const create_args *a = arg;

    return fl->C_CreateObject(h, a->templ, a->count, made);
}

/*
 * C_CreateObject. Returns CKR_OK with *object; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_ATTRIBUTE_VALUE_INVALID (NULL value with a
 * length); CKR_SESSION_READ_ONLY (token object in a read-only session);
 * CKR_TOKEN_WRITE_PROTECTED (no layer may take it); or the backend's code
 * (a private object before login: CKR_USER_NOT_LOGGED_IN). Takes S, then L (gate_lock_login).
 */
CK_RV object_create(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                    CK_OBJECT_HANDLE_PTR object)
{
    create_args args = {templ, count};
    object_maker make = {call_create, &args, 1};
    engine_session *s;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (object != NULL) {
        rv = object_make_new(s, templ, count, CK_UNAVAILABLE_INFORMATION, &make, object);
    }
    session_release(s);
    return rv;
}

/* Records a whiteout of ref in the view. Returns CKR_OK or
 * CKR_DEVICE_ERROR (the catalog failed: logged). */
static CK_RV whiteout(engine_session *s, const engine_view *view, const object_ref *ref)
{
    storage_rc src = STORAGE_ERR_IO;

    if (engine_lib.catalog != NULL) {
        src = storage_whiteout_add(engine_lib.catalog, s->token->def->label, view->def->id,
                                   ref->layer->def->id, ref->identity, HANDLES_IDENTITY_LEN);
    }
    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": whiteout in view \"%s\": %s",
                   s->token->def->label, view->def->id, storage_strerror(src));
        return CKR_DEVICE_ERROR;
    }
    handles_set_hidden(s->token, ref->handle, (size_t)(view - s->token->views), true);
    return CKR_OK;
}

/*
 * C_DestroyObject. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_OBJECT_HANDLE_INVALID; CKR_SESSION_READ_ONLY (token object, read-only
 * session); CKR_ACTION_PROHIBITED (read-only layer without whiteouts, or
 * a deny rule); CKR_DEVICE_ERROR (the whiteout could not be recorded); or
 * the backend's code.
 */
CK_RV object_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin(session, object, &s, &st, &ref);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_SESSION_READ_ONLY;
    if (ref.token_object && !session_is_rw(s)) {
        goto out;
    }
    rv = CKR_ACTION_PROHIBITED;
    if (object_denied(s, &st, &ref, RULES_OP_DESTROY)) {
        goto out;
    }
    if (ref.token_object && ref.layer->read_only) {
        if (st.view->def->allow_whiteout) {
            rv = whiteout(s, st.view, &ref);
        }
        goto out;
    }
    rv = backend_session(s, ref.layer_index, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = backend_rv(s, ref.layer_index, fl->C_DestroyObject(h, ref.backend));
    if (rv == CKR_OK) {
        handles_forget(s->token, ref.handle);
        verdict_changed();
    }
out:
    session_release(s);
    return rv;
}

/* C_GetObjectSize. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_OBJECT_HANDLE_INVALID; or the backend's code. */
CK_RV object_get_size(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ULONG_PTR size)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin(session, object, &s, &st, &ref);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (size != NULL) {
        rv = backend_session(s, ref.layer_index, &fl, &h);
    }
    if (rv == CKR_OK) {
        rv = backend_rv(s, ref.layer_index, fl->C_GetObjectSize(h, ref.backend, size));
    }
    session_release(s);
    return rv;
}

/* Answers one rewritten attribute with the C_GetAttributeValue
 * conventions; returns false when its buffer is too small. */
static bool put_rewritten(const rules_program *program, const rules_object *obj, CK_ATTRIBUTE *a)
{
    size_t len = 0;

    if (a->pValue == NULL) {
        rules_rewrite(program, obj, a->type, NULL, 0, &len);
        a->ulValueLen = len;
        return true;
    }
    rules_rewrite(program, obj, a->type, a->pValue, a->ulValueLen, &len);
    if (len > a->ulValueLen) {
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        return false;
    }
    a->ulValueLen = len;
    return true;
}

/*
 * C_GetAttributeValue in a view with rules: the attributes the rules
 * rewrite for this object are answered here, the others by the backend
 * in one call, and the return code is what one token answering the whole
 * template would give: the backend's code when it is not CKR_OK, else
 * CKR_BUFFER_TOO_SMALL when a rewritten value did not fit. Expects S.
 */
static CK_RV get_rewritten(engine_session *s, const session_view_state *st, const object_ref *ref,
                           CK_ATTRIBUTE *templ, CK_ULONG count)
{
    const rules_program *program = st->view->def->rules;
    const object_rules *r;
    CK_ATTRIBUTE stack_part[16], *part = stack_part;
    CK_ULONG *where = NULL, stack_where[16], n = 0;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    bool too_small = false;
    size_t len;
    CK_RV rv;

    rv = verdict_get(s, st, ref->layer_index, ref->backend, ref->handle, &r);
    if (rv != CKR_OK) {
        return rv;
    }
    where = stack_where;
    if (count > 16) {
        part = calloc(count, sizeof(*part));
        where = calloc(count, sizeof(*where));
        rv = CKR_HOST_MEMORY;
        if (part == NULL || where == NULL) {
            goto out;
        }
    }
    for (CK_ULONG i = 0; i < count; i++) {
        if (rules_program_rewrites(program, templ[i].type) &&
            rules_rewrite(program, r->obj, templ[i].type, NULL, 0, &len) == 1) {
            too_small = !put_rewritten(program, r->obj, &templ[i]) || too_small;
            continue;
        }
        where[n] = i;
        part[n++] = templ[i];
    }
    rv = CKR_OK;
    if (n > 0) {
        rv = backend_session(s, ref->layer_index, &fl, &h);
        if (rv == CKR_OK) {
            rv = backend_get_attributes(ref->layer, fl, h, ref->backend, part, n);
            rv = backend_rv(s, ref->layer_index, rv);
        }
        for (CK_ULONG i = 0; i < n; i++) {
            templ[where[i]].ulValueLen = part[i].ulValueLen;
        }
    }
    if (rv == CKR_OK && too_small) {
        rv = CKR_BUFFER_TOO_SMALL;
    }
out:
    if (part != stack_part) {
        free(part);
        free(where);
    }
    return rv;
}

/*
 * C_GetAttributeValue: forwarded to the object's layer, so the backend's
 * per-attribute answers (CK_UNAVAILABLE_INFORMATION with
 * CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID or
 * CKR_BUFFER_TOO_SMALL) come back as it gave them, all in one call; the
 * attributes the view's set and readonly rules rewrite read their
 * rewritten values (get_rewritten). Returns those; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_OBJECT_HANDLE_INVALID.
 */
CK_RV object_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin(session, object, &s, &st, &ref);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (templ == NULL && count > 0) {
        goto out;
    }
    if (st.view->def->rules != NULL) {
        rv = get_rewritten(s, &st, &ref, templ, count);
        goto out;
    }
    rv = backend_session(s, ref.layer_index, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = backend_rv(s, ref.layer_index,
                    backend_get_attributes(ref.layer, fl, h, ref.backend, templ, count));
out:
    session_release(s);
    return rv;
}

/*
 * C_SetAttributeValue. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_ATTRIBUTE_VALUE_INVALID; CKR_OBJECT_HANDLE_INVALID;
 * CKR_SESSION_READ_ONLY (token object, read-only session);
 * CKR_ACTION_PROHIBITED (token object of a read-only layer, or a rule);
 * or the backend's code.
 */
CK_RV object_set_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin(session, object, &s, &st, &ref);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = object_check_template(templ, count);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_SESSION_READ_ONLY;
    if ((ref.token_object || object_template_token(templ, count, false)) && !session_is_rw(s)) {
        goto out;
    }
    rv = CKR_ACTION_PROHIBITED;
    if ((ref.token_object && ref.layer->read_only) ||
        object_denied(s, &st, &ref, RULES_OP_SET_ATTRIBUTE)) {
        goto out;
    }
    rv = backend_session(s, ref.layer_index, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    backend_state_read(ref.layer);
    rv = fl->C_SetAttributeValue(h, ref.backend, templ, count);
    backend_state_done(ref.layer);
    rv = backend_rv(s, ref.layer_index, rv);
    if (rv == CKR_OK) {
        handles_reidentify(s, &ref, templ, count);
        handles_touch(s->token, ref.handle);
        verdict_changed();
        /* the change may hide it from this view (other views: their next search) */
        handles_set_hidden(s->token, ref.handle, (size_t)(st.view - s->token->views),
                           hidden_by_rules(s, st.view, ref.layer_index, ref.backend, ref.handle));
    }
out:
    session_release(s);
    return rv;
}
