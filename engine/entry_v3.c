/*
 * entry_v3.c - the PKCS#11 3.0 entry points of strata-pkcs11.so:
 * C_LoginUser, C_SessionCancel and the message-based functions.
 *
 * iface.c, built against NSS's 3.0 declarations, puts these in its 3.0
 * function list (v3.h says what crosses between the two headers). Each
 * checks the library state, frames the call for the call log and
 * forwards to one family function of ops/, translating v3.h's types into
 * ops.h's. Hidden, not static: only iface.c's C_GetInterfaceList and
 * C_GetInterface are exported.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "entry.h"
#include "v3.h"

void *entry_function_list_v2(void)
{
    return engine_function_list();
}

CK_RV entry_login_user(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                       CK_ULONG pin_len, CK_UTF8CHAR_PTR username, CK_ULONG username_len)
{
    FORWARD(C_LoginUser, login_login_user(session, user_type, pin, pin_len, username, username_len),
            CL_SESSION(session), CL_USER(user_type), CL_PIN("pin", pin, pin_len),
            CL_DATA("username", username, username_len));
}

/* v3.h's ENGINE_CANCEL_* -> the bits of session_cancel. */
static const struct {
    unsigned bit;
    engine_op op;
} cancel_ops[] = {
    {ENGINE_CANCEL_ENCRYPT, ENGINE_OP_ENCRYPT},
    {ENGINE_CANCEL_DECRYPT, ENGINE_OP_DECRYPT},
    {ENGINE_CANCEL_DIGEST, ENGINE_OP_DIGEST},
    {ENGINE_CANCEL_SIGN, ENGINE_OP_SIGN},
    {ENGINE_CANCEL_SIGN_RECOVER, ENGINE_OP_SIGN_RECOVER},
    {ENGINE_CANCEL_VERIFY, ENGINE_OP_VERIFY},
    {ENGINE_CANCEL_VERIFY_RECOVER, ENGINE_OP_VERIFY_RECOVER},
};
static const struct {
    unsigned bit;
    message_kind kind;
} cancel_messages[] = {
    {ENGINE_CANCEL_MESSAGE_ENCRYPT, MESSAGE_ENCRYPT},
    {ENGINE_CANCEL_MESSAGE_DECRYPT, MESSAGE_DECRYPT},
    {ENGINE_CANCEL_MESSAGE_SIGN, MESSAGE_SIGN},
    {ENGINE_CANCEL_MESSAGE_VERIFY, MESSAGE_VERIFY},
};

static unsigned cancel_crypto(unsigned operations)
{
    unsigned ops = 0;

    for (size_t i = 0; i < sizeof(cancel_ops) / sizeof(cancel_ops[0]); i++) {
        ops |= (operations & cancel_ops[i].bit) ? 1u << cancel_ops[i].op : 0;
    }
    return ops;
}

static unsigned cancel_message(unsigned operations)
{
    unsigned kinds = 0;

    for (size_t i = 0; i < sizeof(cancel_messages) / sizeof(cancel_messages[0]); i++) {
        kinds |= (operations & cancel_messages[i].bit) ? 1u << cancel_messages[i].kind : 0;
    }
    return kinds;
}

CK_RV entry_session_cancel(CK_SESSION_HANDLE session, CK_ULONG flags, unsigned operations)
{
    FORWARD(C_SessionCancel,
            session_cancel(session, cancel_crypto(operations),
                           (operations & ENGINE_CANCEL_FIND) != 0, cancel_message(operations)),
            CL_SESSION(session), CL_ULONG("flags", flags));
}

/* v3.h's message kinds -> ops.h's. */
static const message_kind msg_kind[ENGINE_MSG_KINDS] = {MESSAGE_ENCRYPT, MESSAGE_DECRYPT,
                                                        MESSAGE_SIGN, MESSAGE_VERIFY};

/* v3.h's AEAD parameters -> ops.h's (aead NULL -> NULL). */
static const message_aead *aead_of(const engine_aead *aead, message_aead *out)
{
    static const message_iv generators[] = {MESSAGE_IV_GIVEN, MESSAGE_IV_RANDOM, MESSAGE_IV_COUNTER,
                                            MESSAGE_IV_OTHER};

    if (aead == NULL) {
        return NULL;
    }
    out->iv = aead->iv;
    out->iv_len = aead->iv_len;
    out->iv_fixed_bits = aead->iv_fixed_bits;
    out->generator = generators[aead->generator];
    out->tag = aead->tag;
    out->tag_bits = aead->tag_bits;
    return out;
}

/* message_mechanism_info with ops.h's message kinds turned into v3.h's. */
static CK_RV mechanism_info_v3(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info,
                               unsigned *message_kinds)
{
    unsigned kinds = 0;
    CK_RV rv = message_mechanism_info(slot, type, info, &kinds);

    *message_kinds = 0;
    for (int kind = 0; kind < ENGINE_MSG_KINDS; kind++) {
        if (kinds & (1u << msg_kind[kind])) {
            *message_kinds |= 1u << kind;
        }
    }
    return rv;
}

CK_RV entry_mechanism_info_v3(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, void *info,
                              unsigned *message_kinds)
{
    FORWARD(C_GetMechanismInfo, mechanism_info_v3(slot, type, info, message_kinds), CL_SLOT(slot),
            CL_MECH_TYPE(type), CL_INFO_OUT(CALLLOG_MECH_INFO_OUT, info));
}

/* The name of each message kind's functions, for the call log. */
static const char *const msg_init_names[ENGINE_MSG_KINDS] = {
    "C_MessageEncryptInit", "C_MessageDecryptInit", "C_MessageSignInit", "C_MessageVerifyInit"};
static const char *const msg_final_names[ENGINE_MSG_KINDS] = {
    "C_MessageEncryptFinal", "C_MessageDecryptFinal", "C_MessageSignFinal", "C_MessageVerifyFinal"};

CK_RV entry_message_init(CK_SESSION_HANDLE session, engine_msg_kind kind, int has_mechanism,
                         CK_MECHANISM_TYPE type, CK_VOID_PTR param, CK_ULONG param_len,
                         CK_OBJECT_HANDLE key)
{
    CK_MECHANISM mechanism = {type, param, param_len};

    FORWARD_NAMED(msg_init_names[kind],
                  message_init(session, msg_kind[kind], has_mechanism ? &mechanism : NULL, key),
                  CL_SESSION(session), CL_MECHANISM(has_mechanism ? &mechanism : NULL),
                  CL_HANDLE("key", key));
}

CK_RV entry_aead_message(CK_SESSION_HANDLE session, engine_msg_kind kind, const engine_aead *aead,
                         int param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    message_aead ops_aead;

    FORWARD_NAMED(kind == ENGINE_MSG_ENCRYPT ? "C_EncryptMessage" : "C_DecryptMessage",
                  message_aead_one(session, msg_kind[kind], aead_of(aead, &ops_aead), param_ok != 0,
                                   aad, aad_len, in, in_len, out, out_len),
                  CL_SESSION(session), CL_PRESENT("parameter", aead),
                  CL_DATA("associated_data", aad, aad_len), CL_DATA("in", in, in_len),
                  CL_OUT("out", out, out_len));
}

CK_RV entry_aead_begin(CK_SESSION_HANDLE session, engine_msg_kind kind, const engine_aead *aead,
                       int param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len)
{
    message_aead ops_aead;

    FORWARD_NAMED(kind == ENGINE_MSG_ENCRYPT ? "C_EncryptMessageBegin" : "C_DecryptMessageBegin",
                  message_aead_begin(session, msg_kind[kind], aead_of(aead, &ops_aead),
                                     param_ok != 0, aad, aad_len),
                  CL_SESSION(session), CL_PRESENT("parameter", aead),
                  CL_DATA("associated_data", aad, aad_len));
}

CK_RV entry_aead_next(CK_SESSION_HANDLE session, engine_msg_kind kind, const engine_aead *aead,
                      int param_ok, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                      CK_ULONG_PTR out_len, int last)
{
    message_aead ops_aead;

    FORWARD_NAMED(kind == ENGINE_MSG_ENCRYPT ? "C_EncryptMessageNext" : "C_DecryptMessageNext",
                  message_aead_next(session, msg_kind[kind], aead_of(aead, &ops_aead),
                                    param_ok != 0, in, in_len, out, out_len, last != 0),
                  CL_SESSION(session), CL_PRESENT("parameter", aead), CL_DATA("in", in, in_len),
                  CL_OUT("out", out, out_len), CL_ULONG("last", (CK_ULONG)last));
}

CK_RV entry_sign_message(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                         CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
    FORWARD(C_SignMessage, message_sign(session, param, param_len, data, data_len, sig, sig_len),
            CL_SESSION(session), CL_DATA("parameter", param, param_len),
            CL_DATA("data", data, data_len), CL_OUT("signature", sig, sig_len));
}

CK_RV entry_verify_message(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                           CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
    FORWARD(C_VerifyMessage,
            message_verify(session, param, param_len, data, data_len, sig, sig_len),
            CL_SESSION(session), CL_DATA("parameter", param, param_len),
            CL_DATA("data", data, data_len), CL_DATA("signature", sig, sig_len));
}

CK_RV entry_message_begin(CK_SESSION_HANDLE session, engine_msg_kind kind, CK_VOID_PTR param,
                          CK_ULONG param_len)
{
    FORWARD_NAMED(kind == ENGINE_MSG_SIGN ? "C_SignMessageBegin" : "C_VerifyMessageBegin",
                  message_begin(session, msg_kind[kind], param, param_len), CL_SESSION(session),
                  CL_DATA("parameter", param, param_len));
}

CK_RV entry_sign_message_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                              CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
                              CK_ULONG_PTR sig_len)
{
    FORWARD(C_SignMessageNext,
            message_sign_next(session, param, param_len, data, data_len, sig, sig_len),
            CL_SESSION(session), CL_DATA("parameter", param, param_len),
            CL_DATA("data", data, data_len), CL_OUT("signature", sig, sig_len));
}

CK_RV entry_verify_message_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                                CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig,
                                CK_ULONG sig_len)
{
    FORWARD(C_VerifyMessageNext,
            message_verify_next(session, param, param_len, data, data_len, sig, sig_len),
            CL_SESSION(session), CL_DATA("parameter", param, param_len),
            CL_DATA("data", data, data_len), CL_DATA("signature", sig, sig_len));
}

CK_RV entry_message_final(CK_SESSION_HANDLE session, engine_msg_kind kind)
{
    FORWARD_NAMED(msg_final_names[kind], message_final(session, msg_kind[kind]),
                  CL_SESSION(session));
}
