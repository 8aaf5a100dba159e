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
 * A PIN that proves right gives its own reservation back (guess_settle)
 * and nothing else: a correct login does NOT clear the failures before
 * it. Otherwise whoever holds one view's PIN could guess another view's
 * without bound (two wrong PINs, one right login that clears them,
 * again). Failures expire instead, one per the policy's
 * failed-login-recovery seconds (storage/failures.c: a TPM-style
 * dictionary-attack counter; a clock set back delays expiry, never resets
 * the counter); `strata unlock` clears them at once. C_SetPIN keeps its
 * reservation whatever the outcome: the new PIN is compared with every
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

/* The Argon2id turn this thread holds across its PIN evaluation
 * (guess_turn_enter), STORAGE_KDF_NONE when none. */
static _Thread_local int held_turn = STORAGE_KDF_NONE;

/* "user" or "SO", for log lines. */
static const char *kind_name(storage_pin_kind kind)
{
    return kind == STORAGE_PIN_SO ? "SO" : "user";
}

/*
 * Reserves one guess of kind on token before a PIN is evaluated. Returns
 * CKR_OK (evaluate the PIN); CKR_PIN_LOCKED (the counter is at the
 * policy's max-failed-logins, with no other PIN in flight: a counter
 * full of reservations waits for them, storage_kdf_drain); CKR_DEVICE_ERROR (the guess could not be
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
                                token->def->max_failed_logins, token->def->failed_login_recovery,
                                NULL);
    if (src == STORAGE_ERR_LOCKED && storage_kdf_drain(held_turn, token->def->max_failed_logins)) {
        /* Full, maybe only for a moment: PINs other processes are
         * evaluating hold reservations. Once none is in flight (every
         * evaluation holds a turn, and this one now holds them all), what
         * fills the counter is failures, and the answer stands. */
        src = storage_guess_reserve(engine_lib.catalog, token->def->label, kind,
                                    token->def->max_failed_logins,
                                    token->def->failed_login_recovery, NULL);
    }
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
 * Gives back the guess reserved for a PIN that proved right (or that was
 * not compared, the answer telling nothing of it), and only that one. A
 * write that fails is tried once more; a second failure is logged and
 * leaves the reservation counted (the safe side). Expects L.
 */
void guess_settle(engine_token *token, storage_pin_kind kind)
{
    storage_rc src = storage_guess_settle(engine_lib.catalog, token->def->label, kind, false);

    if (src != STORAGE_OK && src != STORAGE_ERR_READ_ONLY) {
        /* Once more: a right PIN left counted is a failure the honest
         * user pays for until it expires (a right login clears nothing). */
        src = storage_guess_settle(engine_lib.catalog, token->def->label, kind, false);
    }

    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR,
                   "token \"%s\": a right %s PIN stays counted as a failed login: %s",
                   token->def->label, kind_name(kind), storage_strerror(src));
    }
}

/* See internal.h. Guesses are reserved while the turn is held, so the
 * reservations pending at once stay at most max-failed-logins: with no
 * failure recorded, right PINs logging in together never lock one
 * another out. */
int guess_turn_enter(const engine_token *token)
{
    held_turn = storage_kdf_enter_max(token->def->max_failed_logins);
    return held_turn;
}

/* Gives back the turn guess_turn_enter took. */
void guess_turn_leave(int turn)
{
    held_turn = STORAGE_KDF_NONE;
    storage_kdf_leave(turn);
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

/* The flags of counter kind of token as the next guess would find it
 * (expired failures off); none when it cannot be read. */
static CK_FLAGS kind_flags(engine_token *token, storage_pin_kind kind, CK_FLAGS count_low,
                           CK_FLAGS final_try, CK_FLAGS locked)
{
    storage_pin_count c;

    if (storage_pin_counter(engine_lib.catalog, token->def->label, kind,
                            token->def->failed_login_recovery, &c) != STORAGE_OK) {
        return 0;
    }
    return counter_flags(c.failures, token->def->max_failed_logins, count_low, final_try, locked);
}

/*
 * The PIN counter flags of CK_TOKEN_INFO: CKF_USER_PIN_COUNT_LOW /
 * _FINAL_TRY / _LOCKED from the user PINs' counter, CKF_SO_PIN_COUNT_LOW /
 * _FINAL_TRY / _LOCKED from the SO PIN's, both as the next guess would
 * find them (so a lock that expired no longer shows). A counter that
 * cannot be read sets no flag. Reads the catalog; takes no lock.
 */
CK_FLAGS guess_token_flags(engine_token *token)
{
    if (engine_lib.catalog == NULL) {
        return 0;
    }
    return kind_flags(token, STORAGE_PIN_USER, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY,
                      CKF_USER_PIN_LOCKED) |
           kind_flags(token, STORAGE_PIN_SO, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY,
                      CKF_SO_PIN_LOCKED);
}
