/*
 * guess.c - every PIN guess is counted, and bounded, before it is evaluated.
 *
 * Every call that compares a PIN with the catalog (C_Login of any user
 * type, C_SetPIN) first reserves one guess in the catalog
 * (storage_guess_reserve: one BEGIN IMMEDIATE transaction that reads the
 * counter and, below the policy's max-failed-logins, adds one). Only then
 * does Argon2id run. So:
 *   - processes racing each other never evaluate more than
 *     max-failed-logins wrong PINs between two resets (the reservation is
 *     atomic across processes, not read-derive-increment);
 *   - a guess that cannot be recorded (read-only catalog, full disk, a
 *     lock held past the busy timeout) is never evaluated: the call
 *     answers CKR_DEVICE_ERROR, the right PIN included (fail closed);
 *   - at the limit the call answers CKR_PIN_LOCKED without evaluating.
 * A PIN that proves right gives its reservation back (guess_settle): a
 * successful C_Login clears the counter of its PIN kind, a successful
 * CKU_CONTEXT_SPECIFIC login only gives back its own guess. C_SetPIN keeps
 * its reservation whatever the outcome: the new PIN is compared with every
 * other view's, and that comparison is a guess too (login.c).
 *
 * The user PINs (every view's) share one counter; the SO PIN has its own,
 * so that neither lockout locks the other out. The counters are per
 * virtual token.
 *
 * Locks: none of the engine's; expects L (the login lock) held by the
 * caller so that one process's logins stay serialised as before.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ops.h"

/* "user" or "SO", for log lines. */
static const char *kind_name(storage_pin_kind kind)
{
    return kind == STORAGE_PIN_SO ? "SO" : "user";
}

/*
 * Reserves one guess of kind on token before a PIN is evaluated. Returns
 * CKR_OK (evaluate the PIN); CKR_PIN_LOCKED (the counter is at the
 * policy's max-failed-logins); CKR_DEVICE_ERROR (the guess could not be
 * recorded: do not evaluate); CKR_HOST_MEMORY; CKR_GENERAL_ERROR (no
 * catalog). Expects L.
 */
CK_RV guess_reserve(engine_token *token, storage_pin_kind kind)
{
    storage_rc src;

    if (engine_lib.catalog == NULL) {
        return CKR_GENERAL_ERROR;
    }
    src = storage_guess_reserve(engine_lib.catalog, token->def->label, kind,
                                token->def->max_failed_logins, NULL);
    switch (src) {
    case STORAGE_OK:
        return CKR_OK;
    case STORAGE_ERR_LOCKED:
        return CKR_PIN_LOCKED;
    case STORAGE_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    default:
        engine_log(ENGINE_LOG_ERROR,
                   "token \"%s\": cannot record a %s PIN attempt (%s): the PIN is not tried",
                   token->def->label, kind_name(kind), storage_strerror(src));
        return CKR_DEVICE_ERROR;
    }
}

/*
 * Gives back the guess reserved for a PIN that proved right: with clear
 * (a successful C_Login), the counter of kind goes to zero; else only the
 * caller's own reservation is taken off. A failure to write is logged and
 * leaves the reservation counted (the safe side). Expects L.
 */
void guess_settle(engine_token *token, storage_pin_kind kind, bool clear)
{
    storage_rc src = storage_guess_settle(engine_lib.catalog, token->def->label, kind, clear);

    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR,
                   "token \"%s\": a right %s PIN stays counted as a failed login: %s",
                   token->def->label, kind_name(kind), storage_strerror(src));
    }
}

/* The CK_TOKEN_INFO flags of a counter at failures under limit max:
 * count_low after a failure, final_try one failure before the limit,
 * locked at the limit. */
static CK_FLAGS counter_flags(unsigned failures, unsigned max, CK_FLAGS count_low,
                              CK_FLAGS final_try, CK_FLAGS locked)
{
    if (failures == 0) {
        return 0;
    }
    if (failures >= max) {
        return count_low | locked;
    }
    return count_low | (failures + 1 == max ? final_try : 0);
}

/*
 * The PIN counter flags of CK_TOKEN_INFO: CKF_USER_PIN_COUNT_LOW /
 * _FINAL_TRY / _LOCKED from the user PINs' counter, CKF_SO_PIN_COUNT_LOW /
 * _FINAL_TRY / _LOCKED from the SO PIN's. A counter that cannot be read
 * sets no flag. Reads the catalog; takes no lock.
 */
CK_FLAGS guess_token_flags(engine_token *token)
{
    unsigned max = token->def->max_failed_logins;
    unsigned user = 0, so = 0;
    CK_FLAGS flags = 0;

    if (engine_lib.catalog == NULL) {
        return 0;
    }
    if (storage_pin_failures(engine_lib.catalog, token->def->label, STORAGE_PIN_USER, &user) ==
        STORAGE_OK) {
        flags |= counter_flags(user, max, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY,
                               CKF_USER_PIN_LOCKED);
    }
    if (storage_pin_failures(engine_lib.catalog, token->def->label, STORAGE_PIN_SO, &so) ==
        STORAGE_OK) {
        flags |=
            counter_flags(so, max, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
    }
    return flags;
}
