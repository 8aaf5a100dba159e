/*
 * verdict.c - the view's rules applied to one object, cached per session.
 *
 * A view with <rules> decides for every object whether it is visible,
 * read-only or denied some operations, and what a client reads in some of
 * its attributes. The rules read a fixed set of attributes
 * (rules_program_attributes); fetching them costs backend calls, so each
 * virtual session keeps what it fetched, with the verdict, per virtual
 * handle. An entry stays good while the session's view, the token's login
 * epoch, the object's place (layer, backend handle) and the process-wide
 * change stamp are those it was made with: any C_SetAttributeValue,
 * C_DestroyObject or C_CopyObject through Strata bumps the stamp. A
 * change made behind Strata's back (another process) is seen at the next
 * login.
 *
 * The cache lives in the session and is only touched under its lock S,
 * so lookups take no other lock. An entry is one allocation: what it was
 * made with, the verdict, and the values of the attributes the rules read
 * (their types are the view's program's, their lengths packed in 32 bits),
 * with an idtable of entry numbers by handle over them: about 140 bytes an
 * object where the attributes take 40. A lookup unpacks the entry into the
 * cache's one rules_object, which is why an answer is valid until the
 * next verdict_* call on the session.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

#define LEN_UNAVAILABLE UINT32_MAX /* the attribute's pValue NULL, length unavailable */

typedef struct {
    CK_OBJECT_HANDLE handle; /* virtual */
    const engine_view *view;
    unsigned long epoch;
    unsigned long stamp;
    CK_OBJECT_HANDLE backend;
    uint32_t layer;
    uint16_t n_attrs; /* the view's program's attributes, in its order */
    bool malformed;   /* rules_eval refused the object (fail closed) */
    rules_verdict verdict;
    uint32_t lens[]; /* n_attrs lengths (LEN_UNAVAILABLE), then the values */
} verdict_entry;

struct verdict_cache {
    verdict_entry **entries; /* entry k is entries[k - 1]; NULL until made */
    size_t n, cap;
    idtable by_handle;
    CK_ATTRIBUTE *attrs; /* the answer's attributes (cap_attrs) */
    size_t cap_attrs;
    rules_object obj;    /* the answer's object */
    object_rules answer; /* what verdict_get returns */
};

static atomic_ulong change_stamp = 1;

/*
 * Fetches the attributes the view's program reads for one backend object.
 * Returns CKR_OK (out->obj ready, possibly with no attributes), or the
 * backend's code. Expects S.
 */
CK_RV rule_object_fetch(engine_session *s, const engine_view *view, size_t layer,
                        CK_OBJECT_HANDLE backend, rule_object *out)
{
    const CK_ATTRIBUTE_TYPE *types = NULL;
    size_t n = 0;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    memset(out, 0, sizeof(*out));
    out->obj.layer = s->token->layers[layer].def->id;
    out->obj.view = view->def->id;
    out->obj.token = s->token->def->label;
    if (view->def->rules != NULL) {
        n = rules_program_attributes(view->def->rules, &types);
    }
    if (n == 0) {
        return CKR_OK;
    }
    out->attrs = calloc(n, sizeof(*out->attrs));
    if (out->attrs == NULL) {
        return CKR_HOST_MEMORY;
    }
    rv = backend_session(s, layer, &fl, &h);
    if (rv == CKR_OK) {
        rv = backend_attrs(&s->token->layers[layer], fl, h, backend, types, n, out->attrs,
                           &out->buf);
    }
    if (rv != CKR_OK) {
        rule_object_free(out);
        return backend_rv(s, layer, rv);
    }
    out->obj.attrs = out->attrs;
    out->obj.n_attrs = n;
    return CKR_OK;
}

void rule_object_free(rule_object *ro)
{
    free(ro->attrs);
    free(ro->buf);
    memset(ro, 0, sizeof(*ro));
}

void verdict_changed(void)
{
    atomic_fetch_add(&change_stamp, 1);
}

unsigned long verdict_stamp(void)
{
    return atomic_load(&change_stamp);
}

void verdict_cache_free(engine_session *s)
{
    struct verdict_cache *cache = s->verdicts;

    if (cache == NULL) {
        return;
    }
    for (size_t i = 0; i < cache->n; i++) {
        free(cache->entries[i]);
    }
    free(cache->entries);
    idtable_clear(&cache->by_handle);
    free(cache->attrs);
    free(cache);
    s->verdicts = NULL;
}

static uint64_t handle_key(CK_OBJECT_HANDLE handle)
{
    return table_hash_u64(handle, 7);
}

static uint64_t rehash(const void *owner, uint32_t k)
{
    const struct verdict_cache *cache = owner;

    return handle_key(cache->entries[k - 1]->handle);
}

/* The number of handle's slot in the cache, made (empty) when missing; 0
 * when memory ran out. Expects S. */
static uint32_t slot_for(engine_session *s, CK_OBJECT_HANDLE handle)
{
    struct verdict_cache *cache = s->verdicts;
    size_t c;
    uint32_t k;

    if (cache == NULL && (cache = s->verdicts = calloc(1, sizeof(*cache))) == NULL) {
        return 0;
    }
    c = idtable_begin(&cache->by_handle, handle_key(handle));
    while ((k = idtable_next(&cache->by_handle, &c)) != 0) {
        if (cache->entries[k - 1]->handle == handle) {
            return k;
        }
    }
    return 0;
}

static bool entry_fresh(const verdict_entry *e, const session_view_state *st, size_t layer,
                        CK_OBJECT_HANDLE backend, unsigned long stamp)
{
    return e->view == st->view && e->epoch == st->epoch && e->stamp == stamp && e->layer == layer &&
           e->backend == backend;
}

/* Packs the object's attributes into one new entry; NULL when memory ran
 * out. */
static verdict_entry *pack(const rules_object *obj, CK_OBJECT_HANDLE handle)
{
    size_t n = obj->n_attrs, size = sizeof(verdict_entry) + n * sizeof(uint32_t);
    unsigned char *values;
    verdict_entry *e;

    if (n > UINT16_MAX) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const CK_ATTRIBUTE *a = &obj->attrs[i];
        if (a->pValue != NULL) {
            if (a->ulValueLen >= LEN_UNAVAILABLE) {
                return NULL;
            }
            size += a->ulValueLen;
        }
    }
    e = malloc(size);
    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->handle = handle;
    e->n_attrs = (uint16_t)n;
    values = (unsigned char *)&e->lens[n];
    for (size_t i = 0; i < n; i++) {
        const CK_ATTRIBUTE *a = &obj->attrs[i];
        e->lens[i] = a->pValue != NULL ? (uint32_t)a->ulValueLen : LEN_UNAVAILABLE;
        if (a->pValue != NULL && a->ulValueLen > 0) {
            memcpy(values, a->pValue, a->ulValueLen);
            values += a->ulValueLen;
        }
    }
    return e;
}

/* Unpacks entry e of the view's program (types) into the cache's answer.
 * CKR_OK or CKR_HOST_MEMORY. */
static CK_RV unpack(struct verdict_cache *cache, const verdict_entry *e,
                    const CK_ATTRIBUTE_TYPE *types, const engine_session *s,
                    const engine_view *view)
{
    const unsigned char *values = (const unsigned char *)&e->lens[e->n_attrs];

    if (e->n_attrs > cache->cap_attrs) {
        CK_ATTRIBUTE *bigger = realloc(cache->attrs, e->n_attrs * sizeof(*bigger));
        if (bigger == NULL) {
            return CKR_HOST_MEMORY;
        }
        cache->attrs = bigger;
        cache->cap_attrs = e->n_attrs;
    }
    for (size_t i = 0; i < e->n_attrs; i++) {
        CK_ATTRIBUTE *a = &cache->attrs[i];
        a->type = types[i];
        a->pValue = NULL;
        a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
        if (e->lens[i] != LEN_UNAVAILABLE) {
            a->pValue = (void *)values;
            a->ulValueLen = e->lens[i];
            values += e->lens[i];
        }
    }
    cache->obj.layer = s->token->layers[e->layer].def->id;
    cache->obj.view = view->def->id;
    cache->obj.token = s->token->def->label;
    cache->obj.attrs = cache->attrs;
    cache->obj.n_attrs = e->n_attrs;
    cache->answer.obj = &cache->obj;
    cache->answer.verdict = e->verdict;
    cache->answer.malformed = e->malformed;
    return CKR_OK;
}

/* Fills a fail-closed verdict: invisible, read-only, everything denied. */
static void fail_closed(rules_verdict *v)
{
    v->hidden = true;
    v->readonly = true;
    v->denied = UINT32_MAX;
    v->deciding_rule = -1;
}

/*
 * Evaluates obj, the object (layer, backend) with virtual handle, and
 * keeps it with the verdict in slot k of the cache (0: a new slot).
 * CKR_OK or CKR_HOST_MEMORY. Expects S.
 */
static CK_RV store(engine_session *s, const session_view_state *st, size_t layer,
                   CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, unsigned long stamp,
                   uint32_t k, const rules_object *obj)
{
    struct verdict_cache *cache = s->verdicts;
    verdict_entry *e = pack(obj, handle);

    if (e == NULL) {
        return CKR_HOST_MEMORY;
    }
    e->view = st->view;
    e->epoch = st->epoch;
    e->stamp = stamp;
    e->layer = (uint32_t)layer;
    e->backend = backend;
    if (rules_eval(st->view->def->rules, obj, &e->verdict) != 0) {
        fail_closed(&e->verdict);
        e->malformed = true;
    }
    if (k != 0) {
        free(cache->entries[k - 1]);
        cache->entries[k - 1] = e;
        return CKR_OK;
    }
    if (cache->n == cache->cap) {
        size_t cap = cache->cap == 0 ? 64 : cache->cap * 2;
        verdict_entry **bigger =
            cap < UINT32_MAX ? realloc(cache->entries, cap * sizeof(*bigger)) : NULL;
        if (bigger == NULL) {
            free(e);
            return CKR_HOST_MEMORY;
        }
        cache->entries = bigger;
        cache->cap = cap;
    }
    cache->entries[cache->n] = e;
    if (idtable_add(&cache->by_handle, (uint32_t)cache->n + 1, handle_key(handle), rehash, cache) !=
        CKR_OK) {
        free(e);
        return CKR_HOST_MEMORY;
    }
    cache->n++;
    return CKR_OK;
}

/* Fetches the object's attributes and stores them (store). CKR_OK;
 * CKR_HOST_MEMORY; or the backend's code. Expects S. */
static CK_RV refresh(engine_session *s, const session_view_state *st, size_t layer,
                     CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, unsigned long stamp,
                     uint32_t k)
{
    rule_object ro;
    CK_RV rv = rule_object_fetch(s, st->view, layer, backend, &ro);

    if (rv != CKR_OK) {
        return rv;
    }
    rv = store(s, st, layer, backend, handle, stamp, k, &ro.obj);
    rule_object_free(&ro);
    return rv;
}

/* See view.h. Expects S. */
CK_RV verdict_seed(engine_session *s, const session_view_state *st, size_t layer,
                   CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, unsigned long stamp,
                   const CK_ATTRIBUTE *attrs)
{
    const CK_ATTRIBUTE_TYPE *types = NULL;
    rules_object obj;
    uint32_t k = slot_for(s, handle);

    if (s->verdicts == NULL) {
        return CKR_HOST_MEMORY;
    }
    memset(&obj, 0, sizeof(obj));
    obj.layer = s->token->layers[layer].def->id;
    obj.view = st->view->def->id;
    obj.token = s->token->def->label;
    obj.attrs = attrs;
    obj.n_attrs = rules_program_attributes(st->view->def->rules, &types);
    return store(s, st, layer, backend, handle, stamp, k, &obj);
}

/*
 * See view.h. A cached answer costs one hash lookup; otherwise one
 * backend attribute read and one evaluation. Expects S.
 */
CK_RV verdict_get(engine_session *s, const session_view_state *st, size_t layer,
                  CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, const object_rules **out)
{
    unsigned long stamp = atomic_load(&change_stamp);
    const CK_ATTRIBUTE_TYPE *types = NULL;
    uint32_t k = slot_for(s, handle);
    CK_RV rv;

    if (s->verdicts == NULL) {
        return CKR_HOST_MEMORY;
    }
    if (k == 0 || !entry_fresh(s->verdicts->entries[k - 1], st, layer, backend, stamp)) {
        rv = refresh(s, st, layer, backend, handle, stamp, k);
        if (rv != CKR_OK) {
            return rv;
        }
        k = k != 0 ? k : (uint32_t)s->verdicts->n;
    }
    rules_program_attributes(st->view->def->rules, &types);
    rv = unpack(s->verdicts, s->verdicts->entries[k - 1], types, s, st->view);
    if (rv == CKR_OK) {
        *out = &s->verdicts->answer;
    }
    return rv;
}

/* See view.h. Expects S. */
bool verdict_denies(engine_session *s, const session_view_state *st, const object_ref *ref,
                    rules_op op, CK_MECHANISM_TYPE mechanism)
{
    const rules_program *program = st->view != NULL ? st->view->def->rules : NULL;
    const object_rules *r;

    if (program == NULL) {
        return false;
    }
    if (verdict_get(s, st, ref->layer_index, ref->backend, ref->handle, &r) != CKR_OK ||
        r->malformed) {
        return true;
    }
    return (r->verdict.denied & (uint32_t)op) != 0 || rules_denies(program, r->obj, op, mechanism);
}
