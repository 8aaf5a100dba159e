/*
 * login.c - C_Login, C_Logout, C_InitPIN, C_SetPIN: the view a PIN selects.
 *
 * C_Login(CKU_USER, pin) runs Argon2id once (storage_view_login), which
 * answers the view whose tag the PIN derives and that view's unwrapped
 * layer credentials; each layer of the view whose module is loaded then
 * logs in to its backend token with its credential. A layer whose backend
 * login fails is logged and left out of the view until logout; the rest
 * of the view works. The credentials stay in sodium memory until logout so
 * a layer whose backend was cycled can log in again (login_replay).
 * A credential the backend refuses (its PIN changed or locked behind
 * Strata's back) is marked stale in the catalog under a lock shared by
 * every process of the catalog (login_layers.c), and left out, untried,
 * until it is re-enrolled; each login records in the catalog which layers
 * it left out and why (strata status). The
 * login state is the token's, shared by all its sessions (PKCS#11), so a
 * session's state follows it.
 *
 * Every PIN guess is counted before it is evaluated (guess.c): C_Login of
 * every user type and C_SetPIN reserve one guess in the catalog first; at
 * the policy's max-failed-logins they answer CKR_PIN_LOCKED without trying
 * the PIN, and a guess that cannot be recorded answers CKR_DEVICE_ERROR
 * without trying it. A right PIN gives back only its own guess: it clears
 * no failure before it (failures expire, guess.c). A PIN
 * whose length is outside the policy's range is a wrong PIN
 * (CKR_PIN_INCORRECT: CKR_PIN_LEN_RANGE is not a C_Login code). A NULL PIN
 * is CKR_ARGUMENTS_BAD whatever its length (no protected authentication
 * path), counted nowhere.
 *
 * Lazy layers (provision="lazy"): before any backend login, each lazy
 * layer of the selected view is made sure to exist (provision.c: it may
 * provision, repair or reconnect); the layer then logs in with the user
 * PIN generated for it, read from the catalog under the view's key. No
 * free slot even after a cycle fails the login with CKR_DEVICE_MEMORY;
 * any other provisioning failure with CKR_DEVICE_ERROR (the PIN was
 * right: neither counts as a failure). A token another process made that
 * stays invisible (the backend could not be restarted) leaves the layer
 * out, logged.
 *
 * Security officer (documented in strata-pkcs11(8)):
 *   - C_Login(CKU_SO) checks the SO PIN `strata enroll --so` set (one
 *     Argon2id, storage_so_check), after the spec's
 *     CKR_SESSION_READ_ONLY_EXISTS check. No SO PIN set: CKR_PIN_INCORRECT.
 *     SO failures have their own counter (an SO lockout does not lock the
 *     users out; `strata unlock --so` clears it). The SO sees the public
 *     view (with public-view="none", its session objects only, as before
 *     login) and no layer logs in.
 *   - C_InitPIN (SO) sets the public view's PIN when every layer of it
 *     is provisioned by Strata and none of its tokens exists yet (the
 *     view is enrolled with the PIN; storage_view_init_pin). Otherwise
 *     CKR_FUNCTION_NOT_SUPPORTED: a view also needs its layers' PINs,
 *     which the SO does not have, and provisioned tokens' PINs are sealed
 *     under the view's key. The new PIN is a counted user guess (it is
 *     compared with the other views').
 *   - C_SetPIN while the SO is logged in changes the SO PIN and re-seals
 *     to the new administrator key every provisioned token's SO PIN
 *     sealed to the old one (storage_so_passwd); the old PIN is a guess
 *     on the SO counter.
 * C_SetPIN as the user, or in a R/W public session: the old PIN selects
 * the view (it must be the logged-in one when a user is logged in; a view
 * removed from the policy is a wrong PIN) and storage_view_passwd_known
 * re-seals the view under the new PIN. Each change
 * costs one guess, kept: the new PIN is compared with the other views'
 * (a new PIN that selects another view answers CKR_PIN_INCORRECT).
 *   - CKU_CONTEXT_SPECIFIC: the view PIN is checked again (one Argon2id,
 *     compared with the logged-in view's tag: a wrong PIN and another
 *     view's PIN do the same work) and the layer credential of the active
 *     operation's key is given to that backend session.
 *   - C_InitToken: CKR_FUNCTION_NOT_SUPPORTED (slot.c).
 *
 * Locks: the login lock (L) is held for a whole C_Login/C_Logout, Argon2id
 * and backend logins included, so logins serialise; the token lock (K)
 * only to switch the view. Order: S -> L -> K. L is always taken with
 * gate_lock_login (backend/backend.h), which drops the thread's shared hold of
 * the backend gate while it waits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ops.h"

/* The view a C_LoginUser names: its username, not terminated. */
typedef struct {
    const char *text;
    size_t len;
} login_name;

/* What the security officer sees when the token has no public view: a
 * view with no layer (nothing to find, nothing to use). */
static rules_view so_view_def = {.id = (char *)""};
static engine_view so_view = {.def = &so_view_def};

/* True when some session on token's slot is read-only. */
static bool read_only_exists(const engine_token *token)
{
    CK_ULONG rw = 0;
    CK_ULONG all = session_count(token->slot_id, &rw);

    return all > rw;
}

/* The view of token named id, or NULL. */
static engine_view *view_named(engine_token *token, const char *id)
{
    for (size_t i = 0; i < token->n_views; i++) {
        if (strcmp(token->views[i].def->id, id) == 0) {
            return &token->views[i];
        }
    }
    return NULL;
}

/* storage_view_known_fn: whether the policy of token (ctx) has view. */
bool login_policy_has_view(const char *view, void *ctx)
{
    return view_named(ctx, view) != NULL;
}

/* 1 when token has an enrolled view, 0 when none, -1 on a catalog error.
 * Constant cost: C_Login asks it every time. */
static int enrolled_views(engine_token *token)
{
    bool any = false;

    if (engine_lib.catalog == NULL ||
        storage_views_any(engine_lib.catalog, token->def->label, &any) != STORAGE_OK) {
        return -1;
    }
    return any ? 1 : 0;
}

/*
 * The user login proper. Expects L; the token is not logged in. The guess
 * is reserved before anything else looks at the PIN (guess.c) and stays
 * counted unless the PIN selects a view of the policy. Returns CKR_OK;
 * CKR_PIN_LOCKED; CKR_USER_PIN_NOT_INITIALIZED; CKR_PIN_INCORRECT;
 * CKR_DEVICE_ERROR (the guess could not be recorded); CKR_GENERAL_ERROR
 * (no usable catalog); CKR_HOST_MEMORY; and CKR_DEVICE_MEMORY /
 * CKR_DEVICE_ERROR from lazy provisioning. name (C_LoginUser) limits the
 * views to the one it names: any other answers as a wrong PIN does, after
 * the same work (storage_view_login_as).
 */
static CK_RV login_user(engine_token *token, const char *pin, size_t pin_len,
                        const login_name *name)
{
    const rules_token *def = token->def;
    storage_login *login = NULL;
    engine_view *view;
    storage_rc src;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (engine_lib.catalog == NULL) {
        goto out;
    }
    rv = CKR_USER_PIN_NOT_INITIALIZED;
    if (enrolled_views(token) == 0) {
        goto out;
    }
    rv = guess_reserve(token, STORAGE_PIN_USER);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_PIN_INCORRECT;
    if (pin_len < def->min_pin_len || pin_len > def->max_pin_len) {
        goto out; /* counted */
    }
    /* A view enrolled but since removed from the policy is refused inside
     * storage, before its credentials are read or opened: its PIN does a
     * wrong PIN's work, so timing does not tell it was ever enrolled. */
    src = storage_view_login_known(engine_lib.catalog, def->label, name != NULL ? name->text : NULL,
                                   name != NULL ? name->len : 0, pin, pin_len,
                                   login_policy_has_view, token, &login);
    if (src == STORAGE_ERR_PIN_INCORRECT) {
        goto out; /* counted */
    }
    if (src != STORAGE_OK) {
        /* Stopped before the PIN was compared, or after it proved right: the
         * answer tells nothing of the PIN, so the guess is given back (a
         * wrong PIN is always STORAGE_ERR_PIN_INCORRECT). */
        guess_settle(token, STORAGE_PIN_USER);
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": login: %s", def->label, storage_strerror(src));
        rv = src == STORAGE_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
        goto out;
    }
    view = view_named(token, storage_login_view(login));
    if (view == NULL) {
        engine_log(ENGINE_LOG_WARNING,
                   "token \"%s\": the PIN selects view \"%s\", which the "
                   "policy no longer has",
                   def->label, storage_login_view(login));
        goto out; /* CKR_PIN_INCORRECT, counted like any PIN that selects no view */
    }
    guess_settle(token, STORAGE_PIN_USER);
    rv = login_provision_lazy(token, view, login);
    if (rv != CKR_OK) {
        goto out;
    }
    login_layers(token, view, login);
    token->login = login;
    login = NULL;
    engine_mutex_lock(token->lock);
    token->current = view;
    token->user = CKU_USER;
    token->login_epoch++;
    engine_mutex_unlock(token->lock);
    handles_unbind(token); /* backends may renumber private objects at login */
    rv = CKR_OK;
out:
    storage_login_free(login);
    return rv;
}

/*
 * The SO login (see the file comment). Expects L; nobody is logged in.
 * The guess is reserved on the SO counter first (guess.c). Returns CKR_OK;
 * CKR_PIN_INCORRECT (wrong, or no SO PIN set: counted); CKR_PIN_LOCKED;
 * CKR_DEVICE_ERROR (the guess could not be recorded); CKR_HOST_MEMORY;
 * CKR_GENERAL_ERROR (no usable catalog).
 */
static CK_RV login_so(engine_token *token, const char *pin, size_t pin_len)
{
    storage_rc src;
    CK_RV rv = guess_reserve(token, STORAGE_PIN_SO);

    if (rv != CKR_OK) {
        return rv;
    }
    src = pin_len == 0 ? STORAGE_ERR_PIN_INCORRECT
                       : storage_so_check(engine_lib.catalog, token->def->label, pin, pin_len);
    if (src == STORAGE_ERR_PIN_INCORRECT || src == STORAGE_ERR_NOT_FOUND ||
        src == STORAGE_ERR_ARGS) {
        return CKR_PIN_INCORRECT;
    }
    if (src != STORAGE_OK) {
        guess_settle(token, STORAGE_PIN_SO); /* as in login_user: nothing told */
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": SO login: %s", token->def->label,
                   storage_strerror(src));
        return src == STORAGE_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
    }
    guess_settle(token, STORAGE_PIN_SO);
    engine_mutex_lock(token->lock);
    token->current = token->public_view != NULL ? token->public_view : &so_view;
    token->user = CKU_SO;
    token->login_epoch++;
    engine_mutex_unlock(token->lock);
    return CKR_OK;
}

/* The active operation of s whose key a context-specific login is for:
 * the first active one in engine_op order, or NULL. */
static const crypto_op *active_op(const engine_session *s)
{
    for (size_t i = 0; i < ENGINE_OP_COUNT; i++) {
        if (s->ops[i].active && i != ENGINE_OP_DIGEST) {
            return &s->ops[i];
        }
    }
    return NULL;
}

/*
 * Whether pin selects the logged-in view (storage_login_matches: the same
 * work for a wrong PIN and another view's PIN, nothing unsealed). Expects
 * L and a guess reserved. Returns CKR_OK; CKR_PIN_INCORRECT (the guess
 * stays counted); CKR_HOST_MEMORY; CKR_GENERAL_ERROR.
 */
CK_RV login_pin_is_current(engine_token *token, const char *pin, size_t pin_len)
{
    bool match = false;
    storage_rc src = storage_login_matches(engine_lib.catalog, token->login, pin, pin_len, &match);

    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR, "token \"%s\": PIN check: %s", token->def->label,
                   storage_strerror(src));
        return src == STORAGE_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
    }
    return match ? CKR_OK : CKR_PIN_INCORRECT;
}

/*
 * CKU_CONTEXT_SPECIFIC (see the file comment). Expects S and L. Returns
 * CKR_OK; CKR_OPERATION_NOT_INITIALIZED for any improper use (not logged
 * in, or no operation active: v2.40 gives that code, and
 * CKR_USER_NOT_LOGGED_IN is not among C_Login's); the codes of
 * guess_reserve (CKR_PIN_LOCKED, CKR_DEVICE_ERROR); CKR_PIN_INCORRECT
 * (counted); or the backend's code.
 */
static CK_RV login_context(engine_session *s, const char *pin, size_t pin_len)
{
    engine_token *token = s->token;
    const crypto_op *op = active_op(s);
    const storage_cred *cred;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    session_view_state st;
    CK_RV rv = CKR_OPERATION_NOT_INITIALIZED;

    session_view(s, &st);
    if (!st.logged_in || token->login == NULL || op == NULL) {
        goto out;
    }
    rv = guess_reserve(token, STORAGE_PIN_USER);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = login_pin_is_current(token, pin, pin_len);
    if (rv != CKR_PIN_INCORRECT) {
        guess_settle(token, STORAGE_PIN_USER); /* right, or not compared */
    }
    if (rv != CKR_OK) {
        goto out;
    }
    cred = storage_login_find(token->login, token->layers[op->layer].def->id);
    if (cred == NULL) {
        goto out;
    }
    /* The operation keeps its backend session open; backend_session is
     * not used here because it may replay a login, which takes L. */
    rv = CKR_OPERATION_NOT_INITIALIZED;
    if (!s->backends[op->layer].open || token->layers[op->layer].token == NULL) {
        goto out;
    }
    fl = layers_module_functions(layers_token_module(token->layers[op->layer].token));
    h = s->backends[op->layer].handle;
    rv = fl->C_Login(h, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)cred->pin, (CK_ULONG)cred->pin_len);
    rv = backend_rv(s, op->layer, rv);
out:
    return rv;
}

/*
 * C_Login, and C_LoginUser when name is not NULL (CKU_USER: the view it
 * names). Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_USER_TYPE_INVALID; CKR_ARGUMENTS_BAD (a NULL pin, whatever its
 * length: Strata has no protected authentication path; a NULL username;
 * nothing counted);
 * CKR_USER_ALREADY_LOGGED_IN; CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
 * CKR_SESSION_READ_ONLY_EXISTS (SO with read-only sessions open);
 * CKR_PIN_INCORRECT; CKR_PIN_LOCKED; CKR_USER_PIN_NOT_INITIALIZED; and the
 * codes of login_context.
 */
static CK_RV login_as(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                      CK_ULONG pin_len, const login_name *name)
{
    engine_session *s;
    engine_token *token;
    session_view_state st;
    int turn = STORAGE_KDF_NONE;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    token = s->token;
    rv = CKR_USER_TYPE_INVALID;
    if (user_type != CKU_USER && user_type != CKU_SO && user_type != CKU_CONTEXT_SPECIFIC) {
        goto out;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (pin == NULL || (name != NULL && name->text == NULL)) {
        goto out;
    }
    gate_lock_login(token);
    /* One Argon2id turn (storage/kdf.c) held across the whole evaluation,
     * the guess reservation included, and at most max-failed-logins turns
     * at once (guess_turn_enter): many clients logging in together with
     * right PINs never fill the counter with their pending reservations
     * and lock one another out. */
    turn = guess_turn_enter(token);
    if (user_type == CKU_CONTEXT_SPECIFIC) {
        rv = login_context(s, (const char *)pin, pin_len);
        goto unlock;
    }
    session_view(s, &st);
    if (st.logged_in) {
        rv = st.user == user_type ? CKR_USER_ALREADY_LOGGED_IN : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
        goto unlock;
    }
    if (user_type == CKU_SO) {
        rv = read_only_exists(token) ? CKR_SESSION_READ_ONLY_EXISTS
                                     : login_so(token, (const char *)pin, pin_len);
        goto unlock;
    }
    rv = login_user(token, (const char *)pin, pin_len, name);
unlock:
    guess_turn_leave(turn);
    engine_mutex_unlock(token->login_lock);
out:
    session_release(s);
    return rv;
}

CK_RV login_login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                  CK_ULONG pin_len)
{
    return login_as(session, user_type, pin, pin_len, NULL);
}

/*
 * C_LoginUser (PKCS#11 3.0). For CKU_USER the username is the id of the
 * view to log in to: only that view's tag is compared with the PIN's, and
 * a username that names no view, or another view than the PIN's, answers
 * CKR_PIN_INCORRECT with the guess counted, after the same work as a
 * wrong PIN. For CKU_SO and CKU_CONTEXT_SPECIFIC the username is not
 * looked at: there is one SO, and the context login is for the logged-in
 * view. Returns C_Login's codes; CKR_ARGUMENTS_BAD also for a NULL
 * username (nothing counted).
 */
CK_RV login_login_user(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin,
                       CK_ULONG pin_len, CK_UTF8CHAR_PTR username, CK_ULONG username_len)
{
    login_name name = {(const char *)username, username_len};

    return login_as(session, user_type, pin, pin_len, user_type == CKU_USER ? &name : NULL);
}

/* Logs token out. Expects L. Switches to the public view first, so new
 * calls stop using the layers, then logs out of the layers and wipes the
 * credentials. */
static void logout_inlock(engine_token *token)
{
    engine_mutex_lock(token->lock);
    token->current = NULL;
    token->user = 0;
    token->login_epoch++;
    engine_mutex_unlock(token->lock);
    for (size_t i = 0; i < token->n_layers; i++) {
        engine_layer *layer = &token->layers[i];
        if (layer->token != NULL && token->login != NULL &&
            (login_layer_is_lazy(layer) ||
             storage_login_find(token->login, layer->def->id) != NULL)) {
            backend_state_write(layer);
            layers_token_logout(layer->token);
            backend_state_done(layer);
        }
        login_layer_set_failed(layer, false);
    }
    storage_login_free(token->login);
    token->login = NULL;
    handles_unbind(token);
}

/* Logs token out if it is logged in (last session closed, C_Finalize).
 * Takes L and K. */
void login_logout_token(engine_token *token)
{
    if (token->login_lock == NULL) {
        return;
    }
    gate_lock_login(token);
    if (token->current != NULL || token->login != NULL) {
        logout_inlock(token);
    }
    engine_mutex_unlock(token->login_lock);
}

/*
 * C_Logout. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_USER_NOT_LOGGED_IN. Searches and crypto operations of every
 * session begun before it end (find.c and crypto.c check the login
 * epoch), so nothing begun in one view finishes in another.
 */
CK_RV login_logout(CK_SESSION_HANDLE session)
{
    engine_session *s;
    session_view_state st;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    gate_lock_login(s->token);
    session_view(s, &st);
    rv = CKR_USER_NOT_LOGGED_IN;
    if (st.logged_in) {
        logout_inlock(s->token);
        rv = CKR_OK;
    }
    engine_mutex_unlock(s->token->login_lock);
    session_release(s);
    return rv;
}

/*
 * The login flags of CK_TOKEN_INFO: CKF_LOGIN_REQUIRED always;
 * CKF_USER_PIN_INITIALIZED when some view is enrolled; the counters' flags
 * of guess_token_flags. Reads the catalog; takes no lock.
 */
CK_FLAGS login_token_flags(engine_token *token)
{
    CK_FLAGS flags = CKF_LOGIN_REQUIRED;

    if (enrolled_views(token) > 0) {
        flags |= CKF_USER_PIN_INITIALIZED;
    }
    return flags | guess_token_flags(token);
}
