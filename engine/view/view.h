/*
 * view.h - the view floor: what a view shows, over the handle index.
 * verdict.c applies the view's rules to one object (cached per session)
 * and fetches the attributes they read; find.c searches the view's
 * layers (whiteouts, shadowing, rules) and teaches the index what it
 * meets; resolve.c turns a virtual handle into the object a call on the
 * view may use. Inside the floor each file uses only those listed before
 * it. Uses index/, backend/ and core/ only. A function given a session
 * expects its lock S; the index's locks (index/index.h) are taken inside.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_VIEW_H
#define STRATA_ENGINE_VIEW_H

#include "index/index.h"

/* ---------------------------------------------------------------------
 * verdict.c - the view's rules applied to one object, cached per session
 * ------------------------------------------------------------------ */

/* What the view's rules say of one object: the attributes they read and
 * their verdict. Valid until the next verdict_* call on the session. */
typedef struct {
    const rules_object *obj;
    rules_verdict verdict; /* a malformed object reads hidden, read-only, denied */
    bool malformed;        /* rules_eval refused the object (fail closed) */
} object_rules;

/* The rules' view of the object (layer, backend) with virtual handle,
 * fetched once per (session, object, view, login epoch) and again after
 * any change made through Strata (verdict_changed). Returns CKR_OK with
 * *out; CKR_HOST_MEMORY; or the backend's code. The view must have rules.
 * Expects S. */
CK_RV verdict_get(engine_session *s, const session_view_state *st, size_t layer,
                  CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, const object_rules **out);
/* Stores what the rules say of the object (layer, backend) with virtual
 * handle, from its attributes already read (in the order of the view's
 * rules_program_attributes) after verdict_stamp() gave stamp, as
 * verdict_get would after reading them itself. CKR_OK or CKR_HOST_MEMORY.
 * Expects S. */
CK_RV verdict_seed(engine_session *s, const session_view_state *st, size_t layer,
                   CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, unsigned long stamp,
                   const CK_ATTRIBUTE *attrs);
/* The process-wide change stamp (see verdict.c), to read before reading
 * attributes for verdict_seed. */
unsigned long verdict_stamp(void);
/* True when a deny rule of the view forbids op with mechanism (or
 * CK_UNAVAILABLE_INFORMATION) on ref, or when the rules cannot tell (fail
 * closed). False for a view without rules. Expects S. */
bool verdict_denies(engine_session *s, const session_view_state *st, const object_ref *ref,
                    rules_op op, CK_MECHANISM_TYPE mechanism);
/* Invalidates every cached verdict of the process (an object changed). */
void verdict_changed(void);
/* Frees the session's cache. Expects S or sole ownership of s. */
void verdict_cache_free(engine_session *s);

/* Rule objects: the attributes the view's program reads, fetched from the
 * backend. rules_object_fetch returns CKR_OK with obj->n_attrs == 0 when
 * the program reads nothing. */
typedef struct {
    rules_object obj;
    CK_ATTRIBUTE *attrs;
    void *buf;
} rule_object;

CK_RV rule_object_fetch(engine_session *s, const engine_view *view, size_t layer,
                        CK_OBJECT_HANDLE backend, rule_object *out);
void rule_object_free(rule_object *ro);

/* ---------------------------------------------------------------------
 * find.c - searching the stack
 * ------------------------------------------------------------------ */

/* Runs a search over view with the template and fills *out (malloc'd)
 * with the visible handles, marking hidden ones in the index. Also used
 * to re-resolve handles the catalog knows but this process has not seen.
 * Caller holds S. */
CK_RV find_collect(engine_session *s, const session_view_state *st, const CK_ATTRIBUTE *templ,
                   CK_ULONG count, CK_OBJECT_HANDLE **out, size_t *n_out);
void find_end(engine_session *s);
/* Runs one backend search of layer (count 0: every object). Returns CKR_OK
 * with *out (malloc'd) and *n; CKR_HOST_MEMORY; or the backend's code.
 * Caller holds S. */
CK_RV find_in_layer(engine_session *s, size_t layer, CK_ATTRIBUTE *templ, CK_ULONG count,
                    CK_OBJECT_HANDLE **out, size_t *n);
/* The view's shadow identity attributes (default CKA_CLASS, CKA_ID). The
 * array is static or the program's: its address identifies the set. */
size_t find_shadow_types(const engine_view *view, const CK_ATTRIBUTE_TYPE **types);

/* ---------------------------------------------------------------------
 * resolve.c - a virtual handle as a call on the view may use it
 * ------------------------------------------------------------------ */

/* Translates handle for the view (index/index.h's handles_lookup, with
 * one search of the view when the catalog knows the handle but this
 * process has not met its object), then the rules: a hidden (or
 * malformed) object is CKR_OBJECT_HANDLE_INVALID like one that never
 * existed, identical for every reason (unknown, other view's layer,
 * hidden, shadowed, whited out, a layer that is down). Returns CKR_OK
 * with *ref; CKR_OBJECT_HANDLE_INVALID; or the backend's code (a handle
 * met on a layer whose backend is down now). Expects S. */
CK_RV verdict_resolve(engine_session *s, const session_view_state *st, CK_OBJECT_HANDLE handle,
                      object_ref *ref);

#endif /* STRATA_ENGINE_VIEW_H */
