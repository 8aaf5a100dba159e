/*
 * v3.h - the PKCS#11 3.0 door's contract with the rest of the engine.
 *
 * iface.c builds the 3.0 interfaces (C_GetInterfaceList, C_GetInterface,
 * the "PKCS 11" 3.0 function list) against the 3.0 declarations of NSS's
 * pkcs11t.h/pkcs11f.h (libnss3-dev); every other engine file, and the
 * leaves, use p11-kit's 2.40 pkcs11.h. The two headers spell their struct
 * tags differently and cannot share a translation unit, so this header
 * includes neither: it is included after one of them and names only types
 * both define alike (CK_RV, CK_ULONG, CK_SESSION_HANDLE, CK_USER_TYPE,
 * CK_OBJECT_HANDLE, CK_MECHANISM_TYPE, CK_BYTE_PTR, CK_UTF8CHAR_PTR,
 * CK_VOID_PTR: unsigned long, unsigned char * and void *), never a
 * PKCS#11 struct.
 * 3.0-only constants are translated in iface.c into the values below.
 *
 * The entry_* functions are entry.c's (library state checked, call log
 * written, then one family function); hidden by -fvisibility=hidden.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_V3_H
#define STRATA_ENGINE_V3_H

/* The 2.40 function list C_GetFunctionList returns (a CK_FUNCTION_LIST,
 * whose layout both headers share). */
void *entry_function_list_v2(void);

/* The operations C_SessionCancel can name, as iface.c translates the
 * CKF_* flags of 3.0 (mechanism flags and CKF_FIND_OBJECTS). */
enum {
    ENGINE_CANCEL_ENCRYPT = 1u << 0,
    ENGINE_CANCEL_DECRYPT = 1u << 1,
    ENGINE_CANCEL_DIGEST = 1u << 2,
    ENGINE_CANCEL_SIGN = 1u << 3,
    ENGINE_CANCEL_SIGN_RECOVER = 1u << 4,
    ENGINE_CANCEL_VERIFY = 1u << 5,
    ENGINE_CANCEL_VERIFY_RECOVER = 1u << 6,
    ENGINE_CANCEL_FIND = 1u << 7,
    /* the message bits follow engine_msg_kind's order (session_cancel) */
    ENGINE_CANCEL_MESSAGE_ENCRYPT = 1u << 8,
    ENGINE_CANCEL_MESSAGE_DECRYPT = 1u << 9,
    ENGINE_CANCEL_MESSAGE_SIGN = 1u << 10,
    ENGINE_CANCEL_MESSAGE_VERIFY = 1u << 11,
};

/* C_GetMechanismInfo of the 3.0 list (message.c: message_mechanism_info):
 * info is a CK_MECHANISM_INFO (two CK_ULONGs and a CK_FLAGS, alike in
 * both headers); *message_kinds gets the bits 1 << engine_msg_kind of the
 * message-based operations Strata emulates with type. */
CK_RV entry_mechanism_info_v3(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, void *info,
                              unsigned *message_kinds);
/* C_LoginUser (login.c: login_login_user). */
CK_RV entry_login_user(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                       CK_ULONG pin_len, CK_UTF8CHAR_PTR username, CK_ULONG username_len);
/* C_SessionCancel with the ENGINE_CANCEL_* bits of its flags
 * (session.c: session_cancel). */
CK_RV entry_session_cancel(CK_SESSION_HANDLE session, CK_ULONG flags, unsigned operations);

/* The four kinds of message-based operation (message.c). */
typedef enum {
    ENGINE_MSG_ENCRYPT = 0,
    ENGINE_MSG_DECRYPT,
    ENGINE_MSG_SIGN,
    ENGINE_MSG_VERIFY,
    ENGINE_MSG_KINDS
} engine_msg_kind;

/* One message's AEAD parameters, as iface.c reads them from a
 * CK_GCM_MESSAGE_PARAMS (Strata's own struct: no PKCS#11 type crosses). */
typedef enum {
    ENGINE_IV_GIVEN = 0, /* CKG_NO_GENERATE: the caller's IV */
    ENGINE_IV_RANDOM,    /* CKG_GENERATE_RANDOM, CKG_GENERATE: the IV bits after the fixed ones
                            are random */
    ENGINE_IV_COUNTER,   /* CKG_GENERATE_COUNTER: they are a counter */
    ENGINE_IV_OTHER,     /* a generator Strata does not emulate */
} engine_iv_generator;

typedef struct {
    unsigned char *iv;
    CK_ULONG iv_len;
    CK_ULONG iv_fixed_bits;
    engine_iv_generator generator;
    unsigned char *tag; /* out for encryption, in for decryption */
    CK_ULONG tag_bits;
} engine_aead;

/* C_Message{Encrypt,Decrypt,Sign,Verify}Init, the mechanism taken apart
 * (has_mechanism false for a NULL pMechanism). */
CK_RV entry_message_init(CK_SESSION_HANDLE session, engine_msg_kind kind, int has_mechanism,
                         CK_MECHANISM_TYPE type, CK_VOID_PTR param, CK_ULONG param_len,
                         CK_OBJECT_HANDLE key);
/* C_EncryptMessage / C_DecryptMessage; aead NULL when pParameter was
 * NULL, param_ok 0 when it was not a CK_GCM_MESSAGE_PARAMS. */
CK_RV entry_aead_message(CK_SESSION_HANDLE session, engine_msg_kind kind, const engine_aead *aead,
                         int param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* C_EncryptMessageBegin / C_DecryptMessageBegin (aead, param_ok: as
 * entry_aead_message). */
CK_RV entry_aead_begin(CK_SESSION_HANDLE session, engine_msg_kind kind, const engine_aead *aead,
                       int param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len);
/* C_EncryptMessageNext / C_DecryptMessageNext; last: CKF_END_OF_MESSAGE
 * was in flags. */
CK_RV entry_aead_next(CK_SESSION_HANDLE session, engine_msg_kind kind, const engine_aead *aead,
                      int param_ok, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                      CK_ULONG_PTR out_len, int last);
/* C_SignMessage. */
CK_RV entry_sign_message(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                         CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
                         CK_ULONG_PTR sig_len);
/* C_VerifyMessage. */
CK_RV entry_verify_message(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                           CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG sig_len);
/* C_SignMessageBegin / C_VerifyMessageBegin (kind SIGN or VERIFY). */
CK_RV entry_message_begin(CK_SESSION_HANDLE session, engine_msg_kind kind, CK_VOID_PTR param,
                          CK_ULONG param_len);
/* C_SignMessageNext. */
CK_RV entry_sign_message_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                              CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
                              CK_ULONG_PTR sig_len);
/* C_VerifyMessageNext. */
CK_RV entry_verify_message_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                                CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
                                CK_ULONG sig_len);
/* C_Message{Encrypt,Decrypt,Sign,Verify}Final. */
CK_RV entry_message_final(CK_SESSION_HANDLE session, engine_msg_kind kind);

#endif /* STRATA_ENGINE_V3_H */
