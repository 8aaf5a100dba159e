/*
 * test_v3.c - the PKCS#11 3.0 door (engine/iface.c, issue 16), driven
 * like a 3.0 client: dlopen, C_GetInterface, then the 3.0 function list.
 * Built against NSS's 3.0 declarations, as iface.c is.
 *
 * The world: SoftHSM2 tokens "personal" (user PIN 1111, an EC key pair
 * "p-ec") and "other" (3333, "o-ec"); the virtual token "Strata" with the
 * views work = personal and anon = other, max-failed-logins 3.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <nss/pkcs11.h>

#include "world.h"

/* PKCS#11 3.0's code for an AEAD message that does not verify (OASIS
 * pkcs11t.h 3.0; NSS 3.87's header lacks it). */
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED 0x42UL
#endif

#define WORK_PIN "work-pin-1"
#define ANON_PIN "anon-pin-1"

static world w;

static const char v3_policy[] = "<strata version=\"1\">\n"
                                "  <catalog path=\"@CATALOG@\"/>\n"
                                "  <module id=\"soft\" path=\"@SOFTHSM@\"/>\n"
                                "  <layer id=\"personal\" module=\"soft\" token=\"personal\"/>\n"
                                "  <layer id=\"other\" module=\"soft\" token=\"other\"/>\n"
                                "  <token label=\"Strata\" max-failed-logins=\"3\">\n"
                                "    <kdf ops=\"1\" mem=\"8192\"/>\n"
                                "    <view id=\"work\" layers=\"personal\"/>\n"
                                "    <view id=\"anon\" layers=\"other\"/>\n"
                                "  </token>\n"
                                "</strata>\n";

static int enroll(const char *view, const char *pins)
{
    return world_sh("printf '%%s\\n' %s | '%s' enroll --token Strata --view %s --pin-stdin "
                    ">/dev/null",
                    pins, world_strata_cli(), view);
}

static void v3_setup(void)
{
    world_setup(&w);
    cr_assert_eq(world_token(&w, "personal", "12345678", "1111"), 0);
    cr_assert_eq(world_token(&w, "other", "12345678", "3333"), 0);
    cr_assert_eq(world_keypair(&w, "personal", "1111", "EC:prime256v1", "p-ec", "01"), 0);
    cr_assert_eq(world_keypair(&w, "other", "3333", "EC:prime256v1", "o-ec", "09"), 0);
    cr_assert_eq(world_policy(&w, v3_policy), 0);
    cr_assert_eq(enroll("work", WORK_PIN " 1111"), 0);
    cr_assert_eq(enroll("anon", ANON_PIN " 3333"), 0);
}

static void v3_teardown(void)
{
    world_teardown(&w);
}

TestSuite(v3, .init = v3_setup, .fini = v3_teardown, .timeout = 120);

typedef CK_RV (*get_interface_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
typedef CK_RV (*get_interface_list_fn)(CK_INTERFACE_PTR, CK_ULONG_PTR);

static void *module(void)
{
    void *handle = dlopen(world_strata_module(), RTLD_NOW | RTLD_LOCAL);

    cr_assert(handle != NULL, "dlopen: %s", dlerror());
    return handle;
}

static get_interface_fn get_interface(void)
{
    get_interface_fn fn;

    *(void **)&fn = dlsym(module(), "C_GetInterface");
    cr_assert(fn != NULL, "the module exports C_GetInterface");
    return fn;
}

static get_interface_list_fn get_interface_list(void)
{
    get_interface_list_fn fn;

    *(void **)&fn = dlsym(module(), "C_GetInterfaceList");
    cr_assert(fn != NULL, "the module exports C_GetInterfaceList");
    return fn;
}

/* The 3.0 list (C_GetInterface("PKCS 11", 3.0)), not initialised. */
static CK_FUNCTION_LIST_3_0 *list_v3(void)
{
    CK_VERSION v = {3, 0};
    CK_INTERFACE *iface = NULL;

    cr_assert_eq(get_interface()((CK_UTF8CHAR_PTR) "PKCS 11", &v, &iface, 0), CKR_OK);
    return iface->pFunctionList;
}

/* The 3.0 list, initialised, and a R/W session on the virtual token. */
static CK_FUNCTION_LIST_3_0 *session_v3(CK_SESSION_HANDLE *s)
{
    CK_FUNCTION_LIST_3_0 *p11 = list_v3();
    CK_SLOT_ID slot;
    CK_ULONG n = 1;

    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s),
                 CKR_OK);
    return p11;
}

static CK_RV login_user(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s, const char *pin,
                        const char *name, size_t name_len)
{
    return p11->C_LoginUser(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin), (CK_UTF8CHAR_PTR)name,
                            name_len);
}

/* The private keys labelled label the session sees (up to max) into h;
 * returns how many. */
static CK_ULONG find_keys(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s, const char *label,
                          CK_OBJECT_HANDLE *h, CK_ULONG max)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ULONG n = 0;

    cr_assert_eq(p11->C_FindObjectsInit(s, t, 2), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, h, max, &n), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    return n;
}

static CK_ULONG count_keys(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s, const char *label)
{
    CK_OBJECT_HANDLE h[4];

    return find_keys(p11, s, label, h, 4);
}

static CK_OBJECT_HANDLE find_key(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s, const char *label)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    cr_assert_eq(find_keys(p11, s, label, &h, 1), 1, "key %s", label);
    return h;
}

/* ---------------------------------------------------------------------
 * C_GetInterfaceList / C_GetInterface
 * ------------------------------------------------------------------ */

Test(v3, interface_list_offers_3_0_then_2_40)
{
    get_interface_list_fn list = get_interface_list();
    CK_INTERFACE ifaces[3];
    CK_ULONG n = 0;

    cr_assert_eq(list(NULL, &n), CKR_OK, "a NULL list asks for the count");
    cr_assert_eq(n, 2);
    n = 3;
    cr_assert_eq(list(ifaces, &n), CKR_OK);
    cr_assert_eq(n, 2);
    for (int i = 0; i < 2; i++) {
        const CK_VERSION *v = ifaces[i].pFunctionList;
        cr_assert_str_eq((const char *)ifaces[i].pInterfaceName, "PKCS 11");
        cr_assert_eq(ifaces[i].flags, 0, "not fork-safe: a child must call C_Initialize");
        cr_assert_eq(v->major, i == 0 ? 3 : 2);
        cr_assert_eq(v->minor, i == 0 ? 0 : 40);
    }
}

Test(v3, interface_list_bad_arguments)
{
    get_interface_list_fn list = get_interface_list();
    CK_INTERFACE ifaces[2];
    CK_ULONG n = 1;

    cr_assert_eq(list(ifaces, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(list(NULL, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(list(ifaces, &n), CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(n, 2, "the count is reported");
    n = 0;
    cr_assert_eq(list(ifaces, &n), CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(n, 2);
}

Test(v3, get_interface_default_name_version)
{
    get_interface_fn get = get_interface();
    CK_FUNCTION_LIST_PTR v2 = NULL;
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
    CK_VERSION v240 = {2, 40};
    CK_INTERFACE *iface = NULL;

    cr_assert_eq(get(NULL, NULL, &iface, 0), CKR_OK, "NULL name and version: the default");
    cr_assert_eq(((CK_VERSION *)iface->pFunctionList)->major, 3);
    iface = NULL;
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &iface, 0), CKR_OK);
    cr_assert_eq(((CK_VERSION *)iface->pFunctionList)->major, 3);
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &iface, 0), CKR_OK);
    *(void **)&get_list = dlsym(module(), "C_GetFunctionList");
    cr_assert_eq(get_list(&v2), CKR_OK);
    cr_assert_eq(iface->pFunctionList, v2, "2.40 is what C_GetFunctionList returns");
    cr_assert_eq(v2->version.major, 2);
    cr_assert_eq(v2->version.minor, 40);
}

Test(v3, get_interface_bad_arguments)
{
    get_interface_fn get = get_interface();
    CK_VERSION v31 = {3, 1}, v211 = {2, 11};
    CK_INTERFACE *iface = NULL;

    cr_assert_eq(get(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "Vendor NSS", NULL, &iface, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "PKCS 11 ", NULL, &iface, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "PKCS 11", &v31, &iface, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(get((CK_UTF8CHAR_PTR) "PKCS 11", &v211, &iface, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(get(NULL, NULL, &iface, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD,
                 "no interface is fork-safe");
    cr_assert_null(iface, "nothing written on failure");
}

/* The 3.0 list holds the 2.40 functions, then the 3.0 ones; before
 * C_Initialize each answers CKR_CRYPTOKI_NOT_INITIALIZED. */
Test(v3, list_v3_before_initialize)
{
    CK_FUNCTION_LIST_3_0 *p11 = list_v3();
    CK_INTERFACE *iface = NULL;
    CK_ULONG n = 0;

    cr_assert_eq(p11->version.major, 3);
    cr_assert_eq(p11->version.minor, 0);
    cr_assert_eq(p11->C_GetInterfaceList(NULL, &n), CKR_OK);
    cr_assert_eq(p11->C_GetInterface(NULL, NULL, &iface, 0), CKR_OK);
    cr_assert_eq(iface->pFunctionList, p11);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    cr_assert_eq(
        p11->C_LoginUser(1, CKU_USER, (CK_UTF8CHAR_PTR) "x", 1, (CK_UTF8CHAR_PTR) "work", 4),
        CKR_CRYPTOKI_NOT_INITIALIZED);
    cr_assert_eq(p11->C_SessionCancel(1, CKF_SIGN), CKR_CRYPTOKI_NOT_INITIALIZED);
    cr_assert_eq(p11->C_MessageEncryptFinal(1), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* ---------------------------------------------------------------------
 * C_LoginUser
 * ------------------------------------------------------------------ */

Test(v3, login_user_names_the_view)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    cr_assert_eq(count_keys(p11, s, "p-ec"), 1);
    cr_assert_eq(count_keys(p11, s, "o-ec"), 0);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login_user(p11, s, ANON_PIN, "anon", 4), CKR_OK);
    cr_assert_eq(count_keys(p11, s, "o-ec"), 1);
    cr_assert_eq(count_keys(p11, s, "p-ec"), 0);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Another view's name, an unknown name, a name with a NUL inside, an
 * empty name: each answers what a wrong PIN answers and is counted, so
 * three of them lock the token (max-failed-logins 3). */
Test(v3, login_user_other_or_unknown_name_is_a_wrong_pin)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);

    cr_assert_eq(login_user(p11, s, "wrong-pin", "work", 4), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "anon", 4), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "nosuch", 6), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_PIN_LOCKED,
                 "each failure was counted");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(v3, login_user_odd_names_are_counted)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work\0x", 6), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "", 0), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "wor", 3), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_PIN_LOCKED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(v3, login_user_bad_arguments)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);

    cr_assert_eq(
        p11->C_LoginUser(s, CKU_USER, (CK_UTF8CHAR_PTR)WORK_PIN, strlen(WORK_PIN), NULL, 4),
        CKR_ARGUMENTS_BAD, "NULL username");
    cr_assert_eq(p11->C_LoginUser(s, CKU_USER, NULL, 4, (CK_UTF8CHAR_PTR) "work", 4),
                 CKR_ARGUMENTS_BAD, "NULL PIN");
    cr_assert_eq(p11->C_LoginUser(s, 7, (CK_UTF8CHAR_PTR)WORK_PIN, strlen(WORK_PIN),
                                  (CK_UTF8CHAR_PTR) "work", 4),
                 CKR_USER_TYPE_INVALID);
    cr_assert_eq(p11->C_LoginUser(s + 100, CKU_USER, (CK_UTF8CHAR_PTR)WORK_PIN, strlen(WORK_PIN),
                                  (CK_UTF8CHAR_PTR) "work", 4),
                 CKR_SESSION_HANDLE_INVALID);
    /* none of them was counted (max-failed-logins 3): two wrong names, then
     * the right one still logs in */
    cr_assert_eq(login_user(p11, s, WORK_PIN, "anon", 4), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "x", 1), CKR_PIN_INCORRECT);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_USER_ALREADY_LOGGED_IN);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* C_Login keeps choosing the view by PIN alone. */
Test(v3, login_still_chooses_by_pin)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);

    cr_assert_eq(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)ANON_PIN, strlen(ANON_PIN)), CKR_OK);
    cr_assert_eq(count_keys(p11, s, "o-ec"), 1);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---------------------------------------------------------------------
 * C_SessionCancel
 * ------------------------------------------------------------------ */

/* A cancelled signature ends in the backend too: a new C_SignInit works
 * (SoftHSM2 would answer CKR_OPERATION_ACTIVE to one whose operation
 * Strata only forgot) and signs. */
Test(v3, session_cancel_ends_a_signature)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE hash[32] = {1}, sig[128];
    CK_ULONG sig_len = sizeof(sig);
    CK_OBJECT_HANDLE key;

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    key = find_key(p11, s, "p-ec");
    cr_assert_eq(p11->C_SignInit(s, &mech, key), CKR_OK);
    cr_assert_eq(p11->C_SignInit(s, &mech, key), CKR_OPERATION_ACTIVE);
    cr_assert_eq(p11->C_SessionCancel(s, CKF_SIGN), CKR_OK);
    cr_assert_eq(p11->C_Sign(s, hash, sizeof(hash), sig, &sig_len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_SignInit(s, &mech, key), CKR_OK);
    cr_assert_eq(p11->C_Sign(s, hash, sizeof(hash), sig, &sig_len), CKR_OK);
    cr_assert_eq(sig_len, 64);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Only the named operations end; naming one that is not active is not an
 * error. */
Test(v3, session_cancel_ends_only_what_it_names)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_OBJECT_HANDLE h[4];
    CK_BYTE digest[32];
    CK_ULONG n = 0, len = sizeof(digest);

    cr_assert_eq(p11->C_SessionCancel(s, CKF_ENCRYPT | CKF_FIND_OBJECTS), CKR_OK);
    cr_assert_eq(p11->C_DigestInit(s, &sha), CKR_OK);
    cr_assert_eq(p11->C_DigestUpdate(s, (CK_BYTE_PTR) "abc", 3), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_SessionCancel(s, CKF_FIND_OBJECTS), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, h, 4, &n), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_DigestUpdate(s, (CK_BYTE_PTR) "def", 3), CKR_OK, "digest untouched");
    cr_assert_eq(p11->C_SessionCancel(s, CKF_DIGEST), CKR_OK);
    cr_assert_eq(p11->C_DigestFinal(s, digest, &len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_DigestInit(s, &sha), CKR_OK, "the backend's digest ended too");
    cr_assert_eq(p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &len), CKR_OK);
    cr_assert_eq(digest[0], 0xba, "SHA-256(abc)");
    cr_assert_eq(p11->C_FindObjectsInit(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    cr_assert_eq(p11->C_SessionCancel(s + 100, CKF_SIGN), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ---------------------------------------------------------------------
 * Message-based functions (engine/message.c)
 * ------------------------------------------------------------------ */

/* The 3.0 mechanism flags (CKF_MESSAGE_* and CKF_MULTI_MESSAGE), reserved
 * in 2.40. */
#define FLAGS_3_0                                                                                  \
    (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY |           \
     CKF_MULTI_MESSAGE)

/* The message flags Strata's emulation earns for a mechanism with the
 * 2.40 flags flags: AES-GCM encryption and decryption, any signature. */
static CK_FLAGS emulated(CK_MECHANISM_TYPE type, CK_FLAGS flags)
{
    CK_FLAGS want = 0;

    if (type == CKM_AES_GCM) {
        want |= (flags & CKF_ENCRYPT) ? CKF_MESSAGE_ENCRYPT : 0;
        want |= (flags & CKF_DECRYPT) ? CKF_MESSAGE_DECRYPT : 0;
    }
    want |= (flags & CKF_SIGN) ? CKF_MESSAGE_SIGN : 0;
    want |= (flags & CKF_VERIFY) ? CKF_MESSAGE_VERIFY : 0;
    return want;
}

/* Every mechanism of slot: the 3.0 list's C_GetMechanismInfo is the 2.40
 * list's plus exactly the emulated message flags; the 2.40 list shows no
 * 3.0 flag. Returns the number of mechanisms. */
static CK_ULONG check_mechanisms(CK_FUNCTION_LIST_3_0 *p11, CK_FUNCTION_LIST *v2, CK_SLOT_ID slot)
{
    CK_MECHANISM_TYPE types[256];
    CK_ULONG n = 256;

    cr_assert_eq(p11->C_GetMechanismList(slot, types, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_MECHANISM_INFO i3, i2;

        cr_assert_eq(p11->C_GetMechanismInfo(slot, types[i], &i3), CKR_OK);
        cr_assert_eq(v2->C_GetMechanismInfo(slot, types[i], &i2), CKR_OK);
        cr_assert_eq(i2.flags & FLAGS_3_0, 0, "2.40 list, mechanism %#lx: flags %#lx", types[i],
                     i2.flags);
        cr_assert_eq(i3.flags, i2.flags | emulated(types[i], i2.flags),
                     "mechanism %#lx: 3.0 flags %#lx, 2.40 flags %#lx", types[i], i3.flags,
                     i2.flags);
        cr_assert_eq(i3.ulMinKeySize, i2.ulMinKeySize);
        cr_assert_eq(i3.ulMaxKeySize, i2.ulMaxKeySize);
    }
    return n;
}

/* C_GetMechanismInfo through the 3.0 list flags what the message
 * functions emulate (SoftHSM2: AES-GCM encrypts and decrypts messages,
 * ECDSA signs them, AES-CBC does neither); the 2.40 list answers as
 * before; bad arguments answer as 2.40's. */
Test(v3, mechanism_info_message_flags)
{
    CK_FUNCTION_LIST_3_0 *p11 = list_v3();
    CK_FUNCTION_LIST *v2 = NULL;
    CK_MECHANISM_INFO info;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;

    cr_assert_eq(p11->C_GetFunctionList(&v2), CKR_OK);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_AES_GCM, &info), CKR_OK);
    cr_assert_eq(info.flags & FLAGS_3_0, CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT, "AES-GCM: %#lx",
                 info.flags);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_ECDSA, &info), CKR_OK);
    cr_assert_eq(info.flags & FLAGS_3_0, CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY, "ECDSA: %#lx",
                 info.flags);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_AES_CBC_PAD, &info), CKR_OK);
    cr_assert(info.flags & CKF_ENCRYPT);
    cr_assert_eq(info.flags & FLAGS_3_0, 0, "AES-CBC-PAD is no message mechanism: %#lx",
                 info.flags);
    cr_assert_gt(check_mechanisms(p11, v2, slot), 10);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_AES_GCM, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GetMechanismInfo(slot + 100, CKM_AES_GCM, &info), CKR_SLOT_ID_INVALID);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, 0x7fffff00UL, &info), CKR_MECHANISM_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_AES_GCM, &info), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* A backend that reports 3.0 message flags through its 2.40 list (the
 * test backend, told so): Strata passes none of them on, since its
 * message functions are its own emulation; the 3.0 list shows the
 * emulated ones only (RSA-PKCS, sign: message signing). */
Test(v3, mechanism_info_hides_a_backends_message_flags)
{
    const char *tb = getenv("STRATA_TEST_BACKEND");
    char conf[4200], policy[8192];
    CK_FUNCTION_LIST_3_0 *p11;
    CK_FUNCTION_LIST *v2 = NULL;
    CK_MECHANISM_INFO info;
    CK_SLOT_ID slot;
    CK_ULONG n = 1;
    FILE *f;

    cr_assert(tb != NULL, "STRATA_TEST_BACKEND unset (run through meson test)");
    snprintf(conf, sizeof(conf), "%s/tb.conf", w.dir);
    f = fopen(conf, "w");
    cr_assert(f != NULL);
    fprintf(f, "mechanism = 0x%lx 0x%lx\nmechanism = 0x%lx 0x%lx\n", (unsigned long)CKM_RSA_PKCS,
            (unsigned long)(CKF_SIGN | FLAGS_3_0), (unsigned long)CKM_AES_GCM,
            (unsigned long)(CKF_ENCRYPT | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT));
    cr_assert_eq(fclose(f), 0);
    setenv("STRATA_TEST_BACKEND_CONF", conf, 1);
    snprintf(policy, sizeof(policy),
             "<strata version=\"1\">\n"
             "  <catalog path=\"@CATALOG@\"/>\n"
             "  <module id=\"tb\" path=\"%s\"/>\n"
             "  <layer id=\"top\" module=\"tb\" token=\"strata-test-test\"/>\n"
             "  <token label=\"Strata\">\n"
             "    <kdf ops=\"1\" mem=\"8192\"/>\n"
             "    <view id=\"work\" layers=\"top\"/>\n"
             "  </token>\n"
             "</strata>\n",
             tb);
    cr_assert_eq(world_policy(&w, policy), 0);
    p11 = list_v3();
    cr_assert_eq(p11->C_GetFunctionList(&v2), CKR_OK);
    cr_assert_eq(p11->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    cr_assert_eq(v2->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &info), CKR_OK);
    cr_assert_eq(info.flags, CKF_SIGN, "2.40: %#lx", info.flags);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &info), CKR_OK);
    cr_assert_eq(info.flags, CKF_SIGN | CKF_MESSAGE_SIGN, "3.0: %#lx", info.flags);
    cr_assert_eq(p11->C_GetMechanismInfo(slot, CKM_AES_GCM, &info), CKR_OK);
    cr_assert_eq(info.flags, CKF_ENCRYPT | CKF_MESSAGE_ENCRYPT,
                 "3.0: no message decryption where the token does not decrypt: %#lx", info.flags);
    cr_assert_eq(check_mechanisms(p11, v2, slot), 2);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* An AES-256 public session key in the work view (logged in): public, so
 * that it outlives a logout (SoftHSM2 destroys private session objects
 * at C_Logout). */
static CK_OBJECT_HANDLE aes_key(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s)
{
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &no, sizeof(no)},     {CKA_LABEL, "aes", 3},
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    cr_assert_eq(p11->C_GenerateKey(s, &gen, t, sizeof(t) / sizeof(t[0]), &key), CKR_OK);
    return key;
}

static CK_GCM_MESSAGE_PARAMS gcm_message(CK_BYTE *iv, CK_BYTE *tag)
{
    CK_GCM_MESSAGE_PARAMS p = {iv, 12, 0, CKG_NO_GENERATE, tag, 128};

    return p;
}

static CK_BYTE plain[37] = "a message of thirty-seven bytes long";
static CK_BYTE aad[] = "header";

/* The emulation over SoftHSM2's 2.40 functions gives what the 2.40 path
 * gives on the same key, IV and AAD: the same ciphertext and tag; and it
 * decrypts them, refusing a changed tag. */
Test(v3, message_gcm_equals_the_2_40_path)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_BYTE iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    CK_GCM_PARAMS gcm = {iv, 12, 96, aad, sizeof(aad), 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)}, msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE both[64], ct[64], tag[16], back[64];
    CK_ULONG both_len = sizeof(both), ct_len = sizeof(ct), back_len = sizeof(back);
    CK_GCM_MESSAGE_PARAMS params = gcm_message(iv, tag);
    CK_RV rv;

    cr_assert_eq(p11->C_EncryptInit(s, &mech, key), CKR_OK);
    cr_assert_eq(p11->C_Encrypt(s, plain, sizeof(plain), both, &both_len), CKR_OK);
    cr_assert_eq(both_len, sizeof(plain) + 16);

    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), aad, sizeof(aad), plain,
                                       sizeof(plain), NULL, &ct_len),
                 CKR_OK, "a NULL output asks for the length");
    cr_assert_eq(ct_len, sizeof(plain));
    ct_len = 10;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), aad, sizeof(aad), plain,
                                       sizeof(plain), ct, &ct_len),
                 CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(ct_len, sizeof(plain));
    ct_len = sizeof(ct);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), aad, sizeof(aad), plain,
                                       sizeof(plain), ct, &ct_len),
                 CKR_OK);
    cr_assert_eq(ct_len, sizeof(plain));
    cr_assert_arr_eq(ct, both, sizeof(plain), "the same ciphertext");
    cr_assert_arr_eq(tag, both + sizeof(plain), 16, "the same tag");
    cr_assert_eq(p11->C_MessageEncryptFinal(s), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), aad, sizeof(aad), plain,
                                       sizeof(plain), ct, &ct_len),
                 CKR_OPERATION_NOT_INITIALIZED, "ended by its Final");

    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len,
                                       back, &back_len),
                 CKR_OK);
    cr_assert_eq(back_len, sizeof(plain));
    cr_assert_arr_eq(back, plain, sizeof(plain));
    back_len = sizeof(plain);
    cr_assert_eq(p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len,
                                       back, &back_len),
                 CKR_OK,
                 "room for the plaintext is enough (SoftHSM2's C_Decrypt wants room for "
                 "the tag too)");
    tag[0] ^= 1;
    back_len = sizeof(back);
    memset(back, 0xa5, sizeof(back));
    rv = p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len, back,
                               &back_len);
    cr_assert_eq(rv, CKR_AEAD_DECRYPT_FAILED,
                 "a changed tag is 3.0's AEAD failure (SoftHSM2 2.6.1 answers "
                 "CKR_GENERAL_ERROR): %#lx",
                 rv);
    for (size_t i = 0; i < sizeof(back); i++) {
        cr_assert_eq(back[i], 0xa5, "no plaintext handed back");
    }
    tag[0] ^= 1;
    back_len = sizeof(back);
    rv = p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad) - 1, ct, ct_len, back,
                               &back_len);
    cr_assert_eq(rv, CKR_AEAD_DECRYPT_FAILED, "changed associated data: %#lx", rv);
    back_len = sizeof(back);
    cr_assert_eq(p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len,
                                       back, &back_len),
                 CKR_OK, "the operation goes on after a refused message");
    cr_assert_eq(p11->C_MessageDecryptFinal(s), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* CKG_GENERATE_RANDOM: the IV bits after the fixed ones are drawn and
 * written back; the message decrypts with that IV. */
Test(v3, message_gcm_random_iv)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_MECHANISM msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE iv[12] = {0xfe, 0xed, 0xfa, 0xce}, zero[8] = {0}, tag[16], ct[64], back[64];
    CK_ULONG ct_len = sizeof(ct), back_len = sizeof(back);
    CK_GCM_MESSAGE_PARAMS params = {iv, 12, 32, CKG_GENERATE_RANDOM, tag, 128};

    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain),
                                       ct, &ct_len),
                 CKR_OK);
    cr_assert_eq(iv[0], 0xfe, "the fixed bits are kept");
    cr_assert_eq(iv[3], 0xce);
    cr_assert_arr_neq(iv + 4, zero, 8, "the rest is drawn");
    params.ivGenerator = CKG_NO_GENERATE;
    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(
        p11->C_DecryptMessage(s, &params, sizeof(params), NULL, 0, ct, ct_len, back, &back_len),
        CKR_OK);
    cr_assert_arr_eq(back, plain, sizeof(plain));
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(v3, message_bad_arguments)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0}, cbc = {CKM_AES_CBC_PAD, NULL, 0};
    CK_BYTE iv[12] = {0}, tag[16], ct[64];
    CK_ULONG ct_len = sizeof(ct);
    CK_GCM_MESSAGE_PARAMS params = gcm_message(iv, tag);
    CK_GCM_PARAMS g240 = {iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM m240 = {CKM_AES_GCM, &g240, sizeof(g240)};

    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_MessageEncryptFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_MessageEncryptInit(s, NULL, key), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &cbc, key), CKR_MECHANISM_INVALID,
                 "only AES-GCM is one 2.40 operation per message");
    cr_assert_eq(p11->C_MessageEncryptInit(s, &gcm, 0x7fff0000), CKR_KEY_HANDLE_INVALID);
    cr_assert_eq(p11->C_MessageEncryptInit(s + 100, &gcm, key), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &gcm, key), CKR_OK);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &gcm, key), CKR_OPERATION_ACTIVE);
    cr_assert_eq(p11->C_EncryptMessage(s, NULL, 0, NULL, 0, plain, 1, ct, &ct_len),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params) - 1, NULL, 0, plain, 1, ct, &ct_len),
        CKR_MECHANISM_PARAM_INVALID);
    params.ivGenerator = CKG_GENERATE_COUNTER_XOR;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_MECHANISM_PARAM_INVALID, "CKG_GENERATE_COUNTER_XOR is not emulated");
    params.ivGenerator = 0x7fff;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_MECHANISM_PARAM_INVALID, "an unknown generator");
    params.ivGenerator = CKG_NO_GENERATE;
    params.pIv = NULL;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_MECHANISM_PARAM_INVALID, "no IV");
    params.pIv = iv;
    params.ulIvLen = 0;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_MECHANISM_PARAM_INVALID, "an empty IV");
    params.ulIvLen = 12;
    params.pTag = NULL;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_MECHANISM_PARAM_INVALID, "no tag buffer");
    params.pTag = tag;
    params.ulTagBits = 12;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_MECHANISM_PARAM_INVALID);
    params.ulTagBits = 128;
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, NULL),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_EncryptInit(s, &m240, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_OPERATION_ACTIVE, "the session's C_EncryptInit is active");
    cr_assert_eq(p11->C_SessionCancel(s, CKF_ENCRYPT), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_OK);
    cr_assert_eq(p11->C_SessionCancel(s, CKF_MESSAGE_ENCRYPT), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_OPERATION_NOT_INITIALIZED, "C_SessionCancel ended it");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The next part of a message in parts: in into out + *off, *off moved on. */
static CK_RV next_part(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s, bool encrypt,
                       CK_GCM_MESSAGE_PARAMS *params, CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                       CK_ULONG *off, CK_ULONG room, CK_FLAGS flags)
{
    CK_ULONG len = room - *off;
    CK_RV rv = encrypt ? p11->C_EncryptMessageNext(s, params, sizeof(*params), in, in_len,
                                                   out + *off, &len, flags)
                       : p11->C_DecryptMessageNext(s, params, sizeof(*params), in, in_len,
                                                   out + *off, &len, flags);

    if (rv == CKR_OK) {
        *off += len;
    }
    return rv;
}

/* A message encrypted in three parts gives exactly the ciphertext and tag
 * of the single-part C_EncryptMessage and of 2.40's C_Encrypt on the same
 * key, IV and AAD; size queries and short buffers keep their part; the
 * message decrypts in parts; Next after the end of the message needs a
 * new Begin. */
Test(v3, message_gcm_in_parts_equals_single_and_2_40)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_BYTE iv[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
    CK_GCM_PARAMS gcm = {iv, 12, 96, aad, sizeof(aad), 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)}, msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE both[64], one[64], one_tag[16], ct[64], tag[16], back[64];
    CK_ULONG both_len = sizeof(both), one_len = sizeof(one), off = 0, len;
    CK_GCM_MESSAGE_PARAMS single = gcm_message(iv, one_tag), params = gcm_message(iv, tag);

    cr_assert_eq(p11->C_EncryptInit(s, &mech, key), CKR_OK);
    cr_assert_eq(p11->C_Encrypt(s, plain, sizeof(plain), both, &both_len), CKR_OK);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &single, sizeof(single), aad, sizeof(aad), plain,
                                       sizeof(plain), one, &one_len),
                 CKR_OK);

    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), aad, sizeof(aad)), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), aad, sizeof(aad)),
                 CKR_OPERATION_ACTIVE, "a message is under way");
    len = sizeof(one);
    cr_assert_eq(p11->C_EncryptMessage(s, &single, sizeof(single), aad, sizeof(aad), plain,
                                       sizeof(plain), one, &len),
                 CKR_OPERATION_ACTIVE);
    cr_assert_eq(next_part(p11, s, true, &params, plain, 10, ct, &off, sizeof(ct), 0), CKR_OK);
    cr_assert_eq(
        p11->C_EncryptMessageNext(s, &params, sizeof(params), plain + 10, 20, NULL, &len, 0),
        CKR_OK, "a size query");
    cr_assert_eq(len, 20);
    len = 5;
    cr_assert_eq(
        p11->C_EncryptMessageNext(s, &params, sizeof(params), plain + 10, 20, ct + off, &len, 0),
        CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(len, 20, "the length needed");
    cr_assert_eq(next_part(p11, s, true, &params, plain + 10, 20, ct, &off, sizeof(ct), 0), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain + 30, 7, NULL, &len,
                                           CKF_END_OF_MESSAGE),
                 CKR_OK);
    cr_assert_eq(len, sizeof(plain) - off, "the last part's size query");
    len = 1;
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain + 30, 7, ct + off,
                                           &len, CKF_END_OF_MESSAGE),
                 CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(len, sizeof(plain) - off);
    cr_assert_eq(
        next_part(p11, s, true, &params, plain + 30, 7, ct, &off, sizeof(ct), CKF_END_OF_MESSAGE),
        CKR_OK);
    cr_assert_eq(off, sizeof(plain));
    cr_assert_arr_eq(ct, both, sizeof(plain), "the ciphertext of C_Encrypt");
    cr_assert_arr_eq(tag, both + sizeof(plain), 16, "the tag of C_Encrypt");
    cr_assert_arr_eq(ct, one, sizeof(plain), "the ciphertext of C_EncryptMessage");
    cr_assert_arr_eq(tag, one_tag, 16, "the tag of C_EncryptMessage");
    len = sizeof(back);
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain, 1, back, &len, 0),
                 CKR_OPERATION_NOT_INITIALIZED, "the message ended");
    cr_assert_eq(p11->C_EncryptInit(s, &mech, key), CKR_OK, "no 2.40 operation left behind");
    cr_assert_eq(p11->C_SessionCancel(s, CKF_ENCRYPT), CKR_OK);
    cr_assert_eq(p11->C_MessageEncryptFinal(s), CKR_OK);

    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_DecryptMessageBegin(s, &params, sizeof(params), aad, sizeof(aad)), CKR_OK);
    off = 0;
    len = 99;
    cr_assert_eq(p11->C_DecryptMessageNext(s, &params, sizeof(params), ct, 15, NULL, &len, 0),
                 CKR_OK);
    cr_assert_eq(len, 0, "a middle part of a decryption gives nothing back: %lu", len);
    cr_assert_eq(next_part(p11, s, false, &params, ct, 15, back, &off, sizeof(back), 0), CKR_OK);
    cr_assert_eq(next_part(p11, s, false, &params, ct + 15, 15, back, &off, sizeof(back), 0),
                 CKR_OK);
    cr_assert_eq(off, 0, "plaintext is held until the tag is checked");
    cr_assert_eq(p11->C_DecryptMessageNext(s, &params, sizeof(params), ct + 30, 7, NULL, &len,
                                           CKF_END_OF_MESSAGE),
                 CKR_OK);
    cr_assert_eq(len, sizeof(plain) - off, "what the message still owes");
    cr_assert_eq(
        next_part(p11, s, false, &params, ct + 30, 7, back, &off, sizeof(back), CKF_END_OF_MESSAGE),
        CKR_OK);
    cr_assert_eq(off, sizeof(plain));
    cr_assert_arr_eq(back, plain, sizeof(plain), "decrypted in parts");
    cr_assert_eq(p11->C_MessageDecryptFinal(s), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A wrong tag, or a changed ciphertext part, fails at the last part and
 * hands back no plaintext there; the message is over, a new Begin works. */
Test(v3, message_gcm_in_parts_wrong_tag)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_MECHANISM msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE iv[12] = {3}, ct[64], tag[16], back[64], fill[64];
    CK_ULONG ct_len = sizeof(ct), off = 0, len = sizeof(back);
    CK_GCM_MESSAGE_PARAMS params = gcm_message(iv, tag);
    CK_RV rv;

    memset(fill, 0xa5, sizeof(fill));
    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), aad, sizeof(aad), plain,
                                       sizeof(plain), ct, &ct_len),
                 CKR_OK);
    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, key), CKR_OK);
    for (int round = 0; round < 2; round++) {
        CK_BYTE *bad = round == 0 ? tag : ct + 20;

        *bad ^= 1;
        memcpy(back, fill, sizeof(back));
        off = 0;
        cr_assert_eq(p11->C_DecryptMessageBegin(s, &params, sizeof(params), aad, sizeof(aad)),
                     CKR_OK);
        cr_assert_eq(next_part(p11, s, false, &params, ct, 30, back, &off, sizeof(back), 0),
                     CKR_OK);
        cr_assert_eq(off, 0, "no plaintext before the tag is checked");
        len = sizeof(back) - off;
        rv = p11->C_DecryptMessageNext(s, &params, sizeof(params), ct + 30, 7, back + off, &len,
                                       CKF_END_OF_MESSAGE);
        cr_assert_eq(rv, CKR_AEAD_DECRYPT_FAILED, "refused at the last part: %#lx", rv);
        cr_assert_arr_eq(back + off, fill + off, sizeof(back) - off, "no plaintext handed back");
        cr_assert_eq(next_part(p11, s, false, &params, ct + 30, 7, back, &off, sizeof(back),
                               CKF_END_OF_MESSAGE),
                     CKR_OPERATION_NOT_INITIALIZED, "the failed message is over");
        *bad ^= 1;
    }
    off = 0;
    cr_assert_eq(p11->C_DecryptMessageBegin(s, &params, sizeof(params), aad, sizeof(aad)), CKR_OK);
    cr_assert_eq(
        next_part(p11, s, false, &params, ct, 37, back, &off, sizeof(back), CKF_END_OF_MESSAGE),
        CKR_OK, "a new message after the failed ones");
    cr_assert_arr_eq(back, plain, sizeof(plain));
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* Messages in parts: the state rules and bad arguments. */
Test(v3, message_gcm_in_parts_bad_arguments)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_MECHANISM msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE iv[12] = {4}, ct[64], tag[16];
    CK_GCM_PARAMS g240 = {iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM m240 = {CKM_AES_GCM, &g240, sizeof(g240)};
    CK_ULONG len = sizeof(ct), off = 0;
    CK_GCM_MESSAGE_PARAMS params = gcm_message(iv, tag), no_tag = gcm_message(iv, NULL);

    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 0),
                 CKR_OPERATION_NOT_INITIALIZED, "no C_MessageEncryptInit");
    cr_assert_eq(p11->C_DecryptMessageBegin(s, &params, sizeof(params), NULL, 0),
                 CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain, 1, ct, &len, 0),
                 CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain, 1, ct, &len,
                                           CKF_END_OF_MESSAGE),
                 CKR_OPERATION_NOT_INITIALIZED, "no message begun");
    cr_assert_eq(p11->C_EncryptMessageBegin(s + 100, &params, sizeof(params), NULL, 0),
                 CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_EncryptMessageBegin(s, NULL, 0, NULL, 0), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params) - 1, NULL, 0),
                 CKR_MECHANISM_PARAM_INVALID);
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 3), CKR_ARGUMENTS_BAD,
                 "AAD length without AAD");
    cr_assert_eq(p11->C_EncryptInit(s, &m240, key), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 0),
                 CKR_OPERATION_ACTIVE, "the session's C_EncryptInit is active");
    cr_assert_eq(p11->C_SessionCancel(s, CKF_ENCRYPT), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &no_tag, sizeof(no_tag), NULL, 0), CKR_OK,
                 "Begin needs no tag buffer: the tag comes with the last part");
    cr_assert_eq(p11->C_EncryptInit(s, &m240, key), CKR_OPERATION_ACTIVE,
                 "the message runs the session's encryption");
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain, 1, ct, NULL, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), NULL, 1, ct, &len, 0),
                 CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_EncryptMessageNext(s, NULL, 0, plain, 1, ct, &len, CKF_END_OF_MESSAGE),
                 CKR_ARGUMENTS_BAD, "the last part needs the parameter for the tag");
    cr_assert_eq(p11->C_EncryptMessageNext(s, &no_tag, sizeof(no_tag), plain, 1, ct, &len,
                                           CKF_END_OF_MESSAGE),
                 CKR_MECHANISM_PARAM_INVALID, "a last part's parameter without a tag buffer");
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, 3, plain, 1, ct, &len, CKF_END_OF_MESSAGE),
                 CKR_MECHANISM_PARAM_INVALID);
    params.ulTagBits = 96;
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain, 1, ct, &len,
                                           CKF_END_OF_MESSAGE),
                 CKR_MECHANISM_PARAM_INVALID, "the tag length is Begin's");
    params.ulTagBits = 128;
    cr_assert_eq(next_part(p11, s, true, &params, plain, sizeof(plain), ct, &off, sizeof(ct),
                           CKF_END_OF_MESSAGE),
                 CKR_OK, "bad arguments did not end the message");
    cr_assert_eq(off, sizeof(plain));
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_SessionCancel(s, CKF_MESSAGE_ENCRYPT), CKR_OK);
    cr_assert_eq(p11->C_EncryptInit(s, &m240, key), CKR_OK, "the cancel ended the 2.40 operation");
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 0),
                 CKR_OPERATION_NOT_INITIALIZED, "and the message operation");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A public AES-256 session key of the given value; decrypt-only unless
 * encrypt. */
static CK_OBJECT_HANDLE aes_key_of(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s,
                                   const CK_BYTE value[32], CK_BBOOL encrypt)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE, (void *)value, 32},   {CKA_ENCRYPT, &encrypt, sizeof(encrypt)},
        {CKA_DECRYPT, &yes, sizeof(yes)}, {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &no, sizeof(no)},
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;

    cr_assert_eq(p11->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &key), CKR_OK);
    return key;
}

/* CKR_AEAD_DECRYPT_FAILED only where the tag is known to be the cause:
 * with a decrypt-only key the tag cannot be recomputed, and a wrong tag
 * keeps SoftHSM2's CKR_GENERAL_ERROR. (A session whose v2.40 encryption
 * is busy cannot decrypt on SoftHSM2 at all: one operation per session.) */
Test(v3, message_gcm_wrong_tag_unproven_keeps_the_backends_code)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_BYTE value[32] = {0x42, 1, 2, 3}, iv[12] = {5}, tag[16], ct[64], back[64];
    CK_OBJECT_HANDLE both, dec_only;
    CK_MECHANISM msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_ULONG ct_len = sizeof(ct), back_len = sizeof(back);
    CK_GCM_MESSAGE_PARAMS params = gcm_message(iv, tag);
    CK_RV rv;

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    both = aes_key_of(p11, s, value, CK_TRUE);
    dec_only = aes_key_of(p11, s, value, CK_FALSE);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, both), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), aad, sizeof(aad), plain,
                                       sizeof(plain), ct, &ct_len),
                 CKR_OK);
    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, dec_only), CKR_OK);
    cr_assert_eq(p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len,
                                       back, &back_len),
                 CKR_OK, "the decrypt-only key decrypts");
    cr_assert_arr_eq(back, plain, sizeof(plain));
    tag[3] ^= 0x80;
    back_len = sizeof(back);
    rv = p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len, back,
                               &back_len);
    cr_assert_eq(rv, CKR_GENERAL_ERROR, "no verdict without CKA_ENCRYPT: %#lx", rv);
    cr_assert_eq(p11->C_MessageDecryptFinal(s), CKR_OK);

    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, both), CKR_OK);
    back_len = sizeof(back);
    rv = p11->C_DecryptMessage(s, &params, sizeof(params), aad, sizeof(aad), ct, ct_len, back,
                               &back_len);
    cr_assert_eq(rv, CKR_AEAD_DECRYPT_FAILED, "the same key value, allowed to encrypt: %#lx", rv);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* The ciphertext and tag of 2.40's C_EncryptInit + C_Encrypt with iv. */
static void encrypt_2_40(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                         CK_BYTE *iv, CK_BYTE *out, CK_ULONG *out_len)
{
    CK_GCM_PARAMS gcm = {iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};

    cr_assert_eq(p11->C_EncryptInit(s, &mech, key), CKR_OK);
    cr_assert_eq(p11->C_Encrypt(s, plain, sizeof(plain), out, out_len), CKR_OK);
}

/* CKG_GENERATE_COUNTER with 92 fixed bits (not whole bytes): 16 messages
 * get IVs whose first 92 bits are the caller's and whose last 4 count
 * 0..15, each message what 2.40's C_Encrypt gives with that IV; the 17th
 * is refused (the counter never wraps) and the IV left alone, and stays
 * refused after a new C_MessageEncryptInit (the counter is the key's in
 * the session). Another key has its own counter, as has another session;
 * C_EncryptMessageBegin takes the next value. */
Test(v3, message_gcm_counter_iv)
{
    CK_SESSION_HANDLE s, s2;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s), key2;
    CK_SLOT_ID slot;
    CK_ULONG n;
    CK_MECHANISM msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE iv[12], tag[16], ct[64], both[80];
    CK_ULONG len, both_len;
    CK_GCM_MESSAGE_PARAMS params = {iv, 12, 92, CKG_GENERATE_COUNTER, tag, 128};

    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    for (int i = 0; i < 16; i++) {
        memset(iv, 0xab, sizeof(iv));
        len = sizeof(ct);
        cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain,
                                           sizeof(plain), ct, &len),
                     CKR_OK, "message %d", i);
        for (int b = 0; b < 11; b++) {
            cr_assert_eq(iv[b], 0xab, "fixed byte %d kept", b);
        }
        cr_assert_eq(iv[11], 0xa0 | i, "message %d: last IV byte %#x", i, iv[11]);
        both_len = sizeof(both);
        encrypt_2_40(p11, s, key, iv, both, &both_len);
        cr_assert_arr_eq(ct, both, sizeof(plain), "message %d: the 2.40 ciphertext", i);
        cr_assert_arr_eq(tag, both + sizeof(plain), 16, "message %d: the 2.40 tag", i);
    }
    memset(iv, 0xab, sizeof(iv));
    len = sizeof(ct);
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_MECHANISM_PARAM_INVALID, "4 counter bits are spent: no wrap");
    cr_assert_eq(iv[11], 0xab, "the IV is left alone");
    params.ulIvFixedBits = 91;
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_OK, "5 bits hold the next value");
    cr_assert_eq(iv[11], 0xa0 | 16, "16 after 15: %#x", iv[11]);
    params.ulIvFixedBits = 92;
    cr_assert_eq(p11->C_MessageEncryptFinal(s), CKR_OK);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_MECHANISM_PARAM_INVALID, "the key's counter outlives the operation");
    params.ulIvFixedBits = 64;
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 0), CKR_OK);
    cr_assert_eq(iv[11], 17, "Begin takes the next value: %#x", iv[11]);
    cr_assert_eq(iv[8], 0, "the counter's high bytes");
    len = sizeof(ct);
    cr_assert_eq(p11->C_EncryptMessageNext(s, &params, sizeof(params), plain, sizeof(plain), ct,
                                           &len, CKF_END_OF_MESSAGE),
                 CKR_OK);
    both_len = sizeof(both);
    encrypt_2_40(p11, s, key, iv, both, &both_len);
    cr_assert_arr_eq(ct, both, sizeof(plain), "in parts with the counter's IV");
    cr_assert_arr_eq(tag, both + sizeof(plain), 16);
    cr_assert_eq(p11->C_MessageEncryptFinal(s), CKR_OK);

    params.ulIvFixedBits = 92;
    key2 = aes_key_of(p11, s, (const CK_BYTE[32]){7}, CK_TRUE);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key2), CKR_OK);
    memset(iv, 0xab, sizeof(iv));
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_OK);
    cr_assert_eq(iv[11], 0xa0, "another key counts from 0");
    n = 1;
    cr_assert_eq(p11->C_GetSlotList(CK_TRUE, &slot, &n), CKR_OK);
    cr_assert_eq(p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2), CKR_OK);
    cr_assert_eq(p11->C_MessageEncryptInit(s2, &msg_mech, key), CKR_OK);
    memset(iv, 0xab, sizeof(iv));
    cr_assert_eq(
        p11->C_EncryptMessage(s2, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_OK);
    cr_assert_eq(iv[11], 0xa0, "another session counts from 0 (its IVs differ by the fixed bits)");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* CKG_GENERATE_RANDOM (and CKG_GENERATE) with 36 fixed bits: the first 36
 * bits are kept, the rest drawn, a new IV per message; the message is
 * what 2.40's C_Encrypt gives with the IV written back. Bad fixed-bit
 * counts and generators for decryption are CKR_MECHANISM_PARAM_INVALID. */
Test(v3, message_gcm_random_iv_bits)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_MECHANISM msg_mech = {CKM_AES_GCM, NULL, 0};
    CK_BYTE iv[12], first[12], tag[16], ct[64], both[80];
    CK_ULONG len = sizeof(ct), both_len;
    CK_GCM_MESSAGE_PARAMS params = {iv, 12, 36, CKG_GENERATE_RANDOM, tag, 128};
    int changed = 0;

    cr_assert_eq(p11->C_MessageEncryptInit(s, &msg_mech, key), CKR_OK);
    for (int round = 0; round < 2; round++) {
        params.ivGenerator = round == 0 ? CKG_GENERATE_RANDOM : CKG_GENERATE;
        memset(iv, 0x5a, sizeof(iv));
        iv[4] = 0x3c;
        len = sizeof(ct);
        cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain,
                                           sizeof(plain), ct, &len),
                     CKR_OK);
        cr_assert_eq(memcmp(iv, "\x5a\x5a\x5a\x5a", 4), 0, "the first 32 bits kept");
        cr_assert_eq(iv[4] & 0xf0, 0x30, "and the next 4: %#x", iv[4]);
        both_len = sizeof(both);
        encrypt_2_40(p11, s, key, iv, both, &both_len);
        cr_assert_arr_eq(ct, both, sizeof(plain));
        cr_assert_arr_eq(tag, both + sizeof(plain), 16);
        if (round == 0) {
            memcpy(first, iv, sizeof(iv));
        } else {
            changed = memcmp(first, iv, sizeof(iv)) != 0;
        }
    }
    cr_assert(changed, "a new IV for each message");
    params.ivGenerator = CKG_GENERATE_RANDOM;
    params.ulIvFixedBits = 96;
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_MECHANISM_PARAM_INVALID, "no bit left to draw");
    params.ulIvFixedBits = 200;
    cr_assert_eq(
        p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, sizeof(plain), ct, &len),
        CKR_MECHANISM_PARAM_INVALID, "more fixed bits than the IV has");
    cr_assert_eq(p11->C_EncryptMessageBegin(s, &params, sizeof(params), NULL, 0),
                 CKR_MECHANISM_PARAM_INVALID);
    params.ulIvFixedBits = 0;
    cr_assert_eq(p11->C_MessageDecryptInit(s, &msg_mech, key), CKR_OK);
    cr_assert_eq(
        p11->C_DecryptMessage(s, &params, sizeof(params), NULL, 0, ct, sizeof(plain), both, &len),
        CKR_MECHANISM_PARAM_INVALID, "decryption takes the IV it is given");
    params.ivGenerator = CKG_GENERATE_COUNTER;
    cr_assert_eq(p11->C_DecryptMessageBegin(s, &params, sizeof(params), NULL, 0),
                 CKR_MECHANISM_PARAM_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* A logout ends the message operations begun before it. */
Test(v3, message_logout_ends_it)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = aes_key(p11, s);
    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    CK_BYTE iv[12] = {0}, tag[16], ct[64];
    CK_ULONG ct_len = sizeof(ct);
    CK_GCM_MESSAGE_PARAMS params = gcm_message(iv, tag);

    cr_assert_eq(p11->C_MessageEncryptInit(s, &gcm, key), CKR_OK);
    cr_assert_eq(p11->C_Logout(s), CKR_OK);
    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_MessageEncryptInit(s, &gcm, key), CKR_OK, "begun again");
    cr_assert_eq(p11->C_EncryptMessage(s, &params, sizeof(params), NULL, 0, plain, 1, ct, &ct_len),
                 CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* ECDSA per message: each C_SignMessage is C_SignInit + C_Sign; the
 * signature verifies through C_VerifyMessage and through 2.40's C_Verify. */
Test(v3, message_sign_verify_ecdsa)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE pub_t[] = {{CKA_CLASS, &pub_cls, sizeof(pub_cls)}, {CKA_LABEL, "p-ec", 4}};
    CK_BYTE hash[32] = {7}, sig[128];
    CK_ULONG sig_len = 0, n = 0;
    CK_OBJECT_HANDLE priv, pub;

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    priv = find_key(p11, s, "p-ec");
    cr_assert_eq(p11->C_FindObjectsInit(s, pub_t, 2), CKR_OK);
    cr_assert_eq(p11->C_FindObjects(s, &pub, 1, &n), CKR_OK);
    cr_assert_eq(p11->C_FindObjectsFinal(s), CKR_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(p11->C_MessageSignInit(s, &ecdsa, priv), CKR_OK);
    cr_assert_eq(p11->C_SignMessage(s, NULL, 0, hash, sizeof(hash), NULL, &sig_len), CKR_OK);
    cr_assert_eq(sig_len, 64);
    cr_assert_eq(p11->C_SignMessage(s, hash, 1, hash, sizeof(hash), sig, &sig_len),
                 CKR_ARGUMENTS_BAD, "ECDSA messages carry no parameter");
    cr_assert_eq(p11->C_SignMessage(s, NULL, 0, hash, sizeof(hash), sig, &sig_len), CKR_OK);
    cr_assert_eq(p11->C_SignInit(s, &ecdsa, priv), CKR_OK, "no 2.40 operation left behind");
    cr_assert_eq(p11->C_SessionCancel(s, CKF_SIGN), CKR_OK);
    cr_assert_eq(p11->C_MessageSignFinal(s), CKR_OK);
    cr_assert_eq(p11->C_MessageVerifyInit(s, &ecdsa, pub), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessage(s, NULL, 0, hash, sizeof(hash), sig, sig_len), CKR_OK);
    hash[0] ^= 1;
    cr_assert_eq(p11->C_VerifyMessage(s, NULL, 0, hash, sizeof(hash), sig, sig_len),
                 CKR_SIGNATURE_INVALID);
    hash[0] ^= 1;
    cr_assert_eq(p11->C_MessageVerifyFinal(s), CKR_OK);
    cr_assert_eq(p11->C_VerifyInit(s, &ecdsa, pub), CKR_OK);
    cr_assert_eq(p11->C_Verify(s, hash, sizeof(hash), sig, sig_len), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

/* An HMAC key (SHA-256), public, in the work view (logged in). */
static CK_OBJECT_HANDLE hmac_key(CK_FUNCTION_LIST_3_0 *p11, CK_SESSION_HANDLE s)
{
    CK_MECHANISM gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_VERIFY, &yes, sizeof(yes)},    {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &no, sizeof(no)},
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;

    cr_assert_eq(login_user(p11, s, WORK_PIN, "work", 4), CKR_OK);
    cr_assert_eq(p11->C_GenerateKey(s, &gen, t, sizeof(t) / sizeof(t[0]), &key), CKR_OK);
    return key;
}

/* A message signed in parts gives what C_Sign gives over the whole (HMAC
 * is deterministic); a size query or a short buffer on the last part
 * keeps that part; the parts verify. */
Test(v3, message_sign_in_parts_equals_c_sign)
{
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST_3_0 *p11 = session_v3(&s);
    CK_OBJECT_HANDLE key = hmac_key(p11, s);
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    CK_BYTE whole[32], parts[32], single[32];
    CK_ULONG whole_len = sizeof(whole), len = 0, single_len = sizeof(single);

    cr_assert_eq(p11->C_SignInit(s, &hmac, key), CKR_OK);
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR) "abcdef", 6, whole, &whole_len), CKR_OK);
    cr_assert_eq(whole_len, 32);

    cr_assert_eq(p11->C_MessageSignInit(s, &hmac, key), CKR_OK);
    cr_assert_eq(p11->C_SignMessageNext(s, NULL, 0, (CK_BYTE_PTR) "abc", 3, NULL, NULL),
                 CKR_OPERATION_NOT_INITIALIZED, "no message begun");
    cr_assert_eq(p11->C_SignMessageBegin(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_SignMessageBegin(s, NULL, 0), CKR_OPERATION_ACTIVE);
    cr_assert_eq(p11->C_SignMessage(s, NULL, 0, (CK_BYTE_PTR) "x", 1, single, &single_len),
                 CKR_OPERATION_ACTIVE, "a message is under way");
    cr_assert_eq(p11->C_SignMessageNext(s, NULL, 0, (CK_BYTE_PTR) "abc", 3, NULL, NULL), CKR_OK);
    cr_assert_eq(p11->C_SignMessageNext(s, NULL, 0, (CK_BYTE_PTR) "def", 3, NULL, &len), CKR_OK);
    cr_assert_eq(len, 32, "a size query");
    len = 4;
    cr_assert_eq(p11->C_SignMessageNext(s, NULL, 0, (CK_BYTE_PTR) "def", 3, parts, &len),
                 CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(len, 32);
    len = sizeof(parts);
    cr_assert_eq(p11->C_SignMessageNext(s, NULL, 0, (CK_BYTE_PTR) "def", 3, parts, &len), CKR_OK);
    cr_assert_eq(len, 32);
    cr_assert_arr_eq(parts, whole, 32, "the parts sign as the whole");
    cr_assert_eq(p11->C_SignMessage(s, NULL, 0, (CK_BYTE_PTR) "abcdef", 6, single, &single_len),
                 CKR_OK);
    cr_assert_arr_eq(single, whole, 32, "and as one message");
    cr_assert_eq(p11->C_MessageSignFinal(s), CKR_OK);

    cr_assert_eq(p11->C_MessageVerifyInit(s, &hmac, key), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessageBegin(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessageNext(s, NULL, 0, (CK_BYTE_PTR) "abc", 3, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessageNext(s, NULL, 0, (CK_BYTE_PTR) "def", 3, whole, 32), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessageBegin(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessageNext(s, NULL, 0, (CK_BYTE_PTR) "abd", 3, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_VerifyMessageNext(s, NULL, 0, (CK_BYTE_PTR) "ef", 2, whole, 32),
                 CKR_SIGNATURE_INVALID);
    cr_assert_eq(p11->C_VerifyMessageBegin(s, NULL, 0), CKR_OK);
    cr_assert_eq(p11->C_MessageVerifyFinal(s), CKR_OK, "Final ends a message under way");
    cr_assert_eq(p11->C_VerifyInit(s, &hmac, key), CKR_OK, "and its 2.40 operation");
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
