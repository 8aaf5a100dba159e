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
 *   - C_CopyObject copies within the object's layer: PKCS#11 cannot move
 *     an object between tokens (a sensitive key never leaves its token),
 *     so a token copy of an object of a read-only layer is
 *     CKR_ACTION_PROHIBITED rather than a copy to another layer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "stack.h"

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

/* The usable layer of view with id, or NULL. */
static engine_layer *view_layer(const engine_view *view, const char *id)
{
    for (size_t i = 0; i < view->n_layers; i++) {
        if (strcmp(view->layers[i]->def->id, id) == 0) {
            return view->layers[i];
        }
    }
    return NULL;
}

/*
 * The layer a new object described by templ goes to (see the file
 * comment). Returns CKR_OK with *layer; CKR_USER_NOT_LOGGED_IN when no
 * view is shown (not logged in and no public view); CKR_TOKEN_WRITE_PROTECTED
 * when no usable layer may take it.
 */
CK_RV object_target_layer(engine_session *s, const engine_view *view, const CK_ATTRIBUTE *templ,
                          CK_ULONG count, size_t *layer)
{
    bool token_object = object_template_token(templ, count, false);
    engine_layer *target = NULL;
    const char *route = NULL;

    if (view == NULL) {
        return CKR_USER_NOT_LOGGED_IN;
    }
    if (view->def->rules != NULL) {
        rules_object obj = {.layer = "",
                            .view = view->def->id,
                            .token = s->token->def->label,
                            .attrs = templ,
                            .n_attrs = count};
        route = rules_route(view->def->rules, &obj);
    }
    if (route != NULL) {
        target = view_layer(view, route);
        if (target == NULL || !backend_layer_usable(target) ||
            (token_object && target->read_only)) {
            return CKR_TOKEN_WRITE_PROTECTED;
        }
    }
    for (size_t i = 0; target == NULL && i < view->n_layers; i++) {
        if (backend_layer_usable(view->layers[i]) && !view->layers[i]->read_only) {
            target = view->layers[i];
        }
    }
    for (size_t i = 0; target == NULL && !token_object && i < view->n_layers; i++) {
        if (backend_layer_usable(view->layers[i])) {
            target = view->layers[i];
        }
    }
    if (target == NULL) {
        return CKR_TOKEN_WRITE_PROTECTED;
    }
    *layer = backend_layer_index(s->token, target);
    return CKR_OK;
}

/*
 * Gives a backend object just made through s its virtual handle. Returns
 * CKR_OK with *handle; CKR_HOST_MEMORY; CKR_GENERAL_ERROR when the
 * backend will not describe the object it just made. Expects S.
 */
CK_RV object_register(engine_session *s, const engine_view *view, size_t layer,
                      CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE *handle)
{
    const CK_ATTRIBUTE_TYPE *shadow;
    size_t n_shadow = find_shadow_types(view, &shadow);
    handle_info info;
    CK_RV rv;

    memset(&info, 0, sizeof(info));
    rv = handles_learn(s, layer, &backend, 1, shadow, n_shadow, s->handle, &info);
    if (rv != CKR_OK) {
        return rv;
    }
    if (info.handle == CK_INVALID_HANDLE) {
        return CKR_GENERAL_ERROR;
    }
    handles_set_hidden(s->token, info.handle, (size_t)(view - s->token->views), false);
    *handle = info.handle;
    return CKR_OK;
}

/* True when a deny rule of the view forbids op on the object. */
static bool denied(engine_session *s, const engine_view *view, const object_ref *ref, rules_op op)
{
    rule_object ro;
    rules_verdict verdict;
    bool no;

    if (view->def->rules == NULL) {
        return false;
    }
    if (rule_object_fetch(s, view, ref->layer_index, ref->backend, &ro) != CKR_OK) {
        return true;
    }
    no = rules_denies(view->def->rules, &ro.obj, op, CK_UNAVAILABLE_INFORMATION);
    if (!no && (op == RULES_OP_SET_ATTRIBUTE || op == RULES_OP_DESTROY) &&
        rules_eval(view->def->rules, &ro.obj, &verdict) == 0) {
        no = verdict.readonly || (verdict.denied & op) != 0;
    }
    rule_object_free(&ro);
    return no;
}

/* Acquires session and resolves object for its view: the common start of
 * the per-object calls. On failure the session is released. */
static CK_RV begin(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, engine_session **s,
                   session_view_state *st, object_ref *ref)
{
    CK_RV rv = session_acquire(session, s);

    if (rv != CKR_OK) {
        return rv;
    }
    session_view(*s, st);
    rv = handles_resolve(*s, st, object, ref);
    if (rv != CKR_OK) {
        session_release(*s);
    }
    return rv;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------ */

/*
 * C_CreateObject. Returns CKR_OK with *object; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_ATTRIBUTE_VALUE_INVALID (NULL value with a
 * length); CKR_SESSION_READ_ONLY (token object in a read-only session);
 * CKR_USER_NOT_LOGGED_IN / CKR_TOKEN_WRITE_PROTECTED (no layer may take
 * it); or the backend's code.
 */
CK_RV object_create(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                    CK_OBJECT_HANDLE_PTR object)
{
    session_view_state st;
    engine_session *s;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_OBJECT_HANDLE backend = CK_INVALID_HANDLE;
    size_t layer = 0;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (object == NULL) {
        goto out;
    }
    rv = object_check_template(templ, count);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_SESSION_READ_ONLY;
    if (object_template_token(templ, count, false) && !session_is_rw(s)) {
        goto out;
    }
    session_view(s, &st);
    rv = object_target_layer(s, st.view, templ, count, &layer);
    if (rv == CKR_OK) {
        rv = backend_session(s, layer, &fl, &h);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    rv = backend_rv(s, layer, fl->C_CreateObject(h, templ, count, &backend));
    if (rv == CKR_OK) {
        rv = object_register(s, st.view, layer, backend, object);
    }
out:
    session_release(s);
    return rv;
}

/*
 * C_CopyObject, within the object's layer (see the file comment). Returns
 * CKR_OK with *new_object; CKR_SESSION_HANDLE_INVALID; CKR_ARGUMENTS_BAD;
 * CKR_ATTRIBUTE_VALUE_INVALID; CKR_OBJECT_HANDLE_INVALID;
 * CKR_SESSION_READ_ONLY; CKR_ACTION_PROHIBITED; or the backend's code.
 */
CK_RV object_copy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
                  CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_OBJECT_HANDLE backend = CK_INVALID_HANDLE;
    bool token_object;
    CK_RV rv;

    rv = begin(session, object, &s, &st, &ref);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (new_object == NULL) {
        goto out;
    }
    rv = object_check_template(templ, count);
    if (rv != CKR_OK) {
        goto out;
    }
    token_object = object_template_token(templ, count, ref.token_object);
    rv = CKR_SESSION_READ_ONLY;
    if (token_object && !session_is_rw(s)) {
        goto out;
    }
    rv = CKR_ACTION_PROHIBITED;
    if ((token_object && ref.layer->read_only) || denied(s, st.view, &ref, RULES_OP_COPY)) {
        goto out;
    }
    rv = backend_session(s, ref.layer_index, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = fl->C_CopyObject(h, ref.backend, templ, count, &backend);
    rv = backend_rv(s, ref.layer_index, rv);
    if (rv == CKR_OK) {
        rv = object_register(s, st.view, ref.layer_index, backend, new_object);
    }
out:
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
    if (denied(s, st.view, &ref, RULES_OP_DESTROY)) {
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

/*
 * Applies the view's set rules to the attributes they rewrite, with the
 * C_GetAttributeValue conventions, after the backend filled the rest.
 * Returns rv, or CKR_BUFFER_TOO_SMALL when a rewritten value does not fit.
 */
static CK_RV rewrite_attributes(engine_session *s, const engine_view *view, const object_ref *ref,
                                CK_ATTRIBUTE *templ, CK_ULONG count, CK_RV rv)
{
    const rules_program *program = view->def->rules;
    rule_object ro;
    bool fetched = false;

    for (CK_ULONG i = 0; i < count; i++) {
        size_t len = 0;
        int r;

        if (!rules_program_rewrites(program, templ[i].type)) {
            continue;
        }
        if (!fetched && rule_object_fetch(s, view, ref->layer_index, ref->backend, &ro) != CKR_OK) {
            return rv;
        }
        fetched = true;
        r = rules_rewrite(program, &ro.obj, templ[i].type, templ[i].pValue,
                          templ[i].pValue != NULL ? templ[i].ulValueLen : 0, &len);
        if (r != 1) {
            continue;
        }
        if (templ[i].pValue != NULL && templ[i].ulValueLen < len) {
            templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = rv == CKR_OK ? CKR_BUFFER_TOO_SMALL : rv;
        } else {
            templ[i].ulValueLen = len;
        }
    }
    if (fetched) {
        rule_object_free(&ro);
    }
    return rv;
}

/*
 * C_GetAttributeValue: forwarded to the object's layer, so the backend's
 * per-attribute answers (CK_UNAVAILABLE_INFORMATION with
 * CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID or
 * CKR_BUFFER_TOO_SMALL) come back as it gave them, all in one call.
 * Returns those; CKR_SESSION_HANDLE_INVALID; CKR_ARGUMENTS_BAD;
 * CKR_OBJECT_HANDLE_INVALID.
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
    rv = backend_session(s, ref.layer_index, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = backend_rv(s, ref.layer_index, fl->C_GetAttributeValue(h, ref.backend, templ, count));
    if (st.view->def->rules != NULL &&
        (rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
         rv == CKR_BUFFER_TOO_SMALL)) {
        rv = rewrite_attributes(s, st.view, &ref, templ, count, rv);
    }
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
        denied(s, st.view, &ref, RULES_OP_SET_ATTRIBUTE)) {
        goto out;
    }
    rv = backend_session(s, ref.layer_index, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = backend_rv(s, ref.layer_index, fl->C_SetAttributeValue(h, ref.backend, templ, count));
    if (rv == CKR_OK) {
        handles_touch(s->token, ref.handle);
    }
out:
    session_release(s);
    return rv;
}
