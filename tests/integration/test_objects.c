/*
 * test_objects.c - objects across layers: where new objects land,
 * attributes, read-only layers and whiteouts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "stack_world.h"

TestSuite(objects, .init = stack_setup, .fini = stack_teardown, .timeout = 240);

/* Whether pkcs11-tool on SoftHSM2 directly lists label in token. */
static bool backend_has(const char *token, const char *pin, const char *label)
{
    return world_sh("pkcs11-tool --module '%s' --token-label %s --login --pin %s -O 2>/dev/null "
                    "| grep -Eq \"label: *'?%s'?$\"",
                    world_softhsm_module(), token, pin, label) == 0;
}

Test(objects, new_key_pair_lands_in_personal)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BYTE params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE;
    char label[] = "fresh";
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, 1}, {CKA_EC_PARAMS, params, sizeof(params)}, {CKA_LABEL, label, 5}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1}, {CKA_LABEL, label, 5}};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;

    cr_assert_eq(p11->C_GenerateKeyPair(s, &mech, pub, 3, priv, 3, &hpub, &hpriv), CKR_OK);
    cr_assert_neq(hpub, hpriv);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "fresh"), hpriv);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert(backend_has("personal", "1111", "fresh"));
    cr_assert_not(backend_has("group", "2222", "fresh"));
}

Test(objects, read_only_session_and_bad_inputs)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE ro;
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data, sizeof(data)}, {CKA_TOKEN, &yes, 1}};
    CK_OBJECT_HANDLE o = CANARY;

    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_OK);
    cr_assert_eq(login(p11, ro, WORK_PIN), CKR_OK);
    cr_assert_eq(p11->C_CreateObject(ro, t, 2, &o), CKR_SESSION_READ_ONLY);
    cr_assert_eq(p11->C_CreateObject(ro, t, 2, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_CreateObject(ro, NULL, 2, &o), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_CreateObject(ro + 1000, t, 2, &o), CKR_SESSION_HANDLE_INVALID);
    /* a session object is fine in a read-only session */
    cr_assert_eq(p11->C_CreateObject(ro, t, 1, &o), CKR_OK);
    cr_assert_geq(o, 0x80000000UL);
    cr_assert_eq(p11->C_DestroyObject(ro, o), CKR_OK);
    cr_assert_eq(p11->C_DestroyObject(ro, o), CKR_OBJECT_HANDLE_INVALID);
    o = find_one(p11, ro, CKO_PRIVATE_KEY, "p-ec");
    cr_assert_eq(p11->C_DestroyObject(ro, o), CKR_SESSION_READ_ONLY);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(objects, get_attribute_value_semantics)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE priv = find_one(p11, s, CKO_PRIVATE_KEY, "g-ec");
    CK_BYTE small[2] = {0xAA, 0xAA}, value[64];
    CK_OBJECT_CLASS cls = CANARY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_VALUE, value, sizeof(value)},
                        {CKA_LABEL, small, sizeof(small)},
                        {0x7fff1234UL, value, sizeof(value)}};
    CK_ULONG size = 0;

    cr_assert_eq(p11->C_GetAttributeValue(s, priv, t, 4), CKR_ATTRIBUTE_SENSITIVE);
    cr_assert_eq(cls, CKO_PRIVATE_KEY);
    cr_assert_eq(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    cr_assert_eq(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    cr_assert_eq(small[0], 0xAA);
    cr_assert_eq(t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    t[2].pValue = NULL;
    cr_assert_eq(p11->C_GetAttributeValue(s, priv, &t[2], 1), CKR_OK);
    cr_assert_eq(t[2].ulValueLen, 4);
    cr_assert_eq(p11->C_GetAttributeValue(s, priv, NULL, 1), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetAttributeValue(s, 0x7fff0000, t, 1), CKR_OBJECT_HANDLE_INVALID);
    cr_assert_eq(p11->C_GetObjectSize(s, priv, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetObjectSize(s, 0x7fff0000, &size), CKR_OBJECT_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(objects, read_only_layer_refuses_writes)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE priv = find_one(p11, s, CKO_PRIVATE_KEY, "g-ec"), copy = CANARY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE label = {CKA_LABEL, "x", 1};
    CK_ATTRIBUTE token = {CKA_TOKEN, &yes, 1};
    CK_OBJECT_HANDLE mine = find_one(p11, s, CKO_PRIVATE_KEY, "p-ec");

    cr_assert_eq(p11->C_SetAttributeValue(s, priv, &label, 1), CKR_ACTION_PROHIBITED);
    cr_assert_eq(p11->C_CopyObject(s, priv, &token, 1, &copy), CKR_ACTION_PROHIBITED);
    cr_assert_eq(p11->C_SetAttributeValue(s, mine, &label, 1), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "x"), mine);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(objects, destroy_on_read_only_layer_is_a_whiteout)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE priv = find_one(p11, s, CKO_PRIVATE_KEY, "g-ec");
    CK_ATTRIBUTE a = {CKA_LABEL, NULL, 0};

    cr_assert_neq(priv, CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_DestroyObject(s, priv), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_GetAttributeValue(s, priv, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    cr_assert_neq(find_one(p11, s, CKO_PUBLIC_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    /* the group token is untouched, and the whiteout persists */
    cr_assert(backend_has("group", "2222", "g-ec"));
    p11 = work_session(&slot, &s);
    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(objects, create_and_destroy_data_object)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data, sizeof(data)},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_LABEL, "note", 4},
                        {CKA_VALUE, "hello", 5}};
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;

    cr_assert_eq(p11->C_CreateObject(s, t, 4, &o), CKR_OK);
    cr_assert_lt(o, 0x80000000UL);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "note"), o);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert(backend_has("personal", "1111", "note"));
    p11 = work_session(&slot, &s);
    o = find_one(p11, s, CKO_DATA, "note");
    cr_assert_eq(p11->C_DestroyObject(s, o), CKR_OK);
    cr_assert_eq(find_one(p11, s, CKO_DATA, "note"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
