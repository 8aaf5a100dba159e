/*
 * session.c - virtual sessions: the session table, C_OpenSession,
 * C_CloseSession, C_CloseAllSessions, C_GetSessionInfo and the calls that
 * only validate a session.
 *
 * The table is guarded by one library-wide lock (T), held only for table
 * lookups and bookkeeping, never while a backend is called. Each session
 * has its own lock (S), held by session_acquire for the whole of a call on
 * it: concurrent calls on one session are serialised, calls on different
 * sessions run in parallel. A session is reference-counted under T so that
 * C_CloseSession can take it out of the table while another thread waits
 * for its lock; that thread then sees it closed
 * (CKR_SESSION_HANDLE_INVALID). Handles count up from 1 and are never
 * reused within a process.
 *
 * A call holds the backend gate (backend/backend.h) shared from session_acquire
 * to session_release, taken after S; a reconnect noted by an earlier call
 * runs first, in session_acquire, before the gate is taken.
 *
 * T is made lazily (lock-free, compare-and-swap) with engine_mutex_new, so
 * it honours the application's locking callbacks, and is freed by
 * session_finalize.
 *
 * C_GetOperationState / C_SetOperationState: CKR_FUNCTION_NOT_SUPPORTED
 * (after the session is validated). A saved state would have to carry the
 * operations of several backends and layers, and SoftHSM2, the reference
 * backend, cannot save its own; forwarding half of it would not be clean.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static _Atomic(engine_mutex *) table_lock; /* T */
static table sessions;                     /* T */
static CK_SESSION_HANDLE next_handle = 1;  /* T */

/* Takes T, making it on first use. Returns false when it cannot be made. */
static bool lock_table(void)
{
    engine_mutex *m = atomic_load(&table_lock);
    engine_mutex *expected = NULL;

    if (m == NULL) {
        if (engine_mutex_new(&m) != CKR_OK) {
            return false;
        }
        if (!atomic_compare_exchange_strong(&table_lock, &expected, m)) {
            engine_mutex_free(m);
            m = expected;
        }
    }
    engine_mutex_lock(m);
    return true;
}

static void unlock_table(void)
{
    engine_mutex_unlock(atomic_load(&table_lock));
}

/* The session with handle, or NULL. Expects T. */
static engine_session *lookup_inlock(CK_SESSION_HANDLE handle)
{
    table_node *n;

    for (n = table_first(&sessions, table_hash_u64(handle, 0)); n != NULL; n = table_next(n)) {
        engine_session *s = table_entry(n, engine_session, node);
        if (s->handle == handle) {
            return s;
        }
    }
    return NULL;
}

static void session_free(engine_session *s)
{
    engine_mutex_free(s->lock);
    free(s->backends);
    free(s);
}

/* Drops one reference; frees the session with the last. Lock-free: a
 * reference is only ever taken from the table under T, and the table
 * holds its own until the session leaves it, so a count that reaches 0
 * can no longer grow. */
static void unref(engine_session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1) {
        session_free(s);
    }
}

/*
 * Looks handle up under T and returns it with S held. Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID when unknown or closed while we waited for S;
 * CKR_HOST_MEMORY when T cannot be made.
 */
CK_RV session_acquire(CK_SESSION_HANDLE handle, engine_session **out)
{
    engine_session *s;

    if (!lock_table()) {
        return CKR_HOST_MEMORY;
    }
    s = lookup_inlock(handle);
    if (s != NULL) {
        atomic_fetch_add(&s->refs, 1);
    }
    unlock_table();
    if (s == NULL) {
        return CKR_SESSION_HANDLE_INVALID;
    }
    engine_mutex_lock(s->lock);
    if (s->closed) {
        engine_mutex_unlock(s->lock);
        unref(s);
        return CKR_SESSION_HANDLE_INVALID;
    }
    reconnect_pending();
    gate_enter();
    *out = s;
    return CKR_OK;
}

void session_release(engine_session *s)
{
    gate_leave();
    engine_mutex_unlock(s->lock);
    unref(s);
}

/* Snapshots the token's login state under K. */
void session_token_view(engine_token *token, session_view_state *state)
{
    engine_mutex_lock(token->lock);
    state->view = token->current != NULL ? token->current : token->public_view;
    state->logged_in = token->current != NULL;
    state->user = token->user;
    state->epoch = token->login_epoch;
    state->sessions_only = token->public_none && (!state->logged_in || state->user == CKU_SO);
    engine_mutex_unlock(token->lock);
}

void session_view(engine_session *s, session_view_state *state)
{
    session_token_view(s->token, state);
}

unsigned long session_login_epoch(const engine_session *s)
{
    return atomic_load(&s->token->login_epoch);
}

/* Makes the token's shared session state on its first session. Expects T. */
static CK_RV token_prepare_inlock(engine_token *token)
{
    CK_RV rv;

    if (token->login_lock == NULL) {
        rv = engine_mutex_new(&token->login_lock);
        if (rv != CKR_OK) {
            return rv;
        }
    }
    if (token->handles == NULL) {
        return handles_new(&token->handles);
    }
    return CKR_OK;
}

/* True when an SO is logged in to token (K). */
static bool so_logged_in(engine_token *token)
{
    bool so;

    engine_mutex_lock(token->lock);
    so = token->current != NULL && token->user == CKU_SO;
    engine_mutex_unlock(token->lock);
    return so;
}

/*
 * C_OpenSession. Returns CKR_OK with *session; CKR_ARGUMENTS_BAD (NULL
 * session); CKR_SLOT_ID_INVALID; CKR_SESSION_PARALLEL_NOT_SUPPORTED
 * (no CKF_SERIAL_SESSION); CKR_SESSION_READ_WRITE_SO_EXISTS (a read-only
 * session while the SO is logged in); CKR_HOST_MEMORY. No backend session
 * is opened here: they open lazily, layer by layer. Takes T.
 */
CK_RV session_open(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application, CK_NOTIFY notify,
                   CK_SESSION_HANDLE_PTR session)
{
    engine_token *token;
    engine_session *s = NULL;
    CK_RV rv = CKR_ARGUMENTS_BAD;

    (void)application;
    (void)notify; /* Strata sends no callbacks: none of its calls surrender */
    if (session == NULL) {
        goto out;
    }
    rv = CKR_SLOT_ID_INVALID;
    token = library_token(slot);
    if (token == NULL) {
        goto out;
    }
    rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    if ((flags & CKF_SERIAL_SESSION) == 0) {
        goto out;
    }
    rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
    if ((flags & CKF_RW_SESSION) == 0 && so_logged_in(token)) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        goto out;
    }
    s->backends = calloc(token->n_layers > 0 ? token->n_layers : 1, sizeof(*s->backends));
    if (s->backends == NULL) {
        goto out;
    }
    rv = engine_mutex_new(&s->lock);
    if (rv != CKR_OK) {
        goto out;
    }
    s->token = token;
    s->slot = slot;
    s->flags = flags & (CKF_RW_SESSION | CKF_SERIAL_SESSION);
    atomic_init(&s->refs, 1);
    rv = CKR_HOST_MEMORY;
    if (!lock_table()) {
        goto out;
    }
    rv = token_prepare_inlock(token);
    if (rv == CKR_OK) {
        s->handle = next_handle++;
        rv = table_insert(&sessions, &s->node, table_hash_u64(s->handle, 0));
    }
    if (rv == CKR_OK) {
        /* read under T: once T is released, another thread's
         * C_CloseAllSessions may end and free s */
        *session = s->handle;
        s = NULL;
    }
    unlock_table();
out:
    if (s != NULL) {
        session_free(s);
    }
    return rv;
}

/* True when token has no session left. Takes T. */
static bool token_idle(const engine_token *token)
{
    size_t cursor = 0;
    table_node *n = NULL;
    bool idle = true;

    if (!lock_table()) {
        return false;
    }
    while (idle && (n = table_walk(&sessions, &cursor, n)) != NULL) {
        idle = table_entry(n, engine_session, node)->token != token;
    }
    unlock_table();
    return idle;
}

/*
 * Ends s, which the caller has taken out of the table (keeping the
 * table's reference): waits for any call running on it (S), ends its
 * operations, closes its backend sessions (their session objects die
 * with them) and forgets its session objects' handles. Calls backends
 * under S only.
 */
static void session_end(engine_session *s)
{
    engine_token *token = s->token;
    CK_SESSION_HANDLE handle = s->handle;

    engine_mutex_lock(s->lock);
    gate_enter();
    s->closed = true;
    find_end(s);
    crypto_reset(s);
    backend_close_all(s);
    gate_leave();
    engine_mutex_unlock(s->lock);
    message_forget(handle);
    handles_drop_session(token, handle);
    unref(s);
}

/*
 * C_CloseSession. Returns CKR_OK or CKR_SESSION_HANDLE_INVALID. Closing
 * the token's last session logs the token out (PKCS#11: the login state
 * returns to public sessions).
 */
CK_RV session_close(CK_SESSION_HANDLE session)
{
    engine_session *s;
    engine_token *token;

    if (!lock_table()) {
        return CKR_HOST_MEMORY;
    }
    s = lookup_inlock(session);
    if (s != NULL) {
        table_remove(&sessions, &s->node);
    }
    unlock_table();
    if (s == NULL) {
        return CKR_SESSION_HANDLE_INVALID;
    }
    token = s->token;
    session_end(s);
    if (token_idle(token)) {
        gate_enter();
        login_logout_token(token);
        gate_leave();
    }
    return CKR_OK;
}

/* Takes out of the table the first session on token (any token when
 * token is NULL), or returns NULL. Takes T. */
static engine_session *take_one(const engine_token *token)
{
    size_t cursor = 0;
    table_node *n = NULL;
    engine_session *found = NULL;

    if (!lock_table()) {
        return NULL;
    }
    while (found == NULL && (n = table_walk(&sessions, &cursor, n)) != NULL) {
        engine_session *s = table_entry(n, engine_session, node);
        if (token == NULL || s->token == token) {
            found = s;
        }
    }
    if (found != NULL) {
        table_remove(&sessions, &found->node);
    }
    unlock_table();
    return found;
}

/*
 * C_CloseAllSessions: closes Strata's own sessions on slot, one by one
 * (never the backends' C_CloseAllSessions), then logs the token out.
 * Returns CKR_OK or CKR_SLOT_ID_INVALID.
 */
CK_RV session_close_all(CK_SLOT_ID slot)
{
    engine_token *token = library_token(slot);
    engine_session *s;

    if (token == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    while ((s = take_one(token)) != NULL) {
        session_end(s);
    }
    if (token_idle(token)) {
        gate_enter();
        login_logout_token(token);
        gate_leave();
    }
    return CKR_OK;
}

/*
 * C_GetSessionInfo. Returns CKR_OK; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD (NULL info). The state follows the token's login and
 * the session's RO/RW flag.
 */
CK_RV session_get_info(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info)
{
    session_view_state st;
    engine_session *s;
    bool rw;
    CK_RV rv;

    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    rv = CKR_ARGUMENTS_BAD;
    if (info != NULL) {
        session_view(s, &st);
        rw = session_is_rw(s);
        memset(info, 0, sizeof(*info));
        info->slotID = s->slot;
        info->flags = s->flags;
        if (st.logged_in && st.user == CKU_SO) {
            info->state = CKS_RW_SO_FUNCTIONS;
        } else if (st.logged_in) {
            info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
        } else {
            info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
        }
        info->ulDeviceError = 0;
        rv = CKR_OK;
    }
    session_release(s);
    return rv;
}

/* Validates session, then answers code. */
static CK_RV validated(CK_SESSION_HANDLE session, CK_RV code)
{
    engine_session *s;
    CK_RV rv = session_acquire(session, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    session_release(s);
    return code;
}

/* C_GetOperationState: not supported (see the file comment). */
CK_RV session_get_operation_state(CK_SESSION_HANDLE session, CK_BYTE_PTR state,
                                  CK_ULONG_PTR state_len)
{
    (void)state;
    (void)state_len;
    return validated(session, CKR_FUNCTION_NOT_SUPPORTED);
}

/* C_SetOperationState: not supported (see the file comment). */
CK_RV session_set_operation_state(CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len,
                                  CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key)
{
    (void)state;
    (void)state_len;
    (void)enc_key;
    (void)auth_key;
    return validated(session, CKR_FUNCTION_NOT_SUPPORTED);
}

/* Legacy calls: Strata runs no function in parallel. */
CK_RV session_get_function_status(CK_SESSION_HANDLE session)
{
    return validated(session, CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV session_cancel_function(CK_SESSION_HANDLE session)
{
    return validated(session, CKR_FUNCTION_NOT_PARALLEL);
}

/*
 * C_SessionCancel (PKCS#11 3.0): ends the session's active operations
 * that crypto_ops (bits 1 << engine_op), find and message_kinds (bits
 * 1 << message_kind) name. A cryptographic one ends in its backend
 * session too, as a logout ends it (crypto_cancel: Strata drives its
 * backends through their 2.40 functions); a message-based one holds no
 * backend state between messages (message.c). Naming an operation that
 * is not active is not an error. Returns CKR_OK;
 * CKR_SESSION_HANDLE_INVALID.
 */
CK_RV session_cancel(CK_SESSION_HANDLE session, unsigned crypto_ops, bool find,
                     unsigned message_kinds)
{
    engine_session *s;
    CK_RV rv = session_acquire(session, &s);

    if (rv != CKR_OK) {
        return rv;
    }
    for (int op = 0; op < ENGINE_OP_COUNT; op++) {
        if (crypto_ops & (1u << op)) {
            crypto_cancel(s, (engine_op)op);
        }
    }
    if (find && s->find.active) {
        find_end(s);
    }
    session_release(s);
    for (int kind = 0; kind < MESSAGE_KINDS; kind++) {
        if (message_kinds & (1u << kind)) {
            message_cancel(session, (message_kind)kind);
        }
    }
    return CKR_OK;
}

CK_RV session_function_not_supported(CK_SESSION_HANDLE session)
{
    return validated(session, CKR_FUNCTION_NOT_SUPPORTED);
}

/* Open sessions on slot (and read-write ones). Takes T; no backend. */
CK_ULONG session_count(CK_SLOT_ID slot, CK_ULONG *rw_count)
{
    size_t cursor = 0;
    table_node *n = NULL;
    CK_ULONG count = 0, rw = 0;

    if (atomic_load(&table_lock) != NULL && lock_table()) {
        while ((n = table_walk(&sessions, &cursor, n)) != NULL) {
            engine_session *s = table_entry(n, engine_session, node);
            if (s->slot == slot) {
                count++;
                rw += session_is_rw(s) ? 1 : 0;
            }
        }
        unlock_table();
    }
    if (rw_count != NULL) {
        *rw_count = rw;
    }
    return count;
}

/* Frees a token's shared session state after its last session. */
static void token_release_state(engine_token *token)
{
    login_logout_token(token);
    handles_free(token->handles);
    token->handles = NULL;
    engine_mutex_free(token->login_lock);
    token->login_lock = NULL;
}

/* C_Finalize: closes every session and frees the table and the tokens'
 * shared session state. The caller guarantees no other call runs. */
void session_finalize(void)
{
    engine_session *s;

    if (atomic_load(&table_lock) == NULL) {
        return;
    }
    while ((s = take_one(NULL)) != NULL) {
        session_end(s);
    }
    for (size_t i = 0; i < engine_lib.n_tokens; i++) {
        token_release_state(&engine_lib.tokens[i]);
    }
    table_clear(&sessions);
    engine_mutex_free(atomic_exchange(&table_lock, NULL));
}

/* Forked child: forgets the parent's sessions and locks without touching
 * them. They stay reachable from abandoned (leaked on purpose, see
 * library.c); the tokens' shared state stays with the parent's tokens,
 * which library.c keeps. */
void session_abandon(void)
{
    static table abandoned;
    static engine_mutex *abandoned_lock;

    abandoned = sessions;
    abandoned_lock = atomic_exchange(&table_lock, NULL);
    (void)abandoned;
    (void)abandoned_lock;
    memset(&sessions, 0, sizeof(sessions));
}
