/*
 * object.c - objects, attributes and search across layers.
 *
 * Placeholder: every function answers CKR_FUNCTION_NOT_SUPPORTED until
 * its issue lands.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

CK_RV object_create(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                    CK_OBJECT_HANDLE_PTR object)
{
    (void)session;
    (void)templ;
    (void)count;
    (void)object;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_copy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
                  CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object)
{
    (void)session;
    (void)object;
    (void)templ;
    (void)count;
    (void)new_object;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    (void)session;
    (void)object;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_get_size(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ULONG_PTR size)
{
    (void)session;
    (void)object;
    (void)size;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    (void)session;
    (void)object;
    (void)templ;
    (void)count;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_set_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    (void)session;
    (void)object;
    (void)templ;
    (void)count;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_find_init(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    (void)session;
    (void)templ;
    (void)count;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_find(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max,
                  CK_ULONG_PTR count)
{
    (void)session;
    (void)objects;
    (void)max;
    (void)count;
    return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV object_find_final(CK_SESSION_HANDLE session)
{
    (void)session;
    return CKR_FUNCTION_NOT_SUPPORTED;
}
