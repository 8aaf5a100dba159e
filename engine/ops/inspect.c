/*
 * inspect.c - what strata ls and strata explain ask the engine
 * (engine.h): the layer of a visible object, the view a session shows,
 * and every object of a view's layers with the rules that matched it.
 *
 * explain must see what the view hides, so it does not go through the
 * search of find.c: it lists each usable layer of the view directly,
 * gives each object its virtual handle (handles_learn), and says why an
 * object the view's search does not return is missing: whited out,
 * hidden by a rule, kept out of searches by "deny find", or shadowed by
 * an upper layer. Nothing here is reachable through the PKCS#11 module.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Copies text into buf: CKR_OK, CKR_ARGUMENTS_BAD or CKR_BUFFER_TOO_SMALL. */
static CK_RV copy_out(const char *text, char *buf, size_t size)
{
    size_t len = strlen(text);

    if (buf == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (len >= size) {
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(buf, text, len + 1);
    return CKR_OK;
}

/* See engine.h. Takes S. */
CK_RV engine_object_layer(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, char *buf,
                          size_t size)
{
    session_view_state st;
    engine_session *s;
    object_ref ref;
    CK_RV rv = library_check();

    if (rv != CKR_OK) {
        return rv;
    }
    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    session_view(s, &st);
    rv = verdict_resolve(s, &st, object, &ref);
    if (rv == CKR_OK) {
        rv = copy_out(ref.layer->def->id, buf, size);
    }
    session_release(s);
    return rv;
}

/* See engine.h. Takes S. */
CK_RV engine_session_view(CK_SESSION_HANDLE session, char *buf, size_t size)
{
    session_view_state st;
    engine_session *s;
    CK_RV rv = library_check();

    if (rv != CKR_OK) {
        return rv;
    }
    rv = session_acquire(session, &s);
    if (rv != CKR_OK) {
        return rv;
    }
    session_view(s, &st);
    rv = st.view == NULL ? CKR_USER_NOT_LOGGED_IN : copy_out(st.view->def->id, buf, size);
    session_release(s);
    return rv;
}

/* ---------------------------------------------------------------------
 * explain
 * ------------------------------------------------------------------ */

typedef struct {
    engine_session *s;
    session_view_state st;
    const char *label;
    CK_OBJECT_HANDLE handle;
    const engine_explain_ops *ops;
    void *ctx;
    size_t found;
    CK_OBJECT_HANDLE *visible; /* what the view's search returns */
    size_t n_visible;
    unsigned char (*whiteouts)[HANDLES_IDENTITY_LEN];
    size_t n_whiteouts, cap_whiteouts;
} explain_walk;

static void whiteout_one(void *ctx, const char *layer, const void *identity, size_t len,
                         CK_OBJECT_HANDLE handle)
{
    explain_walk *w = ctx;

    (void)layer;
    (void)handle;
    if (len != HANDLES_IDENTITY_LEN) {
        return;
    }
    if (w->n_whiteouts == w->cap_whiteouts) {
        size_t cap = w->cap_whiteouts == 0 ? 16 : w->cap_whiteouts * 2;
        void *bigger = realloc(w->whiteouts, cap * HANDLES_IDENTITY_LEN);
        if (bigger == NULL) {
            return; /* reported as shadowed instead: explain is best effort here */
        }
        w->whiteouts = bigger;
        w->cap_whiteouts = cap;
    }
    memcpy(w->whiteouts[w->n_whiteouts++], identity, HANDLES_IDENTITY_LEN);
}

static bool whited_out(const explain_walk *w, const unsigned char *identity)
{
    for (size_t i = 0; i < w->n_whiteouts; i++) {
        if (memcmp(w->whiteouts[i], identity, HANDLES_IDENTITY_LEN) == 0) {
            return true;
        }
    }
    return false;
}

static bool in_results(const explain_walk *w, CK_OBJECT_HANDLE handle)
{
    for (size_t i = 0; i < w->n_visible; i++) {
        if (w->visible[i] == handle) {
            return true;
        }
    }
    return false;
}

/* Why the view's search does or does not return an object. */
static const char *visibility(const explain_walk *w, const handle_info *info, const object_rules *r)
{
    if (whited_out(w, info->identity)) {
        return "whited out";
    }
    if (r != NULL && r->malformed) {
        return "hidden: the rules cannot read it";
    }
    if (r != NULL && r->verdict.hidden) {
        return "hidden by a rule";
    }
    if (in_results(w, info->handle)) {
        return "visible";
    }
    if (r != NULL &&
        rules_denies(w->st.view->def->rules, r->obj, RULES_OP_FIND, CK_UNAVAILABLE_INFORMATION)) {
        return "visible, but kept out of searches (deny find)";
    }
    return "shadowed by an upper layer";
}

/* The label a client reads into shown (size bytes), given the stored one. */
static void shown_label(const explain_walk *w, const object_rules *r, const char *stored,
                        char *shown, size_t size)
{
    size_t len = 0;

    if (r != NULL &&
        rules_rewrite(w->st.view->def->rules, r->obj, CKA_LABEL, shown, size - 1, &len) == 1) {
        shown[len < size - 1 ? len : size - 1] = '\0';
        return;
    }
    snprintf(shown, size, "%s", stored);
}

/* Reports one backend object when it is the one asked for. Expects S. */
static void explain_one(explain_walk *w, size_t layer, CK_OBJECT_HANDLE backend,
                        const handle_info *info)
{
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_CLASS, CKA_LABEL, CKA_ID};
    CK_ATTRIBUTE attrs[3];
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    const object_rules *r = NULL;
    engine_explained e;
    char label[256], shown[256];
    void *buf = NULL;

    if (backend_session(w->s, layer, &fl, &h) != CKR_OK ||
        backend_attrs(&w->s->token->layers[layer], fl, h, backend, types, 3, attrs, &buf) !=
            CKR_OK) {
        return;
    }
    snprintf(label, sizeof(label), "%.*s",
             attrs[1].pValue != NULL ? (int)(attrs[1].ulValueLen < 255 ? attrs[1].ulValueLen : 255)
                                     : 0,
             attrs[1].pValue != NULL ? (const char *)attrs[1].pValue : "");
    if (w->st.view->def->rules != NULL &&
        verdict_get(w->s, &w->st, layer, backend, info->handle, &r) != CKR_OK) {
        r = NULL;
    }
    shown_label(w, r, label, shown, sizeof(shown));
    if (w->label != NULL ? strcmp(w->label, label) != 0 && strcmp(w->label, shown) != 0
                         : w->handle != info->handle) {
        free(buf);
        return;
    }
    memset(&e, 0, sizeof(e));
    e.layer = w->s->token->layers[layer].def->id;
    e.handle = info->handle;
    e.cls = attrs[0].pValue != NULL && attrs[0].ulValueLen == sizeof(CK_OBJECT_CLASS)
                ? *(CK_OBJECT_CLASS *)attrs[0].pValue
                : CK_UNAVAILABLE_INFORMATION;
    e.label = label;
    e.shown_label = shown;
    e.id = attrs[2].pValue;
    e.id_len = attrs[2].pValue != NULL ? attrs[2].ulValueLen : 0;
    e.visibility = visibility(w, info, r);
    w->found++;
    if (w->ops->object != NULL) {
        w->ops->object(w->ctx, &e);
    }
    if (r != NULL && !r->malformed && w->ops->rule != NULL) {
        rules_explain(w->st.view->def->rules, r->obj, w->ops->rule, w->ctx);
    }
    free(buf);
}

/* Walks one layer of the view. Returns CKR_OK, CKR_HOST_MEMORY or the
 * backend's code. Expects S. */
static CK_RV explain_layer(explain_walk *w, size_t layer)
{
    const CK_ATTRIBUTE_TYPE *shadow;
    size_t n_shadow = find_shadow_types(w->st.view, &shadow), n = 0;
    CK_OBJECT_HANDLE *found = NULL;
    handle_info *info = NULL;
    CK_RV rv = find_in_layer(w->s, layer, NULL, 0, &found, &n);

    if (rv != CKR_OK || n == 0) {
        goto out;
    }
    rv = CKR_HOST_MEMORY;
    info = calloc(n, sizeof(*info));
    if (info != NULL) {
        rv = handles_learn(w->s, layer, found, n, shadow, n_shadow, 0, NULL, info);
    }
    for (size_t i = 0; rv == CKR_OK && i < n; i++) {
        if (info[i].handle != CK_INVALID_HANDLE) {
            explain_one(w, layer, found[i], &info[i]);
        }
    }
out:
    free(found);
    free(info);
    return rv;
}

/* See engine.h. Takes S; calls backends and reads the catalog. */
CK_RV engine_explain(CK_SESSION_HANDLE session, const char *label, CK_OBJECT_HANDLE handle,
                     const engine_explain_ops *ops, void *ctx, size_t *n_found)
{
    explain_walk w;
    CK_RV rv = library_check();

    if (rv != CKR_OK) {
        return rv;
    }
    if (ops == NULL || n_found == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    memset(&w, 0, sizeof(w));
    rv = session_acquire(session, &w.s);
    if (rv != CKR_OK) {
        return rv;
    }
    w.label = label;
    w.handle = handle;
    w.ops = ops;
    w.ctx = ctx;
    session_view(w.s, &w.st);
    rv = CKR_USER_NOT_LOGGED_IN;
    if (w.st.view == NULL) {
        goto out;
    }
    rv = find_collect(w.s, &w.st, NULL, 0, &w.visible, &w.n_visible);
    if (rv != CKR_OK) {
        goto out;
    }
    if (engine_lib.catalog != NULL) {
        storage_whiteouts_load(engine_lib.catalog, w.s->token->def->label, w.st.view->def->id,
                               whiteout_one, &w);
    }
    for (size_t i = 0; rv == CKR_OK && i < w.st.view->n_layers; i++) {
        engine_layer *l = w.st.view->layers[i];
        CK_RV lrv;

        if (!backend_layer_usable(l)) {
            continue;
        }
        lrv = explain_layer(&w, backend_layer_index(w.s->token, l));
        rv = lrv == CKR_HOST_MEMORY ? lrv : CKR_OK;
    }
    *n_found = w.found;
out:
    free(w.visible);
    free(w.whiteouts);
    session_release(w.s);
    return rv;
}
