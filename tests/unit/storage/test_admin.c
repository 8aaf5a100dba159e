/*
 * test_admin.c - storage/admin.c: the SO PIN's verifier, the
 * administrator's key derived from it, and recovering a provisioned
 * token's SO PIN with it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "helpers.h"

static world w;

static void setup(void)
{
    world_setup(&w);
}

static void teardown(void)
{
    world_teardown(&w);
}

TestSuite(storage_admin, .init = setup, .fini = teardown);

#define SO_PIN "so-secret-PIN-8841"

static storage_rc so_set(storage_catalog *cat, const char *pin)
{
    return storage_so_set(cat, "Strata", pin, strlen(pin), &cheap_kdf);
}

static storage_rc so_check(storage_catalog *cat, const char *pin)
{
    return storage_so_check(cat, "Strata", pin, strlen(pin));
}

Test(storage_admin, storage_so_check_round_trip)
{
    storage_catalog *cat = helper_open(&w);

    cr_assert_eq(so_check(cat, SO_PIN), STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(so_set(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(so_check(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(so_check(cat, "so-secret-PIN-8842"), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(so_check(cat, ""), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_so_check(cat, "Other", SO_PIN, strlen(SO_PIN)), STORAGE_ERR_NOT_FOUND);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'so-set'"), 1);
}

Test(storage_admin, storage_so_set_twice_exists_and_keeps_first)
{
    storage_catalog *cat = helper_open(&w);

    cr_assert_eq(so_set(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(so_set(cat, "another-so-pin"), STORAGE_ERR_EXISTS);
    cr_assert_eq(so_check(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(so_check(cat, "another-so-pin"), STORAGE_ERR_PIN_INCORRECT);
    storage_catalog_close(cat);
}

Test(storage_admin, storage_so_set_bad_arguments)
{
    storage_catalog *cat = helper_open(&w);
    storage_kdf bad = {1, 1};

    cr_assert_eq(storage_so_set(NULL, "Strata", "x", 1, NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_so_set(cat, "", "x", 1, NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_so_set(cat, "Strata", "", 0, NULL), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_so_set(cat, "Strata", "x", 1, &bad), STORAGE_ERR_ARGS);
    cr_assert_eq(so_check(cat, "x"), STORAGE_ERR_NOT_FOUND);
    storage_catalog_close(cat);
}

/* The SO PIN never lands in the file; only its verifier and public key. */
Test(storage_admin, storage_so_set_no_secret_in_file)
{
    static const char *const secrets[] = {SO_PIN};
    size_t lens[] = {strlen(SO_PIN)};
    char wal[PATH_MAX + 8];
    storage_catalog *cat = helper_open(&w);

    snprintf(wal, sizeof(wal), "%s-wal", w.catalog);
    cr_assert_eq(so_set(cat, SO_PIN), STORAGE_OK);
    helper_assert_absent(wal, secrets, lens, 1);
    helper_assert_absent(w.catalog, secrets, lens, 1);
    storage_catalog_close(cat);
    helper_assert_absent(w.catalog, secrets, lens, 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT length(admin_public_key) FROM tokens"), 32);
}

static storage_provision *begin(storage_catalog *cat, const char *pin, const char *layer)
{
    storage_login *l = helper_login(cat, pin);
    storage_provision *p = NULL;

    cr_assert_eq(storage_provision_begin(cat, l, layer, "/m.so", "strata-x", &p), STORAGE_OK);
    storage_login_free(l);
    return p;
}

Test(storage_admin, storage_so_open_recovers_provisioned_so_pin)
{
    storage_catalog *cat = helper_open(&w);
    storage_provision *p;
    const char *so;
    size_t so_len, got_len = 0;
    char out[STORAGE_GENERATED_PIN_LEN];

    cr_assert_eq(so_set(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(helper_enroll(cat, "work", "111111", NULL, 0), STORAGE_OK);
    p = begin(cat, "111111", "personal");
    cr_assert(storage_provision_info_get(p)->admin_recoverable);
    storage_provision_pins(p, &so, &so_len, NULL, NULL);

    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "work", "personal", out,
                                 sizeof(out), &got_len),
                 STORAGE_OK);
    cr_assert_eq(got_len, so_len);
    cr_assert_eq(memcmp(out, so, so_len), 0);

    /* not without the SO PIN */
    cr_assert_eq(
        storage_so_open(cat, "Strata", "111111", 6, "work", "personal", out, sizeof(out), &got_len),
        STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(got_len, 0);
    /* no such row; buffer too small */
    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "work", "group", out,
                                 sizeof(out), &got_len),
                 STORAGE_ERR_NOT_FOUND);
    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "work", "personal", out, 4,
                                 &got_len),
                 STORAGE_ERR_ARGS);
    storage_provision_free(p);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'so-open'"), 1);
}

Test(storage_admin, storage_so_open_row_before_so_set_crypto)
{
    storage_catalog *cat = helper_open(&w);
    storage_provision *p;
    size_t got_len = 0;
    char out[STORAGE_GENERATED_PIN_LEN];

    cr_assert_eq(helper_enroll(cat, "work", "111111", NULL, 0), STORAGE_OK);
    p = begin(cat, "111111", "personal");
    cr_assert_not(storage_provision_info_get(p)->admin_recoverable);
    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "work", "personal", out,
                                 sizeof(out), &got_len),
                 STORAGE_ERR_NOT_FOUND, "no SO PIN set yet");
    cr_assert_eq(so_set(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "work", "personal", out,
                                 sizeof(out), &got_len),
                 STORAGE_ERR_CRYPTO);
    storage_provision_free(p);
    storage_catalog_close(cat);
}

/* The SO PIN changes: the old one no longer checks, the new one does, and
 * a provisioned token's SO PIN sealed to the old administrator key opens
 * with the new one only. A wrong old PIN changes nothing. */
Test(storage_admin, storage_so_passwd_reseals_to_the_new_key)
{
    storage_catalog *cat = helper_open(&w);
    storage_provision *p;
    const char *so;
    size_t so_len, got_len = 0;
    char out[STORAGE_GENERATED_PIN_LEN];

    cr_assert_eq(so_set(cat, SO_PIN), STORAGE_OK);
    cr_assert_eq(helper_enroll(cat, "work", "111111", NULL, 0), STORAGE_OK);
    p = begin(cat, "111111", "personal");
    storage_provision_pins(p, &so, &so_len, NULL, NULL);
    cr_assert_eq(
        storage_so_passwd(cat, "Strata", "wrong-so-pin", 12, "new-so-pin-1", 12, &cheap_kdf),
        STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(so_check(cat, SO_PIN), STORAGE_OK, "a wrong old PIN changes nothing");
    cr_assert_eq(storage_so_passwd(cat, "Strata", SO_PIN, strlen(SO_PIN), "", 0, &cheap_kdf),
                 STORAGE_ERR_ARGS);
    cr_assert_eq(
        storage_so_passwd(cat, "Strata", SO_PIN, strlen(SO_PIN), "new-so-pin-1", 12, &cheap_kdf),
        STORAGE_OK);
    cr_assert_eq(so_check(cat, SO_PIN), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(so_check(cat, "new-so-pin-1"), STORAGE_OK);
    cr_assert_eq(storage_so_open(cat, "Strata", SO_PIN, strlen(SO_PIN), "work", "personal", out,
                                 sizeof(out), &got_len),
                 STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_so_open(cat, "Strata", "new-so-pin-1", 12, "work", "personal", out,
                                 sizeof(out), &got_len),
                 STORAGE_OK, "re-sealed to the new key");
    cr_assert_eq(got_len, so_len);
    cr_assert_eq(memcmp(out, so, so_len), 0);
    storage_provision_free(p);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'so-passwd'"), 1);
}

/* C_InitPIN's enrolment: a view without provisioned tokens is enrolled (or
 * re-enrolled) with the PIN; a PIN of another view, or a view whose
 * tokens were provisioned, changes nothing. */
Test(storage_admin, storage_view_init_pin_only_without_tokens)
{
    storage_catalog *cat = helper_open(&w);
    storage_provision *p;
    bool has_tokens = true;
    storage_login *l;

    cr_assert_eq(helper_enroll(cat, "other", "222222", NULL, 0), STORAGE_OK);
    cr_assert_eq(storage_view_init_pin(cat, "Strata", "work", "111111", 6, &cheap_kdf, &has_tokens),
                 STORAGE_OK);
    cr_assert_not(has_tokens);
    cr_assert_eq(storage_view_init_pin(cat, "Strata", "work", "222222", 6, &cheap_kdf, &has_tokens),
                 STORAGE_ERR_EXISTS);
    cr_assert_not(has_tokens, "another view's PIN");
    cr_assert_eq(storage_view_init_pin(cat, "Strata", "work", "333333", 6, &cheap_kdf, NULL),
                 STORAGE_OK, "re-enrolled: nothing provisioned yet");
    l = helper_login(cat, "333333");
    cr_assert_str_eq(storage_login_view(l), "work");
    storage_login_free(l);
    p = begin(cat, "333333", "personal");
    cr_assert_eq(storage_view_init_pin(cat, "Strata", "work", "444444", 6, &cheap_kdf, &has_tokens),
                 STORAGE_ERR_EXISTS);
    cr_assert(has_tokens);
    storage_provision_free(p);
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'init-pin'"
                                       " AND outcome = 'ok'"),
                 2);
}
