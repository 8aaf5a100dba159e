/*
 * p11_client.h - the built module as a real client sees it: dlopen'ed
 * from STRATA_MODULE, initialised, one slot, a session, a login. Shared
 * by the integration worlds (stack_world.h, identity_world.h; header-only,
 * each test binary includes it once through its world).
 *
 * Every helper fails the running Criterion test on an unexpected result,
 * except login(), which returns the code for the test to check.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_P11_CLIENT_H
#define STRATA_TEST_P11_CLIENT_H

#include <dlfcn.h>
#include <string.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "world.h"

/* The function list of the module at path, dlopen'ed (never closed). */
static inline CK_FUNCTION_LIST *load_module(const char *path)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    CK_FUNCTION_LIST *list = NULL;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);

    cr_assert(handle != NULL, "dlopen %s: %s", path, dlerror());
    *(void **)&get_list = dlsym(handle, "C_GetFunctionList");
    cr_assert(get_list != NULL);
    cr_assert_eq(get_list(&list), CKR_OK);
    return list;
}

/* Strata, initialised; *slot is the virtual token's slot. */
static inline CK_FUNCTION_LIST *strata(CK_SLOT_ID *slot)
{
    CK_FUNCTION_LIST *p11 = load_module(world_strata_module());
    CK_ULONG n = 1;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, slot, &n), CKR_OK);
    cr_assert_eq(n, 1);
    return p11;
}

/* A new read-write session on slot. */
static inline CK_SESSION_HANDLE open_rw(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                 CKR_OK);
    return s;
}

/* C_Login as the user with pin; returns its code. */
static inline CK_RV login(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *pin)
{
    return p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
}

/* The one object of class labelled label that the session finds (fails
 * the test when there is not exactly one). */
static inline CK_OBJECT_HANDLE find_labelled(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s,
                                             CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;

    cr_assert_eq(p11->C_FindObjectsInit(s, t, 2), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, found, 2, &n), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    cr_assert_eq(n, 1, "%lu objects labelled %s", (unsigned long)n, label);
    return found[0];
}

#endif /* STRATA_TEST_P11_CLIENT_H */
