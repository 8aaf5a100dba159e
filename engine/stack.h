/*
 * stack.h - the stacked token's private plumbing, shared by session.c,
 * backend.c, handles.c, find.c, object.c, keys.c, crypto.c and login.c.
 *
 * Locks, in the order they may be taken (never reversed):
 *   session lock (S, one per virtual session, held while a call runs on it)
 *   -> login lock (L, engine_token.login_lock, serialises C_Login/C_Logout)
 *   -> token lock (K, engine_token.lock, held only to read or switch the view)
 *   -> learn lock (engine_handles, serialises teaching the index new objects)
 *   -> index lock (H, engine_handles, in-memory lookups only)
 * The session table lock (T, library-wide) is taken alone, for table
 * lookups only. No backend module is called while T or H is held. Each
 * layer's store and state locks (backend.c) are leaves around single
 * backend calls.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_STACK_H
#define STRATA_ENGINE_STACK_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * table.c - intrusive chained hash table keyed by a 64-bit hash
 * ------------------------------------------------------------------ */

typedef struct table_node {
    struct table_node *next;
    uint64_t hash;
} table_node;

typedef struct {
    table_node **buckets;
    size_t n_buckets;
    size_t count;
} table;

/* CKR_OK, or CKR_HOST_MEMORY when the first bucket array cannot be made
 * (growing later never fails: chains just get longer). */
CK_RV table_insert(table *t, table_node *node, uint64_t hash);
void table_remove(table *t, table_node *node);
/* The first node with hash, then the next ones with table_next. */
table_node *table_first(const table *t, uint64_t hash);
table_node *table_next(const table_node *node);
/* Every node in turn: *cursor starts at 0; NULL at the end. Not stable
 * across inserts and removals of other nodes. */
table_node *table_walk(const table *t, size_t *cursor, table_node *prev);
void table_clear(table *t);
uint64_t table_hash(const void *data, size_t len);
uint64_t table_hash_u64(uint64_t a, uint64_t b);

#define table_entry(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/*
 * idtable - an open-addressing hash table of 32-bit ids (1 upwards; 0
 * marks an empty slot), linear probing, at most 3/4 full. The keys live
 * in the caller's records: the caller compares them while it walks a
 * probe sequence, and gives the table a function that re-hashes an id
 * when slots move (growing, removing). Four bytes a slot and no node in
 * the records: what the handle index and the find sets use for their
 * many small entries. No locking.
 */
typedef struct {
    uint32_t *slots;
    size_t mask; /* capacity - 1 (a power of two); 0 while slots is NULL */
    size_t count;
} idtable;

/* The hash of id's record (as given to idtable_add). */
typedef uint64_t (*idtable_hash_fn)(const void *owner, uint32_t id);

/* Adds id under hash. CKR_OK, or CKR_HOST_MEMORY when the table must grow
 * and cannot (nothing changed then). */
CK_RV idtable_add(idtable *t, uint32_t id, uint64_t hash, idtable_hash_fn rehash,
                  const void *owner);
/* Removes id (added under hash); no-op when absent. Never fails. */
void idtable_remove(idtable *t, uint32_t id, uint64_t hash, idtable_hash_fn rehash,
                    const void *owner);
/* Walks the ids that may be under hash: *cursor = idtable_begin(t, hash),
 * then idtable_next until it returns 0. Valid until the table changes. */
size_t idtable_begin(const idtable *t, uint64_t hash);
uint32_t idtable_next(const idtable *t, size_t *cursor);
void idtable_clear(idtable *t);

/* ---------------------------------------------------------------------
 * session.c - the session table
 * ------------------------------------------------------------------ */

typedef struct {
    bool open;
    CK_SESSION_HANDLE handle; /* the backend's session */
    unsigned generation;      /* of the backend module when opened */
} backend_slot;

typedef struct {
    bool active;
    unsigned long epoch;       /* login epoch when it started */
    CK_OBJECT_HANDLE *results; /* buffered at Init */
    size_t n_results;
    size_t next;
} find_state;

typedef struct {
    bool active;
    size_t layer;        /* index into token->layers */
    bool can_recover;    /* sign-recover / verify-recover (no Final) */
    unsigned long epoch; /* login epoch when it started (a login or logout ends it) */
} crypto_op;

typedef struct engine_session {
    table_node node; /* in the session table (T) */
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    engine_token *token;
    CK_FLAGS flags;                  /* CKF_RW_SESSION | CKF_SERIAL_SESSION */
    engine_mutex *lock;              /* S */
    atomic_uint refs;                /* taken under T (table lookups), dropped lock-free */
    bool closed;                     /* S: closed while a caller waited on S */
    backend_slot *backends;          /* S: parallel to token->layers */
    find_state find;                 /* S */
    crypto_op ops[ENGINE_OP_COUNT];  /* S */
    const engine_view *scanned_view; /* S: view last scanned to re-resolve handles */
    unsigned long scanned_epoch;     /* S: ... at this login epoch */
    struct verdict_cache *verdicts;  /* S: what the view's rules say of each object (verdict.c) */
} engine_session;

/* Looks the session up and returns it with its lock held.
 * CKR_SESSION_HANDLE_INVALID when unknown or closed meanwhile. */
CK_RV session_acquire(CK_SESSION_HANDLE handle, engine_session **out);
/* Unlocks a session from session_acquire. */
void session_release(engine_session *s);
bool session_is_rw(const engine_session *s);

/* What a call sees of its token's login state (taken under K). */
typedef struct {
    engine_view *view; /* current, else the public view, else NULL */
    bool logged_in;
    CK_USER_TYPE user;
    unsigned long epoch; /* engine_token.login_epoch */
    bool sessions_only;  /* public-view="none" and no user logged in: the view shows its
                            session objects only, and takes no new token object */
} session_view_state;

void session_view(engine_session *s, session_view_state *state);
/* The same for token, without a session (slot.c). Takes K. */
void session_token_view(engine_token *token, session_view_state *state);

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

/* ---------------------------------------------------------------------
 * handles.c - the virtual object handle index of one token
 * ------------------------------------------------------------------ */

/* Session objects' virtual handles start here; token objects' handles come
 * from the catalog and stay below. */
#define HANDLES_SESSION_BASE ((CK_OBJECT_HANDLE)0x80000000UL)
#define HANDLES_IDENTITY_LEN 32
#define HANDLES_SHADOW_LEN   16 /* a shadow identity: 128 bits say "the same" well enough */

typedef struct engine_handles engine_handles;

CK_RV handles_new(engine_handles **out);
void handles_free(engine_handles *index);

/* One virtual object as a call uses it. */
typedef struct {
    CK_OBJECT_HANDLE handle; /* virtual */
    engine_layer *layer;
    size_t layer_index;       /* into token->layers */
    CK_OBJECT_HANDLE backend; /* the layer backend's handle */
    bool token_object;
    unsigned char identity[HANDLES_IDENTITY_LEN];
} object_ref;

/* Translates a virtual handle for the view. CKR_OBJECT_HANDLE_INVALID,
 * identical for every reason, when the object is not visible to view
 * (unknown, other view's layer, hidden, shadowed, whited out, a layer that
 * is down). Caller holds S. */
CK_RV handles_resolve(engine_session *s, const session_view_state *st, CK_OBJECT_HANDLE handle,
                      object_ref *ref);

/* What the index knows of one backend object after handles_learn. */
typedef struct {
    CK_OBJECT_HANDLE handle; /* virtual; CK_INVALID_HANDLE when unreadable */
    bool token_object;
    unsigned char identity[HANDLES_IDENTITY_LEN];
    unsigned char shadow[HANDLES_SHADOW_LEN];
} handle_info;

/* More attributes for handles_learn to read in the same backend call as
 * an object's identity: fn gets them (attrs[0..n), the types in order,
 * values as backend_attrs gives them) once the object has its handle. */
typedef struct {
    const CK_ATTRIBUTE_TYPE *types;
    size_t n;
    void (*fn)(void *ctx, CK_OBJECT_HANDLE backend, const handle_info *info,
               const CK_ATTRIBUTE *attrs);
    void *ctx;
} handles_extra;

/* Gives each backend object of layer its virtual handle, learning the
 * ones not seen before (their identity attributes are read from the
 * backend, token objects get their stable handle from the catalog).
 * shadow/n_shadow: the identity attributes for shadowing. owner: the
 * virtual session that created them (session objects die with it), or 0.
 * extra: NULL, or attributes to read along for the objects learned now.
 * Caller holds S. */
CK_RV handles_learn(engine_session *s, size_t layer, const CK_OBJECT_HANDLE *backend, size_t n,
                    const CK_ATTRIBUTE_TYPE *shadow, size_t n_shadow, CK_SESSION_HANDLE owner,
                    const handles_extra *extra, handle_info *out);

/* Marks handle hidden (or visible) in token->views[view]. */
void handles_set_hidden(engine_token *token, CK_OBJECT_HANDLE handle, size_t view, bool hidden);
/* Makes the next search re-read the object's shadow identity (after a
 * C_SetAttributeValue that may change it). */
void handles_touch(engine_token *token, CK_OBJECT_HANDLE handle);
/* After C_SetAttributeValue(templ) through Strata on ref's object: a
 * token object whose identifying attributes changed keeps its handle (its
 * identity moves in the catalog and the index). Caller holds S. */
void handles_reidentify(engine_session *s, const object_ref *ref, const CK_ATTRIBUTE *templ,
                        CK_ULONG count);
/* Forgets a destroyed object. */
void handles_forget(engine_token *token, CK_OBJECT_HANDLE handle);
/* Forgets the session objects created through session. */
void handles_drop_session(engine_token *token, CK_SESSION_HANDLE session);

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
/* The view's shadow identity attributes (default CKA_CLASS, CKA_ID). The
 * array is static or the program's: its address identifies the set. */
size_t find_shadow_types(const engine_view *view, const CK_ATTRIBUTE_TYPE **types);

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
/* handles_resolve, then the rules: a hidden (or malformed) object is
 * CKR_OBJECT_HANDLE_INVALID like one that never existed. Returns CKR_OK
 * with *ref; CKR_OBJECT_HANDLE_INVALID; or the backend's code. Expects S. */
CK_RV verdict_resolve(engine_session *s, const session_view_state *st, CK_OBJECT_HANDLE handle,
                      object_ref *ref);
/* True when a deny rule of the view forbids op with mechanism (or
 * CK_UNAVAILABLE_INFORMATION) on ref, or when the rules cannot tell (fail
 * closed). False for a view without rules. Expects S. */
bool verdict_denies(engine_session *s, const session_view_state *st, const object_ref *ref,
                    rules_op op, CK_MECHANISM_TYPE mechanism);
/* Invalidates every cached verdict of the process (an object changed). */
void verdict_changed(void);
/* Frees the session's cache. Expects S or sole ownership of s. */
void verdict_cache_free(engine_session *s);

/* ---------------------------------------------------------------------
 * crypto.c / login.c / object.c helpers
 * ------------------------------------------------------------------ */

/* Ends every crypto operation of s in Strata's state (backend sessions
 * are closed by the caller). */
void crypto_reset(engine_session *s);

/* Logs the token out (layers, credentials, view). Takes L and K. */
void login_logout_token(engine_token *token);
/* Logs layer in again from the credentials kept at login when its
 * backend login is gone (the module was cycled). Takes L. */
void login_replay(engine_token *token, engine_layer *layer);

/* The layer a new object described by templ goes to, checked against
 * the view's rules: route, else the top writable usable layer; fixed is
 * SIZE_MAX when Strata chooses (C_CreateObject, C_GenerateKey*), else the
 * layer that must make it (the key's, for copy/unwrap/derive). mechanism
 * is the creating mechanism or CK_UNAVAILABLE_INFORMATION. Returns CKR_OK
 * with *layer; CKR_TOKEN_WRITE_PROTECTED (no writable layer, or a token
 * object while st is sessions_only); CKR_DEVICE_ERROR (the routed layer is unavailable);
 * CKR_ATTRIBUTE_VALUE_INVALID (a template value of the wrong size for the
 * rules); CKR_MECHANISM_INVALID (no writable layer's token offers
 * mechanism, or the routed layer's does not: logged, naming the layer;
 * without a route, the top writable layer that offers it is chosen);
 * CKR_ACTION_PROHIBITED (deny create, or a route to a layer other
 * than fixed). See docs/strata-rules.7, RETURN CODES. Expects S. */
CK_RV object_target_layer(engine_session *s, const session_view_state *st,
                          const CK_ATTRIBUTE *templ, CK_ULONG count, CK_MECHANISM_TYPE mechanism,
                          size_t fixed, size_t *layer);
/* CK_TRUE when the template asks for a token object (CKA_TOKEN), else
 * dflt. */
bool object_template_token(const CK_ATTRIBUTE *templ, CK_ULONG count, bool dflt);
/* Checks a template's shape: CKR_ARGUMENTS_BAD for NULL with count > 0,
 * CKR_ATTRIBUTE_VALUE_INVALID for a NULL value with a length. */
CK_RV object_check_template(const CK_ATTRIBUTE *templ, CK_ULONG count);

/* A backend call that makes objects (C_CreateObject, C_CopyObject,
 * C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey, C_DeriveKey) as a
 * closure: call writes the n backend handles it made (n is 0, 1 or 2;
 * made is NULL when n is 0). */
typedef CK_RV object_make_fn(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h, const void *arg,
                             CK_OBJECT_HANDLE *made);
typedef struct {
    object_make_fn *call;
    const void *arg;
    size_t n;
} object_maker;

/* object_make's answer when the login state changed since st was read:
 * the caller reads it again and starts over. Never reaches a caller of
 * the module. */
#define OBJECT_AGAIN (CKR_VENDOR_DEFINED | 0x5354u)

/*
 * Runs make on layer's backend through s and gives each object it made
 * its virtual handle in made[]. The backend call and the registration run
 * under L with the login state st was read in, so no C_Logout or C_Login
 * comes between them (a private object made but no longer readable would
 * be lost); an object that cannot be registered is destroyed in the
 * backend again. Returns CKR_OK; OBJECT_AGAIN; CKR_HOST_MEMORY;
 * CKR_GENERAL_ERROR (the backend will not describe what it made); or the
 * backend's code. Expects S, not L.
 */
CK_RV object_make(engine_session *s, const session_view_state *st, size_t layer,
                  const object_maker *make, CK_OBJECT_HANDLE *made);

/* The new-object calls (C_CreateObject, C_GenerateKey): checks templ's
 * shape and CKA_TOKEN against the session's RO/RW state, then lets
 * object_target_layer choose the layer and object_make make the object
 * there, again when the login state changed meanwhile. mechanism is the
 * creating mechanism or CK_UNAVAILABLE_INFORMATION. Returns
 * object_check_template's, CKR_SESSION_READ_ONLY, object_target_layer's
 * or object_make's codes (never OBJECT_AGAIN). Expects S. */
CK_RV object_make_new(engine_session *s, const CK_ATTRIBUTE *templ, CK_ULONG count,
                      CK_MECHANISM_TYPE mechanism, const object_maker *make,
                      CK_OBJECT_HANDLE *made);

#endif /* STRATA_ENGINE_STACK_H */
