/*
 * lifecycle.h - private plumbing of the identity lifecycle: the backend
 * gate that keeps calls off the modules while one is cycled
 * (reconnect.c), and lazy provisioning at login (provision.c).
 *
 * The gate is one process-wide reader/writer gate with writer preference.
 * Every call that may reach a backend holds it shared (session_acquire
 * takes it after the session lock S and session_release drops it; the
 * slot and close paths take it around their backend calls). A cycle
 * (layers_module_cycle) or a provisioning run (which may cycle) holds it
 * exclusively, so no other thread is inside any backend module meanwhile.
 * Holding it shared is re-entrant per thread (a depth count).
 *
 * Order: S -> gate, and L -> gate: a thread that must wait for a login
 * lock L drops its shared hold while it waits (gate_lock_login), so a
 * thread holding L that goes exclusive never waits for it. The exclusive
 * holder keeps S (its own session) and possibly L, never K, H, T or the
 * learn lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_LIFECYCLE_H
#define STRATA_ENGINE_LIFECYCLE_H

#include "stack.h"

/* ---------------------------------------------------------------------
 * reconnect.c
 * ------------------------------------------------------------------ */

/* Shared hold of the gate (re-entrant). */
void gate_enter(void);
void gate_leave(void);
/* Takes token's login lock L, dropping this thread's shared hold while
 * waiting and taking it back (with the same depth) once L is held. */
void gate_lock_login(engine_token *token);
/* Exclusive hold: drops this thread's shared hold (whatever its depth),
 * waits until no other thread holds the gate, and returns the depth to
 * give gate_exclusive_end, which takes the shared hold back. */
unsigned gate_exclusive_begin(void);
void gate_exclusive_end(unsigned depth);
/* C_Initialize (also in a forked child): a fresh gate, no pending
 * reconnects. C_Finalize: releases what reconnect.c holds. */
void gate_reset(void);

/* Number of module cycles this process ran since C_Initialize: a search
 * that re-resolves handles re-runs when it changed (handles.c). */
unsigned long reconnect_count(void);

/* Cycles module (under the exclusive gate, which the caller holds) and
 * logs the outcome. *restarted as layers_module_cycle. Returns its code. */
CK_RV reconnect_cycle_inexclusive(layers_module *module, bool *restarted);

/* Notes that a backend of layer answered rv; CKR_DEVICE_REMOVED,
 * CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID and CKR_DEVICE_ERROR
 * mark its module
 * for one reconnect, run at the start of the next call
 * (reconnect_pending). Any lock may be held. */
void reconnect_note(const engine_layer *layer, CK_RV rv);
/* Runs the reconnects noted since (one cycle per marked module, unless
 * the module was cycled meanwhile). Expects S and no shared hold of the
 * gate; takes it exclusively when there is work. */
void reconnect_pending(void);

/* ---------------------------------------------------------------------
 * handles.c
 * ------------------------------------------------------------------ */

/* Forgets the backend handles of token's token objects (keeping their
 * virtual handles and identities): after a login or logout a backend may
 * number its private objects anew (SoftHSM2 does), so each re-resolves by
 * identity on its next use. Takes the learn lock and H; expects no H. */
void handles_unbind(engine_token *token);

/* ---------------------------------------------------------------------
 * provision.c
 * ------------------------------------------------------------------ */

/*
 * Makes sure the lazily provisioned token of layer exists for the view
 * login selected and is ready (row ready, token visible), provisioning,
 * repairing or reconnecting as needed. Expects S, L and a shared hold of
 * the gate (taken exclusively inside when a backend must be changed).
 * Returns CKR_OK (*available false when the token was provisioned by
 * another process and stays invisible until restart: the layer is left
 * out); CKR_DEVICE_MEMORY (no free slot even after a cycle: the row is
 * waiting); CKR_DEVICE_ERROR (anything else, logged; the row stays in a
 * state the next login repairs); CKR_HOST_MEMORY.
 */
CK_RV provision_ensure(engine_token *token, engine_layer *layer, const storage_login *login,
                       bool *available);

/* The user PIN of layer's provisioned token for login's view into the
 * caller's sodium memory pin (cap bytes). Returns CKR_OK with *len;
 * CKR_USER_PIN_NOT_INITIALIZED when there is no ready row;
 * CKR_GENERAL_ERROR. */
CK_RV provision_user_pin(const engine_token *token, const engine_layer *layer,
                         const storage_login *login, char *pin, size_t cap, size_t *len);

#endif /* STRATA_ENGINE_LIFECYCLE_H */
