/*
 * test_reconnect.c - backend reconnects (engine/reconnect.c, backend.c,
 * handles.c): after a module is cycled, virtual sessions keep working,
 * layer logins are replayed and the application's object handles stay
 * valid; a backend answering CKR_DEVICE_REMOVED is reconnected once and
 * the next call works.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "identity_world.h"

TestSuite(reconnect, .init = identity_setup, .fini = identity_teardown, .timeout = 300);

static CK_OBJECT_HANDLE find_label(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                   const char *label)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE found[4];

    cr_assert_eq(find_all(p11, s, t, 2, found, 4), 1, "%s", label);
    return found[0];
}

static CK_RV sign_with(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CK_BYTE digest[32] = {1, 2, 3}, sig[128];
    CK_ULONG len = sizeof(sig);
    CK_RV rv = p11->C_SignInit(s, &m, key);

    return rv == CKR_OK ? p11->C_Sign(s, digest, sizeof(digest), sig, &len) : rv;
}

/* A token provisioned by another process makes this process cycle the
 * SoftHSM2 module that also holds the group layer: the group key's
 * virtual handle, taken before, still signs, in a session opened before. */
Test(reconnect, handles_survive_cycle)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot), early = open_rw(p11, slot);
    CK_OBJECT_HANDLE key;
    char label[32];
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};

    cr_assert_eq(login(p11, s, CAROL_PIN), CKR_OK);
    key = find_label(p11, early, CKO_PRIVATE_KEY, "g-ec");
    cr_assert_eq(sign_with(p11, early, key), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(strata_cli(ALICE_PIN, "provision --token Strata --view alice --pin-stdin"), 0);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK); /* cycles the module */
    cr_assert_eq(p11->C_GetAttributeValue(early, key, &a, 1), CKR_OK);
    cr_assert_eq(a.ulValueLen, 4);
    cr_assert_eq(memcmp(label, "g-ec", 4), 0);
    cr_assert_eq(sign_with(p11, early, key), CKR_OK, "the group login was replayed");
    cr_assert_eq(find_label(p11, s, CKO_PRIVATE_KEY, "g-ec"), key);
    cr_assert_eq(create_data(p11, early, "alice-after", NULL), CKR_OK);
    cr_assert_eq(backend_has_data("strata-alice", "alice-after"), 1);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---- CKR_DEVICE_REMOVED from the test backend ------------------------ */

static const char tb_policy[] =
    "<strata version=\"1\">\n"
    "  <catalog path=\"@CATALOG@\"/>\n"
    "  <module id=\"tb\" path=\"@TB@\"/>\n"
    "  <layer id=\"tb\" module=\"tb\" token=\"strata-test-test\"/>\n"
    "  <token label=\"Strata\" max-failed-logins=\"3\" min-pin-len=\"6\" max-pin-len=\"32\">\n"
    "    <kdf ops=\"1\" mem=\"8192\"/>\n"
    "    <view id=\"v\" layers=\"tb\"/>\n"
    "  </token>\n"
    "</strata>\n";

static void tb_setup(void)
{
    char xml[sizeof(tb_policy) + PATH_MAX];
    const char *tb = getenv("STRATA_TEST_BACKEND");
    const char *at = strstr(tb_policy, "@TB@");

    cr_assert_not_null(tb);
    world_setup(&w);
    snprintf(xml, sizeof(xml), "%.*s%s%s", (int)(at - tb_policy), tb_policy, tb, at + 4);
    cr_assert_eq(world_policy(&w, xml), 0);
    cr_assert_eq(strata_cli(ALICE_PIN " 1234", "enroll --token Strata --view v --pin-stdin"), 0);
}

Test(reconnect_removed, device_removed_reconnects_once, .init = tb_setup, .fini = identity_teardown,
     .timeout = 120)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE secret;
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE t = {CKA_CLASS, &data, sizeof(data)};
    char label[32];
    CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
    CK_OBJECT_HANDLE found[8];
    CK_ULONG n = 99;
    CK_RV rv;

    /* The backend's second C_FindObjectsInit answers CKR_DEVICE_REMOVED. */
    setenv("STRATA_TEST_BACKEND_FAIL", "C_FindObjectsInit:CKR_DEVICE_REMOVED:2", 1);
    p11 = strata(&slot);
    s = open_rw(p11, slot);
    cr_assert_eq(login(p11, s, ALICE_PIN), CKR_OK);
    secret = find_label(p11, s, CKO_DATA, "secret-1");
    /* The next search meets the removal: the layer is left out of it (the
     * search answers nothing) and its module is marked for a reconnect. */
    cr_assert_eq(p11->C_FindObjectsInit(s, &t, 1), CKR_OK);
    unsetenv("STRATA_TEST_BACKEND_FAIL"); /* the restarted backend is healthy */
    cr_assert_eq(p11->C_FindObjects(s, found, 8, &n), CKR_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    rv = p11->C_GetAttributeValue(s, secret, &a, 1); /* reconnects first */
    cr_assert_eq(rv, CKR_OK, "0x%lx", rv);
    cr_assert_eq(find_label(p11, s, CKO_DATA, "secret-1"), secret,
                 "reconnected, the login replayed, the handle the same");
    cr_assert_eq(p11->C_GetAttributeValue(s, secret, &a, 1), CKR_OK);
    cr_assert_eq(a.ulValueLen, 8);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
