/*
 * message_parts.c - AES-GCM messages in parts (PKCS#11 3.0
 * C_EncryptMessageBegin/Next, C_DecryptMessageBegin/Next), emulated over
 * the backends' 2.40 multi-part functions through crypto.c.
 *
 * Begin is C_EncryptInit/C_DecryptInit(CKM_AES_GCM with the message's IV,
 * AAD and tag length); each Next is C_EncryptUpdate/C_DecryptUpdate; the
 * Next with CKF_END_OF_MESSAGE adds C_EncryptFinal, whose tag goes into
 * that Next's CK_GCM_MESSAGE_PARAMS, or feeds that parameter's tag to
 * C_DecryptUpdate and ends with C_DecryptFinal, which checks it.
 *
 * No part is given to the backend before its room is known to be
 * enough, so a size query (NULL out) or CKR_BUFFER_TOO_SMALL leaves the
 * part to be given again:
 *   - a middle part: the backend is asked first (the 2.40 update with a
 *     NULL output), then the part goes in;
 *   - the last part: GCM gives exactly as many output bytes as input, so
 *     what is still owed is what this message took minus what it gave
 *     back; the backend's last update and final go into a buffer of
 *     Strata's (wiped), and only a whole, checked result reaches out.
 * Decryption releases no plaintext before the tag is checked, whatever
 * the backend does: a middle part's output is always empty (what the
 * backend gives back is held, wiped, in message.c's record with the
 * ciphertext, IV and AAD), and the last part hands back the whole message
 * once C_DecryptFinal accepted the tag. A refusal that a wrong tag explains
 * (message_gcm_tag_check over the whole ciphertext) answers
 * CKR_AEAD_DECRYPT_FAILED. (SoftHSM2 2.6.1 holds its plaintext back until
 * C_DecryptFinal too, and answers CKR_GENERAL_ERROR to a wrong tag.)
 *
 * An error other than a size query or a short buffer ends the message
 * (not the message operation: a new Begin may follow).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ops.h"

/* The 2.40 operation of each AEAD kind (MESSAGE_ENCRYPT, MESSAGE_DECRYPT). */
static engine_op part_op(message_kind kind)
{
    return kind == MESSAGE_ENCRYPT ? ENGINE_OP_ENCRYPT : ENGINE_OP_DECRYPT;
}

/*
 * C_EncryptMessageBegin / C_DecryptMessageBegin. Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED (no
 * C_MessageEncryptInit/C_MessageDecryptInit); CKR_OPERATION_ACTIVE (a
 * message under way, or the session's C_EncryptInit/C_DecryptInit);
 * CKR_ARGUMENTS_BAD; CKR_MECHANISM_PARAM_INVALID; or crypto_init's codes.
 */
CK_RV message_aead_begin(CK_SESSION_HANDLE session, message_kind kind, const message_aead *aead,
                         bool param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len)
{
    message_part part;
    CK_GCM_PARAMS gcm;
    CK_MECHANISM mechanism = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_RV rv = message_part_get(session, kind, &part);

    if (rv != CKR_OK) {
        return rv;
    }
    if (part.in_message) {
        return CKR_OPERATION_ACTIVE;
    }
    rv = message_aead_check(kind, aead, param_ok, false); /* the tag comes with the last part */
    if (rv != CKR_OK) {
        return rv;
    }
    if (aad == NULL && aad_len > 0) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = message_gcm_params(session, part.key, aead, aad, aad_len, &gcm);
    if (rv != CKR_OK) {
        return rv;
    }
    message_held_wipe(part.held);
    if (kind == MESSAGE_DECRYPT) {
        rv = message_buf_add(&part.held->iv, aead->iv, aead->iv_len);
        if (rv == CKR_OK) {
            rv = message_buf_add(&part.held->aad, aad, aad_len);
        }
        if (rv != CKR_OK) {
            return rv;
        }
    }
    rv = crypto_init(session, part_op(kind), &mechanism, part.key);
    if (rv == CKR_OK) {
        part.in_message = true;
        part.fed = 0;
        part.released = 0;
        part.tag_bits = aead->tag_bits;
        message_part_set(session, kind, &part);
    }
    return rv;
}

/* A middle part: the backend's room asked first, then the part fed. */
static CK_RV part_middle(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                         CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_ULONG need = 0;
    CK_RV rv = crypto_update(session, op, in, in_len, NULL, &need);

    if (rv != CKR_OK) {
        return rv;
    }
    if (out == NULL || *out_len < need) {
        rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *out_len = need;
        return rv;
    }
    return crypto_update(session, op, in, in_len, out, out_len);
}

/* One 2.40 update of in (final: the final) into g, its size asked first. */
static CK_RV gather(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    bool final, message_buf *g)
{
    CK_ULONG len = 0;
    CK_RV rv = final ? crypto_final(session, op, NULL, &len)
                     : crypto_update(session, op, in, in_len, NULL, &len);

    if (rv == CKR_OK) {
        rv = message_buf_room(g, len > 0 ? len : 1);
    }
    if (rv != CKR_OK) {
        return rv;
    }
    len = g->cap - g->used;
    rv = final ? crypto_final(session, op, g->buf + g->used, &len)
               : crypto_update(session, op, in, in_len, g->buf + g->used, &len);
    if (rv == CKR_OK) {
        g->used += len;
    }
    return rv;
}

/* The last part of an encrypted message: need (what the message still
 * owes) bytes into out and the tag into aead->tag. */
static CK_RV encrypt_last(CK_SESSION_HANDLE session, const message_part *part,
                          const message_aead *aead, CK_BYTE_PTR in, CK_ULONG in_len,
                          CK_BYTE_PTR out, CK_ULONG need)
{
    CK_ULONG tag_len = part->tag_bits / 8;
    message_buf g = {0};
    CK_RV rv = gather(session, ENGINE_OP_ENCRYPT, in, in_len, false, &g);

    if (rv == CKR_OK) {
        rv = gather(session, ENGINE_OP_ENCRYPT, NULL, 0, true, &g);
    }
    if (rv == CKR_OK && g.used != need + tag_len) {
        rv = CKR_GENERAL_ERROR; /* not GCM's lengths: nothing handed back */
    }
    if (rv == CKR_OK) {
        if (need > 0) {
            memcpy(out, g.buf, need);
        }
        memcpy(aead->tag, g.buf + need, tag_len);
    }
    message_buf_wipe(&g);
    return rv;
}

/* A middle part of a decrypted message: fed to the backend, whatever
 * plaintext it gives back held (wiped later) until the last part has
 * checked the tag, so the part's output is always empty. */
static CK_RV decrypt_middle(CK_SESSION_HANDLE session, const message_part *part, CK_BYTE_PTR in,
                            CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    CK_RV rv;

    if (out == NULL) {
        *out_len = 0; /* a size query: nothing is given back before the tag */
        return CKR_OK;
    }
    rv = message_buf_add(&part->held->ct, in, in_len);
    if (rv == CKR_OK) {
        rv = gather(session, ENGINE_OP_DECRYPT, in, in_len, false, &part->held->plain);
    }
    if (rv == CKR_OK) {
        *out_len = 0;
    }
    return rv;
}

/* The last part of a decrypted message: the part and the tag fed, the
 * final call checking the tag, and only then the whole plaintext (need
 * bytes, held and new) into out. A refusal the tag explains
 * (message_gcm_tag_check over the whole ciphertext) answers
 * CKR_AEAD_DECRYPT_FAILED. */
static CK_RV decrypt_last(CK_SESSION_HANDLE session, const message_part *part,
                          const message_aead *aead, CK_BYTE_PTR in, CK_ULONG in_len,
                          CK_BYTE_PTR out, CK_ULONG need)
{
    message_held *held = part->held;
    CK_RV rv = message_buf_add(&held->ct, in, in_len);

    if (rv != CKR_OK) {
        return rv;
    }
    rv = gather(session, ENGINE_OP_DECRYPT, in, in_len, false, &held->plain);
    if (rv == CKR_OK) {
        rv = gather(session, ENGINE_OP_DECRYPT, aead->tag, part->tag_bits / 8, false, &held->plain);
    }
    if (rv == CKR_OK) {
        rv = gather(session, ENGINE_OP_DECRYPT, NULL, 0, true, &held->plain);
    }
    if (rv == CKR_OK && held->plain.used != need) {
        rv = CKR_GENERAL_ERROR; /* not GCM's lengths: nothing handed back */
    } else if (rv == CKR_OK) {
        if (need > 0) {
            memcpy(out, held->plain.buf, need);
        }
    } else {
        message_end_2_40(session, MESSAGE_DECRYPT);
        if (message_gcm_tag_check(session, part->key, held->iv.buf, held->iv.used, held->aad.buf,
                                  held->aad.used, held->ct.buf, held->ct.used, aead->tag,
                                  part->tag_bits) == CKR_AEAD_DECRYPT_FAILED) {
            rv = CKR_AEAD_DECRYPT_FAILED;
        }
    }
    return rv;
}

/* The checks of every Next before any work. CKR_OK or the code. */
static CK_RV next_check(const message_part *part, const message_aead *aead, bool param_ok,
                        CK_BYTE_PTR in, CK_ULONG in_len, CK_ULONG_PTR out_len, bool last)
{
    if (!part->in_message) {
        return CKR_OPERATION_NOT_INITIALIZED;
    }
    if (out_len == NULL || (in == NULL && in_len > 0)) {
        return CKR_ARGUMENTS_BAD;
    }
    if (last && aead == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (last && (!param_ok || aead->tag == NULL || aead->tag_bits != part->tag_bits)) {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (in_len > ULONG_MAX - part->fed) {
        return CKR_DATA_LEN_RANGE;
    }
    return CKR_OK;
}

/*
 * C_EncryptMessageNext / C_DecryptMessageNext (last: CKF_END_OF_MESSAGE).
 * A NULL out asks for the length and keeps the part. Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED (no message
 * begun, or it ended); CKR_ARGUMENTS_BAD; CKR_MECHANISM_PARAM_INVALID (the
 * last part's parameter not a CK_GCM_MESSAGE_PARAMS, or its tag length not
 * Begin's); CKR_DATA_LEN_RANGE;
 * CKR_BUFFER_TOO_SMALL (*out_len set); CKR_HOST_MEMORY; or the backend's
 * code (a wrong tag: CKR_GENERAL_ERROR on SoftHSM2 2.6.1).
 */
CK_RV message_aead_next(CK_SESSION_HANDLE session, message_kind kind, const message_aead *aead,
                        bool param_ok, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len, bool last)
{
    message_part part;
    CK_ULONG need;
    CK_RV rv = message_part_get(session, kind, &part);

    if (rv == CKR_OK) {
        rv = next_check(&part, aead, param_ok, in, in_len, out_len, last);
    }
    if (rv != CKR_OK) {
        return rv;
    }
    if (!last) {
        rv = kind == MESSAGE_DECRYPT
                 ? decrypt_middle(session, &part, in, in_len, out, out_len)
                 : part_middle(session, ENGINE_OP_ENCRYPT, in, in_len, out, out_len);
        if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && out == NULL)) {
            return rv;
        }
        if (rv == CKR_OK) {
            part.fed += in_len;
            part.released += *out_len;
            message_part_set(session, kind, &part);
            return rv;
        }
    } else if (part.released > part.fed) {
        rv = CKR_GENERAL_ERROR; /* a backend that gave more than GCM can */
    } else {
        need = part.fed + in_len - part.released;
        if (out == NULL || *out_len < need) {
            rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
            *out_len = need;
            return rv;
        }
        rv = kind == MESSAGE_DECRYPT ? decrypt_last(session, &part, aead, in, in_len, out, need)
                                     : encrypt_last(session, &part, aead, in, in_len, out, need);
        if (rv == CKR_OK) {
            *out_len = need;
        }
    }
    message_held_wipe(part.held);
    message_end_2_40(session, kind);
    part.in_message = false;
    message_part_set(session, kind, &part);
    return rv;
}
