/*
 * failures.c - the failed-login counters of a virtual token: the user
 * PINs' (tokens.failed_logins, shared by every view) and the security
 * officer's (tokens.so_failed_logins), kept apart so that an SO lockout
 * never locks the users out and the other way round.
 *
 * Every guess is reserved before its PIN is evaluated (storage_guess_reserve:
 * one BEGIN IMMEDIATE transaction reads the counter and, below the limit,
 * adds one), so parallel processes can never evaluate more wrong PINs than
 * the limit, and a guess that cannot be recorded is never evaluated. A PIN
 * proved right gives its reservation back (storage_guess_settle).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * Failed-login counters
 * ------------------------------------------------------------------ */

/* The counter column of each storage_pin_kind (fixed SQL text, never
 * built from input). */
static const char *const read_sql[] = {
    [STORAGE_PIN_USER] = "SELECT failed_logins FROM tokens WHERE label = ?1",
    [STORAGE_PIN_SO] = "SELECT so_failed_logins FROM tokens WHERE label = ?1",
};
static const char *const add_sql[] = {
    [STORAGE_PIN_USER] = "UPDATE tokens SET failed_logins = failed_logins + 1 WHERE id = ?1",
    [STORAGE_PIN_SO] = "UPDATE tokens SET so_failed_logins = so_failed_logins + 1 WHERE id = ?1",
};
static const char *const sub_sql[] = {
    [STORAGE_PIN_USER] =
        "UPDATE tokens SET failed_logins = max(failed_logins - 1, 0) WHERE id = ?1",
    [STORAGE_PIN_SO] =
        "UPDATE tokens SET so_failed_logins = max(so_failed_logins - 1, 0) WHERE id = ?1",
};
static const char *const zero_sql[] = {
    [STORAGE_PIN_USER] = "UPDATE tokens SET failed_logins = 0 WHERE id = ?1",
    [STORAGE_PIN_SO] = "UPDATE tokens SET so_failed_logins = 0 WHERE id = ?1",
};

/* The actions failures_change_locked knows. */
typedef enum { CHANGE_ADD, CHANGE_SUB, CHANGE_ZERO } change;

struct failures_ctx {
    const char *token;
    storage_pin_kind kind;
    unsigned count;
    const char *subject;
    unsigned max;   /* storage_guess_reserve: the limit */
    bool clear;     /* storage_guess_settle: clear the counter (else give one back) */
    unsigned other; /* storage_guess_settle: failures cleared besides the caller's own */
};

static bool kind_valid(storage_pin_kind kind)
{
    return kind == STORAGE_PIN_USER || kind == STORAGE_PIN_SO;
}

/* Reads the counter of c->kind; 0 for a token the catalog does not know. */
static storage_rc failures_read_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, read_sql[c->kind], &st);
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

/* Adds one to, takes one from, or clears the counter of c->kind (creating
 * the token's row when missing) and reads it back into c->count. */
static storage_rc failures_change_locked(storage_catalog *cat, struct failures_ctx *c, change how)
{
    const char *const *sql = how == CHANGE_ADD ? add_sql : how == CHANGE_SUB ? sub_sql : zero_sql;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat, sql[c->kind], &st);
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
    return failures_change_locked(cat, ctx, CHANGE_ADD);
}

/* Audits "reset-failures" for c with n failures cleared. */
static storage_rc audit_reset_locked(storage_catalog *cat, struct failures_ctx *c, unsigned n)
{
    char outcome[80];

    snprintf(outcome, sizeof(outcome), "ok (%u failed %slogins cleared)", n,
             c->kind == STORAGE_PIN_SO ? "SO " : "");
    return catalog_audit_locked(cat, "reset-failures", c->subject, outcome);
}

/* Clears a non-zero counter and audits it, with the number cleared. */
static storage_rc reset_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    storage_rc rc = failures_read_txn(cat, c);
    unsigned was = c->count;

    if (rc != STORAGE_OK || was == 0) {
        return rc;
    }
    rc = failures_change_locked(cat, c, CHANGE_ZERO);
    if (rc == STORAGE_OK) {
        rc = audit_reset_locked(cat, c, was);
    }
    return rc;
}

storage_rc storage_login_failures(storage_catalog *cat, const char *token, unsigned *count)
{
    return storage_pin_failures(cat, token, STORAGE_PIN_USER, count);
}

/* See storage.h. */
storage_rc storage_pin_failures(storage_catalog *cat, const char *token, storage_pin_kind kind,
                                unsigned *count)
{
    struct failures_ctx c = {.token = token, .kind = kind};
    storage_rc rc;

    if (cat == NULL || token == NULL || count == NULL || !kind_valid(kind)) {
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
    struct failures_ctx c = {.token = token, .kind = STORAGE_PIN_USER};
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
    struct failures_ctx c = {.token = token, .kind = STORAGE_PIN_USER, .subject = token};
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

/* ---------------------------------------------------------------------
 * Reserving a guess before its PIN is evaluated
 * ------------------------------------------------------------------ */

/* Reads the counter and, below the limit, adds one (see above). */
static storage_rc reserve_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    storage_rc rc = failures_read_txn(cat, c);

    if (rc != STORAGE_OK) {
        return rc;
    }
    if (c->count >= c->max) {
        return STORAGE_ERR_LOCKED; /* rolled back: nothing was written */
    }
    return failures_change_locked(cat, c, CHANGE_ADD);
}

/* See storage.h. */
storage_rc storage_guess_reserve(storage_catalog *cat, const char *token, storage_pin_kind kind,
                                 unsigned max, unsigned *count)
{
    struct failures_ctx c = {.token = token, .kind = kind, .max = max};
    storage_rc rc;

    if (cat == NULL || token == NULL || token[0] == '\0' || !kind_valid(kind) || max == 0) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_write(cat, reserve_txn, &c);
    if (count != NULL) {
        *count = c.count;
    }
    return rc;
}

/* Gives the caller's reservation back; with c->clear, clears the counter
 * and audits the other failures it held, if any. */
static storage_rc settle_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    storage_rc rc = failures_read_txn(cat, c);
    unsigned was = c->count;

    if (rc != STORAGE_OK || was == 0) {
        return rc; /* an unlock cleared it meanwhile */
    }
    rc = failures_change_locked(cat, c, c->clear ? CHANGE_ZERO : CHANGE_SUB);
    c->other = c->clear ? was - 1 : 0;
    if (rc == STORAGE_OK && c->other > 0) {
        rc = audit_reset_locked(cat, c, c->other);
    }
    return rc;
}

/* See storage.h. */
storage_rc storage_guess_settle(storage_catalog *cat, const char *token, storage_pin_kind kind,
                                bool clear)
{
    struct failures_ctx c = {.token = token, .kind = kind, .subject = token, .clear = clear};

    if (cat == NULL || token == NULL || token[0] == '\0' || !kind_valid(kind)) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, settle_txn, &c);
}

/* ---------------------------------------------------------------------
 * The administrator's unlock
 * ------------------------------------------------------------------ */

struct unlock_ctx {
    const char *token;
    storage_pin_kind kind;
    unsigned cleared;
};

/* Clears the counter when the token is known, and audits "unlock" (user
 * PINs) or "unlock-so" always. */
static storage_rc unlock_txn(storage_catalog *cat, void *ctx)
{
    struct unlock_ctx *u = ctx;
    struct failures_ctx c = {.token = u->token, .kind = u->kind, .subject = u->token};
    bool so = u->kind == STORAGE_PIN_SO;
    char outcome[80];
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, u->token, &token_id);

    if (rc == STORAGE_OK) {
        rc = failures_read_txn(cat, &c);
        u->cleared = c.count;
        if (rc == STORAGE_OK && c.count > 0) {
            rc = failures_change_locked(cat, &c, CHANGE_ZERO);
        }
    } else if (rc == STORAGE_ERR_NOT_FOUND) {
        rc = STORAGE_OK; /* never seen: nothing to clear, still audited */
    }
    if (rc == STORAGE_OK) {
        snprintf(outcome, sizeof(outcome), "ok (%u failed %slogins cleared)", u->cleared,
                 so ? "SO " : "");
        rc = catalog_audit_locked(cat, so ? "unlock-so" : "unlock", u->token, outcome);
    }
    return rc;
}

/* See storage.h. */
storage_rc storage_pin_unlock(storage_catalog *cat, const char *token, storage_pin_kind kind,
                              unsigned *cleared)
{
    struct unlock_ctx u = {token, kind, 0};
    storage_rc rc;

    if (cat == NULL || token == NULL || token[0] == '\0' || !kind_valid(kind)) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_write(cat, unlock_txn, &u);
    if (rc == STORAGE_OK && cleared != NULL) {
        *cleared = u.cleared;
    }
    return rc;
}

/* See storage.h. */
storage_rc storage_token_unlock(storage_catalog *cat, const char *token, unsigned *cleared)
{
    return storage_pin_unlock(cat, token, STORAGE_PIN_USER, cleared);
}
