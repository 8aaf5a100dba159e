/*
 * transfer.c - moving one object from one backend token to another (strata
 * migrate, and the engine's copy-up for C_CopyObject): its attributes, its
 * match on the target, a copy by attributes or a wrapped transfer, and the
 * verification of the copy.
 *
 * Keys travel wrapped and never in clear outside a backend: one transient
 * AES-256 key is generated on the source per run and carried to the
 * target under a transient RSA key pair made on the target (its public
 * half imported on the source as a session object); each private or
 * secret key is then wrapped on the source under it and unwrapped on the
 * target with the key's copyable attributes. Which mechanisms (RSA-OAEP
 * or RSA-PKCS; AES-KEY-WRAP-PAD or AES-CBC-PAD; a secret key under the RSA
 * key itself when the tokens share no AES wrap) is wrap.c's choice, from
 * what both tokens list. The transient keys are session objects,
 * sensitive, and destroyed at the end.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

/* ---------------------------------------------------------------------
 * Attributes
 * ------------------------------------------------------------------ */

const CK_ATTRIBUTE_TYPE layers_head_types[] = {
    /* the engine's identity attributes, in its order (engine/handles.c) */
    CKA_CLASS,
    CKA_ID,
    CKA_LABEL,
    CKA_KEY_TYPE,
    CKA_CERTIFICATE_TYPE,
    CKA_SERIAL_NUMBER,
    CKA_ISSUER,
    /* what decides how it moves */
    CKA_TOKEN,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_APPLICATION,
    CKA_OBJECT_ID,
    CKA_SIGN,
    CKA_DECRYPT,
    CKA_ENCRYPT,
    CKA_ALWAYS_AUTHENTICATE,
};
const size_t layers_n_head_types = sizeof(layers_head_types) / sizeof(layers_head_types[0]);

/* What a copy carries, per class: every attribute a C_CreateObject or
 * C_UnwrapKey template may hold (PKCS#11 v2.40 §4), never one the token
 * computes (CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_KEY_GEN_MECHANISM, ...)
 * nor CKA_TRUSTED, which only the SO may set. Keys that travel wrapped get
 * their value and public components from the wrapped blob. */
static const CK_ATTRIBUTE_TYPE copy_common[] = {
    CKA_CLASS, CKA_PRIVATE, CKA_MODIFIABLE, CKA_LABEL, CKA_COPYABLE, CKA_DESTROYABLE,
};
static const CK_ATTRIBUTE_TYPE copy_data[] = {CKA_APPLICATION, CKA_OBJECT_ID, CKA_VALUE};
static const CK_ATTRIBUTE_TYPE copy_certificate[] = {
    CKA_CERTIFICATE_TYPE,
    CKA_CERTIFICATE_CATEGORY,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_VALUE,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
};
static const CK_ATTRIBUTE_TYPE copy_public[] = {
    CKA_KEY_TYPE,  CKA_ID,       CKA_START_DATE,     CKA_END_DATE, CKA_DERIVE,  CKA_SUBJECT,
    CKA_ENCRYPT,   CKA_VERIFY,   CKA_VERIFY_RECOVER, CKA_WRAP,     CKA_MODULUS, CKA_PUBLIC_EXPONENT,
    CKA_EC_PARAMS, CKA_EC_POINT, CKA_PRIME,          CKA_SUBPRIME, CKA_BASE,    CKA_VALUE,
};
static const CK_ATTRIBUTE_TYPE copy_private[] = {
    CKA_KEY_TYPE,
    CKA_ID,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_DERIVE,
    CKA_SUBJECT,
    CKA_SENSITIVE,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_UNWRAP,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
};
static const CK_ATTRIBUTE_TYPE copy_secret[] = {
    CKA_KEY_TYPE,    CKA_ID,
    CKA_START_DATE,  CKA_END_DATE,
    CKA_DERIVE,      CKA_SENSITIVE,
    CKA_ENCRYPT,     CKA_DECRYPT,
    CKA_SIGN,        CKA_VERIFY,
    CKA_WRAP,        CKA_UNWRAP,
    CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED,
};

CK_RV layers_attrs_read(const layers_side *side, CK_OBJECT_HANDLE object,
                        const CK_ATTRIBUTE_TYPE *types, size_t n, layers_attrs *out)
{
    size_t total = 0;
    unsigned char *p;
    CK_RV rv = CKR_HOST_MEMORY;

    memset(out, 0, sizeof(*out));
    out->attrs = calloc(n > 0 ? n : 1, sizeof(*out->attrs));
    if (out->attrs == NULL) {
        goto out;
    }
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        out->attrs[i].type = types[i];
    }
    rv = side->p11->C_GetAttributeValue(side->session, object, out->attrs, (CK_ULONG)n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (out->attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
            total += out->attrs[i].ulValueLen;
        }
    }
    rv = CKR_HOST_MEMORY;
    out->values = p = malloc(total > 0 ? total : 1);
    if (p == NULL) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (out->attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
            out->attrs[i].pValue = p;
            p += out->attrs[i].ulValueLen;
        }
    }
    rv = side->p11->C_GetAttributeValue(side->session, object, out->attrs, (CK_ULONG)n);
    if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
        rv = CKR_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (out->attrs[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            out->attrs[i].pValue = NULL;
        }
    }
out:
    if (rv != CKR_OK) {
        layers_attrs_free(out);
    }
    return rv;
}

void layers_attrs_free(layers_attrs *a)
{
    free(a->attrs);
    free(a->values);
    memset(a, 0, sizeof(*a));
}

const CK_ATTRIBUTE *layers_attr(const layers_attrs *a, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->attrs[i].type == type) {
            return a->attrs[i].pValue != NULL ? &a->attrs[i] : NULL;
        }
    }
    return NULL;
}

CK_ULONG layers_attr_ulong(const layers_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
    const CK_ATTRIBUTE *at = layers_attr(a, type);
    CK_ULONG v;

    if (at == NULL || at->ulValueLen != sizeof(v)) {
        return dflt;
    }
    memcpy(&v, at->pValue, sizeof(v));
    return v;
}

bool layers_attr_bool(const layers_attrs *a, CK_ATTRIBUTE_TYPE type, bool dflt)
{
    const CK_ATTRIBUTE *at = layers_attr(a, type);

    if (at == NULL || at->ulValueLen != sizeof(CK_BBOOL)) {
        return dflt;
    }
    return *(const CK_BBOOL *)at->pValue == CK_TRUE;
}

/* Whether both attributes are present and hold the same bytes. */
static bool attr_equal(const CK_ATTRIBUTE *a, const CK_ATTRIBUTE *b)
{
    return a != NULL && b != NULL && a->ulValueLen == b->ulValueLen &&
           (a->ulValueLen == 0 || memcmp(a->pValue, b->pValue, a->ulValueLen) == 0);
}

/* Reads types from s on source and t on target and says whether every one
 * is present on both and equal. */
static CK_RV compare_attrs(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                           CK_OBJECT_HANDLE t, const CK_ATTRIBUTE_TYPE *types, size_t n, bool *same)
{
    layers_attrs a, b;
    CK_RV rv = layers_attrs_read(source, s, types, n, &a);

    *same = false;
    if (rv != CKR_OK) {
        return rv;
    }
    rv = layers_attrs_read(target, t, types, n, &b);
    if (rv == CKR_OK) {
        *same = true;
        for (size_t i = 0; i < n; i++) {
            *same = *same && attr_equal(layers_attr(&a, types[i]), layers_attr(&b, types[i]));
        }
        layers_attrs_free(&b);
    }
    layers_attrs_free(&a);
    return rv;
}

/* ---------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------ */

layers_how layers_classify(const layers_attrs *head, const char **why)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);

    *why = NULL;
    switch (cls) {
    case CKO_CERTIFICATE:
    case CKO_PUBLIC_KEY:
    case CKO_DATA:
        return LAYERS_COPY;
    case CKO_PRIVATE_KEY:
    case CKO_SECRET_KEY:
        if (!layers_attr_bool(head, CKA_EXTRACTABLE, false)) {
            *why = layers_attr_bool(head, CKA_SENSITIVE, true) ? "sensitive and not extractable"
                                                               : "not extractable";
            return LAYERS_CANNOT;
        }
        if (layers_attr_bool(head, CKA_WRAP_WITH_TRUSTED, false)) {
            *why = "CKA_WRAP_WITH_TRUSTED: only a key the SO marked trusted may wrap it";
            return LAYERS_CANNOT;
        }
        return LAYERS_TRANSFER;
    default:
        *why = "objects of this class are not moved";
        return LAYERS_CANNOT;
    }
}

/* Appends head's attribute of type to templ (when present) and says
 * whether it was. */
static bool add_from(CK_ATTRIBUTE *templ, CK_ULONG *n, const layers_attrs *head,
                     CK_ATTRIBUTE_TYPE type)
{
    const CK_ATTRIBUTE *a = layers_attr(head, type);

    if (a == NULL) {
        return false;
    }
    templ[(*n)++] = *a;
    return true;
}

CK_RV layers_find_match(const layers_side *target, const layers_attrs *head,
                        CK_OBJECT_HANDLE *found, size_t max, size_t *n)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE templ[8] = {{CKA_TOKEN, &yes, sizeof(yes)}};
    CK_ULONG count = 1, got = 0;
    const CK_ATTRIBUTE *id = layers_attr(head, CKA_ID);
    CK_RV rv;

    *n = 0;
    add_from(templ, &count, head, CKA_CLASS);
    if (cls == CKO_DATA) {
        add_from(templ, &count, head, CKA_APPLICATION);
        add_from(templ, &count, head, CKA_OBJECT_ID);
        add_from(templ, &count, head, CKA_LABEL);
    } else {
        add_from(templ, &count, head, cls == CKO_CERTIFICATE ? CKA_CERTIFICATE_TYPE : CKA_KEY_TYPE);
        add_from(templ, &count, head, CKA_ID);
        if (cls == CKO_CERTIFICATE) {
            add_from(templ, &count, head, CKA_SERIAL_NUMBER);
            add_from(templ, &count, head, CKA_ISSUER);
        }
        if (id == NULL || id->ulValueLen == 0) {
            add_from(templ, &count, head, CKA_LABEL);
        }
    }
    rv = target->p11->C_FindObjectsInit(target->session, templ, count);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = target->p11->C_FindObjects(target->session, found, (CK_ULONG)max, &got);
    target->p11->C_FindObjectsFinal(target->session);
    *n = got;
    return rv;
}

/* The attribute without which an object of class (and key type) is
 * nothing: a certificate's or data object's value, a key's public
 * material or length. */
static CK_ATTRIBUTE_TYPE essential(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
    if (cls == CKO_SECRET_KEY) {
        return CKA_VALUE_LEN;
    }
    if (cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY) {
        return kt == CKK_RSA ? CKA_MODULUS : kt == CKK_EC ? CKA_EC_PARAMS : CKA_VALUE;
    }
    return CKA_VALUE;
}

/* Reads one attribute of o into a (a.n == 0 when it cannot be read: a
 * backend killed while writing an object's defaults leaves some of them
 * out, and SoftHSM2 answers CKR_GENERAL_ERROR for an attribute its file
 * lacks). Returns whether it could be read. */
static bool read_one(const layers_side *side, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                     layers_attrs *a)
{
    if (layers_attrs_read(side, o, &type, 1, a) != CKR_OK) {
        memset(a, 0, sizeof(*a));
        return false;
    }
    return true;
}

/* Whether attribute type of o is absent, unreadable or empty (zero for a
 * length). */
static bool blank(const layers_side *side, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
    layers_attrs a;
    const CK_ATTRIBUTE *at;
    bool empty = true;

    if (read_one(side, o, type, &a)) {
        at = layers_attr(&a, type);
        empty = type == CKA_VALUE_LEN ? layers_attr_ulong(&a, type, 0) == 0
                                      : at == NULL || at->ulValueLen == 0;
        layers_attrs_free(&a);
    }
    return empty;
}

/* Whether ulong attribute type of o is absent, unreadable, want, or the
 * vendor-defined value SoftHSM2 writes first (CKO_VENDOR_DEFINED and
 * CKK_VENDOR_DEFINED are one number), the real class and key type after. */
static bool ulong_is(const layers_side *side, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type,
                     CK_ULONG want)
{
    layers_attrs a;
    CK_ULONG v;

    if (!read_one(side, o, type, &a)) {
        return true;
    }
    v = layers_attr_ulong(&a, type, want);
    layers_attrs_free(&a);
    return v == want || v == CKO_VENDOR_DEFINED;
}

/* Whether object o of target is a shell of an object of class (key type
 * kt): what a backend killed while creating it left, defaults and no
 * more. Its class and key type are absent, cls and kt or the
 * vendor-defined default, and it has no label, no id, and its essential
 * attribute absent or empty. Each attribute is read on its own: SoftHSM2
 * writes a new object's defaults one attribute at a time (CKA_TOKEN's
 * default, false, among the first), and fails a read of several for the
 * one its file lacks. */
static bool shell(const layers_side *target, CK_OBJECT_HANDLE o, CK_OBJECT_CLASS cls,
                  CK_KEY_TYPE kt)
{
    if (!ulong_is(target, o, CKA_CLASS, cls)) {
        return false;
    }
    if (kt != CK_UNAVAILABLE_INFORMATION && !ulong_is(target, o, CKA_KEY_TYPE, kt)) {
        return false;
    }
    return blank(target, o, CKA_LABEL) && blank(target, o, CKA_ID) &&
           blank(target, o, essential(cls, kt));
}

/* Whether o is one of the transport's own session keys on the target (a
 * transient AES key unwrapped there has no label, no id and no
 * CKA_VALUE_LEN: it looks like a shell). */
static bool transport_key(const layers_transport *tr, CK_OBJECT_HANDLE o)
{
    return tr != NULL && tr->ready &&
           (o == tr->target_aes || o == tr->target_private || o == tr->target_public);
}

CK_RV layers_find_shells(const layers_side *target, const layers_transport *tr,
                         const layers_attrs *head, CK_OBJECT_HANDLE *found, size_t max, size_t *n)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    CK_KEY_TYPE kt = layers_attr_ulong(head, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
    CK_OBJECT_HANDLE all[64];
    CK_ULONG got = 0;
    CK_RV rv;

    *n = 0;
    /* Every object: a shell may hold no CKA_CLASS for a template to match. */
    rv = target->p11->C_FindObjectsInit(target->session, NULL, 0);
    while (rv == CKR_OK && *n < max) {
        rv = target->p11->C_FindObjects(target->session, all, 64, &got);
        if (rv != CKR_OK || got == 0) {
            break;
        }
        for (CK_ULONG i = 0; i < got && *n < max; i++) {
            if (!transport_key(tr, all[i]) && shell(target, all[i], cls, kt)) {
                found[(*n)++] = all[i];
            }
        }
    }
    target->p11->C_FindObjectsFinal(target->session);
    return rv;
}

/* The attributes that say two public keys (or an RSA private key and a
 * key pair) are the same key. */
static size_t public_types(CK_KEY_TYPE kt, bool private_key, CK_ATTRIBUTE_TYPE types[2])
{
    if (kt == CKK_RSA) {
        types[0] = CKA_MODULUS;
        types[1] = CKA_PUBLIC_EXPONENT;
        return 2;
    }
    if (private_key) {
        return 0; /* an EC or DSA private key does not show its public half */
    }
    if (kt == CKK_EC) {
        types[0] = CKA_EC_PARAMS;
        types[1] = CKA_EC_POINT;
        return 2;
    }
    types[0] = CKA_VALUE;
    return 1;
}

CK_RV layers_same(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                  CK_OBJECT_HANDLE t, const layers_attrs *head, bool *same, const char **how)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    CK_KEY_TYPE kt = layers_attr_ulong(head, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
    CK_ATTRIBUTE_TYPE types[2] = {CKA_VALUE, CKA_VALUE};
    size_t n = 1;
    char err[128];
    CK_RV rv;

    *how = "the same value";
    if (cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY) {
        n = public_types(kt, cls == CKO_PRIVATE_KEY, types);
        *how = "the same public key";
    }
    if (cls == CKO_SECRET_KEY || n == 0) {
        rv = layers_verify(source, s, target, t, head, how, err, sizeof(err));
        *same = rv == CKR_OK;
        return rv == CKR_SIGNATURE_INVALID ? CKR_OK : rv;
    }
    return compare_attrs(source, s, target, t, types, n, same);
}

/* ---------------------------------------------------------------------
 * Transport
 * ------------------------------------------------------------------ */

bool layers_transport_possible(const layers_side *source, const layers_side *target,
                               CK_OBJECT_CLASS cls, layers_wrap_plan *plan, const char **why)
{
    layers_mechs from, to;
    layers_wrap_plan mine;
    bool possible = false;

    *why = "the tokens' mechanism lists could not be read";
    if (layers_mechs_read(source, &from) != CKR_OK) {
        return false;
    }
    if (layers_mechs_read(target, &to) == CKR_OK) {
        possible = layers_wrap_choose(&from, &to, cls, plan != NULL ? plan : &mine, why);
        layers_mechs_free(&to);
    }
    layers_mechs_free(&from);
    return possible;
}

/* Wraps key with wrapping on source into *blob (malloc'd, *len). */
static CK_RV wrap(const layers_side *source, CK_MECHANISM *mech, CK_OBJECT_HANDLE wrapping,
                  CK_OBJECT_HANDLE key, unsigned char **blob, CK_ULONG *len)
{
    CK_RV rv = source->p11->C_WrapKey(source->session, mech, wrapping, key, NULL, len);

    *blob = NULL;
    if (rv != CKR_OK) {
        return rv;
    }
    *blob = malloc(*len > 0 ? *len : 1);
    if (*blob == NULL) {
        return CKR_HOST_MEMORY;
    }
    rv = source->p11->C_WrapKey(source->session, mech, wrapping, key, *blob, len);
    if (rv != CKR_OK) {
        free(*blob);
        *blob = NULL;
    }
    return rv;
}

/* Frees a wrapped key (ciphertext, but wiped all the same: layers/ does
 * not link libsodium, so through a volatile pointer). */
static void blob_free(unsigned char *blob, CK_ULONG len)
{
    volatile unsigned char *p = blob;

    for (CK_ULONG i = 0; p != NULL && i < len; i++) {
        p[i] = 0;
    }
    free(blob);
}

void layers_blob_free(unsigned char *blob, CK_ULONG len)
{
    blob_free(blob, len);
}

/* The transport's steps, each on one side (layers.h says why). */

CK_RV layers_transport_pair(layers_transport *tr, const layers_side *target, layers_attrs *pub)
{
    static const CK_ATTRIBUTE_TYPE parts[] = {CKA_MODULUS, CKA_PUBLIC_EXPONENT};
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048;
    CK_BYTE exponent[] = {0x01, 0x00, 0x01};
    CK_ATTRIBUTE pub_t[] = {
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_MODULUS_BITS, &bits, sizeof(bits)},
        {CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)},
    };
    CK_ATTRIBUTE priv_t[] = {
        {CKA_TOKEN, &no, sizeof(no)},       {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_UNWRAP, &yes, sizeof(yes)},    {CKA_DECRYPT, &yes, sizeof(yes)},
    };
    CK_RV rv = target->p11->C_GenerateKeyPair(target->session, &gen, pub_t, 5, priv_t, 6,
                                              &tr->target_public, &tr->target_private);

    memset(pub, 0, sizeof(*pub));
    if (rv != CKR_OK) {
        return rv;
    }
    rv = layers_attrs_read(target, tr->target_public, parts, 2, pub);
    if (rv == CKR_OK &&
        (layers_attr(pub, CKA_MODULUS) == NULL || layers_attr(pub, CKA_PUBLIC_EXPONENT) == NULL)) {
        layers_attrs_free(pub);
        rv = CKR_GENERAL_ERROR;
    }
    return rv;
}

CK_RV layers_transport_key(layers_transport *tr, const layers_side *source, const layers_attrs *pub,
                           unsigned char **blob, CK_ULONG *len)
{
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_RSA_PKCS_OAEP_PARAMS params;
    CK_MECHANISM carry;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len32 = 32;
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY, public = CKO_PUBLIC_KEY;
    CK_KEY_TYPE aes = CKK_AES, rsa = CKK_RSA;
    CK_ATTRIBUTE imp[] = {
        {CKA_CLASS, &public, sizeof(public)}, {CKA_KEY_TYPE, &rsa, sizeof(rsa)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_WRAP, &yes, sizeof(yes)},
        *layers_attr(pub, CKA_MODULUS),       *layers_attr(pub, CKA_PUBLIC_EXPONENT),
    };
    CK_ATTRIBUTE gen_t[] = {
        {CKA_CLASS, &secret, sizeof(secret)},   {CKA_KEY_TYPE, &aes, sizeof(aes)},
        {CKA_TOKEN, &no, sizeof(no)},           {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_VALUE_LEN, &len32, sizeof(len32)}, {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},     {CKA_EXTRACTABLE, &yes, sizeof(yes)},
    };
    CK_RV rv = source->p11->C_CreateObject(source->session, imp, 6, &tr->source_public);

    *blob = NULL;
    *len = 0;
    layers_wrap_carry(&tr->plan, &carry, &params);
    if (rv != CKR_OK || layers_wrap_direct(&tr->plan)) {
        return rv;
    }
    rv = source->p11->C_GenerateKey(source->session, &gen, gen_t, 8, &tr->source_aes);
    if (rv == CKR_OK) {
        rv = wrap(source, &carry, tr->source_public, tr->source_aes, blob, len);
    }
    return rv;
}

CK_RV layers_transport_accept(layers_transport *tr, const layers_side *target,
                              const unsigned char *blob, CK_ULONG len)
{
    CK_RSA_PKCS_OAEP_PARAMS params;
    CK_MECHANISM carry;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ATTRIBUTE unwrap_t[] = {
        {CKA_CLASS, &secret, sizeof(secret)}, {CKA_KEY_TYPE, &aes, sizeof(aes)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},      {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
    };
    CK_RV rv = CKR_OK;

    layers_wrap_carry(&tr->plan, &carry, &params);
    if (!layers_wrap_direct(&tr->plan)) {
        rv = target->p11->C_UnwrapKey(target->session, &carry, tr->target_private,
                                      (CK_BYTE_PTR)blob, len, unwrap_t, 7, &tr->target_aes);
    }
    tr->ready = rv == CKR_OK;
    return rv;
}

static void destroy(const layers_side *side, CK_OBJECT_HANDLE *h)
{
    if (*h != CK_INVALID_HANDLE) {
        side->p11->C_DestroyObject(side->session, *h);
        *h = CK_INVALID_HANDLE;
    }
}

/* Chooses tr's plan from both tokens' lists (for secret keys, the most a
 * transport can do: layers_transport_possible tells the rest). */
static CK_RV transport_plan(layers_transport *tr, const layers_side *source,
                            const layers_side *target, const char **step)
{
    layers_mechs from, to;
    const char *why = NULL;
    CK_RV rv;

    *step = "reading the tokens' mechanisms";
    rv = layers_mechs_read(source, &from);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = layers_mechs_read(target, &to);
    if (rv == CKR_OK) {
        if (!layers_wrap_choose(&from, &to, CKO_SECRET_KEY, &tr->plan, &why)) {
            *step = why;
            rv = CKR_MECHANISM_INVALID;
        }
        layers_mechs_free(&to);
    }
    layers_mechs_free(&from);
    return rv;
}

/* Steps 2 and 3 of the transport (layers.h) under tr's carry. */
static CK_RV transport_carry(layers_transport *tr, const layers_side *source,
                             const layers_side *target, const layers_attrs *pub, const char **step)
{
    unsigned char *blob = NULL;
    CK_ULONG len = 0;
    CK_RV rv;

    *step = "carrying the transient AES key from the source under the RSA key";
    rv = layers_transport_key(tr, source, pub, &blob, &len);
    if (rv == CKR_OK) {
        *step = "unwrapping the transient AES key on the target";
        rv = layers_transport_accept(tr, target, blob, len);
    }
    blob_free(blob, len);
    return rv;
}

CK_RV layers_transport_open(layers_transport *tr, const layers_side *source,
                            const layers_side *target, char *err, size_t errsize)
{
    const char *step = "";
    layers_attrs pub = {0};
    CK_RV rv;

    if (tr->ready) {
        return CKR_OK;
    }
    rv = transport_plan(tr, source, target, &step);
    if (rv == CKR_OK) {
        step = "generating the transport key pair on the target";
        rv = layers_transport_pair(tr, target, &pub);
    }
    /* Each carry both list until one works: a backend may list RSA-OAEP
     * and reject its parameters. */
    while (rv == CKR_OK) {
        rv = transport_carry(tr, source, target, &pub, &step);
        if (rv == CKR_OK) {
            break;
        }
        destroy(target, &tr->target_aes);
        destroy(source, &tr->source_aes);
        destroy(source, &tr->source_public);
        if (layers_wrap_next_carry(&tr->plan)) {
            rv = CKR_OK;
        }
    }
    layers_attrs_free(&pub);
    if (rv != CKR_OK) {
        snprintf(err, errsize, "%s: %s", step, layers_rv_name(rv));
        layers_transport_close(tr, source, target);
    }
    return rv;
}

void layers_transport_close_target(layers_transport *tr, const layers_side *target)
{
    destroy(target, &tr->target_aes);
    destroy(target, &tr->target_private);
    destroy(target, &tr->target_public);
    tr->ready = false;
}

void layers_transport_close_source(layers_transport *tr, const layers_side *source)
{
    destroy(source, &tr->source_aes);
    destroy(source, &tr->source_public);
    tr->ready = false;
}

void layers_transport_close(layers_transport *tr, const layers_side *source,
                            const layers_side *target)
{
    layers_transport_close_target(tr, target);
    layers_transport_close_source(tr, source);
}

/* ---------------------------------------------------------------------
 * Copy and transfer
 * ------------------------------------------------------------------ */

/* The class's copy list after copy_common (NULL for another class). */
static const CK_ATTRIBUTE_TYPE *class_types(CK_OBJECT_CLASS cls, size_t *n)
{
#define LIST(a) (*n = sizeof(a) / sizeof(a[0]), a)
    switch (cls) {
    case CKO_DATA:
        return LIST(copy_data);
    case CKO_CERTIFICATE:
        return LIST(copy_certificate);
    case CKO_PUBLIC_KEY:
        return LIST(copy_public);
    case CKO_PRIVATE_KEY:
        return LIST(copy_private);
    case CKO_SECRET_KEY:
        return LIST(copy_secret);
    default:
        *n = 0;
        return NULL;
    }
#undef LIST
}

/* Whether templ[0..n) holds type. */
static bool has_type(const CK_ATTRIBUTE *templ, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; templ != NULL && i < n; i++) {
        if (templ[i].type == type) {
            return true;
        }
    }
    return false;
}

CK_RV layers_copy_template(const layers_side *source, CK_OBJECT_HANDLE s, CK_OBJECT_CLASS cls,
                           const CK_ATTRIBUTE *over, CK_ULONG n_over, layers_attrs *a,
                           CK_ATTRIBUTE **templ, CK_ULONG *count)
{
    static CK_BBOOL yes = CK_TRUE;
    size_t n_class = 0, n;
    const CK_ATTRIBUTE_TYPE *more = class_types(cls, &n_class);
    CK_ATTRIBUTE_TYPE types[64];
    CK_RV rv;

    n = sizeof(copy_common) / sizeof(copy_common[0]);
    memcpy(types, copy_common, sizeof(copy_common));
    memcpy(types + n, more, n_class * sizeof(*more));
    n += n_class;
    rv = layers_attrs_read(source, s, types, n, a);
    if (rv != CKR_OK) {
        return rv;
    }
    *templ = calloc(n + n_over + 1, sizeof(**templ));
    if (*templ == NULL) {
        layers_attrs_free(a);
        return CKR_HOST_MEMORY;
    }
    *count = 0;
    for (CK_ULONG i = 0; i < n_over; i++) {
        (*templ)[(*count)++] = over[i];
    }
    if (!has_type(over, n_over, CKA_TOKEN)) {
        (*templ)[(*count)++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    }
    for (size_t i = 0; i < a->n; i++) {
        const CK_ATTRIBUTE *at = &a->attrs[i];
        if (at->pValue == NULL || (at->ulValueLen == 0 && at->type != CKA_LABEL) ||
            has_type(over, n_over, at->type) ||
            (at->type == CKA_DESTROYABLE && !layers_attr_bool(a, CKA_DESTROYABLE, true))) {
            continue;
        }
        (*templ)[(*count)++] = *at;
    }
    return CKR_OK;
}

CK_RV layers_copy(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                  const layers_attrs *head, const CK_ATTRIBUTE *over, CK_ULONG n_over,
                  CK_OBJECT_HANDLE *out, char *err, size_t errsize)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    CK_ATTRIBUTE *templ = NULL;
    CK_ULONG count = 0;
    layers_attrs a;
    CK_RV rv = layers_copy_template(source, s, cls, over, n_over, &a, &templ, &count);

    if (rv != CKR_OK) {
        snprintf(err, errsize, "reading its attributes: %s", layers_rv_name(rv));
        return rv;
    }
    rv = target->p11->C_CreateObject(target->session, templ, count, out);
    if (rv != CKR_OK) {
        snprintf(err, errsize, "creating the copy: %s", layers_rv_name(rv));
    }
    free(templ);
    layers_attrs_free(&a);
    return rv;
}

/* Makes the unwrapped key t sensitive when templ asked for it and the
 * target did not comply (openCryptoki 3.8.1 ignores CKA_SENSITIVE in an
 * unwrap template); a key that stays readable is destroyed. CKR_OK or
 * the backend's code. */
static CK_RV keep_sensitive(const layers_side *target, CK_OBJECT_HANDLE t,
                            const CK_ATTRIBUTE *templ, CK_ULONG count)
{
    CK_BBOOL yes = CK_TRUE, got = CK_FALSE;
    CK_ATTRIBUTE set = {CKA_SENSITIVE, &yes, sizeof(yes)};
    CK_ATTRIBUTE get = {CKA_SENSITIVE, &got, sizeof(got)};
    CK_RV rv = CKR_OK;

    for (CK_ULONG i = 0; i < count; i++) {
        if (templ[i].type == CKA_SENSITIVE && templ[i].ulValueLen == sizeof(CK_BBOOL) &&
            *(const CK_BBOOL *)templ[i].pValue == CK_TRUE) {
            rv = target->p11->C_GetAttributeValue(target->session, t, &get, 1);
            if (rv == CKR_OK && got != CK_TRUE) {
                rv = target->p11->C_SetAttributeValue(target->session, t, &set, 1);
            }
        }
    }
    if (rv != CKR_OK) {
        target->p11->C_DestroyObject(target->session, t);
    }
    return rv;
}

/* Removes type from templ[0..*n) and says whether it was there. */
static bool drop_type(CK_ATTRIBUTE *templ, CK_ULONG *n, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; i < *n; i++) {
        if (templ[i].type == type) {
            templ[i] = templ[--*n];
            return true;
        }
    }
    return false;
}

CK_RV layers_transfer(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                      const layers_transport *tr, const layers_attrs *head,
                      const CK_ATTRIBUTE *over, CK_ULONG n_over, CK_OBJECT_HANDLE *out, char *err,
                      size_t errsize)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    layers_transport carry = *tr;
    CK_ATTRIBUTE *templ = NULL;
    CK_ULONG count = 0, blob_len = 0;
    unsigned char *blob = NULL;
    layers_attrs a;
    CK_RV rv;

    if (layers_wrap_direct(&tr->plan) && cls != CKO_SECRET_KEY) {
        snprintf(err, errsize, "no common wrapping mechanism for a private key");
        return CKR_MECHANISM_INVALID;
    }
    rv = layers_copy_template(source, s, cls, over, n_over, &a, &templ, &count);
    if (rv != CKR_OK) {
        snprintf(err, errsize, "reading its attributes: %s", layers_rv_name(rv));
        return rv;
    }
    /* A secret key under the carry itself: each carry both list in turn,
     * as layers_transport_open does for the AES key. */
    do {
        blob_free(blob, blob_len);
        rv = layers_wrap_key(source, &carry, s, &blob, &blob_len);
        if (rv != CKR_OK) {
            snprintf(err, errsize, "wrapping it with %s on the source: %s",
                     layers_wrap_name(&carry.plan, cls), layers_rv_name(rv));
            continue;
        }
        rv = layers_unwrap_key(target, &carry, blob, blob_len, templ, count, out);
        if (rv == CKR_ATTRIBUTE_READ_ONLY && drop_type(templ, &count, CKA_EXTRACTABLE)) {
            /* openCryptoki 3.8.1 will not take CKA_EXTRACTABLE in an unwrap
             * template (it should: PKCS#11 v2.40 §4.9); a key that was
             * wrapped was extractable, and an unwrapped key is by default. */
            rv = layers_unwrap_key(target, &carry, blob, blob_len, templ, count, out);
        }
        if (rv != CKR_OK) {
            snprintf(err, errsize, "unwrapping it with %s on the target: %s",
                     layers_wrap_name(&carry.plan, cls), layers_rv_name(rv));
        } else if ((rv = keep_sensitive(target, *out, templ, count)) != CKR_OK) {
            snprintf(err, errsize,
                     "the target unwrapped it readable, and making it sensitive failed: %s",
                     layers_rv_name(rv));
            break;
        }
    } while (rv != CKR_OK && rv != CKR_HOST_MEMORY && layers_wrap_direct(&carry.plan) &&
             layers_wrap_next_carry(&carry.plan));
    blob_free(blob, blob_len);
    free(templ);
    layers_attrs_free(&a);
    return rv;
}

CK_RV layers_finish(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                    CK_OBJECT_HANDLE t)
{
    static const CK_ATTRIBUTE_TYPE type = CKA_DESTROYABLE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE set = {CKA_DESTROYABLE, &no, sizeof(no)};
    layers_attrs a;
    CK_RV rv = layers_attrs_read(source, s, &type, 1, &a);

    if (rv != CKR_OK) {
        return rv;
    }
    if (!layers_attr_bool(&a, CKA_DESTROYABLE, true)) {
        rv = target->p11->C_SetAttributeValue(target->session, t, &set, 1);
    }
    layers_attrs_free(&a);
    return rv;
}

/* ---------------------------------------------------------------------
 * Verification
 * ------------------------------------------------------------------ */

static const unsigned char probe[32] = "strata migrate: a test of a key.";

/* A session public key on the source that verifies for key pair of
 * private key s: made from s's modulus (RSA), else from the source's
 * public key object with the same CKA_ID. CKR_OK with *pub;
 * CKR_KEY_HANDLE_INVALID when there is nothing to make it from. */
static CK_RV source_public(const layers_side *source, CK_OBJECT_HANDLE s, const layers_attrs *head,
                           CK_OBJECT_HANDLE *pub)
{
    static const CK_ATTRIBUTE_TYPE parts[] = {CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS,
                                              CKA_EC_POINT};
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = layers_attr_ulong(head, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE templ[6] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},
    };
    CK_ULONG count = 4;
    CK_OBJECT_HANDLE from = s;
    layers_attrs a;
    CK_RV rv;

    if (kt == CKK_EC) {
        CK_ATTRIBUTE find[3] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
        CK_ULONG n_find = 2, got = 0;
        if (!add_from(find, &n_find, head, CKA_ID) || layers_attr(head, CKA_ID)->ulValueLen == 0) {
            return CKR_KEY_HANDLE_INVALID;
        }
        rv = source->p11->C_FindObjectsInit(source->session, find, n_find);
        if (rv == CKR_OK) {
            rv = source->p11->C_FindObjects(source->session, &from, 1, &got);
            source->p11->C_FindObjectsFinal(source->session);
        }
        if (rv != CKR_OK || got == 0) {
            return rv != CKR_OK ? rv : CKR_KEY_HANDLE_INVALID;
        }
    } else if (kt != CKK_RSA) {
        return CKR_KEY_HANDLE_INVALID;
    }
    rv = layers_attrs_read(source, from, kt == CKK_RSA ? parts : parts + 2, 2, &a);
    if (rv != CKR_OK) {
        return rv;
    }
    if (a.attrs[0].pValue == NULL || a.attrs[1].pValue == NULL) {
        rv = CKR_KEY_HANDLE_INVALID;
    } else {
        templ[count++] = a.attrs[0];
        templ[count++] = a.attrs[1];
        rv = source->p11->C_CreateObject(source->session, templ, count, pub);
    }
    layers_attrs_free(&a);
    return rv;
}

/* What a private key's check does: whether the copy is asked to sign
 * (a key that signs without a context-specific login), and how many
 * public key attributes are compared (types). */
static bool private_signs(const layers_attrs *head)
{
    return layers_attr_bool(head, CKA_SIGN, false) &&
           !layers_attr_bool(head, CKA_ALWAYS_AUTHENTICATE, false);
}

/* Whether a secret key's copy is checked by encrypting the probe. */
static bool secret_encrypts(const layers_attrs *head)
{
    return layers_attr_ulong(head, CKA_KEY_TYPE, 0) == CKK_AES &&
           layers_attr_bool(head, CKA_ENCRYPT, false);
}

/* The attributes the source's and the copy's values are compared by:
 * types[0..*n) (none for a private key that shows no public half). */
static void proof_types(const layers_attrs *head, CK_ATTRIBUTE_TYPE types[2], size_t *n)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    CK_KEY_TYPE kt = layers_attr_ulong(head, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);

    types[0] = types[1] = CKA_VALUE;
    *n = 1;
    if (cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY) {
        *n = public_types(kt, cls == CKO_PRIVATE_KEY, types);
    } else if (cls == CKO_SECRET_KEY) {
        types[0] = CKA_CHECK_VALUE;
    }
}

/* AES-ECB of the probe's first block with key on side into out[16]. */
static CK_RV probe_encrypt(const layers_side *side, CK_OBJECT_HANDLE key, unsigned char *out,
                           CK_ULONG *len)
{
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_RV rv = side->p11->C_EncryptInit(side->session, &ecb, key);

    *len = 16;
    if (rv == CKR_OK) {
        rv = side->p11->C_Encrypt(side->session, (CK_BYTE_PTR)probe, 16, out, len);
    }
    return rv;
}

CK_RV layers_proof_source(const layers_side *source, CK_OBJECT_HANDLE s, const layers_attrs *head,
                          layers_proof *p)
{
    CK_ATTRIBUTE_TYPE types[2];
    size_t n = 0;
    CK_RV rv = CKR_OK;

    memset(p, 0, sizeof(*p));
    p->how = "the same bytes";
    proof_types(head, types, &n);
    if (n > 0) {
        rv = layers_attrs_read(source, s, types, n, &p->source);
    }
    if (rv == CKR_OK && layers_attr_ulong(head, CKA_CLASS, 0) == CKO_SECRET_KEY &&
        secret_encrypts(head)) {
        p->block_rv = probe_encrypt(source, s, p->block, &p->block_len);
    }
    return rv;
}

/* The target step of a private key: the same public key (when it shows
 * one), then a signature of the probe for layers_proof_check. */
static CK_RV proof_private(const layers_side *target, CK_OBJECT_HANDLE t, const layers_attrs *head,
                           layers_proof *p, bool same, size_t n)
{
    CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_RV rv;

    if (n > 0) {
        p->how = "the same public key";
        if (!same) {
            return CKR_SIGNATURE_INVALID;
        }
    }
    if (!private_signs(head)) {
        p->how = n > 0 ? "the same public key (the key does not sign)"
                       : "unwrapped, not tested (the key does not sign and shows no public key)";
        return CKR_OK;
    }
    if (layers_attr_ulong(head, CKA_KEY_TYPE, 0) != CKK_RSA) {
        mech.mechanism = CKM_ECDSA;
    }
    p->sig_len = sizeof(p->sig);
    rv = target->p11->C_SignInit(target->session, &mech, t);
    if (rv == CKR_MECHANISM_INVALID && mech.mechanism == CKM_SHA256_RSA_PKCS) {
        /* openCryptoki 3.8.1's software token has no SHA256-RSA-PKCS. */
        mech.mechanism = CKM_RSA_PKCS;
        rv = target->p11->C_SignInit(target->session, &mech, t);
    }
    p->sig_mech = mech.mechanism;
    if (rv == CKR_OK) {
        rv = target->p11->C_Sign(target->session, (CK_BYTE_PTR)probe, sizeof(probe), p->sig,
                                 &p->sig_len);
    }
    p->signed_probe = rv == CKR_OK;
    p->how = "a signature by the copy verified with the source's public key";
    return rv;
}

/* The target step of a secret key: the same check value, else the same
 * ciphertext of the probe's first block. */
static CK_RV proof_secret(const layers_side *target, CK_OBJECT_HANDLE t, const layers_attrs *head,
                          layers_proof *p, bool same)
{
    unsigned char block[16];
    CK_ULONG len = 0;
    CK_RV rv;

    if (same) {
        p->how = "the same check value (CKA_CHECK_VALUE)";
        return CKR_OK;
    }
    if (!secret_encrypts(head)) {
        p->how = "unwrapped, not tested (the key does not encrypt and shows no check value)";
        return CKR_OK;
    }
    p->how = "the same ciphertext of one block";
    if (p->block_rv != CKR_OK) {
        return p->block_rv;
    }
    rv = probe_encrypt(target, t, block, &len);
    if (rv == CKR_OK && (len != p->block_len || memcmp(block, p->block, len) != 0)) {
        rv = CKR_SIGNATURE_INVALID;
    }
    return rv;
}

CK_RV layers_proof_target(const layers_side *target, CK_OBJECT_HANDLE t, const layers_attrs *head,
                          layers_proof *p)
{
    CK_OBJECT_CLASS cls = layers_attr_ulong(head, CKA_CLASS, CK_UNAVAILABLE_INFORMATION);
    CK_ATTRIBUTE_TYPE types[2];
    layers_attrs mine;
    bool same = true;
    size_t n = 0;
    CK_RV rv = CKR_OK;

    proof_types(head, types, &n);
    if (n > 0) {
        rv = layers_attrs_read(target, t, types, n, &mine);
        if (rv != CKR_OK) {
            return rv;
        }
        for (size_t i = 0; i < n; i++) {
            same =
                same && attr_equal(layers_attr(&p->source, types[i]), layers_attr(&mine, types[i]));
        }
        layers_attrs_free(&mine);
    }
    if (cls == CKO_PRIVATE_KEY) {
        return proof_private(target, t, head, p, same, n);
    }
    if (cls == CKO_SECRET_KEY) {
        return proof_secret(target, t, head, p, same);
    }
    p->how = cls == CKO_PUBLIC_KEY ? "the same public key" : "the same bytes";
    return same ? CKR_OK : CKR_SIGNATURE_INVALID;
}

CK_RV layers_proof_check(const layers_side *source, CK_OBJECT_HANDLE s, const layers_attrs *head,
                         layers_proof *p)
{
    CK_MECHANISM mech = {p->sig_mech, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    bool shows = layers_attr_ulong(head, CKA_KEY_TYPE, 0) == CKK_RSA;
    CK_RV rv;

    if (!p->signed_probe) {
        return CKR_OK;
    }
    rv = source_public(source, s, head, &pub);
    if (rv == CKR_KEY_HANDLE_INVALID) {
        p->how = shows ? "the same public key (no source public key to check a signature)"
                       : "unwrapped, not tested (no source public key to check a signature)";
        return CKR_OK;
    }
    if (rv == CKR_OK) {
        rv = source->p11->C_VerifyInit(source->session, &mech, pub);
    }
    if (rv == CKR_OK) {
        rv = source->p11->C_Verify(source->session, (CK_BYTE_PTR)probe, sizeof(probe), p->sig,
                                   p->sig_len);
    }
    destroy(source, &pub);
    return rv;
}

void layers_proof_free(layers_proof *p)
{
    layers_attrs_free(&p->source);
    memset(p, 0, sizeof(*p));
}

CK_RV layers_verify(const layers_side *source, CK_OBJECT_HANDLE s, const layers_side *target,
                    CK_OBJECT_HANDLE t, const layers_attrs *head, const char **how, char *err,
                    size_t errsize)
{
    layers_proof p;
    CK_RV rv = layers_proof_source(source, s, head, &p);

    if (rv == CKR_OK) {
        rv = layers_proof_target(target, t, head, &p);
    }
    if (rv == CKR_OK) {
        rv = layers_proof_check(source, s, head, &p);
    }
    *how = p.how;
    if (rv != CKR_OK) {
        snprintf(err, errsize, "%s: %s", rv == CKR_SIGNATURE_INVALID ? "the copy differs" : *how,
                 rv == CKR_SIGNATURE_INVALID ? *how : layers_rv_name(rv));
    }
    layers_proof_free(&p);
    return rv;
}
