/*
 * test_passwd.c - storage/passwd.c: changing a view's PIN re-seals its
 * credentials and its provisioned tokens' PINs in one transaction.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>

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

TestSuite(storage_passwd, .init = setup, .fini = teardown);

static const storage_cred work_creds[] = {
    {"personal", "alice-personal", 14},
    {"group", "team-pin", 8},
};
static const storage_cred anon_creds[] = {{"pseudo", "pseudo-pin", 10}};

static storage_rc passwd(storage_catalog *cat, const char *old_pin, const char *new_pin)
{
    return storage_view_passwd(cat, "Strata", old_pin, strlen(old_pin), new_pin, strlen(new_pin));
}

static storage_rc try_login(storage_catalog *cat, const char *pin, char *view, size_t size)
{
    storage_login *l = NULL;
    storage_rc rc = storage_view_login(cat, "Strata", pin, strlen(pin), &l);

    if (rc == STORAGE_OK && view != NULL) {
        snprintf(view, size, "%s", storage_login_view(l));
    }
    storage_login_free(l);
    return rc;
}

static void assert_work_creds(storage_catalog *cat, const char *pin)
{
    storage_login *l = helper_login(cat, pin);
    const storage_cred *c;

    cr_assert_str_eq(storage_login_view(l), "work");
    cr_assert_eq(storage_login_count(l), 2);
    c = storage_login_find(l, "personal");
    cr_assert(c != NULL && c->pin_len == 14 && memcmp(c->pin, "alice-personal", 14) == 0);
    c = storage_login_find(l, "group");
    cr_assert(c != NULL && c->pin_len == 8 && memcmp(c->pin, "team-pin", 8) == 0);
    storage_login_free(l);
}

static void enroll_both(storage_catalog *cat)
{
    cr_assert_eq(helper_enroll(cat, "work", "111111", work_creds, 2), STORAGE_OK);
    cr_assert_eq(helper_enroll(cat, "anon", "222222", anon_creds, 1), STORAGE_OK);
}

Test(storage_passwd, storage_view_passwd_round_trip)
{
    storage_catalog *cat = helper_open(&w);
    unsigned long before;
    char view[128];

    enroll_both(cat);
    before = storage_kdf_calls();
    cr_assert_eq(passwd(cat, "111111", "999999"), STORAGE_OK);
    cr_assert_eq(storage_kdf_calls() - before, 2, "one Argon2id per PIN");
    cr_assert_eq(try_login(cat, "111111", NULL, 0), STORAGE_ERR_PIN_INCORRECT);
    assert_work_creds(cat, "999999");
    cr_assert_eq(try_login(cat, "222222", view, sizeof(view)), STORAGE_OK);
    cr_assert_str_eq(view, "anon");
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'passwd'"
                                       " AND subject = 'Strata/work' AND outcome = 'ok'"),
                 1);
}

Test(storage_passwd, storage_view_passwd_same_pin_keeps_working)
{
    storage_catalog *cat = helper_open(&w);

    enroll_both(cat);
    cr_assert_eq(passwd(cat, "111111", "111111"), STORAGE_OK);
    assert_work_creds(cat, "111111");
    storage_catalog_close(cat);
}

Test(storage_passwd, storage_view_passwd_to_other_views_pin_exists)
{
    storage_catalog *cat = helper_open(&w);
    char view[128];

    enroll_both(cat);
    cr_assert_eq(passwd(cat, "111111", "222222"), STORAGE_ERR_EXISTS);
    assert_work_creds(cat, "111111");
    cr_assert_eq(try_login(cat, "222222", view, sizeof(view)), STORAGE_OK);
    cr_assert_str_eq(view, "anon");
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'passwd'"
                                       " AND outcome LIKE 'refused%'"),
                 1);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'passwd'"
                                       " AND outcome = 'ok'"),
                 0);
}

Test(storage_passwd, storage_view_passwd_wrong_old_pin_incorrect)
{
    storage_catalog *cat = helper_open(&w);

    enroll_both(cat);
    cr_assert_eq(passwd(cat, "111112", "999999"), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(try_login(cat, "999999", NULL, 0), STORAGE_ERR_PIN_INCORRECT);
    assert_work_creds(cat, "111111");
    cr_assert_eq(storage_view_passwd(cat, "Other", "111111", 6, "999999", 6),
                 STORAGE_ERR_PIN_INCORRECT);
    storage_catalog_close(cat);
}

/* storage_view_known_fn: only "work" is in the policy. */
static bool only_work(const char *view, void *ctx)
{
    (void)ctx;
    return strcmp(view, "work") == 0;
}

/* A view the policy no longer has (anon) is a wrong old PIN: nothing
 * opened, nothing changed, no audit row; a known view still changes. */
Test(storage_passwd, storage_view_passwd_known_refuses_a_removed_view)
{
    storage_catalog *cat = helper_open(&w);
    unsigned long unseal;
    char view[128];

    enroll_both(cat);
    unseal = storage_unseal_calls();
    cr_assert_eq(
        storage_view_passwd_known(cat, "Strata", "222222", 6, "999999", 6, only_work, NULL),
        STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(storage_unseal_calls(), unseal, "the removed view's seals stay closed");
    cr_assert_eq(try_login(cat, "999999", NULL, 0), STORAGE_ERR_PIN_INCORRECT);
    cr_assert_eq(try_login(cat, "222222", view, sizeof(view)), STORAGE_OK);
    cr_assert_str_eq(view, "anon");
    cr_assert_eq(
        storage_view_passwd_known(cat, "Strata", "111111", 6, "999999", 6, only_work, NULL),
        STORAGE_OK);
    assert_work_creds(cat, "999999");
    storage_catalog_close(cat);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'passwd'"), 1);
}

Test(storage_passwd, storage_view_passwd_bad_arguments)
{
    storage_catalog *cat = helper_open(&w);

    enroll_both(cat);
    cr_assert_eq(storage_view_passwd(NULL, "Strata", "111111", 6, "9", 1), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_passwd(cat, NULL, "111111", 6, "9", 1), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_passwd(cat, "Strata", "111111", 6, "", 0), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_passwd(cat, "Strata", "111111", 6, NULL, 3), STORAGE_ERR_ARGS);
    cr_assert_eq(storage_view_passwd(cat, "Strata", NULL, 6, "9", 1), STORAGE_ERR_ARGS);
    assert_work_creds(cat, "111111");
    storage_catalog_close(cat);
}

Test(storage_passwd, storage_view_passwd_read_only_catalog)
{
    storage_catalog *cat = helper_open(&w);

    enroll_both(cat);
    storage_catalog_close(cat);
    cr_assert_eq(storage_catalog_open(w.catalog, STORAGE_OPEN_READ_ONLY, &cat, NULL, 0),
                 STORAGE_OK);
    cr_assert_eq(passwd(cat, "111111", "999999"), STORAGE_ERR_READ_ONLY);
    storage_catalog_close(cat);
}

/* The provisioned tokens' PINs follow the view's new key. */
Test(storage_passwd, storage_view_passwd_rewraps_provisioned_pins)
{
    storage_catalog *cat = helper_open(&w);
    storage_provision *p = NULL, *q = NULL;
    storage_login *l;
    const char *so1, *user1, *so2, *user2;
    size_t so1_len, user1_len, so2_len, user2_len;

    enroll_both(cat);
    l = helper_login(cat, "111111");
    cr_assert_eq(storage_provision_begin(cat, l, "personal", "/m.so", "strata-work", &p),
                 STORAGE_OK);
    storage_login_free(l);
    cr_assert_eq(passwd(cat, "111111", "999999"), STORAGE_OK);
    l = helper_login(cat, "999999");
    cr_assert_eq(storage_provision_read(cat, l, "personal", &q), STORAGE_OK);
    storage_provision_pins(p, &so1, &so1_len, &user1, &user1_len);
    storage_provision_pins(q, &so2, &so2_len, &user2, &user2_len);
    cr_assert(so1_len == so2_len && memcmp(so1, so2, so1_len) == 0);
    cr_assert(user1_len == user2_len && memcmp(user1, user2, user1_len) == 0);
    storage_provision_free(p);
    storage_provision_free(q);
    storage_login_free(l);
    storage_catalog_close(cat);
}

/* A process killed between two writes of the passwd transaction leaves the
 * old PIN working, the new one not, and a sound file. */
Test(storage_passwd, storage_view_passwd_crash_mid_transaction_keeps_old_pin)
{
    storage_catalog *cat = helper_open(&w);
    pid_t pid;

    enroll_both(cat);
    storage_catalog_close(cat);
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        storage_catalog *child = NULL;

        setenv("STRATA_TEST_CRASH_AT", "passwd-rewrap", 1);
        if (storage_catalog_open(w.catalog, 0, &child, NULL, 0) != STORAGE_OK) {
            _exit(2);
        }
        (void)passwd(child, "111111", "999999");
        _exit(3); /* not reached: the hook kills the process */
    }
    cr_assert_eq(helper_wait(pid), 128 + SIGKILL);
    cat = helper_open(&w);
    assert_work_creds(cat, "111111");
    cr_assert_eq(try_login(cat, "999999", NULL, 0), STORAGE_ERR_PIN_INCORRECT);
    storage_catalog_close(cat);
    helper_assert_integrity(w.catalog);
    cr_assert_eq(helper_int(w.catalog, "SELECT count(*) FROM audit WHERE action = 'passwd'"), 0);
}
