/*
 * test_find.c - C_FindObjects* across the layers of a view: which objects
 * each PIN shows, shadowing, and the spec's bad inputs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "stack_world.h"

TestSuite(find, .init = stack_setup, .fini = stack_teardown, .timeout = 240);

static bool has_label(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE *objs,
                      CK_ULONG n, const char *label)
{
    char buf[64];

    for (CK_ULONG i = 0; i < n; i++) {
        label_of(p11, s, objs[i], buf, sizeof(buf));
        if (strcmp(buf, label) == 0) {
            return true;
        }
    }
    return false;
}

Test(find, work_pin_shows_personal_and_group)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &priv, sizeof(priv)};
    CK_OBJECT_HANDLE objs[32];
    CK_ULONG n = find_all(p11, s, &t, 1, objs, 32);

    cr_assert_eq(n, 4, "private keys found: %lu", n);
    cr_assert(has_label(p11, s, objs, n, "p-ec"));
    cr_assert(has_label(p11, s, objs, n, "g-ec"));
    cr_assert(has_label(p11, s, objs, n, "g-rsa"));
    cr_assert(has_label(p11, s, objs, n, "shadow-p"));
    cr_assert_not(has_label(p11, s, objs, n, "shadow-g"), "the lower object was not shadowed");
    cr_assert_not(has_label(p11, s, objs, n, "o-ec"), "another view's object is visible");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(find, anon_pin_shows_only_its_view)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_HANDLE objs[32];
    CK_ULONG n;

    cr_assert_eq(login(p11, s, ANON_PIN), CKR_OK);
    n = find_all(p11, s, NULL, 0, objs, 32);
    cr_assert_eq(n, 2, "objects: %lu", n); /* o-ec private + public */
    cr_assert(has_label(p11, s, objs, n, "o-ec"));
    cr_assert_not(has_label(p11, s, objs, n, "p-ec"));
    cr_assert_not(has_label(p11, s, objs, n, "g-ec"));
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The shadow scan: a template that the upper object does not match must
 * still let it hide the lower one with the same class + id. */
Test(find, shadowing_with_template_on_label)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);

    cr_assert_eq(find_one(p11, s, CKO_PRIVATE_KEY, "shadow-g"), CK_INVALID_HANDLE);
    cr_assert_eq(find_one(p11, s, CKO_PUBLIC_KEY, "shadow-g"), CK_INVALID_HANDLE);
    cr_assert_neq(find_one(p11, s, CKO_PRIVATE_KEY, "shadow-p"), CK_INVALID_HANDLE);
    cr_assert_neq(find_one(p11, s, CKO_PRIVATE_KEY, "g-ec"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Writes a data object (no CKA_ID in v2.40) into a SoftHSM2 token directly. */
static void write_data(const char *token, const char *pin, const char *label)
{
    cr_assert_eq(world_sh("printf 'payload' > '%s/data.bin' && pkcs11-tool --module '%s' "
                          "--token-label '%s' --login --pin '%s' --write-object '%s/data.bin' "
                          "--type data --label '%s' >/dev/null 2>&1",
                          w.dir, world_softhsm_module(), token, pin, w.dir, label),
                 0, "pkcs11-tool --write-object %s", label);
}

/* Objects with no identity across layers (a data object has no CKA_ID)
 * neither shadow nor are shadowed: both layers' data objects are found. */
Test(find, objects_without_id_are_not_shadowed)
{
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE templ[] = {{CKA_CLASS, &data, sizeof(data)}};
    CK_OBJECT_HANDLE found[8];
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11;

    write_data("personal", "1111", "p-data");
    write_data("group", "2222", "g-data-1");
    write_data("group", "2222", "g-data-2");
    p11 = work_session(&slot, &s);
    cr_assert_eq(find_all(p11, s, templ, 1, found, 8), 3, "every data object of both layers");
    cr_assert_neq(find_one(p11, s, CKO_DATA, "p-data"), CK_INVALID_HANDLE);
    cr_assert_neq(find_one(p11, s, CKO_DATA, "g-data-1"), CK_INVALID_HANDLE);
    cr_assert_neq(find_one(p11, s, CKO_DATA, "g-data-2"), CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Before login the first view (work) is public: its four visible public
 * keys are found (test_prelogin.c has the rest). */
Test(find, public_objects_before_login)
{
    CK_SLOT_ID slot;
    CK_FUNCTION_LIST *p11 = strata(&slot);
    CK_SESSION_HANDLE s = open_rw(p11, slot);
    CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &pub, sizeof(pub)};
    CK_OBJECT_HANDLE objs[8];

    cr_assert_eq(find_all(p11, s, NULL, 0, objs, 8), 4);
    cr_assert_eq(find_all(p11, s, &t, 1, objs, 8), 4);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(find, logout_returns_to_public_view)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE objs[32];
    CK_ULONG n = find_all(p11, s, NULL, 0, objs, 32), got = CANARY;

    cr_assert_geq(n, 8);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    /* the search begun before the logout has ended */
    cr_assert_eq(p11->C_FindObjects(s, objs, 32, &got), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(find_all(p11, s, NULL, 0, objs, 32), 4, "work's public keys");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(find, bad_inputs)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_OBJECT_HANDLE objs[4];
    CK_ULONG got = CANARY;
    CK_ATTRIBUTE bad = {CKA_LABEL, NULL, 4};

    cr_assert_eq(p11->C_FindObjectsInit(s + 1000, NULL, 0), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_FindObjectsInit(s, &bad, 1), CKR_ATTRIBUTE_VALUE_INVALID);
    cr_assert_eq(p11->C_FindObjects(s, objs, 4, &got), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OPERATION_ACTIVE);
    cr_assert_eq(p11->C_FindObjects(s, NULL, 4, &got), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_FindObjects(s, objs, 4, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_FindObjects(s, objs, 0, &got), CKR_OK);
    cr_assert_eq(got, 0);
    cr_assert_eq(p11->C_FindObjects(s + 1000, objs, 4, &got), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
