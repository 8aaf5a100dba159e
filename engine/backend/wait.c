/*
 * wait.c - C_WaitForSlotEvent: the events of the virtual slots, and a
 * blocking wait that sleeps on a condition variable.
 *
 * A virtual slot has an event when
 *   - its token appears or disappears: the token is present while some
 *     layer of its public view answers C_GetTokenInfo, and gone while
 *     none does (every backend token of the view removed, its module not
 *     loaded, its device unplugged);
 *   - a lazily provisioned layer token of it becomes ready (provision.c
 *     calls wait_note).
 * Each slot keeps one pending flag; a call reports one slot whose flag is
 * set (in policy order) and clears it, so one event is reported once,
 * to one caller.
 *
 * Presence cannot be learnt from the backends any other way (SoftHSM2
 * has no slot events, and p11-kit's managed modules would only forward a
 * backend's own wait), so it is looked at: by every C_WaitForSlotEvent
 * call as it starts, and by a blocked waiter each WAIT_POLL_MS while it
 * sleeps, one thread at a time. The first look after C_Initialize takes
 * the baseline and reports nothing. Between looks a waiter sleeps in
 * pthread_cond_timedwait: no busy loop (tests/bench/wait.c measures the
 * CPU time of a waiting thread).
 *
 * C_Finalize calls wait_finalize first: it wakes every waiter, which
 * answers CKR_CRYPTOKI_NOT_INITIALIZED (PKCS#11 v2.40, C_Finalize), and
 * waits until each has left before the library state goes.
 *
 * Locks: W (wait_lock) guards everything here; it is a leaf: nothing is
 * called with it held but condition-variable operations, and the look at
 * the backends runs without it, counted in `inside` so that C_Finalize
 * waits for it. W, the condition variables and the counters are made
 * anew by each C_Initialize (wait_reset), so a forked child's C_Initialize
 * never inherits a W a parent thread held. They are pthread primitives
 * whatever locking the application asked for: a wait needs a condition
 * variable, which the CreateMutex callbacks cannot give (library.c's own
 * busy_lock is the precedent).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "backend.h"

#define WAIT_POLL_MS 1000

typedef struct {
    CK_SLOT_ID id;
    bool known;   /* present holds the last look's answer */
    bool present; /* some layer of the public view answered */
    bool pending; /* an event not reported yet */
} slot_events;

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER; /* W */
static pthread_cond_t wait_wake;                              /* W: an event, or C_Finalize */
static pthread_cond_t wait_left;                              /* W: a call left while closing */
static slot_events *slots;        /* W: one per virtual token, NULL until wait_reset */
static size_t n_slots;            /* W */
static bool open_;                /* W: between wait_reset and wait_finalize */
static bool closing;              /* W: C_Finalize is releasing the calls */
static bool looking;              /* W: a thread is looking at the backends */
static struct timespec last_look; /* W: when the last look began (CLOCK_MONOTONIC) */
static unsigned inside;           /* W: calls inside wait_for_event */

/* ---------------------------------------------------------------------
 * Looking at the backends
 * ------------------------------------------------------------------ */

/* Whether some layer of token's public view answers C_GetTokenInfo.
 * Calls backends: hold no lock but the gate (taken here). */
static bool token_present(engine_token *token)
{
    const engine_view *view = token->public_view;
    CK_TOKEN_INFO info;
    bool present = false;

    if (view == NULL) {
        return false;
    }
    gate_enter();
    for (size_t i = 0; i < view->n_layers && !present; i++) {
        const engine_layer *layer = view->layers[i];
        present = layer->token != NULL && layers_token_info(layer->token, &info) == CKR_OK;
    }
    gate_leave();
    return present;
}

/* Records a look's answers (present, one per slot) and marks the slots
 * whose presence changed. Expects W. */
static void record_look(const bool *present)
{
    for (size_t i = 0; i < n_slots; i++) {
        slot_events *e = &slots[i];
        if (e->known && e->present != present[i]) {
            e->pending = true;
            pthread_cond_broadcast(&wait_wake);
        }
        e->known = true;
        e->present = present[i];
    }
}

/* Milliseconds since the last look began. Expects W. */
static long since_last_look(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - last_look.tv_sec) * 1000L +
           (now.tv_nsec - last_look.tv_nsec) / 1000000L;
}

/* Looks at every token's backends unless another thread is at it, or
 * (when !always) a look began less than WAIT_POLL_MS ago: several
 * waiters look once per period between them. Expects W and the caller
 * counted in `inside`; drops W while looking. */
static void look_inlock(bool always)
{
    bool *present;

    if (looking || closing || n_slots == 0 || (!always && since_last_look() < WAIT_POLL_MS)) {
        return;
    }
    present = calloc(n_slots, sizeof(*present));
    if (present == NULL) {
        return; /* the next look tries again */
    }
    looking = true;
    clock_gettime(CLOCK_MONOTONIC, &last_look);
    pthread_mutex_unlock(&wait_lock);
    for (size_t i = 0; i < engine_lib.n_tokens; i++) {
        present[i] = token_present(&engine_lib.tokens[i]);
    }
    pthread_mutex_lock(&wait_lock);
    looking = false;
    record_look(present);
    free(present);
}

/* Takes one pending event: its slot into *slot. Expects W. */
static bool take_event(CK_SLOT_ID *slot)
{
    for (size_t i = 0; i < n_slots; i++) {
        if (slots[i].pending) {
            slots[i].pending = false;
            *slot = slots[i].id;
            return true;
        }
    }
    return false;
}

/* Sleeps on wait_wake for WAIT_POLL_MS at most. Expects W. */
static void sleep_inlock(void)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += WAIT_POLL_MS / 1000;
    until.tv_nsec += (long)(WAIT_POLL_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&wait_wake, &wait_lock, &until);
}

/* ---------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------ */

/*
 * C_WaitForSlotEvent. Returns CKR_OK with *slot; CKR_NO_EVENT
 * (CKF_DONT_BLOCK and nothing pending); CKR_CRYPTOKI_NOT_INITIALIZED
 * (C_Finalize released the call); CKR_ARGUMENTS_BAD (NULL slot, or
 * reserved not NULL); CKR_HOST_MEMORY. Blocks (without CKF_DONT_BLOCK)
 * until an event or C_Finalize. Takes W.
 */
CK_RV wait_for_event(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
    CK_RV rv = CKR_CRYPTOKI_NOT_INITIALIZED;

    if (slot == NULL || reserved != NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    pthread_mutex_lock(&wait_lock);
    if (!open_ || closing) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    if (slots == NULL) {
        goto out;
    }
    inside++;
    for (bool first = true;; first = false) {
        look_inlock(first);
        if (closing) {
            rv = CKR_CRYPTOKI_NOT_INITIALIZED;
            break;
        }
        if (take_event(slot)) {
            rv = CKR_OK;
            break;
        }
        if (flags & CKF_DONT_BLOCK) {
            rv = CKR_NO_EVENT;
            break;
        }
        sleep_inlock();
        if (closing) {
            rv = CKR_CRYPTOKI_NOT_INITIALIZED;
            break;
        }
    }
    inside--;
    if (closing) {
        pthread_cond_broadcast(&wait_left);
    }
out:
    pthread_mutex_unlock(&wait_lock);
    return rv;
}

/* See internal.h. Takes W. */
void wait_note(CK_SLOT_ID slot)
{
    pthread_mutex_lock(&wait_lock);
    for (size_t i = 0; i < n_slots; i++) {
        if (slots[i].id == slot) {
            slots[i].pending = true;
            pthread_cond_broadcast(&wait_wake);
        }
    }
    pthread_mutex_unlock(&wait_lock);
}

/* See internal.h. engine_lib is built; no call is inside (the library was
 * not initialised, or this is a forked child, whose W may be held by a
 * parent thread that does not exist here: made anew). */
void wait_reset(void)
{
    pthread_condattr_t attr;

    pthread_mutex_init(&wait_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wait_wake, &attr);
    pthread_cond_init(&wait_left, &attr);
    pthread_condattr_destroy(&attr);
    free(slots); /* a forked child's copy of its parent's (only wait.c holds it) */
    slots = calloc(engine_lib.n_tokens > 0 ? engine_lib.n_tokens : 1, sizeof(*slots));
    n_slots = slots != NULL ? engine_lib.n_tokens : 0;
    for (size_t i = 0; i < n_slots; i++) {
        slots[i].id = engine_lib.tokens[i].slot_id;
    }
    open_ = true;
    closing = false;
    looking = false;
    inside = 0;
}

/* See internal.h. Takes W; returns once no call is inside. */
void wait_finalize(void)
{
    pthread_mutex_lock(&wait_lock);
    closing = true;
    pthread_cond_broadcast(&wait_wake);
    while (inside > 0) {
        pthread_cond_wait(&wait_left, &wait_lock);
    }
    free(slots);
    slots = NULL;
    n_slots = 0;
    open_ = false;
    closing = false;
    pthread_mutex_unlock(&wait_lock);
}
