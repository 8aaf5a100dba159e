/*
 * find.c - a search across the layers of the session's view (the
 * C_FindObjects* calls over it are ops/search.c's).
 *
 * A search runs whole at C_FindObjectsInit and its results are buffered
 * in the session (find_state): for each
 * usable layer of the view, top to bottom, the template (minus any
 * attribute a rule rewrites) is pushed down to the layer's backend; the
 * objects found get their virtual handles (handles.c); then an object is
 * dropped when
 *   - the view has whited it out (storage_whiteouts_load),
 *   - an upper layer holds a visible object with the same shadow identity
 *     (rules_program_shadow, default CKA_CLASS + CKA_ID; a data object
 *     that lacks them: class, application, object id and label, see
 *     index/learn.c): shadowing,
 *   - a hide rule matches it, or the rules cannot read it (rules_eval,
 *     only when the view has rules; the verdict is cached per session by
 *     verdict.c, so a repeated search reads no attribute again),
 *   - a rewritten attribute of the template does not match its rewritten
 *     value (rules_rewrite), or a "deny find" rule matches it (it stays
 *     visible to calls naming its handle).
 * Shadowing must see every visible object of the upper layers, not only
 * those matching the template: when the template has attributes beyond
 * the shadow identity, each upper layer is also searched with the shadow
 * part of the template alone.
 *
 * One search per session: a second Init while one is active gets
 * CKR_OPERATION_ACTIVE. A login or logout ends a search begun before it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "view.h"

static const CK_ATTRIBUTE_TYPE default_shadow[] = {CKA_CLASS, CKA_ID};

#define FIND_BATCH 256

/* ---------------------------------------------------------------------
 * Digest sets (whiteouts, shadow identities)
 * ------------------------------------------------------------------ */

/* A set of digests of one length: the digests side by side in one array,
 * an idtable of their numbers over it. */
typedef struct {
    unsigned char *digests; /* n digests of len bytes */
    size_t len, n, cap;
    idtable ids; /* digest i is number i + 1 */
} digest_set;

static uint64_t digest_key(const unsigned char *d)
{
    uint64_t k;

    memcpy(&k, d, sizeof(k)); /* already a digest */
    return k;
}

static uint64_t digest_rehash(const void *owner, uint32_t id)
{
    const digest_set *set = owner;

    return digest_key(set->digests + (id - 1) * set->len);
}

static bool set_has(const digest_set *set, const unsigned char *d)
{
    size_t c = idtable_begin(&set->ids, digest_key(d));
    uint32_t id;

    while ((id = idtable_next(&set->ids, &c)) != 0) {
        if (memcmp(set->digests + (id - 1) * set->len, d, set->len) == 0) {
            return true;
        }
    }
    return false;
}

/* Adds d (set->len bytes). CKR_OK or CKR_HOST_MEMORY. */
static CK_RV set_add(digest_set *set, const unsigned char *d)
{
    CK_RV rv;

    if (set_has(set, d)) {
        return CKR_OK;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap == 0 ? 64 : set->cap * 2;
        unsigned char *bigger;
        if (cap >= UINT32_MAX || cap > SIZE_MAX / set->len) {
            return CKR_HOST_MEMORY;
        }
        bigger = realloc(set->digests, cap * set->len);
        if (bigger == NULL) {
            return CKR_HOST_MEMORY;
        }
        set->digests = bigger;
        set->cap = cap;
    }
    memcpy(set->digests + set->n * set->len, d, set->len);
    rv = idtable_add(&set->ids, (uint32_t)set->n + 1, digest_key(d), digest_rehash, set);
    set->n += rv == CKR_OK ? 1 : 0;
    return rv;
}

static void set_free(digest_set *set)
{
    free(set->digests);
    idtable_clear(&set->ids);
    set->digests = NULL;
    set->n = set->cap = 0;
}

/* Collects one whiteout into ctx, a struct loading_whiteouts. */
struct loading_whiteouts {
    digest_set *set;
    CK_RV rv; /* CKR_HOST_MEMORY once one could not be kept: the search fails */
};

static void whiteout_one(void *ctx, const char *layer, const void *identity, size_t len,
                         CK_OBJECT_HANDLE handle)
{
    struct loading_whiteouts *w = ctx;

    (void)layer; /* the identity covers the layer */
    (void)handle;
    if (len == HANDLES_IDENTITY_LEN && w->rv == CKR_OK) {
        w->rv = set_add(w->set, identity);
    }
}

/* ---------------------------------------------------------------------
 * Rules
 * ------------------------------------------------------------------ */

size_t find_shadow_types(const engine_view *view, const CK_ATTRIBUTE_TYPE **types)
{
    if (view->def->rules != NULL) {
        return rules_program_shadow(view->def->rules, types);
    }
    *types = default_shadow;
    return sizeof(default_shadow) / sizeof(default_shadow[0]);
}

/* True when the value (p, len) equals the template attribute's. */
static bool value_is(const CK_ATTRIBUTE *want, const void *p, size_t len)
{
    return p != NULL && len == want->ulValueLen && (len == 0 || memcmp(p, want->pValue, len) == 0);
}

/*
 * True when a template attribute matches the object's value as the client
 * reads it: rewritten by the set rules, else stored (taken from what the
 * rules fetched when they read it, else from the backend). Never true on
 * a failure. Expects S.
 */
static bool rewritten_matches(engine_session *s, const engine_view *view, size_t layer,
                              CK_OBJECT_HANDLE backend, const rules_object *obj,
                              const CK_ATTRIBUTE *want)
{
    const CK_ATTRIBUTE *known;
    CK_ATTRIBUTE attr;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    unsigned char small[256], *big = NULL;
    void *buf = NULL;
    size_t len = 0;
    bool match = false;
    int r;

    r = rules_rewrite(view->def->rules, obj, want->type, NULL, 0, &len);
    if (r == 1) {
        if (len != want->ulValueLen) {
            return false;
        }
        big = len > sizeof(small) ? malloc(len) : NULL;
        if (len > sizeof(small) && big == NULL) {
            return false;
        }
        r = rules_rewrite(view->def->rules, obj, want->type, big != NULL ? big : small, len, &len);
        match = r == 1 && value_is(want, big != NULL ? big : small, len);
        free(big);
        return match;
    }
    if (r < 0) {
        return false;
    }
    known = backend_attr_find(obj->attrs, obj->n_attrs, want->type);
    if (known != NULL) {
        return value_is(want, known->pValue, known->pValue != NULL ? known->ulValueLen : 0);
    }
    if (backend_session(s, layer, &fl, &h) != CKR_OK ||
        backend_attrs(&s->token->layers[layer], fl, h, backend, &want->type, 1, &attr, &buf) !=
            CKR_OK) {
        return false;
    }
    match = value_is(want, attr.pValue, attr.ulValueLen);
    free(buf);
    return match;
}

/* ---------------------------------------------------------------------
 * One search
 * ------------------------------------------------------------------ */

typedef struct {
    engine_session *s;
    const engine_view *view;
    size_t view_index;
    const CK_ATTRIBUTE_TYPE *shadow;
    size_t n_shadow;
    CK_ATTRIBUTE *push; /* template part pushed to backends */
    CK_ULONG n_push;
    CK_ATTRIBUTE *rest; /* template part rules rewrite: matched here */
    CK_ULONG n_rest;
    CK_ATTRIBUTE *scan; /* the shadow identity part of push */
    CK_ULONG n_scan;
    digest_set whiteouts; /* identities the view whited out */
    digest_set shadows;   /* shadow identities of visible objects of upper layers */
    CK_OBJECT_HANDLE *results;
    size_t n_results, cap_results;
} search;

CK_RV find_in_layer(engine_session *s, size_t layer, CK_ATTRIBUTE *templ, CK_ULONG count,
                    CK_OBJECT_HANDLE **out, size_t *n)
{
    CK_OBJECT_HANDLE *found = NULL, *bigger;
    size_t have = 0, cap = 0;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_ULONG got = 0;
    CK_RV rv;

    rv = backend_session(s, layer, &fl, &h);
    if (rv != CKR_OK) {
        return rv;
    }
    backend_store_read(&s->token->layers[layer]);
    backend_state_read(&s->token->layers[layer]);
    rv = fl->C_FindObjectsInit(h, count > 0 ? templ : NULL, count);
    backend_state_done(&s->token->layers[layer]);
    backend_store_done(&s->token->layers[layer]);
    if (rv != CKR_OK) {
        return backend_rv(s, layer, rv);
    }
    do {
        if (cap - have < FIND_BATCH) {
            cap = cap == 0 ? FIND_BATCH : cap * 2;
            bigger = realloc(found, cap * sizeof(*found));
            if (bigger == NULL) {
                rv = CKR_HOST_MEMORY;
                break;
            }
            found = bigger;
        }
        rv = fl->C_FindObjects(h, found + have, FIND_BATCH, &got);
        have += rv == CKR_OK ? got : 0;
    } while (rv == CKR_OK && got > 0);
    fl->C_FindObjectsFinal(h);
    if (rv != CKR_OK) {
        free(found);
        return backend_rv(s, layer, rv);
    }
    *out = found;
    *n = have;
    return CKR_OK;
}

static CK_RV add_result(search *q, CK_OBJECT_HANDLE handle)
{
    CK_OBJECT_HANDLE *bigger;

    if (q->n_results == q->cap_results) {
        size_t cap = q->cap_results == 0 ? 64 : q->cap_results * 2;
        bigger = realloc(q->results, cap * sizeof(*bigger));
        if (bigger == NULL) {
            return CKR_HOST_MEMORY;
        }
        q->results = bigger;
        q->cap_results = cap;
    }
    q->results[q->n_results++] = handle;
    return CKR_OK;
}

/*
 * Whether an object the search met is visible in the view (whiteouts,
 * shadowing, hide rules; an object the rules cannot read is not), and
 * whether it is a result: it matches the rewritten part of the template
 * and no "deny find" rule keeps it out of searches. Marks the index.
 * Expects S.
 */
static void judge(search *q, const session_view_state *st, size_t layer, CK_OBJECT_HANDLE backend,
                  const handle_info *info, bool *visible, bool *matches)
{
    const rules_program *program = q->view->def->rules;
    const object_rules *r = NULL;

    *visible = !set_has(&q->whiteouts, info->identity) && !set_has(&q->shadows, info->shadow);
    *matches = true;
    if (*visible && program != NULL) {
        *visible =
            verdict_get(q->s, st, layer, backend, info->handle, &r) == CKR_OK && !r->verdict.hidden;
    }
    if (*visible && r != NULL) {
        *matches = !rules_denies(program, r->obj, RULES_OP_FIND, CK_UNAVAILABLE_INFORMATION);
        for (CK_ULONG i = 0; *matches && i < q->n_rest; i++) {
            *matches = rewritten_matches(q->s, q->view, layer, backend, r->obj, &q->rest[i]);
        }
    }
    handles_set_hidden(q->s->token, info->handle, q->view_index, !*visible);
}

/* What search_layer's seed gets: the search, and where the attributes it
 * gets were read. */
struct seeding {
    search *q;
    const session_view_state *st;
    size_t layer;
    unsigned long stamp; /* verdict_stamp() before the reads */
};

/* handles_extra's callback: the rules' attributes of a newly learned
 * object, read with its identity, become its verdict, so that judging it
 * costs no second backend read. A failure only loses that saving. */
static void seed(void *ctx, CK_OBJECT_HANDLE backend, const handle_info *info,
                 const CK_ATTRIBUTE *attrs)
{
    const struct seeding *sd = ctx;

    (void)verdict_seed(sd->q->s, sd->st, sd->layer, backend, info->handle, sd->stamp, attrs);
}

/* Searches one layer with templ; adds the visible matches to the
 * results when collect, and their shadow identities to *shadows. Learns
 * and judges the objects FIND_BATCH at a time; with rules, the objects it
 * learns have the rules' attributes read along (seed). */
static CK_RV search_layer(search *q, const session_view_state *st, size_t layer,
                          CK_ATTRIBUTE *templ, CK_ULONG count, bool collect, digest_set *shadows)
{
    CK_OBJECT_HANDLE *found = NULL;
    handle_info *info = NULL;
    size_t n = 0, batch;
    bool visible, matches;
    struct seeding sd = {q, st, layer, verdict_stamp()};
    handles_extra extra = {NULL, 0, seed, &sd};
    CK_RV rv;

    if (q->view->def->rules != NULL) {
        extra.n = rules_program_attributes(q->view->def->rules, &extra.types);
    }
    rv = find_in_layer(q->s, layer, templ, count, &found, &n);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_VALUE_INVALID) {
        return CKR_OK; /* this backend knows no object like that */
    }
    if (rv != CKR_OK || n == 0) {
        goto out;
    }
    batch = n < FIND_BATCH ? n : FIND_BATCH;
    rv = CKR_HOST_MEMORY;
    info = malloc(batch * sizeof(*info));
    if (info == NULL) {
        goto out;
    }
    rv = CKR_OK;
    for (size_t at = 0; rv == CKR_OK && at < n; at += batch) {
        size_t m = n - at < batch ? n - at : batch;
        memset(info, 0, m * sizeof(*info));
        rv = handles_learn(q->s, layer, found + at, m, q->shadow, q->n_shadow, 0,
                           extra.n > 0 ? &extra : NULL, info);
        for (size_t i = 0; rv == CKR_OK && i < m; i++) {
            if (info[i].handle == CK_INVALID_HANDLE) {
                continue;
            }
            judge(q, st, layer, found[at + i], &info[i], &visible, &matches);
            if (visible) {
                rv = set_add(shadows, info[i].shadow);
            }
            if (rv == CKR_OK && visible && matches && collect) {
                rv = add_result(q, info[i].handle);
            }
        }
    }
out:
    free(found);
    free(info);
    return rv;
}

/* Adds every digest of from to to, and empties from. */
static CK_RV set_merge(digest_set *to, digest_set *from)
{
    CK_RV rv = CKR_OK;

    for (size_t i = 0; rv == CKR_OK && i < from->n; i++) {
        rv = set_add(to, from->digests + i * from->len);
    }
    set_free(from);
    return rv;
}

static bool in_types(const CK_ATTRIBUTE_TYPE *types, size_t n, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < n; i++) {
        if (types[i] == type) {
            return true;
        }
    }
    return false;
}

static const CK_BBOOL session_only_value = CK_FALSE;

/* Splits the template into its pushed, rewritten and shadow-scan parts.
 * With sessions_only (public-view="none" before login), CKA_TOKEN false
 * is pushed down too, so no backend reports a token object. */
static CK_RV split_template(search *q, const CK_ATTRIBUTE *templ, CK_ULONG count,
                            bool sessions_only)
{
    const rules_program *program = q->view->def->rules;
    const CK_ATTRIBUTE session_only = {CKA_TOKEN, (void *)&session_only_value,
                                       sizeof(session_only_value)};

    if (count == 0 && !sessions_only) {
        return CKR_OK;
    }
    q->push = calloc(count + 1, sizeof(*q->push));
    q->rest = calloc(count + 1, sizeof(*q->rest));
    q->scan = calloc(count + 1, sizeof(*q->scan));
    if (q->push == NULL || q->rest == NULL || q->scan == NULL) {
        return CKR_HOST_MEMORY;
    }
    if (sessions_only) {
        q->push[q->n_push++] = session_only;
        q->scan[q->n_scan++] = session_only;
    }
    for (CK_ULONG i = 0; i < count; i++) {
        if (program != NULL && rules_program_rewrites(program, templ[i].type)) {
            q->rest[q->n_rest++] = templ[i];
            continue;
        }
        q->push[q->n_push++] = templ[i];
        if (in_types(q->shadow, q->n_shadow, templ[i].type)) {
            q->scan[q->n_scan++] = templ[i];
        }
    }
    return CKR_OK;
}

/* True when a usable layer of the view lies below position i. */
static bool lower_usable(const engine_view *view, size_t i)
{
    for (size_t j = i + 1; j < view->n_layers; j++) {
        if (backend_layer_usable(view->layers[j])) {
            return true;
        }
    }
    return false;
}

/*
 * The whole search (see the file comment). Returns CKR_OK with *out
 * (malloc'd, possibly NULL when empty) and *n_out; CKR_HOST_MEMORY. A
 * layer whose backend fails is left out of the results (logged). Expects
 * S; calls backends.
 */
CK_RV find_collect(engine_session *s, const session_view_state *st, const CK_ATTRIBUTE *templ,
                   CK_ULONG count, CK_OBJECT_HANDLE **out, size_t *n_out)
{
    search q;
    CK_RV rv = CKR_OK;

    *out = NULL;
    *n_out = 0;
    if (st->view == NULL) {
        return CKR_OK;
    }
    memset(&q, 0, sizeof(q));
    q.s = s;
    q.view = st->view;
    q.view_index = (size_t)(st->view - s->token->views);
    q.n_shadow = find_shadow_types(st->view, &q.shadow);
    q.whiteouts.len = HANDLES_IDENTITY_LEN;
    q.shadows.len = HANDLES_SHADOW_LEN;
    rv = split_template(&q, templ, count, st->sessions_only);
    if (rv == CKR_OK && engine_lib.catalog != NULL) {
        struct loading_whiteouts w = {&q.whiteouts, CKR_OK};
        storage_whiteouts_load(engine_lib.catalog, s->token->def->label, st->view->def->id,
                               whiteout_one, &w);
        rv = w.rv;
    }
    for (size_t i = 0; rv == CKR_OK && i < st->view->n_layers; i++) {
        engine_layer *l = st->view->layers[i];
        size_t layer = backend_layer_index(s->token, l);
        digest_set mine = {.len = HANDLES_SHADOW_LEN};
        CK_RV lrv;

        if (!backend_layer_serves(st, l)) {
            continue;
        }
        lrv = search_layer(&q, st, layer, q.push, q.n_push, true, &mine);
        if (lrv == CKR_OK && q.n_scan < q.n_push && lower_usable(st->view, i)) {
            lrv = search_layer(&q, st, layer, q.scan, q.n_scan, false, &mine);
        }
        if (lrv == CKR_HOST_MEMORY) {
            rv = lrv;
        } else if (lrv != CKR_OK) {
            engine_log(ENGINE_LOG_WARNING, "layer \"%s\": search failed: %s", l->def->id,
                       layers_rv_name(lrv));
        }
        if (rv == CKR_OK) {
            rv = set_merge(&q.shadows, &mine);
        } else {
            set_free(&mine);
        }
    }
    set_free(&q.whiteouts);
    set_free(&q.shadows);
    free(q.push);
    free(q.rest);
    free(q.scan);
    if (rv != CKR_OK) {
        free(q.results);
        return rv;
    }
    *out = q.results;
    *n_out = q.n_results;
    return CKR_OK;
}

/* Ends the session's search, if any; when the session is closing
 * (session_end calls this last), also frees its rule cache. Expects S. */
void find_end(engine_session *s)
{
    free(s->find.results);
    memset(&s->find, 0, sizeof(s->find));
    if (s->closed) {
        verdict_cache_free(s);
    }
}
