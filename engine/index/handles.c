/*
 * handles.c - the virtual object handle index of one virtual token.
 *
 * Every object an application sees has a virtual handle, unique across
 * the token's layers even when backends' handles collide. A token object
 * has an identity: a BLAKE2b digest of its layer (id and expanded token
 * label) and its identifying attributes (class, CKA_ID, CKA_LABEL, key
 * type, certificate type, serial number, issuer), with an ordinal
 * appended so that duplicates inside one layer differ (the first one met
 * gets 0, the next 1, ...). The catalog maps identities to stable handles
 * (1 upwards), so a token object keeps its handle across processes.
 * Session objects get handles from HANDLES_SESSION_BASE upwards, never
 * reused in the process, and die with the session that made them.
 *
 * The index lives in memory: by virtual handle (the hot path of C_Sign and
 * C_GetAttributeValue: one lookup, no SQL), by (layer, backend handle) and
 * by identity. It is primed once from the catalog (storage_objects_load);
 * an entry learns its backend handle when a search meets the object. A
 * backend handle belongs to one generation of its module; after a cycle
 * the entry is re-resolved by identity on the next search. Whether an
 * entry is hidden in a view (whiteout, shadowing, rules, as the view's
 * last search or change judged it) is a bit of the entry for the first 64
 * views, and a pair in a set kept only for hidden pairs for the others.
 *
 * Locks: H (index) guards the three tables and is held only for memory
 * work; the learn lock serialises teaching the index new objects (backend
 * reads and the catalog write happen under it, never under H).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "index.h"

/*
 * One object the index knows: 96 bytes, kept in chunks of CHUNK_ENTRIES
 * that never move (an entry's address stays valid while it is in use),
 * numbered from 1. The three tables hold entry numbers (idtable), so an
 * entry carries no table node, and no malloc header of its own.
 */
typedef struct handle_entry {
    unsigned char identity[HANDLES_IDENTITY_LEN];
    unsigned char shadow[HANDLES_SHADOW_LEN];
    CK_OBJECT_HANDLE handle;  /* virtual; 0 while the catalog is asked */
    CK_OBJECT_HANDLE backend; /* the layer backend's handle; free: next free */
    CK_SESSION_HANDLE owner;  /* session objects made through Strata */
    uint64_t hidden; /* bit v: hidden in token->views[v], v < MASK_VIEWS (else far_hidden) */
    const CK_ATTRIBUTE_TYPE *shadow_types; /* what shadow was computed over */
    uint32_t generation;                   /* of the backend module when met */
    uint16_t layer;                        /* 1 + index into token->layers; 0 until met */
    uint8_t flags;                         /* ENTRY_* */
} handle_entry;

#define ENTRY_IN_HANDLE   0x01 /* in by_handle (handle != 0) */
#define ENTRY_IN_BACKEND  0x02 /* in by_backend */
#define ENTRY_IN_IDENTITY 0x04 /* in by_identity */
#define ENTRY_TOKEN       0x08 /* a token object */
#define ENTRY_USED        0x10 /* not on the free list */
#define ENTRY_FAR_HIDDEN  0x20 /* may have pairs in far_hidden */
#define ENTRY_FAR_ALL     0x40 /* hidden in every far view (a pair could not be kept) */

/* Views below MASK_VIEWS keep their hidden flag in the entry's mask; the
 * others (a token may enrol thousands) in far_hidden, a set of (entry,
 * view) pairs that holds only the pairs hidden, so that an entry does not
 * grow with the number of views. */
#define MASK_VIEWS 64

/* One (entry, view) pair of far_hidden; entry 0: free, view links the
 * next free pair. */
typedef struct {
    uint32_t entry;
    uint32_t view;
} hidden_pair;

#define CHUNK_SHIFT   10
#define CHUNK_ENTRIES ((uint32_t)1 << CHUNK_SHIFT)
#define MAX_ENTRIES   ((uint32_t)1 << 31)

struct engine_handles {
    engine_mutex *lock;       /* H */
    engine_mutex *learn_lock; /* serialises handles_learn's slow part */
    handle_entry **chunks;    /* H: entry n is chunks[(n-1) >> CHUNK_SHIFT][(n-1) & ...] */
    size_t n_chunks;
    uint32_t n_entries;  /* H: numbers handed out so far */
    uint32_t free_first; /* H: a dropped entry to reuse, or 0 */
    idtable by_handle;
    idtable by_backend;
    idtable by_identity;
    hidden_pair *pairs; /* H: far_hidden's records, pair p at pairs[p - 1] */
    uint32_t n_pairs;   /* H: records handed out so far */
    uint32_t cap_pairs;
    uint32_t free_pair; /* H: a freed record to reuse, or 0 */
    idtable far_hidden; /* H: pair numbers by (entry, view) */
    bool primed;        /* learn lock */
};

static const CK_ATTRIBUTE_TYPE identity_types[] = {
    CKA_CLASS, CKA_ID, CKA_LABEL, CKA_KEY_TYPE, CKA_CERTIFICATE_TYPE, CKA_SERIAL_NUMBER, CKA_ISSUER,
};
#define N_IDENTITY  (sizeof(identity_types) / sizeof(identity_types[0]))
#define MAX_FETCH   24  /* identity + CKA_TOKEN + shadow attributes */
#define MAX_EXTRA   64  /* attributes read along (handles_extra); more: not read along */
#define LEARN_BATCH 256 /* objects read per round of handles_learn */

CK_RV handles_new(engine_handles **out)
{
    engine_handles *index = calloc(1, sizeof(*index));
    CK_RV rv = CKR_HOST_MEMORY;

    if (index == NULL) {
        goto out;
    }
    rv = engine_mutex_new(&index->lock);
    if (rv == CKR_OK) {
        rv = engine_mutex_new(&index->learn_lock);
    }
    if (rv != CKR_OK) {
        goto out;
    }
    *out = index;
    index = NULL;
out:
    handles_free(index);
    return rv;
}

void handles_free(engine_handles *index)
{
    if (index == NULL) {
        return;
    }
    for (size_t i = 0; i < index->n_chunks; i++) {
        free(index->chunks[i]);
    }
    free(index->chunks);
    idtable_clear(&index->by_handle);
    idtable_clear(&index->by_backend);
    idtable_clear(&index->by_identity);
    idtable_clear(&index->far_hidden);
    free(index->pairs);
    if (index->lock != NULL) {
        engine_mutex_free(index->lock);
    }
    if (index->learn_lock != NULL) {
        engine_mutex_free(index->learn_lock);
    }
    free(index);
}

/* ---------------------------------------------------------------------
 * Entries and table keys (all expect H)
 * ------------------------------------------------------------------ */

static handle_entry *entry_at(const engine_handles *index, uint32_t n)
{
    return &index->chunks[(n - 1) >> CHUNK_SHIFT][(n - 1) & (CHUNK_ENTRIES - 1)];
}

/* The number of a zeroed entry in use, reusing a dropped one first; 0
 * when memory (or the numbering) ran out. */
static uint32_t entry_new(engine_handles *index)
{
    uint32_t n = index->free_first;

    if (n != 0) {
        index->free_first = (uint32_t)entry_at(index, n)->backend;
    } else {
        if (index->n_entries == MAX_ENTRIES) {
            return 0;
        }
        if ((index->n_entries & (CHUNK_ENTRIES - 1)) == 0) {
            handle_entry **chunks = realloc(index->chunks, (index->n_chunks + 1) * sizeof(*chunks));
            if (chunks == NULL) {
                return 0;
            }
            index->chunks = chunks;
            chunks[index->n_chunks] = malloc(CHUNK_ENTRIES * sizeof(handle_entry));
            if (chunks[index->n_chunks] == NULL) {
                return 0;
            }
            index->n_chunks++;
        }
        n = ++index->n_entries;
    }
    memset(entry_at(index, n), 0, sizeof(handle_entry));
    entry_at(index, n)->flags = ENTRY_USED;
    return n;
}

static engine_layer *entry_layer(const engine_token *token, const handle_entry *e)
{
    return e->layer == 0 ? NULL : &token->layers[e->layer - 1];
}

static uint64_t handle_key(CK_OBJECT_HANDLE handle)
{
    return table_hash_u64(handle, 1);
}

static uint64_t backend_key(uint16_t layer, CK_OBJECT_HANDLE backend)
{
    return table_hash_u64(layer, backend);
}

static uint64_t identity_key(const unsigned char *identity)
{
    uint64_t k;

    memcpy(&k, identity, sizeof(k)); /* already a digest */
    return k;
}

static uint64_t rehash_handle(const void *owner, uint32_t n)
{
    return handle_key(entry_at(owner, n)->handle);
}

static uint64_t rehash_backend(const void *owner, uint32_t n)
{
    const handle_entry *e = entry_at(owner, n);

    return backend_key(e->layer, e->backend);
}

static uint64_t rehash_identity(const void *owner, uint32_t n)
{
    return identity_key(entry_at(owner, n)->identity);
}

/* The number of the entry of handle, or 0. */
static uint32_t by_handle(const engine_handles *index, CK_OBJECT_HANDLE handle)
{
    size_t c = idtable_begin(&index->by_handle, handle_key(handle));
    uint32_t n;

    while ((n = idtable_next(&index->by_handle, &c)) != 0 && entry_at(index, n)->handle != handle) {
    }
    return n;
}

/* The number of the entry of (layer, backend), or 0. */
static uint32_t by_backend(const engine_handles *index, uint16_t layer, CK_OBJECT_HANDLE backend)
{
    size_t c = idtable_begin(&index->by_backend, backend_key(layer, backend));
    uint32_t n;

    while ((n = idtable_next(&index->by_backend, &c)) != 0) {
        const handle_entry *e = entry_at(index, n);
        if (e->layer == layer && e->backend == backend) {
            break;
        }
    }
    return n;
}

/* The number of the entry of identity, or 0. */
static uint32_t by_identity(const engine_handles *index, const unsigned char *identity)
{
    size_t c = idtable_begin(&index->by_identity, identity_key(identity));
    uint32_t n;

    while ((n = idtable_next(&index->by_identity, &c)) != 0 &&
           memcmp(entry_at(index, n)->identity, identity, HANDLES_IDENTITY_LEN) != 0) {
    }
    return n;
}

/* A random session-range handle no entry holds: [HANDLES_SESSION_BASE,
 * 0xffffffff], so that it says nothing of other sessions' objects.
 * Expects H. */
static CK_OBJECT_HANDLE session_handle_new(const engine_handles *index)
{
    CK_OBJECT_HANDLE h;

    do {
        h = HANDLES_SESSION_BASE + (CK_OBJECT_HANDLE)randombytes_uniform(0x80000000U);
    } while (by_handle(index, h) != 0);
    return h;
}

static CK_RV add_handle(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);
    CK_RV rv = idtable_add(&index->by_handle, n, handle_key(e->handle), rehash_handle, index);

    e->flags |= rv == CKR_OK ? ENTRY_IN_HANDLE : 0;
    return rv;
}

static CK_RV add_backend(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);
    CK_RV rv = idtable_add(&index->by_backend, n, backend_key(e->layer, e->backend), rehash_backend,
                           index);

    e->flags |= rv == CKR_OK ? ENTRY_IN_BACKEND : 0;
    return rv;
}

static CK_RV add_identity(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);
    CK_RV rv =
        idtable_add(&index->by_identity, n, identity_key(e->identity), rehash_identity, index);

    e->flags |= rv == CKR_OK ? ENTRY_IN_IDENTITY : 0;
    return rv;
}

/* Takes entry n out of by_backend (its backend handle is stale). */
static void unbind(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);

    if (e->flags & ENTRY_IN_BACKEND) {
        idtable_remove(&index->by_backend, n, backend_key(e->layer, e->backend), rehash_backend,
                       index);
        e->flags &= (uint8_t)~ENTRY_IN_BACKEND;
    }
}

/* ---------------------------------------------------------------------
 * Hidden flags of views from MASK_VIEWS on (all expect H)
 * ------------------------------------------------------------------ */

static uint64_t pair_key(uint32_t entry, uint32_t view)
{
    return table_hash_u64(entry, ((uint64_t)view << 1) | 1);
}

static uint64_t rehash_pair(const void *owner, uint32_t p)
{
    const hidden_pair *pair = &((const engine_handles *)owner)->pairs[p - 1];

    return pair_key(pair->entry, pair->view);
}

/* The number of the pair (entry n, view), or 0. */
static uint32_t pair_find(const engine_handles *index, uint32_t n, uint32_t view)
{
    size_t c = idtable_begin(&index->far_hidden, pair_key(n, view));
    uint32_t p;

    while ((p = idtable_next(&index->far_hidden, &c)) != 0) {
        const hidden_pair *pair = &index->pairs[p - 1];
        if (pair->entry == n && pair->view == view) {
            break;
        }
    }
    return p;
}

/* A free pair record numbered *p, set to (n, view). CKR_HOST_MEMORY when
 * the records cannot grow. */
static CK_RV pair_new(engine_handles *index, uint32_t n, uint32_t view, uint32_t *p)
{
    if (index->free_pair != 0) {
        *p = index->free_pair;
        index->free_pair = index->pairs[*p - 1].view;
    } else {
        if (index->n_pairs == index->cap_pairs) {
            uint32_t cap = index->cap_pairs == 0 ? 64 : index->cap_pairs * 2;
            hidden_pair *bigger;
            if (cap <= index->cap_pairs ||
                (bigger = realloc(index->pairs, (size_t)cap * sizeof(*bigger))) == NULL) {
                return CKR_HOST_MEMORY;
            }
            index->pairs = bigger;
            index->cap_pairs = cap;
        }
        *p = ++index->n_pairs;
    }
    index->pairs[*p - 1].entry = n;
    index->pairs[*p - 1].view = view;
    return CKR_OK;
}

static void pair_free(engine_handles *index, uint32_t p)
{
    hidden_pair *pair = &index->pairs[p - 1];

    idtable_remove(&index->far_hidden, p, pair_key(pair->entry, pair->view), rehash_pair, index);
    pair->entry = 0;
    pair->view = index->free_pair;
    index->free_pair = p;
}

/* Marks entry n hidden or visible in view (>= MASK_VIEWS). A pair that
 * cannot be recorded (no memory) leaves the entry hidden in every far
 * view for the rest of the process: failing closed. */
static void far_set(engine_handles *index, uint32_t n, uint32_t view, bool hidden)
{
    handle_entry *e = entry_at(index, n);
    uint32_t p = (e->flags & ENTRY_FAR_HIDDEN) ? pair_find(index, n, view) : 0;

    if (!hidden && p != 0) {
        pair_free(index, p);
    } else if (hidden && p == 0) {
        e->flags |= ENTRY_FAR_HIDDEN;
        if (pair_new(index, n, view, &p) != CKR_OK) {
            e->flags |= ENTRY_FAR_ALL;
        } else if (idtable_add(&index->far_hidden, p, pair_key(n, view), rehash_pair, index) !=
                   CKR_OK) {
            index->pairs[p - 1].view = index->free_pair;
            index->pairs[p - 1].entry = 0;
            index->free_pair = p;
            e->flags |= ENTRY_FAR_ALL;
        }
    }
}

/* Whether entry e (number n) is hidden in view. */
static bool entry_hidden(const engine_handles *index, const handle_entry *e, uint32_t n,
                         size_t view)
{
    if (view < MASK_VIEWS) {
        return (e->hidden & ((uint64_t)1 << view)) != 0;
    }
    if (e->flags & ENTRY_FAR_ALL) {
        return true; /* see far_set */
    }
    return (e->flags & ENTRY_FAR_HIDDEN) && pair_find(index, n, (uint32_t)view) != 0;
}

/* Forgets every far pair of entry n (it is being dropped). Walks the
 * records: drops of entries hidden in far views are rare. */
static void far_forget(engine_handles *index, uint32_t n)
{
    for (uint32_t p = 1; p <= index->n_pairs; p++) {
        if (index->pairs[p - 1].entry == n) {
            pair_free(index, p);
        }
    }
}

/* Takes entry n out of every table and puts it on the free list. */
static void drop(engine_handles *index, uint32_t n)
{
    handle_entry *e = entry_at(index, n);

    if (e->flags & ENTRY_FAR_HIDDEN) {
        far_forget(index, n);
    }
    if (e->flags & ENTRY_IN_HANDLE) {
        idtable_remove(&index->by_handle, n, handle_key(e->handle), rehash_handle, index);
    }
    unbind(index, n);
    if (e->flags & ENTRY_IN_IDENTITY) {
        idtable_remove(&index->by_identity, n, identity_key(e->identity), rehash_identity, index);
    }
    memset(e, 0, sizeof(*e));
    e->backend = index->free_first;
    index->free_first = n;
}

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
static void prime_inlearn(engine_token *token)
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

/* ---------------------------------------------------------------------
 * Resolving a virtual handle (the hot path)
 * ------------------------------------------------------------------ */

/* See index.h. Copies what ref needs from the entry of handle. Takes H. */
handles_lookup_result handles_lookup(engine_token *token, CK_OBJECT_HANDLE handle, size_t view,
                                     object_ref *ref, bool *hidden)
{
    engine_handles *index = token->handles;
    handles_lookup_result result = HANDLES_MISSING;
    uint32_t n;

    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0) {
        const handle_entry *e = entry_at(index, n);
        result = HANDLES_UNMET;
        if (e->layer != 0 && (e->flags & ENTRY_IN_BACKEND)) {
            ref->handle = handle;
            ref->layer = entry_layer(token, e);
            ref->backend = e->backend;
            ref->token_object = (e->flags & ENTRY_TOKEN) != 0;
            memcpy(ref->identity, e->identity, HANDLES_IDENTITY_LEN);
            *hidden = entry_hidden(index, e, n, view);
            result =
                e->generation == backend_generation(ref->layer) ? HANDLES_FOUND : HANDLES_UNMET;
        }
    }
    engine_mutex_unlock(index->lock);
    return result;
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

/* Reads one object's identity and shadow attributes from the backend, and
 * extra's when given (kept in item), in one backend_attrs, and digests
 * them. Returns CKR_OK, CKR_HOST_MEMORY or the backend's code. */
static CK_RV read_object(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, engine_layer *layer,
                         CK_OBJECT_HANDLE object, const CK_ATTRIBUTE_TYPE *shadow, size_t n_shadow,
                         const handles_extra *extra, learn_item *item)
{
    CK_ATTRIBUTE_TYPE types[MAX_FETCH + MAX_EXTRA];
    CK_ATTRIBUTE attrs[MAX_FETCH + MAX_EXTRA], kept[MAX_EXTRA];
    size_t at_shadow[MAX_FETCH], at_extra[MAX_EXTRA];
    const CK_ATTRIBUTE *tok;
    crypto_generichash_state sh;
    void *buf = NULL;
    bool complete = n_shadow > 0;
    size_t n = 0, n_extra = extra != NULL && extra->n <= MAX_EXTRA ? extra->n : 0;
    CK_RV rv;

    if (n_shadow > MAX_FETCH - N_IDENTITY - 1) {
        n_shadow = MAX_FETCH - N_IDENTITY - 1;
    }
    /* Each type once: SoftHSM2's cost grows with the attributes read, and
     * the shadow and rule attributes are mostly identity ones already. */
    memcpy(types, identity_types, sizeof(identity_types));
    n = N_IDENTITY;
    types[n++] = CKA_TOKEN;
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
    if (!complete) {
        /* Not identifiable across layers: a data object has no CKA_ID, a
         * key made without one has an empty CKA_ID. Such an object neither
         * shadows nor is shadowed; a digest unique to it stands in. */
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

/* ---------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------ */

void handles_set_hidden(engine_token *token, CK_OBJECT_HANDLE handle, size_t view, bool hidden)
{
    engine_handles *index = token->handles;
    uint32_t n;

    if (index == NULL || view > UINT32_MAX) {
        return;
    }
    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0 && view >= MASK_VIEWS) {
        far_set(index, n, (uint32_t)view, hidden);
    } else if (n != 0) {
        handle_entry *e = entry_at(index, n);
        if (hidden) {
            e->hidden |= (uint64_t)1 << view;
        } else {
            e->hidden &= ~((uint64_t)1 << view);
        }
    }
    engine_mutex_unlock(index->lock);
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

/* Forgets a destroyed object, and its identity in the catalog (a new
 * object with the same identity later gets a new handle). */
void handles_forget(engine_token *token, CK_OBJECT_HANDLE handle)
{
    engine_handles *index = token->handles;
    unsigned char identity[HANDLES_IDENTITY_LEN];
    const engine_layer *layer = NULL;
    uint32_t n;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->learn_lock);
    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0) {
        const handle_entry *e = entry_at(index, n);
        if ((e->flags & ENTRY_TOKEN) && e->handle < HANDLES_SESSION_BASE) {
            layer = entry_layer(token, e);
            memcpy(identity, e->identity, sizeof(identity));
        }
        drop(index, n);
    }
    engine_mutex_unlock(index->lock);
    if (layer != NULL && engine_lib.catalog != NULL) {
        storage_object_forget(engine_lib.catalog, token->def->label, layer->def->id, identity,
                              sizeof(identity));
    }
    engine_mutex_unlock(index->learn_lock);
}

/* Calls fn on every entry in use. Expects H. */
static void each_entry(engine_handles *index, void (*fn)(engine_handles *, uint32_t, const void *),
                       const void *arg)
{
    for (uint32_t n = 1; n <= index->n_entries; n++) {
        if (entry_at(index, n)->flags & ENTRY_USED) {
            fn(index, n, arg);
        }
    }
}

static void drop_if_owned(engine_handles *index, uint32_t n, const void *arg)
{
    const handle_entry *e = entry_at(index, n);

    if (!(e->flags & ENTRY_TOKEN) && e->owner == *(const CK_SESSION_HANDLE *)arg) {
        drop(index, n);
    }
}

/* Forgets the session objects made through session (they died with its
 * backend sessions). Walks the index: session closes are rare. */
void handles_drop_session(engine_token *token, CK_SESSION_HANDLE session)
{
    engine_handles *index = token->handles;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->lock);
    each_entry(index, drop_if_owned, &session);
    engine_mutex_unlock(index->lock);
}

void handles_touch(engine_token *token, CK_OBJECT_HANDLE handle)
{
    engine_handles *index = token->handles;
    uint32_t n;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->lock);
    n = by_handle(index, handle);
    if (n != 0) {
        entry_at(index, n)->shadow_types = NULL;
    }
    engine_mutex_unlock(index->lock);
}

static void unbind_token(engine_handles *index, uint32_t n, const void *arg)
{
    (void)arg;
    if (entry_at(index, n)->flags & ENTRY_TOKEN) {
        unbind(index, n);
    }
}

/* See index.h. Takes the learn lock, then H. */
void handles_unbind(engine_token *token)
{
    engine_handles *index = token->handles;

    if (index == NULL) {
        return;
    }
    engine_mutex_lock(index->learn_lock);
    engine_mutex_lock(index->lock);
    each_entry(index, unbind_token, NULL);
    engine_mutex_unlock(index->lock);
    engine_mutex_unlock(index->learn_lock);
}
