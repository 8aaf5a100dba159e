/*
 * ops.h - the operations floor: one file per family of PKCS#11 calls,
 * each a family function that entry.c forwards one C_* to. Each
 * validates its arguments (exact CKR_* of PKCS#11 v2.40), resolves the
 * session under its lock and does the work through the floors below
 * (view/view.h, which includes index/, backend/ and core/). Files of this
 * floor call each other where one family builds on another (keys.c on
 * object.c's object_make, session.c on login.c's logout); nothing below
 * calls up here (the login replay reaches the backend floor as the hook
 * it registers, backend/backend.h). Not installed, not included outside
 * engine/.
 *
 * Lock order (never reversed, core/core.h lists them all): session lock S
 * -> login lock L -> token lock K. No backend module is ever called while
 * the session table lock T is held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_OPS_H
#define STRATA_ENGINE_OPS_H

#include "engine.h"
#include "view/view.h"

/* ---------------------------------------------------------------------
 * init.c - C_Initialize/C_Finalize, C_GetInfo, fork detection
 * ------------------------------------------------------------------ */

/* CKR_OK when C_Initialize succeeded in this very process (a forked child
 * sees CKR_CRYPTOKI_NOT_INITIALIZED), else CKR_CRYPTOKI_NOT_INITIALIZED. */
CK_RV library_check(void);
CK_RV library_initialize(CK_VOID_PTR init_args);
CK_RV library_finalize(CK_VOID_PTR reserved);
CK_RV library_get_info(CK_INFO_PTR info);

/* ---------------------------------------------------------------------
 * loop.c - modules that lead back to Strata (C_Initialize only)
 * ------------------------------------------------------------------ */

/* CKR_OK, or CKR_GENERAL_ERROR (logged) when another Strata of this
 * process, or of the process that started this one, is loading its
 * modules right now: this instance was reached through one of them. */
CK_RV loop_nested_check(void);
/* Marks the environment while this instance loads its modules. */
void loop_marker_set(void);
void loop_marker_clear(void);
/* Takes one of the few slots of processes loading the modules of the
 * catalog at path (NULL: none to take), waiting a few seconds at most.
 * CKR_OK, or CKR_GENERAL_ERROR (logged: every slot stayed held, a loop
 * through another process). */
CK_RV loop_slot_take(const char *catalog);
void loop_slot_release(void);
/* The slots' loop mark now (0 without a slot), and whether it moved since
 * before: a Strata process of this catalog met a loop meanwhile. */
uint64_t loop_mark(void);
bool loop_mark_moved(uint64_t before);

/* ---------------------------------------------------------------------
 * slot.c - virtual slots and tokens
 * ------------------------------------------------------------------ */

CK_RV slot_get_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count);
CK_RV slot_get_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info);
CK_RV slot_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info);
CK_RV slot_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count);
CK_RV slot_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info);
/* True when layer's token lists type among its mechanisms, or when that
 * cannot be told (the list unreadable) or type is
 * CK_UNAVAILABLE_INFORMATION; false for an unavailable layer. Calls the
 * backend: hold no library lock. */
bool slot_layer_offers(engine_layer *layer, CK_MECHANISM_TYPE type);
CK_RV slot_init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                      CK_UTF8CHAR_PTR label);

/* ---------------------------------------------------------------------
 * login.c - PINs and the view a login selects
 * ------------------------------------------------------------------ */

CK_RV login_login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                  CK_ULONG pin_len);
CK_RV login_logout(CK_SESSION_HANDLE session);
/* C_LoginUser (PKCS#11 3.0): C_Login whose username names the view. */
CK_RV login_login_user(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                       CK_ULONG pin_len, CK_UTF8CHAR_PTR username, CK_ULONG username_len);
/* The login-related CK_TOKEN_INFO flags of token (CKF_LOGIN_REQUIRED,
 * CKF_USER_PIN_INITIALIZED when some view is enrolled, CKF_USER_PIN_* /
 * CKF_SO_PIN_* counters). Takes no library lock; may read the catalog. */
CK_FLAGS login_token_flags(engine_token *token);
/* For pin.c: storage_view_known_fn over token (ctx)'s policy; whether
 * pin selects the logged-in view (the same work for any wrong PIN;
 * expects L and a guess reserved): CKR_OK, CKR_PIN_INCORRECT,
 * CKR_HOST_MEMORY or CKR_GENERAL_ERROR. */
bool login_policy_has_view(const char *view, void *ctx);
CK_RV login_pin_is_current(engine_token *token, const char *pin, size_t pin_len);

/* ---------------------------------------------------------------------
 * pin.c - C_InitPIN and C_SetPIN
 * ------------------------------------------------------------------ */

CK_RV login_init_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len);
CK_RV login_set_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                    CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len);

/* ---------------------------------------------------------------------
 * guess.c - every PIN guess counted and bounded before it is evaluated
 * ------------------------------------------------------------------ */

/* Reserves one guess of kind (storage_guess_reserve) before a PIN is
 * evaluated: CKR_OK; CKR_PIN_LOCKED; CKR_DEVICE_ERROR (not recorded: the
 * PIN must not be evaluated); CKR_HOST_MEMORY; CKR_GENERAL_ERROR (no
 * catalog). Expects L. */
CK_RV guess_reserve(engine_token *token, storage_pin_kind kind);
/* Gives back the guess of a PIN that proved right, and only that one (a
 * right PIN clears no earlier failure: they expire). Logs a failure.
 * Expects L. */
void guess_settle(engine_token *token, storage_pin_kind kind);
/* Takes a turn to evaluate PINs on token (storage_kdf_enter_max): at most
 * as many at once as the processors and as token's max-failed-logins, so
 * the reservations of right PINs in flight never fill the counter by
 * themselves (and with failures recorded, guess_reserve waits for the PINs
 * in flight before it answers CKR_PIN_LOCKED). Returns the turn, for
 * guess_turn_leave; the thread keeps it for guess_reserve. */
int guess_turn_enter(const engine_token *token);
/* Gives back the turn guess_turn_enter took. */
void guess_turn_leave(int turn);
/* CKF_USER_PIN_COUNT_LOW/FINAL_TRY/LOCKED and CKF_SO_PIN_* from the
 * counters. Takes no lock; reads the catalog. */
CK_FLAGS guess_token_flags(engine_token *token);

/* ---------------------------------------------------------------------
 * session.c - virtual sessions
 * ------------------------------------------------------------------ */

/* Looks the session up and returns it with its lock held.
 * CKR_SESSION_HANDLE_INVALID when unknown or closed meanwhile. */
CK_RV session_acquire(CK_SESSION_HANDLE handle, engine_session **out);
/* Unlocks a session from session_acquire. */
void session_release(engine_session *s);

/* Snapshots the token's login state for s under K (session_view_state:
 * core/core.h). */
void session_view(engine_session *s, session_view_state *state);
/* The same for token, without a session (slot.c). Takes K. */
void session_token_view(engine_token *token, session_view_state *state);
/* The token's login epoch (session_view_state.epoch) alone: one atomic
 * load, K not taken. */
unsigned long session_login_epoch(const engine_session *s);

CK_RV session_open(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application, CK_NOTIFY notify,
                   CK_SESSION_HANDLE_PTR session);
CK_RV session_close(CK_SESSION_HANDLE session);
CK_RV session_close_all(CK_SLOT_ID slot);
CK_RV session_get_info(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info);
CK_RV session_get_operation_state(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                  CK_ULONG_PTR state_len);
CK_RV session_set_operation_state(CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len,
                                  CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key);
/* Number of open sessions on slot (and of those, read-write) for
 * CK_TOKEN_INFO. Takes the session table lock; never calls a backend. */
CK_ULONG session_count(CK_SLOT_ID slot, CK_ULONG *rw_count);
/* C_Finalize: closes every virtual session (and their backend sessions)
 * and frees the session table. Called before the tokens and modules are
 * freed, holding no lock. */
void session_finalize(void);
/* C_Initialize in a forked child: forgets the parent's sessions without
 * calling any backend and without freeing anything a backend or another
 * thread of the parent may own (leaking is fine); the table is empty
 * afterwards and its lock usable. */
void session_abandon(void);
CK_RV session_get_function_status(CK_SESSION_HANDLE session);
CK_RV session_cancel_function(CK_SESSION_HANDLE session);
/* C_SessionCancel (PKCS#11 3.0): ends the session's active crypto
 * operations among crypto_ops (bits 1 << engine_op), its search when
 * find, and its message operations among message_kinds (bits
 * 1 << message_kind). CKR_OK or CKR_SESSION_HANDLE_INVALID. */
CK_RV session_cancel(CK_SESSION_HANDLE session, unsigned crypto_ops, bool find,
                     unsigned message_kinds);
/* The session checks of any call, then CKR_FUNCTION_NOT_SUPPORTED. */
CK_RV session_function_not_supported(CK_SESSION_HANDLE session);

/* ---------------------------------------------------------------------
 * object.c - objects and attributes; search.c - C_FindObjects*
 * ------------------------------------------------------------------ */

CK_RV object_create(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                    CK_OBJECT_HANDLE_PTR object);
CK_RV object_copy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ,
                  CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object);
CK_RV object_destroy(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);
CK_RV object_get_size(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ULONG_PTR size);
CK_RV object_get_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count);
CK_RV object_set_attributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR templ, CK_ULONG count);
CK_RV object_find_init(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count);
CK_RV object_find(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max,
                  CK_ULONG_PTR count);
CK_RV object_find_final(CK_SESSION_HANDLE session);

/* ---------------------------------------------------------------------
 * crypto.c - cryptographic operations, forwarded to the key's layer
 * ------------------------------------------------------------------ */

/* engine_op: core/core.h (each session keeps one operation of each). */

typedef enum {
    ENGINE_DUAL_DIGEST_ENCRYPT = 0,
    ENGINE_DUAL_DECRYPT_DIGEST,
    ENGINE_DUAL_SIGN_ENCRYPT,
    ENGINE_DUAL_DECRYPT_VERIFY,
} engine_dual;

/* C_<Op>Init; key is ignored for ENGINE_OP_DIGEST. */
CK_RV crypto_init(CK_SESSION_HANDLE session, engine_op op, CK_MECHANISM_PTR mechanism,
                  CK_OBJECT_HANDLE key);
/* C_Encrypt, C_Decrypt, C_Digest, C_Sign, C_SignRecover, C_VerifyRecover. */
CK_RV crypto_single(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* C_Verify. */
CK_RV crypto_verify(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                    CK_BYTE_PTR signature, CK_ULONG signature_len);
/* C_EncryptUpdate, C_DecryptUpdate (out/out_len set) and C_DigestUpdate,
 * C_SignUpdate, C_VerifyUpdate (out and out_len NULL). */
CK_RV crypto_update(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR in, CK_ULONG in_len,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* C_EncryptFinal, C_DecryptFinal, C_DigestFinal, C_SignFinal. */
CK_RV crypto_final(CK_SESSION_HANDLE session, engine_op op, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
/* C_VerifyFinal. */
CK_RV crypto_verify_final(CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG signature_len);
CK_RV crypto_digest_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key);
CK_RV crypto_dual_update(CK_SESSION_HANDLE session, engine_dual dual, CK_BYTE_PTR in,
                         CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV crypto_seed_random(CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len);
CK_RV crypto_generate_random(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG out_len);

/* ---------------------------------------------------------------------
 * message.c - message-based encryption and signing (PKCS#11 3.0),
 * emulated over the 2.40 functions of crypto.c
 * ------------------------------------------------------------------ */

typedef enum {
    MESSAGE_ENCRYPT = 0,
    MESSAGE_DECRYPT,
    MESSAGE_SIGN,
    MESSAGE_VERIFY,
    MESSAGE_KINDS
} message_kind;

typedef enum {
    MESSAGE_IV_GIVEN = 0, /* CKG_NO_GENERATE: the caller's IV */
    MESSAGE_IV_RANDOM,    /* CKG_GENERATE_RANDOM (and CKG_GENERATE): the bits after the fixed ones
                             drawn */
    MESSAGE_IV_COUNTER,   /* CKG_GENERATE_COUNTER: a counter per (session, key) */
    MESSAGE_IV_OTHER,     /* a generator Strata does not emulate */
} message_iv;

/* One message's AEAD parameters (a CK_GCM_MESSAGE_PARAMS taken apart). */
typedef struct {
    unsigned char *iv;
    CK_ULONG iv_len;
    CK_ULONG iv_fixed_bits;
    message_iv generator;
    unsigned char *tag; /* out for encryption, in for decryption */
    CK_ULONG tag_bits;
} message_aead;

CK_RV message_init(CK_SESSION_HANDLE session, message_kind kind, CK_MECHANISM_PTR mechanism,
                   CK_OBJECT_HANDLE key);
/* aead NULL: no parameter; param_ok false: not a CK_GCM_MESSAGE_PARAMS. */
CK_RV message_aead_one(CK_SESSION_HANDLE session, message_kind kind, const message_aead *aead,
                       bool param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR in,
                       CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV message_sign(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                   CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len);
CK_RV message_verify(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                     CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG sig_len);
CK_RV message_begin(CK_SESSION_HANDLE session, message_kind kind, CK_VOID_PTR param,
                    CK_ULONG param_len);
CK_RV message_sign_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                        CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len);
CK_RV message_verify_next(CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len,
                          CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR sig, CK_ULONG sig_len);
CK_RV message_final(CK_SESSION_HANDLE session, message_kind kind);
/* C_GetMechanismInfo of the 3.0 list: slot_get_mechanism_info's answer
 * and, in *kinds (bits 1 << message_kind), the message-based operations
 * Strata's emulation does with type. Same codes as
 * slot_get_mechanism_info. */
CK_RV message_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info,
                             unsigned *kinds);
/* C_EncryptMessageBegin / C_DecryptMessageBegin (message_parts.c). */
CK_RV message_aead_begin(CK_SESSION_HANDLE session, message_kind kind, const message_aead *aead,
                         bool param_ok, CK_BYTE_PTR aad, CK_ULONG aad_len);
/* C_EncryptMessageNext / C_DecryptMessageNext; last: CKF_END_OF_MESSAGE. */
CK_RV message_aead_next(CK_SESSION_HANDLE session, message_kind kind, const message_aead *aead,
                        bool param_ok, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len, bool last);
/* PKCS#11 3.0's code for an AEAD message whose tag does not verify
 * (OASIS pkcs11t.h 3.0; neither p11-kit 0.24's nor NSS 3.87's header has
 * it). */
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED 0x42UL
#endif

/* A growing buffer (message_gcm.c), wiped whenever it is freed or moved. */
typedef struct {
    CK_BYTE *buf;
    CK_ULONG used;
    CK_ULONG cap;
} message_buf;
/* Room for more bytes after the used ones: CKR_OK or CKR_HOST_MEMORY. */
CK_RV message_buf_room(message_buf *b, CK_ULONG more);
/* len bytes of data appended: CKR_OK or CKR_HOST_MEMORY. */
CK_RV message_buf_add(message_buf *b, const CK_BYTE *data, CK_ULONG len);
/* Wipes and frees the buffer; it is empty again. */
void message_buf_wipe(message_buf *b);

/* What a message decrypted in parts keeps between its calls: Begin's IV
 * and AAD, the ciphertext given so far and the plaintext the backend gave
 * back, held until the tag is checked. */
typedef struct {
    message_buf iv;
    message_buf aad;
    message_buf ct;
    message_buf plain;
} message_held;
/* Wipes and empties all of held. */
void message_held_wipe(message_held *held);

/* What message.c keeps of a message given in parts, for message_parts.c. */
typedef struct {
    CK_OBJECT_HANDLE key; /* virtual, from the Init */
    bool in_message;      /* between Begin and the last Next */
    CK_ULONG fed;         /* input given to the backend in this message */
    CK_ULONG released;    /* output handed back in this message */
    CK_ULONG tag_bits;    /* the tag length given at Begin */
    message_held *held;   /* the record's (valid during this session's call) */
} message_part;
/* The active (session, kind) operation's part state: CKR_OK;
 * CKR_SESSION_HANDLE_INVALID; CKR_OPERATION_NOT_INITIALIZED. Takes M. */
CK_RV message_part_get(CK_SESSION_HANDLE session, message_kind kind, message_part *part);
/* Stores part into the (session, kind) record, if it is still there. */
void message_part_set(CK_SESSION_HANDLE session, message_kind kind, const message_part *part);
/* One message's AEAD parameters checked (message_gcm.c); need_tag:
 * the call uses pTag. */
CK_RV message_aead_check(message_kind kind, const message_aead *aead, bool param_ok, bool need_tag);
/* The 2.40 CK_GCM_PARAMS of one message with key (message_gcm.c; aead checked; for the
 * generators, the IV bits after the fixed ones made and written back
 * first). CKR_OK; CKR_MECHANISM_PARAM_INVALID (counter exhausted);
 * CKR_HOST_MEMORY; or C_GenerateRandom's code. */
CK_RV message_gcm_params(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, const message_aead *aead,
                         CK_BYTE_PTR aad, CK_ULONG aad_len, CK_GCM_PARAMS *gcm);
/* After a refused AES-GCM decryption, whether tag is the right tag of
 * (iv, aad, ct) under key: CKR_AEAD_DECRYPT_FAILED (it is not), CKR_OK (it
 * is: the refusal had another cause), or another code (no verdict). Uses
 * the session's 2.40 encryption (message_gcm.c). */
CK_RV message_gcm_tag_check(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, CK_BYTE_PTR iv,
                            CK_ULONG iv_len, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR ct,
                            CK_ULONG ct_len, const CK_BYTE *tag, CK_ULONG tag_bits);
/* One AES-GCM operation (op: ENGINE_OP_ENCRYPT or ENGINE_OP_DECRYPT)
 * through crypto.c: C_EncryptInit/C_DecryptInit with gcm, then
 * C_Encrypt/C_Decrypt of in into out (*out_len: its size, then what was
 * written), the 2.40 operation ended after (message_gcm.c). */
CK_RV message_gcm_once(CK_SESSION_HANDLE session, engine_op op, CK_OBJECT_HANDLE key,
                       CK_GCM_PARAMS *gcm, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                       CK_ULONG_PTR out_len);
/* The session is ending: its IV counters go (message_gcm.c). Takes the
 * counter lock C (a leaf). */
void message_gcm_forget(CK_SESSION_HANDLE session);
/* Ends whatever 2.40 operation of kind a message left active. */
void message_end_2_40(CK_SESSION_HANDLE session, message_kind kind);
/* The session is ending: its message operations go. Takes the message
 * lock M (a leaf). */
void message_forget(CK_SESSION_HANDLE session);
/* C_SessionCancel: the session's message operation of kind ends (and a
 * message under way its 2.40 operation). Takes M, then the session. */
void message_cancel(CK_SESSION_HANDLE session, message_kind kind);

/* ---------------------------------------------------------------------
 * keys.c - key management that creates objects
 * ------------------------------------------------------------------ */

CK_RV key_generate(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ,
                   CK_ULONG count, CK_OBJECT_HANDLE_PTR key);
CK_RV key_generate_pair(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                        CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv_templ,
                        CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_key,
                        CK_OBJECT_HANDLE_PTR priv_key);
CK_RV key_wrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping,
               CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len);
CK_RV key_unwrap(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR key);
CK_RV key_derive(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base,
                 CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key);

/* ---------------------------------------------------------------------
 * crypto.c / login.c / object.c helpers
 * ------------------------------------------------------------------ */

/* Ends every crypto operation of s in Strata's state (backend sessions
 * are closed by the caller). */
void crypto_reset(engine_session *s);
/* C_SessionCancel: ends op of s in the backend too, if active. Expects S. */
void crypto_cancel(engine_session *s, engine_op op);

/* Logs the token out (layers, credentials, view). Takes L and K. */
void login_logout_token(engine_token *token);

/* login_layers.c - the backend logins of a view's layers (expect L, but
 * login_replay) */

/* Logs in to each layer of view with login's credentials and records in
 * the catalog those left out. */
void login_layers(engine_token *token, engine_view *view, const storage_login *login);
/* Makes sure every lazy layer of view exists (backend/provision.c).
 * Expects a shared gate hold too. Returns CKR_OK (a layer that stays
 * invisible is marked down), CKR_DEVICE_MEMORY, CKR_DEVICE_ERROR or
 * CKR_HOST_MEMORY. */
CK_RV login_provision_lazy(engine_token *token, engine_view *view, const storage_login *login);
/* Marks layer down (or up) for the current login. */
void login_layer_set_failed(engine_layer *layer, bool failed);
/* True for a lazily provisioned layer (provision="lazy"). */
bool login_layer_is_lazy(const engine_layer *layer);
/* Logs layer in again from the credentials kept at login when its
 * backend login is gone (the module was cycled): the backend floor's
 * replay hook, registered by C_Initialize. Takes L. */
void login_replay(engine_token *token, engine_layer *layer);

/* The layer a new object described by templ goes to, checked against
 * the view's rules: route, else the top writable usable layer; fixed is
 * SIZE_MAX when Strata chooses (C_CreateObject, C_GenerateKey*), else the
 * layer that must make it (the key's, for copy/unwrap/derive). mechanism
 * is the creating mechanism or CK_UNAVAILABLE_INFORMATION. Returns CKR_OK
 * with *layer; CKR_TOKEN_WRITE_PROTECTED (no writable layer, or a token
 * object while st is sessions_only); CKR_DEVICE_ERROR (the routed layer is unavailable);
 * CKR_ATTRIBUTE_VALUE_INVALID (a template value of the wrong size for the
 * rules); CKR_MECHANISM_INVALID (no writable layer's token offers
 * mechanism, or the routed layer's does not: logged, naming the layer;
 * without a route, the top writable layer that offers it is chosen);
 * CKR_ACTION_PROHIBITED (deny create, or a route to a layer other
 * than fixed). See docs/strata-rules.7, RETURN CODES. Expects S. */
CK_RV object_target_layer(engine_session *s, const session_view_state *st,
                          const CK_ATTRIBUTE *templ, CK_ULONG count, CK_MECHANISM_TYPE mechanism,
                          size_t fixed, size_t *layer);
/* CK_TRUE when the template asks for a token object (CKA_TOKEN), else
 * dflt. */
bool object_template_token(const CK_ATTRIBUTE *templ, CK_ULONG count, bool dflt);
/* True when the view's rules forbid op on the object: a deny rule, or
 * (for set-attribute and destroy) a readonly rule. Fails closed. Expects
 * S. */
bool object_denied(engine_session *s, const session_view_state *st, const object_ref *ref,
                   rules_op op);

/* Checks a template's shape: CKR_ARGUMENTS_BAD for NULL with count > 0,
 * CKR_ATTRIBUTE_VALUE_INVALID for a NULL value with a length. */
CK_RV object_check_template(const CK_ATTRIBUTE *templ, CK_ULONG count);

/* A backend call that makes objects (C_CreateObject, C_CopyObject,
 * C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey, C_DeriveKey) as a
 * closure: call writes the n backend handles it made (n is 0, 1 or 2;
 * made is NULL when n is 0). */
typedef CK_RV object_make_fn(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                             CK_OBJECT_HANDLE *made);
typedef struct {
    object_make_fn *call;
    const void *arg;
    size_t n;
} object_maker;

/* object_make's answer when the login state changed since st was read:
 * the caller reads it again and starts over. Never reaches a caller of
 * the module. */
#define OBJECT_AGAIN (CKR_VENDOR_DEFINED | 0x5354u)

/*
 * Runs make on layer's backend through s and gives each object it made
 * its virtual handle in made[]. The backend call and the registration run
 * under L with the login state st was read in, so no C_Logout or C_Login
 * comes between them (a private object made but no longer readable would
 * be lost); an object that cannot be registered is destroyed in the
 * backend again. Returns CKR_OK; OBJECT_AGAIN; CKR_HOST_MEMORY;
 * CKR_GENERAL_ERROR (the backend will not describe what it made); or the
 * backend's code. Expects S, not L.
 */
CK_RV object_make(engine_session *s, const session_view_state *st, size_t layer,
                  const object_maker *make, CK_OBJECT_HANDLE *made);

/* The new-object calls (C_CreateObject, C_GenerateKey): checks templ's
 * shape and CKA_TOKEN against the session's RO/RW state, then lets
 * object_target_layer choose the layer and object_make make the object
 * there, again when the login state changed meanwhile. mechanism is the
 * creating mechanism or CK_UNAVAILABLE_INFORMATION. Returns
 * object_check_template's, CKR_SESSION_READ_ONLY, object_target_layer's
 * or object_make's codes (never OBJECT_AGAIN). Expects S. */
CK_RV object_make_new(engine_session *s, const CK_ATTRIBUTE *templ, CK_ULONG count,
                      CK_MECHANISM_TYPE mechanism, const object_maker *make,
                      CK_OBJECT_HANDLE *made);

#endif /* STRATA_ENGINE_OPS_H */
