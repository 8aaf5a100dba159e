/*
 * message.c - message-based encryption, decryption, signing and
 * verification (PKCS#11 3.0), emulated over the backends' 2.40 functions.
 *
 * Strata drives every backend through p11-kit's managed modules, whose
 * function lists are 2.40 (p11-kit 0.24), so no backend is reached
 * through its own 3.0 message functions: each message becomes one
 * single-part 2.40 operation on the key's layer, through crypto.c (the
 * same handle translation, rules and backend sessions as C_EncryptInit +
 * C_Encrypt). That is exact where one message is one 2.40 operation:
 *   - CKM_AES_GCM encryption and decryption: C_EncryptMessage is
 *     C_EncryptInit(CKM_AES_GCM with the message's IV, AAD and tag
 *     length) + C_Encrypt, whose output (ciphertext, then the tag) is
 *     split into the ciphertext and the message's tag; C_DecryptMessage
 *     the reverse, its plaintext handed back only once the backend
 *     accepted the tag; a refusal that a wrong tag explains (checked by
 *     message_gcm_tag_check) answers CKR_AEAD_DECRYPT_FAILED. The IV is
 *     the caller's (CKG_NO_GENERATE), or its bits after ulIvFixedBits are
 *     made and written back to the caller's IV: CKG_GENERATE_RANDOM (and
 *     CKG_GENERATE) from the token's C_GenerateRandom,
 *     CKG_GENERATE_COUNTER from a counter per (session, key) that never
 *     gives a value twice and answers CKR_MECHANISM_PARAM_INVALID once
 *     the IV bits cannot hold the next one. CKG_GENERATE_COUNTER_XOR
 *     answers CKR_MECHANISM_PARAM_INVALID; other mechanisms
 *     CKR_MECHANISM_INVALID at C_MessageEncryptInit/C_MessageDecryptInit.
 *   - signing and verification with any mechanism whose messages carry
 *     no parameter of their own (ECDSA, RSA, HMAC...): C_SignMessage is
 *     C_SignInit with the mechanism given at C_MessageSignInit +
 *     C_Sign. A per-message parameter answers CKR_ARGUMENTS_BAD.
 * Signing and verification also take a message in parts:
 * C_SignMessageBegin is C_SignInit, each C_SignMessageNext C_SignUpdate,
 * the last one C_SignUpdate + C_SignFinal (its room checked first, so a
 * short buffer or a size query leaves the part to be given again).
 * AES-GCM messages in parts are message_parts.c's, on this file's state
 * (message_part_get/message_part_set).
 *
 * Each message runs the session's 2.40 operation of its kind, so a
 * session with C_EncryptInit active answers CKR_OPERATION_ACTIVE to
 * C_EncryptMessage until it ends. A login or logout ends the message
 * operations begun before it (CKR_OPERATION_NOT_INITIALIZED), as it ends
 * the 2.40 ones.
 *
 * State: one record per (session, kind) in a list guarded by the message
 * lock M, a leaf taken with no other lock held and never across a call
 * into crypto.c or a backend. session.c calls message_forget when a
 * session ends.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ops.h"

/* One active message-based operation. */
typedef struct message_op {
    struct message_op *next;
    CK_SESSION_HANDLE session;
    message_kind kind;
    CK_MECHANISM mechanism; /* pParameter: a copy, owned */
    CK_OBJECT_HANDLE key;   /* virtual */
    unsigned long epoch;    /* the login epoch it began in */
    bool in_message;        /* between Begin and the last Next */
    CK_ULONG fed;           /* AEAD in parts: input given in this message */
    CK_ULONG released;      /* AEAD in parts: output handed back in this message */
    CK_ULONG tag_bits;      /* AEAD in parts: the tag length given at Begin */
    message_held held;      /* AEAD decryption in parts: kept until the tag is checked */
} message_op;

static pthread_mutex_t message_lock = PTHREAD_MUTEX_INITIALIZER; /* M */
static message_op *ops;                                          /* M */

/* The 2.40 operation each kind runs. */
static const engine_op kind_op[MESSAGE_KINDS] = {ENGINE_OP_ENCRYPT, ENGINE_OP_DECRYPT,
                                                 ENGINE_OP_SIGN, ENGINE_OP_VERIFY};

static void op_free(message_op *op)
{
    if (op != NULL) {
        message_held_wipe(&op->held);
        free(op->mechanism.pParameter);
        free(op);
    }
}

/* The record of (session, kind), or NULL. Expects M. */
static message_op **find_inlock(CK_SESSION_HANDLE session, message_kind kind)
{
    for (message_op **p = &ops; *p != NULL; p = &(*p)->next) {
        if ((*p)->session == session && (*p)->kind == kind) {
            return p;
        }
    }
    return NULL;
}

/* Takes the record of (session, kind) out of the list and frees it. */
static void forget(CK_SESSION_HANDLE session, message_kind kind)
{
    message_op **p, *op = NULL;

    pthread_mutex_lock(&message_lock);
    p = find_inlock(session, kind);
    if (p != NULL) {
        op = *p;
        *p = op->next;
    }
    pthread_mutex_unlock(&message_lock);
    op_free(op);
}

/* See internal.h. A message under way also ends its 2.40 operation. */
void message_cancel(CK_SESSION_HANDLE session, message_kind kind)
{
    message_op **p;
    bool in_message = false;

    pthread_mutex_lock(&message_lock);
    p = find_inlock(session, kind);
    in_message = p != NULL && (*p)->in_message;
    pthread_mutex_unlock(&message_lock);
    forget(session, kind);
    if (in_message) {
        (void)session_cancel(session, 1u << kind_op[kind], false, 0);
    }
}

/* See internal.h. */
void message_forget(CK_SESSION_HANDLE session)
{
    for (int kind = 0; kind < MESSAGE_KINDS; kind++) {
        forget(session, (message_kind)kind);
    }
    message_gcm_forget(session);
}

/* The session's login epoch and whether key is in its view: CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_KEY_HANDLE_INVALID. Takes S. */
static CK_RV session_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, unsigned long *epoch)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_RV rv = session_acquire(session, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    session_view(s, &st);
    *epoch = st.epoch;
    memset(&ref, 0, sizeof(ref));
    rv = verdict_resolve(s, &st, key, &ref) == CKR_OK ? CKR_OK : CKR_KEY_HANDLE_INVALID;
    session_release(s);
    return rv;
}

/* The session's login epoch now: CKR_OK or CKR_SESSION_HANDLE_INVALID.
 * Takes S. */
static CK_RV session_epoch(CK_SESSION_HANDLE session, unsigned long *epoch)
{
    session_view_state st;
    engine_session *s;
    CK_RV rv = session_acquire(session, &s);

    if (rv == CKR_OK) {
        session_view(s, &st);
        *epoch = st.epoch;
        session_release(s);
    }
    return rv;
}

/*
 * C_Message{Encrypt,Decrypt,Sign,Verify}Init. Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_ARGUMENTS_BAD (NULL mechanism);
 * CKR_MECHANISM_INVALID (encryption: not CKM_AES_GCM);
 * CKR_OPERATION_ACTIVE; CKR_KEY_HANDLE_INVALID (not in the view);
 * CKR_HOST_MEMORY.
 */
CK_RV message_init(CK_SESSION_HANDLE session, message_kind kind, CK_MECHANISM_PTR mechanism,
                   CK_OBJECT_HANDLE key)
{
    message_op *op = NULL;
    unsigned long epoch = 0;
    CK_RV rv = session_epoch(session, &epoch);

    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (mechanism == NULL || (mechanism->pParameter == NULL && mechanism->ulParameterLen > 0)) {
        goto out;
    }
    rv = CKR_MECHANISM_INVALID;
    if ((kind == MESSAGE_ENCRYPT || kind == MESSAGE_DECRYPT) &&
        mechanism->mechanism != CKM_AES_GCM) {
        goto out;
    }
    rv = session_key(session, key, &epoch);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        goto out;
    }
    op->session = session;
    op->kind = kind;
    op->key = key;
    op->epoch = epoch;
    op->mechanism.mechanism = mechanism->mechanism;
    if (mechanism->ulParameterLen > 0) {
        op->mechanism.pParameter = malloc(mechanism->ulParameterLen);
        if (op->mechanism.pParameter == NULL) {
            goto out;
        }
        memcpy(op->mechanism.pParameter, mechanism->pParameter, mechanism->ulParameterLen);
        op->mechanism.ulParameterLen = mechanism->ulParameterLen;
    }
    pthread_mutex_lock(&message_lock);
    rv = CKR_OPERATION_ACTIVE;
    if (find_inlock(session, kind) == NULL) {
        op->next = ops;
        ops = op;
        op = NULL;
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&message_lock);
out:
    op_free(op);
    return rv;
}

/*
 * A copy of the active (session, kind) operation's mechanism (its
 * parameter pointing into the record's copy, valid while the operation is
 * not ended by this same session: sessions serialise their calls in
 * PKCS#11), key and whether a multi-part message is under way. Returns
 * CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_OPERATION_NOT_INITIALIZED (none, or begun before the last login or
 * logout: then ended).
 */
static CK_RV active(CK_SESSION_HANDLE session, message_kind kind, CK_MECHANISM *mechanism,
                    CK_OBJECT_HANDLE *key, bool *in_message)
{
    unsigned long epoch = 0, began = 0;
    message_op **p;
    CK_RV rv = session_epoch(session, &epoch);

    if (rv != CKR_OK) {
        return rv;
    }
    pthread_mutex_lock(&message_lock);
    p = find_inlock(session, kind);
    rv = CKR_OPERATION_NOT_INITIALIZED;
    if (p != NULL) {
        *mechanism = (*p)->mechanism;
        *key = (*p)->key;
        *in_message = (*p)->in_message;
        began = (*p)->epoch;
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&message_lock);
    if (rv == CKR_OK && began != epoch) {
        forget(session, kind);
        rv = CKR_OPERATION_NOT_INITIALIZED;
    }
    return rv;
}

/* Ends whatever 2.40 operation of kind a message left active (a size
 * query, a short buffer, a failure). */
static void end_2_40(CK_SESSION_HANDLE session, message_kind kind)
{
    (void)session_cancel(session, 1u << kind_op[kind], false, 0);
}

/* See ops.h. */
void message_end_2_40(CK_SESSION_HANDLE session, message_kind kind)
{
    end_2_40(session, kind);
}

/* See ops.h. */
CK_RV message_part_get(CK_SESSION_HANDLE session, message_kind kind, message_part *part)
{
    CK_MECHANISM mechanism;
    message_op **p;
    CK_RV rv = active(session, kind, &mechanism, &part->key, &part->in_message);

    if (rv != CKR_OK) {
        return rv;
    }
    pthread_mutex_lock(&message_lock);
    p = find_inlock(session, kind);
    if (p != NULL) {
        part->fed = (*p)->fed;
        part->released = (*p)->released;
        part->tag_bits = (*p)->tag_bits;
        part->held = &(*p)->held;
    } else {
        rv = CKR_OPERATION_NOT_INITIALIZED;
    }
    pthread_mutex_unlock(&message_lock);
    return rv;
}

/* See ops.h. */
void message_part_set(CK_SESSION_HANDLE session, message_kind kind, const message_part *part)
{
    message_op **p;

    pthread_mutex_lock(&message_lock);
    p = find_inlock(session, kind);
    if (p != NULL) {
        (*p)->in_message = part->in_message;
        (*p)->fed = part->fed;
        (*p)->released = part->released;
        (*p)->tag_bits = part->tag_bits;
    }
    pthread_mutex_unlock(&message_lock);
}

/* The message kinds (bits 1 << message_kind) the emulation does with a
 * mechanism whose 2.40 flags (merged over the view's layers) are flags:
 * the ones message_init accepts and each message's 2.40 operation can
 * run. Encryption and decryption: CKM_AES_GCM only, where the token
 * encrypts or decrypts with it; signing and verification: any mechanism
 * the token signs or verifies with (each message is C_SignInit +
 * C_Sign, or the verify pair). */
static unsigned mechanism_kinds(CK_MECHANISM_TYPE type, CK_FLAGS flags)
{
    unsigned kinds = 0;

    if (type == CKM_AES_GCM && (flags & CKF_ENCRYPT)) {
        kinds |= 1u << MESSAGE_ENCRYPT;
    }
    if (type == CKM_AES_GCM && (flags & CKF_DECRYPT)) {
        kinds |= 1u << MESSAGE_DECRYPT;
    }
    if (flags & CKF_SIGN) {
        kinds |= 1u << MESSAGE_SIGN;
    }
    if (flags & CKF_VERIFY) {
        kinds |= 1u << MESSAGE_VERIFY;
    }
    return kinds;
}

/* See ops.h. */
CK_RV message_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info,
                             unsigned *kinds)
{
    CK_RV rv = slot_get_mechanism_info(slot, type, info);

    *kinds = rv == CKR_OK ? mechanism_kinds(type, info->flags) : 0;
    return rv;
}

/* C_EncryptMessage's work once the arguments are checked: ciphertext into
 * out (in_len bytes), tag into aead->tag. */
static CK_RV gcm_encrypt(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const message_aead *aead,
                         CK_GCM_PARAMS *gcm, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out)
{
    CK_ULONG tag_len = aead->tag_bits / 8, len = in_len + tag_len;
    CK_BYTE *both = malloc(len > 0 ? len : 1);
    CK_RV rv = CKR_HOST_MEMORY;

    if (both == NULL) {
        return rv;
    }
    rv = message_gcm_once(session, ENGINE_OP_ENCRYPT, key, gcm, in, in_len, both, &len);
    if (rv == CKR_OK && len != in_len + tag_len) {
        rv = CKR_GENERAL_ERROR; /* a backend that does not append the tag */
    }
    if (rv == CKR_OK) {
        memcpy(out, both, in_len);
        memcpy(aead->tag, both + in_len, tag_len);
    }
    free(both);
    return rv;
}

/* C_DecryptMessage's work once the arguments are checked: in and the tag
 * joined and decrypted into a buffer of Strata's, whose plaintext (in_len
 * bytes) reaches out only once the backend accepted the tag. A refusal
 * the tag explains (message_gcm_tag_check) answers
 * CKR_AEAD_DECRYPT_FAILED; any other keeps the backend's code. */
static CK_RV gcm_decrypt(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const message_aead *aead,
                         CK_GCM_PARAMS *gcm, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                         CK_ULONG_PTR out_len)
{
    CK_MECHANISM mechanism = {CKM_AES_GCM, gcm, sizeof(*gcm)};
    CK_ULONG tag_len = aead->tag_bits / 8, size = in_len + tag_len, len = size;
    CK_BYTE *both = malloc(size), *plain = malloc(size);
    CK_RV rv = CKR_HOST_MEMORY;

    if (both == NULL || plain == NULL) {
        goto out;
    }
    if (in_len > 0) {
        memcpy(both, in, in_len);
    }
    memcpy(both + in_len, aead->tag, tag_len);
    rv = crypto_init(session, ENGINE_OP_DECRYPT, &mechanism, key);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = crypto_single(session, ENGINE_OP_DECRYPT, both, size, plain, &len);
    end_2_40(session, MESSAGE_DECRYPT);
    if (rv == CKR_OK && len != in_len) {
        rv = CKR_GENERAL_ERROR; /* not GCM's length: nothing handed back */
    } else if (rv == CKR_OK) {
        memcpy(out, plain, in_len);
        *out_len = in_len;
    } else if (message_gcm_tag_check(session, key, gcm->pIv, gcm->ulIvLen, gcm->pAAD, gcm->ulAADLen,
                                     in, in_len, aead->tag,
                                     aead->tag_bits) == CKR_AEAD_DECRYPT_FAILED) {
        rv = CKR_AEAD_DECRYPT_FAILED;
    }
out:
    if (plain != NULL) {
        sodium_memzero(plain, size);
    }
    free(plain);
    free(both);
    return rv;
}

/*
 * C_EncryptMessage / C_DecryptMessage (AES-GCM; see the file comment).
 * A NULL out asks for the length (in_len). Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_ARGUMENTS_BAD; CKR_MECHANISM_PARAM_INVALID; CKR_BUFFER_TOO_SMALL
 * (*out_len set); CKR_OPERATION_ACTIVE (the session's C_EncryptInit or
 * C_DecryptInit is active); CKR_HOST_MEMORY; CKR_AEAD_DECRYPT_FAILED (a
 * wrong tag, where message_gcm_tag_check could tell); or the backend's
 * code (SoftHSM2 2.6.1 answers CKR_GENERAL_ERROR to a wrong tag). The
 * operation stays active.
 */
CK_RV message_aead_one(CK_SESSION_HANDLE session, message_kind kind, const message_aead *aead,
                       bool param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in,
                       CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_MECHANISM mechanism;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_GCM_PARAMS gcm;
    bool in_message = false;
    CK_RV rv = active(session, kind, &mechanism, &key, &in_message);

    if (rv != CKR_OK) {
        return rv;
    }
    if (in_message) {
        return CKR_OPERATION_ACTIVE;
    }
    rv = message_aead_check(kind, aead, param_ok, true);
    if (rv != CKR_OK) {
        return rv;
    }
    if (out_len == NULL || (in == NULL && in_len > 0) || (aad == NULL && aad_len > 0)) {
        return CKR_ARGUMENTS_BAD;
    }
    if (out == NULL || *out_len < in_len) {
        rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *out_len = in_len;
        return rv;
    }
    rv = message_gcm_params(session, key, aead, aad, aad_len, &gcm);
    if (rv != CKR_OK) {
        return rv;
    }
    if (kind == MESSAGE_ENCRYPT) {
        rv = gcm_encrypt(session, key, aead, &gcm, in, in_len, out);
        if (rv == CKR_OK) {
            *out_len = in_len;
        }
        return rv;
    }
    return gcm_decrypt(session, key, aead, &gcm, in, in_len, out, out_len);
}

/*
 * C_SignMessage: C_SignInit with the operation's mechanism, then C_Sign.
 * A NULL sig asks for the length. Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_ARGUMENTS_BAD (a per-message parameter; NULL sig_len);
 * CKR_BUFFER_TOO_SMALL; CKR_OPERATION_ACTIVE (C_SignInit active); or
 * crypto_init's and the backend's codes. The operation stays active.
 */
CK_RV message_sign(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                   CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_MECHANISM mechanism;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool in_message = false;
    CK_RV rv = active(session, MESSAGE_SIGN, &mechanism, &key, &in_message);

    if (rv != CKR_OK) {
        return rv;
    }
    if (in_message) {
        return CKR_OPERATION_ACTIVE;
    }
    if (param != NULL || param_len > 0 || sig_len == NULL || (data == NULL && data_len > 0)) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = crypto_init(session, ENGINE_OP_SIGN, &mechanism, key);
    if (rv == CKR_OK) {
        rv = crypto_single(session, ENGINE_OP_SIGN, data, data_len, sig, sig_len);
        end_2_40(session, MESSAGE_SIGN);
    }
    return rv;
}

/*
 * C_VerifyMessage: C_VerifyInit with the operation's mechanism, then
 * C_Verify. Returns CKR_OK; CKR_SIGNATURE_INVALID;
 * CKR_SIGNATURE_LEN_RANGE; CKR_SESSION_HANDLE_INVALID;
 * CKR_OPERATION_NOT_INITIALIZED; CKR_ARGUMENTS_BAD;
 * CKR_OPERATION_ACTIVE (C_VerifyInit active); or crypto_init's and the
 * backend's codes. The operation stays active.
 */
CK_RV message_verify(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                     CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    CK_MECHANISM mechanism;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool in_message = false;
    CK_RV rv = active(session, MESSAGE_VERIFY, &mechanism, &key, &in_message);

    if (rv != CKR_OK) {
        return rv;
    }
    if (in_message) {
        return CKR_OPERATION_ACTIVE;
    }
    if (param != NULL || param_len > 0 || (data == NULL && data_len > 0) ||
        (sig == NULL && sig_len > 0)) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = crypto_init(session, ENGINE_OP_VERIFY, &mechanism, key);
    if (rv == CKR_OK) {
        rv = crypto_verify(session, data, data_len, sig, sig_len);
    }
    return rv;
}

/* Marks the (session, kind) operation in or out of a multi-part message. */
static void set_in_message(CK_SESSION_HANDLE session, message_kind kind, bool in)
{
    message_op **p;

    pthread_mutex_lock(&message_lock);
    p = find_inlock(session, kind);
    if (p != NULL) {
        (*p)->in_message = in;
    }
    pthread_mutex_unlock(&message_lock);
}

/*
 * C_SignMessageBegin / C_VerifyMessageBegin: C_SignInit / C_VerifyInit
 * with the operation's mechanism, kept until the last Next. Returns
 * CKR_OK; CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_OPERATION_ACTIVE (a message under way, or the session's 2.40
 * operation of the kind); CKR_ARGUMENTS_BAD (a per-message parameter);
 * or crypto_init's codes.
 */
CK_RV message_begin(CK_SESSION_HANDLE session, message_kind kind, CK_VOID_PTR param,
                    CK_ULONG param_len)
{
    CK_MECHANISM mechanism;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool in_message = false;
    CK_RV rv = active(session, kind, &mechanism, &key, &in_message);

    if (rv != CKR_OK) {
        return rv;
    }
    if (in_message) {
        return CKR_OPERATION_ACTIVE;
    }
    if (param != NULL || param_len > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = crypto_init(session, kind_op[kind], &mechanism, key);
    if (rv == CKR_OK) {
        set_in_message(session, kind, true);
    }
    return rv;
}

/* The last part of a signed message: the signature into sig, checked for
 * room first, so that a short buffer or a size query leaves the part to
 * be given again (nothing was fed to the backend). */
static CK_RV sign_last(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                       CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_ULONG need = 0;
    CK_RV rv = crypto_final(session, ENGINE_OP_SIGN, NULL, &need);

    if (rv != CKR_OK) {
        return rv;
    }
    if (sig == NULL || *sig_len < need) {
        rv = sig == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *sig_len = need;
        return rv;
    }
    rv = crypto_update(session, ENGINE_OP_SIGN, data, data_len, NULL, NULL);
    if (rv == CKR_OK) {
        rv = crypto_final(session, ENGINE_OP_SIGN, sig, sig_len);
    }
    return rv;
}

/* What every C_SignMessageNext / C_VerifyMessageNext checks first: a
 * message of kind under way, no per-message parameter, data with its
 * length. CKR_OK, or the code to answer. */
static CK_RV next_check(CK_SESSION_HANDLE session, message_kind kind, CK_VOID_PTR param,
                        CK_ULONG param_len, CK_BYTE_PTR data, CK_ULONG data_len)
{
    CK_MECHANISM mechanism;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool in_message = false;
    CK_RV rv = active(session, kind, &mechanism, &key, &in_message);

    if (rv != CKR_OK) {
        return rv;
    }
    if (!in_message) {
        return CKR_OPERATION_NOT_INITIALIZED;
    }
    if (param != NULL || param_len > 0 || (data == NULL && data_len > 0)) {
        return CKR_ARGUMENTS_BAD;
    }
    return CKR_OK;
}

/*
 * C_SignMessageNext: a part (sig_len NULL), or the last part and the
 * signature (a NULL sig asks for its length and keeps the part).
 * Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_OPERATION_NOT_INITIALIZED (no message begun); CKR_ARGUMENTS_BAD;
 * CKR_BUFFER_TOO_SMALL; or the backend's codes (which end the message).
 */
CK_RV message_sign_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                        CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    CK_RV rv = next_check(session, MESSAGE_SIGN, param, param_len, data, data_len);

    if (rv != CKR_OK) {
        return rv;
    }
    if (sig_len == NULL) {
        rv = crypto_update(session, ENGINE_OP_SIGN, data, data_len, NULL, NULL);
    } else {
        rv = sign_last(session, data, data_len, sig, sig_len);
        if (rv == CKR_OK && sig == NULL) {
            return rv; /* a size query: the message goes on */
        }
    }
    if (rv != CKR_BUFFER_TOO_SMALL && (rv != CKR_OK || sig_len != NULL)) {
        end_2_40(session, MESSAGE_SIGN);
        set_in_message(session, MESSAGE_SIGN, false);
    }
    return rv;
}

/*
 * C_VerifyMessageNext: a part (sig NULL), or the last part checked against
 * sig. Returns CKR_OK; CKR_SIGNATURE_INVALID; CKR_SIGNATURE_LEN_RANGE;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED;
 * CKR_ARGUMENTS_BAD; or the backend's codes (which end the message).
 */
CK_RV message_verify_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                          CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    CK_RV rv = next_check(session, MESSAGE_VERIFY, param, param_len, data, data_len);

    if (rv != CKR_OK) {
        return rv;
    }
    rv = crypto_update(session, ENGINE_OP_VERIFY, data, data_len, NULL, NULL);
    if (rv == CKR_OK && sig != NULL) {
        rv = crypto_verify_final(session, sig, sig_len);
    }
    if (rv != CKR_OK || sig != NULL) {
        end_2_40(session, MESSAGE_VERIFY);
        set_in_message(session, MESSAGE_VERIFY, false);
    }
    return rv;
}

/* C_Message{Encrypt,Decrypt,Sign,Verify}Final: also ends a message under
 * way. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_OPERATION_NOT_INITIALIZED. */
CK_RV message_final(CK_SESSION_HANDLE session, message_kind kind)
{
    CK_MECHANISM mechanism;
    CK_OBJECT_HANDLE key;
    bool in_message = false;
    CK_RV rv = active(session, kind, &mechanism, &key, &in_message);

    if (rv == CKR_OK) {
        message_cancel(session, kind);
    }
    return rv;
}
