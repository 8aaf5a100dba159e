/*
 * token.c - one layer's token inside a backend module.
 *
 * A token is named by label and/or serial, never by slot: the slot where
 * it was last seen is cached, checked before each use, and the module's
 * slot list is scanned again when the cached slot no longer shows it (or
 * the module was cycled since). While logged in, an anchor session keeps
 * the backend login alive.
 *
 * Locking: token->lock guards the cached slot and the login state. It is
 * held across backend calls only by login and logout (so two logins of
 * one token never interleave); everything else drops it before calling
 * the backend. It may be held while the module's lock is taken, never
 * the other way round (see internal.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct layers_token {
    layers_module *module;
    char *label;          /* NULL: any label */
    char *serial;         /* NULL: any serial */
    pthread_mutex_t lock; /* guards the fields below */
    bool have_slot;       /* slot is where the token was last seen */
    CK_SLOT_ID slot;      /* ... during module generation slot_generation */
    unsigned slot_generation;
    bool logged_in; /* a login is held by anchor ... */
    CK_SESSION_HANDLE anchor;
    unsigned login_generation; /* ... made during this generation */
};

/* Whether the backend's token description names this token. Only
 * initialised tokens have a name to match. */
static bool matches(const layers_token *token, const CK_TOKEN_INFO *info)
{
    char label[sizeof(info->label) + 1], serial[sizeof(info->serialNumber) + 1];

    if ((info->flags & CKF_TOKEN_INITIALIZED) == 0) {
        return false;
    }
    layers_field_to_string(info->label, sizeof(info->label), label, sizeof(label));
    layers_field_to_string(info->serialNumber, sizeof(info->serialNumber), serial, sizeof(serial));
    return (token->label == NULL || strcmp(token->label, label) == 0) &&
           (token->serial == NULL || strcmp(token->serial, serial) == 0);
}

/* Codes that mean "the token is not (or no longer) at this slot". */
static bool slot_lost(CK_RV rv)
{
    return rv == CKR_SLOT_ID_INVALID || rv == CKR_TOKEN_NOT_PRESENT ||
           rv == CKR_TOKEN_NOT_RECOGNIZED;
}

/*
 * Checks that slot shows the token. Returns CKR_OK with *info filled;
 * CKR_TOKEN_NOT_PRESENT when the slot is gone or shows another token (or
 * none); any other backend code unchanged. No lock.
 */
static CK_RV probe(const layers_token *token, CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
    CK_RV rv = token->module->funcs->C_GetTokenInfo(slot, info);

    if (slot_lost(rv)) {
        return CKR_TOKEN_NOT_PRESENT;
    }
    if (rv != CKR_OK) {
        return rv;
    }
    return matches(token, info) ? CKR_OK : CKR_TOKEN_NOT_PRESENT;
}

/*
 * Scans the module's slots for the token. Returns CKR_OK with *slot and
 * *info; CKR_TOKEN_NOT_PRESENT when no slot shows it; CKR_HOST_MEMORY or
 * the backend's C_GetSlotList code. No lock.
 */
static CK_RV scan(const layers_token *token, CK_SLOT_ID *slot, CK_TOKEN_INFO *info)
{
    CK_SLOT_ID *ids = NULL;
    CK_ULONG n = 0, i;
    CK_RV rv;

    rv = layers_module_slot_ids(token->module, CK_TRUE, &ids, &n);
    if (rv != CKR_OK) {
        goto out;
    }
    rv = CKR_TOKEN_NOT_PRESENT;
    for (i = 0; i < n; i++) {
        if (probe(token, ids[i], info) == CKR_OK) {
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
 * Finds the token's slot for module generation gen, trusting the cache
 * only after probing it. Takes token->lock around the cache unless
 * lock_held (then the caller holds it). Returns as scan().
 */
static CK_RV find_slot(layers_token *token, unsigned gen, bool lock_held, CK_SLOT_ID *slot,
                       CK_TOKEN_INFO *info)
{
    CK_SLOT_ID cached = 0;
    bool have;
    CK_RV rv = CKR_TOKEN_NOT_PRESENT;

    if (!lock_held) {
        pthread_mutex_lock(&token->lock);
    }
    have = token->have_slot && token->slot_generation == gen;
    cached = token->slot;
    if (!lock_held) {
        pthread_mutex_unlock(&token->lock);
    }

    if (have) {
        rv = probe(token, cached, info);
        *slot = cached;
    }
    if (rv == CKR_TOKEN_NOT_PRESENT) {
        rv = scan(token, slot, info);
    }

    if (!lock_held) {
        pthread_mutex_lock(&token->lock);
    }
    if (rv == CKR_OK) {
        token->have_slot = true;
        token->slot = *slot;
        token->slot_generation = gen;
    } else if (rv == CKR_TOKEN_NOT_PRESENT) {
        token->have_slot = false;
    }
    if (!lock_held) {
        pthread_mutex_unlock(&token->lock);
    }
    return rv;
}

/*
 * Opens a backend session on the token (CKF_SERIAL_SESSION added) and
 * records it with the module. When the slot turns out to be gone at
 * C_OpenSession, finds the token again once. Returns CKR_OK with
 * *session; CKR_TOKEN_NOT_PRESENT; CKR_HOST_MEMORY; or the backend's
 * code. Takes token->lock briefly unless lock_held.
 */
static CK_RV open_session(layers_token *token, CK_FLAGS flags, bool lock_held,
                          CK_SESSION_HANDLE *session)
{
    CK_FUNCTION_LIST *funcs = token->module->funcs;
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
    CK_TOKEN_INFO info;
    CK_SLOT_ID slot;
    unsigned gen;
    int attempt;
    CK_RV rv = CKR_TOKEN_NOT_PRESENT;

    for (attempt = 0; attempt < 2; attempt++) {
        gen = layers_module_generation(token->module);
        rv = find_slot(token, gen, lock_held, &slot, &info);
        if (rv != CKR_OK) {
            return rv;
        }
        rv = funcs->C_OpenSession(slot, flags | CKF_SERIAL_SESSION, NULL, NULL, &handle);
        if (!slot_lost(rv)) {
            break;
        }
    }
    if (slot_lost(rv)) {
        return CKR_TOKEN_NOT_PRESENT;
    }
    if (rv != CKR_OK) {
        return rv;
    }
    rv = layers_module_track(token->module, token, handle, gen);
    if (rv == CKR_HOST_MEMORY) {
        funcs->C_CloseSession(handle);
    }
    /* CKR_SESSION_CLOSED: the module was cycled meanwhile, so the handle
     * is already dead and may even name someone else's new session. */
    if (rv == CKR_OK) {
        *session = handle;
    }
    return rv;
}

/*
 * Makes the handle. Returns CKR_OK with *out; CKR_ARGUMENTS_BAD when
 * module or out is NULL, both names are NULL, or a name is longer than
 * its PKCS#11 field (32 bytes of label, 16 of serial) so it could never
 * match; CKR_HOST_MEMORY; CKR_CANT_LOCK.
 */
CK_RV layers_token_new(layers_module *module, const char *label, const char *serial,
                       layers_token **out)
{
    layers_token *token = NULL;
    CK_RV rv = CKR_ARGUMENTS_BAD;

    if (out != NULL) {
        *out = NULL;
    }
    if (module == NULL || out == NULL || (label == NULL && serial == NULL) ||
        (label != NULL && strlen(label) > 32) || (serial != NULL && strlen(serial) > 16)) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    token = calloc(1, sizeof(*token));
    if (token == NULL) {
        goto out;
    }
    token->module = module;
    if ((label != NULL && (token->label = strdup(label)) == NULL) ||
        (serial != NULL && (token->serial = strdup(serial)) == NULL)) {
        goto out;
    }
    if (pthread_mutex_init(&token->lock, NULL) != 0) {
        rv = CKR_CANT_LOCK;
        goto out;
    }
    *out = token;
    token = NULL;
    rv = CKR_OK;
out:
    if (token != NULL) {
        free(token->label);
        free(token->serial);
        free(token);
    }
    return rv;
}

/* Logs out, closes every session opened through the token, frees it.
 * NULL is a no-op. */
void layers_token_free(layers_token *token)
{
    if (token == NULL) {
        return;
    }
    layers_token_logout(token);
    layers_module_close_sessions(token->module, token);
    pthread_mutex_destroy(&token->lock);
    free(token->label);
    free(token->serial);
    free(token);
}

layers_module *layers_token_module(const layers_token *token)
{
    return token->module;
}

/* The serial the token is named by, or NULL (any serial). No lock: it
 * changes only through layers_token_set_serial, whose caller keeps other
 * threads off the token. */
const char *layers_token_serial(const layers_token *token)
{
    return token->serial;
}

/*
 * Names the token by serial from now on as well as by its label (NULL:
 * any serial again) and forgets its cached slot. Returns CKR_OK;
 * CKR_ARGUMENTS_BAD (serial over 16 bytes); CKR_HOST_MEMORY (the name
 * unchanged). Takes token->lock; the caller keeps other threads off the
 * token (scans read the name without the lock).
 */
CK_RV layers_token_set_serial(layers_token *token, const char *serial)
{
    char *copy = NULL;

    if (token == NULL || (serial != NULL && strlen(serial) > 16) ||
        (serial == NULL && token->label == NULL)) {
        return CKR_ARGUMENTS_BAD;
    }
    if (serial != NULL && (copy = strdup(serial)) == NULL) {
        return CKR_HOST_MEMORY;
    }
    pthread_mutex_lock(&token->lock);
    free(token->serial);
    token->serial = copy;
    token->have_slot = false;
    pthread_mutex_unlock(&token->lock);
    return CKR_OK;
}

/* Returns CKR_OK with *slot; CKR_ARGUMENTS_BAD; CKR_TOKEN_NOT_PRESENT;
 * or a backend code. Takes token->lock briefly, not across calls. */
CK_RV layers_token_slot(layers_token *token, CK_SLOT_ID *slot)
{
    CK_TOKEN_INFO info;

    int guard;
    CK_RV rv;

    if (token == NULL || slot == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    guard = layers_guard_take(false);
    rv = find_slot(token, layers_module_generation(token->module), false, slot, &info);
    layers_guard_drop(guard);
    return rv;
}

/* As layers_token_slot, filling *info with the backend's C_GetTokenInfo. */
CK_RV layers_token_info(layers_token *token, CK_TOKEN_INFO *info)
{
    CK_SLOT_ID slot;
    int guard;
    CK_RV rv;

    if (token == NULL || info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    guard = layers_guard_take(false);
    rv = find_slot(token, layers_module_generation(token->module), false, &slot, info);
    layers_guard_drop(guard);
    return rv;
}

/* See layers.h. Reads the token's description; no lock held across it. */
CK_RV layers_token_login_required(layers_token *token, bool *required)
{
    CK_TOKEN_INFO info;
    CK_RV rv;

    if (required == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = layers_token_info(token, &info);
    if (rv == CKR_OK) {
        *required = (info.flags & CKF_LOGIN_REQUIRED) != 0;
    }
    return rv;
}

/* Whether the login recorded in token is still alive. Expects
 * token->lock held. */
static bool logged_in_inlock(const layers_token *token)
{
    return token->logged_in && token->login_generation == layers_module_generation(token->module);
}

/*
 * Logs in through the anchor session, opening it first when there is no
 * live login (read-only for CKU_USER, read-write for CKU_SO, which a
 * backend refuses with read-only sessions open). Returns CKR_OK (also
 * when the backend says CKR_USER_ALREADY_LOGGED_IN); CKR_ARGUMENTS_BAD;
 * CKR_TOKEN_NOT_PRESENT; or the backend's code unchanged, the anchor then
 * closed. The pin is not kept. Holds token->lock throughout, backend
 * calls included.
 */
CK_RV layers_token_login(layers_token *token, CK_USER_TYPE user_type, const char *pin,
                         size_t pin_len)
{
    CK_FUNCTION_LIST *funcs;
    CK_SESSION_HANDLE anchor = CK_INVALID_HANDLE;
    bool fresh = false;
    int guard;
    CK_RV rv;

    if (token == NULL || (pin == NULL && pin_len > 0)) {
        return CKR_ARGUMENTS_BAD;
    }
    funcs = token->module->funcs;
    guard = layers_guard_take(true); /* the backend may rewrite its state */
    pthread_mutex_lock(&token->lock);
    if (logged_in_inlock(token)) {
        anchor = token->anchor;
    } else {
        token->logged_in = false;
        rv = open_session(token, user_type == CKU_SO ? CKF_RW_SESSION : 0, true, &anchor);
        if (rv != CKR_OK) {
            goto out;
        }
        fresh = true;
    }
    rv = funcs->C_Login(anchor, user_type, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
    if (rv == CKR_USER_ALREADY_LOGGED_IN) {
        rv = CKR_OK;
    }
    if (rv == CKR_OK && fresh) {
        token->logged_in = true;
        token->anchor = anchor;
        token->login_generation = layers_module_generation(token->module);
    } else if (rv != CKR_OK && fresh && layers_module_untrack(token->module, token, anchor)) {
        funcs->C_CloseSession(anchor);
    }
out:
    pthread_mutex_unlock(&token->lock);
    layers_guard_drop(guard);
    return rv;
}

/*
 * Logs out of the backend and closes the anchor. Returns CKR_OK (also
 * when not logged in, or when the backend says CKR_USER_NOT_LOGGED_IN);
 * CKR_ARGUMENTS_BAD; or the backend's C_Logout code, the anchor closed
 * and the state cleared all the same. Holds token->lock throughout.
 */
CK_RV layers_token_logout(layers_token *token)
{
    CK_FUNCTION_LIST *funcs;
    CK_RV rv = CKR_OK;
    int guard;

    if (token == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    funcs = token->module->funcs;
    guard = layers_guard_take(true);
    pthread_mutex_lock(&token->lock);
    if (!logged_in_inlock(token)) {
        token->logged_in = false; /* a cycle already killed the anchor */
        goto out;
    }
    rv = funcs->C_Logout(token->anchor);
    if (rv == CKR_USER_NOT_LOGGED_IN) {
        rv = CKR_OK;
    }
    if (layers_module_untrack(token->module, token, token->anchor)) {
        funcs->C_CloseSession(token->anchor);
    }
    token->logged_in = false;
out:
    pthread_mutex_unlock(&token->lock);
    layers_guard_drop(guard);
    return rv;
}

/* Reads the login state under token->lock; the lock is not changed by
 * reading it, hence the cast. */
bool layers_token_logged_in(const layers_token *token)
{
    pthread_mutex_t *lock = (pthread_mutex_t *)&token->lock;
    bool in;

    pthread_mutex_lock(lock);
    in = logged_in_inlock(token);
    pthread_mutex_unlock(lock);
    return in;
}

/* Returns CKR_OK with *session; CKR_ARGUMENTS_BAD; CKR_TOKEN_NOT_PRESENT;
 * CKR_HOST_MEMORY; or the backend's C_OpenSession code. Takes
 * token->lock briefly, not across calls. */
CK_RV layers_token_open_session(layers_token *token, CK_FLAGS flags, CK_SESSION_HANDLE *session)
{
    int guard;
    CK_RV rv;

    if (token == NULL || session == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    guard = layers_guard_take(false);
    rv = open_session(token, flags, false, session);
    layers_guard_drop(guard);
    return rv;
}

/* Returns the backend's C_CloseSession code; CKR_SESSION_HANDLE_INVALID,
 * without calling the backend, for a session not opened through this
 * token (or already closed, or from before a cycle). */
CK_RV layers_token_close_session(layers_token *token, CK_SESSION_HANDLE session)
{
    if (token == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (!layers_module_untrack(token->module, token, session)) {
        return CKR_SESSION_HANDLE_INVALID;
    }
    return token->module->funcs->C_CloseSession(session);
}
