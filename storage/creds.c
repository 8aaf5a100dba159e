/*
 * creds.c - layer credentials that drift: a credential the backend
 * refused is marked stale and never presented again until it is sealed
 * anew; the lock that keeps two processes from presenting one credential
 * at once; the layers each view's last login left out.
 *
 * A changed backend PIN must cost at most one wrong try, whatever the
 * number of processes: the engine presents a credential only while it
 * holds that credential's lock (storage_cred_lock), after reading its
 * stale mark afresh (storage_cred_is_stale), and marks it stale before
 * letting go when the backend refuses it. The lock is an open file
 * description lock on one byte of "<catalog>.creds" chosen by a hash of
 * (token, view, layer): no SQLite lock is held while a backend runs, and
 * a process that dies releases it. A child forked while a lock is held
 * closes its inherited copy at once (pthread_atfork), so the lock stays
 * the parent's alone and is free when the parent lets go.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_SLOTS 65521u /* byte offsets of the lock file (a prime) */

/* The id of (token, view)'s view row: STORAGE_OK, STORAGE_ERR_NOT_FOUND.
 * Expects the lock held. */
static storage_rc view_id_locked(storage_catalog *cat, const char *token, const char *view,
                                 int64_t *id)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat,
                                           "SELECT v.id FROM views v JOIN tokens t ON t.id ="
                                           " v.token_id WHERE t.label = ?1 AND v.name = ?2",
                                           &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, view, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
    }
    rc = step == SQLITE_ROW    ? STORAGE_OK
         : step == SQLITE_DONE ? STORAGE_ERR_NOT_FOUND
                               : catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------------
 * Stale marks
 * ------------------------------------------------------------------ */

struct stale_ctx {
    const char *token, *view, *layer;
    const char *reason; /* mark: the backend's answer */
    bool stale;         /* read: out */
    char *subject;      /* mark: audit subject */
};

static storage_rc stale_read_txn(storage_catalog *cat, void *ctx)
{
    struct stale_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t view_id = 0;
    storage_rc rc = view_id_locked(cat, c->token, c->view, &view_id);
    int step;

    c->stale = false;
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(
        cat, "SELECT stale_at IS NOT NULL FROM creds WHERE view_id = ?1 AND layer = ?2", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, view_id);
    sqlite3_bind_text(st, 2, c->layer, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        c->stale = sqlite3_column_int(st, 0) != 0;
    }
    rc = step == SQLITE_ROW    ? STORAGE_OK
         : step == SQLITE_DONE ? STORAGE_ERR_NOT_FOUND
                               : catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. One indexed read. STORAGE_OK and *stale;
 * STORAGE_ERR_NOT_FOUND (no such view or credential); STORAGE_ERR_ARGS;
 * or the read's failure. */
storage_rc storage_cred_is_stale(storage_catalog *cat, const char *token, const char *view,
                                 const char *layer, bool *stale)
{
    struct stale_ctx c = {.token = token, .view = view, .layer = layer};
    storage_rc rc;

    if (cat == NULL || token == NULL || view == NULL || layer == NULL || stale == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_read(cat, stale_read_txn, &c);
    *stale = rc == STORAGE_OK && c.stale;
    return rc;
}

static storage_rc stale_mark_txn(storage_catalog *cat, void *ctx)
{
    struct stale_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t view_id = 0;
    storage_rc rc = view_id_locked(cat, c->token, c->view, &view_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat,
                                "UPDATE creds SET stale_at = ?3, stale_reason = ?4"
                                " WHERE view_id = ?1 AND layer = ?2 AND stale_at IS NULL",
                                &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, view_id);
    sqlite3_bind_text(st, 2, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, catalog_now());
    sqlite3_bind_text(st, 4, c->reason, -1, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK && sqlite3_changes(cat->db) > 0) {
        rc = catalog_audit_locked(cat, "cred-stale", c->subject, c->reason);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. A credential already stale keeps its first mark (no
 * second audit row). STORAGE_OK; STORAGE_ERR_NOT_FOUND (no such view);
 * STORAGE_ERR_ARGS; STORAGE_ERR_READ_ONLY; STORAGE_ERR_NOMEM;
 * STORAGE_ERR_BUSY. */
storage_rc storage_cred_mark_stale(storage_catalog *cat, const char *token, const char *view,
                                   const char *layer, const char *reason)
{
    struct stale_ctx c = {.token = token, .view = view, .layer = layer, .reason = reason};
    storage_rc rc;

    if (cat == NULL || token == NULL || view == NULL || layer == NULL || reason == NULL) {
        return STORAGE_ERR_ARGS;
    }
    if (asprintf(&c.subject, "%s/%s/%s", token, view, layer) < 0) {
        return STORAGE_ERR_NOMEM;
    }
    rc = catalog_write(cat, stale_mark_txn, &c);
    free(c.subject);
    return rc;
}

/* ---------------------------------------------------------------------
 * Listing (strata status, strata views)
 * ------------------------------------------------------------------ */

/* Fills one storage_cred_info from a row of the query below. */
static storage_rc cred_fill(sqlite3_stmt *st, void *item)
{
    storage_cred_info *info = item;

    snprintf(info->view, sizeof(info->view), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(info->layer, sizeof(info->layer), "%s", (const char *)sqlite3_column_text(st, 1));
    info->stale = sqlite3_column_type(st, 2) != SQLITE_NULL;
    info->stale_at = sqlite3_column_int64(st, 2);
    if (info->stale && sqlite3_column_type(st, 3) == SQLITE_TEXT) {
        snprintf(info->reason, sizeof(info->reason), "%s",
                 (const char *)sqlite3_column_text(st, 3));
    }
    return STORAGE_OK;
}

/* See storage.h. One snapshot; fn runs after it with no lock held.
 * STORAGE_OK (also for an unknown token); STORAGE_ERR_ARGS;
 * STORAGE_ERR_NOMEM; or the read's failure. */
storage_rc storage_creds_list(storage_catalog *cat, const char *token,
                              void (*fn)(void *ctx, const storage_cred_info *info), void *ctx)
{
    storage_cred_info *items = NULL;
    size_t n = 0;
    storage_rc rc;

    if (cat == NULL || token == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_rows_read(cat,
                           "SELECT v.name, c.layer, c.stale_at, c.stale_reason FROM creds c"
                           " JOIN views v ON v.id = c.view_id JOIN tokens t ON t.id = v.token_id"
                           " WHERE t.label = ?1 ORDER BY v.name, c.position",
                           token, sizeof(*items), cred_fill, (void **)&items, &n);
    for (size_t i = 0; rc == STORAGE_OK && i < n; i++) {
        fn(ctx, &items[i]);
    }
    free(items);
    return rc;
}

/* ---------------------------------------------------------------------
 * Sealing one credential anew (strata enroll --layer)
 * ------------------------------------------------------------------ */

struct reseal_ctx {
    const storage_login *login;
    const char *layer;
    const unsigned char *nonce;
    const unsigned char *sealed;
    size_t len;
    char *subject;
};

static storage_rc reseal_txn(storage_catalog *cat, void *ctx)
{
    struct reseal_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t view_id = 0;
    storage_rc rc = view_id_locked(cat, c->login->token, c->login->view, &view_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    /* A layer new to the view goes after the others. */
    rc =
        catalog_prepare_locked(cat,
                               "INSERT INTO creds (view_id, layer, position, nonce, sealed)"
                               " VALUES (?1, ?2, (SELECT coalesce(max(position), -1) + 1 FROM creds"
                               " WHERE view_id = ?1), ?3, ?4)"
                               " ON CONFLICT (view_id, layer) DO UPDATE SET nonce = excluded.nonce,"
                               " sealed = excluded.sealed, stale_at = NULL, stale_reason = NULL",
                               &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, view_id);
    sqlite3_bind_text(st, 2, c->layer, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, c->nonce, SECRETS_NONCE_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, c->sealed, (int)c->len, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
    if (rc == STORAGE_OK) {
        rc = catalog_audit_locked(cat, "enroll-layer", c->subject, "ok");
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. Seals pin under the login's wrapping key bound to
 * (token, view, layer), exactly as storage_view_enroll does, and replaces
 * (or adds) that one row in one transaction, clearing its stale mark.
 * STORAGE_OK; STORAGE_ERR_ARGS; STORAGE_ERR_NOT_FOUND (the view was
 * removed meanwhile); STORAGE_ERR_READ_ONLY; STORAGE_ERR_NOMEM;
 * STORAGE_ERR_BUSY. */
storage_rc storage_cred_reseal(storage_catalog *cat, const storage_login *login, const char *layer,
                               const char *pin, size_t pin_len)
{
    unsigned char nonce[SECRETS_NONCE_BYTES];
    struct reseal_ctx c = {.login = login, .layer = layer, .nonce = nonce};
    unsigned char *sealed = NULL;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (cat == NULL || login == NULL || layer == NULL || layer[0] == '\0' ||
        (pin == NULL && pin_len > 0)) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    c.len = pin_len + SECRETS_MAC_BYTES;
    sealed = malloc(c.len);
    if (sealed == NULL || asprintf(&c.subject, "%s/%s/%s", login->token, login->view, layer) < 0) {
        c.subject = NULL;
        goto out;
    }
    rc = secrets_seal(login->wrap, PURPOSE_CRED, login->token, login->view, layer, pin, pin_len,
                      nonce, sealed);
    if (rc != STORAGE_OK) {
        goto out;
    }
    c.sealed = sealed;
    rc = catalog_write(cat, reseal_txn, &c);
out:
    free(sealed);
    free(c.subject);
    return rc;
}

/* ---------------------------------------------------------------------
 * The credential lock (between processes)
 * ------------------------------------------------------------------ */

/* FNV-1a over the three names, NUL-separated. */
static uint32_t lock_hash(const char *token, const char *view, const char *layer)
{
    const char *parts[] = {token, view, layer};
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p != '\0'; p++) {
            h = (h ^ *p) * 16777619u;
        }
        h = (h ^ 0u) * 16777619u;
    }
    return h;
}

/* The lock files' descriptors this process holds, so that a forked
 * child can close its inherited copies (their locks belong to the open
 * file description, which the copies share). */
#define HELD_MAX 64
static int held[HELD_MAX];
static size_t n_held;
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;

/* In a forked child: closes the copies (single-threaded there). */
static void held_close_in_child(void)
{
    for (size_t i = 0; i < n_held; i++) {
        close(held[i]);
    }
    n_held = 0;
    pthread_mutex_init(&held_lock, NULL);
}

/* pthread_atfork around fork(): no thread changes the list meanwhile. */
static void held_prepare(void)
{
    pthread_mutex_lock(&held_lock);
}

static void held_parent(void)
{
    pthread_mutex_unlock(&held_lock);
}

static void held_register(void)
{
    (void)pthread_atfork(held_prepare, held_parent, held_close_in_child);
}

/* Opens path and adds the descriptor to the list, under the list's
 * lock so that no fork() sees the descriptor unlisted. Returns it, or -1
 * (errno set; EMFILE when the list is full). */
static int held_open(const char *path)
{
    int fd = -1;

    pthread_once(&held_once, held_register);
    pthread_mutex_lock(&held_lock);
    if (n_held < HELD_MAX) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            held[n_held++] = fd;
        }
    } else {
        errno = EMFILE;
    }
    pthread_mutex_unlock(&held_lock);
    return fd;
}

/* Closes fd and takes it off the list, under the list's lock. */
static void held_close(int fd)
{
    pthread_mutex_lock(&held_lock);
    for (size_t i = 0; i < n_held; i++) {
        if (held[i] == fd) {
            held[i] = held[--n_held];
            break;
        }
    }
    close(fd);
    pthread_mutex_unlock(&held_lock);
}

/* See storage.h. Blocks until no other process (or open of the lock
 * file) holds the same credential's lock. STORAGE_OK with *guard set;
 * STORAGE_ERR_READ_ONLY when the lock file cannot be opened for writing
 * (a catalog this user cannot write: nothing could be marked anyway);
 * STORAGE_ERR_IO when locking fails; STORAGE_ERR_ARGS; STORAGE_ERR_NOMEM. */
storage_rc storage_cred_lock(storage_catalog *cat, const char *token, const char *view,
                             const char *layer, storage_cred_guard *guard)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1};
    char *path = NULL;
    int fd = -1, r;
    storage_rc rc = STORAGE_ERR_ARGS;

    if (guard != NULL) {
        guard->fd = -1;
    }
    if (cat == NULL || token == NULL || view == NULL || layer == NULL || guard == NULL) {
        goto out;
    }
    rc = STORAGE_ERR_READ_ONLY;
    if (cat->read_only) {
        goto out;
    }
    rc = STORAGE_ERR_NOMEM;
    if (asprintf(&path, "%s.creds", cat->path) < 0) {
        path = NULL;
        goto out;
    }
    fd = held_open(path);
    rc = fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM) ? STORAGE_ERR_READ_ONLY
                                                                         : STORAGE_ERR_IO;
    if (fd < 0) {
        goto out;
    }
    fl.l_start = (off_t)(lock_hash(token, view, layer) % LOCK_SLOTS);
    do {
        r = fcntl(fd, F_OFD_SETLKW, &fl);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        goto out;
    }
    guard->fd = fd;
    fd = -1;
    rc = STORAGE_OK;
out:
    if (fd >= 0) {
        held_close(fd);
    }
    free(path);
    return rc;
}

/* See storage.h: closing the file description releases its lock. */
void storage_cred_unlock(storage_cred_guard *guard)
{
    if (guard != NULL && guard->fd >= 0) {
        held_close(guard->fd);
        guard->fd = -1;
    }
}

/* ---------------------------------------------------------------------
 * Layers a login left out
 * ------------------------------------------------------------------ */

struct left_ctx {
    const char *token, *view;
    const storage_left_out *items;
    size_t n;
    int64_t had; /* read: rows of the view now */
};

static storage_rc left_count_txn(storage_catalog *cat, void *ctx)
{
    struct left_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat,
                                           "SELECT count(*) FROM left_out l JOIN tokens t ON t.id ="
                                           " l.token_id WHERE t.label = ?1 AND l.view = ?2",
                                           &st);
    int step;

    c->had = 0;
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_text(st, 1, c->token, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        c->had = sqlite3_column_int64(st, 0);
    }
    rc = catalog_rc(step);
out:
    sqlite3_finalize(st);
    return rc;
}

static storage_rc left_write_txn(storage_catalog *cat, void *ctx)
{
    struct left_ctx *c = ctx;
    sqlite3_stmt *st = NULL;
    int64_t token_id = 0;
    storage_rc rc = catalog_token_id_locked(cat, c->token, &token_id);

    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = catalog_prepare_locked(cat, "DELETE FROM left_out WHERE token_id = ?1 AND view = ?2", &st);
    if (rc != STORAGE_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, token_id);
    sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
    rc = catalog_exec_stmt_locked(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != STORAGE_OK || c->n == 0) {
        goto out;
    }
    rc =
        catalog_prepare_locked(cat,
                               "INSERT OR REPLACE INTO left_out (token_id, view, layer, reason, at)"
                               " VALUES (?1, ?2, ?3, ?4, ?5)",
                               &st);
    for (size_t i = 0; i < c->n && rc == STORAGE_OK; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, token_id);
        sqlite3_bind_text(st, 2, c->view, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, c->items[i].layer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, c->items[i].reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, catalog_now());
        rc = catalog_exec_stmt_locked(st);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* See storage.h. A login that leaves nothing out after one that left
 * nothing out costs one read and no write. STORAGE_OK; STORAGE_ERR_ARGS;
 * STORAGE_ERR_READ_ONLY; STORAGE_ERR_NOMEM; STORAGE_ERR_BUSY. */
storage_rc storage_login_left_out(storage_catalog *cat, const char *token, const char *view,
                                  const storage_left_out *items, size_t n)
{
    struct left_ctx c = {.token = token, .view = view, .items = items, .n = n};
    storage_rc rc;

    if (cat == NULL || token == NULL || view == NULL || (items == NULL && n > 0)) {
        return STORAGE_ERR_ARGS;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].layer[0] == '\0') {
            return STORAGE_ERR_ARGS;
        }
    }
    rc = catalog_read(cat, left_count_txn, &c);
    if (rc != STORAGE_OK || (c.had == 0 && n == 0)) {
        return rc;
    }
    return catalog_write(cat, left_write_txn, &c);
}

/* Fills one storage_left_out from a row of the query below. */
static storage_rc left_fill(sqlite3_stmt *st, void *out)
{
    storage_left_out *item = out;

    snprintf(item->view, sizeof(item->view), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(item->layer, sizeof(item->layer), "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(item->reason, sizeof(item->reason), "%s", (const char *)sqlite3_column_text(st, 2));
    item->at = sqlite3_column_int64(st, 3);
    return STORAGE_OK;
}

/* See storage.h. One snapshot; fn runs after it with no lock held.
 * STORAGE_OK; STORAGE_ERR_ARGS; STORAGE_ERR_NOMEM; or the read's failure. */
storage_rc storage_left_out_list(storage_catalog *cat, const char *token,
                                 void (*fn)(void *ctx, const storage_left_out *item), void *ctx)
{
    storage_left_out *items = NULL;
    size_t n = 0;
    storage_rc rc;

    if (cat == NULL || token == NULL || fn == NULL) {
        return STORAGE_ERR_ARGS;
    }
    rc = catalog_rows_read(cat,
                           "SELECT l.view, l.layer, l.reason, l.at FROM left_out l"
                           " JOIN tokens t ON t.id = l.token_id WHERE t.label = ?1"
                           " ORDER BY l.view, l.layer",
                           token, sizeof(*items), left_fill, (void **)&items, &n);
    for (size_t i = 0; rc == STORAGE_OK && i < n; i++) {
        fn(ctx, &items[i]);
    }
    free(items);
    return rc;
}
