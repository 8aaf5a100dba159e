/*
 * catalog.c - the SQLite catalog file: open, create, migrate, transactions,
 * virtual slot IDs and the audit trail.
 *
 * Versioning. The file's header carries two numbers SQLite reserves for
 * applications: PRAGMA application_id = STRATA_APP_ID marks the file as a
 * Strata catalog, and PRAGMA user_version is its schema version (0 for an
 * empty file). Both are read without parsing any table, so a newer or a
 * foreign file is recognised before anything is written. The table
 * `migrations` records when each step was applied; it is history, the
 * header's user_version is the authority. The schema is a list of
 * statements per step (migrations[] below, step i brings the file from
 * version i to i + 1); a step, its history row and the new user_version
 * commit in one BEGIN IMMEDIATE transaction, so a crash leaves the old
 * version or the new one, and two processes migrating at once apply each
 * step once.
 *
 * Opening never writes before it knows the file is ours and current: the
 * first 100 bytes are read with plain read(2) and checked for SQLite's
 * magic; then the connection reads sqlite_master and the two header
 * numbers. Only then is WAL mode switched on (a write) or the schema
 * migrated (with STORAGE_OPEN_CREATE).
 *
 * A file without any write permission bit is opened read-only even for
 * root, for whom chmod alone would not stop a write.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define STRATA_APP_ID   0x53747261 /* "Stra" */
#define BUSY_TIMEOUT_MS 5000

/* ---------------------------------------------------------------------
 * Schema
 * ------------------------------------------------------------------ */

/* Version 1: everything issues 2, 3 and 5 need. Tokens, views and the rows
 * below them are keyed by the token's label in the policy; whiteouts and
 * provisioned tokens name their view by name so that they outlive a
 * re-enrolment of the view. */
static const char *const schema_v1[] = {
    "CREATE TABLE migrations ("
    " version INTEGER PRIMARY KEY,"
    " applied_at INTEGER NOT NULL)",

    "CREATE TABLE slots ("
    " slot_id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused */
    " token_label TEXT NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL)",

    "CREATE TABLE tokens ("
    " id INTEGER PRIMARY KEY,"
    " label TEXT NOT NULL UNIQUE,"
    " kdf_salt BLOB," /* Argon2id salt, NULL until the first enrolment */
    " kdf_ops INTEGER,"
    " kdf_mem INTEGER,"
    " failed_logins INTEGER NOT NULL DEFAULT 0,"
    " next_handle INTEGER NOT NULL DEFAULT 1," /* virtual handles, never reused */
    " so_verifier TEXT,"                       /* crypto_pwhash_str of the SO PIN */
    " admin_public_key BLOB,"                  /* crypto_box key sealing SO PINs */
    " created_at INTEGER NOT NULL,"
    " CHECK ((kdf_salt IS NULL) = (kdf_ops IS NULL)"
    "    AND (kdf_ops IS NULL) = (kdf_mem IS NULL)))",

    "CREATE TABLE views ("
    " id INTEGER PRIMARY KEY,"
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " tag BLOB NOT NULL," /* BLAKE2b-keyed(K, \"strata-tag\") */
    " enrolled_at INTEGER NOT NULL,"
    " UNIQUE (token_id, name),"
    " UNIQUE (token_id, tag))",

    "CREATE TABLE creds ("
    " view_id INTEGER NOT NULL REFERENCES views(id) ON DELETE CASCADE,"
    " layer TEXT NOT NULL,"
    " position INTEGER NOT NULL," /* order given at enrolment */
    " nonce BLOB NOT NULL,"
    " sealed BLOB NOT NULL," /* secretbox under the per-row key */
    " PRIMARY KEY (view_id, layer))",

    "CREATE TABLE objects ("
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " layer TEXT NOT NULL,"
    " identity BLOB NOT NULL,"
    " handle INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (token_id, layer, identity),"
    " UNIQUE (token_id, handle))",

    "CREATE TABLE whiteouts ("
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " view TEXT NOT NULL,"
    " layer TEXT NOT NULL,"
    " identity BLOB NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " PRIMARY KEY (token_id, view, layer, identity))",

    "CREATE TABLE provisioned ("
    " id INTEGER PRIMARY KEY,"
    " token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
    " view TEXT NOT NULL,"
    " layer TEXT NOT NULL,"
    " module TEXT NOT NULL,"
    " serial TEXT,"
    " label TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " user_pin_nonce BLOB," /* user PIN sealed under the view's key */
    " user_pin_sealed BLOB,"
    " so_pin_nonce BLOB," /* SO PIN sealed under the view's key */
    " so_pin_sealed BLOB,"
    " so_pin_admin BLOB," /* SO PIN crypto_box_seal'ed to the administrator */
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " UNIQUE (token_id, view, layer))",

    "CREATE INDEX provisioned_serial ON provisioned (module, serial)",

    "CREATE TABLE audit ("
    " id INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " action TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " outcome TEXT NOT NULL)",

    NULL,
};

/* migrations[i] brings a file from version i to version i + 1. */
static const char *const *const migrations[] = {
    schema_v1,
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

int storage_schema_version(void)
{
    return SCHEMA_VERSION;
}

const char *storage_strerror(storage_rc rc)
{
    switch (rc) {
    case STORAGE_OK:
        return "success";
    case STORAGE_ERR_NOMEM:
        return "out of memory";
    case STORAGE_ERR_IO:
        return "input/output error";
    case STORAGE_ERR_NOT_CATALOG:
        return "not a Strata catalog";
    case STORAGE_ERR_TOO_NEW:
        return "catalog written by a newer Strata";
    case STORAGE_ERR_READ_ONLY:
        return "catalog is read-only";
    case STORAGE_ERR_NEEDS_INIT:
        return "catalog needs initialisation (strata init)";
    case STORAGE_ERR_BUSY:
        return "catalog is busy";
    case STORAGE_ERR_NOT_FOUND:
        return "not found";
    case STORAGE_ERR_EXISTS:
        return "already exists";
    case STORAGE_ERR_PIN_INCORRECT:
        return "PIN incorrect";
    case STORAGE_ERR_CRYPTO:
        return "sealed value does not open";
    case STORAGE_ERR_ARGS:
        return "bad arguments";
    case STORAGE_ERR_INTERNAL:
        return "internal error";
    }
    return "unknown error";
}

/* ---------------------------------------------------------------------
 * Connection helpers
 * ------------------------------------------------------------------ */

void catalog_lock(storage_catalog *cat)
{
    pthread_mutex_lock(&cat->lock);
}

void catalog_unlock(storage_catalog *cat)
{
    pthread_mutex_unlock(&cat->lock);
}

storage_rc catalog_rc(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return STORAGE_OK;
    case SQLITE_NOMEM:
        return STORAGE_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORAGE_ERR_BUSY;
    case SQLITE_READONLY:
        return STORAGE_ERR_READ_ONLY;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return STORAGE_ERR_NOT_CATALOG;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return STORAGE_ERR_IO;
    case SQLITE_CONSTRAINT:
        return STORAGE_ERR_EXISTS;
    default:
        return STORAGE_ERR_INTERNAL;
    }
}

storage_rc catalog_prepare_locked(storage_catalog *cat, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(cat->db, sql, -1, st, NULL);

    if (rc != SQLITE_OK) {
        sqlite3_finalize(*st);
        *st = NULL;
        return catalog_rc(rc);
    }
    return STORAGE_OK;
}

storage_rc catalog_exec_stmt_locked(sqlite3_stmt *st)
{
    int rc;

    do {
        rc = sqlite3_step(st);
    } while (rc == SQLITE_ROW);
    return catalog_rc(rc);
}

/* Runs one SQL text without results. Expects the lock held (or the
 * connection not yet shared). */
static storage_rc exec_locked(storage_catalog *cat, const char *sql)
{
    return catalog_rc(sqlite3_exec(cat->db, sql, NULL, NULL, NULL));
}

/* Runs fn between begin and COMMIT, rolling back on any failure. */
static storage_rc transaction(storage_catalog *cat, const char *begin, catalog_txn_fn fn, void *ctx)
{
    storage_rc rc;

    catalog_lock(cat);
    rc = exec_locked(cat, begin);
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = fn(cat, ctx);
    if (rc == STORAGE_OK) {
        rc = exec_locked(cat, "COMMIT");
    }
    if (rc != STORAGE_OK && !sqlite3_get_autocommit(cat->db)) {
        (void)exec_locked(cat, "ROLLBACK");
    }
out:
    catalog_unlock(cat);
    return rc;
}

storage_rc catalog_write(storage_catalog *cat, catalog_txn_fn fn, void *ctx)
{
    if (cat->read_only) {
        return STORAGE_ERR_READ_ONLY;
    }
    return transaction(cat, "BEGIN IMMEDIATE", fn, ctx);
}

storage_rc catalog_read(storage_catalog *cat, catalog_txn_fn fn, void *ctx)
{
    return transaction(cat, "BEGIN", fn, ctx);
}

int64_t catalog_now(void)
{
    return (int64_t)time(NULL);
}

/* Reads one integer that sql returns (a PRAGMA or a count). */
static storage_rc query_int_locked(storage_catalog *cat, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, sql, &st);
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = STORAGE_OK;
    } else {
        rc = step == SQLITE_DONE ? STORAGE_ERR_INTERNAL : catalog_rc(step);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------------
 * Opening
 * ------------------------------------------------------------------ */

static void report(char *err, size_t errsize, const char *path, const char *why)
{
    if (err != NULL && errsize > 0) {
        snprintf(err, errsize, "%s: %s", path != NULL ? path : "(no catalog path)", why);
    }
}

/* Creates the missing folders above path with mode 0700. STORAGE_OK or
 * STORAGE_ERR_IO. */
static storage_rc make_parents(const char *path)
{
    storage_rc rc = STORAGE_ERR_NOMEM;
    char *dir = strdup(path);
    char *slash;

    if (dir == NULL) {
        goto out;
    }
    slash = strrchr(dir, '/');
    rc = STORAGE_OK;
    if (slash == NULL || slash == dir) {
        goto out;
    }
    *slash = '\0';
    for (char *p = dir + 1; rc == STORAGE_OK; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end) {
            continue;
        }
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = STORAGE_ERR_IO;
        }
        if (end) {
            break;
        }
        *p = '/';
    }
out:
    free(dir);
    return rc;
}

/* Creates an empty file with mode 0600 (and its folders with 0700). A file
 * another process created meanwhile is fine. */
static storage_rc create_file(const char *path, const char **why)
{
    int fd;

    if (make_parents(path) != STORAGE_OK) {
        *why = "cannot create the catalog's folder";
        return STORAGE_ERR_IO;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return STORAGE_OK;
        }
        *why = "cannot create the file";
        return STORAGE_ERR_IO;
    }
    if (fchmod(fd, 0600) != 0) {
        close(fd);
        *why = "cannot set the file's mode to 0600";
        return STORAGE_ERR_IO;
    }
    close(fd);
    return STORAGE_OK;
}

/* Checks that an existing file is a regular file that starts like an SQLite
 * database (or is empty), without writing. *read_only is set when no write
 * is possible or allowed. */
static storage_rc check_file(const char *path, unsigned flags, bool *read_only, const char **why)
{
    static const char magic[16] = "SQLite format 3";
    unsigned char head[100];
    struct stat st;
    ssize_t n = 0, got;
    int fd;

    if (lstat(path, &st) != 0) {
        *why = "cannot read the file's status";
        return STORAGE_ERR_IO;
    }
    if (S_ISLNK(st.st_mode)) {
        *why = "is a symbolic link (refused)";
        return STORAGE_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return STORAGE_ERR_NOT_CATALOG;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot be read (permission denied?)";
        return STORAGE_ERR_IO;
    }
    while (n < (ssize_t)sizeof(head) && (got = read(fd, head + n, sizeof(head) - (size_t)n)) > 0) {
        n += got;
    }
    close(fd);
    if (n != 0 && (n < (ssize_t)sizeof(head) || memcmp(head, magic, sizeof(magic)) != 0)) {
        *why = "not a Strata catalog (not an SQLite database)";
        return STORAGE_ERR_NOT_CATALOG;
    }
    *read_only = (flags & STORAGE_OPEN_READ_ONLY) != 0 || (st.st_mode & 0222) == 0 ||
                 access(path, W_OK) != 0;
    return STORAGE_OK;
}

/* Finds the schema version of the open file without writing: 0 for an
 * empty database, the user_version of a Strata catalog, or
 * STORAGE_ERR_NOT_CATALOG for anything else. */
static storage_rc identify(storage_catalog *cat, int64_t *version, const char **why)
{
    int64_t tables = 0, app = 0, user = 0;
    storage_rc rc = query_int_locked(cat, "SELECT count(*) FROM sqlite_master", &tables);

    if (rc == STORAGE_OK) {
        rc = query_int_locked(cat, "PRAGMA application_id", &app);
    }
    if (rc == STORAGE_OK) {
        rc = query_int_locked(cat, "PRAGMA user_version", &user);
    }
    if (rc == STORAGE_ERR_NOT_CATALOG) {
        *why = "not a Strata catalog (not an SQLite database, or damaged)";
        return rc;
    }
    if (rc != STORAGE_OK) {
        *why = rc == STORAGE_ERR_BUSY ? "busy (locked by another process)" : "cannot be read";
        return rc;
    }
    if (app == STRATA_APP_ID) {
        *version = user;
    } else if (app == 0 && user == 0 && tables == 0) {
        *version = 0;
    } else {
        *why = "not a Strata catalog (an SQLite database of another program)";
        return STORAGE_ERR_NOT_CATALOG;
    }
    return STORAGE_OK;
}

/* Runs a journal_mode PRAGMA; STORAGE_OK when the mode it reports is WAL,
 * STORAGE_ERR_BUSY otherwise (the switch needs an exclusive lock for a
 * moment), or the statement's failure. */
static storage_rc journal_mode_locked(storage_catalog *cat, const char *sql)
{
    sqlite3_stmt *st = NULL;
    storage_rc rc = catalog_prepare_locked(cat, sql, &st);
    const unsigned char *mode;
    int step;

    if (rc != STORAGE_OK) {
        goto out;
    }
    step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = catalog_rc(step);
        rc = rc == STORAGE_OK ? STORAGE_ERR_INTERNAL : rc;
        goto out;
    }
    mode = sqlite3_column_text(st, 0);
    rc = mode != NULL && strcmp((const char *)mode, "wal") == 0 ? STORAGE_OK : STORAGE_ERR_BUSY;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Switches the file to WAL mode unless it is already (a write). SQLite
 * takes the exclusive lock this needs without calling the busy handler, so
 * a process that meets another one opening the same new file retries here,
 * for up to the busy timeout. STORAGE_OK, STORAGE_ERR_BUSY, or the
 * failure. */
static storage_rc enable_wal(storage_catalog *cat)
{
    enum { PAUSE_MS = 10 };
    storage_rc rc = journal_mode_locked(cat, "PRAGMA journal_mode");

    for (int waited = 0; rc == STORAGE_ERR_BUSY && waited < BUSY_TIMEOUT_MS; waited += PAUSE_MS) {
        rc = journal_mode_locked(cat, "PRAGMA journal_mode = WAL");
        if (rc == STORAGE_ERR_BUSY) {
            sqlite3_sleep(PAUSE_MS);
        }
    }
    return rc;
}

/* One migration transaction: re-reads the version under the write lock
 * (another process may have migrated meanwhile) and applies the missing
 * steps. */
static storage_rc migrate_txn(storage_catalog *cat, void *ctx)
{
    int64_t version = 0;
    char sql[96];
    storage_rc rc = query_int_locked(cat, "PRAGMA user_version", &version);

    (void)ctx;
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (version > SCHEMA_VERSION) {
        return STORAGE_ERR_TOO_NEW;
    }
    for (int64_t v = version; v < SCHEMA_VERSION; v++) {
        for (const char *const *s = migrations[v]; *s != NULL && rc == STORAGE_OK; s++) {
            rc = exec_locked(cat, *s);
        }
        snprintf(sql, sizeof(sql), "INSERT INTO migrations VALUES (%lld, %lld)", (long long)(v + 1),
                 (long long)catalog_now());
        if (rc == STORAGE_OK) {
            rc = exec_locked(cat, sql);
        }
        if (rc != STORAGE_OK) {
            return rc;
        }
    }
    snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", STRATA_APP_ID);
    rc = exec_locked(cat, sql);
    if (rc == STORAGE_OK) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec_locked(cat, sql);
    }
    return rc;
}

/* Opens the SQLite connection on a checked file and brings it to the
 * current schema when flags allow; see storage_catalog_open. */
static storage_rc connect(storage_catalog *cat, unsigned flags, const char **why)
{
    int oflags = (cat->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                 SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW;
    int64_t version = 0;
    storage_rc rc;

    rc = catalog_rc(sqlite3_open_v2(cat->path, &cat->db, oflags, NULL));
    if (rc != STORAGE_OK) {
        *why = rc == STORAGE_ERR_NOMEM ? "out of memory" : "cannot be opened";
        return rc == STORAGE_ERR_NOMEM ? rc : STORAGE_ERR_IO;
    }
    sqlite3_busy_timeout(cat->db, BUSY_TIMEOUT_MS);
    if (sqlite3_db_readonly(cat->db, "main") == 1) {
        cat->read_only = true;
    }
    rc = identify(cat, &version, why);
    if (rc != STORAGE_OK) {
        return rc;
    }
    if (version > SCHEMA_VERSION) {
        *why = "written by a newer Strata (schema version too new); left untouched";
        return STORAGE_ERR_TOO_NEW;
    }
    rc = exec_locked(cat, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON");
    if (rc != STORAGE_OK) {
        *why = "cannot configure the connection";
        return rc;
    }
    if (version < SCHEMA_VERSION && (flags & STORAGE_OPEN_CREATE) == 0) {
        *why = version == 0 ? "empty catalog; run strata init"
                            : "catalog schema is older than this Strata; run strata init";
        return STORAGE_ERR_NEEDS_INIT;
    }
    if (version < SCHEMA_VERSION && cat->read_only) {
        *why = "catalog needs a migration but is read-only";
        return STORAGE_ERR_READ_ONLY;
    }
    if (!cat->read_only) {
        rc = enable_wal(cat);
        if (rc != STORAGE_OK) {
            *why = rc == STORAGE_ERR_BUSY ? "busy: cannot switch to WAL mode"
                                          : "cannot switch to WAL mode";
            return rc;
        }
    }
    if (version < SCHEMA_VERSION) {
        rc = catalog_write(cat, migrate_txn, NULL);
        if (rc != STORAGE_OK) {
            *why = rc == STORAGE_ERR_TOO_NEW ? "written by a newer Strata meanwhile"
                                             : "migration to the current schema failed";
            return rc;
        }
    }
    cat->version = SCHEMA_VERSION;
    return STORAGE_OK;
}

/* See storage.h. Returns STORAGE_ERR_ARGS, NOMEM, IO, NOT_CATALOG, TOO_NEW,
 * READ_ONLY (a migration needed on a read-only file), NEEDS_INIT or BUSY
 * on failure, having written nothing to a file that is not ours or too
 * new. */
storage_rc storage_catalog_open(const char *path, unsigned flags, storage_catalog **out, char *err,
                                size_t errsize)
{
    storage_rc rc = STORAGE_ERR_ARGS;
    const char *why = "bad arguments";
    storage_catalog *cat = NULL;
    struct stat st;

    if (err != NULL && errsize > 0) {
        err[0] = '\0';
    }
    if (out == NULL || path == NULL || path[0] == '\0') {
        goto out;
    }
    *out = NULL;
    rc = STORAGE_ERR_NOMEM;
    why = "out of memory";
    cat = calloc(1, sizeof(*cat));
    if (cat == NULL || (cat->path = strdup(path)) == NULL) {
        goto out;
    }
    pthread_mutex_init(&cat->lock, NULL);
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        rc = STORAGE_ERR_NEEDS_INIT;
        why = "no catalog here; run strata init";
        if ((flags & STORAGE_OPEN_CREATE) == 0 || (flags & STORAGE_OPEN_READ_ONLY) != 0) {
            goto out;
        }
        rc = create_file(path, &why);
        if (rc != STORAGE_OK) {
            goto out;
        }
    }
    rc = check_file(path, flags, &cat->read_only, &why);
    if (rc == STORAGE_OK) {
        rc = connect(cat, flags, &why);
    }
out:
    if (rc == STORAGE_OK) {
        *out = cat;
    } else {
        report(err, errsize, path, why);
        storage_catalog_close(cat);
    }
    return rc;
}

void storage_catalog_close(storage_catalog *cat)
{
    if (cat == NULL) {
        return;
    }
    if (cat->path != NULL) {
        pthread_mutex_destroy(&cat->lock);
    }
    sqlite3_close_v2(cat->db);
    free(cat->path);
    free(cat);
}

int storage_catalog_version(storage_catalog *cat)
{
    return cat != NULL ? cat->version : 0;
}

const char *storage_catalog_path(const storage_catalog *cat)
{
    return cat != NULL ? cat->path : NULL;
}

/* $XDG_DATA_HOME (when absolute, as the XDG spec requires) or the home
 * folder from $HOME or the password database. */
char *storage_default_path(void)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    struct passwd pw, *res = NULL;
    char buf[4096];
    char *path = NULL;

    if (xdg != NULL && xdg[0] == '/') {
        return asprintf(&path, "%s/strata/catalog.db", xdg) < 0 ? NULL : path;
    }
    if (home == NULL || home[0] != '/') {
        if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) != 0 || res == NULL ||
            res->pw_dir == NULL || res->pw_dir[0] != '/') {
            return NULL;
        }
        home = res->pw_dir;
    }
    return asprintf(&path, "%s/.local/share/strata/catalog.db", home) < 0 ? NULL : path;
}

/* ---------------------------------------------------------------------
 * Tokens
 * ------------------------------------------------------------------ */

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
