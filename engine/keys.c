/*
 * keys.c - key generation, wrapping, unwrapping and derivation.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

CK_RV key_generate(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ,
                   CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    (void)session;
    (void)mechanism;
    (void)templ;
    (void)count;
    (void)key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV key_generate_pair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                        CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv_templ,
                        CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_key,
                        CK_OBJECT_HANDLE_PTR priv_key)
{
    (void)session;
    (void)mechanism;
    (void)pub_templ;
    (void)pub_count;
    (void)priv_templ;
    (void)priv_count;
    (void)pub_key;
    (void)priv_key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV key_wrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping,
               CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len)
{
    (void)session;
    (void)mechanism;
    (void)wrapping;
    (void)key;
    (void)wrapped;
    (void)wrapped_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV key_unwrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key)
{
    (void)session;
    (void)mechanism;
    (void)unwrapping;
    (void)wrapped;
    (void)wrapped_len;
    (void)templ;
    (void)count;
    (void)key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV key_derive(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base,
                 CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    (void)session;
    (void)mechanism;
    (void)base;
    (void)templ;
    (void)count;
    (void)key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}
