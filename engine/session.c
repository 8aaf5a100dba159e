/*
 * session.c - virtual sessions.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

CK_RV session_open(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application, CK_NOTIFY notify,
                   CK_SESSION_HANDLE_PTR session)
{
    (void)slot;
    (void)flags;
    (void)application;
    (void)notify;
    (void)session;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_close(CK_SESSION_HANDLE session)
{
    (void)session;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_close_all(CK_SLOT_ID slot)
{
    (void)slot;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_get_info(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    (void)session;
    (void)info;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_get_operation_state(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                  CK_ULONG_PTR state_len)
{
    (void)session;
    (void)state;
    (void)state_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_set_operation_state(CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len,
                                  CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
    (void)session;
    (void)state;
    (void)state_len;
    (void)enc_key;
    (void)auth_key;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_get_function_status(CK_SESSION_HANDLE session)
{
    (void)session;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV session_cancel_function(CK_SESSION_HANDLE session)
{
    (void)session;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_ULONG session_count(CK_SLOT_ID slot, CK_ULONG *rw_count)
{
    (void)slot;
    if (rw_count != NULL)
        *rw_count = 0;
    return 0;
}
