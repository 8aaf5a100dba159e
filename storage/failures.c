/*
 * failures.c - the failed-login counter of a virtual token: counting,
 * clearing after a good login, and the administrator's unlock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

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

struct unlock_ctx {
    const char *token;
    unsigned cleared;
};

/* Clears the counter when the token is known, and audits "unlock" always. */
static storage_rc unlock_txn(storage_catalog *cat, void *ctx)
{
    struct unlock_ctx *u = ctx;
    struct failures_ctx c = {u->token, 0, u->token};
    char outcome[64];
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, u->token, &token_id);

    if (rc == STORAGE_OK) {
        rc = failures_read_txn(cat, &c);
        u->cleared = c.count;
        if (rc == STORAGE_OK && c.count > 0) {
            rc = failures_set_locked(cat, &c, 0);
        }
    } else if (rc == STORAGE_ERR_NOT_FOUND) {
        rc = STORAGE_OK; /* never seen: nothing to clear, still audited */
    }
    if (rc == STORAGE_OK) {
        snprintf(outcome, sizeof(outcome), "ok (%u failed logins cleared)", u->cleared);
        rc = catalog_audit_locked(cat, "unlock", u->token, outcome);
    }
    return rc;
}

/* See storage.h. */
storage_rc storage_token_unlock(storage_catalog *cat, const char *token, unsigned *cleared)
{
    struct unlock_ctx u = {token, 0};
    storage_rc rc;

    if (cat == NULL || token == NULL || token[0] == '\0') {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_write(cat, unlock_txn, &u);
    if (rc == STORAGE_OK && cleared != NULL) {
        *cleared = u.cleared;
    }
    return rc;
}
