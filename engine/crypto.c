/*
 * crypto.c - cryptographic operations forwarded to the key's layer.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

CK_RV crypto_init(CK_SESSION_HANDLE session, engine_op op, CK_MECHANISM_PTR mechanism,
                  CK_OBJECT_HANDLE key)
{
    (void)session;
    (void)op;
    (void)mechanism;
    (void)key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_single(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    (void)session;
    (void)op;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_verify(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                    CK_BYTE_PTR signature, CK_ULONG signature_len)
{
    (void)session;
    (void)data;
    (void)data_len;
    (void)signature;
    (void)signature_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_update(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    (void)session;
    (void)op;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_final(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    (void)session;
    (void)op;
    (void)out;
    (void)out_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_verify_final(CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG signature_len)
{
    (void)session;
    (void)signature;
    (void)signature_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_digest_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    (void)session;
    (void)key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_dual_update(CK_SESSION_HANDLE session, engine_dual dual, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    (void)session;
    (void)dual;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_seed_random(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len)
{
    (void)session;
    (void)seed;
    (void)seed_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV crypto_generate_random(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len)
{
    (void)session;
    (void)out;
    (void)out_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}
