/*
 * backend.c - the backend sessions that shadow one virtual session: one
 * per (virtual session, layer), opened lazily the first time a call needs
 * that layer, read-write when the virtual session is and the layer is
 * writable, closed with the virtual session. A backend session from an
 * older generation of its module (the module was cycled) is dead and is
 * reopened. Everything here runs under the virtual session's lock (S)
 * and a shared hold of the backend gate (backend.h).
 *
 * A backend answering CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 * CKR_SESSION_HANDLE_INVALID or CKR_DEVICE_ERROR (the last two for a
 * session of the current generation)
 * gets one reconnect of its module at the start of the next call
 * (reconnect.c); the call that saw it reports CKR_DEVICE_ERROR, since
 * the virtual session and token are still there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "backend.h"

size_t backend_layer_index(const engine_token *token, const engine_layer *layer)
{
    return (size_t)(layer - token->layers);
}

/* login_failed changes under the token lock; readers here do not hold it
 * and only need a value that was true at some point during the call. */
bool backend_layer_usable(const engine_layer *layer)
{
    return layer->token != NULL && !__atomic_load_n(&layer->login_failed, __ATOMIC_ACQUIRE);
}

bool backend_layer_serves(const session_view_state *st, engine_layer *layer)
{
    CK_SLOT_ID slot;

    if (!backend_layer_usable(layer)) {
        return false;
    }
    if ((st->logged_in && st->user == CKU_USER) || layer->def->provision != RULES_PROVISION_LAZY) {
        return true;
    }
    return layers_token_slot(layer->token, &slot) == CKR_OK;
}

bool backend_view_has(const engine_view *view, const engine_layer *layer)
{
    if (view == NULL) {
        return false;
    }
    for (size_t i = 0; i < view->n_layers; i++) {
        if (view->layers[i] == layer) {
            return true;
        }
    }
    return false;
}

/*
 * SoftHSM2 2.6.1 (file object store) is not safe with a search and an
 * object being made at once on one token: C_FindObjectsInit re-reads the
 * token's folder and meets the new object's file half written. Measured
 * directly on SoftHSM2, 8 threads, no Strata in between: C_CreateObject
 * then fails with CKR_GENERAL_ERROR or CKR_TEMPLATE_INCONSISTENT, or
 * succeeds and the object reads back with CKA_TOKEN false (a session
 * object to every reader). With object-making calls exclusive against
 * searches on the token, none of that happens; searches still run side
 * by side, and so do signatures and attribute reads. Writers are
 * preferred so that a stream of searches cannot starve a create.
 */
static int rwlock_init(pthread_rwlock_t *lock)
{
    pthread_rwlockattr_t attr;
    int err;

    if (pthread_rwlockattr_init(&attr) != 0) {
        return -1;
    }
#ifdef PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    err = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return err;
}

/*
 * The layer's state lock, for the same kind of reason: SoftHSM2 2.6.1 is
 * not safe with a login or logout of the token while another session
 * uses a private object. Measured directly on SoftHSM2 (tests/bench's
 * world, no Strata in between): one thread cycling C_Logout/C_Login on
 * one session, another calling C_SignInit on an EC private key on
 * another: C_SignInit returned CKR_GENERAL_ERROR 6 times in 309 login
 * cycles (it reads the key while the token's key is swapped). Through
 * Strata the stress test met it about once in 40 runs. The backend's
 * C_Login and C_Logout hold the lock exclusively; the calls that read an
 * object's contents (the crypto *Init calls, C_DigestKey, C_WrapKey,
 * C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit) shared,
 * and side by side. The calls that make objects need not: they run under
 * the login lock L, which the login and logout hold too. Nothing else is
 * taken while the lock is held.
 */
CK_RV backend_locks_init(engine_layer *layer)
{
    if (rwlock_init(&layer->store) != 0) {
        return CKR_HOST_MEMORY;
    }
    if (rwlock_init(&layer->state) != 0) {
        pthread_rwlock_destroy(&layer->store);
        return CKR_HOST_MEMORY;
    }
    return CKR_OK;
}

void backend_locks_free(engine_layer *layer)
{
    pthread_rwlock_destroy(&layer->store);
    pthread_rwlock_destroy(&layer->state);
}

void backend_state_write(engine_layer *layer)
{
    pthread_rwlock_wrlock(&layer->state);
}

void backend_state_read(engine_layer *layer)
{
    pthread_rwlock_rdlock(&layer->state);
}

void backend_state_done(engine_layer *layer)
{
    pthread_rwlock_unlock(&layer->state);
}

void backend_store_write(engine_layer *layer)
{
    pthread_rwlock_wrlock(&layer->store);
}

void backend_store_read(engine_layer *layer)
{
    pthread_rwlock_rdlock(&layer->store);
}

void backend_store_done(engine_layer *layer)
{
    pthread_rwlock_unlock(&layer->store);
}

unsigned backend_generation(const engine_layer *layer)
{
    if (layer->token == NULL) {
        return 0;
    }
    return layers_module_generation(layers_token_module(layer->token));
}

/* The login replay ops/login.c registers (backend.h), or NULL. */
static _Atomic(backend_replay_fn *) replay;

void backend_replay_register(backend_replay_fn *fn)
{
    atomic_store_explicit(&replay, fn, memory_order_release);
}

/* Runs the registered login replay for layer, if any. */
static void replay_login(engine_token *token, engine_layer *layer)
{
    backend_replay_fn *fn = atomic_load_explicit(&replay, memory_order_acquire);

    if (fn != NULL) {
        fn(token, layer);
    }
}

/*
 * The backend session of s on token->layers[layer], opened when missing
 * or stale. Returns CKR_OK with *fl and *h; CKR_DEVICE_ERROR when the
 * layer's module failed to load; CKR_TOKEN_NOT_PRESENT; or the backend's
 * C_OpenSession code. Expects S.
 */
CK_RV backend_session(engine_session *s, size_t layer, CK_FUNCTION_LIST **fl, CK_SESSION_HANDLE *h)
{
    engine_layer *l = &s->token->layers[layer];
    backend_slot *b = &s->backends[layer];
    unsigned gen;
    CK_FLAGS flags = CKF_SERIAL_SESSION;
    CK_RV rv;

    if (l->token == NULL) {
        return CKR_DEVICE_ERROR;
    }
    /* Twice at most: the login replay may wait for the login lock, during
     * which another thread may cycle the module under the new session. */
    for (int attempt = 0; attempt < 2; attempt++) {
        gen = backend_generation(l);
        if (b->open && b->generation != gen) {
            b->open = false; /* died with the old generation */
        }
        if (b->open) {
            break;
        }
        if (session_is_rw(s) && !l->read_only) {
            flags |= CKF_RW_SESSION;
        }
        rv = layers_token_open_session(l->token, flags, &b->handle);
        if (rv == CKR_TOKEN_WRITE_PROTECTED && (flags & CKF_RW_SESSION) != 0) {
            /* A write-protected token (the system trust store) still
             * shows its objects: read them through a read-only session;
             * writes to it then fail with the backend's own code. */
            flags &= ~(CK_FLAGS)CKF_RW_SESSION;
            rv = layers_token_open_session(l->token, flags, &b->handle);
        }
        if (rv != CKR_OK) {
            engine_log(ENGINE_LOG_WARNING, "layer \"%s\": backend C_OpenSession: %s", l->def->id,
                       layers_rv_name(rv));
            reconnect_note(l, rv);
            return rv;
        }
        b->open = true;
        b->generation = gen;
        replay_login(s->token, l);
    }
    if (!b->open || b->generation != backend_generation(l)) {
        b->open = false;
        return CKR_DEVICE_ERROR;
    }
    *fl = layers_module_functions(layers_token_module(l->token));
    *h = b->handle;
    return CKR_OK;
}

/* A backend code as the virtual session reports it: a backend session
 * that died under us is forgotten and reported as CKR_DEVICE_ERROR (the
 * application's session itself is fine); a removed device or a missing
 * token also schedules a reconnect of the layer's module and is reported
 * as CKR_DEVICE_ERROR, and so does a device error on an open session of
 * the current generation (a remote backend whose process died; a code
 * Strata made up itself, with no session open, schedules nothing).
 * Expects S. */
CK_RV backend_rv(engine_session *s, size_t layer, CK_RV rv)
{
    engine_layer *l = &s->token->layers[layer];
    backend_slot *b = &s->backends[layer];

    if (rv == CKR_DEVICE_ERROR) {
        if (b->open && b->generation == backend_generation(l)) {
            reconnect_note(l, rv);
            b->open = false;
        }
        return rv;
    }
    if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) {
        if (rv == CKR_SESSION_HANDLE_INVALID && b->open && b->generation == backend_generation(l)) {
            reconnect_note(l, rv); /* not a leftover of an earlier cycle */
        }
        b->open = false;
        return CKR_DEVICE_ERROR;
    }
    if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT) {
        reconnect_note(l, rv);
        b->open = false;
        return CKR_DEVICE_ERROR;
    }
    return rv;
}

/* Closes every backend session of s. Expects S (or sole ownership). */
void backend_close_all(engine_session *s)
{
    for (size_t i = 0; i < s->token->n_layers; i++) {
        backend_slot *b = &s->backends[i];
        engine_layer *l = &s->token->layers[i];

        if (b->open && l->token != NULL && b->generation == backend_generation(l)) {
            layers_token_close_session(l->token, b->handle);
        }
        b->open = false;
    }
}

/*
 * Reads types of object in two backend calls (lengths, then values).
 * Returns CKR_OK; CKR_HOST_MEMORY; or the backend's code when it refuses
 * the object as a whole (CKR_OBJECT_HANDLE_INVALID, ...). Per-attribute
 * refusals (sensitive, absent) become CK_UNAVAILABLE_INFORMATION.
 */
CK_RV backend_get_attributes(engine_layer *layer, CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h,
                             CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, CK_ULONG n)
{
    CK_RV rv;

    backend_state_read(layer);
    rv = fl->C_GetAttributeValue(h, object, templ, n);
    backend_state_done(layer);
    return rv;
}

CK_RV backend_attrs(engine_layer *layer, CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h,
                    CK_OBJECT_HANDLE object, const CK_ATTRIBUTE_TYPE *types, size_t n,
                    CK_ATTRIBUTE *attrs, void **buf)
{
    size_t total = 0;
    unsigned char *p;
    CK_RV rv;

    *buf = NULL;
    for (size_t i = 0; i < n; i++) {
        attrs[i].type = types[i];
        attrs[i].pValue = NULL;
        attrs[i].ulValueLen = 0;
    }
    if (n == 0) {
        return CKR_OK;
    }
    rv = backend_get_attributes(layer, fl, h, object, attrs, (CK_ULONG)n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        if (attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
            total += attrs[i].ulValueLen;
        }
    }
    p = malloc(total > 0 ? total : 1);
    if (p == NULL) {
        return CKR_HOST_MEMORY;
    }
    *buf = p;
    for (size_t i = 0; i < n; i++) {
        if (attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
            attrs[i].pValue = p;
            p += attrs[i].ulValueLen;
        }
    }
    rv = backend_get_attributes(layer, fl, h, object, attrs, (CK_ULONG)n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        free(*buf);
        *buf = NULL;
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        if (attrs[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            attrs[i].pValue = NULL;
        }
    }
    return CKR_OK;
}

const CK_ATTRIBUTE *backend_attr_find(const CK_ATTRIBUTE *attrs, size_t n, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < n; i++) {
        if (attrs[i].type == type) {
            return &attrs[i];
        }
    }
    return NULL;
}
