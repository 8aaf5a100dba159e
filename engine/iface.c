/*
 * iface.c - the PKCS#11 3.0 door: C_GetInterfaceList and C_GetInterface,
 * exported beside C_GetFunctionList (strata-pkcs11.map), offering two
 * interfaces named "PKCS 11": version 3.0 (first, the default) and the
 * 2.40 list C_GetFunctionList returns.
 *
 * The 3.0 list is the 2.40 list's functions (C_GetMechanismInfo adding
 * the 3.0 message flags) followed by the 3.0 ones:
 * C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel and the
 * message-based functions (message.c and message_parts.c emulate them
 * over the backends' 2.40 functions).
 *
 * No interface carries CKF_INTERFACE_FORK_SAFE: after fork() the child
 * must call C_Initialize again (every other call answers
 * CKR_CRYPTOKI_NOT_INITIALIZED there), which is the opposite of what
 * that flag promises.
 *
 * This is the one file compiled against NSS's 3.0 declarations (see
 * v3.h for why, and for what crosses to the other files). Both functions
 * work before C_Initialize, like C_GetFunctionList.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include <nss/pkcs11.h>

#include "v3.h"

#define INTERFACE_NAME "PKCS 11"

/* The 3.0 list begins with the 2.40 one, field for field. */
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_GetInterfaceList) == sizeof(CK_FUNCTION_LIST),
               "the 3.0 function list extends the 2.40 one");
_Static_assert(offsetof(CK_FUNCTION_LIST_3_0, C_WaitForSlotEvent) ==
                   offsetof(CK_FUNCTION_LIST, C_WaitForSlotEvent),
               "the 3.0 function list extends the 2.40 one");

/* ---------------------------------------------------------------------
 * The 3.0 functions: struct-typed or 3.0-only arguments are translated
 * here, then entry.c takes over (v3.h)
 * ------------------------------------------------------------------ */

/* CKF_* of C_SessionCancel -> the ENGINE_CANCEL_* Strata tracks. Flags
 * naming operations that Strata never keeps active (key generation,
 * wrapping, derivation: single calls) have nothing to end. */
static unsigned cancel_operations(CK_FLAGS flags)
{
    static const struct {
        CK_FLAGS flag;
        unsigned op;
    } map[] = {
        {CKF_ENCRYPT, ENGINE_CANCEL_ENCRYPT},
        {CKF_DECRYPT, ENGINE_CANCEL_DECRYPT},
        {CKF_DIGEST, ENGINE_CANCEL_DIGEST},
        {CKF_SIGN, ENGINE_CANCEL_SIGN},
        {CKF_SIGN_RECOVER, ENGINE_CANCEL_SIGN_RECOVER},
        {CKF_VERIFY, ENGINE_CANCEL_VERIFY},
        {CKF_VERIFY_RECOVER, ENGINE_CANCEL_VERIFY_RECOVER},
        {CKF_FIND_OBJECTS, ENGINE_CANCEL_FIND},
        {CKF_MESSAGE_ENCRYPT, ENGINE_CANCEL_MESSAGE_ENCRYPT},
        {CKF_MESSAGE_DECRYPT, ENGINE_CANCEL_MESSAGE_DECRYPT},
        {CKF_MESSAGE_SIGN, ENGINE_CANCEL_MESSAGE_SIGN},
        {CKF_MESSAGE_VERIFY, ENGINE_CANCEL_MESSAGE_VERIFY},
    };
    unsigned ops = 0;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (flags & map[i].flag) {
            ops |= map[i].op;
        }
    }
    return ops;
}

/* ENGINE_MSG_* bits -> the CKF_MESSAGE_* mechanism flags of 3.0. */
static CK_FLAGS message_flags(unsigned kinds)
{
    static const CK_FLAGS flag[ENGINE_MSG_KINDS] = {CKF_MESSAGE_ENCRYPT, CKF_MESSAGE_DECRYPT,
                                                    CKF_MESSAGE_SIGN, CKF_MESSAGE_VERIFY};
    CK_FLAGS flags = 0;

    for (int kind = 0; kind < ENGINE_MSG_KINDS; kind++) {
        if (kinds & (1u << kind)) {
            flags |= flag[kind];
        }
    }
    return flags;
}

_Static_assert(sizeof(CK_MECHANISM_INFO) == 3 * sizeof(CK_ULONG),
               "CK_MECHANISM_INFO is laid out alike in both headers");

/* C_GetMechanismInfo of the 3.0 list: the 2.40 answer (which never holds
 * a 3.0 flag) plus CKF_MESSAGE_* for what Strata's message emulation does
 * with the mechanism. CKF_MULTI_MESSAGE is never set: a 2.40 backend does
 * not say whether it takes a mechanism in parts. */
static CK_RV get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    unsigned kinds = 0;
    CK_RV rv = entry_mechanism_info_v3(slot, type, info, &kinds);

    if (rv == CKR_OK) {
        info->flags |= message_flags(kinds);
    }
    return rv;
}

static CK_RV session_cancel(CK_SESSION_HANDLE session, CK_FLAGS flags)
{
    return entry_session_cancel(session, flags, cancel_operations(flags));
}

/* Takes mechanism apart for entry_message_init. */
static CK_RV message_init(CK_SESSION_HANDLE session, engine_msg_kind kind,
                          CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key)
{
    if (mechanism == NULL) {
        return entry_message_init(session, kind, 0, 0, NULL, 0, key);
    }
    return entry_message_init(session, kind, 1, mechanism->mechanism, mechanism->pParameter,
                              mechanism->ulParameterLen, key);
}

static engine_iv_generator iv_generator(CK_GENERATOR_FUNCTION generator)
{
    switch (generator) {
    case CKG_NO_GENERATE:
        return ENGINE_IV_GIVEN;
    case CKG_GENERATE_RANDOM:
    case CKG_GENERATE: /* the token's choice: random, since a counter starts again in each
                          session and two sessions would make the same IVs */
        return ENGINE_IV_RANDOM;
    case CKG_GENERATE_COUNTER:
        return ENGINE_IV_COUNTER;
    default:
        return ENGINE_IV_OTHER;
    }
}

/* Reads a message's CK_GCM_MESSAGE_PARAMS into aead: 1 if it is one, 0
 * if not (aead left zero). */
static int read_gcm(CK_VOID_PTR param, CK_ULONG param_len, engine_aead *aead)
{
    const CK_GCM_MESSAGE_PARAMS *gcm = param;

    memset(aead, 0, sizeof(*aead));
    if (param == NULL || param_len != sizeof(*gcm)) {
        return 0;
    }
    aead->iv = gcm->pIv;
    aead->iv_len = gcm->ulIvLen;
    aead->iv_fixed_bits = gcm->ulIvFixedBits;
    aead->generator = iv_generator(gcm->ivGenerator);
    aead->tag = gcm->pTag;
    aead->tag_bits = gcm->ulTagBits;
    return 1;
}

/* Hands a single-part message to entry_aead_message (which answers for a
 * NULL or malformed parameter). */
static CK_RV aead_message(CK_SESSION_HANDLE session, engine_msg_kind kind, CK_VOID_PTR param,
                          CK_ULONG param_len, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in,
                          CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    engine_aead aead;
    int ok = read_gcm(param, param_len, &aead);

    return entry_aead_message(session, kind, param != NULL ? &aead : NULL, ok, aad, aad_len, in,
                              in_len, out, out_len);
}

static CK_RV aead_begin(CK_SESSION_HANDLE session, engine_msg_kind kind, CK_VOID_PTR param,
                        CK_ULONG param_len, CK_BYTE_PTR aad, CK_ULONG aad_len)
{
    engine_aead aead;
    int ok = read_gcm(param, param_len, &aead);

    return entry_aead_begin(session, kind, param != NULL ? &aead : NULL, ok, aad, aad_len);
}

static CK_RV aead_next(CK_SESSION_HANDLE session, engine_msg_kind kind, CK_VOID_PTR param,
                       CK_ULONG param_len, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                       CK_ULONG_PTR out_len, CK_FLAGS flags)
{
    engine_aead aead;
    int ok = read_gcm(param, param_len, &aead);

    return entry_aead_next(session, kind, param != NULL ? &aead : NULL, ok, in, in_len, out,
                           out_len, (flags & CKF_END_OF_MESSAGE) != 0);
}

static CK_RV message_encrypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                  CK_OBJECT_HANDLE key)
{
    return message_init(session, ENGINE_MSG_ENCRYPT, mechanism, key);
}

static CK_RV encrypt_message(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                             CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in, CK_ULONG in_len,
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return aead_message(session, ENGINE_MSG_ENCRYPT, param, param_len, aad, aad_len, in, in_len,
                        out, out_len);
}

static CK_RV encrypt_message_begin(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                                   CK_BYTE_PTR aad, CK_ULONG aad_len)
{
    return aead_begin(session, ENGINE_MSG_ENCRYPT, param, param_len, aad, aad_len);
}

static CK_RV encrypt_message_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                                  CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                                  CK_ULONG_PTR out_len, CK_FLAGS flags)
{
    return aead_next(session, ENGINE_MSG_ENCRYPT, param, param_len, in, in_len, out, out_len,
                     flags);
}

static CK_RV message_encrypt_final(CK_SESSION_HANDLE session)
{
    return entry_message_final(session, ENGINE_MSG_ENCRYPT);
}

static CK_RV message_decrypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                  CK_OBJECT_HANDLE key)
{
    return message_init(session, ENGINE_MSG_DECRYPT, mechanism, key);
}

static CK_RV decrypt_message(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                             CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in, CK_ULONG in_len,
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return aead_message(session, ENGINE_MSG_DECRYPT, param, param_len, aad, aad_len, in, in_len,
                        out, out_len);
}

static CK_RV decrypt_message_begin(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                                   CK_BYTE_PTR aad, CK_ULONG aad_len)
{
    return aead_begin(session, ENGINE_MSG_DECRYPT, param, param_len, aad, aad_len);
}

static CK_RV decrypt_message_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                                  CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                                  CK_ULONG_PTR out_len, CK_FLAGS flags)
{
    return aead_next(session, ENGINE_MSG_DECRYPT, param, param_len, in, in_len, out, out_len,
                     flags);
}

static CK_RV message_decrypt_final(CK_SESSION_HANDLE session)
{
    return entry_message_final(session, ENGINE_MSG_DECRYPT);
}

static CK_RV message_sign_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                               CK_OBJECT_HANDLE key)
{
    return message_init(session, ENGINE_MSG_SIGN, mechanism, key);
}

static CK_RV sign_message_begin(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len)
{
    return entry_message_begin(session, ENGINE_MSG_SIGN, param, param_len);
}

static CK_RV message_sign_final(CK_SESSION_HANDLE session)
{
    return entry_message_final(session, ENGINE_MSG_SIGN);
}

static CK_RV message_verify_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                                 CK_OBJECT_HANDLE key)
{
    return message_init(session, ENGINE_MSG_VERIFY, mechanism, key);
}

static CK_RV verify_message_begin(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len)
{
    return entry_message_begin(session, ENGINE_MSG_VERIFY, param, param_len);
}

static CK_RV message_verify_final(CK_SESSION_HANDLE session)
{
    return entry_message_final(session, ENGINE_MSG_VERIFY);
}

/* ---------------------------------------------------------------------
 * The interfaces
 * ------------------------------------------------------------------ */

static CK_FUNCTION_LIST_3_0 list_v3;
static CK_INTERFACE interfaces[2];
static pthread_once_t built = PTHREAD_ONCE_INIT;

/* Fills the 3.0 list (the 2.40 list's functions, then the 3.0 ones) and
 * the interface array, once per process. */
static void build(void)
{
    CK_FUNCTION_LIST *v2 = entry_function_list_v2();

    memcpy(&list_v3, v2, sizeof(*v2));
    list_v3.version.major = 3;
    list_v3.version.minor = 0;
    list_v3.C_GetMechanismInfo = get_mechanism_info;
    list_v3.C_GetInterfaceList = C_GetInterfaceList;
    list_v3.C_GetInterface = C_GetInterface;
    list_v3.C_LoginUser = entry_login_user;
    list_v3.C_SessionCancel = session_cancel;
    list_v3.C_MessageEncryptInit = message_encrypt_init;
    list_v3.C_EncryptMessage = encrypt_message;
    list_v3.C_EncryptMessageBegin = encrypt_message_begin;
    list_v3.C_EncryptMessageNext = encrypt_message_next;
    list_v3.C_MessageEncryptFinal = message_encrypt_final;
    list_v3.C_MessageDecryptInit = message_decrypt_init;
    list_v3.C_DecryptMessage = decrypt_message;
    list_v3.C_DecryptMessageBegin = decrypt_message_begin;
    list_v3.C_DecryptMessageNext = decrypt_message_next;
    list_v3.C_MessageDecryptFinal = message_decrypt_final;
    list_v3.C_MessageSignInit = message_sign_init;
    list_v3.C_SignMessage = entry_sign_message;
    list_v3.C_SignMessageBegin = sign_message_begin;
    list_v3.C_SignMessageNext = entry_sign_message_next;
    list_v3.C_MessageSignFinal = message_sign_final;
    list_v3.C_MessageVerifyInit = message_verify_init;
    list_v3.C_VerifyMessage = entry_verify_message;
    list_v3.C_VerifyMessageBegin = verify_message_begin;
    list_v3.C_VerifyMessageNext = entry_verify_message_next;
    list_v3.C_MessageVerifyFinal = message_verify_final;

    interfaces[0].pInterfaceName = (CK_CHAR_PTR)INTERFACE_NAME;
    interfaces[0].pFunctionList = &list_v3;
    interfaces[0].flags = 0;
    interfaces[1].pInterfaceName = (CK_CHAR_PTR)INTERFACE_NAME;
    interfaces[1].pFunctionList = v2;
    interfaces[1].flags = 0;
}

#define N_INTERFACES (sizeof(interfaces) / sizeof(interfaces[0]))

/*
 * C_GetInterfaceList. A NULL list asks for the count. Returns CKR_OK;
 * CKR_ARGUMENTS_BAD (NULL count); CKR_BUFFER_TOO_SMALL (*count set to the
 * number of interfaces).
 */
__attribute__((visibility("default"))) CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list,
                                                                CK_ULONG_PTR count)
{
    if (count == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    pthread_once(&built, build);
    if (list == NULL) {
        *count = N_INTERFACES;
        return CKR_OK;
    }
    if (*count < N_INTERFACES) {
        *count = N_INTERFACES;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(list, interfaces, sizeof(interfaces));
    *count = N_INTERFACES;
    return CKR_OK;
}

/* Whether iface is what name (NULL: any), version (NULL: any) and flags
 * (all of them set on it) ask for. */
static int interface_fits(const CK_INTERFACE *iface, const CK_UTF8CHAR *name,
                          const CK_VERSION *version, CK_FLAGS flags)
{
    const CK_VERSION *has = iface->pFunctionList;

    if (name != NULL && strcmp((const char *)name, (const char *)iface->pInterfaceName) != 0) {
        return 0;
    }
    if (version != NULL && (version->major != has->major || version->minor != has->minor)) {
        return 0;
    }
    return (iface->flags & flags) == flags;
}

/*
 * C_GetInterface: the first interface that fits (so with a NULL name or
 * version, 3.0). Returns CKR_OK; CKR_ARGUMENTS_BAD (NULL ppInterface, or
 * no interface of that name, version and flags).
 */
__attribute__((visibility("default"))) CK_RV C_GetInterface(CK_UTF8CHAR_PTR name,
                                                            CK_VERSION_PTR version,
                                                            CK_INTERFACE_PTR_PTR found,
                                                            CK_FLAGS flags)
{
    if (found == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    pthread_once(&built, build);
    for (size_t i = 0; i < N_INTERFACES; i++) {
        if (interface_fits(&interfaces[i], name, version, flags)) {
            *found = &interfaces[i];
            return CKR_OK;
        }
    }
    return CKR_ARGUMENTS_BAD;
}
