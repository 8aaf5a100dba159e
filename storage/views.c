/*
 * views.c - enrolment of views, their removal and listing, and the
 * lookups login.c and passwd.c share.
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ENROLL_ATTEMPTS 3
#define VIEW_NAME_MAX   (sizeof(((storage_view_info *)0)->view) - 1)

/* Reads token's KDF parameters into ctx (a kdf_params); found = false when
 * the token or its salt does not exist. */
storage_rc views_kdf_read_txn(storage_catalog *cat, void *ctx)
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
char *views_subject(const char *token, const char *view)
{
    char *s = NULL;

    if (view == NULL) {
        return strdup(token);
    }
    return asprintf(&s, "%s/%s", token, view) < 0 ? NULL : s;
}

/* See internal.h. The tag is compared again in constant time after the
 * indexed lookup. */
storage_rc views_find_by_tag_locked(storage_catalog *cat, int64_t token_id,
                                    const unsigned char tag[SECRETS_TAG_BYTES], int64_t *view_id,
                                    char **name)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "SELECT id, name, tag FROM views WHERE token_id = ?1 AND tag = ?2", &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_blob(st, 2, tag, SECRETS_TAG_BYTES, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? STORAGE_ERR_PIN_INCORRECT : catalog_rc(step);
        goto out;
    }
    rc = STORAGE_ERR_PIN_INCORRECT;
    if (sqlite3_column_bytes(st, 2) != (int)SECRETS_TAG_BYTES ||
        !storage_equal(sqlite3_column_blob(st, 2), tag, SECRETS_TAG_BYTES)) {
        goto out;
    }
    *view_id = sqlite3_column_int64(st, 0);
    rc = STORAGE_OK;
    if (name != NULL) {
        *name = strdup((const char *)sqlite3_column_text(st, 1));
        rc = *name != NULL ? STORAGE_OK : STORAGE_ERR_NOMEM;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See internal.h. */
storage_rc views_find_named_locked(storage_catalog *cat, int64_t token_id, const char *name,
                                   size_t name_len, const unsigned char tag[SECRETS_TAG_BYTES],
                                   int64_t *view_id, char **name_out)
{
    static const unsigned char none[SECRETS_TAG_BYTES]; /* compared when no view has the name */
    const unsigned char *stored = none;
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "SELECT id, tag FROM views WHERE token_id = ?1 AND name = ?2", &st);
    bool match;
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    /* the exact bytes: a name with a NUL inside names no view */
    sqlite3_bind_text(st, 2, name_len > 0 ? name : "", (int)(name_len < INT_MAX ? name_len : 0),
                      SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = catalog_rc(step);
        goto out;
    }
    if (name_len >= INT_MAX) {
        step = SQLITE_DONE; /* no name is that long */
    }
    if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == (int)SECRETS_TAG_BYTES) {
        stored = sqlite3_column_blob(st, 1);
    }
    match = storage_equal(stored, tag, SECRETS_TAG_BYTES) && stored != none;
    rc = STORAGE_ERR_PIN_INCORRECT;
    if (!match) {
        goto out;
    }
    *view_id = sqlite3_column_int64(st, 0);
    rc = STORAGE_OK;
    if (name_out != NULL) {
        *name_out = strndup(name, name_len);
        rc = *name_out != NULL ? STORAGE_OK : STORAGE_ERR_NOMEM;
    }
out:
    sqlite3_finalize(st);
    return rc;
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
    const char *action;  /* the audit row's action: "enroll", or "init-pin" */
    bool stale;          /* the stored salt differs from kdf's */
    bool fresh_only;     /* refuse when the view has provisioned tokens */
    bool has_tokens;     /* fresh_only: it has (nothing changed) */
};

/* Records the token's KDF parameters, or checks that the stored ones are
 * those the keys were derived with (stale = true and STORAGE_ERR_BUSY if
 * not). */
static storage_rc enroll_kdf_locked(storage_catalog *cat, struct enroll_ctx *c, int64_t token_id)
{
    kdf_params now = {.token = c->token};
    sqlite3_stmt *st = NULL;
    storage_rc rc = views_kdf_read_txn(cat, &now);

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

/* fresh_only: STORAGE_ERR_EXISTS with has_tokens when a provisioning
 * row names the view (its tokens' PINs are sealed under the view's
 * current key, which a new PIN would lose). */
static storage_rc enroll_fresh_locked(storage_catalog *cat, struct enroll_ctx *c, int64_t token_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "SELECT count(*) FROM provisioned WHERE token_id = ?1 AND view = ?2", &st);

    if (rc != STORAGE_OK || !c->fresh_only) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_ROW ? STORAGE_OK : STORAGE_ERR_INTERNAL;
    if (rc == STORAGE_OK && sqlite3_column_int64(st, 0) > 0) {
        c->has_tokens = true;
        rc = STORAGE_ERR_EXISTS;
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
        rc = enroll_fresh_locked(cat, c, token_id);
    }
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
        rc = catalog_audit_locked(cat, c->action, c->subject, "ok");
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
    storage_rc rc = catalog_read(cat, views_kdf_read_txn, &params);

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

/* storage_view_enroll and storage_view_init_pin: c names the token, view,
 * credentials and mode. */
static storage_rc enroll_run(storage_catalog *cat, struct enroll_ctx *c, const char *pin,
                             size_t pin_len, const storage_kdf *kdf)
{
    storage_rc rc = STORAGE_ERR_ARGS;
    char *subject = NULL;

    if (cat == NULL || !enroll_args_ok(c->token, c->view, pin, pin_len, c->creds, c->n)) {
        goto out;
    }
    rc = STORAGE_ERR_READ_ONLY;
    if (cat->read_only) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    subject = views_subject(c->token, c->view);
    if (subject == NULL) {
        goto out;
    }
    c->subject = subject;
    for (int attempt = 0; attempt < ENROLL_ATTEMPTS; attempt++) {
        rc = enroll_once(cat, c, pin, pin_len, kdf);
        if (!c->stale) {
            break;
        }
    }
    if (rc == STORAGE_ERR_EXISTS) {
        (void)storage_audit(cat, c->action, subject,
                            c->has_tokens ? "refused: the view has provisioned tokens"
                                          : "refused: the PIN selects another view");
    }
out:
    free(subject);
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
    struct enroll_ctx c = {
        .token = token, .view = view, .creds = creds, .n = n_creds, .action = "enroll"};

    return enroll_run(cat, &c, pin, pin_len, kdf);
}

/* See storage.h. */
storage_rc storage_view_init_pin(storage_catalog *cat, const char *token, const char *view,
                                 const char *pin, size_t pin_len, const storage_kdf *kdf,
                                 bool *has_tokens)
{
    struct enroll_ctx c = {.token = token, .view = view, .action = "init-pin", .fresh_only = true};
    storage_rc rc = enroll_run(cat, &c, pin, pin_len, kdf);

    if (has_tokens != NULL) {
        *has_tokens = c.has_tokens;
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * Removal
 * ------------------------------------------------------------------ */

struct remove_ctx {
    const char *token, *view, *subject;
    bool forget;          /* strata forget: the view's other rows go too */
    unsigned provisioned; /* forget, out: provisioning rows kept */
};

/* Runs sql with ?1 = token_id and ?2 = view. */
static storage_rc remove_exec_locked(storage_catalog *cat, const char *sql, int64_t token_id,
                                     const char *view)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, sql, &st);

    if (rc == STORAGE_OK) {
        sqlite3_bind_int64(st, 1, token_id);
        sqlite3_bind_text(st, 2, view, -1, SQLITE_STATIC);
        rc = catalog_exec_stmt_locked(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* What forget removes beyond the view row, and the count it reports. */
static storage_rc forget_rest_locked(storage_catalog *cat, struct remove_ctx *c, int64_t token_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = remove_exec_locked(
        cat, "DELETE FROM whiteouts WHERE token_id = ?1 AND view = ?2", token_id, c->view);

    if (rc == STORAGE_OK) {
        rc = remove_exec_locked(cat, "DELETE FROM left_out WHERE token_id = ?1 AND view = ?2",
                                token_id, c->view);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_prepare_locked(
            cat, "SELECT count(*) FROM provisioned WHERE token_id = ?1 AND view = ?2", &st);
    }
    if (rc == STORAGE_OK) {
        sqlite3_bind_int64(st, 1, token_id);
        sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_ROW ? STORAGE_OK : STORAGE_ERR_INTERNAL;
        c->provisioned = (unsigned)sqlite3_column_int64(st, 0);
    }
    /* With its last view gone, the token's Argon2id salt and cost go too:
     * the next enrolment takes the policy's <kdf>. */
    if (rc == STORAGE_OK) {
        rc = remove_exec_locked(cat,
                                "UPDATE tokens SET kdf_salt = NULL, kdf_ops = NULL, kdf_mem = NULL"
                                " WHERE id = ?1 AND ?2 IS NOT NULL AND NOT EXISTS"
                                " (SELECT 1 FROM views WHERE token_id = ?1)",
                                token_id, c->view);
    }
    sqlite3_finalize(st);
    return rc;
}

static storage_rc remove_txn(storage_catalog *cat, void *ctx)
{
    struct remove_ctx *c = ctx;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, c->token, &token_id);

    if (rc == STORAGE_OK) {
        rc = remove_exec_locked(cat, "DELETE FROM views WHERE token_id = ?1 AND name = ?2",
                                token_id, c->view);
    }
    if (rc == STORAGE_OK && sqlite3_changes(cat->db) == 0) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
    if (rc == STORAGE_OK && c->forget) {
        rc = forget_rest_locked(cat, c, token_id);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, c->forget ? "forget" : "remove", c->subject, "ok");
    }
    return rc;
}

/* Removes the view (and with forget its other rows) in one transaction. */
static storage_rc view_drop(storage_catalog *cat, struct remove_ctx *c)
{
    storage_rc rc;

    if (cat == NULL || c->token == NULL || c->view == NULL) {
        return STORAGE_ERR_ARGS;
    }
    c->subject = views_subject(c->token, c->view);
    if (c->subject == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    rc = catalog_write(cat, remove_txn, c);
    free((char *)c->subject);
    return rc;
}

/* See storage.h. The view's credentials go with it; its whiteouts and
 * provisioned tokens stay (they belong to the view's name, not to one
 * enrolment). STORAGE_OK, STORAGE_ERR_NOT_FOUND, STORAGE_ERR_READ_ONLY,
 * STORAGE_ERR_ARGS, or the write's failure. */
storage_rc storage_view_remove(storage_catalog *cat, const char *token, const char *view)
{
    struct remove_ctx c = {.token = token, .view = view};

    return view_drop(cat, &c);
}

/* See storage.h. */
storage_rc storage_view_forget(storage_catalog *cat, const char *token, const char *view,
                               unsigned *provisioned)
{
    struct remove_ctx c = {.token = token, .view = view, .forget = true};
    storage_rc rc = view_drop(cat, &c);

    if (provisioned != NULL) {
        *provisioned = rc == STORAGE_OK ? c.provisioned : 0;
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * Listing
 * ------------------------------------------------------------------ */

/* Fills one storage_view_info from a row of the query below. */
static storage_rc view_fill(sqlite3_stmt *st, void *item)
{
    storage_view_info *info = item;

    snprintf(info->view, sizeof(info->view), "%s", (const char *)sqlite3_column_text(st, 0));
    info->n_creds = (unsigned)sqlite3_column_int64(st, 1);
    info->failed_logins = (unsigned)sqlite3_column_int64(st, 2);
    info->provisioned = (unsigned)sqlite3_column_int64(st, 3);
    info->provisioning = (unsigned)sqlite3_column_int64(st, 4);
    return STORAGE_OK;
}

struct any_ctx {
    const char *token; /* label of the virtual token */
    bool any;          /* out: some view of it is enrolled */
};

static storage_rc any_txn(storage_catalog *cat, void *ctx)
{
    struct any_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int step = SQLITE_DONE;
    storage_rc rc = catalog_prepare_locked(
        cat,
        "SELECT EXISTS (SELECT 1 FROM views v JOIN tokens t ON t.id = v.token_id"
        " WHERE t.label = ?1)",
        &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        c->any = sqlite3_column_int(st, 0) != 0;
        step = SQLITE_DONE;
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. One indexed lookup, whatever the number of views:
 * C_Login asks it on every call. STORAGE_OK (any false for an unknown
 * token), STORAGE_ERR_ARGS, or the read's failure. */
storage_rc storage_views_any(storage_catalog *cat, const char *token, bool *any)
{
    struct any_ctx c = {token, false};
    storage_rc rc;

    if (cat == NULL || token == NULL || any == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, any_txn, &c);
    *any = rc == STORAGE_OK && c.any;
    return rc;
}

/* See storage.h. One snapshot gives each view with its credential count,
 * the token's failure counter and its provisioning rows by state. fn runs
 * after the read, with no storage lock held, so it
 * may call back into storage. STORAGE_OK (also for an unknown token: no
 * call), STORAGE_ERR_ARGS, STORAGE_ERR_NOMEM, or the read's failure. */
storage_rc storage_views_list(storage_catalog *cat, const char *token,
                              void (*fn)(void *ctx, const storage_view_info *info), void *ctx)
{
    storage_view_info *items = NULL;
    size_t n = 0;
    storage_rc rc;

    if (cat == NULL || token == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_rows_read(
        cat,
        "SELECT v.name, (SELECT count(*) FROM creds c WHERE c.view_id = v.id),"
        " t.failed_logins,"
        " (SELECT count(*) FROM provisioned p WHERE p.token_id = t.id AND p.view = v.name"
        "   AND p.state = 'ready'),"
        " (SELECT count(*) FROM provisioned p WHERE p.token_id = t.id AND p.view = v.name"
        "   AND p.state <> 'ready')"
        " FROM views v JOIN tokens t ON t.id = v.token_id WHERE t.label = ?1 ORDER BY v.name",
        token, sizeof(*items), view_fill, (void **)&items, &n);
    for (size_t i = 0; rc == STORAGE_OK && i < n; i++) {
        fn(ctx, &items[i]);
    }
    free(items);
    return rc;
}

/* ---------------------------------------------------------------------
 * The cost views were enrolled with
 * ------------------------------------------------------------------ */

/* See storage.h. */
storage_rc storage_token_kdf(storage_catalog *cat, const char *token, storage_kdf *out, bool *found)
{
    kdf_params params = {.token = token};
    storage_rc rc;

    if (cat == NULL || token == NULL || out == NULL || found == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, views_kdf_read_txn, &params);
    *found = rc == STORAGE_OK && params.found;
    out->ops = *found ? params.ops : 0;
    out->mem = *found ? params.mem : 0;
    return rc;
}

/* See storage.h. */
storage_rc storage_kdf_effective(const storage_kdf *kdf, storage_kdf *out)
{
    if (out == NULL) {
        return STORAGE_ERR_ARGS;
    }
    return secrets_kdf_resolve(kdf, &out->ops, &out->mem);
}
