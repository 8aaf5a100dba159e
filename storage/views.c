/*
 * views.c - enrolment of views, login by PIN, failed-login counters.
 *
 * Argon2id runs outside the catalog's lock (it takes tens of milliseconds
 * at the interactive cost), so threads enrolling or logging in run their
 * derivations in parallel; only the reads and the write transaction are
 * serialised. The salt a derivation used is checked again inside the write
 * transaction: when another thread or process created the token's salt
 * meanwhile, the enrolment derives once more with the stored one.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PURPOSE_CRED    "cred" /* binding purpose of a layer credential */
#define ENROLL_ATTEMPTS 3
#define VIEW_NAME_MAX   (sizeof(((storage_view_info *)0)->view) - 1)

struct storage_login {
    char *view;            /* view name (malloc) */
    size_t n;              /* number of credentials */
    storage_cred *creds;   /* layer (malloc), pin -> into secret */
    unsigned char *secret; /* sodium_malloc'd: every unwrapped PIN */
    size_t secret_len;
};

/* A token's Argon2id parameters as the catalog holds them. */
typedef struct {
    const char *token;
    bool found; /* the token has a salt (an enrolment happened) */
    unsigned char salt[SECRETS_SALT_BYTES];
    unsigned long long ops;
    size_t mem;
    int64_t token_id;
} kdf_params;

/* Reads token's KDF parameters into ctx (a kdf_params); found = false when
 * the token or its salt does not exist. */
static storage_rc kdf_read_txn(storage_catalog *cat, void *ctx)
{
    kdf_params *p = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "SELECT id, kdf_salt, kdf_ops, kdf_mem FROM tokens WHERE label = ?1", &st);
    int step;

    p->found = false;
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, p->token, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    rc = step == SQLITE_ROW || step == SQLITE_DONE ? STORAGE_OK : catalog_rc(step);
    if (step != SQLITE_ROW) {
        goto out;
    }
    p->token_id = sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 1) == SQLITE_BLOB &&
        sqlite3_column_bytes(st, 1) == (int)SECRETS_SALT_BYTES) {
        memcpy(p->salt, sqlite3_column_blob(st, 1), SECRETS_SALT_BYTES);
        p->ops = (unsigned long long)sqlite3_column_int64(st, 2);
        p->mem = (size_t)sqlite3_column_int64(st, 3);
        p->found = true;
    } else if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
        rc = STORAGE_ERR_NOT_CATALOG; /* a salt of the wrong shape */
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* "token/view" for audit rows (malloc'd), or NULL. */
static char *subject_of(const char *token, const char *view)
{
    char *s = NULL;

    if (view == NULL) {
        return strdup(token);
    }
    return asprintf(&s, "%s/%s", token, view) < 0 ? NULL : s;
}

/* ---------------------------------------------------------------------
 * Enrolment
 * ------------------------------------------------------------------ */

typedef struct {
    unsigned char nonce[SECRETS_NONCE_BYTES];
    unsigned char *blob; /* sealed credential (malloc; not secret) */
    size_t len;
} sealed_cred;

struct enroll_ctx {
    const char *token, *view;
    const kdf_params *kdf;    /* the parameters the keys were derived with */
    const unsigned char *tag; /* the PIN's view tag */
    const storage_cred *creds;
    const sealed_cred *sealed;
    size_t n;
    const char *subject; /* for the audit row */
    bool stale;          /* the stored salt differs from kdf's */
};

/* Records the token's KDF parameters, or checks that the stored ones are
 * those the keys were derived with (stale = true and STORAGE_ERR_BUSY if
 * not). */
static storage_rc enroll_kdf_locked(storage_catalog *cat, struct enroll_ctx *c, int64_t token_id)
{
    kdf_params now = {.token = c->token};
    sqlite3_stmt *st = NULL;
    storage_rc rc = kdf_read_txn(cat, &now);

    if (rc != STORAGE_OK) {
        return rc;
    }
    if (now.found) {
        if (memcmp(now.salt, c->kdf->salt, SECRETS_SALT_BYTES) != 0 || now.ops != c->kdf->ops ||
            now.mem != c->kdf->mem) {
            c->stale = true;
            return STORAGE_ERR_BUSY;
        }
        return STORAGE_OK;
    }
    rc = catalog_prepare_locked(
        cat, "UPDATE tokens SET kdf_salt = ?1, kdf_ops = ?2, kdf_mem = ?3 WHERE id = ?4", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_blob(st, 1, c->kdf->salt, SECRETS_SALT_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)c->kdf->ops);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)c->kdf->mem);
    sqlite3_bind_int64(st, 4, token_id);
    rc = catalog_exec_stmt_locked(st);
out:
    sqlite3_finalize(st);
    return rc;
}

/* STORAGE_ERR_EXISTS when the tag already selects another view of the
 * token. */
static storage_rc enroll_tag_free_locked(storage_catalog *cat, struct enroll_ctx *c,
                                         int64_t token_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc =
        catalog_prepare_locked(cat, "SELECT name FROM views WHERE token_id = ?1 AND tag = ?2", &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_blob(st, 2, c->tag, SECRETS_TAG_BYTES, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        rc = name != NULL && strcmp(name, c->view) == 0 ? STORAGE_OK : STORAGE_ERR_EXISTS;
    } else {
        rc = catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Inserts or updates the view row (keeping its id) and returns its id. */
static storage_rc enroll_view_locked(storage_catalog *cat, struct enroll_ctx *c, int64_t token_id,
                                     int64_t *view_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat,
        "INSERT INTO views (token_id, name, tag, enrolled_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (token_id, name) DO UPDATE SET tag = excluded.tag,"
        " enrolled_at = excluded.enrolled_at",
        &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, c->tag, SECRETS_TAG_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, catalog_now());
    rc = catalog_exec_stmt_locked(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat, "SELECT id FROM views WHERE token_id = ?1 AND name = ?2", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_ROW ? STORAGE_OK : STORAGE_ERR_INTERNAL;
    *view_id = sqlite3_column_int64(st, 0);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Replaces the view's credentials with the sealed ones. */
static storage_rc enroll_creds_locked(storage_catalog *cat, struct enroll_ctx *c, int64_t view_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, "DELETE FROM creds WHERE view_id = ?1", &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, view_id);
    rc = catalog_exec_stmt_locked(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                "INSERT INTO creds (view_id, layer, position, nonce, sealed)"
                                " VALUES (?1, ?2, ?3, ?4, ?5)",
                                &st);
    for (size_t i = 0; i < c->n && rc == STORAGE_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, view_id);
        sqlite3_bind_text(st, 2, c->creds[i].layer, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        sqlite3_bind_blob(st, 4, c->sealed[i].nonce, SECRETS_NONCE_BYTES, SQLITE_STATIC);
        sqlite3_bind_blob(st, 5, c->sealed[i].blob, (int)c->sealed[i].len, SQLITE_STATIC);
        rc = catalog_exec_stmt_locked(st);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* The enrolment transaction (see storage_view_enroll). */
static storage_rc enroll_txn(storage_catalog *cat, void *ctx)
{
    struct enroll_ctx *c = ctx;
    int64_t token_id = 0, view_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->token, &token_id);

    if (rc == STORAGE_OK) {
        rc = enroll_kdf_locked(cat, c, token_id);
    }
    if (rc == STORAGE_OK) {
        rc = enroll_tag_free_locked(cat, c, token_id);
    }
    if (rc == STORAGE_OK) {
        rc = enroll_view_locked(cat, c, token_id, &view_id);
    }
    if (rc == STORAGE_OK) {
        rc = enroll_creds_locked(cat, c, view_id);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, "enroll", c->subject, "ok");
    }
    return rc;
}

static void sealed_free(sealed_cred *sealed, size_t n)
{
    for (size_t i = 0; sealed != NULL && i < n; i++) {
        free(sealed[i].blob);
    }
    free(sealed);
}

/* Seals each credential under keys' wrap, bound to (token, view, layer). */
static storage_rc seal_creds(const secrets_keys *keys, const char *token, const char *view,
                             const storage_cred *creds, size_t n, sealed_cred **out)
{
    storage_rc rc = STORAGE_ERR_NOMEM;
    sealed_cred *sealed = calloc(n > 0 ? n : 1, sizeof(*sealed));

    if (sealed == NULL) {
        goto out;
    }
    rc = STORAGE_OK;
    for (size_t i = 0; i < n && rc == STORAGE_OK; i++) {
        sealed[i].len = creds[i].pin_len + SECRETS_MAC_BYTES;
        sealed[i].blob = malloc(sealed[i].len);
        rc = sealed[i].blob == NULL
                 ? STORAGE_ERR_NOMEM
                 : secrets_seal(keys->wrap, PURPOSE_CRED, token, view, creds[i].layer, creds[i].pin,
                                creds[i].pin_len, sealed[i].nonce, sealed[i].blob);
    }
out:
    if (rc != STORAGE_OK) {
        sealed_free(sealed, n);
        sealed = NULL;
    }
    *out = sealed;
    return rc;
}

/* Checks storage_view_enroll's arguments: names present, view short enough
 * for storage_view_info, a non-empty PIN, distinct layers. */
static bool enroll_args_ok(const char *token, const char *view, const char *pin, size_t pin_len,
                           const storage_cred *creds, size_t n_creds)
{
    if (token == NULL || token[0] == '\0' || view == NULL || view[0] == '\0' ||
        strlen(view) > VIEW_NAME_MAX || pin == NULL || pin_len == 0 ||
        (creds == NULL && n_creds > 0)) {
        return false;
    }
    for (size_t i = 0; i < n_creds; i++) {
        if (creds[i].layer == NULL || creds[i].layer[0] == '\0' ||
            (creds[i].pin == NULL && creds[i].pin_len > 0)) {
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(creds[i].layer, creds[j].layer) == 0) {
                return false;
            }
        }
    }
    return true;
}

/* One enrolment attempt: reads (or creates) the token's KDF parameters,
 * derives, seals and writes. *stale when the salt changed under us. */
static storage_rc enroll_once(storage_catalog *cat, struct enroll_ctx *c, const char *pin,
                              size_t pin_len, const storage_kdf *kdf)
{
    kdf_params params = {.token = c->token};
    secrets_keys *keys = NULL;
    sealed_cred *sealed = NULL;
    storage_rc rc = catalog_read(cat, kdf_read_txn, &params);

    if (rc != STORAGE_OK) {
        goto out;
    }
    if (!params.found) {
        rc = secrets_kdf_resolve(kdf, &params.ops, &params.mem);
        if (rc != STORAGE_OK) {
            goto out;
        }
        secrets_salt_new(params.salt);
    }
    rc = secrets_keys_derive(pin, pin_len, params.salt, params.ops, params.mem, &keys);
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = seal_creds(keys, c->token, c->view, c->creds, c->n, &sealed);
    if (rc != STORAGE_OK) {
        goto out;
    }
    c->kdf = &params;
    c->tag = keys->tag;
    c->sealed = sealed;
    c->stale = false;
    rc = catalog_write(cat, enroll_txn, c);
out:
    c->kdf = NULL;
    c->tag = NULL;
    c->sealed = NULL;
    sealed_free(sealed, c->n);
    secrets_keys_free(keys);
    return rc;
}

/* See storage.h. STORAGE_OK; STORAGE_ERR_ARGS (bad names, empty PIN, a
 * view name over 127 bytes, a layer twice, a cost outside Argon2id's
 * limits); STORAGE_ERR_READ_ONLY; STORAGE_ERR_EXISTS (the PIN selects
 * another view; audited as refused); STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY.
 * Takes the catalog lock only around reads and the write transaction. */
storage_rc storage_view_enroll(storage_catalog *cat, const char *token, const char *view,
                               const char *pin, size_t pin_len, const storage_cred *creds,
                               size_t n_creds, const storage_kdf *kdf)
{
    struct enroll_ctx c = {.token = token, .view = view, .creds = creds, .n = n_creds};
    storage_rc rc = STORAGE_ERR_ARGS;
    char *subject = NULL;

    if (cat == NULL || !enroll_args_ok(token, view, pin, pin_len, creds, n_creds)) {
        goto out;
    }
    rc = STORAGE_ERR_READ_ONLY;
    if (cat->read_only) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    subject = subject_of(token, view);
    if (subject == NULL) {
        goto out;
    }
    c.subject = subject;
    for (int attempt = 0; attempt < ENROLL_ATTEMPTS; attempt++) {
        rc = enroll_once(cat, &c, pin, pin_len, kdf);
        if (!c.stale) {
            break;
        }
    }
    if (rc == STORAGE_ERR_EXISTS) {
        (void)storage_audit(cat, "enroll", subject, "refused: the PIN selects another view");
    }
out:
    free(subject);
    return rc;
}

/* ---------------------------------------------------------------------
 * Removal
 * ------------------------------------------------------------------ */

struct remove_ctx {
    const char *token, *view, *subject;
};

static storage_rc remove_txn(storage_catalog *cat, void *ctx)
{
    struct remove_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat, "DELETE FROM views WHERE token_id = ?1 AND name = ?2", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK && sqlite3_changes(cat->db) == 0) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, "remove", c->subject, "ok");
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. The view's credentials go with it; its whiteouts and
 * provisioned tokens stay (they belong to the view's name, not to one
 * enrolment). STORAGE_OK, STORAGE_ERR_NOT_FOUND, STORAGE_ERR_READ_ONLY,
 * STORAGE_ERR_ARGS, or the write's failure. */
storage_rc storage_view_remove(storage_catalog *cat, const char *token, const char *view)
{
    struct remove_ctx c = {token, view, NULL};
    storage_rc rc;

    if (cat == NULL || token == NULL || view == NULL) {
        return STORAGE_ERR_ARGS;
    }
    c.subject = subject_of(token, view);
    if (c.subject == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    rc = catalog_write(cat, remove_txn, &c);
    free((char *)c.subject);
    return rc;
}

/* ---------------------------------------------------------------------
 * Login
 * ------------------------------------------------------------------ */

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
    char *view;     /* malloc'd name of the matching view */
    cred_row *rows; /* its sealed credentials, in enrolment order */
    size_t n;
};

static void rows_free(cred_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        free(rows[i].layer);
        free(rows[i].blob);
    }
    free(rows);
}

/* Finds the view whose tag matches; STORAGE_ERR_PIN_INCORRECT if none. */
static storage_rc login_view_locked(storage_catalog *cat, struct login_ctx *c, int64_t *view_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "SELECT id, name, tag FROM views WHERE token_id = ?1 AND tag = ?2", &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, c->token_id);
    sqlite3_bind_blob(st, 2, c->tag, SECRETS_TAG_BYTES, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? STORAGE_ERR_PIN_INCORRECT : catalog_rc(step);
        goto out;
    }
    rc = STORAGE_ERR_PIN_INCORRECT;
    if (sqlite3_column_bytes(st, 2) != (int)SECRETS_TAG_BYTES ||
        !storage_equal(sqlite3_column_blob(st, 2), c->tag, SECRETS_TAG_BYTES)) {
        goto out;
    }
    *view_id = sqlite3_column_int64(st, 0);
    c->view = strdup((const char *)sqlite3_column_text(st, 1));
    rc = c->view != NULL ? STORAGE_OK : STORAGE_ERR_NOMEM;
out:
    sqlite3_finalize(st);
    return rc;
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
    storage_rc rc = login_view_locked(cat, c, &view_id);

    if (rc != STORAGE_OK) {
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

/* Opens every sealed row into a new storage_login. STORAGE_ERR_CRYPTO when
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
    if (login->secret == NULL || login->creds == NULL) {
        goto out;
    }
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

/* See storage.h. Exactly one Argon2id run per call, also for a token
 * without enrolment (fixed dummy salt, interactive cost) and for a wrong
 * PIN. STORAGE_OK and *out; STORAGE_ERR_PIN_INCORRECT; STORAGE_ERR_CRYPTO
 * when the view's sealed credentials do not open; STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. Does not touch the failure
 * counter: the caller decides what a failure costs. */
storage_rc storage_view_login(storage_catalog *cat, const char *token, const char *pin,
                              size_t pin_len, storage_login **out)
{
    kdf_params params = {.token = token};
    struct login_ctx c = {0};
    secrets_keys *keys = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (out != NULL) {
        *out = NULL;
    }
    if (cat == NULL || token == NULL || (pin == NULL && pin_len > 0) || out == NULL) {
        goto out;
    }
    rc = catalog_read(cat, kdf_read_txn, &params);
    if (rc != STORAGE_OK) {
        goto out;
    }
    if (!params.found) {
        memcpy(params.salt, secrets_dummy_salt(), SECRETS_SALT_BYTES);
        params.ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        params.mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
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
    free(login->creds);
    free(login->view);
    free(login);
}

/* ---------------------------------------------------------------------
 * Listing
 * ------------------------------------------------------------------ */

struct list_ctx {
    const char *token;
    storage_view_info *infos;
    size_t n;
};

static storage_rc list_txn(storage_catalog *cat, void *ctx)
{
    struct list_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int step = SQLITE_DONE;
    storage_rc rc = catalog_prepare_locked(
        cat,
        "SELECT v.name, (SELECT count(*) FROM creds c WHERE c.view_id = v.id)"
        " FROM views v JOIN tokens t ON t.id = v.token_id WHERE t.label = ?1 ORDER BY v.name",
        &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n == cap) {
            cap = cap > 0 ? cap * 2 : 8;
            storage_view_info *more = realloc(c->infos, cap * sizeof(*more));
            if (more == NULL) {
                rc = STORAGE_ERR_NOMEM;
                goto out;
            }
            c->infos = more;
        }
        memset(&c->infos[c->n], 0, sizeof(c->infos[c->n]));
        snprintf(c->infos[c->n].view, sizeof(c->infos[c->n].view), "%s",
                 (const char *)sqlite3_column_text(st, 0));
        c->infos[c->n].n_creds = (unsigned)sqlite3_column_int64(st, 1);
        c->n++;
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. fn runs after the read, with no storage lock held, so it
 * may call back into storage. STORAGE_OK (also for an unknown token: no
 * call), STORAGE_ERR_ARGS, STORAGE_ERR_NOMEM, or the read's failure. */
storage_rc storage_views_list(storage_catalog *cat, const char *token,
                              void (*fn)(void *ctx, const storage_view_info *info), void *ctx)
{
    struct list_ctx c = {token, NULL, 0};
    storage_rc rc;

    if (cat == NULL || token == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, list_txn, &c);
    for (size_t i = 0; rc == STORAGE_OK && i < c.n; i++) {
        fn(ctx, &c.infos[i]);
    }
    free(c.infos);
    return rc;
}

/* ---------------------------------------------------------------------
 * Failed-login counters
 * ------------------------------------------------------------------ */

struct failures_ctx {
    const char *token;
    unsigned count;
    const char *subject;
};

/* Reads the counter; 0 for a token the catalog does not know. */
static storage_rc failures_read_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc =
        catalog_prepare_locked(cat, "SELECT failed_logins FROM tokens WHERE label = ?1", &st);
    int step;

    c->count = 0;
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        c->count = (unsigned)sqlite3_column_int64(st, 0);
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Sets the counter to value (+1 when value < 0) and reads it back. */
static storage_rc failures_set_locked(storage_catalog *cat, struct failures_ctx *c, int value)
{
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                value < 0 ? "UPDATE tokens SET failed_logins = failed_logins + 1"
                                            " WHERE id = ?1"
                                          : "UPDATE tokens SET failed_logins = 0 WHERE id = ?1",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK) {
        rc = failures_read_txn(cat, c);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static storage_rc failed_txn(storage_catalog *cat, void *ctx)
{
    return failures_set_locked(cat, ctx, -1);
}

/* Clears a non-zero counter and audits it, with the number cleared. */
static storage_rc reset_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    char outcome[64];
    storage_rc rc = failures_read_txn(cat, c);
    unsigned was = c->count;

    if (rc != STORAGE_OK || was == 0) {
        return rc;
    }
    rc = failures_set_locked(cat, c, 0);
    if (rc == STORAGE_OK) {
        snprintf(outcome, sizeof(outcome), "ok (%u failed logins cleared)", was);
        rc = catalog_audit_locked(cat, "reset-failures", c->subject, outcome);
    }
    return rc;
}

storage_rc storage_login_failures(storage_catalog *cat, const char *token, unsigned *count)
{
    struct failures_ctx c = {token, 0, NULL};
    storage_rc rc;

    if (cat == NULL || token == NULL || count == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, failures_read_txn, &c);
    if (rc == STORAGE_OK) {
        *count = c.count;
    }
    return rc;
}

/* See storage.h. STORAGE_ERR_READ_ONLY on a read-only catalog. */
storage_rc storage_login_failed(storage_catalog *cat, const char *token, unsigned *count)
{
    struct failures_ctx c = {token, 0, NULL};
    storage_rc rc;

    if (cat == NULL || token == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_write(cat, failed_txn, &c);
    if (rc == STORAGE_OK && count != NULL) {
        *count = c.count;
    }
    return rc;
}

/* See storage.h. A counter already at zero costs one read and no write (so
 * a successful login may call this every time, also on a read-only
 * catalog); clearing a non-zero one writes an audit row. */
storage_rc storage_login_reset(storage_catalog *cat, const char *token)
{
    struct failures_ctx c = {token, 0, token};
    storage_rc rc;

    if (cat == NULL || token == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, failures_read_txn, &c);
    if (rc != STORAGE_OK || c.count == 0) {
        return rc;
    }
    return catalog_write(cat, reset_txn, &c);
}
