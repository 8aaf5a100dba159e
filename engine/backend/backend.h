/*
 * backend.h - the backend floor: what the engine does with the layers'
 * backend modules, below the handle index. backend.c keeps one backend
 * session per (virtual session, layer), the layers' store and state locks
 * and attribute reads; reconnect.c the backend gate and the reconnects of
 * modules that failed; provision.c the lazily provisioned tokens made at
 * login. Uses core/ only. What it needs from above (a layer's backend
 * login replayed after its module was cycled) it gets through the replay
 * hook below, which ops/ registers at C_Initialize.
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
 * learn lock. The other locks are listed in core/core.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_BACKEND_H
#define STRATA_ENGINE_BACKEND_H

#include "core/core.h"

/* ---------------------------------------------------------------------
 * backend.c - one backend session per (virtual session, layer)
 * ------------------------------------------------------------------ */

size_t backend_layer_index(const engine_token *token, const engine_layer *layer);
/* True when the layer's module loaded and its login did not fail. */
bool backend_layer_usable(const engine_layer *layer);
/* True when calls in the login state st may use layer: usable, and, with
 * no user logged in, a lazy layer only once its token exists (it is made
 * at the first login of a view that stacks it; until then there is
 * nothing to show and nowhere to write). Probes the backend's slots for
 * a lazy layer before login. */
bool backend_layer_serves(const session_view_state *st, engine_layer *layer);
bool backend_view_has(const engine_view *view, const engine_layer *layer);
unsigned backend_generation(const engine_layer *layer);

/*
 * The layer's two locks (see backend.c for why), both leaves: nothing is
 * taken while one is held but the other, store first. init returns CKR_OK
 * or CKR_HOST_MEMORY.
 * - store: a backend call that makes an object (C_CreateObject,
 *   C_CopyObject, C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey,
 *   C_DeriveKey) holds it exclusively, the backend's C_FindObjectsInit
 *   shared.
 * - state: the backend's C_Login and C_Logout exclusively; the calls that
 *   read an object (crypto *Init, C_DigestKey, C_WrapKey,
 *   C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit) shared.
 */
CK_RV backend_locks_init(engine_layer *layer);
void backend_locks_free(engine_layer *layer);
void backend_state_write(engine_layer *layer);
void backend_state_read(engine_layer *layer);
void backend_state_done(engine_layer *layer);
void backend_store_write(engine_layer *layer);
void backend_store_read(engine_layer *layer);
void backend_store_done(engine_layer *layer);

/* The layer's backend session for s, opened lazily (RW when s is RW and
 * the layer is writable). Caller holds S. Backend codes pass through;
 * CKR_DEVICE_ERROR when the layer's module failed to load. */
CK_RV backend_session(engine_session *s, size_t layer, CK_FUNCTION_LIST **fl, CK_SESSION_HANDLE *h);
/* Maps a backend's code for the virtual session: a dead backend session
 * is forgotten (reopened next time) and reported as CKR_DEVICE_ERROR. */
CK_RV backend_rv(engine_session *s, size_t layer, CK_RV rv);
/* Closes every backend session of s. Caller holds S or owns s alone. */
void backend_close_all(engine_session *s);

/* Reads the attributes types[0..n) of a backend object into attrs, the
 * values in one malloc'd block *buf (free it). An attribute the object
 * lacks, or will not reveal, gets pValue NULL and ulValueLen
 * CK_UNAVAILABLE_INFORMATION. Returns CKR_OK, CKR_HOST_MEMORY or the
 * backend's code for the object as a whole. */
CK_RV backend_attrs(engine_layer *layer, CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h,
                    CK_OBJECT_HANDLE object, const CK_ATTRIBUTE_TYPE *types, size_t n,
                    CK_ATTRIBUTE *attrs, void **buf);
/* The backend's C_GetAttributeValue on layer, under its state lock. */
CK_RV backend_get_attributes(engine_layer *layer, CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h,
                             CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, CK_ULONG n);
/* The attribute of type in attrs, or NULL. */
const CK_ATTRIBUTE *backend_attr_find(const CK_ATTRIBUTE *attrs, size_t n, CK_ATTRIBUTE_TYPE type);

/* The login replay: logs layer in again from the credentials kept at
 * login when its backend login is gone (the module was cycled). Takes L.
 * backend_session calls it after opening a backend session; ops/login
 * supplies it. */
typedef void backend_replay_fn(engine_token *token, engine_layer *layer);
/* Sets the replay hook (NULL: none). Called by C_Initialize before any
 * session exists. */
void backend_replay_register(backend_replay_fn *fn);

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

/* ---------------------------------------------------------------------
 * wait.c - slot events, C_WaitForSlotEvent
 * ------------------------------------------------------------------ */

/* C_WaitForSlotEvent. Takes the wait lock W (a leaf) and, to look at the
 * backends, the gate shared. */
CK_RV wait_for_event(CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved);
/* An event of slot: a lazily provisioned token of it is ready. Takes W;
 * calls no backend. */
void wait_note(CK_SLOT_ID slot);
/* C_Initialize, engine_lib built: the slots' events start anew (the
 * first look takes the baseline). */
void wait_reset(void);
/* C_Finalize, first: releases every C_WaitForSlotEvent with
 * CKR_CRYPTOKI_NOT_INITIALIZED and returns once none is inside. */
void wait_finalize(void);

#endif /* STRATA_ENGINE_BACKEND_H */
