/*
 * learn.c - teaching the handle index (handles.c's file comment says what
 * it holds): the token objects the catalog knows, once (priming), and the
 * backend objects a search or a call meets, with their identities read
 * from the backend and their stable handles from the catalog; and a token
 * object's identity moved when C_SetAttributeValue changed it. Backend
 * reads and catalog writes run under the learn lock, never under H.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "entries.h"

static const CK_ATTRIBUTE_TYPE identity_types[] = {
    CKA_CLASS, CKA_ID, CKA_LABEL, CKA_KEY_TYPE, CKA_CERTIFICATE_TYPE, CKA_SERIAL_NUMBER, CKA_ISSUER,
};
#define N_IDENTITY  (sizeof(identity_types) / sizeof(identity_types[0]))
#define MAX_FETCH   26  /* identity + CKA_TOKEN + a data object's 2 + shadow attributes */
#define MAX_EXTRA   64  /* attributes read along (handles_extra); more: not read along */
#define LEARN_BATCH 256 /* objects read per round of handles_learn */

/* ---------------------------------------------------------------------
 * Priming from the catalog
 * ------------------------------------------------------------------ */

static void prime_one(void *ctx, const char *layer, const void *identity, size_t len,
                      CK_OBJECT_HANDLE handle)
{
    engine_handles *index = ctx;
    uint32_t n;

    (void)layer; /* the identity digest covers the layer */
    if (len != HANDLES_IDENTITY_LEN || handle == CK_INVALID_HANDLE ||
        handle >= HANDLES_SESSION_BASE) {
        return;
    }
    engine_mutex_lock(index->lock);
    if (by_handle(index, handle) == 0 && by_identity(index, identity) == 0 &&
        (n = entry_new(index)) != 0) {
        handle_entry *e = entry_at(index, n);
        e->handle = handle;
        e->flags |= ENTRY_TOKEN;
        memcpy(e->identity, identity, HANDLES_IDENTITY_LEN);
        if (add_handle(index, n) != CKR_OK || add_identity(index, n) != CKR_OK) {
            drop(index, n);
        }
    }
    engine_mutex_unlock(index->lock);
}

/* Loads the catalog's identities of token once. Expects the learn lock.
 * A catalog that fails leaves the index unprimed (retried next time):
 * objects then get new handles, which is only a loss of stability. */
void prime_inlearn(engine_token *token)
{
    engine_handles *index = token->handles;
    storage_rc src;

    if (index->primed || engine_lib.catalog == NULL) {
        return;
    }
    src = storage_objects_load(engine_lib.catalog, token->def->label, prime_one, index);
    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_WARNING, "token \"%s\": cannot load object handles: %s",
                   token->def->label, storage_strerror(src));
        return;
    }
    index->primed = true;
}

/* See index.h. Takes the learn lock when it primes. */
void handles_prime(engine_token *token, CK_OBJECT_HANDLE handle)
{
    if (!token->handles->primed && handle < HANDLES_SESSION_BASE) {
        engine_mutex_lock(token->handles->learn_lock);
        prime_inlearn(token);
        engine_mutex_unlock(token->handles->learn_lock);
    }
}

/* ---------------------------------------------------------------------
 * Learning backend objects
 * ------------------------------------------------------------------ */

static void hash_attr(crypto_generichash_state *st, const CK_ATTRIBUTE *a, CK_ATTRIBUTE_TYPE type)
{
    uint64_t t = type, len = UINT64_MAX;

    if (a != NULL && a->pValue != NULL) {
        len = a->ulValueLen;
    }
    crypto_generichash_update(st, (const unsigned char *)&t, sizeof(t));
    crypto_generichash_update(st, (const unsigned char *)&len, sizeof(len));
    if (len != UINT64_MAX && len > 0) {
        crypto_generichash_update(st, a->pValue, a->ulValueLen);
    }
}

/* What handles_learn reads of one object it has not met. */
typedef struct {
    bool needed; /* not (fully) known to the index */
    bool readable;
    bool token_object;
    crypto_generichash_state base; /* identity without its ordinal */
    unsigned char shadow[HANDLES_SHADOW_LEN];
    uint32_t pending;    /* reserved entry awaiting its catalog handle, or 0 */
    CK_ATTRIBUTE *extra; /* the handles_extra attributes read along, or NULL */
    void *values;        /* their values (and the identity's), with extra */
} learn_item;

/* The position of type in types[0..*n), appended when missing (the
 * caller leaves room). */
static size_t type_slot(CK_ATTRIBUTE_TYPE *types, size_t *n, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < *n; i++) {
        if (types[i] == type) {
            return i;
        }
    }
    types[*n] = type;
    return (*n)++;
}

/* Keeps the extra attributes (attrs[0..n)) and their values (buf) in
 * item for the handles_extra callback. CKR_OK or CKR_HOST_MEMORY (then
 * buf is freed). */
static CK_RV keep_extra(learn_item *item, const CK_ATTRIBUTE *attrs, size_t n, void *buf)
{
    item->extra = malloc(n * sizeof(*attrs));
    if (item->extra == NULL) {
        free(buf);
        return CKR_HOST_MEMORY;
    }
    memcpy(item->extra, attrs, n * sizeof(*attrs));
    item->values = buf;
    return CKR_OK;
}

static void forget_extra(learn_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].extra);
        free(items[i].values);
        items[i].extra = NULL;
        items[i].values = NULL;
    }
}

/* The shadow identity of a data object that the view's shadow attributes
 * do not identify (a data object has no CKA_ID): class, CKA_APPLICATION,
 * CKA_OBJECT_ID and CKA_LABEL (attrs[at[0..4)]), which PKCS#11 names a
 * data object by and which strata migrate matches a data object's copy
 * on. Into sh, started over here; false (sh untouched) when the object
 * names itself by neither application nor label. */
static bool data_shadow(const CK_ATTRIBUTE *attrs, const size_t at[4], crypto_generichash_state *sh)
{
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_CLASS, CKA_APPLICATION, CKA_OBJECT_ID, CKA_LABEL};
    bool named = false;

    for (size_t i = 1; i < 4; i += 2) { /* the application, the label */
        named = named || (attrs[at[i]].pValue != NULL && attrs[at[i]].ulValueLen > 0);
    }
    if (named) {
        crypto_generichash_init(sh, NULL, 0, HANDLES_SHADOW_LEN);
        crypto_generichash_update(sh, (const unsigned char *)"strata-data-shadow", 19);
        for (size_t i = 0; i < 4; i++) {
            hash_attr(sh, &attrs[at[i]], types[i]);
        }
    }
    return named;
}

/* Whether attrs (identity_types' values) are a data object's. */
static bool is_data(const CK_ATTRIBUTE *attrs)
{
    CK_OBJECT_CLASS cls;

    if (attrs[0].pValue == NULL || attrs[0].ulValueLen != sizeof(cls)) {
        return false;
    }
    memcpy(&cls, attrs[0].pValue, sizeof(cls));
    return cls == CKO_DATA;
}

/* Reads one object's identity and shadow attributes from the backend, and
 * extra's when given (kept in item), in one backend_attrs, and digests
 * them. Returns CKR_OK, CKR_HOST_MEMORY or the backend's code. */
static CK_RV read_object(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, engine_layer *layer,
                         CK_OBJECT_HANDLE object, const CK_ATTRIBUTE_TYPE *shadow, size_t n_shadow,
                         const handles_extra *extra, learn_item *item)
{
    CK_ATTRIBUTE_TYPE types[MAX_FETCH + MAX_EXTRA];
    CK_ATTRIBUTE attrs[MAX_FETCH + MAX_EXTRA], kept[MAX_EXTRA];
    size_t at_shadow[MAX_FETCH], at_extra[MAX_EXTRA], at_data[4];
    const CK_ATTRIBUTE *tok;
    crypto_generichash_state sh;
    void *buf = NULL;
    bool complete = n_shadow > 0;
    size_t n = 0, n_extra = extra != NULL && extra->n <= MAX_EXTRA ? extra->n : 0;
    CK_RV rv;

    if (n_shadow > MAX_FETCH - N_IDENTITY - 3) {
        n_shadow = MAX_FETCH - N_IDENTITY - 3;
    }
    /* Each type once: SoftHSM2's cost grows with the attributes read, and
     * the shadow and rule attributes are mostly identity ones already. */
    memcpy(types, identity_types, sizeof(identity_types));
    n = N_IDENTITY;
    types[n++] = CKA_TOKEN;
    /* A data object's identity across layers (data_shadow): class and
     * label are identity attributes already. */
    at_data[0] = 0;
    at_data[1] = type_slot(types, &n, CKA_APPLICATION);
    at_data[2] = type_slot(types, &n, CKA_OBJECT_ID);
    at_data[3] = 2;
    for (size_t i = 0; i < n_shadow; i++) {
        at_shadow[i] = type_slot(types, &n, shadow[i]);
    }
    for (size_t i = 0; i < n_extra; i++) {
        at_extra[i] = type_slot(types, &n, extra->types[i]);
    }
    rv = backend_attrs(layer, fl, h, object, types, n, attrs, &buf);
    if (rv != CKR_OK) {
        return rv;
    }
    tok = backend_attr_find(attrs, n, CKA_TOKEN);
    item->token_object = tok != NULL && tok->pValue != NULL && tok->ulValueLen == 1 &&
                         *(CK_BBOOL *)tok->pValue == CK_TRUE;
    crypto_generichash_init(&item->base, NULL, 0, HANDLES_IDENTITY_LEN);
    crypto_generichash_update(&item->base, (const unsigned char *)"strata-identity-1", 18);
    crypto_generichash_update(&item->base, (const unsigned char *)layer->def->id,
                              strlen(layer->def->id) + 1);
    crypto_generichash_update(&item->base, (const unsigned char *)layer->label,
                              strlen(layer->label) + 1);
    for (size_t i = 0; i < N_IDENTITY; i++) {
        hash_attr(&item->base, &attrs[i], identity_types[i]);
    }
    crypto_generichash_init(&sh, NULL, 0, HANDLES_SHADOW_LEN);
    for (size_t i = 0; i < n_shadow; i++) {
        const CK_ATTRIBUTE *a = &attrs[at_shadow[i]];
        complete = complete && a->pValue != NULL && a->ulValueLen > 0 &&
                   a->ulValueLen != CK_UNAVAILABLE_INFORMATION;
        hash_attr(&sh, a, shadow[i]);
    }
    if (!complete && is_data(attrs) && data_shadow(attrs, at_data, &sh)) {
        complete = true; /* sh was started over */
    }
    if (!complete) {
        /* Not identifiable across layers: a key made without a CKA_ID
         * has an empty one, a data object may name itself by nothing.
         * Such an object neither shadows nor is shadowed; a digest unique
         * to it stands in. */
        crypto_generichash_update(&sh, (const unsigned char *)"strata-unshadowable", 20);
        crypto_generichash_update(&sh, (const unsigned char *)layer->def->id,
                                  strlen(layer->def->id) + 1);
        crypto_generichash_update(&sh, (const unsigned char *)layer->label,
                                  strlen(layer->label) + 1);
        crypto_generichash_update(&sh, (const unsigned char *)&object, sizeof(object));
    }
    crypto_generichash_final(&sh, item->shadow, HANDLES_SHADOW_LEN);
    item->readable = true;
    if (n_extra > 0) {
        for (size_t i = 0; i < n_extra; i++) {
            kept[i] = attrs[at_extra[i]];
        }
        return keep_extra(item, kept, n_extra, buf);
    }
    free(buf);
    return CKR_OK;
}

static void identity_of(const learn_item *item, uint32_t ordinal, unsigned char *out)
{
    crypto_generichash_state st = item->base;

    crypto_generichash_update(&st, (const unsigned char *)&ordinal, sizeof(ordinal));
    crypto_generichash_final(&st, out, HANDLES_IDENTITY_LEN);
}

static void fill_info(const handle_entry *e, handle_info *info)
{
    info->handle = e->handle;
    info->token_object = (e->flags & ENTRY_TOKEN) != 0;
    memcpy(info->identity, e->identity, HANDLES_IDENTITY_LEN);
    memcpy(info->shadow, e->shadow, HANDLES_SHADOW_LEN);
}

/* The fresh, complete entry of (layer, backend) or NULL. Expects H. */
static const handle_entry *known(engine_handles *index, uint16_t layer, CK_OBJECT_HANDLE backend,
                                 unsigned gen, const CK_ATTRIBUTE_TYPE *shadow)
{
    uint32_t n = by_backend(index, layer, backend);
    const handle_entry *e;

    if (n == 0) {
        return NULL;
    }
    e = entry_at(index, n);
    if (e->generation != gen) {
        unbind(index, n); /* stale: re-resolve by identity */
        return NULL;
    }
    if (e->handle == CK_INVALID_HANDLE || e->shadow_types != shadow) {
        return NULL;
    }
    return e;
}

/* Pass 1: answers what the index already knows. Takes H. Returns the
 * number of objects still to learn. */
static size_t answer_known(engine_handles *index, uint16_t layer, unsigned gen,
                           const CK_OBJECT_HANDLE *backend, size_t n,
                           const CK_ATTRIBUTE_TYPE *shadow, handle_info *out, learn_item *items)
{
    size_t missing = 0;

    engine_mutex_lock(index->lock);
    for (size_t i = 0; i < n; i++) {
        const handle_entry *e = known(index, layer, backend[i], gen, shadow);
        items[i].needed = e == NULL;
        if (e != NULL) {
            fill_info(e, &out[i]);
        } else {
            missing++;
        }
    }
    engine_mutex_unlock(index->lock);
    return missing;
}

/* Binds entry n to (layer, backend) of generation gen with item's shadow. */
static void bind(handle_entry *e, uint16_t layer, CK_OBJECT_HANDLE backend, unsigned gen,
                 const CK_ATTRIBUTE_TYPE *shadow, const learn_item *item)
{
    e->layer = layer;
    e->backend = backend;
    e->generation = gen;
    memcpy(e->shadow, item->shadow, HANDLES_SHADOW_LEN);
    e->shadow_types = shadow;
}

/*
 * Places one read object in the index. Expects H and the learn lock.
 * Token objects: walks the ordinals until an identity is free, or is a
 * catalog entry not met yet (claimed), or is stale (re-resolved); a free
 * identity gets a reserved entry (handle 0) for the catalog round.
 * Session objects get the next session handle at once.
 */
static CK_RV place(engine_handles *index, uint16_t layer, unsigned gen, CK_OBJECT_HANDLE backend,
                   const CK_ATTRIBUTE_TYPE *shadow, CK_SESSION_HANDLE owner, learn_item *item,
                   handle_info *info)
{
    unsigned char id[HANDLES_IDENTITY_LEN];
    uint32_t n = by_backend(index, layer, backend);
    handle_entry *e;
    CK_RV rv;

    if (n != 0) { /* met before: only its shadow needed refreshing */
        e = entry_at(index, n);
        memcpy(e->shadow, item->shadow, HANDLES_SHADOW_LEN);
        e->shadow_types = shadow;
        fill_info(e, info);
        return CKR_OK;
    }
    for (uint32_t ordinal = 0; item->token_object; ordinal++) {
        identity_of(item, ordinal, id);
        n = by_identity(index, id);
        if (n == 0) {
            break;
        }
        e = entry_at(index, n);
        if (e->layer == 0 ||
            (e->layer == layer && (e->generation != gen || !(e->flags & ENTRY_IN_BACKEND)))) {
            unbind(index, n);
            bind(e, layer, backend, gen, shadow, item);
            e->flags |= ENTRY_TOKEN;
            rv = add_backend(index, n);
            fill_info(e, info);
            return rv;
        }
        /* a duplicate inside the layer met already, or another layer's: next ordinal */
    }
    n = entry_new(index);
    if (n == 0) {
        return CKR_HOST_MEMORY;
    }
    e = entry_at(index, n);
    bind(e, layer, backend, gen, shadow, item);
    if (item->token_object) {
        e->flags |= ENTRY_TOKEN;
        memcpy(e->identity, id, HANDLES_IDENTITY_LEN);
        rv = add_identity(index, n);
        if (rv == CKR_OK) {
            rv = add_backend(index, n);
        }
        item->pending = n;
    } else {
        e->owner = owner;
        identity_of(item, 0, e->identity);
        e->handle = session_handle_new(index);
        rv = add_handle(index, n);
        if (rv == CKR_OK) {
            rv = add_backend(index, n);
        }
        fill_info(e, info);
    }
    if (rv != CKR_OK) {
        drop(index, n);
        item->pending = 0;
        info->handle = CK_INVALID_HANDLE;
    }
    return rv;
}

/* The code a create reports when its token object's catalog row could
 * not be written (see strata-pkcs11(8)). */
static CK_RV catalog_failure_rv(storage_rc src)
{
    switch (src) {
    case STORAGE_ERR_FULL:
        return CKR_DEVICE_MEMORY;
    case STORAGE_ERR_READ_ONLY:
        return CKR_TOKEN_WRITE_PROTECTED;
    case STORAGE_ERR_NOMEM:
        return CKR_HOST_MEMORY;
    default:
        return CKR_DEVICE_ERROR;
    }
}

/*
 * The catalog round: stable handles for the reserved entries, in one
 * transaction. Expects the learn lock, not H (the reserved entries stay
 * put: only the learn lock's holder drops token entries). When the
 * catalog fails: for a create (strict), the entries are dropped and the
 * code returned, so that the object is destroyed again (a token object
 * never gets a handle that changes later); for a search, the objects get
 * session-range handles (logged): they work, but their handles are not
 * stable across processes.
 */
static CK_RV assign_catalog(engine_token *token, const engine_layer *layer, learn_item *items,
                            size_t n, handle_info *out, bool strict)
{
    engine_handles *index = token->handles;
    const void *ids[LEARN_BATCH];
    size_t lens[LEARN_BATCH], m = 0;
    CK_OBJECT_HANDLE handles[LEARN_BATCH];
    storage_rc src = STORAGE_ERR_IO;
    CK_RV rv = CKR_OK;

    engine_mutex_lock(index->lock);
    for (size_t i = 0; i < n; i++) {
        if (items[i].pending != 0) {
            ids[m] = entry_at(index, items[i].pending)->identity;
            lens[m++] = HANDLES_IDENTITY_LEN;
        }
    }
    engine_mutex_unlock(index->lock);
    if (m == 0) {
        return CKR_OK;
    }
    if (engine_lib.catalog != NULL) {
        src = storage_object_handles(engine_lib.catalog, token->def->label, layer->def->id, ids,
                                     lens, m, handles);
    }
    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_WARNING, "token \"%s\": catalog handles for layer \"%s\": %s",
                   token->def->label, layer->def->id, storage_strerror(src));
        rv = strict ? catalog_failure_rv(src) : CKR_OK;
    }
    engine_mutex_lock(index->lock);
    m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = items[i].pending;
        handle_entry *e;
        if (k == 0) {
            continue;
        }
        e = entry_at(index, k);
        e->handle = src == STORAGE_OK ? handles[m] : session_handle_new(index);
        m++;
        if (rv != CKR_OK || by_handle(index, e->handle) != 0 || add_handle(index, k) != CKR_OK) {
            drop(index, k); /* a failed create, or a handle already in use */
            out[i].handle = CK_INVALID_HANDLE;
            continue;
        }
        fill_info(e, &out[i]);
    }
    engine_mutex_unlock(index->lock);
    return rv;
}

/*
 * One round of handles_learn over at most LEARN_BATCH objects, items
 * zeroed. Expects S and the learn lock; takes H. Returns as
 * handles_learn.
 */
static CK_RV learn_batch(engine_session *s, size_t layer, CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h,
                         const CK_OBJECT_HANDLE *backend, size_t n, const CK_ATTRIBUTE_TYPE *shadow,
                         size_t n_shadow, CK_SESSION_HANDLE owner, const handles_extra *extra,
                         learn_item *items, handle_info *out)
{
    engine_token *token = s->token;
    engine_handles *index = token->handles;
    engine_layer *l = &token->layers[layer];
    unsigned gen = backend_generation(l);
    uint16_t tag = (uint16_t)(layer + 1);
    CK_RV rv = CKR_OK;

    if (answer_known(index, tag, gen, backend, n, shadow, out, items) == 0) {
        return CKR_OK;
    }
    for (size_t i = 0; rv == CKR_OK && i < n; i++) {
        if (items[i].needed) {
            CK_RV orv = read_object(fl, h, l, backend[i], shadow, n_shadow, extra, &items[i]);
            out[i].handle = CK_INVALID_HANDLE;
            if (orv == CKR_SESSION_HANDLE_INVALID || orv == CKR_SESSION_CLOSED) {
                rv = backend_rv(s, layer, orv);
            } else if (orv == CKR_HOST_MEMORY) {
                rv = orv; /* not unreadable: the answer would miss it */
            }
        }
    }
    if (rv == CKR_OK) {
        engine_mutex_lock(index->lock);
        for (size_t i = 0; rv == CKR_OK && i < n; i++) {
            if (items[i].needed && items[i].readable) {
                rv = place(index, tag, gen, backend[i], shadow, owner, &items[i], &out[i]);
            }
        }
        engine_mutex_unlock(index->lock);
        CK_RV crv = assign_catalog(token, l, items, n, out, owner != 0);
        rv = rv == CKR_OK ? crv : rv; /* a failed place() comes first */
    }
    for (size_t i = 0; rv == CKR_OK && extra != NULL && i < n; i++) {
        if (items[i].extra != NULL && out[i].handle != CK_INVALID_HANDLE) {
            extra->fn(extra->ctx, backend[i], &out[i], items[i].extra);
        }
    }
    forget_extra(items, n);
    return rv;
}

/*
 * Gives each backend object its virtual handle (see index.h), a batch of
 * LEARN_BATCH at a time so that what it reads stays small whatever n is.
 * Returns CKR_OK, with out[i].handle == CK_INVALID_HANDLE for an object
 * the backend would not describe (it vanished meanwhile); CKR_HOST_MEMORY;
 * or the backend session's code. For a create (owner != 0), a token
 * object whose catalog row cannot be written fails it: CKR_DEVICE_MEMORY
 * (no room), CKR_TOKEN_WRITE_PROTECTED (read-only catalog) or
 * CKR_DEVICE_ERROR. Expects S; takes the learn lock and H.
 */
CK_RV handles_learn(engine_session *s, size_t layer, const CK_OBJECT_HANDLE *backend, size_t n,
                    const CK_ATTRIBUTE_TYPE *shadow, size_t n_shadow, CK_SESSION_HANDLE owner,
                    const handles_extra *extra, handle_info *out)
{
    engine_handles *index = s->token->handles;
    size_t batch = n < LEARN_BATCH ? n : LEARN_BATCH;
    learn_item *items = NULL;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    CK_RV rv;

    if (n == 0) {
        return CKR_OK;
    }
    items = malloc(batch * sizeof(*items));
    if (items == NULL) {
        return CKR_HOST_MEMORY;
    }
    rv = backend_session(s, layer, &fl, &h); /* before the learn lock: it may replay a login */
    if (rv != CKR_OK) {
        free(items);
        return rv;
    }
    engine_mutex_lock(index->learn_lock);
    prime_inlearn(s->token);
    for (size_t at = 0; rv == CKR_OK && at < n; at += batch) {
        size_t m = n - at < batch ? n - at : batch;
        memset(items, 0, m * sizeof(*items));
        rv = learn_batch(s, layer, fl, h, backend + at, m, shadow, n_shadow, owner, extra, items,
                         out + at);
    }
    engine_mutex_unlock(index->learn_lock);
    free(items);
    return rv;
}

/* Whether templ sets an attribute that identities are made of. */
static bool sets_identity(const CK_ATTRIBUTE *templ, CK_ULONG count)
{
    for (CK_ULONG i = 0; i < count; i++) {
        for (size_t j = 0; j < N_IDENTITY; j++) {
            if (templ[i].type == identity_types[j]) {
                return true;
            }
        }
    }
    return false;
}

/* Moves entry n (handle h) to identity id, in the catalog first. Returns
 * 1 when done (or nothing to do), 0 when id is taken (try the next
 * ordinal), -1 when the catalog failed (logged). Expects the learn lock,
 * not H. */
static int move_identity(engine_token *token, const engine_layer *layer, CK_OBJECT_HANDLE h,
                         const unsigned char *from, const unsigned char *id)
{
    engine_handles *index = token->handles;
    storage_rc src;
    uint32_t n;

    if (memcmp(from, id, HANDLES_IDENTITY_LEN) == 0) {
        return 1;
    }
    engine_mutex_lock(index->lock);
    n = by_identity(index, id);
    engine_mutex_unlock(index->lock);
    if (n != 0) {
        return 0;
    }
    src = storage_object_rename(engine_lib.catalog, token->def->label, layer->def->id, from,
                                HANDLES_IDENTITY_LEN, id, HANDLES_IDENTITY_LEN);
    if (src == STORAGE_ERR_EXISTS) {
        return 0;
    }
    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_WARNING, "token \"%s\": keeping the handle of a changed object: %s",
                   token->def->label, storage_strerror(src));
        return -1;
    }
    engine_mutex_lock(index->lock);
    n = by_handle(index, h);
    if (n != 0 && (entry_at(index, n)->flags & ENTRY_IN_IDENTITY)) {
        handle_entry *e = entry_at(index, n);
        idtable_remove(&index->by_identity, n, identity_key(e->identity), rehash_identity, index);
        e->flags &= (uint8_t)~ENTRY_IN_IDENTITY;
        memcpy(e->identity, id, HANDLES_IDENTITY_LEN);
        (void)add_identity(index, n); /* without memory: found again by its backend handle */
    }
    engine_mutex_unlock(index->lock);
    return 1;
}

/*
 * After C_SetAttributeValue through Strata set templ on the token object
 * of ref: when an identifying attribute changed, the object's identity
 * moves to its new value (the first free ordinal) in the catalog and the
 * index, so that it keeps its handle in this process and later ones, and
 * its old identity no longer names it. A catalog that fails is logged:
 * the object then gets a new handle in later processes (its old one stays
 * bound and is never given to another object). Expects S; takes the
 * learn lock and H.
 */
void handles_reidentify(engine_session *s, const object_ref *ref, const CK_ATTRIBUTE *templ,
                        CK_ULONG count)
{
    engine_token *token = s->token;
    engine_handles *index = token->handles;
    unsigned char id[HANDLES_IDENTITY_LEN];
    learn_item item;
    CK_FUNCTION_LIST *fl;
    CK_SESSION_HANDLE h;
    int done = 0;

    if (index == NULL || !ref->token_object || ref->handle >= HANDLES_SESSION_BASE ||
        engine_lib.catalog == NULL || !sets_identity(templ, count) ||
        backend_session(s, ref->layer_index, &fl, &h) != CKR_OK) {
        return;
    }
    memset(&item, 0, sizeof(item));
    engine_mutex_lock(index->learn_lock);
    if (read_object(fl, h, ref->layer, ref->backend, NULL, 0, NULL, &item) == CKR_OK) {
        for (uint32_t ordinal = 0; done == 0 && ordinal < UINT32_MAX; ordinal++) {
            identity_of(&item, ordinal, id);
            done = move_identity(token, ref->layer, ref->handle, ref->identity, id);
        }
    }
    engine_mutex_unlock(index->learn_lock);
    forget_extra(&item, 1);
}
