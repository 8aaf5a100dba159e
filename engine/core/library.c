/*
 * library.c - the library state C_Initialize builds (ops/init.c) and the
 * engine's mutexes, made the way C_Initialize chose (the application's
 * callbacks or pthread mutexes; see ops/init.c for the four cases).
 *
 * engine_lib does not change between C_Initialize and C_Finalize, so it
 * is read without a lock; the locking mode is set while no engine mutex
 * exists.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

engine_library engine_lib;

/* ---------------------------------------------------------------------
 * Mutexes
 * ------------------------------------------------------------------ */

struct engine_mutex {
    pthread_mutex_t os; /* used unless is_app */
    void *app;          /* the application's mutex, when is_app */
    bool is_app;        /* made by the application's CreateMutex */
};

/* The application's callbacks, when C_Initialize gave them without
 * CKF_OS_LOCKING_OK; all NULL otherwise. Set before any mutex exists. */
static CK_C_INITIALIZE_ARGS app_locking;

/*
 * Makes a mutex in the mode C_Initialize chose. Returns CKR_OK,
 * CKR_HOST_MEMORY, or CKR_CANT_LOCK / the application's CreateMutex code.
 */
CK_RV engine_mutex_new(engine_mutex **out)
{
    engine_mutex *mutex = calloc(1, sizeof(*mutex));
    CK_RV rv = CKR_HOST_MEMORY;

    *out = NULL;
    if (mutex == NULL) {
        goto out;
    }
    if (app_locking.CreateMutex != NULL) {
        rv = app_locking.CreateMutex(&mutex->app);
        mutex->is_app = true;
    } else {
        rv = pthread_mutex_init(&mutex->os, NULL) == 0 ? CKR_OK : CKR_CANT_LOCK;
    }
    if (rv != CKR_OK) {
        goto out;
    }
    *out = mutex;
    mutex = NULL;
out:
    free(mutex);
    return rv;
}

void engine_mutex_free(engine_mutex *mutex)
{
    if (mutex == NULL) {
        return;
    }
    if (mutex->is_app) {
        app_locking.DestroyMutex(mutex->app);
    } else {
        pthread_mutex_destroy(&mutex->os);
    }
    free(mutex);
}

void engine_mutex_lock(engine_mutex *mutex)
{
    if (mutex->is_app) {
        app_locking.LockMutex(mutex->app);
    } else {
        pthread_mutex_lock(&mutex->os);
    }
}

void engine_mutex_unlock(engine_mutex *mutex)
{
    if (mutex->is_app) {
        app_locking.UnlockMutex(mutex->app);
    } else {
        pthread_mutex_unlock(&mutex->os);
    }
}

/* Sets the mode engine_mutex_new makes mutexes in. */
void engine_mutex_use(const CK_C_INITIALIZE_ARGS *locking)
{
    if (locking == NULL) {
        memset(&app_locking, 0, sizeof(app_locking));
    } else {
        app_locking = *locking;
    }
}

/* ---------------------------------------------------------------------
 * Lookups
 * ------------------------------------------------------------------ */

void library_version(CK_VERSION *out)
{
    const char *text = STRATA_VERSION;
    char *end = NULL;
    unsigned long major = strtoul(text, &end, 10);
    unsigned long minor = *end == '.' ? strtoul(end + 1, NULL, 10) : 0;

    out->major = (CK_BYTE)(major > 255 ? 255 : major);
    out->minor = (CK_BYTE)(minor > 255 ? 255 : minor);
}

/* The virtual token on slot, or NULL. Reads engine_lib, which does not
 * change between C_Initialize and C_Finalize: no lock. */
engine_token *library_token(CK_SLOT_ID slot)
{
    for (size_t i = 0; i < engine_lib.n_tokens; i++) {
        if (engine_lib.tokens[i].slot_id == slot) {
            return &engine_lib.tokens[i];
        }
    }
    return NULL;
}
