/*
 * test_pin.c - the PIN lifecycle (engine/login.c, cli/passwd.c,
 * cli/unlock.c, cli/enroll.c --so): C_SetPIN, failed-login lockout and
 * unlock, the CK_TOKEN_INFO PIN flags, the security officer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "identity_world.h"

TestSuite(pin, .init = identity_setup, .fini = identity_teardown, .timeout = 300);

static CK_RV set_pin(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *old, const char *new)
{
    return p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)old, strlen(old), (CK_UTF8CHAR_PTR) new, strlen(new));
}

static CK_FLAGS flags_of(CK_FUNCTION_LIST *p11, CK_SLOT_ID slot)
{
    CK_TOKEN_INFO info;

    cr_assert_eq(p11->C_GetTokenInfo(slot, &info), CKR_OK);
    return info.flags;
}

Test(pin, set_pin_in_user_session)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot), ro;

    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    cr_assert_eq(set_pin(p11, ro, ALICE_PIN, "alice-new-1"), CKR_SESSION_READ_ONLY);
    cr_assert_eq(set_pin(p11, s, ALICE_PIN, "short"), CKR_PIN_LEN_RANGE);
    cr_assert_eq(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, 0, "no PIN was compared");
    cr_assert_eq(set_pin(p11, s, ALICE_PIN, BOB_PIN), CKR_PIN_INCORRECT, "selects another view");
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, "a collision counts");
    cr_assert_eq(set_pin(p11, s, "wrong-pin-0", "alice-new-1"), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_FINAL_TRY, "a wrong old PIN counts");
    cr_assert_eq(p11->C_SetPIN(s, NULL, 3, (CK_UTF8CHAR_PTR) "x", 1), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK, "a right PIN works at the final try");
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_FINAL_TRY, "a right login clears nothing");
    cr_assert_eq(strata_cli("", "unlock --token Strata"), 0);
    cr_assert_eq(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, 0);
    cr_assert_eq(set_pin(p11, s, BOB_PIN, "alice-new-1"), CKR_PIN_INCORRECT,
                 "another view's PIN does not change the logged-in view");
    cr_assert_eq(set_pin(p11, s, ALICE_PIN, "alice-new-1"), CKR_OK);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_FINAL_TRY,
              "a change costs a guess too: its new PIN was compared with the other views'");
    /* The kept credentials follow the new PIN: the lazy layer still works. */
    cr_assert_eq(create_data(p11, s, "after-setpin", NULL), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, "alice-new-1"), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_INCORRECT);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Not logged in, a R/W public session: the old PIN names the view. */
Test(pin, set_pin_in_public_session)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);

    cr_assert_eq(set_pin(p11, s, BOB_PIN, "bob-new-pin"), CKR_OK);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_PIN_INCORRECT);
    cr_assert_eq(login(p11, s, "bob-new-pin"), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK, "other views keep their PINs");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* The wrong PIN above still counts (a right login clears nothing). */
    cr_assert_eq(strata_cli("", "unlock --token Strata"), 0);
    /* strata passwd does the same from the command line. */
    cr_assert_eq(strata_cli("bob-new-pin bob-third-1", "passwd --token Strata --view bob "
                                                       "--pin-stdin"),
                 0);
    cr_assert_neq(strata_cli(ALICE_PIN " alice-x-pin1", "passwd --token Strata --view bob "
                                                        "--pin-stdin"),
                  0, "alice's PIN is not bob's");
    cr_assert_neq(strata_cli("bob-third-1 " CAROL_PIN, "passwd --token Strata --view bob "
                                                       "--pin-stdin"),
                  0, "the new PIN selects carol");
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    /* Each of the three cost a guess, the change that worked included (its
     * new PIN was compared with the other views', as C_SetPIN's is). */
    cr_assert_eq(login(p11, s, "bob-third-1"), CKR_PIN_LOCKED);
    cr_assert_eq(strata_cli("", "unlock --token Strata"), 0);
    cr_assert_eq(login(p11, s, "bob-third-1"), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Failures count per virtual token; the flags follow the count; past the
 * limit even a right PIN is locked out until strata unlock. */
Test(pin, lockout_flags_and_unlock)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    char *out = NULL;

    cr_assert_eq(flags_of(p11, slot) &
                     (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED),
                 0);
    cr_assert_eq(login(p11, s, "wrong-pin-1"), CKR_PIN_INCORRECT);
    cr_assert_eq(flags_of(p11, slot) & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY),
                 CKF_USER_PIN_COUNT_LOW);
    cr_assert_eq(login(p11, s, "wrong-pin-2"), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_FINAL_TRY);
    cr_assert_eq(login(p11, s, "wrong-pin-3"), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_LOCKED);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_PIN_LOCKED, "the count is the token's");
    cr_assert_eq(world_sh_out(&out, "'%s' views", world_strata_cli()), 0);
    cr_assert_not_null(strstr(out, "locked"), "%s", out);
    free(out);
    /* An SO PIN set: unlock needs it. */
    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    cr_assert_neq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0, "set once");
    cr_assert_neq(strata_cli("wrong-so-pin", "unlock --token Strata --pin-stdin"), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_PIN_LOCKED);
    cr_assert_eq(strata_cli(SO_PIN, "unlock --token Strata --pin-stdin"), 0);
    cr_assert_eq(flags_of(p11, slot) & CKF_USER_PIN_LOCKED, 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* The audit trail has the administrative changes, and no PIN. */
    cr_assert_eq(world_sh_out(&out, "sqlite3 '%s' 'select action, outcome from audit'", w.catalog),
                 0);
    cr_assert_not_null(strstr(out, "unlock"), "%s", out);
    cr_assert_not_null(strstr(out, "so-set"), "%s", out);
    cr_assert_null(strstr(out, SO_PIN), "%s", out);
    free(out);
}

Test(pin, security_officer)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s, ro;
    CK_SESSION_INFO si;
    CK_OBJECT_HANDLE found[8];
    CK_ULONG public_objects;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    p11 = strata(&slot);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    s = open_rw(p11, slot);
    public_objects = find_all(p11, s, NULL, 0, found, 8);
    cr_assert_gt(public_objects, 0, "the public view (alice) shows group's public key");
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)),
                 CKR_SESSION_READ_ONLY_EXISTS);
    cr_assert_eq(p11->C_CloseSession(ro), CKR_OK);
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "wrong-so-1", 10), CKR_PIN_INCORRECT);
    cr_assert_eq(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)), CKR_OK);
    cr_assert_eq(p11->C_GetSessionInfo(s, &si), CKR_OK);
    cr_assert_eq(si.state, CKS_RW_SO_FUNCTIONS);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro),
                 CKR_SESSION_READ_WRITE_SO_EXISTS);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    cr_assert_eq(find_all(p11, s, NULL, 0, found, 8), public_objects,
                 "the SO sees the public view, as before login");
    cr_assert_eq(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR) "new-user-1", 10), CKR_FUNCTION_NOT_SUPPORTED,
                 "the public view (alice) stacks group, whose PIN the SO does not have");
    cr_assert_eq(p11->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN),
                                  (CK_UTF8CHAR_PTR) "Strata                          "),
                 CKR_FUNCTION_NOT_SUPPORTED);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---------------------------------------------------------------------
 * C_InitPIN and the SO's C_SetPIN (issue 13, item 4)
 * ------------------------------------------------------------------ */

static CK_RV init_pin(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *pin)
{
    return p11->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_RV so_login(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *pin)
{
    return p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

/* The identity policy with public-view="bob": bob stacks only the lazy
 * layer personal, whose token Strata provisions. */
static void public_bob_setup(void)
{
    const char *at = strstr(identity_policy, "max-failed-logins=");
    char policy[sizeof(identity_policy) + 64];

    cr_assert_not_null(at);
    snprintf(policy, sizeof(policy), "%.*spublic-view=\"bob\" %s", (int)(at - identity_policy),
             identity_policy, at);
    identity_setup_policy(policy);
}

/* C_InitPIN in an SO session sets the public view's PIN when all its
 * layers are Strata's and none of its tokens exists yet; the spec's codes
 * for bad input, each checked before any PIN is compared; the new PIN is
 * a counted guess (it is compared with the other views'); once the view's
 * token is provisioned, CKR_FUNCTION_NOT_SUPPORTED. */
Test(pin, init_pin_sets_the_public_views_pin, .init = public_bob_setup)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s, ro;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    p11 = strata(&slot);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    s = open_rw(p11, slot);
    cr_assert_eq(init_pin(p11, ro, "bob-new-pin-1"), CKR_SESSION_READ_ONLY);
    cr_assert_eq(init_pin(p11, s, "bob-new-pin-1"), CKR_USER_NOT_LOGGED_IN);
    cr_assert_eq(p11->C_CloseSession(ro), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    cr_assert_eq(init_pin(p11, s, "bob-new-pin-1"), CKR_USER_NOT_LOGGED_IN, "a user is not the SO");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_OK);
    cr_assert_eq(p11->C_InitPIN(s, NULL, 8), CKR_ARGUMENTS_BAD);
    cr_assert_eq(init_pin(p11, s, "short"), CKR_PIN_LEN_RANGE);
    cr_assert_eq(init_pin(p11, s, "a-pin-longer-than-the-32-bytes-max"), CKR_PIN_LEN_RANGE);
    cr_assert_eq(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, 0, "no PIN compared yet");
    cr_assert_eq(init_pin(p11, s, CAROL_PIN), CKR_PIN_INVALID, "another view's PIN");
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_COUNT_LOW, "and it was a counted guess");
    cr_assert_eq(init_pin(p11, s, "bob-new-pin-1"), CKR_OK);
    cr_assert(flags_of(p11, slot) & CKF_USER_PIN_FINAL_TRY, "a success is counted too");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(strata_cli(SO_PIN, "unlock --token Strata --pin-stdin"), 0);
    cr_assert_eq(login(p11, s, BOB_PIN), CKR_PIN_INCORRECT, "bob's old PIN is gone");
    cr_assert_eq(login(p11, s, "bob-new-pin-1"), CKR_OK);
    cr_assert_eq(create_data(p11, s, "bob-data", NULL), CKR_OK, "its token was provisioned");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK, "the other views keep their PINs");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_OK);
    cr_assert_eq(init_pin(p11, s, "bob-newer-pin"), CKR_FUNCTION_NOT_SUPPORTED,
                 "its token's PINs are sealed under the view's key");
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login(p11, s, "bob-new-pin-1"), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The SO's C_SetPIN changes the SO PIN: the old PIN is a counted SO
 * guess, a new PIN out of range counts nothing; the command line takes
 * the new SO PIN and refuses the old one. (That the provisioned tokens'
 * SO PINs are re-sealed to the new administrator key is
 * storage_admin::storage_so_passwd_reseals_to_the_new_key.) */
Test(pin, so_set_pin_changes_the_so_pin)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;

    cr_assert_eq(strata_cli(SO_PIN, "enroll --token Strata --so --pin-stdin"), 0);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK); /* provisions strata-alice */
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_OK);
    cr_assert_eq(set_pin(p11, s, SO_PIN, "short"), CKR_PIN_LEN_RANGE);
    cr_assert_eq(p11->C_SetPIN(s, NULL, 0, (CK_UTF8CHAR_PTR) "new-so-pin-2", 12),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(flags_of(p11, slot) & CKF_SO_PIN_COUNT_LOW, 0);
    cr_assert_eq(set_pin(p11, s, "wrong-so-pin", "new-so-pin-2"), CKR_PIN_INCORRECT);
    cr_assert(flags_of(p11, slot) & CKF_SO_PIN_COUNT_LOW, "a wrong old SO PIN is counted");
    cr_assert_eq(set_pin(p11, s, SO_PIN, "new-so-pin-2"), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(so_login(p11, s, SO_PIN), CKR_PIN_INCORRECT);
    cr_assert_eq(so_login(p11, s, "new-so-pin-2"), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(strata_cli("new-so-pin-2", "unlock --token Strata --pin-stdin"), 0);
    cr_assert_neq(strata_cli(SO_PIN, "unlock --token Strata --pin-stdin"), 0,
                  "the old SO PIN is refused by the command line too");
    cr_assert_eq(world_sh("sqlite3 '%s' \"SELECT count(*) FROM audit WHERE action = 'so-passwd'\""
                          " | grep -qx 1",
                          w.catalog),
                 0);
}
