/*
 * login_layers.c - the backend logins of a view's layers, for login.c:
 * each layer's enrolled credential presented to its backend token (a
 * lazy layer's generated PIN, after provisioning), a refused credential
 * marked stale so that no process presents it again, the layers left out
 * recorded for strata status; and the replay of a layer's login after its
 * module was cycled, which the backend floor calls through the hook
 * C_Initialize registers (backend/backend.h). Everything here expects
 * the login lock L but login_replay, which takes it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ops.h"

/* See ops.h. */
void login_layer_set_failed(engine_layer *layer, bool failed)
{
    __atomic_store_n(&layer->login_failed, failed, __ATOMIC_RELEASE);
}

/* The backend's C_Login on layer, under its state lock (backend.c). A
 * token that requires no login (p11-kit's trust module: C_Login answers
 * CKR_USER_TYPE_INVALID there) is not logged in to, whatever credential
 * an older enrolment holds for it: CKR_OK, its objects are public. */
static CK_RV layer_login(engine_layer *layer, const char *pin, size_t len)
{
    bool required = true;
    CK_RV rv;

    if (layers_token_login_required(layer->token, &required) == CKR_OK && !required) {
        return CKR_OK;
    }
    backend_state_write(layer);
    rv = layers_token_login(layer->token, CKU_USER, pin, len);
    backend_state_done(layer);
    return rv;
}

/* Logs layer in to its backend with the user PIN generated when it was
 * provisioned. Returns layers_token_login's code, CKR_HOST_MEMORY, or
 * provision_user_pin's. Expects L. */
static CK_RV login_lazy(engine_token *token, engine_layer *layer, const storage_login *login)
{
    char *pin = sodium_malloc(STORAGE_GENERATED_PIN_LEN);
    size_t len = 0;
    CK_RV rv = CKR_HOST_MEMORY;

    if (pin == NULL) {
        return rv;
    }
    rv = provision_user_pin(token, layer, login, pin, STORAGE_GENERATED_PIN_LEN, &len);
    if (rv == CKR_OK) {
        rv = layer_login(layer, pin, len);
    }
    sodium_memzero(pin, STORAGE_GENERATED_PIN_LEN);
    sodium_free(pin);
    return rv;
}

/* See ops.h. */
bool login_layer_is_lazy(const engine_layer *layer)
{
    return layer->def->provision == RULES_PROVISION_LAZY;
}

/* True for a backend answer that says the credential itself is no longer
 * good: presenting it again can only cost another wrong try. */
static bool refuses_credential(CK_RV rv)
{
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_EXPIRED || rv == CKR_PIN_LOCKED;
}

#define STALE_REASON "stale credential"

/*
 * Presents the view's enrolled credential to layer's backend under the
 * credential's lock (storage/creds.c), unless the catalog marks it stale;
 * a refusal marks it stale before the lock is let go, so no process
 * presents it again until it is re-enrolled: a PIN changed behind
 * Strata's back costs the backend one wrong try. *stale is set when the
 * credential was not presented or was just refused. Returns CKR_OK or the
 * backend's code (CKR_PIN_INCORRECT, untried, for a stale one). Expects L.
 */
static CK_RV present_cred(engine_token *token, engine_layer *layer, const char *view,
                          const storage_cred *cred, bool *stale)
{
    const char *label = token->def->label, *id = layer->def->id;
    storage_cred_guard guard;
    storage_rc src = storage_cred_lock(engine_lib.catalog, label, view, id, &guard);
    bool marked = false;
    CK_RV rv = CKR_PIN_INCORRECT;

    if (src != STORAGE_OK && src != STORAGE_ERR_READ_ONLY) {
        engine_log(ENGINE_LOG_WARNING, "token \"%s\": layer \"%s\": credential lock: %s", label, id,
                   storage_strerror(src));
    }
    *stale =
        storage_cred_is_stale(engine_lib.catalog, label, view, id, &marked) == STORAGE_OK && marked;
    if (*stale) {
        engine_log(ENGINE_LOG_WARNING,
                   "token \"%s\": view \"%s\": layer \"%s\" left out: its credential is stale "
                   "(run 'strata enroll --token %s --view %s --layer %s')",
                   label, view, id, label, view, id);
        goto out;
    }
    rv = layer_login(layer, cred->pin, cred->pin_len);
    if (!refuses_credential(rv)) {
        goto out;
    }
    *stale = true;
    src = storage_cred_mark_stale(engine_lib.catalog, label, view, id, layers_rv_name(rv));
    engine_log(ENGINE_LOG_WARNING,
               "token \"%s\": view \"%s\": layer \"%s\" (\"%s\"): the backend refused its "
               "credential (%s); %s until 'strata enroll --token %s --view %s --layer %s'",
               label, view, id, layer->label, layers_rv_name(rv),
               src == STORAGE_OK ? "marked stale, it is not presented again"
                                 : "it could not be marked stale, it is left out",
               label, view, id);
out:
    storage_cred_unlock(&guard);
    return rv;
}

/* Logs in to one layer of the view with its credential (a lazy layer
 * with its generated PIN); a failure is logged and marks the layer down
 * for this login. Returns why the layer is left out (a static text), or
 * NULL when it is not. Expects L. */
static const char *login_layer(engine_token *token, engine_layer *layer, const storage_login *login)
{
    const storage_cred *cred = storage_login_find(login, layer->def->id);
    bool stale = false;
    CK_RV rv;

    if (layer->token == NULL) {
        login_layer_set_failed(layer, true);
        return "module not loaded";
    }
    login_layer_set_failed(layer, false);
    if (login_layer_is_lazy(layer)) {
        rv = login_lazy(token, layer, login);
        if (rv == CKR_USER_PIN_NOT_INITIALIZED) {
            /* This process's backend loaded the token while another
             * process was still provisioning it: reconnect and retry. */
            unsigned depth = gate_exclusive_begin();
            reconnect_cycle_inexclusive(layers_token_module(layer->token), NULL);
            gate_exclusive_end(depth);
            rv = login_lazy(token, layer, login);
        }
    } else if (cred == NULL) {
        return NULL; /* no credential enrolled: the layer shows its public objects */
    } else {
        rv = present_cred(token, layer, storage_login_view(login), cred, &stale);
    }
    if (rv == CKR_OK) {
        return NULL;
    }
    if (!stale) {
        engine_log(ENGINE_LOG_WARNING,
                   "token \"%s\": layer \"%s\" (\"%s\"): backend login failed: %s; the layer is "
                   "left out until logout",
                   token->def->label, layer->def->id, layer->label, layers_rv_name(rv));
    }
    login_layer_set_failed(layer, true);
    return stale ? STALE_REASON : layers_rv_name(rv);
}

/* Records in the catalog which layers of view this login left out (n_left
 * of left), for strata status. A read-only catalog keeps nothing. */
static void record_left_out(engine_token *token, const engine_view *view,
                            const storage_left_out *left, size_t n_left)
{
    storage_rc src =
        storage_login_left_out(engine_lib.catalog, token->def->label, view->def->id, left, n_left);

    if (src != STORAGE_OK && src != STORAGE_ERR_READ_ONLY) {
        engine_log(ENGINE_LOG_WARNING, "token \"%s\": cannot record the layers left out: %s",
                   token->def->label, storage_strerror(src));
    }
}

/* Logs in to each layer of view and records those left out. Expects L. */
void login_layers(engine_token *token, engine_view *view, const storage_login *login)
{
    storage_left_out *left = calloc(view->n_layers + 1, sizeof(*left));
    size_t n_left = 0;

    for (size_t i = 0; i < view->n_layers; i++) {
        engine_layer *layer = view->layers[i];
        const char *why = "token not available";

        if (!login_layer_is_lazy(layer) || backend_layer_usable(layer)) {
            why = login_layer(token, layer, login);
        }
        if (why != NULL && left != NULL) {
            snprintf(left[n_left].layer, sizeof(left[n_left].layer), "%s", layer->def->id);
            snprintf(left[n_left].reason, sizeof(left[n_left].reason), "%s", why);
            n_left++;
        }
    }
    if (left != NULL) {
        record_left_out(token, view, left, n_left);
    }
    free(left);
}

/*
 * Makes sure every lazy layer of view exists (provision.c). Expects L and
 * a shared gate hold. Returns CKR_OK (a layer that stays invisible is
 * marked down), CKR_DEVICE_MEMORY, CKR_DEVICE_ERROR or CKR_HOST_MEMORY.
 */
CK_RV login_provision_lazy(engine_token *token, engine_view *view, const storage_login *login)
{
    bool available = true;
    CK_RV rv;

    for (size_t i = 0; i < view->n_layers; i++) {
        engine_layer *layer = view->layers[i];
        if (!login_layer_is_lazy(layer) || layer->token == NULL) {
            continue;
        }
        rv = provision_ensure(token, layer, login, &available);
        if (rv != CKR_OK) {
            return rv;
        }
        login_layer_set_failed(layer, !available);
    }
    return CKR_OK;
}

/* See ops.h. Takes L (dropping the shared gate hold while waiting). */
void login_replay(engine_token *token, engine_layer *layer)
{
    const storage_cred *cred;
    bool stale = false;
    CK_RV rv;

    if (token->login_lock == NULL || layer->token == NULL) {
        return;
    }
    gate_lock_login(token);
    if (token->login != NULL && backend_view_has(token->current, layer) &&
        backend_layer_usable(layer) && !layers_token_logged_in(layer->token)) {
        cred = storage_login_find(token->login, layer->def->id);
        if (login_layer_is_lazy(layer)) {
            rv = login_lazy(token, layer, token->login);
        } else {
            rv = cred != NULL
                     ? present_cred(token, layer, storage_login_view(token->login), cred, &stale)
                     : CKR_OK;
        }
        if (rv != CKR_OK) {
            engine_log(ENGINE_LOG_WARNING, "layer \"%s\": replayed login failed: %s",
                       layer->def->id, layers_rv_name(rv));
            login_layer_set_failed(layer, true);
        }
    }
    engine_mutex_unlock(token->login_lock);
}
