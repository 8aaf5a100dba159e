/*
 * pin.c - C_InitPIN and C_SetPIN: the PINs of the views and of the
 * security officer (the rules are in login.c's file comment and in
 * strata-pkcs11(8)). Every PIN given here is a counted guess (guess.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "ops.h"

/* Whether the SO may set token's public view's PIN with C_InitPIN: the
 * token has a public view (not public-view="none": then no view is the
 * one a standard client means) and every layer of it is provisioned by Strata
 * (provision="lazy"), so the view needs no layer PIN the SO cannot give. */
static bool init_pin_possible(const engine_token *token)
{
    const engine_view *view = token->public_view;

    if (view == NULL || token->public_none || view->n_layers == 0) {
        return false;
    }
    for (size_t i = 0; i < view->n_layers; i++) {
        if (!login_layer_is_lazy(view->layers[i])) {
            return false;
        }
    }
    return true;
}

/*
 * The enrolment of C_InitPIN. Expects L and an SO session. The new PIN is
 * compared with every other view's (two views cannot share one), so it
 * costs one user guess, reserved first and kept whatever the outcome, as
 * C_SetPIN's does. Returns CKR_OK; CKR_PIN_LOCKED; CKR_DEVICE_ERROR (the
 * guess could not be recorded); CKR_PIN_INVALID (the PIN selects another
 * view: it cannot be this one's); CKR_FUNCTION_NOT_SUPPORTED (the view's
 * tokens were provisioned meanwhile); CKR_TOKEN_WRITE_PROTECTED;
 * CKR_HOST_MEMORY; CKR_GENERAL_ERROR.
 */
static CK_RV init_pin_inlock(engine_token *token, const char *pin, size_t pin_len)
{
    const rules_token *def = token->def;
    storage_kdf kdf = {def->kdf_ops, def->kdf_mem};
    bool has_tokens = false;
    storage_rc src;
    CK_RV rv = guess_reserve(token, STORAGE_PIN_USER);

    if (rv != CKR_OK) {
        return rv;
    }
    src = storage_view_init_pin(engine_lib.catalog, def->label, token->public_view->def->id, pin,
                                pin_len, &kdf, &has_tokens);
    switch (src) {
    case STORAGE_OK:
        engine_log(ENGINE_LOG_INFO, "token \"%s\": the SO set view \"%s\"'s PIN", def->label,
                   token->public_view->def->id);
        return CKR_OK;
    case STORAGE_ERR_EXISTS:
        if (has_tokens) {
            guess_settle(token, STORAGE_PIN_USER); /* refused before any comparison */
            return CKR_FUNCTION_NOT_SUPPORTED;
        }
        return CKR_PIN_INVALID;
    case STORAGE_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    case STORAGE_ERR_READ_ONLY:
        return CKR_TOKEN_WRITE_PROTECTED;
    default:
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": C_InitPIN: %s", def->label,
                   storage_strerror(src));
        return CKR_GENERAL_ERROR;
    }
}

/*
 * C_InitPIN: the SO sets the PIN of the token's public view when every
 * layer of it is provisioned by Strata and none of its tokens exists yet
 * (the PIN is enrolled; the view's tokens are provisioned at its first
 * login). Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_SESSION_READ_ONLY; CKR_USER_NOT_LOGGED_IN (only the SO may);
 * CKR_ARGUMENTS_BAD (NULL PIN: no protected authentication path);
 * CKR_PIN_LEN_RANGE (nothing counted); CKR_FUNCTION_NOT_SUPPORTED (no
 * public view, a layer not provisioned by Strata, or tokens already
 * provisioned: see strata-pkcs11(8)); and init_pin_inlock's codes.
 */
CK_RV login_init_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    engine_session *s;
    session_view_state st;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    session_view(s, &st);
    if (!session_is_rw(s)) {
        rv = CKR_SESSION_READ_ONLY;
    } else if (!st.logged_in || st.user != CKU_SO) {
        rv = CKR_USER_NOT_LOGGED_IN;
    } else if (pin == NULL) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (pin_len < s->token->def->min_pin_len || pin_len > s->token->def->max_pin_len) {
        rv = CKR_PIN_LEN_RANGE;
    } else if (engine_lib.catalog == NULL) {
        rv = CKR_GENERAL_ERROR;
    } else if (!init_pin_possible(s->token)) {
        rv = CKR_FUNCTION_NOT_SUPPORTED;
    } else {
        gate_lock_login(s->token);
        int turn = guess_turn_enter(s->token); /* as in login_login */
        session_view(s, &st);
        rv = st.logged_in && st.user == CKU_SO
                 ? init_pin_inlock(s->token, (const char *)pin, pin_len)
                 : CKR_USER_NOT_LOGGED_IN; /* logged out meanwhile */
        guess_turn_leave(turn);
        engine_mutex_unlock(s->token->login_lock);
    }
    session_release(s);
    return rv;
}

/* Maps storage_view_passwd's answer. A new PIN that selects another view
 * answers CKR_PIN_INCORRECT, like any PIN that does not select the view
 * the call is about; the guess it cost stays counted (set_pin_inlock). */
static CK_RV passwd_rv(engine_token *token, storage_rc src)
{
    switch (src) {
    case STORAGE_OK:
        return CKR_OK;
    case STORAGE_ERR_PIN_INCORRECT:
    case STORAGE_ERR_EXISTS:
        return CKR_PIN_INCORRECT;
    case STORAGE_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    case STORAGE_ERR_READ_ONLY:
        return CKR_TOKEN_WRITE_PROTECTED;
    default:
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": PIN change: %s", token->def->label,
                   storage_strerror(src));
        return CKR_GENERAL_ERROR;
    }
}

/*
 * The PIN change proper. Expects L. Every change that gets past the
 * length check costs one guess, reserved before any Argon2id run and kept
 * whatever the outcome (guess.c): the new PIN is compared with every other
 * view's PIN, so a success is also an answer to "is this another view's
 * PIN?", and must be paid for like a wrong PIN. With a user logged in,
 * the old PIN must select the logged-in view (storage_login_matches), and
 * the credentials kept for replay and provisioning are unwrapped again
 * under the new PIN (they were re-sealed). Returns CKR_OK; CKR_PIN_LOCKED;
 * CKR_PIN_LEN_RANGE (new PIN; nothing counted); CKR_PIN_INCORRECT (the old
 * PIN is wrong or a removed view's, or the new one selects another view);
 * CKR_DEVICE_ERROR
 * (the guess could not be recorded); CKR_GENERAL_ERROR; CKR_HOST_MEMORY.
 */
static CK_RV set_pin_inlock(engine_token *token, const session_view_state *st, const char *old,
                            size_t old_len, const char *new_pin, size_t new_len)
{
    const rules_token *def = token->def;
    storage_login *fresh = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (engine_lib.catalog == NULL) {
        goto out;
    }
    rv = CKR_PIN_LEN_RANGE;
    if (new_len < def->min_pin_len || new_len > def->max_pin_len) {
        goto out;
    }
    rv = guess_reserve(token, STORAGE_PIN_USER);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_PIN_INCORRECT;
    if (old_len < def->min_pin_len || old_len > def->max_pin_len) {
        goto out;
    }
    if (st->logged_in) {
        rv = login_pin_is_current(token, old, old_len);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    /* An old PIN of a view removed from the policy (still enrolled) is a
     * wrong PIN: refused inside storage before anything of that view is
     * opened, so it does a wrong PIN's work and changes nothing. */
    rv =
        passwd_rv(token, storage_view_passwd_known(engine_lib.catalog, def->label, old, old_len,
                                                   new_pin, new_len, login_policy_has_view, token));
    if (rv != CKR_OK) {
        goto out;
    }
    if (st->logged_in && token->login != NULL) {
        /* The kept credentials were sealed under the old key. */
        if (storage_view_login(engine_lib.catalog, def->label, new_pin, new_len, &fresh) ==
            STORAGE_OK) {
            storage_login_free(token->login);
            token->login = fresh;
            fresh = NULL;
        } else {
            engine_log(ENGINE_LOG_WARNING,
                       "token \"%s\": PIN changed, but the new PIN does not "
                       "log in; log in again",
                       def->label);
        }
    }
    engine_log(ENGINE_LOG_INFO, "token \"%s\": a view's PIN was changed", def->label);
out:
    storage_login_free(fresh);
    return rv;
}

/* Maps storage_so_passwd's answer (the guess stays counted unless OK). */
static CK_RV so_passwd_rv(engine_token *token, storage_rc src)
{
    switch (src) {
    case STORAGE_OK:
        return CKR_OK;
    case STORAGE_ERR_PIN_INCORRECT:
    case STORAGE_ERR_NOT_FOUND:
    case STORAGE_ERR_ARGS:
        return CKR_PIN_INCORRECT;
    case STORAGE_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    case STORAGE_ERR_READ_ONLY:
        return CKR_TOKEN_WRITE_PROTECTED;
    case STORAGE_ERR_BUSY:
        return CKR_FUNCTION_FAILED; /* changed meanwhile: nothing changed, try again */
    default:
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": SO PIN change: %s", token->def->label,
                   storage_strerror(src));
        return CKR_GENERAL_ERROR;
    }
}

/*
 * C_SetPIN by the security officer: the SO PIN changes, and with it the
 * administrator key that provisioned tokens' SO PINs are sealed to; every
 * such seal is re-made for the new key in the same catalog transaction
 * (storage_so_passwd), so the administrator keeps recovering them. The
 * old PIN is a guess on the SO counter, reserved first (guess.c) and given
 * back only when it proves right. Expects L; the SO is logged in.
 * Returns CKR_OK; CKR_PIN_LEN_RANGE (new PIN; nothing counted);
 * CKR_PIN_LOCKED; CKR_PIN_INCORRECT (counted); CKR_DEVICE_ERROR (the
 * guess could not be recorded); CKR_FUNCTION_FAILED (the SO PIN changed or
 * a token was provisioned meanwhile: nothing changed); CKR_HOST_MEMORY;
 * CKR_TOKEN_WRITE_PROTECTED; CKR_GENERAL_ERROR.
 */
static CK_RV so_set_pin_inlock(engine_token *token, const char *old, size_t old_len,
                               const char *new_pin, size_t new_len)
{
    const rules_token *def = token->def;
    storage_kdf kdf = {def->kdf_ops, def->kdf_mem};
    storage_rc src;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (engine_lib.catalog == NULL) {
        return rv;
    }
    if (new_len < def->min_pin_len || new_len > def->max_pin_len) {
        return CKR_PIN_LEN_RANGE;
    }
    rv = guess_reserve(token, STORAGE_PIN_SO);
    if (rv != CKR_OK) {
        return rv;
    }
    src = old_len == 0 ? STORAGE_ERR_PIN_INCORRECT
                       : storage_so_passwd(engine_lib.catalog, def->label, old, old_len, new_pin,
                                           new_len, &kdf);
    rv = so_passwd_rv(token, src);
    if (rv != CKR_PIN_INCORRECT) {
        /* Right, or stopped before the old PIN was compared or after it
         * proved right (storage_so_passwd answers a wrong one at once):
         * only a wrong old PIN stays counted. */
        guess_settle(token, STORAGE_PIN_SO);
    }
    if (rv == CKR_OK) {
        engine_log(ENGINE_LOG_INFO, "token \"%s\": the SO PIN was changed", def->label);
    }
    return rv;
}

/*
 * C_SetPIN. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_SESSION_READ_ONLY; CKR_ARGUMENTS_BAD; CKR_FUNCTION_NOT_SUPPORTED
 * (the SO is logged in); and set_pin_inlock's codes. Works in a user
 * session and in a R/W public session (PKCS#11: then the old PIN names
 * the user, here the view).
 */
CK_RV login_set_pin(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                    CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
    session_view_state st;
    engine_session *s;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    if (!session_is_rw(s)) {
        rv = CKR_SESSION_READ_ONLY;
    } else if (old_pin == NULL || new_pin == NULL) {
        rv = CKR_ARGUMENTS_BAD; /* no protected authentication path */
    } else {
        gate_lock_login(s->token);
        session_view(s, &st);
        int turn = guess_turn_enter(s->token); /* as in login_login */

        if (st.logged_in && st.user == CKU_SO) {
            rv = so_set_pin_inlock(s->token, (const char *)old_pin, old_len, (const char *)new_pin,
                                   new_len);
        } else {
            rv = set_pin_inlock(s->token, &st, (const char *)old_pin, old_len,
                                (const char *)new_pin, new_len);
        }
        guess_turn_leave(turn);
        engine_mutex_unlock(s->token->login_lock);
    }
    session_release(s);
    return rv;
}
