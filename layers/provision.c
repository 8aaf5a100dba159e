/*
 * provision.c - lazily provisioned tokens: a fresh token on a free slot
 * of a backend module, and the repair of a half-provisioned one.
 *
 * Provisioning runs C_InitToken (the SO PIN and the label) on a slot whose
 * token is present but not initialised, then, in a read-write session,
 * logs in as SO, sets the user PIN with C_InitPIN, logs out and closes the
 * session, and reads the new token's serial. The PINs are the caller's
 * (the engine generates and seals them before calling); they are only
 * passed to the backend, never copied, kept or written into an error.
 *
 * Repair is the same sequence on an initialised token: C_InitToken with
 * the token's SO PIN wipes it, so a token left without a user PIN (a crash
 * between C_InitToken and C_InitPIN) can be finished by whoever holds its
 * SO PIN.
 *
 * For tests, STRATA_TEST_FAIL_AT=<point> stops the sequence at that point
 * as a crash would (the session is closed, nothing is undone) and returns
 * CKR_FUNCTION_FAILED; the points are provision-before-inittoken,
 * provision-after-inittoken, provision-after-so-login and
 * provision-after-initpin.
 *
 * Locking: no lock of this folder is held across the backend calls. The
 * caller makes sure no other thread uses the module (provisioning may
 * cycle it) or the token being repaired.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LABEL_FIELD  32
#define SERIAL_FIELD 16

/* The PINs and the label of one run of the sequence. */
typedef struct {
    const char *label;
    const char *so_pin;
    size_t so_len;
    const char *user_pin;
    size_t user_len;
} init_request;

/* Fills err (when given) with the formatted text. */
static void __attribute__((format(printf, 3, 4)))
set_error(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errsize == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}

/* Returns CKR_FUNCTION_FAILED, err saying so, when the test fault point
 * is asked for (env STRATA_TEST_FAIL_AT); CKR_OK otherwise. */
static CK_RV fault(const char *point, char *err, size_t errsize)
{
    const char *want = getenv("STRATA_TEST_FAIL_AT");

    if (want == NULL || strcmp(want, point) != 0) {
        return CKR_OK;
    }
    set_error(err, errsize, "stopped by the test fault point %s", point);
    return CKR_FUNCTION_FAILED;
}

/* A label can be given to C_InitToken and found again by
 * layers_token_new: 1 to 32 bytes, not ending in a blank (the padding
 * would swallow it). */
static bool label_usable(const char *label)
{
    size_t len = label != NULL ? strlen(label) : 0;

    return len > 0 && len <= LABEL_FIELD && label[len - 1] != ' ';
}

static bool request_usable(const init_request *req)
{
    return label_usable(req->label) && req->so_pin != NULL && req->so_len > 0 &&
           req->user_pin != NULL && req->user_len > 0;
}

/*
 * Runs the initialisation sequence on slot. Returns CKR_OK with serial
 * (the token's serial number, NUL-terminated); otherwise the failing
 * step's backend code, err naming the step; CKR_FUNCTION_FAILED at a test
 * fault point; CKR_GENERAL_ERROR when the token reports no serial
 * afterwards. The session it opens is closed on every path. No lock.
 */
static CK_RV init_slot(CK_FUNCTION_LIST *funcs, CK_SLOT_ID slot, const init_request *req,
                       char serial[17], char *err, size_t errsize)
{
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_UTF8CHAR label[LABEL_FIELD];
    CK_TOKEN_INFO info;
    const char *step;
    CK_RV rv;

    memset(label, ' ', sizeof(label));
    memcpy(label, req->label, strlen(req->label));
    if ((rv = fault("provision-before-inittoken", err, errsize)) != CKR_OK) {
        goto out;
    }
    step = "C_InitToken";
    rv = funcs->C_InitToken(slot, (CK_UTF8CHAR_PTR)req->so_pin, (CK_ULONG)req->so_len, label);
    if (rv != CKR_OK) {
        goto fail;
    }
    if ((rv = fault("provision-after-inittoken", err, errsize)) != CKR_OK) {
        goto out;
    }
    step = "C_OpenSession";
    rv = funcs->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session);
    if (rv != CKR_OK) {
        session = CK_INVALID_HANDLE;
        goto fail;
    }
    step = "C_Login as SO";
    rv = funcs->C_Login(session, CKU_SO, (CK_UTF8CHAR_PTR)req->so_pin, (CK_ULONG)req->so_len);
    if (rv != CKR_OK) {
        goto fail;
    }
    if ((rv = fault("provision-after-so-login", err, errsize)) != CKR_OK) {
        goto out;
    }
    step = "C_InitPIN";
    rv = funcs->C_InitPIN(session, (CK_UTF8CHAR_PTR)req->user_pin, (CK_ULONG)req->user_len);
    if (rv != CKR_OK) {
        goto fail;
    }
    if ((rv = fault("provision-after-initpin", err, errsize)) != CKR_OK) {
        goto out;
    }
    step = "C_Logout";
    if ((rv = funcs->C_Logout(session)) != CKR_OK) {
        goto fail;
    }
    step = "C_CloseSession";
    rv = funcs->C_CloseSession(session);
    session = CK_INVALID_HANDLE;
    if (rv != CKR_OK) {
        goto fail;
    }
    step = "C_GetTokenInfo";
    if ((rv = funcs->C_GetTokenInfo(slot, &info)) != CKR_OK) {
        goto fail;
    }
    layers_field_to_string(info.serialNumber, sizeof(info.serialNumber), serial, SERIAL_FIELD + 1);
    if (serial[0] == '\0') {
        rv = CKR_GENERAL_ERROR;
        set_error(err, errsize, "token %s on slot %lu: initialised, but it has no serial number",
                  req->label, (unsigned long)slot);
    }
    goto out;

fail:
    set_error(err, errsize, "token %s on slot %lu: %s failed with %s", req->label,
              (unsigned long)slot, step, layers_rv_name(rv));
out:
    if (session != CK_INVALID_HANDLE) {
        funcs->C_CloseSession(session); /* closing the last session logs out */
    }
    return rv;
}

/*
 * Whether slot shows a present token that is not initialised. A slot
 * that cannot describe its token is not free. No lock.
 */
static bool slot_free(CK_FUNCTION_LIST *funcs, CK_SLOT_ID slot)
{
    CK_TOKEN_INFO info;

    return funcs->C_GetTokenInfo(slot, &info) == CKR_OK &&
           (info.flags & CKF_TOKEN_INITIALIZED) == 0;
}

/*
 * Returns CKR_OK with *slot, the first slot whose token is present and
 * not initialised; CKR_TOKEN_NOT_PRESENT when there is none;
 * CKR_ARGUMENTS_BAD; CKR_HOST_MEMORY; or the backend's C_GetSlotList
 * code. No lock.
 */
CK_RV layers_module_free_slot(layers_module *module, CK_SLOT_ID *slot)
{
    CK_SLOT_ID *ids = NULL;
    CK_ULONG n = 0, i;
    CK_RV rv;

    if (module == NULL || slot == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = layers_module_slot_ids(module, CK_TRUE, &ids, &n);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_TOKEN_NOT_PRESENT;
    for (i = 0; i < n; i++) {
        if (slot_free(module->funcs, ids[i])) {
            *slot = ids[i];
            rv = CKR_OK;
            break;
        }
    }
out:
    free(ids);
    return rv;
}

/*
 * Whether an initialised token labelled label is visible in the module.
 * Returns CKR_OK with *taken; CKR_HOST_MEMORY or the backend's
 * C_GetSlotList code. No lock.
 */
static CK_RV label_taken(layers_module *module, const char *label, bool *taken)
{
    layers_token *token = NULL;
    CK_SLOT_ID slot;
    CK_RV rv;

    *taken = false;
    rv = layers_token_new(module, label, NULL, &token);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = layers_token_slot(token, &slot);
    layers_token_free(token);
    if (rv == CKR_OK) {
        *taken = true;
    }
    return rv == CKR_TOKEN_NOT_PRESENT ? CKR_OK : rv;
}

/*
 * Finds a free slot, cycling the module once when it shows none. Returns
 * CKR_OK with *slot; CKR_DEVICE_MEMORY when there is still no free slot
 * (err says whether the backend could be restarted); the cycle's
 * C_Initialize code; or a listing failure. No lock.
 */
static CK_RV find_or_make_free_slot(layers_module *module, CK_SLOT_ID *slot, char *err,
                                    size_t errsize)
{
    bool restarted = false;
    CK_RV rv;

    rv = layers_module_free_slot(module, slot);
    if (rv != CKR_TOKEN_NOT_PRESENT) {
        goto out;
    }
    rv = layers_module_cycle(module, &restarted);
    if (rv != CKR_OK) {
        set_error(err, errsize, "%s: no free slot, and restarting the backend failed with %s",
                  module->path, layers_rv_name(rv));
        return rv;
    }
    if (!restarted) {
        set_error(err, errsize,
                  "%s: no free slot, and the backend cannot be restarted to show one: another "
                  "user in this process keeps it initialised",
                  module->path);
        return CKR_DEVICE_MEMORY;
    }
    rv = layers_module_free_slot(module, slot);
    if (rv == CKR_TOKEN_NOT_PRESENT) {
        set_error(err, errsize, "%s: no free slot, even after restarting the backend",
                  module->path);
        return CKR_DEVICE_MEMORY;
    }
out:
    if (rv != CKR_OK) {
        set_error(err, errsize, "%s: listing the slots failed with %s", module->path,
                  layers_rv_name(rv));
    }
    return rv;
}

/*
 * Makes a new token labelled label on a free slot of module, with the SO
 * and user PINs given; unless alongside, refuses when an initialised token
 * with that label is visible. Returns CKR_OK with serial;
 * CKR_ARGUMENTS_BAD (label empty, over 32 bytes or ending in a blank; a
 * PIN NULL or empty); LAYERS_CKR_LABEL_TAKEN; CKR_DEVICE_MEMORY when there
 * is no free slot, even after one cycle; the cycle's code; the failing
 * step's backend code; CKR_FUNCTION_FAILED at a test fault point. err
 * says what failed. No lock; the caller keeps other threads off the
 * module.
 */
static CK_RV provision(layers_module *module, const init_request *req, bool alongside,
                       char serial[17], char *err, size_t errsize)
{
    bool taken = false;
    CK_SLOT_ID slot;
    CK_RV rv = CKR_ARGUMENTS_BAD;

    if (module == NULL || serial == NULL || !request_usable(req)) {
        set_error(err, errsize,
                  "provisioning needs a module, a 1 to 32 byte label not ending "
                  "in a blank, an SO PIN and a user PIN");
        return rv;
    }
    serial[0] = '\0';
    rv = find_or_make_free_slot(module, &slot, err, errsize);
    if (rv != CKR_OK) {
        return rv;
    }
    /* Looked at after any cycle, which shows other processes' tokens. */
    rv = alongside ? CKR_OK : label_taken(module, req->label, &taken);
    if (rv != CKR_OK) {
        set_error(err, errsize, "%s: looking for tokens labelled %s failed with %s", module->path,
                  req->label, layers_rv_name(rv));
        return rv;
    }
    if (taken) {
        set_error(err, errsize, "%s: a token labelled %s exists already", module->path, req->label);
        return LAYERS_CKR_LABEL_TAKEN;
    }
    rv = init_slot(module->funcs, slot, req, serial, err, errsize);
    if (rv != CKR_OK) {
        serial[0] = '\0';
    }
    return rv;
}

/* See layers.h: provision() refusing a label in use. */
CK_RV layers_token_provision(layers_module *module, const char *label, const char *so_pin,
                             size_t so_len, const char *user_pin, size_t user_len, char serial[17],
                             char *err, size_t errsize)
{
    const init_request req = {label, so_pin, so_len, user_pin, user_len};
    int guard = layers_guard_take(true);
    CK_RV rv = provision(module, &req, false, serial, err, errsize);

    layers_guard_drop(guard);
    return rv;
}

/* See layers.h: provision() beside tokens with the same label. */
CK_RV layers_token_provision_alongside(layers_module *module, const char *label, const char *so_pin,
                                       size_t so_len, const char *user_pin, size_t user_len,
                                       char serial[17], char *err, size_t errsize)
{
    const init_request req = {label, so_pin, so_len, user_pin, user_len};
    int guard = layers_guard_take(true);
    CK_RV rv = provision(module, &req, true, serial, err, errsize);

    layers_guard_drop(guard);
    return rv;
}

/*
 * Initialises token again (wiping it) with its SO PIN, under label (the
 * current one when NULL), and sets the user PIN. Logs the token out and
 * closes its sessions first. Returns CKR_OK with serial;
 * CKR_ARGUMENTS_BAD; CKR_TOKEN_NOT_PRESENT; the failing step's backend
 * code (CKR_PIN_INCORRECT from C_InitToken for a wrong SO PIN, the token
 * then untouched; CKR_SESSION_EXISTS when someone else has a session on
 * it); CKR_FUNCTION_FAILED at a test fault point. err says what failed.
 * No lock; the caller keeps other threads off the token.
 */
static CK_RV reinit(layers_token *token, const char *label, const char *so_pin, size_t so_len,
                    const char *user_pin, size_t user_len, char serial[17], char *err,
                    size_t errsize)
{
    char current[LABEL_FIELD + 1];
    init_request req = {label, so_pin, so_len, user_pin, user_len};
    CK_TOKEN_INFO info;
    layers_module *module;
    CK_SLOT_ID slot;
    CK_RV rv = CKR_ARGUMENTS_BAD;

    if (token == NULL || serial == NULL) {
        goto bad;
    }
    serial[0] = '\0';
    module = layers_token_module(token);
    layers_token_logout(token);
    layers_module_close_sessions(module, token);
    rv = layers_token_slot(token, &slot);
    if (rv == CKR_OK) {
        rv = module->funcs->C_GetTokenInfo(slot, &info);
    }
    if (rv != CKR_OK) {
        set_error(err, errsize, "%s: the token to initialise again: %s", module->path,
                  layers_rv_name(rv));
        return rv;
    }
    if (label == NULL) {
        layers_field_to_string(info.label, sizeof(info.label), current, sizeof(current));
        req.label = current;
    }
    if (!request_usable(&req)) {
        rv = CKR_ARGUMENTS_BAD;
        goto bad;
    }
    return init_slot(module->funcs, slot, &req, serial, err, errsize);

bad:
    set_error(err, errsize,
              "initialising a token again needs the token, a 1 to 32 byte label "
              "not ending in a blank, its SO PIN and a user PIN");
    return rv;
}

/* reinit() under the backend guard, held exclusively (guard.c). */
CK_RV layers_token_reinit(layers_token *token, const char *label, const char *so_pin, size_t so_len,
                          const char *user_pin, size_t user_len, char serial[17], char *err,
                          size_t errsize)
{
    int guard = layers_guard_take(true);
    CK_RV rv = reinit(token, label, so_pin, so_len, user_pin, user_len, serial, err, errsize);

    layers_guard_drop(guard);
    return rv;
}
