/*
 * message_gcm.c - what AES-GCM messages (message.c, message_parts.c) share
 * below them: their parameters checked and turned into the 2.40
 * CK_GCM_PARAMS, the IVs the 3.0 generators make (CKG_GENERATE_RANDOM from
 * the token's C_GenerateRandom, CKG_GENERATE_COUNTER from a counter per
 * session and key), one 2.40 GCM operation through crypto.c, the check of
 * a refused tag (CKR_AEAD_DECRYPT_FAILED only where the tag is the cause),
 * and the wiped buffers a message in parts keeps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ops.h"

/* See ops.h. */
CK_RV message_buf_room(message_buf *b, CK_ULONG more)
{
    CK_BYTE *bigger;

    if (more <= b->cap - b->used) {
        return CKR_OK;
    }
    if (more > ULONG_MAX - b->used) {
        return CKR_HOST_MEMORY;
    }
    bigger = malloc(b->used + more);
    if (bigger == NULL) {
        return CKR_HOST_MEMORY;
    }
    if (b->used > 0) {
        memcpy(bigger, b->buf, b->used);
    }
    if (b->buf != NULL) {
        sodium_memzero(b->buf, b->cap);
        free(b->buf);
    }
    b->buf = bigger;
    b->cap = b->used + more;
    return CKR_OK;
}

/* See ops.h. */
CK_RV message_buf_add(message_buf *b, const CK_BYTE *data, CK_ULONG len)
{
    CK_RV rv = message_buf_room(b, len > 0 ? len : 1);

    if (rv == CKR_OK && len > 0) {
        memcpy(b->buf + b->used, data, len);
        b->used += len;
    }
    return rv;
}

/* See ops.h. */
void message_buf_wipe(message_buf *b)
{
    if (b->buf != NULL) {
        sodium_memzero(b->buf, b->cap);
        free(b->buf);
    }
    memset(b, 0, sizeof(*b));
}

/* See ops.h. */
void message_held_wipe(message_held *held)
{
    message_buf_wipe(&held->iv);
    message_buf_wipe(&held->aad);
    message_buf_wipe(&held->ct);
    message_buf_wipe(&held->plain);
}

/* The IV counters of CKG_GENERATE_COUNTER: one per (session, key), kept
 * until the session ends, whatever message operations come and go, so an
 * IV is never made twice for a key in a session. Guarded by the counter lock C, a leaf. */
typedef struct iv_counter {
    struct iv_counter *next;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key; /* virtual */
    uint64_t value;       /* the next one to give */
    bool spent;           /* all 2^64 given */
} iv_counter;

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER; /* C */
static iv_counter *counters;                                     /* C */

/* See ops.h. */
void message_gcm_forget(CK_SESSION_HANDLE session)
{
    iv_counter **p = &counters, *gone;

    pthread_mutex_lock(&counter_lock);
    while (*p != NULL) {
        if ((*p)->session == session) {
            gone = *p;
            *p = gone->next;
            free(gone);
        } else {
            p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&counter_lock);
}

/* Takes the next value of (session, key)'s counter if it fits in bits
 * bits: CKR_OK; CKR_MECHANISM_PARAM_INVALID (exhausted: no value of that
 * width is left, and none is given twice); CKR_HOST_MEMORY. Takes C. */
static CK_RV counter_take(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, CK_ULONG bits,
                          uint64_t *value)
{
    iv_counter *c;
    CK_RV rv = CKR_HOST_MEMORY;

    pthread_mutex_lock(&counter_lock);
    for (c = counters; c != NULL && (c->session != session || c->key != key); c = c->next) {
    }
    if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
        c->session = session;
        c->key = key;
        c->next = counters;
        counters = c;
    }
    if (c != NULL) {
        rv = CKR_MECHANISM_PARAM_INVALID;
        if (!c->spent && (bits >= 64 || c->value >> bits == 0)) {
            *value = c->value++;
            c->spent = c->value == 0;
            rv = CKR_OK;
        }
    }
    pthread_mutex_unlock(&counter_lock);
    return rv;
}

/* Writes gen over the IV's bits after its first fixed_bits (counted from
 * the most significant bit of iv[0]); gen holds iv_len - fixed_bits / 8
 * bytes, and the bits of its first byte that are fixed are ignored. */
static void iv_write(const message_aead *aead, const CK_BYTE *gen)
{
    CK_ULONG off = aead->iv_fixed_bits / 8;
    CK_BYTE mask = (CK_BYTE)(0xffu >> (aead->iv_fixed_bits % 8));

    aead->iv[off] = (CK_BYTE)((aead->iv[off] & ~mask) | (gen[0] & mask));
    if (aead->iv_len - off > 1) {
        memcpy(aead->iv + off + 1, gen + 1, aead->iv_len - off - 1);
    }
}

/* Makes the IV bits after the fixed ones: CKG_GENERATE_RANDOM from the
 * token's C_GenerateRandom (a backend's, through crypto.c),
 * CKG_GENERATE_COUNTER from (session, key)'s counter, big-endian in the
 * IV's last bits. CKR_OK; CKR_MECHANISM_PARAM_INVALID (counter exhausted);
 * CKR_HOST_MEMORY; or C_GenerateRandom's code. */
static CK_RV iv_generate(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const message_aead *aead)
{
    CK_ULONG n = aead->iv_len - aead->iv_fixed_bits / 8;
    CK_BYTE *gen = calloc(1, n);
    uint64_t value = 0;
    CK_RV rv = CKR_HOST_MEMORY;

    if (gen == NULL) {
        return rv;
    }
    if (aead->generator == MESSAGE_IV_RANDOM) {
        rv = crypto_generate_random(session, gen, n);
    } else {
        rv = counter_take(session, key, aead->iv_len * 8 - aead->iv_fixed_bits, &value);
        for (CK_ULONG i = 0; rv == CKR_OK && i < n && i < 8; i++) {
            gen[n - 1 - i] = (CK_BYTE)(value >> (8 * i));
        }
    }
    if (rv == CKR_OK) {
        iv_write(aead, gen);
    }
    free(gen);
    return rv;
}

/* See ops.h. */
CK_RV message_gcm_params(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const message_aead *aead,
                         CK_BYTE_PTR aad, CK_ULONG aad_len, CK_GCM_PARAMS *gcm)
{
    if (aead->generator != MESSAGE_IV_GIVEN) {
        CK_RV rv = iv_generate(session, key, aead);

        if (rv != CKR_OK) {
            return rv;
        }
    }
    gcm->pIv = aead->iv;
    gcm->ulIvLen = aead->iv_len;
    gcm->ulIvBits = aead->iv_len * 8;
    gcm->pAAD = aad;
    gcm->ulAADLen = aad_len;
    gcm->ulTagBits = aead->tag_bits;
    return CKR_OK;
}

/* Checks one message's AEAD parameters (need_tag: the call uses pTag).
 * CKR_OK; CKR_ARGUMENTS_BAD (no parameter); CKR_MECHANISM_PARAM_INVALID
 * (not a CK_GCM_MESSAGE_PARAMS; no IV; no tag buffer where one is needed;
 * a tag length not in whole bytes from 8 to 128 bits; a generator Strata
 * does not emulate, or any generator when decrypting; a generator with no
 * IV bit left after the fixed ones). */
CK_RV message_aead_check(message_kind kind, const message_aead *aead, bool param_ok, bool need_tag)
{
    if (aead == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (!param_ok || aead->iv == NULL || aead->iv_len == 0 || (need_tag && aead->tag == NULL)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (aead->tag_bits == 0 || aead->tag_bits % 8 != 0 || aead->tag_bits > 128) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (aead->generator == MESSAGE_IV_OTHER ||
        (kind == MESSAGE_DECRYPT && aead->generator != MESSAGE_IV_GIVEN)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (aead->generator != MESSAGE_IV_GIVEN &&
        (aead->iv_len > ULONG_MAX / 8 || aead->iv_fixed_bits >= aead->iv_len * 8)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    return CKR_OK;
}

/* See ops.h. */
CK_RV message_gcm_once(CK_SESSION_HANDLE session, engine_op op, CK_OBJECT_HANDLE key,
                       CK_GCM_PARAMS *gcm, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                       CK_ULONG_PTR out_len)
{
    CK_MECHANISM mechanism = {CKM_AES_GCM, gcm, sizeof(*gcm)};
    CK_RV rv = crypto_init(session, op, &mechanism, key);

    if (rv != CKR_OK) {
        return rv;
    }
    rv = crypto_single(session, op, in, in_len, out, out_len);
    (void)session_cancel(session, 1u << op, false, 0);
    return rv;
}

/* The two GCM encryptions of message_gcm_tag_check, out of the way. */
static CK_RV tag_of(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, CK_GCM_PARAMS *gcm,
                    CK_BYTE_PTR ct, CK_ULONG ct_len, CK_BYTE *plain, CK_BYTE *again)
{
    CK_ULONG tag_len = gcm->ulTagBits / 8, len = ct_len + tag_len;
    CK_BYTE_PTR aad = gcm->pAAD;
    CK_ULONG aad_len = gcm->ulAADLen;
    CK_RV rv;

    gcm->pAAD = NULL;
    gcm->ulAADLen = 0;
    rv = message_gcm_once(session, ENGINE_OP_ENCRYPT, key, gcm, ct, ct_len, plain, &len);
    if (rv != CKR_OK || len != ct_len + tag_len) {
        return rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
    }
    gcm->pAAD = aad;
    gcm->ulAADLen = aad_len;
    len = ct_len + tag_len;
    rv = message_gcm_once(session, ENGINE_OP_ENCRYPT, key, gcm, plain, ct_len, again, &len);
    if (rv == CKR_OK &&
        (len != ct_len + tag_len || (ct_len > 0 && memcmp(again, ct, ct_len) != 0))) {
        rv = CKR_GENERAL_ERROR; /* not GCM as it should be: no verdict */
    }
    return rv;
}

/*
 * See ops.h. GCM encrypts by XOR with a keystream that depends on the key
 * and IV only, so encrypting ct under the same IV gives its plaintext;
 * encrypting that plaintext again with the AAD gives ct back and ct's
 * right tag, compared (constant time) with tag. Both runs are the
 * session's 2.40 C_EncryptInit + C_Encrypt through crypto.c, so a key
 * that may not encrypt, a rule that denies it or the session's encryption
 * being busy leave no verdict. The plaintext never leaves Strata: it is
 * wiped. Expects the session's 2.40 decryption ended.
 */
CK_RV message_gcm_tag_check(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, CK_BYTE_PTR iv,
                            CK_ULONG iv_len, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR ct,
                            CK_ULONG ct_len, const CK_BYTE *tag, CK_ULONG tag_bits)
{
    CK_GCM_PARAMS gcm = {iv, iv_len, iv_len * 8, aad, aad_len, tag_bits};
    CK_ULONG tag_len = tag_bits / 8, size = ct_len + tag_len;
    CK_BYTE *plain = malloc(size), *again = malloc(size);
    CK_RV rv = CKR_HOST_MEMORY;

    if (plain == NULL || again == NULL || tag_len == 0) {
        goto out;
    }
    rv = tag_of(session, key, &gcm, ct, ct_len, plain, again);
    if (rv == CKR_OK) {
        rv = sodium_memcmp(again + ct_len, tag, tag_len) == 0 ? CKR_OK : CKR_AEAD_DECRYPT_FAILED;
    }
out:
    if (plain != NULL) {
        sodium_memzero(plain, size);
    }
    if (again != NULL) {
        sodium_memzero(again, size);
    }
    free(plain);
    free(again);
    return rv;
}
