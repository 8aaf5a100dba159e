/*
 * wrap.c - which mechanisms carry a key from one backend token to another
 * (for transfer.c), chosen from what the two tokens list.
 *
 * A wrapped transfer has two mechanisms. The carry: an RSA mechanism that
 * the source wraps with under the public half of a transient key pair
 * made on the target, and the target unwraps with; it carries one
 * transient AES key, or a secret key itself when there is no wrap. The
 * wrap: an AES mechanism that wraps each private or secret key under that
 * transient AES key. Measured on Debian 12 (pkcs11-tool -M and a probe of
 * C_WrapKey/C_UnwrapKey, docs/backends.md):
 *
 * - SoftHSM2 2.6.1 wraps with AES-KEY-WRAP(-PAD), AES-CBC (whole blocks
 *   only), RSA-PKCS and RSA-OAEP (SHA-1 and MGF1-SHA1 only: SHA-256 is
 *   CKR_ARGUMENTS_BAD), and unwraps with AES-KEY-WRAP(-PAD), RSA-PKCS and
 *   RSA-OAEP only: not with AES-CBC-PAD.
 * - openCryptoki 3.8.1's soft token wraps and unwraps with AES-ECB/CBC/
 *   CBC-PAD, DES, RSA-PKCS, RSA-X-509 and RSA-OAEP (SHA-1 and SHA-256),
 *   not with AES-KEY-WRAP(-PAD).
 * - tpm2-pkcs11 1.9 lists no mechanism that wraps or unwraps.
 *
 * So the wrap is AES-KEY-WRAP-PAD (RFC 5649: an integrity check) where
 * both do it, else AES-CBC-PAD with a fresh random IV from the source.
 * CBC-PAD checks no integrity; the wrapped blob never leaves this
 * process's memory, and every moved key is tested afterwards
 * (transfer.c's verification), so a damaged blob shows as a failed move.
 * The carry is RSA-OAEP with SHA-1 (the one every token here takes), else
 * RSA-OAEP with SHA-256, else RSA-PKCS (v1.5: its padding oracle needs an
 * attacker who can ask the target to unwrap chosen blobs; the transient
 * private key is a sensitive session object destroyed at the end of the
 * run, and no blob leaves the process).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "layers.h"

#define IV_LEN 16 /* AES-CBC-PAD's IV, before the ciphertext in a blob */

/* The carries, best first; a plan's carries has bit i for carries[i]. */
static const struct {
    CK_MECHANISM_TYPE type;
    CK_MECHANISM_TYPE hash; /* OAEP's hash (0 for RSA-PKCS) */
    CK_RSA_PKCS_MGF_TYPE mgf;
    const char *name;
} carries[] = {
    {CKM_RSA_PKCS_OAEP, CKM_SHA_1, CKG_MGF1_SHA1, "RSA-OAEP"},
    {CKM_RSA_PKCS_OAEP, CKM_SHA256, CKG_MGF1_SHA256, "RSA-OAEP-SHA256"},
    {CKM_RSA_PKCS, 0, 0, "RSA-PKCS"},
};
#define N_CARRIES (sizeof(carries) / sizeof(carries[0]))

/* The wraps, best first. */
static const CK_MECHANISM_TYPE wraps[] = {CKM_AES_KEY_WRAP_PAD, CKM_AES_CBC_PAD};

CK_RV layers_mechs_read(const layers_side *side, layers_mechs *out)
{
    CK_SESSION_INFO si;
    CK_MECHANISM_TYPE *types = NULL;
    CK_ULONG n = 0;
    CK_RV rv = side->p11->C_GetSessionInfo(side->session, &si);

    memset(out, 0, sizeof(*out));
    if (rv == CKR_OK) {
        rv = side->p11->C_GetMechanismList(si.slotID, NULL, &n);
    }
    if (rv != CKR_OK || n == 0) {
        return rv;
    }
    types = calloc(n, sizeof(*types));
    out->m = calloc(n, sizeof(*out->m));
    rv = CKR_HOST_MEMORY;
    if (types == NULL || out->m == NULL) {
        goto out;
    }
    rv = side->p11->C_GetMechanismList(si.slotID, types, &n);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        CK_MECHANISM_INFO mi;
        /* Only listed mechanisms are asked about: tpm2-pkcs11 prints an
         * error for any other. */
        if (side->p11->C_GetMechanismInfo(si.slotID, types[i], &mi) == CKR_OK) {
            out->m[out->n++] = (layers_mech){types[i], mi.flags};
        }
    }
out:
    free(types);
    if (rv != CKR_OK) {
        layers_mechs_free(out);
    }
    return rv;
}

void layers_mechs_free(layers_mechs *m)
{
    free(m->m);
    memset(m, 0, sizeof(*m));
}

/* Whether list holds type with every bit of flags. */
static bool lists(const layers_mechs *list, CK_MECHANISM_TYPE type, CK_FLAGS flags)
{
    for (size_t i = 0; i < list->n; i++) {
        if (list->m[i].type == type) {
            return (list->m[i].flags & flags) == flags;
        }
    }
    return false;
}

/* Whether the source wraps with type and the target unwraps with it. */
static bool common(const layers_mechs *source, const layers_mechs *target, CK_MECHANISM_TYPE type)
{
    return lists(source, type, CKF_WRAP) && lists(target, type, CKF_UNWRAP);
}

bool layers_wrap_choose(const layers_mechs *source, const layers_mechs *target, CK_OBJECT_CLASS cls,
                        layers_wrap_plan *plan, const char **why)
{
    memset(plan, 0, sizeof(*plan));
    plan->chosen = true;
    *why = NULL;
    if (lists(target, CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR)) {
        for (size_t i = 0; i < N_CARRIES; i++) {
            if (common(source, target, carries[i].type)) {
                plan->carries |= 1u << i;
            }
        }
    }
    if (plan->carries == 0) {
        *why = "no common wrapping mechanism: the source wraps with neither RSA-OAEP nor "
               "RSA-PKCS what the target unwraps under an RSA key pair it makes";
        return false;
    }
    while ((plan->carries & (1u << plan->carry)) == 0) {
        plan->carry++;
    }
    for (size_t i = 0; i < sizeof(wraps) / sizeof(wraps[0]) && plan->wrap == 0; i++) {
        if (lists(source, CKM_AES_KEY_GEN, CKF_GENERATE) && common(source, target, wraps[i])) {
            plan->wrap = wraps[i];
        }
    }
    if (plan->wrap == 0 && cls != CKO_SECRET_KEY) {
        *why = "no common wrapping mechanism: the source wraps with neither "
               "CKM_AES_KEY_WRAP_PAD nor CKM_AES_CBC_PAD what the target unwraps";
        return false;
    }
    return true;
}

/* The AES mechanism that wraps keys under plan (0: none, direct). */
static CK_MECHANISM_TYPE wrap_of(const layers_wrap_plan *plan)
{
    return plan->chosen ? plan->wrap : CKM_AES_KEY_WRAP_PAD;
}

bool layers_wrap_direct(const layers_wrap_plan *plan)
{
    return wrap_of(plan) == 0;
}

bool layers_wrap_next_carry(layers_wrap_plan *plan)
{
    for (unsigned i = plan->carry + 1; i < N_CARRIES; i++) {
        if (plan->carries & (1u << i)) {
            plan->carry = i;
            return true;
        }
    }
    return false;
}

const char *layers_wrap_name(const layers_wrap_plan *plan, CK_OBJECT_CLASS cls)
{
    if (layers_wrap_direct(plan)) {
        return cls == CKO_SECRET_KEY ? carries[plan->carry].name : "none";
    }
    return wrap_of(plan) == CKM_AES_KEY_WRAP_PAD ? "AES-KEY-WRAP-PAD" : "AES-CBC-PAD";
}

void layers_wrap_carry(const layers_wrap_plan *plan, CK_MECHANISM *mech,
                       CK_RSA_PKCS_OAEP_PARAMS *oaep)
{
    unsigned i = plan->carry < N_CARRIES ? plan->carry : 0;

    *oaep = (CK_RSA_PKCS_OAEP_PARAMS){carries[i].hash, carries[i].mgf, CKZ_DATA_SPECIFIED, NULL, 0};
    *mech = (CK_MECHANISM){carries[i].type, NULL, 0};
    if (carries[i].type == CKM_RSA_PKCS_OAEP) {
        mech->pParameter = oaep;
        mech->ulParameterLen = sizeof(*oaep);
    }
}

/* Wraps key with wrapping on source under mech into *blob (malloc'd, *len),
 * with room for before bytes ahead of the wrapped key. */
static CK_RV wrap_into(const layers_side *source, CK_MECHANISM *mech, CK_OBJECT_HANDLE wrapping,
                       CK_OBJECT_HANDLE key, size_t before, unsigned char **blob, CK_ULONG *len)
{
    CK_ULONG n = 0;
    CK_RV rv = source->p11->C_WrapKey(source->session, mech, wrapping, key, NULL, &n);

    *blob = NULL;
    *len = 0;
    if (rv != CKR_OK) {
        return rv;
    }
    *blob = malloc(before + n + 1);
    if (*blob == NULL) {
        return CKR_HOST_MEMORY;
    }
    rv = source->p11->C_WrapKey(source->session, mech, wrapping, key, *blob + before, &n);
    *len = rv == CKR_OK ? (CK_ULONG)before + n : 0;
    if (rv != CKR_OK) {
        free(*blob);
        *blob = NULL;
    }
    return rv;
}

CK_RV layers_wrap_key(const layers_side *source, const layers_transport *tr, CK_OBJECT_HANDLE s,
                      unsigned char **blob, CK_ULONG *len)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    unsigned char iv[IV_LEN];
    CK_MECHANISM mech = {wrap_of(&tr->plan), NULL, 0};
    CK_RV rv;

    *blob = NULL;
    *len = 0;
    if (layers_wrap_direct(&tr->plan)) {
        /* A secret key, under the carry itself. */
        layers_wrap_carry(&tr->plan, &mech, &oaep);
        return wrap_into(source, &mech, tr->source_public, s, 0, blob, len);
    }
    if (mech.mechanism != CKM_AES_CBC_PAD) {
        return wrap_into(source, &mech, tr->source_aes, s, 0, blob, len);
    }
    rv = source->p11->C_GenerateRandom(source->session, iv, IV_LEN);
    if (rv != CKR_OK) {
        return rv;
    }
    mech.pParameter = iv;
    mech.ulParameterLen = IV_LEN;
    rv = wrap_into(source, &mech, tr->source_aes, s, IV_LEN, blob, len);
    if (rv == CKR_OK) {
        memcpy(*blob, iv, IV_LEN);
    }
    return rv;
}

CK_RV layers_unwrap_key(const layers_side *target, const layers_transport *tr,
                        const unsigned char *blob, CK_ULONG len, const CK_ATTRIBUTE *templ,
                        CK_ULONG count, CK_OBJECT_HANDLE *out)
{
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    unsigned char iv[IV_LEN];
    CK_MECHANISM mech = {wrap_of(&tr->plan), NULL, 0};
    CK_OBJECT_HANDLE with = tr->target_aes;

    if (layers_wrap_direct(&tr->plan)) {
        layers_wrap_carry(&tr->plan, &mech, &oaep);
        with = tr->target_private;
    } else if (mech.mechanism == CKM_AES_CBC_PAD) {
        if (len < IV_LEN) {
            return CKR_WRAPPED_KEY_LEN_RANGE;
        }
        memcpy(iv, blob, IV_LEN);
        mech.pParameter = iv;
        mech.ulParameterLen = IV_LEN;
        blob += IV_LEN;
        len -= IV_LEN;
    }
    return target->p11->C_UnwrapKey(target->session, &mech, with, (CK_BYTE_PTR)blob, len,
                                    (CK_ATTRIBUTE_PTR)templ, count, out);
}
