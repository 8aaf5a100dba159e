/*
 * slot.c - virtual slots, token information, mechanisms.
 *
 * One virtual slot per <token> of the policy, always present, with the
 * stable slot ID the catalog gave it. engine_lib does not change between
 * C_Initialize and C_Finalize, so these functions read it without a lock;
 * they call backends (token info, mechanisms) and never hold a library
 * lock while doing so.
 *
 * What the token shows is what its shown view shows: the logged-in view,
 * else the public view (session_token_view). The CKF_RNG and
 * CKF_WRITE_PROTECTED flags and the mechanisms come from that view's
 * layers only, so that before login nothing tells of another view's
 * layers (strata-pkcs11(8), BEFORE LOGIN). With public-view="none" the
 * token is write-protected before login (it takes no token object) and
 * its mechanisms are those of the first view's layers, where public
 * session objects and keyless operations go.
 *
 * Mechanisms: a virtual token offers the union of what the available
 * layers of its shown view offer. For a mechanism several layers know, C_GetMechanismInfo
 * OR-s their flags and widens the key sizes (the smallest minimum, the
 * largest maximum): the answer says what the token can do with some
 * layer, and an operation is forwarded to the layer of the key it uses,
 * which answers for its own limits. Only the layers whose mechanism list
 * holds a mechanism are asked about it: some backends complain on stderr
 * when asked about one they do not list (tpm2-pkcs11 through p11-kit:
 * "shouldn't be reached at sys_C_GetMechanismInfo").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---------------------------------------------------------------------
 * Slots
 * ------------------------------------------------------------------ */

/*
 * C_GetSlotList: every virtual slot (all have a token, so token_present
 * changes nothing), in ascending slot ID order. Returns CKR_OK;
 * CKR_ARGUMENTS_BAD (count NULL); CKR_BUFFER_TOO_SMALL with *count set and
 * nothing written when list is too short.
 */
CK_RV slot_get_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
    CK_ULONG n = engine_lib.n_tokens;

    (void)token_present;
    if (count == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (list == NULL) {
        *count = n;
        return CKR_OK;
    }
    if (*count < n) {
        *count = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SLOT_ID id = engine_lib.tokens[i].slot_id;
        CK_ULONG j = i;

        for (; j > 0 && list[j - 1] > id; j--) {
            list[j] = list[j - 1];
        }
        list[j] = id;
    }
    *count = n;
    return CKR_OK;
}

/* C_GetSlotInfo. Returns CKR_OK, CKR_ARGUMENTS_BAD, CKR_SLOT_ID_INVALID. */
CK_RV slot_get_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    engine_token *token;
    char text[80];

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    token = library_token(slot);
    if (token == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    memset(info, 0, sizeof(*info));
    snprintf(text, sizeof(text), "Strata virtual slot: %s", token->def->label);
    engine_pad(info->slotDescription, sizeof(info->slotDescription), text);
    engine_pad(info->manufacturerID, sizeof(info->manufacturerID), "Strata");
    info->flags = CKF_TOKEN_PRESENT;
    library_version(&info->hardwareVersion);
    library_version(&info->firmwareVersion);
    return CKR_OK;
}

/* ---------------------------------------------------------------------
 * Tokens
 * ------------------------------------------------------------------ */

/* A 16-character serial number that depends only on the token's label
 * (FNV-1a, 64 bits, in hex): stable across processes and catalogs. */
static void serial_of(const char *label, CK_UTF8CHAR serial[16])
{
    uint64_t hash = 0xcbf29ce484222325ull;
    char text[17];

    for (const unsigned char *p = (const unsigned char *)label; *p != '\0'; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ull;
    }
    snprintf(text, sizeof(text), "%016llx", (unsigned long long)hash);
    memcpy(serial, text, 16);
}

/* The layers of the view token shows now (see the file comment), top
 * first; *n is 0 when it has none. *sessions_only as session_view says.
 * Takes K. */
static engine_layer **shown_layers(engine_token *token, size_t *n, bool *sessions_only)
{
    session_view_state st;

    session_token_view(token, &st);
    *sessions_only = st.sessions_only;
    *n = st.view != NULL ? st.view->n_layers : 0;
    return st.view != NULL ? st.view->layers : NULL;
}

/* CKF_RNG when some available layer of the shown view has a generator,
 * CKF_WRITE_PROTECTED when none of them is writable (read-write and its
 * module loaded) or the view takes no token object (public-view="none"
 * before login). Calls backends: holds no lock. */
static CK_FLAGS layer_flags(engine_token *token)
{
    bool writable = false, rng = false, sessions_only = false;
    size_t n = 0;
    engine_layer **layers = shown_layers(token, &n, &sessions_only);
    CK_TOKEN_INFO info;

    for (size_t i = 0; i < n; i++) {
        engine_layer *layer = layers[i];

        if (layer->token == NULL) {
            continue;
        }
        if (!layer->read_only) {
            writable = true;
        }
        if (!rng && layers_token_info(layer->token, &info) == CKR_OK && (info.flags & CKF_RNG)) {
            rng = true;
        }
    }
    return (rng ? CKF_RNG : 0) | (writable && !sessions_only ? 0 : CKF_WRITE_PROTECTED);
}

/*
 * C_GetTokenInfo. Returns CKR_OK, CKR_ARGUMENTS_BAD, CKR_SLOT_ID_INVALID.
 * Calls backends (layer flags) and login.c; holds no lock.
 */
CK_RV slot_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    engine_token *token;
    const rules_token *def;
    CK_ULONG rw = 0;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    token = library_token(slot);
    if (token == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    def = token->def;
    memset(info, 0, sizeof(*info));
    engine_pad(info->label, sizeof(info->label), def->label);
    engine_pad(info->manufacturerID, sizeof(info->manufacturerID),
               def->manufacturer != NULL ? def->manufacturer : "Strata");
    engine_pad(info->model, sizeof(info->model), "Strata virtual");
    serial_of(def->label, info->serialNumber);
    gate_enter(); /* layer_flags asks the backends (backend/backend.h) */
    info->flags = CKF_TOKEN_INITIALIZED | login_token_flags(token) | layer_flags(token);
    gate_leave();
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulSessionCount = session_count(slot, &rw);
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulRwSessionCount = rw;
    info->ulMaxPinLen = def->max_pin_len;
    info->ulMinPinLen = def->min_pin_len;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    library_version(&info->hardwareVersion);
    library_version(&info->firmwareVersion);
    engine_pad(info->utcTime, sizeof(info->utcTime), "");
    return CKR_OK;
}

/*
 * C_InitToken. The virtual token is administered with the strata command
 * (strata init, enroll, provision): a client cannot re-initialise it, as
 * that would have to wipe every layer of every view. Returns
 * CKR_SLOT_ID_INVALID for an unknown slot, else CKR_FUNCTION_NOT_SUPPORTED.
 */
CK_RV slot_init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label)
{
    (void)pin;
    (void)pin_len;
    (void)label;
    if (library_token(slot) == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    return CKR_FUNCTION_NOT_SUPPORTED;
}

/* ---------------------------------------------------------------------
 * Mechanisms
 * ------------------------------------------------------------------ */

/* The backend function list and slot of an available layer; false when
 * the module failed to load or the token is absent. Calls the backend. */
static bool layer_backend(engine_layer *layer, CK_FUNCTION_LIST **funcs, CK_SLOT_ID *slot)
{
    if (layer->token == NULL || layers_token_slot(layer->token, slot) != CKR_OK) {
        return false;
    }
    *funcs = layers_module_functions(layers_token_module(layer->token));
    return *funcs != NULL;
}

/*
 * Appends the mechanisms of one layer to *all (realloc'd, *n entries).
 * An unavailable layer or a backend error adds nothing. Returns CKR_OK or
 * CKR_HOST_MEMORY. Calls the backend: holds no lock.
 */
static CK_RV append_layer_mechanisms(engine_layer *layer, CK_MECHANISM_TYPE **all, size_t *n)
{
    CK_FUNCTION_LIST *funcs;
    CK_MECHANISM_TYPE *grown;
    CK_SLOT_ID slot;
    CK_ULONG got = 0, room;
    CK_RV rv;

    if (!layer_backend(layer, &funcs, &slot)) {
        return CKR_OK;
    }
    do {
        if (funcs->C_GetMechanismList(slot, NULL, &got) != CKR_OK || got == 0) {
            return CKR_OK;
        }
        room = got;
        grown = realloc(*all, (*n + room) * sizeof(**all));
        if (grown == NULL) {
            return CKR_HOST_MEMORY;
        }
        *all = grown;
        got = room;
        rv = funcs->C_GetMechanismList(slot, *all + *n, &got);
    } while (rv == CKR_BUFFER_TOO_SMALL);
    if (rv == CKR_OK) {
        *n += got;
    }
    return CKR_OK;
}

/* See ops.h. Calls the backend: holds no lock. */
bool slot_layer_offers(engine_layer *layer, CK_MECHANISM_TYPE type)
{
    CK_MECHANISM_TYPE *list = NULL;
    size_t n = 0;
    bool found = false;

    if (type == CK_UNAVAILABLE_INFORMATION) {
        return true;
    }
    if (append_layer_mechanisms(layer, &list, &n) != CKR_OK) {
        free(list);
        return true; /* cannot tell: the backend will answer */
    }
    for (size_t i = 0; i < n && !found; i++) {
        found = list[i] == type;
    }
    free(list);
    return found;
}

/* Removes repeated mechanisms from all[0..n), keeping each at its first
 * place. Returns the new count. Quadratic, on a few hundred entries. */
static size_t unique_in_order(CK_MECHANISM_TYPE *all, size_t n)
{
    size_t unique = 0;

    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < unique && !seen; j++) {
            seen = all[j] == all[i];
        }
        if (!seen) {
            all[unique++] = all[i];
        }
    }
    return unique;
}

/*
 * C_GetMechanismList: the union of the mechanisms of the available layers
 * of the token's shown view, in first-seen order (top layer first, each backend's own order),
 * so a client that tries mechanisms in list order takes the same path as
 * on the top backend directly. Returns CKR_OK; CKR_ARGUMENTS_BAD (count NULL);
 * CKR_SLOT_ID_INVALID; CKR_BUFFER_TOO_SMALL with *count set and nothing
 * written; CKR_HOST_MEMORY. Calls backends: holds no lock.
 */
static CK_RV mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_MECHANISM_TYPE *all = NULL;
    engine_token *token;
    engine_layer **layers;
    size_t n = 0, unique = 0, n_layers = 0;
    bool sessions_only;
    CK_RV rv = CKR_ARGUMENTS_BAD;

    if (count == NULL) {
        goto out;
    }
    rv = CKR_SLOT_ID_INVALID;
    token = library_token(slot);
    if (token == NULL) {
        goto out;
    }
    layers = shown_layers(token, &n_layers, &sessions_only);
    for (size_t i = 0; i < n_layers; i++) {
        rv = append_layer_mechanisms(layers[i], &all, &n);
        if (rv != CKR_OK) {
            goto out;
        }
    }
    unique = unique_in_order(all, n);
    rv = CKR_OK;
    if (list != NULL && *count < unique) {
        rv = CKR_BUFFER_TOO_SMALL;
    } else if (list != NULL && unique > 0) {
        memcpy(list, all, unique * sizeof(*all));
    }
    *count = unique;
out:
    free(all);
    return rv;
}

/* The mechanism flags PKCS#11 3.0 added (CKF_MESSAGE_ENCRYPT, _DECRYPT,
 * _SIGN, _VERIFY and CKF_MULTI_MESSAGE: 0x2 to 0x20), reserved in 2.40.
 * A backend reaches Strata through a 2.40 function list, and Strata's
 * message functions are its own emulation, not the backend's, so these
 * bits are never passed on: the 2.40 list shows none, and the 3.0 list
 * sets those of its emulation (message.c: message_mechanism_info). */
#define MECHANISM_FLAGS_3_0 0x3eUL

/*
 * C_GetMechanismInfo: flags OR-ed and key sizes widened over the layers
 * that know type (see the file comment), without the 3.0-only flags a
 * backend may report. Returns CKR_OK;
 * CKR_ARGUMENTS_BAD; CKR_SLOT_ID_INVALID; CKR_MECHANISM_INVALID when no
 * available layer knows it. Calls backends: holds no lock.
 */
static CK_RV mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    CK_MECHANISM_INFO merged = {0}, one;
    CK_FUNCTION_LIST *funcs;
    engine_token *token;
    engine_layer **layers;
    CK_SLOT_ID layer_slot;
    size_t n_layers = 0;
    bool found = false, sessions_only;

    if (info == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    token = library_token(slot);
    if (token == NULL) {
        return CKR_SLOT_ID_INVALID;
    }
    layers = shown_layers(token, &n_layers, &sessions_only);
    for (size_t i = 0; i < n_layers; i++) {
        /* Some backends (SoftHSM2) fill only part of the structure. */
        memset(&one, 0, sizeof(one));
        if (!layer_backend(layers[i], &funcs, &layer_slot) || !slot_layer_offers(layers[i], type) ||
            funcs->C_GetMechanismInfo(layer_slot, type, &one) != CKR_OK) {
            continue;
        }
        if (!found) {
            merged = one;
            found = true;
            continue;
        }
        merged.flags |= one.flags;
        if (one.ulMinKeySize < merged.ulMinKeySize) {
            merged.ulMinKeySize = one.ulMinKeySize;
        }
        if (one.ulMaxKeySize > merged.ulMaxKeySize) {
            merged.ulMaxKeySize = one.ulMaxKeySize;
        }
    }
    if (!found) {
        return CKR_MECHANISM_INVALID;
    }
    merged.flags &= ~MECHANISM_FLAGS_3_0;
    *info = merged;
    return CKR_OK;
}

/* C_GetMechanismList and C_GetMechanismInfo ask the backends: they hold
 * the backend gate shared (backend/backend.h) so no module is cycled under
 * them. */
CK_RV slot_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_RV rv;

    gate_enter();
    rv = mechanism_list(slot, list, count);
    gate_leave();
    return rv;
}

CK_RV slot_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
    CK_RV rv;

    gate_enter();
    rv = mechanism_info(slot, type, info);
    gate_leave();
    return rv;
}
