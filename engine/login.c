/*
 * login.c - C_Login, C_Logout, C_InitPIN, C_SetPIN: the view a PIN selects.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

CK_RV login_init_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    (void)session;
    (void)pin;
    (void)pin_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV login_set_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                    CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    (void)session;
    (void)old_pin;
    (void)old_len;
    (void)new_pin;
    (void)new_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV login_login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                  CK_ULONG pin_len)
{
    (void)session;
    (void)user_type;
    (void)pin;
    (void)pin_len;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV login_logout(CK_SESSION_HANDLE session)
{
    (void)session;
    return CKR_FUNCTION_NOT_SUPPORTED;
}
