/*
 * catalog.c - the SQLite catalog file: open, create, migrate (the steps
 * live in schema.c), transactions, and the connection's life across fork.
 *
 * Versioning. The file's header carries two numbers SQLite reserves for
 * applications: PRAGMA application_id = STRATA_APP_ID marks the file as a
 * Strata catalog, and PRAGMA user_version is its schema version (0 for an
 * empty file). Both are read without parsing any table, so a newer or a
 * foreign file is recognised before anything is written. The table
 * `migrations` records when each step was applied; it is history, the
 * header's user_version is the authority. The schema is a list of
 * statements per step (migrations[] in schema.c, step i brings the file from
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
 * Fork. SQLite forbids using a connection in a child process; the engine's
 * forked child therefore leaves the parent's storage_catalog alone and
 * opens a new one. That alone is not safe with SQLite 3.40's unix VFS:
 * POSIX locks belong to a process and are not inherited, so SQLite keeps
 * one record per open inode (unixInodeInfo: lock counts, and the shared
 * -shm mapping with its dead-man-switch lock) in process memory, shared by
 * every connection of the process to that file. The child inherits the
 * parent's records. Its new connection finds them by (device, inode) and
 * believes the process already holds the WAL-mode SHARED lock on the
 * database and the DMS lock on the -shm file, so it takes neither: the
 * child then runs without the locks that tell a third process "someone
 * still uses this WAL". When the parent exits, the next process to close
 * the catalog can checkpoint and delete the WAL and -shm under the child,
 * whose later commits go to an unlinked file and are lost (and a process
 * opening afterwards may re-initialise the -shm the child still maps).
 * Never closing the inherited connection keeps those stale records alive
 * for the child's whole life.
 *
 * The mitigation here is cheap: every open catalog sits in a list, and a
 * pthread_atfork prepare handler takes each catalog's lock around fork(),
 * so no connection of ours is inside SQLite (mid-transaction, or holding
 * its mutex) when the child is created. The first storage_catalog_open in
 * the child then closes every inherited connection (sqlite3_close_v2) before
 * opening its own: with no transaction open, the close only drops the
 * child's copies of the records and of the file descriptors (closing a
 * descriptor releases the child's POSIX locks, of which it has none; the
 * parent's locks are untouched), and its checkpoint-on-close cannot run
 * while the parent still holds its SHARED lock, because the EXCLUSIVE lock
 * it needs is a real fcntl() that the parent's lock refuses. The new
 * connection then builds fresh records and takes real locks. The inherited
 * storage_catalog stays allocated (its owner may keep it reachable); any
 * later use of it in the child gives STORAGE_ERR_INTERNAL instead of
 * touching SQLite, and storage_catalog_close on it only frees memory.
 * What remains is fork's general hazard: another thread of the parent
 * inside SQLite on a connection that is not ours (holding a global SQLite
 * mutex) at fork time; no library can fix that for its host.
 *
 * Test hook: STRATA_TEST_CRASH_AT=<point> makes catalog_crash_point(point)
 * kill the process with SIGKILL, so tests can stop a transaction half-way
 * (see internal.h). Outside tests the variable is unset and nothing
 * happens.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BUSY_TIMEOUT_MS 5000

/* Every open catalog of the process, for the fork handlers (see above).
 * open_lock guards the list; lock order: open_lock, then each cat->lock. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static storage_catalog *open_list;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static atomic_ulong txn_calls; /* storage_txn_calls */

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
    case STORAGE_ERR_LOCKED:
        return "PIN locked (too many failed logins)";
    case STORAGE_ERR_FULL:
        return "no room left on the catalog's file system";
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
    case SQLITE_FULL:
        return STORAGE_ERR_FULL;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
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
storage_rc catalog_exec_locked(storage_catalog *cat, const char *sql)
{
    return catalog_rc(sqlite3_exec(cat->db, sql, NULL, NULL, NULL));
}

/* Runs fn between begin and COMMIT, rolling back on any failure. */
static storage_rc transaction(storage_catalog *cat, const char *begin, catalog_txn_fn fn, void *ctx)
{
    storage_rc rc;

    atomic_fetch_add(&txn_calls, 1);
    catalog_lock(cat);
    rc = STORAGE_ERR_INTERNAL;
    if (cat->db == NULL || cat->pid != getpid()) {
        goto out; /* a connection inherited across fork() (see above) */
    }
    rc = catalog_exec_locked(cat, begin);
    if (rc != STORAGE_OK) {
        goto out;
    }
    rc = fn(cat, ctx);
    if (rc == STORAGE_OK) {
        rc = catalog_exec_locked(cat, "COMMIT");
    }
    if (rc != STORAGE_OK && !sqlite3_get_autocommit(cat->db)) {
        (void)catalog_exec_locked(cat, "ROLLBACK");
    }
out:
    catalog_unlock(cat);
    return rc;
}

unsigned long storage_txn_calls(void)
{
    return atomic_load(&txn_calls);
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
storage_rc catalog_query_int_locked(storage_catalog *cat, const char *sql, int64_t *out)
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

/* The companions SQLite keeps next to a catalog: a writer of any of them
 * can change what the catalog says or read what it is told. */
static const char *const companions[] = {"", "-wal", "-shm", "-journal"};

/* Checks that nobody but the caller can plant or read the catalog's files:
 * the folder is neither group- nor world-writable (a sticky bit does not
 * help: it stops removing files, not creating a -wal before Strata does)
 * and belongs to the caller or root; each companion that exists is a
 * regular file of the caller without any group or other permission bit.
 * STORAGE_OK, or STORAGE_ERR_IO / STORAGE_ERR_NOMEM with *why (pointing
 * into detail). */
static storage_rc check_location(const char *path, char *detail, size_t size, const char **why)
{
    char *dir = strdup(path), *slash;
    storage_rc rc = STORAGE_ERR_IO;
    struct stat st;

    *why = detail;
    if (dir == NULL) {
        *why = "out of memory";
        return STORAGE_ERR_NOMEM;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, strlen(dir) + 1, ".");
    } else {
        slash[slash == dir ? 1 : 0] = '\0';
    }
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) {
            rc = STORAGE_OK; /* no folder: nothing planted, nothing to open */
        } else {
            snprintf(detail, size, "cannot read the status of its folder %s", dir);
        }
    } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(detail, size,
                 "its folder %s is writable by other users (mode %04o): refused, since another "
                 "user could plant its -wal or -shm file; use a folder only its owner can write",
                 dir, (unsigned)(st.st_mode & 07777));
    } else if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(detail, size, "its folder %s belongs to another user (uid %u): refused", dir,
                 (unsigned)st.st_uid);
    } else {
        rc = STORAGE_OK;
    }
    free(dir);
    for (size_t i = 0; rc == STORAGE_OK && i < sizeof(companions) / sizeof(companions[0]); i++) {
        char file[PATH_MAX];
        snprintf(file, sizeof(file), "%s%s", path, companions[i]);
        if (lstat(file, &st) != 0) {
            continue; /* missing: SQLite makes it with the catalog's mode */
        }
        rc = STORAGE_ERR_IO;
        if (!S_ISREG(st.st_mode)) {
            snprintf(detail, size, "%s is not a regular file: refused", file);
        } else if (st.st_uid != geteuid()) {
            snprintf(detail, size, "%s belongs to another user (uid %u): refused", file,
                     (unsigned)st.st_uid);
        } else if ((st.st_mode & 077) != 0) {
            snprintf(detail, size,
                     "%s has mode %04o: refused, other users may read or write it (must be "
                     "0600)",
                     file, (unsigned)(st.st_mode & 07777));
        } else {
            rc = STORAGE_OK;
        }
    }
    return rc;
}

static storage_rc connect(storage_catalog *cat, unsigned flags, const char **why);

/* Removes a scratch catalog and its companions. */
static void remove_scratch(const char *scratch)
{
    for (size_t i = 0; i < sizeof(companions) / sizeof(companions[0]); i++) {
        char file[PATH_MAX];
        snprintf(file, sizeof(file), "%s%s", scratch, companions[i]);
        (void)unlink(file);
    }
}

/*
 * Creates the catalog at path, complete, in one step: the schema is
 * written into a scratch file (mode 0600) next to it, which is then
 * linked to path. So path never exists empty or half made, and an empty
 * file found there is always damage (check_file refuses it). A catalog
 * another process created meanwhile is fine. STORAGE_OK, or the failure
 * with *why.
 */
static storage_rc create_catalog(const char *path, const char **why)
{
    storage_catalog scratch;
    char name[PATH_MAX];
    storage_rc rc;
    int fd;

    if ((size_t)snprintf(name, sizeof(name), "%s.new-XXXXXX", path) >= sizeof(name)) {
        *why = "path too long";
        return STORAGE_ERR_IO;
    }
    fd = mkstemp(name);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        if (fd >= 0) {
            close(fd);
            (void)unlink(name);
        }
        *why = "cannot create the file";
        return STORAGE_ERR_IO;
    }
    close(fd);
    memset(&scratch, 0, sizeof(scratch));
    scratch.path = name;
    scratch.pid = getpid();
    pthread_mutex_init(&scratch.lock, NULL);
    rc = connect(&scratch, STORAGE_OPEN_CREATE, why);
    sqlite3_close_v2(scratch.db); /* the last connection: checkpoints, drops -wal and -shm */
    pthread_mutex_destroy(&scratch.lock);
    if (rc == STORAGE_OK && link(name, path) != 0 && errno != EEXIST) {
        *why = "cannot create the file";
        rc = STORAGE_ERR_IO;
    }
    remove_scratch(name);
    return rc;
}

/* Whether a non-empty -wal file lies next to path (then the file alone
 * need not hold every page its header counts). */
static bool has_wal(const char *path)
{
    char wal[PATH_MAX];
    struct stat st;

    snprintf(wal, sizeof(wal), "%s-wal", path);
    return lstat(wal, &st) == 0 && st.st_size > 0;
}

/* Whether the SQLite header head (100 bytes) counts more pages than a
 * file of size bytes holds: a truncated catalog. The count is trusted
 * only where SQLite trusts it (its change counter matches). */
static bool truncated(const unsigned char *head, off_t size, const char *path)
{
    uint32_t page = ((uint32_t)head[16] << 8) | head[17];
    uint32_t pages = ((uint32_t)head[28] << 24) | ((uint32_t)head[29] << 16) |
                     ((uint32_t)head[30] << 8) | head[31];

    page = page == 1 ? 65536 : page;
    if (size < (off_t)page) {
        return true; /* not even the first page */
    }
    if (memcmp(head + 24, head + 92, 4) != 0 || has_wal(path)) {
        return false;
    }
    return (off_t)pages * (off_t)page > size;
}

/* Checks that an existing file is a regular file that starts like an
 * SQLite database, whole, without writing: an empty or truncated file is
 * refused as damaged (STORAGE_ERR_NOT_CATALOG), never initialised anew.
 * *read_only is set when no write is possible or allowed. */
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
    if (n == 0) {
        *why = "empty file (0 bytes): a damaged catalog, refused (its enrolments would be lost); "
               "restore it from a backup, or move it away and run strata init";
        return STORAGE_ERR_NOT_CATALOG;
    }
    if (n < (ssize_t)sizeof(head) || memcmp(head, magic, sizeof(magic)) != 0) {
        *why = "not a Strata catalog (not an SQLite database)";
        return STORAGE_ERR_NOT_CATALOG;
    }
    if (truncated(head, st.st_size, path)) {
        *why = "truncated (shorter than its header says): a damaged catalog, refused; restore "
               "it from a backup";
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
    storage_rc rc = catalog_query_int_locked(cat, "SELECT count(*) FROM sqlite_master", &tables);

    if (rc == STORAGE_OK) {
        rc = catalog_query_int_locked(cat, "PRAGMA application_id", &app);
    }
    if (rc == STORAGE_OK) {
        rc = catalog_query_int_locked(cat, "PRAGMA user_version", &user);
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
    if (version > storage_schema_version()) {
        *why = "written by a newer Strata (schema version too new); left untouched";
        return STORAGE_ERR_TOO_NEW;
    }
    rc = catalog_exec_locked(cat, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON");
    if (rc != STORAGE_OK) {
        *why = "cannot configure the connection";
        return rc;
    }
    if (version < storage_schema_version() && (flags & STORAGE_OPEN_CREATE) == 0) {
        *why = version == 0 ? "empty catalog; run strata init"
                            : "catalog schema is older than this Strata; run strata init";
        return STORAGE_ERR_NEEDS_INIT;
    }
    if (version < storage_schema_version() && cat->read_only) {
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
    if (version < storage_schema_version()) {
        rc = catalog_write(cat, catalog_migrate_txn, NULL);
        if (rc != STORAGE_OK) {
            *why = rc == STORAGE_ERR_TOO_NEW ? "written by a newer Strata meanwhile"
                                             : "migration to the current schema failed";
            return rc;
        }
    }
    cat->version = storage_schema_version();
    return STORAGE_OK;
}

/* ---------------------------------------------------------------------
 * The list of open catalogs and fork (see the top of the file)
 * ------------------------------------------------------------------ */

/* pthread_atfork prepare: no connection of ours is inside SQLite while the
 * child is made. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&open_lock);
    for (storage_catalog *c = open_list; c != NULL; c = c->next_open) {
        catalog_lock(c);
    }
}

/* pthread_atfork parent and child: releases what atfork_prepare took (in
 * the child, the only thread is the one that took them). */
static void atfork_release(void)
{
    for (storage_catalog *c = open_list; c != NULL; c = c->next_open) {
        catalog_unlock(c);
    }
    pthread_mutex_unlock(&open_lock);
}

static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

/* Closes the SQLite connections this process inherited from its parent and
 * takes them off the list; their storage_catalog stays allocated with db
 * NULL. Expects open_lock held. */
static void close_inherited_inlock(pid_t self)
{
    storage_catalog **link = &open_list;

    while (*link != NULL) {
        storage_catalog *c = *link;
        if (c->pid == self) {
            link = &c->next_open;
            continue;
        }
        *link = c->next_open;
        c->next_open = NULL;
        sqlite3_close_v2(c->db);
        c->db = NULL;
    }
}

/* Puts cat on the list, after closing inherited connections. */
static void list_add(storage_catalog *cat)
{
    pthread_mutex_lock(&open_lock);
    close_inherited_inlock(cat->pid);
    cat->next_open = open_list;
    open_list = cat;
    pthread_mutex_unlock(&open_lock);
}

/* Takes cat off the list; false when it was not there (a connection
 * inherited and already closed, or one never fully opened). */
static bool list_remove(storage_catalog *cat)
{
    bool found = false;

    pthread_mutex_lock(&open_lock);
    for (storage_catalog **link = &open_list; *link != NULL; link = &(*link)->next_open) {
        if (*link == cat) {
            *link = cat->next_open;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&open_lock);
    return found;
}

/* See storage.h. Returns STORAGE_ERR_ARGS, NOMEM, IO (also an unsafe
 * location: check_location), NOT_CATALOG (also an empty or truncated
 * file), TOO_NEW,
 * READ_ONLY (a migration needed on a read-only file), NEEDS_INIT or BUSY
 * on failure, having written nothing to a file that is not ours or too
 * new. In a forked child, first closes the connections inherited from the
 * parent (see the top of the file). */
storage_rc storage_catalog_open(const char *path, unsigned flags, storage_catalog **out, char *err,
                                size_t errsize)
{
    storage_rc rc = STORAGE_ERR_ARGS;
    const char *why = "bad arguments";
    storage_catalog *cat = NULL;
    char detail[PATH_MAX + 256];
    struct stat st;

    if (err != NULL && errsize > 0) {
        err[0] = '\0';
    }
    if (out == NULL || path == NULL || path[0] == '\0') {
        goto out;
    }
    *out = NULL;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&open_lock);
    close_inherited_inlock(getpid());
    pthread_mutex_unlock(&open_lock);
    rc = STORAGE_ERR_NOMEM;
    why = "out of memory";
    cat = calloc(1, sizeof(*cat));
    if (cat == NULL || (cat->path = strdup(path)) == NULL) {
        goto out;
    }
    pthread_mutex_init(&cat->lock, NULL);
    cat->pid = getpid();
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        rc = STORAGE_ERR_NEEDS_INIT;
        why = "no catalog here; run strata init";
        if ((flags & STORAGE_OPEN_CREATE) == 0 || (flags & STORAGE_OPEN_READ_ONLY) != 0) {
            goto out;
        }
        rc = make_parents(path);
        why = "cannot create the catalog's folder";
        if (rc == STORAGE_OK) {
            rc = check_location(path, detail, sizeof(detail), &why);
        }
        if (rc == STORAGE_OK) {
            rc = create_catalog(path, &why);
        }
        if (rc != STORAGE_OK) {
            goto out;
        }
    }
    rc = check_file(path, flags, &cat->read_only, &why);
    if (rc == STORAGE_OK) {
        rc = check_location(path, detail, sizeof(detail), &why);
    }
    if (rc == STORAGE_OK) {
        rc = connect(cat, flags, &why);
    }
out:
    if (rc == STORAGE_OK) {
        list_add(cat);
        *out = cat;
    } else {
        report(err, errsize, path, why);
        storage_catalog_close(cat);
    }
    return rc;
}

/* See storage.h: check_location and check_file, opening nothing with
 * SQLite and writing nothing. */
storage_rc storage_catalog_inspect(const char *path, char *err, size_t errsize)
{
    char detail[PATH_MAX + 256];
    const char *why = "bad arguments";
    bool read_only = false;
    storage_rc rc = STORAGE_ERR_ARGS;
    struct stat st;

    if (err != NULL && errsize > 0) {
        err[0] = '\0';
    }
    if (path != NULL && path[0] != '\0') {
        rc = STORAGE_OK;
        if (lstat(path, &st) == 0 || errno != ENOENT) {
            rc = check_file(path, STORAGE_OPEN_READ_ONLY, &read_only, &why);
        }
    }
    if (rc == STORAGE_OK) {
        rc = check_location(path, detail, sizeof(detail), &why);
    }
    if (rc == STORAGE_OK && lstat(path, &st) != 0 && errno == ENOENT) {
        rc = STORAGE_ERR_NEEDS_INIT;
        why = "no catalog here; run strata init";
    }
    if (rc != STORAGE_OK) {
        report(err, errsize, path, why);
    }
    return rc;
}

/* Closes the connection and frees cat. On a catalog inherited across fork
 * the connection was already closed by the child's first open, or is
 * closed now (the same safe close, see the top of the file). */
void storage_catalog_close(storage_catalog *cat)
{
    if (cat == NULL) {
        return;
    }
    (void)list_remove(cat);
    if (cat->path != NULL) {
        pthread_mutex_destroy(&cat->lock);
    }
    sqlite3_close_v2(cat->db);
    free(cat->path);
    free(cat);
}

/* See internal.h: SIGKILL when STRATA_TEST_CRASH_AT names point. */
void catalog_crash_point(const char *point)
{
    const char *at = getenv("STRATA_TEST_CRASH_AT");

    if (at != NULL && strcmp(at, point) == 0) {
        raise(SIGKILL);
    }
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
