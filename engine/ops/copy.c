/*
 * copy.c - C_CopyObject. The copy is a new object, made where new objects
 * of the view go (a route rule, else the top writable layer: see
 * object_target_layer), as the source's attributes with the template's
 * changes applied. When that is the source's own layer, the backend
 * copies (its C_CopyObject). When it is another layer, the object is
 * copied up, as an overlay file system copies a lower file up: its
 * attributes are read from the source's backend (layers_copy_template:
 * every attribute a C_CreateObject template may carry for its class) and
 * the copy is created on the target's backend with the template applied.
 * So a certificate, public key or data object of a read-only layer can
 * be copied into the personal layer.
 *
 * A private or secret key is not copied up: one that is sensitive or not
 * extractable must not leave its token, and even an extractable one would
 * have to travel wrapped between two backends, which strata migrate does
 * with its journal and verification (docs/migration.md). C_CopyObject
 * answers CKR_ACTION_PROHIBITED for it, the v2.40 code C_CopyObject lists
 * for an object the token's policy will not copy (CKR_KEY_UNEXTRACTABLE
 * is C_WrapKey's, not in C_CopyObject's list), and logs why.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* C_CopyObject's arguments (within a layer), or the copy's full template
 * (copied up), for object_make. */
typedef struct {
    CK_ATTRIBUTE_PTR templ;
    CK_ULONG count;
    CK_OBJECT_HANDLE source; /* within a layer: the backend's handle */
} copy_args;

static CK_RV call_copy(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                       CK_OBJECT_HANDLE *made)
{
    const copy_args *a = arg;

    return fl->C_CopyObject(h, a->source, a->templ, a->count, made);
}

static CK_RV call_create(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                         CK_OBJECT_HANDLE *made)
{
    const copy_args *a = arg;

    return fl->C_CreateObject(h, a->templ, a->count, made);
}

/*
 * The layer the copy of ref with templ goes to: object_target_layer for
 * the copy seen as templ over the source's attributes the rules read, a
 * token object when the source is one unless templ says otherwise.
 * Returns CKR_OK with *layer; CKR_HOST_MEMORY; verdict_get's failures; or
 * object_target_layer's refusals. Expects S.
 */
static CK_RV copy_layer(engine_session *s, const session_view_state *st, const object_ref *ref,
                        const CK_ATTRIBUTE *templ, CK_ULONG count, size_t *layer)
{
    CK_BBOOL token = object_template_token(templ, count, ref->token_object) ? CK_TRUE : CK_FALSE;
    const object_rules *r = NULL;
    CK_ATTRIBUTE *merged;
    size_t n = 0;
    CK_RV rv;

    if (st->view->def->rules != NULL) {
        rv = verdict_get(s, st, ref->layer_index, ref->backend, ref->handle, &r);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    merged = calloc(count + (r != NULL ? r->obj->n_attrs : 0) + 1, sizeof(*merged));
    if (merged == NULL) {
        return CKR_HOST_MEMORY;
    }
    for (CK_ULONG i = 0; i < count; i++) {
        merged[n++] = templ[i]; /* first: the evaluator reads the first of a type */
    }
    merged[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &token, sizeof(token)};
    for (size_t i = 0; r != NULL && i < r->obj->n_attrs; i++) {
        merged[n++] = r->obj->attrs[i];
    }
    rv = object_target_layer(s, st, merged, (CK_ULONG)n, CK_UNAVAILABLE_INFORMATION, SIZE_MAX,
                             layer);
    free(merged);
    return rv;
}

/* The checks of C_CopyObject on a resolved source, and the layer its copy
 * goes to: CKR_OK with *layer; CKR_SESSION_READ_ONLY;
 * CKR_ACTION_PROHIBITED (deny copy, deny create); or copy_layer's codes
 * (CKR_TOKEN_WRITE_PROTECTED when no layer takes a token object). Expects
 * S. */
static CK_RV copy_checked(engine_session *s, const session_view_state *st, const object_ref *ref,
                          const CK_ATTRIBUTE *templ, CK_ULONG count, size_t *layer)
{
    if (object_template_token(templ, count, ref->token_object) && !session_is_rw(s)) {
        return CKR_SESSION_READ_ONLY;
    }
    if (object_denied(s, st, ref, RULES_OP_COPY)) {
        return CKR_ACTION_PROHIBITED;
    }
    return copy_layer(s, st, ref, templ, count, layer);
}

/*
 * Copies ref up into layer (not its own) with templ's changes: reads the
 * source's attributes from its backend, then creates the copy on layer's
 * through object_make. Returns CKR_OK with *made; CKR_ACTION_PROHIBITED
 * for a private or secret key (logged); OBJECT_AGAIN; CKR_HOST_MEMORY;
 * or a backend's code. Expects S.
 */
static CK_RV copy_up(engine_session *s, const session_view_state *st, const object_ref *ref,
                     size_t layer, const CK_ATTRIBUTE *templ, CK_ULONG count,
                     CK_OBJECT_HANDLE *made)
{
    copy_args args = {NULL, 0, CK_INVALID_HANDLE};
    object_maker make = {call_create, &args, 1};
    layers_attrs head, values;
    layers_side src;
    const char *why = NULL;
    CK_RV rv = backend_session(s, ref->layer_index, &src.p11, &src.session);

    if (rv != CKR_OK) {
        return rv;
    }
    backend_state_read(ref->layer);
    rv = layers_attrs_read(&src, ref->backend, layers_head_types, layers_n_head_types, &head);
    backend_state_done(ref->layer);
    if (rv != CKR_OK) {
        return backend_rv(s, ref->layer_index, rv);
    }
    if (layers_classify(&head, &why) != LAYERS_COPY) {
        engine_log(ENGINE_LOG_WARNING,
                   "token \"%s\": C_CopyObject of an object of layer \"%s\" into layer \"%s\" "
                   "refused: %s",
                   s->token->def->label, ref->layer->def->id, s->token->layers[layer].def->id,
                   why != NULL ? why : "keys move between layers with strata migrate");
        layers_attrs_free(&head);
        return CKR_ACTION_PROHIBITED;
    }
    backend_state_read(ref->layer);
    rv = layers_copy_template(&src, ref->backend,
                              layers_attr_ulong(&head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION),
                              templ, count, &values, &args.templ, &args.count);
    backend_state_done(ref->layer);
    layers_attrs_free(&head);
    if (rv != CKR_OK) {
        return backend_rv(s, ref->layer_index, rv);
    }
    rv = object_make(s, st, layer, &make, made);
    free(args.templ);
    layers_attrs_free(&values);
    return rv;
}

/*
 * C_CopyObject (see the file comment). Returns CKR_OK with *new_object;
 * CKR_SESSION_HANDLE_INVALID; CKR_ARGUMENTS_BAD;
 * CKR_ATTRIBUTE_VALUE_INVALID; CKR_OBJECT_HANDLE_INVALID;
 * CKR_SESSION_READ_ONLY; CKR_ACTION_PROHIBITED; CKR_TOKEN_WRITE_PROTECTED;
 * or the backend's code. Takes S, then L (object_make).
 */
CK_RV object_copy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
                  CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object)
{
    copy_args args = {templ, count, CK_INVALID_HANDLE};
    object_maker make = {call_copy, &args, 1};
    session_view_state st;
    engine_session *s;
    object_ref ref;
    size_t layer = 0;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    do {
        session_view(s, &st);
        rv = verdict_resolve(s, &st, object, &ref);
        if (rv == CKR_OK && new_object == NULL) {
            rv = CKR_ARGUMENTS_BAD;
        }
        if (rv == CKR_OK) {
            rv = object_check_template(templ, count);
        }
        if (rv == CKR_OK) {
            rv = copy_checked(s, &st, &ref, templ, count, &layer);
        }
        if (rv == CKR_OK && layer != ref.layer_index) {
            rv = copy_up(s, &st, &ref, layer, templ, count, new_object);
        } else if (rv == CKR_OK) {
            args.source = ref.backend;
            rv = object_make(s, &st, ref.layer_index, &make, new_object);
        }
    } while (rv == OBJECT_AGAIN);
    session_release(s);
    return rv;
}
