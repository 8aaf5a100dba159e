/*
 * keys.c - key generation, wrapping, unwrapping and derivation.
 *
 * Generated keys go where object.c sends new objects: the top writable
 * layer of the view (or a route rule's layer). Unwrapped and derived keys
 * are made by the backend that holds the unwrapping or base key, so they
 * land in that key's layer; a token key there needs a writable layer
 * (else CKR_TOKEN_WRITE_PROTECTED). Wrapping needs both keys in one layer
 * (one backend must do it): keys in two layers give CKR_KEY_NOT_WRAPPABLE.
 * The view's rules apply as object.c describes: hidden keys do not
 * resolve (the call's key-handle code); a deny of wrap/unwrap/derive on
 * the key used gives CKR_KEY_FUNCTION_NOT_PERMITTED, a deny of wrap on the
 * key to be wrapped CKR_KEY_NOT_WRAPPABLE; deny create and route check the
 * new key's template (object_target_layer: a route to another layer than
 * the one that must make the key is CKR_ACTION_PROHIBITED).
 * Mechanism parameters that name other keys by handle (e.g.
 * CKM_CONCATENATE_BASE_AND_KEY) are passed unchanged: only base keys in
 * the handle argument are translated.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "ops.h"

/* Resolves a key handle (hidden keys do not resolve), answering bad
 * (the call's code for a bad key) instead of CKR_OBJECT_HANDLE_INVALID. */
static CK_RV resolve_key(engine_session *s, const session_view_state *st, CK_OBJECT_HANDLE key,
                         CK_RV bad, object_ref *ref)
{
    CK_RV rv = verdict_resolve(s, st, key, ref);

    return rv == CKR_OK || rv == CKR_HOST_MEMORY ? rv : bad;
}

/* The arguments of the key-making calls, for object_make. */
typedef struct {
    CK_MECHANISM_PTR mechanism;
    CK_ATTRIBUTE_PTR templ; /* the key's, or the public key's */
    CK_ULONG count;
    CK_ATTRIBUTE_PTR priv_templ; /* C_GenerateKeyPair */
    CK_ULONG priv_count;
    CK_OBJECT_HANDLE key; /* unwrapping or base key, in the backend */
    CK_BYTE_PTR wrapped;  /* C_UnwrapKey */
    CK_ULONG wrapped_len;
} key_args;

static CK_RV call_generate(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                           CK_OBJECT_HANDLE *made)
{
    const key_args *a = arg;

    return fl->C_GenerateKey(h, a->mechanism, a->templ, a->count, made);
}

static CK_RV call_generate_pair(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                                CK_OBJECT_HANDLE *made)
{
    const key_args *a = arg;

    return fl->C_GenerateKeyPair(h, a->mechanism, a->templ, a->count, a->priv_templ, a->priv_count,
                                 &made[0], &made[1]);
}

static CK_RV call_unwrap(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                         CK_OBJECT_HANDLE *made)
{
    const key_args *a = arg;

    return fl->C_UnwrapKey(h, a->mechanism, a->key, a->wrapped, a->wrapped_len, a->templ, a->count,
                           made);
}

/* made is NULL when the mechanism returns its keys through its
 * parameters (object_maker.n == 0). */
static CK_RV call_derive(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                         CK_OBJECT_HANDLE *made)
{
    const key_args *a = arg;

    return fl->C_DeriveKey(h, a->mechanism, a->key, a->templ, a->count, made);
}

/*
 * C_GenerateKey. Returns CKR_OK with *key; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_ATTRIBUTE_VALUE_INVALID; CKR_SESSION_READ_ONLY;
 * CKR_TOKEN_WRITE_PROTECTED (no layer); or the backend's code (a private
 * key before login: CKR_USER_NOT_LOGGED_IN).
 */
CK_RV key_generate(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ,
                   CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    key_args args = {mechanism, templ, count, NULL, 0, CK_INVALID_HANDLE, NULL, 0};
    object_maker make = {call_generate, &args, 1};
    engine_session *s;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism != NULL && key != NULL) {
        rv = object_make_new(s, templ, count, mechanism->mechanism, &make, key);
    }
    session_release(s);
    return rv;
}

/* The one layer of a key pair, chosen from the private key's template
 * and agreed by the public key's. Returns CKR_OK with *layer;
 * CKR_TOKEN_WRITE_PROTECTED; or object_target_layer's refusals. */
static CK_RV pair_layer(engine_session *s, const session_view_state *st, const key_args *a,
                        bool token_object, size_t *layer)
{
    CK_MECHANISM_TYPE mech = a->mechanism->mechanism;
    size_t priv = 0;
    CK_RV rv = object_target_layer(s, st, a->priv_templ, a->priv_count, mech, SIZE_MAX, &priv);

    if (rv == CKR_OK) {
        rv = object_target_layer(s, st, a->templ, a->count, mech, priv, layer);
    }
    if (rv == CKR_OK && token_object && s->token->layers[*layer].read_only) {
        rv = CKR_TOKEN_WRITE_PROTECTED;
    }
    return rv;
}

/*
 * C_GenerateKeyPair: both keys in one layer, chosen from the private
 * key's template. Returns as key_generate, with *pub_key and *priv_key.
 */
CK_RV key_generate_pair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                        CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv_templ,
                        CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_key,
                        CK_OBJECT_HANDLE_PTR priv_key)
{
    key_args args = {mechanism,  pub_templ,         pub_count, priv_templ,
                     priv_count, CK_INVALID_HANDLE, NULL,      0};
    object_maker make = {call_generate_pair, &args, 2};
    CK_OBJECT_HANDLE made[2];
    session_view_state st;
    engine_session *s;
    bool token_object;
    size_t layer = 0;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism == NULL || pub_key == NULL || priv_key == NULL) {
        goto out;
    }
    rv = object_check_template(pub_templ, pub_count);
    if (rv == CKR_OK) {
        rv = object_check_template(priv_templ, priv_count);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    token_object = object_template_token(pub_templ, pub_count, false) ||
                   object_template_token(priv_templ, priv_count, false);
    rv = CKR_SESSION_READ_ONLY;
    if (token_object && !session_is_rw(s)) {
        goto out;
    }
    do {
        session_view(s, &st);
        rv = pair_layer(s, &st, &args, token_object, &layer);
        if (rv == CKR_OK) {
            rv = object_make(s, &st, layer, &make, made);
        }
    } while (rv == OBJECT_AGAIN);
    if (rv == CKR_OK) {
        *pub_key = made[0];
        *priv_key = made[1];
    }
out:
    session_release(s);
    return rv;
}

/*
 * C_WrapKey. Returns CKR_OK (or a size answer); CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_WRAPPING_KEY_HANDLE_INVALID; CKR_KEY_HANDLE_INVALID;
 * CKR_KEY_NOT_WRAPPABLE (keys in two layers); CKR_KEY_FUNCTION_NOT_PERMITTED
 * (a deny rule); or the backend's code (CKR_BUFFER_TOO_SMALL ...).
 */
CK_RV key_wrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping,
               CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len)
{
    session_view_state st;
    engine_session *s;
    object_ref wref, kref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism == NULL || wrapped_len == NULL) {
        goto out;
    }
    session_view(s, &st);
    rv = resolve_key(s, &st, wrapping, CKR_WRAPPING_KEY_HANDLE_INVALID, &wref);
    if (rv == CKR_OK) {
        rv = resolve_key(s, &st, key, CKR_KEY_HANDLE_INVALID, &kref);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_KEY_NOT_WRAPPABLE;
    if (wref.layer != kref.layer) {
        goto out;
    }
    rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
    if (verdict_denies(s, &st, &wref, RULES_OP_WRAP, mechanism->mechanism)) {
        goto out;
    }
    rv = CKR_KEY_NOT_WRAPPABLE;
    if (verdict_denies(s, &st, &kref, RULES_OP_WRAP, mechanism->mechanism)) {
        goto out;
    }
    rv = backend_session(s, wref.layer_index, &fl, &h);
    if (rv == CKR_OK) {
        backend_state_read(wref.layer);
        rv = fl->C_WrapKey(h, mechanism, wref.backend, kref.backend, wrapped, wrapped_len);
        backend_state_done(wref.layer);
        rv = backend_rv(s, wref.layer_index, rv);
    }
out:
    session_release(s);
    return rv;
}

/*
 * What C_UnwrapKey and C_DeriveKey share: the new key is made by the
 * backend of the key args->key names (virtual on entry), in that key's
 * layer. bad is the call's code for a bad key, op its rules operation.
 * Returns CKR_OK with made[0] (when make->n is 1); bad;
 * CKR_SESSION_READ_ONLY; CKR_TOKEN_WRITE_PROTECTED;
 * CKR_KEY_FUNCTION_NOT_PERMITTED; object_target_layer's refusals; or
 * object_make's codes. Expects S.
 */
static CK_RV key_from_key(engine_session *s, key_args *args, CK_OBJECT_HANDLE key, CK_RV bad,
                          rules_op op, const object_maker *make, CK_OBJECT_HANDLE *made)
{
    bool token_object = object_template_token(args->templ, args->count, false);
    session_view_state st;
    object_ref ref;
    CK_RV rv = object_check_template(args->templ, args->count);

    if (rv != CKR_OK) {
        return rv;
    }
    if (token_object && !session_is_rw(s)) {
        return CKR_SESSION_READ_ONLY;
    }
    do {
        session_view(s, &st);
        rv = resolve_key(s, &st, key, bad, &ref);
        if (rv == CKR_OK && token_object && ref.layer->read_only) {
            rv = CKR_TOKEN_WRITE_PROTECTED;
        }
        if (rv == CKR_OK && verdict_denies(s, &st, &ref, op, args->mechanism->mechanism)) {
            rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        }
        if (rv == CKR_OK) {
            rv = object_target_layer(s, &st, args->templ, args->count, args->mechanism->mechanism,
                                     ref.layer_index, &ref.layer_index);
        }
        if (rv == CKR_OK) {
            args->key = ref.backend;
            rv = object_make(s, &st, ref.layer_index, make, made);
        }
    } while (rv == OBJECT_AGAIN);
    return rv;
}

/*
 * C_UnwrapKey: the new key lands in the unwrapping key's layer. Returns
 * CKR_OK with *key; CKR_SESSION_HANDLE_INVALID; CKR_ARGUMENTS_BAD;
 * CKR_ATTRIBUTE_VALUE_INVALID; CKR_SESSION_READ_ONLY;
 * CKR_UNWRAPPING_KEY_HANDLE_INVALID; CKR_TOKEN_WRITE_PROTECTED (a token key
 * in a read-only layer); CKR_KEY_FUNCTION_NOT_PERMITTED; or the backend's
 * code.
 */
CK_RV key_unwrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key)
{
    key_args args = {mechanism, templ, count, NULL, 0, CK_INVALID_HANDLE, wrapped, wrapped_len};
    object_maker make = {call_unwrap, &args, 1};
    engine_session *s;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism != NULL && key != NULL && (wrapped != NULL || wrapped_len == 0)) {
        rv = key_from_key(s, &args, unwrapping, CKR_UNWRAPPING_KEY_HANDLE_INVALID, RULES_OP_UNWRAP,
                          &make, key);
    }
    session_release(s);
    return rv;
}

/*
 * C_DeriveKey: the new key lands in the base key's layer. key may be NULL
 * for mechanisms that return their keys through their parameters (those
 * handles are the backend's: not translated). Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_ARGUMENTS_BAD; CKR_ATTRIBUTE_VALUE_INVALID;
 * CKR_SESSION_READ_ONLY; CKR_KEY_HANDLE_INVALID; CKR_TOKEN_WRITE_PROTECTED;
 * CKR_KEY_FUNCTION_NOT_PERMITTED; or the backend's code.
 */
CK_RV key_derive(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base,
                 CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    key_args args = {mechanism, templ, count, NULL, 0, CK_INVALID_HANDLE, NULL, 0};
    object_maker make = {call_derive, &args, key != NULL ? 1 : 0};
    engine_session *s;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism != NULL) {
        rv = key_from_key(s, &args, base, CKR_KEY_HANDLE_INVALID, RULES_OP_DERIVE, &make, key);
    }
    session_release(s);
    return rv;
}
