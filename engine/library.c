/*
 * library.c - C_Initialize, C_Finalize, C_GetInfo; fork detection; mutexes.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

engine_library engine_lib;

CK_RV library_check(void)
{
    return CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV library_initialize(CK_VOID_PTR init_args)
{
    (void)init_args;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV library_finalize(CK_VOID_PTR reserved)
{
    (void)reserved;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV library_get_info(CK_INFO_PTR info)
{
    (void)info;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV engine_mutex_new(engine_mutex **out)
{
    (void)out;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

void engine_mutex_free(engine_mutex *mutex)
{
    (void)mutex;
}

void engine_mutex_lock(engine_mutex *mutex)
{
    (void)mutex;
}

void engine_mutex_unlock(engine_mutex *mutex)
{
    (void)mutex;
}
