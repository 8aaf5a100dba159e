/*
 * crypto.c - cryptographic operations, forwarded to the layer that holds
 * the key, through that layer's backend session for the virtual session.
 *
 * Strata keeps its own operation state per virtual session and enforces
 * PKCS#11's rules itself, whatever the backend would allow: one active
 * operation of each kind, and two at once only for the dual-function pairs
 * (digest+encrypt, decrypt+digest, sign+encrypt, decrypt+verify); a second
 * Init gets CKR_OPERATION_ACTIVE; Update/Final without Init get
 * CKR_OPERATION_NOT_INITIALIZED. An operation ends as the spec says: a
 * single-part or Final call ends it unless it returns CKR_BUFFER_TOO_SMALL
 * or is a size query (NULL output, CKR_OK); C_Verify and C_VerifyFinal
 * always end it; an Update ends it on error. A login or logout on the
 * token ends every operation of every session (like a search): the next
 * call on it gets CKR_OPERATION_NOT_INITIALIZED, so an operation begun
 * in one view never finishes in another. When Strata rejects a call's
 * arguments itself (CKR_ARGUMENTS_BAD) the operation ends too, and the
 * backend's copy is ended by a throw-away Final ("drain"), since some
 * backends check arguments before touching their state.
 *
 * Keys without a place: a digest goes to the top usable layer of the view
 * the session shows (before login the public view: a lazy layer whose
 * token does not exist yet is skipped); random numbers come from the top
 * such layer whose token has CKF_RNG. C_DigestKey needs the key in the
 * digest's layer (else CKR_KEY_INDIGESTIBLE).
 *
 * Dual-function updates run as the two single updates in order (encrypt
 * then digest/sign; decrypt then digest/verify of the plaintext), so the
 * two keys may live on different layers. On one layer they share one
 * backend session, so they work only where the backend itself allows two
 * operations in a session (SoftHSM2 does not).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define DRAIN_LEN 16384

static bool is_pair(engine_op a, engine_op b)
{
    engine_op lo = a < b ? a : b, hi = a < b ? b : a;

    return (lo == ENGINE_OP_ENCRYPT && (hi == ENGINE_OP_DIGEST || hi == ENGINE_OP_SIGN)) ||
           (lo == ENGINE_OP_DECRYPT && (hi == ENGINE_OP_DIGEST || hi == ENGINE_OP_VERIFY));
}

/* CKR_OK when op may start beside the session's active operations. */
static CK_RV may_start(const engine_session *s, engine_op op)
{
    size_t active = 0;

    for (int i = 0; i < ENGINE_OP_COUNT; i++) {
        if (!s->ops[i].active) {
            continue;
        }
        active++;
        if ((engine_op)i == op || !is_pair(op, (engine_op)i)) {
            return CKR_OPERATION_ACTIVE;
        }
    }
    return active < 2 ? CKR_OK : CKR_OPERATION_ACTIVE;
}

static rules_op rule_op(engine_op op)
{
    switch (op) {
    case ENGINE_OP_ENCRYPT:
        return RULES_OP_ENCRYPT;
    case ENGINE_OP_DECRYPT:
        return RULES_OP_DECRYPT;
    case ENGINE_OP_DIGEST:
        return RULES_OP_DIGEST;
    case ENGINE_OP_SIGN:
    case ENGINE_OP_SIGN_RECOVER:
        return RULES_OP_SIGN;
    default:
        return RULES_OP_VERIFY;
    }
}

/* The top layer of st's view that serves, else of the token; SIZE_MAX
 * if none. With need_rng, only layers whose token reports CKF_RNG (calls
 * backends). */
static size_t keyless_layer(engine_session *s, const session_view_state *st, bool need_rng)
{
    engine_token *token = s->token;
    const engine_view *view = st->view;
    size_t n = view != NULL ? view->n_layers : token->n_layers;

    for (size_t i = 0; i < n; i++) {
        engine_layer *l = view != NULL ? view->layers[i] : &token->layers[i];
        CK_TOKEN_INFO info;

        if (!backend_layer_serves(st, l)) {
            continue;
        }
        if (need_rng &&
            (layers_token_info(l->token, &info) != CKR_OK || (info.flags & CKF_RNG) == 0)) {
            continue;
        }
        return backend_layer_index(token, l);
    }
    return SIZE_MAX;
}

static CK_RV call_init(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, engine_op op,
                       CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    switch (op) {
    case ENGINE_OP_ENCRYPT:
        return fl->C_EncryptInit(h, mech, key);
    case ENGINE_OP_DECRYPT:
        return fl->C_DecryptInit(h, mech, key);
    case ENGINE_OP_DIGEST:
        return fl->C_DigestInit(h, mech);
    case ENGINE_OP_SIGN:
        return fl->C_SignInit(h, mech, key);
    case ENGINE_OP_SIGN_RECOVER:
        return fl->C_SignRecoverInit(h, mech, key);
    case ENGINE_OP_VERIFY:
        return fl->C_VerifyInit(h, mech, key);
    case ENGINE_OP_VERIFY_RECOVER:
        return fl->C_VerifyRecoverInit(h, mech, key);
    default:
        return CKR_GENERAL_ERROR;
    }
}

/* The backend session of the layer running op. Expects S. */
static CK_RV op_session(engine_session *s, engine_op op, CK_FUNCTION_LIST **fl,
                        CK_SESSION_HANDLE *h)
{
    return backend_session(s, s->ops[op].layer, fl, h);
}

/* Ends op in Strata's state. */
static void end_op(engine_session *s, engine_op op)
{
    s->ops[op].active = false;
}

/* Ends op in the backend too (see the file comment): a Final into a
 * scratch buffer, or for signing and the recover operations a
 * single-part call. */
static void drain(engine_session *s, engine_op op)
{
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_BYTE one = 0;
    CK_BYTE *buf = malloc(DRAIN_LEN);
    CK_ULONG len = DRAIN_LEN;
    CK_RV rv = CKR_OK;

    end_op(s, op);
    if (buf == NULL || op_session(s, op, &fl, &h) != CKR_OK) {
        free(buf);
        return;
    }
    switch (op) {
    case ENGINE_OP_ENCRYPT:
        rv = fl->C_EncryptFinal(h, buf, &len);
        break;
    case ENGINE_OP_DECRYPT:
        rv = fl->C_DecryptFinal(h, buf, &len);
        break;
    case ENGINE_OP_DIGEST:
        rv = fl->C_DigestFinal(h, buf, &len);
        break;
    case ENGINE_OP_SIGN:
        /* single-part first: SoftHSM2 2.6.1 answers C_SignFinal on an
         * ECDSA operation with CKR_OPERATION_NOT_INITIALIZED and keeps it
         * (then every C_SignInit gets CKR_OPERATION_ACTIVE); C_Sign always
         * ends it. A backend that refuses C_Sign after C_SignUpdate says
         * CKR_OPERATION_ACTIVE: then C_SignFinal. */
        rv = fl->C_Sign(h, &one, 1, buf, &len);
        if (rv == CKR_OPERATION_ACTIVE) {
            len = DRAIN_LEN;
            rv = fl->C_SignFinal(h, buf, &len);
        }
        break;
    case ENGINE_OP_VERIFY:
        rv = fl->C_VerifyFinal(h, &one, 1);
        break;
    case ENGINE_OP_SIGN_RECOVER:
        rv = fl->C_SignRecover(h, &one, 1, buf, &len);
        break;
    case ENGINE_OP_VERIFY_RECOVER:
        rv = fl->C_VerifyRecover(h, &one, 1, buf, &len);
        break;
    default:
        break;
    }
    (void)rv; /* whatever it answers, the backend's operation is over */
    free(buf);
}

/* Ends (drains) the operations of s begun before the token's current
 * login state. Reads the login epoch alone, without K: every call of an
 * operation asks. Expects S. */
static void end_stale(engine_session *s)
{
    unsigned long epoch = session_login_epoch(s);

    for (int i = 0; i < ENGINE_OP_COUNT; i++) {
        if (s->ops[i].active && s->ops[i].epoch != epoch) {
            drain(s, (engine_op)i);
        }
    }
}

/*
 * C_<Op>Init. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD (NULL mechanism); CKR_OPERATION_ACTIVE;
 * CKR_KEY_HANDLE_INVALID (the key is not in the view);
 * CKR_KEY_FUNCTION_NOT_PERMITTED (a deny rule); CKR_DEVICE_ERROR (no usable
 * layer for a digest); or the backend's code.
 */
CK_RV crypto_init(CK_SESSION_HANDLE session, engine_op op, CK_MECHANISM_PTR mechanism,
                  CK_OBJECT_HANDLE key)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    size_t layer;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    end_stale(s);
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism == NULL) {
        goto out;
    }
    rv = may_start(s, op);
    if (rv != CKR_OK) {
        goto out;
    }
    session_view(s, &st);
    memset(&ref, 0, sizeof(ref));
    if (op == ENGINE_OP_DIGEST) {
        layer = keyless_layer(s, &st, false);
        rv = layer == SIZE_MAX ? CKR_DEVICE_ERROR : CKR_OK;
    } else {
        rv = verdict_resolve(s, &st, key, &ref) == CKR_OK ? CKR_OK : CKR_KEY_HANDLE_INVALID;
        layer = ref.layer_index;
    }
    if (rv != CKR_OK) {
        goto out;
    }
    if (op != ENGINE_OP_DIGEST && verdict_denies(s, &st, &ref, rule_op(op), mechanism->mechanism)) {
        rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
        goto out;
    }
    rv = backend_session(s, layer, &fl, &h);
    if (rv != CKR_OK) {
        goto out;
    }
    backend_state_read(&s->token->layers[layer]);
    rv = call_init(fl, h, op, mechanism, ref.backend);
    backend_state_done(&s->token->layers[layer]);
    rv = backend_rv(s, layer, rv);
    if (rv == CKR_OBJECT_HANDLE_INVALID && op != ENGINE_OP_DIGEST) {
        /* a backend that lost the key meanwhile (a logout of another
         * thread: SoftHSM2 says OBJECT_): the *Init calls' code is KEY_ */
        rv = CKR_KEY_HANDLE_INVALID;
    }
    if (rv == CKR_OK) {
        s->ops[op].active = true;
        s->ops[op].layer = layer;
        s->ops[op].epoch = st.epoch;
    }
out:
    session_release(s);
    return rv;
}

/* Acquires the session with op active. Returns CKR_OK with S held, or
 * the failure with S released. */
static CK_RV begin_op(CK_SESSION_HANDLE session, engine_op op, engine_session **s)
{
    CK_RV rv = session_acquire(session, s);

    if (rv != CKR_OK) {
        return rv;
    }
    end_stale(*s);
    if (!(*s)->ops[op].active) {
        session_release(*s);
        return CKR_OPERATION_NOT_INITIALIZED;
    }
    return CKR_OK;
}

/* Whether a call producing output (to out) ended the operation. */
static bool output_ends(CK_RV rv, const CK_BYTE *out)
{
    return !(rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && out == NULL));
}

static CK_RV call_single(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, engine_op op, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    switch (op) {
    case ENGINE_OP_ENCRYPT:
        return fl->C_Encrypt(h, in, in_len, out, out_len);
    case ENGINE_OP_DECRYPT:
        return fl->C_Decrypt(h, in, in_len, out, out_len);
    case ENGINE_OP_DIGEST:
        return fl->C_Digest(h, in, in_len, out, out_len);
    case ENGINE_OP_SIGN:
        return fl->C_Sign(h, in, in_len, out, out_len);
    case ENGINE_OP_SIGN_RECOVER:
        return fl->C_SignRecover(h, in, in_len, out, out_len);
    case ENGINE_OP_VERIFY_RECOVER:
        return fl->C_VerifyRecover(h, in, in_len, out, out_len);
    default:
        return CKR_GENERAL_ERROR;
    }
}

/*
 * C_Encrypt, C_Decrypt, C_Digest, C_Sign, C_SignRecover, C_VerifyRecover.
 * Returns CKR_OK; CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_ARGUMENTS_BAD (ends the operation); or the backend's code.
 */
CK_RV crypto_single(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    engine_session *s;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin_op(session, op, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (out_len == NULL || (in == NULL && in_len > 0)) {
        drain(s, op);
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = op_session(s, op, &fl, &h);
    if (rv == CKR_OK) {
        rv = backend_rv(s, s->ops[op].layer, call_single(fl, h, op, in, in_len, out, out_len));
    }
    if (output_ends(rv, out)) {
        end_op(s, op);
    }
out:
    session_release(s);
    return rv;
}

/* C_Verify: always ends the operation. Returns CKR_OK;
 * CKR_SIGNATURE_INVALID ...; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_ARGUMENTS_BAD; CKR_SESSION_HANDLE_INVALID. */
CK_RV crypto_verify(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                    CK_BYTE_PTR signature, CK_ULONG signature_len)
{
    engine_session *s;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin_op(session, ENGINE_OP_VERIFY, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if ((data == NULL && data_len > 0) || (signature == NULL && signature_len > 0)) {
        drain(s, ENGINE_OP_VERIFY);
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = op_session(s, ENGINE_OP_VERIFY, &fl, &h);
    if (rv == CKR_OK) {
        rv = fl->C_Verify(h, data, data_len, signature, signature_len);
        rv = backend_rv(s, s->ops[ENGINE_OP_VERIFY].layer, rv);
    }
    end_op(s, ENGINE_OP_VERIFY);
out:
    session_release(s);
    return rv;
}

static CK_RV call_update(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, engine_op op, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    switch (op) {
    case ENGINE_OP_ENCRYPT:
        return fl->C_EncryptUpdate(h, in, in_len, out, out_len);
    case ENGINE_OP_DECRYPT:
        return fl->C_DecryptUpdate(h, in, in_len, out, out_len);
    case ENGINE_OP_DIGEST:
        return fl->C_DigestUpdate(h, in, in_len);
    case ENGINE_OP_SIGN:
        return fl->C_SignUpdate(h, in, in_len);
    case ENGINE_OP_VERIFY:
        return fl->C_VerifyUpdate(h, in, in_len);
    default:
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
}

static bool has_output(engine_op op)
{
    return op == ENGINE_OP_ENCRYPT || op == ENGINE_OP_DECRYPT;
}

/* One update on the backend, ending op on error (not on
 * CKR_BUFFER_TOO_SMALL). Expects S and op active. */
static CK_RV update_inlock(engine_session *s, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                           CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv = op_session(s, op, &fl, &h);

    if (rv == CKR_OK) {
        rv = backend_rv(s, s->ops[op].layer, call_update(fl, h, op, in, in_len, out, out_len));
    }
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) {
        end_op(s, op);
    }
    return rv;
}

/*
 * C_EncryptUpdate, C_DecryptUpdate, C_DigestUpdate, C_SignUpdate,
 * C_VerifyUpdate. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_OPERATION_NOT_INITIALIZED; CKR_ARGUMENTS_BAD (ends the operation);
 * or the backend's code (an error ends the operation).
 */
CK_RV crypto_update(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    engine_session *s;
    CK_RV rv;

    rv = begin_op(session, op, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if ((in == NULL && in_len > 0) || (has_output(op) && out_len == NULL)) {
        drain(s, op);
        rv = CKR_ARGUMENTS_BAD;
    } else {
        rv = update_inlock(s, op, in, in_len, out, out_len);
    }
    session_release(s);
    return rv;
}

static CK_RV call_final(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, engine_op op, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len)
{
    switch (op) {
    case ENGINE_OP_ENCRYPT:
        return fl->C_EncryptFinal(h, out, out_len);
    case ENGINE_OP_DECRYPT:
        return fl->C_DecryptFinal(h, out, out_len);
    case ENGINE_OP_DIGEST:
        return fl->C_DigestFinal(h, out, out_len);
    case ENGINE_OP_SIGN:
        return fl->C_SignFinal(h, out, out_len);
    default:
        return CKR_FUNCTION_NOT_SUPPORTED;
    }
}

/*
 * C_EncryptFinal, C_DecryptFinal, C_DigestFinal, C_SignFinal. A NULL out
 * is a size query that keeps the operation. Returns as crypto_single.
 */
CK_RV crypto_final(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    engine_session *s;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin_op(session, op, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (out_len == NULL) {
        drain(s, op);
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = op_session(s, op, &fl, &h);
    if (rv == CKR_OK) {
        rv = backend_rv(s, s->ops[op].layer, call_final(fl, h, op, out, out_len));
    }
    if (output_ends(rv, out)) {
        end_op(s, op);
    }
out:
    session_release(s);
    return rv;
}

/* C_VerifyFinal: always ends the operation. Returns as crypto_verify. */
CK_RV crypto_verify_final(CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG signature_len)
{
    engine_session *s;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin_op(session, ENGINE_OP_VERIFY, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (signature == NULL && signature_len > 0) {
        drain(s, ENGINE_OP_VERIFY);
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = op_session(s, ENGINE_OP_VERIFY, &fl, &h);
    if (rv == CKR_OK) {
        rv = fl->C_VerifyFinal(h, signature, signature_len);
        rv = backend_rv(s, s->ops[ENGINE_OP_VERIFY].layer, rv);
    }
    end_op(s, ENGINE_OP_VERIFY);
out:
    session_release(s);
    return rv;
}

/*
 * C_DigestKey. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_OPERATION_NOT_INITIALIZED; CKR_KEY_HANDLE_INVALID (not in the view);
 * CKR_KEY_INDIGESTIBLE (the key lives in another layer than the digest);
 * or the backend's code (an error ends the digest).
 */
CK_RV crypto_digest_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = begin_op(session, ENGINE_OP_DIGEST, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    session_view(s, &st);
    rv = CKR_KEY_HANDLE_INVALID;
    if (verdict_resolve(s, &st, key, &ref) != CKR_OK) {
        goto out;
    }
    rv = CKR_KEY_INDIGESTIBLE; /* also for a deny rule: see strata-rules(7) */
    if (ref.layer_index != s->ops[ENGINE_OP_DIGEST].layer ||
        verdict_denies(s, &st, &ref, RULES_OP_DIGEST, CK_UNAVAILABLE_INFORMATION)) {
        goto out;
    }
    rv = op_session(s, ENGINE_OP_DIGEST, &fl, &h);
    if (rv == CKR_OK) {
        backend_state_read(ref.layer);
        rv = fl->C_DigestKey(h, ref.backend);
        backend_state_done(ref.layer);
        rv = backend_rv(s, ref.layer_index, rv);
    }
    if (rv != CKR_OK) {
        end_op(s, ENGINE_OP_DIGEST);
    }
out:
    session_release(s);
    return rv;
}

/* The two operations of a dual function: first produces the output. */
static void dual_ops(engine_dual dual, engine_op *first, engine_op *second)
{
    switch (dual) {
    case ENGINE_DUAL_DIGEST_ENCRYPT:
        *first = ENGINE_OP_ENCRYPT;
        *second = ENGINE_OP_DIGEST;
        break;
    case ENGINE_DUAL_DECRYPT_DIGEST:
        *first = ENGINE_OP_DECRYPT;
        *second = ENGINE_OP_DIGEST;
        break;
    case ENGINE_DUAL_SIGN_ENCRYPT:
        *first = ENGINE_OP_ENCRYPT;
        *second = ENGINE_OP_SIGN;
        break;
    default:
        *first = ENGINE_OP_DECRYPT;
        *second = ENGINE_OP_VERIFY;
        break;
    }
}

/*
 * C_DigestEncryptUpdate, C_DecryptDigestUpdate, C_SignEncryptUpdate,
 * C_DecryptVerifyUpdate (see the file comment). Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED (either
 * operation not active); CKR_ARGUMENTS_BAD; or the backend's code (an error
 * other than CKR_BUFFER_TOO_SMALL ends both operations).
 */
CK_RV crypto_dual_update(CK_SESSION_HANDLE session, engine_dual dual, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    engine_op first, second;
    engine_session *s;
    CK_RV rv;

    dual_ops(dual, &first, &second);
    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    end_stale(s);
    rv = CKR_OPERATION_NOT_INITIALIZED;
    if (!s->ops[first].active || !s->ops[second].active) {
        goto out;
    }
    if (out_len == NULL || (in == NULL && in_len > 0)) {
        drain(s, first);
        drain(s, second);
        rv = CKR_ARGUMENTS_BAD;
        goto out;
    }
    rv = update_inlock(s, first, in, in_len, out, out_len);
    if (rv == CKR_OK && out != NULL) {
        bool encrypting = first == ENGINE_OP_ENCRYPT;
        rv = update_inlock(s, second, encrypting ? in : out, encrypting ? in_len : *out_len, NULL,
                           NULL);
    }
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) {
        if (s->ops[first].active) {
            drain(s, first);
        }
        if (s->ops[second].active) {
            drain(s, second);
        }
    }
out:
    session_release(s);
    return rv;
}

/* C_SeedRandom / C_GenerateRandom on the top layer with an RNG. */
static CK_RV random_call(CK_SESSION_HANDLE session, CK_BYTE_PTR buf, CK_ULONG len, bool seed)
{
    session_view_state st;
    engine_session *s;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    size_t layer;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (buf == NULL && len > 0) {
        goto out;
    }
    session_view(s, &st);
    layer = keyless_layer(s, &st, true);
    rv = CKR_RANDOM_NO_RNG;
    if (layer == SIZE_MAX) {
        goto out;
    }
    rv = backend_session(s, layer, &fl, &h);
    if (rv == CKR_OK) {
        rv = seed ? fl->C_SeedRandom(h, buf, len) : fl->C_GenerateRandom(h, buf, len);
        rv = backend_rv(s, layer, rv);
    }
out:
    session_release(s);
    return rv;
}

/* C_SeedRandom. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_RANDOM_NO_RNG; or the backend's code
 * (CKR_RANDOM_SEED_NOT_SUPPORTED ...). */
CK_RV crypto_seed_random(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len)
{
    return random_call(session, seed, seed_len, true);
}

/* C_GenerateRandom. Returns as crypto_seed_random. */
CK_RV crypto_generate_random(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len)
{
    return random_call(session, out, out_len, false);
}

/* Ends op of s, in the backend too (drain), if it is active. Expects S. */
void crypto_cancel(engine_session *s, engine_op op)
{
    if (s->ops[op].active) {
        drain(s, op);
    }
}

/* Forgets every operation of s (its backend sessions are being closed). */
void crypto_reset(engine_session *s)
{
    for (int i = 0; i < ENGINE_OP_COUNT; i++) {
        s->ops[i].active = false;
    }
}
