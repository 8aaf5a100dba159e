/*
 * entry.c - every PKCS#11 v2.40 entry point of strata-pkcs11.so.
 *
 * Each body checks that the library is initialised in this process and
 * forwards to one family function (internal.h), which validates the
 * arguments and does the work. Keep these one-liners: no logic here.
 * Static functions: only C_GetFunctionList is exported from the module.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

#define FORWARD(call)                                                                              \
    do {                                                                                           \
        CK_RV rv_ = library_check();                                                               \
        if (rv_ != CKR_OK)                                                                         \
            return rv_;                                                                            \
        return (call);                                                                             \
    } while (0)

static CK_RV C_Initialize_entry(CK_VOID_PTR init_args)
{
    return library_initialize(init_args);
}

static CK_RV C_Finalize_entry(CK_VOID_PTR reserved)
{
    FORWARD(library_finalize(reserved));
}

static CK_RV C_GetInfo_entry(CK_INFO_PTR info)
{
    FORWARD(library_get_info(info));
}

static CK_RV C_GetSlotList_entry(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    FORWARD(slot_get_list(token_present, list, count));
}

static CK_RV C_GetSlotInfo_entry(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    FORWARD(slot_get_info(slot, info));
}

static CK_RV C_GetTokenInfo_entry(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    FORWARD(slot_get_token_info(slot, info));
}

static CK_RV C_GetMechanismList_entry(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                      CK_ULONG_PTR count)
{
    FORWARD(slot_get_mechanism_list(slot, list, count));
}

static CK_RV C_GetMechanismInfo_entry(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                      CK_MECHANISM_INFO_PTR info)
{
    FORWARD(slot_get_mechanism_info(slot, type, info));
}

static CK_RV C_InitToken_entry(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                               CK_UTF8CHAR_PTR label)
{
    FORWARD(slot_init_token(slot, pin, pin_len, label));
}

static CK_RV C_InitPIN_entry(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    FORWARD(login_init_pin(session, pin, pin_len));
}

static CK_RV C_SetPIN_entry(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                            CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    FORWARD(login_set_pin(session, old_pin, old_len, new_pin, new_len));
}

static CK_RV C_OpenSession_entry(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application,
                                 CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
    FORWARD(session_open(slot, flags, application, notify, session));
}

static CK_RV C_CloseSession_entry(CK_SESSION_HANDLE session)
{
    FORWARD(session_close(session));
}

static CK_RV C_CloseAllSessions_entry(CK_SLOT_ID slot)
{
    FORWARD(session_close_all(slot));
}

static CK_RV C_GetSessionInfo_entry(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    FORWARD(session_get_info(session, info));
}

static CK_RV C_GetOperationState_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                       CK_ULONG_PTR state_len)
{
    FORWARD(session_get_operation_state(session, state, state_len));
}

static CK_RV C_SetOperationState_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                       CK_ULONG state_len, CK_OBJECT_HANDLE enc_key,
                                       CK_OBJECT_HANDLE auth_key)
{
    FORWARD(session_set_operation_state(session, state, state_len, enc_key, auth_key));
}

static CK_RV C_Login_entry(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                           CK_ULONG pin_len)
{
    FORWARD(login_login(session, user_type, pin, pin_len));
}

static CK_RV C_Logout_entry(CK_SESSION_HANDLE session)
{
    FORWARD(login_logout(session));
}

static CK_RV C_CreateObject_entry(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                                  CK_OBJECT_HANDLE_PTR object)
{
    FORWARD(object_create(session, templ, count, object));
}

static CK_RV C_CopyObject_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                                CK_OBJECT_HANDLE_PTR new_object)
{
    FORWARD(object_copy(session, object, templ, count, new_object));
}

static CK_RV C_DestroyObject_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    FORWARD(object_destroy(session, object));
}

static CK_RV C_GetObjectSize_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                   CK_ULONG_PTR size)
{
    FORWARD(object_get_size(session, object, size));
}

static CK_RV C_GetAttributeValue_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                       CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    FORWARD(object_get_attributes(session, object, templ, count));
}

static CK_RV C_SetAttributeValue_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                       CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    FORWARD(object_set_attributes(session, object, templ, count));
}

static CK_RV C_FindObjectsInit_entry(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ,
                                     CK_ULONG count)
{
    FORWARD(object_find_init(session, templ, count));
}

static CK_RV C_FindObjects_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects,
                                 CK_ULONG max, CK_ULONG_PTR count)
{
    FORWARD(object_find(session, objects, max, count));
}

static CK_RV C_FindObjectsFinal_entry(CK_SESSION_HANDLE session)
{
    FORWARD(object_find_final(session));
}

static CK_RV C_EncryptInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_init(session, ENGINE_OP_ENCRYPT, mechanism, key));
}

static CK_RV C_Encrypt_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_single(session, ENGINE_OP_ENCRYPT, data, data_len, out, out_len));
}

static CK_RV C_EncryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                                   CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_update(session, ENGINE_OP_ENCRYPT, part, part_len, out, out_len));
}

static CK_RV C_EncryptFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_final(session, ENGINE_OP_ENCRYPT, out, out_len));
}

static CK_RV C_DecryptInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_init(session, ENGINE_OP_DECRYPT, mechanism, key));
}

static CK_RV C_Decrypt_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_single(session, ENGINE_OP_DECRYPT, data, data_len, out, out_len));
}

static CK_RV C_DecryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                                   CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_update(session, ENGINE_OP_DECRYPT, part, part_len, out, out_len));
}

static CK_RV C_DecryptFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_final(session, ENGINE_OP_DECRYPT, out, out_len));
}

static CK_RV C_DigestInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism)
{
    FORWARD(crypto_init(session, ENGINE_OP_DIGEST, mechanism, CK_INVALID_HANDLE));
}

static CK_RV C_Digest_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                            CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_single(session, ENGINE_OP_DIGEST, data, data_len, out, out_len));
}

static CK_RV C_DigestUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    FORWARD(crypto_update(session, ENGINE_OP_DIGEST, part, part_len, NULL, NULL));
}

static CK_RV C_DigestKey_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_digest_key(session, key));
}

static CK_RV C_DigestFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_final(session, ENGINE_OP_DIGEST, out, out_len));
}

static CK_RV C_SignInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                              CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_init(session, ENGINE_OP_SIGN, mechanism, key));
}

static CK_RV C_Sign_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                          CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    FORWARD(crypto_single(session, ENGINE_OP_SIGN, data, data_len, signature, signature_len));
}

static CK_RV C_SignUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    FORWARD(crypto_update(session, ENGINE_OP_SIGN, part, part_len, NULL, NULL));
}

static CK_RV C_SignFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                               CK_ULONG_PTR signature_len)
{
    FORWARD(crypto_final(session, ENGINE_OP_SIGN, signature, signature_len));
}

static CK_RV C_SignRecoverInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                     CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_init(session, ENGINE_OP_SIGN_RECOVER, mechanism, key));
}

static CK_RV C_SignRecover_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                                 CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    FORWARD(
        crypto_single(session, ENGINE_OP_SIGN_RECOVER, data, data_len, signature, signature_len));
}

static CK_RV C_VerifyInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_init(session, ENGINE_OP_VERIFY, mechanism, key));
}

static CK_RV C_Verify_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                            CK_BYTE_PTR signature, CK_ULONG signature_len)
{
    FORWARD(crypto_verify(session, data, data_len, signature, signature_len));
}

static CK_RV C_VerifyUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    FORWARD(crypto_update(session, ENGINE_OP_VERIFY, part, part_len, NULL, NULL));
}

static CK_RV C_VerifyFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                                 CK_ULONG signature_len)
{
    FORWARD(crypto_verify_final(session, signature, signature_len));
}

static CK_RV C_VerifyRecoverInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                       CK_OBJECT_HANDLE key)
{
    FORWARD(crypto_init(session, ENGINE_OP_VERIFY_RECOVER, mechanism, key));
}

static CK_RV C_VerifyRecover_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                                   CK_ULONG signature_len, CK_BYTE_PTR data, CK_ULONG_PTR data_len)
{
    FORWARD(
        crypto_single(session, ENGINE_OP_VERIFY_RECOVER, signature, signature_len, data, data_len));
}

static CK_RV C_DigestEncryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                         CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_dual_update(session, ENGINE_DUAL_DIGEST_ENCRYPT, part, part_len, out, out_len));
}

static CK_RV C_DecryptDigestUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                         CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_dual_update(session, ENGINE_DUAL_DECRYPT_DIGEST, part, part_len, out, out_len));
}

static CK_RV C_SignEncryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                       CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_dual_update(session, ENGINE_DUAL_SIGN_ENCRYPT, part, part_len, out, out_len));
}

static CK_RV C_DecryptVerifyUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                         CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(crypto_dual_update(session, ENGINE_DUAL_DECRYPT_VERIFY, part, part_len, out, out_len));
}

static CK_RV C_GenerateKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    FORWARD(key_generate(session, mechanism, templ, count, key));
}

static CK_RV C_GenerateKeyPair_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                     CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count,
                                     CK_ATTRIBUTE_PTR priv_templ, CK_ULONG priv_count,
                                     CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key)
{
    FORWARD(key_generate_pair(session, mechanism, pub_templ, pub_count, priv_templ, priv_count,
                              pub_key, priv_key));
}

static CK_RV C_WrapKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                             CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped,
                             CK_ULONG_PTR wrapped_len)
{
    FORWARD(key_wrap(session, mechanism, wrapping, key, wrapped, wrapped_len));
}

static CK_RV C_UnwrapKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                               CK_OBJECT_HANDLE unwrapping, CK_BYTE_PTR wrapped,
                               CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                               CK_OBJECT_HANDLE_PTR key)
{
    FORWARD(key_unwrap(session, mechanism, unwrapping, wrapped, wrapped_len, templ, count, key));
}

static CK_RV C_DeriveKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                               CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                               CK_OBJECT_HANDLE_PTR key)
{
    FORWARD(key_derive(session, mechanism, base, templ, count, key));
}

static CK_RV C_SeedRandom_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len)
{
    FORWARD(crypto_seed_random(session, seed, seed_len));
}

static CK_RV C_GenerateRandom_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len)
{
    FORWARD(crypto_generate_random(session, out, out_len));
}

static CK_RV C_GetFunctionStatus_entry(CK_SESSION_HANDLE session)
{
    FORWARD(session_get_function_status(session));
}

static CK_RV C_CancelFunction_entry(CK_SESSION_HANDLE session)
{
    FORWARD(session_cancel_function(session));
}

static CK_RV C_WaitForSlotEvent_entry(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    FORWARD(slot_wait_for_event(flags, slot, reserved));
}

static CK_RV C_GetFunctionList_entry(CK_FUNCTION_LIST_PTR_PTR list);

static CK_FUNCTION_LIST function_list = {
    .version = {ENGINE_CRYPTOKI_MAJOR, ENGINE_CRYPTOKI_MINOR},
    .C_Initialize = C_Initialize_entry,
    .C_Finalize = C_Finalize_entry,
    .C_GetInfo = C_GetInfo_entry,
    .C_GetFunctionList = C_GetFunctionList_entry,
    .C_GetSlotList = C_GetSlotList_entry,
    .C_GetSlotInfo = C_GetSlotInfo_entry,
    .C_GetTokenInfo = C_GetTokenInfo_entry,
    .C_GetMechanismList = C_GetMechanismList_entry,
    .C_GetMechanismInfo = C_GetMechanismInfo_entry,
    .C_InitToken = C_InitToken_entry,
    .C_InitPIN = C_InitPIN_entry,
    .C_SetPIN = C_SetPIN_entry,
    .C_OpenSession = C_OpenSession_entry,
    .C_CloseSession = C_CloseSession_entry,
    .C_CloseAllSessions = C_CloseAllSessions_entry,
    .C_GetSessionInfo = C_GetSessionInfo_entry,
    .C_GetOperationState = C_GetOperationState_entry,
    .C_SetOperationState = C_SetOperationState_entry,
    .C_Login = C_Login_entry,
    .C_Logout = C_Logout_entry,
    .C_CreateObject = C_CreateObject_entry,
    .C_CopyObject = C_CopyObject_entry,
    .C_DestroyObject = C_DestroyObject_entry,
    .C_GetObjectSize = C_GetObjectSize_entry,
    .C_GetAttributeValue = C_GetAttributeValue_entry,
    .C_SetAttributeValue = C_SetAttributeValue_entry,
    .C_FindObjectsInit = C_FindObjectsInit_entry,
    .C_FindObjects = C_FindObjects_entry,
    .C_FindObjectsFinal = C_FindObjectsFinal_entry,
    .C_EncryptInit = C_EncryptInit_entry,
    .C_Encrypt = C_Encrypt_entry,
    .C_EncryptUpdate = C_EncryptUpdate_entry,
    .C_EncryptFinal = C_EncryptFinal_entry,
    .C_DecryptInit = C_DecryptInit_entry,
    .C_Decrypt = C_Decrypt_entry,
    .C_DecryptUpdate = C_DecryptUpdate_entry,
    .C_DecryptFinal = C_DecryptFinal_entry,
    .C_DigestInit = C_DigestInit_entry,
    .C_Digest = C_Digest_entry,
    .C_DigestUpdate = C_DigestUpdate_entry,
    .C_DigestKey = C_DigestKey_entry,
    .C_DigestFinal = C_DigestFinal_entry,
    .C_SignInit = C_SignInit_entry,
    .C_Sign = C_Sign_entry,
    .C_SignUpdate = C_SignUpdate_entry,
    .C_SignFinal = C_SignFinal_entry,
    .C_SignRecoverInit = C_SignRecoverInit_entry,
    .C_SignRecover = C_SignRecover_entry,
    .C_VerifyInit = C_VerifyInit_entry,
    .C_Verify = C_Verify_entry,
    .C_VerifyUpdate = C_VerifyUpdate_entry,
    .C_VerifyFinal = C_VerifyFinal_entry,
    .C_VerifyRecoverInit = C_VerifyRecoverInit_entry,
    .C_VerifyRecover = C_VerifyRecover_entry,
    .C_DigestEncryptUpdate = C_DigestEncryptUpdate_entry,
    .C_DecryptDigestUpdate = C_DecryptDigestUpdate_entry,
    .C_SignEncryptUpdate = C_SignEncryptUpdate_entry,
    .C_DecryptVerifyUpdate = C_DecryptVerifyUpdate_entry,
    .C_GenerateKey = C_GenerateKey_entry,
    .C_GenerateKeyPair = C_GenerateKeyPair_entry,
    .C_WrapKey = C_WrapKey_entry,
    .C_UnwrapKey = C_UnwrapKey_entry,
    .C_DeriveKey = C_DeriveKey_entry,
    .C_SeedRandom = C_SeedRandom_entry,
    .C_GenerateRandom = C_GenerateRandom_entry,
    .C_GetFunctionStatus = C_GetFunctionStatus_entry,
    .C_CancelFunction = C_CancelFunction_entry,
    .C_WaitForSlotEvent = C_WaitForSlotEvent_entry,
};

static CK_RV C_GetFunctionList_entry(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    *list = &function_list;
    return CKR_OK;
}

CK_FUNCTION_LIST *engine_function_list(void)
{
    return &function_list;
}

/* The one symbol the module exports (see strata-pkcs11.map). */
__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    return C_GetFunctionList_entry(list);
}
