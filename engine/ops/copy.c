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
 * A private or secret key is copied up wrapped (layers/transfer.c): a
 * transient RSA-OAEP pair made on the target carries a transient AES key
 * generated on the source; the key is wrapped on the source with
 * CKM_AES_KEY_WRAP_PAD and unwrapped on the target with the copy's
 * template, so it is never in clear outside a backend, and the wrapped
 * blob lives only in memory, wiped after. The engine's per-layer locks
 * are leaves, one layer's at a time, so every step runs on one backend
 * under that layer's locks only (the layers_transport_* and
 * layers_proof_* steps). The copy is verified (a signature by it checked
 * with the source's public key, or the same ciphertext of one block)
 * before its handle is returned; a copy that fails is destroyed.
 *
 * A key the source will not reveal (not extractable, sensitive or not;
 * CKA_WRAP_WITH_TRUSTED; CKA_COPYABLE false) is not copied:
 * CKR_ACTION_PROHIBITED, the v2.40 code C_CopyObject lists for an object
 * the token's policy will not copy (CKR_KEY_UNEXTRACTABLE is C_WrapKey's,
 * not in C_CopyObject's list), logged with the reason; so is a key whose
 * backends lack the mechanisms. The template follows C_CopyObject's
 * rules for keys: CKA_CLASS and CKA_KEY_TYPE may only repeat the
 * source's (CKR_TEMPLATE_INCONSISTENT), CKA_SENSITIVE may only become
 * true and CKA_EXTRACTABLE only false, key material and the attributes
 * the token computes cannot be set (CKR_ATTRIBUTE_READ_ONLY).
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

/* ---------------------------------------------------------------------
 * Keys: a wrapped copy-up, one backend at a time
 * ------------------------------------------------------------------ */

/* What a C_CopyObject template may set on a key's copy: the attributes
 * PKCS#11 v2.40 §4 lets a copy change (CKA_SENSITIVE only to true,
 * CKA_EXTRACTABLE only to false: key_template_check). */
static const CK_ATTRIBUTE_TYPE key_settable[] = {
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_DERIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN_RECOVER,
    CKA_VERIFY_RECOVER,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    /* not booleans */
    CKA_LABEL,
    CKA_ID,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_SUBJECT,
};
#define N_KEY_BOOLEANS 17

/* Checks a C_CopyObject template for a copy of the key whose head
 * attributes are head. CKR_OK; CKR_TEMPLATE_INCONSISTENT (another class
 * or key type); CKR_ATTRIBUTE_VALUE_INVALID (a value of the wrong size);
 * CKR_ATTRIBUTE_READ_ONLY (an attribute a copy cannot set, or
 * CKA_SENSITIVE false for a sensitive key). */
static CK_RV key_template_check(const layers_attrs *head, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
    size_t n = sizeof(key_settable) / sizeof(key_settable[0]), at;
    CK_ULONG v;

    for (CK_ULONG i = 0; i < count; i++) {
        const CK_ATTRIBUTE *a = &templ[i];
        if (a->type == CKA_CLASS || a->type == CKA_KEY_TYPE) {
            if (a->ulValueLen != sizeof(v)) {
                return CKR_ATTRIBUTE_VALUE_INVALID;
            }
            memcpy(&v, a->pValue, sizeof(v));
            if (v != layers_attr_ulong(head, a->type, CK_UNAVAILABLE_INFORMATION)) {
                return CKR_TEMPLATE_INCONSISTENT;
            }
            continue;
        }
        for (at = 0; at < n && key_settable[at] != a->type; at++) {
        }
        if (at == n) {
            return CKR_ATTRIBUTE_READ_ONLY;
        }
        if (at < N_KEY_BOOLEANS && a->ulValueLen != sizeof(CK_BBOOL)) {
            return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        if (a->type == CKA_SENSITIVE && *(const CK_BBOOL *)a->pValue == CK_FALSE &&
            layers_attr_bool(head, CKA_SENSITIVE, true)) {
            return CKR_ATTRIBUTE_READ_ONLY;
        }
    }
    return CKR_OK;
}

/* A key's copy-up: the source's side, the target's, and what travels. */
typedef struct {
    engine_session *s;
    const object_ref *ref;
    size_t layer;     /* the target's index */
    engine_layer *tl; /* the target layer */
    layers_side src, dst;
    layers_transport tr;
    unsigned char *blob; /* the wrapped key, in memory only */
    CK_ULONG blob_len;
    CK_ATTRIBUTE *templ; /* the copy's template, for C_UnwrapKey */
    CK_ULONG count;
    CK_OBJECT_HANDLE made; /* the copy's backend handle */
} key_move;

/* C_UnwrapKey of the moved key on the target, for object_make. */
static CK_RV call_unwrap(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                         CK_OBJECT_HANDLE *made)
{
    key_move *m = (key_move *)arg;
    layers_side dst = {fl, h};
    CK_RV rv = layers_unwrap_key(&dst, &m->tr, m->blob, m->blob_len, m->templ, m->count, made);

    m->made = rv == CKR_OK ? made[0] : CK_INVALID_HANDLE;
    return rv;
}

/* The transport between the two layers, each step under its own
 * layer's locks. CKR_OK (m->tr ready) or a backend's code. Expects S. */
static CK_RV move_transport(key_move *m)
{
    engine_layer *sl = m->ref->layer;
    unsigned char *blob = NULL;
    CK_ULONG len = 0;
    layers_attrs pub;
    CK_RV rv;

    backend_store_write(m->tl);
    backend_state_read(m->tl);
    rv = layers_transport_pair(&m->tr, &m->dst, &pub);
    backend_state_done(m->tl);
    backend_store_done(m->tl);
    if (rv != CKR_OK) {
        return backend_rv(m->s, m->layer, rv);
    }
    backend_store_write(sl);
    backend_state_read(sl);
    rv = layers_transport_key(&m->tr, &m->src, &pub, &blob, &len);
    backend_state_done(sl);
    backend_store_done(sl);
    layers_attrs_free(&pub);
    if (rv != CKR_OK) {
        rv = backend_rv(m->s, m->ref->layer_index, rv);
    } else {
        backend_store_write(m->tl);
        rv = layers_transport_accept(&m->tr, &m->dst, blob, len);
        backend_store_done(m->tl);
        rv = backend_rv(m->s, m->layer, rv);
    }
    layers_blob_free(blob, len);
    return rv;
}

/* head as the copy's verification reads it: a usage the template turns
 * off is not tested (*view's attrs malloc'd: free them). */
static CK_RV proof_head(const layers_attrs *head, const CK_ATTRIBUTE *templ, CK_ULONG count,
                        layers_attrs *view)
{
    view->n = head->n;
    view->values = NULL;
    view->attrs = malloc(head->n * sizeof(*view->attrs));
    if (view->attrs == NULL) {
        return CKR_HOST_MEMORY;
    }
    memcpy(view->attrs, head->attrs, head->n * sizeof(*view->attrs));
    for (size_t i = 0; i < view->n; i++) {
        CK_ATTRIBUTE *a = &view->attrs[i];
        for (CK_ULONG j = 0; (a->type == CKA_SIGN || a->type == CKA_ENCRYPT) && j < count; j++) {
            if (templ[j].type == a->type && *(const CK_BBOOL *)templ[j].pValue == CK_FALSE) {
                *a = templ[j];
            }
        }
    }
    return CKR_OK;
}

/* Verifies the copy m->made against the source, each step under one
 * layer's locks. CKR_OK; CKR_HOST_MEMORY; or why not (*how, *why). */
static CK_RV move_verify(key_move *m, const layers_attrs *head, const char **how)
{
    engine_layer *sl = m->ref->layer;
    layers_attrs view;
    layers_proof p;
    CK_RV rv = proof_head(head, m->templ, m->count, &view);

    *how = "verifying the copy";
    if (rv != CKR_OK) {
        return rv;
    }
    backend_state_read(sl);
    rv = layers_proof_source(&m->src, m->ref->backend, &view, &p);
    backend_state_done(sl);
    if (rv == CKR_OK) {
        backend_state_read(m->tl);
        rv = layers_proof_target(&m->dst, m->made, &view, &p);
        backend_state_done(m->tl);
    }
    if (rv == CKR_OK) {
        backend_store_write(sl);
        backend_state_read(sl);
        rv = layers_proof_check(&m->src, m->ref->backend, &view, &p);
        backend_state_done(sl);
        backend_store_done(sl);
    }
    *how = p.how;
    layers_proof_free(&p);
    free(view.attrs);
    return rv;
}

/* Makes the copy: wraps the key on the source, unwraps it on the target
 * through object_make (the copy's handle into *made), verifies it, and
 * destroys it again when the check fails. CKR_OK; OBJECT_AGAIN; or the
 * failing step's code (*step says which). Expects S. */
static CK_RV move_key(key_move *m, const session_view_state *st, const layers_attrs *head,
                      CK_OBJECT_HANDLE *made, const char **step)
{
    object_maker make = {call_unwrap, m, 1};
    CK_RV rv;

    *step = "carrying the transport key";
    rv = move_transport(m);
    if (rv != CKR_OK) {
        return rv;
    }
    *step = "wrapping the key on the source";
    backend_state_read(m->ref->layer);
    rv = layers_wrap_key(&m->src, &m->tr, m->ref->backend, &m->blob, &m->blob_len);
    backend_state_done(m->ref->layer);
    if (rv != CKR_OK) {
        return backend_rv(m->s, m->ref->layer_index, rv);
    }
    *step = "unwrapping the key on the target";
    rv = object_make(m->s, st, m->layer, &make, made);
    layers_blob_free(m->blob, m->blob_len);
    m->blob = NULL;
    if (rv != CKR_OK) {
        return rv;
    }
    rv = move_verify(m, head, step);
    if (rv != CKR_OK) {
        m->dst.p11->C_DestroyObject(m->dst.session, m->made);
        handles_forget(m->s->token, *made);
        *made = CK_INVALID_HANDLE;
        rv = rv == CKR_HOST_MEMORY ? rv : CKR_FUNCTION_FAILED;
    }
    return rv;
}

/* Whether rv is one of C_CopyObject's v2.40 codes that a failing backend
 * step may pass on as it is (the others become CKR_FUNCTION_FAILED). */
static bool copy_code(CK_RV rv)
{
    static const CK_RV codes[] = {
        CKR_OK,
        OBJECT_AGAIN,
        CKR_ATTRIBUTE_READ_ONLY,
        CKR_ATTRIBUTE_TYPE_INVALID,
        CKR_ATTRIBUTE_VALUE_INVALID,
        CKR_DEVICE_ERROR,
        CKR_DEVICE_MEMORY,
        CKR_DEVICE_REMOVED,
        CKR_FUNCTION_FAILED,
        CKR_GENERAL_ERROR,
        CKR_HOST_MEMORY,
        CKR_SESSION_CLOSED,
        CKR_SESSION_READ_ONLY,
        CKR_TEMPLATE_INCONSISTENT,
        CKR_TOKEN_WRITE_PROTECTED,
        CKR_USER_NOT_LOGGED_IN,
    };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (codes[i] == rv) {
            return true;
        }
    }
    return false;
}

/*
 * Copies key ref (head: its head attributes) up into layer with templ's
 * changes (see the file comment). Returns CKR_OK with *made;
 * key_template_check's codes; CKR_ACTION_PROHIBITED (the backends lack
 * the mechanisms, logged); OBJECT_AGAIN; CKR_FUNCTION_FAILED (the copy
 * did not verify and was destroyed, or a step failed with a code
 * C_CopyObject does not list; logged); or a backend's code. Every
 * transient object and the wrapped blob are gone when it returns.
 * Expects S.
 */
static CK_RV copy_key(engine_session *s, const session_view_state *st, const object_ref *ref,
                      size_t layer, const layers_attrs *head, const CK_ATTRIBUTE *templ,
                      CK_ULONG count, CK_OBJECT_HANDLE *made)
{
    key_move m = {.s = s, .ref = ref, .layer = layer, .tl = &s->token->layers[layer]};
    const char *step = "reading the key's attributes";
    layers_attrs values;
    CK_RV rv = key_template_check(head, templ, count);

    if (rv != CKR_OK) {
        return rv;
    }
    rv = backend_session(s, ref->layer_index, &m.src.p11, &m.src.session);
    if (rv == CKR_OK) {
        rv = backend_session(s, layer, &m.dst.p11, &m.dst.session);
    }
    if (rv != CKR_OK) {
        return rv;
    }
    if (!layers_transport_possible(&m.src, &m.dst, layers_attr_ulong(head, CKA_CLASS, 0),
                                   &m.tr.plan, &step)) {
        engine_log(ENGINE_LOG_WARNING, "token \"%s\": C_CopyObject into layer \"%s\" refused: %s",
                   s->token->def->label, m.tl->def->id, step);
        return CKR_ACTION_PROHIBITED;
    }
    backend_state_read(ref->layer);
    rv = layers_copy_template(&m.src, ref->backend, layers_attr_ulong(head, CKA_CLASS, 0), templ,
                              count, &values, &m.templ, &m.count);
    backend_state_done(ref->layer);
    if (rv != CKR_OK) {
        return backend_rv(s, ref->layer_index, rv);
    }
    rv = CKR_ACTION_PROHIBITED;
    step = "CKA_COPYABLE is false";
    if (layers_attr_bool(&values, CKA_COPYABLE, true)) {
        rv = move_key(&m, st, head, made, &step);
    }
    layers_transport_close_target(&m.tr, &m.dst);
    layers_transport_close_source(&m.tr, &m.src);
    layers_blob_free(m.blob, m.blob_len);
    free(m.templ);
    layers_attrs_free(&values);
    if (rv != CKR_OK && rv != OBJECT_AGAIN) {
        engine_log(ENGINE_LOG_WARNING,
                   "token \"%s\": C_CopyObject of a key of layer \"%s\" into layer \"%s\" "
                   "failed: %s: %s",
                   s->token->def->label, ref->layer->def->id, m.tl->def->id, step,
                   layers_rv_name(rv));
    }
    return copy_code(rv) ? rv : CKR_FUNCTION_FAILED;
}

/*
 * Copies ref up into layer (not its own) with templ's changes: reads the
 * source's attributes from its backend, then creates the copy on layer's
 * through object_make; a key travels wrapped (copy_key). Returns CKR_OK
 * with *made; CKR_ACTION_PROHIBITED for an object that cannot move
 * (logged); copy_key's codes; OBJECT_AGAIN; CKR_HOST_MEMORY; or a
 * backend's code. Expects S.
 */
static CK_RV copy_up(engine_session *s, const session_view_state *st, const object_ref *ref,
                     size_t layer, const CK_ATTRIBUTE *templ, CK_ULONG count,
                     CK_OBJECT_HANDLE *made)
{
    copy_args args = {NULL, 0, CK_INVALID_HANDLE};
    object_maker make = {call_create, &args, 1};
    layers_attrs head, values;
    layers_side src;
    layers_how how;
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
    how = layers_classify(&head, &why);
    if (how == LAYERS_TRANSFER) {
        rv = copy_key(s, st, ref, layer, &head, templ, count, made);
        layers_attrs_free(&head);
        return rv;
    }
    if (how != LAYERS_COPY) {
        engine_log(ENGINE_LOG_WARNING,
                   "token \"%s\": C_CopyObject of an object of layer \"%s\" into layer \"%s\" "
                   "refused: %s",
                   s->token->def->label, ref->layer->def->id, s->token->layers[layer].def->id, why);
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
    rv = CKR_ACTION_PROHIBITED; /* v2.40: an object with CKA_COPYABLE false is not copied */
    if (layers_attr_bool(&values, CKA_COPYABLE, true)) {
        rv = object_make(s, st, layer, &make, made);
    }
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
