/*
 * slot.c - virtual slots, token information, mechanisms.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

CK_RV slot_get_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    (void)token_present;
    (void)list;
    (void)count;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV slot_get_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    (void)slot;
    (void)info;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV slot_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    (void)slot;
    (void)info;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV slot_wait_for_event(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    (void)flags;
    (void)slot;
    (void)reserved;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV slot_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    (void)slot;
    (void)list;
    (void)count;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV slot_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    (void)slot;
    (void)type;
    (void)info;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV slot_init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
    (void)slot;
    (void)pin;
    (void)pin_len;
    (void)label;
    return CKR_FUNCTION_NOT_SUPPORTED;
}
