/*
 * layers.h - Strata's backends: PKCS#11 modules and the tokens inside them.
 *
 * A leaf library. A layers_module is one backend module loaded through
 * p11-kit's managed-module API, so an application that also uses the same
 * backend directly is never finalised out from under, and Strata never
 * calls a backend's C_CloseAllSessions. A layers_token is one layer's token
 * inside a module, found by label or serial (never by slot number: backends
 * move tokens between slots). It keeps the layer's login alive with an
 * anchor session while logged in.
 *
 * Locking: every function takes the object's own lock as needed and may
 * call into the backend; callers must not hold a library-wide lock.
 * Nothing here logs or exits; failures return CK_RV and, where a person
 * must read the reason, fill a caller's error buffer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_LAYERS_H
#define STRATA_LAYERS_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

/* ---------------------------------------------------------------------
 * Modules
 * ------------------------------------------------------------------ */

typedef struct layers_module layers_module;

/* Loads the module at path (managed, through p11_kit_module_load) and
 * initialises it (p11_kit_module_initialize). On failure *out is NULL, err
 * names the path and the reason, and the result is CKR_GENERAL_ERROR (not
 * a loadable PKCS#11 module) or the backend's C_Initialize code. */
CK_RV layers_module_load(const char *path, layers_module **out, char *err, size_t errsize);

/* Finalises (managed: the real C_Finalize runs only for the last user) and
 * releases. Closes the sessions this module object opened, one by one.
 * Free the module's tokens first. Measured with p11-kit 0.24: an
 * application that initialised the backend itself *before* the load keeps
 * it (and its sessions) through unload; one that initialises it only
 * *after* the load gets CKR_CRYPTOKI_ALREADY_INITIALIZED, is not counted,
 * and loses the backend at unload. */
void layers_module_unload(layers_module *module);

/* The managed function list, for forwarding calls. Valid until unload. */
CK_FUNCTION_LIST *layers_module_functions(const layers_module *module);
const char *layers_module_path(const layers_module *module);

/* Bumped each time the module is cycled (finalised and initialised again);
 * backend session handles from an older generation are dead. Starts at 1. */
unsigned layers_module_generation(const layers_module *module);

/* Finalises and initialises the module again (managed), closing this
 * object's sessions and bumping the generation, so tokens find their slot
 * again and forget their login (replay it). *restarted (may be NULL) says
 * whether the backend really restarted and so shows tokens made by other
 * processes and a new free slot: false when another user in the process
 * (an application using the backend directly) keeps it initialised.
 * Returns CKR_OK or the backend's C_Initialize code. No other thread may
 * use the module (or its tokens' sessions) during the call. */
CK_RV layers_module_cycle(layers_module *module, bool *restarted);

typedef struct {
    CK_SLOT_ID slot;
    bool token_present;
    bool initialized; /* CKF_TOKEN_INITIALIZED */
    char label[33];   /* NUL-terminated, trailing blanks removed */
    char serial[17];
    char model[17];
    char manufacturer[33];
    CK_FLAGS token_flags;
} layers_slot_info;

/* Lists the module's slots (strata status). *out is malloc'd. */
CK_RV layers_module_slots(layers_module *module, layers_slot_info **out, size_t *n);

/* Copies a blank-padded PKCS#11 string field into a NUL-terminated buffer
 * without the padding. */
void layers_field_to_string(const CK_UTF8CHAR *field, size_t field_len, char *buf, size_t size);

/* ---------------------------------------------------------------------
 * Tokens (one per layer)
 * ------------------------------------------------------------------ */

typedef struct layers_token layers_token;

/* Creates the handle for the token with this label (and serial, when
 * non-NULL; either may be NULL but not both) in module. The token need not
 * be present: layers_token_slot() says whether it is. Never calls
 * C_Login. */
CK_RV layers_token_new(layers_module *module, const char *label, const char *serial,
                       layers_token **out);
/* Logs out, closes the sessions opened through the token, frees it. */
void layers_token_free(layers_token *token);

layers_module *layers_token_module(const layers_token *token);

/* Finds the token's current slot (rescanning the module's slot list when
 * the cached slot no longer shows the token). CKR_TOKEN_NOT_PRESENT when
 * absent. */
CK_RV layers_token_slot(layers_token *token, CK_SLOT_ID *slot);
CK_RV layers_token_info(layers_token *token, CK_TOKEN_INFO *info);

/* Logs in as user_type with pin, keeping an anchor session open so the
 * login lasts (read-only for CKU_USER, read-write for CKU_SO).
 * CKR_USER_ALREADY_LOGGED_IN from the backend counts as success. Backend
 * codes pass through (CKR_PIN_INCORRECT, ...), the anchor then closed. The
 * pin is not kept. Login and logout hold the token's lock across their
 * backend calls; every other token function holds it only briefly. */
CK_RV layers_token_login(layers_token *token, CK_USER_TYPE user_type, const char *pin,
                         size_t pin_len);
/* Logs out and closes the anchor session. CKR_OK when not logged in. */
CK_RV layers_token_logout(layers_token *token);
bool layers_token_logged_in(const layers_token *token);

/* Opens a backend session on the token (CKF_SERIAL_SESSION is added). */
CK_RV layers_token_open_session(layers_token *token, CK_FLAGS flags, CK_SESSION_HANDLE *session);
/* Closes one backend session opened by layers_token_open_session. */
CK_RV layers_token_close_session(layers_token *token, CK_SESSION_HANDLE session);

/* ---------------------------------------------------------------------
 * Return values
 * ------------------------------------------------------------------ */

/* The symbolic name of a PKCS#11 return value ("CKR_PIN_INCORRECT");
 * "CKR_VENDOR_DEFINED" for vendor codes and "CKR_UNKNOWN" for anything
 * else the table lacks. Never NULL; static storage. */
const char *layers_rv_name(CK_RV rv);

#endif /* STRATA_LAYERS_H */
