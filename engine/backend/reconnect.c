/*
 * reconnect.c - the backend gate and backend reconnects.
 *
 * A backend module may have to be cycled (finalised and initialised
 * again through p11-kit's managed API): to see a token another process
 * provisioned, to get a fresh free slot, or after the backend reported
 * CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID or
 * CKR_DEVICE_ERROR (p11-kit-client.so answers the last one when its
 * server process died: docs/hosting.md). While the backend stays down,
 * every call that reaches it fails and notes another reconnect, so the
 * first call after the backend is back reconnects and goes through.
 * layers_module_cycle wants no other thread inside the module meanwhile,
 * so every call that may reach a backend holds the gate (backend.h)
 * shared and a cycle holds it exclusively. After a cycle the module's
 * generation is bumped: backend sessions of older generations reopen
 * lazily (backend.c), layer logins are replayed from the credentials kept
 * since C_Login (login_replay), and virtual object handles re-resolve by
 * identity on their next use (handles.c), so the application's sessions
 * and handles stay valid.
 *
 * A backend error seen in the middle of a call (backend_rv, often under
 * the learn lock or the index lock) only marks the module; the reconnect
 * itself runs at the start of the next call on any session, holding only
 * that session's lock, where going exclusive is safe.
 *
 * The gate is a writer-preferring pthread read-write lock, even when the
 * application gave its own locking callbacks (they offer plain mutexes
 * only, and the engine creates no thread of its own): a thread enters it
 * once however deep its calls nest (my_depth), and a cycle waiting for it
 * holds new entries off. Entering and leaving cost one atomic operation
 * each, which matters: every call that may reach a backend does both.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdatomic.h>

#include "backend.h"

#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
#define GATE_INITIALIZER PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
#else
#define GATE_INITIALIZER PTHREAD_RWLOCK_INITIALIZER /* a waiting cycle may wait longer */
#endif

static pthread_rwlock_t gate = GATE_INITIALIZER;
static _Thread_local unsigned my_depth; /* this thread's shared depth */

static atomic_ulong cycles;                /* reconnect_count */
static atomic_uint pending_generation[64]; /* per module index: generation to leave, 0 = none */
static atomic_bool any_pending;

void gate_enter(void)
{
    if (my_depth++ > 0) {
        return;
    }
    pthread_rwlock_rdlock(&gate);
}

void gate_leave(void)
{
    if (my_depth == 0 || --my_depth > 0) {
        return;
    }
    pthread_rwlock_unlock(&gate);
}

/* Drops this thread's shared hold entirely; returns its depth. */
static unsigned suspend(void)
{
    unsigned depth = my_depth;

    if (depth > 0) {
        my_depth = 1;
        gate_leave();
    }
    return depth;
}

/* Takes the shared hold back with depth. */
static void resume(unsigned depth)
{
    if (depth > 0) {
        gate_enter();
        my_depth = depth;
    }
}

void gate_lock_login(engine_token *token)
{
    unsigned depth = suspend();

    engine_mutex_lock(token->login_lock);
    resume(depth);
}

unsigned gate_exclusive_begin(void)
{
    unsigned depth = suspend();

    pthread_rwlock_wrlock(&gate);
    return depth;
}

void gate_exclusive_end(unsigned depth)
{
    pthread_rwlock_unlock(&gate);
    resume(depth);
}

/* Fresh state. In a forked child the parent's gate may have been held by
 * a thread that does not exist here, so it is made anew. */
void gate_reset(void)
{
    pthread_rwlock_t fresh = GATE_INITIALIZER;

    gate = fresh;
    my_depth = 0;
    for (size_t i = 0; i < sizeof(pending_generation) / sizeof(pending_generation[0]); i++) {
        atomic_store(&pending_generation[i], 0);
    }
    atomic_store(&any_pending, false);
}

unsigned long reconnect_count(void)
{
    return atomic_load(&cycles);
}

/* Index of module in engine_lib.modules, or -1. */
static long module_index(const layers_module *module)
{
    for (size_t i = 0; engine_lib.policy != NULL && i < engine_lib.policy->n_modules; i++) {
        if (engine_lib.modules[i] == module) {
            return (long)i;
        }
    }
    return -1;
}

/* The policy id of module, for log lines. */
static const char *module_id(const layers_module *module)
{
    long i = module_index(module);

    return i >= 0 ? engine_lib.policy->modules[i].id : "?";
}

/* See backend.h. Expects the exclusive gate. */
CK_RV reconnect_cycle_inexclusive(layers_module *module, bool *restarted)
{
    bool real = false;
    CK_RV rv = layers_module_cycle(module, &real);

    atomic_fetch_add(&cycles, 1);
    if (restarted != NULL) {
        *restarted = real;
    }
    if (rv != CKR_OK) {
        engine_log(ENGINE_LOG_ERROR, "module \"%s\": reconnect failed: %s", module_id(module),
                   layers_rv_name(rv));
    } else {
        engine_log(ENGINE_LOG_INFO, "module \"%s\": reconnected (generation %u, %s)",
                   module_id(module), layers_module_generation(module),
                   real ? "backend restarted" : "backend kept alive by another user");
    }
    return rv;
}

/* See backend.h. */
void reconnect_note(const engine_layer *layer, CK_RV rv)
{
    layers_module *module;
    long i;

    if (rv != CKR_DEVICE_REMOVED && rv != CKR_TOKEN_NOT_PRESENT &&
        rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_DEVICE_ERROR) {
        return;
    }
    if (layer == NULL || layer->token == NULL) {
        return;
    }
    module = layers_token_module(layer->token);
    i = module_index(module);
    if (i < 0 || (size_t)i >= sizeof(pending_generation) / sizeof(pending_generation[0])) {
        return;
    }
    atomic_store(&pending_generation[i], layers_module_generation(module));
    atomic_store(&any_pending, true);
    engine_log(ENGINE_LOG_WARNING,
               "layer \"%s\": backend answered %s: module \"%s\" will be "
               "reconnected",
               layer->def->id, layers_rv_name(rv), module_id(module));
}

/* See backend.h. Expects S, no shared hold. */
void reconnect_pending(void)
{
    unsigned depth;

    if (!atomic_load(&any_pending)) {
        return;
    }
    depth = gate_exclusive_begin();
    atomic_store(&any_pending, false);
    for (size_t i = 0; engine_lib.policy != NULL && i < engine_lib.policy->n_modules &&
                       i < sizeof(pending_generation) / sizeof(pending_generation[0]);
         i++) {
        unsigned gen = atomic_exchange(&pending_generation[i], 0);
        layers_module *module = engine_lib.modules[i];

        /* Cycle once per report: a module cycled since the report needs none. */
        if (gen != 0 && module != NULL && layers_module_generation(module) == gen) {
            reconnect_cycle_inexclusive(module, NULL);
        }
    }
    gate_exclusive_end(depth);
}
