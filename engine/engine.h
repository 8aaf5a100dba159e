/*
 * engine.h - Strata's PKCS#11 surface, for programs linking the engine
 * statically (the strata command, tests). The shared module exports only
 * the PKCS#11 entry points; this header adds nothing to its ABI.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_H
#define STRATA_ENGINE_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

/* The engine's function list (what C_GetFunctionList returns). */
CK_FUNCTION_LIST *engine_function_list(void);

/* ---------------------------------------------------------------------
 * Inspection, for strata ls / strata explain (engine/ops/inspect.c). These
 * work on a session of engine_function_list() after C_Initialize.
 * ------------------------------------------------------------------ */

/* The id of the layer holding object, as session's view shows it, into
 * buf. Returns CKR_OK; CKR_CRYPTOKI_NOT_INITIALIZED;
 * CKR_SESSION_HANDLE_INVALID; CKR_OBJECT_HANDLE_INVALID (not visible);
 * CKR_ARGUMENTS_BAD (NULL buf); CKR_BUFFER_TOO_SMALL. */
CK_RV engine_object_layer(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, char *buf,
                          size_t size);

/* The id of the view session shows (the logged-in one, else the public
 * one) into buf. Returns CKR_OK; CKR_CRYPTOKI_NOT_INITIALIZED;
 * CKR_SESSION_HANDLE_INVALID; CKR_USER_NOT_LOGGED_IN (no view);
 * CKR_ARGUMENTS_BAD; CKR_BUFFER_TOO_SMALL. */
CK_RV engine_session_view(CK_SESSION_HANDLE session, char *buf, size_t size);

/* One object of a view's layers as strata explain reports it. */
typedef struct {
    const char *layer;       /* layer id */
    CK_OBJECT_HANDLE handle; /* its virtual handle, also when the view does not show it */
    CK_OBJECT_CLASS cls;     /* CK_UNAVAILABLE_INFORMATION when unreadable */
    const char *label;       /* stored label ("" when none) */
    const char *shown_label; /* the label the view shows (rewritten or stored) */
    const unsigned char *id; /* CKA_ID, id_len bytes */
    size_t id_len;
    const char *visibility; /* "visible", "hidden by a rule", "shadowed", ... */
} engine_explained;

typedef struct {
    /* once per object reported, before its rules */
    void (*object)(void *ctx, const engine_explained *object);
    /* each rule that matched the object: its line and effect */
    void (*rule)(void *ctx, unsigned line, const char *effect);
} engine_explain_ops;

/* Walks every object of the layers of session's view, those the view
 * does not show included, and reports each whose stored or shown label
 * equals label (or, when label is NULL, whose virtual handle is handle)
 * with the rules that matched it; *n_found counts them. Returns CKR_OK;
 * CKR_CRYPTOKI_NOT_INITIALIZED; CKR_SESSION_HANDLE_INVALID;
 * CKR_ARGUMENTS_BAD; CKR_USER_NOT_LOGGED_IN (no view); CKR_HOST_MEMORY. A
 * layer whose backend fails is left out. */
CK_RV engine_explain(CK_SESSION_HANDLE session, const char *label, CK_OBJECT_HANDLE handle,
                     const engine_explain_ops *ops, void *ctx, size_t *n_found);

#endif /* STRATA_ENGINE_H */
