/*
 * internal.h - the engine's private contract between its files.
 *
 * entry.c holds every C_* entry point; each checks the library state and
 * forwards to one family function declared here. Family functions validate
 * their arguments (exact CKR_* of PKCS#11 v2.40), resolve the session under
 * its lock and do the work. Not installed, not included outside engine/.
 *
 * Lock order (never reversed): library lock -> token lock -> session lock.
 * No backend module is ever called while the library lock is held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_INTERNAL_H
#define STRATA_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "engine.h"
#include "layers.h"
#include "rules.h"
#include "storage.h"

#define ENGINE_CRYPTOKI_MAJOR 2
#define ENGINE_CRYPTOKI_MINOR 40

/* ---------------------------------------------------------------------
 * Library state, built by C_Initialize (library.c) from the policy
 * ------------------------------------------------------------------ */

typedef struct engine_mutex engine_mutex;

/* One layer's token as a view uses it: the layer definition with its
 * token label expanded for the view ("strata-{view}" -> "strata-work").
 * Views of one virtual token that name the same layer and label share one
 * engine_layer. */
typedef struct {
    const rules_layer *def;
    char label[33]; /* expanded token label */
    /* The backend token's label: label, or for a lazy layer the one its
     * catalog row names, with this catalog's mark (storage_provision_label). */
    char backend_label[33];
    bool marked;         /* backend_label carries this catalog's mark: only it made such a token */
    layers_token *token; /* NULL when the layer's module failed to load */
    bool read_only;      /* access="read-only" */
    bool login_failed;   /* its backend login failed at the current login (login.c, token lock) */
    pthread_rwlock_t store; /* object-making calls vs searches (backend_store_*, backend.c) */
    pthread_rwlock_t state; /* backend login/logout vs reads of objects (backend_state_*) */
} engine_layer;

typedef struct {
    const rules_view *def;
    engine_layer **layers; /* top first, pointing into engine_token.layers */
    size_t n_layers;
} engine_view;

typedef struct {
    const rules_token *def;
    CK_SLOT_ID slot_id; /* stable, from the catalog */
    engine_view *views;
    size_t n_views;
    engine_layer *layers; /* every distinct (layer, label) its views use */
    size_t n_layers;
    engine_view *public_view; /* the view calls use before login (and the SO's): the policy's
                                 public view, else (public-view="none") the first view */
    bool public_none;         /* public-view="none": before login public_view holds session
                                 objects only (session_view's sessions_only) */
    engine_mutex *lock;       /* guards the login state (login.c) */
    engine_view *current;     /* the logged-in view; NULL = not logged in */
    CK_USER_TYPE user;        /* CKU_USER or CKU_SO while logged in */
    struct engine_handles
        *handles;              /* virtual object handles, made by the first session (handles.c) */
    engine_mutex *login_lock;  /* serialises C_Login/C_Logout, made with handles (login.c) */
    storage_login *login;      /* credentials unwrapped at login, kept for replay (login.c) */
    unsigned long login_epoch; /* bumped by each login and logout (login.c, token lock) */
} engine_token;

typedef struct {
    rules_policy *policy;
    storage_catalog *catalog;
    layers_module **modules; /* parallel to policy->modules; NULL = failed to load */
    engine_token *tokens;    /* parallel to policy->tokens */
    size_t n_tokens;
} engine_library;

/* Valid between a successful C_Initialize and C_Finalize in this process. */
extern engine_library engine_lib;

/* The virtual token on slot, or NULL (CKR_SLOT_ID_INVALID). */
engine_token *library_token(CK_SLOT_ID slot);

/* ---------------------------------------------------------------------
 * library.c - C_Initialize/C_Finalize, fork detection, locks
 * ------------------------------------------------------------------ */

/* CKR_OK when C_Initialize succeeded in this very process (a forked child
 * sees CKR_CRYPTOKI_NOT_INITIALIZED), else CKR_CRYPTOKI_NOT_INITIALIZED. */
CK_RV library_check(void);
CK_RV library_initialize(CK_VOID_PTR init_args);
CK_RV library_finalize(CK_VOID_PTR reserved);
CK_RV library_get_info(CK_INFO_PTR info);
/* Strata's own version (major.minor of the project version), for
 * CK_INFO, CK_SLOT_INFO and CK_TOKEN_INFO. */
void library_version(CK_VERSION *out);

/* Mutexes: the application's callbacks when C_Initialize gave them without
 * CKF_OS_LOCKING_OK, else pthread mutexes. */
CK_RV engine_mutex_new(engine_mutex **out);
void engine_mutex_free(engine_mutex *mutex);
void engine_mutex_lock(engine_mutex *mutex);
void engine_mutex_unlock(engine_mutex *mutex);

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
CK_RV slot_wait_for_event(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved);
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

CK_RV login_init_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len);
CK_RV login_set_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                    CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len);
CK_RV login_login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                  CK_ULONG pin_len);
CK_RV login_logout(CK_SESSION_HANDLE session);
/* The login-related CK_TOKEN_INFO flags of token (CKF_LOGIN_REQUIRED,
 * CKF_USER_PIN_INITIALIZED when some view is enrolled, CKF_USER_PIN_* /
 * CKF_SO_PIN_* counters). Takes no library lock; may read the catalog. */
CK_FLAGS login_token_flags(engine_token *token);

/* ---------------------------------------------------------------------
 * guess.c - every PIN guess counted and bounded before it is evaluated
 * ------------------------------------------------------------------ */

/* Reserves one guess of kind (storage_guess_reserve) before a PIN is
 * evaluated: CKR_OK; CKR_PIN_LOCKED; CKR_DEVICE_ERROR (not recorded: the
 * PIN must not be evaluated); CKR_HOST_MEMORY; CKR_GENERAL_ERROR (no
 * catalog). Expects L. */
CK_RV guess_reserve(engine_token *token, storage_pin_kind kind);
/* Gives back the guess of a PIN that proved right (clear: the whole
 * counter, after a successful C_Login). Logs a failure. Expects L. */
void guess_settle(engine_token *token, storage_pin_kind kind, bool clear);
/* CKF_USER_PIN_COUNT_LOW/FINAL_TRY/LOCKED and CKF_SO_PIN_* from the
 * counters. Takes no lock; reads the catalog. */
CK_FLAGS guess_token_flags(engine_token *token);

/* ---------------------------------------------------------------------
 * session.c - virtual sessions
 * ------------------------------------------------------------------ */

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

/* ---------------------------------------------------------------------
 * object.c - objects, attributes, search
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

typedef enum {
    ENGINE_OP_ENCRYPT = 0,
    ENGINE_OP_DECRYPT,
    ENGINE_OP_DIGEST,
    ENGINE_OP_SIGN,
    ENGINE_OP_SIGN_RECOVER,
    ENGINE_OP_VERIFY,
    ENGINE_OP_VERIFY_RECOVER,
    ENGINE_OP_COUNT
} engine_op;

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
 * log.c - the optional call log (STRATA_LOG), silent by default
 * ------------------------------------------------------------------ */

typedef enum {
    ENGINE_LOG_ERROR = 0,
    ENGINE_LOG_WARNING,
    ENGINE_LOG_INFO,
    ENGINE_LOG_DEBUG,
    ENGINE_LOG_CALLS, /* debug and one line per C_* call (STRATA_LOG=calls) */
} engine_log_level;

/* Reads STRATA_LOG / STRATA_LOG_FILE once per C_Initialize; called again
 * with the policy's <log calls="..."> target (NULL when none) once the
 * policy is loaded. The environment wins over the policy. */
void engine_log_open(const char *policy_target);
void engine_log_close(void);
bool engine_log_enabled(engine_log_level level);
/* printf-style; never pass a secret: mask it before formatting. */
void engine_log(engine_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies a blank-padded PKCS#11 field from a C string (truncating). */
void engine_pad(CK_UTF8CHAR *field, size_t field_len, const char *text);

#endif /* STRATA_ENGINE_INTERNAL_H */
