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
 * so lookups take no other lock; an entry is allocated once per object
 * and reused when it is refreshed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

typedef struct {
    table_node node;
    CK_OBJECT_HANDLE handle; /* virtual */
    const engine_view *view;
    unsigned long epoch;
    unsigned long stamp;
    size_t layer;
    CK_OBJECT_HANDLE backend;
    rule_object ro;
    object_rules rules;
} verdict_entry;

struct verdict_cache {
    table by_handle;
};

static atomic_ulong change_stamp = 1;

void verdict_changed(void)
{
    atomic_fetch_add(&change_stamp, 1);
}

void verdict_cache_free(engine_session *s)
{
    struct verdict_cache *cache = s->verdicts;

    if (cache == NULL) {
        return;
    }
    for (size_t i = 0; i < cache->by_handle.n_buckets; i++) {
        table_node *n = cache->by_handle.buckets[i];
        while (n != NULL) {
            table_node *next = n->next;
            verdict_entry *e = table_entry(n, verdict_entry, node);
            rule_object_free(&e->ro);
            free(e);
            n = next;
        }
    }
    table_clear(&cache->by_handle);
    free(cache);
    s->verdicts = NULL;
}

/* The session's entry for handle, made (empty) when missing. NULL when
 * memory ran out. Expects S. */
static verdict_entry *entry_for(engine_session *s, CK_OBJECT_HANDLE handle)
{
    uint64_t key = table_hash_u64(handle, 7);
    verdict_entry *e;

    if (s->verdicts == NULL) {
        s->verdicts = calloc(1, sizeof(*s->verdicts));
        if (s->verdicts == NULL) {
            return NULL;
        }
    }
    for (table_node *n = table_first(&s->verdicts->by_handle, key); n != NULL; n = table_next(n)) {
        e = table_entry(n, verdict_entry, node);
        if (e->handle == handle) {
            return e;
        }
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->handle = handle;
    if (table_insert(&s->verdicts->by_handle, &e->node, key) != CKR_OK) {
        free(e);
        return NULL;
    }
    return e;
}

static bool entry_fresh(const verdict_entry *e, const session_view_state *st, size_t layer,
                        CK_OBJECT_HANDLE backend, unsigned long stamp)
{
    return e->view == st->view && e->epoch == st->epoch && e->stamp == stamp && e->layer == layer &&
           e->backend == backend && e->rules.obj != NULL;
}

/* Fills a fail-closed verdict: invisible, read-only, everything denied. */
static void fail_closed(object_rules *r)
{
    r->malformed = true;
    r->verdict.hidden = true;
    r->verdict.readonly = true;
    r->verdict.denied = UINT32_MAX;
    r->verdict.deciding_rule = -1;
}

/*
 * See stack.h. A cached answer costs one hash lookup; otherwise one
 * backend attribute read and one evaluation. Expects S.
 */
CK_RV verdict_get(engine_session *s, const session_view_state *st, size_t layer,
                  CK_OBJECT_HANDLE backend, CK_OBJECT_HANDLE handle, const object_rules **out)
{
    unsigned long stamp = atomic_load(&change_stamp);
    verdict_entry *e = entry_for(s, handle);
    CK_RV rv;

    if (e == NULL) {
        return CKR_HOST_MEMORY;
    }
    if (!entry_fresh(e, st, layer, backend, stamp)) {
        rule_object_free(&e->ro);
        memset(&e->rules, 0, sizeof(e->rules));
        rv = rule_object_fetch(s, st->view, layer, backend, &e->ro);
        if (rv != CKR_OK) {
            return rv;
        }
        e->view = st->view;
        e->epoch = st->epoch;
        e->stamp = stamp;
        e->layer = layer;
        e->backend = backend;
        e->rules.obj = &e->ro.obj;
        if (rules_eval(st->view->def->rules, &e->ro.obj, &e->rules.verdict) != 0) {
            fail_closed(&e->rules);
        }
    }
    *out = &e->rules;
    return CKR_OK;
}

/* See stack.h. Expects S. */
CK_RV verdict_resolve(engine_session *s, const session_view_state *st, CK_OBJECT_HANDLE handle,
                      object_ref *ref)
{
    const object_rules *r;
    CK_RV rv = handles_resolve(s, st, handle, ref);

    if (rv != CKR_OK || st->view->def->rules == NULL) {
        return rv;
    }
    rv = verdict_get(s, st, ref->layer_index, ref->backend, ref->handle, &r);
    if (rv == CKR_OK && r->verdict.hidden) {
        rv = CKR_OBJECT_HANDLE_INVALID;
    }
    return rv;
}

/* See stack.h. Expects S. */
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
