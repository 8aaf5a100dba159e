/*
 * test_contract.c - the module's contract for bad input, as one table.
 *
 * Every row names a PKCS#11 v2.40 entry point, a short case, the state the
 * module is brought to before the call (a fresh C_Initialize for each row,
 * so no row depends on another), the call itself and the exact CKR_* that
 * v2.40 gives for it. Too-small buffers also check that the length needed
 * is reported and that nothing was written (canary bytes).
 *
 * The world is stack_world.h's, with two keys in the writable personal
 * layer of the work view: "c-ec" (EC P-256, id 21) and "c-rsa" (RSA-2048,
 * id 22). No row presents a wrong PIN: the view locks after three.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "stack_world.h"

#define FILL 0xA5

/* How far a row's state is built before its call. */
typedef enum {
    L_NONE,    /* module loaded, C_Initialize not called */
    L_INIT,    /* initialised, no session */
    L_RO,      /* a read-only public session */
    L_RW,      /* a read/write public session */
    L_USER_RO, /* a read-only session, user logged in */
    L_USER,    /* a read/write session, user logged in */
    L_FIND,    /* L_USER with a search active */
    L_DIGEST,  /* L_USER with SHA-256 digesting active */
    L_SIGN,    /* L_USER with ECDSA signing (c-ec) active */
    L_VERIFY,  /* L_USER with ECDSA verification (c-ec) active */
    L_ENCRYPT, /* L_USER with RSA PKCS#1 encryption (c-rsa) active */
    L_DECRYPT, /* L_USER with RSA PKCS#1 decryption (c-rsa) active */
    L_LEVELS
} level;

static const char *const level_names[L_LEVELS] = {
    "not initialised",  "initialised",       "read-only session", "read/write session",
    "user (read-only)", "user (read/write)", "search active",     "digest active",
    "sign active",      "verify active",     "encrypt active",    "decrypt active",
};

/* What a row's call can use. */
typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE ec_priv, ec_pub, rsa_priv, rsa_pub;
    CK_BYTE buf[512];
    CK_BYTE data[32];
    CK_ULONG len;
} ctx;

#define P         (c->p11)
#define S         (c->s)
#define BAD_SLOT  (c->slot + 4242)
#define BAD_SESS  (c->s + 100000)
#define BAD_OBJ   ((CK_OBJECT_HANDLE)0x7fff0000)
#define NO_HANDLE ((CK_OBJECT_HANDLE)CK_INVALID_HANDLE)
#define DATA      (c->data)
#define BUF       (c->buf)
#define LEN       (&c->len)

static CK_MECHANISM m_sha256 = {CKM_SHA256, NULL, 0};
static CK_MECHANISM m_ecdsa = {CKM_ECDSA, NULL, 0};
static CK_MECHANISM m_rsa = {CKM_RSA_PKCS, NULL, 0};
static CK_MECHANISM m_bogus = {0x7ffffff0UL, NULL, 0};
static CK_MECHANISM m_aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
static CK_MECHANISM m_ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
static CK_MECHANISM m_ecdh = {CKM_ECDH1_DERIVE, NULL, 0};
static CK_BBOOL yes = CK_TRUE;
static CK_OBJECT_CLASS cls_data = CKO_DATA;
static CK_ATTRIBUTE t_token[] = {{CKA_TOKEN, &yes, sizeof(yes)}};
static CK_ATTRIBUTE t_data[] = {{CKA_CLASS, &cls_data, sizeof(cls_data)},
                                {CKA_TOKEN, &yes, sizeof(yes)}};
static CK_ATTRIBUTE t_private_data[] = {{CKA_CLASS, &cls_data, sizeof(cls_data)},
                                        {CKA_TOKEN, &yes, sizeof(yes)},
                                        {CKA_PRIVATE, &yes, sizeof(yes)}};
static CK_ATTRIBUTE t_label[] = {{CKA_LABEL, "x", 1}};
static CK_BBOOL no = CK_FALSE;
static CK_ATTRIBUTE t_session_data[] = {{CKA_CLASS, &cls_data, sizeof(cls_data)},
                                        {CKA_TOKEN, &no, sizeof(no)}};
static CK_BYTE p256_params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_ATTRIBUTE t_ec_public[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                                     {CKA_EC_PARAMS, p256_params, sizeof(p256_params)}};
static CK_ATTRIBUTE t_private_token[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                                         {CKA_PRIVATE, &yes, sizeof(yes)}};
static CK_ATTRIBUTE t_null_value[] = {{CKA_LABEL, NULL, 4}};
static CK_ATTRIBUTE t_bad_type[] = {{0x7ffffff1UL, "x", 1}};
static CK_ATTRIBUTE t_class[] = {{CKA_CLASS, &cls_data, sizeof(cls_data)}};

/* True if none of the n bytes at p was written (all still FILL). */
static bool untouched(const CK_BYTE *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != FILL) {
            return false;
        }
    }
    return true;
}

/* A too-small output buffer: *len starts at `given`, the buffer is FILL.
 * Checks that `need` is reported and the buffer untouched; returns rv. */
static CK_RV small_out(ctx *c, CK_RV rv, CK_ULONG need, const char *what)
{
    cr_expect_eq(c->len, need, "%s: length %lu reported, %lu needed", what, c->len, need);
    cr_expect(untouched(c->buf, sizeof(c->buf)), "%s: the too-small buffer was written", what);
    return rv;
}

/* Prepares a too-small output: buffer FILL, *len = given. */
static ctx *fill(ctx *c, CK_ULONG given)
{
    memset(c->buf, FILL, sizeof(c->buf));
    c->len = given;
    return c;
}

/* C_GetAttributeValue of CKA_LABEL into 1 byte: v2.40 sets ulValueLen to
 * CK_UNAVAILABLE_INFORMATION and writes nothing. */
static CK_RV small_label(ctx *c)
{
    CK_ATTRIBUTE a = {CKA_LABEL, fill(c, 0)->buf, 1};
    CK_RV rv = P->C_GetAttributeValue(S, c->ec_priv, &a, 1);

    cr_expect_eq(a.ulValueLen, CK_UNAVAILABLE_INFORMATION, "label: ulValueLen %lu", a.ulValueLen);
    cr_expect(untouched(c->buf, sizeof(c->buf)), "label: the too-small buffer was written");
    return rv;
}

/* C_GetAttributeValue of a sensitive CKA_VALUE: ulValueLen becomes
 * CK_UNAVAILABLE_INFORMATION. */
static CK_RV sensitive_value(ctx *c)
{
    CK_ATTRIBUTE a = {CKA_VALUE, fill(c, 0)->buf, sizeof(c->buf)};
    CK_RV rv = P->C_GetAttributeValue(S, c->ec_priv, &a, 1);

    cr_expect_eq(a.ulValueLen, CK_UNAVAILABLE_INFORMATION, "value: ulValueLen %lu", a.ulValueLen);
    cr_expect(untouched(c->buf, sizeof(c->buf)), "value: a sensitive value was written");
    return rv;
}

/* C_GetAttributeValue of an attribute type no object has. */
static CK_RV invalid_type(ctx *c)
{
    CK_ATTRIBUTE a = {0x7ffffff1UL, fill(c, 0)->buf, sizeof(c->buf)};
    CK_RV rv = P->C_GetAttributeValue(S, c->ec_priv, &a, 1);

    cr_expect_eq(a.ulValueLen, CK_UNAVAILABLE_INFORMATION, "type: ulValueLen %lu", a.ulValueLen);
    return rv;
}

/* C_GetSlotList with room for no slot: the count is reported. */
static CK_RV small_slot_list(ctx *c)
{
    CK_SLOT_ID list[1] = {(CK_SLOT_ID)CANARY};
    CK_ULONG n = 0;
    CK_RV rv = P->C_GetSlotList(CK_TRUE, list, &n);

    cr_expect_eq(n, 1, "slot list: count %lu", n);
    cr_expect_eq(list[0], (CK_SLOT_ID)CANARY, "slot list: the too-small list was written");
    return rv;
}

/* C_GetMechanismList with room for one: the full count is reported. */
static CK_RV small_mech_list(ctx *c)
{
    CK_MECHANISM_TYPE list[1] = {(CK_MECHANISM_TYPE)CANARY};
    CK_ULONG n = 1, all = 0;
    CK_RV rv = P->C_GetMechanismList(c->slot, list, &n);

    cr_assert_eq(P->C_GetMechanismList(c->slot, NULL, &all), CKR_OK);
    cr_expect_gt(all, 1, "the token has more than one mechanism");
    cr_expect_eq(n, all, "mechanism list: count %lu, %lu needed", n, all);
    cr_expect_eq(list[0], (CK_MECHANISM_TYPE)CANARY, "mechanism list: written");
    return rv;
}

/* A handle that was valid and has been closed. */
static CK_SESSION_HANDLE closed(ctx *c)
{
    CK_SESSION_HANDLE h = open_rw(P, c->slot);

    cr_assert_eq(P->C_CloseSession(h), CKR_OK);
    return h;
}

/* A session handle that C_CloseAllSessions ended. */
static CK_SESSION_HANDLE all_closed(ctx *c)
{
    CK_SESSION_HANDLE h = open_rw(P, c->slot);

    cr_assert_eq(P->C_CloseAllSessions(c->slot), CKR_OK);
    return h;
}

/* C_GetMechanismList with a list but a zero count. */
static CK_RV zero_mech_list(ctx *c)
{
    CK_MECHANISM_TYPE list[1] = {(CK_MECHANISM_TYPE)CANARY};
    CK_ULONG n = 0;
    CK_RV rv = P->C_GetMechanismList(c->slot, list, &n);

    cr_expect_gt(n, 1, "mechanism list: count %lu", n);
    cr_expect_eq(list[0], (CK_MECHANISM_TYPE)CANARY, "mechanism list: written");
    return rv;
}

/* Two attributes, the second too small: the first is still returned. */
static CK_RV small_second(ctx *c)
{
    CK_KEY_TYPE kt = (CK_KEY_TYPE)CANARY;
    CK_ATTRIBUTE a[2] = {{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_LABEL, fill(c, 0)->buf, 1}};
    CK_RV rv = P->C_GetAttributeValue(S, c->ec_priv, a, 2);

    cr_expect_eq(kt, CKK_EC, "the attribute with room was not returned");
    cr_expect_eq(a[1].ulValueLen, CK_UNAVAILABLE_INFORMATION, "label: %lu", a[1].ulValueLen);
    cr_expect(untouched(c->buf, sizeof(c->buf)), "label: the too-small buffer was written");
    return rv;
}

/* CKR_BUFFER_TOO_SMALL keeps a C_Sign going: the next call signs. */
static CK_RV sign_after_small(ctx *c)
{
    cr_expect_eq(P->C_Sign(S, DATA, 32, fill(c, 10)->buf, LEN), CKR_BUFFER_TOO_SMALL);
    c->len = sizeof(c->buf);
    return P->C_Sign(S, DATA, 32, c->buf, LEN);
}

/* CKR_BUFFER_TOO_SMALL keeps a C_Digest going: the next call digests. */
static CK_RV digest_after_small(ctx *c)
{
    cr_expect_eq(P->C_Digest(S, DATA, 4, fill(c, 10)->buf, LEN), CKR_BUFFER_TOO_SMALL);
    c->len = sizeof(c->buf);
    return P->C_Digest(S, DATA, 4, c->buf, LEN);
}

/* C_Decrypt of a real RSA ciphertext into 10 bytes (the ciphertext is made
 * in a second session, as this one's decryption is active). */
static CK_RV small_decrypt(ctx *c)
{
    CK_SESSION_HANDLE other = open_rw(P, c->slot);
    CK_BYTE cipher[256];
    CK_ULONG n = sizeof(cipher);

    cr_assert_eq(P->C_EncryptInit(other, &m_rsa, c->rsa_pub), CKR_OK);
    cr_assert_eq(P->C_Encrypt(other, c->data, 4, cipher, &n), CKR_OK);
    return small_out(c, P->C_Decrypt(S, cipher, n, fill(c, 10)->buf, LEN), 256, "C_Decrypt");
}

/* An object handle read while logged in, used after C_Logout. */
static CK_OBJECT_HANDLE logged_out(ctx *c, CK_OBJECT_HANDLE h)
{
    cr_assert_eq(P->C_Logout(S), CKR_OK);
    return h;
}

/* An object handle of the work view, used after logging in to anon. */
static CK_OBJECT_HANDLE other_view(ctx *c, CK_OBJECT_HANDLE h)
{
    cr_assert_eq(P->C_Logout(S), CKR_OK);
    cr_assert_eq(login(P, S, ANON_PIN), CKR_OK);
    return h;
}

/* A second session of the application, in the same login state. */
static CK_SESSION_HANDLE second(ctx *c)
{
    return open_rw(P, c->slot);
}

/* A search that C_FindObjectsFinal ended. */
static CK_SESSION_HANDLE find_ended(ctx *c)
{
    cr_assert_eq(P->C_FindObjectsFinal(S), CKR_OK);
    return S;
}

/* A session data object made in a second session that is then closed:
 * closing a session destroys its session objects. (The create is the
 * first call of a session opened after C_Login: it opens the backend
 * session and replays the login, which once deadlocked in object.c.) */
static CK_OBJECT_HANDLE of_closed_session(ctx *c)
{
    CK_SESSION_HANDLE other = open_rw(P, c->slot);
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    cr_assert_eq(P->C_CreateObject(other, t_session_data, 2, &h), CKR_OK);
    cr_assert_eq(P->C_CloseSession(other), CKR_OK);
    return h;
}

/* A session data object of this session, destroyed. */
static CK_OBJECT_HANDLE destroyed(ctx *c)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    cr_assert_eq(P->C_CreateObject(S, t_session_data, 2, &h), CKR_OK);
    cr_assert_eq(P->C_DestroyObject(S, h), CKR_OK);
    return h;
}

static CK_C_INITIALIZE_ARGS half_mutex_args = {.CreateMutex = (CK_CREATEMUTEX)1};
static CK_C_INITIALIZE_ARGS reserved_args = {.pReserved = (void *)1};

/*
 * THE TABLE: X(function, case, level, expected CKR, call).
 * The call is one expression over ctx *c (macros above).
 * C_InitToken and C_Get/SetOperationState are stubs: after the slot or
 * session check they return CKR_FUNCTION_NOT_SUPPORTED, which v2.40 lets
 * every function return, so their argument checks do not apply.
 */
#define CONTRACT(X)                                                                                \
    /* --- every entry point before C_Initialize --- */                                            \
    X(C_Finalize, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                  \
      P->C_Finalize(NULL))                                                                         \
    X(C_GetInfo, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                   \
      P->C_GetInfo((CK_INFO *)BUF))                                                                \
    X(C_GetSlotList, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_GetSlotList(CK_TRUE, NULL, LEN))                                                        \
    X(C_GetSlotInfo, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_GetSlotInfo(1, (CK_SLOT_INFO *)BUF))                                                    \
    X(C_GetTokenInfo, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_GetTokenInfo(1, (CK_TOKEN_INFO *)BUF))                                                  \
    X(C_GetMechanismList, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,          \
      P->C_GetMechanismList(1, NULL, LEN))                                                         \
    X(C_GetMechanismInfo, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,          \
      P->C_GetMechanismInfo(1, CKM_SHA256, (CK_MECHANISM_INFO *)BUF))                              \
    X(C_InitToken, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                 \
      P->C_InitToken(1, (CK_UTF8CHAR *)"1234", 4, BUF))                                            \
    X(C_InitPIN, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                   \
      P->C_InitPIN(1, (CK_UTF8CHAR *)"1234", 4))                                                   \
    X(C_SetPIN, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                    \
      P->C_SetPIN(1, (CK_UTF8CHAR *)"1234", 4, (CK_UTF8CHAR *)"5678", 4))                          \
    X(C_OpenSession, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &c->s))                                  \
    X(C_CloseSession, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_CloseSession(1))                                                                        \
    X(C_CloseAllSessions, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,          \
      P->C_CloseAllSessions(1))                                                                    \
    X(C_GetSessionInfo, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,            \
      P->C_GetSessionInfo(1, (CK_SESSION_INFO *)BUF))                                              \
    X(C_GetOperationState, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_GetOperationState(1, NULL, LEN))                                                        \
    X(C_SetOperationState, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_SetOperationState(1, BUF, 4, 0, 0))                                                     \
    X(C_Login, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                     \
      P->C_Login(1, CKU_USER, (CK_UTF8CHAR *)"1234", 4))                                           \
    X(C_Logout, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED, P->C_Logout(1))    \
    X(C_CreateObject, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_CreateObject(1, t_data, 2, &c->ec_priv))                                                \
    X(C_CopyObject, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                \
      P->C_CopyObject(1, 1, NULL, 0, &c->ec_priv))                                                 \
    X(C_DestroyObject, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,             \
      P->C_DestroyObject(1, 1))                                                                    \
    X(C_GetObjectSize, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,             \
      P->C_GetObjectSize(1, 1, LEN))                                                               \
    X(C_GetAttributeValue, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_GetAttributeValue(1, 1, t_label, 1))                                                    \
    X(C_SetAttributeValue, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_SetAttributeValue(1, 1, t_label, 1))                                                    \
    X(C_FindObjectsInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,           \
      P->C_FindObjectsInit(1, NULL, 0))                                                            \
    X(C_FindObjects, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_FindObjects(1, &c->ec_priv, 1, LEN))                                                    \
    X(C_FindObjectsFinal, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,          \
      P->C_FindObjectsFinal(1))                                                                    \
    X(C_EncryptInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_EncryptInit(1, &m_rsa, 1))                                                              \
    X(C_Encrypt, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                   \
      P->C_Encrypt(1, DATA, 4, BUF, LEN))                                                          \
    X(C_EncryptUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,             \
      P->C_EncryptUpdate(1, DATA, 4, BUF, LEN))                                                    \
    X(C_EncryptFinal, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_EncryptFinal(1, BUF, LEN))                                                              \
    X(C_DecryptInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_DecryptInit(1, &m_rsa, 1))                                                              \
    X(C_Decrypt, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                   \
      P->C_Decrypt(1, DATA, 4, BUF, LEN))                                                          \
    X(C_DecryptUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,             \
      P->C_DecryptUpdate(1, DATA, 4, BUF, LEN))                                                    \
    X(C_DecryptFinal, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_DecryptFinal(1, BUF, LEN))                                                              \
    X(C_DigestInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                \
      P->C_DigestInit(1, &m_sha256))                                                               \
    X(C_Digest, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                    \
      P->C_Digest(1, DATA, 4, BUF, LEN))                                                           \
    X(C_DigestUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_DigestUpdate(1, DATA, 4))                                                               \
    X(C_DigestKey, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                 \
      P->C_DigestKey(1, 1))                                                                        \
    X(C_DigestFinal, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_DigestFinal(1, BUF, LEN))                                                               \
    X(C_SignInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                  \
      P->C_SignInit(1, &m_ecdsa, 1))                                                               \
    X(C_Sign, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                      \
      P->C_Sign(1, DATA, 4, BUF, LEN))                                                             \
    X(C_SignUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                \
      P->C_SignUpdate(1, DATA, 4))                                                                 \
    X(C_SignFinal, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                 \
      P->C_SignFinal(1, BUF, LEN))                                                                 \
    X(C_SignRecoverInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,           \
      P->C_SignRecoverInit(1, &m_rsa, 1))                                                          \
    X(C_SignRecover, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_SignRecover(1, DATA, 4, BUF, LEN))                                                      \
    X(C_VerifyInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                \
      P->C_VerifyInit(1, &m_ecdsa, 1))                                                             \
    X(C_Verify, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                    \
      P->C_Verify(1, DATA, 4, BUF, 64))                                                            \
    X(C_VerifyUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,              \
      P->C_VerifyUpdate(1, DATA, 4))                                                               \
    X(C_VerifyFinal, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_VerifyFinal(1, BUF, 64))                                                                \
    X(C_VerifyRecoverInit, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_VerifyRecoverInit(1, &m_rsa, 1))                                                        \
    X(C_VerifyRecover, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,             \
      P->C_VerifyRecover(1, BUF, 64, DATA, LEN))                                                   \
    X(C_DigestEncryptUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,       \
      P->C_DigestEncryptUpdate(1, DATA, 4, BUF, LEN))                                              \
    X(C_DecryptDigestUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,       \
      P->C_DecryptDigestUpdate(1, DATA, 4, BUF, LEN))                                              \
    X(C_SignEncryptUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_SignEncryptUpdate(1, DATA, 4, BUF, LEN))                                                \
    X(C_DecryptVerifyUpdate, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,       \
      P->C_DecryptVerifyUpdate(1, DATA, 4, BUF, LEN))                                              \
    X(C_GenerateKey, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,               \
      P->C_GenerateKey(1, &m_aes_gen, NULL, 0, &c->ec_priv))                                       \
    X(C_GenerateKeyPair, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,           \
      P->C_GenerateKeyPair(1, &m_ec_gen, NULL, 0, NULL, 0, &c->ec_pub, &c->ec_priv))               \
    X(C_WrapKey, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                   \
      P->C_WrapKey(1, &m_rsa, 1, 2, BUF, LEN))                                                     \
    X(C_UnwrapKey, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                 \
      P->C_UnwrapKey(1, &m_rsa, 1, BUF, 4, NULL, 0, &c->ec_priv))                                  \
    X(C_DeriveKey, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                 \
      P->C_DeriveKey(1, &m_ecdh, 1, NULL, 0, &c->ec_priv))                                         \
    X(C_SeedRandom, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,                \
      P->C_SeedRandom(1, DATA, 4))                                                                 \
    X(C_GenerateRandom, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,            \
      P->C_GenerateRandom(1, BUF, 4))                                                              \
    X(C_GetFunctionStatus, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,         \
      P->C_GetFunctionStatus(1))                                                                   \
    X(C_CancelFunction, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,            \
      P->C_CancelFunction(1))                                                                      \
    X(C_WaitForSlotEvent, cryptoki_not_initialised, L_NONE, CKR_CRYPTOKI_NOT_INITIALIZED,          \
      P->C_WaitForSlotEvent(CKF_DONT_BLOCK, &c->slot, NULL))                                       \
    /* --- general purpose and slots --- */                                                        \
    X(C_GetFunctionList, null_list, L_NONE, CKR_ARGUMENTS_BAD, P->C_GetFunctionList(NULL))         \
    X(C_Initialize, already_initialised, L_INIT, CKR_CRYPTOKI_ALREADY_INITIALIZED,                 \
      P->C_Initialize(NULL))                                                                       \
    X(C_Initialize, reserved_not_null, L_NONE, CKR_ARGUMENTS_BAD, P->C_Initialize(&reserved_args)) \
    X(C_Initialize, some_mutex_functions, L_NONE, CKR_ARGUMENTS_BAD,                               \
      P->C_Initialize(&half_mutex_args))                                                           \
    X(C_Finalize, reserved_not_null, L_INIT, CKR_ARGUMENTS_BAD, P->C_Finalize(BUF))                \
    X(C_GetInfo, null_info, L_INIT, CKR_ARGUMENTS_BAD, P->C_GetInfo(NULL))                         \
    X(C_GetSlotList, null_count, L_INIT, CKR_ARGUMENTS_BAD, P->C_GetSlotList(CK_TRUE, NULL, NULL)) \
    X(C_GetSlotList, too_small, L_INIT, CKR_BUFFER_TOO_SMALL, small_slot_list(c))                  \
    X(C_GetSlotInfo, bad_slot, L_INIT, CKR_SLOT_ID_INVALID,                                        \
      P->C_GetSlotInfo(BAD_SLOT, (CK_SLOT_INFO *)BUF))                                             \
    X(C_GetSlotInfo, null_info, L_INIT, CKR_ARGUMENTS_BAD, P->C_GetSlotInfo(c->slot, NULL))        \
    X(C_GetTokenInfo, bad_slot, L_INIT, CKR_SLOT_ID_INVALID,                                       \
      P->C_GetTokenInfo(BAD_SLOT, (CK_TOKEN_INFO *)BUF))                                           \
    X(C_GetTokenInfo, null_info, L_INIT, CKR_ARGUMENTS_BAD, P->C_GetTokenInfo(c->slot, NULL))      \
    X(C_GetMechanismList, bad_slot, L_INIT, CKR_SLOT_ID_INVALID,                                   \
      P->C_GetMechanismList(BAD_SLOT, NULL, LEN))                                                  \
    X(C_GetMechanismList, null_count, L_INIT, CKR_ARGUMENTS_BAD,                                   \
      P->C_GetMechanismList(c->slot, NULL, NULL))                                                  \
    X(C_GetMechanismList, too_small, L_INIT, CKR_BUFFER_TOO_SMALL, small_mech_list(c))             \
    X(C_GetMechanismInfo, bad_slot, L_INIT, CKR_SLOT_ID_INVALID,                                   \
      P->C_GetMechanismInfo(BAD_SLOT, CKM_SHA256, (CK_MECHANISM_INFO *)BUF))                       \
    X(C_GetMechanismInfo, null_info, L_INIT, CKR_ARGUMENTS_BAD,                                    \
      P->C_GetMechanismInfo(c->slot, CKM_SHA256, NULL))                                            \
    X(C_GetMechanismInfo, bad_mechanism, L_INIT, CKR_MECHANISM_INVALID,                            \
      P->C_GetMechanismInfo(c->slot, m_bogus.mechanism, (CK_MECHANISM_INFO *)BUF))                 \
    X(C_WaitForSlotEvent, null_slot, L_INIT, CKR_ARGUMENTS_BAD,                                    \
      P->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL))                                           \
    X(C_WaitForSlotEvent, reserved_not_null, L_INIT, CKR_ARGUMENTS_BAD,                            \
      P->C_WaitForSlotEvent(CKF_DONT_BLOCK, &c->slot, BUF))                                        \
    X(C_WaitForSlotEvent, no_event, L_INIT, CKR_NO_EVENT,                                          \
      P->C_WaitForSlotEvent(CKF_DONT_BLOCK, &c->slot, NULL))                                       \
    /* --- token and PINs --- */                                                                   \
    X(C_InitToken, bad_slot, L_INIT, CKR_SLOT_ID_INVALID,                                          \
      P->C_InitToken(BAD_SLOT, (CK_UTF8CHAR *)"12345678", 8, BUF))                                 \
    X(C_InitToken, unsupported_null_label, L_INIT, CKR_FUNCTION_NOT_SUPPORTED,                     \
      P->C_InitToken(c->slot, (CK_UTF8CHAR *)"12345678", 8, NULL))                                 \
    X(C_InitToken, unsupported_session_open, L_RO, CKR_FUNCTION_NOT_SUPPORTED,                     \
      P->C_InitToken(c->slot, (CK_UTF8CHAR *)"12345678", 8, BUF))                                  \
    X(C_InitPIN, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                                    \
      P->C_InitPIN(BAD_SESS, (CK_UTF8CHAR *)"1234", 4))                                            \
    X(C_InitPIN, not_logged_in, L_RW, CKR_USER_NOT_LOGGED_IN,                                      \
      P->C_InitPIN(S, (CK_UTF8CHAR *)"1234", 4))                                                   \
    X(C_InitPIN, user_not_so, L_USER, CKR_USER_NOT_LOGGED_IN,                                      \
      P->C_InitPIN(S, (CK_UTF8CHAR *)"1234", 4))                                                   \
    X(C_SetPIN, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                                     \
      P->C_SetPIN(BAD_SESS, (CK_UTF8CHAR *)"a", 1, (CK_UTF8CHAR *)"b", 1))                         \
    X(C_SetPIN, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                                       \
      P->C_SetPIN(S, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN), (CK_UTF8CHAR *)"new-pin-9", 9))    \
    X(C_SetPIN, null_old_pin, L_USER, CKR_ARGUMENTS_BAD,                                           \
      P->C_SetPIN(S, NULL, 4, (CK_UTF8CHAR *)"new-pin-9", 9))                                      \
    X(C_SetPIN, null_new_pin, L_USER, CKR_ARGUMENTS_BAD,                                           \
      P->C_SetPIN(S, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN), NULL, 9))                          \
    /* --- sessions --- */                                                                         \
    X(C_OpenSession, bad_slot, L_INIT, CKR_SLOT_ID_INVALID,                                        \
      P->C_OpenSession(BAD_SLOT, CKF_SERIAL_SESSION, NULL, NULL, &c->s))                           \
    X(C_OpenSession, null_handle, L_INIT, CKR_ARGUMENTS_BAD,                                       \
      P->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL, NULL))                             \
    X(C_OpenSession, not_serial, L_INIT, CKR_SESSION_PARALLEL_NOT_SUPPORTED,                       \
      P->C_OpenSession(c->slot, CKF_RW_SESSION, NULL, NULL, &c->s))                                \
    X(C_CloseSession, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID, P->C_CloseSession(BAD_SESS))  \
    X(C_CloseSession, closed_session, L_INIT, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_CloseSession(closed(c)))                                                                \
    X(C_CloseSession, invalid_handle, L_RW, CKR_SESSION_HANDLE_INVALID,                            \
      P->C_CloseSession(CK_INVALID_HANDLE))                                                        \
    X(C_CloseAllSessions, bad_slot, L_RW, CKR_SLOT_ID_INVALID, P->C_CloseAllSessions(BAD_SLOT))    \
    X(C_GetSessionInfo, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                             \
      P->C_GetSessionInfo(BAD_SESS, (CK_SESSION_INFO *)BUF))                                       \
    X(C_GetSessionInfo, closed_session, L_INIT, CKR_SESSION_HANDLE_INVALID,                        \
      P->C_GetSessionInfo(closed(c), (CK_SESSION_INFO *)BUF))                                      \
    X(C_GetSessionInfo, null_info, L_RW, CKR_ARGUMENTS_BAD, P->C_GetSessionInfo(S, NULL))          \
    X(C_GetOperationState, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_GetOperationState(BAD_SESS, NULL, LEN))                                                 \
    X(C_GetOperationState, unsupported, L_RW, CKR_FUNCTION_NOT_SUPPORTED,                          \
      P->C_GetOperationState(S, BUF, NULL))                                                        \
    X(C_SetOperationState, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_SetOperationState(BAD_SESS, BUF, 4, 0, 0))                                              \
    X(C_SetOperationState, unsupported, L_RW, CKR_FUNCTION_NOT_SUPPORTED,                          \
      P->C_SetOperationState(S, NULL, 4, 0, 0))                                                    \
    X(C_GetFunctionStatus, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_GetFunctionStatus(BAD_SESS))                                                            \
    X(C_GetFunctionStatus, legacy, L_RW, CKR_FUNCTION_NOT_PARALLEL, P->C_GetFunctionStatus(S))     \
    X(C_CancelFunction, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                             \
      P->C_CancelFunction(BAD_SESS))                                                               \
    X(C_CancelFunction, legacy, L_RW, CKR_FUNCTION_NOT_PARALLEL, P->C_CancelFunction(S))           \
    /* --- login --- */                                                                            \
    X(C_Login, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                                      \
      P->C_Login(BAD_SESS, CKU_USER, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))                   \
    X(C_Login, bad_user_type, L_RW, CKR_USER_TYPE_INVALID,                                         \
      P->C_Login(S, 77, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))                                \
    X(C_Login, null_pin, L_RW, CKR_ARGUMENTS_BAD, P->C_Login(S, CKU_USER, NULL, 4))                \
    X(C_Login, null_pin_no_length, L_RW, CKR_ARGUMENTS_BAD, P->C_Login(S, CKU_USER, NULL, 0))      \
    X(C_SetPIN, null_old_pin_no_length, L_USER, CKR_ARGUMENTS_BAD,                                 \
      P->C_SetPIN(S, NULL, 0, (CK_UTF8CHAR *)"new-pin-9", 9))                                      \
    X(C_Login, already_logged_in, L_USER, CKR_USER_ALREADY_LOGGED_IN,                              \
      P->C_Login(S, CKU_USER, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))                          \
    X(C_Login, so_while_user, L_USER, CKR_USER_ANOTHER_ALREADY_LOGGED_IN,                          \
      P->C_Login(S, CKU_SO, (CK_UTF8CHAR *)"12345678", 8))                                         \
    X(C_Login, so_with_read_only_session, L_RO, CKR_SESSION_READ_ONLY_EXISTS,                      \
      P->C_Login(S, CKU_SO, (CK_UTF8CHAR *)"12345678", 8))                                         \
    X(C_Logout, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID, P->C_Logout(BAD_SESS))            \
    X(C_Logout, not_logged_in, L_RW, CKR_USER_NOT_LOGGED_IN, P->C_Logout(S))                       \
    /* --- objects --- */                                                                          \
    X(C_CreateObject, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                             \
      P->C_CreateObject(BAD_SESS, t_data, 2, &c->len))                                             \
    X(C_CreateObject, null_template, L_USER, CKR_ARGUMENTS_BAD,                                    \
      P->C_CreateObject(S, NULL, 2, &c->len))                                                      \
    X(C_CreateObject, null_handle, L_USER, CKR_ARGUMENTS_BAD,                                      \
      P->C_CreateObject(S, t_data, 2, NULL))                                                       \
    X(C_CreateObject, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                                 \
      P->C_CreateObject(S, t_data, 2, &c->len))                                                    \
    X(C_CreateObject, private_not_logged_in, L_RW, CKR_USER_NOT_LOGGED_IN,                         \
      P->C_CreateObject(S, t_private_data, 3, &c->len))                                            \
    X(C_CopyObject, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                               \
      P->C_CopyObject(BAD_SESS, c->ec_pub, NULL, 0, &c->len))                                      \
    X(C_CopyObject, bad_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                                 \
      P->C_CopyObject(S, BAD_OBJ, NULL, 0, &c->len))                                               \
    X(C_CopyObject, null_handle, L_USER, CKR_ARGUMENTS_BAD,                                        \
      P->C_CopyObject(S, c->ec_pub, NULL, 0, NULL))                                                \
    X(C_CopyObject, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                                   \
      P->C_CopyObject(S, c->ec_pub, t_token, 1, &c->len))                                          \
    X(C_DestroyObject, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                            \
      P->C_DestroyObject(BAD_SESS, c->ec_pub))                                                     \
    X(C_DestroyObject, bad_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                              \
      P->C_DestroyObject(S, BAD_OBJ))                                                              \
    X(C_DestroyObject, invalid_handle, L_USER, CKR_OBJECT_HANDLE_INVALID,                          \
      P->C_DestroyObject(S, NO_HANDLE))                                                            \
    X(C_DestroyObject, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                                \
      P->C_DestroyObject(S, c->ec_pub))                                                            \
    X(C_GetObjectSize, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                            \
      P->C_GetObjectSize(BAD_SESS, c->ec_pub, LEN))                                                \
    X(C_GetObjectSize, bad_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                              \
      P->C_GetObjectSize(S, BAD_OBJ, LEN))                                                         \
    X(C_GetObjectSize, null_size, L_USER, CKR_ARGUMENTS_BAD,                                       \
      P->C_GetObjectSize(S, c->ec_pub, NULL))                                                      \
    X(C_GetAttributeValue, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                        \
      P->C_GetAttributeValue(BAD_SESS, c->ec_pub, t_label, 1))                                     \
    X(C_GetAttributeValue, bad_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                          \
      P->C_GetAttributeValue(S, BAD_OBJ, t_label, 1))                                              \
    X(C_GetAttributeValue, invalid_handle, L_USER, CKR_OBJECT_HANDLE_INVALID,                      \
      P->C_GetAttributeValue(S, NO_HANDLE, t_label, 1))                                            \
    X(C_GetAttributeValue, null_template, L_USER, CKR_ARGUMENTS_BAD,                               \
      P->C_GetAttributeValue(S, c->ec_pub, NULL, 1))                                               \
    X(C_GetAttributeValue, too_small, L_USER, CKR_BUFFER_TOO_SMALL, small_label(c))                \
    X(C_GetAttributeValue, sensitive, L_USER, CKR_ATTRIBUTE_SENSITIVE, sensitive_value(c))         \
    X(C_GetAttributeValue, invalid_type, L_USER, CKR_ATTRIBUTE_TYPE_INVALID, invalid_type(c))      \
    X(C_SetAttributeValue, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                        \
      P->C_SetAttributeValue(BAD_SESS, c->ec_pub, t_label, 1))                                     \
    X(C_SetAttributeValue, bad_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                          \
      P->C_SetAttributeValue(S, BAD_OBJ, t_label, 1))                                              \
    X(C_SetAttributeValue, null_template, L_USER, CKR_ARGUMENTS_BAD,                               \
      P->C_SetAttributeValue(S, c->ec_pub, NULL, 1))                                               \
    X(C_SetAttributeValue, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                            \
      P->C_SetAttributeValue(S, c->ec_pub, t_label, 1))                                            \
    /* --- searches --- */                                                                         \
    X(C_FindObjectsInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_FindObjectsInit(BAD_SESS, NULL, 0))                                                     \
    X(C_FindObjectsInit, null_template, L_USER, CKR_ARGUMENTS_BAD,                                 \
      P->C_FindObjectsInit(S, NULL, 1))                                                            \
    X(C_FindObjectsInit, active, L_FIND, CKR_OPERATION_ACTIVE, P->C_FindObjectsInit(S, NULL, 0))   \
    X(C_FindObjects, bad_session, L_FIND, CKR_SESSION_HANDLE_INVALID,                              \
      P->C_FindObjects(BAD_SESS, &c->ec_priv, 1, LEN))                                             \
    X(C_FindObjects, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                          \
      P->C_FindObjects(S, &c->ec_priv, 1, LEN))                                                    \
    X(C_FindObjects, null_objects, L_FIND, CKR_ARGUMENTS_BAD, P->C_FindObjects(S, NULL, 1, LEN))   \
    X(C_FindObjects, null_count, L_FIND, CKR_ARGUMENTS_BAD,                                        \
      P->C_FindObjects(S, &c->ec_priv, 1, NULL))                                                   \
    X(C_FindObjectsFinal, bad_session, L_FIND, CKR_SESSION_HANDLE_INVALID,                         \
      P->C_FindObjectsFinal(BAD_SESS))                                                             \
    X(C_FindObjectsFinal, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                     \
      P->C_FindObjectsFinal(S))                                                                    \
    /* --- encryption --- */                                                                       \
    X(C_EncryptInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                              \
      P->C_EncryptInit(BAD_SESS, &m_rsa, c->rsa_pub))                                              \
    X(C_EncryptInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                    \
      P->C_EncryptInit(S, NULL, c->rsa_pub))                                                       \
    X(C_EncryptInit, bad_key, L_USER, CKR_KEY_HANDLE_INVALID,                                      \
      P->C_EncryptInit(S, &m_rsa, BAD_OBJ))                                                        \
    X(C_EncryptInit, invalid_key, L_USER, CKR_KEY_HANDLE_INVALID,                                  \
      P->C_EncryptInit(S, &m_rsa, NO_HANDLE))                                                      \
    X(C_EncryptInit, bad_mechanism, L_USER, CKR_MECHANISM_INVALID,                                 \
      P->C_EncryptInit(S, &m_bogus, c->rsa_pub))                                                   \
    X(C_EncryptInit, active, L_ENCRYPT, CKR_OPERATION_ACTIVE,                                      \
      P->C_EncryptInit(S, &m_rsa, c->rsa_pub))                                                     \
    X(C_Encrypt, bad_session, L_ENCRYPT, CKR_SESSION_HANDLE_INVALID,                               \
      P->C_Encrypt(BAD_SESS, DATA, 4, BUF, LEN))                                                   \
    X(C_Encrypt, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                              \
      P->C_Encrypt(S, DATA, 4, BUF, LEN))                                                          \
    X(C_Encrypt, null_len, L_ENCRYPT, CKR_ARGUMENTS_BAD, P->C_Encrypt(S, DATA, 4, BUF, NULL))      \
    X(C_Encrypt, null_data, L_ENCRYPT, CKR_ARGUMENTS_BAD, P->C_Encrypt(S, NULL, 4, BUF, LEN))      \
    X(C_Encrypt, too_small, L_ENCRYPT, CKR_BUFFER_TOO_SMALL,                                       \
      small_out(c, P->C_Encrypt(S, DATA, 4, fill(c, 10)->buf, LEN), 256, "C_Encrypt"))             \
    X(C_EncryptUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                        \
      P->C_EncryptUpdate(S, DATA, 4, BUF, LEN))                                                    \
    X(C_EncryptFinal, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                         \
      P->C_EncryptFinal(S, BUF, LEN))                                                              \
    /* --- decryption --- */                                                                       \
    X(C_DecryptInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                              \
      P->C_DecryptInit(BAD_SESS, &m_rsa, c->rsa_priv))                                             \
    X(C_DecryptInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                    \
      P->C_DecryptInit(S, NULL, c->rsa_priv))                                                      \
    X(C_DecryptInit, bad_key, L_USER, CKR_KEY_HANDLE_INVALID,                                      \
      P->C_DecryptInit(S, &m_rsa, BAD_OBJ))                                                        \
    X(C_DecryptInit, active, L_DECRYPT, CKR_OPERATION_ACTIVE,                                      \
      P->C_DecryptInit(S, &m_rsa, c->rsa_priv))                                                    \
    X(C_Decrypt, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                              \
      P->C_Decrypt(S, BUF, 256, DATA, LEN))                                                        \
    X(C_Decrypt, null_len, L_DECRYPT, CKR_ARGUMENTS_BAD, P->C_Decrypt(S, BUF, 256, DATA, NULL))    \
    X(C_DecryptUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                        \
      P->C_DecryptUpdate(S, BUF, 16, DATA, LEN))                                                   \
    X(C_DecryptFinal, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                         \
      P->C_DecryptFinal(S, BUF, LEN))                                                              \
    /* --- digests --- */                                                                          \
    X(C_DigestInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                               \
      P->C_DigestInit(BAD_SESS, &m_sha256))                                                        \
    X(C_DigestInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD, P->C_DigestInit(S, NULL))           \
    X(C_DigestInit, bad_mechanism, L_USER, CKR_MECHANISM_INVALID, P->C_DigestInit(S, &m_bogus))    \
    X(C_DigestInit, active, L_DIGEST, CKR_OPERATION_ACTIVE, P->C_DigestInit(S, &m_sha256))         \
    X(C_Digest, bad_session, L_DIGEST, CKR_SESSION_HANDLE_INVALID,                                 \
      P->C_Digest(BAD_SESS, DATA, 4, BUF, LEN))                                                    \
    X(C_Digest, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                               \
      P->C_Digest(S, DATA, 4, BUF, LEN))                                                           \
    X(C_Digest, null_len, L_DIGEST, CKR_ARGUMENTS_BAD, P->C_Digest(S, DATA, 4, BUF, NULL))         \
    X(C_Digest, too_small, L_DIGEST, CKR_BUFFER_TOO_SMALL,                                         \
      small_out(c, P->C_Digest(S, DATA, 4, fill(c, 10)->buf, LEN), 32, "C_Digest"))                \
    X(C_DigestUpdate, bad_session, L_DIGEST, CKR_SESSION_HANDLE_INVALID,                           \
      P->C_DigestUpdate(BAD_SESS, DATA, 4))                                                        \
    X(C_DigestUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                         \
      P->C_DigestUpdate(S, DATA, 4))                                                               \
    X(C_DigestUpdate, null_part, L_DIGEST, CKR_ARGUMENTS_BAD, P->C_DigestUpdate(S, NULL, 4))       \
    X(C_DigestKey, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                            \
      P->C_DigestKey(S, c->ec_priv))                                                               \
    X(C_DigestKey, bad_key, L_DIGEST, CKR_KEY_HANDLE_INVALID, P->C_DigestKey(S, BAD_OBJ))          \
    X(C_DigestFinal, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                          \
      P->C_DigestFinal(S, BUF, LEN))                                                               \
    X(C_DigestFinal, null_len, L_DIGEST, CKR_ARGUMENTS_BAD, P->C_DigestFinal(S, BUF, NULL))        \
    X(C_DigestFinal, too_small, L_DIGEST, CKR_BUFFER_TOO_SMALL,                                    \
      small_out(c, P->C_DigestFinal(S, fill(c, 31)->buf, LEN), 32, "C_DigestFinal"))               \
    /* --- signatures --- */                                                                       \
    X(C_SignInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                                 \
      P->C_SignInit(BAD_SESS, &m_ecdsa, c->ec_priv))                                               \
    X(C_SignInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD, P->C_SignInit(S, NULL, c->ec_priv))   \
    X(C_SignInit, bad_key, L_USER, CKR_KEY_HANDLE_INVALID, P->C_SignInit(S, &m_ecdsa, BAD_OBJ))    \
    X(C_SignInit, invalid_key, L_USER, CKR_KEY_HANDLE_INVALID,                                     \
      P->C_SignInit(S, &m_ecdsa, NO_HANDLE))                                                       \
    X(C_SignInit, bad_mechanism, L_USER, CKR_MECHANISM_INVALID,                                    \
      P->C_SignInit(S, &m_bogus, c->ec_priv))                                                      \
    X(C_SignInit, active, L_SIGN, CKR_OPERATION_ACTIVE, P->C_SignInit(S, &m_ecdsa, c->ec_priv))    \
    X(C_Sign, bad_session, L_SIGN, CKR_SESSION_HANDLE_INVALID,                                     \
      P->C_Sign(BAD_SESS, DATA, 32, BUF, LEN))                                                     \
    X(C_Sign, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                                 \
      P->C_Sign(S, DATA, 32, BUF, LEN))                                                            \
    X(C_Sign, null_len, L_SIGN, CKR_ARGUMENTS_BAD, P->C_Sign(S, DATA, 32, BUF, NULL))              \
    X(C_Sign, null_data, L_SIGN, CKR_ARGUMENTS_BAD, P->C_Sign(S, NULL, 32, BUF, LEN))              \
    X(C_Sign, too_small, L_SIGN, CKR_BUFFER_TOO_SMALL,                                             \
      small_out(c, P->C_Sign(S, DATA, 32, fill(c, 10)->buf, LEN), 64, "C_Sign"))                   \
    X(C_SignUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                           \
      P->C_SignUpdate(S, DATA, 4))                                                                 \
    X(C_SignFinal, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                            \
      P->C_SignFinal(S, BUF, LEN))                                                                 \
    X(C_SignFinal, null_len, L_SIGN, CKR_ARGUMENTS_BAD, P->C_SignFinal(S, BUF, NULL))              \
    X(C_SignRecoverInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_SignRecoverInit(BAD_SESS, &m_rsa, c->rsa_priv))                                         \
    X(C_SignRecoverInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                \
      P->C_SignRecoverInit(S, NULL, c->rsa_priv))                                                  \
    X(C_SignRecoverInit, bad_key, L_USER, CKR_KEY_HANDLE_INVALID,                                  \
      P->C_SignRecoverInit(S, &m_rsa, BAD_OBJ))                                                    \
    X(C_SignRecover, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                          \
      P->C_SignRecover(S, DATA, 4, BUF, LEN))                                                      \
    /* --- verification --- */                                                                     \
    X(C_VerifyInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                               \
      P->C_VerifyInit(BAD_SESS, &m_ecdsa, c->ec_pub))                                              \
    X(C_VerifyInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                     \
      P->C_VerifyInit(S, NULL, c->ec_pub))                                                         \
    X(C_VerifyInit, bad_key, L_USER, CKR_KEY_HANDLE_INVALID,                                       \
      P->C_VerifyInit(S, &m_ecdsa, BAD_OBJ))                                                       \
    X(C_VerifyInit, active, L_VERIFY, CKR_OPERATION_ACTIVE,                                        \
      P->C_VerifyInit(S, &m_ecdsa, c->ec_pub))                                                     \
    X(C_Verify, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                               \
      P->C_Verify(S, DATA, 32, BUF, 64))                                                           \
    X(C_Verify, null_signature, L_VERIFY, CKR_ARGUMENTS_BAD, P->C_Verify(S, DATA, 32, NULL, 64))   \
    X(C_VerifyUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                         \
      P->C_VerifyUpdate(S, DATA, 4))                                                               \
    X(C_VerifyFinal, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                          \
      P->C_VerifyFinal(S, BUF, 64))                                                                \
    X(C_VerifyRecoverInit, bad_key, L_USER, CKR_KEY_HANDLE_INVALID,                                \
      P->C_VerifyRecoverInit(S, &m_rsa, BAD_OBJ))                                                  \
    X(C_VerifyRecover, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                        \
      P->C_VerifyRecover(S, BUF, 256, DATA, LEN))                                                  \
    /* --- dual-function updates --- */                                                            \
    X(C_DigestEncryptUpdate, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                      \
      P->C_DigestEncryptUpdate(BAD_SESS, DATA, 4, BUF, LEN))                                       \
    X(C_DigestEncryptUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                  \
      P->C_DigestEncryptUpdate(S, DATA, 4, BUF, LEN))                                              \
    X(C_DecryptDigestUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                  \
      P->C_DecryptDigestUpdate(S, DATA, 4, BUF, LEN))                                              \
    X(C_SignEncryptUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                    \
      P->C_SignEncryptUpdate(S, DATA, 4, BUF, LEN))                                                \
    X(C_DecryptVerifyUpdate, no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,                  \
      P->C_DecryptVerifyUpdate(S, DATA, 4, BUF, LEN))                                              \
    /* --- keys --- */                                                                             \
    X(C_GenerateKey, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                              \
      P->C_GenerateKey(BAD_SESS, &m_aes_gen, NULL, 0, &c->len))                                    \
    X(C_GenerateKey, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                    \
      P->C_GenerateKey(S, NULL, NULL, 0, &c->len))                                                 \
    X(C_GenerateKey, null_handle, L_USER, CKR_ARGUMENTS_BAD,                                       \
      P->C_GenerateKey(S, &m_aes_gen, NULL, 0, NULL))                                              \
    X(C_GenerateKey, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                                  \
      P->C_GenerateKey(S, &m_aes_gen, t_token, 1, &c->len))                                        \
    X(C_GenerateKeyPair, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_GenerateKeyPair(BAD_SESS, &m_ec_gen, NULL, 0, NULL, 0, &c->ec_pub, &c->ec_priv))        \
    X(C_GenerateKeyPair, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                \
      P->C_GenerateKeyPair(S, NULL, NULL, 0, NULL, 0, &c->len, &c->len))                           \
    X(C_GenerateKeyPair, null_public_handle, L_USER, CKR_ARGUMENTS_BAD,                            \
      P->C_GenerateKeyPair(S, &m_ec_gen, NULL, 0, NULL, 0, NULL, &c->len))                         \
    X(C_GenerateKeyPair, null_private_handle, L_USER, CKR_ARGUMENTS_BAD,                           \
      P->C_GenerateKeyPair(S, &m_ec_gen, NULL, 0, NULL, 0, &c->len, NULL))                         \
    X(C_GenerateKeyPair, read_only, L_USER_RO, CKR_SESSION_READ_ONLY,                              \
      P->C_GenerateKeyPair(S, &m_ec_gen, t_token, 1, t_token, 1, &c->len, &c->len))                \
    X(C_WrapKey, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                                  \
      P->C_WrapKey(BAD_SESS, &m_rsa, c->rsa_pub, c->ec_priv, BUF, LEN))                            \
    X(C_WrapKey, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                        \
      P->C_WrapKey(S, NULL, c->rsa_pub, c->ec_priv, BUF, LEN))                                     \
    X(C_WrapKey, bad_wrapping_key, L_USER, CKR_WRAPPING_KEY_HANDLE_INVALID,                        \
      P->C_WrapKey(S, &m_rsa, BAD_OBJ, c->ec_priv, BUF, LEN))                                      \
    X(C_WrapKey, bad_key, L_USER, CKR_KEY_HANDLE_INVALID,                                          \
      P->C_WrapKey(S, &m_rsa, c->rsa_pub, BAD_OBJ, BUF, LEN))                                      \
    X(C_WrapKey, null_len, L_USER, CKR_ARGUMENTS_BAD,                                              \
      P->C_WrapKey(S, &m_rsa, c->rsa_pub, c->ec_priv, BUF, NULL))                                  \
    X(C_UnwrapKey, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                                \
      P->C_UnwrapKey(BAD_SESS, &m_rsa, c->rsa_priv, BUF, 256, NULL, 0, &c->len))                   \
    X(C_UnwrapKey, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                      \
      P->C_UnwrapKey(S, NULL, c->rsa_priv, BUF, 256, NULL, 0, &c->len))                            \
    X(C_UnwrapKey, bad_unwrapping_key, L_USER, CKR_UNWRAPPING_KEY_HANDLE_INVALID,                  \
      P->C_UnwrapKey(S, &m_rsa, BAD_OBJ, BUF, 256, NULL, 0, &c->len))                              \
    X(C_UnwrapKey, null_wrapped, L_USER, CKR_ARGUMENTS_BAD,                                        \
      P->C_UnwrapKey(S, &m_rsa, c->rsa_priv, NULL, 256, NULL, 0, &c->len))                         \
    X(C_UnwrapKey, null_handle, L_USER, CKR_ARGUMENTS_BAD,                                         \
      P->C_UnwrapKey(S, &m_rsa, c->rsa_priv, BUF, 256, NULL, 0, NULL))                             \
    X(C_DeriveKey, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                                \
      P->C_DeriveKey(BAD_SESS, &m_ecdh, c->ec_priv, NULL, 0, &c->len))                             \
    X(C_DeriveKey, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                                      \
      P->C_DeriveKey(S, NULL, c->ec_priv, NULL, 0, &c->len))                                       \
    X(C_DeriveKey, bad_base_key, L_USER, CKR_KEY_HANDLE_INVALID,                                   \
      P->C_DeriveKey(S, &m_ecdh, BAD_OBJ, NULL, 0, &c->len))                                       \
    /* --- more states, handles and buffers --- */                                                 \
    X(C_GetMechanismList, zero_count, L_INIT, CKR_BUFFER_TOO_SMALL, zero_mech_list(c))             \
    X(C_Login, context_specific_no_operation, L_USER, CKR_OPERATION_NOT_INITIALIZED,               \
      P->C_Login(S, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))              \
    X(C_Login, context_specific_not_logged_in, L_RW, CKR_OPERATION_NOT_INITIALIZED,                \
      P->C_Login(S, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))              \
    X(C_Login, closed_session, L_INIT, CKR_SESSION_HANDLE_INVALID,                                 \
      P->C_Login(closed(c), CKU_USER, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))                  \
    X(C_Logout, invalid_handle, L_USER, CKR_SESSION_HANDLE_INVALID,                                \
      P->C_Logout(CK_INVALID_HANDLE))                                                              \
    X(C_GetSessionInfo, after_close_all, L_INIT, CKR_SESSION_HANDLE_INVALID,                       \
      P->C_GetSessionInfo(all_closed(c), (CK_SESSION_INFO *)BUF))                                  \
    X(C_FindObjectsInit, closed_session, L_INIT, CKR_SESSION_HANDLE_INVALID,                       \
      P->C_FindObjectsInit(closed(c), NULL, 0))                                                    \
    X(C_FindObjectsInit, null_value, L_USER, CKR_ATTRIBUTE_VALUE_INVALID,                          \
      P->C_FindObjectsInit(S, t_null_value, 1))                                                    \
    X(C_GenerateRandom, closed_session, L_INIT, CKR_SESSION_HANDLE_INVALID,                        \
      P->C_GenerateRandom(closed(c), BUF, 4))                                                      \
    X(C_GetObjectSize, invalid_handle, L_USER, CKR_OBJECT_HANDLE_INVALID,                          \
      P->C_GetObjectSize(S, NO_HANDLE, LEN))                                                       \
    X(C_CopyObject, invalid_handle, L_USER, CKR_OBJECT_HANDLE_INVALID,                             \
      P->C_CopyObject(S, NO_HANDLE, NULL, 0, &c->len))                                             \
    X(C_GetAttributeValue, too_small_second, L_USER, CKR_BUFFER_TOO_SMALL, small_second(c))        \
    X(C_SetAttributeValue, invalid_type, L_USER, CKR_ATTRIBUTE_TYPE_INVALID,                       \
      P->C_SetAttributeValue(S, c->ec_pub, t_bad_type, 1))                                         \
    X(C_SetAttributeValue, class_read_only, L_USER, CKR_ATTRIBUTE_READ_ONLY,                       \
      P->C_SetAttributeValue(S, c->ec_pub, t_class, 1))                                            \
    X(C_CreateObject, no_class, L_USER, CKR_TEMPLATE_INCOMPLETE,                                   \
      P->C_CreateObject(S, t_token, 1, &c->len))                                                   \
    X(C_GenerateKey, no_value_len, L_USER, CKR_TEMPLATE_INCOMPLETE,                                \
      P->C_GenerateKey(S, &m_aes_gen, NULL, 0, &c->len))                                           \
    X(C_GenerateKeyPair, no_ec_params, L_USER, CKR_TEMPLATE_INCOMPLETE,                            \
      P->C_GenerateKeyPair(S, &m_ec_gen, NULL, 0, NULL, 0, &c->len, &c->len))                      \
    X(C_EncryptInit, key_type_inconsistent, L_USER, CKR_KEY_TYPE_INCONSISTENT,                     \
      P->C_EncryptInit(S, &m_rsa, c->ec_pub))                                                      \
    X(C_DigestInit, sign_active, L_SIGN, CKR_OPERATION_ACTIVE, P->C_DigestInit(S, &m_sha256))      \
    X(C_VerifyInit, sign_active, L_SIGN, CKR_OPERATION_ACTIVE,                                     \
      P->C_VerifyInit(S, &m_ecdsa, c->ec_pub))                                                     \
    X(C_SignInit, decrypt_active, L_DECRYPT, CKR_OPERATION_ACTIVE,                                 \
      P->C_SignInit(S, &m_ecdsa, c->ec_priv))                                                      \
    X(C_SignUpdate, null_part, L_SIGN, CKR_ARGUMENTS_BAD, P->C_SignUpdate(S, NULL, 4))             \
    X(C_VerifyUpdate, null_part, L_VERIFY, CKR_ARGUMENTS_BAD, P->C_VerifyUpdate(S, NULL, 4))       \
    X(C_VerifyFinal, null_signature, L_VERIFY, CKR_ARGUMENTS_BAD, P->C_VerifyFinal(S, NULL, 64))   \
    X(C_Verify, null_data, L_VERIFY, CKR_ARGUMENTS_BAD, P->C_Verify(S, NULL, 32, BUF, 64))         \
    X(C_EncryptUpdate, null_len, L_ENCRYPT, CKR_ARGUMENTS_BAD,                                     \
      P->C_EncryptUpdate(S, DATA, 4, BUF, NULL))                                                   \
    X(C_Decrypt, null_data, L_DECRYPT, CKR_ARGUMENTS_BAD, P->C_Decrypt(S, NULL, 256, DATA, LEN))   \
    X(C_DecryptFinal, null_len, L_DECRYPT, CKR_ARGUMENTS_BAD, P->C_DecryptFinal(S, BUF, NULL))     \
    X(C_Sign, too_small_keeps_operation, L_SIGN, CKR_OK, sign_after_small(c))                      \
    X(C_Digest, too_small_keeps_operation, L_DIGEST, CKR_OK, digest_after_small(c))                \
    X(C_Decrypt, too_small, L_DECRYPT, CKR_BUFFER_TOO_SMALL, small_decrypt(c))                     \
    X(C_Verify, signature_len_range, L_VERIFY, CKR_SIGNATURE_LEN_RANGE,                            \
      P->C_Verify(S, DATA, 32, BUF, 10))                                                           \
    X(C_Verify, signature_invalid, L_VERIFY, CKR_SIGNATURE_INVALID,                                \
      P->C_Verify(S, DATA, 32, BUF, 64))                                                           \
    X(C_DigestKey, indigestible, L_DIGEST, CKR_KEY_INDIGESTIBLE, P->C_DigestKey(S, c->rsa_priv))   \
    X(C_GetAttributeValue, private_after_logout, L_USER, CKR_OBJECT_HANDLE_INVALID,                \
      P->C_GetAttributeValue(S, logged_out(c, c->ec_priv), t_label, 1))                            \
    X(C_SignInit, private_key_after_logout, L_USER, CKR_KEY_HANDLE_INVALID,                        \
      P->C_SignInit(S, &m_ecdsa, logged_out(c, c->ec_priv)))                                       \
    X(C_CloseAllSessions, bad_slot_no_session, L_INIT, CKR_SLOT_ID_INVALID,                        \
      P->C_CloseAllSessions(BAD_SLOT))                                                             \
    X(C_SetPIN, new_pin_len_range, L_USER, CKR_PIN_LEN_RANGE,                                      \
      P->C_SetPIN(S, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN), (CK_UTF8CHAR *)"", 0))             \
    X(C_Login, already_logged_in_other_session, L_USER, CKR_USER_ALREADY_LOGGED_IN,                \
      P->C_Login(second(c), CKU_USER, (CK_UTF8CHAR *)WORK_PIN, strlen(WORK_PIN)))                  \
    X(C_Logout, twice, L_USER, CKR_USER_NOT_LOGGED_IN, P->C_Logout(logged_out(c, S)))              \
    X(C_FindObjects, after_final, L_FIND, CKR_OPERATION_NOT_INITIALIZED,                           \
      P->C_FindObjects(find_ended(c), &c->ec_priv, 1, LEN))                                        \
    X(C_GenerateKeyPair, not_logged_in, L_RW, CKR_USER_NOT_LOGGED_IN,                              \
      P->C_GenerateKeyPair(S, &m_ec_gen, t_ec_public, 2, t_private_token, 2, &c->len, &c->len))    \
    X(C_GetAttributeValue, other_view_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                   \
      P->C_GetAttributeValue(S, other_view(c, c->ec_pub), t_label, 1))                             \
    X(C_SignInit, other_view_key, L_USER, CKR_KEY_HANDLE_INVALID,                                  \
      P->C_SignInit(S, &m_ecdsa, other_view(c, c->ec_priv)))                                       \
    X(C_DestroyObject, other_view_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                       \
      P->C_DestroyObject(S, other_view(c, c->ec_pub)))                                             \
    /* --- every session function: an unknown session handle --- */                                \
    X(C_EncryptUpdate, bad_session, L_ENCRYPT, CKR_SESSION_HANDLE_INVALID,                         \
      P->C_EncryptUpdate(BAD_SESS, DATA, 4, BUF, LEN))                                             \
    X(C_EncryptFinal, bad_session, L_ENCRYPT, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_EncryptFinal(BAD_SESS, BUF, LEN))                                                       \
    X(C_Decrypt, bad_session, L_DECRYPT, CKR_SESSION_HANDLE_INVALID,                               \
      P->C_Decrypt(BAD_SESS, BUF, 256, DATA, LEN))                                                 \
    X(C_DecryptUpdate, bad_session, L_DECRYPT, CKR_SESSION_HANDLE_INVALID,                         \
      P->C_DecryptUpdate(BAD_SESS, BUF, 16, DATA, LEN))                                            \
    X(C_DecryptFinal, bad_session, L_DECRYPT, CKR_SESSION_HANDLE_INVALID,                          \
      P->C_DecryptFinal(BAD_SESS, BUF, LEN))                                                       \
    X(C_DigestKey, bad_session, L_DIGEST, CKR_SESSION_HANDLE_INVALID,                              \
      P->C_DigestKey(BAD_SESS, c->ec_priv))                                                        \
    X(C_DigestFinal, bad_session, L_DIGEST, CKR_SESSION_HANDLE_INVALID,                            \
      P->C_DigestFinal(BAD_SESS, BUF, LEN))                                                        \
    X(C_SignUpdate, bad_session, L_SIGN, CKR_SESSION_HANDLE_INVALID,                               \
      P->C_SignUpdate(BAD_SESS, DATA, 4))                                                          \
    X(C_SignFinal, bad_session, L_SIGN, CKR_SESSION_HANDLE_INVALID,                                \
      P->C_SignFinal(BAD_SESS, BUF, LEN))                                                          \
    X(C_SignRecover, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                              \
      P->C_SignRecover(BAD_SESS, DATA, 4, BUF, LEN))                                               \
    X(C_Verify, bad_session, L_VERIFY, CKR_SESSION_HANDLE_INVALID,                                 \
      P->C_Verify(BAD_SESS, DATA, 32, BUF, 64))                                                    \
    X(C_VerifyUpdate, bad_session, L_VERIFY, CKR_SESSION_HANDLE_INVALID,                           \
      P->C_VerifyUpdate(BAD_SESS, DATA, 4))                                                        \
    X(C_VerifyFinal, bad_session, L_VERIFY, CKR_SESSION_HANDLE_INVALID,                            \
      P->C_VerifyFinal(BAD_SESS, BUF, 64))                                                         \
    X(C_VerifyRecoverInit, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                        \
      P->C_VerifyRecoverInit(BAD_SESS, &m_rsa, c->rsa_pub))                                        \
    X(C_VerifyRecoverInit, null_mechanism, L_USER, CKR_ARGUMENTS_BAD,                              \
      P->C_VerifyRecoverInit(S, NULL, c->rsa_pub))                                                 \
    X(C_VerifyRecover, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                            \
      P->C_VerifyRecover(BAD_SESS, BUF, 256, DATA, LEN))                                           \
    X(C_DecryptDigestUpdate, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                      \
      P->C_DecryptDigestUpdate(BAD_SESS, DATA, 4, BUF, LEN))                                       \
    X(C_SignEncryptUpdate, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                        \
      P->C_SignEncryptUpdate(BAD_SESS, DATA, 4, BUF, LEN))                                         \
    X(C_DecryptVerifyUpdate, bad_session, L_USER, CKR_SESSION_HANDLE_INVALID,                      \
      P->C_DecryptVerifyUpdate(BAD_SESS, DATA, 4, BUF, LEN))                                       \
    /* --- the remaining NULL pointers --- */                                                      \
    X(C_EncryptUpdate, null_part, L_ENCRYPT, CKR_ARGUMENTS_BAD,                                    \
      P->C_EncryptUpdate(S, NULL, 4, BUF, LEN))                                                    \
    X(C_EncryptFinal, null_len, L_ENCRYPT, CKR_ARGUMENTS_BAD, P->C_EncryptFinal(S, BUF, NULL))     \
    X(C_DecryptUpdate, null_part, L_DECRYPT, CKR_ARGUMENTS_BAD,                                    \
      P->C_DecryptUpdate(S, NULL, 16, DATA, LEN))                                                  \
    X(C_DecryptUpdate, null_len, L_DECRYPT, CKR_ARGUMENTS_BAD,                                     \
      P->C_DecryptUpdate(S, BUF, 16, DATA, NULL))                                                  \
    X(C_CopyObject, null_template, L_USER, CKR_ARGUMENTS_BAD,                                      \
      P->C_CopyObject(S, c->ec_pub, NULL, 1, &c->len))                                             \
    X(C_GenerateKey, null_template, L_USER, CKR_ARGUMENTS_BAD,                                     \
      P->C_GenerateKey(S, &m_aes_gen, NULL, 1, &c->len))                                           \
    X(C_GenerateKeyPair, null_public_template, L_USER, CKR_ARGUMENTS_BAD,                          \
      P->C_GenerateKeyPair(S, &m_ec_gen, NULL, 1, t_token, 1, &c->len, &c->len))                   \
    X(C_GenerateKeyPair, null_private_template, L_USER, CKR_ARGUMENTS_BAD,                         \
      P->C_GenerateKeyPair(S, &m_ec_gen, t_ec_public, 2, NULL, 1, &c->len, &c->len))               \
    X(C_UnwrapKey, null_template, L_USER, CKR_ARGUMENTS_BAD,                                       \
      P->C_UnwrapKey(S, &m_rsa, c->rsa_priv, BUF, 256, NULL, 1, &c->len))                          \
    X(C_DeriveKey, null_template, L_USER, CKR_ARGUMENTS_BAD,                                       \
      P->C_DeriveKey(S, &m_ecdh, c->ec_priv, NULL, 1, &c->len))                                    \
    X(C_DeriveKey, null_handle, L_USER, CKR_ARGUMENTS_BAD,                                         \
      P->C_DeriveKey(S, &m_ecdh, c->ec_priv, t_token, 1, NULL))                                    \
    X(C_SetAttributeValue, null_value, L_USER, CKR_ATTRIBUTE_VALUE_INVALID,                        \
      P->C_SetAttributeValue(S, c->ec_pub, t_null_value, 1))                                       \
    X(C_CreateObject, null_value, L_USER, CKR_ATTRIBUTE_VALUE_INVALID,                             \
      P->C_CreateObject(S, t_null_value, 1, &c->len))                                              \
    /* --- the invalid-handle value (0) as key --- */                                              \
    X(C_VerifyInit, invalid_key, L_USER, CKR_KEY_HANDLE_INVALID,                                   \
      P->C_VerifyInit(S, &m_ecdsa, NO_HANDLE))                                                     \
    X(C_DecryptInit, invalid_key, L_USER, CKR_KEY_HANDLE_INVALID,                                  \
      P->C_DecryptInit(S, &m_rsa, NO_HANDLE))                                                      \
    X(C_DigestKey, invalid_key, L_DIGEST, CKR_KEY_HANDLE_INVALID, P->C_DigestKey(S, NO_HANDLE))    \
    X(C_WrapKey, invalid_wrapping_key, L_USER, CKR_WRAPPING_KEY_HANDLE_INVALID,                    \
      P->C_WrapKey(S, &m_rsa, NO_HANDLE, c->ec_priv, BUF, LEN))                                    \
    X(C_UnwrapKey, invalid_unwrapping_key, L_USER, CKR_UNWRAPPING_KEY_HANDLE_INVALID,              \
      P->C_UnwrapKey(S, &m_rsa, NO_HANDLE, BUF, 256, NULL, 0, &c->len))                            \
    X(C_DeriveKey, invalid_base_key, L_USER, CKR_KEY_HANDLE_INVALID,                               \
      P->C_DeriveKey(S, &m_ecdh, NO_HANDLE, NULL, 0, &c->len))                                     \
    X(C_GetAttributeValue, object_of_closed_session, L_USER, CKR_OBJECT_HANDLE_INVALID,            \
      P->C_GetAttributeValue(S, of_closed_session(c), t_label, 1))                                 \
    X(C_GetAttributeValue, destroyed_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                    \
      P->C_GetAttributeValue(S, destroyed(c), t_label, 1))                                         \
    X(C_DestroyObject, destroyed_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                        \
      P->C_DestroyObject(S, destroyed(c)))                                                         \
    X(C_GetObjectSize, object_of_closed_session, L_USER, CKR_OBJECT_HANDLE_INVALID,                \
      P->C_GetObjectSize(S, of_closed_session(c), LEN))                                            \
    X(C_SetAttributeValue, destroyed_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                    \
      P->C_SetAttributeValue(S, destroyed(c), t_label, 1))                                         \
    X(C_CopyObject, destroyed_object, L_USER, CKR_OBJECT_HANDLE_INVALID,                           \
      P->C_CopyObject(S, destroyed(c), NULL, 0, &c->len))                                          \
    /* --- random numbers --- */                                                                   \
    X(C_SeedRandom, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                                 \
      P->C_SeedRandom(BAD_SESS, DATA, 4))                                                          \
    X(C_SeedRandom, null_seed, L_RW, CKR_ARGUMENTS_BAD, P->C_SeedRandom(S, NULL, 4))               \
    X(C_GenerateRandom, bad_session, L_RW, CKR_SESSION_HANDLE_INVALID,                             \
      P->C_GenerateRandom(BAD_SESS, BUF, 4))                                                       \
    X(C_GenerateRandom, null_buffer, L_RW, CKR_ARGUMENTS_BAD, P->C_GenerateRandom(S, NULL, 4))

/* The table's rows, each with a small function for its call. */
#define DECLARE_CALL(fn, name, lvl, want, expr)                                                    \
    static CK_RV call_##fn##_##name(ctx *c)                                                        \
    {                                                                                              \
        return (expr);                                                                             \
    }
CONTRACT(DECLARE_CALL)

typedef struct {
    const char *fn;
    const char *name;
    level lvl;
    CK_RV want;
    CK_RV (*call)(ctx *c);
} row;

#define ROW(fn, name, lvl, want, expr) {#fn, #name, lvl, want, call_##fn##_##name},
static const row contract[] = {CONTRACT(ROW)};

/* The name of the CKR_* codes the table uses (and a few neighbours). */
static const char *rv_name(CK_RV rv)
{
    static char other[32];
#define NAME(code)                                                                                 \
    case code:                                                                                     \
        return #code
    switch (rv) {
        NAME(CKR_OK);
        NAME(CKR_HOST_MEMORY);
        NAME(CKR_SLOT_ID_INVALID);
        NAME(CKR_GENERAL_ERROR);
        NAME(CKR_FUNCTION_FAILED);
        NAME(CKR_ARGUMENTS_BAD);
        NAME(CKR_NO_EVENT);
        NAME(CKR_ATTRIBUTE_SENSITIVE);
        NAME(CKR_ATTRIBUTE_TYPE_INVALID);
        NAME(CKR_ATTRIBUTE_VALUE_INVALID);
        NAME(CKR_PIN_LEN_RANGE);
        NAME(CKR_PIN_LOCKED);
        NAME(CKR_SIGNATURE_INVALID);
        NAME(CKR_SIGNATURE_LEN_RANGE);
        NAME(CKR_KEY_INDIGESTIBLE);
        NAME(CKR_KEY_SIZE_RANGE);
        NAME(CKR_ATTRIBUTE_READ_ONLY);
        NAME(CKR_ACTION_PROHIBITED);
        NAME(CKR_DATA_LEN_RANGE);
        NAME(CKR_DEVICE_ERROR);
        NAME(CKR_ENCRYPTED_DATA_LEN_RANGE);
        NAME(CKR_FUNCTION_NOT_PARALLEL);
        NAME(CKR_FUNCTION_NOT_SUPPORTED);
        NAME(CKR_KEY_HANDLE_INVALID);
        NAME(CKR_KEY_TYPE_INCONSISTENT);
        NAME(CKR_KEY_FUNCTION_NOT_PERMITTED);
        NAME(CKR_MECHANISM_INVALID);
        NAME(CKR_MECHANISM_PARAM_INVALID);
        NAME(CKR_OBJECT_HANDLE_INVALID);
        NAME(CKR_OPERATION_ACTIVE);
        NAME(CKR_OPERATION_NOT_INITIALIZED);
        NAME(CKR_PIN_INCORRECT);
        NAME(CKR_SESSION_CLOSED);
        NAME(CKR_SESSION_EXISTS);
        NAME(CKR_SESSION_HANDLE_INVALID);
        NAME(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
        NAME(CKR_SESSION_READ_ONLY);
        NAME(CKR_SESSION_READ_ONLY_EXISTS);
        NAME(CKR_SESSION_READ_WRITE_SO_EXISTS);
        NAME(CKR_TEMPLATE_INCOMPLETE);
        NAME(CKR_TEMPLATE_INCONSISTENT);
        NAME(CKR_TOKEN_WRITE_PROTECTED);
        NAME(CKR_UNWRAPPING_KEY_HANDLE_INVALID);
        NAME(CKR_USER_ALREADY_LOGGED_IN);
        NAME(CKR_USER_NOT_LOGGED_IN);
        NAME(CKR_USER_TYPE_INVALID);
        NAME(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
        NAME(CKR_WRAPPING_KEY_HANDLE_INVALID);
        NAME(CKR_RANDOM_SEED_NOT_SUPPORTED);
        NAME(CKR_BUFFER_TOO_SMALL);
        NAME(CKR_STATE_UNSAVEABLE);
        NAME(CKR_CRYPTOKI_NOT_INITIALIZED);
        NAME(CKR_CRYPTOKI_ALREADY_INITIALIZED);
    default:
        snprintf(other, sizeof(other), "0x%lx", (unsigned long)rv);
        return other;
    }
#undef NAME
}

static CK_FUNCTION_LIST *module;

/* The world: stack_world.h's tokens and enrolment, plus the contract keys. */
static void contract_setup(void)
{
    stack_setup_bare();
    cr_assert_eq(world_keypair(&w, "personal", "1111", "EC:prime256v1", "c-ec", "21"), 0);
    cr_assert_eq(world_keypair(&w, "personal", "1111", "RSA:2048", "c-rsa", "22"), 0);
    module = load_module(world_strata_module());
}

TestSuite(contract, .init = contract_setup, .fini = stack_teardown, .timeout = 120);

/* The keys of the logged-in session c->s. */
static void find_keys(ctx *c)
{
    c->ec_priv = find_one(P, S, CKO_PRIVATE_KEY, "c-ec");
    c->ec_pub = find_one(P, S, CKO_PUBLIC_KEY, "c-ec");
    c->rsa_priv = find_one(P, S, CKO_PRIVATE_KEY, "c-rsa");
    c->rsa_pub = find_one(P, S, CKO_PUBLIC_KEY, "c-rsa");
    cr_assert_neq(c->ec_priv, CK_INVALID_HANDLE);
    cr_assert_neq(c->ec_pub, CK_INVALID_HANDLE);
    cr_assert_neq(c->rsa_priv, CK_INVALID_HANDLE);
    cr_assert_neq(c->rsa_pub, CK_INVALID_HANDLE);
}

/* Starts the operation a level names on the logged-in session. */
static void start_operation(ctx *c, level lvl)
{
    switch (lvl) {
    case L_FIND:
        cr_assert_eq(P->C_FindObjectsInit(S, NULL, 0), CKR_OK);
        break;
    case L_DIGEST:
        cr_assert_eq(P->C_DigestInit(S, &m_sha256), CKR_OK);
        break;
    case L_SIGN:
        cr_assert_eq(P->C_SignInit(S, &m_ecdsa, c->ec_priv), CKR_OK);
        break;
    case L_VERIFY:
        cr_assert_eq(P->C_VerifyInit(S, &m_ecdsa, c->ec_pub), CKR_OK);
        break;
    case L_ENCRYPT:
        cr_assert_eq(P->C_EncryptInit(S, &m_rsa, c->rsa_pub), CKR_OK);
        break;
    case L_DECRYPT:
        cr_assert_eq(P->C_DecryptInit(S, &m_rsa, c->rsa_priv), CKR_OK);
        break;
    default:
        break;
    }
}

/* Brings a fresh module to lvl. */
static void reach(ctx *c, level lvl)
{
    CK_FLAGS rw = lvl == L_RO || lvl == L_USER_RO ? 0 : CKF_RW_SESSION;
    CK_ULONG n = 1;

    memset(c, 0, sizeof(*c));
    c->p11 = module;
    memset(c->data, 0x5A, sizeof(c->data));
    c->slot = 1;
    c->s = 1;
    if (lvl == L_NONE) {
        return;
    }
    cr_assert_eq(P->C_Initialize(NULL), CKR_OK);
    cr_assert_eq(P->C_GetSlotList(CK_TRUE, &c->slot, &n), CKR_OK);
    if (lvl == L_INIT) {
        return;
    }
    cr_assert_eq(P->C_OpenSession(c->slot, CKF_SERIAL_SESSION | rw, NULL, NULL, &c->s), CKR_OK);
    if (lvl == L_RO || lvl == L_RW) {
        return;
    }
    cr_assert_eq(login(P, S, WORK_PIN), CKR_OK);
    find_keys(c);
    start_operation(c, lvl);
}

/* Every row of the table, each from a fresh C_Initialize; all rows run,
 * and each mismatch names its row. */
Test(contract, every_row)
{
    size_t failed = 0;
    ctx *c = calloc(1, sizeof(*c));

    cr_assert(c != NULL);
    for (size_t i = 0; i < sizeof(contract) / sizeof(contract[0]); i++) {
        const row *r = &contract[i];
        CK_RV rv;

        reach(c, r->lvl);
        rv = r->call(c);
        if (rv != r->want) {
            failed++;
        }
        cr_expect_eq(rv, r->want, "%s/%s (%s): %s, v2.40 gives %s", r->fn, r->name,
                     level_names[r->lvl], rv_name(rv), rv_name(r->want));
        module->C_Finalize(NULL);
    }
    cr_expect_eq(failed, 0, "%zu of %zu rows differ from v2.40", failed,
                 sizeof(contract) / sizeof(contract[0]));
    free(c);
}
