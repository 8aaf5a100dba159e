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
 * proved right gives its own reservation back (storage_guess_settle) and
 * nothing more: a correct login does not clear the failures before it, or
 * the holder of one view's PIN could guess another's without bound (two
 * wrong PINs, one right login, again).
 *
 * Failures expire instead, one per recovery interval (the policy's
 * failed-login-recovery, in seconds; 0: never), as a TPM's dictionary-
 * attack counter does. Next to each counter the catalog keeps a stamp
 * (failed_at, so_failed_at): the time the next expiry is counted from.
 * Expiry is computed whenever the counter is read, and written with the
 * next change; it never runs while the clock reads earlier than the
 * stamp, so setting the clock back delays recovery and never resets the
 * counter.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ---------------------------------------------------------------------
 * Failed-login counters
 * ------------------------------------------------------------------ */

/* The counter and stamp columns of each storage_pin_kind (fixed SQL text,
 * never built from input). */
static const char *const read_sql[] = {
    [STORAGE_PIN_USER] = "SELECT failed_logins, failed_at FROM tokens WHERE label = ?1",
    [STORAGE_PIN_SO] = "SELECT so_failed_logins, so_failed_at FROM tokens WHERE label = ?1",
};
static const char *const write_sql[] = {
    [STORAGE_PIN_USER] = "UPDATE tokens SET failed_logins = ?2, failed_at = ?3 WHERE id = ?1",
    [STORAGE_PIN_SO] = "UPDATE tokens SET so_failed_logins = ?2, so_failed_at = ?3 WHERE id = ?1",
};

/* The actions failures_change_locked knows. */
typedef enum { CHANGE_ADD, CHANGE_SUB, CHANGE_ZERO } change;

struct failures_ctx {
    const char *token;
    storage_pin_kind kind;
    unsigned count;    /* the counter, expired failures taken off */
    int64_t stamp;     /* when the next failure expiry is counted from */
    int64_t now;       /* the clock, read once per transaction */
    unsigned recovery; /* seconds per expired failure; 0: none expire */
    const char *subject;
    unsigned max;   /* storage_guess_reserve: the limit */
    bool clear;     /* storage_guess_settle: clear the counter (else give one back) */
    unsigned other; /* storage_guess_settle: failures cleared besides the caller's own */
};

static bool kind_valid(storage_pin_kind kind)
{
    return kind == STORAGE_PIN_USER || kind == STORAGE_PIN_SO;
}

/*
 * Takes the failures that expired by c->now off c->count: one per
 * c->recovery seconds since c->stamp, the stamp moving on by as many
 * intervals. Nothing expires while the clock reads earlier than the stamp
 * (it was set back): the counter waits for the clock to catch up.
 */
static void failures_expire(struct failures_ctx *c)
{
    int64_t intervals;

    if (c->count == 0 || c->recovery == 0 || c->now <= c->stamp) {
        return;
    }
    intervals = (c->now - c->stamp) / c->recovery;
    if (intervals >= (int64_t)c->count) {
        c->count = 0;
        c->stamp = 0;
        return;
    }
    c->count -= (unsigned)intervals;
    c->stamp += intervals * (int64_t)c->recovery;
}

/* Reads the counter of c->kind and its stamp, expired failures taken off
 * (c->now: the clock, read here on the first call); 0 for a token the
 * catalog does not know. */
static storage_rc failures_read_txn(storage_catalog *cat, void *ctx)
{
    struct failures_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, read_sql[c->kind], &st);
    int step;

    c->count = 0;
    c->stamp = 0;
    if (c->now == 0) {
        c->now = catalog_now(); /* once per transaction: reads agree */
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 0);
        c->count = n < 0 ? 0 : n > (int64_t)UINT_MAX ? UINT_MAX : (unsigned)n;
        c->stamp = sqlite3_column_int64(st, 1);
        failures_expire(c);
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Writes c->count and c->stamp (creating the token's row when missing). */
static storage_rc failures_write_locked(storage_catalog *cat, struct failures_ctx *c)
{
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat, write_sql[c->kind], &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_int64(st, 2, (int64_t)c->count);
    sqlite3_bind_int64(st, 3, c->count > 0 ? c->stamp : 0);
    rc = catalog_exec_stmt_locked(st);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Adds one to, takes one from, or clears the counter of c->kind as read
 * (failures_read_txn, expired ones off) and writes it with its stamp: the
 * first failure starts the recovery interval now. */
static storage_rc failures_change_locked(storage_catalog *cat, struct failures_ctx *c, change how)
{
    storage_rc rc = failures_read_txn(cat, c);

    if (rc != STORAGE_OK) {
        return rc;
    }
    if (how == CHANGE_ADD) {
        if (c->count == 0) {
            c->stamp = c->now;
        }
        c->count += c->count < UINT_MAX ? 1 : 0;
    } else if (how == CHANGE_SUB) {
        c->count -= c->count > 0 ? 1 : 0;
    } else {
        c->count = 0;
    }
    return failures_write_locked(cat, c);
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

/* See storage.h. The stored count: no failure expires here. */
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

/* See storage.h. */
storage_rc storage_pin_counter(storage_catalog *cat, const char *token, storage_pin_kind kind,
                               unsigned recovery, storage_pin_count *out)
{
    struct failures_ctx c = {.token = token, .kind = kind, .recovery = recovery};
    storage_rc rc;

    if (cat == NULL || token == NULL || out == NULL || !kind_valid(kind)) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, failures_read_txn, &c);
    if (rc != STORAGE_OK) {
        return rc;
    }
    out->failures = c.count;
    out->clock_behind = c.count > 0 && c.now < c.stamp;
    out->next_expiry = c.count > 0 && recovery > 0 ? c.stamp + (int64_t)recovery : 0;
    out->now = c.now;
    return STORAGE_OK;
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

/* Reads the counter (expired failures off) and, below the limit, adds one
 * (see above). At the limit nothing is written: expiry is recomputed from
 * the same stamp at the next read. */
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
                                 unsigned max, unsigned recovery, unsigned *count)
{
    struct failures_ctx c = {.token = token, .kind = kind, .max = max, .recovery = recovery};
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
 * and audits the other failures it held, if any. No failure expires here
 * (c->recovery is 0): taking one off the stored count with the stamp kept
 * leaves the same counter once expiry is applied. */
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
