/*
 * entry.c - every PKCS#11 v2.40 entry point of strata-pkcs11.so.
 *
 * Each body checks that the library is initialised in this process and
 * forwards to one family function (ops/ops.h), which validates the
 * arguments and does the work. Keep these one-liners: no logic here.
 * Each also describes its arguments for the call log (calllog.h); that
 * description is built only while STRATA_LOG=calls is on.
 * Static functions: only C_GetFunctionList is exported from the module
 * (and iface.c's C_GetInterfaceList / C_GetInterface; the 3.0 entry
 * points are entry_v3.c's).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "entry.h"

/* The log opens inside C_Initialize: the call is always framed, and
 * logged once it returns if the log is on by then. */
static CK_RV C_Initialize_entry(CK_VOID_PTR init_args)
{
    const calllog_arg args[] = {CL_INIT_ARGS(init_args)};
    calllog_frame frame;
    CK_RV rv;

    calllog_enter(&frame, "C_Initialize", args, 1);
    rv = library_initialize(init_args);
    calllog_exit(&frame, rv, args, 1);
    return rv;
}

static CK_RV C_Finalize_entry(CK_VOID_PTR reserved)
{
    FORWARD(C_Finalize, library_finalize(reserved), CL_PRESENT("reserved", reserved));
}

static CK_RV C_GetInfo_entry(CK_INFO_PTR info)
{
    FORWARD(C_GetInfo, library_get_info(info), CL_INFO_OUT(CALLLOG_INFO_OUT, info));
}

static CK_RV C_GetSlotList_entry(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    FORWARD(C_GetSlotList, slot_get_list(token_present, list, count),
            CL_BOOL("token_present", token_present), CL_SLOTS_OUT(list, count));
}

static CK_RV C_GetSlotInfo_entry(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    FORWARD(C_GetSlotInfo, slot_get_info(slot, info), CL_SLOT(slot),
            CL_INFO_OUT(CALLLOG_SLOT_INFO_OUT, info));
}

static CK_RV C_GetTokenInfo_entry(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    FORWARD(C_GetTokenInfo, slot_get_token_info(slot, info), CL_SLOT(slot),
            CL_INFO_OUT(CALLLOG_TOKEN_INFO_OUT, info));
}

static CK_RV C_GetMechanismList_entry(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                      CK_ULONG_PTR count)
{
    FORWARD(C_GetMechanismList, slot_get_mechanism_list(slot, list, count), CL_SLOT(slot),
            CL_MECHS_OUT(list, count));
}

static CK_RV C_GetMechanismInfo_entry(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                      CK_MECHANISM_INFO_PTR info)
{
    FORWARD(C_GetMechanismInfo, slot_get_mechanism_info(slot, type, info), CL_SLOT(slot),
            CL_MECH_TYPE(type), CL_INFO_OUT(CALLLOG_MECH_INFO_OUT, info));
}

static CK_RV C_InitToken_entry(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                               CK_UTF8CHAR_PTR label)
{
    FORWARD(C_InitToken, slot_init_token(slot, pin, pin_len, label), CL_SLOT(slot),
            CL_PIN("so_pin", pin, pin_len), CL_LABEL(label));
}

static CK_RV C_InitPIN_entry(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    FORWARD(C_InitPIN, login_init_pin(session, pin, pin_len), CL_SESSION(session),
            CL_PIN("pin", pin, pin_len));
}

static CK_RV C_SetPIN_entry(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                            CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    FORWARD(C_SetPIN, login_set_pin(session, old_pin, old_len, new_pin, new_len),
            CL_SESSION(session), CL_PIN("old_pin", old_pin, old_len),
            CL_PIN("new_pin", new_pin, new_len));
}

static CK_RV C_OpenSession_entry(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application,
                                 CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
    FORWARD(C_OpenSession, session_open(slot, flags, application, notify, session), CL_SLOT(slot),
            CL_SESSION_FLAGS(flags), CL_PRESENT("application", application),
            CL_PRESENT("notify", notify), CL_HANDLE_OUT("session", session));
}

static CK_RV C_CloseSession_entry(CK_SESSION_HANDLE session)
{
    FORWARD(C_CloseSession, session_close(session), CL_SESSION(session));
}

static CK_RV C_CloseAllSessions_entry(CK_SLOT_ID slot)
{
    FORWARD(C_CloseAllSessions, session_close_all(slot), CL_SLOT(slot));
}

static CK_RV C_GetSessionInfo_entry(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    FORWARD(C_GetSessionInfo, session_get_info(session, info), CL_SESSION(session),
            CL_INFO_OUT(CALLLOG_SESSION_INFO_OUT, info));
}

static CK_RV C_GetOperationState_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                       CK_ULONG_PTR state_len)
{
    FORWARD(C_GetOperationState, session_get_operation_state(session, state, state_len),
            CL_SESSION(session), CL_OUT("state", state, state_len));
}

static CK_RV C_SetOperationState_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                       CK_ULONG state_len, CK_OBJECT_HANDLE enc_key,
                                       CK_OBJECT_HANDLE auth_key)
{
    FORWARD(C_SetOperationState,
            session_set_operation_state(session, state, state_len, enc_key, auth_key),
            CL_SESSION(session), CL_DATA("state", state, state_len),
            CL_HANDLE("encryption_key", enc_key), CL_HANDLE("authentication_key", auth_key));
}

static CK_RV C_Login_entry(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                           CK_ULONG pin_len)
{
    FORWARD(C_Login, login_login(session, user_type, pin, pin_len), CL_SESSION(session),
            CL_USER(user_type), CL_PIN("pin", pin, pin_len));
}

static CK_RV C_Logout_entry(CK_SESSION_HANDLE session)
{
    FORWARD(C_Logout, login_logout(session), CL_SESSION(session));
}

static CK_RV C_CreateObject_entry(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                                  CK_OBJECT_HANDLE_PTR object)
{
    FORWARD(C_CreateObject, object_create(session, templ, count, object), CL_SESSION(session),
            CL_TEMPLATE("template", templ, count), CL_HANDLE_OUT("object", object));
}

static CK_RV C_CopyObject_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                                CK_OBJECT_HANDLE_PTR new_object)
{
    FORWARD(C_CopyObject, object_copy(session, object, templ, count, new_object),
            CL_SESSION(session), CL_HANDLE("object", object), CL_TEMPLATE("template", templ, count),
            CL_HANDLE_OUT("new_object", new_object));
}

static CK_RV C_DestroyObject_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    FORWARD(C_DestroyObject, object_destroy(session, object), CL_SESSION(session),
            CL_HANDLE("object", object));
}

static CK_RV C_GetObjectSize_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                   CK_ULONG_PTR size)
{
    FORWARD(C_GetObjectSize, object_get_size(session, object, size), CL_SESSION(session),
            CL_HANDLE("object", object), CL_ULONG_OUT("size", size));
}

static CK_RV C_GetAttributeValue_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                       CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    FORWARD(C_GetAttributeValue, object_get_attributes(session, object, templ, count),
            CL_SESSION(session), CL_HANDLE("object", object), CL_ATTRS_OUT(templ, count));
}

static CK_RV C_SetAttributeValue_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                                       CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
    FORWARD(C_SetAttributeValue, object_set_attributes(session, object, templ, count),
            CL_SESSION(session), CL_HANDLE("object", object),
            CL_TEMPLATE("template", templ, count));
}

static CK_RV C_FindObjectsInit_entry(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ,
                                     CK_ULONG count)
{
    FORWARD(C_FindObjectsInit, object_find_init(session, templ, count), CL_SESSION(session),
            CL_TEMPLATE("template", templ, count));
}

static CK_RV C_FindObjects_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects,
                                 CK_ULONG max, CK_ULONG_PTR count)
{
    FORWARD(C_FindObjects, object_find(session, objects, max, count), CL_SESSION(session),
            CL_HANDLES_OUT(objects, max, count));
}

static CK_RV C_FindObjectsFinal_entry(CK_SESSION_HANDLE session)
{
    FORWARD(C_FindObjectsFinal, object_find_final(session), CL_SESSION(session));
}

static CK_RV C_EncryptInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_OBJECT_HANDLE key)
{
    FORWARD(C_EncryptInit, crypto_init(session, ENGINE_OP_ENCRYPT, mechanism, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("key", key));
}

static CK_RV C_Encrypt_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_Encrypt, crypto_single(session, ENGINE_OP_ENCRYPT, data, data_len, out, out_len),
            CL_SESSION(session), CL_DATA("data", data, data_len),
            CL_OUT("encrypted", out, out_len));
}

static CK_RV C_EncryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                                   CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(
        C_EncryptUpdate, crypto_update(session, ENGINE_OP_ENCRYPT, part, part_len, out, out_len),
        CL_SESSION(session), CL_DATA("part", part, part_len), CL_OUT("encrypted", out, out_len));
}

static CK_RV C_EncryptFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_EncryptFinal, crypto_final(session, ENGINE_OP_ENCRYPT, out, out_len),
            CL_SESSION(session), CL_OUT("encrypted", out, out_len));
}

static CK_RV C_DecryptInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_OBJECT_HANDLE key)
{
    FORWARD(C_DecryptInit, crypto_init(session, ENGINE_OP_DECRYPT, mechanism, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("key", key));
}

static CK_RV C_Decrypt_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_Decrypt, crypto_single(session, ENGINE_OP_DECRYPT, data, data_len, out, out_len),
            CL_SESSION(session), CL_DATA("encrypted", data, data_len),
            CL_OUT("data", out, out_len));
}

static CK_RV C_DecryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len,
                                   CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_DecryptUpdate,
            crypto_update(session, ENGINE_OP_DECRYPT, part, part_len, out, out_len),
            CL_SESSION(session), CL_DATA("part", part, part_len), CL_OUT("data", out, out_len));
}

static CK_RV C_DecryptFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_DecryptFinal, crypto_final(session, ENGINE_OP_DECRYPT, out, out_len),
            CL_SESSION(session), CL_OUT("data", out, out_len));
}

static CK_RV C_DigestInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism)
{
    FORWARD(C_DigestInit, crypto_init(session, ENGINE_OP_DIGEST, mechanism, CK_INVALID_HANDLE),
            CL_SESSION(session), CL_MECHANISM(mechanism));
}

static CK_RV C_Digest_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                            CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_Digest, crypto_single(session, ENGINE_OP_DIGEST, data, data_len, out, out_len),
            CL_SESSION(session), CL_DATA("data", data, data_len), CL_OUT("digest", out, out_len));
}

static CK_RV C_DigestUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    FORWARD(C_DigestUpdate, crypto_update(session, ENGINE_OP_DIGEST, part, part_len, NULL, NULL),
            CL_SESSION(session), CL_DATA("part", part, part_len));
}

static CK_RV C_DigestKey_entry(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
    FORWARD(C_DigestKey, crypto_digest_key(session, key), CL_SESSION(session),
            CL_HANDLE("key", key));
}

static CK_RV C_DigestFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_DigestFinal, crypto_final(session, ENGINE_OP_DIGEST, out, out_len),
            CL_SESSION(session), CL_OUT("digest", out, out_len));
}

static CK_RV C_SignInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                              CK_OBJECT_HANDLE key)
{
    FORWARD(C_SignInit, crypto_init(session, ENGINE_OP_SIGN, mechanism, key), CL_SESSION(session),
            CL_MECHANISM(mechanism), CL_HANDLE("key", key));
}

static CK_RV C_Sign_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                          CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    FORWARD(C_Sign,
            crypto_single(session, ENGINE_OP_SIGN, data, data_len, signature, signature_len),
            CL_SESSION(session), CL_DATA("data", data, data_len),
            CL_OUT("signature", signature, signature_len));
}

static CK_RV C_SignUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    FORWARD(C_SignUpdate, crypto_update(session, ENGINE_OP_SIGN, part, part_len, NULL, NULL),
            CL_SESSION(session), CL_DATA("part", part, part_len));
}

static CK_RV C_SignFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                               CK_ULONG_PTR signature_len)
{
    FORWARD(C_SignFinal, crypto_final(session, ENGINE_OP_SIGN, signature, signature_len),
            CL_SESSION(session), CL_OUT("signature", signature, signature_len));
}

static CK_RV C_SignRecoverInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                     CK_OBJECT_HANDLE key)
{
    FORWARD(C_SignRecoverInit, crypto_init(session, ENGINE_OP_SIGN_RECOVER, mechanism, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("key", key));
}

static CK_RV C_SignRecover_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                                 CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
    FORWARD(
        C_SignRecover,
        crypto_single(session, ENGINE_OP_SIGN_RECOVER, data, data_len, signature, signature_len),
        CL_SESSION(session), CL_DATA("data", data, data_len),
        CL_OUT("signature", signature, signature_len));
}

static CK_RV C_VerifyInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                CK_OBJECT_HANDLE key)
{
    FORWARD(C_VerifyInit, crypto_init(session, ENGINE_OP_VERIFY, mechanism, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("key", key));
}

static CK_RV C_Verify_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                            CK_BYTE_PTR signature, CK_ULONG signature_len)
{
    FORWARD(C_Verify, crypto_verify(session, data, data_len, signature, signature_len),
            CL_SESSION(session), CL_DATA("data", data, data_len),
            CL_DATA("signature", signature, signature_len));
}

static CK_RV C_VerifyUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len)
{
    FORWARD(C_VerifyUpdate, crypto_update(session, ENGINE_OP_VERIFY, part, part_len, NULL, NULL),
            CL_SESSION(session), CL_DATA("part", part, part_len));
}

static CK_RV C_VerifyFinal_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                                 CK_ULONG signature_len)
{
    FORWARD(C_VerifyFinal, crypto_verify_final(session, signature, signature_len),
            CL_SESSION(session), CL_DATA("signature", signature, signature_len));
}

static CK_RV C_VerifyRecoverInit_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                       CK_OBJECT_HANDLE key)
{
    FORWARD(C_VerifyRecoverInit, crypto_init(session, ENGINE_OP_VERIFY_RECOVER, mechanism, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("key", key));
}

static CK_RV C_VerifyRecover_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR signature,
                                   CK_ULONG signature_len, CK_BYTE_PTR data, CK_ULONG_PTR data_len)
{
    FORWARD(
        C_VerifyRecover,
        crypto_single(session, ENGINE_OP_VERIFY_RECOVER, signature, signature_len, data, data_len),
        CL_SESSION(session), CL_DATA("signature", signature, signature_len),
        CL_OUT("data", data, data_len));
}

static CK_RV C_DigestEncryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                         CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_DigestEncryptUpdate,
            crypto_dual_update(session, ENGINE_DUAL_DIGEST_ENCRYPT, part, part_len, out, out_len),
            CL_SESSION(session), CL_DATA("part", part, part_len),
            CL_OUT("encrypted", out, out_len));
}

static CK_RV C_DecryptDigestUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                         CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_DecryptDigestUpdate,
            crypto_dual_update(session, ENGINE_DUAL_DECRYPT_DIGEST, part, part_len, out, out_len),
            CL_SESSION(session), CL_DATA("encrypted", part, part_len),
            CL_OUT("part", out, out_len));
}

static CK_RV C_SignEncryptUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                       CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_SignEncryptUpdate,
            crypto_dual_update(session, ENGINE_DUAL_SIGN_ENCRYPT, part, part_len, out, out_len),
            CL_SESSION(session), CL_DATA("part", part, part_len),
            CL_OUT("encrypted", out, out_len));
}

static CK_RV C_DecryptVerifyUpdate_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR part,
                                         CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    FORWARD(C_DecryptVerifyUpdate,
            crypto_dual_update(session, ENGINE_DUAL_DECRYPT_VERIFY, part, part_len, out, out_len),
            CL_SESSION(session), CL_DATA("encrypted", part, part_len),
            CL_OUT("part", out, out_len));
}

static CK_RV C_GenerateKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key)
{
    FORWARD(C_GenerateKey, key_generate(session, mechanism, templ, count, key), CL_SESSION(session),
            CL_MECHANISM(mechanism), CL_TEMPLATE("template", templ, count),
            CL_HANDLE_OUT("key", key));
}

static CK_RV C_GenerateKeyPair_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                     CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count,
                                     CK_ATTRIBUTE_PTR priv_templ, CK_ULONG priv_count,
                                     CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key)
{
    FORWARD(C_GenerateKeyPair,
            key_generate_pair(session, mechanism, pub_templ, pub_count, priv_templ, priv_count,
                              pub_key, priv_key),
            CL_SESSION(session), CL_MECHANISM(mechanism),
            CL_TEMPLATE("public_template", pub_templ, pub_count),
            CL_TEMPLATE("private_template", priv_templ, priv_count),
            CL_HANDLE_OUT("public_key", pub_key), CL_HANDLE_OUT("private_key", priv_key));
}

static CK_RV C_WrapKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                             CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped,
                             CK_ULONG_PTR wrapped_len)
{
    FORWARD(C_WrapKey, key_wrap(session, mechanism, wrapping, key, wrapped, wrapped_len),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("wrapping_key", wrapping),
            CL_HANDLE("key", key), CL_OUT("wrapped", wrapped, wrapped_len));
}

static CK_RV C_UnwrapKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                               CK_OBJECT_HANDLE unwrapping, CK_BYTE_PTR wrapped,
                               CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                               CK_OBJECT_HANDLE_PTR key)
{
    FORWARD(C_UnwrapKey,
            key_unwrap(session, mechanism, unwrapping, wrapped, wrapped_len, templ, count, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("unwrapping_key", unwrapping),
            CL_DATA("wrapped", wrapped, wrapped_len), CL_TEMPLATE("template", templ, count),
            CL_HANDLE_OUT("key", key));
}

static CK_RV C_DeriveKey_entry(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                               CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                               CK_OBJECT_HANDLE_PTR key)
{
    FORWARD(C_DeriveKey, key_derive(session, mechanism, base, templ, count, key),
            CL_SESSION(session), CL_MECHANISM(mechanism), CL_HANDLE("base_key", base),
            CL_TEMPLATE("template", templ, count), CL_HANDLE_OUT("key", key));
}

static CK_RV C_SeedRandom_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len)
{
    FORWARD(C_SeedRandom, crypto_seed_random(session, seed, seed_len), CL_SESSION(session),
            CL_DATA("seed", seed, seed_len));
}

static CK_RV C_GenerateRandom_entry(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len)
{
    FORWARD(C_GenerateRandom, crypto_generate_random(session, out, out_len), CL_SESSION(session),
            CL_DATA("random", out, out_len));
}

static CK_RV C_GetFunctionStatus_entry(CK_SESSION_HANDLE session)
{
    FORWARD(C_GetFunctionStatus, session_get_function_status(session), CL_SESSION(session));
}

static CK_RV C_CancelFunction_entry(CK_SESSION_HANDLE session)
{
    FORWARD(C_CancelFunction, session_cancel_function(session), CL_SESSION(session));
}

static CK_RV C_WaitForSlotEvent_entry(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    FORWARD(C_WaitForSlotEvent, wait_for_event(flags, slot, reserved), CL_WAIT_FLAGS(flags),
            CL_ULONG_OUT("slot", slot), CL_PRESENT("reserved", reserved));
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
