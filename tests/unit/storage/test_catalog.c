/*
 * test_catalog.c - storage/catalog.c: opening, creating, migrating, refusing
 * foreign and newer files, read-only catalogs, slot IDs, audit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "storage.h"
#include "world.h"

static world w;

static void setup(void)
{
    world_setup(&w);
    umask(077); /* files the tests make are private, as a catalog must be */
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(storage_catalog, .init = setup, .fini = teardown);

/* Reads a whole file (malloc'd) into *len; NULL if it does not exist. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    cr_assert(fseek(f, 0, SEEK_END) == 0);
    n = ftell(f);
    cr_assert(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert(buf != NULL);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    cr_assert(f != NULL);
    cr_assert(fwrite(data, 1, len, f) == len);
    cr_assert(fclose(f) == 0);
}

static storage_catalog *open_ok(const char *path, unsigned flags)
{
    storage_catalog *cat = NULL;
    char err[512];
    storage_rc rc = storage_catalog_open(path, flags, &cat, err, sizeof(err));

    cr_assert_eq(rc, STORAGE_OK, "open %s: %s (%s)", path, storage_strerror(rc), err);
    cr_assert(cat != NULL);
    return cat;
}

/* Opens path expecting failure `want`; checks the error line names the file
 * and *out stays NULL. */
static void open_fails(const char *path, unsigned flags, storage_rc want)
{
    storage_catalog *cat = (storage_catalog *)&cat; /* must be reset to NULL */
    char err[512];
    storage_rc rc = storage_catalog_open(path, flags, &cat, err, sizeof(err));

    cr_assert_eq(rc, want, "want %s, got %s (%s)", storage_strerror(want), storage_strerror(rc),
                 err);
    cr_assert_null(cat);
    cr_assert(strstr(err, path) != NULL, "error names the file: %s", err);
    cr_assert(strchr(err, '\n') == NULL, "one line: %s", err);
    cr_assert(strlen(err) > strlen(path) + 2, "error gives a reason: %s", err);
}

/* Runs sql on path with a raw SQLite connection (the test's own hands). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    sqlite3_close(db);
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void assert_unchanged(const char *path, const unsigned char *before, size_t before_len)
{
    size_t len;
    unsigned char *after = slurp(path, &len);

    cr_assert(after != NULL || before_len == 0);
    cr_assert_eq(len, before_len, "file size changed");
    cr_assert(before_len == 0 || memcmp(after, before, len) == 0, "file bytes changed");
    free(after);
}

/* A catalog with one slot and one audit row, closed. */
static void make_catalog(const char *path)
{
    storage_catalog *cat = open_ok(path, STORAGE_OPEN_CREATE);
    CK_SLOT_ID slot;

    cr_assert_eq(storage_slot_id(cat, "Strata", &slot), STORAGE_OK);
    cr_assert_eq(storage_audit(cat, "init", "catalog", "ok"), STORAGE_OK);
    storage_catalog_close(cat);
}

Test(storage_catalog, storage_catalog_open_creates_private_file_and_folders)
{
    char dir[PATH_MAX + 64], path[PATH_MAX + 128], wal[PATH_MAX + 160];
    struct stat st;
    storage_catalog *cat;

    snprintf(dir, sizeof(dir), "%s/data/strata", w.dir);
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    umask(0);
    cat = open_ok(path, STORAGE_OPEN_CREATE);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "file mode %o", st.st_mode & 07777);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700, "folder mode %o", st.st_mode & 07777);
    snprintf(dir, sizeof(dir), "%s/data", w.dir);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700, "parent folder mode %o", st.st_mode & 07777);
    cr_assert_eq(storage_catalog_version(cat), storage_schema_version());
    cr_assert_str_eq(storage_catalog_path(cat), path);
    cr_assert_eq(storage_audit(cat, "test", "wal", "ok"), STORAGE_OK);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    cr_assert_eq(stat(wal, &st), 0, "WAL file exists while open");
    cr_assert_eq(st.st_mode & 07777, 0600, "WAL mode %o", st.st_mode & 07777);
    storage_catalog_close(cat);
}

Test(storage_catalog, storage_catalog_open_uses_wal_and_marks_file)
{
    make_catalog(w.catalog);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    cr_assert_eq(sqlite3_open_v2(w.catalog, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    cr_assert_eq(raw_int(w.catalog, "PRAGMA user_version"), storage_schema_version());
    cr_assert_neq(raw_int(w.catalog, "PRAGMA application_id"), 0);
}

Test(storage_catalog, storage_catalog_open_reopen_keeps_data)
{
    storage_catalog *cat;
    CK_SLOT_ID slot = 0;

    make_catalog(w.catalog);
    cat = open_ok(w.catalog, 0);
    cr_assert_eq(storage_catalog_version(cat), storage_schema_version());
    cr_assert_eq(storage_slot_id(cat, "Strata", &slot), STORAGE_OK);
    cr_assert_eq(slot, 1);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'init'"), 1);
}

Test(storage_catalog, storage_slot_id_stable_distinct_never_reused)
{
    storage_catalog *cat = open_ok(w.catalog, STORAGE_OPEN_CREATE);
    CK_SLOT_ID a = 0, b = 0, again = 0, c = 0;

    cr_assert_eq(storage_slot_id(cat, "Alpha", &a), STORAGE_OK);
    cr_assert_eq(storage_slot_id(cat, "Beta", &b), STORAGE_OK);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);
    cr_assert_eq(storage_slot_id(cat, "Alpha", &again), STORAGE_OK);
    cr_assert_eq(again, a);
    storage_catalog_close(cat);

    cat = open_ok(w.catalog, 0);
    cr_assert_eq(storage_slot_id(cat, "Beta", &again), STORAGE_OK);
    cr_assert_eq(again, b);
    storage_catalog_close(cat);

    /* A label dropped by hand does not free its ID for another label. */
    raw_exec(w.catalog, "DELETE FROM slots WHERE token_label = 'Beta'");
    cat = open_ok(w.catalog, 0);
    cr_assert_eq(storage_slot_id(cat, "Gamma", &c), STORAGE_OK);
    cr_assert_eq(c, 3);
    storage_catalog_close(cat);
}

Test(storage_catalog, storage_slot_id_bad_arguments)
{
    storage_catalog *cat = open_ok(w.catalog, STORAGE_OPEN_CREATE);
    CK_SLOT_ID slot;

    cr_assert_eq(storage_slot_id(NULL, "A", &slot), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_slot_id(cat, NULL, &slot), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_slot_id(cat, "", &slot), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_slot_id(cat, "A", NULL), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

Test(storage_catalog, storage_catalog_open_garbage_is_not_catalog_and_unchanged)
{
    unsigned char garbage[4096];

    for (size_t i = 0; i < sizeof(garbage); i++) {
        garbage[i] = (unsigned char)(i * 7 + 3);
    }
    write_bytes(w.catalog, garbage, sizeof(garbage));
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_NOT_CATALOG);
    open_fails(w.catalog, 0, STORAGE_ERR_NOT_CATALOG);
    assert_unchanged(w.catalog, garbage, sizeof(garbage));
}

Test(storage_catalog, storage_catalog_open_short_text_is_not_catalog)
{
    static const char text[] = "hello, I am not a database\n";

    write_bytes(w.catalog, text, sizeof(text) - 1);
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_NOT_CATALOG);
    assert_unchanged(w.catalog, (const unsigned char *)text, sizeof(text) - 1);
}

Test(storage_catalog, storage_catalog_open_damaged_sqlite_is_not_catalog_and_unchanged)
{
    unsigned char *bytes;
    size_t len;

    make_catalog(w.catalog);
    bytes = slurp(w.catalog, &len);
    cr_assert(len >= 200);
    memset(bytes + 16, 0xff, 84); /* header after the magic: page size etc. */
    write_bytes(w.catalog, bytes, len);
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_NOT_CATALOG);
    assert_unchanged(w.catalog, bytes, len);
    free(bytes);
}

Test(storage_catalog, storage_catalog_open_other_programs_sqlite_is_not_catalog)
{
    unsigned char *before;
    size_t len;

    raw_exec(w.catalog, "CREATE TABLE recipes (name TEXT)");
    before = slurp(w.catalog, &len);
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_NOT_CATALOG);
    assert_unchanged(w.catalog, before, len);
    free(before);
}

Test(storage_catalog, storage_catalog_open_too_new_unchanged)
{
    unsigned char *before;
    size_t len;
    char sql[64];

    make_catalog(w.catalog);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", storage_schema_version() + 1);
    raw_exec(w.catalog, sql);
    before = slurp(w.catalog, &len);
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_TOO_NEW);
    open_fails(w.catalog, 0, STORAGE_ERR_TOO_NEW);
    open_fails(w.catalog, STORAGE_OPEN_READ_ONLY, STORAGE_ERR_TOO_NEW);
    assert_unchanged(w.catalog, before, len);
    free(before);
}

Test(storage_catalog, storage_catalog_open_missing_without_create_needs_init)
{
    struct stat st;

    open_fails(w.catalog, 0, STORAGE_ERR_NEEDS_INIT);
    open_fails(w.catalog, STORAGE_OPEN_READ_ONLY, STORAGE_ERR_NEEDS_INIT);
    open_fails(w.catalog, STORAGE_OPEN_READ_ONLY | STORAGE_OPEN_CREATE, STORAGE_ERR_NEEDS_INIT);
    cr_assert_neq(stat(w.catalog, &st), 0, "nothing created");
}

/* An empty file is a damaged catalog (issue 12, item 12): refused with
 * every flag and left as it is, never initialised anew. */
Test(storage_catalog, storage_catalog_open_empty_file_is_refused)
{
    char err[512] = "";
    storage_catalog *cat = NULL;

    write_bytes(w.catalog, "", 0);
    open_fails(w.catalog, 0, STORAGE_ERR_NOT_CATALOG);
    open_fails(w.catalog, STORAGE_OPEN_READ_ONLY, STORAGE_ERR_NOT_CATALOG);
    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_CREATE, &cat, err, sizeof(err)),
                 STORAGE_ERR_NOT_CATALOG);
    cr_assert_null(cat);
    cr_assert(strstr(err, "empty file") != NULL, "%s", err);
    cr_assert_eq(storage_catalog_inspect(w.catalog, NULL, 0), STORAGE_ERR_NOT_CATALOG);
    assert_unchanged(w.catalog, NULL, 0);
}

/* A catalog cut short after its first pages is refused too. */
Test(storage_catalog, storage_catalog_open_truncated_file_is_refused)
{
    unsigned char *before;
    size_t len;

    make_catalog(w.catalog);
    cr_assert_eq(truncate(w.catalog, 8192), 0);
    before = slurp(w.catalog, &len);
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_NOT_CATALOG);
    open_fails(w.catalog, STORAGE_OPEN_READ_ONLY, STORAGE_ERR_NOT_CATALOG);
    assert_unchanged(w.catalog, before, len);
    free(before);
}

/* A new catalog is made whole: the schema is in place on first open. */
Test(storage_catalog, storage_catalog_open_creates_current_schema)
{
    storage_catalog *cat = open_ok(w.catalog, STORAGE_OPEN_CREATE);

    cr_assert_eq(storage_catalog_version(cat), storage_schema_version());
    storage_catalog_close(cat);
    cr_assert_eq(raw_int(w.catalog, "PRAGMA user_version"), storage_schema_version());
    cr_assert_eq(raw_int(w.catalog, "SELECT max(version) FROM migrations"),
                 storage_schema_version());
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                    " AND name IN ('slots', 'tokens', 'views', 'creds', 'objects',"
                                    " 'whiteouts', 'provisioned', 'audit', 'migrations')"),
                 9);
    cat = open_ok(w.catalog, STORAGE_OPEN_CREATE);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM migrations"), storage_schema_version());
}

/* Files others could plant or read (issue 12, item 13): a folder others
 * can write, a catalog or companion file with group or other bits, or
 * one of another user. */
Test(storage_catalog, storage_catalog_open_refuses_unsafe_location)
{
    char wal[PATH_MAX + 8];
    storage_catalog *cat = NULL;

    make_catalog(w.catalog);
    cr_assert_eq(chmod(w.dir, 0770), 0);
    open_fails(w.catalog, 0, STORAGE_ERR_IO);
    cr_assert_eq(storage_catalog_inspect(w.catalog, NULL, 0), STORAGE_ERR_IO);
    cr_assert_eq(chmod(w.dir, 01777), 0);
    open_fails(w.catalog, 0, STORAGE_ERR_IO);
    cr_assert_eq(chmod(w.dir, 0700), 0);

    cr_assert_eq(chmod(w.catalog, 0640), 0);
    open_fails(w.catalog, STORAGE_OPEN_READ_ONLY, STORAGE_ERR_IO);
    cr_assert_eq(chmod(w.catalog, 0600), 0);

    snprintf(wal, sizeof(wal), "%s-wal", w.catalog);
    write_bytes(wal, "", 0);
    cr_assert_eq(chmod(wal, 0666), 0);
    open_fails(w.catalog, 0, STORAGE_ERR_IO);
    cr_assert_eq(chmod(wal, 0600), 0);
    if (geteuid() == 0) {
        cr_assert_eq(chown(wal, 65534, 65534), 0);
        open_fails(w.catalog, 0, STORAGE_ERR_IO);
    } else {
        cr_log_info("not root: a -wal of another user is tested in integration/cli");
    }
    cr_assert_eq(unlink(wal), 0);
    cat = open_ok(w.catalog, 0);
    storage_catalog_close(cat);
}

/* A missing catalog in a folder others can write is not created. */
Test(storage_catalog, storage_catalog_open_create_refuses_shared_folder)
{
    struct stat st;

    cr_assert_eq(chmod(w.dir, 0777), 0);
    open_fails(w.catalog, STORAGE_OPEN_CREATE, STORAGE_ERR_IO);
    cr_assert_eq(chmod(w.dir, 0700), 0);
    cr_assert_neq(stat(w.catalog, &st), 0, "nothing created");
}

/* Reads work, every write says READ_ONLY, and the file does not change. */
static void assert_read_only(storage_catalog *cat, const unsigned char *before, size_t len)
{
    CK_SLOT_ID slot = 0;
    unsigned count = 99;
    CK_OBJECT_HANDLE h;

    cr_assert_eq(storage_slot_id(cat, "Strata", &slot), STORAGE_OK);
    cr_assert_eq(slot, 1);
    cr_assert_eq(storage_slot_id(cat, "Unknown", &slot), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_login_failures(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(storage_audit(cat, "x", "y", "z"), STORAGE_ERR_READ_ONLY);
    cr_assert_eq(storage_login_failed(cat, "Strata", NULL), STORAGE_ERR_READ_ONLY);
    cr_assert_eq(storage_object_handle(cat, "Strata", "l", "id", 2, &h), STORAGE_ERR_READ_ONLY);
    cr_assert_eq(storage_view_enroll(cat, "Strata", "v", "1234", 4, NULL, 0, NULL),
                 STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
    assert_unchanged(w.catalog, before, len);
}

Test(storage_catalog, storage_catalog_open_read_only_flag)
{
    unsigned char *before;
    size_t len;

    make_catalog(w.catalog);
    before = slurp(w.catalog, &len);
    assert_read_only(open_ok(w.catalog, STORAGE_OPEN_READ_ONLY), before, len);
    free(before);
}

/* A file without write permission opens read-only. Root could write it
 * anyway, so Strata looks at the mode bits itself: the behaviour is the
 * same for root and for everyone else, and that is what is asserted. */
Test(storage_catalog, storage_catalog_open_read_only_file)
{
    unsigned char *before;
    size_t len;

    make_catalog(w.catalog);
    cr_assert_eq(chmod(w.catalog, 0400), 0);
    before = slurp(w.catalog, &len);
    assert_read_only(open_ok(w.catalog, 0), before, len);
    assert_read_only(open_ok(w.catalog, STORAGE_OPEN_CREATE), before, len);
    free(before);
}

Test(storage_catalog, storage_catalog_open_refuses_symlink_and_folder)
{
    char link[PATH_MAX + 16];

    make_catalog(w.catalog);
    snprintf(link, sizeof(link), "%s/link.db", w.dir);
    cr_assert_eq(symlink(w.catalog, link), 0);
    open_fails(link, 0, STORAGE_ERR_IO);
    open_fails(w.dir, 0, STORAGE_ERR_NOT_CATALOG);
}

Test(storage_catalog, storage_catalog_open_bad_arguments)
{
    storage_catalog *cat = NULL;
    char err[128];

    cr_assert_eq(storage_catalog_open(NULL, 0, &cat, err, sizeof(err)), STORAGE_ERR_ARGS);
    cr_assert_null(cat);
    cr_assert_eq(storage_catalog_open("", 0, &cat, err, sizeof(err)), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_catalog_open(w.catalog, 0, NULL, NULL, 0), STORAGE_ERR_ARGS);
    storage_catalog_close(NULL);
}

Test(storage_catalog, storage_catalog_open_small_error_buffer_truncates)
{
    storage_catalog *cat = NULL;
    char err[8];

    cr_assert_eq(storage_catalog_open(w.catalog, 0, &cat, err, sizeof(err)),
                 STORAGE_ERR_NEEDS_INIT);
    cr_assert_eq(strlen(err), sizeof(err) - 1);
}

Test(storage_catalog, storage_audit_records_rows)
{
    storage_catalog *cat = open_ok(w.catalog, STORAGE_OPEN_CREATE);

    cr_assert_eq(storage_audit(cat, "provision", "Strata/anon", "ok"), STORAGE_OK);
    cr_assert_eq(storage_audit(cat, NULL, "s", "o"), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'provision'"
                                    " AND subject = 'Strata/anon' AND outcome = 'ok'"
                                    " AND at > 1600000000"),
                 1);
}

Test(storage_catalog, storage_default_path_follows_xdg_then_home)
{
    char *p;

    setenv("XDG_DATA_HOME", "/xdg/data", 1);
    p = storage_default_path();
    cr_assert_str_eq(p, "/xdg/data/strata/catalog.db");
    free(p);
    setenv("XDG_DATA_HOME", "relative/ignored", 1);
    setenv("HOME", "/home/alice", 1);
    p = storage_default_path();
    cr_assert_str_eq(p, "/home/alice/.local/share/strata/catalog.db");
    free(p);
    unsetenv("XDG_DATA_HOME");
    p = storage_default_path();
    cr_assert_str_eq(p, "/home/alice/.local/share/strata/catalog.db");
    free(p);
}

Test(storage_catalog, storage_strerror_names_every_code)
{
    for (int rc = STORAGE_OK; rc <= STORAGE_ERR_INTERNAL; rc++) {
        const char *s = storage_strerror((storage_rc)rc);
        cr_assert(s != NULL && s[0] != '\0');
        cr_assert_str_neq(s, "unknown error");
    }
    cr_assert_str_eq(storage_strerror((storage_rc)1000), "unknown error");
}

/* Several processes creating the same new catalog at once: each open
 * succeeds and the schema is applied once. */
Test(storage_catalog, storage_catalog_open_create_races_in_processes)
{
    enum { N = 6 };
    int go[2], status;
    pid_t pids[N];

    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            storage_catalog *cat = NULL;
            CK_SLOT_ID slot = 0;
            char byte;
            storage_rc rc;

            close(go[1]);
            if (read(go[0], &byte, 1) != 0) {
                _exit(2);
            }
            rc = storage_catalog_open(w.catalog, STORAGE_OPEN_CREATE, &cat, NULL, 0);
            if (rc == STORAGE_OK) {
                rc = storage_slot_id(cat, "Strata", &slot);
            }
            storage_catalog_close(cat);
            _exit(rc == STORAGE_OK && slot == 1 ? 0 : 10 + (int)rc);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d exit %d", i,
                  WEXITSTATUS(status));
    }
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM migrations"), storage_schema_version());
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM slots"), 1);
}

/* A forked child never uses the parent's connection (STORAGE_ERR_INTERNAL),
 * its own open closes the inherited one, and both processes keep writing
 * to a sound file. */
Test(storage_catalog, storage_catalog_open_in_forked_child_closes_inherited)
{
    storage_catalog *cat = NULL;
    CK_SLOT_ID slot = 0;
    int status = 0;
    pid_t pid;

    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_CREATE, &cat, NULL, 0), STORAGE_OK);
    cr_assert_eq(storage_slot_id(cat, "Parent", &slot), STORAGE_OK);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        storage_catalog *mine = NULL;
        CK_SLOT_ID s = 0;

        if (storage_slot_id(cat, "Child", &s) != STORAGE_ERR_INTERNAL) {
            _exit(2); /* the inherited connection must not be used */
        }
        if (storage_catalog_open(w.catalog, 0, &mine, NULL, 0) != STORAGE_OK ||
            storage_slot_id(mine, "Child", &s) != STORAGE_OK || s != 2) {
            _exit(3);
        }
        if (storage_slot_id(cat, "Child", &s) != STORAGE_ERR_INTERNAL) {
            _exit(4);
        }
        storage_catalog_close(mine);
        storage_catalog_close(cat); /* frees only memory now */
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d", WEXITSTATUS(status));
    cr_assert_eq(storage_slot_id(cat, "Parent2", &slot), STORAGE_OK);
    cr_assert_eq(slot, 3);
    cr_assert_eq(storage_slot_id(cat, "Child", &slot), STORAGE_OK);
    cr_assert_eq(slot, 2);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM pragma_integrity_check"
                                    " WHERE integrity_check = 'ok'"),
                 1);
    cr_assert_eq(raw_int(w.catalog, "SELECT count(*) FROM slots"), 3);
}
