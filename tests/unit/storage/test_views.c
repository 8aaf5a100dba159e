/*
 * test_views.c - storage/views.c: enrolment, login by PIN, the single
 * Argon2id per login, sealed credentials bound to their row, failure
 * counters, audit, and no secret in the file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>
#include <sqlite3.h>

#include "storage.h"
#include "world.h"

static world w;
static const storage_kdf cheap = {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(storage_views, .init = setup, .fini = teardown);

static storage_catalog *open_cat(unsigned flags)
{
    storage_catalog *cat = NULL;
    char err[512];
    storage_rc rc =
        storage_catalog_open(w.catalog, flags | STORAGE_OPEN_CREATE, &cat, err, sizeof(err));

    cr_assert_eq(rc, STORAGE_OK, "%s", err);
    return cat;
}

static storage_rc enroll(storage_catalog *cat, const char *view, const char *pin,
                         const storage_cred *creds, size_t n)
{
    return storage_view_enroll(cat, "Strata", view, pin, strlen(pin), creds, n, &cheap);
}

static storage_rc login(storage_catalog *cat, const char *pin, storage_login **out)
{
    return storage_view_login(cat, "Strata", pin, strlen(pin), out);
}

static void assert_cred(const storage_login *l, size_t i, const char *layer, const char *pin)
{
    const char *got_layer, *got_pin;
    size_t len;

    storage_login_cred(l, i, &got_layer, &got_pin, &len);
    cr_assert_str_eq(got_layer, layer);
    cr_assert_eq(len, strlen(pin));
    cr_assert_eq(memcmp(got_pin, pin, len), 0);
}

static const storage_cred work_creds[] = {
    {"personal", "alice-personal", 14},
    {"group", "team-pin", 8},
};

Test(storage_views, storage_view_login_round_trip)
{
    storage_catalog *cat = open_cat(0);
    storage_cred anon_creds[] = {{"pseudo", "pseudo-pin", 10}};
    storage_login *l = NULL;
    const storage_cred *c;

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(enroll(cat, "anon", "222222", anon_creds, 1), STORAGE_OK);

    cr_assert_eq(login(cat, "111111", &l), STORAGE_OK);
    cr_assert_str_eq(storage_login_view(l), "work");
    cr_assert_eq(storage_login_count(l), 2);
    assert_cred(l, 0, "personal", "alice-personal");
    assert_cred(l, 1, "group", "team-pin");
    c = storage_login_find(l, "group");
    cr_assert(c != NULL);
    cr_assert_eq(c->pin_len, 8);
    cr_assert_eq(memcmp(c->pin, "team-pin", 8), 0);
    cr_assert_null(storage_login_find(l, "pseudo"));
    storage_login_free(l);

    cr_assert_eq(login(cat, "222222", &l), STORAGE_OK);
    cr_assert_str_eq(storage_login_view(l), "anon");
    cr_assert_eq(storage_login_count(l), 1);
    assert_cred(l, 0, "pseudo", "pseudo-pin");
    storage_login_free(l);
    storage_catalog_close(cat);

    /* Another process (a new connection) sees the same. */
    cat = open_cat(STORAGE_OPEN_READ_ONLY);
    cr_assert_eq(login(cat, "111111", &l), STORAGE_OK);
    cr_assert_str_eq(storage_login_view(l), "work");
    storage_login_free(l);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_login_view_without_credentials)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = NULL;
    const char *layer = "x";

    cr_assert_eq(enroll(cat, "empty", "333333", NULL, 0), STORAGE_OK);
    cr_assert_eq(login(cat, "333333", &l), STORAGE_OK);
    cr_assert_str_eq(storage_login_view(l), "empty");
    cr_assert_eq(storage_login_count(l), 0);
    storage_login_cred(l, 0, &layer, NULL, NULL);
    cr_assert_null(layer);
    storage_login_free(l);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_login_wrong_pin_incorrect)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = (storage_login *)&l;

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(login(cat, "111112", &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_null(l);
    cr_assert_eq(login(cat, "", &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_view_login(cat, "Other", "111111", 6, &l), STORAGE_ERR_PIN_INCORRECT);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_login_unknown_token_costs_one_kdf)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = NULL;
    unsigned long before = storage_kdf_calls();

    cr_assert_eq(storage_view_login(cat, "Nobody", "1234", 4, &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_kdf_calls() - before, 1);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_login_bad_arguments)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = NULL;

    cr_assert_eq(storage_view_login(NULL, "T", "1", 1, &l), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_login(cat, NULL, "1", 1, &l), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_login(cat, "T", NULL, 1, &l), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_login(cat, "T", "1", 1, NULL), STORAGE_ERR_ARGS);
    cr_assert_null(storage_login_view(NULL));
    cr_assert_eq(storage_login_count(NULL), 0);
    storage_login_free(NULL);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_enroll_bad_arguments)
{
    storage_catalog *cat = open_cat(0);
    storage_cred twice[] = {{"a", "1", 1}, {"a", "2", 1}};
    storage_kdf weak = {1, 16};
    char long_view[200];

    memset(long_view, 'v', sizeof(long_view) - 1);
    long_view[sizeof(long_view) - 1] = '\0';
    cr_assert_eq(enroll(cat, "v", "", NULL, 0), STORAGE_ERR_ARGS);
    cr_assert_eq(enroll(cat, "", "1234", NULL, 0), STORAGE_ERR_ARGS);
    cr_assert_eq(enroll(cat, long_view, "1234", NULL, 0), STORAGE_ERR_ARGS);
    cr_assert_eq(enroll(cat, "v", "1234", twice, 2), STORAGE_ERR_ARGS);
    cr_assert_eq(enroll(cat, "v", "1234", NULL, 1), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_enroll(cat, "T", "v", "1234", 4, NULL, 0, &weak), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_enroll(cat, NULL, "v", "1234", 4, NULL, 0, &cheap), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

static long long raw_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v;

    cr_assert_eq(sqlite3_open(w.catalog, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

Test(storage_views, storage_view_enroll_same_pin_for_two_views_refused)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = NULL;

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(enroll(cat, "anon", "111111", NULL, 0), STORAGE_ERR_EXISTS);
    cr_assert_eq(login(cat, "111111", &l), STORAGE_OK);
    cr_assert_str_eq(storage_login_view(l), "work");
    storage_login_free(l);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int("SELECT count(*) FROM views"), 1);
    cr_assert_eq(raw_int("SELECT count(*) FROM audit WHERE action = 'enroll'"
                         " AND subject = 'Strata/anon' AND outcome LIKE 'refused%'"),
                 1);
}

Test(storage_views, storage_view_enroll_again_replaces)
{
    storage_catalog *cat = open_cat(0);
    storage_cred fresh[] = {{"personal", "new-personal", 12}};
    storage_login *l = NULL;

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(storage_whiteout_add(cat, "Strata", "work", "group", "id", 2), STORAGE_OK);
    cr_assert_eq(enroll(cat, "work", "999999", fresh, 1), STORAGE_OK);
    cr_assert_eq(login(cat, "111111", &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(login(cat, "999999", &l), STORAGE_OK);
    cr_assert_str_eq(storage_login_view(l), "work");
    cr_assert_eq(storage_login_count(l), 1);
    assert_cred(l, 0, "personal", "new-personal");
    storage_login_free(l);
    /* the same PIN again for the same view is a plain re-enrolment */
    cr_assert_eq(enroll(cat, "work", "999999", work_creds, 2), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int("SELECT count(*) FROM views"), 1);
    cr_assert_eq(raw_int("SELECT count(*) FROM whiteouts"), 1, "whiteouts outlive re-enrolment");
    cr_assert_eq(raw_int("SELECT count(*) FROM audit WHERE action = 'enroll'"
                         " AND subject = 'Strata/work' AND outcome = 'ok'"),
                 3);
}

Test(storage_views, storage_view_enroll_keeps_first_salt_and_cost)
{
    storage_catalog *cat = open_cat(0);
    storage_kdf other = {crypto_pwhash_OPSLIMIT_MIN + 1, crypto_pwhash_MEMLIMIT_MIN * 2};

    cr_assert_eq(enroll(cat, "a", "111111", NULL, 0), STORAGE_OK);
    cr_assert_eq(storage_view_enroll(cat, "Strata", "b", "222222", 6, NULL, 0, &other), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int("SELECT kdf_ops FROM tokens WHERE label = 'Strata'"),
                 crypto_pwhash_OPSLIMIT_MIN);
    cr_assert_eq(raw_int("SELECT kdf_mem FROM tokens WHERE label = 'Strata'"),
                 crypto_pwhash_MEMLIMIT_MIN);
    cr_assert_eq(raw_int("SELECT length(kdf_salt) FROM tokens"), crypto_pwhash_SALTBYTES);
}

/* Enrols n views with distinct PINs "pin-<i>". */
static void enroll_many(storage_catalog *cat, int n)
{
    char view[32], pin[32];

    for (int i = 0; i < n; i++) {
        snprintf(view, sizeof(view), "view-%02d", i);
        snprintf(pin, sizeof(pin), "pin-%d", i);
        cr_assert_eq(enroll(cat, view, pin, work_creds, 1), STORAGE_OK, "%s", view);
    }
}

static void assert_one_kdf_per_login(storage_catalog *cat, int n)
{
    storage_login *l = NULL;
    unsigned long before;
    char pin[32], view[32];

    snprintf(pin, sizeof(pin), "pin-%d", n - 1);
    snprintf(view, sizeof(view), "view-%02d", n - 1);
    before = storage_kdf_calls();
    cr_assert_eq(login(cat, pin, &l), STORAGE_OK);
    cr_assert_eq(storage_kdf_calls() - before, 1, "right PIN, %d views", n);
    cr_assert_str_eq(storage_login_view(l), view);
    storage_login_free(l);

    before = storage_kdf_calls();
    cr_assert_eq(login(cat, "no-such-pin", &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_kdf_calls() - before, 1, "wrong PIN, %d views", n);
}

Test(storage_views, storage_view_login_one_kdf_with_one_view)
{
    storage_catalog *cat = open_cat(0);

    enroll_many(cat, 1);
    assert_one_kdf_per_login(cat, 1);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_login_one_kdf_with_fifty_views)
{
    storage_catalog *cat = open_cat(0);

    enroll_many(cat, 50);
    assert_one_kdf_per_login(cat, 50);
    storage_catalog_close(cat);
}

static void collect_view(void *ctx, const storage_view_info *info)
{
    char *buf = ctx;

    snprintf(buf + strlen(buf), 256 - strlen(buf), "%s:%u ", info->view, info->n_creds);
}

Test(storage_views, storage_views_list_in_name_order)
{
    storage_catalog *cat = open_cat(0);
    char buf[256] = "";

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(enroll(cat, "anon", "222222", work_creds, 1), STORAGE_OK);
    cr_assert_eq(enroll(cat, "empty", "333333", NULL, 0), STORAGE_OK);
    cr_assert_eq(storage_views_list(cat, "Strata", collect_view, buf), STORAGE_OK);
    cr_assert_str_eq(buf, "anon:1 empty:0 work:2 ");
    buf[0] = '\0';
    cr_assert_eq(storage_views_list(cat, "Other", collect_view, buf), STORAGE_OK);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(storage_views_list(cat, "Strata", NULL, buf), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_remove_forgets_pin_and_audits)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = NULL;

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(storage_view_remove(cat, "Strata", "work"), STORAGE_OK);
    cr_assert_eq(login(cat, "111111", &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_view_remove(cat, "Strata", "work"), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_view_remove(cat, "Other", "work"), STORAGE_ERR_NOT_FOUND);
    /* the PIN is free again for another view */
    cr_assert_eq(enroll(cat, "anon", "111111", NULL, 0), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int("SELECT count(*) FROM creds"), 0);
    cr_assert_eq(raw_int("SELECT count(*) FROM audit WHERE action = 'remove'"
                         " AND subject = 'Strata/work' AND outcome = 'ok'"),
                 1);
}

Test(storage_views, storage_login_failed_counts_resets_and_persists)
{
    storage_catalog *cat = open_cat(0);
    unsigned count = 99;

    cr_assert_eq(storage_login_failures(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(storage_login_failed(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(storage_login_failed(cat, "Strata", NULL), STORAGE_OK);
    cr_assert_eq(storage_login_failed(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 3);
    cr_assert_eq(storage_login_failures(cat, "Other", &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    storage_catalog_close(cat);

    cat = open_cat(0);
    cr_assert_eq(storage_login_failures(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 3, "the counter survives the process");
    cr_assert_eq(storage_login_reset(cat, "Strata"), STORAGE_OK);
    cr_assert_eq(storage_login_failures(cat, "Strata", &count), STORAGE_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(storage_login_reset(cat, "Strata"), STORAGE_OK);
    storage_catalog_close(cat);
    cr_assert_eq(raw_int("SELECT count(*) FROM audit WHERE action = 'reset-failures'"
                         " AND subject = 'Strata'"),
                 1, "one audit row for the one real reset");

    /* an already clear counter needs no write, so read-only works */
    cat = open_cat(STORAGE_OPEN_READ_ONLY);
    cr_assert_eq(storage_login_reset(cat, "Strata"), STORAGE_OK);
    cr_assert_eq(storage_login_failed(cat, "Strata", &count), STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
}

/* Runs fn(blob of `layer`'s row of view `view`) on the raw creds table. */
static void raw_get_cred(const char *view, const char *layer, void **nonce, int *nonce_len,
                         void **blob, int *blob_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    cr_assert_eq(sqlite3_open(w.catalog, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT c.nonce, c.sealed FROM creds c JOIN views v"
                                    " ON v.id = c.view_id WHERE v.name = ?1 AND c.layer = ?2",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, layer, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    *nonce_len = sqlite3_column_bytes(st, 0);
    *nonce = malloc((size_t)*nonce_len);
    memcpy(*nonce, sqlite3_column_blob(st, 0), (size_t)*nonce_len);
    *blob_len = sqlite3_column_bytes(st, 1);
    *blob = malloc((size_t)*blob_len);
    memcpy(*blob, sqlite3_column_blob(st, 1), (size_t)*blob_len);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void raw_set_cred(const char *view, const char *layer, const void *nonce, int nonce_len,
                         const void *blob, int blob_len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    cr_assert_eq(sqlite3_open(w.catalog, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "UPDATE creds SET nonce = ?3, sealed = ?4 WHERE layer = ?2"
                                    " AND view_id = (SELECT id FROM views WHERE name = ?1)",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, view, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, layer, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, nonce, nonce_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, blob, blob_len, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

Test(storage_views, storage_view_login_tampered_credential_crypto)
{
    storage_catalog *cat = open_cat(0);
    storage_login *l = (storage_login *)&l;
    void *nonce, *blob;
    int nonce_len, blob_len;

    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    storage_catalog_close(cat);
    raw_get_cred("work", "group", &nonce, &nonce_len, &blob, &blob_len);
    ((unsigned char *)blob)[blob_len / 2] ^= 0x04;
    raw_set_cred("work", "group", nonce, nonce_len, blob, blob_len);
    free(nonce);
    free(blob);

    cat = open_cat(0);
    cr_assert_eq(login(cat, "111111", &l), STORAGE_ERR_CRYPTO);
    cr_assert_null(l);
    storage_catalog_close(cat);
}

Test(storage_views, storage_view_login_moved_credential_crypto)
{
    storage_catalog *cat = open_cat(0);
    storage_cred same_len[] = {{"a", "pin-of-a", 8}, {"b", "pin-of-b", 8}};
    storage_login *l = NULL;
    void *nonce, *blob;
    int nonce_len, blob_len;

    cr_assert_eq(enroll(cat, "work", "111111", same_len, 2), STORAGE_OK);
    storage_catalog_close(cat);
    raw_get_cred("work", "a", &nonce, &nonce_len, &blob, &blob_len);
    raw_set_cred("work", "b", nonce, nonce_len, blob, blob_len);
    free(nonce);
    free(blob);

    cat = open_cat(0);
    cr_assert_eq(login(cat, "111111", &l), STORAGE_ERR_CRYPTO);
    storage_catalog_close(cat);
}

/* Reads a file (malloc'd) or NULL if absent. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void assert_no_secret_in(const char *path, const char *const *secrets, size_t n)
{
    size_t len;
    unsigned char *bytes = slurp(path, &len);

    for (size_t i = 0; bytes != NULL && i < n; i++) {
        cr_assert_null(memmem(bytes, len, secrets[i], strlen(secrets[i])), "%s holds \"%s\"", path,
                       secrets[i]);
    }
    free(bytes);
}

Test(storage_views, storage_view_enroll_no_secret_in_file)
{
    static const char *const secrets[] = {
        "ZEBRA-view-PIN-4711",
        "QUOKKA-backend-PIN-0815",
        "PANGOLIN-backend-PIN-31337",
        "OKAPI-new-view-PIN-2024",
    };
    storage_cred creds[] = {{"personal", secrets[1], strlen(secrets[1])},
                            {"group", secrets[2], strlen(secrets[2])}};
    storage_catalog *cat = open_cat(0);
    storage_login *l = NULL;
    char wal[PATH_MAX + 8];
    size_t len;
    unsigned char *bytes;

    snprintf(wal, sizeof(wal), "%s-wal", w.catalog);
    cr_assert_eq(enroll(cat, "work", secrets[0], creds, 2), STORAGE_OK);
    cr_assert_eq(login(cat, secrets[0], &l), STORAGE_OK);
    storage_login_free(l);
    cr_assert_eq(login(cat, "wrong-pin", &l), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_login_failed(cat, "Strata", NULL), STORAGE_OK);
    cr_assert_eq(enroll(cat, "work", secrets[3], creds, 2), STORAGE_OK); /* re-enrol */

    /* while open, the fresh writes sit in the WAL file */
    bytes = slurp(wal, &len);
    cr_assert(bytes != NULL && len > 0, "WAL file present while open");
    cr_assert(memmem(bytes, len, "personal", 8) != NULL, "the scan sees the WAL's content");
    free(bytes);
    assert_no_secret_in(wal, secrets, 4);
    assert_no_secret_in(w.catalog, secrets, 4);
    storage_catalog_close(cat);
    assert_no_secret_in(w.catalog, secrets, 4);
    assert_no_secret_in(wal, secrets, 4);
}

struct enroll_thread {
    storage_catalog *cat;
    pthread_barrier_t *start;
    const char *view, *pin;
    storage_rc rc;
};

static void *enroll_thread_run(void *arg)
{
    struct enroll_thread *t = arg;

    pthread_barrier_wait(t->start);
    t->rc = enroll(t->cat, t->view, t->pin, work_creds, 2);
    return NULL;
}

Test(storage_views, storage_view_enroll_two_threads_at_once)
{
    storage_catalog *cat = open_cat(0);
    pthread_barrier_t start;
    struct enroll_thread t[2] = {
        {cat, &start, "work", "111111", STORAGE_ERR_INTERNAL},
        {cat, &start, "anon", "222222", STORAGE_ERR_INTERNAL},
    };
    pthread_t tid[2];
    storage_login *l = NULL;

    pthread_barrier_init(&start, NULL, 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&tid[i], NULL, enroll_thread_run, &t[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(tid[i], NULL);
        cr_assert_eq(t[i].rc, STORAGE_OK, "%s: %s", t[i].view, storage_strerror(t[i].rc));
    }
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(login(cat, t[i].pin, &l), STORAGE_OK, "%s", t[i].view);
        cr_assert_str_eq(storage_login_view(l), t[i].view);
        storage_login_free(l);
    }
    storage_catalog_close(cat);
}

Test(storage_views, storage_views_any_follows_enrolment)
{
    storage_catalog *cat = open_cat(0);
    bool any = true;

    cr_assert_eq(storage_views_any(cat, "Strata", &any), STORAGE_OK);
    cr_assert_not(any, "no view is enrolled yet");
    cr_assert_eq(enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(storage_views_any(cat, "Strata", &any), STORAGE_OK);
    cr_assert(any);
    cr_assert_eq(storage_views_any(cat, "Other", &any), STORAGE_OK);
    cr_assert_not(any, "views of another token do not count");
    cr_assert_eq(storage_view_remove(cat, "Strata", "work"), STORAGE_OK);
    cr_assert_eq(storage_views_any(cat, "Strata", &any), STORAGE_OK);
    cr_assert_not(any, "the only view was removed");
    cr_assert_eq(storage_views_any(cat, NULL, &any), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_views_any(cat, "Strata", NULL), STORAGE_ERR_ARGS);
    storage_catalog_close(cat);
}
