/*
 * helpers.h - what the storage tests of issue 5 share: a catalog in the
 * test's world, raw SQL on the file, and scanning files for secrets.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef STRATA_TEST_STORAGE_HELPERS_H
#define STRATA_TEST_STORAGE_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>
#include <sqlite3.h>

#include "storage.h"
#include "world.h"

static const storage_kdf cheap_kdf = {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};

static inline storage_catalog *helper_open(const world *w)
{
    storage_catalog *cat = NULL;
    char err[512];
    storage_rc rc = storage_catalog_open(w->catalog, STORAGE_OPEN_CREATE, &cat, err, sizeof(err));

    cr_assert_eq(rc, STORAGE_OK, "%s", err);
    return cat;
}

static inline storage_rc helper_enroll(storage_catalog *cat, const char *view, const char *pin,
                                       const storage_cred *creds, size_t n)
{
    return storage_view_enroll(cat, "Strata", view, pin, strlen(pin), creds, n, &cheap_kdf);
}

static inline storage_login *helper_login(storage_catalog *cat, const char *pin)
{
    storage_login *l = NULL;

    cr_assert_eq(storage_view_login(cat, "Strata", pin, strlen(pin), &l), STORAGE_OK, "login %s",
                 pin);
    return l;
}

/* One integer from sql run on a fresh connection to path. */
static inline long long helper_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* PRAGMA integrity_check says "ok". */
static inline void helper_assert_integrity(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Fails when path (if it exists) holds any of the n secrets (len bytes each). */
static inline void helper_assert_absent(const char *path, const char *const *secrets,
                                        const size_t *lens, size_t n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;

    if (f == NULL) {
        return;
    }
    do {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        cr_assert_null(memmem(buf, len, secrets[i], lens[i]), "%s holds a secret in clear", path);
    }
    free(buf);
}

/* Waits for pid and returns its exit status, or 128 + signal. */
static inline int helper_wait(pid_t pid)
{
    int status = 0;

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif /* STRATA_TEST_STORAGE_HELPERS_H */
