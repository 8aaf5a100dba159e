/*
 * tokens.c - rows keyed by a virtual token's label: the tokens table,
 * stable virtual slot IDs, and the audit trail of administrative changes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "internal.h"

/* ---------------------------------------------------------------------
 * Tokens
 * ------------------------------------------------------------------ */

/* See internal.h. STORAGE_OK and *id; STORAGE_ERR_NOT_FOUND; or the
 * read's failure. Expects the lock held. */
storage_rc catalog_token_id_locked(storage_catalog *cat, const char *token, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, "SELECT id FROM tokens WHERE label = ?1", &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        rc = STORAGE_OK;
    } else {
        rc = step == SQLITE_DONE ? STORAGE_ERR_NOT_FOUND : catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See internal.h. STORAGE_OK and *id (the row is created when missing);
 * or the failing statement's code. Expects the lock held inside a write
 * transaction. */
storage_rc catalog_token_ensure_locked(storage_catalog *cat, const char *token, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_token_id_locked(cat, token, id);

    if (rc != STORAGE_ERR_NOT_FOUND) {
        return rc;
    }
    rc = catalog_prepare_locked(cat, "INSERT INTO tokens (label, created_at) VALUES (?1, ?2)", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, catalog_now());
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK) {
        *id = sqlite3_last_insert_rowid(cat->db);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------------
 * Virtual slot IDs
 * ------------------------------------------------------------------ */

struct slot_ctx {
    const char *label;
    CK_SLOT_ID id;
};

static storage_rc slot_find_txn(storage_catalog *cat, void *ctx)
{
    struct slot_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc =
        catalog_prepare_locked(cat, "SELECT slot_id FROM slots WHERE token_label = ?1", &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->label, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        c->id = (CK_SLOT_ID)sqlite3_column_int64(st, 0);
        rc = STORAGE_OK;
    } else {
        rc = step == SQLITE_DONE ? STORAGE_ERR_NOT_FOUND : catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static storage_rc slot_assign_txn(storage_catalog *cat, void *ctx)
{
    struct slot_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = slot_find_txn(cat, ctx);

    if (rc != STORAGE_ERR_NOT_FOUND) {
        return rc;
    }
    rc = catalog_prepare_locked(cat, "INSERT INTO slots (token_label, created_at) VALUES (?1, ?2)",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, catalog_now());
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK) {
        c->id = (CK_SLOT_ID)sqlite3_last_insert_rowid(cat->db);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. A known label costs one read; an unknown one a write
 * transaction (STORAGE_ERR_NOT_FOUND on a read-only catalog). */
storage_rc storage_slot_id(storage_catalog *cat, const char *token_label, CK_SLOT_ID *out)
{
    struct slot_ctx c = {token_label, 0};
    storage_rc rc;

    if (cat == NULL || token_label == NULL || token_label[0] == '\0' || out == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, slot_find_txn, &c);
    if (rc == STORAGE_ERR_NOT_FOUND && !cat->read_only) {
        rc = catalog_write(cat, slot_assign_txn, &c);
    }
    if (rc == STORAGE_OK) {
        *out = c.id;
    }
    return rc;
}

/* ---------------------------------------------------------------------
 * Audit
 * ------------------------------------------------------------------ */

/* See internal.h. STORAGE_OK, or the insert's failure. Expects the lock
 * held inside a write transaction. */
storage_rc catalog_audit_locked(storage_catalog *cat, const char *action, const char *subject,
                                const char *outcome)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "INSERT INTO audit (at, action, subject, outcome) VALUES (?1, ?2, ?3, ?4)", &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, catalog_now());
    sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, outcome, -1, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
out:
    sqlite3_finalize(st);
    return rc;
}

struct audit_ctx {
    const char *action, *subject, *outcome;
};

static storage_rc audit_txn(storage_catalog *cat, void *ctx)
{
    struct audit_ctx *c = ctx;

    return catalog_audit_locked(cat, c->action, c->subject, c->outcome);
}

/* See storage.h. STORAGE_OK, STORAGE_ERR_ARGS, STORAGE_ERR_READ_ONLY, or
 * the write's failure. */
storage_rc storage_audit(storage_catalog *cat, const char *action, const char *subject,
                         const char *outcome)
{
    struct audit_ctx c = {action, subject, outcome};

    if (cat == NULL || action == NULL || subject == NULL || outcome == NULL) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, audit_txn, &c);
}
