/*
 * init.c - C_Initialize, C_Finalize, C_GetInfo; fork detection. The state
 * it builds is held by core/library.c, with the mutexes it chooses.
 *
 * The library is in one of three states (lib_state): OFF, BUSY (a thread
 * is inside C_Initialize or C_Finalize) and READY. library_check(), on the
 * path of every call, is one atomic load. C_Initialize moves OFF -> BUSY
 * with a compare-and-swap, builds engine_lib without holding any lock
 * (it loads backend modules, which may call back into a PKCS#11 stack),
 * then publishes READY; C_Finalize does the reverse. A concurrent
 * C_Initialize waits while another thread is BUSY, then gets
 * CKR_CRYPTOKI_ALREADY_INITIALIZED (READY) or initialises (OFF); a
 * re-entrant one from the BUSY thread is answered at once. Other calls
 * during BUSY get CKR_CRYPTOKI_NOT_INITIALIZED.
 *
 * Fork: a pthread_atfork child handler (registered once) turns the child's
 * copy of the state to OFF and marks it inherited, so in the child every
 * call but C_Initialize and C_GetFunctionList answers
 * CKR_CRYPTOKI_NOT_INITIALIZED without a getpid() per call. The child's
 * C_Initialize abandons the parent's state instead of freeing it: closing
 * the parent's SQLite connection, backend sessions or p11-kit modules from
 * the child could act on the parent's files, sockets or locks (SQLite
 * forbids using a connection across fork; a remoted backend's socket is
 * shared with the parent), and a mutex some parent thread held at fork
 * time stays locked forever in the child. The abandoned state is kept
 * reachable from `inherited_lib` (so leak checkers stay quiet) and is
 * never touched again. Backends loaded through p11-kit's managed API need
 * nothing more: p11-kit counts forks itself, skips the real C_Finalize in
 * a child, and calls the backend's C_Initialize again when the child
 * loads and initialises the module anew, which C_Initialize here does.
 *
 * Policy errors: on any error (policy missing, unreadable, malformed or
 * invalid, catalog unusable) C_Initialize logs every diagnostic and
 * returns CKR_GENERAL_ERROR, leaving nothing allocated. Running on "the
 * valid part" of a policy could expose a view without the rules that were
 * meant to filter it, so Strata refuses to start instead. A module that
 * fails to load is not a policy error: it is logged once, its layers are
 * unavailable (engine_layer.token == NULL) and the tokens stay listed.
 *
 * Locking (the mutexes: core/library.c): C_Initialize's CK_C_INITIALIZE_ARGS decide how engine
 * mutexes are made (PKCS#11 v2.40 section 5.4, C_Initialize):
 *   - CKF_OS_LOCKING_OK set (with or without callbacks): pthread mutexes;
 *   - callbacks without the flag: the application's callbacks;
 *   - neither: the application is single-threaded; the spec lets the
 *     library still use OS locking, so pthread mutexes again.
 * CKR_CANT_LOCK is for a library that cannot honour the request; with
 * pthreads always available and the application's callbacks always
 * usable, Strata can honour all four cases and never returns it.
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS is honoured trivially: the engine
 * creates no threads. (Backends are initialised by p11-kit with its own
 * arguments, which do not carry that flag.)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

enum {
    LIB_OFF = 0, /* not initialised (or a forked child's inherited state) */
    LIB_BUSY,    /* inside C_Initialize or C_Finalize */
    LIB_READY,   /* initialised in this process */
};

static atomic_int lib_state = LIB_OFF;
static atomic_bool lib_inherited;    /* engine_lib belongs to the parent process */
static engine_library inherited_lib; /* the parent's state, abandoned in a child */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Threads calling C_Initialize while another thread is inside C_Initialize
 * or C_Finalize wait on busy_done for the state to leave BUSY, so the
 * loser of a race never sees CKR_CRYPTOKI_ALREADY_INITIALIZED from a
 * library that is not ready yet. busy_lock is held only around the state
 * change and the wait, never while building. busy_owner is the thread in
 * BUSY: a re-entrant C_Initialize from it (a backend loading Strata again
 * through p11-kit-proxy) is answered at once instead of waiting forever. */
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_done = PTHREAD_COND_INITIALIZER;
static pthread_t busy_owner;
static bool busy_owned;

/* ---------------------------------------------------------------------
 * Arguments and fork
 * ------------------------------------------------------------------ */

/*
 * Validates CK_C_INITIALIZE_ARGS (NULL is valid) and chooses the locking
 * mode into *locking. Returns CKR_OK, or CKR_ARGUMENTS_BAD when pReserved
 * is not NULL or only some of the four callbacks are given.
 */
static CK_RV parse_init_args(const CK_C_INITIALIZE_ARGS *args, CK_C_INITIALIZE_ARGS *locking)
{
    int given;

    memset(locking, 0, sizeof(*locking));
    if (args == NULL) {
        return CKR_OK;
    }
    if (args->pReserved != NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    given = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) + (args->LockMutex != NULL) +
            (args->UnlockMutex != NULL);
    if (given != 0 && given != 4) {
        return CKR_ARGUMENTS_BAD;
    }
    if (given == 4 && !(args->flags & CKF_OS_LOCKING_OK)) {
        locking->CreateMutex = args->CreateMutex;
        locking->DestroyMutex = args->DestroyMutex;
        locking->LockMutex = args->LockMutex;
        locking->UnlockMutex = args->UnlockMutex;
    }
    return CKR_OK;
}

/* pthread_atfork child handler: the child inherits the parent's state but
 * must initialise anew (see the file comment). Async-signal-safe. */
static void atfork_child(void)
{
    /* A parent thread may have held busy_lock at fork time. */
    pthread_mutex_init(&busy_lock, NULL);
    pthread_cond_init(&busy_done, NULL);
    busy_owned = false;
    if (atomic_load(&lib_state) != LIB_OFF) {
        atomic_store(&lib_inherited, true);
        atomic_store(&lib_state, LIB_OFF);
    }
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

/* In a forked child: drops the parent's state without freeing anything
 * (see the file comment). Expects lib_state == LIB_BUSY (owned by us). */
static void abandon_inherited(void)
{
    if (!atomic_exchange(&lib_inherited, false)) {
        return;
    }
    session_abandon();
    inherited_lib = engine_lib;
    memset(&engine_lib, 0, sizeof(engine_lib));
    engine_mutex_use(NULL);
}

/* ---------------------------------------------------------------------
 * Building and freeing the state
 * ------------------------------------------------------------------ */

/* Logs each diagnostic at its severity. */
static void log_diags(const rules_diags *diags)
{
    char line[512];

    for (size_t i = 0; i < diags->count; i++) {
        const rules_diag *diag = &diags->items[i];
        rules_diag_format(diag, line, sizeof(line));
        engine_log(diag->severity == RULES_SEVERITY_ERROR ? ENGINE_LOG_ERROR : ENGINE_LOG_WARNING,
                   "%s", line);
    }
}

/*
 * Finds and loads the policy into engine_lib.policy. Returns CKR_OK,
 * CKR_HOST_MEMORY, or CKR_GENERAL_ERROR (any policy error, logged).
 */
static CK_RV load_policy(void)
{
    char *path = rules_policy_default_path();
    char *missing = rules_policy_not_found();
    rules_diags diags;
    CK_RV rv = CKR_HOST_MEMORY;

    rules_diags_init(&diags);
    if (path == NULL) {
        engine_log(ENGINE_LOG_ERROR, "out of memory finding the policy");
        goto out;
    }
    if (missing != NULL) {
        engine_log(ENGINE_LOG_ERROR, "%s", missing);
    }
    engine_log(ENGINE_LOG_INFO, "loading policy %s", path);
    rv = CKR_GENERAL_ERROR;
    if (rules_policy_load(path, &engine_lib.policy, &diags) != 0) {
        engine_lib.policy = NULL;
        log_diags(&diags);
        engine_log(ENGINE_LOG_ERROR, "policy %s not loaded: %zu error(s)", path, diags.n_errors);
        goto out;
    }
    log_diags(&diags);
    rv = CKR_OK;
out:
    rules_diags_clear(&diags);
    free(missing);
    free(path);
    return rv;
}

/*
 * Points the backend guard (layers/guard.c) at CATALOG.lock, beside the
 * catalog: every process of this catalog, each client of a `p11-kit
 * server` among them, then keeps its backend logins apart from the others'
 * backend initialisations and token reads; and at CATALOG.kdf, whose
 * byte locks let only storage_kdf_limit() Argon2id derivations run at once
 * among them (storage/kdf.c). STORAGE_OK or STORAGE_ERR_NOMEM.
 */
static storage_rc set_guard(const char *catalog)
{
    char *path = NULL;
    storage_rc src = STORAGE_ERR_NOMEM;

    if (asprintf(&path, "%s.lock", catalog) >= 0) {
        src = layers_guard_set(path) == CKR_OK ? STORAGE_OK : STORAGE_ERR_NOMEM;
        free(path);
    }
    if (src == STORAGE_OK && asprintf(&path, "%s.kdf", catalog) >= 0) {
        src = storage_kdf_share(path);
        free(path);
    }
    return src;
}

/*
 * Opens (creating on first use) the catalog the policy names, or the
 * default one. Returns CKR_OK, CKR_HOST_MEMORY, or CKR_GENERAL_ERROR
 * (newer schema, not a catalog, unwritable: logged, file unchanged).
 */
static CK_RV open_catalog(void)
{
    const char *named = engine_lib.policy->catalog_path;
    char *fallback = NULL;
    char err[512] = "";
    storage_rc src;

    if (named == NULL) {
        fallback = storage_default_path();
        if (fallback == NULL) {
            engine_log(ENGINE_LOG_ERROR, "no catalog path: set <catalog path=\"...\"/> in the "
                                         "policy, or HOME / XDG_DATA_HOME");
            return CKR_GENERAL_ERROR;
        }
        named = fallback;
    }
    src = storage_catalog_open(named, STORAGE_OPEN_CREATE, &engine_lib.catalog, err, sizeof(err));
    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR, "catalog %s: %s", named,
                   err[0] != '\0' ? err : storage_strerror(src));
        engine_lib.catalog = NULL;
    } else {
        engine_log(ENGINE_LOG_INFO, "catalog %s, schema %d", named,
                   storage_catalog_version(engine_lib.catalog));
        src = set_guard(named);
    }
    free(fallback);
    if (src == STORAGE_OK) {
        return CKR_OK;
    }
    return src == STORAGE_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
}

/*
 * Allocates engine_lib.tokens and gives each its stable slot ID from the
 * catalog. Returns CKR_OK, CKR_HOST_MEMORY, or CKR_GENERAL_ERROR (logged).
 */
static CK_RV assign_slots(void)
{
    const rules_policy *policy = engine_lib.policy;
    storage_rc src;

    if (policy->n_tokens == 0) {
        return CKR_OK;
    }
    engine_lib.tokens = calloc(policy->n_tokens, sizeof(*engine_lib.tokens));
    if (engine_lib.tokens == NULL) {
        return CKR_HOST_MEMORY;
    }
    engine_lib.n_tokens = policy->n_tokens;
    for (size_t i = 0; i < policy->n_tokens; i++) {
        engine_token *token = &engine_lib.tokens[i];
        token->def = &policy->tokens[i];
        src = storage_slot_id(engine_lib.catalog, token->def->label, &token->slot_id);
        if (src != STORAGE_OK) {
            engine_log(ENGINE_LOG_ERROR, "no slot ID for token \"%s\": %s", token->def->label,
                       storage_strerror(src));
            return src == STORAGE_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
        }
        engine_log(ENGINE_LOG_DEBUG, "token \"%s\" on slot %lu", token->def->label,
                   (unsigned long)token->slot_id);
    }
    return CKR_OK;
}

/*
 * Loads every module of the policy into engine_lib.modules. A module that
 * fails is logged once and left NULL. Returns CKR_OK or CKR_HOST_MEMORY.
 * Calls backends: holds no lock.
 */
static CK_RV load_modules(void)
{
    const rules_policy *policy = engine_lib.policy;
    char err[512];

    if (policy->n_modules == 0) {
        return CKR_OK;
    }
    engine_lib.modules = calloc(policy->n_modules, sizeof(*engine_lib.modules));
    if (engine_lib.modules == NULL) {
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; i < policy->n_modules; i++) {
        const rules_module *def = &policy->modules[i];
        uint64_t mark = loop_mark();
        CK_RV rv;

        err[0] = '\0';
        rv = layers_module_load_with(def->path, def->init_reserved, &engine_lib.modules[i], err,
                                     sizeof(err));
        if (rv == CKR_OK && loop_mark_moved(mark)) { /* loop.c */
            layers_module_unload(engine_lib.modules[i]);
            rv = CKR_GENERAL_ERROR;
            snprintf(err, sizeof(err),
                     "%s: leads back to Strata (a Strata process of this catalog met a loop "
                     "while it loaded: see the line on processes loading their modules)",
                     def->path);
        }
        if (rv != CKR_OK) {
            engine_lib.modules[i] = NULL;
            engine_log(ENGINE_LOG_ERROR,
                       "%s:%u: module \"%s\" unavailable, its layers are offline: %s", policy->path,
                       def->line, def->id, err[0] != '\0' ? err : def->path);
        } else {
            engine_log(ENGINE_LOG_INFO, "module \"%s\" loaded from %s", def->id, def->path);
        }
    }
    return CKR_OK;
}

/* The loaded module a layer lives in, or NULL when it failed to load. */
static layers_module *module_of(const rules_layer *layer)
{
    const rules_module *def = rules_policy_module(engine_lib.policy, layer->module_id);

    if (def == NULL) {
        return NULL;
    }
    return engine_lib.modules[def - engine_lib.policy->modules];
}

/*
 * Fills layer->backend_label and layer->marked (layer->label set): a lazy
 * layer's token carries the label its catalog row names, marked as this
 * catalog's (storage_provision_label), so that catalogs sharing a backend
 * never find each other's tokens; any other layer's is its label. Without
 * a catalog, or when it cannot be read (logged), the label unmarked.
 */
static void backend_label(const engine_token *token, engine_layer *layer, const char *view)
{
    storage_rc src;

    snprintf(layer->backend_label, sizeof(layer->backend_label), "%s", layer->label);
    layer->marked = false;
    if (layer->def->provision != RULES_PROVISION_LAZY || engine_lib.catalog == NULL ||
        layer->label[0] == '\0') {
        return;
    }
    src = storage_provision_label(engine_lib.catalog, token->def->label, view, layer->def->id,
                                  layer->label, layer->backend_label, &layer->marked);
    if (src != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR, "layer \"%s\" (\"%s\"): its provisioned token's label: %s",
                   layer->def->id, layer->label, storage_strerror(src));
        snprintf(layer->backend_label, sizeof(layer->backend_label), "%s", layer->label);
    }
}

/*
 * The engine_layer of token for (def, label): an existing one when a view
 * already uses the same layer with the same label, else a new one appended
 * to token->layers (which has room for every layer of every view).
 * Returns CKR_OK, CKR_HOST_MEMORY. A layer whose module failed to load
 * gets token == NULL. Calls no backend (layers_token_new does not).
 */
static CK_RV token_layer(engine_token *token, const rules_layer *def, const char *label,
                         const char *view, engine_layer **out)
{
    layers_module *module = module_of(def);
    engine_layer *layer;
    CK_RV rv;

    for (size_t i = 0; i < token->n_layers; i++) {
        layer = &token->layers[i];
        if (layer->def == def && strcmp(layer->label, label) == 0) {
            *out = layer;
            return CKR_OK;
        }
    }
    layer = &token->layers[token->n_layers];
    layer->def = def;
    snprintf(layer->label, sizeof(layer->label), "%s", label);
    backend_label(token, layer, view);
    layer->read_only = def->access == RULES_ACCESS_READ_ONLY;
    layer->token = NULL;
    if (module != NULL) {
        rv = layers_token_new(module, label[0] != '\0' ? layer->backend_label : NULL, def->serial,
                              &layer->token);
        if (rv != CKR_OK) {
            engine_log(ENGINE_LOG_ERROR, "layer \"%s\" (token \"%s\"): %s", def->id, label,
                       layers_rv_name(rv));
            return rv == CKR_HOST_MEMORY ? rv : CKR_GENERAL_ERROR;
        }
    }
    rv = backend_locks_init(layer);
    if (rv != CKR_OK) {
        layers_token_free(layer->token);
        layer->token = NULL;
        return rv;
    }
    token->n_layers++;
    *out = layer;
    return CKR_OK;
}

/*
 * Fills view (of token) from def: its layers, top first, with their labels
 * expanded for the view. Returns CKR_OK, CKR_HOST_MEMORY, or
 * CKR_GENERAL_ERROR (a layer the policy does not declare, or a label that
 * does not fit 32 bytes once expanded: logged).
 */
static CK_RV build_view(engine_token *token, engine_view *view, const rules_view *def)
{
    const char *file = engine_lib.policy->path;
    char label[sizeof(((engine_layer *)0)->label)];
    CK_RV rv;

    view->def = def;
    if (def->n_layers == 0) {
        return CKR_OK;
    }
    view->layers = calloc(def->n_layers, sizeof(*view->layers));
    if (view->layers == NULL) {
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; i < def->n_layers; i++) {
        const rules_layer *layer = rules_policy_layer(engine_lib.policy, def->layers[i]);

        if (layer == NULL) {
            engine_log(ENGINE_LOG_ERROR, "%s:%u: view \"%s\" names unknown layer \"%s\"", file,
                       def->line, def->id, def->layers[i]);
            return CKR_GENERAL_ERROR;
        }
        if (layer->token == NULL) {
            label[0] = '\0';
        } else if (rules_layer_token_label(layer, def->id, label, sizeof(label)) != 0) {
            engine_log(ENGINE_LOG_ERROR,
                       "%s:%u: layer \"%s\": token label for view \"%s\" exceeds 32 bytes", file,
                       layer->line, layer->id, def->id);
            return CKR_GENERAL_ERROR;
        }
        rv = token_layer(token, layer, label, def->id, &view->layers[i]);
        if (rv != CKR_OK) {
            return rv;
        }
        view->n_layers++;
    }
    return CKR_OK;
}

/*
 * Builds token's views, layers, public view and lock from token->def.
 * Returns CKR_OK, CKR_HOST_MEMORY, CKR_GENERAL_ERROR, or the mutex code.
 * Partial results are freed by free_token.
 */
static CK_RV build_token(engine_token *token)
{
    const rules_token *def = token->def;
    size_t room = 0;
    CK_RV rv;

    rv = engine_mutex_new(&token->lock);
    if (rv != CKR_OK) {
        return rv;
    }
    for (size_t i = 0; i < def->n_views; i++) {
        room += def->views[i].n_layers;
    }
    if (def->n_views == 0) {
        return CKR_OK;
    }
    token->views = calloc(def->n_views, sizeof(*token->views));
    token->layers = room > 0 ? calloc(room, sizeof(*token->layers)) : NULL;
    if (token->views == NULL || (room > 0 && token->layers == NULL)) {
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; i < def->n_views; i++) {
        rv = build_view(token, &token->views[i], &def->views[i]);
        token->n_views++;
        if (rv != CKR_OK) {
            return rv;
        }
        if (&def->views[i] == def->public_view) {
            token->public_view = &token->views[i];
        }
    }
    if (token->public_view == NULL) { /* public-view="none" */
        token->public_view = &token->views[0];
        token->public_none = true;
    }
    return CKR_OK;
}

/* Frees what build_token made (partial or whole). Logs out of the layers
 * (layers_token_free does). Calls backends: holds no lock. */
static void free_token(engine_token *token)
{
    for (size_t i = 0; i < token->n_views; i++) {
        free(token->views[i].layers);
    }
    free(token->views);
    for (size_t i = 0; i < token->n_layers; i++) {
        layers_token_free(token->layers[i].token);
        backend_locks_free(&token->layers[i]);
    }
    free(token->layers);
    engine_mutex_free(token->lock);
    memset(token, 0, sizeof(*token));
}

/* Frees everything engine_lib holds, whole or partly built, and zeroes it.
 * Tokens go before the modules they live in. Holds no lock. */
static void free_state(void)
{
    const rules_policy *policy = engine_lib.policy;

    for (size_t i = 0; i < engine_lib.n_tokens; i++) {
        free_token(&engine_lib.tokens[i]);
    }
    free(engine_lib.tokens);
    if (engine_lib.modules != NULL) {
        for (size_t i = 0; i < policy->n_modules; i++) {
            layers_module_unload(engine_lib.modules[i]);
        }
    }
    free(engine_lib.modules);
    storage_catalog_close(engine_lib.catalog);
    layers_guard_set(NULL);
    storage_kdf_share(NULL);
    rules_policy_free(engine_lib.policy);
    memset(&engine_lib, 0, sizeof(engine_lib));
}

/*
 * Builds engine_lib from the policy: policy, catalog, slot IDs, modules,
 * tokens. Returns CKR_OK, or CKR_HOST_MEMORY / CKR_GENERAL_ERROR (logged)
 * with engine_lib partly built for free_state. Holds no lock.
 */
static CK_RV build_state(void)
{
    CK_RV rv;

    if (storage_crypto_init() != STORAGE_OK) {
        engine_log(ENGINE_LOG_ERROR, "libsodium failed to initialise");
        return CKR_GENERAL_ERROR;
    }
    rv = load_policy();
    if (rv != CKR_OK) {
        return rv;
    }
    if (engine_lib.policy->log != NULL) {
        engine_log_open(engine_lib.policy->log);
    }
    rv = open_catalog();
    if (rv == CKR_OK) {
        rv = assign_slots();
    }
    if (rv == CKR_OK) {
        rv = loop_slot_take(storage_catalog_path(engine_lib.catalog));
    }
    if (rv == CKR_OK) {
        loop_marker_set();
        rv = load_modules();
        loop_marker_clear();
        loop_slot_release();
    }
    for (size_t i = 0; rv == CKR_OK && i < engine_lib.n_tokens; i++) {
        rv = build_token(&engine_lib.tokens[i]);
    }
    return rv;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------ */

typedef enum {
    BUSY_OWNED,     /* the caller now owns BUSY */
    BUSY_READY,     /* the library is initialised */
    BUSY_REENTERED, /* the caller is inside its own C_Initialize/C_Finalize */
} busy_result;

/* Moves OFF -> BUSY for the calling thread, waiting while another thread
 * is BUSY. */
static busy_result busy_enter(void)
{
    busy_result result = BUSY_OWNED;

    pthread_mutex_lock(&busy_lock);
    for (;;) {
        int expected = LIB_OFF;
        if (atomic_compare_exchange_strong(&lib_state, &expected, LIB_BUSY)) {
            busy_owner = pthread_self();
            busy_owned = true;
            break;
        }
        if (expected == LIB_READY) {
            result = BUSY_READY;
            break;
        }
        if (busy_owned && pthread_equal(busy_owner, pthread_self())) {
            result = BUSY_REENTERED;
            break;
        }
        pthread_cond_wait(&busy_done, &busy_lock);
    }
    pthread_mutex_unlock(&busy_lock);
    return result;
}

/* Publishes state (READY or OFF) at the end of BUSY and wakes waiters. */
static void busy_leave(int state)
{
    pthread_mutex_lock(&busy_lock);
    busy_owned = false;
    atomic_store_explicit(&lib_state, state, memory_order_release);
    pthread_cond_broadcast(&busy_done);
    pthread_mutex_unlock(&busy_lock);
}

/* CKR_OK when C_Initialize succeeded in this very process. Lock-free. */
CK_RV library_check(void)
{
    if (atomic_load_explicit(&lib_state, memory_order_acquire) == LIB_READY) {
        return CKR_OK;
    }
    return CKR_CRYPTOKI_NOT_INITIALIZED;
}

/*
 * C_Initialize. Returns CKR_OK; CKR_ARGUMENTS_BAD (pReserved, partial
 * callbacks); CKR_CRYPTOKI_ALREADY_INITIALIZED (initialised, or another
 * thread is initialising or finalising); CKR_HOST_MEMORY;
 * CKR_GENERAL_ERROR (policy or catalog unusable; or a layer's module
 * leads back to Strata, loop.c: logged); a mutex code.
 * On failure nothing stays allocated. Holds no lock while building.
 */
CK_RV library_initialize(CK_VOID_PTR init_args)
{
    CK_C_INITIALIZE_ARGS locking;
    CK_RV rv;

    rv = parse_init_args(init_args, &locking);
    if (rv != CKR_OK) {
        return rv;
    }
    pthread_once(&atfork_once, register_atfork);
    switch (busy_enter()) {
    case BUSY_READY:
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    case BUSY_REENTERED:
        engine_log(ENGINE_LOG_ERROR,
                   "C_Initialize called again from inside Strata's own C_Initialize: a layer's "
                   "module leads back to Strata (p11-kit-proxy.so with Strata in its "
                   "configuration?); refused, so that layer fails or goes without Strata");
        return CKR_GENERAL_ERROR;
    case BUSY_OWNED:
        break;
    }
    abandon_inherited();
    gate_reset(); /* the backend gate of reconnects (reconnect.c), fresh */
    backend_replay_register(login_replay);
    engine_mutex_use(&locking);
    engine_log_open(NULL);
    engine_log(ENGINE_LOG_INFO, "C_Initialize: strata %s, %s locking", STRATA_VERSION,
               locking.CreateMutex != NULL ? "application" : "OS");
    rv = loop_nested_check();
    if (rv == CKR_OK) {
        rv = build_state();
    }
    if (rv != CKR_OK) {
        free_state();
        engine_log(ENGINE_LOG_ERROR, "C_Initialize failed: %s", layers_rv_name(rv));
        engine_log_close();
        engine_mutex_use(NULL);
        busy_leave(LIB_OFF);
        return rv;
    }
    wait_reset(); /* slot events start anew (backend/wait.c) */
    busy_leave(LIB_READY);
    return CKR_OK;
}

/*
 * C_Finalize (entry.c checked the state). Returns CKR_OK,
 * CKR_ARGUMENTS_BAD (reserved not NULL), or CKR_CRYPTOKI_NOT_INITIALIZED
 * when another thread finalises at the same time. Closes every session,
 * logs out of and frees the layers, unloads modules, closes the catalog,
 * frees the policy. Holds no lock while doing so.
 */
CK_RV library_finalize(CK_VOID_PTR reserved)
{
    int expected = LIB_READY;

    if (reserved != NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    pthread_mutex_lock(&busy_lock);
    if (!atomic_compare_exchange_strong(&lib_state, &expected, LIB_BUSY)) {
        pthread_mutex_unlock(&busy_lock);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    busy_owner = pthread_self();
    busy_owned = true;
    pthread_mutex_unlock(&busy_lock);
    engine_log(ENGINE_LOG_INFO, "C_Finalize");
    wait_finalize(); /* blocked C_WaitForSlotEvent calls return first (backend/wait.c) */
    session_finalize();
    free_state();
    engine_log_close();
    engine_mutex_use(NULL);
    busy_leave(LIB_OFF);
    return CKR_OK;
}

/* C_GetInfo. Returns CKR_OK, or CKR_ARGUMENTS_BAD for NULL. */
CK_RV library_get_info(CK_INFO_PTR info)
{
    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    memset(info, 0, sizeof(*info));
    info->cryptokiVersion.major = ENGINE_CRYPTOKI_MAJOR;
    info->cryptokiVersion.minor = ENGINE_CRYPTOKI_MINOR;
    engine_pad(info->manufacturerID, sizeof(info->manufacturerID), "Strata");
    info->flags = 0;
    engine_pad(info->libraryDescription, sizeof(info->libraryDescription),
               "Strata layered PKCS#11 module");
    library_version(&info->libraryVersion);
    return CKR_OK;
}
