/*
 * test_fork.c - the module across a real fork(): the child of an
 * initialised process sees CKR_CRYPTOKI_NOT_INITIALIZED until its own
 * C_Initialize, which works; the parent is unaffected.
 *
 * The child reports through its exit status (a distinct code per failed
 * step) and leaves with _exit(), so it neither runs the test framework's
 * exit path nor LeakSanitizer over the parent's state it abandoned.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <p11-kit/pkcs11.h>

#include "world.h"

static world w;
static CK_FUNCTION_LIST *p11;

static const char policy[] = "<strata version=\"1\">\n"
                             "  <catalog path=\"@CATALOG@\"/>\n"
                             "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                             "  <layer id=\"a\" module=\"soft\" token=\"layer-a\"/>\n"
                             "  <token label=\"Strata Fork\">\n"
                             "    <view id=\"work\" layers=\"a\"/>\n"
                             "  </token>\n"
                             "</strata>\n";

static void setup(void)
{
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    void *handle;

    world_setup(&w);
    cr_assert_eq(world_token(&w, "layer-a", "12345678", "1234"), 0);
    cr_assert_eq(world_policy(&w, policy), 0);
    handle = dlopen(world_strata_module(), RTLD_NOW | RTLD_LOCAL);
    cr_assert(handle != NULL, "dlopen: %s", dlerror());
    *(void **)&get_list = dlsym(handle, "C_GetFunctionList");
    cr_assert(get_list != NULL);
    cr_assert_eq(get_list(&p11), CKR_OK);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(fork, .init = setup, .fini = teardown, .timeout = 120);

/* The virtual token answers: one slot, its label, SoftHSM2's mechanisms.
 * Returns 0, or the number of the failed step plus base. */
static int token_works(int base, CK_SLOT_ID *slot_out)
{
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    CK_TOKEN_INFO info;

    if (p11->C_GetSlotList(CK_TRUE, &slot, &n) != CKR_OK || n != 1) {
        return base + 1;
    }
    if (p11->C_GetTokenInfo(slot, &info) != CKR_OK || memcmp(info.label, "Strata Fork ", 12) != 0) {
        return base + 2;
    }
    if (p11->C_GetMechanismList(slot, NULL, &n) != CKR_OK || n == 0) {
        return base + 3; /* the backend does not answer */
    }
    if (slot_out != NULL) {
        *slot_out = slot;
    }
    return 0;
}

/* What the child of an initialised parent checks; its exit status. */
static int child_checks(CK_SLOT_ID parent_slot)
{
    CK_SLOT_ID slot = 0;
    CK_INFO info;
    CK_ULONG n = 0;
    int rc;

    if (p11->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED) {
        return 10;
    }
    if (p11->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED) {
        return 11;
    }
    if (p11->C_GetTokenInfo(parent_slot, &(CK_TOKEN_INFO){0}) != CKR_CRYPTOKI_NOT_INITIALIZED) {
        return 12;
    }
    if (p11->C_Finalize(NULL) != CKR_CRYPTOKI_NOT_INITIALIZED) {
        return 13;
    }
    if (p11->C_GetFunctionList(&(CK_FUNCTION_LIST_PTR){NULL}) != CKR_OK) {
        return 14;
    }
    if (p11->C_Initialize(NULL) != CKR_OK) {
        return 15;
    }
    if (p11->C_Initialize(NULL) != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        return 16;
    }
    rc = token_works(20, &slot);
    if (rc != 0) {
        return rc;
    }
    if (slot != parent_slot) {
        return 30;
    }
    if (p11->C_GetInfo(&info) != CKR_OK) {
        return 31;
    }
    return p11->C_Finalize(NULL) == CKR_OK ? 0 : 32;
}

static int run_child(int (*fn)(CK_SLOT_ID), CK_SLOT_ID arg)
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        _exit(fn(arg));
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died (status %d)", status);
    return WEXITSTATUS(status);
}

Test(fork, child_must_initialize)
{
    CK_SLOT_ID slot = 0;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(token_works(0, &slot), 0);
    cr_assert_eq(run_child(child_checks, slot), 0, "child step failed");
    /* The parent is unaffected, backend included. */
    cr_assert_eq(token_works(0, NULL), 0);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* And can initialise again afterwards. */
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(token_works(0, NULL), 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static int child_does_nothing(CK_SLOT_ID slot)
{
    (void)slot;
    return p11->C_GetSlotList(CK_TRUE, NULL, &(CK_ULONG){0}) == CKR_CRYPTOKI_NOT_INITIALIZED ? 0
                                                                                             : 1;
}

/* Several children in a row, one of them initialising: the parent keeps
 * working between and after them. */
Test(fork, parent_unaffected_by_children)
{
    CK_SLOT_ID slot = 0;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(token_works(0, &slot), 0);
    cr_assert_eq(run_child(child_does_nothing, slot), 0);
    cr_assert_eq(token_works(0, NULL), 0);
    cr_assert_eq(run_child(child_checks, slot), 0);
    cr_assert_eq(run_child(child_does_nothing, slot), 0);
    cr_assert_eq(token_works(0, NULL), 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

static int child_of_uninitialised(CK_SLOT_ID slot)
{
    (void)slot;
    if (p11->C_GetInfo(&(CK_INFO){0}) != CKR_CRYPTOKI_NOT_INITIALIZED) {
        return 1;
    }
    if (p11->C_Initialize(NULL) != CKR_OK) {
        return 2;
    }
    if (token_works(10, NULL) != 0) {
        return 3;
    }
    return p11->C_Finalize(NULL) == CKR_OK ? 0 : 4;
}

/* A child of a process that finalised (or never initialised) starts
 * clean. */
Test(fork, child_of_finalized_parent)
{
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(run_child(child_of_uninitialised, 0), 0);
    cr_assert_eq(p11->C_GetInfo(&(CK_INFO){0}), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static int grandchild_checks(CK_SLOT_ID slot)
{
    int rc = child_checks(slot);

    if (rc != 0) {
        return rc;
    }
    /* The child initialises again and forks in turn. */
    if (p11->C_Initialize(NULL) != CKR_OK) {
        return 40;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        return 41;
    }
    if (pid == 0) {
        _exit(child_checks(slot));
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return 42;
    }
    if (token_works(50, NULL) != 0) {
        return 43;
    }
    return p11->C_Finalize(NULL) == CKR_OK ? 0 : 44;
}

Test(fork, grandchild)
{
    CK_SLOT_ID slot = 0;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(token_works(0, &slot), 0);
    cr_assert_eq(run_child(grandchild_checks, slot), 0);
    cr_assert_eq(token_works(0, NULL), 0);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
