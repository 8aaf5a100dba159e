/*
 * internal.h - what module.c and token.c share inside layers/.
 *
 * Lock order: a token's lock may be held while the module's lock is
 * taken (token -> module), never the other way round. The module's lock
 * is never held across a backend call.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_LAYERS_INTERNAL_H
#define STRATA_LAYERS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "layers.h"

/* One backend session this module object opened. */
typedef struct {
    CK_SESSION_HANDLE handle;
    const layers_token *owner; /* the token it was opened through */
} tracked_session;

struct layers_module {
    char *path;
    char *init_reserved;     /* C_Initialize's pReserved string, or NULL */
    CK_FUNCTION_LIST *funcs; /* managed function list from p11-kit */
    pthread_mutex_t lock;    /* guards the fields below */
    /* starts at 1, bumped by each cycle (under lock); layers_module_generation
     * reads it without the lock */
    _Atomic unsigned generation;
    tracked_session *sessions;
    size_t n_sessions;
    size_t cap_sessions;
};

/* Records a session opened through owner during generation. Returns
 * CKR_OK; CKR_HOST_MEMORY when the list cannot grow; CKR_SESSION_CLOSED
 * when the module was cycled since generation (the session is dead and
 * is not recorded). Takes the module's lock. */
CK_RV layers_module_track(layers_module *module, const layers_token *owner,
                          CK_SESSION_HANDLE handle, unsigned generation);

/* Forgets a recorded session of owner. Returns true when it was recorded
 * (and is now forgotten), false when this module object never opened it
 * through owner. Takes the module's lock. */
bool layers_module_untrack(layers_module *module, const layers_token *owner,
                           CK_SESSION_HANDLE handle);

/* Closes, one by one, every recorded session opened through owner (every
 * session when owner is NULL) and forgets them. Takes the module's lock,
 * but not across the C_CloseSession calls. */
void layers_module_close_sessions(layers_module *module, const layers_token *owner);

/* Returns the module's slot IDs (only those with a token when
 * token_present) in *out, malloc'd (NULL when *n is 0). CKR_HOST_MEMORY,
 * or the backend's C_GetSlotList code. Calls the backend, no lock. */
CK_RV layers_module_slot_ids(layers_module *module, CK_BBOOL token_present, CK_SLOT_ID **out,
                             CK_ULONG *n);

/* The backend guard (guard.c): takes the cross-process lock, exclusive or
 * shared, and returns what layers_guard_drop releases (-1: nothing was
 * taken: no guard, or this thread holds it already). */
int layers_guard_take(bool exclusive);
void layers_guard_drop(int held);

#endif /* STRATA_LAYERS_INTERNAL_H */
