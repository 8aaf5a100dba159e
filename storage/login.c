/*
 * login.c - login by PIN: one Argon2id run, the view its tag selects, and
 * the view's unwrapped layer credentials and wrapping key, held in
 * sodium_malloc'd memory until storage_login_free.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One sealed row as read from creds. */
typedef struct {
    char *layer;
    unsigned char nonce[SECRETS_NONCE_BYTES];
    unsigned char *blob;
    size_t len;
} cred_row;

struct login_ctx {
    int64_t token_id;
    const unsigned char *tag;
    const char *named; /* the view the caller names (NULL: whichever the tag selects) */
    size_t named_len;
    char *view;     /* malloc'd name of the matching view */
    cred_row *rows; /* its sealed credentials, in enrolment order */
    size_t n;
    storage_view_known_fn known; /* NULL: every enrolled view */
    void *known_ctx;
};

static void rows_free(cred_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        free(rows[i].layer);
        free(rows[i].blob);
    }
    free(rows);
}

/* Copies one creds row into r. */
static storage_rc row_copy(sqlite3_stmt *st, cred_row *r)
{
    const void *blob = sqlite3_column_blob(st, 2);
    int len = sqlite3_column_bytes(st, 2);

    if (sqlite3_column_bytes(st, 1) != (int)SECRETS_NONCE_BYTES || len < (int)SECRETS_MAC_BYTES) {
        return STORAGE_ERR_CRYPTO;
    }
    memcpy(r->nonce, sqlite3_column_blob(st, 1), SECRETS_NONCE_BYTES);
    r->layer = strdup((const char *)sqlite3_column_text(st, 0));
    r->blob = malloc((size_t)len);
    if (r->layer == NULL || r->blob == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    memcpy(r->blob, blob, (size_t)len);
    r->len = (size_t)len;
    return STORAGE_OK;
}

/* Reads the matching view and its sealed credentials in one snapshot. */
static storage_rc login_fetch_txn(storage_catalog *cat, void *ctx)
{
    struct login_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t view_id = 0;
    size_t cap = 0;
    int step;
    storage_rc rc = c->named != NULL
                        ? views_find_named_locked(cat, c->token_id, c->named, c->named_len, c->tag,
                                                  &view_id, &c->view)
                        : views_find_by_tag_locked(cat, c->token_id, c->tag, &view_id, &c->view);

    if (rc != STORAGE_OK) {
        goto out;
    }
    if (c->known != NULL && !c->known(c->view, c->known_ctx)) {
        rc = STORAGE_ERR_PIN_INCORRECT; /* no further read: a wrong PIN's work */
        goto out;
    }
    rc = catalog_prepare_locked(
        cat, "SELECT layer, nonce, sealed FROM creds WHERE view_id = ?1 ORDER BY position", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, view_id);
    while (rc == STORAGE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n == cap) {
            cap = cap > 0 ? cap * 2 : 8;
            cred_row *more = realloc(c->rows, cap * sizeof(*more));
            if (more == NULL) {
                rc = STORAGE_ERR_NOMEM;
                break;
            }
            c->rows = more;
        }
        memset(&c->rows[c->n], 0, sizeof(c->rows[c->n]));
        rc = row_copy(st, &c->rows[c->n]);
        c->n++;
    }
    if (rc == STORAGE_OK) {
        rc = catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Opens every sealed row into a new storage_login, which also keeps a copy
 * of the view's wrapping key (for the provisioned tokens' PINs). STORAGE_ERR_CRYPTO when
 * any row fails to open (tampered, or moved from another row). */
static storage_rc login_build(const secrets_keys *keys, const char *token, struct login_ctx *c,
                              storage_login **out)
{
    storage_rc rc = STORAGE_ERR_NOMEM;
    storage_login *login = calloc(1, sizeof(*login));
    size_t off = 0;

    if (login == NULL) {
        goto out;
    }
    for (size_t i = 0; i < c->n; i++) {
        login->secret_len += c->rows[i].len - SECRETS_MAC_BYTES;
    }
    login->secret = sodium_malloc(login->secret_len > 0 ? login->secret_len : 1);
    login->creds = calloc(c->n > 0 ? c->n : 1, sizeof(*login->creds));
    login->wrap = sodium_malloc(SECRETS_KEY_BYTES);
    login->token = strdup(token);
    if (login->secret == NULL || login->creds == NULL || login->wrap == NULL ||
        login->token == NULL) {
        goto out;
    }
    memcpy(login->wrap, keys->wrap, SECRETS_KEY_BYTES);
    memcpy(login->tag, keys->tag, SECRETS_TAG_BYTES);
    rc = STORAGE_OK;
    for (size_t i = 0; i < c->n && rc == STORAGE_OK; i++) {
        cred_row *r = &c->rows[i];
        rc = secrets_open(keys->wrap, PURPOSE_CRED, token, c->view, r->layer, r->nonce, r->blob,
                          r->len, login->secret + off);
        login->creds[i].layer = r->layer;
        login->creds[i].pin = (const char *)login->secret + off;
        login->creds[i].pin_len = r->len - SECRETS_MAC_BYTES;
        r->layer = NULL; /* now the login's */
        login->n = i + 1;
        off += r->len - SECRETS_MAC_BYTES;
    }
    login->view = c->view;
    c->view = NULL;
out:
    if (rc != STORAGE_OK) {
        storage_login_free(login);
        login = NULL;
    }
    *out = login;
    return rc;
}

/* Reads the token's KDF parameters; a token without enrolment gets the
 * dummy salt and interactive cost, so the work stays the same. */
static storage_rc kdf_params_read(storage_catalog *cat, kdf_params *params)
{
    storage_rc rc = catalog_read(cat, views_kdf_read_txn, params);

    if (rc == STORAGE_OK && !params->found) {
        memcpy(params->salt, secrets_dummy_salt(), SECRETS_SALT_BYTES);
        params->ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        params->mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
    return rc;
}

/* See storage.h. Exactly one Argon2id run per call, also for a token
 * without enrolment (fixed dummy salt, interactive cost) and for a wrong
 * PIN. STORAGE_OK and *out; STORAGE_ERR_PIN_INCORRECT; STORAGE_ERR_CRYPTO
 * when the view's sealed credentials do not open; STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. Does not touch the failure
 * counter: the caller decides what a failure costs. */
storage_rc storage_view_login(storage_catalog *cat, const char *token, const char *pin,
                              size_t pin_len, storage_login **out)
{
    return storage_view_login_as(cat, token, NULL, 0, pin, pin_len, out);
}

/* See storage.h. As storage_view_login, with the view lookup limited to
 * view when it is not NULL. */
storage_rc storage_view_login_as(storage_catalog *cat, const char *token, const char *view,
                                 size_t view_len, const char *pin, size_t pin_len,
                                 storage_login **out)
{
    return storage_view_login_known(cat, token, view, view_len, pin, pin_len, NULL, NULL, out);
}

/* See storage.h. */
storage_rc storage_view_login_known(storage_catalog *cat, const char *token, const char *view,
                                    size_t view_len, const char *pin, size_t pin_len,
                                    storage_view_known_fn known, void *ctx, storage_login **out)
{
    kdf_params params = {.token = token};
    struct login_ctx c = {.named = view, .named_len = view_len, .known = known, .known_ctx = ctx};
    secrets_keys *keys = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (out != NULL) {
        *out = NULL;
    }
    if (cat == NULL || token == NULL || (pin == NULL && pin_len > 0) || out == NULL) {
        goto out;
    }
    rc = kdf_params_read(cat, &params);
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = secrets_keys_derive(pin, pin_len, params.salt, params.ops, params.mem, &keys);
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = STORAGE_ERR_PIN_INCORRECT;
    if (!params.found) {
        goto out;
    }
    c.token_id = params.token_id;
    c.tag = keys->tag;
    rc = catalog_read(cat, login_fetch_txn, &c);
    if (rc == STORAGE_OK) {
        rc = login_build(keys, token, &c, out);
    }
out:
    rows_free(c.rows, c.n);
    free(c.view);
    secrets_keys_free(keys);
    return rc;
}

/* See storage.h. */
storage_rc storage_login_matches(storage_catalog *cat, const storage_login *login, const char *pin,
                                 size_t pin_len, bool *match)
{
    kdf_params params = {0};
    secrets_keys *keys = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (match != NULL) {
        *match = false;
    }
    if (cat == NULL || login == NULL || (pin == NULL && pin_len > 0) || match == NULL) {
        goto out;
    }
    params.token = login->token;
    rc = kdf_params_read(cat, &params);
    if (rc == STORAGE_OK) {
        rc = secrets_keys_derive(pin, pin_len, params.salt, params.ops, params.mem, &keys);
    }
    if (rc == STORAGE_OK) {
        *match = params.found && storage_equal(keys->tag, login->tag, SECRETS_TAG_BYTES);
    }
out:
    secrets_keys_free(keys);
    return rc;
}

const char *storage_login_view(const storage_login *login)
{
    return login != NULL ? login->view : NULL;
}

size_t storage_login_count(const storage_login *login)
{
    return login != NULL ? login->n : 0;
}

void storage_login_cred(const storage_login *login, size_t i, const char **layer, const char **pin,
                        size_t *pin_len)
{
    const storage_cred *c = login != NULL && i < login->n ? &login->creds[i] : NULL;

    if (layer != NULL) {
        *layer = c != NULL ? c->layer : NULL;
    }
    if (pin != NULL) {
        *pin = c != NULL ? c->pin : NULL;
    }
    if (pin_len != NULL) {
        *pin_len = c != NULL ? c->pin_len : 0;
    }
}

const storage_cred *storage_login_find(const storage_login *login, const char *layer)
{
    for (size_t i = 0; login != NULL && layer != NULL && i < login->n; i++) {
        if (strcmp(login->creds[i].layer, layer) == 0) {
            return &login->creds[i];
        }
    }
    return NULL;
}

/* Wipes and frees every unwrapped PIN with the rest of the login. */
void storage_login_free(storage_login *login)
{
    if (login == NULL) {
        return;
    }
    if (login->secret != NULL) {
        sodium_memzero(login->secret, login->secret_len > 0 ? login->secret_len : 1);
        sodium_free(login->secret);
    }
    for (size_t i = 0; login->creds != NULL && i < login->n; i++) {
        free((char *)login->creds[i].layer);
    }
    if (login->wrap != NULL) {
        sodium_memzero(login->wrap, SECRETS_KEY_BYTES);
        sodium_free(login->wrap);
    }
    free(login->creds);
    free(login->view);
    free(login->token);
    free(login);
}
