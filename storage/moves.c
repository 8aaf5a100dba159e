/*
 * moves.c - the journal of strata migrate, and forgetting a retired layer.
 *
 * One row per object moved from one layer to another for one view: the
 * source object's digest (the caller's: it names the object without
 * holding any of its secrets) and a state. The caller's protocol
 * (cli/migrate.c) makes a run killed at any point resumable:
 *   copying   a copy may exist on the target, unverified: the next run
 *             destroys what on the target answers the source's identity
 *             (which it checked held nothing before it began) and starts
 *             over;
 *   done      the copy is in place and was verified.
 * Each change of state is one write transaction, committed before the
 * caller touches the target again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const state_names[] = {"copying", "done"};

const char *storage_move_state_name(storage_move_state state)
{
    if ((size_t)state >= sizeof(state_names) / sizeof(state_names[0])) {
        return "unknown";
    }
    return state_names[state];
}

static bool state_parse(const char *text, storage_move_state *out)
{
    for (size_t i = 0; text != NULL && i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcmp(text, state_names[i]) == 0) {
            *out = (storage_move_state)i;
            return true;
        }
    }
    return false;
}

static bool key_valid(const storage_move_key *k)
{
    return k != NULL && k->token != NULL && k->view != NULL && k->from != NULL && k->to != NULL &&
           k->source != NULL && k->source_len > 0 && k->source_len <= 64;
}

struct move_ctx {
    const storage_move_key *key;
    storage_move *row; /* get: out; set: in */
    bool found;
};

/* Binds the key's columns as ?1 (token id) to ?5. */
static void bind_key(sqlite3_stmt *st, int64_t token_id, const storage_move_key *k)
{
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, k->view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->to, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, k->source, (int)k->source_len, SQLITE_STATIC);
}

static storage_rc get_txn(storage_catalog *cat, void *ctx)
{
    struct move_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    int step;
    storage_rc rc = catalog_token_id_locked(cat, c->key->token, &token_id);

    if (rc == STORAGE_ERR_NOT_FOUND) {
        return STORAGE_OK; /* c->found stays false */
    }
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                "SELECT state FROM moves WHERE token_id = ?1 AND view = ?2"
                                " AND from_layer = ?3 AND to_layer = ?4 AND source = ?5",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    bind_key(st, token_id, c->key);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (!state_parse((const char *)sqlite3_column_text(st, 0), &c->row->state)) {
            rc = STORAGE_ERR_NOT_CATALOG;
            goto out;
        }
        c->found = true;
        step = SQLITE_DONE;
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. */
storage_rc storage_move_get(storage_catalog *cat, const storage_move_key *key, storage_move *out)
{
    struct move_ctx c = {key, out, false};
    storage_rc rc;

    if (cat == NULL || !key_valid(key) || out == NULL) {
        return STORAGE_ERR_ARGS;
    }
    memset(out, 0, sizeof(*out));
    rc = catalog_read(cat, get_txn, &c);
    if (rc == STORAGE_OK && !c.found) {
        rc = STORAGE_ERR_NOT_FOUND;
    }
    return rc;
}

static storage_rc set_txn(storage_catalog *cat, void *ctx)
{
    struct move_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_ensure_locked(cat, c->key->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                "INSERT INTO moves (token_id, view, from_layer, to_layer, source,"
                                " state, summary, updated_at)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                                " ON CONFLICT (token_id, view, from_layer, to_layer, source)"
                                " DO UPDATE SET state = ?6, summary = ?7, updated_at = ?8",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    bind_key(st, token_id, c->key);
    sqlite3_bind_text(st, 6, storage_move_state_name(c->row->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, c->row->summary, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, catalog_now());
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK && c->row->state == STORAGE_MOVE_DONE) {
        char subject[300];
        snprintf(subject, sizeof(subject), "%s/%s: %s -> %s", c->key->token, c->key->view,
                 c->key->from, c->key->to);
        rc = catalog_audit_locked(cat, "migrate", subject, c->row->summary);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. */
storage_rc storage_move_set(storage_catalog *cat, const storage_move_key *key,
                            const storage_move *row)
{
    struct move_ctx c = {key, (storage_move *)row, false};

    if (cat == NULL || !key_valid(key) || row == NULL || (size_t)row->state > STORAGE_MOVE_DONE ||
        memchr(row->summary, '\0', sizeof(row->summary)) == NULL) {
        return STORAGE_ERR_ARGS;
    }
    return catalog_write(cat, set_txn, &c);
}

/* ---------------------------------------------------------------------
 * Forgetting a retired layer
 * ------------------------------------------------------------------ */

struct forget_ctx {
    const char *token, *layer;
    storage_layer_forgotten *counts;
};

/* Runs one DELETE (?1 token id, ?2 layer) and adds the rows it removed
 * to *count. */
static storage_rc delete_rows(storage_catalog *cat, const char *sql, int64_t token_id,
                              const char *layer, unsigned *count)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, sql, &st);

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, layer, -1, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK) {
        *count += (unsigned)sqlite3_changes(cat->db);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static storage_rc forget_txn(storage_catalog *cat, void *ctx)
{
    struct forget_ctx *c = ctx;
    storage_layer_forgotten *n = c->counts;
    int64_t token_id = 0;
    char outcome[160], subject[300];
    storage_rc rc = catalog_token_id_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        return rc;
    }
    rc = delete_rows(cat,
                     "DELETE FROM creds WHERE layer = ?2 AND view_id IN"
                     " (SELECT id FROM views WHERE token_id = ?1)",
                     token_id, c->layer, &n->creds);
    if (rc == STORAGE_OK) {
        rc = delete_rows(cat, "DELETE FROM objects WHERE token_id = ?1 AND layer = ?2", token_id,
                         c->layer, &n->objects);
    }
    if (rc == STORAGE_OK) {
        rc = delete_rows(cat, "DELETE FROM whiteouts WHERE token_id = ?1 AND layer = ?2", token_id,
                         c->layer, &n->whiteouts);
    }
    if (rc == STORAGE_OK) {
        rc = delete_rows(cat, "DELETE FROM left_out WHERE token_id = ?1 AND layer = ?2", token_id,
                         c->layer, &n->other);
    }
    if (rc == STORAGE_OK) {
        rc = delete_rows(cat, "DELETE FROM moves WHERE token_id = ?1 AND from_layer = ?2", token_id,
                         c->layer, &n->moves);
    }
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (n->creds + n->objects + n->whiteouts + n->other + n->moves == 0) {
        return STORAGE_ERR_NOT_FOUND;
    }
    snprintf(outcome, sizeof(outcome), "%u credentials, %u objects, %u whiteouts, %u moves",
             n->creds, n->objects, n->whiteouts, n->moves);
    snprintf(subject, sizeof(subject), "%s/%s", c->token, c->layer);
    return catalog_audit_locked(cat, "forget-layer", subject, outcome);
}

/* See storage.h. */
storage_rc storage_layer_forget(storage_catalog *cat, const char *token, const char *layer,
                                storage_layer_forgotten *counts)
{
    storage_layer_forgotten mine;
    struct forget_ctx c = {token, layer, counts != NULL ? counts : &mine};

    if (cat == NULL || token == NULL || layer == NULL || layer[0] == '\0') {
        return STORAGE_ERR_ARGS;
    }
    memset(c.counts, 0, sizeof(*c.counts));
    return catalog_write(cat, forget_txn, &c);
}
