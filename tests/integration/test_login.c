/*
 * test_login.c - C_Login / C_Logout: PINs select views, failures count,
 * and the spec's bad inputs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "stack_world.h"

TestSuite(login, .init = stack_setup_bare, .fini = stack_teardown, .timeout = 240);

Test(login, wrong_pin_and_lock)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_TOKEN_INFO info;

    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(info.flags & CKF_USER_PIN_INITIALIZED);
    cr_assert(info.flags & CKF_LOGIN_REQUIRED);
    cr_assert_eq(login(p11, s, "wrong-pin"), CKR_PIN_INCORRECT);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(info.flags & CKF_USER_PIN_COUNT_LOW);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(info.flags & CKF_USER_PIN_COUNT_LOW, "a correct PIN clears no earlier failure");
    cr_assert_eq(login(p11, s, "wrong-1"), CKR_PIN_INCORRECT);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(info.flags & CKF_USER_PIN_FINAL_TRY);
    cr_assert_eq(login(p11, s, "x"), CKR_PIN_INCORRECT); /* below min-pin-len: counted */
    cr_assert_eq(login(p11, s, "wrong-3"), CKR_PIN_LOCKED);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    cr_assert(info.flags & CKF_USER_PIN_LOCKED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(login, bad_inputs_and_states)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    cr_assert_eq(p11->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    cr_assert_eq(p11->C_Login(s, 77, (CK_UTF8CHAR_PTR)WORK_PIN, 10), CKR_USER_TYPE_INVALID);
    cr_assert_eq(p11->C_Login(s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_Login(s + 1000, CKU_USER, (CK_UTF8CHAR_PTR)WORK_PIN, 10),
                 CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "12345678", 8), CKR_PIN_INCORRECT);
    /* Improper use of CKU_CONTEXT_SPECIFIC (here: not logged in). */
    cr_assert_eq(p11->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)WORK_PIN, 10),
                 CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_OK);
    cr_assert_eq(login(p11, s, WORK_PIN), CKR_USER_ALREADY_LOGGED_IN);
    cr_assert_eq(login(p11, s, ANON_PIN), CKR_USER_ALREADY_LOGGED_IN);
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "12345678", 8),
                 CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    cr_assert_eq(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR) "1234", 4), CKR_USER_NOT_LOGGED_IN);
    /* The new PIN is shorter than the policy's minimum (test_pin.c has the
     * rest of C_SetPIN). */
    cr_assert_eq(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR) "a", 1, (CK_UTF8CHAR_PTR) "b", 1),
                 CKR_PIN_LEN_RANGE);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK, "the other PIN selects the other view");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(login, read_only_session)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE ro;

    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    cr_assert_eq(p11->C_Login(ro, CKU_SO, (CK_UTF8CHAR_PTR) "12345678", 8),
                 CKR_SESSION_READ_ONLY_EXISTS);
    cr_assert_eq(p11->C_InitPIN(ro, (CK_UTF8CHAR_PTR) "1234", 4), CKR_SESSION_READ_ONLY);
    cr_assert_eq(p11->C_SetPIN(ro, (CK_UTF8CHAR_PTR) "a", 1, (CK_UTF8CHAR_PTR) "b", 1),
                 CKR_SESSION_READ_ONLY);
    cr_assert_eq(login(p11, ro, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A layer whose backend PIN no longer works is left out; the rest works. */
Test(login, failed_layer_login_leaves_the_rest)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &priv, sizeof(priv)};
    CK_OBJECT_HANDLE objs[8];

    cr_assert_eq(world_keypair(&w, "personal", "1111", "EC:prime256v1", "p-ec", "01"), 0);
    cr_assert_eq(world_keypair(&w, "group", "2222", "EC:prime256v1", "g-ec", "02"), 0);
    cr_assert_eq(world_sh("pkcs11-tool --module '%s' --token-label group --login --pin 2222 "
                          "--change-pin --new-pin 9999 >/dev/null 2>&1",
                          world_softhsm_module()),
                 0);
    p11 = work_session(&slot, &s);
    cr_assert_eq(find_all(p11, s, &t, 1, objs, 8), 1);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "p-ec"), objs[0]);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
