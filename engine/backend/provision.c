/*
 * provision.c - lazy provisioning at login: the token of a layer with
 * provision="lazy" is made on a free slot of the layer's module the first
 * time a view that uses it logs in.
 *
 * The catalog holds one row per (virtual token, view, layer) with the
 * generated SO and user PINs sealed under the view's key (storage.h:
 * pending -> waiting -> initialised -> ready). One login runs:
 *
 *   1. storage_provision_begin: the row, made once under BEGIN IMMEDIATE,
 *      so racing processes get the same row and the same PINs;
 *   2. storage_provision_claim: only the claimant talks to the backend;
 *      a process that loses the claim waits (bounded) for the row to
 *      move, then uses what the winner made;
 *   3. under the exclusive backend gate: layers_token_provision with the
 *      generated PINs and the expanded label (it cycles the module once
 *      when there is no free slot), then storage_provision_advance to
 *      initialised and ready with the serial;
 *   4. the caller (login.c) logs in with the user PIN.
 *
 * The layer's token is named by the label its row records (the policy's
 * label with this catalog's mark, storage_provision_label: several
 * catalogs may provision on one backend with one policy) and, once the
 * row records one, by the row's serial too: two tokens of this catalog
 * may share a label (see the orphan below), and some backends give every
 * token the same serial.
 *
 * Repairs, so that a crash at any step leaves a state the next login
 * finishes: a token with the row's label that is visible while the row is
 * not ready (C_InitToken ran, C_InitPIN or the catalog update did not),
 * or LAYERS_CKR_LABEL_TAKEN, is re-initialised with the row's SO PIN
 * (layers_token_reinit) and the row advanced. When that token's SO PIN is
 * not the row's (SoftHSM2 killed inside C_InitToken, between its writes
 * of the label and of the SO PIN) it is an orphan: a warning names its
 * serial (`strata tokens` lists and removes it), and a new token with the
 * label is made beside it with the row's PINs. A token whose label lacks
 * this catalog's mark (a row begun before catalogs had one) is never
 * called an orphan: it may be another catalog's. A row that is ready or
 * initialised whose token the module does not show was provisioned by
 * another process (or before a restart): the module is cycled; when the
 * cycle cannot restart the backend (another user in the process keeps
 * it alive) the layer is left out with the log line "provisioned -
 * visible after restart"; when the restarted backend still does not show
 * it, the token is gone (SoftHSM2 killed while rewriting its
 * token.object) and a new one is made with the row's PINs, the row going
 * back through initialised to ready with the new serial. No free slot
 * even after a cycle: the row is marked waiting and the login fails with
 * CKR_DEVICE_MEMORY; a later login tries again. LAYERS_CKR_LABEL_TAKEN
 * never reaches an application.
 *
 * Locks: runs inside C_Login with S, L and a shared hold of the backend
 * gate; every backend change (provision, repair, cycle) runs with the
 * gate exclusive (backend.h). Never under K, H, T or the learn lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "backend.h"

#define CLAIM_WAIT_MS 30000 /* longest wait for another process's provisioning */
#define CLAIM_POLL_MS 25
#define SEE_ATTEMPTS  4  /* cycles to see a token another process made */
#define SEE_PAUSE_MS  50 /* between them: its files may be mid-write */

/* Logs and maps a storage failure. */
static CK_RV storage_failed(const engine_layer *layer, const char *what, storage_rc src)
{
    engine_log(ENGINE_LOG_ERROR, "layer \"%s\" (\"%s\"): %s: %s", layer->def->id,
               layer->backend_label, what, storage_strerror(src));
    return src == STORAGE_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_DEVICE_ERROR;
}

/* True when layer's token shows in its module right now (calls it). */
static bool token_visible(engine_layer *layer)
{
    CK_SLOT_ID slot;

    return layers_token_slot(layer->token, &slot) == CKR_OK;
}

/* Whether layer's token is named by serial (the row's; "" for none). */
static bool named_by(const engine_layer *layer, const char *serial)
{
    const char *now = layers_token_serial(layer->token);

    return serial[0] == '\0' ? now == NULL : now != NULL && strcmp(now, serial) == 0;
}

/* Names layer's token by serial ("" for none: by label only). Expects the
 * exclusive gate. Returns CKR_OK or CKR_HOST_MEMORY (logged). */
static CK_RV name_by(engine_layer *layer, const char *serial)
{
    CK_RV rv = CKR_OK;

    if (!named_by(layer, serial)) {
        rv = layers_token_set_serial(layer->token, serial[0] != '\0' ? serial : NULL);
    }
    if (rv != CKR_OK) {
        engine_log(ENGINE_LOG_ERROR, "layer \"%s\" (\"%s\"): naming token serial %s: %s",
                   layer->def->id, layer->backend_label, serial, layers_rv_name(rv));
        return CKR_HOST_MEMORY;
    }
    return CKR_OK;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The row's identifying names. */
typedef struct {
    const char *token; /* virtual token label */
    const char *view;
    const char *layer;
} row_key;

/* Advances the row to initialised then ready with serial and names
 * layer's token by it. Expects the exclusive gate. Returns CKR_OK;
 * CKR_HOST_MEMORY; or the mapped storage failure (the row stays where it
 * got to; the next login repairs from there). */
static CK_RV advance_ready(engine_layer *layer, const row_key *k,
                           const storage_provision_info *info, const char *serial)
{
    storage_rc src = STORAGE_OK;

    if (info->state != STORAGE_PROV_INITIALISED && info->state != STORAGE_PROV_READY) {
        src = storage_provision_advance(engine_lib.catalog, k->token, k->view, k->layer,
                                        STORAGE_PROV_INITIALISED, serial);
    }
    if (src == STORAGE_OK && info->state == STORAGE_PROV_READY) {
        src = storage_provision_advance(engine_lib.catalog, k->token, k->view, k->layer,
                                        STORAGE_PROV_INITIALISED, serial);
    }
    if (src == STORAGE_OK) {
        src = storage_provision_advance(engine_lib.catalog, k->token, k->view, k->layer,
                                        STORAGE_PROV_READY, serial);
    }
    if (src != STORAGE_OK) {
        return storage_failed(layer, "recording the provisioned token", src);
    }
    return name_by(layer, serial);
}

static CK_RV create(engine_layer *layer, const row_key *k, const storage_provision *p,
                    bool alongside);

/* Whether a repair's failure says the token's SO PIN is not the row's. */
static bool not_ours(CK_RV rv)
{
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED;
}

/* Warns that layer's token (as named now) has an SO PIN that is not the
 * row's. With this catalog's mark on its label it can only be this
 * catalog's: an orphan a crash inside the backend left, which `strata
 * tokens` lists and removes. Without the mark (a row begun before
 * catalogs had an identity) it may be another catalog's token: it is
 * named, and never called an orphan or offered for deletion. */
static void warn_not_ours(engine_layer *layer)
{
    CK_TOKEN_INFO info;
    char serial[sizeof(info.serialNumber) + 1] = "?";

    if (layers_token_info(layer->token, &info) == CKR_OK) {
        layers_field_to_string(info.serialNumber, sizeof(info.serialNumber), serial,
                               sizeof(serial));
    }
    if (layer->marked) {
        engine_log(ENGINE_LOG_WARNING,
                   "layer \"%s\": orphan token \"%s\" (serial %s) carries this catalog's mark "
                   "but has an SO PIN that is not the view's (a crash inside the backend left "
                   "it); making a new token beside it; 'strata tokens' lists it",
                   layer->def->id, layer->backend_label, serial);
        return;
    }
    engine_log(ENGINE_LOG_WARNING,
               "layer \"%s\": token \"%s\" (serial %s) has an SO PIN that is not the view's and "
               "no mark of this catalog (it may be another catalog's): left alone; making a new "
               "token beside it",
               layer->def->id, layer->backend_label, serial);
}

/*
 * Re-initialises the visible token of layer with the row's SO PIN and
 * records it ready; a token whose SO PIN is not the row's is left as an
 * orphan and a new one made beside it (create). Expects the exclusive
 * gate and the row's claim. Returns CKR_OK, CKR_DEVICE_ERROR (logged), or
 * the codes of create.
 */
static CK_RV repair(engine_layer *layer, const row_key *k, const storage_provision *p)
{
    const storage_provision_info *info = storage_provision_info_get(p);
    const char *so, *user;
    size_t so_len, user_len;
    char serial[17] = "", err[256] = "";
    CK_RV rv;

    storage_provision_pins(p, &so, &so_len, &user, &user_len);
    rv = layers_token_reinit(layer->token, layer->backend_label, so, so_len, user, user_len, serial,
                             err, sizeof(err));
    if (not_ours(rv)) {
        warn_not_ours(layer);
        return create(layer, k, p, true);
    }
    if (rv != CKR_OK) {
        engine_log(ENGINE_LOG_ERROR,
                   "layer \"%s\" (\"%s\"): repairing the half-provisioned token "
                   "failed: %s%s%s",
                   layer->def->id, layer->backend_label, layers_rv_name(rv), err[0] ? ": " : "",
                   err);
        return CKR_DEVICE_ERROR;
    }
    engine_log(ENGINE_LOG_INFO, "layer \"%s\": half-provisioned token \"%s\" repaired (serial %s)",
               layer->def->id, layer->backend_label, serial);
    return advance_ready(layer, k, info, serial);
}

/*
 * Provisions a new token for the claimed row, beside tokens with the
 * label when alongside. A label in use is repaired when layer's token is
 * named by label only (it is the row's token, half made); when it is
 * named by the row's serial, that token is gone and the labelled one is
 * not the row's, so the new token goes beside it. Expects the exclusive
 * gate. Returns CKR_OK; CKR_DEVICE_MEMORY (row moved to waiting);
 * CKR_DEVICE_ERROR; CKR_HOST_MEMORY.
 */
static CK_RV create(engine_layer *layer, const row_key *k, const storage_provision *p,
                    bool alongside)
{
    const storage_provision_info *info = storage_provision_info_get(p);
    layers_module *module = layers_token_module(layer->token);
    const char *so, *user;
    size_t so_len, user_len;
    char serial[17] = "", err[256] = "";
    CK_RV rv;

    storage_provision_pins(p, &so, &so_len, &user, &user_len);
    if (alongside) {
        rv = layers_token_provision_alongside(module, layer->backend_label, so, so_len, user,
                                              user_len, serial, err, sizeof(err));
    } else {
        rv = layers_token_provision(module, layer->backend_label, so, so_len, user, user_len,
                                    serial, err, sizeof(err));
    }
    if (rv == LAYERS_CKR_LABEL_TAKEN && layers_token_serial(layer->token) != NULL) {
        engine_log(ENGINE_LOG_WARNING,
                   "layer \"%s\": another token is labelled \"%s\" (not serial %s); making "
                   "the new token beside it",
                   layer->def->id, layer->backend_label, layers_token_serial(layer->token));
        return create(layer, k, p, true);
    }
    if (rv == LAYERS_CKR_LABEL_TAKEN) {
        return repair(layer, k, p);
    }
    if (rv == CKR_DEVICE_MEMORY) {
        engine_log(ENGINE_LOG_ERROR,
                   "layer \"%s\": no free slot for token \"%s\"%s%s; the view "
                   "is waiting for a free slot",
                   layer->def->id, layer->backend_label, err[0] ? ": " : "", err);
        storage_provision_advance(engine_lib.catalog, k->token, k->view, k->layer,
                                  STORAGE_PROV_WAITING, NULL);
        return CKR_DEVICE_MEMORY;
    }
    if (rv != CKR_OK) {
        engine_log(ENGINE_LOG_ERROR, "layer \"%s\": provisioning token \"%s\" failed: %s%s%s",
                   layer->def->id, layer->backend_label, layers_rv_name(rv), err[0] ? ": " : "",
                   err);
        return CKR_DEVICE_ERROR;
    }
    engine_log(ENGINE_LOG_INFO, "layer \"%s\": token \"%s\" provisioned (serial %s)",
               layer->def->id, layer->backend_label, serial);
    return advance_ready(layer, k, info, serial);
}

/*
 * Cycles the layer's module to show a token another process made, a few
 * times when the restarted backend still does not show it (measured with
 * SoftHSM2: a restart while the other process writes to the new token may
 * skip it). Expects the exclusive gate. *visible says whether it shows
 * afterwards; *restarted whether the backend really restarted.
 */
static void cycle_to_see(engine_layer *layer, bool *visible, bool *restarted)
{
    *visible = false;
    for (int i = 0; i < SEE_ATTEMPTS && !*visible; i++) {
        *restarted = false;
        if (i > 0) {
            sleep_ms(SEE_PAUSE_MS);
        }
        if (reconnect_cycle_inexclusive(layers_token_module(layer->token), restarted) != CKR_OK ||
            !*restarted) {
            return;
        }
        *visible = token_visible(layer);
    }
}

/*
 * One attempt on a claimed row (see the file comment). Expects the
 * exclusive gate and the claim. Returns CKR_OK with *available, or the
 * failure codes of provision_ensure.
 */
static CK_RV settle(engine_layer *layer, const row_key *k, storage_provision *p, bool *available)
{
    const storage_provision_info *info = storage_provision_info_get(p);
    bool visible, restarted = false;
    CK_RV rv;

    *available = false;
    rv = name_by(layer, info->serial);
    if (rv != CKR_OK) {
        return rv;
    }
    visible = token_visible(layer);
    *available = true;
    if (!visible && info->state >= STORAGE_PROV_INITIALISED) {
        cycle_to_see(layer, &visible, &restarted);
        if (!visible && !restarted) {
            engine_log(ENGINE_LOG_WARNING,
                       "layer \"%s\": token \"%s\" provisioned — visible after "
                       "restart (another user keeps module \"%s\" running)",
                       layer->def->id, layer->backend_label, layer->def->module_id);
            *available = false;
            return CKR_OK;
        }
        if (!visible) {
            engine_log(ENGINE_LOG_WARNING,
                       "layer \"%s\": provisioned token \"%s\" (serial %s) is gone from "
                       "module \"%s\"; making it again with the view's PINs",
                       layer->def->id, layer->backend_label, info->serial, layer->def->module_id);
        }
    }
    if (visible && info->state == STORAGE_PROV_READY) {
        return CKR_OK;
    }
    if (visible) {
        return repair(layer, k, p); /* C_InitToken ran, the rest did not */
    }
    return create(layer, k, p, false);
}

/* Reads the row again (another process moved it). */
static storage_rc reread(const storage_login *login, const engine_layer *layer,
                         storage_provision **p)
{
    storage_provision_free(*p);
    *p = NULL;
    return storage_provision_read(engine_lib.catalog, login, layer->def->id, p);
}

/*
 * Waits until the claim is ours or the row is ready (another process
 * finished). Returns CKR_OK with *won; CKR_DEVICE_ERROR after
 * CLAIM_WAIT_MS or on a catalog failure. Expects the shared gate (it is
 * not needed while sleeping, but keeping it is harmless: no backend is
 * called).
 */
static CK_RV wait_claim(const engine_layer *layer, const row_key *k, const storage_login *login,
                        storage_provision **p, bool *won)
{
    storage_rc src;

    for (long waited = 0;; waited += CLAIM_POLL_MS) {
        src = storage_provision_claim(engine_lib.catalog, k->token, k->view, k->layer, won);
        if (src != STORAGE_OK) {
            return storage_failed(layer, "claiming the provisioning", src);
        }
        if (*won) {
            break;
        }
        src = reread(login, layer, p);
        if (src != STORAGE_OK) {
            return storage_failed(layer, "reading the provisioning", src);
        }
        if (storage_provision_info_get(*p)->state == STORAGE_PROV_READY) {
            break;
        }
        if (waited >= CLAIM_WAIT_MS) {
            engine_log(ENGINE_LOG_ERROR,
                       "layer \"%s\": another process is still provisioning "
                       "token \"%s\"",
                       layer->def->id, layer->backend_label);
            return CKR_DEVICE_ERROR;
        }
        sleep_ms(CLAIM_POLL_MS);
    }
    if (*won) {
        src = reread(login, layer, p); /* the winner before us may have moved it */
        if (src != STORAGE_OK) {
            storage_provision_release(engine_lib.catalog, k->token, k->view, k->layer);
            *won = false;
            return storage_failed(layer, "reading the provisioning", src);
        }
    }
    return CKR_OK;
}

/* See backend.h. */
CK_RV provision_ensure(engine_token *token, engine_layer *layer, const storage_login *login,
                       bool *available)
{
    row_key k = {token->def->label, storage_login_view(login), layer->def->id};
    storage_provision *p = NULL;
    layers_module *module;
    unsigned depth;
    bool won = false;
    storage_rc src;
    CK_RV rv = CKR_DEVICE_ERROR;

    *available = false;
    if (layer->token == NULL || engine_lib.catalog == NULL) {
        goto out; /* module not loaded: logged at C_Initialize */
    }
    module = layers_token_module(layer->token);
    src = storage_provision_begin(engine_lib.catalog, login, layer->def->id,
                                  layers_module_path(module), layer->backend_label, &p);
    if (src != STORAGE_OK) {
        rv = storage_failed(layer, "starting the provisioning", src);
        goto out;
    }
    if (!named_by(layer, storage_provision_info_get(p)->serial)) {
        depth = gate_exclusive_begin(); /* once per process: the handle learns the serial */
        rv = name_by(layer, storage_provision_info_get(p)->serial);
        gate_exclusive_end(depth);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    if (storage_provision_info_get(p)->state == STORAGE_PROV_READY && token_visible(layer)) {
        *available = true; /* the everyday path: one catalog read, one slot look-up */
        rv = CKR_OK;
        goto out;
    }
    rv = wait_claim(layer, &k, login, &p, &won);
    if (rv != CKR_OK) {
        goto out;
    }
    depth = gate_exclusive_begin();
    rv = settle(layer, &k, p, available);
    gate_exclusive_end(depth);
    if (rv == CKR_OK && *available) {
        wait_note(token->slot_id); /* a slot event: the lazy token is ready (wait.c) */
    }
out:
    if (won) { /* advance dropped it on success; a failure leaves it to drop */
        storage_provision_release(engine_lib.catalog, k.token, k.view, k.layer);
    }
    storage_provision_free(p);
    return rv;
}

/* See backend.h. */
CK_RV provision_user_pin(const engine_token *token, const engine_layer *layer,
                         const storage_login *login, char *pin, size_t cap, size_t *len)
{
    storage_provision *p = NULL;
    const char *so, *user;
    size_t so_len, user_len;
    CK_RV rv = CKR_GENERAL_ERROR;

    (void)token;
    if (engine_lib.catalog == NULL ||
        storage_provision_read(engine_lib.catalog, login, layer->def->id, &p) != STORAGE_OK) {
        goto out;
    }
    rv = CKR_USER_PIN_NOT_INITIALIZED;
    if (storage_provision_info_get(p)->state != STORAGE_PROV_READY) {
        goto out;
    }
    storage_provision_pins(p, &so, &so_len, &user, &user_len);
    rv = CKR_GENERAL_ERROR;
    if (user_len > cap) {
        goto out;
    }
    memcpy(pin, user, user_len);
    *len = user_len;
    rv = CKR_OK;
out:
    storage_provision_free(p);
    return rv;
}
