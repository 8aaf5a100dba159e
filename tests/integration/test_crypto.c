/*
 * test_crypto.c - operations forwarded to the key's layer: signatures with
 * keys of both layers, the operation state rules, and bad inputs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "stack_world.h"

TestSuite(crypto, .init = stack_setup, .fini = stack_teardown, .timeout = 240);

static const CK_BYTE data[32] = "0123456789abcdef0123456789abcdef";

static void sign_verify(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, const char *label,
                        CK_MECHANISM_TYPE type)
{
    CK_MECHANISM mech = {type, NULL, 0};
    CK_OBJECT_HANDLE priv = find_one(p11, s, CKO_PRIVATE_KEY, label);
    CK_OBJECT_HANDLE pub = find_one(p11, s, CKO_PUBLIC_KEY, label);
    CK_BYTE sig[512];
    CK_ULONG len = sizeof(sig);

    cr_assert_neq(priv, CK_INVALID_HANDLE, "%s not found", label);
    cr_assert_neq(pub, CK_INVALID_HANDLE);
    cr_assert_eq(p11->C_SignInit(s, &mech, priv), CKR_OK);
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), sig, &len), CKR_OK);
    cr_assert_eq(p11->C_VerifyInit(s, &mech, pub), CKR_OK);
    cr_assert_eq(p11->C_Verify(s, (CK_BYTE_PTR)data, sizeof(data), sig, len), CKR_OK);
    sig[len / 2] ^= 1;
    cr_assert_eq(p11->C_VerifyInit(s, &mech, pub), CKR_OK);
    cr_assert_neq(p11->C_Verify(s, (CK_BYTE_PTR)data, sizeof(data), sig, len), CKR_OK);
}

Test(crypto, sign_with_group_and_personal_keys)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);

    sign_verify(p11, s, "g-ec", CKM_ECDSA);
    sign_verify(p11, s, "p-ec", CKM_ECDSA);
    sign_verify(p11, s, "g-rsa", CKM_SHA256_RSA_PKCS);
    sign_verify(p11, s, "shadow-p", CKM_ECDSA);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(crypto, operation_state_rules)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_OBJECT_HANDLE priv = find_one(p11, s, CKO_PRIVATE_KEY, "g-rsa");
    CK_BYTE sig[512];
    CK_ULONG len = CANARY;

    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_SignUpdate(s, (CK_BYTE_PTR)data, 4), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_SignFinal(s, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_SignInit(s, &mech, priv), CKR_OK);
    cr_assert_eq(p11->C_SignInit(s, &mech, priv), CKR_OPERATION_ACTIVE);
    /* not a dual-function pair with sign */
    cr_assert_eq(p11->C_DigestInit(s, &sha), CKR_OPERATION_ACTIVE);
    /* size query keeps the operation */
    len = 0;
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), NULL, &len), CKR_OK);
    cr_assert_eq(len, 256);
    /* too small: length reported, nothing written, operation kept */
    len = 10;
    memset(sig, 0xAA, sizeof(sig));
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), sig, &len), CKR_BUFFER_TOO_SMALL);
    cr_assert_eq(len, 256);
    cr_assert_eq(sig[0], 0xAA);
    len = sizeof(sig);
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), sig, &len), CKR_OK);
    /* the signature ended it */
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), sig, &len),
                 CKR_OPERATION_NOT_INITIALIZED);
    /* multi-part, Final size query */
    cr_assert_eq(p11->C_SignInit(s, &mech, priv), CKR_OK);
    cr_assert_eq(p11->C_SignUpdate(s, (CK_BYTE_PTR)data, sizeof(data)), CKR_OK);
    len = 0;
    cr_assert_eq(p11->C_SignFinal(s, NULL, &len), CKR_OK);
    cr_assert_eq(len, 256);
    cr_assert_eq(p11->C_SignFinal(s, sig, &len), CKR_OK);
    /* a NULL length ends the operation, and a new one starts cleanly */
    cr_assert_eq(p11->C_SignInit(s, &mech, priv), CKR_OK);
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), sig, NULL), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_SignUpdate(s, (CK_BYTE_PTR)data, 4), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_SignInit(s, &mech, priv), CKR_OK);
    len = sizeof(sig);
    cr_assert_eq(p11->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data), sig, &len), CKR_OK);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(crypto, bad_keys_and_inputs)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE priv = find_one(p11, s, CKO_PRIVATE_KEY, "p-ec");

    cr_assert_eq(p11->C_SignInit(s, NULL, priv), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_SignInit(s, &mech, CK_INVALID_HANDLE), CKR_KEY_HANDLE_INVALID);
    cr_assert_eq(p11->C_SignInit(s, &mech, 0x7fff0000), CKR_KEY_HANDLE_INVALID);
    cr_assert_eq(p11->C_SignInit(s + 1000, &mech, priv), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_VerifyFinal(s, NULL, 0), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_EncryptUpdate(s, (CK_BYTE_PTR)data, 1, NULL, NULL),
                 CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_DigestKey(s, priv), CKR_OPERATION_NOT_INITIALIZED);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}

Test(crypto, digest_and_random)
{
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_FUNCTION_LIST *p11 = work_session(&slot, &s);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_BYTE out[64], rnd[32] = {0}, zero[32] = {0};
    CK_ULONG len = sizeof(out);

    cr_assert_eq(p11->C_DigestInit(s, &sha), CKR_OK);
    cr_assert_eq(p11->C_DigestInit(s, &sha), CKR_OPERATION_ACTIVE);
    cr_assert_eq(p11->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len), CKR_OK);
    cr_assert_eq(len, 32);
    cr_assert_eq(out[0], 0xba); /* SHA-256("abc") = ba7816bf... */
    cr_assert_eq(out[1], 0x78);
    cr_assert_eq(p11->C_GenerateRandom(s, rnd, sizeof(rnd)), CKR_OK);
    cr_assert_neq(memcmp(rnd, zero, sizeof(rnd)), 0);
    cr_assert_eq(p11->C_GenerateRandom(s, NULL, 4), CKR_ARGUMENTS_BAD);
    cr_assert_eq(p11->C_GenerateRandom(s + 1000, rnd, 4), CKR_SESSION_HANDLE_INVALID);
    cr_assert_eq(p11->C_Finalize(NULL), CKR_OK);
}
