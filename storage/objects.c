/*
 * objects.c - object identities, their stable virtual handles, whiteouts.
 *
 * A handle is a random number in [1, 0x7fffffff] (libsodium's
 * randombytes), so that the numbers a view sees say nothing of how many
 * objects other views made. It is drawn again while the token's catalog
 * has ever bound it: a live row holds it, or the tombstone a forgotten
 * identity leaves (its row kept with layer '' and the handle as identity,
 * which no lookup or load matches), or it lies below tokens.next_handle,
 * the counter older catalogs handed numbers out from. So a number is never
 * given to a second object. Lookups of known identities are plain reads;
 * only unknown identities cost a write transaction, which re-checks each
 * identity under the write lock so that two processes assigning at once
 * agree.
 *
 * The load functions read everything in one snapshot, then call the
 * caller's function with no storage lock held.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct handles_ctx {
    const char *token, *layer;
    const void *const *identities;
    const size_t *lens;
    size_t n;
    CK_OBJECT_HANDLE *handles; /* 0 = not known yet */
    size_t missing;            /* how many are still 0 */
};

/* Looks up every identity still without a handle; counts the rest. */
static storage_rc handles_lookup_locked(storage_catalog *cat, struct handles_ctx *c,
                                        int64_t token_id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(
        cat, "SELECT handle FROM objects WHERE token_id = ?1 AND layer = ?2 AND identity = ?3",
        &st);
    int step;

    c->missing = 0;
    for (size_t i = 0; i < c->n && rc == STORAGE_OK; i++) {
        if (c->handles[i] != CK_INVALID_HANDLE) {
            continue;
        }
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, token_id);
        sqlite3_bind_text(st, 2, c->layer, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, c->identities[i], (int)c->lens[i], SQLITE_STATIC);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            c->handles[i] = (CK_OBJECT_HANDLE)sqlite3_column_int64(st, 0);
        } else if (step == SQLITE_DONE) {
            c->missing++;
        } else {
            rc = catalog_rc(step);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static storage_rc handles_read_txn(storage_catalog *cat, void *ctx)
{
    struct handles_ctx *c = ctx;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, c->token, &token_id);

    if (rc == STORAGE_ERR_NOT_FOUND) {
        c->missing = c->n;
        return STORAGE_OK;
    }
    return rc == STORAGE_OK ? handles_lookup_locked(cat, c, token_id) : rc;
}

#define HANDLE_DRAWS 64 /* draws before giving up: ~2^31 numbers, few bound */

/* Draws a handle the token's catalog never bound into *out, with used
 * (?1 token, ?2 handle: a row when bound or below the old counter). */
static storage_rc handle_draw_locked(sqlite3_stmt *used, int64_t token_id, int64_t *out)
{
    for (int i = 0; i < HANDLE_DRAWS; i++) {
        int64_t h = 1 + (int64_t)randombytes_uniform(0x7fffffffU);
        int step;
        sqlite3_reset(used);
        sqlite3_bind_int64(used, 1, token_id);
        sqlite3_bind_int64(used, 2, h);
        step = sqlite3_step(used);
        sqlite3_reset(used);
        if (step == SQLITE_DONE) {
            *out = h;
            return STORAGE_OK;
        }
        if (step != SQLITE_ROW) {
            return catalog_rc(step);
        }
    }
    return STORAGE_ERR_INTERNAL;
}

/* Assigns a fresh random handle of the token to identity i. */
static storage_rc handle_assign_locked(storage_catalog *cat, struct handles_ctx *c,
                                       int64_t token_id, sqlite3_stmt *used, sqlite3_stmt *insert,
                                       size_t i)
{
    int64_t handle = 0;
    storage_rc rc = handle_draw_locked(used, token_id, &handle);

    (void)cat;
    if (rc != STORAGE_OK) {
        return rc;
    }
    sqlite3_reset(insert);
    sqlite3_bind_int64(insert, 1, token_id);
    sqlite3_bind_text(insert, 2, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_blob(insert, 3, c->identities[i], (int)c->lens[i], SQLITE_STATIC);
    sqlite3_bind_int64(insert, 4, handle);
    sqlite3_bind_int64(insert, 5, catalog_now());
    rc = catalog_exec_stmt_locked(insert);
    if (rc == STORAGE_OK) {
        c->handles[i] = (CK_OBJECT_HANDLE)handle;
    }
    return rc;
}

/* The write transaction: re-reads under the write lock, then assigns a
 * handle to each identity still unknown (a repeated identity in the batch
 * gets the handle its first occurrence got). */
static storage_rc handles_write_txn(storage_catalog *cat, void *ctx)
{
    struct handles_ctx *c = ctx;
    sqlite3_stmt *used = NULL, *insert = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->token, &token_id);

    if (rc == STORAGE_OK) {
        rc = handles_lookup_locked(cat, c, token_id);
    }
    if (rc != STORAGE_OK || c->missing == 0) {
        goto out;
    }
    rc =
        catalog_prepare_locked(cat,
                               "SELECT 1 FROM objects WHERE token_id = ?1 AND handle = ?2"
                               " UNION ALL SELECT 1 FROM tokens WHERE id = ?1 AND next_handle > ?2",
                               &used);
    if (rc == STORAGE_OK) {
        rc = catalog_prepare_locked(cat,
                                    "INSERT INTO objects (token_id, layer, identity, handle,"
                                    " created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                                    &insert);
    }
    for (size_t i = 0; i < c->n && rc == STORAGE_OK; i++) {
        if (c->handles[i] != CK_INVALID_HANDLE) {
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (c->lens[j] == c->lens[i] &&
                memcmp(c->identities[j], c->identities[i], c->lens[i]) == 0) {
                c->handles[i] = c->handles[j];
                break;
            }
        }
        if (c->handles[i] == CK_INVALID_HANDLE) {
            rc = handle_assign_locked(cat, c, token_id, used, insert, i);
        }
    }
out:
    sqlite3_finalize(used);
    sqlite3_finalize(insert);
    return rc;
}

/* See storage.h. Known identities cost one read (and work on a read-only
 * catalog); unknown ones one write transaction for the whole batch.
 * STORAGE_OK with every handles[i] set; STORAGE_ERR_ARGS (an empty
 * identity); STORAGE_ERR_READ_ONLY (an unknown identity on a read-only
 * catalog); STORAGE_ERR_BUSY; STORAGE_ERR_NOMEM. On failure handles[] is
 * all CK_INVALID_HANDLE. */
storage_rc storage_object_handles(storage_catalog *cat, const char *token, const char *layer,
                                  const void *const *identities, const size_t *identity_lens,
                                  size_t n, CK_OBJECT_HANDLE *handles)
{
    struct handles_ctx c = {token, layer, identities, identity_lens, n, handles, 0};
    storage_rc rc = STORAGE_ERR_ARGS;

    if (cat == NULL || token == NULL || token[0] == '\0' || layer == NULL || layer[0] == '\0' ||
        (n > 0 && (identities == NULL || identity_lens == NULL || handles == NULL))) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        handles[i] = CK_INVALID_HANDLE;
        if (identities[i] == NULL || identity_lens[i] == 0 || identity_lens[i] > INT32_MAX) {
            return rc;
        }
    }
    if (n == 0) {
        return STORAGE_OK;
    }
    rc = catalog_read(cat, handles_read_txn, &c);
    if (rc == STORAGE_OK && c.missing > 0) {
        rc = catalog_write(cat, handles_write_txn, &c);
    }
    if (rc != STORAGE_OK) {
        memset(handles, 0, n * sizeof(*handles));
    }
    return rc;
}

storage_rc storage_object_handle(storage_catalog *cat, const char *token, const char *layer,
                                 const void *identity, size_t identity_len, CK_OBJECT_HANDLE *out)
{
    const void *ids[1] = {identity};
    size_t lens[1] = {identity_len};

    if (out == NULL) {
        return STORAGE_ERR_ARGS;
    }
    return storage_object_handles(cat, token, layer, ids, lens, 1, out);
}

/* ---------------------------------------------------------------------
 * Loading (objects and whiteouts share the row shape)
 * ------------------------------------------------------------------ */

typedef struct {
    char *layer;
    void *identity;
    size_t len;
    CK_OBJECT_HANDLE handle;
} object_row;

struct load_ctx {
    const char *sql; /* ?1 = token label, ?2 = view (whiteouts) */
    const char *token, *view;
    object_row *rows;
    size_t n;
};

static storage_rc load_row(sqlite3_stmt *st, object_row *r)
{
    int len = sqlite3_column_bytes(st, 1);
    const void *blob = sqlite3_column_blob(st, 1);

    r->layer = strdup((const char *)sqlite3_column_text(st, 0));
    r->identity = malloc(len > 0 ? (size_t)len : 1);
    if (r->layer == NULL || r->identity == NULL) {
        return STORAGE_ERR_NOMEM;
    }
    if (len > 0) {
        memcpy(r->identity, blob, (size_t)len);
    }
    r->len = (size_t)len;
    r->handle = (CK_OBJECT_HANDLE)sqlite3_column_int64(st, 2);
    return STORAGE_OK;
}

static storage_rc load_txn(storage_catalog *cat, void *ctx)
{
    struct load_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int step = SQLITE_DONE;
    storage_rc rc = catalog_prepare_locked(cat, c->sql, &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    if (c->view != NULL) {
        sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    }
    while (rc == STORAGE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->n == cap) {
            cap = cap > 0 ? cap * 2 : 64;
            object_row *more = realloc(c->rows, cap * sizeof(*more));
            if (more == NULL) {
                rc = STORAGE_ERR_NOMEM;
                break;
            }
            c->rows = more;
        }
        memset(&c->rows[c->n], 0, sizeof(c->rows[c->n]));
        rc = load_row(st, &c->rows[c->n]);
        c->n++;
    }
    if (rc == STORAGE_OK) {
        rc = catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    /* A bulk read fills the page cache with pages no hot path reads
     * again (lookups are in the engine's memory): give them back now
     * rather than keep up to the cache's size for the process's life. */
    sqlite3_db_release_memory(cat->db);
    return rc;
}

/* Reads with c->sql, then calls fn for each row with no lock held. */
static storage_rc load(storage_catalog *cat, struct load_ctx *c, storage_object_fn fn, void *ctx)
{
    storage_rc rc = catalog_read(cat, load_txn, c);

    for (size_t i = 0; rc == STORAGE_OK && i < c->n; i++) {
        fn(ctx, c->rows[i].layer, c->rows[i].identity, c->rows[i].len, c->rows[i].handle);
    }
    for (size_t i = 0; i < c->n; i++) {
        free(c->rows[i].layer);
        free(c->rows[i].identity);
    }
    free(c->rows);
    return rc;
}

/* See storage.h. Rows come in handle order. STORAGE_OK (also for an
 * unknown token), STORAGE_ERR_ARGS, STORAGE_ERR_NOMEM, or the read's
 * failure (then fn was not called). */
storage_rc storage_objects_load(storage_catalog *cat, const char *token, storage_object_fn fn,
                                void *ctx)
{
    struct load_ctx c = {
        "SELECT o.layer, o.identity, o.handle FROM objects o JOIN tokens t ON t.id = o.token_id"
        " WHERE t.label = ?1 AND o.layer <> '' ORDER BY o.handle",
        token, NULL, NULL, 0};

    if (cat == NULL || token == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    return load(cat, &c, fn, ctx);
}

/* ---------------------------------------------------------------------
 * Forgetting
 * ------------------------------------------------------------------ */

/* One row of (token, layer, from) changed: moved to identity to, or
 * (to NULL) made a tombstone, which keeps the row with a layer and an
 * identity no lookup matches, so that its handle is never drawn again. */
struct row_ctx {
    const char *token, *layer;
    const void *from, *to;
    size_t from_len, to_len;
};

static storage_rc row_txn(storage_catalog *cat, void *ctx)
{
    struct row_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                c->to != NULL
                                    ? "UPDATE objects SET identity = ?4"
                                      " WHERE token_id = ?1 AND layer = ?2 AND identity = ?3"
                                    : "UPDATE objects SET layer = '', identity = CAST(handle AS "
                                      "TEXT) WHERE token_id = ?1 AND layer = ?2 AND identity = ?3",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, c->from, (int)c->from_len, SQLITE_STATIC);
    if (c->to != NULL) {
        sqlite3_bind_blob(st, 4, c->to, (int)c->to_len, SQLITE_STATIC);
    }
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK && sqlite3_changes(cat->db) == 0) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. The handle is retired for good (the row's tombstone).
 * STORAGE_OK; STORAGE_ERR_NOT_FOUND when the identity was not recorded;
 * STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY. */
storage_rc storage_object_forget(storage_catalog *cat, const char *token, const char *layer,
                                 const void *identity, size_t identity_len)
{
    struct row_ctx c = {token, layer, identity, NULL, identity_len, 0};

    if (cat == NULL || token == NULL || layer == NULL || identity == NULL || identity_len == 0 ||
        identity_len > INT32_MAX) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, row_txn, &c);
}

/* See storage.h. STORAGE_OK; STORAGE_ERR_EXISTS when to is recorded
 * already (nothing changed); STORAGE_ERR_NOT_FOUND when from is not;
 * STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY; the write's failure. */
storage_rc storage_object_rename(storage_catalog *cat, const char *token, const char *layer,
                                 const void *from, size_t from_len, const void *to, size_t to_len)
{
    struct row_ctx c = {token, layer, from, to, from_len, to_len};

    if (cat == NULL || token == NULL || layer == NULL || layer[0] == '\0' || from == NULL ||
        to == NULL || from_len == 0 || to_len == 0 || from_len > INT32_MAX || to_len > INT32_MAX) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, row_txn, &c);
}

/* ---------------------------------------------------------------------
 * Whiteouts
 * ------------------------------------------------------------------ */

struct whiteout_ctx {
    const char *token, *view, *layer;
    const void *identity;
    size_t len;
};

static storage_rc whiteout_txn(storage_catalog *cat, void *ctx)
{
    struct whiteout_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                "INSERT OR IGNORE INTO whiteouts (token_id, view, layer, identity,"
                                " created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c->identity, (int)c->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, catalog_now());
    rc = catalog_exec_stmt_locked(st);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Records that view deleted identity of layer. Adding it twice is not an
 * error. STORAGE_OK, STORAGE_ERR_ARGS, STORAGE_ERR_READ_ONLY, or the
 * write's failure. */
storage_rc storage_whiteout_add(storage_catalog *cat, const char *token, const char *view,
                                const char *layer, const void *identity, size_t identity_len)
{
    struct whiteout_ctx c = {token, view, layer, identity, identity_len};

    if (cat == NULL || token == NULL || view == NULL || layer == NULL || identity == NULL ||
        identity_len == 0 || identity_len > INT32_MAX) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, whiteout_txn, &c);
}

/* Calls fn for each whiteout of (token, view), with the identity's virtual
 * handle when the catalog knows one (else CK_INVALID_HANDLE). fn runs with
 * no storage lock held. */
storage_rc storage_whiteouts_load(storage_catalog *cat, const char *token, const char *view,
                                  storage_object_fn fn, void *ctx)
{
    struct load_ctx c = {"SELECT w.layer, w.identity, coalesce(o.handle, 0) FROM whiteouts w"
                         " JOIN tokens t ON t.id = w.token_id"
                         " LEFT JOIN objects o ON o.token_id = w.token_id AND o.layer = w.layer"
                         "  AND o.identity = w.identity"
                         " WHERE t.label = ?1 AND w.view = ?2 ORDER BY w.layer, w.identity",
                         token, view, NULL, 0};

    if (cat == NULL || token == NULL || view == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    return load(cat, &c, fn, ctx);
}
