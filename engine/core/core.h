/*
 * core.h - the engine's ground floor: the library state C_Initialize
 * builds (core/library.c holds it, ops/init.c builds it), the engine's
 * mutexes, the log (core/log.c) and the hash tables (core/table.c); and
 * the per-session state every floor above keeps its part of. Uses nothing
 * of the engine above it.
 *
 * The floors, each using only those below (docs/architecture.md;
 * scripts/includes.sh checks it): core -> backend (backend/backend.h) ->
 * index (index/index.h) -> view (view/view.h) -> ops (ops/ops.h) -> the
 * entry points and the call log (entry.c, calllog.c). Each floor's header
 * includes the one below it. Not installed, not included outside engine/.
 *
 * Locks, in the order they may be taken (never reversed):
 *   session lock (S, one per virtual session, held while a call runs on it)
 *   -> login lock (L, engine_token.login_lock, serialises C_Login/C_Logout)
 *   -> token lock (K, engine_token.lock, held only to read or switch the view)
 *   -> learn lock (engine_handles, serialises teaching the index new objects)
 *   -> index lock (H, engine_handles, in-memory lookups only)
 * The session table lock (T, library-wide, ops/session.c) is taken alone,
 * for table lookups only. No backend module is called while T or H is
 * held. Each layer's store and state locks (backend/backend.c) are leaves
 * around single backend calls; the backend gate (backend/reconnect.c) is
 * described in backend/backend.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_ENGINE_CORE_H
#define STRATA_ENGINE_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "layers.h"
#include "rules.h"
#include "storage.h"

#define ENGINE_CRYPTOKI_MAJOR 2
#define ENGINE_CRYPTOKI_MINOR 40

/* ---------------------------------------------------------------------
 * Library state, built by C_Initialize (ops/init.c) from the policy, held
 * by core/library.c
 * ------------------------------------------------------------------ */

typedef struct engine_mutex engine_mutex;

/* One layer's token as a view uses it: the layer definition with its
 * token label expanded for the view ("strata-{view}" -> "strata-work").
 * Views of one virtual token that name the same layer and label share one
 * engine_layer. */
typedef struct {
    const rules_layer *def;
    char label[33]; /* expanded token label */
    /* The backend token's label: label, or for a lazy layer the one its
     * catalog row names, with this catalog's mark (storage_provision_label). */
    char backend_label[33];
    bool marked;         /* backend_label carries this catalog's mark: only it made such a token */
    layers_token *token; /* NULL when the layer's module failed to load */
    bool read_only;      /* access="read-only" */
    bool login_failed;   /* its backend login failed at the current login (login.c, token lock) */
    pthread_rwlock_t store; /* object-making calls vs searches (backend_store_*, backend.c) */
    pthread_rwlock_t state; /* backend login/logout vs reads of objects (backend_state_*) */
} engine_layer;

typedef struct {
    const rules_view *def;
    engine_layer **layers; /* top first, pointing into engine_token.layers */
    size_t n_layers;
} engine_view;

typedef struct {
    const rules_token *def;
    CK_SLOT_ID slot_id; /* stable, from the catalog */
    engine_view *views;
    size_t n_views;
    engine_layer *layers; /* every distinct (layer, label) its views use */
    size_t n_layers;
    engine_view *public_view; /* the view calls use before login (and the SO's): the policy's
                                 public view, else (public-view="none") the first view */
    bool public_none;         /* public-view="none": before login public_view holds session
                                 objects only (session_view's sessions_only) */
    engine_mutex *lock;       /* guards the login state (login.c) */
    engine_view *current;     /* the logged-in view; NULL = not logged in */
    CK_USER_TYPE user;        /* CKU_USER or CKU_SO while logged in */
    struct engine_handles
        *handles;             /* virtual object handles, made by the first session (handles.c) */
    engine_mutex *login_lock; /* serialises C_Login/C_Logout, made with handles (login.c) */
    storage_login *login;     /* credentials unwrapped at login, kept for replay (login.c) */
    /* bumped by each login and logout (login.c, token lock); read alone
     * without it by session_login_epoch */
    _Atomic unsigned long login_epoch;
} engine_token;

typedef struct {
    rules_policy *policy;
    storage_catalog *catalog;
    layers_module **modules; /* parallel to policy->modules; NULL = failed to load */
    engine_token *tokens;    /* parallel to policy->tokens */
    size_t n_tokens;
} engine_library;

/* Valid between a successful C_Initialize and C_Finalize in this process. */
extern engine_library engine_lib;

/* The virtual token on slot, or NULL (CKR_SLOT_ID_INVALID). */
engine_token *library_token(CK_SLOT_ID slot);
/* Strata's own version (major.minor of the project version), for
 * CK_INFO, CK_SLOT_INFO and CK_TOKEN_INFO. */
void library_version(CK_VERSION *out);

/* Mutexes: the application's callbacks when C_Initialize gave them without
 * CKF_OS_LOCKING_OK, else pthread mutexes. */
CK_RV engine_mutex_new(engine_mutex **out);
void engine_mutex_free(engine_mutex *mutex);
void engine_mutex_lock(engine_mutex *mutex);
void engine_mutex_unlock(engine_mutex *mutex);
/* C_Initialize (ops/init.c) chooses how mutexes are made: the
 * application's callbacks in locking (CreateMutex set), else pthread
 * mutexes; NULL forgets the callbacks (C_Finalize, a failed
 * C_Initialize). Called when no engine mutex exists. */
void engine_mutex_use(const CK_C_INITIALIZE_ARGS *locking);

/* ---------------------------------------------------------------------
 * log.c - the optional call log (STRATA_LOG), silent by default
 * ------------------------------------------------------------------ */

typedef enum {
    ENGINE_LOG_ERROR = 0,
    ENGINE_LOG_WARNING,
    ENGINE_LOG_INFO,
    ENGINE_LOG_DEBUG,
    ENGINE_LOG_CALLS, /* debug and one line per C_* call (STRATA_LOG=calls) */
} engine_log_level;

/* Reads STRATA_LOG / STRATA_LOG_FILE once per C_Initialize; called again
 * with the policy's <log calls="..."> target (NULL when none) once the
 * policy is loaded. The environment wins over the policy. */
void engine_log_open(const char *policy_target);
void engine_log_close(void);
bool engine_log_enabled(engine_log_level level);
/* printf-style; never pass a secret: mask it before formatting. */
void engine_log(engine_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies a blank-padded PKCS#11 field from a C string (truncating). */
void engine_pad(CK_UTF8CHAR *field, size_t field_len, const char *text);

/* ---- log.c's side of the call log (calllog.c, above) ---------------- */

/* True while the call log is on (log.c sets it). */
extern atomic_bool calllog_active;

static inline bool calllog_on(void)
{
    return __builtin_expect(atomic_load_explicit(&calllog_active, memory_order_relaxed), 0);
}

/* Keeps the current destination open across an engine_log_close() in this
 * thread until engine_log_release(), so that the result line of the call
 * that closed the log can still be written. */
void engine_log_hold(void);
/* Writes one "strata: calls: " line (text without newline) to the log, or
 * to the destination held by this thread when the log closed meanwhile;
 * then ends the hold, closing a held destination. */
void engine_log_release(const char *text, size_t len);
/* True when this thread holds a destination the log closed meanwhile. */
bool engine_log_holding(void);
/* Writes one "strata: calls: " line when the call log is on. */
void engine_log_calls_line(const char *text, size_t len);

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
 * Per-session state: each floor keeps its part in engine_session
 * (ops/session.c owns the table of sessions and their lifetime)
 * ------------------------------------------------------------------ */

typedef enum {
    ENGINE_OP_ENCRYPT = 0,
    ENGINE_OP_DECRYPT,
    ENGINE_OP_DIGEST,
    ENGINE_OP_SIGN,
    ENGINE_OP_SIGN_RECOVER,
    ENGINE_OP_VERIFY,
    ENGINE_OP_VERIFY_RECOVER,
    ENGINE_OP_COUNT
} engine_op;

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

static inline bool session_is_rw(const engine_session *s)
{
    return (s->flags & CKF_RW_SESSION) != 0;
}

/* What a call sees of its token's login state (taken under K). */
typedef struct {
    engine_view *view; /* current, else the public view, else NULL */
    bool logged_in;
    CK_USER_TYPE user;
    unsigned long epoch; /* engine_token.login_epoch */
    bool sessions_only;  /* public-view="none" and no user logged in: the view shows its
                            session objects only, and takes no new token object */
} session_view_state;

#endif /* STRATA_ENGINE_CORE_H */
