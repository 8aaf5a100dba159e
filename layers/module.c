/*
 * module.c - one backend PKCS#11 module, loaded through p11-kit's
 * managed-module API.
 *
 * Managed means p11-kit gives this object its own function list over the
 * shared module: C_Initialize/C_Finalize are counted across every managed
 * user in the process, and the backend's real C_Finalize runs only when
 * the last one finalises (and only if p11-kit's own C_Initialize was the
 * one that initialised it). Sessions are tracked here as well, so unload
 * closes exactly the sessions this object opened, one by one, and never
 * calls the backend's C_CloseAllSessions.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <p11-kit/p11-kit.h>

#include "internal.h"

/* Fills err (when given) with "path: reason". */
static void set_error(char *err, size_t errsize, const char *path, const char *reason)
{
    if (err != NULL && errsize > 0) {
        snprintf(err, errsize, "%s: %s", path, reason);
    }
}

/* Says why path could not be loaded as a PKCS#11 module, in words. */
static void explain_load_failure(const char *path, char *err, size_t errsize)
{
    const char *detail = p11_kit_message();
    struct stat st;
    char reason[512];

    if (path[0] == '/' && stat(path, &st) != 0) {
        snprintf(reason, sizeof(reason), "cannot load module: %s", strerror(errno));
    } else if (path[0] == '/' && !S_ISREG(st.st_mode)) {
        snprintf(reason, sizeof(reason), "cannot load module: not a regular file");
    } else {
        snprintf(reason, sizeof(reason), "not a loadable PKCS#11 module%s%s",
                 detail != NULL ? ": " : "", detail != NULL ? detail : "");
    }
    set_error(err, errsize, path, reason);
}

/*
 * Initialises the module (managed): with p11-kit's default arguments, or
 * with init_reserved as pReserved and OS locking when the policy gives
 * one. Returns the backend's C_Initialize code.
 */
static CK_RV initialize(layers_module *module)
{
    CK_C_INITIALIZE_ARGS args;

    if (module->init_reserved == NULL) {
        return p11_kit_module_initialize(module->funcs);
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = module->init_reserved;
    return module->funcs->C_Initialize(&args);
}

/* Whether path names Strata's own module: the file itself, or for a
 * relative path the file p11-kit would load from its module directory. */
static bool is_strata(const char *path)
{
    char full[4096];

    if (path[0] == '/') {
        return layers_file_is_strata(path);
    }
    snprintf(full, sizeof(full), "%s/%s", P11_MODULE_PATH, path);
    return layers_file_is_strata(full) || layers_file_is_strata(path);
}

CK_RV layers_module_load(const char *path, layers_module **out, char *err, size_t errsize)
{
    return layers_module_load_with(path, NULL, out, err, errsize);
}

/*
 * Loads and initialises the module at path. Returns CKR_OK and *out on
 * success; CKR_ARGUMENTS_BAD for NULL arguments; CKR_HOST_MEMORY;
 * CKR_GENERAL_ERROR when path is not a loadable PKCS#11 module; or the
 * backend's C_Initialize code (CKR_CRYPTOKI_ALREADY_INITIALIZED is
 * absorbed by p11-kit); CKR_GENERAL_ERROR also for Strata's own module
 * (layers_file_is_strata), which is never loaded. err names the path and
 * the reason on failure.
 */
CK_RV layers_module_load_with(const char *path, const char *init_reserved, layers_module **out,
                              char *err, size_t errsize)
{
    layers_module *module = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;
    char reason[128];
    int guard;

    if (out != NULL) {
        *out = NULL;
    }
    if (path == NULL || out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    module = calloc(1, sizeof(*module));
    if (module == NULL || (module->path = strdup(path)) == NULL) {
        rv = CKR_HOST_MEMORY;
        set_error(err, errsize, path, "out of memory");
        goto out;
    }
    if (init_reserved != NULL && (module->init_reserved = strdup(init_reserved)) == NULL) {
        rv = CKR_HOST_MEMORY;
        set_error(err, errsize, path, "out of memory");
        goto out_path;
    }
    if (pthread_mutex_init(&module->lock, NULL) != 0) {
        rv = CKR_CANT_LOCK;
        set_error(err, errsize, path, "cannot create a mutex");
        goto out_path;
    }
    atomic_init(&module->generation, 1);
    if (is_strata(path)) {
        rv = CKR_GENERAL_ERROR;
        set_error(err, errsize, path,
                  "this module is Strata itself (a copy or link of strata-pkcs11.so, known by "
                  "its ELF note, whatever its name): a layer over it would send every call back "
                  "into Strata; refused");
        goto out_lock;
    }
    module->funcs = p11_kit_module_load(path, 0);
    if (module->funcs == NULL) {
        rv = CKR_GENERAL_ERROR;
        explain_load_failure(path, err, errsize);
        goto out_lock;
    }
    guard = layers_guard_take(false);
    rv = initialize(module);
    layers_guard_drop(guard);
    if (rv != CKR_OK) {
        snprintf(reason, sizeof(reason), "C_Initialize failed with %s", layers_rv_name(rv));
        set_error(err, errsize, path, reason);
        p11_kit_module_release(module->funcs);
        goto out_lock;
    }
    *out = module;
    return CKR_OK;

out_lock:
    pthread_mutex_destroy(&module->lock);
out_path:
    free(module->init_reserved);
    free(module->path);
out:
    free(module);
    return rv;
}

/*
 * Closes this object's sessions one by one, finalises (managed) and
 * releases. Tokens made on this module must be freed before. NULL is a
 * no-op.
 */
void layers_module_unload(layers_module *module)
{
    if (module == NULL) {
        return;
    }
    layers_module_close_sessions(module, NULL);
    p11_kit_module_finalize(module->funcs);
    p11_kit_module_release(module->funcs);
    pthread_mutex_destroy(&module->lock);
    free(module->sessions);
    free(module->init_reserved);
    free(module->path);
    free(module);
}

CK_FUNCTION_LIST *layers_module_functions(const layers_module *module)
{
    return module->funcs;
}

const char *layers_module_path(const layers_module *module)
{
    return module->path;
}

/* Reads the generation: one atomic load, no lock (every backend call of
 * the engine asks, twice; a cycle bumps it under the module's lock, which
 * layers_module_track reads it under). */
unsigned layers_module_generation(const layers_module *module)
{
    return atomic_load(&module->generation);
}

/*
 * Whether the backend behind funcs is initialised right now: after our
 * managed finalise, a C_GetInfo that still succeeds means another user
 * kept the backend alive.
 */
static bool backend_alive(CK_FUNCTION_LIST *funcs)
{
    CK_INFO info;

    return funcs->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED;
}

/*
 * Finalises and initialises the module again (managed), drops this
 * object's sessions and bumps the generation, so tokens re-find their
 * slots and forget their logins. *restarted (when given) says whether the
 * backend really restarted: false when another user in the process kept
 * it initialised, in which case it shows no new tokens. Returns CKR_OK or
 * the backend's C_Initialize code (the module is then unusable until a
 * later cycle succeeds). The caller must make sure no other thread uses
 * the module during the cycle.
 */
CK_RV layers_module_cycle(layers_module *module, bool *restarted)
{
    int guard = layers_guard_take(false);
    bool real;
    CK_RV rv;

    layers_module_close_sessions(module, NULL);
    p11_kit_module_finalize(module->funcs);
    real = !backend_alive(module->funcs);
    rv = initialize(module);
    layers_guard_drop(guard);
    pthread_mutex_lock(&module->lock);
    atomic_fetch_add(&module->generation, 1);
    pthread_mutex_unlock(&module->lock);
    if (restarted != NULL) {
        *restarted = real;
    }
    return rv;
}

/* Fills one layers_slot_info; a slot that vanished meanwhile gives
 * CKR_SLOT_ID_INVALID, which the caller skips. */
static CK_RV describe_slot(CK_FUNCTION_LIST *funcs, CK_SLOT_ID slot, layers_slot_info *info)
{
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_RV rv;

    memset(info, 0, sizeof(*info));
    info->slot = slot;
    rv = funcs->C_GetSlotInfo(slot, &si);
    if (rv != CKR_OK) {
        return rv;
    }
    info->token_present = (si.flags & CKF_TOKEN_PRESENT) != 0;
    if (!info->token_present) {
        return CKR_OK;
    }
    /* A present token that cannot describe itself (not recognised) is
     * listed without details rather than failing the whole list. */
    if (funcs->C_GetTokenInfo(slot, &ti) != CKR_OK) {
        return CKR_OK;
    }
    info->token_flags = ti.flags;
    info->initialized = (ti.flags & CKF_TOKEN_INITIALIZED) != 0;
    layers_field_to_string(ti.label, sizeof(ti.label), info->label, sizeof(info->label));
    layers_field_to_string(ti.serialNumber, sizeof(ti.serialNumber), info->serial,
                           sizeof(info->serial));
    layers_field_to_string(ti.model, sizeof(ti.model), info->model, sizeof(info->model));
    layers_field_to_string(ti.manufacturerID, sizeof(ti.manufacturerID), info->manufacturer,
                           sizeof(info->manufacturer));
    return CKR_OK;
}

/* See internal.h. */
CK_RV layers_module_slot_ids(layers_module *module, CK_BBOOL token_present, CK_SLOT_ID **out,
                             CK_ULONG *n)
{
    CK_SLOT_ID *ids = NULL, *grown;
    CK_ULONG count = 0;
    CK_RV rv;

    *out = NULL;
    *n = 0;
    do {
        rv = module->funcs->C_GetSlotList(token_present, NULL, &count);
        if (rv != CKR_OK || count == 0) {
            goto out;
        }
        grown = realloc(ids, count * sizeof(*ids));
        if (grown == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        ids = grown;
        rv = module->funcs->C_GetSlotList(token_present, ids, &count);
    } while (rv == CKR_BUFFER_TOO_SMALL); /* a slot appeared in between */
out:
    if (rv != CKR_OK || count == 0) {
        free(ids);
        return rv;
    }
    *out = ids;
    *n = count;
    return CKR_OK;
}

/*
 * Lists every slot of the module with its token's description. Returns
 * CKR_OK with *out malloc'd (NULL when *n is 0); CKR_ARGUMENTS_BAD;
 * CKR_HOST_MEMORY; or the backend's C_GetSlotList code. Slots that vanish
 * while listing are left out.
 */
CK_RV layers_module_slots(layers_module *module, layers_slot_info **out, size_t *n)
{
    layers_slot_info *list = NULL;
    CK_SLOT_ID *ids = NULL;
    CK_ULONG count = 0, i;
    size_t used = 0;
    CK_RV rv;

    if (module == NULL || out == NULL || n == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    *out = NULL;
    *n = 0;
    rv = layers_module_slot_ids(module, CK_FALSE, &ids, &count);
    if (rv != CKR_OK || count == 0) {
        goto out;
    }
    list = calloc(count, sizeof(*list));
    if (list == NULL) {
        rv = CKR_HOST_MEMORY;
        goto out;
    }
    for (i = 0; i < count; i++) {
        if (describe_slot(module->funcs, ids[i], &list[used]) == CKR_OK) {
            used++;
        }
    }
    *out = list;
    *n = used;
    list = NULL;
out:
    free(list);
    free(ids);
    return rv;
}

void layers_field_to_string(const CK_UTF8CHAR *field, size_t field_len, char *buf, size_t size)
{
    size_t len = field_len;

    if (size == 0) {
        return;
    }
    while (len > 0 && (field[len - 1] == ' ' || field[len - 1] == '\0')) {
        len--;
    }
    if (len >= size) {
        len = size - 1;
    }
    memcpy(buf, field, len);
    buf[len] = '\0';
}

CK_RV layers_module_track(layers_module *module, const layers_token *owner,
                          CK_SESSION_HANDLE handle, unsigned generation)
{
    tracked_session *grown;
    CK_RV rv = CKR_SESSION_CLOSED;
    size_t cap;

    pthread_mutex_lock(&module->lock);
    if (generation != module->generation) {
        goto out;
    }
    if (module->n_sessions == module->cap_sessions) {
        cap = module->cap_sessions == 0 ? 16 : module->cap_sessions * 2;
        grown = realloc(module->sessions, cap * sizeof(*grown));
        if (grown == NULL) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        module->sessions = grown;
        module->cap_sessions = cap;
    }
    module->sessions[module->n_sessions].handle = handle;
    module->sessions[module->n_sessions].owner = owner;
    module->n_sessions++;
    rv = CKR_OK;
out:
    pthread_mutex_unlock(&module->lock);
    return rv;
}

bool layers_module_untrack(layers_module *module, const layers_token *owner,
                           CK_SESSION_HANDLE handle)
{
    bool found = false;
    size_t i;

    pthread_mutex_lock(&module->lock);
    for (i = 0; i < module->n_sessions; i++) {
        if (module->sessions[i].handle == handle && module->sessions[i].owner == owner) {
            module->sessions[i] = module->sessions[--module->n_sessions];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&module->lock);
    return found;
}

/* Takes owner's sessions out of the list (all when owner is NULL) into a
 * malloc'd array. Expects the module's lock held. Returns the count;
 * *out is NULL when it is 0 or memory ran out (then nothing is taken). */
static size_t take_sessions_inlock(layers_module *module, const layers_token *owner,
                                   CK_SESSION_HANDLE **out)
{
    CK_SESSION_HANDLE *taken;
    size_t i = 0, n = 0;

    *out = NULL;
    if (module->n_sessions == 0) {
        return 0;
    }
    taken = malloc(module->n_sessions * sizeof(*taken));
    if (taken == NULL) {
        return 0;
    }
    while (i < module->n_sessions) {
        if (owner == NULL || module->sessions[i].owner == owner) {
            taken[n++] = module->sessions[i].handle;
            module->sessions[i] = module->sessions[--module->n_sessions];
        } else {
            i++;
        }
    }
    if (n == 0) {
        free(taken);
        taken = NULL;
    }
    *out = taken;
    return n;
}

/* See internal.h. If memory runs out nothing is closed here; p11-kit's
 * managed C_Finalize still closes the sessions at unload. */
void layers_module_close_sessions(layers_module *module, const layers_token *owner)
{
    CK_SESSION_HANDLE *taken;
    size_t n, i;

    pthread_mutex_lock(&module->lock);
    n = take_sessions_inlock(module, owner, &taken);
    pthread_mutex_unlock(&module->lock);
    for (i = 0; i < n; i++) {
        module->funcs->C_CloseSession(taken[i]);
    }
    free(taken);
}
