/*
 * passwd.c - changing a view's PIN: re-sealing every sealed value of the
 * view under the key of the new PIN in one transaction.
 *
 * The two Argon2id runs (old PIN, new PIN) happen before the transaction,
 * outside the catalog's lock; the transaction then finds the view by the
 * old tag, checks that the new tag selects no other view, opens each
 * sealed value with the old wrapping key and seals it again with the new
 * one (fresh nonce, same binding to purpose, token, view and layer), and
 * swaps the tag last. Opened plaintext lives in sodium_malloc'd memory for
 * the length of one row. The token's salt never changes once set, so the
 * keys derived before the transaction stay valid inside it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One sealed column of one table, as passwd re-seals it. */
typedef struct {
    const char *purpose; /* binding purpose (internal.h) */
    const char *select;  /* rowid, layer, nonce, sealed; ?1 view id or token id, ?2 view name */
    const char *update;  /* ?1 nonce, ?2 sealed, ?3 rowid */
    bool by_view_id;     /* ?1 is the view's id (else the token's) */
} rewrap_job;

static const rewrap_job jobs[] = {
    {PURPOSE_CRED, "SELECT rowid, layer, nonce, sealed FROM creds WHERE view_id = ?1",
     "UPDATE creds SET nonce = ?1, sealed = ?2 WHERE rowid = ?3", true},
    {PURPOSE_PROV_USR,
     "SELECT id, layer, user_pin_nonce, user_pin_sealed FROM provisioned"
     " WHERE token_id = ?1 AND view = ?2 AND user_pin_sealed IS NOT NULL",
     "UPDATE provisioned SET user_pin_nonce = ?1, user_pin_sealed = ?2 WHERE id = ?3", false},
    {PURPOSE_PROV_SO,
     "SELECT id, layer, so_pin_nonce, so_pin_sealed FROM provisioned"
     " WHERE token_id = ?1 AND view = ?2 AND so_pin_sealed IS NOT NULL",
     "UPDATE provisioned SET so_pin_nonce = ?1, so_pin_sealed = ?2 WHERE id = ?3", false},
};

/* One sealed value read before it is rewritten. */
typedef struct {
    int64_t rowid;
    char *layer;
    unsigned char nonce[SECRETS_NONCE_BYTES];
    unsigned char *blob; /* sealed (malloc; not secret) */
    size_t len;
} sealed_row;

struct passwd_ctx {
    const char *token;
    int64_t token_id;
    const secrets_keys *old_keys, *new_keys;
    const kdf_params *new_kdf; /* the token's new salt and cost, or NULL to keep them */
    char *view;                /* the view the old PIN selects (malloc) */
    int64_t view_id;
    storage_view_known_fn known; /* NULL: every enrolled view may change */
    void *known_ctx;
};

static void rows_free(sealed_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        free(rows[i].layer);
        free(rows[i].blob);
    }
    free(rows);
}

/* Copies the current row of st into r. STORAGE_ERR_CRYPTO for a nonce or a
 * blob of the wrong shape. */
static storage_rc row_copy(sqlite3_stmt *st, sealed_row *r)
{
    int len = sqlite3_column_bytes(st, 3);

    if (sqlite3_column_bytes(st, 2) != (int)SECRETS_NONCE_BYTES || len < (int)SECRETS_MAC_BYTES) {
        return STORAGE_ERR_CRYPTO;
    }
    r->rowid = sqlite3_column_int64(st, 0);
    memcpy(r->nonce, sqlite3_column_blob(st, 2), SECRETS_NONCE_BYTES);
    r->layer = strdup((const char *)sqlite3_column_text(st, 1));
    r->blob = malloc((size_t)len);
    if (r->layer == NULL || r->blob == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    memcpy(r->blob, sqlite3_column_blob(st, 3), (size_t)len);
    r->len = (size_t)len;
    return STORAGE_OK;
}

/* Reads every row job selects for the view into *rows (all of them first:
 * the table is updated afterwards). Expects the lock held. */
static storage_rc rows_read_locked(storage_catalog *cat, struct passwd_ctx *c,
                                   const rewrap_job *job, sealed_row **rows, size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int step = SQLITE_DONE;
    storage_rc rc = catalog_prepare_locked(cat, job->select, &st);

    *rows = NULL;
    *n = 0;
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job->by_view_id ? c->view_id : c->token_id);
    if (!job->by_view_id) {
        sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    }
    while (rc == STORAGE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap > 0 ? cap * 2 : 8;
            sealed_row *more = realloc(*rows, cap * sizeof(*more));
            if (more == NULL) {
                rc = STORAGE_ERR_NOMEM;
                break;
            }
            *rows = more;
        }
        memset(&(*rows)[*n], 0, sizeof((*rows)[*n]));
        rc = row_copy(st, &(*rows)[*n]);
        (*n)++;
    }
    if (rc == STORAGE_OK) {
        rc = catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* Opens r under the old key and seals it under the new one into r (fresh
 * nonce). The plaintext is wiped on every path. */
static storage_rc row_reseal(struct passwd_ctx *c, const char *purpose, sealed_row *r)
{
    size_t plain_len = r->len - SECRETS_MAC_BYTES;
    unsigned char *plain = sodium_malloc(plain_len > 0 ? plain_len : 1);
    storage_rc rc = STORAGE_ERR_NOMEM;

    if (plain == NULL) {
        goto out;
    }
    rc = secrets_open(c->old_keys->wrap, purpose, c->token, c->view, r->layer, r->nonce, r->blob,
                      r->len, plain);
    if (rc == STORAGE_OK) {
        rc = secrets_seal(c->new_keys->wrap, purpose, c->token, c->view, r->layer, plain, plain_len,
                          r->nonce, r->blob);
    }
out:
    if (plain != NULL) {
        sodium_memzero(plain, plain_len > 0 ? plain_len : 1);
        sodium_free(plain);
    }
    return rc;
}

/* Re-seals every value job names for the view. The crash point sits after
 * the first rewritten row, with the transaction half done. */
static storage_rc rewrap_locked(storage_catalog *cat, struct passwd_ctx *c, const rewrap_job *job)
{
    sealed_row *rows = NULL;
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    storage_rc rc = rows_read_locked(cat, c, job, &rows, &n);

    if (rc == STORAGE_OK) {
        rc = catalog_prepare_locked(cat, job->update, &st);
    }
    for (size_t i = 0; i < n && rc == STORAGE_OK; i++) {
        rc = row_reseal(c, job->purpose, &rows[i]);
        if (rc != STORAGE_OK) {
            break;
        }
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, rows[i].nonce, SECRETS_NONCE_BYTES, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, rows[i].blob, (int)rows[i].len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, rows[i].rowid);
        rc = catalog_exec_stmt_locked(st);
        catalog_crash_point("passwd-rewrap");
    }
    sqlite3_finalize(st);
    rows_free(rows, n);
    return rc;
}

/* STORAGE_ERR_EXISTS when the new tag selects a view other than c's. */
static storage_rc new_tag_free_locked(storage_catalog *cat, struct passwd_ctx *c)
{
    int64_t other = 0;
    storage_rc rc = views_find_by_tag_locked(cat, c->token_id, c->new_keys->tag, &other, NULL);

    if (rc == STORAGE_ERR_PIN_INCORRECT) {
        return STORAGE_OK;
    }
    if (rc == STORAGE_OK && other != c->view_id) {
        return STORAGE_ERR_EXISTS;
    }
    return rc;
}

static storage_rc tag_update_locked(storage_catalog *cat, struct passwd_ctx *c)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, "UPDATE views SET tag = ?1 WHERE id = ?2", &st);

    if (rc == STORAGE_OK) {
        sqlite3_bind_blob(st, 1, c->new_keys->tag, SECRETS_TAG_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c->view_id);
        rc = catalog_exec_stmt_locked(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Gives the token its new salt and cost, if it still has one view only
 * (another enrolled meanwhile: STORAGE_ERR_BUSY, nothing changed). */
static storage_rc kdf_update_locked(storage_catalog *cat, struct passwd_ctx *c)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat,
        "UPDATE tokens SET kdf_salt = ?1, kdf_ops = ?2, kdf_mem = ?3 WHERE id = ?4"
        " AND (SELECT count(*) FROM views WHERE token_id = ?4) = 1",
        &st);

    if (rc == STORAGE_OK) {
        sqlite3_bind_blob(st, 1, c->new_kdf->salt, SECRETS_SALT_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)c->new_kdf->ops);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)c->new_kdf->mem);
        sqlite3_bind_int64(st, 4, c->token_id);
        rc = catalog_exec_stmt_locked(st);
    }
    if (rc == STORAGE_OK && sqlite3_changes(cat->db) != 1) {
        rc = STORAGE_ERR_BUSY;
    }
    sqlite3_finalize(st);
    return rc;
}

struct count_ctx {
    int64_t token_id;
    int64_t views;
};

static storage_rc count_views_txn(storage_catalog *cat, void *ctx)
{
    struct count_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc =
        catalog_prepare_locked(cat, "SELECT count(*) FROM views WHERE token_id = ?1", &st);

    if (rc == STORAGE_OK) {
        sqlite3_bind_int64(st, 1, c->token_id);
        rc = sqlite3_step(st) == SQLITE_ROW ? STORAGE_OK : STORAGE_ERR_INTERNAL;
        c->views = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Whether the new PIN should be derived with kdf (resolved) and a fresh
 * salt: kdf differs from the token's cost and the token has one view. */
static bool kdf_applies(storage_catalog *cat, const kdf_params *stored, const storage_kdf *kdf,
                        kdf_params *fresh)
{
    struct count_ctx count = {stored->token_id, 0};

    if (kdf == NULL || !stored->found ||
        secrets_kdf_resolve(kdf, &fresh->ops, &fresh->mem) != STORAGE_OK ||
        (fresh->ops == stored->ops && fresh->mem == stored->mem) ||
        catalog_read(cat, count_views_txn, &count) != STORAGE_OK || count.views != 1) {
        return false;
    }
    secrets_salt_new(fresh->salt);
    return true;
}

/* The passwd transaction (see storage_view_passwd). */
static storage_rc passwd_txn(storage_catalog *cat, void *ctx)
{
    struct passwd_ctx *c = ctx;
    char *subject = NULL;
    storage_rc rc =
        views_find_by_tag_locked(cat, c->token_id, c->old_keys->tag, &c->view_id, &c->view);

    if (rc == STORAGE_OK && c->known != NULL && !c->known(c->view, c->known_ctx)) {
        rc = STORAGE_ERR_PIN_INCORRECT; /* removed: no further read, a wrong PIN's work */
    }
    if (rc == STORAGE_OK) {
        rc = new_tag_free_locked(cat, c);
    }
    for (size_t i = 0; rc == STORAGE_OK && i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        rc = rewrap_locked(cat, c, &jobs[i]);
    }
    if (rc == STORAGE_OK) {
        rc = tag_update_locked(cat, c);
    }
    if (rc == STORAGE_OK && c->new_kdf != NULL) {
        rc = kdf_update_locked(cat, c);
    }
    if (rc == STORAGE_OK) {
        subject = views_subject(c->token, c->view);
        rc = subject == NULL ? STORAGE_ERR_NOMEM
                             : catalog_audit_locked(cat, "passwd", subject, "ok");
    }
    free(subject);
    return rc;
}

/* Derives the keys of both PINs: the old one with the token's stored
 * parameters (params, as read; a token without enrolment still costs the
 * old PIN's run, with the dummy salt, and answers
 * STORAGE_ERR_PIN_INCORRECT), the new one with them or with fresh. */
static storage_rc passwd_keys(storage_catalog *cat, kdf_params *params, const kdf_params *fresh,
                              const char *old_pin, size_t old_len, const char *new_pin,
                              size_t new_len, secrets_keys **old_keys, secrets_keys **new_keys)
{
    storage_rc rc;

    if (!params->found) {
        memcpy(params->salt, secrets_dummy_salt(), SECRETS_SALT_BYTES);
        params->ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        params->mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
    rc = secrets_keys_derive(old_pin, old_len, params->salt, params->ops, params->mem, old_keys);
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (!params->found) {
        return STORAGE_ERR_PIN_INCORRECT;
    }
    if (fresh != NULL) {
        return secrets_keys_derive(new_pin, new_len, fresh->salt, fresh->ops, fresh->mem, new_keys);
    }
    return secrets_keys_derive(new_pin, new_len, params->salt, params->ops, params->mem, new_keys);
}

/* storage_view_passwd_kdf for the views known accepts (NULL: every one).
 * Takes the catalog lock only around the reads and the write transaction;
 * a refusal because the new PIN selects another view is audited in its
 * own transaction. */
static storage_rc passwd_run(storage_catalog *cat, const char *token, const char *old_pin,
                             size_t old_len, const char *new_pin, size_t new_len,
                             const storage_kdf *kdf, bool *kdf_applied, storage_view_known_fn known,
                             void *known_ctx)
{
    kdf_params params = {.token = token}, fresh = {.token = token, .found = true};
    struct passwd_ctx c = {.token = token, .known = known, .known_ctx = known_ctx};
    secrets_keys *old_keys = NULL, *new_keys = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;
    bool apply = false;

    if (kdf_applied != NULL) {
        *kdf_applied = false;
    }
    if (cat == NULL || token == NULL || token[0] == '\0' || (old_pin == NULL && old_len > 0) ||
        new_pin == NULL || new_len == 0) {
        goto out;
    }
    rc = STORAGE_ERR_READ_ONLY;
    if (cat->read_only) {
        goto out;
    }
    rc = catalog_read(cat, views_kdf_read_txn, &params);
    if (rc != STORAGE_OK) {
        goto out;
    }
    apply = kdf_applies(cat, &params, kdf, &fresh);
    rc = passwd_keys(cat, &params, apply ? &fresh : NULL, old_pin, old_len, new_pin, new_len,
                     &old_keys, &new_keys);
    if (rc != STORAGE_OK) {
        goto out;
    }
    c.token_id = params.token_id;
    c.old_keys = old_keys;
    c.new_keys = new_keys;
    c.new_kdf = apply ? &fresh : NULL;
    rc = catalog_write(cat, passwd_txn, &c);
    if (rc == STORAGE_ERR_EXISTS) {
        char *subject = views_subject(token, c.view);
        if (subject != NULL) {
            (void)storage_audit(cat, "passwd", subject,
                                "refused: the new PIN selects another view");
        }
        free(subject);
    }
    if (kdf_applied != NULL) {
        *kdf_applied = rc == STORAGE_OK && apply;
    }
out:
    free(c.view);
    secrets_keys_free(old_keys);
    secrets_keys_free(new_keys);
    return rc;
}

/* See storage.h. */
storage_rc storage_view_passwd_kdf(storage_catalog *cat, const char *token, const char *old_pin,
                                   size_t old_len, const char *new_pin, size_t new_len,
                                   const storage_kdf *kdf, bool *kdf_applied)
{
    return passwd_run(cat, token, old_pin, old_len, new_pin, new_len, kdf, kdf_applied, NULL, NULL);
}

/* See storage.h: the token's salt and cost are kept. */
storage_rc storage_view_passwd(storage_catalog *cat, const char *token, const char *old_pin,
                               size_t old_len, const char *new_pin, size_t new_len)
{
    return passwd_run(cat, token, old_pin, old_len, new_pin, new_len, NULL, NULL, NULL, NULL);
}

/* See storage.h: the token's salt and cost are kept. */
storage_rc storage_view_passwd_known(storage_catalog *cat, const char *token, const char *old_pin,
                                     size_t old_len, const char *new_pin, size_t new_len,
                                     storage_view_known_fn known, void *ctx)
{
    return passwd_run(cat, token, old_pin, old_len, new_pin, new_len, NULL, NULL, known, ctx);
}
